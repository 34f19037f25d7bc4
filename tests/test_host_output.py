"""The host's own packets with a snapshot: their output interface is the
route's — again after a mangle OUTPUT MARK or a nat OUTPUT DNAT changes
what they are routed by (the kernel's ``ip_route_me_harder``), so ``-o``
in filter OUTPUT is decided — and broadcasts: a subnet's broadcast address
is BROADCAST to ``addrtype``/``fib`` (witnesses show one), the host sends
it by that subnet's device, the limited broadcast by the device holding
the source address, and either is delivered up, never forwarded. The
engine and the packet space agree."""

from __future__ import annotations

import pytest

from ruleanalyzer import load
from ruleanalyzer.checks import _sets as S
from ruleanalyzer.checks.base import Context
from ruleanalyzer.engine import Evaluator
from ruleanalyzer.packets import make_packet
from ruleanalyzer.space import witness

from .snapshot_factory import make_snapshot

RULES = """*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A OUTPUT -p tcp --dport 443 -j MARK --set-mark 0x1
-A POSTROUTING -o wan0 -p tcp --dport 443
-A POSTROUTING -o lan0 -p tcp --dport 80
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A OUTPUT -d 192.0.2.80 -p tcp --dport 80 -j DNAT --to-destination 10.10.0.80
-A POSTROUTING -o tun0 -j MASQUERADE
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m addrtype --dst-type BROADCAST -j DROP
-A OUTPUT -o wan0 -p tcp --dport 443 -j ACCEPT
-A OUTPUT -o tun0 -p tcp --dport 443 -j REJECT
-A OUTPUT -o lan0 -p tcp --dport 80 -j REJECT
-A OUTPUT -o lan0 -p udp --dport 67 -j DROP
COMMIT
"""
INTERFACES = {"wan0": ["192.0.2.1/24"], "lan0": ["10.10.0.1/24"], "tun0": ["10.99.0.2/30"]}


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    # Marked packets (fwmark 1) use table 100, whose default route is the tunnel.
    path = make_snapshot(tmp_path_factory.mktemp("out") / "h", "h", iptables=RULES, interfaces=INTERFACES,
                         default=("192.0.2.254", "wan0"),
                         routes=[{"dst": "default", "gateway": "10.99.0.1", "dev": "tun0", "table": "100",
                                  "flags": []}],
                         rules=[{"priority": 100, "src": "all", "fwmark": "0x1", "table": "100"}])
    return load(path)


def _out(ev, dst, port, proto="tcp", src="192.0.2.1"):
    return ev.evaluate(make_packet(src=src, dst=dst, proto=proto, dport=port, hook="auto"))


def test_a_mark_set_in_mangle_output_reroutes(host):
    ev = Evaluator(host)
    https = _out(ev, "198.51.100.7", 443)
    # Routed by wan0 first — what every OUTPUT chain sees (-o wan0 accepts,
    # -o tun0 does not match) — then the MARK sends it by table 100's tunnel:
    # POSTROUTING masquerades it on tun0, and it leaves by tun0.
    assert (https.verdict, https.decided_by.rule.index, https.packet.oif) == ("accept", 1, "tun0")
    assert any("routed again after ip mangle OUTPUT" in n for n in https.notes), https.notes
    assert any(step.rule is not None and "MASQUERADE" in step.rule.text for step in https.trace)
    plain = _out(ev, "198.51.100.7", 22)
    assert (plain.verdict, plain.packet.oif) == ("accept", "wan0")
    assert not any("MASQUERADE" in (step.rule.text if step.rule else "") for step in plain.trace)
    # A query that names the output interface keeps it.
    named = ev.evaluate(make_packet(src="192.0.2.1", dst="198.51.100.7", proto="tcp", dport=443,
                                    hook="output", oif="tun0"))
    assert named.verdict == "drop" and named.decided_by.rule.index == 2


def test_a_dnat_in_nat_output_reroutes(host):
    ev = Evaluator(host)
    r = _out(ev, "192.0.2.80", 80)
    # filter OUTPUT still sees wan0 (the -o lan0 REJECT does not match); it leaves by lan0.
    assert (r.verdict, r.packet.oif, str(r.packet.dst)) == ("accept", "lan0", "10.10.0.80"), r.notes


def test_the_packet_space_reroutes_too(host):
    reach = Context(host).reach("output", 4)
    sp = reach.space
    rules = list(host.rules())
    https = sp.eq("proto", 6) & sp.eq("dport", 443) & S.networks(sp, "dst", "198.51.100.7/32")
    post_wan = next(r for r in rules if r.text.startswith("-A POSTROUTING -o wan0"))
    masq = next(r for r in rules if "MASQUERADE" in r.text)
    # Every packet to 443 is marked and routed again by the tunnel: none
    # reaches POSTROUTING on wan0, all are masqueraded on tun0.
    assert reach.rule_sets(post_wan).matched_upper.node & https == sp.false
    assert reach.rule_sets(masq).matched_lower.node & https != sp.false
    # OUTPUT saw the first route: the -o wan0 accept takes them.
    accept = next(r for r in rules if r.text.startswith("-A OUTPUT -o wan0"))
    assert reach.rule_sets(accept).matched_lower.node & https != sp.false
    # DNAT'd to 10.10.0.80, routed again: POSTROUTING sees lan0.
    post_lan = next(r for r in rules if r.text.startswith("-A POSTROUTING -o lan0"))
    dnat = S.networks(sp, "dst", "10.10.0.80/32") & sp.bdd.var("ct_status:dnat")
    assert reach.rule_sets(post_lan).matched_upper.node & dnat != sp.false


def test_broadcasts(host):
    ev = Evaluator(host)
    for dst in ("10.10.0.255", "192.0.2.255", "255.255.255.255"):
        r = ev.evaluate(make_packet(src="10.10.0.9", dst=dst, proto="udp", dport=67, hook="auto", iif="lan0"))
        assert (r.packet.hook, r.verdict, r.decided_by.rule.index) == ("input", "drop", 1), (dst, r.routing)
    # Sent by the host: a subnet's broadcast by its device, the limited
    # broadcast by the device holding the source.
    assert _out(ev, "10.10.0.255", 67, "udp", src="10.10.0.1").packet.oif == "lan0"
    lbcast = _out(ev, "255.255.255.255", 67, "udp", src="10.10.0.1")
    assert (lbcast.packet.oif, lbcast.verdict) == ("lan0", "drop")
    assert _out(ev, "255.255.255.255", 67, "udp", src="192.0.2.1").packet.oif == "wan0"
    # The packet space: the BROADCAST rule's witness is a broadcast address of
    # the host's subnets (or the limited broadcast), the -o lan0 DHCP rule
    # takes the broadcasts the host sends on the lan.
    ctx = Context(host)
    inp = ctx.reach("input", 4)
    bcast = next(r for r in host.rules() if "BROADCAST" in r.text)
    w = witness(inp.rule_sets(bcast).matched_lower, "input")
    assert str(w.dst) in ("10.10.0.255", "192.0.2.255", "10.99.0.3", "255.255.255.255"), w
    out = ctx.reach("output", 4)
    sp = out.space
    dhcp = next(r for r in host.rules() if "--dport 67" in r.text)
    sent = out.rule_sets(dhcp).matched_lower.node
    for dst, src, hit in (("10.10.0.255", "10.10.0.1", True), ("255.255.255.255", "10.10.0.1", True),
                          ("255.255.255.255", "192.0.2.1", False)):
        point = S.networks(sp, "dst", f"{dst}/32") & S.networks(sp, "src", f"{src}/32")
        assert (sent & point != sp.false) is hit, (dst, src)


NFT_BROADCAST = """table inet f {
  chain in {
    type filter hook input priority 0; policy accept;
    fib daddr type broadcast udp dport 137 counter drop
  }
}
"""


def test_nft_fib_broadcast_is_the_hosts_broadcast_addresses(tmp_path):
    path = make_snapshot(tmp_path / "n", "n", interfaces=INTERFACES, default=("192.0.2.254", "wan0"))
    (tmp_path / "n" / "nft-ruleset.txt").write_text(NFT_BROADCAST)
    rs = load(path)
    ev = Evaluator(rs)
    verdict = lambda dst: ev.evaluate(make_packet(src="10.10.0.9", dst=dst, proto="udp", dport=137,
                                                  hook="input", iif="lan0")).verdict
    assert [verdict(d) for d in ("10.10.0.255", "192.0.2.255", "255.255.255.255", "10.10.0.1")] == \
        ["drop", "drop", "drop", "accept"]
    reach = Context(rs).reach("input", 4)
    rule = next(rs.rules())
    hit = reach.rule_sets(rule).matched_lower
    sp = reach.space
    broadcasts = ("10.10.0.255/32", "192.0.2.255/32", "10.99.0.3/32", "255.255.255.255/32")
    # Exactly the host's broadcast addresses (and the limited broadcast) arrive and match.
    assert hit.node & ~S.networks(sp, "dst", *broadcasts) == sp.false
    assert all(hit.node & S.networks(sp, "dst", b) != sp.false for b in broadcasts)
    assert f"{witness(hit, 'input').dst}/32" in broadcasts


def _nft_rule(chain: str, *expr) -> dict:
    return {"rule": {"family": "ip", "table": "m", "chain": chain, "expr": list(expr)}}


HTTPS = {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 443}}
#: route OUTPUT sets the mark to a value not worked out (``meta mark set ct
#: mark & 0x1``): the fwmark 0x1/0x1 policy rule routes the packet by the
#: tunnel where the connection's mark has bit 0, else it stays on wan0,
#: where postrouting drops https (after a rule that reads the mark, so
#: that the walk follows each value the write may give).
NFT_UNKNOWN_MARK = {"nftables": [
    {"table": {"family": "ip", "name": "m"}},
    {"chain": {"family": "ip", "table": "m", "name": "out", "type": "route", "hook": "output",
               "prio": -150, "policy": "accept"}},
    {"chain": {"family": "ip", "table": "m", "name": "post", "type": "filter", "hook": "postrouting",
               "prio": 0, "policy": "accept"}},
    _nft_rule("out", HTTPS, {"mangle": {"key": {"meta": {"key": "mark"}},
                                        "value": {"&": [{"ct": {"key": "mark"}}, 1]}}}),
    _nft_rule("post", {"match": {"op": "==", "left": {"meta": {"key": "mark"}}, "right": 5}}, {"counter": None}),
    _nft_rule("post", {"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "wan0"}},
              HTTPS, {"drop": None}),
]}


def test_a_mark_set_to_a_value_not_worked_out_reroutes(tmp_path):
    # The kernel routes again on any change of the mark (ip_route_me_harder):
    # whether https leaves by wan0, and is dropped there, depends on the
    # connection's mark — in the engine and in the packet space, which
    # once kept the first route and called every such packet surely dropped.
    import json

    path = make_snapshot(tmp_path / "h", "h", nft_json=json.dumps(NFT_UNKNOWN_MARK), interfaces=INTERFACES,
                         default=("192.0.2.254", "wan0"),
                         routes=[{"dst": "default", "gateway": "10.99.0.1", "dev": "tun0", "table": "100",
                                  "flags": []}],
                         rules=[{"priority": 100, "src": "all", "fwmark": "0x1", "fwmask": "0x1",
                                 "table": "100"}])
    rs = load(path)
    r = _out(Evaluator(rs), "198.51.100.7", 443)
    assert r.verdict == "unknown" and {a.verdict for a in r.alternatives} >= {"accept", "drop"}, r.notes
    reach = Context(rs).reach("output", 4)
    sp = reach.space
    https = sp.eq("proto", 6) & sp.eq("dport", 443) & S.networks(sp, "dst", "198.51.100.7/32")
    assert reach.dropped.lower.node & https == sp.false
    assert reach.dropped.upper.node & https != sp.false
    assert reach.accepted.upper.node & https != sp.false
