"""The `tc` dialect, reductions, linear algebra and neural-network ops.

`softmax`, `log_softmax`, `logsumexp`, `layer_norm` and `cross_entropy` are ops at this level
so that `stabilize` can recognise them and autodiff can use their compact VJPs; the
`decompose` pass expands them into primitives before fusion.
"""

from __future__ import annotations

from collections.abc import Sequence

from tensorc.ir.core import Operation, Pure, VerifyError, attr_def, operand_def, register_op
from tensorc.ir.dims import DimExpr, element_count
from tensorc.ir.dtypes import DType
from tensorc.ir.typecheck import dims_compatible, format_shape, reduce_shape
from tensorc.ir.types import TensorType

PURE = frozenset({Pure})


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise VerifyError(message)


def _check_axes(name: str, axes: list, rank: int) -> None:
    _require(
        all(isinstance(a, int) for a in axes) and axes == sorted(set(axes)),
        f"{name} axes must be sorted distinct ints, got {axes}",
    )
    _require(all(0 <= a < rank for a in axes), f"{name} axes {axes} out of range for rank {rank}")


class ReduceOp(Operation):
    """A reduction of `x` over `axes` (sorted, non-negative), keeping them as size 1 when
    `keepdims`."""

    num_operands = 1
    traits = PURE
    x = operand_def(0)
    axes = attr_def(list, items=int)
    keepdims = attr_def(bool, default=False)

    @classmethod
    def result_dtype(cls, dtype: DType) -> DType:
        return dtype

    @classmethod
    def infer_result_types(cls, operand_types: Sequence[TensorType], attributes: dict) -> list:
        (x,) = operand_types
        axes = attributes["axes"]
        _check_axes(cls.name, axes, x.rank)
        shape = reduce_shape(x.shape, axes, attributes.get("keepdims", False))
        return [TensorType(cls.result_dtype(x.dtype), shape)]


def _bool_to_i32(dtype: DType) -> DType:
    return DType.I32 if dtype.is_bool else dtype


@register_op
class SumOp(ReduceOp):
    name = "tc.sum"
    result_dtype = staticmethod(_bool_to_i32)  # type: ignore[assignment]


@register_op
class ProdOp(ReduceOp):
    name = "tc.prod"
    result_dtype = staticmethod(_bool_to_i32)  # type: ignore[assignment]


@register_op
class MaxOp(ReduceOp):
    name = "tc.max"


@register_op
class MinOp(ReduceOp):
    name = "tc.min"


@register_op
class MeanOp(ReduceOp):
    """Mean; integers and bools give f32."""

    name = "tc.mean"

    @classmethod
    def result_dtype(cls, dtype: DType) -> DType:
        return dtype if dtype.is_float else DType.F32


class ArgReduceOp(Operation):
    """Index (i32) of the first extreme along `axis`, or in the flattened tensor if None."""

    num_operands = 1
    traits = PURE
    x = operand_def(0)
    axis = attr_def((int, type(None)), default=None)
    keepdims = attr_def(bool, default=False)

    @classmethod
    def infer_result_types(cls, operand_types: Sequence[TensorType], attributes: dict) -> list:
        (x,) = operand_types
        axis = attributes.get("axis")
        keepdims = attributes.get("keepdims", False)
        axes = list(range(x.rank)) if axis is None else [axis]
        _check_axes(cls.name, axes, x.rank)
        return [TensorType(DType.I32, reduce_shape(x.shape, axes, keepdims))]


@register_op
class ArgMaxOp(ArgReduceOp):
    name = "tc.argmax"


@register_op
class ArgMinOp(ArgReduceOp):
    name = "tc.argmin"


@register_op
class MatmulOp(Operation):
    """`lhs[..., m, k] @ rhs[..., k, n]` with identical batch dims (the frontend reshapes 1-D
    operands and broadcasts batch dimensions beforehand)."""

    name = "tc.matmul"
    num_operands = 2
    traits = PURE
    lhs = operand_def(0)
    rhs = operand_def(1)

    @classmethod
    def infer_result_types(cls, operand_types: Sequence[TensorType], attributes: dict) -> list:
        lhs, rhs = operand_types
        _require(lhs.dtype == rhs.dtype, f"tc.matmul dtypes differ: {lhs.dtype}, {rhs.dtype}")
        _require(lhs.rank >= 2 and lhs.rank == rhs.rank, "tc.matmul needs equal ranks >= 2")
        _require(
            all(dims_compatible(a, b) for a, b in zip(lhs.shape[:-2], rhs.shape[:-2])),
            "tc.matmul batch dimensions differ",
        )
        _require(
            dims_compatible(lhs.shape[-1], rhs.shape[-2]),
            f"tc.matmul contracting dimensions differ: {format_shape(lhs.shape)} @ "
            f"{format_shape(rhs.shape)}",
        )
        return [lhs.with_shape(lhs.shape[:-1] + rhs.shape[-1:])]


class AxisOp(Operation):
    """A float op normalising along one axis, with the operand's type."""

    num_operands = 1
    traits = PURE
    x = operand_def(0)
    axis = attr_def(int)

    @classmethod
    def infer_result_types(cls, operand_types: Sequence[TensorType], attributes: dict) -> list:
        (x,) = operand_types
        _require(x.dtype.is_float, f"{cls.name} needs a float operand, not {x.dtype}")
        _require(0 <= attributes["axis"] < x.rank, f"{cls.name} axis is out of range for {x}")
        return [x]


@register_op
class SoftmaxOp(AxisOp):
    name = "tc.softmax"


@register_op
class LogSoftmaxOp(AxisOp):
    name = "tc.log_softmax"


@register_op
class LogSumExpOp(ReduceOp):
    """`log(sum(exp(x), axes))`, computed stably."""

    name = "tc.logsumexp"

    @classmethod
    def infer_result_types(cls, operand_types: Sequence[TensorType], attributes: dict) -> list:
        _require(operand_types[0].dtype.is_float, "tc.logsumexp needs a float operand")
        return super().infer_result_types(operand_types, attributes)


@register_op
class LayerNormOp(Operation):
    """Normalise over the last axis (biased variance), then scale by gamma and add beta."""

    name = "tc.layer_norm"
    num_operands = 3
    traits = PURE
    x = operand_def(0)
    gamma = operand_def(1)
    beta = operand_def(2)
    eps = attr_def(float, default=1e-5)

    @classmethod
    def infer_result_types(cls, operand_types: Sequence[TensorType], attributes: dict) -> list:
        x, gamma, beta = operand_types
        _require(x.dtype.is_float and x.rank >= 1, "tc.layer_norm needs a float tensor")
        for param in (gamma, beta):
            _require(param.dtype == x.dtype, "tc.layer_norm gamma/beta dtype differs from x")
            _require(
                param.rank == 1 and dims_compatible(param.shape[0], x.shape[-1]),
                f"tc.layer_norm gamma/beta must have shape [{x.shape[-1]}], not "
                f"{format_shape(param.shape)}",
            )
        return [x]


@register_op
class CrossEntropyOp(Operation):
    """Per-example `logsumexp(logits[i]) - logits[i, labels[i]]` for logits [N, C]."""

    name = "tc.cross_entropy"
    num_operands = 2
    traits = PURE
    logits = operand_def(0)
    labels = operand_def(1)

    @classmethod
    def infer_result_types(cls, operand_types: Sequence[TensorType], attributes: dict) -> list:
        logits, labels = operand_types
        _require(logits.dtype.is_float and logits.rank == 2, "tc.cross_entropy logits: [N, C]")
        _require(labels.dtype.is_int and labels.rank == 1, "tc.cross_entropy labels: int [N]")
        _require(dims_compatible(logits.shape[0], labels.shape[0]), "batch sizes differ")
        return [TensorType(logits.dtype, (logits.shape[0],))]


def count_of(shape: Sequence[DimExpr], axes: Sequence[int]) -> DimExpr:
    """Number of elements reduced over `axes` (for means)."""
    return element_count(shape[axis] for axis in axes)
