"""The host CPU: its architecture and instruction-set features, in LLVM's names.

An artifact's manifest lists the ``cpu_features`` its code may use (LLVM names such as
``avx2``, ``fma``, ``avx512f``, ``neon``); :func:`check_cpu` refuses, before ``dlopen``, an
artifact built for another architecture or needing a feature this machine lacks, so that no
artifact ever dies of ``SIGILL``.

Detection reads ``/proc/cpuinfo`` on Linux (the flags the kernel reports as usable, which
already accounts for OS support such as AVX-512 state saving) and maps them to LLVM names.
Where the features cannot be read (another OS, a sandbox without ``/proc``), the check is
skipped with a ``RuntimeWarning`` that says so.
"""

from __future__ import annotations

import functools
import platform
import warnings
from collections.abc import Iterable, Mapping

from .errors import ArtifactError

__all__ = [
    "AARCH64_FEATURES",
    "X86_FEATURES",
    "check_cpu",
    "host_arch",
    "host_cpu_features",
    "missing_features",
    "normalize_arch",
]

# LLVM feature name -> /proc/cpuinfo flag (x86: the "flags" line).
X86_FEATURES: Mapping[str, str] = {
    "sse": "sse",
    "sse2": "sse2",
    "sse3": "pni",
    "ssse3": "ssse3",
    "sse4.1": "sse4_1",
    "sse4.2": "sse4_2",
    "popcnt": "popcnt",
    "lzcnt": "abm",
    "bmi": "bmi1",
    "bmi2": "bmi2",
    "movbe": "movbe",
    "adx": "adx",
    "aes": "aes",
    "pclmul": "pclmulqdq",
    "sha": "sha_ni",
    "gfni": "gfni",
    "vaes": "vaes",
    "vpclmulqdq": "vpclmulqdq",
    "avx": "avx",
    "avx2": "avx2",
    "fma": "fma",
    "f16c": "f16c",
    "avxvnni": "avx_vnni",
    "avx512f": "avx512f",
    "avx512bw": "avx512bw",
    "avx512cd": "avx512cd",
    "avx512dq": "avx512dq",
    "avx512vl": "avx512vl",
    "avx512ifma": "avx512ifma",
    "avx512vbmi": "avx512vbmi",
    "avx512vbmi2": "avx512_vbmi2",
    "avx512vnni": "avx512_vnni",
    "avx512bitalg": "avx512_bitalg",
    "avx512vpopcntdq": "avx512_vpopcntdq",
    "avx512bf16": "avx512_bf16",
    "avx512fp16": "avx512_fp16",
    "amx-tile": "amx_tile",
    "amx-int8": "amx_int8",
    "amx-bf16": "amx_bf16",
}
# LLVM feature name -> /proc/cpuinfo flag (aarch64: the "Features" line).
AARCH64_FEATURES: Mapping[str, str] = {
    "fp-armv8": "fp",
    "neon": "asimd",
    "fullfp16": "asimdhp",
    "fp16fml": "asimdfhm",
    "dotprod": "asimddp",
    "rdm": "asimdrdm",
    "lse": "atomics",
    "crc": "crc32",
    "aes": "aes",
    "sha2": "sha2",
    "bf16": "bf16",
    "i8mm": "i8mm",
    "sve": "sve",
    "sve2": "sve2",
}
_FEATURE_MAPS: Mapping[str, Mapping[str, str]] = {
    "x86_64": X86_FEATURES,
    "aarch64": AARCH64_FEATURES,
}
_CPUINFO_KEYS = {"x86_64": "flags", "aarch64": "Features"}
_ARCH_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64"}


def normalize_arch(name: str) -> str:
    """``x86_64``/``aarch64`` for the usual spellings (``AMD64``, ``arm64``); else lowercased."""
    lowered = name.lower()
    return _ARCH_ALIASES.get(lowered, lowered)


def host_arch() -> str:
    """This machine's architecture, normalized (``x86_64``, ``aarch64``, ...)."""
    return normalize_arch(platform.machine())


@functools.lru_cache(maxsize=1)
def host_cpu_features() -> frozenset[str] | None:
    """The LLVM names of this CPU's features, or ``None`` when they cannot be detected."""
    arch = host_arch()
    feature_map = _FEATURE_MAPS.get(arch)
    if feature_map is None:
        return None
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as stream:
            flags = _cpuinfo_flags(stream, _CPUINFO_KEYS[arch])
    except OSError:
        return None
    if flags is None:
        return None
    return frozenset(llvm_name for llvm_name, flag in feature_map.items() if flag in flags)


def _cpuinfo_flags(lines: Iterable[str], key: str) -> frozenset[str] | None:
    """The flags every processor listed has (their intersection), or None if none is listed."""
    common: set[str] | None = None
    for line in lines:
        name, separator, value = line.partition(":")
        if not separator or name.strip() != key:
            continue
        flags = set(value.split())
        common = flags if common is None else common & flags
    return None if common is None else frozenset(common)


def missing_features(required: Iterable[str], available: Iterable[str]) -> list[str]:
    """The required features not in ``available``, in the order required."""
    present = set(available)
    return [feature for feature in required if feature not in present]


def check_cpu(manifest: Mapping[str, object], where: str) -> None:
    """Refuse (``ArtifactError``) an artifact this machine cannot run: another architecture,
    or ``cpu_features`` the host lacks. Warns and skips the feature check when the host's
    features cannot be detected."""
    triple = str(manifest.get("triple", ""))
    artifact_arch = normalize_arch(triple.split("-", 1)[0])
    arch = host_arch()
    if artifact_arch != arch:
        raise ArtifactError(
            f"{where}: built for {artifact_arch} ({triple}) but this machine is {arch}"
        )
    required = [str(feature) for feature in manifest.get("cpu_features", []) or []]
    if not required:
        return
    available = host_cpu_features()
    if available is None:
        warnings.warn(
            f"{where}: cannot detect this CPU's features on {platform.system()} {arch}; "
            f"loading without checking that it has {', '.join(required)} (the artifact "
            "may crash with an illegal instruction if it does not)",
            RuntimeWarning,
            stacklevel=3,
        )
        return
    missing = missing_features(required, available)
    if missing:
        cpu = manifest.get("cpu", "?")
        raise ArtifactError(
            f"{where}: this CPU lacks features the artifact needs: {', '.join(missing)} "
            f"(it was compiled for cpu {cpu!r}; rebuild it on this machine or for a more "
            "generic cpu)"
        )
