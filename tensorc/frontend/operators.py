"""The operators of the language (SPEC §1.4), shared by expressions and built-ins.

Each takes evaluated terms and returns a term: weak scalars fold at compile time where Python
would compute the same thing; everything else becomes `tc` ops with explicit casts and
broadcasts (see `Emitter.coerce`).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable

from tensorc.frontend.emitter import Emitter
from tensorc.frontend.promote import float_dtype, result_dtype
from tensorc.frontend.shapes import describe
from tensorc.frontend.values import (
    BoolConst,
    FloatConst,
    IntConst,
    SemaError,
    Tensor,
    Term,
    is_weak,
)
from tensorc.ir.core import Operation, Value
from tensorc.ir.dialects import tc, tc_reduce
from tensorc.ir.dims import DimExpr
from tensorc.ir.dtypes import DType, promote
from tensorc.ir.location import Location
from tensorc.ir.typecheck import format_shape

ARITHMETIC: dict[str, type[Operation]] = {
    "+": tc.AddOp,
    "-": tc.SubOp,
    "*": tc.MulOp,
    "/": tc.DivOp,
    "//": tc.FloorDivOp,
    "%": tc.ModOp,
    "**": tc.PowOp,
}
COMPARISON: dict[str, type[Operation]] = {
    "<": tc.LtOp,
    "<=": tc.LeOp,
    ">": tc.GtOp,
    ">=": tc.GeOp,
    "==": tc.EqOp,
    "!=": tc.NeOp,
}
LOGICAL: dict[str, type[Operation]] = {"and": tc.AndOp, "or": tc.OrOp}
ORDERING = frozenset({"<", "<=", ">", ">="})

_PY_COMPARE: dict[str, Callable] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


def operand_text(term: Term) -> str:
    """How an operand is named in messages: its type, or the kind of literal."""
    if isinstance(term, Tensor):
        return str(term.type)
    if isinstance(term, IntConst):
        return "an integer"
    if isinstance(term, FloatConst):
        return "a float"
    if isinstance(term, BoolConst):
        return "a bool"
    return term.describe()


# ----- compile-time folding of weak scalars ---------------------------------------------------


def _static_number(term: Term) -> int | float | None:
    if isinstance(term, FloatConst):
        return term.value
    if isinstance(term, IntConst):
        return term.static
    return None


def fold_arithmetic(symbol: str, lhs: Term, rhs: Term) -> Term | None:
    """`lhs op rhs` on weak scalars when it can be computed now, else None."""
    if isinstance(lhs, IntConst) and isinstance(rhs, IntConst):
        return _fold_ints(symbol, lhs, rhs)
    a, b = _static_number(lhs), _static_number(rhs)
    if a is None or b is None or isinstance(lhs, BoolConst) or isinstance(rhs, BoolConst):
        return None
    try:
        if symbol == "+":
            result = float(a) + b
        elif symbol == "-":
            result = float(a) - b
        elif symbol == "*":
            result = float(a) * b
        elif symbol == "/":
            result = float(a) / b
        elif symbol == "//":
            result = float(a) // b
        elif symbol == "%":
            result = float(a) % b
        else:
            result = float(a) ** b
    except (ZeroDivisionError, OverflowError, ValueError):
        return None
    if isinstance(result, complex) or not math.isfinite(result):
        return None
    return FloatConst(float(result))


def _fold_ints(symbol: str, lhs: IntConst, rhs: IntConst) -> Term | None:
    if symbol == "+":
        return IntConst(lhs.expr + rhs.expr)
    if symbol == "-":
        return IntConst(lhs.expr - rhs.expr)
    if symbol == "*":
        return IntConst(lhs.expr * rhs.expr)
    a, b = lhs.static, rhs.static
    if symbol == "**" and a is not None and b is not None and 0 <= b <= 128:
        # exact, like `+ - *` on literals: the dtype it meets later checks that it fits
        # (`2 ** 31` is an error as an i32, 2147483648.0 beside an f32); huge powers stay ops
        if abs(a).bit_length() * b <= 128:
            return IntConst(DimExpr.const(a**b))
    if b is None or b == 0:
        return None
    if a is None:
        return IntConst(lhs.expr // rhs.expr) if symbol == "//" and b > 0 else None
    if symbol == "//":
        return IntConst(DimExpr.const(a // b))
    if symbol == "%":
        return IntConst(DimExpr.const(a % b))
    if symbol == "/":
        return FloatConst(a / b)
    return None


def negate(term: Term, emitter: Emitter, loc: Location | None) -> Term:
    """Unary minus."""
    if isinstance(term, IntConst):
        return IntConst(-term.expr)
    if isinstance(term, FloatConst):
        return FloatConst(-term.value)
    value = emitter.materialize(term, loc)
    if value.type.dtype.is_bool:
        raise SemaError(f"unary '-' needs a numeric operand, found {value.type}", loc)
    return Tensor(emitter.op(tc.NegOp, [value], loc))


def unary_plus(term: Term, emitter: Emitter, loc: Location | None) -> Term:
    if isinstance(term, BoolConst) or (isinstance(term, Tensor) and term.type.dtype.is_bool):
        raise SemaError(f"unary '+' needs a numeric operand, found {operand_text(term)}", loc)
    return term


def logical_not(term: Term, emitter: Emitter, loc: Location | None) -> Term:
    if isinstance(term, BoolConst):
        return BoolConst(not term.value)
    if not isinstance(term, Tensor) or not term.type.dtype.is_bool:
        raise SemaError(f"'not' needs a bool operand, found {operand_text(term)}", loc)
    return Tensor(emitter.op(tc.NotOp, [term.value], loc))


# ----- binary operators ---------------------------------------------------------------------


def arithmetic(
    emitter: Emitter,
    symbol: str,
    lhs: Term,
    rhs: Term,
    loc: Location | None,
    what: str | None = None,
    op_class: type[Operation] | None = None,
    locs: tuple[Location | None, Location | None] | None = None,
) -> Term:
    """`lhs op rhs` for `+ - * / // % **` (and `maximum`, `minimum`, `pow` via `op_class`).
    `locs` are the operands' locations, given to the constants and casts made of them."""
    what = what or f"operator '{symbol}'"
    op_class = op_class or ARITHMETIC[symbol]
    if is_weak(lhs) and is_weak(rhs) and op_class in ARITHMETIC.values():
        folded = fold_arithmetic(symbol, lhs, rhs)
        if folded is not None:
            return folded
    dtype = result_dtype([lhs, rhs])
    if dtype.is_bool:
        raise SemaError(
            f"{what} needs numeric operands, found {operand_text(lhs)} and {operand_text(rhs)}",
            loc,
        )
    if op_class is tc.DivOp:
        dtype = float_dtype(dtype)
    a, b = emitter.coerce([lhs, rhs], loc, what, dtype, locs)
    return Tensor(emitter.op(op_class, [a, b], loc))


def compare(
    emitter: Emitter,
    symbol: str,
    lhs: Term,
    rhs: Term,
    loc: Location | None,
    locs: tuple[Location | None, Location | None] | None = None,
) -> Term:
    a, b = _static_number(lhs), _static_number(rhs)
    if a is not None and b is not None:
        return BoolConst(bool(_PY_COMPARE[symbol](a, b)))
    dtype = result_dtype([lhs, rhs])
    if symbol in ORDERING and dtype.is_bool:
        dtype = DType.I32  # false < true, as in NumPy
    what = f"operator '{symbol}'"
    x, y = emitter.coerce([lhs, rhs], loc, what, dtype, locs)
    return Tensor(emitter.op(COMPARISON[symbol], [x, y], loc))


def logical(
    emitter: Emitter,
    symbol: str,
    lhs: Term,
    rhs: Term,
    loc: Location | None,
    lhs_loc: Location | None,
    rhs_loc: Location | None,
) -> Term:
    for term, term_loc in ((lhs, lhs_loc), (rhs, rhs_loc)):
        if not _is_bool(term):
            raise SemaError(
                f"operator '{symbol}' needs bool operands, found {operand_text(term)}", term_loc
            )
    if isinstance(lhs, BoolConst) and isinstance(rhs, BoolConst):
        value = lhs.value and rhs.value if symbol == "and" else lhs.value or rhs.value
        return BoolConst(value)
    x, y = emitter.coerce([lhs, rhs], loc, f"operator '{symbol}'", DType.BOOL,
                          (lhs_loc, rhs_loc))
    return Tensor(emitter.op(LOGICAL[symbol], [x, y], loc))


def _is_bool(term: Term) -> bool:
    return isinstance(term, BoolConst) or (isinstance(term, Tensor) and term.type.dtype.is_bool)


# ----- matmul -------------------------------------------------------------------------------


def matmul(emitter: Emitter, a: Value, b: Value, loc: Location | None, what: str) -> Value:
    """NumPy's matmul: 1-D operands gain an axis that is dropped again, batch dimensions
    broadcast, and the contracting dimensions must agree."""
    if a.type.rank == 0 or b.type.rank == 0:
        raise SemaError(
            f"{what} needs operands of rank >= 1, found {describe(a.type)} and "
            f"{describe(b.type)}",
            loc,
        )
    dtype = promote(a.type.dtype, b.type.dtype)
    if dtype.is_bool:
        raise SemaError(f"{what} needs numeric operands, found {a.type} and {b.type}", loc)
    lhs = emitter.cast(a, dtype, loc)
    rhs = emitter.cast(b, dtype, loc)
    if a.type.rank == 1:
        lhs = emitter.reshape(lhs, (DimExpr.const(1), a.type.shape[0]), loc)
    if b.type.rank == 1:
        rhs = emitter.reshape(rhs, (b.type.shape[0], DimExpr.const(1)), loc)
    k_lhs, k_rhs = lhs.type.shape[-1], rhs.type.shape[-2]
    contracting = f"{what} contracting dimensions"
    if not emitter.require_equal(k_lhs, k_rhs, loc, contracting, a.type.shape, b.type.shape):
        raise SemaError(
            f"{what}: contracting dimension {k_lhs} of {format_shape(a.type.shape)} does not "
            f"match {k_rhs} of {format_shape(b.type.shape)}",
            loc,
        )
    batch = emitter.broadcast_shape(
        [lhs.type.shape[:-2], rhs.type.shape[:-2]], loc, f"{what} batch dimensions"
    )
    lhs = emitter.broadcast_to(lhs, batch + lhs.type.shape[-2:], loc)
    rhs = emitter.broadcast_to(rhs, batch + rhs.type.shape[-2:], loc)
    product = emitter.op(tc_reduce.MatmulOp, [lhs, rhs], loc)
    shape = list(product.type.shape)
    if b.type.rank == 1:
        shape.pop(-1)
    if a.type.rank == 1:
        shape.pop(-1 if b.type.rank == 1 else -2)
    return emitter.reshape(product, shape, loc)
