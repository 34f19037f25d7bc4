"""Small builders for rulesets made straight from model objects."""

import ipaddress

from ruleanalyzer.model import (Chain, IntMatch, Location, Rule, Ruleset, Table, AddressMatch,
                                NameMatch, iptables_priority)

LOC = Location("t.rules", 1, 1)
TCP = IntMatch("proto", ((6, 6),), text="-p tcp")
UDP = IntMatch("proto", ((17, 17),), text="-p udp")


def table(name="filter", family="ip", **policies):
    t = Table(name, family, dialect="iptables")
    for hook, policy in policies.items():
        t.add_chain(Chain(hook.upper(), hook=hook, priority=iptables_priority(name, hook),
                          policy=policy, kind="nat" if name == "nat" else "filter"))
    return t


def rule(*matches, action, text=""):
    return Rule(tuple(matches), action, LOC, text=text)


def dport(lo, hi=None):
    return IntMatch("dport", ((lo, lo if hi is None else hi),), text=f"--dport {lo}")


def src(*nets):
    return AddressMatch("src", tuple(ipaddress.ip_network(n) for n in nets), text=f"-s {nets}")


def dst(*nets):
    return AddressMatch("dst", tuple(ipaddress.ip_network(n) for n in nets), text=f"-d {nets}")


def state(*names):
    return NameMatch("state", frozenset(names), text=f"--state {names}")


def ruleset(*tables):
    rs = Ruleset()
    for t in tables:
        rs.add_table(t)
    return rs
