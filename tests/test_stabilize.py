"""The `stabilize` pass: every rewrite turns a program whose naive NumPy evaluation overflows,
underflows or cancels into one that the interpreter evaluates accurately (checked against a
float64 analytic reference), and changes nothing on ordinary inputs."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

import tensorc
from tensorc.interp.interpreter import Interpreter
from tensorc.ir import Module, parse_module, print_module, verify_module
from tensorc.passes import PassManager, available_passes, parse_pipeline

Arrays = tuple[np.ndarray, ...]


# ----- NumPy references -----------------------------------------------------------------------


def f32(*values: object) -> np.ndarray:
    return np.array(values, dtype=np.float32)


def wide(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def softplus64(x: np.ndarray) -> np.ndarray:
    x = wide(x)
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def logsumexp64(x: np.ndarray, axis: int, keepdims: bool = False) -> np.ndarray:
    x = wide(x)
    top = np.max(x, axis=axis, keepdims=True)
    total = np.log(np.sum(np.exp(x - top), axis=axis, keepdims=True)) + top
    return total if keepdims else np.squeeze(total, axis=axis)


def log_softmax64(x: np.ndarray) -> np.ndarray:
    return wide(x) - logsumexp64(x, -1, keepdims=True)


def naive_softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x)
    return e / np.sum(e, axis=-1, keepdims=True)


def naive_sigmoid(x: np.ndarray) -> np.ndarray:
    one = x.dtype.type(1)
    return one / (one + np.exp(-x))


def naive_one_hot(y: np.ndarray, n: int) -> np.ndarray:
    return (y[:, None] == np.arange(n)).astype(np.float32)


def cross_entropy64(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    picked = np.take_along_axis(wide(z), y.astype(np.int64)[:, None], axis=1)[:, 0]
    return logsumexp64(z, 1) - picked


def normal(shape: tuple[int, ...]) -> Callable[[np.random.Generator], Arrays]:
    return lambda rng: (rng.standard_normal(shape).astype(np.float32),)


def uniform(low: float, high: float, shape: tuple[int, ...]) -> Callable:
    return lambda rng: (rng.uniform(low, high, shape).astype(np.float32),)


# ----- the cases: one per rewrite -------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    source: str  # a function `f`
    naive: Callable[..., np.ndarray]  # the unstable program, evaluated in its own dtype
    exact: Callable[..., np.ndarray]  # a float64 reference
    extreme: Arrays  # inputs where `naive` goes wrong
    ordinary: Callable[[np.random.Generator], Arrays]  # inputs where it does not
    stable_op: str | None  # an op the stabilised IR holds
    unstable_op: str  # an op it no longer holds

    def __str__(self) -> str:
        return self.name


CASES = [
    Case(
        "log_softmax",
        "def f(x: f32[N, 3]) -> f32[N, 3] { return log(softmax(x, axis=-1)) }",
        lambda x: np.log(naive_softmax(x - x.max(axis=-1, keepdims=True))),
        log_softmax64,
        (np.array([[0.0, 1000.0, -1000.0], [1.0, 2.0, 3.0]], np.float32),),
        normal((4, 3)),
        "tc.log_softmax",
        "tc.softmax",
    ),
    Case(
        "log_one_plus_x",
        "def f(x: f32[N]) -> f32[N] { return log(1 + x) }",
        lambda x: np.log(np.float32(1) + x),
        lambda x: np.log1p(wide(x)),
        (f32(1e-10, -3e-9, 1e-20, 0.5),),
        uniform(-0.5, 2.0, (8,)),
        "tc.log1p",
        "tc.log",
    ),
    Case(
        "log_x_plus_one_2d",
        "def f(x: f32[N, 2]) -> f32[N, 2] { return log(x + 1.0) }",
        lambda x: np.log(x + np.float32(1)),
        lambda x: np.log1p(wide(x)),
        (np.array([[1e-10, 2e-12], [-1e-9, 3.0]], np.float32),),
        uniform(-0.5, 2.0, (3, 2)),
        "tc.log1p",
        "tc.log",
    ),
    Case(
        "log_one_minus_x",
        "def f(x: f32[N]) -> f32[N] { return log(1 - x) }",
        lambda x: np.log(np.float32(1) - x),
        lambda x: np.log1p(-wide(x)),
        (f32(1e-10, -4e-9, 0.25),),
        uniform(-2.0, 0.5, (8,)),
        "tc.log1p",
        "tc.log",
    ),
    Case(
        "expm1",
        "def f(x: f32[N]) -> f32[N] { return exp(x) - 1 }",
        lambda x: np.exp(x) - np.float32(1),
        lambda x: np.expm1(wide(x)),
        (f32(1e-10, -1e-12, 2.0),),
        normal((8,)),
        "tc.expm1",
        "tc.exp",
    ),
    Case(
        "one_minus_exp",
        "def f(x: f32[N]) -> f32[N] { return 1 - exp(x) }",
        lambda x: np.float32(1) - np.exp(x),
        lambda x: -np.expm1(wide(x)),
        (f32(1e-10, -1e-12, 2.0),),
        normal((8,)),
        "tc.expm1",
        "tc.exp",
    ),
    Case(
        "logsumexp",
        "def f(x: f32[N, 3]) -> f32[N] { return log(sum(exp(x), axis=1)) }",
        lambda x: np.log(np.sum(np.exp(x), axis=1)),
        lambda x: logsumexp64(x, 1),
        (np.array([[1000.0, 1000.0, 999.0], [-1000.0, -1000.0, -1001.0]], np.float32),),
        normal((4, 3)),
        "tc.logsumexp",
        "tc.exp",
    ),
    Case(
        "logsumexp_keepdims",
        "def f(x: f32[N, 3]) -> f32[N, 1] { return log(sum(exp(x), axis=-1, keepdims=true)) }",
        lambda x: np.log(np.sum(np.exp(x), axis=1, keepdims=True)),
        lambda x: logsumexp64(x, 1, keepdims=True),
        (np.array([[1000.0, 1000.0, 999.0]], np.float32),),
        normal((4, 3)),
        "tc.logsumexp",
        "tc.exp",
    ),
    Case(
        "log_mean_exp",
        "def f(x: f32[N, 4]) -> f32[N] { return log(mean(exp(x), axis=1)) }",
        lambda x: np.log(np.mean(np.exp(x), axis=1)),
        lambda x: logsumexp64(x, 1) - np.log(4.0),
        (np.array([[1000.0, 1000.0, 999.0, 0.0], [-900.0, -1000.0, -1e3, -1e3]], np.float32),),
        normal((4, 4)),
        "tc.logsumexp",
        "tc.exp",
    ),
    Case(
        "log_mean_exp_symbolic_count",
        "def f(x: f32[N]) -> f32 { return log(mean(exp(x))) }",
        lambda x: np.log(np.mean(np.exp(x))),
        lambda x: logsumexp64(x, 0) - np.log(x.size),
        (f32(1000.0, 1000.0, 999.0),),
        normal((5,)),
        "tc.dim_size",
        "tc.exp",
    ),
    Case(
        "log_sigmoid",
        "def f(x: f32[N]) -> f32[N] { return log(sigmoid(x)) }",
        lambda x: np.log(naive_sigmoid(x)),
        lambda x: -softplus64(-wide(x)),
        (f32(-200.0, -100.0, 50.0, 0.0),),
        normal((8,)),
        "tc.softplus",
        "tc.sigmoid",
    ),
    Case(
        "log_one_minus_sigmoid",
        "def f(x: f32[N]) -> f32[N] { return log(1 - sigmoid(x)) }",
        lambda x: np.log(np.float32(1) - naive_sigmoid(x)),
        lambda x: -softplus64(x),
        (f32(200.0, 30.0, -3.0),),
        normal((8,)),
        "tc.softplus",
        "tc.sigmoid",
    ),
    Case(
        "one_minus_sigmoid",
        "def f(x: f32[N]) -> f32[N] { return 1 - sigmoid(x) }",
        lambda x: np.float32(1) - naive_sigmoid(x),
        lambda x: 1.0 / (1.0 + np.exp(wide(x))),
        (f32(20.0, 30.0, -1.0),),
        normal((8,)),
        "tc.sigmoid",
        "tc.sub",
    ),
    Case(
        "log_of_logistic",
        "def f(x: f32[N]) -> f32[N] { return log(1 / (1 + exp(-x))) }",
        lambda x: np.log(naive_sigmoid(x)),
        lambda x: -softplus64(-wide(x)),
        (f32(-200.0, -100.0, 2.0),),
        normal((8,)),
        "tc.softplus",
        "tc.exp",
    ),
    Case(
        "sigmoid_from_exp_ratio",
        "def f(x: f32[N]) -> f32[N] { return exp(x) / (1 + exp(x)) }",
        lambda x: np.exp(x) / (np.float32(1) + np.exp(x)),
        lambda x: 1.0 / (1.0 + np.exp(-wide(x))),
        (f32(1000.0, 100.0, -3.0),),
        normal((8,)),
        "tc.sigmoid",
        "tc.exp",
    ),
    Case(
        "softplus",
        "def f(x: f32[N]) -> f32[N] { return log(1 + exp(x)) }",
        lambda x: np.log(np.float32(1) + np.exp(x)),
        softplus64,
        (f32(1000.0, 100.0, -50.0),),
        normal((8,)),
        "tc.softplus",
        "tc.exp",
    ),
    Case(
        "softmax_from_exp",
        "def f(x: f32[N, 2]) -> f32[N, 2] { return exp(x) / sum(exp(x), axis=-1, keepdims=true) }",
        naive_softmax,
        lambda x: np.exp(log_softmax64(x)),
        (np.array([[1000.0, 1000.0], [-1000.0, -1001.0]], np.float32),),
        normal((4, 2)),
        "tc.softmax",
        "tc.exp",
    ),
    Case(
        "sqrt_of_square",
        "def f(x: f32[N]) -> f32[N] { return sqrt(x * x) }",
        lambda x: np.sqrt(x * x),
        lambda x: np.abs(wide(x)),
        (f32(1e30, -3e20, -1e-30, 2.0),),
        normal((8,)),
        "tc.abs",
        "tc.sqrt",
    ),
    Case(
        "log_of_exp",
        "def f(x: f32[N]) -> f32[N] { return log(exp(x)) }",
        lambda x: np.log(np.exp(x)),
        wide,
        (f32(1000.0, -1000.0, 1.5),),
        normal((8,)),
        None,  # nothing is left but the argument
        "tc.exp",
    ),
    Case(
        "log_add_exp",
        "def f(a: f32[N], b: f32[N]) -> f32[N] { return log(exp(a) + exp(b)) }",
        lambda a, b: np.log(np.exp(a) + np.exp(b)),
        lambda a, b: np.logaddexp(wide(a), wide(b)),
        (f32(1000.0, -1000.0, 5.0, -np.inf, 3.0), f32(1000.0, -1001.0, -800.0, -np.inf, np.inf)),
        lambda rng: (rng.standard_normal(8).astype(np.float32),
                     rng.standard_normal(8).astype(np.float32)),
        "tc.softplus",
        "tc.exp",
    ),
    Case(
        "cross_entropy_one_hot",
        "def f(z: f32[N, 4], y: i32[N]) -> f32[N] {\n"
        "    return -sum(one_hot(y, 4) * log(softmax(z, axis=-1)), axis=-1)\n}",
        lambda z, y: -np.sum(naive_one_hot(y, 4) * np.log(naive_softmax(z)), axis=-1),
        cross_entropy64,
        (np.array([[0.0, 1000.0, -1000.0, 3.0], [5.0, 5.0, 5.0, 5.0]], np.float32),
         np.array([2, 1], np.int32)),
        lambda rng: (rng.standard_normal((5, 4)).astype(np.float32),
                     rng.integers(0, 4, 5).astype(np.int32)),
        "tc.cross_entropy",
        "tc.one_hot",
    ),
    Case(
        "cross_entropy_gather",
        "def f(z: f32[N, 4], y: i32[N]) -> f32[N, 1] {\n"
        "    return -take_along_axis(log(softmax(z, axis=-1)), expand_dims(y, 1), axis=1)\n}",
        lambda z, y: -np.take_along_axis(np.log(naive_softmax(z)), y[:, None], axis=1),
        lambda z, y: cross_entropy64(z, y)[:, None],
        (np.array([[0.0, 1000.0, -1000.0, 3.0], [5.0, 5.0, 5.0, 5.0]], np.float32),
         np.array([2, 1], np.int32)),
        lambda rng: (rng.standard_normal((5, 4)).astype(np.float32),
                     rng.integers(0, 4, 5).astype(np.int32)),
        "tc.cross_entropy",
        "tc.take_along_axis",
    ),
]


# ----- helpers --------------------------------------------------------------------------------

_MODULES: dict[str, object] = {}


def stabilized(source: str):
    """`source` compiled for the interpreter with the pipeline `stabilize` alone."""
    if source not in _MODULES:
        _MODULES[source] = tensorc.compile(
            textwrap.dedent(source), target="interp", passes="stabilize"
        )
    return _MODULES[source]


def op_names(module: Module) -> set[str]:
    return {op.name for function in module.functions for op in function.walk()}


def naive(case: Case, args: Arrays) -> np.ndarray:
    with np.errstate(all="ignore"):
        return case.naive(*args)


def assert_accurate(got: np.ndarray, exact: np.ndarray, dtype: type = np.float32) -> None:
    """`got` is `exact` rounded to `dtype`, within a few ulps (infinities and NaN included)."""
    assert got.dtype == np.dtype(dtype)
    assert got.shape == exact.shape
    rtol = 4 * float(np.finfo(dtype).eps)
    np.testing.assert_allclose(wide(got), exact, rtol=rtol, atol=0)


def run_ir(text: str, passes: str, *args: np.ndarray) -> list[np.ndarray]:
    module = parse_module(textwrap.dedent(text), "test.tcir")
    verify_module(module)
    PassManager(parse_pipeline(passes)).run(module)
    return Interpreter(module).run(module.functions[0].sym_name, list(args))


# ----- every rewrite ----------------------------------------------------------------------------


def test_stabilize_is_a_registered_pass() -> None:
    assert "stabilize" in available_passes()
    (stabilize,) = parse_pipeline("stabilize")
    assert stabilize.pipeline_text() == "stabilize"


@pytest.mark.parametrize("case", CASES, ids=str)
def test_rewrite_applies(case: Case) -> None:
    names = op_names(stabilized(case.source).ir)
    text = print_module(stabilized(case.source).ir)
    assert case.unstable_op not in names, text
    assert case.stable_op is None or case.stable_op in names, text


@pytest.mark.parametrize("case", CASES, ids=str)
def test_naive_form_fails_and_stable_form_is_accurate(case: Case) -> None:
    exact = case.exact(*case.extreme)
    unstable = naive(case, case.extreme)
    with np.errstate(all="ignore"):
        naive_ok = np.allclose(wide(unstable), exact, rtol=1e-3, atol=0, equal_nan=True)
    assert not naive_ok, f"{case.name}: the naive form is accurate here: {unstable} vs {exact}"
    assert_accurate(stabilized(case.source).f(*case.extreme), exact)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_ordinary_inputs_keep_their_values(case: Case) -> None:
    rng = np.random.default_rng(sum(map(ord, case.name)))
    for _ in range(3):
        args = case.ordinary(rng)
        got = stabilized(case.source).f(*args)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, naive(case, args), rtol=2e-5, atol=2e-6)
        np.testing.assert_allclose(wide(got), case.exact(*args), rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_stabilized_ir_round_trips_and_is_a_fixed_point(case: Case) -> None:
    module = stabilized(case.source).ir
    text = print_module(module)
    again = parse_module(text, "again.tcir")
    verify_module(again)
    assert print_module(again) == text
    PassManager(parse_pipeline("stabilize")).run(again)
    assert print_module(again) == text


# ----- details of particular rewrites -----------------------------------------------------------


def test_log1p_in_f64_keeps_tiny_arguments() -> None:
    module = stabilized("def f(x: f64[N]) -> f64[N] { return log(1.0 + x) }")
    x = np.array([1e-20, 1e-17, -5e-18], np.float64)
    assert np.all(np.log(1.0 + x) == 0.0)
    np.testing.assert_allclose(module.f(x), x, rtol=1e-15)


def test_log_two_plus_x_is_left_alone() -> None:
    module = stabilized("def f(x: f32[N]) -> f32[N] { return log(2 + x) }")
    assert "tc.log1p" not in op_names(module.ir)
    x = f32(0.5, 1.0)
    np.testing.assert_allclose(module.f(x), np.log(2 + x), rtol=1e-6)


def test_log_add_exp_of_equal_infinities_stays_infinite() -> None:
    module = stabilized("def f(a: f32[N], b: f32[N]) -> f32[N] { return log(exp(a) + exp(b)) }")
    a = f32(-np.inf, np.inf, np.nan, 7.0)
    b = f32(-np.inf, np.inf, 1.0, 7.0)
    got = module.f(a, b)
    assert got[0] == -np.inf and got[1] == np.inf and np.isnan(got[2])
    np.testing.assert_allclose(got[3], 7.0 + np.log(2.0), rtol=1e-6)


def test_cross_entropy_one_hot_keeps_zero_for_labels_out_of_range() -> None:
    case = next(c for c in CASES if c.name == "cross_entropy_one_hot")
    z = np.array([[1.0, 2.0, 3.0, 4.0]] * 3, np.float32)
    y = np.array([4, -1, 3], np.int32)
    got = stabilized(case.source).f(z, y)
    np.testing.assert_allclose(got[:2], [0.0, 0.0])
    np.testing.assert_allclose(got[2], cross_entropy64(z[2:], y[2:])[0], rtol=1e-6)


def test_cross_entropy_gather_wraps_negative_labels_and_rejects_others() -> None:
    case = next(c for c in CASES if c.name == "cross_entropy_gather")
    z = np.array([[1.0, 2.0, 3.0, 40.0], [0.5, 0.0, -2.0, 1.0]], np.float32)
    got = stabilized(case.source).f(z, np.array([-1, -4], np.int32))
    np.testing.assert_allclose(got, cross_entropy64(z, np.array([3, 0]))[:, None], rtol=1e-6)
    with pytest.raises(IndexError):
        stabilized(case.source).f(z, np.array([4, 0], np.int32))


def test_cross_entropy_mean_loss_has_no_negations_left() -> None:
    source = (
        "def f(z: f32[N, 3], y: i32[N]) -> f32 {\n"
        "    return mean(-sum(one_hot(y, 3) * log_softmax(z, axis=-1), axis=-1))\n}"
    )
    module = stabilized(source)
    assert "tc.neg" not in op_names(module.ir)
    z = np.array([[0.0, 900.0, -900.0], [1.0, 2.0, 3.0]], np.float32)
    y = np.array([2, 0], np.int32)
    np.testing.assert_allclose(module.f(z, y), np.mean(cross_entropy64(z, y)), rtol=1e-6)


def test_intermediate_with_other_uses_is_kept() -> None:
    text = """
    func.func @f(%x: f32[N, 3]) -> (f32[N, 3], f32[N, 3]) {
      %p = tc.softmax %x {axis = 1} : (f32[N, 3]) -> f32[N, 3]
      %r = tc.log %p : (f32[N, 3]) -> f32[N, 3]
      func.return %p, %r : (f32[N, 3], f32[N, 3]) -> ()
    }
    """
    x = np.array([[0.0, 1000.0, -1000.0]], np.float32)
    probabilities, log_probabilities = run_ir(text, "stabilize", x)
    np.testing.assert_allclose(probabilities, np.exp(log_softmax64(x)), atol=1e-7)
    assert_accurate(log_probabilities, log_softmax64(x))


def test_hand_written_ir_with_splat_tensor_constant() -> None:
    text = """
    func.func @f(%x: f32[3]) -> f32[3] {
      %one = tc.constant {value = dense<splat 1.0 : f32[3]>} : () -> f32[3]
      %s = tc.add %x, %one : (f32[3], f32[3]) -> f32[3]
      %r = tc.log %s : (f32[3]) -> f32[3]
      func.return %r : (f32[3]) -> ()
    }
    """
    x = f32(1e-10, 1e-30, 1.0)
    (got,) = run_ir(text, "stabilize", x)
    assert_accurate(got, np.log1p(wide(x)))
