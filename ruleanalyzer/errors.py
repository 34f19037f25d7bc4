"""The one error type of the analyzer, and how it is shown.

Every reader turns bad input into :class:`RuleAnalyzerError` with a location;
the CLI prints it once (``file:line:col: message``, the source line, a caret)
and exits 2. Anything else escaping a reader is a bug.
"""

from __future__ import annotations

from .model import Location

#: Longest message shown by :meth:`RuleAnalyzerError.render` before it is cut.
MAX_MESSAGE = 400


class RuleAnalyzerError(Exception):
    """Bad input (or an exceeded limit), with where it is and what to do."""

    def __init__(self, message: str, location: Location | None = None, *,
                 source_line: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.location = location
        self.source_line = source_line
        self.hint = hint

    def render(self) -> str:
        """``file:line:col: error: message`` + the line + a caret + the hint."""
        loc = self.location
        message = self.message
        if len(message) > MAX_MESSAGE:  # a message quoting a 1 MB word stays one readable line
            message = f"{message[:MAX_MESSAGE]}… ({len(message)} characters)"
        if loc is None:
            head = f"error: {message}"
        elif loc.line:
            head = f"{loc.file}:{loc.line}:{loc.column or 1}: error: {message}"
        else:
            head = f"{loc.file}: error: {message}" + (f" (at {loc.path})" if loc.path else "")
        lines = [head]
        if self.source_line is not None and loc is not None and loc.line:
            shown = self.source_line.rstrip("\r\n")
            if len(shown) > 200:  # a 100 MB line must not be printed back
                start = max(0, (loc.column or 1) - 100)
                shown = shown[start:start + 200]
                caret_col = (loc.column or 1) - start
            else:
                caret_col = loc.column or 1
            # tabs expanded so the caret lines up under them
            caret_col = len(shown[:caret_col - 1].expandtabs(8)) + 1
            shown = shown.expandtabs(8)
            lines.append(f"    {shown}")
            lines.append("    " + " " * (caret_col - 1) + "^")
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


def line_of(text: str, line: int) -> str | None:
    """The 1-based ``line`` of ``text`` (for error rendering), if it exists."""
    if line < 1:
        return None
    start = 0
    for _ in range(line - 1):
        start = text.find("\n", start)
        if start < 0:
            return None
        start += 1
    end = text.find("\n", start)
    return text[start:] if end < 0 else text[start:end]
