"""nftables writes a mark computed from the mark itself — ``meta mark set
meta mark | 0x4000`` (kube-proxy's mark-for-masquerade), ``& C``, ``^ C``
— and the kernel runs it as ``(mark & ~mask) ^ value``: the model reads
them as that write, exactly (tests/kernel/gen_nftables.py puts them in the
random rulesets compared with the kernel). A mark computed from anything
else (``meta mark set ct mark | 1``) is not worked out: the engine's answer
and the packet space say it is unknown, never what an unchanged mark gives.
"""

from __future__ import annotations

import json

import pytest

from ruleanalyzer import loads
from ruleanalyzer.engine import evaluate
from ruleanalyzer.model import AddressMatch, AnyOf, OpaqueMatch, SetField, UnknownAction
from ruleanalyzer.packets import make_packet
from ruleanalyzer.space.reach import analyze

RULESET = """table inet f {{
  chain input {{ type filter hook input priority 0; policy drop;
    {setter}
    meta mark & 0x1 == 0x1 accept
  }}
}}
"""

SSH = dict(src="192.0.2.1", dst="198.51.100.1", dport=22, flags="SYN")


def _effect(setter: str):
    rs = loads(RULESET.format(setter=setter), dialect="nftables")
    return next(iter(rs.chains())).rules[0].effects


@pytest.mark.parametrize(("setter", "value", "mask"), [
    ("meta mark set meta mark | 0x4000", 0x4000, 0x4000),
    ("meta mark set meta mark or 0x4000", 0x4000, 0x4000),
    ("meta mark set meta mark & 0xffffbfff", 0, 0x4000),
    ("meta mark set meta mark ^ 0x4000", 0x4000, 0),
    ("ct mark set ct mark | 0x10", 0x10, 0x10),
])
def test_the_mark_computed_from_itself_is_a_mark_write(setter, value, mask):
    field = "ctmark" if setter.startswith("ct") else "mark"
    assert _effect(setter) == (SetField(field, value=value, mask=mask),)


MARK = {"meta": {"key": "mark"}}


@pytest.mark.parametrize(("value", "write"), [
    ({"|": [MARK, 16384]}, SetField("mark", value=0x4000, mask=0x4000)),
    # iptables-nft's --set-xmark 0x6600/0xffff00ff: (mark & 0xff00) ^ 0x6600
    ({"^": [{"&": [MARK, 0xFF00]}, 0x6600]}, SetField("mark", value=0x6600, mask=0xFFFF00FF)),
    ({"|": [{"&": [MARK, "0xff"]}, 0x100]}, SetField("mark", value=0x100, mask=0xFFFFFF00)),
    ({"|": [MARK, 0]}, SetField("mark", value=0, mask=0)),  # the mark as it was
    ({"|": [MARK, {"meta": {"key": "iif"}}]}, None),  # not a constant: unknown
])
def test_the_json_form_reads_the_same(value, write):
    body = {"nftables": [
        {"table": {"family": "inet", "name": "f"}},
        {"chain": {"family": "inet", "table": "f", "name": "c"}},
        {"rule": {"family": "inet", "table": "f", "chain": "c", "expr": [
            {"mangle": {"key": MARK, "value": value}}]}}]}
    rs = loads(json.dumps(body), dialect="nft-json")
    effects = next(iter(rs.chains())).rules[0].effects
    if write is None:
        assert isinstance(effects[0], UnknownAction)
    else:
        assert effects == (write,)


@pytest.mark.parametrize(("setter", "verdict", "none"), [
    ("meta mark set meta mark | 0x1", "accept", "dropped"),   # 0 | 1 = 1; every mark gets bit 0
    ("meta mark set meta mark ^ 0x1", "accept", None),        # 0 ^ 1 = 1
    ("meta mark set 0x1\n    meta mark set meta mark & 0xfffffffe", "drop", "accepted"),  # 1 & ~1 = 0
])
def test_engine_and_space_follow_the_computed_mark(setter, verdict, none):
    # (these were read as an unknown write that the engine and the walk left
    # alone: a packet with mark 0 went on unmarked and was dropped)
    rs = loads(RULESET.format(setter=setter), dialect="nftables")
    assert evaluate(rs, make_packet(**SSH)).verdict == verdict
    reach = analyze(rs, "input", 4)
    if none:
        assert getattr(reach, none).upper.is_empty()


def test_a_mark_computed_from_another_field_is_unknown_where_it_is_read():
    setter = "meta mark set ct mark | 0x1"
    effect = _effect(setter)[0]
    assert isinstance(effect, UnknownAction) and effect.field == "mark"
    rs = loads(RULESET.format(setter=setter), dialect="nftables")
    answer = evaluate(rs, make_packet(**SSH))
    assert answer.verdict == "unknown"
    assert {a.verdict for a in answer.alternatives} == {"accept", "drop"}
    reach = analyze(rs, "input", 4)
    assert not reach.undecided.lower.is_empty()  # every packet: unknown, not dropped
    assert reach.dropped.lower.is_empty()


def test_a_computed_mark_no_rule_reads_decides_nothing():
    # (nftables' own tests: ``meta mark set ct mark & 0xffff0000 | meta mark
    # & 0x0000ffff`` under policy accept: every packet is accepted whatever
    # its mark; an unknown here would be a lazy one)
    text = """table ip t {
  chain c { type filter hook input priority filter; policy accept;
    meta mark set ct mark & 0xffff0000 | meta mark & 0x0000ffff
    tcp dport 22 drop
  }
}
"""
    rs = loads(text, dialect="nftables")
    assert evaluate(rs, make_packet(**SSH)).verdict == "drop"
    assert evaluate(rs, make_packet(**{**SSH, "dport": 80})).verdict == "accept"
    reach = analyze(rs, "input", 4)
    assert reach.undecided.upper.is_empty()


def test_after_a_computed_mark_any_mark_may_be_read():
    # The walk held the packets' old mark in its upper set past the write:
    # the first rule took every marked packet off, so the drop after the
    # write was "unreachable" and nothing "could be dropped". The kernel
    # drops a packet whose ct mark is 4 or 5 there; the engine says unknown.
    text = """table ip t {
  chain c { type filter hook input priority filter; policy accept;
    meta mark != 0x0 accept
    meta mark set ct mark | 0x1
    meta mark 0x5 drop
  }
}
"""
    rs = loads(text, dialect="nftables")
    answer = evaluate(rs, make_packet(**SSH))
    assert answer.verdict == "unknown"
    assert {a.verdict for a in answer.alternatives} == {"accept", "drop"}
    reach = analyze(rs, "input", 4)
    drop = next(iter(rs.chains())).rules[2]
    assert not reach.is_unreachable(drop)
    assert not reach.rule_sets(drop).matched_upper.is_empty()
    assert not reach.dropped.upper.is_empty()
    assert reach.dropped.lower.is_empty()


@pytest.mark.parametrize(("rule", "guard"), [
    ("meta mark set ip daddr map { 198.51.100.2 : 0x2 }", None),            # a miss: the mark as it was
    ("meta mark set ip daddr map { 198.51.100.2 : 0x2 } counter", None),
    ("meta mark set ip daddr map { 198.51.100.2 : 0x2 } accept", AddressMatch),  # a miss: no accept
    ("meta mark set ip daddr map { 198.51.100.2 : 0x2, 198.51.100.3 : 0x3 } accept", AnyOf),
    ("meta mark set ip daddr map { 198.51.100.2 : 0x2 } meta mark set 0x1", AddressMatch),
    ("meta mark set ip daddr map @runtime accept", OpaqueMatch),              # elements not known
])
def test_a_map_lookup_that_may_miss_ends_the_rule(rule, guard):
    # nft_lookup: a key with no element ends the rule (NFT_BREAK), nothing
    # after it runs; the engine said accept for a packet to 198.51.100.9
    # (tests/kernel/test_kernel_nft_havoc.py: 33 of 60 probes against the kernel)
    text = ("table ip t {\n  map runtime { type ipv4_addr : mark; }\n"
            "  chain c { type filter hook input priority filter; policy drop;\n"
            f"    {rule}\n  }}\n}}\n")
    rs = loads(text, dialect="nftables")
    (parsed,) = next(iter(rs.chains())).rules
    assert [type(m) for m in parsed.matches] == ([guard] if guard else [])
    if rule.endswith("accept") and guard is not OpaqueMatch:
        hit, miss = (make_packet(**{**SSH, "dst": d}) for d in ("198.51.100.2", "198.51.100.9"))
        assert evaluate(rs, hit).verdict == "accept" and evaluate(rs, miss).verdict == "drop"
        reach = analyze(rs, "input", 4)
        sp = reach.space
        to_hit = sp.wrap(sp.eq("dst", int(hit.dst)) & sp.valid & reach.arriving.node)
        assert (reach.accepted.lower & to_hit) == to_hit
        assert reach.accepted.upper & sp.wrap(sp.eq("dst", int(miss.dst))) == reach.space.empty()
