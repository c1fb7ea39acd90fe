"""Chains: consecutive row kernels run row block by row block, so a row stays in cache.

Softmax is two kernels over the rows of `x` (the row max; then the exponentials, their sum
and the scaled output) and layer norm two more (the mean; the variance and the output). Run
one after the other, each streams all of `x` from memory; but the second kernel's row `p`
needs only row `p` of the first kernel's result. So such kernels form a *chain*: one pool
task over the rows, which for each block of ROW_BLOCK_ELEMENTS elements' worth of rows runs
every kernel of the chain in order. The block is still in L1/L2 when the next kernel reads
it, and the whole chain reads `x` from memory once.

A kernel joins the chain before it when (`chain_extends`):

- both are loop nests (`KernelLowering`, not column reductions) whose first loop is the
  parallel loop over domain dim 0 alone, of the same size;
- every value it reads that a kernel of the chain writes is row-local on both sides: axis 0
  of the value is exactly dim 0 in the writer's output map and in the reader's input map,
  so row `p` is written and read at the same step of the row loop;
- its outputs share no buffer with anything a kernel of the chain reads or writes (the
  arena reuses slots, and interleaving must not overwrite rows not yet read).

Pipelining. When the chain's first two kernels are row reductions that can run in one loop
(carried_rows.py), the second kernel's nest *carries* the first one ahead of its own rows,
and the chain's task calls only the nests from the second kernel on. A two-kernel chain then
needs no row blocks (nothing later reads the rows from cache), and each task runs its rows in
one call.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import llvmlite.ir as ir

from tensorc.codegen.cpu.carried_rows import RowPipeline, can_carry
from tensorc.codegen.cpu.irutil import (
    I64,
    PTR,
    VOID,
    call_parallel_for,
    counted_loop,
    load_pointers,
    smax_i64,
    smin_i64,
    store_pointers,
)
from tensorc.codegen.cpu.loops import KernelLowering, pool_grain
from tensorc.codegen.cpu.sizes import SizeEmitter
from tensorc.ir.affine import AffineMap
from tensorc.ir.core import Value

ROW_BLOCK_ELEMENTS = 4096

BufferKey = Callable[[Value], object]


def leads_with_rows(kernel: KernelLowering) -> bool:
    """Whether `kernel`'s first parallel loop is domain dim 0 alone (chains split on it)."""
    if kernel.columns or not kernel.parallel_loops or len(kernel.loops) < 2:
        return False
    return kernel.parallel_loops[0].dims == [0] and kernel.loops[0] is kernel.parallel_loops[0]


def _row_local(amap: AffineMap) -> bool:
    """Axis 0 is exactly dim 0 and no other axis uses dim 0."""
    forms = amap.linear_forms()
    if not forms or forms[0].coefficients != ((0, 1),) or forms[0].offset != 0:
        return False
    return all(all(dim != 0 for dim, _ in form.coefficients) for form in forms[1:])


def chain_extends(chain: Sequence[KernelLowering], kernel: KernelLowering, key: BufferKey) -> bool:
    """Whether `kernel` may join `chain` (module doc)."""
    if not (leads_with_rows(chain[0]) and leads_with_rows(kernel)):
        return False
    size = kernel.op.domain_sizes[0]
    written: dict[int, AffineMap] = {}  # id(value) -> its output map, for the chain's results
    written_buffers: set[object] = set()
    read_buffers: set[object] = set()
    for member in chain:
        if member.op.domain_sizes[0] != size:
            return False
        for result, amap in zip(member.op.results, member.op.output_maps):
            written[id(result)] = amap
            written_buffers.add(key(result))
        read_buffers.update(key(value) for value in member.op.inputs)
    for value, amap in zip(kernel.op.inputs, kernel.op.input_maps):
        if id(value) in written:
            if not (_row_local(written[id(value)]) and _row_local(amap)):
                return False
        elif key(value) in written_buffers:
            return False
    touched = written_buffers | read_buffers
    return not any(key(result) in touched for result in kernel.op.results)


class ChainLowering:
    """Emits a chain of row kernels as one pool task over row blocks (module doc)."""

    def __init__(self, module: ir.Module, name: str, kernels: Sequence[KernelLowering]):
        self.module = module
        self.name = name
        self.kernels = list(kernels)
        self.pipelined = len(kernels) > 1 and can_carry(kernels[1], kernels[0])
        if self.pipelined:
            kernels[1].carry(RowPipeline(kernels[1], kernels[0]))

    def emit_launch(
        self,
        builder: ir.IRBuilder,
        sizes: SizeEmitter,
        dims: ir.Value,
        buffers: Sequence[Sequence[ir.Value]],
        context: ir.Value,
    ) -> None:
        """Run the chain from the entry point; `context` holds `2 + sum(len(b))` pointers:
        dims, the rows per block (as an integer), then every kernel's buffers."""
        nests = [kernel.emit_nest() for kernel in self.kernels[1 if self.pipelined else 0 :]]
        task = self._task(nests)
        b = sizes.builder
        work = functools.reduce(b.add, [kernel.work_per_step(sizes) for kernel in self.kernels])
        elements: ir.Value = I64(1)
        for kernel in self.kernels:
            inner = sizes.product(
                kernel.op.domain_sizes[d] for loop in kernel.loops[1:] for d in loop.dims
            )
            elements = smax_i64(b, elements, inner)
        block = b.add(b.udiv(I64(ROW_BLOCK_ELEMENTS), elements), I64(1))
        grain = smax_i64(b, pool_grain(sizes, work), block)
        count = sizes.value(self.kernels[0].op.domain_sizes[0])
        if self.pipelined and len(self.kernels) == 2:
            block = smax_i64(b, count, I64(1))  # no later kernel needs rows kept in cache
        pointers = [dims, builder.inttoptr(block, PTR)]
        for kernel_buffers in buffers:
            pointers.extend(kernel_buffers)
        store_pointers(builder, context, pointers)
        call_parallel_for(builder, task, context, count, grain)

    def _task(self, nests: Sequence[ir.Function]) -> ir.Function:
        """`void name.task(ptr ctx, i64 begin, i64 end)`: for each block of rows in
        [begin, end), every kernel's nest over that block, in order."""
        task_type = ir.FunctionType(VOID, [PTR, I64, I64])
        task = ir.Function(self.module, task_type, f"{self.name}.task")
        task.linkage = "internal"
        context, begin, end = task.args
        b = ir.IRBuilder(task.append_basic_block("entry"))
        dims, block_pointer = load_pointers(b, context, 2)
        block = b.ptrtoint(block_pointer, I64)
        arguments: list[list[ir.Value]] = []
        position = 2
        for kernel in self.kernels:
            count = len(kernel.accesses)
            arguments.append(load_pointers(b, context, count, start=position))
            position += count
        blocks = b.udiv(b.add(b.sub(end, begin), b.sub(block, I64(1))), block)
        if self.pipelined:  # the second kernel's nest runs the first (carried_rows.py)
            arguments = [arguments[1] + arguments[0], *arguments[2:]]
        with counted_loop(b, I64(0), blocks, "rows") as index:
            first = b.add(begin, b.mul(index, block))
            last = smin_i64(b, b.add(first, block), end)
            for nest, kernel_arguments in zip(nests, arguments):
                b.call(nest, [dims, *kernel_arguments, first, last])
        b.ret_void()
        return task

