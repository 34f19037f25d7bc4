"""Findings as GitHub Actions workflow commands: each becomes an annotation
on the file and line of the rule (``::error file=…,line=…,col=…,title=…::msg``)."""

from __future__ import annotations

from typing import Callable

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


#: GitHub shows at most this many annotations of each level per step.
SHOWN_PER_LEVEL = 10


def render(result, out, summary_path: str | None = None) -> None:
    """Every finding as an annotation. GitHub shows only the first
    :data:`SHOWN_PER_LEVEL` of each level of a step: when there are more,
    a notice says so, and the full list goes to the job summary
    (``$GITHUB_STEP_SUMMARY``, markdown) when there is one."""
    lines = [annotation(f) for f in result.findings]
    write_limited(lines, out, lambda: summary_markdown(result), "ruleanalyzer audit", summary_path)


def write_limited(lines: list[str], out, summary: Callable[[], str], command: str,
                  summary_path: str | None = None) -> None:
    """Write annotation ``lines``; when a level has more than GitHub shows,
    say so and append ``summary()`` (markdown) to the job summary."""
    import os

    out.writelines(line + "\n" for line in lines)
    counts: dict[str, int] = {}
    for line in lines:
        level = line[2:].split(" ", 1)[0].split("::", 1)[0]
        counts[level] = counts.get(level, 0) + 1
    over = {c: n for c, n in counts.items() if n > SHOWN_PER_LEVEL}
    if not over:
        return
    summary_path = summary_path or os.environ.get("GITHUB_STEP_SUMMARY")
    told = ", ".join(f"{n} {c}s" for c, n in over.items())
    where = "the job summary has them all" if summary_path else \
        f"run `{command}` (or --format sarif) for them all"
    out.write(f"::notice title=ruleanalyzer::GitHub shows {SHOWN_PER_LEVEL} annotations per level; "
              f"there are {told}: {where}\n")
    if summary_path:
        with open(summary_path, "a", encoding="utf-8") as handle:
            handle.write(summary())


def summary_markdown(result) -> str:
    """All findings as a markdown table for the job summary."""
    rows = ["## ruleanalyzer: " + f"{len(result.findings)} findings", "",
            "| severity | code | where | message |", "| --- | --- | --- | --- |"]
    for f in result.findings:
        w = f.where
        place = f"{w.file}:{w.line}" if w and w.file and w.line else (w.file if w and w.file else "")
        cells = [f.severity, f"{f.code} {f.name}", place, f.message]
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(rows) + "\n\n"


def _cell(text: str) -> str:
    """One markdown table cell: pipes, newlines and markup neutralised."""
    text = " ".join(str(text).split())
    for ch in "\\|`*_[]<>":
        text = text.replace(ch, "\\" + ch)
    return text
