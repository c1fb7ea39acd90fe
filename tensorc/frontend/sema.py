"""Semantic analysis and lowering of a `.tc` module to the `tc` dialect (SPEC §1).

`lower_module` first collects every function's signature (so that functions may call each other
in any order), finds recursion in the call graph, then lowers each function after the functions
it calls, so that a call knows its callee's result types. Each function body is lowered
statement by statement into one `func.func`: names map to SSA values (a rebinding is a new
value, with the name as its hint), and expressions are lowered by `ExpressionLowering`.

Errors are reported to a `DiagnosticEngine` and lowering goes on: a failed expression yields a
poison value that silences the errors that would follow from it, and an error in one function
does not stop the others. An unexpected exception becomes an "internal compiler error"
diagnostic at the statement being lowered, never a traceback.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from tensorc.frontend import ast
from tensorc.frontend.callsite import KeywordArg, bind_arguments
from tensorc.frontend.emitter import Emitter
from tensorc.frontend.expr import ExpressionLowering
from tensorc.frontend.shapes import describe
from tensorc.frontend.values import (
    POISON,
    Item,
    SemaError,
    Tensor,
    Term,
    TupleTerm,
    contains_poison,
    is_weak,
)
from tensorc.ir.attributes import SymbolRef
from tensorc.ir.core import Value
from tensorc.ir.diagnostics import DiagnosticEngine
from tensorc.ir.dialects.func import CallOp, FuncOp, Module, ReturnOp
from tensorc.ir.dims import DimExpr
from tensorc.ir.dtypes import DType
from tensorc.ir.location import Location
from tensorc.ir.typecheck import dims_compatible
from tensorc.ir.types import FunctionType, TensorType


@dataclass
class Signature:
    """What callers need to know about a function, and the state of its lowering."""

    node: ast.FunctionDef
    param_names: list[str]
    param_types: list[TensorType]
    declared_results: list[TensorType] | None
    valid: bool = True
    component: int = -1  # strongly connected component of the call graph
    results: list[TensorType] | None = None  # known once the function is lowered
    function: FuncOp | None = None
    calls: list[ast.Call] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def symbols(self) -> set[str]:
        return {name for t in self.param_types for d in t.shape for name in d.symbols}


def lower_module(tree: ast.Module, diagnostics: DiagnosticEngine) -> Module:
    """Lower a parsed module; errors go to `diagnostics` (check it before using the result:
    a function with errors is kept but may be incomplete)."""
    return ModuleLowering(tree, diagnostics).run()


class ModuleLowering:
    def __init__(self, tree: ast.Module, diagnostics: DiagnosticEngine) -> None:
        self.tree = tree
        self.diagnostics = diagnostics
        self.signatures: dict[str, Signature] = {}

    def run(self) -> Module:
        for node in self.tree.functions:
            self._declare(node)
        self._find_recursion()
        lowered: set[str] = set()
        for name in self.signatures:
            self._lower_after_callees(name, lowered)
        functions = [s.function for s in self.signatures.values() if s.function is not None]
        return Module(functions)

    # ----- signatures --------------------------------------------------------------------
    def _declare(self, node: ast.FunctionDef) -> None:
        first = self.signatures.get(node.name)
        if first is not None:
            self.diagnostics.error(f"function '{node.name}' is already defined", node.name_loc)
            self.diagnostics.note(f"'{node.name}' was first defined here", first.node.name_loc)
            return
        signature = Signature(node, [], [], None)
        for param in node.params:
            if param.name in signature.param_names:
                self.diagnostics.error(
                    f"duplicate parameter '{param.name}' in function '{node.name}'",
                    param.name_loc,
                )
                signature.valid = False
                continue
            param_type = self._type(param.type, None)
            signature.param_names.append(param.name)
            signature.param_types.append(param_type or TensorType(DType.F32))
            signature.valid &= param_type is not None
        if node.result is not None:
            elements = node.result.elts if isinstance(node.result, ast.TupleTypeExpr) else [
                node.result
            ]
            declared = [self._type(element, signature.symbols) for element in elements]
            if all(t is not None for t in declared):
                # Callers can be checked against the declared types even if the body fails.
                signature.declared_results = declared  # type: ignore[assignment]
                signature.results = list(signature.declared_results)
            else:
                signature.valid = False
        signature.calls = [n for stmt in node.body for n in ast.walk(stmt)
                           if isinstance(n, ast.Call)]
        self.signatures[node.name] = signature

    def _type(self, node: ast.TensorTypeExpr, symbols: set[str] | None) -> TensorType | None:
        """A written type; result types (`symbols` given) may use expressions of the
        parameters' dimension names."""
        dtype = DType.parse(node.dtype)
        if dtype is None:
            self.diagnostics.error(f"unknown dtype '{node.dtype}'", node.loc)
            return None
        dims = [self._dim(dim, symbols) for dim in node.dims or []]
        if any(dim is None for dim in dims):
            return None
        return TensorType(dtype, tuple(dims))  # type: ignore[arg-type]

    def _dim(self, node: ast.DimExpr, symbols: set[str] | None) -> DimExpr | None:
        if isinstance(node, ast.DimInt):
            return DimExpr.const(node.value)
        if isinstance(node, ast.DimName):
            if symbols is not None and node.name not in symbols:
                self.diagnostics.error(
                    f"unknown dimension '{node.name}' in the result type (result dimensions "
                    "must be expressions of the parameters' dimensions)",
                    node.loc,
                )
                return None
            return DimExpr.sym(node.name)
        lhs, rhs = self._dim(node.lhs, symbols), self._dim(node.rhs, symbols)
        if lhs is None or rhs is None:
            return None
        if node.op == "+":
            return lhs + rhs
        if node.op == "-":
            return lhs - rhs
        if node.op == "*":
            return lhs * rhs
        return lhs // rhs

    # ----- the call graph ----------------------------------------------------------------
    def _callees(self, signature: Signature) -> list[str]:
        return [call.func for call in signature.calls if call.func in self.signatures]

    def _find_recursion(self) -> None:
        """Number the strongly connected components of the call graph (Tarjan's algorithm,
        iteratively): a call inside a component, or of itself, is recursion."""
        index_of: dict[str, int] = {}
        low: dict[str, int] = {}
        stack: list[str] = []
        on_stack: set[str] = set()
        components = 0
        for root in self.signatures:
            if root in index_of:
                continue
            work: list[tuple[str, int]] = [(root, 0)]
            while work:
                name, child = work.pop()
                if child == 0:
                    index_of[name] = low[name] = len(index_of)
                    stack.append(name)
                    on_stack.add(name)
                callees = self._callees(self.signatures[name])
                if child < len(callees):
                    work.append((name, child + 1))
                    callee = callees[child]
                    if callee not in index_of:
                        work.append((callee, 0))
                    elif callee in on_stack:
                        low[name] = min(low[name], index_of[callee])
                    continue
                if low[name] == index_of[name]:
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        self.signatures[member].component = components
                        if member == name:
                            break
                    components += 1
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[name])

    def is_recursive_call(self, caller: Signature, callee: Signature) -> bool:
        return caller.component == callee.component

    def cycle(self, caller: Signature, callee: Signature) -> list[str]:
        """The shortest path caller -> callee -> ... -> caller inside their component."""
        previous: dict[str, str | None] = {callee.name: None}
        queue = deque([callee.name])
        while queue:
            name = queue.popleft()
            if name == caller.name:
                break
            for nxt in self._callees(self.signatures[name]):
                if nxt not in previous and self.signatures[nxt].component == caller.component:
                    previous[nxt] = name
                    queue.append(nxt)
        path: list[str] = []
        node: str | None = caller.name
        while node is not None:
            path.append(node)
            node = previous.get(node)
        return [caller.name, *reversed(path)]

    # ----- lowering ----------------------------------------------------------------------
    def _lower_after_callees(self, root: str, lowered: set[str]) -> None:
        """Lower `root` after everything it calls (outside its own recursion cycle)."""
        work: list[tuple[str, bool]] = [(root, False)]
        while work:
            name, callees_done = work.pop()
            if name in lowered:
                continue
            if callees_done:
                lowered.add(name)
                self._lower_function(self.signatures[name])
                continue
            work.append((name, True))
            signature = self.signatures[name]
            for callee in self._callees(signature):
                if callee not in lowered and self.signatures[callee].component != \
                        signature.component:
                    work.append((callee, False))

    def _lower_function(self, signature: Signature) -> None:
        lowering = FunctionLowering(self, signature)
        try:
            lowering.run()
        except RecursionError:
            self.diagnostics.error(
                "this expression is nested too deeply to compile; split it into statements",
                lowering.current_loc,
            )
        except Exception as error:  # a compiler bug: report it where it happened
            self.diagnostics.error(
                f"internal compiler error: {type(error).__name__}: {error}",
                lowering.current_loc,
            )


class FunctionLowering(ExpressionLowering):
    """Lowers one function body into its `func.func`."""

    def __init__(self, module: ModuleLowering, signature: Signature) -> None:
        super().__init__()
        self.module = module
        self.signature = signature
        self.diagnostics = module.diagnostics
        node = signature.node
        function_type = FunctionType.of(signature.param_types, signature.declared_results or [])
        self.function = FuncOp.create(node.name, function_type, signature.param_names, node.loc)
        signature.function = self.function
        self.emitter = Emitter(self.function)
        self.scope: dict[str, Term] = {
            name: Tensor(arg) for name, arg in zip(signature.param_names, self.function.args)
        }
        self.dims = {name: DimExpr.sym(name) for name in sorted(signature.symbols)}
        self.current_loc: Location | None = node.loc

    # ----- statements --------------------------------------------------------------------
    def run(self) -> None:
        node = self.signature.node
        returned = False
        for stmt in node.body:
            self.current_loc = stmt.loc
            if returned:
                self.diagnostics.error("unreachable statement after 'return'", stmt.loc)
                break
            if isinstance(stmt, ast.Assign):
                self._assign(stmt)
            elif isinstance(stmt, ast.Return):
                self._return(stmt)
                returned = True
            else:
                self._expression_statement(stmt)
        if not returned:
            self.diagnostics.error(
                f"function '{node.name}' has no return statement", node.name_loc
            )

    def _assign(self, stmt: ast.Assign) -> None:
        term = self.lower(stmt.value)
        targets = stmt.targets
        try:
            values = self._unpack(term, len(targets), stmt.value.loc)
        except SemaError as error:
            self.diagnostics.error(error.message, error.loc)
            values = [POISON] * len(targets)
        for target, value in zip(targets, values):
            if isinstance(value, Tensor) and value.value.name_hint is None:
                value.value.name_hint = target.id
            self.scope[target.id] = value

    def _unpack(self, term: Term, count: int, loc: Location | None) -> list[Term]:
        if contains_poison(term):
            return [POISON] * count
        items: list[Term] = list(term.items) if isinstance(term, TupleTerm) else [term]
        if len(items) == count:
            return items
        if count == 1:
            raise SemaError(
                f"cannot assign {len(items)} values to 1 name; unpack them into {len(items)} "
                "names",
                loc,
            )
        if not isinstance(term, TupleTerm):
            raise SemaError(f"cannot unpack {term.describe()} into {count} names", loc)
        raise SemaError(f"cannot unpack {len(items)} values into {count} names", loc)

    def _expression_statement(self, stmt: ast.ExprStmt) -> None:
        if contains_poison(self.lower(stmt.value)):
            return
        self.diagnostics.error(
            "the value of this expression is unused; assign it to a name or return it",
            stmt.loc,
        )

    # ----- return ------------------------------------------------------------------------
    def _return(self, stmt: ast.Return) -> None:
        name = self.signature.name
        if not stmt.values:
            self.diagnostics.error(f"'return' in function '{name}' needs a value", stmt.loc)
            return
        terms = [self.lower(value) for value in stmt.values]
        if any(contains_poison(term) for term in terms):
            return
        nodes: list[ast.Expr | None] = list(stmt.values)
        if len(terms) == 1 and isinstance(terms[0], TupleTerm):
            terms = list(terms[0].items)
            nodes = [None] * len(terms)
        declared = self.signature.declared_results
        if declared is not None and len(declared) != len(terms):
            self.diagnostics.error(
                f"function '{name}' returns {len(terms)} value{'s' * (len(terms) != 1)} but "
                f"its result type declares {len(declared)}",
                stmt.loc,
            )
            return
        values: list[Value] = []
        for index, (term, node) in enumerate(zip(terms, nodes)):
            loc = node.loc if node is not None else stmt.loc
            try:
                values.append(self._result_value(index, term, loc))
            except SemaError as error:
                self.diagnostics.error(error.message, error.loc)
        if len(values) != len(terms):
            return
        self.emitter.create(ReturnOp, values, stmt.loc, result_types=[])
        results = declared if declared is not None else [v.type for v in values]
        self.signature.results = list(results)
        self.function.attributes["function_type"] = FunctionType.of(
            self.signature.param_types, results
        )
        names = _result_names(nodes)
        if names != [f"result{i}" for i in range(len(names))]:
            self.function.attributes["result_names"] = names

    def _result_value(self, index: int, term: Term, loc: Location | None) -> Value:
        declared = self.signature.declared_results
        expected = declared[index] if declared is not None else None
        if not isinstance(term, Tensor) and not is_weak(term):
            raise SemaError(f"cannot return {term.describe()}; return tensors", loc)
        value = self.emitter.materialize(term, loc, expected.dtype if is_weak(term) and
                                         expected is not None else None)
        if expected is None:
            return value
        actual = value.type
        mismatch = SemaError(
            f"function '{self.signature.name}' is declared to return {expected} "
            f"{'as result ' + str(index) + ' ' if len(declared or []) > 1 else ''}but this "
            f"value has type {actual}",
            loc,
        )
        if actual.dtype != expected.dtype or actual.rank != expected.rank:
            raise mismatch
        if not all(dims_compatible(a, b) for a, b in zip(actual.shape, expected.shape)):
            raise mismatch
        for a, b in zip(actual.shape, expected.shape):
            self.emitter.require_equal(
                a, b, loc, f"result {index} of '{self.signature.name}'", actual.shape,
                expected.shape,
            )
        return value

    # ----- calls of user functions -------------------------------------------------------
    def is_user_function(self, name: str) -> bool:
        return name in self.module.signatures

    def call_user_function(
        self, node: ast.Call, positional: list[Item], keywords: list[KeywordArg]
    ) -> Term:
        callee = self.module.signatures[node.func]
        if self.module.is_recursive_call(self.signature, callee):
            if callee is self.signature:
                raise SemaError(
                    f"recursion is not supported: '{callee.name}' calls itself", node.func_loc
                )
            path = " -> ".join(self.module.cycle(self.signature, callee))
            raise SemaError(f"recursion is not supported: {path}", node.func_loc)
        bound = bind_arguments(callee.name, callee.param_names, {}, positional, keywords,
                               node.loc)
        if any(contains_poison(item.term) for item in bound.values()):
            return POISON
        if not callee.valid or callee.results is None:
            return POISON  # the callee's own errors were reported
        mapping: dict[str, DimExpr] = {}
        arguments = [
            self._argument(callee, param, param_type, bound[param], mapping, node.loc)
            for param, param_type in zip(callee.param_names, callee.param_types)
        ]
        result_types = [
            t.with_shape([dim.substitute(mapping) for dim in t.shape]) for t in callee.results
        ]
        op = self.emitter.create(
            CallOp, arguments, node.loc, result_types=result_types, callee=SymbolRef(callee.name)
        )
        results = tuple(Tensor(result) for result in op.results)
        return results[0] if len(results) == 1 else TupleTerm(results)

    def _argument(
        self,
        callee: Signature,
        param: str,
        param_type: TensorType,
        item: Item,
        mapping: dict[str, DimExpr],
        call_loc: Location | None,
    ) -> Value:
        """An argument checked against its parameter's type, binding the callee's dimension
        names to the caller's sizes (symbolic ones that must agree are checked at call time)."""
        term = item.term
        what = f"argument '{param}' of {callee.name}()"
        if not isinstance(term, Tensor) and not is_weak(term):
            raise SemaError(f"{what} must be a tensor {param_type}, found {term.describe()}",
                            item.loc)
        value = self.emitter.materialize(term, item.loc, param_type.dtype if is_weak(term)
                                         else None)
        actual = value.type
        mismatch = SemaError(f"{what} must have type {param_type}, found {describe(actual)}",
                             item.loc)
        if actual.dtype != param_type.dtype or actual.rank != param_type.rank:
            raise mismatch
        for dim, want in zip(actual.shape, param_type.shape):
            if want.is_const:
                expected = want
            else:
                (symbol,) = want.symbols
                expected = mapping.setdefault(symbol, dim)
            if not self.emitter.require_equal(dim, expected, item.loc, what, actual.shape,
                                              param_type.shape):
                if want.is_const:
                    raise mismatch
                raise SemaError(
                    f"{what}: dimension {want} is {dim} here but {expected} in an earlier "
                    "argument",
                    item.loc,
                )
        return value


def _result_names(nodes: Sequence[ast.Expr | None]) -> list[str]:
    """Distinct names: a returned bare name names its result (its first return); the others
    are `result{i}`, with `_` appended while that is taken (`return result1, a + 1`)."""
    bare = [node.id if isinstance(node, ast.Name) else None for node in nodes]
    first = {name: index for index, name in reversed(list(enumerate(bare))) if name is not None}
    taken = set(first)
    names: list[str] = []
    for index, name in enumerate(bare):
        if name is None or first[name] != index:
            name = f"result{index}"
            while name in taken:
                name += "_"
            taken.add(name)
        names.append(name)
    return names
