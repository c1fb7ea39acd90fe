"""`dce`: dead-code elimination. A pure op none of whose results is used is removed.

One sweep per block, last op first: when an op is found dead, the uses it held are discounted
at once, so a whole dead chain goes in the same sweep. Blocks nested in live ops are swept
when the sweep reaches their op (their ops may be the last users of outer values). The dead
ops are then erased together (`erase_ops`), so the pass is linear in the size of the IR.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tensorc.ir.core import Block, Operation, Pure, Value
from tensorc.ir.dialects.func import Module
from tensorc.passes.pass_manager import ModulePass, register_pass
from tensorc.passes.rewrite import erase_ops


def remove_dead_ops(module: Module) -> int:
    """Erase every dead pure op of `module`; returns how many went (nested ones too)."""
    live_uses: dict[Value, int] = {}
    dead: list[Operation] = []
    for function in module.functions:
        _sweep(function.body, live_uses, dead, _everything)
    erase_ops(dead)
    return len(dead)


def dead_ops(block: Block, erasable: Callable[[Operation], bool]) -> list[Operation]:
    """The dead pure ops of `block` (users before producers) that `erasable` accepts; the ops
    it rejects are kept, and not looked into. Erase them with `erase_ops`."""
    dead: list[Operation] = []
    _sweep(block, {}, dead, erasable)
    return dead


def _everything(op: Operation) -> bool:
    return True


def _sweep(
    block: Block,
    live_uses: dict[Value, int],
    dead: list[Operation],
    erasable: Callable[[Operation], bool],
) -> None:
    for op in reversed(block.ops):
        if not erasable(op):
            continue
        if _is_dead(op, live_uses):
            dead.append(op)
            for nested in op.walk():
                for operand in nested.operands:
                    live_uses[operand] = live_uses.get(operand, len(operand.uses)) - 1
            continue
        for region in op.regions:
            for inner in reversed(region.blocks):
                _sweep(inner, live_uses, dead, erasable)


def _is_dead(op: Operation, live_uses: dict[Value, int]) -> bool:
    if Pure not in op.traits:
        return False
    return all(live_uses.get(result, len(result.uses)) == 0 for result in op.results)


@register_pass
@dataclass(frozen=True)
class DeadCodeElimination(ModulePass):
    """Remove pure ops whose results are unused (functions themselves are all exported)."""

    name = "dce"

    def run(self, module: Module) -> bool:
        return remove_dead_ops(module) > 0
