"""`GradBuilder`: the IR builder that VJP rules are written with.

It is an ordinary `Builder` (ops go before the `tc.grad` being expanded) plus one-line
helpers for the arithmetic that rules need, so that a rule reads like the formula it
implements: `b.mul(g, b.cos(op.x))`. Every helper creates plain `tc` ops with inferred types;
scalar constants are `tc.constant` splats broadcast with `tc.broadcast_to`, and sizes that
are symbolic become `tc.dim_size` values, so the rules work for any shape.
"""

from __future__ import annotations

from collections.abc import Sequence

from tensorc.ir.builder import Builder
from tensorc.ir.core import Operation, Value
from tensorc.ir.dialects import tc
from tensorc.ir.dialects import tc_reduce as reduce_ops
from tensorc.ir.dialects import tc_shape as shape_ops
from tensorc.ir.dims import DimExpr, as_size
from tensorc.ir.dtypes import DType
from tensorc.ir.typecheck import reduce_shape
from tensorc.ir.types import TensorType

Shape = Sequence[DimExpr]


class GradBuilder(Builder):
    """Creates the backward ops of one `tc.grad` expansion."""

    # ----- constants --------------------------------------------------------------------------
    def constant(self, value: float | int | bool, dtype: DType) -> Value:
        """A scalar `tc.constant` of `dtype`."""
        return self.insert(tc.ConstantOp.scalar(value, dtype)).result

    def splat(self, value: float | int | bool, like: TensorType) -> Value:
        """A tensor of type `like` whose every element is `value`."""
        scalar = self.constant(value, like.dtype)
        return self.broadcast_to(scalar, like.shape)

    def full_like(self, x: Value, value: float | int | bool) -> Value:
        return self.splat(value, x.type)

    def zeros(self, like: TensorType) -> Value:
        return self.splat(False if like.dtype.is_bool else 0, like)

    def zeros_like(self, x: Value) -> Value:
        return self.zeros(x.type)

    def size(self, count: DimExpr, dtype: DType) -> Value:
        """The integer `count` (a number of elements) as a scalar of `dtype`."""
        count = as_size(count)
        if count.value is not None:
            return self.constant(count.value, dtype)
        as_i32 = self.value(tc.DimSizeOp, [], value=count)
        return self.cast(as_i32, dtype)

    def index(self, position: DimExpr) -> Value:
        """A position along an axis as an `i32` scalar."""
        if position.value is not None:
            return self.constant(position.value, DType.I32)
        return self.value(tc.DimSizeOp, [], value=position)

    # ----- elementwise ------------------------------------------------------------------------
    def unary(self, op_class: type[Operation], x: Value, **attributes: object) -> Value:
        return self.value(op_class, [x], **attributes)

    def binary(self, op_class: type[Operation], lhs: Value, rhs: Value) -> Value:
        return self.value(op_class, [lhs, rhs])

    def add(self, lhs: Value, rhs: Value) -> Value:
        return self.binary(tc.AddOp, lhs, rhs)

    def sub(self, lhs: Value, rhs: Value) -> Value:
        return self.binary(tc.SubOp, lhs, rhs)

    def mul(self, lhs: Value, rhs: Value) -> Value:
        return self.binary(tc.MulOp, lhs, rhs)

    def div(self, lhs: Value, rhs: Value) -> Value:
        return self.binary(tc.DivOp, lhs, rhs)

    def neg(self, x: Value) -> Value:
        return self.unary(tc.NegOp, x)

    def exp(self, x: Value) -> Value:
        return self.unary(tc.ExpOp, x)

    def log(self, x: Value) -> Value:
        return self.unary(tc.LogOp, x)

    def scale(self, x: Value, factor: float) -> Value:
        """`x * factor` for a Python number `factor`."""
        return self.mul(x, self.full_like(x, factor))

    def add_scalar(self, x: Value, term: float) -> Value:
        """`x + term` for a Python number `term`."""
        return self.add(x, self.full_like(x, term))

    def one_minus(self, x: Value) -> Value:
        return self.sub(self.full_like(x, 1.0), x)

    def select(self, cond: Value, on_true: Value, on_false: Value) -> Value:
        return self.value(tc.SelectOp, [cond, on_true, on_false])

    def compare(self, op_class: type[Operation], lhs: Value, rhs: Value) -> Value:
        """A comparison op (`tc.gt`, `tc.eq`, ...) giving a bool tensor."""
        return self.binary(op_class, lhs, rhs)

    def cast(self, x: Value, dtype: DType) -> Value:
        if x.type.dtype == dtype:
            return x
        return self.value(tc.CastOp, [x], x.type.with_dtype(dtype))

    # ----- shapes -----------------------------------------------------------------------------
    def broadcast_to(self, x: Value, shape: Shape) -> Value:
        if tuple(x.type.shape) == tuple(shape):
            return x
        return self.value(shape_ops.BroadcastToOp, [x], x.type.with_shape(shape))

    def reshape(self, x: Value, shape: Shape) -> Value:
        if tuple(x.type.shape) == tuple(shape):
            return x
        return self.value(shape_ops.ReshapeOp, [x], x.type.with_shape(shape))

    def transpose(self, x: Value, perm: Sequence[int]) -> Value:
        if list(perm) == list(range(x.type.rank)):
            return x
        return self.value(shape_ops.TransposeOp, [x], perm=list(perm))

    def coerce(self, x: Value, target: TensorType) -> Value:
        """`x` with exactly the type `target`, whose shape `x`'s shape is compatible with but
        may spell differently (`min(3, N + 3)` for `3`, or `N` for `M` known equal)."""
        if x.type == target:
            return x
        if x.type.dtype != target.dtype:
            raise ValueError(f"autodiff: cotangent {x.type} cannot stand for a {target}")
        return self.reshape(x, target.shape)

    # ----- reductions -------------------------------------------------------------------------
    def sum(self, x: Value, axes: Sequence[int], keepdims: bool = False) -> Value:
        if not axes:
            return x
        return self.reduce(reduce_ops.SumOp, x, axes, keepdims)

    def mean(self, x: Value, axes: Sequence[int], keepdims: bool = False) -> Value:
        if not axes:
            return x
        return self.reduce(reduce_ops.MeanOp, x, axes, keepdims)

    def reduce(
        self, op_class: type[Operation], x: Value, axes: Sequence[int], keepdims: bool = False
    ) -> Value:
        """A reduction op, spelled as the frontend spells it (`keepdims` only when true, so
        that CSE sees equal ops as equal)."""
        flags = {"keepdims": True} if keepdims else {}
        return self.value(op_class, [x], axes=sorted(axes), **flags)

    def keep_reduced_axes(self, reduced: Value, source: TensorType, axes: Sequence[int]) -> Value:
        """A reduction result computed without `keepdims`, reshaped to have size-1 dimensions
        at `axes` (a no-op for one computed with `keepdims`)."""
        return self.reshape(reduced, reduce_shape(source.shape, list(axes), keepdims=True))

    def unreduce(
        self, reduced: Value, source: TensorType, axes: Sequence[int], keepdims: bool
    ) -> Value:
        """Broadcast the result of reducing a `source`-shaped tensor over `axes` back to
        `source`'s shape. Leading reduced axes need no reshape: broadcasting adds them."""
        leading_only = list(axes) == list(range(len(axes)))
        if not keepdims and not leading_only:
            reduced = self.keep_reduced_axes(reduced, source, axes)
        return self.broadcast_to(reduced, source.shape)
