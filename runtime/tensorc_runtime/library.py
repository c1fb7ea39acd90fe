"""``dlopen`` of an artifact, always of the file version whose manifest the loader read.

The dynamic loader keeps every library it opened under the name it was opened by, and ctypes
never closes one: ``dlopen`` of a name it has seen returns the library already mapped under
that name, whatever the file at that path holds now. A rebuilt artifact written to the same
path (a new file replacing the old one) would so run the old code under the new manifest, or
its entry points would be called with the new signature's arguments.

So :func:`open_library` takes the artifact's open file (whose manifest the loader read) and
keeps, per process, the libraries it opened by the identity of their file (device, inode,
size, modification and change time) and the paths it has dlopened by name:

* a file version opened before gets that same library (no ``dlopen`` at all);
* a path never dlopened by name, that still holds the open file, is dlopened by name (checked
  again after ``dlopen``, in case the path was replaced meanwhile);
* anything else -- a rebuilt artifact at a path already dlopened, or a path replaced since it
  was opened here -- is copied from the open file to a private temporary file (beside the
  artifact, else in the temporary directory) of a name never used before, dlopened, and the
  copy unlinked at once (its mapping stays valid).

Modules loaded earlier keep their own library and old code; each new module gets the code of
the file its manifest came from. The bookkeeping is guarded by one lock, so loads may come
from any thread.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import shutil
import tempfile
import threading
from typing import NamedTuple

from .elf import ArtifactFile
from .errors import ArtifactError

__all__ = ["FileIdentity", "file_identity", "open_library"]


class FileIdentity(NamedTuple):
    """What tells one version of a file from another: a file replaced at its path has another
    inode, one rewritten in place another size or modification time."""

    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int


def file_identity(status: os.stat_result) -> FileIdentity:
    return FileIdentity(
        status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns
    )


_lock = threading.Lock()
_libraries: dict[FileIdentity, ctypes.CDLL] = {}  # every file version opened, by identity
_named: set[str] = set()  # absolute paths dlopened by name (bound to their first file)
_copy_numbers = itertools.count()  # copies' names are never used twice in a process


def _reset_lock_in_child() -> None:
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_lock_in_child)


def open_library(artifact: ArtifactFile) -> ctypes.CDLL:
    """The library of exactly the file version ``artifact`` has open (ArtifactError if it
    cannot be loaded)."""
    identity = file_identity(os.fstat(artifact.fileno()))
    name = os.path.abspath(artifact.path)
    with _lock:
        library = _libraries.get(identity)
        if library is not None:
            return library
        library = _open_by_name(name, identity, artifact.path)
        if library is None:
            library = _open_copy(name, artifact)
        _libraries[identity] = library
        return library


def _path_identity(name: str) -> FileIdentity | None:
    try:
        return file_identity(os.stat(name))
    except OSError:
        return None


def _open_by_name(name: str, identity: FileIdentity, where: str) -> ctypes.CDLL | None:
    """``dlopen(name)`` when that is sure to map the file version ``identity``; else None."""
    if name in _named or _path_identity(name) != identity:
        return None
    library = _dlopen(name, where)
    _named.add(name)
    if _path_identity(name) != identity:  # replaced while dlopen ran: which file is unknown
        return None
    return library


def _open_copy(name: str, artifact: ArtifactFile) -> ctypes.CDLL:
    """dlopen a private copy of the open file (beside it, else in the temporary directory)."""
    directories = [os.path.dirname(name)]
    if tempfile.gettempdir() not in directories:
        directories.append(tempfile.gettempdir())
    prefix = f".{os.path.basename(name)}.{os.getpid()}-{next(_copy_numbers)}."
    failure: ArtifactError | None = None
    for directory in directories:
        try:
            handle, copy = tempfile.mkstemp(prefix=prefix, suffix=".so", dir=directory)
        except OSError as error:
            failure = ArtifactError(
                f"{artifact.path}: cannot copy the rebuilt shared object to load it: {error}"
            )
            continue
        try:
            with os.fdopen(handle, "wb") as stream:
                artifact.stream.seek(0)
                shutil.copyfileobj(artifact.stream, stream)
            return _dlopen(copy, artifact.path)
        except OSError as error:
            failure = ArtifactError(
                f"{artifact.path}: cannot copy the rebuilt shared object to load it: {error}"
            )
        except ArtifactError as error:
            failure = error
        finally:
            try:
                os.unlink(copy)
            except OSError:
                pass
    assert failure is not None
    raise failure


def _dlopen(name: str, where: str) -> ctypes.CDLL:
    try:
        return ctypes.CDLL(name, mode=os.RTLD_LOCAL)
    except OSError as error:
        raise ArtifactError(f"{where}: cannot load the shared object: {error}") from error
