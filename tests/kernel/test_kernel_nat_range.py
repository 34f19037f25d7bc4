"""NAT to a range against the kernel: which address and port of a range a
new connection gets.

Real SYNs from many sources reach the firewall's address and are DNATed to
a range of addresses (plain and ``persistent``) or of ports (a port inside
the range is kept, one outside takes the first), forwarded and judged by
FORWARD rules that each take one backend; a SNAT to a range in POSTROUTING
(sources already inside it are left alone) rewrites what leaves. The rule
whose counter moves is the kernel's decision, and the connection table
says what each connection became. The engine's answer (``hook="input"``:
the packet is addressed to this host until the DNAT says otherwise) must
be certain, name that rule, and show the packet as the kernel made it; the
packet-space walk, sure of each translated packet's fate, must not
contradict the kernel. The analyzer once took every range's first address
and port: "accept" for one backend of four, whatever the source.

    pytest tests/kernel/test_kernel_nat_range.py
"""

from __future__ import annotations

import dataclasses
import ipaddress
import random
import re

import pytest

from . import packets
from .netns import FW_V4, skip_without_tools

pytestmark = pytest.mark.kernel

IPTABLES = """*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 10.77.0.0/24 -j NETMAP --to 10.9.7.0/24
-A PREROUTING -d 10.78.0.0/24 -j NETMAP --to 10.9.7.0/24
-A PREROUTING -p tcp --dport 80 -j DNAT --to-destination 10.9.9.1-10.9.9.4
-A PREROUTING -p tcp --dport 81 -j DNAT --to-destination 10.9.8.10-10.9.8.200 --persistent
-A PREROUTING -p tcp --dport 6000:6010 -j DNAT --to-destination 10.9.9.5:6000-6010
-A PREROUTING -p tcp --dport 7000 -j DNAT --to-destination 10.9.9.6:6000-6010
-A POSTROUTING -s 172.16.0.0/16 -j NETMAP --to 10.66.0.0/16
-A POSTROUTING -d 10.9.9.1 -j SNAT --to-source 198.18.0.0-198.18.0.255
-A POSTROUTING -d 10.9.9.3 -j SNAT --to-source 198.51.100.0-198.51.100.127
COMMIT
*filter
:FORWARD DROP [0:0]
-A FORWARD -d 10.9.9.1/32 -j ACCEPT
-A FORWARD -d 10.9.9.2/32 -j DROP
-A FORWARD -d 10.9.9.3/32 -j ACCEPT
-A FORWARD -d 10.9.9.4/32 -j DROP
-A FORWARD -d 10.9.8.0/25 -j ACCEPT
-A FORWARD -d 10.9.8.128/25 -j DROP
-A FORWARD -d 10.9.9.5/32 -p tcp --dport 6005 -j ACCEPT
-A FORWARD -d 10.9.9.5/32 -j DROP
-A FORWARD -d 10.9.9.6/32 -p tcp --dport 6000 -j ACCEPT
-A FORWARD -d 10.9.9.6/32 -j DROP
-A FORWARD -d 10.9.7.0/25 -j ACCEPT
-A FORWARD -d 10.9.7.128/25 -j DROP
COMMIT
"""

NFTABLES = """table ip t {
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr 10.77.0.0/24 dnat ip prefix to ip daddr map { 10.77.0.0/24 : 10.9.7.0/24 }
    ip daddr 10.78.0.0/24 dnat ip prefix to 10.9.7.0/24
    tcp dport 80 dnat to 10.9.9.1-10.9.9.4
    tcp dport 81 dnat to 10.9.8.10-10.9.8.200 persistent
    tcp dport 6000-6010 dnat to 10.9.9.5 : 6000-6010
    tcp dport 7000 dnat to 10.9.9.6 : 6000-6010
  }
  chain post {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr 172.16.0.0/16 snat ip prefix to ip saddr map { 172.16.0.0/16 : 10.66.0.0/16 }
    ip daddr 10.9.9.1 snat to 198.18.0.0-198.18.0.255
    ip daddr 10.9.9.3 snat to 198.51.100.0-198.51.100.127
  }
  chain forwarding {
    type filter hook forward priority filter; policy drop;
    ip daddr 10.9.9.1 counter accept
    ip daddr 10.9.9.2 counter drop
    ip daddr 10.9.9.3 counter accept
    ip daddr 10.9.9.4 counter drop
    ip daddr 10.9.8.0/25 counter accept
    ip daddr 10.9.8.128/25 counter drop
    ip daddr 10.9.9.5 tcp dport 6005 counter accept
    ip daddr 10.9.9.5 counter drop
    ip daddr 10.9.9.6 tcp dport 6000 counter accept
    ip daddr 10.9.9.6 counter drop
    ip daddr 10.9.7.0/25 counter accept
    ip daddr 10.9.7.128/25 counter drop
  }
}
"""


def _probes() -> list[tuple[str, str, int]]:
    """(source, destination, destination port): sources from all over (a
    quarter inside the second SNAT's range, which keeps them), ports inside
    and outside the port range; and a prefix mapped address for address
    (NETMAP), its sources in a prefix mapped on the way out too."""
    rnd = random.Random(21)
    out = []
    for k in range(48):
        src = f"198.51.100.{rnd.randrange(1, 127)}" if k % 4 == 0 else \
            f"{rnd.randrange(11, 200)}.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}"
        out.append((src, FW_V4, (80, 81, 6005, 6003, 6010, 7000)[k % 6] if k % 4 else 80))
    for k in range(16):
        src = f"172.16.{rnd.randrange(256)}.{rnd.randrange(1, 255)}" if k % 2 else \
            f"{rnd.randrange(11, 200)}.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}"
        out.append((src, f"10.{77 + k % 2}.0.{rnd.randrange(1, 255)}", 5000))
    return out


def _counts_nft(listing: str) -> list[int]:
    return [int(n) for n in re.findall(r"counter packets (\d+)", listing)]


def _counts_iptables(listing: str) -> list[int]:
    return [int(n) for n in re.findall(r"^\[(\d+):\d+\] -A FORWARD", listing, re.M)]


def _connections(table: str) -> dict[tuple[str, int], tuple[str, int, str, int]]:
    """Per original (source, source port): the reply's (source, source
    port, destination, destination port), as the connection table holds it."""
    out = {}
    for line in table.splitlines():
        m = re.search(r"src=(\S+) dst=\S+ sport=(\d+) dport=\d+ .*?src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)",
                      line)
        if m and " tcp " in f" {line} ":
            out[(m.group(1), int(m.group(2)))] = (m.group(3), int(m.group(5)), m.group(4), int(m.group(6)))
    return out


@pytest.mark.parametrize("dialect", ["iptables", "nftables"])
def test_nat_to_a_range_agrees_with_the_kernel(dialect):
    skip_without_tools(dialect)
    from ruleanalyzer import loads
    from ruleanalyzer.diff import packet_point
    from ruleanalyzer.engine import evaluate
    from ruleanalyzer.packets import make_packet
    from ruleanalyzer.space.reach import analyze

    from .netns import TestBed

    text = IPTABLES if dialect == "iptables" else NFTABLES
    if dialect == "iptables":
        argv, counts = ["iptables-save", "-c", "-t", "filter"], _counts_iptables
    else:
        argv, counts = ["nft", "list", "chain", "ip", "t", "forwarding"], _counts_nft
    probes = _probes()
    with TestBed() as bed:
        bed.fw.sysctl("net.ipv4.ip_forward", 1)  # the translated packets leave towards the peer
        bed.load_iptables(text) if dialect == "iptables" else bed.load_nft(text)
        frames = []
        for k, (src, dst, dport) in enumerate(probes):
            spec = packets.Spec(src=src, dst=dst, proto=6, sport=32000 + k, dport=dport, flags=0x02, ident=k)
            frames.append({"ident": k, "frame": bed.frame(packets.ip_packet(spec)).hex()})
        before = counts(bed.fw.exec(*argv).stdout)
        answers = bed.call({"op": "probe", "probes": frames, "counters": argv})["answers"]
        table = _connections(bed.fw.exec("cat", "/proc/net/nf_conntrack").stdout)
    ruleset = loads(text, dialect=dialect)
    chain = next(t.chains["FORWARD" if dialect == "iptables" else "forwarding"]
                 for t in ruleset.tables if t.name in ("filter", "t") and
                 ("FORWARD" if dialect == "iptables" else "forwarding") in t.chains)
    rules = chain.rules
    assert len(before) == len(rules)
    reach = analyze(ruleset, "forward", 4)
    wrong, sure, backends, kept, made_all = [], 0, set(), 0, []
    for k, ((src, dst, dport), answer) in enumerate(zip(probes, answers)):
        after = counts(answer["counters"])
        moved = [i for i, (a, b) in enumerate(zip(before, after)) if a != b]
        before = after
        assert len(moved) == 1, f"{src}:{dport}: the kernel's counters moved at {moved}"
        kernel = rules[moved[0]]
        result = evaluate(ruleset, make_packet(src=src, dst=dst, sport=32000 + k, dport=dport, flags="SYN",
                                               state="new", hook="input"))
        decided = result.decided_by.rule.text if result.decided_by and result.decided_by.rule else None
        if result.verdict == "unknown" or decided != kernel.text:
            wrong.append(f"{src}:{dport}: kernel {kernel.text!r}; engine {result.verdict} by {decided!r} "
                         f"(depends on {result.depends_on})")
            continue
        # What an accepted connection became (a dropped one never enters the
        # table): the reply comes from the backend the DNAT chose, to the
        # address the SNAT chose.
        made = result.packet
        made_all.append(made)
        backends.add(str(made.dst))
        if "ACCEPT" in kernel.text.upper():
            reply = table.get((src, 32000 + k))
            assert reply is not None, f"{src}:{dport}: no connection in the kernel's table"
            if (str(made.dst), made.dport) != reply[:2]:
                wrong.append(f"{src}:{dport}: the kernel translated to {reply[0]}:{reply[1]}; "
                             f"the engine to {made.dst}:{made.dport}")
            if str(made.src) != reply[2]:
                wrong.append(f"{src}:{dport}: the kernel's SNAT gave {reply[2]}; the engine's {made.src}")
            kept += reply[2] == src
        # The walk, on the packet as its verdict found it (a SNAT's accept
        # holds the packet it made): what it is sure of, the kernel did.
        status = {"dnat"} | ({"snat"} if made.src != ipaddress.ip_address(src) else set())
        seen = dataclasses.replace(made, ct_status=frozenset(status), hook="forward")
        image = packet_point(reach.space, seen).node
        verdict = "accept" if "accept" in kernel.text.lower() else "drop"
        for fate, other in (("accepted", "drop"), ("dropped", "accept")):
            if getattr(reach, fate).lower.node & image != reach.space.false:
                sure += 1
                if verdict == other:
                    wrong.append(f"{src}:{dport}: the walk says {fate} for certain; the kernel: {kernel.text!r}")
    assert not wrong, "\n".join(wrong)
    assert sure == len(probes)  # (the walk is sure of every translated packet's fate here)
    # the probes spread over the ranges (a first-address reading would see one backend per rule),
    # and some connections kept their source (inside the SNAT's range)
    assert {"10.9.9.1", "10.9.9.2", "10.9.9.3", "10.9.9.4"} <= backends
    assert len({b for b in backends if b.startswith("10.9.8.")}) > 1
    assert kept > 0
    # NETMAP kept each destination's host part, on both sides of the /25
    # the forward rules split, and mapped sources on the way out
    netmapped = [m for m, (_, dst, _) in zip(made_all, probes) if dst.startswith("10.7")]
    assert all(str(m.dst).startswith("10.9.7.") for m in netmapped)
    assert {int(str(m.dst).split(".")[3]) < 128 for m in netmapped} == {True, False}
    assert any(str(m.src).startswith("10.66.") for m in netmapped)


UNCHANGED = {
    "nftables": """table ip t {
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr 10.9.5.0/24 tcp dport 5000 dnat to 10.9.5.1:5000
  }
  chain forwarding {
    type filter hook forward priority filter; policy drop;
    ct status & dnat == dnat counter accept
    counter drop
  }
}
""",
    "iptables": """*nat
:PREROUTING ACCEPT [0:0]
-A PREROUTING -d 10.9.5.0/24 -p tcp --dport 5000 -j DNAT --to-destination 10.9.5.1:5000
COMMIT
*filter
:FORWARD DROP [0:0]
-A FORWARD -m conntrack --ctstate DNAT -j ACCEPT
-A FORWARD -j DROP
COMMIT
"""}


@pytest.mark.parametrize("dialect", ["iptables", "nftables"])
def test_a_translation_that_changes_nothing_sets_no_status(dialect):
    """A DNAT to the address and port a packet has already changes no tuple,
    and the kernel sets no DNAT status (nf_nat_setup_info): ``ct status
    dnat`` / ``--ctstate DNAT`` then does not hold. The analyzer set it for
    every packet the rule took."""
    skip_without_tools(dialect)
    from ruleanalyzer import loads
    from ruleanalyzer.engine import evaluate
    from ruleanalyzer.packets import make_packet
    from ruleanalyzer.space.reach import analyze
    from ruleanalyzer.diff import packet_point

    from .netns import TestBed

    text = UNCHANGED[dialect]
    argv, counts = (["iptables-save", "-c", "-t", "filter"], _counts_iptables) if dialect == "iptables" else \
        (["nft", "list", "chain", "ip", "t", "forwarding"], _counts_nft)
    probes = [("198.51.100.9", "10.9.5.1"), ("198.51.100.9", "10.9.5.2"), ("203.0.113.4", "10.9.5.1")]
    with TestBed() as bed:
        bed.fw.sysctl("net.ipv4.ip_forward", 1)
        bed.load_iptables(text) if dialect == "iptables" else bed.load_nft(text)
        frames = [{"ident": k, "frame": bed.frame(packets.ip_packet(packets.Spec(
            src=src, dst=dst, proto=6, sport=33000 + k, dport=5000, flags=0x02, ident=k))).hex()}
            for k, (src, dst) in enumerate(probes)]
        before = counts(bed.fw.exec(*argv).stdout)
        answers = bed.call({"op": "probe", "probes": frames, "counters": argv})["answers"]
    ruleset = loads(text, dialect=dialect)
    reach = analyze(ruleset, "forward", 4)
    verdicts = []
    for k, ((src, dst), answer) in enumerate(zip(probes, answers)):
        after = counts(answer["counters"])
        moved = [i for i, (a, b) in enumerate(zip(before, after)) if a != b]
        before = after
        assert len(moved) == 1
        kernel = "accept" if moved[0] == 0 else "drop"
        verdicts.append(kernel)
        result = evaluate(ruleset, make_packet(src=src, dst=dst, sport=33000 + k, dport=5000, flags="SYN",
                                               state="new", hook="forward"))
        assert result.verdict == kernel, (src, dst, result.verdict, kernel)
        status = frozenset({"dnat"}) if dst != "10.9.5.1" else frozenset()
        point = packet_point(reach.space, dataclasses.replace(result.packet, ct_status=status,
                                                              hook="forward")).node
        other = reach.dropped if kernel == "accept" else reach.accepted
        assert other.lower.node & point == reach.space.false, (src, dst, kernel)
        assert (reach.accepted if kernel == "accept" else reach.dropped).lower.node & point != reach.space.false
    assert verdicts == ["drop", "accept", "drop"]


IPV6 = {
    "iptables": """*nat
:PREROUTING ACCEPT [0:0]
-A PREROUTING -p tcp --dport 80 -j DNAT --to-destination 2001:db8::a0-2001:db8::a3
-A PREROUTING -p tcp --dport 81 -j DNAT --to-destination 2001:db8::ffff:fffe-2001:db8::1:0:1
-A PREROUTING -p tcp --dport 82 -j DNAT --to-destination 2001:db8::b0-2001:db8::b3 --persistent
COMMIT
*filter
:FORWARD DROP [0:0]
-A FORWARD -d 2001:db8::a0/127 -j ACCEPT
-A FORWARD -d 2001:db8::a2/127 -j DROP
-A FORWARD -d 2001:db8::ffff:fffe/127 -j ACCEPT
-A FORWARD -d 2001:db8::1:0:0/127 -j DROP
-A FORWARD -d 2001:db8::b0/127 -j ACCEPT
-A FORWARD -d 2001:db8::b2/127 -j DROP
-A FORWARD -j DROP
COMMIT
""",
    "nftables": """table ip6 t {
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
    tcp dport 80 dnat to 2001:db8::a0-2001:db8::a3
    tcp dport 81 dnat to 2001:db8::ffff:fffe-2001:db8::1:0:1
    tcp dport 82 dnat to 2001:db8::b0-2001:db8::b3 persistent
  }
  chain forwarding {
    type filter hook forward priority filter; policy drop;
    ip6 daddr 2001:db8::a0/127 counter accept
    ip6 daddr 2001:db8::a2/127 counter drop
    ip6 daddr 2001:db8::ffff:fffe/127 counter accept
    ip6 daddr 2001:db8::1:0:0/127 counter drop
    ip6 daddr 2001:db8::b0/127 counter accept
    ip6 daddr 2001:db8::b2/127 counter drop
    counter drop
  }
}
"""}


@pytest.mark.parametrize("dialect", ["iptables", "nftables"])
def test_nat_to_an_ipv6_range_agrees_with_the_kernel(dialect):
    """The hash over four address words, and a range across a word (where
    the kernel scales the lower words over the whole word once a higher one
    is not the range's last): IPv6 DNAT to ranges, plain and persistent."""
    skip_without_tools(dialect, 6)
    from ruleanalyzer import loads
    from ruleanalyzer.diff import packet_point
    from ruleanalyzer.engine import evaluate
    from ruleanalyzer.packets import make_packet
    from ruleanalyzer.space.reach import analyze

    from .netns import FW_V6, TestBed

    text = IPV6[dialect]
    if dialect == "iptables":
        argv = ["ip6tables-save", "-c", "-t", "filter"]
        counts = _counts_iptables
    else:
        argv, counts = ["nft", "list", "chain", "ip6", "t", "forwarding"], _counts_nft
    rnd = random.Random(6)
    probes = [(f"2001:db8:1:{rnd.randrange(1 << 16):x}::{rnd.randrange(1, 1 << 16):x}", (80, 81, 82)[k % 3])
              for k in range(36)]
    with TestBed() as bed:
        bed.fw.sysctl("net.ipv6.conf.all.forwarding", 1)
        bed.load_iptables(text, 6) if dialect == "iptables" else bed.load_nft(text)
        frames = [{"ident": k, "frame": bed.frame(packets.ip_packet(packets.Spec(
            src=src, dst=FW_V6, proto=6, sport=34000 + k, dport=dport, flags=0x02, ident=k))).hex()}
            for k, (src, dport) in enumerate(probes)]
        before = counts(bed.fw.exec(*argv).stdout)
        answers = bed.call({"op": "probe", "probes": frames, "counters": argv})["answers"]
    ruleset = loads(text, dialect=dialect)
    chain = next(c for t in ruleset.tables for name, c in t.chains.items() if name in ("FORWARD", "forwarding"))
    reach = analyze(ruleset, "forward", 6)
    wrong, decided = [], set()
    for k, ((src, dport), answer) in enumerate(zip(probes, answers)):
        after = counts(answer["counters"])
        moved = [i for i, (a, b) in enumerate(zip(before, after)) if a != b]
        before = after
        assert len(moved) == 1, f"{src}:{dport}: the kernel's counters moved at {moved}"
        kernel = chain.rules[moved[0]]
        decided.add(moved[0])
        result = evaluate(ruleset, make_packet(src=src, dst=FW_V6, sport=34000 + k, dport=dport, flags="SYN",
                                               state="new", hook="input"))
        rule = result.decided_by.rule if result.decided_by else None
        if result.verdict == "unknown" or rule is None or rule.text != kernel.text:
            wrong.append(f"{src}:{dport}: kernel {kernel.text!r}; engine {result.verdict} by "
                         f"{rule.text if rule else None!r} ({result.packet.dst})")
        # the walk holds the packet the kernel made (a range across words
        # reaches outside it: the kernel scales the lower words over all
        # their values) and is never sure of the other verdict
        point = packet_point(reach.space, dataclasses.replace(result.packet, ct_status=frozenset({"dnat"}),
                                                              hook="forward")).node
        mine, other = (reach.accepted, reach.dropped) if result.verdict == "accept" else \
            (reach.dropped, reach.accepted)
        if mine.upper.node & point == reach.space.false or other.lower.node & point != reach.space.false:
            wrong.append(f"{src}:{dport}: the walk does not hold {result.packet.dst} "
                         f"with the verdict {result.verdict}")
    assert not wrong, "\n".join(wrong)
    # every backend half was picked by some source — but ::ffff:fffe/127:
    # the word above it is not the range's last there, so the kernel takes
    # any last word (the catch-all: outside the range as written)
    assert decided == set(range(len(chain.rules))) - {2}
