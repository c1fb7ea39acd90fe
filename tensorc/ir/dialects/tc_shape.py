"""The `tc` dialect, shape and gather part: broadcast, reshape, transpose, slice, concat,
take, take_along_axis, one_hot and the scatter-adds that are their transposes."""

from __future__ import annotations

from collections.abc import Sequence

from tensorc.ir.core import Operation, Pure, VerifyError, attr_def, operand_def, register_op
from tensorc.ir.dims import DimExpr, as_size, prod
from tensorc.ir.dtypes import DType
from tensorc.ir.typecheck import (
    can_broadcast_to,
    dims_compatible,
    format_shape,
    shapes_compatible,
    slice_extent,
)
from tensorc.ir.types import TensorType

PURE = frozenset({Pure})
BOUND_KINDS = (int, DimExpr, type(None))


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise VerifyError(message)


@register_op
class BroadcastToOp(Operation):
    """NumPy broadcasting of `x` to the result's shape (right-aligned; size-1 dims stretch)."""

    name = "tc.broadcast_to"
    num_operands = 1
    traits = PURE
    x = operand_def(0)

    def verify_(self) -> None:
        source, target = self.x.type, self.result.type
        if source.dtype != target.dtype or not can_broadcast_to(source.shape, target.shape):
            raise VerifyError(f"tc.broadcast_to cannot broadcast {source} to {target}", self)

    def broadcast_axes(self) -> tuple[list[int], list[int]]:
        """(result axes that are new, result axes stretched from size 1)."""
        source, target = self.x.type.shape, self.result.type.shape
        offset = len(target) - len(source)
        new_axes = list(range(offset))
        stretched = [
            offset + i for i, d in enumerate(source) if d == 1 and target[offset + i] != 1
        ]
        return new_axes, stretched


@register_op
class ReshapeOp(Operation):
    """Reinterpret the elements, in row-major order, with the result's shape."""

    name = "tc.reshape"
    num_operands = 1
    traits = PURE
    x = operand_def(0)

    def verify_(self) -> None:
        source, target = self.x.type, self.result.type
        if source.dtype != target.dtype:
            raise VerifyError("tc.reshape changes the dtype", self)
        if not dims_compatible(prod(source.shape), prod(target.shape)):
            raise VerifyError(
                f"tc.reshape from {format_shape(source.shape)} to {format_shape(target.shape)} "
                "changes the number of elements",
                self,
            )


@register_op
class TransposeOp(Operation):
    """Permute the axes: result axis i is operand axis perm[i]."""

    name = "tc.transpose"
    num_operands = 1
    traits = PURE
    x = operand_def(0)
    perm = attr_def(list, items=int)

    @classmethod
    def infer_result_types(cls, operand_types: Sequence[TensorType], attributes: dict) -> list:
        (x,) = operand_types
        perm = attributes["perm"]
        _require(sorted(perm) == list(range(x.rank)), f"tc.transpose: bad permutation {perm}")
        return [x.with_shape([x.shape[p] for p in perm])]


@register_op
class SliceOp(Operation):
    """`x[start:stop:step, ...]` per axis with Python's semantics. Bounds are ints, symbolic
    `DimExpr`s or None; steps are positive ints."""

    name = "tc.slice"
    num_operands = 1
    traits = PURE
    x = operand_def(0)
    starts = attr_def(list, items=BOUND_KINDS)
    stops = attr_def(list, items=BOUND_KINDS)
    steps = attr_def(list, items=int)

    @classmethod
    def infer_result_types(cls, operand_types: Sequence[TensorType], attributes: dict) -> list:
        (x,) = operand_types
        starts, stops, steps = attributes["starts"], attributes["stops"], attributes["steps"]
        _require(
            len(starts) == len(stops) == len(steps) == x.rank,
            f"tc.slice needs one start, stop and step per axis of {x}",
        )
        _require(all(isinstance(s, int) and s > 0 for s in steps), "tc.slice steps must be > 0")
        shape = [
            slice_extent(dim, _bound(start), _bound(stop), step)
            for dim, start, stop, step in zip(x.shape, starts, stops, steps)
        ]
        return [x.with_shape(shape)]


def _bound(value: int | DimExpr | None) -> DimExpr | None:
    return None if value is None else DimExpr.of(value)


@register_op
class ConcatOp(Operation):
    """Join tensors of one dtype along `axis`; other dimensions must agree."""

    name = "tc.concat"
    num_operands = None
    traits = PURE
    axis = attr_def(int)

    @classmethod
    def infer_result_types(cls, operand_types: Sequence[TensorType], attributes: dict) -> list:
        _require(len(operand_types) >= 1, "tc.concat needs at least one operand")
        first = operand_types[0]
        axis = attributes["axis"]
        _require(0 <= axis < first.rank, f"tc.concat axis {axis} is out of range for {first}")
        total = DimExpr.const(0)
        for other in operand_types:
            _require(other.dtype == first.dtype, "tc.concat operands have different dtypes")
            _require(other.rank == first.rank, "tc.concat operands have different ranks")
            for i, (a, b) in enumerate(zip(first.shape, other.shape)):
                _require(
                    i == axis or dims_compatible(a, b),
                    f"tc.concat operands {first} and {other} differ off axis {axis}",
                )
            total = total + as_size(other.shape[axis])
        shape = list(first.shape)
        shape[axis] = total
        return [first.with_shape(shape)]


def _require_index(idx: TensorType, op: str) -> None:
    _require(idx.dtype.is_int, f"{op} indices must be integers, not {idx.dtype}")


@register_op
class TakeOp(Operation):
    """`take(x, idx, axis)`: result shape x[:axis] + idx + x[axis+1:]; indices in [-n, n),
    anything else raises IndexError at run time."""

    name = "tc.take"
    num_operands = 2
    traits = PURE
    x = operand_def(0)
    indices = operand_def(1)
    axis = attr_def(int)

    @classmethod
    def infer_result_types(cls, operand_types: Sequence[TensorType], attributes: dict) -> list:
        x, idx = operand_types
        axis = attributes["axis"]
        _require_index(idx, "tc.take")
        _require(0 <= axis < x.rank, f"tc.take axis {axis} is out of range for {x}")
        return [x.with_shape(x.shape[:axis] + idx.shape + x.shape[axis + 1 :])]


@register_op
class TakeAlongAxisOp(Operation):
    """`take_along_axis(x, idx, axis)`: indices of x's rank; the result has idx's shape."""

    name = "tc.take_along_axis"
    num_operands = 2
    traits = PURE
    x = operand_def(0)
    indices = operand_def(1)
    axis = attr_def(int)

    @classmethod
    def infer_result_types(cls, operand_types: Sequence[TensorType], attributes: dict) -> list:
        x, idx = operand_types
        axis = attributes["axis"]
        _require_index(idx, "tc.take_along_axis")
        _require(idx.rank == x.rank, "tc.take_along_axis indices must have the rank of x")
        _require(0 <= axis < x.rank, f"tc.take_along_axis axis {axis} is out of range")
        for i, (a, b) in enumerate(zip(x.shape, idx.shape)):
            _require(
                i == axis or dims_compatible(a, b),
                f"tc.take_along_axis shapes {format_shape(x.shape)} and "
                f"{format_shape(idx.shape)} differ off axis {axis}",
            )
        return [x.with_shape(idx.shape)]


@register_op
class OneHotOp(Operation):
    """`one_hot(idx, n)`: f32 of shape idx + [n]; an index outside [0, n) gives zeros."""

    name = "tc.one_hot"
    num_operands = 1
    traits = PURE
    indices = operand_def(0)
    n = attr_def((int, DimExpr))

    @classmethod
    def infer_result_types(cls, operand_types: Sequence[TensorType], attributes: dict) -> list:
        (idx,) = operand_types
        _require_index(idx, "tc.one_hot")
        return [TensorType.of(DType.F32, idx.shape + (DimExpr.of(attributes["n"]),))]


@register_op
class ScatterAddOp(Operation):
    """The transpose of `tc.take`: `updates` summed into zeros of `size` along `axis`."""

    name = "tc.scatter_add"
    num_operands = 2
    traits = PURE
    updates = operand_def(0)
    indices = operand_def(1)
    axis = attr_def(int)
    size = attr_def((int, DimExpr))

    @classmethod
    def infer_result_types(cls, operand_types: Sequence[TensorType], attributes: dict) -> list:
        updates, idx = operand_types
        axis = attributes["axis"]
        _require_index(idx, "tc.scatter_add")
        _require(
            0 <= axis and axis + idx.rank <= updates.rank,
            f"tc.scatter_add axis {axis} with indices of rank {idx.rank} is out of range for "
            f"updates {updates}",
        )
        tail = updates.shape[axis + idx.rank :]
        size = DimExpr.of(attributes["size"])
        return [updates.with_shape(updates.shape[:axis] + (size,) + tail)]


@register_op
class ScatterAddAlongAxisOp(Operation):
    """The transpose of `tc.take_along_axis`."""

    name = "tc.scatter_add_along_axis"
    num_operands = 2
    traits = PURE
    updates = operand_def(0)
    indices = operand_def(1)
    axis = attr_def(int)
    size = attr_def((int, DimExpr))

    @classmethod
    def infer_result_types(cls, operand_types: Sequence[TensorType], attributes: dict) -> list:
        updates, idx = operand_types
        _require_index(idx, "tc.scatter_add_along_axis")
        _require(
            shapes_compatible(updates.shape, idx.shape),
            f"tc.scatter_add_along_axis updates {updates} and indices {idx} differ in shape",
        )
        axis = attributes["axis"]
        _require(
            0 <= axis < updates.rank,
            f"tc.scatter_add_along_axis axis {axis} is out of range for {updates}",
        )
        shape = list(updates.shape)
        shape[attributes["axis"]] = DimExpr.of(attributes["size"])
        return [updates.with_shape(shape)]
