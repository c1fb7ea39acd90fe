"""The CUDA backend's program corpus (shared by test_cuda_ptx, test_cuda_emulator and
test_cuda_gpu) and checks of the corpus itself.

Each `Case` is a small tensorc program in the style of the e2e suites: elementwise math and
casts, slices and broadcasts, row / column / full reductions (warp and block mode), softmax,
log-softmax and layer norm (row epilogues), matmuls with fused epilogues (transposed,
batched, f64, integer, bool), gathers and their gradients (scatters), concat / reshape /
constants, and the examples/mlp.tc training step. `inputs` draws arguments for given sizes;
`assert_matches` compares a backend's results with the interpreter's.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

import tensorc

ROOT = Path(__file__).resolve().parent.parent
MLP_SOURCE = (ROOT / "examples" / "mlp.tc").read_text()


@dataclass(frozen=True)
class Case:
    name: str
    source: str
    functions: tuple[str, ...] = ("f",)
    sizes: dict[str, int] = field(default_factory=lambda: {"N": 7, "M": 5})
    int_range: tuple[int, int] = (0, 4)

    @property
    def text(self) -> str:
        return textwrap.dedent(self.source).strip() + "\n"


def _case(name: str, source: str, **options) -> Case:
    return Case(name, source, **options)


CASES: list[Case] = [
    _case("affine", "def f(x: f32[N, M], w: f32[M], s: f32) -> f32[N, M] { return x * w + s }",
          sizes={"N": 9, "M": 12}),
    _case("math", """
        def f(x: f32[N, M]) -> f32[N, M] {
            return (exp(tanh(x)) + sigmoid(x) * gelu(x) - erf(x) + sin(x) * cos(x)
                    + gelu(x, approximate=true))
        }"""),
    _case("math_positive", """
        def f(x: f32[N, M]) -> f32[N, M] {
            a = abs(x) + 0.5
            return (log(a) + sqrt(a) + rsqrt(a) + log1p(a) + expm1(x) + pow(a, x) + floor(x)
                    + ceil(x) + sign(x) + square(x) - relu(x))
        }"""),
    _case("f64", """
        def f(x: f64[N, M], y: f64[N, M]) -> f64[N, M] {
            return maximum(x, y) / (abs(y) + 1.0) + minimum(x, y) + exp(x) * tanh(y)
        }"""),
    _case("integers", """
        def f(a: i32[N], b: i32[N]) -> (i32[N], i32[N], i32[N], i64[N], i32[N]) {
            return a // b, a % b, pow(a, 3), cast(a, i64) * cast(b, i64), abs(a) - maximum(a, b)
        }""", sizes={"N": 40}, int_range=(-6, 6)),
    _case("float_mod", """
        def f(x: f32[N], y: f32[N], z: f64[N]) -> (f32[N], f32[N], f64[N]) {
            return x % y, (x * 1000.0) // y, z % (z * 0.37 + 1.0)
        }""", sizes={"N": 50}),
    _case("bools", """
        def f(x: f32[N], y: f32[N]) -> (bool[N], f32[N], i32) {
            c = (x > y) and not (x < 0.0)
            return c or (y > 1.0), where(c, x, y), sum(c)
        }""", sizes={"N": 33}),
    _case("casts", """
        def f(x: f32[N]) -> (i32[N], f64[N], bool[N], f32[N]) {
            return cast(x * 10.0, i32), cast(x, f64), cast(x, bool), cast(cast(x * 3.0, i32), f32)
        }""", sizes={"N": 21}),
    _case("slices", """
        def f(x: f32[N, M]) -> (f32[N - 1, M - 2], f32[M, N], f32[N]) {
            return x[1:, 2:] * 2.0 + x[:-1, :-2], x.T + 1.0, x[:, 0] - x[:, -1]
        }""", sizes={"N": 6, "M": 9}),
    _case("outer", """
        def f(x: f32[N], y: f32[M]) -> f32[N, M] {
            return expand_dims(x, 1) * expand_dims(y, 0) + 1.0
        }""", sizes={"N": 13, "M": 8}),
    _case("sum_rows", "def f(x: f32[N, M]) -> f32[N] { return sum(x, axis=1) }",
          sizes={"N": 11, "M": 300}),
    _case("sum_columns", "def f(x: f32[N, M]) -> f32[M] { return sum(x, axis=0) }",
          sizes={"N": 50, "M": 45}),
    _case("reductions_static", """
        def f(x: f32[N, 10]) -> (f32[N], f32[N], f32[N], f32[10], i32[N]) {
            p = prod(x * 0.5 + 1.0, axis=1)
            c = sum(cast(x > 0.0, i32), axis=1)
            return max(x, axis=1), min(x, axis=-1), p, mean(x, axis=0), c
        }""", sizes={"N": 19}),
    _case("full_reductions", """
        def f(x: f32[N, M]) -> (f32, f32, f32, f64) {
            return sum(x), mean(x * x), max(x), sum(cast(x, f64))
        }""", sizes={"N": 23, "M": 17}),
    _case("var_logsumexp", """
        def f(x: f32[N, M]) -> (f32[N], f32[N], f32[M]) {
            return var(x, axis=1), logsumexp(x, axis=1), logsumexp(x, axis=0)
        }"""),
    _case("argmax", """
        def f(x: f32[N, M]) -> (i32[N], i32[M], i32) {
            return argmax(x, axis=1), argmin(x, axis=0), argmax(x)
        }"""),
    _case("softmax_static", "def f(x: f32[N, 10]) -> f32[N, 10] { return softmax(x, axis=-1) }",
          sizes={"N": 37}),
    _case("softmax_symbolic", """
        def f(x: f32[N, M]) -> (f32[N, M], f32[N, M], f32[N, M]) {
            return softmax(x, axis=1), log_softmax(x, axis=-1), softmax(x, axis=0)
        }""", sizes={"N": 6, "M": 70}),
    _case("layer_norm", """
        def f(x: f32[N, M], g: f32[M], b: f32[M]) -> f32[N, M] { return layer_norm(x, g, b) }
        """, sizes={"N": 5, "M": 96}),
    _case("layer_norm_static", """
        def f(x: f32[N, 64], g: f32[64], b: f32[64]) -> f32[N, 64] {
            return layer_norm(x, g, b, eps=1e-3)
        }""", sizes={"N": 10}),
    _case("matmul_epilogue", """
        def f(x: f32[N, K], w: f32[K, M], b: f32[M]) -> f32[N, M] { return relu(x @ w + b) }
        """, sizes={"N": 70, "K": 33, "M": 65}),
    _case("matmul_transposed", """
        def f(x: f32[K, N], w: f32[M, K]) -> (f32[N, M], f32[N, M]) {
            return x.T @ w.T, tanh(x.T @ w.T) * 2.0
        }""", sizes={"N": 20, "K": 17, "M": 9}),
    _case("matmul_batched", """
        def f(a: f32[B, N, K], b: f32[B, K, M], c: f32[K, M]) -> (f32[B, N, M], f32[B, N, M]) {
            return a @ b, a @ c
        }""", sizes={"B": 3, "N": 5, "K": 6, "M": 7}),
    _case("matvec", """
        def f(a: f32[N, K], v: f32[K]) -> (f32[N], f32, f32[K]) {
            return a @ v, dot(v, v), v @ transpose(a, [1, 0]) @ a
        }""", sizes={"N": 8, "K": 12}),
    _case("matmul_dtypes", """
        def f(a: f64[N, K], b: f64[K, M], c: i32[N, K], d: i32[K, M]) -> (f64[N, M], i32[N, M]) {
            return a @ b, c @ d
        }""", sizes={"N": 9, "K": 19, "M": 4}, int_range=(-3, 4)),
    _case("take", "def f(e: f32[V, D], i: i32[N]) -> f32[N, D] { return take(e, i, 0) }",
          sizes={"V": 6, "D": 5, "N": 9}, int_range=(-6, 6)),
    _case("take_along_axis", """
        def f(x: f32[N, M], i: i32[N, 1]) -> (f32[N, 1], f32[N]) {
            return take_along_axis(x, i, 1), take(x, i[:, 0] * 0, 1)[:, 0]
        }""", int_range=(-5, 5)),
    _case("cross_entropy", """
        def f(z: f32[N, 10], y: i32[N]) -> (f32[N], f32[N, 10], f32) {
            return cross_entropy(z, y), one_hot(y, 10), mse(z, one_hot(y, 10))
        }""", sizes={"N": 12}, int_range=(0, 10)),
    _case("scatter", """
        def f(e: f32[V, D], i: i32[N]) -> f32[V, D] {
            return grad(sum(take(e, i, 0) * 2.0), e)
        }""", sizes={"V": 6, "D": 5, "N": 9}, int_range=(-6, 6)),
    _case("scatter_along_axis", """
        def f(x: f32[N, M], i: i32[N, 1]) -> f32[N, M] {
            return grad(sum(take_along_axis(x, i, 1) * 3.0), x)
        }""", int_range=(-5, 5)),
    _case("concat_reshape", """
        def f(x: f32[N, M], y: f32[N, 3]) -> (f32[N, M + 3], f32[2, N, 3], f32[3, N], f32[N]) {
            return concat([x, y], 1), stack([y, y * 2.0], 0), reshape(y, [3, N]), x[:, 1]
        }"""),
    _case("constants", """
        def f(x: f32[N], y: f32[N, 3]) -> (f32[N], i32, f32[3], f32[3, N], f32[N]) {
            c = cast(arange(3), f32) * 2.0 + 1.0
            return x + cast(arange(N), f32), x.shape[0], c, reshape(y, [3, N]), x
        }"""),
    _case("mlp", MLP_SOURCE, functions=("mlp", "predict", "train_step"),
          sizes={"N": 37, "H": 70}, int_range=(0, 10)),
]
CASES_BY_NAME = {case.name: case for case in CASES}


def inputs(case: Case, signature, rng: np.random.Generator,
           sizes: dict[str, int] | None = None) -> list[np.ndarray]:
    """Arguments for `signature` with the case's sizes (floats normal, ints in int_range)."""
    env = dict(case.sizes if sizes is None else sizes)
    arrays = []
    for param in signature.params:
        shape = tuple(int(d) if d.isdigit() else env[d] for d in param.shape)
        if param.dtype in ("f32", "f64"):
            array = rng.standard_normal(shape).astype(np.float32 if param.dtype == "f32"
                                                      else np.float64)
        elif param.dtype == "bool":
            array = rng.random(shape) < 0.5
        else:
            low, high = case.int_range
            array = rng.integers(low, high, shape).astype(np.int32 if param.dtype == "i32"
                                                          else np.int64)
        arrays.append(array if shape else array.reshape(()))
    return arrays


def assert_matches(got, want, context: str = "") -> None:
    """`got` (a backend's results) agrees with the interpreter's `want`."""
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    assert len(got) == len(want), context
    for index, (g, w) in enumerate(zip(got, want)):
        where = f"{context} result {index}"
        g, w = np.asarray(g), np.asarray(w)
        assert g.dtype == w.dtype, f"{where}: dtype {g.dtype}, expected {w.dtype}"
        assert g.shape == w.shape, f"{where}: shape {g.shape}, expected {w.shape}"
        if g.dtype.kind == "f":
            tolerance = {"rtol": 2e-4, "atol": 2e-5} if g.dtype == np.float32 else {
                "rtol": 1e-9, "atol": 1e-11}
            np.testing.assert_allclose(g, w, equal_nan=True, err_msg=where, **tolerance)
        else:
            np.testing.assert_array_equal(g, w, err_msg=where)


_INTERP: dict[str, object] = {}


def interp_module(case: Case):
    if case.name not in _INTERP:
        _INTERP[case.name] = tensorc.compile(case.text, target="interp")
    return _INTERP[case.name]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_case_runs_on_the_interpreter(case: Case) -> None:
    module = interp_module(case)
    rng = np.random.default_rng(0)
    for name in case.functions:
        function = module[name] if hasattr(module, "__getitem__") else getattr(module, name)
        signature = module.functions[name]
        results = function(*inputs(case, signature, rng))
        assert results is not None


def test_case_names_are_unique() -> None:
    assert len(CASES_BY_NAME) == len(CASES)
