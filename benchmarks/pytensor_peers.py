"""PyTensor versions of every workload, for `run.py` when pytensor is installed (`pip install
pytensor==3.0.7`). The CPU-backend issue names PyTensor, with JAX, the best peer for the MLP
train step.

Written as a PyTensor user would: symbolic float32 inputs, one `pytensor.function` per
workload in the default mode (its graph rewrites and elementwise fusion, ops compiled to C;
`mode="NUMBA"` and `"FAST_RUN"` ran the train step 1.1-1.2x slower here), compiled once
before any timing. The train step takes `pytensor.grad` of the loss and returns the SGD-updated
parameters and the loss, as tensorc's does. Without a BLAS in `blas__ldflags` (a pip install
has none) PyTensor's matrix products call NumPy's, which is OpenBLAS.

Each function takes the workload's NumPy inputs and returns the runner `run.py` times.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

with warnings.catch_warnings():  # the "no BLAS flags" notice of a pip install
    warnings.simplefilter("ignore")
    import pytensor
    import pytensor.tensor as pt

Runner = Callable[[], object]
F32 = "float32"


def _compiled(inputs: list, outputs: object, values: list[np.ndarray]) -> Runner:
    function = pytensor.function(inputs, outputs)
    function(*values)  # the first call finishes any lazy C compilation
    return lambda: function(*values)


def gelu_tanh(values: list[np.ndarray]) -> Runner:
    x = pt.vector("x", dtype=F32)
    inner = np.float32(0.7978845608) * (x + np.float32(0.044715) * x**3)
    return _compiled([x], np.float32(0.5) * x * (1 + pt.tanh(inner)), values)


def relu_affine(values: list[np.ndarray]) -> Runner:
    x, a, b = pt.matrix("x", dtype=F32), pt.vector("a", dtype=F32), pt.vector("b", dtype=F32)
    return _compiled([x, a, b], pt.maximum(x * a + b, 0), values)


def softmax(values: list[np.ndarray]) -> Runner:
    x = pt.matrix("x", dtype=F32)
    return _compiled([x], pt.special.softmax(x, axis=-1), values)


def layer_norm(values: list[np.ndarray]) -> Runner:
    x, g, b = pt.matrix("x", dtype=F32), pt.vector("g", dtype=F32), pt.vector("b", dtype=F32)
    mean = x.mean(axis=-1, keepdims=True)
    variance = pt.sqr(x - mean).mean(axis=-1, keepdims=True)
    normalised = (x - mean) / pt.sqrt(variance + np.float32(1e-5))
    return _compiled([x, g, b], normalised * g + b, values)


def matmul(values: list[np.ndarray]) -> Runner:
    a, b = pt.matrix("a", dtype=F32), pt.matrix("b", dtype=F32)
    return _compiled([a, b], a @ b, values)


def mlp_train_step(values: list[np.ndarray]) -> Runner:
    x, y = pt.matrix("x", dtype=F32), pt.vector("y", dtype="int32")
    w1, b1 = pt.matrix("w1", dtype=F32), pt.vector("b1", dtype=F32)
    w2, b2 = pt.matrix("w2", dtype=F32), pt.vector("b2", dtype=F32)
    lr = pt.scalar("lr", dtype=F32)
    hidden = pt.maximum(x @ w1 + b1, 0)
    log_probabilities = pt.special.log_softmax(hidden @ w2 + b2, axis=-1)
    loss = -log_probabilities[pt.arange(y.shape[0]), y].mean()
    params = [w1, b1, w2, b2]
    updated = [p - lr * g for p, g in zip(params, pytensor.grad(loss, params))]
    return _compiled([x, y, *params, lr], [*updated, loss], values)


def add_one(values: list[np.ndarray]) -> Runner:
    x = pt.vector("x", dtype=F32)
    return _compiled([x], x + np.float32(1), values)
