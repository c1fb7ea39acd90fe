"""Bufferization: where every tensor value of a function lives during a call.

Values have value semantics in the IR; in memory each one is a contiguous row-major buffer:

    argument   a parameter: the caller's buffer (read only)
    result     a returned value: written in place into the caller's result buffer
    constant   a `tc.constant`: a private global of the artifact (read only)
    alias      a `tc.reshape` (same elements, same order): its operand's buffer
    arena      any other temporary: a slot of the call's arena

A value returned twice, or a returned parameter, is copied into the other result buffers at
the end; a returned `tc.reshape` or `tc.constant` is copied into its result buffer by the op.

Arena slots are assigned by liveness in one pass over the ops: a value takes a slot whose
previous occupant's last use (through aliases) comes strictly before the value's definition,
so an op never writes over its own operands. A free slot whose size expression is the same
is preferred, then any free slot (it grows to the larger size), then a new one. Slot sizes are
run-time maxima of symbolic sizes, each rounded up to 64 bytes; offsets are their prefix sums.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from tensorc.codegen.cpu.irutil import itemsize
from tensorc.ir.core import Value
from tensorc.ir.dialects.func import FuncOp
from tensorc.ir.types import TensorType

ARENA_ALIGNMENT = 64


class StorageKind(Enum):
    ARGUMENT = "argument"
    RESULT = "result"
    CONSTANT = "constant"
    ALIAS = "alias"
    ARENA = "arena"


@dataclass(frozen=True)
class Storage:
    kind: StorageKind
    index: int = 0  # the argument, result or arena slot index
    source: Value | None = None  # ALIAS: the value whose buffer this one shares


@dataclass
class Slot:
    """One region of the arena, shared over time by values whose lifetimes do not overlap."""

    types: list[TensorType] = field(default_factory=list)
    busy_until: int = -1  # op index of the current occupant's last use


def size_key(tensor_type: TensorType) -> tuple:
    return (itemsize(tensor_type.dtype), tuple(sorted(str(d) for d in tensor_type.shape)))


@dataclass
class BufferPlan:
    storage: dict[int, Storage]  # keyed by id(value): values are not hashable by content
    slots: list[Slot]
    result_copies: list[tuple[int, Value]]  # (result index, value) copied before returning

    def of(self, value: Value) -> Storage:
        return self.storage[id(value)]


def plan_buffers(function: FuncOp) -> BufferPlan:
    ops = function.body.ops
    returned = list(ops[-1].operands) if ops else []
    storage: dict[int, Storage] = {
        id(arg): Storage(StorageKind.ARGUMENT, index) for index, arg in enumerate(function.args)
    }
    result_copies: list[tuple[int, Value]] = []
    for index, value in enumerate(returned):
        if id(value) in storage:
            result_copies.append((index, value))
        else:
            storage[id(value)] = Storage(StorageKind.RESULT, index)
    for op in ops[:-1]:
        for result in op.results:
            if id(result) in storage:
                continue
            if op.name == "tc.constant":
                storage[id(result)] = Storage(StorageKind.CONSTANT)
            elif op.name == "tc.reshape":
                storage[id(result)] = Storage(StorageKind.ALIAS, source=op.operands[0])
    last_use = _last_uses(function, storage)
    slots: list[Slot] = []
    for position, op in enumerate(ops[:-1]):
        for result in op.results:
            if id(result) in storage:
                continue
            slot_index = _choose_slot(slots, result.type, position)
            slot = slots[slot_index]
            slot.types.append(result.type)
            slot.busy_until = last_use.get(id(result), position)
            storage[id(result)] = Storage(StorageKind.ARENA, slot_index)
    return BufferPlan(storage, slots, result_copies)


def root_of(value: Value, storage: dict[int, Storage]) -> Value:
    """The value that owns the buffer `value` uses (itself unless it is an alias)."""
    while True:
        entry = storage.get(id(value))
        if entry is None or entry.kind is not StorageKind.ALIAS or entry.source is None:
            return value
        value = entry.source


def _last_uses(function: FuncOp, storage: dict[int, Storage]) -> dict[int, int]:
    """Op index of the last use of each buffer owner, counting uses through aliases."""
    last: dict[int, int] = {}
    for position, op in enumerate(function.body.ops):
        for operand in op.operands:
            owner = root_of(operand, storage)
            last[id(owner)] = max(last.get(id(owner), position), position)
    return last


def _choose_slot(slots: list[Slot], tensor_type: TensorType, position: int) -> int:
    free = [index for index, slot in enumerate(slots) if slot.busy_until < position]
    key = size_key(tensor_type)
    for index in free:
        if size_key(slots[index].types[-1]) == key:
            return index
    if free:
        return free[0]
    slots.append(Slot())
    return len(slots) - 1
