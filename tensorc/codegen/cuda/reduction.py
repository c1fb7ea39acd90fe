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
- a parallel epilogue is computed by every thread (the group's first one stores it);
- a row epilogue computes the row-invariant ops once per thread and then re-reads the row,
  `r = lane, lane + G, ...`, computing and storing every (p, r) point, coalesced like the
  reduction itself.

Row chains. Fusion leaves softmax as two kernels (the row max; then the sum of exponentials
with the normalisation as a row epilogue), layer norm as two, cross-entropy as two: each
later one reads the earlier one's per-row result. `row_chains` groups such consecutive
kernels (the same parallel domain; each reads earlier results only at the row being reduced,
and only the last one may have a row epilogue) into one kernel, whose *phases* run one after
another for each row: a phase's per-row results stay in registers for the later phases (and
are stored too, for any other reader). So softmax, log-softmax, layer norm and cross-entropy
are one kernel per row block, reading each row from global memory once per phase.

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
from tensorc.codegen.cuda.matmul import gpu_contraction
from tensorc.codegen.cuda.target import I32, I64, WARP_SIZE, GpuTarget
from tensorc.ir.core import Operation, Value
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


class Phase:
    """One `kernel.generic` of a reduction kernel: addressing, accumulators, body, pointers
    (`pointers[k]` is the kernel parameter of access `k`: inputs, then results)."""

    def __init__(self, kernel: KernelSkeleton, op: GenericOp, pointers: Sequence[ir.Value],
                 index: int = 0) -> None:
        self.kernel = kernel
        self.op = op
        self.index = index
        self.pointers = list(pointers)
        self.addressing = Addressing(kernel, op)
        self.parallel = self.addressing.positions(PARALLEL)
        self.reduction = self.addressing.positions(REDUCTION)
        self.accumulators = Accumulators(kernel, op)
        self.body = BodyEmitter(kernel, op)
        self.registers: dict[int, ir.Value] = {}  # input index -> this row's value

    def loader(self, offsets: Sequence[ir.Value]) -> Callable[[int], ir.Value]:
        builder = self.kernel.builder
        inputs = self.addressing.inputs

        def load(k: int) -> ir.Value:
            if k in self.registers:
                return self.registers[k]
            return load_at(builder, self.pointers[k], offsets[k], inputs[k].dtype)

        return load

    def store(self, outputs: Sequence[ir.Value], offsets: Sequence[ir.Value]) -> None:
        first = len(self.op.inputs)
        for m, value in enumerate(outputs):
            store_at(self.kernel.builder, value, self.pointers[first + m], offsets[first + m],
                     self.addressing.outputs[m].dtype)

    def accumulate_over(
        self, start: ir.Value, stop: ir.Value, step: ir.Value,
        parallel_indices: dict[int, ir.Value], parallel_offsets: list[ir.Value],
    ) -> None:
        """acc = combine(acc, reduce(inputs at (p, r))) for r in range(start, stop, step)."""
        builder, addressing, op = self.kernel.builder, self.addressing, self.op
        with strided_loop(builder, start, stop, step, f"r{self.index}") as flat:
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
            [self.kernel.shared_array(f"p{self.index}acc{j}w{w}", I32, count)
             for w in range(word_count(d))]
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


# ----- row chains ---------------------------------------------------------------------------


def is_row_reduction(op: Operation) -> bool:
    """A reduction the row kernel runs (not a matmul, not a column reduction)."""
    return (isinstance(op, GenericOp) and op.has_reduction and gpu_contraction(op) is None
            and not is_column_reduction(op))


def chain_link(chain: Sequence[GenericOp], op: Operation) -> bool:
    """Whether `op` can run as the next phase of `chain` (see Row chains)."""
    if not is_row_reduction(op) or chain[-1].is_row_epilogue:
        return False
    assert isinstance(op, GenericOp)
    first = chain[0]
    parallel = first.num_parallel
    if op.num_parallel != parallel or op.domain_sizes[:parallel] != first.domain_sizes[:parallel]:
        return False
    produced = {id(result): (phase, m) for phase in chain
                for m, result in enumerate(phase.results)}
    reads = False
    for value, amap in zip(op.inputs, op.input_maps):
        source = produced.get(id(value))
        if source is None:
            continue
        phase, m = source
        if amap.results != phase.output_maps[m].results:
            return False
        if any(d >= parallel for d in amap.used_dims):
            return False
        reads = True
    return reads


def row_chains(ops: Sequence[Operation]) -> list[list[Operation]]:
    """`ops` in order, grouped: row chains together, every other op alone."""
    groups: list[list[Operation]] = []
    for op in ops:
        previous = groups[-1] if groups else None
        if previous and is_row_reduction(previous[0]) and chain_link(previous, op):
            previous.append(op)
        else:
            groups.append([op])
    return groups


class RowReductionKernel:
    """A group of threads per row, one phase per op of a row chain (see the module doc).
    `buffers` are the kernel's buffer parameters (IR values, each once)."""

    def __init__(
        self, module: ir.Module, target: GpuTarget, name: str, ops: Sequence[GenericOp],
        symbols: Sequence[str], buffers: Sequence[Value],
    ) -> None:
        self.ops = list(ops)
        self.kernel = KernelSkeleton(module, target, name, len(buffers), symbols)
        parameter = {id(value): p for value, p in zip(buffers, self.kernel.buffers)}
        produced: dict[int, tuple[int, int]] = {}
        self.phases: list[Phase] = []
        self.sources: list[dict[int, tuple[int, int]]] = []  # per phase: input -> (phase, m)
        for index, op in enumerate(self.ops):
            values = list(op.inputs) + list(op.results)
            self.phases.append(Phase(self.kernel, op, [parameter[id(v)] for v in values],
                                     index))
            self.sources.append({k: produced[id(v)] for k, v in enumerate(op.inputs)
                                 if id(v) in produced})
            produced.update({id(r): (index, m) for m, r in enumerate(op.results)})
        lengths = [phase.addressing.count_expr(phase.reduction) for phase in self.phases]
        self.warp_mode = all(n.is_const and (n.value or 0) <= WARP_ROW_LIMIT for n in lengths)
        self.row_length = dim_max(*lengths) if len(lengths) > 1 else lengths[0]

    def emit(self) -> LaunchShape:
        kernel = self.kernel
        builder, p = kernel.builder, kernel.prologue
        tid = kernel.register("tid")
        first = self.phases[0]
        rows = first.addressing.count(kernel.sizes, first.parallel)
        if self.warp_mode:
            lane = p.and_(tid, I64(WARP_SIZE - 1), name="lane")
            warp = p.lshr(tid, I64(5), name="warp")
            first_row = p.add(p.mul(kernel.register("ctaid"), I64(ROWS_PER_BLOCK)), warp)
            row_step = p.mul(kernel.register("nctaid"), I64(ROWS_PER_BLOCK))
            group: ir.Value = I64(WARP_SIZE)
        else:
            lane, group = tid, kernel.register("ntid")
            first_row, row_step = kernel.register("ctaid"), kernel.register("nctaid")
        shared = [None if self.warp_mode else phase.shared_words(WARP_SIZE)
                  for phase in self.phases]
        with strided_loop(builder, first_row, rows, row_step, "row") as row:
            results: dict[tuple[int, int], ir.Value] = {}
            for phase, sources, arrays in zip(self.phases, self.sources, shared):
                phase.registers = {k: results[source] for k, source in sources.items()}
                outputs = self._phase(phase, row, lane, group, arrays)
                results.update({(phase.index, m): v for m, v in enumerate(outputs)})
        kernel.finish()
        return self._launch_shape()

    def _phase(self, phase: Phase, row: ir.Value, lane: ir.Value, group: ir.Value,
               shared: list[list[ir.Value]] | None) -> list[ir.Value]:
        """One phase for one row; returns its per-row results (a parallel epilogue's)."""
        builder, addressing = self.kernel.builder, phase.addressing
        length = addressing.count(self.kernel.sizes, phase.reduction)
        indices = addressing.split(builder, row, phase.parallel)
        offsets = addressing.offsets(builder, addressing.bases, indices)
        phase.accumulators.reset()
        phase.accumulate_over(lane, length, group, indices, offsets)
        totals = phase.accumulators.warp_allreduce(phase.accumulators.load())
        if shared is not None:
            totals = self._combine_warps(phase, shared, totals)
        return self._epilogue(phase, lane, length, group, indices, offsets, totals)

    def _launch_shape(self) -> LaunchShape:
        first = self.phases[0]
        rows = first.addressing.count_expr(first.parallel)
        if self.warp_mode:
            return LaunchShape(blocks_expr(rows, ROWS_PER_BLOCK), DimExpr.const(BLOCK_THREADS))
        warps = (self.row_length + (WARP_SIZE - 1)) // WARP_SIZE
        threads = dim_min(dim_max(warps * WARP_SIZE, WARP_SIZE), BLOCK_THREADS)
        return LaunchShape(blocks_expr(rows), threads)

    def _combine_warps(self, phase: Phase, shared: list[list[ir.Value]],
                       totals: Sequence[ir.Value]) -> list[ir.Value]:
        """Block mode: each warp's value through shared memory, combined in warp order."""
        kernel = self.kernel
        builder, p = kernel.builder, kernel.prologue
        tid = kernel.register("tid")
        lane_zero = builder.icmp_unsigned("==", builder.and_(tid, I64(WARP_SIZE - 1)), I64(0))
        with builder.if_then(lane_zero):
            phase.write_words(shared, builder.lshr(tid, I64(5)), totals)
        kernel.barrier()
        warps = p.lshr(kernel.register("ntid"), I64(5), name="warps")
        phase.accumulators.reset()
        with strided_loop(builder, I64(0), warps, I64(1), f"warp{phase.index}") as warp:
            phase.accumulators.accumulate(phase.read_words(shared, warp))
        combined = phase.accumulators.load()
        kernel.barrier()  # the arrays are rewritten for the next row
        return combined

    def _epilogue(
        self, phase: Phase, lane: ir.Value, length: ir.Value, group: ir.Value,
        parallel_indices: dict[int, ir.Value], parallel_offsets: list[ir.Value],
        totals: Sequence[ir.Value],
    ) -> list[ir.Value]:
        builder, addressing, op = self.kernel.builder, phase.addressing, phase.op
        block = op.compute_block
        values = phase.accumulator_values(totals)
        phase.body.indices = addressing.dim_indices(parallel_indices)
        if not op.is_row_epilogue:
            outputs = phase.body.run(block, block.ops, values, phase.loader(parallel_offsets))
            with builder.if_then(builder.icmp_unsigned("==", lane, I64(0))):
                phase.store(outputs, parallel_offsets)
            return outputs
        hoisted = row_invariant_ops(op)
        hoisted_ids = {id(o) for o in hoisted}
        phase.body.run(block, hoisted, values, phase.loader(parallel_offsets))
        varying = [o for o in block.ops if id(o) not in hoisted_ids]
        with strided_loop(builder, lane, length, group, f"e{phase.index}") as flat:
            indices = addressing.split(builder, flat, phase.reduction)
            offsets = addressing.offsets(builder, parallel_offsets, indices)
            phase.body.indices = addressing.dim_indices({**parallel_indices, **indices})
            outputs = phase.body.run(block, varying, dict(values), phase.loader(offsets))
            phase.store(outputs, offsets)
        return []


class ColumnReductionKernel:
    """32 parallel points a block, 8 threads each (see the module documentation)."""

    def __init__(
        self, module: ir.Module, target: GpuTarget, name: str, op: GenericOp,
        symbols: Sequence[str],
    ) -> None:
        self.op = op
        self.kernel = KernelSkeleton(
            module, target, name, len(op.inputs) + len(op.results), symbols
        )
        self.phase = Phase(self.kernel, op, self.kernel.buffers)

    def emit(self) -> LaunchShape:
        kernel, phase, op = self.kernel, self.phase, self.op
        addressing = phase.addressing
        builder, p = kernel.builder, kernel.prologue
        tid = kernel.register("tid")
        x = p.and_(tid, I64(COLUMN_WIDTH - 1), name="x")
        y = p.lshr(tid, I64(5), name="y")
        points = addressing.count(kernel.sizes, phase.parallel)
        length = addressing.count(kernel.sizes, phase.reduction)
        units = p.udiv(p.add(points, I64(COLUMN_WIDTH - 1)), I64(COLUMN_WIDTH))
        shared = phase.shared_words(BLOCK_THREADS)
        accumulators = phase.accumulators
        with strided_loop(builder, kernel.register("ctaid"), units, kernel.register("nctaid"),
                          "unit") as unit:
            point = builder.add(builder.mul(unit, I64(COLUMN_WIDTH)), x)
            valid = builder.icmp_signed("<", point, points)
            accumulators.reset()
            with builder.if_then(valid):
                indices = addressing.split(builder, point, phase.parallel)
                offsets = addressing.offsets(builder, addressing.bases, indices)
                phase.accumulate_over(y, length, I64(COLUMN_DEPTH), indices, offsets)
            phase.write_words(shared, tid, accumulators.load())
            kernel.barrier()
            leader = builder.and_(valid, builder.icmp_unsigned("==", y, I64(0)))
            with builder.if_then(leader):
                accumulators.reset()
                for depth in range(COLUMN_DEPTH):
                    slot = builder.add(x, I64(depth * COLUMN_WIDTH))
                    accumulators.accumulate(phase.read_words(shared, slot))
                indices = addressing.split(builder, point, phase.parallel)
                offsets = addressing.offsets(builder, addressing.bases, indices)
                phase.body.indices = addressing.dim_indices(indices)
                outputs = phase.body.run(
                    op.compute_block, op.compute_block.ops,
                    phase.accumulator_values(accumulators.load()), phase.loader(offsets),
                )
                phase.store(outputs, offsets)
            kernel.barrier()
        kernel.finish()
        points_expr = addressing.count_expr(phase.parallel)
        return LaunchShape(blocks_expr(points_expr, COLUMN_WIDTH), DimExpr.const(BLOCK_THREADS))
