"""Hand-edited restore files (/etc/sysconfig/iptables, rules.v4) use the
spellings iptables-restore accepts, not only what iptables-save prints.
Each expectation below is what iptables 1.8.9 stored for the spelling
(``iptables-save`` after loading it, checked on a real kernel)."""

import ipaddress

import pytest

from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.model import AddressMatch, IntMatch
from ruleanalyzer.parsers.iptables import parse


def first_rule(spec: str, family: str = "ip"):
    text = f"*filter\n:INPUT DROP [0:0]\n-A INPUT {spec} -j ACCEPT\nCOMMIT\n"
    return parse(text, "rules.v4", family=family).table("filter").chains["INPUT"].rules[0]


def nets(*cidrs):
    return tuple(ipaddress.ip_network(c) for c in cidrs)


@pytest.mark.parametrize("spec, saved", [
    ("-s 10.1/16", "10.1.0.0/16"),
    ("-d 10.1.2", "10.1.2.0/32"),
    ("-s 1", "1.0.0.0/32"),
    ("-s 010.1.1.1/0x8", "8.0.0.0/8"),           # octal part, hex prefix length
    ("-s 10.1.2.3/016", "10.0.0.0/14"),          # octal prefix length
    ("-s 10.0.0.0/255.255.0.0", "10.0.0.0/16"),  # mask as a dotted quad
])
def test_abbreviated_addresses_read_as_iptables_reads_them(spec, saved):
    match = first_rule(spec).matches[0]
    assert isinstance(match, AddressMatch) and match.networks == nets(saved)


def test_zero_slash_zero_is_everything():
    assert first_rule("-s 0/0").matches in ((), (AddressMatch("src", nets("0.0.0.0/0")),))


def test_address_lists_take_abbreviations_too():
    assert first_rule("-s 10.1.2.3/32,10.1/16").matches[0].networks == nets("10.1.2.3/32", "10.1.0.0/16")


def test_iprange_is_abbreviated_but_nat_targets_are_not():
    match = first_rule("-m iprange --src-range 10.1-10.2").matches[0]
    assert match.networks[0] == ipaddress.ip_network("10.1.0.0/16")
    with pytest.raises(RuleAnalyzerError, match="10.1"):
        parse("*nat\n-A PREROUTING -p tcp -j DNAT --to-destination 10.1\nCOMMIT\n", "n.rules")


@pytest.mark.parametrize("spec, proto, port", [
    ("-p 0x6 --dport 026", 6, 22),  # strtoul(…, 0): hex protocol, octal port
    ("-p TCP --dport 0x16", 6, 22),
    ("-p 6 --dport ssh", 6, 22),
    ("-p udp --dport domain", 17, 53),
])
def test_protocol_and_port_spellings(spec, proto, port):
    matches = first_rule(spec).matches
    assert matches[0] == IntMatch("proto", ((proto, proto),))
    assert matches[1] == IntMatch("dport", ((port, port),))


def test_udp_and_dccp_ports_are_decimal_only():
    assert first_rule("-p udp --dport 026").matches[1] == IntMatch("dport", ((26, 26),))
    with pytest.raises(RuleAnalyzerError, match="0x16"):
        first_rule("-p udp --dport 0x16")


def test_multiport_spellings():
    assert first_rule("-p tcp -m multiport --dports 010,ssh:0x20").matches[1] == \
        IntMatch("dport", ((8, 8), (22, 32)))


def test_host_names_are_a_located_error():
    text = "*filter\n:INPUT DROP [0:0]\n-A INPUT ! -s pxe.example.org -p tcp --dport 22 -j REJECT\nCOMMIT\n"
    with pytest.raises(RuleAnalyzerError) as info:
        parse(text, "rules.v4")
    err = info.value
    assert (err.location.line, err.location.column) == (3, 15)
    assert "names are not resolved offline; write the address" in err.message


@pytest.mark.parametrize("spec, words", [
    ("-s 10.0.0.0/33", "invalid mask '33'"),
    ("-s 10.0.0.0/255.255", "invalid mask"),
    ("-s 10.256.0.0", "invalid address"),
    ("-p tcp --dport 70000", "out of range"),
    ("-p 0x100", "out of range"),
])
def test_what_iptables_refuses_stays_an_error(spec, words):
    with pytest.raises(RuleAnalyzerError, match=words):
        first_rule(spec)


def test_ipv6_prefixes_and_masks():
    assert first_rule("-s 2001:db8::1/0x20", "ip6").matches[0].networks == nets("2001:db8::/32")
    assert first_rule("-s 2001:db8::/ffff:ffff::", "ip6").matches[0].networks == nets("2001:db8::/32")
