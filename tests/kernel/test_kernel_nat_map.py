"""NAT from a map against the kernel: real SYNs to the firewall's address,
translated by ``dnat … map`` rules in prerouting (numgen, a key of the
packet's source, a concatenated key whose elements give address and port, a
port from a map, jhash), forwarded and judged by a forward chain whose rules
count what they see. The rule whose counter moves is the kernel's decision;
the engine's answer for the same packet (``hook="input"``: the packet is
addressed to this host until the DNAT says otherwise) must name it — as its
deciding rule where it is certain, as one of its alternatives where it
depends on the number numgen or jhash gives; and the packet-space walk,
sure of each translated packet's fate, must not contradict the kernel. The
analyzer once read these
NATs as "address unchanged" and answered drop for every one of them.

    pytest tests/kernel/test_kernel_nat_map.py
"""

from __future__ import annotations

import dataclasses
import re

import pytest

from . import packets
from .netns import FW_V4, missing_prerequisites

pytestmark = pytest.mark.kernel

RULESET = """table ip t {
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
    tcp dport 80 dnat to numgen inc mod 2 map { 0 : 10.9.9.9, 1 : 10.9.9.8 }
    tcp dport 81 dnat to ip saddr map { 198.51.100.7 : 10.9.9.7 }
    tcp dport 81 dnat to 10.9.9.6
    tcp dport 82 dnat to 10.9.9.5 : numgen inc mod 2 map { 0 : 8080, 1 : 8081 }
    tcp dport 83 dnat ip to ip saddr . tcp dport map { 198.51.100.7 . 83 : 10.9.9.4 . 8083 }
    tcp dport 83 dnat to 10.9.9.3
    tcp dport 84 dnat to jhash ip saddr mod 2 map { 0 : 10.9.9.2, 1 : 10.9.9.1 }
  }
  chain forwarding {
    type filter hook forward priority filter; policy accept;
    ip daddr { 10.9.9.9, 10.9.9.8 } tcp dport 80 counter accept
    ip daddr 10.9.9.7 counter accept
    ip daddr 10.9.9.6 counter drop
    ip daddr 10.9.9.5 tcp dport 8081 counter accept
    ip daddr 10.9.9.5 counter drop
    ip daddr 10.9.9.4 tcp dport 8083 counter accept
    ip daddr 10.9.9.3 counter drop
    ip daddr 10.9.9.2 counter accept
    ip daddr 10.9.9.1 counter accept
    counter drop
  }
}
"""
#: (source, destination port) of each probe, one new connection each; the
#: numgen ones twice (``inc`` takes each element in turn).
PROBES = [("198.51.100.1", 80), ("198.51.100.2", 80), ("198.51.100.7", 81), ("198.51.100.1", 81),
          ("198.51.100.1", 82), ("198.51.100.2", 82), ("198.51.100.7", 83), ("198.51.100.1", 83),
          ("198.51.100.1", 84), ("198.51.100.2", 84), ("198.51.100.3", 84), ("198.51.100.4", 84)]


def _counts(listing: str) -> list[int]:
    return [int(n) for n in re.findall(r"counter packets (\d+)", listing)]


def test_nat_from_a_map_agrees_with_the_kernel():
    reason = missing_prerequisites(("ip", "nft"))
    if reason:
        pytest.skip(reason)
    from ruleanalyzer import loads
    from ruleanalyzer.engine import evaluate
    from ruleanalyzer.diff import packet_point
    from ruleanalyzer.packets import make_packet
    from ruleanalyzer.space.reach import analyze

    from .netns import TestBed

    argv = ["nft", "list", "chain", "ip", "t", "forwarding"]
    with TestBed() as bed:
        bed.fw.sysctl("net.ipv4.ip_forward", 1)  # the translated packets leave towards the peer
        bed.load_nft(RULESET)
        probes = []
        for k, (src, dport) in enumerate(PROBES):
            spec = packets.Spec(src=src, dst=FW_V4, proto=6, sport=31000 + k, dport=dport, flags=0x02, ident=k)
            probes.append({"ident": k, "frame": bed.frame(packets.ip_packet(spec)).hex()})
        before = _counts(bed.fw.exec(*argv).stdout)
        answers = bed.call({"op": "probe", "probes": probes, "counters": argv})["answers"]
    ruleset = loads(RULESET, dialect="nftables")
    rules = ruleset.tables[0].chains["forwarding"].rules
    assert len(before) == len(rules)
    reach = analyze(ruleset, "forward", 4)
    wrong, seen, sure = [], {}, 0
    for (src, dport), answer in zip(PROBES, answers):
        after = _counts(answer["counters"])
        moved = [i for i, (a, b) in enumerate(zip(before, after)) if a != b]
        before = after
        assert len(moved) == 1, f"{src}:{dport}: the kernel's counters moved at {moved}"
        kernel = rules[moved[0]]
        result = evaluate(loads(RULESET, dialect="nftables"),
                          make_packet(src=src, dst=FW_V4, dport=dport, flags="SYN", state="new", hook="input"))
        ways = [result, *result.alternatives]
        deciders = {w.decided_by.rule.text for w in ways if w.decided_by and w.decided_by.rule}
        seen.setdefault(dport, set()).add(kernel.text)
        certain = result.verdict != "unknown" and result.decided_by is not None
        if kernel.text not in deciders or (certain and result.decided_by.rule.text != kernel.text):
            wrong.append(f"{src}:{dport}: kernel {kernel.text!r}; engine {result.verdict} "
                         f"by {sorted(deciders)} (depends on {result.depends_on})")
        if dport not in (80, 82, 84):  # the map's key is the packet's: the answer is certain
            assert certain, f"{src}:{dport}: {result.verdict}, depends on {result.depends_on}"
        # The walk, on the packet as the forward chain saw it (the way the
        # kernel took: its address and port, the DNAT status): what it is
        # sure of, the kernel did
        way = next(w for w in ways if w.decided_by and w.decided_by.rule.text == kernel.text)
        image = packet_point(reach.space, dataclasses.replace(way.packet, ct_status=frozenset({"dnat"}),
                                                              hook="forward")).node
        verdict = "accept" if "accept" in kernel.text else "drop"
        for fate, other in (("accepted", "drop"), ("dropped", "accept")):
            if getattr(reach, fate).lower.node & image != reach.space.false:
                sure += 1
                if verdict == other:
                    wrong.append(f"{src}:{dport}: the walk says {fate} for certain; the kernel: {kernel.text!r}")
    assert not wrong, "\n".join(wrong)
    assert sure == len(PROBES)  # (the walk is sure of every image here: each translation's fate is)
    # numgen inc took each element in turn: both backends (and for port 82
    # both verdicts) happened, as the engine's alternatives say they may
    assert len(seen[80]) == 1 and len(seen[82]) == 2
