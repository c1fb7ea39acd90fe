"""Reference evaluation of the `kernel` dialect with NumPy, vectorised over the domain.

A `kernel.generic` is run block by block rather than point by point: each input is gathered
once onto the domain (index grids from `np.indices`, sparse, through the input's affine map),
each body op runs once on whole arrays through the same `tc` kernels as the unfused program
(so elementwise chains give bit-identical results), the `reduce` block's values are folded
over the reduction axes with the combiner, and the `compute` block runs on the parallel
domain (or the full domain for a row epilogue, with the accumulators broadcast back).
Contractions (`match_contraction`) are evaluated with `np.matmul`, as `tc.matmul` is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from tensorc.interp.context import KernelContext
from tensorc.interp.interpreter import InterpreterError, evaluate_attr, register_evaluator
from tensorc.interp.kernels import KERNELS
from tensorc.ir.core import Block, Operation
from tensorc.ir.dialects.kernel import (
    GenericOp,
    IndexOp,
    YieldOp,
    combiner_identity,
    match_contraction,
)
from tensorc.ir.dtypes import DType

if TYPE_CHECKING:
    from tensorc.interp.interpreter import Interpreter

_REDUCERS = {"add": np.sum, "mul": np.prod, "max": np.max, "min": np.min}


class _Domain:
    """Loop indices over (part of) the domain, as sparse grids broadcastable to `shape`."""

    def __init__(self, sizes: Sequence[int], active: int) -> None:
        self.shape = tuple(sizes[:active])
        grids = np.indices(self.shape, sparse=True) if self.shape else ()
        inactive = [np.zeros((1,) * len(self.shape), dtype=np.int64)] * (len(sizes) - active)
        self.grids: list[Any] = [g.astype(np.int64, copy=False) for g in grids] + inactive


def _gather(array: np.ndarray, amap: Any, domain: _Domain, env: Mapping[str, int]) -> np.ndarray:
    index = amap.evaluate(domain.grids, env)
    if not index:
        return np.asarray(array)
    return np.asarray(array[tuple(np.asarray(i, dtype=np.int64) for i in index)])


def _run_body(
    block: Block,
    op: GenericOp,
    inputs: Sequence[np.ndarray],
    accumulators: Sequence[np.ndarray],
    domain: _Domain,
    env: Mapping[str, int],
) -> list[np.ndarray]:
    """Evaluate a block on whole arrays; returns the yielded arrays (broadcastable to the
    domain shape)."""
    values: dict[int, np.ndarray] = {}
    num_inputs = len(op.operands)
    for index, arg in enumerate(block.args):
        if not arg.uses:
            continue
        if index < num_inputs:
            values[id(arg)] = _gather(inputs[index], op.input_maps[index], domain, env)
        else:
            values[id(arg)] = accumulators[index - num_inputs]
    for body_op in block.ops:
        if isinstance(body_op, YieldOp):
            return [values[id(v)] for v in body_op.operands]
        values[id(body_op.result)] = _evaluate_body_op(body_op, values, domain, env)
    raise InterpreterError("kernel.generic block has no kernel.yield")


def _evaluate_body_op(
    op: Operation, values: dict[int, np.ndarray], domain: _Domain, env: Mapping[str, int]
) -> np.ndarray:
    dtype = op.result.type.dtype.numpy
    if isinstance(op, IndexOp):
        return domain.grids[op.dim].astype(dtype)
    if op.name == "tc.constant":
        return np.asarray(op.attributes["value"], dtype=dtype)
    kernel = KERNELS.get(op.name)
    if kernel is None:
        raise InterpreterError(f"the interpreter cannot evaluate {op.name} in a kernel body")
    # Whole contiguous arrays, as the unfused ops see: NumPy picks other inner loops (and
    # sometimes other roundings, e.g. SIMD `pow`) for broadcast operands.
    operands = [_full(values[id(v)], domain.shape) for v in op.operands]
    context = KernelContext(op.name, [dtype], [domain.shape])
    attributes = {k: evaluate_attr(v, env) for k, v in op.attributes.items()}
    return np.asarray(kernel(context, *operands, **attributes))


def _full(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if array.shape == shape and array.flags.c_contiguous:
        return array
    return np.ascontiguousarray(np.broadcast_to(array, shape))


def _reduce(kind: str, values: np.ndarray, dtype: DType, full_shape: tuple, axes: tuple) -> Any:
    values = np.broadcast_to(values, full_shape)
    numpy_dtype = dtype.numpy
    with np.errstate(all="ignore"):
        if kind in ("add", "mul"):
            return np.asarray(_REDUCERS[kind](values, axis=axes, dtype=numpy_dtype))
        initial = combiner_identity(kind, dtype)
        return np.asarray(_REDUCERS[kind](values, axis=axes, initial=initial), numpy_dtype)


def _contraction_accumulator(
    op: GenericOp, operands: Sequence[np.ndarray], env: Mapping[str, int]
) -> np.ndarray | None:
    contraction = match_contraction(op)
    if contraction is None:
        return None
    dtype = contraction.accumulator.numpy
    lhs = operands[contraction.lhs]
    rhs = operands[contraction.rhs]
    if contraction.lhs_transposed:
        lhs = np.swapaxes(lhs, -1, -2)
    if contraction.rhs_transposed:
        rhs = np.swapaxes(rhs, -1, -2)
    with np.errstate(all="ignore"):
        return np.asarray(np.matmul(lhs.astype(dtype), rhs.astype(dtype)), dtype=dtype)


@register_evaluator("kernel.generic")
def evaluate_generic(
    interpreter: Interpreter, op: Operation, operands: list[np.ndarray], env: Mapping[str, int]
) -> list[np.ndarray]:
    assert isinstance(op, GenericOp)
    sizes = [d.extent(env) for d in op.domain_sizes]
    num_parallel = op.num_parallel
    full = _Domain(sizes, len(sizes))
    accumulators: list[np.ndarray] = []
    if op.has_reduction:
        product = _contraction_accumulator(op, operands, env)
        if product is not None:
            accumulators = [product]
        else:
            reduced = _run_body(op.reduce_block, op, operands, [], full, env)
            axes = tuple(range(num_parallel, len(sizes)))
            accumulators = [
                _reduce(kind, values, acc.dtype, full.shape, axes)
                for kind, values, acc in zip(op.reductions, reduced, op.accumulator_types)
            ]
    if op.is_row_epilogue:
        domain = full
        keep = tuple(sizes[:num_parallel]) + (1,) * (len(sizes) - num_parallel)
        accumulators = [np.reshape(a, keep) for a in accumulators]
    else:
        domain = _Domain(sizes, num_parallel)
    outputs = _run_body(op.compute_block, op, operands, accumulators, domain, env)
    return [
        _scatter(value, amap, result.type.concrete_shape(env), result.type.dtype, domain, env)
        for value, amap, result in zip(outputs, op.output_maps, op.results)
    ]


def _scatter(
    value: np.ndarray,
    amap: Any,
    shape: tuple[int, ...],
    dtype: DType,
    domain: _Domain,
    env: Mapping[str, int],
) -> np.ndarray:
    """A fresh array of `shape` with `value` (over the domain) stored through `amap`."""
    value = np.broadcast_to(np.asarray(value, dtype=dtype.numpy), domain.shape)
    dims = [amap.result_dim(i) for i in range(amap.num_results)]
    if [d for d in dims if d is not None] == list(range(len(domain.shape))):
        return np.array(value.reshape(shape), copy=True)  # the identity, up to size-1 axes
    result = np.empty(shape, dtype=dtype.numpy)
    index = amap.evaluate(domain.grids, env)
    result[tuple(np.asarray(i, dtype=np.int64) for i in index)] = value
    return result


@register_evaluator("kernel.index")
def evaluate_index(
    interpreter: Interpreter, op: Operation, operands: list[np.ndarray], env: Mapping[str, int]
) -> list[np.ndarray]:
    raise InterpreterError("kernel.index is only meaningful inside a kernel.generic body")
