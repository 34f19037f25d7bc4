"""Two routing answers that disagreed with the kernel.

A snapshot that holds no routes (no ``ip-route4.json``: not collected, or
``ip -j`` failed) is not a host with no route: the engine answered every
forwarded packet "dropped by routing: no route", and ``diff`` of two such
snapshots reported "internal inconsistency" regions. Now routing that
hangs on the routes is unknown (the rules' verdict where they drop), in
the engine and in the packet space alike.

The host's own packets to a reject route (or none) are never sent: the
socket call fails (EINVAL, EHOSTUNREACH, EACCES, ENETUNREACH) before any
OUTPUT chain (tests/kernel/test_kernel_output_routes.py shows it). The
engine answered by the OUTPUT rules; now both say "dropped by routing"."""

from __future__ import annotations

import os

from ruleanalyzer import load
from ruleanalyzer.diff import diff
from ruleanalyzer.engine import Evaluator
from ruleanalyzer.packets import make_packet
from ruleanalyzer.policy import Assertion, check, parse_flow

from .snapshot_factory import make_snapshot

RULES = """*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp --dport {port} -j ACCEPT
-A FORWARD -p tcp --dport 23 -j DROP
-A OUTPUT -p tcp --dport 25 -j DROP
COMMIT
"""
REJECTS = [{"type": "blackhole", "dst": "203.0.113.0/24", "flags": []},
           {"type": "unreachable", "dst": "198.18.0.0/24", "flags": []},
           {"type": "prohibit", "dst": "198.18.1.0/24", "flags": []}]


def _host(tmp_path, name, port=443, routes=True, extra_routes=None, **sysctls):
    path = make_snapshot(tmp_path / name, name, iptables=RULES.format(port=port),
                         interfaces={"eth0": ["192.0.2.10/24"], "eth1": ["10.0.0.1/24"]},
                         default=("192.0.2.1", "eth0"), routes=extra_routes,
                         sysctls={"net.ipv4.ip_forward": "1", **sysctls})
    if not routes:
        for member in ("ip-route4.json", "ip-route6.json"):
            os.remove(os.path.join(path, member))
    return load(path)


def _ask(rs, **kw):
    kw.setdefault("proto", "tcp")
    return Evaluator(rs).evaluate(make_packet(**kw))


def test_no_routes_in_the_snapshot_is_not_no_route(tmp_path):
    rs = _host(tmp_path, "a", routes=False)
    fwd = _ask(rs, src="10.0.0.5", dst="198.51.100.7", dport=443, iif="eth1", hook="forward")
    # before: DROP, "dropped by routing: … no route (network unreachable)"
    assert fwd.verdict == "unknown", (fwd.verdict, fwd.routing)
    assert any("does not hold" in d for d in fwd.depends_on), fwd.depends_on
    # the rules drop it whatever the route: their verdict
    blocked = _ask(rs, src="10.0.0.5", dst="198.51.100.7", dport=23, iif="eth1", hook="forward")
    assert blocked.verdict == "drop" and blocked.decided_by is not None
    # to one of its addresses: delivered, the rules decide
    mine = _ask(rs, src="198.51.100.7", dst="192.0.2.10", dport=443, iif="eth0", hook="input")
    assert mine.verdict == "accept"
    out = _ask(rs, src="192.0.2.10", dst="198.51.100.7", dport=443, hook="output")
    assert out.verdict == "unknown"
    # ip_forward=0 needs no route to drop
    off = _host(tmp_path, "b", routes=False, **{"net.ipv4.ip_forward": "0"})
    assert _ask(off, src="10.0.0.5", dst="198.51.100.7", dport=443, iif="eth1", hook="forward").verdict == "drop"


def test_strict_rp_filter_without_routes_is_unknown(tmp_path):
    rs = _host(tmp_path, "a", routes=False, **{"net.ipv4.conf.all.rp_filter": "1"})
    r = _ask(rs, src="198.51.100.7", dst="192.0.2.10", dport=443, iif="eth0", hook="input")
    assert r.verdict == "unknown" and any("reverse-path" in d for d in r.depends_on), r.depends_on


def test_diff_of_snapshots_without_routes_is_consistent(tmp_path):
    old, new = _host(tmp_path, "a", routes=False), _host(tmp_path, "b", port=8443, routes=False)
    report = diff(old, new, findings=False)
    assert report.regions
    bad = [r.note for r in report.regions if not r.confirmed]
    assert not bad, bad  # before: "internal inconsistency" (walk: input; engine: no route)
    assert {r.kind for r in report.regions} == {"opened", "closed"}
    for r in report.regions:
        assert str(r.witness.dst) == "192.0.2.10" and r.hook == "input"


def test_policy_allow_needs_the_routes_the_snapshot_lacks(tmp_path):
    rs = _host(tmp_path, "a", routes=False)
    flow = Assertion("allow", parse_flow("80/tcp from 10.0.0.0/24 to 198.51.100.0/24", "forward"))
    failures = check(rs, [flow])
    assert failures and failures[0].result.verdict == "unknown"
    known = _host(tmp_path, "b")
    assert not check(known, [flow])


def test_own_packets_to_a_reject_route_are_not_sent(tmp_path):
    rs = _host(tmp_path, "a", extra_routes=REJECTS)
    for dst, errno in (("203.0.113.5", "EINVAL"), ("198.18.0.5", "EHOSTUNREACH"), ("198.18.1.5", "EACCES")):
        r = _ask(rs, src="192.0.2.10", dst=dst, dport=443, hook="output")
        # before: ACCEPT by the OUTPUT policy
        assert (r.verdict, r.decided_by, r.trace) == ("drop", None, ()), (dst, r.verdict)
        assert errno in r.routing and dst.rsplit(".", 1)[0] in r.routing, r.routing
    sent = _ask(rs, src="192.0.2.10", dst="198.51.100.7", dport=443, hook="output")
    assert sent.verdict == "accept" and sent.packet.oif == "eth0"
    lone = _host(tmp_path, "b", extra_routes=None)
    lone_rs = load(make_snapshot(tmp_path / "c", "c", iptables=RULES.format(port=443),
                                 interfaces={"eth0": ["192.0.2.10/24"]}, default=None))
    r = _ask(lone_rs, src="192.0.2.10", dst="198.51.100.7", dport=443, hook="output")
    assert r.verdict == "drop" and "ENETUNREACH" in r.routing
    assert _ask(lone, src="192.0.2.10", dst="192.0.2.77", dport=443, hook="output").verdict == "accept"


def test_diff_shows_own_packets_a_blackhole_stops(tmp_path):
    # before: one output region "accept → accept, made before only"
    old, new = _host(tmp_path, "a"), _host(tmp_path, "b", extra_routes=REJECTS[:1])
    report = diff(old, new, hooks=("output",), findings=False)
    assert report.closed and {r.kind for r in report.regions} == {"closed"}, \
        [(r.kind, r.was, r.now) for r in report.regions]
    for r in report.closed:
        assert r.confirmed, r.note
        assert str(r.witness.dst).startswith("203.0.113.") and "blackhole" in r.new.routing


def test_input_without_addresses_or_routes_is_delivered(tmp_path):
    # before: "forwarded", decided by the FORWARD policy, for an input query
    path = make_snapshot(tmp_path / "a", "a", iptables=RULES.format(port=443),
                         interfaces={"eth0": ["192.0.2.10/24"]}, default=("192.0.2.1", "eth0"))
    for member in ("ip-route4.json", "ip-route6.json", "ip-addr.json"):
        os.remove(os.path.join(path, member))
    r = _ask(load(path), src="198.51.100.7", dst="192.0.2.10", dport=443, iif="eth0", hook="input")
    assert r.verdict == "accept" and r.decided_by.chain.name == "INPUT", (r.verdict, r.decided_by)


def test_a_reply_routing_refuses_is_no_handshake_trap(tmp_path):
    # The SYN-ACK to a blackholed client is never sent: routing's doing,
    # not a rule's (RA201 "dropped by an implicit deny" was wrong).
    from ruleanalyzer.audit import run_audit

    path = make_snapshot(tmp_path / "a", "a", iptables=RULES.format(port=443).replace(
        ":INPUT DROP [0:0]\n", ":INPUT DROP [0:0]\n-A INPUT -m conntrack --ctstate ESTABLISHED -j ACCEPT\n"),
        interfaces={"eth0": ["192.0.2.10/24"]}, default=("192.0.2.1", "eth0"), routes=REJECTS[:1])
    assert "RA201" not in [f.code for f in run_audit([path]).findings]
