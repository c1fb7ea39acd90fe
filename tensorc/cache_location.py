"""Where tensorc keeps what it caches on disk (compiled artifacts, support objects, parser
tables): `$TENSORC_CACHE_DIR`, else `$XDG_CACHE_HOME/tensorc`, else `~/.cache/tensorc`.

A module of its own (standard library only) so that every layer can ask."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENVIRONMENT = "TENSORC_CACHE_DIR"


def cache_dir() -> Path:
    configured = os.environ.get(CACHE_ENVIRONMENT)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tensorc"
