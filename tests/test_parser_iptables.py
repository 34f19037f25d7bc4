"""iptables-save / restore parser: what a user sees in the model."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.model import (CWR, ECE, Accept, AddressMatch, AllOf, AnyOf, BitsMatch, Drop,
                                EcnStrip, Goto, InterfaceMatch, IntMatch, Jump, Log, NameMatch, Nat,
                                Notrack, OpaqueMatch, Queue, Reject, Return, SetField,
                                UnknownAction)
from ruleanalyzer.parsers import iptables
from ruleanalyzer.parsers.iptables import parse, parse_rule, sniff

FIXTURES = Path(__file__).parent / "parsers" / "iptables"


def rule(spec: str, family: str = "ip"):
    return parse_rule(spec, family=family)


def net(text):
    return ipaddress.ip_network(text)


def error_of(text: str, name: str = "t.rules") -> RuleAnalyzerError:
    with pytest.raises(RuleAnalyzerError) as info:
        parse(text, name)
    return info.value


FILTER = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"


# -- file structure ---------------------------------------------------------


def test_builtin_chains_hooks_priorities_and_policies():
    rs = parse("*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n*filter\n:INPUT DROP [1:2]\nCOMMIT\n", "x")
    nat, filt = rs.table("nat"), rs.table("filter")
    assert nat.family == filt.family == "ip" and filt.dialect == "iptables"
    # chains the dump does not list exist anyway, policy ACCEPT, no location
    assert list(nat.chains) == ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"]
    assert nat.chains["POSTROUTING"].priority == 100 and nat.chains["PREROUTING"].priority == -100
    assert nat.chains["OUTPUT"].kind == "nat" and filt.chains["INPUT"].kind == "filter"
    assert filt.chains["INPUT"].policy == "drop" and filt.chains["INPUT"].hook == "input"
    assert filt.chains["INPUT"].policy_location.line == 5
    assert filt.chains["OUTPUT"].policy == "accept" and filt.chains["OUTPUT"].policy_location is None


def test_counters_crlf_comments_and_rule_text():
    text = "# hi\r\n*filter\r\n:INPUT ACCEPT [5:6]\r\n\r\n[7:8] -A INPUT -p tcp -j ACCEPT\r\nCOMMIT\r\n"
    r = parse(text, "f").table("filter").chains["INPUT"].rules[0]
    assert r.counters == (7, 8)
    assert r.text == "-A INPUT -p tcp -j ACCEPT"
    assert (r.location.line, r.location.column) == (5, 7)


def test_fixture_webserver():
    rs = parse((FIXTURES / "webserver.rules").read_text(), "webserver.rules")
    assert isinstance(rs.table("raw").chains["PREROUTING"].rules[0].action, Notrack)
    inp = rs.table("filter").chains["INPUT"]
    assert [r.counters for r in inp.rules][:3] == [(10, 600), (500, 70000), (3, 120)]
    web = inp.rules[3]
    assert web.comment == 'web "front"'
    assert IntMatch("dport", ((80, 80), (443, 443))) in web.matches
    ssh = inp.rules[4]
    assert BitsMatch("flags", 0x17, frozenset({0x02})) in ssh.matches
    assert ssh.action == Jump("SSH_LIMIT")
    assert inp.rules[6].action == Reject("tcp-reset")
    recent = rs.table("filter").chains["SSH_LIMIT"].rules[0]
    # "--set" records the source and always matches (xt_recent)
    assert isinstance(recent.matches[0], AllOf) and not recent.matches[0].matches
    assert recent.action == Log("no target")


def test_fixture_long_options_inserts_and_nat():
    rs = parse((FIXTURES / "restore-long-options.rules").read_text(), "r.rules")
    inp = rs.table("filter").chains["INPUT"]
    assert inp.policy == "drop"
    # --insert without a number goes first; -I INPUT 2 second
    assert [r.location.line for r in inp.rules] == [9, 10, 7, 8]
    assert [r.index for r in inp.rules] == [1, 2, 3, 4]
    smtp = inp.rules[2]
    assert AddressMatch("src", (net("10.0.0.0/8"),), negate=True) in smtp.matches
    assert InterfaceMatch("iif", ("eth0",)) in smtp.matches
    assert smtp.action == Jump("LOGDROP")
    # target before matches
    assert inp.rules[3].action == Return()
    assert inp.rules[3].matches == (AddressMatch("dst", (net("198.51.100.7/32"),)),)
    nat = rs.table("nat")
    dnat = nat.chains["PREROUTING"].rules[0].action
    assert dnat == Nat("dnat", ipaddress.ip_address("10.0.0.5"), None, 80, None)
    assert nat.chains["POSTROUTING"].rules[0].action == Nat("masquerade", None, None, 1024, 65535)
    snat = nat.chains["POSTROUTING"].rules[1].action
    assert (snat.to_addr, snat.to_addr_last) == (ipaddress.ip_address("203.0.113.1"),
                                                 ipaddress.ip_address("203.0.113.4"))


def test_ip6_family_from_content_and_name():
    rs = parse((FIXTURES / "rules.v6").read_text(), "rules.v6")
    assert rs.tables[0].family == "ip6"
    chain = rs.table("filter").chains["INPUT"]
    assert IntMatch("icmp_type", ((135, 135),)) in chain.rules[0].matches
    assert chain.rules[1].action == Reject("icmp6-port-unreachable")
    plain = FILTER + "-A INPUT -j ACCEPT\nCOMMIT\n"
    assert parse(plain, "/etc/iptables/rules.v6").tables[0].family == "ip6"
    assert parse(plain, "/etc/iptables/rules.v4").tables[0].family == "ip"
    assert parse(FILTER + "-A INPUT -s 2001:db8::/32 -j DROP\nCOMMIT\n", "x").tables[0].family == "ip6"
    assert parse(plain, "x", family="ip6").tables[0].family == "ip6"


def test_stray_lines_are_located_warnings():
    text = "root@host:~# iptables-save\n" + FILTER + "-A INPUT -j ACCEPT\nCOMMIT\nroot@host:~#\n"
    rs = parse(text, "x")
    assert [(d.location.line, d.level) for d in rs.diagnostics] == [(1, "warning"), (8, "warning")]
    assert rs.rule_count == 1


def test_restore_commands_flush_delete_rename():
    text = FILTER + (":A - [0:0]\n:B - [0:0]\n-A A -j ACCEPT\n-A INPUT -j B\n-F A\n-X A\n"
                     "-E B C\n-A INPUT -p udp -j DROP\n-D INPUT -p udp -j DROP\nCOMMIT\n")
    filt = parse(text, "x").table("filter")
    assert "A" not in filt.chains and "C" in filt.chains
    assert [r.action for r in filt.chains["INPUT"].rules] == [Jump("C")]


def test_second_table_block_replaces_the_first():
    rs = parse(FILTER + "-A INPUT -j DROP\nCOMMIT\n" + FILTER + "COMMIT\n", "x")
    assert len(rs.tables) == 1 and rs.rule_count == 0 and rs.diagnostics


def test_sniff():
    assert sniff(FILTER + "-A INPUT -j ACCEPT\nCOMMIT\n", "x") >= 90
    assert sniff("table inet filter {\n}\n", "x") == 0


# -- matches ----------------------------------------------------------------


def test_addresses_lists_hosts_ranges():
    r = rule("-s 10.1.2.3/8,192.0.2.1 -d 192.0.2.0/255.255.255.0 -j ACCEPT")
    assert r.matches[0] == AddressMatch("src", (net("10.0.0.0/8"), net("192.0.2.1/32")))
    assert r.matches[1] == AddressMatch("dst", (net("192.0.2.0/24"),))
    with pytest.raises(RuleAnalyzerError, match="'lib.ustc.edu.cn' is a host name: names are not "
                                                "resolved offline; write the address"):
        rule("-d lib.ustc.edu.cn -j ACCEPT")
    rng = rule("-m iprange --src-range 10.0.0.1-10.0.0.6").matches[0]
    assert rng == AddressMatch("src", (net("10.0.0.1/32"), net("10.0.0.2/31"), net("10.0.0.4/31"),
                                       net("10.0.0.6/32")))
    assert rule("-s ::1 -j DROP", "ip6").matches[0] == AddressMatch("src", (net("::1/128"),))


def test_abbreviated_addresses_are_completed_with_zeros_as_iptables_does():
    # xtables' __numeric_to_ipaddr: "10.3" is the network 10.3.0.0, not inet_aton's 10.0.0.3
    assert rule("-s 10.3/16 -j ACCEPT").matches[0] == AddressMatch("src", (net("10.3.0.0/16"),))
    assert rule("-d 172.16.5/255.255.255.0 -j DROP").matches[0] == \
        AddressMatch("dst", (net("172.16.5.0/24"),))
    with pytest.raises(RuleAnalyzerError, match="invalid address '10.300/16'"):
        parse(FILTER + "-A INPUT -s 10.300/16 -j ACCEPT\nCOMMIT\n", "t.rules")


def test_line_shape_shortcut_accepts_exactly_what_the_grammar_accepts():
    # the parser decides known-good line shapes with a regular expression and
    # loads the Lark grammar only for the others: the two must agree
    import itertools

    parser, _, unexpected = iptables._grammar()
    for length in range(1, 6):
        for letters in itertools.product("TCMNBOW", repeat=length):
            shape = "".join(letters)
            try:
                grammar_kind = parser.parse(iptables._tokens(shape, list(shape)))
            except unexpected:
                grammar_kind = None
            shortcut = iptables._GOOD_KINDS.get(shape[0], "rule") \
                if iptables._GOOD_SHAPE.match(shape) else None
            assert shortcut == grammar_kind, shape


def test_protocols_and_ports():
    assert rule("-p all -j ACCEPT").matches == ()
    assert rule("! -p tcp").matches == (IntMatch("proto", ((6, 6),), negate=True),)
    r = rule("-p tcp --sport 1024: --dport :1023")
    assert r.matches[1:] == (IntMatch("sport", ((1024, 65535),)), IntMatch("dport", ((0, 1023),)))
    assert rule("-p udp -m udp ! --destination-port 53").matches[1] == \
        IntMatch("dport", ((53, 53),), negate=True)
    mp = rule("-p tcp -m multiport --dports 22,80:90").matches[1]
    assert mp == IntMatch("dport", ((22, 22), (80, 90)))
    both = rule("-p tcp -m multiport --ports 53").matches[1]
    assert both == AnyOf((IntMatch("sport", ((53, 53),)), IntMatch("dport", ((53, 53),))))
    assert rule("-p 47").matches == (IntMatch("proto", ((47, 47),)),)


def test_tcp_flags_syn_and_ecn():
    assert rule("-p tcp --tcp-flags ALL NONE").matches[1] == BitsMatch("flags", 0x3F, frozenset({0}))
    assert rule("-p tcp ! --syn").matches[1] == BitsMatch("flags", 0x17, frozenset({2}), negate=True)
    assert rule("-p tcp -m ecn --ecn-tcp-cwr").matches[1] == BitsMatch("flags", CWR, frozenset({CWR}))
    assert rule("-p tcp -m ecn --ecn-tcp-ece").matches[1] == BitsMatch("flags", ECE, frozenset({ECE}))
    assert rule("-m ecn --ecn-ip-ect 3").matches[0] == IntMatch("ecn", ((3, 3),))
    opt = rule("-p tcp --tcp-option 8").matches[1]
    assert isinstance(opt, OpaqueMatch) and opt.reason == "depends on the TCP options present"


def test_conntrack_state_and_status():
    assert rule("-m state --state NEW,ESTABLISHED").matches[0] == \
        NameMatch("state", frozenset({"new", "established"}))
    mixed = rule("-m conntrack ! --ctstate RELATED,DNAT").matches[0]
    assert mixed == AnyOf((NameMatch("state", frozenset({"related"})),
                           NameMatch("ct_status", frozenset({"dnat"}))), negate=True)
    assert rule("-m conntrack --ctstate SNAT").matches[0] == NameMatch("ct_status", frozenset({"snat"}))
    assert rule("-m conntrack --ctstatus ASSURED --ctdir REPLY").matches == (
        NameMatch("ct_status", frozenset({"assured"})), NameMatch("ct_direction", frozenset({"reply"})))
    assert isinstance(rule("-m conntrack --ctorigdst 10.0.0.1").matches[0], OpaqueMatch)


def test_icmp_types():
    assert rule("-p icmp --icmp-type echo-request").matches[1] == IntMatch("icmp_type", ((8, 8),))
    assert rule("-p icmp --icmp-type port-unreachable").matches[1] == AllOf(
        (IntMatch("icmp_type", ((3, 3),)), IntMatch("icmp_code", ((3, 3),))))
    assert rule("-p icmp ! --icmp-type 3/4").matches[1] == AllOf(
        (IntMatch("icmp_type", ((3, 3),)), IntMatch("icmp_code", ((4, 4),))), negate=True)
    assert rule("-p icmp --icmp-type any").matches == (IntMatch("proto", ((1, 1),)),)
    assert rule("-p icmpv6 --icmpv6-type packet-too-big", "ip6").matches[1] == \
        IntMatch("icmp_type", ((2, 2),))


def test_interfaces_fragment_marks_and_fields():
    assert rule("! -i eth+ -o wg0").matches == (InterfaceMatch("iif", ("eth+",), negate=True),
                                                 InterfaceMatch("oif", ("wg0",)))
    assert rule("-f").matches == (IntMatch("fragment", ((1, 1),)),)
    assert rule("-m mark --mark 0x4000/0x4000").matches[0] == BitsMatch("mark", 0x4000, frozenset({0x4000}))
    assert rule("-m connmark ! --mark 1").matches[0] == \
        BitsMatch("ctmark", 0xFFFFFFFF, frozenset({1}), negate=True)
    assert rule("-m length --length 0:100").matches[0] == IntMatch("length", ((0, 100),))
    assert rule("-m ttl --ttl-lt 5").matches[0] == IntMatch("ttl", ((0, 4),))
    assert rule("-m hl --hl-gt 250", "ip6").matches[0] == IntMatch("ttl", ((251, 255),))
    assert rule("-m dscp --dscp-class AF41").matches[0] == IntMatch("dscp", ((34, 34),))
    assert rule("-m dscp --dscp 0x2e").matches[0] == IntMatch("dscp", ((46, 46),))
    assert rule("-m tos --tos Minimize-Delay").matches[0] == BitsMatch("tos", 0x3F, frozenset({0x10}))
    assert rule("-m addrtype --dst-type LOCAL,BROADCAST").matches[0] == \
        NameMatch("dst_type", frozenset({"local", "broadcast"}))
    assert rule("-m pkttype --pkt-type multicast").matches[0] == NameMatch("pkttype", frozenset({"multicast"}))
    assert rule("-m owner --uid-owner 1000-1999").matches[0] == IntMatch("uid", ((1000, 1999),))
    assert isinstance(rule("-m owner --uid-owner www-data").matches[0], OpaqueMatch)
    assert "MAC" in rule("-m mac --mac-source 00:11:22:33:44:55").matches[0].reason
    assert "bridge" in rule("-m physdev --physdev-in eth0").matches[0].reason


def test_opaque_modules_name_what_they_depend_on():
    assert rule("-m limit --limit 3/min").matches[0].reason == "depends on the packet rate (limit 3/min)"
    assert rule("-m set --match-set blacklist src").matches[0].reason == \
        "depends on the contents of ipset blacklist"
    assert rule("-m statistic --mode random --probability 0.5").matches[0].reason == \
        "random: statistic probability 0.5"
    assert "statistic" in rule("-m statistic --mode nth --every 2").matches[0].reason
    unknown = rule("-m foo --bar 1 --baz -p tcp -j ACCEPT")
    assert unknown.matches[0].text == "-m foo --bar 1 --baz"
    assert unknown.matches[1] == IntMatch("proto", ((6, 6),))


def test_comment_is_not_a_match():
    r = rule('-m comment --comment "allow \\"ssh\\"" -j ACCEPT')
    assert r.matches == () and r.comment == 'allow "ssh"'


# -- targets ----------------------------------------------------------------


@pytest.mark.parametrize("spec, action", [
    ("-j ACCEPT", Accept()), ("-j DROP", Drop()), ("-j RETURN", Return()),
    ("-j REJECT", Reject("icmp-port-unreachable")),
    ("-j REJECT --reject-with icmp-host-prohibited", Reject("icmp-host-prohibited")),
    ("-j MYCHAIN", Jump("MYCHAIN")), ("-g MYCHAIN", Goto("MYCHAIN")),
    ("-p tcp", Log("no target")),
    # kernel: mark = (mark & ~mask) ^ value
    ("-j MARK --set-xmark 0x4000/0x4000", SetField("mark", 0x4000, 0x4000)),
    ("-j MARK --set-mark 0x1/0xff", SetField("mark", 0x1, 0xFF)),
    ("-j MARK --set-mark 5", SetField("mark", 5, 0xFFFFFFFF)),
    ("-j MARK --and-mark 0xf", SetField("mark", 0, 0xFFFFFFF0)),
    ("-j MARK --or-mark 0x10", SetField("mark", 0x10, 0x10)),
    ("-j MARK --xor-mark 0x3", SetField("mark", 0x3, 0)),
    ("-j CONNMARK --set-mark 2", SetField("ctmark", 2, 0xFFFFFFFF)),
    ("-j CONNMARK --save-mark --mask 0xff", SetField("ctmark", 0, 0xFF, copy_from="mark")),
    ("-j CONNMARK --restore-mark", SetField("mark", 0, 0xFFFFFFFF, copy_from="ctmark")),
    ("-j DSCP --set-dscp-class EF", SetField("dscp", 46, 0x3F)),
    ("-j TTL --ttl-set 64", SetField("ttl", 64, 0xFF)),
    ("-j ECN --ecn-tcp-remove", EcnStrip()),
    ("-j NOTRACK", Notrack()), ("-j CT --notrack", Notrack()),
    ("-j NFQUEUE --queue-num 3", Queue("-j NFQUEUE --queue-num 3")),
    ("-j LOG --log-prefix x", Log("-j LOG --log-prefix x")),
    ("-j TCPMSS --clamp-mss-to-pmtu -p tcp", Log("-j TCPMSS --clamp-mss-to-pmtu -p tcp")),
    ("-j SYNPROXY --mss 1460", UnknownAction("-j SYNPROXY --mss 1460")),
    ("-p udp -j REDIRECT --to-ports 5353", Nat("redirect", None, None, 5353, None)),
])
def test_targets(spec, action):
    assert rule(spec).action == action


def test_nat_ipv6_brackets():
    r = rule("-p tcp -j DNAT --to-destination [2001:db8::1]:8080-8090", "ip6")
    assert r.action == Nat("dnat", ipaddress.ip_address("2001:db8::1"), None, 8080, 8090)


def test_parse_rule_accepts_a_full_command():
    r = parse_rule("-A FORWARD -p tcp --dport 22 -j ACCEPT", name="frag", line=4)
    assert r.location.line == 4 and r.action == Accept()


# -- errors -----------------------------------------------------------------


@pytest.mark.parametrize("line, message, column", [
    ("-A INPUT -p tcp --dport", "option --dport needs an argument", 17),
    ("-A INPUT -p tcp --foo 1", "unknown option --foo for match tcp", 17),
    ("-A INPUT -m tcp -p tcp --bar", "unknown option --bar for match tcp", 24),
    ("-A INPUT -j NOWHERE", "jump to undefined chain NOWHERE", 13),
    ("-A NOCHAIN -j ACCEPT", "chain NOCHAIN was never declared", 4),
    ("-A INPUT -p tcp --dport 70000 -j ACCEPT", "port 70000 out of range", 25),
    ("-A INPUT -s 10.0.0.300 -j ACCEPT", "invalid address", 13),
    ("-A INPUT ! -s 1.1.1.1,2.2.2.2", "! not allowed with multiple", 15),
    ("-A INPUT -p tcp -j ACCEPT extra", "unexpected argument 'extra'", 27),
    ("-A INPUT --log-prefix \"x", "unterminated quoted string", 23),
])
def test_rule_errors_are_located(line, message, column):
    err = error_of(FILTER + line + "\nCOMMIT\n")
    assert message in err.message
    assert (err.location.file, err.location.line, err.location.column) == ("t.rules", 5, column)
    assert err.source_line == line


def test_jump_loop_is_an_error():
    err = error_of(FILTER + ":A - [0:0]\n:B - [0:0]\n-A A -j B\n-A B -j A\nCOMMIT\n")
    assert "jump loop" in err.message and "A" in err.message and err.location.line in (7, 8)


def test_structural_errors():
    assert "never committed" in error_of(FILTER + "-A INPUT -j ACCEPT\n").message
    err = error_of(":INPUT ACCEPT [0:0]\nCOMMIT\n")
    assert "before any *table" in err.message and err.location.line == 1
    # without any table line, -P/-N/-A lines are iptables -S output (issue #17)
    assert len(parse("-A INPUT -j ACCEPT\n", "s.txt").table("filter").chains["INPUT"].rules) == 1
    assert "no iptables tables" in error_of("hello\nworld\n").message
    assert "binary" in error_of("*filter\n\0\0").message
    assert "unknown table" in error_of("*filters\nCOMMIT\n").message
    assert "bad policy" in error_of("*filter\n:INPUT REJECT [0:0]\nCOMMIT\n").message
    bang = error_of(FILTER + "-A INPUT -p tcp !\nCOMMIT\n")
    assert "'!'" in bang.message and bang.location.line == 5
    assert "has no COMMIT before" in error_of("*filter\n*nat\nCOMMIT\n").message


def test_skeleton_cache_does_not_mix_values():
    # same shape, different values: each rule keeps its own
    text = FILTER + "".join(f"-A INPUT -s 10.0.{i}.0/24 -p tcp --dport {1000 + i} -j ACCEPT\n"
                            for i in range(5)) + "-A INPUT -s 10.0.9.0/24 -p tcp --dport 99999 -j ACCEPT\nCOMMIT\n"
    err = error_of(text)
    assert err.location.line == 10 and "99999" in err.message
    rs = parse(text.replace("99999", "7"), "x")
    ports = [r.matches[2].ranges[0][0] for r in rs.table("filter").chains["INPUT"].rules]
    assert ports == [1000, 1001, 1002, 1003, 1004, 7]


def test_ipv6_extension_header_match_never_matches_a_modelled_packet():
    """ufw's before6.rules drops routing-header type 0 packets; packets without
    a routing header must not be caught (the kernel agrees)."""
    from ruleanalyzer import loads, make_packet
    from ruleanalyzer.engine import evaluate

    rs = loads("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m rt --rt-type 0 -j DROP\nCOMMIT\n",
               dialect="iptables", name="rules.v6")
    r = evaluate(rs, make_packet(src="2001:db8::7", dst="2001:db8::10", dport=22, state="new"))
    assert r.verdict == "accept" and r.decided_by.is_policy


def test_two_negated_single_ports_depend_on_the_backend_only_when_one_differs():
    """iptables-nft 1.8 compiles '! --sport A ! --dport B' into one 4-byte
    compare (either port differing matches); xtables needs both to differ.
    Found by the kernel suite (seeds 1071, 1084)."""
    from ruleanalyzer import loads, make_packet
    from ruleanalyzer.engine import evaluate

    rs = loads("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp ! --sport 80 ! --dport 22 -j DROP\nCOMMIT\n",
               dialect="iptables")

    def verdict(sport, dport):
        return evaluate(rs, make_packet(src="192.0.2.1", dst="192.0.2.2", sport=sport, dport=dport)).verdict

    assert verdict(1000, 443) == "drop"        # both differ: every backend
    assert verdict(80, 22) == "accept"         # neither differs
    assert verdict(80, 443) == "unknown"       # one differs: backend decides


def test_rule_shape_shortcut_agrees_with_the_line_shapes():
    # run() asks _rule_shape of rule lines instead of computing their shape
    import itertools

    alphabet = ["-A", "-s", "!", "x", "-1", "-4", "[1:2]", "[x]", "--dport", "\"-q\"", "-"]
    for length in range(1, 6):
        for raws in itertools.product(alphabet, repeat=length):
            raws = list(raws)
            if raws[0][0] not in "-[":
                continue
            expected = iptables._line_kind(iptables._shape(raws), raws) == "rule"
            assert iptables._rule_shape(raws) == expected, raws


def test_rule_locations_are_ordinary_frozen_locations():
    # the reader builds Location without its __init__ (iptables._location)
    import dataclasses

    from ruleanalyzer.model import Location

    rs = parse(FILTER + ":web - [0:0]\n-A INPUT -p tcp -j web\nCOMMIT\n", "t.rules")
    chain = rs.table("filter").chains["web"]
    where = rs.table("filter").chains["INPUT"].rules[0].location
    for loc, line, column in ((where, 6, 1), (chain.location, 5, 1)):
        assert type(loc) is Location and loc == Location("t.rules", line, column)
        assert hash(loc) == hash(Location("t.rules", line, column)) and loc.path is None
        assert str(loc) == f"t.rules:{line}:{column}"
        with pytest.raises(dataclasses.FrozenInstanceError):
            loc.line = 1
