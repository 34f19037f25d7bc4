"""A :class:`~ruleanalyzer.diff.DiffReport` as Markdown, for a pull-request comment."""

from __future__ import annotations

import html
import re

from ..errors import visible
from .diff_json import KIND_ORDER, arrival_parts, verdict_text
from .diff_text import HEADINGS


_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()#+\-.!|~])")


def _cell(text: str) -> str:
    """Text from the inputs made inert for GitHub markdown: control
    characters shown escaped, HTML (``</details>``, ``<img>``) as text,
    markdown punctuation (links, images, emphasis, table pipes) escaped,
    ``@mentions`` broken by a zero-width space."""
    text = html.escape(visible(str(text)), quote=False)
    return _PUNCTUATION.sub(r"\\\1", text).replace("@", "@\u200b")


def _code(text: str, in_table: bool = True) -> str:
    """``text`` as a code span (shown literally: no HTML, links or
    mentions), its backticks fenced by a longer run, its pipes escaped in a
    table cell (GFM splits cells at them even in code)."""
    text = visible(str(text))
    if in_table:
        text = text.replace("|", "\\|")
    fence = "`" * (max((len(m) for m in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def markdown(report) -> str:
    out = [f"### Firewall change impact: {_code(report.old_name, False)} → {_code(report.new_name, False)}", ""]
    if not report.verdicts_changed:
        out.append("No verdict changed.")
    for kind in KIND_ORDER:
        regions = report.of_kind(kind)
        if not regions:
            continue
        out += [f"#### {HEADINGS[kind]}", "",
                "| hook | packets | example | before | after |", "| --- | --- | --- | --- | --- |"]
        for r in regions:
            before, after = verdict_text(r.old), verdict_text(r.new)
            example = r.witness.describe()
            if r.arrival is not None:
                example, before, after = arrival_parts(r)
            if r.connection is not None:
                after += f"; {r.connection.text}"
            if not r.confirmed:
                after += f" — ⚠ {r.note}"
            out.append(f"| {r.hook} IPv{r.family} | {_code(r.text)} | {_code(example)} "
                       f"| {_code(before)} | {_code(after)} |")
        out.append("")
    f = report.findings
    if f is not None and (f.introduced or f.resolved):
        out += ["#### Audit findings", ""]
        out += [f"- introduced **{x.code}** {_cell(x.message)}" for x in f.introduced]
        out += [f"- resolved ~~{x.code}~~ {_cell(x.message)}" for x in f.resolved]
        out.append("")
    if report.policy:
        out += ["#### Policy assertions failing", ""]
        out += [f"- **{_cell(p.assertion.describe())}**: {_cell(p.message)}"
                + (f" (e.g. {_code(p.witness.describe(), False)})" if p.witness else "") for p in report.policy]
        out.append("")
    return "\n".join(out)


def render(reports, out) -> None:
    out.write("\n".join(markdown(r) for r in reports) + "\n")
