"""The context handed to every reference-interpreter kernel, and small helpers around it.

A kernel is called as ``kernel(ctx, *operands, **attrs)``. The :class:`KernelContext` tells it
what the IR op promised: the op's name and, for every result, its concrete shape and dtype.
Kernels must return arrays of exactly those dtypes and shapes; :func:`check_results` asserts
it and is meant for tests and debug runs, not for the interpreter's hot path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SUPPORTED_DTYPES: frozenset[np.dtype] = frozenset(
    np.dtype(name) for name in ("bool", "int32", "int64", "float16", "float32", "float64")
)
"""The dtypes the reference interpreter computes with (bf16 is not among them)."""


@dataclass
class KernelContext:
    """What a kernel needs to know beyond its operands and attributes."""

    op_name: str
    result_dtypes: list[np.dtype] = field(default_factory=list)
    result_shapes: list[tuple[int, ...]] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Accept NumPy scalar types (np.float32) for dtypes and any int sequence for shapes;
        # anything else (a "bf16" string, say) is kept and rejected by the kernel table.
        self.result_dtypes = [
            np.dtype(dtype) if isinstance(dtype, type) and issubclass(dtype, np.generic) else dtype
            for dtype in self.result_dtypes
        ]
        self.result_shapes = [
            tuple(int(extent) for extent in shape) for shape in self.result_shapes
        ]

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the first (usually only) result."""
        return self.result_dtypes[0]

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of the first (usually only) result."""
        return self.result_shapes[0]


def as_result(value: object, dtype: np.dtype) -> np.ndarray:
    """``value`` as an ndarray of ``dtype``; NumPy scalars from 0-d computations become 0-d."""
    return np.asarray(value).astype(dtype, copy=False)


def unsupported_dtype_error(op_name: str, dtype: object) -> NotImplementedError:
    """The error raised when a kernel meets a dtype the interpreter cannot compute with."""
    name = str(dtype)
    if "bfloat16" in name or "bf16" in name:
        return NotImplementedError(
            f"{op_name}: bf16 is not supported by the reference interpreter "
            "(NumPy has no bfloat16 dtype); compile for a backend instead"
        )
    return NotImplementedError(
        f"{op_name}: dtype {name} is not supported by the reference interpreter "
        "(supported: bool, int32, int64, float16, float32, float64)"
    )


def check_results(
    ctx: KernelContext, results: np.ndarray | tuple[np.ndarray, ...]
) -> tuple[np.ndarray, ...]:
    """Assert that ``results`` match ``ctx`` exactly (types, dtypes, shapes); return a tuple."""
    outputs = results if isinstance(results, tuple) else (results,)
    assert len(outputs) == len(ctx.result_dtypes) == len(ctx.result_shapes), (
        f"{ctx.op_name}: {len(outputs)} results, context expects {len(ctx.result_dtypes)} "
        f"dtypes and {len(ctx.result_shapes)} shapes"
    )
    for index, (output, dtype, shape) in enumerate(
        zip(outputs, ctx.result_dtypes, ctx.result_shapes)
    ):
        assert isinstance(output, np.ndarray), (
            f"{ctx.op_name}: result {index} is a {type(output).__name__}, not an ndarray"
        )
        assert output.dtype == np.dtype(dtype), (
            f"{ctx.op_name}: result {index} has dtype {output.dtype}, context expects {dtype}"
        )
        assert output.shape == tuple(shape), (
            f"{ctx.op_name}: result {index} has shape {output.shape}, context expects {shape}"
        )
    return outputs
