"""tensorc's frontend: `.tc` source text to a verified module of the `tc` dialect.

    module = compile_source(text, "model.tc")     # raises DiagnosticError with every error

`parse_module` (syntax, `tensorc.frontend.parser`) builds the AST; `lower_module` (semantic
analysis, `tensorc.frontend.sema`) checks it and lowers it to `func`/`tc` ops.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import TypeVar

from tensorc.frontend.parser import parse_module
from tensorc.frontend.sema import lower_module
from tensorc.ir.core import VerifyError
from tensorc.ir.diagnostics import Diagnostic, DiagnosticEngine, DiagnosticError
from tensorc.ir.dialects.func import Module
from tensorc.ir.verifier import verify_module

__all__ = ["compile_source", "lower_module", "parse_module"]

T = TypeVar("T")

# The AST and its lowering are recursive, and a flat `x + x + ... + x` is a tree as deep as it
# is long. The frontend runs on a thread whose stack fits this many levels (the stack is
# reserved, not committed: only the pages a deep program touches are used).
NESTING_LIMIT = 50_000
_DEEP_STACK_BYTES = 1 << 30
_deep_lock = threading.Lock()


def compile_source(source: str, filename: str = "<input>") -> Module:
    """Parse, check and lower a `.tc` module, then verify the IR.

    Raises DiagnosticError carrying every independent error found, in source order.
    """
    return _on_deep_stack(_compile_source, source, filename)


def _on_deep_stack(function: Callable[..., T], *args: object) -> T:
    """`function(*args)` on a thread with a deep stack and recursion limit; its exception, if
    any, is raised here."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = function(*args)
        except BaseException as error:  # noqa: BLE001 - re-raised in the calling thread
            outcome["error"] = error

    with _deep_lock:  # stack_size and the recursion limit are process-wide
        old_limit = sys.getrecursionlimit()
        old_stack = threading.stack_size(_DEEP_STACK_BYTES)
        try:
            sys.setrecursionlimit(max(old_limit, NESTING_LIMIT))
            thread = threading.Thread(target=run, name="tensorc-frontend", daemon=True)
            thread.start()
            thread.join()
        finally:
            threading.stack_size(old_stack)
            sys.setrecursionlimit(old_limit)
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


def _compile_source(source: str, filename: str) -> Module:
    tree = parse_module(source, filename)
    diagnostics = DiagnosticEngine()
    module = lower_module(tree, diagnostics)
    if not diagnostics.has_errors:
        _verify(module, diagnostics)
    if diagnostics.has_errors:
        raise DiagnosticError(_in_source_order(diagnostics.diagnostics))
    return module


def _verify(module: Module, diagnostics: DiagnosticEngine) -> None:
    """The verifier should never fail on what the frontend built; if it does, it is a compiler
    bug, reported as such at the offending op's location."""
    try:
        verify_module(module)
    except VerifyError as error:
        loc = error.op.loc if error.op is not None else None
        diagnostics.error(f"internal compiler error: invalid IR: {error}", loc)


def _in_source_order(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    def position(diagnostic: Diagnostic) -> tuple[str, int, int]:
        loc = diagnostic.loc
        return ("", 1 << 30, 0) if loc is None else (loc.file, loc.line, loc.col)

    return sorted(diagnostics, key=position)
