"""Host context: what a Linux host knows beside its rules.

A ruleset alone leaves some answers open — which interface a forwarded
packet leaves by, whether a destination is one of the host's own addresses
(``addrtype``, ``fib … type local``), what an ipset holds, whether the host
forwards at all. A host snapshot (``ruleanalyzer collect``) records them;
:class:`HostContext` is that data, attached to a ruleset as
``Ruleset.host`` and read by the engine, the packet space and the checks.

Without a snapshot ``Ruleset.host`` is ``None`` and those answers stay
"unknown, depends on …".

The lookups follow the kernel (net/ipv4/fib_rules.c, fib_trie.c,
fib_frontend.c; net/netfilter/ipset): policy rules in priority order, a
``lookup`` that finds no route (or a ``throw`` route, or a route no longer
than ``suppress_prefixlength``) goes on to the next rule; within a table the
longest prefix wins, then the lowest metric. :mod:`ruleanalyzer.hostrules`
turns ipsets and address types into plain matches; :mod:`ruleanalyzer.snapshot`
reads a snapshot into this class.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from .model import IPAddress, IPNetwork

#: Route types that end a lookup without a way out (the packet is dropped
#: by routing, with or without an ICMP error).
REJECT_TYPES = frozenset({"blackhole", "unreachable", "prohibit"})
#: The rules every network namespace starts with (``ip rule``).
DEFAULT_RULES4 = ((0, "local"), (32766, "main"), (32767, "default"))
DEFAULT_RULES6 = ((0, "local"), (32766, "main"))
#: ``rp_filter`` values: 0 off, 1 strict (RFC 3704), 2 loose.
RP_STRICT, RP_LOOSE = 1, 2


def routes_not_held(family: int) -> str:
    """Why a route is unknown when the snapshot has no routes of ``family``
    (no ``ip-route4.json`` / ``ip-route6.json``: not collected, or ``ip -j``
    failed): the host certainly has some, and they decide."""
    return f"depends on the host's routes, which the snapshot does not hold (no ip-route{family}.json)"


@dataclass(frozen=True)
class Route:
    """One route of ``ip -j route show table all``: ``dst`` (``default`` is
    ``0.0.0.0/0`` / ``::/0``), the output device, gateway, routing table,
    route type (``unicast``, ``local``, ``broadcast``, ``blackhole``,
    ``unreachable``, ``prohibit``, ``throw``, ``multicast``…) and metric.
    A multipath route lists every next hop's device in ``devs``.

    Read by the exposure checks too: a ``default`` route of the ``main``
    table names the interface that faces the internet
    (:meth:`HostContext.internet_interfaces`)."""

    dst: IPNetwork
    dev: str | None = None
    gateway: IPAddress | None = None
    table: str = "main"
    type: str = "unicast"
    metric: int = 0
    prefsrc: IPAddress | None = None
    #: Devices of a multipath route's next hops (``nexthops``); empty otherwise.
    devs: tuple[str, ...] = ()

    @property
    def devices(self) -> tuple[str, ...]:
        """Every device the route may send by."""
        if self.devs:
            return self.devs
        return (self.dev,) if self.dev else ()

    def describe(self) -> str:
        text = f"{'' if self.type == 'unicast' else self.type + ' '}{_net_text(self.dst)}"
        if self.gateway is not None:
            text += f" via {self.gateway}"
        if self.devices:
            text += f" dev {','.join(self.devices)}"
        if self.table != "main":
            text += f" table {self.table}"
        return text


@dataclass(frozen=True)
class PolicyRule:
    """One rule of ``ip -j rule``: which routing table packets matching the
    selector use (``from``/``to`` prefixes, ``iif``/``oif``, ``fwmark``/mask,
    ``ipproto``, port ranges), at ``priority``; ``action`` is ``lookup``
    (to ``table``), ``goto`` (to priority ``goto``), ``nop`` or a terminal
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
    #: ``suppress_prefixlength N``: a route found with a prefix of N bits or
    #: fewer is ignored (WireGuard's ``table main suppress_prefixlength 0``).
    suppress_prefixlength: int | None = None
    ipproto: int | None = None
    sport: tuple[int, int] | None = None
    dport: tuple[int, int] | None = None
    goto: int | None = None
    #: Selectors this model does not decide (``tos``, ``uidrange``,
    #: ``l3mdev``): a packet meeting such a rule has an unknown route.
    opaque: str | None = None
    #: 4 (``ip rule``) or 6 (``ip -6 rule``).
    family: int = 4

    def describe(self) -> str:
        parts = [f"{self.priority}:"]
        if self.invert:
            parts.append("not")
        parts.append(f"from {_net_text(self.src) if self.src else 'all'}")
        if self.dst is not None:
            parts.append(f"to {_net_text(self.dst)}")
        if self.fwmark is not None:
            parts.append(f"fwmark {self.fwmark:#x}" + (f"/{self.fwmask:#x}" if self.fwmask != 0xFFFFFFFF else ""))
        if self.iif:
            parts.append(f"iif {self.iif}")
        if self.oif:
            parts.append(f"oif {self.oif}")
        if self.ipproto is not None:
            parts.append(f"ipproto {self.ipproto}")
        for name, span in (("sport", self.sport), ("dport", self.dport)):
            if span:
                parts.append(f"{name} {span[0]}" + (f"-{span[1]}" if span[1] != span[0] else ""))
        if self.opaque:
            parts.append(self.opaque)
        if self.action == "lookup":
            parts.append(f"lookup {self.table}")
        elif self.action == "goto":
            parts.append(f"goto {self.goto}")
        else:
            parts.append(self.action)
        if self.suppress_prefixlength is not None:
            parts.append(f"suppress_prefixlength {self.suppress_prefixlength}")
        return " ".join(parts)


@dataclass(frozen=True)
class RouteDecision:
    """What routing does with one packet: ``type`` is the route type found
    (``unicast`` … ``local``, ``broadcast``, ``blackhole``, ``unreachable``,
    ``prohibit``), ``none`` when no rule found a route (the kernel answers
    "network unreachable"), or ``unknown`` when the decision hangs on a
    selector the packet does not fix (``reason`` says which)."""

    type: str
    devs: tuple[str, ...] = ()
    route: Route | None = None
    rule: PolicyRule | None = None
    reason: str = ""

    @property
    def dev(self) -> str | None:
        """The output device when there is exactly one."""
        return self.devs[0] if len(self.devs) == 1 else None

    def describe(self) -> str:
        if self.type == "unknown":
            return f"unknown ({self.reason})"
        if self.type == "none":
            return "no route (network unreachable)"
        text = self.route.describe() if self.route else self.type
        if self.rule is not None and (self.rule.priority, self.rule.table) not in DEFAULT_RULES4 + DEFAULT_RULES6:
            text += f" (policy rule {self.rule.describe()})"
        return text


@dataclass
class IPSet:
    """One ipset of ``ipset save``: name, type (``hash:ip``, ``hash:net,port``,
    ``bitmap:port``, ``list:set`` …), family (``inet``/``inet6``), the
    entries as written (``10.0.0.0/8``, ``2001:db8::1,tcp:22``) and which of
    them carry ``nomatch``."""

    name: str
    type: str
    family: str = "inet"
    entries: list[str] = field(default_factory=list)
    nomatch: set[str] = field(default_factory=set)
    #: ``create`` options (``timeout``, ``range`` …) as written.
    options: dict[str, str] = field(default_factory=dict)
    #: Some entries expire (a ``timeout`` set): the contents are those of
    #: the moment the snapshot was taken.
    expiring: bool = False

    @property
    def dimensions(self) -> list[str]:
        """``hash:ip,port`` → ``["ip", "port"]``; ``list:set`` → ``["set"]``."""
        return self.type.split(":", 1)[1].split(",") if ":" in self.type else []


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
    #: interface → the bridge it is a port of (``master`` in ``ip -j addr``).
    bridge_ports: dict[str, str] = field(default_factory=dict)
    #: ipset name → :class:`IPSet` (the full form of ``ipsets``).
    sets: dict[str, IPSet] = field(default_factory=dict)
    #: Which of the sections were read at all: ``addresses``, ``routes4``,
    #: ``routes6``, ``rules4``, ``rules6``, ``ipsets``, ``sysctls``.
    known: set[str] = field(default_factory=set)
    #: When the snapshot was taken (its manifest), for reports.
    time: str | None = None
    #: The snapshot's manifest as findings name it, and the line of each of
    #: its entries (``missing`` → the lines of the ``missing:`` entries).
    manifest_file: str | None = None
    manifest_lines: dict[str, list[int]] = field(default_factory=dict)
    #: ``sysctl.txt`` as findings name it, and the line of each key.
    sysctl_file: str | None = None
    sysctl_lines: dict[str, int] = field(default_factory=dict)

    # -- what the host is ------------------------------------------------------

    @property
    def interfaces(self) -> list[str]:
        """Every interface the snapshot names (addresses, routes, bridges)."""
        names = dict.fromkeys(self.addresses)
        for r in self.routes:
            names.update(dict.fromkeys(r.devices))
        names.update(dict.fromkeys(self.bridge_ports))
        names.update(dict.fromkeys(self.bridge_ports.values()))
        return [n for n in names if n]

    def internet_interfaces(self) -> list[str]:
        """Devices of the ``main`` table's default routes (IPv4 and IPv6):
        the interfaces that face the internet. Empty when the host has no
        default route (or the routes were not read)."""
        out: dict[str, None] = {}
        for r in self.routes:
            if r.table == "main" and r.dst.prefixlen == 0 and r.type == "unicast":
                out.update(dict.fromkeys(r.devices))
        return list(out)

    def local_addresses(self, family: int | None = None) -> list[IPAddress]:
        """The host's own addresses (``ip -j addr``)."""
        return [i.ip for ifaces in self.addresses.values() for i in ifaces
                if family is None or i.version == family]

    def is_local(self, addr: IPAddress) -> bool | None:
        """Is ``addr`` one of the host's addresses (a ``local`` route)?
        None when the snapshot has neither addresses nor routes."""
        if not ({"addresses", f"routes{addr.version}"} & self.known):
            return None
        if f"routes{addr.version}" in self.known:
            route = self.table_lookup("local", addr)
            return route is not None and route.type == "local"
        return addr in self.local_addresses(addr.version)

    # -- sysctls -----------------------------------------------------------------

    def sysctl(self, key: str) -> str | None:
        return self.sysctls.get(key)

    def sysctl_where(self, key: str) -> tuple[str, int] | None:
        """``(file, line)`` of ``key`` in the snapshot, for findings."""
        line = self.sysctl_lines.get(key)
        return (self.sysctl_file, line) if self.sysctl_file and line else None

    def rp_filter_key(self, dev: str) -> str:
        """The sysctl that sets :meth:`rp_filter` for ``dev`` (the larger one)."""
        every, own = (self._sysctl_int(f"net.ipv4.conf.{k}.rp_filter") for k in ("all", dev))
        return f"net.ipv4.conf.{'all' if (every or 0) >= (own or 0) else dev}.rp_filter"

    def _sysctl_int(self, key: str) -> int | None:
        value = self.sysctls.get(key)
        try:
            return int(value) if value is not None else None
        except ValueError:
            return None

    def forwarding(self, family: int, iif: str | None = None) -> bool | None:
        """Does the host forward IPv``family`` packets (arriving on ``iif``)?
        IPv4 asks the input interface's ``conf.<iif>.forwarding`` (what
        ``ip_forward`` sets for all), IPv6 ``conf.all.forwarding``."""
        if family == 4:
            if iif is not None:
                value = self._sysctl_int(f"net.ipv4.conf.{iif}.forwarding")
                if value is not None:
                    return bool(value)
            value = self._sysctl_int("net.ipv4.ip_forward")
            if value is None:
                value = self._sysctl_int("net.ipv4.conf.all.forwarding")
        else:
            value = self._sysctl_int("net.ipv6.conf.all.forwarding")
        return None if value is None else bool(value)

    def forwards_any(self, family: int) -> bool | None:
        """Can any interface forward IPv``family``? (per-interface settings
        can differ from ``ip_forward``)."""
        if family == 4:
            per_dev = [self._sysctl_int(k) for k in self.sysctls
                       if k.startswith("net.ipv4.conf.") and k.endswith(".forwarding")
                       and k.split(".")[3] not in ("all", "default")]
            if any(v for v in per_dev):
                return True
        return self.forwarding(family)

    def rp_filter(self, dev: str) -> int | None:
        """The effective IPv4 reverse-path filter on ``dev``: the larger of
        ``conf.all.rp_filter`` and ``conf.<dev>.rp_filter`` (the kernel's
        IN_DEV_RPFILTER). None when the snapshot does not say."""
        every, own = (self._sysctl_int(f"net.ipv4.conf.{k}.rp_filter") for k in ("all", dev))
        if own is None:
            return RP_LOOSE if every == RP_LOOSE else None  # 2 is the largest value
        return own if every is None else max(every, own)

    def rp_filtered(self) -> tuple[list[str], list[str], bool]:
        """Where the IPv4 reverse-path filter is on: ``(names, on, others)``
        — the interfaces the snapshot names (addresses, routes, bridges,
        ``conf.<dev>.rp_filter`` keys; not ``lo``, not bridge ports, which
        arrive as their bridge), those of them filtered, and whether an
        interface it does not name is (``conf.all.rp_filter=2``)."""
        names = dict.fromkeys(self.interfaces)
        for key in self.sysctls:
            parts = key.split(".")
            if len(parts) == 5 and parts[:3] == ["net", "ipv4", "conf"] and parts[4] == "rp_filter" \
                    and parts[3] not in ("all", "default"):
                names[parts[3]] = None
        devs = [d for d in names if d != "lo" and d not in self.bridge_ports]
        return devs, [d for d in devs if self.rp_filter(d)], bool(self.rp_filter(""))

    @property
    def tcp_ecn(self) -> int | None:
        """``net.ipv4.tcp_ecn``: 0 never asks for ECN, 1 asks on outgoing
        connections and accepts it, 2 (the kernel default) only accepts it
        when the peer asks. Covers IPv6 too."""
        return self._sysctl_int("net.ipv4.tcp_ecn")

    # -- routing ---------------------------------------------------------------

    def _tables(self) -> dict:
        cache = self.__dict__.get("_table_index")
        if cache is None:
            cache = {}
            for r in self.routes:
                key = (r.table, r.dst.version)
                index = cache.setdefault(key, {})
                index.setdefault((r.dst.prefixlen, int(r.dst.network_address)), []).append(r)
            for index in cache.values():
                for routes in index.values():
                    routes.sort(key=lambda r: r.metric)
            self.__dict__["_table_index"] = cache
        return cache

    def table_lookup(self, table: str, addr: IPAddress) -> Route | None:
        """Longest-prefix match of ``addr`` in ``table`` (lowest metric on a
        tie), or None."""
        index = self._tables().get((table, addr.version))
        if not index:
            return None
        width = addr.max_prefixlen
        value = int(addr)
        for plen in range(width, -1, -1):
            mask = ((1 << plen) - 1) << (width - plen) if plen else 0
            routes = index.get((plen, value & mask))
            if routes:
                return routes[0]
        return None

    def policy_rules(self, family: int) -> list[PolicyRule]:
        """The rules of ``family`` in priority order (the defaults when the
        snapshot holds none)."""
        cache = self.__dict__.setdefault("_rules_by_family", {})
        if family not in cache:
            rules = [r for r in self.rules if r.family == family]
            if f"rules{family}" not in self.known:
                defaults = DEFAULT_RULES4 if family == 4 else DEFAULT_RULES6
                rules = [PolicyRule(p, t) for p, t in defaults]
            cache[family] = sorted(rules, key=lambda r: r.priority)
        return cache[family]

    def has_custom_rules(self, family: int) -> bool:
        """Are there rules beyond the defaults (the kernel then keeps the
        local and main tables apart)?"""
        defaults = set(DEFAULT_RULES4 if family == 4 else DEFAULT_RULES6)
        return any((r.priority, r.table) not in defaults or r.action != "lookup" or _has_selector(r)
                   for r in self.policy_rules(family))

    def route(self, dst: IPAddress, src: IPAddress | None = None, iif: str | None = None,
              mark: int | None = 0, proto: int | None = None, sport: int | None = None,
              dport: int | None = None) -> RouteDecision:
        """The route the kernel picks for a packet to ``dst``: policy rules
        in order, then the table they name. Fields given as None are
        unknown; a rule whose selector needs one makes the answer unknown,
        and so does a table lookup when the snapshot holds no routes of the
        family (:func:`routes_not_held`): not "no route". ``iif`` is the
        input interface (``lo`` for the host's own packets)."""
        family = dst.version
        rules = self.policy_rules(family)
        i = 0
        steps = 0
        while i < len(rules):
            rule = rules[i]
            i += 1
            hit = _selector_holds(rule, dst, src, iif, mark, proto, sport, dport)
            if hit is None:
                return RouteDecision("unknown", rule=rule,
                                     reason=f"depends on policy rule {rule.describe()}")
            if not hit:
                continue
            if rule.action in REJECT_TYPES:
                return RouteDecision(rule.action, rule=rule)
            if rule.action == "nop":
                continue
            if rule.action == "goto":
                steps += 1
                if steps > len(rules):
                    break
                i = next((k for k, r in enumerate(rules) if r.priority >= (rule.goto or 0)), len(rules))
                continue
            if f"routes{family}" not in self.known:
                return RouteDecision("unknown", rule=rule, reason=routes_not_held(family))
            route = self.table_lookup(rule.table, dst)
            if route is None or route.type == "throw":
                continue
            if rule.suppress_prefixlength is not None and route.dst.prefixlen <= rule.suppress_prefixlength:
                continue
            return RouteDecision(route.type, route.devices, route, rule)
        return RouteDecision("none")

    def address_type(self, addr: IPAddress, dev: str | None = None) -> str:
        """The IPv4 route type ``addrtype`` and ``fib … type`` see for
        ``addr`` (the kernel's ``__inet_dev_addr_type``): ``0.0.0.0/8`` and
        ``255.255.255.255`` are BROADCAST, ``224.0.0.0/4`` MULTICAST, else
        the type of the route found in the ``local`` table — which holds the
        ``main`` routes too while no custom policy rule exists (the kernel
        merges the two tables until one is added) — or UNICAST. With
        ``dev`` (``--limit-iface-in/out``) a route through another device
        counts as UNICAST."""
        value = int(addr)
        if addr.version == 4:
            if value >> 24 == 0 or value == 0xFFFFFFFF:
                return "broadcast"
            if value >> 28 == 0xE:
                return "multicast"
            route = self.table_lookup("local", addr)
            if not self.has_custom_rules(4):
                main = self.table_lookup("main", addr)
                if main is not None and (route is None or main.dst.prefixlen > route.dst.prefixlen):
                    route = main
            if route is None or route.type == "throw":
                return "unicast"
            if dev is not None and dev not in route.devices:
                return "unicast"
            return route.type
        raise ValueError("address_type is IPv4; see address_types6")

    def address_types6(self, addr: IPAddress, dev: str | None = None) -> frozenset[str]:
        """The IPv6 route types xt_addrtype's ``match_lookup_rt6`` gives
        ``addr``: LOCAL for a local route (or an address on ``dev``),
        UNREACHABLE when the lookup fails or ends on a reject route
        (unreachable, prohibit, blackhole), else none (a unicast route)."""
        out: set[str] = set()
        if dev is not None and any(i.ip == addr for i in self.addresses.get(dev, ())):
            out.add("local")
        decision = self.route(addr, src=None, iif="lo", mark=0)
        if decision.type in REJECT_TYPES or decision.type == "none":
            return frozenset({"unreachable"})
        if decision.type == "unknown":
            raise LookupError(decision.reason)
        if dev is None and decision.type == "local":
            out.add("local")
        return frozenset(out)

    def reverse_path(self, src: IPAddress, dst: IPAddress, dev: str, mark: int | None = 0,
                     proto: int | None = None, sport: int | None = None, dport: int | None = None
                     ) -> tuple[bool | None, str]:
        """Does an IPv4 packet from ``src`` to ``dst`` arriving on ``dev``
        pass the reverse-path filter? ``(True|False|None, why)``.

        As ``fib_validate_source`` does it: the route back to ``src`` is
        looked up from ``dst`` with the forward route's output interface as
        the input interface (``lo`` for local delivery), the mark only with
        ``src_valid_mark``, protocol and (swapped) ports only when a policy
        rule selects on them. Strict (``rp_filter=1``) needs that route to
        leave by ``dev``, loose (2) any unicast route back; off (0) passes."""
        rp = self.rp_filter(dev)
        if rp is None:
            return None, "the snapshot has no rp_filter setting"
        if rp == 0:
            return True, ""
        forward = self.route(dst, src=src, iif=dev, mark=mark, proto=proto, sport=sport, dport=dport)
        if forward.type == "unknown":
            return None, forward.reason
        back_iif = "lo" if forward.type in ("local", "broadcast", "multicast") else forward.dev
        valid_mark = any(self._sysctl_int(f"net.ipv4.conf.{k}.src_valid_mark") for k in ("all", dev))
        dissect = any(r.ipproto is not None or r.sport or r.dport for r in self.policy_rules(4))
        back = self.route(src, src=dst, iif=back_iif, mark=(mark if valid_mark else 0),
                          proto=proto if dissect else 0, sport=dport if dissect else 0,
                          dport=sport if dissect else 0)
        if back.type == "unknown":
            return None, back.reason
        mode = "strict" if rp == RP_STRICT else "loose"
        if back.type != "unicast":
            # A source that routes back as LOCAL is a martian unless
            # accept_local is set; blackhole/unreachable/none fail the lookup.
            return False, (f"rp_filter={rp} ({mode}) on {dev}: no unicast route back to {src} "
                           f"({back.describe()})")
        if rp == RP_STRICT and dev not in back.devs:
            return False, (f"rp_filter=1 (strict) on {dev}: the route back to {src} leaves by "
                           f"{', '.join(back.devs) or '?'}, so a packet from it arriving on {dev} is "
                           "taken as spoofed")
        return True, ""

    def reverse_interfaces(self, src: IPAddress, dst: IPAddress, mark: int | None = 0,
                           proto: int | None = None, sport: int | None = None, dport: int | None = None
                           ) -> list[str] | None:
        """The interfaces an IPv4 packet from ``src`` may arrive on and pass
        the reverse-path filter (:meth:`reverse_path`). None when the
        snapshot cannot tell for some interface."""
        if src.version != 4 or "routes4" not in self.known:
            return None
        out = []
        for dev in self.interfaces:
            if dev == "lo" or dev in self.bridge_ports:
                continue  # the network does not arrive on lo; bridge ports arrive as their bridge
            passes, _ = self.reverse_path(src, dst, dev, mark, proto, sport, dport)
            if passes is None:
                return None
            if passes:
                out.append(dev)
        return out


def _has_selector(rule: PolicyRule) -> bool:
    return any(v is not None for v in (rule.src, rule.dst, rule.iif, rule.oif, rule.fwmark,
                                       rule.ipproto, rule.sport, rule.dport, rule.opaque,
                                       rule.suppress_prefixlength)) or rule.invert


def _selector_holds(rule: PolicyRule, dst, src, iif, mark, proto, sport, dport) -> bool | None:
    """Does ``rule``'s selector take the packet? None when it hangs on a
    field the caller does not know. Follows fib_rule_match(): an ``oif``
    selector only takes packets of sockets bound to that device, which a
    forwarded packet never is."""
    if rule.opaque:
        return None
    checks: list[bool | None] = []
    if rule.src is not None:
        checks.append(None if src is None else (src.version == rule.src.version and src in rule.src))
    if rule.dst is not None:
        checks.append(dst.version == rule.dst.version and dst in rule.dst)
    if rule.iif is not None:
        checks.append(None if iif is None else iif == rule.iif)
    if rule.oif is not None:
        checks.append(False if iif not in (None, "lo") else None)
    if rule.fwmark is not None:
        checks.append(None if mark is None else (mark & rule.fwmask) == rule.fwmark)
    if rule.ipproto is not None:
        checks.append(None if proto is None else proto == rule.ipproto)
    for span, port in ((rule.sport, sport), (rule.dport, dport)):
        if span is not None:
            checks.append(None if port is None else span[0] <= port <= span[1])
    if False in checks:
        hit: bool | None = False
    elif None in checks:
        return None
    else:
        hit = True
    return (not hit) if rule.invert else hit


def _net_text(net: IPNetwork) -> str:
    if net.prefixlen == 0:
        return "default"
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)
