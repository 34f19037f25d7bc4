"""nft's implicit dependencies: a statement or expression only applies to
packets that have the header it needs (nft adds the dependency itself)."""

import json

import pytest

from ruleanalyzer import evaluate, loads, make_packet

V4 = dict(src="192.0.2.1", dst="198.51.100.1")
V6 = dict(src="2001:db8::1", dst="2001:db8::2")


def verdict(text, dialect="nftables", **packet):
    result = evaluate(loads(text, dialect=dialect), make_packet(**packet))
    rule = result.decided_by.rule if result.decided_by is not None else None
    return result.verdict, (rule.index if rule is not None else None)


def chain(*rules, family="inet", policy="drop"):
    body = "\n".join(f"    {r}" for r in rules)
    return (f"table {family} f {{\n  chain input {{\n    type filter hook input priority 0; "
            f"policy {policy};\n{body}\n  }}\n}}\n")


@pytest.mark.parametrize("family", ["inet", "ip"])
def test_bare_tcp_reset_rejects_only_tcp(family):
    text = chain("reject with tcp reset", "accept", family=family)
    assert verdict(text, proto="udp", dport=53, **V4) == ("accept", 2)
    assert verdict(text, proto="icmp", icmp_type=8, **V4) == ("accept", 2)
    assert verdict(text, proto="tcp", dport=22, **V4) == ("drop", 1)


def test_a_logged_tcp_reset_still_applies_to_tcp_only():
    # nft puts the dependency at the head of the rule: the counter and the
    # mark only see what is rejected
    text = chain("counter meta mark set 1 reject with tcp reset", "meta mark 1 drop", "accept")
    assert verdict(text, proto="udp", dport=53, **V4) == ("accept", 3)


def test_icmp_reject_in_inet_applies_to_its_own_ip_version():
    text = chain("reject with icmp type host-unreachable", "reject with icmpv6 type admin-prohibited",
                 "accept")
    assert verdict(text, proto="udp", dport=53, **V6) == ("drop", 2)
    assert verdict(text, proto="udp", dport=53, **V4) == ("drop", 1)
    text = chain("reject with icmpv6 type admin-prohibited", "accept")
    assert verdict(text, proto="icmp", icmp_type=8, **V4) == ("accept", 2)


@pytest.mark.parametrize("statement", ["reject", "reject with icmpx type admin-prohibited"])
def test_bare_and_icmpx_reject_apply_to_every_packet(statement):
    text = chain(statement, "accept")
    assert verdict(text, proto="udp", dport=53, **V6) == ("drop", 1)
    assert verdict(text, proto="icmp", icmp_type=8, **V4) == ("drop", 1)


def test_json_reject_gets_the_same_dependency():
    doc = {"nftables": [
        {"table": {"family": "inet", "name": "f"}},
        {"chain": {"family": "inet", "table": "f", "name": "input", "type": "filter",
                   "hook": "input", "prio": 0, "policy": "drop"}},
        {"rule": {"family": "inet", "table": "f", "chain": "input",
                  "expr": [{"reject": {"type": "tcp reset"}}]}},
        {"rule": {"family": "inet", "table": "f", "chain": "input", "expr": [{"accept": None}]}}]}
    text = json.dumps(doc)
    assert verdict(text, dialect="nft-json", proto="udp", dport=53, **V4) == ("accept", 2)
    assert verdict(text, dialect="nft-json", proto="tcp", dport=53, **V4) == ("drop", 1)


@pytest.mark.parametrize("match", ["tcp option maxseg size < 500", "tcp option sack-perm exists",
                                   "tcp sequence 0"])
def test_tcp_header_expressions_never_match_udp(match):
    text = chain(f"{match} drop", "accept")
    assert verdict(text, proto="udp", dport=53, **V4) == ("accept", 2)
    assert verdict(text, proto="tcp", dport=22, **V4)[0] == "unknown"


def test_ipv4_options_never_match_ipv6_and_ipv6_headers_never_ipv4():
    text = chain("ip option rr exists drop", "exthdr frag exists drop", "accept")
    # no extension headers (the default): the frag header is not there
    assert verdict(text, proto="udp", dport=53, **V6) == ("accept", 3)
    result = evaluate(loads(text, dialect="nftables"),
                      make_packet(proto="udp", dport=53, ext_headers="yes", **V6))
    assert result.verdict == "unknown"
    assert any("exthdr" in d for d in result.depends_on)
    assert not any("ip option" in d for d in result.depends_on)
    assert verdict(text, proto="udp", dport=53, **V4) == ("accept", 3)  # no IP options
    assert verdict(text, proto="udp", dport=53, ip_options="yes", **V4)[0] == "unknown"


def test_ip6_nexthdr_is_the_transport_protocol_only_without_extension_headers():
    text = chain("ip6 nexthdr tcp drop", "exthdr hbh missing accept", "drop")
    assert verdict(text, proto="tcp", dport=22, **V6) == ("drop", 1)
    assert verdict(text, proto="udp", dport=53, **V6) == ("accept", 2)
    assert verdict(text, proto="tcp", dport=22, ext_headers="yes", **V6)[0] == "unknown"
