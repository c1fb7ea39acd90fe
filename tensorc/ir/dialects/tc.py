"""The `tc` dialect, elementwise part: value-semantic tensor ops at the level of the language.

Elementwise ops take operands of one shape and one dtype: the frontend makes broadcasts and
dtype promotions explicit (`tc.broadcast_to`, `tc.cast`), so that every later pass (fusion,
autodiff, codegen) sees plain same-shape elementwise maps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tensorc.ir.core import (
    Commutative,
    Elementwise,
    NoCSE,
    Operation,
    Pure,
    VerifyError,
    attr_def,
    operand_def,
    register_op,
)
from tensorc.ir.dims import DimExpr, size_problem
from tensorc.ir.dtypes import DType
from tensorc.ir.typecheck import format_shape, shapes_compatible
from tensorc.ir.types import TensorType

PURE_ELEMENTWISE = frozenset({Pure, Elementwise})


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise VerifyError(message)


# ----- unary --------------------------------------------------------------------------------


class UnaryOp(Operation):
    """An elementwise op of one operand whose result has the operand's type."""

    num_operands = 1
    traits = PURE_ELEMENTWISE
    x = operand_def(0)
    accepts: frozenset[str] = frozenset({"float", "int"})

    @classmethod
    def infer_result_types(cls, operand_types: Sequence[TensorType], attributes: dict) -> list:
        (x,) = operand_types
        _require(_kind(x.dtype) in cls.accepts, f"{cls.name} does not accept {x.dtype} operands")
        return [x]


def _kind(dtype: DType) -> str:
    return "float" if dtype.is_float else "int" if dtype.is_int else "bool"


def _unary(op_name: str, accepts: frozenset[str], doc: str) -> type[UnaryOp]:
    class_name = "".join(p.capitalize() for p in op_name.split(".")[1].split("_")) + "Op"
    cls = type(class_name, (UnaryOp,), {"name": op_name, "accepts": accepts, "__doc__": doc})
    return register_op(cls)  # type: ignore[return-value]


FLOAT = frozenset({"float"})
NUMERIC = frozenset({"float", "int"})

NegOp = _unary("tc.neg", NUMERIC, "-x")
AbsOp = _unary("tc.abs", NUMERIC, "|x|")
SignOp = _unary("tc.sign", NUMERIC, "-1, 0 or 1 (NaN stays NaN)")
SquareOp = _unary("tc.square", NUMERIC, "x*x")
ReluOp = _unary("tc.relu", NUMERIC, "max(x, 0), NaN propagating")
FloorOp = _unary("tc.floor", NUMERIC, "round toward -inf (identity on integers)")
CeilOp = _unary("tc.ceil", NUMERIC, "round toward +inf (identity on integers)")
ExpOp = _unary("tc.exp", FLOAT, "e**x")
LogOp = _unary("tc.log", FLOAT, "natural logarithm")
Log1pOp = _unary("tc.log1p", FLOAT, "log(1 + x), accurate near 0")
Expm1Op = _unary("tc.expm1", FLOAT, "exp(x) - 1, accurate near 0")
SqrtOp = _unary("tc.sqrt", FLOAT, "square root")
RsqrtOp = _unary("tc.rsqrt", FLOAT, "1 / sqrt(x)")
SinOp = _unary("tc.sin", FLOAT, "sine")
CosOp = _unary("tc.cos", FLOAT, "cosine")
TanhOp = _unary("tc.tanh", FLOAT, "hyperbolic tangent")
SigmoidOp = _unary("tc.sigmoid", FLOAT, "1 / (1 + exp(-x)), computed stably")
ErfOp = _unary("tc.erf", FLOAT, "the error function")
SoftplusOp = _unary("tc.softplus", FLOAT, "log(1 + exp(x)), computed stably")
NotOp = _unary("tc.not", frozenset({"bool"}), "logical not")


@register_op
class GeluOp(UnaryOp):
    """`0.5*x*(1+erf(x/sqrt(2)))`, or the tanh form when `approximate`."""

    name = "tc.gelu"
    accepts = FLOAT
    approximate = attr_def(bool, default=False)


@register_op
class StopGradientOp(UnaryOp):
    """The identity, through which `grad` passes no gradient. Removed after autodiff."""

    name = "tc.stop_gradient"
    accepts = frozenset({"float", "int", "bool"})


@register_op
class CastOp(Operation):
    """Convert to the result's dtype: floats to integers truncate toward zero, saturate, and
    map NaN to 0; anything to bool is `x != 0`."""

    name = "tc.cast"
    num_operands = 1
    traits = PURE_ELEMENTWISE
    x = operand_def(0)

    def verify_(self) -> None:
        source, target = self.x.type, self.result.type
        if not shapes_compatible(source.shape, target.shape):
            raise VerifyError(
                f"tc.cast changes the shape {format_shape(source.shape)} to "
                f"{format_shape(target.shape)}",
                self,
            )


# ----- binary -------------------------------------------------------------------------------


class BinaryOp(Operation):
    """An elementwise op of two operands of one type."""

    num_operands = 2
    traits = PURE_ELEMENTWISE
    lhs = operand_def(0)
    rhs = operand_def(1)
    accepts: frozenset[str] = NUMERIC
    result_dtype: DType | None = None  # None: the operands' dtype

    @classmethod
    def infer_result_types(cls, operand_types: Sequence[TensorType], attributes: dict) -> list:
        lhs, rhs = operand_types
        _require(
            lhs.dtype == rhs.dtype,
            f"{cls.name} operands have different dtypes {lhs.dtype} and {rhs.dtype}",
        )
        _require(
            shapes_compatible(lhs.shape, rhs.shape),
            f"{cls.name} operands have different shapes {format_shape(lhs.shape)} and "
            f"{format_shape(rhs.shape)}",
        )
        _require(_kind(lhs.dtype) in cls.accepts, f"{cls.name} does not accept {lhs.dtype}")
        return [TensorType(cls.result_dtype or lhs.dtype, lhs.shape)]


def _binary(
    op_name: str,
    accepts: frozenset[str],
    doc: str,
    commutative: bool = False,
    result_dtype: DType | None = None,
) -> type[BinaryOp]:
    class_name = "".join(p.capitalize() for p in op_name.split(".")[1].split("_")) + "Op"
    traits = PURE_ELEMENTWISE | ({Commutative} if commutative else set())
    namespace: dict[str, Any] = {
        "name": op_name,
        "accepts": accepts,
        "traits": frozenset(traits),
        "result_dtype": result_dtype,
        "__doc__": doc,
    }
    return register_op(type(class_name, (BinaryOp,), namespace))  # type: ignore[return-value]


ALL = frozenset({"float", "int", "bool"})
BOOL = frozenset({"bool"})

AddOp = _binary("tc.add", NUMERIC, "lhs + rhs", commutative=True)
SubOp = _binary("tc.sub", NUMERIC, "lhs - rhs")
MulOp = _binary("tc.mul", NUMERIC, "lhs * rhs", commutative=True)
DivOp = _binary("tc.div", FLOAT, "true division (integers are cast to float beforehand)")
FloorDivOp = _binary("tc.floordiv", NUMERIC, "floor division; integer division by 0 gives 0")
ModOp = _binary("tc.mod", NUMERIC, "remainder with the sign of the divisor; x % 0 is 0")
PowOp = _binary("tc.pow", NUMERIC, "lhs ** rhs")
MaximumOp = _binary("tc.maximum", NUMERIC, "elementwise max, NaN propagating", True)
MinimumOp = _binary("tc.minimum", NUMERIC, "elementwise min, NaN propagating", True)
LtOp = _binary("tc.lt", NUMERIC, "lhs < rhs", result_dtype=DType.BOOL)
LeOp = _binary("tc.le", NUMERIC, "lhs <= rhs", result_dtype=DType.BOOL)
GtOp = _binary("tc.gt", NUMERIC, "lhs > rhs", result_dtype=DType.BOOL)
GeOp = _binary("tc.ge", NUMERIC, "lhs >= rhs", result_dtype=DType.BOOL)
EqOp = _binary("tc.eq", ALL, "lhs == rhs", True, result_dtype=DType.BOOL)
NeOp = _binary("tc.ne", ALL, "lhs != rhs", True, result_dtype=DType.BOOL)
AndOp = _binary("tc.and", BOOL, "logical and", commutative=True)
OrOp = _binary("tc.or", BOOL, "logical or", commutative=True)


@register_op
class SelectOp(Operation):
    """`where(cond, on_true, on_false)` elementwise, with all three of one shape."""

    name = "tc.select"
    num_operands = 3
    traits = PURE_ELEMENTWISE
    cond = operand_def(0)
    on_true = operand_def(1)
    on_false = operand_def(2)

    @classmethod
    def infer_result_types(cls, operand_types: Sequence[TensorType], attributes: dict) -> list:
        cond, on_true, on_false = operand_types
        _require(cond.dtype == DType.BOOL, f"tc.select condition must be bool, not {cond.dtype}")
        _require(on_true.dtype == on_false.dtype, "tc.select branches have different dtypes")
        _require(
            shapes_compatible(cond.shape, on_true.shape)
            and shapes_compatible(on_true.shape, on_false.shape),
            "tc.select operands have different shapes",
        )
        return [on_true]


# ----- constants ----------------------------------------------------------------------------


@register_op
class ConstantOp(Operation):
    """A constant tensor of static shape; `value` is a NumPy array of the result's dtype."""

    name = "tc.constant"
    num_operands = 0
    traits = frozenset({Pure})
    value = attr_def(np.ndarray)

    @staticmethod
    def scalar(value: float | int | bool, dtype: DType) -> ConstantOp:
        array = np.array(value, dtype=dtype.numpy)
        return ConstantOp((), [TensorType(dtype)], {"value": array})

    @staticmethod
    def of_array(array: np.ndarray) -> ConstantOp:
        dtype = DType.from_numpy(array.dtype)
        return ConstantOp((), [TensorType.of(dtype, array.shape)], {"value": array})

    def verify_(self) -> None:
        result = self.result.type
        if result.static_shape != tuple(self.value.shape):
            raise VerifyError(
                f"tc.constant value of shape {list(self.value.shape)} does not match "
                f"{result}",
                self,
            )
        if result.dtype != DType.BF16 and self.value.dtype != result.dtype.numpy:
            raise VerifyError(f"tc.constant value dtype {self.value.dtype} is not {result}", self)

    def splat_value(self) -> float | int | bool | None:
        """The single value of a constant whose elements are all equal, else None."""
        flat = self.value.reshape(-1)
        if flat.size == 0 or not np.all(flat == flat[0]):
            return None
        return flat[0].item()


@register_op
class IotaOp(Operation):
    """`arange(n)`: the integers 0..n-1 as a 1-D tensor of the result's (integer) dtype."""

    name = "tc.iota"
    num_operands = 0
    traits = frozenset({Pure})

    def verify_(self) -> None:
        result = self.result.type
        if result.rank != 1 or result.dtype.is_bool:
            raise VerifyError("tc.iota must give a 1-D numeric tensor", self)


@register_op
class DimSizeOp(Operation):
    """The value of a symbolic size expression as an i32 scalar (`x.shape[k]`)."""

    name = "tc.dim_size"
    num_operands = 0
    traits = frozenset({Pure})
    value = attr_def((DimExpr, int))

    @classmethod
    def infer_result_types(cls, operand_types: Sequence[TensorType], attributes: dict) -> list:
        value = DimExpr.of(attributes["value"])
        problem = size_problem(value)
        _require(problem is None, f"tc.dim_size value {value} {problem}")
        return [TensorType(DType.I32)]


# ----- autodiff -----------------------------------------------------------------------------


@register_op
class GradOp(Operation):
    """`grad(y, [w1, w2])`: the gradient of the float scalar `y` with respect to each `w`.

    Operands are `y` then the `wrt` values; results have the types of the `wrt` values. The
    autodiff pass replaces this op by the reverse-mode computation.
    """

    name = "tc.grad"
    num_operands = None
    num_results = None
    traits = frozenset({Pure, NoCSE})

    @property
    def y(self):
        return self.operands[0]

    @property
    def wrt(self) -> tuple:
        return self.operands[1:]

    @classmethod
    def infer_result_types(cls, operand_types: Sequence[TensorType], attributes: dict) -> list:
        _require(len(operand_types) >= 2, "tc.grad needs y and at least one wrt value")
        y = operand_types[0]
        _require(y.is_scalar and y.dtype.is_float, f"tc.grad of {y}: y must be a float scalar")
        return list(operand_types[1:])
