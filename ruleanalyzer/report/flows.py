"""``diff --flows``: the real flows a change blocks or newly allows, as
text lines and as JSON data (:class:`~ruleanalyzer.flows.FlowReport`)."""

from __future__ import annotations

from .diff_json import short

#: Text shows this many distinct flows per kind; JSON holds all of them.
SHOWN = 20
HEADINGS = {"blocked": "would be BLOCKED", "allowed": "would be newly ALLOWED",
            "unknown": "would change involving unknowns"}


def describe_packet(p) -> str:
    proto = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6"}.get(p.proto, f"proto {p.proto}")
    if p.dport is not None:
        return f"{proto} {p.src}:{p.sport} -> {p.dst}:{p.dport} ({p.hook}, {p.state})"
    return f"{proto} {p.src} -> {p.dst} ({p.hook}, {p.state})"


def _traffic(c) -> str:
    parts = [_n(c.records, "record")]
    if c.packets is not None:
        parts.append(f"{c.packets} packets")
    if c.bytes is not None:
        parts.append(f"{c.bytes} bytes")
    return ", ".join(parts)


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


def lines(report) -> list[str]:
    blocked, allowed = report.records_of("blocked"), report.records_of("allowed")
    out = ["", f"real flows ({report.name}): {_n(report.records, 'record')}, {report.distinct} distinct; "
               f"{_n(blocked, 'record')} would be blocked, {allowed} newly allowed"]
    for kind in ("blocked", "allowed", "unknown"):
        changes = report.of_kind(kind)
        if not changes:
            continue
        out.append(f"  {HEADINGS[kind]}: {len(changes)} distinct flow{'s' if len(changes) != 1 else ''}, "
                   f"{_n(report.records_of(kind), 'record')}")
        for c in changes[:SHOWN]:
            out.append(f"    {describe_packet(c.packet)} × {_traffic(c)} (first at line {c.first.line})")
            out.append(f"      before: {c.old.verdict} by {short(c.old.decided_by)}")
            out.append(f"      after:  {c.new.verdict} by {short(c.new.decided_by)}")
        if len(changes) > SHOWN:
            out.append(f"    … {len(changes) - SHOWN} more (all in --format json)")
    return out


def data(report) -> dict:
    return {
        "file": report.name, "records": report.records, "distinct": report.distinct,
        "blocked_records": report.records_of("blocked"), "allowed_records": report.records_of("allowed"),
        "changes": [{"kind": c.kind, "packet": describe_packet(c.packet), "records": c.records,
                     "packets": c.packets, "bytes": c.bytes, "first_line": c.first.line,
                     "before": {"verdict": c.old.verdict, "decided_by": short(c.old.decided_by)},
                     "after": {"verdict": c.new.verdict, "decided_by": short(c.new.decided_by)}}
                    for c in report.changes],
    }
