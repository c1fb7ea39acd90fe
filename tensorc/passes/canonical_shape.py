"""Canonicalization patterns for shape ops, reductions and broadcasts; the table is in
`canonicalize.py`."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from tensorc.ir.core import Elementwise, Operation, Value
from tensorc.ir.dialects import tc, tc_shape
from tensorc.ir.dtypes import DType
from tensorc.ir.typecheck import can_broadcast_to
from tensorc.ir.types import TensorType
from tensorc.passes.canonical_patterns import (
    Scalar,
    make_splat,
    producer,
    replace_by,
    splat_of,
)
from tensorc.passes.rewrite import PatternRewriter, RewritePattern

SMALL_SPLAT_ELEMENTS = 16
"""A broadcast or reshape of a splat constant to at most this many elements becomes a dense
splat constant; larger ones stay broadcasts, which cost nothing once fused."""


# ----- transpose, reshape, broadcast ----------------------------------------------------------


class TransposeComposition(RewritePattern):
    """`transpose(transpose(x, p), q) -> transpose(x, p∘q)`; an identity permutation -> x."""

    roots = ("tc.transpose",)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        perm = list(op.perm)
        if perm == list(range(len(perm))):
            return replace_by(rewriter, op, op.x)
        inner = producer(op.x, tc_shape.TransposeOp)
        if inner is None:
            return False
        composed = [inner.perm[axis] for axis in perm]
        if composed == list(range(len(composed))):
            return replace_by(rewriter, op, inner.x)
        value = rewriter.create(op, tc_shape.TransposeOp, [inner.x], op.result.type, perm=composed)
        return replace_by(rewriter, op, value)


class ReshapeComposition(RewritePattern):
    """`reshape(x)` to x's own type -> x; `reshape(reshape(x)) -> reshape(x)`."""

    roots = ("tc.reshape",)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        if op.x.type == op.result.type:
            return replace_by(rewriter, op, op.x)
        inner = producer(op.x, tc_shape.ReshapeOp)
        if inner is None:
            return False
        if inner.x.type == op.result.type:
            return replace_by(rewriter, op, inner.x)
        value = rewriter.create(op, tc_shape.ReshapeOp, [inner.x], op.result.type)
        return replace_by(rewriter, op, value)


class BroadcastComposition(RewritePattern):
    """`broadcast_to(x)` to x's own type -> x; `broadcast_to(broadcast_to(x)) ->
    broadcast_to(x)` (NumPy broadcasts compose)."""

    roots = ("tc.broadcast_to",)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        if op.x.type == op.result.type:
            return replace_by(rewriter, op, op.x)
        inner = producer(op.x, tc_shape.BroadcastToOp)
        if inner is None or not can_broadcast_to(inner.x.type.shape, op.result.type.shape):
            return False
        value = rewriter.create(op, tc_shape.BroadcastToOp, [inner.x], op.result.type)
        return replace_by(rewriter, op, value)


class ShapeOpOfScalarBroadcast(RewritePattern):
    """A reshape, transpose, slice or broadcast of `broadcast_to(s)` with `s` a scalar is
    `broadcast_to(s)` to the result type: every element is `s` whatever the shape op does."""

    roots = ("tc.reshape", "tc.transpose", "tc.slice", "tc.broadcast_to")

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        inner = producer(op.x, tc_shape.BroadcastToOp)
        if inner is None or not inner.x.type.is_scalar:
            return False
        scalar = inner.x
        if op.result.type.is_scalar:
            return replace_by(rewriter, op, scalar)
        value = rewriter.create(op, tc_shape.BroadcastToOp, [scalar], op.result.type)
        return replace_by(rewriter, op, value)


class SmallSplatConstant(RewritePattern):
    """`broadcast_to(c)` or `reshape(c)` of a splat constant, with a static result of at most
    `SMALL_SPLAT_ELEMENTS` elements -> a splat constant of the result type."""

    roots = ("tc.broadcast_to", "tc.reshape")

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        shape = op.result.type.static_shape
        if shape is None or math.prod(shape) > SMALL_SPLAT_ELEMENTS:
            return False
        if op.result.type.dtype == DType.BF16:
            return False
        splat = splat_of(op.x)
        if splat is None or producer(op.x, tc.ConstantOp) is None:
            return False
        return replace_by(rewriter, op, _splat_constant(rewriter, op, splat, op.result.type))


def _splat_constant(
    rewriter: PatternRewriter, anchor: Operation, number: Scalar, tensor_type: TensorType
) -> Value:
    shape = tensor_type.static_shape
    assert shape is not None
    array = np.full(shape, number, dtype=tensor_type.dtype.numpy)
    constant = tc.ConstantOp((), [tensor_type], {"value": array})
    return rewriter.insert_before(anchor, constant).result


class SliceWholeTensor(RewritePattern):
    """A slice that takes every element of every axis (start 0, step 1, same type) -> x."""

    roots = ("tc.slice",)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        if op.x.type != op.result.type or any(step != 1 for step in op.steps):
            return False
        if any(start is not None and start != 0 for start in op.starts):
            return False
        return replace_by(rewriter, op, op.x)


# ----- reductions -----------------------------------------------------------------------------


REDUCTIONS = ("tc.sum", "tc.prod", "tc.max", "tc.min", "tc.mean")


def _exact_reduction_cast(op: Operation) -> bool:
    """A reduction of one element per output gives that element converted to the result
    dtype: exact for same dtypes, bool sums and products, and means of bool or i32."""
    source, target = op.x.type.dtype, op.result.type.dtype
    if source == target:
        return True
    if op.name in ("tc.sum", "tc.prod"):
        return source.is_bool
    if op.name == "tc.mean":
        return source in (DType.BOOL, DType.I32)
    return False


def _reduce_by_reshape(rewriter: PatternRewriter, op: Operation) -> bool:
    value = op.x
    if value.type.dtype != op.result.type.dtype:
        value = rewriter.create(op, tc.CastOp, [value], value.type.with_dtype(op.result.type.dtype))
    if value.type != op.result.type:
        value = rewriter.create(op, tc_shape.ReshapeOp, [value], op.result.type)
    return replace_by(rewriter, op, value)


class ReduceNoAxes(RewritePattern):
    """A reduction over no axes is the identity (a cast where the result dtype differs)."""

    roots = REDUCTIONS

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        if op.axes:
            return False
        return _reduce_by_reshape(rewriter, op)


class ReduceUnitAxes(RewritePattern):
    """A reduction over axes that all have size 1 is a reshape (dropping them unless
    `keepdims`), with a cast where the dtype changes exactly."""

    roots = REDUCTIONS

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        if not op.axes or any(op.x.type.shape[axis] != 1 for axis in op.axes):
            return False
        if not _exact_reduction_cast(op):
            return False
        return _reduce_by_reshape(rewriter, op)


class ArgReduceUnitAxis(RewritePattern):
    """`argmax`/`argmin` along an axis of size 1 (or of a one-element tensor) is 0."""

    roots = ("tc.argmax", "tc.argmin")

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        shape = op.x.type.shape
        axes = range(len(shape)) if op.axis is None else [op.axis]
        if any(shape[axis] != 1 for axis in axes):
            return False
        return replace_by(rewriter, op, make_splat(rewriter, op, 0, op.result.type))


# ----- broadcasts and elementwise ops ---------------------------------------------------------


class SinkBroadcast(RewritePattern):
    """`f(broadcast_to(a), broadcast_to(b)) -> broadcast_to(f(a, b))` for an elementwise `f`
    when a and b have one shape, so that `f` runs on the small shape. Splat constant operands
    are rebuilt at the small shape; one broadcast operand suffices (`f(broadcast_to(a), 2.0)`)."""

    roots: ClassVar[tuple[str, ...]] = ()

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        if Elementwise not in op.traits or not op.name.startswith("tc.") or op.regions:
            return False
        if len(op.results) != 1 or not op.operands:
            return False
        if any(value.type.dtype == DType.BF16 for value in op.operands):
            return False
        small_shape = _common_source_shape(op.operands)
        if small_shape is None or small_shape == op.result.type.shape:
            return False
        operands = [_at_shape(rewriter, op, value, small_shape) for value in op.operands]
        small_type = TensorType(op.result.type.dtype, small_shape)
        small = rewriter.create(op, type(op), operands, small_type, **op.attributes)
        value = rewriter.create(op, tc_shape.BroadcastToOp, [small], op.result.type)
        return replace_by(rewriter, op, value)


def _common_source_shape(operands: tuple[Value, ...]) -> tuple | None:
    """The one shape every non-splat operand is broadcast from (or `()` when all operands are
    splats, at least one a broadcast of a scalar); None when there is no such shape."""
    shapes: set[tuple] = set()
    scalar_broadcasts = 0
    for value in operands:
        broadcast = producer(value, tc_shape.BroadcastToOp)
        if splat_of(value) is not None:
            scalar_broadcasts += broadcast is not None and broadcast.x.type.is_scalar
            continue
        if broadcast is None:
            return None
        shapes.add(broadcast.x.type.shape)
    if not shapes:
        return () if scalar_broadcasts else None
    return shapes.pop() if len(shapes) == 1 else None


def _at_shape(rewriter: PatternRewriter, anchor: Operation, value: Value, shape: tuple) -> Value:
    """`value` (a broadcast from `shape`, or a splat) as a value of `shape`."""
    splat = splat_of(value)
    if splat is None:
        broadcast = producer(value, tc_shape.BroadcastToOp)
        assert broadcast is not None
        return broadcast.x
    return make_splat(rewriter, anchor, splat, TensorType(value.type.dtype, shape))


def shape_patterns() -> list[RewritePattern]:
    return [
        TransposeComposition(),
        ReshapeComposition(),
        BroadcastComposition(),
        ShapeOpOfScalarBroadcast(),
        SmallSplatConstant(),
        SliceWholeTensor(),
        ReduceNoAxes(),
        ReduceUnitAxes(),
        ArgReduceUnitAxis(),
        SinkBroadcast(),
    ]
