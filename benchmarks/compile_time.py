"""Compile time against program size: programs of about 1k, 2k and 4k tc ops through -O2,
and the same programs differentiated (`grad(loss, w)`: autodiff triples the IR).

    python benchmarks/compile_time.py

Prints seconds per 1k ops (of the frontend's IR) for the frontend and for the -O2 pipeline;
no pass may be quadratic, so the per-1k figure should stay flat (the issue's bar: the 4k-op
program under 4 s).
"""

from __future__ import annotations

import time

from tensorc.frontend import compile_source
from tensorc.passes import PassManager, pipeline_for


def make_program(statements: int, gradient: bool = False) -> str:
    """A layered program mixing elementwise work, broadcasts, reductions and matmuls; with
    `gradient`, it returns the gradient of its result with respect to `w`."""
    result = "f32[16, 16]" if gradient else "f32"
    lines = [f"def big(x: f32[N, 16], w: f32[16, 16], b: f32[16]) -> {result} {{", "    h0 = x"]
    for i in range(1, statements + 1):
        prev = f"h{i - 1}"
        kind = i % 4
        if kind == 0:
            lines.append(f"    h{i} = relu({prev} @ w + b)")
        elif kind == 1:
            lines.append(f"    h{i} = tanh({prev}) * 0.5 + {prev}")
        elif kind == 2:
            lines.append(f"    h{i} = {prev} - mean({prev}, axis=-1, keepdims=true)")
        else:
            lines.append(f"    h{i} = sigmoid({prev}) * b + exp(-abs({prev}))")
    loss = f"sum(h{statements})"
    lines.append(f"    return grad({loss}, w)" if gradient else f"    return {loss}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def measure(statements: int, gradient: bool = False) -> tuple[int, float, float]:
    source = make_program(statements, gradient)
    started = time.perf_counter()
    module = compile_source(source, "big.tc")
    frontend = time.perf_counter() - started
    ops = sum(1 for _ in module.walk())
    started = time.perf_counter()
    PassManager(pipeline_for(2), verify_each=False).run(module)
    return ops, frontend, time.perf_counter() - started


def main() -> None:
    measure(50)  # warm up lark and the pass registry
    for gradient in (False, True):
        print("with grad(loss, w):" if gradient else "forward:")
        print(f"{'tc ops':>8} {'frontend s':>11} {'-O2 s':>8} {'total s':>8} {'s per 1k ops':>13}")
        for statements in (250, 500, 1000):
            ops, frontend, passes = measure(statements, gradient)
            total = frontend + passes
            per_1k = 1000 * total / ops
            print(f"{ops:>8} {frontend:>11.3f} {passes:>8.3f} {total:>8.3f} {per_1k:>13.3f}")


if __name__ == "__main__":
    main()
