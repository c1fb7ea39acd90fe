"""Split reductions: few parallel points, long reductions (a loss, a bias gradient).

A row or column reduction gives one group of threads per parallel point, so `sum(x)` over a
million elements, or a bias gradient `sum(g, axis=0)` of shape [10], would run on one or two
blocks. A parallel-epilogue reduction that may be such a case is also emitted split in two:

    partial   the flat reduction space is cut into S chunks; a warp (row layout) or a 32 x 8
              block (column layout, when the reduced inputs are contiguous along the points)
              reduces one chunk of one point and stores its accumulators in scratch[s, p]
    finish    a thread per point combines scratch[0..S-1, p] in chunk order (deterministic)
              and runs the compute block

    S = max(1, min(ceil(R / 1024), ceil(32768 / max(P, 1))))

(chunks of at least 1024 reduction points; about 32768 (point, chunk) pairs in all). S is a
size expression: the plan launches the split pair when S > 1 and the ordinary kernel when
S = 1 (the other launches get an empty grid, which the runtime skips), and the kernels
compute the same S from their symbol parameters. Where S is known at compile time, only the
kernels that run are emitted.
"""

from __future__ import annotations

from collections.abc import Sequence

import llvmlite.ir as ir

from tensorc.codegen.cuda.kernel import (
    BLOCK_THREADS,
    Addressing,
    KernelSkeleton,
    LaunchShape,
    blocks_expr,
    load_at,
    store_at,
    strided_loop,
)
from tensorc.codegen.cuda.matmul import gpu_contraction
from tensorc.codegen.cuda.reduction import (
    COLUMN_DEPTH,
    COLUMN_WIDTH,
    ROWS_PER_BLOCK,
    Phase,
    is_column_reduction,
)
from tensorc.codegen.cuda.target import I64, WARP_SIZE, GpuTarget
from tensorc.ir.dialects.kernel import GenericOp
from tensorc.ir.dims import DimExpr, dim_max, dim_min, prod

SPLIT_CHUNK = 1024
SPLIT_TARGET = 32768


def split_sizes(op: GenericOp) -> tuple[DimExpr, DimExpr]:
    """(points, reduction length) as size expressions (extents clamped at 0)."""
    sizes = op.domain_sizes
    points = prod(dim_max(sizes[d], 0) for d in op.parallel_dims)
    length = prod(dim_max(sizes[d], 0) for d in op.reduction_dims)
    return points, length


def split_count(op: GenericOp) -> DimExpr:
    """S, the number of chunks (see the module documentation)."""
    points, length = split_sizes(op)
    chunks = (length + (SPLIT_CHUNK - 1)) // SPLIT_CHUNK
    per_point = (SPLIT_TARGET + dim_max(points, 1) - 1) // dim_max(points, 1)
    return dim_max(dim_min(chunks, per_point), 1)


def splittable(op: GenericOp) -> bool:
    """Whether `op` may need the split kernels (S is not the constant 1)."""
    if not op.has_reduction or op.is_row_epilogue or gpu_contraction(op) is not None:
        return False
    _, length = split_sizes(op)
    if length.is_const and (length.value or 0) <= SPLIT_CHUNK:
        return False
    count = split_count(op)
    return not (count.is_const and count.value == 1)


def split_switch(op: GenericOp) -> tuple[DimExpr, DimExpr]:
    """(on, off): 1/0 factors of the split kernels' and the ordinary kernel's grids."""
    on = dim_min(split_count(op) - 1, 1)
    return on, 1 - on


class _SplitKernel:
    """What both halves share: the skeleton, one phase, S, the chunk size, scratch pointers."""

    def __init__(self, module: ir.Module, target: GpuTarget, name: str, op: GenericOp,
                 symbols: Sequence[str], with_results: bool) -> None:
        self.op = op
        inputs, results = len(op.inputs), len(op.results)
        accumulators = len(op.reductions)
        count = inputs + (results if with_results else 0) + accumulators
        self.kernel = KernelSkeleton(module, target, name, count, symbols)
        buffers = self.kernel.buffers
        outputs = buffers[inputs: inputs + results] if with_results else [None] * results
        self.phase = Phase(self.kernel, op, list(buffers[:inputs]) + list(outputs))
        self.scratch = buffers[count - accumulators:]
        sizes = self.kernel.sizes
        self.addressing: Addressing = self.phase.addressing
        self.points = self.addressing.count(sizes, self.phase.parallel)
        self.length = self.addressing.count(sizes, self.phase.reduction)
        self.chunks = sizes.value(split_count(op))
        p = self.kernel.prologue
        self.chunk = p.udiv(p.add(self.length, p.sub(self.chunks, I64(1))), self.chunks)

    def scratch_offset(self, chunk: ir.Value, point: ir.Value) -> ir.Value:
        builder = self.kernel.builder
        return builder.add(builder.mul(chunk, self.points), point)

    def chunk_range(self, chunk: ir.Value) -> tuple[ir.Value, ir.Value]:
        builder = self.kernel.builder
        start = builder.mul(chunk, self.chunk)
        stop = builder.add(start, self.chunk)
        stop = builder.select(builder.icmp_signed("<", stop, self.length), stop, self.length)
        return start, stop

    def store_partials(self, chunk: ir.Value, point: ir.Value, values: Sequence[ir.Value]):
        builder, dtypes = self.kernel.builder, self.phase.accumulators.dtypes
        offset = self.scratch_offset(chunk, point)
        for pointer, value, dtype in zip(self.scratch, values, dtypes):
            store_at(builder, value, pointer, offset, dtype)


class SplitPartialKernel(_SplitKernel):
    """Partial accumulators of every (chunk, point) pair."""

    def __init__(self, module: ir.Module, target: GpuTarget, name: str, op: GenericOp,
                 symbols: Sequence[str]) -> None:
        super().__init__(module, target, name, op, symbols, with_results=False)
        self.columns = is_column_reduction(op)

    def emit(self) -> LaunchShape:
        if self.columns:
            self._columns()
        else:
            self._rows()
        self.kernel.finish()
        points, _ = split_sizes(self.op)
        count = split_count(self.op)
        on, _ = split_switch(self.op)
        if self.columns:
            units = ((points + (COLUMN_WIDTH - 1)) // COLUMN_WIDTH) * count
            grid = blocks_expr(units)
        else:
            grid = blocks_expr(points * count, ROWS_PER_BLOCK)
        return LaunchShape(grid * on, DimExpr.const(BLOCK_THREADS))

    def _rows(self) -> None:
        """A warp per (point, chunk)."""
        kernel, phase = self.kernel, self.phase
        builder, p = kernel.builder, kernel.prologue
        tid = kernel.register("tid")
        lane = p.and_(tid, I64(WARP_SIZE - 1))
        first = p.add(p.mul(kernel.register("ctaid"), I64(ROWS_PER_BLOCK)), p.lshr(tid, I64(5)))
        step = p.mul(kernel.register("nctaid"), I64(ROWS_PER_BLOCK))
        units = p.mul(self.points, self.chunks)
        with strided_loop(builder, first, units, step, "unit") as unit:
            point = builder.udiv(unit, self.chunks)
            chunk = builder.urem(unit, self.chunks)
            indices = self.addressing.split(builder, point, phase.parallel)
            offsets = self.addressing.offsets(builder, self.addressing.bases, indices)
            start, stop = self.chunk_range(chunk)
            phase.accumulators.reset()
            phase.accumulate_over(builder.add(start, lane), stop, I64(WARP_SIZE), indices,
                                  offsets)
            totals = phase.accumulators.warp_allreduce(phase.accumulators.load())
            with builder.if_then(builder.icmp_unsigned("==", lane, I64(0))):
                self.store_partials(chunk, point, totals)

    def _columns(self) -> None:
        """32 consecutive points x 8 rows of one chunk a block."""
        kernel, phase = self.kernel, self.phase
        builder, p = kernel.builder, kernel.prologue
        tid = kernel.register("tid")
        x, y = p.and_(tid, I64(COLUMN_WIDTH - 1)), p.lshr(tid, I64(5))
        tiles = p.udiv(p.add(self.points, I64(COLUMN_WIDTH - 1)), I64(COLUMN_WIDTH))
        units = p.mul(tiles, self.chunks)
        shared = phase.shared_words(BLOCK_THREADS)
        accumulators = phase.accumulators
        with strided_loop(builder, kernel.register("ctaid"), units, kernel.register("nctaid"),
                          "unit") as unit:
            tile = builder.udiv(unit, self.chunks)
            chunk = builder.urem(unit, self.chunks)
            point = builder.add(builder.mul(tile, I64(COLUMN_WIDTH)), x)
            valid = builder.icmp_signed("<", point, self.points)
            accumulators.reset()
            with builder.if_then(valid):
                indices = self.addressing.split(builder, point, phase.parallel)
                offsets = self.addressing.offsets(builder, self.addressing.bases, indices)
                start, stop = self.chunk_range(chunk)
                phase.accumulate_over(builder.add(start, y), stop, I64(COLUMN_DEPTH), indices,
                                      offsets)
            phase.write_words(shared, tid, accumulators.load())
            kernel.barrier()
            with builder.if_then(builder.and_(valid, builder.icmp_unsigned("==", y, I64(0)))):
                accumulators.reset()
                for depth in range(COLUMN_DEPTH):
                    slot = builder.add(x, I64(depth * COLUMN_WIDTH))
                    accumulators.accumulate(phase.read_words(shared, slot))
                self.store_partials(chunk, point, accumulators.load())
            kernel.barrier()


class SplitFinishKernel(_SplitKernel):
    """A thread per point: the chunks' partials, combined in order, then the epilogue."""

    def __init__(self, module: ir.Module, target: GpuTarget, name: str, op: GenericOp,
                 symbols: Sequence[str]) -> None:
        super().__init__(module, target, name, op, symbols, with_results=True)

    def emit(self) -> LaunchShape:
        kernel, phase, op = self.kernel, self.phase, self.op
        builder = kernel.builder
        accumulators = phase.accumulators
        with strided_loop(builder, kernel.global_thread(), self.points, kernel.thread_count(),
                          "point") as point:
            accumulators.reset()
            with strided_loop(builder, I64(0), self.chunks, I64(1), "chunk") as chunk:
                offset = self.scratch_offset(chunk, point)
                accumulators.accumulate([
                    load_at(builder, pointer, offset, dtype)
                    for pointer, dtype in zip(self.scratch, accumulators.dtypes)
                ])
            indices = self.addressing.split(builder, point, phase.parallel)
            offsets = self.addressing.offsets(builder, self.addressing.bases, indices)
            phase.body.indices = self.addressing.dim_indices(indices)
            outputs = phase.body.run(op.compute_block, op.compute_block.ops,
                                     phase.accumulator_values(accumulators.load()),
                                     phase.loader(offsets))
            phase.store(outputs, offsets)
        kernel.finish()
        points, _ = split_sizes(op)
        on, _ = split_switch(op)
        return LaunchShape(blocks_expr(points, BLOCK_THREADS) * on,
                           DimExpr.const(BLOCK_THREADS))

