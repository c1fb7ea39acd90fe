"""A prepared tensorc module (kernels + leftover `tc` ops) -> one NVVM module + launch plans.

Every function becomes a `FunctionPlan` (`plan.py`) and its kernels, named
`tensorc_<function>_k<n>_<kind>` in op order:

    kernel.generic without reduction dims     pointwise   (pointwise.py)
    contraction with a parallel epilogue      matmul      (matmul.py)
    other reductions                          row / column (reduction.py); consecutive row
                                              reductions of one row (softmax, layer norm)
                                              are one `row` kernel; a reduction with few
                                              points may also run as `partial` + `finish`
                                              (split.py), chosen by the sizes at run time
    tc.take, tc.argmax, ...                    the op's name (tc_kernels.py)
    tc.reshape / tc.constant                  no kernel: an alias / a constant buffer, or a
                                              copy step when the value is returned

Kernel names never clash: a `<kind>` is lowercase words joined by `_` (no digit), so the last
`_k<digits>_` in a kernel's name is the one put there, and what precedes it is the function's
name, unique in the module (the kernel `tensorc_a_k1_k0_row` of a function `a_k1` is never one
of `a`'s). Kernels live in the PTX, apart from the host symbols (docs/abi.md).

Values returned twice, or returned parameters, are copied into their result buffers last.
Names and the order of everything derive from the IR only: the same module gives the same
NVVM IR, PTX and plan.
"""

from __future__ import annotations

import re

import llvmlite.ir as ir

from tensorc.codegen.cpu.irutil import UnsupportedError
from tensorc.codegen.cuda.matmul import MatmulKernel, gpu_contraction
from tensorc.codegen.cuda.plan import (
    BufferPlanner,
    Check,
    FunctionPlan,
    Launch,
    constant_data,
)
from tensorc.codegen.cuda.pointwise import PointwiseKernel
from tensorc.codegen.cuda.reduction import (
    ColumnReductionKernel,
    RowReductionKernel,
    is_column_reduction,
    row_chains,
)
from tensorc.codegen.cuda.split import (
    SplitFinishKernel,
    SplitPartialKernel,
    split_count,
    split_sizes,
    split_switch,
    splittable,
)
from tensorc.codegen.cuda.target import GpuTarget
from tensorc.codegen.cuda.tc_kernels import EMITTERS
from tensorc.ir.core import Operation
from tensorc.ir.dialects.func import FuncOp, Module
from tensorc.ir.dialects.kernel import GenericOp
from tensorc.ir.dims import DimExpr
from tensorc.ir.types import TensorType

KERNEL_KIND = re.compile(r"[a-z]+(?:_[a-z]+)*")


def lower_module(module: Module, target: GpuTarget) -> tuple[ir.Module, list[FunctionPlan]]:
    """The NVVM module of every kernel of `module` and one plan per function."""
    llvm_module = ir.Module(name="tensorc_cuda")
    plans = [FunctionLowering(llvm_module, target, f).lower() for f in module.functions]
    return llvm_module, plans


class FunctionLowering:
    """Lowers one function to kernels and its plan."""

    def __init__(self, module: ir.Module, target: GpuTarget, function: FuncOp) -> None:
        self.module = module
        self.target = target
        self.function = function
        self.symbols = list(function.symbols)
        self.plan = FunctionPlan(function.sym_name, self.symbols)
        self.ops = function.body.ops
        self.groups = row_chains(self.ops[:-1])
        self.buffers = BufferPlanner(function, self.plan, self.groups)
        self.kernel_count = 0

    def lower(self) -> FunctionPlan:
        self.buffers.run()
        position = {id(op): index for index, op in enumerate(self.ops)}
        for group in self.groups:
            if len(group) > 1:
                self._lower_row_chain(group, position[id(group[0])])
            else:
                self._lower_op(group[0], position[id(group[0])])
        for value, output in self.buffers.final_copies:
            self.plan.steps.append({"kind": "copy", "src": self.buffers.buffer(value),
                                    "dst": output})
        return self.plan

    def _name(self, kind: str) -> str:
        if not KERNEL_KIND.fullmatch(kind):  # a digit could make two functions' names meet
            raise ValueError(f"kernel kind {kind!r} is not lowercase words joined by '_'")
        name = f"tensorc_{self.function.sym_name}_k{self.kernel_count}_{kind}"
        self.kernel_count += 1
        return name

    def _lower_op(self, op: Operation, position: int) -> None:
        if isinstance(op, GenericOp):
            self._lower_kernel(op, position)
            return
        if op.name in ("tc.constant", "tc.reshape"):
            self._lower_view(op)
            return
        emitter = EMITTERS.get(op.name)
        if emitter is None:
            raise UnsupportedError(
                f"{op.name} is not lowered by the CUDA backend (fusion should have made it a "
                "kernel.generic)"
            )
        name = self._name(op.name.removeprefix("tc."))
        kernel = emitter(self.module, self.target, name, op, self.symbols)
        params = [{"buffer": self.buffers.buffer(v)} for v in kernel.buffers]
        params += [{"symbol": s} for s in self.symbols]
        if kernel.check is not None:
            check = kernel.check
            params.append({"error": len(self.plan.checks)})
            self.plan.checks.append(
                Check(check.op, self.buffers.buffer(check.indices), check.axis, check.size)
            )
        if kernel.zero_results:
            for result in op.results:
                self.plan.steps.append({"kind": "zero", "buffer": self.buffers.buffer(result)})
        self.plan.steps.append(
            Launch(name, position, kernel.shape.grid, kernel.shape.block, params)
        )

    def _lower_view(self, op: Operation) -> None:
        """A constant or reshape needs a copy only when its value is a result buffer."""
        result = self.buffers.buffer(op.result)
        if self.plan.buffers[result].role != "output":
            return
        if op.name == "tc.constant":
            source = self.buffers.new(op.result.type, "constant", data=constant_data(op))
        else:
            source = self.buffers.buffer(op.x)
        self.plan.steps.append({"kind": "copy", "src": source, "dst": result})

    def _lower_kernel(self, op: GenericOp, position: int) -> None:
        if splittable(op):
            self._lower_split(op, position)
            return
        self._lower_whole(op, position)

    def _lower_split(self, op: GenericOp, position: int) -> None:
        """A reduction that may run split (`split.py`): the ordinary kernel unless S is known
        to exceed 1, then the partial and finish kernels, each launched when it applies."""
        count = split_count(op)
        points, _ = split_sizes(op)
        if not (count.is_const and (count.value or 0) > 1):
            _, off = split_switch(op)
            self._lower_whole(op, position, grid_factor=off)
        scratch = []
        for accumulator in op.accumulator_types:
            scratch_type = TensorType.of(accumulator.dtype, (count, points))
            scratch.append(self.buffers.new(scratch_type, "temporary", slot=self.plan.slots))
            self.plan.slots += 1
        symbols = [{"symbol": s} for s in self.symbols]
        scratch_params = [{"buffer": b} for b in scratch]
        inputs = [{"buffer": self.buffers.buffer(v)} for v in op.inputs]
        results = [{"buffer": self.buffers.buffer(v)} for v in op.results]
        name = self._name("partial")
        shape = SplitPartialKernel(self.module, self.target, name, op, self.symbols).emit()
        self.plan.steps.append(Launch(name, position, shape.grid, shape.block,
                                      inputs + scratch_params + symbols))
        name = self._name("finish")
        shape = SplitFinishKernel(self.module, self.target, name, op, self.symbols).emit()
        self.plan.steps.append(Launch(name, position, shape.grid, shape.block,
                                      inputs + results + scratch_params + symbols))

    def _lower_whole(self, op: GenericOp, position: int, grid_factor: DimExpr | int = 1) -> None:
        contraction = gpu_contraction(op)
        if contraction is not None:
            name = self._name("matmul")
            emitter = MatmulKernel(self.module, self.target, name, op, self.symbols,
                                   contraction)
        elif not op.has_reduction:
            name = self._name("pointwise")
            emitter = PointwiseKernel(self.module, self.target, name, op, self.symbols)
        elif is_column_reduction(op):
            name = self._name("column")
            emitter = ColumnReductionKernel(self.module, self.target, name, op, self.symbols)
        else:
            self._lower_row_chain([op], position, grid_factor)
            return
        shape = emitter.emit()
        values = list(op.inputs) + list(op.results)
        params = [{"buffer": self.buffers.buffer(v)} for v in values]
        params += [{"symbol": s} for s in self.symbols]
        self.plan.steps.append(Launch(name, position, shape.grid * grid_factor, shape.block,
                                      params))

    def _lower_row_chain(self, ops: list[Operation], position: int,
                         grid_factor: DimExpr | int = 1) -> None:
        """Row reductions, one kernel for a whole chain (`reduction.row_chains`)."""
        name = self._name("row")
        buffers: list = []
        seen: set[int] = set()
        for op in ops:
            for value in list(op.inputs) + list(op.results):
                if id(value) not in seen:
                    seen.add(id(value))
                    buffers.append(value)
        emitter = RowReductionKernel(self.module, self.target, name, ops, self.symbols, buffers)
        shape = emitter.emit()
        params = [{"buffer": self.buffers.buffer(v)} for v in buffers]
        params += [{"symbol": s} for s in self.symbols]
        self.plan.steps.append(Launch(name, position, shape.grid * grid_factor, shape.block,
                                      params))
