"""Semantic analysis and lowering of `.tc` programs to the `tc` dialect (SPEC §1).

Programs go through `compile_source` (parse, lower, verify). Tests check result types, the
printed IR, the call-time shape constraints, and the exact first line of every diagnostic.
"""

from __future__ import annotations

import pytest

from tensorc.frontend import builtins as builtins_table
from tensorc.frontend import compile_source
from tensorc.frontend.builtins import BUILTINS, Builtin
from tensorc.ir import parse_module, print_module, verify_module
from tensorc.ir.diagnostics import DiagnosticError
from tensorc.ir.dialects.func import FuncOp, Module

# ----- helpers --------------------------------------------------------------------------------


def lower(source: str) -> Module:
    module = compile_source(source, "t.tc")
    text = print_module(module)
    assert print_module(parse_module(text, "t.tcir")) == text  # the IR text round-trips
    return module


def function(source: str, name: str = "f") -> FuncOp:
    found = lower(source).lookup(name)
    assert found is not None
    return found


def result_types(params: str, expr: str) -> str:
    """The result type(s) of `def f(params) { return expr }`, as text."""
    func = function(f"def f({params}) {{ return {expr} }}")
    return ", ".join(str(t) for t in func.function_type.results)


def ops(source: str, name: str = "f") -> list[str]:
    return [op.name for op in function(source, name).body.ops]


def constraints(source: str, name: str = "f") -> list[tuple[str, str, str, str]]:
    func = function(source, name)
    return [(c.kind, str(c.lhs), str(c.rhs), c.error) for c in func.shape_constraints]


def errors(source: str) -> list[str]:
    with pytest.raises(DiagnosticError) as info:
        compile_source(source, "t.tc")
    return [d.header() for d in info.value.diagnostics]


def first_error(source: str) -> str:
    return errors(source)[0]


# ----- functions, names, tuples ---------------------------------------------------------------

MLP = """
def mlp(x: f32[N, 784], w1: f32[784, H], b1: f32[H], w2: f32[H, 10], b2: f32[10]) -> f32[N, 10] {
    h = relu(x @ w1 + b1)
    return softmax(h @ w2 + b2, axis=-1)
}
"""

TRAIN_STEP = """
def train_step(x: f32[N, 64], y: i32[N], w: f32[64, 10], b: f32[10], lr: f32)
        -> (f32[64, 10], f32[10], f32) {
    loss = mean(cross_entropy(x @ w + b, y))
    gw, gb = grad(loss, [w, b])
    return w - lr * gw, b - lr * gb, loss
}
""".replace("\n        ->", " ->")


def test_mlp_lowers_to_tc_ops_with_name_hints() -> None:
    text = print_module(lower(MLP))
    assert "func.func @mlp(%x: f32[N, 784], %w1: f32[784, H]" in text
    assert "%h = tc.relu" in text
    assert "tc.broadcast_to %b1 : (f32[H]) -> f32[N, H]" in text
    assert "tc.softmax %5 {axis = 1} : (f32[N, 10]) -> f32[N, 10]" in text
    assert "result_names" not in text


def test_train_step_grad_tuple_and_result_names() -> None:
    func = function(TRAIN_STEP, "train_step")
    text = print_module(lower(TRAIN_STEP))
    assert "%gw, %gb = tc.grad %loss, %w, %b : (f32, f32[64, 10], f32[10]) -> " in text
    assert func.result_names == ["result0", "result1", "loss"]
    assert str(func.function_type) == "(f32[N, 64], i32[N], f32[64, 10], f32[10], f32) -> " \
        "(f32[64, 10], f32[10], f32)"


TUPLES = """
def two(x: f32[N]) -> (f32[N], f32[N]) {
    return (x, x * 2.0)
}
def f(a: f32[N], b: f32[N]) -> (f32[N], f32[N], f32) {
    a, b = b, a
    (p, q) = two(a)
    r, s = (p + 1.0, q)
    return r, s, 3.0,
}
def one(x: f32[N]) -> f32[N] {
    return (x,)
}
"""


def test_tuples_are_written_as_in_python() -> None:
    """`return (a, b)`, `a, b = b, a`, `(p, q) = f(x)` and trailing commas, as in Python."""
    import numpy as np

    import tensorc

    a, b = np.arange(3, dtype=np.float32), np.arange(3, dtype=np.float32) * 10
    for target in ("interp", "cpu"):
        module = tensorc.compile(TUPLES, target=target)
        r, s, three = module.f(a, b)
        np.testing.assert_array_equal(r, b + 1)
        np.testing.assert_array_equal(s, b * 2)
        assert three == 3.0
        np.testing.assert_array_equal(module.one(a), a)
    assert str(function(TUPLES, "two").function_type) == "(f32[N]) -> (f32[N], f32[N])"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("x = (a, b)\n return x", "2:6: cannot assign 2 values to 1 name; unpack them into 2"),
        ("return (a, b) + 1.0", "2:9: operator '+' cannot be applied to a tuple of 2 values"),
        ("p, q = a, b, a\n return p", "2:9: cannot unpack 3 values into 2 names"),
        ("(p, 1.0) = a, b\n return p", "2:6: cannot assign to this expression; only names"),
        ("return relu((a, b))", "2:14: relu() argument 'x' must be a tensor, found a tuple"),
    ],
)
def test_a_tuple_where_a_tensor_is_needed_is_an_error(body: str, message: str) -> None:
    header = first_error(f"def f(a: f32[N], b: f32[N]) {{\n {body}\n}}")
    location, text = message.split(" ", 1)
    assert header.startswith(f"t.tc:{location} error: {text}"), header


def test_locations_of_ops_and_function() -> None:
    func = function("def f(x: f32[N]) {\n  y = exp(x)\n  return y\n}")
    assert (func.loc.line, func.loc.col) == (1, 1)
    exp_op, ret = func.body.ops
    assert (exp_op.loc.line, exp_op.loc.col) == (2, 7)
    assert ret.name == "func.return" and ret.loc.line == 3


def test_rebinding_gives_new_values_with_unique_names() -> None:
    text = print_module(lower("def f(x: f32[N]) { x = x + 1; x = x * 2; return x }"))
    assert "%x_1 = tc.add %x" in text and "%x_2 = tc.mul %x_1" in text


def test_result_names_only_when_not_default() -> None:
    assert function("def f(x: f32) { y = x; return y, x * 2 }").result_names == [
        "y", "result1"
    ]
    assert function("def f(x: f32) { return x * 2 }").result_names is None
    assert function("def f(x: f32) { return x, x }").result_names == ["x", "result1"]


def test_functions_call_each_other_in_any_order() -> None:
    source = """
def f(a: f32[B, 3]) { p, q = g(a); return p + q }
def g(x: f32[N, 3]) { return x * 2, h(x) }
def h(x: f32[M, 3]) -> f32[M, 3] { return relu(x) }
"""
    module = lower(source)
    assert [f.sym_name for f in module.functions] == ["f", "g", "h"]
    text = print_module(module)
    assert "%p, %q = func.call %a {callee = @g} : (f32[B, 3]) -> (f32[B, 3], f32[B, 3])" in text
    assert "func.call %x {callee = @h} : (f32[N, 3]) -> f32[N, 3]" in text


def test_call_binds_symbols_and_keywords() -> None:
    source = """
def g(x: f32[N, K], y: f32[K]) { return sum(x * y, 1) }
def f(a: f32[5, 7], b: f32[7]) { return g(y=b, x=a) }
"""
    assert str(function(source).function_type.results[0]) == "f32[5]"


def test_call_with_unproven_symbol_adds_constraint() -> None:
    source = """
def g(x: f32[N], y: f32[N]) { return x + y }
def f(a: f32[A], b: f32[B]) { return g(a, b) }
"""
    assert constraints(source) == [("eq", "B", "A", "ValueError")]


def test_weak_literal_argument_takes_parameter_dtype() -> None:
    source = "def g(s: f64) { return s }\ndef f(x: f32) { return g(2) }"
    assert str(function(source).function_type.results[0]) == "f64"


def test_weak_scalars_bound_to_names_stay_weak() -> None:
    assert result_types("x: f64[3]", "x * 0.5") == "f64[3]"
    func = function("def f(x: f64[3]) { lr = 0.1; return x - lr }")
    assert str(func.function_type.results[0]) == "f64[3]"


def test_dimension_names_are_integers_in_expressions() -> None:
    assert result_types("x: f32[N, 3]", "zeros([N, 3]) + x") == "f32[N, 3]"
    assert result_types("x: f32[N, 3]", "full([2 * N], 1.0)") == "f32[2*N]"
    assert result_types("x: f64[N]", "x / N") == "f64[N]"
    assert result_types("x: f32[N]", "N") == "i32"
    assert "tc.dim_size {value = #dim<N + 1>}" in print_module(
        lower("def f(x: f32[N]) { return N + 1 }")
    )


def test_shape_attribute() -> None:
    assert result_types("x: f32[N, 3]", "x.shape[0]") == "i32"
    assert result_types("x: f32[N, 3]", "zeros(x.shape, i32)") == "i32[N, 3]"
    assert result_types("x: f32[N, 3]", "reshape(x, [x.shape[-1], -1])") == "f32[3, N]"
    text = print_module(lower("def f(x: f32[N, 3]) { return x.shape[1] }"))
    assert "tc.constant {value = dense<3 : i32>}" in text


def test_transpose_attribute() -> None:
    assert result_types("x: f32[N, 3, K]", "x.T") == "f32[K, 3, N]"
    assert result_types("x: f32[N]", "x.T") == "f32[N]"


def test_literal_folding() -> None:
    assert result_types("x: f32", "1 + 2, 2.5 * 2, 7 // -2, true, 2 ** 10") == (
        "i32, f32, i32, bool, i32"
    )
    text = print_module(lower("def f(x: f32) { return 7 // -2, 1 / 4 }"))
    assert "dense<-4 : i32>" in text and "dense<0.25 : f32>" in text


# ----- dtype promotion --------------------------------------------------------------------------

PROMOTIONS = [
    ("x: i32, y: f32", "x + y", "f32"),
    ("x: bool, y: i32", "x + y", "i32"),
    ("x: i32, y: i64", "x * y", "i64"),
    ("x: f32, y: f64", "x - y", "f64"),
    ("x: i64, y: f32", "x + y", "f32"),
    ("x: f16, y: bf16", "x + y", "f32"),
    ("x: f16, y: f32", "x + y", "f32"),
    ("x: bool, y: f64", "x * y", "f64"),
    # weak literals
    ("x: f64", "x + 1.0", "f64"),
    ("x: i64", "x + 1", "i64"),
    ("x: i32", "x + 1.5", "f32"),
    ("x: i64", "x * 0.5", "f32"),
    ("x: bool", "x + 1", "i32"),
    ("x: bool", "x + 1.0", "f32"),
    ("x: f16", "x * 2", "f16"),
    ("x: f64", "2 * x", "f64"),
    ("x: f32", "1", "i32"),
    ("x: f32", "1.0", "f32"),
    ("x: f32", "true", "bool"),
    ("x: f32", "1 + 2.0", "f32"),
    # division and friends
    ("x: i32", "x / 2", "f32"),
    ("x: i64, y: i64", "x / y", "f32"),
    ("x: f64", "x / 2", "f64"),
    ("x: i32", "x // 2", "i32"),
    ("x: i32", "x % 2.0", "f32"),
    ("x: f64", "x ** 2", "f64"),
    ("x: i64", "-x", "i64"),
    # comparisons and logic
    ("x: i32, y: f64", "x < y", "bool"),
    ("x: f32", "x == 1", "bool"),
    ("x: bool, y: bool", "x < y", "bool"),
    ("x: bool, y: bool", "x and y or not x", "bool"),
    ("x: f32", "(x > 0) and true", "bool"),
    # float-only functions take integers to f32
    ("x: i32", "exp(x)", "f32"),
    ("x: i64", "sqrt(x)", "f32"),
    ("x: bool", "sigmoid(x)", "f32"),
    ("x: f64", "tanh(x)", "f64"),
    ("x: i64", "abs(x)", "i64"),
    ("x: f32", "x.shape", None),
]


@pytest.mark.parametrize("params, expr, expected", [p for p in PROMOTIONS if p[2]])
def test_promotion(params: str, expr: str, expected: str) -> None:
    assert result_types(params, expr) == expected


def test_promotion_inserts_casts_and_typed_constants() -> None:
    text = print_module(lower("def f(x: i32[3], y: f64) { return x + y, x * 2.5 }"))
    assert "tc.cast %x : (i32[3]) -> f64[3]" in text
    assert "tc.broadcast_to %y : (f64) -> f64[3]" in text
    assert "tc.constant {value = dense<2.5 : f32>}" in text


def test_ordering_comparison_of_bools_compares_as_integers() -> None:
    assert "tc.cast %x : (bool) -> i32" in print_module(
        lower("def f(x: bool, y: bool) { return x < y }")
    )


# ----- broadcasting ------------------------------------------------------------------------------

BROADCASTS = [
    ("x: f32[N, 4], y: f32[4]", "f32[N, 4]", []),
    ("x: f32[N, 1], y: f32[1, M]", "f32[N, M]", []),
    ("x: f32[3, 1, 5], y: f32[4, 1]", "f32[3, 4, 5]", []),
    ("x: f32[N], y: f32[M]", "f32[N]", [("eq", "N", "M", "ValueError")]),
    ("x: f32[N], y: f32[4]", "f32[4]", [("eq", "N", "4", "ValueError")]),
    ("x: f32[B, N, 4], y: f32[N, 1]", "f32[B, N, 4]", []),
    ("x: f32, y: f32[2, 3]", "f32[2, 3]", []),
]


@pytest.mark.parametrize("params, expected, deferred", BROADCASTS)
def test_broadcasting(params: str, expected: str, deferred: list) -> None:
    source = f"def f({params}) {{ return x + y }}"
    assert result_types(params, "x + y") == expected
    assert constraints(source) == deferred


def test_symbolic_broadcast_constraint_message() -> None:
    func = function("def f(x: f32[N, 3], y: f32[M, 3]) {\n  return x * y\n}")
    (constraint,) = func.shape_constraints
    assert constraint.message == (
        "t.tc:2:10: operator '*': dimension N of [N, 3] and M of [M, 3] must be equal"
    )


def test_broadcast_inserts_broadcast_to() -> None:
    text = print_module(lower("def f(x: f32[N, 4], y: f32[4]) { return x + y }"))
    assert "tc.broadcast_to %y : (f32[4]) -> f32[N, 4]" in text
    assert "tc.add %x, %0 : (f32[N, 4], f32[N, 4]) -> f32[N, 4]" in text


# ----- matmul ----------------------------------------------------------------------------------

MATMULS = [
    ("x: f32[N, K], y: f32[K, M]", "f32[N, M]"),
    ("x: f32[K], y: f32[K, M]", "f32[M]"),
    ("x: f32[N, K], y: f32[K]", "f32[N]"),
    ("x: f32[K], y: f32[K]", "f32"),
    ("x: f32[B, N, K], y: f32[K, M]", "f32[B, N, M]"),
    ("x: f32[B, 1, N, K], y: f32[C, K, M]", "f32[B, C, N, M]"),
    ("x: i32[2, 3], y: f64[3, 4]", "f64[2, 4]"),
]


@pytest.mark.parametrize("params, expected", MATMULS)
def test_matmul_shapes(params: str, expected: str) -> None:
    assert result_types(params, "x @ y") == expected
    assert result_types(params, "matmul(x, y)") == expected


def test_matmul_vector_reshapes_and_symbolic_contraction() -> None:
    source = "def f(x: f32[K], y: f32[J, M]) { return x @ y }"
    assert ops(source) == ["tc.reshape", "tc.matmul", "tc.reshape", "func.return"]
    assert constraints(source) == [("eq", "K", "J", "ValueError")]


def test_dot() -> None:
    assert result_types("x: f32[3], y: f32[3]", "dot(x, y)") == "f32"
    assert result_types("x: f32[2, 3], y: f32[3]", "dot(x, y)") == "f32[2]"
    assert result_types("x: f32[2, 3]", "dot(x, 2)") == "f32[2, 3]"


# ----- indexing ----------------------------------------------------------------------------------

SLICES = [
    ("x[2:5]", "f32[3, N]"),
    ("x[::2]", "f32[5, N]"),
    ("x[-3:]", "f32[3, N]"),
    ("x[:, 1:]", "f32[10, N - 1]"),
    ("x[1]", "f32[N]"),
    ("x[-1, 0]", "f32"),
    ("x[..., 0]", "f32[10]"),
    ("x[2:100]", "f32[8, N]"),
    ("x[:, 1:N]", "f32[10, N - 1]"),
    ("x[0:0]", "f32[0, N]"),
    ("x[1:8:3]", "f32[3, N]"),
    ("x[3, :]", "f32[N]"),
    ("x[:, N-1]", "f32[10]"),
    ("x[:, -2]", "f32[10]"),
    ("x[...]", "f32[10, N]"),
    ("x[:]", "f32[10, N]"),
    ("x[-20:3]", "f32[3, N]"),
]


@pytest.mark.parametrize("expr, expected", SLICES)
def test_slice_shapes(expr: str, expected: str) -> None:
    assert result_types("x: f32[10, N]", expr) == expected


def test_symbolic_negative_bounds_count_from_the_end() -> None:
    assert ops("def f(x: f32[N]) { return x[-N:], x[-2 * N:] }") == ["func.return"]
    assert result_types("x: f32[N]", "x[:-N - 1]") == "f32[0]"
    assert result_types("x: f32[N]", "x[-N]") == "f32"
    assert constraints("def f(x: f32[N]) { return x[-N] }") == [("lt", "0", "N", "IndexError")]


def test_integer_index_is_slice_then_reshape() -> None:
    source = "def f(x: f32[10, N]) { return x[1] }"
    assert ops(source) == ["tc.slice", "tc.reshape", "func.return"]
    assert "starts = [1, none], steps = [1, 1], stops = [2, none]" in print_module(lower(source))


def test_trivial_index_emits_nothing() -> None:
    assert ops("def f(x: f32[10, N]) { return x[:, ...] }") == ["func.return"]


def test_symbolic_index_checks_at_call_time() -> None:
    assert constraints("def f(x: f32[N]) { return x[3] }") == [("lt", "3", "N", "IndexError")]
    assert constraints("def f(x: f32[N]) { return x[-2] }") == [("le", "2", "N", "IndexError")]
    assert constraints("def f(x: f32[N]) { return x[N - 1] }") == [
        ("le", "1", "N", "IndexError")
    ]
    message = function("def f(x: f32[N]) { return x[3] }").shape_constraints[0].message
    assert message == "t.tc:1:29: index 3 is out of range for axis 0 of f32[N]"


# ----- built-ins ---------------------------------------------------------------------------------

BUILTIN_CASES = [
    # (params, expression, result type, op that must appear)
    ("x: f32[N, 4]", "neg(x)", "f32[N, 4]", "tc.neg"),
    ("x: f32[N, 4]", "abs(x)", "f32[N, 4]", "tc.abs"),
    ("x: i32[N, 4]", "sign(x)", "i32[N, 4]", "tc.sign"),
    ("x: f32[N, 4]", "exp(x)", "f32[N, 4]", "tc.exp"),
    ("x: f32[N, 4]", "log(x)", "f32[N, 4]", "tc.log"),
    ("x: f32[N, 4]", "log1p(x)", "f32[N, 4]", "tc.log1p"),
    ("x: f32[N, 4]", "expm1(x)", "f32[N, 4]", "tc.expm1"),
    ("x: f32[N, 4]", "sqrt(x)", "f32[N, 4]", "tc.sqrt"),
    ("x: f32[N, 4]", "rsqrt(x)", "f32[N, 4]", "tc.rsqrt"),
    ("x: f32[N, 4]", "sin(x)", "f32[N, 4]", "tc.sin"),
    ("x: f32[N, 4]", "cos(x)", "f32[N, 4]", "tc.cos"),
    ("x: f32[N, 4]", "tanh(x)", "f32[N, 4]", "tc.tanh"),
    ("x: f32[N, 4]", "sigmoid(x)", "f32[N, 4]", "tc.sigmoid"),
    ("x: f32[N, 4]", "relu(x)", "f32[N, 4]", "tc.relu"),
    ("x: f32[N, 4]", "gelu(x)", "f32[N, 4]", "tc.gelu"),
    ("x: f32[N, 4]", "gelu(x, approximate=true)", "f32[N, 4]", "approximate = true"),
    ("x: f32[N, 4]", "erf(x)", "f32[N, 4]", "tc.erf"),
    ("x: f32[N, 4]", "floor(x)", "f32[N, 4]", "tc.floor"),
    ("x: f32[N, 4]", "ceil(x)", "f32[N, 4]", "tc.ceil"),
    ("x: f32[N, 4]", "square(x)", "f32[N, 4]", "tc.square"),
    ("x: f32[N, 4]", "softplus(x)", "f32[N, 4]", "tc.softplus"),
    ("x: f32[N, 4], y: f32[4]", "maximum(x, y)", "f32[N, 4]", "tc.maximum"),
    ("x: f32[N, 4]", "minimum(x, 0)", "f32[N, 4]", "tc.minimum"),
    ("x: f32[N, 4]", "pow(x, 3)", "f32[N, 4]", "tc.pow"),
    ("c: bool[N, 1], x: f32[N, 4]", "where(c, x, 0.0)", "f32[N, 4]", "tc.select"),
    ("x: i32[N]", "where(x > 0, x, 0.5)", "f32[N]", "tc.select"),
    ("x: f32[N, 4]", "clip(x, -1, 1)", "f32[N, 4]", "tc.minimum"),
    ("x: f32[N, 4]", "clip(x, lo=0)", "f32[N, 4]", "tc.maximum"),
    ("x: f32[N, 4]", "cast(x, f64)", "f64[N, 4]", "tc.cast"),
    ("x: f32[N, 4]", "cast(x, dtype=i32)", "i32[N, 4]", "tc.cast"),
    ("x: f32[N, 4]", "sum(x)", "f32", "tc.sum"),
    ("x: f32[N, 4]", "sum(x, 1)", "f32[N]", "axes = [1]"),
    ("x: f32[N, 4]", "sum(x, axis=-1, keepdims=true)", "f32[N, 1]", "keepdims = true"),
    ("x: f32[N, 4, 5]", "sum(x, [0, 2])", "f32[4]", "axes = [0, 2]"),
    ("x: bool[N, 4]", "sum(x)", "i32", "tc.sum"),
    ("x: f32[N, 4]", "mean(x, 0)", "f32[4]", "tc.mean"),
    ("x: i32[N, 4]", "mean(x)", "f32", "tc.mean"),
    ("x: f32[N, 4]", "max(x, 1)", "f32[N]", "tc.max"),
    ("x: i64[N, 4]", "min(x, 0)", "i64[4]", "tc.min"),
    ("x: f32[N, 4]", "prod(x, 1)", "f32[N]", "tc.prod"),
    ("x: f32[N, 4]", "argmax(x)", "i32", "tc.argmax"),
    ("x: f32[N, 4]", "argmax(x, 1)", "i32[N]", "axis = 1"),
    ("x: f32[N, 4]", "argmin(x, axis=0, keepdims=true)", "i32[1, 4]", "tc.argmin"),
    ("x: f32[N, 4]", "logsumexp(x, 1)", "f32[N]", "tc.logsumexp"),
    ("x: f32[N, 4]", "var(x, 1)", "f32[N]", "tc.square"),
    ("x: i32[N, 4]", "var(x)", "f32", "tc.mean"),
    ("x: f32[N, 4], y: f32[4, M]", "matmul(x, y)", "f32[N, M]", "tc.matmul"),
    ("x: f32[N, 4], y: f32[4]", "dot(x, y)", "f32[N]", "tc.matmul"),
    ("x: f32[N, 4]", "transpose(x)", "f32[4, N]", "perm = [1, 0]"),
    ("x: f32[N, 4, 5]", "transpose(x, [1, 0, 2])", "f32[4, N, 5]", "perm = [1, 0, 2]"),
    ("x: f32[N, 4]", "reshape(x, [-1])", "f32[4*N]", "tc.reshape"),
    ("x: f32[N, 28, 28]", "reshape(x, [N, -1])", "f32[N, 784]", "tc.reshape"),
    ("x: f32[N, 6]", "reshape(x, [-1, 2, 3])", "f32[N, 2, 3]", "tc.reshape"),
    ("x: f32[B, T, C]", "reshape(x, [-1, C])", "f32[B*T, C]", "tc.reshape"),
    ("x: f32[N, 4], b: f32[B]", "broadcast_to(x, [B, N, 4])", "f32[B, N, 4]", "tc.broadcast_to"),
    ("x: f32[N, 4]", "expand_dims(x, 0)", "f32[1, N, 4]", "tc.reshape"),
    ("x: f32[N, 4]", "expand_dims(x, [0, -1])", "f32[1, N, 4, 1]", "tc.reshape"),
    ("x: f32[N, 1, 4]", "squeeze(x)", "f32[N, 4]", "tc.reshape"),
    ("x: f32[N, 1, 4]", "squeeze(x, 1)", "f32[N, 4]", "tc.reshape"),
    ("x: f32[N, 4], y: f32[N, 2]", "concat([x, y], 1)", "f32[N, 6]", "tc.concat"),
    ("x: f32[N, 4], y: i32[M, 4]", "concat([x, y])", "f32[M + N, 4]", "tc.cast"),
    ("x: f32[N, 4]", "stack([x, x])", "f32[2, N, 4]", "tc.concat"),
    ("x: f32[N, 4]", "stack([x, x, x], axis=-1)", "f32[N, 4, 3]", "axis = 2"),
    ("x: f32[N, 4], i: i32[K]", "take(x, i, 0)", "f32[K, 4]", "tc.take"),
    ("x: f32[N, 4]", "take(x, 2, axis=1)", "f32[N]", "tc.take"),
    ("x: f32[N, 4], i: i64[K]", "take(x, i)", "f32[K]", "tc.take"),
    ("x: f32[N, 4], i: i32[N, 2]", "take_along_axis(x, i, 1)", "f32[N, 2]", "tc.take_along_axis"),
    ("i: i32[N]", "one_hot(i, 10)", "f32[N, 10]", "n = 10"),
    ("x: f32", "zeros([N, 3])" .replace("N", "2"), "f32[2, 3]", "tc.constant"),
    ("x: f32[N]", "ones([N, 3], i32)", "i32[N, 3]", "dense<1 : i32>"),
    ("x: f32[N]", "full([N], 2)", "i32[N]", "dense<2 : i32>"),
    ("x: f32[N]", "full([N, 2], 0.5, dtype=f64)", "f64[N, 2]", "dense<0.5 : f64>"),
    ("x: f64", "full([3], x)", "f64[3]", "tc.broadcast_to"),
    ("x: f32[N]", "arange(N)", "i32[N]", "tc.iota"),
    ("x: f32[N]", "arange(5, f32)", "f32[5]", "tc.iota"),
    ("x: i64[N, 2]", "zeros_like(x)", "i64[N, 2]", "dense<0 : i64>"),
    ("x: i64[N, 2]", "ones_like(x, f32)", "f32[N, 2]", "dense<1.0 : f32>"),
    ("x: f32[N, 4]", "softmax(x)", "f32[N, 4]", "axis = 1"),
    ("x: f32[N, 4]", "softmax(x, 0)", "f32[N, 4]", "axis = 0"),
    ("x: f32[N, 4]", "log_softmax(x, axis=-1)", "f32[N, 4]", "tc.log_softmax"),
    ("x: f32[N, 4], g: f32[4], b: f32[4]", "layer_norm(x, g, b)", "f32[N, 4]", "eps = 1e-05"),
    ("x: f32[N, 4]", "layer_norm(x, 1.0, 0.0, eps=1e-3)", "f32[N, 4]", "eps = 0.001"),
    ("x: f32[N, 4], y: i32[N]", "cross_entropy(x, y)", "f32[N]", "tc.cross_entropy"),
    ("x: f32[N, 4], y: f32[N, 4]", "mse(x, y)", "f32", "tc.square"),
    ("x: f32[N, 4]", "grad(sum(x * x), x)", "f32[N, 4]", "tc.grad"),
    ("x: f32[N, 4]", "stop_gradient(x)", "f32[N, 4]", "tc.stop_gradient"),
]


@pytest.mark.parametrize("params, expr, expected, op", BUILTIN_CASES)
def test_builtin_lowers_and_verifies(params: str, expr: str, expected: str, op: str) -> None:
    module = lower(f"def f({params}) {{ return {expr} }}")
    verify_module(module)
    assert ", ".join(map(str, module.functions[0].function_type.results)) == expected
    assert op in print_module(module)


def test_every_builtin_is_exercised() -> None:
    called = {case[1].split("(")[0] for case in BUILTIN_CASES}
    assert set(BUILTINS) <= called | {"zeros"}


def test_builtins_table_signatures() -> None:
    sum_builtin: Builtin = BUILTINS["sum"]
    assert sum_builtin.params == ("x", "axis", "keepdims")
    assert sum_builtin.signature == "sum(x, axis=None, keepdims=False)"
    assert builtins_table.lookup_builtin("layer_norm").defaults == {"eps": 1e-5}


def test_positional_and_keyword_arguments_are_equivalent() -> None:
    by_position = print_module(lower("def f(x: f32[N, 4]) { return sum(x, 1, true) }"))
    by_keyword = print_module(
        lower("def f(x: f32[N, 4]) { return sum(keepdims=true, axis=1, x=x) }")
    )
    assert by_position == by_keyword


def test_keyword_names_follow_the_spec() -> None:
    params = "x: f32[N, 4], i: i32[N], c: bool[N, 4]"
    assert result_types(params, "take(x, idx=i, axis=0)") == "f32[N, 4]"
    assert result_types(params, "where(cond=c, a=x, b=0)") == "f32[N, 4]"
    assert result_types(params, "mse(a=x, b=x)") == "f32"
    assert result_types(params, "grad(y=sum(x), w=x)") == "f32[N, 4]"
    assert result_types(params, "one_hot(idx=i, n=3)") == "f32[N, 3]"
    assert result_types(params, "take(x, indices=i)") == "f32[N]"  # NumPy's name, an alias
    assert first_error("def f(x: f32[3], i: i32) { return take(x, i, indices=i) }") == (
        "t.tc:1:46: error: take() got multiple values for parameter 'idx'"
    )


def test_var_decomposes_into_mean_of_squared_deviations() -> None:
    assert ops("def f(x: f32[N, 4]) { return var(x, 1) }") == [
        "tc.mean", "tc.broadcast_to", "tc.sub", "tc.square", "tc.mean", "func.return"
    ]


def test_reshape_with_unproven_element_count_is_checked_at_call_time() -> None:
    assert constraints("def f(x: f32[N, M]) { return reshape(x, [K, 2]) }".replace(
        "K", "N")) == [("eq", "2*N", "M*N", "ValueError")]


def test_grad_list_returns_tuple_and_single_returns_value() -> None:
    source = "def f(w: f32[3], b: f32) { l = sum(w) * b; gw, gb = grad(l, [w, b]); return gw }"
    assert result_types("w: f32[3]", "grad(sum(w), [w])") == "f32[3]"
    assert str(function(source).function_type.results[0]) == "f32[3]"


def test_nested_grad() -> None:
    source = "def f(x: f32) { g = grad(x * x * x, x); return grad(g, x) }"
    assert ops(source) == [
        "tc.mul", "tc.mul", "tc.grad", "tc.grad", "func.return"
    ]


# ----- result annotations -----------------------------------------------------------------

def test_result_annotation_symbolic_expression() -> None:
    source = "def f(x: f32[N], y: f32[M]) -> f32[N + M] { return concat([x, y]) }"
    assert str(function(source).function_type) == "(f32[N], f32[M]) -> f32[M + N]"


def test_result_annotation_unproven_adds_constraint() -> None:
    source = "def f(x: f32[N], y: f32[M]) -> f32[N] {\n  return y\n}"
    func = function(source)
    assert str(func.function_type) == "(f32[N], f32[M]) -> f32[N]"
    (constraint,) = func.shape_constraints
    assert constraint.message == (
        "t.tc:2:10: result 0 of 'f': dimension M of [M] and N of [N] must be equal"
    )


def test_result_annotation_gives_weak_literal_its_dtype() -> None:
    assert str(function("def f(x: f32) -> f64 { return 1.5 }").function_type) == "(f32) -> f64"


# ----- diagnostics ---------------------------------------------------------------------------

ERRORS = [
    ("def f(x: f32[N]) { return foo + x }", "1:27: error: unknown name 'foo'"),
    ("def f(x: f32[N]) { return foo(x) }", "1:27: error: unknown function 'foo'"),
    ("def f(x: f32[N]) { return exp(x, 2) }",
     "1:34: error: exp() takes 1 argument (x) but 2 were given"),
    ("def f(x: f32[N]) { return sum(x, axs=0) }",
     "1:34: error: sum() has no parameter named 'axs' (parameters: x, axis, keepdims)"),
    ("def f(x: f32[N]) { return sum(x, 0, axis=0) }",
     "1:37: error: sum() got multiple values for parameter 'axis'"),
    ("def f(x: f32[N]) { return reshape(x) }",
     "1:27: error: reshape() missing required argument 'shape'"),
    ("def f(x: f32[3], y: f32[4]) { return x + y }",
     "1:38: error: operator '+' needs broadcast-compatible shapes, found [3] and [4]"),
    ("def f(x: f32[3, 4], y: f32[5, 6]) { return x @ y }",
     "1:44: error: operator '@': contracting dimension 4 of [3, 4] does not match 5 of [5, 6]"),
    ("def f(x: bool[3], y: bool[3]) { return x * y }",
     "1:40: error: operator '*' needs numeric operands, found bool[3] and bool[3]"),
    ("def f(x: f32[3, 4], y: f32[3]) { return cross_entropy(x, y) }",
     "1:58: error: cross_entropy() argument 'labels' must be an integer tensor of shape [N], "
     "found f32[3]"),
    ("def f(x: i32[3, 4], y: i32[3]) { return cross_entropy(x, y) }",
     "1:55: error: cross_entropy() argument 'logits' must be a float tensor of shape [N, C], "
     "found a tensor i32[3, 4]"),
    ("def f(x: f32[3]) { return grad(x, x) }",
     "1:32: error: grad of a non-scalar: y has type f32[3], but grad needs a float scalar "
     "(reduce it with sum or mean)"),
    ("def f(x: i32) { return grad(x, x) }",
     "1:29: error: grad of an integer: y has type i32, but grad needs a float scalar"),
    ("def f(x: f32[3]) { return grad(sum(x), x * 2) }",
     "1:40: error: grad() differentiates with respect to named values: expected a name bound "
     "to a tensor (a parameter or a local), found an expression"),
    ("def f(x: f32[3]) { lr = 0.1; return grad(mean(x), lr) }",
     "1:51: error: grad() differentiates with respect to tensors: 'lr' is the float 0.1"),
    ("def f(x: f32[3]) { return f(x) }",
     "1:27: error: recursion is not supported: 'f' calls itself"),
    ("def f(x: f32[3]) { return g(x) }\ndef g(x: f32[3]) { return f(x) }",
     "1:27: error: recursion is not supported: f -> g -> f"),
    ("def f(x: f32[3]) -> f32[4] { return x }",
     "1:37: error: function 'f' is declared to return f32[4] but this value has type f32[3]"),
    ("def f(x: f32[3]) -> f64[3] { return x }",
     "1:37: error: function 'f' is declared to return f64[3] but this value has type f32[3]"),
    ("def f(x: f32[3]) -> f32[M] { return x }",
     "1:25: error: unknown dimension 'M' in the result type (result dimensions must be "
     "expressions of the parameters' dimensions)"),
    ("def f(x: f32[3]) { return x[3] }",
     "1:29: error: index 3 is out of range for axis 0 of f32[3] (size 3)"),
    ("def f(x: f32[3]) { return x[-4] }",
     "1:29: error: index -4 is out of range for axis 0 of f32[3] (size 3)"),
    ("def f(x: f32[3]) { return x[0, 0] }",
     "1:27: error: too many indices for f32[3]: 2 given, but it has 1 axis"),
    ("def f(x: f32[3], i: i32) { return x[i] }",
     "1:37: error: an index must be a compile-time integer (a literal or a dimension name), "
     "found a tensor i32; use take() to index with tensors"),
    ("def f(x: f32[3]) { return sum(x, 1) }",
     "1:34: error: axis 1 is out of range for f32[3] of rank 1 (expected -1 <= axis < 1)"),
    ("def f(x: f32[3]) { return sum(x, 1.5) }",
     "1:34: error: sum() axis must be a constant integer, found the float 1.5"),
    ("def f(x: f32[3, 4]) { return sum(x, [0, -2]) }",
     "1:41: error: axis -2 is repeated (it is axis 0)"),
    ("def f(x: f32[3, 4]) { return reshape(x, [5, 3]) }",
     "1:30: error: cannot reshape [3, 4] (12 elements) into [5, 3] (15 elements)"),
    ("def f(x: f32[3, 4]) { return reshape(x, [5, -1]) }",
     "1:30: error: cannot reshape [3, 4] (12 elements) into [5, -1]: 12 is not a multiple of 5"),
    ("def f(x: f32[N]) { return reshape(x, [-1, -1]) }",
     "1:43: error: reshape's shape can have only one -1"),
    ("def f(x: f32[3]) { a, b = x; return a }",
     "1:27: error: cannot unpack a tensor f32[3] into 2 names"),
    ("def f(x: f32[3]) { a = grad(sum(x), [x, x]); return a }",
     "1:24: error: cannot assign 2 values to 1 name; unpack them into 2 names"),
    ("def g(x: f32[3]) { return x, x }\ndef f(x: f32[3]) { a, b, c = g(x); return a }",
     "2:30: error: cannot unpack 2 values into 3 names"),
    ("def f(x: f32[3]) -> (f32[3], f32[3]) { return x }",
     "1:40: error: function 'f' returns 1 value but its result type declares 2"),
    ("def f(x: f32[3]) { return x and x }",
     "1:27: error: operator 'and' needs bool operands, found f32[3]"),
    ("def f(x: f32[3]) { return not x }", "1:27: error: 'not' needs a bool operand, found f32[3]"),
    ("def f(x: f32[3, 4]) { return squeeze(x, 1) }",
     "1:41: error: squeeze() can only remove axes of size 1, but axis 1 of f32[3, 4] has size 4"),
    ("def f(x: f32[3]) { return x[::0] }", "1:31: error: a slice step must be positive, found 0"),
    ("def f(x: f32[3], x: f32[3]) { return x }",
     "1:18: error: duplicate parameter 'x' in function 'f'"),
    ("def f(x: f32[3]) { return x }\ndef f(x: f32[3]) { return x }",
     "2:5: error: function 'f' is already defined"),
    ("def f(x: f32[3]) { y = x }", "1:5: error: function 'f' has no return statement"),
    ("def f(x: f32[3]) { x + 1\n return x }",
     "1:20: error: the value of this expression is unused; assign it to a name or return it"),
    ("def f(x: f32[3]) { return x\n y = 2 }", "2:2: error: unreachable statement after 'return'"),
    ("def f(x: f32[3]) { return }", "1:20: error: 'return' in function 'f' needs a value"),
    ("def f(x: f32[3]) { return -(x > 0) }",
     "1:27: error: unary '-' needs a numeric operand, found bool[3]"),
    ("def f(x: f32[3]) { return where(x, x, 0) }",
     "1:33: error: where() argument 'cond' must be a bool tensor, found a tensor f32[3]"),
    ("def f(x: f32[3]) { return cast(x, 3) }",
     "1:35: error: cast() argument 'dtype' must be a dtype (f32, f64, i32, i64, bool), found "
     "the integer 3"),
    ("def f(x: f32[3]) { return zeros([3, x]) }",
     "1:37: error: zeros() shape entries must be integers or dimension names, found a tensor "
     "f32[3]"),
    ("def f(x: f32[3]) { return one_hot(x, 3) }",
     "1:35: error: one_hot() indices must be an integer tensor, found f32[3]"),
    ("def f(x: f32[3]) { return concat([x, zeros([3, 2])]) }",
     "1:38: error: concat() operands must have the same rank, found f32[3] and f32[3, 2]"),
    ("def f(x: f32[3]) { return stack([x, zeros([4])]) }",
     "1:37: error: stack() operands must have the same shape, found f32[3] and f32[4]"),
    ("def f(x: f32[3, 2]) { return transpose(x, [0, 0]) }",
     "1:43: error: transpose() perm [0, 0] is not a permutation of the 2 axes of f32[3, 2]"),
    ("def f(x: f32[3]) { return broadcast_to(x, [4]) }",
     "1:27: error: broadcast_to(): cannot broadcast f32[3] to [4]"),
    ("def f(x: f32[3]) { return x.foo }",
     "1:29: error: unknown attribute 'foo' (tensors have .T and .shape)"),
    ("def f(x: f32[3]) { return sum }", "1:27: error: 'sum' is a function; call it with arguments"),
    ("def f(x: f32[3], w: f32[4]) { return layer_norm(x, w, 0.0) }",
     "1:52: error: layer_norm() argument 'gamma' must have shape [3] (the last axis of f32[3]), "
     "found f32[4]"),
    ("def g(x: f32[N]) { return x }\ndef f(x: f64[3]) { return g(x) }",
     "2:29: error: argument 'x' of g() must have type f32[N], found f64[3]"),
    ("def g(x: f32[N], y: f32[N]) { return x + y }\ndef f(x: f32[3], y: f32[4]) { return g(x, y) }",
     "2:43: error: argument 'y' of g(): dimension N is 4 here but 3 in an earlier argument"),
    ("def f(x: i32[3]) { return x + 2147483648 }",
     "1:31: error: integer 2147483648 does not fit in i32"),
    ("def f(x: i32[3]) { return x + 2 ** 31 }",
     "1:31: error: integer 2147483648 does not fit in i32"),
    ("def f(x: f32[3]) { return expand_dims(x, 3) }",
     "1:42: error: axis 3 is out of range for the result of rank 2 (expected -2 <= axis < 2)"),
    ("def f(x: f32[3]) { return gelu(x, approximate=1) }",
     "1:47: error: gelu() argument 'approximate' must be true or false, found the integer 1"),
    ("def f(x: f32[3]) { return [x, x] }",
     "1:27: error: cannot return a list of 2 elements; return tensors"),
    ("def f(x: f32[3]) { return x @ 2 }",
     "1:27: error: operator '@' needs operands of rank >= 1, found f32[3] and a scalar i32"),
]


@pytest.mark.parametrize("source, expected", ERRORS)
def test_error_message(source: str, expected: str) -> None:
    assert first_error(source) == f"t.tc:{expected}"


def test_integer_powers_of_literals_are_exact_until_a_dtype_is_met() -> None:
    import numpy as np

    import tensorc

    module = tensorc.compile(
        "def f(x: f32[2], y: i64[2]) { return x * 2 ** 31, y + 2 ** 40, 3 ** 2 + (-2) ** 3 }",
        target="interp",
    )
    scaled, shifted, small = module.f(np.ones(2, np.float32), np.zeros(2, np.int64))
    assert scaled.tolist() == [2.0**31, 2.0**31]  # it wrapped to -2**31 as an i32 power
    assert shifted.tolist() == [2**40, 2**40] and small == 1


def test_there_are_many_distinct_error_messages() -> None:
    assert len({message.split("error: ")[1].split("'")[0] for _, message in ERRORS}) >= 30


def test_mutual_recursion_reports_every_call_in_the_cycle() -> None:
    source = "def f(x: f32) { return g(x) }\ndef g(x: f32) { return h(x) }\n" \
        "def h(x: f32) { return f(x) }"
    assert errors(source) == [
        "t.tc:1:24: error: recursion is not supported: f -> g -> h -> f",
        "t.tc:2:24: error: recursion is not supported: g -> h -> f -> g",
        "t.tc:3:24: error: recursion is not supported: h -> f -> g -> h",
    ]


def test_every_independent_error_is_reported() -> None:
    source = """def f(x: f32[3]) {
    h = bad(x)
    y = h + zz
    return y + qq
}
def g(x: f32[3]) { return x @ x @ x }
def k(x: f32[3], y: f32[4]) { return x + y, sum(x, 2) }
"""
    assert errors(source) == [
        "t.tc:2:9: error: unknown function 'bad'",
        "t.tc:3:13: error: unknown name 'zz'",
        "t.tc:4:16: error: unknown name 'qq'",
        "t.tc:6:27: error: operator '@' needs operands of rank >= 1, found a scalar f32 and "
        "f32[3]",
        "t.tc:7:38: error: operator '+' needs broadcast-compatible shapes, found [3] and [4]",
        "t.tc:7:52: error: axis 2 is out of range for f32[3] of rank 1 (expected -1 <= axis < 1)",
    ]


def test_failed_statement_does_not_cascade() -> None:
    source = "def f(x: f32[3]) {\n  h = unknown_fn(x)\n  p, q = h\n  y = relu(h) + p\n" \
        "  return y[0] @ q\n}"
    assert errors(source) == ["t.tc:2:7: error: unknown function 'unknown_fn'"]


def test_errors_in_callee_do_not_cascade_into_caller() -> None:
    source = "def g(x: f32[N]) { return nope }\ndef f(x: f32[3]) { return g(x) * 2 }"
    assert errors(source) == ["t.tc:1:27: error: unknown name 'nope'"]


def test_caller_is_checked_against_declared_types_of_failing_callee() -> None:
    source = "def g(x: f32[N]) -> f32[N] { return nope }\n" \
        "def f(x: f32[3]) { return g(x) + zeros([4]) }"
    assert errors(source) == [
        "t.tc:1:37: error: unknown name 'nope'",
        "t.tc:2:27: error: operator '+' needs broadcast-compatible shapes, found [3] and [4]",
    ]


def test_several_errors_in_one_expression() -> None:
    assert errors("def f(x: f32) { return foo + bar(x, baz) }") == [
        "t.tc:1:24: error: unknown name 'foo'",
        "t.tc:1:30: error: unknown function 'bar'",
        "t.tc:1:37: error: unknown name 'baz'",
    ]


def test_tuples_are_not_tensors() -> None:
    source = "def g(x: f32) { return x, x }\ndef f(x: f32) { return g(x) + 1 }"
    assert first_error(source) == (
        "t.tc:2:24: error: operator '+' cannot be applied to a tuple of 2 values"
    )
    source = "def g(x: f32) { return x, x }\ndef f(x: f32) { return g(x), x }"
    assert first_error(source) == "t.tc:2:24: error: cannot return a tuple of 2 values; " \
        "return tensors"


def test_syntax_errors_come_from_the_parser() -> None:
    assert first_error("def f(x: f32[3]) { return x + }") == (
        "t.tc:1:31: error: expected expression but found '}'"
    )


def test_diagnostic_renders_source_line_and_caret() -> None:
    source = "def f(x: f32[N]) {\n  return relu(foo)\n}\n"
    with pytest.raises(DiagnosticError) as info:
        compile_source(source, "m.tc")
    assert info.value.render({"m.tc": source}) == (
        "m.tc:2:15: error: unknown name 'foo'\n  return relu(foo)\n              ^~~"
    )


def test_internal_error_becomes_a_located_diagnostic(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(site: object) -> object:
        raise RuntimeError("boom")

    monkeypatch.setitem(BUILTINS, "relu", Builtin("relu", ("x",), {}, broken))
    assert errors("def f(x: f32) {\n  y = relu(x)\n  return y\n}\ndef g(x: f32) { return q }") == [
        "t.tc:2:3: error: internal compiler error: RuntimeError: boom",
        "t.tc:5:24: error: unknown name 'q'",
    ]


def test_a_long_flat_expression_compiles() -> None:
    """`x + x + ... + x` is a left-nested tree as deep as it is long; the recursive frontend
    runs on a deep stack, so 3,000 terms (well past Python's default recursion limit) lower."""
    source = "def f(x: f32[3]) { return " + " + ".join(["x"] * 3000) + " }"
    assert ops(source).count("tc.add") == 2999


def test_an_expression_past_the_nesting_limit_is_a_diagnostic(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tensorc.frontend as frontend

    monkeypatch.setattr(frontend, "NESTING_LIMIT", 1500)
    source = "def f(x: f32[3]) {\n  y = x * 2.0\n  return " + " + ".join(["y"] * 3000) + "\n}"
    assert errors(source) == [
        "t.tc:3:3: error: this expression is nested too deeply to compile; split it into "
        "statements"
    ]
