"""Affine maps from a kernel's iteration domain to the index space of a tensor.

An `AffineMap(num_dims, results)` sends a point `($0, ..., $n-1)` of an n-dimensional domain
to one index per tensor axis. Each result is a `DimExpr` over the reserved index symbols
`$0 .. $n-1` and the function's size symbols (`N`, `K`), *affine in the index symbols*:

    result = c_0*$0 + ... + c_{n-1}*$(n-1) + offset

with integer constant coefficients `c_k` and an `offset` free of index symbols (an integer, or
a size expression such as `N - 1` or `max(N - 3, 0)`). That covers identities and
permutations `($0, $1) -> ($1, $0)`, broadcasts (a dropped dim or the constant `0` on a size-1
axis), strided and offset slices `($0) -> (2*$0 + 1)` and reversals `($0) -> (N - 1 - $0)`.
A product of two index symbols, or an index symbol inside `//`, `min` or `max`, is rejected.

Text form `($0, $1) -> ($0, 0)`; as an attribute `#map<($0, $1) -> ($0, 0)>`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tensorc.ir.dims import DimExpr, DimLike, DimOp, DimSyntaxError, parse_dim

INDEX_PREFIX = "$"
_INDEX_NAME = re.compile(r"\$(\d+)\Z")


class AffineError(ValueError):
    """A map that is not affine in the index symbols, or refers to a dim out of range."""


def index_var(dim: int) -> DimExpr:
    """The index symbol `$dim` as an expression."""
    return DimExpr.sym(f"{INDEX_PREFIX}{dim}")


def index_position(name: str) -> int | None:
    """`k` for the index symbol `$k`, None for a size symbol."""
    found = _INDEX_NAME.match(name)
    return int(found.group(1)) if found else None


def _mentions_index(atom: str | DimOp) -> bool:
    if isinstance(atom, str):
        return index_position(atom) is not None
    return any(index_position(name) is not None for arg in atom.args for name in arg.symbols)


@dataclass(frozen=True, slots=True)
class LinearForm:
    """`sum(coefficient * $dim) + offset`: the decomposition of one affine result."""

    coefficients: tuple[tuple[int, int], ...]  # (dim, coefficient), sorted by dim, nonzero
    offset: DimExpr
    single_dim: int | None  # `k` when the expression is exactly `$k`


def linear_form(expr: DimExpr) -> LinearForm:
    """Split `expr` into index coefficients and an index-free offset; raise AffineError when
    it is not affine in the index symbols (with constant integer coefficients)."""
    coefficients: dict[int, int] = {}
    offset_terms: dict[tuple, int] = {}
    for monomial, coeff in expr.terms:
        index_atoms = [a for a in monomial if _mentions_index(a)]
        if not index_atoms:
            offset_terms[monomial] = coeff
            continue
        if len(monomial) != 1 or not isinstance(monomial[0], str):
            raise AffineError(f"'{expr}' is not affine in the index symbols")
        dim = index_position(monomial[0])
        assert dim is not None
        coefficients[dim] = coefficients.get(dim, 0) + coeff
    ordered = tuple(sorted((d, c) for d, c in coefficients.items() if c != 0))
    single = ordered[0][0] if len(ordered) == 1 and ordered[0][1] == 1 else None
    return LinearForm(ordered, DimExpr(offset_terms), None if offset_terms else single)


@dataclass(frozen=True, slots=True)
class AffineMap:
    """A map from `num_dims` loop indices to one index per result (see the module doc)."""

    num_dims: int
    results: tuple[DimExpr, ...]
    forms: tuple[LinearForm, ...] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        results = tuple(DimExpr.of(r) for r in self.results)
        forms = tuple(linear_form(r) for r in results)
        for result, form in zip(results, forms):
            for dim, _ in form.coefficients:
                if dim >= self.num_dims:
                    raise AffineError(f"'{result}' uses ${dim} in a map of {self.num_dims} dims")
        object.__setattr__(self, "results", results)
        object.__setattr__(self, "forms", forms)

    @staticmethod
    def _trusted(
        num_dims: int, results: Sequence[DimExpr], forms: Sequence[LinearForm]
    ) -> AffineMap:
        """A map from parts already validated (no re-analysis)."""
        amap = object.__new__(AffineMap)
        object.__setattr__(amap, "num_dims", num_dims)
        object.__setattr__(amap, "results", tuple(results))
        object.__setattr__(amap, "forms", tuple(forms))
        return amap

    # ----- construction -------------------------------------------------------------------
    @staticmethod
    def identity(num_dims: int) -> AffineMap:
        cached = _IDENTITIES.get(num_dims)
        if cached is None:
            cached = AffineMap(num_dims, tuple(index_var(d) for d in range(num_dims)))
            _IDENTITIES[num_dims] = cached
        return cached

    @staticmethod
    def projection(num_dims: int, dims: Sequence[int | None]) -> AffineMap:
        """Result i is `$dims[i]`, or the constant 0 where `dims[i]` is None."""
        return AffineMap(
            num_dims, tuple(DimExpr.const(0) if d is None else index_var(d) for d in dims)
        )

    @staticmethod
    def of(num_dims: int, results: Sequence[DimLike]) -> AffineMap:
        return AffineMap(num_dims, tuple(DimExpr.of(r) for r in results))

    # ----- queries --------------------------------------------------------------------------
    @property
    def num_results(self) -> int:
        return len(self.results)

    def linear_forms(self) -> tuple[LinearForm, ...]:
        return self.forms

    def result_dim(self, index: int) -> int | None:
        """`k` when result `index` is exactly `$k`, else None."""
        return self.forms[index].single_dim

    @property
    def used_dims(self) -> frozenset[int]:
        """The loop dims some result depends on."""
        return frozenset(d for form in self.linear_forms() for d, _ in form.coefficients)

    def is_projected_permutation(self, allow_zero_results: bool = False) -> bool:
        """Every result is a distinct `$k` (or the constant 0, when allowed)."""
        seen: set[int] = set()
        for result, form in zip(self.results, self.forms):
            if allow_zero_results and result == 0:
                continue
            dim = form.single_dim
            if dim is None or dim in seen:
                return False
            seen.add(dim)
        return True

    def is_permutation(self) -> bool:
        return self.num_results == self.num_dims and self.is_projected_permutation()

    @property
    def is_identity(self) -> bool:
        return self == AffineMap.identity(self.num_dims)

    # ----- transformation -------------------------------------------------------------------
    def compose(self, inner: AffineMap) -> AffineMap:
        """The map `x -> self(inner(x))`: `inner`'s results feed `self`'s dims."""
        if inner.num_results != self.num_dims:
            raise AffineError(
                f"cannot compose {self} after {inner}: {inner.num_results} results feed "
                f"{self.num_dims} dims"
            )
        if all(f.single_dim is not None or not f.coefficients for f in self.forms):
            # Each result is a dim or free of dims (the common case): no arithmetic needed.
            results: list[DimExpr] = []
            forms: list[LinearForm] = []
            for result, form in zip(self.results, self.forms):
                dim = form.single_dim
                results.append(result if dim is None else inner.results[dim])
                forms.append(form if dim is None else inner.forms[dim])
            return AffineMap._trusted(inner.num_dims, results, forms)
        return self.substitute_dims(dict(enumerate(inner.results)), inner.num_dims)

    def substitute_dims(self, mapping: Mapping[int, DimExpr], num_dims: int) -> AffineMap:
        """Replace `$k` by `mapping[k]` (an expression over a domain of `num_dims` dims)."""
        names = {f"{INDEX_PREFIX}{k}": v for k, v in mapping.items()}
        return AffineMap(num_dims, tuple(r.substitute(names) for r in self.results))

    def image_shape(self, sizes: Sequence[DimExpr]) -> tuple[DimExpr, ...] | None:
        """The shape a projected permutation (zeros allowed) covers when its dims range over
        `sizes`: `sizes[k]` for a result `$k`, 1 for a result 0; None for other maps."""
        shape: list[DimExpr] = []
        for result, form in zip(self.results, self.forms):
            if result == 0:
                shape.append(DimExpr.const(1))
                continue
            dim = form.single_dim
            if dim is None:
                return None
            shape.append(DimExpr.of(sizes[dim]))
        return tuple(shape)

    def evaluate(self, index_arrays: Sequence[Any], env: Mapping[str, int]) -> tuple[Any, ...]:
        """Each result for loop indices `index_arrays` (ints or broadcastable integer arrays,
        one per dim) with the size symbols bound by `env`."""
        values: list[Any] = []
        for form in self.linear_forms():
            value: Any = form.offset.evaluate(env)
            for dim, coeff in form.coefficients:
                term = index_arrays[dim] if coeff == 1 else coeff * index_arrays[dim]
                value = term if isinstance(value, int) and value == 0 else value + term
            values.append(value)
        return tuple(values)

    # ----- text -----------------------------------------------------------------------------
    def __str__(self) -> str:
        dims = ", ".join(f"{INDEX_PREFIX}{d}" for d in range(self.num_dims))
        return f"({dims}) -> ({', '.join(str(r) for r in self.results)})"

    def __repr__(self) -> str:
        return f"AffineMap({str(self)!r})"


_IDENTITIES: dict[int, AffineMap] = {}


def _split_top_level(text: str) -> list[tuple[str, int]]:
    """Comma-separated items outside parentheses, each with its offset in `text`."""
    items: list[tuple[str, int]] = []
    depth = 0
    start = 0
    for pos, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            items.append((text[start:pos], start))
            start = pos + 1
    if text.strip():
        items.append((text[start:], start))
    return items


def parse_affine_map(dims_text: str, results_text: str) -> AffineMap:
    """The map whose text is `(dims_text) -> (results_text)`; raises DimSyntaxError with the
    offset into `results_text` (or -1 for the dims list) when malformed."""
    dims = [item.strip() for item, _ in _split_top_level(dims_text)]
    for position, name in enumerate(dims):
        if name != f"{INDEX_PREFIX}{position}":
            raise DimSyntaxError(
                f"affine map dims must be named $0, $1, ... in order, found '{name}'", -1
            )
    results: list[DimExpr] = []
    for item, offset in _split_top_level(results_text):
        try:
            results.append(parse_dim(item))
        except DimSyntaxError as error:
            raise DimSyntaxError(str(error), offset + error.offset) from None
    try:
        return AffineMap(len(dims), tuple(results))
    except AffineError as error:
        raise DimSyntaxError(str(error), 0) from None


def parse_map_text(text: str) -> AffineMap:
    """Parse `($0, $1) -> ($0, 0)`."""
    lhs, arrow, rhs = text.partition("->")
    lhs, rhs = lhs.strip(), rhs.strip()
    if not arrow or not (lhs.startswith("(") and lhs.endswith(")")):
        raise DimSyntaxError(f"malformed affine map '{text}'", 0)
    if not (rhs.startswith("(") and rhs.endswith(")")):
        raise DimSyntaxError(f"malformed affine map '{text}'", 0)
    return parse_affine_map(lhs[1:-1], rhs[1:-1])
