"""The reference interpreter: runs IR functions op by op on NumPy arrays.

It is the oracle for every pass and backend, so it does nothing clever: each `tc` op is one
call into the kernel table (`kernels.py`); other dialects register evaluators with
`register_evaluator`. Symbolic sizes are bound from the arguments, attributes holding
dimension expressions are evaluated to ints, and results are checked against their types.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from tensorc.interp.context import KernelContext
from tensorc.interp.kernels import KERNELS
from tensorc.ir.attributes import SymbolRef
from tensorc.ir.core import Operation, Value
from tensorc.ir.dialects.func import CallOp, FuncOp, Module, ReturnOp
from tensorc.ir.dims import DimExpr

Evaluator = Callable[["Interpreter", Operation, list[np.ndarray], Mapping[str, int]], list]
EVALUATORS: dict[str, Evaluator] = {}


class InterpreterError(RuntimeError):
    """The IR asked for something the interpreter cannot do (an unexpanded `tc.grad`...)."""


def register_evaluator(op_name: str) -> Callable[[Evaluator], Evaluator]:
    def decorate(function: Evaluator) -> Evaluator:
        EVALUATORS[op_name] = function
        return function

    return decorate


def evaluate_attr(value: Any, env: Mapping[str, int]) -> Any:
    if isinstance(value, DimExpr):
        return value.evaluate(env)
    if isinstance(value, list):
        return [evaluate_attr(v, env) for v in value]
    return value


def bind_symbols(function: FuncOp, arrays: Sequence[np.ndarray]) -> dict[str, int]:
    """Symbol values from the arguments' shapes (parameter dims are names or ints)."""
    env: dict[str, int] = {}
    for arg, array in zip(function.args, arrays):
        for dim, extent in zip(arg.type.shape, array.shape):
            if not dim.is_const:
                (name,) = dim.symbols
                env.setdefault(name, int(extent))
    return env


class Interpreter:
    def __init__(self, module: Module, check_types: bool = True) -> None:
        self.module = module
        self.check_types = check_types

    def run(self, name: str, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        function = self.module.lookup(name)
        if function is None:
            raise InterpreterError(f"no function @{name}")
        return self.run_function(function, arrays)

    def run_function(self, function: FuncOp, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        env = bind_symbols(function, arrays)
        values: dict[int, np.ndarray] = {id(a): x for a, x in zip(function.args, arrays)}
        return self.run_block(function.body.ops, values, env)

    def run_block(
        self, ops: Sequence[Operation], values: dict[int, np.ndarray], env: Mapping[str, int]
    ) -> list[np.ndarray]:
        for op in ops:
            operands = [values[id(v)] for v in op.operands]
            if isinstance(op, ReturnOp):
                return operands
            outputs = self.evaluate(op, operands, env)
            for result, output in zip(op.results, outputs):
                if self.check_types:
                    _check_output(op, result, output, env)
                values[id(result)] = output
        raise InterpreterError("block has no terminator")

    def evaluate(
        self, op: Operation, operands: list[np.ndarray], env: Mapping[str, int]
    ) -> list[np.ndarray]:
        if isinstance(op, CallOp):
            return self.run(op.callee.name, operands)
        evaluator = EVALUATORS.get(op.name)
        if evaluator is not None:
            return list(evaluator(self, op, operands, env))
        kernel = KERNELS.get(op.name)
        if kernel is None:
            raise InterpreterError(_missing_message(op))
        context = KernelContext(
            op.name,
            [r.type.dtype.numpy for r in op.results],
            [r.type.concrete_shape(env) for r in op.results],
        )
        attributes = {
            k: evaluate_attr(v, env)
            for k, v in op.attributes.items()
            if not isinstance(v, SymbolRef)
        }
        output = kernel(context, *operands, **attributes)
        return list(output) if isinstance(output, tuple) else [output]


def _missing_message(op: Operation) -> str:
    if op.name == "tc.grad":
        return "tc.grad must be expanded by the autodiff pass before it can run"
    return f"the interpreter cannot evaluate {op.name}"


def _check_output(op: Operation, result: Value, output: np.ndarray, env: Mapping[str, int]) -> None:
    expected_shape = result.type.concrete_shape(env)
    expected_dtype = result.type.dtype.numpy
    if output.shape != expected_shape or output.dtype != expected_dtype:
        raise InterpreterError(
            f"{op.name} at {op.loc} produced {output.dtype}{list(output.shape)}, but its type "
            f"{result.type} means {expected_dtype}{list(expected_shape)}"
        )


import tensorc.interp.kernel_eval  # noqa: E402, F401  (registers the kernel dialect's evaluators)
