"""`cse`: common-subexpression elimination.

Two pure ops are the same computation when they have the same name, attributes, operands
(by identity; the first two sorted for a `Commutative` op) and result types. The first one
stays and later ones are replaced by it, in one walk with a dict per block: values of an
enclosing block are visible inside a nested region (unless the op is `IsolatedFromAbove`),
never the other way round. Ops with regions, ops marked `NoCSE` and impure ops are never
merged.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from tensorc.ir.attributes import frozen_attributes
from tensorc.ir.core import Block, Commutative, IsolatedFromAbove, NoCSE, Operation, Pure
from tensorc.ir.dialects.func import Module
from tensorc.passes.pass_manager import ModulePass, register_pass
from tensorc.passes.rewrite import erase_ops, replace_all_uses

OpKey = tuple[Hashable, ...]


def op_key(op: Operation) -> OpKey | None:
    """What makes `op` the same computation as another, or None if it cannot be merged."""
    if Pure not in op.traits or NoCSE in op.traits or op.regions or not op.results:
        return None
    attributes = frozen_attributes(op.attributes)
    if attributes is None:
        return None
    operands = list(op.operands)
    if Commutative in op.traits and len(operands) >= 2:
        operands[:2] = sorted(operands[:2], key=id)
    result_types = tuple(result.type for result in op.results)
    return (op.name, attributes, tuple(operands), result_types)


def eliminate_common_subexpressions(module: Module) -> int:
    """Merge the duplicates of `module`; returns how many ops were removed."""
    duplicates: list[Operation] = []
    for function in module.functions:
        _visit(function.body, [], duplicates)
    erase_ops(duplicates)
    return len(duplicates)


def _visit(block: Block, scopes: list[dict[OpKey, Operation]], duplicates: list[Operation]) -> None:
    known: dict[OpKey, Operation] = {}
    scopes.append(known)
    for op in block.ops:
        if op.regions:
            inner_scopes = [] if IsolatedFromAbove in op.traits else scopes
            for region in op.regions:
                for inner in region.blocks:
                    _visit(inner, inner_scopes, duplicates)
            continue
        key = op_key(op)
        if key is None:
            continue
        original = _lookup(scopes, key)
        if original is None:
            known[key] = op
            continue
        for result, kept in zip(op.results, original.results):
            if result.name_hint and not kept.name_hint:
                kept.name_hint = result.name_hint
            replace_all_uses(result, kept)
        duplicates.append(op)
    scopes.pop()


def _lookup(scopes: list[dict[OpKey, Operation]], key: OpKey) -> Operation | None:
    for known in reversed(scopes):
        found = known.get(key)
        if found is not None:
            return found
    return None


@register_pass
@dataclass(frozen=True)
class CommonSubexpressionElimination(ModulePass):
    """Replace each pure op by an identical earlier one that dominates it."""

    name = "cse"

    def run(self, module: Module) -> bool:
        return eliminate_common_subexpressions(module) > 0
