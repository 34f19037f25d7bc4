"""Findings as plain JSON data (schema in ``docs/json-schema.md``, section
"audit")."""

from __future__ import annotations

from .. import __version__
from ..checks.base import Finding, Where
from .serialize import packet_data

#: Bumped when a field changes meaning or disappears (additions keep it).
SCHEMA_VERSION = 1


def where_data(w: Where | None) -> dict | None:
    if w is None:
        return None
    data = {"file": w.file, "line": w.line or None, "column": w.column or None,
            "table": w.table, "family": w.family, "chain": w.chain, "rule_index": w.index,
            "rule": w.text or None}
    if w.path:
        data["path"] = w.path
    if w.ident:
        data["ident"] = w.ident
    return data


def finding_data(f: Finding) -> dict:
    data = {"code": f.code, "name": f.name, "severity": f.severity, "message": f.message,
            "location": where_data(f.where),
            "related": [{**where_data(r.where), "note": r.note} for r in f.related],
            "witness": packet_data(f.witness) if f.witness is not None else None,
            "fix": f.fix, "count": f.count,
            "locations": [where_data(w) for w in (f.where, *f.also) if w is not None]}
    if f.details:
        data["details"] = list(f.details)
    if f.origin is not None:
        data["origin"] = origin_data(f.origin)
    return data


def origin_data(origin) -> dict:
    """Which tool wrote the rule (``generated``: its stock scaffolding)."""
    loc = origin.location
    return {"tool": origin.tool, "text": origin.text or None, "generated": origin.generated,
            "location": str(loc) if loc else None}


def audit_data(result) -> dict:
    """The whole report of an :class:`~ruleanalyzer.audit.AuditResult`."""
    by_severity = {"error": 0, "warning": 0, "info": 0}
    for f in result.findings:
        by_severity[f.severity] = by_severity.get(f.severity, 0) + 1
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "ruleanalyzer", "version": __version__},
        "summary": {"inputs": len(result.inputs), "bad_inputs": len(result.bad_inputs),
                    "rules": result.rule_count, "findings": len(result.findings),
                    "suppressed": len(result.suppressed), "by_code": result.counts(),
                    "by_severity": by_severity, "seconds": round(result.seconds, 3),
                    "generated_hidden": getattr(result, "generated_hidden", 0),
                    "hosts": [list(g) for g in getattr(result, "hosts", ())],
                    "skipped": list(getattr(result, "skipped", ()))},
        "findings": [finding_data(f) for f in result.findings],
        **({"fleet": result.fleet} if getattr(result, "fleet", None) else {}),
    }
