"""tensorc's intermediate representation: types, values, ops, dialects, text form, verifier.

This layer imports nothing from `frontend`, `passes` or `codegen`.
"""

from tensorc.ir import dialects  # noqa: F401  (registers every op)
from tensorc.ir.attributes import ShapeConstraint, SymbolRef
from tensorc.ir.builder import Builder
from tensorc.ir.core import (
    Block,
    BlockArgument,
    Operation,
    OpResult,
    Region,
    Value,
    VerifyError,
    lookup_op,
)
from tensorc.ir.dialects.func import CallOp, FuncOp, Module, ReturnOp
from tensorc.ir.dims import DimExpr, parse_dim
from tensorc.ir.dtypes import DType, promote
from tensorc.ir.location import Location
from tensorc.ir.parser import parse_module
from tensorc.ir.printer import print_function, print_module
from tensorc.ir.types import FunctionType, TensorType
from tensorc.ir.verifier import verify_module

__all__ = [
    "Block", "BlockArgument", "Builder", "CallOp", "DType", "DimExpr", "FuncOp", "FunctionType",
    "Location", "Module", "OpResult", "Operation", "Region", "ReturnOp", "ShapeConstraint",
    "SymbolRef", "TensorType", "Value", "VerifyError", "lookup_op", "parse_dim", "parse_module",
    "print_function", "print_module", "promote", "verify_module",
]
