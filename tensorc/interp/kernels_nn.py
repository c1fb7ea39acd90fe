"""Reference kernels for ``tc.matmul`` and the neural-network ``tc`` ops.

``softmax``, ``log_softmax``, ``logsumexp`` and ``cross_entropy`` subtract the maximum before
exponentiating, so they never overflow: a row that is entirely -inf gives NaN from
``softmax``/``log_softmax`` (as in JAX) and -inf from ``logsumexp``; a +inf gives +inf from
``logsumexp``. Everything is computed in the result dtype, except that float16 is computed in
float32 and rounded once at the end (the accumulation rule of the reductions).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tensorc.interp.context import KernelContext, as_result
from tensorc.interp.kernels_reduce import accumulator_dtype

Kernel = Callable[..., np.ndarray]


def _compute_operand(ctx: KernelContext, x: np.ndarray) -> np.ndarray:
    """``x`` in the dtype this op computes in: the result dtype, float16 widened to float32."""
    return x.astype(accumulator_dtype(ctx.dtype), copy=False)


def _logsumexp(x: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
    """``log(sum(exp(x)))`` over ``axes``, shifted by the maximum when it is finite."""
    largest = np.max(x, axis=axes, keepdims=True, initial=-np.inf)
    shift = np.where(np.isfinite(largest), largest, x.dtype.type(0))
    result = np.log(np.sum(np.exp(x - shift), axis=axes, keepdims=True)) + shift
    if keepdims:
        return result
    return np.squeeze(result, axis=axes)


def matmul(ctx: KernelContext, lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """``np.matmul`` over identical batch dims; ints wrap, bool is or-of-ands."""
    if lhs.dtype.kind == "f":
        lhs, rhs = _compute_operand(ctx, lhs), _compute_operand(ctx, rhs)
    return as_result(np.matmul(lhs, rhs), ctx.dtype)


def softmax(ctx: KernelContext, x: np.ndarray, axis: int) -> np.ndarray:
    x = _compute_operand(ctx, x)
    exponentials = np.exp(x - np.max(x, axis=axis, keepdims=True, initial=-np.inf))
    return as_result(exponentials / np.sum(exponentials, axis=axis, keepdims=True), ctx.dtype)


def log_softmax(ctx: KernelContext, x: np.ndarray, axis: int) -> np.ndarray:
    x = _compute_operand(ctx, x)
    shifted = x - np.max(x, axis=axis, keepdims=True, initial=-np.inf)
    normaliser = np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
    return as_result(shifted - normaliser, ctx.dtype)


def logsumexp(
    ctx: KernelContext, x: np.ndarray, axes: list[int], keepdims: bool = False
) -> np.ndarray:
    if not axes:
        return x.astype(ctx.dtype, copy=True)
    return as_result(_logsumexp(_compute_operand(ctx, x), tuple(axes), keepdims), ctx.dtype)


def layer_norm(
    ctx: KernelContext, x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-5
) -> np.ndarray:
    """``(x - mean) / sqrt(var + eps) * gamma + beta`` over the last axis (biased variance)."""
    if x.size == 0:
        return np.zeros(ctx.shape, dtype=ctx.dtype)
    x = _compute_operand(ctx, x)
    gamma, beta = _compute_operand(ctx, gamma), _compute_operand(ctx, beta)
    width = x.shape[-1]
    centered = x - np.sum(x, axis=-1, keepdims=True) / x.dtype.type(width)
    variance = np.sum(centered * centered, axis=-1, keepdims=True) / x.dtype.type(width)
    normalised = centered / np.sqrt(variance + x.dtype.type(eps))
    return as_result(normalised * gamma + beta, ctx.dtype)


def cross_entropy(ctx: KernelContext, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-example ``logsumexp(logits[i]) - logits[i, labels[i]]``; labels must be in [0, C)."""
    rows, classes = logits.shape
    out_of_range = (labels < 0) | (labels >= classes)
    if out_of_range.any():
        first_bad = int(labels[out_of_range][0])
        raise IndexError(f"cross_entropy: label {first_bad} is out of range for {classes} classes")
    logits = _compute_operand(ctx, logits)
    picked = logits[np.arange(rows), labels.astype(np.int64)]
    return as_result(_logsumexp(logits, (1,), keepdims=False) - picked, ctx.dtype)


NN_KERNELS: dict[str, Kernel] = {
    "tc.matmul": matmul,
    "tc.softmax": softmax,
    "tc.log_softmax": log_softmax,
    "tc.logsumexp": logsumexp,
    "tc.layer_norm": layer_norm,
    "tc.cross_entropy": cross_entropy,
}
