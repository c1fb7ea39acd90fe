"""The `tc` ops that are not kernels, lowered inline in the entry point.

After `decompose` and `fusion` these are what stays between kernels (see `fusion.py`):

    tc.take / tc.take_along_axis      check every index first (the first bad one, in C order,
                                      fails the call with code 1 and the interpreter's
                                      message), then gather; negative indices count from the end
    tc.scatter_add / _along_axis      check, zero the result, then add in C order of the
                                      updates (the order of `np.add.at`)
    tc.argmax / tc.argmin             the first extreme; NaN is the extreme; empty axis -> 0
    tc.concat                         one memcpy per operand row
    tc.reshape                        an alias of its operand, or a memcpy when returned
    tc.constant                       a private global, or a memcpy when returned
    tc.dim_size                       the size expression's value as i32
    tc.matmul (bool)                  or-of-ands loops

`context` is the entry point's `FunctionLowering` (builder, sizes, buffers, failure).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING

import llvmlite.ir as ir

from tensorc.codegen.cpu.irutil import (
    I32,
    I64,
    UnsupportedError,
    counted_loop,
    element_pointer,
    emit_memcpy,
    emit_memset_zero,
    itemsize,
    load_element,
    memory_type,
    register_type,
    store_element,
)
from tensorc.codegen.cpu.scalar import convert
from tensorc.ir.core import Operation
from tensorc.ir.dims import DimExpr
from tensorc.ir.dtypes import DType
from tensorc.ir.types import TensorType

if TYPE_CHECKING:
    from tensorc.codegen.cpu.lower import FunctionLowering

Lowering = Callable[["FunctionLowering", Operation, int], None]
INDEX_MESSAGE = "{op}: index %lld is out of range for axis %lld with size %lld"


@contextmanager
def loop_nest(builder: ir.IRBuilder, extents: Sequence[ir.Value], name: str) -> Iterator[list]:
    """Nested `counted_loop`s over `extents`, outermost first; yields the indices."""
    with ExitStack() as stack:
        yield [
            stack.enter_context(counted_loop(builder, I64(0), extent, f"{name}{level}"))
            for level, extent in enumerate(extents)
        ]


def _linear(builder: ir.IRBuilder, indices: Sequence[ir.Value], strides: Sequence[ir.Value]):
    total: ir.Value = I64(0)
    for index, stride in zip(indices, strides):
        total = builder.add(total, builder.mul(index, stride))
    return total


def _broadcast_strides(context: FunctionLowering, shape: Sequence[DimExpr]) -> list[ir.Value]:
    """Row-major strides, 0 along axes of extent 1 (they broadcast)."""
    sizes = context.sizes
    strides = sizes.strides(shape)
    return [
        sizes.builder.select(
            sizes.builder.icmp_signed("==", sizes.extent(dim), I64(1)), I64(0), stride
        )
        for dim, stride in zip(shape, strides)
    ]


def _index_at(context: FunctionLowering, pointer: ir.Value, offset: ir.Value, dtype: DType):
    builder = context.builder
    value = load_element(builder, element_pointer(builder, pointer, offset, dtype), dtype)
    return convert(builder, value, dtype, DType.I64)


def _check_indices(
    context: FunctionLowering, op: Operation, position: int, indices: TensorType,
    pointer: ir.Value, size: ir.Value, axis: int,
) -> None:
    """Fail the call (code 1) at the first index outside `[-size, size)`, in C order."""
    builder = context.builder
    count = context.sizes.product(indices.shape)
    with counted_loop(builder, I64(0), count, "check") as flat:
        value = _index_at(context, pointer, flat, indices.dtype)
        too_small = builder.icmp_signed("<", value, builder.sub(I64(0), size))
        too_large = builder.icmp_signed(">=", value, size)
        message = INDEX_MESSAGE.format(op=op.name.removeprefix("tc."))
        context.fail_if(builder.or_(too_small, too_large), 1, position, message,
                        [value, I64(axis), size])


def _wrap(builder: ir.IRBuilder, value: ir.Value, size: ir.Value) -> ir.Value:
    negative = builder.icmp_signed("<", value, I64(0))
    return builder.select(negative, builder.add(value, size), value)


def _copy_elements(
    builder: ir.IRBuilder, dest: ir.Value, source: ir.Value, count: ir.Value, dtype: DType
) -> None:
    nbytes = builder.mul(count, I64(itemsize(dtype)))
    emit_memcpy(builder, dest, source, nbytes)


# ----- gathers ------------------------------------------------------------------------------


def lower_take(context: FunctionLowering, op: Operation, position: int) -> None:
    builder, sizes = context.builder, context.sizes
    x, idx, axis = op.x.type, op.indices.type, op.axis
    size = sizes.extent(x.shape[axis])
    x_pointer, idx_pointer = context.pointer(op.x), context.pointer(op.indices)
    _check_indices(context, op, position, idx, idx_pointer, size, axis)
    outer = sizes.product(x.shape[:axis])
    count = sizes.product(idx.shape)
    inner = sizes.product(x.shape[axis + 1 :])
    out = context.pointer(op.result)
    with loop_nest(builder, [outer, count], "take") as (o, j):
        k = _wrap(builder, _index_at(context, idx_pointer, j, idx.dtype), size)
        source = builder.mul(builder.add(builder.mul(o, size), k), inner)
        dest = builder.mul(builder.add(builder.mul(o, count), j), inner)
        _copy_elements(
            builder,
            element_pointer(builder, out, dest, x.dtype),
            element_pointer(builder, x_pointer, source, x.dtype),
            inner,
            x.dtype,
        )


def lower_take_along_axis(context: FunctionLowering, op: Operation, position: int) -> None:
    builder, sizes = context.builder, context.sizes
    x, idx, axis = op.x.type, op.indices.type, op.axis
    size = sizes.extent(x.shape[axis])
    x_pointer, idx_pointer = context.pointer(op.x), context.pointer(op.indices)
    _check_indices(context, op, position, idx, idx_pointer, size, axis)
    x_strides = _broadcast_strides(context, x.shape)
    x_strides[axis] = sizes.strides(x.shape)[axis]
    idx_strides = sizes.strides(idx.shape)
    out = context.pointer(op.result)
    extents = [sizes.extent(d) for d in idx.shape]
    with loop_nest(builder, extents, "gather") as indices:
        flat = _linear(builder, indices, idx_strides)
        k = _wrap(builder, _index_at(context, idx_pointer, flat, idx.dtype), size)
        picked = list(indices)
        picked[axis] = k
        source = _linear(builder, picked, x_strides)
        value = builder.load(
            element_pointer(builder, x_pointer, source, x.dtype), typ=memory_type(x.dtype)
        )
        builder.store(value, element_pointer(builder, out, flat, x.dtype))


# ----- scatters -----------------------------------------------------------------------------


def _accumulate(
    builder: ir.IRBuilder, out: ir.Value, dest: ir.Value, value: ir.Value, dtype: DType
) -> None:
    pointer = element_pointer(builder, out, dest, dtype)
    current = load_element(builder, pointer, dtype)
    if dtype.is_float:
        total = builder.fadd(current, value)
    elif dtype.is_bool:
        total = builder.or_(current, value)
    else:
        total = builder.add(current, value)
    store_element(builder, total, pointer, dtype)


def _start_scatter(
    context: FunctionLowering, op: Operation, position: int
) -> tuple[ir.Value, ir.Value, ir.Value]:
    """(size of the scattered axis, indices pointer, zeroed result pointer) of a scatter-add,
    its indices checked against the size first."""
    size = context.sizes.extent(DimExpr.of(op.size))
    idx_pointer = context.pointer(op.indices)
    _check_indices(context, op, position, op.indices.type, idx_pointer, size, op.axis)
    out = context.pointer(op.result)
    emit_memset_zero(context.builder, out, context.nbytes(op.result.type))
    return size, idx_pointer, out


def lower_scatter_add(context: FunctionLowering, op: Operation, position: int) -> None:
    builder, sizes = context.builder, context.sizes
    updates, idx, result, axis = op.updates.type, op.indices.type, op.result.type, op.axis
    size, idx_pointer, out = _start_scatter(context, op, position)
    outer = sizes.product(updates.shape[:axis])
    count = sizes.product(idx.shape)
    inner = sizes.product(updates.shape[axis + idx.rank :])
    source_pointer = context.pointer(op.updates)
    dtype = result.dtype
    with loop_nest(builder, [outer, count, inner], "scatter") as (o, j, i):
        k = _wrap(builder, _index_at(context, idx_pointer, j, idx.dtype), size)
        source = builder.add(builder.mul(builder.add(builder.mul(o, count), j), inner), i)
        dest = builder.add(builder.mul(builder.add(builder.mul(o, size), k), inner), i)
        value = load_element(builder, element_pointer(builder, source_pointer, source, dtype),
                             dtype)
        _accumulate(builder, out, dest, value, dtype)


def lower_scatter_add_along_axis(context: FunctionLowering, op: Operation, position: int) -> None:
    builder, sizes = context.builder, context.sizes
    updates, idx, result, axis = op.updates.type, op.indices.type, op.result.type, op.axis
    size, idx_pointer, out = _start_scatter(context, op, position)
    idx_strides = _broadcast_strides(context, idx.shape)
    out_strides = _broadcast_strides(context, result.shape)
    out_strides[axis] = sizes.strides(result.shape)[axis]
    update_strides = sizes.strides(updates.shape)
    source_pointer = context.pointer(op.updates)
    dtype = result.dtype
    extents = [sizes.extent(d) for d in updates.shape]
    with loop_nest(builder, extents, "scatter") as indices:
        k = _wrap(
            builder,
            _index_at(context, idx_pointer, _linear(builder, indices, idx_strides), idx.dtype),
            size,
        )
        placed = list(indices)
        placed[axis] = k
        source = _linear(builder, indices, update_strides)
        value = load_element(builder, element_pointer(builder, source_pointer, source, dtype),
                             dtype)
        _accumulate(builder, out, _linear(builder, placed, out_strides), value, dtype)


# ----- argmax / argmin ----------------------------------------------------------------------


def lower_arg_extreme(context: FunctionLowering, op: Operation, position: int) -> None:
    builder, sizes = context.builder, context.sizes
    x = op.x.type
    dtype = x.dtype
    if op.axis is None:
        outer, size, inner = I64(1), sizes.product(x.shape), I64(1)
    else:
        outer = sizes.product(x.shape[: op.axis])
        size = sizes.extent(x.shape[op.axis])
        inner = sizes.product(x.shape[op.axis + 1 :])
    find_max = op.name == "tc.argmax"
    x_pointer, out = context.pointer(op.x), context.pointer(op.result)
    best_slot = context.alloca(register_type(dtype), "best")
    index_slot = context.alloca(I64, "best_index")
    with loop_nest(builder, [outer, inner], "arg") as (o, i):
        builder.store(I64(0), index_slot)
        row = builder.mul(o, size)
        with counted_loop(builder, I64(0), size, "scan") as k:
            offset = builder.add(builder.mul(builder.add(row, k), inner), i)
            value = load_element(builder, element_pointer(builder, x_pointer, offset, dtype),
                                 dtype)
            best = builder.load(best_slot, typ=register_type(dtype))
            better = _better(builder, value, best, dtype, find_max)
            better = builder.or_(better, builder.icmp_signed("==", k, I64(0)))
            builder.store(builder.select(better, value, best), best_slot)
            index = builder.load(index_slot, typ=I64)
            builder.store(builder.select(better, k, index), index_slot)
        result = builder.trunc(builder.load(index_slot, typ=I64), I32)
        dest = builder.add(builder.mul(o, inner), i)
        builder.store(result, element_pointer(builder, out, dest, DType.I32))


def _better(builder: ir.IRBuilder, value, best, dtype: DType, find_max: bool) -> ir.Value:
    """Whether `value` replaces `best` (strictly more extreme, or the first NaN)."""
    predicate = ">" if find_max else "<"
    if dtype.is_float:
        strictly = builder.fcmp_ordered(predicate, value, best)
        first_nan = builder.and_(
            builder.fcmp_unordered("uno", value, value), builder.fcmp_ordered("ord", best, best)
        )
        return builder.or_(strictly, first_nan)
    if dtype.is_bool:
        return builder.icmp_unsigned(predicate, value, best)
    return builder.icmp_signed(predicate, value, best)


# ----- copies -------------------------------------------------------------------------------


def lower_concat(context: FunctionLowering, op: Operation, position: int) -> None:
    builder, sizes = context.builder, context.sizes
    result, axis = op.result.type, op.axis
    outer = sizes.product(result.shape[:axis])
    inner = sizes.product(result.shape[axis + 1 :])
    rows = [sizes.builder.mul(sizes.extent(v.type.shape[axis]), inner) for v in op.operands]
    out_row: ir.Value = I64(0)
    for row in rows:
        out_row = sizes.builder.add(out_row, row)
    out = context.pointer(op.result)
    with counted_loop(builder, I64(0), outer, "concat") as o:
        offset: ir.Value = I64(0)
        for value, row in zip(op.operands, rows):
            dest = builder.add(builder.mul(o, out_row), offset)
            source = builder.mul(o, row)
            _copy_elements(
                builder,
                element_pointer(builder, out, dest, result.dtype),
                element_pointer(builder, context.pointer(value), source, result.dtype),
                row,
                result.dtype,
            )
            offset = builder.add(offset, row)


def lower_reshape(context: FunctionLowering, op: Operation, position: int) -> None:
    """An alias unless its value is returned: then a copy into the result buffer."""
    if context.is_alias(op.result):
        return
    emit_memcpy(context.builder, context.pointer(op.result), context.pointer(op.x),
                context.nbytes(op.result.type))


def lower_constant(context: FunctionLowering, op: Operation, position: int) -> None:
    context.define_constant(op)


def lower_dim_size(context: FunctionLowering, op: Operation, position: int) -> None:
    value = convert(context.builder, context.sizes.value(op.value), DType.I64,
                    op.result.type.dtype)
    store_element(context.builder, value, context.pointer(op.result), op.result.type.dtype)


def lower_bool_matmul(context: FunctionLowering, op: Operation, position: int) -> None:
    """`out[b, m, n] = any_k(lhs[b, m, k] and rhs[b, k, n])` (NumPy's bool matmul)."""
    builder, sizes = context.builder, context.sizes
    lhs, rhs, result = op.lhs.type, op.rhs.type, op.result.type
    if not lhs.dtype.is_bool:
        raise UnsupportedError(f"tc.matmul on {lhs.dtype} should have become a kernel")
    batch = sizes.product(result.shape[:-2])
    m, k, n = (sizes.extent(d) for d in (lhs.shape[-2], lhs.shape[-1], rhs.shape[-1]))
    lhs_pointer, rhs_pointer = context.pointer(op.lhs), context.pointer(op.rhs)
    out = context.pointer(op.result)
    found = context.alloca(ir.IntType(1), "found")
    with loop_nest(builder, [batch, m, n], "bmm") as (b, i, j):
        builder.store(ir.Constant(ir.IntType(1), 0), found)
        with counted_loop(builder, I64(0), k, "bmm_k") as p:
            left = builder.add(builder.mul(builder.add(builder.mul(b, m), i), k), p)
            right = builder.add(builder.mul(builder.add(builder.mul(b, k), p), n), j)
            both = builder.and_(
                load_element(builder, element_pointer(builder, lhs_pointer, left, DType.BOOL),
                             DType.BOOL),
                load_element(builder, element_pointer(builder, rhs_pointer, right, DType.BOOL),
                             DType.BOOL),
            )
            builder.store(builder.or_(builder.load(found, typ=ir.IntType(1)), both), found)
        dest = builder.add(builder.mul(builder.add(builder.mul(b, m), i), n), j)
        store_element(builder, builder.load(found, typ=ir.IntType(1)),
                      element_pointer(builder, out, dest, DType.BOOL), DType.BOOL)


LOWERINGS: dict[str, Lowering] = {
    "tc.take": lower_take,
    "tc.take_along_axis": lower_take_along_axis,
    "tc.scatter_add": lower_scatter_add,
    "tc.scatter_add_along_axis": lower_scatter_add_along_axis,
    "tc.argmax": lower_arg_extreme,
    "tc.argmin": lower_arg_extreme,
    "tc.concat": lower_concat,
    "tc.reshape": lower_reshape,
    "tc.constant": lower_constant,
    "tc.dim_size": lower_dim_size,
    "tc.matmul": lower_bool_matmul,
}
