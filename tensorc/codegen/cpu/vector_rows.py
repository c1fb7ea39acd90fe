"""Vector rows: the middle of a lagged row loop as explicit vectors, with streaming stores.

A lagged row loop (carried_rows.py) writes row p's output while it reduces rows p + 1 and
p + 2. Its output is a large function result, which is written fastest with non-temporal
stores (streaming.py). But LLVM's loop vectoriser keeps a loop scalar when a store in it is
non-temporal and not aligned to the vector, which an element's store never is; and staging
the output through a stack buffer, as elementwise kernels do, costs more in this loop than
it saves (its block loop ends every reduction horizontally and spills the pointers of five
rows). So the loop over the row is emitted in three parts (a call lags only when it
streams, `VectorRows.active`):

    head:   j in [0, h)                 a plain scalar loop, h = elements up to the first output
                                        address aligned to LINE_BYTES
    middle: j in [h, h + k * lanes)     explicit vectors of LINE_BYTES (16 f32 or 8 f64):
                                        vector loads, the per-element ops on vectors, vector
                                        accumulators, and an aligned non-temporal store
    tail:   the rest                    a plain scalar loop

and the vector accumulators are folded into the scalar ones after the middle (a
reassociation, as LLVM's vectoriser makes: loops.py, Reassociation). Ops that are the same
for the whole row (layer norm's mean and reciprocal standard deviation) stay scalars and
are broadcast.

What qualifies (`plan_vector_rows`): a kernel whose epilogue lags (carried_rows.py), with one
output, a function result of f32 or f64 with unit stride along the row and not statically
small; rows not statically shorter than MIN_ROW; every op that runs per element, in the
kernel's reduction and epilogue and in the passenger's reduction, among VECTOR_OPS or
VECTOR_MATH on that dtype (comparisons give bools, which only `select` reads), with at most
one expensive op per element in the kernel and the passenger together
(`row_epilogue.expensive_per_element`); the inputs they read of that dtype, at unit or zero
stride along the row; float accumulations. Anything else keeps the carried scalar loop and
ordinary stores. A stash (softmax's `exp`) is stored to and
read from the row buffers as vectors (carried_rows.py, Stash rows), and max/min accumulate
off the NaN checks (`VectorAccumulator`).

Measured here, layer norm f32, A/B of builds interleaved in one process (`median_times`,
median of 31 calls, 3 to 8 rounds), against a streaming-store `x * 2` over the same array:

    rows          carried      lagged, plain stores   lagged, staged   lagged, vectors   x * 2
    4096x1024     0.72-0.86    0.71-0.89              0.84-1.07        0.60-0.76         0.56-0.68
    4096x1001     0.83-1.01                                            0.65-0.85         0.65-0.71
    1024x4096     1.01-1.08                                            0.86-0.97         0.62-0.67

(staged: blocks of 128 to 1024 elements, all slower than carried). The scalar head and tail
run as plain scalar loops (`irutil.plain_scalar_loop`): with LLVM's vector loop and its
tail-folded copy there, 4096x1024 took 0.64-0.79 ms against 0.60-0.76.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import llvmlite.ir as ir

from tensorc.codegen.cpu.irutil import (
    I32,
    I64,
    combine,
    counted_loop,
    element_pointer,
    intrinsic,
    itemsize,
    memory_type,
    register_type,
    splat,
)
from tensorc.codegen.cpu.row_epilogue import expensive_per_element
from tensorc.codegen.cpu.scalar import constant
from tensorc.codegen.cpu.streaming import (
    LINE_BYTES,
    fence_if,
    large_enough,
    statically_small,
)
from tensorc.ir.core import Block, Operation, Value
from tensorc.ir.dialects.kernel import (
    GenericOp,
    YieldOp,
    combiner_identity,
    row_invariant_ops,
)
from tensorc.ir.dtypes import DType

if TYPE_CHECKING:
    from tensorc.codegen.cpu.loops import KernelLowering

MIN_ROW = 256
# ops whose scalar lowering (scalar.py) is the same instructions on vectors
VECTOR_OPS = frozenset(
    {"tc.add", "tc.sub", "tc.mul", "tc.div", "tc.neg", "tc.abs", "tc.square", "tc.maximum",
     "tc.minimum", "tc.relu", "tc.select", "tc.stop_gradient", "tc.lt", "tc.le", "tc.gt",
     "tc.ge", "tc.eq", "tc.ne"}
)  # fmt: skip
# transcendentals whose polynomial (mathfns.py) is emitted on vectors as on scalars; a row
# loop may run one of them per element (row_epilogue.expensive_per_element)
VECTOR_MATH = frozenset({"tc.exp", "tc.log", "tc.tanh", "tc.sigmoid"})
_COMPARISONS = frozenset({"tc.lt", "tc.le", "tc.gt", "tc.ge", "tc.eq", "tc.ne"})
_FLOAT_REDUCTIONS = frozenset({"add", "mul", "max", "min"})
_VECTOR_DTYPES = (DType.F32, DType.F64)

ScalarLoop = Callable[[ir.Value, ir.Value], None]


@dataclass(frozen=True)
class RowOps:
    """A body block's ops split by what they depend on: once per row (`per_row`, broadcast
    as scalars) or per element (`per_element`, on vectors); the yield is in neither."""

    block: Block
    per_row: tuple[Operation, ...]
    per_element: tuple[Operation, ...]

    @staticmethod
    def of(op: GenericOp, block: Block) -> RowOps:
        per_row = tuple(row_invariant_ops(op, block))
        skip = {id(body_op) for body_op in per_row}
        return RowOps(block, per_row, tuple(
            o for o in block.ops if id(o) not in skip and not isinstance(o, YieldOp)
        ))


@dataclass(frozen=True)
class VectorPlan:
    """The dtype of the row's values, how many fit a line, and the split of the kernel's
    reduction and epilogue and of the passenger's reduction."""

    dtype: DType
    lanes: int
    reduction: RowOps
    epilogue: RowOps
    passenger: RowOps


def plan_vector_rows(kernel: KernelLowering, passenger: KernelLowering) -> VectorPlan | None:
    """The vector plan of `kernel`'s lagged row loop carrying `passenger`, or None when it
    keeps the scalar loop (module doc)."""
    op = kernel.op
    if len(kernel.outputs) != 1 or 0 not in kernel.streamable:
        return None
    output = kernel.outputs[0]
    dtype = output.dtype
    row = kernel.reduction_loops[0].innermost
    if dtype not in _VECTOR_DTYPES or output.coefficients[row] != 1:
        return None
    if statically_small(output):
        return None
    width = op.domain_sizes[row].value
    if width is not None and width < MIN_ROW:
        return None
    stashed = kernel.stash[1] if kernel.stash is not None else None
    if expensive_per_element(op, stashed) + expensive_per_element(passenger.op) > 1:
        return None  # compute-bound
    reduction, epilogue = RowOps.of(op, op.reduce_block), RowOps.of(op, op.compute_block)
    riding = RowOps.of(passenger.op, passenger.op.reduce_block)
    for nest, ops in ((kernel, reduction), (kernel, epilogue), (passenger, riding)):
        if not _vectorisable(nest, ops, row, dtype):
            return None
    for nest in (kernel, passenger):
        kinds = zip(nest.op.reductions, nest.op.accumulator_types)
        if not all(kind in _FLOAT_REDUCTIONS and t.dtype == dtype for kind, t in kinds):
            return None
    return VectorPlan(dtype, LINE_BYTES // itemsize(dtype), reduction, epilogue, riding)


def _vectorisable(nest: KernelLowering, ops: RowOps, row: int, dtype: DType) -> bool:
    """Whether the per-element ops are VECTOR_OPS on `dtype` (or bool), and the inputs they
    (or the yield) read are of `dtype`, at unit or zero stride along the row. Inputs only
    row-invariant ops read (a size passed as an `i32`) are loaded as scalars."""
    block = ops.block
    read = {id(v) for o in [*ops.per_element, block.terminator] for v in o.operands}
    for index, arg in enumerate(block.args[: len(nest.inputs)]):
        access = nest.inputs[index]
        if id(arg) in read and (access.dtype != dtype or access.coefficients[row] not in (0, 1)):
            return False
    for body_op in ops.per_element:
        if body_op.name not in VECTOR_OPS and body_op.name not in VECTOR_MATH:
            return False
        operands = [value.type.dtype for value in body_op.operands]
        result = body_op.result.type.dtype
        if body_op.name in _COMPARISONS:
            expected = ([dtype] * len(operands), DType.BOOL)
        elif body_op.name == "tc.select":
            expected = ([DType.BOOL, dtype, dtype], dtype)
        else:
            expected = ([dtype] * len(operands), dtype)
        if (operands, result) != expected:
            return False
    return True


class VectorRows:
    """A vector plan in the kernel's nest function (module doc)."""

    def __init__(self, plan: VectorPlan, kernel: KernelLowering,
                 passenger: KernelLowering) -> None:
        self.plan = plan
        self.kernel = kernel
        self.passenger = passenger
        self.vector_type = ir.VectorType(register_type(plan.dtype), plan.lanes)
        self.position = kernel.loops.index(kernel.reduction_loops[0])  # the row loop

    def bind(self) -> None:
        """The vector accumulators and whether this call runs lagged (`active`), in the
        kernel's prologue."""
        kernel = self.kernel
        prologue = kernel.prologue
        self.accumulators = {
            id(nest): [VectorAccumulator(kind, acc_type.dtype, self.vector_type, prologue)
                       for kind, acc_type in zip(nest.op.reductions, nest.op.accumulator_types)]
            for nest in (kernel, self.passenger)
        }
        item = itemsize(self.plan.dtype)
        address = prologue.ptrtoint(kernel.buffers[len(kernel.inputs)], I64)
        aligned = prologue.icmp_unsigned("==", prologue.and_(address, I64(item - 1)), I64(0))
        long_rows = prologue.icmp_signed(">=", kernel.loop_sizes[self.position], I64(MIN_ROW))
        large = large_enough(prologue, kernel.sizes, kernel.outputs[0])
        self.active = prologue.and_(prologue.and_(large, long_rows), aligned)

    def finish(self, builder: ir.IRBuilder) -> None:
        """The `sfence` at the end of a nest that streamed (streaming.py)."""
        fence_if(builder, self.active)

    def emit_row(
        self,
        offsets: list[ir.Value],
        following: list[ir.Value],
        values: dict[int, ir.Value],
        reciprocals: dict[int, ir.Value],
        scalar_loop: ScalarLoop,
    ) -> None:
        """Row p's epilogue at `offsets` with the next row's reduction at `following` and the
        passenger's riding row, as head, vector middle and tail; `scalar_loop(start, stop)`
        emits the scalar loop over part of the row."""
        kernel = self.kernel
        b = kernel.builder
        width = kernel.loop_sizes[self.position]
        item = itemsize(self.plan.dtype)
        address = b.ptrtoint(kernel.output_pointer(0, offsets), I64)
        umin = intrinsic(b.module, "llvm.umin", I64, 2)
        to_line = b.udiv(b.and_(b.sub(I64(0), address), I64(LINE_BYTES - 1)), I64(item))
        head = b.call(umin, [to_line, width])
        middle = b.and_(b.sub(width, head), I64(-self.plan.lanes))
        scalar_loop(I64(0), head)
        self._middle(offsets, following, values, reciprocals, head, middle)
        scalar_loop(b.add(head, middle), width)

    def _middle(
        self,
        offsets: list[ir.Value],
        following: list[ir.Value],
        values: dict[int, ir.Value],
        reciprocals: dict[int, ir.Value],
        head: ir.Value,
        count: ir.Value,
    ) -> None:
        kernel, passenger, plan = self.kernel, self.passenger, self.plan
        assert kernel.rider is not None
        _, ahead = kernel.rider
        b = kernel.builder
        rows = [(kernel, plan.reduction, following), (passenger, plan.passenger, ahead)]
        invariants = [self._row_invariants(nest, ops, row) for nest, ops, row in rows]
        for nest, _, _ in rows:
            for accumulator in self.accumulators[id(nest)]:
                accumulator.start(b)
        with counted_loop(b, I64(0), count, "vector", step=plan.lanes) as step:
            j = b.add(head, step)
            for (nest, ops, row), known in zip(rows, invariants):
                yielded = self._block(nest, ops, dict(known),
                                      nest.advance(row, self.position, j), {})
                if nest is kernel and kernel.stash is not None:
                    b.store(yielded[0], kernel.stash_row_pointer(j, reading=False),
                            align=itemsize(plan.dtype))
                for accumulator, value in zip(self.accumulators[id(nest)], yielded):
                    accumulator.step(b, value)
            at = kernel.advance(offsets, self.position, j)
            stashed = {}
            if kernel.stash is not None:
                pointer = kernel.stash_row_pointer(j, reading=True)
                load = b.load(pointer, typ=self.vector_type, align=itemsize(plan.dtype))
                stashed[id(kernel.stash[1].result)] = load
            (result,) = self._block(kernel, plan.epilogue, dict(values), at, reciprocals,
                                    stashed)
            store = b.store(result, kernel.output_pointer(0, at), align=LINE_BYTES)
            store.set_metadata("nontemporal", b.module.add_metadata([I32(1)]))
        for nest, _, _ in rows:
            for slot, accumulator in zip(nest.accumulators, self.accumulators[id(nest)]):
                accumulator.fold_into(b, slot)

    def _row_invariants(
        self, nest: KernelLowering, ops: RowOps, row: list[ir.Value]
    ) -> dict[int, ir.Value]:
        """The row-invariant values of `nest`'s reduce block at `row`, as scalars."""
        known: dict[int, ir.Value] = {}
        nest.emit_block(ops.block, ops.per_row, known, row)
        return known

    def _block(
        self,
        nest: KernelLowering,
        ops: RowOps,
        known: dict[int, ir.Value],
        offsets: list[ir.Value],
        reciprocals: dict[int, ir.Value],
        stashed: dict[int, ir.Value] | None = None,
    ) -> list[ir.Value]:
        """Emit the per-element `ops` on vectors at `offsets`; `known` holds scalars
        (broadcast where a vector op reads them), `stashed` vectors read back instead of
        computed; returns the yielded vectors."""
        b = nest.builder
        vectors: dict[int, ir.Value] = dict(stashed or {})

        def operand(value: Value) -> ir.Value:
            if id(value) in vectors:
                return vectors[id(value)]
            if id(value) not in known:
                vectors[id(value)] = self._load(nest, ops.block.args.index(value), offsets)
                return vectors[id(value)]
            scalar = known[id(value)]
            if not isinstance(scalar.type, (ir.FloatType, ir.DoubleType)):
                return scalar  # a row-invariant bool stays a scalar (`select` takes it)
            vectors[id(value)] = self._as_vector(scalar)
            return vectors[id(value)]

        for body_op in ops.per_element:
            if id(body_op.result) in vectors:
                continue
            operands = [operand(v) for v in body_op.operands]
            if id(body_op) in reciprocals:
                reciprocal = self._as_vector(reciprocals[id(body_op)])
                vectors[id(body_op.result)] = b.fmul(operands[0], reciprocal)
                continue
            vectors[id(body_op.result)] = nest.scalars.emit(body_op, operands)
        return [self._as_vector(operand(v)) for v in ops.block.terminator.operands]

    def _load(self, nest: KernelLowering, position: int, offsets: list[ir.Value]) -> ir.Value:
        """Input `position` at `offsets`: a vector load at unit stride, else a broadcast."""
        b = nest.builder
        access = nest.inputs[position]
        pointer = element_pointer(b, nest.buffers[position], offsets[position], access.dtype)
        row = nest.reduction_loops[0].innermost
        if access.coefficients[row] == 0:
            return self._as_vector(b.load(pointer, typ=memory_type(access.dtype),
                                          align=itemsize(access.dtype)))
        return b.load(pointer, typ=self.vector_type, align=itemsize(access.dtype))

    def _as_vector(self, value: ir.Value) -> ir.Value:
        """`value`, broadcast when it is a scalar."""
        if isinstance(value.type, ir.VectorType):
            return value
        return splat(self.kernel.builder, value, self.vector_type)


class VectorAccumulator:
    """One reduction's accumulator in the vector middle of a row, in the kernel's prologue.

    `add`/`mul` accumulate with `reassoc` (loops.py, Reassociation). `max`/`min` do not use
    `llvm.maximum`/`llvm.minimum` along the row: on vectors their NaN and signed-zero checks
    make a chain of four dependent instructions per step, which bounded softmax's loop (0.92
    against 1.19 ms with a plain compare-and-select, 4096x1024). Instead the value is kept by
    `select(v > acc, v, acc)`, which never takes a NaN, and a second vector keeps the last NaN
    seen in each lane (`select(isnan(v), v, nans)`, off the chain); the two are combined with
    `llvm.maximum`/`llvm.minimum` once the row's middle is done, so a NaN still propagates.
    Equal values keep the first seen in their lane, so a row of both zeros may give either.
    """

    def __init__(self, kind: str, dtype: DType, vector_type: ir.VectorType,
                 prologue: ir.IRBuilder) -> None:
        self.kind = kind
        self.dtype = dtype
        self.vector_type = vector_type
        self.slot = prologue.alloca(vector_type, name=f"vector_{kind}")
        self.nans = (prologue.alloca(vector_type, name=f"vector_{kind}_nans")
                     if kind in ("max", "min") else None)

    def start(self, b: ir.IRBuilder) -> None:
        """Every lane set to the identity."""
        identity = constant(self.dtype, combiner_identity(self.kind, self.dtype))
        vector = splat(b, identity, self.vector_type)
        for slot in (self.slot, self.nans):
            if slot is not None:
                b.store(vector, slot)

    def step(self, b: ir.IRBuilder, value: ir.Value) -> None:
        """Combine `value` into the lanes."""
        current = b.load(self.slot, typ=self.vector_type)
        if self.nans is None:
            b.store(combine(b, self.kind, self.dtype, current, value), self.slot)
            return
        better = b.fcmp_ordered(">" if self.kind == "max" else "<", value, current)
        b.store(b.select(better, value, current), self.slot)
        nans = b.load(self.nans, typ=self.vector_type)
        b.store(b.select(b.fcmp_unordered("uno", value, value), value, nans), self.nans)

    def fold_into(self, b: ir.IRBuilder, slot: ir.Value) -> None:
        """Combine the lanes into the scalar accumulator at `slot`."""
        vector = b.load(self.slot, typ=self.vector_type)
        if self.nans is not None:
            vector = combine(b, self.kind, self.dtype, vector,
                             b.load(self.nans, typ=self.vector_type))
        lanes = self._fold(b, vector)
        current = b.load(slot, typ=register_type(self.dtype))
        b.store(combine(b, self.kind, self.dtype, current, lanes), slot)

    def _fold(self, b: ir.IRBuilder, vector: ir.Value) -> ir.Value:
        """The lanes of `vector` combined into one scalar (halving shuffles)."""
        lanes = self.vector_type.count
        while lanes > 1:
            half = lanes // 2
            low = b.shuffle_vector(vector, vector, ir.Constant(ir.VectorType(I32, half),
                                                               list(range(half))))
            high = b.shuffle_vector(vector, vector, ir.Constant(ir.VectorType(I32, half),
                                                                list(range(half, lanes))))
            vector = combine(b, self.kind, self.dtype, low, high)
            lanes = half
        return b.extract_element(vector, I32(0))
