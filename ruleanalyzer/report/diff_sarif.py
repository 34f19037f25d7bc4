"""A :class:`~ruleanalyzer.diff.DiffReport` for CI: SARIF 2.1.0 and GitHub
annotations, reusing the audit renderers' locations and escaping.

Each verdict change is a result on the rule responsible in the new version
(the old one when the new verdict comes from a policy that did not move),
with ruleId ``diff-opened`` / ``diff-closed`` / ``diff-unknown`` /
``diff-rewritten``; failing
policy assertions are ``policy``; introduced findings keep their codes."""

from __future__ import annotations

from .. import __version__
from ..checks.base import Where
from ..checks import registry
from .diff_json import arrival_lines, responsible, short
from .github import _escape_data, _escape_property, annotation
from .sarif import (INFORMATION_URI, SARIF_SCHEMA, SARIF_VERSION, _location, _result,
                    original_uri_base_ids, rule_descriptor)
from .serialize import packet_data

DIFF_RULES = {
    "diff-opened": ("warning", "Traffic that was dropped is now accepted."),
    "diff-closed": ("warning", "Traffic that was accepted is now dropped."),
    "diff-unknown": ("note", "A verdict changed to or from one that depends on unknowns."),
    "diff-rewritten": ("note", "Packets are rewritten or routed differently (NAT, marks, the host's "
                               "addresses): one version alone brings them to the hook's verdict."),
    "policy": ("error", "A policy assertion from .ruleanalyzer.yaml does not hold."),
}


def _message(r) -> str:
    text = (f"{r.hook} IPv{r.family}: {r.text} — was {r.was} ({short(r.old.decided_by)}), "
            f"now {r.now} ({short(r.new.decided_by)}); e.g. {r.witness.describe()}")
    if r.kind == "rewritten":
        text += "; " + "; ".join(arrival_lines(r))
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
                      "defaultConfiguration": {"level": level},
                      "helpUri": INFORMATION_URI + "/blob/main/docs/diff.md"})
    results = []
    for report in reports:
        for r in report.regions:
            rid = f"diff-{r.kind}"
            loc = _location(_where(r)) if _where(r) else None
            loc = loc or _location(Where(_file_of(report.new_name)))
            key = f"{rid}\x1f{report.new_name}\x1f{r.hook}\x1f{r.family}\x1f{r.text}"
            results.append({"ruleId": rid, "ruleIndex": index[rid], "level": DIFF_RULES[rid][0],
                            "message": {"text": _message(r)}, "locations": [loc] if loc else [],
                            "partialFingerprints": {"ruleanalyzerDiff/v1": _digest(key)},
                            "properties": {"witness": packet_data(r.witness)}})
        for p in report.policy:
            loc = _location(Where(_file_of(report.new_name)))
            results.append({"ruleId": "policy", "ruleIndex": index["policy"], "level": "error",
                            "message": {"text": str(p)}, "locations": [loc] if loc else [],
                            "partialFingerprints": {"ruleanalyzerDiff/v1": _digest(f"policy\x1f{p}")}})
        if report.findings is not None:
            results += [_result(f, index) for f in report.findings.introduced]
    run = {"tool": {"driver": {"name": "ruleanalyzer", "version": __version__,
                               "informationUri": INFORMATION_URI, "rules": rules}},
           "results": results, "columnKind": "unicodeCodePoints",
           "originalUriBaseIds": original_uri_base_ids()}
    return {"version": SARIF_VERSION, "$schema": SARIF_SCHEMA, "runs": [run]}


def _file_of(side_name: str) -> str:
    """The first file a diff side names (``REV:a,b (note)`` → ``a``)."""
    name = side_name.split(" (", 1)[0]
    if ":" in name and not name.startswith("/"):
        name = name.split(":", 1)[1]
    return name.split(",", 1)[0]


def _digest(key: str) -> str:
    import hashlib

    return hashlib.sha256(key.encode()).hexdigest()[:32]


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
