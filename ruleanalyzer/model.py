"""The one rule model every dialect is parsed into.

A :class:`Ruleset` holds :class:`Table` objects, a table holds :class:`Chain`
objects, a chain holds :class:`Rule` objects. A rule is a conjunction of
:class:`Match` objects and one :class:`Action`. Every dialect — iptables,
nftables, ufw, the clouds — is expressed with these few types, so the engine,
the packet-space encoder and the checks never look at a dialect again.

Base chains (those attached to a hook) are ordered by ``priority`` like
nftables does; iptables tables get the kernel's fixed priorities
(:data:`IPTABLES_PRIORITY`), so iptables-nft and native nftables tables of one
host combine exactly as in the kernel.

Matches are data, not code: the engine (``ruleanalyzer.engine.match``) decides
them against a packet and the packet-space encoder turns them into sets. A
match that cannot be decided from the packet is an :class:`OpaqueMatch`; it
evaluates to *unknown* and the answer says what it depends on.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator, Union

if TYPE_CHECKING:
    from .host import HostContext

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

# ---------------------------------------------------------------------------
# Protocol constants
# ---------------------------------------------------------------------------

#: TCP flag bits. The flags byte holds FIN..CWR; AE (AccECN) is the bit just
#: above it in the header (the lowest reserved bit), kept here as 0x100.
FIN, SYN, RST, PSH, ACK, URG, ECE, CWR, AE = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x100
TCP_FLAG_BITS = {"FIN": FIN, "SYN": SYN, "RST": RST, "PSH": PSH, "ACK": ACK, "URG": URG,
                 "ECE": ECE, "CWR": CWR, "AE": AE}
#: iptables' ``ALL`` in ``--tcp-flags`` (checked on a real kernel: ECE/CWR excluded).
IPTABLES_TCP_FLAGS_ALL = FIN | SYN | RST | PSH | ACK | URG

#: IP ECN codepoints (the two low bits of the TOS / traffic-class byte).
ECN_CODEPOINTS = {"not-ect": 0, "ect1": 1, "ect0": 2, "ce": 3}

PROTOCOLS = {"ip": 0, "icmp": 1, "igmp": 2, "ipencap": 4, "tcp": 6, "egp": 8, "udp": 17,
             "ipv6": 41, "gre": 47, "esp": 50, "ah": 51, "icmpv6": 58, "ipv6-icmp": 58,
             "ospf": 89, "pim": 103, "vrrp": 112, "l2tp": 115, "sctp": 132, "udplite": 136,
             "mh": 135, "ipv6-route": 43, "ipv6-frag": 44, "ipv6-nonxt": 59, "ipv6-opts": 60,
             "dccp": 33, "ipip": 94, "eigrp": 88, "all": -1}
PROTOCOL_NAMES = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6", 132: "sctp", 33: "dccp",
                  47: "gre", 50: "esp", 51: "ah", 2: "igmp", 136: "udplite", 41: "ipv6",
                  4: "ipencap", 89: "ospf", 112: "vrrp", 103: "pim", -1: "all"}

#: Hooks in the order a packet meets them; ``ingress`` is nftables' netdev hook.
HOOKS = ("ingress", "prerouting", "input", "forward", "output", "postrouting")

#: Which hooks a packet crosses for each path through the host.
HOOK_PATHS = {
    "input": ("ingress", "prerouting", "input"),
    "forward": ("ingress", "prerouting", "forward", "postrouting"),
    "output": ("output", "postrouting"),
}

#: The priorities the kernel gives iptables tables, per hook (nftables names
#: them raw, mangle, dstnat, filter, security, srcnat).
IPTABLES_PRIORITY = {
    "raw": -300,
    "mangle": -150,
    "nat": {"prerouting": -100, "output": -100, "input": 100, "postrouting": 100},
    "filter": 0,
    "security": 50,
}
#: Connection tracking looks a packet up at this priority; earlier chains
#: (raw) see no connection yet.
CONNTRACK_PRIORITY = -200

#: The built-in chains of each iptables table and the hook each one is.
IPTABLES_BUILTIN_CHAINS = {
    "raw": ("PREROUTING", "OUTPUT"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "security": ("INPUT", "FORWARD", "OUTPUT"),
}

CT_STATES = ("new", "established", "related", "invalid", "untracked")


def iptables_priority(table: str, hook: str) -> int:
    """The priority the kernel registers iptables table ``table`` with on ``hook``."""
    prio = IPTABLES_PRIORITY[table]
    return prio[hook] if isinstance(prio, dict) else prio


# ---------------------------------------------------------------------------
# Source locations
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Location:
    """Where something was written: file, line and column counted from 1.

    JSON inputs have no useful column; ``path`` names the JSON path instead
    (``SecurityGroups[0].IpPermissions[2]``).
    """

    file: str
    line: int = 0
    column: int = 0
    path: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        return f"{where} ({self.path})" if self.path else where


# ---------------------------------------------------------------------------
# Matches
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Match:
    """One condition of a rule. ``negate`` inverts it (``!`` / ``!=``).

    A match on a header the packet does not have (``--dport`` on ICMP) is
    false whether negated or not, as in the kernel. ``text`` is how the
    dialect wrote it, for reports.
    """

    negate: bool = field(default=False, kw_only=True)
    text: str = field(default="", kw_only=True, compare=False)

    def negated(self) -> "Match":
        return dataclasses.replace(self, negate=not self.negate)


@dataclass(frozen=True, slots=True)
class AddressMatch(Match):
    """``field`` (``src`` or ``dst``) lies in one of ``networks``."""

    field: str
    networks: tuple[IPNetwork, ...]


@dataclass(frozen=True, slots=True)
class IntMatch(Match):
    """An integer header field lies in one of the inclusive ``ranges``.

    Fields: ``proto``, ``sport``, ``dport``, ``icmp_type``, ``icmp_code``,
    ``length``, ``ttl``, ``dscp``, ``ecn``, ``mark``, ``ctmark``, ``family``,
    ``fragment`` (0/1: a non-first fragment), ``uid``, ``gid``; IPv4 only:
    ``ipfrag`` (the 16-bit flags and fragment-offset word: DF 0x4000, MF
    0x2000, offset 0x1fff), ``ip_id``, ``ip_options`` (0/1: options present);
    IPv6 only: ``ext_headers`` (0/1: extension headers present).
    """

    field: str
    ranges: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class BitsMatch(Match):
    """``(field & mask)`` is one of ``values`` — tcp flags, marks, TOS bits."""

    field: str
    mask: int
    values: frozenset[int]


@dataclass(frozen=True, slots=True)
class NameMatch(Match):
    """A named property is one of ``values``.

    Fields: ``state`` (conntrack state: new, established, related, invalid,
    untracked), ``ct_status`` (assured, seen_reply, confirmed, expected, dnat,
    snat; set-valued: any shared name matches), ``ct_direction`` (original,
    reply), ``pkttype`` (unicast, broadcast, multicast), ``src_type`` and
    ``dst_type`` (addrtype: local, unicast, broadcast, multicast, …).
    """

    field: str
    values: frozenset[str]


@dataclass(frozen=True, slots=True)
class InterfaceMatch(Match):
    """``field`` (``iif`` or ``oif``) is one of ``names``; a trailing ``+``
    (iptables) or ``*`` (nftables) matches any name with that prefix."""

    field: str
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AllOf(Match):
    """Every one of ``matches`` holds (an element of a concatenated set,
    ``--icmp-type 3/4``)."""

    matches: tuple[Match, ...]


@dataclass(frozen=True, slots=True)
class AnyOf(Match):
    """At least one of ``matches`` holds (set membership, ``multiport``)."""

    matches: tuple[Match, ...]


@dataclass(frozen=True, slots=True)
class OpaqueMatch(Match):
    """A condition the analyzer cannot decide from a packet: it depends on
    state or data outside the ruleset (ipset contents, ``-m recent``, rates,
    randomness, payload bytes). Always evaluates to *unknown*; ``reason`` says
    what the answer depends on. ``configuration`` says when it stands for
    what the configuration leaves open rather than for state the packet
    meets: ``"value"`` (an IaC variable without a value, a parameter
    without a default) or ``"existence"`` (a ``count``/``for_each`` not
    decided)."""

    reason: str
    configuration: str = field(default="", kw_only=True)


#: Fields whose absence in a packet means "not known" rather than "the packet
#: has no such header": matches on them are unknown when the query leaves
#: them out.
CONTEXT_FIELDS = frozenset({"iif", "oif", "uid", "gid", "src_type", "dst_type", "tcp_options",
                            "pkttype"})


# ---------------------------------------------------------------------------
# Actions
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Action:
    """What a rule does when it matches. Subclasses say whether it ends the
    chain (``terminal``) and, when it does, the verdict."""

    #: The verdict word this action gives when it ends traversal, if any.
    verdict = None
    #: Does evaluation stop at this rule (within its chain or for good)?
    terminal = False

    @property
    def name(self) -> str:
        return type(self).__name__.lower()


@dataclass(frozen=True, slots=True)
class Accept(Action):
    verdict = "accept"
    terminal = True


@dataclass(frozen=True, slots=True)
class Drop(Action):
    verdict = "drop"
    terminal = True


@dataclass(frozen=True, slots=True)
class Reject(Action):
    """A drop that answers the sender (``with_`` is the ICMP/TCP reset sent)."""

    with_: str = "icmp-port-unreachable"
    verdict = "drop"
    terminal = True


@dataclass(frozen=True, slots=True)
class Return(Action):
    """Back to the calling chain; in a base chain, the chain's policy."""

    terminal = True


@dataclass(frozen=True, slots=True)
class Jump(Action):
    """Run ``target``; come back here if it ends without a verdict."""

    target: str


@dataclass(frozen=True, slots=True)
class Goto(Action):
    """Run ``target``; when it ends, return to whoever called *this* chain."""

    target: str
    terminal = True


@dataclass(frozen=True, slots=True)
class Queue(Action):
    """Hand the packet to a userspace program (NFQUEUE, QUEUE): the verdict
    is that program's."""

    text: str = "NFQUEUE"
    terminal = True


@dataclass(frozen=True, slots=True)
class Nat(Action):
    """Address translation. ``kind``: dnat, snat, masquerade, redirect.

    In iptables a NAT target ends the nat chain (the connection's mapping is
    chosen); later filter chains see the translated packet. ``to_addr`` …
    ``to_addr_last`` and ``to_port`` … ``to_port_last`` are the ranges given
    (``*_last`` None: one value); which value of a range a connection gets
    is the kernel's choice, worked out by :mod:`ruleanalyzer.engine.natpick`
    (``persistent``, ``random``: the target's flags of those names,
    ``random`` also for ``--random-fully``). ``netmap``: the range is a
    prefix mapped address for address (iptables' NETMAP, nft's ``prefix``):
    the address keeps its host bits and takes the prefix's.
    """

    kind: str
    to_addr: IPAddress | None = None
    to_addr_last: IPAddress | None = None
    to_port: int | None = None
    to_port_last: int | None = None
    persistent: bool = False
    random: bool = False
    netmap: bool = False
    terminal = True
    verdict = "accept"

    @property
    def fields(self) -> tuple[str, str, str]:
        """``(address field, port field, ct status)`` this translation
        writes: the destination's for DNAT and REDIRECT, else the source's."""
        return ("dst", "dport", "dnat") if self.kind in ("dnat", "redirect") else ("src", "sport", "snat")

    @property
    def address_range(self) -> tuple[IPAddress, IPAddress] | None:
        """``(first, last)`` where the address is one of several."""
        last = self.to_addr_last
        return None if last is None or last == self.to_addr else (self.to_addr, last)

    @property
    def port_range(self) -> tuple[int, int] | None:
        """``(first, last)`` where the port is one of several."""
        last = self.to_port_last
        return None if last is None or last == self.to_port else (self.to_port, last)

    @property
    def per_packet(self) -> bool:
        """Does what this translation writes depend on the packet (a range
        of addresses or ports), not only on the rule?"""
        return self.address_range is not None or self.port_range is not None


#: The ports a SNAT without a port range picks from when it must (or, being
#: random, always does), by the connection's own port: ``(own low, own high,
#: picked low, picked high)`` (the kernel's ``nf_nat_l4proto_unique_tuple``).
SNAT_PORT_KINDS = ((0, 511, 1, 511), (512, 1023, 600, 1023), (1024, 65535, 1024, 65535))


@dataclass(frozen=True, slots=True)
class SetField(Action):
    """Non-terminating: ``field = (field & ~mask) ^ value`` (MARK, CONNMARK
    --set-xmark, nft ``meta mark set``). ``copy_from`` copies another field
    under ``mask`` instead (CONNMARK --save-mark / --restore-mark). ``add``
    (non-zero) adds to the field instead, saturating at 0 and at the
    field's largest value (TTL/HL ``--ttl-inc``/``--ttl-dec``)."""

    field: str
    value: int = 0
    mask: int = 0xFFFFFFFF
    copy_from: str | None = None
    add: int = 0


@dataclass(frozen=True, slots=True)
class Notrack(Action):
    """Non-terminating: the packet skips connection tracking (state
    ``untracked``). Only meaningful before conntrack (raw table)."""


@dataclass(frozen=True, slots=True)
class EcnStrip(Action):
    """Non-terminating: the ECN target clears ECE/CWR (``--ecn-tcp-remove``)."""

    clear_flags: int = ECE | CWR


@dataclass(frozen=True, slots=True)
class Log(Action):
    """Non-terminating bookkeeping: LOG, NFLOG, counters, TCPMSS, CT options,
    TRACE, CLASSIFY … — the packet goes on unchanged."""

    text: str = ""


@dataclass(frozen=True, slots=True)
class Dispatch(Action):
    """A map lookup that gives the rule's action: the first branch whose
    match holds gives the action; none holding means the rule does not
    match (the kernel's NFT_BREAK). nft's ``vmap`` (verdicts), and a NAT
    whose address or port comes from a map (one :class:`Nat` per
    element)."""

    branches: tuple[tuple[Match, Action], ...]

    @property
    def terminal(self) -> bool:  # type: ignore[override]
        return False

    @property
    def name(self) -> str:
        """As written: ``vmap``, or ``dnat from a map`` (one :class:`Nat` per element)."""
        actions = [a for _m, a in self.branches]
        if actions and all(isinstance(a, Nat) for a in actions):
            return f"{actions[0].kind} from a map"
        return "vmap" if all(a.verdict is not None or isinstance(a, (Jump, Goto, Return)) for a in actions) \
            else "map lookup"


@dataclass(frozen=True, slots=True)
class UnknownAction(Action):
    """A target the analyzer does not model. Whether it ends the chain and
    with which verdict is unknown; the answer says it depends on it. With
    ``field``, as one of a rule's effects: the rule sets that header field
    to a value the analyzer does not work out (``meta mark set ct mark |
    0x1``) and the packet goes on; what reads the field then depends on it."""

    text: str
    field: str | None = None


NON_TERMINAL = (SetField, Notrack, EcnStrip, Log, Jump, Dispatch)


# ---------------------------------------------------------------------------
# Rules, chains, tables, rulesets
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a rule came from in its author's own terms, when a tool wrote
    it: ``tool`` is the generator (``ufw``, ``docker``, ``kube-proxy``,
    ``firewalld``, ``terraform``, ``cloudformation``, ``openwrt``,
    ``shorewall``, ``libvirt``, ``fail2ban``, ``crowdsec``, …), ``text`` what
    it was there (``zone public, service ssh``; ``aws_security_group.web``;
    ``ufw allow 22/tcp``), ``location`` the line in the tool's own
    configuration when there is one (``zones/public.xml:6``).

    ``generated`` says the rule is the tool's stock scaffolding (its
    chains, jumps and idioms) rather than something the user asked the tool
    for: checks keep quiet about stock scaffolding unless asked.
    """

    tool: str
    text: str = ""
    location: "Location | None" = None
    generated: bool = False

    def __str__(self) -> str:
        where = f" ({self.location})" if self.location else ""
        return f"{self.tool}: {self.text}{where}" if self.text else f"{self.tool}{where}"


@dataclass(eq=False, slots=True)
class Rule:
    """A conjunction of matches and one action, where it was written."""

    matches: tuple[Match, ...]
    action: Action
    location: Location
    text: str = ""
    comment: str | None = None
    counters: tuple[int, int] | None = None
    #: 1-based position in its chain; set by :meth:`Chain.add`.
    index: int = 0
    #: The chain this rule belongs to; set by :meth:`Chain.add`.
    chain: "Chain | None" = field(default=None, repr=False)
    #: Added by the analyzer to express a dialect's built-in behaviour (a
    #: cloud's stateful return rule, ufw's assumed before.rules) rather than
    #: written by the user.
    implicit: bool = False
    #: Dialect-specific identity for reports (a cloud rule's id or name, a
    #: NACL rule number, an nft handle).
    ident: str | None = None
    #: Non-terminating statements applied in order when the rule matches,
    #: before ``action`` (nftables: ``meta mark set 1 counter accept``).
    effects: tuple[Action, ...] = ()
    #: The tool that wrote this rule and what it was in the tool's terms.
    origin: Origin | None = None

    def __str__(self) -> str:
        return self.text or f"{' '.join(m.text for m in self.matches)} -> {self.action.name}"

    def actions(self) -> list[Action]:
        """Everything this rule may do: its action, its effects, and the
        branches of a map that picks either (a verdict map's verdicts; a
        NAT whose address comes from a map, one :class:`Nat` per element)."""
        if not self.effects and type(self.action) is not Dispatch:
            return [self.action]  # (most rules; passes over 100k rules ask it)
        out = [self.action, *self.effects]
        for action in (self.action, *self.effects):
            if isinstance(action, Dispatch):
                out += [a for _m, a in action.branches]
        return out

    def jump_targets(self) -> list[str]:
        """Names of the chains this rule may jump or go to (its action, its
        effects and the branches of a verdict map)."""
        out = []
        for action in (self.action, *self.effects):
            if isinstance(action, (Jump, Goto)):
                out.append(action.target)
            elif isinstance(action, Dispatch):
                out += [a.target for _m, a in action.branches if isinstance(a, (Jump, Goto))]
        return out


@dataclass(eq=False, slots=True)
class Chain:
    """A list of rules. A base chain has a ``hook``, a ``priority`` and a
    ``policy`` (``accept`` or ``drop``); a user chain has none of them.

    ``kind`` is nftables' chain type: ``filter``, ``nat`` or ``route``
    (iptables' nat table chains are ``nat``, mangle's are ``route``).
    """

    name: str
    table: "Table | None" = field(default=None, repr=False)
    hook: str | None = None
    priority: int | None = None
    policy: str | None = None
    kind: str = "filter"
    rules: list[Rule] = field(default_factory=list)
    location: Location | None = None
    #: For netdev/ingress chains bound to devices.
    devices: tuple[str, ...] = ()
    #: Where the policy was written (``:INPUT DROP``), for reports.
    policy_location: Location | None = None
    #: Implicit policy explanation (a cloud's default deny, ufw's default).
    policy_text: str | None = None
    #: The tool that made this chain (``ufw-before-input``: ufw's scaffolding).
    origin: Origin | None = None

    @property
    def is_base(self) -> bool:
        return self.hook is not None

    def add(self, rule: Rule) -> Rule:
        rule.index = len(self.rules) + 1
        rule.chain = self
        self.rules.append(rule)
        return rule

    def insert(self, position: int, rule: Rule) -> Rule:
        """Insert at 1-based ``position`` and renumber."""
        self.rules.insert(max(position - 1, 0), rule)
        for i, r in enumerate(self.rules, 1):
            r.index = i
            r.chain = self
        return rule

    @property
    def qualified_name(self) -> str:
        return f"{self.table.family} {self.table.name} {self.name}" if self.table else self.name

    @property
    def reroutes(self) -> bool:
        """Does the kernel route a packet of this host again when this
        OUTPUT chain changed its mark or addresses (``ip_route_me_harder``)?
        nft ``route`` and ``nat`` chains, iptables' mangle and nat tables.
        The new route's device is what POSTROUTING sees; the OUTPUT chains
        all see the first route's (the hook's ``out``)."""
        return self.hook == "output" and (self.kind in ("route", "nat") or (
            self.table is not None and self.table.name == "mangle"))


@dataclass(eq=False, slots=True)
class Table:
    """A namespace of chains. ``family`` is nftables': ip, ip6, inet, arp,
    bridge, netdev (iptables-save gives ip, ip6tables-save ip6)."""

    name: str
    family: str = "ip"
    chains: dict[str, Chain] = field(default_factory=dict)
    location: Location | None = None
    #: The dialect that wrote this table (iptables, nftables, aws-sg, …).
    dialect: str = ""
    #: nft ``flags dormant``: the table is loaded but its base chains do not run.
    dormant: bool = False

    def add_chain(self, chain: Chain) -> Chain:
        chain.table = self
        self.chains[chain.name] = chain
        return chain

    def base_chains(self) -> Iterator[Chain]:
        return (c for c in self.chains.values() if c.is_base)

    def applies_to(self, family: int) -> bool:
        """Does this table see IPv``family`` packets on the IP hooks?"""
        if self.family == "inet":
            return True
        if self.family == "netdev":
            return True
        return (self.family == "ip" and family == 4) or (self.family == "ip6" and family == 6)


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """A located warning the parser wants the user to see (a skipped stray
    line, an assumed default)."""

    message: str
    location: Location
    level: str = "warning"

    def __str__(self) -> str:
        return f"{self.location}: {self.level}: {self.message}"


@dataclass(eq=False)
class Ruleset:
    """Everything the analyzer knows about one firewall: the tables of all
    the files given together, and the warnings their parsers raised."""

    tables: list[Table] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    #: Free-form facts a dialect records (cloud target ids, assumed defaults).
    meta: dict = field(default_factory=dict)
    #: What the host itself knows beside its rules (addresses, routes,
    #: ipset contents, sysctls), from a host snapshot; ``None`` when only
    #: rule files were given (see :mod:`ruleanalyzer.host`).
    host: "HostContext | None" = None

    def add_table(self, table: Table) -> Table:
        self.tables.append(table)
        return table

    def table(self, name: str, family: str | None = None) -> Table | None:
        for t in self.tables:
            if t.name == name and (family is None or t.family == family):
                return t
        return None

    def chains(self) -> Iterator[Chain]:
        for t in self.tables:
            yield from t.chains.values()

    def rules(self) -> Iterator[Rule]:
        for c in self.chains():
            yield from c.rules

    def merge(self, other: "Ruleset") -> "Ruleset":
        """Files given together describe one firewall: put their tables side
        by side (the engine orders base chains by priority)."""
        self.tables.extend(other.tables)
        self.sources.extend(other.sources)
        self.diagnostics.extend(other.diagnostics)
        for k, v in other.meta.items():
            self.meta.setdefault(k, v)
        if self.host is None:
            self.host = other.host
        return self

    @property
    def rule_count(self) -> int:
        return sum(len(c.rules) for c in self.chains())

    def nat_kinds(self) -> frozenset[str]:
        """The kinds of NAT its rules may do (``dnat``, ``snat``,
        ``masquerade``, ``redirect``), map branches included."""
        return frozenset(a.kind for r in self.rules() for a in r.actions() if isinstance(a, Nat))


# ---------------------------------------------------------------------------
# Packets
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Packet:
    """One packet as the firewall sees it.

    ``hook`` says where it is: ``input`` (arrives for this host), ``forward``
    (routed through), ``output`` (sent by this host). ``state`` is the
    conntrack state; ``auto`` means a packet without ACK opens a connection
    (new) and any other belongs to one whose start passed (established).
    Context the query leaves out (``iif``, ``uid``…) is ``None``: rules that
    depend on it come out *unknown*.
    """

    src: IPAddress
    dst: IPAddress
    proto: int = 6
    sport: int | None = None
    dport: int | None = None
    flags: int = 0
    ecn: int = 0
    dscp: int = 0
    state: str = "auto"
    hook: str = "input"
    iif: str | None = None
    oif: str | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None
    mark: int = 0
    ctmark: int = 0
    ct_status: frozenset[str] = frozenset()
    ct_direction: str | None = None
    length: int | None = None
    ttl: int = 64
    fragment: int = 0
    pkttype: str | None = None
    src_type: frozenset[str] | None = None
    dst_type: frozenset[str] | None = None
    uid: int | None = None
    gid: int | None = None
    tcp_options: frozenset[int] | None = None
    id: str | None = None
    #: The fragment offset in 8-byte units (non-zero: ``fragment`` is 1),
    #: the More Fragments and (IPv4) Don't Fragment bits, the IPv4
    #: identification, IPv4 options and IPv6 extension headers present (0/1).
    frag_off: int = 0
    mf: int = 0
    df: int = 0
    ip_id: int = 0
    ip_options: int = 0
    ext_headers: int = 0

    @property
    def family(self) -> int:
        return self.src.version

    def replace(self, **changes) -> "Packet":
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        """A one-line human description: ``tcp 192.0.2.1:40000 -> 10.0.0.1:22 [SYN]``."""
        proto = PROTOCOL_NAMES.get(self.proto, str(self.proto))

        def ep(addr, port):
            a = f"[{addr}]" if addr.version == 6 and port is not None else str(addr)
            return f"{a}:{port}" if port is not None else a

        text = f"{proto} {ep(self.src, self.sport)} -> {ep(self.dst, self.dport)}"
        if self.proto == 6:
            text += f" [{flags_to_text(self.flags) or 'none'}]"
        if self.icmp_type is not None:
            text += f" type {self.icmp_type}" + (f" code {self.icmp_code}" if self.icmp_code is not None else "")
        if self.ecn:
            text += f" ecn={ECN_NAMES[self.ecn]}"
        if self.frag_off or self.mf:
            text += f" frag offset {self.frag_off}" + (" MF" if self.mf else "")
        return text


ECN_NAMES = {v: k for k, v in ECN_CODEPOINTS.items()}


def flags_to_text(flags: int) -> str:
    """``0x42`` → ``SYN,ECE``, in header order."""
    return ",".join(n for n, b in TCP_FLAG_BITS.items() if flags & b)


def flags_from_text(text: str) -> int:
    """``SYN,ECE,CWR`` (any case, ``,``/``|``/``+`` separated) → bits.

    Raises ValueError naming the unknown flag."""
    bits = 0
    for part in text.replace("|", ",").replace("+", ",").split(","):
        part = part.strip().upper()
        if not part or part == "NONE":
            continue
        if part == "ALL":
            bits |= FIN | SYN | RST | PSH | ACK | URG | ECE | CWR
            continue
        if part not in TCP_FLAG_BITS:
            raise ValueError(f"unknown TCP flag {part!r} (known: {', '.join(TCP_FLAG_BITS)})")
        bits |= TCP_FLAG_BITS[part]
    return bits


def protocol_number(name: str | int) -> int:
    """``tcp`` → 6; numbers pass through. Raises ValueError for unknown names."""
    if isinstance(name, int):
        return name
    text = str(name).strip().lower()
    if text.isdigit():
        return int(text)
    if text in PROTOCOLS:
        return PROTOCOLS[text]
    raise ValueError(f"unknown protocol {name!r}")
