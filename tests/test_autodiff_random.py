"""Random differentiable programs: a scalar loss composed of random smooth unary, binary,
reduction and broadcast ops over 1-3 f64 parameters of small random (partly symbolic)
shapes; autodiff's gradients must match finite differences, straight after autodiff and
after -O2. Only smooth ops appear (no max, abs, where), so that finite differences are
exact to O(h**4) wherever the inputs fall."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from autodiff_support import PIPELINE_LABELS, GradCase, check_case
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

UNARY = (
    "sin({})",
    "cos({})",
    "tanh({})",
    "sigmoid({})",
    "exp(tanh({}))",
    "log(1.0 + square({}))",
    "sqrt(1.0 + square({}))",
    "rsqrt(2.0 + sin({}))",
    "gelu({})",
    "gelu({}, approximate=true)",
    "erf({})",
    "-{}",
    "square({})",
    "log1p(sigmoid({}))",
    "expm1(tanh({}))",
    "({}) ** 2.0",
    "cast(cast({}, f64), f64)",
)
BINARY = (
    "({}) + ({})",
    "({}) - ({})",
    "({}) * ({})",
    "({}) / (2.0 + sin({}))",
    "(1.5 + tanh({})) ** tanh({})",
)
REDUCTIONS = ("sum", "mean", "logsumexp", "prod")

Shape = tuple[str, ...]


@dataclass(frozen=True)
class Expr:
    text: str
    shape: Shape  # dimension labels: "1", a size, or a symbol name


def _broadcast(a: Shape, b: Shape) -> Shape:
    rank = max(len(a), len(b))
    a = ("1",) * (rank - len(a)) + a
    b = ("1",) * (rank - len(b)) + b
    return tuple(y if x == "1" else x for x, y in zip(a, b))


@st.composite
def expressions(draw, params: list[Expr], full: Shape, depth: int) -> Expr:
    if depth == 0 or draw(st.integers(0, 5)) == 0:
        if draw(st.integers(0, 7)) == 0:
            return Expr(f"{draw(st.sampled_from(['0.5', '1.3', '-0.7']))}", ())
        return draw(st.sampled_from(params))
    kind = draw(st.sampled_from(["unary", "unary", "binary", "binary", "reduce", "shape"]))
    operand = draw(expressions(params, full, depth - 1))
    if kind == "unary":
        return Expr(draw(st.sampled_from(UNARY)).format(operand.text), operand.shape)
    if kind == "binary":
        other = draw(expressions(params, full, depth - 1))
        text = draw(st.sampled_from(BINARY)).format(operand.text, other.text)
        return Expr(text, _broadcast(operand.shape, other.shape))
    if kind == "reduce":
        return draw(reductions(operand))
    return draw(shape_ops(operand, full))


@st.composite
def reductions(draw, operand: Expr) -> Expr:
    """A reduction whose result still broadcasts against the other values: keepdims over
    any axes, the leading axis dropped, or every axis."""
    name = draw(st.sampled_from(REDUCTIONS))
    rank = len(operand.shape)
    if rank == 0:
        return operand
    mode = draw(st.sampled_from(["keepdims", "leading", "all"]))
    if mode == "all":
        return Expr(f"{name}({operand.text})", ())
    if mode == "leading":
        return Expr(f"{name}({operand.text}, axis={-rank})", operand.shape[1:])
    axes = draw(st.lists(st.integers(0, rank - 1), min_size=1, max_size=rank, unique=True))
    shape = tuple("1" if i in axes else d for i, d in enumerate(operand.shape))
    return Expr(f"{name}({operand.text}, axis={sorted(axes)}, keepdims=true)", shape)


@st.composite
def shape_ops(draw, operand: Expr, full: Shape) -> Expr:
    rank = len(operand.shape)
    choice = draw(st.sampled_from(["broadcast", "softmax", "log_softmax", "slice"]))
    if choice == "broadcast" or rank == 0:
        if not full:
            return operand
        return Expr(f"broadcast_to({operand.text}, [{', '.join(full)}])", full)
    if choice == "slice" and operand.shape[-1] != "1":
        prefix = ", ".join([":"] * (rank - 1) + ["1:"])
        # Summed right away: the sliced axis (`N - 1`) does not broadcast against the others.
        text = f"sum(({operand.text})[{prefix}], axis={rank - 1}, keepdims=true)"
        return Expr(text, operand.shape[:-1] + ("1",))
    function = "softmax" if choice == "softmax" else "log_softmax"
    return Expr(f"{function}({operand.text}, axis=-1)", operand.shape)


@st.composite
def random_cases(draw) -> GradCase:
    rank = draw(st.integers(0, 2))
    sizes = draw(st.lists(st.integers(2, 3), min_size=rank, max_size=rank))
    labels = tuple(
        draw(st.sampled_from([str(size), "NM"[axis]])) for axis, size in enumerate(sizes)
    )
    env = {"N": sizes[0] if rank > 0 else 1, "M": sizes[1] if rank > 1 else 1}
    count = draw(st.integers(1, 3))
    params: list[Expr] = []
    for index in range(count):
        kept = draw(st.integers(0, rank))
        shape = tuple(
            "1" if draw(st.integers(0, 3)) == 0 else label for label in labels[rank - kept :]
        )
        params.append(Expr(f"p{index}", shape))
    bound = {d for p in params for d in p.shape}
    full = tuple(
        label if label in bound or label.isdigit() else str(size)
        for label, size in zip(labels, sizes)
    )
    body = draw(expressions(params, full, depth=4))
    if not any(p.text in body.text for p in params):
        anchor = draw(st.sampled_from(params))
        body = Expr(f"({body.text}) * {anchor.text}", _broadcast(body.shape, anchor.shape))
    loss = body.text if not body.shape else f"sum({body.text})"
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    inputs = {
        p.text: rng.normal(size=[int(d) if d.isdigit() else env[d] for d in p.shape]) * 0.8
        for p in params
    }
    signature = ", ".join(
        f"{p.text}: f64[{', '.join(p.shape)}]" if p.shape else f"{p.text}: f64" for p in params
    )
    return GradCase("random", signature, f"loss = {loss}", [p.text for p in params], inputs)


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(random_cases())
def test_random_programs_have_correct_gradients(grad_case: GradCase) -> None:
    for label in PIPELINE_LABELS:
        check_case(grad_case, label)
