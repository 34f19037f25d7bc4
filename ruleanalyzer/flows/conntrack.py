"""``conntrack -L`` output (and ``/proc/net/nf_conntrack``) as flows.

One connection per line::

    tcp      6 431999 ESTABLISHED src=10.0.0.2 dst=10.0.0.1 sport=51234 dport=22 \
        src=10.0.0.1 dst=10.0.0.2 sport=22 dport=51234 [ASSURED] mark=0 use=1
    ipv4     2 udp      17 29 src=192.0.2.5 dst=198.51.100.53 sport=5353 dport=53 [UNREPLIED] ...

The first ``src=``/``dst=``/ports (or ICMP ``type=``/``code=``) are the
original direction: the packet that opened the connection, asked as a new
connection (the reply tuple only says what NAT did). conntrack's own
summary line (``conntrack v1.4.6 (conntrack-tools): 3 flow entries have been
shown.``) is skipped.
"""

from __future__ import annotations

import re

from ..errors import RuleAnalyzerError
from ..model import PROTOCOLS, Location

_HEAD = re.compile(r"(?:(?:ipv4|ipv6)\s+\d+\s+)?([a-z0-9-]+)\s+(\d+)\s+(?:\d+\s+)?")
_SUMMARY = re.compile(r"conntrack v[\d.]+ \(conntrack-tools\)")
#: ``(key, value)`` of each white-space separated word with a ``=``, as
#: ``word.partition("=")`` cuts it.
_pairs = re.compile(r"(?<!\S)([^\s=]*)=(\S*)").findall


def looks_like(line: str) -> bool:
    return bool(_HEAD.match(line) and " src=" in line and " dst=" in line) or bool(_SUMMARY.match(line))


def parse(text: str, name: str) -> list:
    from . import Flow

    flows = []
    for number, fields, (packets, size) in entries(text, name):
        flows.append(Flow(tuple(sorted(fields.items())), Location(name, number, 1),
                          packets=int(packets) if packets and packets.isdigit() else None,
                          bytes=int(size) if size and size.isdigit() else None))
    return flows


def entries(text: str, name: str) -> list:
    """``(line number, packet fields, (packets, bytes))`` of every entry
    (the fields a new dict; the original direction's counters as written,
    None without accounting)."""
    out = []
    append = out.append
    head_match = _HEAD.match
    summary = _SUMMARY.match
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped[0] == "#" or summary(stripped):
            continue
        head = head_match(stripped)
        if head is None:
            raise RuleAnalyzerError("not a conntrack entry (expected 'PROTO NUMBER TIMEOUT ... src=... dst=...')",
                                    Location(name, number, 1), source_line=line)
        try:
            proto = int(head.group(2))
        except ValueError:  # pragma: no cover - the pattern has digits only
            proto = PROTOCOLS.get(head.group(1), 0)
        rest = stripped[head.end():]
        # the words before the second word "src=…" (the reply tuple's), when
        # no key repeats among them: what the loop below reads, at C speed
        cut = rest.find(" src=", rest.find("src=") + 1)
        pairs = _pairs(rest, 0, cut) if cut > 0 else ()
        original = dict(pairs)
        if len(original) != len(pairs) or "src" not in original:
            original = {}
            for word in rest.split():
                key, eq, value = word.partition("=")
                if not eq:
                    continue  # a TCP state (ESTABLISHED) or a flag ([ASSURED])
                if key in original:
                    break  # the reply tuple begins
                original[key] = value
        if "src" not in original or "dst" not in original:
            column = line.find(stripped) + head.end() + 1
            raise RuleAnalyzerError("a conntrack entry needs src= and dst=", Location(name, number, column),
                                    source_line=line)
        fields = {"src": original["src"], "dst": original["dst"], "proto": proto, "state": "new"}
        if "dport" in original:
            fields["dport"] = original["dport"]
        if "sport" in original:
            fields["sport"] = original["sport"]
        if proto in (1, 58):
            if "type" in original:
                fields["icmp_type"] = original["type"]
            if "code" in original:
                fields["icmp_code"] = original["code"]
        mark = original.get("mark")
        if mark is not None and mark not in ("0", ""):
            fields["mark"] = mark
        append((number, fields, (original.get("packets"), original.get("bytes"))))
    return out
