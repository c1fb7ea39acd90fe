"""An insertion point for creating ops, as in MLIR's OpBuilder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tensorc.ir.core import Block, Operation, Value
from tensorc.ir.location import Location
from tensorc.ir.types import TensorType


class Builder:
    """Creates ops at the end of a block, or before an anchor op; new ops get `loc`."""

    def __init__(self, block: Block, before: Operation | None = None, loc: Location | None = None):
        self.block = block
        self.before = before
        self.loc = loc
        self._anchor_index = -1  # where `before` was last seen: checked, then trusted

    @staticmethod
    def before_op(op: Operation) -> Builder:
        assert op.parent is not None
        return Builder(op.parent, before=op, loc=op.loc)

    @staticmethod
    def at_end(block: Block, loc: Location | None = None) -> Builder:
        return Builder(block, loc=loc)

    def insert(self, op: Operation) -> Operation:
        if op.loc is None:
            op.loc = self.loc
        if self.before is None:
            self.block.append(op)
            return op
        ops = self.block.ops
        index = self._anchor_index
        if not 0 <= index < len(ops) or ops[index] is not self.before:
            index = self.block.index_of(self.before)  # a linear search, once per anchor
        self.block.insert(index, op)
        self._anchor_index = index + 1
        return op

    def create(
        self,
        op_class: type[Operation],
        operands: Sequence[Value] = (),
        result_types: Sequence[TensorType] | None = None,
        name_hint: str | None = None,
        **attributes: Any,
    ) -> Operation:
        op = op_class.build(list(operands), attributes, loc=self.loc, result_types=result_types)
        if name_hint and len(op.results) == 1:
            op.result.name_hint = name_hint
        return self.insert(op)

    def value(
        self,
        op_class: type[Operation],
        operands: Sequence[Value] = (),
        result_type: TensorType | None = None,
        name_hint: str | None = None,
        **attributes: Any,
    ) -> Value:
        """Create a single-result op and return its result."""
        types = None if result_type is None else [result_type]
        return self.create(op_class, operands, types, name_hint, **attributes).result
