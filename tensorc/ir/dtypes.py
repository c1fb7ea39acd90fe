"""Element types of tensors, their promotion lattice and NumPy equivalents."""

from __future__ import annotations

import enum

import numpy as np


class DType(enum.Enum):
    """A tensor element type. The value is the spelling used in programs and in IR text."""

    BOOL = "bool"
    I32 = "i32"
    I64 = "i64"
    F16 = "f16"
    BF16 = "bf16"
    F32 = "f32"
    F64 = "f64"

    def __str__(self) -> str:
        return self.value

    @property
    def is_float(self) -> bool:
        return self in _FLOATS

    @property
    def is_int(self) -> bool:
        return self in (DType.I32, DType.I64)

    @property
    def is_bool(self) -> bool:
        return self is DType.BOOL

    @property
    def rank(self) -> int:
        """Position in the promotion lattice `bool < i32 < i64 < f16 < bf16 < f32 < f64`."""
        return _ORDER.index(self)

    @property
    def numpy(self) -> np.dtype:
        if self is DType.BF16:
            raise NotImplementedError("bf16 has no NumPy dtype")
        return np.dtype(_NUMPY_NAMES[self])

    @classmethod
    def parse(cls, text: str) -> DType | None:
        try:
            return cls(text)
        except ValueError:
            return None

    @classmethod
    def from_numpy(cls, dtype: np.dtype) -> DType:
        for dt, name in _NUMPY_NAMES.items():
            if np.dtype(name) == dtype:
                return dt
        raise ValueError(f"no tensorc dtype for NumPy dtype {dtype}")


_ORDER = [DType.BOOL, DType.I32, DType.I64, DType.F16, DType.BF16, DType.F32, DType.F64]
_FLOATS = frozenset({DType.F16, DType.BF16, DType.F32, DType.F64})
_NUMPY_NAMES = {
    DType.BOOL: "bool",
    DType.I32: "int32",
    DType.I64: "int64",
    DType.F16: "float16",
    DType.F32: "float32",
    DType.F64: "float64",
}


def promote(a: DType, b: DType) -> DType:
    """The common dtype of two tensor operands (the larger one in the lattice).

    f16 with bf16 has no exact common type below f32, as in JAX.
    """
    if {a, b} == {DType.F16, DType.BF16}:
        return DType.F32
    return a if a.rank >= b.rank else b
