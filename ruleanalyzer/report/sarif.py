"""Findings as SARIF 2.1.0 (the format GitHub code scanning and most CI
dashboards read). Rule metadata renders from the checks' own fields, the
same ones ``ruleanalyzer explain`` prints."""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import quote

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
#: Where each check's page is (docs/checks.md, one heading per check).
HELP_URI = INFORMATION_URI + "/blob/main/docs/checks.md#{anchor}"


def help_uri(cls) -> str:
    """The check's section of docs/checks.md (GitHub's heading anchor)."""
    return HELP_URI.format(anchor=f"{cls.name}-{cls.code.lower()}")


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
        "helpUri": help_uri(cls),
        "defaultConfiguration": config,
        "properties": {"tags": [cls.code[:3] + "xx"], "precision": "high"},
    }


#: The base that artifact URIs are relative to (the repository root).
SRCROOT = "SRCROOT"


def source_root() -> Path:
    """The repository root (git's top level) of the working directory, or
    the working directory outside a repository."""
    here = Path.cwd().resolve()
    for directory in (here, *here.parents):
        if (directory / ".git").exists():
            return directory
    return here


def artifact_location(path: str, root: Path | None = None) -> dict:
    """``{"uri", "uriBaseId"}``: ``path`` percent-encoded and relative to
    the repository root when it lies inside it (what code scanning needs to
    show the file), else an absolute ``file:`` URI; ``<stdin>`` stays a
    relative name."""
    root = root or source_root()
    p = Path(path)
    absolute = p if p.is_absolute() else (Path.cwd() / p)
    try:
        rel = absolute.resolve().relative_to(root) if not path.startswith("<") else None
    except (ValueError, OSError):
        rel = None
    if rel is not None:
        return {"uri": quote(rel.as_posix()), "uriBaseId": SRCROOT}
    if path.startswith("<"):
        return {"uri": quote(path)}
    return {"uri": absolute.as_uri()}


def original_uri_base_ids(root: Path | None = None) -> dict:
    return {SRCROOT: {"uri": (root or source_root()).as_uri() + "/"}}


def fingerprint(f: Finding) -> str:
    """A stable fingerprint of a finding: its code, file, chain and rule text
    — not its line, so the alert stays one alert when lines move."""
    w = f.where
    parts = [f.code]
    if w is not None:
        parts += [Path(w.file).name if w.file else "", w.table or "", w.chain or "",
                  " ".join((w.text or "").split()), w.path or ""]
        if not w.text and not w.path:
            parts.append(f.message)
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def _location(w: Where, note: str | None = None, snippets: bool = False) -> dict | None:
    """A SARIF location; the rule's text goes in as a ``snippet`` only when
    ``snippets`` (SARIF is uploaded to code scanning: the text of a file a
    pull request made a link to somewhere else must not travel with it)."""
    if not w.file:
        return None
    physical = {"artifactLocation": artifact_location(w.file)}
    # every result has a region: a finding about a whole file points at its first line
    physical["region"] = {"startLine": max(w.line or 1, 1), "startColumn": max(w.column or 1, 1)}
    if w.line and w.text and snippets:
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
        "originalUriBaseIds": original_uri_base_ids(),
    }
    return {"version": SARIF_VERSION, "$schema": SARIF_SCHEMA, "runs": [run]}


def _result(f: Finding, index: dict[str, int], snippets: bool = False) -> dict:
    out: dict = {"ruleId": f.code, "ruleIndex": index[f.code], "level": LEVELS[f.severity],
                 "message": {"text": f.message}}
    # One cause, several places (Finding.also): every place is a location.
    locs = [_location(w, snippets=snippets) for w in (f.where, *f.also) if w is not None]
    out["locations"] = [loc for loc in locs if loc]
    out["partialFingerprints"] = {"ruleanalyzerFinding/v1": fingerprint(f)}
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
