"""Packing of GEMM operands into the micro-kernel's panel layouts.

- An A panel is `MR` rows of A over all of K, stored `[k][MR]` (row `r` of step `k` at
  `k * MR + r`); rows past the end of A (the last panel of a matrix whose M is not a multiple
  of MR) are zero.
- A B panel is `NR` columns of B over all of K, stored `[k][NR]`; missing columns are zero.

Both take strided sources (element strides; a transposed operand just swaps them). Fast paths
cover the contiguous cases (row-major A: MR unit-stride row streams; row-major B: vector
copies; transposed B: unit-stride column streams); the general path handles any strides and
partial panels, reading only in-bounds elements (a missing row or column re-reads the last
valid one and stores zero instead).
"""

from __future__ import annotations

import llvmlite.ir as ir

from tensorc.codegen.cpu.gemm_microkernel import (
    DTYPE_BYTES,
    I64,
    PTR,
    VOID,
    GemmTiles,
    counted_loop,
    element_ptr,
    i64,
    internal_function,
    min_i64,
    scalar_type,
)

PACK_ARGS = ("dst", "src", "stride_row", "stride_col", "count", "k")


def pack_function_type() -> ir.FunctionType:
    """`void pack(ptr dst, ptr src, i64 stride_row, i64 stride_col, i64 count, i64 k)`:
    `src` points at the panel's first element, `count` is its valid rows (A) or columns (B)."""
    return ir.FunctionType(VOID, [PTR, PTR, I64, I64, I64, I64])


def _new_pack_function(module: ir.Module, name: str) -> tuple[ir.Function, ir.IRBuilder]:
    function = internal_function(module, name, pack_function_type())
    for arg, arg_name in zip(function.args, PACK_ARGS):
        arg.name = arg_name
    function.args[0].add_attribute("noalias")
    function.args[1].add_attribute("noalias")
    return function, ir.IRBuilder(function.append_basic_block("entry"))


def emit_pack_a(module: ir.Module, prefix: str, tiles: GemmTiles) -> ir.Function:
    """`prefix.pack_a`: one A panel (`count` = valid rows, 1..MR) over `k` steps."""
    function, builder = _new_pack_function(module, f"{prefix}.pack_a")
    dst, src, stride_row, stride_col, rows, k = function.args
    fast = builder.append_basic_block("row_major")
    general = builder.append_basic_block("general")
    full = builder.icmp_signed("==", rows, i64(tiles.mr))
    unit = builder.icmp_signed("==", stride_col, i64(1))
    builder.cbranch(builder.and_(full, unit), fast, general)
    etype = scalar_type(tiles.dtype)

    builder.position_at_end(fast)
    row_starts = [element_ptr(builder, src, builder.mul(i64(r), stride_row), etype)
                  for r in range(tiles.mr)]
    with counted_loop(builder, i64(0), k, "k") as step:
        out = builder.mul(step, i64(tiles.mr))
        for r, start in enumerate(row_starts):
            value = builder.load(element_ptr(builder, start, step, etype), typ=etype)
            builder.store(value, element_ptr(builder, dst, builder.add(out, i64(r)), etype))
    builder.ret_void()

    builder.position_at_end(general)
    last = builder.sub(rows, i64(1))
    starts, valid = [], []
    for r in range(tiles.mr):
        row = min_i64(builder, i64(r), last)
        starts.append(element_ptr(builder, src, builder.mul(row, stride_row), etype))
        valid.append(builder.icmp_signed("<", i64(r), rows))
    zero = ir.Constant(etype, 0.0)
    with counted_loop(builder, i64(0), k, "k.any") as step:
        offset = builder.mul(step, stride_col)
        out = builder.mul(step, i64(tiles.mr))
        for r, (start, ok) in enumerate(zip(starts, valid)):
            value = builder.load(element_ptr(builder, start, offset, etype), typ=etype)
            value = builder.select(ok, value, zero)
            builder.store(value, element_ptr(builder, dst, builder.add(out, i64(r)), etype))
    builder.ret_void()
    return function


def emit_pack_b(module: ir.Module, prefix: str, tiles: GemmTiles) -> ir.Function:
    """`prefix.pack_b`: one B panel (`count` = valid columns, 1..NR) over `k` steps."""
    function, builder = _new_pack_function(module, f"{prefix}.pack_b")
    dst, src, stride_row, stride_col, cols, k = function.args
    fast = builder.append_basic_block("row_major")
    other = builder.append_basic_block("other")
    transposed = builder.append_basic_block("transposed")
    general = builder.append_basic_block("general")
    full = builder.icmp_signed("==", cols, i64(tiles.nr))
    unit = builder.icmp_signed("==", stride_col, i64(1))
    builder.cbranch(builder.and_(full, unit), fast, other)
    builder.position_at_end(other)
    builder.cbranch(builder.icmp_signed("==", stride_row, i64(1)), transposed, general)

    builder.position_at_end(fast)
    _emit_pack_b_row_major(builder, tiles, dst, src, stride_row, k)
    builder.position_at_end(transposed)
    _emit_pack_b_by_column(builder, tiles, dst, src, stride_col, cols, k)
    builder.position_at_end(general)
    _emit_pack_b_general(builder, tiles, dst, src, stride_row, stride_col, cols, k)
    return function


def _emit_pack_b_row_major(
    builder: ir.IRBuilder,
    tiles: GemmTiles,
    dst: ir.Value,
    src: ir.Value,
    stride_row: ir.Value,
    k: ir.Value,
) -> None:
    etype = scalar_type(tiles.dtype)
    vtype = ir.VectorType(etype, tiles.lanes)
    element_align = DTYPE_BYTES[tiles.dtype]
    with counted_loop(builder, i64(0), k, "k") as step:
        row = element_ptr(builder, src, builder.mul(step, stride_row), etype)
        out = builder.mul(step, i64(tiles.nr))
        for v in range(tiles.vectors):
            value = builder.load(element_ptr(builder, row, i64(v * tiles.lanes), etype),
                                 typ=vtype, align=element_align)
            target = element_ptr(builder, dst, builder.add(out, i64(v * tiles.lanes)), etype)
            builder.store(value, target, align=element_align * tiles.lanes)
    builder.ret_void()


def _emit_pack_b_by_column(
    builder: ir.IRBuilder,
    tiles: GemmTiles,
    dst: ir.Value,
    src: ir.Value,
    stride_col: ir.Value,
    cols: ir.Value,
    k: ir.Value,
) -> None:
    """Unit stride along K (a transposed B): one column stream at a time."""
    etype = scalar_type(tiles.dtype)
    last = builder.sub(cols, i64(1))
    zero = ir.Constant(etype, 0.0)
    with counted_loop(builder, i64(0), i64(tiles.nr), "col") as col:
        column = element_ptr(builder, src, builder.mul(min_i64(builder, col, last), stride_col),
                             etype)
        ok = builder.icmp_signed("<", col, cols)
        with counted_loop(builder, i64(0), k, "k.col") as step:
            value = builder.load(element_ptr(builder, column, step, etype), typ=etype)
            out = builder.add(builder.mul(step, i64(tiles.nr)), col)
            builder.store(builder.select(ok, value, zero), element_ptr(builder, dst, out, etype))
    builder.ret_void()


def _emit_pack_b_general(
    builder: ir.IRBuilder,
    tiles: GemmTiles,
    dst: ir.Value,
    src: ir.Value,
    stride_row: ir.Value,
    stride_col: ir.Value,
    cols: ir.Value,
    k: ir.Value,
) -> None:
    etype = scalar_type(tiles.dtype)
    last = builder.sub(cols, i64(1))
    zero = ir.Constant(etype, 0.0)
    with counted_loop(builder, i64(0), k, "k.any") as step:
        row = element_ptr(builder, src, builder.mul(step, stride_row), etype)
        out = builder.mul(step, i64(tiles.nr))
        with counted_loop(builder, i64(0), i64(tiles.nr), "col.any") as col:
            offset = builder.mul(min_i64(builder, col, last), stride_col)
            value = builder.load(element_ptr(builder, row, offset, etype), typ=etype)
            value = builder.select(builder.icmp_signed("<", col, cols), value, zero)
            builder.store(value, element_ptr(builder, dst, builder.add(out, col), etype))
    builder.ret_void()


ROWS_ARGS = ("dst", "src", "ld", "extent", "k_begin", "k_end", "panel_size")


def pack_rows_type() -> ir.FunctionType:
    """`void pack_rows(ptr dst, ptr src, i64 ld, i64 extent, i64 k_begin, i64 k_end,
    i64 panel_size)`."""
    return ir.FunctionType(VOID, [PTR, PTR, I64, I64, I64, I64, I64])


def emit_pack_rows(module: ir.Module, name: str, tiles: GemmTiles, width: int) -> ir.Function:
    """`name`: K steps [k_begin, k_end) of every panel of one operand whose panel dimension is
    contiguous (row-major B, or a transposed A): element (step, x) is `src[step * ld + x]`,
    x < extent, and panel p (`width` elements per step) starts at `dst + p * panel_size`. Reads each source row once, front to back (the hardware prefetches
    it), writing one stream per panel; the last partial panel is padded with zeros."""
    function = internal_function(module, name, pack_rows_type())
    for arg, arg_name in zip(function.args, ROWS_ARGS):
        arg.name = arg_name
    dst, src, ld, extent, k_begin, k_end, panel_size = function.args
    dst.add_attribute("noalias")
    src.add_attribute("noalias")
    etype = scalar_type(tiles.dtype)
    builder = ir.IRBuilder(function.append_basic_block("entry"))
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
