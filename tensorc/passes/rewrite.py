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

Linear time. `Block.remove` and `Block.insert_before` search the block for their op, so
erasing or inserting k ops one at a time in an n-op block costs O(k·n). The rewriter avoids
both: an erased op is detached at once (operands dropped, `parent` None) but left in its
block's list until `apply_patterns` ends, when each touched block is compacted in one sweep;
and it inserts before an anchor by searching outward from where it last inserted, which is
next to the op being rewritten. Patterns that walk `block.ops` themselves must skip ops whose
`parent` is None. `erase_ops` and `replace_all_uses` are the same idea for passes that erase or
redirect many ops at once (DCE, CSE, folding).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from tensorc.ir.core import Block, Operation, Pure, Value, VerifyError
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
        # Sets of ops (hashed by identity) rather than of ids: an erased op stays referenced,
        # so a new op can never reuse its id and be mistaken for it.
        self.queued: set[Operation] = set()
        self.erased: set[Operation] = set()
        self.changed = False
        self._dirty_blocks: dict[int, Block] = {}
        self._insert_hint: dict[int, int] = {}

    # ----- worklist -------------------------------------------------------------------------
    def push(self, op: Operation) -> None:
        if op in self.queued or op in self.erased:
            return
        self.queued.add(op)
        self.worklist.append(op)

    def pop(self) -> Operation | None:
        while self.worklist:
            op = self.worklist.pop()
            self.queued.discard(op)
            if op not in self.erased and op.parent is not None:
                return op
        return None

    def push_users(self, values: Iterable[Value]) -> None:
        for value in values:
            for use in value.uses:
                self.push(use.op)

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
        types = None if result_type is None else [result_type]
        op = op_class.build(list(operands), attributes, loc=anchor.loc, result_types=types)
        return self.insert_before(anchor, op).result

    def insert_before(self, anchor: Operation, op: Operation) -> Operation:
        block = anchor.parent
        assert block is not None, f"cannot insert before {anchor.name}: it is not in a block"
        if op.loc is None:
            op.loc = anchor.loc
        index = self._index_of(block, anchor)
        block.ops.insert(index, op)
        op.parent = block
        self._insert_hint[id(block)] = index + 1
        self.push(op)
        self.changed = True
        return op

    def _index_of(self, block: Block, anchor: Operation) -> int:
        """`block.ops.index(anchor)`, searching outward from the last insertion point."""
        ops = block.ops
        size = len(ops)
        hint = min(self._insert_hint.get(id(block), 0), size - 1)
        for distance in range(size):
            above, below = hint + distance, hint - distance
            if above < size and ops[above] is anchor:
                return above
            if below >= 0 and ops[below] is anchor:
                return below
            if above >= size and below < 0:
                break
        raise ValueError(f"{anchor.name} is not in its block")

    def update_operands(self, op: Operation, values: Sequence[Value]) -> None:
        """Change `op`'s operands in place (types must keep the op valid)."""
        self.push_producers(op)
        detach_operands(op)
        op.set_operands(list(values))
        self.push(op)
        self.push_producers(op)
        self.push_users(op.results)
        self.changed = True

    def replace_op(self, op: Operation, values: Sequence[Value]) -> None:
        if len(values) != len(op.results):
            raise ValueError(f"{op.name}: {len(values)} replacements for {len(op.results)}")
        for result, value in zip(op.results, values):
            if result.name_hint and not value.name_hint:
                value.name_hint = result.name_hint
        self.push_users(op.results)
        for value in values:
            owner = value.owner
            if isinstance(owner, Operation):
                self.push(owner)
        for result, value in zip(op.results, values):
            replace_all_uses(result, value)
        self.erase_op(op)

    def erase_op(self, op: Operation) -> None:
        for result in op.results:
            if result.uses:
                raise VerifyError(f"erasing {op.name} whose result is still used", op)
        self.push_producers(op)
        for nested in list(op.walk())[1:]:
            detach_operands(nested)
            self.erased.add(nested)
        detach_operands(op)
        block = op.parent
        if block is not None:
            self._dirty_blocks[id(block)] = block
        op.parent = None
        self.erased.add(op)
        self.changed = True

    def compact(self) -> None:
        """Take the erased ops out of their blocks' lists (one sweep per touched block)."""
        for block in self._dirty_blocks.values():
            block.ops[:] = [op for op in block.ops if op.parent is block]
        self._dirty_blocks.clear()


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
    try:
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
    finally:
        rewriter.compact()
    return rewriter.changed


# ----- bulk edits -------------------------------------------------------------------------------


def detach_operands(op: Operation) -> None:
    """`op.drop_operands()`, finding each use by searching its value's uses from both ends.

    `drop_operands` rescans the whole use list of every operand, so erasing the k users of
    a value one by one costs O(k²); users are usually erased in program order (or in reverse),
    which puts their uses near one end of the list.
    """
    for index, value in enumerate(op.operands):
        uses = value.uses
        low, high = 0, len(uses) - 1
        while low <= high:
            if uses[low].op is op and uses[low].index == index:
                del uses[low]
                break
            if uses[high].op is op and uses[high].index == index:
                del uses[high]
                break
            low += 1
            high -= 1
    op._operands = []  # their uses were removed just above


def replace_all_uses(old: Value, new: Value) -> None:
    """`old.replace_all_uses_with(new)` in time linear in the number of uses (the per-use
    `set_operand` rescans `old.uses` each time, which is quadratic for a value used often)."""
    if new is old or not old.uses:
        return
    moved = old.uses
    old.uses = []
    for use in moved:
        use.op._operands[use.index] = new  # the bulk form of Operation.set_operand
    new.uses.extend(moved)


def erase_ops(ops: Iterable[Operation]) -> None:
    """Erase `ops` (and the ops nested in their regions) together, in time linear in their
    number and in the uses of their operands. Their results may be used only by each other.

    `Operation.erase` searches the block and rescans each operand's uses per op, which makes
    erasing many ops of a long block quadratic; this sweeps each touched block and value once.
    """
    roots = list(dict.fromkeys(ops))
    doomed: set[Operation] = set()
    for op in roots:
        doomed.update(op.walk())
    for op in roots:
        for result in op.results:
            if any(use.op not in doomed for use in result.uses):
                raise VerifyError(f"erasing {op.name} whose result is still used", op)
    touched: dict[int, Value] = {}
    for op in doomed:
        for operand in op.operands:
            touched[id(operand)] = operand
    for value in touched.values():
        value.uses = [use for use in value.uses if use.op not in doomed]
    for op in doomed:
        op._operands = []  # their uses were removed just above, in bulk
    blocks: dict[int, Block] = {}
    for op in roots:
        if op.parent is not None:
            blocks[id(op.parent)] = op.parent
        op.parent = None
    for block in blocks.values():
        block.ops[:] = [op for op in block.ops if op.parent is block]
