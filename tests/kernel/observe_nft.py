"""Read the kernel's answer for nftables packets from ``nft monitor trace``.

A separate table (:data:`TRACE_TABLE`) marks every arriving packet for
tracing at the earliest prerouting priority; it has no verdicts, so it does
not change what the ruleset under test does. The trace names, for every
base chain a packet crosses, the rule (by handle) that gave a verdict or the
policy. Handles are turned into 1-based rule positions with ``nft -a list
ruleset``.
"""

from __future__ import annotations

import re
from .observe import KernelDecision

TRACE_TABLE_NAME = "ra_trace"
TRACE_TABLE = f"""
table inet {TRACE_TABLE_NAME} {{
  chain trace_all {{
    type filter hook prerouting priority -500; policy accept;
    meta nftrace set 1
  }}
}}
"""

_TRACE = re.compile(r"^trace id (\S+) (\S+) (\S+) (\S+) (.*)$")
_HANDLE = re.compile(r"# handle (\d+)")


def rule_positions(listing: str) -> dict[tuple[str, str, str, int], int]:
    """(family, table, chain, handle) → position of the rule in its chain,
    from ``nft -a list ruleset``."""
    positions = {}
    family = table = chain = None
    block = None  # None, "table", "chain" or "other" (a set or map body)
    count = 0
    for line in listing.splitlines():
        text = line.strip()
        if m := re.match(r"^table (\S+) (\S+) \{", text):
            family, table, block = m.group(1), m.group(2), "table"
        elif block == "table" and (m := re.match(r"^chain (\S+) \{", text)):
            chain, block, count = m.group(1), "chain", 0
        elif block == "table" and re.sub(r"\s*# handle \d+$", "", text).endswith("{"):  # set, map, ct helper
            block = "other"
        elif text == "}":
            block = "table" if block in ("chain", "other") else None
        elif block == "chain" and not text.startswith(("type ", "policy ")) and (m := _HANDLE.search(text)):
            count += 1
            positions[(family, table, chain, int(m.group(1)))] = count
    return positions


def packet_ident(line: str, family: int) -> int | None:
    """The probe id a traced packet carries (IPv4 id / IPv6 flow label)."""
    field = r"ip id (\d+)" if family == 4 else r"ip6 flowlabel (\d+)"
    m = re.search(field, line)
    return int(m.group(1)) if m else None


def decisions(trace: str, positions: dict, family: int) -> dict[int, KernelDecision | None]:
    """Probe id (low bits) → the kernel's decision, from a trace dump."""
    # The kernel derives trace ids from the flow hash, so two ICMP packets
    # between the same hosts share one: a packet's events are those from
    # its first (trace table) line to the next packet's. Packets are sent
    # one at a time, so their events never interleave.
    packets_events: list[list[tuple[str, str, str, str]]] = []
    for line in trace.splitlines():
        m = _TRACE.match(line.strip())
        if not m:
            continue
        _, fam, table, chain, rest = m.groups()
        if table == TRACE_TABLE_NAME:
            if rest.startswith("packet:"):
                packets_events.append([(fam, table, chain, rest)])
            continue
        if packets_events:
            packets_events[-1].append((fam, table, chain, rest))
    found = {}
    for events in packets_events:
        ident = packet_ident(events[0][3], family)
        last_accept = None
        decision = None
        for fam, table, chain, rest in events:
            verdict, index = None, None
            if rest.startswith("policy "):
                verdict = rest.split()[1]
            elif rest.startswith("rule ") and (m := re.search(r"\(verdict (\w+)", rest)):
                verdict = m.group(1)
                handle = _HANDLE.search(rest)
                index = positions.get((fam, table, chain, int(handle.group(1)))) if handle else None
            if verdict == "reject":
                verdict = "drop"
            if verdict == "drop":
                decision = KernelDecision("drop", table, chain, index)
                break
            if verdict == "accept":
                last_accept = KernelDecision("accept", table, chain, index)
        found[ident] = decision or last_accept
    return found
