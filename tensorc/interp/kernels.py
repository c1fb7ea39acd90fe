"""The table of NumPy reference kernels, keyed by ``tc`` op name.

``KERNELS[name](ctx, *operands, **attrs)`` evaluates one op: operands are NumPy arrays
(0-d for scalars), attributes plain Python values, and the result is an array (or a tuple
of arrays) of exactly ``ctx.result_dtypes`` / ``ctx.result_shapes``. Every kernel in the
table runs under ``np.errstate(all="ignore")`` so it never emits a NumPy warning (the
semantics never depend on one), and rejects dtypes the interpreter does not support
(bf16 included) with ``NotImplementedError``. The kernels themselves live in
``kernels_elementwise``, ``kernels_shape``, ``kernels_reduce`` and ``kernels_nn``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from tensorc.interp.context import SUPPORTED_DTYPES, KernelContext, unsupported_dtype_error
from tensorc.interp.kernels_elementwise import ELEMENTWISE_KERNELS
from tensorc.interp.kernels_nn import NN_KERNELS
from tensorc.interp.kernels_reduce import REDUCE_KERNELS
from tensorc.interp.kernels_shape import SHAPE_KERNELS

Kernel = Callable[..., "np.ndarray | tuple[np.ndarray, ...]"]


def _guarded(kernel: Kernel) -> Kernel:
    """``kernel`` with a dtype check on operands and results, run with NumPy warnings off."""

    @functools.wraps(kernel)
    def run(
        ctx: KernelContext, *operands: np.ndarray, **attrs: object
    ) -> np.ndarray | tuple[np.ndarray, ...]:
        for operand in operands:
            if operand.dtype not in SUPPORTED_DTYPES:
                raise unsupported_dtype_error(ctx.op_name, operand.dtype)
        for dtype in ctx.result_dtypes:
            if not isinstance(dtype, np.dtype) or dtype not in SUPPORTED_DTYPES:
                raise unsupported_dtype_error(ctx.op_name, dtype)
        with np.errstate(all="ignore"):
            return kernel(ctx, *operands, **attrs)

    return run


def _build_table() -> dict[str, Kernel]:
    table: dict[str, Kernel] = {}
    for group in (ELEMENTWISE_KERNELS, SHAPE_KERNELS, REDUCE_KERNELS, NN_KERNELS):
        duplicated = table.keys() & group.keys()
        if duplicated:
            raise RuntimeError(f"kernels registered twice: {sorted(duplicated)}")
        table.update({name: _guarded(kernel) for name, kernel in group.items()})
    return table


KERNELS: dict[str, Kernel] = _build_table()
"""Reference kernel for every ``tc`` op the interpreter evaluates, keyed by op name."""
