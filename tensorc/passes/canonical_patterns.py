"""Canonicalization patterns for elementwise algebra; the table is in `canonicalize.py`.

Every pattern replaces its root only by a value of exactly the root's type, so that the
types of the users stay what their own inference gives. Constants are recognised through
`broadcast_to` and `reshape` (the frontend writes `x + 1.0` as `x + broadcast_to(1.0)`).
"""

from __future__ import annotations

import math
from typing import ClassVar

from tensorc.ir.core import Commutative, Operation, Value
from tensorc.ir.dialects import tc, tc_shape
from tensorc.ir.dtypes import DType
from tensorc.ir.types import TensorType
from tensorc.passes.rewrite import PatternRewriter, RewritePattern

Scalar = bool | int | float

# ----- matching helpers ---------------------------------------------------------------------


def producer(value: Value, op_class: type[Operation]) -> Operation | None:
    """The op defining `value` when it is an `op_class`, else None."""
    owner = value.owner
    return owner if isinstance(owner, op_class) else None


def splat_of(value: Value) -> Scalar | None:
    """The single element value of a constant whose elements are all equal, looking through
    `broadcast_to` and `reshape`; None for anything else (or an empty constant)."""
    owner = value.owner
    while isinstance(owner, (tc_shape.BroadcastToOp, tc_shape.ReshapeOp)):
        owner = owner.x.owner
    if not isinstance(owner, tc.ConstantOp):
        return None
    return owner.splat_value()


def is_constant_like(value: Value) -> bool:
    """A `tc.constant`, possibly broadcast or reshaped."""
    owner = value.owner
    while isinstance(owner, (tc_shape.BroadcastToOp, tc_shape.ReshapeOp)):
        owner = owner.x.owner
    return isinstance(owner, tc.ConstantOp)


def is_splat(value: Value, number: Scalar) -> bool:
    """`value` is a splat of `number` (0 matches both +0.0 and -0.0; bools never match)."""
    if value.type.dtype.is_bool:
        return False
    splat = splat_of(value)
    return splat is not None and not isinstance(splat, bool) and splat == number


def _sign_of_zero(value: Value) -> float | None:
    """+1.0 or -1.0 for a splat of a (float or integer) zero, else None."""
    if not is_splat(value, 0):
        return None
    splat = splat_of(value)
    return math.copysign(1.0, float(splat)) if splat is not None else None


def is_positive_zero(value: Value) -> bool:
    return _sign_of_zero(value) == 1.0


def is_negative_zero(value: Value) -> bool:
    """A float splat of -0.0, the additive identity of IEEE arithmetic."""
    return value.type.dtype.is_float and _sign_of_zero(value) == -1.0


def is_integer_like(tensor_type: TensorType) -> bool:
    """Integers and bools: no NaN, no infinities, no signed zeros."""
    return tensor_type.dtype.is_int or tensor_type.dtype.is_bool


def is_additive_identity(value: Value, strict_fp: bool) -> bool:
    """`x + value == x` for every x: integer 0, float -0.0, and float +0.0 unless `strict_fp`
    (`-0.0 + 0.0` is `+0.0`, so +0.0 changes the sign of a negative zero)."""
    if not is_splat(value, 0):
        return False
    if not value.type.dtype.is_float:
        return True
    return is_negative_zero(value) or not strict_fp


def is_subtractive_identity(value: Value, strict_fp: bool) -> bool:
    """`x - value == x` for every x: integer 0, float +0.0, and -0.0 unless `strict_fp`."""
    if not is_splat(value, 0):
        return False
    if not value.type.dtype.is_float:
        return True
    return is_positive_zero(value) or not strict_fp


# ----- rewriting helpers --------------------------------------------------------------------


def replace_by(rewriter: PatternRewriter, op: Operation, value: Value) -> bool:
    """Replace the single result of `op` by `value` when the types are identical."""
    if value.type != op.result.type:
        return False
    rewriter.replace_op(op, [value])
    return True


def make_splat(
    rewriter: PatternRewriter, anchor: Operation, number: Scalar, tensor_type: TensorType
) -> Value:
    """A splat of `number` of `tensor_type` (symbolic shapes allowed): a scalar constant,
    broadcast when the type is not a scalar."""
    constant = rewriter.insert_before(anchor, tc.ConstantOp.scalar(number, tensor_type.dtype))
    scalar = constant.result
    if tensor_type.is_scalar:
        return scalar
    return rewriter.create(anchor, tc_shape.BroadcastToOp, [scalar], tensor_type)


# ----- commutative ops ------------------------------------------------------------------------


COMMUTATIVE_BINARY = tuple(
    cls.name
    for cls in (tc.AddOp, tc.MulOp, tc.MaximumOp, tc.MinimumOp, tc.EqOp, tc.NeOp)
    + (tc.AndOp, tc.OrOp)
    if Commutative in cls.traits
)


class ConstantToRhs(RewritePattern):
    """`c op x -> x op c` for commutative ops, so that later patterns look only on the rhs."""

    roots = COMMUTATIVE_BINARY

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        lhs, rhs = op.operands
        if not is_constant_like(lhs) or is_constant_like(rhs) or lhs.type != rhs.type:
            return False
        rewriter.update_operands(op, [rhs, lhs])
        return True


# ----- identities -----------------------------------------------------------------------------


class AddZero(RewritePattern):
    """`x + 0 -> x`, `0 + x -> x` (see `is_additive_identity` for floats)."""

    roots = ("tc.add",)

    def __init__(self, strict_fp: bool = False) -> None:
        self.strict_fp = strict_fp

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        if is_additive_identity(op.rhs, self.strict_fp):
            return replace_by(rewriter, op, op.lhs)
        if is_additive_identity(op.lhs, self.strict_fp):
            return replace_by(rewriter, op, op.rhs)
        return False


class SubZero(RewritePattern):
    """`x - 0 -> x` (+0.0 for floats; -0.0 only without `strict_fp`)."""

    roots = ("tc.sub",)

    def __init__(self, strict_fp: bool = False) -> None:
        self.strict_fp = strict_fp

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        if not is_subtractive_identity(op.rhs, self.strict_fp):
            return False
        return replace_by(rewriter, op, op.lhs)


class SubFromZero(RewritePattern):
    """`0 - x -> -x` (for floats the zero must be -0.0, or `strict_fp` off: `0.0 - 0.0` is
    `+0.0` where `-0.0` would be `-0.0`)."""

    roots = ("tc.sub",)

    def __init__(self, strict_fp: bool = False) -> None:
        self.strict_fp = strict_fp

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        if not is_additive_identity(op.lhs, self.strict_fp):
            return False
        return replace_by(rewriter, op, rewriter.create(op, tc.NegOp, [op.rhs]))


class MulOne(RewritePattern):
    """`x * 1 -> x`, `1 * x -> x` (exact for every float, NaN included)."""

    roots = ("tc.mul",)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        if is_splat(op.rhs, 1):
            return replace_by(rewriter, op, op.lhs)
        if is_splat(op.lhs, 1):
            return replace_by(rewriter, op, op.rhs)
        return False


class MulMinusOne(RewritePattern):
    """`x * -1 -> -x` (exact: IEEE negation flips the sign bit, as multiplying by -1 does)."""

    roots = ("tc.mul",)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        if not is_splat(op.rhs, -1) or op.lhs.type != op.result.type:
            return False
        return replace_by(rewriter, op, rewriter.create(op, tc.NegOp, [op.lhs]))


class DivOne(RewritePattern):
    """`x / 1 -> x`."""

    roots = ("tc.div",)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        if not is_splat(op.rhs, 1):
            return False
        return replace_by(rewriter, op, op.lhs)


class PowSmallInteger(RewritePattern):
    """`x ** 1 -> x`, `x ** 2 -> square(x)`, `x ** 0 -> 1` (IEEE `pow(x, 0)` is 1 even for NaN;
    `0 ** 0` is 1 for integers too)."""

    roots = ("tc.pow",)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        if is_splat(op.rhs, 1):
            return replace_by(rewriter, op, op.lhs)
        if is_splat(op.rhs, 2) and op.lhs.type == op.result.type:
            return replace_by(rewriter, op, rewriter.create(op, tc.SquareOp, [op.lhs]))
        if is_splat(op.rhs, 0) and op.result.type.dtype != DType.BF16:
            return replace_by(rewriter, op, make_splat(rewriter, op, 1, op.result.type))
        return False


class IntegerMulZero(RewritePattern):
    """`x * 0 -> 0` for integers only: for floats `inf * 0` and `NaN * 0` are NaN, and
    `-1.0 * 0.0` is `-0.0`."""

    roots = ("tc.mul",)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        if not is_integer_like(op.result.type):
            return False
        for value in (op.rhs, op.lhs):
            if is_splat(value, 0):
                if value.type == op.result.type:
                    return replace_by(rewriter, op, value)
                return replace_by(rewriter, op, make_splat(rewriter, op, 0, op.result.type))
        return False


class IntegerSubSelf(RewritePattern):
    """`x - x -> 0` for integers only (`inf - inf` and `NaN - NaN` are NaN)."""

    roots = ("tc.sub",)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        if op.lhs is not op.rhs or not is_integer_like(op.result.type):
            return False
        return replace_by(rewriter, op, make_splat(rewriter, op, 0, op.result.type))


class IntegerCompareSelf(RewritePattern):
    """`x == x`, `x <= x`, `x >= x` -> true and `x != x`, `x < x`, `x > x` -> false for
    integers and bools (a float NaN is not equal to itself)."""

    roots = ("tc.eq", "tc.ne", "tc.lt", "tc.le", "tc.gt", "tc.ge")
    REFLEXIVE: ClassVar[frozenset[str]] = frozenset({"tc.eq", "tc.le", "tc.ge"})

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        if op.lhs is not op.rhs or not is_integer_like(op.lhs.type):
            return False
        answer = op.name in self.REFLEXIVE
        return replace_by(rewriter, op, make_splat(rewriter, op, answer, op.result.type))


class Idempotent(RewritePattern):
    """`max(x, x)`, `min(x, x)`, `x and x`, `x or x` -> x (NaN-safe: both sides are NaN)."""

    roots = ("tc.maximum", "tc.minimum", "tc.and", "tc.or")

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        if op.lhs is not op.rhs:
            return False
        return replace_by(rewriter, op, op.lhs)


class BooleanIdentity(RewritePattern):
    """`b and true -> b`, `b and false -> false`, `b or false -> b`, `b or true -> true`."""

    roots = ("tc.and", "tc.or")

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        absorbing = op.name == "tc.or"  # `or true` is true; `and false` is false
        for value, other in ((op.rhs, op.lhs), (op.lhs, op.rhs)):
            constant = splat_of(value)
            if not isinstance(constant, bool):
                continue
            if constant == absorbing:
                return replace_by(rewriter, op, make_splat(rewriter, op, absorbing, op.result.type))
            return replace_by(rewriter, op, other)
        return False


# ----- negations ------------------------------------------------------------------------------


class Involution(RewritePattern):
    """`-(-x) -> x`, `not not b -> b`."""

    roots = ("tc.neg", "tc.not")

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        inner = producer(op.x, type(op))
        if inner is None:
            return False
        return replace_by(rewriter, op, inner.x)


class AddNegation(RewritePattern):
    """`-a + b -> b - a` and `a + -b -> a - b` (IEEE subtraction is addition of the negation,
    so both are exact)."""

    roots = ("tc.add",)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        if (negated := producer(op.rhs, tc.NegOp)) is not None:
            minuend, subtrahend = op.lhs, negated.x
        elif (negated := producer(op.lhs, tc.NegOp)) is not None:
            minuend, subtrahend = op.rhs, negated.x
        else:
            return False
        if minuend.type != subtrahend.type:
            return False
        return replace_by(rewriter, op, rewriter.create(op, tc.SubOp, [minuend, subtrahend]))


class SubNegation(RewritePattern):
    """`a - -b -> a + b`."""

    roots = ("tc.sub",)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        negated = producer(op.rhs, tc.NegOp)
        if negated is None or negated.x.type != op.lhs.type:
            return False
        return replace_by(rewriter, op, rewriter.create(op, tc.AddOp, [op.lhs, negated.x]))


class AbsorbNegation(RewritePattern):
    """`|-x| -> |x|`, `square(-x) -> square(x)` (exact: both ignore the sign bit)."""

    roots = ("tc.abs", "tc.square")

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        negated = producer(op.x, tc.NegOp)
        if negated is None:
            return False
        return replace_by(rewriter, op, rewriter.create(op, type(op), [negated.x]))


class IdempotentUnary(RewritePattern):
    """`|(|x|)| -> |x|`, `relu(relu(x)) -> relu(x)`, `sign(sign(x)) -> sign(x)`; `floor` and
    `ceil` of integers are the identity."""

    roots = ("tc.abs", "tc.relu", "tc.sign", "tc.floor", "tc.ceil")

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        if op.name in ("tc.floor", "tc.ceil"):
            if not is_integer_like(op.x.type):
                return False
            return replace_by(rewriter, op, op.x)
        if producer(op.x, type(op)) is None:
            return False
        return replace_by(rewriter, op, op.x)


# ----- transcendental -------------------------------------------------------------------------


class LogOfExp(RewritePattern):
    """`log(exp(x)) -> x`: exact in real arithmetic and more accurate in floats (where `exp`
    overflows to inf, the original gives inf). `exp(log(x))` is NOT `x`: `log` of a negative
    number is NaN."""

    roots = ("tc.log",)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        inner = producer(op.x, tc.ExpOp)
        if inner is None:
            return False
        return replace_by(rewriter, op, inner.x)


class SqrtOfSquare(RewritePattern):
    """`sqrt(square(x)) -> |x|` (exact with correctly rounded `*` and `sqrt` unless `x*x`
    overflows or underflows, where `|x|` is the better answer)."""

    roots = ("tc.sqrt",)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        inner = producer(op.x, tc.SquareOp)
        if inner is None:
            return False
        return replace_by(rewriter, op, rewriter.create(op, tc.AbsOp, [inner.x]))


# ----- casts ----------------------------------------------------------------------------------


def is_exact_conversion(source: DType, target: DType) -> bool:
    """Every value of `source` is represented exactly in `target` (a widening)."""
    if source == target or source.is_bool:
        return True
    exact = {
        DType.I32: {DType.I64, DType.F64},
        DType.F16: {DType.F32, DType.F64},
        DType.BF16: {DType.F32, DType.F64},
        DType.F32: {DType.F64},
    }
    return target in exact.get(source, set())


class CastNoop(RewritePattern):
    """`cast(x)` to the type it already has -> x."""

    roots = ("tc.cast",)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        return replace_by(rewriter, op, op.x)


class CastOfWideningCast(RewritePattern):
    """`cast(cast(x: A) : B) : C -> cast(x) : C` when B holds every value of A exactly: the
    outer conversion then sees the very numbers x holds (so `f32 -> f64 -> f32` is x)."""

    roots = ("tc.cast",)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        inner = producer(op.x, tc.CastOp)
        if inner is None:
            return False
        source = inner.x
        if not is_exact_conversion(source.type.dtype, inner.result.type.dtype):
            return False
        if source.type == op.result.type:
            return replace_by(rewriter, op, source)
        if source.type.shape != op.result.type.shape:
            return False
        return replace_by(rewriter, op, rewriter.create(op, tc.CastOp, [source], op.result.type))


# ----- select ---------------------------------------------------------------------------------


class SelectConstantCondition(RewritePattern):
    """`where(true, a, b) -> a`, `where(false, a, b) -> b`."""

    roots = ("tc.select",)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        condition = splat_of(op.cond)
        if not isinstance(condition, bool):
            return False
        return replace_by(rewriter, op, op.on_true if condition else op.on_false)


class SelectSameBranches(RewritePattern):
    """`where(c, x, x) -> x`."""

    roots = ("tc.select",)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        if op.on_true is not op.on_false:
            return False
        return replace_by(rewriter, op, op.on_true)


class SelectOfNot(RewritePattern):
    """`where(not c, a, b) -> where(c, b, a)`."""

    roots = ("tc.select",)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        negated = producer(op.cond, tc.NotOp)
        if negated is None:
            return False
        rewriter.update_operands(op, [negated.x, op.on_false, op.on_true])
        return True


def arithmetic_patterns(strict_fp: bool = False) -> list[RewritePattern]:
    return [
        ConstantToRhs(),
        AddZero(strict_fp),
        SubZero(strict_fp),
        SubFromZero(strict_fp),
        MulOne(),
        MulMinusOne(),
        DivOne(),
        PowSmallInteger(),
        IntegerMulZero(),
        IntegerSubSelf(),
        IntegerCompareSelf(),
        Idempotent(),
        BooleanIdentity(),
        Involution(),
        AddNegation(),
        SubNegation(),
        AbsorbNegation(),
        IdempotentUnary(),
        LogOfExp(),
        SqrtOfSquare(),
        CastNoop(),
        CastOfWideningCast(),
        SelectConstantCondition(),
        SelectSameBranches(),
        SelectOfNot(),
    ]
