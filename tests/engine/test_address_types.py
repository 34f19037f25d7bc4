"""addrtype semantics the kernel suite pinned down."""

from ruleanalyzer import loads, make_packet
from ruleanalyzer.engine import evaluate


def rules(family_rule: str) -> str:
    return f"*filter\n:INPUT DROP [0:0]\n-A INPUT {family_rule} -j ACCEPT\nCOMMIT\n"


def test_ipv4_local_destination_is_local_not_unicast():
    local = loads(rules("-m addrtype --dst-type LOCAL"), dialect="iptables")
    unicast = loads(rules("-m addrtype --dst-type UNICAST"), dialect="iptables")
    p = make_packet(src="198.51.100.7", dst="192.0.2.10", dport=22, state="new")
    assert evaluate(local, p).verdict == "accept"
    assert evaluate(unicast, p).verdict == "drop"


def test_ipv6_local_destination_is_local_and_unicast():
    text = rules("-m addrtype --dst-type UNICAST")
    rs = loads(text, dialect="iptables", name="rules.v6")
    p = make_packet(src="2001:db8::7", dst="2001:db8::10", dport=22, state="new")
    assert evaluate(rs, p).verdict == "accept"


def test_ipv6_unicast_and_unreachable_is_a_conjunction_depending_on_routes():
    rs = loads(rules("-m addrtype --src-type UNREACHABLE,UNICAST"), dialect="iptables", name="rules.v6")
    p = make_packet(src="2001:db8::7", dst="2001:db8::10", dport=22, state="new")
    r = evaluate(rs, p)
    # Whether the source is unreachable depends on the host's routes.
    assert r.verdict == "unknown"


def test_remote_ipv4_source_type_depends_on_routes_but_is_never_local():
    rs = loads(rules("-m addrtype --src-type LOCAL"), dialect="iptables")
    p = make_packet(src="198.51.100.7", dst="192.0.2.10", dport=22, state="new")
    assert evaluate(rs, p).verdict == "drop"
    rs = loads(rules("-m addrtype --src-type UNICAST"), dialect="iptables")
    assert evaluate(rs, p).verdict == "unknown"
