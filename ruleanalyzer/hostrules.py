"""Host context → plain matches: ipsets and address types decided once.

With a snapshot, ``-m set --match-set blocklist src`` is no longer "depends
on the contents of ipset blocklist": the set's entries are known, so the
match becomes the address (port, interface, mark) matches they stand for.
``-m addrtype --dst-type LOCAL`` and nft ``fib daddr type local`` become
the host's own addresses, routed the way the kernel types them. The
rewritten matches keep the rule's own words as their ``text``, so reports
read as before; the concrete engine and the packet space both decide them
exactly, with nothing host-specific in either.

What the snapshot cannot decide stays as it was (unknown), with a reason:
a set the ruleset itself changes at runtime (``-j SET --add-set``), packet
or byte counter conditions, ``--return-nomatch``, MAC-address sets,
``--limit-iface-in/out``.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Callable

from .host import HostContext, IPSet
from .model import (AddressMatch, AllOf, AnyOf, BitsMatch, Diagnostic, InterfaceMatch, IntMatch, Location,
                    Match, NameMatch, OpaqueMatch, Rule, Ruleset)
from .packets import ICMP_TYPE_NAMES, ICMPV6_TYPE_NAMES

#: Protocol names ``ipset save`` writes in port entries.
_IPSET_PROTOCOLS = {"tcp": 6, "udp": 17, "sctp": 132, "udplite": 136, "icmp": 1, "ipv6-icmp": 58,
                    "icmpv6": 58, "gre": 47, "esp": 50, "ah": 51}
_PORT_PROTOCOLS = (6, 17, 132, 136)
#: Counter conditions of the set match: they depend on traffic so far.
_COUNTER_OPTIONS = ("--packets-eq", "--packets-lt", "--packets-gt", "--bytes-eq", "--bytes-lt",
                    "--bytes-gt")


class Undecided(Exception):
    """The host context cannot decide this match; the message says why."""


def apply_host(ruleset: Ruleset, host: HostContext) -> None:
    """Rewrite, in place, the matches of ``ruleset`` that ``host`` decides.
    Notes about what stayed undecided go to ``ruleset.diagnostics``."""
    changed_at_runtime = _runtime_sets(ruleset)
    resolver = _Resolver(host, changed_at_runtime)
    for table in ruleset.tables:
        families = {"ip": (4,), "ip6": (6,)}.get(table.family, (4, 6))
        for chain in table.chains.values():
            for rule in chain.rules:
                matches = tuple(resolver.resolve(m, rule, families) for m in rule.matches)
                if any(a is not b for a, b in zip(matches, rule.matches)):
                    rule.matches = matches
    for name in sorted(resolver.used):
        ipset = host.sets.get(name)
        if ipset is not None and ipset.expiring:
            ruleset.diagnostics.append(Diagnostic(
                f"ipset {name} has entries that expire (timeout): its contents are those of "
                f"the moment the snapshot was taken{' (' + host.time + ')' if host.time else ''}",
                Location(host.source or "<snapshot>"), "info"))
    for note in dict.fromkeys(resolver.notes):
        ruleset.diagnostics.append(Diagnostic(note, Location(host.source or "<snapshot>"), "info"))
    # Compiled engine state is per ruleset object and was made from the old matches.
    if hasattr(ruleset, "_engine_cache"):
        del ruleset._engine_cache  # type: ignore[attr-defined]


def _runtime_sets(ruleset: Ruleset) -> dict[str, Rule]:
    """ipsets a rule of the ruleset adds to or deletes from (``-j SET``)."""
    out: dict[str, Rule] = {}
    for rule in ruleset.rules():
        for action in (rule.action, *rule.effects):
            text = getattr(action, "text", "") or ""
            if "SET" in text:
                for name in re.findall(r"--(?:add|del)-set\s+(\S+)", text):
                    out.setdefault(name, rule)
    return out


class _Resolver:
    def __init__(self, host: HostContext, runtime: dict[str, Rule]):
        self.host = host
        self.runtime = runtime
        self.cache: dict = {}
        self.used: set[str] = set()
        self.notes: list[str] = []
        self.type_cache: dict = {}

    def resolve(self, match: Match, rule: Rule, families: tuple[int, ...]) -> Match:
        if isinstance(match, OpaqueMatch) and match.text.startswith("-m set "):
            return self._set(match, rule)
        if isinstance(match, NameMatch) and match.field in ("src_type", "dst_type"):
            if "--limit-iface" in (rule.text or ""):
                self.notes.append("addrtype with --limit-iface-in/out stays undecided: the "
                                  "per-interface address types are not modelled")
                return match
            return self._address_type(match, families)
        if isinstance(match, (AllOf, AnyOf)):
            parts = tuple(self.resolve(m, rule, families) for m in match.matches)
            if any(a is not b for a, b in zip(parts, match.matches)):
                return type(match)(parts, negate=match.negate, text=match.text)
        return match

    # -- ipsets -------------------------------------------------------------------

    def _set(self, match: OpaqueMatch, rule: Rule) -> Match:
        words = match.text.split()[2:]
        negate = False
        name = dirs = None
        i = 0
        while i < len(words):
            w = words[i]
            if w == "!":
                if i + 1 < len(words) and words[i + 1] in ("--match-set", "--set"):
                    negate = True
                i += 1
                continue
            if w in ("--match-set", "--set") and i + 2 < len(words) + 1:
                name = words[i + 1] if i + 1 < len(words) else None
                dirs = words[i + 2] if i + 2 < len(words) else None
                i += 3
                continue
            if w in _COUNTER_OPTIONS or w == "--return-nomatch":
                return _still(match, f"{match.reason} (with {w}, which the snapshot cannot decide)")
            i += 1
        if name is None or dirs is None:
            return match
        if name in self.runtime:
            r = self.runtime[name]
            return _still(match, f"{match.reason}, which rule {r.index} of {r.chain.name if r.chain else '?'} "
                                 "changes at runtime (-j SET)")
        if "ipsets" not in self.host.known:
            return match
        key = (name, dirs)
        if key not in self.cache:
            try:
                self.cache[key] = set_match(self.host, name, tuple(dirs.split(",")))
            except Undecided as exc:
                self.cache[key] = exc
        found = self.cache[key]
        if isinstance(found, Undecided):
            return _still(match, f"{match.reason} ({found})")
        self.used.add(name)
        return AnyOf((found,), negate=negate, text=match.text)

    # -- address types ---------------------------------------------------------------

    def _address_type(self, match: NameMatch, families: tuple[int, ...]) -> Match:
        field = "src" if match.field == "src_type" else "dst"
        parts = []
        for family in families:
            if f"routes{family}" not in self.host.known:
                return match
            key = (family, match.values)
            if key not in self.type_cache:
                try:
                    self.type_cache[key] = typed_networks(self.host, family, match.values)
                except LookupError as exc:
                    self.type_cache[key] = exc
            nets = self.type_cache[key]
            if isinstance(nets, LookupError):
                self.notes.append(f"IPv{family} address types stay undecided: {nets}")
                return match
            parts.append(AddressMatch(field, tuple(nets)))
        text = match.text or f"fib {'daddr' if field == 'dst' else 'saddr'} type {','.join(sorted(match.values))}"
        return AnyOf(tuple(parts), negate=match.negate, text=text)


def _still(match: OpaqueMatch, reason: str) -> OpaqueMatch:
    return OpaqueMatch(reason=reason, negate=match.negate, text=match.text)


# -- ipset contents as matches ---------------------------------------------------------


def set_match(host: HostContext, name: str, dirs: tuple[str, ...], depth: int = 0) -> Match:
    """The match ``-m set --match-set NAME DIRS`` stands for, from the
    set's entries (xt_set / ipset semantics: fewer directions than the set
    has dimensions never matches; a ``hash:net`` entry marked ``nomatch``
    excludes what it covers unless a longer prefix matches again; a
    ``list:set`` matches when a member set does)."""
    ipset = host.sets.get(name)
    if ipset is None:
        raise Undecided(f"the snapshot has no ipset named {name}")
    kind, _, _ = ipset.type.partition(":")
    dims = ipset.dimensions
    if ipset.type == "list:set":
        if depth:
            raise Undecided("a list:set inside a list:set")
        return AnyOf(tuple(set_match(host, member, dirs, depth + 1) for member in ipset.entries))
    if len(dirs) < len(dims):
        return AnyOf(())  # ip_set_test(): too few directions never match
    if any(d not in ("src", "dst") for d in dirs):
        raise Undecided(f"unknown direction in {','.join(dirs)}")
    if "mac" in dims:
        raise Undecided(f"ipset {name} holds MAC addresses, which the analyzer does not model")
    family = _set_family(ipset)
    if ipset.nomatch:
        if dims not in (["net"],):
            raise Undecided(f"ipset {name} has nomatch entries in a {ipset.type} set")
        return AddressMatch(dirs[0], tuple(_longest_prefix_networks(ipset, family)))
    groups: dict[tuple, list] = {}
    address_dims = [i for i, d in enumerate(dims) if d in ("ip", "net")]
    for entry in ipset.entries:
        values = _entry_parts(entry, len(dims), ipset)
        if len(address_dims) == 1:
            k = address_dims[0]
            rest = tuple(v for i, v in enumerate(values) if i != k)
            groups.setdefault(rest, []).extend(_networks(values[k], family, ipset))
        else:
            groups.setdefault(tuple(values), []).append(None)
    alternatives: list[Match] = []
    for rest, nets in groups.items():
        if len(address_dims) == 1:
            k = address_dims[0]
            others = [d for i, d in enumerate(dims) if i != k]
            other_dirs = [d for i, d in enumerate(dirs[:len(dims)]) if i != k]
            parts: list[Match] = [AddressMatch(dirs[k], tuple(ipaddress.collapse_addresses(nets))
                                               if len({n.version for n in nets}) == 1 else tuple(nets))]
            parts += [_dimension(d, v, dr, ipset, family) for d, v, dr in zip(others, rest, other_dirs)]
        else:
            parts = []
            for d, v, dr in zip(dims, rest, dirs):
                if d in ("ip", "net"):
                    parts.append(AddressMatch(dr, tuple(_networks(v, family, ipset))))
                else:
                    parts.append(_dimension(d, v, dr, ipset, family))
        alternatives.append(parts[0] if len(parts) == 1 else AllOf(tuple(parts)))
    return AnyOf(tuple(alternatives)) if len(alternatives) != 1 else alternatives[0]


def _set_family(ipset: IPSet) -> int | None:
    family = ipset.options.get("family")
    if family == "inet6":
        return 6
    if family == "inet" or ipset.type.startswith("bitmap:ip"):
        return 4
    return None


def _entry_parts(entry: str, count: int, ipset: IPSet) -> list[str]:
    parts = entry.split(",")
    if len(parts) != count:
        raise Undecided(f"ipset {ipset.name} entry {entry!r} does not fit its type {ipset.type}")
    return parts


def _networks(text: str, family: int | None, ipset: IPSet) -> list:
    try:
        if "-" in text:
            first, last = (ipaddress.ip_address(x) for x in text.split("-", 1))
            nets = list(ipaddress.summarize_address_range(first, last))
        else:
            nets = [ipaddress.ip_network(text, strict=False)]
    except (ValueError, TypeError):
        raise Undecided(f"ipset {ipset.name} has an entry {text!r} that is not an address") from None
    if family is not None and any(n.version != family for n in nets):
        raise Undecided(f"ipset {ipset.name} entry {text!r} is not IPv{family}")
    return nets


def _dimension(dim: str, value: str, direction: str, ipset: IPSet, family: int | None) -> Match:
    if dim == "port":
        return _port(value, direction, ipset, family)
    if dim == "iface":
        name = value.split(":", 1)[1] if value.startswith("physdev:") else value
        if value.startswith("physdev:"):
            raise Undecided(f"ipset {ipset.name} matches bridge ports (physdev), which are not modelled")
        return InterfaceMatch("iif" if direction == "src" else "oif", (name,))
    if dim == "mark":
        mask = int(ipset.options.get("markmask", "0xffffffff"), 0)
        return BitsMatch("mark", mask, frozenset({int(value, 0) & mask}))
    raise Undecided(f"ipset {ipset.name} has a {dim} dimension, which is not modelled")


def _port(value: str, direction: str, ipset: IPSet, family: int | None) -> Match:
    """``tcp:22``, ``udp:53``, ``icmp:echo-request`` / ``icmp:8/0``, ``gre:0``
    or a bare ``22`` (TCP). The kernel takes ICMP type/code as the port,
    and a protocol without ports as port 0."""
    proto_name, sep, port = value.rpartition(":")
    if not sep:
        proto_name, port = "tcp", value
    proto = _IPSET_PROTOCOLS.get(proto_name.lower())
    if proto is None:
        if proto_name.isdigit():
            proto = int(proto_name)
        else:
            raise Undecided(f"ipset {ipset.name} entry port {value!r}: unknown protocol")
    field = "sport" if direction == "src" else "dport"
    try:
        if proto in _PORT_PROTOCOLS:
            lo, _, hi = port.partition("-")
            span = (int(lo), int(hi or lo))
            return AllOf((IntMatch("proto", ((proto, proto),)), IntMatch(field, (span,))))
        if proto in (1, 58):
            if "/" in port:
                t, c = (int(x) for x in port.split("/", 1))
            else:
                names = ICMP_TYPE_NAMES if proto == 1 else ICMPV6_TYPE_NAMES
                t, c = names[port.lower()], 0
            return AllOf((IntMatch("proto", ((proto, proto),)), IntMatch("icmp_type", ((t, t),)),
                          IntMatch("icmp_code", ((c, c),))))
        if int(port) != 0:
            return AnyOf(())  # a portless protocol is port 0 to the kernel
        return IntMatch("proto", ((proto, proto),))
    except (ValueError, KeyError):
        raise Undecided(f"ipset {ipset.name} entry port {value!r} is not understood") from None


def _longest_prefix_networks(ipset: IPSet, family: int | None) -> list:
    """A ``hash:net`` set with ``nomatch`` entries: an address matches when
    the longest entry covering it is not ``nomatch``."""
    entries = {}
    for entry in ipset.entries:
        for net in _networks(entry, family, ipset):
            entries[net] = entry in ipset.nomatch
    out = []
    for version in sorted({n.version for n in entries}):
        nets = {n: nm for n, nm in entries.items() if n.version == version}

        def matches(addr, nets=nets):
            best = None
            for n, nm in nets.items():
                if addr in n and (best is None or n.prefixlen > best[0].prefixlen):
                    best = (n, nm)
            return best is not None and not best[1]

        out += partition(version, list(nets), matches)
    return out


# -- address types as networks ---------------------------------------------------------


def partition(version: int, prefixes, predicate: Callable) -> list:
    """The networks of IPv``version`` addresses for which ``predicate``
    holds, given that it is constant between the boundaries of
    ``prefixes``: evaluated once per elementary range."""
    top = (1 << (32 if version == 4 else 128)) - 1
    make = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    bounds = {0, top + 1}
    for net in prefixes:
        if net.version != version:
            continue
        bounds.add(int(net.network_address))
        bounds.add(int(net.broadcast_address) + 1)
    points = sorted(bounds)
    ranges = []
    for lo, hi in zip(points, points[1:]):
        if predicate(make(lo)):
            if ranges and ranges[-1][1] == lo - 1:
                ranges[-1][1] = hi - 1
            else:
                ranges.append([lo, hi - 1])
    out = []
    for lo, hi in ranges:
        out.extend(ipaddress.summarize_address_range(make(lo), make(hi)))
    return out


_V4_SPECIAL = [ipaddress.ip_network(n) for n in ("0.0.0.0/8", "224.0.0.0/4", "255.255.255.255/32")]
_V6_SPECIAL = [ipaddress.ip_network(n) for n in ("::/128", "ff00::/8")]


def typed_networks(host: HostContext, family: int, values: frozenset[str]) -> list:
    """The IPv``family`` addresses whose address type (as ``addrtype`` and
    ``fib … type`` read it on this host) is one of ``values``.

    IPv4: one exclusive route type per address (:meth:`HostContext.address_type`).
    IPv6: xt_addrtype's ``match_type6`` — every address class named
    (UNICAST, MULTICAST, UNSPEC) must hold and, if route types are named,
    the route lookup must give one of them. Raises LookupError when a policy
    rule makes the IPv6 lookup depend on more than the address."""
    prefixes = [r.dst for r in host.routes if r.dst.version == family]
    prefixes += [r.dst for r in host.policy_rules(family) if r.dst is not None]
    if family == 4:
        prefixes += _V4_SPECIAL
        return partition(4, prefixes, lambda a: host.address_type(a) in values)
    prefixes += _V6_SPECIAL
    route_values = values & frozenset({"local", "anycast", "unreachable", "blackhole", "prohibit", "throw"})

    from .engine.match import _address_type_v6

    def holds(addr) -> bool:
        known = host.address_types6(addr) if route_values else None
        return bool(_address_type_v6(int(addr), known, values, route_values))

    return partition(6, prefixes, holds)


