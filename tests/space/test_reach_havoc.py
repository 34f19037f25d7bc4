"""A field set to a value not worked out (nftables' ``meta mark set ip daddr
map @m``, ``ct mark set ct mark | meta mark``): the packet goes on with some
value of it. The engine holds the field unknown and its answer is certain
where every way the rules reading it go ends in the same verdict; the walk
goes on with every value, tagged, and counts a tagged packet as surely
accepted (dropped) where it is so for every value (``_Walker._havoc``).
Here the two agree, packet by packet, on rulesets whose writes are followed
by reads."""

from __future__ import annotations

import dataclasses
import ipaddress

import pytest

from ruleanalyzer import loads
from ruleanalyzer.engine import evaluate
from ruleanalyzer.packets import make_packet
from ruleanalyzer.space.reach import analyze

HEAD = """table ip t {{
  map m {{ type ipv4_addr : mark; flags interval;
    elements = {{ 198.51.100.2 : 0x2, 198.51.100.3 : 0x3 }} }}
  chain c {{ type filter hook input priority filter; policy {policy};
{body}
  }}
}}
"""

#: (name, policy, body, expected verdict for every packet below)
CASES = [
    # nftables' interval_map_delete dump: every way ends accepted
    ("reads that all accept", "accept",
     "    meta mark set ip daddr map @m\n    meta mark 0x2 accept\n    meta mark 0x3 accept\n    counter",
     "accept"),
    ("reads that all drop", "drop",
     "    meta mark set ip daddr map @m\n    meta mark 0x2 drop\n    meta mark 0x3 drop", "drop"),
    ("reads that decide differently", "drop",
     "    meta mark set ip daddr map @m\n    meta mark 0x2 accept", "unknown"),
    ("a computed value read bit by bit", "drop",
     "    meta mark set ct mark | 0x1\n    meta mark & 0x1 == 0x1 accept", "unknown"),
    ("a constant written after it", "drop",
     "    meta mark set ct mark | 0x1\n    meta mark set 0x5\n    meta mark 0x5 accept", "accept"),
    ("a constant written after it, read before", "accept",
     "    meta mark set ct mark | 0x1\n    meta mark 0x7 drop\n    meta mark set 0x5\n    meta mark 0x5 accept",
     "unknown"),
    # (both coarse here: the engine holds the mark unknown after a write of
    # some of its bits, the walk asks of a tagged packet every value of all
    # of them; the kernel accepts)
    ("bits written after it decide", "drop",
     "    meta mark set ip daddr map @m\n    meta mark set meta mark | 0x10\n"
     "    meta mark & 0x10 == 0x10 accept", "unknown"),
    ("bits written after it do not decide", "drop",
     "    meta mark set ip daddr map @m\n    meta mark set meta mark | 0x10\n"
     "    meta mark & 0x1 == 0x1 accept", "unknown"),
    ("written twice", "accept",
     "    meta mark set ip daddr map @m\n    meta mark set ct mark | 0x1\n    meta mark 0x2 drop", "unknown"),
    ("written twice, every way the same", "drop",
     "    meta mark set ip daddr map @m\n    meta mark set ct mark | 0x1\n    meta mark 0x2 drop", "drop"),
    ("ct mark: reads that all accept", "accept",
     "    ct mark set ip daddr map @m\n    ct mark 0x2 accept\n    ct mark 0x3 accept", "accept"),
    ("ct mark: reads that decide differently", "accept",
     "    ct mark set ip daddr map @m\n    ct mark 0x2 drop", "unknown"),
    ("ct mark: a constant written after it", "drop",
     "    ct mark set ip daddr map @m\n    ct mark set 0x9\n    ct mark 0x9 accept", "accept"),
    ("the mark's write leaves the ct mark's reads certain", "drop",
     "    meta mark set ip daddr map @m\n    meta mark 0x2 accept\n    ct mark 0x0 accept\n"
     "    ct mark != 0x0 accept", "accept"),
]

PACKETS = [dict(src="192.0.2.1", dst=dst, dport=22, flags="SYN", mark=mark)
           for dst in ("198.51.100.1", "198.51.100.2", "198.51.100.3") for mark in (0, 2, 0x11)]


def _walk_verdict(reach, packet, written=("mark",)) -> str:
    """accept / drop where the walk says every packet like ``packet`` (its
    family, addresses, port, mark, ct mark and state; any other field) is
    surely so, else unknown. The verdict sets hold packets as the verdict
    found them: the fields the rules write (``written``, which no rule
    reads before it writes them here) are read out of them."""
    sp = reach.space
    values = dict(mark=packet.mark, ctmark=packet.ctmark)
    node = (sp.family(4) & sp.eq("src", int(packet.src)) & sp.eq("dst", int(packet.dst))
            & sp.eq("proto", 6) & sp.eq("dport", packet.dport)
            & sp.eq("state", sp.spec("state").names.index("new")))
    for name, value in values.items():
        if name not in written:
            node &= sp.eq(name, value)
    like = sp.wrap(node & sp.valid & reach.arriving.node)
    assert not like.is_empty()
    gone = [v for name in written for v in sp.spec(name).bit_vars]

    def seen(sets):
        return sp.wrap(sp.exist(gone, sets.node))

    for verdict, sets in (("accept", reach.accepted), ("drop", reach.dropped)):
        if (seen(sets.lower) & like) == like:
            return verdict
        assert not (seen(sets.lower) & like), f"partly surely {verdict}"
    assert (seen(reach.undecided.upper) & like) == like
    return "unknown"


@pytest.mark.parametrize(("name", "policy", "body", "expected"), CASES, ids=[c[0] for c in CASES])
def test_walk_and_engine_agree_after_a_write_not_worked_out(name, policy, body, expected):
    rs = loads(HEAD.format(policy=policy, body=body), dialect="nftables")
    reach = analyze(rs, "input", 4)
    written = tuple(f for f, text in (("mark", "meta mark set"), ("ctmark", "ct mark set")) if text in body)
    for fields in PACKETS:
        for ctmark in (0, 2):
            packet = dataclasses.replace(make_packet(**fields), ctmark=ctmark)
            engine = evaluate(rs, packet).verdict
            walk = _walk_verdict(reach, packet, written)
            assert engine == walk == expected, (packet.dst, packet.mark, ctmark, engine, walk)


def test_a_tagged_packet_is_surely_reaching_only_for_every_value():
    # the rules' own sets are read untagged too: after the write every packet
    # surely reaches the first read, none surely matches it, and the second
    # read is surely reached only by what is certain to pass the first
    text = HEAD.format(policy="accept", body="    meta mark set ip daddr map @m\n"
                       "    meta mark 0x2 drop\n    tcp dport 22 drop\n    counter")
    rs = loads(text, dialect="nftables")
    reach = analyze(rs, "input", 4)
    rules = next(iter(rs.chains())).rules
    sp = reach.space
    first, second = reach.rule_sets(rules[1]), reach.rule_sets(rules[2])
    assert first.reaching_lower == first.reaching_upper
    assert first.matched_lower.is_empty() and not first.matched_upper.is_empty()
    assert second.reaching_lower.is_empty() and not second.reaching_upper.is_empty()
    ssh = sp.wrap(sp.eq("dport", 22) & sp.eq("proto", 6)) & second.reaching_upper
    assert not ssh.is_empty() and (reach.dropped.lower & ssh) == ssh  # dropped either way
    # (dport 80: dropped with mark 2, else accepted: undecided, never sure)
    assert reach.accepted.lower.is_empty() and not reach.accepted.upper.is_empty()
    assert not reach.undecided.lower.is_empty()


def test_no_tag_where_no_rule_reads_the_field():
    text = HEAD.format(policy="accept", body="    meta mark set ip daddr map @m\n    tcp dport 22 drop")
    reach = analyze(loads(text, dialect="nftables"), "input", 4)
    assert "havoc" not in reach.space.layout.fields
    assert reach.undecided.upper.is_empty()


def test_the_upper_set_is_never_tagged():
    text = HEAD.format(policy="drop", body="    meta mark set ip daddr map @m\n    meta mark 0x2 accept")
    reach = analyze(loads(text, dialect="nftables"), "input", 4)
    sp = reach.space
    tag = sp.bdd.var("havoc:mark")
    for sets in (reach.accepted, reach.dropped, reach.undecided):
        for node in (sets.lower.node, sets.upper.node):
            assert sp.exist(["havoc:mark"], node & tag) == sp.exist(["havoc:mark"], node & ~tag)
    assert ipaddress.ip_address("198.51.100.2")  # (the map's key, for the reader)



def test_an_untagged_packet_is_never_undecided_by_its_own_mark():
    # the walk tags the packets a write not worked out reaches (dport 80
    # here), not those whose own mark decides their verdict
    text = HEAD.format(policy="drop", body="    tcp dport 22 meta mark 0x2 accept\n"
                       "    tcp dport 80 meta mark set ip daddr map @m\n    meta mark 0x3 accept")
    rs = loads(text, dialect="nftables")
    reach = analyze(rs, "input", 4)
    sp = reach.space
    ssh = sp.wrap(sp.eq("proto", 6) & sp.eq("dport", 22))
    web = sp.wrap(sp.eq("proto", 6) & sp.eq("dport", 80))
    assert (reach.undecided.lower & ssh).is_empty()
    assert not (reach.undecided.lower & web).is_empty()
    for fields in PACKETS:
        for dport in (22, 80):
            packet = make_packet(**{**fields, "dport": dport})
            written = ("mark",) if dport == 80 else ()
            assert evaluate(rs, packet).verdict == _walk_verdict(reach, packet, written)


def _like(sp, packet, state: str):
    """Raw node: the packets with ``packet``'s header fields, ``state`` and
    no mark (any interface and address type: the walk's sure sets must hold
    every one of them to speak for ``packet``)."""
    node = (sp.family(packet.src.version) & sp.eq("src", int(packet.src)) & sp.eq("dst", int(packet.dst))
            & sp.eq("proto", packet.proto) & sp.eq("ecn", packet.ecn) & sp.eq("dscp", packet.dscp)
            & sp.eq("ttl", packet.ttl) & sp.eq("length", packet.length) & sp.eq("mark", 0)
            & sp.eq("ctmark", 0) & sp.eq("fragment", 0) & sp.eq("state", sp.spec("state").names.index(state)))
    if packet.sport is not None:
        node &= sp.eq("sport", packet.sport) & sp.eq("dport", packet.dport)
    if packet.proto == 6:
        node &= sp.eq("flags", packet.flags)
    if packet.icmp_type is not None:
        node &= sp.eq("icmp_type", packet.icmp_type) & sp.eq("icmp_code", packet.icmp_code)
    return node


@pytest.mark.parametrize("seed", range(1, 52))
def test_the_walk_is_never_surer_than_the_engine_on_marks_from_maps(seed):
    # the kernel test's rulesets (tests/kernel/test_kernel_nft_havoc.py: the
    # engine agrees with the kernel there): where the walk says every packet
    # like a probe is surely accepted (dropped), the engine must not answer
    # otherwise for it
    from ruleanalyzer.engine.conntrack import resolve_state
    from tests.kernel.test_kernel_nft_havoc import generate_havoc

    case = generate_havoc(seed, 40)
    rs = loads(case.text, dialect="nftables")
    reach = analyze(rs, "input", case.family)
    sp = reach.space
    for probe in case.probes:
        packet = probe.model_packet()
        state = resolve_state(packet)[0]
        like = sp.wrap(_like(sp, packet, state) & sp.valid & reach.arriving.node)
        if like.is_empty():
            continue
        engine = evaluate(rs, packet).verdict
        for verdict, sets in (("accept", reach.accepted), ("drop", reach.dropped)):
            if (sets.lower & like) == like:
                assert engine in (verdict, "unknown"), (seed, probe.describe(), verdict, engine)
