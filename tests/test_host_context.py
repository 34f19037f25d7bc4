"""What a host snapshot decides: ipset contents and address types become
plain matches (the engine and the packet space agree on them), routes
decide ``-o``, ``--hook auto``, ``ip_forward=0``, the reverse-path filter,
conntrack's pick-up and ``connect``'s ECN default. Without the snapshot
the same questions stay "unknown, depends on …".

Kernel semantics these follow are checked on a real kernel in
``tests/kernel/test_kernel_snapshot.py``; ipset set types per the ipset
man page (ipset(8), "SET TYPES") and net/netfilter/xt_set.c."""

from __future__ import annotations

import pytest

from ruleanalyzer import load, loads
from ruleanalyzer.engine import Evaluator
from ruleanalyzer.engine.connect import connect
from ruleanalyzer.model import AnyOf, OpaqueMatch
from ruleanalyzer.packets import make_packet
from ruleanalyzer.space import Layout, Space
from ruleanalyzer.space.reach import analyze_hooks

from .snapshot_factory import make_snapshot

ROUTER = """*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m addrtype --dst-type LOCAL -p tcp --dport 22 -j ACCEPT
-A FORWARD -m set --match-set blocked src -j DROP
-A FORWARD -o lan0 -p tcp --dport 8080 -j ACCEPT
-A FORWARD -o dmz0 -p tcp --dport 25 -j ACCEPT
-A FORWARD -m set --match-set svc dst,dst -j ACCEPT
-A FORWARD -m set --match-set nets dst -p udp -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -p tcp --dport 80 -j DNAT --to-destination 10.10.0.5:8080
COMMIT
"""
IPSETS = """create blocked hash:ip family inet hashsize 1024 maxelem 65536
add blocked 203.0.113.66
create svc hash:ip,port family inet
add svc 10.20.0.7,tcp:443
add svc 10.20.0.7,udp:53
create nets hash:net family inet
add nets 10.20.0.0/16
add nets 10.20.5.0/24 nomatch
add nets 10.20.5.128/25
create ports bitmap:port range 0-1024
add ports 22
create both list:set size 8
add both blocked
add both ports
"""


@pytest.fixture
def router(tmp_path):
    return make_snapshot(tmp_path / "gw", "gw", iptables=ROUTER, ipsets=IPSETS,
                         interfaces={"wan0": ["192.0.2.1/24"], "lan0": ["10.10.0.1/24"],
                                     "dmz0": ["10.20.0.1/16"]},
                         default=("192.0.2.254", "wan0"),
                         sysctls={"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.rp_filter": "1",
                                  "net.ipv4.tcp_ecn": "1"})


def packet(**kw):
    return make_packet(**{"hook": "auto", "proto": "tcp", **kw})


def test_routes_decide_the_output_interface(router, tmp_path):
    ev = Evaluator(load(router))
    # DNAT to a lan host: forwarded by lan0, accepted by the -o lan0 rule.
    r = ev.evaluate(packet(src="198.51.100.9", dst="192.0.2.1", dport=80))
    assert (r.verdict, r.outcome, r.packet.oif, r.decided_by.rule.index) == ("accept", "forwarded", "lan0", 2)
    assert "10.10.0.0/24 dev lan0" in r.routing
    # The same packet from the rule file alone: it depends on the output interface.
    rules = tmp_path / "rules.v4"
    rules.write_text(ROUTER)
    alone = Evaluator(load(rules)).evaluate(make_packet(src="198.51.100.9", dst="192.0.2.1", dport=80))
    assert alone.verdict == "unknown" and "the output interface (not given)" in alone.depends_on
    # To the dmz on port 25: -o dmz0; to the lan on port 25: policy drop.
    assert ev.evaluate(packet(src="198.51.100.9", dst="10.20.9.9", dport=25)).verdict == "accept"
    lan = ev.evaluate(packet(src="198.51.100.9", dst="10.10.0.9", dport=25))
    assert lan.verdict == "drop" and lan.decided_by.is_policy and lan.packet.oif == "lan0"


def test_hook_auto_and_strict_rp_filter(router):
    ev = Evaluator(load(router))
    own = ev.evaluate(packet(src="198.51.100.9", dst="192.0.2.1", dport=22))
    assert own.packet.hook == "input" and own.verdict == "accept"
    # rp_filter=1 everywhere: a packet from the internet can only arrive on wan0.
    assert own.packet.iif == "wan0" and any("rp_filter" in n for n in own.notes)
    sent = ev.evaluate(packet(src="10.10.0.1", dst="198.51.100.9", dport=443))
    assert sent.packet.hook == "output" and sent.packet.oif == "wan0"
    # A lan source arriving on wan0 is spoofed to strict rp_filter: routing drops it.
    spoofed = ev.evaluate(packet(src="10.10.0.9", dst="10.20.0.7", dport=443, iif="wan0"))
    assert spoofed.verdict == "drop" and spoofed.decided_by is None and "rp_filter=1" in spoofed.routing


def test_ipsets_become_matches(router):
    rs = load(router)
    ev = Evaluator(rs)
    blocked = ev.evaluate(packet(src="203.0.113.66", dst="10.20.0.7", dport=443, iif="wan0"))
    assert blocked.verdict == "drop" and blocked.decided_by.rule.index == 1
    svc = ev.evaluate(packet(src="203.0.113.5", dst="10.20.0.7", dport=443, iif="wan0"))
    assert svc.verdict == "accept" and svc.decided_by.rule.index == 4
    assert ev.evaluate(packet(src="203.0.113.5", dst="10.20.0.7", dport=444, iif="wan0")).verdict == "drop"
    # hash:net with nomatch: the longest entry decides.
    udp = lambda dst: ev.evaluate(packet(src="203.0.113.5", dst=dst, proto="udp", dport=9, iif="wan0")).verdict
    assert [udp(d) for d in ("10.20.4.1", "10.20.5.1", "10.20.5.200")] == ["accept", "drop", "accept"]
    texts = [m.text for r in rs.rules() for m in r.matches if isinstance(m, AnyOf)]
    assert "-m set --match-set svc dst,dst" in texts  # reports keep the rule's own words


@pytest.mark.parametrize("rule,undecided", [
    ("-A INPUT -m set --match-set blocked src --packets-gt 5 -j DROP", "--packets-gt"),
    ("-A INPUT -m set --match-set blocked src --return-nomatch -j DROP", "--return-nomatch"),
    ("-A INPUT -m set --match-set nosuch src -j DROP", "no ipset named nosuch"),
    ("-A INPUT -j SET --add-set blocked src\n-A INPUT -m set --match-set blocked src -j DROP",
     "changes at runtime"),
])
def test_what_a_snapshot_cannot_decide_stays_unknown(tmp_path, rule, undecided):
    rules = f"*filter\n:INPUT ACCEPT [0:0]\n{rule}\nCOMMIT\n"
    rs = load(make_snapshot(tmp_path / "h", "h", iptables=rules, ipsets=IPSETS))
    opaque = [m for r in rs.rules() for m in r.matches if isinstance(m, OpaqueMatch)]
    assert opaque and undecided in opaque[-1].reason


def test_set_types_follow_ipset(tmp_path):
    rules = ("*filter\n:INPUT ACCEPT [0:0]\n"
             "-A INPUT -m set --match-set ports dst -j DROP\n"        # bitmap:port, either family
             "-A INPUT -m set --match-set svc dst -j DROP\n"          # 2 dimensions, 1 direction: never
             "-A INPUT -m set --match-set both src,dst -j REJECT\n"   # list:set
             "COMMIT\n")
    ev = Evaluator(load(make_snapshot(tmp_path / "h", "h", iptables=rules, ipsets=IPSETS)))
    verdict = lambda **kw: (lambda r: (r.verdict, r.decided_by.rule.index if r.decided_by.rule else None))(
        ev.evaluate(make_packet(hook="input", **kw)))
    assert verdict(src="198.51.100.1", dst="192.0.2.10", dport=22) == ("drop", 1)
    assert verdict(src="198.51.100.1", dst="192.0.2.10", dport=443) == ("accept", None)
    assert verdict(src="203.0.113.66", dst="192.0.2.10", dport=1999) == ("drop", 3)


def test_addrtype_is_the_hosts_addresses(router):
    rs = load(router)
    ev = Evaluator(rs)
    # nat PREROUTING DNATs port 80 only to the host's own addresses.
    other = ev.evaluate(packet(src="198.51.100.9", dst="10.10.0.9", dport=80, iif="wan0"))
    assert other.packet.dst.exploded == "10.10.0.9" and other.verdict == "drop"
    mine = ev.evaluate(packet(src="198.51.100.9", dst="10.20.0.1", dport=80, iif="wan0"))
    assert str(mine.packet.dst) == "10.10.0.5"  # 10.20.0.1 is dmz0's address: local


def test_forwarding_off_and_tcp_loose(tmp_path):
    snap = make_snapshot(tmp_path / "h", "h", iptables=ROUTER, ipsets=IPSETS,
                         sysctls={"net.ipv4.ip_forward": "0",
                                  "net.netfilter.nf_conntrack_tcp_loose": "0"},
                         default=("192.0.2.1", "eth0"))
    ev = Evaluator(load(snap))
    r = ev.evaluate(packet(src="198.51.100.9", dst="10.20.0.7", dport=443))
    assert r.verdict == "drop" and "net.ipv4.ip_forward=0" in r.routing
    ack = ev.evaluate(packet(src="198.51.100.9", dst="192.0.2.10", dport=22, flags="ACK", state="new"))
    assert ack.state == "invalid" and "nf_conntrack_tcp_loose=0" in " ".join(ack.notes)


def test_connect_defaults_from_the_host(router):
    rs = load(router)
    client = connect(rs, "10.10.0.1", "198.51.100.9", 443, hook=None, ecn=None)
    assert client.hook == "output" and [v.ecn for v in client.variants] == [True]  # tcp_ecn=1 asks
    server = connect(rs, "198.51.100.9", "192.0.2.1", 22, hook=None, ecn=None)
    assert server.hook == "input" and [v.ecn for v in server.variants] == [False, True]
    routed = connect(rs, "198.51.100.9", "10.20.9.9", 25, hook=None, ecn=None)
    assert routed.hook == "forward" and routed.variants[0].legs[0].result.packet.oif == "dmz0"


def test_packet_space_routes_as_the_engine(router):
    """The walk decides -o by the routes: the -o dmz0 rule sees only dmz
    destinations, and what the space accepts the engine accepts."""
    from ruleanalyzer.checks.base import Context

    rs = load(router)
    ctx = Context(rs)
    reach = ctx.reach("forward", 4)
    sp = reach.space
    rule = [r for r in rs.rules() if "dmz0" in r.text][0]
    hit = reach.rule_sets(rule).matched_upper
    from ruleanalyzer.space import witness

    w = witness(hit, "forward")
    assert str(w.dst).startswith("10.20.") and not str(w.dst).startswith("10.20.0.1")
    # Packets to the lan never reach the dmz rule.
    from ruleanalyzer.checks import _sets as S

    to_lan = S.networks(sp, "dst", "10.10.0.0/24")
    assert hit.node & to_lan == sp.false
    # Without the snapshot the -o dmz0 rule takes any destination.
    bare = loads(ROUTER, dialect="iptables")
    space = Space(Layout.for_ruleset(bare))
    plain = analyze_hooks(bare, ["forward"], 4, space)["forward"]
    rule_bare = [r for r in bare.rules() if "dmz0" in r.text][0]
    assert plain.rule_sets(rule_bare).matched_upper.node & S.networks(space, "dst", "10.10.0.0/24") != space.false
    # A host that does not forward has no forward path to analyse.
    assert Context(load(make_snapshot(router + "-off", "off", iptables=ROUTER))).reach("forward", 4) is None
