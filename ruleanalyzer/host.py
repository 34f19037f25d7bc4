"""Host context: what a Linux host knows beside its rules.

A ruleset alone leaves some answers open — which interface a forwarded
packet leaves by, whether a destination is one of the host's own addresses
(``addrtype``, ``fib … type local``), what an ipset holds, whether the host
forwards at all. A host snapshot (``ruleanalyzer collect``) records them;
:class:`HostContext` is that data, attached to a ruleset as
``Ruleset.host`` and read by the engine, the packet space and the checks.

Without a snapshot ``Ruleset.host`` is ``None`` and those answers stay
"unknown, depends on …".
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from .model import IPAddress, IPNetwork


@dataclass(frozen=True)
class Route:
    """One route of ``ip -j route show table all``: ``dst`` (``default`` is
    ``0.0.0.0/0`` / ``::/0``), the output device, gateway, routing table,
    route type (``unicast``, ``local``, ``broadcast``, ``blackhole``,
    ``unreachable``, ``prohibit``, ``multicast``…) and metric."""

    dst: IPNetwork
    dev: str | None = None
    gateway: IPAddress | None = None
    table: str = "main"
    type: str = "unicast"
    metric: int = 0
    prefsrc: IPAddress | None = None


@dataclass(frozen=True)
class PolicyRule:
    """One rule of ``ip -j rule``: which routing table packets matching the
    selector use (``from``/``to`` prefixes, ``iif``/``oif``, ``fwmark``/mask),
    at ``priority``; ``action`` is ``lookup`` (to ``table``) or a terminal
    action (``unreachable``, ``prohibit``, ``blackhole``)."""

    priority: int
    table: str = "main"
    src: IPNetwork | None = None
    dst: IPNetwork | None = None
    iif: str | None = None
    oif: str | None = None
    fwmark: int | None = None
    fwmask: int = 0xFFFFFFFF
    action: str = "lookup"
    invert: bool = False


@dataclass
class HostContext:
    """Addresses, routes, policy rules, ipset contents and sysctls of one
    host. Every field may be empty: a snapshot taken without root, or
    without a tool, says what it could not read in ``missing``."""

    name: str | None = None
    #: interface → its addresses with prefix length (``ip -j addr``).
    addresses: dict[str, list[ipaddress.IPv4Interface | ipaddress.IPv6Interface]] = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)
    rules: list[PolicyRule] = field(default_factory=list)
    #: ipset name → (type, members); members are the parsed entries.
    ipsets: dict[str, tuple[str, list]] = field(default_factory=dict)
    #: sysctl key (dotted, ``net.ipv4.ip_forward``) → value as text.
    sysctls: dict[str, str] = field(default_factory=dict)
    #: What the snapshot could not read, and why.
    missing: list[str] = field(default_factory=list)
    #: Where the snapshot came from (directory or archive), for reports.
    source: str | None = None
