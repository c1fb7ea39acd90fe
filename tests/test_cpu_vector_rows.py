"""Lagged row loops in vectors (tensorc/codegen/cpu/carried_rows.py, vector_rows.py): a row
epilogue whose output is a large function result writes row p while it reduces rows p + 1 and
p + 2, with the middle of each row in explicit vectors and aligned non-temporal stores.

Results must not change. The cases cover what the split of a row must get right: rows whose
output starts mid-line (widths that are no multiple of 16, so every row has another head), f32
and f64, a thread's chunk of 1, 2 and 3 rows, calls of the same entry point below the
streaming threshold and with rows shorter than MIN_ROW, non-finite values that must stay in
their row, and the per-element ops of VECTOR_OPS in the epilogue and in both reductions."""

from __future__ import annotations

import platform
import re

import numpy as np
import pytest
from cpu_harness import build, compare, run_both
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tensorc.codegen.cpu.backend import CpuBuild
from tensorc.codegen.cpu.carried_rows import STASH_ROW_BYTES
from tensorc.codegen.cpu.streaming import STREAM_FROM_BYTES
from tensorc.codegen.cpu.vector_rows import MIN_ROW
from tensorc.driver import CompileOptions, Source, compile_to_ir
from tensorc.ir.dialects.kernel import GenericOp

X86_64 = platform.machine() in ("x86_64", "AMD64")

SOURCE = """
def norm(x: f32[N, M], g: f32[M], b: f32[M]) -> f32[N, M] { return layer_norm(x, g, b) }
def norm64(x: f64[N, M], g: f64[M], b: f64[M]) -> f64[N, M] { return layer_norm(x, g, b) }
def scaled(x: f32[N, M], a: f32[M]) -> f32[N, M] {
    c = x - mean(abs(x), axis=1, keepdims=true)
    s = sum(maximum(c, 0.0 - c) * a, axis=1, keepdims=true)
    return relu(where(c > 0.0, c, c * 0.5) * a - s * 0.001)
}
"""


def _rows(n: int, m: int, dtype: type, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-3, 3, (n, m)).astype(dtype)


def _large(m: int, itemsize: int) -> int:
    """Rows of width `m` enough for a result past STREAM_FROM_BYTES, plus an odd few."""
    return STREAM_FROM_BYTES // (m * itemsize) + 7


@pytest.mark.parametrize("level", [2, 3])
@pytest.mark.parametrize("width", [1024, 1001, MIN_ROW, 4099])
def test_large_layer_norms_match_the_interpreter(level: int, width: int) -> None:
    n = _large(width, 4)
    x = _rows(n, width, np.float32, width)
    g, b = x[0] * 0.5, x[1] * 0.25
    run_both(SOURCE, level, "norm", [x, g, b])
    y = _rows(_large(width, 8), width, np.float64, width + 1)
    run_both(SOURCE, level, "norm64", [y, y[0], y[1]])


@pytest.mark.parametrize("level", [2, 3])
def test_every_vector_op_of_both_reductions_and_the_epilogue(level: int) -> None:
    x = _rows(_large(1003, 4), 1003, np.float32, 3)
    run_both(SOURCE, level, "scaled", [x, x[2] + 3.5])


SOFTMAX = """
def softmax32(x: f32[N, M]) -> f32[N, M] { return softmax(x, axis=1) }
def softmax64(x: f64[N, M]) -> f64[N, M] { return softmax(x, axis=1) }
def log_softmax32(x: f32[N, M]) -> f32[N, M] { return log_softmax(x, axis=1) }
def spread(x: f32[N, M]) -> f32[N, M] {
    c = x - min(x, axis=1, keepdims=true)
    return c / sum(tanh(c), axis=1, keepdims=true)
}
def ranged(x: f32[N, M]) -> f32[N, M] {
    c = x - min(x, axis=1, keepdims=true)
    return c / (max(c, axis=1, keepdims=true) + 1.0)
}
"""


@pytest.mark.parametrize("width", [1024, 1001, MIN_ROW, STASH_ROW_BYTES // 4,
                                   STASH_ROW_BYTES // 4 + 1])
def test_large_softmaxes_match_the_interpreter(width: int) -> None:
    """Softmax lags with its stash in row buffers (carried_rows.py, Stash rows) while its
    rows fit them, and stays carried past them; log-softmax lags without a stash; `spread`
    reduces with `min` and runs one `tanh` per element."""
    x = _rows(_large(width, 4), width, np.float32, width)
    for function in ("softmax32", "log_softmax32", "spread", "ranged"):
        run_both(SOFTMAX, 3, function, [x])
    y = _rows(_large(width, 8), width, np.float64, width + 1)
    run_both(SOFTMAX, 3, "softmax64", [y])


def test_non_finite_values_stay_in_their_softmax_row() -> None:
    """NaN and infinities in the vector middle of a row, with max and min reductions whose
    vector lanes skip NaN and keep it aside (vector_rows.VectorAccumulator)."""
    n, m = _large(1024, 4), 1024
    x = _rows(n, m, np.float32, 12)
    x[3, 700] = np.nan
    x[4, 5] = np.nan  # in a row's first line
    x[5, 100] = np.inf
    x[6, :] = -np.inf
    x[7, 999] = -np.inf
    x[8, :] = 0.0
    x[8, ::3] = -0.0
    x[n - 1, m - 1] = np.nan  # the last row, run alone after the loop
    module, reference = build(SOFTMAX, 3), build(SOFTMAX, 3, target="interp")
    for function in ("softmax32", "log_softmax32", "spread", "ranged"):
        with np.errstate(all="ignore"):
            want = getattr(reference, function)(x)
            got = getattr(module, function)(x)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, equal_nan=True,
                                   err_msg=function)


def test_small_softmax_calls_stay_carried() -> None:
    """Below STREAM_FROM_BYTES, and with chunks of 1 to 3 rows: the carried loop, whose
    stash is the output."""
    for n, m in ((1, 1024), (2, 1024), (3, 1001), (0, 1024), (4, 0), (64, 300)):
        x = _rows(n, m, np.float32, n + m)
        run_both(SOFTMAX, 3, "softmax32", [x])


def test_rows_read_across_memory_keep_the_scalar_loop() -> None:
    """A transposed input is read with a stride along the row: no vector plan, the same
    results."""
    source = ("def f(x: f32[M, N], g: f32[M], b: f32[M]) -> f32[N, M] "
              "{ return layer_norm(x.T, g, b) }")
    x = _rows(1001, _large(1001, 4), np.float32, 8)
    run_both(source, 3, "f", [x, x[:, 0].copy(), x[:, 1].copy()])
    if X86_64:
        assert "!nontemporal" not in _llvm_ir(source)


def test_small_calls_and_short_rows_of_a_streaming_entry_point() -> None:
    """Below STREAM_FROM_BYTES, with 1 to 3 rows (a chunk's prologue, middle and last row),
    and with rows shorter than MIN_ROW in a large result: the scalar loop."""
    for n, m in ((1, 1024), (2, 1024), (3, 1001), (5, 17), (0, 1024), (4, 0),
                 (STREAM_FROM_BYTES // (4 * 33) + 3, 33)):
        x = _rows(n, m, np.float32, n + m)
        g, b = np.linspace(-1, 1, m, dtype=np.float32), np.full(m, 0.5, np.float32)
        run_both(SOURCE, 3, "norm", [x, g, b])


def test_large_calls_of_few_rows() -> None:
    """Streaming calls of 1, 2, 3 and 9 long rows: the lagged loop's prologue, its last row
    run in the loop with its next row clamped, and the thread pool's chunks of 1 and 2 rows."""
    for n in (1, 2, 3, 9):
        m = STREAM_FROM_BYTES // (4 * n) + 5
        x = _rows(n, m, np.float32, n)
        g, b = np.linspace(-1, 1, m, dtype=np.float32), np.full(m, 0.5, np.float32)
        run_both(SOURCE, 3, "norm", [x, g, b])


def test_non_finite_values_stay_in_their_row() -> None:
    n, m = _large(1024, 4), 1024
    x = _rows(n, m, np.float32, 11)
    rows = (0, 1, 2, n // 2 - 1, n // 2, n // 2 + 1, n - 2, n - 1)
    for k, row in enumerate(rows):
        x[row, (17 * row) % m] = (np.nan, np.inf, -np.inf, 3e38)[k % 4]
    got = build(SOURCE, 3).norm(x, np.ones(m, np.float32), np.zeros(m, np.float32))
    clean = np.ones(n, bool)
    clean[list(rows)] = False
    mean = x[clean].mean(axis=1, keepdims=True, dtype=np.float64)
    var = ((x[clean] - mean) ** 2).mean(axis=1, keepdims=True)
    want = (x[clean] - mean) / np.sqrt(var + 1e-5)
    np.testing.assert_allclose(got[clean], want, rtol=1e-4, atol=1e-4)
    assert not np.isfinite(got[list(rows[:3])]).all(axis=1).any()


def test_results_are_identical_from_many_calls() -> None:
    module = build(SOURCE, 3)
    x = _rows(_large(1001, 4), 1001, np.float32, 5)
    g, b = x[3], x[4]
    first = module.norm(x, g, b)
    for _ in range(6):
        np.testing.assert_array_equal(module.norm(x, g, b), first)


def _llvm_ir(source: str) -> str:
    module, _ = compile_to_ir(Source(source, "test.tc"), CompileOptions(opt_level=2))
    return CpuBuild.create(module, source, 2).llvm_ir()


def _streams(text: str, vector: str) -> bool:
    """Whether `text` stores `vector`s aligned to a line, non-temporally."""
    return re.search(rf"store {vector} [^\n]*align 64,[^\n]*!nontemporal", text) is not None


def _norm(width: str, dtype: str = "f32", rows: str = "N", wrap: str = "{}") -> str:
    """A function `f` returning `wrap` around the layer norm of rows of `width`."""
    shape = f"{dtype}[{rows}, {width}]"
    norm = "layer_norm(x, g, b)"
    return (f"def f(x: {shape}, g: {dtype}[{width}], b: {dtype}[{width}]) -> {shape} "
            f"{{ return {wrap.format(norm)} }}")


@pytest.mark.skipif(not X86_64, reason="streaming stores are emitted for x86-64 only")
def test_only_cheap_lagged_row_epilogues_store_vectors_non_temporally() -> None:
    softmax = "def f(x: f32[N, M]) -> f32[N, M] { return softmax(x, axis=1) }"
    for source in (SOURCE, _norm("1024"), _norm("M", wrap="relu({}) * 2.0"), softmax,
                   _norm("M", wrap="tanh({})")):
        text = _llvm_ir(source)
        assert _streams(text, "<16 x float>") and "@llvm.x86.sse.sfence" in text, source
    assert _streams(_llvm_ir(SOURCE), "<8 x double>")
    for source in (
        _norm("100"),  # rows shorter than MIN_ROW
        _norm("1024", rows="8"),  # statically small
        _norm("M", wrap="tanh(exp({}))"),  # compute-bound: two transcendentals per element
        _norm("M", wrap="erf({})"),  # not in VECTOR_MATH
        # compute-bound: a `tanh` in the passenger's reduction and an `exp` in the epilogue
        "def f(x: f32[N, M]) -> f32[N, M] {\n c = x - max(tanh(x), axis=1, keepdims=true)\n"
        " return exp(c) / (sum(c * c, axis=1, keepdims=true) + 1.0)\n}",
        _norm("M", dtype="f16"),  # no f16 vectors
        "def f(x: f32[N, 100]) -> f32[N, 100] { return softmax(x, axis=1) }",  # short rows
    ):
        assert "!nontemporal" not in _llvm_ir(source), source


# ----- random row programs ------------------------------------------------------------------

ROW_UNARY = ("abs({})", "(-{})", "relu({})", "square({})")
ROW_BINARY = ("({} + {})", "({} - {})", "({} * {})", "maximum({}, {})", "minimum({}, {})")


@st.composite
def _expression(draw, leaves: tuple[str, ...], depth: int) -> str:
    """A cheap elementwise expression over `leaves` (each op of VECTOR_OPS). A `where`
    compares inputs only: a computed value can round differently in the interpreter (a row
    sum that cancels), and a flipped branch is no rounding error."""
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from(leaves + ("0.5", "-1.25")))
    kind = draw(st.sampled_from(["unary", "binary", "where"]))
    if kind == "unary":
        return draw(st.sampled_from(ROW_UNARY)).format(draw(_expression(leaves, depth - 1)))
    if kind == "where":  # one branch an array: two literals would make a weak f32 select
        condition = draw(_expression(("x", "a"), 1))
        chosen, other = draw(st.sampled_from(leaves)), draw(_expression(leaves, depth - 1))
        return f"where({condition} > 0.25, {chosen}, {other})"
    template = draw(st.sampled_from(ROW_BINARY))
    return template.format(*(draw(_expression(leaves, depth - 1)) for _ in range(2)))


@st.composite
def _row_programs(draw) -> tuple[str, str]:
    """A layer-norm-shaped program: a row reduction of x, a row reduction of x shifted by it,
    and an epilogue over both (optionally divided by a row-invariant divisor)."""
    dtype = draw(st.sampled_from(["f32", "f64"]))
    first = draw(st.sampled_from(["sum", "mean", "max", "min"]))
    second = draw(st.sampled_from(["sum", "mean", "max", "min"]))
    inner = draw(_expression(("x", "a"), 2))
    shift = draw(_expression(("x", "a"), 1))
    spread = draw(_expression(("c", "x", "a"), 2))
    out = draw(_expression(("c", "x", "a", "s"), 3))
    # at most one transcendental of VECTOR_MATH (bounded), in the passenger's reduction, the
    # kernel's reduction or its epilogue: the loop still lags (expensive_per_element)
    math = draw(st.sampled_from([None, "tanh({})", "sigmoid({})", "exp(-abs({}))"]))
    if math is not None:
        place = draw(st.sampled_from(["inner", "spread", "out"]))
        inner, spread, out = (math.format(e) if place == name else e
                              for name, e in (("inner", inner), ("spread", spread), ("out", out)))
    if draw(st.booleans()):
        out = f"{out} / (abs(s) + 1.0)"
    # the fixed terms keep each stage's dependence on the one before
    source = f"""
def f(x: {dtype}[N, M], a: {dtype}[M]) -> {dtype}[N, M] {{
    r = {first}({inner} + x * 0.75, axis=1, keepdims=true)
    c = x - r * 1.5 + {shift} * 0.25
    s = {second}({spread} + c * 0.5, axis=1, keepdims=true)
    return {out} + c * 0.125 + s * 0.0625
}}
"""
    return source, dtype


@settings(max_examples=24, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(_row_programs())
def test_random_row_programs_match_the_interpreter(program: tuple[str, str]) -> None:
    """Every example gives the interpreter's results on a result past STREAM_FROM_BYTES with
    misaligned rows, and every one that fusion made a row reduction and a row epilogue runs
    the vector path (its IR streams vectors). The outputs can cancel to near zero (`c + s`
    for a large row sum `s`), so the absolute tolerance scales with their magnitude."""
    source, dtype = program
    numpy_type = np.float32 if dtype == "f32" else np.float64
    width = 1001
    x = _rows(_large(width, np.dtype(numpy_type).itemsize), width, numpy_type, 17)
    arguments = [x, x[5] * 0.5]
    want = build(source, 3, target="interp").f(*arguments)
    got = build(source, 3).f(*arguments)
    compare(got, want, what=source, scale=max(1.0, float(np.max(np.abs(want)))))
    carried = _carried_shape(source)
    transcendental = any(name in source for name in ("tanh(", "sigmoid(", "exp("))
    event(f"carried: {carried}, transcendental: {transcendental}")
    if X86_64 and carried:
        vector = "<16 x float>" if dtype == "f32" else "<8 x double>"
        assert _streams(_llvm_ir(source), vector), source


def _carried_shape(source: str) -> bool:
    """Whether fusion made `f` a row reduction and then a row epilogue, which carries it (the
    other shapes, such as a first kernel writing whole rows, keep the scalar loops)."""
    module, _ = compile_to_ir(Source(source, "test.tc"), CompileOptions(opt_level=2))
    (function,) = module.functions
    kernels = [op for op in function.body.ops if isinstance(op, GenericOp)]
    return (len(kernels) == 2 and kernels[0].has_reduction and not kernels[0].is_row_epilogue
            and kernels[1].is_row_epilogue)
