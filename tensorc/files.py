"""Writing files so that no reader ever sees half of one (standard library only, so that
every layer can use it)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(path: str | os.PathLike[str], data: bytes | str) -> None:
    """Write to a temporary file beside `path`, then rename: never a half-written output, and
    an existing file stays whole if writing fails. The directory must exist."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    payload = data.encode() if isinstance(data, str) else data
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=directory)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
