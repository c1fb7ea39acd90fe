"""tanh, sigmoid, softplus, erf, erfc and GELU as branch-free, vectorisable LLVM IR, and the
registry of every math emitter (`UNARY_MATH`, `BINARY_MATH`: name -> emitter). See llvm_math
for the conventions (types, special values) and the measured accuracy table.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from llvmlite import ir

from tensorc.codegen.llvm_math import (
    EXP_DOMAIN,
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
    exp_double_word_parts,
    exp_parts,
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
    e = exp_value(m, m.neg(m.abs(x)), nonpositive=True)
    return m.div(m.select(m.ge(x, 0.0), 1.0, e), m.add(1.0, e))


def emit_softplus(builder: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """log(1 + exp(x)) as log1p(exp(-|x|)) + max(x, 0)."""
    m = MathEmitter.of(builder, x)
    e = exp_value(m, m.neg(m.abs(x)), nonpositive=True)
    return m.keep_nan(x, m.add(m.max(x, 0.0), log1p_value(m, e)))


# ---------------------------------------------------------------------------------------------
# erf, erfc and GELU, computed in double (float inputs are widened, and rounded once at the end).
# Near 0: erf(x) = x P(x^2). Elsewhere erfc(s) = exp(-s^2) R(s), with R(s) or R(s) (s + c) a
# polynomial in w = (s - k)/(s + k) (the variable of Schonfelder's Chebyshev expansions, 1978),
# minimax for relative error, fitted with mpmath (Remez exchange) for this module. For double,
# c = 0.6875 makes R(s) (s + c) flat where w is most sensitive to rounding (s near 1/2).

ERF_SMALL_LIMIT = 0.5
ERF_SATURATION = {F32: 4.0, F64: 6.0}  # erf rounds to +-1 beyond
# erfc(s) is below half the smallest subnormal beyond (the float fit covers [0.5, 10.2]).
ERFC_UNDERFLOW = {F32: 10.2, F64: 27.3}
TWO_OVER_SQRT_PI = 1.1283791670955126
# erf(x)/x = P(x^2) on |x| <= 1/2, relative error 1.4e-9 (float accuracy).
ERF_P_FLOAT = (0.004717989930535253, -0.026757184200212523, 0.11282822808816574,
               -0.3761260857279334, 1.1283791655673516)
# Double: erf(x)/x = 2/sqrt(pi) + z P(z) on z = x^2 <= 1/4, the leading coefficient as a double
# word; relative error 7.4e-18 with the rounded coefficients.
ERF_LEADING = (1.1283791670955126, 1.533545961316588e-17)
ERF_P = (1.4735921761873463e-06, -1.484693205894846e-05, 0.00012053383191044462,
         -0.0008548298887297392, 0.005223977388265513, -0.026866170634051435,
         0.11283791670930056, -0.3761263890318356)
# Float accuracy: erfc(s) exp(s^2) = P((s - 2)/(s + 2)) on [0.5, 10.2], relative error 1.5e-9.
ERFC_K_FLOAT = 2.0
ERFC_P_FLOAT = (0.00014502169564509926, 6.421863049127564e-05, -0.0009706554774546609,
                -0.0008538574085945863, 0.006995631651728522, 0.0037338339103794517,
                -0.0789784709792382, 0.24165814745465358, -0.4271858488753177,
                0.25539567667796825)
# Double: erfc(s) exp(s^2) (s + 0.6875) = P((s - 4)/(s + 4)) on [0.5, 27.3], relative error
# 1.9e-18 before rounding the coefficients.
ERFC_K_DOUBLE = 4.0
ERFC_C_DOUBLE = 0.6875
ERFC_P_DOUBLE = (-4.795150730492845e-09, -6.421338413706312e-09, 4.956998092149124e-08,
                 3.807752007505656e-08, -3.9263974820458195e-07, 9.666629071915066e-08,
                 2.7772148267641906e-06, -5.060341428468573e-06, -1.2556124565291065e-05,
                 7.108201532118599e-05, -8.481907451271452e-05, -0.0003829670518793986,
                 0.002366148722088457, -0.007337567589068964, 0.016175517886902715,
                 -0.027296609809589877, 0.035033702066773094, -0.03008893725583079,
                 0.0032501864965997084, 0.048699765848484164, -0.11838581756281343,
                 0.6421849576174753)


def erf_small(d: MathEmitter, x: ir.Value, float_accuracy: bool) -> ir.Value:
    """erf(x) for |x| < 1/2 (d: a double emitter)."""
    z = d.mul(x, x)
    if float_accuracy:
        return d.mul(x, d.poly(z, ERF_P_FLOAT))
    leading_hi, leading_lo = ERF_LEADING
    tail = d.fma(z, d.poly(z, ERF_P), leading_lo)
    return d.fma(x, leading_hi, d.mul(x, tail))


def erfc_tail(d: MathEmitter, s: ir.Value, s_lo: ir.Value | None, factor: ir.Value,
              float_accuracy: bool) -> tuple[ir.Value, ir.Value]:
    """(y, n) with factor erfc(s + s_lo) = y 2^n, for 1/2 <= s <= ERFC_UNDERFLOW (d: a double
    emitter; s_lo only with double accuracy), so that callers scale into the subnormals last.
    With double accuracy the product and the quotient by s + c are carried as double words and
    rounded once, and s^2 is a double word (its rounding would be magnified by s^2)."""
    if float_accuracy:
        w = d.div(d.sub(s, ERFC_K_FLOAT), d.add(s, ERFC_K_FLOAT))
        p, n = exp_parts(d, d.neg(d.mul(s, s)), float_accuracy=True)
        scaled = d.mul(factor, d.poly(w, ERFC_P_FLOAT))
        return d.fma(scaled, p, scaled), n
    k = ERFC_K_DOUBLE
    w = d.div(d.sub(s, k), d.add(s, k))
    square, square_lo = d.two_prod(s, s)
    if s_lo is not None:
        square_lo = d.fma(d.add(s, s), s_lo, square_lo)
    p, n = exp_parts(d, d.neg(square), d.neg(square_lo))
    numerator, numerator_lo = d.two_prod(factor, d.poly(w, ERFC_P_DOUBLE))
    denominator, denominator_lo = d.two_sum(s, d.const(ERFC_C_DOUBLE))
    quotient = d.div(numerator, denominator)
    remainder = d.fma(d.neg(quotient), denominator, numerator)
    remainder = d.fma(d.neg(quotient), denominator_lo, d.add(remainder, numerator_lo))
    correction = d.div(remainder, denominator)
    return d.add(quotient, d.fma(quotient, p, correction)), n  # (q + corr)(1 + p)


def _erfc_of_magnitude(d: MathEmitter, ax: ir.Value, limit: float,
                       float_accuracy: bool) -> ir.Value:
    """erfc(|x|) for |x| >= 1/2, |x| clamped to [1/2, limit] (in the widened emitter `d`)."""
    return d.scale(*erfc_tail(d, d.clamp(ax, 0.5, limit), None, d.const(1.0), float_accuracy))


def erf_value(m: MathEmitter, x: ir.Value) -> ir.Value:
    d, xd = m.widened(x)
    float_accuracy = not m.is_double
    ax = d.abs(xd)
    tail = _erfc_of_magnitude(d, ax, ERF_SATURATION[m.fmt], float_accuracy)
    large = d.flip_sign(d.sub(1.0, tail), xd)
    y = d.select(d.lt(ax, ERF_SMALL_LIMIT), erf_small(d, xd, float_accuracy), large)
    return m.keep_zero(x, m.keep_nan(x, m.narrowed(y)))


def emit_erf(builder: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """The error function."""
    return erf_value(MathEmitter.of(builder, x), x)


def erfc_value(m: MathEmitter, x: ir.Value) -> ir.Value:
    d, xd = m.widened(x)
    float_accuracy = not m.is_double
    ax = d.abs(xd)
    tail = _erfc_of_magnitude(d, ax, ERFC_UNDERFLOW[m.fmt], float_accuracy)
    far = d.select(d.gt(xd, 0.0), tail, d.sub(2.0, tail))
    near = d.sub(1.0, erf_small(d, xd, float_accuracy))
    return m.keep_nan(x, m.narrowed(d.select(d.lt(ax, ERF_SMALL_LIMIT), near, far)))


def emit_erfc(builder: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """1 - erf(x), with its relative accuracy for large x (down to the subnormals)."""
    return erfc_value(MathEmitter.of(builder, x), x)


INV_SQRT2 = (0.7071067811865476, -4.833646656726457e-17)  # 1/sqrt(2) as a double word
# gelu(x) rounds to -0 below these (the result is under half the smallest subnormal).
GELU_UNDERFLOW = {F32: -14.357, F64: -38.581}
SQRT_2_OVER_PI = 0.7978845608028654  # both constants of the tanh form are these doubles
GELU_TANH_CUBIC = 0.044715
GELU_TANH_LIMIT = 1e10  # the result is x or -0 well before this


def gelu_value(m: MathEmitter, x: ir.Value) -> ir.Value:
    """0.5 x erfc(-x/sqrt 2). For double, -x/sqrt 2 is a double word so that erfc keeps its
    relative accuracy in the tail (x < 0), where the result is scaled into the subnormals
    last."""
    d, xd = m.widened(x)
    float_accuracy = not m.is_double
    half_x = d.mul(xd, 0.5)
    if float_accuracy:  # the rounding of s is far below float precision
        s, s_lo = d.mul(xd, -INV_SQRT2[0]), d.const(0.0)
    else:
        s, s_lo = d.two_prod(xd, -INV_SQRT2[0])
        s_lo = d.fma(xd, -INV_SQRT2[1], s_lo)
    abs_s = d.abs(s)
    clamped = d.clamp(abs_s, 0.5, ERFC_UNDERFLOW[m.fmt])
    abs_s_lo = None
    if not float_accuracy:
        abs_s_lo = d.select(d.eq(clamped, abs_s), d.flip_sign(s_lo, s), 0.0)
    y, n = erfc_tail(d, clamped, abs_s_lo, half_x, float_accuracy)
    far_negative = d.scale(y, n)  # 0.5 x erfc(|s|) for x < 0
    far_positive = d.select(d.lt(abs_s, ERFC_UNDERFLOW[m.fmt]),  # 0.5 x (2 - erfc(|s|)), x > 0
                            d.sub(xd, far_negative), xd)
    erf_s = erf_small(d, s, float_accuracy)
    if not float_accuracy:
        erf_s = d.fma(s_lo, TWO_OVER_SQRT_PI, erf_s)
    near = d.mul(half_x, d.sub(1.0, erf_s))
    y = d.select(d.gt(s, 0.0), far_negative, far_positive)
    y = m.narrowed(d.select(d.lt(abs_s, ERF_SMALL_LIMIT), near, y))
    y = m.select(m.lt(x, GELU_UNDERFLOW[m.fmt]), -0.0, y)
    return m.keep_nan(x, y)


def emit_gelu(builder: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """GELU, exact form: 0.5 x (1 + erf(x / sqrt 2))."""
    return gelu_value(MathEmitter.of(builder, x), x)


def _gelu_tanh_argument(m: MathEmitter, x: ir.Value) -> tuple[ir.Value, ir.Value]:
    """v = 2u = 2 sqrt(2/pi) (x + 0.044715 x^3) as a double word (double only)."""
    x = m.clamp(x, -GELU_TANH_LIMIT, GELU_TANH_LIMIT)  # keeps x^3 finite (NaN is dropped)
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
    """x sigmoid(2u): x/(1 + e) for u >= 0 and x e/(1 + e) below, e = exp(-|2u|) = (1 + p) 2^n,
    with x (1 + p) in one rounding and the 2^n applied last (one rounding into the subnormals).
    Float is computed in double (v = 2u, whose rounding |2u| magnifies for x < 0, is then
    accurate enough); double takes 2u as a double word."""
    d, xd = m.widened(x)
    if m.is_double:
        v, v_lo = _gelu_tanh_argument(m, x)
        a = d.neg(d.abs(v))
        p, exponent = exp_double_word_parts(d, a, d.select(d.lt(v, 0.0), v_lo, d.neg(v_lo)))
    else:
        xc = d.clamp(xd, -GELU_TANH_LIMIT, GELU_TANH_LIMIT)  # keeps x^3 finite
        v = d.mul(d.fma(d.mul(d.mul(xc, xc), GELU_TANH_CUBIC), xc, xc), 2.0 * SQRT_2_OVER_PI)
        a = d.neg(d.abs(v))
        p, exponent = exp_parts(d, a, float_accuracy=True)
    denominator = d.add(1.0, d.scale(d.add(1.0, p), exponent))
    below = d.scale(d.div(d.fma(xd, p, xd), denominator), exponent)
    below = d.select(d.lt(a, EXP_DOMAIN[F64][0]), -0.0, below)
    result = m.narrowed(d.select(d.lt(v, 0.0), below, d.div(xd, denominator)))
    result = m.select(m.eq(x, -math.inf), -0.0, result)
    return m.keep_nan(x, result)


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
    "erfc": emit_erfc,
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
