"""The `kernel` dialect: fused loop nests, the interface between tensors and the backends.

kernel.generic
--------------
    %out = kernel.generic %in0, %in1 {domain = [...], iterators = [...], input_maps = [...],
                                      output_maps = [...], reductions = [...]}
             : (T0, T1) -> R {
    ^bb0(%a: t0, %b: t1):             // the `reduce` block: one scalar per input
      ...; kernel.yield %r : (acc) -> ()
    ^bb0(%a2: t0, %b2: t1, %acc: acc): // the `compute` block: inputs, then accumulators
      ...; kernel.yield %o : (r) -> ()
    }

Attributes
- `domain`: the iteration space, one size per loop dim (`int` or `#dim<N>`), dims `$0..$n-1`.
- `iterators`: `"parallel"` or `"reduction"` per dim; all parallel dims come first, so the
  loop nest is `for p in P: for r in R` (R may be empty).
- `input_maps`: one `AffineMap` per operand, from a domain point to an index of that operand
  (`tensorc.ir.affine`: each result is `sum(c_k * $k) + offset` with integer `c_k` and a size
  expression `offset`). Reads are in bounds whenever the domain is non-empty (guaranteed by
  whoever builds the op; the verifier cannot prove it for offset maps).
- `output_maps`: one map per result, each a projected permutation that may also hold the
  constant `0` where the result's axis has size 1. Either no output map uses a reduction dim
  (a *parallel epilogue*: each map uses every parallel dim), or all of them use every dim (a
  *row epilogue*). Result shapes equal the domain sizes through the output maps (exactly).
- `reductions`: the combiner of each accumulator, `"add" | "mul" | "max" | "min"`; empty iff
  there are no reduction dims. Identities: add 0, mul 1, max -inf (integer min, false), min
  +inf (integer max, true). `max`/`min` propagate NaN (like `tc.maximum`), `add`/`mul` on
  integers wrap. `add`/`mul` do not take `bool`.

Regions: one region with exactly two blocks (the IR text keeps a region's blocks in order):
- block 0, `reduce`: arguments are one rank-0 scalar per input (the input's dtype); it yields
  one scalar per accumulator (the accumulator's dtype). With no reductions it is an empty
  block holding just `kernel.yield`.
- block 1, `compute`: arguments are one scalar per input, then one per accumulator; it
  yields one scalar per result (the result's dtype).

Semantics (a NumPy reference is `tensorc.interp.kernel_eval`):

    for p in parallel space:
        acc[j] = identity(reductions[j])
        for r in reduction space (any order; the combiners are treated as associative):
            vals = reduce(in_k[input_maps[k](p, r)] for k)
            acc[j] = combine_j(acc[j], vals[j])
        if parallel epilogue:          # compute once per p
            outs = compute(in_k[input_maps[k](p)] for k, acc)
            out_m[output_maps[m](p)] = outs[m]
        else:                          # row epilogue: after the accumulation, for each r
            for r in reduction space:
                outs = compute(in_k[input_maps[k](p, r)] for k, acc)
                out_m[output_maps[m](p, r)] = outs[m]

In a parallel epilogue the compute block may only use the arguments of inputs whose maps use
no reduction dim (the others have no value there), and `kernel.index` of parallel dims. In a
row epilogue, compute-block ops that depend only on accumulators, on inputs whose maps use no
reduction dim and on parallel indices are row-invariant; `row_invariant_ops` lists them so a
backend can hoist them out of the epilogue loop.

Body ops: `tc` elementwise ops on rank-0 types (`tc.exp %x : (f32) -> f32`, `tc.select`,
`tc.cast`, comparisons, ...), `tc.constant` scalars, `tc.dim_size` (the value of a size
expression), `kernel.index {dim = k}` (the loop index of dim k as `i32` or `i64`), and
`kernel.yield` as the terminator. The op is `IsolatedFromAbove`: bodies use nothing else.

Contractions (matmul): `match_contraction` recognises the exact form the CPU backend turns into
a packed micro-kernel: domain `[b_0.., M, N, K]` (any number of batch dims `b`), iterators
`[parallel.., parallel, parallel, reduction]`, `reductions = ["add"]`, a reduce block that is
exactly `kernel.yield (tc.mul a, b)` where `a`, `b` are block arguments, each optionally
widened first by one float-to-float `tc.cast`, lhs map `($b.., $m, $k)` or `($b.., $k, $m)`
(transposed), rhs map `($b.., $k, $n)` or `($b.., $n, $k)`, where the batch part broadcasts
as in NumPy (an operand may lack leading batch axes, or read a batch axis of static size 1 at
the constant 0: stride 0 along that batch dim). The compute block is an arbitrary parallel
epilogue (bias, activation) over the other inputs and the accumulator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tensorc.ir.affine import AffineError, AffineMap
from tensorc.ir.core import (
    Block,
    BlockArgument,
    Elementwise,
    IsolatedFromAbove,
    Operation,
    Pure,
    Region,
    Terminator,
    Value,
    VerifyError,
    attr_def,
    register_op,
)
from tensorc.ir.dims import DimExpr, sign_of, size_problem
from tensorc.ir.dtypes import DType
from tensorc.ir.location import Location
from tensorc.ir.types import TensorType

PARALLEL = "parallel"
REDUCTION = "reduction"
ITERATOR_KINDS = (PARALLEL, REDUCTION)
COMBINERS = ("add", "mul", "max", "min")
INDEX_DTYPES = (DType.I32, DType.I64)


def scalar_of(tensor_type: TensorType) -> TensorType:
    """The rank-0 type of one element of `tensor_type`."""
    return TensorType(tensor_type.dtype)


def combiner_identity(kind: str, dtype: DType) -> bool | int | float:
    """The value an accumulator of `kind` and `dtype` starts from."""
    if kind == "add":
        return 0
    if kind == "mul":
        return 1
    lowest = kind == "max"
    if dtype.is_bool:
        return not lowest
    if dtype.is_float:
        return float("-inf") if lowest else float("inf")
    info = np.iinfo(dtype.numpy)
    return int(info.min) if lowest else int(info.max)


@register_op
class GenericOp(Operation):
    """A fused loop nest; see the module documentation for its exact semantics."""

    name = "kernel.generic"
    num_operands = None
    num_results = None
    num_regions = 1
    traits = frozenset({Pure, IsolatedFromAbove})

    domain = attr_def(list, items=(int, DimExpr))
    iterators = attr_def(list, items=str)
    input_maps = attr_def(list, items=AffineMap)
    output_maps = attr_def(list, items=AffineMap)
    reductions = attr_def(list, items=str)

    @staticmethod
    def create(
        inputs: Sequence[Value],
        result_types: Sequence[TensorType],
        domain: Sequence[DimExpr | int],
        iterators: Sequence[str],
        input_maps: Sequence[AffineMap],
        output_maps: Sequence[AffineMap],
        reductions: Sequence[str] = (),
        accumulator_types: Sequence[TensorType] = (),
        loc: Location | None = None,
    ) -> GenericOp:
        """A kernel with empty `reduce` and `compute` blocks whose arguments are set up."""
        sizes = [DimExpr.of(d) for d in domain]
        attributes: dict[str, Any] = {
            "domain": [d.value if d.is_const else d for d in sizes],
            "iterators": list(iterators),
            "input_maps": list(input_maps),
            "output_maps": list(output_maps),
            "reductions": list(reductions),
        }
        scalars = [scalar_of(v.type) for v in inputs]
        reduce_block = Block(scalars)
        compute_block = Block(scalars + [scalar_of(t) for t in accumulator_types])
        region = Region([reduce_block, compute_block])
        return GenericOp(list(inputs), list(result_types), attributes, [region], loc=loc)

    # ----- structure ------------------------------------------------------------------------
    @property
    def inputs(self) -> tuple[Value, ...]:
        return self.operands

    @property
    def reduce_block(self) -> Block:
        return self.regions[0].blocks[0]

    @property
    def compute_block(self) -> Block:
        return self.regions[0].blocks[1]

    @property
    def domain_sizes(self) -> tuple[DimExpr, ...]:
        return tuple(DimExpr.of(d) for d in self.domain)

    @property
    def num_dims(self) -> int:
        return len(self.domain)

    @property
    def num_parallel(self) -> int:
        return sum(1 for kind in self.iterators if kind == PARALLEL)

    @property
    def parallel_dims(self) -> range:
        return range(self.num_parallel)

    @property
    def reduction_dims(self) -> range:
        return range(self.num_parallel, self.num_dims)

    @property
    def has_reduction(self) -> bool:
        return self.num_parallel < self.num_dims

    @property
    def is_row_epilogue(self) -> bool:
        """Whether the compute block runs per (p, r) point (its output maps use every dim)."""
        reduction = set(self.reduction_dims)
        return any(m.used_dims & reduction for m in self.output_maps)

    @property
    def accumulator_types(self) -> list[TensorType]:
        return [a.type for a in self.compute_block.args[len(self.operands) :]]

    def input_uses_reduction(self, index: int) -> bool:
        return bool(self.input_maps[index].used_dims & set(self.reduction_dims))

    # ----- verification ---------------------------------------------------------------------
    def verify_(self) -> None:
        sizes = self._verify_domain()
        self._verify_maps(sizes)
        self._verify_reductions()
        self._verify_blocks()

    def _fail(self, message: str, op: Operation | None = None) -> VerifyError:
        return VerifyError(f"kernel.generic: {message}", op or self)

    def _verify_domain(self) -> tuple[DimExpr, ...]:
        for size in self.domain:  # ints or #dim, checked by attr_def
            problem = size_problem(DimExpr.of(size))
            if problem is not None:
                raise self._fail(f"domain size {size} {problem}")
        iterators = list(self.iterators)
        if len(iterators) != len(self.domain):
            raise self._fail(
                f"{len(iterators)} iterators for a domain of {len(self.domain)} dims"
            )
        for kind in iterators:
            if kind not in ITERATOR_KINDS:
                raise self._fail(f"unknown iterator kind {kind!r}")
        if iterators != sorted(iterators, key=ITERATOR_KINDS.index):
            raise self._fail("reduction iterators must come after all parallel ones")
        return self.domain_sizes

    def _verify_maps(self, sizes: tuple[DimExpr, ...]) -> None:
        input_maps, output_maps = list(self.input_maps), list(self.output_maps)
        if len(input_maps) != len(self.operands):
            raise self._fail(f"{len(input_maps)} input maps for {len(self.operands)} inputs")
        if len(output_maps) != len(self.results):
            raise self._fail(f"{len(output_maps)} output maps for {len(self.results)} results")
        for index, (value, amap) in enumerate(zip(self.operands, input_maps)):
            self._check_map(amap, f"input map {index}", value.type)
            self._check_reads_in_bounds(amap, index, value.type, sizes)
        reduction = set(self.reduction_dims)
        row_epilogue = self.is_row_epilogue
        required = set(range(len(sizes))) if row_epilogue else set(self.parallel_dims)
        for index, (result, amap) in enumerate(zip(self.results, output_maps)):
            self._check_map(amap, f"output map {index}", result.type)
            if not amap.is_projected_permutation(allow_zero_results=True):
                raise self._fail(f"output map {index} {amap} is not a projected permutation")
            if row_epilogue and not amap.used_dims & reduction:
                raise self._fail(
                    "some output maps use reduction dims and some do not (a row epilogue "
                    "writes every output at every (p, r) point)"
                )
            if amap.used_dims != required:
                kind = "every dim" if row_epilogue else "every parallel dim"
                raise self._fail(f"output map {index} {amap} must use {kind}")
            image = amap.image_shape(sizes)
            if image != result.type.shape:
                shape = ", ".join(str(d) for d in image or ())
                raise self._fail(
                    f"result {index} has type {result.type} but the domain through its output "
                    f"map gives [{shape}]"
                )

    def _check_map(self, amap: AffineMap, what: str, tensor_type: TensorType) -> None:
        if amap.num_dims != len(self.domain):
            raise self._fail(
                f"{what} {amap} has {amap.num_dims} dims, the domain {len(self.domain)}"
            )
        if amap.num_results != tensor_type.rank:
            raise self._fail(
                f"{what} {amap} has {amap.num_results} results for a tensor of rank "
                f"{tensor_type.rank} ({tensor_type})"
            )
        try:
            amap.linear_forms()
        except AffineError as error:
            raise self._fail(f"{what}: {error}") from None

    def _check_reads_in_bounds(
        self, amap: AffineMap, index: int, tensor_type: TensorType, sizes: tuple[DimExpr, ...]
    ) -> None:
        """Reject an input map that provably reads outside its operand on a non-empty domain
        (the backends do not check reads; in-bounds reads are the builder's promise, which the
        verifier checks wherever the sizes decide it)."""
        if any(size.value == 0 for size in sizes):
            return
        for axis, (form, extent) in enumerate(zip(amap.linear_forms(), tensor_type.shape)):
            if form.single_dim is not None and sizes[form.single_dim] == extent:
                continue  # `$k` over an axis of its own size: the common case, in bounds
            if not form.coefficients and form.offset.value == 0 and extent.value != 0:
                continue  # a broadcast reading index 0 of an axis that is not empty
            lowest = highest = form.offset
            for dim, coefficient in form.coefficients:
                span = (sizes[dim] - 1) * coefficient
                if coefficient > 0:
                    highest = highest + span
                else:
                    lowest = lowest + span
            if sign_of(lowest) == "negative" or sign_of(extent - 1 - highest) == "negative":
                raise self._fail(
                    f"input map {index} {amap} reads axis {axis} of {tensor_type} at indices "
                    f"from {lowest} to {highest}, outside [0, {extent})"
                )

    def _verify_reductions(self) -> None:
        reductions = list(self.reductions)
        for kind in reductions:
            if kind not in COMBINERS:
                raise self._fail(f"unknown combiner {kind!r} (expected one of {COMBINERS})")
        if self.has_reduction and not reductions:
            raise self._fail("reduction dims need at least one accumulator")
        if not self.has_reduction and reductions:
            raise self._fail("accumulators without reduction dims")

    def _verify_blocks(self) -> None:
        region = self.regions[0]
        if len(region.blocks) != 2:
            raise self._fail(
                f"the region must hold two blocks (reduce, compute), not {len(region.blocks)}"
            )
        input_scalars = [scalar_of(v.type) for v in self.operands]
        reduce_block, compute_block = self.reduce_block, self.compute_block
        if [a.type for a in reduce_block.args] != input_scalars:
            raise self._fail("reduce block arguments must be one scalar of each input's dtype")
        reduce_yield = self._verify_body(reduce_block, "reduce", set(range(self.num_dims)))
        accumulators = [v.type for v in reduce_yield.operands]
        if len(accumulators) != len(self.reductions):
            raise self._fail(
                f"the reduce block yields {len(accumulators)} values for "
                f"{len(self.reductions)} accumulators",
                reduce_yield,
            )
        for kind, acc in zip(self.reductions, accumulators):
            if kind in ("add", "mul") and acc.dtype.is_bool:
                raise self._fail(f"combiner '{kind}' does not take bool", reduce_yield)
        if [a.type for a in compute_block.args] != input_scalars + accumulators:
            raise self._fail(
                "compute block arguments must be one scalar per input, then one per accumulator "
                f"({', '.join(map(str, accumulators)) or 'none'})"
            )
        row_epilogue = self.is_row_epilogue
        visible = set(range(self.num_dims)) if row_epilogue else set(self.parallel_dims)
        compute_yield = self._verify_body(compute_block, "compute", visible)
        results = [scalar_of(r.type) for r in self.results]
        yielded = [v.type for v in compute_yield.operands]
        if yielded != results:
            raise self._fail(
                f"the compute block yields ({', '.join(map(str, yielded))}) for results "
                f"({', '.join(map(str, results))})",
                compute_yield,
            )
        if not row_epilogue:
            for index, arg in enumerate(compute_block.args[: len(self.operands)]):
                if arg.uses and self.input_uses_reduction(index):
                    raise self._fail(
                        f"the compute block of a parallel epilogue uses input {index}, whose map "
                        f"{self.input_maps[index]} uses a reduction dim",
                        arg.uses[0].op,
                    )

    def _verify_body(self, block: Block, what: str, visible_dims: set[int]) -> YieldOp:
        terminator = block.ops[-1] if block.ops else None
        if not isinstance(terminator, YieldOp):
            raise self._fail(f"the {what} block must end with kernel.yield")
        for op in block.ops:
            if not _is_body_op(op):
                raise self._fail(f"{op.name} is not allowed in a kernel body", op)
            for value in list(op.operands) + list(op.results):
                if value.type.rank != 0:
                    raise self._fail(f"{op.name} in a kernel body must be on scalars", op)
            if isinstance(op, IndexOp) and op.dim not in visible_dims:
                raise self._fail(
                    f"kernel.index {{dim = {op.dim}}} is not a loop of the {what} block", op
                )
        return terminator


def _is_body_op(op: Operation) -> bool:
    if isinstance(op, (IndexOp, YieldOp)):
        return True
    if op.regions:
        return False
    if op.name in ("tc.constant", "tc.dim_size"):
        return True
    return op.name.startswith("tc.") and Elementwise in op.traits


@register_op
class IndexOp(Operation):
    """The current loop index of domain dim `dim`, as an `i32` or `i64` scalar."""

    name = "kernel.index"
    num_operands = 0
    traits = frozenset({Pure})
    dim = attr_def(int)

    def verify_(self) -> None:
        result = self.result.type
        if result.rank != 0 or result.dtype not in INDEX_DTYPES:
            raise VerifyError(f"kernel.index gives an i32 or i64 scalar, not {result}", self)
        if self.dim < 0:
            raise VerifyError(f"kernel.index dim {self.dim} is negative", self)
        parent = self.parent.parent_op if self.parent is not None else None
        if parent is not None and not isinstance(parent, GenericOp):
            raise VerifyError("kernel.index must be inside a kernel.generic", self)


@register_op
class YieldOp(Operation):
    """Ends a `kernel.generic` block, giving its values."""

    name = "kernel.yield"
    num_operands = None
    num_results = 0
    traits = frozenset({Terminator})

    def verify_(self) -> None:
        parent = self.parent.parent_op if self.parent is not None else None
        if parent is not None and not isinstance(parent, GenericOp):
            raise VerifyError("kernel.yield must end a kernel.generic block", self)


# ----- queries for the backends -------------------------------------------------------------


@dataclass(frozen=True)
class Contraction:
    """A `kernel.generic` in matmul form: `acc[b.., m, n] += A[b.., m, k] * B[b.., k, n]`.

    `lhs`/`rhs` index the op's inputs; a transposed operand is stored as `[b.., k, m]`
    (`[b.., n, k]`). The domain is `[b.., M, N, K]` with `batch_rank` batch dims.
    `accumulator` is the dtype of the products and sums (operands are widened to it first).
    """

    lhs: int
    rhs: int
    batch_rank: int
    lhs_transposed: bool
    rhs_transposed: bool
    accumulator: DType


def match_contraction(op: Operation) -> Contraction | None:
    """The contraction form of `op` (see the module documentation), or None."""
    if not isinstance(op, GenericOp) or op.num_dims < 3:
        return None
    rank = op.num_dims
    if list(op.iterators) != [PARALLEL] * (rank - 1) + [REDUCTION] or op.reductions != ["add"]:
        return None
    product = _single_product(op.reduce_block)
    if product is None:
        return None
    first, second, accumulator = product
    batch = rank - 3
    m, n, k = batch, batch + 1, batch + 2
    lhs_forms = {(m, k): False, (k, m): True}
    rhs_forms = {(k, n): False, (n, k): True}
    maps, types = op.input_maps, [v.type for v in op.operands]
    for lhs, rhs in ((first, second), (second, first)):
        lhs_t = _operand_form(maps[lhs], types[lhs], batch, lhs_forms)
        rhs_t = _operand_form(maps[rhs], types[rhs], batch, rhs_forms)
        if lhs_t is not None and rhs_t is not None:
            return Contraction(lhs, rhs, batch, lhs_t, rhs_t, accumulator)
    return None


def is_contraction(op: Operation) -> bool:
    return match_contraction(op) is not None


def _single_product(block: Block) -> tuple[int, int, DType] | None:
    """(input a, input b, dtype) when the block is exactly `yield mul(a', b')` with a', b'
    block arguments, each optionally widened by one float cast."""
    terminator = block.ops[-1] if block.ops else None
    if not isinstance(terminator, YieldOp) or len(terminator.operands) != 1:
        return None
    product = terminator.operands[0].owner
    if not isinstance(product, Operation) or product.name != "tc.mul":
        return None
    sides: list[int] = []
    casts = 0
    for value in product.operands:
        owner = value.owner
        if isinstance(owner, Operation) and owner.name == "tc.cast":
            source = owner.operands[0]
            if not (source.type.dtype.is_float and value.type.dtype.is_float):
                return None
            value, casts = source, casts + 1
        if not isinstance(value, BlockArgument) or value.block is not block:
            return None
        sides.append(value.index)
    if len(block.ops) != 2 + casts:
        return None
    return sides[0], sides[1], product.result.type.dtype


def _operand_form(
    amap: AffineMap, operand: TensorType, batch: int, forms: dict[tuple[int, int], bool]
) -> bool | None:
    """Whether the operand is transposed, or None when its map is not a contraction operand
    map. Batch dims broadcast as in NumPy: leading ones may be absent, and a batch axis of
    static size 1 may be read at the constant 0."""
    rank = amap.num_results
    if rank < 2 or rank - 2 > batch:
        return None
    first_batch = batch - (rank - 2)
    for axis in range(rank - 2):
        result = amap.results[axis]
        if result == 0 and operand.shape[axis] == 1:
            continue
        if amap.result_dim(axis) != first_batch + axis:
            return None
    key = (amap.result_dim(rank - 2), amap.result_dim(rank - 1))
    return forms.get(key)  # type: ignore[arg-type]


def row_invariant_ops(op: GenericOp, block: Block | None = None) -> list[Operation]:
    """Ops of `block` (default the compute block) whose values do not depend on the reduction
    dims (computable once per parallel point); every compute op of a parallel epilogue."""
    block = op.compute_block if block is None else block
    varying: set[int] = set()
    for index, arg in enumerate(block.args[: len(op.operands)]):
        if op.input_uses_reduction(index):
            varying.add(id(arg))
    reduction = set(op.reduction_dims)
    invariant: list[Operation] = []
    for body_op in block.ops:
        if isinstance(body_op, YieldOp):
            continue
        depends = any(id(v) in varying for v in body_op.operands)
        if isinstance(body_op, IndexOp) and body_op.dim in reduction:
            depends = True
        if depends:
            varying.update(id(r) for r in body_op.results)
        else:
            invariant.append(body_op)
    return invariant
