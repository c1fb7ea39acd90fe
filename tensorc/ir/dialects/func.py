"""The `func` dialect: functions, calls between them, and returns."""

from __future__ import annotations

import re
from collections.abc import Sequence

from tensorc.ir.attributes import CONSTRAINT_ERRORS, CONSTRAINT_KINDS, ShapeConstraint, SymbolRef
from tensorc.ir.core import (
    Block,
    IsolatedFromAbove,
    Operation,
    Region,
    Terminator,
    Value,
    VerifyError,
    attr_def,
    register_op,
)
from tensorc.ir.dims import DimExpr, as_size
from tensorc.ir.location import Location
from tensorc.ir.typecheck import types_compatible
from tensorc.ir.types import FunctionType, TensorType

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@register_op
class FuncOp(Operation):
    """`func.func @name(%a: T, ...) -> R { ... }`: one block, ended by `func.return`."""

    name = "func.func"
    num_operands = 0
    num_results = 0
    num_regions = 1
    traits = frozenset({IsolatedFromAbove})

    sym_name = attr_def(str)
    function_type = attr_def(FunctionType)
    result_names = attr_def(list, default=None, items=str)
    constraints = attr_def(list, default=None, items=ShapeConstraint)

    @staticmethod
    def create(
        sym_name: str,
        function_type: FunctionType,
        arg_names: Sequence[str | None] = (),
        loc: Location | None = None,
    ) -> FuncOp:
        block = Block(function_type.inputs, arg_names)
        attrs = {"sym_name": sym_name, "function_type": function_type}
        return FuncOp((), (), attrs, regions=[Region([block])], loc=loc)

    @property
    def args(self) -> list:
        return self.body.args

    @property
    def shape_constraints(self) -> list[ShapeConstraint]:
        return list(self.constraints or [])

    def add_constraint(self, constraint: ShapeConstraint) -> None:
        existing = self.shape_constraints
        if any((c.kind, c.lhs, c.rhs) == (constraint.kind, constraint.lhs, constraint.rhs)
               for c in existing):
            return
        self.attributes["constraints"] = existing + [constraint]

    def names_of_parameters(self) -> list[str]:
        """The parameters' names as the artifact records them: the value names, else argN."""
        return [arg.name_hint or f"arg{i}" for i, arg in enumerate(self.args)]

    def names_of_results(self) -> list[str]:
        names = self.result_names
        if names:
            return list(names)
        return [f"result{i}" for i in range(len(self.function_type.results))]

    @property
    def symbols(self) -> list[str]:
        """Dimension names bound by the parameters, in order of first appearance."""
        ordered: list[str] = []
        for arg_type in self.function_type.inputs:
            for dim in arg_type.shape:
                for name in sorted(dim.symbols):
                    if name not in ordered:
                        ordered.append(name)
        return ordered

    def verify_(self) -> None:
        if self.parent is not None:
            raise VerifyError(f"@{self.sym_name}: func.func may only appear at module level", self)
        self._verify_names()
        block = self.body
        if [a.type for a in block.args] != list(self.function_type.inputs):
            raise VerifyError(f"@{self.sym_name}: block arguments do not match the signature", self)
        for arg_type in self.function_type.inputs:
            for dim in arg_type.shape:
                if not dim.is_const and not (len(dim.terms) == 1 and dim.terms[0][1] == 1
                                             and len(dim.terms[0][0]) == 1
                                             and isinstance(dim.terms[0][0][0], str)):
                    raise VerifyError(
                        f"@{self.sym_name}: parameter dimension '{dim}' must be a name or an "
                        "integer",
                        self,
                    )
        terminator = block.terminator
        if not isinstance(terminator, ReturnOp):
            raise VerifyError(f"@{self.sym_name} does not end with func.return", self)
        returned = [v.type for v in terminator.operands]
        expected = list(self.function_type.results)
        if len(returned) != len(expected) or not all(
            types_compatible(a, b) for a, b in zip(returned, expected)
        ):
            raise VerifyError(
                f"@{self.sym_name} returns ({', '.join(map(str, returned))}) but is declared to "
                f"return ({', '.join(map(str, expected))})",
                terminator,
            )
        names = self.result_names
        if names is not None and len(names) != len(expected):
            raise VerifyError(f"@{self.sym_name}: result_names has the wrong length", self)
        for constraint in self.shape_constraints:
            if constraint.kind not in CONSTRAINT_KINDS or constraint.error not in CONSTRAINT_ERRORS:
                raise VerifyError(
                    f"@{self.sym_name}: shape constraint kind '{constraint.kind}' or error class "
                    f"'{constraint.error}' is unknown",
                    self,
                )

    def _verify_names(self) -> None:
        """The artifact names functions, parameters and results by identifiers (SPEC §5)."""
        if not _IDENTIFIER.fullmatch(self.sym_name):
            raise VerifyError(
                f"function name '@{self.sym_name}' is not an identifier ([A-Za-z_][A-Za-z0-9_]*)",
                self,
            )
        seen: set[str] = set()
        for name in self.names_of_parameters():
            if not _IDENTIFIER.fullmatch(name):
                raise VerifyError(
                    f"@{self.sym_name}: parameter name '%{name}' is not an identifier "
                    "([A-Za-z_][A-Za-z0-9_]*)",
                    self,
                )
            if name in seen:
                raise VerifyError(f"@{self.sym_name}: two parameters are named '{name}'", self)
            seen.add(name)
        results: set[str] = set()
        for name in self.result_names or []:
            if not _IDENTIFIER.fullmatch(name):
                raise VerifyError(
                    f"@{self.sym_name}: result name {name!r} is not an identifier", self
                )
            if name in results:
                raise VerifyError(f"@{self.sym_name}: two results are named '{name}'", self)
            results.add(name)


@register_op
class ReturnOp(Operation):
    name = "func.return"
    num_operands = None
    num_results = 0
    traits = frozenset({Terminator})


@register_op
class CallOp(Operation):
    """`func.call`: a call of another function of the module; `inline` removes them."""

    name = "func.call"
    num_operands = None
    num_results = None
    callee = attr_def(SymbolRef)


def bind_dimensions(
    callee: FuncOp, arguments: Sequence[Value]
) -> tuple[dict[str, DimExpr], list[ShapeConstraint]]:
    """The renaming of `callee`'s dimension names to the caller's dimensions (each parameter
    dimension that is a name binds to its argument's size, the first binding winning), and the
    constraints a call makes beyond it (a name bound twice, a literal against a symbol)."""
    substitution: dict[str, DimExpr] = {}
    checks: list[ShapeConstraint] = []
    for index, (parameter, argument) in enumerate(zip(callee.function_type.inputs, arguments)):
        for axis, (declared, actual) in enumerate(zip(parameter.shape, argument.type.shape)):
            actual = as_size(actual)  # the callee's N is a size: x[3:] of a short x binds 0
            bound = declared if declared.is_const else substitution.get(_name_of(declared))
            if bound is None:
                substitution[_name_of(declared)] = actual
                continue
            if bound == actual:
                continue
            name = callee.args[index].name_hint or f"argument {index}"
            needed = str(bound) if declared.is_const else f"{declared} = {bound}"
            message = (
                f"call of @{callee.sym_name}: dimension {axis} of '{name}' is {actual}, "
                f"but it must be {needed}"
            )
            checks.append(ShapeConstraint("eq", actual, bound, "ValueError", message))
    return substitution, checks


def _name_of(dim: DimExpr) -> str:
    (name,) = dim.symbols
    return name


class Module:
    """A translation unit: functions by name, in source order."""

    def __init__(self, functions: Sequence[FuncOp] = ()) -> None:
        self.functions: list[FuncOp] = list(functions)

    def lookup(self, name: str) -> FuncOp | None:
        for function in self.functions:
            if function.sym_name == name:
                return function
        return None

    def walk(self):
        for function in self.functions:
            yield from function.walk()

    def callees_first(self) -> list[FuncOp]:
        """The functions in an order where each comes after every function it calls.

        `VerifyError` at a call of an unknown function, or at the call that closes a cycle
        (recursion is not supported, SPEC §1.7), naming the cycle. Iterative: a long chain of
        calls does not exhaust Python's stack."""
        calls = {
            function.sym_name: [op for op in function.walk() if isinstance(op, CallOp)]
            for function in self.functions
        }
        by_name: dict[str, FuncOp] = {}
        for function in self.functions:
            by_name.setdefault(function.sym_name, function)  # the one `lookup` finds
        ordered: list[FuncOp] = []
        done: set[str] = set()
        for root in self.functions:
            if root.sym_name in done:
                continue
            path = [root]
            on_path = {id(root)}
            pending = [iter(calls[root.sym_name])]
            while pending:
                call = next(pending[-1], None)
                if call is None:
                    finished = path.pop()
                    on_path.discard(id(finished))
                    done.add(finished.sym_name)
                    ordered.append(finished)
                    pending.pop()
                    continue
                callee = by_name.get(call.callee.name)
                if callee is None:
                    raise VerifyError(f"func.call of unknown function @{call.callee.name}", call)
                if id(callee) in on_path:
                    cycle = [f.sym_name for f in path[path.index(callee) :]] + [callee.sym_name]
                    raise VerifyError(
                        "recursion is not supported: " + " -> ".join(f"@{n}" for n in cycle), call
                    )
                if callee.sym_name in done:
                    continue
                path.append(callee)
                on_path.add(id(callee))
                pending.append(iter(calls[callee.sym_name]))
        return ordered


def function_type_of(inputs: Sequence[TensorType], results: Sequence[TensorType]) -> FunctionType:
    return FunctionType.of(inputs, results)
