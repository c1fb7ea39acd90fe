"""Objects linked into every CPU artifact, built once per machine and cached on disk.

    thread_pool_object()     support/threadpool.c compiled by the system cc
                             (`__tensorc_parallel_for`, `__tensorc_num_threads`, and the
                             runtime's `__tensorc_invoke`, `__tensorc_invoke_checked`)
    gemm_object(target)      the packed batched GEMMs of `gemm.py` for f32 and f64
                             (`__tensorc_gemm_f32`, `__tensorc_gemm_f64`), optimised for `target`

Neither depends on the program, so compiling them per artifact would only cost time (the
GEMMs are most of an artifact's LLVM work). Their symbols are in the reserved `__tensorc_`
namespace (docs/abi.md: no entry point `tensorc_F` can clash with one) and have hidden
visibility, but for the two invoke functions, which the runtime looks up.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

import llvmlite
import llvmlite.binding as llvm
import llvmlite.ir as ir

from tensorc import __version__
from tensorc.codegen.artifact import BuildError, NativeTarget, emit_object, reserved_symbol_name
from tensorc.codegen.cpu.cache import support_object
from tensorc.codegen.cpu.gemm import TargetInfo, batched_gemm_type, emit_batched_gemm

CODEGEN_DIR = Path(__file__).resolve().parent.parent
THREAD_POOL_SOURCE = CODEGEN_DIR / "support" / "threadpool.c"
# What the GEMM object is generated from (its cache key): gemm*.py and the helpers they use.
GEMM_SOURCES = [
    *sorted((CODEGEN_DIR / "cpu").glob("gemm*.py")),
    *(CODEGEN_DIR / "cpu" / name for name in ("irutil.py", "sizes.py")),
]
GEMM_DTYPES = ("f32", "f64")


def gemm_symbol(dtype: str) -> str:
    return reserved_symbol_name(f"gemm_{dtype}")


def declare_gemm(module: ir.Module, dtype: str) -> ir.Function:
    """The declaration of the support object's GEMM for `dtype` in `module`."""
    name = gemm_symbol(dtype)
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    function = ir.Function(module, batched_gemm_type(dtype), name)
    function.visibility = "hidden"
    return function


def _digest(*parts: bytes | str) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part.encode() if isinstance(part, str) else part)
        hasher.update(b"\0")
    return hasher.hexdigest()[:24]


def thread_pool_object() -> bytes:
    compiler = os.environ.get("CC") or "cc"
    source = THREAD_POOL_SOURCE.read_bytes()
    return support_object("threadpool", _digest(source, compiler), lambda: _compile_c(source))


def _compile_c(source: bytes) -> bytes:
    compiler = os.environ.get("CC") or "cc"
    with tempfile.TemporaryDirectory(prefix="tensorc-support-") as workdir:
        source_path = Path(workdir) / "threadpool.c"
        object_path = Path(workdir) / "threadpool.o"
        source_path.write_bytes(source)
        command = [compiler, "-O2", "-fPIC", "-std=gnu11", "-fno-ident", "-c",
                   str(source_path), "-o", str(object_path)]
        try:
            completed = subprocess.run(command, capture_output=True, text=True, check=False)
        except OSError as error:
            raise BuildError(f"cannot run the C compiler {compiler!r}: {error}") from error
        if completed.returncode != 0:
            raise BuildError(f"compiling threadpool.c failed:\n{completed.stderr.strip()}")
        return object_path.read_bytes()


def gemm_object(target: NativeTarget) -> bytes:
    sources = [path.read_bytes() for path in (*GEMM_SOURCES, Path(__file__))]
    key = _digest(*sources, target.triple, target.cpu, target.features, __version__,
                  llvmlite.__version__)
    return support_object("gemm", key, lambda: _build_gemm(target))


def _build_gemm(target: NativeTarget) -> bytes:
    module = ir.Module(name="tensorc_gemm")
    module.triple = target.triple
    features = [f for f in target.features.split(",") if f]
    info = TargetInfo.from_features(target.triple, features)
    for dtype in GEMM_DTYPES:
        emit_batched_gemm(module, gemm_symbol(dtype), dtype, info)
    parsed = llvm.parse_assembly(str(module))
    for dtype in GEMM_DTYPES:  # llvmlite.ir does not print a function's visibility
        parsed.get_function(gemm_symbol(dtype)).visibility = "hidden"
    return emit_object(parsed, target, opt_level=3)
