"""The autodiff pass: every VJP rule against finite differences (straight after autodiff and
after all of -O2), nested gradients, several wrt values, stop_gradient, zeros, integer paths,
and the completeness of the rule table."""

from __future__ import annotations

import numpy as np
import pytest
from autodiff_cases import ALL_CASES, normal
from autodiff_support import (
    PIPELINE_LABELS,
    GradCase,
    as_tuple,
    check_case,
    compile_program,
    pass_name,
    pipeline_items,
    registered,
)

from tensorc.frontend import compile_source
from tensorc.ir.core import OP_REGISTRY
from tensorc.ir.printer import print_module
from tensorc.passes import PIPELINES, PassManager, available_passes, parse_pipeline
from tensorc.passes.vjp_rules import NON_DIFFERENTIABLE, VJP_RULES, AutodiffError


@pytest.mark.parametrize("label", PIPELINE_LABELS)
@pytest.mark.parametrize("grad_case", ALL_CASES, ids=lambda c: c.name)
def test_gradient_matches_finite_differences(grad_case: GradCase, label: str) -> None:
    check_case(grad_case, label)


# ----- the rule table ---------------------------------------------------------------------------


def test_every_tc_op_has_a_rule_or_is_non_differentiable() -> None:
    available_passes()  # imports every pass module, and any op a pass defines
    tc_ops = {name for name in OP_REGISTRY if name.startswith("tc.")}
    missing = sorted(tc_ops - VJP_RULES.keys() - NON_DIFFERENTIABLE)
    both = sorted(VJP_RULES.keys() & NON_DIFFERENTIABLE)
    assert not missing, f"tc ops with no VJP rule that are not marked non-differentiable: {missing}"
    assert not both, f"ops both differentiable and not: {both}"
    assert not (VJP_RULES.keys() | NON_DIFFERENTIABLE) - tc_ops, "rules for unknown ops"


def test_pipelines_run_autodiff_after_inline() -> None:
    for level, pipeline in PIPELINES.items():
        names = [pass_name(item) for item in pipeline_items(pipeline)]
        assert "autodiff" in names, f"-O{level} does not run autodiff: {pipeline!r}"
        before = names[names.index("inline") + 1 : names.index("autodiff")]
        assert set(before) <= {"stabilize"}, pipeline  # only stabilize, for stable gradients


@pytest.mark.parametrize("level", [2, 3])
def test_gradients_are_taken_of_the_stabilised_forward_pass(level: int) -> None:
    import tensorc

    source = """
    def lse(x: f64[2]) -> f64[2] { return grad(log(sum(exp(x))), x) }
    def logsm(x: f64[2]) -> f64[2] { return grad(sum(log(softmax(x)) * cast(arange(2), f64)), x) }
    def logsig(x: f64[2]) -> f64[2] { return grad(sum(log(sigmoid(x))), x) }
    def softplus(x: f64[2]) -> f64[2] { return grad(sum(log(1.0 + exp(x))), x) }
    """
    for target in ("interp", "cpu"):
        module = tensorc.compile(source, target=target, opt_level=level)
        big = np.array([1000.0, 0.0])
        np.testing.assert_allclose(module.lse(big), [1.0, 0.0])
        np.testing.assert_allclose(module.logsm(big), [-1.0, 1.0])
        np.testing.assert_allclose(module.logsig(np.array([-800.0, -1000.0])), [1.0, 1.0])
        np.testing.assert_allclose(module.softplus(np.array([800.0, 1000.0])), [1.0, 1.0])


# ----- whole-program properties -------------------------------------------------------------


def _compile(source: str, label: str = "autodiff"):
    return compile_program(source, label)


def _expanded_ir(source: str) -> str:
    module = compile_source(source, "t.tc")
    PassManager(parse_pipeline(registered("inline,autodiff"))).run(module)
    return print_module(module)


HVP_SOURCE = """
def hvp(x: f64[N], a: f64[N], v: f64[N]) -> f64[N] {
    f = (a @ x) ** 3.0 + sum(x * x * x)
    g = grad(f, x)
    return grad(sum(g * v), x)
}
"""


@pytest.mark.parametrize("label", PIPELINE_LABELS)
def test_hessian_vector_product_of_a_cubic(label: str) -> None:
    module = _compile(HVP_SOURCE, label)
    x, a, v = normal(5), normal(5), normal(5)
    hessian = 6 * (a @ x) * np.outer(a, a) + 6 * np.diag(x)
    np.testing.assert_allclose(module.hvp(x, a, v), hessian @ v, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("label", PIPELINE_LABELS)
def test_third_derivative_through_two_nested_grads(label: str) -> None:
    source = """
    def d3(x: f64) -> f64 {
        d1 = grad(sin(x) * x, x)
        d2 = grad(d1, x)
        return grad(d2, x)
    }
    """
    x = 0.7
    expected = -3 * np.sin(x) - x * np.cos(x)
    np.testing.assert_allclose(_compile(source, label).d3(np.float64(x)), expected, rtol=1e-12)


@pytest.mark.parametrize("label", PIPELINE_LABELS)
def test_several_wrt_match_separate_gradients(label: str) -> None:
    source = """
    def both(x: f64[4, 3], w: f64[3, 2], b: f64[2]) {
        loss = sum(tanh(x @ w + b) ** 2.0)
        gw, gb, gx = grad(loss, [w, b, x])
        return gw, gb, gx
    }
    def only_w(x: f64[4, 3], w: f64[3, 2], b: f64[2]) -> f64[3, 2] {
        return grad(sum(tanh(x @ w + b) ** 2.0), w)
    }
    def only_b(x: f64[4, 3], w: f64[3, 2], b: f64[2]) -> f64[2] {
        return grad(sum(tanh(x @ w + b) ** 2.0), b)
    }
    """
    module = _compile(source, label)
    x, w, b = normal(4, 3), normal(3, 2), normal(2)
    gw, gb, gx = module.both(x, w, b)
    np.testing.assert_allclose(gw, module.only_w(x, w, b), rtol=1e-13)
    np.testing.assert_allclose(gb, module.only_b(x, w, b), rtol=1e-13)
    assert gx.shape == x.shape


def test_several_wrt_share_the_backward_sweep() -> None:
    """grad(loss, [w, b]) differentiates tanh once; separate grads do it twice."""
    body = "loss = sum(tanh(x @ w + b))"
    params = "x: f64[4, 3], w: f64[3, 2], b: f64[2]"
    together = _expanded_ir(f"def f({params}) {{\n {body}\n return grad(loss, [w, b])\n}}")
    apart = _expanded_ir(
        f"def f({params}) {{\n {body}\n gw = grad(loss, w)\n gb = grad(loss, b)\n return gw, gb\n}}"
    )
    assert together.count("tc.mul") < apart.count("tc.mul")
    assert together.count("tc.matmul") == 2  # forward, and the one for w


@pytest.mark.parametrize("label", PIPELINE_LABELS)
def test_stop_gradient_blocks_and_disappears(label: str) -> None:
    source = """
    def f(x: f64[3]) -> f64[3] {
        return grad(sum(x * stop_gradient(x * x)), x)
    }
    """
    x = normal(3)
    np.testing.assert_allclose(_compile(source, label).f(x), x * x, rtol=1e-15)
    assert "stop_gradient" not in _expanded_ir(source)


@pytest.mark.parametrize("label", PIPELINE_LABELS)
def test_unrelated_wrt_gets_zeros_of_its_type(label: str) -> None:
    source = """
    def f(x: f64[N, 3], u: f64[M], k: i32[2]) {
        s = stop_gradient(x)
        loss = sum(sin(x))
        gx, gu, gk, gs = grad(loss, [x, u, k, s])
        return gx, gu, gk
    }
    """
    x, u, k = normal(4, 3), normal(7), np.array([1, 2], np.int32)
    gx, gu, gk = _compile(source, label).f(x, u, k)
    np.testing.assert_allclose(gx, np.cos(x), rtol=1e-15)
    assert gu.shape == (7,) and gu.dtype == np.float64 and not gu.any()
    assert gk.dtype == np.int32 and not gk.any()


@pytest.mark.parametrize("label", PIPELINE_LABELS)
@pytest.mark.parametrize(
    "expression",
    [
        "cast(argmax(x, axis=0), f64)",
        "cast(argmin(x), f64)",
        "cast(x > 0.0, f64)",
        "floor(x)",
        "ceil(x)",
        "sign(x)",
        "cast(cast(x * 3.0, i32), f64)",
        "x // 0.7",
        "one_hot(argmax(x, axis=1), 4)",
        "where(x > 0.0, 1.0, 2.0)",
        "cast(sum(cast(x > 0.0, i32)), f64)",
    ],
)
def test_integer_and_piecewise_constant_paths_pass_no_gradient(expression: str, label: str) -> None:
    source = f"""
    def f(x: f64[3, 4]) -> f64[3, 4] {{
        y = {expression}
        return grad(sum(cast(y, f64)) * 2.0, x)
    }}
    """
    x = normal(3, 4) + 0.05
    result = _compile(source, label).f(x)
    assert result.shape == (3, 4) and not result.any()


@pytest.mark.parametrize("label", PIPELINE_LABELS)
def test_take_with_repeated_indices_accumulates(label: str) -> None:
    source = """
    def f(x: f64[4, 2], i: i32[5], j: i32[4, 3]) {
        loss = sum(take(x, i, 0)) + 10.0 * sum(take_along_axis(x, j % 2, axis=1))
        return grad(loss, x)
    }
    """
    i = np.array([1, 1, 3, 1, -4], np.int32)
    j = np.array([[0, 0, 0], [1, 1, 0], [0, 1, 0], [1, 1, 1]], np.int32)
    result = _compile(source, label).f(normal(4, 2), i, j)
    expected = np.zeros((4, 2))
    np.add.at(expected, np.where(i < 0, i + 4, i), 1.0)
    for row in range(4):
        np.add.at(expected[row], j[row] % 2, 10.0)
    np.testing.assert_array_equal(result, expected)


@pytest.mark.parametrize("label", PIPELINE_LABELS)
def test_prod_gradient_is_exact_with_zeros(label: str) -> None:
    source = """
    def f(x: f64[4, 3]) -> f64[4, 3] {
        return grad(sum(prod(x, axis=1)), x)
    }
    """
    x = np.array([[2.0, 3.0, 4.0], [0.0, 3.0, 4.0], [0.0, 0.0, 5.0], [1.5, -2.0, 0.5]])
    expected = np.array([[12.0, 8.0, 6.0], [12.0, 0.0, 0.0], [0.0, 0.0, 0.0], [-1.0, 0.75, -3.0]])
    np.testing.assert_array_equal(_compile(source, label).f(x), expected)


@pytest.mark.parametrize("label", PIPELINE_LABELS)
def test_ties_share_the_gradient(label: str) -> None:
    source = """
    def f(x: f64[4], y: f64[4]) {
        loss = max(x) + sum(maximum(x, y))
        return grad(loss, [x, y])
    }
    """
    x = np.array([1.0, 3.0, 3.0, 0.0])
    y = np.array([2.0, 3.0, 1.0, 0.0])
    gx, gy = _compile(source, label).f(x, y)
    np.testing.assert_array_equal(gx, [0.0, 1.0, 1.5, 0.5])
    np.testing.assert_array_equal(gy, [1.0, 0.5, 0.0, 0.5])


@pytest.mark.parametrize("label", PIPELINE_LABELS)
def test_pow_exponent_gradient_is_zero_not_nan_for_nonpositive_bases(label: str) -> None:
    source = """
    def f(x: f64[3], p: f64[3]) {
        return grad(sum(x ** p), [x, p])
    }
    """
    x, p = np.array([-2.0, 0.0, 2.0]), np.array([2.0, 2.0, 3.0])
    gx, gp = _compile(source, label).f(x, p)
    np.testing.assert_allclose(gx, [-4.0, 0.0, 12.0])
    np.testing.assert_allclose(gp, [0.0, 0.0, 8.0 * np.log(2.0)])


@pytest.mark.parametrize("label", PIPELINE_LABELS)
def test_cast_through_f32_passes_the_gradient_back(label: str) -> None:
    source = """
    def f(x: f64[3]) -> f64[3] {
        return grad(sum(cast(cast(x, f32) * 2.0, f64)), x)
    }
    """
    result = _compile(source, label).f(normal(3))
    assert result.dtype == np.float64
    np.testing.assert_array_equal(result, [2.0, 2.0, 2.0])


@pytest.mark.parametrize("label", PIPELINE_LABELS)
def test_gradient_with_respect_to_intermediate_and_to_y(label: str) -> None:
    source = """
    def f(x: f64[3]) {
        h = sin(x)
        loss = sum(h * h)
        gh, gx, gl = grad(loss, [h, x, loss])
        return gh, gx, gl
    }
    """
    x = normal(3)
    gh, gx, gl = _compile(source, label).f(x)
    np.testing.assert_allclose(gh, 2 * np.sin(x), rtol=1e-15)
    np.testing.assert_allclose(gx, 2 * np.sin(x) * np.cos(x), rtol=1e-15)
    assert gl == 1.0


@pytest.mark.parametrize("label", PIPELINE_LABELS)
def test_gradient_with_respect_to_a_value_no_gradient_reaches(label: str) -> None:
    # `w` is any named value y depends on (SPEC 1.6), also one made by an op that passes no
    # gradient: d/df sum(f * x) = x, whatever floor does
    source = """
    def f(x: f64[3], i: i32[3]) {
        f = floor(x)
        s = sign(x)
        c = stop_gradient(x)
        o = one_hot(i, 3)
        y = sum(f * x) + sum(s * x * x) + sum(c * c * x) + sum(o * cast(x, f32))
        return grad(y, [f, s, c, o, x])
    }
    """
    x, i = normal(3), np.array([2, 0, 1], np.int32)
    gf, gs, gc, go, gx = _compile(source, label).f(x, i)
    np.testing.assert_allclose(gf, x, rtol=1e-15)
    np.testing.assert_allclose(gs, x * x, rtol=1e-15)
    np.testing.assert_allclose(gc, 2 * x * x, rtol=1e-15)
    np.testing.assert_allclose(go, np.broadcast_to(x.astype(np.float32), (3, 3)), rtol=1e-7)
    sign = np.sign(x)
    one_hot = np.eye(3)[i]
    np.testing.assert_allclose(gx, np.floor(x) + 2 * sign * x + x * x + one_hot.sum(0),
                               rtol=1e-6)


def test_a_call_left_before_autodiff_is_a_located_program_error(tmp_path, capsys) -> None:
    from tensorc.cli import main as cli_main

    source = tmp_path / "calls.tc"
    source.write_text(
        "def sq(x: f64[N]) -> f64 { return sum(x * x) }\n"
        "def g(x: f64[N]) -> f64[N] { return grad(sq(x), x) }\n"
    )
    assert cli_main(["opt", str(source), "--passes=autodiff"]) == 1
    err = capsys.readouterr().err
    assert f"{source}:2:42: error: autodiff: cannot differentiate through func.call; run " \
        "'inline' before 'autodiff'" in err
    assert "                                         ^~~~~" in err


def test_train_step_from_the_spec_runs_in_f32() -> None:
    source = """
    def train_step(x: f32[N, 6], y: i32[N], w: f32[6, 3], b: f32[3], lr: f32) {
        loss = mean(cross_entropy(x @ w + b, y))
        gw, gb = grad(loss, [w, b])
        return w - lr * gw, b - lr * gb, loss
    }
    """
    x = normal(5, 6).astype(np.float32)
    y = np.array([0, 1, 2, 1, 0], np.int32)
    w, b = normal(6, 3).astype(np.float32), normal(3).astype(np.float32)
    for label in PIPELINE_LABELS:
        new_w, new_b, loss = _compile(source, label).train_step(x, y, w, b, np.float32(0.1))
        logits = x.astype(np.float64) @ w + b
        probabilities = np.exp(logits - logits.max(1, keepdims=True))
        probabilities /= probabilities.sum(1, keepdims=True)
        delta = (probabilities - np.eye(3)[y]) / 5
        np.testing.assert_allclose(new_w, w - 0.1 * x.T @ delta, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(new_b, b - 0.1 * delta.sum(0), rtol=1e-5, atol=1e-6)
        assert new_w.dtype == np.float32 and loss.dtype == np.float32


def test_autodiff_leaves_no_grad_and_is_idempotent() -> None:
    text = _expanded_ir(HVP_SOURCE)
    assert "tc.grad" not in text
    module = compile_source(HVP_SOURCE, "t.tc")
    PassManager(parse_pipeline("autodiff,autodiff")).run(module)
    assert print_module(module).count("\n") == text.count("\n")


def test_a_missing_rule_is_reported_with_the_op() -> None:
    module = compile_source("def f(x: f64[3]) -> f64[3] {\n return grad(sum(exp(x)), x)\n}", "t.tc")
    saved = VJP_RULES.pop("tc.exp")
    try:
        with pytest.raises(AutodiffError, match="no gradient rule for tc.exp") as info:
            PassManager(parse_pipeline("autodiff")).run(module)
        assert info.value.op is not None and info.value.op.loc is not None
    finally:
        VJP_RULES["tc.exp"] = saved


def test_unexpanded_grad_results_are_rejected_by_the_rule() -> None:
    with pytest.raises(AutodiffError, match="expanded"):
        VJP_RULES["tc.grad"](None, None, [])  # type: ignore[arg-type]


def test_several_functions_and_results_are_independent() -> None:
    source = """
    def a(x: f64[2]) -> f64[2] { return grad(sum(x * x), x) }
    def b(x: f64[2]) -> f64[2] { return grad(sum(x * x * x), x) }
    """
    module = _compile(source)
    x = np.array([1.0, -2.0])
    np.testing.assert_array_equal(as_tuple(module.a(x))[0], 2 * x)
    np.testing.assert_array_equal(as_tuple(module.b(x))[0], 3 * x * x)


@pytest.mark.parametrize("label", PIPELINE_LABELS)
def test_symbolic_slices_that_are_empty_at_run_time(label: str) -> None:
    source = """
    def f(x: f64[N, 2]) -> f64[N, 2] {
        return grad(sum(sin(x[1:])) + sum(x[:-1] * 2.0) + sum(x[3:N]) + sum(x[N - 2::2]), x)
    }
    """
    module = _compile(source, label)
    for rows in (5, 2, 1, 0):
        x = np.linspace(-1.0, 1.0, 2 * rows).reshape(rows, 2)
        expected = np.zeros_like(x)
        expected[1:] += np.cos(x[1:])
        expected[:-1] += 2.0
        expected[3:rows] += 1.0
        expected[rows - 2 :: 2] += 1.0
        np.testing.assert_allclose(module.f(x), expected, rtol=1e-15, err_msg=f"N={rows}")
