"""Carried rows: a chain's first row reduction computed inside the next kernel's row loop.

Run in turn, the first kernel of a row chain (softmax's row max, layer norm's row sum) only
streams `x` from memory while the core idles, and the second (the exponentials and their sum;
the variance and the output) only computes on rows already in cache while memory idles
(chains.py). When both are a row loop and one reduction loop of the same size, and the first
has a plain epilogue (`can_carry`), the second kernel's nest *carries* the first one, the
*passenger*, ahead of its own rows (`RowPipeline`).

Carried (two stages). Before the row loop the passenger reduces row `begin`; then for each row
`p`, one reduction loop over `j` advances both the kernel's row `p` and the passenger's row
`p + 1`, and the passenger's result for row `p + 1` is stored after it (the last row's loop
reduces itself again, to keep the loop free of branches, and stores nothing). The loads of the
next row then issue among the arithmetic of this one, and LLVM vectorises the fused loop like
any other (two reductions and the stash store in one body). Rows stay independent -- row
`p + 1` is only read, row `p`'s result of the passenger was stored one iteration before -- so
results change at most by the order in which a reassociated sum adds (loops.py,
Reassociation). Measured here (A/B of the two builds, alternating calls in one process):
softmax 4096x1024 0.96 -> 0.88 ms, layer norm 0.79 -> 0.70 ms, against 0.67 ms for `x * 2` on
the same array. Software prefetching of the next rows instead gained nothing measurable, and
LLVM will not vectorise a loop that contains `llvm.prefetch`. Rows of a static width up to
SHORT_ROW are not carried (see there).

Lagged epilogue (three stages). A kernel with a row epilogue (layer norm: the variance, then
`out[p, j] = (x[p, j] - mean) * rstd * g[j] + b[j]`) still runs two loops per row when carried:
the reduction (with the passenger) and the epilogue. When its output is a large function result
that may be streamed (streaming.py), the epilogue instead runs one row behind:

    passenger: row begin;  kernel: reduce row begin, passenger riding on row begin + 1
    for p in [begin, end):
        one loop over j: out[p, j] from row p's accumulators (kept aside),
                         the kernel's reduction step on row p + 1,
                         the passenger's on row p + 2 (both clamped to the last row)
        store the passenger's row p + 2 when there is one; keep row p + 1's accumulators

Each row is then one loop that reads three rows and writes one, and its writes, non-temporal
stores of explicit vectors (vector_rows.py), no longer read the output's lines in first. A C
program of the same loops (AVX-512, 2 threads, 4096x1024 f32) took 0.64 ms carried, 0.66 ms
lagged with plain stores and 0.54 ms lagged with non-temporal stores: the lag gains only with
streaming, so a kernel lags only when its row loop has a vector plan
(`vector_rows.plan_vector_rows`: one large f32/f64 function result, rows not statically short,
per-element ops it can emit on vectors, at most one transcendental per element), and a call
lags only when it streams (`VectorRows.active`: a result of STREAM_FROM_BYTES or more, rows of
MIN_ROW or more, an element-aligned output); other calls of the same entry point run the
carried loop. A kernel whose body reads `kernel.index` does not lag: two rows are in flight in
one loop. Measured in tensorc, vector_rows.py.

Stash rows. Softmax's kernel stashes `exp(x - max)` where its epilogue reads it back
(row_epilogue.py, Stashing): carried, in the output row, which the epilogue then rewrites in
place. Lagged, row p's epilogue reads its stash while row p + 1's reduction writes its own, so
the stash goes to two row buffers on the stack (STASH_ROW_BYTES each) used in turn: the
epilogue of the loop's k-th row reads buffer k mod 2, the reduction beside it writes the
other. The output is then written once, streamed. A call lags when it streams and its rows
fit the buffers; otherwise it runs the carried loop. Measured (A/B of builds interleaved in
one process, seven rounds, `median_times`): softmax 4096x1024 f32 0.74-1.00 ms lagged against
0.84-1.18 carried, a median ratio of 0.87, with `x * 2` at 0.55-0.69 (a C program of the same
loops took 0.73 against 1.08 carried, `x * 2` 0.59). Lagging also takes one transcendental
per element into the vector middle: layer norm then `tanh`, `exp`, `sigmoid` or `log` runs
0.92, 0.91, 0.92 and 0.94 of its carried time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import llvmlite.ir as ir

from tensorc.codegen.cpu.irutil import (
    I64,
    counted_loop,
    itemsize,
    memory_type,
    register_type,
    smin_i64,
    stack_array,
)
from tensorc.codegen.cpu.streaming import LINE_BYTES
from tensorc.codegen.cpu.vector_rows import VectorPlan, VectorRows, plan_vector_rows
from tensorc.ir.dialects.kernel import PARALLEL, IndexOp

if TYPE_CHECKING:
    from tensorc.codegen.cpu.loops import KernelLowering

# Rows of a static width up to this are not carried (`can_carry`): LLVM unrolls their loops
# whole and runs the rows faster on its own (softmax/log-softmax in float, uncarried/carried
# time: 0.51/0.10 at width 4, 0.63/0.70 at 10, 0.75/0.78 at 32, 0.98/0.91 at 64, 0.98/1.10 at
# 100, 1.05/1.05 at 256). A symbolic width is carried: 100-wide softmax took 4.3 ms uncarried
# against 1.13 ms carried.
SHORT_ROW = 64
# The size of each of the two row buffers a lagged kernel with a stash uses (module doc, Stash
# rows): rows up to 8192 f32 (4096 f64) lag, longer ones stay carried.
STASH_ROW_BYTES = 32 * 1024
_ROW_NEST = [([0], PARALLEL), ([1], "reduction")]


def can_carry(kernel: KernelLowering, passenger: KernelLowering) -> bool:
    """Both nests are a row loop over dim 0 and one reduction loop over dim 1 of the same
    size, not a short static one; the passenger has a plain epilogue (out[p] =
    compute(acc)) and no stash."""
    for nest in (kernel, passenger):
        if nest.columns or [(loop.dims, loop.kind) for loop in nest.loops] != _ROW_NEST:
            return False
    sizes = (kernel.op.domain_sizes, passenger.op.domain_sizes)
    if sizes[0][:2] != sizes[1][:2] or not passenger.op.has_reduction:
        return False
    width = sizes[0][1].value
    if width is not None and width <= SHORT_ROW:
        return False
    return not passenger.op.is_row_epilogue and passenger.stash is None


def _lagged_plan(kernel: KernelLowering, passenger: KernelLowering) -> VectorPlan | None:
    """The vector plan of `kernel`'s row loop when its epilogue runs lagged, or None when it
    does not lag (module doc, Lagged epilogue)."""
    op = kernel.op
    if not op.is_row_epilogue:
        return None
    if any(isinstance(body_op, IndexOp)
           for block in (op.reduce_block, op.compute_block) for body_op in block.ops):
        return None
    return plan_vector_rows(kernel, passenger)


def _stash_capacity(kernel: KernelLowering) -> int:
    """The elements of each row buffer of a kernel with a stash (module doc, Stash rows)."""
    return STASH_ROW_BYTES // itemsize(kernel.stash_dtype)


class RowPipeline:
    """`kernel`'s row loop carrying `passenger` (module doc); lagged when `vector_plan`."""

    def __init__(self, kernel: KernelLowering, passenger: KernelLowering) -> None:
        self.kernel = kernel
        self.passenger = passenger
        self.vector_plan = _lagged_plan(kernel, passenger)
        self.vectors: VectorRows | None = None  # the plan in the bound function
        self._kept: list[ir.Value] = []  # the lagged row's accumulators
        self._stash_buffers: tuple[ir.Value, ir.Value] | None = None  # module doc, Stash rows

    def board(self, extra: Sequence[ir.Value]) -> None:
        """Bind the passenger to the kernel's nest function. A value the kernel also reads
        uses the kernel's (noalias) argument, so that the passenger's stores to the kernel's
        input are based on it; the others come as plain pointers in `extra`."""
        kernel, passenger = self.kernel, self.passenger
        mine = {id(value): argument for value, argument in zip(kernel.op.inputs, kernel.buffers)}
        values = [*passenger.op.inputs, *passenger.op.results]
        buffers = [mine.get(id(value), own) for value, own in zip(values, extra)]
        passenger.bind(kernel.prologue, kernel.sizes, kernel.builder, buffers)
        passenger.prepare_nest()
        if self.vector_plan is None:
            return
        prologue = kernel.prologue
        self._kept = [
            prologue.alloca(register_type(t.dtype), name=f"kept{j}")
            for j, t in enumerate(kernel.op.accumulator_types)
        ]
        self.vectors = VectorRows(self.vector_plan, kernel, passenger)
        self.vectors.bind()
        if kernel.stash is not None:
            element = memory_type(kernel.stash_dtype)
            capacity = _stash_capacity(kernel)
            rows = stack_array(prologue, ir.ArrayType(element, 2 * capacity), "stash_rows",
                               align=LINE_BYTES)
            second = prologue.gep(rows, [I64(capacity)], inbounds=True, source_etype=element)
            self._stash_buffers = (rows, second)

    def emit_rows(self, offsets: list[ir.Value], begin: ir.Value, end: ir.Value) -> None:
        """The kernel's row loop over [begin, end) with the passenger ahead of it: lagged
        when this call streams (module doc, Lagged epilogue), else carried."""
        if self.vector_plan is None:
            self._carried_rows(offsets, begin, end)
            return
        with self.kernel.builder.if_else(self._lags()) as (lagged, carried):
            with lagged:
                self._lagged_rows(offsets, begin, end)
            with carried:
                self._carried_rows(offsets, begin, end)

    def _lags(self) -> ir.Value:
        """Whether this call runs lagged: it streams (`VectorRows.active`), and the rows of a
        kernel with a stash fit the row buffers (module doc, Stash rows)."""
        kernel, vectors = self.kernel, self.vectors
        assert vectors is not None
        if kernel.stash is None:
            return vectors.active
        b = kernel.builder
        width = kernel.loop_sizes[vectors.position]
        return b.and_(vectors.active, b.icmp_signed("<=", width, I64(_stash_capacity(kernel))))

    def finish(self, builder: ir.IRBuilder) -> None:
        """The end of the kernel's nest: an `sfence` after streaming stores."""
        if self.vectors is not None:
            self.vectors.finish(builder)

    def _carried_rows(self, offsets: list[ir.Value], begin: ir.Value, end: ir.Value) -> None:
        """Module doc, Carried."""
        kernel, passenger = self.kernel, self.passenger
        b = kernel.builder
        ahead_base = passenger.base_offsets()
        with b.if_then(b.icmp_signed("<", begin, end)):
            passenger.point(passenger.advance(ahead_base, 0, begin))
        with counted_loop(b, begin, end, "p0") as index:
            with self._riding(ahead_base, b.add(index, I64(1)), end):
                kernel.point(kernel.advance(offsets, 0, index))

    def _lagged_rows(self, offsets: list[ir.Value], begin: ir.Value, end: ir.Value) -> None:
        """Module doc, Lagged epilogue. The last row's loop reduces the last row again in
        place of a next one, as the passenger does past the end (`_riding`): one loop body
        serves every row."""
        kernel, passenger = self.kernel, self.passenger
        b = kernel.builder
        ahead_base = passenger.base_offsets()
        last = b.sub(end, I64(1))
        with b.if_then(b.icmp_signed("<", begin, end)):
            passenger.point(passenger.advance(ahead_base, 0, begin))
            self._swap_stash_rows(I64(1))
            with self._riding(ahead_base, b.add(begin, I64(1)), end):
                kernel.accumulate(kernel.advance(offsets, 0, begin))
            self._keep()
        with counted_loop(b, begin, end, "p0") as index:
            row = kernel.advance(offsets, 0, index)
            following = kernel.advance(offsets, 0, self._within(b.add(index, I64(1)), last))
            values = kernel.accumulated(self._kept)
            kernel.start_accumulators()
            self._swap_stash_rows(b.sub(index, begin))
            with self._riding(ahead_base, b.add(index, I64(2)), end):
                kernel.row_epilogue(row, values, following)
            self._keep()
        kernel.stash_rows = None

    def _swap_stash_rows(self, count: ir.Value) -> None:
        """The row buffers for the `count`-th row of the loop (counted from `begin`): its
        epilogue reads the buffer of its parity, the next row writes the other."""
        if self._stash_buffers is None:
            return
        b = self.kernel.builder
        first, second = self._stash_buffers
        odd = b.trunc(count, ir.IntType(1))
        self.kernel.stash_rows = (b.select(odd, second, first), b.select(odd, first, second))

    @contextmanager
    def _riding(self, ahead_base: list[ir.Value], row: ir.Value, end: ir.Value) -> Iterator[None]:
        """The passenger reduces `row` inside the loops the kernel emits in the with-block,
        and stores its result after them. Past the last row it reduces the last row again, to
        keep the loop free of branches, and stores nothing: that row's stored result, which
        the kernel has used, must stay the one it used."""
        kernel, passenger = self.kernel, self.passenger
        b = kernel.builder
        ahead = passenger.advance(ahead_base, 0, self._within(row, b.sub(end, I64(1))))
        passenger.start_accumulators()
        kernel.rider = (passenger, ahead)
        yield
        kernel.rider = None
        with b.if_then(b.icmp_signed("<", row, end)):
            passenger.finish_point(ahead)

    def _within(self, row: ir.Value, last: ir.Value) -> ir.Value:
        """`row`, or `last` when it is past it: a loop that reduces a row ahead reduces the
        last row again there, to stay free of branches."""
        return smin_i64(self.kernel.builder, row, last)

    def _keep(self) -> None:
        """Set the kernel's accumulators aside: the row whose epilogue runs next."""
        b = self.kernel.builder
        for slot, value in zip(self._kept, self.kernel.accumulated().values()):
            b.store(value, slot)
