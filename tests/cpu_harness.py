"""Shared helpers of the CPU backend tests (`test_cpu_*.py`): build a source for `cpu` and for
`interp` at one opt level, call both, compare.

Tolerances, per result dtype and kind of op (`compare(..., kind=...)`):

    dtype     "elementwise" (rtol, atol)   "accumulating" (rtol, atol)
    f16       2e-3, 2e-3                   5e-3, 5e-3
    f32       1e-5, 1e-6                   2e-4, 2e-5
    f64       1e-12, 1e-13                 1e-9, 1e-11
    ints, bool  exact                      exact

"elementwise" covers fused elementwise chains: the CPU backend's vectorised exp, log, tanh,
erf, sin... are within 2 ulp of the correctly rounded result (tensorc/codegen/llvm_math.py),
NumPy's own within about 1 ulp. "accumulating" covers sums, means, products, matmuls,
softmax and layer norms: the backend reassociates float sums (vector lanes, unrolled partial
sums, packed GEMM blocks), so they differ from NumPy's pairwise sums by normal rounding error.
NaN compares equal to NaN.

Artifacts go to a cache directory private to the test session (TENSORC_CACHE_DIR), so that
every run compiles what it tests; set TENSORC_CACHE_DIR to reuse one between runs.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import textwrap
from collections.abc import Mapping, Sequence

import numpy as np
import pytest

if "TENSORC_CACHE_DIR" not in os.environ:
    _CACHE = tempfile.mkdtemp(prefix="tensorc-test-cache-")
    os.environ["TENSORC_CACHE_DIR"] = _CACHE
    atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)

import tensorc  # noqa: E402

LEVELS = (0, 3)
NUMPY = {
    "bool": np.bool_,
    "i32": np.int32,
    "i64": np.int64,
    "f16": np.float16,
    "f32": np.float32,
    "f64": np.float64,
}
TOLERANCES: dict[str, dict[np.dtype, tuple[float, float]]] = {
    "elementwise": {
        np.dtype(np.float16): (2e-3, 2e-3),
        np.dtype(np.float32): (1e-5, 1e-6),
        np.dtype(np.float64): (1e-12, 1e-13),
    },
    "accumulating": {
        np.dtype(np.float16): (5e-3, 5e-3),
        np.dtype(np.float32): (2e-4, 2e-5),
        np.dtype(np.float64): (1e-9, 1e-11),
    },
}

_BUILT: dict[tuple[str, str, int], object] = {}


def build(source: str, level: int, target: str = "cpu"):
    """`source` compiled for `target` at `level`, once per test session."""
    text = textwrap.dedent(source)
    key = (text, target, level)
    if key not in _BUILT:
        _BUILT[key] = tensorc.compile(text, target=target, opt_level=level)
    return _BUILT[key]


def as_tuple(value) -> tuple:
    return value if isinstance(value, tuple) else (value,)


def compare(got, want, kind: str = "accumulating", what: str = "", scale: float = 1.0) -> None:
    """`got` has `want`'s type, shape and values (within `kind`'s tolerance; `scale`
    multiplies the absolute tolerance, for sums of many terms)."""
    got, want = as_tuple(got), as_tuple(want)
    assert len(got) == len(want), f"{what}: {len(got)} results, expected {len(want)}"
    for index, (g, w) in enumerate(zip(got, want)):
        label = f"{what} result {index}"
        assert isinstance(g, np.ndarray), f"{label} is a {type(g).__name__}"
        assert g.dtype == w.dtype, f"{label}: dtype {g.dtype}, expected {w.dtype}"
        assert g.shape == w.shape, f"{label}: shape {g.shape}, expected {w.shape}"
        if g.dtype.kind == "f":
            rtol, atol = TOLERANCES[kind][g.dtype]
            np.testing.assert_allclose(
                g.astype(np.float64), w.astype(np.float64), rtol=rtol, atol=atol * scale,
                equal_nan=True, err_msg=label,
            )
        else:
            np.testing.assert_array_equal(g, w, err_msg=label)


def run_both(
    source: str, level: int, function: str, args: Sequence, kind: str = "accumulating",
    scale: float = 1.0,
):
    """Call `function` compiled for cpu and for the interpreter; compare; return cpu's. When
    the interpreter raises IndexError or ValueError, the cpu module must raise it too."""
    cpu = build(source, level)
    reference = build(source, level, target="interp")
    try:
        want = getattr(reference, function)(*args)
    except (IndexError, ValueError) as error:
        with pytest.raises(type(error)):
            getattr(cpu, function)(*args)
        return None
    got = getattr(cpu, function)(*args)
    compare(got, want, kind, f"{function} at -O{level}", scale)
    return got


def sample(
    dtype: str, shape: Sequence[int], rng: np.random.Generator, low: float = -3.0,
    high: float = 3.0,
) -> np.ndarray:
    kind = np.dtype(NUMPY[dtype]).kind
    if kind == "b":
        return rng.random(shape) < 0.5
    if kind == "i":
        return rng.integers(int(low), int(high) + 1, size=shape).astype(NUMPY[dtype])
    return rng.uniform(low, high, size=shape).astype(NUMPY[dtype])


def arguments(
    signature, env: Mapping[str, int], rng: np.random.Generator, **ranges: tuple[float, float]
) -> list[np.ndarray]:
    """Random arguments for a compiled function's signature, with symbolic sizes from `env`;
    `ranges` gives (low, high) per parameter name (default -3..3)."""
    values = []
    for param in signature.params:
        shape = tuple(int(eval(str(d), {"__builtins__": {}}, dict(env))) for d in param.shape)
        low, high = ranges.get(param.name, (-3.0, 3.0))
        values.append(sample(param.dtype, shape, rng, low, high))
    return values
