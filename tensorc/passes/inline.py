"""`inline`: replace every `func.call` by a copy of the callee's body.

The callee's symbolic dimensions are renamed to the caller's: each parameter dimension that
is a name is bound to the argument's dimension expression (`f(x: f32[N])` called on
`f32[2*B]` gives `N -> 2*B`), and the clone's types and dimension attributes are substituted.
Where a parameter does not pin its argument down by itself (a name used by two parameters, a
literal size against a symbolic one), an `eq` shape constraint keeps the check that the call
made, and a `tc.reshape` between the two spellings of the size gives the cloned body exactly
the types it was verified with. The callee's own constraints are substituted and added to the
caller too; constraints that now hold statically are dropped.

Functions are inlined callees first (`Module.callees_first`), so each body is copied once it
has no calls left; the verifier has ruled out call cycles. Every function is kept (each `def`
is exported). Cloned ops keep their locations.
"""

from __future__ import annotations

from dataclasses import dataclass

from tensorc.ir.builder import Builder
from tensorc.ir.core import Block, Operation, Value
from tensorc.ir.dialects import tc_shape
from tensorc.ir.dialects.func import CallOp, FuncOp, Module, ReturnOp, bind_dimensions
from tensorc.passes.cloning import clone_ops, substitute_constraint, substitute_type
from tensorc.passes.pass_manager import ModulePass, register_pass
from tensorc.passes.rewrite import detach_operands, replace_all_uses


def inline_calls(module: Module) -> int:
    """Inline every call of `module`; returns how many calls were inlined."""
    count = 0
    for function in module.callees_first():
        count += _inline_block(function.body, function, module)
    return count


def _inline_block(block: Block, caller: FuncOp, module: Module) -> int:
    if not any(isinstance(op, CallOp) or op.regions for op in block.ops):
        return 0
    count = 0
    new_ops: list[Operation] = []
    for op in block.ops:
        for region in op.regions:
            for inner in region.blocks:
                count += _inline_block(inner, caller, module)
        if not isinstance(op, CallOp):
            new_ops.append(op)
            continue
        new_ops.extend(_inline_call(op, caller, module))
        count += 1
    for op in new_ops:
        op.parent = block
    block.ops[:] = new_ops
    return count


def _inline_call(call: CallOp, caller: FuncOp, module: Module) -> list[Operation]:
    """The ops that replace `call` (its results redirected to them); `call` is dropped."""
    callee = module.lookup(call.callee.name)
    assert callee is not None  # checked by Module.callees_first
    substitution, checks = bind_dimensions(callee, call.operands)
    for constraint in checks + [
        substitute_constraint(c, substitution) for c in callee.shape_constraints
    ]:
        if constraint.holds_statically() is not True:
            caller.add_constraint(constraint)
    staging = Block()
    builder = Builder.at_end(staging, call.loc)
    value_map: dict[Value, Value] = {}
    for parameter, argument in zip(callee.args, call.operands):
        expected = substitute_type(parameter.type, substitution)
        if argument.type != expected and parameter.uses:
            # Equal sizes spelled differently (the second `N` of a callee bound to the
            # caller's `B` where the first was `A`; a literal 3 for the caller's `C`): the
            # reshape gives the body exactly the types it was verified with.
            argument = builder.value(tc_shape.ReshapeOp, [argument], expected)
        value_map[parameter] = argument
    body = callee.body.ops
    returned = body[-1]
    assert isinstance(returned, ReturnOp)
    clone_ops(body[:-1], value_map, builder, substitution)
    for result, value in zip(call.results, returned.operands):
        replacement = value_map.get(value, value)
        if replacement.type != result.type:
            # Equal sizes spelled differently (`N` for the caller's `M`, proven equal by a
            # constraint): a reshape keeps every user's type as it was inferred.
            replacement = builder.value(tc_shape.ReshapeOp, [replacement], result.type)
        if result.name_hint and replacement not in call.operands:
            replacement.name_hint = result.name_hint  # the caller's name for it
        replace_all_uses(result, replacement)
    detach_operands(call)
    call.parent = None
    return list(staging.ops)


@register_pass
@dataclass(frozen=True)
class Inline(ModulePass):
    """Inline every `func.call`; the callees stay (every function is exported)."""

    name = "inline"

    def run(self, module: Module) -> bool:
        return inline_calls(module) > 0
