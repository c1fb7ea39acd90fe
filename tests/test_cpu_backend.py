"""The CPU backend (tensorc/codegen/cpu/): every tc op lowered to native code gives the
interpreter's results at -O0 (every op its own kernel) and -O3 (fused), for symbolic sizes 0,
1, odd primes and large; plus the things around the numbers: IndexError from gathers, calls
from many threads, flat memory over many calls, identical LLVM IR for identical sources,
vectorised and threaded kernels, the `--emit` rungs of the CLI and the artifact cache.

Tolerances: see tests/cpu_harness.py (f32 2e-4 relative for sums and products, 1e-5 for
elementwise chains; f64 1e-9 / 1e-12; integers and bools exact).
"""

from __future__ import annotations

import ctypes
import os
import platform
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from cpu_harness import LEVELS, arguments, build, run_both

import tensorc
from tensorc.cli import main as cli_main
from tensorc.codegen.cpu.backend import CpuBuild
from tensorc.codegen.cpu.scalar import ScalarLowering
from tensorc.driver import CompileOptions, Source, compile_to_ir

ROOT = Path(__file__).resolve().parent.parent

OPS = """
def unary_f32(x: f32[N, M]) -> (f32[N, M], f32[N, M], f32[N, M], f32[N, M], f32[N, M],
                                f32[N, M], f32[N, M], f32[N, M]) {
    r0 = neg(x)
    r1 = abs(x)
    r2 = sign(x)
    r3 = exp(x)
    r4 = log(abs(x) + 0.5)
    r5 = log1p(abs(x))
    r6 = expm1(x)
    return r0, r1, r2, r3, r4, r5, r6, sqrt(abs(x))
}
def unary_f64(x: f64[N, M]) -> (f64[N, M], f64[N, M], f64[N, M], f64[N, M], f64[N, M],
                                f64[N, M], f64[N, M], f64[N, M], f64[N, M], f64[N, M]) {
    r0 = rsqrt(abs(x) + 0.1)
    r1 = sin(x)
    r2 = cos(x)
    r3 = tanh(x)
    r4 = sigmoid(x)
    r5 = relu(x)
    r6 = gelu(x)
    r7 = erf(x)
    return r0, r1, r2, r3, r4, r5, r6, r7, floor(x), ceil(x)
}
def unary_more(x: f32[N]) -> (f32[N], f32[N], f32[N], f32[N]) {
    return square(x), gelu(x, approximate=true), clip(x, -0.5, 0.5), exp(tanh(x)) * 2.0
}
def binary_f64(x: f64[N, M], y: f64[M]) -> (f64[N, M], f64[N, M], f64[N, M], f64[N, M],
                                           f64[N, M], f64[N, M], f64[N, M], f64[N, M],
                                           f64[N, M]) {
    r0 = x + y
    r1 = x - y
    r2 = x * y
    r3 = x / y
    r4 = x // y
    r5 = x % y
    r6 = maximum(x, y)
    r7 = minimum(x, y)
    return r0, r1, r2, r3, r4, r5, r6, r7, pow(abs(x), y)
}
def binary_f32(x: f32[N], y: f32[N]) -> (f32[N], f32[N], f32[N], f32[N]) {
    return x // y, x % y, pow(abs(x) + 0.5, y), x / y
}
def integers(a: i32[N], b: i32[N]) -> (i32[N], i32[N], i32[N], i32[N], i32[N], i32[N], i32[N],
                                       i32[N], i32[N], i32[N], i32[N]) {
    r0 = a + b
    r1 = a - b
    r2 = a * b
    r3 = a // b
    r4 = a % b
    r5 = maximum(a, b)
    r6 = minimum(a, b)
    r7 = abs(a)
    r8 = -a
    return r0, r1, r2, r3, r4, r5, r6, r7, r8, sign(a), square(a)
}
def integers64(a: i64[N], b: i64[N]) -> (i64[N], i64[N], i64[N], f32[N], i64[N]) {
    return a // b, a % b, pow(a, b), a / b, relu(a)
}
def comparisons(x: f32[N], y: f32[N]) -> (bool[N], bool[N], bool[N], bool[N], bool[N],
                                          bool[N], f32[N]) {
    return x < y, x <= y, x > y, x >= y, x == y, x != y, where(x > y, x, y)
}
def logic(a: bool[N], b: bool[N]) -> (bool[N], bool[N], bool[N], i32[N], bool[N]) {
    return a and b, a or b, not a, cast(a, i32), a == b
}
def casts(x: f32[N]) -> (i32[N], i64[N], f64[N], bool[N], f32[N], i32[N]) {
    r0 = cast(x * 1e10, i32)
    r1 = cast(x, i64)
    r2 = cast(x, f64)
    r3 = cast(x, bool)
    return r0, r1, r2, r3, cast(cast(x, i32), f32), cast(x / 0.0, i32)
}
def reductions(x: f32[N, M]) -> (f32[N], f32[M], f32, f32[N], f32[M], f32, f32[N, 1], f32,
                                 f32[N]) {
    r0 = sum(x, axis=1)
    r1 = sum(x, axis=0)
    r2 = sum(x)
    r3 = max(x, axis=1)
    r4 = min(x, axis=0)
    r5 = prod(x * 0.5 + 1.0)
    return r0, r1, r2, r3, r4, r5, mean(x, axis=1, keepdims=true), max(x), prod(x, axis=1)
}
def int_reductions(x: i32[N, M], b: bool[N, M]) -> (i32[N], i32[M], i32, i32[N], bool[N],
                                                   i32, bool[M]) {
    r0 = sum(x, axis=1)
    r1 = max(x, axis=0)
    r2 = min(x)
    r3 = prod(x, axis=1)
    r4 = max(b, axis=1)
    r5 = sum(b)
    return r0, r1, r2, r3, r4, r5, min(b, axis=0)
}
def arg_extremes(x: f32[N, M], y: i32[N, M]) -> (i32[N], i32[M], i32, i32[N], i32[M]) {
    return argmax(x, axis=1), argmin(x, axis=0), argmax(x), argmax(y, axis=1), argmin(y, axis=0)
}
def nn(x: f32[N, M], g: f32[M], b: f32[M]) -> (f32[N, M], f32[N, M], f32[N], f32[N],
                                               f32[N, M]) {
    r0 = softmax(x, axis=-1)
    r1 = log_softmax(x, axis=-1)
    r2 = logsumexp(x, axis=-1)
    r3 = var(x, axis=-1)
    return r0, r1, r2, r3, layer_norm(x, g, b)
}
def nn_axis0(x: f64[N, M]) -> (f64[N, M], f64[M]) {
    return softmax(x, axis=0), logsumexp(x, axis=0)
}
def losses(x: f32[N, M], y: i32[N], t: f32[N, M]) -> (f32[N], f32) {
    return cross_entropy(x, y), mse(x, t)
}
def matmuls(x: f32[N, M], w: f32[M, 5], b: f32[5]) -> (f32[N, 5], f32[N, 5], f32[5, 5],
                                                       f32[M, M]) {
    return x @ w, relu(x @ w + b), w.T @ w, x.T @ x
}
def batched(x: f64[2, N, M], w: f64[M, 3], z: f64[2, M, 4]) -> (f64[2, N, 3], f64[2, N, 4]) {
    return x @ w, tanh(x @ z)
}
def vectors(x: f32[M], w: f32[M, 3], y: f32[M]) -> (f32[3], f32) {
    return x @ w, dot(x, y)
}
def int_matmul(a: i32[N, M], b: i32[M, 3]) -> i32[N, 3] {
    return a @ b
}
def views(x: f32[N, M]) -> (f32[M, N], f32[N * M], f32[N, 1, M], f32[1, N, M], f32[M, N]) {
    r0 = x.T
    r1 = reshape(x, [-1])
    r2 = expand_dims(x, 1)
    r3 = reshape(x, [1, N, M])
    return r0, r1, r2, r3, transpose(x, [1, 0]) * 2.0
}
def slices(x: f32[N, M]) {
    return x[1:], x[::2], x[0], x[:, -1], x[1:3, 2:], x[-2:, ::3]
}
def joins(x: f32[N, M], y: f32[N, 3]) -> (f32[N, M + 3], f32[2, N, M], f32[N + N, M]) {
    return concat([x, y], 1), stack([x, x], 0), concat([x, x * 2.0], 0)
}
def gathers(x: f32[N, M], i: i32[K], j: i32[N, 1]) -> (f32[K, M], f32[N, K], f32[N, 1],
                                                       f32[K, 4]) {
    return take(x, i, 0), take(x, i, 1), take_along_axis(x, j, 1), one_hot(i, 4)
}
def constants(x: f32[N]) -> (f32[N], f32[3], i32, f32[2, 2], f32[N], f32[N]) {
    r0 = x + 1.0
    r1 = zeros([3], f32) + 2.0
    r2 = x.shape[0]
    r3 = ones([2, 2], f32)
    r4 = full([N], 3.0)
    return r0, r1, r2, r3, r4, zeros_like(x)
}
def ranges(x: f32[N]) -> (i32[N], f32[N], f32[N]) {
    return arange(N), x * cast(arange(N), f32), one_hot(arange(N), 3)[:, 0] + x
}
def scatters(x: f32[N, M], w: f32[M, 3], i: i32[K]) -> (f32[M, 3], f32[N, M]) {
    loss = sum(take(x @ w, i, 0) * 2.0)
    gw, gx = grad(loss, [w, x])
    return gw, gx
}
def scatters_along(x: f32[N, M], j: i32[N, 1]) -> f32[N, M] {
    return grad(sum(take_along_axis(x, j, 1) * 3.0), x)
}
def broadcasts(x: f32[N, 1], y: f32[1, M], s: f32) -> (f32[N, M], f32[N, M], f32[1, M]) {
    return x + y, broadcast_to(x, [N, M]), y * s
}
def identities(x: f32[N], s: f32) -> (f32[N], f32[N], f32, f32) {
    return x, x, s, s * 2.0
}
def training(x: f32[N, M], y: i32[N], w: f32[M, 4], b: f32[4], lr: f32) -> (f32[M, 4], f32[4],
                                                                            f32) {
    loss = mean(cross_entropy(x @ w + b, y))
    gw, gb = grad(loss, [w, b])
    return w - lr * gw, b - lr * gb, loss
}
"""

ENVS = (
    {"N": 0, "M": 3, "K": 0},
    {"N": 1, "M": 1, "K": 1},
    {"N": 7, "M": 13, "K": 5},
    {"N": 13, "M": 7, "K": 3},
    {"N": 1000, "M": 3, "K": 11},
)
ZERO_M = {"N": 4, "M": 0, "K": 2}
FUNCTIONS = sorted(name.split("(")[0] for name in OPS.split("def ")[1:])
ELEMENTWISE = {"unary_f32", "unary_f64", "unary_more", "binary_f64", "binary_f32", "casts",
               "comparisons", "logic", "integers", "integers64", "broadcasts", "views"}
INDEXED = {"gathers": ("i", "j"), "scatters": ("i",), "scatters_along": ("j",)}


def _arguments(name: str, signature, env: dict, rng: np.random.Generator) -> list:
    ranges = {}
    if name in ("integers", "integers64"):
        ranges = {"a": (-9, 9), "b": (-3, 3)}
    values = arguments(signature, env, rng, **ranges)
    params = [p.name for p in signature.params]
    for index_name in INDEXED.get(name, ()):
        position = params.index(index_name)
        axis_size = env["N"] if index_name == "i" and name != "gathers" else env["M"]
        if name == "gathers" and index_name == "i":
            axis_size = min(env["N"], env["M"])
        shape = values[position].shape
        if axis_size == 0:
            values[position] = np.zeros(shape, np.int32)[:0] if 0 in shape else None
            if values[position] is None:
                return []
            continue
        values[position] = rng.integers(-axis_size, axis_size, shape).astype(np.int32)
    if name in ("losses", "training"):
        position = params.index("y")
        values[position] = rng.integers(0, max(env["M"], 1), values[position].shape).astype(
            np.int32
        )
    return values


@pytest.mark.parametrize("level", LEVELS, ids=lambda level: f"O{level}")
@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_op_matches_the_interpreter(name: str, level: int) -> None:
    signature = build(OPS, level).functions[name]
    kind = "elementwise" if name in ELEMENTWISE else "accumulating"
    rng = np.random.default_rng(sum(map(ord, name)))
    for env in ENVS:
        if name in ("losses", "training") and env["M"] == 0:
            continue
        values = _arguments(name, signature, env, rng)
        if values:
            run_both(OPS, level, name, values, kind)


@pytest.mark.parametrize("level", LEVELS, ids=lambda level: f"O{level}")
@pytest.mark.parametrize(
    "name", ["unary_f32", "reductions", "matmuls", "nn", "views", "slices", "joins"]
)
def test_zero_size_inner_dimension(name: str, level: int) -> None:
    signature = build(OPS, level).functions[name]
    values = arguments(signature, ZERO_M, np.random.default_rng(1))
    run_both(OPS, level, name, values)


@pytest.mark.parametrize("level", LEVELS, ids=lambda level: f"O{level}")
def test_non_contiguous_inputs(level: int) -> None:
    rng = np.random.default_rng(2)
    base = rng.standard_normal((26, 14)).astype(np.float32)
    x = base[::2, ::2]  # a strided view, [13, 7]
    run_both(OPS, level, "reductions", [x])
    run_both(OPS, level, "nn", [base.T[:7, :13], base[0, :13], base[1, ::-1][:13]])
    run_both(OPS, level, "matmuls", [x, base[:7, 3:8], base[5, ::-2][:5]])
    run_both(OPS, level, "views", [np.asfortranarray(x)])


@pytest.mark.parametrize("level", LEVELS, ids=lambda level: f"O{level}")
def test_large_kernels_use_all_threads_and_match(level: int) -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3000, 257)).astype(np.float32)
    run_both(OPS, level, "nn", [x, x[0], x[1]])
    run_both(OPS, level, "reductions", [x], scale=10)  # sums of 3000 terms
    run_both(OPS, level, "matmuls", [x[:, :200], x[:200, :5], x[0, :5]], scale=10)


@pytest.mark.parametrize("level", LEVELS, ids=lambda level: f"O{level}")
def test_ir_input_with_a_bool_matmul(level: int, tmp_path: Path) -> None:
    """`.tcir` input compiles like source; a bool matmul (only reachable from IR) stays a tc
    op through fusion and is lowered as or-of-ands loops."""
    path = tmp_path / "bmm.tcir"
    path.write_text(
        "func.func @f(%a: bool[N, 3], %b: bool[3, 2]) -> bool[N, 2] {\n"
        "  %0 = tc.matmul %a, %b : (bool[N, 3], bool[3, 2]) -> bool[N, 2]\n"
        "  func.return %0 : (bool[N, 2]) -> ()\n"
        "}\n"
    )
    rng = np.random.default_rng(6)
    for n in (0, 1, 7):
        a, b = rng.random((n, 3)) < 0.4, rng.random((3, 2)) < 0.4
        run_both(str(path), level, "f", [a, b])


# ----- index errors ------------------------------------------------------------------------


@pytest.mark.parametrize("level", LEVELS, ids=lambda level: f"O{level}")
def test_out_of_range_indices_raise_index_error(level: int) -> None:
    module = build(OPS, level)
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    good_j = np.zeros((3, 1), np.int32)
    with pytest.raises(IndexError, match=r"take: index 5 is out of range for axis 0 with size 3"):
        module.gathers(x, np.array([0, 5], np.int32), good_j)
    with pytest.raises(IndexError, match="index -4 is out of range"):
        module.gathers(x, np.array([-4], np.int32), good_j)
    with pytest.raises(IndexError, match="take_along_axis: index 4 is out of range for axis 1"):
        module.gathers(x, np.array([0], np.int32), np.array([[0], [4], [1]], np.int32))
    with pytest.raises(IndexError):
        module.losses(x, np.array([0, 9, 1], np.int32), x)
    with pytest.raises(IndexError):
        module.scatters(x, np.ones((4, 3), np.float32), np.array([3], np.int32))
    # the module still works after a failed call
    got = module.gathers(x, np.array([2, -3], np.int32), np.array([[3], [-1], [0]], np.int32))
    np.testing.assert_array_equal(got[0], x[[2, 0]])
    np.testing.assert_array_equal(got[2][:, 0], [3, 7, 8])


def test_error_struct_through_the_c_abi(tmp_path: Path) -> None:
    source = "def f(x: f32[N], i: i32[K]) -> f32[K] { return take(x, i, 0) }\n"
    path = tmp_path / "take.so"
    _build(source, 2).write_shared_object(path)
    library = ctypes.CDLL(str(path))
    entry = library.tensorc_f
    entry.restype = ctypes.c_int32

    class Error(ctypes.Structure):
        _fields_ = [("code", ctypes.c_int32), ("op", ctypes.c_int32),
                    ("detail", ctypes.c_int64 * 4), ("message", ctypes.c_char * 256)]

    x = np.arange(4, dtype=np.float32)
    indices = np.array([1, 7], np.int32)
    out = np.zeros(2, np.float32)
    args = (ctypes.c_void_p * 2)(x.ctypes.data, indices.ctypes.data)
    results = (ctypes.c_void_p * 1)(out.ctypes.data)
    dims = (ctypes.c_int64 * 2)(4, 2)
    error = Error()
    assert entry(args, results, dims, ctypes.byref(error)) == 1
    assert error.code == 1
    assert list(error.detail)[:3] == [7, 0, 4]
    assert error.message.decode() == "take: index 7 is out of range for axis 0 with size 4"
    assert entry(args, results, dims, None) == 1  # a NULL error struct is allowed
    indices[1] = -1
    assert entry(args, results, dims, None) == 0
    np.testing.assert_array_equal(out, [1.0, 3.0])


# ----- threads and memory ------------------------------------------------------------------


def test_a_thousand_calls_from_four_threads() -> None:
    module = build(OPS, 3)
    rng = np.random.default_rng(4)
    inputs = [rng.standard_normal((n, 33)).astype(np.float32) for n in (1, 7, 400, 3000)]
    gamma, beta = rng.standard_normal(33).astype(np.float32), np.zeros(33, np.float32)
    expected = [module.nn(x, gamma, beta) for x in inputs]
    failures: list[str] = []

    def worker(seed: int) -> None:
        for call in range(250):
            index = (seed + call) % len(inputs)
            got = module.nn(inputs[index], gamma, beta)
            for g, w in zip(got, expected[index]):
                if not np.array_equal(g, w, equal_nan=True):
                    failures.append(f"thread {seed} call {call}")
                    return

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures[:3]


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc (Linux)")
def test_memory_stays_flat_over_100000_calls() -> None:
    source = """
    def small(x: f32[N], y: f32[N]) -> (f32[N], f32) {
        h = exp(x) * y + concat([x, y], 0)[:N]
        return h, sum(h * x)
    }
    """
    module = build(source, 3)
    x = np.linspace(-1, 1, 37, dtype=np.float32)
    y = np.ones(37, np.float32)
    for _ in range(2000):
        module.small(x, y)
    before = _rss_bytes()
    for _ in range(100_000):
        module.small(x, y)
    growth = _rss_bytes() - before
    assert growth < 4 * 1024 * 1024, f"RSS grew by {growth / 1e6:.1f} MB"


# ----- the generated code ------------------------------------------------------------------


def _build(source: str, level: int) -> CpuBuild:
    options = CompileOptions(opt_level=level)
    module, _ = compile_to_ir(Source(source, "test.tc"), options)
    return CpuBuild.create(module, source, level)


def test_same_source_gives_identical_llvm_ir(tmp_path: Path) -> None:
    first, second = _build(OPS, 2), _build(OPS, 2)
    assert str(first.unoptimized) == str(second.unoptimized)
    assert first.llvm_ir() == second.llvm_ir()
    texts = []
    for seed in ("1", "2"):  # nothing may depend on hash order
        out = tmp_path / f"mlp{seed}.ll"
        command = [sys.executable, "-m", "tensorc", "compile", str(ROOT / "examples" / "mlp.tc"),
                   "--emit=llvm", "-o", str(out)]
        subprocess.run(command, check=True, env={**os.environ, "PYTHONHASHSEED": seed})
        texts.append(out.read_text())
    assert texts[0] == texts[1]


def test_elementwise_and_reduction_kernels_are_vectorised_and_threaded() -> None:
    source = """
    def act(x: f32[N, M], b: f32[M]) -> f32[N, M] { return tanh(x * 2.0 + b) }
    def rows(x: f32[N, M]) -> f32[N] { return sum(exp(x), axis=1) }
    def cols(x: f64[N, M]) -> f64[M] { return max(x, axis=0) }
    """
    text = _build(source, 2).llvm_ir()
    for name in ("act", "rows", "cols"):
        kernel = _function_text(text, f"@{name}.kernel0.task")
        assert "x float>" in kernel or "x double>" in kernel, f"{name} is not vectorised"
        entry = _function_text(text, f"@tensorc_{name}(")
        assert "@__tensorc_parallel_for" in entry
    assert "call float @expf" not in text and "call float @tanhf" not in text
    assert "fadd reassoc" in _function_text(text, "@rows.kernel0.task")


def _function_text(module_text: str, name: str) -> str:
    """The definition of the function whose name starts with `name` (e.g. `@f(`)."""
    for chunk in module_text.replace('"', "").split("\ndefine ")[1:]:
        if name in chunk.split("\n", 1)[0]:
            return chunk[: chunk.index("\n}\n")]
    raise AssertionError(f"no definition of {name}")


def test_contractions_call_the_packed_gemm_with_a_fused_epilogue() -> None:
    source = "def f(x: f32[N, K], w: f32[K, M], b: f32[M]) -> f32[N, M] { return relu(x @ w + b) }"
    text = _build(source, 2).llvm_ir()
    assert "@__tensorc_gemm_f32" in text
    assert "f.kernel0.epilogue" in text
    # the C block (the argument before ldc) is the op's own result: noalias, so LLVM need not
    # version the loop on runtime alias checks (which cost it ~30 ms per epilogue)
    epilogue = _function_text(text, "@f.kernel0.epilogue(")
    assert re.search(r"ptr noalias[^,]*%\S+, i64 %\S+\)", epilogue.splitlines()[0])


def test_static_temporaries_live_on_the_stack_and_symbolic_ones_in_one_heap_arena() -> None:
    static = _build("def f(x: f32[4, 4]) -> f32 { return sum(exp(x) * 2.0, axis=[0, 1]) }", 0)
    entry = _function_text(str(static.unoptimized), "@tensorc_f(")
    assert "aligned_alloc" not in entry
    symbolic = _build("def f(x: f32[N]) -> f32 { return sum(exp(x) * 2.0) }", 0)
    entry = _function_text(str(symbolic.unoptimized), "@tensorc_f(")
    assert entry.count("aligned_alloc") == 1 and "free" in entry


# ----- the command line and the cache ------------------------------------------------------


def test_cli_emits_every_native_rung(tmp_path: Path, capsys) -> None:
    source = ROOT / "examples" / "mlp.tc"
    outputs = {kind: tmp_path / f"mlp.{kind}" for kind in ("llvm", "asm", "obj", "header", "so")}
    for kind, path in outputs.items():
        assert cli_main(["compile", str(source), f"--emit={kind}", "-o", str(path)]) == 0, kind
    assert "define" in outputs["llvm"].read_text() and "@tensorc_mlp" in outputs["llvm"].read_text()
    assert "tensorc_train_step:" in outputs["asm"].read_text()
    assert outputs["obj"].read_bytes()[:4] == b"\x7fELF"
    header = outputs["header"].read_text()
    assert "int32_t tensorc_predict(" in header and "tensorc_error" in header
    module = tensorc.load(str(outputs["so"]))
    assert set(module.functions) == {"mlp", "predict", "train_step"}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in outputs.values())


def test_cli_failed_compile_leaves_no_output(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.tc"
    bad.write_text("def f(x: f32[N]) -> f32[N] { return y }\n")
    out = tmp_path / "bad.so"
    assert cli_main(["compile", str(bad), "-o", str(out)]) == 1
    assert "error" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [bad]


def test_compile_caches_artifacts_and_a_hit_skips_llvmlite(tmp_path: Path) -> None:
    source = "def twice(x: f64[N]) -> f64[N] { return x * 2.0 }\n"
    program = (
        "import sys, time, numpy as np, tensorc\n"
        "start = time.perf_counter()\n"
        f"module = tensorc.compile({source!r}, target='cpu')\n"
        "elapsed = time.perf_counter() - start\n"
        "assert module.twice(np.arange(3.0)).tolist() == [0.0, 2.0, 4.0]\n"
        "print('llvmlite' in sys.modules, elapsed)\n"
    )
    environment = {**os.environ, "TENSORC_CACHE_DIR": str(tmp_path)}
    runs = [
        subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                       env=environment, check=True).stdout.split()
        for _ in range(2)
    ]
    assert runs[0][0] == "True" and runs[1][0] == "False"
    assert float(runs[1][1]) < 0.2
    assert len(list((tmp_path / "artifacts").glob("*.so"))) == 1


# ----- row epilogues: stashed reduction values and row-invariant reciprocals --------------

ROW_SCALE = """
def scale(x: f32[N, M]) -> f32[N, M] { return x / sum(x, axis=1, keepdims=true) }
def scale64(x: f64[N, M]) -> f64[N, M] { return x / sum(x, axis=1, keepdims=true) }
def soft(x: f32[N, M]) -> f32[N, M] { return softmax(x, axis=-1) }
"""


def test_row_invariant_division_is_a_reciprocal_multiply_only_where_exact() -> None:
    text = _build(ROW_SCALE, 2).llvm_ir()
    kernel = _function_text(text, "@scale.kernel")
    assert "fmul <16 x float>" in kernel and "fdiv <16 x float>" in kernel  # both paths
    module = build(ROW_SCALE, 2)
    rng = np.random.default_rng(3)
    for dtype, name, tiny, huge in ((np.float32, "scale", 1e-41, 3e37),
                                    (np.float64, "scale64", 1e-310, 1e306)):
        x = rng.uniform(0.5, 2.0, (6, 40)).astype(dtype)
        x[1] *= tiny  # subnormal row sums: 1/sum overflows, so the division path runs
        x[2] *= huge  # 1/sum would be subnormal
        x[3] = 0.0  # 0/0
        x[4, 0] = np.inf
        got = getattr(module, name)(x)
        with np.errstate(all="ignore"):
            want = x / x.sum(axis=1, keepdims=True, dtype=np.float64).astype(dtype)
        np.testing.assert_allclose(got, want, rtol=4 * np.finfo(dtype).eps * 40, equal_nan=True)


def _softmax_rows(x: np.ndarray) -> np.ndarray:
    """NumPy's softmax over axis 1 (NaN and inf rows give what the formula gives)."""
    with np.errstate(all="ignore"):
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


def test_softmax_computes_exp_once_per_element(monkeypatch: pytest.MonkeyPatch) -> None:
    """row_epilogue.py, Stashing: every `exp` softmax's kernel emits -- in the carried loop,
    and in the lagged one's scalar and vector parts (carried_rows.py, Stash rows) -- is its
    reduction's; its epilogue reads the value back."""
    emitted: list = []
    emit = ScalarLowering.emit

    def recording(self, op, operands):
        emitted.append(op)
        return emit(self, op, operands)

    monkeypatch.setattr(ScalarLowering, "emit", recording)
    text = str(_build(ROW_SCALE, 2).unoptimized)
    exps = [op for op in emitted if op.name == "tc.exp"]
    kernels = {id(op.parent.parent_op): op.parent.parent_op for op in exps}
    assert len(kernels) == 1
    (kernel,) = kernels.values()
    assert all(op.parent is kernel.reduce_block for op in exps)
    assert any(op.parent is kernel.compute_block for op in emitted)
    if platform.machine() in ("x86_64", "AMD64"):  # streaming, and so lagging, is x86-64's
        assert len(exps) >= 3  # carried, lagged scalar and lagged vector
        kernel_text = _function_text(text, "@soft.kernel1(")
        assert "<16 x float>" in kernel_text and "stash_rows" in kernel_text
    x = np.random.default_rng(4).standard_normal((33, 129)).astype(np.float32) * 30
    got = build(ROW_SCALE, 2).soft(x)
    np.testing.assert_allclose(got, _softmax_rows(x), rtol=2e-6, atol=1e-30)


CHAINED = """
def norm(x: f32[N, M], g: f32[M], b: f32[M]) -> f32[N, M] { return layer_norm(x, g, b) }
def rows(x: f64[N, M]) -> (f64[N, M], f64[N]) {
    y = x - max(x, axis=1, keepdims=true)
    z = y / sum(abs(y), axis=1, keepdims=true)
    w = z * mean(z * z, axis=1, keepdims=true)
    return w, sum(w, axis=1)
}
"""


def test_row_kernels_run_as_one_chain_task() -> None:
    text = _build(CHAINED, 2).llvm_ir()
    assert "@norm.kernel0.chain.task" in text
    assert "@rows.kernel0.chain.task" in text


@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (0, 5), (5, 0), (613, 97), (3, 4099)])
def test_chained_row_kernels_match_the_interpreter(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    n, m = shape
    x = rng.standard_normal(shape).astype(np.float32)
    g, b = rng.standard_normal(m).astype(np.float32), rng.standard_normal(m).astype(np.float32)
    run_both(CHAINED, 2, "norm", [x, g, b])
    run_both(CHAINED, 2, "rows", [x.astype(np.float64) * 3])


def test_a_chain_carries_its_first_row_reduction_one_row_ahead() -> None:
    """carried_rows.py: the chain task calls only the second kernel's nest, which
    reduces row `begin` of the first kernel before its row loop and then the row ahead inside
    its own reduction loop (softmax, layer norm). `rows` starts with a kernel that writes
    whole rows (`x - max`), which cannot ride along, so its chain runs kernel by kernel."""
    text = str(_build(CHAINED + ROW_SCALE, 2).unoptimized)
    rows_task = _function_text(text, "@rows.kernel0.chain.task(")
    assert "call void @rows.kernel0(" in rows_task
    for function in ("norm", "soft"):
        task = _function_text(text, f"@{function}.kernel0.chain.task(")
        nests = re.findall(rf"call void @{function}\.kernel(\d+)\(", task)
        assert nests and "0" not in nests, nests
        host = _function_text(text, f"@{function}.kernel{nests[0]}(")
        # one row loop, and on x86-64 a lagged copy for calls that stream (carried_rows.py)
        loops = 2 if platform.machine() in ("x86_64", "AMD64") else 1
        assert len(re.findall(r"^p0\.header(?:\.\d+)?:", host, re.M)) == loops
        # the first kernel's row `begin` before it, then its own reduction loop
        assert len(re.findall(r"^r0\.header(?:\.\d+)?:", host, re.M)) >= 2
    soft = _function_text(text, "@soft.kernel1(")
    assert "@llvm.maximum.f32" in soft  # the row max rides in the exponentials' nest


SHORT_STATIC_ROWS = """
def short(x: f32[N, 10]) -> f32[N, 10] { return log_softmax(x, axis=-1) }
def wide(x: f32[N, 65]) -> f32[N, 65] { return log_softmax(x, axis=-1) }
"""


def test_short_static_rows_are_not_carried() -> None:
    """carried_rows.py, SHORT_ROW: a static width of at most 64 runs kernel by kernel (LLVM unrolls
    such rows whole and runs them faster so); a wider static width is carried. Both give the
    interpreter's results."""
    text = str(_build(SHORT_STATIC_ROWS, 2).unoptimized)
    short_task = _function_text(text, "@short.kernel0.chain.task(")
    assert "call void @short.kernel0(" in short_task and "call void @short.kernel1(" in short_task
    wide_task = _function_text(text, "@wide.kernel0.chain.task(")
    assert "call void @wide.kernel0(" not in wide_task
    x = np.random.default_rng(5).standard_normal((333, 65)).astype(np.float32)
    run_both(SHORT_STATIC_ROWS, 2, "short", [np.ascontiguousarray(x[:, :10])])
    run_both(SHORT_STATIC_ROWS, 2, "wide", [x])


RAGGED_ROWS = """
def soft(x: f32[N, M]) -> f32[N, M] { return softmax(x, axis=-1) }
def logsoft(x: f64[N, M]) -> f64[N, M] { return log_softmax(x, axis=-1) }
def norm(x: f32[N, M], g: f32[M], b: f32[M]) -> f32[N, M] { return layer_norm(x, g, b) }
def squares(x: f32[N, M]) -> f32[N] { return sum(x * x, axis=1) }
def fixed(x: f32[N, 100]) -> f32[N, 100] { return softmax(x, axis=-1) }
"""


def test_short_and_ragged_symbolic_rows_get_a_tail_folded_copy() -> None:
    """loops.py, TAIL_FOLDED_BELOW: a row loop of a symbolic width has a copy whose remainder
    LLVM folds into masked vector iterations (the loop ID asks for it), taken for rows under
    64 and for ragged rows under 512; a static width has no copy. Every width around the
    choice gives the interpreter's results."""
    text = str(_build(RAGGED_ROWS, 2).unoptimized)
    assert '!"llvm.loop.vectorize.predicate.enable", i1 1' in text
    plain = text.replace('"', "")

    def kernels(function: str) -> str:
        names = re.findall(rf"^define [^@]*@({function}\.kernel\d+)\(", plain, re.M)
        assert names, function
        return "".join(_function_text(text, f"@{name}(") for name in names)

    for function in ("soft", "logsoft", "norm", "squares"):
        assert "!llvm.loop" in kernels(function), function
    assert "!llvm.loop" not in kernels("fixed")
    rng = np.random.default_rng(9)
    for width in (1, 5, 16, 63, 64, 65, 100, 255, 256, 511, 512, 513):
        x = rng.standard_normal((37, width)).astype(np.float32)
        x[3, width // 2] = np.nan
        g, b = rng.standard_normal(width).astype(np.float32), np.ones(width, np.float32)
        run_both(RAGGED_ROWS, 2, "soft", [x])
        run_both(RAGGED_ROWS, 2, "logsoft", [x.astype(np.float64)])
        run_both(RAGGED_ROWS, 2, "norm", [x, g, b])
        run_both(RAGGED_ROWS, 2, "squares", [x])


def test_carried_rows_stay_independent() -> None:
    """A NaN, an infinity or a huge value in one row must not reach its neighbours through the
    row-ahead reduction, at any row (the first, the last, a task's boundary)."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((613, 97)).astype(np.float32)
    for row in (0, 1, 300, 306, 307, 611, 612):
        x[row, row % 97] = (np.nan, np.inf, -np.inf, 3e38)[row % 4]
    got = build(ROW_SCALE, 2).soft(x)
    np.testing.assert_allclose(got, _softmax_rows(x), rtol=2e-6, atol=1e-30, equal_nan=True)
    g, b = np.ones(97, np.float32), np.zeros(97, np.float32)
    run_both(CHAINED, 2, "norm", [x, g, b])


def test_fast_calls_go_through_tensorc_invoke_and_misaligned_arrays_do_not() -> None:
    module = build("def f(x: f32[N]) -> f32[N] { return x * 3.0 }", 2)
    source = type(module.f)._source
    assert "invoke(pack_packet(" in source
    assert "from_address(id(x)" not in source.split("invoke(")[0]  # read natively
    assert ".flags" not in source  # checked natively, by __tensorc_invoke_checked
    raw = np.zeros(4 * 9 + 1, np.uint8)
    misaligned = np.frombuffer(raw.data, np.float32, count=9, offset=1)
    assert not misaligned.flags.aligned
    np.testing.assert_array_equal(module.f(misaligned), np.zeros(9, np.float32))
    x = np.arange(9, dtype=np.float32)
    np.testing.assert_array_equal(module.f(x), x * 3)


def test_support_code_is_not_exported(tmp_path: Path) -> None:
    source = "def f(a: f32[M, K], b: f32[K, N]) -> f32[M, N] { return relu(a @ b) }"
    path = tmp_path / "mm.so"
    _build(source, 2).write_shared_object(path)
    library = ctypes.CDLL(str(path))
    for exported in ("tensorc_f", "__tensorc_invoke", "__tensorc_invoke_checked"):
        assert hasattr(library, exported)
    for hidden in ("__tensorc_gemm_f32", "__tensorc_gemm_f64", "__tensorc_parallel_for",
                   "__tensorc_num_threads"):
        assert not hasattr(library, hidden), f"{hidden} is exported"
