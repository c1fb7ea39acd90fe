"""`autodiff`: replace every `tc.grad` by the reverse-mode computation, in the same function.

For `grad(y, [w1, ..., wk])` the pass

1. finds the ops on a path from some `wi` to `y` (the *tape*): forward from the `wi`
   through float values (integer and boolean values carry no gradient, and ops in
   `NON_DIFFERENTIABLE` pass none), intersected with backward from `y`. A `wi` may be any
   value, also the result of an op that passes no gradient (`f = floor(x)`): its producer
   is not on the tape;
2. walks the tape in reverse, from the seed `dy/dy = 1`, calling each op's rule in
   `VJP_RULES` with the cotangents of its results and summing (`tc.add`) the contributions
   that reach each value;
3. emits those backward ops right before the `tc.grad` op, where everything they use (the
   forward values) is available, and replaces the op's results by the cotangents of the
   `wi` -- zeros (`tc.constant` splat + `tc.broadcast_to`) for a `wi` that `y` does not
   depend on, or that is not a float. One sweep serves every `wi`, so shared work is done
   once. Backward ops that turn out unused (cotangents of operands that need none) are
   erased again.

Grads are expanded earliest first. An inner grad always precedes the outer grad that uses
it, so by the time the outer one is expanded, the inner one is plain ops that are simply
differentiated again: nested gradients (Hessian-vector products) need nothing more.
After every grad is expanded, each `tc.stop_gradient` is replaced by its operand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tensorc.ir.core import Block, Operation, Value
from tensorc.ir.dialects.func import FuncOp, Module
from tensorc.ir.dialects.tc import GradOp, StopGradientOp
from tensorc.passes.dce import dead_ops
from tensorc.passes.pass_manager import ModulePass, register_pass
from tensorc.passes.rewrite import erase_ops
from tensorc.passes.vjp_builder import GradBuilder
from tensorc.passes.vjp_rules import NON_DIFFERENTIABLE, VJP_RULES, AutodiffError


@register_pass
@dataclass(frozen=True)
class Autodiff(ModulePass):
    """Expand `tc.grad` ops into reverse-mode derivative code; drop `tc.stop_gradient`."""

    name = "autodiff"

    def run(self, module: Module) -> bool:
        return sum(differentiate_function(function) for function in module.functions) > 0


def differentiate_function(function: FuncOp) -> int:
    """Expand every `tc.grad` of `function` and drop its `tc.stop_gradient`s; returns how many
    ops of the two kinds it replaced."""
    replaced = 0
    while (grad := _first_grad(function)) is not None:
        expand_grad(grad)
        replaced += 1
    for op in list(function.walk()):
        if isinstance(op, StopGradientOp):
            op.replace_with([op.x])
            replaced += 1
    return replaced


def _first_grad(function: FuncOp) -> GradOp | None:
    return next((op for op in function.walk() if isinstance(op, GradOp)), None)


def expand_grad(grad: GradOp) -> None:
    """Replace one `tc.grad` op by its reverse-mode computation."""
    block = grad.parent
    assert block is not None
    forward = block.ops[: block.index_of(grad)]
    tape, varied = _tape(forward, grad.y, grad.wrt)
    existing = {id(op) for op in block.ops}
    builder = GradBuilder(block, before=grad, loc=grad.loc)
    cotangents = _backward(builder, grad.y, tape, varied)
    builder.loc = grad.loc
    gradients = [
        builder.coerce(cotangents[id(w)], w.type) if id(w) in cotangents else builder.zeros(w.type)
        for w in grad.wrt
    ]
    grad.replace_with(gradients)
    _erase_unused(block, existing)


def _tape(
    forward: Sequence[Operation], y: Value, wrt: Sequence[Value]
) -> tuple[list[Operation], set[int]]:
    """The ops between `wrt` and `y` in program order, and the ids of the values that vary
    with `wrt` (the only ones that receive cotangents)."""
    varied = {id(w) for w in wrt if w.type.dtype.is_float}
    for op in forward:
        if op.name in NON_DIFFERENTIABLE:
            continue
        if any(id(operand) in varied for operand in op.operands):
            varied.update(id(r) for r in op.results if r.type.dtype.is_float)
    needed = {id(y)}
    tape: list[Operation] = []
    for op in reversed(forward):
        if not any(id(r) in needed for r in op.results):
            continue
        needed.update(id(operand) for operand in op.operands)
        # an op whose result is a `wrt` itself (`f = floor(x)`, grad w.r.t. f) but that
        # passes nothing on to a varied operand is a source, not a step, of the tape
        if op.name in NON_DIFFERENTIABLE or not any(id(o) in varied for o in op.operands):
            continue
        if any(id(r) in varied for r in op.results):
            tape.append(op)
    tape.reverse()
    return tape, varied


def _backward(
    builder: GradBuilder, y: Value, tape: Sequence[Operation], varied: set[int]
) -> dict[int, Value]:
    """Cotangents, by value id, of every varied value on the tape (and of `y` itself)."""
    cotangents: dict[int, Value] = {}
    if id(y) in varied:
        cotangents[id(y)] = builder.constant(1.0, y.type.dtype)
    for op in reversed(tape):
        result_cotangents = [cotangents.get(id(r)) for r in op.results]
        if all(ct is None for ct in result_cotangents):
            continue
        rule = VJP_RULES.get(op.name)
        if rule is None:
            raise AutodiffError(_missing_rule_message(op), op)
        builder.loc = op.loc
        filled = [
            ct if ct is not None else builder.zeros(result.type)
            for ct, result in zip(result_cotangents, op.results)
        ]
        contributions = rule(builder, op, filled)
        for operand, contribution in zip(op.operands, contributions):
            if contribution is None or id(operand) not in varied:
                continue
            _accumulate(builder, cotangents, operand, contribution)
    return cotangents


def _missing_rule_message(op: Operation) -> str:
    if op.name == "func.call":
        return "autodiff: cannot differentiate through func.call; run 'inline' before 'autodiff'"
    if op.name == "kernel.generic":
        return (
            "autodiff: cannot differentiate through kernel.generic (grad ops are expanded "
            "before fusion)"
        )
    return f"autodiff: no gradient rule for {op.name}"


def _accumulate(
    builder: GradBuilder, cotangents: dict[int, Value], value: Value, contribution: Value
) -> None:
    contribution = builder.coerce(contribution, value.type)
    previous = cotangents.get(id(value))
    cotangents[id(value)] = (
        contribution if previous is None else builder.add(previous, contribution)
    )


def _erase_unused(block: Block, existing: set[int]) -> None:
    """Erase the ops this expansion created that nothing uses (dce's sweep, kept to them)."""
    erase_ops(dead_ops(block, lambda op: id(op) not in existing))
