"""Packets a host snapshot's routing drops — no forwarding, a blackhole
route, the reverse-path filter — are dropped in the packet-space walk too,
by routing and no rule, as the engine answers them: ``diff`` shows the
change of such a setting as traffic closed or opened (not as packets "one
version alone brings to the hook"), policy assertions count those packets,
and the checks still judge only what the rules decide."""

from __future__ import annotations

import pytest

from ruleanalyzer import load
from ruleanalyzer.checks import _sets as S
from ruleanalyzer.checks.base import Context
from ruleanalyzer.diff import diff
from ruleanalyzer.policy import Assertion, assert_allows, assert_denies, check, parse_flow
from ruleanalyzer.space.reach import analyze

from .snapshot_factory import make_snapshot

RULES = """*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p tcp --dport 22 -j ACCEPT
-A FORWARD -p tcp --dport 23 -j DROP
COMMIT
"""
BLACKHOLE = [{"type": "blackhole", "dst": "203.0.113.0/24", "flags": []}]


def _router(tmp_path, name, rules=RULES, routes=None, **sysctls):
    return load(make_snapshot(tmp_path / name, name, iptables=rules, ip6tables=rules,
                              interfaces={"eth0": ["192.0.2.10/24"], "eth1": ["10.0.0.1/24"]},
                              default=("192.0.2.1", "eth0"), routes=routes,
                              sysctls={"net.ipv4.ip_forward": "1", **sysctls}))


def _kinds(report, hook):
    return {r.kind for r in report.regions if r.hook == hook}


def test_a_blackhole_route_added_closes_what_forward_accepted(tmp_path):
    # Before, the walk took the blackholed packets off the forward path:
    # the change read "rewritten or routed differently … made before only
    # [mixed]" instead of traffic that is now dropped.
    old, new = _router(tmp_path, "a"), _router(tmp_path, "b", routes=BLACKHOLE)
    report = diff(old, new, hooks=("forward",), findings=False)
    assert report.closed and _kinds(report, "forward") == {"closed"}, [r.kind for r in report.regions]
    for r in report.closed:
        assert r.confirmed, r.note
        assert str(r.witness.dst).startswith("203.0.113.")
        assert r.old.verdict == "accept"
        assert r.new.verdict == "drop" and r.new.decided_by is None and "blackhole" in r.new.routing
    back = diff(new, old, hooks=("forward",), findings=False)
    assert back.opened and _kinds(back, "forward") == {"opened"}
    assert back.newly_allowed


def test_rp_filter_switched_on_closes_spoofed_sources(tmp_path):
    # Strict rp_filter drops a packet whose source routes back by another
    # interface, on input and forward alike: closed, each confirmed by the
    # engine's "dropped by the reverse-path filter".
    old = _router(tmp_path, "a")
    new = _router(tmp_path, "b", **{"net.ipv4.conf.all.rp_filter": "1"})
    report = diff(old, new, hooks=("input", "forward"), findings=False)
    assert _kinds(report, "input") == {"closed"} and _kinds(report, "forward") == {"closed"}
    for r in report.closed:
        assert r.confirmed, r.note
        assert "reverse-path filter" in r.new.routing


def test_forwarding_off_on_one_interface_closes_what_arrives_there(tmp_path):
    old = _router(tmp_path, "a")
    new = _router(tmp_path, "b", **{"net.ipv4.conf.eth1.forwarding": "0"})
    report = diff(old, new, hooks=("forward",), findings=False)
    assert report.closed and _kinds(report, "forward") == {"closed"}, [r.kind for r in report.regions]
    for r in report.closed:
        assert r.confirmed, r.note
        assert r.witness.iif == "eth1" and "conf.eth1.forwarding" in r.new.routing


def test_policy_counts_packets_routing_drops(tmp_path):
    # A flow to a blackholed network is not forwarded (before: the walk had
    # no such packet, so "allow" held of nothing); with ip_forward=0
    # nothing is forwarded, so "deny" holds (before: it failed with a
    # witness the engine itself answered "drop").
    blackholed = _router(tmp_path, "a", routes=BLACKHOLE)
    failures = check(blackholed, [Assertion("allow", parse_flow("80/tcp from 198.51.100.0/24 to 203.0.113.5",
                                                                "forward"))])
    assert failures and "blackhole" in failures[0].result.routing
    off = _router(tmp_path, "b", **{"net.ipv4.ip_forward": "0", "net.ipv4.conf.eth0.forwarding": "0",
                                    "net.ipv4.conf.eth1.forwarding": "0"})
    assert_denies(off, "80/tcp from 198.51.100.0/24 to 10.0.0.0/24", hook="forward")


def test_the_walk_drops_by_routing_and_the_checks_judge_the_rules(tmp_path):
    rs = _router(tmp_path, "a", routes=BLACKHOLE, **{"net.ipv4.conf.all.rp_filter": "1"})
    reach = analyze(rs, "forward", 4)
    sp = reach.space
    to_blackhole = (S.networks(sp, "src", "198.51.100.0/24") & S.networks(sp, "dst", "203.0.113.0/24")
                    & S.iface(sp, "iif", "eth0") & sp.family(4))
    assert reach.dropped.lower.node & to_blackhole == to_blackhole & sp.valid & reach.dropped.upper.node
    assert reach.routing_dropped is not None
    assert reach.routing_dropped.lower.node & to_blackhole != sp.false
    assert reach.arriving.node & to_blackhole == sp.false  # handed to no FORWARD chain
    assert reach.spoofed.node & to_blackhole == sp.false  # (no spoofing: eth0 is its way back)
    spoofed = S.networks(sp, "src", "198.51.100.0/24") & S.iface(sp, "iif", "eth1") & sp.family(4)
    assert reach.spoofed.node & spoofed != sp.false
    # What the rules decide leaves routing's drops out: the FORWARD rules
    # drop only telnet (and ip_forward a TTL that expires).
    new = S.state_is(sp, "new") & sp.family(4) & ~sp.eq("dport", 23) & ~sp.at_most("ttl", 1)
    assert reach.dropped.meets("lower", new)
    assert not reach.dropped.meets("lower", reach.rules_decide(new))


def test_checks_unchanged_by_routing_drops(tmp_path):
    # IPv4 INPUT accepts everything; strict rp_filter drops spoofed sources
    # before it. That is no IPv4 filtering of the ruleset's (RA207 stays
    # quiet), and a host that forwards nothing keeps its RA601.
    open_rules = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
    rs = _router(tmp_path, "a", rules=open_rules, **{"net.ipv4.conf.all.rp_filter": "1"})
    ctx = Context(rs)
    reach = ctx.reach("input", 4)
    sp = reach.space
    new = S.state_is(sp, "new") & sp.family(4)
    assert reach.dropped.meets("lower", new)  # (the spoofed ones, by routing)
    from ruleanalyzer.audit import audit

    assert "RA207" not in {f.code for f in audit(rs)}
    off = _router(tmp_path, "b", **{"net.ipv4.ip_forward": "0", "net.ipv4.conf.eth0.forwarding": "0",
                                    "net.ipv4.conf.eth1.forwarding": "0"})
    codes = {f.code for f in audit(off)}
    assert "RA601" in codes and "RA402" not in codes


def test_policy_allow_on_forward_holds(tmp_path):
    # Before, "allow ... on forward" never held: its witness was a packet
    # with TTL 0 or 1, which ip_forward drops before FORWARD. Nor do the
    # reverse-path filter's spoofed copies (on the interface the source
    # does not route back by) fail it: the flow names no input interface.
    plain = _router(tmp_path, "a")
    assert_allows(plain, "80/tcp from 198.51.100.0/24 to 10.0.0.5", hook="forward")
    with pytest.raises(AssertionError, match="not every packet is allowed"):
        assert_allows(plain, "23/tcp from 198.51.100.0/24 to 10.0.0.5", hook="forward")
    strict = _router(tmp_path, "b", **{"net.ipv4.conf.all.rp_filter": "1"})
    assert_allows(strict, "80/tcp from 198.51.100.0/24 to 10.0.0.5", hook="forward")
    blackholed = _router(tmp_path, "c", routes=BLACKHOLE)
    assert_allows(blackholed, "80/tcp from 198.51.100.0/24 to 10.0.0.5", hook="forward")
