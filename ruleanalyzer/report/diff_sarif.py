"""A :class:`~ruleanalyzer.diff.DiffReport` for CI: SARIF 2.1.0 and GitHub
annotations, reusing the audit renderers' locations and escaping.

Each verdict change is a result on the rule responsible in the new version
(the old one when the new verdict comes from a policy that did not move),
with ruleId ``diff-opened`` / ``diff-closed`` / ``diff-unknown``; failing
policy assertions are ``policy``; introduced findings keep their codes."""

from __future__ import annotations

from .. import __version__
from ..checks import registry
from .diff_json import responsible, short
from .github import _escape_data, _escape_property, annotation
from .sarif import INFORMATION_URI, SARIF_SCHEMA, SARIF_VERSION, _location, _result, rule_descriptor
from .serialize import packet_data

DIFF_RULES = {
    "diff-opened": ("warning", "Traffic that was dropped is now accepted."),
    "diff-closed": ("warning", "Traffic that was accepted is now dropped."),
    "diff-unknown": ("note", "A verdict changed to or from one that depends on unknowns."),
    "policy": ("error", "A policy assertion from .ruleanalyzer.yaml does not hold."),
}


def _message(r) -> str:
    text = (f"{r.hook} IPv{r.family}: {r.text} — was {r.was} ({short(r.old.decided_by)}), "
            f"now {r.now} ({short(r.new.decided_by)}); e.g. {r.witness.describe()}")
    if r.connection is not None:
        text += f"; {r.connection.text}"
    if not r.confirmed:
        text += f"; {r.note}"
    return text


def _where(r):
    return responsible(r.new.decided_by) or responsible(r.old.decided_by)


def sarif_data(reports) -> dict:
    checks = list(registry().values())
    index = {cls.code: i for i, cls in enumerate(checks)}
    rules = [rule_descriptor(c) for c in checks]
    for rid, (level, text) in DIFF_RULES.items():
        index[rid] = len(rules)
        rules.append({"id": rid, "name": rid, "shortDescription": {"text": text},
                      "defaultConfiguration": {"level": level}})
    results = []
    for report in reports:
        for r in report.regions:
            rid = f"diff-{r.kind}"
            loc = _location(_where(r)) if _where(r) else None
            results.append({"ruleId": rid, "ruleIndex": index[rid], "level": DIFF_RULES[rid][0],
                            "message": {"text": _message(r)}, "locations": [loc] if loc else [],
                            "properties": {"witness": packet_data(r.witness)}})
        for p in report.policy:
            results.append({"ruleId": "policy", "ruleIndex": index["policy"], "level": "error",
                            "message": {"text": str(p)}, "locations": []})
        if report.findings is not None:
            results += [_result(f, index) for f in report.findings.introduced]
    run = {"tool": {"driver": {"name": "ruleanalyzer", "version": __version__,
                               "informationUri": INFORMATION_URI, "rules": rules}},
           "results": results, "columnKind": "unicodeCodePoints"}
    return {"version": SARIF_VERSION, "$schema": SARIF_SCHEMA, "runs": [run]}


def github_lines(reports) -> list[str]:
    out = []
    for report in reports:
        for r in report.regions:
            w = _where(r)
            props = []
            if w and w.file:
                props.append(f"file={_escape_property(w.file)}")
                if w.line:
                    props.append(f"line={w.line}")
            props.append(f"title={_escape_property(f'diff: {r.kind}')}")
            level = "warning" if r.kind != "unknown" else "notice"
            out.append(f"::{level} {','.join(props)}::{_escape_data(_message(r))}")
        for p in report.policy:
            out.append(f"::error title=policy::{_escape_data(str(p))}")
        if report.findings is not None:
            out += [annotation(f) for f in report.findings.introduced]
    return out
