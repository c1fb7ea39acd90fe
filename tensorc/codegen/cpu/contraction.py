"""Contractions (`match_contraction`) -> the packed GEMM of `gemm.py` + a fused epilogue.

    acc[b, m, n] = sum_k A[b, m, k] * B[b, k, n];   out[b, m, n] = compute(inputs, acc)

The result buffer is the GEMM's C: the batched GEMM (`tensorc_gemm_f32`, from the support
object every artifact links, `support.py`) writes `A @ B` into it block by block and,
while a block is hot in cache,
calls the kernel's epilogue on it, which evaluates the compute block (bias, activation...) at
every point of the block and stores the result in place. A compute block that only yields the
accumulator needs no epilogue.

Strides come from the kernel's own addressing (`loops.Access`): the coefficients of the m, k
and n dims in each operand give `lda_row`, `lda_col`, ... (a transposed operand is just other
strides), the batch dims merge into one batch stride (0 where an operand broadcasts).

The GEMM path is taken when the operands and the result are of the accumulator's dtype (f32
or f64), the result's n stride is 1 and the batch dims merge into one; any other contraction
(casts to a wider accumulator, bool/int matmul...) is lowered as an ordinary loop nest.
"""

from __future__ import annotations

from collections.abc import Sequence

import llvmlite.ir as ir

from tensorc.codegen.cpu.gemm import EPILOGUE_PTR, EPILOGUE_TYPE
from tensorc.codegen.cpu.irutil import (
    I64,
    counted_loop,
    element_pointer,
    load_element,
    load_pointers,
    store_element,
    store_pointers,
)
from tensorc.codegen.cpu.loops import Access, KernelLowering, mergeable
from tensorc.codegen.cpu.sizes import SizeEmitter
from tensorc.codegen.cpu.support import declare_gemm
from tensorc.ir.dialects.kernel import Contraction, GenericOp, YieldOp, match_contraction


def gemm_contraction(op: GenericOp) -> Contraction | None:
    """The contraction form of `op` when the GEMM path applies (see the module doc)."""
    contraction = match_contraction(op)
    if contraction is None or len(op.results) != 1:
        return None
    dtype = contraction.accumulator
    if dtype.value not in ("f32", "f64"):
        return None
    lhs, rhs = op.inputs[contraction.lhs], op.inputs[contraction.rhs]
    if lhs.type.dtype != dtype or rhs.type.dtype != dtype or op.results[0].type.dtype != dtype:
        return None
    output = Access.of(op.results[0].type, op.output_maps[0])
    n_dim = contraction.batch_rank + 1
    if output.coefficients[n_dim] != 1:
        return None
    operands = (contraction.lhs, contraction.rhs)
    accesses = [Access.of(op.inputs[k].type, op.input_maps[k]) for k in operands] + [output]
    batch = list(range(contraction.batch_rank))
    sizes = op.domain_sizes
    if not all(mergeable(d, d + 1, sizes, accesses, set()) for d in batch[:-1]):
        return None
    return contraction


class ContractionLowering(KernelLowering):
    """A contraction kernel run by the batched GEMM (see the module documentation)."""

    def __init__(
        self,
        module: ir.Module,
        name: str,
        op: GenericOp,
        symbols: Sequence[str],
        contraction: Contraction,
    ) -> None:
        super().__init__(module, name, op, symbols)
        self.contraction = contraction
        rank = contraction.batch_rank
        self.batch_dims = list(range(rank))
        self.m_dim, self.n_dim, self.k_dim = rank, rank + 1, rank + 2

    def emit_launch(
        self,
        builder: ir.IRBuilder,
        sizes: SizeEmitter,
        dims: ir.Value,
        buffers: Sequence[ir.Value],
        context: ir.Value,
    ) -> ir.Value:
        """Call the GEMM; returns its status (0, or 3 when its scratch could not be had)."""
        store_pointers(builder, context, [dims, *buffers])
        contraction = self.contraction
        lhs, rhs = self.inputs[contraction.lhs], self.inputs[contraction.rhs]
        output = self.outputs[0]
        domain = self.op.domain_sizes
        batch = sizes.product(domain[d] for d in self.batch_dims)
        m, n, k = (sizes.extent(domain[d]) for d in (self.m_dim, self.n_dim, self.k_dim))
        innermost_batch = self.batch_dims[-1:] or None

        def batch_stride(access: Access) -> ir.Value:
            if innermost_batch is None:
                return I64(0)
            return access.coefficient(sizes, innermost_batch[0])

        a = element_pointer(builder, buffers[contraction.lhs], lhs.base(sizes), lhs.dtype)
        b = element_pointer(builder, buffers[contraction.rhs], rhs.base(sizes), rhs.dtype)
        c_index = len(self.inputs)
        c = element_pointer(builder, buffers[c_index], output.base(sizes), output.dtype)
        epilogue = self._emit_epilogue()
        arguments = [
            batch, m, n, k,
            a, batch_stride(lhs), lhs.coefficient(sizes, self.m_dim),
            lhs.coefficient(sizes, self.k_dim),
            b, batch_stride(rhs), rhs.coefficient(sizes, self.k_dim),
            rhs.coefficient(sizes, self.n_dim),
            c, batch_stride(output), output.coefficient(sizes, self.m_dim),
            epilogue if epilogue is not None else ir.Constant(EPILOGUE_PTR, None),
            context,
        ]  # fmt: skip
        return builder.call(self._gemm(), arguments)

    def _gemm(self) -> ir.Function:
        return declare_gemm(self.module, self.contraction.accumulator.value)

    # ----- the epilogue -------------------------------------------------------------------
    def _emit_epilogue(self) -> ir.Function | None:
        block = self.op.compute_block
        accumulator = block.args[len(self.op.inputs)]
        body = block.ops
        if len(body) == 1 and isinstance(body[0], YieldOp) and body[0].operands[0] is accumulator:
            return None
        function = ir.Function(self.module, EPILOGUE_TYPE, f"{self.name}.epilogue")
        function.linkage = "internal"
        context, batch, row0, rows, col0, cols, c_block, ldc = function.args
        # The C block is the op's result, which never shares memory with its operands: the
        # loop needs no runtime alias checks (nor LLVM the time to version it).
        c_block.add_attribute("noalias")
        prologue = function.append_basic_block("entry")
        start = function.append_basic_block("start")
        entry = ir.IRBuilder(prologue)
        dims, *buffers = load_pointers(entry, context, len(self.accesses) + 1)
        self.bind(entry, SizeEmitter(entry, dims, self.symbols), ir.IRBuilder(start), buffers)
        coefficient = [
            {d: access.coefficient(self.sizes, d) for d in range(self.op.num_dims)}
            for access in self.inputs
        ]
        bases = [access.base(self.sizes) for access in self.inputs]
        batch_index = self._batch_indices(batch)
        dtype = self.outputs[0].dtype
        builder = self.builder
        with counted_loop(builder, I64(0), rows, "row") as row:
            m = builder.add(row0, row)
            row_start = builder.mul(row, ldc)
            with counted_loop(builder, I64(0), cols, "col") as col:
                n = builder.add(col0, col)
                point = {**batch_index, self.m_dim: m, self.n_dim: n}
                self.indices.clear()
                self.indices.update(point)
                offsets = [
                    self._offset(base, coefficients, point)
                    for base, coefficients in zip(bases, coefficient)
                ]
                where = element_pointer(builder, c_block, builder.add(row_start, col), dtype)
                values = {id(accumulator): load_element(builder, where, dtype)}
                (result,) = self.emit_block(block, body, values, offsets)
                store_element(builder, result, where, dtype)
        builder.ret_void()
        self.prologue.branch(start)
        return function

    def _batch_indices(self, batch: ir.Value) -> dict[int, ir.Value]:
        """The gemm's merged batch index, split back into the kernel's batch dims."""
        indices: dict[int, ir.Value] = {}
        remaining = batch
        domain = self.op.domain_sizes
        for dim in reversed(self.batch_dims):
            extent = self.sizes.extent(domain[dim])
            if dim == self.batch_dims[0]:
                indices[dim] = remaining
                break
            indices[dim] = self.builder.urem(remaining, extent)
            remaining = self.builder.udiv(remaining, extent)
        return indices

    def _offset(
        self, base: ir.Value, coefficients: dict[int, ir.Value], point: dict[int, ir.Value]
    ) -> ir.Value:
        total = base
        for dim, index in point.items():
            total = self.builder.add(total, self.builder.mul(index, coefficients[dim]))
        return total
