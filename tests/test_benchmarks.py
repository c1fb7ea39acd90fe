"""The benchmark harness (benchmarks/run.py) times only engines that compute the same thing:
every engine's results are checked against NumPy's before any timing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
WORKLOADS = ("x+1", "MLP", "matmul 256", "layer_norm", "softmax")


@pytest.fixture
def run_module(monkeypatch):
    """benchmarks/run.py, imported without the optional peers (torch, numba, JAX, PyTensor),
    which would otherwise load into the test process."""
    for name in ("torch", "numba_peers", "jax_peers", "pytensor_peers"):
        monkeypatch.setitem(sys.modules, name, None)  # `import name` raises ImportError
    monkeypatch.setitem(sys.modules, "run", None)  # recorded, so the import below is undone
    del sys.modules["run"]
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import run

    return run


def test_an_engine_that_computes_something_else_is_named(run_module):
    x = np.linspace(-3, 3, 64, dtype=np.float32)
    engines = {
        "numpy": lambda: np.tanh(x),
        "tensorc": lambda: np.tanh(x) + 1e-6,  # within tolerance
        "close_but_wrong": lambda: np.tanh(x) * 1.01,
        "wrong_shape": lambda: np.tanh(x)[:-1],
        "wrong_count": lambda: (np.tanh(x), x),
        "floor": lambda: x * 2,  # a different computation by design: not checked
    }
    assert run_module.disagreeing(engines) == ["close_but_wrong", "wrong_shape", "wrong_count"]


def test_tuples_of_results_are_compared_one_by_one(run_module):
    a, b = np.ones((3, 2), np.float32), np.float32(2.5)
    engines = {"numpy": lambda: (a, b), "tensorc": lambda: [a.copy(), np.array(2.5, np.float32)]}
    assert run_module.disagreeing(engines) == []
    engines["tensorc"] = lambda: (a, np.float32(2.6))
    assert run_module.disagreeing(engines) == ["tensorc"]


def test_benchmark_programs_agree_with_numpy():
    """tensorc's benchmark programs (and any peer installed) give NumPy's results."""
    finished = subprocess.run(
        [sys.executable, str(BENCHMARKS / "run.py"), "--check",
         "--only", ",".join(WORKLOADS)],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    verdicts = [line for line in finished.stdout.splitlines() if line.startswith(WORKLOADS)]
    assert len(verdicts) == 5, finished.stdout
    assert all(line.endswith(": agree") and "tensorc" in line for line in verdicts), verdicts
