"""VJP rules of the elementwise `tc` ops.

Each rule takes the builder, the forward op and the cotangent `g` of its result (a value of
the result's type) and returns one cotangent per operand, or None where an operand receives
no gradient (a condition, an integer). The forward op's operands and result are reused; the
backward ops go before the `tc.grad` being expanded, where all of them are available.

Choices where the derivative is not unique, as in JAX:
- `abs` at 0 and `relu` at 0 give 0; `maximum`/`minimum` split `g` equally between operands
  that are equal, and give all of it to the selected operand otherwise.
- `pow(a, b)`: d/da = b * a**(b-1), taken as 0 where b == 0 (so `x**0` is constant even at
  x == 0); d/db = log(a) * a**b where a > 0 and 0 where a <= 0 (a negative base is only
  defined for integral exponents, where a**b has no derivative in b). The logarithm is taken of
  `select(a > 0, a, 1)`, never of a <= 0, so neither the rule nor its own derivative (for
  nested gradients) produces a NaN that a `select` would then have to hide.
- `mod(a, b)` = a - b*floor(a/b): d/da = 1, d/db = -floor(a/b).
- `cast` passes the gradient back (cast to the operand's dtype) between float dtypes only.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from tensorc.ir.core import Operation, Value
from tensorc.ir.dialects import tc
from tensorc.passes.vjp_builder import GradBuilder

Cotangents = list[Value | None]
ElementwiseRule = Callable[[GradBuilder, Operation, Value], Cotangents]

SQRT_HALF = math.sqrt(0.5)
INV_SQRT_TWO_PI = 1.0 / math.sqrt(2.0 * math.pi)
TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
SQRT_TWO_OVER_PI = math.sqrt(2.0 / math.pi)
GELU_CUBIC = 0.044715


# ----- unary --------------------------------------------------------------------------------


def neg_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    return [b.neg(g)]


def abs_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    return [b.mul(g, b.unary(tc.SignOp, op.x))]


def exp_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    return [b.mul(g, op.result)]


def log_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    return [b.div(g, op.x)]


def log1p_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    return [b.div(g, b.add_scalar(op.x, 1.0))]


def expm1_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    return [b.mul(g, b.add_scalar(op.result, 1.0))]


def sqrt_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    return [b.div(b.scale(g, 0.5), op.result)]


def rsqrt_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    """d/dx x**-0.5 = -0.5 * x**-1.5 = -0.5 * rsqrt(x) / x."""
    return [b.mul(b.scale(g, -0.5), b.div(op.result, op.x))]


def sin_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    return [b.mul(g, b.unary(tc.CosOp, op.x))]


def cos_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    return [b.neg(b.mul(g, b.unary(tc.SinOp, op.x)))]


def tanh_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    tanh = op.result
    return [b.mul(g, b.one_minus(b.mul(tanh, tanh)))]


def sigmoid_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    sigmoid = op.result
    return [b.mul(g, b.mul(sigmoid, b.one_minus(sigmoid)))]


def relu_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    positive = b.compare(tc.GtOp, op.x, b.zeros_like(op.x))
    return [b.select(positive, g, b.zeros_like(g))]


def gelu_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    slope = _gelu_tanh_slope(b, op.x) if op.approximate else _gelu_erf_slope(b, op.x)
    return [b.mul(g, slope)]


def _gelu_erf_slope(b: GradBuilder, x: Value) -> Value:
    """d/dx x*Phi(x) = Phi(x) + x*phi(x), Phi the normal CDF and phi its density."""
    cdf = b.scale(b.add_scalar(b.unary(tc.ErfOp, b.scale(x, SQRT_HALF)), 1.0), 0.5)
    density = b.scale(b.exp(b.scale(b.mul(x, x), -0.5)), INV_SQRT_TWO_PI)
    return b.add(cdf, b.mul(x, density))


def _gelu_tanh_slope(b: GradBuilder, x: Value) -> Value:
    """y = 0.5*x*(1 + tanh(u)), u = c*(x + k*x**3):
    dy/dx = 0.5*(1 + tanh(u)) + 0.5*x*(1 - tanh(u)**2) * c*(1 + 3k*x**2)."""
    x_squared = b.mul(x, x)
    inner = b.scale(b.mul(x, b.add_scalar(b.scale(x_squared, GELU_CUBIC), 1.0)), SQRT_TWO_OVER_PI)
    tanh = b.unary(tc.TanhOp, inner)
    inner_slope = b.scale(b.add_scalar(b.scale(x_squared, 3.0 * GELU_CUBIC), 1.0), SQRT_TWO_OVER_PI)
    outer = b.scale(b.add_scalar(tanh, 1.0), 0.5)
    tanh_slope = b.one_minus(b.mul(tanh, tanh))
    return b.add(outer, b.mul(b.scale(x, 0.5), b.mul(tanh_slope, inner_slope)))


def erf_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    x = op.x
    density = b.scale(b.exp(b.neg(b.mul(x, x))), TWO_OVER_SQRT_PI)
    return [b.mul(g, density)]


def square_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    return [b.mul(g, b.scale(op.x, 2.0))]


def softplus_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    return [b.mul(g, b.unary(tc.SigmoidOp, op.x))]


def cast_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    source = op.x.type.dtype
    if not (source.is_float and op.result.type.dtype.is_float):
        return [None]
    return [b.cast(g, source)]


# ----- binary -------------------------------------------------------------------------------


def add_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    return [g, g]


def sub_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    return [g, b.neg(g)]


def mul_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    return [b.mul(g, op.rhs), b.mul(g, op.lhs)]


def div_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    """d(a/b) = da/b - (a/b) * db/b."""
    over_divisor = b.div(g, op.rhs)
    return [over_divisor, b.neg(b.mul(over_divisor, op.result))]


def pow_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    base, exponent, power = op.lhs, op.rhs, op.result
    zeros = b.zeros_like(base)
    power_rule = b.mul(exponent, b.binary(tc.PowOp, base, b.add_scalar(exponent, -1.0)))
    constant_power = b.compare(tc.EqOp, exponent, zeros)
    base_slope = b.select(constant_power, zeros, power_rule)
    positive = b.compare(tc.GtOp, base, zeros)
    safe_base = b.select(positive, base, b.full_like(base, 1.0))
    exponent_slope = b.mul(power, b.log(safe_base))
    return [b.mul(g, base_slope), b.mul(g, exponent_slope)]


def maximum_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    return _extremum_vjp(b, op, g, tc.GtOp)


def minimum_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    return _extremum_vjp(b, op, g, tc.LtOp)


def _extremum_vjp(b: GradBuilder, op: Operation, g: Value, lhs_wins: type[Operation]) -> Cotangents:
    """All of `g` to the selected operand, half to each where they are equal."""
    lhs, rhs = op.lhs, op.rhs
    tie_share = b.select(b.compare(tc.EqOp, lhs, rhs), b.scale(g, 0.5), b.zeros_like(g))
    lhs_share = b.select(b.compare(lhs_wins, lhs, rhs), g, tie_share)
    return [lhs_share, b.sub(g, lhs_share)]


def mod_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    quotient = b.binary(tc.FloorDivOp, op.lhs, op.rhs)
    return [g, b.neg(b.mul(g, quotient))]


def select_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    zeros = b.zeros_like(g)
    return [None, b.select(op.cond, g, zeros), b.select(op.cond, zeros, g)]


ELEMENTWISE_VJPS: dict[str, ElementwiseRule] = {
    "tc.neg": neg_vjp,
    "tc.abs": abs_vjp,
    "tc.exp": exp_vjp,
    "tc.log": log_vjp,
    "tc.log1p": log1p_vjp,
    "tc.expm1": expm1_vjp,
    "tc.sqrt": sqrt_vjp,
    "tc.rsqrt": rsqrt_vjp,
    "tc.sin": sin_vjp,
    "tc.cos": cos_vjp,
    "tc.tanh": tanh_vjp,
    "tc.sigmoid": sigmoid_vjp,
    "tc.relu": relu_vjp,
    "tc.gelu": gelu_vjp,
    "tc.erf": erf_vjp,
    "tc.square": square_vjp,
    "tc.softplus": softplus_vjp,
    "tc.cast": cast_vjp,
    "tc.add": add_vjp,
    "tc.sub": sub_vjp,
    "tc.mul": mul_vjp,
    "tc.div": div_vjp,
    "tc.pow": pow_vjp,
    "tc.maximum": maximum_vjp,
    "tc.minimum": minimum_vjp,
    "tc.mod": mod_vjp,
    "tc.select": select_vjp,
}
