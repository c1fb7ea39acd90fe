"""Module verifier: every op's own rules, then structure (terminators, dominance, calls)."""

from __future__ import annotations

from tensorc.ir.core import Block, IsolatedFromAbove, Operation, Terminator, Value, VerifyError
from tensorc.ir.dialects.func import CallOp, FuncOp, Module
from tensorc.ir.typecheck import types_compatible


def verify_module(module: Module) -> None:
    """Raise VerifyError (with `.op`) at the first broken invariant."""
    names: set[str] = set()
    for function in module.functions:
        if not isinstance(function, FuncOp):
            raise VerifyError("a module holds only func.func ops", function)
        if function.sym_name in names:
            raise VerifyError(f"function @{function.sym_name} is defined twice", function)
        names.add(function.sym_name)
    for function in module.functions:
        verify_function(function, module)


def verify_function(function: FuncOp, module: Module | None = None) -> None:
    function.verify()
    _verify_block(function.body, visible=set(), module=module)


def _verify_block(block: Block, visible: set[int], module: Module | None) -> None:
    defined = set(visible) | {id(a) for a in block.args}
    for index, op in enumerate(block.ops):
        if op.parent is not block:
            raise VerifyError(f"{op.name} has a stale parent link", op)
        for operand in op.operands:
            if id(operand) not in defined:
                raise VerifyError(
                    f"{op.name} uses a value that does not dominate it ({_describe(operand)})", op
                )
        op.verify()
        is_last = index == len(block.ops) - 1
        if Terminator in op.traits and not is_last:
            raise VerifyError(f"{op.name} must be the last op of its block", op)
        if isinstance(op, CallOp) and module is not None:
            _verify_call(op, module)
        inner_visible = set() if IsolatedFromAbove in op.traits else defined
        for region in op.regions:
            for inner in region.blocks:
                _verify_block(inner, inner_visible, module)
        for result in op.results:
            defined.add(id(result))


def _verify_call(op: CallOp, module: Module) -> None:
    callee = module.lookup(op.callee.name)
    if callee is None:
        raise VerifyError(f"func.call of unknown function @{op.callee.name}", op)
    signature = callee.function_type
    if len(signature.inputs) != len(op.operands) or not all(
        types_compatible(v.type, t) for v, t in zip(op.operands, signature.inputs)
    ):
        raise VerifyError(f"func.call @{op.callee.name}: argument types do not match", op)
    if len(signature.results) != len(op.results):
        raise VerifyError(f"func.call @{op.callee.name}: wrong number of results", op)


def _describe(value: Value) -> str:
    owner = value.owner
    if isinstance(owner, Operation):
        return f"a result of {owner.name}"
    return "a block argument of another block"
