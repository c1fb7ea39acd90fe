"""Attribute values beyond plain Python scalars and lists.

Attributes are ordinary Python values (`int`, `float`, `bool`, `str`, `None`, lists, `DType`,
`DimExpr`, `numpy.ndarray` for dense constants) plus the small frozen classes below.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tensorc.ir.dims import DimExpr

CONSTRAINT_KINDS = ("eq", "lt", "le")
CONSTRAINT_ERRORS = ("ValueError", "IndexError")


@dataclass(frozen=True, slots=True)
class SymbolRef:
    """A reference to a function by name: `@mlp`."""

    name: str

    def __str__(self) -> str:
        return f"@{self.name}"


@dataclass(frozen=True, slots=True)
class ShapeConstraint:
    """A fact about a function's symbolic sizes that is checked when the function is called.

    `eq` requires lhs == rhs (two symbolic sizes that broadcasting or matmul needs equal);
    `lt`/`le` require lhs < rhs / lhs <= rhs (an index within a symbolic axis). A failed check
    raises `error` (ValueError or IndexError) with `message`, before any computation.
    """

    kind: str
    lhs: DimExpr
    rhs: DimExpr
    error: str
    message: str

    def holds_statically(self) -> bool | None:
        """True or False when the sizes decide it without knowing the symbols, else None."""
        delta = (self.rhs - self.lhs).value
        if delta is None:
            return None
        if self.kind == "eq":
            return delta == 0
        return delta > 0 if self.kind == "lt" else delta >= 0

    def to_manifest(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "lhs": str(self.lhs),
            "rhs": str(self.rhs),
            "error": self.error,
            "message": self.message,
        }


class Unhashable(Exception):
    pass


def freeze_attr(value: Any) -> Hashable:
    """A hashable form of an attribute value under which equal attributes are equal:
    lists become tuples, arrays (dtype, shape, bytes), constant dims ints; floats and bools
    are tagged so that `-0.0`/`0.0`, NaN and `True`/`1` keep apart and NaN equals itself."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, float):
        return ("float", repr(value))
    if isinstance(value, DimExpr):
        static = value.value
        return static if static is not None else value
    if isinstance(value, np.ndarray):
        return ("array", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, (list, tuple)):
        return tuple(freeze_attr(item) for item in value)
    if isinstance(value, dict):
        return tuple(sorted((key, freeze_attr(item)) for key, item in value.items()))
    try:
        hash(value)
    except TypeError:
        raise Unhashable from None
    return value


def frozen_attributes(attributes: Mapping[str, Any]) -> Hashable | None:
    """An op's attributes in the hashable form of `freeze_attr` (what makes two ops' attributes
    the same, for CSE and for codegen's comparisons), or None when one of them has none."""
    try:
        return freeze_attr(dict(attributes))
    except Unhashable:
        return None
