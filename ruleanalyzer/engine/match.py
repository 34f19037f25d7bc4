"""Deciding a model :class:`~ruleanalyzer.model.Match` against one packet.

Every match compiles once into a small predicate over a :class:`View` that
answers ``True``, ``False`` or ``None`` (unknown). The rules of the kernel
that matter here:

- a match on a header the packet does not have (``--dport`` on ICMP, ``tcp
  flags`` on UDP) is false whether it is negated or not;
- a field the query left out that depends on context (``iif``, ``uid``…) is
  unknown, and so is every :class:`~ruleanalyzer.model.OpaqueMatch`.
"""

from __future__ import annotations

from typing import Callable

from ..model import (CONTEXT_FIELDS, AddressMatch, AllOf, AnyOf, BitsMatch, IntMatch,
                     InterfaceMatch, Match, NameMatch, OpaqueMatch)

Predicate = Callable[["View"], "bool | None"]

#: Protocols whose header carries ports.
PORT_PROTOCOLS = frozenset({6, 17, 33, 132, 136})

#: Sentinel for "the packet has no such header".
ABSENT = object()

#: Header fields only IPv4 has (IPv6 has no DF, and its identification lives
#: in the fragment header).
IPV4_FIELDS = frozenset({"ipfrag", "ip_id", "ip_options"})

#: Fields that live in the connection entry: a packet without one has none.
CONNTRACK_FIELDS = frozenset({"ctmark", "ct_status", "ct_direction"})


class AddressTypes:
    """What is known of an address's route type (addrtype / ``fib … type``).

    The types are exclusive (an address has one route type), and most depend
    on the host's routing table, which a ruleset does not show: a remote
    source may be UNICAST or UNREACHABLE. ``exactly`` is the type when it is
    known; otherwise ``not_any`` lists types it certainly is not.
    """

    __slots__ = ("exactly", "not_any")

    def __init__(self, exactly: str | None = None, not_any: frozenset[str] = frozenset()):
        self.exactly = exactly
        self.not_any = not_any

    def test(self, values: frozenset[str]) -> bool | None:
        if self.exactly is not None:
            return self.exactly in values
        if values <= self.not_any:
            return False
        return None


class View:
    """The fields of a packet as the rules see them at one point of its way
    (after marks were set, NAT applied, ECN bits stripped …)."""

    __slots__ = ("family", "src", "dst", "proto", "sport", "dport", "flags", "ecn", "dscp",
                 "state", "iif", "oif", "icmp_type", "icmp_code", "mark", "ctmark",
                 "ct_status", "ct_direction", "length", "ttl", "fragment", "pkttype",
                 "src_type", "dst_type", "uid", "gid", "tcp_options", "hook", "frag_off", "mf",
                 "df", "ip_id", "ip_options", "ext_headers")

    def copy(self) -> "View":
        other = View.__new__(View)
        for name in View.__slots__:
            setattr(other, name, getattr(self, name))
        return other

    def get(self, field: str):
        """The value of ``field``; :data:`ABSENT` when the packet has no such
        header; ``None`` when it is context the query did not give."""
        if field == "tos":
            return (self.dscp << 2) | self.ecn
        if field in IPV4_FIELDS:
            if self.family != 4:
                return ABSENT
            if field == "ipfrag":
                if self.fragment and not self.frag_off:
                    return None  # a non-first fragment whose offset the query left out
                return (self.df << 14) | (self.mf << 13) | self.frag_off
        elif field == "ext_headers" and self.family != 6:
            return ABSENT
        if field in ("sport", "dport"):
            if self.proto not in PORT_PROTOCOLS or self.fragment:
                return ABSENT
        elif field == "flags":
            if self.proto != 6 or self.fragment:
                return ABSENT
        elif field in ("icmp_type", "icmp_code"):
            if self.proto != (1 if self.family == 4 else 58) or self.fragment:
                return ABSENT
        elif field in CONNTRACK_FIELDS and self.state in ("invalid", "untracked"):
            # No connection entry: connmark/ctstatus/ctdir matches fail even negated.
            return ABSENT
        value = getattr(self, field)
        # (a mark is None only once a rule set it to a value not worked out:
        # unknown, not absent)
        if value is None and field not in CONTEXT_FIELDS and field not in ("length", "mark", "ctmark"):
            return ABSENT
        return value


def _negatable(negate: bool, test: Callable[[object], bool], field: str) -> Predicate:
    """A predicate on ``field`` that honours absent headers and unknowns."""

    def predicate(view: View):
        value = view.get(field)
        if value is ABSENT:
            return False
        if value is None:
            return None
        return test(value) != negate

    return predicate


def _address(m: AddressMatch) -> Predicate:
    nets = [(n.version, int(n.network_address), int(n.netmask)) for n in m.networks]
    field, negate = m.field, m.negate

    def predicate(view: View):
        value = getattr(view, field)
        fam = view.family
        hit = any(v == fam and (value & mask) == net for v, net, mask in nets)
        return hit != negate

    return predicate


def _int(m: IntMatch) -> Predicate:
    ranges = m.ranges
    negate = m.negate
    if m.field in ("proto", "family") and len(ranges) == 1:
        # Always present: no header check needed (the hottest match there is).
        lo, hi = ranges[0]
        if m.field == "proto":
            return lambda view: (lo <= view.proto <= hi) != negate
        return lambda view: (lo <= view.family <= hi) != negate
    if m.field in ("sport", "dport") and len(ranges) == 1:
        lo, hi = ranges[0]
        field = m.field

        def port(view: View):
            if view.proto not in PORT_PROTOCOLS or view.fragment:
                return False
            value = getattr(view, field)
            if value is None:
                return False
            return (lo <= value <= hi) != negate

        return port
    if len(ranges) == 1:
        lo, hi = ranges[0]
        return _negatable(m.negate, lambda v: lo <= v <= hi, m.field)
    return _negatable(m.negate, lambda v: any(lo <= v <= hi for lo, hi in ranges), m.field)


def _bits(m: BitsMatch) -> Predicate:
    mask, values = m.mask, m.values
    return _negatable(m.negate, lambda v: (v & mask) in values, m.field)


def _name(m: NameMatch) -> Predicate:
    values = m.values
    field, negate = m.field, m.negate

    def test(value) -> bool:
        if isinstance(value, (frozenset, set)):
            return not values.isdisjoint(value)
        return value in values

    plain = _negatable(negate, test, field)
    if field not in ("src_type", "dst_type"):
        return plain

    route_values = values & ROUTE_TYPES
    address_field = "src" if field == "src_type" else "dst"

    def address_type(view: View):
        value = getattr(view, field)
        if view.family == 6:
            r = _address_type_v6(getattr(view, address_field), value, values, route_values)
            return None if r is None else r != negate
        if isinstance(value, AddressTypes):
            r = value.test(values)
            return None if r is None else r != negate
        return plain(view)

    return address_type


#: IPv6 address types that need a route lookup; the others follow from the
#: address itself.
ROUTE_TYPES = frozenset({"local", "anycast", "unreachable", "blackhole", "prohibit", "throw"})


def _address_type_v6(address: int, known, values: frozenset[str], route_values: frozenset[str]):
    """xt_addrtype's IPv6 rule (``match_type6``), checked on a kernel: every
    address class named must hold (UNICAST, MULTICAST, UNSPEC), and if route
    types are named too, the route lookup must give one of them — so a
    host's own address is both LOCAL and UNICAST, and ``UNREACHABLE,UNICAST``
    means "unicast *and* unreachable"."""
    multicast = (address >> 120) == 0xFF
    if "multicast" in values and not multicast:
        return False
    if "unicast" in values and (multicast or address == 0):
        return False
    if "unspec" in values and address != 0:
        return False
    if not route_values:
        return True
    if isinstance(known, AddressTypes):
        if known.exactly is not None:
            return known.exactly in route_values
        return False if route_values <= known.not_any else None
    if isinstance(known, (frozenset, set)):
        return not route_values.isdisjoint(known)
    return None


def interface_matches(pattern: str, name: str) -> bool:
    """iptables ``eth+`` and nftables ``eth*`` match any name with the prefix."""
    if pattern.endswith(("+", "*")) and not pattern.endswith(("\\*",)):
        return name.startswith(pattern[:-1])
    return name == pattern


class UnknownInterface:
    """An interface the query did not name, known only not to match the
    ``excluded`` patterns (branches already assumed it is none of them)."""

    __slots__ = ("excluded",)

    def __init__(self, excluded: tuple[str, ...] = ()):
        self.excluded = excluded

    def rules_out(self, pattern: str) -> bool:
        """Is every name ``pattern`` matches already excluded?"""
        for ex in self.excluded:
            if ex.endswith(("+", "*")):
                prefix = ex[:-1]
                body = pattern[:-1] if pattern.endswith(("+", "*")) else pattern
                if body.startswith(prefix):
                    return True
            elif ex == pattern:
                return True
        return False

    def representative(self, pattern: str) -> str | None:
        """A concrete name matching ``pattern`` and no excluded pattern."""
        if not pattern.endswith(("+", "*")):
            return None if self.rules_out(pattern) else pattern
        prefix = pattern[:-1]
        for n in range(100):
            name = f"{prefix}{n}"
            if not any(interface_matches(ex, name) for ex in self.excluded):
                return name
        return None


def _is_loopback(view: View) -> bool:
    if view.family == 4:
        return (view.src >> 24) == 127 or (view.dst >> 24) == 127
    return view.src == 1 or view.dst == 1


def _interface(m: InterfaceMatch) -> Predicate:
    names = m.names
    field, negate = m.field, m.negate
    only_loopback = all(n == "lo" for n in names)

    def predicate(view: View):
        value = getattr(view, field)
        if value is None or isinstance(value, UnknownInterface):
            if only_loopback:
                # A query that names no interface is about a packet from the
                # network: it is on "lo" only when an address is a loopback one.
                return _is_loopback(view) != negate
            if isinstance(value, UnknownInterface) and all(value.rules_out(n) for n in names):
                return negate
            return None
        return any(interface_matches(p, value) for p in names) != negate

    return predicate


def _combination(m: AllOf | AnyOf) -> Predicate:
    """AllOf is decided by the first false part, AnyOf by the first true
    one; an unknown part leaves the rest undecided unless a decider comes."""
    parts = [compile_match(x) for x in m.matches]
    negate = m.negate
    decider = isinstance(m, AnyOf)  # the part value that settles the answer

    def predicate(view: View):
        unknown = False
        for part in parts:
            r = part(view)
            if r is decider:
                return decider != negate
            if r is None:
                unknown = True
        return None if unknown else (not decider) != negate

    return predicate


def _opaque(m: OpaqueMatch) -> Predicate:
    return lambda view: None


_COMPILERS = {AddressMatch: _address, IntMatch: _int, BitsMatch: _bits, NameMatch: _name,
              InterfaceMatch: _interface, AllOf: _combination, AnyOf: _combination, OpaqueMatch: _opaque}


def compile_match(m: Match) -> Predicate:
    """A predicate deciding ``m``; unknown match types decide as unknown."""
    compiler = _COMPILERS.get(type(m))
    return compiler(m) if compiler else (lambda view: None)


FIELD_WORDS = {"src": "source", "dst": "destination", "iif": "input interface",
               "oif": "output interface", "dport": "destination port", "sport": "source port",
               "proto": "protocol", "state": "conntrack state", "flags": "tcp flags"}


def describe_match(m: Match) -> str:
    """How a match reads in a report: its written text, else a summary."""
    if m.text:
        return m.text
    if isinstance(m, OpaqueMatch):
        return m.reason
    neg = "not " if m.negate else ""
    field = getattr(m, "field", "")
    word = FIELD_WORDS.get(field, field)
    if isinstance(m, InterfaceMatch):
        return f"{word} {neg}{', '.join(m.names)}"
    if isinstance(m, AddressMatch):
        return f"{word} {neg}in {', '.join(map(str, m.networks))}"
    if isinstance(m, IntMatch):
        spans = ", ".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in m.ranges)
        return f"{word} {neg}{spans}"
    if isinstance(m, NameMatch):
        return f"{word} {neg}{', '.join(sorted(m.values))}"
    if isinstance(m, BitsMatch):
        return f"{word} & {m.mask:#x} {'not ' if m.negate else ''}in {{{', '.join(hex(v) for v in sorted(m.values))}}}"
    if isinstance(m, (AllOf, AnyOf)):
        joiner = " and " if isinstance(m, AllOf) else " or "
        return neg + "(" + joiner.join(describe_match(x) for x in m.matches) + ")"
    return type(m).__name__
