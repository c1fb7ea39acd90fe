"""The tensorc dtype names and their NumPy counterparts.

tensorc names its element types ``bool i32 i64 f16 bf16 f32 f64``. All but ``bf16`` map to a
NumPy dtype; NumPy has no bfloat16, so using a ``bf16`` value from NumPy raises ``TypeError``
with an explanation (:func:`to_numpy_dtype`).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "BF16_UNSUPPORTED_MESSAGE",
    "DTYPE_NAMES",
    "FLOAT_DTYPES",
    "INT_DTYPES",
    "check_dtype_name",
    "from_numpy_dtype",
    "int_range",
    "is_float",
    "is_int",
    "itemsize",
    "numpy_spelling",
    "to_numpy_dtype",
]

DTYPE_NAMES: tuple[str, ...] = ("bool", "i32", "i64", "f16", "bf16", "f32", "f64")
FLOAT_DTYPES: frozenset[str] = frozenset({"f16", "bf16", "f32", "f64"})
INT_DTYPES: frozenset[str] = frozenset({"i32", "i64"})

BF16_UNSUPPORTED_MESSAGE = (
    "bf16 has no NumPy dtype: bf16 parameters and results cannot be used from NumPy yet"
)

_NUMPY_DTYPES: dict[str, np.dtype] = {
    "bool": np.dtype(np.bool_),
    "i32": np.dtype(np.int32),
    "i64": np.dtype(np.int64),
    "f16": np.dtype(np.float16),
    "f32": np.dtype(np.float32),
    "f64": np.dtype(np.float64),
}

_NAMES_BY_NUMPY_DTYPE: dict[np.dtype, str] = {dtype: name for name, dtype in _NUMPY_DTYPES.items()}

_NUMPY_SPELLINGS: dict[str, str] = {
    "bool": "np.bool_",
    "i32": "np.int32",
    "i64": "np.int64",
    "f16": "np.float16",
    "f32": "np.float32",
    "f64": "np.float64",
}

_ITEMSIZES: dict[str, int] = {
    "bool": 1,
    "i32": 4,
    "i64": 8,
    "f16": 2,
    "bf16": 2,
    "f32": 4,
    "f64": 8,
}


def check_dtype_name(name: str) -> str:
    """Return ``name`` if it is a tensorc dtype name, else raise ``ValueError``."""
    if name in _ITEMSIZES:
        return name
    raise _unknown_dtype_error(name)


def _unknown_dtype_error(name: object) -> ValueError:
    return ValueError(f"unknown dtype {name!r}; expected one of {', '.join(DTYPE_NAMES)}")


def to_numpy_dtype(name: str) -> np.dtype:
    """The native-byte-order NumPy dtype of a tensorc dtype name.

    Raises ``TypeError`` for ``bf16`` (no NumPy equivalent) and ``ValueError`` for an unknown
    name.
    """
    dtype = _NUMPY_DTYPES.get(name)
    if dtype is not None:
        return dtype
    if name == "bf16":
        raise TypeError(BF16_UNSUPPORTED_MESSAGE)
    raise _unknown_dtype_error(name)


def from_numpy_dtype(dtype: np.dtype | type) -> str:
    """The tensorc dtype name of a NumPy dtype (either byte order); ``ValueError`` if none."""
    numpy_dtype = np.dtype(dtype)
    name = _NAMES_BY_NUMPY_DTYPE.get(numpy_dtype.newbyteorder("="))
    if name is None:
        raise ValueError(f"NumPy dtype {numpy_dtype} has no tensorc equivalent")
    return name


def numpy_spelling(name: str) -> str:
    """How to write the NumPy type of a dtype name in Python source, e.g. ``np.float32``."""
    spelling = _NUMPY_SPELLINGS.get(name)
    if spelling is not None:
        return spelling
    if name == "bf16":
        raise TypeError(BF16_UNSUPPORTED_MESSAGE)
    raise _unknown_dtype_error(name)


def is_float(name: str) -> bool:
    """Whether ``name`` is a floating-point dtype."""
    return name in FLOAT_DTYPES


def is_int(name: str) -> bool:
    """Whether ``name`` is a (signed) integer dtype."""
    return name in INT_DTYPES


def itemsize(name: str) -> int:
    """Size in bytes of one element of dtype ``name``."""
    return _ITEMSIZES[check_dtype_name(name)]


def int_range(name: str) -> tuple[int, int]:
    """The inclusive ``(min, max)`` range of an integer dtype."""
    if name not in INT_DTYPES:
        raise ValueError(f"{name} is not an integer dtype")
    info = np.iinfo(_NUMPY_DTYPES[name])
    return int(info.min), int(info.max)
