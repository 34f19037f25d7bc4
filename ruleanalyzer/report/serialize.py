"""Plain-data forms of engine answers: what the JSON and JSONL renderers
write, documented in ``docs/json-schema.md``."""

from __future__ import annotations

from ..engine.connect import ConnectReport, Leg
from ..engine.result import Decision, Result, Step
from ..model import Packet, flags_to_text, ECN_NAMES, PROTOCOL_NAMES


def packet_data(p: Packet) -> dict:
    data = {"hook": p.hook, "src": str(p.src), "dst": str(p.dst),
            "proto": PROTOCOL_NAMES.get(p.proto, p.proto)}
    if p.sport is not None:
        data["sport"] = p.sport
    if p.dport is not None:
        data["dport"] = p.dport
    if p.proto == 6:
        data["flags"] = flags_to_text(p.flags)
    if p.icmp_type is not None:
        data["icmp_type"] = p.icmp_type
        data["icmp_code"] = p.icmp_code
    data["ecn"] = ECN_NAMES[p.ecn]
    data["state"] = p.state
    for key in ("iif", "oif"):
        if getattr(p, key):
            data[key] = getattr(p, key)
    if p.mark:
        data["mark"] = p.mark
    data.update(header_data(p))
    return data


def header_data(p: Packet) -> dict:
    """The IP header fields a rule can test, as the analyzer took them."""
    data = {"ttl": p.ttl, "dscp": p.dscp}
    if p.length is not None:
        data["length"] = p.length
    data["frag"] = p.frag_off if p.frag_off else ("first" if p.mf else "none")
    data["mf"] = bool(p.mf)
    if p.family == 4:
        data.update(df=bool(p.df), ip_id=p.ip_id, ip_options=bool(p.ip_options))
    else:
        data["ext_headers"] = bool(p.ext_headers)
    return data


def decision_data(d: Decision | None) -> dict | None:
    if d is None:
        return None
    chain = d.chain
    table = chain.table
    data = {"table": table.name if table else None, "family": table.family if table else None,
            "chain": chain.name}
    if d.rule is None:
        loc = chain.policy_location
        data.update({"policy": (chain.policy or "accept"), "file": loc.file if loc else None,
                     "line": loc.line if loc else None})
        if chain.policy_text:
            data["policy_text"] = chain.policy_text
    else:
        loc = d.rule.location
        data.update({"file": loc.file, "line": loc.line or None, "rule_index": d.rule.index,
                     "rule": d.rule.text})
        if loc.path:
            data["path"] = loc.path
        if d.rule.ident:
            data["ident"] = d.rule.ident
    return data


def step_data(step: Step) -> dict:
    chain = step.chain
    data = {"event": step.event, "table": chain.table.name if chain.table else None, "chain": chain.name}
    if step.rule is not None:
        data["rule_index"] = step.rule.index
        data["line"] = step.rule.location.line or None
    if step.detail:
        data["detail"] = step.detail
    return data


def result_data(result: Result, packet: Packet | None = None, trace: bool = True) -> dict:
    """One verdict as the JSON contract in DESIGN.md describes it; without
    ``trace`` the same but for the ``trace`` key."""
    packet = packet or result.packet
    data = {"id": packet.id, "verdict": result.verdict, "outcome": result.outcome,
            "state": result.state, "decided_by": decision_data(result.decided_by),
            "packet": packet_data(packet)}
    if trace:
        data["trace"] = [step_data(s) for s in result.trace]
    data["depends_on"] = list(result.depends_on)
    data["notes"] = list(result.notes)
    if result.packet != packet:
        data["packet_out"] = packet_data(result.packet)
    if result.routing:
        data["routing"] = result.routing
    if result.reject_with:
        data["reject_with"] = result.reject_with
    if result.verdict == "unknown" and result.alternatives:
        data["alternatives"] = alternatives_data(result)
    elif result.decider_depends:
        data["decided_by"] = depends_data(result)
        data["alternatives"] = alternatives_data(result)
    return data


def alternatives_data(result: Result) -> list[dict]:
    """Each undecided branch: its verdict, who decides it, and on what."""
    return [{"verdict": r.verdict, "decided_by": decision_data(r.decided_by),
             "assuming": list(r.depends_on)} for r in result.alternatives]


def depends_data(result: Result) -> dict:
    """``decided_by`` of a certain verdict whose deciding rule is not."""
    return {"depends": True, "depends_on": list(result.depends_on),
            "alternatives": alternatives_data(result)}


def leg_data(leg: Leg) -> dict:
    data = {"leg": leg.name, "direction": leg.direction, "verdict": leg.verdict,
            "outcome": leg.summary, "packet": packet_data(leg.packet)}
    received = leg.received
    if received is not None and received != leg.packet:
        # what the peer gets after the rewrites on the way (ECN target, DSCP, NAT, marks)
        data["received"] = packet_data(received)
    if leg.result is not None:
        data["decided_by"] = decision_data(leg.result.decided_by)
        if leg.result.decider_depends:
            data["decided_by"] = depends_data(leg.result)
        data["state"] = leg.result.state
        data["depends_on"] = list(leg.result.depends_on)
    if leg.retry is not None:
        data["retransmission"] = {"verdict": leg.retry.verdict,
                                  "decided_by": decision_data(leg.retry.decided_by)}
    return data


def connect_data(report: ConnectReport) -> dict:
    passes = report.passes
    return {
        "client": report.client, "server": report.server, "dport": report.dport,
        "hook": report.hook,
        "passes": passes,
        "notes": list(report.notes),
        "variants": [{"ecn": v.ecn, "passes": v.passes, "ecn_negotiated": v.ecn_negotiated,
                      "ecn_negotiated_why": v.ecn_why,
                      "first_failure": v.first_failure.name if v.first_failure else None,
                      "explanation": line,
                      "legs": [leg_data(l) for l in v.legs]}
                     for v, line in zip(report.variants, report.explain())],
    }
