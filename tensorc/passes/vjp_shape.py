"""VJP rules of the `tc` shape and gather ops.

Each is the transpose of a linear map:
- `broadcast_to` sums over the axes it added or stretched;
- `reshape` and `transpose` are undone;
- `slice` pads its cotangent back with zeros. `tc` has no pad op, so each sliced axis is
  padded separately. On a static axis with step 1 that is a `tc.concat` of a zero block before
  (`begin` long) and one after (`size - begin - length` long), which fusion turns into one
  loop nest. Otherwise (a step s > 1, or a symbolic axis) it is a `tc.scatter_add` along the
  axis at the positions `begin + s*iota(length)`, which puts element k of the cotangent where
  it was read from. `begin` is the resolved start of the slice's own type inference. On a
  symbolic axis the zero blocks of the concat form would have sizes (`begin`, `size - begin -
  length`) that are wrong where the slice turns out empty at run time (`x[3:N]` with N < 3,
  `x[1:]` with N == 0), while the scatter's result is `size` long whatever the sizes are and
  an empty slice scatters nothing.
- `concat` slices its cotangent at the operands' offsets;
- `take`/`take_along_axis` scatter-add (repeated indices accumulate) and the scatter-adds
  gather. Indices receive no gradient.
"""

from __future__ import annotations

from collections.abc import Callable

from tensorc.ir.core import Operation, Value
from tensorc.ir.dialects import tc
from tensorc.ir.dialects import tc_shape as shape_ops
from tensorc.ir.dims import DimExpr
from tensorc.ir.dtypes import DType
from tensorc.ir.typecheck import normalize_slice_bound
from tensorc.ir.types import TensorType
from tensorc.passes.vjp_builder import GradBuilder

Cotangents = list[Value | None]
ShapeRule = Callable[[GradBuilder, Operation, Value], Cotangents]


def _attr_dim(dim: DimExpr) -> int | DimExpr:
    """A size as an attribute: a plain int when it is static."""
    return dim.value if dim.value is not None else dim


def broadcast_to_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    new_axes, stretched = op.broadcast_axes()
    if not stretched:
        return [b.sum(g, new_axes)]
    if not new_axes:
        return [b.sum(g, stretched, keepdims=True)]
    return [b.reshape(b.sum(g, new_axes + stretched), op.x.type.shape)]


def reshape_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    return [b.reshape(g, op.x.type.shape)]


def transpose_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    inverse = [0] * len(op.perm)
    for position, axis in enumerate(op.perm):
        inverse[axis] = position
    return [b.transpose(g, inverse)]


def slice_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    source, sliced = op.x.type, op.result.type
    padded = g
    axes = zip(source.shape, sliced.shape, op.starts, op.steps)
    for axis, (size, length, start, step) in enumerate(axes):
        begin = normalize_slice_bound(size, _as_dim(start), DimExpr.const(0), is_stop=False)
        if begin == 0 and length == size:
            continue
        if step == 1 and size.value is not None:
            padded = _pad_axis(b, padded, axis, begin, size)
        else:
            padded = _scatter_strided(b, padded, axis, begin, step, size)
    return [padded]


def _as_dim(bound: int | DimExpr | None) -> DimExpr | None:
    return None if bound is None else DimExpr.of(bound)


def _pad_axis(b: GradBuilder, x: Value, axis: int, begin: DimExpr, size: DimExpr) -> Value:
    """`x` with `begin` zeros before and enough after along `axis` to make it `size` long."""
    after = size - begin - x.type.shape[axis]
    pieces = [
        _zero_block(b, x.type, axis, begin),
        x,
        _zero_block(b, x.type, axis, after),
    ]
    present = [piece for piece in pieces if piece is not None]
    return b.value(shape_ops.ConcatOp, present, axis=axis)


def _zero_block(b: GradBuilder, like: TensorType, axis: int, length: DimExpr) -> Value | None:
    if length == 0:
        return None
    shape = list(like.shape)
    shape[axis] = length
    return b.zeros(like.with_shape(shape))


def _scatter_strided(
    b: GradBuilder, x: Value, axis: int, begin: DimExpr, step: int, size: DimExpr
) -> Value:
    """`x` placed at positions `begin + step*k` of a zero tensor `size` long along `axis`."""
    length = x.type.shape[axis]
    counter = b.value(tc.IotaOp, [], TensorType.of(DType.I32, [length]))
    strided = b.mul(counter, b.splat(step, counter.type))
    positions = b.add(strided, b.broadcast_to(b.index(begin), counter.type.shape))
    return b.value(shape_ops.ScatterAddOp, [x, positions], axis=axis, size=_attr_dim(size))


def concat_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    axis, rank = op.axis, op.result.type.rank
    offset = DimExpr.const(0)
    cotangents: Cotangents = []
    for index, operand in enumerate(op.operands):
        end = offset + operand.type.shape[axis]
        starts: list[int | DimExpr | None] = [None] * rank
        stops: list[int | DimExpr | None] = [None] * rank
        starts[axis] = None if offset == 0 else _attr_dim(offset)
        stops[axis] = None if index == len(op.operands) - 1 else _attr_dim(end)
        piece = b.value(shape_ops.SliceOp, [g], starts=starts, stops=stops, steps=[1] * rank)
        cotangents.append(b.coerce(piece, operand.type))
        offset = end
    return cotangents


def take_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    size = _attr_dim(op.x.type.shape[op.axis])
    scattered = b.value(shape_ops.ScatterAddOp, [g, op.indices], axis=op.axis, size=size)
    return [scattered, None]


def take_along_axis_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    size = _attr_dim(op.x.type.shape[op.axis])
    scattered = b.value(shape_ops.ScatterAddAlongAxisOp, [g, op.indices], axis=op.axis, size=size)
    return [scattered, None]


def scatter_add_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    return [b.value(shape_ops.TakeOp, [g, op.indices], axis=op.axis), None]


def scatter_add_along_axis_vjp(b: GradBuilder, op: Operation, g: Value) -> Cotangents:
    return [b.value(shape_ops.TakeAlongAxisOp, [g, op.indices], axis=op.axis), None]


SHAPE_VJPS: dict[str, ShapeRule] = {
    "tc.broadcast_to": broadcast_to_vjp,
    "tc.reshape": reshape_vjp,
    "tc.transpose": transpose_vjp,
    "tc.slice": slice_vjp,
    "tc.concat": concat_vjp,
    "tc.take": take_vjp,
    "tc.take_along_axis": take_along_axis_vjp,
    "tc.scatter_add": scatter_add_vjp,
    "tc.scatter_add_along_axis": scatter_add_along_axis_vjp,
}
