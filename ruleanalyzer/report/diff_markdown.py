"""A :class:`~ruleanalyzer.diff.DiffReport` as Markdown, for a pull-request comment."""

from __future__ import annotations

from .diff_json import short
from .diff_text import HEADINGS


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(report) -> str:
    out = [f"### Firewall change impact: `{report.old_name}` → `{report.new_name}`", ""]
    if not report.verdicts_changed:
        out.append("No verdict changed.")
    for kind in ("opened", "closed", "unknown"):
        regions = report.of_kind(kind)
        if not regions:
            continue
        out += [f"#### {HEADINGS[kind]}", "",
                "| hook | packets | example | before | after |", "| --- | --- | --- | --- | --- |"]
        for r in regions:
            before = f"{r.old.verdict} by {short(r.old.decided_by)}"
            after = f"{r.new.verdict} by {short(r.new.decided_by)}"
            if r.connection is not None:
                after += f"; {r.connection.text}"
            if not r.confirmed:
                after += f" — ⚠ {r.note}"
            out.append(f"| {r.hook} IPv{r.family} | {_cell(r.text)} | `{_cell(r.witness.describe())}` "
                       f"| {_cell(before)} | {_cell(after)} |")
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
                + (f" (e.g. `{p.witness.describe()}`)" if p.witness else "") for p in report.policy]
        out.append("")
    return "\n".join(out)


def render(reports, out) -> None:
    out.write("\n".join(markdown(r) for r in reports) + "\n")
