"""`decompose` and `fusion`: the interpreter gives the same results before and after, the
kernel counts of the classic patterns, and IR round trips of fused modules."""

from __future__ import annotations

import numpy as np
import pytest

from tensorc.frontend import compile_source
from tensorc.interp.interpreter import Interpreter
from tensorc.ir.core import Operation
from tensorc.ir.dialects.func import Module, ReturnOp
from tensorc.ir.dialects.kernel import GenericOp, match_contraction
from tensorc.ir.dtypes import DType
from tensorc.ir.parser import parse_module
from tensorc.ir.printer import print_module
from tensorc.ir.verifier import verify_module
from tensorc.passes import PassManager, parse_pipeline
from tensorc.passes.fusion import count_kernels

SIZES = (1, 7, 0, 64)


def compile_tc(source: str) -> Module:
    module = compile_source(source, "<test>")
    verify_module(module)
    return module


def run_passes(module: Module, pipeline: str = "decompose,fusion") -> Module:
    """A fused copy of `module` (the original is left alone)."""
    copy = parse_module(print_module(module))
    PassManager(parse_pipeline(pipeline)).run(copy)
    return copy


def random_args(function, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    env = {name: size for name in function.symbols}
    arrays = []
    for arg in function.args:
        shape = arg.type.concrete_shape(env)
        dtype = arg.type.dtype
        if dtype.is_float:
            arrays.append(rng.standard_normal(shape).astype(dtype.numpy))
        elif dtype.is_int:
            arrays.append(rng.integers(0, 3, shape).astype(dtype.numpy))
        else:
            arrays.append(rng.random(shape) < 0.5)
    return arrays


def assert_agree(
    source: str,
    pipeline: str = "decompose,fusion",
    exact: bool = False,
    rtol: float = 2e-5,
    atol: float = 2e-6,
    sizes: tuple[int, ...] = SIZES,
) -> Module:
    """Run every function of `source` before and after `pipeline` on random inputs."""
    module = compile_tc(source)
    fused = run_passes(module, pipeline)
    if any(op.name == "tc.grad" for op in module.walk()):
        module = run_passes(module, "autodiff")  # the reference needs the gradients expanded
    rng = np.random.default_rng(1234)
    for function in module.functions:
        for size in sizes:
            args = random_args(function, size, rng)
            expected = Interpreter(module).run(function.sym_name, args)
            actual = Interpreter(fused).run(function.sym_name, args)
            for want, got in zip(expected, actual):
                assert got.dtype == want.dtype and got.shape == want.shape
                where = f"@{function.sym_name} with sizes {size}"
                if exact or want.dtype.kind in "biu":
                    np.testing.assert_array_equal(got, want, err_msg=where)
                else:
                    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=where)
    return fused


def kernels_of(module: Module, name: str) -> list[GenericOp]:
    function = module.lookup(name)
    assert function is not None
    return [op for op in function.body.ops if isinstance(op, GenericOp)]


FUSABLE_LEFTOVERS = {
    "tc.add", "tc.sub", "tc.mul", "tc.div", "tc.exp", "tc.broadcast_to", "tc.transpose",
    "tc.sum", "tc.max", "tc.matmul", "tc.relu", "tc.cast", "tc.select",
}


def assert_fully_fused(module: Module) -> None:
    """No fusable primitive is left between kernels."""
    for function in module.functions:
        for op in function.body.ops:
            assert op.name not in FUSABLE_LEFTOVERS, f"{op.name} left unfused in {function}"


# ----- kernel counts ------------------------------------------------------------------------

MLP = """
def mlp(x: f32[N, 784], w1: f32[784, H], b1: f32[H], w2: f32[H, 10], b2: f32[10]) -> f32[N, 10] {
    h = relu(x @ w1 + b1)
    return softmax(h @ w2 + b2, axis=-1)
}
"""


def test_gelu_tanh_is_one_kernel() -> None:
    source = "def f(x: f32[N, 16]) -> f32[N, 16] { return gelu(x, approximate=true) }"
    fused = assert_agree(source, rtol=1e-5, atol=1e-6)
    assert count_kernels(fused) == 1


def test_gelu_exact_is_one_kernel() -> None:
    source = "def f(x: f32[N, 16]) -> f32[N, 16] { return gelu(x) }"
    fused = assert_agree(source, rtol=1e-5, atol=1e-6)
    assert count_kernels(fused) == 1


@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_is_two_kernels(axis: int) -> None:
    source = f"def f(x: f32[N, 10]) -> f32[N, 10] {{ return softmax(x, axis={axis}) }}"
    fused = assert_agree(source)
    assert count_kernels(fused) <= 2
    main = kernels_of(fused, "f")[-1]
    assert main.is_row_epilogue and main.reductions == ["add"]


def test_layer_norm_is_two_kernels() -> None:
    source = """
def f(x: f32[N, 32], g: f32[32], b: f32[32]) -> f32[N, 32] { return layer_norm(x, g, b) }
def g3(x: f32[B, T, 8], g: f32[8], b: f32[8]) -> f32[B, T, 8] {
    return layer_norm(x, g, b, eps=1e-3)
}
"""
    fused = assert_agree(source, rtol=1e-4, atol=1e-5)
    assert len(kernels_of(fused, "f")) <= 2
    assert len(kernels_of(fused, "g3")) <= 2


def test_matmul_bias_relu_is_one_kernel() -> None:
    source = """
def f(x: f32[N, 32], w1: f32[32, H], b1: f32[H]) -> f32[N, H] { return relu(x @ w1 + b1) }
"""
    fused = assert_agree(source, rtol=1e-5, atol=1e-5)
    (kernel,) = kernels_of(fused, "f")
    assert match_contraction(kernel) is not None


def test_mlp_is_at_most_four_kernels() -> None:
    fused = assert_agree(MLP, rtol=1e-4, atol=1e-6, sizes=(1, 7, 0, 16))
    assert count_kernels(fused) <= 4
    contractions = [k for k in kernels_of(fused, "mlp") if match_contraction(k)]
    assert len(contractions) == 2


def test_elementwise_chain_is_one_kernel_and_bit_exact() -> None:
    source = """
def f(x: f32[N, 5], y: f32[N, 5], z: f32[5]) -> f32[N, 5] {
    a = exp(x) * 2.0 + abs(y) - x / 3.0
    b = where(a > 0.5, sqrt(abs(a)), -a) + z
    return clip(tanh(b) * sigmoid(x), -0.5, 0.5) ** 2.0
}
"""
    fused = assert_agree(source, pipeline="fusion", exact=True)
    assert count_kernels(fused) == 1
    assert_fully_fused(fused)


def test_max_ops_bounds_kernel_bodies() -> None:
    source = "def f(x: f32[N, 4]) -> f32[N, 4] { return exp(exp(exp(exp(exp(x) + 1.0)))) }"
    small = assert_agree(source, pipeline="fusion{max-ops=2}", exact=True)
    assert count_kernels(small) > 1
    for kernel in kernels_of(small, "f"):
        ops = [op for op in kernel.walk() if op.name.startswith("tc.")]
        assert len(ops) <= 3  # two ops and the constant they share
    assert count_kernels(run_passes(compile_tc(source))) == 1


# ----- numerics of many programs ------------------------------------------------------------

PROGRAMS = {
    "views": """
def f(x: f32[N, 8], y: f32[8, N]) -> (f32[N, 8], f32[N - 2, 3], f32[4, N]) {
    return x * 2.0 + y.T, x[1:N-1, -3:] - 1.0, transpose(x[:, ::2]) + 0.5
}
""",
    "broadcasts": """
def f(x: f32[N, 1, 4], y: f32[3, 1], s: f32) -> f32[N, 3, 4] {
    return x + y * s + broadcast_to(expand_dims(y, 0), [N, 3, 4])
}
""",
    "reductions": """
def f(x: f32[N, 6, 5]) -> (f32[N], f32[6, 5], f32[N, 1, 1], f32, f32[N, 5], f32[6]) {
    a = min(x, axis=[1, 2], keepdims=true)
    return sum(x, axis=[1, 2]), max(x, axis=0), a, prod(x * 0.1 + 1.0), mean(exp(x), axis=1), b(x)
}
def b(x: f32[N, 6, 5]) -> f32[6] {
    return sum(x * x, axis=[0, 2])
}
""",
    "integers": """
def f(a: i32[N, 4], b: i32[N, 4], m: bool[N, 4]) -> (i32[N, 4], i32[N], i64[4], i32[N]) {
    c = where(m, a * b - 3, a // 2 + b % 3)
    return c, sum(m, axis=1), cast(max(c, axis=0), i64), sum(a > b, axis=1)
}
""",
    "iota_one_hot": """
def f(i: i32[N], x: f32[N, 5]) -> (f32[N, 5], f32[N], i32[N, 3]) {
    h = one_hot(i, 5)
    return h * x + arange(5), sum(h * x, axis=1), broadcast_to(arange(3), [N, 3]) * 2
}
""",
    "logsumexp": """
def f(x: f32[N, 6]) -> (f32[N], f32[N, 1], f32[6], f32[N, 6]) {
    a = logsumexp(x, axis=1, keepdims=true)
    return logsumexp(x, axis=1), a, logsumexp(x, axis=0), log_softmax(x, axis=-1)
}
""",
    "cross_entropy": """
def f(x: f32[N, 8], w: f32[8, 5], b: f32[5], y: i32[N]) -> (f32[N], f32) {
    logits = x @ w + b
    return cross_entropy(logits, y), mean(cross_entropy(logits, y))
}
""",
    "matmuls": """
def f(a: f32[B, N, 4], b: f32[B, 4, 3],
      w: f32[4, 3], v: f32[4]) -> (f32[B, N, 3], f32[B, N, 3], f32[B, N]) {
    return a @ b, tanh(a @ w) * 2.0, a @ v
}
def g(x: f32[N, 6], w: f32[5, 6], y: f32[N, 5]) -> (f32[N, 5], f32[6, 5], f32[6]) {
    return x @ w.T, x.T @ y, v(x) @ x
}
def v(x: f32[N, 6]) -> f32[N] { return sum(x, axis=1) }
""",
    "shared_values": """
def f(x: f32[N, 4]) -> (f32[N, 4], f32[N], f32[N, 4]) {
    a = exp(x)
    s = sum(a, axis=1)
    return a + 1.0, s, a / broadcast_to(expand_dims(s, 1), [N, 4])
}
""",
    "scalars": """
def f(x: f32[N, 3], s: f32) -> (f32, f32, f32[N, 3]) {
    t = sum(x * x)
    return t * s + 1.0, mean(x), x / (t + 1.0)
}
""",
    "opaque_between": """
def f(x: f32[N, 4], i: i32[N], y: f32[N, 4]) -> (f32[N, 8], f32[N, N], i32[N]) {
    a = concat([exp(x), y + 1.0], 1)
    return a * 2.0, take(x * 3.0, i, 1) + 1.0, argmax(x + y, axis=1)
}
""",
    "diamond": """
def f(x: f32[N, 4], i: i32[N]) -> (f32[N, N], f32[N, 4]) {
    a = exp(x)
    t = take(a, i, 1)
    s = sum(a, axis=1, keepdims=true)
    return t * s, a / s
}
""",
    "doubles": """
def f(x: f64[N, 4], y: f64[4]) -> (f64[N, 4], f64[N]) {
    return softmax(x * y, axis=1), logsumexp(x, axis=1)
}
""",
    "half": """
def f(x: f16[N, 4]) -> (f16[N, 4], f16[N], f16[N, 4]) {
    return exp(x) + x, sum(x, axis=1), softmax(x, axis=1)
}
""",
    "vector_matrix_grad": """
def f(a: f32[4], b: f32[4, 3]) -> (f32, f32[4], f32[4, 3]) {
    loss = sum(sin(a @ b))
    ga, gb = grad(loss, [a, b])
    return loss, ga, gb
}
""",
    "train_step": """
def train_step(x: f32[N, 6], y: i32[N], w: f32[6, 3], b: f32[3]) -> (f32[6, 3], f32[3], f32) {
    loss = mean(cross_entropy(x @ w + b, y))
    gw, gb = grad(loss, [w, b])
    return w - 0.1 * gw, b - 0.1 * gb, loss
}
""",
}

TOLERANCES = {"half": (2e-3, 2e-3), "reductions": (1e-4, 1e-5), "matmuls": (1e-4, 1e-5)}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_fused_program_agrees_with_unfused(name: str) -> None:
    rtol, atol = TOLERANCES.get(name, (2e-5, 2e-6))
    pipeline = _pipeline_for(name)
    fused = assert_agree(PROGRAMS[name], pipeline=pipeline, rtol=rtol, atol=atol)
    assert count_kernels(fused) >= 1
    if name != "opaque_between":
        assert_fully_fused(fused)


def _pipeline_for(name: str) -> str:
    """Programs with `grad` are differentiated first (and the reference runs autodiff alone)."""
    if "grad(" not in PROGRAMS[name]:
        return "decompose,fusion"
    from tensorc.passes import available_passes

    if "autodiff" not in available_passes():
        pytest.skip("the autodiff pass is not available")
    return "autodiff,decompose,fusion"


def test_shared_value_gets_its_own_kernel() -> None:
    fused = run_passes(compile_tc(PROGRAMS["shared_values"]))
    # exp(x) feeds three kernels: computed once by a kernel of its own.
    assert count_kernels(fused) == 4


def test_views_fold_into_maps() -> None:
    fused = run_passes(compile_tc(PROGRAMS["views"]))
    maps = {str(m) for k in kernels_of(fused, "f") for m in k.input_maps}
    assert "($0, $1) -> ($1, $0)" in maps  # y.T
    assert "($0, $1) -> ($0 + 1, $1 + 5)" in maps  # x[1:N-1, -3:]
    assert "($0, $1) -> ($1, 2*$0)" in maps  # transpose(x[:, ::2])


def test_transposed_weight_stays_a_contraction() -> None:
    fused = run_passes(compile_tc(PROGRAMS["matmuls"]))
    kernels = kernels_of(fused, "g")
    contractions = [match_contraction(k) for k in kernels]
    assert any(c is not None and c.rhs_transposed for c in contractions)
    assert any(c is not None and c.lhs_transposed for c in contractions)


def test_negative_labels_still_raise() -> None:
    module = run_passes(compile_tc(PROGRAMS["cross_entropy"]))
    x = np.ones((2, 8), np.float32)
    w, b = np.ones((8, 5), np.float32), np.ones(5, np.float32)
    for labels in ([0, -1], [0, 5]):
        with pytest.raises(IndexError):
            Interpreter(module).run("f", [x, w, b, np.array(labels, np.int32)])


def test_special_values_match() -> None:
    source = """
def f(x: f32[N, 4]) -> (f32[N, 4], f32[N], f32[N, 4]) {
    return softmax(x, axis=1), logsumexp(x, axis=1), log_softmax(x, axis=1)
}
"""
    module = compile_tc(source)
    fused = run_passes(module)
    x = np.array(
        [[0.0, 1.0, 2.0, 3.0], [-np.inf] * 4, [np.inf, 0.0, 1.0, 2.0], [np.nan, 0.0, 1.0, 2.0],
         [1e30, -1e30, 0.0, 88.0]], np.float32,
    )
    for want, got in zip(Interpreter(module).run("f", [x]), Interpreter(fused).run("f", [x])):
        np.testing.assert_allclose(got, want, rtol=1e-6, equal_nan=True)


# ----- structure and text -------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_fused_ir_round_trips(name: str) -> None:
    fused = run_passes(compile_tc(PROGRAMS[name]), _pipeline_for(name))
    text = print_module(fused)
    again = parse_module(text)
    verify_module(again)
    assert print_module(again) == text


def test_kernel_bodies_hold_only_scalar_ops() -> None:
    fused = run_passes(compile_tc(MLP + PROGRAMS["iota_one_hot"].replace("def f", "def g")))
    for kernel in (op for op in fused.walk() if isinstance(op, GenericOp)):
        for block in kernel.regions[0].blocks:
            for op in block.ops:
                assert all(v.type.rank == 0 for v in list(op.operands) + list(op.results))
                assert op.name.startswith(("tc.", "kernel."))


def test_fusion_is_idempotent_and_leaves_kernels_alone() -> None:
    once = run_passes(compile_tc(MLP))
    twice = run_passes(once, "fusion")
    assert print_module(twice) == print_module(once)


def test_decompose_leaves_no_composite_ops() -> None:
    source = """
def f(x: f32[N, 4], g: f32[4], b: f32[4], y: i32[N]) -> (f32[N, 4], f32[N], f32[4], f32) {
    loss = mean(cross_entropy(log_softmax(x, axis=0), y)) + sum(gelu(x))
    return layer_norm(softmax(x, axis=1), g, b), logsumexp(x, axis=1), mean(x, axis=0), loss
}
"""
    module = run_passes(compile_tc(source), "decompose")
    composite = {"tc.softmax", "tc.log_softmax", "tc.logsumexp", "tc.layer_norm",
                 "tc.cross_entropy", "tc.mean", "tc.gelu"}
    assert not [op.name for op in module.walk() if op.name in composite]
    assert_agree(source, pipeline="decompose", rtol=1e-5, atol=1e-5)


def test_empty_program_pieces() -> None:
    source = "def f(x: f32[N, 3]) -> f32[N, 3] { return x }"
    fused = assert_agree(source)
    assert count_kernels(fused) == 0


def _ops(module: Module) -> list[Operation]:
    return [op for f in module.functions for op in f.body.ops if not isinstance(op, ReturnOp)]


def test_constants_alone_stay_constants() -> None:
    source = "def f(x: f32[N]) -> (f32, f32[N]) { return 2.0 * 1.5, x + 1.0 }"
    fused = run_passes(compile_tc(source))
    assert count_kernels(fused) == 1
    assert all(op.name in ("tc.constant", "kernel.generic") for op in _ops(fused))


def test_dtype_of_accumulators() -> None:
    source = """
def f(m: bool[N, 4], h: f16[N, 4]) -> (i32[N], f16[N]) { return sum(m, axis=1), sum(h, axis=1) }
"""
    fused = run_passes(compile_tc(source))
    accumulators = {str(t) for k in kernels_of(fused, "f") for t in k.accumulator_types}
    assert accumulators == {"i32", "f32"}
    assert kernels_of(fused, "f")[0].results[0].type.dtype in (DType.I32, DType.F16)


@pytest.mark.parametrize("level", [2, 3])
def test_optimisation_levels_agree_with_o0(level: int) -> None:
    """The whole -O pipeline (inline, autodiff, canonicalize, ..., fusion) on the interpreter."""
    import tensorc

    source = MLP + PROGRAMS["train_step"]
    reference = tensorc.compile(source, target="interp", opt_level=0)
    optimised = tensorc.compile(source, target="interp", opt_level=level)
    assert count_kernels(optimised.ir) >= 4
    rng = np.random.default_rng(7)
    for name in ("mlp", "train_step"):
        function = reference.ir.lookup(name)
        for size in (1, 5, 0):
            args = random_args(function, size, rng)
            for want, got in zip(_tuple(reference[name](*args)), _tuple(optimised[name](*args))):
                np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def _tuple(value) -> tuple:
    return value if isinstance(value, tuple) else (value,)


def test_fusion_before_autodiff_is_a_pipeline_error() -> None:
    """A pipeline that fuses a module with `grad` ops in it is the user's mistake, reported as
    such (exit 2 on the command line), not an internal error of the autodiff pass."""
    import tensorc
    from tensorc.passes.pass_manager import PipelineError

    source = "def f(w: f32[3]) -> f32[3] { return grad(sum(w * w), w) }"
    with pytest.raises(PipelineError, match="fusion needs autodiff to run before it"):
        tensorc.compile(source, passes="fusion")
    f = tensorc.compile(source, passes="inline,autodiff,fusion").f
    np.testing.assert_array_equal(f(np.ones(3, np.float32)), np.full(3, 2, np.float32))
