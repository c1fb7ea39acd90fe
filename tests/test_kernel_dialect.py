"""The kernel dialect on its own: affine maps, the verifier, the backend queries, and the
interpreter's evaluation of hand-written kernels."""

from __future__ import annotations

import numpy as np
import pytest

from tensorc.interp.interpreter import Interpreter
from tensorc.ir.affine import AffineError, AffineMap, linear_form, parse_map_text
from tensorc.ir.builder import Builder
from tensorc.ir.core import VerifyError
from tensorc.ir.dialects import kernel, tc
from tensorc.ir.dialects.func import FuncOp, Module, ReturnOp
from tensorc.ir.dialects.kernel import (
    GenericOp,
    combiner_identity,
    is_contraction,
    match_contraction,
    row_invariant_ops,
)
from tensorc.ir.dims import DimExpr
from tensorc.ir.dtypes import DType
from tensorc.ir.parser import parse_module
from tensorc.ir.printer import print_module
from tensorc.ir.types import FunctionType, TensorType
from tensorc.ir.verifier import verify_module

# ----- affine maps --------------------------------------------------------------------------


def test_map_text_and_queries() -> None:
    amap = parse_map_text("($0, $1, $2) -> ($2, 0, N - 1 - $0, 2*$1 + min(N, 3))")
    assert str(amap) == "($0, $1, $2) -> ($2, 0, -$0 + N - 1, 2*$1 + min(N, 3))"
    assert amap.used_dims == {0, 1, 2}
    assert amap.result_dim(0) == 2 and amap.result_dim(1) is None
    assert not amap.is_projected_permutation()
    form = linear_form(amap.results[2])
    assert form.coefficients == ((0, -1),) and form.offset == DimExpr.of("N - 1")
    assert parse_map_text(str(amap)) == amap and hash(parse_map_text(str(amap))) == hash(amap)


def test_map_composition() -> None:
    transpose = parse_map_text("($0, $1) -> ($1, $0)")
    slice_ = parse_map_text("($0, $1) -> ($0 + 1, 2*$1)")
    assert str(slice_.compose(transpose)) == "($0, $1) -> ($1 + 1, 2*$0)"
    assert str(transpose.compose(slice_)) == "($0, $1) -> (2*$1, $0 + 1)"
    identity = AffineMap.identity(2)
    assert identity.compose(slice_) == slice_ and slice_.compose(identity) == slice_
    broadcast = AffineMap.projection(3, [None, 2])
    assert str(broadcast) == "($0, $1, $2) -> (0, $2)"
    assert broadcast.is_projected_permutation(allow_zero_results=True)
    assert broadcast.image_shape([DimExpr.of("N"), DimExpr.of(5), DimExpr.of(7)]) == (1, 7)
    with pytest.raises(AffineError):
        broadcast.compose(transpose)  # 2 results cannot feed 3 dims


def test_map_evaluation() -> None:
    amap = parse_map_text("($0, $1) -> (N - 1 - $0, 3*$1 + 2, 0)")
    rows, cols = np.indices((2, 3), sparse=True)
    reversed_rows, strided, zero = amap.evaluate([rows, cols], {"N": 5})
    assert reversed_rows.ravel().tolist() == [4, 3]
    assert strided.ravel().tolist() == [2, 5, 8]
    assert zero == 0


@pytest.mark.parametrize(
    "text",
    ["($0) -> ($0*$0)", "($0, $1) -> ($0*$1)", "($0) -> ($1)", "($0) -> ($0 // 2)",
     "($0) -> (N*$0)"],
)
def test_non_affine_maps_are_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_map_text(text)


def test_combiner_identities() -> None:
    assert combiner_identity("max", DType.F32) == float("-inf")
    assert combiner_identity("min", DType.I32) == 2**31 - 1
    assert combiner_identity("max", DType.BOOL) is False
    assert combiner_identity("mul", DType.I64) == 1


# ----- hand-written kernels -----------------------------------------------------------------

KERNELS = """
func.func @reverse_stride(%x: f32[N], %y: f32[M]) -> f32[N] {
  %r = kernel.generic %x, %y {domain = [#dim<N>],
      input_maps = [#map<($0) -> (N - 1 - $0)>, #map<($0) -> (2*$0 + 1)>],
      iterators = ["parallel"],
      output_maps = [#map<($0) -> ($0)>],
      reductions = []
      } : (f32[N], f32[M]) -> f32[N] {
  ^bb0(%a: f32, %b: f32):
    kernel.yield : () -> ()
  ^bb0(%a1: f32, %b1: f32):
    %i = kernel.index {dim = 0} : () -> i64
    %f = tc.cast %i : (i64) -> f32
    %s = tc.add %a1, %b1 : (f32, f32) -> f32
    %t = tc.mul %s, %f : (f32, f32) -> f32
    kernel.yield %t : (f32) -> ()
  }
  func.return %r : (f32[N]) -> ()
}

func.func @moments(%x: f32[N, K]) -> (f32[K], f32[K], f32[K]) {
  %mean, %var, %top = kernel.generic %x {domain = [#dim<K>, #dim<N>],
      input_maps = [#map<($0, $1) -> ($1, $0)>],
      iterators = ["parallel", "reduction"],
      output_maps = [#map<($0, $1) -> ($0)>, #map<($0, $1) -> ($0)>, #map<($0, $1) -> ($0)>],
      reductions = ["add", "add", "max"]
      } : (f32[N, K]) -> (f32[K], f32[K], f32[K]) {
  ^bb0(%a: f32):
    %sq = tc.mul %a, %a : (f32, f32) -> f32
    kernel.yield %a, %sq, %a : (f32, f32, f32) -> ()
  ^bb0(%a1: f32, %s: f32, %ss: f32, %m: f32):
    %n = tc.dim_size {value = #dim<N>} : () -> i32
    %nf = tc.cast %n : (i32) -> f32
    %mu = tc.div %s, %nf : (f32, f32) -> f32
    %e2 = tc.div %ss, %nf : (f32, f32) -> f32
    %mu2 = tc.mul %mu, %mu : (f32, f32) -> f32
    %v = tc.sub %e2, %mu2 : (f32, f32) -> f32
    kernel.yield %mu, %v, %m : (f32, f32, f32) -> ()
  }
  func.return %mean, %var, %top : (f32[K], f32[K], f32[K]) -> ()
}

func.func @normalise_rows(%x: f32[N, K], %g: f32[K]) -> f32[N, K] {
  %r = kernel.generic %x, %g {domain = [#dim<N>, #dim<K>],
      input_maps = [#map<($0, $1) -> ($0, $1)>, #map<($0, $1) -> ($1)>],
      iterators = ["parallel", "reduction"],
      output_maps = [#map<($0, $1) -> ($0, $1)>],
      reductions = ["add"]
      } : (f32[N, K], f32[K]) -> f32[N, K] {
  ^bb0(%a: f32, %b: f32):
    %aa = tc.abs %a : (f32) -> f32
    kernel.yield %aa : (f32) -> ()
  ^bb0(%a1: f32, %b1: f32, %acc: f32):
    %one = tc.constant {value = dense<1.0 : f32>} : () -> f32
    %den = tc.add %acc, %one : (f32, f32) -> f32
    %q = tc.div %a1, %den : (f32, f32) -> f32
    %w = tc.mul %q, %b1 : (f32, f32) -> f32
    kernel.yield %w : (f32) -> ()
  }
  func.return %r : (f32[N, K]) -> ()
}

func.func @batched(%a: f32[B, N, K], %w: f32[M, K]) -> f32[B, N, M] {
  %r = kernel.generic %a, %w {domain = [#dim<B>, #dim<N>, #dim<M>, #dim<K>],
      input_maps = [#map<($0, $1, $2, $3) -> ($0, $1, $3)>, #map<($0, $1, $2, $3) -> ($2, $3)>],
      iterators = ["parallel", "parallel", "parallel", "reduction"],
      output_maps = [#map<($0, $1, $2, $3) -> ($0, $1, $2)>],
      reductions = ["add"]
      } : (f32[B, N, K], f32[M, K]) -> f32[B, N, M] {
  ^bb0(%x: f32, %y: f32):
    %p = tc.mul %x, %y : (f32, f32) -> f32
    kernel.yield %p : (f32) -> ()
  ^bb0(%x1: f32, %y1: f32, %acc: f32):
    %t = tc.tanh %acc : (f32) -> f32
    kernel.yield %t : (f32) -> ()
  }
  func.return %r : (f32[B, N, M]) -> ()
}

func.func @transposed_out(%x: f32[N, K]) -> f32[K, N] {
  %r = kernel.generic %x {domain = [#dim<N>, #dim<K>],
      input_maps = [#map<($0, $1) -> ($0, $1)>],
      iterators = ["parallel", "parallel"],
      output_maps = [#map<($0, $1) -> ($1, $0)>],
      reductions = []
      } : (f32[N, K]) -> f32[K, N] {
  ^bb0(%a: f32):
    kernel.yield : () -> ()
  ^bb0(%b: f32):
    %e = tc.exp %b : (f32) -> f32
    kernel.yield %e : (f32) -> ()
  }
  func.return %r : (f32[K, N]) -> ()
}
"""


@pytest.fixture(scope="module")
def kernels():
    module = parse_module(KERNELS)
    verify_module(module)
    return module


def test_hand_written_kernels_round_trip(kernels) -> None:
    text = print_module(kernels)
    assert print_module(parse_module(text)) == text


@pytest.mark.parametrize("size", [0, 1, 7])
def test_hand_written_kernels_evaluate(kernels, size: int) -> None:
    rng = np.random.default_rng(size)
    run = Interpreter(kernels).run
    x = rng.standard_normal(size).astype(np.float32)
    y = rng.standard_normal(2 * size + 1).astype(np.float32)
    (got,) = run("reverse_stride", [x, y])
    np.testing.assert_array_equal(got, (x[::-1] + y[1::2]) * np.arange(size, dtype=np.float32))

    m = rng.standard_normal((size, 3)).astype(np.float32)
    mean, var, top = run("moments", [m])
    with np.errstate(all="ignore"):
        expected_mean = m.sum(axis=0) / np.float32(size)
        expected_var = (m * m).sum(axis=0) / np.float32(size) - expected_mean**2
    np.testing.assert_allclose(mean, expected_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(var, expected_var, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(top, np.max(m, axis=0, initial=-np.inf))

    g = rng.standard_normal(3).astype(np.float32)
    (rows,) = run("normalise_rows", [m, g])
    expected = m / (np.abs(m).sum(axis=1, keepdims=True) + 1) * g
    np.testing.assert_allclose(rows, expected, rtol=1e-6)

    a = rng.standard_normal((2, size, 3)).astype(np.float32)
    w = rng.standard_normal((4, 3)).astype(np.float32)
    (batched,) = run("batched", [a, w])
    np.testing.assert_allclose(batched, np.tanh(a @ w.T), rtol=1e-6)

    (transposed,) = run("transposed_out", [m])
    np.testing.assert_array_equal(transposed, np.exp(m).T)


def test_contraction_queries(kernels) -> None:
    batched = next(op for op in kernels.walk() if isinstance(op, GenericOp)
                   and op.parent.parent_op.sym_name == "batched")
    found = match_contraction(batched)
    assert found is not None
    assert (found.lhs, found.rhs, found.batch_rank) == (0, 1, 1)
    assert not found.lhs_transposed and found.rhs_transposed
    assert found.accumulator == DType.F32
    others = [op for op in kernels.walk() if isinstance(op, GenericOp) and op is not batched]
    assert not any(is_contraction(op) for op in others)


def test_row_invariant_ops(kernels) -> None:
    rows = next(op for op in kernels.walk() if isinstance(op, GenericOp) and op.is_row_epilogue)
    invariant = {op.name for op in row_invariant_ops(rows)}
    assert invariant == {"tc.constant", "tc.add"}  # 1 + acc; the division varies along rows


def test_verifier_reports_the_op() -> None:
    text = KERNELS.replace('reductions = ["add", "add", "max"]', 'reductions = ["add", "max"]')
    module = parse_module(text)
    with pytest.raises(VerifyError) as error:
        verify_module(module)
    assert "yields 3 values for 2 accumulators" in str(error.value)
    assert error.value.op is not None and error.value.op.name == "kernel.yield"


def test_kernel_index_outside_a_kernel_is_an_error() -> None:
    text = """
func.func @f() -> i32 {
  %i = kernel.index {dim = 0} : () -> i32
  func.return %i : (i32) -> ()
}
"""
    module = parse_module(text)
    with pytest.raises(VerifyError, match="kernel.index must be inside a kernel.generic"):
        verify_module(module)


def test_create_builds_the_blocks() -> None:
    vector, scalar = TensorType.of(DType.F16, ["N"]), TensorType(DType.F16)
    function = FuncOp.create("f", FunctionType.of([vector], [scalar]), ["x"])
    op = GenericOp.create(
        inputs=list(function.args),
        result_types=[scalar],
        domain=[DimExpr.of("N")],
        iterators=[kernel.REDUCTION],
        input_maps=[AffineMap.identity(1)],
        output_maps=[AffineMap(1, ())],
        reductions=["add"],
        accumulator_types=[TensorType(DType.F32)],
    )
    reduce = Builder.at_end(op.reduce_block)
    wide = reduce.value(tc.CastOp, [op.reduce_block.args[0]], TensorType(DType.F32))
    reduce.create(kernel.YieldOp, [wide], [])
    compute = Builder.at_end(op.compute_block)
    narrow = compute.value(tc.CastOp, [op.compute_block.args[1]], scalar)
    compute.create(kernel.YieldOp, [narrow], [])
    body = Builder.at_end(function.body)
    body.insert(op)
    body.create(ReturnOp, [op.result], [])
    module = Module([function])
    verify_module(module)
    x = np.linspace(0, 1, 9).astype(np.float16)
    (total,) = Interpreter(module).run("f", [x])
    assert total.dtype == np.float16 and total == np.float16(x.astype(np.float32).sum())
    assert op.accumulator_types == [TensorType(DType.F32)] and not op.is_row_epilogue
