"""End-to-end tests of the Python API (SPEC §4) through the interp target: argument checking,
result ownership, `mod.functions`, keyword arguments, call-time constraints, compiling from
paths, `CompileError`; and of functions (§1.3): tuples, calls in any order, rebinding."""

from __future__ import annotations

import pathlib
import re
import textwrap

import numpy as np
import pytest
from e2e_support import LEVELS, NP, build, call  # noqa: F401

import tensorc

# ----- helpers (the shared ones are in e2e_support.py) ---------------------------------------





def check(got, expected, dtype) -> None:
    expected = np.asarray(expected)
    assert isinstance(got, np.ndarray), f"result is a {type(got).__name__}"
    assert got.dtype == np.dtype(dtype), f"dtype {got.dtype}, expected {np.dtype(dtype)}"
    assert got.shape == expected.shape, f"shape {got.shape}, expected {expected.shape}"
    if got.dtype.kind == "f":
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    else:
        np.testing.assert_array_equal(got, expected)


def compile_error(source: str) -> tensorc.CompileError:
    with pytest.raises(tensorc.CompileError) as caught:
        tensorc.compile(textwrap.dedent(source), target="interp")
    assert caught.value.diagnostics, "a CompileError carries at least one diagnostic"
    return caught.value


AFFINE = "def f(x: f32[N, 3], w: f32[3], s: f32) -> f32[N, 3] { return x * w + s }"


def _args(n: int = 2):
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    return x, np.array([1.0, 2.0, 3.0], np.float32), np.float32(0.5)


# ----- argument count and keywords ----------------------------------------------------------


def test_wrong_argument_count_is_a_type_error(level):
    mod = build(AFFINE, level)
    x, w, s = _args()
    with pytest.raises(TypeError):
        mod.f(x, w)
    with pytest.raises(TypeError):
        mod.f(x, w, s, s)
    with pytest.raises(TypeError):
        mod.f()


def test_keyword_arguments(level):
    mod = build(AFFINE, level)
    x, w, s = _args()
    expected = x * w + s
    check(mod.f(x=x, w=w, s=s), expected, np.float32)
    check(mod.f(s=s, x=x, w=w), expected, np.float32)
    check(mod.f(x, s=s, w=w), expected, np.float32)
    with pytest.raises(TypeError):
        mod.f(x, w, bogus=s)
    with pytest.raises(TypeError):
        mod.f(x, w, s, x=x)
    with pytest.raises(TypeError):
        mod.f(x, s=s)


# ----- dtypes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("param", "array"),
    [
        ("f32", np.zeros(3, np.float64)),
        ("f32", np.zeros(3, np.int32)),
        ("f32", np.zeros(3, np.int64)),
        ("i32", np.zeros(3, np.int64)),
        ("i32", np.zeros(3, np.float32)),
        ("i64", np.zeros(3, np.float64)),
        ("bool", np.zeros(3, np.int32)),
        ("f16", np.zeros(3, np.float32)),
    ],
    ids=lambda v: str(getattr(v, "dtype", v)),
)
def test_no_silent_downcast(level, param, array):
    mod = build(f"def f(x: {param}[N]) {{ return x }}", level)
    with pytest.raises(TypeError) as caught:
        mod.f(array)
    message = str(caught.value)
    assert "x" in message and str(array.dtype) in message


@pytest.mark.parametrize(
    ("param", "array"),
    [
        ("f64", np.arange(3, dtype=np.float32)),
        ("f64", np.arange(3, dtype=np.int32)),
        ("i64", np.arange(3, dtype=np.int32)),
        ("f32", np.arange(3, dtype=np.float16)),
        ("i32", np.array([True, False, True])),
    ],
    ids=lambda v: str(getattr(v, "dtype", v)),
)
def test_safe_upcast_is_accepted(level, param, array):
    mod = build(f"def f(x: {param}[N]) {{ return x }}", level)
    numpy_dtype = {"f64": np.float64, "i64": np.int64, "f32": np.float32, "i32": np.int32}[param]
    check(mod.f(array), array.astype(numpy_dtype), numpy_dtype)


def test_non_numeric_arguments_are_type_errors(level):
    mod = build("def f(x: f32[N]) { return x }", level)
    with pytest.raises(TypeError):
        mod.f("abc")
    with pytest.raises(TypeError):
        mod.f(None)
    with pytest.raises(TypeError):
        mod.f([1.0, 2.0])


# ----- shapes -------------------------------------------------------------------------------


def test_wrong_rank_is_a_value_error_naming_both_shapes(level):
    mod = build(AFFINE, level)
    _, w, s = _args()
    with pytest.raises(ValueError) as caught:
        mod.f(np.zeros(4, np.float32), w, s)
    message = str(caught.value)
    assert "'x'" in message or " x " in message
    assert "(4,)" in message
    assert re.search(r"N,\s*3", message)


def test_wrong_static_size_is_a_value_error_naming_both_shapes(level):
    mod = build(AFFINE, level)
    x, _, s = _args()
    with pytest.raises(ValueError) as caught:
        mod.f(x, np.zeros(4, np.float32), s)
    message = str(caught.value)
    assert "'w'" in message or " w " in message
    assert "(4,)" in message and "3" in message
    with pytest.raises(ValueError):
        mod.f(np.zeros((2, 4), np.float32), np.zeros(3, np.float32), s)


def test_scalar_param_rejects_arrays(level):
    mod = build(AFFINE, level)
    x, w, _ = _args()
    with pytest.raises(ValueError):
        mod.f(x, w, np.zeros(2, np.float32))


def test_inconsistent_symbolic_size_names_both_params(level):
    mod = build("def f(a: f32[N, K], b: f32[K, M]) -> f32[N, M] { return a @ b }", level)
    with pytest.raises(ValueError) as caught:
        mod.f(np.zeros((2, 3), np.float32), np.zeros((4, 5), np.float32))
    message = str(caught.value)
    assert "'a'" in message and "'b'" in message
    assert "K" in message
    assert "(2, 3)" in message and "(4, 5)" in message


def test_symbolic_broadcast_constraint_checked_at_call(level):
    mod = build("def f(x: f32[N], y: f32[M]) { return x + y }", level)
    x = np.arange(3, dtype=np.float32)
    check(mod.f(x, x * 2), x * 3, np.float32)
    with pytest.raises(ValueError) as caught:
        mod.f(x, np.zeros(4, np.float32))
    message = str(caught.value)
    assert "N" in message and "M" in message


def test_symbolic_index_constraint_checked_at_call(level):
    mod = build("def f(x: f32[N]) { return x[2] }", level)
    check(mod.f(np.arange(3, dtype=np.float32)), np.array(2.0), np.float32)
    with pytest.raises(IndexError):
        mod.f(np.arange(2, dtype=np.float32))


def test_static_index_checked_at_compile_time():
    error = compile_error("def f(x: f32[4]) { return x[4] }")
    assert "4" in str(error)


def test_result_annotation_is_checked():
    compile_error("def f(x: f32[N]) -> f32[N, 1] { return x }")
    compile_error("def f(x: f32[N]) -> i32[N] { return x }")


# ----- scalars ------------------------------------------------------------------------------


def test_numpy_and_python_scalars(level):
    mod = build("def f(a: f32, b: f64, i: i32, j: i64, c: bool) { return a * b + i + j, c }",
                level)
    for args in [
        (np.float32(1.5), np.float64(2.0), np.int32(3), np.int64(4), np.bool_(True)),
        (1.5, 2.0, 3, 4, True),
        (np.array(1.5, np.float32), np.array(2.0), np.array(3, np.int32), np.array(4), True),
        (1, 2, np.int32(3), 4, False),
    ]:
        value, flag = mod.f(*args)
        a, b, i, j = (float(v) for v in args[:4])
        check(value, np.array(np.float32(a) * b + i + j), np.float64)
        check(flag, np.array(bool(args[4])), np.bool_)


def test_scalar_downcasts_are_rejected(level):
    mod = build("def f(a: f32, i: i32) { return a + i }", level)
    with pytest.raises(TypeError):
        mod.f(np.float64(1.0), 1)
    with pytest.raises(TypeError):
        mod.f(1.0, 1.5)
    with pytest.raises(TypeError):
        mod.f(1.0, np.int64(1))
    with pytest.raises((TypeError, ValueError)):
        mod.f(1.0, 2**40)


# ----- strides and ownership ----------------------------------------------------------------


def test_non_contiguous_and_negative_strides(level):
    mod = build("def f(x: f32[N, M]) { return x * 2 + 1 }", level)
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    for view in (base[:, ::2], base.T, base[::-1], base[::-2, ::-3], np.asfortranarray(base)):
        snapshot = view.copy()
        check(mod.f(view), snapshot * 2 + 1, np.float32)
        np.testing.assert_array_equal(view, snapshot)


def test_results_are_new_arrays(level):
    src = """
    def f(x: f32[N, M]) { return x, x.T, reshape(x, [-1]), x[1:, :], expand_dims(x, 0) }
    """
    mod = build(src, level)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    snapshot = x.copy()
    results = mod.f(x)
    assert len(results) == 5
    for result in results:
        assert isinstance(result, np.ndarray)
        assert not np.shares_memory(result, x)
        assert result.flags.writeable
        result[...] = -1
    np.testing.assert_array_equal(x, snapshot)
    again = mod.f(x)
    check(again[0], snapshot, np.float32)


def test_result_of_identity_is_a_copy(level):
    mod = build("def f(x: i64[N]) { return x }", level)
    x = np.arange(4, dtype=np.int64)
    y = mod.f(x)
    assert y is not x and not np.shares_memory(x, y)
    y[0] = 99
    assert x[0] == 0


def test_two_results_from_one_value_are_distinct(level):
    mod = build("def f(x: f32[N]) { y = x + 1; return y, y }", level)
    a, b = mod.f(np.zeros(3, np.float32))
    a[0] = 5
    assert b[0] == 1


def test_concurrent_calls_are_safe(level):
    from concurrent.futures import ThreadPoolExecutor

    mod = build("def f(x: f32[N], s: f32) { return softmax(x * s) }", level)
    inputs = [np.arange(n, dtype=np.float32) for n in range(1, 33)]

    def run(x):
        return mod.f(x, 0.5)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(run, inputs * 4))
    for x, got in zip(inputs * 4, results):
        e = np.exp(x * 0.5 - (x * 0.5).max())
        check(got, e / e.sum(), np.float32)


# ----- mod.functions ------------------------------------------------------------------------


def test_functions_mapping_and_str(level):
    src = """
    def f(x: f32[N, 3], w: f32[3], s: f32) -> f32[N, 3] { return x * w + s }
    def g(a: i32[N], b: i64) { return a + b, sum(a) }
    """
    mod = build(src, level)
    assert set(mod.functions) == {"f", "g"}
    assert str(mod.functions["f"]) == "f(x: f32[N, 3], w: f32[3], s: f32) -> f32[N, 3]"
    assert str(mod.functions["g"]) == "g(a: i32[N], b: i64) -> (i64[N], i32)"
    sig = mod.functions["f"]
    assert [p.name for p in sig.params] == ["x", "w", "s"]
    assert [p.dtype for p in sig.params] == ["f32", "f32", "f32"]
    assert [tuple(p.shape) for p in sig.params] == [("N", "3"), ("3",), ()]
    assert [r.dtype for r in mod.functions["g"].results] == ["i64", "i32"]
    assert callable(mod.f) and callable(mod.g)
    with pytest.raises(AttributeError):
        mod.h  # noqa: B018


def test_function_result_shape_expression(level):
    mod = build("def f(a: f32[N], b: f32[M]) { return concat([a, b], 0) }", level)
    (result,) = mod.functions["f"].results
    assert result.shape[0].replace(" ", "") in ("N+M", "M+N")
    got = mod.f(np.zeros(2, np.float32), np.ones(5, np.float32))
    check(got, np.r_[np.zeros(2), np.ones(5)], np.float32)


# ----- functions, tuples, rebinding ---------------------------------------------------------


def test_tuple_results_and_unpacking(level):
    src = """
    def stats(x: f32[N]) -> (f32, f32) { return mean(x), max(x) }
    def f(x: f32[N]) {
        m, top = stats(x)
        return top - m, m
    }
    """
    mod = build(src, level)
    x = np.array([1.0, 2.0, 6.0], np.float32)
    spread, m = mod.f(x)
    check(spread, np.array(3.0), np.float32)
    check(m, np.array(3.0), np.float32)
    pair = mod.stats(x)
    assert isinstance(pair, tuple) and len(pair) == 2


def test_functions_call_each_other_in_any_order(level):
    src = """
    def top(x: f32[N]) { return twice(helper(x)) + helper(x) }
    def twice(y: f32[M]) { return 2 * y }
    def helper(z: f32[K]) -> f32[K] { return square(z) + 1 }
    """
    mod = build(src, level)
    x = np.array([0.0, 1.0, -2.0], np.float32)
    check(mod.top(x), 3 * (x * x + 1), np.float32)
    check(mod.twice(x), 2 * x, np.float32)
    check(mod.helper(x), x * x + 1, np.float32)


def test_call_with_keywords_and_scalars(level):
    src = """
    def scale(x: f64[N], by: f64) { return x * by }
    def f(x: f64[N]) { return scale(by=3.0, x=x) + scale(x, 0.5) }
    """
    x = np.array([1.0, 2.0])
    check(build(src, level).f(x), x * 3.5, np.float64)


def test_names_rebound(level):
    src = """
    def f(x: i32[N]) {
        y = x + 1
        y = y * 2
        x = y - x
        y = cast(y, f64) / 4
        return x, y
    }
    """
    mod = build(src, level)
    x = np.array([1, 2, 3], np.int32)
    a, b = mod.f(x)
    check(a, (x + 1) * 2 - x, np.int32)
    check(b, (x + 1) * 2 / 4, np.float64)


def test_semicolons_comments_and_newlines_in_brackets(level):
    src = """
    # a comment line
    def f(x: f32[N],
          y: f32[N]) {   # parameters over two lines
        a = x + y; b = x - y  # two statements
        return maximum(a,
                       b)
    }
    """
    x, y = np.array([1.0, -1.0], np.float32), np.array([2.0, 3.0], np.float32)
    check(build(src, level).f(x, y), np.maximum(x + y, x - y), np.float32)


def test_recursion_is_a_compile_error():
    compile_error("def f(x: f32[N]) { return f(x) }")
    compile_error("""
    def f(x: f32[N]) { return g(x) }
    def g(x: f32[N]) { return f(x) + 1 }
    """)


# ----- compile(): sources, paths, options, errors ---------------------------------------------


def test_compile_from_path_and_pathlib(tmp_path):
    path = tmp_path / "model.tc"
    path.write_text("def f(x: f32[N]) { return x + 1 }\n")
    x = np.arange(3, dtype=np.float32)
    for source in (str(path), path, pathlib.PurePath(path)):
        mod = tensorc.compile(source, target="interp")
        check(mod.f(x), x + 1, np.float32)


def test_compile_error_from_path_names_the_file(tmp_path):
    path = tmp_path / "bad.tc"
    path.write_text("def f(x: f32[N]) {\n    return y\n}\n")
    with pytest.raises(tensorc.CompileError) as caught:
        tensorc.compile(path, target="interp")
    text = str(caught.value)
    assert "bad.tc:2:" in text and "error:" in text and "y" in text


def test_compile_error_carries_diagnostics():
    source = "def f(x: f32[N]) {\n    return x + undefined_name\n}\n"
    error = compile_error(source)
    assert isinstance(error, tensorc.CompileError)
    assert isinstance(error, Exception)
    (diagnostic,) = error.diagnostics
    assert "undefined_name" in diagnostic.message
    assert diagnostic.loc is not None and diagnostic.loc.line == 2
    text = str(error)
    assert re.search(r":2:\d+: error: ", text)
    assert "return x + undefined_name" in text and "^" in text


def test_compile_error_reports_every_independent_error():
    source = textwrap.dedent("""
    def f(x: f32[N]) { return x + nope }
    def g(x: f32[3], y: f32[4]) { return x + y }
    def h(x: f32[N]) { return sum(x, axis=5) }
    """)
    error = compile_error(source)
    assert len(error.diagnostics) >= 3
    lines = sorted(d.loc.line for d in error.diagnostics if d.loc is not None)
    assert lines[:3] == [2, 3, 4]


@pytest.mark.parametrize(
    "source",
    [
        "def f(x: f32[N]) { return x(1) }",
        "def f(x: f32[N]) { return sum(x, axis=0, bogus=1) }",
        "def f(x: f32[N]) { return exp() }",
        "def f(x: f32[N]) { return exp(x, x) }",
        "def f(x: f32[N]) { return x + }",
        "def f(x: f32[N]) { return cast(x, f128) }",
        "def f(x) { return x }",
        "def f(x: f32[N]) { return grad(x, x) }",
    ],
)
def test_bad_programs_raise_compile_error(source):
    error = compile_error(source)
    assert "error:" in str(error)


def test_bad_target_and_opt_level():
    src = "def f(x: f32[N]) { return x }"
    with pytest.raises(ValueError, match="target"):
        tensorc.compile(src, target="tpu")
    for bad in (-1, 4, "2", 1.0, True, None):
        with pytest.raises(ValueError, match="opt_level"):
            tensorc.compile(src, target="interp", opt_level=bad)


@pytest.mark.parametrize("opt_level", [0, 1, 2, 3])
def test_every_opt_level_runs(opt_level):
    src = "def f(x: f32[N, M], b: f32[M]) { return softmax(relu(x + b) * 2, axis=-1) }"
    mod = tensorc.compile(src, target="interp", opt_level=opt_level)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.array([-1.0, 0.0, 1.0], np.float32)
    h = np.maximum(x + b, 0) * 2
    e = np.exp(h - h.max(-1, keepdims=True))
    check(mod.f(x, b), e / e.sum(-1, keepdims=True), np.float32)
