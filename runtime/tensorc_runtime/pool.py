"""A caching allocator for large result arrays.

A fresh multi-megabyte NumPy array costs a page fault per 4 KiB page the first time the
kernel writes it (glibc hands such blocks to ``mmap`` and back on every free): for a 64 MB
result that is ~6 ms, more than the whole fused GELU kernel. Like PyTorch's CUDA caching
allocator, the runtime therefore keeps the memory of large results after the caller drops
them and hands it out again, already mapped.

Results are still new arrays owned by the caller (SPEC section 4): a pooled buffer is reused
only when no array refers to it any more. Every NumPy view of a result -- slices, reshapes,
``memoryview``s of those -- keeps a reference to the buffer's owning array (NumPy collapses
``base`` chains to the owner), so "nobody refers to it" is exactly "its reference count is
the pool's own", which :func:`sys.getrefcount` tells in O(1). Raw pointers taken from a
result (``ctypes.data``) are as unsafe after the result dies as they are with ``np.empty``.

The pool keeps at most ``TENSORC_RESULT_POOL_BYTES`` (default 512 MiB; 0 turns it off; off on
Pythons other than CPython with the GIL) of buffers nobody uses; buffers are 64-byte aligned,
and only results of at least ``MIN_POOLED_BYTES`` come from it, so small calls pay nothing.
"""

from __future__ import annotations

import os
import sys
import threading

import numpy as np

__all__ = ["MIN_POOLED_BYTES", "ResultPool", "default_pool"]

MIN_POOLED_BYTES = 1 << 20
ALIGNMENT = 64
DEFAULT_LIMIT_BYTES = 512 << 20


def _refcounts_are_exact() -> bool:
    """The pool's test needs CPython's reference counts, with the GIL (free-threaded builds
    count references per thread)."""
    if sys.implementation.name != "cpython":
        return False
    gil_enabled = getattr(sys, "_is_gil_enabled", None)
    return gil_enabled is None or bool(gil_enabled())


def _pool_limit_from_environment() -> int:
    if not _refcounts_are_exact():
        return 0
    text = os.environ.get("TENSORC_RESULT_POOL_BYTES", "").strip()
    if not text:
        return DEFAULT_LIMIT_BYTES
    try:
        return max(0, int(text))
    except ValueError:
        return DEFAULT_LIMIT_BYTES


def _unreferenced_count() -> int:
    """``sys.getrefcount`` of a buffer referenced only by the pool's list, seen from the scan
    loop in :meth:`ResultPool.take` (measured, not assumed: it differs between CPython
    versions)."""
    buffers = [np.empty(ALIGNMENT, np.uint8)]
    for buffer in buffers:
        return sys.getrefcount(buffer)
    raise AssertionError("unreachable")


class ResultPool:
    """Hands out aligned uninitialised arrays, reusing the memory of dropped ones."""

    def __init__(self, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        self._buffers: list[np.ndarray] = []  # raw uint8 blocks, oldest first
        self._lock = threading.Lock()
        self._free_count = _unreferenced_count() if limit_bytes > 0 else 0
        self.reused = 0
        self.allocated = 0

    def take(self, shape: tuple[int, ...], dtype: np.dtype, nbytes: int) -> np.ndarray:
        """An uninitialised C-order array of ``shape`` and ``dtype`` (``nbytes`` bytes),
        64-byte aligned; from a dropped buffer of between ``nbytes`` and twice that when
        there is one."""
        if self.limit_bytes <= 0 or nbytes > self.limit_bytes:
            return self._fresh(shape, dtype, nbytes, keep=False)
        with self._lock:
            for buffer in self._buffers:  # the same loop shape as `_unreferenced_count`
                if sys.getrefcount(buffer) != self._free_count:
                    continue
                capacity = buffer.nbytes - ALIGNMENT
                if nbytes <= capacity <= 2 * nbytes:
                    self.reused += 1
                    return self._view(buffer, shape, dtype)
            return self._fresh(shape, dtype, nbytes, keep=True)

    def _fresh(
        self, shape: tuple[int, ...], dtype: np.dtype, nbytes: int, keep: bool
    ) -> np.ndarray:
        buffer = np.empty(nbytes + ALIGNMENT, np.uint8)
        self.allocated += 1
        array = self._view(buffer, shape, dtype)
        if keep:
            self._buffers.append(buffer)
            self._trim()
        return array

    @staticmethod
    def _view(buffer: np.ndarray, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        offset = -buffer.__array_interface__["data"][0] % ALIGNMENT
        return np.ndarray(shape, dtype, buffer, offset)

    def _trim(self) -> None:
        """Drop the oldest unused buffers while the unused ones exceed the limit."""
        unused = []
        for buffer in self._buffers:  # the same loop shape as `_unreferenced_count`
            if sys.getrefcount(buffer) == self._free_count:
                unused.append(buffer)
        excess = sum(b.nbytes for b in unused) - self.limit_bytes
        if excess <= 0:
            return
        dropped: set[int] = set()
        for candidate in unused:
            if excess <= 0:
                break
            dropped.add(id(candidate))
            excess -= candidate.nbytes
        self._buffers = [b for b in self._buffers if id(b) not in dropped]

    def clear(self) -> None:
        """Forget every buffer (arrays still in use keep their memory)."""
        with self._lock:
            self._buffers = []

    @property
    def retained_bytes(self) -> int:
        return sum(buffer.nbytes for buffer in self._buffers)


default_pool = ResultPool(_pool_limit_from_environment())
