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

BOOL, I32, I64 = np.dtype(np.bool_), np.dtype(np.int32), np.dtype(np.int64)
F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
FLOATS = [F16, F32, F64]
INTS = [I32, I64]
NUMERIC = INTS + FLOATS
ALL_DTYPES = [BOOL, *NUMERIC]
SHAPES = [(), (1,), (0,), (5,), (2, 3), (2, 0, 3), (1, 4, 1)]
TOLERANCE = {F16: 2e-3, F32: 2e-6, F64: 1e-13}


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


def sample(dtype: np.dtype, shape: Sequence[int], low: float = -3, high: float = 3, seed=0):
    rng = np.random.default_rng(seed)
    if dtype == BOOL:
        return np.asarray(rng.random(shape) < 0.5)
    if dtype.kind == "i":
        return np.asarray(rng.integers(int(low), int(high) + 1, size=shape), dtype=dtype)
    return np.asarray(rng.uniform(low, high, size=shape), dtype=dtype)


def wrap(value: int, dtype: np.dtype) -> int:
    """``value`` reduced to the two's-complement range of integer ``dtype``."""
    bits = np.iinfo(dtype).bits
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


def from_values(values: list, shape: Sequence[int], dtype: np.dtype) -> np.ndarray:
    """Python values (floats rounded once from float64) as an array of ``dtype``."""
    if dtype.kind == "f":
        return np.array(values, dtype=np.float64).reshape(shape).astype(dtype)
    return np.array(values, dtype=dtype).reshape(shape)


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
    unary = "neg abs sign exp log log1p expm1 sqrt rsqrt sin cos tanh sigmoid relu gelu erf "
    unary += "floor ceil square not softplus stop_gradient cast"
    binary = "add sub mul div floordiv mod pow maximum minimum lt le gt ge eq ne and or select"
    other = "constant iota dim broadcast_to reshape transpose slice concat take take_along_axis "
    other += "one_hot scatter_add scatter_add_along_axis sum prod max min mean argmax argmin "
    other += "matmul softmax log_softmax logsumexp layer_norm cross_entropy"
    expected = {f"tc.{name}" for name in f"{unary} {binary} {other}".split()}
    assert set(KERNELS) == expected


# ----------------------------------------------------------------------- unary ops

FLOAT_UNARY: dict[str, tuple[Callable[[float], float], float, float]] = {
    "tc.neg": (lambda v: -v, -3, 3),
    "tc.abs": (abs, -3, 3),
    "tc.sign": (lambda v: float((v > 0) - (v < 0)), -3, 3),
    "tc.exp": (math.exp, -3, 3),
    "tc.log": (math.log, 0.1, 5),
    "tc.log1p": (math.log1p, -0.9, 3),
    "tc.expm1": (math.expm1, -3, 3),
    "tc.sqrt": (math.sqrt, 0, 5),
    "tc.rsqrt": (lambda v: 1 / math.sqrt(v), 0.1, 5),
    "tc.sin": (math.sin, -3, 3),
    "tc.cos": (math.cos, -3, 3),
    "tc.tanh": (math.tanh, -3, 3),
    "tc.sigmoid": (lambda v: 1 / (1 + math.exp(-v)), -8, 8),
    "tc.relu": (lambda v: max(v, 0.0), -3, 3),
    "tc.erf": (math.erf, -3, 3),
    "tc.floor": (math.floor, -3, 3),
    "tc.ceil": (math.ceil, -3, 3),
    "tc.square": (lambda v: v * v, -3, 3),
    "tc.softplus": (lambda v: math.log1p(math.exp(v)), -8, 8),
    "tc.stop_gradient": (lambda v: v, -3, 3),
}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("op", sorted(FLOAT_UNARY))
def test_float_unary(op: str, dtype: np.dtype, shape: tuple[int, ...]) -> None:
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
def test_gelu(approximate: bool, dtype: np.dtype, shape: tuple[int, ...]) -> None:
    x = sample(dtype, shape, -5, 5)
    expected = elementwise(_gelu_tanh if approximate else _gelu_exact, x, dtype=dtype)
    actual = run("tc.gelu", x, dtype=dtype, shape=shape, approximate=approximate)
    # The reference's 1 + erf cancels for negative x: allow its absolute error of ~1e-16.
    np.testing.assert_allclose(actual, expected, rtol=float(np.finfo(dtype).eps), atol=1e-15)


@pytest.mark.parametrize("dtype", FLOATS)
def test_erf_is_float64_rounded_exactly(dtype: np.dtype) -> None:
    x = sample(dtype, (200,), -4, 4)
    np.testing.assert_array_equal(
        run("tc.erf", x, dtype=dtype, shape=x.shape), elementwise(math.erf, x, dtype=dtype)
    )


SPECIAL_VALUES: dict[str, list[tuple[float, float]]] = {
    "tc.exp": [(1000.0, math.inf), (-1000.0, 0.0), (math.inf, math.inf), (-math.inf, 0.0)],
    "tc.log": [(0.0, -math.inf), (-1.0, math.nan), (math.inf, math.inf)],
    "tc.log1p": [(-1.0, -math.inf), (-2.0, math.nan)],
    "tc.sqrt": [(-1.0, math.nan), (math.inf, math.inf)],
    "tc.rsqrt": [(0.0, math.inf), (-1.0, math.nan), (math.inf, 0.0)],
    "tc.sigmoid": [
        (1e4, 1.0),
        (-1e4, 0.0),
        (math.inf, 1.0),
        (-math.inf, 0.0),
        (math.nan, math.nan),
    ],
    "tc.softplus": [
        (1e4, 1e4),
        (-1e4, 0.0),
        (math.inf, math.inf),
        (-math.inf, 0.0),
        (math.nan, math.nan),
    ],
    "tc.relu": [(math.nan, math.nan), (-math.inf, 0.0), (math.inf, math.inf)],
    "tc.sign": [(math.nan, math.nan), (-math.inf, -1.0), (0.0, 0.0)],
    "tc.tanh": [(math.inf, 1.0), (-math.inf, -1.0)],
    "tc.sin": [(math.inf, math.nan)],
    "tc.expm1": [(1000.0, math.inf), (-math.inf, -1.0)],
    "tc.square": [(3e4, 9e8), (-math.inf, math.inf), (math.nan, math.nan)],
    "tc.erf": [(math.inf, 1.0), (-math.inf, -1.0), (math.nan, math.nan)],
    "tc.gelu": [(math.inf, math.inf), (1e4, 1e4), (-1e4, 0.0), (math.nan, math.nan)],
}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("op", sorted(SPECIAL_VALUES))
def test_special_values_without_warnings(op: str, dtype: np.dtype) -> None:
    inputs, outputs = zip(*SPECIAL_VALUES[op])
    x = np.array(inputs, dtype=dtype)
    with np.errstate(over="ignore"):  # 9e8 is inf in float16
        expected = np.array(outputs, dtype=np.float64).astype(dtype)
    np.testing.assert_array_equal(run(op, x, dtype=dtype, shape=x.shape), expected)


INT_UNARY: dict[str, Callable[[int], int]] = {
    "tc.neg": lambda v: -v,
    "tc.abs": abs,
    "tc.sign": lambda v: (v > 0) - (v < 0),
    "tc.relu": lambda v: max(v, 0),
    "tc.floor": lambda v: v,
    "tc.ceil": lambda v: v,
    "tc.square": lambda v: v * v,
    "tc.stop_gradient": lambda v: v,
}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", INTS)
@pytest.mark.parametrize("op", sorted(INT_UNARY))
def test_int_unary_wraps(op: str, dtype: np.dtype, shape: tuple[int, ...]) -> None:
    info = np.iinfo(dtype)
    x = sample(dtype, shape, info.min, info.max)
    if x.size:
        x.flat[0] = info.min
    expected = elementwise(lambda v: wrap(INT_UNARY[op](v), dtype), x, dtype=dtype)
    np.testing.assert_array_equal(run(op, x, dtype=dtype, shape=shape), expected)


@pytest.mark.parametrize("shape", SHAPES)
def test_bool_unary(shape: tuple[int, ...]) -> None:
    x = sample(BOOL, shape)
    np.testing.assert_array_equal(run("tc.not", x, dtype=BOOL, shape=shape), ~x)
    np.testing.assert_array_equal(run("tc.stop_gradient", x, dtype=BOOL, shape=shape), x)


# ---------------------------------------------------------------------------- cast


def _cast_reference(value: object, source: np.dtype, target: np.dtype) -> object:
    if target == BOOL:
        return value != 0
    if target.kind == "f":
        return float(value)
    if source.kind == "f":
        if math.isnan(value):
            return 0
        info = np.iinfo(target)
        if math.isinf(value):
            return info.max if value > 0 else info.min
        return min(max(int(value), int(info.min)), int(info.max))
    return wrap(int(value), target)


@pytest.mark.parametrize("shape", [(), (0,), (7,), (2, 3)])
@pytest.mark.parametrize(("source", "target"), list(itertools.product(ALL_DTYPES, ALL_DTYPES)))
def test_cast(source: np.dtype, target: np.dtype, shape: tuple[int, ...]) -> None:
    x = sample(source, shape, -1000, 1000)
    expected = elementwise(lambda v: _cast_reference(v, source, target), x, dtype=target)
    np.testing.assert_array_equal(run("tc.cast", x, dtype=target, shape=shape), expected)


@pytest.mark.parametrize("source", FLOATS)
@pytest.mark.parametrize("target", INTS)
def test_cast_float_to_int_truncates_and_saturates(source: np.dtype, target: np.dtype) -> None:
    info = np.iinfo(target)
    values = [math.nan, math.inf, -math.inf, 1e30, -1e30, 2.9, -2.9, 0.5, -0.5, -0.0, 65504.0]
    values += [2.0**31 - 1, 2.0**31, -(2.0**31), -(2.0**31) - 1, 2.0**63, -(2.0**63), 2.0**62]
    with np.errstate(over="ignore"):  # 1e30 and friends are inf in float16
        x = np.array(values, dtype=np.float64).astype(source)
    expected = elementwise(lambda v: _cast_reference(v, source, target), x, dtype=target)
    actual = run("tc.cast", x, dtype=target, shape=x.shape)
    np.testing.assert_array_equal(actual, expected)
    assert actual[0] == 0 and actual[1] == info.max and actual[2] == info.min


def test_cast_int_overflows_and_bool() -> None:
    big = np.array([np.iinfo(np.int64).max, 2**40 + 7, -(2**40)], dtype=I64)
    np.testing.assert_array_equal(
        run("tc.cast", big, dtype=F16, shape=(3,)), [np.inf, np.inf, -np.inf]
    )
    np.testing.assert_array_equal(run("tc.cast", big, dtype=I32, shape=(3,)), [-1, 7, 0])
    floats = np.array([0.0, -0.0, math.nan, 0.1, -math.inf])
    np.testing.assert_array_equal(run("tc.cast", floats, dtype=BOOL, shape=(5,)), [0, 0, 1, 1, 1])


# -------------------------------------------------------------------------- binary

BINARY: dict[str, Callable[[object, object], object]] = {
    "tc.add": lambda a, b: a + b,
    "tc.sub": lambda a, b: a - b,
    "tc.mul": lambda a, b: a * b,
    "tc.maximum": max,
    "tc.minimum": min,
}
COMPARISONS: dict[str, Callable[[object, object], bool]] = {
    "tc.lt": lambda a, b: a < b,
    "tc.le": lambda a, b: a <= b,
    "tc.gt": lambda a, b: a > b,
    "tc.ge": lambda a, b: a >= b,
    "tc.eq": lambda a, b: a == b,
    "tc.ne": lambda a, b: a != b,
}


def _binary_operands(dtype: np.dtype, shape: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    if dtype.kind == "i":
        info = np.iinfo(dtype)
        return sample(dtype, shape, info.min, info.max, 1), sample(
            dtype, shape, info.min, info.max, 2
        )
    lhs, rhs = sample(dtype, shape, -4, 4, 1), sample(dtype, shape, -4, 4, 2)
    if lhs.size:
        rhs.flat[0] = lhs.flat[0]  # exercise equality
    return lhs, rhs


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", NUMERIC)
@pytest.mark.parametrize("op", sorted(BINARY))
def test_arithmetic_exact(op: str, dtype: np.dtype, shape: tuple[int, ...]) -> None:
    """+, -, * of f16/f32 are exact when done in float64 and rounded once; ints wrap."""
    lhs, rhs = _binary_operands(dtype, shape)
    function = BINARY[op]
    reference = (lambda a, b: wrap(function(a, b), dtype)) if dtype.kind == "i" else function
    expected = elementwise(reference, lhs, rhs, dtype=dtype)
    np.testing.assert_array_equal(run(op, lhs, rhs, dtype=dtype, shape=shape), expected)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("op", sorted(COMPARISONS))
def test_comparisons(op: str, dtype: np.dtype, shape: tuple[int, ...]) -> None:
    lhs, rhs = _binary_operands(dtype, shape)
    expected = elementwise(COMPARISONS[op], lhs, rhs, dtype=BOOL)
    np.testing.assert_array_equal(run(op, lhs, rhs, dtype=BOOL, shape=shape), expected)


def test_maximum_minimum_propagate_nan_and_bool() -> None:
    lhs = np.array([math.nan, 1.0, -math.inf], dtype=F32)
    rhs = np.array([1.0, math.nan, math.inf], dtype=F32)
    np.testing.assert_array_equal(
        run("tc.maximum", lhs, rhs, dtype=F32, shape=(3,)), [math.nan, math.nan, math.inf]
    )
    np.testing.assert_array_equal(
        run("tc.minimum", lhs, rhs, dtype=F32, shape=(3,)), [math.nan, math.nan, -math.inf]
    )
    a, b = np.array([True, False, True]), np.array([False, False, True])
    np.testing.assert_array_equal(run("tc.maximum", a, b, dtype=BOOL, shape=(3,)), a | b)
    np.testing.assert_array_equal(run("tc.and", a, b, dtype=BOOL, shape=(3,)), a & b)
    np.testing.assert_array_equal(run("tc.or", a, b, dtype=BOOL, shape=(3,)), a | b)
    np.testing.assert_array_equal(run("tc.and", a[:0], b[:0], dtype=BOOL, shape=(0,)), [])
    np.testing.assert_array_equal(run("tc.or", a[0, ...], b[0, ...], dtype=BOOL, shape=()), True)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", FLOATS)
def test_div_is_true_division(dtype: np.dtype, shape: tuple[int, ...]) -> None:
    lhs, rhs = sample(dtype, shape, -4, 4, 1), sample(dtype, shape, 0.5, 4, 2)
    expected = elementwise(lambda a, b: a / b, lhs, rhs, dtype=dtype)
    np.testing.assert_array_equal(run("tc.div", lhs, rhs, dtype=dtype, shape=shape), expected)


@pytest.mark.parametrize("dtype", FLOATS)
def test_float_division_by_zero(dtype: np.dtype) -> None:
    lhs = np.array([1.0, -1.0, 0.0, 5.0, -5.0], dtype=dtype)
    rhs = np.array([0.0, 0.0, 0.0, -3.0, 3.0], dtype=dtype)
    div = run("tc.div", lhs, rhs, dtype=dtype, shape=(5,))
    np.testing.assert_array_equal(div[:3], [math.inf, -math.inf, math.nan])
    floordiv = run("tc.floordiv", lhs, rhs, dtype=dtype, shape=(5,))
    np.testing.assert_array_equal(
        floordiv, np.array([math.inf, -math.inf, math.nan, -2, -2], dtype)
    )
    np.testing.assert_array_equal(
        run("tc.mod", lhs, rhs, dtype=dtype, shape=(5,)), np.array([math.nan] * 3 + [-1, 1], dtype)
    )


def _floor_div(a: int, b: int) -> int:
    return 0 if b == 0 else a // b


def _floor_mod(a: int, b: int) -> int:
    return 0 if b == 0 else a % b


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", INTS)
@pytest.mark.parametrize(("op", "function"), [("tc.floordiv", _floor_div), ("tc.mod", _floor_mod)])
def test_int_floordiv_mod(
    op: str, function: Callable, dtype: np.dtype, shape: tuple[int, ...]
) -> None:
    lhs, rhs = sample(dtype, shape, -20, 20, 1), sample(dtype, shape, -4, 4, 2)
    expected = elementwise(lambda a, b: wrap(function(a, b), dtype), lhs, rhs, dtype=dtype)
    np.testing.assert_array_equal(run(op, lhs, rhs, dtype=dtype, shape=shape), expected)


@pytest.mark.parametrize("dtype", INTS)
def test_int_division_by_zero_and_overflow(dtype: np.dtype) -> None:
    low = int(np.iinfo(dtype).min)
    lhs = np.array([7, -7, 0, low, low, 7, -7, 7, -7], dtype=dtype)
    rhs = np.array([0, 0, 0, 0, -1, 2, 2, -2, -2], dtype=dtype)
    quotient = run("tc.floordiv", lhs, rhs, dtype=dtype, shape=(9,))
    np.testing.assert_array_equal(quotient, [0, 0, 0, 0, low, 3, -4, -4, 3])
    remainder = run("tc.mod", lhs, rhs, dtype=dtype, shape=(9,))
    np.testing.assert_array_equal(remainder, [0, 0, 0, 0, 0, 1, 1, -1, -1])
    scalar = run("tc.floordiv", lhs[0, ...], rhs[0, ...], dtype=dtype, shape=())
    assert scalar.shape == () and scalar == 0


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
def test_int_pow(dtype: np.dtype, shape: tuple[int, ...]) -> None:
    base, exponent = sample(dtype, shape, -5, 5, 1), sample(dtype, shape, -4, 40, 2)
    expected = elementwise(lambda a, b: wrap(_int_pow(a, b), dtype), base, exponent, dtype=dtype)
    np.testing.assert_array_equal(run("tc.pow", base, exponent, dtype=dtype, shape=shape), expected)


@pytest.mark.parametrize("dtype", INTS)
def test_int_pow_negative_exponent(dtype: np.dtype) -> None:
    base = np.array([2, 1, -1, -1, 0, -3, 1], dtype=dtype)
    exponent = np.array([-1, -5, -3, -2, -1, -2, 0], dtype=dtype)
    np.testing.assert_array_equal(
        run("tc.pow", base, exponent, dtype=dtype, shape=(7,)), [0, 1, -1, 1, 0, 0, 1]
    )
    assert run("tc.pow", base[0, ...], exponent[0, ...], dtype=dtype, shape=()) == 0


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", FLOATS)
def test_float_pow(dtype: np.dtype, shape: tuple[int, ...]) -> None:
    base, exponent = sample(dtype, shape, 0.1, 3, 1), sample(dtype, shape, -3, 3, 2)
    assert_close(
        run("tc.pow", base, exponent, dtype=dtype, shape=shape),
        elementwise(math.pow, base, exponent, dtype=dtype),
    )
    special = run(
        "tc.pow",
        np.array([-2.0, 0.0, 1e4], dtype),
        np.array([0.5, -1.0, 1e4], dtype),
        dtype=dtype,
        shape=(3,),
    )
    np.testing.assert_array_equal(special, [math.nan, math.inf, math.inf])


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_select(dtype: np.dtype, shape: tuple[int, ...]) -> None:
    cond, on_true, on_false = (
        sample(BOOL, shape, seed=3),
        sample(dtype, shape, seed=4),
        sample(dtype, shape, seed=5),
    )
    expected = elementwise(lambda c, a, b: a if c else b, cond, on_true, on_false, dtype=dtype)
    np.testing.assert_array_equal(
        run("tc.select", cond, on_true, on_false, dtype=dtype, shape=shape), expected
    )


# ---------------------------------------------------------------- constructors


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_constant_iota_dim(dtype: np.dtype) -> None:
    value = np.array([[1, 0, 3]], dtype=dtype)
    constant = run("tc.constant", dtype=dtype, shape=(1, 3), value=value)
    np.testing.assert_array_equal(constant, value)
    assert not np.shares_memory(constant, value)
    np.testing.assert_array_equal(
        run("tc.constant", dtype=dtype, shape=(0, 2), value=np.zeros((0, 2))), np.zeros((0, 2))
    )
    np.testing.assert_array_equal(run("tc.constant", dtype=dtype, shape=(), value=np.array(1)), 1)
    np.testing.assert_array_equal(run("tc.dim", dtype=dtype, shape=(), value=1), 1)
    if dtype == BOOL:
        return
    np.testing.assert_array_equal(run("tc.iota", dtype=dtype, shape=(5,)), [0, 1, 2, 3, 4])
    assert run("tc.iota", dtype=dtype, shape=(0,)).size == 0
    assert run("tc.dim", dtype=dtype, shape=(), value=42) == 42


# ------------------------------------------------------------------------ shape


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize(
    ("source", "target"),
    [
        ((), (2, 3)),
        ((1,), (4,)),
        ((3,), (2, 3)),
        ((2, 1), (2, 4)),
        ((1, 3), (0, 3)),
        ((2, 1), (3, 2, 5)),
        ((), ()),
    ],
)
def test_broadcast_to(dtype: np.dtype, source: tuple[int, ...], target: tuple[int, ...]) -> None:
    x = sample(dtype, source)
    result = run("tc.broadcast_to", x, dtype=dtype, shape=target)
    assert result.flags.c_contiguous and result.flags.writeable
    offset = len(target) - len(source)
    for index in np.ndindex(*target):
        source_index = tuple(0 if extent == 1 else i for i, extent in zip(index[offset:], source))
        assert result[index] == x[source_index]


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize(
    ("source", "target"),
    [((2, 3), (3, 2)), ((6,), (1, 2, 3)), ((), (1, 1)), ((1,), ()), ((0, 3), (3, 0, 1))],
)
def test_reshape(dtype: np.dtype, source: tuple[int, ...], target: tuple[int, ...]) -> None:
    x = sample(dtype, source)
    result = run("tc.reshape", x, dtype=dtype, shape=target)
    assert result.ravel().tolist() == x.ravel().tolist()


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize(
    ("shape", "perm"), [((2, 3), [1, 0]), ((2, 3, 4), [2, 0, 1]), ((), []), ((0, 2, 1), [1, 2, 0])]
)
def test_transpose(dtype: np.dtype, shape: tuple[int, ...], perm: list[int]) -> None:
    x = sample(dtype, shape)
    result_shape = tuple(shape[axis] for axis in perm)
    result = run("tc.transpose", x, dtype=dtype, shape=result_shape, perm=perm)
    assert result.flags.c_contiguous
    for index in np.ndindex(*shape):
        assert result[tuple(index[axis] for axis in perm)] == x[index]


SLICES = [
    ((7,), [1], [5], [2]),
    ((7,), [-3], [None], [1]),
    ((7,), [None], [-1], [3]),
    ((7,), [-100], [100], [1]),
    ((7,), [5], [2], [1]),
    ((7,), [None], [None], [-2]),
    ((0,), [0], [3], [1]),
    ((3, 4), [1, None], [None, -1], [1, 2]),
    ((3, 4), [10, 0], [20, 4], [1, 1]),
]


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize(("shape", "starts", "stops", "steps"), SLICES)
def test_slice_follows_python(
    dtype: np.dtype, shape: tuple[int, ...], starts: list, stops: list, steps: list
) -> None:
    x = sample(dtype, shape)
    rows = x.tolist()
    expected = rows[slice(starts[0], stops[0], steps[0])]
    if len(shape) == 2:
        expected = [row[slice(starts[1], stops[1], steps[1])] for row in expected]
    expected_array = np.array(expected, dtype=dtype).reshape(
        np.array(expected).shape if expected else (0,) + shape[1:]
    )
    result = run(
        "tc.slice",
        x,
        dtype=dtype,
        shape=expected_array.shape,
        starts=starts,
        stops=stops,
        steps=steps,
    )
    np.testing.assert_array_equal(result, expected_array)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_concat(dtype: np.dtype) -> None:
    a, b, empty = (
        sample(dtype, (2, 3), seed=1),
        sample(dtype, (2, 1), seed=2),
        sample(dtype, (2, 0)),
    )
    result = run("tc.concat", a, empty, b, dtype=dtype, shape=(2, 4), axis=1)
    assert result.tolist() == [ra + rb for ra, rb in zip(a.tolist(), b.tolist())]
    row = sample(dtype, (1, 3), seed=3)
    result = run("tc.concat", a, a[:0], row, dtype=dtype, shape=(3, 3), axis=0)
    assert result.tolist() == a.tolist() + row.tolist()
    single = run("tc.concat", a[0], dtype=dtype, shape=(3,), axis=0)
    assert single.tolist() == a[0].tolist()


# ---------------------------------------------------------------------- gathers


@pytest.mark.parametrize("index_dtype", INTS)
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize(
    ("shape", "index_shape", "axis"),
    [
        ((5,), (3,), 0),
        ((5,), (), 0),
        ((4, 5), (2, 3), 1),
        ((4, 5, 2), (6,), 1),
        ((4, 3), (0,), 0),
        ((0, 3), (2,), 1),
    ],
)
def test_take(
    dtype: np.dtype, index_dtype: np.dtype, shape: tuple, index_shape: tuple, axis: int
) -> None:
    x = sample(dtype, shape)
    size = shape[axis]
    idx = (
        sample(index_dtype, index_shape, -size, size - 1, seed=7)
        if size
        else np.zeros(index_shape, index_dtype)
    )
    result_shape = shape[:axis] + index_shape + shape[axis + 1 :]
    result = run("tc.take", x, idx, dtype=dtype, shape=result_shape, axis=axis)
    for index in np.ndindex(*result_shape):
        position = int(idx[index[axis : axis + len(index_shape)]]) % size
        source = index[:axis] + (position,) + index[axis + len(index_shape) :]
        assert result[index] == x[source]


def test_take_out_of_range_raises() -> None:
    x = np.arange(5.0)
    with pytest.raises(IndexError, match=r"^take: index 7 is out of range for axis 0 with size 5$"):
        run("tc.take", x, np.array([1, 7, 9]), dtype=F64, shape=(3,), axis=0)
    with pytest.raises(
        IndexError, match=r"^take: index -6 is out of range for axis 1 with size 5$"
    ):
        run("tc.take", x.reshape(1, 5), np.array(-6), dtype=F64, shape=(1,), axis=1)
    with pytest.raises(IndexError, match="size 0"):
        run("tc.take", np.zeros((0, 2)), np.array([0]), dtype=F64, shape=(1, 2), axis=0)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize(
    ("shape", "index_shape", "axis"),
    [
        ((4, 5), (4, 3), 1),
        ((4, 5), (2, 5), 0),
        ((4, 5), (1, 2), 1),
        ((1, 5), (3, 2), 1),
        ((3, 4, 2), (3, 0, 2), 1),
        ((6,), (4,), 0),
    ],
)
def test_take_along_axis(dtype: np.dtype, shape: tuple, index_shape: tuple, axis: int) -> None:
    x = sample(dtype, shape)
    size = shape[axis]
    idx = sample(I64, index_shape, -size, size - 1, seed=9)
    result_shape = tuple(
        index_shape[d] if d == axis else max(shape[d], index_shape[d]) for d in range(len(shape))
    )
    result = run("tc.take_along_axis", x, idx, dtype=dtype, shape=result_shape, axis=axis)
    for index in np.ndindex(*result_shape):
        index_position = tuple(0 if index_shape[d] == 1 else index[d] for d in range(len(shape)))
        source = [0 if shape[d] == 1 else index[d] for d in range(len(shape))]
        source[axis] = int(idx[index_position]) % size
        assert result[index] == x[tuple(source)]


def test_take_along_axis_out_of_range_raises() -> None:
    with pytest.raises(
        IndexError, match=r"^take_along_axis: index 3 is out of range for axis 1 with size 3$"
    ):
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
def test_one_hot(index_dtype: np.dtype, index_shape: tuple, n: int) -> None:
    idx = sample(index_dtype, index_shape, -2, n + 1, seed=2)
    result = run("tc.one_hot", idx, dtype=F32, shape=index_shape + (n,), n=n)
    for index in np.ndindex(*index_shape):
        assert result[index].tolist() == [1.0 if int(idx[index]) == k else 0.0 for k in range(n)]


def test_one_hot_out_of_range_is_zero_row() -> None:
    result = run("tc.one_hot", np.array([-1, 3, 1, 100]), dtype=F32, shape=(4, 3), n=3)
    np.testing.assert_array_equal(result, [[0, 0, 0], [0, 0, 0], [0, 1, 0], [0, 0, 0]])


@pytest.mark.parametrize("dtype", NUMERIC)
@pytest.mark.parametrize(
    ("shape", "index_shape", "axis"),
    [
        ((5,), (7,), 0),
        ((4, 5), (2, 3), 1),
        ((3, 4, 2), (), 1),
        ((4, 3), (0,), 0),
        ((6, 2), (3, 1), 0),
    ],
)
def test_scatter_add_is_transpose_of_take(
    dtype: np.dtype, shape: tuple, index_shape: tuple, axis: int
) -> None:
    size = shape[axis]
    x, idx = sample(dtype, shape, -3, 3, seed=1), sample(I32, index_shape, -size, size - 1, seed=2)
    taken_shape = shape[:axis] + index_shape + shape[axis + 1 :]
    updates = sample(dtype, taken_shape, -3, 3, seed=3)
    taken = run("tc.take", x, idx, dtype=dtype, shape=taken_shape, axis=axis)
    scattered = run("tc.scatter_add", updates, idx, dtype=dtype, shape=shape, axis=axis, size=size)
    forward = np.sum(taken.astype(np.float64) * updates.astype(np.float64))
    backward = np.sum(x.astype(np.float64) * scattered.astype(np.float64))
    np.testing.assert_allclose(forward, backward, rtol=TOLERANCE.get(dtype, 0) * 10)
    expected = np.zeros(shape, dtype=np.float64)  # explicit accumulation loop
    for index in np.ndindex(*taken_shape):
        position = int(idx[index[axis : axis + len(index_shape)]]) % size
        expected[index[:axis] + (position,) + index[axis + len(index_shape) :]] += float(
            updates[index]
        )
    assert_close(scattered, expected.astype(dtype))


@pytest.mark.parametrize("dtype", NUMERIC)
@pytest.mark.parametrize(
    ("shape", "index_shape", "axis"),
    [((4, 5), (4, 7), 1), ((4, 5), (2, 5), 0), ((4, 5), (1, 3), 1), ((3, 2, 4), (3, 2, 0), 2)],
)
def test_scatter_add_along_axis_is_transpose(
    dtype: np.dtype, shape: tuple, index_shape: tuple, axis: int
) -> None:
    size = shape[axis]
    x, idx = sample(dtype, shape, -3, 3, seed=1), sample(I64, index_shape, -size, size - 1, seed=2)
    taken_shape = tuple(index_shape[d] if d == axis else shape[d] for d in range(len(shape)))
    updates = sample(dtype, taken_shape, -3, 3, seed=3)
    taken = run("tc.take_along_axis", x, idx, dtype=dtype, shape=taken_shape, axis=axis)
    scattered = run(
        "tc.scatter_add_along_axis", updates, idx, dtype=dtype, shape=shape, axis=axis, size=size
    )
    forward = np.sum(taken.astype(np.float64) * updates.astype(np.float64))
    backward = np.sum(x.astype(np.float64) * scattered.astype(np.float64))
    np.testing.assert_allclose(forward, backward, rtol=TOLERANCE.get(dtype, 0) * 10)


def test_scatter_add_duplicates_and_broadcast_operand() -> None:
    result = run(
        "tc.scatter_add",
        np.array([1, 2, 3, 4], np.int32),
        np.array([0, -1, 0, 2]),
        dtype=I32,
        shape=(3,),
        axis=0,
        size=3,
    )
    np.testing.assert_array_equal(result, [4, 0, 6])
    # take_along_axis of a (1, 3) operand broadcast to 2 rows: the transpose sums the rows.
    summed = run(
        "tc.scatter_add_along_axis",
        np.ones((2, 2)),
        np.array([[0, 2], [2, 2]]),
        dtype=F64,
        shape=(1, 3),
        axis=1,
        size=3,
    )
    np.testing.assert_array_equal(summed, [[1, 0, 3]])
    with pytest.raises(IndexError, match="scatter_add: index 3 is out of range"):
        run("tc.scatter_add", np.ones(2), np.array([0, 3]), dtype=F64, shape=(3,), axis=0, size=3)


# ------------------------------------------------------------------- reductions


def reduced_shape(shape: Sequence[int], axes: Sequence[int], keepdims: bool) -> tuple[int, ...]:
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
    """Apply ``combine`` to the Python values of every reduced slice, in C order."""
    kept = [d for d in range(x.ndim) if d not in axes]
    values = []
    for kept_index in np.ndindex(*[x.shape[d] for d in kept]):
        items = []
        for reduced_index in np.ndindex(*[x.shape[d] for d in axes]):
            full = [0] * x.ndim
            for d, i in zip(kept, kept_index):
                full[d] = i
            for d, i in zip(axes, reduced_index):
                full[d] = i
            items.append(x[tuple(full)].item())
        values.append(combine(items))
    return from_values(values, reduced_shape(x.shape, axes, keepdims), dtype)


def _max_combine(dtype: np.dtype) -> Callable[[list], object]:
    lowest = (
        False if dtype == BOOL else -math.inf if dtype.kind == "f" else int(np.iinfo(dtype).min)
    )
    return lambda items: math.nan if any(v != v for v in items) else max(items, default=lowest)


def _min_combine(dtype: np.dtype) -> Callable[[list], object]:
    highest = True if dtype == BOOL else math.inf if dtype.kind == "f" else int(np.iinfo(dtype).max)
    return lambda items: math.nan if any(v != v for v in items) else min(items, default=highest)


def _sum_combine(dtype: np.dtype) -> Callable[[list], object]:
    if dtype.kind == "f":
        return math.fsum
    return lambda items: wrap(sum(int(v) for v in items), dtype)


def _prod_combine(dtype: np.dtype) -> Callable[[list], object]:
    if dtype.kind == "f":
        return math.prod
    return lambda items: wrap(math.prod(int(v) for v in items), dtype)


def _mean_combine(items: list) -> float:
    return math.fsum(items) / len(items) if items else math.nan


REDUCTION_CASES = [
    ((2, 3, 4), []),
    ((2, 3, 4), [0]),
    ((2, 3, 4), [1]),
    ((2, 3, 4), [2]),
    ((2, 3, 4), [0, 2]),
    ((2, 3, 4), [0, 1, 2]),
    ((2, 0, 3), [1]),
    ((2, 0, 3), [0, 2]),
    ((), []),
    ((5,), [0]),
    ((0,), [0]),
    ((1, 4, 1), [0, 2]),
]
SUM_RESULT = {BOOL: I32, I32: I32, I64: I64, F16: F16, F32: F32, F64: F64}
MEAN_RESULT = {BOOL: F32, I32: F32, I64: F32, F16: F16, F32: F32, F64: F64}


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize(("shape", "axes"), REDUCTION_CASES)
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("op", ["tc.sum", "tc.prod", "tc.max", "tc.min", "tc.mean"])
def test_reductions(
    op: str, dtype: np.dtype, shape: tuple, axes: list[int], keepdims: bool
) -> None:
    if op in ("tc.sum", "tc.prod"):
        result_dtype = SUM_RESULT[dtype]
    else:
        result_dtype = MEAN_RESULT[dtype] if op == "tc.mean" else dtype
    if dtype.kind == "i" and op != "tc.mean":
        info = np.iinfo(dtype)
        x = sample(dtype, shape, info.min, info.max)  # sums and products wrap
    else:
        x = sample(dtype, shape, -1.5, 1.5)
    combine = {
        "tc.sum": _sum_combine(result_dtype),
        "tc.prod": _prod_combine(result_dtype),
        "tc.max": _max_combine(dtype),
        "tc.min": _min_combine(dtype),
        "tc.mean": _mean_combine,
    }[op]
    result_shape = reduced_shape(shape, axes, keepdims)
    if not axes:
        expected = x.astype(result_dtype)
    else:
        expected = reduce_reference(x, axes, keepdims, combine, result_dtype)
    actual = run(op, x, dtype=result_dtype, shape=result_shape, axes=axes, keepdims=keepdims)
    assert_close(actual, expected)


@pytest.mark.parametrize("dtype", FLOATS)
def test_reductions_of_special_values(dtype: np.dtype) -> None:
    x = np.array([[1.0, math.nan, 2.0], [-math.inf, 0.0, math.inf]], dtype=dtype)

    def reduce(op: str) -> np.ndarray:
        return run(op, x, dtype=dtype, shape=(2,), axes=[1], keepdims=False)

    np.testing.assert_array_equal(reduce("tc.max"), [math.nan, math.inf])
    np.testing.assert_array_equal(reduce("tc.min"), [math.nan, -math.inf])
    np.testing.assert_array_equal(reduce("tc.sum"), [math.nan, math.nan])
    np.testing.assert_array_equal(reduce("tc.mean"), [math.nan, math.nan])
    empty = np.zeros((2, 0), dtype=dtype)
    for op, value in [
        ("tc.sum", 0),
        ("tc.prod", 1),
        ("tc.max", -math.inf),
        ("tc.min", math.inf),
        ("tc.mean", math.nan),
    ]:
        np.testing.assert_array_equal(
            run(op, empty, dtype=dtype, shape=(2, 1), axes=[1], keepdims=True), [[value]] * 2
        )


def test_empty_integer_and_bool_reductions() -> None:
    empty = np.zeros((0, 2), dtype=I32)
    np.testing.assert_array_equal(
        run("tc.max", empty, dtype=I32, shape=(2,), axes=[0], keepdims=False),
        [np.iinfo(I32).min] * 2,
    )
    np.testing.assert_array_equal(
        run("tc.min", empty.astype(I64), dtype=I64, shape=(2,), axes=[0], keepdims=False),
        [np.iinfo(I64).max] * 2,
    )
    np.testing.assert_array_equal(
        run("tc.max", empty.astype(bool), dtype=BOOL, shape=(), axes=[0, 1], keepdims=False), False
    )
    np.testing.assert_array_equal(
        run("tc.min", empty.astype(bool), dtype=BOOL, shape=(), axes=[0, 1], keepdims=False), True
    )
    np.testing.assert_array_equal(
        run("tc.sum", np.ones((3, 0), bool), dtype=I32, shape=(3,), axes=[1], keepdims=False),
        [0, 0, 0],
    )
    np.testing.assert_array_equal(
        run("tc.mean", empty, dtype=F32, shape=(2,), axes=[0], keepdims=False), [math.nan] * 2
    )


def test_int32_sum_wraps() -> None:
    x = np.full((3,), np.iinfo(np.int32).max, dtype=I32)
    assert run("tc.sum", x, dtype=I32, shape=(), axes=[0], keepdims=False) == wrap(
        3 * (2**31 - 1), I32
    )
    assert run("tc.mean", x, dtype=F32, shape=(), axes=[0], keepdims=False) == np.float32(2**31 - 1)


def _arg_reference(items: list, pick_max: bool) -> int:
    best = 0
    for position, value in enumerate(items):
        if value != value:  # NaN is the extreme; the first one wins
            return position
        if (value > items[best]) if pick_max else (value < items[best]):
            best = position
    return best


ARG_CASES = [
    ((2, 3, 4), 0),
    ((2, 3, 4), 1),
    ((2, 3, 4), 2),
    ((2, 3, 4), None),
    ((), None),
    ((5,), 0),
    ((2, 0, 3), 1),
    ((2, 0, 3), 0),
    ((2, 0, 3), None),
    ((1,), None),
]


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize(("shape", "axis"), ARG_CASES)
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("op", ["tc.argmax", "tc.argmin"])
def test_argmax_argmin(
    op: str, dtype: np.dtype, shape: tuple, axis: int | None, keepdims: bool
) -> None:
    x = sample(dtype, shape, -2, 2)
    if dtype.kind == "f":
        x = np.round(x)  # ties: the first occurrence wins
        if x.size > 3:
            x.flat[3] = math.nan
    axes = list(range(len(shape))) if axis is None else [axis]
    result_shape = reduced_shape(shape, axes, keepdims)
    pick_max = op == "tc.argmax"
    if axis is None:
        expected = np.full(result_shape, _arg_reference(x.ravel().tolist(), pick_max), dtype=I32)
    else:
        combine = lambda items: _arg_reference(items, pick_max)  # noqa: E731
        expected = reduce_reference(x, axes, keepdims, combine, I32)
    actual = run(op, x, dtype=I32, shape=result_shape, axis=axis, keepdims=keepdims)
    np.testing.assert_array_equal(actual, expected)


# ----------------------------------------------------------------------- matmul


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize(
    ("lhs_shape", "rhs_shape"),
    [
        ((2, 3), (3, 4)),
        ((2, 0), (0, 3)),
        ((0, 3), (3, 2)),
        ((2, 2, 3), (2, 3, 1)),
        ((1, 1), (1, 1)),
        ((3, 2, 4, 5), (3, 2, 5, 2)),
    ],
)
def test_matmul(dtype: np.dtype, lhs_shape: tuple, rhs_shape: tuple) -> None:
    if dtype.kind == "i":
        info = np.iinfo(dtype)
        lhs, rhs = (
            sample(dtype, lhs_shape, info.min, info.max, 1),
            sample(dtype, rhs_shape, info.min, info.max, 2),
        )
    else:
        lhs, rhs = sample(dtype, lhs_shape, seed=1), sample(dtype, rhs_shape, seed=2)
    *batch, rows, inner = lhs_shape
    columns = rhs_shape[-1]
    values = []
    for index in np.ndindex(*batch, rows, columns):
        *b, i, j = index
        products = [(lhs[(*b, i, k)].item(), rhs[(*b, k, j)].item()) for k in range(inner)]
        if dtype == BOOL:
            values.append(any(a and c for a, c in products))
        elif dtype.kind == "i":
            values.append(wrap(sum(a * c for a, c in products), dtype))
        else:
            values.append(math.fsum(a * c for a, c in products))
    expected = from_values(values, (*batch, rows, columns), dtype)
    assert_close(run("tc.matmul", lhs, rhs, dtype=dtype, shape=expected.shape), expected)


# ---------------------------------------------------------------------- neural nets


def _softmax_row(items: list) -> list:
    largest = max(items)
    exponentials = [math.exp(v - largest) for v in items]
    total = math.fsum(exponentials)
    return [e / total for e in exponentials]


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


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(
    ("shape", "axis"),
    [((3, 4), 1), ((3, 4), 0), ((2, 3, 4), 1), ((5,), 0), ((2, 0), 1), ((2, 0), 0), ((3, 1), 1)],
)
@pytest.mark.parametrize(
    ("op", "row_function"), [("tc.softmax", _softmax_row), ("tc.log_softmax", _log_softmax_row)]
)
def test_softmax_and_log_softmax(
    op: str, row_function: Callable, dtype: np.dtype, shape: tuple, axis: int
) -> None:
    x = sample(dtype, shape, -5, 5)
    assert_close(
        run(op, x, dtype=dtype, shape=shape, axis=axis), _along_axis(x, axis, row_function)
    )


@pytest.mark.parametrize("dtype", FLOATS)
def test_softmax_extremes(dtype: np.dtype) -> None:
    big = float(np.finfo(dtype).max)
    x = np.array(
        [[-math.inf, -math.inf, -math.inf], [big, big, -big], [-math.inf, 0.0, -math.inf]],
        dtype=dtype,
    )
    softmax = run("tc.softmax", x, dtype=dtype, shape=x.shape, axis=1)
    np.testing.assert_array_equal(
        softmax, np.array([[math.nan] * 3, [0.5, 0.5, 0.0], [0, 1, 0]], dtype)
    )
    log_softmax = run("tc.log_softmax", x, dtype=dtype, shape=x.shape, axis=1)
    np.testing.assert_array_equal(
        log_softmax[[0, 2]], np.array([[math.nan] * 3, [-math.inf, 0, -math.inf]], dtype)
    )
    assert log_softmax[1, 2] == -math.inf


def _logsumexp_combine(items: list) -> float:
    largest = max(items, default=-math.inf)
    if math.isinf(largest) or math.isnan(largest):
        return largest
    return largest + math.log(math.fsum(math.exp(v - largest) for v in items))


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize(("shape", "axes"), REDUCTION_CASES)
@pytest.mark.parametrize("dtype", FLOATS)
def test_logsumexp(dtype: np.dtype, shape: tuple, axes: list[int], keepdims: bool) -> None:
    x = sample(dtype, shape, -5, 5)
    expected = (
        x.copy() if not axes else reduce_reference(x, axes, keepdims, _logsumexp_combine, dtype)
    )
    actual = run("tc.logsumexp", x, dtype=dtype, shape=expected.shape, axes=axes, keepdims=keepdims)
    assert_close(actual, expected)


@pytest.mark.parametrize("dtype", FLOATS)
def test_logsumexp_extremes(dtype: np.dtype) -> None:
    big = float(np.finfo(dtype).max)
    x = np.array(
        [
            [-math.inf, -math.inf],
            [math.inf, 1.0],
            [math.inf, -math.inf],
            [big, big],
            [-big, -big],
            [math.nan, 1.0],
        ],
        dtype=dtype,
    )
    actual = run("tc.logsumexp", x, dtype=dtype, shape=(6,), axes=[1], keepdims=False)
    np.testing.assert_array_equal(actual[:3], [-math.inf, math.inf, math.inf])
    assert actual[3] == np.array(big, dtype) and actual[4] == np.array(-big, dtype)
    assert math.isnan(actual[5])


def _layer_norm_row(items: list, gamma: list, beta: list, eps: float) -> list:
    mean = math.fsum(items) / len(items)
    variance = math.fsum((v - mean) ** 2 for v in items) / len(items)
    return [(v - mean) / math.sqrt(variance + eps) * g + b for v, g, b in zip(items, gamma, beta)]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 5), (4,), (2, 0), (0, 4), (3, 1)])
def test_layer_norm(dtype: np.dtype, shape: tuple) -> None:
    x = sample(dtype, shape, -3, 3, 1)
    gamma, beta = sample(dtype, shape[-1:], 0.5, 2, 2), sample(dtype, shape[-1:], -1, 1, 3)
    eps = 1e-5
    rows = x.reshape(-1, shape[-1]).tolist() if x.size else []
    values = [_layer_norm_row(row, gamma.tolist(), beta.tolist(), eps) for row in rows]
    expected = from_values(values, shape, dtype)
    assert_close(run("tc.layer_norm", x, gamma, beta, dtype=dtype, shape=shape, eps=eps), expected)


@pytest.mark.parametrize("label_dtype", INTS)
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(("rows", "classes"), [(4, 5), (1, 1), (0, 3), (0, 0)])
def test_cross_entropy(dtype: np.dtype, label_dtype: np.dtype, rows: int, classes: int) -> None:
    logits = sample(dtype, (rows, classes), -5, 5, 1)
    labels = sample(label_dtype, (rows,), 0, max(classes - 1, 0), 2)
    expected = from_values(
        [
            _logsumexp_combine(row) - row[label]
            for row, label in zip(logits.tolist(), labels.tolist())
        ],
        (rows,),
        dtype,
    )
    assert_close(run("tc.cross_entropy", logits, labels, dtype=dtype, shape=(rows,)), expected)


def test_cross_entropy_is_stable_and_checks_labels() -> None:
    logits = np.array([[1e4, 0.0], [-1e4, 1e4]], dtype=F32)
    np.testing.assert_array_equal(
        run("tc.cross_entropy", logits, np.array([1, 1]), dtype=F32, shape=(2,)), [1e4, 0.0]
    )
    with pytest.raises(
        IndexError, match=r"^cross_entropy: label 12 is out of range for 10 classes$"
    ):
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
    for op in ("tc.exp", "tc.sigmoid", "tc.gelu", "tc.erf", "tc.neg", "tc.cast"):
        result = run(op, np.array(0.5, F32), dtype=F32, shape=())
        assert isinstance(result, np.ndarray) and result.shape == ()
    assert run("tc.add", np.array(1, I32), np.array(2, I32), dtype=I32, shape=()) == 3
    assert run("tc.sum", np.array(2.0), dtype=F64, shape=(), axes=[], keepdims=False) == 2.0
