"""Proof against the kernel for exposure (issue #13).

For each ruleset — fixtures shaped like what ufw, fail2ban and admins write,
and a stock ufw host built by the real ufw on a private copy of its
configuration inside the namespace — the audit's exposure analysis is
asked which of a few ports are open to the internet, and then:

- for every reported port, real TCP handshakes from random public sources
  drawn from the counted set (sources the analysis says complete the
  handshake) must complete in the kernel;
- for every port not reported, random public sources must fail.

A source is a random public address the peer namespace takes on; the
firewall routes it back to the peer (nothing leaves the machine).

    RA_EXPOSURE_SEED=3 pytest tests/kernel/test_kernel_exposure.py -s
"""

from __future__ import annotations

import ipaddress
import os
import random
from concurrent.futures import ThreadPoolExecutor

import pytest

from .netns import FW_IF, FW_V4, PEER_IF, PEER_V4, TestBed, missing_prerequisites

pytestmark = pytest.mark.kernel

SEED = int(os.environ.get("RA_EXPOSURE_SEED", 13))
#: Handshakes per reported port and failing attempts per unreported port.
TRIES = 2
PORTS = {22: "SSH", 3306: "MySQL", 6379: "Redis"}
HEAD = "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT {output} [0:0]\n"
EST = "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"

#: name -> (iptables-save text, ports the analysis must report)
CASES = {
    # fail2ban-shaped ban chain, a blocklist, a rate-limited LOG before the accept
    "fail2ban-blocklist-log": (HEAD.format(output="ACCEPT") + ":f2b-sshd - [0:0]\n"
                               "-A INPUT -p tcp -m multiport --dports 22 -j f2b-sshd\n"
                               "-A INPUT -s 45.0.0.0/8 -j DROP\n" + EST
                               + "-A INPUT -p tcp -m limit --limit 50/s -j LOG --log-prefix in\n"
                               "-A INPUT -p tcp --dport 22 -j ACCEPT\n"
                               "-A INPUT -s 198.51.100.0/24 -p tcp --dport 3306 -j ACCEPT\n"
                               "-A f2b-sshd -s 91.200.12.0/24 -j REJECT\n-A f2b-sshd -j RETURN\nCOMMIT\n",
                               {22}),
    # ufw's ufw-not-local: addrtype decided on input
    "addrtype-not-local": (HEAD.format(output="ACCEPT") + ":not-local - [0:0]\n" + EST
                           + "-A INPUT -j not-local\n"
                           "-A not-local -m addrtype --dst-type LOCAL -j RETURN\n"
                           "-A not-local -m addrtype --dst-type MULTICAST -j RETURN\n"
                           "-A not-local -j DROP\n"
                           "-A INPUT -p tcp --dport 6379 -j ACCEPT\nCOMMIT\n", {6379}),
    # the SYN gets in, the SYN-ACK does not get out: nothing completes
    "synack-dropped": (HEAD.format(output="DROP") + EST + "-A INPUT -p tcp --dport 22 -j ACCEPT\n"
                       "-A OUTPUT -p udp --dport 53 -j ACCEPT\nCOMMIT\n", set()),
    # everything in
    "accept-all": (HEAD.format(output="ACCEPT") + "-A INPUT -j ACCEPT\nCOMMIT\n", {22, 3306, 6379}),
}


def _random_public(rnd: random.Random) -> ipaddress.IPv4Address:
    from ruleanalyzer.checks.exposure import NON_PUBLIC_V4

    nets = [ipaddress.ip_network(n) for n in NON_PUBLIC_V4]
    while True:
        a = ipaddress.IPv4Address(rnd.getrandbits(32))
        if not any(a in n for n in nets):
            return a


def _exposure(text: str):
    """Ports the audit reports (RA401/RA402) and, per port, a membership
    test of the counted source set (input path, IPv4)."""
    from ruleanalyzer import loads
    from ruleanalyzer.audit import run_audit
    from ruleanalyzer.checks.base import Context
    from ruleanalyzer.checks.exposure import _analysis

    rs = loads(text, dialect="iptables")
    findings = run_audit([rs], select=["RA401", "RA402"],
                         config=_config()).findings
    reported = {p for p, name in PORTS.items() for f in findings
                if f.code == "RA402" or f"{name} ({p}/tcp, IPv4" in f.message}
    ctx = Context(rs)
    ctx.trusted_interfaces = ["lo"]
    (path,) = [p for p in _analysis(ctx, 0.99) if p.hook == "input" and p.family == 4]
    sp = path.sp
    code = next(c for c, label, _ in path.classes() if label == "*")

    def counted(port: int, addr) -> bool:
        point = sp.eq("src", int(addr)) & sp.family(4)
        return not sp.disjoint(path.at(path.done_l, code, port), point)

    return reported, counted


def _config():
    from ruleanalyzer.config import Config

    return Config(options={"RA401": {"ports": PORTS}})


def _handshake(bed: TestBed, source, port: int, timeout: float = 1.5) -> bool:
    bed.peer.exec("ip", "addr", "add", f"{source}/32", "dev", PEER_IF)
    bed.fw.exec("ip", "route", "replace", f"{source}/32", "via", PEER_V4, "dev", FW_IF, "onlink")
    try:
        out = bed.call({"op": "connect", "addr": FW_V4, "port": port, "timeout": timeout,
                        "source": str(source)}, timeout=30)
        return all(out[k] for k in ("connected", "accepted", "to_server", "to_client"))
    finally:
        bed.peer.exec("ip", "addr", "del", f"{source}/32", "dev", PEER_IF, check=False)


def _prove(name: str, text: str, rnd: random.Random) -> list[str]:
    reported, counted = _exposure(text)
    wrong = []
    with TestBed() as bed:
        for port in PORTS:
            bed.call({"op": "listen", "addr": FW_V4, "port": port})
        bed.load_iptables(text)
        for port in sorted(PORTS):
            sources = []
            while len(sources) < TRIES:
                s = _random_public(rnd)
                if port not in reported or counted(port, s):
                    sources.append(s)
            for s in sources:
                works = _handshake(bed, s, port)
                if works != (port in reported):
                    wrong.append(f"{name}: port {port} from {s}: kernel {'completes' if works else 'fails'}, "
                                 f"analysis {'reports' if port in reported else 'does not report'} it")
    return wrong


@pytest.fixture(scope="module")
def kernel():
    reason = missing_prerequisites(("ip", "iptables-restore"))
    if reason:
        pytest.skip(reason)


def test_reported_expectations_of_the_fixtures():
    for name, (text, expected) in CASES.items():
        reported, _ = _exposure(text)
        assert reported == expected, name


def test_exposures_hold_in_the_kernel(kernel):
    rnd = random.Random(SEED)
    seeds = {name: rnd.randrange(1 << 30) for name in CASES}
    with ThreadPoolExecutor(max_workers=len(CASES)) as pool:
        results = pool.map(lambda n: _prove(n, CASES[n][0], random.Random(seeds[n])), CASES)
    wrong = [w for r in results for w in r]
    assert wrong == []


def test_stock_ufw_host_exposure_holds_in_the_kernel(tmp_path):
    """The real ufw (private config copy, inside the namespace) with
    ``allow 22/tcp`` and a ``deny from`` block: its iptables-save output —
    ufw-not-local's addrtype included — reports SSH, and the kernel agrees."""
    reason = missing_prerequisites(("ip", "iptables-save", "ufw", "unshare"))
    if reason:
        pytest.skip(reason)
    from .test_kernel_ufw import _fingerprint, _run_ufw

    host_before = _fingerprint()
    rnd = random.Random(SEED)
    with TestBed() as bed:
        for port in PORTS:
            bed.call({"op": "listen", "addr": FW_V4, "port": port})
        _run_ufw(bed, tmp_path, ["deny from 45.0.0.0/8", "allow 22/tcp", "allow from 198.51.100.0/24 to any port 3306"])
        text = bed.fw.exec("iptables-save").stdout
        reported, counted = _exposure(text)
        assert reported == {22}, text
        wrong = []
        for port in sorted(PORTS):
            for _ in range(TRIES):
                s = _random_public(rnd)
                while port in reported and not counted(port, s):
                    s = _random_public(rnd)
                if _handshake(bed, s, port) != (port in reported):
                    wrong.append(f"port {port} from {s}")
    assert _fingerprint() == host_before
    assert wrong == [], text
