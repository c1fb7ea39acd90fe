"""`fold{max-elements=4096}`: constant folding through the interpreter's kernels.

A pure `tc` op without regions whose operands are all `tc.constant`s and whose results have
static shapes is evaluated with the reference kernel (`tensorc.interp.kernels.KERNELS`) and
replaced by `tc.constant`s, unless its results would hold more than `max-elements` elements
in all (large constants bloat the artifact; a broadcast of a small constant costs nothing
once fused). That covers operand-free ops too: `tc.dim_size` of a constant expression,
`tc.iota`, and a `broadcast_to` of a splat constant. An op whose kernel raises (an
out-of-range `take` raises IndexError) is left alone, so that the error happens when the
program runs, as the language promises. Constants that folding leaves unused are removed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tensorc.interp.context import KernelContext
from tensorc.interp.kernels import KERNELS
from tensorc.ir.attributes import SymbolRef
from tensorc.ir.core import Block, Operation, Pure, Value
from tensorc.ir.dialects import tc
from tensorc.ir.dialects.func import Module
from tensorc.ir.dims import DimExpr
from tensorc.ir.dtypes import DType
from tensorc.passes.pass_manager import ModulePass, register_pass
from tensorc.passes.rewrite import erase_ops, replace_all_uses


class _NotConstant(Exception):
    pass


def evaluate_constant_attr(value: object) -> object:
    """An attribute as the kernels take it: dimension expressions as ints (they must be
    constant), lists element by element."""
    if isinstance(value, DimExpr):
        static = value.value
        if static is None:
            raise _NotConstant
        return static
    if isinstance(value, list):
        return [evaluate_constant_attr(item) for item in value]
    return value


def fold_op(op: Operation, max_elements: int) -> list[np.ndarray] | None:
    """The values of `op`'s results when it can be folded, else None."""
    if not op.name.startswith("tc.") or op.regions or Pure not in op.traits:
        return None
    if isinstance(op, tc.ConstantOp):
        return None
    kernel = KERNELS.get(op.name)
    if kernel is None:
        return None
    operands = [value.owner for value in op.operands]
    if not all(isinstance(owner, tc.ConstantOp) for owner in operands):
        return None
    shapes = [result.type.static_shape for result in op.results]
    if any(shape is None for shape in shapes):
        return None
    if sum(math.prod(shape or ()) for shape in shapes) > max_elements:
        return None
    if any(result.type.dtype == DType.BF16 for result in op.results):
        return None
    try:
        attributes = {
            key: evaluate_constant_attr(value)
            for key, value in op.attributes.items()
            if not isinstance(value, SymbolRef)
        }
    except _NotConstant:
        return None
    static_shapes = [shape for shape in shapes if shape is not None]
    context = KernelContext(op.name, [r.type.dtype.numpy for r in op.results], static_shapes)
    try:
        output = kernel(context, *(owner.value for owner in operands), **attributes)
    except Exception:  # the op fails at run time (IndexError...): keep it so that it does
        return None
    arrays = list(output) if isinstance(output, tuple) else [output]
    if len(arrays) != len(op.results):
        return None
    for array, result, shape in zip(arrays, op.results, static_shapes):
        if not isinstance(array, np.ndarray) or array.shape != shape:
            return None
        if array.dtype != result.type.dtype.numpy:
            return None
    return arrays


def fold_constants(module: Module, max_elements: int = 4096) -> int:
    """Fold every foldable op of `module`, in order (so chains fold); returns how many."""
    folded: list[Operation] = []
    for function in module.functions:
        _fold_block(function.body, max_elements, folded)
    leftovers = {
        operand.owner
        for op in folded
        for operand in op.operands
        if isinstance(operand.owner, tc.ConstantOp)
    }
    erase_ops(folded)
    erase_ops(op for op in leftovers if not any(result.uses for result in op.results))
    return len(folded)


def _fold_block(block: Block, max_elements: int, folded: list[Operation]) -> None:
    new_ops: list[Operation] = []
    for op in block.ops:
        for region in op.regions:
            for inner in region.blocks:
                _fold_block(inner, max_elements, folded)
        arrays = fold_op(op, max_elements)
        if arrays is not None:
            for result, array in zip(op.results, arrays):
                value = np.array(array, copy=True)  # never a view of an operand's value
                constant = tc.ConstantOp((), [result.type], {"value": value}, loc=op.loc)
                constant.parent = block
                new_ops.append(constant)
                _take_name(result, constant.result)
                replace_all_uses(result, constant.result)
            folded.append(op)
        new_ops.append(op)
    block.ops[:] = new_ops


def _take_name(old: Value, new: Value) -> None:
    if old.name_hint and not new.name_hint:
        new.name_hint = old.name_hint


@register_pass
@dataclass(frozen=True)
class Fold(ModulePass):
    """Evaluate ops of constants at compile time (results of at most `max-elements`)."""

    name = "fold"
    max_elements: int = 4096

    def run(self, module: Module) -> bool:
        return fold_constants(module, self.max_elements) > 0
