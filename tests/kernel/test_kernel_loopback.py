"""Kernel proof for issue #15: a locally generated packet to a loopback
address is ``--dst-type LOCAL`` / ``fib daddr type local`` on output (the
kernel's RTN_LOCAL route for 127.0.0.0/8 and ::1), one to a routed public
address is not; the engine answers alike.

One namespace (lo up, a veth pair with a default route), one UDP datagram
per destination sent from inside it; the OUTPUT rule's counter says whether
it matched. Deleted after the test; every command has a timeout.
"""

from __future__ import annotations

import secrets

import pytest

from ruleanalyzer import loads
from ruleanalyzer.engine import evaluate
from ruleanalyzer.packets import make_packet

from .netns import Namespace, missing_prerequisites

IPT = "*filter\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -p udp --dport 30080 -m addrtype --dst-type LOCAL -j DROP\nCOMMIT\n"
NFT = ("table inet ra15 {\n chain out {\n  type filter hook output priority 0; policy accept;\n"
       "  udp dport 30080 fib daddr type local counter drop\n }\n}\n")
CASES = (("127.0.0.1", True), ("127.3.4.5", True), ("198.51.100.7", False),
         ("::1", True), ("2001:db8:9::7", False))
SEND = ("import socket,sys\nd=sys.argv[1]\n"
        "s=socket.socket(socket.AF_INET6 if ':' in d else socket.AF_INET, socket.SOCK_DGRAM)\n"
        "try: s.sendto(b'x', (d, 30080))\nexcept OSError: pass\n")


def _counted(ns: Namespace, dialect: str) -> int:
    if dialect == "nftables":
        out = ns.exec("nft", "list", "table", "inet", "ra15").stdout
        return int(out.split("counter packets ")[1].split()[0])
    total = 0
    for tool in ("iptables-save", "ip6tables-save"):
        for line in ns.exec(tool, "-c").stdout.splitlines():
            if line.startswith("[") and "-A OUTPUT" in line:
                total += int(line[1:].split(":")[0])
    return total


@pytest.mark.parametrize("dialect", ["iptables", "nftables"])
def test_output_to_loopback_is_local_in_the_kernel_and_the_engine(dialect):
    reason = missing_prerequisites(("ip", "iptables-restore", "ip6tables-restore", "nft", "python3"))
    if reason:
        pytest.skip(reason)
    ns = Namespace(f"ra-{secrets.token_hex(3)}-lo15")
    try:
        ns.exec("ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1")
        ns.exec("ip", "link", "set", "d1", "up")
        ns.exec("ip", "link", "set", "d0", "up")
        ns.exec("ip", "addr", "add", "192.0.2.1/24", "dev", "d0")
        ns.exec("ip", "-6", "addr", "add", "2001:db8:2::1/64", "dev", "d0", "nodad")
        ns.exec("ip", "route", "add", "default", "via", "192.0.2.254")
        ns.exec("ip", "-6", "route", "add", "default", "via", "2001:db8:2::fe")
        if dialect == "nftables":
            ns.exec("nft", "-f", "-", input=NFT)
            rs = loads(NFT, dialect="nftables", name="rules.nft")
        else:
            ns.exec("iptables-restore", input=IPT)
            ns.exec("ip6tables-restore", input=IPT)
        for dst, local in CASES:
            before = _counted(ns, dialect)
            ns.exec("python3", "-c", SEND, dst, timeout=10)
            kernel = _counted(ns, dialect) > before
            assert kernel == local, (dialect, dst)
            if dialect == "iptables":
                rs = loads(IPT, dialect="iptables", name="rules.v6" if ":" in dst else "rules.v4")
            src = ("::1" if dst == "::1" else "2001:db8:2::1") if ":" in dst else (
                "127.0.0.1" if dst.startswith("127.") else "192.0.2.1")
            packet = make_packet(src=src, dst=dst, proto="udp", dport=30080, hook="output", state="new")
            assert (evaluate(rs, packet).verdict == "drop") == local, (dialect, dst)
    finally:
        ns.delete()
