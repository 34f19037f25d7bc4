"""Random iptables rulesets and the packets to throw at them.

``generate(seed)`` returns a :class:`Case`: an ``iptables-save`` text (the
filter table's INPUT chain plus user chains reached by ``-j``/``-g``, and
sometimes raw-table NOTRACK and mangle-table MARK/ECN rules) and a list of
:class:`~tests.kernel.probes.Probe`. Everything comes from one
``random.Random(seed)``, so a failing seed reproduces.

Match values are drawn from the same small pools as the packets' fields
(a handful of ports, prefixes around the packets' addresses), so most rules
match some packets and the interesting boundaries (port ranges, prefix
edges, flag masks) are crossed.

Only matches the kernel can load and the analyzer can decide are used;
kernel constraints are noted where they shape the generator.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, field

from . import netns
from .probes import Probe

FIN, SYN, RST, PSH, ACK, URG, ECE, CWR, AE = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x100
FLAG_NAMES = {"FIN": FIN, "SYN": SYN, "RST": RST, "PSH": PSH, "ACK": ACK, "URG": URG}

#: TCP flag combinations probes carry: handshake legs with and without ECN,
#: data, teardown and nonsense (conntrack calls several of them INVALID).
PROBE_FLAGS = (SYN, SYN, SYN | ECE | CWR, SYN | ECE | CWR | AE, SYN | ACK, SYN | ACK | ECE, ACK,
               PSH | ACK, PSH | ACK | ECE, PSH | ACK | CWR, ACK | ECE | CWR, FIN | ACK, FIN, RST,
               RST | ACK, SYN | FIN, 0, FIN | PSH | URG, 0x3F, URG | ACK, SYN | URG, SYN | RST)

#: --tcp-flags MASK COMP pairs people write, plus odd ones.
TCP_FLAG_TESTS = (("SYN,RST,ACK,FIN", "SYN"), ("ALL", "SYN"), ("ALL", "ACK"), ("ALL", "NONE"),
                  ("ALL", "ALL"), ("SYN,RST", "SYN,RST"), ("FIN,SYN", "FIN,SYN"),
                  ("SYN,ACK", "SYN,ACK"), ("ACK,FIN", "FIN"), ("ALL", "FIN,PSH,URG"),
                  ("ACK,PSH", "PSH"), ("SYN", "SYN"), ("RST", "RST"), ("NONE", "NONE"),
                  ("ALL", "SYN,ACK"), ("URG,ACK", "URG"))

STATES = ("NEW", "ESTABLISHED", "RELATED", "INVALID", "UNTRACKED")
ICMP4_TYPES = ("echo-request", "echo-reply", "8", "0", "destination-unreachable", "3/3",
               "port-unreachable", "3/1", "host-unreachable", "time-exceeded", "11/0",
               "timestamp-request", "any")
ICMP6_TYPES = ("echo-request", "echo-reply", "128", "129", "destination-unreachable", "1/4",
               "port-unreachable", "1/3", "time-exceeded", "3/0", "packet-too-big")
DSCP_CLASSES = {"EF": 46, "AF11": 10, "AF41": 34, "CS1": 8, "BE": 0}
ADDRTYPES = ("LOCAL", "UNICAST", "BROADCAST", "MULTICAST", "ANYCAST", "UNREACHABLE")
COMMON_PORTS = (22, 25, 53, 80, 123, 443, 1024, 3306, 5353, 8080, 8443, 60000)


@dataclass
class Case:
    """One random ruleset and the probes for it."""

    seed: int
    family: int
    text: str
    probes: list[Probe] = field(default_factory=list)

    def __str__(self) -> str:
        return f"seed {self.seed} (IPv{self.family})"


class Pools:
    """The values rules and packets share for one ruleset."""

    def __init__(self, rnd: random.Random, family: int):
        self.rnd = rnd
        self.family = family
        ports = set(rnd.sample(COMMON_PORTS, 4)) | {rnd.randint(1025, 65000) for _ in range(2)}
        self.ports = sorted(ports)
        if family == 4:
            self.fw_addrs = [netns.FW_V4, netns.FW_V4_EXTRA]
            self.sources = ([f"192.0.2.{rnd.randint(10, 250)}" for _ in range(3)]
                            + [f"198.51.100.{rnd.randint(1, 254)}" for _ in range(3)]
                            + [f"10.{rnd.randint(0, 3)}.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}"
                               for _ in range(3)])
            self.prefix_lengths = (0, 1, 8, 16, 23, 24, 25, 28, 30, 31, 32)
        else:
            self.fw_addrs = [netns.FW_V6, netns.FW_V6_EXTRA]
            self.sources = ([f"2001:db8::{rnd.randint(16, 0xfff):x}" for _ in range(3)]
                            + [f"2001:db8:1:{rnd.randint(0, 3):x}::{rnd.randint(1, 0xffff):x}"
                               for _ in range(6)])
            self.prefix_lengths = (0, 1, 32, 47, 48, 56, 64, 96, 120, 127, 128)

    def port(self) -> int:
        rnd = self.rnd
        roll = rnd.random()
        if roll < 0.6:
            return rnd.choice(self.ports)
        if roll < 0.8:
            return max(1, min(65535, rnd.choice(self.ports) + rnd.choice((-1, 1))))
        return rnd.randint(1, 65535)

    def network(self, addrs: list[str]) -> str:
        addr = self.rnd.choice(addrs)
        length = self.rnd.choice(self.prefix_lengths)
        net = ipaddress.ip_network(f"{addr}/{length}", strict=False)
        if length == (32 if self.family == 4 else 128) and self.rnd.random() < 0.5:
            return addr  # a bare address, as people write it
        return str(net)

    def address_range(self, addrs: list[str]) -> str:
        addr = ipaddress.ip_address(self.rnd.choice(addrs))
        low = addr - self.rnd.randint(0, 40)
        high = addr + self.rnd.randint(0, 40)
        if self.rnd.random() < 0.3:  # a range that misses the address
            low, high = high + 1, high + self.rnd.randint(1, 30)
        return f"{low}-{high}"


class _RulesetBuilder:
    """Writes one random ruleset; rule syntax mirrors iptables-save output."""

    def __init__(self, rnd: random.Random, pools: Pools):
        self.rnd = rnd
        self.pools = pools
        self.family = pools.family
        self.marks = [rnd.choice((1, 2, 3, 0x10, 0x11, 0xff)) for _ in range(2)]

    # -- matches -----------------------------------------------------------

    def _neg(self, probability: float = 0.25) -> str:
        return "! " if self.rnd.random() < probability else ""

    def _ports(self, multiport: bool = False) -> str:
        a = self.pools.port()
        if self.rnd.random() < 0.3 and a < 65535:
            # multiport refuses a one-port range "a:a"; --dport takes it.
            b = min(65535, a + self.rnd.choice((1, 10, 1000) if multiport else (0, 1, 10, 1000)))
            return f"{a}:{b}"
        return str(a)

    def _proto_matches(self, proto: str, parts: list[str]) -> None:
        rnd = self.rnd
        explicit = rnd.random() < 0.8  # iptables-save writes "-m tcp"; people often do not
        mod = f"-m {proto} " if explicit else ""
        options = []
        dport_negated_single = False
        if rnd.random() < 0.5:
            neg, ports = self._neg(), self._ports()
            dport_negated_single = bool(neg) and ":" not in ports
            options.append(f"{neg}--dport {ports}")
        if rnd.random() < 0.25:
            neg, ports = self._neg(), self._ports()
            if dport_negated_single and ":" not in ports:
                # iptables-nft 1.8.9 compiles "! --dport A ! --sport B" into
                # one 4-byte compare, "not (sport B and dport A)": either
                # port differing matches, where legacy iptables needs both
                # to (checked with nft --debug=netlink). Backends disagree;
                # not a question for the analyzer: avoided.
                neg = ""
            options.append(f"{neg}--sport {ports}")
        if proto == "tcp":
            roll = rnd.random()
            if roll < 0.2:
                options.append(f"{self._neg()}--syn")
            elif roll < 0.5:
                mask, comp = rnd.choice(TCP_FLAG_TESTS)
                # iptables-nft 1.8.9 drops "! --tcp-flags NONE NONE" when it
                # translates the rule (checked: the kernel rule matches every
                # TCP packet), where legacy iptables never matches. Not a
                # question the analyzer can answer from the text: avoided.
                neg = self._neg() if mask != "NONE" else ""
                options.append(f"{neg}--tcp-flags {mask} {comp}")
        if options:
            parts.append(mod + " ".join(options) if mod else " ".join(options))
        if rnd.random() < 0.2:
            kind = rnd.choice(("--dports", "--sports", "--ports"))
            ports = ",".join(self._ports(multiport=True) for _ in range(rnd.randint(1, 4)))
            parts.append(f"-m multiport {self._neg()}{kind} {ports}")
        if proto == "tcp" and rnd.random() < 0.25:
            ecn = rnd.choice(("--ecn-tcp-cwr", "--ecn-tcp-ece", "--ecn-tcp-ece --ecn-tcp-cwr"))
            parts.append(f"-m ecn {self._neg()}{ecn}")

    def _icmp_matches(self, parts: list[str]) -> None:
        if self.rnd.random() < 0.7:
            if self.family == 4:
                parts.append(f"-m icmp {self._neg()}--icmp-type {self.rnd.choice(ICMP4_TYPES)}")
            else:
                parts.append(f"-m icmp6 {self._neg()}--icmpv6-type {self.rnd.choice(ICMP6_TYPES)}")

    def u32_idiom(self, tcp: bool) -> str:
        """A u32 test people write: the TCP flags byte through the header
        length (in a ``-p tcp`` rule, as people write it: elsewhere those
        bytes are payload), the TOS byte, the fragment word, the total
        length, the TTL, the protocol."""
        rnd = self.rnd
        flags = rnd.choice((0x02, 0x12, 0x10, 0x04, 0x01, 0x11))
        if tcp and rnd.random() < 0.5:
            return rnd.choice((f'"0>>22&0x3C@12>>16&0x3F=0x{flags:02x}"',
                               f'"0>>22&0x3C@12>>16&0x{rnd.choice((0x17, 0x3f)):x}=0x{flags & 0x17:02x}"',
                               f'"0>>22&0x3C@0&0xFFFF={self.pools.port()}"'))
        return rnd.choice((
            f'"0&0x00FF0000=0x00{(rnd.choice((0, 8, 10, 46)) << 2) | rnd.choice((0, 1, 2, 3)):02X}0000"',
            f'"0>>16&0xFC=0x{rnd.choice((0, 8, 10, 46)) << 2:x}"',
            f'"4&0x1FFF={rnd.choice(("0", "1:0x1FFF"))}"', f'"4&0x4000=0x{rnd.choice((0, 0x4000)):x}"',
            f'"0&0xFFFF={rnd.choice((0, 40, 48, 60))}:{rnd.choice((60, 100, 1100))}"',
            f'"6&0xFF={rnd.choice((6, 17, 1))}"',
            f'"8>>24={rnd.choice((1, 64, 128))}:255"'))

    def matches(self, chain: str) -> tuple[str, str | None]:
        """Random match text for a rule in ``chain``, and its protocol."""
        rnd, pools = self.rnd, self.pools
        parts: list[str] = []
        proto = None
        for option, probability, addrs in (("-s", 0.3, pools.sources), ("-d", 0.15, pools.fw_addrs)):
            if rnd.random() < probability:
                net = pools.network(addrs)
                # iptables-nft refuses a negated match-everything prefix.
                neg = self._neg(0.2) if not net.endswith("/0") else ""
                parts.append(f"{neg}{option} {net}")
        if rnd.random() < 0.12:
            name = rnd.choice((netns.FW_IF, "rafw+", "ra+", "lo", "eth0", "eth+"))
            parts.append(f"{self._neg(0.3)}-i {name}")
        if chain.startswith("U") and rnd.random() < 0.05:
            # Allowed in a user chain; in INPUT there is no output device.
            parts.append(f"{self._neg(0.5)}-o {rnd.choice(('rafw+', 'eth0'))}")
        roll = rnd.random()
        if roll < 0.45:
            proto = "tcp"
        elif roll < 0.6:
            proto = "udp"
        elif roll < 0.72:
            proto = "icmp" if self.family == 4 else "ipv6-icmp"
        if proto:
            negated = rnd.random() < 0.05
            parts.append(f"{'! ' if negated else ''}-p {proto}")
            if negated:
                proto = None  # protocol options need the positive protocol
            elif proto in ("tcp", "udp"):
                self._proto_matches(proto, parts)
            else:
                self._icmp_matches(parts)
        self._other_matches(parts)
        return " ".join(parts), proto

    def _other_matches(self, parts: list[str]) -> None:
        rnd, pools = self.rnd, self.pools
        if rnd.random() < 0.25:
            states = ",".join(sorted(rnd.sample(STATES, rnd.randint(1, 3)), key=STATES.index))
            if rnd.random() < 0.5:
                parts.append(f"-m state {self._neg(0.15)}--state {states}")
            else:
                parts.append(f"-m conntrack {self._neg(0.15)}--ctstate {states}")
        if rnd.random() < 0.06:
            parts.append(f"-m ecn {self._neg()}--ecn-ip-ect {rnd.randint(0, 3)}")
        if rnd.random() < 0.06:
            low = rnd.choice((0, 40, 48, 52, 60, 64, 80))
            spec = f"{low}:{low + rnd.choice((0, 4, 8, 30, 1000))}" if rnd.random() < 0.7 else str(low)
            parts.append(f"-m length {self._neg()}--length {spec}")
        if rnd.random() < 0.05:
            op = rnd.choice(("eq", "lt", "gt"))
            value = rnd.choice((1, 32, 63, 64, 65, 128, 255))
            if self.family == 4:
                neg = self._neg() if op == "eq" else ""  # only --ttl-eq can be negated
                parts.append(f"-m ttl {neg}--ttl-{op} {value}")
            else:
                neg = self._neg() if op == "eq" else ""
                parts.append(f"-m hl {neg}--hl-{op} {value}")
        if rnd.random() < 0.05:
            if rnd.random() < 0.7:
                parts.append(f"-m dscp {self._neg()}--dscp {rnd.choice((0, 8, 10, 34, 46))}")
            else:
                parts.append(f"-m dscp {self._neg()}--dscp-class {rnd.choice(list(DSCP_CLASSES))}")
        if rnd.random() < 0.04:
            dscp = rnd.choice((0, 8, 10, 46))
            mask = rnd.choice((0xfc, 0xff, 0x3f, 0xe0))
            parts.append(f"-m tos {self._neg()}--tos 0x{(dscp << 2) & mask:02x}/0x{mask:02x}")
        if self.family == 4 and rnd.random() < 0.08:  # ip6tables has no u32
            parts.append(f"-m u32 {self._neg(0.2)}--u32 {self.u32_idiom('-p tcp' in parts)}")
        if rnd.random() < 0.06:
            mark = rnd.choice(self.marks)
            mask = rnd.choice(("", "/0xff", "/0xf", "/0xffffffff"))
            parts.append(f"-m mark {self._neg()}--mark 0x{mark:x}{mask}")
        if rnd.random() < 0.05:
            kind = "--src-range" if rnd.random() < 0.7 else "--dst-range"
            addrs = pools.sources if kind == "--src-range" else pools.fw_addrs
            parts.append(f"-m iprange {self._neg()}{kind} {pools.address_range(addrs)}")
        if rnd.random() < 0.04:
            kind = rnd.choice(("--src-type", "--dst-type"))
            # ip6tables refuses BROADCAST: IPv6 has none.
            choices = ADDRTYPES if self.family == 4 else tuple(t for t in ADDRTYPES if t != "BROADCAST")
            types = ",".join(rnd.sample(choices, rnd.randint(1, 2)))
            parts.append(f"-m addrtype {self._neg()}{kind} {types}")
        if rnd.random() < 0.04:
            kind = rnd.choice(("unicast", "broadcast", "multicast"))
            parts.append(f"-m pkttype {self._neg()}--pkt-type {kind}")
        if rnd.random() < 0.02:
            parts.append(f"-m connmark {self._neg()}--mark 0x{rnd.choice(self.marks):x}")

    # -- targets -----------------------------------------------------------

    def target(self, proto: str | None, chain: str, later_chains: list[str]) -> str:
        rnd = self.rnd
        roll = rnd.random()
        if later_chains and roll < 0.25:
            verb = "-j" if rnd.random() < 0.75 else "-g"
            return f"{verb} {rnd.choice(later_chains)}"
        if roll < 0.45:
            return "-j ACCEPT"
        if roll < 0.65:
            return "-j DROP"
        if roll < 0.75:
            options = (["icmp-port-unreachable", "icmp-host-prohibited", "icmp-admin-prohibited"]
                       if self.family == 4 else
                       ["icmp6-port-unreachable", "icmp6-adm-prohibited", "icmp6-no-route"])
            if proto == "tcp":
                options.append("tcp-reset")  # REJECT accepts tcp-reset only with -p tcp
            if rnd.random() < 0.3:
                return "-j REJECT"
            return f"-j REJECT --reject-with {rnd.choice(options)}"
        if roll < (0.82 if chain != "INPUT" else 0.76):  # RETURN in INPUT: the policy
            return "-j RETURN"
        if roll < 0.88:
            return f'-j LOG --log-prefix "ra{rnd.randint(0, 99)} "'
        if roll < 0.96:
            mark = rnd.choice(self.marks)
            return rnd.choice((f"-j MARK --set-xmark 0x{mark:x}/0xffffffff", f"-j MARK --set-mark {mark}",
                               f"-j MARK --or-mark 0x{mark:x}", f"-j MARK --and-mark 0x{mark:x}"))
        return f"-j CONNMARK --set-mark 0x{rnd.choice(self.marks):x}"

    # -- tables ------------------------------------------------------------

    def filter_table(self) -> str:
        rnd = self.rnd
        users = [f"U{i}" for i in range(1, rnd.randint(1, 4) + 1)]
        lines = ["*filter", f":INPUT {rnd.choice(('ACCEPT', 'DROP'))} [0:0]",
                 ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
        lines += [f":{u} - [0:0]" for u in users]
        # User chains may only call later ones: iptables refuses loops.
        chains = [("INPUT", users)] + [(u, users[i + 1:]) for i, u in enumerate(users)]
        for chain, callable_chains in chains:
            count = rnd.randint(3, 12) if chain == "INPUT" else rnd.randint(1, 6)
            rules = []
            for _ in range(count):
                text, proto = self.matches(chain)
                rules.append(f"-A {chain} {text} {self.target(proto, chain, callable_chains)}")
            if chain == "INPUT" and not any(f" {users[0]}" in r for r in rules):
                # The first user chain is always reachable from INPUT.
                text, _ = self.matches(chain)
                rules.insert(rnd.randint(0, count), f"-A INPUT {text} -j {users[0]}")
            lines += [" ".join(r.split()) for r in rules]
        lines.append("COMMIT")
        return "\n".join(lines) + "\n"

    def raw_table(self) -> str:
        lines = ["*raw", ":PREROUTING ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
        # NOTRACK counts by the base chain it runs under: sometimes in a user chain.
        chain = "PREROUTING"
        if self.rnd.random() < 0.3:
            chain = "SKIPCT"
            lines += [":SKIPCT - [0:0]", "-A PREROUTING -j SKIPCT"]
        for _ in range(self.rnd.randint(1, 2)):
            text, _ = self.matches(chain)
            verb = "-j NOTRACK" if self.rnd.random() < 0.5 else "-j CT --notrack"
            lines.append(" ".join(f"-A {chain} {text} {verb}".split()))
        lines.append("COMMIT")
        return "\n".join(lines) + "\n"

    def mangle_table(self) -> str:
        rnd = self.rnd
        lines = ["*mangle", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]",
                 ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]"]
        for _ in range(rnd.randint(1, 3)):
            chain = rnd.choice(("PREROUTING", "INPUT"))
            if self.family == 4 and rnd.random() < 0.5:
                # The ECN target exists for IPv4 only and needs -p tcp.
                lines.append(f"-A {chain} -p tcp -j ECN --ecn-tcp-remove")
            else:
                text, _ = self.matches(chain)
                mark = rnd.choice(self.marks)
                lines.append(" ".join(f"-A {chain} {text} -j MARK --set-xmark 0x{mark:x}/0xffffffff".split()))
        lines.append("COMMIT")
        return "\n".join(lines) + "\n"


def random_probe(rnd: random.Random, pools: Pools, ident: int, used: set) -> Probe:
    """One random packet towards the firewall."""
    family = pools.family
    src = rnd.choice(pools.sources)
    dst = rnd.choice(pools.fw_addrs)
    state = rnd.choices(("new", "established", "related"), (0.75, 0.15, 0.10))[0]
    icmp = 1 if family == 4 else 58
    common = dict(ecn=rnd.choice((0, 0, 1, 2, 3)), dscp=rnd.choice((0, 0, 0, 8, 10, 46)),
                  ttl=rnd.choice((64, 64, 1, 32, 63, 65, 128, 255)),
                  pad=rnd.choice((0, 0, 0, 4, 12, 24, 1000)),
                  df=rnd.choice((0, 1, 1)) if family == 4 else 0)
    if state == "related":
        quote = rnd.choice((6, 17))
        kind = rnd.choice(((3, 3), (3, 1), (11, 0)) if family == 4 else ((1, 4), (1, 3), (3, 0)))
        return Probe(ident, src, dst, icmp, icmp_type=kind[0], icmp_code=kind[1], state=state,
                     quote_proto=quote, quote_sport=pools.port(), quote_dport=20000 + ident % 40000,
                     **common)
    roll = rnd.random()
    if state == "established":
        if roll < 0.5:
            flags = rnd.choice((SYN | ACK, SYN | ACK, SYN | ACK | ECE))
            proto, extra = 6, {"flags": flags}
        elif roll < 0.8:
            proto, extra = 17, {}
        else:
            return Probe(ident, src, dst, icmp, icmp_type=0 if family == 4 else 129,
                         state=state, **common)
    elif roll < 0.55:
        proto, extra = 6, {"flags": rnd.choice(PROBE_FLAGS)}
    elif roll < 0.75:
        proto, extra = 17, {}
    else:
        kinds = (((8, 0), (8, 0), (0, 0), (3, 3), (3, 1), (11, 0), (13, 0)) if family == 4 else
                 ((128, 0), (128, 0), (129, 0), (1, 4), (1, 3), (3, 0), (2, 0)))
        kind = rnd.choice(kinds)
        return Probe(ident, src, dst, icmp, icmp_type=kind[0], icmp_code=kind[1], state=state,
                     quote_proto=rnd.choice((6, 17)), quote_sport=pools.port(),
                     quote_dport=20000 + ident % 40000, **common)
    # Every flow is new to conntrack: never reuse a 5-tuple in one ruleset.
    while True:
        sport = pools.port() if rnd.random() < 0.5 else rnd.randint(1024, 65535)
        dport = pools.port()
        key = (src, dst, proto, sport, dport)
        if key not in used:
            used.add(key)
            break
    return Probe(ident, src, dst, proto, sport, dport, state=state, **extra, **common)


def generate(seed: int, probes: int = 100, family: int | None = None) -> Case:
    """A random ruleset and ``probes`` random packets, all from ``seed``."""
    rnd = random.Random(seed)
    if family is None:
        family = 6 if rnd.random() < 0.25 else 4
    pools = Pools(rnd, family)
    builder = _RulesetBuilder(rnd, pools)
    text = ""
    if rnd.random() < 0.2:
        text += builder.raw_table()
    if rnd.random() < 0.25:
        text += builder.mangle_table()
    text += builder.filter_table()
    used: set = set()
    # Idents are unique across seeds, so a late copy can never be mistaken.
    batch = [random_probe(rnd, pools, (seed % 20000) * 1000 + i + 1, used) for i in range(probes)]
    return Case(seed, family, text, batch)
