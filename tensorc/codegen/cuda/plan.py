"""The launch plan of a CUDA artifact: buffers, reuse slots and the ordered steps of a call.

It is plain JSON in the manifest (`"cuda": {"functions": {name: plan}}`, docs/abi.md), and
the runtime (`tensorc_runtime.cuda`) follows it without knowing anything about the IR:

    {"symbols": ["N", "H"],                        # the order of the kernels' i64 parameters
     "buffers": [{"id": 0, "dtype": "f32", "shape": ["N", "64"], "role": "input", "index": 0},
                 {"id": 5, "dtype": "f32", "shape": ["N", "H"], "role": "temporary",
                  "slot": 0},
                 {"id": 6, "dtype": "f32", "shape": ["N", "10"], "role": "output",
                  "index": 0},
                 {"id": 7, "dtype": "f32", "shape": ["N*H"], "role": "alias", "of": 5},
                 {"id": 8, "dtype": "i32", "shape": ["3"], "role": "constant",
                  "data": "<base64, little-endian>"}],
     "slots": 1,
     "checks": [{"op": "take", "indices": 1, "axis": 0, "size": "10"}],
     "steps": [{"kind": "launch", "kernel": "tensorc_mlp_k0_matmul", "op": 0,
                "grid": ["min(...)", "1", "1"], "block": ["256", "1", "1"],
                "params": [{"buffer": 0}, {"buffer": 1}, {"symbol": "N"}, {"error": 0}]},
               {"kind": "zero", "buffer": 6},
               {"kind": "copy", "src": 3, "dst": 6}]}

Roles: `input`/`output` are the call's arrays (`index` = parameter / result position);
`temporary` buffers live in the call's arena, one region per reuse `slot` (sized by the
largest buffer in it, 256-byte aligned); `alias` buffers share their root buffer's memory
(`tc.reshape`); `constant` buffers are uploaded once when the module loads. Sizes are
element counts: the product of the `shape` extents (each clamped at 0).

Slot reuse: one pass over the ops; a value takes a slot whose previous occupant (through
aliases) was last used strictly before the value is defined, preferring one of the same size
expression, so an op never overwrites its own operands (ops fused into one kernel count as
one op). The index operands of ops that check
indices stay alive until the call ends: the runtime may read a bad index after the stream
syncs.

Steps: `launch` (a grid and a block as expressions of the symbols: the runtime skips a launch
with a zero-sized grid), `zero` (fill a buffer with zero bytes) and `copy` (device to device,
the destination's size).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from tensorc.ir.core import Operation, Value
from tensorc.ir.dialects.func import FuncOp
from tensorc.ir.dims import DimExpr
from tensorc.ir.types import TensorType

CHECKED_OPS = frozenset(
    {"tc.take", "tc.take_along_axis", "tc.scatter_add", "tc.scatter_add_along_axis"}
)
ROLES = ("input", "output", "temporary", "alias", "constant")


@dataclass
class Buffer:
    id: int
    type: TensorType
    role: str
    index: int | None = None  # input / output position
    slot: int | None = None  # temporary
    alias_of: int | None = None  # alias: the root buffer's id
    data: bytes | None = None  # constant

    def to_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "id": self.id,
            "dtype": str(self.type.dtype),
            "shape": [str(d) for d in self.type.shape],
            "role": self.role,
        }
        if self.index is not None:
            entry["index"] = self.index
        if self.slot is not None:
            entry["slot"] = self.slot
        if self.alias_of is not None:
            entry["of"] = self.alias_of
        if self.data is not None:
            entry["data"] = base64.b64encode(self.data).decode("ascii")
        return entry


@dataclass
class Launch:
    kernel: str
    op: int
    grid: DimExpr
    block: DimExpr
    params: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "launch",
            "kernel": self.kernel,
            "op": self.op,
            "grid": [str(self.grid), "1", "1"],
            "block": [str(self.block), "1", "1"],
            "params": self.params,
        }


@dataclass
class Check:
    op: str
    indices: int  # buffer id
    axis: int
    size: DimExpr

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "indices": self.indices, "axis": self.axis, "size": str(self.size)}


@dataclass
class FunctionPlan:
    """The plan of one function (see the module documentation)."""

    name: str
    symbols: list[str]
    buffers: list[Buffer] = field(default_factory=list)
    slots: int = 0
    checks: list[Check] = field(default_factory=list)
    steps: list[Any] = field(default_factory=list)  # Launch or plain dicts

    def launches(self) -> list[Launch]:
        return [step for step in self.steps if isinstance(step, Launch)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "symbols": list(self.symbols),
            "buffers": [b.to_dict() for b in self.buffers],
            "slots": self.slots,
            "checks": [c.to_dict() for c in self.checks],
            "steps": [s.to_dict() if isinstance(s, Launch) else dict(s) for s in self.steps],
        }


@dataclass
class _Slot:
    key: tuple
    busy_until: int


class BufferPlanner:
    """Assigns a buffer to every tensor value of a function (see the module documentation)."""

    def __init__(self, function: FuncOp, plan: FunctionPlan,
                 groups: list[list[Operation]] | None = None) -> None:
        self.function = function
        self.plan = plan
        ops = function.body.ops
        groups = groups if groups is not None else [[op] for op in ops[:-1]]
        # Ops fused into one kernel share a position: their buffers live across the kernel.
        self.position = {id(op): index for index, group in enumerate(groups) for op in group}
        if ops:
            self.position[id(ops[-1])] = len(groups)
        self.of_value: dict[int, int] = {}  # id(value) -> buffer id
        self.owner: dict[int, Value] = {}  # id(value) -> the value owning its memory
        self.final_copies: list[tuple[Value, int]] = []  # (value, output buffer id)
        self._slots: list[_Slot] = []

    def new(self, value_type: TensorType, role: str, **fields: Any) -> int:
        buffer = Buffer(len(self.plan.buffers), value_type, role, **fields)
        self.plan.buffers.append(buffer)
        return buffer.id

    def buffer(self, value: Value) -> int:
        return self.of_value[id(value)]

    def run(self) -> None:
        ops = self.function.body.ops
        returned = list(ops[-1].operands) if ops else []
        for index, arg in enumerate(self.function.args):
            self.of_value[id(arg)] = self.new(arg.type, "input", index=index)
        for index, value in enumerate(returned):
            output = self.new(value.type, "output", index=index)
            if id(value) in self.of_value:
                self.final_copies.append((value, output))
            else:
                self.of_value[id(value)] = output
        for op in ops[:-1]:
            if op.name == "tc.reshape" and id(op.result) not in self.of_value:
                root = self.owner.get(id(op.x), op.x)
                self.owner[id(op.result)] = root
        last_use = self._last_uses(ops)
        for op in ops[:-1]:
            position = self.position[id(op)]
            for result in op.results:
                if id(result) in self.of_value:
                    continue
                if op.name == "tc.constant":
                    self.of_value[id(result)] = self.new(result.type, "constant",
                                                         data=constant_data(op))
                elif id(result) in self.owner:
                    root = self.buffer(self.owner[id(result)])
                    self.of_value[id(result)] = self.new(result.type, "alias", alias_of=root)
                else:
                    slot = self._choose_slot(result.type, position, last_use.get(id(result),
                                                                                 position))
                    self.of_value[id(result)] = self.new(result.type, "temporary", slot=slot)
        self.plan.slots = len(self._slots)

    def _last_uses(self, ops: list[Operation]) -> dict[int, int]:
        """Op position of the last use of each memory owner (through aliases); index operands
        of checked ops live to the end."""
        last: dict[int, int] = {}
        end = len(ops)
        for op in ops:
            position = self.position[id(op)]
            for operand in op.operands:
                root = self.owner.get(id(operand), operand)
                last[id(root)] = max(last.get(id(root), position), position)
            if op.name in CHECKED_OPS:
                root = self.owner.get(id(op.indices), op.indices)
                last[id(root)] = end
        return last

    def _choose_slot(self, value_type: TensorType, position: int, busy_until: int) -> int:
        key = (str(value_type.dtype), tuple(sorted(str(d) for d in value_type.shape)))
        free = [i for i, slot in enumerate(self._slots) if slot.busy_until < position]
        chosen = next((i for i in free if self._slots[i].key == key), None)
        if chosen is None and free:
            chosen = free[0]
        if chosen is None:
            self._slots.append(_Slot(key, busy_until))
            return len(self._slots) - 1
        self._slots[chosen] = _Slot(key, busy_until)
        return chosen


def constant_data(op: Operation) -> bytes:
    """A `tc.constant`'s elements as stored: little-endian, bools as one byte."""
    value = op.value
    if value.dtype.kind == "b":
        return value.astype("u1").tobytes()
    return value.astype(value.dtype.newbyteorder("<"), copy=False).tobytes()
