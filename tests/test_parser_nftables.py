"""The nftables text reader: what a user sees in the model for nft syntax.

Expected values come from how the kernel runs each rule (checked with
``nft --debug=netlink`` in a throw-away namespace), not from our output.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.model import (ACK, FIN, RST, SYN, Accept, AddressMatch, AllOf, AnyOf, BitsMatch,
                                Dispatch, Drop, IntMatch, InterfaceMatch, Jump, Log, NameMatch, Nat,
                                OpaqueMatch, Reject, SetField)
from ruleanalyzer.parsers import nftables

HERE = Path(__file__).resolve().parent / "parsers" / "nftables"
TCP = IntMatch("proto", ((6, 6),))
V4 = IntMatch("family", ((4, 4),))


def one_rule(rule_text: str, family: str = "ip"):
    """Parse ``rule_text`` as the only rule of a base chain and return it."""
    text = f"table {family} t {{\n chain c {{\n  type filter hook input priority 0; policy accept;\n  {rule_text}\n }}\n}}\n"
    rs = nftables.parse(text, "<test>")
    rules = list(rs.rules())
    assert len(rules) == 1
    return rules[0]


# -- TCP flags, as the kernel compiles them ---------------------------------------

def test_bare_flag_means_any_of_those_bits_set():
    rule = one_rule("tcp flags syn accept")
    assert rule.matches == (TCP, BitsMatch("flags", SYN, frozenset({0}), negate=True))


def test_bare_flag_list_means_any_of_them():
    rule = one_rule("tcp flags syn,ack accept")
    assert rule.matches[-1] == BitsMatch("flags", SYN | ACK, frozenset({0}), negate=True)


def test_equal_flag_compares_the_whole_byte():
    rule = one_rule("tcp flags == syn accept")
    assert rule.matches[-1] == BitsMatch("flags", 0xFF, frozenset({SYN}))


def test_flag_set_compares_the_whole_byte():
    rule = one_rule("tcp flags { syn, syn|ack } accept")
    assert rule.matches[-1] == BitsMatch("flags", 0xFF, frozenset({SYN, SYN | ACK}))


def test_slash_mask_form():
    rule = one_rule("tcp flags syn / fin,syn,rst,ack accept")
    assert rule.matches[-1] == BitsMatch("flags", FIN | SYN | RST | ACK, frozenset({SYN}))


def test_explicit_and_mask():
    rule = one_rule("tcp flags & (syn|ack) == syn|ack accept")
    assert rule.matches[-1] == BitsMatch("flags", SYN | ACK, frozenset({SYN | ACK}))


def test_not_equal_flag_negates_whole_byte_compare():
    rule = one_rule("tcp flags != syn drop")
    assert rule.matches[-1] == BitsMatch("flags", 0xFF, frozenset({SYN}), negate=True)


# -- dependencies nft adds ------------------------------------------------------

def test_port_match_implies_protocol():
    rule = one_rule("tcp dport 22 accept")
    assert rule.matches == (TCP, IntMatch("dport", ((22, 22),)))


def test_th_port_implies_a_port_protocol():
    rule = one_rule("th dport 53 accept")
    assert rule.matches[0] == IntMatch("proto", ((6, 6), (17, 17), (33, 33), (132, 132), (136, 136)))


def test_ip_match_in_inet_table_implies_ipv4():
    rule = one_rule("ip saddr 10.0.0.0/8 accept", family="inet")
    assert rule.matches == (V4, AddressMatch("src", (ipaddress.ip_network("10.0.0.0/8"),)))


def test_icmp_type_implies_icmp_and_ipv4_in_inet():
    rule = one_rule("icmp type echo-request accept", family="inet")
    assert rule.matches == (V4, IntMatch("proto", ((1, 1),)), IntMatch("icmp_type", ((8, 8),)))


def test_icmpv6_type_implies_protocol_58():
    rule = one_rule("icmpv6 type nd-neighbor-solicit accept", family="ip6")
    assert rule.matches == (IntMatch("proto", ((58, 58),)), IntMatch("icmp_type", ((135, 135),)))


def test_ip6_length_is_payload_length():
    rule = one_rule("ip6 length 100 accept", family="ip6")
    assert rule.matches == (IntMatch("length", ((140, 140),)),)


# -- values --------------------------------------------------------------------------

def test_address_range_becomes_networks():
    rule = one_rule("ip saddr 10.0.0.1-10.0.0.6 drop")
    assert rule.matches[0].networks == tuple(ipaddress.summarize_address_range(
        ipaddress.ip_address("10.0.0.1"), ipaddress.ip_address("10.0.0.6")))


def test_anonymous_set_of_ports_and_ranges():
    rule = one_rule("udp dport { 53, 1000-2000 } accept")
    assert rule.matches[-1] == IntMatch("dport", ((53, 53), (1000, 2000)))


def test_less_than_is_a_range():
    rule = one_rule("tcp dport < 1024 drop")
    assert rule.matches[-1] == IntMatch("dport", ((0, 1023),))


def test_negated_address():
    rule = one_rule("ip daddr != 192.0.2.1 drop")
    assert rule.matches[0] == AddressMatch("dst", (ipaddress.ip_network("192.0.2.1/32"),), negate=True)


def test_ct_state_list():
    rule = one_rule("ct state established,related accept")
    assert rule.matches == (NameMatch("state", frozenset({"established", "related"})),)


def test_interface_wildcard():
    rule = one_rule('iifname "eth*" accept')
    assert rule.matches == (InterfaceMatch("iif", ("eth*",)),)


def test_masked_mark_is_bits_match():
    rule = one_rule("meta mark & 0xff == 0x1 accept")
    assert rule.matches == (BitsMatch("mark", 0xFF, frozenset({1})),)


def test_fib_daddr_type_local():
    rule = one_rule("fib daddr type local accept")
    assert rule.matches == (NameMatch("dst_type", frozenset({"local"})),)


def test_concatenation_set_is_any_of_all_of():
    rule = one_rule("ip saddr . tcp dport { 10.0.0.1 . 22, 10.0.0.2 . 80 } accept")
    assert rule.matches[0] == TCP
    alternatives = rule.matches[1]
    assert isinstance(alternatives, AnyOf) and len(alternatives.matches) == 2
    first = alternatives.matches[0]
    assert isinstance(first, AllOf)
    assert first.matches == (AddressMatch("src", (ipaddress.ip_network("10.0.0.1/32"),)),
                             IntMatch("dport", ((22, 22),)))


# -- statements ---------------------------------------------------------------------

def test_rate_limit_is_an_unknown_match():
    rule = one_rule("limit rate 10/second accept")
    assert isinstance(rule.matches[0], OpaqueMatch) and "rate" in rule.matches[0].reason
    assert rule.action == Accept()


def test_effects_in_order_before_the_verdict():
    rule = one_rule("meta mark set 0x2 counter log prefix \"x\" drop")
    assert rule.effects == (SetField("mark", value=2), Log("counter"), Log("log"))
    assert rule.action == Drop()


def test_rule_without_verdict():
    rule = one_rule("counter")
    assert rule.action == Log("no verdict")


def test_reject_with_tcp_reset():
    assert one_rule("reject with tcp reset").action == Reject("tcp reset")


def test_dnat_to_address_and_port():
    text = ("table ip n {\n chain p {\n  type nat hook prerouting priority dstnat; policy accept;\n"
            "  tcp dport 8080 dnat to 10.0.0.5:80\n }\n}\n")
    rule = next(nftables.parse(text, "<t>").rules())
    assert rule.action == Nat("dnat", ipaddress.ip_address("10.0.0.5"), None, 80, None)
    assert rule.chain.priority == -100 and rule.chain.kind == "nat"


def test_vmap_becomes_dispatch():
    rule = one_rule("tcp dport vmap { 22 : accept, 23 : drop, 80 : jump web }")
    assert isinstance(rule.action, Dispatch)
    assert rule.action.branches == ((IntMatch("dport", ((22, 22),)), Accept()),
                                    (IntMatch("dport", ((23, 23),)), Drop()),
                                    (IntMatch("dport", ((80, 80),)), Jump("web")))


def test_numgen_is_opaque():
    rule = one_rule("numgen inc mod 2 0 accept")
    assert isinstance(rule.matches[0], OpaqueMatch) and "numgen" in rule.matches[0].reason


# -- sets --------------------------------------------------------------------------

def test_named_set_resolved_when_static():
    rs = nftables.parse((HERE / "basic.nft").read_text(), str(HERE / "basic.nft"))
    rule = rs.table("filter").chains["input"].rules[1]
    assert rule.matches[-1] == AddressMatch("src", (ipaddress.ip_network("198.51.100.0/24"),
                                                    ipaddress.ip_network("203.0.113.7/32")))


def test_named_set_updated_by_a_rule_is_opaque():
    text = """table ip t {
  set seen { type ipv4_addr; flags dynamic; }
  chain c { type filter hook input priority 0;
    ip saddr @seen drop
    update @seen { ip saddr }
  }
}"""
    first = next(nftables.parse(text, "<t>").rules())
    assert first.matches[-1] == OpaqueMatch(reason="depends on traffic history: set @seen is filled "
                                                   "from the packet path (update @seen)")


# -- the file as a whole -------------------------------------------------------------

def test_basic_file_structure():
    rs = nftables.parse((HERE / "basic.nft").read_text(), str(HERE / "basic.nft"))
    table = rs.table("filter", "inet")
    chain = table.chains["input"]
    assert (chain.hook, chain.priority, chain.policy, chain.kind) == ("input", -10, "drop", "filter")
    assert table.chains["extra"].hook is None
    assert table.dialect == "nftables"
    admins = chain.rules[2]
    assert admins.comment == "admins"
    assert admins.matches[-1] == IntMatch("dport", ((22, 22),))  # $SSH
    assert admins.location.line == 19 and admins.location.column == 3
    assert admins.text.startswith("ip saddr $ADMIN tcp dport $SSH accept")
    assert chain.rules[3].ident == "7"


@pytest.mark.parametrize("name,value", [("raw", -300), ("mangle", -150), ("dstnat", -100),
                                        ("filter", 0), ("security", 50), ("srcnat", 100),
                                        ("raw + 5", -295)])
def test_named_priorities(name, value):
    text = f"table ip t {{ chain c {{ type filter hook input priority {name}; }} }}"
    assert nftables.parse(text, "<t>").table("t").chains["c"].priority == value


@pytest.mark.parametrize("name,value", [("dstnat", -300), ("filter", -200), ("out", 100), ("srcnat", 300)])
def test_bridge_priorities(name, value):
    text = f"table bridge t {{ chain c {{ type filter hook forward priority {name}; }} }}"
    assert nftables.parse(text, "<t>").table("t").chains["c"].priority == value


def test_table_without_family_is_ip():
    assert nftables.parse("table t { }", "<t>").tables[0].family == "ip"


def test_command_script_with_insert():
    rs = nftables.parse((HERE / "commands.nft").read_text(), str(HERE / "commands.nft"))
    ports = [r.matches[-1].ranges[0][0] for r in rs.rules()]
    assert ports == [0, 1, 2]


def test_include_beside_the_file():
    rs = nftables.parse((HERE / "include_main.nft").read_text(), str(HERE / "include_main.nft"))
    assert next(rs.rules()).matches[-1] == IntMatch("dport", ((8080, 8080),))


def test_include_that_leaves_the_directory_is_refused():
    with pytest.raises(RuleAnalyzerError) as err:
        nftables.parse((HERE / "include_escape.nft").read_text(), str(HERE / "include_escape.nft"))
    assert "leaves the directory" in err.value.message
    assert (err.value.location.line, err.value.location.column) == (1, 9)


def test_missing_include_is_located():
    with pytest.raises(RuleAnalyzerError) as err:
        nftables.parse('\ninclude "nope.nft"\n', str(HERE / "x.nft"))
    assert "not found" in err.value.message and err.value.location.line == 2


# -- errors ---------------------------------------------------------------------------

@pytest.mark.parametrize("text,line,col,words", [
    ("table ip t {\n chain c {\n", 3, 1, "end of input"),
    ("table ip t { }\n}\n", 2, 1, "'}'"),
    ('table ip t {\n chain c { comment "open\n } }', 2, 20, "unterminated string"),
    ("table ip t {\n chain c {\n  tcp dport == accept\n }\n}", 3, 16, "value"),
    ("table ip t {\n chain c {\n  22 accept\n }\n}", 3, 3, "match"),
    ("tabel ip t { }", 1, 1, "unknown command"),
    ("table ip t {\n chain c {\n  ip saddr 10.0.0.300 accept\n }\n}", 3, 3, "10.0.0.300"),
])
def test_errors_are_located(text, line, col, words):
    with pytest.raises(RuleAnalyzerError) as err:
        nftables.parse(text, "bad.nft")
    loc = err.value.location
    assert (loc.file, loc.line, loc.column) == ("bad.nft", line, col)
    assert words in err.value.message


def test_sniff():
    assert nftables.sniff("table inet filter {\n}", "x") >= 60
    assert nftables.sniff("*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n", "x") == 0


def test_a_constant_in_a_concatenated_key_is_compared_with_each_element():
    """``ip daddr . "lo" @s``: the constant "lo" is matched against each
    element's part, so the lookup is the elements' addresses whose part is
    "lo" — decided, not "depends on \\"lo\\"" (upstream set_lookups dump)."""
    from ruleanalyzer import loads
    from ruleanalyzer.model import OpaqueMatch

    text = ('table ip t {\n set s {\n  typeof ip saddr . iif\n'
            '  elements = { 127.0.0.3 . "lo", 127.0.0.4 . "eth0" }\n }\n'
            ' chain c {\n  type filter hook input priority filter; policy accept;\n'
            '  ip daddr . "lo" @s drop\n  ip daddr . "eth9" @s drop\n }\n}\n')
    first, second = loads(text, dialect="nftables").rules()

    def leaves(m):
        subs = getattr(m, "matches", None)
        return [x for s in subs for x in leaves(s)] if subs is not None else [m]

    found = [x for m in first.matches for x in leaves(m)]
    assert not any(isinstance(x, OpaqueMatch) for x in found)
    assert [str(n) for x in found if isinstance(x, AddressMatch) for n in x.networks] == ["127.0.0.3/32"]
    assert [x for m in second.matches for x in leaves(m)] == []  # no element has "eth9": never matches


def test_dscp_mask_as_nft_lists_it_back_is_ip_dscp():
    """`nft list ruleset` prints `ip dscp & 0x38 != 0x0` (ip table) as raw
    arithmetic on the TOS byte; both spellings answer alike."""
    from ruleanalyzer import evaluate, loads, make_packet

    def verdicts(match: str) -> list[str]:
        text = ("table ip t {\n chain c {\n  type filter hook input priority 0; policy accept;\n"
                f"  {match} drop\n }}\n}}\n")
        rs = loads(text, dialect="nftables")
        return [evaluate(rs, make_packet(src="192.0.2.1", dst="198.51.100.1", proto="udp", dport=53, dscp=d,
                                         hook="input")).verdict for d in (0, 4, 8, 46)]

    listed = verdicts("(@nh,8,8 & 0xfc) >> 2 & 0x38 != 0x0")
    assert listed == verdicts("ip dscp & 0x38 != 0") == ["accept", "accept", "drop", "drop"]


def test_ip6_dscp_mask_as_nft_lists_it_back_answers_as_written():
    """ip6: `ip6 dscp & 0x38 != 0x8` is listed back as
    `(@nh,0,16 & 0xfc0) >> 6 & 0x38 != 0x800/8`; both read alike (and as
    the kernel runs them: see engine tests on the ip6 dscp mask)."""
    from ruleanalyzer import evaluate, loads, make_packet

    def verdicts(match: str) -> list[str]:
        text = ("table inet t {\n chain c {\n  type filter hook input priority 0; policy accept;\n"
                f"  ip6 saddr 2001:db8::/32 {match} drop\n }}\n}}\n")
        rs = loads(text, dialect="nftables")
        return [evaluate(rs, make_packet(src="2001:db8::1", dst="2001:db8::2", proto="udp", dport=53, dscp=d,
                                         hook="input")).verdict for d in (0, 8, 46)]

    assert verdicts("(@nh,0,16 & 0xfc0) >> 6 & 0x38 != 0x800/8") == verdicts("ip6 dscp & 0x38 != 0x8")
    assert "unknown" not in verdicts("(@nh,0,16 & 0xfc0) >> 6 & 0x38 != 0x800/8")


def test_ip6_nexthdr_of_a_transport_protocol_fails_for_other_protocols_even_with_extension_headers():
    """With extension headers the first next header is one of them, so
    ``ip6 nexthdr icmpv6 accept`` never takes a TCP segment; only for
    ICMPv6 itself does it hang on the extension headers (the upstream
    workstation ruleset was "likely open" on every IPv6 port)."""
    from ruleanalyzer import loads
    from ruleanalyzer.audit import run_audit

    text = ("table ip6 f {\n chain input {\n  type filter hook input priority 0; policy drop;\n"
            "  ct state established,related accept\n  ip6 nexthdr icmpv6 accept\n"
            "  tcp dport 22 accept\n }\n}\n")
    codes = [f.code for f in run_audit([loads(text, dialect="nftables")], select=["RA4"]).findings]
    assert codes == ["RA401"]  # SSH; no "likely open" on the other ports
    rule = list(loads(text, dialect="nftables").rules())[1]
    assert "extension header" in str(rule.matches)  # ICMPv6 with extension headers stays unknown


def test_nat_port_from_a_map_after_a_spaced_colon():
    """``dnat to ADDR : EXPR map { … }`` (nft's load-balancing example): the
    port map is read — a key not in it leaves the packet untranslated, so
    the rule is conditional; a numgen key covering every value is not."""
    rule = one_rule("ip protocol tcp dnat to 192.0.2.1 : tcp dport map { 80 : 8080, 443 : 8443 }")
    assert [(a.to_addr, a.to_port) for _m, a in rule.action.branches] == [
        (ipaddress.ip_address("192.0.2.1"), 8080), (ipaddress.ip_address("192.0.2.1"), 8443)]
    # tcp dport 80 or 443; another port finds no element: no translation, no match
    assert [(m.field, m.ranges) for m, _a in rule.action.branches] == [("dport", ((80, 80),)),
                                                                       ("dport", ((443, 443),))]
    rule = one_rule("ip protocol tcp dnat to 192.0.2.1 : numgen inc mod 2 map { 0 : 4040, 1 : 4050 }")
    assert not any(isinstance(m, OpaqueMatch) for m in rule.matches)
    assert isinstance(rule.action.branches[-1][0], AllOf)  # numgen mod 2 is 0 or 1: always translated
