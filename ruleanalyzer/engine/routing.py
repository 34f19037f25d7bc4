"""The routing decision, when a host snapshot says how the host routes.

Between prerouting and the filter chains the kernel routes the packet
(``ip_route_input_slow``): to one of its own addresses it is delivered
(INPUT); otherwise it is forwarded — only if forwarding is on for the input
interface — by the route the policy rules and tables pick, which fixes the
output interface that FORWARD and POSTROUTING rules match with ``-o``; a
blackhole, unreachable or prohibit route, or no route, drops it there. The
reverse-path filter (IPv4 ``rp_filter``) drops a packet that arrived on an
interface the route back to its source does not use.

Without a snapshot (``ruleset.host is None``) none of this is known and the
evaluator keeps its former answers: "depends on the output interface".
A snapshot without routes (no ``ip-route4.json``) is not a host without
routes: what they would decide — a forwarded packet's route, the host's
own packet's (:func:`output_refused`: the kernel refuses to send to a
reject route, or none), the reverse-path filter — makes an accepted
packet's answer unknown (``Routed.maybe``); what the rules drop stays
dropped.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from typing import TYPE_CHECKING

from ..model import Packet

if TYPE_CHECKING:  # a ruleset without a host never needs the host model
    from ..host import HostContext


@dataclass(frozen=True)
class Routed:
    """Where routing sends a packet: ``kind`` is ``local`` (INPUT),
    ``forward`` (with ``oif`` when one device is certain), ``drop`` (routing
    drops it: ``note`` says why) or ``unknown`` (``note`` says on what)."""

    kind: str
    oif: str | None = None
    note: str = ""
    #: ``forward`` when the snapshot holds no routes: why routing may drop
    #: the packet (an accepted packet's answer is then unknown).
    maybe: str = ""


def _addr(family: int, value: int):
    return ipaddress.IPv4Address(value) if family == 4 else ipaddress.IPv6Address(value)


def auto_hook(packet: Packet, host: HostContext | None) -> tuple[str, str]:
    """``--hook auto``: a packet from one of the host's addresses is
    ``output``, one to one of them ``input``, any other ``forward``. Without
    a snapshot: ``input`` (the default everywhere else)."""
    if host is None:
        return "input", "hook auto without a host snapshot: taken as input"
    if host.is_local(packet.src):
        return "output", f"hook output: {packet.src} is an address of this host"
    if host.is_local(packet.dst):
        return "input", f"hook input: {packet.dst} is an address of this host"
    if packet.dst.version == 4 and "routes4" in host.known and \
            host.address_type(packet.dst) in ("broadcast", "multicast"):
        return "input", f"hook input: {packet.dst} is a {host.address_type(packet.dst)} address here"
    return "forward", f"hook forward: neither {packet.src} nor {packet.dst} is an address of this host"


def input_interface(packet: Packet, host: HostContext) -> tuple[str | None, str]:
    """The input interface when the query names none and the host's
    reverse-path filter leaves one possibility: with strict ``rp_filter``
    on every interface, a packet from ``src`` passes only on the interface
    the route back to ``src`` uses. ``(None, "")`` when more than one is
    possible or the snapshot cannot tell; ``("", why)`` when none is."""
    if packet.family != 4 or packet.hook == "output":
        return None, ""
    candidates = host.reverse_interfaces(packet.src, packet.dst, packet.mark, packet.proto,
                                         packet.sport, packet.dport)
    if candidates is None:
        return None, ""
    if not candidates:
        return "", (f"dropped by the reverse-path filter: rp_filter drops packets from {packet.src} on "
                    "every interface of this host")
    if len(candidates) == 1:
        return candidates[0], (f"input interface {candidates[0]}: with rp_filter, a packet from "
                               f"{packet.src} passes only there (the route back to it leaves by it)")
    return None, ""


def rp_filter_drops(host: HostContext, view) -> str:
    """Why the reverse-path filter drops a packet (fields ``view``, after
    prerouting) that arrived on ``view.iif``, or ``""`` when it passes or
    the snapshot cannot tell."""
    iif = view.iif
    if view.family != 4 or not isinstance(iif, str) or not iif or iif == "lo":
        return ""
    passes, why = host.reverse_path(_addr(4, view.src), _addr(4, view.dst), iif, view.mark, view.proto,
                                    view.sport, view.dport)
    return f"dropped by the reverse-path filter: {why}" if passes is False else ""


def rp_filter_maybe(host: HostContext, view) -> str:
    """Why the reverse-path filter may drop a packet (fields ``view``) when
    the snapshot holds no IPv4 routes, the filter being on for its input
    interface (for any interface of the host, when the query names none):
    the route back to its source decides. ``""`` otherwise."""
    if view.family != 4 or "routes4" in host.known:
        return ""
    from ..host import routes_not_held

    iif = view.iif
    devs, on, others = host.rp_filtered()
    if isinstance(iif, str) and iif:
        if iif == "lo" or iif in host.bridge_ports or not (iif in on or iif not in devs and others):
            return ""
        where = iif
    elif on or others:
        where = "the interface it arrives on"
    else:
        return ""
    key = host.rp_filter_key(where if where in devs else "")
    return (f"the reverse-path filter ({key}={host.sysctls.get(key)}) drops it if the route back to "
            f"{_addr(4, view.src)} does not suit {where}, which {routes_not_held(4)}")


def route_view(host: HostContext, view, redirected: bool = False, hook: str | None = None) -> Routed:
    """The routing decision for a packet whose fields (after prerouting:
    DNAT applied, marks set) are ``view``. ``hook``: the query's; when the
    snapshot has neither addresses nor routes, ``input`` is taken as
    delivered (as without a snapshot) and anything else as forwarded by an
    unknown route."""
    family = view.family
    dst = _addr(family, view.dst)
    if redirected:
        return Routed("local")
    local = host.is_local(dst)
    if local is None and hook == "input":
        return Routed("local", note="the snapshot has no addresses or routes: delivered, as the query's "
                                    "hook says")
    if local is not None and family == 4 and (int(dst) == 0xFFFFFFFF or int(dst) >> 28 == 0xE):
        what = "the limited broadcast" if int(dst) == 0xFFFFFFFF else "a multicast group"
        return Routed("local", note=f"{what} goes up to this host (ip_route_input: never forwarded by "
                                    "unicast routes)")
    iif = view.iif if isinstance(view.iif, str) and view.iif else None
    proto = view.proto
    decision = host.route(dst, src=_addr(family, view.src), iif=iif, mark=view.mark, proto=proto,
                          sport=view.sport, dport=view.dport)
    if local or decision.type in ("local", "broadcast", "multicast"):
        return Routed("local")
    forwarding = host.forwarding(family, iif)
    if forwarding is False:
        if family == 6:
            key = "net.ipv6.conf.all.forwarding"
        elif host.sysctls.get("net.ipv4.ip_forward", "0").strip() == "0" or not iif:
            key = "net.ipv4.ip_forward"
        else:
            key = f"net.ipv4.conf.{iif}.forwarding"
        what = "this host routes nothing" if key != f"net.ipv4.conf.{iif}.forwarding" else \
            f"this host routes nothing that arrives on {iif}"
        return Routed("drop", note=f"not forwarded: {key}={host.sysctls.get(key, '0')} — {what}, so "
                                   f"FORWARD rules never see {dst}")
    from ..host import REJECT_TYPES

    if decision.type == "unknown":
        if f"routes{family}" not in host.known:
            return Routed("forward", None, note=f"the route to {dst} {decision.reason}",
                          maybe=(f"routing drops it if the host has no route to {dst} (or a blackhole, "
                                 f"unreachable or prohibit one): that {decision.reason}"))
        return Routed("unknown", note=f"the output interface {decision.reason}")
    if decision.type in REJECT_TYPES or decision.type == "none":
        return Routed("drop", note=f"dropped by routing: the route to {dst} is {decision.describe()}")
    if decision.type != "unicast":
        return Routed("unknown", note=f"the route to {dst} is of type {decision.type} (not modelled)")
    if len(decision.devs) == 1:
        return Routed("forward", decision.devs[0], note=f"routed by {decision.describe()}")
    return Routed("forward", None, note=f"routed by {decision.describe()}: the output interface is one "
                                        f"of {', '.join(decision.devs)} (multipath)")


#: The error the socket call gets when ``ip_route_output`` finds a reject
#: route (``fib_props``) or policy rule (``fib4_rule_action``), or none.
_ROUTE_ERRNO = {"blackhole": "EINVAL", "unreachable": "EHOSTUNREACH", "prohibit": "EACCES",
                "none": "ENETUNREACH"}
_RULE_ERRNO = {"blackhole": "EINVAL", "unreachable": "ENETUNREACH", "prohibit": "EACCES"}


def output_refused(packet: Packet, host: HostContext) -> tuple[str, str]:
    """Does the host refuse to send its own packet (``hook output``)? The
    route is looked up when the socket sends (``ip_route_output_flow``,
    before any OUTPUT chain): to a reject route or policy rule
    (blackhole, unreachable, prohibit), or where none is found, the call
    fails and no packet is made. ``("drop", why)`` then; ``("maybe", why)``
    when the snapshot holds no routes and the destination is not one of
    the host's addresses; else ``("", "")``. A socket bound to a device
    (``SO_BINDTODEVICE``) sends anyway (the kernel then takes the
    destination as on-link): a query cannot say so, and is answered as an
    unbound socket's."""
    from ..host import REJECT_TYPES

    dst = packet.dst
    if dst.version == 4 and (int(dst) == 0xFFFFFFFF or int(dst) >> 28 == 0xE):
        return "", ""  # (sent by the device holding the source: output_route)
    if host.is_local(dst):
        return "", ""
    decision = host.route(dst, src=packet.src, iif="lo", mark=packet.mark, proto=packet.proto,
                          sport=packet.sport, dport=packet.dport)
    if decision.type in REJECT_TYPES or decision.type == "none":
        errno = _RULE_ERRNO[decision.rule.action] if decision.route is None and decision.rule is not None \
            and decision.rule.action in REJECT_TYPES else _ROUTE_ERRNO[decision.type]
        return "drop", (f"not sent: the route to {dst} is {decision.describe()} — the kernel refuses to "
                        f"send it (the socket call fails with {errno}) before any OUTPUT chain; a socket "
                        "bound to a device (SO_BINDTODEVICE) would send it there anyway")
    if decision.type == "unknown" and f"routes{dst.version}" not in host.known:
        return "maybe", (f"the kernel refuses to send it if the host has no route to {dst} (or a "
                         f"blackhole, unreachable or prohibit one): that {decision.reason}")
    return "", ""


def output_interface(packet: Packet, host: HostContext) -> tuple[str | None, str]:
    """The output interface of a packet this host sends (``hook output``),
    from the route to its destination."""
    return output_route(host, packet.src, packet.dst, packet.mark, packet.proto, packet.sport, packet.dport)


def output_route(host: HostContext, src, dst, mark, proto=None, sport=None, dport=None
                 ) -> tuple[str | None, str]:
    """The output interface ``__ip_route_output_key`` gives a packet of this
    host from ``src`` to ``dst``: to the limited broadcast or a multicast
    group (IPv4) from one of its addresses, the device holding that address;
    else the route's device (a subnet's broadcast route names its device;
    a local route is ``lo``). ``(None, "")`` when routing cannot tell."""
    if dst.version == 4 and (int(dst) == 0xFFFFFFFF or int(dst) >> 28 == 0xE):
        owner = [dev for dev, addrs in host.addresses.items() if any(a.ip == src for a in addrs)]
        if len(owner) == 1:
            kind = "broadcast" if int(dst) == 0xFFFFFFFF else "multicast"
            return owner[0], f"sent by {owner[0]}: a {kind} from {src} leaves by the device holding {src}"
    decision = host.route(dst, src=src, iif="lo", mark=mark, proto=proto, sport=sport, dport=dport)
    if decision.type in ("unicast", "broadcast", "multicast") and len(decision.devs) == 1:
        return decision.devs[0], f"sent by {decision.devs[0]}: {decision.describe()}"
    if decision.type == "local":
        return "lo", f"sent to this host itself, by lo ({decision.describe()})"
    return None, ""


def reroute_output(host: HostContext, view, chain_name: str) -> tuple[str | None, str]:
    """The output interface after a mangle/route or nat OUTPUT chain changed
    the packet's mark or addresses: the kernel routes it again
    (``ip_route_me_harder``), and later chains' ``-o`` sees the new device."""
    family = view.family
    oif, note = output_route(host, _addr(family, view.src), _addr(family, view.dst), view.mark, view.proto,
                             view.sport, view.dport)
    why = f"routed again after {chain_name} changed the packet"
    return oif, (f"{why}: {note}" if oif else f"{why}: the new output interface is unknown")
