"""NAT to a range of addresses or ports: each connection gets the address
and port the kernel gives it (``engine.natpick``; the kernel itself is the
oracle of ``tests/kernel/test_kernel_nat_range.py``). Here: what a user
sees of it in every dialect and answer form — the port rules, SNAT leaving
a source inside its range alone, the flags read, the batch answering as
the engine does, and a netmap prefix answered as unknown, not guessed."""

from __future__ import annotations

import ipaddress

from ruleanalyzer import loads
from ruleanalyzer.engine import evaluate
from ruleanalyzer.engine.batch import evaluate_many
from ruleanalyzer.engine.natpick import pick_address
from ruleanalyzer.packets import make_packet

NFT = """table ip t {
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
    tcp dport 80 dnat to 10.9.9.1-10.9.9.4
    tcp dport 6000-6010 dnat to 10.9.9.5 : 6000-6010
    tcp dport 7000 dnat to 10.9.9.6 : 6000-6010
    tcp dport 8000 dnat to 10.9.9.7 : 6000-6010 random
  }
  chain forwarding {
    type filter hook forward priority filter; policy drop;
    ip daddr 10.9.9.2 accept
    ip daddr 10.9.9.5 tcp dport 6005 accept
    ip daddr { 10.9.9.6, 10.9.9.7 } tcp dport 6000 accept
  }
  chain post {
    type nat hook postrouting priority srcnat; policy accept;
    ip daddr 10.9.9.0/24 snat to 198.51.100.0-198.51.100.127
  }
}
"""


def _ask(ruleset, src: str, dport: int, sport: int = 40000):
    return evaluate(ruleset, make_packet(src=src, dst="192.0.2.1", sport=sport, dport=dport, flags="SYN",
                                         state="new", hook="input"))


def _address(src: str, first: str, last: str) -> str:
    a = ipaddress.ip_address
    return str(a(pick_address(int(a(src)), int(a("192.0.2.1")), int(a(first)), int(a(last)), 4,
                              translate_dst=True)))


def test_each_source_gets_its_own_backend_and_the_verdict_follows_it():
    ruleset = loads(NFT, dialect="nftables")
    sources = [f"203.0.113.{i}" for i in range(1, 40)]
    backends = {s: _address(s, "10.9.9.1", "10.9.9.4") for s in sources}
    assert len(set(backends.values())) == 4  # (the hash spreads them: not one backend for all)
    for src in sources:
        result = _ask(ruleset, src, 80)
        assert str(result.packet.dst) == backends[src]
        assert result.verdict == ("accept" if backends[src] == "10.9.9.2" else "drop"), src
        assert f"dnat to {backends[src]} (of 10.9.9.1-10.9.9.4)" in \
            [s.detail for s in result.trace if s.event == "nat"]


def test_a_port_inside_the_range_is_kept_one_outside_takes_the_first():
    ruleset = loads(NFT, dialect="nftables")
    kept = _ask(ruleset, "203.0.113.9", 6005)
    assert (str(kept.packet.dst), kept.packet.dport, kept.verdict) == ("10.9.9.5", 6005, "accept")
    assert (_ask(ruleset, "203.0.113.9", 6004).packet.dport, _ask(ruleset, "203.0.113.9", 6004).verdict) == \
        (6004, "drop")
    first = _ask(ruleset, "203.0.113.9", 7000)
    assert (str(first.packet.dst), first.packet.dport, first.verdict) == ("10.9.9.6", 6000, "accept")


def test_a_random_port_the_rules_tell_apart_makes_the_answer_depend_on_it():
    result = _ask(loads(NFT, dialect="nftables"), "203.0.113.9", 8000)
    # FORWARD accepts 10.9.9.7 at port 6000 only: which port of 6000-6010
    # the kernel picks decides, and each way is answered
    assert result.verdict == "unknown"
    assert any("picks at random from 6000-6010" in d for d in result.depends_on)
    ways = {(w.packet.dport, w.verdict) for w in result.alternatives}
    assert (6000, "accept") in ways and {v for _, v in ways} == {"accept", "drop"}
    # where no rule tells the ports apart, the answer is certain
    calm = loads(NFT.replace("ip daddr { 10.9.9.6, 10.9.9.7 } tcp dport 6000 accept",
                             "ip daddr { 10.9.9.6, 10.9.9.7 } accept"), dialect="nftables")
    assert _ask(calm, "203.0.113.9", 8000).verdict == "accept"


def test_snat_leaves_a_source_inside_its_range_alone():
    ruleset = loads(NFT, dialect="nftables")
    src = next(f"198.51.100.{i}" for i in range(1, 120) if _address(f"198.51.100.{i}", "10.9.9.1",
                                                                    "10.9.9.4") == "10.9.9.2")
    inside = _ask(ruleset, src, 80)
    assert inside.verdict == "accept" and str(inside.packet.src) == src
    assert "snat" not in inside.packet.ct_status
    outside = next(r for r in (_ask(ruleset, f"203.0.113.{i}", 80) for i in range(1, 60)) if r.verdict == "accept")
    assert ipaddress.ip_address(outside.packet.src) in ipaddress.ip_network("198.51.100.0/25")
    assert any("by hashing the addresses" in n for n in outside.notes)


def test_iptables_reads_the_same_ranges_and_flags():
    ruleset = loads("*nat\n:PREROUTING ACCEPT [0:0]\n"
                    "-A PREROUTING -p tcp --dport 80 -j DNAT --to-destination 10.9.9.1-10.9.9.4\n"
                    "-A PREROUTING -p tcp --dport 81 -j DNAT --to-destination 10.9.8.10-10.9.8.200 --persistent\n"
                    "COMMIT\n", dialect="iptables")
    nat = [r.action for r in ruleset.tables[0].chains["PREROUTING"].rules]
    assert [(n.address_range is not None, n.persistent) for n in nat] == [(True, False), (True, True)]
    for src in ("203.0.113.1", "203.0.113.2", "203.0.113.3"):
        assert str(_ask(ruleset, src, 80).packet.dst) == _address(src, "10.9.9.1", "10.9.9.4")
    # persistent: seeded with 0, not the destination: another address
    # pair, the same backend for a source whatever it asked for
    a = ipaddress.ip_address
    src = "203.0.113.7"
    chosen = str(_ask(ruleset, src, 81).packet.dst)
    assert chosen == str(a(pick_address(int(a(src)), 0, int(a("10.9.8.10")), int(a("10.9.8.200")), 4,
                                        translate_dst=True, persistent=True)))


def test_batch_answers_as_the_engine_does():
    ruleset = loads(NFT, dialect="nftables")
    packets = [make_packet(src=f"203.0.{i % 7}.{i}", dst="192.0.2.1", sport=40000 + i, dport=(80, 6005, 6004, 7000)[i % 4],
                           flags="SYN", state="new", hook="input") for i in range(1, 250)]
    single = [evaluate(ruleset, p) for p in packets]
    batch = evaluate_many(ruleset, packets)
    assert [(r.verdict, r.packet.dst, r.packet.dport) for r in batch] == \
        [(r.verdict, r.packet.dst, r.packet.dport) for r in single]


def test_netmap_maps_address_for_address_where_its_hook_says():
    nft = loads("table ip t {\n chain post {\n  type nat hook postrouting priority srcnat; policy accept;\n"
                "  snat ip prefix to ip saddr map { 10.1.0.0/24 : 192.168.2.0/24 }\n }\n"
                " chain forwarding {\n  type filter hook forward priority filter; policy accept;\n }\n}\n",
                dialect="nftables")
    result = evaluate(nft, make_packet(src="10.1.0.5", dst="203.0.113.1", dport=80, flags="SYN",
                                       state="new", hook="forward"))
    assert (result.verdict, str(result.packet.src)) == ("accept", "192.168.2.5")
    # iptables' NETMAP: the destination in PREROUTING, the source in
    # POSTROUTING; a user chain reached from both is left unmodelled
    text = ("*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:BOTH - [0:0]\n"
            "-A PREROUTING -d 10.77.0.0/24 -j NETMAP --to 10.9.7.0/24\n"
            "-A PREROUTING -d 10.79.0.0/24 -j BOTH\n-A POSTROUTING -d 10.79.0.0/24 -j BOTH\n"
            "-A BOTH -j NETMAP --to 10.9.6.0/24\nCOMMIT\n"
            "*filter\n:FORWARD DROP [0:0]\n-A FORWARD -d 10.9.7.0/25 -j ACCEPT\nCOMMIT\n")
    ruleset = loads(text, dialect="iptables")
    low = evaluate(ruleset, make_packet(src="203.0.113.9", dst="10.77.0.77", dport=80, flags="SYN",
                                        state="new", hook="input"))
    high = evaluate(ruleset, make_packet(src="203.0.113.9", dst="10.77.0.177", dport=80, flags="SYN",
                                         state="new", hook="input"))
    assert (low.verdict, str(low.packet.dst), high.verdict, str(high.packet.dst)) == \
        ("accept", "10.9.7.77", "drop", "10.9.7.177")
    both = evaluate(ruleset, make_packet(src="203.0.113.9", dst="10.79.0.7", dport=80, flags="SYN",
                                         state="new", hook="input"))
    assert both.verdict == "unknown" and any("NETMAP" in d for d in both.depends_on)

def test_the_walk_is_sure_only_of_what_the_engine_answers():
    """The packet-space walk holds every address and port a range may give;
    what it is sure of for a translated packet, the engine (which knows the
    one the kernel gives) answers too — here for SNAT ports kept and
    picked as a later postrouting filter sees them."""
    import dataclasses
    import random

    from ruleanalyzer.diff import packet_point
    from ruleanalyzer.space.reach import analyze

    text = NFT.replace("  chain post {", """  chain late {
    type filter hook postrouting priority 200; policy accept;
    tcp sport 2000-2004 drop
  }
  chain post {""").replace("snat to 198.51.100.0-198.51.100.127",
                           "snat to 198.51.100.0-198.51.100.127 : 2000-2010")
    ruleset = loads(text, dialect="nftables")
    reach = analyze(ruleset, "forward", 4)
    rnd = random.Random(5)
    sure = 0
    for _ in range(200):
        src = f"{rnd.choice(['203.0.113', '198.51.100'])}.{rnd.randrange(1, 255)}"
        result = evaluate(ruleset, make_packet(src=src, dst="192.0.2.1", sport=rnd.choice([2003, 2007, 40000]),
                                               dport=rnd.choice([80, 6005, 6004, 7000]), flags="SYN",
                                               state="new", hook="input"))
        made = result.packet
        status = {"dnat"} | ({"snat"} if made.src != ipaddress.ip_address(src) else set())
        point = packet_point(reach.space, dataclasses.replace(made, ct_status=frozenset(status),
                                                              hook="forward")).node
        for fate, verdict in (("accepted", "accept"), ("dropped", "drop")):
            if getattr(reach, fate).lower.node & point != reach.space.false:
                sure += 1
                assert result.verdict == verdict, (src, made, result.verdict, fate)
    assert sure > 150


def test_a_random_masquerade_port_is_answered_per_kind_of_port():
    """``MASQUERADE --random-fully`` picks a port of the packet's own kind
    (below 512, below 1024, the rest): where a later rule tells those apart,
    the answer depends on the pick — and the batch answers as the engine."""
    text = """table ip t {
  chain post {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan" masquerade fully-random
  }
  chain late {
    type filter hook postrouting priority 200; policy accept;
    tcp sport 30000-39999 drop
  }
}
"""
    ruleset = loads(text, dialect="nftables")
    packets = [make_packet(src="10.0.0.2", dst="203.0.113.5", sport=sport, dport=443, flags="SYN", state="new",
                           hook="forward", oif="wan") for sport in (80, 700, 40000, 30500) * 30]
    single = [evaluate(ruleset, p) for p in packets]
    assert [r.verdict for r in single[:4]] == ["accept", "accept", "unknown", "unknown"]
    assert any("from 1024-65535" in d for d in single[2].depends_on)
    batch = evaluate_many(ruleset, packets)
    assert [(r.verdict, r.depends_on) for r in batch] == [(r.verdict, r.depends_on) for r in single]


def test_the_walk_holds_every_port_a_random_masquerade_may_pick():
    """A later rule on the source port is reachable by the packets a
    ``fully-random`` masquerade may make (the walk once kept their port)."""
    from ruleanalyzer.space.reach import analyze

    ruleset = loads("""table ip t {
  chain post {
    type nat hook postrouting priority srcnat; policy accept;
    tcp sport 40000 masquerade fully-random
  }
  chain late {
    type filter hook postrouting priority 200; policy accept;
    ct state new ct status snat tcp sport 30000-39999 drop
  }
}
""", dialect="nftables")
    reach = analyze(ruleset, "output", 4)
    late = next(c for t in ruleset.tables for c in t.chains.values() if c.name == "late").rules[0]
    assert not reach.is_unreachable(late)


def test_a_range_written_backwards():
    """nft refuses a backwards range, iptables-restore a backwards port
    range (both checked on this machine's tools); iptables takes a
    backwards address range, which the kernel's arithmetic wraps round: the
    walk must then hold the address the engine gives, not an empty image."""
    import dataclasses

    import pytest

    from ruleanalyzer.diff import packet_point
    from ruleanalyzer.errors import RuleAnalyzerError
    from ruleanalyzer.space.reach import analyze

    with pytest.raises(RuleAnalyzerError, match="runs backwards"):
        loads("table ip t {\n chain p {\n  type nat hook prerouting priority -100;\n"
              "  tcp dport 1 dnat to 10.0.0.4-10.0.0.1\n }\n}\n", dialect="nftables")
    with pytest.raises(RuleAnalyzerError, match="runs backwards"):
        loads("*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp -j DNAT --to-destination 10.0.0.1:90-80\n"
              "COMMIT\n", dialect="iptables")
    ruleset = loads("*nat\n:PREROUTING ACCEPT [0:0]\n"
                    "-A PREROUTING -p tcp -j DNAT --to-destination 10.0.0.4-10.0.0.1\nCOMMIT\n"
                    "*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n", dialect="iptables")
    reach = analyze(ruleset, "forward", 4)
    for k in range(1, 20):
        result = _ask(ruleset, f"203.0.113.{k}", 80)
        made = packet_point(reach.space, dataclasses.replace(result.packet, ct_status=frozenset({"dnat"}),
                                                             hook="forward")).node
        assert reach.accepted.upper.node & made != reach.space.false, result.packet.dst


def test_masked_conntrack_flags_read_as_the_flags_they_name():
    """``ct status & dnat == dnat`` is how nft lists a DNAT-status test; it
    was an error ('a value to compare with is missing': ``dnat`` read as a
    statement), and any mask on ct status or ct state was 'unknown'."""
    def verdict(rule: str, dst: str) -> str:
        ruleset = loads("table ip t {\n chain out {\n  type nat hook output priority -100;\n"
                        "  ip daddr 10.9.0.0/24 udp dport 5000 dnat to 10.9.0.1:5000\n }\n"
                        f" chain f {{\n  type filter hook output priority 0; policy accept;\n  {rule} drop\n }}\n}}\n",
                        dialect="nftables")
        return evaluate(ruleset, make_packet(src="10.1.0.1", dst=dst, proto="udp", dport=5000,
                                             hook="output", state="new")).verdict
    # to .2 the DNAT translates (status dnat); to .1 it changes nothing (no status)
    assert [verdict("ct status & dnat == dnat", d) for d in ("10.9.0.2", "10.9.0.1")] == ["drop", "accept"]
    assert [verdict("ct status & dnat == 0", d) for d in ("10.9.0.2", "10.9.0.1")] == ["accept", "drop"]
    assert [verdict("ct status & (dnat|snat) != dnat", d) for d in ("10.9.0.2", "10.9.0.1")] == \
        ["accept", "drop"]
    assert verdict("ct state & (established|related) != 0", "10.9.0.2") == "accept"
    assert verdict("ct state & new == new", "10.9.0.2") == "drop"


def test_a_translation_that_changes_nothing_sets_no_status():
    """A connection already at the address and port a DNAT or SNAT gives
    is left as it is, and gets no DNAT/SNAT status (``nf_nat_setup_info``
    sets it only where the tuple changes; found by the random kernel test,
    ``tests/kernel/test_kernel_nat_random.py``): a later ``ct status dnat``
    rule does not match it. The walk holds the packet as it was too."""
    import dataclasses

    from ruleanalyzer.diff import packet_point
    from ruleanalyzer.space.reach import analyze

    text = """table ip t {
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
    tcp dport 80 dnat to 10.9.9.5
    tcp dport 81 dnat to 10.9.9.0-10.9.9.3
    tcp dport 82 dnat to 10.9.9.6 : 8000-8010
    ip daddr 10.7.0.0/24 dnat ip prefix to 10.9.7.0/24
  }
  chain forwarding {
    type filter hook forward priority filter; policy accept;
    ct status dnat drop
  }
}
"""
    ruleset = loads(text, dialect="nftables")
    reach = analyze(ruleset, "forward", 4)
    # which source the hash sends to 10.9.9.2 itself
    src = next(f"198.51.100.{k}" for k in range(1, 255)
               if pick_address(int(ipaddress.ip_address(f"198.51.100.{k}")), int(ipaddress.ip_address("10.9.9.2")),
                               int(ipaddress.ip_address("10.9.9.0")), int(ipaddress.ip_address("10.9.9.3")), 4,
                               translate_dst=True) == int(ipaddress.ip_address("10.9.9.2")))
    for dst, dport, verdict in (("10.9.9.5", 80, "accept"), ("10.9.9.4", 80, "drop"), ("10.9.9.2", 81, "accept"),
                                ("10.9.9.6", 82, "drop"), ("10.9.9.6", 8005, "drop"),
                                ("10.9.7.9", 5, "accept"), ("10.7.0.9", 5, "drop")):
        if dport == 8005:
            text82 = text.replace("tcp dport 82 dnat", "tcp dport 8005 dnat")
            rs = loads(text82, dialect="nftables")
            result = evaluate(rs, make_packet(src=src, dst=dst, dport=dport, flags="SYN", state="new",
                                              hook="forward"))
            assert result.verdict == "accept", result.trace  # 10.9.9.6:8005 is inside 8000-8010: kept
            continue
        result = evaluate(ruleset, make_packet(src=src, dst=dst, dport=dport, flags="SYN", state="new",
                                               hook="forward"))
        assert result.verdict == verdict, (dst, dport, result.verdict)
        status = frozenset() if verdict == "accept" else frozenset({"dnat"})
        point = packet_point(reach.space, dataclasses.replace(result.packet, ct_status=status)).node
        fate = "accepted" if verdict == "accept" else "dropped"
        assert getattr(reach, fate).upper.node & point != reach.space.false, (dst, dport)
    # the same for SNAT: a source already at the address the rule gives
    snat = loads("""table ip t {
  chain post {
    type nat hook postrouting priority srcnat; policy accept;
    snat to 198.51.100.7
  }
  chain late {
    type filter hook postrouting priority 200; policy accept;
    ct status snat drop
  }
}
""", dialect="nftables")
    for source, verdict in (("198.51.100.7", "accept"), ("198.51.100.8", "drop")):
        result = evaluate(snat, make_packet(src=source, dst="203.0.113.5", dport=80, flags="SYN", state="new",
                                            hook="forward"))
        assert result.verdict == verdict, (source, result.trace)


def test_a_redirected_packet_is_delivered_even_on_the_forward_path():
    """REDIRECT writes an address of the interface the packet came in on:
    a packet to another host (``hook forward``) that a REDIRECT meets is
    delivered to this host and judged by INPUT, never forwarded (the
    engine judged it by FORWARD and the walk was sure of FORWARD's
    verdict). The walk holds it in INPUT's sets."""
    import dataclasses

    from ruleanalyzer.diff import packet_point
    from ruleanalyzer.space.reach import analyze, analyze_hooks

    ruleset = loads("""*nat
:PREROUTING ACCEPT [0:0]
-A PREROUTING -d 10.50.0.1 -p tcp -j REDIRECT --to-ports 8080
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
-A INPUT -p tcp --dport 8080 -m conntrack --ctstate DNAT -j DROP
-A FORWARD -j ACCEPT
COMMIT
""", dialect="iptables")
    result = evaluate(ruleset, make_packet(src="198.51.100.9", dst="10.50.0.1", dport=80, flags="SYN", state="new",
                                           hook="forward"))
    assert (result.verdict, result.outcome, result.decided_by.chain.name) == ("drop", "dropped", "INPUT")
    other = evaluate(ruleset, make_packet(src="198.51.100.9", dst="10.50.0.2", dport=80, flags="SYN", state="new",
                                          hook="forward"))
    assert (other.verdict, other.outcome) == ("accept", "forwarded")
    made = make_packet(src="198.51.100.9", dst="10.50.0.1", dport=8080, flags="SYN", state="new", hook="forward")
    made = dataclasses.replace(made, ct_status=frozenset({"dnat"}))
    forward = analyze(ruleset, "forward", 4)
    point = packet_point(forward.space, made).node
    assert forward.accepted.lower.node & point == forward.space.false  # (not surely forwarded)
    both = analyze_hooks(ruleset, ("input", "forward"), 4)["input"]
    point = packet_point(both.space, dataclasses.replace(made, hook="input")).node
    assert both.dropped.lower.node & point != both.space.false
