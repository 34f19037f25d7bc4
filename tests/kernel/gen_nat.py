"""Random NAT rulesets and the SYNs to send through them, one per seed, in
both dialects (``tests/kernel/test_kernel_nat_random.py``).

A scenario is written once and rendered as an iptables-save text or an nft
ruleset with the same meaning:

- **nat PREROUTING**: DNAT to single addresses, address ranges (crossing
  octets), port ranges, ``persistent``/``random``; NETMAP (nft ``dnat ip
  prefix to``); REDIRECT with and without port ranges; each rule matching
  on destination, destination port and source, so that some packets pass
  untranslated;
- optionally **nat POSTROUTING**: SNAT to address and port ranges
  (``persistent``, ``random``, ``fully-random``), NETMAP of sources,
  MASQUERADE with and without ports;
- **filter FORWARD and INPUT**: terminal rules (ACCEPT or DROP, each with a
  counter) on pieces of the backends' ranges and ports, and a last rule
  taking the rest: exactly one counter moves per packet, and it says where
  the translation sent the packet.

Addresses keep to what the test bed routes (``tests/kernel/netns.py``):
backends and routed destinations in 10.0.0.0/8, the firewall's own
192.0.2.1 (on the veth) and 203.0.113.1 (on lo). What the analyzer
documents as not modelled is kept out:

- a DNAT never sends a packet to one of the firewall's own addresses (the
  engine, without a host snapshot, cannot know the address is local), and
  a REDIRECT matches only packets addressed to the firewall (the engine
  keeps the destination of a redirected packet; the kernel writes the
  incoming interface's first address — the test compares its port only —
  and sets no DNAT status where that address and the port are the
  packet's already, which the engine cannot know: REDIRECT matches only
  203.0.113.1, on lo, and addresses of other hosts, which the kernel always
  changes to the veth's);
- every probe has its own source port, and a SNAT's port range is 20
  ports or more (no clash of translated tuples — a MASQUERADE to one port
  made two connections one, and the kernel dropped the second after the
  filter accepted it —, no SNAT reusing an earlier connection's address);
- sources are never martians (0/8, 127/8, 224/3) nor the firewall's own.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, field

FW_V4, FW_V4_EXTRA = "192.0.2.1", "203.0.113.1"
#: Local destinations (the engine's hook "input"); the rest are forwarded.
LOCAL = (FW_V4, FW_V4_EXTRA)


@dataclass
class NatRule:
    """One nat rule: ``hook`` pre or post; matches on ``src``/``dst``
    (an address or prefix), ``dport`` (first, last); ``kind`` dnat,
    redirect, netmap, snat, masquerade; ``addr`` (first, last) or a prefix
    for netmap; ``ports`` (first, last); ``flags``."""

    hook: str
    kind: str
    src: str | None = None
    dst: str | None = None
    dport: tuple[int, int] | None = None
    addr: tuple[str, str] | str | None = None
    ports: tuple[int, int] | None = None
    flags: tuple[str, ...] = ()


@dataclass
class FilterRule:
    chain: str  # input, forward
    verdict: str  # accept, drop
    src: str | None = None
    dst: str | None = None  # a prefix, or "a-b" (a range)
    dport: tuple[int, int] | None = None
    ct: str | None = None  # dnat, snat: a ct status the rule asks for


@dataclass
class Scenario:
    seed: int
    nat: list[NatRule] = field(default_factory=list)
    filters: list[FilterRule] = field(default_factory=list)
    #: (source, source port, destination, destination port)
    probes: list[tuple[str, int, str, int]] = field(default_factory=list)


def _addr(value: int) -> str:
    return str(ipaddress.IPv4Address(value))


def _prefix_of(rnd: random.Random, base: str, low: int, high: int) -> str:
    """A random prefix of length low…high inside ``base`` (a prefix)."""
    net = ipaddress.ip_network(base)
    length = rnd.randint(max(low, net.prefixlen), high)
    host = rnd.randrange(net.num_addresses)
    return str(ipaddress.ip_network(f"{_addr(int(net.network_address) + host)}/{length}", strict=False))


def _random_in(rnd: random.Random, spec: str) -> str:
    if "-" in spec:
        a, b = (int(ipaddress.IPv4Address(x)) for x in spec.split("-"))
        return _addr(rnd.randint(a, b))
    net = ipaddress.ip_network(spec, strict=False)
    return _addr(int(net.network_address) + rnd.randrange(net.num_addresses))


def _anywhere(rnd: random.Random) -> str:
    while True:
        first = rnd.randint(1, 223)
        if first not in (127,):
            value = _addr(first << 24 | rnd.randrange(1 << 24))
            if value not in LOCAL:
                return value


def _port_range(rnd: random.Random) -> tuple[int, int]:
    first = rnd.choice((rnd.randint(1000, 9000), rnd.randint(1, 1023)))
    return first, first + rnd.choice((0, 0, 1, 2, 5, 10, 40, 300))


def _address_range(rnd: random.Random, base: int) -> tuple[str, str]:
    """A range of backends in 10.9.0.0/16 from ``base``: one address to a
    few hundred, often across an octet."""
    size = rnd.choice((1, 2, 3, 4, 5, 7, 8, 16, 33, 100, 256, 700))
    first = base + rnd.randrange(0, 1 << 14)
    if rnd.random() < 0.3:
        first = (first | 0xFF) - rnd.randrange(size)  # across the octet
    return _addr(first), _addr(first + size - 1)


def scenario(seed: int) -> Scenario:
    """The rules and probes of ``seed`` (the same for both dialects)."""
    rnd = random.Random(seed)
    sc = Scenario(seed)
    backends = int(ipaddress.IPv4Address("10.9.0.0"))
    vips = "10.50.0.0/24"
    pools = [_prefix_of(rnd, f"{rnd.randint(11, 199)}.0.0.0/8", 8, 20) for _ in range(3)]
    pools.append("198.51.100.0/24")
    snat_pools = []
    # -- PREROUTING ---------------------------------------------------------
    pre: list[NatRule] = []
    for _ in range(rnd.randint(3, 8)):
        kind = rnd.choices(("dnat", "redirect", "netmap"), (7, 2, 1))[0]
        rule = NatRule("pre", kind)
        if kind == "netmap":
            length = rnd.randint(20, 28)
            rule.dst = _prefix_of(rnd, "10.70.0.0/15", length, length)
            rule.addr = _prefix_of(rnd, "10.9.0.0/16", length, length)
        elif kind == "redirect":
            # (to the address on lo, or through: the kernel writes the
            # veth's, so the connection is always translated; see the
            # module doc)
            rule.dst = rnd.choice((FW_V4_EXTRA, _random_in(rnd, vips), _prefix_of(rnd, vips, 26, 32)))
            rule.ports = rnd.choice((None, _port_range(rnd)))
            if rule.ports and rule.ports[0] != rule.ports[1] and rnd.random() < 0.3:
                rule.flags = ("random",)
        else:
            rule.dst = rnd.choice((FW_V4, FW_V4_EXTRA, _random_in(rnd, vips), _prefix_of(rnd, vips, 26, 32)))
            rule.addr = _address_range(rnd, backends)
            if rnd.random() < 0.15:
                # to a range holding the destination itself: a connection
                # the hash leaves where it was is not translated at all
                a, b = (int(ipaddress.IPv4Address(x)) for x in rule.addr)
                rule.dst = f"{_addr(a)}-{_addr(b)}" if rnd.random() < 0.5 else \
                    str(ipaddress.ip_network(f"{_addr(a)}/{rnd.randint(24, 32)}", strict=False))
            rule.ports = rnd.choice((None, None, _port_range(rnd)))
            flags = []
            if rnd.random() < 0.3:
                flags.append("persistent")
            if rule.ports and rule.ports[0] != rule.ports[1] and rnd.random() < 0.25:
                flags.append("random")  # (iptables' DNAT has no --random-fully)
            rule.flags = tuple(flags)
        if kind != "netmap" and rnd.random() < 0.8:
            rule.dport = _port_range(rnd)
        if rnd.random() < 0.25:
            rule.src = rnd.choice(pools[:3])
        pre.append(rule)
    # -- POSTROUTING --------------------------------------------------------
    post: list[NatRule] = []
    for _ in range(rnd.choice((0, 0, 1, 2, 3))):
        kind = rnd.choices(("snat", "masquerade", "netmap"), (6, 2, 1))[0]
        rule = NatRule("post", kind)
        if kind == "netmap":
            pool = rnd.choice(pools[:3])
            length = ipaddress.ip_network(pool).prefixlen
            rule.src = pool
            rule.addr = _prefix_of(rnd, "10.66.0.0/16" if length >= 16 else "10.0.0.0/8", length, length)
        else:
            if kind == "snat":
                first = int(ipaddress.IPv4Address("198.18.0.0")) + rnd.randrange(1 << 16)
                size = rnd.choice((1, 2, 5, 16, 100, 256, 1000))
                rule.addr = (_addr(first), _addr(first + size - 1))
                snat_pools.append(f"{rule.addr[0]}-{rule.addr[1]}")
            rule.ports = rnd.choice((None, None, _port_range(rnd)))
            if rule.ports and rule.ports[1] - rule.ports[0] < 20:
                rule.ports = None  # (a port or two: connections clash on it, see the module doc)
            flags = []
            if kind == "snat" and rnd.random() < 0.3:
                flags.append("persistent")
            if rnd.random() < 0.25:
                flags.append(rnd.choice(("random", "fully-random")))
            rule.flags = tuple(flags)
            which = rnd.random()
            if which < 0.4:
                rule.dst = _prefix_of(rnd, "10.9.0.0/16", 16, 26)
            elif which < 0.7:
                rule.src = rnd.choice(pools + snat_pools[-1:])
            if rnd.random() < 0.3:
                rule.dport = _port_range(rnd)
        post.append(rule)
    sc.nat = pre + post
    # -- filter -------------------------------------------------------------
    targets = []  # (destination spec, ports) the translations write
    for r in pre:
        if r.kind == "dnat":
            targets.append((f"{r.addr[0]}-{r.addr[1]}", r.ports))
        elif r.kind == "netmap":
            targets.append((r.addr, None))
    for _ in range(rnd.randint(4, 12)):
        f = FilterRule("forward", rnd.choice(("accept", "drop")))
        if targets and rnd.random() < 0.85:
            spec, ports = rnd.choice(targets)
            if "-" in spec:
                a, b = (int(ipaddress.IPv4Address(x)) for x in spec.split("-"))
                lo = rnd.randint(a, b)
                hi = rnd.randint(lo, min(b, lo + (b - a) // 2))
                f.dst = rnd.choice((f"{_addr(lo)}-{_addr(hi)}" if hi > lo else _addr(lo),
                                    str(ipaddress.ip_network(f"{_addr(lo)}/{rnd.randint(24, 32)}", strict=False))))
            else:
                f.dst = _prefix_of(rnd, spec, ipaddress.ip_network(spec).prefixlen + 1, 32)
            if ports and rnd.random() < 0.5:
                lo = rnd.randint(*ports)
                f.dport = (lo, rnd.randint(lo, ports[1]))
        else:
            f.dst = rnd.choice((_prefix_of(rnd, "10.0.0.0/8", 9, 24), _prefix_of(rnd, vips, 24, 30)))
            if rnd.random() < 0.3:
                f.dport = _port_range(rnd)
        if rnd.random() < 0.15:
            f.src = rnd.choice(pools)
        if rnd.random() < 0.1:
            f.ct = rnd.choice(("dnat", "snat"))
        sc.filters.append(f)
    sc.filters.append(FilterRule("forward", rnd.choice(("accept", "drop"))))
    for _ in range(rnd.randint(1, 4)):
        f = FilterRule("input", rnd.choice(("accept", "drop")))
        r = rnd.choice([r for r in pre if r.kind == "redirect"] or [None])
        ports = (r.ports or r.dport) if r else None
        if ports and rnd.random() < 0.7:
            lo = rnd.randint(*ports)
            f.dport = (lo, rnd.randint(lo, ports[1]))
        else:
            f.dport = _port_range(rnd)
        if rnd.random() < 0.15:
            f.src = rnd.choice(pools)
        if rnd.random() < 0.15:
            f.ct = "dnat"
        sc.filters.append(f)
    sc.filters.append(FilterRule("input", rnd.choice(("accept", "drop"))))
    # -- probes -------------------------------------------------------------
    used = set()
    for _ in range(rnd.randint(30, 60)):
        r = rnd.choice(pre) if rnd.random() < 0.75 else None
        if r is not None:
            dst = _random_in(rnd, r.dst)
            dport = rnd.randint(*r.dport) if r.dport and rnd.random() < 0.85 else rnd.randint(1, 9999)
            if r.ports and rnd.random() < 0.5:
                dport = rnd.choice((rnd.randint(*r.ports), r.ports[0], r.ports[1], r.ports[1] + 1))
                dport = min(dport, 65535)
            src = _random_in(rnd, r.src) if r.src and rnd.random() < 0.8 else None
        else:
            dst = rnd.choice((FW_V4, FW_V4_EXTRA, _random_in(rnd, "10.9.0.0/16"), _random_in(rnd, vips),
                              _random_in(rnd, "10.0.0.0/8")))
            dport = rnd.randint(1, 9999)
            src = None
        if src is None:
            pick = rnd.random()
            src = _anywhere(rnd) if pick < 0.4 else \
                _random_in(rnd, rnd.choice(snat_pools)) if pick < 0.6 and snat_pools else \
                _random_in(rnd, rnd.choice(pools))
        post_ports = [r.ports for r in post if r.ports]
        while True:
            pick = rnd.random()
            sport = rnd.randint(*rnd.choice(post_ports)) if post_ports and pick < 0.3 else \
                rnd.randint(1, 511) if pick < 0.4 else rnd.randint(512, 1023) if pick < 0.5 else \
                rnd.randint(1024, 65535)
            if sport not in used:
                break
        used.add(sport)
        if src in LOCAL or src.startswith(("0.", "127.")) or int(src.split(".")[0]) >= 224:
            continue
        sc.probes.append((src, sport, dst, dport))
    return sc


# -- rendering ----------------------------------------------------------------

def _ipt_ports(ports: tuple[int, int], sep: str = ":") -> str:
    return str(ports[0]) if ports[0] == ports[1] else f"{ports[0]}{sep}{ports[1]}"


def _ipt_addr_match(flag: str, spec: str) -> str:
    if "-" in spec:
        return f"-m iprange --{'src' if flag == '-s' else 'dst'}-range {spec}"
    return f"{flag} {spec}"


def iptables(sc: Scenario) -> str:
    lines = ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
             ":POSTROUTING ACCEPT [0:0]"]
    for r in sc.nat:
        chain = "PREROUTING" if r.hook == "pre" else "POSTROUTING"
        parts = [f"-A {chain}"]
        if r.src:
            parts.append(_ipt_addr_match("-s", r.src))
        if r.dst:
            parts.append(_ipt_addr_match("-d", r.dst))
        if r.dport or r.ports:
            parts.append("-p tcp")
        if r.dport:
            parts.append(f"-m tcp --dport {_ipt_ports(r.dport)}")
        flags = "".join(f" --{'random-fully' if f == 'fully-random' else f}" for f in r.flags)
        ports = f":{_ipt_ports(r.ports, '-')}" if r.ports else ""
        if r.kind == "dnat":
            first, last = r.addr
            addr = first if first == last else f"{first}-{last}"
            parts.append(f"-j DNAT --to-destination {addr}{ports}{flags}")
        elif r.kind == "snat":
            first, last = r.addr
            addr = first if first == last else f"{first}-{last}"
            parts.append(f"-j SNAT --to-source {addr}{ports}{flags}")
        elif r.kind == "netmap":
            parts.append(f"-j NETMAP --to {r.addr}")
        elif r.kind == "redirect":
            parts.append("-j REDIRECT" + (f" --to-ports {_ipt_ports(r.ports, '-')}" if r.ports else "") + flags)
        else:
            parts.append("-j MASQUERADE" + (f" --to-ports {_ipt_ports(r.ports, '-')}" if r.ports else "") + flags)
        lines.append(" ".join(parts))
    lines += ["COMMIT", "*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    for f in sc.filters:
        parts = [f"-A {f.chain.upper()}"]
        if f.src:
            parts.append(_ipt_addr_match("-s", f.src))
        if f.dst:
            parts.append(_ipt_addr_match("-d", f.dst))
        if f.dport:
            parts.append(f"-p tcp -m tcp --dport {_ipt_ports(f.dport)}")
        if f.ct:
            parts.append(f"-m conntrack --ctstate {f.ct.upper()}")
        parts.append(f"-j {f.verdict.upper()}")
        lines.append(" ".join(parts))
    lines.append("COMMIT")
    return "\n".join(lines + RAW_IPTABLES) + "\n"


#: The firewall's answers to SYNs it accepts (a RST from a closed port) go
#: untracked: a RST conntrack sees ends the connection at once, and the
#: table is read after the probes.
RAW_IPTABLES = ["*raw", ":PREROUTING ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
                "-A OUTPUT -p tcp -m tcp --tcp-flags RST RST -j CT --notrack", "COMMIT"]
RAW_NFT = ["table ip r {", "  chain out {", "    type filter hook output priority raw; policy accept;",
           "    tcp flags & rst == rst notrack", "  }", "}"]


def _nft_ports(ports: tuple[int, int]) -> str:
    return _ipt_ports(ports, "-")


def _nft_matches(src: str | None, dst: str | None, dport: tuple[int, int] | None) -> list[str]:
    return ([f"ip saddr {src}"] if src else []) + ([f"ip daddr {dst}"] if dst else []) + \
        ([f"tcp dport {_nft_ports(dport)}"] if dport else [])


def nftables(sc: Scenario) -> str:
    out = ["table ip n {"]
    for hook, prio in (("pre", "prerouting priority dstnat"), ("post", "postrouting priority srcnat")):
        out += [f"  chain {hook} {{", f"    type nat hook {prio}; policy accept;"]
        for r in (r for r in sc.nat if r.hook == hook):
            parts = _nft_matches(r.src, r.dst, r.dport)
            if not r.dport and r.ports:
                parts.append("meta l4proto tcp")
            flags = (" " + ",".join(r.flags)) if r.flags else ""
            ports = f":{_nft_ports(r.ports)}" if r.ports else ""
            if r.kind in ("dnat", "snat"):
                first, last = r.addr
                addr = first if first == last else f"{first}-{last}"
                parts.append(f"{r.kind} to {addr}{ports}{flags}")
            elif r.kind == "netmap":
                parts.append(f"{'dnat' if hook == 'pre' else 'snat'} ip prefix to {r.addr}")
            else:
                parts.append(r.kind + (f" to {ports}" if ports else "") + flags)
            out.append("    " + " ".join(parts))
        out.append("  }")
    out.append("}")
    out.append("table ip f {")
    for chain in ("input", "forward"):
        out += [f"  chain {chain} {{", f"    type filter hook {chain} priority filter; policy accept;"]
        for f in (f for f in sc.filters if f.chain == chain):
            parts = _nft_matches(f.src, f.dst, f.dport)
            if f.ct:
                parts.append(f"ct status {f.ct}")
            parts.append(f"counter {f.verdict}")
            out.append("    " + " ".join(parts))
        out.append("  }")
    out.append("}")
    return "\n".join(out + RAW_NFT) + "\n"


def render(sc: Scenario, dialect: str) -> str:
    return iptables(sc) if dialect == "iptables" else nftables(sc)
