"""Source locations: where in a `.tc` file an AST node, IR operation or diagnostic comes from.

Lines and columns are 1-based; a column counts characters (a tab is one column). `end_col` is
exclusive, so a one-character token at column 5 has `col=5, end_col=6`. A location without an
end is a point.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

_IR_TEXT_PATTERN = re.compile(r'loc\((?P<file>"(?:[^"\\]|\\.)*"):(?P<line>\d+):(?P<col>\d+)\)')


@dataclass(frozen=True, slots=True)
class Location:
    """A position or span in a source file."""

    file: str
    line: int
    col: int
    end_line: int | None = None
    end_col: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def ir_text(self) -> str:
        """The IR's spelling, `loc("file":line:col)`, with the file name as a JSON string."""
        return f"loc({json.dumps(self.file, ensure_ascii=False)}:{self.line}:{self.col})"

    @classmethod
    def from_ir_text(cls, text: str) -> Location:
        """Parse the text that `ir_text` writes; raises ValueError on anything else."""
        match = _IR_TEXT_PATTERN.fullmatch(text.strip())
        if match is None:
            raise ValueError(f"not a location: {text!r}")
        return cls(json.loads(match["file"]), int(match["line"]), int(match["col"]))

    @classmethod
    def span(cls, start: Location, end: Location) -> Location:
        """The span from the start of `start` to the end of `end` (in `start`'s file)."""
        end_line, end_col = end.end_position()
        return cls(start.file, start.line, start.col, end_line, end_col)

    def end_position(self) -> tuple[int, int]:
        """The exclusive (line, col) end; a point location ends one column after it starts."""
        if self.end_line is None or self.end_col is None:
            return self.line, self.col + 1
        return self.end_line, self.end_col
