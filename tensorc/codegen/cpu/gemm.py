"""A packed, register-blocked, multi-threaded GEMM emitted as LLVM IR (llvmlite.ir).

The CPU backend lowers every contraction (`tensorc.ir.dialects.kernel.match_contraction`) to
these functions:

    fn = emit_gemm(module, "tc_gemm_f32", "f32", TargetInfo.host())
    # i32 tc_gemm_f32(i64 M, i64 N, i64 K,
    #                 const T *A, i64 lda_row, i64 lda_col,
    #                 const T *B, i64 ldb_row, i64 ldb_col,
    #                 T *C, i64 ldc,
    #                 epilogue_fn epilogue, void *epilogue_ctx)
    fn = emit_batched_gemm(module, "tc_bgemm_f32", "f32", TargetInfo.host())
    # i32 tc_bgemm_f32(i64 batch, i64 M, i64 N, i64 K,
    #                  const T *A, i64 a_batch_stride, i64 lda_row, i64 lda_col,
    #                  const T *B, i64 b_batch_stride, i64 ldb_row, i64 ldb_col,
    #                  T *C, i64 c_batch_stride, i64 ldc,
    #                  epilogue_fn epilogue, void *epilogue_ctx)
    # typedef void (*epilogue_fn)(void *ctx, i64 batch, i64 row0, i64 rows,
    #                             i64 col0, i64 cols, T *c_block, i64 ldc);

Semantics: for every batch index `t`, `C_t = A_t @ B_t` (C is overwritten; `T` is float or
double), where `A_t[i, k] = A[t * a_batch_stride + i * lda_row + k * lda_col]`, likewise B, and
`C_t[i, j] = C[t * c_batch_stride + i * ldc + j]`. Strides are in elements, so a transposed
operand is the same buffer with its two strides swapped, and a batch stride of 0 broadcasts an
operand over the batch (it is then packed once). A and B are only read; C must not overlap
them. Any size is allowed, 0 included (`K == 0` gives zeros; `M`, `N` or `batch` 0 does
nothing). The result is 0, or 3 (the ABI's out-of-memory code) when the packing scratch
could not be allocated; C is then unspecified.

`epilogue` (may be NULL) is called exactly once per finished block of C, after the whole K
reduction of that block, while the block is hot in cache: `c_block` points at
`C_t[row0, col0]`, the block is `rows x cols` with row stride `ldc`. Blocks partition every
`C_t`; calls may come from several threads at once (distinct blocks).

Algorithm (tile sizes: `choose_tiles`, `GemmTiles`):
- Packing, into one 64-byte aligned `malloc` scratch per call (an operand with batch stride 0
  is packed once): B into panels of NR columns stored `[k][NR]`; A into panels of MR rows
  `[k][MR]`, except row-major A (`lda_col == 1`) whose rows are not a multiple of 4 KiB
  apart (ALIASING_ROW_BYTES), which the micro-kernel reads in place (`gemm_pack`: a task is
  PACK_ROWS K rows of all panels when the panel dimension is contiguous, else one panel; a
  transposed B goes by in-register transposes).
- C is cut into blocks of MC rows (one tile row) by up to NC columns, fewer when the block's
  K x columns of packed B would exceed `b_block_bytes`, numbered batch, block column, block
  row: consecutive blocks share their B block in L2. A block runs, for each K block of KC,
  for each MR-row panel, for each NR-column panel, the MR x NR register tile
  (`gemm_microkernel`): its A micro-panel stays in L1. Edge tiles use masked stores (columns)
  and smaller row kernels (rows), never reading or writing outside the operands.
- Problems of at least PARALLEL_MIN_FLOPS pack and compute on the artifact's thread pool
  (`__tensorc_parallel_for` and `__tensorc_num_threads` of `support/threadpool.c`, which must be
  linked in): CHUNKS_PER_THREAD equal chunks of consecutive blocks per thread, taken
  dynamically; smaller ones run on the calling thread. All state is on the stack or in the
  per-call scratch, so the functions are reentrant.
"""

from __future__ import annotations

from dataclasses import dataclass

import llvmlite.ir as ir

from tensorc.codegen.cpu.gemm_microkernel import (
    DTYPE_BYTES,
    I32,
    I64,
    PTR,
    VOID,
    GemmTiles,
    TargetInfo,
    choose_tiles,
    declare,
    element_ptr,
    emit_tile_kernel,
    i64,
    internal_function,
    min_i64,
    scalar_type,
)
from tensorc.codegen.cpu.gemm_pack import (
    PACK_ROWS,
    PackedOperand,
    emit_pack_panel,
    emit_pack_range,
    emit_pack_rows,
)
from tensorc.codegen.cpu.irutil import NUM_THREADS_SYMBOL, PARALLEL_FOR_SYMBOL, counted_loop
from tensorc.codegen.cpu.sizes import CheckedArithmetic

__all__ = [
    "EPILOGUE_TYPE",
    "OUT_OF_MEMORY",
    "PARALLEL_MIN_FLOPS",
    "GemmTiles",
    "TargetInfo",
    "batched_gemm_type",
    "choose_tiles",
    "emit_batched_gemm",
    "emit_gemm",
    "epilogue_type",
    "gemm_type",
]

OUT_OF_MEMORY = 3
# Below this many flops (2*batch*M*N*K) the threads cost more than they save (measured on
# two cores: 128^3 = 4.2 MFLOP is faster serial, 160^3 = 8.2 MFLOP on two threads).
PARALLEL_MIN_FLOPS = 8.0e6
# Parallel problems are cut into at least this many C blocks per thread, and run as this many
# equal chunks of consecutive blocks per thread (taken dynamically by the pool's threads).
BLOCKS_PER_THREAD = 8
CHUNKS_PER_THREAD = 4
SCRATCH_ALIGN = 64
# Row-major A is read in place unless its row stride is a multiple of this many bytes: then the
# MR rows of a micro-panel fall in the same set of a 4 KiB-aliased L1 (64 sets of 64 bytes:
# 14 lines in one 12-way set), so it leaves L1 between the NR panels that reuse it. Packed,
# matmul 1024^3 (f32 rows of 4 KiB) took 0.92-1.0x the time in place, median 0.94x over six
# interleaved A/Bs; 256x784x512 (3136-byte rows) took 1.01-1.11x, so it stays in place.
ALIASING_ROW_BYTES = 4096
# Batches are packed and computed in groups whose packed operands take about this much.
SCRATCH_GROUP_BYTES = 16 * 1024 * 1024


EPILOGUE_TYPE = ir.FunctionType(VOID, [PTR, I64, I64, I64, I64, I64, PTR, I64])
EPILOGUE_PTR = ir.PointerType(EPILOGUE_TYPE)


def epilogue_type(dtype: str) -> ir.FunctionType:
    """`void (ptr ctx, i64 batch, i64 row0, i64 rows, i64 col0, i64 cols, T* c, i64 ldc)`."""
    scalar_type(dtype)
    return EPILOGUE_TYPE


def gemm_type(dtype: str) -> ir.FunctionType:
    scalar_type(dtype)
    return ir.FunctionType(
        I32, [I64, I64, I64, PTR, I64, I64, PTR, I64, I64, PTR, I64, EPILOGUE_PTR, PTR]
    )


def batched_gemm_type(dtype: str) -> ir.FunctionType:
    scalar_type(dtype)
    return ir.FunctionType(
        I32,
        [I64, I64, I64, I64, PTR, I64, I64, I64, PTR, I64, I64, I64, PTR, I64, I64, EPILOGUE_PTR,
         PTR],
    )


GEMM_ARGS = ("m", "n", "k", "a", "lda_row", "lda_col", "b", "ldb_row", "ldb_col", "c", "ldc",
             "epilogue", "epilogue_ctx")
BATCHED_ARGS = ("batch", "m", "n", "k", "a", "a_batch_stride", "lda_row", "lda_col",
                "b", "b_batch_stride", "ldb_row", "ldb_col", "c", "c_batch_stride", "ldc",
                "epilogue", "epilogue_ctx")


def emit_gemm(
    module: ir.Module,
    name: str,
    dtype: str,
    target: TargetInfo,
    tiles: GemmTiles | None = None,
    linkage: str = "",
    batched: ir.Function | None = None,
) -> ir.Function:
    """`i32 name(M, N, K, A, lda_row, lda_col, B, ldb_row, ldb_col, C, ldc, epilogue, ctx)`
    (see the module documentation): a call of `batched` (an `emit_batched_gemm` function of
    the same dtype) with one batch, or, without it, of a new internal `name.batched`."""
    core = batched
    if core is None:
        core = emit_batched_gemm(module, f"{name}.batched", dtype, target, tiles, "internal")
    elif core.function_type != batched_gemm_type(dtype):
        raise ValueError(f"{core.name} is not a batched {dtype} GEMM")
    function = ir.Function(module, gemm_type(dtype), name=name)
    _name_args(function, GEMM_ARGS)
    if linkage:
        function.linkage = linkage
    function.attributes.add("nounwind")
    m, n, k, a, lda_row, lda_col, b, ldb_row, ldb_col, c, ldc, epilogue, context = function.args
    builder = ir.IRBuilder(function.append_basic_block("entry"))
    zero = i64(0)
    status = builder.call(core, [i64(1), m, n, k, a, zero, lda_row, lda_col, b, zero, ldb_row,
                                 ldb_col, c, zero, ldc, epilogue, context])
    builder.ret(status)
    return function


def emit_batched_gemm(
    module: ir.Module,
    name: str,
    dtype: str,
    target: TargetInfo,
    tiles: GemmTiles | None = None,
    linkage: str = "",
) -> ir.Function:
    """`i32 name(batch, M, N, K, A, a_batch_stride, lda_row, lda_col, B, b_batch_stride,
    ldb_row, ldb_col, C, c_batch_stride, ldc, epilogue, ctx)` (see the module documentation).
    Its helpers are internal functions named `name.*`."""
    tiles = tiles or choose_tiles(dtype, target)
    if tiles.dtype != dtype or tiles.lanes != target.lanes(dtype):
        raise ValueError(f"tiles {tiles} do not fit {dtype} on {target}")
    tile_packed = emit_tile_kernel(module, name, tiles, target, packed_a=True)
    tile_direct = emit_tile_kernel(module, name, tiles, target, packed_a=False)
    pack_task = _emit_pack_task(module, name, tiles)
    compute_task = _emit_compute_task(module, name, tiles, tile_packed, tile_direct)
    function = ir.Function(module, batched_gemm_type(dtype), name=name)
    _name_args(function, BATCHED_ARGS)
    if linkage:
        function.linkage = linkage
    function.attributes.add("nounwind")
    _emit_driver(module, function, tiles, pack_task, compute_task)
    return function


def _name_args(function: ir.Function, names: tuple[str, ...]) -> None:
    for arg, arg_name in zip(function.args, names):
        arg.name = arg_name


# -- the shared state of one call ------------------------------------------------------------

CONTEXT_FIELDS: tuple[tuple[str, ir.Type], ...] = (
    ("m", I64), ("n", I64), ("k", I64),
    ("a", PTR), ("a_batch_stride", I64), ("lda_row", I64), ("lda_col", I64),
    ("b", PTR), ("b_batch_stride", I64), ("ldb_row", I64), ("ldb_col", I64),
    ("c", PTR), ("c_batch_stride", I64), ("ldc", I64),
    ("epilogue", EPILOGUE_PTR), ("epilogue_ctx", PTR),
    ("a_direct", I64),                             # 1: row-major A is read in place
    ("a_packed", PTR), ("b_packed", PTR),
    ("a_panels", I64), ("b_panels", I64),          # panels per packed batch
    ("a_panel_size", I64), ("b_panel_size", I64),  # elements from one panel to the next
    ("a_pack_batches", I64), ("b_pack_batches", I64),  # 0 A batches when A is direct
    ("a_pack_rows", I64), ("b_pack_rows", I64),    # 1: pack by chunks of K rows
    ("a_pack_tasks", I64), ("b_pack_tasks", I64),  # pack tasks per packed batch
    ("m_blocks", I64), ("n_blocks", I64),          # C blocks per batch
    ("tasks", I64), ("chunks", I64),               # blocks in the group; ranges of them
    ("batch0", I64),                               # the group's first batch
    ("kc", I64),                                   # K block (0 when K == 0)
)  # fmt: skip
CONTEXT_TYPE = ir.LiteralStructType([field_type for _, field_type in CONTEXT_FIELDS])
CONTEXT_INDEX = {field_name: index for index, (field_name, _) in enumerate(CONTEXT_FIELDS)}
TASK_TYPE = ir.FunctionType(VOID, [PTR, I64, I64])


def _field_ptr(builder: ir.IRBuilder, context: ir.Value, field: str) -> ir.Value:
    """The field's address; `context` is an opaque pointer (a task's argument) or the typed
    pointer of the driver's `alloca` (llvmlite then types the result by the field)."""
    indices = [ir.Constant(I32, 0), ir.Constant(I32, CONTEXT_INDEX[field])]
    if context.type.is_opaque:
        return builder.gep(context, indices, inbounds=True, source_etype=CONTEXT_TYPE)
    return builder.gep(context, indices, inbounds=True)


def _load_fields(builder: ir.IRBuilder, context: ir.Value) -> dict[str, ir.Value]:
    fields = {}
    for field, field_type in CONTEXT_FIELDS:
        loaded = builder.load(_field_ptr(builder, context, field), typ=field_type)
        loaded.name = field
        fields[field] = loaded
    return fields


def _ceil_div(builder: ir.IRBuilder, a: ir.Value, b: ir.Value) -> ir.Value:
    return builder.sdiv(builder.add(a, builder.sub(b, i64(1))), b)


def _new_task(module: ir.Module, name: str) -> tuple[ir.Function, ir.IRBuilder]:
    function = internal_function(module, name, TASK_TYPE)
    for arg, arg_name in zip(function.args, ("context", "begin", "end")):
        arg.name = arg_name
    return function, ir.IRBuilder(function.append_basic_block("entry"))


# -- packing ---------------------------------------------------------------------------------


def _emit_pack_task(module: ir.Module, prefix: str, tiles: GemmTiles) -> ir.Function:
    """`prefix.pack_task(ctx, begin, end)`: pack tasks [begin, end) (`emit_pack_range`)."""
    pack_a = emit_pack_panel(module, f"{prefix}.pack_panel_a", tiles, tiles.mr)
    pack_b = emit_pack_panel(module, f"{prefix}.pack_panel_b", tiles, tiles.nr)
    rows_a = emit_pack_rows(module, f"{prefix}.pack_rows_a", tiles, tiles.mr)
    rows_b = emit_pack_rows(module, f"{prefix}.pack_rows_b", tiles, tiles.nr)
    function, builder = _new_task(module, f"{prefix}.pack_task")
    context, begin, end = function.args
    f = _load_fields(builder, context)

    def flag(name: str) -> ir.Value:
        return builder.icmp_signed("!=", f[name], i64(0))

    operand_a = PackedOperand(
        width=tiles.mr, panel_size=f["a_panel_size"], source=f["a"],
        batch_stride=f["a_batch_stride"], across=f["lda_row"], along_k=f["lda_col"],
        extent=f["m"], packed=f["a_packed"], panels=f["a_panels"], by_rows=flag("a_pack_rows"),
        tasks_per_batch=f["a_pack_tasks"], pack_panel=pack_a, pack_rows=rows_a)
    operand_b = PackedOperand(
        width=tiles.nr, panel_size=f["b_panel_size"], source=f["b"],
        batch_stride=f["b_batch_stride"], across=f["ldb_col"], along_k=f["ldb_row"],
        extent=f["n"], packed=f["b_packed"], panels=f["b_panels"], by_rows=flag("b_pack_rows"),
        tasks_per_batch=f["b_pack_tasks"], pack_panel=pack_b, pack_rows=rows_b)
    a_tasks = builder.mul(f["a_pack_batches"], f["a_pack_tasks"])
    emit_pack_range(builder, tiles, f["k"], operand_a, operand_b, a_tasks, begin, end)
    builder.ret_void()
    return function


# -- computing C blocks ----------------------------------------------------------------------


@dataclass
class _Block:
    """One C block of one batch: panels [i0, i1) x [j0, j1) and the bases of its operands."""

    batch: ir.Value
    i0: ir.Value
    i1: ir.Value
    j0: ir.Value
    j1: ir.Value
    a_base: ir.Value
    b_base: ir.Value
    c_base: ir.Value


def _emit_compute_task(
    module: ir.Module,
    prefix: str,
    tiles: GemmTiles,
    tile_packed: ir.Function,
    tile_direct: ir.Function,
) -> ir.Function:
    """`prefix.compute_task(ctx, begin, end)`: chunks [begin, end) of the C blocks; chunk `s`
    is blocks [s * tasks / chunks, (s + 1) * tasks / chunks). Each block runs all its K
    blocks, then its epilogue."""
    function, builder = _new_task(module, f"{prefix}.compute_task")
    context, begin, end = function.args
    f = _load_fields(builder, context)
    first = builder.sdiv(builder.mul(begin, f["tasks"]), f["chunks"])
    last = builder.sdiv(builder.mul(end, f["tasks"]), f["chunks"])
    with counted_loop(builder, first, last, "block") as task:
        block = _decode_block(builder, tiles, f, task)
        empty_k = builder.icmp_signed("==", f["k"], i64(0))
        with builder.if_else(empty_k) as (then_zero, otherwise_multiply):
            with then_zero:
                _emit_zero_block(builder, tiles, f, block)
            with otherwise_multiply:
                direct = builder.icmp_signed("!=", f["a_direct"], i64(0))
                with builder.if_else(direct) as (then_direct, otherwise_packed):
                    with then_direct:
                        _emit_block_product(builder, tiles, f, block, tile_direct, False)
                    with otherwise_packed:
                        _emit_block_product(builder, tiles, f, block, tile_packed, True)
        _emit_epilogue_call(builder, tiles, f, block)
    builder.ret_void()
    return function


def _decode_block(
    builder: ir.IRBuilder, tiles: GemmTiles, f: dict[str, ir.Value], task: ir.Value
) -> _Block:
    """Blocks are numbered batch-major, then by block column, then by block row: the blocks
    that share one block of B (kept in L2) run one after the other."""
    etype = scalar_type(tiles.dtype)
    row_block = builder.srem(task, f["m_blocks"])
    rest = builder.sdiv(task, f["m_blocks"])
    column_block = builder.srem(rest, f["n_blocks"])
    batch = builder.sdiv(rest, f["n_blocks"])

    def split(block: ir.Value, panels: ir.Value, blocks: ir.Value) -> ir.Value:
        return builder.sdiv(builder.mul(block, panels), blocks)

    i0 = split(row_block, f["a_panels"], f["m_blocks"])
    i1 = split(builder.add(row_block, i64(1)), f["a_panels"], f["m_blocks"])
    j0 = split(column_block, f["b_panels"], f["n_blocks"])
    j1 = split(builder.add(column_block, i64(1)), f["b_panels"], f["n_blocks"])
    a_batch = builder.select(builder.icmp_signed("==", f["a_batch_stride"], i64(0)), i64(0), batch)
    b_batch = builder.select(builder.icmp_signed("==", f["b_batch_stride"], i64(0)), i64(0), batch)
    a_panel_size, b_panel_size = f["a_panel_size"], f["b_panel_size"]
    a_packed_base = element_ptr(
        builder, f["a_packed"], builder.mul(builder.mul(a_batch, f["a_panels"]), a_panel_size),
        etype)
    a_direct_base = element_ptr(builder, f["a"], builder.mul(batch, f["a_batch_stride"]), etype)
    direct = builder.icmp_signed("!=", f["a_direct"], i64(0))
    a_base = builder.select(direct, a_direct_base, a_packed_base)
    b_base = element_ptr(builder, f["b_packed"],
                         builder.mul(builder.mul(b_batch, f["b_panels"]), b_panel_size), etype)
    c_base = element_ptr(builder, f["c"], builder.mul(batch, f["c_batch_stride"]), etype)
    return _Block(batch, i0, i1, j0, j1, a_base, b_base, c_base)


def _block_extent(
    builder: ir.IRBuilder, tiles: GemmTiles, f: dict[str, ir.Value], block: _Block
) -> tuple[ir.Value, ir.Value, ir.Value, ir.Value]:
    """(row0, rows, col0, cols) of the block in C."""
    row0 = builder.mul(block.i0, i64(tiles.mr))
    row_end = min_i64(builder, builder.mul(block.i1, i64(tiles.mr)), f["m"])
    col0 = builder.mul(block.j0, i64(tiles.nr))
    col_end = min_i64(builder, builder.mul(block.j1, i64(tiles.nr)), f["n"])
    return row0, builder.sub(row_end, row0), col0, builder.sub(col_end, col0)


def _emit_block_product(
    builder: ir.IRBuilder,
    tiles: GemmTiles,
    f: dict[str, ir.Value],
    block: _Block,
    tile: ir.Function,
    packed_a: bool,
) -> None:
    """For each K block: for each row panel: for each column panel: one register tile.
    `block.a_base` is the batch's packed A (`packed_a`) or row-major A itself."""
    etype = scalar_type(tiles.dtype)
    k_blocks = _ceil_div(builder, f["k"], f["kc"])
    a_panel_size, b_panel_size = f["a_panel_size"], f["b_panel_size"]
    with counted_loop(builder, i64(0), k_blocks, "kb") as k_block:
        k0 = builder.mul(k_block, f["kc"])
        depth = min_i64(builder, f["kc"], builder.sub(f["k"], k0))
        accumulate = builder.icmp_signed("!=", k_block, i64(0))
        with counted_loop(builder, block.i0, block.i1, "ip") as i:
            row0 = builder.mul(i, i64(tiles.mr))
            rows = min_i64(builder, i64(tiles.mr), builder.sub(f["m"], row0))
            if packed_a:
                a_offset = builder.add(builder.mul(i, a_panel_size),
                                       builder.mul(k0, i64(tiles.mr)))
            else:
                a_offset = builder.add(builder.mul(row0, f["lda_row"]), k0)
            a_panel = element_ptr(builder, block.a_base, a_offset, etype)
            c_row = element_ptr(builder, block.c_base, builder.mul(row0, f["ldc"]), etype)
            with counted_loop(builder, block.j0, block.j1, "jp") as j:
                col0 = builder.mul(j, i64(tiles.nr))
                cols = min_i64(builder, i64(tiles.nr), builder.sub(f["n"], col0))
                b_offset = builder.add(builder.mul(j, b_panel_size),
                                       builder.mul(k0, i64(tiles.nr)))
                b_panel = element_ptr(builder, block.b_base, b_offset, etype)
                c_tile = element_ptr(builder, c_row, col0, etype)
                builder.call(tile, [depth, a_panel, f["lda_row"], b_panel, c_tile, f["ldc"],
                                    accumulate, rows, cols])


def _emit_zero_block(
    builder: ir.IRBuilder, tiles: GemmTiles, f: dict[str, ir.Value], block: _Block
) -> None:
    """C = 0 over the block (the product of an empty K)."""
    etype = scalar_type(tiles.dtype)
    row0, rows, col0, cols = _block_extent(builder, tiles, f, block)
    corner = element_ptr(builder, block.c_base,
                         builder.add(builder.mul(row0, f["ldc"]), col0), etype)
    with counted_loop(builder, i64(0), rows, "zero.row") as row:
        start = element_ptr(builder, corner, builder.mul(row, f["ldc"]), etype)
        with counted_loop(builder, i64(0), cols, "zero.col") as col:
            builder.store(ir.Constant(etype, 0.0), element_ptr(builder, start, col, etype))


def _emit_epilogue_call(
    builder: ir.IRBuilder, tiles: GemmTiles, f: dict[str, ir.Value], block: _Block
) -> None:
    etype = scalar_type(tiles.dtype)
    present = builder.icmp_unsigned("!=", f["epilogue"], ir.Constant(EPILOGUE_PTR, None))
    with builder.if_then(present, likely=False):
        row0, rows, col0, cols = _block_extent(builder, tiles, f, block)
        corner = element_ptr(builder, block.c_base,
                             builder.add(builder.mul(row0, f["ldc"]), col0), etype)
        batch = builder.add(f["batch0"], block.batch)
        builder.call(f["epilogue"], [f["epilogue_ctx"], batch, row0, rows, col0, cols, corner,
                                     f["ldc"]])


# -- the entry point -------------------------------------------------------------------------


def _emit_driver(
    module: ir.Module,
    function: ir.Function,
    tiles: GemmTiles,
    pack_task: ir.Function,
    compute_task: ir.Function,
) -> None:
    """Checks, scratch allocation and the context, then for each group of batches packing and
    computing (serial or on the thread pool), then freeing the scratch."""
    args = dict(zip(BATCHED_ARGS, function.args))
    builder = ir.IRBuilder(function.append_basic_block("entry"))
    context = builder.alloca(CONTEXT_TYPE, name="context")
    empty = builder.or_(
        builder.icmp_signed("<=", args["batch"], i64(0)),
        builder.or_(builder.icmp_signed("<=", args["m"], i64(0)),
                    builder.icmp_signed("<=", args["n"], i64(0))),
    )
    with builder.if_then(empty, likely=False):
        builder.ret(ir.Constant(I32, 0))
    aliasing_row = ALIASING_ROW_BYTES // DTYPE_BYTES[tiles.dtype]  # elements
    a_direct = builder.and_(
        builder.icmp_signed("==", args["lda_col"], i64(1)),
        builder.icmp_signed("!=", builder.srem(args["lda_row"], i64(aliasing_row)), i64(0)),
    )
    if not tiles.direct_a:
        a_direct = ir.Constant(ir.IntType(1), 0)
    layout = _emit_scratch_layout(builder, tiles, args, a_direct)
    with builder.if_then(layout["too_large"], likely=False):
        builder.ret(ir.Constant(I32, OUT_OF_MEMORY))
    malloc = declare(module, "malloc", ir.FunctionType(PTR, [I64]))
    free = declare(module, "free", ir.FunctionType(VOID, [PTR]))
    scratch = builder.call(malloc, [layout["bytes"]], name="scratch")
    with builder.if_then(builder.icmp_unsigned("==", scratch, ir.Constant(PTR, None)),
                         likely=False):
        builder.ret(ir.Constant(I32, OUT_OF_MEMORY))
    a_packed = _align_pointer(builder, scratch)
    b_packed = element_ptr(builder, a_packed, layout["a_elements"], scalar_type(tiles.dtype))
    values = {name: args[name] for name, _ in CONTEXT_FIELDS if name in args}
    values.update(a_packed=a_packed, b_packed=b_packed, kc=_k_block(builder, tiles, args["k"]),
                  a_direct=builder.zext(a_direct, I64))
    values.update({name: layout[name] for name in
                   ("a_panels", "b_panels", "a_pack_rows", "b_pack_rows", "a_pack_tasks",
                    "b_pack_tasks", "a_panel_size", "b_panel_size")})
    parallel = _is_parallel(builder, args)
    schedule = _schedule(module, builder, tiles, args, layout, parallel)
    values.update(m_blocks=schedule["m_blocks"], n_blocks=schedule["n_blocks"])
    for name, value in values.items():
        builder.store(value, _field_ptr(builder, context, name))
    group = layout["group"]
    with counted_loop(builder, i64(0), args["batch"], "group", step=group) as batch0:
        count = min_i64(builder, group, builder.sub(args["batch"], batch0))
        _emit_group(module, builder, tiles, args, layout, schedule, context, batch0, count,
                    parallel, pack_task, compute_task)
    builder.call(free, [scratch])
    builder.ret(ir.Constant(I32, 0))


def _emit_group(
    module: ir.Module,
    builder: ir.IRBuilder,
    tiles: GemmTiles,
    args: dict[str, ir.Value],
    layout: dict[str, ir.Value],
    schedule: dict[str, ir.Value],
    context: ir.Value,
    batch0: ir.Value,
    count: ir.Value,
    parallel: ir.Value,
    pack_task: ir.Function,
    compute_task: ir.Function,
) -> None:
    """Batches [batch0, batch0 + count): their operands, pack and compute tasks."""
    etype = scalar_type(tiles.dtype)
    values = {"batch0": batch0}
    for operand in ("a", "b", "c"):
        offset = builder.mul(batch0, args[f"{operand}_batch_stride"])
        values[operand] = element_ptr(builder, args[operand], offset, etype)
    for operand in ("a", "b"):
        batched = builder.icmp_signed("!=", args[f"{operand}_batch_stride"], i64(0))
        packed = builder.select(batched, count, i64(1))
        if operand == "a":
            packed = builder.select(layout["a_direct"], i64(0), packed)
        values[f"{operand}_pack_batches"] = packed
    tasks = builder.mul(count, builder.mul(schedule["m_blocks"], schedule["n_blocks"]))
    values.update(tasks=tasks, chunks=min_i64(builder, tasks, schedule["wanted_chunks"]))
    for name, value in values.items():
        builder.store(value, _field_ptr(builder, context, name))
    pack_tasks = builder.add(
        builder.mul(values["a_pack_batches"], layout["a_pack_tasks"]),
        builder.mul(values["b_pack_batches"], layout["b_pack_tasks"]))
    pack_tasks = builder.select(builder.icmp_signed(">", args["k"], i64(0)), pack_tasks, i64(0))
    _emit_run(module, builder, parallel, pack_task, context, pack_tasks)
    _emit_run(module, builder, parallel, compute_task, context, values["chunks"])


def _emit_scratch_layout(
    builder: ir.IRBuilder, tiles: GemmTiles, args: dict[str, ir.Value], a_direct: ir.Value
) -> dict[str, ir.Value]:
    """Panel counts and sizes, pack task counts, the batches per group and the scratch size.

    Batches run in groups whose packed operands take about SCRATCH_GROUP_BYTES (at least one
    batch): a batched product needs no more scratch than that, and its packed panels are
    still in cache when they are used. An operand with batch stride 0 is packed once per
    group."""
    batch, k = args["batch"], args["k"]
    a_panels = _ceil_div(builder, args["m"], i64(tiles.mr))
    b_panels = _ceil_div(builder, args["n"], i64(tiles.nr))
    # Contiguous panel dimension (transposed A, row-major B): tasks are chunks of K rows.
    a_pack_rows = builder.icmp_signed("==", args["lda_row"], i64(1))
    b_pack_rows = builder.icmp_signed("==", args["ldb_col"], i64(1))
    row_chunks = _ceil_div(builder, k, i64(PACK_ROWS))
    a_pack_tasks = builder.select(a_pack_rows, row_chunks, a_panels)
    b_pack_tasks = builder.select(b_pack_rows, row_chunks, b_panels)
    # Panels are one cache line longer than their data: with K a power of two, panel streams
    # written side by side would otherwise all map to the same L1 sets.
    # Sizes grow with m, n, k (an operand broadcast along m or n is small but packs to full
    # panels): every product and sum is overflow checked, `too_large` fails the call.
    checked = CheckedArithmetic(builder)
    line = SCRATCH_ALIGN // DTYPE_BYTES[tiles.dtype]
    a_panel_size = checked.sadd(checked.smul(i64(tiles.mr), k), i64(line))
    b_panel_size = checked.sadd(checked.smul(i64(tiles.nr), k), i64(line))
    a_batch = builder.select(a_direct, i64(0), checked.smul(a_panels, a_panel_size))
    b_batch = checked.smul(b_panels, b_panel_size)
    a_batched = builder.icmp_signed("!=", args["a_batch_stride"], i64(0))
    b_batched = builder.icmp_signed("!=", args["b_batch_stride"], i64(0))
    per_batch = checked.sadd(builder.select(a_batched, a_batch, i64(0)),
                             builder.select(b_batched, b_batch, i64(0)))
    per_batch_bytes = checked.smul(per_batch, i64(DTYPE_BYTES[tiles.dtype]))
    fitting = builder.sdiv(i64(SCRATCH_GROUP_BYTES), _at_least(builder, i64(1), per_batch_bytes))
    group = min_i64(builder, batch, _at_least(builder, i64(1), fitting))
    a_batches = builder.select(a_batched, group, i64(1))
    b_batches = builder.select(b_batched, group, i64(1))
    # B starts 64-byte aligned too: A's part is rounded up to whole 64-byte lines.
    a_used = checked.sadd(checked.smul(a_batches, a_batch), i64(line - 1))
    a_elements = builder.mul(builder.sdiv(a_used, i64(line)), i64(line))
    b_elements = checked.smul(b_batches, b_batch)
    payload = checked.smul(checked.sadd(a_elements, b_elements), i64(DTYPE_BYTES[tiles.dtype]))
    scratch_bytes = checked.sadd(payload, i64(SCRATCH_ALIGN))
    too_large = checked.too_large(scratch_bytes)
    return {
        "a_direct": a_direct,
        "a_panels": a_panels,
        "b_panels": b_panels,
        "a_panel_size": a_panel_size,
        "b_panel_size": b_panel_size,
        "a_pack_rows": builder.zext(a_pack_rows, I64),
        "b_pack_rows": builder.zext(b_pack_rows, I64),
        "a_pack_tasks": a_pack_tasks,
        "b_pack_tasks": b_pack_tasks,
        "a_elements": a_elements,
        "group": group,
        "bytes": scratch_bytes,
        "too_large": too_large,
    }


def _align_pointer(builder: ir.IRBuilder, pointer: ir.Value) -> ir.Value:
    address = builder.ptrtoint(pointer, I64)
    padding = builder.and_(builder.neg(address), i64(SCRATCH_ALIGN - 1))
    return builder.gep(pointer, [padding], inbounds=True, source_etype=ir.IntType(8))


def _k_block(builder: ir.IRBuilder, tiles: GemmTiles, k: ir.Value) -> ir.Value:
    """K split into ceil(K / KC) equal blocks (0 when K is 0)."""
    blocks = _ceil_div(builder, k, i64(tiles.kc))
    safe_blocks = builder.select(builder.icmp_signed(">", blocks, i64(0)), blocks, i64(1))
    return _ceil_div(builder, k, safe_blocks)


def _is_parallel(builder: ir.IRBuilder, args: dict[str, ir.Value]) -> ir.Value:
    flops = ir.Constant(ir.DoubleType(), 2.0)
    for name in ("batch", "m", "n", "k"):
        flops = builder.fmul(flops, builder.sitofp(args[name], ir.DoubleType()))
    return builder.fcmp_ordered(">=", flops, ir.Constant(ir.DoubleType(), PARALLEL_MIN_FLOPS))


def _schedule(
    module: ir.Module,
    builder: ir.IRBuilder,
    tiles: GemmTiles,
    args: dict[str, ir.Value],
    layout: dict[str, ir.Value],
    parallel: ir.Value,
) -> dict[str, ir.Value]:
    """How C is cut into blocks (m_blocks, n_blocks per batch) and the blocks of a group of
    batches into chunks (`wanted_chunks`, at most one per block).

    A block is about MC rows (one register tile row by default) by as many columns as keep
    its K x columns part of packed B within `b_block_bytes` (at most NC): consecutive blocks
    share it from L2, and each block reuses its A rows from L1 across its columns. A parallel
    problem is cut finer (more block columns) to at least BLOCKS_PER_THREAD blocks per
    thread, and runs as CHUNKS_PER_THREAD equal chunks of consecutive blocks per thread; a
    serial one as one chunk."""
    a_panels, b_panels, batch = layout["a_panels"], layout["b_panels"], layout["group"]
    m_blocks = _ceil_div(builder, a_panels, i64(tiles.mc // tiles.mr))
    panel_bytes = builder.mul(args["k"], i64(tiles.nr * DTYPE_BYTES[tiles.dtype]))
    fitting = builder.sdiv(i64(tiles.b_block_bytes), _at_least(builder, i64(1), panel_bytes))
    block_panels = _at_least(builder, i64(1), min_i64(builder, fitting, i64(tiles.nc // tiles.nr)))
    n_blocks = _ceil_div(builder, b_panels, block_panels)
    num_threads = declare(module, NUM_THREADS_SYMBOL, ir.FunctionType(I32, []))
    before = builder.block
    with builder.if_then(parallel):
        threads = builder.sext(builder.call(num_threads, []), I64)
        wanted = builder.mul(threads, i64(BLOCKS_PER_THREAD))
        per_column = builder.mul(batch, m_blocks)
        finer_n = _at_least(builder, n_blocks, min_i64(
            builder, b_panels, _ceil_div(builder, wanted, per_column)))
        finer_m = _at_least(builder, m_blocks, min_i64(
            builder, a_panels, _ceil_div(builder, wanted, builder.mul(batch, finer_n))))
        parallel_chunks = builder.mul(threads, i64(CHUNKS_PER_THREAD))
        inside = builder.block
    chosen_m = builder.phi(I64, "m_blocks")
    chosen_m.add_incoming(m_blocks, before)
    chosen_m.add_incoming(finer_m, inside)
    chosen_n = builder.phi(I64, "n_blocks")
    chosen_n.add_incoming(n_blocks, before)
    chosen_n.add_incoming(finer_n, inside)
    wanted_chunks = builder.phi(I64, "wanted_chunks")
    wanted_chunks.add_incoming(i64(1), before)
    wanted_chunks.add_incoming(parallel_chunks, inside)
    return {"m_blocks": chosen_m, "n_blocks": chosen_n, "wanted_chunks": wanted_chunks}


def _at_least(builder: ir.IRBuilder, floor: ir.Value, value: ir.Value) -> ir.Value:
    return builder.select(builder.icmp_signed("<", value, floor), floor, value)


def _emit_run(
    module: ir.Module,
    builder: ir.IRBuilder,
    parallel: ir.Value,
    task: ir.Function,
    context: ir.Value,
    count: ir.Value,
) -> None:
    parallel_for = declare(module, PARALLEL_FOR_SYMBOL, ir.FunctionType(VOID, [PTR, PTR, I64, I64]))
    with builder.if_else(parallel) as (then_threads, otherwise_serial):
        with then_threads:
            builder.call(parallel_for, [task, context, count, i64(1)])
        with otherwise_serial:
            builder.call(task, [context, i64(0), count])
