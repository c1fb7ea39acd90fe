"""Reference kernels for the reduction ``tc`` ops: sum, prod, max, min, mean, argmax, argmin.

``axes`` are non-negative and sorted; an empty list reduces nothing (the kernel copies and
casts to the result dtype). Accumulation happens in the result dtype, so ``sum``/``prod`` of
int32 or bool wrap in int32, except that float16 accumulates in float32 (as NumPy's own
``mean`` does, and as backends do) and the integer ``mean`` sums in float64 before rounding.
Empty reductions give the identity: sum 0, prod 1, max -inf / the integer minimum / False,
min +inf / the integer maximum / True, mean NaN; ``argmax``/``argmin`` over nothing give 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from tensorc.interp.context import KernelContext, as_result

Kernel = Callable[..., np.ndarray]


def accumulator_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype a reduction producing ``dtype`` accumulates in: float16 widens to float32."""
    if dtype == np.float16:
        return np.dtype(np.float32)
    return np.dtype(dtype)


def _lowest(dtype: np.dtype) -> object:
    """The identity of ``max`` for ``dtype``."""
    if dtype == np.bool_:
        return False
    if dtype.kind == "f":
        return -np.inf
    return np.iinfo(dtype).min


def _highest(dtype: np.dtype) -> object:
    """The identity of ``min`` for ``dtype``."""
    if dtype == np.bool_:
        return True
    if dtype.kind == "f":
        return np.inf
    return np.iinfo(dtype).max


def _copy_as_result(ctx: KernelContext, x: np.ndarray) -> np.ndarray:
    return x.astype(ctx.dtype, copy=True)


def sum_(ctx: KernelContext, x: np.ndarray, axes: list[int], keepdims: bool = False) -> np.ndarray:
    if not axes:
        return _copy_as_result(ctx, x)
    total = np.sum(x, axis=tuple(axes), dtype=accumulator_dtype(ctx.dtype), keepdims=keepdims)
    return as_result(total, ctx.dtype)


def prod(ctx: KernelContext, x: np.ndarray, axes: list[int], keepdims: bool = False) -> np.ndarray:
    if not axes:
        return _copy_as_result(ctx, x)
    product = np.prod(x, axis=tuple(axes), dtype=accumulator_dtype(ctx.dtype), keepdims=keepdims)
    return as_result(product, ctx.dtype)


def max_(ctx: KernelContext, x: np.ndarray, axes: list[int], keepdims: bool = False) -> np.ndarray:
    if not axes:
        return _copy_as_result(ctx, x)
    largest = np.max(x, axis=tuple(axes), keepdims=keepdims, initial=_lowest(x.dtype))
    return as_result(largest, ctx.dtype)


def min_(ctx: KernelContext, x: np.ndarray, axes: list[int], keepdims: bool = False) -> np.ndarray:
    if not axes:
        return _copy_as_result(ctx, x)
    smallest = np.min(x, axis=tuple(axes), keepdims=keepdims, initial=_highest(x.dtype))
    return as_result(smallest, ctx.dtype)


def mean(ctx: KernelContext, x: np.ndarray, axes: list[int], keepdims: bool = False) -> np.ndarray:
    """Sum / count; integers and bools sum in float64, an empty reduction gives NaN."""
    if not axes:
        return _copy_as_result(ctx, x)
    count = math.prod(x.shape[axis] for axis in axes)
    if count == 0:
        return np.full(ctx.shape, np.nan, dtype=ctx.dtype)
    accumulator = np.dtype(np.float64) if x.dtype.kind in "biu" else accumulator_dtype(x.dtype)
    total = np.sum(x, axis=tuple(axes), dtype=accumulator, keepdims=keepdims)
    return as_result(np.asarray(total) / accumulator.type(count), ctx.dtype)


def _arg_extreme(
    ctx: KernelContext,
    x: np.ndarray,
    axis: int | None,
    keepdims: bool,
    find: Callable[..., np.ndarray],
) -> np.ndarray:
    """``np.argmax``/``np.argmin`` as int32; first occurrence wins, NaN is the extreme."""
    if axis is None:
        if x.size == 0:
            return np.zeros(ctx.shape, dtype=ctx.dtype)
        return np.full(ctx.shape, find(x), dtype=ctx.dtype)
    if x.shape[axis] == 0:
        return np.zeros(ctx.shape, dtype=ctx.dtype)
    return as_result(find(x, axis=axis, keepdims=keepdims), ctx.dtype)


def argmax(
    ctx: KernelContext, x: np.ndarray, axis: int | None = None, keepdims: bool = False
) -> np.ndarray:
    return _arg_extreme(ctx, x, axis, keepdims, np.argmax)


def argmin(
    ctx: KernelContext, x: np.ndarray, axis: int | None = None, keepdims: bool = False
) -> np.ndarray:
    return _arg_extreme(ctx, x, axis, keepdims, np.argmin)


REDUCE_KERNELS: dict[str, Kernel] = {
    "tc.sum": sum_,
    "tc.prod": prod,
    "tc.max": max_,
    "tc.min": min_,
    "tc.mean": mean,
    "tc.argmax": argmax,
    "tc.argmin": argmin,
}
