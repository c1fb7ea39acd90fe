"""GFLOP/s of the generated GEMM (tensorc/codegen/cpu/gemm.py) against NumPy, f32.

    python benchmarks/gemm.py [--threads 1 2] [--rounds 7] [--reps 10] [--shapes 1024x1024x1024]
                              [--tiles mr=14,kc=384]

Shapes are MxNxK (C[M, N] = A[M, K] @ B[K, N], all row-major): 1024^3 and the MLP layer
256x784x512 by default. Each thread count runs in its own process with TENSORC_NUM_THREADS
and OPENBLAS_NUM_THREADS (and OMP_NUM_THREADS) set, since both pools read them once. Inside,
NumPy and tensorc alternate in blocks of `reps` calls, `rounds` times, with a pause between
blocks so that neither library's spinning worker threads steal cycles from the other; the
table gives the median and the best GFLOP/s over all calls, and tensorc / NumPy medians.
`--tiles` overrides fields of `choose_tiles` (for tuning).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import llvmlite.binding as llvm
import llvmlite.ir as ir
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tensorc.codegen.cpu.gemm import TargetInfo, choose_tiles, emit_gemm  # noqa: E402

THREAD_POOL_C = ROOT / "tensorc" / "codegen" / "support" / "threadpool.c"
DEFAULT_SHAPES = ("1024x1024x1024", "256x784x512")
PAUSE_S = 0.3


def parse_tiles(text: str) -> dict[str, int]:
    pairs = [item.split("=") for item in text.split(",") if item]
    return {name.strip(): int(value) for name, value in pairs}


def build_library(directory: Path, tiles: str) -> ctypes.CDLL:
    """The f32 GEMM as `gemm` in a shared object, compiled like an artifact (O3, PIC)."""
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    module = ir.Module(name="gemm_benchmark")
    target = TargetInfo.host()
    emit_gemm(module, "gemm", "f32", target, choose_tiles("f32", target, **parse_tiles(tiles)))
    triple = llvm.get_process_triple()
    machine = llvm.Target.from_triple(triple).create_target_machine(
        cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(), opt=3,
        reloc="pic", codemodel="default")
    parsed = llvm.parse_assembly(str(module))
    parsed.triple = triple
    parsed.data_layout = str(machine.target_data)
    parsed.verify()
    tuning = llvm.create_pipeline_tuning_options(speed_level=3)
    tuning.slp_vectorization = True
    tuning.loop_vectorization = True
    passes = llvm.create_pass_builder(machine, tuning)
    passes.getModulePassManager().run(parsed, passes)
    obj = directory / "gemm.o"
    obj.write_bytes(machine.emit_object(parsed))
    library = directory / "gemm.so"
    subprocess.run(["cc", "-shared", "-O2", "-fPIC", "-fvisibility=hidden", "-o", str(library),
                    str(obj), str(THREAD_POOL_C), "-lpthread"], check=True)
    gemm = ctypes.CDLL(str(library))
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    gemm.gemm.argtypes = [i64, i64, i64, ptr, i64, i64, ptr, i64, i64, ptr, i64, ptr, ptr]
    gemm.gemm.restype = ctypes.c_int32
    return gemm


def time_calls(call, reps: int) -> list[float]:
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def measure_shape(library: ctypes.CDLL, shape: tuple[int, int, int], rounds: int,
                  reps: int) -> dict[str, list[float]]:
    m, n, k = shape
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    ours = np.empty((m, n), np.float32)
    theirs = np.empty((m, n), np.float32)
    args = (m, n, k, a.ctypes.data, k, 1, b.ctypes.data, n, 1, ours.ctypes.data, n, None, None)

    def call_tensorc() -> None:
        if library.gemm(*args) != 0:
            raise RuntimeError("gemm failed")

    def call_numpy() -> None:
        np.matmul(a, b, out=theirs)

    call_tensorc()
    call_numpy()
    scale = float(np.abs(a).max() * np.abs(b).max() * k)
    if np.abs(ours - theirs).max() > 1e-4 * scale:
        raise RuntimeError(f"{shape}: tensorc and NumPy disagree")
    times: dict[str, list[float]] = {"numpy": [], "tensorc": []}
    for _ in range(rounds):
        for name, call in (("numpy", call_numpy), ("tensorc", call_tensorc)):
            time.sleep(PAUSE_S)
            call()
            times[name].extend(time_calls(call, reps))
    flops = 2.0 * m * n * k
    return {name: [flops / t / 1e9 for t in values] for name, values in times.items()}


def run_worker(shapes: list[str], rounds: int, reps: int, tiles: str) -> None:
    with tempfile.TemporaryDirectory(prefix="tensorc-gemm-bench-") as directory:
        library = build_library(Path(directory), tiles)
        results = {}
        for text in shapes:
            shape = tuple(int(part) for part in text.split("x"))
            results[text] = measure_shape(library, shape, rounds, reps)
    print(json.dumps(results))


def run_threads(threads: int, shapes: list[str], rounds: int, reps: int, tiles: str) -> dict:
    env = dict(os.environ)
    for name in ("TENSORC_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        env[name] = str(threads)
    command = [sys.executable, __file__, "--worker", "--rounds", str(rounds), "--reps",
               str(reps), "--tiles", tiles, "--shapes", *shapes]
    output = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return json.loads(output.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--shapes", nargs="+", default=list(DEFAULT_SHAPES))
    parser.add_argument("--tiles", default="", help="e.g. mr=14,kc=384 (choose_tiles fields)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.worker:
        run_worker(options.shapes, options.rounds, options.reps, options.tiles)
        return
    print(f"{'shape MxNxK':>16} {'threads':>7} {'tensorc med':>11} {'best':>7} "
          f"{'numpy med':>9} {'best':>7} {'ratio':>6}")
    for threads in options.threads:
        results = run_threads(threads, options.shapes, options.rounds, options.reps,
                              options.tiles)
        for shape, rates in results.items():
            ours, theirs = np.median(rates["tensorc"]), np.median(rates["numpy"])
            print(f"{shape:>16} {threads:>7} {ours:>11.1f} {max(rates['tensorc']):>7.1f} "
                  f"{theirs:>9.1f} {max(rates['numpy']):>7.1f} {ours / theirs:>6.2f}")


if __name__ == "__main__":
    main()
