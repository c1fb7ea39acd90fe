"""Contractions (`match_contraction`) -> a shared-memory tiled, register-blocked matmul kernel
with the op's compute block fused as its epilogue.

    acc[b, m, n] = sum_k A[b, m, k] * B[b, k, n];   out[b, m, n] = compute(inputs, acc)

Each 256-thread block computes 64 x 64 tiles of `out` (a grid-stride loop over the flat tile
index `batch * tiles_m * tiles_n + tm * tiles_n + tn`, so any batch count and any grid
work). Per 16-wide slice of K:

1. the block loads the 64 x 16 slice of A and the 16 x 64 slice of B into shared memory,
   4 elements a thread, with consecutive threads on consecutive addresses of each operand
   (which axis that is comes from its strides: a transposed operand is just other strides);
   elements outside [M, N, K] are zeros (the address is clamped, nothing is read out of
   bounds); values are converted to the accumulator dtype on the way (the contraction's
   optional float widening);
2. `bar.sync`; thread (ty, tx) = (tid / 16, tid % 16) keeps a 4 x 4 register tile of
   accumulators for rows ty + 16i and columns tx + 16j and runs the 16 steps fully unrolled:
   4 + 4 shared loads (broadcast / consecutive: conflict-free; rows padded to 65 elements so
   that the transposing stores do not conflict either) and 16 `fma`s;
3. `bar.sync` before the next slice overwrites the tiles.

The epilogue evaluates the compute block (bias, activation, ...) on each accumulator with the
other inputs read through their maps at (b, m, n), and stores every result in bounds;
consecutive threads store consecutive columns. Batch dims broadcast through zero strides.
Integer contractions wrap (`mul`/`add`); float ones use `llvm.fma`, as BLAS does.
"""

from __future__ import annotations

from collections.abc import Sequence

import llvmlite.ir as ir

from tensorc.codegen.cpu.irutil import intrinsic, register_type
from tensorc.codegen.cpu.loops import Loop
from tensorc.codegen.cpu.scalar import constant, convert
from tensorc.codegen.cuda.kernel import (
    BLOCK_THREADS,
    Addressing,
    BodyEmitter,
    KernelSkeleton,
    LaunchShape,
    blocks_expr,
    count_expr,
    extent_expr,
    load_at,
    store_at,
    strided_loop,
)
from tensorc.codegen.cuda.target import I64, GpuTarget
from tensorc.ir.dialects.kernel import Contraction, GenericOp, match_contraction
from tensorc.ir.dims import DimExpr
from tensorc.ir.dtypes import DType

TILE = 64
TILE_K = 16
THREADS_X = 16
REGISTERS = TILE // THREADS_X  # 4 x 4 accumulators a thread
SHARED_ROW = TILE + 1
LOADS_PER_THREAD = TILE * TILE_K // BLOCK_THREADS


def gpu_contraction(op: GenericOp) -> Contraction | None:
    """The contraction form of `op` when the tiled kernel applies (a parallel epilogue)."""
    if op.is_row_epilogue:
        return None
    return match_contraction(op)


class MatmulKernel:
    """Emits one contraction (see the module documentation)."""

    def __init__(
        self, module: ir.Module, target: GpuTarget, name: str, op: GenericOp,
        symbols: Sequence[str], contraction: Contraction,
    ) -> None:
        self.op = op
        self.contraction = contraction
        self.kernel = KernelSkeleton(
            module, target, name, len(op.inputs) + len(op.results), symbols
        )
        loops = [Loop([dim], kind) for dim, kind in enumerate(op.iterators)]
        self.addressing = Addressing(self.kernel, op, loops)
        batch = contraction.batch_rank
        self.batch_dims = list(range(batch))
        self.m_dim, self.n_dim, self.k_dim = batch, batch + 1, batch + 2
        self.dtype: DType = contraction.accumulator
        self.value_type = register_type(self.dtype)
        self.body = BodyEmitter(self.kernel, op)

    def emit(self) -> LaunchShape:
        kernel, addressing = self.kernel, self.addressing
        builder, p = kernel.builder, kernel.prologue
        sizes = addressing.loop_sizes
        m_size, n_size, k_size = sizes[self.m_dim], sizes[self.n_dim], sizes[self.k_dim]
        tiles_m = p.udiv(p.add(m_size, I64(TILE - 1)), I64(TILE))
        tiles_n = p.udiv(p.add(n_size, I64(TILE - 1)), I64(TILE))
        tiles = p.mul(tiles_m, tiles_n)
        units = p.mul(tiles, addressing.count(kernel.sizes, self.batch_dims))
        tid = kernel.register("tid")
        tx = p.and_(tid, I64(THREADS_X - 1), name="tx")
        ty = p.lshr(tid, I64(4), name="ty")
        shared_a = kernel.shared_array("a", self.value_type, TILE_K * SHARED_ROW)
        shared_b = kernel.shared_array("b", self.value_type, TILE_K * SHARED_ROW)
        accumulators = [
            kernel.prologue.alloca(self.value_type, name=f"c{i}{j}")
            for i in range(REGISTERS) for j in range(REGISTERS)
        ]
        zero = constant(self.dtype, 0)
        with strided_loop(builder, kernel.register("ctaid"), units, kernel.register("nctaid"),
                          "tile") as unit:
            batch = builder.udiv(unit, tiles)
            tile = builder.urem(unit, tiles)
            m0 = builder.mul(builder.udiv(tile, tiles_n), I64(TILE))
            n0 = builder.mul(builder.urem(tile, tiles_n), I64(TILE))
            batch_indices = addressing.split(builder, batch, self.batch_dims)
            batch_offsets = addressing.offsets(builder, addressing.bases, batch_indices)
            for slot in accumulators:
                builder.store(zero, slot)
            with strided_loop(builder, I64(0), k_size, I64(TILE_K), "k") as k0:
                self._load_tile(self.contraction.lhs, self.m_dim, m0, m_size, k0, k_size,
                                batch_offsets, shared_a)
                self._load_tile(self.contraction.rhs, self.n_dim, n0, n_size, k0, k_size,
                                batch_offsets, shared_b)
                kernel.barrier()
                self._multiply(shared_a, shared_b, tx, ty, accumulators)
                kernel.barrier()
            self._epilogue(batch_indices, batch_offsets, m0, n0, tx, ty, accumulators)
        kernel.finish()
        domain = self.op.domain_sizes
        tile_count = ((extent_expr(domain[self.m_dim]) + (TILE - 1)) // TILE) * (
            (extent_expr(domain[self.n_dim]) + (TILE - 1)) // TILE
        )
        units_expr = tile_count * count_expr([domain[d] for d in self.batch_dims])
        return LaunchShape(blocks_expr(units_expr), DimExpr.const(BLOCK_THREADS))

    def _load_tile(
        self, operand: int, outer_dim: int, outer0: ir.Value, outer_size: ir.Value,
        k0: ir.Value, k_size: ir.Value, batch_offsets: list[ir.Value], shared: ir.Value,
    ) -> None:
        """Tile[k][outer] = operand[outer0 + outer, k0 + k] for a 64 x 16 slice."""
        kernel, addressing = self.kernel, self.addressing
        builder = kernel.builder
        tid = kernel.register("tid")
        k_fast = addressing.static[operand][self.k_dim] == 1
        dtype = addressing.inputs[operand].dtype
        for part in range(LOADS_PER_THREAD):
            element = builder.add(tid, I64(part * BLOCK_THREADS))
            if k_fast:
                k, outer = builder.and_(element, I64(TILE_K - 1)), builder.lshr(element, I64(4))
            else:
                outer, k = builder.and_(element, I64(TILE - 1)), builder.lshr(element, I64(6))
            global_outer = builder.add(outer0, outer)
            global_k = builder.add(k0, k)
            inside = builder.and_(
                builder.icmp_signed("<", global_outer, outer_size),
                builder.icmp_signed("<", global_k, k_size),
            )
            offset = self._offset_of(operand, {outer_dim: global_outer, self.k_dim: global_k},
                                     batch_offsets[operand])
            safe = builder.select(inside, offset, I64(0))
            value = load_at(builder, kernel.buffers[operand], safe, dtype)
            value = convert(builder, value, dtype, self.dtype)
            value = builder.select(inside, value, constant(self.dtype, 0))
            index = builder.add(builder.mul(k, I64(SHARED_ROW)), outer)
            builder.store(value, builder.gep(shared, [index], source_etype=self.value_type))

    def _offset_of(self, access: int, indices: dict[int, ir.Value], start: ir.Value) -> ir.Value:
        builder, addressing = self.kernel.builder, self.addressing
        offset = start
        for dim, index in indices.items():
            coefficient = addressing.static[access][dim]
            if coefficient == 0:
                continue
            term = index
            if coefficient != 1:
                term = builder.mul(index, addressing.coefficients[access][dim])
            offset = builder.add(offset, term)
        return offset

    def _multiply(
        self, shared_a: ir.Value, shared_b: ir.Value, tx: ir.Value, ty: ir.Value,
        accumulators: list[ir.Value],
    ) -> None:
        builder = self.kernel.builder
        value_type = self.value_type
        current = [builder.load(slot, typ=value_type) for slot in accumulators]
        for k in range(TILE_K):
            row = I64(k * SHARED_ROW)
            a = [self._shared_load(shared_a, builder.add(row, builder.add(ty, I64(THREADS_X * i))))
                 for i in range(REGISTERS)]
            b = [self._shared_load(shared_b, builder.add(row, builder.add(tx, I64(THREADS_X * j))))
                 for j in range(REGISTERS)]
            current = [
                self._multiply_add(a[i], b[j], current[i * REGISTERS + j])
                for i in range(REGISTERS) for j in range(REGISTERS)
            ]
        for slot, value in zip(accumulators, current):
            builder.store(value, slot)

    def _shared_load(self, shared: ir.Value, index: ir.Value) -> ir.Value:
        builder = self.kernel.builder
        pointer = builder.gep(shared, [index], source_etype=self.value_type)
        return builder.load(pointer, typ=self.value_type)

    def _multiply_add(self, a: ir.Value, b: ir.Value, acc: ir.Value) -> ir.Value:
        builder = self.kernel.builder
        if self.dtype.is_float:
            fma = intrinsic(builder.module, "llvm.fma", self.value_type, 3)
            return builder.call(fma, [a, b, acc])
        return builder.add(acc, builder.mul(a, b))

    def _epilogue(
        self, batch_indices: dict[int, ir.Value], batch_offsets: list[ir.Value],
        m0: ir.Value, n0: ir.Value, tx: ir.Value, ty: ir.Value, accumulators: list[ir.Value],
    ) -> None:
        kernel, addressing, op = self.kernel, self.addressing, self.op
        builder = kernel.builder
        sizes = addressing.loop_sizes
        block = op.compute_block
        accumulator_arg = block.args[len(op.inputs)]
        first = len(op.inputs)
        for i in range(REGISTERS):
            m = builder.add(m0, builder.add(ty, I64(THREADS_X * i)))
            m_inside = builder.icmp_signed("<", m, sizes[self.m_dim])
            for j in range(REGISTERS):
                n = builder.add(n0, builder.add(tx, I64(THREADS_X * j)))
                inside = builder.and_(m_inside, builder.icmp_signed("<", n, sizes[self.n_dim]))
                with builder.if_then(inside):
                    indices = {**batch_indices, self.m_dim: m, self.n_dim: n}
                    offsets = addressing.offsets(builder, batch_offsets,
                                                 {self.m_dim: m, self.n_dim: n})
                    self.body.indices = addressing.dim_indices(indices)
                    value = builder.load(accumulators[i * REGISTERS + j], typ=self.value_type)
                    values = {id(accumulator_arg): value}

                    def load(k: int, offsets: list[ir.Value] = offsets) -> ir.Value:
                        return load_at(builder, kernel.buffers[k], offsets[k],
                                       addressing.inputs[k].dtype)

                    outputs = self.body.run(block, block.ops, values, load)
                    for index, output in enumerate(outputs):
                        store_at(builder, output, kernel.buffers[first + index],
                                 offsets[first + index], addressing.outputs[index].dtype)
