"""A packet set → one concrete, plausible :class:`~ruleanalyzer.model.Packet`.

The packet is steered towards what a real host sends — a SYN for a new TCP
connection, an ACK for an established one, a high source port, TTL 64, no
mark — whenever the set allows it; every preference is dropped the moment
it would leave the set, so the witness always lies inside it. Among the
packets left it is the first in the layout's canonical field order (bit by
bit, 0 before 1), whatever order the space keeps its BDD in.
"""

from __future__ import annotations

import ipaddress

from ..model import ACK, FIN, PSH, RST, SYN, Packet
from .fields import ICMP, ICMPV6, PORT_PROTOCOLS, TCP
from .packetset import PacketSet, Space, cofactors


def witness(packets: PacketSet, hook: str = "input", canonical: bool = True) -> Packet:
    """One packet of ``packets`` (raises ValueError when it is empty).
    ``canonical=False``: the first in the space's own order instead — the
    same packet whatever the set for a given layout, without copying the
    set into the canonical order (milliseconds for a large set: for
    candidates a caller tests and throws away)."""
    space = packets.space
    node = packets.node
    if node == space.false:
        raise ValueError("an empty packet set has no witness")
    # Each preference is kept when the set still meets the ones kept so far
    # and it: asked of CUDD's inclusion test (nothing built), and the set
    # narrowed once at the end. Past kube-proxy's DNATs a SYN set holds ~700k
    # nodes: narrowing it by each preference in turn was RA201's whole cost.
    kept = space.true
    for pref in _preferences(space):
        both = kept & pref
        if not space.disjoint(node, both):
            kept = both
    node = node & kept
    # The first packet in the canonical field order, whatever order the
    # walk's space keeps (the preferences above are sets: the same in both).
    if canonical:
        space, node = space.canonical(node)
    packet = _decode(space, _first_path(space, node), hook)
    if packet.src == packet.dst and not packet.src.is_loopback:
        # A host does not send itself routed traffic (1.0.0.1 -> 1.0.0.1 was
        # the witness of forwarded exposure): another destination, where
        # the set holds one. (Every preference above still holds: the
        # narrowed set only loses one address.)
        spec = space.spec("dst")
        point = space.true
        for b in range(spec.width):
            bit = space.bdd.var(spec.var(b))
            point &= bit if int(packet.dst) >> b & 1 else ~bit
        other = node & ~point
        if other != space.false:
            packet = _decode(space, _first_path(space, other), hook)
    return packet


def _first_path(space: Space, node) -> dict[str, bool]:
    """The assignment ``bdd.pick`` gives (its depth-first, else-branch-first
    first satisfying path; variables off the path are false), found by one
    walk down: from a node that is not false, the else branch is taken
    whenever it is not false. dd.cudd's ``pick`` copies the assignment at
    every level (quadratic in the ~460 levels of a packet: 12 ms a witness)."""
    bits: dict[str, bool] = {}
    false, true = space.false, space.true
    while node != true:
        low, high = cofactors(node)
        if low != false:
            bits[node.var] = False
            node = low
        else:
            bits[node.var] = True
            node = high
    return bits


def _preferences(space: Space):
    """Constraints tried in order; each is kept only if the set allows it."""
    cache = space.__dict__.get("_witness_prefs")
    if cache is not None:
        return cache
    tcp = space.eq("proto", TCP)
    state = space.spec("state").names
    new, est = space.eq("state", state.index("new")), space.eq("state", state.index("established"))
    plausible = space.false
    for flags in (SYN, ACK, SYN | ACK, ACK | PSH, FIN | ACK, RST, RST | ACK):
        plausible |= space.eq("flags", flags)
    prefs = [
        space.one_of("proto", [TCP, 17, ICMP, ICMPV6]),
        space.eq("fragment", 0),
        (new & (~tcp | space.eq("flags", SYN))) | (est & (~tcp | space.eq("flags", ACK))),
        ~tcp | plausible,
        new | est,
        space.eq("family", 0),
        ~space.header("dport") | space.at_least("sport", 1024),
        ~space.header("dport") | space.between("dport", 1, 65535),
        space.eq("icmp_type", 8) | space.eq("icmp_type", 128) | ~space.icmp,
        space.eq("ttl", 64),
        space.eq("mf", 0), space.eq("ip_options", 0), space.eq("ext_headers", 0), space.eq("ip_id", 0),
        ~(space.family(4) & space.eq("proto", TCP)) | space.eq("df", 1),
        space.between("length", 40, 1500),
        space.eq("mark", 0),
        space.eq("ctmark", 0),
        space.eq("ct_direction", 0),
        space.eq("pkttype", space.spec("pkttype").names.index("unicast")),
        space.eq("uid", 0), space.eq("gid", 0),
        # Documentation addresses read as examples in reports (a client in
        # TEST-NET-3, a server in TEST-NET-1), where the region allows them.
        _within(space, "src", "203.0.113.0/24", "2001:db8:c::/48"),
        _within(space, "dst", "192.0.2.0/24", "2001:db8:5::/48"),
        # Avoid network addresses (x.x.x.0) where the region allows a host.
        space.bdd.var(space.spec("src").var(0)),
        space.bdd.var(space.spec("dst").var(0)),
    ]
    space.__dict__["_witness_prefs"] = prefs
    return prefs


def _within(space: Space, field: str, v4: str, v6: str):
    """``field`` lies in the IPv4 network ``v4`` or the IPv6 network ``v6``."""
    out = space.false
    for text in (v4, v6):
        net = ipaddress.ip_network(text)
        out |= space.between(field, int(net.network_address), int(net.broadcast_address))
    return out


def _value(space: Space, bits: dict, name: str) -> int:
    spec = space.spec(name)
    return sum(1 << b for b in range(spec.width) if bits.get(spec.var(b), False))


def _decode(space: Space, bits: dict, hook: str) -> Packet:
    family = 6 if _value(space, bits, "family") else 4
    mk = ipaddress.IPv6Address if family == 6 else ipaddress.IPv4Address
    src, dst = (mk(_value(space, bits, n) & ((1 << (128 if family == 6 else 32)) - 1))
                for n in ("src", "dst"))
    proto = _value(space, bits, "proto")
    whole = not _value(space, bits, "fragment")
    has_ports = whole and proto in PORT_PROTOCOLS
    is_icmp = whole and proto == (ICMPV6 if family == 6 else ICMP)

    def name(field: str) -> str:
        return space.spec(field).names[_value(space, bits, field)]

    def names(field: str) -> frozenset[str]:
        return frozenset(n for n in space.spec(field).names if bits.get(f"{field}:{n}", False))

    def iface(field: str, other_than: str | None = None) -> str:
        return space.layout.interfaces[field].example(_value(space, bits, field), other_than)

    # A packet that goes out by another interface of its way in's wildcard
    # class is shown leaving by another name of it, not as a hairpin.
    iif = iface("iif")
    oif = iface("oif", other_than=iif)

    return Packet(
        src=src, dst=dst, proto=proto,
        sport=_value(space, bits, "sport") if has_ports else None,
        dport=_value(space, bits, "dport") if has_ports else None,
        flags=_value(space, bits, "flags") if proto == TCP and whole else 0,
        ecn=_value(space, bits, "ecn"), dscp=_value(space, bits, "dscp"),
        state=name("state"), hook=hook, iif=iif, oif=oif,
        icmp_type=_value(space, bits, "icmp_type") if is_icmp else None,
        icmp_code=_value(space, bits, "icmp_code") if is_icmp else None,
        mark=_value(space, bits, "mark"), ctmark=_value(space, bits, "ctmark"),
        ct_status=names("ct_status"), ct_direction=name("ct_direction"),
        length=_value(space, bits, "length"), ttl=_value(space, bits, "ttl"),
        fragment=_value(space, bits, "fragment"), pkttype=name("pkttype"),
        frag_off=_value(space, bits, "frag_off"), mf=_value(space, bits, "mf"),
        df=_value(space, bits, "df"), ip_id=_value(space, bits, "ip_id"),
        ip_options=_value(space, bits, "ip_options"), ext_headers=_value(space, bits, "ext_headers"),
        # Address types are the hook's to decide (the space keeps only a
        # ghost bit for them): the engine derives them as the kernel would.
        src_type=None, dst_type=None,
        uid=_value(space, bits, "uid"), gid=_value(space, bits, "gid"),
    )
