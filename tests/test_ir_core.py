"""The IR core: symbolic dims, types, op construction, verifier, and the text round trip."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tensorc.ir import (
    Builder,
    DimExpr,
    DType,
    FuncOp,
    FunctionType,
    Module,
    ReturnOp,
    ShapeConstraint,
    TensorType,
    VerifyError,
    parse_dim,
    parse_module,
    print_module,
    verify_module,
)
from tensorc.ir.diagnostics import DiagnosticError
from tensorc.ir.dialects import tc, tc_reduce, tc_shape
from tensorc.ir.dims import dim_max, dim_min
from tensorc.ir.typecheck import ShapeError, broadcast_shapes, slice_extent

N, M, K = DimExpr.sym("N"), DimExpr.sym("M"), DimExpr.sym("K")


# ----- dims ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expr, text",
    [
        (N - 1, "N - 1"),
        (2 * N, "2*N"),
        (N * K, "K*N"),
        (N + M - N, "M"),
        ((N + 1) * (N - 1), "N*N - 1"),
        ((2 * N) // 2, "N"),
        ((N + 1) // 2, "(N + 1) // 2"),
        (dim_min(N, 3), "min(N, 3)"),
        (dim_max(N - 1, 0), "max(N - 1, 0)"),
        (dim_min(N, N + 1), "N"),
        (3 - N, "-N + 3"),
    ],
)
def test_dim_canonical_text(expr: DimExpr, text: str) -> None:
    assert str(expr) == text
    assert parse_dim(text) == expr


def test_dims_compare_structurally() -> None:
    assert N + M == M + N
    assert 2 * (N + 1) == 2 * N + 2
    assert N - 1 != N
    assert (N * K).symbols == {"N", "K"}
    assert DimExpr.const(4) == 4 and DimExpr.const(4).value == 4


_atoms = st.sampled_from(["N", "M", "K"]).map(DimExpr.sym) | st.integers(-5, 9).map(DimExpr.const)


def _combine(children):
    pairs = st.tuples(children, children)
    return (
        pairs.map(lambda p: p[0] + p[1])
        | pairs.map(lambda p: p[0] - p[1])
        | pairs.map(lambda p: p[0] * p[1])
        | st.tuples(children, st.integers(1, 4)).map(lambda p: p[0] // p[1])
        | pairs.map(lambda p: dim_min(*p))
        | pairs.map(lambda p: dim_max(*p))
    )


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(_atoms, _combine, max_leaves=8),
    st.fixed_dictionaries({k: st.integers(0, 50) for k in "NMK"}),
)
def test_dim_text_round_trips_and_keeps_its_value(expr: DimExpr, env: dict[str, int]) -> None:
    parsed = parse_dim(str(expr))
    assert parsed == expr
    assert parsed.evaluate(env) == expr.evaluate(env)


@pytest.mark.parametrize(
    "start, stop, step",
    [(1, None, 1), (None, -1, 1), (-3, None, 1), (2, 5, 1), (None, None, 2), (1, None, 3),
     (-3, -1, 1), (0, 0, 1), (4, 2, 1), (None, 7, 2)],
)
def test_slice_extent_matches_python_for_every_size(start, stop, step) -> None:
    bound = lambda v: None if v is None else DimExpr.const(v)  # noqa: E731
    extent = slice_extent(N, bound(start), bound(stop), step)
    for size in range(0, 12):
        assert extent.extent({"N": size}) == len(range(size)[start:stop:step])
        static = slice_extent(DimExpr.const(size), bound(start), bound(stop), step)
        assert static.value == len(range(size)[start:stop:step])


def test_broadcasting_rules() -> None:
    one, four = DimExpr.const(1), DimExpr.const(4)
    assert broadcast_shapes((N, four), (four,)) == ((N, four), [])
    assert broadcast_shapes((one, four), (N, one)) == ((N, four), [])
    shape, deferred = broadcast_shapes((N,), (M,))
    assert shape == (N,) and deferred == [(N, M)]
    with pytest.raises(ShapeError, match=r"\[3\] and \[4\]"):
        broadcast_shapes((DimExpr.const(3),), (four,))


# ----- ops, verifier, text -------------------------------------------------------------------


def _function() -> FuncOp:
    f32 = DType.F32
    function = FuncOp.create(
        "f",
        FunctionType.of([TensorType.of(f32, [N, 4]), TensorType.of(f32, [4])],
                        [TensorType.of(f32, [N - 1])]),
        ["x", "b"],
    )
    b = Builder.at_end(function.body)
    x, bias = function.args
    wide = b.value(tc_shape.BroadcastToOp, [bias], TensorType.of(f32, [N, 4]))
    total = b.value(tc.AddOp, [x, wide], name_hint="total")
    b.create(tc.ConstantOp, [], [TensorType.of(f32, [2])], value=np.array([1.5, 0.1], np.float32))
    exp = b.value(tc.ExpOp, [total])
    row = b.value(tc_reduce.SumOp, [exp], axes=[1], keepdims=False, name_hint="row")
    tail = b.value(tc_shape.SliceOp, [row], starts=[1], stops=[None], steps=[1])
    b.create(ReturnOp, [tail], [])
    # A constraint may only use sizes that the parameters bind (here N).
    function.add_constraint(
        ShapeConstraint("eq", N, DimExpr.const(4), "ValueError", 'x "quoted" message')
    )
    return function


def test_build_verify_print_parse_print() -> None:
    module = Module([_function()])
    verify_module(module)
    text = print_module(module)
    assert "%total = tc.add %x, %0 : (f32[N, 4], f32[N, 4]) -> f32[N, 4]" in text
    assert "-> f32[N - 1]" in text
    again = parse_module(text, "t.tcir")
    verify_module(again)
    assert print_module(again) == text
    located = print_module(again, print_locations=True)
    assert 'loc("t.tcir":' in located
    assert print_module(parse_module(located)) == text


def test_inferred_types_and_verifier_catch_bad_ops() -> None:
    function = _function()
    add = next(op for op in function.walk() if op.name == "tc.add")
    assert add.result.type == TensorType.of(DType.F32, [N, 4])
    add.results[0].type = TensorType.of(DType.F64, [N, 4])
    with pytest.raises(VerifyError, match="does not match the inferred"):
        verify_module(Module([function]))


def test_dominance_is_checked() -> None:
    function = _function()
    ops = function.body.ops
    ops[0], ops[1] = ops[1], ops[0]
    with pytest.raises(VerifyError, match="does not dominate"):
        verify_module(Module([function]))


def test_dense_constants_round_trip_exactly() -> None:
    values = [
        np.array([0.1, -2.5e-8, np.inf, -np.inf], np.float32),
        np.array([[1, -2], [3, 2**31 - 1]], np.int32),
        np.array([True, False]),
        np.full((2, 3), 7.25, np.float64),
        np.zeros((0, 3), np.float32),
        np.array(np.float64(1 / 3)),
    ]
    for value in values:
        function = FuncOp.create("c", FunctionType.of([], [TensorType.of(
            DType.from_numpy(value.dtype), value.shape)]))
        b = Builder.at_end(function.body)
        constant = b.value(tc.ConstantOp, [], TensorType.of(DType.from_numpy(value.dtype),
                                                             value.shape), value=value)
        b.create(ReturnOp, [constant], [])
        text = print_module(Module([function]))
        parsed = parse_module(text)
        got = parsed.functions[0].body.ops[0].value
        assert got.dtype == value.dtype and got.shape == value.shape
        np.testing.assert_array_equal(got, value)
        assert print_module(parsed) == text


@pytest.mark.parametrize(
    "text, message, line, col",
    [
        ("func.func @f() -> f32 {\n  %0 = tc.nope : () -> f32\n}", "unknown operation 'tc.nope'",
         2, 8),
        ("func.func @f(%x: f33) -> f32 {\n}", "unknown dtype 'f33'", 1, 18),
        ("func.func @f(%x: f32) -> f32 {\n  func.return %y : (f32) -> ()\n}",
         "use of undefined value '%y'", 2, 15),
        ("func.func @f(%x: f32) -> f32 {\n  func.return %x : (f64) -> ()\n}",
         "declared as f64", 2, 19),
        ("func.func @f(%x: f32[N +]) -> f32 {\n}", "unexpected end of dimension", 1, 25),
        ("func.func @f(%x: f32) -> f32 {\n  func.return %x", "expected ':'", 2, 17),
    ],
)
def test_malformed_ir_gets_a_located_error(text: str, message: str, line: int, col: int) -> None:
    with pytest.raises(DiagnosticError) as info:
        parse_module(text, "bad.tcir")
    diagnostic = info.value.diagnostics[0]
    assert message in diagnostic.message
    assert (diagnostic.loc.line, diagnostic.loc.col) == (line, col)


USES = """\
func.func @f(%x: f32) -> f32 {
  %c = tc.constant {value = dense<2.0 : f32>} : () -> f32
  %d = tc.constant {value = dense<3.0 : f32>} : () -> f32
  %a = tc.mul %x, %c : (f32, f32) -> f32
  %b = tc.add %a, %c : (f32, f32) -> f32
  %e = tc.sub %b, %c : (f32, f32) -> f32
  func.return %e : (f32) -> ()
}
"""


def test_replace_uses_by_moves_only_the_chosen_uses() -> None:
    module = parse_module(USES, "t.tcir")
    c, d, a, b, e, _ = module.functions[0].body.ops
    c.result.replace_uses_by(lambda user: d.result if user is not b else None)
    assert [use.op for use in c.result.uses] == [b]
    assert sorted(use.op.name for use in d.result.uses) == ["tc.mul", "tc.sub"]
    assert a.operands[1] is d.result and b.operands[1] is c.result and e.operands[1] is d.result
    verify_module(module)
    c.result.replace_all_uses_with(d.result)
    assert not c.result.uses and len(d.result.uses) == 3
    assert all(use.op.operands[use.index] is d.result for use in d.result.uses)


def test_a_builder_keeps_its_place_before_the_anchor() -> None:
    module = parse_module(USES, "t.tcir")
    block = module.functions[0].body
    _, _, _, b, e, _ = block.ops
    builder = Builder(block, before=e)
    first = builder.value(tc.NegOp, [b.result])
    second = builder.value(tc.NegOp, [first])
    third = builder.value(tc.NegOp, [second])
    assert [op.results[0] for op in block.ops[4:7]] == [first, second, third]
    assert block.ops[7] is e
    block.insert(0, block.ops.pop(4))  # the anchor's place changes behind the builder's back
    fourth = builder.value(tc.NegOp, [third])
    assert block.ops[block.index_of(e) - 1].result is fourth
