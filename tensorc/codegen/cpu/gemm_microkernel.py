"""Target description, tile sizes, IR helpers and the register-blocked GEMM micro-kernels.

A micro-kernel computes one `rows x NR` tile of `C (+)= A * Bpanel` over `kc` steps of K:

- A is a packed panel `[k][MR]` (MR scalars per K step; a kernel for fewer rows reads the
  first `rows` of them), or ("direct") row-major A itself: row `r` at `a + r * a_row_stride`,
  unit stride along K. `Bpanel` is packed `[k][NR]`, NR = `vectors` SIMD vectors, aligned.
- The `rows x vectors` accumulators are SIMD vectors held as loop phis (LLVM keeps them in
  registers); each K step loads `vectors` B vectors, broadcasts one A scalar per row and
  issues `rows x vectors` fused multiply-adds (`llvm.fma`, or `fmul`+`fadd` with `contract`
  on a target without FMA, so no `fma` libcall is ever generated). The K loop is unrolled
  `unroll` times.
- The tile is stored to C (row stride `ldc`, any alignment) with plain vector stores, or with
  masked loads/stores (`llvm.masked.*`) when only `cols < NR` columns are valid; `accumulate`
  adds the tile to C instead of overwriting it (the K blocks after the first).

`emit_tile_kernel` emits one kernel per row count in `GemmTiles.row_pieces` (MR, then the
powers of two below it) and a dispatcher that covers any `1 <= rows <= MR` with them, so a
partial tile row never touches rows past the end of A or C.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import llvmlite.ir as ir

from tensorc.codegen.cpu.irutil import splat

I1 = ir.IntType(1)
I32 = ir.IntType(32)
I64 = ir.IntType(64)
PTR = ir.PointerType()
VOID = ir.VoidType()

DTYPE_BYTES = {"f32": 4, "f64": 8}
X86_ARCHES = ("x86_64", "amd64")
ARM64_ARCHES = ("aarch64", "arm64")


def check_dtype(dtype: str) -> None:
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"GEMM dtype must be 'f32' or 'f64', got {dtype!r}")


def scalar_type(dtype: str) -> ir.Type:
    check_dtype(dtype)
    return ir.FloatType() if dtype == "f32" else ir.DoubleType()


def i64(value: int) -> ir.Constant:
    return ir.Constant(I64, value)


# -- the target ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetInfo:
    """The SIMD shape the GEMM is generated for.

    `vector_bytes`: 64 (AVX-512), 32 (AVX/AVX2), 16 (SSE2, NEON, and the fallback for any other
    architecture: LLVM lowers vectors it cannot hold to what the target has). `has_fma`: use
    `llvm.fma` (otherwise `fmul`+`fadd`, so no FMA libcall is ever generated).
    `vector_registers`: architectural SIMD registers (32 with AVX-512 and on aarch64, else 16),
    which bounds the register tile.
    """

    arch: str = "x86_64"
    vector_bytes: int = 16
    has_fma: bool = False
    vector_registers: int = 16

    def __post_init__(self) -> None:
        if self.vector_bytes not in (16, 32, 64):
            raise ValueError(f"vector_bytes must be 16, 32 or 64, not {self.vector_bytes}")
        if self.vector_registers not in (16, 32):
            raise ValueError(f"vector_registers must be 16 or 32, not {self.vector_registers}")

    def lanes(self, dtype: str) -> int:
        check_dtype(dtype)
        return self.vector_bytes // DTYPE_BYTES[dtype]

    @classmethod
    def host(cls) -> TargetInfo:
        """This machine, from LLVM's view of the host CPU."""
        import llvmlite.binding as llvm

        llvm.initialize_native_target()
        features = llvm.get_host_cpu_features()
        enabled = [name for name, on in features.items() if on]
        return cls.from_features(llvm.get_process_triple(), enabled)

    @classmethod
    def from_features(cls, triple: str, features: Iterable[str]) -> TargetInfo:
        """From a target triple and CPU features: bare names or LLVM `+name`/`-name` items."""
        enabled, disabled = _split_features(features)
        arch = triple.split("-", 1)[0]
        if arch in ARM64_ARCHES:
            return cls(arch="aarch64", vector_bytes=16, has_fma=True, vector_registers=32)
        if arch not in X86_ARCHES:
            return cls(arch=arch, vector_bytes=16, has_fma=False, vector_registers=16)
        fma = "fma" in enabled or "avx512f" in enabled
        if "avx512f" in enabled and "evex512" not in disabled:
            return cls(arch="x86_64", vector_bytes=64, has_fma=True, vector_registers=32)
        if "avx" in enabled:
            return cls(arch="x86_64", vector_bytes=32, has_fma=fma, vector_registers=16)
        return cls(arch="x86_64", vector_bytes=16, has_fma=False, vector_registers=16)

    @classmethod
    def from_native_target(cls, target: Any) -> TargetInfo:
        """From a `tensorc.codegen.artifact.NativeTarget` (its triple, required features and
        LLVM feature string)."""
        features = [*target.required_features, *str(target.features).split(",")]
        return cls.from_features(target.triple, [f for f in features if f])


def _split_features(features: Iterable[str]) -> tuple[set[str], set[str]]:
    enabled: set[str] = set()
    disabled: set[str] = set()
    for item in features:
        name = item.strip()
        if name.startswith("-"):
            disabled.add(name[1:])
        elif name:
            enabled.add(name.lstrip("+"))
    return enabled - disabled, disabled


# -- tile sizes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class GemmTiles:
    """Blocking of one GEMM: an `mr x nr` register tile (`nr = vectors * lanes`), K blocks of
    `kc`, and C blocks (the unit of parallel work and of the epilogue) of `mc` rows and at
    most `nc` columns, fewer when the block's columns of packed B (all of K) would exceed
    `b_block_bytes` (they stay in L2 while the blocks below them run). `unroll`: K steps per
    iteration of the micro-kernel's loop. `direct_a`: read row-major A in place when its rows
    do not alias in L1 (`gemm.ALIASING_ROW_BYTES`); else A is always packed."""

    dtype: str
    lanes: int
    mr: int
    vectors: int
    kc: int
    mc: int
    nc: int
    b_block_bytes: int = 512 * 1024
    unroll: int = 4
    direct_a: bool = True

    def __post_init__(self) -> None:
        check_dtype(self.dtype)
        if min(self.lanes, self.mr, self.vectors, self.kc, self.unroll) < 1:
            raise ValueError(f"tile sizes must be positive: {self}")
        if self.mc < self.mr or self.nc < self.nr:
            raise ValueError(f"C blocks must hold at least one register tile: {self}")

    @property
    def nr(self) -> int:
        return self.vectors * self.lanes

    @property
    def row_pieces(self) -> tuple[int, ...]:
        """Row counts with their own kernel: MR, then the powers of two below it (descending)."""
        powers = []
        power = 1
        while power < self.mr:
            powers.append(power)
            power *= 2
        return (self.mr, *reversed(powers))


def choose_tiles(dtype: str, target: TargetInfo, **overrides: int) -> GemmTiles:
    """Tile sizes for `dtype` on `target`, with `overrides` of any field.

    Two vectors per tile row and as many rows as the registers allow: 14 x 2 accumulators
    plus 2 B vectors and a broadcast with 32 registers, 6 x 2 with 16. A K block keeps an A
    micro-panel in L1 (MR x KC: 28 KiB for f32 at KC 512, f64 at 256). Measured on AVX-512
    (Sapphire/Emerald Rapids); other targets scale the same way."""
    lanes = target.lanes(dtype)
    mr = 14 if target.vector_registers >= 32 else 6
    kc = 512 if dtype == "f32" else 256
    tiles = GemmTiles(dtype=dtype, lanes=lanes, mr=mr, vectors=2, kc=kc, mc=mr, nc=512)
    return replace(tiles, **overrides) if overrides else tiles


# -- IR helpers ------------------------------------------------------------------------------


def min_i64(builder: ir.IRBuilder, a: ir.Value, b: ir.Value) -> ir.Value:
    return builder.select(builder.icmp_signed("<", a, b), a, b)


def element_ptr(builder: ir.IRBuilder, base: ir.Value, index: ir.Value, etype: ir.Type) -> ir.Value:
    return builder.gep(base, [index], inbounds=True, source_etype=etype)


def declare(module: ir.Module, name: str, fnty: ir.FunctionType) -> ir.Function:
    existing = module.globals.get(name)
    if isinstance(existing, ir.Function):
        return existing
    return ir.Function(module, fnty, name=name)


def vector_suffix(vector: ir.VectorType) -> str:
    element = "f32" if isinstance(vector.element, ir.FloatType) else "f64"
    return f"v{vector.count}{element}"


def masked_load(module: ir.Module, vtype: ir.VectorType) -> ir.Function:
    """`llvm.masked.load` (ptr, i32 align, <n x i1> mask, passthru): the 4-operand form, which
    LLVM 22 still reads (it moves the alignment onto the pointer)."""
    mask = ir.VectorType(I1, vtype.count)
    return declare(module, f"llvm.masked.load.{vector_suffix(vtype)}.p0",
                   ir.FunctionType(vtype, [PTR, I32, mask, vtype]))


def masked_store(module: ir.Module, vtype: ir.VectorType) -> ir.Function:
    """`llvm.masked.store` (value, ptr, i32 align, <n x i1> mask), like `masked_load`."""
    mask = ir.VectorType(I1, vtype.count)
    return declare(module, f"llvm.masked.store.{vector_suffix(vtype)}.p0",
                   ir.FunctionType(VOID, [vtype, PTR, I32, mask]))


def internal_function(module: ir.Module, name: str, fnty: ir.FunctionType) -> ir.Function:
    function = ir.Function(module, fnty, name=name)
    function.linkage = "internal"
    function.attributes.add("nounwind")
    return function


# -- micro-kernels ---------------------------------------------------------------------------

TILE_ARGS = ("kc", "a", "a_row_stride", "b", "c", "ldc", "accumulate", "rows", "cols")
MICRO_ARGS = ("kc", "a", "a_row_stride", "b", "c", "ldc", "accumulate", "cols")


def tile_kernel_type() -> ir.FunctionType:
    """`void tile(i64 kc, ptr a, i64 a_row_stride, ptr b, ptr c, i64 ldc, i1 accumulate,
    i64 rows, i64 cols)`."""
    return ir.FunctionType(VOID, [I64, PTR, I64, PTR, PTR, I64, I1, I64, I64])


def emit_tile_kernel(
    module: ir.Module, prefix: str, tiles: GemmTiles, target: TargetInfo, packed_a: bool
) -> ir.Function:
    """The tile dispatcher `prefix.tile.packed` or `prefix.tile.direct` (`tile_kernel_type`)
    and its micro-kernels. Packed: `a` is an A panel (`a_row_stride` is ignored); direct: `a`
    is row-major A itself (row `r` at `a + r * a_row_stride`, unit stride along K)."""
    layout = "packed" if packed_a else "direct"
    kernels = {rows: _emit_micro_kernel(module, f"{prefix}.{layout}", tiles, target, rows,
                                        packed_a)
               for rows in tiles.row_pieces}
    function = internal_function(module, f"{prefix}.tile.{layout}", tile_kernel_type())
    for arg, name in zip(function.args, TILE_ARGS):
        arg.name = name
    kc, a, a_row_stride, b, c, ldc, accumulate, rows, cols = function.args
    builder = ir.IRBuilder(function.append_basic_block("entry"))
    full = builder.append_basic_block("full")
    partial = builder.append_basic_block("partial")
    builder.cbranch(builder.icmp_signed("==", rows, i64(tiles.mr)), full, partial)
    builder.position_at_end(full)
    builder.call(kernels[tiles.mr], [kc, a, a_row_stride, b, c, ldc, accumulate, cols])
    builder.ret_void()
    builder.position_at_end(partial)
    etype = scalar_type(tiles.dtype)
    for piece in tiles.row_pieces[1:]:
        present = builder.icmp_signed("!=", builder.and_(rows, i64(piece)), i64(0))
        with builder.if_then(present):
            first_row = builder.and_(rows, i64(~(2 * piece - 1)))
            a_offset = first_row if packed_a else builder.mul(first_row, a_row_stride)
            piece_a = element_ptr(builder, a, a_offset, etype)
            piece_c = element_ptr(builder, c, builder.mul(first_row, ldc), etype)
            builder.call(kernels[piece], [kc, piece_a, a_row_stride, b, piece_c, ldc,
                                          accumulate, cols])
    builder.ret_void()
    return function


@dataclass
class _MicroContext:
    builder: ir.IRBuilder
    tiles: GemmTiles
    target: TargetInfo
    rows: int
    etype: ir.Type
    vtype: ir.VectorType
    fma: ir.Function | None
    a_rows: list[ir.Value]  # the start of each row of A
    a_k_stride: int


def _emit_micro_kernel(
    module: ir.Module,
    prefix: str,
    tiles: GemmTiles,
    target: TargetInfo,
    rows: int,
    packed_a: bool,
) -> ir.Function:
    """`void micro(i64 kc, ptr a, i64 a_row_stride, ptr b, ptr c, i64 ldc, i1 accumulate,
    i64 cols)` for `rows` rows."""
    etype = scalar_type(tiles.dtype)
    vtype = ir.VectorType(etype, tiles.lanes)
    fnty = ir.FunctionType(VOID, [I64, PTR, I64, PTR, PTR, I64, I1, I64])
    function = internal_function(module, f"{prefix}.micro{rows}", fnty)
    function.attributes.add("noinline")
    for arg, name in zip(function.args, MICRO_ARGS):
        arg.name = name
    kc, a, a_row_stride, b, c, ldc, accumulate, cols = function.args
    for pointer in (a, b, c):
        pointer.add_attribute("noalias")
    fma = None
    if target.has_fma:
        fma_type = ir.FunctionType(vtype, [vtype] * 3)
        fma = declare(module, f"llvm.fma.{vector_suffix(vtype)}", fma_type)
    builder = ir.IRBuilder(function.append_basic_block("entry"))
    if packed_a:
        a_rows = [element_ptr(builder, a, i64(r), etype) for r in range(rows)]
    else:
        a_rows = [element_ptr(builder, a, builder.mul(i64(r), a_row_stride), etype)
                  for r in range(rows)]
    a_k_stride = tiles.mr if packed_a else 1
    context = _MicroContext(builder, tiles, target, rows, etype, vtype, fma, a_rows, a_k_stride)
    accumulators = _emit_k_loops(context, kc, b)
    _emit_store(context, module, accumulators, c, ldc, accumulate, cols)
    return function


def _emit_k_loops(context: _MicroContext, kc: ir.Value, b: ir.Value) -> list[list[ir.Value]]:
    """The unrolled main K loop, then the remainder loop; returns the final accumulators."""
    builder, tiles = context.builder, context.tiles
    zero = ir.Constant(context.vtype, None)
    initial = [[zero] * tiles.vectors for _ in range(context.rows)]
    main_stop = builder.and_(kc, i64(-tiles.unroll)) if _is_power_of_two(tiles.unroll) else (
        builder.mul(builder.sdiv(kc, i64(tiles.unroll)), i64(tiles.unroll)))
    entry = builder.block
    k_main, after_main = _emit_accumulating_loop(
        context, "k.main", entry, i64(0), main_stop, initial, tiles.unroll, b
    )
    _, final = _emit_accumulating_loop(
        context, "k.rest", builder.block, k_main, kc, after_main, 1, b
    )
    return final


def _emit_accumulating_loop(
    context: _MicroContext,
    name: str,
    before: ir.Block,
    start: ir.Value,
    stop: ir.Value,
    accumulators: list[list[ir.Value]],
    steps: int,
    b: ir.Value,
) -> tuple[ir.Value, list[list[ir.Value]]]:
    """A K loop with the accumulators as phis; returns (the exit k, the exit accumulators)."""
    builder = context.builder
    header = builder.append_basic_block(f"{name}.header")
    body = builder.append_basic_block(f"{name}.body")
    done = builder.append_basic_block(f"{name}.done")
    builder.branch(header)
    builder.position_at_end(header)
    k = builder.phi(I64, f"{name}.k")
    k.add_incoming(start, before)
    phis = [[builder.phi(context.vtype) for _ in row] for row in accumulators]
    for phi_row, value_row in zip(phis, accumulators):
        for phi, value in zip(phi_row, value_row):
            phi.add_incoming(value, before)
    builder.cbranch(builder.icmp_signed("<", k, stop), body, done)
    builder.position_at_end(body)
    updated: list[list[ir.Value]] = [list(row) for row in phis]
    for step in range(steps):
        step_k = builder.add(k, i64(step), flags=("nsw",)) if step else k
        updated = _emit_k_step(context, step_k, b, updated)
    next_k = builder.add(k, i64(steps), flags=("nsw",))
    k.add_incoming(next_k, builder.block)
    for phi_row, value_row in zip(phis, updated):
        for phi, value in zip(phi_row, value_row):
            phi.add_incoming(value, builder.block)
    builder.branch(header)
    builder.position_at_end(done)
    return k, [list(row) for row in phis]


def _emit_k_step(
    context: _MicroContext,
    k: ir.Value,
    b: ir.Value,
    accumulators: list[list[ir.Value]],
) -> list[list[ir.Value]]:
    builder, tiles, vtype = context.builder, context.tiles, context.vtype
    vector_align = tiles.lanes * DTYPE_BYTES[tiles.dtype]
    b_row = builder.mul(k, i64(tiles.nr))
    b_vectors = []
    for v in range(tiles.vectors):
        index = builder.add(b_row, i64(v * tiles.lanes))
        pointer = element_ptr(builder, b, index, context.etype)
        b_vectors.append(builder.load(pointer, typ=vtype, align=vector_align))
    a_offset = builder.mul(k, i64(context.a_k_stride)) if context.a_k_stride != 1 else k
    result = []
    for row, a_row in zip(accumulators, context.a_rows):
        pointer = element_ptr(builder, a_row, a_offset, context.etype)
        broadcast = splat(builder, builder.load(pointer, typ=context.etype), vtype)
        result.append([_multiply_add(context, broadcast, bv, acc)
                       for bv, acc in zip(b_vectors, row)])
    return result


def _multiply_add(context: _MicroContext, x: ir.Value, y: ir.Value, z: ir.Value) -> ir.Value:
    builder = context.builder
    if context.fma is not None:
        return builder.call(context.fma, [x, y, z])
    product = builder.fmul(x, y, flags=("contract",))
    return builder.fadd(product, z, flags=("contract",))


def _emit_store(
    context: _MicroContext,
    module: ir.Module,
    accumulators: list[list[ir.Value]],
    c: ir.Value,
    ldc: ir.Value,
    accumulate: ir.Value,
    cols: ir.Value,
) -> None:
    """Four exits: full or masked columns, times overwrite or accumulate."""
    builder, tiles = context.builder, context.tiles
    full_columns = builder.icmp_signed("==", cols, i64(tiles.nr))
    blocks = {
        (masked, adding): builder.append_basic_block(
            f"store.{'masked' if masked else 'full'}.{'add' if adding else 'set'}"
        )
        for masked in (False, True)
        for adding in (False, True)
    }
    full_block = builder.append_basic_block("store.full")
    masked_block = builder.append_basic_block("store.masked")
    builder.cbranch(full_columns, full_block, masked_block)
    for masked, block in ((False, full_block), (True, masked_block)):
        builder.position_at_end(block)
        builder.cbranch(accumulate, blocks[(masked, True)], blocks[(masked, False)])
    for (masked, adding), block in blocks.items():
        builder.position_at_end(block)
        masks = _column_masks(context, cols) if masked else None
        _store_tile(context, module, accumulators, c, ldc, adding, masks)
        builder.ret_void()


def _column_masks(context: _MicroContext, cols: ir.Value) -> list[ir.Value]:
    builder, tiles = context.builder, context.tiles
    mask_type = ir.VectorType(I32, tiles.lanes)
    limit = splat(builder, builder.trunc(cols, I32), mask_type)
    masks = []
    for v in range(tiles.vectors):
        lanes = ir.Constant(mask_type, [v * tiles.lanes + lane for lane in range(tiles.lanes)])
        masks.append(builder.icmp_signed("<", lanes, limit))
    return masks


def _store_tile(
    context: _MicroContext,
    module: ir.Module,
    accumulators: list[list[ir.Value]],
    c: ir.Value,
    ldc: ir.Value,
    adding: bool,
    masks: list[ir.Value] | None,
) -> None:
    builder, tiles = context.builder, context.tiles
    for r, row in enumerate(accumulators):
        row_start = builder.mul(i64(r), ldc)
        for v, value in enumerate(row):
            index = builder.add(row_start, i64(v * tiles.lanes))
            pointer = element_ptr(builder, c, index, context.etype)
            mask = masks[v] if masks is not None else None
            if adding:
                old = _load_c(context, module, pointer, mask)
                value = builder.fadd(old, value)
            _store_c(context, module, value, pointer, mask)


def _load_c(
    context: _MicroContext, module: ir.Module, pointer: ir.Value, mask: ir.Value | None
) -> ir.Value:
    builder, vtype = context.builder, context.vtype
    align = DTYPE_BYTES[context.tiles.dtype]
    if mask is None:
        return builder.load(pointer, typ=vtype, align=align)
    return builder.call(masked_load(module, vtype), [pointer, ir.Constant(I32, align), mask,
                                                     ir.Constant(vtype, None)])


def _store_c(
    context: _MicroContext,
    module: ir.Module,
    value: ir.Value,
    pointer: ir.Value,
    mask: ir.Value | None,
) -> None:
    builder, vtype = context.builder, context.vtype
    align = DTYPE_BYTES[context.tiles.dtype]
    if mask is None:
        builder.store(value, pointer, align=align)
        return
    builder.call(masked_store(module, vtype), [value, pointer, ir.Constant(I32, align), mask])


def _is_power_of_two(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0
