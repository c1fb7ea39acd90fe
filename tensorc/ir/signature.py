"""A function's signature as the artifact manifest records it (plain JSON-able data).

The runtime (`tensorc_runtime.Signature`) reads exactly this dict, so the interpreter and the
native backends check their arguments with one piece of code.
"""

from __future__ import annotations

from typing import Any

from tensorc.ir.dialects.func import FuncOp
from tensorc.ir.types import TensorType


def _spec(name: str, tensor_type: TensorType) -> dict[str, Any]:
    return {
        "name": name,
        "dtype": str(tensor_type.dtype),
        "shape": [str(d) for d in tensor_type.shape],
    }


def function_signature(function: FuncOp) -> dict[str, Any]:
    params = [
        _spec(name, arg.type) for name, arg in zip(function.names_of_parameters(), function.args)
    ]
    results = [
        _spec(name, t)
        for name, t in zip(function.names_of_results(), function.function_type.results)
    ]
    constraints = [c.to_manifest() for c in function.shape_constraints]
    return {
        "name": function.sym_name,
        "params": params,
        "results": results,
        "constraints": constraints,
    }
