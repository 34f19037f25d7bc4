"""ip_forward lowers the TTL (IPv6: hop limit) before the FORWARD hook and
drops a packet that arrives with TTL 1 or 0 (ICMP time exceeded): FORWARD
and POSTROUTING rules read the lowered value, PREROUTING, INPUT and OUTPUT
the packet's own (the kernel proof: tests/kernel/test_kernel_ttl.py)."""

import pytest

from ruleanalyzer import evaluate, loads, make_packet

IPT = ("*mangle\n:PREROUTING ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
       "-A PREROUTING -p udp --dport 7 -j TTL --ttl-set 1\n-A FORWARD -m ttl --ttl-eq 9 -j TTL --ttl-set 200\n"
       "-A POSTROUTING -m ttl --ttl-eq 200 -j DROP\nCOMMIT\n"
       "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
       "-A INPUT -m ttl --ttl-eq 64 -j DROP\n-A OUTPUT -m ttl --ttl-eq 64 -j DROP\n"
       "-A FORWARD -m ttl --ttl-eq 63 -j DROP\nCOMMIT\n")
NFT = ("table inet t {\n chain fw { type filter hook forward priority 0; policy accept;\n"
       "  ip ttl 63 drop\n  ip6 hoplimit 63 drop\n }\n}\n")
NFT_SET = """table inet ra {
 chain pre { type filter hook prerouting priority -150; policy accept;
  udp dport 5000 ip ttl set 9 counter
 }
 chain fw { type filter hook forward priority 0; policy accept;
  udp dport 5000 ip ttl 8 counter
  udp dport 5000 ip6 hoplimit 63 counter
 }
}
"""
V4 = dict(src="192.0.2.1", dst="198.51.100.1", proto="udp", dport=53)
V6 = dict(src="2001:db8::1", dst="2001:db8:1::1", proto="udp", dport=53)


def run(text, dialect, **fields):
    result = evaluate(loads(text, dialect=dialect), make_packet(**fields))
    d = result.decided_by
    where = None if d is None else (d.chain.name, d.rule.index if d.rule else "policy")
    return result.verdict, where, result


@pytest.mark.parametrize("ttl, expected", [(64, ("drop", ("FORWARD", 1))), (63, ("accept", ("FORWARD", "policy"))),
                                           (201, ("drop", ("POSTROUTING", 1))), (2, ("accept", ("FORWARD", "policy"))),
                                           (10, ("drop", ("POSTROUTING", 1)))])
def test_forward_and_postrouting_read_the_ttl_one_lower(ttl, expected):
    # (10: mangle FORWARD reads 9 and sets 200, which POSTROUTING drops)
    assert run(IPT, "iptables", hook="forward", ttl=ttl, **V4)[:2] == expected


def test_input_and_output_read_the_ttl_the_packet_has():
    assert run(IPT, "iptables", hook="input", ttl=64, **V4)[:2] == ("drop", ("INPUT", 1))
    assert run(IPT, "iptables", hook="output", ttl=64, **V4)[:2] == ("drop", ("OUTPUT", 1))


@pytest.mark.parametrize("fields", [dict(ttl=1, **V4), dict(ttl=0, **V4), dict(ttl=64, **{**V4, "dport": 7})])
def test_a_packet_whose_ttl_runs_out_never_reaches_forward(fields):
    verdict, where, result = run(IPT, "iptables", hook="forward", **fields)
    assert (verdict, where) == ("drop", None)
    assert "expires here" in result.routing and "ICMP time exceeded" in result.routing
    assert {s.chain.hook for s in result.trace} <= {"prerouting"}


def test_nftables_ttl_and_hop_limit_are_lowered_too():
    assert run(NFT, "nftables", hook="forward", ttl=64, **V4)[:2] == ("drop", ("fw", 1))
    assert run(NFT, "nftables", hook="forward", ttl=64, **V6)[:2] == ("drop", ("fw", 2))
    assert run(NFT, "nftables", hook="input", ttl=63, **V6)[0] == "accept"  # no input chain
    verdict, where, result = run(NFT, "nftables", hook="forward", ttl=1, **V6)
    assert (verdict, where) == ("drop", None) and result.routing.startswith("hop limit 1 expires")


def test_dnat_to_another_host_lowers_the_ttl_before_forward():
    text = ("*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp --dport 80 -j DNAT --to-destination 10.0.0.5\n"
            "COMMIT\n*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -m ttl --ttl-eq 63 -j DROP\nCOMMIT\n")
    fields = dict(src="192.0.2.1", dst="198.51.100.1", proto="tcp", dport=80, flags="SYN", hook="input")
    verdict, where, result = run(text, "iptables", ttl=64, **fields)
    assert (verdict, where, result.outcome) == ("drop", ("FORWARD", 1), "dropped")
    verdict, where, result = run(text, "iptables", ttl=1, **fields)
    assert (verdict, where) == ("drop", None) and "expires" in result.routing


INC = ("*mangle\n:PREROUTING ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
       "-A PREROUTING -m ttl --ttl-lt 10 -j TTL --ttl-inc 1\n-A PREROUTING -m ttl --ttl-gt 250 -j TTL --ttl-dec 2\n"
       "-A FORWARD -m ttl --ttl-eq 100 -j TTL --ttl-dec 5\n-A POSTROUTING -m ttl --ttl-eq 95 -j DROP\n"
       "-A POSTROUTING -m ttl --ttl-eq 252 -j DROP\nCOMMIT\n"
       "*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -m ttl --ttl-eq 1 -j DROP\nCOMMIT\n")


@pytest.mark.parametrize("ttl, expected", [
    (1, ("drop", ("FORWARD", 1))),  # raised to 2 before ip_forward: forwarded, FORWARD reads 1
    (0, ("drop", None)),  # raised to 1: expires
    (101, ("drop", ("POSTROUTING", 1))),  # FORWARD reads 100, takes 5 away
    (255, ("drop", ("POSTROUTING", 2))),  # 253 after PREROUTING, 252 in FORWARD
    (10, ("accept", ("FORWARD", "policy")))])
def test_ttl_inc_and_dec_change_what_expires_and_what_later_rules_read(ttl, expected):
    assert run(INC, "iptables", hook="forward", ttl=ttl, **V4)[:2] == expected


def test_ttl_arithmetic_saturates_as_the_kernel_does():
    text = ("*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p udp -j TTL --ttl-inc 200\n"
            "-A PREROUTING -p tcp -j TTL --ttl-dec 200\nCOMMIT\n*filter\n:INPUT ACCEPT [0:0]\n"
            "-A INPUT -m ttl --ttl-eq 255 -j DROP\n-A INPUT -m ttl --ttl-eq 0 -j DROP\nCOMMIT\n")
    assert run(text, "iptables", hook="input", ttl=100, **V4)[:2] == ("drop", ("INPUT", 1))
    tcp = {**V4, "proto": "tcp", "dport": 22}
    assert run(text, "iptables", hook="input", ttl=100, **tcp)[:2] == ("drop", ("INPUT", 2))


def test_nft_ttl_set_in_an_inet_table_is_ipv4_only():
    """nft puts ``meta nfproto ipv4`` before ``ip ttl set`` in an inet table
    (tests/kernel/test_kernel_ttl.py sees it): IPv6 keeps its hop limit."""
    for fields, path in ((V4, [("pre", 1), ("fw", 1)]), (V6, [("fw", 2)])):
        result = run(NFT_SET, "nftables", hook="forward", ttl=64, **{**fields, "dport": 5000})[2]
        assert [(s.chain.name, s.rule.index) for s in result.trace if s.event == "match"] == path
