"""Writing files so that no reader ever sees half of one (standard library only, so that
every layer can use it)."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path


def write_atomically(
    path: str | os.PathLike[str], data: bytes | str, executable: bool = False
) -> None:
    """Write to a temporary file beside `path`, then rename: never a half-written output, and
    an existing file stays whole if writing fails. The directory must exist.

    A symbolic link is written through (its target is replaced); a path that is not a regular
    file, such as `/dev/null` or a pipe, is written directly, as it cannot be replaced. A new
    file gets the permissions the umask gives (with the execute bits when `executable`, as a
    linker gives a shared object); a replaced one keeps its own.
    """
    payload = data.encode() if isinstance(data, str) else data
    target = Path(os.path.realpath(path))
    try:
        existing = target.stat()
    except FileNotFoundError:
        existing = None
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        if stat.S_ISDIR(existing.st_mode):
            raise IsADirectoryError(21, "Is a directory", str(path))
        with open(target, "wb") as stream:
            stream.write(payload)
        return
    default = 0o777 if executable else 0o666
    mode = stat.S_IMODE(existing.st_mode) if existing is not None else default & ~_umask()
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _umask() -> int:
    """The process's umask, read without changing it where Linux allows (`os.umask` sets it,
    which races with other threads creating files)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
