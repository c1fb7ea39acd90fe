"""The generated GEMM (tensorc/codegen/cpu/gemm.py) against NumPy.

One shared object holds the host-tuned GEMMs (f32 and f64, plain and batched), the same f32
GEMM generated for narrower x86 targets (AVX2+FMA, SSE2 without FMA: other tile shapes and the
fmul+fadd path) and two epilogues written with llvmlite.ir: `bias_relu` (C = max(C + bias, 0))
and `count_calls` (counts how often each element of C was handed to an epilogue). It is
compiled like an artifact (host target machine, PIC, O3) and linked with the thread pool.
"""

from __future__ import annotations

import ctypes
import mmap
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import llvmlite.binding as llvm
import llvmlite.ir as ir
import numpy as np
import pytest

from tensorc.codegen.cpu.gemm import (
    EPILOGUE_TYPE,
    OUT_OF_MEMORY,
    TargetInfo,
    choose_tiles,
    emit_batched_gemm,
    emit_gemm,
)

ROOT = Path(__file__).resolve().parent.parent
THREAD_POOL_C = ROOT / "tensorc" / "codegen" / "support" / "threadpool.c"
I64 = ctypes.c_int64
VOIDP = ctypes.c_void_p
EPILOGUE_C = ctypes.CFUNCTYPE(None, VOIDP, I64, I64, I64, I64, I64, VOIDP, I64)
GEMM_ARGTYPES = [I64, I64, I64, VOIDP, I64, I64, VOIDP, I64, I64, VOIDP, I64, VOIDP, VOIDP]
BATCHED_ARGTYPES = [I64, I64, I64, I64, VOIDP, I64, I64, I64, VOIDP, I64, I64, I64, VOIDP, I64,
                    I64, VOIDP, VOIDP]
NUMPY_DTYPES = {"f32": np.float32, "f64": np.float64}
# Relative to sum_k |a_ik| |b_kj|.
TOLERANCE = {"f32": 1e-5, "f64": 1e-13}

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")


# -- building ---------------------------------------------------------------------------------


def emit_bias_relu(module: ir.Module, name: str, dtype: str) -> None:
    """epilogue(ctx = bias row, ...): c[r, c] = max(c[r, c] + bias[col0 + c], 0)."""
    scalar = ir.FloatType() if dtype == "f32" else ir.DoubleType()
    function = ir.Function(module, EPILOGUE_TYPE, name=name)
    bias, _batch, _row0, rows, col0, cols, block, ldc = function.args
    builder = ir.IRBuilder(function.append_basic_block("entry"))
    zero = ir.Constant(ir.IntType(64), 0)
    with _loop(builder, zero, rows) as row:
        start = builder.mul(row, ldc)
        with _loop(builder, zero, cols) as col:
            slot = builder.gep(block, [builder.add(start, col)], source_etype=scalar)
            offset = builder.gep(bias, [builder.add(col0, col)], source_etype=scalar)
            value = builder.fadd(builder.load(slot, typ=scalar), builder.load(offset, typ=scalar))
            positive = builder.fcmp_ordered(">", value, ir.Constant(scalar, 0.0))
            builder.store(builder.select(positive, value, ir.Constant(scalar, 0.0)), slot)
    builder.ret_void()


def emit_count_calls(module: ir.Module, name: str) -> None:
    """epilogue(ctx = {i32 *counts, i64 m, i64 n}, ...): counts[batch, row, col] += 1 over
    the block (atomically: blocks may finish on several threads at once)."""
    i32, i64 = ir.IntType(32), ir.IntType(64)
    header = ir.LiteralStructType([ir.PointerType(), i64, i64])
    function = ir.Function(module, EPILOGUE_TYPE, name=name)
    context, batch, row0, rows, col0, cols, _block, _ldc = function.args
    builder = ir.IRBuilder(function.append_basic_block("entry"))

    def field(index: int, typ: ir.Type) -> ir.Value:
        indices = [ir.Constant(i32, 0), ir.Constant(i32, index)]
        return builder.load(builder.gep(context, indices, source_etype=header), typ=typ)

    counts, m, n = field(0, ir.PointerType()), field(1, i64), field(2, i64)
    zero = ir.Constant(i64, 0)
    with _loop(builder, zero, rows) as row:
        flat_row = builder.add(builder.mul(batch, m), builder.add(row0, row))
        with _loop(builder, zero, cols) as col:
            index = builder.add(builder.mul(flat_row, n), builder.add(col0, col))
            slot = builder.gep(counts, [index], source_etype=i32)
            builder.atomic_rmw("add", slot, ir.Constant(i32, 1), "monotonic")
    builder.ret_void()


class _loop:
    """`for index in range(start, stop)` for the hand-written epilogues."""

    def __init__(self, builder: ir.IRBuilder, start: ir.Value, stop: ir.Value) -> None:
        self.builder, self.start, self.stop = builder, start, stop

    def __enter__(self) -> ir.Value:
        builder = self.builder
        self.before = builder.block
        self.header = builder.append_basic_block("header")
        self.body = builder.append_basic_block("body")
        self.done = builder.append_basic_block("done")
        builder.branch(self.header)
        builder.position_at_end(self.header)
        self.index = builder.phi(self.start.type)
        self.index.add_incoming(self.start, self.before)
        builder.cbranch(builder.icmp_signed("<", self.index, self.stop), self.body, self.done)
        builder.position_at_end(self.body)
        return self.index

    def __exit__(self, *exc: object) -> None:
        builder = self.builder
        self.index.add_incoming(builder.add(self.index, ir.Constant(self.start.type, 1)),
                                builder.block)
        builder.branch(self.header)
        builder.position_at_end(self.done)


def gemm_module() -> ir.Module:
    module = ir.Module(name="test_gemm")
    host = TargetInfo.host()
    for dtype in ("f32", "f64"):
        batched = emit_batched_gemm(module, f"bgemm_{dtype}", dtype, host)
        emit_gemm(module, f"gemm_{dtype}", dtype, host, batched=batched)
        emit_bias_relu(module, f"bias_relu_{dtype}", dtype)
    emit_count_calls(module, "count_calls")
    if host.arch == "x86_64":
        avx2 = TargetInfo(arch="x86_64", vector_bytes=32, has_fma=True, vector_registers=16)
        sse2 = TargetInfo(arch="x86_64", vector_bytes=16, has_fma=False, vector_registers=16)
        emit_gemm(module, "gemm_f32_avx2", "f32", avx2)
        emit_gemm(module, "gemm_f32_sse2", "f32", sse2)
        emit_gemm(module, "gemm_f64_sse2", "f64", sse2)
    return module


def host_machine(opt: int = 3) -> llvm.TargetMachine:
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    target = llvm.Target.from_triple(llvm.get_process_triple())
    return target.create_target_machine(
        cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(), opt=opt,
        reloc="pic", codemodel="default")


def optimized(module: ir.Module, machine: llvm.TargetMachine, triple: str) -> llvm.ModuleRef:
    parsed = llvm.parse_assembly(str(module))
    parsed.triple = triple
    parsed.data_layout = str(machine.target_data)
    parsed.verify()
    tuning = llvm.create_pipeline_tuning_options(speed_level=3)
    tuning.slp_vectorization = True
    tuning.loop_vectorization = True
    passes = llvm.create_pass_builder(machine, tuning)
    passes.getModulePassManager().run(parsed, passes)
    return parsed


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL:
    directory = tmp_path_factory.mktemp("gemm")
    machine = host_machine()
    parsed = optimized(gemm_module(), machine, llvm.get_process_triple())
    obj = directory / "gemm.o"
    obj.write_bytes(machine.emit_object(parsed))
    library = directory / "gemm.so"
    subprocess.run(["cc", "-shared", "-O2", "-fPIC", "-fvisibility=hidden", "-o", str(library),
                    str(obj), str(THREAD_POOL_C), "-lpthread"], check=True)
    loaded = ctypes.CDLL(str(library))
    for name in ("gemm_f32", "gemm_f64", "gemm_f32_avx2", "gemm_f32_sse2", "gemm_f64_sse2"):
        if hasattr(loaded, name):
            getattr(loaded, name).argtypes = GEMM_ARGTYPES
            getattr(loaded, name).restype = ctypes.c_int32
    for name in ("bgemm_f32", "bgemm_f64"):
        getattr(loaded, name).argtypes = BATCHED_ARGTYPES
        getattr(loaded, name).restype = ctypes.c_int32
    return loaded


# -- calling ----------------------------------------------------------------------------------


def strides(array: np.ndarray) -> tuple[int, ...]:
    return tuple(stride // array.itemsize for stride in array.strides)


def pointer(array: np.ndarray) -> int:
    return array.ctypes.data


def run_gemm(lib: ctypes.CDLL, name: str, a: np.ndarray, b: np.ndarray,
             epilogue: int | None = None, context: int | None = None) -> np.ndarray:
    (m, k), n = a.shape, b.shape[1]
    c = np.full((m, n), np.nan, dtype=a.dtype)
    status = getattr(lib, name)(m, n, k, pointer(a), *strides(a), pointer(b), *strides(b),
                                pointer(c), n, epilogue, context)
    assert status == 0
    return c


def run_batched(lib: ctypes.CDLL, dtype: str, a: np.ndarray, b: np.ndarray,
                epilogue: int | None = None, context: int | None = None) -> np.ndarray:
    """a: [batch or 1, M, K], b: [batch or 1, K, N]; a size-1 batch is broadcast (stride 0)."""
    batch = max(a.shape[0], b.shape[0])
    m, k, n = a.shape[1], a.shape[2], b.shape[2]
    c = np.full((batch, m, n), np.nan, dtype=a.dtype)
    a_batch = 0 if a.shape[0] == 1 else strides(a)[0]
    b_batch = 0 if b.shape[0] == 1 else strides(b)[0]
    status = getattr(lib, f"bgemm_{dtype}")(
        batch, m, n, k, pointer(a), a_batch, *strides(a)[1:], pointer(b), b_batch,
        *strides(b)[1:], pointer(c), m * n, n, epilogue, context)
    assert status == 0
    return c


def random(shape: tuple[int, ...], dtype: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.0, 1.0, size=shape).astype(NUMPY_DTYPES[dtype])


def reference(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(a @ b, |a| @ |b|) in f64."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    return np.matmul(a64, b64), np.matmul(np.abs(a64), np.abs(b64))


def assert_close(c: np.ndarray, expected: np.ndarray, scale: np.ndarray, dtype: str) -> None:
    assert c.shape == expected.shape
    assert np.all(np.abs(c - expected) <= TOLERANCE[dtype] * scale + 1e-300), (
        f"max error {np.max(np.abs(c - expected))}")


def assert_product(c: np.ndarray, a: np.ndarray, b: np.ndarray, dtype: str) -> None:
    assert_close(c, *reference(a, b), dtype)


def layouts(array: np.ndarray) -> dict[str, np.ndarray]:
    """The same matrix row-major, column-major (a transposed operand), with both strides
    larger than the extents (a strided view) and with negative strides."""
    rows, cols = array.shape
    padded = np.zeros((2 * rows + 1, 3 * cols + 1), dtype=array.dtype)
    padded[: 2 * rows : 2, : 3 * cols : 3] = array
    return {
        "row": np.ascontiguousarray(array),
        "col": np.asfortranarray(array),
        "strided": padded[: 2 * rows : 2, : 3 * cols : 3],
        "reversed": np.ascontiguousarray(array[::-1, ::-1])[::-1, ::-1],
    }


# -- tests ------------------------------------------------------------------------------------

SHAPES = [
    (1, 1, 1), (7, 13, 5), (33, 65, 17), (128, 256, 64), (14, 32, 3), (15, 33, 1),
    (1, 300, 40), (1000, 3, 17), (3, 1000, 17), (2, 2, 2000), (29, 47, 1100),
    (200, 300, 600), (64, 200, 700),  # large enough for the thread pool
    (20, 50, 512), (64, 200, 1024),  # rows of 4 KiB (f64, f32): row-major A is packed too
]  # fmt: skip
EMPTY_SHAPES = [(0, 5, 3), (5, 0, 3), (0, 0, 0), (0, 3, 0)]


@pytest.mark.parametrize("dtype", ["f32", "f64"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_matches_numpy_in_every_layout(lib: ctypes.CDLL, dtype: str, shape: tuple) -> None:
    m, n, k = shape
    a, b = random((m, k), dtype, 1), random((k, n), dtype, 2)
    expected, scale = reference(a, b)
    for a_view in layouts(a).values():
        for b_view in layouts(b).values():
            assert_close(run_gemm(lib, f"gemm_{dtype}", a_view, b_view), expected, scale, dtype)


@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_empty_k_gives_zeros_and_empty_m_or_n_writes_nothing(lib: ctypes.CDLL, dtype: str) -> None:
    for m, n, k in EMPTY_SHAPES:
        a, b = random((m, k), dtype, 3), random((k, n), dtype, 4)
        c = run_gemm(lib, f"gemm_{dtype}", a, b)
        assert c.shape == (m, n) and np.all(c == 0)
    a, b = random((4, 0), dtype, 5), random((0, 6), dtype, 6)
    assert np.all(run_gemm(lib, f"gemm_{dtype}", a, b) == 0)


@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_zero_strides_inside_a_matrix(lib: ctypes.CDLL, dtype: str) -> None:
    """Operands that repeat along a dimension (a stride of 0) are packed like any other."""
    for m, n, k in [(7, 13, 5), (40, 70, 300)]:
        column, row = random((m, 1), dtype, 20), random((1, n), dtype, 21)
        a = np.lib.stride_tricks.as_strided(column, (m, k), (column.itemsize, 0))
        b = np.lib.stride_tricks.as_strided(row, (k, n), (0, row.itemsize))
        full_a, full_b = random((m, k), dtype, 22), random((k, n), dtype, 23)
        for a_view, b_view in [(a, full_b), (full_a, b), (a, b), (a.T.copy().T, b.T.copy().T)]:
            assert_product(run_gemm(lib, f"gemm_{dtype}", a_view, b_view), a_view, b_view, dtype)


@pytest.mark.parametrize("name", ["gemm_f32_avx2", "gemm_f32_sse2", "gemm_f64_sse2"])
def test_narrower_x86_targets(lib: ctypes.CDLL, name: str) -> None:
    if not hasattr(lib, name):
        pytest.skip("x86-64 only")
    dtype = name.split("_")[1]
    for m, n, k in [(1, 1, 1), (7, 13, 5), (33, 65, 17), (97, 131, 600), (5, 3, 0)]:
        a, b = random((m, k), dtype, 7), random((k, n), dtype, 8)
        for a_view in (a, np.asfortranarray(a)):
            assert_product(run_gemm(lib, name, a_view, np.asfortranarray(b)), a, b, dtype)
            assert_product(run_gemm(lib, name, a_view, b), a, b, dtype)


@pytest.mark.parametrize("dtype", ["f32", "f64"])
@pytest.mark.parametrize("batches", [(3, 3), (1, 4), (4, 1), (5, 5)])
def test_batched_with_broadcast(lib: ctypes.CDLL, dtype: str, batches: tuple) -> None:
    a_batch, b_batch = batches
    for m, n, k in [(7, 13, 5), (33, 65, 17), (64, 96, 128)]:
        a = random((a_batch, m, k), dtype, 9)
        b = random((b_batch, k, n), dtype, 10)
        assert_product(run_batched(lib, dtype, a, b), a, b, dtype)
        transposed_a = np.swapaxes(np.swapaxes(a, 1, 2).copy(), 1, 2)
        assert_product(run_batched(lib, dtype, transposed_a, b), a, b, dtype)


@pytest.mark.parametrize("dtype", ["f32", "f64"])
@pytest.mark.parametrize("shape", [(7, 13, 5), (33, 65, 17), (200, 300, 600), (3, 2, 0)],
                         ids=lambda s: "x".join(map(str, s)))
def test_bias_relu_epilogue(lib: ctypes.CDLL, dtype: str, shape: tuple) -> None:
    m, n, k = shape
    a, b = random((m, k), dtype, 11), random((k, n), dtype, 12)
    bias = random((n,), dtype, 13)
    epilogue = ctypes.cast(getattr(lib, f"bias_relu_{dtype}"), VOIDP).value
    c = run_gemm(lib, f"gemm_{dtype}", a, b, epilogue, pointer(bias))
    expected = np.maximum(a.astype(np.float64) @ b.astype(np.float64) + bias, 0.0)
    scale = np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64) + np.abs(bias)
    assert np.all(np.abs(c - expected) <= TOLERANCE[dtype] * scale + 1e-300)


class CountContext(ctypes.Structure):
    _fields_ = [("counts", VOIDP), ("m", I64), ("n", I64)]


@pytest.mark.parametrize("shape", [(1, 1, 1), (33, 65, 17), (300, 200, 400), (130, 70, 0)],
                         ids=lambda s: "x".join(map(str, s)))
def test_epilogue_sees_every_element_once_after_the_product(lib: ctypes.CDLL, shape) -> None:
    m, n, k = shape
    epilogue = ctypes.cast(lib.count_calls, VOIDP).value
    a, b = random((2, m, k), "f32", 14), random((1, k, n), "f32", 15)
    counts = np.zeros((2, m, n), dtype=np.int32)
    context = CountContext(pointer(counts), m, n)
    c = run_batched(lib, "f32", a, b, epilogue, ctypes.addressof(context))
    assert np.all(counts == 1)
    assert_product(c, a, b, "f32")


def test_batches_beyond_one_scratch_group(lib: ctypes.CDLL) -> None:
    """9 batches of a 2 MiB packed B run in more than one group (SCRATCH_GROUP_BYTES): every
    batch is right and the epilogue gets the global batch index."""
    batch, m, n, k = 9, 20, 512, 1024
    a, b = random((batch, m, k), "f32", 24), random((batch, k, n), "f32", 25)
    counts = np.zeros((batch, m, n), dtype=np.int32)
    context = CountContext(pointer(counts), m, n)
    epilogue = ctypes.cast(lib.count_calls, VOIDP).value
    c = run_batched(lib, "f32", a, b, epilogue, ctypes.addressof(context))
    assert np.all(counts == 1)
    assert_product(c, a, b, "f32")


def test_epilogue_blocks_are_finished_when_called(lib: ctypes.CDLL) -> None:
    """A Python epilogue checks that its block already holds the full product."""
    m, n, k = 150, 170, 1200
    a, b = random((m, k), "f32", 16), random((k, n), "f32", 17)
    expected = a.astype(np.float64) @ b.astype(np.float64)
    scale = np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64)
    c = np.zeros((m, n), dtype=np.float32)
    blocks: list[tuple[int, int, int, int, bool]] = []

    def check(_ctx, batch, row0, rows, col0, cols, block, ldc) -> None:
        assert batch == 0 and ldc == n and block == pointer(c) + 4 * (row0 * n + col0)
        seen = c[row0:row0 + rows, col0:col0 + cols].astype(np.float64)
        wanted = expected[row0:row0 + rows, col0:col0 + cols]
        tolerance = TOLERANCE["f32"] * scale[row0:row0 + rows, col0:col0 + cols]
        blocks.append((row0, rows, col0, cols, bool(np.all(np.abs(seen - wanted) <= tolerance))))

    callback = EPILOGUE_C(check)
    status = lib.gemm_f32(m, n, k, pointer(a), k, 1, pointer(b), n, 1, pointer(c), n,
                          ctypes.cast(callback, VOIDP), None)
    assert status == 0
    assert blocks and all(done for *_, done in blocks)
    covered = np.zeros((m, n), dtype=np.int32)
    for row0, rows, col0, cols, _ in blocks:
        covered[row0:row0 + rows, col0:col0 + cols] += 1
    assert np.all(covered == 1)


def test_concurrent_callers(lib: ctypes.CDLL) -> None:
    """The GEMM is reentrant: threads calling at once (ctypes drops the GIL) all get their
    own, correct products, whether or not they get the pool."""
    problems = [(random((m, k), "f32", s), random((k, n), "f32", s + 1))
                for s, (m, n, k) in enumerate([(120, 130, 300), (33, 65, 17), (256, 200, 100),
                                               (9, 700, 64)] * 2)]
    results: list[np.ndarray | None] = [None] * len(problems)

    def work(index: int) -> None:
        a, b = problems[index]
        for _ in range(3):
            results[index] = run_gemm(lib, "gemm_f32", a, b)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(problems))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for (a, b), c in zip(problems, results):
        assert_product(c, a, b, "f32")


def test_out_of_memory_is_reported(lib: ctypes.CDLL) -> None:
    """Packing scratch for K = 2^40 cannot be allocated: status 3 and nothing is read."""
    c = np.zeros((1, 1), dtype=np.float32)
    status = lib.gemm_f32(1, 1, 2**40, None, 1, 2**40, None, 1, 1, pointer(c), 1, None, None)
    assert status == OUT_OF_MEMORY


class GuardedBuffers:
    """Arrays placed flush against an inaccessible page (at their end, or at their start):
    any read or write outside them faults."""

    PAGE = mmap.PAGESIZE

    def __init__(self) -> None:
        self.maps: list[mmap.mmap] = []
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.mprotect.argtypes = [VOIDP, ctypes.c_size_t, ctypes.c_int]

    def copy(self, array: np.ndarray, at_start: bool) -> np.ndarray:
        size = array.nbytes
        pages = -(-size // self.PAGE) + 2
        region = mmap.mmap(-1, pages * self.PAGE)
        self.maps.append(region)
        base = ctypes.addressof(ctypes.c_char.from_buffer(region))
        for page in (0, pages - 1):
            assert self.libc.mprotect(base + page * self.PAGE, self.PAGE, 0) == 0
        offset = self.PAGE if at_start else (pages - 1) * self.PAGE - size
        data = (ctypes.c_char * size).from_address(base + offset)
        guarded = np.frombuffer(data, dtype=array.dtype).reshape(array.shape)
        guarded[...] = array
        return guarded


@pytest.mark.skipif(sys.platform != "linux", reason="mprotect guard pages")
@pytest.mark.parametrize("shape", [(1, 1, 1), (7, 13, 5), (15, 33, 100), (301, 67, 302)],
                         ids=lambda s: "x".join(map(str, s)))
def test_reads_and_writes_stay_inside_the_operands(lib: ctypes.CDLL, shape: tuple) -> None:
    m, n, k = shape
    a, b = random((m, k), "f32", 18), random((k, n), "f32", 19)
    guards = GuardedBuffers()
    for at_start in (False, True):
        for a_transposed in (False, True):
            for b_transposed in (False, True):
                a_buffer = guards.copy(a.T.copy() if a_transposed else a, at_start)
                b_buffer = guards.copy(b.T.copy() if b_transposed else b, at_start)
                c = guards.copy(np.zeros((m, n), np.float32), at_start)
                a_view = a_buffer.T if a_transposed else a_buffer
                b_view = b_buffer.T if b_transposed else b_buffer
                status = lib.gemm_f32(m, n, k, pointer(a_view), *strides(a_view),
                                      pointer(b_view), *strides(b_view), pointer(c), n, None,
                                      None)
                assert status == 0
                assert_product(c, a, b, "f32")


# -- targets ----------------------------------------------------------------------------------


def test_target_info_from_features() -> None:
    x86 = "x86_64-unknown-linux-gnu"
    avx512 = TargetInfo.from_features(x86, ["+avx512f", "+fma"])
    assert avx512 == TargetInfo("x86_64", 64, True, 32)
    assert TargetInfo.from_features(x86, ["avx", "avx2", "fma"]) == TargetInfo("x86_64", 32, True)
    assert TargetInfo.from_features(x86, ["+avx", "-fma"]).has_fma is False
    assert TargetInfo.from_features(x86, ["+sse2", "-avx512f"]) == TargetInfo("x86_64", 16, False)
    arm = TargetInfo.from_features("aarch64-unknown-linux-gnu", ["+neon"])
    assert arm == TargetInfo("aarch64", 16, True, 32)
    assert choose_tiles("f32", arm).nr == 8 and choose_tiles("f64", arm).nr == 4
    host = TargetInfo.host()
    assert host.lanes("f32") == 2 * host.lanes("f64")


def compiled_assembly(target: TargetInfo, triple: str, cpu: str, features: str) -> str:
    module = ir.Module(name="gemm_target")
    emit_batched_gemm(module, "bgemm_f32", "f32", target)
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()
    machine = llvm.Target.from_triple(triple).create_target_machine(
        cpu=cpu, features=features, opt=2, reloc="pic", codemodel="default")
    return machine.emit_assembly(optimized(module, machine, triple))


def test_baseline_x86_64_gets_no_fma_and_no_wide_vectors() -> None:
    sse2 = TargetInfo.from_features("x86_64-unknown-linux-gnu", [])
    assembly = compiled_assembly(sse2, "x86_64-unknown-linux-gnu", "x86-64", "")
    assert "mulps" in assembly and "addps" in assembly
    for forbidden in ("vfmadd", "ymm", "zmm", "fmaf", "call\tfma"):
        assert forbidden not in assembly


def test_aarch64_neon_uses_fmla() -> None:
    neon = TargetInfo.from_features("aarch64-unknown-linux-gnu", ["+neon"])
    assembly = compiled_assembly(neon, "aarch64-unknown-linux-gnu", "generic", "+neon")
    assert "fmla" in assembly
    assert "bl\tfmaf" not in assembly and "bl\tfma\n" not in assembly
