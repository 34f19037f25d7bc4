"""The evaluator on rulesets built straight from model objects (no parser)."""

import ipaddress

import pytest

from ruleanalyzer.engine import evaluate
from ruleanalyzer.model import (ACK, CWR, ECE, SYN, Accept, AddressMatch, BitsMatch, Chain, Drop,
                                Goto, IntMatch, InterfaceMatch, Jump, Location, NameMatch, Nat,
                                Notrack, OpaqueMatch, Return, Rule, Ruleset, SetField, Table,
                                iptables_priority)
from ruleanalyzer.packets import make_packet

LOC = Location("t.rules", 1, 1)


def table(name="filter", family="ip", **policies):
    t = Table(name, family, dialect="iptables")
    for hook, policy in policies.items():
        prio = iptables_priority(name, hook)
        t.add_chain(Chain(hook.upper(), hook=hook, priority=prio, policy=policy,
                          kind="nat" if name == "nat" else "filter"))
    return t


def rule(*matches, action, text=""):
    return Rule(tuple(matches), action, LOC, text=text)


def dport(n):
    return IntMatch("dport", ((n, n),), text=f"--dport {n}")


TCP = IntMatch("proto", ((6, 6),), text="-p tcp")


def pkt(**kw):
    kw.setdefault("src", "192.0.2.1")
    kw.setdefault("dst", "198.51.100.1")
    kw.setdefault("dport", 22)
    return make_packet(**kw)


def ruleset(*tables):
    rs = Ruleset()
    for t in tables:
        rs.add_table(t)
    return rs


def test_policy_drop_and_accept_rule_decide():
    t = table(input="drop")
    t.chains["INPUT"].add(rule(TCP, dport(22), action=Accept()))
    rs = ruleset(t)
    ok = evaluate(rs, pkt())
    assert ok.verdict == "accept" and ok.decided_by.rule.index == 1
    no = evaluate(rs, pkt(dport=80))
    assert no.verdict == "drop" and no.decided_by.is_policy


def test_user_chain_return_and_goto():
    t = table(input="accept")
    t.add_chain(Chain("SUB"))
    t.add_chain(Chain("GO"))
    t.chains["SUB"].add(rule(dport(22), action=Return()))
    t.chains["SUB"].add(rule(action=Drop()))
    t.chains["GO"].add(rule(dport(23), action=Drop()))
    t.chains["INPUT"].add(rule(TCP, action=Jump("SUB")))
    t.chains["INPUT"].add(rule(dport(22), action=Goto("GO")))
    t.chains["INPUT"].add(rule(action=Drop()))
    rs = ruleset(t)
    # 22 returns from SUB, goes to GO, falls off GO -> back to INPUT's caller = policy accept.
    r = evaluate(rs, pkt(dport=22))
    assert r.verdict == "accept" and r.decided_by.is_policy
    r = evaluate(rs, pkt(dport=80))
    assert r.verdict == "drop" and r.decided_by.chain.name == "SUB"


def test_syn_ack_without_connection_is_invalid_not_new():
    t = table(input="drop")
    t.chains["INPUT"].add(rule(NameMatch("state", frozenset({"new"})), action=Accept()))
    rs = ruleset(t)
    assert evaluate(rs, pkt(flags="SYN", state="new")).verdict == "accept"
    r = evaluate(rs, pkt(flags="SYN,ACK", state="new"))
    assert r.verdict == "drop" and r.state == "invalid"
    # A bare ACK is picked up mid-stream as NEW (nf_conntrack_tcp_loose).
    assert evaluate(rs, pkt(flags="ACK", state="new")).state == "new"


def test_whole_byte_flags_compare_misses_ecn_syn():
    t = table(input="drop")
    t.chains["INPUT"].add(rule(TCP, BitsMatch("flags", 0xFF, frozenset({SYN})), action=Accept()))
    rs = ruleset(t)
    assert evaluate(rs, pkt(flags="SYN")).verdict == "accept"
    assert evaluate(rs, pkt(flags="SYN,ECE,CWR")).verdict == "drop"


def test_negated_port_match_is_false_on_icmp():
    t = table(input="accept")
    t.chains["INPUT"].add(rule(IntMatch("dport", ((22, 22),), negate=True), action=Drop()))
    rs = ruleset(t)
    assert evaluate(rs, make_packet(src="192.0.2.1", dst="198.51.100.1", proto="icmp")).verdict == "accept"
    assert evaluate(rs, pkt(dport=80)).verdict == "drop"


def test_opaque_match_gives_unknown_with_dependency():
    t = table(input="accept")
    t.chains["INPUT"].add(rule(OpaqueMatch(reason="depends on the contents of ipset bad", text="-m set"),
                               action=Drop()))
    r = evaluate(ruleset(t), pkt())
    assert r.verdict == "unknown"
    assert any("ipset bad" in d or "-m set" in d for d in r.depends_on)


def test_opaque_match_irrelevant_when_both_branches_agree():
    t = table(input="drop")
    t.chains["INPUT"].add(rule(OpaqueMatch(reason="rate", text="-m limit"), action=Drop()))
    r = evaluate(ruleset(t), pkt())
    assert r.verdict == "drop"


def test_interface_unknown_unless_given():
    t = table(input="drop")
    t.chains["INPUT"].add(rule(InterfaceMatch("iif", ("eth+",), text="-i eth+"), action=Accept()))
    rs = ruleset(t)
    assert evaluate(rs, pkt()).verdict == "unknown"
    assert evaluate(rs, pkt(iif="eth0")).verdict == "accept"
    assert evaluate(rs, pkt(iif="wlan0")).verdict == "drop"


def test_mark_set_is_seen_by_later_rules():
    t = table(input="drop")
    t.chains["INPUT"].add(rule(action=SetField("mark", 0x5, 0xFF)))
    t.chains["INPUT"].add(rule(BitsMatch("mark", 0xFF, frozenset({5})), action=Accept()))
    assert evaluate(ruleset(t), pkt()).verdict == "accept"


def test_accept_ends_only_its_base_chain():
    raw = table("raw", prerouting="accept")
    raw.chains["PREROUTING"].add(rule(action=Accept()))
    f = table(input="drop")
    r = evaluate(ruleset(raw, f), pkt())
    assert r.verdict == "drop" and r.decided_by.chain.name == "INPUT"


def test_notrack_in_raw_makes_state_untracked():
    raw = table("raw", prerouting="accept")
    raw.chains["PREROUTING"].add(rule(action=Notrack()))
    f = table(input="drop")
    f.chains["INPUT"].add(rule(NameMatch("state", frozenset({"new"})), action=Accept()))
    f.chains["INPUT"].add(rule(NameMatch("state", frozenset({"untracked"})), action=Accept()))
    r = evaluate(ruleset(raw, f), pkt(state="new"))
    assert r.verdict == "accept" and r.decided_by.rule.index == 2


def test_notrack_in_a_user_chain_of_raw_untracks_too():
    """CT --notrack / NOTRACK works in any chain of the raw table: what
    counts is the base chain it runs under (raw PREROUTING, before conntrack)."""
    raw = table("raw", prerouting="accept")
    raw.add_chain(Chain("SKIPCT"))
    raw.chains["PREROUTING"].add(rule(action=Jump("SKIPCT")))
    raw.chains["SKIPCT"].add(rule(action=Notrack()))
    f = table(input="drop")
    f.chains["INPUT"].add(rule(NameMatch("state", frozenset({"untracked"})), action=Accept()))
    r = evaluate(ruleset(raw, f), pkt(state="new"))
    assert r.verdict == "accept" and r.decided_by.chain.name == "INPUT"


def test_dnat_to_another_host_is_forwarded_and_decided_by_forward():
    nat = table("nat", prerouting="accept")
    nat.chains["PREROUTING"].add(rule(TCP, dport(8080), action=Nat(
        "dnat", to_addr=ipaddress.ip_address("172.17.0.2"), to_port=80)))
    f = table(input="drop", forward="drop")
    f.chains["FORWARD"].add(rule(AddressMatch("dst", (ipaddress.ip_network("172.17.0.2/32"),)),
                                 TCP, dport(80), action=Accept()))
    r = evaluate(ruleset(nat, f), pkt(dport=8080, state="new"))
    assert r.verdict == "accept"
    assert r.outcome == "forwarded"
    assert r.decided_by.chain.name == "FORWARD"
    assert str(r.packet.dst) == "172.17.0.2" and r.packet.dport == 80
