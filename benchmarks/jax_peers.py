"""JAX versions of every workload, for `run.py` when jax is installed (`pip install
jax==0.10.2 jaxlib==0.10.2`). The CPU-backend issue names `jax.jit` the best peer for GELU
and, with PyTensor, for the MLP train step.

Written as a JAX user would for speed: each workload is one `jax.jit` function (XLA's CPU
backend fuses the elementwise work and runs it on every core), its inputs are put on the
device once, outside the timed calls (as `run.py` converts PyTorch's tensors once), and each
call waits for its result (`jax.block_until_ready`: JAX dispatches asynchronously, so an
unblocked call would time only the dispatch). The train step is `jax.value_and_grad` of the
loss with an SGD update, returning the new parameters and the loss as tensorc's does.

Each function takes the workload's NumPy inputs and returns the runner `run.py` times.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

Runner = Callable[[], object]


def _jitted(function: Callable[..., object], inputs: list[np.ndarray]) -> Runner:
    compiled = jax.jit(function)
    arguments = [jnp.asarray(value) for value in inputs]
    jax.block_until_ready(compiled(*arguments))  # trace and compile before any timing
    return lambda: jax.block_until_ready(compiled(*arguments))


def gelu_tanh(inputs: list[np.ndarray]) -> Runner:
    return _jitted(lambda x: jax.nn.gelu(x, approximate=True), inputs)


def relu_affine(inputs: list[np.ndarray]) -> Runner:
    return _jitted(lambda x, a, b: jax.nn.relu(x * a + b), inputs)


def softmax(inputs: list[np.ndarray]) -> Runner:
    return _jitted(lambda x: jax.nn.softmax(x, axis=-1), inputs)


def _layer_norm(x: jax.Array, g: jax.Array, b: jax.Array) -> jax.Array:
    mean = jnp.mean(x, axis=-1, keepdims=True)
    variance = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(variance + 1e-5) * g + b


def layer_norm(inputs: list[np.ndarray]) -> Runner:
    return _jitted(_layer_norm, inputs)


def matmul(inputs: list[np.ndarray]) -> Runner:
    return _jitted(jnp.matmul, inputs)


def _mlp_loss(params: tuple[jax.Array, ...], x: jax.Array, y: jax.Array) -> jax.Array:
    w1, b1, w2, b2 = params
    hidden = jax.nn.relu(x @ w1 + b1)
    log_probabilities = jax.nn.log_softmax(hidden @ w2 + b2, axis=-1)
    return -jnp.mean(jnp.take_along_axis(log_probabilities, y[:, None], axis=1))


def _mlp_train_step(x, y, w1, b1, w2, b2, lr):  # noqa: ANN001, ANN202 - traced by jax
    params = (w1, b1, w2, b2)
    loss, grads = jax.value_and_grad(_mlp_loss)(params, x, y)
    return tuple(p - lr * g for p, g in zip(params, grads)) + (loss,)


def mlp_train_step(inputs: list[np.ndarray]) -> Runner:
    return _jitted(_mlp_train_step, inputs)


def add_one(inputs: list[np.ndarray]) -> Runner:
    return _jitted(lambda x: x + 1, inputs)
