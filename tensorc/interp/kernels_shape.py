"""Reference kernels for the shape and gather/scatter ``tc`` ops.

Shape ops (``broadcast_to``, ``reshape``, ``transpose``, ``slice``, ``concat``) always return
fresh C-contiguous arrays, never views of their operands. Gathers check their indices:
an index outside ``[-n, n)`` raises ``IndexError`` (negative indices count from the end);
``one_hot`` instead gives a row of zeros for any index outside ``[0, n)``, as JAX does.
``scatter_add`` and ``scatter_add_along_axis`` are the transposes of ``take`` and
``take_along_axis`` (used by autodiff) and accumulate duplicate indices with ``np.add.at``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tensorc.interp.context import KernelContext, as_result

Kernel = Callable[..., np.ndarray]


def _fresh(array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """A new C-contiguous array of ``dtype`` holding ``array``'s values."""
    return np.array(array, dtype=dtype, order="C", copy=True)


def _check_indices(op_name: str, indices: np.ndarray, axis: int, size: int) -> None:
    """Raise IndexError naming the first index (C order) outside ``[-size, size)``."""
    out_of_range = (indices < -size) | (indices >= size)
    if not out_of_range.any():
        return
    first_bad = indices[out_of_range].flat[0]
    raise IndexError(
        f"{op_name}: index {int(first_bad)} is out of range for axis {axis} with size {size}"
    )


def _wrap_negative(indices: np.ndarray, size: int) -> np.ndarray:
    """Indices already checked to lie in ``[-size, size)``, mapped to ``[0, size)`` as int64."""
    indices = indices.astype(np.int64)
    return np.where(indices < 0, indices + size, indices)


def _short_name(op_name: str) -> str:
    return op_name.removeprefix("tc.")


# ------------------------------------------------------------------------ shape ops


def broadcast_to(ctx: KernelContext, x: np.ndarray) -> np.ndarray:
    return _fresh(np.broadcast_to(x, ctx.shape), ctx.dtype)


def reshape(ctx: KernelContext, x: np.ndarray) -> np.ndarray:
    return _fresh(np.reshape(x, ctx.shape, order="C"), ctx.dtype)


def transpose(ctx: KernelContext, x: np.ndarray, perm: list[int]) -> np.ndarray:
    return _fresh(np.transpose(x, perm), ctx.dtype)


def slice_(
    ctx: KernelContext,
    x: np.ndarray,
    starts: list[int | None],
    stops: list[int | None],
    steps: list[int | None],
) -> np.ndarray:
    """Python slicing per axis (negative bounds count from the end; bounds clamp)."""
    if not len(starts) == len(stops) == len(steps) == x.ndim:
        raise ValueError(
            f"{ctx.op_name}: starts/stops/steps need one entry per axis of a rank-{x.ndim} "
            f"operand, got {len(starts)}/{len(stops)}/{len(steps)}"
        )
    index = tuple(slice(start, stop, step) for start, stop, step in zip(starts, stops, steps))
    return _fresh(x[index], ctx.dtype)


def concat(ctx: KernelContext, *xs: np.ndarray, axis: int) -> np.ndarray:
    if not xs:
        return np.zeros(ctx.shape, dtype=ctx.dtype)
    return _fresh(np.concatenate(xs, axis=axis), ctx.dtype)


# --------------------------------------------------------------------------- gathers


def take(ctx: KernelContext, x: np.ndarray, idx: np.ndarray, axis: int) -> np.ndarray:
    """``np.take``: result shape ``x.shape[:axis] + idx.shape + x.shape[axis+1:]``."""
    size = x.shape[axis]
    _check_indices(_short_name(ctx.op_name), idx, axis, size)
    gathered = np.take(x, _wrap_negative(idx, size), axis=axis)
    return as_result(gathered, ctx.dtype)


def take_along_axis(ctx: KernelContext, x: np.ndarray, idx: np.ndarray, axis: int) -> np.ndarray:
    """``np.take_along_axis`` (non-axis dimensions broadcast as NumPy broadcasts them)."""
    size = x.shape[axis]
    _check_indices(_short_name(ctx.op_name), idx, axis, size)
    gathered = np.take_along_axis(x, _wrap_negative(idx, size), axis=axis)
    return _fresh(gathered, ctx.dtype)


def one_hot(ctx: KernelContext, idx: np.ndarray, n: int) -> np.ndarray:
    """``idx.shape + (n,)``: 1 where the last coordinate equals the index, else 0."""
    classes = np.arange(n, dtype=np.int64)
    hits = np.asarray(idx, dtype=np.int64)[..., np.newaxis] == classes
    return hits.astype(ctx.dtype)


def scatter_add(
    ctx: KernelContext, updates: np.ndarray, idx: np.ndarray, axis: int, size: int
) -> np.ndarray:
    """The transpose of ``take``: ``out[..., idx[j], ...] += updates[..., j, ...]``.

    Result shape ``updates.shape[:axis] + (size,) + updates.shape[axis + idx.ndim:]``.
    """
    _check_indices(_short_name(ctx.op_name), idx, axis, size)
    result = np.zeros(ctx.shape, dtype=ctx.dtype)
    index = (slice(None),) * axis + (_wrap_negative(idx, size),)
    np.add.at(result, index, updates.astype(ctx.dtype, copy=False))
    return result


def scatter_add_along_axis(
    ctx: KernelContext, updates: np.ndarray, idx: np.ndarray, axis: int, size: int
) -> np.ndarray:
    """The transpose of ``take_along_axis``: ``out[i0.., idx[i0..], ..] += updates[i0..]``.

    The result normally has ``updates``' shape with ``size`` on ``axis``; ``idx`` broadcasts
    against ``updates`` along the other axes, as it did in ``take_along_axis``. A result
    dimension of 1 where ``updates`` has more (the gathered operand was broadcast) sums them.
    """
    _check_indices(_short_name(ctx.op_name), idx, axis, size)
    indices = np.broadcast_to(_wrap_negative(idx, size), updates.shape)
    grid = np.indices(updates.shape, sparse=True)
    index = tuple(
        indices if dim == axis else grid[dim] * (ctx.shape[dim] != 1) for dim in range(updates.ndim)
    )
    result = np.zeros(ctx.shape, dtype=ctx.dtype)
    np.add.at(result, index, updates.astype(ctx.dtype, copy=False))
    return result


SHAPE_KERNELS: dict[str, Kernel] = {
    "tc.broadcast_to": broadcast_to,
    "tc.reshape": reshape,
    "tc.transpose": transpose,
    "tc.slice": slice_,
    "tc.concat": concat,
    "tc.take": take,
    "tc.take_along_axis": take_along_axis,
    "tc.one_hot": one_hot,
    "tc.scatter_add": scatter_add,
    "tc.scatter_add_along_axis": scatter_add_along_axis,
}
