"""The IR's text form. Every op prints as

    %r = dialect.op %a, %b {key = value} : (argument types) -> result type

functions as `func.func @name(%x: f32[N]) -> f32[N] { ... }`, regions as `{ ^bb0(...): ... }`.
Names come from source-level hints (`%loss`) made unique per function, else numbers. Printing
a module, parsing it and printing again gives the same text.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from tensorc.ir.affine import AffineMap
from tensorc.ir.attributes import ShapeConstraint, SymbolRef
from tensorc.ir.core import Block, Operation, Value
from tensorc.ir.dialects.func import FuncOp, Module
from tensorc.ir.dims import DimExpr
from tensorc.ir.dtypes import DType
from tensorc.ir.types import FunctionType, TensorType, format_results

INDENT = "  "


def format_float(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    text = repr(float(value))
    return text if any(c in text for c in ".e") else text + ".0"


def format_attr(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, str):
        return json.dumps(value)
    if value is None:
        return "none"
    if isinstance(value, DType):
        return str(value)
    if isinstance(value, DimExpr):
        static = value.value
        return str(static) if static is not None else f"#dim<{value}>"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_attr(v) for v in value) + "]"
    if isinstance(value, SymbolRef):
        return str(value)
    if isinstance(value, ShapeConstraint):
        return (
            f"#constraint<{value.kind} {value.lhs}, {value.rhs}, {value.error}, "
            f"{json.dumps(value.message)}>"
        )
    if isinstance(value, TensorType):
        return f"#type<{value}>"
    if isinstance(value, AffineMap):
        return f"#map<{value}>"
    if isinstance(value, FunctionType):
        return f"#type<{value}>"
    if isinstance(value, np.ndarray):
        return format_dense(value)
    raise TypeError(f"cannot print attribute value {value!r}")


def format_dense(array: np.ndarray) -> str:
    dtype = DType.from_numpy(array.dtype)
    type_text = str(TensorType.of(dtype, array.shape))
    if array.size > 0 and np.all(array.reshape(-1) == array.reshape(-1)[0]) and array.ndim > 0:
        return f"dense<splat {_format_element(array.reshape(-1)[0], dtype)} : {type_text}>"
    return f"dense<{_format_nested(array, dtype)} : {type_text}>"


def _format_element(item: Any, dtype: DType) -> str:
    if dtype.is_bool:
        return "true" if bool(item) else "false"
    if dtype.is_int:
        return str(int(item))
    value = float(item)
    if math.isnan(value) or math.isinf(value):
        return format_float(value)
    text = str(item)  # NumPy's shortest repr that round-trips in the array's own precision
    return text if any(c in text for c in ".e") else text + ".0"


def _format_nested(array: np.ndarray, dtype: DType) -> str:
    if array.ndim == 0:
        return _format_element(array[()], dtype)
    return "[" + ", ".join(_format_nested(sub, dtype) for sub in array) + "]"


class Printer:
    def __init__(self, print_locations: bool = False) -> None:
        self.print_locations = print_locations
        self.lines: list[str] = []
        self.names: dict[int, str] = {}
        self.used: set[str] = set()
        self.counter = 0

    # ----- naming --------------------------------------------------------------------------
    def _reset_names(self) -> None:
        self.names = {}
        self.used = set()
        self.counter = 0

    def name_of(self, value: Value) -> str:
        key = id(value)
        if key in self.names:
            return self.names[key]
        hint = value.name_hint
        if hint and not hint.isdigit():
            candidate = hint
            suffix = 1
            while candidate in self.used:
                candidate = f"{hint}_{suffix}"
                suffix += 1
        else:
            while str(self.counter) in self.used:
                self.counter += 1
            candidate = str(self.counter)
            self.counter += 1
        self.used.add(candidate)
        self.names[key] = "%" + candidate
        return self.names[key]

    def ref(self, value: Value) -> str:
        if id(value) not in self.names:
            return "%<<undefined>>"
        return self.names[id(value)]

    # ----- printing -------------------------------------------------------------------------
    def print_module(self, module: Module) -> str:
        chunks = [self.print_function(f) for f in module.functions]
        return "\n\n".join(chunks) + ("\n" if chunks else "")

    def print_function(self, function: FuncOp) -> str:
        self._reset_names()
        self.lines = []
        params = ", ".join(f"{self.name_of(a)}: {a.type}" for a in function.args)
        header = f"func.func @{function.sym_name}({params})"
        header += f" -> {format_results(function.function_type.results)}"
        extra = {
            k: v
            for k, v in function.attributes.items()
            if k not in ("sym_name", "function_type") and v is not None
        }
        if extra:
            header += f" attributes {self._attr_dict(extra)}"
        self.lines.append(header + " {")
        self._print_block_ops(function.body, 1)
        self.lines.append("}" + self._loc(function))
        return "\n".join(self.lines)

    def _print_block_ops(self, block: Block, depth: int) -> None:
        for op in block.ops:
            self._print_op(op, depth)

    def _print_op(self, op: Operation, depth: int) -> None:
        pad = INDENT * depth
        results = ", ".join(self.name_of(r) for r in op.results)
        text = pad + (f"{results} = " if results else "") + op.name
        if op.operands:
            text += " " + ", ".join(self.ref(v) for v in op.operands)
        if op.attributes:
            text += " " + self._attr_dict(op.attributes)
        operand_types = ", ".join(str(v.type) for v in op.operands)
        result_types = [r.type for r in op.results]
        result_text = format_results(result_types) if result_types else "()"
        text += f" : ({operand_types}) -> {result_text}"
        if not op.regions:
            self.lines.append(text + self._loc(op))
            return
        self.lines.append(text + " {")
        for region in op.regions:
            for block in region.blocks:
                args = ", ".join(f"{self.name_of(a)}: {a.type}" for a in block.args)
                self.lines.append(f"{pad}^bb0({args}):")
                self._print_block_ops(block, depth + 1)
        self.lines.append(pad + "}" + self._loc(op))

    def _attr_dict(self, attributes: dict[str, Any]) -> str:
        items = ", ".join(f"{k} = {format_attr(v)}" for k, v in sorted(attributes.items()))
        return "{" + items + "}"

    def _loc(self, op: Operation) -> str:
        if not self.print_locations or op.loc is None:
            return ""
        return " " + op.loc.ir_text()


def print_module(module: Module, print_locations: bool = False) -> str:
    return Printer(print_locations).print_module(module)


def print_function(function: FuncOp, print_locations: bool = False) -> str:
    return Printer(print_locations).print_function(function)


def print_op(op: Operation) -> str:
    """One op on its own (operands it does not define print by hint or position)."""
    printer = Printer()
    for operand in op.operands:
        printer.name_of(operand)
    printer._print_op(op, 0)
    return "\n".join(printer.lines)
