"""Craft raw IPv4/IPv6 TCP/UDP/ICMP packets with ``struct`` (no scapy).

Every crafted packet ends with an 8-byte *marker* trailer (``MAGIC`` plus a
32-bit id) so the harness can recognise its copy on a raw socket. The
functions return bytes of the whole IP packet; :func:`ethernet` wraps one in
an Ethernet frame for an AF_PACKET socket.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

MAGIC = b"RAk!"
MARKER_LEN = 8
ETH_P_IP, ETH_P_IPV6 = 0x0800, 0x86DD
TCP, UDP, ICMP, ICMPV6 = 6, 17, 1, 58


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def marker(ident: int) -> bytes:
    """The trailer that identifies packet ``ident``."""
    return MAGIC + struct.pack("!I", ident)


def find_marker(data: bytes) -> int | None:
    """The id of the marker at the end of ``data``, if there is one."""
    if len(data) >= MARKER_LEN and data[-MARKER_LEN:-4] == MAGIC:
        return struct.unpack("!I", data[-4:])[0]
    return None


@dataclass(frozen=True)
class Spec:
    """What to put on the wire. ``payload`` is the bytes between the L4
    header and the marker (ICMP errors carry the quoted packet there)."""

    src: str
    dst: str
    proto: int
    sport: int = 0
    dport: int = 0
    flags: int = 0
    seq: int = 1000
    ack: int = 0
    icmp_type: int = 8
    icmp_code: int = 0
    icmp_id: int = 1
    ecn: int = 0
    dscp: int = 0
    ttl: int = 64
    df: int = 0  # IPv4 Don't Fragment
    payload: bytes = b""
    ident: int = 0
    with_marker: bool = True


def _pseudo_header(src, dst, proto: int, length: int) -> bytes:
    if src.version == 4:
        return src.packed + dst.packed + struct.pack("!BBH", 0, proto, length)
    return src.packed + dst.packed + struct.pack("!I3xB", length, proto)


def transport(spec: Spec) -> bytes:
    """The L4 header and data, with a correct checksum."""
    src, dst = ipaddress.ip_address(spec.src), ipaddress.ip_address(spec.dst)
    data = spec.payload + (marker(spec.ident) if spec.with_marker else b"")
    if spec.proto == TCP:
        # Flags beyond the byte (AE, 0x100) live in the low bit of the
        # data-offset byte, where the reserved bits are.
        offset_byte = (5 << 4) | ((spec.flags >> 8) & 0x1)
        header = struct.pack("!HHIIBBHHH", spec.sport, spec.dport, spec.seq, spec.ack,
                             offset_byte, spec.flags & 0xFF, 64240, 0, 0)
        segment = header + data
        csum = checksum(_pseudo_header(src, dst, TCP, len(segment)) + segment)
        return segment[:16] + struct.pack("!H", csum) + segment[18:]
    if spec.proto == UDP:
        length = 8 + len(data)
        segment = struct.pack("!HHHH", spec.sport, spec.dport, length, 0) + data
        csum = checksum(_pseudo_header(src, dst, UDP, length) + segment) or 0xFFFF
        return segment[:6] + struct.pack("!H", csum) + segment[8:]
    if spec.proto in (ICMP, ICMPV6):
        # Queries and their replies carry an id that conntrack keys flows
        # on (echo, timestamp, information, address mask; ICMPv6 echo).
        if spec.icmp_type in ((0, 8, 13, 14, 15, 16, 17, 18) if spec.proto == ICMP else (128, 129)):
            rest = struct.pack("!HH", spec.icmp_id, 1)
        else:  # errors: unused/MTU word, then the quoted packet in payload
            rest = b"\0\0\0\0"
        message = struct.pack("!BBH", spec.icmp_type, spec.icmp_code, 0) + rest + data
        if spec.proto == ICMP:
            csum = checksum(message)
        else:
            csum = checksum(_pseudo_header(src, dst, ICMPV6, len(message)) + message)
        return message[:2] + struct.pack("!H", csum) + message[4:]
    raise ValueError(f"cannot craft protocol {spec.proto}")


def ip_packet(spec: Spec) -> bytes:
    """The whole IP packet (v4 or v6 by the address family of ``spec.src``)."""
    src, dst = ipaddress.ip_address(spec.src), ipaddress.ip_address(spec.dst)
    body = transport(spec)
    tos = (spec.dscp << 2) | spec.ecn
    if src.version == 4:
        header = struct.pack("!BBHHHBBH4s4s", 0x45, tos, 20 + len(body), spec.ident & 0xFFFF,
                             0x4000 if spec.df else 0, spec.ttl, spec.proto, 0, src.packed, dst.packed)
        header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
        return header + body
    first_word = (6 << 28) | (tos << 20) | (spec.ident & 0xFFFFF)
    header = struct.pack("!IHBB16s16s", first_word, len(body), spec.proto, spec.ttl,
                         src.packed, dst.packed)
    return header + body


def ethernet(packet: bytes, dst_mac: bytes, src_mac: bytes) -> bytes:
    """``packet`` in an Ethernet II frame."""
    ethertype = ETH_P_IPV6 if packet[0] >> 4 == 6 else ETH_P_IP
    return dst_mac + src_mac + struct.pack("!H", ethertype) + packet


def mac_bytes(text: str) -> bytes:
    """``aa:bb:cc:dd:ee:ff`` → 6 bytes."""
    return bytes(int(part, 16) for part in text.split(":"))
