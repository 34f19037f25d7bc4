"""Batch answers (each class of packets evaluated once) equal single answers."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from ruleanalyzer import loads
from ruleanalyzer.engine import Evaluator
from ruleanalyzer.engine.batch import BatchEvaluator, Classes, evaluate_many
from ruleanalyzer.loader import load
from ruleanalyzer.packets import make_packet

#: NAT to constants, a NAT target inside a matched network, marks, ranges,
#: multiport, iprange, negations, an interface: everything the classes rely on.
RULES = """*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 198.51.100.10/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.0.5:8080
-A PREROUTING -d 198.51.100.0/24 -p tcp -m tcp --dport 443 -j DNAT --to-destination 10.0.0.6
-A POSTROUTING -s 10.0.0.0/8 -o eth0 -j SNAT --to-source 198.51.100.1
-A POSTROUTING -s 10.1.0.0/16 -p udp -j MASQUERADE --to-ports 5000
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:web - [0:0]
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -s 10.3.0.0/16 -j MARK --set-xmark 0x1/0xff
-A INPUT -m mark --mark 0x1/0xff -p tcp -m multiport --dports 22,2000:2100 -j ACCEPT
-A INPUT ! -s 192.0.2.0/25 -p udp -m udp --dport 53 -j ACCEPT
-A INPUT -m iprange --src-range 192.0.2.10-192.0.2.77 -p tcp --sport 1024:65535 -j web
-A INPUT -i eth1 -p icmp -j ACCEPT
-A INPUT -m addrtype --dst-type MULTICAST -j DROP
-A FORWARD -d 10.0.0.5/32 -p tcp -m tcp --dport 8080 -j ACCEPT
-A FORWARD -d 10.0.0.6/32 -p tcp -m tcp --dport 443 -j ACCEPT
-A FORWARD -s 10.0.0.0/8 -o eth0 -j ACCEPT
-A web -p tcp -m tcp --dport 80 -j ACCEPT
-A web -p tcp -m tcp --dport 8080 -j REJECT
COMMIT
"""

ADDRESSES = ("10.0.0.5", "10.0.0.6", "10.0.0.7", "10.1.2.3", "10.3.4.5", "10.3.4.6", "192.0.2.10",
             "192.0.2.11", "192.0.2.77", "192.0.2.78", "192.0.2.200", "198.51.100.1", "198.51.100.10",
             "198.51.100.11", "203.0.113.9", "224.0.0.251", "255.255.255.255")


def packets(n: int, seed: int):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        proto = rng.choice(("tcp", "tcp", "udp", "icmp"))
        fields = {"src": rng.choice(ADDRESSES), "dst": rng.choice(ADDRESSES), "proto": proto,
                  "hook": rng.choice(("input", "forward", "output")),
                  "state": rng.choice(("new", "established", "auto")), "id": str(i)}
        if proto != "icmp":
            fields["dport"] = rng.choice((22, 53, 80, 443, 2000, 2050, 2101, 5000, 8080, 9999))
            fields["sport"] = rng.choice((53, 1023, 1024, 5000, 40000, 65535))
        if fields["hook"] != "output":
            fields["iif"] = rng.choice(("eth0", "eth1", None))
        if fields["hook"] != "input":
            fields["oif"] = rng.choice(("eth0", "eth1", None))
        out.append(make_packet(**{k: v for k, v in fields.items() if v is not None}))
    return out


def test_batch_answers_equal_single_answers():
    ruleset = loads(RULES, dialect="iptables", name="batch.rules")
    sample = packets(600, seed=3)
    batch = evaluate_many(ruleset, sample)  # the first 64 one by one, then by class
    single = Evaluator(ruleset)
    for packet, answer in zip(sample, batch):
        assert answer == single.evaluate(packet), packet
    # the classes did merge packets (else this test proves nothing about them)
    classes = Classes(ruleset)
    assert len({classes.key(p) for p in sample}) < len(set(sample))


def test_a_match_the_classes_do_not_know_keeps_its_field_exact():
    ruleset = loads(RULES.replace("-A web -p tcp -m tcp --dport 80 -j ACCEPT",
                                  "-A web -p tcp -m tcp --dport 80 -m u32 --u32 \"0>>22&0x3C@12>>26&0x3F=0x10\" "
                                  "-j ACCEPT"), dialect="iptables", name="u32.rules")
    assert Classes(ruleset).bounds["dport"] is not None  # u32 reads no named field
    from ruleanalyzer.model import BitsMatch, Rule

    rule = ruleset.tables[-1].chains["web"].rules[0]
    tricky = Rule((BitsMatch("dport", 0x1, frozenset({0})),), rule.action, rule.location)
    ruleset.tables[-1].chains["web"].rules.append(tricky)
    assert Classes(ruleset).bounds["dport"] is None


CHAIR = (Path(__file__).resolve().parents[3] / "shared" / "corpus" / "iptables" / "net-network"
         / "configs_chair_for_Network_Architectures_and_Services__iptables-save-2016-06-27_16-29-01")


@pytest.mark.skipif(not CHAIR.is_file(), reason="corpus not present (../shared/corpus)")
def test_batch_equals_single_on_the_largest_real_dump():
    ruleset = load(CHAIR)
    rng = random.Random(11)
    import re

    text = CHAIR.read_text(errors="replace")
    # few hosts and ports, so that packets share classes (sources ports vary)
    hosts = rng.sample(sorted(set(re.findall(r"-[sd] (\d+\.\d+\.\d+\.\d+)", text))), 10)
    ports = rng.sample(sorted({int(p) for p in re.findall(r"--dport (\d+)", text)}), 8)
    sample = []
    for i in range(300):
        hook = rng.choice(("input", "forward", "output"))
        fields = {"src": rng.choice(hosts), "dst": rng.choice(hosts), "proto": "tcp",
                  "dport": rng.choice(ports), "sport": rng.randrange(1024, 65536), "hook": hook,
                  "state": "new"}
        sample.append(make_packet(**fields))
    single = Evaluator(ruleset)
    batch = BatchEvaluator(ruleset)
    batch.classes = Classes(ruleset)  # from the first packet on (300 would not pay for them)
    hits = 0
    for packet in sample:
        hits += batch.classes.key(packet) in batch._memo
        assert batch.evaluate(packet) == single.evaluate(packet)
    assert hits  # some packets were answered from their class


def test_packets_that_seldom_share_a_class_are_answered_one_by_one_alike():
    ruleset = loads(RULES, dialect="iptables", name="batch.rules")
    sample = packets(200, seed=5)
    batch = BatchEvaluator(ruleset)
    batch.classes = Classes(ruleset)
    batch._asked, batch._hits = 3999, 0  # as after 4,000 packets with no class shared
    single = Evaluator(ruleset)
    for packet in sample:
        assert batch.evaluate(packet) == single.evaluate(packet)
    assert not batch.memoize and not batch._memo
