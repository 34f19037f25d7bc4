"""Findings as GitHub Actions workflow commands: each becomes an annotation
on the file and line of the rule (``::error file=…,line=…,col=…,title=…::msg``)."""

from __future__ import annotations

from ..checks.base import Finding
from ..errors import visible

#: Our severities → GitHub annotation commands.
COMMANDS = {"error": "error", "warning": "warning", "info": "notice"}


def _escape_data(text: str) -> str:
    # other control characters (ESC of colour and OSC sequences, the
    # separators a runner may split lines at) shown escaped first
    return visible(text, keep_newlines=True).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(f: Finding) -> str:
    props = []
    w = f.where
    if w and w.file:
        props.append(f"file={_escape_property(w.file)}")
        if w.line:
            props.append(f"line={w.line}")
            props.append(f"col={max(w.column, 1)}")
    props.append(f"title={_escape_property(f'{f.code} {f.name}')}")
    message = f.message
    if f.witness is not None:
        message += f"\nwitness: {f.witness.describe()}"
    if f.fix:
        message += f"\nfix: {f.fix}"
    return f"::{COMMANDS[f.severity]} {','.join(props)}::{_escape_data(message)}"


def render(result, out) -> None:
    for f in result.findings:
        out.write(annotation(f) + "\n")
