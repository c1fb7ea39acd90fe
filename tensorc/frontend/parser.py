"""The tensorc parser: `.tc` source text to the AST of `tensorc.frontend.ast` (SPEC §1.1-§1.5).

How it works:

1. lark's basic lexer tokenises the text with the terminals of `grammar.lark`. An invalid
   character is reported, blanked out, and the text lexed again, so one stray `$` does not
   hide the rest of the file.
2. A layout pass drops `_NEWLINE` tokens inside `( )` and `[ ]` (not inside `{ }`), like
   Python's bracket rule, and remembers for every token the innermost open bracket and the
   `{ }` depth. Tokens that can never occur inside brackets (`{ } ; def return`) close any
   brackets still open, so a missing `)` costs one error, not the rest of the file.
3. The tokens are fed one by one to lark's LALR(1) interactive parser. On a syntax error the
   parser reports it in plain words (`expected ')' but found '}'`), skips to the next statement
   end, `{`, `}`, `return` or `def`, and continues from a fresh state, so several independent
   errors are reported at once.
4. An iterative (non-recursive) builder turns lark's tree into AST nodes, reporting the few
   errors the grammar leaves to it: assignment to something that is not a name, chained
   comparisons, calls of things that are not names, positional arguments after keywords,
   repeated keywords, unknown dtypes, and dimension expressions in parameter types.

Everything is reported as `DiagnosticError`; no lark exception escapes. Expression statements
are accepted as `ExprStmt` nodes; semantic analysis decides what to say about them.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedToken
from lark.lexer import PatternStr
from lark.parsers.lalr_interactive_parser import InteractiveParser
from lark.tree import Meta

from tensorc.cache_location import cache_dir
from tensorc.frontend import ast
from tensorc.ir.diagnostics import Diagnostic, DiagnosticEngine, DiagnosticError
from tensorc.ir.location import Location

__all__ = ["parse_expression", "parse_module"]

_MAX_INVALID_CHARACTERS = 20

_OPENERS = {"LPAR": "RPAR", "LSQB": "RSQB", "LBRACE": "RBRACE"}
_BRACKETS = frozenset({"LPAR", "LSQB"})
_CLOSES_BRACKETS = frozenset({"LBRACE", "RBRACE", "SEMICOLON", "DEF", "RETURN"})
_SEPARATORS = frozenset({"_NEWLINE", "SEMICOLON"})
_NUMBERS = frozenset({"INT", "FLOAT"})
_BEFORE_TYPE = frozenset({"COLON", "ARROW"})
_EXPRESSION_START = frozenset({"NAME", "INT", "FLOAT", "LPAR", "LSQB"})
_DESCRIBED_TERMINALS = {
    "NAME": "identifier",
    "INT": "integer",
    "FLOAT": "number",
    "_NEWLINE": "end of line",
    "$END": "end of file",
}
_SPELLING_ORDER_LAST = ("end of line", "end of file")


@functools.cache
def _lark() -> Lark:
    """The parser, built once per process from `grammar.lark` next to this module. Building
    the LALR tables takes ~0.3 s, so lark caches them (keyed by a hash of the grammar, the
    options and lark's version) in tensorc's own cache directory -- not the shared temp dir,
    whose files other users could plant (the cache is a pickle)."""
    return Lark.open_from_package(
        __package__ or "tensorc.frontend",
        "grammar.lark",
        parser="lalr",
        lexer="basic",
        start=["start", "expr_start"],
        propagate_positions=True,
        maybe_placeholders=True,
        cache=_grammar_cache_path() or False,
    )


def _grammar_cache_path() -> str | None:
    """`lark/tc-grammar.cache` in tensorc's cache directory, or None when that directory
    cannot be made."""
    directory = cache_dir() / "lark"
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return str(directory / "tc-grammar.cache")


def parse_module(source: str, filename: str = "<input>") -> ast.Module:
    """Parse a whole `.tc` file; raises DiagnosticError listing every syntax error found."""
    module = _parse(source, filename, "start")
    assert isinstance(module, ast.Module)
    return module


def parse_expression(source: str, filename: str = "<expr>") -> ast.Expr:
    """Parse a lone expression (for tests and tools); raises DiagnosticError on errors."""
    return _parse(source, filename, "expr_start")


def _parse(source: str, filename: str, start: str) -> ast.Module | ast.Expr:
    diagnostics = DiagnosticEngine()
    result: ast.Module | ast.Expr | None = None
    try:
        tree = _parse_tree(source, filename, start, diagnostics)
        result = None if tree is None else _AstBuilder(filename, diagnostics).build(tree)
    except LarkError as error:  # a parser bug; still report it as a diagnostic
        diagnostics.error(f"internal parser error: {error}", None)
    if diagnostics.has_errors or result is None:
        raise DiagnosticError(_in_source_order(diagnostics.diagnostics))
    return result


def _in_source_order(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    def position(diag: Diagnostic) -> tuple[int, int]:
        return (diag.loc.line, diag.loc.col) if diag.loc is not None else (1 << 30, 0)

    return sorted(diagnostics, key=position)


# ---- lexing and layout -------------------------------------------------------------------


@dataclass(slots=True)
class _Layout:
    """The significant tokens, with what was open before each of them."""

    tokens: list[Token] = field(default_factory=list)
    open_bracket: list[Token | None] = field(default_factory=list)
    brace_depth: list[int] = field(default_factory=list)
    unclosed: list[Token] = field(default_factory=list)
    lines_with_lexical_errors: set[int] = field(default_factory=set)


def _lex(source: str, filename: str, diagnostics: DiagnosticEngine, keep_newlines: bool) -> _Layout:
    layout = _Layout()
    text = source
    for _ in range(_MAX_INVALID_CHARACTERS + 1):
        try:
            raw_tokens = list(_lark().lex(text))
        except UnexpectedCharacters as error:
            _report_invalid_character(source, error, filename, diagnostics)
            layout.lines_with_lexical_errors.add(error.line)
            text = text[: error.pos_in_stream] + " " + text[error.pos_in_stream + 1 :]
            continue
        _check_numbers(raw_tokens, filename, diagnostics, layout)
        if not keep_newlines:
            raw_tokens = [token for token in raw_tokens if token.type != "_NEWLINE"]
        _lay_out(raw_tokens, layout)
        return layout
    diagnostics.error("too many invalid characters; giving up", None)
    diagnostics.raise_if_errors()
    raise AssertionError("unreachable")


def _report_invalid_character(
    source: str, error: UnexpectedCharacters, filename: str, diagnostics: DiagnosticEngine
) -> None:
    char = source[error.pos_in_stream]
    loc = Location(filename, error.line, error.column, error.line, error.column + 1)
    diagnostics.error(f"invalid character {_describe_character(char)}", loc)


def _describe_character(char: str) -> str:
    if char.isprintable() and not char.isspace():
        return f"'{char}'"
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" ({name})" if name else "")


def _check_numbers(
    tokens: list[Token], filename: str, diagnostics: DiagnosticEngine, layout: _Layout
) -> None:
    """Report numbers run together with a following name or number (`1e`, `2x`, `1.5.2`)."""
    for number, following in zip(tokens, tokens[1:]):
        if number.type not in _NUMBERS or number.end_pos != following.start_pos:
            continue
        if following.type not in _NUMBERS and following.type != "NAME":
            continue
        loc = Location(
            filename, number.line, number.column, following.end_line, following.end_column
        )
        diagnostics.error(f"invalid number '{number}{following}'", loc)
        layout.lines_with_lexical_errors.add(number.line)


def _lay_out(raw_tokens: Iterable[Token], layout: _Layout) -> None:
    """Fill `layout` from the lexer's tokens (see step 2 of the module docstring)."""
    stack: list[Token] = []
    for token in raw_tokens:
        innermost = stack[-1] if stack and stack[-1].type in _BRACKETS else None
        if token.type == "_NEWLINE" and innermost is not None:
            continue
        layout.tokens.append(token)
        layout.open_bracket.append(innermost)
        layout.brace_depth.append(sum(1 for opener in stack if opener.type == "LBRACE"))
        _track_brackets(stack, token)
    layout.unclosed = stack


def _track_brackets(stack: list[Token], token: Token) -> None:
    kind = token.type
    if kind in _CLOSES_BRACKETS:
        while stack and stack[-1].type in _BRACKETS:
            stack.pop()
    if kind in _BRACKETS or kind == "LBRACE":
        stack.append(token)
    elif kind in ("RPAR", "RSQB") and stack and stack[-1].type in _BRACKETS:
        stack.pop()
    elif kind == "RBRACE" and stack:
        stack.pop()
    elif kind == "DEF":
        stack.clear()


# ---- parsing with error recovery ---------------------------------------------------------


def _parse_tree(
    source: str, filename: str, start: str, diagnostics: DiagnosticEngine
) -> Tree | None:
    layout = _lex(source, filename, diagnostics, keep_newlines=start == "start")
    return _TokenFeeder(layout, filename, start, diagnostics).run()


class _TokenFeeder:
    """Feeds the laid-out tokens to lark's interactive parser, recovering from errors."""

    def __init__(
        self, layout: _Layout, filename: str, start: str, diagnostics: DiagnosticEngine
    ) -> None:
        self.layout = layout
        self.filename = filename
        self.start = start
        self.diagnostics = diagnostics
        self.recovers = start == "start"

    def run(self) -> Tree | None:
        tokens = self.layout.tokens
        parser = self._fresh_parser()
        index = 0
        resumed_at: int | None = None
        while index < len(tokens):
            try:
                parser.feed_token(tokens[index])
            except UnexpectedToken as error:
                repeated = resumed_at == index
                if not repeated:
                    self._report(index, error.expected)
                if not self.recovers:
                    return None
                recovery = self._recover(index + 1 if repeated else index)
                if recovery is None:
                    return None
                parser, index = recovery
                resumed_at = index
                continue
            index += 1
            resumed_at = None
        return self._finish(parser)

    def _finish(self, parser: InteractiveParser) -> Tree | None:
        if self.layout.unclosed:
            for opener in reversed(self.layout.unclosed):
                self._report_unterminated(opener)
            return None
        try:
            return parser.feed_token(self._end_token())
        except UnexpectedToken as error:
            self._report(len(self.layout.tokens), error.expected)
            return None

    # -- recovery

    def _recover(self, search_from: int) -> tuple[InteractiveParser, int] | None:
        """A fresh parser state and the token index to continue from, or None at the end."""
        tokens, depths = self.layout.tokens, self.layout.brace_depth
        for index in range(search_from, len(tokens)):
            kind, depth = tokens[index].type, depths[index]
            if kind == "DEF" and self._starts_line(index):
                return self._fresh_parser(), index
            if kind in _SEPARATORS:
                return self._parser_at_depth(depth), index + 1
            if kind == "LBRACE" and depth == 0:
                return self._fresh_block_parser(), index + 1
            if kind == "RBRACE" and depth == 1:
                return self._fresh_block_parser(), index
            if kind == "RETURN" and depth >= 1:
                return self._fresh_block_parser(), index
        return None

    def _starts_line(self, index: int) -> bool:
        return index == 0 or self.layout.tokens[index - 1].type == "_NEWLINE"

    def _parser_at_depth(self, depth: int) -> InteractiveParser:
        return self._fresh_block_parser() if depth >= 1 else self._fresh_parser()

    def _fresh_parser(self) -> InteractiveParser:
        return _lark().parse_interactive(start=self.start)

    def _fresh_block_parser(self) -> InteractiveParser:
        """A parser positioned at the start of a statement inside a (made-up) function body."""
        parser = self._fresh_parser()
        for kind, text in (("DEF", "def"), ("NAME", "_"), ("LPAR", "("), ("RPAR", ")")):
            parser.feed_token(Token(kind, text))
        parser.feed_token(Token("LBRACE", "{"))
        return parser

    # -- messages

    def _report(self, index: int, expected: set[str]) -> None:
        token = self._token_at(index)
        if token.line in self.layout.lines_with_lexical_errors:
            return
        loc = _token_location(token, self.filename)
        found = _describe_token(token)
        open_bracket = self._open_bracket_at(index)
        closer = _OPENERS[open_bracket.type] if open_bracket is not None else None
        if open_bracket is not None and closer in expected:
            self.diagnostics.error(f"expected {_spell(closer)} but found {found}", loc)
            opener_loc = _token_location(open_bracket, self.filename)
            self.diagnostics.note(f"to match this {_spell(open_bracket.type)}", opener_loc)
            return
        self.diagnostics.error(self._message(index, found, expected), loc)

    def _message(self, index: int, found: str, expected: set[str]) -> str:
        token = self._token_at(index)
        if self._is_unmatched_closer(index):
            return f"unmatched {found}"
        if _EXPRESSION_START <= expected:
            return f"expected expression but found {found}"
        previous = self.layout.tokens[index - 1] if index > 0 else None
        if previous is not None and previous.type in _BEFORE_TYPE and "NAME" in expected:
            return f"expected type but found {found}"
        if "DEF" in expected and token.type != "$END":
            return f"expected 'def' but found {found}"
        if {"_NEWLINE", "SEMICOLON"} <= expected:
            return f"expected end of line or ';' but found {found}"
        spellings = _spell_expected(expected)
        if len(spellings) <= 4:
            return f"expected {_or_list(spellings)} but found {found}"
        if token.type in _DESCRIBED_TERMINALS:
            return f"unexpected {found}"
        return f"unexpected token {found}"

    def _is_unmatched_closer(self, index: int) -> bool:
        kind = self._token_at(index).type
        if kind in ("RPAR", "RSQB"):
            return self._open_bracket_at(index) is None
        return kind == "RBRACE" and self.layout.brace_depth[index] == 0

    def _token_at(self, index: int) -> Token:
        tokens = self.layout.tokens
        return tokens[index] if index < len(tokens) else self._end_token()

    def _open_bracket_at(self, index: int) -> Token | None:
        open_brackets = self.layout.open_bracket
        return open_brackets[index] if index < len(open_brackets) else None

    def _report_unterminated(self, opener: Token) -> None:
        closer = _spell(_OPENERS[opener.type])
        self.diagnostics.error(
            f"unterminated {_spell(opener.type)}: expected {closer} before end of file",
            _token_location(opener, self.filename),
        )

    def _end_token(self) -> Token:
        """`$END`, placed just after the last token that is not an end of line."""
        significant = [token for token in self.layout.tokens if token.type != "_NEWLINE"]
        if not significant:
            return Token("$END", "", 0, 1, 1, 1, 1, 0)
        last = significant[-1]
        line, col = last.end_line, last.end_column
        return Token("$END", "", last.end_pos, line, col, line, col, last.end_pos)


def _describe_token(token: Token) -> str:
    if token.type in ("_NEWLINE", "$END"):
        return _DESCRIBED_TERMINALS[token.type]
    return f"'{token.value}'"


def _spell(terminal: str) -> str:
    """How a terminal is written in messages: `')'`, `identifier`, `end of line`."""
    if terminal in _DESCRIBED_TERMINALS:
        return _DESCRIBED_TERMINALS[terminal]
    pattern = _lark().get_terminal(terminal).pattern
    if isinstance(pattern, PatternStr):
        return f"'{pattern.value}'"
    return terminal.lower()


def _spell_expected(expected: set[str]) -> list[str]:
    names = set(expected)
    if len(names) > 1:
        names.discard("_NEWLINE")
    spellings = sorted(_spell(name) for name in names)
    return sorted(spellings, key=lambda spelling: spelling in _SPELLING_ORDER_LAST)


def _or_list(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


def _token_location(token: Token, filename: str) -> Location:
    return Location(filename, token.line, token.column, token.end_line, token.end_column)


# ---- lark tree to AST --------------------------------------------------------------------


class _AstBuilder:
    """Turns lark's tree into AST nodes bottom-up, without recursion.

    Each rule (or alias) of the grammar has a method `rule(meta, children)`, called with its
    children already converted; tokens stay lark Tokens and absent optionals are None.
    """

    def __init__(self, filename: str, diagnostics: DiagnosticEngine) -> None:
        self.filename = filename
        self.diagnostics = diagnostics

    def build(self, root: Tree) -> ast.Module | ast.Expr:
        results: list[object] = []
        pending: list[tuple[object, bool]] = [(root, False)]
        while pending:
            item, children_done = pending.pop()
            if not isinstance(item, Tree):
                results.append(item)
                continue
            if not children_done:
                pending.append((item, True))
                pending.extend((child, False) for child in reversed(item.children))
                continue
            count = len(item.children)
            children = results[len(results) - count :]
            del results[len(results) - count :]
            results.append(self._method(item.data)(item.meta, children))
        return results[0]  # type: ignore[return-value]

    def _method(self, rule: str | Token) -> Callable[[Meta, list], object]:
        return getattr(self, f"_build_{rule}")

    def _loc(self, meta: Meta) -> Location:
        return Location(self.filename, meta.line, meta.column, meta.end_line, meta.end_column)

    def _tok_loc(self, token: Token) -> Location:
        return _token_location(token, self.filename)

    # -- module, functions, types

    def _build_start(self, meta: Meta, children: list) -> ast.Module:
        if not children:
            return ast.Module([], Location(self.filename, 1, 1))
        return ast.Module(children, Location.span(children[0].loc, children[-1].loc))

    def _build_expr_start(self, meta: Meta, children: list) -> ast.Expr:
        return children[0]

    def _build_funcdef(self, meta: Meta, children: list) -> ast.FunctionDef:
        name, params, *result, body = children
        return ast.FunctionDef(
            name=str(name),
            params=params,
            result=result[0] if result else None,
            body=body,
            name_loc=self._tok_loc(name),
            loc=self._loc(meta),
        )

    def _build_params(self, meta: Meta, children: list) -> list[ast.Param]:
        return children

    def _build_param(self, meta: Meta, children: list) -> ast.Param:
        name, type_expr = children
        for dim in type_expr.dims or []:
            if isinstance(dim, ast.DimBinOp):
                self.diagnostics.error(
                    "a parameter's dimensions must be names or integers, not expressions",
                    dim.loc,
                )
        return ast.Param(str(name), type_expr, self._tok_loc(name), self._loc(meta))

    def _build_tuple_type(self, meta: Meta, children: list) -> ast.TupleTypeExpr:
        return ast.TupleTypeExpr(children, self._loc(meta))

    def _build_tensor_type(self, meta: Meta, children: list) -> ast.TensorTypeExpr:
        dtype, *dims = children
        if dtype not in ast.DTYPE_NAMES:
            known = ", ".join(ast.DTYPE_NAMES)
            self.diagnostics.error(
                f"unknown dtype '{dtype}' (expected one of {known})", self._tok_loc(dtype)
            )
        return ast.TensorTypeExpr(str(dtype), dims[0] if dims else None, self._loc(meta))

    def _build_dim_list(self, meta: Meta, children: list) -> list[ast.DimExpr]:
        return children

    def _build_dim_name(self, meta: Meta, children: list) -> ast.DimName:
        return ast.DimName(str(children[0]), self._loc(meta))

    def _build_dim_int(self, meta: Meta, children: list) -> ast.DimInt:
        return ast.DimInt(int(children[0]), self._loc(meta))

    def _build_dim_binop(self, meta: Meta, children: list) -> ast.DimBinOp:
        lhs, op, rhs = children
        return ast.DimBinOp(str(op), lhs, rhs, self._loc(meta))

    # -- statements

    def _build_block(self, meta: Meta, children: list) -> list[ast.Stmt]:
        return children

    def _build_assign(self, meta: Meta, children: list) -> ast.Assign:
        *targets, value = children
        if len(targets) == 1 and isinstance(targets[0], ast.TupleExpr):
            targets = targets[0].elts  # `(p, q) = ...`
        for target in targets:
            if not isinstance(target, ast.Name):
                self.diagnostics.error(
                    "cannot assign to this expression; only names can be assigned", target.loc
                )
        names = [target for target in targets if isinstance(target, ast.Name)]
        return ast.Assign(names, value, self._loc(meta))

    def _build_return_stmt(self, meta: Meta, children: list) -> ast.Return:
        if len(children) == 1 and isinstance(children[0], ast.TupleExpr):
            return ast.Return(children[0].elts, self._loc(meta))  # `return a, b`, `(a, b)`
        return ast.Return(children, self._loc(meta))

    def _build_expr_stmt(self, meta: Meta, children: list) -> ast.ExprStmt:
        return ast.ExprStmt(children[0], self._loc(meta))

    # -- expressions

    def _build_binop(self, meta: Meta, children: list) -> ast.BinOp:
        lhs, op, rhs = children
        return ast.BinOp(str(op), lhs, rhs, self._loc(meta))

    def _build_unaryop(self, meta: Meta, children: list) -> ast.UnaryOp:
        op, operand = children
        return ast.UnaryOp(str(op), operand, self._loc(meta))

    def _build_compare(self, meta: Meta, children: list) -> ast.BinOp:
        lhs, op, rhs, *rest = children
        if rest:
            self.diagnostics.error(
                "comparisons cannot be chained; combine them with 'and'", self._tok_loc(rest[0])
            )
        return ast.BinOp(str(op), lhs, rhs, self._loc(meta))

    def _build_call(self, meta: Meta, children: list) -> ast.Call:
        callee, arguments = children
        if not isinstance(callee, ast.Name):
            self.diagnostics.error("only a function name can be called", callee.loc)
        args = [arg for arg in arguments if not isinstance(arg, ast.Keyword)]
        kwargs = [arg for arg in arguments if isinstance(arg, ast.Keyword)]
        self._check_argument_order(arguments)
        func = callee.id if isinstance(callee, ast.Name) else ""
        return ast.Call(func, callee.loc, args, kwargs, self._loc(meta))

    def _check_argument_order(self, arguments: list) -> None:
        seen_keywords: set[str] = set()
        for argument in arguments:
            if not isinstance(argument, ast.Keyword):
                if seen_keywords:
                    self.diagnostics.error(
                        "positional argument follows keyword argument", argument.loc
                    )
                continue
            if argument.name in seen_keywords:
                self.diagnostics.error(
                    f"keyword argument '{argument.name}' given twice", argument.name_loc
                )
            seen_keywords.add(argument.name)

    def _build_arguments(self, meta: Meta, children: list) -> list:
        return children

    def _build_keyword(self, meta: Meta, children: list) -> ast.Keyword:
        name, value = children
        return ast.Keyword(str(name), value, self._tok_loc(name), self._loc(meta))

    def _build_subscript(self, meta: Meta, children: list) -> ast.Subscript:
        value, indices = children
        return ast.Subscript(value, indices, self._loc(meta))

    def _build_subscripts(self, meta: Meta, children: list) -> list[ast.Index]:
        return [self._index_item(child) for child in children]

    def _index_item(self, child: ast.Index | Token) -> ast.Index:
        if isinstance(child, Token):  # ELLIPSIS
            return ast.Ellipsis_(self._tok_loc(child))
        return child

    def _build_slice(self, meta: Meta, children: list) -> ast.Slice:
        start, stop, step = children
        return ast.Slice(start, stop, step, self._loc(meta))

    def _build_attribute(self, meta: Meta, children: list) -> ast.Attribute:
        value, attr = children
        return ast.Attribute(value, str(attr), self._tok_loc(attr), self._loc(meta))

    def _build_name(self, meta: Meta, children: list) -> ast.Name:
        return ast.Name(str(children[0]), self._loc(meta))

    def _build_int_lit(self, meta: Meta, children: list) -> ast.IntLit:
        return ast.IntLit(int(children[0]), self._loc(meta))

    def _build_float_lit(self, meta: Meta, children: list) -> ast.FloatLit:
        text = str(children[0])
        return ast.FloatLit(float(text), text, self._loc(meta))

    def _build_bool_lit(self, meta: Meta, children: list) -> ast.BoolLit:
        return ast.BoolLit(children[0].type == "TRUE", self._loc(meta))

    def _build_list_expr(self, meta: Meta, children: list) -> ast.ListExpr:
        return ast.ListExpr(children, self._loc(meta))

    def _build_tuple_expr(self, meta: Meta, children: list) -> ast.TupleExpr:
        return ast.TupleExpr(children, self._loc(meta))

    _build_bare_tuple = _build_tuple_expr
