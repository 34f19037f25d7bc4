"""The harness itself, against the kernel alone (no analyzer involved):
its observations must be right before they can judge anything."""

from __future__ import annotations

import pytest

from .netns import FW_V4, FW_V6
from .probes import Probe
from .runner import observe_iptables

pytestmark = pytest.mark.kernel

SYN, ACK = 0x02, 0x10

DROP_SSH = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp -m tcp --dport 22 -j DROP
-A INPUT -p tcp -m tcp --dport 80 -j ACCEPT
-A INPUT -m conntrack --ctstate INVALID -j DROP
COMMIT
"""


def test_drop_rule_drops_and_its_counter_moves(bed):
    bed.load_iptables(DROP_SSH)
    [ssh] = observe_iptables(bed, [Probe(1, "198.51.100.7", FW_V4, 6, 40000, 22, SYN)], 4)
    assert ssh.problem is None
    assert (ssh.verdict, ssh.decision.chain, ssh.decision.index) == ("drop", "INPUT", 1)
    assert not ssh.delivered


def test_accepted_packet_reaches_the_raw_socket(bed):
    bed.load_iptables(DROP_SSH)
    web, other = observe_iptables(bed, [Probe(2, "198.51.100.7", FW_V4, 6, 40001, 80, SYN),
                                        Probe(3, "10.1.2.3", FW_V4, 17, 5000, 53)], 4)
    assert (web.verdict, web.decision.index, web.delivered) == ("accept", 2, True)
    assert (other.verdict, other.decision.index, other.delivered) == ("accept", None, True)


def test_reply_states_come_from_real_conntrack(bed):
    """A SYN-ACK nobody asked for is INVALID; after the firewall's own SYN
    it is an ESTABLISHED reply — for IPv4 and IPv6 alike."""
    for family, fw, src in ((4, FW_V4, "198.51.100.9"), (6, FW_V6, "2001:db8:1::9")):
        bed.load_iptables(DROP_SSH.replace("--dport 80 ", "--dport 80 -m conntrack --ctstate NEW "),
                          family)
        stray, reply = observe_iptables(bed, [
            Probe(10 + family, src, fw, 6, 40010, 443, SYN | ACK),
            Probe(20 + family, src, fw, 6, 40011, 443, SYN | ACK, state="established")], family)
        assert (stray.verdict, stray.decision.index) == ("drop", 3), family
        assert (reply.verdict, reply.decision.index) == ("accept", None), family
        assert not any(o.problem for o in (stray, reply))


VMAP = """
table inet filter {
  chain first {
    type filter hook input priority -10; policy accept;
    tcp dport vmap { 22 : drop, 80 : accept }
  }
  chain second {
    type filter hook input priority 10; policy drop;
    udp dport 53 accept
  }
}
"""


def test_nft_trace_names_the_vmap_rule_and_each_policy(bed):
    """Accept in one base chain does not end the next: port 80 is accepted
    by the vmap, then dropped by the second chain's policy."""
    from .observe_nft import TRACE_TABLE
    from .runner import observe_nftables

    bed.load_nft(VMAP + TRACE_TABLE)
    ssh, web, dns = observe_nftables(bed, [Probe(31, "198.51.100.7", FW_V4, 6, 40031, 22, SYN),
                                           Probe(32, "198.51.100.7", FW_V4, 6, 40032, 80, SYN),
                                           Probe(33, "198.51.100.7", FW_V4, 17, 40033, 53)], 4)
    assert (ssh.verdict, ssh.decision.chain, ssh.decision.index) == ("drop", "first", 1)
    assert (web.verdict, web.decision.chain, web.decision.index) == ("drop", "second", None)
    assert (dns.verdict, dns.decision.chain, dns.decision.index, dns.delivered) == ("accept", "second", 1, True)
