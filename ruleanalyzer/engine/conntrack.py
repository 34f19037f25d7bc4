"""The connection-tracking state the kernel gives a packet.

These are the rules of ``nf_conntrack`` that decide what ``--ctstate`` and
``ct state`` see, checked against a real kernel (the project's kernel tests):

- TCP packets with an invalid flag combination are INVALID whatever the
  connection (``tcp_valid_flags`` in nf_conntrack_proto_tcp.c; ECE, CWR and
  PSH are ignored for that check, so ECN SYNs are fine);
- with no connection yet, a SYN is NEW; a bare ACK is NEW too (the kernel
  picks up connections mid-stream, ``nf_conntrack_tcp_loose=1``); a SYN-ACK,
  a FIN or an RST is INVALID — so ``--state NEW`` rules never see a SYN-ACK;
- ICMP echo/timestamp/info/address-mask requests are NEW, replies and
  errors with no connection are INVALID; ICMPv6 neighbour discovery and MLD
  are UNTRACKED;
- chains that run before conntrack (priority < -200, the raw table) see no
  connection: ``ct state`` is INVALID there unless NOTRACK made it UNTRACKED.
"""

from __future__ import annotations

from ..model import ACK, CWR, ECE, FIN, PSH, RST, SYN, URG, Packet

#: Flag combinations conntrack accepts (after masking ECE, CWR, PSH).
VALID_TCP_FLAGS = frozenset({SYN, SYN | URG, SYN | ACK, RST, RST | ACK, FIN | ACK,
                             FIN | ACK | URG, ACK, ACK | URG})

#: ICMP types that may open a connection (echo, timestamp, info, mask requests).
ICMP_NEW_TYPES = frozenset({8, 13, 15, 17})
ICMP_ERROR_TYPES = frozenset({3, 4, 5, 11, 12})
ICMPV6_NEW_TYPES = frozenset({128, 139})
ICMPV6_ERROR_TYPES = frozenset({1, 2, 3, 4})
#: ICMPv6 types conntrack leaves untracked (MLD, router/neighbour discovery).
ICMPV6_UNTRACKED_TYPES = frozenset({130, 131, 132, 133, 134, 135, 136, 143})
ICMP_REPLY_TYPES = frozenset({0, 14, 16, 18, 129, 140})


def tcp_flags_valid(flags: int) -> bool:
    """Would conntrack accept this flag combination at all?"""
    return (flags & 0xFF & ~(ECE | CWR | PSH)) in VALID_TCP_FLAGS


def first_packet_state(packet: Packet) -> tuple[str, str]:
    """The ctstate of a packet for which no connection exists yet, and why."""
    if packet.fragment:
        return "invalid", "a non-first fragment cannot be tracked"
    if packet.proto == 6:
        flags = packet.flags
        if not tcp_flags_valid(flags):
            return "invalid", "conntrack rejects this TCP flag combination"
        if flags & RST:
            return "invalid", "an RST with no connection is INVALID to conntrack"
        if flags & SYN:
            if flags & ACK:
                return "invalid", "a SYN-ACK with no connection is INVALID to conntrack (never NEW)"
            return "new", "a SYN opens a new connection"
        if flags & FIN:
            return "invalid", "a FIN with no connection is INVALID to conntrack"
        return "new", "conntrack picks up an ACK with no connection as NEW (nf_conntrack_tcp_loose)"
    if packet.proto == 1 and packet.family == 4:
        if packet.icmp_type in ICMP_NEW_TYPES:
            return "new", "an ICMP request opens a new connection"
        return "invalid", "an ICMP reply or error with no connection is INVALID"
    if packet.proto == 58 and packet.family == 6:
        if packet.icmp_type in ICMPV6_UNTRACKED_TYPES:
            return "untracked", "conntrack does not track ICMPv6 neighbour discovery and MLD"
        if packet.icmp_type in ICMPV6_NEW_TYPES:
            return "new", "an ICMPv6 request opens a new connection"
        return "invalid", "an ICMPv6 reply or error with no connection is INVALID"
    return "new", "the first packet of a flow is NEW"


def resolve_state(packet: Packet) -> tuple[str, str]:
    """The ctstate rules will see for ``packet`` and a note on why.

    ``packet.state`` may be a ctstate, ``new`` (no connection exists yet: the
    kernel decides, see :func:`first_packet_state`) or ``auto`` (a packet
    without ACK starts a connection; any other belongs to one whose start
    passed).
    """
    state = packet.state
    if state == "untracked":
        return "untracked", "the packet is not tracked"
    if packet.proto == 6 and not tcp_flags_valid(packet.flags) and state != "invalid":
        return "invalid", "conntrack rejects this TCP flag combination"
    if state == "auto":
        if packet.proto == 6:
            if packet.flags & ACK or packet.flags & RST or packet.flags & FIN:
                return "established", "assumed: an ACK/FIN/RST belongs to a connection whose start passed"
            return first_packet_state(packet)
        if packet.proto in (1, 58) and packet.icmp_type is not None:
            if packet.icmp_type in ICMP_REPLY_TYPES:
                return "established", "assumed: an ICMP reply belongs to an earlier request"
            if packet.icmp_type in (ICMP_ERROR_TYPES | ICMPV6_ERROR_TYPES):
                return "related", "assumed: an ICMP error relates to a tracked connection"
        return first_packet_state(packet)
    if state == "new":
        return first_packet_state(packet)
    return state, ""
