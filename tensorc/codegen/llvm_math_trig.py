"""sin and cos as branch-free, vectorisable LLVM IR, accurate over the whole range.

Arguments are reduced modulo pi/2 exactly, Payne-Hanek style, for every |x| >= pi/4: the
significand, split into 24-bit digits, is multiplied by the 24-bit digits of 2/pi that matter
for its exponent (looked up in a private constant table), the partial products are carried
into exact 24-bit digits in double precision, and the fraction is summed as a double-word
number. Nothing is lost to cancellation, so the reduced argument is accurate to double-word
precision even for the worst cases (x = 6381956970095103 * 2^797, |x mod pi/2| ~ 2^-61).
Floats are reduced and evaluated in double and rounded once at the end. See llvm_math for
the conventions and the measured accuracy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from llvmlite import ir

from tensorc.codegen.llvm_math import MathEmitter

PIO2_HI = 1.5707963267948966  # pi/2 rounded to double
PIO2_LO = 6.123233995736766e-17  # pi/2 - PIO2_HI
PIO4 = 0.7853981633974483

# Cephes sinf.c / cosf.c on [-pi/4, pi/4] (float accuracy; evaluated here in double):
# sin r = r + r^3 P(r^2), cos r = 1 - r^2/2 + r^4 Q(r^2).
SINF_P = (-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1)
COSF_Q = (2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2)
# Cephes sin.c (sincof, coscof), relative error about 1e-16 on [-pi/4, pi/4].
SIN_P = (1.58962301576546568060e-10, -2.50507477628578072866e-8, 2.75573136213857245213e-6,
         -1.98412698295895385996e-4, 8.33333333332211858878e-3, -1.66666666666666307295e-1)
COS_Q = (-1.13585365213876817300e-11, 2.08757008419747316778e-9, -2.75573141792967388112e-7,
         2.48015872888517045348e-5, -1.38888888888730564116e-3, 4.16666666666665929218e-2)

DIGIT = float(1 << 24)
TABLE_NAME = "tensorc.math.two_over_pi_digits"
TABLE_PAD = 3  # zero digits ahead of 2/pi, so that index m0 - digits is never negative
TABLE_DIGITS = 56  # enough for the largest double exponent


@dataclass(frozen=True)
class Reduction:
    """How an element type is reduced: significand bits, the 24-bit digits they take, and the
    number of digits of the product kept below the leading one."""

    precision: int
    digits: int
    terms: int

    @property
    def offset(self) -> int:
        """c in W_m = 2^(e - c - 24 m), the weight of product digit m for exponent e."""
        return self.precision - 1 - 24 * self.digits + 48


# float: 24 bits in one digit, 4 more digits (error below 2^-73 of a quadrant);
# double: 53 bits in three digits, 7 more digits (error below 2^-140).
FLOAT_REDUCTION = Reduction(precision=24, digits=1, terms=5)
DOUBLE_REDUCTION = Reduction(precision=53, digits=3, terms=8)


def _arctan_of_inverse(x: int, scale: int) -> int:
    """atan(1/x) * scale, to within a few units, by the Taylor series."""
    total, power, k = 0, scale // x, 0
    while power:
        term = power // (2 * k + 1)
        total += -term if k % 2 else term
        power //= x * x
        k += 1
    return total


def two_over_pi_digits(count: int) -> list[int]:
    """The first `count` base-2^24 digits of 2/pi after the point (fdlibm's ipio2 table),
    from Machin's formula in integer arithmetic."""
    bits = 24 * count
    guard = 64
    scale = 1 << (bits + 2 * guard)
    pi_scaled = 16 * _arctan_of_inverse(5, scale) - 4 * _arctan_of_inverse(239, scale)
    two_over_pi = ((1 << (2 * bits + 4 * guard + 1)) // pi_scaled) >> (2 * guard)
    return [(two_over_pi >> (24 * (count - 1 - i))) & 0xFFFFFF for i in range(count)]


def _digit_table(module: ir.Module) -> ir.GlobalVariable:
    existing = module.globals.get(TABLE_NAME)
    if existing is not None:
        return existing
    values = [0.0] * TABLE_PAD + [float(d) for d in two_over_pi_digits(TABLE_DIGITS)]
    array_type = ir.ArrayType(ir.DoubleType(), len(values))
    table = ir.GlobalVariable(module, array_type, TABLE_NAME)
    table.global_constant = True
    table.linkage = "private"
    table.initializer = ir.Constant(array_type, values)
    return table


def _lookup(d: MathEmitter, index: ir.Value) -> ir.Value:
    """table[index] per lane (scalar loads; `index` is an i64 value or vector)."""
    b = d.builder
    table = _digit_table(b.module)
    zero = ir.Constant(ir.IntType(64), 0)

    def load(i: ir.Value) -> ir.Value:
        pointer = b.gep(table, [zero, i], inbounds=True, source_etype=table.value_type)
        return b.load(pointer, typ=ir.DoubleType(), align=8)

    if d.lanes is None:
        return load(index)
    result: ir.Value = ir.Constant(d.type, ir.Undefined)
    for lane in range(d.lanes):
        lane_index = ir.Constant(ir.IntType(32), lane)
        result = b.insert_element(result, load(b.extract_element(index, lane_index)), lane_index)
    return result


def _significand_digits(d: MathEmitter, ax: ir.Value, plan: Reduction,
                        exponent: ir.Value) -> list[ir.Value]:
    """The significand of ax as `plan.digits` integer digits (most significant first):
    ax = sum x_i 2^(24 (digits - 1 - i)) * 2^(e - precision + 1)."""
    significand = d.mul(ax, d.pow2(d.isub(d.int_const(plan.precision - 1), exponent)))
    digits = []
    for position in range(plan.digits - 1, 0, -1):
        weight = float(1 << (24 * position))
        digit = d.floor(d.mul(significand, 1.0 / weight))
        digits.append(digit)
        significand = d.fma(d.neg(digit), weight, significand)
    return digits + [significand]


def _product_digit(d: MathEmitter, x: list[ir.Value], g: list[ir.Value], m: int) -> ir.Value:
    """Q_(m0+m) = sum_i x_i g_(m0+m-i), exact (each product < 2^48, the sum < 2^50), where
    g[t] holds the 2/pi digit g_(m0 - len(x) + t)."""
    count = len(x)
    total = d.mul(x[0], g[m + count])
    for i in range(1, count):
        total = d.fma(x[i], g[m + count - i], total)
    return total


def reduce_pio2(d: MathEmitter, ax: ir.Value,
                plan: Reduction) -> tuple[ir.Value, ir.Value, ir.Value]:
    """(q, r_hi, r_lo) with ax = (4k + q) pi/2 + r, |r| <= pi/4, q in {0,1,2,3} (as a float);
    ax finite, >= pi/4 (smaller values give garbage), `d` a double emitter."""
    bits = d.to_bits(ax)
    exponent = d.isub(d.iand(d.builder.lshr(bits, d.int_const(52)), 0x7FF), 1023)
    exponent = d.int_select(d.builder.icmp_signed("<", exponent, d.int_const(-1)), -1, exponent)
    x = _significand_digits(d, ax, plan, exponent)
    # m0: the first product digit whose weight W_m0 = 2^(e - c - 24 m0) is <= 1/2.
    above = d.isub(exponent, plan.offset - 1)
    above = d.int_select(d.builder.icmp_signed("<", above, d.int_const(0)), 0, above)
    m0 = d.builder.udiv(d.iadd(above, 23), d.int_const(24))
    weight = d.pow2(d.isub(d.isub(exponent, plan.offset), d.builder.mul(m0, d.int_const(24))))
    first = d.iadd(m0, TABLE_PAD - plan.digits)  # table index of g_(m0 - digits)
    g = [_lookup(d, d.iadd(first, t)) for t in range(plan.terms + plan.digits)]
    # Product digit m0 - 1 only adds an integer (W >= 1) modulo 4; digits below m0 - 1 add
    # multiples of 4.
    extra = d.mul(_product_digit(d, x, g, -1), d.mul(weight, DIGIT))
    q_extra = d.fma(d.floor(d.mul(extra, 0.25)), -4.0, extra)
    products = [_product_digit(d, x, g, k) for k in range(plan.terms)]
    digits = []
    carry_sum = products[-1]
    for k in range(plan.terms - 1, 0, -1):
        carry = d.floor(d.mul(carry_sum, 1.0 / DIGIT))
        digits.insert(0, d.fma(carry, -DIGIT, carry_sum))
        carry_sum = d.add(products[k - 1], carry)
    top = d.mul(carry_sum, weight)
    top = d.fma(d.floor(d.mul(top, 0.25)), -4.0, top)
    quadrant = d.floor(top)
    fraction = d.sub(top, quadrant)
    return _round_to_quadrant(d, fraction, digits, weight, d.add(quadrant, q_extra))


def _round_to_quadrant(d: MathEmitter, fraction: ir.Value, digits: list[ir.Value],
                       weight: ir.Value,
                       quadrant: ir.Value) -> tuple[ir.Value, ir.Value, ir.Value]:
    """Round fraction + sum digits_k W 2^(-24 (k+1)) to the nearest quadrant: a fraction of
    1/2 or more becomes its exact complement (digit by digit) with a negative sign."""
    upper = d.ge(fraction, 0.5)
    top = d.select(upper, d.sub(d.sub(1.0, fraction), weight), fraction)
    terms = []
    digit_weight = weight
    for k, digit in enumerate(digits):
        digit_weight = d.mul(digit_weight, 1.0 / DIGIT)
        complement = (DIGIT - 1.0) if k < len(digits) - 1 else DIGIT
        terms.append(d.mul(d.select(upper, d.sub(complement, digit), digit), digit_weight))
    hi, lo = terms[-1], d.const(0.0)
    for term in reversed([top] + terms[:-1]):
        hi, error = d.two_sum(term, hi)
        lo = d.add(lo, error)
    r_hi, r_lo = d.two_prod(hi, PIO2_HI)
    r_lo = d.add(r_lo, d.fma(hi, PIO2_LO, d.mul(lo, PIO2_HI)))
    r_hi, r_lo = d.fast_two_sum(r_hi, r_lo)
    sign = d.select(upper, -1.0, 1.0)
    quadrant = d.add(quadrant, d.select(upper, 1.0, 0.0))
    quadrant = d.fma(d.floor(d.mul(quadrant, 0.25)), -4.0, quadrant)
    return quadrant, d.mul(r_hi, sign), d.mul(r_lo, sign)


def _sin_kernel(d: MathEmitter, r_hi: ir.Value, r_lo: ir.Value, wide: bool) -> ir.Value:
    """sin(r_hi + r_lo) for |r| <= pi/4; `wide`: double coefficients and the r_lo term."""
    z = d.mul(r_hi, r_hi)
    r3 = d.mul(r_hi, z)
    if not wide:
        return d.fma(r3, d.poly(z, SINF_P), r_hi)
    tail = d.mul(r_lo, d.fma(z, -0.5, 1.0))
    return d.add(r_hi, d.fma(r3, d.poly(z, SIN_P), tail))


def _cos_kernel(d: MathEmitter, r_hi: ir.Value, r_lo: ir.Value, wide: bool) -> ir.Value:
    """cos(r_hi + r_lo) for |r| <= pi/4, with 1 - r^2/2 kept to double-word (fdlibm k_cos)."""
    z = d.mul(r_hi, r_hi)
    half_z = d.mul(z, 0.5)
    w = d.sub(1.0, half_z)
    lost = d.sub(d.sub(1.0, w), half_z)
    series = d.mul(d.mul(z, z), d.poly(z, COS_Q if wide else COSF_Q))
    if wide:
        series = d.fma(d.neg(r_hi), r_lo, series)
    return d.add(w, d.add(lost, series))


def _sin_cos_reduced(m: MathEmitter,
                     x: ir.Value) -> tuple[MathEmitter, ir.Value, ir.Value, ir.Value, ir.Value]:
    """(double emitter, x in double, quadrant, sin r, cos r) for |x| = quadrant pi/2 + r
    (mod 2 pi)."""
    wide = m.is_double
    d = m if wide else m.retyped(ir.DoubleType())
    xd = x if wide else m.builder.fpext(x, d.type)
    ax = d.abs(xd)
    finite = d.lt(ax, math.inf)
    small = d.le(ax, PIO4)
    reducible = d.select(d.both(finite, d.builder.not_(small)), ax, PIO4 * 2)
    quadrant, r_hi, r_lo = reduce_pio2(d, reducible, DOUBLE_REDUCTION if wide
                                       else FLOAT_REDUCTION)
    quadrant = d.select(small, 0.0, quadrant)
    r_hi = d.select(small, ax, r_hi)
    r_lo = d.select(small, 0.0, r_lo)
    return d, xd, quadrant, _sin_kernel(d, r_hi, r_lo, wide), _cos_kernel(d, r_hi, r_lo, wide)


def _finish(m: MathEmitter, x: ir.Value, value: ir.Value) -> ir.Value:
    """The double result rounded to x's type, NaN where x is not finite."""
    result = value if m.is_double else m.builder.fptrunc(value, m.type)
    return m.select(m.is_finite(x), result, math.nan)


def _swap(d: MathEmitter, quadrant: ir.Value) -> ir.Value:
    return d.either(d.eq(quadrant, 1.0), d.eq(quadrant, 3.0))


def emit_sin(builder: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """sin(x); NaN for +-inf and NaN, sin(-0) = -0."""
    m = MathEmitter.of(builder, x)
    d, xd, quadrant, sin_r, cos_r = _sin_cos_reduced(m, x)
    value = d.select(_swap(d, quadrant), cos_r, sin_r)
    value = d.select(d.ge(quadrant, 2.0), d.neg(value), value)
    return _finish(m, x, d.flip_sign(value, xd))


def emit_cos(builder: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """cos(x); NaN for +-inf and NaN."""
    m = MathEmitter.of(builder, x)
    d, _, quadrant, sin_r, cos_r = _sin_cos_reduced(m, x)
    value = d.select(_swap(d, quadrant), sin_r, cos_r)
    negative = d.either(d.eq(quadrant, 1.0), d.eq(quadrant, 2.0))
    return _finish(m, x, d.select(negative, d.neg(value), value))
