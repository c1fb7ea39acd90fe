"""Compile-time shape arithmetic of the frontend: axes, `reshape`'s `-1`, element counts."""

from __future__ import annotations

from collections.abc import Sequence

from tensorc.frontend.values import SemaError
from tensorc.ir.dims import DimExpr, prod
from tensorc.ir.location import Location
from tensorc.ir.typecheck import format_shape
from tensorc.ir.types import TensorType

Shape = tuple[DimExpr, ...]


def normalize_axis(axis: int, rank: int, loc: Location | None, subject: str) -> int:
    """`axis` in [-rank, rank) as a non-negative axis; `subject` describes the tensor."""
    if not -rank <= axis < rank:
        if rank == 0:
            raise SemaError(f"axis {axis} is out of range for {subject}, which has no axes", loc)
        raise SemaError(
            f"axis {axis} is out of range for {subject} of rank {rank} "
            f"(expected {-rank} <= axis < {rank})",
            loc,
        )
    return axis + rank if axis < 0 else axis


def normalize_axes(
    axes: Sequence[tuple[int, Location | None]], rank: int, subject: str
) -> list[int]:
    """Distinct, sorted, non-negative axes; each axis comes with where it was written."""
    seen: dict[int, int] = {}
    for axis, loc in axes:
        normalized = normalize_axis(axis, rank, loc, subject)
        if normalized in seen:
            raise SemaError(f"axis {axis} is repeated (it is axis {normalized})", loc)
        seen[normalized] = axis
    return sorted(seen)


def describe(type_: TensorType) -> str:
    return "a scalar " + str(type_) if type_.is_scalar else str(type_)


def quotient(total: Sequence[DimExpr], known: Sequence[DimExpr]) -> DimExpr:
    """prod(total) // prod(known), cancelling equal factors first so that `[N, 784]` reshaped to
    `[N, -1]` gives `784`, not `(784*N) // N`."""
    remaining = list(total)
    divisor: list[DimExpr] = []
    for factor in known:
        if factor in remaining:
            remaining.remove(factor)
        else:
            divisor.append(factor)
    numerator, denominator = prod(remaining), prod(divisor)
    exact = _divide_by_monomial(numerator, denominator)
    return exact if exact is not None else numerator // denominator


def _divide_by_monomial(numerator: DimExpr, denominator: DimExpr) -> DimExpr | None:
    """The exact polynomial quotient when the denominator is `c * atoms` dividing every term."""
    if len(denominator.terms) != 1:
        return None
    atoms, coeff = denominator.terms[0]
    if coeff == 0:
        return None
    result: dict = {}
    for monomial, term_coeff in numerator.terms:
        rest = list(monomial)
        for atom in atoms:
            if atom not in rest:
                return None
            rest.remove(atom)
        if term_coeff % coeff != 0:
            return None
        result[tuple(rest)] = term_coeff // coeff
    return DimExpr(result)


def resolve_reshape(
    source: Shape, target: Sequence[tuple[DimExpr, Location | None]], loc: Location | None
) -> tuple[Shape, DimExpr | None]:
    """The target shape of `reshape` with its `-1` resolved. Returns the shape, and the element
    count that must hold at call time (None when it is proven)."""
    holes = [index for index, (dim, _) in enumerate(target) if dim == -1]
    for dim, dim_loc in target:
        if dim != -1 and dim.value is not None and dim.value < 0:
            raise SemaError(f"a dimension of reshape's shape must be >= 0 or -1, found {dim}",
                            dim_loc)
    if len(holes) > 1:
        raise SemaError("reshape's shape can have only one -1", target[holes[1]][1])
    dims = [dim for dim, _ in target]
    total = prod(source)
    if holes:
        known = [dim for index, dim in enumerate(dims) if index != holes[0]]
        known_count = prod(known)
        if known_count == 0:
            raise SemaError("reshape cannot infer -1 when another dimension is 0",
                            target[holes[0]][1])
        if total.value is not None and known_count.value is not None \
                and total.value % known_count.value != 0:
            raise SemaError(
                f"cannot reshape {format_shape(source)} ({total.value} elements) into "
                f"{format_target(dims)}: {total.value} is not a multiple of {known_count.value}",
                loc,
            )
        dims[holes[0]] = quotient(source, known)
    result = tuple(dims)
    count = prod(result)
    if count == total:
        return result, None
    if (count - total).value is not None:
        raise SemaError(
            f"cannot reshape {format_shape(source)} ({total} elements) into "
            f"{format_target(result)} ({count} elements)",
            loc,
        )
    return result, count


def format_target(dims: Sequence[DimExpr]) -> str:
    return format_shape(dims)
