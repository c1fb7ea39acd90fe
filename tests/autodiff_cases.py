"""Gradient test cases, one or more per differentiable operation: a scalar f64 loss of some
parameters and their values, for `check_case` (tests/test_autodiff.py). Inputs keep away from
the kinks of nonsmooth ops by more than the finite-difference reach."""

from __future__ import annotations

import numpy as np
from autodiff_support import GradCase, IRGradCase

RNG = np.random.default_rng(20240611)


def normal(*shape: int) -> np.ndarray:
    return RNG.normal(size=shape)


def positive(*shape: int) -> np.ndarray:
    return RNG.uniform(0.5, 2.0, size=shape)


def away_from_zero(*shape: int) -> np.ndarray:
    """Values at least 0.2 from 0, so that kinks at 0 are out of the finite-difference reach."""
    return RNG.choice([-1.0, 1.0], size=shape) * RNG.uniform(0.2, 1.5, size=shape)


def distinct(*shape: int) -> np.ndarray:
    """Values at least 0.1 apart, so that no max/min changes within the difference step."""
    count = int(np.prod(shape))
    return (RNG.permutation(count) * 0.1 + RNG.uniform(0, 0.02, size=count)).reshape(shape) - 1


def case(name: str, params: str, body: str, wrt: str | None = None, **inputs) -> GradCase:
    float_names = [n for n, v in inputs.items() if np.asarray(v).dtype.kind == "f"]
    names = wrt.split(",") if wrt else float_names
    return GradCase(name, params, body, [n.strip() for n in names], inputs)


# ----- one case per differentiable operation -----------------------------------------------

ELEMENTWISE_CASES = [
    case("neg", "x: f64[3, 4]", "loss = sum(sin(-x))", x=normal(3, 4)),
    case("abs", "x: f64[3, 4]", "loss = sum(abs(x) * x)", x=away_from_zero(3, 4)),
    case("exp", "x: f64[5]", "loss = sum(exp(x))", x=normal(5)),
    case("log", "x: f64[5]", "loss = sum(log(x) * x)", x=positive(5)),
    case("log1p", "x: f64[5]", "loss = sum(log1p(x))", x=positive(5)),
    case("expm1", "x: f64[5]", "loss = sum(expm1(x) * x)", x=normal(5)),
    case("sqrt", "x: f64[2, 3]", "loss = sum(sqrt(x) * x)", x=positive(2, 3)),
    case("rsqrt", "x: f64[2, 3]", "loss = sum(rsqrt(x) * x)", x=positive(2, 3)),
    case("sin", "x: f64[4]", "loss = sum(sin(x) * x)", x=normal(4)),
    case("cos", "x: f64[4]", "loss = sum(cos(x) * x)", x=normal(4)),
    case("tanh", "x: f64[4]", "loss = sum(tanh(x) * x)", x=normal(4)),
    case("sigmoid", "x: f64[4]", "loss = sum(sigmoid(x) * x)", x=normal(4)),
    case("relu", "x: f64[3, 3]", "loss = sum(relu(x) * x)", x=away_from_zero(3, 3)),
    case("gelu", "x: f64[6]", "loss = sum(gelu(x) * x)", x=normal(6) * 2),
    case("gelu_tanh", "x: f64[6]", "loss = sum(gelu(x, approximate=true))", x=normal(6) * 2),
    case("erf", "x: f64[6]", "loss = sum(erf(x) * x)", x=normal(6)),
    case("square", "x: f64[6]", "loss = sum(square(x) * x)", x=normal(6)),
    case("softplus", "x: f64[6]", "loss = sum(log(1.0 + exp(x)) * x)", x=normal(6)),
    case("add", "x: f64[3], y: f64[3]", "loss = sum(sin(x + y) * x)", x=normal(3), y=normal(3)),
    case("sub", "x: f64[3], y: f64[3]", "loss = sum(sin(x - y) * y)", x=normal(3), y=normal(3)),
    case("mul", "x: f64[3], y: f64[3]", "loss = sum(x * y * x)", x=normal(3), y=normal(3)),
    case("div", "x: f64[3], y: f64[3]", "loss = sum(x / y)", x=normal(3), y=positive(3)),
    case("pow", "x: f64[4], y: f64[4]", "loss = sum(x ** y)", x=positive(4), y=normal(4)),
    case("pow_const", "x: f64[4]", "loss = sum(x ** 3.0 + x ** 0.5)", x=positive(4)),
    case(
        "pow_negative_base_integral_exponent",
        "x: f64[4]",
        "loss = sum(x ** 3.0)",
        x=-positive(4),
    ),
    case(
        "maximum",
        "x: f64[6], y: f64[6]",
        "loss = sum(maximum(x, y) * x)",
        x=distinct(6),
        y=distinct(6) + 0.05,
    ),
    case(
        "minimum",
        "x: f64[6], y: f64[6]",
        "loss = sum(minimum(x, y) * y)",
        x=distinct(6),
        y=distinct(6) + 0.05,
    ),
    case(
        "mod",
        "x: f64[4], y: f64[4]",
        "loss = sum((x % y) * y)",
        x=np.array([3.3, -2.2, 5.5, 1.3]),
        y=np.array([1.5, 1.5, -2.0, 0.7]),
    ),
    case(
        "where",
        "x: f64[5], y: f64[5]",
        "loss = sum(where(x > y, x * x, sin(y)))",
        x=distinct(5),
        y=distinct(5) + 0.05,
    ),
    case("clip", "x: f64[6]", "loss = sum(clip(x, -0.5, 0.5) * x)", x=distinct(6) * 0.9),
    case("cast_f64", "x: f64[3]", "loss = sum(cast(x, f64) * x)", x=normal(3)),
    case(
        "broadcast_rows",
        "x: f64[3, 1], y: f64[4]",
        "loss = sum(sin(x * y))",
        x=normal(3, 1),
        y=normal(4),
    ),
    case(
        "broadcast_scalar",
        "x: f64[2, 3], s: f64",
        "loss = sum(exp(x * s))",
        x=normal(2, 3),
        s=np.array(0.7),
    ),
    case(
        "broadcast_to",
        "x: f64[1, 3]",
        "loss = sum(sin(broadcast_to(x, [2, 4, 3])) * 1.5)",
        x=normal(1, 3),
    ),
]

REDUCTION_CASES = [
    case("sum_all", "x: f64[3, 4]", "loss = sum(x * x)", x=normal(3, 4)),
    case("sum_axis0", "x: f64[3, 4]", "loss = sum(sin(sum(x, axis=0)))", x=normal(3, 4)),
    case("sum_axis_neg", "x: f64[3, 4]", "loss = sum(sin(sum(x, axis=-1)))", x=normal(3, 4)),
    case(
        "sum_keepdims",
        "x: f64[2, 3, 4]",
        "loss = sum(sin(sum(x, axis=[0, 2], keepdims=true)) * x)",
        x=normal(2, 3, 4),
    ),
    case(
        "sum_middle",
        "x: f64[2, 3, 4]",
        "loss = sum(sin(sum(x, axis=1)))",
        x=normal(2, 3, 4),
    ),
    case("mean", "x: f64[3, 4]", "loss = sum(sin(mean(x, axis=1)))", x=normal(3, 4)),
    case(
        "mean_keepdims",
        "x: f64[3, 4]",
        "loss = sum(x * mean(x, axis=0, keepdims=true))",
        x=normal(3, 4),
    ),
    case("mean_all", "x: f64[3, 4]", "loss = sin(mean(x))", x=normal(3, 4)),
    case("max", "x: f64[3, 4]", "loss = sum(sin(max(x, axis=1)))", x=distinct(3, 4)),
    case(
        "max_keepdims",
        "x: f64[3, 4]",
        "loss = sum(x * max(x, axis=0, keepdims=true))",
        x=distinct(3, 4),
    ),
    case("min", "x: f64[3, 4]", "loss = sum(sin(min(x, axis=-1)))", x=distinct(3, 4)),
    case("max_all", "x: f64[3, 4]", "loss = max(x) * 2.0", x=distinct(3, 4)),
    case("prod", "x: f64[3, 4]", "loss = sum(prod(x, axis=1))", x=normal(3, 4)),
    case(
        "prod_keepdims",
        "x: f64[3, 4]",
        "loss = sum(sin(prod(x, axis=0, keepdims=true)) * x)",
        x=normal(3, 4),
    ),
    case("prod_all", "x: f64[2, 3]", "loss = prod(x)", x=positive(2, 3)),
    case("logsumexp", "x: f64[3, 4]", "loss = sum(logsumexp(x, axis=1) * 1.3)", x=normal(3, 4)),
    case(
        "logsumexp_axis0", "x: f64[3, 4]", "loss = sum(sin(logsumexp(x, axis=0)))", x=normal(3, 4)
    ),
    case("var", "x: f64[3, 5]", "loss = sum(sin(var(x, axis=1)))", x=normal(3, 5)),
]

LINALG_CASES = [
    case(
        "matmul_2d",
        "a: f64[3, 4], b: f64[4, 2]",
        "loss = sum(sin(a @ b))",
        a=normal(3, 4),
        b=normal(4, 2),
    ),
    case(
        "matmul_batched",
        "a: f64[2, 3, 4], b: f64[2, 4, 5]",
        "loss = sum(sin(a @ b))",
        a=normal(2, 3, 4),
        b=normal(2, 4, 5),
    ),
    case(
        "matmul_broadcast_batch",
        "a: f64[2, 1, 3, 4], b: f64[3, 4, 2]",
        "loss = sum(sin(a @ b))",
        a=normal(2, 1, 3, 4),
        b=normal(3, 4, 2),
    ),
    case(
        "matmul_batch_by_matrix",
        "a: f64[2, 3, 4], b: f64[4, 2]",
        "loss = sum(sin(a @ b))",
        a=normal(2, 3, 4),
        b=normal(4, 2),
    ),
    case(
        "matmul_vector_matrix",
        "a: f64[4], b: f64[4, 3]",
        "loss = sum(sin(a @ b))",
        a=normal(4),
        b=normal(4, 3),
    ),
    case(
        "matmul_matrix_vector",
        "a: f64[3, 4], b: f64[4]",
        "loss = sum(sin(a @ b))",
        a=normal(3, 4),
        b=normal(4),
    ),
    case(
        "matmul_vector_vector",
        "a: f64[4], b: f64[4]",
        "loss = sin(a @ b)",
        a=normal(4),
        b=normal(4),
    ),
    case("dot", "a: f64[4], b: f64[4]", "loss = sin(dot(a, b))", a=normal(4), b=normal(4)),
    case(
        "matmul_batched_vector",
        "a: f64[2, 3, 4], b: f64[4]",
        "loss = sum(sin(matmul(a, b)))",
        a=normal(2, 3, 4),
        b=normal(4),
    ),
]

SHAPE_CASES = [
    case(
        "reshape", "x: f64[2, 6]", "loss = sum(sin(reshape(x, [3, 4])) * x.T[0, 0])", x=normal(2, 6)
    ),
    case(
        "reshape_infer",
        "x: f64[2, 6]",
        "loss = sum(sin(reshape(x, [-1, 3])) * 2.0)",
        x=normal(2, 6),
    ),
    case(
        "transpose",
        "x: f64[2, 3, 4]",
        "loss = sum(sin(transpose(x, [2, 0, 1])) * reshape(x, [4, 2, 3]))",
        x=normal(2, 3, 4),
    ),
    case("dot_T", "x: f64[3, 4]", "loss = sum(sin(x.T @ x))", x=normal(3, 4)),
    case(
        "expand_squeeze",
        "x: f64[3]",
        "loss = sum(sin(squeeze(expand_dims(x, 0), 0)) * x)",
        x=normal(3),
    ),
    case(
        "concat",
        "x: f64[2, 3], y: f64[4, 3]",
        "loss = sum(sin(concat([x, y, x], 0)) * 1.7)",
        x=normal(2, 3),
        y=normal(4, 3),
    ),
    case(
        "concat_axis1",
        "x: f64[2, 3], y: f64[2, 1]",
        "loss = sum(sin(concat([y, x], axis=1)))",
        x=normal(2, 3),
        y=normal(2, 1),
    ),
    case(
        "stack",
        "x: f64[2, 3], y: f64[2, 3]",
        "loss = sum(sin(stack([x, y], 1)) * 1.7)",
        x=normal(2, 3),
        y=normal(2, 3),
    ),
    case("index", "x: f64[4, 3]", "loss = sum(sin(x[1]) * x[2])", x=normal(4, 3)),
    case("index_last", "x: f64[4, 3]", "loss = sum(sin(x[:, -1]))", x=normal(4, 3)),
    case("slice", "x: f64[6, 3]", "loss = sum(sin(x[1:4]))", x=normal(6, 3)),
    case("slice_negative", "x: f64[6, 3]", "loss = sum(sin(x[-4:-1, 1:]))", x=normal(6, 3)),
    case("slice_step", "x: f64[7, 3]", "loss = sum(sin(x[::2]) * 1.3)", x=normal(7, 3)),
    case("slice_step_offset", "x: f64[7, 5]", "loss = sum(sin(x[1::3, 1:5:2]))", x=normal(7, 5)),
    case(
        "ellipsis", "x: f64[2, 3, 4]", "loss = sum(sin(x[..., 0]) * x[..., 1])", x=normal(2, 3, 4)
    ),
    case(
        "take",
        "x: f64[5, 3], i: i32[4]",
        "loss = sum(sin(take(x, i, 0)))",
        wrt="x",
        x=normal(5, 3),
        i=np.array([0, 3, 3, -1], np.int32),
    ),
    case(
        "take_axis1",
        "x: f64[2, 5], i: i32[2, 3]",
        "loss = sum(sin(take(x, i, axis=1)))",
        wrt="x",
        x=normal(2, 5),
        i=np.array([[1, 1, 4], [0, 1, 1]], np.int32),
    ),
    case(
        "take_along_axis",
        "x: f64[3, 4], i: i32[3, 5]",
        "loss = sum(sin(take_along_axis(x, i, 1)))",
        wrt="x",
        x=normal(3, 4),
        i=np.array([[0, 0, 3, 2, 0], [1, 1, 1, 1, 2], [3, 2, 1, 0, 3]], np.int32),
    ),
]

NN_CASES = [
    case("softmax", "x: f64[3, 4]", "loss = sum(sin(softmax(x)))", x=normal(3, 4)),
    case(
        "softmax_axis0", "x: f64[3, 4]", "loss = sum(sin(softmax(x, axis=0)) * x)", x=normal(3, 4)
    ),
    case("log_softmax", "x: f64[3, 4]", "loss = sum(sin(log_softmax(x)))", x=normal(3, 4)),
    case("log_softmax_axis0", "x: f64[3, 4]", "loss = sum(log_softmax(x, 0) * x)", x=normal(3, 4)),
    case(
        "layer_norm",
        "x: f64[3, 5], g: f64[5], b: f64[5]",
        "loss = sum(sin(layer_norm(x, g, b)))",
        x=normal(3, 5),
        g=normal(5),
        b=normal(5),
    ),
    case(
        "layer_norm_3d",
        "x: f64[2, 3, 4], g: f64[4], b: f64[4]",
        "loss = sum(sin(layer_norm(x, g, b, eps=0.01)) * x)",
        x=normal(2, 3, 4),
        g=normal(4),
        b=normal(4),
    ),
    case(
        "layer_norm_1d",
        "x: f64[5], g: f64[5], b: f64[5]",
        "loss = sum(sin(layer_norm(x, g, b)))",
        x=normal(5),
        g=normal(5),
        b=normal(5),
    ),
    case(
        "cross_entropy",
        "z: f64[4, 3], y: i32[4]",
        "loss = mean(cross_entropy(z, y))",
        wrt="z",
        z=normal(4, 3),
        y=np.array([0, 2, 2, 1], np.int32),
    ),
    case(
        "cross_entropy_weighted",
        "z: f64[4, 3], y: i32[4]",
        "loss = sum(cross_entropy(z * z, y) * z[:, 0])",
        wrt="z",
        z=normal(4, 3),
        y=np.array([1, 0, 2, 1], np.int32),
    ),
    case(
        "mse", "a: f64[3, 2], b: f64[3, 2]", "loss = mse(sin(a), b)", a=normal(3, 2), b=normal(3, 2)
    ),
]

SYMBOLIC_CASES = [
    case(
        "symbolic_mean",
        "x: f64[N, 3]",
        "loss = sum(sin(mean(x, axis=0)))",
        x=normal(5, 3),
    ),
    case(
        "symbolic_matmul_bias",
        "x: f64[N, 3], w: f64[3, K], b: f64[K]",
        "loss = mean(sin(x @ w + b))",
        x=normal(4, 3),
        w=normal(3, 2),
        b=normal(2),
    ),
    case(
        "symbolic_slices",
        "x: f64[N, M]",
        "loss = sum(sin(x[1:, :-1])) + sum(cos(x[::2, 1::2]))",
        x=normal(5, 4),
    ),
    case(
        "symbolic_bounds",
        "x: f64[N, 3]",
        "loss = sum(sin(x[N - 3:N - 1])) + sum(cos(x[N - 4::2, 1]))",
        x=normal(6, 3),
    ),
    case(
        "symbolic_equal_at_call",
        "x: f64[N], y: f64[M]",
        "loss = sum(sin(x * y) + y)",
        x=normal(4),
        y=normal(4),
    ),
    case(
        "symbolic_concat",
        "x: f64[N, 2], y: f64[M, 2]",
        "loss = sum(sin(concat([x, y, x], 0)) * 1.1)",
        x=normal(3, 2),
        y=normal(4, 2),
    ),
    case(
        "symbolic_reshape",
        "x: f64[N, 4]",
        "loss = sum(sin(reshape(x, [2, -1])) * 1.2)",
        x=normal(3, 4),
    ),
    case(
        "symbolic_cross_entropy",
        "z: f64[N, C], y: i32[N]",
        "loss = mean(cross_entropy(z, y))",
        wrt="z",
        z=normal(5, 3),
        y=np.array([0, 1, 2, 2, 0], np.int32),
    ),
    case(
        "symbolic_layer_norm",
        "x: f64[N, D], g: f64[D], b: f64[D]",
        "loss = mean(sin(layer_norm(x, g, b)))",
        x=normal(3, 4),
        g=normal(4),
        b=normal(4),
    ),
    case(
        "symbolic_max_prod",
        "x: f64[N, M]",
        "loss = sum(max(x, axis=1)) + sum(prod(x, axis=0))",
        x=distinct(3, 4),
    ),
    case(
        "symbolic_take_along_axis",
        "x: f64[N, 4], i: i32[N, 2]",
        "loss = sum(sin(take_along_axis(x, i, axis=-1)))",
        wrt="x",
        x=normal(3, 4),
        i=np.array([[0, 0], [3, 1], [2, 2]], np.int32),
    ),
]

# Ops that the frontend does not emit (passes do), written in IR text.
IR_CASES = [
    IRGradCase(
        "softplus_ir",
        "%x: f64[3, 4]",
        """
        %s = tc.softplus %x : (f64[3, 4]) -> f64[3, 4]
        %p = tc.mul %s, %x : (f64[3, 4], f64[3, 4]) -> f64[3, 4]
        %loss = tc.sum %p {axes = [0, 1]} : (f64[3, 4]) -> f64
        """,
        ["%x"],
        {"x": normal(3, 4) * 3},
    ),
    IRGradCase(
        "scatter_add_ir",
        "%u: f64[2, 4, 3], %i: i32[4]",
        """
        %s = tc.scatter_add %u, %i {axis = 1, size = 5} : (f64[2, 4, 3], i32[4]) -> f64[2, 5, 3]
        %q = tc.mul %s, %s : (f64[2, 5, 3], f64[2, 5, 3]) -> f64[2, 5, 3]
        %w = tc.sin %q : (f64[2, 5, 3]) -> f64[2, 5, 3]
        %loss = tc.sum %w {axes = [0, 1, 2]} : (f64[2, 5, 3]) -> f64
        """,
        ["%u"],
        {"u": normal(2, 4, 3), "i": np.array([4, 0, 4, -2], np.int32)},
    ),
    IRGradCase(
        "scatter_add_along_axis_ir",
        "%u: f64[N, 5], %i: i32[N, 5]",
        "%s = tc.scatter_add_along_axis %u, %i {axis = 1, size = 3}"
        " : (f64[N, 5], i32[N, 5]) -> f64[N, 3]\n"
        "%q = tc.mul %s, %s : (f64[N, 3], f64[N, 3]) -> f64[N, 3]\n"
        "%loss = tc.sum %q {axes = [0, 1]} : (f64[N, 3]) -> f64",
        ["%u"],
        {"u": normal(2, 5), "i": np.array([[0, 0, 2, 1, 0], [2, 2, 2, 1, 1]], np.int32)},
    ),
]

ALL_CASES = ELEMENTWISE_CASES + REDUCTION_CASES + LINALG_CASES + SHAPE_CASES + NN_CASES
ALL_CASES += SYMBOLIC_CASES + IR_CASES
