"""Compiler diagnostics: collecting errors with source locations and rendering them clang-style.

Every stage (parser, semantic analysis, verifier, passes) reports problems in a program through
a `DiagnosticEngine`, which raises one `DiagnosticError` holding all of them. Rendered, a
diagnostic is (SPEC §1.7)::

    model.tc:3:14: error: unknown name 'foo'
        h = relu(foo @ w1)
                 ^~~

This module depends on nothing but `tensorc.ir.location` and the standard library.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from tensorc.ir.location import Location

Note = tuple[str, Location | None]


@dataclass(slots=True)
class Diagnostic:
    """One message about the program, with optional location and attached notes."""

    message: str
    loc: Location | None
    severity: str = "error"
    notes: list[Note] = field(default_factory=list)

    def render(self, sources: Mapping[str, str] | None = None) -> str:
        """Render with source excerpts taken from `sources` (file name -> text)."""
        return render_diagnostic(self, _source_for(self.loc, sources), sources)

    def header(self) -> str:
        """The first line of the rendering: `FILE:LINE:COL: error: MESSAGE`."""
        return _header(self.severity, self.message, self.loc)


class DiagnosticError(Exception):
    """Raised when a stage found errors in the program; carries every diagnostic it found."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics: list[Diagnostic] = list(diagnostics)
        super().__init__("\n".join(diag.header() for diag in self.diagnostics))

    def __reduce__(self) -> tuple[type[DiagnosticError], tuple[list[Diagnostic]]]:
        return type(self), (self.diagnostics,)

    def render(self, sources: Mapping[str, str] | None = None) -> str:
        """All diagnostics rendered, one after another, with source excerpts from `sources`."""
        return render_diagnostics(self.diagnostics, sources)


class DiagnosticEngine:
    """Collects diagnostics in the order they are reported."""

    def __init__(self) -> None:
        self._diagnostics: list[Diagnostic] = []
        self._last: Diagnostic | None = None

    @property
    def diagnostics(self) -> list[Diagnostic]:
        return list(self._diagnostics)

    @property
    def has_errors(self) -> bool:
        return any(diag.severity == "error" for diag in self._diagnostics)

    def error(self, message: str, loc: Location | None) -> Diagnostic:
        return self.report(Diagnostic(message, loc, "error"))

    def warning(self, message: str, loc: Location | None) -> Diagnostic:
        return self.report(Diagnostic(message, loc, "warning"))

    def note(self, message: str, loc: Location | None = None) -> None:
        """Attach a note to the most recently reported diagnostic (normally an error)."""
        if self._last is None:
            raise ValueError("a note needs an error to attach to")
        if (message, loc) not in self._last.notes:
            self._last.notes.append((message, loc))

    def report(self, diagnostic: Diagnostic) -> Diagnostic:
        """Add a diagnostic; an exact repeat of one already reported is returned, not re-added."""
        known = next((d for d in self._diagnostics if _same_report(d, diagnostic)), None)
        if known is None:
            self._diagnostics.append(diagnostic)
        self._last = known or diagnostic
        return self._last

    def extend(self, diagnostics: Iterable[Diagnostic]) -> None:
        for diagnostic in diagnostics:
            self.report(diagnostic)

    def raise_if_errors(self) -> None:
        """Raise a DiagnosticError with everything reported so far if any of it is an error."""
        if self.has_errors:
            raise DiagnosticError(self._diagnostics)


def render_diagnostic(
    diag: Diagnostic,
    source_text: str | None,
    sources: Mapping[str, str] | None = None,
) -> str:
    """Render one diagnostic and its notes, clang-style.

    `source_text` is the text of the diagnostic's file. A note in another file takes its
    excerpt from `sources` when given; without source text only the header line is written.
    """
    lines = _render_entry(diag.severity, diag.message, diag.loc, source_text)
    for message, loc in diag.notes:
        note_source = source_text if _same_file(loc, diag.loc) else _source_for(loc, sources)
        lines.extend(_render_entry("note", message, loc, note_source))
    return "\n".join(lines)


def render_diagnostics(
    diagnostics: Iterable[Diagnostic], sources: Mapping[str, str] | None = None
) -> str:
    """Render several diagnostics, one after another, excerpts taken from `sources`."""
    return "\n".join(diag.render(sources) for diag in diagnostics)


def _render_entry(
    severity: str, message: str, loc: Location | None, source_text: str | None
) -> list[str]:
    lines = [_header(severity, message, loc)]
    if loc is None or source_text is None:
        return lines
    source_line = _source_line(source_text, loc.line)
    if source_line is None:
        return lines
    lines.append(source_line)
    lines.append(_caret_line(source_line, loc))
    return lines


def _header(severity: str, message: str, loc: Location | None) -> str:
    if loc is None:
        return f"{severity}: {message}"
    return f"{loc}: {severity}: {message}"


def _source_line(source_text: str, line: int) -> str | None:
    """Line `line` (1-based) of the text, without its line ending; None when out of range."""
    lines = source_text.split("\n")
    if line < 1 or line > len(lines):
        return None
    return lines[line - 1].removesuffix("\r")


def _caret_line(source_line: str, loc: Location) -> str:
    start = max(loc.col, 1) - 1
    prefix = source_line[:start]
    indent = "".join("\t" if char == "\t" else " " for char in prefix)
    indent += " " * (start - len(prefix))
    return indent + "^" + "~" * (_span_width(source_line, loc) - 1)


def _span_width(source_line: str, loc: Location) -> int:
    """How many columns of this line the location covers, at least one."""
    if loc.end_line is None or loc.end_col is None or loc.end_line < loc.line:
        return 1
    if loc.end_line == loc.line:
        return max(loc.end_col - loc.col, 1)
    return max(len(source_line) - loc.col + 1, 1)


def _source_for(loc: Location | None, sources: Mapping[str, str] | None) -> str | None:
    if loc is None or sources is None:
        return None
    return sources.get(loc.file)


def _same_file(first: Location | None, second: Location | None) -> bool:
    return first is not None and second is not None and first.file == second.file


def _same_report(first: Diagnostic, second: Diagnostic) -> bool:
    return (
        first.message == second.message
        and first.loc == second.loc
        and first.severity == second.severity
    )
