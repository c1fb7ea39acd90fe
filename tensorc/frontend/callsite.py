"""Binding call arguments to parameters, and reading them back with the right checks.

Both built-ins and user functions take positional-or-keyword arguments (SPEC §1.5):
`sum(x, 1)` is `sum(x, axis=1)`. `bind_arguments` reports the Python-like errors (too many
arguments, unknown or repeated parameter, missing argument); a `CallSite` then gives a
built-in's handler typed access to each argument, raising located errors that say what was
expected and what was found.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tensorc.frontend.emitter import Emitter
from tensorc.frontend.promote import float_dtype
from tensorc.frontend.shapes import describe, normalize_axes, normalize_axis
from tensorc.frontend.values import (
    BoolConst,
    DTypeTerm,
    FloatConst,
    IntConst,
    Item,
    ListTerm,
    SemaError,
    Tensor,
    Term,
    is_weak,
)
from tensorc.ir.core import Value
from tensorc.ir.dims import DimExpr
from tensorc.ir.dtypes import DType
from tensorc.ir.location import Location

REQUIRED: Any = object()


@dataclass(frozen=True, slots=True)
class KeywordArg:
    name: str
    item: Item
    name_loc: Location | None


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def bind_arguments(
    function: str,
    params: Sequence[str],
    defaults: Mapping[str, Any],
    positional: Sequence[Item],
    keywords: Sequence[KeywordArg],
    call_loc: Location | None,
    aliases: Mapping[str, str] | None = None,
) -> dict[str, Item]:
    """Match arguments to `params` in order, then by keyword (a parameter's name or one of
    its `aliases`); defaults fill the rest."""
    bound: dict[str, Item] = {}
    if len(positional) > len(params):
        extra = positional[len(params)]
        at_most = "at most " if any(p in defaults for p in params) else ""
        raise SemaError(
            f"{function}() takes {at_most}{_plural(len(params), 'argument')} "
            f"({', '.join(params)}) but {len(positional)} were given",
            extra.loc,
        )
    for param, item in zip(params, positional):
        bound[param] = item
    for keyword in keywords:
        name = (aliases or {}).get(keyword.name, keyword.name)
        if name not in params:
            listing = ", ".join(params) if params else "none"
            raise SemaError(
                f"{function}() has no parameter named '{keyword.name}' (parameters: {listing})",
                keyword.name_loc,
            )
        if name in bound:
            raise SemaError(
                f"{function}() got multiple values for parameter '{name}'", keyword.name_loc
            )
        bound[name] = keyword.item
    missing = [p for p in params if p not in bound and defaults.get(p, REQUIRED) is REQUIRED]
    if missing:
        names = ", ".join(f"'{p}'" for p in missing)
        raise SemaError(
            f"{function}() missing required argument{'s' if len(missing) > 1 else ''} {names}",
            call_loc,
        )
    return bound


def default_term(value: Any) -> Term | None:
    """A parameter's default as a term; None stays None (the argument is absent)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return BoolConst(value)
    if isinstance(value, int):
        return IntConst(DimExpr.const(value))
    if isinstance(value, float):
        return FloatConst(value)
    if isinstance(value, DType):
        return DTypeTerm(value)
    raise TypeError(f"unsupported default {value!r}")


class CallSite:
    """A call of a built-in: where it is, its bound arguments, and typed access to them."""

    def __init__(
        self,
        name: str,
        loc: Location | None,
        emitter: Emitter,
        args: Mapping[str, Item],
        defaults: Mapping[str, Any],
    ) -> None:
        self.name = name
        self.loc = loc
        self.emitter = emitter
        self.args = dict(args)
        self.defaults = defaults

    # ----- raw access -------------------------------------------------------------------
    def given(self, param: str) -> bool:
        """Whether the argument has a value (given, or a default other than None)."""
        return param in self.args or self.defaults.get(param) is not None

    def item(self, param: str) -> Item:
        if param in self.args:
            return self.args[param]
        term = default_term(self.defaults.get(param))
        if term is None:
            raise SemaError(f"{self.name}() needs argument '{param}'", self.loc)
        return Item(term, None, self.loc)

    def term(self, param: str) -> Term:
        return self.item(param).term

    def loc_of(self, param: str) -> Location | None:
        return self.args[param].loc if param in self.args else self.loc

    def error(self, param: str, expected: str) -> SemaError:
        """`sum() argument 'axis' must be <expected>, found <what it is>`."""
        found = self.term(param).describe()
        return SemaError(
            f"{self.name}() argument '{param}' must be {expected}, found {found}",
            self.loc_of(param),
        )

    # ----- tensors ----------------------------------------------------------------------
    def operand(self, param: str) -> Term:
        """A tensor or weak scalar, left as it is (for promotion with other operands)."""
        term = self.term(param)
        if not isinstance(term, Tensor) and not is_weak(term):
            raise self.error(param, "a tensor")
        return term

    def value(self, param: str, dtype: DType | None = None) -> Value:
        """A tensor as an SSA value (a weak scalar materialised), cast to `dtype` if given."""
        return self.emitter.materialize(self.operand(param), self.loc_of(param), dtype)

    def numeric(self, param: str) -> Value:
        value = self.value(param)
        if value.type.dtype.is_bool:
            raise self.error(param, "a numeric tensor (bool has no arithmetic)")
        return value

    def floating(self, param: str) -> Value:
        """A float tensor; integers and bools are converted to f32 first, as in JAX."""
        value = self.value(param)
        return self.emitter.cast(value, float_dtype(value.type.dtype), self.loc_of(param))

    def integer_tensor(self, param: str, role: str) -> Value:
        value = self.value(param)
        if not value.type.dtype.is_int:
            raise SemaError(
                f"{self.name}() {role} must be an integer tensor, found {describe(value.type)}",
                self.loc_of(param),
            )
        return value

    # ----- compile-time values ------------------------------------------------------------
    def static_int(self, param: str) -> int:
        term = self.term(param)
        if isinstance(term, IntConst) and term.static is not None:
            return term.static
        raise self.error(param, "a constant integer")

    def static_float(self, param: str) -> float:
        term = self.term(param)
        if isinstance(term, FloatConst):
            return term.value
        if isinstance(term, IntConst) and term.static is not None:
            return float(term.static)
        raise self.error(param, "a constant number")

    def flag(self, param: str) -> bool:
        term = self.term(param)
        if isinstance(term, BoolConst):
            return term.value
        raise self.error(param, "true or false")

    def dtype(self, param: str) -> DType | None:
        if not self.given(param):
            return None
        term = self.term(param)
        if isinstance(term, DTypeTerm):
            return term.dtype
        raise self.error(param, "a dtype (f32, f64, i32, i64, bool)")

    def axis(self, param: str, rank: int, subject: str) -> int | None:
        """One axis (negative counts from the end), or None when absent."""
        if not self.given(param):
            return None
        return normalize_axis(self._axis_value(self.item(param)), rank, self.loc_of(param),
                              subject)

    def axes(self, param: str, rank: int, subject: str) -> list[int] | None:
        """An axis or a list of axes, sorted and distinct; None when absent (all axes)."""
        if not self.given(param):
            return None
        item = self.item(param)
        if isinstance(item.term, ListTerm):
            written = [(self._axis_value(element), element.loc) for element in item.term.items]
        else:
            written = [(self._axis_value(item), item.loc)]
        return normalize_axes(written, rank, subject)

    def _axis_value(self, item: Item) -> int:
        term = item.term
        if isinstance(term, IntConst) and term.static is not None:
            return term.static
        raise SemaError(
            f"{self.name}() axis must be a constant integer, found {term.describe()}", item.loc
        )

    def shape(self, param: str) -> list[tuple[DimExpr, Location | None]]:
        """A shape list of compile-time integers (literals, dimension names, their sums...)."""
        item = self.item(param)
        elements = item.term.items if isinstance(item.term, ListTerm) else (item,)
        dims: list[tuple[DimExpr, Location | None]] = []
        for element in elements:
            if not isinstance(element.term, IntConst):
                raise SemaError(
                    f"{self.name}() shape entries must be integers or dimension names, found "
                    f"{element.term.describe()}",
                    element.loc,
                )
            dims.append((element.term.expr, element.loc))
        return dims

    def sizes(self, param: str) -> tuple[DimExpr, ...]:
        """A shape of non-negative sizes."""
        dims = self.shape(param)
        for dim, loc in dims:
            if dim.value is not None and dim.value < 0:
                raise SemaError(f"{self.name}() sizes must be >= 0, found {dim}", loc)
        return tuple(dim for dim, _ in dims)

    def items(self, param: str) -> tuple[Item, ...]:
        """The elements of a list argument."""
        item = self.item(param)
        if not isinstance(item.term, ListTerm):
            raise self.error(param, "a list")
        return item.term.items
