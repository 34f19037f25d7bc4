"""The packet space lowers the TTL before FORWARD as ip_forward does (and
as the engine has it): sets keep the TTL a packet arrives with, FORWARD and
POSTROUTING rules read it one lower, TTL 0 and 1 are dropped before them."""

from ruleanalyzer import loads
from ruleanalyzer.diff import diff
from ruleanalyzer.engine import evaluate
from ruleanalyzer.space import witness
from ruleanalyzer.space.reach import analyze, analyze_hooks

from ruleanalyzer.packets import make_packet
from ruleanalyzer.space.fields import Layout
from ruleanalyzer.space.packetset import Space

from tests.engine.test_forward_ttl import INC, IPT, NFT


def _hits(ruleset, packet) -> set:
    result = evaluate(ruleset, packet)
    return {id(s.rule) for r in (result, *result.alternatives) for s in r.trace if s.event == "match"}


def test_witnesses_arrive_with_the_ttl_that_makes_forward_rules_match():
    for text, dialect, family in ((IPT, "iptables", 4), (NFT, "nftables", 4), (NFT, "nftables", 6)):
        ruleset = loads(text, dialect=dialect)
        reach = analyze(ruleset, "forward", family)
        checked = 0
        for rule in reach.rules():
            sets = reach.rule_sets(rule)
            if sets.matched_lower.is_empty():
                continue
            packet = witness(sets.matched_lower, "forward")
            assert id(rule) in _hits(ruleset, packet), (rule.text, packet.ttl)
            checked += 1
        assert checked >= (4 if dialect == "iptables" else 1)


def test_ttl_0_and_1_are_dropped_on_forward_only_and_255_never_reaches_forward():
    ruleset = loads(IPT.replace("--ttl-eq 63 -j DROP", "--ttl-eq 255 -j DROP"), dialect="iptables")
    reach = analyze_hooks(ruleset, ["input", "forward"], 4)
    sp = reach["forward"].space
    fwd, inp = reach["forward"], reach["input"]
    ttl = {v: sp.wrap(sp.eq("ttl", v) & sp.eq("proto", 6)) & fwd.arriving for v in (0, 1, 2, 255)}
    assert not ttl[1].is_empty() and ttl[0] | ttl[1] <= fwd.dropped.lower and not ttl[1].intersects(fwd.accepted.upper)
    assert ttl[2] <= fwd.accepted.lower
    local = sp.wrap(sp.eq("ttl", 1) & sp.eq("proto", 6)) & inp.arriving
    assert not local.is_empty() and local <= inp.accepted.lower  # local delivery has no TTL check
    dead = {(r.chain.name, r.index) for r, _ in fwd.unreachable_rules()}
    assert ("FORWARD", 1) in dead  # FORWARD never sees TTL 255


def test_diff_of_a_forward_ttl_rule_names_the_ttl_packets_arrive_with():
    old = loads("*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -m ttl --ttl-eq 63 -j DROP\nCOMMIT\n",
                dialect="iptables", name="old.v4")
    new = loads("*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n", dialect="iptables", name="new.v4")
    report = diff(old, new, hooks=("forward",))
    assert [(r.kind, r.witness.ttl, r.confirmed) for r in report.regions] == [("opened", 64, True)]
    assert "ttl 64" in report.regions[0].text


def test_each_arrival_ttl_gets_the_engines_verdict_through_ttl_arithmetic():
    """Per TTL a packet arrives with (walks started from that one value, so
    rewrites cannot blur it), the space's sure verdict is the engine's."""
    ruleset = loads(INC, dialect="iptables")
    sp = Space(Layout.for_ruleset(ruleset))
    udp = sp.eq("proto", 17) & sp.eq("sport", 5000) & sp.eq("dport", 53) & sp.eq("state", 0)
    assert sp.spec("state").names[0] == "new"
    for hook in ("input", "forward", "output"):
        for ttl in (0, 1, 2, 9, 10, 63, 64, 100, 101, 250, 251, 254, 255):
            reach = analyze(ruleset, hook, 4, sp, start=udp & sp.eq("ttl", ttl))
            packet = make_packet(src="192.0.2.1", dst="198.51.100.1", proto="udp", sport=5000, dport=53,
                                 hook=hook, ttl=ttl, state="new")
            verdict = evaluate(ruleset, packet).verdict
            sure = {v for v, b in (("accept", reach.accepted), ("drop", reach.dropped)) if not b.lower.is_empty()}
            possible = {v for v, b in (("accept", reach.accepted), ("drop", reach.dropped)) if not b.upper.is_empty()}
            assert sure == possible == {verdict}, (hook, ttl, verdict, sure, possible)
