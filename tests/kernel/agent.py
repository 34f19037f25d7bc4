"""A long-lived helper that runs inside the firewall namespace.

Started by :mod:`tests.kernel.netns` as ``ip netns exec FW python agent.py
PEER_NS PEER_IF FW_IF``; reads one JSON command per line on stdin and writes
one JSON answer per line. One process serves a whole batch of packets, so a
packet costs a ``sendto`` and one counter dump, not a process start.

It holds sockets in two namespaces: sockets are bound to the namespace they
were created in, so it enters the peer namespace (``setns``) just long
enough to open the peer's AF_PACKET socket, then comes back. Counter dumps
(``iptables-save -c``) run as children and inherit the firewall namespace.

Standard library only: this file never imports the project.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import select
import socket
import subprocess
import sys
import tempfile
import time

CLONE_NEWNET = 0x40000000
MAGIC = b"RAk!"
LIBC = ctypes.CDLL(None, use_errno=True)


@contextlib.contextmanager
def inside(namespace: str):
    """Run the body with this (single-threaded) process in ``namespace``."""
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{namespace}", os.O_RDONLY)
    try:
        if LIBC.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns into " + namespace)
        yield
    finally:
        if LIBC.setns(home, CLONE_NEWNET) != 0:  # never stay in the peer namespace
            os._exit(3)
        os.close(home)
        os.close(target)


#: tcp_info.tcpi_options: ECN was negotiated at SYN time (linux/tcp.h)
TCPI_OPT_ECN = 8


class Agent:
    """Sockets and counter dumps for one firewall/peer pair."""

    def __init__(self, peer_ns: str, peer_if: str, fw_if: str):
        self.peer_ns = peer_ns
        with inside(peer_ns):
            self.peer_tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            self.peer_tx.bind((peer_if, 0))
        # Raw sockets get a copy of every packet that INPUT accepted
        # (raw delivery happens after the INPUT hook).
        self.listeners = []
        for family, protos in ((socket.AF_INET, (6, 17, 1)), (socket.AF_INET6, (6, 17, 58))):
            for proto in protos:
                s = socket.socket(family, socket.SOCK_RAW, proto)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
                s.setblocking(False)
                self.listeners.append(s)
        self.fw_tx4 = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        self.fw_tx6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
        self.seen: set[int] = set()
        with open(f"/sys/class/net/{fw_if}/address") as f:
            self.fw_mac = f.read().strip()
        self.fw_sockets: dict[int, socket.socket] = {}
        self.monitor: subprocess.Popen | None = None

    # -- observation -------------------------------------------------------

    def drain(self, wait: float = 0.0) -> None:
        """Collect the markers of every packet the raw sockets received."""
        deadline = time.monotonic() + wait
        while True:
            ready, _, _ = select.select(self.listeners, [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                return
            for s in ready:
                while True:
                    try:
                        data = s.recv(65535)
                    except BlockingIOError:
                        break
                    if len(data) >= 8 and data[-8:-4] == MAGIC:
                        self.seen.add(int.from_bytes(data[-4:], "big"))

    def counters(self, argv: list[str], ignore: re.Pattern | None) -> tuple[str, str]:
        """The dump and the part of it that must change when a packet is seen."""
        text = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=True).stdout
        lines = [ln for ln in text.splitlines() if not ln.startswith("#")]
        key = "\n".join(ln for ln in lines if not (ignore and ignore.search(ln)))
        return "\n".join(lines), key

    # -- commands ----------------------------------------------------------

    def send_from_fw(self, packet: bytes) -> None:
        version = packet[0] >> 4
        if version == 4:
            dst = socket.inet_ntop(socket.AF_INET, packet[16:20])
            self.fw_tx4.sendto(packet, (dst, 0))
        else:
            dst = socket.inet_ntop(socket.AF_INET6, packet[24:40])
            self.fw_tx6.sendto(packet, (dst, 0))

    def probe(self, cmd: dict) -> dict:
        """Send each probe and read the counters after it.

        A probe is ``{"ident", "frame", "opener"}``: ``opener`` (hex, optional)
        is an IP packet the firewall sends first, so that the probe is a
        reply (conntrack ESTABLISHED or RELATED); ``frame`` is the Ethernet
        frame the peer then sends."""
        argv = cmd.get("counters")
        if not argv:  # nft trace observes instead: just pace the packets
            for probe in cmd["probes"]:
                if probe.get("opener"):
                    self.send_from_fw(bytes.fromhex(probe["opener"]))
                self.peer_tx.send(bytes.fromhex(probe["frame"]))
                time.sleep(0.002)  # the trace monitor must keep up
            self.drain(0.05)
            return {"answers": [{"ident": p["ident"], "seen": p["ident"] in self.seen}
                                for p in cmd["probes"]]}
        ignore = re.compile(cmd["ignore"]) if cmd.get("ignore") else None
        settle = cmd.get("settle", 0.5)
        _, key = self.counters(argv, ignore)
        answers = []
        for probe in cmd["probes"]:
            if probe.get("opener"):
                self.send_from_fw(bytes.fromhex(probe["opener"]))
                _, key = self.counters(argv, ignore)
            self.peer_tx.send(bytes.fromhex(probe["frame"]))
            # Done when the counters moved and then held still for one more
            # dump: a dump taken while the kernel was still walking the
            # chains (softirq deferred under load) must not count.
            deadline = time.monotonic() + settle
            last = key
            while True:
                text, new_key = self.counters(argv, ignore)
                if (new_key != key and new_key == last) or time.monotonic() > deadline:
                    break
                last = new_key
                if new_key == key:
                    time.sleep(0.002)
            changed = new_key != key
            key = new_key
            self.drain()
            answers.append({"ident": probe["ident"], "counters": text, "changed": changed,
                            "seen": probe["ident"] in self.seen})
        return {"answers": answers}

    def exchange(self, cmd: dict) -> dict:
        """A real TCP connection from the peer to a listener here: connect,
        then one message each way. Says how far it got."""
        family = socket.AF_INET6 if ":" in cmd["addr"] else socket.AF_INET
        timeout = cmd.get("timeout", 2.5)
        server = self.fw_sockets[cmd["port"]]
        outcome = {"connected": False, "accepted": False, "to_server": False, "to_client": False}
        with inside(self.peer_ns):
            client = socket.socket(family, socket.SOCK_STREAM)
        conn = None
        try:
            client.settimeout(timeout)
            if cmd.get("source"):  # a chosen client address (the peer holds it)
                client.bind((cmd["source"], 0))
            started = time.monotonic()
            try:
                client.connect((cmd["addr"], cmd["port"]))
            except OSError as exc:
                outcome["why"] = f"connect: {exc}"
                return outcome
            outcome["connected"] = True
            # Linux's retried SYN comes after 1 s; TCP_INFO's options byte
            # says whether the handshake's flags negotiated ECN.
            outcome["connect_seconds"] = round(time.monotonic() - started, 2)
            info = client.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
            outcome["ecn_negotiated"] = bool(info[5] & TCPI_OPT_ECN)
            client.sendall(b"ping")
            # accept() returns once the server saw the handshake's ACK (or
            # data that acknowledges its SYN-ACK).
            ready, _, _ = select.select([server], [], [], timeout)
            if not ready:
                outcome["why"] = "server never completed the handshake"
                return outcome
            conn, _ = server.accept()
            outcome["accepted"] = True
            conn.settimeout(timeout)
            try:
                outcome["to_server"] = conn.recv(16) == b"ping"
                conn.sendall(b"pong")
                outcome["to_client"] = client.recv(16) == b"pong"
            except OSError as exc:
                outcome["why"] = f"data: {exc}"
            return outcome
        finally:
            client.close()
            if conn is not None:
                conn.close()

    def run(self, cmd: dict) -> dict:
        op = cmd["op"]
        if op == "hello":
            return {"fw_mac": self.fw_mac}
        if op == "probe":
            return self.probe(cmd)
        if op == "seen":
            self.drain(cmd.get("wait", 0.0))
            return {"seen": sorted(self.seen)}
        if op == "trace_start":  # nft's per-packet trace of rules and verdicts
            # Into a file, not a pipe: a full pipe would stall nft and the
            # kernel would drop trace events it cannot deliver.
            self.trace_file = tempfile.TemporaryFile(mode="w+")
            self.monitor = subprocess.Popen(["stdbuf", "-oL", "nft", "-a", "monitor", "trace"],
                                            stdout=self.trace_file)
            time.sleep(0.3)  # let it subscribe before packets flow
            return {}
        if op == "trace_stop":
            time.sleep(0.3)  # the last events are still on their way
            self.monitor.terminate()
            self.monitor.wait(timeout=10)
            self.monitor = None
            self.trace_file.seek(0)
            text = self.trace_file.read()
            self.trace_file.close()
            return {"trace": text}
        if op == "exec":
            done = subprocess.run(cmd["argv"], capture_output=True, text=True,
                                  input=cmd.get("input"), timeout=cmd.get("timeout", 30))
            return {"rc": done.returncode, "stdout": done.stdout, "stderr": done.stderr}
        if op == "listen":  # a TCP server in the firewall namespace
            s = socket.socket(socket.AF_INET6 if ":" in cmd["addr"] else socket.AF_INET)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((cmd["addr"], cmd["port"]))
            s.listen(64)
            s.setblocking(False)
            self.fw_sockets[cmd["port"]] = s
            return {}
        if op == "connect":  # a TCP client in the peer namespace
            return self.exchange(cmd)
        raise ValueError(f"unknown op {op!r}")


def main() -> None:
    agent = Agent(*sys.argv[1:4])
    for line in sys.stdin:
        try:
            answer = agent.run(json.loads(line))
        except Exception as exc:  # report, keep serving
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
