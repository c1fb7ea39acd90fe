"""NumPy's array struct as the fast call reads it: the offsets of two members, verified.

``PyArrayObject_fields`` (NumPy's ``ndarraytypes.h``) starts with the object header, then
``data``, ``nd``, ``dimensions``, ``strides``, ``base``, ``descr``, ``flags``. The fast call
(fastcall.py) hands native code the address of an array's ``data`` member (``id(array)`` plus
:data:`DATA_OFFSET`), and the artifact's ``__tensorc_invoke_checked`` also reads the ``flags``
member, :data:`FLAGS_OFFSET` bytes after ``data`` (docs/abi.md).

Neither offset is assumed: each is found at import by probing arrays whose data addresses
and flags Python reports (``__array_interface__``, ``arr.flags.num``), and is ``None`` when no
candidate matches every probe (another Python implementation, a NumPy with another layout).
The runtime then falls back to reading the same facts through NumPy's Python API.
"""

from __future__ import annotations

import ctypes
import sys

import numpy as np

__all__ = ["DATA_OFFSET", "FLAGS_OFFSET", "FLAGS_REQUIRED", "data_address"]

# NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED: the flags an argument needs to be used in place.
FLAGS_REQUIRED = 0x0001 | 0x0100


def _read_pointer(address: int) -> int:
    return ctypes.c_void_p.from_address(address).value or 0


def _read_int32(address: int) -> int:
    return ctypes.c_int32.from_address(address).value


def _interface_address(array: np.ndarray) -> int:
    return int(array.__array_interface__["data"][0])


def _probes() -> list[np.ndarray]:
    """Arrays that differ in data address, rank, contiguity, alignment and writeability."""
    probes = [np.empty(n, dtype) for n, dtype in ((3, np.float32), (17, np.int64), (0, np.bool_))]
    grid = np.arange(12.0).reshape(3, 4)
    raw = np.zeros(4 * 9 + 1, np.uint8)
    misaligned = np.frombuffer(raw.data, np.float32, count=9, offset=1)
    frozen = np.arange(5, dtype=np.int32)
    frozen.flags.writeable = False
    probes += [probes[1][5:], grid[1:, ::2], grid.T, np.zeros((), np.float64), misaligned, frozen]
    return probes


def _find_data_offset(probes: list[np.ndarray]) -> int | None:
    """Offset of ``PyArrayObject_fields.data`` from ``id(array)``, if it can be verified."""
    if sys.implementation.name != "cpython":
        return None
    for offset in (object.__basicsize__, *range(8, 64, 8)):
        if all(_read_pointer(id(a) + offset) == _interface_address(a) for a in probes):
            return offset
    return None


def _find_flags_offset(probes: list[np.ndarray], data_offset: int | None) -> int | None:
    """Offset of ``PyArrayObject_fields.flags`` from the ``data`` member, if it can be
    verified: the int32 there equals ``arr.flags.num`` for every probe, and the probes'
    flags differ in the bits of :data:`FLAGS_REQUIRED`."""
    if data_offset is None:
        return None
    required = {a.flags.num & FLAGS_REQUIRED for a in probes}
    if len(required) < 2:
        return None
    size = np.ndarray.__basicsize__  # read only inside the struct
    for offset in range(8, size - data_offset - 3, 4):
        if all(_read_int32(id(a) + data_offset + offset) == a.flags.num for a in probes):
            return offset
    return None


def _find_offsets() -> tuple[int | None, int | None]:
    """(DATA_OFFSET, FLAGS_OFFSET), both verified on one set of probes."""
    probes = _probes()
    data_offset = _find_data_offset(probes)
    return data_offset, _find_flags_offset(probes, data_offset)


DATA_OFFSET, FLAGS_OFFSET = _find_offsets()


def data_address(array: np.ndarray) -> int:
    """The address of ``array``'s first element (the caller keeps ``array`` alive)."""
    if DATA_OFFSET is None:
        return int(array.ctypes.data)
    return _read_pointer(id(array) + DATA_OFFSET)
