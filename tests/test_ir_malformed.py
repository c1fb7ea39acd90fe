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
