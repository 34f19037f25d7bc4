"""Kernel proof: ``ip_forward`` / ``ip6_forward`` lower the TTL (hop limit)
before the FORWARD hook, and a packet that arrives with TTL 1 is never seen
by FORWARD or POSTROUTING (ICMP time exceeded is sent instead); PREROUTING
reads the value the packet arrived with. The engine and the packet space
answer alike.

The firewall namespace of :class:`~tests.kernel.netns.TestBed` forwards
crafted UDP datagrams from the peer back out towards the peer (the routed
test ranges); the per-rule counters of ``iptables-save -c`` say which rules
each datagram crossed. Namespaces are deleted after the test; every command
has a timeout.
"""

from __future__ import annotations

import pytest

from ruleanalyzer import evaluate, loads, make_packet
from ruleanalyzer.space import witness
from ruleanalyzer.space.reach import analyze

from . import observe, packets
from .netns import FW_IF, TestBed, missing_prerequisites

pytestmark = pytest.mark.kernel

#: family -> (match module, option prefix, source, forwarded destination, save tool)
FAMILIES = {
    4: ("ttl", "ttl", "198.51.100.7", "10.9.9.9", "iptables"),
    6: ("hl", "hl", "2001:db8:1::7", "2001:db8:1::9", "ip6tables"),
}


def _rules(family: int) -> str:
    module, opt, _, dst, _ = FAMILIES[family]
    d = f"-d {dst}/{32 if family == 4 else 128} -p udp --dport 5000"
    m = f"-m {module} --{opt}-eq"
    return (f"*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n"
            f":OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
            f"-A PREROUTING {d} {m} 64\n-A PREROUTING {d} {m} 1\n"
            f"-A POSTROUTING {d} {m} 64\n-A POSTROUTING {d} {m} 63\nCOMMIT\n"
            f"*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            f"-A FORWARD {d} {m} 64 -j ACCEPT\n-A FORWARD {d} {m} 63 -j DROP\n-A FORWARD {d}\nCOMMIT\n")


def _moved(before: str, after: str) -> set[tuple[str, str, int]]:
    """The rules (table, chain, index) whose counters moved."""
    old = observe.parse_counters(before)
    return {k for k, c in observe.parse_counters(after).items()
            if k[2] is not None and c.packets > (old[k].packets if k in old else 0)}


def _engine_path(result) -> set[tuple[str, str, int]]:
    return {(s.chain.table.name, s.chain.name, s.rule.index) for s in result.trace
            if s.event == "match" and s.rule is not None}


@pytest.mark.parametrize("family", [4, 6])
def test_forward_reads_the_lowered_ttl_and_ttl_1_never_reaches_it(family):
    tools = ("ip", "iptables-restore", "ip6tables-restore", "iptables-save", "ip6tables-save")
    reason = missing_prerequisites(tools)
    if reason:
        pytest.skip(reason)
    _, _, src, dst, tool = FAMILIES[family]
    text = _rules(family)
    ruleset = loads(text, dialect="iptables", name=f"rules.v{family}")
    with TestBed() as bed:
        bed.fw.sysctl("net.ipv4.ip_forward", 1)
        bed.fw.sysctl("net.ipv6.conf.all.forwarding", 1)
        for scope in ("all", FW_IF):  # no ICMP redirects for the hairpin route
            bed.fw.sysctl(f"net.ipv4.conf.{scope}.send_redirects", 0)
        bed.load_iptables(text, family)
        save = [f"{tool}-save", "-c"]
        before = bed.fw.exec(*save).stdout
        seen = {}
        for ident, ttl in enumerate((64, 65, 1, 2), 1):
            spec = packets.Spec(src=src, dst=dst, proto=packets.UDP, sport=40000, dport=5000, ttl=ttl,
                                ident=ident)
            answer = bed.call({"op": "probe", "counters": save, "settle": 1.0,
                               "probes": [{"ident": ident, "frame": bed.frame(packets.ip_packet(spec)).hex()}]})
            after = answer["answers"][0]["counters"]
            seen[ttl] = _moved(before, after)
            before = after

    pre64, pre1 = ("mangle", "PREROUTING", 1), ("mangle", "PREROUTING", 2)
    post64, post63 = ("mangle", "POSTROUTING", 1), ("mangle", "POSTROUTING", 2)
    fwd64, fwd63, fwd_any = ("filter", "FORWARD", 1), ("filter", "FORWARD", 2), ("filter", "FORWARD", 3)
    # The kernel: PREROUTING reads the arrival TTL, FORWARD and POSTROUTING one less.
    assert seen[64] == {pre64, fwd63}, seen[64]
    assert seen[65] == {fwd64, post64}, seen[65]
    assert seen[1] == {pre1}, seen[1]  # never reaches FORWARD nor POSTROUTING
    assert seen[2] == {fwd_any}, seen[2]

    # The engine crosses the same rules, and says why TTL 1 stops.
    for ttl, kernel in seen.items():
        packet = make_packet(src=src, dst=dst, proto="udp", sport=40000, dport=5000, ttl=ttl,
                             hook="forward", iif=FW_IF, oif=FW_IF)
        result = evaluate(ruleset, packet)
        assert _engine_path(result) == kernel, (ttl, result.trace)
        assert result.verdict == ("drop" if ttl in (64, 1) else "accept"), ttl
    expired = evaluate(ruleset, make_packet(src=src, dst=dst, proto="udp", sport=40000, dport=5000,
                                            ttl=1, hook="forward", iif=FW_IF, oif=FW_IF))
    assert expired.decided_by is None and "expires" in expired.routing
    assert not any(s.chain.hook in ("forward", "postrouting") for s in expired.trace)

    # The packet space: each rule's witness is a packet as it arrives.
    reach = analyze(ruleset, "forward", family)
    dead = {(rule.chain.name, rule.index) for rule, _ in reach.unreachable_rules()}
    # POSTROUTING reads 63 only of a packet that arrived with 64, which
    # FORWARD's "63" rule drops (the counters above: never moved).
    assert dead == {("POSTROUTING", 2)}, dead
    for rule in reach.rules():
        sets = reach.rule_sets(rule)
        if rule.chain.name in ("FORWARD", "POSTROUTING") and "--dport" in rule.text and \
                not sets.matched_lower.is_empty():
            w = witness(sets.matched_lower, "forward").replace(iif=FW_IF, oif=FW_IF)
            assert rule in [s.rule for s in evaluate(ruleset, w).trace if s.event == "match"], rule.text
