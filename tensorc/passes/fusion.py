"""`fusion{max-ops=32}`: turn the `tc` primitives into `kernel.generic` loop nests.

    elementwise ops, broadcast_to, transpose, slice, unit-dim reshape,   -> kernel bodies and
    splat constants, iota, one_hot, sum/prod/max/min, matmul                affine input maps

Producers fuse into their consumers (`fusion_groups`): elementwise chains into one kernel,
elementwise work into a reduction's input, a reduction's result into the elementwise work
after it (over the reduced shape: a parallel epilogue; over the full shape with the reduced
dims broadcast back: a row epilogue, as in softmax and layer norm), and bias and activation
into a matmul's epilogue. Views, splat constants and iota are first duplicated into each of
their consumers (they cost nothing to recompute); any other value used by two kernels is
computed once, by a kernel of its own. `max-ops` bounds the number of `tc` ops in a kernel.

What stays a `tc` op between kernels: take, take_along_axis, scatter_add*, argmax/argmin,
concat, general reshapes, dense constants, lone scalar constants and sizes, bool matmul, and
the composite ops (softmax, mean, ...) unless `decompose` ran first.
"""

from __future__ import annotations

from dataclasses import dataclass

from tensorc.ir.core import Block, Operation
from tensorc.ir.dialects.func import Module
from tensorc.ir.dialects.kernel import GenericOp
from tensorc.passes.fusion_build import build_kernel, is_trivial
from tensorc.passes.fusion_groups import form_groups
from tensorc.passes.fusion_ops import Pointwise, describe
from tensorc.passes.pass_manager import ModulePass, register_pass


def count_kernels(module: Module) -> int:
    """The number of `kernel.generic` ops in the module's functions."""
    return sum(1 for op in module.walk() if isinstance(op, GenericOp))


def duplicate_free_ops(block: Block) -> None:
    """Give every view, splat constant and iota one fusable user: a copy per extra user."""
    for op in reversed(list(block.ops)):
        info = describe(op)
        if not isinstance(info, Pointwise) or not info.free:
            continue
        fusable = [user for user in op.result.users() if describe(user) is not None]
        keep_original = len(fusable) == len(op.result.users())
        for user in fusable[1:] if keep_original else fusable:
            copy = _clone(op)
            block.insert_before(op, copy)
            for index, operand in enumerate(user.operands):
                if operand is op.result:
                    user.set_operand(index, copy.result)


def _clone(op: Operation) -> Operation:
    copy = type(op)(
        list(op.operands), [r.type for r in op.results], dict(op.attributes), loc=op.loc
    )
    copy.result.name_hint = op.result.name_hint
    return copy


def fuse_block(block: Block, max_ops: int) -> int:
    """Fuse the ops of one block; returns the number of kernels created."""
    duplicate_free_ops(block)
    groups = form_groups(list(block.ops), describe, max_ops)
    created = 0
    for group in groups:
        if is_trivial(group):
            continue
        build_kernel(group)
        created += 1
    return created


@register_pass
@dataclass(frozen=True)
class Fusion(ModulePass):
    """Convert `tc` primitives into fused `kernel.generic` ops."""

    name = "fusion"
    max_ops: int = 32

    def run(self, module: Module) -> None:
        for function in module.functions:
            fuse_block(function.body, max(self.max_ops, 1))
