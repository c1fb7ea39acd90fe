"""tanh, sigmoid, softplus, erf and GELU as branch-free, vectorisable LLVM IR, and the registry
of every math emitter (`UNARY_MATH`, `BINARY_MATH`). See llvm_math for the conventions (types,
special values) and the measured accuracy table.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from llvmlite import ir

from tensorc.codegen.llvm_math import (
    F32,
    F64,
    MathEmitter,
    emit_abs,
    emit_ceil,
    emit_exp,
    emit_expm1,
    emit_floor,
    emit_log,
    emit_log1p,
    emit_pow,
    emit_rsqrt,
    emit_sqrt,
    exp_double_word,
    exp_value,
    log1p_value,
)
from tensorc.codegen.llvm_math_trig import emit_cos, emit_sin

# ---------------------------------------------------------------------------------------------
# tanh: x + x^3 P(x^2) below 0.625, 1 - 2/(exp(2|x|) + 1) above.

# Cephes tanhf.c.
TANHF_P = (-5.70498872745e-3, 2.06390887954e-2, -5.37397155531e-2, 1.33314422036e-1,
           -3.33332819422e-1)
# Cephes tanh.c: P(z)/Q(z).
TANH_P = (-9.64399179425052238628e-1, -9.92877231001918586564e1, -1.61468768441708447952e3)
TANH_Q = (1.0, 1.12811678491632931402e2, 2.23548839060100448583e3, 4.84406305325125486048e3)
TANH_SMALL = 0.625
TANH_SATURATION = {F32: 10.0, F64: 22.0}  # tanh rounds to +-1 beyond


def tanh_value(m: MathEmitter, x: ir.Value) -> ir.Value:
    ax = m.abs(x)
    z = m.mul(x, x)
    if m.is_double:
        ratio = m.div(m.poly(z, TANH_P), m.poly(z, TANH_Q))
    else:
        ratio = m.poly(z, TANHF_P)
    small = m.fma(m.mul(x, z), ratio, x)
    e = exp_value(m, m.mul(m.min(ax, TANH_SATURATION[m.fmt]), 2.0))
    large = m.flip_sign(m.sub(1.0, m.div(2.0, m.add(e, 1.0))), x)
    y = m.select(m.lt(ax, TANH_SMALL), small, large)
    return m.keep_zero(x, m.keep_nan(x, y))


def emit_tanh(builder: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """Hyperbolic tangent."""
    return tanh_value(MathEmitter.of(builder, x), x)


# ---------------------------------------------------------------------------------------------
# sigmoid and softplus, both through e = exp(-|x|), which cannot overflow.


def emit_sigmoid(builder: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """1 / (1 + exp(-x)) as 1/(1 + e) for x >= 0 and e/(1 + e) below, e = exp(-|x|)."""
    m = MathEmitter.of(builder, x)
    e = exp_value(m, m.neg(m.abs(x)))
    return m.div(m.select(m.ge(x, 0.0), 1.0, e), m.add(1.0, e))


def emit_softplus(builder: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """log(1 + exp(x)) as log1p(exp(-|x|)) + max(x, 0)."""
    m = MathEmitter.of(builder, x)
    e = exp_value(m, m.neg(m.abs(x)))
    return m.keep_nan(x, m.add(m.max(x, 0.0), log1p_value(m, e)))


# ---------------------------------------------------------------------------------------------
# erf and erfc. Near 0: erf(x) = x P(x^2). Elsewhere erfc(s) = exp(-s^2) R(s) with R a
# polynomial in w = (s - k)/(s + k) (the variable of Schonfelder's Chebyshev expansions, 1978),
# minimax for relative error, fitted with mpmath (Remez exchange, coefficients rounded one at a
# time and the rest refitted) for this module: float on [0.5, 10.2] (k = 2, degree 9, relative
# error 1.9e-8 with the rounded coefficients), double on [0.5, 27.3] (k = 4, degree 21,
# 2e-18 before rounding). exp(-s^2) takes s^2 as a double word.

ERF_SMALL_LIMIT = {F32: 0.5, F64: 0.5}
ERF_SATURATION = {F32: 4.0, F64: 6.0}  # erf rounds to +-1 beyond
ERFC_UNDERFLOW = {F32: 10.2, F64: 27.3}  # erfc is below half the smallest subnormal beyond
TWO_OVER_SQRT_PI = 1.1283791670955126
# erf(x)/x = 2/sqrt(pi) + z P(z), z = x^2 <= 1/4: minimax (mpmath Remez, this module), the
# leading coefficient split into a float hi + lo; relative error 1.6e-9.
ERFF_LEADING = (1.128379225730896, -5.8635382771399236e-08)
ERFF_P = (0.004729321226477623, -0.026763634756207466, 0.11282944679260254,
          -0.37612617015838623)
# Cephes ndtr.c: erf(x) = x T(x^2)/U(x^2) for |x| <= 1 (used below 0.5).
ERF_T = (9.60497373987051638749e0, 9.00260197203842689217e1, 2.23200534594684319226e3,
         7.00332514112805075473e3, 5.55923013010394962768e4)
ERF_U = (1.0, 3.35617141647503099647e1, 5.21357949780152679795e2, 4.59432382970980127987e3,
         2.26290000613890934246e4, 4.92673942608635921086e4)
ERFC_K = {F32: 2.0, F64: 4.0}
ERFC_R = {
    F32: (9.924054756993428e-05, 9.019218850880861e-05, -0.000933877017814666,
          -0.0008737892494536936, 0.006986246909946203, 0.0037385670002549887,
          -0.07897766679525375, 0.2416577935218811, -0.42718586325645447, 0.25539568066596985),
    F64: (),
}


def erf_small(m: MathEmitter, x: ir.Value) -> ir.Value:
    """erf(x) for |x| < 1/2."""
    z = m.mul(x, x)
    if m.is_double:
        return m.mul(x, m.div(m.poly(z, ERF_T), m.poly(z, ERF_U)))
    leading_hi, leading_lo = ERFF_LEADING
    tail = m.fma(z, m.poly(z, ERFF_P), leading_lo)
    return m.fma(x, leading_hi, m.mul(x, tail))


def erfc_scaled(m: MathEmitter, s: ir.Value) -> ir.Value:
    """erfc(s) exp(s^2) for 1/2 <= s <= ERFC_UNDERFLOW."""
    k = ERFC_K[m.fmt]
    w = m.div(m.sub(s, k), m.add(s, k))
    return m.poly(w, ERFC_R[m.fmt])


def erfc_large(m: MathEmitter, s_hi: ir.Value, s_lo: ir.Value | None = None) -> ir.Value:
    """erfc(s_hi + s_lo) to a few ulp relative, for 1/2 <= s_hi <= ERFC_UNDERFLOW."""
    square, square_lo = m.two_prod(s_hi, s_hi)
    if s_lo is not None:
        square_lo = m.fma(m.add(s_hi, s_hi), s_lo, square_lo)
    e = exp_value(m, m.neg(square))
    e = m.fma(m.neg(e), square_lo, e)
    return m.mul(e, erfc_scaled(m, s_hi))


def erf_value(m: MathEmitter, x: ir.Value) -> ir.Value:
    ax = m.abs(x)
    large = m.sub(1.0, erfc_large(m, m.clamp(ax, 0.5, ERF_SATURATION[m.fmt])))
    y = m.select(m.lt(ax, ERF_SMALL_LIMIT[m.fmt]), erf_small(m, x), m.flip_sign(large, x))
    return m.keep_zero(x, m.keep_nan(x, y))


def emit_erf(builder: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """The error function."""
    return erf_value(MathEmitter.of(builder, x), x)


# ---------------------------------------------------------------------------------------------
# GELU

INV_SQRT2 = {F32: (0.70710677, 1.2101617e-08), F64: (0.7071067811865476, -4.833646656726457e-17)}
# gelu(x) rounds to -0 below these (the result is under half the smallest subnormal).
GELU_UNDERFLOW = {F32: -14.357, F64: -38.513}
SQRT_2_OVER_PI = 0.7978845608028654  # both constants of the tanh form are these doubles
GELU_TANH_CUBIC = 0.044715


def gelu_value(m: MathEmitter, x: ir.Value) -> ir.Value:
    """0.5 x erfc(-x/sqrt 2), with -x/sqrt 2 as a double word so that the tail of erfc for
    x < 0 keeps its relative accuracy."""
    hi, lo = INV_SQRT2[m.fmt]
    s_hi, s_lo = m.two_prod(x, -hi)
    s_lo = m.fma(x, -lo, s_lo)
    abs_s = m.abs(s_hi)
    tail = erfc_large(m, m.clamp(abs_s, 0.5, ERFC_UNDERFLOW[m.fmt]), m.flip_sign(s_lo, s_hi))
    far = m.select(m.gt(s_hi, 0.0), tail, m.sub(2.0, tail))
    near = m.sub(1.0, m.fma(s_lo, TWO_OVER_SQRT_PI, erf_small(m, s_hi)))
    erfc_s = m.select(m.lt(abs_s, ERF_SMALL_LIMIT[m.fmt]), near, far)
    y = m.mul(m.mul(x, 0.5), erfc_s)
    y = m.select(m.lt(x, GELU_UNDERFLOW[m.fmt]), -0.0, y)
    return m.keep_nan(x, y)


def emit_gelu(builder: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """GELU, exact form: 0.5 x (1 + erf(x / sqrt 2))."""
    return gelu_value(MathEmitter.of(builder, x), x)


def _gelu_tanh_argument(m: MathEmitter, x: ir.Value) -> tuple[ir.Value, ir.Value]:
    """v = 2u = 2 sqrt(2/pi) (x + 0.044715 x^3) as a double word (hi, lo) in x's type."""
    if not m.is_double:
        d = m.retyped(ir.DoubleType())
        xd = m.builder.fpext(x, d.type)
        cubic = d.fma(d.mul(d.mul(xd, xd), GELU_TANH_CUBIC), xd, xd)
        v = d.mul(cubic, 2.0 * SQRT_2_OVER_PI)
        v_hi = m.builder.fptrunc(v, m.type)
        v_lo = m.builder.fptrunc(d.sub(v, m.builder.fpext(v_hi, d.type)), m.type)
        return v_hi, v_lo
    sq, sq_lo = m.two_prod(x, x)
    cube, cube_lo = m.two_prod(sq, x)
    cube_lo = m.fma(sq_lo, x, cube_lo)
    term, term_lo = m.two_prod(cube, GELU_TANH_CUBIC)
    term_lo = m.fma(cube_lo, GELU_TANH_CUBIC, term_lo)
    inner, inner_lo = m.two_sum(x, term)
    inner_lo = m.add(inner_lo, term_lo)
    v, v_lo = m.two_prod(inner, 2.0 * SQRT_2_OVER_PI)
    v_lo = m.fma(inner_lo, 2.0 * SQRT_2_OVER_PI, v_lo)
    return m.fast_two_sum(v, v_lo)


def gelu_tanh_value(m: MathEmitter, x: ir.Value) -> ir.Value:
    """x sigmoid(2u): x/(1 + e) for u >= 0 and x e/(1 + e) below, e = exp(-|2u|) taken from
    a double-word 2u (its rounding would otherwise be magnified by |2u| for x < 0)."""
    v_hi, v_lo = _gelu_tanh_argument(m, x)
    negative = m.lt(v_hi, 0.0)
    a_hi = m.neg(m.abs(v_hi))
    a_lo = m.select(negative, v_lo, m.neg(v_lo))
    if m.is_double:
        e = exp_double_word(m, a_hi, a_lo)
    else:
        e = exp_value(m, a_hi)
        e = m.fma(e, a_lo, e)
    y = m.div(m.select(negative, m.mul(x, e), x), m.add(1.0, e))
    y = m.select(m.eq(x, -math.inf), -0.0, y)
    return m.keep_nan(x, y)


def emit_gelu_tanh(builder: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), with the
    constants taken as doubles (for float too)."""
    return gelu_tanh_value(MathEmitter.of(builder, x), x)


# ---------------------------------------------------------------------------------------------

UnaryEmitter = Callable[[ir.IRBuilder, ir.Value], ir.Value]
BinaryEmitter = Callable[[ir.IRBuilder, ir.Value, ir.Value], ir.Value]

UNARY_MATH: dict[str, UnaryEmitter] = {
    "exp": emit_exp,
    "expm1": emit_expm1,
    "log": emit_log,
    "log1p": emit_log1p,
    "tanh": emit_tanh,
    "sigmoid": emit_sigmoid,
    "softplus": emit_softplus,
    "erf": emit_erf,
    "gelu": emit_gelu,
    "gelu_tanh": emit_gelu_tanh,
    "sin": emit_sin,
    "cos": emit_cos,
    "sqrt": emit_sqrt,
    "rsqrt": emit_rsqrt,
    "floor": emit_floor,
    "ceil": emit_ceil,
    "abs": emit_abs,
}
BINARY_MATH: dict[str, BinaryEmitter] = {"pow": emit_pow}
