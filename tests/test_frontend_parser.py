"""Tests of the `.tc` parser (tensorc.frontend.parser), its AST and the diagnostics renderer."""

from __future__ import annotations

import pickle
import textwrap

import pytest

from tensorc.frontend import ast
from tensorc.frontend.parser import parse_expression, parse_module
from tensorc.ir.diagnostics import (
    Diagnostic,
    DiagnosticEngine,
    DiagnosticError,
    render_diagnostic,
)
from tensorc.ir.location import Location

FILE = "model.tc"


def expr(source: str) -> str:
    return ast.dump(parse_expression(source, FILE))


def module(source: str) -> ast.Module:
    return parse_module(textwrap.dedent(source), FILE)


def body(statements: str) -> list[ast.Stmt]:
    source = "def f(x: f32) {\n" + textwrap.dedent(statements) + "\n}\n"
    return parse_module(source, FILE).functions[0].body


def errors_of(source: str) -> str:
    with pytest.raises(DiagnosticError) as caught:
        parse_module(source, FILE)
    return caught.value.render({FILE: source})


def loc(line: int, col: int, end_line: int, end_col: int) -> Location:
    return Location(FILE, line, col, end_line, end_col)


# ---- expressions and precedence ----------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "tree"),
    [
        ("-x**2", "(- (** x 2))"),
        ("a + b * c @ d", "(+ a (@ (* b c) d))"),
        ("not a and b or c", "(or (and (not a) b) c)"),
        ("a < b + 1", "(< a (+ b 1))"),
        ("a ** b ** c", "(** a (** b c))"),
        ("2**-1", "(** 2 (- 1))"),
        ("-a * b", "(* (- a) b)"),
        ("+a - -b", "(- (+ a) (- b))"),
        ("a / b // c % d @ e", "(@ (% (// (/ a b) c) d) e)"),
        ("a - b - c", "(- (- a b) c)"),
        ("(a + b) * c", "(* (+ a b) c)"),
        ("not a == b", "(not (== a b))"),
        ("a or b and not c", "(or a (and b (not c)))"),
        ("a >= b or a != c", "(or (>= a b) (!= a c))"),
        ("x.T @ y", "(@ (. x T) y)"),
        ("-x.shape[0]", "(- (index (. x shape) 0))"),
        ("f(a, b, axis=1)", "(f a b axis=1)"),
        ("f()", "(f)"),
        ("f(a,)", "(f a)"),
        ("softmax(x, axis=-1)", "(softmax x axis=(- 1))"),
        ("[a, b, c]", "[a b c]"),
        ("[]", "[]"),
        ("[1, 2,]", "[1 2]"),
        ("true and false", "(and true false)"),
    ],
)
def test_expression_structure(source: str, tree: str) -> None:
    assert expr(source) == tree


@pytest.mark.parametrize(
    ("source", "tree"),
    [
        ("x[i]", "(index x i)"),
        ("x[a:b]", "(index x (: a b _))"),
        ("x[a:b:s]", "(index x (: a b s))"),
        ("x[a:]", "(index x (: a _ _))"),
        ("x[:b]", "(index x (: _ b _))"),
        ("x[:]", "(index x (: _ _ _))"),
        ("x[::2]", "(index x (: _ _ 2))"),
        ("x[a::2]", "(index x (: a _ 2))"),
        ("x[:b:]", "(index x (: _ b _))"),
        ("x[:, -1]", "(index x (: _ _ _) (- 1))"),
        ("x[..., 0]", "(index x ... 0)"),
        ("x[0, ...]", "(index x 0 ...)"),
        ("x[1:N-1, ::2, i]", "(index x (: 1 (- N 1) _) (: _ _ 2) i)"),
        ("x[i][j]", "(index (index x i) j)"),
    ],
)
def test_subscripts_and_slices(source: str, tree: str) -> None:
    assert expr(source) == tree


def test_slice_and_ellipsis_nodes() -> None:
    node = parse_expression("x[1:, ...]", FILE)
    assert isinstance(node, ast.Subscript)
    first, second = node.indices
    assert isinstance(first, ast.Slice) and isinstance(second, ast.Ellipsis_)
    assert isinstance(first.start, ast.IntLit) and first.stop is None and first.step is None
    assert first.loc == loc(1, 3, 1, 5)
    assert second.loc == loc(1, 7, 1, 10)


@pytest.mark.parametrize(
    ("source", "value"),
    [("1.0", 1.0), ("1e-5", 1e-5), (".5", 0.5), ("3.", 3.0), ("1E+3", 1000.0), ("2.5e2", 250.0)],
)
def test_float_literals(source: str, value: float) -> None:
    node = parse_expression(source, FILE)
    assert isinstance(node, ast.FloatLit)
    assert node.value == value and node.text == source


def test_int_and_bool_literals() -> None:
    assert isinstance(parse_expression("42", FILE), ast.IntLit)
    assert parse_expression("42", FILE).value == 42
    true, false = parse_expression("[true, false]", FILE).elts
    assert isinstance(true, ast.BoolLit) and true.value is True and false.value is False


def test_keywords_are_not_names_but_prefixes_are() -> None:
    assert expr("define + notx + true_ + returns") == "(+ (+ (+ define notx) true_) returns)"


def test_call_fields() -> None:
    node = parse_expression("sum(x, 1, keepdims=true)", FILE)
    assert isinstance(node, ast.Call)
    assert node.func == "sum" and node.func_loc == loc(1, 1, 1, 4)
    assert [ast.dump(arg) for arg in node.args] == ["x", "1"]
    (keyword,) = node.kwargs
    assert keyword.name == "keepdims" and keyword.loc == loc(1, 11, 1, 24)
    assert keyword.name_loc == loc(1, 11, 1, 19)


# ---- statements, layout and functions ----------------------------------------------------


def test_newlines_inside_parentheses_and_brackets_are_ignored() -> None:
    (stmt, ret) = body(
        """
        y = f(x,
              axis=1,   # a comment inside the call
        ) + [1,
             2][0]
        return y
        """
    )
    assert ast.dump(stmt) == "(= (y) (+ (f x axis=1) (index [1 2] 0)))"
    assert ast.dump(ret) == "(return y)"


def test_semicolons_blank_lines_and_comments() -> None:
    stmts = body("# leading comment\n\n  a = x; b = a ;; c = b  # trailing\n\n\n  return c;\n")
    dumped = [ast.dump(stmt) for stmt in stmts]
    assert dumped == ["(= (a) x)", "(= (b) a)", "(= (c) b)", "(return c)"]


def test_crlf_line_endings() -> None:
    source = "def f(x: f32) -> f32 {\r\n    y = x +\r\n    return y\r\n}\r\n"
    assert errors_of(source) == (
        "model.tc:2:12: error: expected expression but found end of line\n    y = x +\n           ^"
    )
    fixed = source.replace("x +", "x + 1")
    assert (
        ast.dump(parse_module(fixed, FILE)) == "(def f (x: f32) -> f32 (= (y) (+ x 1)) (return y))"
    )


def test_one_line_functions_and_brace_on_next_line() -> None:
    m = module(
        """
        def f(x: f32) -> f32 { return x }
        def g(x: f32) -> f32
        {
            return f(x)
        }
        """
    )
    assert [fn.name for fn in m.functions] == ["f", "g"]
    assert ast.dump(m.functions[1].body[0]) == "(return (f x))"


def test_tuple_results_and_unpacking() -> None:
    m = module(
        """
        def step(x: f32[N, 64], w: f32[64, 10], b: f32[10]) -> (f32[64, 10], f32[10], f32) {
            gw, gb = grad(loss(x, w, b), [w, b])
            return w - gw, b - gb, loss(x, w, b)
        }
        """
    )
    fn = m.functions[0]
    assert isinstance(fn.result, ast.TupleTypeExpr)
    assert [ast.dump(elt) for elt in fn.result.elts] == ["f32[64, 10]", "f32[10]", "f32"]
    unpack, ret = fn.body
    assert isinstance(unpack, ast.Assign) and [t.id for t in unpack.targets] == ["gw", "gb"]
    assert isinstance(ret, ast.Return) and len(ret.values) == 3


def test_types_and_dimension_expressions() -> None:
    m = module(
        """
        def f(a: f32, b: f32[], c: i32[N, 784], d: bool[K]) -> f32[N + M, 3] { return a }
        def g(x: f64[N]) -> f64[2*N] { return x }
        def h(x: i64[N]) -> i64[N-1, (N + 1) // 2] { return x }
        """
    )
    params = m.functions[0].params
    assert [param.name for param in params] == ["a", "b", "c", "d"]
    assert params[0].type.dims is None and params[1].type.dims == []
    assert [ast.dump(param.type) for param in params] == ["f32", "f32[]", "i32[N, 784]", "bool[K]"]
    results = [ast.dump(fn.result) for fn in m.functions]
    assert results == ["f32[(+ N M), 3]", "f64[(* 2 N)]", "i64[(- N 1), (// (+ N 1) 2)]"]
    dim = m.functions[0].result.dims[0]
    assert isinstance(dim, ast.DimBinOp) and isinstance(dim.lhs, ast.DimName)


def test_result_annotation_is_optional() -> None:
    (fn,) = module("def f(x: f32) { return x }").functions
    assert fn.result is None and fn.params[0].type.dtype == "f32"


def test_expression_statement_is_kept_for_sema() -> None:
    (stmt,) = body("relu(x)")
    assert isinstance(stmt, ast.ExprStmt) and ast.dump(stmt.value) == "(relu x)"


def test_empty_module() -> None:
    m = parse_module("# nothing here\n\n", FILE)
    assert m.functions == [] and m.loc == Location(FILE, 1, 1)


def test_walk_visits_every_node() -> None:
    node = parse_expression("f(a, k=b[1:2])", FILE)
    names = [n.id for n in ast.walk(node) if isinstance(n, ast.Name)]
    assert names == ["a", "b"]


# ---- locations ---------------------------------------------------------------------------

SPAN_SOURCE = """\
def f(x: f32[N, 3]) -> f32 {
    h = relu(x @ w1)
    return (a + b) * c.T
}
"""


def test_spans() -> None:
    m = parse_module(SPAN_SOURCE, FILE)
    (fn,) = m.functions
    assert m.loc == loc(1, 1, 4, 2)
    assert fn.loc == loc(1, 1, 4, 2)
    assert fn.name_loc == loc(1, 5, 1, 6)
    assert fn.params[0].loc == loc(1, 7, 1, 19)
    assert fn.params[0].name_loc == loc(1, 7, 1, 8)
    assert fn.params[0].type.loc == loc(1, 10, 1, 19)
    assert fn.result.loc == loc(1, 24, 1, 27)
    assign, ret = fn.body
    assert assign.loc == loc(2, 5, 2, 21)
    assert assign.targets[0].loc == loc(2, 5, 2, 6)
    assert assign.value.loc == loc(2, 9, 2, 21)
    assert assign.value.func_loc == loc(2, 9, 2, 13)
    assert assign.value.args[0].loc == loc(2, 14, 2, 20)
    assert ret.loc == loc(3, 5, 3, 25)
    product = ret.values[0]
    assert product.loc == loc(3, 12, 3, 25)  # includes the parentheses
    assert product.lhs.loc == loc(3, 13, 3, 18)  # the parenthesised sum does not
    assert product.rhs.loc == loc(3, 22, 3, 25)
    assert product.rhs.attr_loc == loc(3, 24, 3, 25)


# ---- syntax errors, rendered -------------------------------------------------------------

ERROR_CASES = [
    (
        "def f(x: f32) {\n    h = relu(x @ w1\n}\n",
        """\
model.tc:3:1: error: expected ')' but found '}'
}
^
model.tc:2:13: note: to match this '('
    h = relu(x @ w1
            ^""",
    ),
    (
        "def f(x: f32) -> f32 {\n    return x +\n}\n",
        """\
model.tc:2:15: error: expected expression but found end of line
    return x +
              ^""",
    ),
    (
        "def f(x f32) -> f32 {\n    return x\n}\n",
        """\
model.tc:1:9: error: expected ':' but found 'f32'
def f(x f32) -> f32 {
        ^~~""",
    ),
    (
        "def f(x: f32) -> f32 {\n    return x\n",
        """\
model.tc:1:22: error: unterminated '{': expected '}' before end of file
def f(x: f32) -> f32 {
                     ^""",
    ),
    (
        "def f(x: f32) -> f32 {\n    y = x $ 2\n    return y\n}\n",
        """\
model.tc:2:11: error: invalid character '$'
    y = x $ 2
          ^""",
    ),
    (
        "def f(x: f32) -> f32 {\n\treturn x y\n}\n",
        """\
model.tc:2:11: error: expected end of line or ';' but found 'y'
\treturn x y
\t         ^""",
    ),
    (
        "def f(x: f32) -> f32 {\n    return x\n}\n}\n",
        """\
model.tc:4:1: error: unmatched '}'
}
^""",
    ),
    (
        "x = 1\ndef f(x: f32) -> f32 { return x }\n",
        """\
model.tc:1:1: error: expected 'def' but found 'x'
x = 1
^""",
    ),
    (
        "def f(x: f32) -> f32 {\n    y = def\n    return y\n}\n",
        """\
model.tc:2:9: error: expected expression but found 'def'
    y = def
        ^~~""",
    ),
    (
        "def f(x: f32) -> { return x }\n",
        """\
model.tc:1:18: error: expected type but found '{'
def f(x: f32) -> { return x }
                 ^""",
    ),
    (
        "def f(x: f32[N, 784) -> f32 { return x }\n",
        """\
model.tc:1:20: error: expected ']' but found ')'
def f(x: f32[N, 784) -> f32 { return x }
                   ^
model.tc:1:13: note: to match this '['
def f(x: f32[N, 784) -> f32 { return x }
            ^""",
    ),
    (
        "def f(x: f32) -> f32 { return x < 1 < 2 }\n",
        """\
model.tc:1:37: error: comparisons cannot be chained; combine them with 'and'
def f(x: f32) -> f32 { return x < 1 < 2 }
                                    ^""",
    ),
    (
        "def f(x: f32) -> f32 {\n    x[0] = 1\n    return x\n}\n",
        """\
model.tc:2:5: error: cannot assign to this expression; only names can be assigned
    x[0] = 1
    ^~~~""",
    ),
    (
        "def f(x: f32[N + 1]) -> f32 { return sum(x, axis=0, 1) }\n",
        """\
model.tc:1:14: error: a parameter's dimensions must be names or integers, not expressions
def f(x: f32[N + 1]) -> f32 { return sum(x, axis=0, 1) }
             ^~~~~
model.tc:1:53: error: positional argument follows keyword argument
def f(x: f32[N + 1]) -> f32 { return sum(x, axis=0, 1) }
                                                    ^""",
    ),
    (
        "def f(x: f33) -> f32 { return x }\n",
        """\
model.tc:1:10: error: unknown dtype 'f33' (expected one of f32, f64, i32, i64, bool, f16, bf16)
def f(x: f33) -> f32 { return x }
         ^~~""",
    ),
    (
        "def f(x: f32) -> f32 { return 1e + x }\n",
        """\
model.tc:1:31: error: invalid number '1e'
def f(x: f32) -> f32 { return 1e + x }
                              ^~""",
    ),
    (
        "def f(x: f32) -> f32 { return x[] }\n",
        """\
model.tc:1:33: error: expected expression but found ']'
def f(x: f32) -> f32 { return x[] }
                                ^""",
    ),
]


@pytest.mark.parametrize(("source", "rendered"), ERROR_CASES)
def test_syntax_errors_render_exactly(source: str, rendered: str) -> None:
    assert errors_of(source) == rendered


def test_independent_errors_are_all_reported() -> None:
    source = textwrap.dedent(
        """\
        def f(x: f32) -> f32 {
            a = (x +
            b = x ** ; c = x
            return a, *
        }
        def g(y f32) -> f32 {
            return y
        }
        def h(z: f32) -> f32 { return z @@ z }
        """
    )
    with pytest.raises(DiagnosticError) as caught:
        parse_module(source, FILE)
    headers = [str(diag.loc) + ": " + diag.message for diag in caught.value.diagnostics]
    assert headers == [
        "model.tc:3:7: expected ')' but found '='",
        "model.tc:4:15: expected expression but found '*'",
        "model.tc:6:9: expected ':' but found 'f32'",
        "model.tc:9:34: expected expression but found '@'",
    ]


def test_errors_never_leak_lark_exceptions() -> None:
    sources = ["", "}", "{", ")", "def", "def f", "def f(", "def f() {", "return", "\x00", "(("]
    for source in sources:
        try:
            parse_module(source, FILE)
        except DiagnosticError as error:
            assert all(diag.loc is not None for diag in error.diagnostics)


def test_parse_expression_reports_errors() -> None:
    with pytest.raises(DiagnosticError) as caught:
        parse_expression("f(a=1, a=2)", FILE)
    assert caught.value.render({FILE: "f(a=1, a=2)"}) == (
        "model.tc:1:8: error: keyword argument 'a' given twice\nf(a=1, a=2)\n       ^"
    )


# ---- Location and diagnostics ------------------------------------------------------------


def test_location_text_and_span() -> None:
    start, end = Location("a b.tc", 3, 14, 3, 17), Location("a b.tc", 5, 2, 5, 9)
    assert str(start) == "a b.tc:3:14"
    assert Location('we"ird.tc', 1, 2).ir_text() == 'loc("we\\"ird.tc":1:2)'
    weird = Location('we"ird.tc', 1, 2)
    assert Location.from_ir_text(weird.ir_text()) == weird
    assert Location.span(start, end) == Location("a b.tc", 3, 14, 5, 9)
    assert Location.span(start, Location("a b.tc", 4, 1)) == Location("a b.tc", 3, 14, 4, 2)


def test_render_diagnostic_spans_tabs_and_notes() -> None:
    source = "x = 1\n\th = relu(foo @ w1)\n"
    diag = Diagnostic("unknown name 'foo'", Location(FILE, 2, 11, 2, 14))
    diag.notes.append(("defined here", Location(FILE, 1, 1, 2, 3)))
    diag.notes.append(("no location", None))
    assert render_diagnostic(diag, source) == (
        "model.tc:2:11: error: unknown name 'foo'\n"
        "\th = relu(foo @ w1)\n"
        "\t         ^~~\n"
        "model.tc:1:1: note: defined here\n"
        "x = 1\n"
        "^~~~~\n"
        "note: no location"
    )
    assert render_diagnostic(Diagnostic("boom", None), source) == "error: boom"
    header = "model.tc:2:11: error: unknown name 'foo'"
    assert (
        render_diagnostic(diag, None)
        == header + "\nmodel.tc:1:1: note: defined here\nnote: no location"
    )


def test_diagnostic_engine() -> None:
    engine = DiagnosticEngine()
    assert not engine.has_errors
    engine.raise_if_errors()
    engine.warning("unused", Location(FILE, 1, 1))
    assert not engine.has_errors
    engine.error("bad", Location(FILE, 2, 1))
    engine.note("because", Location(FILE, 1, 1))
    engine.error("bad", Location(FILE, 2, 1))  # an exact repeat is dropped
    assert engine.has_errors and len(engine.diagnostics) == 2
    with pytest.raises(DiagnosticError) as caught:
        engine.raise_if_errors()
    error = caught.value
    assert [diag.message for diag in error.diagnostics] == ["unused", "bad"]
    assert error.diagnostics[1].notes == [("because", Location(FILE, 1, 1))]
    assert str(error) == "model.tc:1:1: warning: unused\nmodel.tc:2:1: error: bad"
    assert pickle.loads(pickle.dumps(error)).diagnostics[1].message == "bad"
