"""A function may have any name: no entry point `tensorc_F` meets a symbol of the artifact's own.

Every symbol an artifact defines besides its entry points lies in the reserved `__tensorc_`
namespace (docs/abi.md), so functions named after them (`manifest`, `invoke`, `ptx`, ...)
build and run on the CPU, build on CUDA (and run on its emulator), and get a C header that
compiles. Artifacts of format version 1, which used the plain `tensorc_` names, still load.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tensorc_runtime
import tensorc_runtime.cuda as cuda_runtime
from tensorc_runtime import fastcall, native
from tensorc_runtime.elf import read_manifest

from tensorc.codegen import artifact
from tensorc.codegen.artifact import build_shared_object
from tensorc.codegen.cpu.backend import CpuBuild
from tensorc.codegen.cpu.support import THREAD_POOL_SOURCE
from tensorc.codegen.cuda.backend import CudaBuild
from tensorc.codegen.cuda.emulator import EmulatedDevice, build_emulation_library
from tensorc.codegen.cuda.lower import KERNEL_KIND
from tensorc.codegen.cuda.ptxas import find_ptxas
from tensorc.codegen.cuda.target import ptx_entries
from tensorc.codegen.cuda.tc_kernels import EMITTERS
from tensorc.driver import CompileOptions, Source, compile_to_ir

# What artifacts defined as `tensorc_<name>` before the reserved namespace (format version 1),
# and the CUDA emulator's runtime functions.
COLLIDING = (
    "manifest", "invoke", "invoke_checked", "num_threads", "parallel_for", "gemm_f32",
    "gemm_f64", "ptx", "cubin", "cuda_message", "emu_launch", "emu_tid", "emu_barrier",
    "error",
)  # fmt: skip
# Names near the internal ones: `tensorc.report_error`, `__tensorc_gemm_f32.compute_task`,
# the kernels `F.kernel0.task` and (CUDA) `tensorc_F_k0_matmul`.
UNUSUAL = ("tensorc", "_manifest", "__tensorc_manifest", "__tensorc_gemm_f32", "report_error",
           "a", "a_k0_matmul", "a_k0_pointwise_k0_matmul")
NAMES = (*COLLIDING, *UNUSUAL)
CPU_EXPORTS = {"__tensorc_manifest", "__tensorc_invoke", "__tensorc_invoke_checked"}


def function_source(index: int, name: str) -> str:
    """A matmul with an epilogue (the GEMM), or an elementwise kernel and a row reduction
    (the thread pool), alternately; `index + 1` is a constant of each."""
    if index % 2 == 0:
        return (f"def {name}(x: f32[N, K], w: f32[K, M]) -> f32[N, M] {{\n"
                f"    return relu(x @ w) + {index + 1}.0\n}}\n")
    return (f"def {name}(x: f32[N, K], w: f32[K, M]) -> f32[N] {{\n"
            f"    return sum(exp(x) * {index + 1}.0, axis=1) + sum(w)\n}}\n")


SOURCE = "\n".join(function_source(index, name) for index, name in enumerate(NAMES))


def expected(index: int, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    if index % 2 == 0:
        return np.maximum(x @ w, 0) + np.float32(index + 1)
    return (np.exp(x) * np.float32(index + 1)).sum(axis=1) + w.sum()


def compile_ir(text: str):
    module, _ = compile_to_ir(Source(text, "names.tc"), CompileOptions(opt_level=2))
    return module


def defined_symbols(path: Path, dynamic: bool) -> set[str]:
    """The names `nm` lists as defined in `path` (its dynamic symbol table, or all)."""
    if shutil.which("nm") is None:
        pytest.skip("no nm on this machine")
    command = ["nm", "--defined-only", *(["-D"] if dynamic else []), str(path)]
    listing = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return {line.split()[-1] for line in listing.splitlines() if line.strip()}


def assert_no_stray_tensorc_symbols(path: Path) -> None:
    """Every symbol spelled `tensorc_...` is an entry point; the others are reserved
    (`__tensorc_...`) or internal (a `.` in the name)."""
    entries = {f"tensorc_{name}" for name in NAMES}
    stray = {symbol for symbol in defined_symbols(path, dynamic=False)
             if symbol.startswith("tensorc") and "." not in symbol and symbol not in entries}
    assert not stray


@pytest.fixture(scope="module")
def cpu_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    build = CpuBuild.create(compile_ir(SOURCE), SOURCE, 2)
    return build.write_shared_object(tmp_path_factory.mktemp("cpu") / "names.so")


@pytest.fixture(scope="module")
def cuda_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[CudaBuild, Path]:
    build = CudaBuild.create(compile_ir(SOURCE), SOURCE, 2, "sm_80",
                             use_ptxas=find_ptxas() is not None)
    return build, build.write_shared_object(tmp_path_factory.mktemp("cuda") / "names.so")


# -- CPU -------------------------------------------------------------------------------------


def test_every_name_builds_and_runs_on_the_cpu(cpu_artifact: Path) -> None:
    module = tensorc_runtime.load(cpu_artifact)
    assert list(module) == list(NAMES)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 70), dtype=np.float32)
    w = rng.standard_normal((70, 90), dtype=np.float32)
    for index, name in enumerate(NAMES):
        got = module[name](x, w)
        np.testing.assert_allclose(got, expected(index, x, w), rtol=2e-5, atol=2e-4,
                                   err_msg=name)


@pytest.mark.parametrize("name", ["manifest", "invoke_checked", "parallel_for", "gemm_f32"])
def test_a_single_function_of_a_colliding_name(name: str, tmp_path: Path) -> None:
    """The repro: one function, `x + 1.0`, compiled alone."""
    text = f"def {name}(x: f32[N]) -> f32[N] {{\n    return x + 1.0\n}}\n"
    path = CpuBuild.create(compile_ir(text), text, 2).write_shared_object(tmp_path / "one.so")
    x = np.arange(100_000, dtype=np.float32)
    np.testing.assert_array_equal(tensorc_runtime.load(path)[name](x), x + 1)


def test_cpu_exports_entry_points_and_reserved_names_only(cpu_artifact: Path) -> None:
    exported = defined_symbols(cpu_artifact, dynamic=True)
    assert exported == {f"tensorc_{name}" for name in NAMES} | CPU_EXPORTS
    assert_no_stray_tensorc_symbols(cpu_artifact)


def test_fast_call_uses_the_reserved_invoke_not_an_entry_point(cpu_artifact: Path) -> None:
    """`tensorc_invoke_checked` is the entry point of `invoke_checked`: the runtime calls
    through `__tensorc_invoke_checked` and never mistakes the one for the other."""
    assert native.invoke_symbols(2) == {fastcall.CHECKED: "__tensorc_invoke_checked",
                                        fastcall.INVOKE: "__tensorc_invoke"}
    module = tensorc_runtime.load(cpu_artifact)
    library = ctypes.CDLL(str(cpu_artifact))
    reserved = {address_of(library, symbol) for symbol in CPU_EXPORTS}
    for name in ("invoke", "invoke_checked", "manifest"):
        invoke = type(module[name]).__call__.__globals__["invoke"]
        if invoke is None:
            pytest.skip("this Python's arrays are called through the entry point itself")
        assert ctypes.cast(invoke, ctypes.c_void_p).value in reserved


def address_of(library: ctypes.CDLL, symbol: str) -> int | None:
    return ctypes.cast(library[symbol], ctypes.c_void_p).value


# -- C header --------------------------------------------------------------------------------


C_PROGRAM = r"""
#include <stdio.h>
#include <string.h>
#include "names.h"

int main(void) {
    float x[3] = {1, 2, 3}, y[3] = {0};
    void *args[1] = {x};
    void *results[1] = {y};
    int64_t dims[1] = {3};
    struct tensorc_error failure;
    if (tensorc_manifest(args, results, dims, &failure) != TENSORC_OK || y[2] != 4) return 1;
    if (tensorc_error(args, results, dims, NULL) != TENSORC_OK || y[2] != 5) return 2;
    if (tensorc_invoke(args, results, dims, NULL) != TENSORC_OK || y[2] != 6) return 3;
    if (strncmp(__tensorc_manifest, "{\"format\":\"tensorc-artifact\"", 28) != 0) return 4;
    printf("%g %g %g\n", y[0], y[1], y[2]);
    return 0;
}
"""
C_SOURCE = "".join(
    f"def {name}(x: f32[N]) -> f32[N] {{\n    return x + {index + 1}.0\n}}\n"
    for index, name in enumerate(("manifest", "error", "invoke"))
)


def test_header_of_colliding_names_compiles(tmp_path: Path) -> None:
    if shutil.which("cc") is None:
        pytest.skip("no C compiler (cc) on this machine")
    header = tmp_path / "names.h"
    header.write_text(CpuBuild.create(compile_ir(SOURCE), SOURCE, 2).header())
    text = header.read_text()
    assert "typedef struct tensorc_error tensorc_error;" not in text  # `error` is a function
    assert "int32_t tensorc_error(void *const *args" in text
    assert "extern const char __tensorc_manifest[];" in text
    twice = tmp_path / "twice.c"
    twice.write_text('#include "names.h"\n#include "names.h"\n')
    strict = ["-fsyntax-only", "-Wall", "-Wextra", "-pedantic", "-Werror"]
    subprocess.run(["cc", *strict, "-std=c99", str(twice)], check=True)
    if shutil.which("g++"):
        subprocess.run(["g++", *strict, "-x", "c++", str(header)], check=True)


def test_c_program_calls_functions_of_colliding_names(tmp_path: Path) -> None:
    if shutil.which("cc") is None:
        pytest.skip("no C compiler (cc) on this machine")
    build = CpuBuild.create(compile_ir(C_SOURCE), C_SOURCE, 2)
    build.write_shared_object(tmp_path / "libnames.so")
    (tmp_path / "names.h").write_text(build.header())
    (tmp_path / "main.c").write_text(C_PROGRAM)
    program = tmp_path / "main"
    subprocess.run(
        ["cc", "-std=c99", "-Wall", "-Werror", "-o", str(program), str(tmp_path / "main.c"),
         f"-L{tmp_path}", "-lnames", f"-Wl,-rpath,{tmp_path}"],
        check=True,
    )
    completed = subprocess.run([str(program)], capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["4", "5", "6"]


# -- CUDA ------------------------------------------------------------------------------------


def test_every_name_builds_on_cuda(cuda_build: tuple[CudaBuild, Path]) -> None:
    build, path = cuda_build
    manifest = read_manifest(path)
    ptx = path.read_bytes()
    assert b".entry tensorc_a_k0_matmul" in ptx and b".entry tensorc_ptx_k" in ptx
    kernels = manifest["cuda"]["kernels"]
    assert kernels == ptx_entries(build.ptx()) and len(set(kernels)) == len(kernels)
    launched = [launch.kernel for plan in build.plans for launch in plan.launches()]
    assert len(set(launched)) == len(launched)  # one kernel per launch: no two share a name
    assert [entry["symbol"] for entry in manifest["functions"]] == [
        f"tensorc_{name}" for name in NAMES
    ]
    reserved = {"__tensorc_manifest", "__tensorc_ptx"}
    if manifest["cuda"]["cubin"] is not None:
        reserved.add("__tensorc_cubin")
    exported = defined_symbols(path, dynamic=True)
    assert exported == {f"tensorc_{name}" for name in NAMES} | reserved
    assert_no_stray_tensorc_symbols(path)


def test_every_name_runs_on_the_cuda_emulator(cuda_build: tuple[CudaBuild, Path],
                                              tmp_path: Path) -> None:
    build, path = cuda_build
    library = build_emulation_library(build.module, tmp_path / "names_emu.so")
    module = cuda_runtime.load(path, device=EmulatedDevice(library))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 3), dtype=np.float32)
    w = rng.standard_normal((3, 4), dtype=np.float32)
    for index, name in enumerate(NAMES):
        np.testing.assert_allclose(module[name](x, w), expected(index, x, w), rtol=2e-5,
                                   atol=2e-5, err_msg=name)


def test_kernel_kinds_cannot_make_two_functions_kernels_meet() -> None:
    """Kinds are lowercase words without digits (cuda/lower.py), which keeps kernel names
    apart; every op with a kernel of its own has such a name."""
    for op_name in EMITTERS:
        assert KERNEL_KIND.fullmatch(op_name.removeprefix("tc."))
    for bad in ("k0_row", "row_k1", "log1p", "Row"):
        assert not KERNEL_KIND.fullmatch(bad)


# -- artifacts of format version 1 -----------------------------------------------------------


def build_version_1_artifact(directory: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An artifact as tensorc built it before the reserved namespace: the same code, with
    `tensorc_manifest`, `tensorc_invoke`, ... and format version 1."""
    text = "def addone(x: f32[N]) -> f32[N] {\n    return x + 1.0\n}\n"
    build = CpuBuild.create(compile_ir(text), text, 2)
    old_ir = str(build.unoptimized).replace("__tensorc_", "tensorc_")
    old_names = "".join(
        f"#define __tensorc_{name} tensorc_{name}\n"
        for name in ("invoke", "invoke_checked", "parallel_for", "num_threads")
    )
    pool = directory / "old_threadpool.c"
    pool.write_text(f'{old_names}#include "{THREAD_POOL_SOURCE}"\n')
    manifest = {**build.manifest, "format_version": 1}
    with monkeypatch.context() as patch:
        patch.setattr(artifact, "MANIFEST_SYMBOL", "tensorc_manifest")
        return build_shared_object([old_ir], manifest, directory / "old.so", [pool],
                                   target=build.target)


def test_version_1_artifacts_still_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = build_version_1_artifact(tmp_path, monkeypatch)
    assert defined_symbols(path, dynamic=True) == {
        "tensorc_addone", "tensorc_manifest", "tensorc_invoke", "tensorc_invoke_checked"
    }
    assert native.invoke_symbols(1) == {fastcall.CHECKED: "tensorc_invoke_checked",
                                        fastcall.INVOKE: "tensorc_invoke"}
    module = tensorc_runtime.load(path)
    assert module.manifest["format_version"] == 1
    x = np.arange(50_000, dtype=np.float32)
    np.testing.assert_array_equal(module.addone(x), x + 1)
    np.testing.assert_array_equal(module.addone(x[::2]), x[::2] + 1)  # the general path
    invoke = type(module.addone).__call__.__globals__["invoke"]
    if invoke is None:
        pytest.skip("this Python's arrays are called through the entry point itself")
    library = ctypes.CDLL(str(path))
    old_names = {address_of(library, "tensorc_invoke_checked"),
                 address_of(library, "tensorc_invoke")}
    assert ctypes.cast(invoke, ctypes.c_void_p).value in old_names
