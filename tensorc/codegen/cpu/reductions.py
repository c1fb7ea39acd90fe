"""Full reductions (`sum(x)`, a mean loss) split across the thread pool.

A kernel with no parallel dims has nothing for `tensorc_parallel_for` to split, so a large
one would run on one thread. Here its first reduction loop is cut into `pieces` (at most
`MAX_PIECES`, each worth at least `loops.PARALLEL_MIN_WORK`), computed as pool tasks into
partial accumulators on the caller's stack:

    K.partial(..., partials, pieces, begin, end):   for piece in [begin, end):
        acc = identity; for r in piece's share of the reduction space: acc = combine(acc, ...)
        partials[piece] = acc
    K.finish(..., partials, pieces):  acc = combine over the partials in piece order;
        out = compute(inputs, acc)

The number of pieces depends only on the sizes, never on the thread count, so results are the
same on every machine; when one piece would do, the ordinary kernel runs instead. This is a
reassociation of the reduction like the vectoriser's (see `loops.py`): float sums round
differently from a left-to-right sum by normal floating-point error.
"""

from __future__ import annotations

from collections.abc import Sequence

import llvmlite.ir as ir

from tensorc.codegen.cpu.irutil import (
    I64,
    PTR,
    call_parallel_for,
    combine,
    counted_loop,
    register_type,
    smax_i64,
    smin_i64,
    stack_array,
    store_pointers,
)
from tensorc.codegen.cpu.loops import PARALLEL_MIN_WORK, KernelLowering, body_cost
from tensorc.codegen.cpu.scalar import constant
from tensorc.codegen.cpu.sizes import SizeEmitter
from tensorc.ir.dialects.kernel import GenericOp, combiner_identity

MAX_PIECES = 64


def is_full_reduction(op: GenericOp) -> bool:
    """A kernel this module splits: reductions, no parallel dims, a parallel epilogue."""
    return op.has_reduction and op.num_parallel == 0 and not op.is_row_epilogue


class SplitReductionLowering(KernelLowering):
    """See the module documentation."""

    def emit_launch(
        self,
        builder: ir.IRBuilder,
        sizes: SizeEmitter,
        dims: ir.Value,
        buffers: Sequence[ir.Value],
        context: ir.Value,
    ) -> None:
        accumulator_types = [register_type(t.dtype) for t in self.op.accumulator_types]
        prologue = sizes.builder
        partials = [
            stack_array(prologue, ir.ArrayType(value_type, MAX_PIECES), f"partial{j}", 64)
            for j, value_type in enumerate(accumulator_types)
        ]
        pieces_slot = stack_array(prologue, ir.ArrayType(I64, 1), "pieces", 8)
        pointers = [dims, *buffers, *partials, pieces_slot]
        split_context = stack_array(prologue, ir.ArrayType(PTR, len(pointers)), "split_ctx")
        store_pointers(builder, split_context, pointers)
        pieces = self._pieces(sizes)
        builder.store(pieces, pieces_slot, align=8)
        whole = self.emit()
        partial = self._emit_partial(len(pointers))
        finish = self._emit_finish()
        with builder.if_else(builder.icmp_signed(">", pieces, I64(1))) as (split, serial):
            with split:
                call_parallel_for(builder, partial, split_context, pieces, I64(1))
                builder.call(finish, [dims, *buffers, *partials, pieces])
            with serial:
                call_parallel_for(builder, whole, split_context, I64(1), I64(1))

    def _pieces(self, sizes: SizeEmitter) -> ir.Value:
        """min(MAX_PIECES, first reduction loop's size, work / PARALLEL_MIN_WORK), at least 1."""
        b = sizes.builder
        work = I64(body_cost(self.op))
        for loop in self.loops:
            work = b.mul(work, self._loop_size(sizes, loop))
        first = self._loop_size(sizes, self.reduction_loops[0])
        wanted = b.udiv(work, I64(PARALLEL_MIN_WORK))
        pieces = smin_i64(b, smin_i64(b, wanted, I64(MAX_PIECES)), first)
        return smax_i64(b, pieces, I64(1))

    def _emit_partial(self, pointer_count: int) -> ir.Function:
        count = len(self.op.accumulator_types)
        function = self.open_function(f"{self.name}.partial", [PTR] * (count + 1) + [I64, I64])
        *partials, pieces_slot, begin, end = function.args[len(self.accesses) + 1 :]
        b = self.builder
        pieces = self.prologue.load(pieces_slot, typ=I64, align=8)
        first = self.loop_sizes[self.loops.index(self.reduction_loops[0])]
        offsets = self.base_offsets()
        with counted_loop(b, begin, end, "piece") as piece:
            low = b.udiv(b.mul(piece, first), pieces)
            high = b.udiv(b.mul(b.add(piece, I64(1)), first), pieces)
            self.first_reduction_range = (low, high)
            self.accumulate(offsets)
            for slot, array, acc_type in zip(self.accumulators, partials,
                                             self.op.accumulator_types):
                value_type = register_type(acc_type.dtype)
                where = b.gep(array, [piece], inbounds=True, source_etype=value_type)
                b.store(b.load(slot, typ=value_type), where)
        self.first_reduction_range = None
        self.close_function()
        return self.task_wrapper(function, pointer_count)

    def _emit_finish(self) -> ir.Function:
        op = self.op
        count = len(op.accumulator_types)
        function = self.open_function(f"{self.name}.finish", [PTR] * count + [I64])
        *partials, pieces = function.args[len(self.accesses) + 1 :]
        b = self.builder
        types = [register_type(t.dtype) for t in op.accumulator_types]
        for slot, kind, acc_type in zip(self.accumulators, op.reductions, op.accumulator_types):
            b.store(constant(acc_type.dtype, combiner_identity(kind, acc_type.dtype)), slot)
        with counted_loop(b, I64(0), pieces, "combine") as piece:
            for slot, array, kind, value_type, acc_type in zip(
                self.accumulators, partials, op.reductions, types, op.accumulator_types
            ):
                where = b.gep(array, [piece], inbounds=True, source_etype=value_type)
                current = b.load(slot, typ=value_type)
                value = b.load(where, typ=value_type)
                b.store(combine(b, kind, acc_type.dtype, current, value), slot)
        offsets = self.base_offsets()
        compute_args = op.compute_block.args[len(op.inputs) :]
        values = {
            id(arg): b.load(slot, typ=value_type)
            for arg, slot, value_type in zip(compute_args, self.accumulators, types)
        }
        outputs = self.emit_block(op.compute_block, op.compute_block.ops, values, offsets)
        self._store(outputs, offsets)
        self.close_function()
        return function
