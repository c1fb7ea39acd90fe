"""Transcendental functions for kernel bodies, behind one entry point: `emit_math`.

`emit_math(builder, name, *values)` emits `name` (exp, log, log1p, expm1, sqrt, sin, cos,
tanh, erf, erfc, sigmoid, pow) on scalars or vectors of `half`, `float` or `double`. `half`
is computed in `float` and rounded once, as NumPy does.

The vectorisable polynomial approximations live in `tensorc.codegen.llvm_math`; where that
module does not provide a function, this falls back to the LLVM intrinsic (`llvm.exp.f32`)
or the C library (`erff`), which are exact to an ulp or so but keep loops scalar.
"""

from __future__ import annotations

import llvmlite.ir as ir

from tensorc.codegen.cpu.irutil import F16, F32, declare, intrinsic

try:  # the vectorisable implementations, when that module is present
    from tensorc.codegen import llvm_math as _fast_math
except ImportError:  # pragma: no cover - depends on the checkout
    _fast_math = None

_INTRINSICS = {"exp", "log", "sqrt", "sin", "cos", "tanh", "pow"}
_LIBM = {"log1p", "expm1", "erf", "erfc"}
NAMES = frozenset(_INTRINSICS | _LIBM | {"sigmoid"})


def emit_math(builder: ir.IRBuilder, name: str, *values: ir.Value) -> ir.Value:
    """`name(*values)`; the operands share one floating-point type."""
    if name not in NAMES:
        raise ValueError(f"unknown math function {name!r}")
    value_type = values[0].type
    if value_type == F16:
        widened = [builder.fpext(v, F32) for v in values]
        return builder.fptrunc(emit_math(builder, name, *widened), F16)
    fast = _fast_function(name)
    if fast is not None:
        return fast(builder, *values)
    if name == "sigmoid":
        return _sigmoid(builder, values[0])
    if name in _INTRINSICS:
        function = intrinsic(builder.module, f"llvm.{name}", value_type, len(values))
        return builder.call(function, list(values))
    symbol = name + ("f" if value_type == F32 else "")
    function = declare(builder.module, symbol, value_type, [value_type])
    return builder.call(function, list(values))


def _fast_function(name: str):
    if _fast_math is None:
        return None
    emit = getattr(_fast_math, "emit_math", None)
    if emit is not None and name in getattr(_fast_math, "FUNCTIONS", ()):
        return lambda builder, *values: emit(builder, name, *values)
    return getattr(_fast_math, f"emit_{name}", None)


def _sigmoid(builder: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """`1/(1+e)` for x >= 0 and `e/(1+e)` for x < 0 with `e = exp(-|x|)`: never overflows."""
    value_type = x.type
    one = ir.Constant(value_type, 1.0)
    fabs = intrinsic(builder.module, "llvm.fabs", value_type)
    exp_minus_abs = emit_math(builder, "exp", builder.fneg(builder.call(fabs, [x])))
    denominator = builder.fadd(one, exp_minus_abs)
    non_negative = builder.fcmp_ordered(">=", x, ir.Constant(value_type, 0.0))
    numerator = builder.select(non_negative, one, exp_minus_abs)
    return builder.fdiv(numerator, denominator)
