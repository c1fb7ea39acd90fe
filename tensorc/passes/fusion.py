"""`fusion{max-ops=32}`: turn the `tc` primitives into `kernel.generic` loop nests.

    elementwise ops, broadcast_to, transpose, slice, unit-dim reshape,   -> kernel bodies and
    splat constants, iota, one_hot, sum/prod/max/min, matmul                affine input maps

Producers fuse into their consumers (`fusion_groups`): elementwise chains into one kernel,
elementwise work into a reduction's input, a reduction's result into the elementwise work
after it (over the reduced shape: a parallel epilogue; over the full shape with the reduced
dims broadcast back: a row epilogue, as in softmax and layer norm), and bias and activation
into a matmul's epilogue. Views, splat constants, iota and constant expressions are first
duplicated into each of their consumers (they cost next to nothing to recompute); any other
value used by two kernels is computed once, by a kernel of its own. `max-ops` bounds the
number of `tc` ops in a kernel.

What stays a `tc` op between kernels: take, take_along_axis, scatter_add*, argmax/argmin,
concat, general reshapes, dense constants, lone scalar constants and sizes, bool matmul, and
the composite ops (softmax, mean, ...) unless `decompose` ran first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tensorc.ir.core import Block, Operation, Value
from tensorc.ir.dialects.func import Module
from tensorc.ir.dialects.kernel import GenericOp
from tensorc.passes.fusion_build import build_kernel, is_trivial
from tensorc.passes.fusion_groups import form_groups
from tensorc.passes.fusion_ops import Pointwise, Reduction, describe
from tensorc.passes.pass_manager import ModulePass, PipelineError, register_pass


def count_kernels(module: Module) -> int:
    """The number of `kernel.generic` ops in the module's functions."""
    return sum(1 for op in module.walk() if isinstance(op, GenericOp))


class _Descriptions:
    """`describe`, once per op."""

    def __init__(self) -> None:
        self.known: dict[int, Pointwise | Reduction | None] = {}

    def __call__(self, op: Operation) -> Pointwise | Reduction | None:
        key = id(op)
        if key not in self.known:
            self.known[key] = describe(op)
        return self.known[key]


def duplicate_free_ops(
    block: Block, describe: Callable[[Operation], Pointwise | Reduction | None] = describe
) -> int:
    """Give every view, splat constant, iota and constant expression (pointwise work on
    those alone, such as `1 / cast(dim_size(N))`) one fusable user: a copy per extra user,
    placed just before the original. Returns how many copies it made."""
    free: set[int] = set()
    for op in block.ops:
        info = describe(op)
        if isinstance(info, Pointwise) and (
            info.free or all(id(v.owner) in free for v in op.operands)
        ):
            free.add(id(op))
    copies: dict[int, list[Operation]] = {}
    for op in reversed(list(block.ops)):
        if id(op) not in free:
            continue
        users = op.result.users()
        fusable = [user for user in users if describe(user) is not None]
        keep_original = len(fusable) == len(users)
        replacements: dict[int, Value] = {}
        for user in fusable[1:] if keep_original else fusable:
            copy = _clone(op)
            copies.setdefault(id(op), []).append(copy)
            replacements[id(user)] = copy.result
        op.result.replace_uses_by(lambda user, moved=replacements: moved.get(id(user)))
    if copies:
        _rebuild(block, lambda op: copies.get(id(op), []) + [op])
    return sum(len(made) for made in copies.values())


def _clone(op: Operation) -> Operation:
    copy = type(op)(
        list(op.operands), [r.type for r in op.results], dict(op.attributes), loc=op.loc
    )
    copy.result.name_hint = op.result.name_hint
    return copy


def _rebuild(block: Block, replace: Callable[[Operation], list[Operation]]) -> None:
    """Replace each op of `block` by the ops `replace` gives for it, in one pass."""
    ops: list[Operation] = []
    for op in block.ops:
        op.parent = None
        ops.extend(replace(op))
    for op in ops:
        op.parent = block
    block.ops = ops


def fuse_block(block: Block, max_ops: int) -> int:
    """Fuse the ops of one block; returns the number of kernels created and free ops copied
    for them (0: the block is as it was)."""
    descriptions = _Descriptions()
    copied = duplicate_free_ops(block, descriptions)
    groups = form_groups(list(block.ops), descriptions, max_ops)
    kernels: dict[int, Operation] = {}
    fused: set[int] = set()
    for group in groups:
        if is_trivial(group):
            continue
        kernels[id(group.root)] = build_kernel(group)
        fused.update(id(member) for member in group.members)
    if kernels:
        _rebuild(
            block,
            lambda op: [kernels[id(op)]] if id(op) in kernels else [] if id(op) in fused else [op],
        )
        _drop_uses_by(fused, [op for group in groups for op in group.members])
    return copied + len(kernels)


def _drop_uses_by(dead: set[int], ops: list[Operation]) -> None:
    """Forget the uses that the removed `ops` (ids in `dead`) make, one pass per value:
    dropping them op by op costs the length of a shared weight's use list each time."""
    seen: set[int] = set()
    for op in ops:
        if id(op) not in dead:
            continue
        for value in op.operands:
            if id(value) not in seen:
                seen.add(id(value))
                value.uses = [use for use in value.uses if id(use.op) not in dead]


@register_pass
@dataclass(frozen=True)
class Fusion(ModulePass):
    """Convert `tc` primitives into fused `kernel.generic` ops."""

    name = "fusion"
    max_ops: int = 32

    def run(self, module: Module) -> bool:
        if any(op.name == "tc.grad" for op in module.walk()):
            raise PipelineError(
                "fusion needs autodiff to run before it: this module still has grad ops "
                "(e.g. --passes=inline,autodiff,fusion)"
            )
        max_ops = max(self.max_ops, 1)
        return sum(fuse_block(function.body, max_ops) for function in module.functions) > 0
