"""Reading an artifact's manifest straight from its ELF section headers, without loading it.

Only ELF64 little-endian files are read (every target tensorc builds for). Anything else, a
truncated or corrupted file (format 3 on: one whose bytes do not match the manifest's
``file_sha256``), a file without a ``.tensorc_manifest`` section, an invalid manifest or one of
an unsupported format version raises :class:`ArtifactError` with a message that names the file
and says what is wrong; no code of the file ever runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, BinaryIO

from .errors import ArtifactError

__all__ = [
    "FORMAT_NAME",
    "MANIFEST_SECTION",
    "SUPPORTED_FORMAT_VERSIONS",
    "ArtifactFile",
    "ElfInfo",
    "checksum_digits_at",
    "file_checksum",
    "open_artifact",
    "read_elf_info",
    "read_manifest",
    "read_section",
    "validate_manifest",
]

FORMAT_NAME = "tensorc-artifact"
# 1: before the reserved `__tensorc_` namespace (docs/abi.md); 2: without a file checksum;
# 3: the current format, whose manifest ends with `file_sha256`.
SUPPORTED_FORMAT_VERSIONS = frozenset({1, 2, 3})
CHECKSUMMED_FORMAT_VERSION = 3
MANIFEST_SECTION = ".tensorc_manifest"
# The SHA-256 of the whole file with this field's 64 hex digits read as zeros (docs/abi.md).
CHECKSUM_FIELD = "file_sha256"
CHECKSUM_DIGITS = 64
TARGETS = ("cpu", "cuda")

_ELF_MAGIC = b"\x7fELF"
_ELFCLASS64 = 2
_ELFDATA2LSB = 1
_SHT_NOBITS = 8
_SHN_UNDEF = 0
_SHN_LORESERVE = 0xFF00
_SHN_XINDEX = 0xFFFF
# e_ident[16], e_type, e_machine, e_version, e_entry, e_phoff, e_shoff, e_flags, e_ehsize,
# e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx
_HEADER = struct.Struct("<16sHHIQQQIHHHHHH")
# sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size, sh_link, sh_info, sh_addralign,
# sh_entsize
_SECTION_HEADER = struct.Struct("<IIQQQQIIQQ")
_MACHINES = {3: "i386", 40: "arm", 62: "x86_64", 183: "aarch64", 243: "riscv64", 21: "ppc64"}
_MAX_MANIFEST_BYTES = 256 << 20


@dataclass(frozen=True)
class ElfInfo:
    """What the ELF header says: the machine (``x86_64``, ``aarch64``, ...) and file size."""

    machine: str
    size: int


class _ElfFile:
    """Bounds-checked reads of one open file; every failure names the file."""

    def __init__(self, stream: BinaryIO, path: str) -> None:
        self.stream = stream
        self.path = path
        self.size = os.fstat(stream.fileno()).st_size

    def fail(self, reason: str) -> ArtifactError:
        return ArtifactError(f"{self.path}: {reason}")

    def read(self, offset: int, length: int, what: str) -> bytes:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise self.fail(
                f"truncated or corrupted file: {what} at bytes {offset}..{offset + length} "
                f"lies beyond the end of the file ({self.size} bytes)"
            )
        self.stream.seek(offset)
        data = self.stream.read(length)
        if len(data) != length:
            raise self.fail(f"truncated file: could not read {what}")
        return data


def _open(path: str | os.PathLike[str]) -> BinaryIO:
    try:
        return open(path, "rb")
    except IsADirectoryError:
        raise ArtifactError(f"{os.fspath(path)}: is a directory, not a tensorc artifact") from None
    except OSError as error:
        reason = error.strerror or str(error)
        raise ArtifactError(f"cannot read artifact {os.fspath(path)}: {reason}") from error


def _parse_header(elf: _ElfFile) -> tuple[Any, ...]:
    if elf.size < 4 or elf.read(0, 4, "the ELF magic") != _ELF_MAGIC:
        raise elf.fail("not a tensorc artifact (not an ELF file)")
    if elf.size < 6:
        raise elf.fail("truncated file: incomplete ELF header")
    ident = elf.read(0, 6, "the ELF identification")
    if ident[4] != _ELFCLASS64 or ident[5] != _ELFDATA2LSB:
        bits = {1: "32-bit", 2: "64-bit"}.get(ident[4], "unknown-class")
        order = {1: "little-endian", 2: "big-endian"}.get(ident[5], "unknown byte order")
        raise elf.fail(
            f"not a tensorc artifact: a {bits} {order} ELF file "
            "(tensorc artifacts are 64-bit little-endian)"
        )
    return _HEADER.unpack(elf.read(0, _HEADER.size, "the ELF header"))


def _section_table(elf: _ElfFile) -> tuple[list[tuple[int, ...]], int, str]:
    """All section headers, the index of the section-name table and the machine name."""
    header = _parse_header(elf)
    machine_code = header[2]
    shoff, shentsize, shnum, shstrndx = header[6], header[11], header[12], header[13]
    machine = _MACHINES.get(machine_code, f"machine {machine_code}")
    if shoff == 0:
        raise elf.fail("not a tensorc artifact (an ELF file without section headers)")
    if shentsize < _SECTION_HEADER.size:
        raise elf.fail(f"corrupted ELF file: section header size {shentsize}")
    first = _SECTION_HEADER.unpack(elf.read(shoff, _SECTION_HEADER.size, "section header 0"))
    if shnum == 0:  # more than 0xff00 sections: the count lives in section 0
        shnum = first[5]
    if shstrndx == _SHN_XINDEX:
        shstrndx = first[6]
    if shnum > elf.size // shentsize:
        raise elf.fail(f"truncated or corrupted file: {shnum} section headers do not fit")
    table = elf.read(shoff, shnum * shentsize, "the section header table")
    sections = [
        _SECTION_HEADER.unpack_from(table, index * shentsize) for index in range(shnum)
    ]
    if shstrndx == _SHN_UNDEF or shstrndx >= shnum or shstrndx >= _SHN_LORESERVE:
        raise elf.fail("corrupted ELF file: no section name table")
    return sections, shstrndx, machine


def _section_name(names: bytes, offset: int) -> bytes:
    end = names.find(b"\0", offset)
    return names[offset:end] if end >= 0 else names[offset:]


class ArtifactFile:
    """One open artifact file. Its manifest, ELF header and sections are all read from this one
    open file, so they describe one version of it even if its path is replaced meanwhile; the
    loader dlopens that same version (library.py). Use as a context manager, or ``close()``."""

    def __init__(self, stream: BinaryIO, path: str) -> None:
        self.path = path
        self.stream = stream
        self._elf = _ElfFile(stream, path)

    def __enter__(self) -> ArtifactFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.stream.close()

    def fileno(self) -> int:
        return self.stream.fileno()

    @cached_property
    def _sections(self) -> tuple[list[tuple[int, ...]], int, str]:
        """The section headers, the index of the section-name table and the machine name."""
        return _section_table(self._elf)

    @cached_property
    def _names(self) -> bytes:
        """The section name table."""
        sections, shstrndx, _ = self._sections
        header = sections[shstrndx]
        return self._elf.read(header[4], header[5], "the section name table")

    def info(self) -> ElfInfo:
        """The machine the file is built for (ArtifactError if it is no ELF64 LE file)."""
        return ElfInfo(machine=self._sections[2], size=self._elf.size)

    def _section_header(self, name: str) -> tuple[int, ...] | None:
        names = self._names
        wanted = name.encode()
        for section in self._sections[0]:
            if _section_name(names, section[0]) == wanted:
                return section
        return None

    def section(self, name: str) -> bytes | None:
        """The contents of section ``name``, or None if the file has none."""
        section = self._section_header(name)
        if section is None:
            return None
        if section[1] == _SHT_NOBITS:
            return b""
        if section[5] > _MAX_MANIFEST_BYTES:
            raise self._elf.fail(f"corrupted file: section {name} claims {section[5]} bytes")
        return self._elf.read(section[4], section[5], f"section {name}")

    def manifest(self) -> dict[str, Any]:
        """The validated manifest (see :func:`validate_manifest`), its file checksum checked."""
        data = self.section(MANIFEST_SECTION)
        if data is None:
            raise ArtifactError(
                f"{self.path}: not a tensorc artifact (an ELF file without a "
                f"{MANIFEST_SECTION} section)"
            )
        end = data.find(b"\0")
        if end < 0:
            raise ArtifactError(f"{self.path}: corrupted manifest (not NUL-terminated)")
        try:
            manifest = json.loads(data[:end].decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ArtifactError(
                f"{self.path}: corrupted manifest (invalid JSON: {error})"
            ) from None
        validate_manifest(manifest, self.path)
        self._verify_checksum(manifest)
        return manifest

    def _verify_checksum(self, manifest: Mapping[str, Any]) -> None:
        """Check the manifest's ``file_sha256`` against the whole file, with the digest's own
        64 hex digits read as zeros. Required from format version 3 on."""
        digest = manifest.get(CHECKSUM_FIELD)
        if digest is None and manifest["format_version"] < CHECKSUMMED_FORMAT_VERSION:
            return
        if not isinstance(digest, str) or len(digest) != CHECKSUM_DIGITS:
            raise ArtifactError(f"{self.path}: corrupted manifest (field {CHECKSUM_FIELD!r})")
        section = self._section_header(MANIFEST_SECTION)
        assert section is not None  # the manifest was read from it
        data = self._elf.read(0, self._elf.size, "the file")
        digits_at = checksum_digits_at(data, digest, section[4], section[4] + section[5])
        if digits_at < 0:
            raise ArtifactError(f"{self.path}: corrupted manifest (field {CHECKSUM_FIELD!r})")
        if file_checksum(data, digits_at) != digest:
            raise ArtifactError(
                f"{self.path}: corrupted file (its contents do not match the manifest's "
                f"{CHECKSUM_FIELD}; rebuild it)"
            )


def checksum_digits_at(data: bytes, digest: str, start: int = 0, end: int | None = None) -> int:
    """Where the digits of the manifest field ``"file_sha256":"<digest>"`` start in
    ``data[start:end]``, or -1 when it is not there."""
    prefix = f'"{CHECKSUM_FIELD}":"'.encode()
    position = data.find(prefix + digest.encode() + b'"', start, end)
    return position if position < 0 else position + len(prefix)


def file_checksum(data: bytes, digits_at: int) -> str:
    """The artifact checksum of ``data``: its SHA-256 with the 64 digits at ``digits_at``
    read as zeros (the compiler seals with it, the loader checks with it)."""
    view = memoryview(data)
    hasher = hashlib.sha256(view[:digits_at])
    hasher.update(b"0" * CHECKSUM_DIGITS)
    hasher.update(view[digits_at + CHECKSUM_DIGITS :])
    return hasher.hexdigest()


def open_artifact(path: str | os.PathLike[str]) -> ArtifactFile:
    """Open ``path`` for reading as an :class:`ArtifactFile` (ArtifactError if it cannot be)."""
    stream = _open(path)
    try:
        return ArtifactFile(stream, os.fspath(path))
    except BaseException:
        stream.close()
        raise


def read_section(path: str | os.PathLike[str], name: str) -> bytes | None:
    """The contents of section ``name`` of ELF64 LE file ``path``, or None if it has none."""
    with open_artifact(path) as artifact:
        return artifact.section(name)


def read_elf_info(path: str | os.PathLike[str]) -> ElfInfo:
    """The machine an ELF64 LE file is built for (ArtifactError if it is not one)."""
    with open_artifact(path) as artifact:
        return artifact.info()


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The validated manifest of artifact ``path`` (see :func:`validate_manifest`)."""
    with open_artifact(path) as artifact:
        return artifact.manifest()


def validate_manifest(manifest: object, where: str = "artifact") -> dict[str, Any]:
    """Check the fields every loader relies on; return the manifest."""
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{where}: corrupted manifest (not a JSON object)")
    if manifest.get("format") != FORMAT_NAME:
        raise ArtifactError(
            f"{where}: not a tensorc artifact (manifest format {manifest.get('format')!r}, "
            f"expected {FORMAT_NAME!r})"
        )
    _check_format_version(manifest.get("format_version"), manifest, where)
    _check_fields(manifest, where)
    return manifest


def _check_format_version(version: object, manifest: Mapping[str, Any], where: str) -> None:
    if isinstance(version, bool) or not isinstance(version, int):
        raise ArtifactError(f"{where}: corrupted manifest (format_version {version!r})")
    if version in SUPPORTED_FORMAT_VERSIONS:
        return
    supported = ", ".join(str(v) for v in sorted(SUPPORTED_FORMAT_VERSIONS))
    built_by = manifest.get("compiler_version", "?")
    if version > max(SUPPORTED_FORMAT_VERSIONS):
        advice = "it was built by a newer tensorc: upgrade tensorc_runtime"
    else:
        advice = "it was built by an older tensorc: rebuild it with this version"
    raise ArtifactError(
        f"{where}: unsupported artifact format version {version} (built by tensorc "
        f"{built_by}); this runtime reads version {supported}; {advice}"
    )


def _check_fields(manifest: Mapping[str, Any], where: str) -> None:
    target = manifest.get("target")
    if target not in TARGETS:
        raise ArtifactError(f"{where}: corrupted manifest (unknown target {target!r})")
    expected_types: dict[str, type | tuple[type, ...]] = {
        "triple": str,
        "cpu": str,
        "cpu_features": list,
        "functions": list,
        "compiler_version": str,
    }
    for key, expected in expected_types.items():
        if not isinstance(manifest.get(key), expected):
            raise ArtifactError(
                f"{where}: corrupted manifest (field {key!r} is {manifest.get(key)!r})"
            )
    if not all(isinstance(feature, str) for feature in manifest["cpu_features"]):
        raise ArtifactError(f"{where}: corrupted manifest (cpu_features must be strings)")
    for function in manifest["functions"]:
        if not isinstance(function, dict) or not isinstance(function.get("symbol"), str):
            raise ArtifactError(f"{where}: corrupted manifest (function entry {function!r})")
        symbols = function.get("symbols", [])
        if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
            raise ArtifactError(
                f"{where}: corrupted manifest (symbols of {function.get('name')!r})"
            )
