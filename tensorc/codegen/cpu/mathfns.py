"""Transcendental functions for kernel bodies, behind one entry point: `emit_math`.

`emit_math(builder, name, *values)` emits `name` on scalars or vectors of `half`, `float` or
`double` (`half` is computed in `float` and rounded once, as NumPy does):

    exp expm1 log log1p sqrt rsqrt sin cos tanh erf sigmoid softplus gelu gelu_tanh pow

They come from `tensorc.codegen.llvm_math` (branch-free polynomial approximations that the
loop vectoriser turns into zmm code; accuracy tables there). Where a checkout lacks that
module, or for `erfc`, the LLVM intrinsic or the C library function is called instead: exact
to an ulp, but it keeps the loop scalar.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import llvmlite.ir as ir

from tensorc.codegen.cpu.irutil import F16, F32, declare, intrinsic

try:  # the vectorisable implementations
    from tensorc.codegen.llvm_math_special import BINARY_MATH, UNARY_MATH
except ImportError:  # pragma: no cover - a checkout without them
    UNARY_MATH, BINARY_MATH = {}, {}

_INTRINSICS = frozenset({"exp", "log", "sqrt", "sin", "cos", "tanh", "pow"})
_LIBM = frozenset({"log1p", "expm1", "erf", "erfc"})
_SQRT_HALF = math.sqrt(0.5)
_GELU_TANH_SCALE = 2.0 * math.sqrt(2.0 / math.pi)
_GELU_CUBIC = 0.044715


def emit_math(builder: ir.IRBuilder, name: str, *values: ir.Value) -> ir.Value:
    """`name(*values)`; the operands share one floating-point type."""
    value_type = values[0].type
    if value_type == F16:
        widened = [builder.fpext(v, F32) for v in values]
        return builder.fptrunc(emit_math(builder, name, *widened), F16)
    table = BINARY_MATH if len(values) == 2 else UNARY_MATH
    if name in table:
        return table[name](builder, *values)
    composite = _COMPOSITES.get(name)
    if composite is not None:
        return composite(builder, values[0])
    if name in _INTRINSICS:
        function = intrinsic(builder.module, f"llvm.{name}", value_type, len(values))
        return builder.call(function, list(values))
    if name in _LIBM:
        symbol = name + ("f" if value_type == F32 else "")
        return builder.call(declare(builder.module, symbol, value_type, [value_type]), [values[0]])
    raise ValueError(f"unknown math function {name!r}")


def _const(x: ir.Value, value: float) -> ir.Constant:
    return ir.Constant(x.type, value)


def _fabs(builder: ir.IRBuilder, x: ir.Value) -> ir.Value:
    return builder.call(intrinsic(builder.module, "llvm.fabs", x.type), [x])


def _sigmoid(builder: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """`1/(1+e)` for x >= 0 and `e/(1+e)` for x < 0 with `e = exp(-|x|)`: never overflows."""
    one = _const(x, 1.0)
    exp_minus_abs = emit_math(builder, "exp", builder.fneg(_fabs(builder, x)))
    denominator = builder.fadd(one, exp_minus_abs)
    non_negative = builder.fcmp_ordered(">=", x, _const(x, 0.0))
    return builder.fdiv(builder.select(non_negative, one, exp_minus_abs), denominator)


def _softplus(builder: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """`max(x, 0) + log1p(exp(-|x|))`."""
    tail = emit_math(builder, "log1p", emit_math(builder, "exp", builder.fneg(_fabs(builder, x))))
    positive = builder.select(builder.fcmp_ordered("<", x, _const(x, 0.0)), _const(x, 0.0), x)
    return builder.fadd(positive, tail)


def _rsqrt(builder: ir.IRBuilder, x: ir.Value) -> ir.Value:
    return builder.fdiv(_const(x, 1.0), emit_math(builder, "sqrt", x))


def _gelu(builder: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """`0.5*x*erfc(-x*sqrt(1/2))`: the exact form without the cancellation of `1+erf`."""
    scaled = builder.fmul(builder.fneg(x), _const(x, _SQRT_HALF))
    return builder.fmul(builder.fmul(_const(x, 0.5), x), emit_math(builder, "erfc", scaled))


def _gelu_tanh(builder: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """`x * sigmoid(2*sqrt(2/pi)*(x + 0.044715*x^3))`, which is `0.5*x*(1 + tanh(u))`."""
    cube = builder.fmul(builder.fmul(x, x), x)
    inner = builder.fadd(x, builder.fmul(_const(x, _GELU_CUBIC), cube))
    scaled = builder.fmul(_const(x, _GELU_TANH_SCALE), inner)
    return builder.fmul(x, emit_math(builder, "sigmoid", scaled))


_COMPOSITES: dict[str, Callable[[ir.IRBuilder, ir.Value], ir.Value]] = {
    "sigmoid": _sigmoid,
    "softplus": _softplus,
    "rsqrt": _rsqrt,
    "gelu": _gelu,
    "gelu_tanh": _gelu_tanh,
}
