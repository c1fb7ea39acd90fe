"""The table of built-in functions (SPEC §1.5): each name with its parameters, in the order
in which they may be given by position, their defaults, and the handler that lowers a call.

Signatures are written as in Python: `sum(x, axis=None, keepdims=false)`. A parameter without
a default is required; every parameter may also be given by keyword, under its name or under
an alias written after a bar (`idx|indices`: NumPy's name is accepted too).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tensorc.frontend import builtins_math as math_
from tensorc.frontend import builtins_shape as shape_
from tensorc.frontend.builtins_math import Handler
from tensorc.frontend.callsite import REQUIRED
from tensorc.ir.dialects import tc, tc_reduce
from tensorc.ir.dtypes import DType


@dataclass(frozen=True, slots=True)
class Builtin:
    name: str
    params: tuple[str, ...]
    defaults: Mapping[str, Any]
    handler: Handler
    aliases: Mapping[str, str] = field(default_factory=dict)  # other keyword -> parameter

    @property
    def signature(self) -> str:
        parts = [
            p if self.defaults.get(p, REQUIRED) is REQUIRED else f"{p}={self.defaults[p]}"
            for p in self.params
        ]
        return f"{self.name}({', '.join(parts)})"


_SIGNATURE = re.compile(r"(\w+)\((.*)\)")


def _default(text: str) -> Any:
    if text == "None":
        return None
    if text in ("true", "false"):
        return text == "true"
    dtype = DType.parse(text)
    if dtype is not None:
        return dtype
    return float(text) if any(c in text for c in ".e") else int(text)


def _builtin(signature: str, handler: Handler) -> Builtin:
    match = _SIGNATURE.fullmatch(signature)
    assert match is not None, signature
    params: list[str] = []
    defaults: dict[str, Any] = {}
    aliases: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in match[2].split(","))):
        spelling, _, default = part.partition("=")
        name, *other_names = spelling.split("|")
        params.append(name)
        aliases.update((alias, name) for alias in other_names)
        if default:
            defaults[name] = _default(default)
    return Builtin(match[1], tuple(params), defaults, handler, aliases)


def _unary(name: str, op: type, float_only: bool = False) -> Builtin:
    return _builtin(f"{name}(x)", math_.unary(op, float_only))


def _reduction(name: str, op: type, float_only: bool = False) -> Builtin:
    return _builtin(f"{name}(x, axis=None, keepdims=false)", math_.reduction(op, float_only))


_TABLE: list[Builtin] = [
    # elementwise unary: integers allowed
    _unary("neg", tc.NegOp),
    _unary("abs", tc.AbsOp),
    _unary("sign", tc.SignOp),
    _unary("relu", tc.ReluOp),
    _unary("floor", tc.FloorOp),
    _unary("ceil", tc.CeilOp),
    _unary("square", tc.SquareOp),
    # elementwise unary: float only (integers are converted to f32)
    _unary("exp", tc.ExpOp, float_only=True),
    _unary("log", tc.LogOp, float_only=True),
    _unary("log1p", tc.Log1pOp, float_only=True),
    _unary("expm1", tc.Expm1Op, float_only=True),
    _unary("sqrt", tc.SqrtOp, float_only=True),
    _unary("rsqrt", tc.RsqrtOp, float_only=True),
    _unary("sin", tc.SinOp, float_only=True),
    _unary("cos", tc.CosOp, float_only=True),
    _unary("tanh", tc.TanhOp, float_only=True),
    _unary("sigmoid", tc.SigmoidOp, float_only=True),
    _unary("erf", tc.ErfOp, float_only=True),
    _unary("softplus", tc.SoftplusOp, float_only=True),
    _builtin("gelu(x, approximate=false)", math_.gelu),
    # elementwise binary and ternary
    _builtin("maximum(x, y)", math_.binary(tc.MaximumOp, "maximum")),
    _builtin("minimum(x, y)", math_.binary(tc.MinimumOp, "minimum")),
    _builtin("pow(x, y)", math_.binary(tc.PowOp, "**")),
    _builtin("where(cond, a, b)", math_.where),
    _builtin("clip(x, lo=None, hi=None)", math_.clip),
    _builtin("cast(x, dtype)", math_.cast),
    # reductions
    _reduction("sum", tc_reduce.SumOp),
    _reduction("mean", tc_reduce.MeanOp),
    _reduction("max", tc_reduce.MaxOp),
    _reduction("min", tc_reduce.MinOp),
    _reduction("prod", tc_reduce.ProdOp),
    _reduction("logsumexp", tc_reduce.LogSumExpOp, float_only=True),
    _builtin("var(x, axis=None, keepdims=false)", math_.var),
    _builtin("argmax(x, axis=None, keepdims=false)", math_.arg_reduction(tc_reduce.ArgMaxOp)),
    _builtin("argmin(x, axis=None, keepdims=false)", math_.arg_reduction(tc_reduce.ArgMinOp)),
    # linear algebra
    _builtin("matmul(x, y)", math_.matmul_builtin),
    _builtin("dot(x, y)", math_.dot),
    _builtin("transpose(x, perm=None)", shape_.transpose),
    # shape
    _builtin("reshape(x, shape)", shape_.reshape),
    _builtin("broadcast_to(x, shape)", shape_.broadcast_to),
    _builtin("expand_dims(x, axis)", shape_.expand_dims),
    _builtin("squeeze(x, axis=None)", shape_.squeeze),
    _builtin("concat(xs, axis=0)", shape_.concat),
    _builtin("stack(xs, axis=0)", shape_.stack),
    # gather
    _builtin("take(x, idx|indices, axis=None)", shape_.take),
    _builtin("take_along_axis(x, idx|indices, axis)", shape_.take_along_axis),
    _builtin("one_hot(idx|indices, n)", shape_.one_hot),
    # constructors
    _builtin("zeros(shape, dtype=f32)", shape_.constant_fill(0)),
    _builtin("ones(shape, dtype=f32)", shape_.constant_fill(1)),
    _builtin("full(shape, value, dtype=None)", shape_.full),
    _builtin("arange(n, dtype=i32)", shape_.arange),
    _builtin("zeros_like(x, dtype=None)", shape_.constant_like(0)),
    _builtin("ones_like(x, dtype=None)", shape_.constant_like(1)),
    # neural networks
    _builtin("softmax(x, axis=-1)", math_.axis_op(tc_reduce.SoftmaxOp)),
    _builtin("log_softmax(x, axis=-1)", math_.axis_op(tc_reduce.LogSoftmaxOp)),
    _builtin("layer_norm(x, gamma, beta, eps=1e-5)", math_.layer_norm),
    _builtin("cross_entropy(logits, labels)", math_.cross_entropy),
    _builtin("mse(a, b)", math_.mse),
    # autodiff
    _builtin("grad(y, w)", math_.grad),
    _builtin("stop_gradient(x)", math_.stop_gradient),
]

BUILTINS: dict[str, Builtin] = {builtin.name: builtin for builtin in _TABLE}


def lookup_builtin(name: str) -> Builtin | None:
    return BUILTINS.get(name)
