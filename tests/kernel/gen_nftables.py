"""Random nftables rulesets (``nft -f`` text) and the packets for them.

``generate(seed)`` returns a :class:`~tests.kernel.gen_iptables.Case` whose
text holds one to three tables (mostly ``inet``, sometimes ``ip``/``ip6``)
with several base chains on the input hook at distinct priorities, user
chains reached by ``jump``/``goto``, named and anonymous sets, verdict maps,
concatenations, every spelling of a TCP flags test, ``ct state``, marks set
(to a value, or the mark itself | & ^ a value)
and matched, and sometimes a raw-priority prerouting chain with ``notrack`` or a
``flags dormant`` table (which never runs).
Packets come from :func:`tests.kernel.gen_iptables.random_probe`, so both
dialects are probed alike.
"""

from __future__ import annotations

import ipaddress
import random

from .gen_iptables import Case, Pools, random_probe

#: Every way of writing a TCP flags test (the ECN trap lives here: ``==``
#: and sets compare the whole byte, ``/ mask`` only the bits named).
TCP_FLAG_TESTS = (
    "tcp flags syn", "tcp flags == syn", "tcp flags { syn, syn | ack }",
    "tcp flags syn / fin,syn,rst,ack", "tcp flags & (syn | ack) == syn",
    "tcp flags & (fin | syn | rst | ack) == syn", "tcp flags & (fin | syn | rst | ack) != syn",
    "tcp flags ack", "tcp flags == ack", "tcp flags != syn", "tcp flags & (ecn | cwr) != 0",
    "tcp flags ecn", "tcp flags == syn | ack", "tcp flags & (syn | rst) == syn | rst",
    "tcp flags { fin, rst, ack }", "tcp flags rst", "tcp flags & syn == 0",
    "tcp flags syn,ack / syn,ack", "tcp flags cwr",
)
CT_STATES = ("new", "established", "related", "invalid", "untracked")
ICMP4 = ("echo-request", "echo-reply", "destination-unreachable", "time-exceeded", "timestamp-request")
ICMP6 = ("echo-request", "echo-reply", "destination-unreachable", "time-exceeded", "packet-too-big")
PRIORITIES = (-250, -150, -10, 0, 10, 50, 100)


class _NftBuilder:
    def __init__(self, rnd: random.Random, pools: Pools):
        self.rnd = rnd
        self.pools = pools
        self.family = pools.family
        self.ip = "ip" if self.family == 4 else "ip6"
        self.marks = [rnd.choice((1, 2, 0x10, 0xff)) for _ in range(2)]

    def _neq(self, probability: float = 0.2) -> str:
        return "!= " if self.rnd.random() < probability else ""

    def _port_value(self) -> str:
        a = self.pools.port()
        if self.rnd.random() < 0.25 and a < 65535:
            return f"{a}-{min(65535, a + self.rnd.choice((1, 10, 1000)))}"
        return str(a)

    def _port_values(self, count: int) -> list[str]:
        """Distinct, non-overlapping ports and ranges (nft refuses overlaps)."""
        taken: list[tuple[int, int]] = []
        values = []
        for _ in range(count):
            value = self._port_value()
            low, _, high = value.partition("-")
            span = (int(low), int(high or low))
            if all(span[1] < a or span[0] > b for a, b in taken):
                taken.append(span)
                values.append(value)
        return values

    def _port_set(self) -> str:
        return "{ " + ", ".join(self._port_values(self.rnd.randint(1, 4))) + " }"

    def networks(self, addrs: list[str], count: int) -> list[str]:
        """Distinct, non-overlapping prefixes around ``addrs``."""
        picked: list = []
        for _ in range(count):
            text = self.pools.network(addrs)
            net = ipaddress.ip_network(text, strict=False)
            if not any(net.overlaps(other) for other in picked):
                picked.append(net)
        return [str(n) if n.prefixlen < n.max_prefixlen else str(n.network_address) for n in picked]

    def _addresses(self, addrs: list[str]) -> str:
        return self.pools.network(addrs)

    def _ports_expr(self, field: str, named: list[str]) -> str:
        rnd = self.rnd
        roll = rnd.random()
        if roll < 0.2 and named:
            return f"{field} @{rnd.choice(named)}"
        if roll < 0.45:
            return f"{field} {self._neq(0.15)}{self._port_set()}"
        return f"{field} {self._neq()}{self._port_value()}"

    def matches(self, table: "_Table") -> tuple[list[str], str | None]:
        rnd, pools, ip = self.rnd, self.pools, self.ip
        parts: list[str] = []
        proto = None
        if rnd.random() < 0.3:
            if table.addr_sets and rnd.random() < 0.3:
                parts.append(f"{ip} saddr {self._neq(0.2)}@{rnd.choice(table.addr_sets)}")
            elif rnd.random() < 0.3:
                nets = ", ".join(self.networks(pools.sources, rnd.randint(1, 3)))
                parts.append(f"{ip} saddr {{ {nets} }}")
            else:
                parts.append(f"{ip} saddr {self._neq()}{self._addresses(pools.sources)}")
        if rnd.random() < 0.12:
            parts.append(f"{ip} daddr {self._neq()}{self._addresses(pools.fw_addrs)}")
        if rnd.random() < 0.1:
            name = rnd.choice(('"rafw0"', '"rafw*"', '"lo"', '"eth0"', '"ra*"'))
            parts.append(f"iifname {self._neq(0.3)}{name}")
        roll = rnd.random()
        if roll < 0.5:
            proto = "tcp"
        elif roll < 0.65:
            proto = "udp"
        elif roll < 0.75:
            proto = "icmp" if self.family == 4 else "icmpv6"
        if proto in ("tcp", "udp"):
            explicit = rnd.random() < 0.3
            if explicit:
                parts.append(f"meta l4proto {proto}")
            added = False
            if rnd.random() < 0.55:
                parts.append(self._ports_expr(f"{proto} dport", table.port_sets)); added = True
            if rnd.random() < 0.2:
                parts.append(self._ports_expr(f"{proto} sport", table.port_sets)); added = True
            if proto == "tcp" and rnd.random() < 0.45:
                parts.append(rnd.choice(TCP_FLAG_TESTS)); added = True
            if not added and not explicit:
                parts.append(f"meta l4proto {proto}")
        elif proto:
            if rnd.random() < 0.7:
                types = ICMP4 if proto == "icmp" else ICMP6
                if rnd.random() < 0.3:
                    parts.append(f"{proto} type {{ {', '.join(rnd.sample(types, 2))} }}")
                else:
                    parts.append(f"{proto} type {self._neq()}{rnd.choice(types)}")
            else:
                parts.append(f"meta l4proto {proto}")
        elif rnd.random() < 0.1:
            parts.append(f"meta l4proto {{ tcp, udp }}")
        if rnd.random() < 0.08 and proto is None:
            # th: the transport header, whatever protocol carries ports.
            parts.append(f"meta l4proto {{ tcp, udp }} th dport {self._port_set()}")
        if rnd.random() < 0.25:
            if rnd.random() < 0.5:
                states = ", ".join(rnd.sample(CT_STATES, rnd.randint(1, 3)))
                parts.append(f"ct state {{ {states} }}")
            else:
                parts.append(f"ct state {self._neq(0.2)}{rnd.choice(CT_STATES)}")
        if rnd.random() < 0.06:
            parts.append(f"{ip} dscp {self._neq()}{rnd.choice(('cs0', 'cs1', 'af11', 'ef', '10'))}")
        if rnd.random() < 0.06:
            parts.append(f"{ip} ecn {self._neq()}{rnd.choice(('not-ect', 'ect0', 'ect1', 'ce'))}")
        if rnd.random() < 0.05:
            field = "ip ttl" if self.family == 4 else "ip6 hoplimit"
            op = rnd.choice(("", "< ", "> ", "!= "))
            parts.append(f"{field} {op}{rnd.choice((1, 32, 64, 65, 128))}")
        if rnd.random() < 0.05:
            low = rnd.choice((40, 48, 60, 64, 80))
            parts.append(f"meta length {low}-{low + rnd.choice((4, 20, 1000))}")
        if rnd.random() < 0.12:
            parts.append(self.header_arithmetic())
        if table.meters and rnd.random() < 0.08:
            # per-source rate from the packet path: depends on traffic history
            rate = rnd.choice(("over 1/minute", "over 100/second", "1/hour"))
            parts.append(f"update @{table.meters[0]} {{ {ip} saddr limit rate {rate} }}")
        if rnd.random() < 0.06:
            parts.append(f"meta mark {self._neq()}0x{rnd.choice(self.marks):x}")
        if rnd.random() < 0.04:
            parts.append(f"meta pkttype {self._neq()}{rnd.choice(('host', 'broadcast', 'multicast'))}")
        if rnd.random() < 0.08 and proto in ("tcp", "udp"):
            # A concatenation: address and port together.
            elems = ", ".join(dict.fromkeys(
                f"{rnd.choice(pools.sources)} . {self.pools.port()}" for _ in range(rnd.randint(1, 3))))
            parts.append(f"{ip} saddr . {proto} dport {{ {elems} }}")
        return parts, proto

    def header_arithmetic(self) -> str:
        """A test of an IP header field by value, range or mask: fragment
        bits, identification, length, TTL, DSCP."""
        rnd = self.rnd
        if rnd.random() < 0.25:
            # header presence: the probes carry no IPv6 extension headers or IP options
            if self.family == 6:
                return rnd.choice(("exthdr hbh exists", "exthdr frag missing", "frag frag-off != 0",
                                   f"ip6 nexthdr {rnd.choice(('tcp', 'udp', 'ipv6-icmp', '0'))}"))
            return rnd.choice(("ip option rr exists", "ip option lsrr missing", "ip option ra exists"))
        if self.family == 6:
            return rnd.choice((f"ip6 length {rnd.choice(('<', '>', '!='))} {rnd.choice((8, 16, 28, 60, 500))}",
                               f"ip6 hoplimit & 0xc0 == 0x{rnd.choice((0, 0x40, 0xc0)):x}",
                               f"ip6 dscp & 0x38 {rnd.choice(('==', '!='))} 0x{rnd.choice((0, 8)):x}"))
        return rnd.choice((
            "ip frag-off & 0x1fff != 0", "ip frag-off & 0x1fff == 0",
            f"ip frag-off & 0x4000 {rnd.choice(('==', '!='))} 0", "ip frag-off & 0x2000 == 0x2000",
            f"ip frag-off {rnd.choice(('0', '0x4000', '!= 0'))}",
            f"ip id {rnd.choice(('<', '>', '!='))} {rnd.randint(0, 65535)}",
            f"ip length {rnd.choice(('<', '>', '<=', '>='))} {rnd.choice((36, 48, 60, 100, 1000))}",
            f"ip ttl & 0xc0 {rnd.choice(('==', '!='))} 0x{rnd.choice((0, 0x40, 0xc0)):x}",
            f"ip dscp & 0x38 {rnd.choice(('==', '!='))} 0x{rnd.choice((0, 8)):x}",
            f"ip ttl {rnd.choice(('<', '>'))} {rnd.choice((2, 63, 64, 65))}"))

    def reject(self, proto: str | None, parts: list[str], table: "_Table") -> str:
        """A reject, often one whose dependency nft adds itself: a bare
        ``reject with tcp reset`` only rejects TCP, ``reject with icmp`` in
        an inet table only IPv4 (the rest goes on to the next rule)."""
        rnd = self.rnd
        options = ["reject"]
        if proto == "tcp" or (proto is None and not any("l4proto {" in p or p.startswith("th ")
                                                         for p in parts)):
            options += ["reject with tcp reset"] * 3  # nft refuses it after a udp or icmp match
        if table.family == "inet":
            options.append("reject with icmpx type admin-prohibited")
            # a rule that already reads one IP header may only answer in that version
            # (a meter's ``update @m { ip6 saddr … }`` reads it too)
            network = any(word in ("ip", "ip6", "icmp", "icmpv6") for p in parts for word in p.split())
            versions = [self.family] if network else [4, 6]
            for v in versions:
                options.append("reject with icmp type host-unreachable" if v == 4
                               else "reject with icmpv6 type admin-prohibited")
        else:
            kind = "icmp" if table.family == "ip" else "icmpv6"
            options.append(f"reject with {kind} type admin-prohibited")
        return rnd.choice(options)

    def verdict(self, proto: str | None, callable_chains: list[str], table: "_Table",
                parts: list[str] = ()) -> str:
        rnd = self.rnd
        roll = rnd.random()
        if callable_chains and roll < 0.2:
            return f"{rnd.choice(('jump', 'jump', 'goto'))} {rnd.choice(callable_chains)}"
        if roll < 0.42:
            return "accept"
        if roll < 0.62:
            return "drop"
        if roll < 0.72:
            return self.reject(proto, list(parts), table)
        if roll < 0.76:
            return "return"
        if roll < 0.84:
            # (the form from roll, not a new draw: the seeds' other rules stay as they were)
            mark = rnd.choice(self.marks)
            form = "" if roll < 0.79 else ("meta mark | " if roll < 0.81 else
                                          "meta mark ^ " if roll < 0.825 else "meta mark & ")
            return f"meta mark set {form}0x{mark:x}"
        if roll < 0.9 and table.vmaps:
            return ""  # a vmap rule is built by the caller
        return "continue"

    def vmap_rule(self, proto: str, callable_chains: list[str], table: "_Table") -> str:
        rnd = self.rnd
        if table.vmaps and rnd.random() < 0.4:
            return f"{proto} dport vmap @{rnd.choice(table.vmaps)}"
        verdicts = ["accept", "drop"] + [f"jump {c}" for c in callable_chains]
        keys = self._port_values(rnd.randint(1, 4))
        elems = ", ".join(f"{k} : {rnd.choice(verdicts)}" for k in keys)
        return f"{proto} dport vmap {{ {elems} }}"


class _Table:
    def __init__(self, name: str, family: str):
        self.name, self.family = name, family
        self.port_sets: list[str] = []
        self.addr_sets: list[str] = []
        self.vmaps: list[str] = []
        self.meters: list[str] = []  # sets the packet path updates (expected: unknown)


def _table_text(b: _NftBuilder, table: _Table, priorities: list[int], raw: bool) -> str:
    rnd, pools = b.rnd, b.pools
    lines = [f"table {table.family} {table.name} {{"]
    for i in range(rnd.randint(0, 2)):
        name = f"ports{i}"
        elems = ", ".join(b._port_values(rnd.randint(1, 4)))
        lines += [f"  set {name} {{", "    type inet_service; flags interval;",
                  f"    elements = {{ {elems} }}", "  }"]
        table.port_sets.append(name)
    if rnd.random() < 0.5:
        addr_type = "ipv4_addr" if b.family == 4 else "ipv6_addr"
        elems = ", ".join(b.networks(pools.sources, rnd.randint(1, 3)))
        lines += ["  set srcs {", f"    type {addr_type}; flags interval;",
                  f"    elements = {{ {elems} }}", "  }"]
        table.addr_sets.append("srcs")
    addr_type = "ipv4_addr" if b.family == 4 else "ipv6_addr"
    if rnd.random() < 0.3:
        # A bouncer's blocklist: maintained at runtime, listed with its
        # elements (answered from the listing).
        elems = ", ".join(f"{a} timeout 1h" for a in dict.fromkeys(
            rnd.choice(pools.sources) for _ in range(rnd.randint(1, 3))))
        flags = rnd.choice(("timeout", "dynamic, timeout"))
        lines += ["  set tsrc {", f"    type {addr_type}; flags {flags};",
                  f"    elements = {{ {elems} }}", "  }"]
        table.addr_sets.append("tsrc")
    if rnd.random() < 0.25:
        lines += ["  set meter0 {", f"    type {addr_type}; flags dynamic;", "  }"]
        table.meters.append("meter0")
    if rnd.random() < 0.4:
        keys = dict.fromkeys(str(pools.port()) for _ in range(rnd.randint(1, 3)))
        elems = ", ".join(f"{k} : {rnd.choice(('accept', 'drop'))}" for k in keys)
        lines += ["  map vm {", "    type inet_service : verdict;", f"    elements = {{ {elems} }}", "  }"]
        table.vmaps.append("vm")
    users = [f"u{i}" for i in range(1, rnd.randint(0, 3) + 1)]
    chains = [(f"in{p if p >= 0 else 'm' + str(-p)}", p, users) for p in priorities]
    if raw:
        chains.insert(0, ("raw_pre", -300, []))
    chains += [(u, None, users[i + 1:]) for i, u in enumerate(users)]
    for name, prio, callable_chains in chains:
        lines.append(f"  chain {name} {{")
        if name == "raw_pre":
            lines.append("    type filter hook prerouting priority -300; policy accept;")
            for _ in range(rnd.randint(1, 2)):
                parts, _ = b.matches(table)
                lines.append("    " + " ".join(parts + ["notrack"]))
            lines.append("  }")
            continue
        if prio is not None:
            policy = rnd.choice(("accept", "accept", "drop"))
            lines.append(f"    type filter hook input priority {prio}; policy {policy};")
        count = rnd.randint(2, 9) if prio is not None else rnd.randint(1, 5)
        rules = []
        for _ in range(count):
            parts, proto = b.matches(table)
            verdict = b.verdict(proto, callable_chains, table, parts)
            if proto in ("tcp", "udp") and (verdict == "" or b.rnd.random() < 0.1):
                parts = [x for x in parts if not x.startswith(f"{proto} dport")]
                verdict = b.vmap_rule(proto, callable_chains, table)
            elif verdict == "":
                verdict = "accept"
            elif verdict.startswith("meta mark set") and b.rnd.random() < 0.5:
                verdict += " " + b.rnd.choice(("accept", "continue", "drop"))
            counter = ["counter"] if b.rnd.random() < 0.5 else []
            rules.append("    " + " ".join(parts + counter + [verdict]))
        if prio is not None and users and not any(f" {users[0]}" in r for r in rules):
            parts, _ = b.matches(table)
            rules.insert(rnd.randint(0, len(rules)), "    " + " ".join(parts + [f"jump {users[0]}"]))
        lines += rules
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def generate(seed: int, probes: int = 100, family: int | None = None) -> Case:
    """A random nftables ruleset and ``probes`` random packets, from ``seed``."""
    rnd = random.Random(seed)
    if family is None:
        family = 6 if rnd.random() < 0.3 else 4
    pools = Pools(rnd, family)
    b = _NftBuilder(rnd, pools)
    priorities = sorted(rnd.sample(PRIORITIES, rnd.randint(3, 4)))
    # Split the base chains over one to three tables; priorities stay distinct.
    tables = []
    count = rnd.randint(1, min(3, len(priorities)))
    cuts = sorted(rnd.sample(range(1, len(priorities)), count - 1)) if count > 1 else []
    groups, start = [], 0
    for cut in cuts + [len(priorities)]:
        groups.append(priorities[start:cut])
        start = cut
    for i, group in enumerate(groups):
        fam = "inet" if rnd.random() < 0.7 else ("ip" if family == 4 else "ip6")
        tables.append(_table_text(b, _Table(f"t{i}", fam), group, raw=(i == 0 and rnd.random() < 0.2)))
    if rnd.random() < 0.15:
        # A dormant table is loaded but never runs, whatever it says.
        text = _table_text(b, _Table("td", "inet"), [rnd.choice(PRIORITIES)], raw=False)
        tables.append(text.replace(" {\n", " {\n  flags dormant\n", 1))
    used: set = set()
    batch = [random_probe(rnd, pools, (seed % 20000) * 1000 + i + 1, used) for i in range(probes)]
    return Case(seed, family, "".join(tables), batch)
