"""`stabilize`: replace numerically unstable forms by stable ones, as Theano's stabilize phase.

Each rewrite is a small `RewritePattern`; `apply_patterns` runs the table to a fixed point, so
rewrites compose (`log(1 + exp(x))` becomes `log1p(exp(x))`, then `softplus(x)`). In the
table `1` is a splat constant of any shape, possibly behind `tc.broadcast_to` or `tc.reshape`;
operands are matched exactly, never through a `tc.cast` (except the exact float-to-float
cast of a `one_hot`).

| pattern                | unstable form                          | stable form                  |
|------------------------|----------------------------------------|------------------------------|
| LogOfSoftmax           | log(softmax(x, a))                     | log_softmax(x, a)            |
| LogOfGatheredSoftmax   | log(take_along_axis(softmax(x), i))    | take_along_axis(log_softmax) |
| LogOfSumOfExp          | log(sum(exp(x), axes, keepdims))       | logsumexp(x, axes, keepdims) |
| LogOfMeanOfExp         | log(mean(exp(x), axes, keepdims))      | logsumexp(x, ...) - log(n)   |
| LogOfSigmoid           | log(sigmoid(x))                        | -softplus(-x)                |
| LogOfOneMinusSigmoid   | log(1 - sigmoid(x))                    | -softplus(x)                 |
| LogOfExp               | log(exp(x))                            | x                            |
| LogOfExpPlusExp        | log(exp(a) + exp(b))                   | max(a,b)+softplus(-abs(a-b)) |
|                        |                                        | † (ties: a + log 2)          |
| LogOfOnePlus           | log(1 + x), log(x + 1), log(1 - x)     | log1p(x), log1p(-x)          |
| Log1pOfExp             | log1p(exp(x))                          | softplus(x)                  |
| Log1pOfNegSigmoid      | log1p(-sigmoid(x))                     | -softplus(x)                 |
| ExpMinusOne            | exp(x) - 1, exp(x) + (-1), 1 - exp(x)  | expm1(x), -expm1(x)          |
| OneMinusSigmoid        | 1 - sigmoid(x)                         | sigmoid(-x)                  |
| SigmoidFromExp         | 1 / (1 + exp(-x)), exp(x)/(1+exp(x))   | sigmoid(x)                   |
| SoftmaxFromExp         | exp(x) / sum(exp(x), a, keepdims)      | softmax(x, a)                |
| SqrtOfSquare           | sqrt(x*x), sqrt(square(x)), sqrt(x**2) | abs(x)                       |
| CrossEntropyFromOneHot | sum(one_hot(y, C) * log_softmax(z),1)  | -cross_entropy(z, y) ‡       |
| CrossEntropyFromGather | take_along_axis(log_softmax(z), i, 1)  | -cross_entropy(z, i) ‡       |
| CancelDoubleNegation   | -(-x), -reshape(-x)                    | x, reshape(x)                |

† `a + log(2)` where `a == b`, so that equal infinities stay infinite
  (`log(exp(-inf) + exp(-inf))` is `-inf`, not NaN).
‡ exact on every input: labels outside [0, C) give 0 (as `one_hot` does), and negative
  gather indices wrap (as `take_along_axis` does) before `cross_entropy` sees them. With
  soft labels, `sum(p * log(softmax(z)))` is stabilised by LogOfSoftmax alone.

Why each is worth it: `softmax` underflows to 0 and its log to -inf (logits 1000 apart);
`1 + x` rounds to 1 for |x| < eps; `exp` overflows past 88 (f32) or 709 (f64); `1 - sigmoid`
cancels; `x*x` overflows past 1.8e19 (f32) and underflows below 1e-23. `sqrt(fl(x*x)) == |x|`
exactly in binary IEEE arithmetic whenever `x*x` neither overflows nor underflows, so
SqrtOfSquare only changes results that were wrong.

A rewrite replaces only its root; an intermediate that has other users (the `softmax` of
`log(softmax(x))` also returned, say) stays for them, and is removed when it has none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, TypeVar

import numpy as np

from tensorc.ir.core import Operation, Value
from tensorc.ir.dialects import tc, tc_reduce, tc_shape
from tensorc.ir.dialects.func import Module
from tensorc.ir.dims import DimExpr, as_size
from tensorc.ir.dtypes import DType
from tensorc.ir.types import TensorType
from tensorc.passes.pass_manager import ModulePass, register_pass
from tensorc.passes.rewrite import PatternRewriter, RewritePattern, apply_patterns

OpT = TypeVar("OpT", bound=Operation)

# ----- matching helpers ---------------------------------------------------------------------


def producer(value: Value, op_class: type[OpT]) -> OpT | None:
    """The op of kind `op_class` that defines `value`, or None."""
    owner = value.owner
    return owner if isinstance(owner, op_class) else None


def splat_value(value: Value) -> float | int | bool | None:
    """The single value of a splat constant, looking through broadcasts and reshapes."""
    while True:
        owner = value.owner
        if isinstance(owner, (tc_shape.BroadcastToOp, tc_shape.ReshapeOp)):
            value = owner.x
            continue
        if isinstance(owner, tc.ConstantOp):
            return owner.splat_value()
        return None


def is_splat(value: Value, number: float) -> bool:
    splat = splat_value(value)
    return splat is not None and splat == number


def one_plus(value: Value) -> Value | None:
    """`x` when `value` is `1 + x` or `x + 1`."""
    add = producer(value, tc.AddOp)
    if add is None:
        return None
    if is_splat(add.lhs, 1):
        return add.rhs
    if is_splat(add.rhs, 1):
        return add.lhs
    return None


def one_minus(value: Value) -> Value | None:
    """`x` when `value` is `1 - x`."""
    sub = producer(value, tc.SubOp)
    if sub is None or not is_splat(sub.lhs, 1):
        return None
    return sub.rhs


def exp_operand(value: Value) -> Value | None:
    """`x` when `value` is `exp(x)`."""
    exp = producer(value, tc.ExpOp)
    return None if exp is None else exp.x


def sigmoid_operand(value: Value) -> Value | None:
    """`x` when `value` is `sigmoid(x)`."""
    sigmoid = producer(value, tc.SigmoidOp)
    return None if sigmoid is None else sigmoid.x


def log_softmax_of(value: Value) -> tuple[Value, int] | None:
    """`(x, axis)` when `value` is `log_softmax(x, axis)` or `log(softmax(x, axis))`."""
    log_softmax = producer(value, tc_reduce.LogSoftmaxOp)
    if log_softmax is not None:
        return log_softmax.x, log_softmax.axis
    log = producer(value, tc.LogOp)
    softmax = None if log is None else producer(log.x, tc_reduce.SoftmaxOp)
    if softmax is None:
        return None
    return softmax.x, softmax.axis


def through_reshapes(value: Value) -> Value:
    """The value that a chain of reshapes starts from."""
    while (reshape := producer(value, tc_shape.ReshapeOp)) is not None:
        value = reshape.x
    return value


def has_constants(dtype: DType) -> bool:
    """Whether the rewrites may create constants of `dtype` (bf16 has no NumPy dtype)."""
    return dtype is not DType.BF16


def one_hot_of(value: Value) -> tc_shape.OneHotOp | None:
    """The `one_hot` that `value` is, possibly cast exactly to another float type."""
    cast = producer(value, tc.CastOp)
    if cast is not None and cast.x.type.dtype.is_float and value.type.dtype.is_float:
        value = cast.x
    return producer(value, tc_shape.OneHotOp)


# ----- building helpers ---------------------------------------------------------------------


class Emitter:
    """Creates ops before `anchor` through the rewriter, so the driver revisits them."""

    def __init__(self, rewriter: PatternRewriter, anchor: Operation) -> None:
        self.rewriter = rewriter
        self.anchor = anchor

    def op(
        self,
        op_class: type[Operation],
        *operands: Value,
        result_type: TensorType | None = None,
        **attributes: object,
    ) -> Value:
        return self.rewriter.create(self.anchor, op_class, operands, result_type, **attributes)

    def neg(self, value: Value) -> Value:
        """`-value`, cancelling a negation that `value` already is."""
        negation = producer(value, tc.NegOp)
        if negation is not None:
            return negation.x
        return self.op(tc.NegOp, value)

    def splat(self, number: float | int, like: TensorType) -> Value:
        """A constant of `like`'s dtype and shape whose elements are all `number`."""
        array = np.array(number, dtype=like.dtype.numpy)
        scalar = self.op(tc.ConstantOp, result_type=TensorType(like.dtype), value=array)
        return self.broadcast(scalar, like)

    def broadcast(self, value: Value, like: TensorType) -> Value:
        if value.type.shape == like.shape:
            return value
        return self.op(tc_shape.BroadcastToOp, value, result_type=value.type.with_shape(like.shape))

    def reshape(self, value: Value, shape: tuple[DimExpr, ...]) -> Value:
        """`value` reshaped to `shape`, folding a chain of reshapes into one (or none)."""
        value = through_reshapes(value)
        if value.type.shape == shape:
            return value
        return self.op(tc_shape.ReshapeOp, value, result_type=value.type.with_shape(shape))

    def dim_size(self, dim: DimExpr, like: TensorType) -> Value:
        """The size `dim` as a tensor of `like`'s type, also when symbolic."""
        dim = as_size(dim)
        if dim.value is not None:
            return self.splat(dim.value, like)
        size = self.op(tc.DimSizeOp, value=dim)
        if like.dtype != DType.I32:
            size = self.op(tc.CastOp, size, result_type=TensorType(like.dtype))
        return self.broadcast(size, like)


def replace(rewriter: PatternRewriter, op: Operation, value: Value) -> bool:
    rewriter.replace_op(op, [value])
    return True


# ----- log of ... ---------------------------------------------------------------------------


class LogOfSoftmax(RewritePattern):
    """log(softmax(x, a)) -> log_softmax(x, a): softmax underflows to 0, its log to -inf."""

    roots = ("tc.log",)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        softmax = producer(op.x, tc_reduce.SoftmaxOp)
        if softmax is None:
            return False
        stable = Emitter(rewriter, op).op(tc_reduce.LogSoftmaxOp, softmax.x, axis=softmax.axis)
        return replace(rewriter, op, stable)


class LogOfGatheredSoftmax(RewritePattern):
    """log(take_along_axis(softmax(x, a), i, b)) -> take_along_axis(log_softmax(x, a), i, b)."""

    roots = ("tc.log",)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        gather = producer(op.x, tc_shape.TakeAlongAxisOp)
        softmax = None if gather is None else producer(gather.x, tc_reduce.SoftmaxOp)
        if gather is None or softmax is None:
            return False
        emit = Emitter(rewriter, op)
        log_softmax = emit.op(tc_reduce.LogSoftmaxOp, softmax.x, axis=softmax.axis)
        stable = emit.op(tc_shape.TakeAlongAxisOp, log_softmax, gather.indices, axis=gather.axis)
        return replace(rewriter, op, stable)


class LogOfSumOfExp(RewritePattern):
    """log(sum(exp(x), axes, keepdims)) -> logsumexp(x, axes, keepdims): exp overflows."""

    roots = ("tc.log",)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        total = producer(op.x, tc_reduce.SumOp)
        exponent = None if total is None else exp_operand(total.x)
        if total is None or exponent is None:
            return False
        stable = Emitter(rewriter, op).op(
            tc_reduce.LogSumExpOp, exponent, axes=list(total.axes), keepdims=total.keepdims
        )
        return replace(rewriter, op, stable)


class LogOfMeanOfExp(RewritePattern):
    """log(mean(exp(x), axes, keepdims)) -> logsumexp(x, axes, keepdims) - log(count)."""

    roots = ("tc.log",)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        average = producer(op.x, tc_reduce.MeanOp)
        exponent = None if average is None else exp_operand(average.x)
        if average is None or exponent is None or not has_constants(exponent.type.dtype):
            return False
        count = tc_reduce.count_of(exponent.type.shape, average.axes)
        if count.value == 0:
            return False
        emit = Emitter(rewriter, op)
        total = emit.op(
            tc_reduce.LogSumExpOp, exponent, axes=list(average.axes), keepdims=average.keepdims
        )
        if count.value is not None:
            log_count = emit.splat(math.log(count.value), total.type)
        else:
            log_count = emit.op(tc.LogOp, emit.dim_size(count, total.type))
        return replace(rewriter, op, emit.op(tc.SubOp, total, log_count))


class LogOfSigmoid(RewritePattern):
    """log(sigmoid(x)) -> -softplus(-x): sigmoid underflows to 0 for x < -88 (f32)."""

    roots = ("tc.log",)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        argument = sigmoid_operand(op.x)
        if argument is None:
            return False
        emit = Emitter(rewriter, op)
        stable = emit.neg(emit.op(tc.SoftplusOp, emit.neg(argument)))
        return replace(rewriter, op, stable)


class LogOfOneMinusSigmoid(RewritePattern):
    """log(1 - sigmoid(x)) -> -softplus(x): 1 - sigmoid(x) cancels to 0 for x > 17 (f32)."""

    roots = ("tc.log",)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        complement = one_minus(op.x)
        argument = None if complement is None else sigmoid_operand(complement)
        if argument is None:
            return False
        emit = Emitter(rewriter, op)
        return replace(rewriter, op, emit.neg(emit.op(tc.SoftplusOp, argument)))


class LogOfExp(RewritePattern):
    """log(exp(x)) -> x: exp overflows to inf (and underflows to 0, giving -inf)."""

    roots = ("tc.log",)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        argument = exp_operand(op.x)
        if argument is None:
            return False
        return replace(rewriter, op, argument)


class LogOfExpPlusExp(RewritePattern):
    """log(exp(a) + exp(b)) -> where(a == b, a + log 2, max(a, b) + softplus(-|a - b|))."""

    roots = ("tc.log",)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        add = producer(op.x, tc.AddOp)
        if add is None:
            return False
        a, b = exp_operand(add.lhs), exp_operand(add.rhs)
        if a is None or b is None or not has_constants(a.type.dtype):
            return False
        emit = Emitter(rewriter, op)
        gap = emit.neg(emit.op(tc.AbsOp, emit.op(tc.SubOp, a, b)))
        general = emit.op(tc.AddOp, emit.op(tc.MaximumOp, a, b), emit.op(tc.SoftplusOp, gap))
        tie = emit.op(tc.AddOp, a, emit.splat(math.log(2.0), a.type))
        stable = emit.op(tc.SelectOp, emit.op(tc.EqOp, a, b), tie, general)
        return replace(rewriter, op, stable)


class LogOfOnePlus(RewritePattern):
    """log(1 + x) -> log1p(x) and log(1 - x) -> log1p(-x): 1 + x rounds to 1 for tiny x."""

    roots = ("tc.log",)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        emit = Emitter(rewriter, op)
        addend = one_plus(op.x)
        if addend is not None:
            return replace(rewriter, op, emit.op(tc.Log1pOp, addend))
        subtrahend = one_minus(op.x)
        if subtrahend is not None:
            return replace(rewriter, op, emit.op(tc.Log1pOp, emit.neg(subtrahend)))
        return False


# ----- log1p of ... -------------------------------------------------------------------------


class Log1pOfExp(RewritePattern):
    """log1p(exp(x)) -> softplus(x): exp overflows for large x."""

    roots = ("tc.log1p",)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        argument = exp_operand(op.x)
        if argument is None:
            return False
        return replace(rewriter, op, Emitter(rewriter, op).op(tc.SoftplusOp, argument))


class Log1pOfNegSigmoid(RewritePattern):
    """log1p(-sigmoid(x)) -> -softplus(x): sigmoid rounds to 1 for x > 17 (f32)."""

    roots = ("tc.log1p",)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        negation = producer(op.x, tc.NegOp)
        argument = None if negation is None else sigmoid_operand(negation.x)
        if argument is None:
            return False
        emit = Emitter(rewriter, op)
        return replace(rewriter, op, emit.neg(emit.op(tc.SoftplusOp, argument)))


# ----- arithmetic around exp and sigmoid ----------------------------------------------------


class ExpMinusOne(RewritePattern):
    """exp(x) - 1 and exp(x) + (-1) -> expm1(x); 1 - exp(x) -> -expm1(x): cancellation."""

    roots = ("tc.sub", "tc.add")

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        emit = Emitter(rewriter, op)
        if isinstance(op, tc.SubOp):
            argument = exp_operand(op.lhs)
            if argument is not None and is_splat(op.rhs, 1):
                return replace(rewriter, op, emit.op(tc.Expm1Op, argument))
            argument = exp_operand(op.rhs)
            if argument is not None and is_splat(op.lhs, 1):
                return replace(rewriter, op, emit.neg(emit.op(tc.Expm1Op, argument)))
            return False
        for exp_side, constant_side in ((op.lhs, op.rhs), (op.rhs, op.lhs)):
            argument = exp_operand(exp_side)
            if argument is not None and is_splat(constant_side, -1):
                return replace(rewriter, op, emit.op(tc.Expm1Op, argument))
        return False


class OneMinusSigmoid(RewritePattern):
    """1 - sigmoid(x) -> sigmoid(-x): the subtraction cancels to 0 for x > 17 (f32)."""

    roots = ("tc.sub",)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        argument = sigmoid_operand(op.rhs)
        if argument is None or not is_splat(op.lhs, 1):
            return False
        emit = Emitter(rewriter, op)
        return replace(rewriter, op, emit.op(tc.SigmoidOp, emit.neg(argument)))


class SigmoidFromExp(RewritePattern):
    """1 / (1 + exp(y)) -> sigmoid(-y) and exp(x) / (1 + exp(x)) -> sigmoid(x): exp overflows
    (and inf / inf is NaN)."""

    roots = ("tc.div",)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        denominator_exp = one_plus(op.rhs)
        argument = None if denominator_exp is None else exp_operand(denominator_exp)
        if argument is None:
            return False
        emit = Emitter(rewriter, op)
        if is_splat(op.lhs, 1):
            return replace(rewriter, op, emit.op(tc.SigmoidOp, emit.neg(argument)))
        if exp_operand(op.lhs) is argument:
            return replace(rewriter, op, emit.op(tc.SigmoidOp, argument))
        return False


class SoftmaxFromExp(RewritePattern):
    """exp(x) / sum(exp(x), [a], keepdims) -> softmax(x, a): exp overflows past 88 (f32)."""

    roots = ("tc.div",)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        argument = exp_operand(op.lhs)
        spread = producer(op.rhs, tc_shape.BroadcastToOp)
        total = producer(op.rhs if spread is None else spread.x, tc_reduce.SumOp)
        if argument is None or total is None or exp_operand(total.x) is not argument:
            return False
        if len(total.axes) != 1:
            return False
        (axis,) = total.axes
        # Broadcasting puts the sums back in place when the axis was kept, or was the first.
        if not total.keepdims and axis != 0:
            return False
        stable = Emitter(rewriter, op).op(tc_reduce.SoftmaxOp, argument, axis=axis)
        return replace(rewriter, op, stable)


class SqrtOfSquare(RewritePattern):
    """sqrt(x*x), sqrt(square(x)), sqrt(x**2) -> abs(x): x*x overflows and underflows."""

    roots = ("tc.sqrt",)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        argument = squared_operand(op.x)
        if argument is None:
            return False
        return replace(rewriter, op, Emitter(rewriter, op).op(tc.AbsOp, argument))


def squared_operand(value: Value) -> Value | None:
    """`x` when `value` is `x*x`, `square(x)` or `x**2`."""
    square = producer(value, tc.SquareOp)
    if square is not None:
        return square.x
    product = producer(value, tc.MulOp)
    if product is not None and product.lhs is product.rhs:
        return product.lhs
    power = producer(value, tc.PowOp)
    if power is not None and is_splat(power.rhs, 2):
        return power.lhs
    return None


# ----- cross-entropy ------------------------------------------------------------------------


def cross_entropy_logits(value: Value, axis: int) -> Value | None:
    """`z` when `value` is the log_softmax of `z: [N, C]` over axis 1 and `axis` is 1."""
    source = log_softmax_of(value)
    if source is None or axis != 1:
        return None
    logits, softmax_axis = source
    if logits.type.rank != 2 or softmax_axis != 1:
        return None
    return logits


class CrossEntropyFromOneHot(RewritePattern):
    """sum(one_hot(y, C) * log_softmax(z), axis=1) -> -cross_entropy(z, y), zero where y is
    outside [0, C) as one_hot gives (the factors may come in either order)."""

    roots = ("tc.sum",)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        product = producer(op.x, tc.MulOp)
        if product is None or list(op.axes) != [1]:
            return False
        for mask, log_probs in ((product.lhs, product.rhs), (product.rhs, product.lhs)):
            one_hot = one_hot_of(mask)
            logits = cross_entropy_logits(log_probs, 1)
            if one_hot is None or logits is None or not has_constants(logits.type.dtype):
                continue
            labels = one_hot.indices
            if labels.type.rank != 1 or labels.type.shape[0] != logits.type.shape[0]:
                continue
            emit = Emitter(rewriter, op)
            losses = guarded_cross_entropy(emit, logits, labels, one_hot.n)
            return replace(rewriter, op, emit.reshape(emit.neg(losses), op.result.type.shape))
        return False


def guarded_cross_entropy(emit: Emitter, logits: Value, labels: Value, classes: int) -> Value:
    """cross_entropy(logits, labels) where 0 <= labels < classes, else 0."""
    zero = emit.splat(0, labels.type)
    in_range = emit.op(
        tc.AndOp,
        emit.op(tc.GeOp, labels, zero),
        emit.op(tc.LtOp, labels, emit.splat(classes, labels.type)),
    )
    safe_labels = emit.op(tc.SelectOp, in_range, labels, zero)
    losses = emit.op(tc_reduce.CrossEntropyOp, logits, safe_labels)
    return emit.op(tc.SelectOp, in_range, losses, emit.splat(0.0, losses.type))


class CrossEntropyFromGather(RewritePattern):
    """take_along_axis(log_softmax(z), i: [N, 1], axis=1) -> -cross_entropy(z, i) as [N, 1],
    negative indices wrapped as take_along_axis wraps them."""

    roots = ("tc.take_along_axis",)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        logits = cross_entropy_logits(op.x, op.axis)
        indices = op.indices
        if logits is None or indices.type.shape[1] != DimExpr.const(1):
            return False
        if indices.type.shape[0] != logits.type.shape[0]:
            return False
        emit = Emitter(rewriter, op)
        labels = emit.reshape(indices, indices.type.shape[:1])
        negative = emit.op(tc.LtOp, labels, emit.splat(0, labels.type))
        wrapped = emit.op(tc.AddOp, labels, emit.dim_size(logits.type.shape[1], labels.type))
        labels = emit.op(tc.SelectOp, negative, wrapped, labels)
        losses = emit.op(tc_reduce.CrossEntropyOp, logits, labels)
        return replace(rewriter, op, emit.reshape(emit.neg(losses), op.result.type.shape))


class CancelDoubleNegation(RewritePattern):
    """-(-x) -> x and -reshape(-x) -> reshape(x): left behind by the rewrites above."""

    roots = ("tc.neg",)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        inner = producer(through_reshapes(op.x), tc.NegOp)
        if inner is None:
            return False
        return replace(rewriter, op, Emitter(rewriter, op).reshape(inner.x, op.result.type.shape))


# ----- the pass -----------------------------------------------------------------------------

STABILIZE_PATTERNS: tuple[RewritePattern, ...] = (
    # Order matters among patterns of one root: the first that matches wins.
    LogOfSoftmax(),
    LogOfGatheredSoftmax(),
    LogOfSumOfExp(),
    LogOfMeanOfExp(),
    LogOfSigmoid(),
    LogOfOneMinusSigmoid(),
    LogOfExp(),
    LogOfExpPlusExp(),
    LogOfOnePlus(),
    Log1pOfExp(),
    Log1pOfNegSigmoid(),
    ExpMinusOne(),
    OneMinusSigmoid(),
    SigmoidFromExp(),
    SoftmaxFromExp(),
    SqrtOfSquare(),
    CrossEntropyFromOneHot(),
    CrossEntropyFromGather(),
    CancelDoubleNegation(),
)


@register_pass
@dataclass(frozen=True)
class Stabilize(ModulePass):
    """Rewrite numerically unstable expressions into stable equivalents (see the table)."""

    name: ClassVar[str] = "stabilize"

    def run(self, module: Module) -> bool:
        return apply_patterns(module, STABILIZE_PATTERNS, fold=False)
