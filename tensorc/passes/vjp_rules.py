"""The table of vector-Jacobian products, one rule per differentiable `tc` op.

    VJP_RULES[op.name](builder, op, cotangents) -> one cotangent (or None) per operand

`cotangents` holds one value per result of `op`, typed like that result; the rule returns,
for each operand, the cotangent it contributes (typed like the operand) or None when the
operand receives no gradient. The rules themselves live in `vjp_elementwise`, `vjp_shape`,
`vjp_reduce` and `vjp_nn`, written for the single result every `tc` op has.

`NON_DIFFERENTIABLE` lists the ops that pass no gradient at all: their results are integers,
booleans, or piecewise constant (`floor`, `sign`, `floordiv`), or they are constants, or they
block the gradient on purpose (`stop_gradient`). Autodiff treats their results as constants.
Every `tc` op is in exactly one of the two (checked by a unit test).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tensorc.ir.core import Operation, Value
from tensorc.ir.location import Location
from tensorc.passes.pass_manager import PipelineError
from tensorc.passes.vjp_builder import GradBuilder
from tensorc.passes.vjp_elementwise import ELEMENTWISE_VJPS
from tensorc.passes.vjp_nn import NN_VJPS
from tensorc.passes.vjp_reduce import REDUCE_VJPS
from tensorc.passes.vjp_shape import SHAPE_VJPS

Cotangents = list[Value | None]
VJPRule = Callable[[GradBuilder, Operation, Sequence[Value]], Cotangents]
SingleResultRule = Callable[[GradBuilder, Operation, Value], Cotangents]


class AutodiffError(PipelineError):
    """The IR cannot be differentiated as it stands; `op` is the offending operation.

    Verified IR gets here only when the pipeline runs `autodiff` too late or too early (a
    `func.call` before `inline`, a `kernel.generic` after `fusion`): like `fusion`'s own
    precondition, it is a pipeline error. The driver reports one that has a location as a
    program error there (a caret under the call that `--passes=autodiff` left in place)."""

    def __init__(self, message: str, op: Operation | None = None) -> None:
        where = f" (at {op.loc})" if op is not None and op.loc is not None else ""
        super().__init__(message + where)
        self.message = message
        self.op = op

    @property
    def loc(self) -> Location | None:
        """Where the offending op is, when it is known."""
        return self.op.loc if self.op is not None else None


def _single_result(rule: SingleResultRule) -> VJPRule:
    """Adapt a rule written for the cotangent `g` of an op's only result."""

    def apply(b: GradBuilder, op: Operation, cotangents: Sequence[Value]) -> Cotangents:
        (g,) = cotangents
        return rule(b, op, g)

    apply.__name__ = rule.__name__
    apply.__doc__ = rule.__doc__
    return apply


def grad_vjp(b: GradBuilder, op: Operation, cotangents: Sequence[Value]) -> Cotangents:
    """A `tc.grad` is differentiated through its expansion: autodiff expands every `tc.grad`
    before any later one (in block order, so inner before outer) can see it."""
    raise AutodiffError("tc.grad must be expanded before a gradient through it is taken", op)


def _table() -> dict[str, VJPRule]:
    table: dict[str, VJPRule] = {}
    for group in (ELEMENTWISE_VJPS, SHAPE_VJPS, REDUCE_VJPS, NN_VJPS):
        duplicated = table.keys() & group.keys()
        if duplicated:
            raise RuntimeError(f"VJP rules defined twice: {sorted(duplicated)}")
        table.update({name: _single_result(rule) for name, rule in group.items()})
    table["tc.grad"] = grad_vjp
    return table


VJP_RULES: dict[str, VJPRule] = _table()

NON_DIFFERENTIABLE: frozenset[str] = frozenset(
    {
        # integer or boolean results
        "tc.argmax",
        "tc.argmin",
        "tc.lt",
        "tc.le",
        "tc.gt",
        "tc.ge",
        "tc.eq",
        "tc.ne",
        "tc.not",
        "tc.and",
        "tc.or",
        # piecewise constant: the derivative is zero wherever it exists
        "tc.floor",
        "tc.ceil",
        "tc.sign",
        "tc.floordiv",
        # constants and sizes
        "tc.constant",
        "tc.iota",
        "tc.dim_size",
        "tc.one_hot",
        # the gradient is blocked on purpose; autodiff removes these afterwards
        "tc.stop_gradient",
    }
)
