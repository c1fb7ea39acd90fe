"""The on-disk cache of the CPU backend (no llvmlite here: a cache hit must not import it).

    TENSORC_CACHE_DIR   the cache directory (default `$XDG_CACHE_HOME/tensorc`, else
                        `~/.cache/tensorc`)

Two kinds of entries live there:

    artifacts/<key>.so    `tensorc.compile(..., target="cpu")` results, keyed by
                          `artifact_key` (source, options, compiler version, host CPU)
    support/<name>-<key>.o  objects linked into every artifact (the thread pool, the GEMMs),
                          built once per machine and compiler version

Every write is a temporary file renamed into place, so concurrent processes never see a
partial entry; a corrupted or unreadable entry is simply rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tensorc.cache_location import cache_dir
from tensorc.files import write_atomically


def host_fingerprint() -> dict[str, Any]:
    """What identifies this machine's CPU for code generation, read without llvmlite."""
    from tensorc_runtime.cpu import host_cpu_features

    features = host_cpu_features()
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith(("model name", "CPU part")):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "machine": platform.machine(),
        "model": model,
        "features": sorted(features) if features is not None else None,
    }


def artifact_key(source: str, options: Mapping[str, Any], compiler_version: str) -> str:
    payload = json.dumps(
        {
            "source": source,
            "options": dict(options),
            "compiler": compiler_version,
            "host": host_fingerprint(),
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def artifact_path(key: str) -> Path:
    return cache_dir() / "artifacts" / f"{key}.so"


_SUPPORT: dict[str, bytes] = {}


def support_object(name: str, key: str, build: Callable[[], bytes]) -> bytes:
    """The object `name` for `key`: from memory, else from the disk cache, else built (and
    stored in both). A cache directory that cannot be written is not an error."""
    memory_key = f"{name}-{key}"
    if memory_key in _SUPPORT:
        return _SUPPORT[memory_key]
    path = cache_dir() / "support" / f"{memory_key}.o"
    data: bytes | None = None
    try:
        data = path.read_bytes()
    except OSError:
        data = None
    if not data or not data.startswith(b"\x7fELF"):
        data = build()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(path, data)
        except OSError:
            pass
    _SUPPORT[memory_key] = data
    return data
