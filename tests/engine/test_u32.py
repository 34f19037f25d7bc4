"""u32 idioms decoded exactly (engine and packet space); the rest unknown."""

import pytest

from ruleanalyzer import evaluate, loads, make_packet
from ruleanalyzer.space.encode import encode
from ruleanalyzer.space.fields import Layout
from ruleanalyzer.space.packetset import Space
from ruleanalyzer.space.witness import witness

V4 = dict(src="192.0.2.1", dst="198.51.100.1")


def rules(*lines):
    return loads("*filter\n:INPUT ACCEPT [0:0]\n" + "".join(f"-A INPUT {x}\n" for x in lines) + "COMMIT\n",
                 dialect="iptables")


def verdict(ruleset, **packet):
    return evaluate(ruleset, make_packet(**V4, **packet)).verdict


@pytest.mark.parametrize("expr, drops, passes", [
    # the TCP flags byte, reached through the IP header length
    ('"0>>22&0x3C@12>>16&0x3F=0x02"', {"dport": 22, "flags": "SYN"}, {"dport": 22, "flags": "SYN,ACK"}),
    ('"0>>22&0x3C@12>>16&0x17=0x02"', {"dport": 22, "flags": "SYN,PSH"}, {"dport": 22, "flags": "ACK"}),
    # the TOS byte: DSCP EF, any ECN
    ('"0>>16&0xFC=0xb8"', {"dport": 22, "dscp": 46}, {"dport": 22, "dscp": 10}),
    # non-first fragments, and Don't Fragment
    ('"4&0x1FFF=1:0x1FFF"', {"proto": "udp", "frag": 185}, {"proto": "udp", "dport": 53}),
    ('"4&0x4000=0x4000"', {"dport": 22}, {"dport": 22, "df": "no"}),
    # total length and TTL
    ('"0&0xFFFF=0:40"', {"dport": 22}, {"dport": 22, "length": 41}),
    ('"8>>24=0:1"', {"dport": 22, "ttl": 1}, {"dport": 22}),
])
def test_idioms_are_decided(expr, drops, passes):
    ruleset = rules(f"-m u32 --u32 {expr} -j DROP")
    drops.setdefault("proto", "tcp")
    passes.setdefault("proto", "tcp")
    assert verdict(ruleset, **drops) == "drop"
    assert verdict(ruleset, **passes) == "accept"
    negated = rules(f"-m u32 ! --u32 {expr} -j DROP")
    assert verdict(negated, **drops) == "accept"
    assert verdict(negated, **passes) == "drop"


def test_fixed_offsets_past_the_header_assume_no_options():
    ruleset = rules('-p tcp -m u32 --u32 "20&0xFFFF=22" -j DROP')
    assert verdict(ruleset, proto="tcp", dport=22) == "drop"
    assert verdict(ruleset, proto="tcp", dport=22, ip_options="yes") == "unknown"


def test_what_the_model_does_not_hold_stays_unknown():
    seq = rules('-p tcp -m u32 --u32 "0>>22&0x3C@4=0x29" -j DROP')
    assert verdict(seq, proto="tcp", dport=22) == "unknown"
    # the flags idiom on a UDP packet reads payload bytes
    flags = rules('-m u32 --u32 "0>>22&0x3C@12>>16&0x3F=0x02" -j DROP')
    assert verdict(flags, proto="udp", dport=53) == "unknown"


def test_the_packet_space_holds_the_same_set():
    ruleset = rules('-p tcp -m u32 --u32 "0>>22&0x3C@12>>16&0x3F=0x02" -j DROP')
    rule = next(iter(ruleset.rules()))
    space = Space(Layout.for_ruleset(ruleset))
    lower = encode(rule.matches[-1], space, bound="lower")
    example = witness(lower & encode(rule.matches[0], space), "input")
    assert example.proto == 6 and example.flags & 0x3F == 0x02
    assert evaluate(ruleset, example).verdict == "drop"
