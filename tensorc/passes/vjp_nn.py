"""VJP rules of the neural-network `tc` ops, in their compact closed forms.

- `softmax`: y * (g - sum(g*y)), sums along the op's axis.
- `log_softmax`: g - softmax(x) * sum(g).
- `layer_norm` (over the last axis, biased variance): with xhat the normalised input and
  rstd = 1/sqrt(var + eps), d_beta = sum(g), d_gamma = sum(g * xhat) over the leading axes,
  and d_x = rstd * (gx - mean(gx) - xhat * mean(gx * xhat)) with gx = g * gamma.
- `cross_entropy` (logits only; labels are integers): (softmax(z) - one_hot(labels)) * g,
  the form that the simplifier keeps recognisable after -O2.
"""

from __future__ import annotations

from collections.abc import Callable

from tensorc.ir.core import Operation, Value
from tensorc.ir.dialects import tc
from tensorc.ir.dialects import tc_reduce as reduce_ops
from tensorc.ir.dialects import tc_shape as shape_ops
from tensorc.ir.dims import DimExpr
from tensorc.ir.dtypes import DType
from tensorc.ir.types import TensorType
from tensorc.passes.vjp_builder import GradBuilder

Cotangents = list[Value | None]
NNRule = Callable[[GradBuilder, Operation, Value], Cotangents]


def _sum_along(b: GradBuilder, x: Value, axis: int) -> Value:
    """The sum along `axis`, broadcast back to `x`'s shape."""
    return b.broadcast_to(b.sum(x, [axis], keepdims=True), x.type.shape)


def softmax_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    probabilities = op.result
    weighted = b.mul(g, probabilities)
    return [b.sub(weighted, b.mul(probabilities, _sum_along(b, weighted, op.axis)))]


def log_softmax_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    probabilities = b.value(reduce_ops.SoftmaxOp, [op.x], axis=op.axis)
    return [b.sub(g, b.mul(probabilities, _sum_along(b, g, op.axis)))]


def layer_norm_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    x, gamma = op.x, op.gamma
    last = x.type.rank - 1
    leading_axes = list(range(last))
    shape = x.type.shape

    def along_last(value: Value) -> Value:
        return b.broadcast_to(value, shape)

    centered = b.sub(x, along_last(b.mean(x, [last], keepdims=True)))
    variance = b.mean(b.mul(centered, centered), [last], keepdims=True)
    inv_std = b.unary(tc.RsqrtOp, b.add_scalar(variance, op.eps))
    normalised = b.mul(centered, along_last(inv_std))

    beta_cotangent = b.sum(g, leading_axes)
    gamma_cotangent = b.sum(b.mul(g, normalised), leading_axes)
    scaled = b.mul(g, b.broadcast_to(gamma, shape))
    mean_scaled = along_last(b.mean(scaled, [last], keepdims=True))
    projection = b.mul(
        normalised, along_last(b.mean(b.mul(scaled, normalised), [last], keepdims=True))
    )
    x_cotangent = b.mul(along_last(inv_std), b.sub(b.sub(scaled, mean_scaled), projection))
    return [x_cotangent, gamma_cotangent, beta_cotangent]


def cross_entropy_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    logits, labels = op.logits, op.labels
    shape = logits.type.shape
    probabilities = b.value(reduce_ops.SoftmaxOp, [logits], axis=1)
    targets = _one_hot(b, labels, shape[1], logits.type.dtype)
    per_row = b.broadcast_to(b.reshape(g, [shape[0], DimExpr.const(1)]), shape)
    return [b.mul(b.sub(probabilities, targets), per_row), None]


def _one_hot(b: GradBuilder, labels: Value, classes: DimExpr, dtype: DType) -> Value:
    """`one_hot(labels, classes)` in `dtype`; a symbolic number of classes compares the labels
    with `iota(classes)` instead (`tc.one_hot` takes a static `n`)."""
    if classes.value is not None:
        return b.cast(b.value(shape_ops.OneHotOp, [labels], n=classes.value), dtype)
    shape = [labels.type.shape[0], classes]
    classes_row = b.value(tc.IotaOp, [], TensorType.of(labels.type.dtype, [classes]))
    labels_column = b.reshape(labels, [labels.type.shape[0], DimExpr.const(1)])
    hits = b.compare(
        tc.EqOp, b.broadcast_to(labels_column, shape), b.broadcast_to(classes_row, shape)
    )
    return b.cast(hits, dtype)


NN_VJPS: dict[str, NNRule] = {
    "tc.softmax": softmax_vjp,
    "tc.log_softmax": log_softmax_vjp,
    "tc.layer_norm": layer_norm_vjp,
    "tc.cross_entropy": cross_entropy_vjp,
}
