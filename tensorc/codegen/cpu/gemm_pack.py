"""Packing of GEMM operands into the micro-kernel's panel layouts.

- An A panel is MR rows of A over all of K, stored `[k][MR]` (row `r` of step `k` at
  `k * MR + r`); a B panel is NR columns of B over all of K, stored `[k][NR]`. Elements past
  the end of the operand (the last panel when M or N is not a multiple) are zero. Panels of
  one operand and batch follow each other `panel_size` elements apart (a little more than
  `width * K`, see `gemm._emit_scratch_layout`).
- `emit_pack_rows` packs K steps of all panels at once when the panel dimension is contiguous
  (row-major B, transposed A): each source row is read once, front to back.
- `emit_pack_panel` packs one panel from any strides; with unit stride along K (transposed
  B) it transposes `lanes x lanes` squares in registers.
- `emit_pack_range` is the body of the pack task: which operand, batch and panel or rows a
  task number stands for.

Sources are strided (element strides; a transposed operand just swaps them) and only
in-bounds elements are read: a missing row or column re-reads the last valid one and stores
zero instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import llvmlite.ir as ir

from tensorc.codegen.cpu.gemm_microkernel import (
    DTYPE_BYTES,
    I64,
    PTR,
    VOID,
    GemmTiles,
    element_ptr,
    i64,
    internal_function,
    masked_store,
    min_i64,
    scalar_type,
)
from tensorc.codegen.cpu.irutil import counted_loop

# K steps per pack task when a whole row of panels is copied at once.
PACK_ROWS = 32
PANEL_ARGS = ("dst", "src", "across", "along_k", "count", "k")
ROWS_ARGS = ("dst", "src", "ld", "extent", "k_begin", "k_end", "panel_size")


def pack_panel_type() -> ir.FunctionType:
    """`void pack_panel(ptr dst, ptr src, i64 across, i64 along_k, i64 count, i64 k)`."""
    return ir.FunctionType(VOID, [PTR, PTR, I64, I64, I64, I64])


def pack_rows_type() -> ir.FunctionType:
    """`void pack_rows(ptr dst, ptr src, i64 ld, i64 extent, i64 k_begin, i64 k_end,
    i64 panel_size)`."""
    return ir.FunctionType(VOID, [PTR, PTR, I64, I64, I64, I64, I64])


def _new_function(
    module: ir.Module, name: str, fnty: ir.FunctionType, arg_names: tuple[str, ...]
) -> tuple[ir.Function, ir.IRBuilder]:
    function = internal_function(module, name, fnty)
    for arg, arg_name in zip(function.args, arg_names):
        arg.name = arg_name
    function.args[0].add_attribute("noalias")
    function.args[1].add_attribute("noalias")
    return function, ir.IRBuilder(function.append_basic_block("entry"))


# -- one panel at a time ---------------------------------------------------------------------


def emit_pack_panel(module: ir.Module, name: str, tiles: GemmTiles, width: int) -> ir.Function:
    """`name` (`pack_panel_type`): one panel of `width` (MR or NR) over all `k` steps, from
    any strides: element (step, x) is `src[x * across + step * along_k]`, x < count (1 ..
    width), stored at `dst[step * width + x]`, zeros for count <= x < width.

    With `along_k == 1` (row-major A, transposed B) a full panel goes by in-register
    transposes of `lanes x lanes` squares."""
    function, builder = _new_function(module, name, pack_panel_type(), PANEL_ARGS)
    dst, src, across, along_k, count, k = function.args
    by_squares = builder.append_basic_block("unit_k")
    general = builder.append_basic_block("general")
    builder.cbranch(builder.icmp_signed("==", along_k, i64(1)), by_squares, general)
    builder.position_at_end(by_squares)
    _emit_panel_unit_k(builder, tiles, width, dst, src, across, count, k)
    builder.ret_void()
    builder.position_at_end(general)
    _emit_panel_general(builder, tiles, width, dst, src, across, along_k, count, k)
    builder.ret_void()
    return function


def _emit_panel_general(
    builder: ir.IRBuilder,
    tiles: GemmTiles,
    width: int,
    dst: ir.Value,
    src: ir.Value,
    across: ir.Value,
    along_k: ir.Value,
    count: ir.Value,
    k: ir.Value,
) -> None:
    """Scalar copies; a missing element re-reads the last valid one and stores zero."""
    etype = scalar_type(tiles.dtype)
    last = builder.sub(count, i64(1))
    starts, valid = [], []
    for x in range(width):
        clamped = min_i64(builder, i64(x), last)
        starts.append(element_ptr(builder, src, builder.mul(clamped, across), etype))
        valid.append(builder.icmp_signed("<", i64(x), count))
    zero = ir.Constant(etype, 0.0)
    with counted_loop(builder, i64(0), k, "k") as step:
        offset = builder.mul(step, along_k)
        out = builder.mul(step, i64(width))
        for x, (start, ok) in enumerate(zip(starts, valid)):
            value = builder.load(element_ptr(builder, start, offset, etype), typ=etype)
            value = builder.select(ok, value, zero)
            builder.store(value, element_ptr(builder, dst, builder.add(out, i64(x)), etype))


def _emit_panel_unit_k(
    builder: ir.IRBuilder,
    tiles: GemmTiles,
    width: int,
    dst: ir.Value,
    src: ir.Value,
    across: ir.Value,
    count: ir.Value,
    k: ir.Value,
) -> None:
    """Unit stride along K. A full panel goes by squares of `lanes` element streams x `lanes`
    K steps: one vector load per stream, an in-register transpose, one vector store per K
    step (masked to the streams that exist when `width` is not a multiple of `lanes`; the
    missing streams re-read the last one). The K steps left over (all of them for a partial
    panel) go one element stream at a time."""
    etype = scalar_type(tiles.dtype)
    lanes = tiles.lanes
    full = builder.icmp_signed("==", count, i64(width))
    vector_steps = builder.select(full, builder.and_(k, i64(-lanes)), i64(0))
    with counted_loop(builder, i64(0), vector_steps, "k.square", step=lanes) as step:
        for first in range(0, width, lanes):
            _emit_square(builder, tiles, width, first, dst, src, across, step)
    last = builder.sub(count, i64(1))
    zero = ir.Constant(etype, 0.0)
    with counted_loop(builder, i64(0), i64(width), "x") as x:
        stream = element_ptr(builder, src, builder.mul(min_i64(builder, x, last), across), etype)
        ok = builder.icmp_signed("<", x, count)
        with counted_loop(builder, vector_steps, k, "k.stream") as step:
            value = builder.load(element_ptr(builder, stream, step, etype), typ=etype)
            out = builder.add(builder.mul(step, i64(width)), x)
            builder.store(builder.select(ok, value, zero), element_ptr(builder, dst, out, etype))


def _emit_square(
    builder: ir.IRBuilder,
    tiles: GemmTiles,
    width: int,
    first: int,
    dst: ir.Value,
    src: ir.Value,
    across: ir.Value,
    step: ir.Value,
) -> None:
    """Streams [first, first + lanes) of a full panel at K steps [step, step + lanes)."""
    etype = scalar_type(tiles.dtype)
    lanes = tiles.lanes
    vtype = ir.VectorType(etype, lanes)
    element_align = DTYPE_BYTES[tiles.dtype]
    present = min(lanes, width - first)
    streams = []
    for x in range(first, first + lanes):
        start = builder.add(builder.mul(i64(min(x, width - 1)), across), step)
        streams.append(builder.load(element_ptr(builder, src, start, etype), typ=vtype,
                                    align=element_align))
    aligned = width % lanes == 0
    for offset, row in enumerate(transpose_square(builder, streams)):
        out = builder.add(builder.mul(builder.add(step, i64(offset)), i64(width)), i64(first))
        target = element_ptr(builder, dst, out, etype)
        if present == lanes:
            builder.store(row, target, align=element_align * (lanes if aligned else 1))
            continue
        mask = ir.Constant(ir.VectorType(ir.IntType(1), lanes),
                           [lane < present for lane in range(lanes)])
        builder.call(masked_store(builder.module, vtype),
                     [row, target, ir.Constant(ir.IntType(32), element_align), mask])


def transpose_square(builder: ir.IRBuilder, rows: list[ir.Value]) -> list[ir.Value]:
    """The transpose of a square of n vectors of n lanes (n a power of two): log2(n) stages
    of two-input shuffles; stage `bit` swaps that bit of the row and the column index."""
    count = len(rows)
    bit = 1
    while bit < count:
        low_mask = [c if not c & bit else count + (c ^ bit) for c in range(count)]
        high_mask = [c | bit if not c & bit else count + c for c in range(count)]
        low_shuffle = ir.Constant(ir.VectorType(ir.IntType(32), count), low_mask)
        high_shuffle = ir.Constant(ir.VectorType(ir.IntType(32), count), high_mask)
        stage = list(rows)
        for r in range(count):
            if r & bit:
                continue
            first, second = rows[r], rows[r | bit]
            stage[r] = builder.shuffle_vector(first, second, low_shuffle)
            stage[r | bit] = builder.shuffle_vector(first, second, high_shuffle)
        rows = stage
        bit *= 2
    return rows


# -- whole rows of panels at a time ----------------------------------------------------------


def emit_pack_rows(module: ir.Module, name: str, tiles: GemmTiles, width: int) -> ir.Function:
    """`name`: K steps [k_begin, k_end) of every panel of one operand whose panel dimension is
    contiguous (row-major B, or a transposed A): element (step, x) is `src[step * ld + x]`,
    x < extent, and panel p (`width` elements per step) starts at `dst + p * panel_size`.
    Reads each source row once, front to back (the hardware prefetches it), writing one
    stream per panel; the last partial panel is padded with zeros."""
    function, builder = _new_function(module, name, pack_rows_type(), ROWS_ARGS)
    dst, src, ld, extent, k_begin, k_end, panel_size = function.args
    etype = scalar_type(tiles.dtype)
    full_panels = builder.sdiv(extent, i64(width))
    edge = builder.icmp_signed("!=", builder.srem(extent, i64(width)), i64(0))
    with counted_loop(builder, k_begin, k_end, "k") as step:
        row = element_ptr(builder, src, builder.mul(step, ld), etype)
        step_offset = builder.mul(step, i64(width))
        with counted_loop(builder, i64(0), full_panels, "panel") as panel:
            source = element_ptr(builder, row, builder.mul(panel, i64(width)), etype)
            offset = builder.add(builder.mul(panel, panel_size), step_offset)
            _copy_width(builder, tiles, width, element_ptr(builder, dst, offset, etype), source)
        with builder.if_then(edge):
            first = builder.mul(full_panels, i64(width))
            offset = builder.add(builder.mul(full_panels, panel_size), step_offset)
            _copy_partial(builder, tiles, width, element_ptr(builder, dst, offset, etype), row,
                          first, extent)
    builder.ret_void()
    return function


def _copy_width(
    builder: ir.IRBuilder, tiles: GemmTiles, width: int, target: ir.Value, source: ir.Value
) -> None:
    """`width` contiguous elements: whole vectors when `width` is a multiple of the vector
    length (the target is then vector aligned), else scalars (the SLP vectoriser merges them)."""
    etype = scalar_type(tiles.dtype)
    element_align = DTYPE_BYTES[tiles.dtype]
    if width % tiles.lanes == 0:
        vtype = ir.VectorType(etype, tiles.lanes)
        for start in range(0, width, tiles.lanes):
            value = builder.load(element_ptr(builder, source, i64(start), etype), typ=vtype,
                                 align=element_align)
            builder.store(value, element_ptr(builder, target, i64(start), etype),
                          align=element_align * tiles.lanes)
        return
    for w in range(width):
        value = builder.load(element_ptr(builder, source, i64(w), etype), typ=etype)
        builder.store(value, element_ptr(builder, target, i64(w), etype))


def _copy_partial(
    builder: ir.IRBuilder,
    tiles: GemmTiles,
    width: int,
    target: ir.Value,
    row: ir.Value,
    first: ir.Value,
    extent: ir.Value,
) -> None:
    """Elements [first, extent) of `row`, then zeros up to `width`."""
    etype = scalar_type(tiles.dtype)
    last = builder.sub(extent, i64(1))
    zero = ir.Constant(etype, 0.0)
    for w in range(width):
        index = builder.add(first, i64(w))
        value = builder.load(element_ptr(builder, row, min_i64(builder, index, last), etype),
                             typ=etype)
        value = builder.select(builder.icmp_signed("<", index, extent), value, zero)
        builder.store(value, element_ptr(builder, target, i64(w), etype))


# -- pack tasks ------------------------------------------------------------------------------


@dataclass
class PackedOperand:
    """How one operand is packed, seen from inside the pack task."""

    width: int                # MR (A) or NR (B)
    panel_size: ir.Value      # elements from one packed panel to the next
    source: ir.Value
    batch_stride: ir.Value
    across: ir.Value          # stride between the elements of one panel step (A: lda_row)
    along_k: ir.Value         # stride along K (A: lda_col)
    extent: ir.Value          # M or N
    packed: ir.Value
    panels: ir.Value          # per packed batch
    by_rows: ir.Value         # i1: tasks are chunks of K rows (`pack_rows`), else panels
    tasks_per_batch: ir.Value
    pack_panel: ir.Function
    pack_rows: ir.Function


def emit_pack_range(
    builder: ir.IRBuilder,
    tiles: GemmTiles,
    k: ir.Value,
    operand_a: PackedOperand,
    operand_b: PackedOperand,
    a_tasks: ir.Value,
    begin: ir.Value,
    end: ir.Value,
) -> None:
    """Pack tasks [begin, end): A's `a_tasks` tasks (of every packed batch) come first, then
    B's. A task is one panel, or `PACK_ROWS` K steps of all panels of a batch when the panel
    dimension is contiguous (`by_rows`)."""
    with counted_loop(builder, begin, end, "task") as task:
        with builder.if_else(builder.icmp_signed("<", task, a_tasks)) as (then_a, otherwise_b):
            with then_a:
                _emit_pack_one(builder, tiles, k, operand_a, task)
            with otherwise_b:
                _emit_pack_one(builder, tiles, k, operand_b, builder.sub(task, a_tasks))


def _emit_pack_one(
    builder: ir.IRBuilder,
    tiles: GemmTiles,
    k: ir.Value,
    operand: PackedOperand,
    task: ir.Value,
) -> None:
    etype = scalar_type(tiles.dtype)
    batch = builder.sdiv(task, operand.tasks_per_batch)
    index = builder.srem(task, operand.tasks_per_batch)
    source = element_ptr(builder, operand.source, builder.mul(batch, operand.batch_stride), etype)
    panel_size = operand.panel_size
    packed = element_ptr(builder, operand.packed,
                         builder.mul(builder.mul(batch, operand.panels), panel_size), etype)
    with builder.if_else(operand.by_rows) as (then_rows, otherwise_panel):
        with then_rows:
            k_begin = builder.mul(index, i64(PACK_ROWS))
            k_end = min_i64(builder, builder.add(k_begin, i64(PACK_ROWS)), k)
            builder.call(operand.pack_rows, [packed, source, operand.along_k, operand.extent,
                                             k_begin, k_end, panel_size])
        with otherwise_panel:
            first = builder.mul(index, i64(operand.width))
            panel_source = element_ptr(builder, source, builder.mul(first, operand.across), etype)
            panel_target = element_ptr(builder, packed, builder.mul(index, panel_size), etype)
            count = min_i64(builder, i64(operand.width), builder.sub(operand.extent, first))
            builder.call(operand.pack_panel, [panel_target, panel_source, operand.across,
                                              operand.along_k, count, k])
