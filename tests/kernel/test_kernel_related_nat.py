"""Kernel proof: the first packet of an *expected* connection (RELATED, not
an ICMP error) passes the nat rules when its master connection was not
translated; the engine follows both ways and says what decides.

The kernel (``nf_nat_ipv4_fn`` → ``nf_nat_inet_fn``) translates an ICMP
error as the connection it quotes without the nat table, but runs the nat
rules for any other RELATED packet whose connection has no translation yet
— which a NAT helper gives it only when the master connection was
translated (``nf_nat_follow_master``). So the engine's answer for such a
packet is "unknown, depends on whether the master was translated", and the
branch where it was not must be what the kernel does here.

Set-up (``bed``: namespaces fw and peer): fw runs a tiny FTP control
server on port 21 whose PASV answer names port 5000, with the ftp
conntrack helper assigned to port 21 (``CT --helper ftp`` / ``ct helper
set``, after conntrack has looked the packet up: priority 0), and listeners on 5000 and 6000 that say which one answered. The
peer connects to 21, asks PASV, then opens the data connection to 5000,
whose first packet is RELATED. fw's INPUT accepts port 21, established
packets and RELATED packets to port 5000, nothing else. With a nat rule
redirecting 5000 to 6000 the data connection is dropped (it arrives for
6000); without one, "five" answers. Every process is bounded in time and
the namespaces are deleted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from ruleanalyzer import loads
from ruleanalyzer.engine import evaluate
from ruleanalyzer.packets import make_packet

from .netns import FW_V4, PEER_V4, missing_prerequisites

SERVER = r"""
import socket, threading, time
def listen(port, word):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(5)
    def loop():
        while True:
            c, _ = s.accept(); c.sendall(word); c.close()
    threading.Thread(target=loop, daemon=True).start()
listen(5000, b"five"); listen(6000, b"six")
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 21)); s.listen(1)
print("ready", flush=True)
c, _ = s.accept()
c.sendall(b"220 ready\r\n"); c.recv(100)
c.sendall(b"227 Entering Passive Mode (%s,19,136).\r\n" % FW.replace(".", ",").encode())
time.sleep(6)
"""
CLIENT = r"""
import socket, sys
c = socket.create_connection((FW, 21), timeout=3)
c.recv(100); c.sendall(b"PASV\r\n")
assert c.recv(100).startswith(b"227"), "no PASV answer"
try:
    d = socket.create_connection((FW, 5000), timeout=2)
    print(d.recv(10).decode() or "closed")
except OSError as e:
    print("no answer")
"""

FILTER_IPT = """*filter
:INPUT DROP [0:0]
-A INPUT -p tcp --dport 21 -j ACCEPT
-A INPUT -m conntrack --ctstate ESTABLISHED -j ACCEPT
-A INPUT -p tcp --dport 5000 -m conntrack --ctstate RELATED -j ACCEPT
COMMIT
"""
IPT = {True: "*raw\n-A PREROUTING -p tcp --dport 21 -j CT --helper ftp\nCOMMIT\n"
             "*nat\n-A PREROUTING -p tcp --dport 5000 -j REDIRECT --to-ports 6000\nCOMMIT\n" + FILTER_IPT,
       False: "*raw\n-A PREROUTING -p tcp --dport 21 -j CT --helper ftp\nCOMMIT\n" + FILTER_IPT}
NFT = """table ip ra {
  ct helper ftp-21 {
    type "ftp" protocol tcp
    l3proto ip
  }
  chain helpers {
    type filter hook prerouting priority 0; policy accept;
    tcp dport 21 ct helper set "ftp-21"
  }
  chain nat {
    type nat hook prerouting priority -100; policy accept;
%s  }
  chain input {
    type filter hook input priority 0; policy drop;
    tcp dport 21 accept
    ct state established accept
    tcp dport 5000 ct state related accept
  }
}
"""
NFT_NAT = {True: "    tcp dport 5000 redirect to :6000\n", False: ""}


def _kernel(bed, dialect: str, redirect: bool) -> str:
    if dialect == "iptables":
        bed.load_iptables(IPT[redirect])
    else:
        bed.load_nft(NFT % NFT_NAT[redirect])
    server = subprocess.Popen(["ip", "netns", "exec", bed.fw.name, "timeout", "20", sys.executable, "-c",
                               f"FW = {FW_V4!r}\n" + SERVER],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        assert server.stdout.readline().strip() == "ready", server.stderr.read()
        done = bed.peer.exec("timeout", "15", sys.executable, "-c", f"FW = {FW_V4!r}\n" + CLIENT,
                             timeout=20)
        return done.stdout.strip()
    finally:
        os.killpg(server.pid, signal.SIGKILL)  # timeout's child too: the ports are free again
        server.wait(timeout=5)
        for pipe in (server.stdout, server.stderr):
            pipe.close()


def _engine(dialect: str, redirect: bool):
    text = IPT[redirect] if dialect == "iptables" else NFT % NFT_NAT[redirect]
    ruleset = loads(text, dialect=dialect)
    return evaluate(ruleset, make_packet(src=PEER_V4, dst=FW_V4, proto="tcp", sport=40000, dport=5000,
                                         flags="SYN", state="related", hook="input"))


@pytest.mark.parametrize("dialect", ["iptables", "nftables"])
def test_an_expected_connection_passes_the_nat_rules_in_the_kernel_and_the_engine(bed, dialect):
    reason = missing_prerequisites(("ip", "iptables-restore", "nft", "timeout"))
    if reason:
        pytest.skip(reason)
    # The nat rule redirects the data connection to 6000, which INPUT drops.
    assert _kernel(bed, dialect, redirect=True) == "no answer"
    result = _engine(dialect, redirect=True)
    assert result.verdict == "unknown"
    assert any("master connection" in d for d in result.depends_on)
    untranslated_master = [r for r in result.alternatives
                           if any(d.startswith("not (the master connection") for d in r.depends_on)]
    assert len(untranslated_master) == 1
    assert untranslated_master[0].verdict == "drop"        # the kernel's answer
    assert untranslated_master[0].packet.dport == 6000      # after the redirect, as the kernel had it
    # Without a nat rule the same data connection is accepted as RELATED.
    bed.flush()
    assert _kernel(bed, dialect, redirect=False) == "five"
    plain = _engine(dialect, redirect=False)
    assert plain.verdict == "accept" and plain.decided_by.rule.index == 3


def test_an_icmp_error_skips_the_nat_rules():
    """An ICMP error (RELATED, protocol ICMP) is translated as the
    connection it quotes, never by the nat rules: no assumption, no fork."""
    result = evaluate(loads(IPT[True].replace("-p tcp --dport 5000 -j REDIRECT --to-ports 6000",
                                              "-j DNAT --to-destination 198.51.100.9"), dialect="iptables"),
                      make_packet(src=PEER_V4, dst=FW_V4, proto="icmp", icmp_type=3, icmp_code=3,
                                  state="related", hook="input"))
    assert result.verdict == "drop" and result.depends_on == ()
