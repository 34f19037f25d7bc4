"""A packet set → a short list of readable regions.

The BDD is walked field by field in the layout's canonical order (the
same whatever order the space keeps: ``Space.canonical``). Within one field the
paths are collected as ternary cubes (value, care-mask) and grouped by the
sub-diagram they lead to — canonical BDDs make "same remaining condition"
a node identity check — so each region is a product of per-field value
sets: CIDRs for addresses, ranges for ports, names for protocols, states
and interfaces, ``value/mask`` for flags and marks. Fields a region leaves
free are omitted, as are headers its protocols do not have.
"""

from __future__ import annotations

import ipaddress

from ..model import PROTOCOL_NAMES, TCP_FLAG_BITS
from .encode import LOCAL_GHOST
from .fields import ICMP, ICMPV6, PORT_PROTOCOLS, TCP, FieldSpec
from .packetset import PacketSet, Space, cofactors

Cube = tuple[int, int]  # (value, care mask)


def describe(packets: PacketSet, limit: int = 20) -> list[str]:
    """Up to ``limit`` regions covering ``packets`` exactly, then
    ``… and K more`` if there are more."""
    space = packets.space
    if packets.is_empty():
        return []
    if packets.is_all():
        return ["any packet"]
    space, whole, node = readable(packets)
    walker = _Walker(space)
    regions: list[dict[str, list[Cube]]] = []
    walker.enumerate(node, 0, {}, regions, limit)
    lines = [_render(space, r, whole) for r in regions]
    total = walker.count(node, 0)
    if total > len(lines):
        lines.append(f"… and {total - len(lines)} more")
    return lines


def readable(packets: PacketSet, care: PacketSet | None = None):
    """``(space, whole, node)``: ``packets`` as :func:`describe` walks them,
    in the layout's canonical field order (``Space.canonical``: the same
    regions whichever order the set was made in), without the ghost bit:
    ``whole`` exactly (within ``care``), ``node`` simplified against
    ``care`` (default: the valid packets). ``whole`` is what the simplified
    regions stand for: :func:`_render` names only the states and
    interfaces its packets have."""
    space, whole = packets.space.canonical(unghost(packets.space, packets.node))
    if care is None:
        # Invalid packets are don't-cares: simplifying against validity
        # stops pinned headers (no ports on ICMP …) from splitting every region.
        care_node = space.valid
    else:
        care_node = packets.space.canonical(care.node)[1]
    return space, whole & care_node, restrict(space, whole, care_node)


def region_node(space: Space, region: dict):
    """The packets of one enumerated region (its cubes per field)."""
    node = space.true
    for name, cubes in region.items():
        spec = space.spec(name)
        order = spec.vars_msb_first
        width = len(order)
        part = space.false
        for value, care in cubes:
            cube = {order[k]: bool(value >> (width - 1 - k) & 1) for k in range(width)
                    if care >> (width - 1 - k) & 1}
            part |= space.bdd.cube(cube) if cube else space.true
        node &= part
    return node


def unghost(space: Space, node):
    """``node`` without the walk's ghost bit (which path a packet takes is
    not a header field; see ``space.reach.arrival``)."""
    return space.exist([LOCAL_GHOST], node)


def restrict(space: Space, f, care):
    """A small BDD equal to ``f`` wherever ``care`` holds (Coudert–Madre
    restrict): CUDD's own (``Cudd_bddRestrict``, which dd.cudd exports as a
    module function; ~20× the Python walk below, which the pure-Python
    backend uses)."""
    native = getattr(_bdd_module(space), "restrict", None)
    if native is not None:
        return native(f, care)
    bdd, memo = space.bdd, {}

    def level(u) -> int:
        return u.level if u.var is not None else 1 << 30

    def go(f, c):
        if c == space.true or f == space.true or f == space.false:
            return f
        if c == space.false:
            return space.false
        if f == c:
            return space.true
        if f == ~c:
            return space.false
        key = (f, c)
        if key in memo:
            return memo[key]
        if level(c) < level(f):
            c0, c1 = cofactors(c)
            result = go(f, c0 | c1)
        else:
            x = bdd.var(f.var)
            c0, c1 = cofactors(c) if level(c) == level(f) else (c, c)
            f0, f1 = cofactors(f)
            if c0 == space.false:
                result = go(f1, c1)
            elif c1 == space.false:
                result = go(f0, c0)
            else:
                result = bdd.ite(x, go(f1, c1), go(f0, c0))
        memo[key] = result
        return result

    result = go(f, care)
    # ``go`` refers to itself through its closure: unbind it, or the cycle
    # (holding BDD nodes) outlives the manager and dd complains at exit.
    go = None  # noqa: F841
    return result


def _bdd_module(space: Space):
    """The dd module of ``space``'s manager (``dd.cudd`` or ``dd.autoref``)."""
    import sys

    return sys.modules.get(type(space.bdd).__module__)


class _Walker:
    def __init__(self, space: Space):
        self.space = space
        self.specs: list[FieldSpec] = list(space.layout.fields.values())
        self._groups: dict = {}
        self._counts: dict = {}

    def groups(self, node, fi: int) -> list[tuple[object, list[Cube]]]:
        """Sub-diagrams after field ``fi`` and the cubes of that field leading to each."""
        key = (node, fi)
        if key in self._groups:
            return self._groups[key]
        spec = self.specs[fi]
        order = spec.vars_msb_first
        width = len(order)
        out: dict = {}

        def split(u, k: int, value: int, care: int) -> None:
            if u == self.space.false:
                return
            if k == width:
                out.setdefault(u, []).append((value, care))
                return
            bit = 1 << (width - 1 - k)
            if u.var != order[k]:
                split(u, k + 1, value, care)
                return
            low, high = cofactors(u)
            split(low, k + 1, value, care | bit)
            split(high, k + 1, value | bit, care | bit)

        split(node, 0, 0, 0)
        split = None  # noqa: F841 - break the closure's cycle (see restrict)
        result = sorted(out.items(), key=lambda kv: min(v for v, _ in kv[1]))
        self._groups[key] = result
        return result

    def count(self, node, fi: int) -> int:
        """How many regions the enumeration would give."""
        if fi == len(self.specs):
            return 1
        key = (node, fi)
        if key not in self._counts:
            self._counts[key] = sum(self.count(child, fi + 1) for child, _ in self.groups(node, fi))
        return self._counts[key]

    def enumerate(self, node, fi: int, current: dict, out: list, limit: int) -> None:
        if len(out) >= limit:
            return
        if fi == len(self.specs):
            out.append(dict(current))
            return
        name = self.specs[fi].name
        for child, cubes in self.groups(node, fi):
            current[name] = cubes
            self.enumerate(child, fi + 1, current, out, limit)
            if len(out) >= limit:
                break
        current.pop(name, None)


# -- rendering ---------------------------------------------------------------


def _intervals(cubes: list[Cube], width: int) -> list[tuple[int, int]] | None:
    """Cubes as merged inclusive intervals, or None if one is not a prefix."""
    full = (1 << width) - 1
    spans = []
    for value, care in cubes:
        free = full & ~care
        if free & (free + 1):  # free bits not a contiguous low block
            return None
        spans.append((value, value | free))
    spans.sort()
    merged = [list(spans[0])]
    for lo, hi in spans[1:]:
        if lo <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return [(a, b) for a, b in merged]


def _values(cubes: list[Cube], width: int, size: int | None = None) -> set[int] | None:
    spans = _intervals(cubes, width)
    if spans is None or sum(b - a + 1 for a, b in spans) > 4096:
        return None
    return {v for a, b in spans for v in range(a, b + 1) if size is None or v < size}


def _cube_values(cubes: list[Cube], width: int, size: int) -> set[int]:
    """The codes below ``size`` some (value, care-mask) cube holds — for the
    small name fields, whose cubes need not be intervals once a region was
    simplified against a care set."""
    return {v for v in range(min(1 << width, size)) if any(v & c == val & c for val, c in cubes)}


def _is_full(cubes: list[Cube], width: int, size: int) -> bool:
    spans = _intervals(cubes, width)
    return spans is not None and spans[0][0] == 0 and spans[0][1] >= size - 1


def _render(space: Space, region: dict[str, list[Cube]], whole=None) -> str:
    """One region's line. With ``whole`` (the packets the simplified
    regions stand for), a state or interface is named only where a packet
    of the region has it: simplifying against validity may widen a cube to
    values only invalid packets would have (``state untracked`` beside
    ``ct_status dnat``)."""
    inside = None
    fams = _values(region["family"], 1)
    families = {6 if f else 4 for f in fams}
    protos = _values(region["proto"], 8) or set(range(256))
    head = []
    if _is_full(region["proto"], 8, 256):
        head.append({frozenset({4}): "ip", frozenset({6}): "ip6"}.get(frozenset(families), "ip/ip6"))
    else:
        head.append(_render_ints(region["proto"], 8, lambda v: PROTOCOL_NAMES.get(v, str(v))))
    head.append("from " + _render_addr(region["src"], families))
    head.append("to " + _render_addr(region["dst"], families))
    if protos & PORT_PROTOCOLS:
        for port in ("sport", "dport"):
            if not _is_full(region[port], 16, 1 << 16):
                head.append(f"{port} " + _render_ints(region[port], 16, str))
    extras = []
    if TCP in protos and not _is_full(region["flags"], 9, 1 << 9):
        extras.append("flags " + " or ".join(_render_flags(c) for c in region["flags"]))
    if protos & {ICMP, ICMPV6}:
        for f in ("icmp_type", "icmp_code"):
            if not _is_full(region[f], 8, 256):
                extras.append(f"{f.replace('_', ' ')} " + _render_ints(region[f], 8, str))
    for name, spec in space.layout.fields.items():
        if name in ("family", "proto", "src", "dst", "sport", "dport", "flags", "icmp_type",
                    "icmp_code"):
            continue
        cubes = region[name]
        if spec.kind in ("enum", "iface"):
            if not _is_full(cubes, spec.width, spec.size):
                vals = _values(cubes, spec.width, spec.size) or _cube_values(cubes, spec.width, spec.size)
                if whole is not None:
                    if inside is None:
                        inside = region_node(space, region) & whole
                    held = {v for v in vals if not space.disjoint(inside, space.eq(name, v))}
                    vals = held or vals
                extras.append(f"{name} " + ",".join(spec.names[v] for v in sorted(vals)))
        elif spec.kind == "set":
            if not _is_full(cubes, spec.width, spec.size):
                extras.append(f"{name} " + " or ".join(_render_set(spec, c) for c in cubes))
        elif not _is_full(cubes, spec.width, spec.size):
            extras.append(f"{name} " + _render_ints(cubes, spec.width, _hex if name in ("mark", "ctmark") else str))
    text = " ".join(head)
    return text + (", " + ", ".join(extras) if extras else "")


def _hex(v: int) -> str:
    return hex(v)


def _render_ints(cubes: list[Cube], width: int, fmt) -> str:
    spans = _intervals(cubes, width)
    if spans is None:
        return " or ".join(f"{fmt(v)}/{_hex(c)}" for v, c in cubes)
    parts = [fmt(a) if a == b else f"{fmt(a)}-{fmt(b)}" for a, b in spans]
    return parts[0] if len(parts) == 1 else "{" + ",".join(parts) + "}"


def _render_addr(cubes: list[Cube], families: set[int]) -> str:
    if len(families) != 1:
        return "any"
    (fam,) = families
    width = 32 if fam == 4 else 128
    mk = ipaddress.IPv4Address if fam == 4 else ipaddress.IPv6Address
    low = (1 << width) - 1
    # IPv4 lives in the low 32 bits; the upper bits are don't-cares here.
    cubes = [(v & low, c & low) for v, c in cubes]
    spans = _intervals(cubes, width)
    if spans is None:
        return " or ".join(f"{mk(v & low)}/{_hex(c & low)}" for v, c in cubes)
    nets = []
    for a, b in spans:
        nets += ipaddress.summarize_address_range(mk(a & low), mk(b & low))
    text = [str(n) for n in nets[:8]] + ([f"… {len(nets) - 8} more"] if len(nets) > 8 else [])
    return text[0] if len(text) == 1 else "{" + ",".join(text) + "}"


def _render_flags(cube: Cube) -> str:
    value, care = cube
    names = [n for n, b in TCP_FLAG_BITS.items() if value & b]
    cared = [n for n, b in TCP_FLAG_BITS.items() if care & b]
    if care == (1 << 9) - 1:
        return ",".join(names) or "none"
    return f"{','.join(names) or 'none'}/{','.join(cared)}"


def _render_set(spec: FieldSpec, cube: Cube) -> str:
    value, care = cube
    width = len(spec.names)
    parts = []
    for k, name in enumerate(spec.names):
        bit = 1 << (width - 1 - k)
        if care & bit:
            parts.append(name if value & bit else f"!{name}")
    return "+".join(parts)
