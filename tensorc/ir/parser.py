"""Parser for the IR's text form (the inverse of `printer`), with located errors.

`//` starts a comment to the end of the line outside types and attributes, so `.tcir` test
files can carry `// RUN:` and `// CHECK:` lines.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np

from tensorc.ir.affine import parse_affine_map
from tensorc.ir.attributes import (
    CONSTRAINT_ERRORS,
    CONSTRAINT_KINDS,
    ShapeConstraint,
    SymbolRef,
)
from tensorc.ir.core import Block, Operation, Region, Value, lookup_op
from tensorc.ir.diagnostics import Diagnostic, DiagnosticError
from tensorc.ir.dialects.func import FuncOp, Module
from tensorc.ir.dims import DimExpr, DimSyntaxError, parse_dim
from tensorc.ir.dtypes import DType
from tensorc.ir.location import Location
from tensorc.ir.types import FunctionType, TensorType

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_.$]*")
_VALUE = re.compile(r"%[A-Za-z0-9_.$]+")
_TOKEN_TEXT = re.compile(r"[^\s,\[\]<>:]+")
_STRING = re.compile(r'"(?:[^"\\\n]|\\[^\n])*"')
_NUMBER = re.compile(r"-?(?:\d+\.\d*(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+|\.\d+(?:[eE][-+]?\d+)?|\d+)")


MAX_NESTING = 64  # brackets within one attribute or dense constant
MAX_DENSE_ELEMENTS = 1 << 24


class IRParseError(DiagnosticError):
    pass


class Parser:
    def __init__(self, text: str, filename: str = "<ir>") -> None:
        self.text = text
        self.filename = filename
        self.pos = 0
        self.scopes: list[dict[str, Value]] = []

    # ----- low level ------------------------------------------------------------------------
    def location(self, pos: int | None = None) -> Location:
        pos = self.pos if pos is None else pos
        line = self.text.count("\n", 0, pos) + 1
        col = pos - (self.text.rfind("\n", 0, pos) + 1) + 1
        return Location(self.filename, line, col)

    def error(self, message: str, pos: int | None = None) -> IRParseError:
        return IRParseError([Diagnostic(message, self.location(pos))])

    def skip(self) -> None:
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char in " \t\r\n":
                self.pos += 1
            elif self.text.startswith("//", self.pos):
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end
            else:
                break

    def at(self, literal: str) -> bool:
        self.skip()
        return self.text.startswith(literal, self.pos)

    def accept(self, literal: str) -> bool:
        if self.at(literal):
            self.pos += len(literal)
            return True
        return False

    def expect(self, literal: str) -> None:
        if not self.accept(literal):
            raise self.error(f"expected '{literal}' but found {self.describe_next()}")

    def describe_next(self) -> str:
        self.skip()
        if self.pos >= len(self.text):
            return "end of input"
        snippet = re.match(r"\S+", self.text[self.pos :])
        return f"'{snippet.group(0)[:20]}'" if snippet else "whitespace"

    def match(self, pattern: re.Pattern[str]) -> str | None:
        self.skip()
        found = pattern.match(self.text, self.pos)
        if not found:
            return None
        self.pos = found.end()
        return found.group(0)

    def ident(self, what: str = "an identifier") -> str:
        name = self.match(_IDENT)
        if name is None:
            raise self.error(f"expected {what} but found {self.describe_next()}")
        return name

    def balanced_until(self, closers: str) -> tuple[str, int]:
        """Raw text up to (not including) the first closer at bracket depth 0."""
        self.skip()
        start = self.pos
        depth = 0
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if depth == 0 and char in closers:
                return self.text[start : self.pos], start
            if char in "([":
                depth += 1
            elif char in ")]":
                depth -= 1
            self.pos += 1
        raise self.error("unexpected end of input", start)

    # ----- types ----------------------------------------------------------------------------
    def parse_type(self) -> TensorType:
        self.skip()
        start = self.pos
        name = self.ident("a type")
        dtype = DType.parse(name)
        if dtype is None:
            raise self.error(f"unknown dtype '{name}'", start)
        if not self.text.startswith("[", self.pos):
            return TensorType(dtype)
        self.pos += 1
        dims: list[DimExpr] = []
        if self.accept("]"):
            return TensorType(dtype)
        while True:
            text, at = self.balanced_until(",]")
            dims.append(self.parse_dim_text(text, at))
            if self.accept("]"):
                return TensorType(dtype, tuple(dims))
            self.expect(",")

    def parse_dim_text(self, text: str, at: int) -> DimExpr:
        try:
            return parse_dim(text)
        except DimSyntaxError as error:
            raise self.error(str(error), at + error.offset) from None

    def parse_type_list(self) -> list[TensorType]:
        self.expect("(")
        types: list[TensorType] = []
        if self.accept(")"):
            return types
        types.append(self.parse_type())
        while self.accept(","):
            types.append(self.parse_type())
        self.expect(")")
        return types

    def parse_results_type(self) -> list[TensorType]:
        if self.at("("):
            return self.parse_type_list()
        return [self.parse_type()]

    # ----- attributes -----------------------------------------------------------------------
    def parse_attr_dict(self) -> dict[str, Any]:
        attributes: dict[str, Any] = {}
        self.expect("{")
        if self.accept("}"):
            return attributes
        while True:
            self.skip()
            key_start = self.pos
            key = self.ident("an attribute name")
            if key in attributes:
                raise self.error(f"attribute '{key}' is given twice", key_start)
            self.expect("=")
            attributes[key] = self.parse_attr()
            if self.accept("}"):
                return attributes
            self.expect(",")

    def parse_attr(self, depth: int = 0) -> Any:
        self.skip()
        start = self.pos
        if self.accept("["):
            if depth >= MAX_NESTING:
                raise self.error(f"attribute lists nest more than {MAX_NESTING} deep", start)
            items: list[Any] = []
            if self.accept("]"):
                return items
            items.append(self.parse_attr(depth + 1))
            while self.accept(","):
                items.append(self.parse_attr(depth + 1))
            self.expect("]")
            return items
        if self.at('"'):
            return self.parse_string()
        if self.accept("@"):
            return SymbolRef(self.ident("a symbol name"))
        if self.accept("#dim<"):
            text, at = self.balanced_until(">")
            self.expect(">")
            return self.parse_dim_text(text, at)
        if self.accept("#type<"):
            return self.parse_type_attr()
        if self.accept("#constraint<"):
            return self.parse_constraint()
        if self.accept("#map<"):
            self.expect("(")
            dims_text, dims_at = self.balanced_until(")")
            self.expect(")")
            self.expect("->")
            self.expect("(")
            results_text, results_at = self.balanced_until(")")
            self.expect(")")
            self.expect(">")
            try:
                return parse_affine_map(dims_text, results_text)
            except DimSyntaxError as error:
                at = dims_at if error.offset < 0 else results_at + error.offset
                raise self.error(str(error), at) from None
        if self.accept("dense<"):
            return self.parse_dense()
        number = self.parse_number_token()
        if number is not None:
            return number
        word = self.match(_IDENT)
        if word in ("true", "false"):
            return word == "true"
        if word == "none":
            return None
        if word is not None and DType.parse(word) is not None:
            return DType(word)
        raise self.error("expected an attribute value", start)

    def parse_number_token(self) -> int | float | None:
        self.skip()
        for special, value in (
            ("-inf", float("-inf")),
            ("inf", float("inf")),
            ("nan", float("nan")),
        ):
            if self.text.startswith(special, self.pos) and not _IDENT.match(
                self.text, self.pos + len(special)
            ):
                self.pos += len(special)
                return value
        text = self.match(_NUMBER)
        if text is None:
            return None
        return float(text) if any(c in text for c in ".eE") else int(text)

    def parse_string(self) -> str:
        """A JSON string literal on one line (as the printer writes it: `json.dumps`)."""
        self.skip()
        start = self.pos
        if not self.text.startswith('"', start):
            raise self.error(f"expected a string but found {self.describe_next()}")
        found = _STRING.match(self.text, start)
        if not found:
            raise self.error(
                "unterminated string (a string ends on its line; write a newline as \\n)", start
            )
        try:
            value = json.loads(found.group(0))
        except json.JSONDecodeError as error:
            raise self.error(_string_problem(error.msg), start + error.pos) from None
        self.pos = found.end()
        return value

    def parse_type_attr(self) -> TensorType | FunctionType:
        if self.at("("):
            inputs = self.parse_type_list()
            self.expect("->")
            results = self.parse_results_type()
            self.expect(">")
            return FunctionType.of(inputs, results)
        tensor_type = self.parse_type()
        self.expect(">")
        return tensor_type

    def parse_constraint(self) -> ShapeConstraint:
        self.skip()
        kind_at = self.pos
        kind = self.ident("a constraint kind")
        if kind not in CONSTRAINT_KINDS:
            raise self.error(
                f"unknown constraint kind '{kind}' (expected {', '.join(CONSTRAINT_KINDS)})",
                kind_at,
            )
        lhs_text, lhs_at = self.balanced_until(",")
        self.expect(",")
        rhs_text, rhs_at = self.balanced_until(",")
        self.expect(",")
        self.skip()
        error_at = self.pos
        error = self.ident("an error class")
        if error not in CONSTRAINT_ERRORS:
            raise self.error(
                f"unknown error class '{error}' (expected {', '.join(CONSTRAINT_ERRORS)})",
                error_at,
            )
        self.expect(",")
        message = self.parse_string()
        self.expect(">")
        return ShapeConstraint(
            kind,
            self.parse_dim_text(lhs_text, lhs_at),
            self.parse_dim_text(rhs_text, rhs_at),
            error,
            message,
        )

    def parse_dense(self) -> np.ndarray:
        splat = self.accept("splat")
        self.skip()
        elements_start = self.pos
        flat: list[tuple[Any, int]] = []
        self.parse_dense_elements(flat, 0)
        self.expect(":")
        self.skip()
        type_start = self.pos
        tensor_type = self.parse_type()
        self.expect(">")
        if tensor_type.dtype is DType.BF16:
            raise self.error("dense constants of bf16 are not supported", type_start)
        shape = tensor_type.static_shape
        if shape is None:
            raise self.error("a dense constant needs a static shape", elements_start)
        if any(size < 0 for size in shape):
            raise self.error(f"a dense constant cannot have the negative shape {shape}", type_start)
        count = math.prod(shape)
        if count > MAX_DENSE_ELEMENTS:
            raise self.error(
                f"dense constant of {count} elements is too large (at most {MAX_DENSE_ELEMENTS})",
                type_start,
            )
        if splat:
            if len(flat) != 1:
                raise self.error("a splat dense constant holds exactly one element", elements_start)
            (value, at), numpy_dtype = flat[0], tensor_type.dtype.numpy
            return np.full(shape, self.dense_element(value, at, tensor_type.dtype), numpy_dtype)
        if len(flat) != count:
            raise self.error(
                f"dense constant has {len(flat)} elements but {tensor_type} needs {count}",
                elements_start,
            )
        values = [self.dense_element(value, at, tensor_type.dtype) for value, at in flat]
        return np.array(values, dtype=tensor_type.dtype.numpy).reshape(shape)

    def dense_element(self, value: Any, at: int, dtype: DType) -> Any:
        """`value` checked against `dtype`: a bool for bool, an integer in range for i32/i64,
        a number that the float dtype can hold (or inf/nan) for floats."""
        if dtype.is_bool:
            if not isinstance(value, bool):
                raise self.error(
                    f"dense element {self.spelling(at)} of a bool constant is not true or false", at
                )
            return value
        text = self.spelling(at)
        if isinstance(value, bool):
            raise self.error(f"dense element {text} is not a number (the constant is {dtype})", at)
        if dtype.is_int:
            if not isinstance(value, int):
                raise self.error(
                    f"dense element {text} is not an integer (the constant is {dtype})", at
                )
            info = np.iinfo(dtype.numpy)
            if not info.min <= value <= info.max:
                raise self.error(f"dense element {text} is out of range for {dtype}", at)
            return value
        try:
            number = float(value)
        except OverflowError:
            raise self.error(f"dense element {text} is out of range for {dtype}", at) from None
        with np.errstate(over="ignore"):
            converted = np.array(number, dtype=dtype.numpy)
        if math.isfinite(number) and not np.isfinite(converted):
            raise self.error(f"dense element {text} is out of range for {dtype}", at)
        return number

    def spelling(self, at: int) -> str:
        """The token of the text at `at`, for messages."""
        found = _TOKEN_TEXT.match(self.text, at)
        return found.group(0)[:40] if found else "?"

    def parse_dense_elements(self, flat: list[tuple[Any, int]], depth: int) -> None:
        self.skip()
        start = self.pos
        if self.accept("["):
            if depth >= MAX_NESTING:
                raise self.error(f"dense elements nest more than {MAX_NESTING} deep", start)
            if self.accept("]"):
                return
            self.parse_dense_elements(flat, depth + 1)
            while self.accept(","):
                self.parse_dense_elements(flat, depth + 1)
            self.expect("]")
            return
        number = self.parse_number_token()
        if number is not None:
            flat.append((number, start))
            return
        word = self.match(_IDENT)
        if word in ("true", "false"):
            flat.append((word == "true", start))
            return
        raise self.error(f"expected a dense element but found {self.describe_next()}", start)

    # ----- values ---------------------------------------------------------------------------
    def define(self, name: str, value: Value, pos: int) -> None:
        scope = self.scopes[-1]
        if name in scope:
            raise self.error(f"value '{name}' is defined twice", pos)
        scope[name] = value
        hint = name[1:]
        value.name_hint = None if hint.isdigit() else hint

    def use(self) -> Value:
        self.skip()
        start = self.pos
        name = self.match(_VALUE)
        if name is None:
            raise self.error(f"expected a value but found {self.describe_next()}")
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        raise self.error(f"use of undefined value '{name}'", start)

    # ----- ops ------------------------------------------------------------------------------
    def parse_module(self) -> Module:
        functions: list[FuncOp] = []
        names: set[str] = set()
        self.skip()
        while self.pos < len(self.text):
            start = self.pos
            function = self.parse_function()
            if function.sym_name in names:
                raise self.error(f"function '@{function.sym_name}' is defined twice", start)
            names.add(function.sym_name)
            functions.append(function)
            self.skip()
        return Module(functions)

    def parse_function(self) -> FuncOp:
        start = self.pos
        word = self.ident("'func.func'")
        if word != "func.func":
            raise self.error(f"expected 'func.func' but found '{word}'", start)
        self.expect("@")
        name = self.ident("a function name")
        self.expect("(")
        params: list[tuple[str, TensorType, int]] = []
        if not self.accept(")"):
            while True:
                self.skip()
                param_pos = self.pos
                value_name = self.match(_VALUE)
                if value_name is None:
                    raise self.error(f"expected a parameter but found {self.describe_next()}")
                self.expect(":")
                params.append((value_name, self.parse_type(), param_pos))
                if self.accept(")"):
                    break
                self.expect(",")
        self.expect("->")
        results = self.parse_results_type()
        attributes: dict[str, Any] = {}
        if self.accept("attributes"):
            self.skip()
            attributes_start = self.pos
            attributes = self.parse_attr_dict()
            for key in ("sym_name", "function_type"):
                if key in attributes:
                    raise self.error(
                        f"'{key}' of @{name} is given by its signature, not as an attribute",
                        attributes_start,
                    )
        function = FuncOp.create(name, FunctionType.of([p[1] for p in params], results))
        function.attributes.update(attributes)
        function.loc = self.location(start)
        self.scopes.append({})
        for (value_name, _, pos), arg in zip(params, function.args):
            self.define(value_name, arg, pos)
        self.expect("{")
        while not self.accept("}"):
            if self.pos >= len(self.text):
                raise self.error("unexpected end of input: missing '}'")
            function.body.append(self.parse_op())
        self.scopes.pop()
        loc = self.parse_optional_loc()
        if loc is not None:
            function.loc = loc
        return function

    def parse_op(self) -> Operation:
        self.skip()
        start = self.pos
        result_names: list[tuple[str, int]] = []
        if self.at("%"):
            while True:
                self.skip()
                pos = self.pos
                name = self.match(_VALUE)
                if name is None:
                    raise self.error(f"expected a result name but found {self.describe_next()}")
                result_names.append((name, pos))
                if not self.accept(","):
                    break
            self.expect("=")
        self.skip()
        name_pos = self.pos
        op_name = self.ident("an operation name")
        op_class = lookup_op(op_name)
        if op_class is None:
            raise self.error(f"unknown operation '{op_name}'", name_pos)
        operands: list[Value] = []
        if self.at("%"):
            operands.append(self.use())
            while self.accept(","):
                operands.append(self.use())
        attributes = self.parse_attr_dict() if self.at("{") else {}
        self.expect(":")
        types_pos = self.pos
        operand_types = self.parse_type_list()
        self.expect("->")
        result_types = self.parse_results_type() if not self.accept("()") else []
        if len(operand_types) != len(operands):
            raise self.error(
                f"'{op_name}' has {len(operands)} operands but {len(operand_types)} types",
                types_pos,
            )
        for value, declared in zip(operands, operand_types):
            if value.type != declared:
                raise self.error(
                    f"operand of type {value.type} is declared as {declared} in '{op_name}'",
                    types_pos,
                )
        if len(result_types) != len(result_names):
            raise self.error(
                f"'{op_name}' has {len(result_names)} result names but {len(result_types)} types",
                types_pos,
            )
        op = op_class(operands, result_types, attributes, loc=self.location(start))
        if self.at("{"):
            self.parse_regions(op)
        for (name, pos), result in zip(result_names, op.results):
            self.define(name, result, pos)
        loc = self.parse_optional_loc()
        if loc is not None:
            op.loc = loc
        return op

    def parse_regions(self, op: Operation) -> None:
        self.expect("{")
        region = Region()
        self.scopes.append({})
        while not self.accept("}"):
            if self.pos >= len(self.text):
                raise self.error("unexpected end of input: missing '}'")
            self.expect("^")
            self.ident("a block label")
            self.expect("(")
            args: list[tuple[str, TensorType, int]] = []
            if not self.accept(")"):
                while True:
                    self.skip()
                    pos = self.pos
                    name = self.match(_VALUE)
                    if name is None:
                        raise self.error(
                            f"expected a block argument but found {self.describe_next()}"
                        )
                    self.expect(":")
                    args.append((name, self.parse_type(), pos))
                    if self.accept(")"):
                        break
                    self.expect(",")
            self.expect(":")
            block = Block([a[1] for a in args])
            for (name, _, pos), arg in zip(args, block.args):
                self.define(name, arg, pos)
            region.add_block(block)
            while not self.at("^") and not self.at("}"):
                if self.pos >= len(self.text):
                    raise self.error("unexpected end of input: missing '}'")
                block.append(self.parse_op())
        self.scopes.pop()
        op.add_region(region)

    def parse_optional_loc(self) -> Location | None:
        if not self.accept("loc("):
            return None
        file = self.parse_string()
        self.expect(":")
        line = self.parse_number_token()
        self.expect(":")
        col = self.parse_number_token()
        self.expect(")")
        if not isinstance(line, int) or not isinstance(col, int):
            raise self.error("a location needs integer line and column")
        return Location(file, line, col)


def _string_problem(json_message: str) -> str:
    if "control character" in json_message:
        return "a string cannot hold a raw control character (write it as \\n, \\t or \\uXXXX)"
    if "escape" in json_message:
        return "invalid escape in a string (use \\\\, \\\", \\n, \\t or \\uXXXX)"
    return f"invalid string: {json_message}"


def parse_module(text: str, filename: str = "<ir>") -> Module:
    """Parse IR text into a Module; raises IRParseError (a DiagnosticError) when malformed."""
    return Parser(text, filename).parse_module()
