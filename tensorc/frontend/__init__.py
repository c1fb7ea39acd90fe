"""tensorc's frontend: `.tc` source text to a verified module of the `tc` dialect.

    module = compile_source(text, "model.tc")     # raises DiagnosticError with every error

`parse_module` (syntax, `tensorc.frontend.parser`) builds the AST; `lower_module` (semantic
analysis, `tensorc.frontend.sema`) checks it and lowers it to `func`/`tc` ops.
"""

from __future__ import annotations

from tensorc.frontend.parser import parse_module
from tensorc.frontend.sema import lower_module
from tensorc.ir.core import VerifyError
from tensorc.ir.diagnostics import Diagnostic, DiagnosticEngine, DiagnosticError
from tensorc.ir.dialects.func import Module
from tensorc.ir.verifier import verify_module

__all__ = ["compile_source", "lower_module", "parse_module"]


def compile_source(source: str, filename: str = "<input>") -> Module:
    """Parse, check and lower a `.tc` module, then verify the IR.

    Raises DiagnosticError carrying every independent error found, in source order.
    """
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
