"""Kernel body ops on explicit vectors: what the lagged row loops (vector_rows.py) and the
streamed elementwise loops (vector_elements.py) share.

Some loops are emitted as explicit vectors of a cache line (LINE_BYTES: 16 f32 or 8 f64)
instead of scalars that LLVM's loop vectoriser widens, because their stores are non-temporal
and must be aligned to the vector, which the vectoriser does not arrange (streaming.py). Their
body ops are emitted by the scalar lowering (scalar.py) on vector operands, which is the same
instructions for VECTOR_OPS and, through mathfns.py's polynomials, for VECTOR_MATH.

A body block splits into the ops that are the same along the vectorised dims (`SplitOps`:
`invariant`, emitted once as scalars and broadcast where a vector op reads them) and the ops
per element (`per_element`, on vectors). `vectorisable` says whether a split can be emitted
so; `VectorBody` emits it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import llvmlite.ir as ir

from tensorc.codegen.cpu.irutil import element_pointer, itemsize, memory_type, splat
from tensorc.ir.core import Block, Operation, Value
from tensorc.ir.dialects.kernel import GenericOp, YieldOp, invariant_ops
from tensorc.ir.dtypes import DType

if TYPE_CHECKING:
    from tensorc.codegen.cpu.loops import KernelLowering

# ops whose scalar lowering (scalar.py) is the same instructions on vectors
VECTOR_OPS = frozenset(
    {"tc.add", "tc.sub", "tc.mul", "tc.div", "tc.neg", "tc.abs", "tc.square", "tc.maximum",
     "tc.minimum", "tc.relu", "tc.select", "tc.stop_gradient", "tc.lt", "tc.le", "tc.gt",
     "tc.ge", "tc.eq", "tc.ne"}
)  # fmt: skip
# transcendentals whose polynomial (mathfns.py) is emitted on vectors as on scalars
VECTOR_MATH = frozenset({"tc.exp", "tc.log", "tc.tanh", "tc.sigmoid"})
VECTOR_DTYPES = (DType.F32, DType.F64)
_COMPARISONS = frozenset({"tc.lt", "tc.le", "tc.gt", "tc.ge", "tc.eq", "tc.ne"})


@dataclass(frozen=True)
class SplitOps:
    """A body block's ops split by what they depend on: the same along the vectorised dims
    (`invariant`, broadcast as scalars) or per element (`per_element`, on vectors); the yield
    is in neither."""

    block: Block
    invariant: tuple[Operation, ...]
    per_element: tuple[Operation, ...]

    @staticmethod
    def of(op: GenericOp, block: Block, dims: Iterable[int]) -> SplitOps:
        invariant = tuple(invariant_ops(op, block, dims))
        skip = {id(body_op) for body_op in invariant}
        return SplitOps(block, invariant, tuple(
            o for o in block.ops if id(o) not in skip and not isinstance(o, YieldOp)
        ))


def vectorisable(nest: KernelLowering, ops: SplitOps, dim: int, dtype: DType) -> bool:
    """Whether the per-element ops are VECTOR_OPS or VECTOR_MATH on `dtype` (comparisons give
    bools, which only `select` reads), and the inputs they (or the yield) read are of `dtype`,
    at unit or zero stride along domain dim `dim`. Inputs only invariant ops read (a size
    passed as an `i32`) are loaded as scalars."""
    block = ops.block
    read = {id(v) for o in [*ops.per_element, block.terminator] for v in o.operands}
    for index, arg in enumerate(block.args[: len(nest.inputs)]):
        access = nest.inputs[index]
        if id(arg) in read and (access.dtype != dtype or access.coefficients[dim] not in (0, 1)):
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


def math_per_element(ops: Iterable[SplitOps]) -> int:
    """How many VECTOR_MATH ops run per element."""
    return sum(body_op.name in VECTOR_MATH for split in ops for body_op in split.per_element)


class VectorBody:
    """Emits a nest's per-element ops on vectors of `vector_type`, along domain dim `dim`."""

    def __init__(self, nest: KernelLowering, vector_type: ir.VectorType, dim: int) -> None:
        self.nest = nest
        self.vector_type = vector_type
        self.dim = dim

    def emit(
        self,
        ops: SplitOps,
        known: dict[int, ir.Value],
        offsets: list[ir.Value],
        reciprocals: dict[int, ir.Value] | None = None,
        stashed: dict[int, ir.Value] | None = None,
    ) -> list[ir.Value]:
        """Emit the per-element `ops` on vectors at `offsets`; `known` holds scalars
        (broadcast where a vector op reads them), `stashed` vectors read back instead of
        computed, and the divisions in `reciprocals` become multiplications by the given
        scalar; returns the yielded vectors."""
        nest = self.nest
        b = nest.builder
        reciprocals = reciprocals or {}
        vectors: dict[int, ir.Value] = dict(stashed or {})

        def operand(value: Value) -> ir.Value:
            if id(value) in vectors:
                return vectors[id(value)]
            if id(value) not in known:
                vectors[id(value)] = self._load(ops.block.args.index(value), offsets)
                return vectors[id(value)]
            scalar = known[id(value)]
            if not isinstance(scalar.type, (ir.FloatType, ir.DoubleType)):
                return scalar  # an invariant bool stays a scalar (`select` takes it)
            vectors[id(value)] = self.as_vector(scalar)
            return vectors[id(value)]

        for body_op in ops.per_element:
            if id(body_op.result) in vectors:
                continue
            operands = [operand(v) for v in body_op.operands]
            if id(body_op) in reciprocals:
                reciprocal = self.as_vector(reciprocals[id(body_op)])
                vectors[id(body_op.result)] = b.fmul(operands[0], reciprocal)
                continue
            vectors[id(body_op.result)] = nest.scalars.emit(body_op, operands)
        return [self.as_vector(operand(v)) for v in ops.block.terminator.operands]

    def _load(self, position: int, offsets: list[ir.Value]) -> ir.Value:
        """Input `position` at `offsets`: a vector load at unit stride, else a broadcast."""
        nest = self.nest
        b = nest.builder
        access = nest.inputs[position]
        pointer = element_pointer(b, nest.buffers[position], offsets[position], access.dtype)
        if access.coefficients[self.dim] == 0:
            return self.as_vector(b.load(pointer, typ=memory_type(access.dtype),
                                         align=itemsize(access.dtype)))
        return b.load(pointer, typ=self.vector_type, align=itemsize(access.dtype))

    def as_vector(self, value: ir.Value) -> ir.Value:
        """`value`, broadcast when it is a scalar."""
        if isinstance(value.type, ir.VectorType):
            return value
        return splat(self.nest.builder, value, self.vector_type)
