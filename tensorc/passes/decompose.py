"""`decompose`: expand the composite `tc` ops into primitives that fusion understands.

    softmax(x, a)      m = max(x, a, keepdims); e = exp(x - m); e / sum(e, a, keepdims)
    log_softmax(x, a)  s = x - max(x, a, keepdims); s - log(sum(exp(s), a, keepdims))
    logsumexp(x, A)    m = max(x, A, keepdims); c = select(|m| < inf, m, 0);
                       log(sum(exp(x - c), A)) + c           (no overflow; -inf rows stay -inf)
    layer_norm(x,g,b)  c = x - sum(x)/n; c / sqrt(sum(c*c)/n + eps) * g + b    (last axis)
    cross_entropy(l,y) logsumexp(l, 1) - take_along_axis(l, y', 1) with y' = y, or y - C
                       where y < 0, so that a negative label raises IndexError as it must
    mean(x, A)         sum(x, A) / count; the count is a constant, or `tc.dim_size` cast
    gelu(x)            0.5 * x * (1 + erf(x * sqrt(1/2)))
    gelu(x, approx)    x * sigmoid(x * (k + k*0.044715*x^2)), k = 2*sqrt(2/pi), which equals
                       0.5*x*(1 + tanh(u)) and never overflows (four ops for the argument)

Every formula follows the interpreter's own kernel step by step (`kernels_nn.py`,
`kernels_reduce.mean`), so the results agree to rounding. Broadcasts are explicit
(`tc.broadcast_to` of keepdims reductions and of scalar constants). `f16`/`bf16` operands
are computed in `f32` and rounded once at the end, like the interpreter's kernels; integer
means sum in `f64`. `tc.sigmoid` and `tc.softplus` are primitives and stay.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tensorc.ir.builder import Builder
from tensorc.ir.core import Block, Operation, Value
from tensorc.ir.dialects import tc, tc_reduce, tc_shape
from tensorc.ir.dialects.func import Module
from tensorc.ir.dims import DimExpr, as_size
from tensorc.ir.dtypes import DType
from tensorc.ir.typecheck import reduce_shape
from tensorc.ir.types import TensorType
from tensorc.passes.pass_manager import ModulePass, register_pass

_GELU_CUBIC = 0.044715


class Emitter:
    """Small helpers that create `tc` ops before an anchor."""

    def __init__(self, builder: Builder) -> None:
        self.b = builder

    def op(self, op_class: type[Operation], *operands: Value, **attributes: object) -> Value:
        return self.b.value(op_class, list(operands), **attributes)

    def typed(self, op_class: type[Operation], operand: Value, result: TensorType) -> Value:
        return self.b.value(op_class, [operand], result)

    def cast(self, x: Value, dtype: DType) -> Value:
        if x.type.dtype == dtype:
            return x
        return self.typed(tc.CastOp, x, x.type.with_dtype(dtype))

    def broadcast(self, x: Value, shape: Sequence[DimExpr]) -> Value:
        if x.type.shape == tuple(shape):
            return x
        return self.typed(tc_shape.BroadcastToOp, x, x.type.with_shape(shape))

    def reshape(self, x: Value, shape: Sequence[DimExpr]) -> Value:
        if x.type.shape == tuple(shape):
            return x
        return self.typed(tc_shape.ReshapeOp, x, x.type.with_shape(shape))

    def splat(self, value: float | int | bool, dtype: DType, shape: Sequence[DimExpr]) -> Value:
        scalar = self.b.insert(tc.ConstantOp.scalar(value, dtype)).result
        return self.broadcast(scalar, shape)

    def size(self, size: DimExpr, dtype: DType, shape: Sequence[DimExpr]) -> Value:
        """The value of a size expression as a `dtype` tensor of `shape`."""
        size = as_size(size)
        if size.value is not None:
            return self.splat(size.value, dtype, shape)
        count = self.b.value(tc.DimSizeOp, [], value=size)
        return self.broadcast(self.cast(count, dtype), shape)

    def reduce(
        self, op_class: type[Operation], x: Value, axes: Sequence[int], keepdims: bool
    ) -> Value:
        return self.op(op_class, x, axes=list(axes), keepdims=keepdims)


def compute_dtype(dtype: DType) -> DType:
    """The dtype the composite ops compute in: half precisions widen to f32."""
    return DType.F32 if dtype in (DType.F16, DType.BF16) else dtype


# ----- expansions ---------------------------------------------------------------------------


def _softmax(e: Emitter, op: Operation) -> Value:
    x = e.cast(op.x, compute_dtype(op.x.type.dtype))
    shape, axis = x.type.shape, op.axis
    largest = e.reduce(tc_reduce.MaxOp, x, [axis], keepdims=True)
    exponentials = e.op(tc.ExpOp, e.op(tc.SubOp, x, e.broadcast(largest, shape)))
    total = e.reduce(tc_reduce.SumOp, exponentials, [axis], keepdims=True)
    result = e.op(tc.DivOp, exponentials, e.broadcast(total, shape))
    return e.cast(result, op.x.type.dtype)


def _log_softmax(e: Emitter, op: Operation) -> Value:
    x = e.cast(op.x, compute_dtype(op.x.type.dtype))
    shape, axis = x.type.shape, op.axis
    largest = e.reduce(tc_reduce.MaxOp, x, [axis], keepdims=True)
    shifted = e.op(tc.SubOp, x, e.broadcast(largest, shape))
    total = e.reduce(tc_reduce.SumOp, e.op(tc.ExpOp, shifted), [axis], keepdims=True)
    result = e.op(tc.SubOp, shifted, e.broadcast(e.op(tc.LogOp, total), shape))
    return e.cast(result, op.x.type.dtype)


def logsumexp(e: Emitter, x: Value, axes: Sequence[int], keepdims: bool) -> Value:
    """`log(sum(exp(x), axes))` shifted by the maximum where it is finite (x is computed in
    its own dtype)."""
    shape = x.type.shape
    largest = e.reduce(tc_reduce.MaxOp, x, axes, keepdims=True)
    kept = largest.type.shape
    dtype = x.type.dtype
    finite = e.op(tc.LtOp, e.op(tc.AbsOp, largest), e.splat(math.inf, dtype, kept))
    shift = e.op(tc.SelectOp, finite, largest, e.splat(0.0, dtype, kept))
    shifted = e.op(tc.SubOp, x, e.broadcast(shift, shape))
    total = e.reduce(tc_reduce.SumOp, e.op(tc.ExpOp, shifted), axes, keepdims=keepdims)
    return e.op(tc.AddOp, e.op(tc.LogOp, total), e.reshape(shift, total.type.shape))


def _logsumexp(e: Emitter, op: Operation) -> Value:
    if not op.axes:
        return op.x
    x = e.cast(op.x, compute_dtype(op.x.type.dtype))
    return e.cast(logsumexp(e, x, op.axes, op.keepdims), op.x.type.dtype)


def _layer_norm(e: Emitter, op: Operation) -> Value:
    dtype = compute_dtype(op.x.type.dtype)
    x, gamma, beta = (e.cast(v, dtype) for v in (op.x, op.gamma, op.beta))
    shape = x.type.shape
    axis = len(shape) - 1
    kept = reduce_shape(shape, [axis], keepdims=True)
    width = e.size(shape[axis], dtype, kept)
    total = e.reduce(tc_reduce.SumOp, x, [axis], keepdims=True)
    mean = e.op(tc.DivOp, total, width)
    centered = e.op(tc.SubOp, x, e.broadcast(mean, shape))
    squares = e.reduce(tc_reduce.SumOp, e.op(tc.MulOp, centered, centered), [axis], True)
    variance = e.op(tc.DivOp, squares, e.size(shape[axis], dtype, kept))
    deviation = e.op(tc.SqrtOp, e.op(tc.AddOp, variance, e.splat(op.eps, dtype, kept)))
    normalised = e.op(tc.DivOp, centered, e.broadcast(deviation, shape))
    scaled = e.op(tc.MulOp, normalised, e.broadcast(gamma, shape))
    return e.cast(e.op(tc.AddOp, scaled, e.broadcast(beta, shape)), op.x.type.dtype)


def _cross_entropy(e: Emitter, op: Operation) -> Value:
    logits = e.cast(op.logits, compute_dtype(op.logits.type.dtype))
    labels = op.labels
    rows, classes = logits.type.shape
    label_shape = labels.type.shape
    negative = e.op(tc.LtOp, labels, e.splat(0, labels.type.dtype, label_shape))
    shifted = e.op(tc.SubOp, labels, e.size(classes, labels.type.dtype, label_shape))
    checked = e.op(tc.SelectOp, negative, shifted, labels)
    column = e.reshape(checked, (label_shape[0], DimExpr.const(1)))
    picked = e.b.value(tc_shape.TakeAlongAxisOp, [logits, column], axis=1)
    normaliser = logsumexp(e, logits, [1], keepdims=False)
    result = e.op(tc.SubOp, normaliser, e.reshape(picked, (rows,)))
    return e.cast(result, op.logits.type.dtype)


def _mean(e: Emitter, op: Operation) -> Value:
    result_type = op.result.type
    if not op.axes:
        return e.cast(op.x, result_type.dtype)
    source = op.x.type.dtype
    dtype = compute_dtype(source) if source.is_float else DType.F64
    total = e.reduce(tc_reduce.SumOp, e.cast(op.x, dtype), op.axes, op.keepdims)
    count = tc_reduce.count_of(op.x.type.shape, op.axes)
    mean = e.op(tc.DivOp, total, e.size(count, dtype, total.type.shape))
    return e.cast(mean, result_type.dtype)


def _gelu(e: Emitter, op: Operation) -> Value:
    x = e.cast(op.x, compute_dtype(op.x.type.dtype))
    dtype, shape = x.type.dtype, x.type.shape
    if op.approximate:
        scale = 2.0 * math.sqrt(2.0 / math.pi)  # u = x * (scale + scale * cubic * x^2)
        square = e.op(tc.MulOp, x, x)
        slope = e.op(tc.MulOp, e.splat(scale * _GELU_CUBIC, dtype, shape), square)
        inner = e.op(tc.AddOp, e.splat(scale, dtype, shape), slope)
        gate = e.op(tc.SigmoidOp, e.op(tc.MulOp, x, inner))
        return e.cast(e.op(tc.MulOp, x, gate), op.x.type.dtype)
    scaled = e.op(tc.MulOp, x, e.splat(math.sqrt(0.5), dtype, shape))
    one_plus = e.op(tc.AddOp, e.splat(1.0, dtype, shape), e.op(tc.ErfOp, scaled))
    half_x = e.op(tc.MulOp, e.splat(0.5, dtype, shape), x)
    return e.cast(e.op(tc.MulOp, half_x, one_plus), op.x.type.dtype)


EXPANSIONS: dict[str, Callable[[Emitter, Operation], Value]] = {
    "tc.softmax": _softmax,
    "tc.log_softmax": _log_softmax,
    "tc.logsumexp": _logsumexp,
    "tc.layer_norm": _layer_norm,
    "tc.cross_entropy": _cross_entropy,
    "tc.mean": _mean,
    "tc.gelu": _gelu,
}


def decompose_block(block: Block) -> int:
    """Expand every composite op of `block`; returns how many were expanded. The block is
    rebuilt once, so the work is linear in its size."""
    expansions: dict[int, list[Operation]] = {}
    for op in list(block.ops):
        expand = EXPANSIONS.get(op.name)
        if expand is None:
            continue
        scratch = Block()
        replacement = expand(Emitter(Builder.at_end(scratch, op.loc)), op)
        if op.result.name_hint and not replacement.name_hint:
            replacement.name_hint = op.result.name_hint
        op.result.replace_all_uses_with(replacement)
        expansions[id(op)] = scratch.ops
    if not expansions:
        return 0
    ops: list[Operation] = []
    expanded: list[Operation] = []
    for op in block.ops:
        if id(op) in expansions:
            expanded.append(op)
            op.parent = None
        ops.extend(expansions.get(id(op), [op]))
    for op in ops:
        op.parent = block
    block.ops = ops
    # Forget the expanded ops' uses in one pass per value (op by op, a weight shared by every
    # layer would cost the length of its use list each time).
    for value in {id(v): v for op in expanded for v in op.operands}.values():
        value.uses = [use for use in value.uses if id(use.op) not in expansions]
    return len(expansions)


@register_pass
@dataclass(frozen=True)
class Decompose(ModulePass):
    """Expand softmax, log_softmax, logsumexp, layer_norm, cross_entropy, mean and gelu."""

    name = "decompose"

    def run(self, module: Module) -> bool:
        return sum(decompose_block(function.body) for function in module.functions) > 0
