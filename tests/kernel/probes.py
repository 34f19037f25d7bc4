"""Probe packets: one description, two renderings.

A :class:`Probe` says what a test packet is (addresses, ports, flags, ECN,
conntrack situation). :meth:`Probe.wire` renders the bytes the peer sends,
plus the *opener* the firewall sends first when the probe must be a reply
(``established``) or an ICMP error about an existing flow (``related``).
:meth:`Probe.model_packet` renders the same probe as the analyzer's
:class:`~ruleanalyzer.model.Packet`, with the context the kernel has
(interface, address types, packet type, length, TTL) filled in so nothing
is unknown.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from . import packets
from .netns import FW_IF

TCP, UDP = packets.TCP, packets.UDP
SYN, ACK = 0x02, 0x10


@dataclass(frozen=True)
class Probe:
    """One test packet arriving at the firewall on its veth (hook input).

    ``state`` is ``new`` (no conntrack entry exists), ``established`` (the
    firewall sent the first packet of this flow the other way) or
    ``related`` (an ICMP error quoting a flow the firewall opened).
    ``quote_proto`` is what an ICMP error quotes (TCP or UDP)."""

    ident: int
    src: str
    dst: str
    proto: int
    sport: int = 0
    dport: int = 0
    flags: int = 0
    ecn: int = 0
    dscp: int = 0
    ttl: int = 64
    df: int = 0
    icmp_type: int = 0
    icmp_code: int = 0
    state: str = "new"
    pad: int = 0
    quote_proto: int = UDP
    quote_sport: int = 0
    quote_dport: int = 0

    @property
    def family(self) -> int:
        return ipaddress.ip_address(self.src).version

    @property
    def icmp_proto(self) -> int:
        return packets.ICMP if self.family == 4 else packets.ICMPV6

    @property
    def is_icmp(self) -> bool:
        return self.proto in (packets.ICMP, packets.ICMPV6)

    @property
    def is_icmp_error(self) -> bool:
        errors = (3, 4, 5, 11, 12) if self.family == 4 else (1, 2, 3, 4)
        return self.is_icmp and self.icmp_type in errors

    # -- on the wire -------------------------------------------------------

    def _quoted_flow(self) -> bytes:
        """The packet an ICMP error quotes: one the firewall sent to ``src``."""
        spec = packets.Spec(src=self.dst, dst=self.src, proto=self.quote_proto,
                            sport=self.quote_sport, dport=self.quote_dport, flags=SYN,
                            seq=self.ident * 7 + 1, ident=self.ident, with_marker=False)
        return packets.ip_packet(spec)

    def opener(self) -> bytes | None:
        """What the firewall sends first, or None for a ``new`` probe."""
        if self.state == "related":
            return self._quoted_flow()
        if self.state != "established":
            return None
        if self.proto == TCP:
            spec = packets.Spec(src=self.dst, dst=self.src, proto=TCP, sport=self.dport,
                                dport=self.sport, flags=SYN, seq=self.ident * 7 + 1,
                                ident=self.ident, with_marker=False)
        elif self.proto == UDP:
            spec = packets.Spec(src=self.dst, dst=self.src, proto=UDP, sport=self.dport,
                                dport=self.sport, ident=self.ident, with_marker=False)
        else:  # the echo request this echo reply answers
            spec = packets.Spec(src=self.dst, dst=self.src, proto=self.icmp_proto,
                                icmp_type=8 if self.family == 4 else 128,
                                icmp_id=self.ident & 0xFFFF, ident=self.ident, with_marker=False)
        return packets.ip_packet(spec)

    def packet(self) -> bytes:
        """The IP packet the peer sends."""
        payload = b"\0" * self.pad
        if self.is_icmp_error:
            # conntrack reads the quoted header: a flow the firewall opened
            # (related) or one that never existed (invalid).
            payload = self._quoted_flow() + payload
        ack = self.ident * 7 + 2 if self.flags & ACK else 0
        spec = packets.Spec(src=self.src, dst=self.dst, proto=self.proto, sport=self.sport,
                            dport=self.dport, flags=self.flags, seq=self.ident * 13 + 5,
                            ack=ack, icmp_type=self.icmp_type, icmp_code=self.icmp_code,
                            icmp_id=self.ident & 0xFFFF, ecn=self.ecn, dscp=self.dscp,
                            ttl=self.ttl, df=self.df, payload=payload, ident=self.ident)
        return packets.ip_packet(spec)

    # -- for the analyzer --------------------------------------------------

    def model_packet(self):
        """The analyzer's view of this packet as it reaches INPUT."""
        from ruleanalyzer.model import Packet

        src, dst = ipaddress.ip_address(self.src), ipaddress.ip_address(self.dst)
        has_ports = self.proto in (TCP, UDP)
        wire = self.packet()
        # The kernel's addrtype: v4 looks only in the local table (a local
        # address is LOCAL, anything else UNICAST); v6 reports UNICAST and,
        # for the host's own addresses, LOCAL too.
        dst_type = frozenset({"local"}) if self.family == 4 else frozenset({"local", "unicast"})
        return Packet(
            src=src, dst=dst, proto=self.proto,
            sport=self.sport if has_ports else None,
            dport=self.dport if has_ports else None,
            flags=self.flags if self.proto == TCP else 0,
            ecn=self.ecn, dscp=self.dscp, state=self.state, hook="input",
            iif=FW_IF, oif="",
            icmp_type=self.icmp_type if self.is_icmp else None,
            icmp_code=self.icmp_code if self.is_icmp else None,
            length=len(wire), ttl=self.ttl, pkttype="unicast",
            # the IP header as crafted: unfragmented, the id is the probe's
            df=self.df if self.family == 4 else 0,
            ip_id=self.ident & 0xFFFF if self.family == 4 else 0,
            src_type=frozenset({"unicast"}), dst_type=dst_type,
            id=str(self.ident))

    def describe(self) -> str:
        from ruleanalyzer.model import flags_to_text

        ports = f":{self.sport} -> {self.dst}:{self.dport}" if self.proto in (TCP, UDP) else f" -> {self.dst}"
        text = f"#{self.ident} proto {self.proto} {self.src}{ports}"
        if self.proto == TCP:
            text += f" [{flags_to_text(self.flags) or 'none'}]"
        if self.is_icmp:
            text += f" icmp {self.icmp_type}/{self.icmp_code}"
        text += (f" ecn={self.ecn} dscp={self.dscp} ttl={self.ttl} df={self.df} len={len(self.packet())}"
                 f" state={self.state}")
        if self.state == "related" or self.is_icmp_error:
            text += f" quoting proto {self.quote_proto} {self.quote_sport}->{self.quote_dport}"
        return text

