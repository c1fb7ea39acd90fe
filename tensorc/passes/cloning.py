"""Cloning ops, with their regions, under a renaming of values and of symbolic dimensions.

    value_map = {callee_arg: call_operand for ...}
    new_ops = clone_ops(callee.body.ops[:-1], value_map, builder, {"N": DimExpr.sym("B")})

`value_map` maps old values to new ones and is extended with every cloned result, so that
after the call it also says where each old result went. A value that is not in the map (one
defined outside the cloned ops) is used as it is. With a `dim_substitution`, every type and
every dimension-valued attribute of the clones (DimExpr, types, shape constraints, affine
maps, nested lists: any frozen dataclass holding them) has its symbols replaced. Locations
and value names are kept.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from tensorc.ir.attributes import ShapeConstraint
from tensorc.ir.builder import Builder
from tensorc.ir.core import Block, Operation, Region, Value
from tensorc.ir.dims import DimExpr
from tensorc.ir.types import TensorType

DimSubstitution = Mapping[str, DimExpr]


def substitute_type(tensor_type: TensorType, substitution: DimSubstitution | None) -> TensorType:
    """`tensor_type` with `substitution` applied to each of its dimensions."""
    if not substitution or not (tensor_type.symbols & substitution.keys()):
        return tensor_type
    return TensorType(
        tensor_type.dtype, tuple(d.substitute(substitution) for d in tensor_type.shape)
    )


def substitute_dim(dim: DimExpr, substitution: DimSubstitution | None) -> DimExpr:
    if not substitution or not (dim.symbols & substitution.keys()):
        return dim
    return dim.substitute(substitution)


def substitute_constraint(
    constraint: ShapeConstraint, substitution: DimSubstitution | None
) -> ShapeConstraint:
    return ShapeConstraint(
        constraint.kind,
        substitute_dim(constraint.lhs, substitution),
        substitute_dim(constraint.rhs, substitution),
        constraint.error,
        constraint.message,
    )


def substitute_attr(value: Any, substitution: DimSubstitution | None) -> Any:
    """An attribute value with the symbols of every dimension in it substituted."""
    if not substitution:
        return value
    if isinstance(value, DimExpr):
        return substitute_dim(value, substitution)
    if isinstance(value, TensorType):
        return substitute_type(value, substitution)
    if isinstance(value, list):
        return [substitute_attr(item, substitution) for item in value]
    if isinstance(value, tuple):
        return tuple(substitute_attr(item, substitution) for item in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # FunctionType, ShapeConstraint, AffineMap...: frozen dataclasses of dims and types
        changes = {
            field.name: substitute_attr(getattr(value, field.name), substitution)
            for field in dataclasses.fields(value)
            if field.init
        }
        return dataclasses.replace(value, **changes)
    return value


def clone_op(
    op: Operation,
    value_map: dict[Value, Value],
    dim_substitution: DimSubstitution | None = None,
) -> Operation:
    """A detached copy of `op` (regions included); records its results in `value_map`."""
    operands = [value_map.get(operand, operand) for operand in op.operands]
    result_types = [substitute_type(r.type, dim_substitution) for r in op.results]
    attributes = {k: substitute_attr(v, dim_substitution) for k, v in op.attributes.items()}
    regions = [_clone_region(region, value_map, dim_substitution) for region in op.regions]
    clone = type(op)(operands, result_types, attributes, regions=regions, loc=op.loc)
    for old, new in zip(op.results, clone.results):
        new.name_hint = old.name_hint
        value_map[old] = new
    return clone


def _clone_region(
    region: Region, value_map: dict[Value, Value], dim_substitution: DimSubstitution | None
) -> Region:
    clone = Region()
    for block in region.blocks:
        new_block = Block(
            [substitute_type(a.type, dim_substitution) for a in block.args],
            [a.name_hint for a in block.args],
        )
        for old_arg, new_arg in zip(block.args, new_block.args):
            value_map[old_arg] = new_arg
        clone_ops(block.ops, value_map, Builder.at_end(new_block), dim_substitution)
        clone.add_block(new_block)
    return clone


def clone_ops(
    ops: Iterable[Operation],
    value_map: dict[Value, Value],
    builder: Builder,
    dim_substitution: DimSubstitution | None = None,
) -> list[Operation]:
    """Clone `ops` in order, inserting each clone with `builder`; returns the clones.

    Operands are looked up in `value_map` (falling back to the operand itself), and every
    cloned result is added to it. Inserting with a builder before an anchor op is linear in
    the block's length per op; to clone many ops into a long block, build into a fresh
    `Block` with `Builder.at_end` and splice its ops in once.
    """
    clones: list[Operation] = []
    for op in ops:
        clone = clone_op(op, value_map, dim_substitution)
        builder.insert(clone)
        clones.append(clone)
    return clones
