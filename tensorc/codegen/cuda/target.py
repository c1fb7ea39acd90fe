"""What a kernel needs from the GPU, behind one interface: `GpuTarget`.

Kernels are written once against `GpuTarget` (special registers, barriers, warp shuffles,
shared memory, kernel marking). `NvptxTarget` emits NVVM IR for llvmlite's
`nvptx64-nvidia-cuda` target; the emulator (`emulator.HostTarget`) emits calls into a small
C runtime so that the same kernels run on the CPU in tests.

NVVM conventions used here:
- special registers are `llvm.nvvm.read.ptx.sreg.{tid,ctaid,ntid,nctaid}.x` (i32);
- `llvm.nvvm.barrier0` is `bar.sync 0` (`__syncthreads`);
- `llvm.nvvm.shfl.sync.bfly.i32(mask, value, lane_mask, 31)` is `__shfl_xor_sync`;
- shared memory is a global in address space 3, used through a generic pointer
  (`addrspacecast`; LLVM's address-space inference turns the accesses back into `ld.shared`);
- buffers are generic pointers: kernel pointer parameters are global memory, which NVPTX
  infers itself (`cvta.to.global`), and `noalias` read-only ones load through `ld.global.nc`;
- a kernel is marked by `!nvvm.annotations = !{!{ptr @k, !"kernel", i32 1}}`, with
  `maxntidx` giving its largest block size (so that ptxas budgets registers for it).
"""

from __future__ import annotations

import re

import llvmlite.binding as llvm
import llvmlite.ir as ir

I1 = ir.IntType(1)
I8 = ir.IntType(8)
I16 = ir.IntType(16)
I32 = ir.IntType(32)
I64 = ir.IntType(64)
PTR = ir.PointerType()
VOID = ir.VoidType()

NVPTX_TRIPLE = "nvptx64-nvidia-cuda"
DEFAULT_ARCH = "sm_80"
LOWEST_ARCH = 75
HIGHEST_ARCH = 90
SHARED_ADDRESS_SPACE = 3
WARP_SIZE = 32
FULL_MASK = -1  # all 32 lanes, as an i32
_ARCH_PATTERN = re.compile(r"sm_(\d{2,3})[a]?\Z")


def check_arch(arch: str) -> str:
    """`arch` when it names a supported architecture (`sm_75` .. `sm_90`), else ValueError."""
    found = _ARCH_PATTERN.match(arch) if isinstance(arch, str) else None
    if found is None or not LOWEST_ARCH <= int(found.group(1)) <= HIGHEST_ARCH:
        raise ValueError(
            f"unsupported CUDA architecture {arch!r}: use sm_{LOWEST_ARCH} .. sm_{HIGHEST_ARCH} "
            "(e.g. sm_75, sm_80, sm_86, sm_89, sm_90)"
        )
    return arch


class GpuTarget:
    """The GPU operations a kernel uses; see the module documentation."""

    def special(self, builder: ir.IRBuilder, register: str) -> ir.Value:
        """`tid`, `ctaid`, `ntid` or `nctaid` along x, as an i32."""
        raise NotImplementedError

    def barrier(self, builder: ir.IRBuilder) -> None:
        raise NotImplementedError

    def shuffle_xor(self, builder: ir.IRBuilder, value: ir.Value, lane_mask: int) -> ir.Value:
        """The i32 `value` of lane `lane ^ lane_mask` (every lane of the warp takes part)."""
        raise NotImplementedError

    def shared_array(
        self, module: ir.Module, name: str, element: ir.Type, count: int
    ) -> ir.GlobalVariable:
        raise NotImplementedError

    def shared_pointer(self, builder: ir.IRBuilder, array: ir.GlobalVariable) -> ir.Value:
        """A generic pointer to the first element of a `shared_array`."""
        raise NotImplementedError

    def finish_kernel(self, function: ir.Function, max_threads: int) -> None:
        """Mark `function` as a kernel launched with at most `max_threads` threads a block."""
        raise NotImplementedError


class NvptxTarget(GpuTarget):
    """NVVM IR for llvmlite's NVPTX backend."""

    def special(self, builder: ir.IRBuilder, register: str) -> ir.Value:
        name = f"llvm.nvvm.read.ptx.sreg.{register}.x"
        return builder.call(_declare(builder.module, name, I32, []), [], name=register)

    def barrier(self, builder: ir.IRBuilder) -> None:
        builder.call(_declare(builder.module, "llvm.nvvm.barrier0", VOID, []), [])

    def shuffle_xor(self, builder: ir.IRBuilder, value: ir.Value, lane_mask: int) -> ir.Value:
        function = _declare(builder.module, "llvm.nvvm.shfl.sync.bfly.i32", I32, [I32] * 4)
        return builder.call(
            function, [I32(FULL_MASK), value, I32(lane_mask), I32(WARP_SIZE - 1)]
        )

    def shared_array(
        self, module: ir.Module, name: str, element: ir.Type, count: int
    ) -> ir.GlobalVariable:
        array_type = ir.ArrayType(element, count)
        variable = ir.GlobalVariable(module, array_type, name, addrspace=SHARED_ADDRESS_SPACE)
        variable.linkage = "internal"
        variable.align = 16
        variable.initializer = ir.Constant(array_type, ir.Undefined)
        variable.type = ir.PointerType(addrspace=SHARED_ADDRESS_SPACE)
        return variable

    def shared_pointer(self, builder: ir.IRBuilder, array: ir.GlobalVariable) -> ir.Value:
        return builder.addrspacecast(array, PTR)

    def finish_kernel(self, function: ir.Function, max_threads: int) -> None:
        module = function.module
        annotations = module.add_named_metadata("nvvm.annotations")
        annotations.add(module.add_metadata([function, ir.MetaDataString(module, "kernel"),
                                             I32(1)]))
        annotations.add(module.add_metadata([function, ir.MetaDataString(module, "maxntidx"),
                                             I32(max_threads)]))


def _declare(module: ir.Module, name: str, result: ir.Type, params: list[ir.Type]) -> ir.Function:
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    return ir.Function(module, ir.FunctionType(result, params), name)


# ----- PTX emission -------------------------------------------------------------------------

_initialized = False


def initialize_nvptx() -> None:
    global _initialized
    if _initialized:
        return
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()
    _initialized = True


def target_machine(arch: str, opt_level: int = 3) -> llvm.TargetMachine:
    initialize_nvptx()
    target = llvm.Target.from_triple(NVPTX_TRIPLE)
    return target.create_target_machine(cpu=check_arch(arch), opt=opt_level)


def optimize_module(module: ir.Module, arch: str, opt_level: int = 3) -> llvm.ModuleRef:
    """Parse, verify and run LLVM's default pipeline for the NVPTX target."""
    machine = target_machine(arch, opt_level)
    parsed = llvm.parse_assembly(str(module))
    parsed.triple = NVPTX_TRIPLE
    parsed.data_layout = str(machine.target_data)
    parsed.verify()
    tuning = llvm.create_pipeline_tuning_options(speed_level=opt_level)
    passes = llvm.create_pass_builder(machine, tuning)
    passes.getModulePassManager().run(parsed, passes)
    return parsed


def emit_ptx(module: llvm.ModuleRef, arch: str, opt_level: int = 3) -> str:
    return target_machine(arch, opt_level).emit_assembly(module)


def ptx_version(ptx: str) -> str | None:
    """The `.version` of a PTX text (e.g. "7.0")."""
    found = re.search(r"^\s*\.version\s+(\d+\.\d+)", ptx, re.MULTILINE)
    return found.group(1) if found else None


def ptx_entries(ptx: str) -> list[str]:
    """The kernel names (`.entry`) of a PTX text, in order."""
    return re.findall(r"\.entry\s+([A-Za-z_$][\w$]*)", ptx)
