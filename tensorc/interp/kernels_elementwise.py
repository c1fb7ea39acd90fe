"""Reference kernels for the elementwise ``tc`` ops, constants, ``tc.iota`` and ``tc.dim``.

Everything is computed in the operand's dtype with NumPy, except ``tc.erf`` and ``tc.gelu``,
which are evaluated in float64 with :mod:`math` and rounded to the result dtype. Integer
arithmetic wraps on overflow; integer ``floordiv``/``mod`` by zero give 0. Kernels here assume
they run under ``np.errstate(all="ignore")`` (the table in :mod:`tensorc.interp.kernels`
arranges it); none of them relies on a warning or an exception from NumPy.

A float-only op (``exp``, ``div``, ...) that receives integer or bool operands while its result
is a float computes in the result dtype: that is what the promotion rules would have inserted.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from tensorc.interp.context import KernelContext, as_result

Kernel = Callable[..., np.ndarray]

_SQRT_HALF = math.sqrt(0.5)
_SQRT_TWO_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_CUBIC = 0.044715


def _float_operand(ctx: KernelContext, x: np.ndarray) -> np.ndarray:
    """``x`` itself if it is a float array, else ``x`` cast to the (float) result dtype."""
    if x.dtype.kind == "f":
        return x
    if ctx.dtype.kind != "f":
        raise TypeError(f"{ctx.op_name}: needs a float operand or result, got {x.dtype}")
    return x.astype(ctx.dtype)


def _float_operands(
    ctx: KernelContext, lhs: np.ndarray, rhs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    return _float_operand(ctx, lhs), _float_operand(ctx, rhs)


def _vectorise_f64(function: Callable[[float], float]) -> Callable[[np.ndarray], np.ndarray]:
    """A Python float function applied elementwise, float64 in and float64 out."""
    object_ufunc = np.frompyfunc(function, 1, 1)

    def apply(x: np.ndarray) -> np.ndarray:
        return np.asarray(object_ufunc(np.asarray(x, dtype=np.float64)), dtype=np.float64)

    return apply


_erf_f64 = _vectorise_f64(math.erf)
_erfc_f64 = _vectorise_f64(math.erfc)


# ----------------------------------------------------------------------------- unary


def neg(ctx: KernelContext, x: np.ndarray) -> np.ndarray:
    return as_result(np.negative(x), ctx.dtype)


def abs_(ctx: KernelContext, x: np.ndarray) -> np.ndarray:
    return as_result(np.absolute(x), ctx.dtype)


def sign(ctx: KernelContext, x: np.ndarray) -> np.ndarray:
    if x.dtype == np.bool_:
        return as_result(x.copy(), ctx.dtype)
    return as_result(np.sign(x), ctx.dtype)


def exp(ctx: KernelContext, x: np.ndarray) -> np.ndarray:
    return as_result(np.exp(_float_operand(ctx, x)), ctx.dtype)


def log(ctx: KernelContext, x: np.ndarray) -> np.ndarray:
    return as_result(np.log(_float_operand(ctx, x)), ctx.dtype)


def log1p(ctx: KernelContext, x: np.ndarray) -> np.ndarray:
    return as_result(np.log1p(_float_operand(ctx, x)), ctx.dtype)


def expm1(ctx: KernelContext, x: np.ndarray) -> np.ndarray:
    return as_result(np.expm1(_float_operand(ctx, x)), ctx.dtype)


def sqrt(ctx: KernelContext, x: np.ndarray) -> np.ndarray:
    return as_result(np.sqrt(_float_operand(ctx, x)), ctx.dtype)


def rsqrt(ctx: KernelContext, x: np.ndarray) -> np.ndarray:
    return as_result(np.reciprocal(np.sqrt(_float_operand(ctx, x))), ctx.dtype)


def sin(ctx: KernelContext, x: np.ndarray) -> np.ndarray:
    return as_result(np.sin(_float_operand(ctx, x)), ctx.dtype)


def cos(ctx: KernelContext, x: np.ndarray) -> np.ndarray:
    return as_result(np.cos(_float_operand(ctx, x)), ctx.dtype)


def tanh(ctx: KernelContext, x: np.ndarray) -> np.ndarray:
    return as_result(np.tanh(_float_operand(ctx, x)), ctx.dtype)


def sigmoid(ctx: KernelContext, x: np.ndarray) -> np.ndarray:
    """``1/(1+exp(-x))`` for x >= 0 and ``exp(x)/(1+exp(x))`` for x < 0: exp never overflows."""
    x = _float_operand(ctx, x)
    exp_minus_abs = np.exp(-np.abs(x))
    one = x.dtype.type(1)
    result = np.where(x >= 0, one / (one + exp_minus_abs), exp_minus_abs / (one + exp_minus_abs))
    return as_result(result, ctx.dtype)


def relu(ctx: KernelContext, x: np.ndarray) -> np.ndarray:
    return as_result(np.maximum(x, x.dtype.type(0)), ctx.dtype)


def gelu(ctx: KernelContext, x: np.ndarray, approximate: bool = False) -> np.ndarray:
    """GELU in float64, rounded to the result dtype.

    The exact form ``0.5*x*(1+erf(x/sqrt(2)))`` is evaluated as ``0.5*x*erfc(-x/sqrt(2))``,
    the same function without the cancellation of ``1+erf`` for negative x.
    """
    x64 = np.asarray(_float_operand(ctx, x), dtype=np.float64)
    if approximate:
        inner = _SQRT_TWO_OVER_PI * (x64 + _GELU_CUBIC * x64**3)
        return as_result(0.5 * x64 * (1.0 + np.tanh(inner)), ctx.dtype)
    return as_result(0.5 * x64 * _erfc_f64(-x64 * _SQRT_HALF), ctx.dtype)


def erf(ctx: KernelContext, x: np.ndarray) -> np.ndarray:
    return as_result(_erf_f64(_float_operand(ctx, x)), ctx.dtype)


def floor(ctx: KernelContext, x: np.ndarray) -> np.ndarray:
    if x.dtype.kind != "f":
        return as_result(x.copy(), ctx.dtype)
    return as_result(np.floor(x), ctx.dtype)


def ceil(ctx: KernelContext, x: np.ndarray) -> np.ndarray:
    if x.dtype.kind != "f":
        return as_result(x.copy(), ctx.dtype)
    return as_result(np.ceil(x), ctx.dtype)


def square(ctx: KernelContext, x: np.ndarray) -> np.ndarray:
    if x.dtype == np.bool_:
        return as_result(x.copy(), ctx.dtype)
    return as_result(np.multiply(x, x), ctx.dtype)


def logical_not(ctx: KernelContext, x: np.ndarray) -> np.ndarray:
    return as_result(np.logical_not(x), ctx.dtype)


def softplus(ctx: KernelContext, x: np.ndarray) -> np.ndarray:
    """``max(x, 0) + log1p(exp(-|x|))``: exact for large |x|, no overflow."""
    x = _float_operand(ctx, x)
    return as_result(np.maximum(x, x.dtype.type(0)) + np.log1p(np.exp(-np.abs(x))), ctx.dtype)


def stop_gradient(ctx: KernelContext, x: np.ndarray) -> np.ndarray:
    return as_result(x.copy(), ctx.dtype)


def _float_to_int(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Truncate toward zero, NaN -> 0, saturate at the bounds of integer ``dtype``."""
    info = np.iinfo(dtype)
    truncated = np.trunc(np.asarray(x, dtype=np.float64))
    # -2**(bits-1) and 2**(bits-1) are exact in float64; every integral float strictly between
    # them converts exactly.
    too_large = truncated >= -float(info.min)
    too_small = truncated < float(info.min)
    out_of_range = too_large | too_small | np.isnan(truncated)
    result = np.where(out_of_range, 0.0, truncated).astype(dtype)
    result[too_large] = info.max
    result[too_small] = info.min
    return result


def cast(ctx: KernelContext, x: np.ndarray) -> np.ndarray:
    """Convert to the result dtype.

    float -> int truncates toward zero, maps NaN to 0 and saturates (+inf -> max);
    anything -> bool is ``x != 0``; bool -> number is 0/1; int -> int wraps;
    to-float conversions round to nearest (overflowing to inf).
    """
    target = np.dtype(ctx.dtype)
    if target == np.bool_:
        return as_result(np.not_equal(x, 0), target) if x.dtype != np.bool_ else x.copy()
    if x.dtype.kind == "f" and target.kind in "iu":
        return _float_to_int(x, target)
    return x.astype(target, copy=True)


# ---------------------------------------------------------------------------- binary


def add(ctx: KernelContext, lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    return as_result(np.add(lhs, rhs), ctx.dtype)


def sub(ctx: KernelContext, lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    return as_result(np.subtract(lhs, rhs), ctx.dtype)


def mul(ctx: KernelContext, lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    return as_result(np.multiply(lhs, rhs), ctx.dtype)


def div(ctx: KernelContext, lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    lhs, rhs = _float_operands(ctx, lhs, rhs)
    return as_result(np.true_divide(lhs, rhs), ctx.dtype)


def floordiv(ctx: KernelContext, lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """NumPy floor division; for integers, division by zero gives 0 and MIN // -1 wraps."""
    if lhs.dtype.kind == "f":
        return as_result(np.floor_divide(lhs, rhs), ctx.dtype)
    divisor_is_zero = rhs == 0
    safe_divisor = np.where(divisor_is_zero, rhs.dtype.type(1), rhs)
    quotient = np.floor_divide(lhs, safe_divisor)
    return as_result(np.where(divisor_is_zero, quotient.dtype.type(0), quotient), ctx.dtype)


def mod(ctx: KernelContext, lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """NumPy remainder (sign of the divisor); for integers, modulo by zero gives 0."""
    if lhs.dtype.kind == "f":
        return as_result(np.remainder(lhs, rhs), ctx.dtype)
    divisor_is_zero = rhs == 0
    safe_divisor = np.where(divisor_is_zero, rhs.dtype.type(1), rhs)
    remainder = np.remainder(lhs, safe_divisor)
    return as_result(np.where(divisor_is_zero, remainder.dtype.type(0), remainder), ctx.dtype)


def pow_(ctx: KernelContext, lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """NumPy power; integer overflow wraps.

    An integer base to a negative integer power is ``1/base**-e`` truncated toward zero: 0,
    except for base 1 (gives 1) and base -1 (gives 1 or -1 by the exponent's parity).
    """
    if lhs.dtype.kind == "f" or rhs.dtype.kind == "f":
        return as_result(np.power(lhs, rhs), ctx.dtype)
    negative_exponent = rhs < 0
    powered = np.power(lhs, np.where(negative_exponent, rhs.dtype.type(0), rhs))
    zero, one = powered.dtype.type(0), powered.dtype.type(1)
    odd_exponent = (rhs % 2) != 0
    minus_one_powered = np.where(odd_exponent, -one, one)
    reciprocal = np.where(lhs == 1, one, np.where(lhs == -1, minus_one_powered, zero))
    return as_result(np.where(negative_exponent, reciprocal, powered), ctx.dtype)


def maximum(ctx: KernelContext, lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    return as_result(np.maximum(lhs, rhs), ctx.dtype)


def minimum(ctx: KernelContext, lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    return as_result(np.minimum(lhs, rhs), ctx.dtype)


def lt(ctx: KernelContext, lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    return as_result(np.less(lhs, rhs), ctx.dtype)


def le(ctx: KernelContext, lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    return as_result(np.less_equal(lhs, rhs), ctx.dtype)


def gt(ctx: KernelContext, lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    return as_result(np.greater(lhs, rhs), ctx.dtype)


def ge(ctx: KernelContext, lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    return as_result(np.greater_equal(lhs, rhs), ctx.dtype)


def eq(ctx: KernelContext, lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    return as_result(np.equal(lhs, rhs), ctx.dtype)


def ne(ctx: KernelContext, lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    return as_result(np.not_equal(lhs, rhs), ctx.dtype)


def logical_and(ctx: KernelContext, lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    return as_result(np.logical_and(lhs, rhs), ctx.dtype)


def logical_or(ctx: KernelContext, lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    return as_result(np.logical_or(lhs, rhs), ctx.dtype)


def select(
    ctx: KernelContext, cond: np.ndarray, on_true: np.ndarray, on_false: np.ndarray
) -> np.ndarray:
    return as_result(np.where(cond, on_true, on_false), ctx.dtype)


# ---------------------------------------------------------------------- constructors


def constant(ctx: KernelContext, value: object) -> np.ndarray:
    """The attribute ``value`` as a fresh array of the result dtype and shape (scalars splat)."""
    array = np.asarray(value, dtype=ctx.dtype)
    return np.array(np.broadcast_to(array, ctx.shape), copy=True)


def iota(ctx: KernelContext) -> np.ndarray:
    (length,) = ctx.shape
    return np.arange(length, dtype=ctx.dtype)


def dim(ctx: KernelContext, value: int) -> np.ndarray:
    return np.array(value, dtype=ctx.dtype)


ELEMENTWISE_KERNELS: dict[str, Kernel] = {
    "tc.neg": neg,
    "tc.abs": abs_,
    "tc.sign": sign,
    "tc.exp": exp,
    "tc.log": log,
    "tc.log1p": log1p,
    "tc.expm1": expm1,
    "tc.sqrt": sqrt,
    "tc.rsqrt": rsqrt,
    "tc.sin": sin,
    "tc.cos": cos,
    "tc.tanh": tanh,
    "tc.sigmoid": sigmoid,
    "tc.relu": relu,
    "tc.gelu": gelu,
    "tc.erf": erf,
    "tc.floor": floor,
    "tc.ceil": ceil,
    "tc.square": square,
    "tc.not": logical_not,
    "tc.softplus": softplus,
    "tc.stop_gradient": stop_gradient,
    "tc.cast": cast,
    "tc.add": add,
    "tc.sub": sub,
    "tc.mul": mul,
    "tc.div": div,
    "tc.floordiv": floordiv,
    "tc.mod": mod,
    "tc.pow": pow_,
    "tc.maximum": maximum,
    "tc.minimum": minimum,
    "tc.lt": lt,
    "tc.le": le,
    "tc.gt": gt,
    "tc.ge": ge,
    "tc.eq": eq,
    "tc.ne": ne,
    "tc.and": logical_and,
    "tc.or": logical_or,
    "tc.select": select,
    "tc.constant": constant,
    "tc.iota": iota,
    "tc.dim": dim,
    "tc.dim_size": dim,  # the IR's name for tc.dim
}
