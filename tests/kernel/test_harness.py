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


def test_stale_namespaces_of_a_killed_run_are_removed_and_nothing_else():
    """A run killed mid-test leaves its namespaces behind; the next run
    deletes those (ours by name, old, empty) and leaves young ones, a busy
    one and one not named as ours."""
    import os
    import secrets
    import subprocess
    import time

    from .netns import STALE_SECONDS, Namespace, missing_prerequisites, remove_stale_namespaces, run

    reason = missing_prerequisites(("ip",))
    if reason:
        pytest.skip(reason)
    tag = secrets.token_hex(3)
    names = {"stale": f"ra-{tag}-stale", "busy": f"ra-{tag}-busy", "other": f"other-{tag}-stale"}
    made, sleeper = [], None
    try:
        for name in names.values():
            made.append(Namespace(name))
        sleeper = subprocess.Popen(["ip", "netns", "exec", names["busy"], "sleep", "30"])
        deadline = time.monotonic() + 10
        while not run(["ip", "netns", "pids", names["busy"]], check=False).stdout.strip():
            assert time.monotonic() < deadline, "the sleeper never entered its namespace"
            time.sleep(0.05)
        mine = set(names.values())
        assert remove_stale_namespaces(only=mine) == []  # all young now
        # an hour on (a namespace's file takes no other time: it is a mount point)
        gone = remove_stale_namespaces(now=time.time() + STALE_SECONDS + 60, only=mine)
        assert gone == [names["stale"]]
        left = set(os.listdir("/run/netns"))
        assert names["stale"] not in left
        assert {names["busy"], names["other"]} <= left
    finally:
        if sleeper is not None:
            sleeper.kill()
            sleeper.wait(timeout=10)
        for ns in made:
            ns.delete()
