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


# Loopback destinations on output (issue #15). The kernel's xt_addrtype
# (addrtype_mt_v1 -> inet_dev_addr_type / match_lookup_rt6) and nft_fib_ipv4
# read the route type of the address; 127.0.0.0/8 and ::1 sit in the local
# table as RTN_LOCAL routes from the moment lo is up, so a locally generated
# packet to them is --dst-type LOCAL: kube-proxy's nat OUTPUT rule
# ``-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS`` relies on it for
# ``curl localhost:NODEPORT``. A public destination stays route-dependent
# but is never LOCAL.

OUTPUT_IPT = "*filter\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -m addrtype --dst-type LOCAL -j DROP\nCOMMIT\n"
OUTPUT_NFT = ("table inet f {\n chain out {\n  type filter hook output priority 0; policy accept;\n"
              "  fib daddr type local drop\n }\n}\n")


def test_output_to_loopback_is_local_and_to_a_public_address_is_not():
    for text, dialect, name in ((OUTPUT_IPT, "iptables", "rules.v4"), (OUTPUT_IPT, "iptables", "rules.v6"),
                                (OUTPUT_NFT, "nftables", "rules.nft")):
        rs = loads(text, dialect=dialect, name=name)
        v6 = name == "rules.v6"
        for dst, verdict in (("::1" if v6 else "127.0.0.1", "drop"),
                             ("2001:4860:4860::8888" if v6 else "8.8.8.8", "accept")):
            src = "::1" if v6 and dst == "::1" else ("2001:db8::1" if v6 else "192.0.2.1")
            if not v6 and dst.startswith("127."):
                src = "127.0.0.1"
            p = make_packet(src=src, dst=dst, dport=30080, hook="output", state="new")
            assert evaluate(rs, p).verdict == verdict, (dialect, name, dst)
    rs = loads(OUTPUT_NFT, dialect="nftables", name="rules.nft")
    p = make_packet(src="::1", dst="::1", dport=30080, hook="output", state="new")
    assert evaluate(rs, p).verdict == "drop"
    p = make_packet(src="127.0.0.1", dst="127.8.9.10", dport=30080, hook="output", state="new")
    assert evaluate(rs, p).verdict == "drop"


def test_a_loopback_source_arriving_is_local():
    rs = loads(rules("-m addrtype --src-type LOCAL"), dialect="iptables")
    p = make_packet(src="127.0.0.1", dst="127.0.0.1", dport=22, state="new", iif="lo")
    assert evaluate(rs, p).verdict == "accept"
