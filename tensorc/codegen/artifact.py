"""The artifact container: native code + manifest -> one ELF shared object (docs/abi.md).

    target = host_target()                       # or host_target("x86-64-v3")
    manifest = make_manifest(functions=[...], source_text=text, target=target,
                             options={"opt_level": 2})
    build_shared_object(llvm_ir_text, manifest, "model.so", target=target,
                        extra_c_sources=[support_dir / "pool.c"])

`build_shared_object` emits each LLVM module as a position-independent object with llvmlite,
adds the manifest as the NUL-terminated JSON global ``__tensorc_manifest`` in the ELF section
``.tensorc_manifest``, links everything with ``cc -shared``, writes the file's checksum over
the manifest's ``file_sha256`` placeholder (`seal_checksum`) and renames the result into
place: a failed build leaves neither the output nor a temporary file. The same inputs give a
byte-identical file (nothing depends on time, temporary names or the environment).

Symbol names (docs/abi.md): the entry point of function ``F`` is ``entry_symbol_name("F")``,
``tensorc_F``; every other symbol an artifact defines is ``reserved_symbol_name(...)``, in the
``__tensorc_`` namespace, which no ``tensorc_<identifier>`` can spell, or cannot meet an entry
point at all: internal linkage (``static`` in C), or a ``.`` in its name (``F.kernel0.task``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import llvmlite.binding as llvm
import llvmlite.ir as llvm_ir
from tensorc_runtime.elf import (
    CHECKSUM_DIGITS,
    CHECKSUM_FIELD,
    checksum_digits_at,
    file_checksum,
)

from tensorc.files import write_atomically

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MANIFEST_SECTION",
    "MANIFEST_SYMBOL",
    "BuildError",
    "NativeTarget",
    "build_shared_object",
    "emit_object",
    "encode_manifest",
    "entry_symbol_name",
    "host_target",
    "make_manifest",
    "manifest_module_ir",
    "reserved_symbol_name",
    "seal_checksum",
]

FORMAT_NAME = "tensorc-artifact"
# Version 2: every symbol besides the entry points moved into the reserved `__tensorc_`
# namespace (version 1 had `tensorc_manifest`, `tensorc_invoke`, ... beside `tensorc_F`).
# Version 3: the manifest's last field, `file_sha256`, is a checksum of the whole file.
FORMAT_VERSION = 3
ENTRY_PREFIX = "tensorc_"
RESERVED_PREFIX = "__tensorc_"
MANIFEST_SECTION = ".tensorc_manifest"
MANIFEST_SYMBOL = RESERVED_PREFIX + "manifest"
# The checksum field: the SHA-256 of the whole linked file with this field's 64 hex digits
# read as zeros. The manifest is emitted with zeros (`make_manifest`) and the linked file is
# sealed in place (`seal_checksum`), so any changed byte, code or manifest, is caught at load.
CHECKSUM_PLACEHOLDER = "0" * CHECKSUM_DIGITS
LINK_LIBRARIES = ("-lpthread", "-lm")
C_FLAGS = ("-O2", "-fPIC", "-std=gnu11", "-fno-ident")

ModuleInput = str | bytes | bytearray | llvm.ModuleRef | llvm_ir.Module

# Features recorded in the manifest's `cpu_features` (checked against the host at load): every
# instruction-set extension that LLVM may use when compiling tensorc's IR. The runtime maps
# each of them to a /proc/cpuinfo flag (tensorc_runtime/cpu.py); keep the two lists in step.
X86_RECORDED_FEATURES = frozenset(
    {
        "sse3", "ssse3", "sse4.1", "sse4.2", "popcnt", "lzcnt", "bmi", "bmi2", "movbe",
        "avx", "avx2", "fma", "f16c", "avxvnni",
        "avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl", "avx512ifma",
        "avx512vbmi", "avx512vbmi2", "avx512vnni", "avx512bitalg", "avx512vpopcntdq",
        "avx512bf16", "avx512fp16",
    }
)  # fmt: skip
# Extensions the generated code never needs (crypto, AMX): compiled with them off, so that a
# machine without them can still load the artifact.
X86_DISABLED_FEATURES = frozenset(
    {
        "aes", "vaes", "pclmul", "vpclmulqdq", "sha", "sha512", "gfni", "sm3", "sm4",
        "amx-tile", "amx-int8", "amx-bf16", "amx-fp16", "amx-complex", "amx-fp8",
        "amx-tf32", "amx-avx512", "amx-movrs", "kl", "widekl",
    }
)  # fmt: skip
AARCH64_RECORDED_FEATURES = frozenset(
    {"neon", "fullfp16", "fp16fml", "dotprod", "rdm", "bf16", "i8mm", "sve", "sve2"}
)
# x86-64 micro-architecture levels (the psABI): what each guarantees beyond SSE2.
_X86_V2 = ("sse3", "ssse3", "sse4.1", "sse4.2", "popcnt")
_X86_V3 = (*_X86_V2, "avx", "avx2", "bmi", "bmi2", "f16c", "fma", "lzcnt", "movbe")
_X86_V4 = (*_X86_V3, "avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl")
CPU_LEVEL_FEATURES: dict[str, tuple[str, ...]] = {
    "generic": (),
    "x86-64": (),
    "x86-64-v2": _X86_V2,
    "x86-64-v3": _X86_V3,
    "x86-64-v4": _X86_V4,
}
HOST_CPU_NAMES = ("host", "native")


class BuildError(Exception):
    """Building the shared object failed (invalid LLVM IR, the C compiler or the linker)."""


def entry_symbol_name(function_name: str) -> str:
    """The exported C entry point of the function ``function_name``: ``tensorc_<name>``."""
    return ENTRY_PREFIX + function_name


def reserved_symbol_name(name: str) -> str:
    """``__tensorc_<name>``: a symbol of the artifact's own (the manifest, the fast-call
    helpers, the PTX), never equal to an entry point ``tensorc_<identifier>``."""
    return RESERVED_PREFIX + name


# -- targets ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class NativeTarget:
    """What native code is compiled for.

    ``features`` is the LLVM feature string given to the target machine; ``required_features``
    (sorted) are the instruction-set extensions that code may use, recorded in the manifest
    as ``cpu_features`` and checked against the host before the artifact is loaded.
    """

    triple: str
    cpu: str
    features: str
    required_features: tuple[str, ...]

    @property
    def arch(self) -> str:
        return self.triple.split("-", 1)[0]

    def target_machine(self, opt_level: int = 2) -> llvm.TargetMachine:
        _initialize_llvm()
        target = llvm.Target.from_triple(self.triple)
        return target.create_target_machine(
            cpu=self.cpu,
            features=self.features,
            opt=opt_level,
            reloc="pic",
            codemodel="default",
        )


def host_target(cpu: str | None = None, features: Sequence[str] = ()) -> NativeTarget:
    """The target for code that runs on this machine, or on the CPU named ``cpu``.

    ``cpu`` is ``None``/``"host"``/``"native"`` (this machine: its name and features), an
    x86-64 level (``"x86-64"``, ``"x86-64-v2"`` .. ``"x86-64-v4"``) or ``"generic"``, or any
    LLVM CPU name together with the ``features`` it may use (e.g. ``["avx2", "fma"]``), since
    the runtime must know them to refuse a machine that lacks them. ``features`` add to any
    of these.
    """
    _initialize_llvm()
    triple = llvm.get_process_triple()
    host_name = llvm.get_host_cpu_name()
    recorded = _recorded_features(triple)
    extra = _normalize_features(features)
    if cpu is None or cpu in HOST_CPU_NAMES or cpu == host_name:
        host_features = dict(llvm.get_host_cpu_features())
        for name in X86_DISABLED_FEATURES & set(host_features):
            host_features[name] = False
        for name in extra:
            host_features[name] = True
        enabled = {name for name, on in host_features.items() if on}
        feature_string = ",".join(
            f"{'+' if on else '-'}{name}" for name, on in sorted(host_features.items())
        )
        return NativeTarget(triple, host_name, feature_string, tuple(sorted(enabled & recorded)))
    if cpu in CPU_LEVEL_FEATURES:
        required = set(CPU_LEVEL_FEATURES[cpu]) | set(extra)
    elif extra:
        required = set(extra)
    else:
        raise ValueError(
            f"cpu {cpu!r}: name the features the code may use (e.g. features=['avx2', 'fma']) "
            "or pick 'host', 'generic' or an x86-64 level ('x86-64-v2', 'x86-64-v3', "
            "'x86-64-v4')"
        )
    feature_string = ",".join(f"+{name}" for name in extra)
    return NativeTarget(triple, cpu, feature_string, tuple(sorted(required & recorded)))


def _recorded_features(triple: str) -> frozenset[str]:
    arch = triple.split("-", 1)[0]
    if arch in ("x86_64", "amd64"):
        return X86_RECORDED_FEATURES
    if arch in ("aarch64", "arm64"):
        return AARCH64_RECORDED_FEATURES
    return frozenset()


def _normalize_features(features: Iterable[str]) -> tuple[str, ...]:
    names: list[str] = []
    for feature in features:
        name = feature.lstrip("+").strip()
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", name):
            raise ValueError(f"invalid CPU feature name {feature!r}")
        names.append(name)
    return tuple(names)


_llvm_initialized = False


def _initialize_llvm() -> None:
    global _llvm_initialized
    if _llvm_initialized:
        return
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    # The vectoriser's second, narrower loop for the remainder of each vectorised loop costs
    # ~30% of the compile time of a typical module and saves at most a few scalar iterations.
    llvm.set_option("tensorc", "-enable-epilogue-vectorization=false")
    _llvm_initialized = True


# -- manifest --------------------------------------------------------------------------------


def make_manifest(
    *,
    functions: Sequence[Mapping[str, Any]],
    source_text: str | bytes,
    target: NativeTarget,
    kind: str = "cpu",
    options: Mapping[str, Any] | None = None,
    arch: str | None = None,
    cuda: Mapping[str, Any] | None = None,
    compiler_version: str | None = None,
) -> dict[str, Any]:
    """The manifest of an artifact (docs/abi.md), with every field in its documented order.

    ``functions`` are signature dicts (``tensorc.ir.signature.function_signature`` form); a
    missing ``"symbol"`` defaults to ``tensorc_<name>`` and missing ``"symbols"`` (the order
    of the entry point's ``dims``) to the symbolic dimensions in order of first appearance in
    the parameters. ``kind`` is the manifest's ``target``: ``"cpu"`` or ``"cuda"``.
    """
    if kind not in ("cpu", "cuda"):
        raise ValueError(f"kind must be 'cpu' or 'cuda', got {kind!r}")
    if compiler_version is None:
        from tensorc import __version__ as compiler_version
    source_bytes = source_text.encode() if isinstance(source_text, str) else source_text
    manifest: dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "compiler_version": compiler_version,
        "target": kind,
        "triple": target.triple,
        "cpu": target.cpu,
        "cpu_features": list(target.required_features),
        "arch": arch,
        "source_hash": "sha256:" + hashlib.sha256(source_bytes).hexdigest(),
        "options": dict(options or {}),
        "functions": [_function_entry(function) for function in functions],
    }
    if cuda is not None:
        manifest["cuda"] = dict(cuda)
    manifest[CHECKSUM_FIELD] = CHECKSUM_PLACEHOLDER
    return manifest


def _function_entry(function: Mapping[str, Any]) -> dict[str, Any]:
    entry = dict(function)
    name = entry.get("name")
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"invalid function name in signature: {name!r}")
    entry.setdefault("constraints", [])
    entry.setdefault("symbol", entry_symbol_name(name))
    entry.setdefault("symbols", _symbols_in_order(entry.get("params", [])))
    return entry


def _symbols_in_order(params: Iterable[Mapping[str, Any]]) -> list[str]:
    symbols: list[str] = []
    for param in params:
        for dim in param["shape"]:
            text = str(dim)
            if text.isidentifier() and text not in symbols:
                symbols.append(text)
    return symbols


def encode_manifest(manifest: Mapping[str, Any]) -> bytes:
    """The manifest as stored: compact ASCII JSON (never a NUL inside) plus a NUL."""
    return json.dumps(manifest, ensure_ascii=True, separators=(",", ":")).encode() + b"\0"


def manifest_module_ir(manifest: Mapping[str, Any]) -> str:
    """LLVM IR defining ``const char __tensorc_manifest[]`` in section ``.tensorc_manifest``."""
    data = encode_manifest(manifest)
    escaped = "".join(
        chr(byte) if 0x20 <= byte < 0x7F and byte not in (0x22, 0x5C) else f"\\{byte:02X}"
        for byte in data
    )
    return (
        f'@{MANIFEST_SYMBOL} = constant [{len(data)} x i8] c"{escaped}", '
        f'section "{MANIFEST_SECTION}", align 1\n'
    )


# -- objects and linking ---------------------------------------------------------------------


def emit_object(module: ModuleInput, target: NativeTarget, opt_level: int | None = 2) -> bytes:
    """An ELF object from LLVM IR text, a parsed module or an llvmlite.ir module (bytes pass
    through). ``opt_level`` 0..3 runs LLVM's default pipeline at that level first; ``None``
    emits the module as it is (the caller optimised it)."""
    if isinstance(module, (bytes, bytearray)):
        return bytes(module)
    machine = target.target_machine(opt_level if opt_level is not None else 2)
    parsed = _parse(module)
    parsed.triple = target.triple
    parsed.data_layout = str(machine.target_data)
    if opt_level:
        tuning = llvm.create_pipeline_tuning_options(speed_level=opt_level)
        tuning.slp_vectorization = opt_level >= 2
        tuning.loop_vectorization = opt_level >= 2
        passes = llvm.create_pass_builder(machine, tuning)
        passes.getModulePassManager().run(parsed, passes)
    return machine.emit_object(parsed)


def _parse(module: ModuleInput) -> llvm.ModuleRef:
    if isinstance(module, llvm.ModuleRef):
        try:
            module.verify()
        except RuntimeError as error:
            raise BuildError(f"invalid LLVM module: {error}") from error
        return module
    text = str(module) if isinstance(module, llvm_ir.Module) else module
    if not isinstance(text, str):
        raise TypeError(f"expected LLVM IR text, a module or object bytes, got {type(module)}")
    _initialize_llvm()
    try:
        parsed = llvm.parse_assembly(text)
        parsed.verify()
    except RuntimeError as error:
        raise BuildError(f"invalid LLVM IR: {error}") from error
    return parsed


def build_shared_object(
    modules: ModuleInput | Sequence[ModuleInput],
    manifest: Mapping[str, Any],
    output_path: str | os.PathLike[str],
    extra_c_sources: Sequence[str | os.PathLike[str]] = (),
    *,
    target: NativeTarget | None = None,
    opt_level: int | None = 2,
    cc: str | None = None,
    extra_link_args: Sequence[str] = (),
) -> Path:
    """Link ``modules`` (LLVM IR text, parsed or llvmlite.ir modules, or object-file bytes),
    the manifest and ``extra_c_sources`` into the shared object ``output_path``.

    ``target`` defaults to the one the manifest names (``host_target(manifest["cpu"])``).
    The output is written atomically; on any failure ``BuildError`` is raised and nothing is
    left behind. Returns the output path.
    """
    if target is None:
        target = host_target(manifest.get("cpu"))
    if manifest.get("triple") not in (None, target.triple):
        raise ValueError(f"manifest triple {manifest['triple']!r} is not {target.triple!r}")
    single = (str, bytes, bytearray, llvm.ModuleRef, llvm_ir.Module)
    inputs = [modules] if isinstance(modules, single) else list(modules)
    objects = [emit_object(module, target, opt_level) for module in inputs]
    objects.append(emit_object(manifest_module_ir(manifest), target, opt_level=None))
    output = Path(output_path)
    compiler = cc or os.environ.get("CC") or "cc"
    if shutil.which(compiler) is None:
        raise BuildError(f"cannot link {output.name}: C compiler {compiler!r} not found")
    with tempfile.TemporaryDirectory(prefix="tensorc-link-") as workdir:
        object_paths = []
        for index, data in enumerate(objects):
            path = Path(workdir) / f"module{index}.o"
            path.write_bytes(data)
            object_paths.append(str(path))
        c_objects = [
            _compile_c(compiler, Path(source), Path(workdir) / f"support{index}.o")
            for index, source in enumerate(extra_c_sources)
        ]
        linked = Path(workdir) / "linked" / output.name  # apart from the objects' names
        linked.parent.mkdir()
        _link_atomically(compiler, [*object_paths, *c_objects], linked, output, extra_link_args)
    return output


def _compile_c(compiler: str, source: Path, object_path: Path) -> str:
    command = [compiler, *C_FLAGS, "-c", str(source), "-o", str(object_path)]
    _run_tool(command, f"compiling {source}")
    return str(object_path)


def _link_atomically(
    compiler: str,
    objects: Sequence[str],
    linked: Path,
    output: Path,
    extra_link_args: Sequence[str],
) -> None:
    """Link into the scratch path ``linked``, seal the checksum, then write ``output`` with
    `write_atomically`: the file appears whole or not at all, with the permissions
    ``cc -o output`` would give it, and a symbolic link or a path that is not a regular file
    (``/dev/null``) is written through."""
    command = [
        compiler,
        "-shared",
        "-Wl,-z,defs",
        "-Wl,-z,noexecstack",
        "-o",
        str(linked),
        *objects,
        *extra_link_args,
        *LINK_LIBRARIES,
    ]
    _run_tool(command, f"linking {output.name}")
    write_atomically(output, seal_checksum(linked.read_bytes()), executable=True)


def seal_checksum(data: bytes) -> bytes:
    """The linked file ``data`` with its manifest's ``file_sha256`` placeholder replaced by the
    file's checksum (`tensorc_runtime.elf.file_checksum`, which the loader checks). A manifest
    made without the field (a hand-made one) is left as it is."""
    digits_at = checksum_digits_at(data, CHECKSUM_PLACEHOLDER)
    if digits_at < 0:
        return data
    if checksum_digits_at(data, CHECKSUM_PLACEHOLDER, digits_at) >= 0:
        raise BuildError(f"the linked file holds more than one {CHECKSUM_FIELD} placeholder")
    digest = file_checksum(data, digits_at).encode()
    return data[:digits_at] + digest + data[digits_at + len(digest) :]


def _run_tool(command: Sequence[str], what: str) -> None:
    try:
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as error:
        raise BuildError(f"{what}: cannot run {command[0]!r}: {error}") from error
    if completed.returncode != 0:
        output = (completed.stderr or completed.stdout).strip()
        raise BuildError(f"{what} failed (exit {completed.returncode}):\n{output}")

