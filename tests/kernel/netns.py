"""Network namespaces for kernel ground-truth tests.

:class:`TestBed` builds two namespaces joined by a veth pair — ``fw`` (the
firewall under test, where rules are loaded) and ``peer`` (which sends
crafted packets) — never linked to the host namespace and with no default
route, so nothing can leave the machine. Addresses come from the
documentation ranges. Everything is torn down in :meth:`TestBed.close`, and
every subprocess has a timeout.

The packet work happens in one long-lived :mod:`agent <tests.kernel.agent>`
process inside ``fw``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
import shutil
import subprocess
import sys
from pathlib import Path

from . import packets

FW_IF, PEER_IF = "rafw0", "rapeer0"
FW_V4, PEER_V4 = "192.0.2.1", "192.0.2.2"
FW_V6, PEER_V6 = "2001:db8::1", "2001:db8::2"
#: A second address of the firewall (on its loopback), so -d has a choice.
FW_V4_EXTRA, FW_V6_EXTRA = "203.0.113.1", "2001:db8:f::1"
#: Source ranges crafted packets come from; fw routes them back to the peer
#: so that packets fw sends to them (conntrack openers, REJECT answers) leave.
ROUTED_SOURCES_V4 = ("198.51.100.0/24", "10.0.0.0/8")
ROUTED_SOURCES_V6 = ("2001:db8:1::/48",)
COMMAND_TIMEOUT = 30
#: The names these tests give namespaces (``Namespace``, the snapshot test's
#: ``ras-``): ``ra-<hex>-<role>``.
OUR_NAMESPACE = re.compile(r"ras?-[0-9a-f]{6,8}-[a-z0-9]+")
#: A namespace of ours older than this is a leftover: every test's commands
#: end within COMMAND_TIMEOUT, and a whole kernel test within minutes.
STALE_SECONDS = 3600


def missing_prerequisites(tools: tuple[str, ...] = ("ip", "iptables-restore", "iptables-save")) -> str | None:
    """Why kernel tests cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "kernel tests need root: they create network namespaces and load rules"
    for tool in tools:
        if shutil.which(tool) is None:
            return f"kernel tests need {tool!r}, which is not installed"
    return None


def skip_without_tools(dialect: str, family: int = 4) -> None:
    """Skip the calling test, with the reason, where the tools to load an
    ``iptables`` (of ``family``) or ``nftables`` ruleset are missing."""
    import pytest

    ipt = ("iptables-restore", "iptables-save") if family == 4 else ("ip6tables-restore", "ip6tables-save")
    reason = missing_prerequisites(("ip", *ipt) if dialect == "iptables" else ("ip", "nft"))
    if reason:
        pytest.skip(reason)


def run(argv: list[str], *, input: str | None = None, timeout: float = COMMAND_TIMEOUT,
        check: bool = True) -> subprocess.CompletedProcess:
    """Run a command with a timeout; on failure raise with its stderr."""
    done = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done


class Namespace:
    """One network namespace, named ``ra-<random>-<role>``."""

    def __init__(self, name: str):
        self.name = name
        run(["ip", "netns", "add", name])
        self.exec("ip", "link", "set", "lo", "up")

    def exec(self, *argv: str, input: str | None = None, check: bool = True,
             timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess:
        return run(["ip", "netns", "exec", self.name, *argv], input=input, check=check,
                   timeout=timeout)

    def sysctl(self, key: str, value: str | int) -> None:
        self.exec("sysctl", "-qw", f"{key}={value}")

    def delete(self) -> None:
        run(["ip", "netns", "delete", self.name], check=False)


def remove_stale_namespaces(now: float | None = None, only=None, netns_dir: str = "/run/netns") -> list[str]:
    """Delete namespaces these tests made and could not tear down (a run
    killed mid-test: SIGKILL runs no ``finally``): named as ours
    (:data:`OUR_NAMESPACE`), older than :data:`STALE_SECONDS` and with no
    process inside. Another run's live namespaces are young or busy, and
    anything not named as ours is never touched. ``now``: the time to
    judge ages by; ``only``: look at these names alone. Returns the names
    deleted."""
    now = time.time() if now is None else now
    try:
        entries = list(os.scandir(netns_dir))
    except OSError:
        return []
    gone = []
    for entry in entries:
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        if not OUR_NAMESPACE.fullmatch(entry.name) or age < STALE_SECONDS \
                or (only is not None and entry.name not in only):
            continue
        if run(["ip", "netns", "pids", entry.name], check=False).stdout.strip():
            continue  # a process still lives there: not ours to end
        run(["ip", "netns", "delete", entry.name], check=False)
        gone.append(entry.name)
    return gone


class AgentError(RuntimeError):
    """The in-namespace helper failed a command."""


class TestBed:
    """Two namespaces, ``fw`` and ``peer``, and the agent serving them.

    Use as a context manager; the namespaces (and the veth pair with them)
    are deleted on exit, also after errors and timeouts."""

    __test__ = False  # not a pytest test class

    def __init__(self, peer_ipv6: bool = False):
        tag = secrets.token_hex(3)
        self.peer_ipv6 = peer_ipv6
        self.fw: Namespace | None = None
        self.peer: Namespace | None = None
        self.agent: subprocess.Popen | None = None
        try:
            self.fw = Namespace(f"ra-{tag}-fw")
            self.peer = Namespace(f"ra-{tag}-peer")
            self._wire()
            self._start_agent()
        except BaseException:
            self.close()
            raise

    # -- set-up ------------------------------------------------------------

    def _wire(self) -> None:
        fw, peer = self.fw, self.peer
        # Created inside fw with its peer end moved straight into peer: the
        # pair never exists in the host namespace.
        fw.exec("ip", "link", "add", FW_IF, "type", "veth", "peer", "name", PEER_IF,
                "netns", peer.name)
        for ns, dev in ((fw, FW_IF), (peer, PEER_IF)):
            for scope in ("all", dev):
                ns.sysctl(f"net.ipv6.conf.{scope}.accept_dad", 0)
                ns.sysctl(f"net.ipv6.conf.{scope}.accept_ra", 0)
                ns.sysctl(f"net.ipv6.conf.{scope}.router_solicitations", 0)
        peer.exec("ip", "addr", "add", f"{PEER_V4}/24", "dev", PEER_IF)
        if self.peer_ipv6:
            peer.exec("ip", "-6", "addr", "add", f"{PEER_V6}/64", "dev", PEER_IF, "nodad")
            peer.exec("ip", "-6", "route", "add", f"{FW_V6_EXTRA}/128", "via", FW_V6)
        else:
            # The peer's kernel would send IPv6 on its own (MLD reports,
            # router solicitations); each one moves the firewall's INPUT
            # counters and would be taken for a probe. Crafted frames do not
            # need the peer's IPv6 stack.
            peer.sysctl(f"net.ipv6.conf.{PEER_IF}.disable_ipv6", 1)
        peer.exec("ip", "link", "set", PEER_IF, "up")
        peer.exec("ip", "route", "add", f"{FW_V4_EXTRA}/32", "via", FW_V4)
        # The firewall has host addresses only and sends everything through
        # the peer, whose neighbour entry is permanent: a failed ARP/ND for a
        # crafted source would make the kernel send itself an ICMP error a
        # few seconds later, which would cross INPUT amid the probes.
        peer_mac = peer.exec("cat", f"/sys/class/net/{PEER_IF}/address").stdout.strip()
        fw.exec("ip", "addr", "add", f"{FW_V4}/32", "dev", FW_IF)
        fw.exec("ip", "-6", "addr", "add", f"{FW_V6}/128", "dev", FW_IF, "nodad")
        fw.exec("ip", "addr", "add", f"{FW_V4_EXTRA}/32", "dev", "lo")
        fw.exec("ip", "-6", "addr", "add", f"{FW_V6_EXTRA}/128", "dev", "lo", "nodad")
        fw.exec("ip", "link", "set", FW_IF, "up")
        fw.exec("ip", "route", "add", f"{PEER_V4}/32", "dev", FW_IF)
        fw.exec("ip", "-6", "route", "add", f"{PEER_V6}/128", "dev", FW_IF)
        fw.exec("ip", "neigh", "replace", PEER_V4, "lladdr", peer_mac, "dev", FW_IF, "nud", "permanent")
        fw.exec("ip", "-6", "neigh", "replace", PEER_V6, "lladdr", peer_mac, "dev", FW_IF,
                "nud", "permanent")
        for prefix in ("192.0.2.0/24",) + ROUTED_SOURCES_V4:
            fw.exec("ip", "route", "add", prefix, "via", PEER_V4, "dev", FW_IF, "onlink")
        for prefix in ("2001:db8::/64",) + ROUTED_SOURCES_V6:
            fw.exec("ip", "-6", "route", "add", prefix, "via", PEER_V6, "dev", FW_IF, "onlink")
        # Crafted sources may be anything: accept them without reverse-path
        # checks, and judge TCP by flags, not by our made-up sequence numbers.
        for key in ("net.ipv4.conf.all.rp_filter", f"net.ipv4.conf.{FW_IF}.rp_filter",
                    "net.ipv4.conf.default.rp_filter"):
            fw.sysctl(key, 0)
        fw.exec("modprobe", "nf_conntrack", check=False)
        fw.sysctl("net.netfilter.nf_conntrack_tcp_be_liberal", 1)
        # REJECT answers and ICMP errors are never rate limited away.
        fw.sysctl("net.ipv4.icmp_ratelimit", 0)
        fw.sysctl("net.ipv6.icmp.ratelimit", 0)
        # The peer answers nothing it receives (fw's openers, RSTs).
        peer.sysctl("net.ipv4.conf.all.forwarding", 0)

    def _start_agent(self) -> None:
        agent = Path(__file__).with_name("agent.py")
        self.agent = subprocess.Popen(
            ["ip", "netns", "exec", self.fw.name, sys.executable, "-u", str(agent),
             self.peer.name, PEER_IF, FW_IF],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.fw_mac = packets.mac_bytes(self.call({"op": "hello"})["fw_mac"])
        self.peer_mac = packets.mac_bytes(
            self.peer.exec("cat", f"/sys/class/net/{PEER_IF}/address").stdout.strip())

    # -- use ---------------------------------------------------------------

    def call(self, cmd: dict, timeout: float = 120) -> dict:
        """Send one command to the agent and wait (bounded) for its answer."""
        import select

        assert self.agent and self.agent.stdin and self.agent.stdout
        self.agent.stdin.write(json.dumps(cmd) + "\n")
        self.agent.stdin.flush()
        ready, _, _ = select.select([self.agent.stdout], [], [], timeout)
        if not ready:
            raise AgentError(f"agent did not answer {cmd['op']!r} within {timeout}s")
        line = self.agent.stdout.readline()
        if not line:
            raise AgentError(f"agent died: {self.agent.stderr.read() if self.agent.stderr else ''}")
        answer = json.loads(line)
        if "error" in answer:
            raise AgentError(answer["error"])
        return answer

    def frame(self, packet: bytes) -> bytes:
        """``packet`` as an Ethernet frame from the peer to the firewall."""
        return packets.ethernet(packet, self.fw_mac, self.peer_mac)

    def load_iptables(self, text: str, family: int = 4) -> None:
        """Replace the firewall's tables with an iptables-save text."""
        tool = "iptables-restore" if family == 4 else "ip6tables-restore"
        self.fw.exec(tool, input=text)

    def load_nft(self, text: str) -> None:
        """Replace the firewall's whole nftables ruleset with ``text``."""
        self.fw.exec("nft", "-f", "-", input="flush ruleset\n" + text)

    def flush(self) -> None:
        """Remove every table (iptables-nft tables are nft tables too)."""
        self.fw.exec("nft", "flush", "ruleset")

    def close(self) -> None:
        if self.agent is not None:
            try:
                self.agent.stdin.close()
                self.agent.wait(timeout=5)
            except Exception:
                self.agent.kill()
                self.agent.wait(timeout=5)
            for pipe in (self.agent.stdout, self.agent.stderr):
                if pipe is not None:
                    pipe.close()
            self.agent = None
        for ns in (self.fw, self.peer):
            if ns is not None:
                ns.delete()

    def __enter__(self) -> "TestBed":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
