"""Malformed `.tcir` input is a program error at a location, never an internal compiler error
(SPEC §1.7, §2, §3): each snippet below used to crash the parser, the verifier or a later pass.

Every case runs `tensorc opt FILE.tcir` in-process and expects exit status 1, a
`FILE:LINE:COL: error: MESSAGE` line with the given message at the given place, and no
"internal compiler error".
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tensorc.cli import main as cli_main

SLICE = """\
func.func @f(%x: f32[N]) -> f32[N - 1] {{
  %0 = tc.slice %x {{starts = [1], steps = [1], stops = [{stop}]}} : (f32[N]) -> f32[N - 1]
  func.return %0 : (f32[N - 1]) -> ()
}}
"""

SELF_CALL = """\
func.func @f(%x: f32) -> f32 {
  %r = func.call %x {callee = @f} : (f32) -> f32
  func.return %r : (f32) -> ()
}
"""

MUTUAL_CALLS = """\
func.func @main(%x: f32) -> f32 {
  %r = func.call %x {callee = @even} : (f32) -> f32
  func.return %r : (f32) -> ()
}

func.func @even(%x: f32) -> f32 {
  %r = func.call %x {callee = @odd} : (f32) -> f32
  func.return %r : (f32) -> ()
}

func.func @odd(%x: f32) -> f32 {
  %r = func.call %x {callee = @even} : (f32) -> f32
  func.return %r : (f32) -> ()
}
"""

NAMES = """\
func.func @f(%x: f32) -> f32 attributes {{result_names = [{name}]}} {{
  func.return %x : (f32) -> ()
}}
"""

CONSTANT = """\
func.func @f() -> {type} {{
  %c = tc.constant {{value = dense<{value} : {type}>}} : () -> {type}
  func.return %c : ({type}) -> ()
}}
"""

UNARY = """\
func.func @f(%x: {param}) -> {result} {{
  %y = tc.neg %x : ({param}) -> {result}
  func.return %y : ({result}) -> ()
}}
"""

KERNEL_INDEX = """\
func.func @f(%x: f32[3]) -> f32[3] {
  %y = kernel.generic %x {domain = [3], input_maps = [#map<($0) -> ($0)>], \
iterators = ["parallel"], output_maps = [#map<($0) -> ($0)>], reductions = []} \
: (f32[3]) -> f32[3] {
  ^bb0(%a: f32):
    kernel.yield : () -> ()
  ^bb0(%b: f32):
    %i = kernel.index {dim = [0]} : () -> i32
    kernel.yield %b : (f32) -> ()
  }
  func.return %y : (f32[3]) -> ()
}
"""

CALL_RESULT = """\
func.func @g(%x: f32[N]) -> f32[N] {
  func.return %x : (f32[N]) -> ()
}

func.func @f(%x: f32[3]) -> i32[7, 2] {
  %r = func.call %x {callee = @g} : (f32[3]) -> i32[7, 2]
  func.return %r : (i32[7, 2]) -> ()
}
"""

SCATTER = """\
func.func @f(%u: f32[3, 4], %i: i32[3, 4]) -> f32[3, 5] {{
  %r = tc.scatter_add_along_axis %u, %i {{axis = {axis}, size = 5}} \
: (f32[3, 4], i32[3, 4]) -> f32[3, 5]
  func.return %r : (f32[3, 5]) -> ()
}}
"""

NESTED_FUNC = """\
func.func @f(%x: f32) -> f32 {
  func.func {function_type = #type<() -> ()>, sym_name = "g"} : () -> () {
  ^bb0():
    func.return : () -> ()
  }
  func.return %x : (f32) -> ()
}
"""

DIM_SIZE = """\
func.func @f(%x: f32) -> i32 {
  %d = tc.dim_size {value = 99999999999999999999999} : () -> i32
  func.return %d : (i32) -> ()
}
"""

RETURN_X = """\
func.func @{name}({params}) -> f32 {attributes}{{
  func.return %x : (f32) -> ()
}}
"""


def _return_x(name: str = "f", params: str = "%x: f32", attributes: str = "") -> str:
    return RETURN_X.format(name=name, params=params, attributes=attributes)


CASES = [
    # (id, text, line, col, message)
    ("self_call", SELF_CALL, 2, 3, "recursion is not supported: @f -> @f"),
    ("mutual_recursion", MUTUAL_CALLS, 12, 3,
     "recursion is not supported: @even -> @odd -> @even"),
    ("newline_in_string", NAMES.format(name='"a\nb"'), 1, 58, "unterminated string"),
    ("tab_in_string", NAMES.format(name='"a\tb"'), 1, 60, "raw control character"),
    ("bad_escape_in_string", NAMES.format(name='"a\\qb"'), 1, 60, "invalid escape"),
    ("symbol_as_slice_bound", SLICE.format(stop="@g"), 2, 3,
     "tc.slice: attribute 'stops' must be a list of integers, sizes #dim<...> or none; "
     "element 0 is a symbol @name (@g)"),
    ("map_as_slice_bound", SLICE.format(stop="#map<($0) -> ($0)>"), 2, 3,
     "element 0 is an affine map"),
    ("nested_list_as_slice_bound", SLICE.format(stop="[1]"), 2, 3, "element 0 is a list"),
    ("nan_in_integer_constant", CONSTANT.format(value="nan", type="i32"), 2, 35,
     "dense element nan is not an integer (the constant is i32)"),
    ("overflowing_integer_constant", CONSTANT.format(value="4294967296", type="i32"), 2, 35,
     "dense element 4294967296 is out of range for i32"),
    ("overflowing_float_constant", CONSTANT.format(value="1e39", type="f32"), 2, 35,
     "dense element 1e39 is out of range for f32"),
    ("fraction_in_integer_constant", CONSTANT.format(value="[1, 2.5]", type="i64[2]"), 2, 39,
     "dense element 2.5 is not an integer"),
    ("huge_splat_constant", CONSTANT.format(value="splat 0.0", type="f32[100000, 100000]"),
     2, 47, "dense constant of 10000000000 elements is too large"),
    ("bf16_constant", CONSTANT.format(value="1.0", type="bf16"), 2, 41,
     "dense constants of bf16 are not supported"),
    ("deeply_nested_dense", CONSTANT.format(value="[" * 200 + "1" + "]" * 200, type="f32"),
     2, 99, "dense elements nest more than 64 deep"),
    ("deeply_nested_dimension", UNARY.format(param="f32[N]", result="f32[" + "(" * 300 + "N"
                                             + ")" * 300 + "]"), 1, 65, "parentheses nest"),
    ("negative_dimension", UNARY.format(param="f32[-1]", result="f32[-1]"), 1, 1,
     "@f: a parameter has type f32[-1], whose dimension -1 is negative"),
    ("huge_dimension", UNARY.format(param="f32[9223372036854775808]",
                                    result="f32[9223372036854775808]"), 1, 1,
     "dimension 9223372036854775808 is too large"),
    ("unbound_result_size", UNARY.format(param="f32[N]", result="f32[M]"), 1, 1,
     "@f: a result has type f32[M], whose size 'M' is not bound by a parameter"),
    ("kernel_body_attribute_kind", KERNEL_INDEX, 6, 5,
     "kernel.index: attribute 'dim' must be an integer, not a list"),
    ("call_result_type", CALL_RESULT, 6, 3,
     "func.call @g: result 0 has type i32[7, 2], but the callee returns f32[N] (here f32[3])"),
    ("scatter_axis_out_of_range", SCATTER.format(axis=7), 2, 3,
     "tc.scatter_add_along_axis axis 7 is out of range for f32[3, 4]"),
    ("bool_as_int_attribute", SCATTER.format(axis="true"), 2, 3,
     "attribute 'axis' must be an integer, not true"),
    ("kernel_negative_domain",
     KERNEL_INDEX.replace("domain = [3]", "domain = [-3]").replace("[0]}", "0}"), 2, 3,
     "kernel.generic: domain size -3 is negative"),
    ("kernel_reads_out_of_bounds",
     KERNEL_INDEX.replace("(f32[3]) -> f32[3] {", "(f32[3]) -> f32[5] {")
     .replace("domain = [3]", "domain = [5]").replace("[0]}", "0}")
     .replace("%y : (f32[3])", "%y : (f32[5])").replace("-> f32[3] {\n", "-> f32[5] {\n", 1),
     2, 3, "kernel.generic: input map 0 ($0) -> ($0) reads axis 0 of f32[3] at indices from 0 "
     "to 4, outside [0, 3)"),
    ("kernel_reads_past_symbolic_end",
     KERNEL_INDEX.replace("f32[3]", "f32[N]").replace("domain = [3]", "domain = [#dim<N>]")
     .replace("($0) -> ($0)>], iterators", "($0) -> ($0 + 1)>], iterators").replace("[0]}", "0}"),
     2, 3, "input map 0 ($0) -> ($0 + 1) reads axis 0 of f32[N] at indices from 1 to N"),
    ("nested_function", NESTED_FUNC, 2, 3, "@g: func.func may only appear at module level"),
    ("huge_dim_size", DIM_SIZE, 2, 3, "tc.dim_size value 99999999999999999999999 is too large"),
    ("signature_attribute", NAMES.format(name="1").replace("result_names", "sym_name"), 1, 41,
     "'sym_name' of @f is given by its signature, not as an attribute"),
    ("duplicate_attribute", SLICE.format(stop="none").replace("steps = [1]", "starts = [2]"),
     2, 35, "attribute 'starts' is given twice"),
    ("function_name_not_identifier", _return_x(name="a.b"), 1, 1,
     "function name '@a.b' is not an identifier"),
    ("parameter_name_not_identifier", _return_x(params="%x: f32, %a.b: f32"), 1, 1,
     "@f: parameter name '%a.b' is not an identifier"),
    ("parameter_names_collide", _return_x(params="%x: f32, %arg2: f32, %2: f32"), 1, 1,
     "@f: two parameters are named 'arg2'"),
    ("result_name_not_identifier", _return_x(attributes='attributes {result_names = ["a b"]} '),
     1, 1, "@f: result name 'a b' is not an identifier"),
    ("unknown_constraint_kind",
     _return_x(attributes='attributes {constraints = [#constraint<ne 1, 2, ValueError, "m">]} '),
     1, 69, "unknown constraint kind 'ne' (expected eq, lt, le)"),
    ("unknown_constraint_error",
     _return_x(attributes='attributes {constraints = [#constraint<eq 1, 2, KeyError, "m">]} '),
     1, 78, "unknown error class 'KeyError' (expected ValueError, IndexError)"),
    ("index_symbol_as_size", UNARY.format(param="f32[$0]", result="f32[$0]"), 1, 1,
     "the size name '$0' is reserved for kernel loop indices"),
]


@pytest.mark.parametrize(
    "text, line, col, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_malformed_ir_is_a_located_error(
    tmp_path: Path, capsys, text: str, line: int, col: int, message: str
) -> None:
    path = tmp_path / "bad.tcir"
    path.write_text(text)
    status = cli_main(["opt", str(path)])
    err = capsys.readouterr().err
    assert "internal compiler error" not in err and "Traceback" not in err, err
    assert status == 1, err
    headers = re.findall(rf"^{re.escape(str(path))}:(\d+):(\d+): error: (.*)$", err, re.M)
    assert headers, err
    got_line, got_col, got_message = headers[0]
    assert message in got_message, err
    assert (int(got_line), int(got_col)) == (line, col), err


GRAD_THROUGH_CALL = """\
func.func @g(%x: f32) -> f32 {
  %y = tc.exp %x : (f32) -> f32
  func.return %y : (f32) -> ()
}

func.func @f(%x: f32) -> f32 {
  %r = func.call %x {callee = @g} : (f32) -> f32
  %d = tc.grad %r, %x : (f32, f32) -> f32
  func.return %d : (f32) -> ()
}
"""


def test_autodiff_before_inline_is_a_located_error(tmp_path: Path, capsys) -> None:
    """Verified IR that autodiff cannot take in this pipeline order is a program error at the
    op it cannot differentiate (exit 1, with the source line), not an internal error."""
    path = tmp_path / "calls.tcir"
    path.write_text(GRAD_THROUGH_CALL)
    status = cli_main(["opt", str(path), "--passes=autodiff"])
    err = capsys.readouterr().err
    assert "internal compiler error" not in err, err
    assert status == 1, err
    assert f"{path}:7:3: error: autodiff: cannot differentiate through func.call; run " \
        "'inline' before 'autodiff'" in err, err
    assert cli_main(["opt", str(path), "--passes=inline,autodiff"]) == 0
