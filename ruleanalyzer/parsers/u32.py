"""``-m u32 --u32 "…"``: the idioms people write, decoded into model matches.

xt_u32 reads 32-bit big-endian words of the packet from the IPv4 header on,
masks and shifts them, and ``@`` moves the read position by the value so
far (``0>>22&0x3C@`` is "by the header length": to the TCP header). A test
holds when the value lies in one of its ranges; ``&&`` joins tests.

Where every bit a test finally compares is a bit of one header field the
model has — the TCP flags byte (``0>>22&0x3C@12>>16&0x3F=0x02``), the TOS
byte (``0&0x00FF0000=0x00100000``), the fragment word
(``4&0x1FFF=1:0x1FFF``), the total length (``0&0xFFFF=0:100``), the TTL,
the protocol, the ports — the test becomes a :class:`BitsMatch` on that
field, exact in the engine and in the packet space. Everything else (the
sequence number, payload bytes, checksums, a header this layout does not
cover) stays unknown.

A read of the transport header is exact only for TCP (for UDP/ICMP only the
first four bytes are known: ports, type and code) and only in a packet
that has one: a non-first fragment's bytes there are payload, unknown. A
read at a fixed offset past byte 20 without the header-length jump assumes
a packet without IP options; with options it is unknown.
"""

from __future__ import annotations

import re

from ..model import AllOf, AnyOf, BitsMatch, IntMatch, Match, OpaqueMatch

#: An IPv4 header without options: byte offset → (field, bit of the field
#: for the byte's most significant bit). Bytes 10-11 (checksum) are unknown.
_IP_FIELDS = {1: ("tos", 7), 2: ("length", 15), 3: ("length", 7), 4: ("ip_id", 15), 5: ("ip_id", 7),
              6: ("ipfrag", 15), 7: ("ipfrag", 7), 8: ("ttl", 7), 9: ("proto", 7),
              12: ("src", 31), 13: ("src", 23), 14: ("src", 15), 15: ("src", 7),
              16: ("dst", 31), 17: ("dst", 23), 18: ("dst", 15), 19: ("dst", 7)}
#: The transport header: the ports of every port protocol, TCP's flags.
_L4_FIELDS = {0: ("sport", 15), 1: ("sport", 7), 2: ("dport", 15), 3: ("dport", 7)}
_TCP_FIELDS = {13: ("flags", 7)}
_ICMP_FIELDS = {0: ("icmp_type", 7), 1: ("icmp_code", 7)}
#: Most field bits one test may compare (the values are enumerated).
MAX_BITS = 16
#: Widths of the fields whose whole value a test may compare as a range.
FIELD_BITS = {"length": 16, "ip_id": 16, "ttl": 8, "proto": 8, "tos": 8, "sport": 16, "dport": 16,
              "icmp_type": 8, "icmp_code": 8}


#: A bit the model does not hold (a checksum, a sequence number, payload).
UNKNOWN = "?"


class _Unknown(Exception):
    """The expression reads something the model does not hold."""


def _byte(origin: str, offset: int, proto: int, notes: set) -> list:
    """The 8 bits (most significant first) of the byte at ``offset`` from
    ``origin`` (``ip`` or ``l4``): 0/1, ``("ihl", b)`` or ``(field, bit)``."""
    if origin == "ip" and offset >= 20:
        notes.add("no-options")
        origin, offset = "l4", offset - 20
    if origin == "ip":
        if offset == 0:
            return [0, 1, 0, 0] + [("ihl", b) for b in (3, 2, 1, 0)]
        if offset not in _IP_FIELDS:
            return [UNKNOWN] * 8
        field, top = _IP_FIELDS[offset]
        return [(field, top - i) for i in range(8)]
    notes.add("l4")
    table = _ICMP_FIELDS if proto == 1 else {**_L4_FIELDS, **(_TCP_FIELDS if proto == 6 else {})}
    if offset not in table:
        return [UNKNOWN] * 8  # sequence numbers, checksums, payload…
    field, top = table[offset]
    return [(field, top - i) for i in range(8)]


def _word(origin: str, offset: int, proto: int, notes: set) -> list:
    """32 bits, index 0 the least significant."""
    bits = []
    for k in range(4):
        bits += _byte(origin, offset + k, proto, notes)
    return list(reversed(bits))


_TOKEN = re.compile(r"0x[0-9a-fA-F]+|\d+|&&|<<|>>|[&@=:,]")


def _number(text: str) -> int:
    return int(text, 0)


def _evaluate(location: list[str], proto: int, notes: set) -> list:
    """The value of a location (tokens) as 32 symbolic bits."""
    origin, base = "ip", 0
    value = _word(origin, base + _number(location[0]), proto, notes)
    i = 1
    while i < len(location):
        op, arg = location[i], _number(location[i + 1])
        i += 2
        if op == "&":
            value = [b if arg >> k & 1 else 0 for k, b in enumerate(value)]
        elif op == "<<":
            value = ([0] * arg + value)[:32]
        elif op == ">>":
            value = (value[arg:] + [0] * arg)[:32]
        elif op == "@":
            if UNKNOWN in value:
                raise _Unknown
            if _is_header_length(value):
                origin, base = "l4", 0
            elif all(b in (0, 1) for b in value):
                base += sum(b << k for k, b in enumerate(value))
            else:
                raise _Unknown
            value = _word(origin, base + arg, proto, notes)
        else:
            raise _Unknown
    return value


def _is_header_length(value: list) -> bool:
    """``value`` is the IP header length in bytes (IHL × 4)."""
    return value[2:6] == [("ihl", 0), ("ihl", 1), ("ihl", 2), ("ihl", 3)] and \
        all(b == 0 for k, b in enumerate(value) if not 2 <= k < 6)


def _test_match(value: list, ranges: list[tuple[int, int]], notes: set) -> Match:
    """The model match of "``value`` lies in ``ranges``"."""
    if UNKNOWN in value:
        raise _Unknown
    fields = {b[0] for b in value if isinstance(b, tuple)}
    if "ihl" in fields:
        notes.add("no-options")  # IHL 5: no options
        value = [((5 >> b[1]) & 1) if isinstance(b, tuple) and b[0] == "ihl" else b for b in value]
        fields.discard("ihl")
    constant = sum(b << k for k, b in enumerate(value) if b == 1)
    if not fields:
        hit = any(lo <= constant <= hi for lo, hi in ranges)
        return AllOf(()) if hit else AnyOf(())
    if len(fields) != 1:
        raise _Unknown
    field = fields.pop()
    places = [(k, b[1]) for k, b in enumerate(value) if isinstance(b, tuple)]
    if len(places) > MAX_BITS:
        raise _Unknown
    mask = sum(1 << fb for _k, fb in places)
    shifts = {k - fb for k, fb in places}
    width = FIELD_BITS.get(field)
    if width is not None and len(shifts) == 1 and mask == (1 << width) - 1 and constant == 0:
        # the whole field, moved: a range of it (0&0xFFFF=0:100 is "length 0-100")
        shift = shifts.pop()
        spans = [((lo + (1 << shift) - 1) >> shift if shift > 0 else lo << -shift,
                  hi >> shift if shift > 0 else hi << -shift) for lo, hi in ranges]
        return IntMatch(field, tuple((lo, min(hi, mask)) for lo, hi in spans if lo <= min(hi, mask)))
    values = set()
    for combo in range(1 << len(places)):
        v, fv = constant, 0
        for j, (k, fb) in enumerate(places):
            if combo >> j & 1:
                v |= 1 << k
                fv |= 1 << fb
        if any(lo <= v <= hi for lo, hi in ranges):
            values.add(fv)
    if len(values) > (1 << len(places)) // 2:
        # fewer values say it the other way round (4&0x1FFF=1:0x1FFF: "offset not 0")
        others = frozenset(_masked_values(places)) - values
        return BitsMatch(field, mask, others, negate=True)
    return BitsMatch(field, mask, frozenset(values))


def _masked_values(places: list) -> list[int]:
    return [sum(1 << fb for j, (_k, fb) in enumerate(places) if combo >> j & 1)
            for combo in range(1 << len(places))]


def _parse(expr: str) -> list[tuple[list[str], list[tuple[int, int]]]]:
    tests = []
    for part in expr.split("&&"):
        tokens = _TOKEN.findall(part)
        if "".join(tokens) != re.sub(r"\s+", "", part) or "=" not in tokens:
            raise _Unknown
        at = tokens.index("=")
        location, rest = tokens[:at], tokens[at + 1:]
        if not location or len(location) % 2 == 0:
            raise _Unknown
        ranges, j = [], 0
        while j < len(rest):
            lo = _number(rest[j])
            hi = lo
            if j + 2 < len(rest) + 1 and j + 1 < len(rest) and rest[j + 1] == ":":
                hi = _number(rest[j + 2])
                j += 2
            ranges.append((lo, hi))
            j += 1
            if j < len(rest):
                if rest[j] != ",":
                    raise _Unknown
                j += 1
        tests.append((location, ranges))
    return tests


def decode(expr: str, family: str, negate: bool = False, text: str = "") -> Match | None:
    """The model match of ``--u32 expr`` (``negate``: ``! --u32``), or None
    when it reads something the model does not hold."""
    if family not in ("ip", "ipv4", "4"):
        return None
    try:
        tests = _parse(expr.strip().strip('"'))
    except (_Unknown, ValueError, IndexError):
        return None
    reason = f"depends on bytes u32 reads ({expr.strip()})"
    by_proto: dict[int, tuple[list[Match], set]] = {}
    decoded = False
    for proto in (6, 17, 1):
        notes: set = set()
        parts: list[Match] = []
        for loc, ranges in tests:
            try:
                parts.append(_test_match(_evaluate(loc, proto, notes), ranges, notes))
                decoded = True
            except (_Unknown, ValueError, IndexError):
                # this protocol's header does not hold what the test reads
                parts.append(OpaqueMatch(reason=reason))
        by_proto[proto] = (parts, notes)
    if not decoded:
        return None

    def holds(parts: list[Match]) -> Match:
        # "! --u32" inverts the whole match (xt_u32: ret ^ invert); each part
        # is read where its header exists, so negating the parts is exact
        if not negate:
            return AllOf(tuple(parts))
        flipped = [AnyOf(()) if p == AllOf(()) else AllOf(()) if p == AnyOf(()) else p.negated()
                   for p in parts]
        return AnyOf(tuple(flipped))

    tcp_parts, tcp_notes = by_proto[6]
    if "l4" not in tcp_notes:
        core = holds(tcp_parts)
    else:
        # per transport protocol; a non-first fragment has no transport header
        whole = IntMatch("fragment", ((0, 0),))
        branches = [AllOf((IntMatch("proto", ((p, p),)), whole, holds(by_proto[p][0]))) for p in (6, 17, 1)]
        others = AnyOf((IntMatch("proto", ((6, 6), (17, 17), (1, 1)), negate=True),
                        IntMatch("fragment", ((1, 1),))))
        branches.append(AllOf((others, OpaqueMatch(reason=reason))))
        core = AnyOf(tuple(branches))
    if any("no-options" in notes for _parts, notes in by_proto.values()):
        core = AnyOf((AllOf((IntMatch("ip_options", ((0, 0),)), core)),
                      AllOf((IntMatch("ip_options", ((1, 1),)), OpaqueMatch(reason=reason)))))
    return AllOf((core,), text=text)
