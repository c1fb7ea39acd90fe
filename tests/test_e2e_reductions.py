"""End-to-end tests of the reductions, the neural-network built-ins and linear algebra
(SPEC §1.5), through `tensorc.compile(..., target="interp")`, checked against independent
NumPy computations in float64, at opt levels 0 and 2."""

from __future__ import annotations

import math
import textwrap

import numpy as np
import pytest
from e2e_support import LEVELS, NP, build, call  # noqa: F401

import tensorc

# ----- helpers (the shared ones are in e2e_support.py) ---------------------------------------

# reductions accumulate, so their tolerances are looser than one rounding
TOL = {
    np.dtype(np.float16): (1e-2, 5e-2),
    np.dtype(np.float32): (1e-5, 1e-5),
    np.dtype(np.float64): (1e-11, 1e-12),
}





def check(got, expected, dtype=None, rtol=None, atol=None, what: str = "") -> None:
    """`got` is an ndarray of `dtype` (default: expected's), `expected`'s shape and values."""
    expected = np.asarray(expected)
    want = np.dtype(NP.get(dtype, dtype)) if dtype is not None else expected.dtype
    prefix = f"{what}: " if what else ""
    assert isinstance(got, np.ndarray), f"{prefix}result is a {type(got).__name__}"
    assert got.dtype == want, f"{prefix}dtype {got.dtype}, expected {want}"
    assert got.shape == expected.shape, f"{prefix}shape {got.shape}, expected {expected.shape}"
    if want.kind == "f":
        r, a = TOL[want]
        np.testing.assert_allclose(
            got.astype(np.float64),
            expected.astype(np.float64),
            rtol=r if rtol is None else rtol,
            atol=a if atol is None else atol,
            equal_nan=True,
            err_msg=prefix,
        )
    else:
        np.testing.assert_array_equal(got, expected.astype(want), err_msg=prefix)


def sample(dtype: str, shape, low: float = -3.0, high: float = 3.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    kind = np.dtype(NP[dtype]).kind
    if kind == "b":
        return rng.random(shape) < 0.5
    if kind == "i":
        return rng.integers(math.ceil(low), math.floor(high) + 1, size=shape).astype(NP[dtype])
    return rng.uniform(low, high, size=shape).astype(NP[dtype])


def compile_error(source: str) -> tensorc.CompileError:
    with pytest.raises(tensorc.CompileError) as caught:
        tensorc.compile(textwrap.dedent(source), target="interp")
    assert caught.value.diagnostics, "a CompileError carries at least one diagnostic"
    return caught.value


def logsumexp64(x, axis=None, keepdims=False):
    x = np.asarray(x, dtype=np.float64)
    m = np.max(x, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


# ----- sum mean max min prod ------------------------------------------------------------------

# (call arguments after x, axis for NumPy, keepdims)
AXIS_VARIANTS = [
    ("", None, False),
    (", keepdims=true", None, True),
    (", axis=0", 0, False),
    (", 1", 1, False),
    (", axis=-1", 2, False),
    (", axis=-2, keepdims=true", 1, True),
    (", axis=[0, 2]", (0, 2), False),
    (", axis=[-1, 0], keepdims=true", (0, 2), True),
    (", [1, 2], true", (1, 2), True),
    (", axis=[0, 1, 2]", None, False),
    (", axis=-3, keepdims=false", 0, False),
]


def _reduction_program(name: str, dtype: str) -> str:
    results = ", ".join(f"{name}(x{args})" for args, _, _ in AXIS_VARIANTS)
    return f"def f(x: {dtype}[A, B, C]) {{ return {results} }}"


REDUCTIONS = {
    # name -> (NumPy reduction in float64, result dtype for each argument dtype, sample range)
    "sum": (np.sum, {"bool": "i32"}, (-3, 3)),
    "mean": (np.mean, {"i32": "f32", "i64": "f32", "bool": "f32"}, (-3, 3)),
    "max": (np.max, {}, (-3, 3)),
    "min": (np.min, {}, (-3, 3)),
    "prod": (np.prod, {}, (-2, 2)),
}
REDUCTION_CASES = [
    (name, dtype)
    for name in REDUCTIONS
    for dtype in ["f16", "f32", "f64", "i32", "i64", "bool"]
    if not (dtype == "bool" and name == "prod") and not (dtype == "f16" and name == "prod")
]


@pytest.mark.parametrize(("name", "dtype"), REDUCTION_CASES)
def test_reduction_axes_and_keepdims(level, name, dtype):
    ref, result_dtypes, (low, high) = REDUCTIONS[name]
    if name == "prod" and dtype in ("f32", "f64"):
        low, high = 0.5, 1.5
    x = sample(dtype, (2, 3, 4), low, high, seed=7)
    results = call(level, _reduction_program(name, dtype), x)
    assert len(results) == len(AXIS_VARIANTS)
    result_dtype = result_dtypes.get(dtype, dtype)
    source = x.astype(np.int64) if dtype == "bool" and name != "mean" else x
    for got, (args, axis, keepdims) in zip(results, AXIS_VARIANTS):
        data = source if name in ("max", "min") else source.astype(np.float64)
        expected = ref(data, axis=axis, keepdims=keepdims)
        if name in ("max", "min") and dtype == "bool":
            expected = expected.astype(bool)
        check(got, expected, result_dtype, what=f"{name}(x{args})")


def test_sum_of_bool_counts(level):
    x = np.array([[True, True, False], [True, True, True]])
    total, rows = call(level, "def f(x: bool[N, M]) { return sum(x), sum(x, axis=1) }", x)
    check(total, np.array(5), "i32")
    check(rows, np.array([2, 3]), "i32")


def test_mean_of_ints_is_f32(level):
    x = np.array([[1, 2], [3, 5]], dtype=np.int64)
    got = call(level, "def f(x: i64[N, M]) { return mean(x), mean(x, 0) }", x)
    check(got[0], np.array(2.75), "f32")
    check(got[1], np.array([2.0, 3.5]), "f32")


def test_mean_of_a_slice_empty_in_two_axes_is_nan(level):
    """The count is (N-3)*(M-3) with each factor clamped at 0: with N = M = 1 it is 0, not 4."""
    src = "def f(x: f32[N, M]) { y = x[3:, 3:]; return mean(y), mean(y, 1) }"
    with np.errstate(invalid="ignore"):
        whole, rows = call(level, src, np.ones((1, 1), np.float32))
        assert np.isnan(whole) and rows.shape == (0,)
        whole, rows = call(level, src, np.ones((5, 4), np.float32))
    assert whole == 1.0 and rows.tolist() == [1.0, 1.0]


def test_reductions_over_empty_axes(level):
    x = np.zeros((0, 3), dtype=np.float32)
    src = """
    def f(x: f32[N, M]) {
        return sum(x), sum(x, 0), prod(x, 0), mean(x, 0), max(x, axis=1), sum(x, 1, true)
    }
    """
    s, s0, p0, m0, mx1, s1 = call(level, src, x)
    check(s, np.array(0.0), "f32")
    check(s0, np.zeros(3), "f32")
    check(p0, np.ones(3), "f32")
    check(m0, np.full(3, np.nan), "f32")
    check(mx1, np.zeros(0), "f32")
    check(s1, np.zeros((0, 1)), "f32")
    i = np.zeros((2, 0), dtype=np.int32)
    si, pi = call(level, "def f(x: i32[N, M]) { return sum(x, -1), prod(x, axis=-1) }", i)
    check(si, np.zeros(2), "i32")
    check(pi, np.ones(2), "i32")


def test_reductions_size_one_and_static(level):
    x = np.array([[2.5]], dtype=np.float64)
    src = """
    def f(x: f64[1, 1]) -> (f64, f64[1], f64[1, 1]) {
        return sum(x), max(x, 0), min(x, [0, 1], keepdims=true)
    }
    """
    a, b, c = call(level, src, x)
    check(a, np.array(2.5), "f64")
    check(b, np.array([2.5]), "f64")
    check(c, np.array([[2.5]]), "f64")


def test_reduction_bad_axis_is_a_compile_error():
    compile_error("def f(x: f32[N, M]) { return sum(x, axis=2) }")
    compile_error("def f(x: f32[N, M]) { return mean(x, axis=-3) }")


# ----- argmax argmin --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["f16", "f32", "f64", "i32", "i64"])
@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_argmax_argmin(level, name, dtype):
    x = sample(dtype, (3, 5), 0, 2, seed=8)
    if dtype.startswith("f"):
        x = np.round(x)  # ties, so that "first occurrence" is tested
    src = f"""
    def f(x: {dtype}[N, M]) {{
        a = {name}(x)
        b = {name}(x, axis=0)
        return a, b, {name}(x, -1), {name}(x, axis=1, keepdims=true), {name}(x, keepdims=true)
    }}
    """
    whole, a0, a1, a1k, wholek = call(level, src, x)
    ref = getattr(np, name)
    check(whole, np.array(ref(x)), "i32", what="no axis")
    check(a0, ref(x, axis=0), "i32", what="axis=0")
    check(a1, ref(x, axis=-1), "i32", what="axis=-1")
    check(a1k, ref(x, axis=1, keepdims=True), "i32", what="axis=1 keepdims")
    assert wholek.dtype == np.int32 and wholek.size == 1
    assert wholek.reshape(()) == ref(x)


def test_argmax_first_occurrence(level):
    x = np.array([[1, 3, 3, 0], [2, 2, 2, 2], [0, 0, 5, 5]], dtype=np.int32)
    mx, mn = call(level, "def f(x: i32[N, M]) { return argmax(x, 1), argmin(x, 1) }", x)
    check(mx, np.array([1, 0, 2]), "i32")
    check(mn, np.array([3, 0, 0]), "i32")


# ----- logsumexp, var ---------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["f32", "f64", "i32"])
def test_logsumexp(level, dtype):
    x = sample(dtype, (2, 3, 4), -3, 3, seed=9)
    src = f"""
    def f(x: {dtype}[A, B, C]) {{
        a = logsumexp(x)
        return a, logsumexp(x, axis=-1), logsumexp(x, axis=[0, 2]), logsumexp(x, 1, keepdims=true)
    }}
    """
    a, b, c, d = call(level, src, x)
    result = "f32" if dtype == "i32" else dtype
    check(a, logsumexp64(x), result)
    check(b, logsumexp64(x, axis=-1), result)
    check(c, logsumexp64(x, axis=(0, 2)), result)
    check(d, logsumexp64(x, axis=1, keepdims=True), result)


def test_logsumexp_huge_inputs_do_not_overflow(level):
    x = np.array([[1000.0, 1001.0, 1002.0], [-1000.0, -1001.0, -1002.0]], dtype=np.float32)
    got = call(level, "def f(x: f32[N, M]) { return logsumexp(x, axis=1) }", x)
    check(got, logsumexp64(x, axis=1), "f32")
    assert np.isfinite(got).all()


@pytest.mark.parametrize("dtype", ["f32", "f64", "i64"])
def test_var(level, dtype):
    x = sample(dtype, (3, 4), -3, 3, seed=10)
    src = f"""
    def f(x: {dtype}[N, M]) {{
        return var(x), var(x, axis=0), var(x, axis=-1, keepdims=true), var(x, [0, 1])
    }}
    """
    a, b, c, d = call(level, src, x)
    result = "f32" if dtype == "i64" else dtype
    x64 = x.astype(np.float64)
    check(a, np.var(x64), result)
    check(b, np.var(x64, axis=0), result)
    check(c, np.var(x64, axis=-1, keepdims=True), result)
    check(d, np.var(x64), result)


# ----- softmax, log_softmax ---------------------------------------------------------------


def softmax64(x, axis):
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax64(x, axis):
    x = np.asarray(x, dtype=np.float64)
    return x - logsumexp64(x, axis=axis, keepdims=True)


@pytest.mark.parametrize("dtype", ["f16", "f32", "f64", "i32"])
def test_softmax_and_log_softmax(level, dtype):
    x = sample(dtype, (2, 3, 4), -3, 3, seed=11)
    src = f"""
    def f(x: {dtype}[A, B, C]) {{
        a = softmax(x); b = softmax(x, axis=0); c = softmax(x, 1)
        return a, b, c, log_softmax(x), log_softmax(x, axis=-3), log_softmax(x, axis=-2)
    }}
    """
    results = call(level, src, x)
    result = "f32" if dtype == "i32" else dtype
    expected = [
        softmax64(x, -1),
        softmax64(x, 0),
        softmax64(x, 1),
        log_softmax64(x, -1),
        log_softmax64(x, 0),
        log_softmax64(x, 1),
    ]
    for index, (got, want) in enumerate(zip(results, expected)):
        check(got, want, result, what=f"result {index}")


def test_softmax_huge_inputs(level):
    x = np.array([[1000.0, 1001.0, 1002.0], [-1e4, -1e4 + 1, -1e4 + 2], [0.0, 0.0, 89.0]],
                 dtype=np.float32)
    s, ls = call(level, "def f(x: f32[N, M]) { return softmax(x), log_softmax(x) }", x)
    assert np.isfinite(s).all() and np.isfinite(ls).all()
    check(s, softmax64(x, -1), "f32")
    check(ls, log_softmax64(x, -1), "f32")


def test_softmax_empty_and_unit(level):
    src = "def f(x: f32[N, M]) { return softmax(x, axis=-1) }"
    check(call(level, src, np.zeros((0, 3), np.float32)), np.zeros((0, 3)), "f32")
    check(call(level, src, np.array([[5.0], [-3.0]], np.float32)), np.ones((2, 1)), "f32")


# ----- layer_norm, cross_entropy, mse -----------------------------------------------------


def layer_norm64(x, gamma, beta, eps):
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_layer_norm(level, dtype):
    x = sample(dtype, (3, 5), -0.05, 0.05, seed=12)  # a small variance, so that eps matters
    g = sample(dtype, (5,), 0.5, 1.5, seed=13)
    b = sample(dtype, (5,), -1, 1, seed=14)
    src = f"""
    def f(x: {dtype}[N, D], g: {dtype}[D], b: {dtype}[D]) {{
        return layer_norm(x, g, b), layer_norm(x, g, b, eps=0.01), layer_norm(x, g, b, 0.5)
    }}
    """
    default, small, large = call(level, src, x, g, b)
    check(default, layer_norm64(x, g, b, 1e-5), dtype, rtol=1e-4 if dtype == "f32" else None)
    check(small, layer_norm64(x, g, b, 0.01), dtype)
    check(large, layer_norm64(x, g, b, 0.5), dtype)
    assert not np.allclose(small, large)


def test_layer_norm_rank3_static(level):
    x = sample("f32", (2, 3, 4), seed=15)
    g, b = np.ones(4, np.float32), np.zeros(4, np.float32)
    src = """
    def f(x: f32[2, 3, 4], g: f32[4], b: f32[4]) -> f32[2, 3, 4] { return layer_norm(x, g, b) }
    """
    check(call(level, src, x, g, b), layer_norm64(x, g, b, 1e-5), "f32", rtol=1e-4, atol=1e-4)


def cross_entropy64(logits, labels):
    logits = np.asarray(logits, dtype=np.float64)
    return logsumexp64(logits, axis=-1) - logits[np.arange(len(labels)), labels]


@pytest.mark.parametrize("label_dtype", ["i32", "i64"])
@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_cross_entropy(level, dtype, label_dtype):
    logits = sample(dtype, (4, 3), seed=16)
    labels = np.array([0, 2, 1, 2], dtype=NP[label_dtype])
    src = f"""
    def f(z: {dtype}[N, C], y: {label_dtype}[N]) {{
        return cross_entropy(z, y), mean(cross_entropy(logits=z, labels=y))
    }}
    """
    per, avg = call(level, src, logits, labels)
    check(per, cross_entropy64(logits, labels), dtype)
    check(avg, np.mean(cross_entropy64(logits, labels)), dtype)


def test_cross_entropy_huge_logits_and_empty(level):
    src = "def f(z: f32[N, C], y: i32[N]) { return cross_entropy(z, y) }"
    z = np.array([[1000.0, 0.0, -1000.0], [0.0, 2000.0, 1000.0]], dtype=np.float32)
    y = np.array([2, 0], dtype=np.int32)
    got = call(level, src, z, y)
    assert np.isfinite(got).all()
    check(got, cross_entropy64(z, y), "f32")
    check(call(level, src, np.zeros((0, 3), np.float32), np.zeros(0, np.int32)),
          np.zeros(0), "f32")


@pytest.mark.parametrize("bad", [3, 7, 2**30])
def test_cross_entropy_bad_label_raises_index_error(level, bad):
    src = "def f(z: f32[N, C], y: i32[N]) { return cross_entropy(z, y) }"
    z = np.zeros((2, 3), np.float32)
    with pytest.raises(IndexError):
        call(level, src, z, np.array([0, bad], dtype=np.int32))


def test_mse(level):
    a, b = sample("f32", (3, 4), seed=17), sample("f32", (3, 4), seed=18)
    got = call(level, "def f(a: f32[N, M], b: f32[N, M]) { return mse(a, b) }", a, b)
    check(got, np.mean((a.astype(np.float64) - b) ** 2), "f32")
    c = sample("f64", (4,), seed=19)
    got = call(level, "def f(a: f32[N, M], c: f64[M]) { return mse(a, c) }", a, c)
    check(got, np.mean((a.astype(np.float64) - c) ** 2), "f64")
    i, j = sample("i32", (5,), seed=20), sample("i32", (5,), seed=21)
    got = call(level, "def f(i: i32[N], j: i32[N]) { return mse(i, j) }", i, j)
    check(got, np.mean((i.astype(np.float64) - j) ** 2), "f32")


# ----- matmul and dot ---------------------------------------------------------------------

MATMUL_CASES = [
    # (declared shapes, concrete shapes)
    (("K", "K"), ((5,), (5,))),
    (("K", "K, M"), ((5,), (5, 3))),
    (("N, K", "K"), ((4, 5), (5,))),
    (("N, K", "K, M"), ((4, 5), (5, 3))),
    (("B, N, K", "B, K, M"), ((2, 4, 5), (2, 5, 3))),
    (("B, N, K", "K, M"), ((2, 4, 5), (5, 3))),
    (("K", "B, K, M"), ((5,), (2, 5, 3))),
    (("B, N, K", "K"), ((2, 4, 5), (5,))),
    (("B, 1, N, K", "C, K, M"), ((2, 1, 4, 5), (3, 5, 3))),
    (("1, N, K", "B, K, M"), ((1, 4, 5), (2, 5, 3))),
    (("N, K", "K, M"), ((0, 5), (5, 3))),
    (("N, K", "K, M"), ((4, 0), (0, 3))),
    (("N, K", "K, M"), ((1, 1), (1, 1))),
]


@pytest.mark.parametrize("dtype", ["f32", "f64", "i32", "i64"])
@pytest.mark.parametrize(("declared", "shapes"), MATMUL_CASES, ids=lambda c: str(c))
def test_matmul_numpy_rules(level, declared, shapes, dtype):
    x = sample(dtype, shapes[0], seed=22)
    y = sample(dtype, shapes[1], seed=23)
    src = f"def f(x: {dtype}[{declared[0]}], y: {dtype}[{declared[1]}]) {{ return x @ y }}"
    expected = np.matmul(x.astype(np.float64), y.astype(np.float64))
    check(call(level, src, x, y), expected, dtype)
    builtin = src.replace("x @ y", "matmul(x, y)")
    check(call(level, builtin, x, y), expected, dtype)


def test_matmul_static_and_mixed_dtypes(level):
    x, y = sample("i32", (2, 3), seed=24), sample("f32", (3, 4), seed=25)
    src = "def f(x: i32[2, 3], y: f32[3, 4]) -> f32[2, 4] { return x @ y }"
    check(call(level, src, x, y), x.astype(np.float64) @ y, "f32")
    a, b = sample("f32", (2, 3), seed=26), sample("f64", (3,), seed=27)
    check(call(level, "def f(a: f32[N, K], b: f64[K]) { return a @ b }", a, b),
          a.astype(np.float64) @ b, "f64")


def test_matmul_precedence_with_addition(level):
    x, w, b = sample("f32", (2, 3), seed=1), sample("f32", (3, 4), seed=2), sample("f32", (4,))
    src = "def f(x: f32[N, K], w: f32[K, M], b: f32[M]) { return x @ w + b, 2 * x @ w }"
    r1, r2 = call(level, src, x, w, b)
    x64 = x.astype(np.float64)
    check(r1, x64 @ w + b, "f32")
    check(r2, (2 * x64) @ w, "f32")


def test_matmul_mismatches():
    compile_error("def f(x: f32[2, 3], y: f32[4, 5]) { return x @ y }")
    compile_error("def f(x: f32[2, 3, 4], y: f32[5, 4, 2]) { return x @ y }")
    compile_error("def f(x: f32, y: f32[3]) { return x @ y }")


def test_matmul_symbolic_contracting_checked_at_call(level):
    src = "def f(x: f32[N, K], y: f32[L, M]) { return x @ y }"
    x, y = sample("f32", (2, 3)), sample("f32", (3, 4))
    check(call(level, src, x, y), x.astype(np.float64) @ y, "f32")
    with pytest.raises(ValueError):
        call(level, src, x, sample("f32", (4, 4)))


def test_dot(level):
    a, b = sample("f32", (4,), seed=1), sample("f32", (4,), seed=2)
    m, n = sample("f32", (3, 4), seed=3), sample("f32", (4, 2), seed=4)
    src = """
    def f(a: f32[K], b: f32[K], m: f32[N, K], n: f32[K, P], s: f32) {
        return dot(a, b), dot(m, a), dot(a, n), dot(m, n), dot(s, m), dot(m, 2)
    }
    """
    results = call(level, src, a, b, m, n, np.float32(1.5))
    m64 = m.astype(np.float64)
    expected = [np.dot(a.astype(np.float64), b), m64 @ a, a.astype(np.float64) @ n, m64 @ n,
                1.5 * m64, 2 * m64]
    for index, (got, want) in enumerate(zip(results, expected)):
        check(got, want, "f32", what=f"result {index}")
    i = np.arange(6, dtype=np.int32).reshape(2, 3)
    check(call(level, "def f(i: i32[N, K], j: i32[K, M]) { return dot(i, j) }", i, i.T.copy()),
          i @ i.T, "i32")


def test_dot_rejects_rank_3():
    compile_error("def f(x: f32[2, 3, 4], y: f32[4]) { return dot(x, y) }")


# ----- grad and stop_gradient (the autodiff built-ins, end to end) ----------------------------


def test_grad_of_simple_losses(level):
    x, w = sample("f64", (5,), seed=30), sample("f64", (5,), seed=31)
    src = """
    def f(x: f64[N], w: f64[N], u: f64[N]) {
        loss = sum(x * w * w) + 0.5 * mean(exp(w))
        gw, gu = grad(loss, [w, u])
        return loss, gw, gu, grad(loss, x)
    }
    """
    loss, gw, gu, gx = call(level, src, x, w, np.ones(5))
    check(loss, np.sum(x * w * w) + 0.5 * np.mean(np.exp(w)), "f64")
    check(gw, 2 * x * w + 0.5 * np.exp(w) / 5, "f64")
    check(gu, np.zeros(5), "f64")
    check(gx, w * w, "f64")


def test_grad_of_cross_entropy_training_step(level):
    x, w = sample("f32", (4, 3), seed=32), sample("f32", (3, 5), seed=33)
    b, y = sample("f32", (5,), seed=34), np.array([0, 4, 2, 2], np.int32)
    src = """
    def step(x: f32[N, 3], y: i32[N], w: f32[3, C], b: f32[C], lr: f32) {
        loss = mean(cross_entropy(x @ w + b, y))
        gw, gb = grad(loss, [w, b])
        return w - lr * gw, b - lr * gb, loss
    }
    """
    new_w, new_b, loss = call(level, src, x, y, w, b, 0.1, fn="step")
    x64 = x.astype(np.float64)
    z = x64 @ w + b
    dz = (softmax64(z, -1) - np.eye(5)[y]) / 4
    check(loss, np.mean(cross_entropy64(z, y)), "f32")
    check(new_w, w - 0.1 * (x64.T @ dz), "f32")
    check(new_b, b - 0.1 * dz.sum(0), "f32")


def test_stop_gradient(level):
    w = sample("f32", (3,), seed=35)
    src = """
    def f(w: f32[N]) {
        return stop_gradient(w), grad(sum(stop_gradient(w) * w), w), grad(sum(w * w), w)
    }
    """
    same, blocked, full = call(level, src, w)
    check(same, w, "f32")
    check(blocked, w, "f32")
    check(full, 2 * w.astype(np.float64), "f32")


def test_stabilizable_patterns_keep_their_values(level):
    # moderate inputs, where the naive and the stabilised forms agree to rounding
    x = sample("f64", (3, 4), -5, 5, seed=36)
    src = """
    def f(x: f64[N, M]) {
        a = log(softmax(x)); b = log(1 + exp(x)); c = log(sigmoid(x)); d = exp(x) - 1
        return a, b, c, d, log(1 + x * x), sum(x, 1) / x.shape[1], exp(log_softmax(x, axis=0))
    }
    """
    results = call(level, src, x)
    expected = [
        log_softmax64(x, -1),
        np.log1p(np.exp(x)),
        -np.log1p(np.exp(-x)),
        np.expm1(x),
        np.log1p(x * x),
        x.mean(1),
        softmax64(x, 0),
    ]
    for index, (got, want) in enumerate(zip(results, expected)):
        check(got, want, "f64", rtol=1e-9, atol=1e-12, what=f"result {index}")
