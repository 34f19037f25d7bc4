"""The host's routing decision as packet sets (host snapshots only).

After prerouting the kernel routes each packet: to one of the host's own
addresses it goes up to INPUT; otherwise, if the host forwards, it leaves
by the interface of the route the policy rules and tables pick — which is
what FORWARD and POSTROUTING rules see as ``-o``; blackhole, unreachable
and prohibit routes (and no route) drop it. Packets the host sends leave by
the route to their destination. With a snapshot (``ruleset.host``) the walk
in :mod:`ruleanalyzer.space.reach` intersects each path with these sets at
the point the kernel routes, so ``-o`` matches are decided exactly as the
concrete engine (:mod:`ruleanalyzer.engine.routing`) decides them.

Built from the routes' prefixes, longest first within a table (a route's
region is its prefix minus the longer ones), and the policy rules in
priority order (a rule's ``lookup`` takes the packets its selector holds and
its table has a route for; the rest go on). The IPv4 reverse-path filter
(``rp_filter``, :func:`reverse_path_pass`) is the same lookup backwards:
the route to the packet's source, found with source and destination
swapped, must leave by the input interface (strict) or exist as a unicast
route (loose). Not modelled here, said in the docs: per-route TOS,
``goto``/``nop`` rules and selectors on ``tos``/``uidrange`` — with any of
those the constraint is left out (the answer stays as without a snapshot)
— and the reverse-path filter when a policy rule selects on the input
interface, protocol or ports (the engine decides those per packet).

A snapshot without routes of the family: the addresses still say what is
delivered locally, and :func:`routes_unknown` gives, per hook, the packets
routing may drop, which the walk's readers count as undecided
(``Reachability.host_verdicts``), as the engine answers them.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import ip_network

from ..host import REJECT_TYPES, HostContext, PolicyRule
from ..model import AddressMatch, BitsMatch, IntMatch
from .encode import encode_bounds
from .fields import _wildcard_prefix

#: Tables with more routes than this are not encoded (a full BGP table
#: would cost more than it tells a firewall audit).
MAX_ROUTES = 20_000


@dataclass
class Routing:
    """Raw BDD nodes: ``local`` (delivered to INPUT), ``forward`` (forwarded,
    the output interface constrained to the route's), ``output`` (the
    host's own packets with their route's output interface)."""

    local: object
    forward: object
    output: object
    #: The ruleset REDIRECTs: the walk keeps a redirected packet's address
    #: (reach.py), so the input path is not narrowed to local addresses.
    redirects: bool = False
    #: Packets the reverse-path filter lets pass (input and forward), or
    #: None when it drops nothing or is not modelled.
    rp_pass: object = None
    #: Packets not for the host that routing drops (before the reverse-path
    #: filter's say): no route, a blackhole, unreachable or prohibit route
    #: or policy rule, or forwarding off for their input interface — the
    #: engine's "dropped by routing" (:func:`ruleanalyzer.engine.routing.route_view`).
    unrouted: object = None
    #: The host's own packets it refuses to send (no route, a reject route
    #: or policy rule: the socket call fails before any OUTPUT chain), or None.
    output_unrouted: object = None


def _special4(space):
    """The IPv4 limited broadcast and multicast groups (by destination)."""
    return encode_bounds(AddressMatch("dst", tuple(map(ip_network, ("255.255.255.255/32", "224.0.0.0/4")))),
                         space)[1]


def _host_addresses(space, host: HostContext, family: int):
    """Packets to one of the host's addresses (``ip -j addr``)."""
    mine = [ip_network(f"{a}/{a.max_prefixlen}") for a in host.local_addresses(family)]
    return encode_bounds(AddressMatch("dst", tuple(mine)), space)[1] if mine else space.false


def routes_unknown(space, host: HostContext, family: int) -> dict | None:
    """Where the snapshot holds no routes of ``family`` (no
    ``ip-route{4,6}.json``): per hook, the packets routing may drop that
    the routes would decide — as the engine has it
    (:func:`ruleanalyzer.engine.routing.route_view`, ``output_refused``,
    ``rp_filter_maybe``): on forward and output, those to an address not
    the host's (every one when the addresses are not known either;
    output: not to the IPv4 limited broadcast or a multicast group), and
    on input and forward those arriving where the IPv4 reverse-path
    filter is on: ``{hook: (the reverse-path filter's, the route's)}``.
    None when the routes are known."""
    if f"routes{family}" in host.known:
        return None
    local = _host_addresses(space, host, family) if "addresses" in host.known else space.false
    rp = space.false
    if family == 4:
        domain = space.layout.interfaces["iif"]
        devs, on, others = host.rp_filtered()
        rp = space.one_of("iif", sorted({interface_code(domain, d) for d in on})) if on else space.false
        if others:  # (conf.all.rp_filter=2: every interface the snapshot does not name)
            named = {interface_code(domain, d) for d in [*devs, "lo", *host.bridge_ports]}
            rp |= ~space.one_of("iif", sorted(named))
    special = _special4(space) if family == 4 else space.false
    return {"input": (rp, space.false), "forward": (rp, ~local), "output": (space.false, ~local & ~special)}


def interface_code(domain, name: str) -> int:
    """The code of interface ``name`` in a space's interface domain: its
    own, else its longest listed prefix's class, else ``other``."""
    if name in domain.concrete:
        return domain.concrete.index(name)
    best = None
    for i, p in enumerate(domain.prefixes):
        if name.startswith(p) and (best is None or len(p) > len(domain.prefixes[best])):
            best = i
    base = len(domain.concrete)
    return base + best if best is not None else base + len(domain.prefixes)


def routing_sets(space, host: HostContext, family: int, ruleset=None) -> Routing | None:
    """The routing decision of ``host`` for IPv``family`` as sets, or None
    when the snapshot cannot decide it (no routes, unmodelled policy rules,
    too many routes)."""
    redirects = ruleset is not None and "redirect" in ruleset.nat_kinds()
    if f"routes{family}" not in host.known:
        if "addresses" not in host.known:
            return None
        # No routes, but the addresses: what is the host's goes up, the
        # rest is forwarded by a route not known (:func:`routes_unknown`).
        local = _host_addresses(space, host, family) | (_special4(space) if family == 4 else space.false)
        forward, unrouted = _forwarding(space, host, family, ~local, space.false)
        return Routing(local, forward, space.true, redirects, None, unrouted & ~local)
    routes = [r for r in host.routes if r.dst.version == family]
    if len(routes) > MAX_ROUTES:
        return None
    rules = host.policy_rules(family)
    if any(r.opaque or r.action in ("goto", "nop") for r in rules):
        return None
    tables = _Tables(space, routes)
    domain = space.layout.interfaces["oif"]
    local, forward, unrouted = _decide(space, rules, tables, domain, iif_fixed=None)
    out_local, out_forward, out_unrouted = _decide(space, rules, tables, domain, iif_fixed="lo", output=True)
    if family == 4:
        # The limited broadcast and multicast groups: delivered up (never
        # forwarded by unicast routes); sent from one of the host's
        # addresses, they leave by the device holding it.
        special = _special4(space)
        local, forward, unrouted = local | special, forward & ~special, unrouted & ~special
        out_unrouted &= ~special
        owned = space.false
        for dev, addrs in host.addresses.items():
            mine = [ip_network(f"{a.ip}/32") for a in addrs if a.version == 4]
            if mine and dev != "lo":
                src = encode_bounds(AddressMatch("src", tuple(mine)), space)[1]
                owned |= src
                out_forward = (out_forward & ~(special & src)) | (special & src & space.one_of(
                    "oif", [interface_code(domain, dev)]))
        out_local &= ~(special & owned)
    forward, unrouted = _forwarding(space, host, family, forward, unrouted)
    rp_pass = reverse_path_pass(space, host, family, rules, tables) if family == 4 else None
    return Routing(local, forward, out_forward | _local_output(space, out_local), redirects, rp_pass,
                   unrouted & ~local, out_unrouted & ~out_local)


def _forwarding(space, host: HostContext, family: int, forward, unrouted):
    """``(forward, unrouted)`` once forwarding is applied."""
    # Forwarding off (``ip_forward=0``, IPv6 ``conf.all.forwarding=0``):
    # every packet routed on is dropped; IPv4 per input interface
    # (``conf.<iif>.forwarding``; ``ip_forward`` sets them all, and an
    # interface with no setting of its own follows it, as the engine has it).
    if host.forwards_any(family) is False:
        unrouted, forward = unrouted | forward, space.false
    elif family == 4:
        allowed = space.false
        any_known = False
        idomain = space.layout.interfaces["iif"]
        per_dev = {}
        for key, value in host.sysctls.items():
            parts = key.split(".")
            if len(parts) == 5 and parts[:3] == ["net", "ipv4", "conf"] and parts[4] == "forwarding" \
                    and parts[3] not in ("all", "default"):
                per_dev[parts[3]] = value.strip() == "1"
        if per_dev and len(set(per_dev.values())) > 1:
            codes_on = {interface_code(idomain, d) for d, on in per_dev.items() if on}
            codes_off = {interface_code(idomain, d) for d, on in per_dev.items() if not on}
            if not codes_on & codes_off:  # each class wholly on or off
                any_known = True
                allowed = space.one_of("iif", sorted(codes_on)) if codes_on else space.false
                if host.forwarding(4) is not False:  # (the others follow ip_forward)
                    allowed |= ~space.one_of("iif", sorted(codes_on | codes_off))
        if any_known:
            unrouted |= forward & ~allowed
            forward &= allowed
    return forward, unrouted


def reverse_path_pass(space, host: HostContext, family: int, rules, tables: "_Tables"):
    """The IPv4 packets the reverse-path filter lets pass, as
    ``fib_validate_source`` decides (:meth:`HostContext.reverse_path`): on
    an input interface whose ``rp_filter`` (the larger of ``conf.all`` and
    ``conf.<dev>``) is 1, the route back to the source — the lookup of the
    source from the destination, mark only with ``src_valid_mark`` — must
    be unicast and leave by that interface; with 2 it must be unicast; with
    0 (or unset) anything passes. ``lo`` and names the host does not have
    pass. None when nothing is filtered, or when a policy rule selects on
    the input interface, protocol or ports (the backward lookup's input
    interface is the forward route's output; left to the engine)."""
    modes = {}
    for dev in host.interfaces:
        if dev == "lo" or dev in host.bridge_ports:
            continue  # nothing arrives from the network on lo; bridge ports arrive as their bridge
        mode = host.rp_filter(dev)
        if mode:
            modes[dev] = mode
    if not modes:
        return None
    if any(r.iif is not None or r.ipproto is not None or r.sport or r.dport for r in rules):
        return None
    valid_mark = any(host._sysctl_int(f"net.ipv4.conf.{k}.src_valid_mark") for k in ("all", *modes))
    sp = space
    back_by: dict[str, object] = {}
    back_any = sp.false
    selector = lambda rule: _selector(sp, rule, None, backwards=True, mark=None if valid_mark else 0)  # noqa: E731
    for hit, route in _lookup(sp, rules, tables, selector, "src"):
        if route.type == "unicast":  # local, broadcast, reject: no unicast route back
            back_any |= hit
            for dev in route.devices:
                back_by[dev] = back_by.get(dev, sp.false) | hit
    domain = sp.layout.interfaces["iif"]
    filtered = [interface_code(domain, d) for d in modes]
    node = ~sp.one_of("iif", filtered)
    for dev, mode in modes.items():
        back = back_any if mode != 1 else back_by.get(dev, sp.false)
        node |= sp.one_of("iif", [interface_code(domain, dev)]) & back
    return node


def _local_output(space, local):
    """The host's packets to its own addresses leave by ``lo``."""
    domain = space.layout.interfaces["oif"]
    return local & space.one_of("oif", [interface_code(domain, "lo")])


class _Tables:
    """Per table: ``(region, route)`` pairs, longest prefixes first, where a
    region is the route's prefix minus every longer prefix of the table."""

    def __init__(self, space, routes):
        self.space = space
        self.by_table: dict[str, list] = {}
        for r in routes:
            self.by_table.setdefault(r.table, []).append(r)
        self.cache: dict[str, list] = {}

    def regions(self, table: str, field: str = "dst") -> list:
        """``(region, route)`` pairs; ``field="src"`` gives the regions of
        the packets whose source the route covers (the backward lookup of
        the reverse-path filter)."""
        if (table, field) not in self.cache:
            sp = self.space
            out = []
            covered = sp.false
            best: dict = {}
            for r in sorted(self.by_table.get(table, []), key=lambda r: (-r.dst.prefixlen, r.metric)):
                key = r.dst
                if key in best:
                    continue  # the lowest metric of one prefix wins
                best[key] = r
                prefix = encode_bounds(AddressMatch(field, (r.dst,)), sp)[1]
                region = prefix & ~covered
                covered |= prefix
                if region != sp.false:
                    out.append((region, r))
            self.cache[(table, field)] = out
        return self.cache[(table, field)]


def _selector(space, rule: PolicyRule, iif_fixed: str | None, backwards: bool = False,
              mark: int | None = None):
    """The packets ``rule``'s selector takes. ``backwards``: in the
    reverse-path lookup, where the packet's source is the destination
    looked up (``from``/``to`` swap); ``mark``: the mark the lookup uses
    when it is not the packet's (0 without ``src_valid_mark``)."""
    sp = space
    node = sp.true
    src_field, dst_field = ("dst", "src") if backwards else ("src", "dst")
    if rule.src is not None:
        node &= encode_bounds(AddressMatch(src_field, (rule.src,)), sp)[1]
    if rule.dst is not None:
        node &= encode_bounds(AddressMatch(dst_field, (rule.dst,)), sp)[1]
    if rule.iif is not None:
        if iif_fixed is not None:
            node = node if rule.iif == iif_fixed else sp.false
        else:
            domain = sp.layout.interfaces["iif"]
            if _wildcard_prefix(rule.iif) is None:
                node &= sp.one_of("iif", [interface_code(domain, rule.iif)])
    if rule.oif is not None:
        # fib_rule_match(): oif selects sockets bound to a device; forwarded
        # packets have none. Host packets: unknown socket, taken as unbound.
        node = sp.false
    if rule.fwmark is not None:
        if mark is not None:
            node = node if (mark & rule.fwmask) == rule.fwmark else sp.false
        else:
            node &= encode_bounds(BitsMatch("mark", rule.fwmask, frozenset({rule.fwmark & rule.fwmask})), sp)[1]
    if rule.ipproto is not None:
        node &= encode_bounds(IntMatch("proto", ((rule.ipproto, rule.ipproto),)), sp)[1]
    for field, span in (("sport", rule.sport), ("dport", rule.dport)):
        if span is not None:
            node &= encode_bounds(IntMatch(field, (span,)), sp)[1]
    return ~node if rule.invert else node


def _decide(space, rules, tables: _Tables, domain, iif_fixed: str | None, output: bool = False):
    """``(local, forward, dropped)`` of one lookup: ``dropped`` holds the
    packets it finds no route for, or a reject route or rule (blackhole,
    unreachable, prohibit); ``output``: the host's own packets, where a
    subnet's broadcast route sends by its device."""
    sp = space
    local = forward = routed = rejected = sp.false
    for hit, route in _lookup(sp, rules, tables, lambda rule: _selector(sp, rule, iif_fixed), "dst"):
        routed |= hit
        if route.devices and (route.type == "unicast"
                              or output and route.type in ("broadcast", "multicast")):
            codes = sorted({interface_code(domain, d) for d in route.devices})
            forward |= hit & sp.one_of("oif", codes)
        elif route.type in ("local", "broadcast", "multicast"):
            local |= hit
        elif route.type in REJECT_TYPES:
            rejected |= hit
    # (any other route type, or a unicast route without a device, is not
    # modelled: in none of the three, as the engine answers "unknown")
    return local, forward, rejected | ~routed


def _lookup(sp, rules, tables: _Tables, selector, field: str):
    """``(packets, route)`` for each route that ends the lookup of the
    packets ``field`` addresses (``dst``; ``src`` for the reverse path):
    policy rules in order, a rule's table longest prefix first; reject
    rules end the lookup without a route (nothing is yielded for them)."""
    remaining = sp.true
    for rule in rules:
        sel = selector(rule) & remaining
        if sel == sp.false:
            continue
        if rule.action in REJECT_TYPES:
            remaining &= ~sel
            continue
        for region, route in tables.regions(rule.table, field):
            if route.type == "throw":
                continue
            if rule.suppress_prefixlength is not None and route.dst.prefixlen <= rule.suppress_prefixlength:
                continue
            hit = sel & region
            if hit == sp.false:
                continue
            yield hit, route
            remaining &= ~hit  # reject routes (and anything else) end the lookup
            if remaining == sp.false:
                break
