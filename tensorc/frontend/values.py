"""What an expression evaluates to during lowering.

Semantic analysis does not turn every expression into IR at once. A literal stays a *weak*
scalar until it meets a tensor whose dtype it then takes (SPEC §1.4); an integer expression of
literals and dimension names stays a compile-time `DimExpr` so that it can be a bound, an axis
or a shape; lists, tuples and dtype names exist only at compile time. `Tensor` wraps an SSA
value. `POISON` is the value of an expression that failed: it was reported once, and whatever
uses it fails silently so that one mistake gives one diagnostic.
"""

from __future__ import annotations

from dataclasses import dataclass

from tensorc.frontend import ast
from tensorc.ir.core import Value
from tensorc.ir.dims import DimExpr
from tensorc.ir.dtypes import DType
from tensorc.ir.location import Location
from tensorc.ir.types import TensorType


class SemaError(Exception):
    """An error in the program, raised inside lowering and reported at `loc`."""

    def __init__(self, message: str, loc: Location | None) -> None:
        super().__init__(message)
        self.message = message
        self.loc = loc


@dataclass(frozen=True, slots=True)
class Tensor:
    """An SSA value of the function being lowered."""

    value: Value

    @property
    def type(self) -> TensorType:
        return self.value.type

    def describe(self) -> str:
        return f"a tensor {self.type}"


@dataclass(frozen=True, slots=True)
class IntConst:
    """A weak integer known at compile time: a literal, a dimension name, `x.shape[0]`, or
    `+ - * //` of those."""

    expr: DimExpr

    @property
    def static(self) -> int | None:
        return self.expr.value

    def describe(self) -> str:
        static = self.static
        return f"the integer {static}" if static is not None else f"the size {self.expr}"


@dataclass(frozen=True, slots=True)
class FloatConst:
    """A weak float literal (or arithmetic folded from literals)."""

    value: float

    def describe(self) -> str:
        return f"the float {self.value!r}"


@dataclass(frozen=True, slots=True)
class BoolConst:
    """A weak `true` / `false`."""

    value: bool

    def describe(self) -> str:
        return "true" if self.value else "false"


WeakScalar = IntConst | FloatConst | BoolConst


@dataclass(frozen=True, slots=True)
class Item:
    """One evaluated element of a list or argument, with the node it came from."""

    term: Term
    node: ast.Node | None
    loc: Location | None


@dataclass(frozen=True, slots=True)
class ListTerm:
    """`[a, b, c]`: shapes, axes, and the operands of `concat`, `stack` and `grad`."""

    items: tuple[Item, ...]

    def describe(self) -> str:
        count = len(self.items)
        return f"a list of {count} element{'' if count == 1 else 's'}"


@dataclass(frozen=True, slots=True)
class TupleTerm:
    """Several values: the results of a call that returns several (a user function, `grad`),
    or a tuple expression `(a, b)`."""

    items: tuple[Term, ...]

    def describe(self) -> str:
        return f"a tuple of {len(self.items)} values"


@dataclass(frozen=True, slots=True)
class DTypeTerm:
    """A dtype name used as a value: `cast(x, f64)`, `zeros([3], dtype=i32)`."""

    dtype: DType

    def describe(self) -> str:
        return f"the dtype {self.dtype}"


class _Poison:
    """The value of an expression whose error has already been reported."""

    _instance: _Poison | None = None

    def __new__(cls) -> _Poison:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def describe(self) -> str:
        return "an erroneous value"

    def __repr__(self) -> str:
        return "POISON"


POISON = _Poison()

Term = Tensor | IntConst | FloatConst | BoolConst | ListTerm | TupleTerm | DTypeTerm | _Poison


def is_weak(term: Term) -> bool:
    return isinstance(term, (IntConst, FloatConst, BoolConst))


def contains_poison(term: Term) -> bool:
    """A poisoned term, or a list with a poisoned element anywhere inside it."""
    if term is POISON:
        return True
    if isinstance(term, ListTerm):
        return any(contains_poison(item.term) for item in term.items)
    if isinstance(term, TupleTerm):
        return any(contains_poison(item) for item in term.items)
    return False
