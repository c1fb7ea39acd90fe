"""The `tc` ops that fusion leaves between kernels, as simple grid-stride kernels.

    tc.take / tc.take_along_axis        a thread per result element (a gather); a bad index
                                        stores 0 and records itself
    tc.scatter_add / _along_axis        after a memset step: a thread per result column adds
                                        the updates in their C order (np.add.at's order, no
                                        atomics, deterministic)
    tc.argmax / tc.argmin               a thread per result element scanning its axis (the
                                        first extreme; NaN is the extreme; an empty axis -> 0)
    tc.concat                           a thread per result element, copying from its operand
    tc.dim_size                         one thread stores the value
    tc.matmul (bool)                    a thread per result element, or-of-ands over k
    (tc.reshape and tc.constant need no kernel: an alias, a constant buffer, or a copy step)

Index checks. The ops with indices check every one: a thread per index element (the grid
covers max(work, index count) threads) tests `-size <= i < size` and, when it fails, records
its flat C-order position with `atomicrmw umin` in the call's error word for this op
(initialised to all ones by the runtime). The runtime reads the words after the stream
syncs; the first op with a position < 2^64-1 raises `IndexError` with the interpreter's
message, reading the bad index at that position (the plan keeps index buffers alive until
the call ends). Gathers never read out of bounds: a bad index stores 0 instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import llvmlite.ir as ir

from tensorc.codegen.cpu.irutil import (
    I32,
    UnsupportedError,
    element_pointer,
    memory_type,
    register_type,
)
from tensorc.codegen.cpu.scalar import convert
from tensorc.codegen.cuda.kernel import (
    BLOCK_THREADS,
    KernelSkeleton,
    LaunchShape,
    blocks_expr,
    count_expr,
    load_at,
    store_at,
    strided_loop,
)
from tensorc.codegen.cuda.target import I1, I64, WARP_SIZE, GpuTarget
from tensorc.ir.core import Operation, Value
from tensorc.ir.dims import DimExpr, dim_max
from tensorc.ir.dtypes import DType

INDEX_MESSAGE = "{op}: index {index} is out of range for axis {axis} with size {size}"


@dataclass(frozen=True)
class IndexCheck:
    """What the runtime needs to report a bad index of one op."""

    op: str  # "take", "take_along_axis", ...
    indices: Value
    axis: int
    size: DimExpr


@dataclass
class TcKernel:
    """A kernel for one `tc` op: its buffers (operands, then results), launch shape, check."""

    buffers: list[Value]
    shape: LaunchShape
    check: IndexCheck | None = None
    zero_results: bool = False  # the runtime fills the results with zero bytes first


class _Emitter:
    """A kernel skeleton plus the helpers every `tc` kernel uses."""

    def __init__(
        self, module: ir.Module, target: GpuTarget, name: str, buffers: Sequence[Value],
        symbols: Sequence[str], error: bool = False, max_threads: int = BLOCK_THREADS,
    ) -> None:
        self.kernel = KernelSkeleton(module, target, name, len(buffers), symbols, error,
                                     max_threads)
        self.builder = self.kernel.builder
        self.prologue = self.kernel.prologue
        self.sizes = self.kernel.sizes
        self.pointers = dict(zip((id(v) for v in buffers), self.kernel.buffers))

    def pointer(self, value: Value) -> ir.Value:
        return self.pointers[id(value)]

    def extent(self, dim: DimExpr | int) -> ir.Value:
        return self.sizes.extent(dim)

    def product(self, dims: Sequence[DimExpr | int]) -> ir.Value:
        return self.sizes.product(dims)

    def divisor(self, value: ir.Value) -> ir.Value:
        """`value`, or 1 where it is 0 (a divisor used only when some count is non-zero)."""
        if isinstance(value, ir.Constant):
            return value if value.constant else I64(1)
        p = self.prologue
        return p.select(p.icmp_unsigned("==", value, I64(0)), I64(1), value)

    def strides(self, shape: Sequence[DimExpr], broadcast: bool = False) -> list[ir.Value]:
        """Row-major strides (0 along axes of extent 1 when `broadcast`)."""
        strides = self.sizes.strides(shape)
        if not broadcast:
            return strides
        p = self.prologue
        return [
            p.select(p.icmp_signed("==", self.extent(dim), I64(1)), I64(0), stride)
            for dim, stride in zip(shape, strides)
        ]

    def split(self, flat: ir.Value, extents: Sequence[ir.Value]) -> list[ir.Value]:
        """Row-major coordinates of `flat` in a shape of `extents`."""
        b = self.builder
        coordinates: list[ir.Value] = []
        rest = flat
        for extent in reversed(extents[1:]):
            divisor = self.divisor(extent)
            coordinates.append(b.urem(rest, divisor))
            rest = b.udiv(rest, divisor)
        coordinates.append(rest)
        return list(reversed(coordinates)) if extents else []

    def linear(self, coordinates: Sequence[ir.Value], strides: Sequence[ir.Value]) -> ir.Value:
        b = self.builder
        total: ir.Value = I64(0)
        for coordinate, stride in zip(coordinates, strides):
            total = b.add(total, b.mul(coordinate, stride))
        return total

    def index_at(self, pointer: ir.Value, offset: ir.Value, dtype: DType) -> ir.Value:
        return convert(self.builder, load_at(self.builder, pointer, offset, dtype), dtype,
                       DType.I64)

    def is_bad(self, index: ir.Value, size: ir.Value) -> ir.Value:
        b = self.builder
        return b.or_(b.icmp_signed("<", index, b.sub(I64(0), size)),
                     b.icmp_signed(">=", index, size))

    def wrap(self, index: ir.Value, size: ir.Value) -> ir.Value:
        b = self.builder
        return b.select(b.icmp_signed("<", index, I64(0)), b.add(index, size), index)

    def check_indices(self, flat: ir.Value, indices: Value, size: ir.Value) -> None:
        """Record `flat` when it is a position of `indices` holding a bad index."""
        b = self.builder
        count = self.product(indices.type.shape)
        with b.if_then(b.icmp_signed("<", flat, count)):
            value = self.index_at(self.pointer(indices), flat, indices.type.dtype)
            with b.if_then(self.is_bad(value, size)):
                assert self.kernel.error is not None
                b.atomic_rmw("umin", self.kernel.error, flat, "monotonic")

    def loop(self, work: ir.Value, name: str = "t"):
        return strided_loop(self.builder, self.kernel.global_thread(), work,
                            self.kernel.thread_count(), name)

    def maximum(self, a: ir.Value, b: ir.Value) -> ir.Value:
        p = self.prologue
        return p.select(p.icmp_signed(">", a, b), a, b)

    def finish(self) -> None:
        self.kernel.finish()


def _grid(work: DimExpr) -> LaunchShape:
    return LaunchShape(blocks_expr(work, BLOCK_THREADS), DimExpr.const(BLOCK_THREADS))


def _count(shape: Sequence[DimExpr]) -> DimExpr:
    return count_expr(shape)


# ----- gathers ------------------------------------------------------------------------------


def emit_take(module: ir.Module, target: GpuTarget, name: str, op: Operation,
              symbols: Sequence[str]) -> TcKernel:
    x, idx, axis = op.x.type, op.indices.type, op.axis
    buffers = [op.x, op.indices, op.result]
    e = _Emitter(module, target, name, buffers, symbols, error=True)
    b = e.builder
    size = e.extent(x.shape[axis])
    count, inner = e.product(idx.shape), e.product(x.shape[axis + 1:])
    total = e.product(op.result.type.shape)
    with e.loop(e.maximum(total, count)) as t:
        e.check_indices(t, op.indices, size)
        with b.if_then(b.icmp_signed("<", t, total)):
            i = b.urem(t, e.divisor(inner))
            rest = b.udiv(t, e.divisor(inner))
            j = b.urem(rest, e.divisor(count))
            o = b.udiv(rest, e.divisor(count))
            k = e.index_at(e.pointer(op.indices), j, idx.dtype)
            _gather(e, op, e.is_bad(k, size),
                    lambda k=k: b.add(b.mul(b.add(b.mul(o, size), e.wrap(k, size)), inner), i),
                    t)
    e.finish()
    work = dim_max(_count(op.result.type.shape), _count(idx.shape))
    check = IndexCheck("take", op.indices, axis, DimExpr.of(x.shape[axis]))
    return TcKernel(buffers, _grid(work), check)


def _gather(e: _Emitter, op: Operation, bad: ir.Value, source, destination: ir.Value) -> None:
    """out[destination] = bad ? 0 : x[source()]."""
    b = e.builder
    dtype = op.x.type.dtype
    stored = memory_type(dtype)
    with b.if_else(bad) as (then, otherwise):
        with then:
            b.store(ir.Constant(stored, 0 if not dtype.is_float else 0.0),
                    element_pointer(b, e.pointer(op.result), destination, dtype))
        with otherwise:
            value = b.load(element_pointer(b, e.pointer(op.x), source(), dtype), typ=stored)
            b.store(value, element_pointer(b, e.pointer(op.result), destination, dtype))


def emit_take_along_axis(module: ir.Module, target: GpuTarget, name: str, op: Operation,
                         symbols: Sequence[str]) -> TcKernel:
    x, idx, axis = op.x.type, op.indices.type, op.axis
    buffers = [op.x, op.indices, op.result]
    e = _Emitter(module, target, name, buffers, symbols, error=True)
    size = e.extent(x.shape[axis])
    x_strides = e.strides(x.shape, broadcast=True)
    x_strides[axis] = e.sizes.strides(x.shape)[axis]
    extents = [e.extent(d) for d in idx.shape]
    total = e.product(idx.shape)
    with e.loop(total) as t:
        e.check_indices(t, op.indices, size)
        k = e.index_at(e.pointer(op.indices), t, idx.dtype)

        def source(k: ir.Value = k, t: ir.Value = t) -> ir.Value:
            coordinates = e.split(t, extents)
            coordinates[axis] = e.wrap(k, size)
            return e.linear(coordinates, x_strides)

        _gather(e, op, e.is_bad(k, size), source, t)
    e.finish()
    check = IndexCheck("take_along_axis", op.indices, axis, DimExpr.of(x.shape[axis]))
    return TcKernel(buffers, _grid(_count(idx.shape)), check)


# ----- scatters -----------------------------------------------------------------------------


def _add_into(e: _Emitter, out: ir.Value, offset: ir.Value, value: ir.Value,
              dtype: DType) -> None:
    b = e.builder
    current = load_at(b, out, offset, dtype)
    if dtype.is_float:
        total = b.fadd(current, value)
    elif dtype.is_bool:
        total = b.or_(current, value)
    else:
        total = b.add(current, value)
    store_at(b, total, out, offset, dtype)


def emit_scatter_add(module: ir.Module, target: GpuTarget, name: str, op: Operation,
                     symbols: Sequence[str]) -> TcKernel:
    updates, idx, result, axis = op.updates.type, op.indices.type, op.result.type, op.axis
    buffers = [op.updates, op.indices, op.result]
    e = _Emitter(module, target, name, buffers, symbols, error=True)
    b = e.builder
    size = e.extent(DimExpr.of(op.size))
    outer, count = e.product(updates.shape[:axis]), e.product(idx.shape)
    inner = e.product(updates.shape[axis + idx.rank:])
    columns = e.prologue.mul(outer, inner)
    dtype = result.dtype
    with e.loop(e.maximum(columns, count)) as t:
        e.check_indices(t, op.indices, size)
        with b.if_then(b.icmp_signed("<", t, columns)):
            o = b.udiv(t, e.divisor(inner))
            i = b.urem(t, e.divisor(inner))
            with strided_loop(b, I64(0), count, I64(1), "j") as j:
                k = e.index_at(e.pointer(op.indices), j, idx.dtype)
                with b.if_then(b.not_(e.is_bad(k, size))):
                    source = b.add(b.mul(b.add(b.mul(o, count), j), inner), i)
                    value = load_at(b, e.pointer(op.updates), source, dtype)
                    dest = b.add(b.mul(b.add(b.mul(o, size), e.wrap(k, size)), inner), i)
                    _add_into(e, e.pointer(op.result), dest, value, dtype)
    e.finish()
    columns_expr = _count(updates.shape[:axis]) * _count(updates.shape[axis + idx.rank:])
    check = IndexCheck("scatter_add", op.indices, axis, DimExpr.of(op.size))
    work = dim_max(columns_expr, _count(idx.shape))
    return TcKernel(buffers, _grid(work), check, zero_results=True)


def emit_scatter_add_along_axis(module: ir.Module, target: GpuTarget, name: str,
                                op: Operation, symbols: Sequence[str]) -> TcKernel:
    updates, idx, result, axis = op.updates.type, op.indices.type, op.result.type, op.axis
    buffers = [op.updates, op.indices, op.result]
    e = _Emitter(module, target, name, buffers, symbols, error=True)
    b = e.builder
    size = e.extent(DimExpr.of(op.size))
    idx_strides = e.strides(idx.shape, broadcast=True)
    out_strides = e.strides(result.shape, broadcast=True)
    out_strides[axis] = e.sizes.strides(result.shape)[axis]
    update_strides = e.sizes.strides(updates.shape)
    kept = [d for d in range(updates.rank) if d != axis]
    kept_extents = [e.extent(updates.shape[d]) for d in kept]
    columns = e.product([updates.shape[d] for d in kept])
    length = e.extent(updates.shape[axis])
    dtype = result.dtype
    with e.loop(e.maximum(columns, e.product(idx.shape))) as t:
        e.check_indices(t, op.indices, size)
        with b.if_then(b.icmp_signed("<", t, columns)):
            coordinates = dict(zip(kept, e.split(t, kept_extents)))
            with strided_loop(b, I64(0), length, I64(1), "j") as j:
                position = [coordinates.get(d, j) for d in range(updates.rank)]
                k = e.index_at(e.pointer(op.indices), e.linear(position, idx_strides), idx.dtype)
                with b.if_then(b.not_(e.is_bad(k, size))):
                    value = load_at(b, e.pointer(op.updates), e.linear(position, update_strides),
                                    dtype)
                    placed = list(position)
                    placed[axis] = e.wrap(k, size)
                    _add_into(e, e.pointer(op.result), e.linear(placed, out_strides), value,
                              dtype)
    e.finish()
    kept_expr = _count([updates.shape[d] for d in kept])
    check = IndexCheck("scatter_add_along_axis", op.indices, axis, DimExpr.of(op.size))
    return TcKernel(buffers, _grid(dim_max(kept_expr, _count(idx.shape))), check,
                    zero_results=True)


# ----- argmax / argmin ----------------------------------------------------------------------


def emit_arg_extreme(module: ir.Module, target: GpuTarget, name: str, op: Operation,
                     symbols: Sequence[str]) -> TcKernel:
    x = op.x.type
    dtype = x.dtype
    buffers = [op.x, op.result]
    e = _Emitter(module, target, name, buffers, symbols)
    b = e.builder
    if op.axis is None:
        outer, size, inner = I64(1), e.product(x.shape), I64(1)
        outer_expr, inner_expr = DimExpr.const(1), DimExpr.const(1)
    else:
        outer, size = e.product(x.shape[: op.axis]), e.extent(x.shape[op.axis])
        inner = e.product(x.shape[op.axis + 1:])
        outer_expr, inner_expr = _count(x.shape[: op.axis]), _count(x.shape[op.axis + 1:])
    find_max = op.name == "tc.argmax"
    best_slot = e.prologue.alloca(register_type(dtype), name="best")
    index_slot = e.prologue.alloca(I64, name="best_index")
    with e.loop(e.prologue.mul(outer, inner)) as t:
        o = b.udiv(t, e.divisor(inner))
        i = b.urem(t, e.divisor(inner))
        b.store(I64(0), index_slot)
        row = b.mul(o, size)
        with strided_loop(b, I64(0), size, I64(1), "k") as k:
            value = load_at(b, e.pointer(op.x), b.add(b.mul(b.add(row, k), inner), i), dtype)
            best = b.load(best_slot, typ=register_type(dtype))
            better = b.or_(_better(b, value, best, dtype, find_max),
                           b.icmp_signed("==", k, I64(0)))
            b.store(b.select(better, value, best), best_slot)
            b.store(b.select(better, k, b.load(index_slot, typ=I64)), index_slot)
        result = b.trunc(b.load(index_slot, typ=I64), I32)
        store_at(b, result, e.pointer(op.result), t, DType.I32)
    e.finish()
    return TcKernel(buffers, _grid(outer_expr * inner_expr))


def _better(b: ir.IRBuilder, value: ir.Value, best: ir.Value, dtype: DType,
            find_max: bool) -> ir.Value:
    """Whether `value` replaces `best` (strictly more extreme, or the first NaN)."""
    predicate = ">" if find_max else "<"
    if dtype.is_float:
        strictly = b.fcmp_ordered(predicate, value, best)
        first_nan = b.and_(b.fcmp_unordered("uno", value, value), b.fcmp_ordered("ord", best, best))
        return b.or_(strictly, first_nan)
    if dtype.is_bool:
        return b.icmp_unsigned(predicate, value, best)
    return b.icmp_signed(predicate, value, best)


# ----- copies and sizes ---------------------------------------------------------------------


def emit_concat(module: ir.Module, target: GpuTarget, name: str, op: Operation,
                symbols: Sequence[str]) -> TcKernel:
    result, axis = op.result.type, op.axis
    buffers = [*op.operands, op.result]
    e = _Emitter(module, target, name, buffers, symbols)
    b, p = e.builder, e.prologue
    kernel_pointers = e.kernel.buffers
    inner = e.product(result.shape[axis + 1:])
    rows = [p.mul(e.extent(v.type.shape[axis]), inner) for v in op.operands]
    starts: list[ir.Value] = []
    out_row: ir.Value = I64(0)
    for row in rows:
        starts.append(out_row)
        out_row = p.add(out_row, row)
    total = e.product(result.shape)
    stored = memory_type(result.dtype)
    out = kernel_pointers[-1]
    with e.loop(total) as t:
        o = b.udiv(t, e.divisor(out_row))
        c = b.urem(t, e.divisor(out_row))
        for pointer, row, start in zip(kernel_pointers[:-1], rows, starts):
            column = b.sub(c, start)
            inside = b.and_(b.icmp_signed(">=", column, I64(0)),
                            b.icmp_signed("<", column, row))
            with b.if_then(inside):
                source = b.add(b.mul(o, row), column)
                value = b.load(element_pointer(b, pointer, source, result.dtype), typ=stored)
                b.store(value, element_pointer(b, out, t, result.dtype))
    e.finish()
    return TcKernel(buffers, _grid(_count(result.shape)))


def emit_dim_size(module: ir.Module, target: GpuTarget, name: str, op: Operation,
                  symbols: Sequence[str]) -> TcKernel:
    buffers = [op.result]
    e = _Emitter(module, target, name, buffers, symbols, max_threads=WARP_SIZE)
    b = e.builder
    dtype = op.result.type.dtype
    with b.if_then(b.icmp_unsigned("==", e.kernel.global_thread(), I64(0))):
        value = convert(b, e.sizes.value(op.value), DType.I64, dtype)
        store_at(b, value, e.pointer(op.result), I64(0), dtype)
    e.finish()
    return TcKernel(buffers, LaunchShape(DimExpr.const(1), DimExpr.const(WARP_SIZE)))


def emit_bool_matmul(module: ir.Module, target: GpuTarget, name: str, op: Operation,
                     symbols: Sequence[str]) -> TcKernel:
    """`out[b, m, n] = any_k(lhs[b, m, k] and rhs[b, k, n])` (NumPy's bool matmul)."""
    lhs, rhs, result = op.lhs.type, op.rhs.type, op.result.type
    if not lhs.dtype.is_bool:
        raise UnsupportedError(f"tc.matmul on {lhs.dtype} should have become a kernel")
    buffers = [op.lhs, op.rhs, op.result]
    e = _Emitter(module, target, name, buffers, symbols)
    b = e.builder
    m, k, n = (e.extent(d) for d in (lhs.shape[-2], lhs.shape[-1], rhs.shape[-1]))
    total = e.product(result.shape)
    found = e.prologue.alloca(I1, name="found")
    with e.loop(total) as t:
        column = b.urem(t, e.divisor(n))
        rest = b.udiv(t, e.divisor(n))
        row = b.urem(rest, e.divisor(m))
        batch = b.udiv(rest, e.divisor(m))
        b.store(I1(0), found)
        with strided_loop(b, I64(0), k, I64(1), "k") as p:
            left = b.add(b.mul(b.add(b.mul(batch, m), row), k), p)
            right = b.add(b.mul(b.add(b.mul(batch, k), p), n), column)
            both = b.and_(load_at(b, e.pointer(op.lhs), left, DType.BOOL),
                          load_at(b, e.pointer(op.rhs), right, DType.BOOL))
            b.store(b.or_(b.load(found, typ=I1), both), found)
        store_at(b, b.load(found, typ=I1), e.pointer(op.result), t, DType.BOOL)
    e.finish()
    return TcKernel(buffers, _grid(_count(result.shape)))


EMITTERS = {
    "tc.take": emit_take,
    "tc.take_along_axis": emit_take_along_axis,
    "tc.scatter_add": emit_scatter_add,
    "tc.scatter_add_along_axis": emit_scatter_add_along_axis,
    "tc.argmax": emit_arg_extreme,
    "tc.argmin": emit_arg_extreme,
    "tc.concat": emit_concat,
    "tc.dim_size": emit_dim_size,
    "tc.matmul": emit_bool_matmul,
}
