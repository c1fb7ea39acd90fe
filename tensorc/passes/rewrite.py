"""Pattern rewriting with a worklist driver, as MLIR's greedy pattern rewrite driver.

A pattern matches ops by name and rewrites them through a `PatternRewriter`, which keeps the
worklist informed; `apply_patterns` runs folds, patterns and dead-code removal to a fixed point.
Work is proportional to the number of changes, not quadratic in the program size.

    class AddZero(RewritePattern):
        roots = ("tc.add",)

        def match_and_rewrite(self, op, rewriter) -> bool:
            if not is_splat(op.rhs, 0):
                return False
            rewriter.replace_op(op, [op.lhs])
            return True
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from tensorc.ir.builder import Builder
from tensorc.ir.core import Operation, Pure, Value
from tensorc.ir.dialects.func import FuncOp, Module
from tensorc.ir.types import TensorType


class RewritePattern:
    """Rewrites ops whose name is in `roots` (all ops when `roots` is empty)."""

    roots: ClassVar[tuple[str, ...]] = ()

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        raise NotImplementedError


class PatternRewriter:
    """The only way patterns change the IR, so the driver can revisit what changed."""

    def __init__(self) -> None:
        self.worklist: list[Operation] = []
        self.queued: set[int] = set()
        self.erased: set[int] = set()
        self.changed = False

    # ----- worklist -------------------------------------------------------------------------
    def push(self, op: Operation) -> None:
        key = id(op)
        if key in self.queued or key in self.erased:
            return
        self.queued.add(key)
        self.worklist.append(op)

    def pop(self) -> Operation | None:
        while self.worklist:
            op = self.worklist.pop()
            self.queued.discard(id(op))
            if id(op) not in self.erased and op.parent is not None:
                return op
        return None

    def push_users(self, values: Iterable[Value]) -> None:
        for value in values:
            for user in value.users():
                self.push(user)

    def push_producers(self, op: Operation) -> None:
        for operand in op.operands:
            owner = operand.owner
            if isinstance(owner, Operation):
                self.push(owner)

    # ----- mutation -------------------------------------------------------------------------
    def create(
        self,
        anchor: Operation,
        op_class: type[Operation],
        operands: Sequence[Value] = (),
        result_type: TensorType | None = None,
        **attributes: Any,
    ) -> Value:
        """Create a single-result op before `anchor`, at `anchor`'s location."""
        value = Builder.before_op(anchor).value(op_class, operands, result_type, **attributes)
        self.push(value.owner)  # type: ignore[arg-type]
        self.changed = True
        return value

    def insert_before(self, anchor: Operation, op: Operation) -> Operation:
        Builder.before_op(anchor).insert(op)
        self.push(op)
        self.changed = True
        return op

    def replace_op(self, op: Operation, values: Sequence[Value]) -> None:
        for result, value in zip(op.results, values):
            if result.name_hint and not value.name_hint:
                value.name_hint = result.name_hint
        self.push_users(op.results)
        self.push_producers(op)
        for value in values:
            owner = value.owner
            if isinstance(owner, Operation):
                self.push(owner)
        op.replace_with(list(values))
        self.erased.add(id(op))
        self.changed = True

    def erase_op(self, op: Operation) -> None:
        self.push_producers(op)
        op.erase()
        self.erased.add(id(op))
        self.changed = True


def is_dead(op: Operation) -> bool:
    return op.is_pure and not any(r.uses for r in op.results)


def apply_patterns(
    target: Module | FuncOp,
    patterns: Sequence[RewritePattern],
    fold: bool = True,
    max_rewrites: int | None = None,
) -> bool:
    """Apply folds and patterns until nothing changes. Returns whether anything changed."""
    by_root: dict[str, list[RewritePattern]] = {}
    generic: list[RewritePattern] = []
    for pattern in patterns:
        if not pattern.roots:
            generic.append(pattern)
        for root in pattern.roots:
            by_root.setdefault(root, []).append(pattern)
    functions = target.functions if isinstance(target, Module) else [target]
    rewriter = PatternRewriter()
    for function in functions:
        for op in reversed(list(function.walk())[1:]):
            rewriter.push(op)
    budget = max_rewrites if max_rewrites is not None else 50 * (len(rewriter.worklist) + 100)
    while (op := rewriter.pop()) is not None:
        if budget <= 0:
            break
        if is_dead(op) and Pure in op.traits:
            rewriter.erase_op(op)
            budget -= 1
            continue
        if fold:
            replacement = op.fold()
            if replacement is not None:
                rewriter.replace_op(op, replacement)
                budget -= 1
                continue
        for pattern in by_root.get(op.name, []) + generic:
            if pattern.match_and_rewrite(op, rewriter):
                budget -= 1
                break
    return rewriter.changed
