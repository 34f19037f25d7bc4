"""``numgen … mod N`` map NATs against the kernel (issue #14/#18 follow-up):
a map covering every value ``numgen`` can take translates every new
connection, so the NAT after it never runs (RA102, as the analyzer says); a
map missing a value lets those connections through to the next rule (no
RA102). Read from the rules' packet counters after real SYNs."""

from __future__ import annotations

import re

import pytest

from . import packets
from .netns import FW_V4, PEER_V4, missing_prerequisites

pytestmark = pytest.mark.kernel

RULESET = """table ip lb {
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
    tcp dport 80 counter dnat to numgen inc mod 2 map { 0 : 10.99.0.1, 1 : 10.99.0.2 }
    tcp dport 80 counter dnat to 10.99.0.3
    tcp dport 81 counter dnat to numgen inc mod 3 offset 1 map { 1 : 10.99.0.1, 2 : 10.99.0.2 }
    tcp dport 81 counter dnat to 10.99.0.3
    tcp dport 82 counter dnat to 10.99.0.4 : numgen random mod 4 map { 0-1 : 8080, 2-3 : 8081 }
    tcp dport 82 counter dnat to 10.99.0.3
  }
}
"""
#: The line of each rule in RULESET, in order.
LINES = [n for n, line in enumerate(RULESET.splitlines(), 1) if "counter" in line]
CONNECTIONS = 6


def test_numgen_map_coverage_agrees_with_the_kernel():
    reason = missing_prerequisites(("ip", "nft"))
    if reason:
        pytest.skip(reason)
    from ruleanalyzer import loads
    from ruleanalyzer.audit import check_ruleset

    from .netns import TestBed

    with TestBed() as bed:
        bed.load_nft(RULESET)
        probes = []
        for port in (80, 81, 82):
            for k in range(CONNECTIONS):  # each SYN a new connection: the nat chain sees each
                ident = port * 100 + k
                spec = packets.Spec(src=PEER_V4, dst=FW_V4, proto=6, sport=30000 + ident, dport=port,
                                    flags=0x02, ident=ident)
                probes.append({"ident": ident, "frame": bed.frame(packets.ip_packet(spec)).hex()})
        bed.call({"op": "probe", "probes": probes, "counters": None})
        listing = bed.fw.exec("nft", "list", "table", "ip", "lb").stdout
    counts = [int(n) for n in re.findall(r"counter packets (\d+)", listing)]
    assert len(counts) == 6 and counts[0] == counts[4] == CONNECTIONS, listing
    never = {LINES[i] for i in (1, 3, 5) if counts[i] == 0}
    assert never == {LINES[1], LINES[5]}, listing  # mod 3 offset 1 has no element for 3
    findings = check_ruleset(loads(RULESET, dialect="nftables"), ["RA102"])
    assert {f.where.line for f in findings if f.code == "RA102"} == never
