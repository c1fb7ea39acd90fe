"""Materialise a fusion group as one `kernel.generic` in place of its ops.

The kernel reads each (outside value, map) pair the group demands as one input. Its reduce
block computes each reduction's per-point value from the group's producers; its compute block
computes the root's value at the root's demand (the output map), reading the accumulator
where the reduction's result is used. Member ops are emitted once per (value, map) in each
block, as rank-0 ops.
"""

from __future__ import annotations

from collections.abc import Sequence

from tensorc.ir.affine import AffineMap, linear_form
from tensorc.ir.builder import Builder
from tensorc.ir.core import Block, Operation, Value
from tensorc.ir.dialects import kernel, tc
from tensorc.ir.dims import DimExpr
from tensorc.ir.dtypes import DType
from tensorc.ir.types import TensorType
from tensorc.passes.fusion_groups import Group
from tensorc.passes.fusion_ops import Pointwise, Reduction, ScalarBuilder


class BlockEmitter(ScalarBuilder):
    """Emits the scalar ops of one kernel block, with the group's values memoised per map."""

    def __init__(self, block: Block, group: Group, inputs: dict, accumulators: Sequence[Value]):
        self.block = block
        self.group = group
        self.inputs = inputs  # (id(value), map) -> input position
        self.accumulators = accumulators
        self.builder = Builder.at_end(block, group.root.loc)
        self.memo: dict[tuple[int, AffineMap], Value] = {}
        self.constants: dict[tuple[str, DType], Value] = {}
        self.indices: dict[tuple[int, DType], Value] = {}

    # ----- ScalarBuilder --------------------------------------------------------------------
    def op(self, op_class: type[Operation], operands: Sequence[Value], dtype: DType,
           attributes: dict | None = None) -> Value:
        created = op_class(list(operands), [TensorType(dtype)], dict(attributes or {}))
        return self.builder.insert(created).result

    def constant(self, value: float | int | bool, dtype: DType) -> Value:
        key = (repr(value), dtype)
        if key not in self.constants:
            self.constants[key] = self.builder.insert(tc.ConstantOp.scalar(value, dtype)).result
        return self.constants[key]

    def index(self, expr: DimExpr, dtype: DType) -> Value:
        form = linear_form(expr)
        total: Value | None = None
        for dim, coefficient in form.coefficients:
            term = self._loop_index(dim, dtype)
            if coefficient != 1:
                term = self.op(tc.MulOp, [term, self.constant(coefficient, dtype)], dtype)
            total = term if total is None else self.op(tc.AddOp, [total, term], dtype)
        if form.offset != 0 or total is None:
            offset = self._size(form.offset, dtype)
            total = offset if total is None else self.op(tc.AddOp, [total, offset], dtype)
        return total

    def _loop_index(self, dim: int, dtype: DType) -> Value:
        key = (dim, dtype)
        if key not in self.indices:
            self.indices[key] = self.op(kernel.IndexOp, [], dtype, {"dim": dim})
        return self.indices[key]

    def _size(self, size: DimExpr, dtype: DType) -> Value:
        if size.value is not None:
            return self.constant(size.value, dtype)
        value = self.op(tc.DimSizeOp, [], DType.I32, {"value": size})
        return self.cast(value, dtype)

    # ----- the group's values ---------------------------------------------------------------
    def value(self, value: Value, amap: AffineMap) -> Value:
        """`value` at the point `amap` of the domain, as a scalar of this block."""
        key = (id(value), amap)
        if key in self.memo:
            return self.memo[key]
        owner = value.owner
        if not self.group.is_member(value):
            scalar: Value = self.block.args[self.inputs[key]]
        else:
            assert isinstance(owner, Operation)
            info = self.group.infos[id(owner)]
            if isinstance(info, Reduction):
                scalar = info.finish_scalar(self, self.accumulators[0])
            else:
                scalar = self._pointwise(owner, info, amap)
        self.memo[key] = scalar
        return scalar

    def _pointwise(self, op: Operation, info: Pointwise, amap: AffineMap) -> Value:
        scalars = [
            self.value(operand, operand_map.compose(amap))
            for operand, operand_map in zip(op.operands, info.operand_maps)
        ]
        return info.emit(self, op, scalars, amap)

    def finish(self, values: Sequence[Value]) -> None:
        self.builder.insert(kernel.YieldOp(list(values), []))


def build_kernel(group: Group) -> kernel.GenericOp:
    """Create the group's kernel and use it instead of the root. The kernel is not inserted
    and the members are left as they are: `fusion.fuse_block` rebuilds the block and drops
    the members' uses once, whatever the number of kernels (build consumers first: a later
    group's members still read the values this one replaces)."""
    root = group.root
    reads = group.reads()
    positions = {(id(value), amap): index for index, (value, amap) in enumerate(reads)}
    reduction = group.reduction
    num_dims = len(group.domain)
    iterators = [kernel.PARALLEL] * group.num_parallel
    iterators += [kernel.REDUCTION] * (num_dims - group.num_parallel)
    accumulator_types = [] if reduction is None else [TensorType(reduction.accumulator)]
    op = kernel.GenericOp.create(
        inputs=[value for value, _ in reads],
        result_types=[root.result.type],
        domain=list(group.domain),
        iterators=iterators,
        input_maps=[amap for _, amap in reads],
        output_maps=[group.output_map],
        reductions=[] if reduction is None else [reduction.combiner],
        accumulator_types=accumulator_types,
        loc=root.loc,
    )
    reduce_emitter = BlockEmitter(op.reduce_block, group, positions, [])
    if reduction is None:
        reduce_emitter.finish([])
    else:
        operands = zip(reduction.op.operands, reduction.input_maps)
        scalars = [reduce_emitter.value(value, amap) for value, amap in operands]
        reduce_emitter.finish([reduction.reduce_scalar(reduce_emitter, scalars)])
    accumulators = op.compute_block.args[len(reads) :]
    compute_emitter = BlockEmitter(op.compute_block, group, positions, accumulators)
    compute_emitter.finish([compute_emitter.value(root.result, group.output_map)])
    op.result.name_hint = root.result.name_hint
    root.result.replace_all_uses_with(op.result)
    return op


def is_trivial(group: Group) -> bool:
    """A lone constant or size is left as it is rather than turned into a kernel."""
    return len(group.members) == 1 and group.root.name in ("tc.constant", "tc.dim_size")
