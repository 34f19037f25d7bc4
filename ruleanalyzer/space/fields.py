"""The header-field layout of the packet space: which fields, how wide, in
which order their BDD variables come.

Every packet is a vector of bits. Integer fields are stored MSB first (so an
address prefix or a port range is a short path at the top of its field).

Addresses: one 128-bit vector per direction plus a family bit. An IPv4
address lives in the low 32 bits and the validity constraint pins the upper
96 bits to zero for IPv4 packets; this keeps one variable block for both
families, so ``inet`` tables need no duplication.

Names (interfaces, pkttype, conntrack state, direction) are small codes over
a per-ruleset domain; set-valued names (``ct_status``, addrtype) get one bit
per name. Interface domains hold every name the ruleset mentions, one
"other name with this prefix" class per wildcard (``eth+``/``eth*``) and one
"other" class, so a wildcard is exact over the classes.

Field order (top of the BDD first) puts the fields rules split on most —
family, interfaces, state, protocol, addresses, ports — above the rest. A
large ruleset may have fields its walk splits on everywhere moved right
below the family (``Layout.on_top``); witnesses and descriptions still read
sets in the order without them (``Layout.canonical``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterable

from ..model import (CT_STATES, IPAddress, Accept, AddressMatch, AllOf, AnyOf, Dispatch, Drop, InterfaceMatch,
                     Match, NameMatch, Nat, Reject, Ruleset, SetField, UnknownAction)

#: Protocols that carry 16-bit source/destination ports.
PORT_PROTOCOLS = frozenset({6, 17, 132, 33, 136})
TCP = 6
#: Fields of the connection entry: a packet without one (INVALID, UNTRACKED) has none.
CONNTRACK_FIELDS = frozenset({"ctmark", "ct_status", "ct_direction"})
ICMP, ICMPV6 = 1, 58

#: Default domains of the small name fields; names a ruleset mentions are added.
ENUM_DEFAULTS = {
    "state": CT_STATES,
    "ct_direction": ("original", "reply"),
    "pkttype": ("host", "unicast", "broadcast", "multicast", "other"),
}
#: Default names of set-valued fields (one bit each).
SET_DEFAULTS = {
    "ct_status": ("expected", "seen_reply", "assured", "confirmed", "snat", "dnat", "dying"),
    "src_type": ("unspec", "unicast", "local", "broadcast", "anycast", "multicast", "blackhole",
                 "unreachable", "prohibit", "throw", "nat", "xresolve"),
    "dst_type": ("unspec", "unicast", "local", "broadcast", "anycast", "multicast", "blackhole",
                 "unreachable", "prohibit", "throw", "nat", "xresolve"),
}
INTERFACE_FIELDS = ("iif", "oif")

#: Integer fields and their widths, in BDD order (interleaved with the
#: enum/interface fields by :data:`ORDER`).
INT_WIDTHS = {
    "family": 1, "proto": 8, "src": 128, "dst": 128, "sport": 16, "dport": 16, "flags": 9,
    "icmp_type": 8, "icmp_code": 8, "ecn": 2, "dscp": 6, "fragment": 1, "ttl": 8,
    "length": 16, "mark": 32, "ctmark": 32, "uid": 32, "gid": 32,
    # the fragment offset (8-byte units; non-zero exactly when ``fragment``),
    # More/Don't Fragment, IPv4 identification and options, IPv6 extension headers
    "frag_off": 13, "mf": 1, "df": 1, "ip_id": 16, "ip_options": 1, "ext_headers": 1,
}
ORDER = ("family", "src", "iif", "dst", "oif", "state", "proto", "dport", "sport", "flags",
         "icmp_type", "icmp_code", "ct_direction", "pkttype", "ecn", "dscp", "fragment", "frag_off",
         "mf", "df", "ip_options", "ext_headers", "ttl", "length", "ip_id", "mark", "ctmark", "uid",
         "gid", "ct_status", "src_type", "dst_type")
#: A set-valued field of tags the walk alone writes and reads (never a
#: packet's own): bit ``havoc:F`` says the packet's field F was set to a
#: value not worked out (``space/reach.py``, ``_Walker._havoc``). Only in
#: the layouts of rulesets with such a write of a field some rule reads.
HAVOC = "havoc"
#: Aliases parsers may use for the same header field.
FIELD_ALIASES = {"hoplimit": "ttl", "hop_limit": "ttl", "l4proto": "proto", "nexthdr": "proto",
                 "frag": "fragment", "pkt_type": "pkttype", "ctstate": "state",
                 "direction": "ct_direction", "ctstatus": "ct_status", "skuid": "uid",
                 "skgid": "gid", "meta_mark": "mark", "ct_mark": "ctmark", "connmark": "ctmark"}
#: Fields the walk itself reads or writes on every packet (the ghost bit of
#: ``dst_type`` telling input from forward, the mark kube-proxy sets on a
#: service's packets and reads on FORWARD and POSTROUTING, the TTL
#: ``ip_forward`` lowers) that a large ruleset may barely test: then they go
#: right below the family (:func:`_rare_fields`). Below the addresses, each
#: test of one rebuilt the whole address part of a set (kube-proxy's sets
#: after DNAT: ~180k nodes at 20k rules, most of them addresses). Where many
#: rules test a field (the mixed shape) it stays below (there each rule's
#: test would split every set above the addresses).
RARE_FIELDS = ("dst_type", "mark", "ttl")
#: The conntrack state and status go on top as well (right below
#: ``dst_type``, together: which status a packet may carry depends on its
#: state) where both are rare, the ruleset translates destinations, and a
#: rule gives packets a verdict by their state or status (kube-proxy's
#: iptables mode: KUBE-FORWARD drops INVALID and accepts RELATED,ESTABLISHED,
#: KUBE-FIREWALL drops by ``! --ctstate RELATED,ESTABLISHED,DNAT``): such a
#: verdict, and the state guards around it, split the translated sets (NEW
#: packets rewritten, the others not) by state at every address path when
#: the state lies below the addresses. Where the state only guards jumps
#: (kube-proxy's nftables mode) those splits are cheap, and the state on top
#: would make every NAT image twice (NEW and RELATED apart): there it stays
#: (kube-nftables 100k, this order: 29.2/37.2 -> 35.1/41.0 s CPU, peak 812
#: -> 750 MiB) — unless a rule sets the mark too (``meta mark set meta mark
#: | 0x4000``, kube-proxy's mark-for-masquerade, read exactly): the DNAT
#: images, split by the mark, are then as big as kube-iptables', and with
#: the state and status below the addresses a NAT hook's accepted set and
#: what passes it untranslated do not part at the top, so its ``skipped |
#: accepted | returned`` rebuilt nearly all of it (442k nodes at nat
#: prerouting at 20k rules; kube-iptables' order: 16). kube-nftables with
#: that mark read: 20k nodes made 8.34M -> 4.66M; 100k 67.3 -> 57.6 s CPU,
#: peak 1506 -> 1095 MiB, BDD at RA101 32.8M -> 18.5M nodes.
#: The TCP flags come right below them (where they are as rare): which
#: flags a packet may carry depends on its state (a SYN-ACK is never NEW),
#: so with the flags far below, the NEW and RELATED packets a NAT chain
#: sees were two copies of every address path (a set entering a DNAT: 170
#: nodes in the usual order, 265 with the state alone on top); with the
#: flags right below the state they share them. The state moved alone cost
#: the endpoint chains more than it saved elsewhere on the project shape
#: (100k walk 58.5 -> 66.6 s CPU, KUBE-SEP runs 24.1 -> 34.9 s), state and
#: flags: 46.4 s (KUBE-SEP 22.9 s) (bench/bench_walk_chains.py, load 4.4-5.3).
CONNTRACK_TOP = ("state", "ct_status", "flags")
#: On (set False for the order of before). dst_type moves only with them
#: (alone, below the state, it cost kube-iptables' walk +20 %).
MOVE_CONNTRACK = True
#: Rulesets with fewer rules keep the usual order (small ones are fast
#: either way; every corpus ruleset is below it).
RARE_MIN_RULES = 10_000
#: A field is rare when at most one rule in this many tests it.
RARE_PER_RULES = 1000
#: Header fields only one IP version has (the other's packets pin them to 0).
IPV4_ONLY = ("df", "ip_id", "ip_options")
IPV6_ONLY = ("ext_headers",)


@dataclass(frozen=True)
class FieldSpec:
    """One field: ``width`` bits; ``names`` is the code → name table of an
    enum or interface field, or the bit names of a set-valued field."""

    name: str
    width: int
    kind: str = "int"  # int | enum | iface | set
    names: tuple[str, ...] = ()

    def var(self, bit: int) -> str:
        """The BDD variable of bit ``bit`` (0 = least significant)."""
        return self.bit_vars[bit]

    @cached_property
    def bit_vars(self) -> tuple[str, ...]:
        """Variable names by bit, least significant first."""
        return tuple(f"{self.name}.{b}" for b in range(self.width))

    @property
    def vars_msb_first(self) -> list[str]:
        if self.kind == "set":
            return [f"{self.name}:{n}" for n in self.names]
        return [self.var(b) for b in reversed(range(self.width))]

    @property
    def size(self) -> int:
        """How many values are valid (codes 0..size-1 for enums)."""
        if self.kind in ("enum", "iface"):
            return len(self.names)
        return 1 << self.width


@dataclass(frozen=True)
class InterfaceDomain:
    """Codes for one interface field: concrete names, then one class per
    wildcard prefix ("a name not listed, whose longest listed prefix is p"),
    then ``other``."""

    concrete: tuple[str, ...]
    prefixes: tuple[str, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        return self.concrete + tuple(p + "*" for p in self.prefixes) + ("*",)

    def codes_for(self, pattern: str) -> list[int]:
        """Codes a name or wildcard (``eth+``, ``eth*``) matches."""
        prefix = _wildcard_prefix(pattern)
        if prefix is None:
            return [self.concrete.index(pattern)] if pattern in self.concrete else []
        codes = [i for i, n in enumerate(self.concrete) if n.startswith(prefix)]
        base = len(self.concrete)
        # A class "longest prefix q" lies inside pattern p exactly when q starts with p.
        codes += [base + i for i, q in enumerate(self.prefixes) if q.startswith(prefix)]
        if prefix == "":
            codes.append(base + len(self.prefixes))
        return codes

    def example(self, code: int, other_than: str | None = None) -> str:
        """A concrete interface name in class ``code`` (a wildcard class
        has many: then not ``other_than``)."""
        if code < len(self.concrete):
            return self.concrete[code]
        k = code - len(self.concrete)
        stem = self.prefixes[k] if k < len(self.prefixes) else ""
        for n in range(1000):
            name = f"{stem}x{n}" if stem else f"if{n}"
            if name not in self.concrete and self._longest_prefix(name) == stem and name != other_than:
                return name
        raise ValueError(f"no interface name for class {self.labels[code]}")

    def _longest_prefix(self, name: str) -> str:
        best = ""
        for p in self.prefixes:
            if name.startswith(p) and len(p) > len(best):
                best = p
        return best


def _wildcard_prefix(pattern: str) -> str | None:
    if pattern.endswith(("+", "*")):
        return pattern[:-1]
    return None


@dataclass
class Layout:
    """All fields of the packet space of one ruleset, in BDD order."""

    fields: dict[str, FieldSpec]
    interfaces: dict[str, InterfaceDomain]
    #: Fields moved right below the family for the walk's speed
    #: (:func:`_rare_fields`); without them the order is the canonical one,
    #: in which witnesses and descriptions are read (:meth:`canonical`).
    on_top: tuple[str, ...] = ()
    _canonical: "Layout | None" = field(default=None, repr=False, compare=False)

    @classmethod
    def from_names(cls, interfaces: Iterable[str] = (), names: dict[str, set[str]] | None = None,
                   destination_first: bool = False, on_top: tuple[str, ...] = (),
                   havoc: tuple[str, ...] = ()) -> "Layout":
        """A layout whose name domains cover ``interfaces`` (names or
        wildcards) and the extra ``names`` per name field; with
        ``destination_first`` the destination address (and output
        interface) lie above the source in the BDD order; the fields
        ``on_top`` (:func:`_rare_fields`) right below the family; with
        ``havoc`` (:func:`_havoc_fields`) the walk's tags :data:`HAVOC`
        last."""
        names = names or {}
        pats = set(interfaces)
        concrete = tuple(sorted(p for p in pats if _wildcard_prefix(p) is None))
        prefixes = tuple(sorted({_wildcard_prefix(p) for p in pats} - {None, ""}))
        domain = InterfaceDomain(concrete, prefixes)
        specs: dict[str, FieldSpec] = {}
        order = ORDER
        if destination_first:
            order = ("family", "dst", "oif", "src", "iif", *ORDER[5:])
            assert sorted(order) == sorted(ORDER)
        canonical = order
        if on_top:
            order = ("family", *on_top, *(f for f in order if f != "family" and f not in on_top))
            assert sorted(order) == sorted(ORDER)
        for name in canonical:
            if name in INT_WIDTHS:
                specs[name] = FieldSpec(name, INT_WIDTHS[name])
            elif name in INTERFACE_FIELDS:
                labels = domain.labels
                specs[name] = FieldSpec(name, _bits_for(len(labels)), "iface", labels)
            elif name in ENUM_DEFAULTS:
                vals = ENUM_DEFAULTS[name] + tuple(sorted(names.get(name, set()) - set(ENUM_DEFAULTS[name])))
                specs[name] = FieldSpec(name, _bits_for(len(vals)), "enum", vals)
            else:
                vals = SET_DEFAULTS[name] + tuple(sorted(names.get(name, set()) - set(SET_DEFAULTS[name])))
                specs[name] = FieldSpec(name, len(vals), "set", vals)
        if havoc:
            specs[HAVOC] = FieldSpec(HAVOC, len(havoc), "set", tuple(havoc))
            order = (*order, HAVOC)
        ifaces = {f: domain for f in INTERFACE_FIELDS}
        if not on_top:
            return cls(specs, ifaces)
        return cls({name: specs[name] for name in order}, ifaces, tuple(on_top), cls(specs, ifaces))

    @classmethod
    def for_matches(cls, matches: Iterable[Match], rewrites: Iterable[tuple[str, IPAddress]] = (),
                    on_top: tuple[str, ...] = (), havoc: tuple[str, ...] = ()) -> "Layout":
        """A layout whose domains cover every name in ``matches``. The
        address field the rules tell more values apart in (``rewrites``:
        ``(field, address)`` written by NAT) goes on top: sets that differ
        mostly in it then split early, and their unions stay cheap."""
        ifaces: set[str] = set()
        names: dict[str, set[str]] = {}
        # by object first (id -> object: a range's blocks are shared objects,
        # 63k among 782k on 100k mixed rules), hashed by value once each
        addresses: dict[str, dict[int, object]] = {"src": {}, "dst": {}}
        for m in matches:
            _collect(m, ifaces, names, addresses)
        for field_name, address in rewrites:
            addresses[field_name][id(address)] = address
        dst, src = (set(addresses[f].values()) for f in ("dst", "src"))
        return cls.from_names(ifaces, names, _distinct(dst) > _distinct(src), on_top, havoc)

    @classmethod
    def for_ruleset(cls, ruleset: Ruleset, extra: Iterable[Match] = ()) -> "Layout":
        """A layout whose domains cover every name the ruleset (and ``extra``) mentions."""
        return cls.for_matches([*_ruleset_matches(ruleset), *extra], _nat_rewrites(ruleset),
                               _rare_fields(ruleset), _havoc_fields(ruleset))

    def canonical(self) -> "Layout":
        """The same fields in the order they have without :attr:`on_top`:
        witnesses and descriptions read sets in it (``Space.canonical``),
        so a ruleset's findings read the same whichever order its walk
        used (both orders hold the same sets)."""
        return self._canonical or self

    def field_of_variable(self) -> dict[str, str]:
        """Each BDD variable's field name (made once per layout)."""
        cached = self.__dict__.get("_field_of")
        if cached is None:
            cached = self.__dict__["_field_of"] = {
                v: name for name, spec in self.fields.items() for v in spec.vars_msb_first}
        return cached

    def variables(self) -> list[str]:
        """Every BDD variable, top first (a fresh list; the names are kept
        per field set, since checks ask for them per projection)."""
        key = tuple(map(id, self.fields.values()))
        cached = self.__dict__.get("_variables")
        if cached is None or cached[0] != key:
            cached = (key, tuple(v for spec in self.fields.values() for v in spec.vars_msb_first))
            self.__dict__["_variables"] = cached
        return list(cached[1])


_IP_TYPES = frozenset({ipaddress.IPv4Network, ipaddress.IPv6Network, ipaddress.IPv4Address,
                       ipaddress.IPv6Address})


def _distinct(values: set) -> int:
    """How many different addresses and networks ``values`` writes out: for
    the ipaddress objects, equal exactly when their text is (a network's
    text has a ``/``, an address's none), the set's size, without making
    the text of each (782k networks on 100k mixed rules); otherwise the
    number of different texts."""
    if all(type(v) in _IP_TYPES for v in values):
        return len(values)
    return len({str(v) for v in values})


def _bits_for(n: int) -> int:
    return max(1, (n - 1).bit_length())


def _ruleset_matches(ruleset: Ruleset) -> Iterable[Match]:
    host = getattr(ruleset, "host", None)
    own = [i for i in host.interfaces if i not in host.bridge_ports] if host is not None else []
    if own:
        # A snapshot's interfaces get codes of their own: routes and the
        # reverse-path filter (space/routes.py) differ per interface. Bridge
        # ports (a container's veth) carry no address or route: left out.
        yield InterfaceMatch("iif", tuple(own))
    for chain in ruleset.chains():
        if chain.devices:  # netdev chains bound to devices guard on iif
            yield InterfaceMatch("iif", tuple(chain.devices))
    for rule in ruleset.rules():
        yield from _rule_matches(rule)


def _rule_matches(rule) -> Iterable[Match]:
    """A rule's matches, and those of its verdict map's branches."""
    yield from rule.matches
    for act in (rule.action, *rule.effects):
        if isinstance(act, Dispatch):
            yield from (m for m, _ in act.branches)


def _rare_fields(ruleset: Ruleset) -> tuple[str, ...]:
    """The fields that go right below the family in a ruleset of
    :data:`RARE_MIN_RULES` rules or more (none in a smaller one, nor in one
    copying a field to another): the :data:`RARE_FIELDS` at most one rule in
    :data:`RARE_PER_RULES` tests, and the :data:`CONNTRACK_TOP` fields where
    both are that rare, some rule rewrites destinations and some rule gives
    a verdict by the state or status or sets the mark. One pass over the
    rules."""
    total = ruleset.rule_count
    if total < RARE_MIN_RULES:
        return ()
    counts = dict.fromkeys((*RARE_FIELDS, *CONNTRACK_TOP), 0)
    dnat = verdict = False

    def reads(m, out: set) -> None:
        field = getattr(m, "field", None)
        if field:
            out.add(FIELD_ALIASES.get(field, field))
        for sub in getattr(m, "matches", ()):
            reads(sub, out)

    for rule in ruleset.rules():
        out: set = set()
        for m in _rule_matches(rule):
            reads(m, out)
        tested = out & counts.keys()
        for name in tested:
            counts[name] += 1
        actions = rule.actions()
        if any(getattr(act, "copy_from", None) for act in actions):
            # A copy between fields (CONNMARK --save-mark) is made exactly
            # only up to ``reach.COPY_NODES`` nodes, a size the order changes:
            # the canonical order keeps its sets the same as ever.
            return ()
        dnat = dnat or any(isinstance(act, Nat) and act.kind in ("dnat", "redirect") for act in actions)
        verdict = verdict or (not tested.isdisjoint(CONNTRACK_TOP) and any(
            isinstance(act, (Accept, Drop, Reject)) for act in (
                rule.action, *(a for _, a in getattr(rule.action, "branches", ()))))) \
            or any(isinstance(act, SetField) and act.field == "mark" for act in actions)
    rare = {f for f, n in counts.items() if n * RARE_PER_RULES <= total}
    moved: tuple[str, ...] = ()
    if MOVE_CONNTRACK and dnat and verdict and rare.issuperset(CONNTRACK_TOP):
        moved = ("dst_type",) * ("dst_type" in rare) + CONNTRACK_TOP
    return moved + tuple(f for f in RARE_FIELDS if f in rare and f not in moved and f != "dst_type")


def _havoc_fields(ruleset: Ruleset) -> tuple[str, ...]:
    """The fields some rule sets to a value not worked out (an
    ``UnknownAction`` effect naming its field: ``meta mark set ip daddr map
    @m``) and the ruleset reads (:func:`read_fields`): the walk tags the
    packets so written (:data:`HAVOC`). None in most rulesets (one pass
    over the effects)."""
    written = {FIELD_ALIASES.get(act.field, act.field) for rule in ruleset.rules() for act in rule.effects
               if isinstance(act, UnknownAction) and act.field is not None}
    written &= INT_WIDTHS.keys()
    return tuple(sorted(written & read_fields(ruleset))) if written else ()


#: The space field a match on another name reads (:func:`read_fields`).
_READ_AS = {"tos": "ecn"}  # (other spellings: FIELD_ALIASES)


def read_fields(ruleset: Ruleset) -> frozenset[str]:
    """Header fields some match (or a copy such as CONNMARK --save-mark,
    or the host's policy routing) of ``ruleset`` reads: a field no rule
    reads may be set without changing any verdict."""
    fields: set[str] = set()

    def visit(m) -> None:
        field = getattr(m, "field", None)
        if field:
            fields.add(field)
            fields.add(_READ_AS.get(field, FIELD_ALIASES.get(field, field)))
            if field == "tos":
                fields.add("dscp")
        for sub in getattr(m, "matches", ()):
            visit(sub)

    for rule in ruleset.rules():
        for m in _rule_matches(rule):
            visit(m)
        for act in (rule.action, *rule.effects):
            if isinstance(act, SetField) and act.copy_from:
                fields.add(act.copy_from)
    host = getattr(ruleset, "host", None)
    if host is not None and any(r.fwmark is not None for r in host.rules):
        fields.add("mark")  # the host's policy routing reads it (space/routes.py)
    return frozenset(fields)


def _nat_rewrites(ruleset: Ruleset) -> Iterable[tuple[str, IPAddress]]:
    for rule in ruleset.rules():
        for act in rule.actions():
            if isinstance(act, Nat) and act.to_addr is not None:
                yield ("dst" if act.kind in ("dnat", "redirect") else "src"), act.to_addr


def _collect(m: Match, ifaces: set[str], names: dict[str, set[str]],
             addresses: dict[str, dict[int, object]] | None = None) -> None:
    if isinstance(m, AddressMatch):
        if addresses is not None and m.field in addresses:
            nets = m.networks  # objects by id (see for_matches, _distinct)
            addresses[m.field].update(zip(map(id, nets), nets))
    elif isinstance(m, InterfaceMatch):
        ifaces.update(m.names)
    elif isinstance(m, NameMatch):
        names.setdefault(m.field, set()).update(v.lower() for v in m.values)
    elif isinstance(m, (AllOf, AnyOf)):
        for sub in m.matches:
            _collect(sub, ifaces, names, addresses)
