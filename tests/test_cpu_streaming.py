"""Streaming stores (tensorc/codegen/cpu/streaming.py): a cheap elementwise kernel writing a large
function result stages its innermost loop through a stack buffer and copies it out with
non-temporal stores. Results must not change: every case here is at least STREAM_FROM_BYTES,
so the staged path runs, and covers what the copy must get right -- heads and tails that are
not whole 64-byte lines (odd lengths, rows of a width that is no multiple of 16, the second
thread's chunk starting mid-line), 1-, 2-, 4- and 8-byte elements and two results of one
kernel."""

from __future__ import annotations

import platform

import numpy as np
import pytest
from cpu_harness import build, run_both

from tensorc.codegen.cpu.backend import CpuBuild
from tensorc.codegen.cpu.streaming import STREAM_FROM_BYTES
from tensorc.driver import CompileOptions, Source, compile_to_ir

X86_64 = platform.machine() in ("x86_64", "AMD64")

SOURCE = """
def affine(x: f32[N]) -> f32[N] { return x * 2.0 + 1.0 }
def transposed(x: f32[M, N]) -> f32[N, M] { return x.T * 2.0 }
def rows(x: f32[N, M], b: f32[M]) -> f32[N, M] { return x + b }
def positive(x: f32[N]) -> bool[N] { return x > 0.0 }
def two(x: f64[N]) -> (f64[N], f64[N]) { return x * 3.0, x - 1.0 }
def half(x: f16[N]) -> f16[N] { return x * 2.0 }
def counts(a: i32[N], b: i32[N]) -> i32[N] { return a * b - a }
"""

LENGTH_F32 = STREAM_FROM_BYTES // 4 + 1003  # odd: the last block and the last line are partial


@pytest.mark.parametrize("level", [0, 3])
def test_large_elementwise_results_match_the_interpreter(level: int) -> None:
    rng = np.random.default_rng(7)
    x = rng.uniform(-3, 3, LENGTH_F32).astype(np.float32)
    got = run_both(SOURCE, level, "affine", [x], kind="elementwise")
    np.testing.assert_array_equal(got, x * np.float32(2) + np.float32(1))
    wide = rng.uniform(-3, 3, (1001, 2111)).astype(np.float32)  # rows of 1001: lines misalign
    np.testing.assert_array_equal(run_both(SOURCE, level, "transposed", [wide]), wide.T * 2)
    b = rng.uniform(-3, 3, 1001).astype(np.float32)
    got = run_both(SOURCE, level, "rows", [wide.T.copy(), b], kind="elementwise")
    np.testing.assert_array_equal(got, wide.T + b)
    signs = rng.uniform(-1, 1, STREAM_FROM_BYTES + 77).astype(np.float32)
    np.testing.assert_array_equal(run_both(SOURCE, level, "positive", [signs]), signs > 0)
    doubles = rng.uniform(-3, 3, STREAM_FROM_BYTES // 8 + 5)
    tripled, lowered = run_both(SOURCE, level, "two", [doubles], kind="elementwise")
    np.testing.assert_array_equal(tripled, doubles * 3)
    np.testing.assert_array_equal(lowered, doubles - 1)
    halves = rng.uniform(-3, 3, STREAM_FROM_BYTES // 2 + 9).astype(np.float16)
    np.testing.assert_array_equal(run_both(SOURCE, level, "half", [halves]), halves * 2)
    a = rng.integers(-1000, 1000, LENGTH_F32).astype(np.int32)
    c = rng.integers(-1000, 1000, LENGTH_F32).astype(np.int32)
    np.testing.assert_array_equal(run_both(SOURCE, level, "counts", [a, c]), a * c - a)


def test_small_calls_of_a_streaming_kernel_take_the_plain_path() -> None:
    """The same entry point below STREAM_FROM_BYTES (and with chunks shorter than a block)."""
    module = build(SOURCE, 3)
    for length in (0, 1, 17, 255, 256, 257, 100_003):
        x = np.arange(length, dtype=np.float32)
        np.testing.assert_array_equal(module.affine(x), x * 2 + 1)


def test_results_are_identical_from_many_calls() -> None:
    """Each call streams into a fresh (pooled) result; none sees another's lines."""
    module = build(SOURCE, 3)
    x = np.random.default_rng(3).uniform(-3, 3, LENGTH_F32).astype(np.float32)
    want = x * np.float32(2) + np.float32(1)
    results = [module.affine(x) for _ in range(8)]
    for result in results:
        np.testing.assert_array_equal(result, want)


def _llvm_ir(source: str) -> str:
    module, _ = compile_to_ir(Source(source, "test.tc"), CompileOptions(opt_level=2))
    return CpuBuild.create(module, source, 2).llvm_ir()


@pytest.mark.skipif(not X86_64, reason="streaming stores are emitted for x86-64 only")
def test_only_large_cheap_elementwise_results_get_streaming_stores() -> None:
    streamed = _llvm_ir("def f(x: f32[N], b: f32[N]) -> f32[N] { return relu(x * 2.0 + b) }")
    assert "!nontemporal" in streamed and "@llvm.x86.sse.sfence" in streamed
    for source in (
        "def f(x: f32[1000]) -> f32[1000] { return x * 2.0 }",  # statically small
        "def f(x: f32[N]) -> f32[N] { return tanh(x) }",  # compute-bound
        "def f(x: f32[N, M]) -> f32[N] { return sum(x, axis=1) }",  # a reduction
        # a row kernel outside a chain (chains lag and stream: test_cpu_vector_rows.py)
        "def f(x: f32[N, M]) -> f32[N, M] { return x / sum(x, axis=1, keepdims=true) }",
        "def f(x: f32[N]) -> f32[N] { t = exp(x)\n return t * sum(t) }",  # a full reduction
    ):
        assert "!nontemporal" not in _llvm_ir(source), source
