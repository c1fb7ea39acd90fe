"""VJP rules of the `tc` reductions and of `tc.matmul`.

A reduction's cotangent has the reduced shape (with or without `keepdims`); `unreduce`
broadcasts it back over the reduced axes. Choices, as in JAX:
- `max`/`min` give the gradient to every position equal to the extreme, divided by the number
  of such ties, so that the gradient sums to `g`.
- `prod` gives each element the product of the others, exactly, also when the group contains
  zeros: with `p` the product of the nonzero elements and `z` their number of zeros, the
  product of the others is `p / x` when z == 0, `p` at the zero when z == 1 (0 elsewhere),
  and 0 when z >= 2. No division by zero happens, so no NaN appears.
- `mean` divides by the number of elements reduced, a `tc.dim_size` when it is symbolic.
- `matmul` (`lhs[..., m, k] @ rhs[..., k, n]`, batch dims already equal): `g @ rhs^T` and
  `lhs^T @ g`, transposing the last two axes.
"""

from __future__ import annotations

from collections.abc import Callable

from tensorc.ir.core import Operation, Value
from tensorc.ir.dialects import tc
from tensorc.ir.dialects import tc_reduce as reduce_ops
from tensorc.passes.vjp_builder import GradBuilder

Cotangents = list[Value | None]
ReduceRule = Callable[[GradBuilder, Operation, Value], Cotangents]


def _unreduce(b: GradBuilder, op: Operation, reduced: Value) -> Value:
    """A value of `op`'s result shape broadcast back to its operand's shape."""
    return b.unreduce(reduced, op.x.type, op.axes, op.keepdims)


def sum_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    return [_unreduce(b, op, g)]


def mean_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    count = reduce_ops.count_of(op.x.type.shape, op.axes)
    scaled = b.div(g, b.broadcast_to(b.size(count, g.type.dtype), g.type.shape))
    return [_unreduce(b, op, scaled)]


def prod_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    x = op.x
    zeros = b.zeros_like(x)
    is_zero = b.compare(tc.EqOp, x, zeros)
    nonzero_or_one = b.select(is_zero, b.full_like(x, 1.0), x)
    nonzero_product = _keepdims_broadcast(b, op, reduce_ops.ProdOp, nonzero_or_one)
    zero_count = _keepdims_broadcast(b, op, reduce_ops.SumOp, b.cast(is_zero, x.type.dtype))
    no_zero = b.compare(tc.EqOp, zero_count, zeros)
    the_only_zero = b.binary(tc.AndOp, is_zero, b.compare(tc.EqOp, zero_count, b.full_like(x, 1.0)))
    product_of_others = b.select(
        no_zero,
        b.div(nonzero_product, nonzero_or_one),
        b.select(the_only_zero, nonzero_product, zeros),
    )
    return [b.mul(_unreduce(b, op, g), product_of_others)]


def _keepdims_broadcast(
    b: GradBuilder, op: Operation, reduction: type[Operation], x: Value
) -> Value:
    """`reduction` of `x` over `op`'s axes, broadcast back to `x`'s shape."""
    reduced = b.reduce(reduction, x, op.axes, keepdims=True)
    return b.broadcast_to(reduced, x.type.shape)


def max_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    return _extreme_vjp(b, op, g)


def min_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    return _extreme_vjp(b, op, g)


def _extreme_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    """`g` shared equally by the positions where `x` equals its extreme."""
    x = op.x
    at_extreme = b.cast(b.compare(tc.EqOp, x, _unreduce(b, op, op.result)), x.type.dtype)
    ties = b.sum(at_extreme, op.axes, keepdims=True)
    share = b.div(b.keep_reduced_axes(g, x.type, op.axes), ties)
    return [b.mul(b.broadcast_to(share, x.type.shape), at_extreme)]


def logsumexp_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    """d logsumexp(x) = softmax(x) over the reduced axes: exp(x - logsumexp(x))."""
    weights = b.exp(b.sub(op.x, _unreduce(b, op, op.result)))
    return [b.mul(_unreduce(b, op, g), weights)]


def matmul_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    lhs, rhs = op.lhs, op.rhs
    lhs_cotangent = b.value(reduce_ops.MatmulOp, [g, _swap_last_axes(b, rhs)])
    rhs_cotangent = b.value(reduce_ops.MatmulOp, [_swap_last_axes(b, lhs), g])
    return [lhs_cotangent, rhs_cotangent]


def _swap_last_axes(b: GradBuilder, x: Value) -> Value:
    rank = x.type.rank
    perm = list(range(rank - 2)) + [rank - 1, rank - 2]
    return b.transpose(x, perm)


REDUCE_VJPS: dict[str, ReduceRule] = {
    "tc.sum": sum_vjp,
    "tc.mean": mean_vjp,
    "tc.prod": prod_vjp,
    "tc.max": max_vjp,
    "tc.min": min_vjp,
    "tc.logsumexp": logsumexp_vjp,
    "tc.matmul": matmul_vjp,
}
