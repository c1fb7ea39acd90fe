"""Emitting `tc` ops for the function being lowered, with the implicit steps made explicit.

`tc` ops take operands of one dtype and one shape, so the frontend inserts the `tc.cast`s of
dtype promotion and the `tc.broadcast_to`s of NumPy broadcasting here. Symbolic sizes that
must agree but cannot be proven equal become call-time `ShapeConstraint`s of the function.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tensorc.frontend.promote import default_dtype, result_dtype
from tensorc.frontend.values import (
    BoolConst,
    FloatConst,
    IntConst,
    SemaError,
    Tensor,
    Term,
)
from tensorc.ir.attributes import ShapeConstraint
from tensorc.ir.builder import Builder
from tensorc.ir.core import Operation, Value, VerifyError
from tensorc.ir.dialects import tc
from tensorc.ir.dialects import tc_shape as shape_ops
from tensorc.ir.dialects.func import FuncOp
from tensorc.ir.dims import DimExpr, as_size
from tensorc.ir.dtypes import DType
from tensorc.ir.location import Location
from tensorc.ir.typecheck import ShapeError, broadcast_shapes, dims_compatible, format_shape
from tensorc.ir.types import TensorType

Shape = tuple[DimExpr, ...]


class Emitter:
    """Creates ops at the end of one function's body; every op gets the location it is given."""

    def __init__(self, function: FuncOp) -> None:
        self.function = function
        self.builder = Builder.at_end(function.body)

    # ----- raw ops -----------------------------------------------------------------------
    def create(
        self,
        op_class: type[Operation],
        operands: Sequence[Value],
        loc: Location | None,
        result_types: Sequence[TensorType] | None = None,
        **attributes: Any,
    ) -> Operation:
        """Build and insert an op. A type rule of the op that fails (which the frontend should
        have caught with a better message) is still reported at `loc`, never raised raw."""
        try:
            op = op_class.build(list(operands), attributes, loc=loc, result_types=result_types)
        except VerifyError as error:
            raise SemaError(str(error), loc) from None
        self.builder.insert(op)
        return op

    def op(
        self,
        op_class: type[Operation],
        operands: Sequence[Value],
        loc: Location | None,
        result_type: TensorType | None = None,
        **attributes: Any,
    ) -> Value:
        types = None if result_type is None else [result_type]
        return self.create(op_class, operands, loc, types, **attributes).result

    # ----- constants and weak scalars -------------------------------------------------------
    def constant(self, value: float | int | bool, dtype: DType, loc: Location | None) -> Value:
        """A scalar `tc.constant` of `dtype`."""
        if dtype is DType.BF16:
            raise SemaError("bf16 constants are not supported yet", loc)
        if dtype.is_int and isinstance(value, int) and not isinstance(value, bool):
            info = np.iinfo(dtype.numpy)
            if not info.min <= int(value) <= info.max:
                raise SemaError(f"integer {int(value)} does not fit in {dtype}", loc)
        with np.errstate(all="ignore"):
            array = np.asarray(value).astype(dtype.numpy)
        return self.op(tc.ConstantOp, [], loc, TensorType(dtype), value=np.array(array))

    def materialize(self, term: Term, loc: Location | None, dtype: DType | None = None) -> Value:
        """The SSA value of a tensor or weak scalar, converted to `dtype` when given."""
        if isinstance(term, Tensor):
            return term.value if dtype is None else self.cast(term.value, dtype, loc)
        if isinstance(term, IntConst):
            target = dtype or DType.I32
            static = term.static
            if static is not None:
                return self.constant(static, target, loc)
            size = self.op(tc.DimSizeOp, [], loc, value=term.expr)
            return self.cast(size, target, loc)
        if isinstance(term, (FloatConst, BoolConst)):
            return self.constant(term.value, dtype or default_dtype(term), loc)
        raise SemaError(f"expected a tensor, found {term.describe()}", loc)

    # ----- conversions -------------------------------------------------------------------
    def cast(self, value: Value, dtype: DType, loc: Location | None) -> Value:
        if value.type.dtype == dtype:
            return value
        return self.op(tc.CastOp, [value], loc, value.type.with_dtype(dtype))

    def broadcast_to(self, value: Value, shape: Sequence[DimExpr], loc: Location | None) -> Value:
        if tuple(value.type.shape) == tuple(shape):
            return value
        return self.op(shape_ops.BroadcastToOp, [value], loc, value.type.with_shape(shape))

    def reshape(self, value: Value, shape: Sequence[DimExpr], loc: Location | None) -> Value:
        if tuple(value.type.shape) == tuple(shape):
            return value
        return self.op(shape_ops.ReshapeOp, [value], loc, value.type.with_shape(shape))

    # ----- call-time checks -------------------------------------------------------------------
    def defer(self, kind: str, lhs: DimExpr, rhs: DimExpr, error: str, message: str,
              loc: Location | None) -> None:
        """Record a check of symbolic sizes made when the function is called."""
        where = f"{loc}: " if loc is not None else ""
        self.function.add_constraint(ShapeConstraint(kind, lhs, rhs, error, where + message))

    def require_equal(
        self,
        a: DimExpr,
        b: DimExpr,
        loc: Location | None,
        what: str,
        shape_a: Sequence[DimExpr],
        shape_b: Sequence[DimExpr],
    ) -> bool:
        """True when `a == b` is proven or deferred to call time; False when it cannot hold."""
        if a == b:
            return True
        if not dims_compatible(a, b):
            return False
        message = (
            f"{what}: dimension {a} of {format_shape(shape_a)} and {b} of "
            f"{format_shape(shape_b)} must be equal"
        )
        self.defer("eq", as_size(a), as_size(b), "ValueError", message, loc)
        return True

    # ----- broadcasting ------------------------------------------------------------------
    def broadcast_shape(self, shapes: Sequence[Shape], loc: Location | None, what: str) -> Shape:
        """NumPy's broadcast of several shapes; symbolic pairs become call-time checks."""
        result: Shape = tuple(shapes[0]) if shapes else ()
        for shape in shapes[1:]:
            try:
                combined, deferred = broadcast_shapes(result, shape)
            except ShapeError:
                raise SemaError(
                    f"{what} needs broadcast-compatible shapes, found {format_shape(result)} "
                    f"and {format_shape(shape)}",
                    loc,
                ) from None
            for a, b in deferred:
                self.require_equal(a, b, loc, what, result, shape)
            result = _prefer_static(combined, result, shape)
        return result

    def coerce(
        self,
        terms: Sequence[Term],
        loc: Location | None,
        what: str,
        dtype: DType | None = None,
        locs: Sequence[Location | None] | None = None,
    ) -> list[Value]:
        """Tensors and weak scalars as values of one dtype (`dtype`, else their promoted dtype)
        and one broadcast shape."""
        target = dtype or result_dtype(terms)
        operand_locs = list(locs) if locs is not None else [loc] * len(terms)
        values = [
            self.materialize(term, operand_loc, target)
            for term, operand_loc in zip(terms, operand_locs)
        ]
        shape = self.broadcast_shape([v.type.shape for v in values], loc, what)
        return [self.broadcast_to(v, shape, loc) for v in values]


def _prefer_static(combined: Shape, a: Shape, b: Shape) -> Shape:
    """Where broadcasting met a symbolic and a static size that must be equal (and will be
    checked at call time), keep the static one: `[N] + [4]` is `[4]`, not `[N]`."""
    rank = len(combined)
    padded_a = (DimExpr.const(1),) * (rank - len(a)) + tuple(a)
    padded_b = (DimExpr.const(1),) * (rank - len(b)) + tuple(b)
    return tuple(
        y if not x.is_const and y.is_const and y != 1 else
        x if not y.is_const and x.is_const and x != 1 else dim
        for dim, x, y in zip(combined, padded_a, padded_b)
    )
