"""Tensor and function types: `f32[N, 784]`, `i32` (a scalar), `(f32[N], f32) -> f32[N]`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from tensorc.ir.dims import DimExpr, DimLike
from tensorc.ir.dtypes import DType


@dataclass(frozen=True, slots=True)
class TensorType:
    """A tensor of `dtype` with a shape of symbolic dimensions; rank 0 is a scalar."""

    dtype: DType
    shape: tuple[DimExpr, ...] = ()

    @staticmethod
    def of(dtype: DType, shape: Iterable[DimLike] = ()) -> TensorType:
        return TensorType(dtype, tuple(DimExpr.of(d) for d in shape))

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def is_scalar(self) -> bool:
        return not self.shape

    @property
    def static_shape(self) -> tuple[int, ...] | None:
        values = tuple(d.value for d in self.shape)
        return None if any(v is None for v in values) else values  # type: ignore[return-value]

    @property
    def symbols(self) -> frozenset[str]:
        names: frozenset[str] = frozenset()
        for dim in self.shape:
            names |= dim.symbols
        return names

    def with_dtype(self, dtype: DType) -> TensorType:
        return TensorType(dtype, self.shape)

    def with_shape(self, shape: Iterable[DimLike]) -> TensorType:
        return TensorType.of(self.dtype, shape)

    def concrete_shape(self, env: Mapping[str, int]) -> tuple[int, ...]:
        return tuple(d.extent(env) for d in self.shape)

    def __str__(self) -> str:
        if not self.shape:
            return str(self.dtype)
        return f"{self.dtype}[{', '.join(str(d) for d in self.shape)}]"


@dataclass(frozen=True, slots=True)
class FunctionType:
    inputs: tuple[TensorType, ...]
    results: tuple[TensorType, ...]

    @staticmethod
    def of(inputs: Sequence[TensorType], results: Sequence[TensorType]) -> FunctionType:
        return FunctionType(tuple(inputs), tuple(results))

    def __str__(self) -> str:
        return f"({', '.join(map(str, self.inputs))}) -> {format_results(self.results)}"


def format_results(results: Sequence[TensorType]) -> str:
    if len(results) == 1:
        return str(results[0])
    return f"({', '.join(map(str, results))})"
