"""Kernel proof for ``ruleanalyzer path``: a real client — fw1 — fw2 — server
chain of network namespaces, real TCP handshakes, and the firewalls' own
per-rule counters as the verdict on which firewall dropped which leg.

The namespaces are joined only to each other by veth pairs created inside
them (never in the host namespace), addressed from the documentation ranges
192.0.2.0/30, 198.51.100.0/30 and 203.0.113.0/30, with routes only between
them; they are deleted after each test, and every command has a timeout.
The rule files are those of ``fixtures/topologies/two-firewalls``, so the
kernel runs exactly what the analyzer reads.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ruleanalyzer.engine.path import trace_path
from ruleanalyzer.topology import load_topology

pytestmark = pytest.mark.kernel

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "topologies" / "two-firewalls"
TIMEOUT = 20
PORT = 8080

#: namespace role → (interface, its address/prefix, the neighbour role)
WIRING = [
    ("client", "c0", "192.0.2.2/30", "fw1", "f1a", "192.0.2.1/30"),
    ("fw1", "f1b", "198.51.100.1/30", "fw2", "f2a", "198.51.100.2/30"),
    ("fw2", "f2b", "203.0.113.1/30", "server", "s0", "203.0.113.2/30"),
]
ROUTES = {
    "client": [("198.51.100.0/30", "192.0.2.1"), ("203.0.113.0/30", "192.0.2.1")],
    "fw1": [("203.0.113.0/30", "198.51.100.2")],
    "fw2": [("192.0.2.0/30", "198.51.100.1")],
    "server": [("192.0.2.0/30", "203.0.113.1"), ("198.51.100.0/30", "203.0.113.1")],
}
FW1_FIXED = (FIXTURE / "fw1.rules").read_text().replace(
    "-A FORWARD -i f1a", "-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
                         "-A FORWARD -i f1a")

SERVER = f"""
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", {PORT})); s.listen(64)
print("ready", flush=True)
while True:
    c, _ = s.accept(); c.close()
"""
CLIENT = f"""
import socket, sys
s = socket.socket(); s.settimeout(float(sys.argv[1]))
try:
    s.connect(("203.0.113.2", {PORT})); print("connected")
except socket.timeout:
    print("timeout")
except OSError as e:
    print("error", e.errno)
"""


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "kernel tests need root: they create network namespaces and load rules"
    for tool in ("ip", "iptables-restore", "iptables-save"):
        if shutil.which(tool) is None:
            return f"kernel tests need {tool!r}, which is not installed"
    return None


def run(argv, *, input=None, timeout=TIMEOUT, check=True) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done


class Lab:
    """Four namespaces in a row; deleted by :meth:`close` whatever happened."""

    def __init__(self):
        tag = secrets.token_hex(3)
        self.ns = {role: f"rap-{tag}-{role}" for role in ("client", "fw1", "fw2", "server")}
        self.created: list[str] = []
        self.server: subprocess.Popen | None = None
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    def exec(self, role, *argv, input=None, timeout=TIMEOUT, check=True):
        return run(["ip", "netns", "exec", self.ns[role], *argv], input=input, timeout=timeout,
                   check=check)

    def _build(self):
        for role, name in self.ns.items():
            run(["ip", "netns", "add", name])
            self.created.append(name)
            self.exec(role, "ip", "link", "set", "lo", "up")
        for a, a_if, a_addr, b, b_if, b_addr in WIRING:
            # Created inside a's namespace, the peer end moved straight to b's.
            self.exec(a, "ip", "link", "add", a_if, "type", "veth", "peer", "name", b_if,
                      "netns", self.ns[b])
            for role, dev, addr in ((a, a_if, a_addr), (b, b_if, b_addr)):
                self.exec(role, "ip", "addr", "add", addr, "dev", dev)
                self.exec(role, "ip", "link", "set", dev, "up")
        for role, routes in ROUTES.items():
            for prefix, via in routes:
                self.exec(role, "ip", "route", "add", prefix, "via", via)
        for role in ("fw1", "fw2"):
            self.exec(role, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        # A half-open server connection would retransmit its SYN-ACK into the
        # next handshake's counters: answer each SYN once.
        self.exec("server", "sysctl", "-qw", "net.ipv4.tcp_synack_retries=0")
        self.server = subprocess.Popen(
            ["ip", "netns", "exec", self.ns["server"], sys.executable, "-c", SERVER],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.server.stdout.readline().strip() == "ready"

    def load(self, fw1: str, fw2: str) -> None:
        self.exec("fw1", "iptables-restore", input=fw1)
        self.exec("fw2", "iptables-restore", input=fw2)

    def handshake(self, ecn: int, timeout: float) -> str:
        """Zero the counters, connect once, return what the client saw."""
        for role in ("fw1", "fw2"):
            self.exec(role, "iptables", "-Z")
        self.exec("client", "sysctl", "-qw", f"net.ipv4.tcp_ecn={ecn}")
        return self.exec("client", sys.executable, "-c", CLIENT, str(timeout),
                         timeout=timeout + TIMEOUT).stdout.strip()

    def counters(self, role: str) -> dict:
        """FORWARD's packet counters: ``policy`` and rule index → packets."""
        text = self.exec(role, "iptables-save", "-c", "-t", "filter").stdout
        out, index = {}, 0
        for line in text.splitlines():
            m = re.match(r":FORWARD \w+ \[(\d+):\d+\]", line)
            if m:
                out["policy"] = int(m.group(1))
            m = re.match(r"\[(\d+):\d+\] -A FORWARD ", line)
            if m:
                index += 1
                out[index] = int(m.group(1))
        return out

    def close(self):
        if self.server is not None:
            self.server.kill()
            self.server.wait(timeout=5)
        for name in self.created:
            run(["ip", "netns", "delete", name], check=False)


@pytest.fixture
def lab():
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    bed = Lab()
    try:
        yield bed
    finally:
        bed.close()


def analysed(tmp_path: Path, fw1: str, fw2: str):
    for name in ("topology.yaml",):
        (tmp_path / name).write_text((FIXTURE / name).read_text())
    (tmp_path / "fw1.rules").write_text(fw1)
    (tmp_path / "fw2.rules").write_text(fw2)
    return load_topology(tmp_path / "topology.yaml")


def decisions(leg) -> dict[str, object]:
    """node → the deciding rule index (or ``policy``) of one analysed leg."""
    out = {}
    for check in leg.checks:
        d = check.result.decided_by
        out[check.node.name] = "policy" if d.is_policy else d.rule.index
    return out


def assert_kernel_agrees(lab: Lab, legs) -> None:
    """Every (firewall, deciding rule) the analyzer names for these legs
    counted packets in the kernel, and the kernel dropped nowhere else."""
    counters = {role: lab.counters(role) for role in ("fw1", "fw2")}
    predicted_drops = set()
    for leg in legs:
        for node, rule in decisions(leg).items():
            assert counters[node][rule] > 0, (leg.name, node, rule, counters)
        for check in leg.checks:
            if check.verdict == "drop":
                predicted_drops.add(check.node.name)
    for role in ("fw1", "fw2"):
        drop_rules = [i for i, line in enumerate(
            (l for l in lab.exec(role, "iptables-save", "-t", "filter").stdout.splitlines()
             if l.startswith("-A FORWARD")), 1) if "-j DROP" in line]
        dropped = counters[role]["policy"] + sum(counters[role][i] for i in drop_rules)
        assert (dropped > 0) == (role in predicted_drops), (role, counters)


def test_syn_ack_dies_at_fw1_and_ecn_syn_at_fw2(lab, tmp_path):
    fw1, fw2 = (FIXTURE / "fw1.rules").read_text(), (FIXTURE / "fw2.rules").read_text()
    lab.load(fw1, fw2)
    report = trace_path(analysed(tmp_path, fw1, fw2), "client", "server", PORT, ecn="both")
    plain, ecn = report.routes[0].variants
    assert report.passes is False

    # ECN off: the SYN passes fw1 and fw2, the SYN-ACK passes fw2 and dies at fw1.
    assert lab.handshake(ecn=0, timeout=0.8) == "timeout"
    assert plain.legs[1].first_failure.node.name == "fw1"
    assert_kernel_agrees(lab, plain.legs[:2])

    # ECN on, under Linux's 1-s fallback: the ECN SYN dies at fw2, fw1 sees no reply.
    assert lab.handshake(ecn=1, timeout=0.8) == "timeout"
    assert ecn.legs[0].first_failure.node.name == "fw2"
    assert_kernel_agrees(lab, ecn.legs[:1])

    # ECN on, long enough for the plain retry: it passes fw2, its SYN-ACK dies at fw1.
    assert lab.handshake(ecn=1, timeout=2.5) == "timeout"
    counters = lab.counters("fw2")
    assert counters[1] > 0            # the ECN SYN, dropped
    assert counters[3] > 0            # the plain retry, accepted as NEW
    assert lab.counters("fw1")["policy"] > 0
    assert report.routes[0].fallback.legs[1].first_failure.node.name == "fw1"


def test_fixed_fw1_lets_the_handshake_through_ecn_costs_a_second(lab, tmp_path):
    fw2 = (FIXTURE / "fw2.rules").read_text()
    lab.load(FW1_FIXED, fw2)
    report = trace_path(analysed(tmp_path, FW1_FIXED, fw2), "client", "server", PORT, ecn="both")
    plain, ecn = report.routes[0].variants
    assert plain.passes is True and ecn.passes is False and report.passes is True

    assert lab.handshake(ecn=0, timeout=0.8) == "connected"
    assert_kernel_agrees(lab, plain.legs[:3])

    assert lab.handshake(ecn=1, timeout=0.8) == "timeout"      # the ECN SYN is eaten by fw2
    assert_kernel_agrees(lab, ecn.legs[:1])

    assert lab.handshake(ecn=1, timeout=2.5) == "connected"    # the plain retry gets through
    assert lab.counters("fw2")[1] > 0
