"""Branch-free, vectorisable math functions emitted as LLVM IR, for float and double.

Every `emit_*` function takes an `llvmlite.ir.IRBuilder` and a value of type `float`, `double`
or an LLVM vector of either (`<16 x float>`, `<8 x double>`, ...) and returns a value of the same
type. The same Python function serves scalars and vectors: constants are splats, and the only
instructions emitted are arithmetic, compares, selects, bitcasts, int/float conversions and
LLVM intrinsics that lower to vector instructions (`llvm.fma`, `llvm.fabs`, `llvm.floor`,
`llvm.roundeven`, `llvm.sqrt`, `llvm.minnum`, `llvm.maxnum`), declared on the builder's module
with their overload suffix (`llvm.fma.v16f32`, `llvm.fma.f64`). No libm calls and no branches,
so a loop over `<16 x float>` stays straight zmm code (libm calls would keep it scalar; see
shared/notes/llvmlite-cpu-facts.md). sin and cos also read private constant tables of 2/pi
(`llvm.masked.gather` on vectors, a load on scalars).

Public API (all `(builder, x) -> value` unless noted):

    this module              emit_exp, emit_expm1, emit_log, emit_log1p,
                             emit_pow(builder, base, exponent),
                             emit_sqrt, emit_rsqrt, emit_floor, emit_ceil, emit_abs
    llvm_math_special        emit_tanh, emit_sigmoid, emit_softplus, emit_erf, emit_erfc,
                             emit_gelu (exact, erf form), emit_gelu_tanh (tanh approximation),
                             UNARY_MATH / BINARY_MATH (name -> emitter, for every function)
    llvm_math_trig           emit_sin, emit_cos (exact Payne-Hanek reduction for every input)

`MathEmitter` (here) is the building block: float ops with splat constants, compares/selects,
integer views of the bits, and error-free transformations (two_sum, two_prod).

Special values follow IEEE/C99: NaN in gives NaN out; exp(-inf) = 0, exp(inf) = inf,
log(0) = -inf, log(x < 0) = NaN, tanh/erf(+-inf) = +-1, sigmoid(-inf) = 0, sin(inf) = NaN,
pow follows C99 Annex F (see `emit_pow`); results overflow to inf and underflow through the
subnormals to 0: subnormal inputs and outputs are computed, not flushed (this assumes the
default floating-point environment: round to nearest, no FTZ/DAZ). Odd functions keep the
sign of zero. Some float functions are computed in double and rounded once (erf, erfc, gelu,
pow, sin, cos), at about twice the cost of a float polynomial.

Accuracy: max error in ulp against the exact result, measured by benchmarks/math_accuracy.py.
float: 2.8M points per function (uniformly spaced bit patterns over all finite floats, dense
ranges, and the neighbourhoods of each function's thresholds and special values) against
float64 NumPy/SciPy; * marks functions also checked on every one of the 2^32 floats
(`--exhaustive`), whose maximum is given. double: 0.85M points against x87 long double, the 50
worst re-checked in mpmath; erf, erfc and the GELUs 0.11M points against mpmath (90 bits).
pow: 2M (float) and 0.6M (double) (base, exponent) pairs against float64 / long double powl.

    function     float    double         function     float    double
    exp          0.97     0.92           erf          0.53     1.11
    expm1        1.44*    1.82           erfc         0.58     2.14
    log          0.82     0.79           gelu         0.59     2.25
    log1p        0.90     0.87           gelu_tanh    0.56     1.94
    tanh         1.33*    1.29           sin          0.56*    0.78
    sigmoid      2.40*    2.11           cos          0.56*    0.77
    softplus     1.75*    1.55           rsqrt        1.49     1.48
    pow          0.50     0.90           sqrt, floor, ceil, abs: exact (0.5, 0, 0, 0)
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from llvmlite import ir

Operand = ir.Value | float | int


@dataclass(frozen=True)
class FloatFormat:
    """The IEEE binary format of one element type."""

    suffix: str  # the intrinsic overload suffix of the scalar type
    bits: int
    precision: int  # significand bits, the implicit one included
    bias: int
    min_exponent: int  # exponent of the smallest normal number
    max_finite: float

    @property
    def mantissa_bits(self) -> int:
        return self.precision - 1

    @property
    def mantissa_mask(self) -> int:
        return (1 << self.mantissa_bits) - 1

    @property
    def one_bits(self) -> int:
        return self.bias << self.mantissa_bits

    @property
    def min_normal(self) -> float:
        return 2.0**self.min_exponent


_LDEXP_SCALING: ContextVar[bool] = ContextVar("tensorc_ldexp_scaling", default=False)


@contextmanager
def ldexp_scaling(enabled: bool) -> Iterator[None]:
    """Within the block, `MathEmitter.scale` emits `llvm.ldexp`: for targets where it is one
    vector instruction (x86 with AVX-512: `vscalefps`); elsewhere LLVM would call libm."""
    token = _LDEXP_SCALING.set(enabled)
    try:
        yield
    finally:
        _LDEXP_SCALING.reset(token)


F32 = FloatFormat("f32", 32, 24, 127, -126, 3.4028234663852886e38)
F64 = FloatFormat("f64", 64, 53, 1023, -1022, 1.7976931348623157e308)


def _format_of(element: ir.Type) -> FloatFormat:
    if isinstance(element, ir.DoubleType):
        return F64
    if isinstance(element, ir.FloatType):
        return F32
    raise TypeError(f"math functions take float or double (or vectors of them), not {element}")


class MathEmitter:
    """An IRBuilder bound to one float type (scalar or vector): constants become splats and
    Python numbers are accepted wherever a value is."""

    def __init__(self, builder: ir.IRBuilder, value_type: ir.Type) -> None:
        is_vector = isinstance(value_type, ir.VectorType)
        element = value_type.element if is_vector else value_type
        self.builder = builder
        self.type = value_type
        self.element = element
        self.fmt = _format_of(element)
        self.lanes: int | None = value_type.count if is_vector else None
        self.int_type = self.shaped(ir.IntType(self.fmt.bits))

    @classmethod
    def of(cls, builder: ir.IRBuilder, value: ir.Value) -> MathEmitter:
        return cls(builder, value.type)

    def shaped(self, scalar: ir.Type) -> ir.Type:
        """`scalar`, or a vector of it with this emitter's lane count."""
        return ir.VectorType(scalar, self.lanes) if self.lanes else scalar

    def retyped(self, element: ir.Type) -> MathEmitter:
        """An emitter for another element type with the same lane count."""
        return MathEmitter(self.builder, self.shaped(element))

    def widened(self, x: ir.Value) -> tuple[MathEmitter, ir.Value]:
        """(a double emitter, x in double): x itself for double, fpext for float."""
        if self.is_double:
            return self, x
        wide = self.retyped(ir.DoubleType())
        return wide, self.builder.fpext(x, wide.type)

    def narrowed(self, value: ir.Value) -> ir.Value:
        """A double `value` (from `widened`) rounded back to this emitter's type."""
        return value if self.is_double else self.builder.fptrunc(value, self.type)

    @property
    def is_double(self) -> bool:
        return self.fmt is F64

    @property
    def lane_prefix(self) -> str:
        """`v16` for 16 lanes, empty for scalars: the vector part of an overload suffix."""
        return f"v{self.lanes}" if self.lanes else ""

    @property
    def suffix(self) -> str:
        return f"{self.lane_prefix}{self.fmt.suffix}"

    # -- constants and operands ---------------------------------------------------------------

    def const(self, value: float) -> ir.Constant:
        return ir.Constant(self.type, float(value))

    def int_const(self, value: int) -> ir.Constant:
        return ir.Constant(self.int_type, value)

    def value(self, operand: Operand) -> ir.Value:
        return operand if isinstance(operand, ir.Value) else self.const(operand)

    def int_value(self, operand: ir.Value | int) -> ir.Value:
        return operand if isinstance(operand, ir.Value) else self.int_const(operand)

    # -- float arithmetic ---------------------------------------------------------------------

    def add(self, a: Operand, b: Operand) -> ir.Value:
        return self.builder.fadd(self.value(a), self.value(b))

    def sub(self, a: Operand, b: Operand) -> ir.Value:
        return self.builder.fsub(self.value(a), self.value(b))

    def mul(self, a: Operand, b: Operand) -> ir.Value:
        return self.builder.fmul(self.value(a), self.value(b))

    def div(self, a: Operand, b: Operand) -> ir.Value:
        return self.builder.fdiv(self.value(a), self.value(b))

    def neg(self, a: ir.Value) -> ir.Value:
        return self.builder.fneg(a)

    def fma(self, a: Operand, b: Operand, c: Operand) -> ir.Value:
        """a * b + c with one rounding."""
        return self.intrinsic("fma", a, b, c)

    def intrinsic(self, name: str, *args: Operand) -> ir.Value:
        """Call `llvm.<name>.<suffix>` (declared once per module) on float operands."""
        values = [self.value(a) for a in args]
        function = self._declared(f"llvm.{name}.{self.suffix}", [self.type] * len(values))
        return self.builder.call(function, values)

    def _declared(self, name: str, params: Sequence[ir.Type],
                  result: ir.Type | None = None) -> ir.Function:
        """The function `name` returning `result` (default: this emitter's type), declared on
        first use."""
        module = self.builder.module
        function = module.globals.get(name)
        if function is None:
            signature = ir.FunctionType(result or self.type, list(params))
            function = ir.Function(module, signature, name)
        return function

    def abs(self, a: ir.Value) -> ir.Value:
        return self.intrinsic("fabs", a)

    def floor(self, a: ir.Value) -> ir.Value:
        return self.intrinsic("floor", a)

    def ceil(self, a: ir.Value) -> ir.Value:
        return self.intrinsic("ceil", a)

    def round_even(self, a: ir.Value) -> ir.Value:
        return self.intrinsic("roundeven", a)

    def sqrt(self, a: ir.Value) -> ir.Value:
        return self.intrinsic("sqrt", a)

    def min(self, a: Operand, b: Operand) -> ir.Value:
        """minnum: a NaN operand yields the other one."""
        return self.intrinsic("minnum", a, b)

    def max(self, a: Operand, b: Operand) -> ir.Value:
        return self.intrinsic("maxnum", a, b)

    def clamp(self, a: ir.Value, low: float, high: float | None) -> ir.Value:
        """`a` limited to [low, high] (no upper limit for None); NaN becomes `low` (callers
        select NaN back in)."""
        a = self.max(a, low)
        return a if high is None else self.min(a, high)

    def clamp_keeping_nan(self, a: ir.Value, low: float, high: float | None) -> ir.Value:
        """`a` limited to [low, high] (no upper limit for None); NaN stays NaN. Each limit is
        a compare and select, which x86 matches to one `vmaxps`/`vminps` with the constant
        first (whose NaN rule returns the second operand)."""
        a = self.select(self.lt(a, low), low, a)
        return a if high is None else self.select(self.gt(a, high), high, a)

    def poly(self, x: ir.Value, coefficients: Sequence[float]) -> ir.Value:
        """Horner's scheme with fma; coefficients from the highest degree down (as polevl)."""
        acc = self.value(coefficients[0])
        for coefficient in coefficients[1:]:
            acc = self.fma(acc, x, coefficient)
        return acc

    # -- compares and selects -----------------------------------------------------------------

    def lt(self, a: Operand, b: Operand) -> ir.Value:
        return self.builder.fcmp_ordered("<", self.value(a), self.value(b))

    def le(self, a: Operand, b: Operand) -> ir.Value:
        return self.builder.fcmp_ordered("<=", self.value(a), self.value(b))

    def gt(self, a: Operand, b: Operand) -> ir.Value:
        return self.builder.fcmp_ordered(">", self.value(a), self.value(b))

    def ge(self, a: Operand, b: Operand) -> ir.Value:
        return self.builder.fcmp_ordered(">=", self.value(a), self.value(b))

    def eq(self, a: Operand, b: Operand) -> ir.Value:
        return self.builder.fcmp_ordered("==", self.value(a), self.value(b))

    def ne(self, a: Operand, b: Operand) -> ir.Value:
        """Ordered and unequal: false when either is NaN."""
        return self.builder.fcmp_ordered("!=", self.value(a), self.value(b))

    def is_nan(self, a: ir.Value) -> ir.Value:
        return self.builder.fcmp_unordered("uno", a, a)

    def is_inf(self, a: ir.Value) -> ir.Value:
        return self.eq(self.abs(a), math.inf)

    def is_finite(self, a: ir.Value) -> ir.Value:
        return self.lt(self.abs(a), math.inf)

    def select(self, cond: ir.Value, a: Operand, b: Operand) -> ir.Value:
        return self.builder.select(cond, self.value(a), self.value(b))

    def int_select(self, cond: ir.Value, a: ir.Value | int, b: ir.Value | int) -> ir.Value:
        return self.builder.select(cond, self.int_value(a), self.int_value(b))

    def both(self, a: ir.Value, b: ir.Value) -> ir.Value:
        return self.builder.and_(a, b)

    def either(self, a: ir.Value, b: ir.Value) -> ir.Value:
        return self.builder.or_(a, b)

    def keep_nan(self, x: ir.Value, result: ir.Value) -> ir.Value:
        """`result`, or `x` itself where `x` is NaN."""
        return self.select(self.is_nan(x), x, result)

    def keep_zero(self, x: ir.Value, result: ir.Value) -> ir.Value:
        """`result`, or `x` itself where `x` is +-0 (odd functions keep the sign of zero)."""
        return self.select(self.eq(x, 0.0), x, result)

    def flip_sign(self, value: ir.Value, sign_source: ir.Value) -> ir.Value:
        """`value` with its sign flipped where `sign_source` has its sign bit set."""
        sign = self.iand(self.to_bits(sign_source), 1 << (self.fmt.bits - 1))
        return self.from_bits(self.builder.xor(self.to_bits(value), sign))

    # -- integer views ------------------------------------------------------------------------

    def to_bits(self, a: ir.Value) -> ir.Value:
        return self.builder.bitcast(a, self.int_type)

    def from_bits(self, a: ir.Value) -> ir.Value:
        return self.builder.bitcast(a, self.type)

    def to_int(self, a: ir.Value) -> ir.Value:
        """fptosi; `a` must be finite and integral-valued in range."""
        return self.builder.fptosi(a, self.int_type)

    def round_to_integer(self, a: ir.Value) -> tuple[ir.Value, ir.Value]:
        """(n, i): `a` rounded to the nearest integer, ties to even, as a float and as an
        integer; `a` must be within the integer type's range, or NaN (then `n` is NaN, or
        under `ldexp_scaling` `i` and `n` are unspecified but not poison). Under
        `ldexp_scaling` this is `llvm.lrint` (one `vcvtps2dq`) and its conversion back, which
        `llvm.ldexp` shares, instead of a rounding and two conversions."""
        if not _LDEXP_SCALING.get():
            n = self.round_even(a)
            return n, self.to_int(n)
        name = f"llvm.lrint.{self.lane_prefix}i{self.fmt.bits}.{self.suffix}"
        i = self.builder.call(self._declared(name, [self.type], self.int_type), [a])
        return self.to_float(i), i

    @property
    def scale_keeps_nan(self) -> bool:
        """`scale(NaN, i)` is NaN for every `i` from `round_to_integer` (none is poison)."""
        return _LDEXP_SCALING.get()

    def to_float(self, a: ir.Value) -> ir.Value:
        return self.builder.sitofp(a, self.type)

    def iadd(self, a: ir.Value, b: ir.Value | int) -> ir.Value:
        return self.builder.add(a, self.int_value(b))

    def isub(self, a: ir.Value, b: ir.Value | int) -> ir.Value:
        return self.builder.sub(a, self.int_value(b))

    def iand(self, a: ir.Value, b: ir.Value | int) -> ir.Value:
        return self.builder.and_(a, self.int_value(b))

    def shl(self, a: ir.Value, bits: int) -> ir.Value:
        return self.builder.shl(a, self.int_const(bits))

    def ashr(self, a: ir.Value, bits: int) -> ir.Value:
        return self.builder.ashr(a, self.int_const(bits))

    def igt(self, a: ir.Value, b: ir.Value | int) -> ir.Value:
        return self.builder.icmp_signed(">", a, self.int_value(b))

    def _ldexp(self, y: ir.Value, exponent: ir.Value) -> ir.Value:
        i32 = self.shaped(ir.IntType(32))
        if self.is_double:
            exponent = self.builder.trunc(exponent, i32)
        name = f"llvm.ldexp.{self.suffix}.{self.lane_prefix}i32"
        function = self._declared(name, [self.type, i32])
        return self.builder.call(function, [y, exponent])

    def pow2(self, exponent: ir.Value) -> ir.Value:
        """2**exponent for an integer exponent within the normal range."""
        biased = self.iadd(exponent, self.fmt.bias)
        return self.from_bits(self.shl(biased, self.fmt.mantissa_bits))

    def scale(self, y: ir.Value, exponent: ir.Value) -> ir.Value:
        """y * 2**exponent for |exponent| up to twice the normal exponent range: y 2^(e/2) is
        exact, and the second product rounds once (into the subnormals, or to inf). Under
        `ldexp_scaling` it is one `llvm.ldexp` (AVX-512's `vscalefps`: the same one rounding)."""
        if _LDEXP_SCALING.get():
            return self._ldexp(y, exponent)
        half = self.ashr(exponent, 1)
        rest = self.isub(exponent, half)
        return self.mul(self.mul(y, self.pow2(half)), self.pow2(rest))

    # -- double-word arithmetic (error-free transformations) ----------------------------------

    def two_sum(self, a: ir.Value, b: ir.Value) -> tuple[ir.Value, ir.Value]:
        """(s, e) with s = fl(a + b) and s + e = a + b exactly (Knuth)."""
        s = self.add(a, b)
        b_virtual = self.sub(s, a)
        a_virtual = self.sub(s, b_virtual)
        return s, self.add(self.sub(a, a_virtual), self.sub(b, b_virtual))

    def fast_two_sum(self, a: ir.Value, b: Operand) -> tuple[ir.Value, ir.Value]:
        """(s, e) with s + e = a + b exactly, provided |a| >= |b| (Dekker)."""
        s = self.add(a, b)
        return s, self.sub(b, self.sub(s, a))

    def two_prod(self, a: Operand, b: Operand) -> tuple[ir.Value, ir.Value]:
        """(p, e) with p = fl(a * b) and p + e = a * b exactly (fma)."""
        p = self.mul(a, b)
        return p, self.fma(a, b, self.neg(p))


# ---------------------------------------------------------------------------------------------
# exp and expm1: x = n ln2 + r with |r| <= ln2/2, exp(x) = 2^n (1 + expm1(r)).

LOG2E = 1.4426950408889634

# Cephes expf.c: expm1(r) = r + r^2 P(r), peak relative error 7.6e-8 on [-0.5, 0.5].
EXPF_P = (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2,
          1.6666665459e-1, 5.0000001201e-1)
# exp(r) = 1 + r + r^2 P(r) on [-0.35, 0.35], P of degree 4, minimax for the relative error of
# exp (not of expm1: near 0 only the sum 1 + p needs the accuracy), 4.7e-9 with the coefficients
# rounded to float, fitted for this module (linear programming over 3001 points against mpmath).
# One fma shorter than EXPF_P, for exp and everything built on it in float.
EXP_FLOAT_P = (1.381313311867416e-3, 8.369424380362034e-3, 4.166845604777336e-2,
               1.6666515171527863e-1, 4.999999403953552e-1)
# Double: expm1(r) = r + r^2/2 + r^3 Q(r) on [-0.35, 0.35], Q minimax for relative error
# (5.2e-17), fitted with mpmath (Remez exchange) for this module. (Cephes' Pade form of exp.c
# is 1.5 ulp for exp but 3.4 ulp as an expm1 kernel.)
EXPM1_Q = (2.089431804691191e-09, 2.5101317423731054e-08, 2.7557330017164004e-07,
           2.755726648750226e-06, 2.480158727354907e-05, 0.00019841269864330374,
           0.001388888888890151, 0.008333333333329805, 0.04166666666666665,
           0.16666666666666669)
# ln2 = C1 + C2 with few bits in C1, so x - n*C1 is exact (Cephes expf.c / exp.c).
EXP_LN2_SPLIT = {F32: (0.693359375, -2.12194440e-4),
                 F64: (6.93145751953125e-1, 1.42860682030941723212e-6)}
# Clamps: well below `low` exp rounds to 0 (also after `exp_parts` callers multiply by a
# factor up to 2^15), above `high` it overflows to inf.
EXP_DOMAIN = {F32: (-115.0, 89.0), F64: (-760.0, 710.0)}
# expm1 rounds to -1 below this.
EXPM1_LOW = -45.0
# fdlibm ln2_hi (32 significant bits, so n * LN2_HI is exact) and ln2_lo.
LN2_HI = 6.93147180369123816490e-01
LN2_LO = 1.90821492927058770002e-10


def exp_reduce(m: MathEmitter, x: ir.Value) -> tuple[ir.Value, ir.Value]:
    """(i, r) with x = i ln2 + r, i an integer, |r| <= ln2/2 (+ rounding); x must be clamped
    (NaN gives a NaN r)."""
    c1, c2 = EXP_LN2_SPLIT[m.fmt]
    n, i = m.round_to_integer(m.mul(x, LOG2E))
    minus_n = m.neg(n)
    return i, m.fma(minus_n, c2, m.fma(minus_n, c1, x))


def expm1_kernel(m: MathEmitter, r: ir.Value, float_accuracy: bool = False) -> ir.Value:
    """expm1(r) for |r| <= 0.35, to about one ulp relative (of float if `float_accuracy`)."""
    r2 = m.mul(r, r)
    if float_accuracy or not m.is_double:
        return m.fma(r2, m.poly(r, EXPF_P), r)
    return m.add(r, m.fma(r2, 0.5, m.mul(m.mul(r2, r), m.poly(r, EXPM1_Q))))


def exp_kernel(m: MathEmitter, r: ir.Value, float_accuracy: bool = False) -> ir.Value:
    """p with 1 + p = exp(r) for |r| <= 0.35, to about one ulp of 1 + p (of float if
    `float_accuracy`); unlike `expm1_kernel`, p itself is not accurate near r = 0."""
    if float_accuracy or not m.is_double:
        return m.fma(m.mul(r, r), m.poly(r, EXP_FLOAT_P), r)
    return expm1_kernel(m, r)


def exp_parts(m: MathEmitter, x: ir.Value, x_lo: ir.Value | None = None,
              float_accuracy: bool = False, nonpositive: bool = False,
              keep_nan: bool = False) -> tuple[ir.Value, ir.Value]:
    """(p, n) with exp(x + x_lo) = (1 + p) 2^n, |p| <= 0.42 and n an integer, so that callers
    can fold 1 + p into other factors (fma(a, p, a) = a (1 + p) in one rounding) before
    `m.scale`, which rounds only once into the subnormals. `x_lo` is an optional low part
    (|x_lo| <= ulp(x)); `float_accuracy` uses the float polynomial (double arithmetic that only
    needs float results); `nonpositive` promises x <= 0 or NaN (no upper clamp). NaN gives a
    NaN p with `keep_nan`, else an unspecified finite p."""
    low, high = EXP_DOMAIN[m.fmt]
    upper = None if nonpositive else high
    clamped = m.clamp_keeping_nan(x, low, upper) if keep_nan else m.clamp(x, low, upper)
    n, r = exp_reduce(m, clamped)
    if x_lo is not None:
        r = m.add(r, m.select(m.eq(clamped, x), x_lo, 0.0))
    return exp_kernel(m, r, float_accuracy), n


def exp_value(m: MathEmitter, x: ir.Value, float_accuracy: bool = False,
              nonpositive: bool = False) -> ir.Value:
    """exp(x) for any x (NaN in, NaN out); `nonpositive` promises x <= 0 or NaN. Where `scale`
    keeps NaN, the NaN travels through the arithmetic instead of a final select."""
    through = m.scale_keeps_nan
    p, n = exp_parts(m, x, float_accuracy=float_accuracy, nonpositive=nonpositive,
                     keep_nan=through)
    y = m.scale(m.add(1.0, p), n)
    return y if through else m.keep_nan(x, y)


def expm1_value(m: MathEmitter, x: ir.Value) -> ir.Value:
    """expm1(x) = 2^n expm1(r) + (2^n - 1), one rounding (fma); 2^n (1 + expm1(r)) when 2^n
    could overflow."""
    n_int, r = exp_reduce(m, m.clamp(x, EXPM1_LOW, EXP_DOMAIN[m.fmt][1]))
    p = expm1_kernel(m, r)
    big_exponent = 64 if not m.is_double else 512
    big = m.igt(n_int, big_exponent)
    scale = m.pow2(m.int_select(big, m.isub(n_int, big_exponent), n_int))
    moderate = m.fma(scale, p, m.sub(scale, 1.0))
    huge = m.mul(m.mul(m.add(1.0, p), scale), 2.0**big_exponent)
    return m.keep_zero(x, m.keep_nan(x, m.select(big, huge, moderate)))


def exp_double_word_parts(m: MathEmitter, y_hi: ir.Value,
                          y_lo: ir.Value) -> tuple[ir.Value, ir.Value]:
    """(p, n) as `exp_parts` for a double-word argument, with the reduction kept to double-word
    accuracy (an argument near 700 leaves r with 42 bits after n ln2_hi); double only."""
    low, high = EXP_DOMAIN[m.fmt]
    x = m.clamp(y_hi, low, high)
    tail = m.select(m.eq(x, y_hi), y_lo, 0.0)
    n, n_int = m.round_to_integer(m.mul(x, LOG2E))
    minus_n = m.neg(n)
    r_hi = m.fma(minus_n, LN2_HI, x)  # exact: n * LN2_HI has at most 43 bits
    r, r_tail = m.fast_two_sum(r_hi, m.fma(minus_n, LN2_LO, tail))
    p = expm1_kernel(m, r)
    return m.add(p, m.fma(p, r_tail, r_tail)), n_int  # (1 + p)(1 + r_tail) - 1


def exp_double_word(m: MathEmitter, y_hi: ir.Value, y_lo: ir.Value) -> ir.Value:
    """exp(y_hi + y_lo) (double only)."""
    p, n = exp_double_word_parts(m, y_hi, y_lo)
    return m.keep_nan(y_hi, m.scale(m.add(1.0, p), n))


def emit_exp(builder: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """e**x."""
    return exp_value(MathEmitter.of(builder, x), x)


def emit_expm1(builder: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """e**x - 1, accurate near 0."""
    return expm1_value(MathEmitter.of(builder, x), x)


# ---------------------------------------------------------------------------------------------
# log and log1p: x = 2^e (1 + f) with 1 + f in [sqrt(1/2), sqrt(2)), log x = e ln2 + log1p(f).

# Cephes logf.c: log1p(f) = f - f^2/2 + f^3 P(f), peak relative error 7.6e-8.
LOGF_P = (7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1,
          1.4249322787e-1, -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1,
          3.3333331174e-1)
# Cephes log.c: log1p(f) = f - f^2/2 + f^3 P(f)/Q(f), peak relative error 2e-16.
LOG_P = (1.01875663804580931796e-4, 4.97494994976747001425e-1, 4.70579119878881725854e0,
         1.44989225341610930846e1, 1.79368678507819816313e1, 7.70838733755885391666e0)
LOG_Q = (1.0, 1.12873587189167450590e1, 4.52279145837532221105e1, 8.29875266912776603211e1,
         7.11544750618563894466e1, 2.31251620126765340583e1)
# Cephes log.c / logf.c: ln2 = 0.693359375 - 2.121944400546905827679e-4 (e * C1 exact).
LOG_LN2_SPLIT = (0.693359375, -2.121944400546905827679e-4)
SQRT_HALF_BITS = {F32: 0x3F3504F3, F64: 0x3FE6A09E667F3BCD}
# Subnormal inputs are scaled up by 2^k first (musl logf.c / log.c).
SUBNORMAL_SCALE = {F32: 25, F64: 54}


def log_reduce(m: MathEmitter, x: ir.Value) -> tuple[ir.Value, ir.Value]:
    """(e, f) as floats with x = 2^e (1 + f), 1 + f in [sqrt(1/2), sqrt(2)); x > 0 finite."""
    fmt = m.fmt
    scale_bits = SUBNORMAL_SCALE[fmt]
    subnormal = m.lt(x, fmt.min_normal)
    x = m.select(subnormal, m.mul(x, 2.0**scale_bits), x)
    sqrt_half = SQRT_HALF_BITS[fmt]
    bits = m.iadd(m.to_bits(x), fmt.one_bits - sqrt_half)
    exponent = m.isub(m.ashr(bits, fmt.mantissa_bits), fmt.bias)
    exponent = m.builder.sub(exponent, m.int_select(subnormal, scale_bits, 0))
    mantissa = m.from_bits(m.iadd(m.iand(bits, fmt.mantissa_mask), sqrt_half))
    return m.to_float(exponent), m.sub(mantissa, 1.0)


def log_kernel(m: MathEmitter, e: ir.Value, f: ir.Value,
               correction: ir.Value | None = None) -> ir.Value:
    """e ln2 + log1p(f) + correction, where |f| <= 0.42 and the correction is tiny."""
    z = m.mul(f, f)
    if m.is_double:
        tail = m.mul(f, m.div(m.mul(z, m.poly(f, LOG_P)), m.poly(f, LOG_Q)))
    else:
        tail = m.mul(m.mul(f, z), m.poly(f, LOGF_P))
    ln2_hi, ln2_lo = LOG_LN2_SPLIT
    tail = m.fma(z, -0.5, m.fma(e, ln2_lo, tail))
    if correction is not None:
        tail = m.add(tail, correction)
    return m.fma(e, ln2_hi, m.add(f, tail))


def log_value(m: MathEmitter, x: ir.Value) -> ir.Value:
    """log(x) with IEEE special values."""
    e, f = log_reduce(m, x)
    y = log_kernel(m, e, f)
    y = m.select(m.eq(x, math.inf), math.inf, y)
    y = m.select(m.eq(x, 0.0), -math.inf, y)
    return m.select(m.builder.fcmp_unordered("<", x, m.const(0.0)), math.nan, y)


def log1p_value(m: MathEmitter, x: ir.Value) -> ir.Value:
    """log(1 + x): log(u) of u = fl(1 + x) plus the rounding error of u over u (FreeBSD
    s_log1p.c), the error taken exactly by Fast2Sum."""
    u = m.add(x, 1.0)
    rounding_error = m.select(m.ge(x, 1.0), m.sub(1.0, m.sub(u, x)), m.sub(x, m.sub(u, 1.0)))
    e, f = log_reduce(m, u)
    y = log_kernel(m, e, f, m.div(rounding_error, u))
    y = m.select(m.eq(x, math.inf), math.inf, y)
    y = m.select(m.eq(x, -1.0), -math.inf, y)
    y = m.select(m.builder.fcmp_unordered("<", x, m.const(-1.0)), math.nan, y)
    return m.keep_zero(x, y)


def emit_log(builder: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """Natural logarithm."""
    return log_value(MathEmitter.of(builder, x), x)


def emit_log1p(builder: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """log(1 + x), accurate near 0."""
    return log1p_value(MathEmitter.of(builder, x), x)


# ---------------------------------------------------------------------------------------------
# pow

# atanh series: log1p(f) = 2s + 2s^3/3 + s^5 R(s^2), s = f/(2+f), |s| <= 0.172; R holds the
# Taylor coefficients 2/(2k+1), k = 2..12 (truncation error below 2^-70 relative).
ATANH_TAIL = tuple(2.0 / (2 * k + 1) for k in range(12, 1, -1))
TWO_THIRDS_HI = 2.0 / 3.0
TWO_THIRDS_LO = 3.700743415417188e-17  # 2/3 - TWO_THIRDS_HI


def log_double_word(m: MathEmitter, x: ir.Value) -> tuple[ir.Value, ir.Value]:
    """log(x) as hi + lo to about 2^-100 relative (double only; x > 0 finite)."""
    e, f = log_reduce(m, x)
    d_hi, d_lo = m.fast_two_sum(m.const(2.0), f)
    s_hi = m.div(f, d_hi)
    residual = m.sub(m.fma(m.neg(s_hi), d_hi, f), m.mul(s_hi, d_lo))
    s_lo = m.div(residual, d_hi)
    w = m.mul(s_hi, s_hi)
    series_tail = m.mul(m.mul(s_hi, m.mul(w, w)), m.poly(w, ATANH_TAIL))
    sq_hi, sq_lo = m.two_prod(s_hi, s_hi)
    cube_hi, cube_lo = m.two_prod(sq_hi, s_hi)
    cube_lo = m.add(cube_lo, m.fma(sq_lo, s_hi, m.mul(m.mul(3.0, sq_hi), s_lo)))
    third_hi, third_lo = m.two_prod(cube_hi, TWO_THIRDS_HI)
    third_lo = m.add(third_lo, m.fma(cube_hi, TWO_THIRDS_LO, m.mul(cube_lo, TWO_THIRDS_HI)))
    hi, lo = m.two_sum(m.add(s_hi, s_hi), third_hi)
    lo = m.add(lo, m.add(m.add(s_lo, s_lo), m.add(third_lo, series_tail)))
    hi, lo2 = m.two_sum(m.mul(e, LN2_HI), hi)
    lo = m.add(lo2, m.fma(e, LN2_LO, lo))
    return m.fast_two_sum(hi, lo)


def pow_magnitude(m: MathEmitter, magnitude: ir.Value, exponent: ir.Value) -> ir.Value:
    """|base|**exponent for a positive finite `magnitude`, via exp(exponent log|base|): in
    double for float, in double-word arithmetic for double."""
    if not m.is_double:
        wide = m.retyped(ir.DoubleType())
        log_base = log_value(wide, m.builder.fpext(magnitude, wide.type))
        product = wide.mul(m.builder.fpext(exponent, wide.type), log_base)
        return m.builder.fptrunc(exp_value(wide, product), m.type)
    log_hi, log_lo = log_double_word(m, magnitude)
    y_hi, y_lo = m.two_prod(exponent, log_hi)
    y_lo = m.fma(exponent, log_lo, y_lo)
    return exp_double_word(m, y_hi, y_lo)


def is_odd_integer(m: MathEmitter, y: ir.Value) -> ir.Value:
    """y is an odd integer (false for inf and NaN; every float of magnitude >= 2^p is even)."""
    half = m.mul(y, 0.5)
    return m.both(m.eq(m.floor(y), y), m.ne(m.floor(half), half))


def sign_bit(m: MathEmitter, x: ir.Value) -> ir.Value:
    """The sign bit of x is set (true for -0.0)."""
    return m.builder.icmp_signed("<", m.to_bits(x), m.int_const(0))


def pow_special_cases(m: MathEmitter, base: ir.Value, exponent: ir.Value,
                      magnitude: ir.Value) -> ir.Value:
    """Apply C99 Annex F to |base|**exponent computed for finite positive |base|."""
    abs_base = m.abs(base)
    negative_exponent = m.lt(exponent, 0.0)
    at_zero = m.select(negative_exponent, math.inf, 0.0)
    at_inf = m.select(negative_exponent, 0.0, math.inf)
    y = m.select(m.eq(abs_base, 0.0), at_zero, magnitude)
    y = m.select(m.eq(abs_base, math.inf), at_inf, y)
    grows = m.builder.icmp_unsigned("==", m.gt(abs_base, 1.0), m.gt(exponent, 0.0))
    infinite_exponent = m.select(grows, math.inf, 0.0)
    infinite_exponent = m.select(m.eq(abs_base, 1.0), 1.0, infinite_exponent)
    y = m.select(m.is_inf(exponent), infinite_exponent, y)
    negate = m.both(sign_bit(m, base), is_odd_integer(m, exponent))
    y = m.select(negate, m.neg(y), y)
    not_integer = m.ne(m.floor(exponent), exponent)
    domain_error = m.both(m.both(m.lt(base, 0.0), m.is_finite(base)), not_integer)
    y = m.select(m.either(domain_error, m.either(m.is_nan(base), m.is_nan(exponent))),
                 math.nan, y)
    return m.select(m.either(m.eq(exponent, 0.0), m.eq(base, 1.0)), 1.0, y)


def emit_pow(builder: ir.IRBuilder, base: ir.Value, exponent: ir.Value) -> ir.Value:
    """base**exponent as C99 pow: pow(x, +-0) = 1 and pow(1, y) = 1 even for NaN; a negative
    base needs an integral exponent (else NaN) and gives a negative result for an odd one;
    pow(+-0, y) and pow(+-inf, y) are 0 or inf by the sign of y, signed for odd integers;
    pow(x, +-inf) is 0, 1 or inf by |x| against 1. Finite results come from exp(y log|x|)
    evaluated with enough extra precision to stay within a couple of ulp, also when the result
    overflows or is subnormal. Integral results (pow(2, 3)) are not guaranteed exact."""
    m = MathEmitter.of(builder, base)
    abs_base = m.abs(base)
    usable = m.both(m.gt(abs_base, 0.0), m.is_finite(abs_base))
    magnitude = pow_magnitude(m, m.select(usable, abs_base, 1.0), exponent)
    return pow_special_cases(m, base, exponent, magnitude)


# ---------------------------------------------------------------------------------------------
# Exact intrinsics


def emit_sqrt(builder: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """Correctly rounded square root (llvm.sqrt vectorises to vsqrtps/pd)."""
    return MathEmitter.of(builder, x).sqrt(x)


def emit_rsqrt(builder: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """1/sqrt(x) as a correctly rounded sqrt and division (within 1 ulp); rsqrt(+-0) = +-inf."""
    m = MathEmitter.of(builder, x)
    return m.div(1.0, m.sqrt(x))


def emit_floor(builder: ir.IRBuilder, x: ir.Value) -> ir.Value:
    return MathEmitter.of(builder, x).floor(x)


def emit_ceil(builder: ir.IRBuilder, x: ir.Value) -> ir.Value:
    return MathEmitter.of(builder, x).ceil(x)


def emit_abs(builder: ir.IRBuilder, x: ir.Value) -> ir.Value:
    return MathEmitter.of(builder, x).abs(x)
