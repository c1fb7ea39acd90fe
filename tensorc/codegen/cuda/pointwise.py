"""`kernel.generic` without reduction dims -> an elementwise kernel over the flat domain.

    for (u = ctaid*ntid + tid; u < P / V; u += nctaid*ntid)    # grid-stride, V lanes a thread
        point u*V .. u*V+V-1 of the merged loops (`plan_loops`)

Consecutive threads take consecutive points of the innermost loop, so every access whose
innermost coefficient is 1 is coalesced. Those unit-stride accesses are also vectorised: a
thread handles V adjacent points (V = 16 bytes / the widest element, at most 4) with one
`<V x T>` load or store each (`ld.global.v4.f32`); broadcast inputs (coefficient 0) are
loaded once and other strides element by element. The vector loop runs when the innermost
size is a multiple of V and every unit-stride access is V-aligned (its pointer, its base
offset and its outer coefficients), checked once at kernel entry; otherwise the same kernel
runs its scalar loop. The grid is sized for V lanes a thread and capped at `MAX_BLOCKS`.
"""

from __future__ import annotations

from collections.abc import Sequence

import llvmlite.ir as ir

from tensorc.codegen.cpu.irutil import declare, element_pointer, itemsize, memory_type
from tensorc.codegen.cuda.kernel import (
    BLOCK_THREADS,
    Addressing,
    BodyEmitter,
    KernelSkeleton,
    LaunchShape,
    blocks_expr,
    load_at,
    store_at,
    strided_loop,
)
from tensorc.codegen.cuda.target import I1, I8, I64, PTR, GpuTarget
from tensorc.ir.dialects.kernel import GenericOp
from tensorc.ir.dims import DimExpr
from tensorc.ir.dtypes import DType

VECTOR_BYTES = 16
MAX_LANES = 4


class PointwiseKernel:
    """Emits one elementwise `kernel.generic` (see the module documentation)."""

    def __init__(
        self, module: ir.Module, target: GpuTarget, name: str, op: GenericOp,
        symbols: Sequence[str],
    ) -> None:
        self.op = op
        self.kernel = KernelSkeleton(
            module, target, name, len(op.inputs) + len(op.results), symbols
        )
        self.addressing = Addressing(self.kernel, op)
        self.positions = list(range(len(self.addressing.loops)))
        self.used = [bool(arg.uses) for arg in op.compute_block.args[: len(op.inputs)]]
        self.used += [True] * len(op.results)
        self.vector_accesses = self._vector_accesses()
        self.lanes = self._lanes()

    # ----- planning -------------------------------------------------------------------------
    def _vector_accesses(self) -> list[int]:
        """Accesses with a static unit coefficient along the innermost loop."""
        if not self.positions:
            return []
        inner = self.positions[-1]
        return [
            index for index, static in enumerate(self.addressing.static)
            if self.used[index] and static[inner] == 1
        ]

    def _lanes(self) -> int:
        if not self.vector_accesses:
            return 1
        widest = max(itemsize(self.addressing.accesses[i].dtype) for i in self.vector_accesses)
        lanes = min(MAX_LANES, VECTOR_BYTES // widest)
        return lanes if lanes >= 2 else 1

    # ----- the kernel -----------------------------------------------------------------------
    def emit(self) -> LaunchShape:
        kernel, addressing = self.kernel, self.addressing
        builder = kernel.builder
        count = addressing.count(kernel.sizes, self.positions)
        if self.lanes == 1:
            self._scalar_loop(count)
        else:
            with builder.if_else(self._vector_condition()) as (vector, scalar):
                with vector:
                    self._vector_loop(count)
                with scalar:
                    self._scalar_loop(count)
        kernel.finish()
        points = addressing.count_expr(self.positions)
        return LaunchShape(blocks_expr(points, BLOCK_THREADS * self.lanes),
                           DimExpr.const(BLOCK_THREADS))

    def _vector_condition(self) -> ir.Value:
        """Whether the vector loop may run (computed in the entry block)."""
        kernel, addressing, lanes = self.kernel, self.addressing, self.lanes
        p = kernel.prologue
        inner = self.positions[-1]
        conditions = [self._multiple(addressing.loop_sizes[inner], lanes)]
        for index in self.vector_accesses:
            access = addressing.accesses[index]
            conditions.append(self._multiple(addressing.bases[index], lanes))
            for position in self.positions[:-1]:
                if addressing.static[index][position] == 0:
                    continue
                conditions.append(self._multiple(addressing.coefficients[index][position], lanes))
            conditions.append(self._aligned(kernel.buffers[index],
                                            lanes * itemsize(access.dtype)))
        result = conditions[0]
        for condition in conditions[1:]:
            result = p.and_(result, condition)
        return result

    def _aligned(self, pointer: ir.Value, alignment: int) -> ir.Value:
        """`pointer % alignment == 0`, with `llvm.ptrmask` rather than `ptrtoint`: the
        pointer does not escape, so LLVM still sees read-only inputs (`ld.global.nc`)."""
        p = self.kernel.prologue
        ptrmask = declare(p.module, "llvm.ptrmask.p0.i64", PTR, [PTR, I64])
        masked = p.call(ptrmask, [pointer, I64(-alignment)])
        return p.icmp_unsigned("==", masked, pointer)

    def _multiple(self, value: ir.Value, divisor: int) -> ir.Value:
        p = self.kernel.prologue
        if isinstance(value, ir.Constant):
            return ir.Constant(I1, int(value.constant % divisor == 0))
        return p.icmp_unsigned("==", p.and_(value, I64(divisor - 1)), I64(0))

    def _scalar_loop(self, count: ir.Value) -> None:
        kernel, addressing, op = self.kernel, self.addressing, self.op
        builder = kernel.builder
        body = BodyEmitter(kernel, op)
        with strided_loop(builder, kernel.global_thread(), count, kernel.thread_count(),
                          "i") as flat:
            indices = addressing.split(builder, flat, self.positions)
            offsets = addressing.offsets(builder, addressing.bases, indices)
            body.indices = addressing.dim_indices(indices)

            def load(k: int) -> ir.Value:
                return load_at(builder, kernel.buffers[k], offsets[k],
                               addressing.inputs[k].dtype)

            outputs = body.run(op.compute_block, op.compute_block.ops, {}, load)
            first = len(op.inputs)
            for m, value in enumerate(outputs):
                store_at(builder, value, kernel.buffers[first + m], offsets[first + m],
                         addressing.outputs[m].dtype)

    def _vector_loop(self, count: ir.Value) -> None:
        kernel, addressing, op, lanes = self.kernel, self.addressing, self.op, self.lanes
        builder = kernel.builder
        inner = self.positions[-1]
        body = BodyEmitter(kernel, op)
        units = builder.udiv(count, I64(lanes))
        with strided_loop(builder, kernel.global_thread(), units, kernel.thread_count(),
                          "v") as unit:
            flat = builder.mul(unit, I64(lanes))
            indices = addressing.split(builder, flat, self.positions)
            offsets = addressing.offsets(builder, addressing.bases, indices)
            vectors: dict[int, ir.Value] = {}
            broadcasts: dict[int, ir.Value] = {}
            per_lane: list[list[ir.Value]] = []
            for lane in range(lanes):
                lane_indices = dict(indices)
                lane_indices[inner] = builder.add(indices[inner], I64(lane))
                body.indices = addressing.dim_indices(lane_indices)

                def load(k: int, lane: int = lane) -> ir.Value:
                    return self._load_lane(k, lane, offsets, vectors, broadcasts)

                per_lane.append(body.run(op.compute_block, op.compute_block.ops, {}, load))
            first = len(op.inputs)
            for m in range(len(op.results)):
                values = [outputs[m] for outputs in per_lane]
                self._store_lanes(first + m, values, offsets[first + m])

    def _load_lane(
        self, k: int, lane: int, offsets: list[ir.Value], vectors: dict[int, ir.Value],
        broadcasts: dict[int, ir.Value],
    ) -> ir.Value:
        kernel, addressing = self.kernel, self.addressing
        builder = kernel.builder
        dtype = addressing.inputs[k].dtype
        inner = self.positions[-1]
        if k in self.vector_accesses:
            if k not in vectors:
                vectors[k] = self._vector_load(kernel.buffers[k], offsets[k], dtype)
            element = builder.extract_element(vectors[k], ir.IntType(32)(lane))
            return builder.icmp_unsigned("!=", element, I8(0)) if dtype.is_bool else element
        if addressing.static[k][inner] == 0:
            if k not in broadcasts:
                broadcasts[k] = load_at(builder, kernel.buffers[k], offsets[k], dtype)
            return broadcasts[k]
        step = builder.mul(addressing.coefficients[k][inner], I64(lane))
        return load_at(builder, kernel.buffers[k], builder.add(offsets[k], step), dtype)

    def _vector_load(self, pointer: ir.Value, offset: ir.Value, dtype: DType) -> ir.Value:
        builder = self.kernel.builder
        vector_type = ir.VectorType(memory_type(dtype), self.lanes)
        address = element_pointer(builder, pointer, offset, dtype)
        return builder.load(address, typ=vector_type, align=self.lanes * itemsize(dtype))

    def _store_lanes(self, index: int, values: list[ir.Value], offset: ir.Value) -> None:
        kernel, addressing = self.kernel, self.addressing
        builder = kernel.builder
        dtype = addressing.accesses[index].dtype
        pointer = kernel.buffers[index]
        if index not in self.vector_accesses:
            inner = self.positions[-1]
            for lane, value in enumerate(values):
                step = builder.mul(addressing.coefficients[index][inner], I64(lane))
                store_at(builder, value, pointer, builder.add(offset, step), dtype)
            return
        vector_type = ir.VectorType(memory_type(dtype), self.lanes)
        vector: ir.Value = ir.Constant(vector_type, ir.Undefined)
        for lane, value in enumerate(values):
            stored = builder.zext(value, I8) if dtype.is_bool else value
            vector = builder.insert_element(vector, stored, ir.IntType(32)(lane))
        address = element_pointer(builder, pointer, offset, dtype)
        builder.store(vector, address, align=self.lanes * itemsize(dtype))
