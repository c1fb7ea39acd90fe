"""End-to-end programs on the CPU backend, checked against the interpreter at -O0 and -O3.

Two parts:

- Every test of the end-to-end suites (`test_e2e_api`, `test_e2e_elementwise`,
  `test_e2e_reductions`, `test_e2e_shapes`) runs again here with their `build`
  (`e2e_support.build`) replaced by one giving a differential module: each call runs the
  program compiled for `cpu` and for `interp`, checks that both agree (or raise the same
  error), and gives the suite the cpu result, so the suite's own NumPy expectations hold for
  native code too.
- Whole programs: the MLP of `examples/mlp.tc` (forward, predict, training step), the training
  step of SPEC section 1.6, attention, an embedding model trained through `take`, layer-norm
  blocks, at symbolic sizes 0, 1, 7, 13 and 1000.

Tolerances: tests/cpu_harness.py (the "accumulating" ones).
"""

from __future__ import annotations

from pathlib import Path

import e2e_support
import numpy as np
import pytest
import test_e2e_api
import test_e2e_elementwise
import test_e2e_reductions
import test_e2e_shapes
from cpu_harness import LEVELS, build, compare, run_both

ROOT = Path(__file__).resolve().parent.parent
SUITES = {
    "api": test_e2e_api,
    "elementwise": test_e2e_elementwise,
    "reductions": test_e2e_reductions,
    "shapes": test_e2e_shapes,
}


class Differential:
    """A module whose functions run on cpu and on the interpreter and must agree."""

    def __init__(self, cpu, reference) -> None:
        self.cpu = cpu
        self.reference = reference
        self.functions = reference.functions

    def __getattr__(self, name: str):
        if name not in self.reference.functions:
            raise AttributeError(f"module has no function '{name}'")

        def call(*args, **kwargs):
            try:
                want = getattr(self.reference, name)(*args, **kwargs)
            except Exception as error:
                with pytest.raises(type(error)):
                    getattr(self.cpu, name)(*args, **kwargs)
                raise
            got = getattr(self.cpu, name)(*args, **kwargs)
            compare(got, want, "accumulating", f"{name} (cpu vs interp)")
            return got

        return call

    def __getitem__(self, name: str):
        return getattr(self, name)


@pytest.fixture(params=LEVELS, ids=lambda level: f"O{level}")
def level(request) -> int:
    """The suites' own `level` fixture, at the CPU backend's levels."""
    return request.param


@pytest.fixture(autouse=True)
def _differential_builds(monkeypatch) -> None:
    """The suites' `build` (and the shared one their `call` uses) gives Differential modules."""
    original = e2e_support.build

    def differential(source: str, level: int = 2, target: str = "interp"):
        if target != "interp":
            return original(source, level, target)
        return Differential(build(source, level), original(source, level))

    monkeypatch.setattr(e2e_support, "build", differential)
    for suite in SUITES.values():
        if hasattr(suite, "build"):
            monkeypatch.setattr(suite, "build", differential)


def test_the_suites_really_run_on_cpu() -> None:
    """Guards the re-run above: the helpers the suites call do give differential modules."""
    source = "def f(x: f32[N]) -> f32[N] { return x * 2.0 }"
    assert isinstance(e2e_support.build(source, 3), Differential)
    for suite in SUITES.values():
        assert getattr(suite, "build", e2e_support.build) is e2e_support.build
    np.testing.assert_array_equal(e2e_support.call(3, source, np.ones(2, np.float32)), [2, 2])


for _suite_name, _suite in SUITES.items():
    for _name, _test in list(vars(_suite).items()):
        if _name.startswith("test_") and callable(_test):
            globals()[f"test_{_suite_name}__{_name[5:]}"] = _test


# ----- whole programs ------------------------------------------------------------------------

MLP = (ROOT / "examples" / "mlp.tc").read_text()
SIZES = ((0, 5), (1, 1), (7, 13), (13, 7), (1000, 32))


def _mlp_arguments(n: int, hidden: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    def normal(*shape: int, scale: float = 1.0) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    return {
        "x": normal(n, 64),
        "y": rng.integers(0, 10, n).astype(np.int32),
        "w1": normal(64, hidden, scale=0.1),
        "b1": normal(hidden),
        "w2": normal(hidden, 10, scale=0.3),
        "b2": normal(10),
    }


@pytest.mark.parametrize("level", LEVELS, ids=lambda level: f"O{level}")
@pytest.mark.parametrize("n, hidden", SIZES)
def test_mlp_example(level: int, n: int, hidden: int) -> None:
    rng = np.random.default_rng(n * 31 + hidden)
    a = _mlp_arguments(n, hidden, rng)
    forward = [a["x"], a["w1"], a["b1"], a["w2"], a["b2"]]
    probabilities = run_both(MLP, level, "mlp", forward)
    if n:
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    run_both(MLP, level, "predict", forward)
    step = [a["x"], a["y"], a["w1"], a["b1"], a["w2"], a["b2"], np.float32(0.1)]
    run_both(MLP, level, "train_step", step)


@pytest.mark.parametrize("level", LEVELS, ids=lambda level: f"O{level}")
def test_mlp_training_converges_like_the_interpreter(level: int) -> None:
    cpu, reference = build(MLP, level), build(MLP, level, target="interp")
    rng = np.random.default_rng(5)
    a = _mlp_arguments(256, 32, rng)
    a["y"] = (a["x"][:, :10].argmax(axis=1)).astype(np.int32)  # a learnable labelling
    params_cpu = [a["w1"], a["b1"], a["w2"], a["b2"]]
    params_ref = list(params_cpu)
    losses = []
    for _ in range(30):
        *params_cpu, loss = cpu.train_step(a["x"], a["y"], *params_cpu, 0.5)
        *params_ref, loss_ref = reference.train_step(a["x"], a["y"], *params_ref, 0.5)
        losses.append(float(loss))
        np.testing.assert_allclose(loss, loss_ref, rtol=2e-3)
    assert losses[-1] < 0.5 * losses[0]


PROGRAMS = """
def spec_train_step(x: f32[N, 64], y: i32[N], w: f32[64, 10], b: f32[10], lr: f32) -> (
        f32[64, 10], f32[10], f32) {
    loss = mean(cross_entropy(x @ w + b, y))
    gw, gb = grad(loss, [w, b])
    return w - lr * gw, b - lr * gb, loss
}
def attention(q: f32[B, N, D], k: f32[B, N, D], v: f32[B, N, D]) -> f32[B, N, D] {
    scores = softmax(q @ transpose(k, [0, 2, 1]) / 4.0, axis=-1)
    return scores @ v
}
def block(x: f32[N, D], g: f32[D], b: f32[D], w: f32[D, D]) -> f32[N, D] {
    h = layer_norm(x, g, b)
    return x + gelu(h @ w, approximate=true)
}
def embed_step(table: f32[V, D], ids: i32[N], target: f32[N, D], lr: f32) -> (
        f32[V, D], f32) {
    loss = mse(take(table, ids, 0), target)
    return table - lr * grad(loss, table), loss
}
def stats(x: f64[N, D]) -> (f64[D], f64[D], i32[N], f64[N]) {
    return mean(x, axis=0), var(x, axis=0), argmin(x, axis=1), logsumexp(x, axis=1)
}
def integer_math(a: i64[N], b: i64[N]) -> (i64[N], i64[N], bool[N], i32) {
    q = a // b
    r = a % b
    return q, r, q * b + r == a, sum(where(b == 0, 1, 0))
}
"""


def _program_arguments(name: str, env: dict[str, int], rng: np.random.Generator) -> list:
    n, d = env["N"], env["D"]
    f32 = np.float32
    if name == "spec_train_step":
        return [rng.standard_normal((n, 64)).astype(f32), rng.integers(0, 10, n).astype(np.int32),
                rng.standard_normal((64, 10)).astype(f32) * 0.1, np.zeros(10, f32), f32(0.3)]
    if name == "attention":
        return [rng.standard_normal((2, n, d)).astype(f32) for _ in range(3)]
    if name == "block":
        return [rng.standard_normal((n, d)).astype(f32), np.ones(d, f32),
                np.zeros(d, f32), rng.standard_normal((d, d)).astype(f32) * 0.2]
    if name == "embed_step":
        ids = rng.integers(-5, 5, n).astype(np.int32)
        return [rng.standard_normal((5, d)).astype(f32), ids,
                rng.standard_normal((n, d)).astype(f32), f32(0.5)]
    if name == "stats":
        return [rng.standard_normal((n, d))]
    if name == "integer_math":
        return [rng.integers(-50, 50, n), rng.integers(-4, 4, n)]
    return [rng.standard_normal(n).astype(f32)]


PROGRAM_NAMES = ("spec_train_step", "attention", "block", "embed_step", "stats", "integer_math")


@pytest.mark.parametrize("level", LEVELS, ids=lambda level: f"O{level}")
@pytest.mark.parametrize("name", PROGRAM_NAMES)
def test_programs(name: str, level: int) -> None:
    rng = np.random.default_rng(len(name))
    for n, d in ((0, 4), (1, 1), (7, 13), (13, 7), (1000, 16)):
        run_both(PROGRAMS, level, name, _program_arguments(name, {"N": n, "D": d}, rng))
