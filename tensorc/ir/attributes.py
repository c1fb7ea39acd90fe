"""Attribute values beyond plain Python scalars and lists.

Attributes are ordinary Python values (`int`, `float`, `bool`, `str`, `None`, lists, `DType`,
`DimExpr`, `numpy.ndarray` for dense constants) plus the small frozen classes below.
"""

from __future__ import annotations

from dataclasses import dataclass

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
