"""Dimension expressions: parsing and evaluation of the text form used in manifests.

A dimension expression is an integer expression over symbolic dimension names, e.g. ``N``,
``784``, ``N - 1``, ``2*N``, ``N*K + 3``, ``(N + 1) // 2``, ``min(N, 3)``, ``max(N - 1, 0)``
or ``-N``. Grammar (operators follow Python's precedence and semantics; ``//`` and ``%`` are
floor division and modulo)::

    expr    := term (("+" | "-") term)*
    term    := unary (("*" | "//" | "%") unary)*
    unary   := ("-" | "+") unary | atom
    atom    := INT | NAME | ("min" | "max") "(" expr ("," expr)* ")" | "(" expr ")"

The text is parsed by a small recursive-descent parser (never ``eval``) into a tree of
closures; the result is cached per string, so evaluating the same text again costs only the
closure calls.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import NoReturn

__all__ = ["CompiledDim", "compile_dim", "dim_names", "eval_dim", "eval_extent"]

Evaluator = Callable[[Mapping[str, int]], int]

_TOKEN_RE = re.compile(
    r"\s*(?:(?P<int>[0-9]+)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>//|[-+*%(),/]))"
)
_FUNCTIONS: dict[str, Callable[..., int]] = {"min": min, "max": max}


@dataclass(frozen=True)
class CompiledDim:
    """A parsed dimension expression.

    ``evaluate(env)`` computes its value given the values of its names; ``names`` are the
    names it uses; ``constant`` is its value when it uses no name, else ``None``.
    """

    text: str
    evaluate: Evaluator
    names: frozenset[str]
    constant: int | None

    def __call__(self, env: Mapping[str, int]) -> int:
        return self.evaluate(env)


@lru_cache(maxsize=4096)
def compile_dim(text: str) -> CompiledDim:
    """Parse ``text`` into a :class:`CompiledDim` (cached); ``ValueError`` if it is malformed."""
    if not isinstance(text, str):
        raise TypeError(f"a dimension expression must be a str, got {type(text).__name__}")
    parser = _Parser(text)
    evaluate, names = parser.parse()
    constant = evaluate({}) if not names else None
    if constant is not None:
        evaluate = _constant(constant)
    return CompiledDim(text=text, evaluate=evaluate, names=frozenset(names), constant=constant)


def eval_dim(text: str | int, env: Mapping[str, int]) -> int:
    """The value of dimension expression ``text`` with names bound by ``env``.

    Raises ``KeyError`` for a name missing from ``env``, ``ValueError`` for malformed text and
    ``ZeroDivisionError`` for a division or modulo by zero.
    """
    if isinstance(text, int):
        return text
    return compile_dim(text).evaluate(env)


def eval_extent(text: str | int, env: Mapping[str, int]) -> int:
    """The extent of a tensor axis: the expression's value clamped at 0 (never negative)."""
    return max(0, eval_dim(text, env))


def dim_names(text: str | int) -> set[str]:
    """The set of names used by dimension expression ``text``."""
    if isinstance(text, int):
        return set()
    return set(compile_dim(text).names)


# -- closures --------------------------------------------------------------------------------


def _constant(value: int) -> Evaluator:
    def evaluate(env: Mapping[str, int]) -> int:
        return value

    return evaluate


def _lookup(name: str, text: str) -> Evaluator:
    def evaluate(env: Mapping[str, int]) -> int:
        try:
            return env[name]
        except KeyError:
            known = ", ".join(sorted(env)) or "none"
            raise KeyError(
                f"dimension expression {text!r} uses unknown name {name!r} (known names: {known})"
            ) from None

    return evaluate


def _negate(operand: Evaluator) -> Evaluator:
    def evaluate(env: Mapping[str, int]) -> int:
        return -operand(env)

    return evaluate


def _binary(op: str, lhs: Evaluator, rhs: Evaluator, text: str) -> Evaluator:
    if op == "+":
        return lambda env: lhs(env) + rhs(env)
    if op == "-":
        return lambda env: lhs(env) - rhs(env)
    if op == "*":
        return lambda env: lhs(env) * rhs(env)

    def divide(env: Mapping[str, int]) -> int:
        divisor = rhs(env)
        if divisor == 0:
            raise ZeroDivisionError(f"dimension expression {text!r}: {op} by zero")
        return lhs(env) // divisor if op == "//" else lhs(env) % divisor

    return divide


def _call(function: Callable[..., int], args: list[Evaluator]) -> Evaluator:
    if len(args) == 1:
        only = args[0]
        return only
    if len(args) == 2:
        first, second = args
        return lambda env: function(first(env), second(env))
    return lambda env: function(*(arg(env) for arg in args))


# -- parser ----------------------------------------------------------------------------------


class _Parser:
    """Recursive-descent parser producing ``(evaluator, names used)``."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = self._tokenize(text)
        self.index = 0
        self.names: set[str] = set()

    def _tokenize(self, text: str) -> list[tuple[str, str, int]]:
        tokens: list[tuple[str, str, int]] = []
        position = 0
        end = len(text.rstrip())
        while position < end:
            match = _TOKEN_RE.match(text, position)
            if match is None:
                offset = len(text) - len(text[position:].lstrip())
                self._fail(f"unexpected character {text[offset]!r}", offset)
            kind = match.lastgroup
            assert kind is not None
            tokens.append((kind, match.group(kind), match.start(kind)))
            position = match.end()
        tokens.append(("end", "", len(text)))
        return tokens

    def _fail(self, reason: str, offset: int | None = None) -> NoReturn:
        if offset is None:
            offset = self.tokens[self.index][2]
        raise ValueError(f"invalid dimension expression {self.text!r}: {reason} at offset {offset}")

    def _peek(self) -> tuple[str, str, int]:
        return self.tokens[self.index]

    def _accept(self, *ops: str) -> str | None:
        kind, value, _ = self.tokens[self.index]
        if kind == "op" and value in ops:
            self.index += 1
            return value
        return None

    def _expect(self, op: str) -> None:
        if self._accept(op) is None:
            self._fail(f"expected {op!r}, found {self._describe()}")

    def _describe(self) -> str:
        kind, value, _ = self._peek()
        return "end of text" if kind == "end" else repr(value)

    def parse(self) -> tuple[Evaluator, set[str]]:
        if self._peek()[0] == "end":
            self._fail("empty expression")
        evaluate = self._expr()
        if self._peek()[0] != "end":
            self._fail(f"unexpected {self._describe()}")
        return evaluate, self.names

    def _expr(self) -> Evaluator:
        evaluate = self._term()
        while (op := self._accept("+", "-")) is not None:
            evaluate = _binary(op, evaluate, self._term(), self.text)
        return evaluate

    def _term(self) -> Evaluator:
        evaluate = self._unary()
        while (op := self._accept("*", "//", "%", "/")) is not None:
            if op == "/":
                self._fail("'/' is not allowed (use '//' for floor division)", self._previous())
            evaluate = _binary(op, evaluate, self._unary(), self.text)
        return evaluate

    def _previous(self) -> int:
        return self.tokens[self.index - 1][2]

    def _unary(self) -> Evaluator:
        if self._accept("-") is not None:
            return _negate(self._unary())
        if self._accept("+") is not None:
            return self._unary()
        return self._atom()

    def _atom(self) -> Evaluator:
        kind, value, _ = self._peek()
        if kind == "int":
            self.index += 1
            return _constant(int(value))
        if kind == "name":
            self.index += 1
            if value in _FUNCTIONS and self._accept("(") is not None:
                return self._call_args(value)
            self.names.add(value)
            return _lookup(value, self.text)
        if self._accept("(") is not None:
            evaluate = self._expr()
            self._expect(")")
            return evaluate
        self._fail(f"expected a number, a name or '(', found {self._describe()}")

    def _call_args(self, function_name: str) -> Evaluator:
        args = [self._expr()]
        while self._accept(",") is not None:
            args.append(self._expr())
        self._expect(")")
        return _call(_FUNCTIONS[function_name], args)
