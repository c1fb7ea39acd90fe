"""Accuracy and speed of the vectorisable math functions (tensorc.codegen.llvm_math*).

For each function and dtype: the max error in ulp against the correctly rounded result over a
dense sweep (uniformly spaced bit patterns over all finite values, dense ranges, and the
neighbourhoods of each function's thresholds), and ns/element over 16M elements for the
compiled 16-wide (float) / 8-wide (double) loop against NumPy (SciPy where NumPy has no such
function). References: float64 NumPy/SciPy for float; x87 long double for double, with the
worst points re-checked in mpmath, and mpmath (90 bits) throughout for erf and the GELUs.

    python benchmarks/math_accuracy.py             # the full sweep (a few minutes)
    python benchmarks/math_accuracy.py --quick     # 10x fewer points, no timing
    python benchmarks/math_accuracy.py exp tanh    # some functions only
    python benchmarks/math_accuracy.py --exhaustive sin   # every float32 (a few min each)
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from test_llvm_math import (  # noqa: E402  (the shared harness)
    BINARY_MATH,
    MPMATH_REFERENCES,
    UNARY_MATH,
    CompiledKernels,
    compile_kernels,
    host_has_avx512,
    mpmath_reference,
    pow_reference,
    pow_sweep,
    recheck_worst,
    reference,
    sweep,
    ulp_errors,
)

TIMING_ELEMENTS = 16 * 1024 * 1024
SQRT_HALF = math.sqrt(0.5)
GELU_C, GELU_K = 0.7978845608028654, 0.044715


def numpy_equivalents() -> dict[str, Callable[..., np.ndarray]]:
    from scipy import special

    return {
        "exp": np.exp, "expm1": np.expm1, "log": np.log, "log1p": np.log1p, "tanh": np.tanh,
        "sigmoid": special.expit, "softplus": lambda x: np.logaddexp(0, x),
        "erf": special.erf, "erfc": special.erfc,
        "gelu": lambda x: 0.5 * x * (1 + special.erf(x * x.dtype.type(SQRT_HALF))),
        "gelu_tanh": lambda x: 0.5 * x * (1 + np.tanh(x.dtype.type(GELU_C)
                                                      * (x + x.dtype.type(GELU_K) * x**3))),
        "sin": np.sin, "cos": np.cos, "sqrt": np.sqrt, "rsqrt": lambda x: 1 / np.sqrt(x),
        "floor": np.floor, "ceil": np.ceil, "abs": np.abs, "pow": np.power,
    }


def _chunked_mpmath(name: str, x: np.ndarray, workers: int) -> np.ndarray:
    chunks = np.array_split(x, workers * 8)
    with ProcessPoolExecutor(workers) as pool:
        parts = list(pool.map(mpmath_reference, [name] * len(chunks), chunks))
    return np.concatenate(parts)


def measure_unary(kernels: CompiledKernels, name: str, scale: float,
                  workers: int) -> tuple[float, int, float]:
    """(max ulp error, points, worst input)."""
    dtype = kernels.dtype
    if dtype == "float32":
        x = sweep(name, dtype, int(2_000_000 * scale), int(200_000 * scale), 1000)
        ref = reference(name, dtype, x)
    elif name in MPMATH_REFERENCES:
        x = sweep(name, dtype, int(60_000 * scale), int(12_000 * scale), 100)
        ref = _chunked_mpmath(name, x, workers)
    else:
        x = sweep(name, dtype, int(600_000 * scale), int(60_000 * scale), 500)
        ref = reference(name, dtype, x)
    y = kernels.run(name, x)
    errors = ulp_errors(y, ref, dtype)
    if dtype == "float64" and name not in MPMATH_REFERENCES:
        errors = recheck_worst(name, x, y, errors, count=50)
    worst = int(np.argmax(errors))
    return float(errors[worst]), len(x), float(x[worst])


def measure_pow(kernels: CompiledKernels, scale: float) -> tuple[float, int, float]:
    dtype = kernels.dtype
    count = int((2_000_000 if dtype == "float32" else 600_000) * scale)
    base, exponent = pow_sweep(dtype, count)
    y = kernels.run("pow", base, exponent)
    errors = ulp_errors(y, pow_reference(dtype, base, exponent), dtype)
    worst = int(np.argmax(errors))
    return float(errors[worst]), count, float(base[worst])


def exhaustive_float(kernels: CompiledKernels, name: str) -> tuple[float, int, float]:
    """(max ulp error, points, worst input) over every float32 bit pattern, NaNs included."""
    chunk = 1 << 24
    out = np.empty(chunk, dtype=np.float32)
    worst, worst_input = 0.0, math.nan
    for start in range(0, 1 << 32, chunk):
        x = np.arange(start, start + chunk, dtype=np.uint64).astype(np.uint32).view(np.float32)
        kernels.run_into(name, out, x)
        errors = ulp_errors(out, reference(name, "float32", x), "float32")
        index = int(np.argmax(errors))
        if errors[index] > worst:
            worst, worst_input = float(errors[index]), float(x[index])
    return worst, 1 << 32, worst_input


def timing_inputs(name: str, dtype: str) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    if name == "pow":
        return [rng.uniform(0, 10, TIMING_ELEMENTS).astype(dtype),
                rng.uniform(-5, 5, TIMING_ELEMENTS).astype(dtype)]
    if name in ("log", "log1p", "sqrt", "rsqrt"):
        return [rng.uniform(0, 100, TIMING_ELEMENTS).astype(dtype)]
    return [rng.uniform(-10, 10, TIMING_ELEMENTS).astype(dtype)]


def best_time(function: Callable[[], object], repeats: int = 5) -> float:
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def ns_per_element(kernels: CompiledKernels, name: str) -> tuple[float, float]:
    """(tensorc, numpy) ns/element, single thread."""
    inputs = timing_inputs(name, kernels.dtype)
    out = np.empty_like(inputs[0])
    ours = best_time(lambda: kernels.run_into(name, out, *inputs))
    with np.errstate(all="ignore"):
        theirs = best_time(lambda: numpy_equivalents()[name](*inputs))
    return ours / TIMING_ELEMENTS * 1e9, theirs / TIMING_ELEMENTS * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("functions", nargs="*", help="default: all")
    parser.add_argument("--quick", action="store_true", help="10x fewer points, no timing")
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--workers", type=int, default=2, help="processes for mpmath")
    parser.add_argument("--exhaustive", action="store_true",
                        help="float32 only: every bit pattern, no timing")
    args = parser.parse_args()
    names = args.functions or list(UNARY_MATH) + list(BINARY_MATH)
    scale = 0.1 if args.quick else 1.0
    print(f"{'function':10} {'dtype':8} {'max ulp':>8} {'points':>9} {'ns/elem':>8} "
          f"{'numpy':>8}  worst input")
    dtypes = ["float32"] if args.exhaustive else args.dtypes.split(",")
    for dtype in dtypes:
        kernels = compile_kernels(dtype, ldexp=host_has_avx512())  # as the CPU backend does
        for name in names:
            if args.exhaustive:
                if name in BINARY_MATH:
                    continue
                error, points, worst = exhaustive_float(kernels, name)
            elif name in BINARY_MATH:
                error, points, worst = measure_pow(kernels, scale)
            else:
                error, points, worst = measure_unary(kernels, name, scale, args.workers)
            skip_timing = args.quick or args.exhaustive
            ours, theirs = (math.nan, math.nan) if skip_timing else ns_per_element(kernels, name)
            print(f"{name:10} {dtype:8} {error:8.2f} {points:9d} {ours:8.2f} {theirs:8.2f}  "
                  f"{worst!r}", flush=True)


if __name__ == "__main__":
    main()
