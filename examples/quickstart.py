"""Compile examples/mlp.tc and run its forward pass from Python, checked against NumPy.

python examples/quickstart.py
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

import tensorc

HERE = Path(__file__).parent


def reference_mlp(x, w1, b1, w2, b2):
    h = np.maximum(x @ w1 + b1, 0)
    z = h @ w2 + b2
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def main() -> None:
    started = time.perf_counter()
    target = "interp"
    module = tensorc.compile(HERE / "mlp.tc", target=target)
    print(
        f"compiled {HERE / 'mlp.tc'} for target={target} in {time.perf_counter() - started:.3f} s"
    )
    for name, signature in module.functions.items():
        print(f"  {name}: {signature}")

    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 64), dtype=np.float32)
    w1 = rng.standard_normal((64, 128), dtype=np.float32) * 0.1
    b1 = np.zeros(128, np.float32)
    w2 = rng.standard_normal((128, 10), dtype=np.float32) * 0.1
    b2 = np.zeros(10, np.float32)

    probabilities = module.mlp(x, w1, b1, w2, b2)
    expected = reference_mlp(x, w1, b1, w2, b2)
    error = float(np.max(np.abs(probabilities - expected)))
    print(
        f"mlp(x: {x.shape}) -> {probabilities.shape} {probabilities.dtype}; "
        f"rows sum to {probabilities.sum(axis=1).mean():.6f}; max |diff| vs NumPy {error:.2e}"
    )
    assert error < 1e-5
    print("predictions:", module.predict(x, w1, b1, w2, b2)[:10])


if __name__ == "__main__":
    main()
