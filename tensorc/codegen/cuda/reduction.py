"""`kernel.generic` with reduction dims (other than matmuls) -> row or column reductions.

Row reductions (the general case; softmax, layer norm, sums over the last axes). A *group*
of threads reduces one parallel point `p` (a row) at a time, its threads striding over the
flat reduction space (`r = lane, lane + G, ...`: coalesced when the reduced inputs are
contiguous along the innermost reduction dim):

    warp mode   (static row length <= 512)   a warp per row, 8 rows per 256-thread block;
                combining is a warp butterfly (`shfl.sync.bfly`), no shared memory
    block mode  (longer or symbolic rows)    a block per row, 32..256 threads (a multiple of 32
                the plan picks from the row length); warp butterflies, then each warp's
                value through shared memory, combined in warp order by every thread

After the combine every thread of the group holds the same accumulators, so
- a parallel epilogue is computed by the group's first thread, once per row;
- a row epilogue (softmax, layer norm: one kernel per row block) computes the row-invariant
  ops once per thread and then re-reads the row, `r = lane, lane + G, ...`, computing and
  storing every (p, r) point, coalesced like the reduction itself.

Column reductions (a sum over axis 0 and the like: the reduced inputs are contiguous along the
last parallel dim and not along the innermost reduction dim): a 32 x 8 block takes 32
consecutive parallel points; thread (x, y) accumulates point x over reduction points
y, y + 8, ... (consecutive threads read consecutive addresses); the 8 partial values of a
point meet in shared memory and thread (x, 0) combines them in order and runs the epilogue.

Float sums are combined in a fixed order for a given launch shape: results are deterministic,
and differ from a sequential sum by ordinary rounding (like the CPU's vectorised sums).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import llvmlite.ir as ir

from tensorc.codegen.cpu.loops import Access, plan_loops
from tensorc.codegen.cuda.kernel import (
    BLOCK_THREADS,
    Accumulators,
    Addressing,
    BodyEmitter,
    KernelSkeleton,
    LaunchShape,
    blocks_expr,
    from_words,
    load_at,
    store_at,
    strided_loop,
    to_words,
    word_count,
)
from tensorc.codegen.cuda.target import I32, I64, WARP_SIZE, GpuTarget
from tensorc.ir.dialects.kernel import PARALLEL, REDUCTION, GenericOp, row_invariant_ops
from tensorc.ir.dims import DimExpr, dim_max, dim_min

WARP_ROW_LIMIT = 512
ROWS_PER_BLOCK = BLOCK_THREADS // WARP_SIZE
COLUMN_WIDTH = 32
COLUMN_DEPTH = BLOCK_THREADS // COLUMN_WIDTH


def is_column_reduction(op: GenericOp) -> bool:
    """Whether the reduced inputs are contiguous along the last parallel loop and not along
    the innermost reduction loop (see the module documentation)."""
    if op.is_row_epilogue or not op.has_reduction:
        return False
    inputs = [Access.of(v.type, m) for v, m in zip(op.inputs, op.input_maps)]
    outputs = [Access.of(r.type, m) for r, m in zip(op.results, op.output_maps)]
    loops = plan_loops(op, inputs + outputs)
    parallel = [loop for loop in loops if loop.kind == PARALLEL]
    reduction = [loop for loop in loops if loop.kind == REDUCTION]
    if not parallel or not reduction:
        return False
    last, inner = parallel[-1].innermost, reduction[-1].innermost
    reduced = [inputs[k] for k in range(len(op.inputs)) if op.input_uses_reduction(k)]
    return bool(reduced) and all(
        a.coefficients[last] == 1 and a.coefficients[inner] != 1 for a in reduced
    )


class _ReductionKernel:
    """What row and column reductions share."""

    def __init__(
        self, module: ir.Module, target: GpuTarget, name: str, op: GenericOp,
        symbols: Sequence[str],
    ) -> None:
        self.op = op
        self.kernel = KernelSkeleton(
            module, target, name, len(op.inputs) + len(op.results), symbols
        )
        self.addressing = Addressing(self.kernel, op)
        self.parallel = self.addressing.positions(PARALLEL)
        self.reduction = self.addressing.positions(REDUCTION)
        self.accumulators = Accumulators(self.kernel, op)
        self.body = BodyEmitter(self.kernel, op)

    def loader(self, offsets: Sequence[ir.Value]) -> Callable[[int], ir.Value]:
        builder, buffers = self.kernel.builder, self.kernel.buffers
        inputs = self.addressing.inputs

        def load(k: int) -> ir.Value:
            return load_at(builder, buffers[k], offsets[k], inputs[k].dtype)

        return load

    def store(self, outputs: Sequence[ir.Value], offsets: Sequence[ir.Value]) -> None:
        first = len(self.op.inputs)
        for m, value in enumerate(outputs):
            store_at(self.kernel.builder, value, self.kernel.buffers[first + m],
                     offsets[first + m], self.addressing.outputs[m].dtype)

    def accumulate_over(
        self, start: ir.Value, stop: ir.Value, step: ir.Value,
        parallel_indices: dict[int, ir.Value], parallel_offsets: list[ir.Value],
    ) -> None:
        """acc = combine(acc, reduce(inputs at (p, r))) for r in range(start, stop, step)."""
        builder, addressing, op = self.kernel.builder, self.addressing, self.op
        with strided_loop(builder, start, stop, step, "r") as flat:
            indices = addressing.split(builder, flat, self.reduction)
            offsets = addressing.offsets(builder, parallel_offsets, indices)
            self.body.indices = addressing.dim_indices({**parallel_indices, **indices})
            values = self.body.run(op.reduce_block, op.reduce_block.ops, {},
                                   self.loader(offsets))
            self.accumulators.accumulate(values)

    def accumulator_values(self, totals: Sequence[ir.Value]) -> dict[int, ir.Value]:
        args = self.op.compute_block.args[len(self.op.inputs):]
        return {id(arg): value for arg, value in zip(args, totals)}

    def shared_words(self, count: int) -> list[list[ir.Value]]:
        """Shared arrays of `count` i32 words, per accumulator and per word of it."""
        return [
            [self.kernel.shared_array(f"acc{j}w{w}", I32, count) for w in range(word_count(d))]
            for j, d in enumerate(self.accumulators.dtypes)
        ]

    def write_words(self, arrays: list[list[ir.Value]], index: ir.Value,
                    values: Sequence[ir.Value]) -> None:
        builder = self.kernel.builder
        for words_arrays, value, dtype in zip(arrays, values, self.accumulators.dtypes):
            for array, word in zip(words_arrays, to_words(builder, value, dtype)):
                builder.store(word, builder.gep(array, [index], source_etype=I32), align=4)

    def read_words(self, arrays: list[list[ir.Value]], index: ir.Value) -> list[ir.Value]:
        builder = self.kernel.builder
        values = []
        for words_arrays, dtype in zip(arrays, self.accumulators.dtypes):
            words = [builder.load(builder.gep(array, [index], source_etype=I32), typ=I32,
                                  align=4)
                     for array in words_arrays]
            values.append(from_words(builder, words, dtype))
        return values


class RowReductionKernel(_ReductionKernel):
    """A group of threads per row (see the module documentation)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        length = self.addressing.count_expr(self.reduction)
        self.warp_mode = length.is_const and (length.value or 0) <= WARP_ROW_LIMIT
        self.row_length = length

    def emit(self) -> LaunchShape:
        kernel, addressing = self.kernel, self.addressing
        builder, p = kernel.builder, kernel.prologue
        tid = kernel.register("tid")
        rows = addressing.count(kernel.sizes, self.parallel)
        length = addressing.count(kernel.sizes, self.reduction)
        if self.warp_mode:
            lane = p.and_(tid, I64(WARP_SIZE - 1), name="lane")
            warp = p.lshr(tid, I64(5), name="warp")
            first_row = p.add(p.mul(kernel.register("ctaid"), I64(ROWS_PER_BLOCK)), warp)
            row_step = p.mul(kernel.register("nctaid"), I64(ROWS_PER_BLOCK))
            group = I64(WARP_SIZE)
            shared = None
        else:
            lane, group = tid, kernel.register("ntid")
            first_row, row_step = kernel.register("ctaid"), kernel.register("nctaid")
            shared = self.shared_words(WARP_SIZE)
        with strided_loop(builder, first_row, rows, row_step, "row") as row:
            indices = addressing.split(builder, row, self.parallel)
            offsets = addressing.offsets(builder, addressing.bases, indices)
            self.accumulators.reset()
            self.accumulate_over(lane, length, group, indices, offsets)
            totals = self.accumulators.warp_allreduce(self.accumulators.load())
            if shared is not None:
                totals = self._combine_warps(shared, totals)
            self._epilogue(lane, length, group, indices, offsets, totals)
        kernel.finish()
        return self._launch_shape()

    def _launch_shape(self) -> LaunchShape:
        rows = self.addressing.count_expr(self.parallel)
        if self.warp_mode:
            return LaunchShape(blocks_expr(rows, ROWS_PER_BLOCK), DimExpr.const(BLOCK_THREADS))
        warps = (self.row_length + (WARP_SIZE - 1)) // WARP_SIZE
        threads = dim_min(dim_max(warps * WARP_SIZE, WARP_SIZE), BLOCK_THREADS)
        return LaunchShape(blocks_expr(rows), threads)

    def _combine_warps(self, shared: list[list[ir.Value]],
                       totals: Sequence[ir.Value]) -> list[ir.Value]:
        """Block mode: each warp's value through shared memory, combined in warp order."""
        kernel = self.kernel
        builder, p = kernel.builder, kernel.prologue
        tid = kernel.register("tid")
        lane_zero = builder.icmp_unsigned("==", builder.and_(tid, I64(WARP_SIZE - 1)), I64(0))
        with builder.if_then(lane_zero):
            self.write_words(shared, builder.lshr(tid, I64(5)), totals)
        kernel.barrier()
        warps = p.lshr(kernel.register("ntid"), I64(5), name="warps")
        self.accumulators.reset()
        with strided_loop(builder, I64(0), warps, I64(1), "warp") as warp:
            self.accumulators.accumulate(self.read_words(shared, warp))
        combined = self.accumulators.load()
        kernel.barrier()  # the arrays are rewritten for the next row
        return combined

    def _epilogue(
        self, lane: ir.Value, length: ir.Value, group: ir.Value,
        parallel_indices: dict[int, ir.Value], parallel_offsets: list[ir.Value],
        totals: Sequence[ir.Value],
    ) -> None:
        builder, addressing, op = self.kernel.builder, self.addressing, self.op
        block = op.compute_block
        values = self.accumulator_values(totals)
        self.body.indices = addressing.dim_indices(parallel_indices)
        if not op.is_row_epilogue:
            with builder.if_then(builder.icmp_unsigned("==", lane, I64(0))):
                outputs = self.body.run(block, block.ops, values,
                                        self.loader(parallel_offsets))
                self.store(outputs, parallel_offsets)
            return
        hoisted = row_invariant_ops(op)
        hoisted_ids = {id(o) for o in hoisted}
        self.body.run(block, hoisted, values, self.loader(parallel_offsets))
        varying = [o for o in block.ops if id(o) not in hoisted_ids]
        with strided_loop(builder, lane, length, group, "e") as flat:
            indices = addressing.split(builder, flat, self.reduction)
            offsets = addressing.offsets(builder, parallel_offsets, indices)
            self.body.indices = addressing.dim_indices({**parallel_indices, **indices})
            outputs = self.body.run(block, varying, dict(values), self.loader(offsets))
            self.store(outputs, offsets)


class ColumnReductionKernel(_ReductionKernel):
    """32 parallel points a block, 8 threads each (see the module documentation)."""

    def emit(self) -> LaunchShape:
        kernel, addressing, op = self.kernel, self.addressing, self.op
        builder, p = kernel.builder, kernel.prologue
        tid = kernel.register("tid")
        x = p.and_(tid, I64(COLUMN_WIDTH - 1), name="x")
        y = p.lshr(tid, I64(5), name="y")
        points = addressing.count(kernel.sizes, self.parallel)
        length = addressing.count(kernel.sizes, self.reduction)
        units = p.udiv(p.add(points, I64(COLUMN_WIDTH - 1)), I64(COLUMN_WIDTH))
        shared = self.shared_words(BLOCK_THREADS)
        with strided_loop(builder, kernel.register("ctaid"), units, kernel.register("nctaid"),
                          "unit") as unit:
            point = builder.add(builder.mul(unit, I64(COLUMN_WIDTH)), x)
            valid = builder.icmp_signed("<", point, points)
            self.accumulators.reset()
            with builder.if_then(valid):
                indices = addressing.split(builder, point, self.parallel)
                offsets = addressing.offsets(builder, addressing.bases, indices)
                self.accumulate_over(y, length, I64(COLUMN_DEPTH), indices, offsets)
            self.write_words(shared, tid, self.accumulators.load())
            kernel.barrier()
            leader = builder.and_(valid, builder.icmp_unsigned("==", y, I64(0)))
            with builder.if_then(leader):
                self.accumulators.reset()
                for depth in range(COLUMN_DEPTH):
                    slot = builder.add(x, I64(depth * COLUMN_WIDTH))
                    self.accumulators.accumulate(self.read_words(shared, slot))
                indices = addressing.split(builder, point, self.parallel)
                offsets = addressing.offsets(builder, addressing.bases, indices)
                self.body.indices = addressing.dim_indices(indices)
                outputs = self.body.run(
                    op.compute_block, op.compute_block.ops,
                    self.accumulator_values(self.accumulators.load()), self.loader(offsets),
                )
                self.store(outputs, offsets)
            kernel.barrier()
        kernel.finish()
        points_expr = addressing.count_expr(self.parallel)
        return LaunchShape(blocks_expr(points_expr, COLUMN_WIDTH), DimExpr.const(BLOCK_THREADS))
