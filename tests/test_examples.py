"""The examples run as the README says, and the backward graph stays proportionate."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tensorc.frontend import compile_source
from tensorc.ir import Module
from tensorc.passes import PassManager, pipeline_for
from tensorc.passes.fusion import count_kernels

ROOT = Path(__file__).resolve().parent.parent


def run_example(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_quickstart_runs() -> None:
    output = run_example("examples/quickstart.py")
    assert "rows sum to 1.000000" in output


def test_train_digits_reaches_95_percent() -> None:
    pytest.importorskip("sklearn", reason="the digits example needs scikit-learn (pip: .[test])")
    output = run_example("examples/train_digits.py", "--target", "interp")
    accuracy = float(output.strip().splitlines()[-1].rsplit(" ", 1)[-1])
    assert accuracy >= 0.95


MLP_LOSS_AND_GRADS = """
def loss(x: f32[N, 64], y: i32[N], w1: f32[64, H], b1: f32[H], w2: f32[H, 10], b2: f32[10]) -> f32 {
    h = relu(x @ w1 + b1)
    return mean(cross_entropy(h @ w2 + b2, y))
}

def grads(x: f32[N, 64], y: i32[N], w1: f32[64, H], b1: f32[H], w2: f32[H, 10],
          b2: f32[10]) -> (f32[64, H], f32[H], f32[H, 10], f32[10]) {
    return grad(loss(x, y, w1, b1, w2, b2), [w1, b1, w2, b2])
}
"""


def test_backward_graph_has_at_most_twice_the_forward_kernels() -> None:
    module = compile_source(MLP_LOSS_AND_GRADS, "mlp_grads.tc")
    PassManager(pipeline_for(2)).run(module)
    forward = count_kernels(Module([module.lookup("loss")]))
    gradient = count_kernels(Module([module.lookup("grads")]))
    assert forward > 0
    # The gradient function holds the forward work it needs plus the backward sweep.
    assert gradient <= 2 * forward, (forward, gradient)
