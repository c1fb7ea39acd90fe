"""Interpreter kernels, elementwise: unary and binary ops, casts, constructors, and the
kernel contract (helpers and method: tests/interp_kernel_support.py).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np
import pytest
from interp_kernel_support import (
    ALL_DTYPES,
    BOOL,
    F16,
    F32,
    F64,
    FLOATS,
    I32,
    I64,
    INF,
    INTS,
    NAN,
    NUMERIC,
    SHAPES,
    Shape,
    assert_close,
    elementwise,
    expect,
    from_values,
    full_range,
    run,
    sample,
    wrap,
)

from tensorc.interp.context import KernelContext, check_results
from tensorc.interp.kernels import KERNELS


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
