"""Streaming stores: large elementwise results written around the caches.

A store to a line that is not in the core's cache first reads the line in (write-allocate, a
"read for ownership"), and the line is written back when it is evicted, so writing a 16 MB
result moves 32 MB between the core and the shared cache or memory. Non-temporal stores
(`movntps`) fill whole lines in write-combining buffers and send them out without the read.

An elementwise kernel (no reduction) whose body is cheap enough to run at memory speed (no
transcendental or division: `loops.is_compute_bound`) and that writes a function result -- the
caller's array, which nothing later in the call reads back (`FunctionLowering._streamable`) --
of at least STREAM_FROM_BYTES therefore *stages* its innermost loop: the loop runs in blocks of
STAGE_ELEMENTS points, each writing its values into a 64-byte aligned stack buffer, which stays
in L1 and which LLVM vectorises into as it would into the result; then `tensorc.stream_copy`
copies the block to the result with 64-byte non-temporal stores (an unaligned head and tail
with `memcpy`). The buffer is needed because LLVM's loop vectoriser keeps a loop whose stores
are non-temporal scalar unless each scalar store is aligned to the vector, which a 4-byte
element never is. The result must have unit stride along the loop.

Whether to stream is decided per call: the result at least STREAM_FROM_BYTES (the staged copy
is not emitted at all when its static size is smaller) and the loop's range (a thread's chunk,
or a row) at least STAGE_ELEMENTS. A nest whose results are that large ends with an `sfence`,
so its stores are ordered before the thread pool reports the task done. x86-64 only
(`lower_module`'s `streaming_stores`); other targets keep plain stores.

Measured here (2 cores, 300 MB L3 shared with other tenants), A/B of builds with and without
streaming, median of 31 interleaved calls (`benchmarks/run.py`'s `median_times`): `x * 2` on
4096x1024 f32 0.73 -> 0.61 ms, `relu(x * a + b)` on 4096x4096 4.46 -> 2.94 and 2.83 -> 2.37 ms;
GELU-tanh on 16M 4.49 -> 4.50, 4.69 -> 4.57, 4.62 -> 4.86, 5.68 -> 5.90 ms (and once 3.88 ->
5.22): GELU computes below memory speed, the lines it saves reading were never its limit, so
kernels with expensive ops keep ordinary stores. A C program (`x * 2`, AVX-512, 2 threads)
agreed: 0.69 ms with plain stores, 0.55 ms with non-temporal ones, 0.55 ms staged through 1 KB
blocks (4 KB blocks were slower: the copy no longer overlaps the next block's loads).

Row kernels are not staged. Layer norm's output loop comes after the row's reduction loop;
streaming its stores (directly, or held a row and streamed out in blocks during the next row's
reduction) measured 0.86-0.95x the plain build: the plain build's write-allocate reads fill the
time the output loop spends on arithmetic, and moving the writes into the reduction's stream
only lengthens it. Its epilogue instead runs one row behind its reductions, in one loop per
row whose middle is explicit vectors with aligned non-temporal stores (carried_rows.py,
vector_rows.py); staging that loop through this module's buffers was slower than not
streaming at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import llvmlite.ir as ir

from tensorc.codegen.cpu.irutil import (
    I8,
    I32,
    I64,
    PTR,
    VOID,
    counted_loop,
    declare,
    emit_memcpy,
    intrinsic,
    itemsize,
    stack_array,
)
from tensorc.codegen.cpu.sizes import SizeEmitter
from tensorc.ir.dialects.kernel import GenericOp
from tensorc.ir.dims import element_count, prod

if TYPE_CHECKING:
    from tensorc.codegen.cpu.loops import Access, Loop

STREAM_FROM_BYTES = 8 << 20
STAGE_ELEMENTS = 256
LINE_BYTES = 64
STREAM_COPY = "tensorc.stream_copy"
_LINE = ir.VectorType(I32, LINE_BYTES // 4)
_BOOL = ir.IntType(1)


@dataclass(frozen=True)
class StagingPlan:
    """What a kernel stages (module doc): `loop`, and the outputs written through buffers."""

    loop: Loop
    outputs: tuple[int, ...]


def plan_staging(
    op: GenericOp,
    loops: Sequence[Loop],
    outputs: Sequence[Access],
    candidates: Sequence[int],
    compute_bound: bool,
) -> StagingPlan | None:
    """The staging of `op`'s nest for its outputs in `candidates` (function results), or None
    when it stages nothing: a reduction, a `compute_bound` body, a short static loop, no
    output that qualifies (module doc)."""
    if not candidates or op.has_reduction or compute_bound or not loops:
        return None
    loop = loops[-1]
    width = prod(op.domain_sizes[dim] for dim in loop.dims).value
    if width is not None and width < STAGE_ELEMENTS:
        return None
    staged = tuple(
        index for index in candidates
        if outputs[index].coefficients[loop.innermost] == 1
        and not statically_small(outputs[index])
    )
    return StagingPlan(loop, staged) if staged else None


def statically_small(access: Access) -> bool:
    """Whether `access`'s tensor has a static size below STREAM_FROM_BYTES."""
    count = element_count(access.tensor.shape).value
    return count is not None and count * itemsize(access.dtype) < STREAM_FROM_BYTES


class StagedStores:
    """A staging plan in one nest function: the outputs' stack buffers, and whether this
    call's results are large enough to stream (`large`), both made in its prologue."""

    def __init__(self, plan: StagingPlan, outputs: Sequence[Access], prologue: ir.IRBuilder,
                 sizes: SizeEmitter) -> None:
        self.loop = plan.loop
        self.outputs = plan.outputs
        self.items = [itemsize(outputs[index].dtype) for index in plan.outputs]
        self.buffers: list[ir.Value] = []
        large: ir.Value = _BOOL(0)
        for index, item in zip(plan.outputs, self.items):
            self.buffers.append(stack_array(
                prologue, ir.ArrayType(I8, STAGE_ELEMENTS * item), f"stage{index}", align=64
            ))
            large = prologue.or_(large, large_enough(prologue, sizes, outputs[index]))
        self.large = large

    def active(self, builder: ir.IRBuilder, start: ir.Value, stop: ir.Value) -> ir.Value:
        """Whether to stage the loop over [start, stop): large results and a long range."""
        long_range = builder.icmp_signed(">=", builder.sub(stop, start), I64(STAGE_ELEMENTS))
        return builder.and_(self.large, long_range)

    def stream(self, builder: ir.IRBuilder, targets: Sequence[ir.Value],
               count: ir.Value) -> None:
        """The first `count` elements of each buffer to its target."""
        copy = stream_copy(builder.module)
        for target, buffer, item in zip(targets, self.buffers, self.items):
            builder.call(copy, [target, buffer, builder.mul(count, I64(item))])

    def finish(self, builder: ir.IRBuilder) -> None:
        """The `sfence` at the end of a nest whose results are large enough to stream."""
        fence_if(builder, self.large)


def large_enough(builder: ir.IRBuilder, sizes: SizeEmitter, access: Access) -> ir.Value:
    """Whether this call's `access` tensor has at least STREAM_FROM_BYTES (module doc)."""
    size = builder.mul(sizes.product(access.tensor.shape), I64(itemsize(access.dtype)))
    return builder.icmp_signed(">=", size, I64(STREAM_FROM_BYTES))


def fence_if(builder: ir.IRBuilder, streamed: ir.Value) -> None:
    """An `sfence` when `streamed`: non-temporal stores are weakly ordered, so a nest that
    made them orders them before the thread pool reports its task done."""
    with builder.if_then(streamed):
        builder.call(declare(builder.module, "llvm.x86.sse.sfence", VOID, []), [])


def stream_copy(module: ir.Module) -> ir.Function:
    """`void tensorc.stream_copy(ptr dst, ptr src, i64 nbytes)`: `memcpy` whose whole
    64-byte lines of `dst` are written with non-temporal stores (module doc)."""
    existing = module.globals.get(STREAM_COPY)
    if existing is not None:
        return existing
    function = ir.Function(module, ir.FunctionType(VOID, [PTR, PTR, I64]), STREAM_COPY)
    function.linkage = "internal"
    function.attributes.add("alwaysinline")
    target, source, nbytes = function.args
    b = ir.IRBuilder(function.append_basic_block("entry"))
    umin = intrinsic(module, "llvm.umin", I64, 2)
    misaligned = b.and_(b.sub(I64(0), b.ptrtoint(target, I64)), I64(LINE_BYTES - 1))
    head = b.call(umin, [misaligned, nbytes])
    with b.if_then(b.icmp_unsigned("!=", head, I64(0))):
        emit_memcpy(b, target, source, head)
    rest = b.sub(nbytes, head)
    lines = b.and_(rest, I64(-LINE_BYTES))
    nontemporal = module.add_metadata([I32(1)])
    with counted_loop(b, I64(0), lines, "lines", step=LINE_BYTES) as offset:
        at = b.add(head, offset)
        line = b.load(b.gep(source, [at], inbounds=True, source_etype=I8), typ=_LINE, align=1)
        store = b.store(line, b.gep(target, [at], inbounds=True, source_etype=I8),
                        align=LINE_BYTES)
        store.set_metadata("nontemporal", nontemporal)
    copied = b.add(head, lines)
    tail = b.sub(rest, lines)
    with b.if_then(b.icmp_unsigned("!=", tail, I64(0))):
        emit_memcpy(b, b.gep(target, [copied], inbounds=True, source_etype=I8),
                    b.gep(source, [copied], inbounds=True, source_etype=I8), tail)
    b.ret_void()
    return function
