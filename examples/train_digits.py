"""Train the MLP of examples/mlp.tc (64 -> 128 -> 10) on scikit-learn's bundled digits.

    python examples/train_digits.py [--target cpu|interp] [--epochs 40]

One compiled `train_step` computes the loss, its gradients (the autodiff pass expands `grad`)
and the SGD update. `load_digits` ships with scikit-learn: no download. Reaches >= 95% test
accuracy; prints the loss per epoch and the final accuracy.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import tensorc

HERE = Path(__file__).parent


def fastest_target() -> str:
    """The native CPU target when this tensorc has it, else the reference interpreter."""
    try:
        tensorc.compile("def probe(x: f32) -> f32 { return x }", target="cpu")
    except NotImplementedError:
        return "interp"
    return "cpu"


def load_data(seed: int):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int32)
    return train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y)


def init_params(rng: np.random.Generator, hidden: int = 128):
    w1 = (rng.standard_normal((64, hidden)) * np.sqrt(2 / 64)).astype(np.float32)
    w2 = (rng.standard_normal((hidden, 10)) * np.sqrt(2 / hidden)).astype(np.float32)
    return [w1, np.zeros(hidden, np.float32), w2, np.zeros(10, np.float32)]


def train(target: str, epochs: int, batch: int = 32, lr: float = 0.1, seed: int = 0) -> float:
    started = time.perf_counter()
    model = tensorc.compile(HERE / "mlp.tc", target=target)
    print(f"compiled examples/mlp.tc for target={target} in {time.perf_counter() - started:.2f} s")
    x_train, x_test, y_train, y_test = load_data(seed)
    rng = np.random.default_rng(seed)
    params = init_params(rng)
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(x_train))
        losses = []
        for start in range(0, len(order), batch):
            rows = order[start : start + batch]
            *params, loss = model.train_step(x_train[rows], y_train[rows], *params, lr)
            losses.append(float(loss))
        if epoch == 1 or epoch % 10 == 0 or epoch == epochs:
            print(f"epoch {epoch:3d}  loss {np.mean(losses):.4f}")
    elapsed = time.perf_counter() - started
    predictions = model.predict(x_test, *params)
    accuracy = float(np.mean(predictions == y_test))
    print(f"trained {epochs} epochs in {elapsed:.2f} s; test accuracy {accuracy:.4f}")
    return accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=("cpu", "interp"), default=None)
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args()
    accuracy = train(args.target or fastest_target(), args.epochs)
    assert accuracy >= 0.95, f"test accuracy {accuracy:.4f} is below 0.95"


if __name__ == "__main__":
    main()
