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

import re

import pytest

from ruleanalyzer import evaluate, loads, make_packet
from ruleanalyzer.space import witness
from ruleanalyzer.space.reach import analyze

from tests.engine.test_forward_ttl import NFT_SET

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


def _kernel_paths(family: int, text: str, ttls) -> dict[int, set]:
    """Per TTL sent with, the rules whose counters the forwarded datagram moved."""
    tools = ("ip", "iptables-restore", "ip6tables-restore", "iptables-save", "ip6tables-save")
    reason = missing_prerequisites(tools)
    if reason:
        pytest.skip(reason)
    _, _, src, dst, tool = FAMILIES[family]
    with TestBed() as bed:
        bed.fw.sysctl("net.ipv4.ip_forward", 1)
        bed.fw.sysctl("net.ipv6.conf.all.forwarding", 1)
        for scope in ("all", FW_IF):  # no ICMP redirects for the hairpin route
            bed.fw.sysctl(f"net.ipv4.conf.{scope}.send_redirects", 0)
        try:
            bed.load_iptables(text, family)
        except RuntimeError as exc:
            if "TTL" in text or "HL" in text:
                pytest.skip(f"this kernel or iptables has no TTL/HL target: {exc}")
            raise
        save = [f"{tool}-save", "-c"]
        before = bed.fw.exec(*save).stdout
        seen = {}
        for ident, ttl in enumerate(ttls, 1):
            spec = packets.Spec(src=src, dst=dst, proto=packets.UDP, sport=40000, dport=5000, ttl=ttl,
                                ident=ident)
            answer = bed.call({"op": "probe", "counters": save, "settle": 1.0,
                               "probes": [{"ident": ident, "frame": bed.frame(packets.ip_packet(spec)).hex()}]})
            after = answer["answers"][0]["counters"]
            seen[ttl] = _moved(before, after)
            before = after
    return seen


def _engine(ruleset, family: int, ttl: int):
    _, _, src, dst, _ = FAMILIES[family]
    return evaluate(ruleset, make_packet(src=src, dst=dst, proto="udp", sport=40000, dport=5000, ttl=ttl,
                                         hook="forward", iif=FW_IF, oif=FW_IF))


@pytest.mark.parametrize("family", [4, 6])
def test_forward_reads_the_lowered_ttl_and_ttl_1_never_reaches_it(family):
    text = _rules(family)
    ruleset = loads(text, dialect="iptables", name=f"rules.v{family}")
    seen = _kernel_paths(family, text, (64, 65, 1, 2))

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
        result = _engine(ruleset, family, ttl)
        assert _engine_path(result) == kernel, (ttl, result.trace)
        assert result.verdict == ("drop" if ttl in (64, 1) else "accept"), ttl
    expired = _engine(ruleset, family, 1)
    assert expired.decided_by is None and "expires" in expired.routing
    assert not any(s.chain.hook in ("forward", "postrouting") for s in expired.trace)

    # The packet space: each rule's witness is a packet as it arrives.
    reach = analyze(ruleset, "forward", family)
    dead = {(rule.chain.name, rule.index) for rule, _ in reach.unreachable_rules()}
    # POSTROUTING reads 63 only of a packet that arrived with 64, which
    # FORWARD's "63" rule drops (the counters above: never moved).
    assert dead == {post63[1:]}, dead
    for rule in reach.rules():
        sets = reach.rule_sets(rule)
        if rule.chain.name in ("FORWARD", "POSTROUTING") and "--dport" in rule.text and \
                not sets.matched_lower.is_empty():
            w = witness(sets.matched_lower, "forward").replace(iif=FW_IF, oif=FW_IF)
            assert rule in [s.rule for s in evaluate(ruleset, w).trace if s.event == "match"], rule.text


@pytest.mark.parametrize("family", [4, 6])
def test_ttl_raised_in_prerouting_is_what_ip_forward_and_forward_see(family):
    """``-j TTL --ttl-inc 1`` in PREROUTING (a router hiding its hop): a
    datagram sent with TTL 1 is forwarded and FORWARD reads 1; one sent with
    0 still expires."""
    module, opt, _, dst, _ = FAMILIES[family]
    target = "TTL --ttl-inc 1" if family == 4 else "HL --hl-inc 1"
    d = f"-d {dst}/{32 if family == 4 else 128} -p udp --dport 5000"
    text = (f"*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING {d} -j {target}\nCOMMIT\n"
            f"*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD {d} -m {module} --{opt}-eq 1\n"
            f"-A FORWARD {d} -m {module} --{opt}-eq 64\nCOMMIT\n")
    ruleset = loads(text, dialect="iptables", name=f"rules.v{family}")
    seen = _kernel_paths(family, text, (1, 64, 0))
    pre, fwd1, fwd64 = ("mangle", "PREROUTING", 1), ("filter", "FORWARD", 1), ("filter", "FORWARD", 2)
    assert seen == {1: {pre, fwd1}, 64: {pre, fwd64}, 0: {pre}}, seen
    for ttl, kernel in seen.items():
        result = _engine(ruleset, family, ttl)
        assert _engine_path(result) == kernel, (ttl, result.trace)




def test_nft_ttl_set_in_an_inet_table_changes_ipv4_only_and_forward_reads_it_lowered():
    """``ip ttl set 9`` in an inet table carries nft's nfproto ipv4
    dependency: IPv6 datagrams pass the rule untouched; FORWARD reads 8."""
    reason = missing_prerequisites(("ip", "nft"))
    if reason:
        pytest.skip(reason)
    ruleset = loads(NFT_SET, dialect="nftables", name="ra.nft")
    rules = [r for c in ("pre", "fw") for r in next(ch for ch in ruleset.chains() if ch.name == c).rules]
    seen = {}
    with TestBed() as bed:
        bed.fw.sysctl("net.ipv4.ip_forward", 1)
        bed.fw.sysctl("net.ipv6.conf.all.forwarding", 1)
        for scope in ("all", FW_IF):
            bed.fw.sysctl(f"net.ipv4.conf.{scope}.send_redirects", 0)
        bed.load_nft(NFT_SET)
        listing = ["nft", "list", "table", "inet", "ra"]
        before = bed.fw.exec(*listing).stdout
        for ident, family in enumerate((4, 6), 1):
            _, _, src, dst, _ = FAMILIES[family]
            spec = packets.Spec(src=src, dst=dst, proto=packets.UDP, sport=40000, dport=5000, ttl=64, ident=ident)
            answer = bed.call({"op": "probe", "counters": listing, "settle": 1.0,
                               "probes": [{"ident": ident, "frame": bed.frame(packets.ip_packet(spec)).hex()}]})
            after = answer["answers"][0]["counters"]
            counts = [[int(x) for x in re.findall(r"counter packets (\d+)", t)] for t in (before, after)]
            seen[family] = {i for i, (a, b) in enumerate(zip(*counts)) if b > a}
            before = after
    assert seen == {4: {0, 1}, 6: {2}}, seen
    for family, kernel in seen.items():
        _, _, src, dst, _ = FAMILIES[family]
        result = evaluate(ruleset, make_packet(src=src, dst=dst, proto="udp", sport=40000, dport=5000, ttl=64,
                                               hook="forward", iif=FW_IF, oif=FW_IF))
        hit = {i for i, r in enumerate(rules) if any(s.rule is r for s in result.trace if s.event == "match")}
        assert hit == kernel, (family, result.trace)
