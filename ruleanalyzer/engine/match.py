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


class View:
    """The fields of a packet as the rules see them at one point of its way
    (after marks were set, NAT applied, ECN bits stripped …)."""

    __slots__ = ("family", "src", "dst", "proto", "sport", "dport", "flags", "ecn", "dscp",
                 "state", "iif", "oif", "icmp_type", "icmp_code", "mark", "ctmark",
                 "ct_status", "ct_direction", "length", "ttl", "fragment", "pkttype",
                 "src_type", "dst_type", "uid", "gid", "tcp_options", "hook")

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
        if field in ("sport", "dport"):
            if self.proto not in PORT_PROTOCOLS or self.fragment:
                return ABSENT
        elif field == "flags":
            if self.proto != 6 or self.fragment:
                return ABSENT
        elif field in ("icmp_type", "icmp_code"):
            if self.proto != (1 if self.family == 4 else 58) or self.fragment:
                return ABSENT
        value = getattr(self, field)
        if value is None and field not in CONTEXT_FIELDS and field not in ("length",):
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
    if len(ranges) == 1:
        lo, hi = ranges[0]
        return _negatable(m.negate, lambda v: lo <= v <= hi, m.field)
    return _negatable(m.negate, lambda v: any(lo <= v <= hi for lo, hi in ranges), m.field)


def _bits(m: BitsMatch) -> Predicate:
    mask, values = m.mask, m.values
    return _negatable(m.negate, lambda v: (v & mask) in values, m.field)


def _name(m: NameMatch) -> Predicate:
    values = m.values

    def test(value) -> bool:
        if isinstance(value, (frozenset, set)):
            return not values.isdisjoint(value)
        return value in values

    return _negatable(m.negate, test, m.field)


def interface_matches(pattern: str, name: str) -> bool:
    """iptables ``eth+`` and nftables ``eth*`` match any name with the prefix."""
    if pattern.endswith(("+", "*")) and not pattern.endswith(("\\*",)):
        return name.startswith(pattern[:-1])
    return name == pattern


def _interface(m: InterfaceMatch) -> Predicate:
    names = m.names
    return _negatable(m.negate, lambda v: any(interface_matches(p, v) for p in names), m.field)


def _all_of(m: AllOf) -> Predicate:
    parts = [compile_match(x) for x in m.matches]
    negate = m.negate

    def predicate(view: View):
        unknown = False
        for part in parts:
            r = part(view)
            if r is False:
                return negate
            if r is None:
                unknown = True
        return None if unknown else not negate

    return predicate


def _any_of(m: AnyOf) -> Predicate:
    parts = [compile_match(x) for x in m.matches]
    negate = m.negate

    def predicate(view: View):
        unknown = False
        for part in parts:
            r = part(view)
            if r is True:
                return not negate
            if r is None:
                unknown = True
        return None if unknown else negate

    return predicate


def _opaque(m: OpaqueMatch) -> Predicate:
    return lambda view: None


_COMPILERS = {AddressMatch: _address, IntMatch: _int, BitsMatch: _bits, NameMatch: _name,
              InterfaceMatch: _interface, AllOf: _all_of, AnyOf: _any_of, OpaqueMatch: _opaque}


def compile_match(m: Match) -> Predicate:
    """A predicate deciding ``m``; unknown match types decide as unknown."""
    compiler = _COMPILERS.get(type(m))
    return compiler(m) if compiler else (lambda view: None)


def describe_match(m: Match) -> str:
    """How a match reads in a report: its written text, else a summary."""
    if m.text:
        return m.text
    if isinstance(m, OpaqueMatch):
        return m.reason
    return type(m).__name__
