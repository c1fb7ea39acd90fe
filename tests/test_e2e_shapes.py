"""End-to-end tests of indexing, slicing, `x.T`, `x.shape[k]` (SPEC §1.4) and the shape,
gather and constructor built-ins (§1.5), through `tensorc.compile(..., target="interp")`,
checked against NumPy, at opt levels 0 and 2."""

from __future__ import annotations

import math
import textwrap
import warnings

import numpy as np
import pytest
from e2e_support import LEVELS, NP, build, call  # noqa: F401

import tensorc

# ----- helpers (the shared ones are in e2e_support.py) ---------------------------------------

DTYPES = ["f32", "f64", "i32", "i64", "bool"]





def check(got, expected, dtype=None, what: str = "") -> None:
    """Shape/gather results are exact: same dtype, shape and values (NaN equal to NaN)."""
    expected = np.asarray(expected)
    want = np.dtype(NP.get(dtype, dtype)) if dtype is not None else expected.dtype
    prefix = f"{what}: " if what else ""
    assert isinstance(got, np.ndarray), f"{prefix}result is a {type(got).__name__}"
    assert got.dtype == want, f"{prefix}dtype {got.dtype}, expected {want}"
    assert got.shape == expected.shape, f"{prefix}shape {got.shape}, expected {expected.shape}"
    np.testing.assert_array_equal(got, expected.astype(want), err_msg=prefix)


def sample(dtype: str, shape, low: float = -9.0, high: float = 9.0, seed: int = 0) -> np.ndarray:
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


# ----- transpose, .T, .shape ----------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_transpose_and_T(level, dtype):
    x = sample(dtype, (2, 3, 4), seed=1)
    src = f"""
    def f(x: {dtype}[A, B, C]) {{
        return x.T, transpose(x), transpose(x, [1, 0, 2]), transpose(x, perm=[-1, 0, 1])
    }}
    """
    t, default, p, neg = call(level, src, x)
    check(t, x.transpose(2, 1, 0), dtype, "x.T")
    check(default, x.transpose(2, 1, 0), dtype, "transpose(x)")
    check(p, x.transpose(1, 0, 2), dtype, "perm [1, 0, 2]")
    check(neg, x.transpose(2, 0, 1), dtype, "perm [-1, 0, 1]")


def test_T_of_matrix_vector_and_scalar(level):
    m, v = sample("f32", (2, 5)), sample("f32", (3,))
    src = "def f(m: f32[N, M], v: f32[K], s: f64) { return m.T, v.T, s.T, m.T.T }"
    mt, vt, st, mtt = call(level, src, m, v, 2.5)
    check(mt, m.T, "f32")
    check(vt, v, "f32")
    check(st, np.array(2.5), "f64")
    check(mtt, m, "f32")


def test_transpose_static_result_annotation(level):
    x = sample("i64", (2, 3))
    src = "def f(x: i64[2, 3]) -> i64[3, 2] { return x.T }"
    check(call(level, src, x), x.T, "i64")


def test_bad_perm_is_a_compile_error():
    compile_error("def f(x: f32[N, M]) { return transpose(x, [0, 0]) }")
    compile_error("def f(x: f32[N, M]) { return transpose(x, [0, 1, 2]) }")


def test_shape_is_i32_scalar(level):
    x = np.zeros((3, 5), np.float32)
    src = "def f(x: f32[N, M]) { return x.shape[0], x.shape[1], x.shape[-1], x.shape[0] * 2 + 1 }"
    n, m, last, expr = call(level, src, x)
    check(n, np.array(3), "i32")
    check(m, np.array(5), "i32")
    check(last, np.array(5), "i32")
    check(expr, np.array(7), "i32")
    n0, *_ = call(level, src, np.zeros((0, 2), np.float32))
    check(n0, np.array(0), "i32")


def test_shape_in_arithmetic(level):
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    src = "def f(x: f32[N, 3]) { return sum(x, 0) / x.shape[0], x.shape[1] }"
    avg, width = call(level, src, x)
    check(avg, x.sum(0) / 2, "f32")
    check(width, np.array(3), "i32")


# ----- slicing and indexing -----------------------------------------------------------------

SLICES_1D = [
    "x[1:3]",
    "x[1:100]",
    "x[-100:2]",
    "x[-3:-1]",
    "x[::2]",
    "x[1::3]",
    "x[:]",
    "x[2:]",
    "x[:-1]",
    "x[4:2]",
    "x[-1:]",
    "x[5:5]",
    "x[0:7:4]",
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [0, 1, 4, 7])
def test_slices_symbolic_1d(level, dtype, n):
    x = sample(dtype, (n,), seed=n)
    src = f"def f(x: {dtype}[N]) {{ return {', '.join(SLICES_1D)} }}"
    results = call(level, src, x)
    namespace = {"x": x}
    for got, text in zip(results, SLICES_1D):
        check(got, eval(text, namespace), dtype, text)


@pytest.mark.parametrize("dtype", DTYPES)
def test_slices_static_1d(level, dtype):
    x = sample(dtype, (7,), seed=3)
    src = f"def f(x: {dtype}[7]) {{ return {', '.join(SLICES_1D)} }}"
    results = call(level, src, x)
    for got, text in zip(results, SLICES_1D):
        check(got, eval(text, {"x": x}), dtype, text)


SLICES_ND = [
    "x[:, -1]",
    "x[..., 0]",
    "x[0]",
    "x[-1]",
    "x[1, 2]",
    "x[0, :, 1:3]",
    "x[:, ::2, -1]",
    "x[..., 1:]",
    "x[1:, ...]",
    "x[-2:, 1, ::3]",
    "x[0, 1, 2]",
    "x[..., -1, 0]",
]


@pytest.mark.parametrize("static", [False, True])
def test_slices_and_indices_nd(level, static):
    x = sample("f32", (3, 4, 5), seed=4)
    decl = "f32[3, 4, 5]" if static else "f32[A, B, C]"
    src = f"def f(x: {decl}) {{ return {', '.join(SLICES_ND)} }}"
    results = call(level, src, x)
    for got, text in zip(results, SLICES_ND):
        check(got, eval(text, {"x": x}), "f32", text)


def test_slice_bounds_from_symbols(level):
    x = sample("i32", (6,), seed=5)
    src = "def f(x: i32[N]) { return x[1:N-1], x[:N // 2], x[N:], x[:N-1] }"
    for n in (6, 3, 1, 0):
        y = x[:n]
        results = call(level, src, y)
        expected = [y[1 : n - 1], y[: n // 2], y[n:], y[: n - 1]]
        for index, (got, want) in enumerate(zip(results, expected)):
            check(got, want, "i32", f"N={n} result {index}")


@pytest.mark.parametrize(
    ("text", "reference"),
    [
        ("x[0:2*N]", lambda y, n: y[0 : 2 * n]),  # clamps like Python's x[0:2*len(x)]
        ("x[1:N+3]", lambda y, n: y[1 : n + 3]),
        ("x[-N:]", lambda y, n: y[-n:] if n else y),  # the whole array, like x[-len(x):]
        ("x[-N-2:2]", lambda y, n: y[-n - 2 : 2]),
        ("x[N-2:]", lambda y, n: y[n - 2 :]),  # N=1: x[-1:], one element
        ("x[N-1:N]", lambda y, n: y[n - 1 : n]),  # N=0: x[-1:0], empty
    ],
)
def test_slice_symbolic_bounds_out_of_range_clamp(level, text, reference):
    x = sample("i32", (6,), seed=5)
    src = f"def f(x: i32[N]) {{ return {text} }}"
    for n in (6, 1, 0):
        check(call(level, src, x[:n]), reference(x[:n], n), "i32", f"{text} with N={n}")


EMPTY_SLICE_SIZES = {
    "concat": (
        "def f(x: f32[N], y: f32[M]) { return concat([x[3:], y], 0) }",
        lambda x, y: np.concatenate([x[3:], y]),
    ),
    "shape": ("def f(x: f32[N], y: f32[M]) { return x[3:].shape[0] }", lambda x, y: len(x[3:])),
    "full": (
        "def f(x: f32[N], y: f32[M]) { return full([x[4:2].shape[0] + 5], 1.0) }",
        lambda x, y: np.ones(len(x[4:2]) + 5, np.float32),
    ),
    "mean": ("def f(x: f32[N], y: f32[M]) { return mean(x[3:]) }", lambda x, y: x[3:].mean()),
    "var": ("def f(x: f32[N], y: f32[M]) { return var(x[3:]) }", lambda x, y: x[3:].var()),
    "reshape": (
        "def f(x: f32[N], y: f32[M]) { return reshape(x[3:], [-1]) }",
        lambda x, y: x[3:].reshape(-1),
    ),
    "call": (
        "def g(a: f32[K]) { return a.shape[0] }\n"
        "def f(x: f32[N], y: f32[M]) { return g(x[3:]) }",
        lambda x, y: len(x[3:]),
    ),
    "broadcast": (
        "def f(x: f32[N], y: f32[M]) { return x[3:] + y }",
        lambda x, y: x[3:] + y,
    ),
}


@pytest.mark.parametrize("target", ["interp", "cpu"])
@pytest.mark.parametrize("case", sorted(EMPTY_SLICE_SIZES))
def test_an_empty_slice_has_size_zero_wherever_its_size_is_used(level, target, case):
    """`x[3:]` of an `f32[N]` is typed `f32[N - 3]`; when N < 3 it is empty, and every use of
    its size as a number (added, multiplied, read, counted, bound, compared) sees 0."""
    source, reference = EMPTY_SLICE_SIZES[case]
    f = build(source, level, target).f
    for n in (6, 3, 2, 0):
        x = np.arange(n, dtype=np.float32)
        y = np.arange(10, 10 + len(x[3:]), dtype=np.float32)  # as long as x[3:], for `+`
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            want = np.asarray(reference(x, y))
        got = np.asarray(f(x, y))
        assert got.shape == want.shape, f"{case} with N={n}: {got.shape} != {want.shape}"
        np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=f"{case} with N={n}")


def test_symbolic_index_out_of_range_raises(level):
    src = "def f(x: f32[N]) { return x[3] }"
    x = np.arange(5, dtype=np.float32)
    check(call(level, src, x), np.array(3.0), "f32")
    with pytest.raises(IndexError):
        call(level, src, x[:3])
    src_neg = "def f(x: f32[N, M]) { return x[-1] }"
    check(call(level, src_neg, x.reshape(5, 1)), np.array([4.0]), "f32")
    with pytest.raises(IndexError):
        call(level, src_neg, np.zeros((0, 2), np.float32))


def test_an_index_involving_a_dimension_is_not_wrapped(level):
    """The README's rule: `x[N - k]` reads element N - k, and is an IndexError when that is
    negative (NumPy would wrap N - 5 = -1 to the last element)."""
    src = "def f(x: f32[N], y: f32[M]) { return x[N - 2] + x[M - 1] }"
    x = np.arange(7, dtype=np.float32)
    check(call(level, src, x, np.zeros(3, np.float32)), np.array(5.0 + 2.0), "f32")
    for n, m in ((1, 1), (7, 0), (7, 8)):
        with pytest.raises(IndexError, match="out of range"):
            call(level, src, x[:n], np.zeros(m, np.float32))


def test_static_index_out_of_range_is_a_compile_error():
    compile_error("def f(x: f32[3]) { return x[3] }")
    compile_error("def f(x: f32[3, 4]) { return x[:, -5] }")
    # counted from the end of a symbolic axis, past its start for every size
    compile_error("def f(x: f32[N]) { return x[-N - 1] }")
    compile_error("def f(x: f32[N, M]) { return x[0, -M - 3] }")


def test_an_index_counted_from_the_end_of_a_symbolic_axis(level):
    """`x[-N]` is the first element (IndexError when N = 0); `x[-2 * N]` is out of range for
    every N > 0: it is never clamped to `x[0]` as a slice bound would be."""
    src = "def f(x: f32[N, 2]) { return x[-N], x[-2 * N] }"
    x = np.arange(8, dtype=np.float32).reshape(4, 2)
    with pytest.raises(IndexError, match=r"index -2\*N is out of range .*\(N=4\)"):
        call(level, src, x)
    first = "def f(x: f32[N, 2]) { return x[-N] }"
    check(call(level, first, x), x[0], "f32")
    with pytest.raises(IndexError, match=r"index -N is out of range"):
        call(level, first, x[:0])


def test_indexing_then_arithmetic(level):
    x = sample("f64", (4, 3), seed=6)
    src = "def f(x: f64[N, 3]) { return x[:, 0] * x[:, 1] + x[..., 2] }"
    check(call(level, src, x), x[:, 0] * x[:, 1] + x[..., 2], "f64")


# ----- reshape, broadcast_to, expand_dims, squeeze -------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_reshape(level, dtype):
    x = sample(dtype, (2, 3, 4), seed=7)
    src = f"""
    def f(x: {dtype}[2, 3, 4]) {{
        a = reshape(x, [6, 4])
        return a, reshape(x, [-1]), reshape(x, [4, -1]), reshape(x, shape=[2, -1, 2])
    }}
    """
    a, b, c, d = call(level, src, x)
    check(a, x.reshape(6, 4), dtype)
    check(b, x.reshape(-1), dtype)
    check(c, x.reshape(4, -1), dtype)
    check(d, x.reshape(2, -1, 2), dtype)


def test_reshape_symbolic(level):
    x = sample("f32", (3, 4), seed=8)
    src = """
    def f(x: f32[N, M]) { return reshape(x, [M, N]), reshape(x, [-1]), reshape(x, [N, M, 1]) }
    """
    a, b, c = call(level, src, x)
    check(a, x.reshape(4, 3), "f32")
    check(b, x.reshape(-1), "f32")
    check(c, x.reshape(3, 4, 1), "f32")
    a, b, c = call(level, src, np.zeros((0, 4), np.float32))
    check(a, np.zeros((4, 0)), "f32")
    check(b, np.zeros(0), "f32")


def test_reshape_needs_divisible_count(level):
    src = "def f(x: f32[N]) { return reshape(x, [-1, 2]) }"
    x = np.arange(6, dtype=np.float32)
    check(call(level, src, x), x.reshape(-1, 2), "f32")
    with pytest.raises(ValueError):
        call(level, src, x[:5])


def test_reshape_static_count_mismatch_is_a_compile_error():
    compile_error("def f(x: f32[2, 3]) { return reshape(x, [4, 2]) }")
    compile_error("def f(x: f32[2, 3]) { return reshape(x, [-1, -1]) }")


@pytest.mark.parametrize("dtype", DTYPES)
def test_broadcast_to(level, dtype):
    x = sample(dtype, (3,), seed=9)
    y = sample(dtype, (4, 1), seed=10)
    src = f"""
    def f(x: {dtype}[3], y: {dtype}[N, 1], z: {dtype}[M]) {{
        return broadcast_to(x, [2, 3]), broadcast_to(y, [N, M]), broadcast_to(x, [N, 2, 3])
    }}
    """
    z = sample(dtype, (5,), seed=11)
    a, b, c = call(level, src, x, y, z)
    check(a, np.broadcast_to(x, (2, 3)), dtype)
    check(b, np.broadcast_to(y, (4, 5)), dtype)
    check(c, np.broadcast_to(x, (4, 2, 3)), dtype)


def test_broadcast_to_bad_shape_is_a_compile_error():
    compile_error("def f(x: f32[3]) { return broadcast_to(x, [2, 4]) }")
    compile_error("def f(x: f32[2, 3]) { return broadcast_to(x, [3]) }")


def test_expand_dims(level):
    x = sample("i64", (2, 3), seed=12)
    src = """
    def f(x: i64[N, M]) {
        return expand_dims(x, 0), expand_dims(x, -1), expand_dims(x, axis=1), expand_dims(x, [0, 2])
    }
    """
    a, b, c, d = call(level, src, x)
    check(a, np.expand_dims(x, 0), "i64")
    check(b, np.expand_dims(x, -1), "i64")
    check(c, np.expand_dims(x, 1), "i64")
    check(d, np.expand_dims(x, (0, 2)), "i64")


def test_squeeze(level):
    x = sample("f64", (1, 3, 1), seed=13)
    src = """
    def f(x: f64[1, N, 1]) {
        return squeeze(x), squeeze(x, 0), squeeze(x, axis=-1), squeeze(x, [0, 2])
    }
    """
    a, b, c, d = call(level, src, x)
    check(a, np.squeeze(x), "f64")
    check(b, np.squeeze(x, 0), "f64")
    check(c, np.squeeze(x, -1), "f64")
    check(d, np.squeeze(x, (0, 2)), "f64")
    a, *_ = call(level, src, np.zeros((1, 0, 1)))
    check(a, np.zeros(0), "f64")


def test_squeeze_non_unit_axis_is_a_compile_error():
    compile_error("def f(x: f32[2, 1]) { return squeeze(x, 0) }")


# ----- concat and stack ---------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_concat_symbolic_sizes(level, dtype):
    src = f"""
    def f(a: {dtype}[N, 3], b: {dtype}[M, 3]) -> {dtype}[N + M, 3] {{
        return concat([a, b], 0)
    }}
    """
    for n, m in [(2, 3), (0, 2), (1, 0), (0, 0)]:
        a, b = sample(dtype, (n, 3), seed=n), sample(dtype, (m, 3), seed=10 + m)
        check(call(level, src, a, b), np.concatenate([a, b], 0), dtype, f"N={n} M={m}")
    result = build(src, level).functions["f"].results[0]
    assert result.shape[0].replace(" ", "") in ("N+M", "M+N")


def test_concat_axes_and_three_operands(level):
    a, b, c = (sample("f32", (2, k), seed=k) for k in (1, 2, 3))
    src = """
    def f(a: f32[N, A], b: f32[N, B], c: f32[N, C]) {
        return concat([a, b, c], axis=-1), concat([a, b], 1), concat(xs=[a], axis=0)
    }
    """
    x, y, z = call(level, src, a, b, c)
    check(x, np.concatenate([a, b, c], -1), "f32")
    check(y, np.concatenate([a, b], 1), "f32")
    check(z, a, "f32")


def test_concat_promotes_and_default_axis(level):
    i, x = np.array([1, 2], np.int32), np.array([0.5], np.float32)
    src = "def f(i: i32[N], x: f32[M]) { return concat([i, x]) }"
    check(call(level, src, i, x), np.array([1.0, 2.0, 0.5]), "f32")


def test_concat_mismatch():
    compile_error("def f(a: f32[2, 3], b: f32[2, 4]) { return concat([a, b], 0) }")
    compile_error("def f(a: f32[2, 3], b: f32[3]) { return concat([a, b], 0) }")


def test_concat_symbolic_mismatch_checked_at_call(level):
    src = "def f(a: f32[N, K], b: f32[M, L]) { return concat([a, b], 0) }"
    a, b = np.zeros((2, 3), np.float32), np.ones((1, 3), np.float32)
    check(call(level, src, a, b), np.concatenate([a, b]), "f32")
    with pytest.raises(ValueError):
        call(level, src, a, np.ones((1, 4), np.float32))


@pytest.mark.parametrize("dtype", DTYPES)
def test_stack(level, dtype):
    a, b = sample(dtype, (2, 3), seed=1), sample(dtype, (2, 3), seed=2)
    src = f"""
    def f(a: {dtype}[N, M], b: {dtype}[N, M]) {{
        return stack([a, b], 0), stack([a, b, a], axis=-1), stack([a, b], 1), stack([b])
    }}
    """
    w, x, y, z = call(level, src, a, b)
    check(w, np.stack([a, b], 0), dtype)
    check(x, np.stack([a, b, a], -1), dtype)
    check(y, np.stack([a, b], 1), dtype)
    check(z, np.stack([b]), dtype)
    w, *_ = call(level, src, a[:0], b[:0])
    check(w, np.zeros((2, 0, 3)), dtype)


def test_stack_symbolic_result_type(level):
    src = "def f(a: f32[N], b: f32[N]) -> f32[2, N] { return stack([a, b]) }"
    a = np.arange(4, dtype=np.float32)
    check(call(level, src, a, -a), np.stack([a, -a]), "f32")


# ----- take, take_along_axis, one_hot ---------------------------------------------------------


@pytest.mark.parametrize("index_dtype", ["i32", "i64"])
def test_take(level, index_dtype):
    x = sample("f32", (4, 5), seed=14)
    idx = np.array([0, 3, -1, -4, 2], dtype=NP[index_dtype])
    idx2 = np.array([[1, -2], [0, 0]], dtype=NP[index_dtype])
    src = f"""
    def f(x: f32[N, M], i: {index_dtype}[K], j: {index_dtype}[P, Q]) {{
        return take(x, i, 1), take(x, j, axis=0), take(x, i), take(x, indices=j, axis=-1)
    }}
    """
    a, b, c, d = call(level, src, x, idx, idx2)
    check(a, np.take(x, idx, axis=1), "f32", "axis 1")
    check(b, np.take(x, idx2, axis=0), "f32", "axis 0")
    check(c, np.take(x, idx), "f32", "flattened")
    check(d, np.take(x, idx2, axis=-1), "f32", "axis -1")


@pytest.mark.parametrize("bad", [5, -6, 100])
def test_take_out_of_range_raises_index_error(level, bad):
    src = "def f(x: f32[N], i: i32[K]) { return take(x, i, 0) }"
    x = np.arange(5, dtype=np.float32)
    with pytest.raises(IndexError):
        call(level, src, x, np.array([0, bad], np.int32))


def test_take_empty(level):
    src = "def f(x: i64[N, M], i: i32[K]) { return take(x, i, 0) }"
    x = np.arange(6, dtype=np.int64).reshape(3, 2)
    check(call(level, src, x, np.zeros(0, np.int32)), np.zeros((0, 2)), "i64")


def test_take_needs_integer_indices():
    compile_error("def f(x: f32[N], i: f32[K]) { return take(x, i, 0) }")


def test_take_along_axis(level):
    x = sample("f64", (3, 4), seed=15)
    i0 = np.array([[0, 2, 1, -1]], dtype=np.int64)
    i1 = np.argsort(x, axis=1).astype(np.int32)
    src = """
    def f(x: f64[N, M], a: i64[1, M], b: i32[N, M]) {
        return take_along_axis(x, a, 0), take_along_axis(x, b, axis=-1)
    }
    """
    a, b = call(level, src, x, i0, i1)
    check(a, np.take_along_axis(x, i0, 0), "f64")
    check(b, np.sort(x, axis=1), "f64")
    with pytest.raises(IndexError):
        call(level, src, x, np.array([[0, 3, 1, 0]], np.int64), i1)


def test_one_hot(level):
    idx = np.array([0, 2, 3, -1, 1], dtype=np.int32)
    src = "def f(i: i32[N]) { return one_hot(i, 3) }"
    expected = np.zeros((5, 3), np.float32)
    for row, k in enumerate(idx):
        if 0 <= k < 3:
            expected[row, k] = 1.0
    check(call(level, src, idx), expected, "f32")
    idx2 = np.array([[1, 0], [5, 1]], dtype=np.int64)
    got = call(level, "def f(i: i64[A, B]) { return one_hot(i, n=2) }", idx2)
    check(got, np.array([[[0, 1], [1, 0]], [[0, 0], [0, 1]]]), "f32")


def test_one_hot_needs_constant_n():
    compile_error("def f(i: i32[N], k: i32) { return one_hot(i, k) }")


# ----- constructors -------------------------------------------------------------------------


def test_zeros_ones_full(level):
    src = """
    def f(x: f32[N]) {
        a = zeros([N, 3])
        b = ones([2], f64)
        return a, b, zeros([2, 2], dtype=i32), ones([N], bool), full([2, 3], 7)
    }
    """
    a, b, c, d, e = call(level, src, np.zeros(4, np.float32))
    check(a, np.zeros((4, 3)), "f32")
    check(b, np.ones(2), "f64")
    check(c, np.zeros((2, 2)), "i32")
    check(d, np.ones(4, bool), "bool")
    check(e, np.full((2, 3), 7), "i32")


def test_full_dtypes(level):
    src = """
    def f(s: f64, n: i64[N]) {
        return full([2], 2.5), full([N, 2], s), full([3], true), full([N], 1, f64)
    }
    """
    a, b, c, d = call(level, src, 1.25, np.zeros(3, np.int64))
    check(a, np.full(2, 2.5), "f32")
    check(b, np.full((3, 2), 1.25), "f64")
    check(c, np.full(3, True), "bool")
    check(d, np.ones(3), "f64")


def test_constructors_empty(level):
    src = "def f(x: f32[N]) { return zeros([N, 0]), ones([0]), arange(N), full([N], 2.0) }"
    a, b, c, d = call(level, src, np.zeros(0, np.float32))
    check(a, np.zeros((0, 0)), "f32")
    check(b, np.zeros(0), "f32")
    check(c, np.zeros(0), "i32")
    check(d, np.zeros(0), "f32")


def test_arange(level):
    src = "def f(x: f32[N]) { return arange(5), arange(N), arange(N) * 2 + x }"
    x = np.full(4, 0.5, np.float32)
    a, b, c = call(level, src, x)
    check(a, np.arange(5), "i32")
    check(b, np.arange(4), "i32")
    check(c, np.arange(4) * 2 + 0.5, "f32")
    check(call(level, "def f() { return arange(0) }"), np.zeros(0), "i32")


@pytest.mark.parametrize("dtype", DTYPES)
def test_zeros_like_ones_like(level, dtype):
    x = sample(dtype, (2, 3), seed=16)
    src = f"def f(x: {dtype}[N, M]) {{ return zeros_like(x), ones_like(x) }}"
    z, o = call(level, src, x)
    check(z, np.zeros_like(x), dtype)
    check(o, np.ones_like(x), dtype)
    z, o = call(level, src, x[:0])
    check(z, np.zeros((0, 3)), dtype)


def test_constructor_bad_shape_is_a_compile_error():
    compile_error("def f() { return zeros([-1, 2]) }")
    compile_error("def f(x: f32[N]) { return zeros([x, 2]) }")
