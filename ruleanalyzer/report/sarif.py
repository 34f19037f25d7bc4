"""Findings as SARIF 2.1.0 (the format GitHub code scanning and most CI
dashboards read). Rule metadata renders from the checks' own fields, the
same ones ``ruleanalyzer explain`` prints."""

from __future__ import annotations

from pathlib import Path

from .. import __version__
from ..checks import registry
from ..checks.base import Finding, Where
from ..checks.docs import explain_markdown
from .serialize import packet_data

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
#: Our severities → SARIF levels.
LEVELS = {"error": "error", "warning": "warning", "info": "note"}
INFORMATION_URI = "https://github.com/ruleanalyzer/ruleanalyzer"


def rule_descriptor(cls) -> dict:
    config: dict = {"level": LEVELS[cls.severity]}
    if cls.opt_in:
        config["enabled"] = False  # runs only when selected by name
    return {
        "id": cls.code,
        "name": cls.name,
        "shortDescription": {"text": cls.summary},
        "fullDescription": {"text": cls.rationale},
        "help": {"text": cls.rationale, "markdown": explain_markdown(cls)},
        "defaultConfiguration": config,
        "properties": {"tags": [cls.code[:3] + "xx"], "precision": "high"},
    }


def _uri(path: str) -> str:
    p = Path(path)
    return p.as_posix() if not p.is_absolute() else p.as_uri()


def _location(w: Where, note: str | None = None, snippets: bool = False) -> dict | None:
    """A SARIF location; the rule's text goes in as a ``snippet`` only when
    ``snippets`` (SARIF is uploaded to code scanning: the text of a file a
    pull request made a link to somewhere else must not travel with it)."""
    if not w.file:
        return None
    physical = {"artifactLocation": {"uri": _uri(w.file)}}
    if w.line:
        physical["region"] = {"startLine": w.line, "startColumn": max(w.column, 1)}
        if w.text and snippets:
            physical["region"]["snippet"] = {"text": w.text}
    loc: dict = {"physicalLocation": physical}
    logical = " ".join(x for x in (w.table, w.chain) if x)
    if logical or w.path:
        name = logical + (f" rule {w.index}" if w.index else "")
        loc["logicalLocations"] = [{"fullyQualifiedName": (w.path or name).strip() or w.file}]
    if note:
        loc["message"] = {"text": note}
    return loc


def sarif_data(result, snippets: bool = False) -> dict:
    """A SARIF log with one run for an :class:`~ruleanalyzer.audit.AuditResult`;
    rule text as region snippets only when ``snippets``."""
    checks = list(registry().values())
    index = {cls.code: i for i, cls in enumerate(checks)}
    results = []
    for f in result.findings:
        results.append(_result(f, index, snippets))
    run = {
        "tool": {"driver": {"name": "ruleanalyzer", "version": __version__,
                            "informationUri": INFORMATION_URI,
                            "rules": [rule_descriptor(c) for c in checks]}},
        "results": results,
        "columnKind": "unicodeCodePoints",
    }
    return {"version": SARIF_VERSION, "$schema": SARIF_SCHEMA, "runs": [run]}


def _result(f: Finding, index: dict[str, int], snippets: bool = False) -> dict:
    out: dict = {"ruleId": f.code, "ruleIndex": index[f.code], "level": LEVELS[f.severity],
                 "message": {"text": f.message}}
    # One cause, several places (Finding.also): every place is a location.
    locs = [_location(w, snippets=snippets) for w in (f.where, *f.also) if w is not None]
    out["locations"] = [loc for loc in locs if loc]
    related = [_location(r.where, r.note, snippets) for r in f.related]
    related = [r for r in related if r]
    if related:
        for i, r in enumerate(related):
            r["id"] = i
        out["relatedLocations"] = related
    props = {}
    if f.witness is not None:
        props["witness"] = packet_data(f.witness)
    if f.fix:
        props["fix"] = f.fix
    if f.count > 1:
        props["count"] = f.count
    if f.details:
        props["details"] = list(f.details)
    if f.origin is not None:
        props["origin"] = {"tool": f.origin.tool, "text": f.origin.text,
                           "generated": f.origin.generated}
    if props:
        out["properties"] = props
    return out
