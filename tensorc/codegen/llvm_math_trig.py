"""sin and cos as branch-free, vectorisable LLVM IR, accurate over the whole range.

Every |x| > pi/4 is reduced modulo pi/2 without loss, Payne-Hanek style, against the bits of
2/pi that matter for its exponent (looked up in private constant tables):

* float: in 64-bit integer arithmetic, as in ARM's optimized-routines sinf/cosf: the 24-bit
  significand (shifted by the exponent's low 3 bits) times a 96-bit window of 2/pi chosen by
  the exponent's high bits gives x 2/pi modulo 4 as a 2.62 fixed-point number (a float's
  fraction has at most 29 leading zeros, so the reduced argument keeps 33 bits; checked here
  over all 2^32 floats: sin and cos stay within 0.57 ulp);
* double: the significand, split into three 24-bit digits, times the 24-bit digits of 2/pi
  (fdlibm's k_rem_pio2 scheme, without its data-dependent loops): partial products are carried
  into exact 24-bit digits in double arithmetic, the fraction is rounded to the nearest
  quadrant digit by digit and summed as a double word, so nothing is lost to cancellation even
  for the worst case (x = 6381956970095103 2^797, |x mod pi/2| ~ 2^-61: cos(x) is within
  0.05 ulp).

The polynomials are evaluated in double (float results are rounded once at the end). See
llvm_math for the conventions and the measured accuracy.
"""

from __future__ import annotations

import math

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


# Double reduction: 53 significand bits in three 24-bit digits, times the 2/pi digits from the
# first one whose product weight is <= 1/2 (m0) on: digit m0 - 1 adds an integer, m0 the
# quadrant and leading fraction bits, then TERMS - 1 more digits (error below 2^-140).
PRECISION = 53
X_DIGITS = 3
TERMS = 8
WEIGHT_OFFSET = PRECISION - 1 - 24 * X_DIGITS + 48  # W_m = 2^(e - WEIGHT_OFFSET - 24 m)

# Float reduction: 32 windows of 2/pi, one per 8 exponent values, as three 32-bit words.
FLOAT_TABLE_NAME = "tensorc.math.two_over_pi_windows"
PIO2_SCALED = PIO2_HI * 2.0**-62  # pi/2 per unit of the 2.62 fixed-point fraction


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


def _float_windows() -> list[int]:
    """For i < 32: floor(2/pi 2^(8i - 56)) mod 2^96 as three 32-bit words, high word first.
    With s = E mod 8 for the biased exponent E = 8i + s, (m << s) times this window is
    x 2/pi 2^62 modulo 2^64 up to the truncated low bits, for x = m 2^(E - 150)."""
    digits = two_over_pi_digits(12)
    scaled = sum(d << (24 * (len(digits) - 1 - k)) for k, d in enumerate(digits))
    bits = 24 * len(digits)
    words = []
    for i in range(32):
        window = scaled >> (bits + 56 - 8 * i)
        words += [(window >> 64) & 0xFFFFFFFF, (window >> 32) & 0xFFFFFFFF,
                  window & 0xFFFFFFFF]
    return words


def _constant_table(module: ir.Module, name: str, element: ir.Type,
                    values: list[float] | list[int]) -> ir.GlobalVariable:
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    array_type = ir.ArrayType(element, len(values))
    table = ir.GlobalVariable(module, array_type, name)
    table.global_constant = True
    table.linkage = "private"
    table.initializer = ir.Constant(array_type, values)
    return table


def _digit_table(module: ir.Module) -> ir.GlobalVariable:
    values = [0.0] * TABLE_PAD + [float(d) for d in two_over_pi_digits(TABLE_DIGITS)]
    return _constant_table(module, TABLE_NAME, ir.DoubleType(), values)


def _window_table(module: ir.Module) -> ir.GlobalVariable:
    return _constant_table(module, FLOAT_TABLE_NAME, ir.IntType(32), _float_windows())


def _gather(builder: ir.IRBuilder, table: ir.GlobalVariable, index: ir.Value) -> ir.Value:
    """table[index] per lane: a load for a scalar index, `llvm.masked.gather` (all lanes on)
    for a vector of indices."""
    element = table.value_type.element
    pointer = builder.gep(table, [index], inbounds=True, source_etype=element)
    if not isinstance(index.type, ir.VectorType):
        return builder.load(pointer, typ=element)
    lanes = index.type.count
    pointer.type = ir.VectorType(ir.PointerType(), lanes)  # llvmlite types it as one pointer
    value_type = ir.VectorType(element, lanes)
    mask_type = ir.VectorType(ir.IntType(1), lanes)
    suffix = "f64" if isinstance(element, ir.DoubleType) else f"i{element.width}"
    name = f"llvm.masked.gather.v{lanes}{suffix}.v{lanes}p0"
    gather = builder.module.globals.get(name)
    if gather is None:
        signature = ir.FunctionType(value_type, [pointer.type, mask_type, value_type])
        gather = ir.Function(builder.module, signature, name)
    return builder.call(gather, [pointer, ir.Constant(mask_type, 1),
                                 ir.Constant(value_type, ir.Undefined)])


def _significand_digits(d: MathEmitter, ax: ir.Value, exponent: ir.Value) -> list[ir.Value]:
    """The significand of ax as X_DIGITS integer digits, most significant first:
    ax = sum x_i 2^(24 (X_DIGITS - 1 - i)) 2^(e - 52)."""
    significand = d.mul(ax, d.pow2(d.isub(d.int_const(PRECISION - 1), exponent)))
    digits = []
    for position in range(X_DIGITS - 1, 0, -1):
        weight = float(1 << (24 * position))
        digit = d.floor(d.mul(significand, 1.0 / weight))
        digits.append(digit)
        significand = d.fma(d.neg(digit), weight, significand)
    return digits + [significand]


def _product_digit(d: MathEmitter, x: list[ir.Value], g: list[ir.Value], m: int) -> ir.Value:
    """Q_(m0+m) = sum_i x_i g_(m0+m-i), exact (each product < 2^48, the sum < 2^50), where
    g[t] holds the 2/pi digit g_(m0 - X_DIGITS + t)."""
    total = d.mul(x[0], g[m + X_DIGITS])
    for i in range(1, X_DIGITS):
        total = d.fma(x[i], g[m + X_DIGITS - i], total)
    return total


def _mod4(d: MathEmitter, value: ir.Value) -> ir.Value:
    """value - 4 floor(value / 4), exact."""
    return d.fma(d.floor(d.mul(value, 0.25)), -4.0, value)


def reduce_pio2_double(d: MathEmitter, ax: ir.Value) -> tuple[ir.Value, ir.Value, ir.Value]:
    """(q, r_hi, r_lo) with ax = (4k + q) pi/2 + r_hi + r_lo, |r| <= pi/4, q in {0,1,2,3} as a
    double; ax finite and > pi/4 (smaller values give garbage); double emitter."""
    bits = d.to_bits(ax)
    exponent = d.isub(d.iand(d.builder.lshr(bits, d.int_const(52)), 0x7FF), 1023)
    exponent = d.int_select(d.builder.icmp_signed("<", exponent, d.int_const(-1)), -1, exponent)
    x = _significand_digits(d, ax, exponent)
    above = d.isub(exponent, WEIGHT_OFFSET - 1)
    above = d.int_select(d.builder.icmp_signed("<", above, d.int_const(0)), 0, above)
    m0 = d.builder.udiv(d.iadd(above, 23), d.int_const(24))  # first digit with W <= 1/2
    weight = d.pow2(d.isub(d.isub(exponent, WEIGHT_OFFSET), d.builder.mul(m0, d.int_const(24))))
    table = _digit_table(d.builder.module)
    start = d.iadd(m0, TABLE_PAD - X_DIGITS)  # table index of g_(m0 - X_DIGITS)
    g = [_gather(d.builder, table, d.iadd(start, t)) for t in range(TERMS + X_DIGITS)]
    # Product digit m0 - 1 has weight >= 1: it adds an integer, kept modulo 4; digits before
    # it add multiples of 4.
    quadrant_extra = _mod4(d, d.mul(_product_digit(d, x, g, -1), d.mul(weight, DIGIT)))
    products = [_product_digit(d, x, g, k) for k in range(TERMS)]
    digits = []
    carried = products[-1]
    for k in range(TERMS - 1, 0, -1):
        carry = d.floor(d.mul(carried, 1.0 / DIGIT))
        digits.insert(0, d.fma(carry, -DIGIT, carried))
        carried = d.add(products[k - 1], carry)
    top = _mod4(d, d.mul(carried, weight))
    quadrant = d.floor(top)
    return _round_to_quadrant(d, d.sub(top, quadrant), digits, weight,
                              d.add(quadrant, quadrant_extra))


def _round_to_quadrant(d: MathEmitter, fraction: ir.Value, digits: list[ir.Value],
                       weight: ir.Value,
                       quadrant: ir.Value) -> tuple[ir.Value, ir.Value, ir.Value]:
    """Round fraction + sum digits_k W 2^(-24 (k+1)) to the nearest quadrant: a fraction of
    1/2 or more becomes its exact complement, digit by digit, with a negative sign. The terms
    are non-negative and each is 0 or at least the sum of the smaller ones, so Fast2Sum is
    exact and the double-word sum is accurate to 2^-104 relative."""
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
        hi, error = d.fast_two_sum(term, hi)
        lo = d.add(lo, error)
    r_hi, r_lo = d.two_prod(hi, PIO2_HI)
    r_hi, r_lo = d.fast_two_sum(r_hi, d.add(r_lo, d.fma(hi, PIO2_LO, d.mul(lo, PIO2_HI))))
    quadrant = _mod4(d, d.add(quadrant, d.select(upper, 1.0, 0.0)))
    return quadrant, d.select(upper, d.neg(r_hi), r_hi), d.select(upper, d.neg(r_lo), r_lo)


def reduce_pio2_float(m: MathEmitter, d: MathEmitter,
                      ax: ir.Value) -> tuple[ir.Value, ir.Value]:
    """(q, r) in double with ax = (4k + q) pi/2 + r, |r| <= pi/4 (+ rounding); ax a float,
    finite and > pi/4. x 2/pi mod 4 as a 2.62 fixed-point number: the significand m (24 bits,
    shifted left by E mod 8 for the biased exponent E) times window E div 8 of 2/pi, three
    32-bit words w0 w1 w2: (m w0 mod 2^32) 2^32 + m w1 + (m w2 >> 32), modulo 2^64."""
    b = m.builder
    bits = m.to_bits(ax)
    biased = m.iand(b.lshr(bits, m.int_const(23)), 0xFF)
    significand = b.or_(m.iand(bits, 0x7FFFFF), m.int_const(0x800000))
    significand = b.shl(significand, m.iand(biased, 7))
    table = _window_table(b.module)
    first = b.mul(b.lshr(biased, m.int_const(3)), m.int_const(3))
    w0, w1, w2 = (_gather(b, table, m.iadd(first, k)) for k in range(3))
    high = b.zext(b.mul(significand, w0), d.int_type)  # only its low 32 bits matter
    wide = b.zext(significand, d.int_type)
    middle = b.mul(wide, b.zext(w1, d.int_type))
    low = b.lshr(b.mul(wide, b.zext(w2, d.int_type)), d.int_const(32))
    fixed = b.add(b.add(d.shl(high, 32), middle), low)
    quadrant = b.lshr(d.iadd(fixed, 1 << 61), d.int_const(62))  # rounded to nearest
    fraction = b.sub(fixed, d.shl(quadrant, 62))  # in [-2^61, 2^61), as signed
    return b.uitofp(d.iand(quadrant, 3), d.type), d.mul(d.to_float(fraction), PIO2_SCALED)


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
    d, xd = m.widened(x)
    ax = d.abs(xd)
    small = d.le(ax, PIO4)
    reducible = d.both(d.lt(ax, math.inf), d.builder.not_(small))
    if m.is_double:
        quadrant, r_hi, r_lo = reduce_pio2_double(d, d.select(reducible, ax, 1.0))
    else:
        ax_float = m.select(reducible, m.abs(x), 1.0)
        (quadrant, r_hi), r_lo = reduce_pio2_float(m, d, ax_float), d.const(0.0)
    quadrant = d.select(small, 0.0, quadrant)
    r_hi = d.select(small, ax, r_hi)
    r_lo = d.select(small, 0.0, r_lo)
    wide = m.is_double
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
