"""A :class:`~ruleanalyzer.diff.DiffReport` as plain data (the JSON form;
SARIF, GitHub and Markdown read the same fields)."""

from __future__ import annotations

from ..checks.base import Where
from ..engine.result import Decision
from .serialize import decision_data, packet_data


def responsible(decision: Decision | None) -> Where | None:
    """Where the deciding rule (or policy) was written."""
    if decision is None:
        return None
    if decision.rule is not None:
        return Where.of_rule(decision.rule)
    return Where.of_chain(decision.chain)


def short(decision: Decision | None) -> str:
    """``filter INPUT rule 3 (line 12)`` / ``filter INPUT policy DROP`` / ``nothing``."""
    w = responsible(decision)
    return w.describe() if w else "no rule"


def verdict_text(result) -> str:
    """``accept by filter INPUT rule 3 (line 12)``; a packet routing
    dropped, ``drop by routing (…why…)``."""
    if result.decided_by is None and result.routing:
        return f"{result.verdict} by routing ({result.routing})"
    return f"{result.verdict} by {short(result.decided_by)}"


#: Region kinds in the order reports show them.
KIND_ORDER = ("opened", "closed", "unknown", "rewritten")


def _outcome(result, arrival) -> str:
    """``accept by filter FORWARD rule 2 (line 13), as tcp … -> 10.0.0.5:8080``
    (the packet as it left, where the version rewrote it)."""
    text = verdict_text(result)
    if result.verdict == "unknown" and result.depends_on:
        text = f"unknown, {'; '.join(result.depends_on)}"
    out = result.packet
    if out is None:
        return text
    if (out.src, out.dst, out.sport, out.dport) != (arrival.src, arrival.dst, arrival.sport, arrival.dport):
        text += f", as {out.describe()}"
    if out.mark != arrival.mark:
        text += f", mark {out.mark:#x}"
    return text


def arrival_parts(r) -> tuple[str, str, str]:
    """A ``rewritten`` region's arriving packet and its fate before and after."""
    a = r.arrival
    extra = (f", state {a.state}" if a.state and a.state != "new" else "") + \
        (f", mark {a.mark:#x}" if a.mark else "")
    return (f"arriving as {a.describe()}{extra}", _outcome(r.arrival_old, a),
            _outcome(r.arrival_new, a))


def arrival_lines(r) -> list[str]:
    """:func:`arrival_parts` as lines; without an arriving packet, the
    region's own (rewritten) packet."""
    if r.arrival is None:
        return [f"e.g. {r.witness.describe()} (as rewritten; no arriving packet found that "
                "becomes one)"]
    packet, before, after = arrival_parts(r)
    return [packet, f"before: {before}", f"after:  {after}"]


def region_data(r) -> dict:
    data = {"kind": r.kind, "was": r.was, "now": r.now, "hook": r.hook, "family": r.family,
            "region": r.text, "witness": packet_data(r.witness),
            "old": {"verdict": r.old.verdict, "decided_by": decision_data(r.old.decided_by)},
            "new": {"verdict": r.new.verdict, "decided_by": decision_data(r.new.decided_by)},
            "confirmed": r.confirmed}
    if r.note:
        data["note"] = r.note
    if r.arrival is not None:
        data["arrival"] = {"packet": packet_data(r.arrival),
                           "old": {"verdict": r.arrival_old.verdict,
                                   "decided_by": decision_data(r.arrival_old.decided_by),
                                   "packet": packet_data(r.arrival_old.packet)},
                           "new": {"verdict": r.arrival_new.verdict,
                                   "decided_by": decision_data(r.arrival_new.decided_by),
                                   "packet": packet_data(r.arrival_new.packet)}}
    if r.connection is not None:
        c = r.connection
        data["connection"] = {"client": c.client, "server": c.server, "dport": c.dport,
                              "old_passes": c.old_passes, "new_passes": c.new_passes,
                              "old": c.old_explanation, "new": c.new_explanation}
    return data


def finding_data(f) -> dict:
    w = f.where
    return {"code": f.code, "name": f.name, "severity": f.severity, "message": f.message,
            "file": w.file if w else None, "line": (w.line or None) if w else None,
            "rule": w.text if w else None}


def policy_data(p) -> dict:
    data = {"assertion": p.assertion.describe(), "kind": p.assertion.kind, "message": p.message}
    if p.witness is not None:
        data["witness"] = packet_data(p.witness)
    if p.result is not None:
        data["verdict"] = p.result.verdict
        data["decided_by"] = decision_data(p.result.decided_by)
    return data


def diff_data(report) -> dict:
    counts = {k: len(report.of_kind(k)) for k in KIND_ORDER}
    data = {"old": report.old_name, "new": report.new_name, "hooks": list(report.hooks),
            "verdicts_changed": report.verdicts_changed, "counts": counts,
            "scope": report.scope, "changed_rules": report.changed_rules,
            "host_changed": report.host_changed,
            "seconds": round(report.seconds, 3),
            "regions": [region_data(r) for r in report.regions],
            "inconsistencies": len(report.inconsistencies),
            "policy_failures": [policy_data(p) for p in report.policy]}
    if report.findings is not None:
        data["findings"] = {"introduced": [finding_data(f) for f in report.findings.introduced],
                            "resolved": [finding_data(f) for f in report.findings.resolved]}
        if report.findings.error:
            data["findings"]["error"] = report.findings.error
    if report.flows is not None:
        from .flows import data as flow_data

        data["flows"] = flow_data(report.flows)
    return data
