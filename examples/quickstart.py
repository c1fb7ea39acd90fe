"""Compile examples/mlp.tc from the command line, load the artifact with the runtime alone, run it.

    python examples/quickstart.py

Step 1 is what a build system would run (`tensorc compile`); step 2 is all a deployment needs:
`tensorc_runtime` and NumPy (no lark, no llvmlite). The result is checked against NumPy.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tensorc_runtime

HERE = Path(__file__).parent


def reference_mlp(x, w1, b1, w2, b2):
    h = np.maximum(x @ w1 + b1, 0)
    z = h @ w2 + b2
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def main() -> None:
    artifact = Path(tempfile.mkdtemp(prefix="tensorc-quickstart-")) / "mlp.so"
    source = HERE / "mlp.tc"
    command = [sys.executable, "-m", "tensorc", "compile", str(source), "-o", str(artifact)]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    seconds = time.perf_counter() - started
    print(f"$ tensorc compile examples/mlp.tc -o {artifact}   ({seconds:.2f} s)")

    model = tensorc_runtime.load(artifact)
    print(f"loaded {artifact.name}: target={model.target}")
    for signature in model.functions.values():
        print(f"  {signature}")

    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 64), dtype=np.float32)
    w1 = rng.standard_normal((64, 128), dtype=np.float32) * 0.1
    b1 = np.zeros(128, np.float32)
    w2 = rng.standard_normal((128, 10), dtype=np.float32) * 0.1
    b2 = np.zeros(10, np.float32)

    probabilities = model.mlp(x, w1, b1, w2, b2)
    error = float(np.max(np.abs(probabilities - reference_mlp(x, w1, b1, w2, b2))))
    print(
        f"mlp(x: {x.shape}) -> {probabilities.shape} {probabilities.dtype}; rows sum to "
        f"{probabilities.sum(axis=1).mean():.6f}; max |diff| vs NumPy {error:.2e}"
    )
    assert error < 1e-5
    print("predictions:", model.predict(x, w1, b1, w2, b2)[:10])


if __name__ == "__main__":
    main()
