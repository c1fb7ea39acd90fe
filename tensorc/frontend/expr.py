"""Lowering of expressions (SPEC §1.4): names, literals, operators, calls, indexing, `.T` and
`.shape`.

Every expression node is lowered by `lower`, which turns a `SemaError` into a diagnostic at the
error's location and returns `POISON`; a node whose operand is poisoned is poisoned too,
silently, so each mistake is reported once while independent mistakes are all reported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tensorc.frontend import ast
from tensorc.frontend.builtins import lookup_builtin
from tensorc.frontend.builtins_shape import transpose_value
from tensorc.frontend.callsite import CallSite, KeywordArg, bind_arguments
from tensorc.frontend.emitter import Emitter
from tensorc.frontend.operators import (
    ARITHMETIC,
    COMPARISON,
    LOGICAL,
    arithmetic,
    compare,
    logical,
    logical_not,
    matmul,
    negate,
    unary_plus,
)
from tensorc.frontend.shapes import describe
from tensorc.frontend.values import (
    POISON,
    BoolConst,
    DTypeTerm,
    FloatConst,
    IntConst,
    Item,
    ListTerm,
    SemaError,
    Tensor,
    Term,
    TupleTerm,
    contains_poison,
    is_weak,
)
from tensorc.ir.attributes import ShapeConstraint
from tensorc.ir.diagnostics import DiagnosticEngine
from tensorc.ir.dialects import tc_shape
from tensorc.ir.dims import DimExpr, as_size, dim_max
from tensorc.ir.dtypes import DType
from tensorc.ir.location import Location
from tensorc.ir.types import TensorType

Bound = int | DimExpr | None


class ExpressionLowering:
    """Lowers the expressions of one function body. `FunctionLowering` supplies the scope, the
    emitter and calls of user functions."""

    emitter: Emitter
    diagnostics: DiagnosticEngine
    scope: dict[str, Term]
    dims: dict[str, DimExpr]

    def __init__(self) -> None:
        self._dispatch: Mapping[type, Callable[[Any], Term]] = {
            ast.Name: self._name,
            ast.IntLit: lambda node: IntConst(DimExpr.const(node.value)),
            ast.FloatLit: lambda node: FloatConst(node.value),
            ast.BoolLit: lambda node: BoolConst(node.value),
            ast.ListExpr: self._list,
            ast.TupleExpr: lambda node: TupleTerm(tuple(self.lower(elt) for elt in node.elts)),
            ast.BinOp: self._binop,
            ast.UnaryOp: self._unaryop,
            ast.Call: self._call,
            ast.Subscript: self._subscript,
            ast.Attribute: self._attribute,
        }

    # ----- hooks for FunctionLowering --------------------------------------------------------
    def is_user_function(self, name: str) -> bool:
        raise NotImplementedError

    def call_user_function(
        self, node: ast.Call, positional: list[Item], keywords: list[KeywordArg]
    ) -> Term:
        raise NotImplementedError

    # ----- entry point -------------------------------------------------------------------
    def lower(self, node: ast.Expr) -> Term:
        """The term of an expression; errors are reported here and give POISON."""
        try:
            return self._dispatch[type(node)](node)
        except SemaError as error:
            self.diagnostics.error(error.message, error.loc or node.loc)
            return POISON

    def operand(self, term: Term, loc: Location | None, what: str) -> Term:
        """A term that can be an operand of arithmetic: a tensor or a weak scalar."""
        if isinstance(term, Tensor) or is_weak(term):
            return term
        raise SemaError(f"{what} cannot be applied to {term.describe()}", loc)

    # ----- leaves ------------------------------------------------------------------------
    def _name(self, node: ast.Name) -> Term:
        if node.id in self.scope:
            return self.scope[node.id]
        if node.id in self.dims:
            return IntConst(self.dims[node.id])
        dtype = DType.parse(node.id)
        if dtype is not None:
            return DTypeTerm(dtype)
        if self.is_user_function(node.id) or lookup_builtin(node.id) is not None:
            raise SemaError(f"'{node.id}' is a function; call it with arguments", node.loc)
        raise SemaError(f"unknown name '{node.id}'", node.loc)

    def _list(self, node: ast.ListExpr) -> Term:
        items = tuple(Item(self.lower(elt), elt, elt.loc) for elt in node.elts)
        return ListTerm(items)

    # ----- operators ---------------------------------------------------------------------
    def _binop(self, node: ast.BinOp) -> Term:
        lhs, rhs = self.lower(node.lhs), self.lower(node.rhs)
        if contains_poison(lhs) or contains_poison(rhs):
            return POISON
        what = f"operator '{node.op}'"
        lhs = self.operand(lhs, node.lhs.loc, what)
        rhs = self.operand(rhs, node.rhs.loc, what)
        emitter, loc = self.emitter, node.loc
        if node.op == "@":
            a = emitter.materialize(lhs, node.lhs.loc)
            b = emitter.materialize(rhs, node.rhs.loc)
            return Tensor(matmul(emitter, a, b, loc, what))
        locs = (node.lhs.loc, node.rhs.loc)
        if node.op in ARITHMETIC:
            return arithmetic(emitter, node.op, lhs, rhs, loc, locs=locs)
        if node.op in COMPARISON:
            return compare(emitter, node.op, lhs, rhs, loc, locs)
        if node.op in LOGICAL:
            return logical(emitter, node.op, lhs, rhs, loc, node.lhs.loc, node.rhs.loc)
        raise SemaError(f"unknown operator '{node.op}'", loc)

    def _unaryop(self, node: ast.UnaryOp) -> Term:
        operand = self.lower(node.operand)
        if contains_poison(operand):
            return POISON
        operand = self.operand(operand, node.operand.loc, f"unary '{node.op}'")
        if node.op == "-":
            return negate(operand, self.emitter, node.loc)
        if node.op == "+":
            return unary_plus(operand, self.emitter, node.loc)
        return logical_not(operand, self.emitter, node.loc)

    # ----- calls -------------------------------------------------------------------------
    def _call(self, node: ast.Call) -> Term:
        positional = [Item(self.lower(arg), arg, arg.loc) for arg in node.args]
        keywords = [
            KeywordArg(kw.name, Item(self.lower(kw.value), kw.value, kw.value.loc), kw.name_loc)
            for kw in node.kwargs
        ]
        if not node.func:  # the parser reported a call of something that is not a name
            return POISON
        if node.func in self.scope:
            raise SemaError(
                f"'{node.func}' is a value, not a function (it is bound by an assignment or "
                "a parameter)",
                node.func_loc,
            )
        if self.is_user_function(node.func):
            return self.call_user_function(node, positional, keywords)
        builtin = lookup_builtin(node.func)
        if builtin is None:
            raise SemaError(f"unknown function '{node.func}'", node.func_loc)
        bound = bind_arguments(
            builtin.name, builtin.params, builtin.defaults, positional, keywords, node.loc,
            builtin.aliases,
        )
        if any(contains_poison(item.term) for item in bound.values()):
            return POISON
        site = CallSite(builtin.name, node.loc, self.emitter, bound, builtin.defaults)
        return builtin.handler(site)

    # ----- attributes --------------------------------------------------------------------
    def _attribute(self, node: ast.Attribute) -> Term:
        base = self.lower(node.value)
        if contains_poison(base):
            return POISON
        if node.attr not in ("T", "shape"):
            raise SemaError(
                f"unknown attribute '{node.attr}' (tensors have .T and .shape)", node.attr_loc
            )
        base = self.operand(base, node.value.loc, f"'.{node.attr}'")
        if not isinstance(base, Tensor):
            return base if node.attr == "T" else ListTerm(())
        if node.attr == "T":
            return Tensor(transpose_value(self.emitter, base.value, node.loc))
        return ListTerm(
            tuple(Item(IntConst(as_size(dim)), None, node.loc) for dim in base.type.shape)
        )

    # ----- indexing ----------------------------------------------------------------------
    def _subscript(self, node: ast.Subscript) -> Term:
        base = self.lower(node.value)
        indices = [self._index_terms(index) for index in node.indices]
        if contains_poison(base) or any(contains_poison(t) for terms in indices for t in terms):
            return POISON
        if isinstance(base, ListTerm):
            return self._list_element(base, node, indices)
        if not isinstance(base, Tensor):
            raise SemaError(f"cannot index {base.describe()}", node.value.loc)
        return Tensor(self._index_tensor(base.value, node, indices))

    def _index_terms(self, index: ast.Index) -> tuple[Term, ...]:
        if isinstance(index, ast.Slice):
            parts = (index.start, index.stop, index.step)
            return tuple(IntConst(DimExpr.const(0)) if p is None else self.lower(p)
                         for p in parts)
        if isinstance(index, ast.Ellipsis_):
            return ()
        return (self.lower(index),)

    def _list_element(
        self, base: ListTerm, node: ast.Subscript, indices: list[tuple[Term, ...]]
    ) -> Term:
        index = node.indices[0]
        if len(node.indices) != 1 or isinstance(index, (ast.Slice, ast.Ellipsis_)):
            raise SemaError("a list takes exactly one integer index", node.loc)
        position = self._static_index(indices[0][0], index.loc)
        count = len(base.items)
        if not -count <= position < count:
            raise SemaError(
                f"index {position} is out of range for a list of {count} elements", index.loc
            )
        return base.items[position].term

    def _static_index(self, term: Term, loc: Location | None) -> int:
        if isinstance(term, IntConst) and term.static is not None:
            return term.static
        raise SemaError(f"index must be a constant integer, found {term.describe()}", loc)

    def _index_tensor(
        self, value: Any, node: ast.Subscript, indices: list[tuple[Term, ...]]
    ) -> Any:
        """`x[...]`: one `tc.slice` for all axes, then a `tc.reshape` dropping the axes that
        integers index."""
        type_: TensorType = value.type
        ellipses = [i for i, index in enumerate(node.indices) if isinstance(index, ast.Ellipsis_)]
        if len(ellipses) > 1:
            raise SemaError("an index can contain only one '...'", node.indices[ellipses[1]].loc)
        explicit = len(node.indices) - len(ellipses)
        if explicit > type_.rank:
            raise SemaError(
                f"too many indices for {describe(type_)}: {explicit} given, but it has "
                f"{type_.rank} {'axis' if type_.rank == 1 else 'axes'}",
                node.loc,
            )
        axes: list[int] = []
        axis = 0
        for index in node.indices:
            if isinstance(index, ast.Ellipsis_):
                axis += type_.rank - explicit
                axes.append(-1)
                continue
            axes.append(axis)
            axis += 1
        starts: list[Bound] = [None] * type_.rank
        stops: list[Bound] = [None] * type_.rank
        steps: list[int] = [1] * type_.rank
        dropped: list[int] = []
        for index, terms, axis in zip(node.indices, indices, axes):
            if isinstance(index, ast.Ellipsis_):
                continue
            if isinstance(index, ast.Slice):
                bounds = self._slice_bounds(index, terms, type_.shape[axis])
                starts[axis], stops[axis], steps[axis] = bounds
                continue
            starts[axis], stops[axis] = self._integer_index(terms[0], index.loc, type_, axis)
            dropped.append(axis)
        result = value
        if any(s is not None for s in starts + stops) or any(s != 1 for s in steps):
            result = self.emitter.op(
                tc_shape.SliceOp, [value], node.loc, starts=starts, stops=stops, steps=steps
            )
        if dropped:
            shape = [dim for axis, dim in enumerate(result.type.shape) if axis not in dropped]
            result = self.emitter.reshape(result, shape, node.loc)
        return result

    def _bound(self, term: Term, loc: Location | None, what: str) -> DimExpr:
        if isinstance(term, IntConst):
            return term.expr
        hint = "; use take() to index with tensors" if isinstance(term, Tensor) else ""
        raise SemaError(
            f"{what} must be a compile-time integer (a literal or a dimension name), found "
            f"{term.describe()}{hint}",
            loc,
        )

    def _slice_bounds(
        self, index: ast.Slice, terms: tuple[Term, ...], size: DimExpr
    ) -> tuple[Bound, Bound, int]:
        """Bounds with Python's meaning: a constant one is kept as written (negative counts
        from the end, in the IR too); a symbolic one that is provably negative is resolved."""
        start_term, stop_term, step_term = terms
        start = stop = None
        if index.start is not None:
            start = _from_end(self._bound(start_term, index.start.loc, "a slice bound"), size)
        if index.stop is not None:
            stop = _from_end(self._bound(stop_term, index.stop.loc, "a slice bound"), size)
        start = None if start == 0 else start  # the defaults, written out
        stop = None if stop == size else stop
        step = 1
        if index.step is not None:
            step_expr = self._bound(step_term, index.step.loc, "a slice step")
            if step_expr.value is None:
                raise SemaError(f"a slice step must be a constant, found {step_expr}",
                                index.step.loc)
            step = step_expr.value
            if step <= 0:
                raise SemaError(f"a slice step must be positive, found {step}", index.step.loc)
        return _attr(start), _attr(stop), step

    def _integer_index(
        self, term: Term, loc: Location | None, type_: TensorType, axis: int
    ) -> tuple[Bound, Bound]:
        """Bounds of the length-1 slice that `x[i]` takes along `axis`, with the check that
        `i` is in range: at compile time when it can be decided, else at call time.

        On a symbolic axis `N`, an index `N - k` is taken as `-k`, and constant bounds are
        kept, so that the slice's type stays simple (`N - max(N - 1, 0)` for `x[-1]`)."""
        written = self._bound(term, loc, "an index")
        size = type_.shape[axis]
        what = f"index {written} is out of range for axis {axis} of {describe(type_)}"
        index = written
        if _counts_from_end(written):
            # counted from the end but never clamped: `x[-N - 1]` is out of range, not `x[0]`
            index = size + written
            if index.value is not None and index.value < 0:
                raise SemaError(what, loc)
        from_end = (index - size).value
        if not index.is_const and from_end is not None and from_end < 0:
            index = DimExpr.const(from_end)
        constant, static_size = index.value, size.value
        if constant is not None and static_size is not None:
            if not -static_size <= constant < static_size:
                raise SemaError(f"{what} (size {static_size})", loc)
            position = constant + static_size if constant < 0 else constant
            return position, position + 1
        if constant is not None and constant < 0:
            self._check_index("le", DimExpr.const(-constant), size, what, loc)
            return constant, (constant + 1 if constant < -1 else None)
        if constant is None:
            self._check_index("le", DimExpr.const(0), index, what, loc)
        self._check_index("lt", index, size, what, loc)
        return _attr(index), _attr(index + 1)

    def _check_index(
        self, kind: str, lhs: DimExpr, rhs: DimExpr, what: str, loc: Location | None
    ) -> None:
        holds = ShapeConstraint(kind, lhs, rhs, "IndexError", what).holds_statically()
        if holds is False:
            raise SemaError(what, loc)
        if holds is None:
            self.emitter.defer(kind, lhs, rhs, "IndexError", what, loc)


def _counts_from_end(bound: DimExpr) -> bool:
    """Whether a symbolic bound is negative for every size (`-N`, `-2*N - 1`): then it counts
    from the end of the axis, as in Python."""
    return not bound.is_const and _all_coefficients(bound, lambda c: c < 0, lambda c: c <= 0)


def _from_end(bound: DimExpr, size: DimExpr) -> DimExpr:
    """A slice bound that counts from the end, as a position, clamped at 0 as Python's slices
    are. Other bounds are returned as they are."""
    if not _counts_from_end(bound):
        return bound
    shifted = size + bound
    if shifted.is_const or _all_coefficients(shifted, lambda c: c <= 0, lambda c: c <= 0):
        return DimExpr.const(max(shifted.value or 0, 0))
    return dim_max(shifted, 0)


def _all_coefficients(expr: DimExpr, symbolic: Callable[[int], bool],
                      constant: Callable[[int], bool]) -> bool:
    """Whether the coefficients of a polynomial in plain symbols satisfy the predicates."""
    for monomial, coeff in expr.terms:
        if not all(isinstance(atom, str) for atom in monomial):
            return False
        if not (symbolic(coeff) if monomial else constant(coeff)):
            return False
    return True


def _attr(bound: DimExpr | None) -> Bound:
    """A slice bound as an attribute: an int when constant."""
    if bound is None:
        return None
    return bound.value if bound.value is not None else bound
