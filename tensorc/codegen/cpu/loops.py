"""`kernel.generic` -> a loop nest in an outlined function, run through the thread pool.

Addressing. Every operand and result is a contiguous row-major buffer, so an affine map
becomes an element offset `base + sum_d coef_d * i_d` where `coef_d = sum_axis c_{axis,d} *
stride_axis` (`AffineMap` coefficients times row-major strides) and `base` collects the maps'
constant offsets (slices, reversals). Coefficients that are compile-time constants (the
innermost axis's stride 1, broadcasts' 0) are emitted as constants, so inner loops have unit
or zero strides that LLVM's vectoriser sees.

Loop collapsing. Adjacent domain dims of one iterator kind are merged into one loop when, for
every access, `coef_outer == coef_inner * size_inner` (they walk memory as one dim would) and
no `kernel.index` reads them: an elementwise kernel over `[N, M]` is one flat loop of `N*M`.

The nest, for parallel loops P and reduction loops R (`kernel.generic`'s semantics):

    for p in P[0][begin:end], P[1:]:                  # P[0] is split across threads
        acc = identity;  for r in R: acc = combine(acc, reduce(inputs at p, r))
        parallel epilogue: out[p] = compute(inputs at p, acc)
        row epilogue:      hoisted = row-invariant compute ops
                           for r in R: out[p, r] = compute(inputs at p, r, acc, hoisted)

A kernel that ends a chain's row reduction may carry the one before it ahead of its own rows
inside its reduction loop, and run its row epilogue one row behind (`KernelLowering.carry`;
carried_rows.py).

Short rows. LLVM's vector loop takes VECTOR_STEP elements a step, so a shorter row would run
in the scalar remainder. A row loop of a symbolic width is therefore emitted twice: a copy
whose `llvm.loop` ID asks the vectoriser to fold the remainder into masked vector iterations
(`irutil.tail_folded_loop`), taken for short and ragged rows (TAIL_FOLDED_BELOW), and the
plain loop, which is faster for long rows and multiples of VECTOR_STEP.

Column reductions. When the reduced inputs are contiguous along the last parallel loop but not
along the innermost reduction loop (`sum(x, axis=0)`), the nest above would stride through
memory. Instead the last parallel loop runs in blocks of COLUMN_BLOCK points, each with a row
of accumulators on the stack: `for r: for j in block: acc[j] = combine(acc[j], ...)`, a
unit-stride inner loop that vectorises without reassociating anything. Kernels without
parallel dims (full reductions) are split across threads by `reductions.py`.

Reassociation. Float `add`/`mul` accumulations carry the `reassoc` fast-math flag and nothing
else: LLVM may split a sum into vector lanes and unrolled partial sums, so a reduction's
rounding differs from a left-to-right sum by normal floating-point error (tests allow for
it). `max`/`min` use `llvm.maximum`/`llvm.minimum` (NaN-propagating, vectorisable unflagged).

Threads. The kernel is outlined as `void K(ptr dims, ptr buffers..., i64 begin, i64 end)`
with `noalias` buffers (an op's result never shares memory with its operands) and a task
wrapper `void K.task(ptr ctx, i64 begin, i64 end)` for `tensorc_parallel_for`, whose grain
makes a chunk worth at least `PARALLEL_MIN_WORK` body-op evaluations: small kernels run on
the calling thread without touching the pool.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import llvmlite.ir as ir

from tensorc.codegen.cpu.irutil import (
    I64,
    PTR,
    VOID,
    call_parallel_for,
    combine,
    counted_loop,
    element_pointer,
    intrinsic,
    load_element,
    load_pointers,
    plain_scalar_loop,
    register_type,
    smax_i64,
    smin_i64,
    stack_array,
    store_element,
    store_pointers,
    tail_folded_loop,
)
from tensorc.codegen.cpu.row_epilogue import row_invariant_divisors, stash_plan
from tensorc.codegen.cpu.scalar import EXPENSIVE_OPS, ScalarLowering, constant
from tensorc.codegen.cpu.sizes import SizeEmitter
from tensorc.codegen.cpu.streaming import STAGE_ELEMENTS, StagedStores, plan_staging
from tensorc.ir.affine import AffineMap
from tensorc.ir.core import Block, Operation, Value
from tensorc.ir.dialects.kernel import (
    PARALLEL,
    GenericOp,
    IndexOp,
    YieldOp,
    combiner_identity,
    row_invariant_ops,
)
from tensorc.ir.dims import DimExpr, prod
from tensorc.ir.dtypes import DType
from tensorc.ir.types import TensorType

if TYPE_CHECKING:
    from tensorc.codegen.cpu.carried_rows import RowPipeline

PARALLEL_MIN_WORK = 1 << 15
COLUMN_BLOCK = 256
# A row loop of a symbolic width gets a copy with its remainder folded into masked vector
# iterations (`irutil.tail_folded_loop`), run for rows shorter than VECTOR_STEP (where the
# plain vector loop, 16 lanes interleaved 4, does not run at all) and for rows shorter than
# TAIL_FOLDED_BELOW that are not a multiple of it. Softmax with the folded loop at every width,
# folded/plain time: 0.50 at 10, 0.31 at 16, 0.82 at 100, 0.80 at 200, 0.48 at 255, 0.83 at
# 300, 0.74 at 511; but 1.14 at 64, 1.27 at 256, 1.44 at 448, 1.16 at 1000, 1.40 at 1024.
VECTOR_STEP = 64
TAIL_FOLDED_BELOW = 512
_EXPENSIVE_WEIGHT = 8


# ----- addressing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    """How a kernel walks one operand or result: offsets per domain dim (see module doc)."""

    tensor: TensorType
    coefficient_terms: tuple[tuple[tuple[int, int], ...], ...]  # per dim: (coef, axis) pairs
    coefficients: tuple[DimExpr, ...]  # per dim: sum of coef * stride (structural)
    offset_terms: tuple[tuple[DimExpr, int], ...]  # (offset, axis) pairs

    @property
    def dtype(self) -> DType:
        return self.tensor.dtype

    @staticmethod
    def of(tensor: TensorType, amap: AffineMap) -> Access:
        shape = tensor.shape
        strides = [prod(shape[axis + 1 :]) for axis in range(len(shape))]
        forms = amap.linear_forms()
        terms: list[list[tuple[int, int]]] = [[] for _ in range(amap.num_dims)]
        for axis, form in enumerate(forms):
            for dim, coefficient in form.coefficients:
                terms[dim].append((coefficient, axis))
        coefficients = tuple(
            sum((c * strides[axis] for c, axis in dim_terms), DimExpr.const(0))
            for dim_terms in terms
        )
        offsets = tuple((form.offset, axis) for axis, form in enumerate(forms) if form.offset != 0)
        return Access(tensor, tuple(tuple(t) for t in terms), coefficients, offsets)

    def coefficient(self, sizes: SizeEmitter, dim: int) -> ir.Value:
        expr = self.coefficients[dim]
        if expr.is_const:
            return I64(expr.value or 0)
        strides = sizes.strides(self.tensor.shape)
        total: ir.Value | None = None
        for coefficient, axis in self.coefficient_terms[dim]:
            term = strides[axis]
            if coefficient != 1:
                term = sizes.builder.mul(term, I64(coefficient))
            total = term if total is None else sizes.builder.add(total, term)
        return total if total is not None else I64(0)

    def base(self, sizes: SizeEmitter) -> ir.Value:
        strides = sizes.strides(self.tensor.shape)
        total: ir.Value | None = None
        for offset, axis in self.offset_terms:
            term = sizes.builder.mul(sizes.value(offset), strides[axis])
            total = term if total is None else sizes.builder.add(total, term)
        return total if total is not None else I64(0)


@dataclass
class Loop:
    """One loop of the nest: consecutive domain dims of one kind, merged."""

    dims: list[int]
    kind: str

    @property
    def innermost(self) -> int:
        return self.dims[-1]


def plan_loops(op: GenericOp, accesses: Sequence[Access]) -> list[Loop]:
    """The domain dims grouped into loops (see Loop collapsing in the module doc)."""
    indexed = {
        body_op.dim
        for block in (op.reduce_block, op.compute_block)
        for body_op in block.ops
        if isinstance(body_op, IndexOp)
    }
    sizes = op.domain_sizes
    loops: list[Loop] = []
    for dim, kind in enumerate(op.iterators):
        if loops and loops[-1].kind == kind and mergeable(
            loops[-1].innermost, dim, sizes, accesses, indexed
        ):
            loops[-1].dims.append(dim)
        else:
            loops.append(Loop([dim], kind))
    return loops


def mergeable(
    outer: int, inner: int, sizes: Sequence[DimExpr], accesses: Sequence[Access], indexed: set
) -> bool:
    """Whether domain dims `outer` and `outer + 1 == inner` can be one loop."""
    if outer in indexed or inner in indexed:
        return False
    return all(a.coefficients[outer] == a.coefficients[inner] * sizes[inner] for a in accesses)


def pool_grain(sizes: SizeEmitter, work: ir.Value) -> ir.Value:
    """The pool's grain for steps of `work` body-op evaluations each: enough steps that a
    chunk is worth at least PARALLEL_MIN_WORK (small loops then run on the calling thread)."""
    b = sizes.builder
    work = smax_i64(b, work, I64(1))
    return b.add(b.udiv(I64(PARALLEL_MIN_WORK), work), I64(1))


def is_compute_bound(op: GenericOp) -> bool:
    """Whether the body has an expensive op (a transcendental, a division): its loop then
    runs below memory speed here, so streaming its stores gains nothing (streaming.py)."""
    return any(
        body_op.name in EXPENSIVE_OPS
        for block in (op.reduce_block, op.compute_block)
        for body_op in block.ops
    )


def body_cost(op: GenericOp) -> int:
    """A rough count of scalar operations per domain point (for the parallel grain)."""
    cost = 1
    for block in (op.reduce_block, op.compute_block):
        for body_op in block.ops:
            cost += _EXPENSIVE_WEIGHT if body_op.name in EXPENSIVE_OPS else 1
    return cost


# ----- the outlined kernel ------------------------------------------------------------------


class KernelLowering:
    """Emits one `kernel.generic` as `name` (the loop nest) and `name.task` (the pool task)."""

    def __init__(
        self,
        module: ir.Module,
        name: str,
        op: GenericOp,
        symbols: Sequence[str],
        streamable: Sequence[int] = (),
    ):
        """`streamable`: the outputs that are the caller's result arrays, which a large call
        may write with streaming stores (streaming.py)."""
        self.module = module
        self.name = name
        self.op = op
        self.symbols = list(symbols)
        self.inputs = [Access.of(v.type, m) for v, m in zip(op.inputs, op.input_maps)]
        self.outputs = [Access.of(r.type, m) for r, m in zip(op.results, op.output_maps)]
        self.accesses = self.inputs + self.outputs
        self.loops = plan_loops(op, self.accesses)
        self.parallel_loops = [loop for loop in self.loops if loop.kind == PARALLEL]
        self.reduction_loops = [loop for loop in self.loops if loop.kind != PARALLEL]
        self.columns = self._is_column_reduction()
        self.first_reduction_range: tuple[ir.Value, ir.Value] | None = None
        self.stash = stash_plan(op, self.outputs) if not self.columns else None
        self.staging_plan = plan_staging(op, self.loops, self.outputs, streamable,
                                         is_compute_bound(op))
        self.streamable = tuple(streamable)
        self.staging: StagedStores | None = None  # the plan in the bound function
        self.pipeline: RowPipeline | None = None  # see `carry`
        # while the passenger rides along: it and the offsets of its row ahead
        self.rider: tuple[KernelLowering, list[ir.Value]] | None = None
        # while a lagged row loop stashes into row buffers instead of the output
        # (carried_rows.py, Stash rows): the buffer this row's epilogue reads, and the one the
        # next row's reduction writes
        self.stash_rows: tuple[ir.Value, ir.Value] | None = None

    def _is_column_reduction(self) -> bool:
        """Whether the reduced inputs are contiguous along the last parallel loop and not along
        the innermost reduction loop (a sum over axis 0): then the reduction runs over blocks
        of that parallel loop, see `_column_blocks`."""
        op = self.op
        if not (op.has_reduction and self.parallel_loops and self.reduction_loops):
            return False
        if op.is_row_epilogue:
            return False
        last = self.parallel_loops[-1].innermost
        inner = self.reduction_loops[-1].innermost
        reduced = [a for k, a in enumerate(self.inputs) if op.input_uses_reduction(k)]
        return bool(reduced) and all(
            a.coefficients[last] == 1 and a.coefficients[inner] != 1 for a in reduced
        )

    # ----- the caller's side --------------------------------------------------------------
    def emit_launch(
        self,
        builder: ir.IRBuilder,
        sizes: SizeEmitter,
        dims: ir.Value,
        buffers: Sequence[ir.Value],
        context: ir.Value,
    ) -> None:
        """Run the kernel over its domain from the entry point; `context` is a stack array of
        `len(buffers) + 1` pointers."""
        task = self.emit()
        store_pointers(builder, context, [dims, *buffers])
        count = self._loop_size(sizes, self.parallel_loops[0]) if self.parallel_loops else I64(1)
        grain = pool_grain(sizes, self.work_per_step(sizes))
        call_parallel_for(builder, task, context, count, grain)

    def _loop_size(self, sizes: SizeEmitter, loop: Loop) -> ir.Value:
        return sizes.product(self.op.domain_sizes[d] for d in loop.dims)

    # ----- the outlined functions ---------------------------------------------------------
    def emit(self) -> ir.Function:
        """The kernel and its pool task; returns the task."""
        return self.task_wrapper(self.emit_nest(), len(self.accesses) + 1)

    def emit_nest(self) -> ir.Function:
        """`void name(ptr dims, ptr buffers..., i64 begin, i64 end)`: the nest over
        `[begin, end)` of the first parallel loop (all of it without parallel loops)."""
        pipeline = self.pipeline
        extra = [PTR] * len(pipeline.passenger.accesses) if pipeline is not None else []
        function = self.open_function(self.name, [*extra, I64, I64])
        begin, end = function.args[-2:]
        if pipeline is not None:
            pipeline.board(function.args[len(self.accesses) + 1 : -2])
        self._parallel(0, self.base_offsets(), begin, end)
        self.close_function()
        return function

    # ----- pipelining a passenger ---------------------------------------------------------
    def carry(self, pipeline: RowPipeline) -> None:
        """Compute `pipeline.passenger` -- the row reduction before this kernel in a chain,
        whose result this kernel reads row-locally -- inside this kernel's row loop, ahead of
        it (carried_rows.py)."""
        self.pipeline = pipeline

    def work_per_step(self, sizes: SizeEmitter) -> ir.Value:
        """Body-op evaluations per index of the first parallel loop (for the pool's grain)."""
        first = self.parallel_loops[0] if self.parallel_loops else None
        inner = [loop for loop in self.loops if loop is not first]
        work: ir.Value = I64(body_cost(self.op))
        for loop in inner:
            work = sizes.builder.mul(work, self._loop_size(sizes, loop))
        return work

    def task_wrapper(self, function: ir.Function, pointers: int) -> ir.Function:
        """`void name.task(ptr ctx, i64 begin, i64 end)` calling `function` with the first
        `pointers` pointers of the context array, then begin and end."""
        task_type = ir.FunctionType(VOID, [PTR, I64, I64])
        task = ir.Function(self.module, task_type, f"{function.name}.task")
        task.linkage = "internal"
        context, begin, end = task.args
        builder = ir.IRBuilder(task.append_basic_block("entry"))
        builder.call(function, [*load_pointers(builder, context, pointers), begin, end])
        builder.ret_void()
        return task

    def open_function(self, name: str, extra: Sequence[ir.Type]) -> ir.Function:
        """An internal, always-inlined `void name(ptr dims, ptr buffers..., extra...)` with the
        per-function state (prologue, sizes, builder, strides, accumulators) set up."""
        params = [PTR] * (len(self.accesses) + 1) + list(extra)
        function = ir.Function(self.module, ir.FunctionType(VOID, params), name)
        function.linkage = "internal"
        function.attributes.add("alwaysinline")
        dims, *buffers = function.args[: len(self.accesses) + 1]
        for argument in buffers:
            argument.add_attribute("noalias")
            argument.add_attribute("captures(none)")
        prologue = function.append_basic_block("entry")
        self._start = function.append_basic_block("start")
        self.prologue = ir.IRBuilder(prologue)
        sizes = SizeEmitter(self.prologue, dims, self.symbols)
        self.bind(self.prologue, sizes, ir.IRBuilder(self._start), list(buffers))
        self.prepare_nest()
        return function

    def bind(
        self,
        prologue: ir.IRBuilder,
        sizes: SizeEmitter,
        builder: ir.IRBuilder,
        buffers: list[ir.Value],
    ) -> None:
        """The function this kernel is emitted into: where sizes and accumulators go
        (`prologue`), where the code goes (`builder`), and this kernel's buffers there."""
        self.prologue = prologue
        self.sizes = sizes
        self.builder = builder
        self.buffers = buffers
        self.indices: dict[int, ir.Value] = {}
        self.scalars = ScalarLowering(self.builder, self.sizes, self.indices.__getitem__)

    def prepare_nest(self) -> None:
        """The nest's values in the bound function: loop sizes, strides, accumulators."""
        self.loop_sizes = [self._loop_size(self.sizes, loop) for loop in self.loops]
        self.steps = [
            [access.coefficient(self.sizes, loop.innermost) for loop in self.loops]
            for access in self.accesses
        ]
        self.accumulators = [
            self.prologue.alloca(register_type(t.dtype), name=f"acc{j}")
            for j, t in enumerate(self.op.accumulator_types)
        ]
        self.column_accumulators = [
            stack_array(self.prologue, ir.ArrayType(register_type(t.dtype), COLUMN_BLOCK),
                        f"column_acc{j}", align=64)
            for j, t in enumerate(self.op.accumulator_types)
            if self.columns
        ]
        if self.staging_plan is not None:
            self.staging = StagedStores(self.staging_plan, self.outputs, self.prologue,
                                        self.sizes)

    def close_function(self) -> None:
        if self.staging is not None:
            self.staging.finish(self.builder)
        if self.pipeline is not None:
            self.pipeline.finish(self.builder)
        self.builder.ret_void()
        self.prologue.branch(self._start)

    def base_offsets(self) -> list[ir.Value]:
        return [access.base(self.sizes) for access in self.accesses]

    # ----- the nest -----------------------------------------------------------------------
    def _parallel(
        self, level: int, offsets: list[ir.Value], begin: ir.Value, end: ir.Value
    ) -> None:
        if level == len(self.parallel_loops):
            self.point(offsets)
            return
        if level == 0 and self.pipeline is not None:
            self.pipeline.emit_rows(offsets, begin, end)
            return
        loop_position = self.loops.index(self.parallel_loops[level])
        start, stop = (begin, end) if level == 0 else (I64(0), self.loop_sizes[loop_position])
        if self.columns and level == len(self.parallel_loops) - 1:
            self._column_blocks(loop_position, offsets, start, stop)
            return

        def body(inner: list[ir.Value]) -> None:
            self._parallel(level + 1, inner, begin, end)

        def loop() -> None:
            with counted_loop(self.builder, start, stop, f"p{level}") as index:
                body(self.advance(offsets, loop_position, index))

        staging = self.staging
        if staging is None or self.loops[loop_position] is not staging.loop:
            loop()
            return
        with self.builder.if_else(staging.active(self.builder, start, stop)) as (staged, plain):
            with staged:
                self._staged_blocks(staging, loop_position, start, stop, offsets, body)
            with plain:
                loop()

    def _staged_blocks(
        self, staging: StagedStores, loop_position: int, start: ir.Value, stop: ir.Value,
        offsets: list[ir.Value], body,
    ) -> None:
        """The innermost loop over [start, stop) in blocks of STAGE_ELEMENTS: each block
        writes the staged outputs into their stack buffers, then streams them to the outputs
        (streaming.py)."""
        b = self.builder
        count = b.sub(stop, start)
        blocks = b.udiv(b.add(count, I64(STAGE_ELEMENTS - 1)), I64(STAGE_ELEMENTS))
        with counted_loop(b, I64(0), blocks, "stage") as block:
            first = b.add(start, b.mul(block, I64(STAGE_ELEMENTS)))
            last = smin_i64(b, b.add(first, I64(STAGE_ELEMENTS)), stop)
            at_first = self.advance(offsets, loop_position, first)
            targets = [self.output_pointer(index, at_first) for index in staging.outputs]
            in_buffers = list(offsets)
            outputs = list(self.buffers)
            for index, buffer in zip(staging.outputs, staging.buffers):
                position = len(self.inputs) + index
                in_buffers[position] = b.sub(I64(0), first)  # + index: the place in the block
                self.buffers[position] = buffer
            with counted_loop(b, first, last, "staged") as index:
                body(self.advance(in_buffers, loop_position, index))
            self.buffers[:] = outputs
            staging.stream(b, targets, b.sub(last, first))

    def _reduction(
        self, level: int, offsets: list[ir.Value], body, loop_id: ir.MDValue | None = None
    ) -> None:
        """The reduction loops from `level` in; `loop_id` (for level 0) overrides the choice
        of a tail-folded copy."""
        if level == len(self.reduction_loops):
            body(offsets)
            return
        loop_position = self.loops.index(self.reduction_loops[level])
        start, stop = I64(0), self.loop_sizes[loop_position]
        if level == 0 and self.first_reduction_range is not None:
            start, stop = self.first_reduction_range

        def loop(loop_id: ir.MDValue | None = None) -> None:
            with counted_loop(self.builder, start, stop, f"r{level}", loop_id=loop_id) as index:
                self._reduction(level + 1, self.advance(offsets, loop_position, index), body)

        if loop_id is not None or not self._folds_short_rows(loop_position):
            loop(loop_id)
            return
        b = self.builder
        width = b.sub(stop, start)
        ragged = b.and_(
            b.icmp_signed("<", width, I64(TAIL_FOLDED_BELOW)),
            b.icmp_signed("!=", b.and_(width, I64(VECTOR_STEP - 1)), I64(0)),
        )
        short = b.or_(b.icmp_signed("<", width, I64(VECTOR_STEP)), ragged)
        with b.if_else(short) as (folded, plain):
            with folded:
                loop(tail_folded_loop(self.module))
            with plain:
                loop()

    def _folds_short_rows(self, loop_position: int) -> bool:
        """Whether the row loop at `loop_position` gets a tail-folded copy for short and
        ragged rows (TAIL_FOLDED_BELOW): it is the innermost loop of a row nest and its width
        is symbolic (LLVM unrolls static short rows whole)."""
        loop = self.loops[loop_position]
        if self.columns or not self.parallel_loops or loop is not self.loops[-1]:
            return False
        return any(self.op.domain_sizes[dim].value is None for dim in loop.dims)

    def advance(self, offsets: list[ir.Value], loop_position: int, index: ir.Value) -> list:
        for dim in self.loops[loop_position].dims:
            self.indices[dim] = index  # unmerged whenever kernel.index reads it
        innermost = self.loops[loop_position].innermost
        advanced = []
        for access, offset, steps in zip(self.accesses, offsets, self.steps):
            coefficient = access.coefficients[innermost]
            if coefficient == 0:
                advanced.append(offset)
                continue
            term = index if coefficient == 1 else self.builder.mul(index, steps[loop_position])
            advanced.append(self.builder.add(offset, term))
        return advanced

    def point(self, offsets: list[ir.Value]) -> None:
        op = self.op
        if op.has_reduction:
            self.accumulate(offsets)
        if not op.is_row_epilogue:
            self.finish_point(offsets)
            return
        self.row_epilogue(offsets, self.accumulated())

    def row_epilogue(
        self,
        offsets: list[ir.Value],
        values: dict[int, ir.Value],
        following: list[ir.Value] | None = None,
    ) -> None:
        """`for r: out[p, r] = compute(inputs at p, r, acc, hoisted)` for the row at `offsets`
        with its accumulators' `values`. With `following` (the offsets of the next row), the
        same loop also takes the next row's reduction step, its middle in vectors when the
        pipeline has a vector plan (carried_rows.py, Lagged epilogue; vector_rows.py)."""
        op = self.op
        hoisted = row_invariant_ops(op)
        hoisted_ids = {id(o) for o in hoisted}
        self.emit_block(op.compute_block, hoisted, values, offsets)
        varying = [o for o in op.compute_block.ops if id(o) not in hoisted_ids]
        divisors = row_invariant_divisors(varying, values)
        row_position = self.loops.index(self.reduction_loops[0])
        row_dim = self.loops[row_position].innermost
        # a lagged row loop (`following`) always has the pipeline's vector plan
        vectors = self.pipeline.vectors if following is not None and self.pipeline else None

        def epilogue(inner: list[ir.Value], reciprocals: dict[int, ir.Value]) -> None:
            if following is not None:
                index = self.indices[row_dim]
                self._accumulate_step(self.advance(following, row_position, index))
            row_values = dict(values)
            if self.stash is not None:
                stashed = load_element(self.builder, self._stash_pointer(inner, reading=True),
                                       self.stash_dtype)
                row_values[id(self.stash[1].result)] = stashed
            outputs = self.emit_block(op.compute_block, varying, row_values, inner, reciprocals)
            self._store(outputs, inner)

        def scalar_loop(reciprocals: dict[int, ir.Value], start: ir.Value | None = None,
                        stop: ir.Value | None = None) -> None:
            """Over the row, or over [start, stop): a head or tail of a few elements."""
            self.first_reduction_range = None if start is None else (start, stop)
            loop_id = None if start is None else plain_scalar_loop(self.module)
            self._reduction(0, offsets, lambda inner: epilogue(inner, reciprocals), loop_id)
            self.first_reduction_range = None

        def loop(reciprocals: dict[int, ir.Value]) -> None:
            if vectors is None:
                scalar_loop(reciprocals)
                return
            vectors.emit_row(offsets, following, values, reciprocals,
                             lambda start, stop: scalar_loop(reciprocals, start, stop))

        if not divisors:
            loop({})
            return
        reciprocals, exact = self._reciprocals(divisors, values)
        with self.builder.if_else(exact) as (fast, slow):
            with fast:
                loop(reciprocals)
            with slow:
                if vectors is None:
                    scalar_loop({})
                else:  # a rare row in a lagged loop: one plain loop, no vectors
                    scalar_loop({}, I64(0), self.loop_sizes[row_position])

    def accumulated(self, slots: Sequence[ir.Value] | None = None) -> dict[int, ir.Value]:
        """The compute block's accumulator arguments, loaded from `slots` (default this
        kernel's own accumulators; none without a reduction)."""
        op = self.op
        compute_args = op.compute_block.args[len(op.inputs) :]
        return {
            id(arg): self.builder.load(slot, typ=register_type(acc_type.dtype))
            for arg, slot, acc_type in zip(compute_args, self._slots(slots),
                                           op.accumulator_types)
        }

    def _slots(self, slots: Sequence[ir.Value] | None) -> Sequence[ir.Value]:
        return self.accumulators if slots is None else slots

    def finish_point(
        self, offsets: list[ir.Value], slots: Sequence[ir.Value] | None = None
    ) -> None:
        """`out[p] = compute(inputs at p, acc)`: the plain epilogue (accumulators in `slots`,
        default this kernel's own)."""
        op = self.op
        values = self.accumulated(slots)
        outputs = self.emit_block(op.compute_block, op.compute_block.ops, values, offsets)
        self._store(outputs, offsets)

    def _reciprocals(
        self, divisors: Sequence[Operation], values: dict[int, ir.Value]
    ) -> tuple[dict[int, ir.Value], ir.Value]:
        """`1/d` for each row-invariant divisor `d` (keyed by the dividing op) and whether all
        of them are exact enough to use: |d| within [2^-(emax-2), 2^(emax-2)] so that 1/d is a
        normal number (row_epilogue.py, Row-invariant division)."""
        b = self.builder
        reciprocals: dict[int, ir.Value] = {}
        exact: ir.Value = ir.Constant(ir.IntType(1), 1)
        for div in divisors:
            divisor = values[id(div.rhs)]
            limit = 2.0 ** (125 if isinstance(divisor.type, ir.FloatType) else 1021)
            fabs = intrinsic(self.module, "llvm.fabs", divisor.type, 1)
            magnitude = b.call(fabs, [divisor])
            low = b.fcmp_ordered(">=", magnitude, ir.Constant(divisor.type, 1 / limit))
            high = b.fcmp_ordered("<=", magnitude, ir.Constant(divisor.type, limit))
            exact = b.and_(exact, b.and_(low, high))
            reciprocals[id(div)] = b.fdiv(ir.Constant(divisor.type, 1.0), divisor)
        return reciprocals, exact

    def output_pointer(self, index: int, offsets: list[ir.Value]) -> ir.Value:
        position = len(self.inputs) + index
        return element_pointer(self.builder, self.buffers[position], offsets[position],
                               self.outputs[index].dtype)

    @property
    def stash_dtype(self) -> DType:
        """The dtype of the stashed value: its output's (row_epilogue.py, Stashing)."""
        assert self.stash is not None
        return self.outputs[self.stash[0]].dtype

    def _stash_pointer(self, offsets: list[ir.Value], reading: bool) -> ir.Value:
        """Where the stash of the point at `offsets` is (row_epilogue.py, Stashing): in the
        output, or at its place in a row buffer while `stash_rows` are set."""
        if self.stash_rows is None:
            return self.output_pointer(self.stash[0], offsets)
        return self.stash_row_pointer(self.indices[self.reduction_loops[0].innermost], reading)

    def stash_row_pointer(self, j: ir.Value, reading: bool) -> ir.Value:
        """Element `j` of the row buffer the epilogue reads (`reading`) or the next row's
        reduction writes (carried_rows.py, Stash rows)."""
        assert self.stash_rows is not None
        read, write = self.stash_rows
        return element_pointer(self.builder, read if reading else write, j, self.stash_dtype)

    def _column_blocks(
        self, loop_position: int, offsets: list[ir.Value], start: ir.Value, stop: ir.Value
    ) -> None:
        """The last parallel loop in blocks of COLUMN_BLOCK points, each with its row of
        accumulators on the stack: `for r: for j in block: acc[j] = combine(acc[j], ...)`,
        whose inner loop is unit-stride (and needs no reassociation to vectorise)."""
        op, b = self.op, self.builder
        count = b.sub(stop, start)
        blocks = b.udiv(b.add(count, I64(COLUMN_BLOCK - 1)), I64(COLUMN_BLOCK))
        types = [register_type(t.dtype) for t in op.accumulator_types]

        def slots(j: ir.Value) -> list[ir.Value]:
            return [
                b.gep(array, [j], inbounds=True, source_etype=value_type)
                for array, value_type in zip(self.column_accumulators, types)
            ]

        with counted_loop(b, I64(0), blocks, "block") as block:
            first = b.add(start, b.mul(block, I64(COLUMN_BLOCK)))
            width = smin_i64(b, I64(COLUMN_BLOCK), b.sub(stop, first))
            with counted_loop(b, I64(0), width, "init") as j:
                self.start_accumulators(slots(j))

            def step(inner: list[ir.Value]) -> None:
                with counted_loop(b, I64(0), width, "column") as j:
                    point = self.advance(inner, loop_position, b.add(first, j))
                    values = self.emit_block(op.reduce_block, op.reduce_block.ops, {}, point)
                    self._combine_into(slots(j), values)

            self._reduction(0, offsets, step)
            with counted_loop(b, I64(0), width, "finish") as j:
                point = self.advance(offsets, loop_position, b.add(first, j))
                self.finish_point(point, slots(j))

    def accumulate(self, offsets: list[ir.Value]) -> None:
        self.start_accumulators()
        self._reduction(0, offsets, self._accumulate_step)

    def start_accumulators(self, slots: Sequence[ir.Value] | None = None) -> None:
        """Each accumulator (in `slots`, default this kernel's own) set to its identity."""
        op = self.op
        for slot, kind, acc_type in zip(self._slots(slots), op.reductions,
                                        op.accumulator_types):
            identity = combiner_identity(kind, acc_type.dtype)
            self.builder.store(constant(acc_type.dtype, identity), slot)

    def _combine_into(self, slots: Sequence[ir.Value], values: Sequence[ir.Value]) -> None:
        """`slot = combine(slot, value)` for each accumulator."""
        op = self.op
        for slot, kind, value, acc_type in zip(slots, op.reductions, values,
                                               op.accumulator_types):
            dtype = acc_type.dtype
            current = self.builder.load(slot, typ=register_type(dtype))
            self.builder.store(combine(self.builder, kind, dtype, current, value), slot)

    def _accumulate_step(self, inner: list[ir.Value]) -> None:
        """One reduction step at `inner`, and the passenger's at the same reduction index of
        its row ahead, when one rides along (`carry`)."""
        op = self.op
        values = self.emit_block(op.reduce_block, op.reduce_block.ops, {}, inner)
        if self.stash is not None:
            pointer = self._stash_pointer(inner, reading=False)
            store_element(self.builder, values[0], pointer, self.stash_dtype)
        self._combine_into(self.accumulators, values)
        if self.rider is not None:
            passenger, row = self.rider
            passenger._accumulate_step(passenger.advance(row, 1, self.indices[1]))

    def emit_block(
        self,
        block: Block,
        ops: Sequence[Operation],
        values: dict[int, ir.Value],
        offsets: list[ir.Value],
        reciprocals: dict[int, ir.Value] | None = None,
    ) -> list[ir.Value]:
        """Emit `ops` of `block`; returns the yielded values when the yield is among them.
        Ops whose value is already in `values` (stashed) are skipped; divisions in
        `reciprocals` become multiplications by the given reciprocal."""
        yielded: list[ir.Value] = []
        for body_op in ops:
            if body_op.results and id(body_op.result) in values:
                continue
            operands = [self._operand(block, v, values, offsets) for v in body_op.operands]
            if isinstance(body_op, YieldOp):
                yielded = operands
                continue
            if reciprocals and id(body_op) in reciprocals:
                values[id(body_op.result)] = self.builder.fmul(
                    operands[0], reciprocals[id(body_op)]
                )
                continue
            values[id(body_op.result)] = self.scalars.emit(body_op, operands)
        return yielded

    def _operand(
        self, block: Block, value: Value, values: dict[int, ir.Value], offsets: list[ir.Value]
    ) -> ir.Value:
        if id(value) in values:
            return values[id(value)]
        position = block.args.index(value)  # an input not loaded yet
        access = self.inputs[position]
        pointer = element_pointer(self.builder, self.buffers[position], offsets[position],
                                  access.dtype)
        loaded = load_element(self.builder, pointer, access.dtype)
        values[id(value)] = loaded
        return loaded

    def _store(self, outputs: list[ir.Value], offsets: list[ir.Value]) -> None:
        for index, value in enumerate(outputs):
            self._store_output(index, value, offsets)

    def _store_output(self, index: int, value: ir.Value, offsets: list[ir.Value]) -> None:
        pointer = self.output_pointer(index, offsets)
        store_element(self.builder, value, pointer, self.outputs[index].dtype)
