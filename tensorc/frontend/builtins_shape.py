"""Handlers of the shape, gather and constructor built-ins (SPEC §1.5).

Shapes are compile-time lists whose entries are integers or dimension names in scope
(`zeros([N, 3])`, `reshape(x, [N, -1])`); a dimension the program needs to agree with another
but that cannot be proven to becomes a call-time check of the function.
"""

from __future__ import annotations

from collections.abc import Sequence

from tensorc.frontend.callsite import CallSite
from tensorc.frontend.emitter import Emitter
from tensorc.frontend.promote import default_dtype, result_dtype
from tensorc.frontend.shapes import describe, resolve_reshape
from tensorc.frontend.values import (
    IntConst,
    ListTerm,
    SemaError,
    Tensor,
    Term,
    is_weak,
)
from tensorc.ir.core import Value
from tensorc.ir.dialects import tc, tc_shape
from tensorc.ir.dims import DimExpr, as_size, element_count
from tensorc.ir.dtypes import DType
from tensorc.ir.location import Location
from tensorc.ir.typecheck import format_shape
from tensorc.ir.types import TensorType

Shape = tuple[DimExpr, ...]


# ----- reshaping ----------------------------------------------------------------------------


def reshape(site: CallSite) -> Term:
    value = site.value("x")
    source = tuple(as_size(dim) for dim in value.type.shape)
    target, count = resolve_reshape(source, site.shape("shape"), site.loc)
    if count is not None:
        site.emitter.defer(
            "eq", count, element_count(source), "ValueError",
            f"reshape(): cannot reshape {format_shape(value.type.shape)} into "
            f"{format_shape(target)}: "
            "the element counts differ",
            site.loc,
        )
    return Tensor(site.emitter.reshape(value, target, site.loc))


def broadcast_checked(
    site: CallSite, value: Value, target: Shape, what: str, loc: Location | None
) -> Value:
    """Broadcast `value` to `target` after checking NumPy's rule dimension by dimension."""
    source = value.type.shape
    mismatch = SemaError(
        f"{what}: cannot broadcast {describe(value.type)} to {format_shape(target)}", loc
    )
    if len(source) > len(target):
        raise mismatch
    offset = len(target) - len(source)
    for dim, want in zip(source, target[offset:]):
        if dim == 1 or dim == want:
            continue
        if not site.emitter.require_equal(dim, want, loc, what, source, target):
            raise mismatch
    return site.emitter.broadcast_to(value, target, loc)


def broadcast_to(site: CallSite) -> Term:
    value = site.value("x")
    return Tensor(broadcast_checked(site, value, site.sizes("shape"), "broadcast_to()", site.loc))


def expand_dims(site: CallSite) -> Term:
    value = site.value("x")
    count = len(site.items("axis")) if _is_list(site, "axis") else 1
    rank = value.type.rank + count
    axes = site.axes("axis", rank, "the result") or []
    dims = iter(value.type.shape)
    shape = tuple(DimExpr.const(1) if axis in axes else next(dims) for axis in range(rank))
    return Tensor(site.emitter.reshape(value, shape, site.loc))


def _is_list(site: CallSite, param: str) -> bool:
    return isinstance(site.term(param), ListTerm)


def squeeze(site: CallSite) -> Term:
    value = site.value("x")
    shape = value.type.shape
    axes = site.axes("axis", value.type.rank, describe(value.type))
    if axes is None:
        axes = [axis for axis, dim in enumerate(shape) if dim == 1]
    for axis in axes:
        if shape[axis] != 1:
            raise SemaError(
                f"squeeze() can only remove axes of size 1, but axis {axis} of {value.type} has "
                f"size {shape[axis]}",
                site.loc_of("axis"),
            )
    kept = tuple(dim for axis, dim in enumerate(shape) if axis not in axes)
    return Tensor(site.emitter.reshape(value, kept, site.loc))


def transpose(site: CallSite) -> Term:
    value = site.value("x")
    rank = value.type.rank
    if not site.given("perm"):
        perm = list(reversed(range(rank)))
    else:
        items = site.items("perm") if _is_list(site, "perm") else (site.item("perm"),)
        perm = []
        for item in items:
            if not isinstance(item.term, IntConst) or item.term.static is None:
                raise SemaError(
                    f"transpose() perm entries must be constant integers, found "
                    f"{item.term.describe()}",
                    item.loc,
                )
            perm.append(item.term.static)
        normalized = [p + rank if p < 0 else p for p in perm]
        if sorted(normalized) != list(range(rank)):
            raise SemaError(
                f"transpose() perm {perm} is not a permutation of the {rank} axes of "
                f"{describe(value.type)}",
                site.loc_of("perm"),
            )
        perm = normalized
    if perm == list(range(rank)):
        return Tensor(value)
    return Tensor(site.emitter.op(tc_shape.TransposeOp, [value], site.loc, perm=perm))


def transpose_value(emitter: Emitter, value: Value, loc: Location | None) -> Value:
    """`x.T`: the axes reversed (the identity for rank <= 1)."""
    rank = value.type.rank
    if rank <= 1:
        return value
    perm = list(reversed(range(rank)))
    return emitter.op(tc_shape.TransposeOp, [value], loc, perm=perm)


# ----- joining ------------------------------------------------------------------------------


def _joined_operands(site: CallSite, what: str) -> list[tuple[Value, Location | None]]:
    """The list of tensors to join, promoted to one dtype, each with where it was written."""
    items = site.items("xs")
    if not items:
        raise SemaError(f"{what} needs at least one tensor", site.loc_of("xs"))
    for item in items:
        if not isinstance(item.term, Tensor) and not is_weak(item.term):
            raise SemaError(f"{what} operands must be tensors, found {item.term.describe()}",
                            item.loc)
    dtype = result_dtype([item.term for item in items])
    return [(site.emitter.materialize(item.term, item.loc, dtype), item.loc) for item in items]


def concat(site: CallSite) -> Term:
    operands = _joined_operands(site, "concat()")
    first = operands[0][0]
    if first.type.rank == 0:
        raise SemaError("concat() operands must have rank >= 1, found a scalar", operands[0][1])
    axis = site.axis("axis", first.type.rank, describe(first.type))
    assert axis is not None
    for value, loc in operands[1:]:
        if value.type.rank != first.type.rank:
            raise SemaError(
                f"concat() operands must have the same rank, found {first.type} and "
                f"{describe(value.type)}",
                loc,
            )
        for index, (a, b) in enumerate(zip(first.type.shape, value.type.shape)):
            if index == axis:
                continue
            if not site.emitter.require_equal(a, b, loc, "concat()", first.type.shape,
                                              value.type.shape):
                raise SemaError(
                    f"concat() operands must agree off axis {axis}, found {first.type} and "
                    f"{value.type}",
                    loc,
                )
    values = [value for value, _ in operands]
    if len(values) == 1:
        return Tensor(values[0])
    return Tensor(site.emitter.op(tc_shape.ConcatOp, values, site.loc, axis=axis))


def stack(site: CallSite) -> Term:
    operands = _joined_operands(site, "stack()")
    first = operands[0][0]
    rank = first.type.rank + 1
    axis = site.axis("axis", rank, "the result")
    assert axis is not None
    expanded: list[Value] = []
    for value, loc in operands:
        same_rank = value.type.rank == first.type.rank
        if not same_rank or not all(
            site.emitter.require_equal(a, b, loc, "stack()", first.type.shape, value.type.shape)
            for a, b in zip(first.type.shape, value.type.shape)
        ):
            raise SemaError(
                f"stack() operands must have the same shape, found {describe(first.type)} and "
                f"{describe(value.type)}",
                loc,
            )
        shape = list(value.type.shape)
        shape.insert(axis, DimExpr.const(1))
        expanded.append(site.emitter.reshape(value, shape, site.loc))
    if len(expanded) == 1:
        return Tensor(expanded[0])
    return Tensor(site.emitter.op(tc_shape.ConcatOp, expanded, site.loc, axis=axis))


# ----- gathers ------------------------------------------------------------------------------


def take(site: CallSite) -> Term:
    value = site.value("x")
    indices = site.integer_tensor("idx", "indices")
    axis = site.axis("axis", value.type.rank, describe(value.type))
    if axis is None:
        value = site.emitter.reshape(value, (element_count(value.type.shape),), site.loc)
        axis = 0
    return Tensor(site.emitter.op(tc_shape.TakeOp, [value, indices], site.loc, axis=axis))


def take_along_axis(site: CallSite) -> Term:
    value = site.value("x")
    indices = site.integer_tensor("idx", "indices")
    axis = site.axis("axis", value.type.rank, describe(value.type))
    assert axis is not None
    if indices.type.rank != value.type.rank:
        raise SemaError(
            f"take_along_axis() indices must have the rank of x ({value.type}), found "
            f"{describe(indices.type)}",
            site.loc_of("idx"),
        )
    for index, (a, b) in enumerate(zip(value.type.shape, indices.type.shape)):
        if index == axis:
            continue
        if not site.emitter.require_equal(a, b, site.loc, "take_along_axis()", value.type.shape,
                                          indices.type.shape):
            raise SemaError(
                f"take_along_axis() indices {format_shape(indices.type.shape)} must match x "
                f"{format_shape(value.type.shape)} on every axis but {axis}",
                site.loc_of("idx"),
            )
    return Tensor(
        site.emitter.op(tc_shape.TakeAlongAxisOp, [value, indices], site.loc, axis=axis)
    )


def one_hot(site: CallSite) -> Term:
    indices = site.integer_tensor("idx", "indices")
    count = site.static_int("n")
    if count < 0:
        raise SemaError(f"one_hot() n must be >= 0, found {count}", site.loc_of("n"))
    return Tensor(site.emitter.op(tc_shape.OneHotOp, [indices], site.loc, n=count))


# ----- constructors -------------------------------------------------------------------------


def _filled(site: CallSite, fill: float | int | bool, dtype: DType, shape: Sequence[DimExpr]):
    constant = site.emitter.constant(fill, dtype, site.loc)
    return Tensor(site.emitter.broadcast_to(constant, tuple(shape), site.loc))


def constant_fill(fill: int):
    """`zeros` / `ones`: a shape and a dtype (default f32)."""

    def handler(site: CallSite) -> Term:
        dtype = site.dtype("dtype") or DType.F32
        return _filled(site, fill, dtype, site.sizes("shape"))

    return handler


def constant_like(fill: int):
    """`zeros_like` / `ones_like`: x's shape and dtype (or the dtype given)."""

    def handler(site: CallSite) -> Term:
        operand = site.operand("x")
        shape = operand.type.shape if isinstance(operand, Tensor) else ()
        dtype = site.dtype("dtype") or (
            operand.type.dtype if isinstance(operand, Tensor) else default_dtype(operand)
        )
        return _filled(site, fill, dtype, shape)

    return handler


def full(site: CallSite) -> Term:
    shape = site.sizes("shape")
    fill = site.operand("value")
    dtype = site.dtype("dtype") or result_dtype([fill])
    value = site.emitter.materialize(fill, site.loc_of("value"), dtype)
    return Tensor(broadcast_checked(site, value, shape, "full()", site.loc_of("value")))


def arange(site: CallSite) -> Term:
    term = site.term("n")
    if not isinstance(term, IntConst):
        raise site.error("n", "an integer or a dimension name")
    if term.static is not None and term.static < 0:
        raise SemaError(f"arange() n must be >= 0, found {term.static}", site.loc_of("n"))
    dtype = site.dtype("dtype") or DType.I32
    if dtype.is_bool:
        raise site.error("dtype", "a numeric dtype")
    result_type = TensorType(dtype, (term.expr,))
    return Tensor(site.emitter.op(tc.IotaOp, [], site.loc, result_type))
