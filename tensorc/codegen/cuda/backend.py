"""The CUDA backend's build: optimised tensorc IR -> NVVM IR -> PTX (+ cubin) -> artifact.

    build = CudaBuild.create(module, source_text, opt_level=2, arch="sm_80")
    build.nvvm_ir()     # the NVVM IR before LLVM's optimisation       (--emit=llvm)
    build.ptx()         # PTX for `arch`                               (--emit=ptx)
    build.cubin()       # ptxas's cubin for `arch`, None without a ptxas
    build.plans         # one launch plan per function (plan.py)
    build.write_shared_object("model.so")                            (--emit=so)

The artifact is the CPU target's container (an ELF shared object for the host, with the
manifest section, docs/abi.md) holding:
- the PTX, NUL-terminated, in section `.tensorc_ptx` (symbol `__tensorc_ptx`);
- the cubin, when ptxas was found at compile time, in section `.tensorc_cubin` (symbol
  `__tensorc_cubin`);
- the manifest, whose `"cuda"` object describes both (size, SHA-256, PTX version, arch) and
  holds the launch plans the runtime follows;
- one entry point `tensorc_F` per function, as for the CPU, which only reports (code 4)
  that a CUDA artifact's functions are run by `tensorc_runtime` from the launch plan.

Every symbol but the entry points is in the reserved `__tensorc_` namespace (docs/abi.md).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import llvmlite.binding as llvm
import llvmlite.ir as ir

from tensorc.codegen.artifact import (
    build_shared_object,
    entry_symbol_name,
    host_target,
    make_manifest,
    reserved_symbol_name,
)
from tensorc.codegen.cpu.pipeline import prepare_for_lowering
from tensorc.codegen.cuda.lower import lower_module
from tensorc.codegen.cuda.plan import FunctionPlan
from tensorc.codegen.cuda.ptxas import assemble, find_ptxas, ptxas_version
from tensorc.codegen.cuda.target import (
    DEFAULT_ARCH,
    I8,
    I32,
    I64,
    PTR,
    NvptxTarget,
    check_arch,
    emit_ptx,
    optimize_module,
    ptx_entries,
    ptx_version,
)
from tensorc.ir.dialects.func import Module
from tensorc.ir.signature import function_signature
from tensorc.passes import Instrumentation

PTX_SECTION = ".tensorc_ptx"
CUBIN_SECTION = ".tensorc_cubin"
PTX_SYMBOL = reserved_symbol_name("ptx")
CUBIN_SYMBOL = reserved_symbol_name("cubin")
MESSAGE_SYMBOL = reserved_symbol_name("cuda_message")
NOT_CALLABLE_CODE = 4
NOT_CALLABLE_MESSAGE = (
    "this is a CUDA artifact: its functions are run by tensorc_runtime (Python, pycuda) from "
    "the launch plan in its manifest, not through this entry point"
)
_MESSAGE_OFFSET = 40  # offsetof(tensorc_error, message)


def llvm_opt_level(opt_level: int) -> int:
    return 1 if opt_level == 0 else 3


@dataclass
class CudaBuild:
    """One module compiled for a CUDA architecture (see the module documentation)."""

    module: Module
    source_text: str
    opt_level: int
    arch: str
    options: dict[str, Any] = field(default_factory=dict)
    use_ptxas: bool = True

    @staticmethod
    def create(
        module: Module,
        source_text: str,
        opt_level: int = 2,
        arch: str = DEFAULT_ARCH,
        options: dict[str, Any] | None = None,
        instrumentation: Instrumentation | None = None,
        use_ptxas: bool = True,
    ) -> CudaBuild:
        check_arch(arch)
        prepare_for_lowering(module, opt_level, instrumentation=instrumentation)
        manifest_options = {"opt_level": opt_level, **(options or {})}
        return CudaBuild(module, source_text, opt_level, arch, manifest_options, use_ptxas)

    # ----- kernels --------------------------------------------------------------------------
    @cached_property
    def _lowered(self) -> tuple[ir.Module, list[FunctionPlan]]:
        return lower_module(self.module, NvptxTarget())

    @property
    def plans(self) -> list[FunctionPlan]:
        return self._lowered[1]

    def nvvm_ir(self) -> str:
        return str(self._lowered[0])

    @cached_property
    def optimized(self) -> llvm.ModuleRef:
        return optimize_module(self._lowered[0], self.arch, llvm_opt_level(self.opt_level))

    def ptx(self) -> str:
        return self._ptx

    @cached_property
    def _ptx(self) -> str:
        return emit_ptx(self.optimized, self.arch, llvm_opt_level(self.opt_level))

    def cubin(self) -> bytes | None:
        return self._cubin

    @cached_property
    def _cubin(self) -> bytes | None:
        if not self.use_ptxas or find_ptxas() is None:
            return None
        return assemble(self.ptx(), self.arch)

    # ----- artifact -------------------------------------------------------------------------
    @cached_property
    def manifest(self) -> dict[str, Any]:
        functions = []
        for function in self.module.functions:
            signature = function_signature(function)
            signature["symbol"] = entry_symbol_name(function.sym_name)
            signature["symbols"] = list(function.symbols)
            functions.append(signature)
        return make_manifest(
            functions=functions,
            source_text=self.source_text,
            target=host_target("generic"),
            kind="cuda",
            options=self.options,
            arch=self.arch,
            cuda=self.cuda_section(),
        )

    def cuda_section(self) -> dict[str, Any]:
        ptx = self.ptx().encode()
        cubin = self.cubin()
        ptxas = find_ptxas() if cubin is not None else None
        return {
            "ptx": {
                "section": PTX_SECTION,
                "bytes": len(ptx),
                "sha256": hashlib.sha256(ptx).hexdigest(),
                "version": ptx_version(self.ptx()),
            },
            "cubin": None if cubin is None else {
                "section": CUBIN_SECTION,
                "bytes": len(cubin),
                "sha256": hashlib.sha256(cubin).hexdigest(),
                "arch": self.arch,
                "ptxas": ptxas_version(ptxas) if ptxas else None,
            },
            "kernels": ptx_entries(self.ptx()),
            "functions": {plan.name: plan.to_dict() for plan in self.plans},
        }

    def host_module(self) -> ir.Module:
        """The sections holding the PTX and the cubin, and the entry-point stubs."""
        module = ir.Module(name="tensorc_cuda_host")
        _bytes_global(module, PTX_SYMBOL, PTX_SECTION, self.ptx().encode() + b"\0", 1)
        cubin = self.cubin()
        if cubin is not None:
            _bytes_global(module, CUBIN_SYMBOL, CUBIN_SECTION, cubin, 8)
        message = _bytes_global(module, MESSAGE_SYMBOL, None,
                                NOT_CALLABLE_MESSAGE.encode() + b"\0", 1)
        for function in self.module.functions:
            _entry_stub(module, entry_symbol_name(function.sym_name), message,
                        len(NOT_CALLABLE_MESSAGE) + 1)
        return module

    def write_shared_object(self, path: str | os.PathLike[str]) -> Path:
        """The artifact at `path` (atomically: a temporary file, then a rename)."""
        target = host_target("generic")
        return build_shared_object([self.host_module()], self.manifest, path, target=target,
                                   opt_level=None)


def _bytes_global(module: ir.Module, name: str, section: str | None, data: bytes,
                  align: int) -> ir.GlobalVariable:
    array_type = ir.ArrayType(I8, len(data))
    variable = ir.GlobalVariable(module, array_type, name=name)
    variable.global_constant = True
    variable.align = align
    variable.initializer = ir.Constant(array_type, bytearray(data))
    if section is not None:
        variable.section = section
    else:
        variable.linkage = "private"
    variable.type = PTR
    return variable


def _entry_stub(module: ir.Module, name: str, message: ir.Value, length: int) -> None:
    """`int32_t name(args, results, dims, error)`: fills `*error` and returns code 4."""
    function = ir.Function(module, ir.FunctionType(I32, [PTR] * 4), name)
    error = function.args[3]
    entry = function.append_basic_block("entry")
    fill = function.append_basic_block("fill")
    done = function.append_basic_block("done")
    builder = ir.IRBuilder(entry)
    builder.cbranch(builder.icmp_unsigned("==", error, ir.Constant(PTR, None)), done, fill)
    builder.position_at_end(fill)
    builder.store(I32(NOT_CALLABLE_CODE), error, align=4)
    builder.store(I32(-1), builder.gep(error, [I64(4)], source_etype=I8), align=4)
    memcpy = module.globals.get("llvm.memcpy.p0.p0.i64") or ir.Function(
        module, ir.FunctionType(ir.VoidType(), [PTR, PTR, I64, ir.IntType(1)]),
        "llvm.memcpy.p0.p0.i64",
    )
    target = builder.gep(error, [I64(_MESSAGE_OFFSET)], source_etype=I8)
    builder.call(memcpy, [target, message, I64(length), ir.IntType(1)(0)])
    builder.branch(done)
    builder.position_at_end(done)
    builder.ret(I32(NOT_CALLABLE_CODE))
