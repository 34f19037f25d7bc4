"""Kernel proof: the host's own packets to a reject route, or to no route,
are never sent. The route is looked up when the socket sends
(``ip_route_output_flow``, before any OUTPUT chain): a blackhole route or
policy rule fails the call with EINVAL, an unreachable route with
EHOSTUNREACH (a rule: ENETUNREACH), prohibit with EACCES, no route with
ENETUNREACH, and no OUTPUT counter moves. The analyzer, from a snapshot
``collect`` takes in the namespace, answers "dropped by routing" for each,
naming the route and the error, and the packet space drops them too; a
routed destination is sent and decided by the OUTPUT rules.

The same snapshot without its routes (``ip-route4.json`` removed) never
gets a definite answer the routes would decide: what the OUTPUT rules
accept is unknown, what they drop is dropped.

One namespace (``lone_ns``), a veth pair inside it, documentation
addresses; deleted after the test; every command has a timeout."""

from __future__ import annotations

import os
import re
import sys

from ruleanalyzer import load
from ruleanalyzer.checks import _sets as S
from ruleanalyzer.engine import Evaluator
from ruleanalyzer.packets import make_packet
from ruleanalyzer.space.reach import analyze

HOST = "192.0.2.10"
RULES = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A OUTPUT -p udp --dport 9999
-A OUTPUT -p udp --dport 25 -j DROP
COMMIT
"""
#: destination → what the kernel does with a datagram this host sends there
CASES = {
    "203.0.113.5": "EINVAL",        # blackhole route
    "198.18.0.5": "EHOSTUNREACH",   # unreachable route
    "198.18.1.5": "EACCES",         # prohibit route
    "198.18.2.5": "EINVAL",         # policy rule: blackhole
    "198.18.3.5": "ENETUNREACH",    # policy rule: unreachable
    "198.18.4.5": "EACCES",         # policy rule: prohibit
    "198.51.100.7": "sent",         # the default route
}
SEND = """
import errno, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 0))
try:
    s.sendto(b"x", (sys.argv[2], int(sys.argv[3])))
    print("sent")
except OSError as e:
    print(errno.errorcode[e.errno])
"""


def _output_count(ns) -> int:
    text = ns.exec("iptables-save", "-c", "-t", "filter").stdout
    m = re.search(r"^\[(\d+):\d+\] -A OUTPUT -p udp -m udp --dport 9999$", text, re.M)
    return int(m.group(1))


def _build(ns) -> None:
    ns.exec("ip", "link", "add", "h0", "type", "veth", "peer", "name", "h1")
    ns.exec("ip", "addr", "add", f"{HOST}/24", "dev", "h0")
    for dev in ("h0", "h1"):
        ns.exec("ip", "link", "set", dev, "up")
    ns.exec("ip", "route", "add", "default", "via", "192.0.2.1", "dev", "h0")
    for kind, net in (("blackhole", "203.0.113.0/24"), ("unreachable", "198.18.0.0/24"),
                      ("prohibit", "198.18.1.0/24")):
        ns.exec("ip", "route", "add", kind, net)
    for pref, (kind, net) in enumerate((("blackhole", "198.18.2.0/24"), ("unreachable", "198.18.3.0/24"),
                                        ("prohibit", "198.18.4.0/24")), 100):
        ns.exec("ip", "rule", "add", "to", net, kind, "pref", str(pref))
    ns.exec("iptables-restore", input=RULES)


def test_own_packets_to_reject_routes_are_never_sent(lone_ns, tmp_path):
    ns = lone_ns
    _build(ns)
    snapshot = tmp_path / "host"
    exe = os.path.join(os.path.dirname(sys.executable), "ruleanalyzer")
    ns.exec(exe, "collect", "-o", str(snapshot), "--etc", str(tmp_path / "no-etc"))
    rs = load(snapshot)
    engine = Evaluator(rs)
    reach = analyze(rs, "output", 4)
    sp = reach.space
    disagreements = []
    for dst, expected in CASES.items():
        before = _output_count(ns)
        got = ns.exec(sys.executable, "-c", SEND, HOST, dst, "9999").stdout.strip()
        counted = _output_count(ns) - before
        assert got == expected and counted == (1 if got == "sent" else 0), (dst, got, counted)
        r = engine.evaluate(make_packet(src=HOST, dst=dst, proto="udp", sport=40000, dport=9999,
                                        hook="output"))
        ours = ("sent" if r.verdict == "accept" else r.verdict, r.decided_by is None)
        if (got == "sent" and ours != ("sent", False)) or \
                (got != "sent" and (ours != ("drop", True) or got not in r.routing)):
            disagreements.append(f"{dst}: kernel {got}, analyzer {r.verdict} {r.routing!r}")
        # the packet space: dropped by routing (and no OUTPUT chain's), or sent on
        mine = (S.networks(sp, "src", f"{HOST}/32") & S.networks(sp, "dst", f"{dst}/32")
                & sp.eq("proto", 17) & sp.eq("dport", 9999) & sp.family(4))
        refused = reach.routing_dropped is not None and \
            reach.routing_dropped.lower.node & mine == mine & reach.dropped.upper.node != sp.false
        if refused != (got != "sent") or (got != "sent") == (reach.arriving.node & mine != sp.false):
            disagreements.append(f"{dst}: kernel {got}, packet space refused={refused}")
    # an OUTPUT rule's drop: the rule decides (the socket gets EPERM)
    got = ns.exec(sys.executable, "-c", SEND, HOST, "198.51.100.7", "25").stdout.strip()
    r = engine.evaluate(make_packet(src=HOST, dst="198.51.100.7", proto="udp", sport=40000, dport=25,
                                    hook="output"))
    assert got == "EPERM" and r.verdict == "drop" and r.decided_by.rule is not None, (got, r)
    assert not disagreements, "\n".join(disagreements)

    # Without its routes the snapshot decides nothing the routes decide.
    os.remove(snapshot / "ip-route4.json")
    bare = Evaluator(load(snapshot))
    for dst in CASES:
        r = bare.evaluate(make_packet(src=HOST, dst=dst, proto="udp", sport=40000, dport=9999, hook="output"))
        assert r.verdict == "unknown" and any("does not hold" in d for d in r.depends_on), (dst, r.verdict)
        r = bare.evaluate(make_packet(src=HOST, dst=dst, proto="udp", sport=40000, dport=25, hook="output"))
        assert r.verdict == "drop", (dst, r.verdict)  # refused or dropped by the rule: dropped either way
