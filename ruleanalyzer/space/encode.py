"""Model matches → packet sets.

Every match becomes a pair of sets ``(lower, upper)``: packets that surely
match and packets that may match. Matches the model can express exactly have
``lower == upper``; an :class:`~ruleanalyzer.model.OpaqueMatch` (ipset
contents, ``-m recent``, payload bytes) is ``(empty, everything)``, and the
pair is carried soundly through negation (``not [L, U] = [~U, ~L]``) and
``AllOf``/``AnyOf``.

Negation follows the model: a match on a header the packet does not have is
false whether negated or not, so ``! --dport 22`` contains no ICMP packet.
For a negated ``AllOf``/``AnyOf`` the packet must have every header the
parts look at.
"""

from __future__ import annotations

import ipaddress

from ..model import (AddressMatch, AllOf, AnyOf, BitsMatch, InterfaceMatch, IntMatch, Match,
                     NameMatch, OpaqueMatch)
from .fields import FIELD_ALIASES, Layout, _wildcard_prefix
from .packetset import PacketSet, Space

#: ``tos`` is the byte ``dscp << 2 | ecn``: (field, bit offset, width) parts.
VIRTUAL_FIELDS = {"tos": (("ecn", 0, 2), ("dscp", 2, 6)),
                  # IPv4's flags and fragment-offset word (bit 15, reserved, is 0)
                  "ipfrag": (("frag_off", 0, 13), ("mf", 13, 1), ("df", 14, 1))}
#: Values IntMatch("family") may carry: IP versions and NFPROTO numbers.
FAMILY_VALUES = {4: 4, 6: 6, 2: 4, 10: 6}


#: Address types hang on the host's routing table (and tie to the address
#: itself), which a ruleset does not show: opaque, except where the hook
#: decides them (``env``, see :func:`_address_type`), as the engine does.
ROUTE_DEPENDENT = frozenset({"src_type", "dst_type"})
#: ``env`` — what the hook and the ruleset decide, as ``(role, absent)``
#: (or ``(role, absent, "forwarded")`` past ``ip_forward``: a TTL match reads
#: the TTL one lower than the packet arrived with, :func:`ttl_before_forward`):
#: ``role`` ``arrive`` (input, forward and the stages they share: a
#: destination is LOCAL on the input path and a routed UNICAST one on the
#: forward path — told apart by the ghost bit :data:`LOCAL_GHOST`; a source
#: is remote) or ``out`` (output: the source is LOCAL, the destination
#: remote); ``absent``: ct status names no connection can carry (``dnat``
#: when nothing in the ruleset translates destinations).
Env = tuple
#: The variable that says "this packet is on its way to the host itself"
#: on the input/forward walks (set once at arrival, never rewritten).
LOCAL_GHOST = "dst_type:local"


class OpaqueError(ValueError):
    """An exact set was asked for a match the analyzer cannot decide."""


def encode(match: Match, space: Space | None = None, bound: str = "exact") -> PacketSet:
    """The set of valid packets ``match`` holds for.

    ``bound`` is ``exact`` (raises :class:`OpaqueError` when the match holds
    an opaque part), ``lower`` (packets that surely match) or ``upper``
    (packets that may match). Without ``space`` one is built whose name
    domains cover the match.
    """
    space = space or Space(Layout.for_matches([match]))
    lower, upper = encode_bounds(match, space)
    if bound == "exact":
        if lower != upper:
            raise OpaqueError(f"match {match.text or match!r} is not decidable from a packet")
        return space.wrap(lower)
    if bound not in ("lower", "upper"):
        raise ValueError(f"bound must be exact, lower or upper, not {bound!r}")
    return space.wrap(lower if bound == "lower" else upper)


def encode_bounds(match: Match, space: Space, env: Env | None = None, keep: bool = True):
    """``(lower, upper)`` raw BDD nodes for ``match`` (not yet intersected
    with ``space.valid``). Cached per space. ``env`` (:data:`Env`) says
    what the hook and the ruleset decide. ``keep=False``: a match its
    caller encodes once and keeps the sets of itself (a verdict map's
    keys: 15k set elements at 100k kube-proxy rules, none met again) is
    neither looked up nor kept; its parts are."""
    if not keep:
        return _encode(match, space, env)
    cache = space.__dict__.get("_encode_cache")
    if cache is None:  # (not setdefault: no empty dict made per call)
        cache = space.__dict__["_encode_cache"] = {}
    key = match if env is None else (match, env)
    try:
        return cache[key]
    except KeyError:
        pass
    except TypeError:  # an unhashable match: encode without the cache
        return _encode(match, space, env)
    result = cache[key] = _encode(match, space, env)
    return result


def encode_conjunction(matches, space: Space, env: Env | None = None):
    """``(lower, upper)`` of a rule's matches all holding."""
    parts = [encode_bounds(m, space, env) for m in matches]
    if len(parts) > 2:
        # Conjoin the parts lowest in the variable order first: adding a part
        # that lies above the conjunction so far only rebuilds that part.
        parts.sort(key=lambda p: -_level(p[1], space))
    lower, upper = space.true, space.true
    for lo, up in parts:
        if lo is up and lower is upper:
            lower = upper = upper & up
        else:
            lower, upper = lower & lo, upper & up
    return lower, upper


def reads_env(match: Match) -> bool:
    """Does the encoding of ``match`` depend on the role or the
    ``forwarded`` part of an :data:`Env` (address types, TTL)? Matches that
    do not read the same whatever the hook."""
    if isinstance(match, (AllOf, AnyOf)):
        return any(reads_env(sub) for sub in match.matches)
    return isinstance(match, NameMatch) and getattr(match, "field", None) in ROUTE_DEPENDENT \
        or reads_ttl(match)


def reads_ttl(match: Match) -> bool:
    """Does ``match`` (or a part of it) read the TTL / hop limit?"""
    if isinstance(match, (AllOf, AnyOf)):
        return any(reads_ttl(sub) for sub in match.matches)
    field = getattr(match, "field", None)
    return FIELD_ALIASES.get(field, field) == "ttl"


def _level(node, space: Space) -> int:
    """The level of ``node``'s top variable (constants lie below all)."""
    var = node.var
    return 1 << 30 if var is None else space.bdd.level_of_var(var)


def _encode(match: Match, space: Space, env: Env | None = None):
    if isinstance(match, (AllOf, AnyOf)):
        if isinstance(match, AllOf):
            # lowest part first, exact parts once (encode_conjunction): an
            # nft set element ``addr . proto . port`` conjoined top part
            # first builds the address's path twice
            lower, upper = encode_conjunction(match.matches, space, env)
        else:
            lower = upper = space.false
            for sub in match.matches:
                lo, up = encode_bounds(sub, space, env)
                if lo is up and lower is upper:
                    lower = upper = upper | up
                else:
                    lower, upper = lower | lo, upper | up
        if match.negate:
            head = _headers(match, space)
            return head & ~upper, head & ~lower
        return lower, upper
    if env is not None and isinstance(match, NameMatch) and match.field in ROUTE_DEPENDENT:
        return _address_type(match, space, env[0])
    leaf = _leaf(match, space, env[1] if env is not None else frozenset())
    if leaf is None:  # opaque, or a field the space does not model
        return space.false, space.true
    head, cond = leaf
    if env is not None and len(env) > 2 and FIELD_ALIASES.get(match.field, match.field) == "ttl":
        cond = ttl_before_forward(cond, space)
    node = head & (~cond if match.negate else cond)
    return node, node


def ttl_before_forward(cond, space: Space):
    """The packets, by the TTL they arrived with, whose TTL lowered by one
    (as ``ip_forward`` leaves it for FORWARD and POSTROUTING) lies in
    ``cond``: the image of ``cond`` (TTL 0-254) under ``ttl := ttl + 1``."""
    return ttl_step(cond & ~space.eq("ttl", 0xFF), space, 1)


def ttl_step(node, space: Space, step: int):
    """Image of ``node`` under ``ttl := ttl + step`` (``step`` 1 or -1; no
    packet of ``node`` may wrap around). Adding one: per lowest clear bit k,
    bits 0..k-1 go from 1 to 0 and bit k from 0 to 1; taking one away, the
    other way round."""
    spec, bdd = space.spec("ttl"), space.bdd
    out = space.false
    for k in range(spec.width):
        low, high = ~bdd.var(spec.var(k)), bdd.var(spec.var(k))
        for b in range(k):
            low &= bdd.var(spec.var(b))
            high &= ~bdd.var(spec.var(b))
        before, after = (low, high) if step > 0 else (high, low)
        part = node & before
        if part != space.false:
            out |= space.exist([spec.var(b) for b in range(k + 1)], part) & after
    return out


def _headers(match: Match, space: Space):
    """Packets having every header the (compound) match looks at."""
    if isinstance(match, (AllOf, AnyOf)):
        node = space.true
        for sub in match.matches:
            node &= _headers(sub, space)
        return node
    leaf = _leaf(match, space)
    return space.true if leaf is None else leaf[0]


def _leaf(match: Match, space: Space, absent: frozenset = frozenset()):
    """``(header, condition)`` raw nodes, or None when undecidable;
    ``absent``: set-valued names no packet can carry."""
    if isinstance(match, OpaqueMatch):
        return None
    if isinstance(match, AddressMatch):
        return _address(match, space)
    if isinstance(match, IntMatch):
        return _int(match, space)
    if isinstance(match, BitsMatch):
        return _bits(match, space)
    if isinstance(match, NameMatch):
        return _name(match, space, absent)
    if isinstance(match, InterfaceMatch):
        return _interface(match, space)
    return None


_NETWORK_TYPES = (ipaddress.IPv4Network, ipaddress.IPv6Network)


def _address(match: AddressMatch, space: Space):
    field = FIELD_ALIASES.get(match.field, match.field)
    if field not in ("src", "dst"):
        return None
    if len(match.networks) > _FEW_NETWORKS:
        return _address_ranges(field, match.networks, space)
    head, cond = space.false, space.false
    for net in match.networks:
        if type(net) not in _NETWORK_TYPES:  # (the readers keep network objects: not parsed again)
            net = ipaddress.ip_network(net, strict=False)
        fam = space.family(net.version)
        width = 32 if net.version == 4 else 128
        head |= fam
        cond |= fam & space.prefix(field, int(net.network_address), net.prefixlen, width)
    return (head if match.networks else space.true), cond


#: Up to this many blocks an address match is built block by block (a
#: block's bits are one cached cube); beyond (an ``-m iprange`` is ~40
#: blocks), as the ranges of addresses the blocks cover.
_FEW_NETWORKS = 4


def _address_ranges(field: str, networks, space: Space):
    """:func:`_address`'s ``(head, cond)`` for many blocks: the same sets,
    built as ``lo <= address <= hi`` per run of adjacent blocks (two
    comparisons of ``width`` nodes each, rather than a cube per block and
    the unions of ever bigger sets). Bits above ``width`` are left alone,
    as :meth:`Space.prefix` leaves them."""
    runs: dict[int, list[list[int]]] = {}
    for net in networks:
        if type(net) not in _NETWORK_TYPES:
            net = ipaddress.ip_network(net, strict=False)
        lo, width = int(net.network_address), 32 if net.version == 4 else 128
        runs.setdefault(net.version, []).append([lo, lo + (1 << width - net.prefixlen) - 1])
    head, cond = space.false, space.false
    for version, spans in runs.items():
        fam = space.family(version)
        width = 32 if version == 4 else 128
        spans.sort()
        merged = [spans[0]]
        for lo, hi in spans[1:]:
            last = merged[-1]
            if lo <= last[1] + 1:
                last[1] = max(last[1], hi)
            else:
                merged.append([lo, hi])
        within = space.false
        for lo, hi in merged:
            if lo == hi:  # one address (most cluster IPs): its cube, the same set in a third of the operations
                within |= space.cube_of(((field, lo, range(width)),))  # (not kept in the cube cache)
            else:
                within |= space.at_least(field, lo, width) & space.at_most(field, hi, width)
        head |= fam
        cond |= fam & within
    return head, cond


def _int(match: IntMatch, space: Space):
    field = FIELD_ALIASES.get(match.field, match.field)
    if field == "family":
        versions = {v for lo, hi in match.ranges for k, v in FAMILY_VALUES.items() if lo <= k <= hi}
        cond = space.false
        for v in versions:
            cond |= space.family(v)
        return space.true, cond
    if field in VIRTUAL_FIELDS:
        width = _virtual_width(field)
        top = (1 << width) - 1
        cond = space.false
        for lo, hi in match.ranges:
            lo, hi = max(lo, 0), min(hi, top)
            if hi - lo > 4096:
                return None  # wide ranges of a composed field: not built value by value
            for value in range(lo, hi + 1):
                cond |= _virtual_masked(field, top, value, space)
        return space.header(field), cond
    if field not in space.layout.fields or space.spec(field).kind != "int":
        return None
    cond = space.false
    for lo, hi in match.ranges:
        cond |= space.between(field, lo, hi)
    return space.header(field), cond


def _bits(match: BitsMatch, space: Space):
    field = FIELD_ALIASES.get(match.field, match.field)
    if field in VIRTUAL_FIELDS:
        covered = (1 << _virtual_width(field)) - 1 if field == "tos" else _virtual_bits(field)
        cond = space.false
        for v in match.values:
            if v & ~match.mask or v & ~covered:
                continue  # (x & mask) has no bits outside mask, nor the reserved bits set
            cond |= _virtual_masked(field, match.mask, v, space)
        return space.header(field), cond
    if field not in space.layout.fields or space.spec(field).kind != "int":
        return None
    width = space.spec(field).width
    mask = match.mask & ((1 << width) - 1)
    cond = space.false
    for v in match.values:
        if v & ~mask:
            continue
        cond |= space.masked(field, mask, v)
    return space.header(field), cond


def _virtual_width(field: str) -> int:
    return max(offset + width for _part, offset, width in VIRTUAL_FIELDS[field])


def _virtual_bits(field: str) -> int:
    """The bits of a composed field that some part holds (the others are 0)."""
    return sum(((1 << width) - 1) << offset for _part, offset, width in VIRTUAL_FIELDS[field])


def _virtual_masked(field: str, mask: int, value: int, space: Space):
    node = space.true
    for part, offset, width in VIRTUAL_FIELDS[field]:
        sub = (1 << width) - 1
        node &= space.masked(part, mask >> offset & sub, value >> offset & sub)
    return node


def _name(match: NameMatch, space: Space, absent: frozenset = frozenset()):
    field = FIELD_ALIASES.get(match.field, match.field)
    spec = space.layout.fields.get(field)
    if spec is None or spec.kind not in ("enum", "set") or field in ROUTE_DEPENDENT:
        return None
    values = {v.lower() for v in match.values}
    cond = space.false
    if spec.kind == "enum":
        for code, name in enumerate(spec.names):
            if name in values:
                cond |= space.eq(field, code)
        if field in ("ct_direction",):
            return space.header(field), cond
    else:  # set-valued: any shared name matches
        for name in spec.names:
            if name in values and not (field == "ct_status" and name in absent):
                cond |= space.bdd.var(f"{field}:{name}")
    return space.header(field), cond


def _interface(match: InterfaceMatch, space: Space):
    if match.field not in space.layout.interfaces:
        return None
    domain = space.layout.interfaces[match.field]
    codes: list[int] = []
    for pattern in match.names:
        prefix = _wildcard_prefix(pattern)
        known = pattern in domain.concrete if prefix is None else (prefix == "" or prefix in domain.prefixes)
        if not known:
            raise ValueError(f"interface {pattern!r} is outside this space's domain; "
                             "build the space with Layout.for_ruleset/for_matches")
        codes += domain.codes_for(pattern)
    return space.true, space.one_of(match.field, sorted(set(codes)))


def _address_type(match: NameMatch, space: Space, env: str):
    """``(lower, upper)`` of an addrtype / ``fib … type`` match where the
    hook decides it, exactly as the engine does (``engine.evaluate.
    _address_types`` and ``engine.match._address_type_v6``): the address
    itself decides broadcast/multicast; otherwise the role of the address
    on this path — ``local`` (input destination, output source),
    ``routed`` (forward destination) or ``remote`` (undecided, except that
    a remote address is never local, broadcast, multicast or anycast)."""
    field = "src" if match.field == "src_type" else "dst"
    values = frozenset(v.lower() for v in match.values)
    if field == "dst" and env == "arrive":
        ghost = space.bdd.var(LOCAL_GHOST)
        parts = [(ghost, "local"), (~ghost, "routed")]
    else:
        parts = [(space.true, "local" if (field == "src") == (env == "out") else "remote")]
    lower = upper = space.false
    for where, role in parts:
        for region, result in _type_regions(space, field, role, values):
            if match.negate and result is not None:
                result = not result
            if result is None:
                upper |= where & region
            elif result:
                lower |= where & region
                upper |= where & region
    return lower, upper


_V4_BROADCAST = 0xFFFFFFFF
_V4_MULTICAST = (0xE0000000, 4)
_V4_LOOPBACK = (0x7F000000, 8)
_V6_MULTICAST = (0xFF << 120, 8)
_REMOTE_NEVER = frozenset({"local", "broadcast", "multicast", "anycast"})
_V6_ROUTE_TYPES = frozenset({"local", "anycast", "unreachable", "blackhole", "prohibit", "throw"})


def _type_regions(space: Space, field: str, role: str, values: frozenset[str]):
    """``(region, True/False/None)``: the addresses of ``field`` split by
    what the match gives on them (None: undecided)."""
    v4, v6 = space.family(4), space.family(6)
    bcast = v4 & space.prefix(field, _V4_BROADCAST, 32, 32)
    mcast4 = v4 & space.prefix(field, _V4_MULTICAST[0], _V4_MULTICAST[1], 32)
    mcast6 = v6 & space.prefix(field, _V6_MULTICAST[0], _V6_MULTICAST[1], 128)
    zero6 = v6 & space.eq(field, 0)
    # Loopback addresses are LOCAL wherever they occur (engine._address_types;
    # a forwarded destination never is one: the kernel drops it as a martian).
    if role == "routed":
        loop4 = loop6 = space.false
    else:
        loop4 = v4 & space.prefix(field, _V4_LOOPBACK[0], _V4_LOOPBACK[1], 32)
        loop6 = v6 & space.eq(field, 1)
    yield bcast, "broadcast" in values
    yield mcast4, "multicast" in values
    yield loop4, "local" in values
    other4 = v4 & ~bcast & ~mcast4 & ~loop4
    if role == "local":
        yield other4, "local" in values
    elif role == "routed":
        yield other4, "unicast" in values
    else:
        yield other4, (False if values <= _REMOTE_NEVER else None)
    # IPv6: xt_addrtype's class-by-class rule (engine.match._address_type_v6).
    route = values & _V6_ROUTE_TYPES
    known = {"local": "local", "routed": "unicast"}.get(role)
    for region, is_mcast, is_zero, kind in ((mcast6, True, False, known), (zero6, False, True, known),
                                            (loop6, False, False, "local"),
                                            (v6 & ~mcast6 & ~zero6 & ~loop6, False, False, known)):
        if ("multicast" in values and not is_mcast) or ("unicast" in values and (is_mcast or is_zero)) \
                or ("unspec" in values and not is_zero):
            yield region, False
        elif not route:
            yield region, True
        elif is_mcast:
            yield region, "multicast" in route
        elif kind is not None:
            yield region, kind in route
        else:
            yield region, (False if route <= _REMOTE_NEVER else None)
