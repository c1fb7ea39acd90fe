"""Row epilogues (`kernel.generic` with `is_row_epilogue`): what loops.py computes once per row
instead of once per element.

Stashing. Softmax's epilogue recomputes `exp(x - max)`, the value its reduction summed; when the
reduction loop stores that value into the output at each (p, r), the epilogue reads it back
instead of recomputing it (`stash_plan`).

Row-invariant division. A float division whose divisor is computed once per row (layer norm's
`/ sqrt(var + eps)`) becomes a multiplication by its reciprocal (`row_invariant_divisors`),
when the reciprocal is a normal number (loops.py, `KernelLowering._reciprocals`).

Cost. `expensive_per_element` counts the expensive ops a row loop runs per element; a lagged
loop with more than one in all is compute-bound and does not lag (carried_rows.py, Lagged
epilogue and Stash rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import llvmlite.ir as ir

from tensorc.codegen.cpu.scalar import EXPENSIVE_OPS
from tensorc.ir.attributes import frozen_attributes
from tensorc.ir.core import Operation, Value
from tensorc.ir.dialects.kernel import GenericOp, YieldOp, row_invariant_ops

if TYPE_CHECKING:
    from tensorc.codegen.cpu.loops import Access


def stash_plan(op: GenericOp, outputs: Sequence[Access]) -> tuple[int, Operation] | None:
    """(output index, compute op) when a row epilogue recomputes its first reduction's value
    (softmax's `exp(x - max)`): the reduction loop then stores that value into the output at
    each (p, r) and the epilogue reads it back instead of recomputing it."""
    if not op.is_row_epilogue:
        return None
    reduced = op.reduce_block.ops[-1].operands[0]
    producer = reduced.owner if isinstance(reduced.owner, Operation) else None
    if producer is None or producer.name == "tc.constant":
        return None
    dtype = reduced.type.dtype
    for compute_op in op.compute_block.ops:
        if isinstance(compute_op, YieldOp) or compute_op.name != producer.name:
            continue
        if not same_value(op, reduced, compute_op.result, {}):
            continue
        for index, access in enumerate(outputs):
            if access.dtype == dtype:
                return index, compute_op
    return None


def same_value(op: GenericOp, reduced: Value, computed: Value, memo: dict) -> bool:
    """Whether reduce-block value `reduced` and compute-block value `computed` are the same
    function of the inputs (the same ops with the same attributes on the same inputs)."""
    key = (id(reduced), id(computed))
    if key in memo:
        return memo[key]
    memo[key] = False
    reduce_args = op.reduce_block.args
    compute_args = op.compute_block.args[: len(op.inputs)]
    if reduced in reduce_args:
        equal = computed in compute_args and (
            compute_args.index(computed) == reduce_args.index(reduced)
        )
    else:
        left, right = reduced.owner, computed.owner
        equal = (
            isinstance(left, Operation)
            and isinstance(right, Operation)
            and left.name == right.name
            and len(left.operands) == len(right.operands)
            and reduced.type == computed.type
            and _same_attributes(left, right)
            and all(same_value(op, a, b, memo) for a, b in zip(left.operands, right.operands))
        )
    memo[key] = equal
    return equal


def _same_attributes(left: Operation, right: Operation) -> bool:
    """Equal attributes in the sense CSE uses (`frozen_attributes`)."""
    frozen = frozen_attributes(left.attributes)
    return frozen is not None and frozen == frozen_attributes(right.attributes)


def row_invariant_divisors(ops: Sequence[Operation], known: dict[int, ir.Value]) -> list:
    """The float divisions among a row epilogue's varying `ops` whose divisor is computed once
    per row (in `known`): they become multiplications by a reciprocal."""
    divisions = []
    for body_op in ops:
        if body_op.name != "tc.div" or id(body_op.rhs) not in known:
            continue
        divisor = known[id(body_op.rhs)]
        if not isinstance(divisor.type, (ir.FloatType, ir.DoubleType)):
            continue
        if body_op.lhs.type.dtype != body_op.result.type.dtype:
            continue
        divisions.append(body_op)
    return divisions


def expensive_per_element(op: GenericOp, stashed: Operation | None = None) -> int:
    """How many expensive ops a row kernel's loop over a row -- its reduction step and, for a
    row epilogue, its epilogue -- runs per element. Ops that are the same for the whole row do
    not count, nor an epilogue division by a row-invariant divisor (a multiplication by its
    reciprocal), nor the epilogue's `stashed` op (read back, not recomputed). A lagged loop
    (its kernel's and its passenger's) with one vectorised `exp` per element still runs at
    memory speed here; more is compute-bound (carried_rows.py)."""
    expensive = 0
    for block in (op.reduce_block, op.compute_block):
        invariant = row_invariant_ops(op, block)
        per_row = {id(result) for body_op in invariant for result in body_op.results}
        per_row.update(
            id(arg) for index, arg in enumerate(block.args)
            if index >= len(op.inputs) or not op.input_uses_reduction(index)
        )
        invariant_ids = {id(body_op) for body_op in invariant}
        for body_op in block.ops:
            if id(body_op) in invariant_ids or body_op.name not in EXPENSIVE_OPS:
                continue
            if body_op is stashed:
                continue
            reciprocal = block is op.compute_block and body_op.name == "tc.div"
            if not (reciprocal and id(body_op.rhs) in per_row):
                expensive += 1
    return expensive
