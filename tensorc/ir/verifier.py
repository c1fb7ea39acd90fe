"""Module verifier: every op's own rules, then structure (terminators, dominance, calls)."""

from __future__ import annotations

from typing import Any

from tensorc.ir.affine import INDEX_PREFIX, AffineMap, index_position
from tensorc.ir.attributes import ShapeConstraint
from tensorc.ir.core import Block, IsolatedFromAbove, Operation, Terminator, Value, VerifyError
from tensorc.ir.dialects.func import CallOp, FuncOp, Module, bind_dimensions
from tensorc.ir.dims import DimExpr, size_problem
from tensorc.ir.typecheck import types_compatible
from tensorc.ir.types import FunctionType, TensorType


def verify_module(module: Module) -> None:
    """Raise VerifyError (with `.op`) at the first broken invariant."""
    names: set[str] = set()
    for function in module.functions:
        if not isinstance(function, FuncOp):
            raise VerifyError("a module holds only func.func ops", function)
        if function.sym_name in names:
            raise VerifyError(f"function @{function.sym_name} is defined twice", function)
        names.add(function.sym_name)
    for function in module.functions:
        verify_function(function)
    module.callees_first()  # every callee exists, and no call cycle (recursion)
    for op in module.walk():
        if isinstance(op, CallOp):
            _verify_call(op, module)


def verify_function(function: FuncOp) -> None:
    function.verify()
    sizes = _verify_signature(function)
    _verify_block(function.body, visible=set(), sizes=sizes)


def _verify_block(block: Block, visible: set[int], sizes: frozenset[str]) -> None:
    defined = set(visible) | {id(a) for a in block.args}
    for arg in block.args:
        _check_type(arg.type, sizes, "a block argument", block.parent_op)
    for index, op in enumerate(block.ops):
        if op.parent is not block:
            raise VerifyError(f"{op.name} has a stale parent link", op)
        for operand in op.operands:
            if id(operand) not in defined:
                raise VerifyError(
                    f"{op.name} uses a value that does not dominate it ({_describe(operand)})", op
                )
        # Nested ops first: an op's own rules (a kernel's body checks) may rely on them.
        inner_visible = set() if IsolatedFromAbove in op.traits else defined
        for region in op.regions:
            for inner in region.blocks:
                _verify_block(inner, inner_visible, sizes)
        op.verify()
        for result in op.results:
            _check_type(result.type, sizes, f"{op.name}: a result", op)
        for key, value in op.attributes.items():
            _check_attribute_sizes(value, sizes, f"{op.name}: attribute '{key}'", op)
        is_last = index == len(block.ops) - 1
        if Terminator in op.traits and not is_last:
            raise VerifyError(f"{op.name} must be the last op of its block", op)
        for result in op.results:
            defined.add(id(result))


def _verify_signature(function: FuncOp) -> frozenset[str]:
    """Check the parameter and result types; return the size names the parameters bind."""
    where = f"@{function.sym_name}"
    signature = function.function_type
    for arg_type in signature.inputs:
        for dim in arg_type.shape:
            reserved = sorted(name for name in dim.symbols if name.startswith(INDEX_PREFIX))
            if reserved:
                raise VerifyError(
                    f"{where}: the size name '{reserved[0]}' is reserved for kernel loop indices",
                    function,
                )
    sizes = frozenset(function.symbols)
    for arg_type in signature.inputs:
        _check_type(arg_type, sizes, f"{where}: a parameter", function)
    for result_type in signature.results:
        _check_type(result_type, sizes, f"{where}: a result", function)
    for constraint in function.shape_constraints:
        _check_attribute_sizes(constraint, sizes, f"{where}: a shape constraint", function)
    return sizes


def _check_type(
    tensor_type: TensorType, sizes: frozenset[str], what: str, op: Operation | None
) -> None:
    """Constant dimensions are in [0, 2**63); symbolic ones use only the function's sizes."""
    for dim in tensor_type.shape:
        problem = size_problem(dim)
        if problem is not None:
            raise VerifyError(f"{what} has type {tensor_type}, whose dimension {dim} {problem}", op)
        unbound = sorted(dim.symbols - sizes)
        if unbound:
            raise VerifyError(
                f"{what} has type {tensor_type}, whose size '{unbound[0]}' is not bound by a "
                "parameter of the function",
                op,
            )


def _check_attribute_sizes(value: Any, sizes: frozenset[str], what: str, op: Operation) -> None:
    """Size expressions in an attribute use only the function's sizes (and, in affine maps,
    the kernel's loop indices)."""
    if isinstance(value, list):
        for item in value:
            _check_attribute_sizes(item, sizes, what, op)
        return
    dims: list[DimExpr] = []
    if isinstance(value, DimExpr):
        dims = [value]
    elif isinstance(value, ShapeConstraint):
        dims = [value.lhs, value.rhs]
    elif isinstance(value, AffineMap):
        dims = list(value.results)
    elif isinstance(value, TensorType):
        _check_type(value, sizes, what, op)
    elif isinstance(value, FunctionType):
        for tensor_type in (*value.inputs, *value.results):
            _check_type(tensor_type, sizes, what, op)
    for dim in dims:
        unbound = sorted(
            name for name in dim.symbols - sizes
            if not (isinstance(value, AffineMap) and index_position(name) is not None)
        )
        if unbound:
            raise VerifyError(
                f"{what} uses the size '{unbound[0]}', which no parameter of the function binds",
                op,
            )


def _verify_call(op: CallOp, module: Module) -> None:
    callee = module.lookup(op.callee.name)
    assert callee is not None  # checked by Module.callees_first
    signature = callee.function_type
    if len(signature.inputs) != len(op.operands) or not all(
        types_compatible(v.type, t) for v, t in zip(op.operands, signature.inputs)
    ):
        raise VerifyError(f"func.call @{op.callee.name}: argument types do not match", op)
    if len(signature.results) != len(op.results):
        raise VerifyError(f"func.call @{op.callee.name}: wrong number of results", op)
    binding, _ = bind_dimensions(callee, op.operands)
    for index, (declared, result) in enumerate(zip(signature.results, op.results)):
        expected = declared.with_shape([d.substitute(binding) for d in declared.shape])
        if not types_compatible(result.type, expected):
            raise VerifyError(
                f"func.call @{op.callee.name}: result {index} has type {result.type}, but the "
                f"callee returns {declared} (here {expected})",
                op,
            )


def _describe(value: Value) -> str:
    owner = value.owner
    if isinstance(owner, Operation):
        return f"a result of {owner.name}"
    return "a block argument of another block"
