"""Shape and dtype rules shared by op verifiers, type inference and the frontend.

Sizes are symbolic, so two dimensions are *compatible* when they are equal or cannot be
proven different (`N` and `M`); the frontend records a call-time check for the latter.
"""

from __future__ import annotations

from collections.abc import Sequence

from tensorc.ir.dims import DimExpr, dim_max, dim_min, sign_of
from tensorc.ir.types import TensorType


class ShapeError(ValueError):
    """Shapes that cannot agree; the message names both."""


def dims_compatible(a: DimExpr, b: DimExpr) -> bool:
    delta = (a - b).value
    return delta is None or delta == 0


def provably_equal(a: DimExpr, b: DimExpr) -> bool:
    return a == b


def shapes_compatible(a: Sequence[DimExpr], b: Sequence[DimExpr]) -> bool:
    return len(a) == len(b) and all(dims_compatible(x, y) for x, y in zip(a, b))


def types_compatible(a: TensorType, b: TensorType) -> bool:
    return a.dtype == b.dtype and shapes_compatible(a.shape, b.shape)


def format_shape(shape: Sequence[DimExpr]) -> str:
    return f"[{', '.join(str(d) for d in shape)}]"


def broadcast_shapes(
    a: Sequence[DimExpr], b: Sequence[DimExpr]
) -> tuple[tuple[DimExpr, ...], list[tuple[DimExpr, DimExpr]]]:
    """NumPy broadcasting of two shapes. Returns the result and the pairs of dimensions that
    must be equal at call time (symbolic, not provably equal). Raises ShapeError."""
    rank = max(len(a), len(b))
    padded_a = [DimExpr.const(1)] * (rank - len(a)) + list(a)
    padded_b = [DimExpr.const(1)] * (rank - len(b)) + list(b)
    result: list[DimExpr] = []
    deferred: list[tuple[DimExpr, DimExpr]] = []
    for x, y in zip(padded_a, padded_b):
        if x == y or y == 1:
            result.append(x)
        elif x == 1:
            result.append(y)
        elif dims_compatible(x, y):
            result.append(x)
            deferred.append((x, y))
        else:
            raise ShapeError(
                f"shapes {format_shape(a)} and {format_shape(b)} cannot be broadcast together"
            )
    return tuple(result), deferred


def can_broadcast_to(source: Sequence[DimExpr], target: Sequence[DimExpr]) -> bool:
    if len(source) > len(target):
        return False
    offset = len(target) - len(source)
    return all(s == 1 or dims_compatible(s, t) for s, t in zip(source, target[offset:]))


def normalize_axis(axis: int, rank: int) -> int:
    if not -rank <= axis < max(rank, 1) or (rank == 0 and axis not in (0, -1)):
        raise ShapeError(f"axis {axis} is out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def reduce_shape(shape: Sequence[DimExpr], axes: Sequence[int], keepdims: bool) -> tuple:
    if keepdims:
        return tuple(DimExpr.const(1) if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def slice_extent(
    dim: DimExpr, start: DimExpr | None, stop: DimExpr | None, step: int
) -> DimExpr:
    """Length of `x[start:stop:step]` along an axis of size `dim`, with Python's clamping.

    Constant bounds on a symbolic axis assume the axis is long enough and rely on the
    clamp-at-zero rule for dimension values (so `x[1:]` is `N - 1`); negative constant bounds
    count from the end and are clamped explicitly.
    """
    begin = normalize_slice_bound(dim, start, DimExpr.const(0), is_stop=False)
    end = normalize_slice_bound(dim, stop, dim, is_stop=True)
    length = end - begin
    if step != 1:
        length = (length + (step - 1)) // step
    static = length.value
    if static is not None:
        return DimExpr.const(max(static, 0))
    return _drop_outer_clamp(length)


def _drop_outer_clamp(length: DimExpr) -> DimExpr:
    """`max(e, 0)` as a whole dimension is `e`: dimension values are clamped at zero anyway."""
    if len(length.terms) != 1 or length.terms[0][1] != 1 or len(length.terms[0][0]) != 1:
        return length
    atom = length.terms[0][0][0]
    if isinstance(atom, str) or atom.kind != "max" or len(atom.args) != 2:
        return length
    rest = [a for a in atom.args if a != 0]
    return rest[0] if len(rest) == 1 else length


def normalize_slice_bound(
    dim: DimExpr, bound: DimExpr | None, default: DimExpr, is_stop: bool
) -> DimExpr:
    """Python's normalisation of a slice bound on an axis of size `dim`: a negative bound counts
    from the end, then the result is clamped to [0, dim]."""
    if bound is None:
        return default
    value = bound.value
    size = dim.value
    if size is not None and value is not None:
        resolved = value + size if value < 0 else value
        return DimExpr.const(min(max(resolved, 0), size))
    sign = sign_of(bound)
    if sign == "negative":
        return dim_max(dim + bound, 0)
    if sign in ("positive", "nonnegative"):
        if value is not None and not is_stop:
            # A constant start past a short axis makes the length negative, which the clamp
            # at zero of dimension values turns into an empty axis.
            return bound
        return dim_min(bound, dim)
    # Sign unknown until the call: wrap when negative, using [b < 0] = -(b // (|b| + 1)).
    is_negative = -(bound // (dim_max(bound, -bound) + 1))
    return dim_min(dim_max(bound + dim * is_negative, 0), dim)
