"""Numba versions of the workloads where the CPU-backend issue names numba as the best peer
(layer norm, `relu(x*a+b)`), for `run.py` when numba is installed (`pip install numba==0.68.0`,
the release built against llvmlite 0.50).

Written as a numba user would for speed: `parallel=True` over rows, `fastmath=True` so the
row reductions vectorise, float32 accumulators (a float64 one makes numba convert every
element and runs about 1.7x slower), and a fresh output array per call, as NumPy, PyTorch and
tensorc return.

Each function takes the workload's NumPy inputs and returns the runner `run.py` times.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numba import njit, prange

Runner = Callable[[], object]


@njit(parallel=True, fastmath=True, cache=False)
def _layer_norm_into(x, g, b, out):  # pragma: no cover - compiled by numba
    rows, columns = x.shape
    count = np.float32(columns)
    for i in prange(rows):
        total = np.float32(0)
        for j in range(columns):
            total += x[i, j]
        mean = total / count
        spread = np.float32(0)
        for j in range(columns):
            d = x[i, j] - mean
            spread += d * d
        scale = np.float32(1) / np.sqrt(spread / count + np.float32(1e-5))
        for j in range(columns):
            out[i, j] = (x[i, j] - mean) * scale * g[j] + b[j]


@njit(parallel=True, fastmath=True, cache=False)
def _relu_affine_into(x, a, b, out):  # pragma: no cover - compiled by numba
    rows, columns = x.shape
    zero = np.float32(0)
    for i in prange(rows):
        for j in range(columns):
            out[i, j] = max(x[i, j] * a[j] + b[j], zero)


def layer_norm(inputs: list[np.ndarray]) -> Runner:
    return _writing_into_fresh_output(_layer_norm_into, inputs)


def relu_affine(inputs: list[np.ndarray]) -> Runner:
    return _writing_into_fresh_output(_relu_affine_into, inputs)


def _writing_into_fresh_output(kernel: Callable[..., None], inputs: list[np.ndarray]) -> Runner:
    """A runner calling `kernel(*inputs, out)` on a new array shaped like the first input,
    called once here: numba compiles on the first call."""

    def run() -> np.ndarray:
        out = np.empty_like(inputs[0])
        kernel(*inputs, out)
        return out

    run()
    return run
