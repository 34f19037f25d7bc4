"""The one error type of the analyzer, and how it is shown.

Every reader turns bad input into :class:`RuleAnalyzerError` with a location;
the CLI prints it once (``file:line:col: message``, the source line, a caret)
and exits 2. Anything else escaping a reader is a bug.
"""

from __future__ import annotations

from .model import Location

import re

#: Longest message shown by :meth:`RuleAnalyzerError.render` before it is cut.
MAX_MESSAGE = 400

#: Characters a terminal, a CI runner or a log viewer would act on rather
#: than show: C0 controls (ESC starts CSI/OSC sequences; CR, LF, VT, FF and
#: the separators split lines), DEL, C1 controls, the Unicode line and
#: paragraph separators and the bidirectional overrides ("Trojan source").
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_CONTROL_KEEP_NEWLINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\x1b": "\\x1b"}


def _shown(m: re.Match) -> str:
    c = m.group()
    return _NAMED.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")


def visible(text: str, keep_newlines: bool = False) -> str:
    """``text`` with every character a terminal or CI runner would act on
    shown escaped (``\x1b``, ``\r``, ``\n`` …): input quoted in a message
    can neither start a new line (a fake ``::error`` annotation), erase or
    retitle the terminal, nor hide text. ``keep_newlines`` keeps ``\n``
    (for output whose own lines are being passed through)."""
    pattern = _CONTROL_KEEP_NEWLINES if keep_newlines else _CONTROL
    return pattern.sub(_shown, text) if pattern.search(text) else text


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
        message = visible(message)
        file = visible(loc.file) if loc is not None and loc.file else (loc.file if loc else "")
        if loc is None:
            head = f"error: {message}"
        elif loc.line:
            head = f"{file}:{loc.line}:{loc.column or 1}: error: {message}"
        else:
            head = f"{file}: error: {message}" + (f" (at {visible(str(loc.path))})" if loc.path else "")
        lines = [head]
        if self.source_line is not None and loc is not None and loc.line:
            shown = self.source_line.rstrip("\r\n")
            if len(shown) > 200:  # a 100 MB line must not be printed back
                start = max(0, (loc.column or 1) - 100)
                shown = shown[start:start + 200]
                caret_col = (loc.column or 1) - start
            else:
                caret_col = loc.column or 1
            # tabs expanded so the caret lines up under them; control characters
            # shown escaped, the caret moving with them
            prefix = shown[:caret_col - 1].expandtabs(8)
            shown = shown.expandtabs(8)
            caret_col = len(visible(prefix)) + 1
            lines.append(f"    {visible(shown)}")
            lines.append("    " + " " * (caret_col - 1) + "^")
        if self.hint:
            lines.append(f"hint: {visible(self.hint)}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


_LONG_NUMBER = re.compile(r"\d{4301,}")


def is_long_number(exc: BaseException) -> bool:
    """Is ``exc`` Python refusing to convert an integer of more than 4,300
    digits (``sys.get_int_max_str_digits``)?"""
    return isinstance(exc, ValueError) and "integer string conversion" in str(exc)


def long_number_error(text: str, name: str) -> RuleAnalyzerError:
    """The located error for a number of more than 4,300 digits in ``text``
    (no firewall field holds one; Python refuses to convert it)."""
    m = _LONG_NUMBER.search(text)
    if m is None:
        return RuleAnalyzerError("a number of more than 4300 digits", Location(name))
    line = text.count("\n", 0, m.start()) + 1
    column = m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1
    return RuleAnalyzerError(f"a number of {len(m.group())} digits (more than 4300 is refused)",
                             Location(name, line, column), source_line=line_of(text, line))


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


def split_lines(text: str) -> list[str]:
    """``text``'s lines as the readers number them: split at ``\n`` only (a
    trailing ``\r`` dropped), never at the other characters
    ``str.splitlines`` takes for line ends (U+2028, ``\x0b``, ``\x0c``,
    ``\x1c``–``\x1e``, ``\x85``, a lone ``\r``), so a code frame shows the
    line a location names."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]
