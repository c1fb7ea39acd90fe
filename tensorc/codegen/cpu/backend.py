"""The CPU backend's build: optimised tensorc IR -> LLVM IR -> object code -> artifact.

    build = CpuBuild.create(module, source_text, opt_level=2)   # runs the backend pipeline
    build.llvm_ir()        # the optimised LLVM IR text        (--emit=llvm)
    build.assembly()       # host assembly                     (--emit=asm)
    build.object_code()    # an ELF object, without the manifest and the pool (--emit=obj)
    build.header()         # the C header                      (--emit=header)
    build.write_shared_object("model.so")                     # (--emit=so), atomically

LLVM runs its O2 pipeline for tensorc -O1/-O2 and its O3 for -O3 (loop and SLP vectorisers on
at both; `llvm_opt_level`), and its O0 pipeline at -O0, tuned for the host CPU and its
features (`artifact.host_target`), which the manifest records.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import llvmlite.binding as llvm
import llvmlite.ir as llvm_ir

from tensorc.codegen.artifact import (
    NativeTarget,
    build_shared_object,
    emit_object,
    host_target,
    make_manifest,
)
from tensorc.codegen.cpu.irutil import UnsupportedError, register_type
from tensorc.codegen.cpu.lower import entry_symbol, lower_module
from tensorc.codegen.cpu.parallel import build_jobs, compile_parts, split_module
from tensorc.codegen.cpu.pipeline import prepare_for_lowering
from tensorc.codegen.cpu.support import (
    GEMM_DTYPES,
    gemm_object,
    gemm_symbol,
    thread_pool_object,
)
from tensorc.codegen.header import emit_c_header
from tensorc.codegen.llvm_math import ldexp_scaling
from tensorc.ir.dialects.func import Module
from tensorc.ir.dtypes import DType
from tensorc.ir.location import Location
from tensorc.ir.signature import function_signature
from tensorc.passes import Instrumentation

SUPPORT_DIR = Path(__file__).resolve().parent.parent / "support"
THREAD_POOL_SOURCE = SUPPORT_DIR / "threadpool.c"


def check_dtypes(module: Module) -> None:
    """`UnsupportedError` at the first parameter or op whose dtype the backend has no
    register type for (bf16), before any lowering starts."""
    for function in module.functions:
        for value in function.args:
            _check_dtype(value.type.dtype, function.loc)
        for op in function.walk():
            for value in op.results:
                _check_dtype(value.type.dtype, op.loc)


def _check_dtype(dtype: DType, loc: Location | None) -> None:
    try:
        register_type(dtype)
    except UnsupportedError as error:
        raise UnsupportedError(error.message, loc) from None


def llvm_opt_level(opt_level: int) -> int:
    """LLVM's pipeline for tensorc's `-O` level: none at -O0, O2 at -O1 and -O2, O3 at -O3.

    LLVM's O3 unrolls more aggressively than its O2 and vectorises the same loops: for the MLP
    train step it spent 355 ms where O2 spends 245 ms, and wrote 44% more object code, while
    no workload of `benchmarks/run.py` (nor small-row log-softmax, cross-entropy or 3-column
    sums) ran measurably faster for it. -O3 keeps it, for those who trade compile time for it.
    """
    return {0: 0, 1: 2, 2: 2}.get(opt_level, 3)


def tuned_host_target() -> NativeTarget:
    """This machine, with 512-bit vectors where it has them: LLVM's tuning for recent Intel
    cores prefers 256-bit ones (`prefer-256-bit`), which halves the width of vectorised
    kernels for no gain on these machines."""
    target = host_target()
    if "+avx512f" in target.features.split(","):
        return replace(target, features=target.features + ",-prefer-256-bit")
    return target


@dataclass
class CpuBuild:
    """One module compiled for this machine's CPU (see the module documentation)."""

    module: Module
    source_text: str
    opt_level: int
    target: NativeTarget
    options: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def create(
        module: Module,
        source_text: str,
        opt_level: int = 2,
        options: dict[str, Any] | None = None,
        instrumentation: Instrumentation | None = None,
    ) -> CpuBuild:
        check_dtypes(module)
        prepare_for_lowering(module, opt_level, instrumentation=instrumentation)
        manifest_options = {"opt_level": opt_level, **(options or {})}
        return CpuBuild(module, source_text, opt_level, tuned_host_target(), manifest_options)

    # ----- IR -----------------------------------------------------------------------------
    @cached_property
    def unoptimized(self) -> llvm_ir.Module:
        with ldexp_scaling("+avx512f" in self.target.features.split(",")):
            module = lower_module(self.module, streaming_stores=self.target.arch == "x86_64")
        module.triple = self.target.triple
        return module

    @cached_property
    def optimized(self) -> llvm.ModuleRef:
        return self._optimize(str(self.unoptimized))

    def _optimize(self, text: str) -> llvm.ModuleRef:
        """LLVM IR text parsed and run through LLVM's pipeline for this build."""
        level = llvm_opt_level(self.opt_level)
        machine = self.target.target_machine(level)
        parsed = llvm.parse_assembly(text)
        parsed.triple = self.target.triple
        parsed.data_layout = str(machine.target_data)
        parsed.verify()
        tuning = llvm.create_pipeline_tuning_options(speed_level=level)
        tuning.loop_vectorization = level >= 2
        tuning.slp_vectorization = level >= 2
        passes = llvm.create_pass_builder(machine, tuning)
        passes.getModulePassManager().run(parsed, passes)
        return parsed

    def llvm_ir(self) -> str:
        return str(self.optimized)

    def assembly(self) -> str:
        machine = self.target.target_machine(llvm_opt_level(self.opt_level))
        return machine.emit_assembly(self.optimized)

    def object_code(self) -> bytes:
        return self._object

    @cached_property
    def _object(self) -> bytes:
        return emit_object(self.optimized, self.target, opt_level=None)

    def _compile_part(self, text: str) -> bytes:
        return emit_object(self._optimize(text), self.target, opt_level=None)

    def _library_objects(self) -> list[bytes]:
        """The module's object code for the shared library: compiled in parts by several
        processes when that pays (`parallel.py`), else the one object."""
        jobs = build_jobs()
        if jobs < 2 or "_object" in self.__dict__ or "optimized" in self.__dict__:
            return [self.object_code()]  # serial, or already compiled whole (--emit=obj, asm)
        # one text when splitting does not pay: compiled here, without printing it again
        return compile_parts(split_module(self.unoptimized, jobs), self._compile_part, jobs)

    # ----- artifact -----------------------------------------------------------------------
    @cached_property
    def manifest(self) -> dict[str, Any]:
        functions = []
        for function in self.module.functions:
            signature = function_signature(function)
            signature["symbol"] = entry_symbol(function)
            signature["symbols"] = list(function.symbols)
            functions.append(signature)
        return make_manifest(
            functions=functions,
            source_text=self.source_text,
            target=self.target,
            options=self.options,
        )

    def header(self) -> str:
        return emit_c_header(self.manifest)

    def write_shared_object(self, path: str | os.PathLike[str]) -> Path:
        """Link the artifact at `path` (atomically: a temporary file, then a rename)."""
        objects = [*self._library_objects(), thread_pool_object()]
        if any(gemm_symbol(dtype) in self.unoptimized.globals for dtype in GEMM_DTYPES):
            objects.append(gemm_object(self.target))
        return build_shared_object(
            objects,
            self.manifest,
            path,
            target=self.target,
            opt_level=None,
        )
