"""Helpers of the interpreter-kernel tests (`test_interp_kernels*.py`).

Every kernel is checked against an independent, deliberately naive computation: Python's
``math`` and integer arithmetic element by element, explicit loops for gathers, reductions and
matmul. Every call goes through :func:`run`, which builds the ``KernelContext``, turns any
warning into an error and asserts that the result has exactly the dtype and shape promised.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence

import numpy as np

from tensorc.interp.context import KernelContext, check_results
from tensorc.interp.kernels import KERNELS

Shape = tuple[int, ...]
BOOL, I32, I64 = np.dtype(np.bool_), np.dtype(np.int32), np.dtype(np.int64)
F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
FLOATS = [F16, F32, F64]
INTS = [I32, I64]
NUMERIC = INTS + FLOATS
ALL_DTYPES = [BOOL, *NUMERIC]
SHAPES = [(), (1,), (0,), (5,), (2, 3), (2, 0, 3), (1, 4, 1)]
TOLERANCE = {F16: 2e-3, F32: 2e-6, F64: 1e-13}
INF, NAN = math.inf, math.nan


def run(op: str, *operands: np.ndarray, dtype: object, shape: Sequence[int], **attrs: object):
    """Call ``KERNELS[op]`` as the interpreter would; fail on any warning or wrong result type."""
    ctx = KernelContext(op_name=op, result_dtypes=[dtype], result_shapes=[tuple(shape)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = KERNELS[op](ctx, *operands, **attrs)
    (output,) = check_results(ctx, result)
    for operand in operands:
        assert not np.shares_memory(output, operand), f"{op} returned a view of an operand"
    return output


def expect(op: str, *operands: np.ndarray, dtype: np.dtype, expected: object, **attrs) -> None:
    """Run ``op`` with the result shape of ``expected`` and compare exactly (NaN equals NaN)."""
    want = from_values(np.asarray(expected).tolist(), np.shape(expected), dtype)
    np.testing.assert_array_equal(run(op, *operands, dtype=dtype, shape=want.shape, **attrs), want)


def sample(dtype: np.dtype, shape: Sequence[int], low: float = -3, high: float = 3, seed=0):
    rng = np.random.default_rng(seed)
    if dtype == BOOL:
        return np.asarray(rng.random(shape) < 0.5)
    if dtype.kind == "i":
        return np.asarray(rng.integers(int(low), int(high) + 1, size=shape), dtype=dtype)
    return np.asarray(rng.uniform(low, high, size=shape), dtype=dtype)


def full_range(dtype: np.dtype, shape: Sequence[int], seed: int = 0) -> np.ndarray:
    info = np.iinfo(dtype)
    return sample(dtype, shape, info.min, info.max, seed)


def wrap(value: int, dtype: np.dtype) -> int:
    """``value`` reduced to the two's-complement range of integer ``dtype``."""
    bits = np.iinfo(dtype).bits
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


def from_values(values: object, shape: Sequence[int], dtype: np.dtype) -> np.ndarray:
    """Python values (floats rounded once from float64) as an array of ``dtype``."""
    if dtype.kind != "f":
        return np.array(values, dtype=dtype).reshape(shape)
    with np.errstate(over="ignore"):  # values beyond float16's range round to inf
        return np.array(values, dtype=np.float64).reshape(shape).astype(dtype)


def elementwise(function: Callable, *arrays: np.ndarray, dtype: np.dtype) -> np.ndarray:
    flat = [array.ravel().tolist() for array in arrays]
    return from_values([function(*items) for items in zip(*flat)], arrays[0].shape, dtype)


def assert_close(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    if actual.dtype.kind != "f":
        np.testing.assert_array_equal(actual, expected)
        return
    tolerance = TOLERANCE[actual.dtype]
    np.testing.assert_allclose(actual, expected, rtol=tolerance, atol=tolerance, equal_nan=True)

