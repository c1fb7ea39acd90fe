"""The skeleton every CUDA kernel shares: parameters, sizes, thread indices, loops, addressing.

A kernel is `void K(ptr buffer0, ..., i64 symbol0, ..., [ptr error])`:
- one generic pointer per buffer it reads or writes (`noalias`: LLVM infers which are only
  read, and NVPTX loads those through the read-only cache, `ld.global.nc`);
- the function's symbolic sizes, by value, in the order of the function's `symbols`
  (`ParamSizes` evaluates every size expression from them, once, in the entry block);
- for the ops that check indices, a pointer to the call's error word (an `atomicrmw umin`
  there records the first bad position, see `tc_kernels`).

Work is distributed with grid-stride loops (`strided_loop`) over a flat unit index, so any
grid size is correct and the launch plan can cap it (`MAX_BLOCKS`); the loops are bounds
guards too. Body ops are emitted by the CPU backend's `ScalarLowering` (the same semantics
as the interpreter; LLVM intrinsics that NVPTX lowers, and `llvm_math`'s branch-free
approximations for the transcendental functions: no libdevice, no libm).

Addressing is the CPU backend's `loops.Access`: an affine map over a contiguous row-major
buffer is `base + sum(coefficient * loop index)`; `Addressing` splits flat unit indices into
loop indices (`udiv`/`urem`, which NVPTX runs in 32 bits when the values fit).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

import llvmlite.ir as ir

from tensorc.codegen.cpu.irutil import (
    combine,
    counted_loop,
    element_pointer,
    load_element,
    register_type,
    store_element,
)
from tensorc.codegen.cpu.loops import Access, Loop, plan_loops
from tensorc.codegen.cpu.scalar import ScalarLowering, constant
from tensorc.codegen.cpu.sizes import SizeEmitter
from tensorc.codegen.cuda.fmod import GpuIRBuilder
from tensorc.codegen.cuda.target import I16, I32, I64, PTR, VOID, GpuTarget
from tensorc.ir.core import Block, Operation, Value
from tensorc.ir.dialects.kernel import GenericOp, YieldOp, combiner_identity
from tensorc.ir.dims import DimExpr, dim_max, dim_min, prod
from tensorc.ir.dtypes import DType

BLOCK_THREADS = 256
MAX_BLOCKS = 8192


@dataclass(frozen=True)
class LaunchShape:
    """Grid and block sizes (x only) as expressions of the function's symbols."""

    grid: DimExpr
    block: DimExpr


class ParamSizes(SizeEmitter):
    """`SizeEmitter` whose symbols are kernel parameters instead of loads from `dims`."""

    def __init__(self, builder: ir.IRBuilder, symbols: dict[str, ir.Value]) -> None:
        super().__init__(builder, None, list(symbols))
        self._parameters = symbols

    def _symbol(self, name: str) -> ir.Value:
        if name not in self._parameters:
            raise KeyError(f"size symbol '{name}' is not a parameter of the kernel")
        return self._parameters[name]


class KernelSkeleton:
    """One kernel function being built (see the module documentation)."""

    def __init__(
        self,
        module: ir.Module,
        target: GpuTarget,
        name: str,
        buffer_count: int,
        symbols: Sequence[str],
        error: bool = False,
        max_threads: int = BLOCK_THREADS,
    ) -> None:
        self.module = module
        self.target = target
        self.name = name
        self.max_threads = max_threads
        params = [PTR] * buffer_count + [I64] * len(symbols) + ([PTR] if error else [])
        self.function = ir.Function(module, ir.FunctionType(VOID, params), name)
        arguments = list(self.function.args)
        self.buffers = arguments[:buffer_count]
        for index, argument in enumerate(self.buffers):
            argument.name = f"buffer{index}"
            argument.add_attribute("noalias")
            argument.add_attribute("captures(none)")
        symbol_values = arguments[buffer_count : buffer_count + len(symbols)]
        for argument, symbol in zip(symbol_values, symbols):
            argument.name = symbol
        self.error = arguments[-1] if error else None
        entry = self.function.append_basic_block("entry")
        self.start = self.function.append_basic_block("start")
        self.prologue = ir.IRBuilder(entry)
        self.sizes = ParamSizes(self.prologue, dict(zip(symbols, symbol_values)))
        self.builder: ir.IRBuilder = GpuIRBuilder(self.start)
        self._registers: dict[str, ir.Value] = {}

    def register(self, name: str) -> ir.Value:
        """A special register (`tid`, `ctaid`, `ntid`, `nctaid`) as an i64, read once."""
        if name not in self._registers:
            value = self.target.special(self.prologue, name)
            self._registers[name] = self.prologue.zext(value, I64, name=f"{name}64")
        return self._registers[name]

    def global_thread(self) -> ir.Value:
        """`ctaid * ntid + tid` (computed in the entry block)."""
        if "global" not in self._registers:
            p = self.prologue
            first = p.mul(self.register("ctaid"), self.register("ntid"))
            self._registers["global"] = p.add(first, self.register("tid"), name="gid")
        return self._registers["global"]

    def thread_count(self) -> ir.Value:
        """`nctaid * ntid`: the grid-stride step of thread-level loops."""
        if "threads" not in self._registers:
            value = self.prologue.mul(self.register("nctaid"), self.register("ntid"))
            self._registers["threads"] = value
        return self._registers["threads"]

    def shared_array(self, suffix: str, element: ir.Type, count: int) -> ir.Value:
        """A shared-memory array private to this kernel, as a generic pointer."""
        array = self.target.shared_array(self.module, f"{self.name}.{suffix}", element, count)
        return self.target.shared_pointer(self.prologue, array)

    def barrier(self) -> None:
        self.target.barrier(self.builder)

    def finish(self) -> ir.Function:
        self.builder.ret_void()
        self.prologue.branch(self.start)
        self.target.finish_kernel(self.function, self.max_threads)
        return self.function


# ----- control flow -------------------------------------------------------------------------


def strided_loop(
    builder: ir.IRBuilder, start: ir.Value, stop: ir.Value, step: ir.Value, name: str
) -> AbstractContextManager[ir.Value]:
    """`for (i = start; i < stop; i += step)` over i64, the grid-stride form of
    `counted_loop`; afterwards the builder is positioned after the loop."""
    return counted_loop(builder, start, stop, name, step=step)


# ----- launch-size expressions (for the plan) -----------------------------------------------


def extent_expr(size: DimExpr | int) -> DimExpr:
    """A size as a dimension: clamped at zero (`max(e, 0)` unless provably non-negative)."""
    return dim_max(DimExpr.of(size), 0)


def count_expr(sizes: Sequence[DimExpr | int]) -> DimExpr:
    """The number of points of a domain of `sizes`."""
    return prod(extent_expr(s) for s in sizes)


def blocks_expr(units: DimExpr, per_block: int = 1) -> DimExpr:
    """`min(ceil(units / per_block), MAX_BLOCKS)`: a grid for a grid-stride loop."""
    if per_block != 1:
        units = (units + (per_block - 1)) // per_block
    return dim_min(units, MAX_BLOCKS)


# ----- registers as 32-bit words (shuffles, shared memory) -----------------------------------


def word_count(dtype: DType) -> int:
    return 2 if dtype.numpy.itemsize == 8 else 1


def to_words(builder: ir.IRBuilder, value: ir.Value, dtype: DType) -> list[ir.Value]:
    """A register value as one or two i32 words (the low word first)."""
    if dtype.is_bool:
        return [builder.zext(value, I32)]
    size = dtype.numpy.itemsize
    if size == 2:
        return [builder.zext(builder.bitcast(value, I16), I32)]
    if size == 4:
        return [value if dtype.is_int else builder.bitcast(value, I32)]
    bits = value if dtype.is_int else builder.bitcast(value, I64)
    return [builder.trunc(bits, I32), builder.trunc(builder.lshr(bits, I64(32)), I32)]


def from_words(builder: ir.IRBuilder, words: Sequence[ir.Value], dtype: DType) -> ir.Value:
    """The inverse of `to_words`."""
    value_type = register_type(dtype)
    if dtype.is_bool:
        return builder.trunc(words[0], value_type)
    size = dtype.numpy.itemsize
    if size == 2:
        return builder.bitcast(builder.trunc(words[0], I16), value_type)
    if size == 4:
        return words[0] if dtype.is_int else builder.bitcast(words[0], value_type)
    low = builder.zext(words[0], I64)
    high = builder.shl(builder.zext(words[1], I64), I64(32))
    bits = builder.or_(low, high)
    return bits if dtype.is_int else builder.bitcast(bits, value_type)


# ----- accumulators ---------------------------------------------------------------------------


class Accumulators:
    """The accumulators of a reduction kernel, one stack slot each (promoted to registers)."""

    def __init__(self, kernel: KernelSkeleton, op: GenericOp) -> None:
        self.kernel = kernel
        self.kinds = list(op.reductions)
        self.dtypes = [t.dtype for t in op.accumulator_types]
        self.slots = [
            kernel.prologue.alloca(register_type(dtype), name=f"acc{j}")
            for j, dtype in enumerate(self.dtypes)
        ]

    def identities(self) -> list[ir.Constant]:
        return [
            constant(dtype, combiner_identity(kind, dtype))
            for kind, dtype in zip(self.kinds, self.dtypes)
        ]

    def reset(self) -> None:
        for slot, identity in zip(self.slots, self.identities()):
            self.kernel.builder.store(identity, slot)

    def load(self) -> list[ir.Value]:
        builder = self.kernel.builder
        return [
            builder.load(slot, typ=register_type(dtype))
            for slot, dtype in zip(self.slots, self.dtypes)
        ]

    def store(self, values: Sequence[ir.Value]) -> None:
        for slot, value in zip(self.slots, values):
            self.kernel.builder.store(value, slot)

    def combine(self, current: Sequence[ir.Value], values: Sequence[ir.Value]) -> list[ir.Value]:
        builder = self.kernel.builder
        return [
            combine(builder, kind, dtype, a, b)
            for kind, dtype, a, b in zip(self.kinds, self.dtypes, current, values)
        ]

    def accumulate(self, values: Sequence[ir.Value]) -> None:
        self.store(self.combine(self.load(), values))

    def warp_allreduce(self, values: Sequence[ir.Value]) -> list[ir.Value]:
        """Every lane gets the combination of the warp's values (a butterfly: all lanes end
        with bitwise equal results, the combiners being commutative)."""
        builder, target = self.kernel.builder, self.kernel.target
        result = list(values)
        for lane_mask in (16, 8, 4, 2, 1):
            others = []
            for value, dtype in zip(result, self.dtypes):
                words = [target.shuffle_xor(builder, w, lane_mask)
                         for w in to_words(builder, value, dtype)]
                others.append(from_words(builder, words, dtype))
            result = self.combine(result, others)
        return result


# ----- addressing and bodies ------------------------------------------------------------------


class Addressing:
    """Offsets of a kernel's operands and results over its (merged) loops."""

    def __init__(self, kernel: KernelSkeleton, op: GenericOp, loops: list[Loop] | None = None):
        self.op = op
        self.inputs = [Access.of(v.type, m) for v, m in zip(op.inputs, op.input_maps)]
        self.outputs = [Access.of(r.type, m) for r, m in zip(op.results, op.output_maps)]
        self.accesses = self.inputs + self.outputs
        self.loops = loops if loops is not None else plan_loops(op, self.accesses)
        sizes = kernel.sizes
        domain = op.domain_sizes
        self.loop_sizes = [sizes.product(domain[d] for d in loop.dims) for loop in self.loops]
        self.loop_extents = [prod(extent_expr(domain[d]) for d in loop.dims)
                             for loop in self.loops]
        self.coefficients = [
            [access.coefficient(sizes, loop.innermost) for loop in self.loops]
            for access in self.accesses
        ]
        self.static = [
            [access.coefficients[loop.innermost] for loop in self.loops]
            for access in self.accesses
        ]
        self.bases = [access.base(sizes) for access in self.accesses]

    def positions(self, kind: str) -> list[int]:
        return [i for i, loop in enumerate(self.loops) if loop.kind == kind]

    def count(self, sizes: ParamSizes, positions: Sequence[int]) -> ir.Value:
        total: ir.Value = I64(1)
        for position in positions:
            size = self.loop_sizes[position]
            if isinstance(total, ir.Constant) and total.constant == 1:
                total = size
            else:
                total = sizes.builder.mul(total, size)
        return total

    def count_expr(self, positions: Sequence[int]) -> DimExpr:
        return prod(self.loop_extents[p] for p in positions)

    def split(
        self, builder: ir.IRBuilder, flat: ir.Value, positions: Sequence[int]
    ) -> dict[int, ir.Value]:
        """Loop indices of a flat index over the loops at `positions` (row-major)."""
        indices: dict[int, ir.Value] = {}
        rest = flat
        for position in reversed(positions[1:]):
            size = self.loop_sizes[position]
            if isinstance(size, ir.Constant) and size.constant == 1:
                indices[position] = I64(0)
                continue
            indices[position] = builder.urem(rest, size)
            rest = builder.udiv(rest, size)
        if positions:
            indices[positions[0]] = rest
        return indices

    def offsets(
        self, builder: ir.IRBuilder, start: Sequence[ir.Value], indices: dict[int, ir.Value]
    ) -> list[ir.Value]:
        """`start` (per access) advanced by `indices` (loop position -> index)."""
        result = []
        for access_index, offset in enumerate(start):
            for position, index in indices.items():
                coefficient = self.static[access_index][position]
                if coefficient == 0:
                    continue
                term = index
                if coefficient != 1:
                    term = builder.mul(index, self.coefficients[access_index][position])
                offset = builder.add(offset, term)
            result.append(offset)
        return result

    def dim_indices(self, indices: dict[int, ir.Value]) -> dict[int, ir.Value]:
        """Domain dim -> index, for `kernel.index` (indexed dims are never merged)."""
        return {self.loops[p].dims[-1]: index for p, index in indices.items()}


class BodyEmitter:
    """Emits body ops of one `kernel.generic` with the CPU backend's scalar semantics."""

    def __init__(self, kernel: KernelSkeleton, op: GenericOp) -> None:
        self.kernel = kernel
        self.op = op
        self.indices: dict[int, ir.Value] = {}
        self.scalars = ScalarLowering(kernel.builder, kernel.sizes, self._index)

    def _index(self, dim: int) -> ir.Value:
        if dim not in self.indices:
            raise KeyError(f"kernel.index of dim {dim}, which this loop nest does not index")
        return self.indices[dim]

    def run(
        self,
        block: Block,
        ops: Sequence[Operation],
        values: dict[int, ir.Value],
        load_input: Callable[[int], ir.Value],
    ) -> list[ir.Value]:
        """Emit `ops`; block arguments not in `values` are inputs, read by `load_input`.
        Returns the yielded values when the yield is among `ops`."""
        yielded: list[ir.Value] = []
        for body_op in ops:
            operands = [self._operand(block, v, values, load_input) for v in body_op.operands]
            if isinstance(body_op, YieldOp):
                yielded = operands
                continue
            values[id(body_op.result)] = self.scalars.emit(body_op, operands)
        return yielded

    @staticmethod
    def _operand(
        block: Block, value: Value, values: dict[int, ir.Value],
        load_input: Callable[[int], ir.Value],
    ) -> ir.Value:
        if id(value) not in values:
            values[id(value)] = load_input(block.args.index(value))
        return values[id(value)]


def load_at(
    builder: ir.IRBuilder, pointer: ir.Value, offset: ir.Value, dtype: DType
) -> ir.Value:
    return load_element(builder, element_pointer(builder, pointer, offset, dtype), dtype)


def store_at(
    builder: ir.IRBuilder, value: ir.Value, pointer: ir.Value, offset: ir.Value, dtype: DType
) -> None:
    store_element(builder, value, element_pointer(builder, pointer, offset, dtype), dtype)
