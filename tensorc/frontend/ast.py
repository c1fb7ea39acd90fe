"""The tensorc AST: what the parser builds from a `.tc` file (SPEC §1).

Every node is a frozen, slotted record whose last field is `loc`, the span of source text
the node covers (parenthesised sub-expressions exclude their parentheses; the enclosing node's
span includes them). Nodes compare and hash by identity, so they can key dictionaries (for
instance node -> type); use `dump` to compare trees structurally.

The records are built by `_NodeType` from each class's annotations, not by `dataclass`: the
25 frozen, slotted dataclasses took 10-13 ms to create, an eighth of the frontend's import
and a fortieth of a cold compile, where these take well under a millisecond.

Operators are plain strings: binary `+ - * / // % @ ** < <= > >= == != and or`, unary
`- + not`. Dimension expressions in types use `+ - * //`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar, TypeAlias

from tensorc.ir.location import Location

DTYPE_NAMES = ("f32", "f64", "i32", "i64", "bool", "f16", "bf16")
ARITHMETIC_OPS = frozenset({"+", "-", "*", "/", "//", "%", "@", "**"})
COMPARISON_OPS = frozenset({"<", "<=", ">", ">=", "==", "!="})
LOGICAL_OPS = frozenset({"and", "or"})
UNARY_OPS = frozenset({"-", "+", "not"})
DIM_OPS = frozenset({"+", "-", "*", "//"})


class _NodeType(type):
    """Makes each class it creates a record of the fields its body annotates, in order: one
    slot per field, and `_fields` naming them for `Node`'s constructor and `iter_children`."""

    def __new__(mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> type:
        fields = tuple(namespace.get("__annotations__", ()))
        namespace.setdefault("__slots__", fields)
        namespace.setdefault("_fields", fields)
        return super().__new__(mcs, name, bases, namespace)


class Node(metaclass=_NodeType):
    """Base of every AST node; each has a `loc`. Built from its fields, positionally or by
    name, and never changed after."""

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()
    loc: Location

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        fields = self._fields
        if len(args) > len(fields):
            raise TypeError(f"{type(self).__name__} takes {len(fields)} fields, got {len(args)}")
        values = dict(zip(fields, args))
        for key, value in kwargs.items():
            if key not in fields or key in values:
                raise TypeError(f"{type(self).__name__}: unexpected or repeated field {key!r}")
            values[key] = value
        if len(values) != len(fields):
            missing = [name for name in fields if name not in values]
            raise TypeError(f"{type(self).__name__} is missing {', '.join(missing)}")
        for name in fields:
            object.__setattr__(self, name, values[name])

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: cannot assign to {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: cannot delete {name!r}")

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({fields})"


# ---- dimensions and types ----------------------------------------------------------------


class DimName(Node):
    """A symbolic dimension, `N`."""

    name: str
    loc: Location


class DimInt(Node):
    """A static dimension, `784`."""

    value: int
    loc: Location


class DimBinOp(Node):
    """`lhs op rhs` in a result type's dimension, op one of `+ - * //`."""

    op: str
    lhs: DimExpr
    rhs: DimExpr
    loc: Location


DimExpr: TypeAlias = DimName | DimInt | DimBinOp


class TensorTypeExpr(Node):
    """`f32`, `f32[]` or `f32[N, 784]`; `dims` is None when written without brackets."""

    dtype: str
    dims: list[DimExpr] | None
    loc: Location

    @property
    def rank(self) -> int:
        return 0 if self.dims is None else len(self.dims)


class TupleTypeExpr(Node):
    """A tuple result type, `(f32[N], f32)`."""

    elts: list[TensorTypeExpr]
    loc: Location


TypeExpr: TypeAlias = TensorTypeExpr | TupleTypeExpr


# ---- expressions -------------------------------------------------------------------------


class Name(Node):
    id: str
    loc: Location


class IntLit(Node):
    value: int
    loc: Location


class FloatLit(Node):
    """A float literal; `text` is its spelling in the source (`1e-5`, `.5`)."""

    value: float
    text: str
    loc: Location


class BoolLit(Node):
    value: bool
    loc: Location


class ListExpr(Node):
    """`[a, b, c]`, as used for shapes, axes and `concat`/`grad` operands."""

    elts: list[Expr]
    loc: Location


class TupleExpr(Node):
    """`(a, b)`, or `a, b` after `=` and `return`: several values, as a call to a function
    with several results gives them. Only unpacked by an assignment or returned."""

    elts: list[Expr]
    loc: Location


class BinOp(Node):
    op: str
    lhs: Expr
    rhs: Expr
    loc: Location


class UnaryOp(Node):
    op: str
    operand: Expr
    loc: Location


class Keyword(Node):
    """`name=value` in a call; `loc` covers both, `name_loc` the name."""

    name: str
    value: Expr
    name_loc: Location
    loc: Location


class Call(Node):
    """`func(args..., kw=value...)`; only named functions can be called."""

    func: str
    func_loc: Location
    args: list[Expr]
    kwargs: list[Keyword]
    loc: Location


class Slice(Node):
    """`start:stop:step` inside a subscript; absent parts are None."""

    start: Expr | None
    stop: Expr | None
    step: Expr | None
    loc: Location


class Ellipsis_(Node):
    """`...` inside a subscript."""

    loc: Location


class Subscript(Node):
    """`value[i, a:b, ..., -1]`."""

    value: Expr
    indices: list[Index]
    loc: Location


class Attribute(Node):
    """`value.attr` (`x.T`, `x.shape`)."""

    value: Expr
    attr: str
    attr_loc: Location
    loc: Location


Expr: TypeAlias = (
    Name | IntLit | FloatLit | BoolLit | ListExpr | BinOp | UnaryOp | Call | Subscript | Attribute
)
Index: TypeAlias = Expr | Slice | Ellipsis_


# ---- statements and functions ------------------------------------------------------------


class Assign(Node):
    """`x = value` (one target) or `p, q = value` (tuple unpacking)."""

    targets: list[Name]
    value: Expr
    loc: Location


class Return(Node):
    """`return a` or `return a, b`; `values` is empty for a bare `return`."""

    values: list[Expr]
    loc: Location


class ExprStmt(Node):
    """An expression on its own; the parser accepts it, semantic analysis rejects it."""

    value: Expr
    loc: Location


Stmt: TypeAlias = Assign | Return | ExprStmt


class Param(Node):
    """`name: type`; `loc` covers both."""

    name: str
    type: TensorTypeExpr
    name_loc: Location
    loc: Location


class FunctionDef(Node):
    name: str
    params: list[Param]
    result: TypeExpr | None
    body: list[Stmt]
    name_loc: Location
    loc: Location


class Module(Node):
    functions: list[FunctionDef]
    loc: Location


# ---- traversal and printing --------------------------------------------------------------


def iter_children(node: Node) -> Iterator[Node]:
    """The nodes directly inside `node`, in source order."""
    for name in node._fields:
        if name == "loc" or name.endswith("_loc"):
            continue
        yield from _nodes_in(getattr(node, name))


def walk(node: Node) -> Iterator[Node]:
    """`node` and every node inside it, parents before children (iterative, no recursion)."""
    pending = [node]
    while pending:
        current = pending.pop()
        yield current
        pending.extend(reversed(list(iter_children(current))))


def _nodes_in(value: object) -> Iterator[Node]:
    if isinstance(value, Node):
        yield value
    elif isinstance(value, list):
        yield from (item for item in value if isinstance(item, Node))


def dump(node: Node | None) -> str:
    """A compact s-expression of a tree, for tests and debugging: `-x**2` is `(- (** x 2))`."""
    if node is None:
        return "_"
    dumper = _DUMPERS.get(type(node))
    if dumper is None:
        raise TypeError(f"not an AST node: {node!r}")
    return dumper(node)


def _dump_all(nodes: list) -> str:
    return " ".join(dump(node) for node in nodes)


def _dump_type(node: TensorTypeExpr) -> str:
    if node.dims is None:
        return node.dtype
    return f"{node.dtype}[{', '.join(dump(dim) for dim in node.dims)}]"


def _dump_call(node: Call) -> str:
    parts = [dump(arg) for arg in node.args] + [dump(kw) for kw in node.kwargs]
    return f"({node.func}{''.join(' ' + part for part in parts)})"


def _dump_function(node: FunctionDef) -> str:
    params = ", ".join(dump(param) for param in node.params)
    result = "" if node.result is None else f" -> {dump(node.result)}"
    return f"(def {node.name} ({params}){result} {_dump_all(node.body)})"


_DUMPERS = {
    DimName: lambda n: n.name,
    DimInt: lambda n: str(n.value),
    DimBinOp: lambda n: f"({n.op} {dump(n.lhs)} {dump(n.rhs)})",
    TensorTypeExpr: _dump_type,
    TupleTypeExpr: lambda n: f"({', '.join(dump(elt) for elt in n.elts)})",
    Name: lambda n: n.id,
    IntLit: lambda n: str(n.value),
    FloatLit: lambda n: n.text,
    BoolLit: lambda n: "true" if n.value else "false",
    ListExpr: lambda n: f"[{_dump_all(n.elts)}]",
    BinOp: lambda n: f"({n.op} {dump(n.lhs)} {dump(n.rhs)})",
    UnaryOp: lambda n: f"({n.op} {dump(n.operand)})",
    Keyword: lambda n: f"{n.name}={dump(n.value)}",
    Call: _dump_call,
    Slice: lambda n: f"(: {dump(n.start)} {dump(n.stop)} {dump(n.step)})",
    Ellipsis_: lambda n: "...",
    Subscript: lambda n: f"(index {dump(n.value)} {_dump_all(n.indices)})",
    Attribute: lambda n: f"(. {dump(n.value)} {n.attr})",
    Assign: lambda n: f"(= ({_dump_all(n.targets)}) {dump(n.value)})",
    Return: lambda n: f"(return{''.join(' ' + dump(v) for v in n.values)})",
    ExprStmt: lambda n: f"(expr {dump(n.value)})",
    Param: lambda n: f"{n.name}: {dump(n.type)}",
    FunctionDef: _dump_function,
    Module: lambda n: "\n".join(dump(fn) for fn in n.functions),
}
