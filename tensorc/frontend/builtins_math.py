"""Handlers of the numeric built-ins: elementwise functions, casts, reductions, linear algebra,
neural-network functions and autodiff (SPEC §1.5, §1.6).

A handler takes a `CallSite` and returns a term. Factories (`unary`, `reduction`, ...) make
the handlers of whole families from the `tc` op they lower to.
"""

from __future__ import annotations

from collections.abc import Callable

from tensorc.frontend import ast
from tensorc.frontend.callsite import CallSite
from tensorc.frontend.operators import arithmetic, matmul
from tensorc.frontend.promote import float_dtype, result_dtype
from tensorc.frontend.shapes import describe
from tensorc.frontend.values import (
    BoolConst,
    SemaError,
    Tensor,
    Term,
    TupleTerm,
    is_weak,
)
from tensorc.ir.core import Operation, Value
from tensorc.ir.dialects import tc, tc_reduce
from tensorc.ir.dtypes import DType
from tensorc.ir.typecheck import format_shape

Handler = Callable[[CallSite], Term]


# ----- elementwise ----------------------------------------------------------------------------


def unary(op_class: type[Operation], float_only: bool) -> Handler:
    """A one-operand elementwise function; float-only ones convert integers to f32 first."""

    def handler(site: CallSite) -> Term:
        value = site.floating("x") if float_only else site.numeric("x")
        return Tensor(site.emitter.op(op_class, [value], site.loc))

    return handler


def gelu(site: CallSite) -> Term:
    value = site.floating("x")
    attributes = {"approximate": True} if site.flag("approximate") else {}
    return Tensor(site.emitter.op(tc.GeluOp, [value], site.loc, **attributes))


def stop_gradient(site: CallSite) -> Term:
    return Tensor(site.emitter.op(tc.StopGradientOp, [site.value("x")], site.loc))


def binary(op_class: type[Operation], symbol: str) -> Handler:
    """A two-operand elementwise function with the operators' promotion and broadcasting."""

    def handler(site: CallSite) -> Term:
        lhs, rhs = site.operand("x"), site.operand("y")
        locs = (site.loc_of("x"), site.loc_of("y"))
        return arithmetic(
            site.emitter, symbol, lhs, rhs, site.loc, f"{site.name}()", op_class, locs
        )

    return handler


def where(site: CallSite) -> Term:
    cond, on_true, on_false = site.operand("cond"), site.operand("a"), site.operand("b")
    is_bool = isinstance(cond, BoolConst) or (
        isinstance(cond, Tensor) and cond.type.dtype.is_bool
    )
    if not is_bool:
        raise site.error("cond", "a bool tensor")
    emitter = site.emitter
    dtype = result_dtype([on_true, on_false])
    values = [
        emitter.materialize(cond, site.loc_of("cond"), DType.BOOL),
        emitter.materialize(on_true, site.loc_of("a"), dtype),
        emitter.materialize(on_false, site.loc_of("b"), dtype),
    ]
    shape = emitter.broadcast_shape([v.type.shape for v in values], site.loc, "where()")
    operands = [emitter.broadcast_to(v, shape, site.loc) for v in values]
    return Tensor(emitter.op(tc.SelectOp, operands, site.loc))


def clip(site: CallSite) -> Term:
    result: Term = site.operand("x")
    if site.given("lo"):
        result = arithmetic(
            site.emitter, "max", result, site.operand("lo"), site.loc, "clip()", tc.MaximumOp
        )
    if site.given("hi"):
        result = arithmetic(
            site.emitter, "min", result, site.operand("hi"), site.loc, "clip()", tc.MinimumOp
        )
    if is_weak(result):
        return Tensor(site.emitter.materialize(result, site.loc))
    return result


def cast(site: CallSite) -> Term:
    dtype = site.dtype("dtype")
    assert dtype is not None  # a required parameter
    return Tensor(site.value("x", dtype))


# ----- reductions -----------------------------------------------------------------------------


def _reduce(
    site: CallSite, op_class: type[Operation], value: Value, axes: list[int], keepdims: bool
) -> Value:
    attributes: dict = {"axes": axes}
    if keepdims:
        attributes["keepdims"] = True
    return site.emitter.op(op_class, [value], site.loc, **attributes)


def _reduction_axes(site: CallSite, value: Value) -> list[int]:
    axes = site.axes("axis", value.type.rank, describe(value.type))
    return list(range(value.type.rank)) if axes is None else axes


def reduction(op_class: type[Operation], float_only: bool = False) -> Handler:
    """`sum`, `mean`, `max`, ... over `axis` (an int, a list, or all axes) with `keepdims`."""

    def handler(site: CallSite) -> Term:
        value = site.floating("x") if float_only else site.value("x")
        axes = _reduction_axes(site, value)
        return Tensor(_reduce(site, op_class, value, axes, site.flag("keepdims")))

    return handler


def arg_reduction(op_class: type[Operation]) -> Handler:
    """`argmax` / `argmin`: one axis, or the flattened tensor when absent; the result is i32."""

    def handler(site: CallSite) -> Term:
        value = site.value("x")
        axis = site.axis("axis", value.type.rank, describe(value.type))
        attributes: dict = {} if axis is None else {"axis": axis}
        if site.flag("keepdims"):
            attributes["keepdims"] = True
        return Tensor(site.emitter.op(op_class, [value], site.loc, **attributes))

    return handler


def var(site: CallSite) -> Term:
    """The biased variance: the mean of squared deviations from the mean."""
    emitter, loc = site.emitter, site.loc
    value = site.floating("x")
    axes = _reduction_axes(site, value)
    mean = _reduce(site, tc_reduce.MeanOp, value, axes, keepdims=True)
    centered = emitter.op(tc.SubOp, [value, emitter.broadcast_to(mean, value.type.shape, loc)],
                          loc)
    squared = emitter.op(tc.SquareOp, [centered], loc)
    return Tensor(_reduce(site, tc_reduce.MeanOp, squared, axes, site.flag("keepdims")))


# ----- linear algebra ---------------------------------------------------------------------


def matmul_builtin(site: CallSite) -> Term:
    return Tensor(matmul(site.emitter, site.value("x"), site.value("y"), site.loc, "matmul()"))


def dot(site: CallSite) -> Term:
    """`dot`: a product when either is a scalar, else matmul for operands of rank <= 2."""
    lhs, rhs = site.operand("x"), site.operand("y")
    if any(is_weak(term) or term.type.is_scalar for term in (lhs, rhs)):
        return arithmetic(site.emitter, "*", lhs, rhs, site.loc, "dot()")
    x, y = site.value("x"), site.value("y")
    for param, value in (("x", x), ("y", y)):
        if value.type.rank > 2:
            raise SemaError(
                f"dot() supports operands of rank <= 2, found {value.type} (use matmul for "
                "batches)",
                site.loc_of(param),
            )
    return Tensor(matmul(site.emitter, x, y, site.loc, "dot()"))


# ----- neural networks --------------------------------------------------------------------


def axis_op(op_class: type[Operation]) -> Handler:
    """`softmax` / `log_softmax` along one axis (default the last)."""

    def handler(site: CallSite) -> Term:
        value = site.floating("x")
        axis = site.axis("axis", value.type.rank, describe(value.type))
        return Tensor(site.emitter.op(op_class, [value], site.loc, axis=axis))

    return handler


def layer_norm(site: CallSite) -> Term:
    emitter, loc = site.emitter, site.loc
    x = site.value("x")
    if x.type.rank == 0:
        raise site.error("x", "a tensor of rank >= 1")
    dtype = float_dtype(result_dtype([Tensor(x), site.operand("gamma"), site.operand("beta")]))
    x = emitter.cast(x, dtype, site.loc_of("x"))
    features = x.type.shape[-1]
    params: list[Value] = []
    for name in ("gamma", "beta"):
        value = site.value(name, dtype)
        if value.type.rank == 1:
            ok = emitter.require_equal(
                value.type.shape[0], features, loc, f"layer_norm() {name}",
                value.type.shape, x.type.shape,
            )
        else:
            ok = value.type.rank == 0
        if not ok:
            raise SemaError(
                f"layer_norm() argument '{name}' must have shape [{features}] (the last axis of "
                f"{x.type}), found {describe(value.type)}",
                site.loc_of(name),
            )
        params.append(emitter.broadcast_to(value, (features,), site.loc_of(name)))
    eps = site.static_float("eps")
    return Tensor(emitter.op(tc_reduce.LayerNormOp, [x, *params], loc, eps=eps))


def cross_entropy(site: CallSite) -> Term:
    emitter = site.emitter
    logits = site.value("logits")
    if not logits.type.dtype.is_float or logits.type.rank != 2:
        raise site.error("logits", "a float tensor of shape [N, C]")
    labels = site.value("labels")
    if not labels.type.dtype.is_int or labels.type.rank != 1:
        raise SemaError(
            f"cross_entropy() argument 'labels' must be an integer tensor of shape [N], found "
            f"{describe(labels.type)}",
            site.loc_of("labels"),
        )
    rows, count = logits.type.shape[0], labels.type.shape[0]
    what = "cross_entropy() batch sizes"
    if not emitter.require_equal(rows, count, site.loc, what, logits.type.shape,
                                 labels.type.shape):
        raise SemaError(
            f"cross_entropy() needs one label per row of logits: logits "
            f"{format_shape(logits.type.shape)} has {rows} rows but labels "
            f"{format_shape(labels.type.shape)} has {count}",
            site.loc_of("labels"),
        )
    return Tensor(emitter.op(tc_reduce.CrossEntropyOp, [logits, labels], site.loc))


def mse(site: CallSite) -> Term:
    """The mean over all elements of the squared difference, a scalar."""
    emitter, loc = site.emitter, site.loc
    lhs, rhs = site.operand("a"), site.operand("b")
    dtype = float_dtype(result_dtype([lhs, rhs]))
    a, b = emitter.coerce([lhs, rhs], loc, "mse()", dtype, [site.loc_of("a"), site.loc_of("b")])
    squared = emitter.op(tc.SquareOp, [emitter.op(tc.SubOp, [a, b], loc)], loc)
    axes = list(range(squared.type.rank))
    return Tensor(emitter.op(tc_reduce.MeanOp, [squared], loc, axes=axes))


# ----- autodiff ---------------------------------------------------------------------------


def grad(site: CallSite) -> Term:
    """`grad(y, w)` or `grad(y, [w1, w2])`: a `tc.grad` op with one result per `w`."""
    y = site.term("y")
    if not isinstance(y, Tensor):
        raise site.error("y", "a float scalar tensor")
    if not y.type.is_scalar:
        raise SemaError(
            f"grad of a non-scalar: y has type {y.type}, but grad needs a float scalar (reduce "
            "it with sum or mean)",
            site.loc_of("y"),
        )
    if not y.type.dtype.is_float:
        article = "an integer" if y.type.dtype.is_int else "a bool"
        raise SemaError(
            f"grad of {article}: y has type {y.type}, but grad needs a float scalar",
            site.loc_of("y"),
        )
    wrt_item = site.item("w")
    is_list = isinstance(wrt_item.node, ast.ListExpr)
    items = site.items("w") if is_list else (wrt_item,)
    if not items:
        raise SemaError("grad() needs at least one value to differentiate with respect to",
                        wrt_item.loc)
    wrt: list[Value] = []
    for item in items:
        if not isinstance(item.node, ast.Name):
            raise SemaError(
                "grad() differentiates with respect to named values: expected a name bound to "
                "a tensor (a parameter or a local), found an expression",
                item.loc,
            )
        if not isinstance(item.term, Tensor):
            raise SemaError(
                f"grad() differentiates with respect to tensors: '{item.node.id}' is "
                f"{item.term.describe()}",
                item.loc,
            )
        wrt.append(item.term.value)
    op = site.emitter.create(tc.GradOp, [y.value, *wrt], site.loc)
    results = tuple(Tensor(result) for result in op.results)
    return TupleTerm(results) if is_list else results[0]
