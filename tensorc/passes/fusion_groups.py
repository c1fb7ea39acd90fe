"""Fusion groups: which ops become one `kernel.generic`, and on what iteration domain.

A group grows from its *root* (the op whose value leaves the group) towards its producers,
visiting a block's ops last to first. An op joins the group of its users when all of its users
are in that one group and the join is legal; otherwise it roots a group of its own. So every
member but the root is used only inside its group, a group's output is its root's value, and
no group can both feed and consume an outside op (its members are all ancestors of the root,
which comes last): fusion never creates a cycle. Work is linear in the number of ops (times
the number of distinct access maps of a value, bounded by `max_ops`).

The group keeps, for every value it reads or computes, its *demands*: the affine maps from the
group's domain to that value's index space at which the kernel needs the value, and the block
(`reduce` or `compute`) that needs it. A member's demands come from its users' demands through
the users' operand maps, so they are final when the member is visited.

Joining rules:
- a pointwise op joins at all of its demands (a value read at two maps is computed twice);
  never into the reduce block of a contraction, whose form the backends rely on;
- a reduction joins a group without a reduction when the group reads it at one map that sends
  the group's dims onto the reduction's parallel dims (dims of size 1 may vanish). Group dims
  left over must match the reduction dims one to one with equal sizes: then the group becomes
  a *row epilogue* (the reduced dims are re-iterated after the accumulation), else a
  *parallel epilogue*. Either way the group's maps are renamed onto the reduction's domain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tensorc.ir.affine import AffineMap, index_var, linear_form
from tensorc.ir.core import Operation, Value
from tensorc.ir.dims import DimExpr
from tensorc.passes.fusion_ops import Pointwise, Reduction

REDUCE = "reduce"
COMPUTE = "compute"


@dataclass(frozen=True)
class Demand:
    """The group reads or computes a value at `amap` (group domain -> value index) in the
    `reduce` or `compute` block."""

    amap: AffineMap
    block: str


class Group:
    """Ops that will form one kernel; see the module documentation."""

    def __init__(self, root: Operation, info: Pointwise | Reduction) -> None:
        self.root = root
        self.members: list[Operation] = []
        self.infos: dict[int, Pointwise | Reduction] = {}
        self.demands: dict[int, list[Demand]] = {}
        self.reduction: Reduction | None = None
        self.cost = 0
        if isinstance(info, Reduction):
            self.domain = tuple(info.domain)
            self.num_parallel = info.num_parallel
            self.reduction = info
            self._demand(root.result, Demand(info.result_map, COMPUTE))
            self.cost = 1
        else:
            self.domain = tuple(root.result.type.shape)
            self.num_parallel = len(self.domain)
            self._demand(root.result, Demand(AffineMap.identity(len(self.domain)), COMPUTE))
            self.cost = info.weight
        self._admit(root, info)

    # ----- queries --------------------------------------------------------------------------
    def demands_of(self, value: Value) -> list[Demand]:
        return self.demands.get(id(value), [])

    @property
    def output_map(self) -> AffineMap:
        (demand,) = self.demands_of(self.root.result)
        return demand.amap

    def is_member(self, value: Value) -> bool:
        owner = value.owner
        return isinstance(owner, Operation) and id(owner) in self.infos

    def reads(self) -> list[tuple[Value, AffineMap]]:
        """The (outside value, map) pairs the kernel reads, in a stable order."""
        pairs: list[tuple[Value, AffineMap]] = []
        seen: set[tuple[int, AffineMap]] = set()
        for op in reversed(self.members):
            for operand in op.operands:
                if self.is_member(operand):
                    continue
                for demand in self.demands_of(operand):
                    key = (id(operand), demand.amap)
                    if key not in seen:
                        seen.add(key)
                        pairs.append((operand, demand.amap))
        return pairs

    # ----- growth ---------------------------------------------------------------------------
    def try_add(self, op: Operation, info: Pointwise | Reduction, max_ops: int) -> bool:
        """Add producer `op` (all of whose users are members) if that is legal."""
        demands = self.demands_of(op.result)
        if not demands:
            return False
        if isinstance(info, Reduction):
            return self._try_add_reduction(op, info, demands, max_ops)
        if self.reduction is not None and self.reduction.contraction:
            if not _keeps_contraction(op, info, demands):
                return False
        cost = info.weight * len(demands)
        if self.cost + cost > max_ops:
            return False
        self.cost += cost
        self._admit(op, info)
        return True

    def _try_add_reduction(
        self, op: Operation, info: Reduction, demands: list[Demand], max_ops: int
    ) -> bool:
        if self.reduction is not None or self.cost + 2 > max_ops:
            return False
        maps = {d.amap for d in demands}
        if len(maps) != 1:
            return False
        renaming = self._renaming_onto(maps.pop(), info)
        if renaming is None:
            return False
        onto = AffineMap(len(info.domain), tuple(renaming[d] for d in range(len(self.domain))))
        for key, entries in self.demands.items():
            renamed = [Demand(d.amap.compose(onto), d.block) for d in entries]
            self.demands[key] = list(dict.fromkeys(renamed))
        self.domain = tuple(info.domain)
        self.num_parallel = info.num_parallel
        self.reduction = info
        self.cost += 2
        self._admit(op, info)
        return True

    def _renaming_onto(self, read: AffineMap, info: Reduction) -> dict[int, DimExpr] | None:
        """Each group dim as a dim of the reduction's domain (or 0 for a dim of size 1), when
        the group reads the reduction's result through `read`; None when it cannot."""
        renaming: dict[int, DimExpr] = {}
        for read_result, own_result in zip(read.results, info.result_map.results):
            parallel_dim = linear_form(own_result).single_dim
            group_dim = linear_form(read_result).single_dim
            if parallel_dim is None:  # a kept reduced axis, of size 1
                if read_result == 0:
                    continue
                if group_dim is None or self.domain[group_dim] != 1:
                    return None
                renaming.setdefault(group_dim, DimExpr.const(0))
                continue
            if group_dim is None or group_dim in renaming:
                return None
            if self.domain[group_dim] != info.domain[parallel_dim]:
                return None
            renaming[group_dim] = index_var(parallel_dim)
        leftover: list[int] = []
        for dim, size in enumerate(self.domain):
            if dim in renaming:
                continue
            if size == 1:
                renaming[dim] = DimExpr.const(0)
            else:
                leftover.append(dim)
        if not leftover:
            return renaming
        reduction_dims = list(range(info.num_parallel, len(info.domain)))
        if info.contraction or len(leftover) != len(reduction_dims):
            return None
        for dim in leftover:
            match = next((r for r in reduction_dims if info.domain[r] == self.domain[dim]), None)
            if match is None:
                return None
            reduction_dims.remove(match)
            renaming[dim] = index_var(match)
        return renaming

    def _admit(self, op: Operation, info: Pointwise | Reduction) -> None:
        self.members.append(op)
        self.infos[id(op)] = info
        if isinstance(info, Reduction):
            for operand, amap in zip(op.operands, info.input_maps):
                self._demand(operand, Demand(amap, REDUCE))
            return
        for operand, operand_map in zip(op.operands, info.operand_maps):
            for demand in list(self.demands_of(op.result)):
                self._demand(operand, Demand(operand_map.compose(demand.amap), demand.block))

    def _demand(self, value: Value, demand: Demand) -> None:
        entries = self.demands.setdefault(id(value), [])
        if demand not in entries:
            entries.append(demand)


def _keeps_contraction(op: Operation, info: Pointwise, demands: list[Demand]) -> bool:
    """Whether `op` may join a contraction's group: not at all into its reduce block, except
    a view that keeps each operand map a contraction operand map (the last two dims swapped
    or not, batch dims in place or broadcast), as a transposed or shared weight is."""
    for demand in demands:
        if demand.block != REDUCE:
            continue
        if not info.free or info.weight != 0 or len(info.operand_maps) != 1:
            return False
        read = info.operand_maps[0].compose(demand.amap)
        wanted, got = demand.amap.results, read.results
        if len(got) < 2 or len(got) > len(wanted):
            return False
        if set(got[-2:]) != set(wanted[-2:]) or len(set(got[-2:])) != 2:
            return False
        batch = len(got) - 2
        source = op.operands[0].type.shape
        for axis, result in enumerate(got[:batch]):
            aligned = wanted[len(wanted) - 2 - batch + axis]
            if result != aligned and not (result == 0 and source[axis] == 1):
                return False
    return True


def form_groups(
    ops: list[Operation],
    describe: Callable[[Operation], Pointwise | Reduction | None],
    max_ops: int,
) -> list[Group]:
    """Partition the fusable ops among `ops` (a block's, in order) into groups."""
    group_of: dict[int, Group] = {}
    groups: list[Group] = []
    for op in reversed(ops):
        info = describe(op)
        if info is None:
            continue
        users = op.result.users()
        if not users:
            continue
        target = group_of.get(id(users[0]))
        if target is not None and all(group_of.get(id(u)) is target for u in users):
            if target.try_add(op, info, max_ops):
                group_of[id(op)] = target
                continue
        group = Group(op, info)
        group_of[id(op)] = group
        groups.append(group)
    return groups
