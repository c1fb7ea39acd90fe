"""Symbolic dimension expressions: `N`, `N - 1`, `2*N`, `N*K`, `(N + 1) // 2`, `min(N, 3)`.

A `DimExpr` is kept in a canonical form so that structural equality is semantic equality for
the polynomial part: a sum of monomials, each an integer coefficient times a sorted product of
atoms. An atom is a symbol name or an opaque `floordiv`/`min`/`max` node whose arguments are
themselves canonical. Two shapes agree when their expressions are equal objects.

The value of a dimension of a tensor type is its expression's value clamped at zero, so that
Python's slice clamping (`x[1:]` of an empty axis is empty) holds for symbolic sizes too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property

Monomial = tuple["Atom", ...]
Atom = "str | DimOp"


@dataclass(frozen=True, slots=True)
class DimOp:
    """An opaque atom: `floordiv(a, b)`, `min(a, b, ...)` or `max(a, b, ...)`."""

    kind: str
    args: tuple[DimExpr, ...]

    def sort_key(self) -> tuple:
        return (1, self.kind, tuple(str(a) for a in self.args))

    def evaluate(self, env: Mapping[str, int]) -> int:
        values = [a.evaluate(env) for a in self.args]
        if self.kind == "floordiv":
            return values[0] // values[1] if values[1] != 0 else 0
        return min(values) if self.kind == "min" else max(values)

    def __str__(self) -> str:
        if self.kind == "floordiv":
            lhs, rhs = self.args
            return f"{lhs._str_operand()} // {rhs._str_operand()}"
        return f"{self.kind}({', '.join(str(a) for a in self.args)})"


def _atom_key(atom: str | DimOp) -> tuple:
    return (0, atom) if isinstance(atom, str) else atom.sort_key()


class DimExpr:
    """An immutable, hashable, canonical integer expression over dimension symbols."""

    __slots__ = ("terms", "__dict__")

    def __init__(self, terms: Mapping[Monomial, int] | None = None) -> None:
        canonical = {m: c for m, c in (terms or {}).items() if c != 0}
        self.terms: tuple[tuple[Monomial, int], ...] = tuple(
            sorted(canonical.items(), key=lambda mc: (len(mc[0]), [_atom_key(a) for a in mc[0]]))
        )

    # ----- construction -------------------------------------------------------------------
    @staticmethod
    def const(value: int) -> DimExpr:
        return DimExpr({(): int(value)})

    @staticmethod
    def sym(name: str) -> DimExpr:
        return DimExpr({(name,): 1})

    @staticmethod
    def of(value: DimLike) -> DimExpr:
        if isinstance(value, DimExpr):
            return value
        if isinstance(value, bool):
            raise TypeError("a dimension is an integer, not a bool")
        if isinstance(value, int):
            return DimExpr.const(value)
        if isinstance(value, str):
            return parse_dim(value)
        raise TypeError(f"cannot make a dimension from {value!r}")

    # ----- queries --------------------------------------------------------------------------
    @property
    def is_const(self) -> bool:
        return all(m == () for m, _ in self.terms)

    @property
    def value(self) -> int | None:
        """The integer value when the expression is constant, else None."""
        if not self.is_const:
            return None
        return self.terms[0][1] if self.terms else 0

    @cached_property
    def symbols(self) -> frozenset[str]:
        names: set[str] = set()
        for monomial, _ in self.terms:
            for atom in monomial:
                if isinstance(atom, str):
                    names.add(atom)
                else:
                    for arg in atom.args:
                        names |= arg.symbols
        return frozenset(names)

    def evaluate(self, env: Mapping[str, int]) -> int:
        total = 0
        for monomial, coeff in self.terms:
            product = coeff
            for atom in monomial:
                product *= env[atom] if isinstance(atom, str) else atom.evaluate(env)
            total += product
        return total

    def extent(self, env: Mapping[str, int]) -> int:
        """The size this expression denotes as a dimension: its value clamped at zero."""
        return max(0, self.evaluate(env))

    def substitute(self, mapping: Mapping[str, DimExpr]) -> DimExpr:
        result = DimExpr.const(0)
        for monomial, coeff in self.terms:
            product = DimExpr.const(coeff)
            for atom in monomial:
                if isinstance(atom, str):
                    product = product * mapping.get(atom, DimExpr.sym(atom))
                else:
                    args = [a.substitute(mapping) for a in atom.args]
                    product = product * _make_op(atom.kind, args)
            result = result + product
        return result

    # ----- arithmetic -----------------------------------------------------------------------
    def __add__(self, other: DimLike) -> DimExpr:
        merged = dict(self.terms)
        for monomial, coeff in DimExpr.of(other).terms:
            merged[monomial] = merged.get(monomial, 0) + coeff
        return DimExpr(merged)

    __radd__ = __add__

    def __neg__(self) -> DimExpr:
        return DimExpr({m: -c for m, c in self.terms})

    def __sub__(self, other: DimLike) -> DimExpr:
        return self + (-DimExpr.of(other))

    def __rsub__(self, other: DimLike) -> DimExpr:
        return DimExpr.of(other) - self

    def __mul__(self, other: DimLike) -> DimExpr:
        product: dict[Monomial, int] = {}
        for m1, c1 in self.terms:
            for m2, c2 in DimExpr.of(other).terms:
                monomial = tuple(sorted(m1 + m2, key=_atom_key))
                product[monomial] = product.get(monomial, 0) + c1 * c2
        return DimExpr(product)

    __rmul__ = __mul__

    def __floordiv__(self, other: DimLike) -> DimExpr:
        return _make_op("floordiv", [self, DimExpr.of(other)])

    def __rfloordiv__(self, other: DimLike) -> DimExpr:
        return _make_op("floordiv", [DimExpr.of(other), self])

    # ----- identity -------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if isinstance(other, int) and not isinstance(other, bool):
            other = DimExpr.const(other)
        if not isinstance(other, DimExpr):
            return NotImplemented
        return self.terms == other.terms

    def __hash__(self) -> int:
        return hash(self.terms)

    def __repr__(self) -> str:
        return f"DimExpr({str(self)!r})"

    def __str__(self) -> str:
        if not self.terms:
            return "0"
        pieces: list[str] = []
        ordered = [t for t in self.terms if t[0] != ()] + [t for t in self.terms if t[0] == ()]
        for index, (monomial, coeff) in enumerate(ordered):
            magnitude = abs(coeff)
            factors = [_atom_str(a, len(monomial) > 1 or coeff != 1) for a in monomial]
            if magnitude != 1 or not factors:
                factors.insert(0, str(magnitude))
            body = "*".join(factors)
            if index == 0:
                pieces.append(("-" if coeff < 0 else "") + body)
            else:
                pieces.append((" - " if coeff < 0 else " + ") + body)
        return "".join(pieces)

    def _str_operand(self) -> str:
        """This expression as an operand of `//` or `*`: parenthesised unless atomic."""
        text = str(self)
        atomic = len(self.terms) <= 1 and (
            self.is_const
            and (self.value or 0) >= 0
            or (
                len(self.terms) == 1
                and self.terms[0][1] == 1
                and len(self.terms[0][0]) == 1
                and not (
                    isinstance(self.terms[0][0][0], DimOp)
                    and self.terms[0][0][0].kind == "floordiv"
                )
            )
        )
        return text if atomic else f"({text})"


DimLike = DimExpr | int | str


def _atom_str(atom: str | DimOp, in_product: bool) -> str:
    if isinstance(atom, str):
        return atom
    text = str(atom)
    return f"({text})" if in_product and atom.kind == "floordiv" else text


def _make_op(kind: str, args: list[DimExpr]) -> DimExpr:
    if kind == "floordiv":
        return _floordiv(args[0], args[1])
    return _minmax(kind, args)


def _floordiv(lhs: DimExpr, rhs: DimExpr) -> DimExpr:
    if lhs.is_const and rhs.is_const:
        divisor = rhs.value or 0
        return DimExpr.const(0 if divisor == 0 else (lhs.value or 0) // divisor)
    if rhs == 1:
        return lhs
    divisor = rhs.value
    if divisor is not None and divisor > 0 and all(c % divisor == 0 for _, c in lhs.terms):
        return DimExpr({m: c // divisor for m, c in lhs.terms})
    return DimExpr({(DimOp("floordiv", (lhs, rhs)),): 1})


def _minmax(kind: str, args: list[DimExpr]) -> DimExpr:
    """Canonical `min`/`max`: flattened, deduplicated, and without any argument that another
    provably beats (their difference is a constant of the right sign)."""
    unique: list[DimExpr] = []
    for arg in args:
        nested = _as_single_op(arg, kind)
        for item in nested.args if nested else (arg,):
            if item not in unique:
                unique.append(item)
    kept = [a for a in unique if not any(_beats(kind, b, a) for b in unique if b != a)]
    if len(kept) == 1:
        return kept[0]
    kept.sort(key=lambda a: (a.is_const, str(a)))
    return DimExpr({(DimOp(kind, tuple(kept)),): 1})


def _beats(kind: str, winner: DimExpr, loser: DimExpr) -> bool:
    """Whether `winner` is provably the result of `kind(winner, loser)`."""
    delta = loser - winner if kind == "min" else winner - loser
    return delta != 0 and sign_of(delta) in ("positive", "nonnegative")


def sign_of(expr: DimExpr) -> str | None:
    """"positive", "nonnegative", "negative", "nonpositive" or None, knowing that every
    symbol is a size (>= 0) and that min/max/floordiv atoms of such sizes are >= 0 when their
    arguments are."""
    if expr.is_const:
        value = expr.value or 0
        return "positive" if value > 0 else "negative" if value < 0 else "nonnegative"
    constant = 0
    signs: set[int] = set()
    for monomial, coeff in expr.terms:
        if monomial == ():
            constant = coeff
            continue
        if not all(_atom_nonnegative(atom) for atom in monomial):
            return None
        signs.add(1 if coeff > 0 else -1)
    if signs == {1}:
        return "positive" if constant > 0 else "nonnegative" if constant >= 0 else None
    if signs == {-1}:
        return "negative" if constant < 0 else "nonpositive" if constant <= 0 else None
    return None


def _atom_nonnegative(atom: str | DimOp) -> bool:
    if isinstance(atom, str):
        return True
    nonnegative = (sign_of(arg) in ("positive", "nonnegative") for arg in atom.args)
    return any(nonnegative) if atom.kind == "max" else all(nonnegative)


def _as_single_op(expr: DimExpr, kind: str) -> DimOp | None:
    if len(expr.terms) != 1:
        return None
    monomial, coeff = expr.terms[0]
    if coeff != 1 or len(monomial) != 1 or not isinstance(monomial[0], DimOp):
        return None
    return monomial[0] if monomial[0].kind == kind else None


def as_size(dim: DimLike) -> DimExpr:
    """The size that the dimension `dim` denotes, as an expression: its value clamped at zero.

    A dimension's extent is its value clamped at zero (`DimExpr.extent`), so `x[3:]` of an
    `f32[N]` is typed `f32[N - 3]` and is empty for N < 3. Wherever a dimension is used as a
    number -- added up by `concat`, multiplied by `reshape`, read by `x.shape[k]`, counted by
    `mean`, bound to a callee's parameter, compared at call time -- it must be this clamped
    value, which is `dim` itself when `dim` is provably nonnegative.
    """
    dim = DimExpr.of(dim)
    if sign_of(dim) in ("positive", "nonnegative"):
        return dim
    return dim_max(dim, 0)


def dim_min(*args: DimLike) -> DimExpr:
    return _minmax("min", [DimExpr.of(a) for a in args])


def dim_max(*args: DimLike) -> DimExpr:
    return _minmax("max", [DimExpr.of(a) for a in args])


def prod(dims: Iterable[DimExpr]) -> DimExpr:
    result = DimExpr.const(1)
    for dim in dims:
        result = result * dim
    return result


def element_count(shape: Iterable[DimLike]) -> DimExpr:
    """The number of elements of `shape`: the product of its sizes, each clamped at zero
    (`as_size`) before multiplying, so that `[N - 3, M - 3]` with N = M = 1 counts 0, not 4."""
    return prod(as_size(dim) for dim in shape)


MAX_SIZE = 2**63 - 1  # the largest constant dimension (sizes are int64 in the backends)


def size_problem(dim: DimExpr) -> str | None:
    """Why a constant dimension cannot be a size (negative, or beyond int64), else None."""
    value = dim.value
    if value is None or 0 <= value <= MAX_SIZE:
        return None
    return "is negative" if value < 0 else "is too large (at most 2**63 - 1)"


# ----- text ---------------------------------------------------------------------------------

MAX_PAREN_DEPTH = 32
_TOKEN = re.compile(r"\s*(?:(\d+)|(\$\d+|[A-Za-z_][A-Za-z0-9_]*)|(//|[-+*(),]))")


class DimSyntaxError(ValueError):
    """A malformed dimension expression; `offset` is the character where it went wrong."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


def parse_dim(text: str) -> DimExpr:
    """Parse the printed form of a dimension expression (the inverse of `str`)."""
    tokens: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if not match:
            raise DimSyntaxError(f"unexpected character {text[pos]!r} in dimension", pos)
        kind = "int" if match.group(1) else "name" if match.group(2) else "op"
        tokens.append((kind, match.group(match.lastindex or 0), match.start(match.lastindex or 0)))
        pos = match.end()
    parser = _DimParser(tokens, len(text))
    expr = parser.expr()
    if parser.pos != len(tokens):
        kind, text_at, offset = tokens[parser.pos]
        raise DimSyntaxError(f"unexpected {text_at!r} in dimension", offset)
    return expr


class _DimParser:
    def __init__(self, tokens: list[tuple[str, str, int]], end: int) -> None:
        self.tokens = tokens
        self.pos = 0
        self.end = end
        self.depth = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str, int]:
        if self.pos >= len(self.tokens):
            raise DimSyntaxError("unexpected end of dimension", self.end)
        token = self.tokens[self.pos]
        if expected is not None and token[1] != expected:
            raise DimSyntaxError(f"expected {expected!r} but found {token[1]!r}", token[2])
        self.pos += 1
        return token

    def expr(self) -> DimExpr:
        result = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()[1]
            rhs = self.term()
            result = result + rhs if op == "+" else result - rhs
        return result

    def term(self) -> DimExpr:
        result = self.unary()
        while self.peek() in ("*", "//"):
            op = self.take()[1]
            rhs = self.unary()
            result = result * rhs if op == "*" else result // rhs
        return result

    def unary(self) -> DimExpr:
        negations = 0
        while self.peek() == "-":
            self.take()
            negations += 1
        atom = self.atom()
        return -atom if negations % 2 else atom

    def atom(self) -> DimExpr:
        kind, text, offset = self.take()
        if kind == "int":
            return DimExpr.const(int(text))
        if kind == "name" and text in ("min", "max") and self.peek() == "(":
            self.take("(")
            return _minmax(text, self.parenthesised(offset))
        if kind == "name":
            return DimExpr.sym(text)
        if text == "(":
            (inner,) = self.parenthesised(offset, single=True)
            return inner
        raise DimSyntaxError(f"unexpected {text!r} in dimension", offset)

    def parenthesised(self, offset: int, single: bool = False) -> list[DimExpr]:
        """The expressions up to the `)` that closes a `(` just taken at `offset` (one when
        `single`, else a comma-separated list), within the nesting limit."""
        self.depth += 1
        if self.depth > MAX_PAREN_DEPTH:
            raise DimSyntaxError(f"parentheses nest more than {MAX_PAREN_DEPTH} deep", offset)
        items = [self.expr()]
        while not single and self.peek() == ",":
            self.take()
            items.append(self.expr())
        self.take(")")
        self.depth -= 1
        return items
