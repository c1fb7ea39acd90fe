"""What fusion knows about each `tc` op: how it reads its operands and what its body is.

`describe(op)` gives, for an op that can live inside a `kernel.generic`:

- a `Pointwise`: the value at result index `i` is a scalar function of `operand_k` at
  `operand_maps[k](i)`. Elementwise ops (identity maps), views (`broadcast_to`, `transpose`,
  `slice`, `reshape` that only inserts or removes size-1 dims: affine maps, no body op),
  splat constants, `iota` and `one_hot` (`kernel.index`), `dim_size`, empty-axis reductions;
- a `Reduction`: `sum/prod/max/min` over some axes, or `matmul` (a contraction): a domain of
  parallel then reduced dims, the maps of its inputs, a combiner and the accumulator dtype;
- None for everything else (gathers, scatters, argmax, concat, general reshapes, dense
  constants, calls, and the composite ops that `decompose` expands).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tensorc.ir.affine import AffineMap, index_var
from tensorc.ir.core import Elementwise, Operation, Value
from tensorc.ir.dialects import tc
from tensorc.ir.dims import DimExpr
from tensorc.ir.dtypes import DType
from tensorc.ir.typecheck import normalize_slice_bound
from tensorc.ir.types import TensorType

# ----- the scalar builder used to emit bodies (implemented in fusion_build) -----------------


class ScalarBuilder:
    """Creates rank-0 ops in a kernel block; see `fusion_build.BlockEmitter`."""

    def op(self, op_class: type[Operation], operands: Sequence[Value], dtype: DType,
           attributes: dict | None = None) -> Value:
        raise NotImplementedError

    def constant(self, value: float | int | bool, dtype: DType) -> Value:
        raise NotImplementedError

    def index(self, expr: DimExpr, dtype: DType) -> Value:
        """The affine expression `expr` of the loop indices, as a `dtype` scalar."""
        raise NotImplementedError

    def cast(self, value: Value, dtype: DType) -> Value:
        if value.type.dtype == dtype:
            return value
        return self.op(tc.CastOp, [value], dtype)


# `emit(builder, op, operand_scalars, demand)`: the op's scalar at the point where the kernel
# reads its result through `demand` (a map from the kernel's domain to the result's index).
Emit = Callable[[ScalarBuilder, Operation, list[Value], AffineMap], Value]


@dataclass
class Pointwise:
    op: Operation
    operand_maps: list[AffineMap]  # result index -> operand index
    emit: Emit
    weight: int = 1  # body ops emitted per use
    free: bool = False  # a view or a constant: duplicated into every consumer


@dataclass
class Reduction:
    """`result[result_map(p)] = finish(combine over r of reduce(operands at input_maps(p, r)))`
    over its own domain (parallel dims first); `input_maps[k]` reads `op.operands[k]` (by
    position: fusion may redirect an operand to a copy after describing the op)."""

    op: Operation
    domain: tuple[DimExpr, ...]
    num_parallel: int
    input_maps: list[AffineMap]
    result_map: AffineMap
    combiner: str
    accumulator: DType
    contraction: bool = False

    def reduce_scalar(self, builder: ScalarBuilder, scalars: list[Value]) -> Value:
        widened = [builder.cast(s, self.accumulator) for s in scalars]
        if self.contraction:
            return builder.op(tc.MulOp, widened, self.accumulator)
        return widened[0]

    def finish_scalar(self, builder: ScalarBuilder, accumulator: Value) -> Value:
        return builder.cast(accumulator, self.op.result.type.dtype)


# ----- pointwise emitters -------------------------------------------------------------------


def _same_op(builder: ScalarBuilder, op: Operation, scalars: list[Value], _: AffineMap) -> Value:
    return builder.op(type(op), scalars, op.result.type.dtype, dict(op.attributes))


def _identity(builder: ScalarBuilder, op: Operation, scalars: list[Value], _: AffineMap) -> Value:
    return scalars[0]


def _cast_to_result(builder: ScalarBuilder, op: Operation, scalars: list[Value], _: AffineMap):
    return builder.cast(scalars[0], op.result.type.dtype)


def _splat(builder: ScalarBuilder, op: Operation, scalars: list[Value], _: AffineMap) -> Value:
    return builder.constant(op.splat_value(), op.result.type.dtype)


def _iota(builder: ScalarBuilder, op: Operation, scalars: list[Value], demand: AffineMap):
    dtype = op.result.type.dtype
    index = builder.index(demand.results[0], dtype if dtype.is_int else DType.I64)
    return builder.cast(index, dtype)


def _one_hot(builder: ScalarBuilder, op: Operation, scalars: list[Value], demand: AffineMap):
    (label,) = scalars
    position = builder.index(demand.results[-1], label.type.dtype)
    hit = builder.op(tc.EqOp, [label, position], DType.BOOL)
    return builder.cast(hit, op.result.type.dtype)


# ----- operand maps -------------------------------------------------------------------------


def broadcast_map(source: TensorType, target: TensorType) -> AffineMap:
    """Result index of `broadcast_to(source -> target)` to source index."""
    offset = target.rank - source.rank
    dims: list[int | None] = []
    for axis, size in enumerate(source.shape):
        stretched = size == 1 and target.shape[offset + axis] != 1
        dims.append(None if stretched else offset + axis)
    return AffineMap.projection(target.rank, dims)


def transpose_map(perm: Sequence[int]) -> AffineMap:
    """Result axis i is operand axis perm[i], so operand index j is result index inv[j]."""
    inverse = [0] * len(perm)
    for result_axis, operand_axis in enumerate(perm):
        inverse[operand_axis] = result_axis
    return AffineMap.projection(len(perm), inverse)


def slice_start(size: DimExpr, start: int | DimExpr | None) -> DimExpr:
    """The first index `x[start::step]` reads on an axis of `size`: Python's normalisation,
    exactly as the type rules compute it (`typecheck.normalize_slice_bound`)."""
    bound = None if start is None else DimExpr.of(start)
    return normalize_slice_bound(size, bound, DimExpr.const(0), is_stop=False)


def slice_map(op: Operation) -> AffineMap | None:
    source = op.x.type
    results: list[DimExpr] = []
    for axis, (start, step) in enumerate(zip(op.starts, op.steps)):
        if not isinstance(step, int) or step <= 0:
            return None
        results.append(slice_start(source.shape[axis], start) + step * index_var(axis))
    return AffineMap(source.rank, tuple(results))


def unit_reshape_map(source: TensorType, target: TensorType) -> AffineMap | None:
    """For a reshape that only inserts or removes dims of size 1: result index to source
    index, or None for any other reshape.

    Dims not provably 1 must match in order, except that one side may have extra ones: the
    element counts agree, so those are 1 whenever the tensor is not empty (`x[:, 0]` gives a
    reshape of `[N, min(N, 1)]` to `[N]`).
    """
    source_axes = [a for a, d in enumerate(source.shape) if d != 1]
    target_axes = [a for a, d in enumerate(target.shape) if d != 1]
    if len(target_axes) <= len(source_axes):
        embedding = _embed(target.shape, target_axes, source.shape, source_axes)
        if embedding is None:
            return None
        dims: list[int | None] = [None] * source.rank
        for target_axis, source_axis in embedding.items():
            dims[source_axis] = target_axis
        return AffineMap.projection(target.rank, dims)
    embedding = _embed(source.shape, source_axes, target.shape, target_axes)
    if embedding is None:
        return None
    return AffineMap.projection(target.rank, [embedding.get(a) for a in range(source.rank)])


def _embed(
    short: Sequence[DimExpr], short_axes: list[int], long: Sequence[DimExpr], long_axes: list[int]
) -> dict[int, int] | None:
    """Match each of `short_axes` to a later and later one of `long_axes` of an equal size."""
    embedding: dict[int, int] = {}
    position = 0
    for axis in short_axes:
        while position < len(long_axes) and long[long_axes[position]] != short[axis]:
            position += 1
        if position == len(long_axes):
            return None
        embedding[axis] = long_axes[position]
        position += 1
    return embedding


# ----- classification -----------------------------------------------------------------------

_VIEW_NAMES = ("tc.broadcast_to", "tc.transpose", "tc.slice", "tc.reshape")
_COMBINERS = {"tc.sum": "add", "tc.prod": "mul", "tc.max": "max", "tc.min": "min"}


def describe(op: Operation) -> Pointwise | Reduction | None:
    if op.regions or len(op.results) != 1:
        return None
    result = op.result.type
    if op.name in _VIEW_NAMES:
        return _describe_view(op)
    if op.name == "tc.constant":
        if op.splat_value() is None:
            return None
        return Pointwise(op, [], _splat, free=True)
    if op.name == "tc.dim_size":
        return Pointwise(op, [], _same_op, free=True)
    if op.name == "tc.iota":
        return Pointwise(op, [], _iota, free=True)
    if op.name == "tc.one_hot":
        keep = AffineMap.projection(result.rank, list(range(result.rank - 1)))
        return Pointwise(op, [keep], _one_hot, weight=3)
    if op.name == "tc.stop_gradient":
        return Pointwise(op, [AffineMap.identity(result.rank)], _identity, weight=0)
    if op.name in _COMBINERS:
        return _describe_reduction(op)
    if op.name == "tc.matmul":
        return _describe_matmul(op)
    if op.name.startswith("tc.") and Elementwise in op.traits:
        maps = [AffineMap.identity(result.rank) for _ in op.operands]
        if any(v.type.rank != result.rank for v in op.operands):
            return None
        return Pointwise(op, maps, _same_op)
    return None


def _describe_view(op: Operation) -> Pointwise | None:
    source, target = op.x.type, op.result.type
    if op.name == "tc.broadcast_to":
        amap: AffineMap | None = broadcast_map(source, target)
    elif op.name == "tc.transpose":
        amap = transpose_map(op.perm)
    elif op.name == "tc.slice":
        amap = slice_map(op)
    else:
        amap = unit_reshape_map(source, target)
    if amap is None:
        return None
    return Pointwise(op, [amap], _identity, weight=0, free=True)


def accumulator_dtype(combiner: str, dtype: DType) -> DType:
    """Sums and products of bool count in i32; half precisions accumulate in f32."""
    if combiner in ("add", "mul") and dtype.is_bool:
        return DType.I32
    if combiner in ("add", "mul") and dtype in (DType.F16, DType.BF16):
        return DType.F32
    return dtype


def _describe_reduction(op: Operation) -> Pointwise | Reduction:
    source = op.x.type
    axes = list(op.axes)
    if not axes:
        return Pointwise(op, [AffineMap.identity(source.rank)], _cast_to_result, weight=1)
    parallel = [a for a in range(source.rank) if a not in axes]
    order = parallel + axes
    domain = tuple(source.shape[a] for a in order)
    input_map = AffineMap.projection(len(order), [order.index(a) for a in range(source.rank)])
    if op.keepdims:
        dims = [None if a in axes else parallel.index(a) for a in range(source.rank)]
    else:
        dims = list(range(len(parallel)))
    result_map = AffineMap.projection(len(order), dims)
    combiner = _COMBINERS[op.name]
    return Reduction(
        op=op,
        domain=domain,
        num_parallel=len(parallel),
        input_maps=[input_map],
        result_map=result_map,
        combiner=combiner,
        accumulator=accumulator_dtype(combiner, source.dtype),
    )


def _describe_matmul(op: Operation) -> Reduction | None:
    lhs, rhs = op.lhs.type, op.rhs.type
    if lhs.dtype.is_bool:
        return None
    batch = lhs.rank - 2
    domain = tuple(lhs.shape[:-1]) + (rhs.shape[-1], lhs.shape[-1])
    m, n, k = batch, batch + 1, batch + 2
    batch_dims = list(range(batch))
    return Reduction(
        op=op,
        domain=domain,
        num_parallel=batch + 2,
        input_maps=[
            AffineMap.projection(batch + 3, batch_dims + [m, k]),
            AffineMap.projection(batch + 3, batch_dims + [k, n]),
        ],
        result_map=AffineMap.projection(batch + 3, batch_dims + [m, n]),
        combiner="add",
        accumulator=accumulator_dtype("add", lhs.dtype),
        contraction=True,
    )
