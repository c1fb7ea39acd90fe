"""Gradients of model-like programs against torch.autograd (f64), straight after autodiff and
after -O2. Skipped where torch is not installed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from autodiff_support import PIPELINE_LABELS, GradCase, as_tuple, compile_case, compile_program

torch = pytest.importorskip(
    "torch", reason="torch is not installed (pip install torch) to compare with autograd"
)
F = torch.nn.functional

RNG = np.random.default_rng(7)


def normal(*shape: int, scale: float = 1.0) -> np.ndarray:
    return RNG.normal(size=shape) * scale


@dataclass
class TorchCase:
    grad_case: GradCase
    reference: Callable[..., object]  # torch tensors in parameter order -> scalar loss


def torch_case(
    name: str, params: str, body: str, wrt: str, reference: Callable, **inputs
) -> TorchCase:
    names = [n.strip() for n in wrt.split(",")]
    return TorchCase(GradCase(name, params, body, names, inputs), reference)


def _mlp(x, y, w1, b1, w2, b2):
    return F.cross_entropy(torch.relu(x @ w1 + b1) @ w2 + b2, y.long())


def _layer_norm_block(x, g, b, w):
    h = F.layer_norm(x, (x.shape[-1],), g, b, eps=1e-5)
    return torch.mean(F.gelu(h @ w) ** 2) + torch.sum(x * 0.1)


def _attention(x, wq, wk, wv):
    q, k, v = x @ wq, x @ wk, x @ wv
    weights = torch.softmax(q @ k.transpose(1, 2) / np.sqrt(4.0), dim=-1)
    return torch.mean((weights @ v) ** 2)


def _logsumexp(x, w):
    return torch.mean(torch.logsumexp(x @ w, dim=1))


def _gelu_mlp(x, w1, w2, t):
    h = F.gelu(x @ w1) + F.gelu(x @ w1, approximate="tanh")
    return F.mse_loss(h @ w2, t)


def _cnn_like(x, w):
    patches = x.reshape(3, 4, 4).transpose(1, 2).reshape(3, 2, 8)
    features = torch.tanh(patches @ w)
    pooled = torch.amax(features, dim=1)
    return torch.sum(pooled * pooled)


def _nll_gather(z, y):
    picked = torch.take_along_dim(F.log_softmax(z, dim=1), y.long().reshape(-1, 1), dim=1)
    return -torch.mean(picked)


def _embedding(table, ids, w, t):
    embedded = torch.mean(table[ids.long()], dim=1)
    return torch.mean((embedded @ w - t) ** 2)


def _glu(x, w1, w2):
    h = (x @ w1) * torch.sigmoid(x @ w2)
    return torch.sum(h * h) + torch.sum(F.softplus(h))


def _batch_norm(x, g, b):
    mean = torch.mean(x, dim=0, keepdim=True)
    variance = torch.mean((x - mean) ** 2, dim=0, keepdim=True)
    normalised = (x - mean) / torch.sqrt(variance + 1e-3)
    return torch.sum(torch.sin(normalised * g + b))


def _heads(x, w):
    q = (x @ w).reshape(5, 2, 3).transpose(0, 1)
    scores = torch.softmax(q @ q.transpose(1, 2), dim=-1)
    merged = torch.cat([scores[0], scores[1]], dim=1)
    return torch.sum(torch.log(merged + 1.0)) + torch.sum(torch.stack([x, x * x], dim=0)[1])


def _leaky_clip(x, w):
    h = x @ w
    leaky = torch.maximum(h, 0.1 * h)
    return torch.sum(torch.clamp(leaky, -0.5, 2.0) ** 3) + torch.sum(torch.amin(h, dim=0))


def _normalise_rows(x):
    norms = torch.sqrt(torch.sum(x**2, dim=1, keepdim=True))
    return torch.sum((x / norms) ** 3) + torch.prod(x[0])


def _symbolic_mlp(x, w, b):
    return torch.mean(torch.tanh(x @ w + b) ** 2) + torch.sum(torch.exp(-torch.abs(w)))


CASES = [
    torch_case(
        "mlp_cross_entropy",
        "x: f64[N, 6], y: i32[N], w1: f64[6, 8], b1: f64[8], w2: f64[8, 4], b2: f64[4]",
        "loss = mean(cross_entropy(relu(x @ w1 + b1) @ w2 + b2, y))",
        "w1, b1, w2, b2, x",
        _mlp,
        x=normal(5, 6),
        y=np.array([0, 3, 1, 1, 2], np.int32),
        w1=normal(6, 8, scale=0.5),
        b1=normal(8, scale=0.1),
        w2=normal(8, 4, scale=0.5),
        b2=normal(4, scale=0.1),
    ),
    torch_case(
        "layer_norm_block",
        "x: f64[2, 3, 5], g: f64[5], b: f64[5], w: f64[5, 4]",
        "loss = mean(gelu(layer_norm(x, g, b) @ w) ** 2.0) + sum(x * 0.1)",
        "x, g, b, w",
        _layer_norm_block,
        x=normal(2, 3, 5),
        g=normal(5),
        b=normal(5),
        w=normal(5, 4),
    ),
    torch_case(
        "attention",
        "x: f64[2, 5, 3], wq: f64[3, 4], wk: f64[3, 4], wv: f64[3, 4]",
        """
        q = x @ wq
        k = x @ wk
        v = x @ wv
        weights = softmax(q @ transpose(k, [0, 2, 1]) / sqrt(4.0), axis=-1)
        loss = mean((weights @ v) ** 2.0)
        """,
        "x, wq, wk, wv",
        _attention,
        x=normal(2, 5, 3),
        wq=normal(3, 4),
        wk=normal(3, 4),
        wv=normal(3, 4),
    ),
    torch_case(
        "logsumexp",
        "x: f64[4, 3], w: f64[3, 5]",
        "loss = mean(logsumexp(x @ w, axis=1))",
        "x, w",
        _logsumexp,
        x=normal(4, 3),
        w=normal(3, 5),
    ),
    torch_case(
        "gelu_mlp",
        "x: f64[4, 3], w1: f64[3, 6], w2: f64[6, 2], t: f64[4, 2]",
        """
        h = gelu(x @ w1) + gelu(x @ w1, approximate=true)
        loss = mse(h @ w2, t)
        """,
        "x, w1, w2, t",
        _gelu_mlp,
        x=normal(4, 3),
        w1=normal(3, 6),
        w2=normal(6, 2),
        t=normal(4, 2),
    ),
    torch_case(
        "cnn_like_reshapes",
        "x: f64[3, 16], w: f64[8, 5]",
        """
        patches = reshape(transpose(reshape(x, [3, 4, 4]), [0, 2, 1]), [3, 2, 8])
        features = tanh(patches @ w)
        pooled = max(features, axis=1)
        loss = sum(pooled * pooled)
        """,
        "x, w",
        _cnn_like,
        x=normal(3, 16),
        w=normal(8, 5),
    ),
    torch_case(
        "nll_take_along_axis",
        "z: f64[N, 4], y: i32[N]",
        "loss = -mean(take_along_axis(log_softmax(z), reshape(y, [-1, 1]), 1))",
        "z",
        _nll_gather,
        z=normal(6, 4),
        y=np.array([0, 3, 3, 1, 2, 0], np.int32),
    ),
    torch_case(
        "embedding",
        "table: f64[6, 3], ids: i32[4, 5], w: f64[3, 2], t: f64[4, 2]",
        """
        embedded = mean(take(table, ids, 0), axis=1)
        loss = mean((embedded @ w - t) ** 2.0)
        """,
        "table, w, t",
        _embedding,
        table=normal(6, 3),
        ids=RNG.integers(0, 6, size=(4, 5)).astype(np.int32),
        w=normal(3, 2),
        t=normal(4, 2),
    ),
    torch_case(
        "gated_linear_unit",
        "x: f64[4, 3], w1: f64[3, 5], w2: f64[3, 5]",
        """
        h = (x @ w1) * sigmoid(x @ w2)
        loss = sum(h * h) + sum(log(1.0 + exp(h)))
        """,
        "x, w1, w2",
        _glu,
        x=normal(4, 3),
        w1=normal(3, 5),
        w2=normal(3, 5),
    ),
    torch_case(
        "batch_norm",
        "x: f64[B, 4], g: f64[4], b: f64[4]",
        """
        centered = x - mean(x, axis=0, keepdims=true)
        normalised = centered / sqrt(mean(centered ** 2.0, axis=0, keepdims=true) + 0.001)
        loss = sum(sin(normalised * g + b))
        """,
        "x, g, b",
        _batch_norm,
        x=normal(6, 4),
        g=normal(4),
        b=normal(4),
    ),
    torch_case(
        "heads_concat_stack",
        "x: f64[5, 4], w: f64[4, 6]",
        """
        q = transpose(reshape(x @ w, [5, 2, 3]), [1, 0, 2])
        scores = softmax(q @ transpose(q, [0, 2, 1]), axis=-1)
        merged = concat([scores[0], scores[1]], axis=1)
        loss = sum(log(merged + 1.0)) + sum(stack([x, x * x], 0)[1])
        """,
        "x, w",
        _heads,
        x=normal(5, 4),
        w=normal(4, 6, scale=0.5),
    ),
    torch_case(
        "leaky_clip_min",
        "x: f64[5, 3], w: f64[3, 4]",
        """
        h = x @ w
        loss = sum(clip(maximum(h, 0.1 * h), -0.5, 2.0) ** 3.0) + sum(min(h, axis=0))
        """,
        "x, w",
        _leaky_clip,
        x=normal(5, 3),
        w=normal(3, 4),
    ),
    torch_case(
        "normalise_rows",
        "x: f64[3, 4]",
        "loss = sum((x / sqrt(sum(x ** 2.0, axis=1, keepdims=true))) ** 3.0) + prod(x[0])",
        "x",
        _normalise_rows,
        x=normal(3, 4),
    ),
    torch_case(
        "symbolic_mlp",
        "x: f64[N, D], w: f64[D, H], b: f64[H]",
        "loss = mean(tanh(x @ w + b) ** 2.0) + sum(exp(-abs(w)))",
        "x, w, b",
        _symbolic_mlp,
        x=normal(7, 3),
        w=normal(3, 5),
        b=normal(5),
    ),
]


def _torch_gradients(case: TorchCase) -> list[np.ndarray]:
    tensors = {
        name: torch.tensor(value, requires_grad=name in case.grad_case.wrt)
        for name, value in case.grad_case.inputs.items()
    }
    loss = case.reference(*tensors.values())
    wanted = [tensors[name] for name in case.grad_case.wrt]
    return [g.detach().numpy() for g in torch.autograd.grad(loss, wanted)]


@pytest.mark.parametrize("label", PIPELINE_LABELS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.grad_case.name)
def test_gradients_match_torch_autograd(case: TorchCase, label: str) -> None:
    module = compile_case(case.grad_case, label)
    arguments = case.grad_case.arguments()
    ours = as_tuple(module.grad_fn(*arguments))
    loss = module.loss_fn(*arguments)
    expected_loss = case.reference(*(torch.tensor(a) for a in arguments))
    np.testing.assert_allclose(loss, float(expected_loss), rtol=1e-12)
    for name, actual, expected in zip(case.grad_case.wrt, ours, _torch_gradients(case)):
        np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-12, err_msg=name)


HVP_SOURCE = """
def hvp(x: f64[N, 3], w: f64[3, 4], v: f64[3, 4]) -> f64[3, 4] {
    loss = mean(logsumexp(tanh(x @ w), axis=1))
    g = grad(loss, w)
    return grad(sum(g * v), w)
}
"""


@pytest.mark.parametrize("label", PIPELINE_LABELS)
def test_hessian_vector_product_matches_torch(label: str) -> None:
    x, w, v = normal(5, 3), normal(3, 4), normal(3, 4)
    module = compile_program(HVP_SOURCE, label)
    xt, wt = torch.tensor(x), torch.tensor(w, requires_grad=True)
    loss = torch.mean(torch.logsumexp(torch.tanh(xt @ wt), dim=1))
    (gradient,) = torch.autograd.grad(loss, [wt], create_graph=True)
    (expected,) = torch.autograd.grad(torch.sum(gradient * torch.tensor(v)), [wt])
    np.testing.assert_allclose(module.hvp(x, w, v), expected.numpy(), rtol=1e-10, atol=1e-12)
