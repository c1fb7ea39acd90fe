"""Tests for the NumPy reference kernels of the interpreter (``tensorc.interp.kernels``).

Every kernel is checked against an independent, deliberately naive computation: Python's
``math`` and integer arithmetic element by element, explicit loops for gathers, reductions and
matmul. Every call goes through :func:`run`, which builds the ``KernelContext``, turns any
warning into an error and asserts that the result has exactly the dtype and shape promised.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pytest

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


def test_table_has_every_op() -> None:
    names = """neg abs sign exp log log1p expm1 sqrt rsqrt sin cos tanh sigmoid relu gelu erf
    floor ceil square not softplus stop_gradient cast add sub mul div floordiv mod pow maximum
    minimum lt le gt ge eq ne and or select constant iota dim broadcast_to reshape transpose
    slice concat take take_along_axis one_hot scatter_add scatter_add_along_axis sum prod max
    min mean argmax argmin matmul softmax log_softmax logsumexp layer_norm cross_entropy
    dim_size"""
    assert set(KERNELS) == {f"tc.{name}" for name in names.split()}


# ----------------------------------------------------------------------- unary ops

# fmt: off
FLOAT_UNARY: dict[str, tuple[Callable[[float], float], float, float]] = {
    "tc.neg": (lambda v: -v, -3, 3), "tc.abs": (abs, -3, 3),
    "tc.sign": (lambda v: float((v > 0) - (v < 0)), -3, 3),
    "tc.exp": (math.exp, -3, 3), "tc.log": (math.log, 0.1, 5), "tc.log1p": (math.log1p, -0.9, 3),
    "tc.expm1": (math.expm1, -3, 3), "tc.sqrt": (math.sqrt, 0, 5),
    "tc.rsqrt": (lambda v: 1 / math.sqrt(v), 0.1, 5),
    "tc.sin": (math.sin, -3, 3), "tc.cos": (math.cos, -3, 3), "tc.tanh": (math.tanh, -3, 3),
    "tc.sigmoid": (lambda v: 1 / (1 + math.exp(-v)), -8, 8),
    "tc.relu": (lambda v: max(v, 0.0), -3, 3), "tc.erf": (math.erf, -3, 3),
    "tc.floor": (math.floor, -3, 3), "tc.ceil": (math.ceil, -3, 3),
    "tc.square": (lambda v: v * v, -3, 3), "tc.stop_gradient": (lambda v: v, -3, 3),
    "tc.softplus": (lambda v: math.log1p(math.exp(v)), -8, 8),
}
# fmt: on


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("op", sorted(FLOAT_UNARY))
def test_float_unary(op: str, dtype: np.dtype, shape: Shape) -> None:
    function, low, high = FLOAT_UNARY[op]
    x = sample(dtype, shape, low, high)
    assert_close(run(op, x, dtype=dtype, shape=shape), elementwise(function, x, dtype=dtype))


def _gelu_exact(v: float) -> float:
    return 0.5 * v * (1 + math.erf(v / math.sqrt(2)))


def _gelu_tanh(v: float) -> float:
    return 0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3)))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("approximate", [False, True])
def test_gelu(approximate: bool, dtype: np.dtype, shape: Shape) -> None:
    x = sample(dtype, shape, -5, 5)
    expected = elementwise(_gelu_tanh if approximate else _gelu_exact, x, dtype=dtype)
    actual = run("tc.gelu", x, dtype=dtype, shape=shape, approximate=approximate)
    # The reference's 1 + erf cancels for negative x: allow its absolute error of ~1e-16.
    np.testing.assert_allclose(actual, expected, rtol=float(np.finfo(dtype).eps), atol=1e-15)


@pytest.mark.parametrize("dtype", FLOATS)
def test_erf_is_float64_rounded_exactly(dtype: np.dtype) -> None:
    x = sample(dtype, (200,), -4, 4)
    expect("tc.erf", x, dtype=dtype, expected=elementwise(math.erf, x, dtype=dtype))


# fmt: off
SPECIAL_VALUES: dict[str, list[tuple[float, float]]] = {
    "tc.exp": [(1000.0, INF), (-1000.0, 0.0), (INF, INF), (-INF, 0.0)],
    "tc.log": [(0.0, -INF), (-1.0, NAN), (INF, INF)],
    "tc.log1p": [(-1.0, -INF), (-2.0, NAN)],
    "tc.sqrt": [(-1.0, NAN), (INF, INF)],
    "tc.rsqrt": [(0.0, INF), (-1.0, NAN), (INF, 0.0)],
    "tc.sigmoid": [(1e4, 1.0), (-1e4, 0.0), (INF, 1.0), (-INF, 0.0), (NAN, NAN)],
    "tc.softplus": [(1e4, 1e4), (-1e4, 0.0), (INF, INF), (-INF, 0.0), (NAN, NAN)],
    "tc.relu": [(NAN, NAN), (-INF, 0.0), (INF, INF)],
    "tc.sign": [(NAN, NAN), (-INF, -1.0), (0.0, 0.0)],
    "tc.tanh": [(INF, 1.0), (-INF, -1.0)],
    "tc.sin": [(INF, NAN)],
    "tc.expm1": [(1000.0, INF), (-INF, -1.0)],
    "tc.square": [(3e4, 9e8), (-INF, INF), (NAN, NAN)],
    "tc.erf": [(INF, 1.0), (-INF, -1.0), (NAN, NAN)],
    "tc.gelu": [(INF, INF), (1e4, 1e4), (-1e4, 0.0), (NAN, NAN)],
}
# fmt: on


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("op", sorted(SPECIAL_VALUES))
def test_special_values_without_warnings(op: str, dtype: np.dtype) -> None:
    inputs, outputs = zip(*SPECIAL_VALUES[op])
    expect(op, np.array(inputs, dtype=dtype), dtype=dtype, expected=outputs)


# fmt: off
INT_UNARY: dict[str, Callable[[int], int]] = {
    "tc.neg": lambda v: -v, "tc.abs": abs, "tc.sign": lambda v: (v > 0) - (v < 0),
    "tc.relu": lambda v: max(v, 0), "tc.floor": lambda v: v, "tc.ceil": lambda v: v,
    "tc.square": lambda v: v * v, "tc.stop_gradient": lambda v: v,
}
# fmt: on


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", INTS)
@pytest.mark.parametrize("op", sorted(INT_UNARY))
def test_int_unary_wraps(op: str, dtype: np.dtype, shape: Shape) -> None:
    x = full_range(dtype, shape)
    if x.size:
        x.flat[0] = np.iinfo(dtype).min
    expect(
        op,
        x,
        dtype=dtype,
        expected=elementwise(lambda v: wrap(INT_UNARY[op](v), dtype), x, dtype=dtype),
    )


@pytest.mark.parametrize("shape", SHAPES)
def test_bool_unary(shape: Shape) -> None:
    x = sample(BOOL, shape)
    expect("tc.not", x, dtype=BOOL, expected=~x)
    expect("tc.stop_gradient", x, dtype=BOOL, expected=x)
    expect("tc.abs", x, dtype=BOOL, expected=x)


# ---------------------------------------------------------------------------- cast


def _cast_reference(value: object, source: np.dtype, target: np.dtype) -> object:
    if target == BOOL:
        return value != 0
    if target.kind == "f":
        return float(value)
    if source.kind != "f":
        return wrap(int(value), target)
    info = np.iinfo(target)
    if math.isnan(value):
        return 0
    if math.isinf(value):
        return info.max if value > 0 else info.min
    return min(max(int(value), int(info.min)), int(info.max))


@pytest.mark.parametrize("shape", [(), (0,), (7,), (2, 3)])
@pytest.mark.parametrize(("source", "target"), list(itertools.product(ALL_DTYPES, ALL_DTYPES)))
def test_cast(source: np.dtype, target: np.dtype, shape: Shape) -> None:
    x = sample(source, shape, -1000, 1000)
    expected = elementwise(lambda v: _cast_reference(v, source, target), x, dtype=target)
    expect("tc.cast", x, dtype=target, expected=expected)


@pytest.mark.parametrize("source", FLOATS)
@pytest.mark.parametrize("target", INTS)
def test_cast_float_to_int_truncates_and_saturates(source: np.dtype, target: np.dtype) -> None:
    info = np.iinfo(target)
    values = [NAN, INF, -INF, 1e30, -1e30, 2.9, -2.9, 0.5, -0.5, -0.0, 65504.0]
    values += [2.0**31 - 1, 2.0**31, -(2.0**31), -(2.0**31) - 1, 2.0**63, -(2.0**63), 2.0**62]
    x = from_values(values, (len(values),), source)
    expected = elementwise(lambda v: _cast_reference(v, source, target), x, dtype=target)
    assert expected[0] == 0 and expected[1] == info.max and expected[2] == info.min
    expect("tc.cast", x, dtype=target, expected=expected)


def test_cast_int_overflows_and_bool() -> None:
    big = np.array([np.iinfo(np.int64).max, 2**40 + 7, -(2**40)], dtype=I64)
    expect("tc.cast", big, dtype=F16, expected=[INF, INF, -INF])
    expect("tc.cast", big, dtype=I32, expected=[-1, 7, 0])
    floats = np.array([0.0, -0.0, NAN, 0.1, -INF])
    expect("tc.cast", floats, dtype=BOOL, expected=[0, 0, 1, 1, 1])
    expect("tc.cast", np.array([True, False]), dtype=F16, expected=[1.0, 0.0])


# -------------------------------------------------------------------------- binary

# fmt: off
BINARY: dict[str, Callable[[object, object], object]] = {
    "tc.add": lambda a, b: a + b, "tc.sub": lambda a, b: a - b, "tc.mul": lambda a, b: a * b,
    "tc.maximum": max, "tc.minimum": min,
}
COMPARISONS: dict[str, Callable[[object, object], bool]] = {
    "tc.lt": lambda a, b: a < b, "tc.le": lambda a, b: a <= b, "tc.gt": lambda a, b: a > b,
    "tc.ge": lambda a, b: a >= b, "tc.eq": lambda a, b: a == b, "tc.ne": lambda a, b: a != b,
}
# fmt: on


def _binary_operands(dtype: np.dtype, shape: Shape) -> tuple[np.ndarray, np.ndarray]:
    if dtype.kind == "i":
        return full_range(dtype, shape, 1), full_range(dtype, shape, 2)
    lhs, rhs = sample(dtype, shape, -4, 4, 1), sample(dtype, shape, -4, 4, 2)
    if lhs.size:
        rhs.flat[0] = lhs.flat[0]  # exercise equality
    return lhs, rhs


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", NUMERIC)
@pytest.mark.parametrize("op", sorted(BINARY))
def test_arithmetic_exact(op: str, dtype: np.dtype, shape: Shape) -> None:
    """+, -, * of f16/f32 are exact when done in float64 and rounded once; ints wrap."""
    lhs, rhs = _binary_operands(dtype, shape)
    function = BINARY[op]
    reference = (lambda a, b: wrap(function(a, b), dtype)) if dtype.kind == "i" else function
    expect(op, lhs, rhs, dtype=dtype, expected=elementwise(reference, lhs, rhs, dtype=dtype))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("op", sorted(COMPARISONS))
def test_comparisons(op: str, dtype: np.dtype, shape: Shape) -> None:
    lhs, rhs = _binary_operands(dtype, shape)
    expected = elementwise(COMPARISONS[op], lhs, rhs, dtype=BOOL)
    expect(op, lhs, rhs, dtype=BOOL, expected=expected)


def test_maximum_minimum_propagate_nan_and_logical_ops() -> None:
    lhs, rhs = np.array([NAN, 1.0, -INF], dtype=F32), np.array([1.0, NAN, INF], dtype=F32)
    expect("tc.maximum", lhs, rhs, dtype=F32, expected=[NAN, NAN, INF])
    expect("tc.minimum", lhs, rhs, dtype=F32, expected=[NAN, NAN, -INF])
    a, b = np.array([True, False, True, False]), np.array([False, False, True, True])
    expect("tc.maximum", a, b, dtype=BOOL, expected=a | b)
    expect("tc.minimum", a, b, dtype=BOOL, expected=a & b)
    expect("tc.and", a, b, dtype=BOOL, expected=a & b)
    expect("tc.or", a, b, dtype=BOOL, expected=a | b)
    expect("tc.and", a[:0], b[:0], dtype=BOOL, expected=np.zeros(0, bool))
    expect("tc.or", a[0, ...], b[0, ...], dtype=BOOL, expected=True)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", FLOATS)
def test_div_is_true_division(dtype: np.dtype, shape: Shape) -> None:
    lhs, rhs = sample(dtype, shape, -4, 4, 1), sample(dtype, shape, 0.5, 4, 2)
    expected = elementwise(lambda a, b: a / b, lhs, rhs, dtype=dtype)
    expect("tc.div", lhs, rhs, dtype=dtype, expected=expected)


@pytest.mark.parametrize("dtype", FLOATS)
def test_float_division_by_zero_and_floor_semantics(dtype: np.dtype) -> None:
    lhs = np.array([1.0, -1.0, 0.0, 5.0, -5.0, 5.5], dtype=dtype)
    rhs = np.array([0.0, 0.0, 0.0, -3.0, 3.0, 2.0], dtype=dtype)
    expect("tc.div", lhs, rhs, dtype=dtype, expected=[INF, -INF, NAN, -5 / 3, -5 / 3, 2.75])
    expect("tc.floordiv", lhs, rhs, dtype=dtype, expected=[INF, -INF, NAN, -2, -2, 2])
    expect("tc.mod", lhs, rhs, dtype=dtype, expected=[NAN, NAN, NAN, -1, 1, 1.5])


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", INTS)
@pytest.mark.parametrize("op", ["tc.floordiv", "tc.mod"])
def test_int_floordiv_mod(op: str, dtype: np.dtype, shape: Shape) -> None:
    lhs, rhs = sample(dtype, shape, -20, 20, 1), sample(dtype, shape, -4, 4, 2)

    def reference(a: int, b: int) -> int:
        return 0 if b == 0 else a // b if op == "tc.floordiv" else a % b

    expect(op, lhs, rhs, dtype=dtype, expected=elementwise(reference, lhs, rhs, dtype=dtype))


@pytest.mark.parametrize("dtype", INTS)
def test_int_division_by_zero_and_overflow(dtype: np.dtype) -> None:
    low = int(np.iinfo(dtype).min)
    lhs = np.array([7, -7, 0, low, low, 7, -7, 7, -7], dtype=dtype)
    rhs = np.array([0, 0, 0, 0, -1, 2, 2, -2, -2], dtype=dtype)
    expect("tc.floordiv", lhs, rhs, dtype=dtype, expected=[0, 0, 0, 0, low, 3, -4, -4, 3])
    expect("tc.mod", lhs, rhs, dtype=dtype, expected=[0, 0, 0, 0, 0, 1, 1, -1, -1])
    expect("tc.floordiv", lhs[0, ...], rhs[0, ...], dtype=dtype, expected=0)
    expect("tc.mod", lhs[0, ...], rhs[0, ...], dtype=dtype, expected=0)


def _int_pow(base: int, exponent: int) -> int:
    if exponent >= 0:
        return base**exponent
    if base == 1:
        return 1
    if base == -1:
        return -1 if exponent % 2 else 1
    return 0


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", INTS)
def test_int_pow(dtype: np.dtype, shape: Shape) -> None:
    base, exponent = sample(dtype, shape, -5, 5, 1), sample(dtype, shape, -4, 40, 2)
    expected = elementwise(lambda a, b: wrap(_int_pow(a, b), dtype), base, exponent, dtype=dtype)
    expect("tc.pow", base, exponent, dtype=dtype, expected=expected)


@pytest.mark.parametrize("dtype", INTS)
def test_int_pow_negative_exponent(dtype: np.dtype) -> None:
    base = np.array([2, 1, -1, -1, 0, -3, 1, 5], dtype=dtype)
    exponent = np.array([-1, -5, -3, -2, -1, -2, 0, 2], dtype=dtype)
    expect("tc.pow", base, exponent, dtype=dtype, expected=[0, 1, -1, 1, 0, 0, 1, 25])
    expect("tc.pow", base[0, ...], exponent[0, ...], dtype=dtype, expected=0)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", FLOATS)
def test_float_pow(dtype: np.dtype, shape: Shape) -> None:
    base, exponent = sample(dtype, shape, 0.1, 3, 1), sample(dtype, shape, -3, 3, 2)
    actual = run("tc.pow", base, exponent, dtype=dtype, shape=shape)
    assert_close(actual, elementwise(math.pow, base, exponent, dtype=dtype))
    base, exponent = np.array([-2.0, 0.0, 1e4], dtype), np.array([0.5, -1.0, 1e4], dtype)
    expect("tc.pow", base, exponent, dtype=dtype, expected=[NAN, INF, INF])


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_select(dtype: np.dtype, shape: Shape) -> None:
    cond, on_true, on_false = (
        sample(kind, shape, seed=s) for kind, s in [(BOOL, 3), (dtype, 4), (dtype, 5)]
    )
    expected = elementwise(lambda c, a, b: a if c else b, cond, on_true, on_false, dtype=dtype)
    expect("tc.select", cond, on_true, on_false, dtype=dtype, expected=expected)


# ----------------------------------------------------------------- constructors


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_constant_iota_dim(dtype: np.dtype) -> None:
    value = np.array([[1, 0, 3]], dtype=dtype)
    constant = run("tc.constant", dtype=dtype, shape=(1, 3), value=value)
    np.testing.assert_array_equal(constant, value)
    assert not np.shares_memory(constant, value)
    expect("tc.constant", dtype=dtype, expected=np.zeros((0, 2)), value=np.zeros((0, 2)))
    expect("tc.constant", dtype=dtype, expected=1, value=np.array(1))
    expect("tc.constant", dtype=dtype, expected=[[1, 1]], value=1)  # a scalar splats
    expect("tc.dim", dtype=dtype, expected=1, value=1)
    expect("tc.dim_size", dtype=dtype, expected=True, value=1)
    if dtype == BOOL:
        return
    expect("tc.iota", dtype=dtype, expected=[0, 1, 2, 3, 4])
    expect("tc.iota", dtype=dtype, expected=np.zeros(0))
    expect("tc.dim", dtype=dtype, expected=42, value=42)


# ------------------------------------------------------------------------ shape

# fmt: off
BROADCASTS = [((), (2, 3)), ((1,), (4,)), ((3,), (2, 3)), ((2, 1), (2, 4)), ((1, 3), (0, 3)),
              ((2, 1), (3, 2, 5)), ((), ())]
RESHAPES = [((2, 3), (3, 2)), ((6,), (1, 2, 3)), ((), (1, 1)), ((1,), ()), ((0, 3), (3, 0, 1))]
TRANSPOSES = [((2, 3), [1, 0]), ((2, 3, 4), [2, 0, 1]), ((), []), ((0, 2, 1), [1, 2, 0])]
SLICES = [((7,), [1], [5], [2]), ((7,), [-3], [None], [1]), ((7,), [None], [-1], [3]),
          ((7,), [-100], [100], [1]), ((7,), [5], [2], [1]), ((7,), [None], [None], [-2]),
          ((0,), [0], [3], [1]), ((3, 4), [1, None], [None, -1], [1, 2]),
          ((3, 4), [10, 0], [20, 4], [1, 1])]
# fmt: on


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize(("source", "target"), BROADCASTS)
def test_broadcast_to(dtype: np.dtype, source: Shape, target: Shape) -> None:
    x = sample(dtype, source)
    result = run("tc.broadcast_to", x, dtype=dtype, shape=target)
    assert result.flags.c_contiguous and result.flags.writeable
    offset = len(target) - len(source)
    for index in np.ndindex(*target):
        source_index = tuple(0 if extent == 1 else i for i, extent in zip(index[offset:], source))
        assert result[index] == x[source_index]


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize(("source", "target"), RESHAPES)
def test_reshape(dtype: np.dtype, source: Shape, target: Shape) -> None:
    x = sample(dtype, source)
    result = run("tc.reshape", x, dtype=dtype, shape=target)
    assert result.flags.c_contiguous and result.ravel().tolist() == x.ravel().tolist()


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize(("shape", "perm"), TRANSPOSES)
def test_transpose(dtype: np.dtype, shape: Shape, perm: list[int]) -> None:
    x = sample(dtype, shape)
    result_shape = tuple(shape[axis] for axis in perm)
    result = run("tc.transpose", x, dtype=dtype, shape=result_shape, perm=perm)
    assert result.flags.c_contiguous
    for index in np.ndindex(*shape):
        assert result[tuple(index[axis] for axis in perm)] == x[index]


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize(("shape", "starts", "stops", "steps"), SLICES)
def test_slice_follows_python(dtype: np.dtype, shape: Shape, starts, stops, steps) -> None:
    x = sample(dtype, shape)
    rows = x.tolist()[slice(starts[0], stops[0], steps[0])]
    if len(shape) == 2:
        rows = [row[slice(starts[1], stops[1], steps[1])] for row in rows]
    kept = [range(n)[slice(*bounds)] for n, *bounds in zip(shape, starts, stops, steps)]
    expected = from_values(rows, tuple(len(indices) for indices in kept), dtype)
    expect("tc.slice", x, dtype=dtype, expected=expected, starts=starts, stops=stops, steps=steps)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_concat(dtype: np.dtype) -> None:
    a, b, row = sample(dtype, (2, 3), seed=1), sample(dtype, (2, 1), seed=2), sample(dtype, (1, 3))
    columns = [ra + rb for ra, rb in zip(a.tolist(), b.tolist())]
    expect("tc.concat", a, sample(dtype, (2, 0)), b, dtype=dtype, expected=columns, axis=1)
    expect("tc.concat", a, a[:0], row, dtype=dtype, expected=a.tolist() + row.tolist(), axis=0)
    expect("tc.concat", a[0], dtype=dtype, expected=a[0], axis=0)


# ---------------------------------------------------------------------- gathers

# fmt: off
TAKES = [((5,), (3,), 0), ((5,), (), 0), ((4, 5), (2, 3), 1), ((4, 5, 2), (6,), 1),
         ((4, 3), (0,), 0), ((0, 3), (2,), 1), ((5,), (2, 2), 0)]
TAKES_ALONG = [((4, 5), (4, 3), 1), ((4, 5), (2, 5), 0), ((4, 5), (1, 2), 1),
               ((1, 5), (3, 2), 1), ((3, 4, 2), (3, 0, 2), 1), ((6,), (4,), 0)]
SCATTERS = [((5,), (7,), 0), ((4, 5), (2, 3), 1), ((3, 4, 2), (), 1), ((4, 3), (0,), 0),
            ((6, 2), (3, 1), 0)]
SCATTERS_ALONG = [((4, 5), (4, 7), 1), ((4, 5), (2, 5), 0), ((4, 5), (1, 3), 1),
                  ((3, 2, 4), (3, 2, 0), 2)]
# fmt: on


def _indices(dtype: np.dtype, shape: Shape, size: int, seed: int = 7) -> np.ndarray:
    """Random valid indices in ``[-size, size)`` (zeros, never used, when ``size`` is 0)."""
    return sample(dtype, shape, -size, size - 1, seed) if size else np.zeros(shape, dtype)


@pytest.mark.parametrize("index_dtype", INTS)
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize(("shape", "index_shape", "axis"), TAKES)
def test_take(
    dtype: np.dtype, index_dtype: np.dtype, shape: Shape, index_shape: Shape, axis: int
) -> None:
    x, size = sample(dtype, shape), shape[axis]
    idx = _indices(index_dtype, index_shape, size)
    result_shape = shape[:axis] + index_shape + shape[axis + 1 :]
    result = run("tc.take", x, idx, dtype=dtype, shape=result_shape, axis=axis)
    for index in np.ndindex(*result_shape):
        position = int(idx[index[axis : axis + len(index_shape)]]) % size
        assert result[index] == x[index[:axis] + (position,) + index[axis + len(index_shape) :]]


def test_take_out_of_range_raises() -> None:
    x = np.arange(5.0)
    with pytest.raises(IndexError, match=r"^take: index 7 is out of range for axis 0 with size 5$"):
        run("tc.take", x, np.array([1, 7, 9]), dtype=F64, shape=(3,), axis=0)
    with pytest.raises(
        IndexError, match=r"^take: index -6 is out of range for axis 1 with size 5$"
    ):
        run("tc.take", x.reshape(1, 5), np.array(-6), dtype=F64, shape=(1,), axis=1)
    with pytest.raises(IndexError, match="size 0$"):
        run("tc.take", np.zeros((0, 2)), np.array([0]), dtype=F64, shape=(1, 2), axis=0)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize(("shape", "index_shape", "axis"), TAKES_ALONG)
def test_take_along_axis(dtype: np.dtype, shape: Shape, index_shape: Shape, axis: int) -> None:
    x, size, rank = sample(dtype, shape), shape[axis], len(shape)
    idx = _indices(I64, index_shape, size)
    result_shape = tuple(
        index_shape[d] if d == axis else max(shape[d], index_shape[d]) for d in range(rank)
    )
    result = run("tc.take_along_axis", x, idx, dtype=dtype, shape=result_shape, axis=axis)
    for index in np.ndindex(*result_shape):
        index_position = tuple(0 if index_shape[d] == 1 else index[d] for d in range(rank))
        source = [0 if shape[d] == 1 else index[d] for d in range(rank)]
        source[axis] = int(idx[index_position]) % size
        assert result[index] == x[tuple(source)]


def test_take_along_axis_out_of_range_raises() -> None:
    message = r"^take_along_axis: index 3 is out of range for axis 1 with size 3$"
    with pytest.raises(IndexError, match=message):
        run(
            "tc.take_along_axis",
            np.zeros((2, 3)),
            np.array([[0], [3]]),
            dtype=F64,
            shape=(2, 1),
            axis=1,
        )


@pytest.mark.parametrize("index_dtype", INTS)
@pytest.mark.parametrize(
    ("index_shape", "n"), [((), 4), ((5,), 3), ((2, 3), 4), ((0,), 3), ((2,), 0)]
)
def test_one_hot(index_dtype: np.dtype, index_shape: Shape, n: int) -> None:
    idx = sample(index_dtype, index_shape, -2, n + 1, seed=2)
    result = run("tc.one_hot", idx, dtype=F32, shape=index_shape + (n,), n=n)
    for index in np.ndindex(*index_shape):
        assert result[index].tolist() == [1.0 if int(idx[index]) == k else 0.0 for k in range(n)]


def test_one_hot_out_of_range_is_zero_row() -> None:
    expected = [[0, 0, 0], [0, 0, 0], [0, 1, 0], [0, 0, 0]]
    expect("tc.one_hot", np.array([-1, 3, 1, 100]), dtype=F32, expected=expected, n=3)


def _inner(a: np.ndarray, b: np.ndarray) -> float:
    return math.fsum((a.astype(np.float64) * b.astype(np.float64)).ravel().tolist())


@pytest.mark.parametrize("dtype", NUMERIC)
@pytest.mark.parametrize(("shape", "index_shape", "axis"), SCATTERS)
def test_scatter_add_is_transpose_of_take(
    dtype: np.dtype, shape: Shape, index_shape: Shape, axis: int
) -> None:
    size = shape[axis]
    x, idx = sample(dtype, shape, seed=1), _indices(I32, index_shape, size)
    taken_shape = shape[:axis] + index_shape + shape[axis + 1 :]
    updates = sample(dtype, taken_shape, seed=3)
    taken = run("tc.take", x, idx, dtype=dtype, shape=taken_shape, axis=axis)
    scattered = run("tc.scatter_add", updates, idx, dtype=dtype, shape=shape, axis=axis, size=size)
    # <take(x, i), u> == <x, scatter_add(u, i)>
    assert _inner(taken, updates) == pytest.approx(
        _inner(x, scattered), rel=1e-2 if dtype == F16 else 1e-5
    )
    expected = np.zeros(shape, dtype=np.float64)  # explicit accumulation loop
    for index in np.ndindex(*taken_shape):
        position = int(idx[index[axis : axis + len(index_shape)]]) % size
        expected[index[:axis] + (position,) + index[axis + len(index_shape) :]] += updates[
            index
        ].item()
    assert_close(scattered, expected.astype(dtype))


@pytest.mark.parametrize("dtype", NUMERIC)
@pytest.mark.parametrize(("shape", "index_shape", "axis"), SCATTERS_ALONG)
def test_scatter_add_along_axis_is_transpose(
    dtype: np.dtype, shape: Shape, index_shape: Shape, axis: int
) -> None:
    size = shape[axis]
    x, idx = sample(dtype, shape, seed=1), _indices(I64, index_shape, size)
    taken_shape = tuple(index_shape[d] if d == axis else shape[d] for d in range(len(shape)))
    updates = sample(dtype, taken_shape, seed=3)
    taken = run("tc.take_along_axis", x, idx, dtype=dtype, shape=taken_shape, axis=axis)
    attrs = {"axis": axis, "size": size}
    scattered = run("tc.scatter_add_along_axis", updates, idx, dtype=dtype, shape=shape, **attrs)
    assert _inner(taken, updates) == pytest.approx(
        _inner(x, scattered), rel=1e-2 if dtype == F16 else 1e-5
    )


def test_scatter_add_duplicates_and_broadcast_operand() -> None:
    updates, idx = np.array([1, 2, 3, 4], np.int32), np.array([0, -1, 0, 2])
    expect("tc.scatter_add", updates, idx, dtype=I32, expected=[4, 0, 6], axis=0, size=3)
    # take_along_axis of a (1, 3) operand broadcast to 2 rows: the transpose sums the rows.
    idx = np.array([[0, 2], [2, 2]])
    expect(
        "tc.scatter_add_along_axis",
        np.ones((2, 2)),
        idx,
        dtype=F64,
        expected=[[1, 0, 3]],
        axis=1,
        size=3,
    )
    with pytest.raises(IndexError, match="scatter_add: index 3 is out of range"):
        run("tc.scatter_add", np.ones(2), np.array([0, 3]), dtype=F64, shape=(3,), axis=0, size=3)


# ------------------------------------------------------------------- reductions


def reduced_shape(shape: Sequence[int], axes: Sequence[int], keepdims: bool) -> Shape:
    if keepdims:
        return tuple(1 if d in axes else extent for d, extent in enumerate(shape))
    return tuple(extent for d, extent in enumerate(shape) if d not in axes)


def reduce_reference(
    x: np.ndarray,
    axes: Sequence[int],
    keepdims: bool,
    combine: Callable[[list], object],
    dtype: np.dtype,
) -> np.ndarray:
    """Apply ``combine`` to the Python values of every reduced slice (in C order)."""
    kept = [d for d in range(x.ndim) if d not in axes]
    values = []
    for kept_index in np.ndindex(*[x.shape[d] for d in kept]):
        items = []
        for reduced_index in np.ndindex(*[x.shape[d] for d in axes]):
            full = dict(zip(kept, kept_index)) | dict(zip(axes, reduced_index))
            items.append(x[tuple(full[d] for d in range(x.ndim))].item())
        values.append(combine(items))
    return from_values(values, reduced_shape(x.shape, axes, keepdims), dtype)


def _extreme_combine(dtype: np.dtype, pick: Callable) -> Callable[[list], object]:
    """``pick`` (max or min) of the items, NaN if any is NaN, the identity if there are none."""
    if dtype == BOOL:
        identity = pick is min
    elif dtype.kind == "f":
        identity = INF if pick is min else -INF
    else:
        identity = int(np.iinfo(dtype).max if pick is min else np.iinfo(dtype).min)
    return lambda items: NAN if any(v != v for v in items) else pick(items, default=identity)


def _combine(op: str, dtype: np.dtype, result_dtype: np.dtype) -> Callable[[list], object]:
    if op in ("tc.max", "tc.min"):
        return _extreme_combine(dtype, max if op == "tc.max" else min)
    if op == "tc.mean":
        return lambda items: math.fsum(items) / len(items) if items else NAN
    if result_dtype.kind == "f":
        return math.fsum if op == "tc.sum" else math.prod
    total = sum if op == "tc.sum" else math.prod
    return lambda items: wrap(total(int(v) for v in items), result_dtype)


# fmt: off
REDUCTION_CASES = [((2, 3, 4), []), ((2, 3, 4), [0]), ((2, 3, 4), [1]), ((2, 3, 4), [2]),
                   ((2, 3, 4), [0, 2]), ((2, 3, 4), [0, 1, 2]), ((2, 0, 3), [1]),
                   ((2, 0, 3), [0, 2]), ((), []), ((5,), [0]), ((0,), [0]), ((1, 4, 1), [0, 2])]
ARG_CASES = [((2, 3, 4), 0), ((2, 3, 4), 1), ((2, 3, 4), 2), ((2, 3, 4), None), ((), None),
             ((5,), 0), ((2, 0, 3), 1), ((2, 0, 3), 0), ((2, 0, 3), None), ((1,), None)]
# fmt: on
SUM_RESULT = {BOOL: I32, I32: I32, I64: I64, F16: F16, F32: F32, F64: F64}
MEAN_RESULT = {BOOL: F32, I32: F32, I64: F32, F16: F16, F32: F32, F64: F64}


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize(("shape", "axes"), REDUCTION_CASES)
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("op", ["tc.sum", "tc.prod", "tc.max", "tc.min", "tc.mean"])
def test_reductions(
    op: str, dtype: np.dtype, shape: Shape, axes: list[int], keepdims: bool
) -> None:
    result_dtype = {"tc.sum": SUM_RESULT, "tc.prod": SUM_RESULT, "tc.mean": MEAN_RESULT}.get(op, {})
    result_dtype = result_dtype.get(dtype, dtype)
    wide = dtype.kind == "i" and op != "tc.mean"  # sums and products that wrap
    x = full_range(dtype, shape) if wide else sample(dtype, shape, -1.5, 1.5)
    if axes:
        expected = reduce_reference(
            x, axes, keepdims, _combine(op, dtype, result_dtype), result_dtype
        )
    else:
        expected = x.astype(result_dtype)
    result_shape = reduced_shape(shape, axes, keepdims)
    actual = run(op, x, dtype=result_dtype, shape=result_shape, axes=axes, keepdims=keepdims)
    assert_close(actual, expected)


@pytest.mark.parametrize("dtype", FLOATS)
def test_reductions_of_special_values(dtype: np.dtype) -> None:
    x = np.array([[1.0, NAN, 2.0], [-INF, 0.0, INF]], dtype=dtype)
    for op, expected in [
        ("tc.max", [NAN, INF]),
        ("tc.min", [NAN, -INF]),
        ("tc.sum", [NAN, NAN]),
        ("tc.mean", [NAN, NAN]),
    ]:
        expect(op, x, dtype=dtype, expected=expected, axes=[1], keepdims=False)
    empty = np.zeros((2, 0), dtype=dtype)
    for op, value in [
        ("tc.sum", 0),
        ("tc.prod", 1),
        ("tc.max", -INF),
        ("tc.min", INF),
        ("tc.mean", NAN),
    ]:
        expect(op, empty, dtype=dtype, expected=[[value]] * 2, axes=[1], keepdims=True)


def test_empty_integer_and_bool_reductions() -> None:
    empty = np.zeros((0, 2), dtype=I32)
    attrs = {"axes": [0], "keepdims": False}
    expect("tc.max", empty, dtype=I32, expected=[np.iinfo(I32).min] * 2, **attrs)
    expect("tc.min", empty.astype(I64), dtype=I64, expected=[np.iinfo(I64).max] * 2, **attrs)
    expect("tc.mean", empty, dtype=F32, expected=[NAN] * 2, **attrs)
    expect("tc.prod", empty, dtype=I32, expected=[1, 1], **attrs)
    attrs = {"axes": [0, 1], "keepdims": False}
    expect("tc.max", empty.astype(bool), dtype=BOOL, expected=False, **attrs)
    expect("tc.min", empty.astype(bool), dtype=BOOL, expected=True, **attrs)
    expect("tc.sum", empty.astype(bool), dtype=I32, expected=0, **attrs)


def test_int32_sum_wraps_and_mean_is_float64_rounded() -> None:
    x = np.full((3,), np.iinfo(np.int32).max, dtype=I32)
    attrs = {"axes": [0], "keepdims": False}
    expect("tc.sum", x, dtype=I32, expected=wrap(3 * (2**31 - 1), I32), **attrs)
    expect("tc.mean", x, dtype=F32, expected=2**31 - 1, **attrs)
    expect("tc.sum", np.ones(5, bool), dtype=I32, expected=5, **attrs)


def _arg_reference(items: list, pick_max: bool) -> int:
    best = 0
    for position, value in enumerate(items):
        if value != value:  # NaN is the extreme; the first one wins
            return position
        if (value > items[best]) if pick_max else (value < items[best]):
            best = position
    return best


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize(("shape", "axis"), ARG_CASES)
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("op", ["tc.argmax", "tc.argmin"])
def test_argmax_argmin(
    op: str, dtype: np.dtype, shape: Shape, axis: int | None, keepdims: bool
) -> None:
    x = sample(dtype, shape, -2, 2)
    if dtype.kind == "f":
        x = np.round(x)  # ties: the first occurrence wins
        if x.size > 3:
            x.flat[3] = NAN
    axes = list(range(len(shape))) if axis is None else [axis]
    result_shape = reduced_shape(shape, axes, keepdims)
    pick_max = op == "tc.argmax"
    if axis is None:
        expected = np.full(result_shape, _arg_reference(x.ravel().tolist(), pick_max), dtype=I32)
    else:
        expected = reduce_reference(x, axes, keepdims, lambda v: _arg_reference(v, pick_max), I32)
    expect(op, x, dtype=I32, expected=expected, axis=axis, keepdims=keepdims)


# ----------------------------------------------------------------------- matmul

# fmt: off
MATMULS = [((2, 3), (3, 4)), ((2, 0), (0, 3)), ((0, 3), (3, 2)), ((2, 2, 3), (2, 3, 1)),
           ((1, 1), (1, 1)), ((3, 2, 4, 5), (3, 2, 5, 2))]
# fmt: on


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize(("lhs_shape", "rhs_shape"), MATMULS)
def test_matmul(dtype: np.dtype, lhs_shape: Shape, rhs_shape: Shape) -> None:
    if dtype.kind == "i":
        lhs, rhs = full_range(dtype, lhs_shape, 1), full_range(dtype, rhs_shape, 2)
    else:
        lhs, rhs = sample(dtype, lhs_shape, seed=1), sample(dtype, rhs_shape, seed=2)
    *batch, rows, inner = lhs_shape
    values = []
    for *b, i, j in np.ndindex(*batch, rows, rhs_shape[-1]):
        pairs = [(lhs[(*b, i, k)].item(), rhs[(*b, k, j)].item()) for k in range(inner)]
        if dtype == BOOL:
            values.append(any(p and q for p, q in pairs))
        elif dtype.kind == "i":
            values.append(wrap(sum(p * q for p, q in pairs), dtype))
        else:
            values.append(math.fsum(p * q for p, q in pairs))
    expected = from_values(values, (*batch, rows, rhs_shape[-1]), dtype)
    assert_close(run("tc.matmul", lhs, rhs, dtype=dtype, shape=expected.shape), expected)


# ------------------------------------------------------------------ neural nets


def _softmax_row(items: list) -> list:
    exponentials = [math.exp(v - max(items)) for v in items]
    return [e / math.fsum(exponentials) for e in exponentials]


def _log_softmax_row(items: list) -> list:
    largest = max(items)
    normaliser = math.log(math.fsum(math.exp(v - largest) for v in items))
    return [v - largest - normaliser for v in items]


def _along_axis(x: np.ndarray, axis: int, row_function: Callable[[list], list]) -> np.ndarray:
    if x.size == 0:
        return x.copy()
    moved = np.moveaxis(x, axis, -1)
    rows = [row_function(row.tolist()) for row in moved.reshape(-1, moved.shape[-1])]
    result = np.array(rows, dtype=np.float64).reshape(moved.shape)
    return np.moveaxis(result, -1, axis).astype(x.dtype)


SOFTMAX_CASES = [
    ((3, 4), 1),
    ((3, 4), 0),
    ((2, 3, 4), 1),
    ((5,), 0),
    ((2, 0), 1),
    ((2, 0), 0),
    ((3, 1), 1),
]
SOFTMAX_OPS = [("tc.softmax", _softmax_row), ("tc.log_softmax", _log_softmax_row)]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(("shape", "axis"), SOFTMAX_CASES)
@pytest.mark.parametrize(("op", "row_function"), SOFTMAX_OPS)
def test_softmax_and_log_softmax(
    op: str, row_function: Callable, dtype: np.dtype, shape: Shape, axis: int
) -> None:
    x = sample(dtype, shape, -5, 5)
    assert_close(
        run(op, x, dtype=dtype, shape=shape, axis=axis), _along_axis(x, axis, row_function)
    )


@pytest.mark.parametrize("dtype", FLOATS)
def test_softmax_extremes(dtype: np.dtype) -> None:
    big = float(np.finfo(dtype).max)
    x = np.array([[-INF, -INF, -INF], [big, big, -big], [-INF, 0.0, -INF]], dtype=dtype)
    expect("tc.softmax", x, dtype=dtype, expected=[[NAN] * 3, [0.5, 0.5, 0.0], [0, 1, 0]], axis=1)
    expected = [[NAN] * 3, [-math.log(2), -math.log(2), -INF], [-INF, 0, -INF]]
    actual = run("tc.log_softmax", x, dtype=dtype, shape=x.shape, axis=1)
    assert_close(actual, from_values(expected, x.shape, dtype))


def _logsumexp_combine(items: list) -> float:
    largest = max(items, default=-INF)
    if math.isinf(largest) or math.isnan(largest):
        return largest
    return largest + math.log(math.fsum(math.exp(v - largest) for v in items))


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize(("shape", "axes"), REDUCTION_CASES)
@pytest.mark.parametrize("dtype", FLOATS)
def test_logsumexp(dtype: np.dtype, shape: Shape, axes: list[int], keepdims: bool) -> None:
    x = sample(dtype, shape, -5, 5)
    expected = reduce_reference(x, axes, keepdims, _logsumexp_combine, dtype) if axes else x.copy()
    actual = run("tc.logsumexp", x, dtype=dtype, shape=expected.shape, axes=axes, keepdims=keepdims)
    assert_close(actual, expected)


@pytest.mark.parametrize("dtype", FLOATS)
def test_logsumexp_extremes(dtype: np.dtype) -> None:
    big = float(np.finfo(dtype).max)
    rows = [[-INF, -INF], [INF, 1.0], [INF, -INF], [big, big], [-big, -big], [NAN, 1.0], [1.0, NAN]]
    x = np.array(rows, dtype=dtype)
    expected = [-INF, INF, INF, big, -big + math.log(2), NAN, NAN]  # big + log 2 rounds to big
    expect("tc.logsumexp", x, dtype=dtype, expected=expected, axes=[1], keepdims=False)


def _layer_norm_row(items: list, gamma: list, beta: list, eps: float) -> list:
    mean = math.fsum(items) / len(items)
    variance = math.fsum((v - mean) ** 2 for v in items) / len(items)
    return [(v - mean) / math.sqrt(variance + eps) * g + b for v, g, b in zip(items, gamma, beta)]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 5), (4,), (2, 0), (0, 4), (3, 1)])
def test_layer_norm(dtype: np.dtype, shape: Shape) -> None:
    x = sample(dtype, shape, -3, 3, 1)
    gamma, beta = sample(dtype, shape[-1:], 0.5, 2, 2), sample(dtype, shape[-1:], -1, 1, 3)
    rows = x.reshape(-1, shape[-1]).tolist() if x.size else []
    values = [_layer_norm_row(row, gamma.tolist(), beta.tolist(), 1e-5) for row in rows]
    actual = run("tc.layer_norm", x, gamma, beta, dtype=dtype, shape=shape, eps=1e-5)
    assert_close(actual, from_values(values, shape, dtype))


@pytest.mark.parametrize("label_dtype", INTS)
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(("rows", "classes"), [(4, 5), (1, 1), (0, 3), (0, 0)])
def test_cross_entropy(dtype: np.dtype, label_dtype: np.dtype, rows: int, classes: int) -> None:
    logits = sample(dtype, (rows, classes), -5, 5, 1)
    labels = sample(label_dtype, (rows,), 0, max(classes - 1, 0), 2)
    pairs = zip(logits.tolist(), labels.tolist())
    expected = from_values(
        [_logsumexp_combine(row) - row[label] for row, label in pairs], (rows,), dtype
    )
    assert_close(run("tc.cross_entropy", logits, labels, dtype=dtype, shape=(rows,)), expected)


def test_cross_entropy_is_stable_and_checks_labels() -> None:
    logits = np.array([[1e4, 0.0], [-1e4, 1e4]], dtype=F32)
    expect("tc.cross_entropy", logits, np.array([1, 1]), dtype=F32, expected=[1e4, 0.0])
    message = r"^cross_entropy: label 12 is out of range for 10 classes$"
    with pytest.raises(IndexError, match=message):
        run(
            "tc.cross_entropy",
            np.zeros((3, 10), F32),
            np.array([0, 12, 11], np.int32),
            dtype=F32,
            shape=(3,),
        )
    with pytest.raises(
        IndexError, match=r"^cross_entropy: label -1 is out of range for 10 classes$"
    ):
        run("tc.cross_entropy", np.zeros((1, 10), F32), np.array([-1]), dtype=F32, shape=(1,))


# ------------------------------------------------------------------ the contract


def test_unsupported_dtypes_raise_not_implemented() -> None:
    with pytest.raises(NotImplementedError, match="bf16 is not supported"):
        run("tc.exp", np.zeros(3, F32), dtype="bf16", shape=(3,))
    with pytest.raises(NotImplementedError, match="uint8 is not supported"):
        run("tc.neg", np.zeros(3, np.uint8), dtype=np.dtype(np.uint8), shape=(3,))
    with pytest.raises(NotImplementedError, match="complex64"):
        run("tc.add", np.zeros(2, np.complex64), np.zeros(2, np.complex64), dtype=F32, shape=(2,))


def test_context_normalises_scalar_types_and_check_results_catches_mismatches() -> None:
    ctx = KernelContext(op_name="tc.add", result_dtypes=[np.float32], result_shapes=[[2]])
    assert ctx.result_dtypes == [F32] and ctx.result_shapes == [(2,)]
    check_results(ctx, np.zeros(2, F32))
    for wrong in (np.zeros(2, F64), np.zeros(3, F32), [0.0, 0.0], (np.zeros(2, F32),) * 2):
        with pytest.raises(AssertionError):
            check_results(ctx, wrong)


def test_zero_dim_operands_give_zero_dim_arrays() -> None:
    for op in ("tc.exp", "tc.sigmoid", "tc.gelu", "tc.erf", "tc.neg", "tc.cast", "tc.softplus"):
        result = run(op, np.array(0.5, F32), dtype=F32, shape=())
        assert isinstance(result, np.ndarray) and result.shape == ()
    expect("tc.add", np.array(1, I32), np.array(2, I32), dtype=I32, expected=3)
    expect("tc.sum", np.array(2.0), dtype=F64, expected=2.0, axes=[], keepdims=False)


def test_attributes_with_ir_defaults_may_be_omitted() -> None:
    x = np.arange(6.0).reshape(2, 3)
    expect("tc.sum", x, dtype=F64, expected=[3.0, 12.0], axes=[1])
    expect("tc.logsumexp", x, dtype=F64, expected=np.log(np.exp(x).sum(0)), axes=[0])
    expect("tc.argmax", x, dtype=I32, expected=5)
    expect("tc.gelu", np.array([0.0]), dtype=F64, expected=[0.0])
    expected = np.array([[-1.0, 0.0, 1.0]] * 2) / math.sqrt(2 / 3 + 1e-5)
    assert_close(
        run("tc.layer_norm", x, np.ones(3), np.zeros(3), dtype=F64, shape=(2, 3)), expected
    )
