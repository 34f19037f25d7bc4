"""A TCP connection across several firewalls, hop by hop.

:func:`trace_path` finds the least-cost route(s) between two nodes of a
:class:`~ruleanalyzer.topology.Topology` and evaluates every leg of the
connection (the leg specs of :mod:`ruleanalyzer.engine.connect`: SYN,
SYN-ACK, ACK, data, the ECN variants) at every firewall layer on the way, in
the direction the packet travels:

- a host's own rules (``netfilter`` layers) are evaluated on the hook the
  kernel uses: ``output`` where the packet starts, ``input`` where it is
  addressed to the host, ``forward`` where the host routes it. A DNAT that
  sends a packet for the host on (a Docker published port, a port forward)
  turns ``input`` into the forward path, exactly as the engine reports it
  (``outcome == "forwarded"``), and when the new destination belongs to
  another node the route continues there;
- a cloud firewall (``boundary`` layer) filters what enters its node or
  subnet with its ingress chain and what leaves with its egress chain;
  traffic that stays inside a subnet does not cross the subnet's ACL.

Connection state is kept per stateful layer (conntrack hosts, security
groups, NSGs, GCP): the SYN opens the connection there and later legs are
ESTABLISHED. Stateless layers (AWS network ACLs) evaluate every packet on
its own. The SYN fixes each layer's translation: later packets of the
connection cross it with the same addresses (replies reversed), as
conntrack does. Routing is assumed symmetric: replies retrace the route.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..errors import RuleAnalyzerError
from ..model import (CWR, ECE, AddressMatch, Dispatch, IntMatch, Nat, Packet, Ruleset, Table,
                     protocol_number)
from ..topology import Firewall, Node, Topology
from .connect import ECN_LEGS, PLAIN_LEGS, LegSpec, connection_passes
from .evaluate import Evaluator
from .result import Result

#: The hook a reply crosses where the original packet crossed ``hook``.
REPLY_HOOK = {"input": "output", "output": "input", "forward": "forward"}
#: How many times one SYN may be sent elsewhere by DNAT before we give up.
MAX_REROUTES = 8

Endpoints = tuple  # (src, sport, dst, dport)


@dataclass
class Check:
    """One packet crossing one firewall layer of one node."""

    node: Node
    firewall: Firewall
    #: ``ingress`` / ``egress`` for a cloud boundary, ``host`` for a host's
    #: own rules.
    side: str
    packet: Packet
    result: Result

    @property
    def verdict(self) -> str:
        return self.result.verdict

    @property
    def where(self) -> str:
        """``web (sg-web, egress)`` — where this check happened, in words."""
        part = self.side if self.side != "host" else self.packet.hook
        return f"{self.node.name} ({self.firewall.name}, {part})"


@dataclass
class Crossing:
    """What the connection's first packet did at one layer: the addresses it
    arrived and left with, on which hook, through which interfaces. Later
    packets of the connection cross the layer the same way."""

    node: Node
    firewall: Firewall
    side: str
    hook: str
    outcome: str
    iif: str | None
    oif: str | None
    before: Endpoints
    after: Endpoints
    state: str

    @property
    def later_hook(self) -> str:
        """The hook later packets of the connection take: a DNAT that made
        the first one forwarded sends them all on the forward path."""
        return "forward" if self.hook == "input" and self.outcome == "forwarded" else self.hook

    @property
    def filter_view(self) -> Endpoints:
        """The addresses filter chains see: after DNAT (prerouting) and
        before SNAT (postrouting)."""
        return (self.before[0], self.before[1], self.after[2], self.after[3])


@dataclass
class PathLeg:
    """One packet of the connection and what every layer on its way did."""

    spec: LegSpec
    checks: list[Check] = field(default_factory=list)
    sent: bool = True

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def verdict(self) -> str:
        if not self.sent:
            return "not sent"
        verdicts = {c.verdict for c in self.checks}
        return "drop" if "drop" in verdicts else "unknown" if "unknown" in verdicts else "accept"

    @property
    def first_failure(self) -> Check | None:
        """Where the leg dies (the drop), or else the first undecided layer."""
        for wanted in ("drop", "unknown"):
            for check in self.checks:
                if check.verdict == wanted:
                    return check
        return None

    def at(self, node: str, firewall: Firewall) -> list[Check]:
        return [c for c in self.checks if c.node.name == node and c.firewall is firewall]


@dataclass
class PathVariant:
    """The connection with ECN off or on along one route."""

    ecn: bool
    route: list[str]
    legs: list[PathLeg] = field(default_factory=list)
    crossings: list[Crossing] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passes(self) -> bool | None:
        return connection_passes(leg.verdict for leg in self.legs)

    @property
    def first_failure(self) -> PathLeg | None:
        """The first leg that dies; else the first that is undecided."""
        for wanted in ("drop", "unknown"):
            for leg in self.legs:
                if leg.verdict == wanted:
                    return leg
        return None

    def layers(self) -> list[tuple[Node, Firewall]]:
        """Every firewall layer on the route, in the order the SYN meets
        them (a layer crossed twice is listed once)."""
        seen, out = set(), []
        for c in self.crossings:
            if id(c.firewall) not in seen:
                seen.add(id(c.firewall))
                out.append((c.node, c.firewall))
        return out


@dataclass
class RouteAnalysis:
    """Every ECN variant of the connection along one route."""

    route: list[str]
    variants: list[PathVariant]
    plain_retry: PathVariant | None = None

    @property
    def fallback(self) -> PathVariant | None:
        """The plain variant Linux falls back to when an ECN SYN dies."""
        return next((v for v in self.variants if not v.ecn), self.plain_retry)

    def variant_outcome(self, variant: PathVariant) -> bool | None:
        if variant.passes is not False or not variant.ecn:
            return variant.passes
        failed = variant.first_failure
        if failed is not None and failed.name.startswith("SYN") and self.fallback is not None:
            return self.fallback.passes
        return False

    @property
    def passes(self) -> bool | None:
        outcomes = [self.variant_outcome(v) for v in self.variants]
        return False if False in outcomes else None if None in outcomes else True


@dataclass
class PathReport:
    """The answer of :func:`trace_path`: one analysis per equal-cost route."""

    topology: Topology
    source: str
    target: str
    client: str
    server: str
    dport: int
    proto: int
    ecn: str
    routes: list[RouteAnalysis]

    @property
    def passes(self) -> bool | None:
        """True when the connection works on every route, False when some
        route blocks it, None when one depends on something unknown."""
        outcomes = [r.passes for r in self.routes]
        return False if False in outcomes else None if None in outcomes else True

    def explain(self) -> list[str]:
        """Plain words: one sentence per route and variant, then the notes."""
        from ..report.path import explain_variant

        out = []
        for analysis in self.routes:
            for variant in analysis.variants:
                out.append(explain_variant(analysis, variant))
        return out


class _Slicer:
    """Per firewall, the rules that can matter to one connection.

    Every packet of a connection carries one of a handful of addresses and
    ports, so most rules of a big ruleset (other hosts, other ports, other
    protocols) can never match any of them. Dropping those rules before
    evaluation changes no verdict and keeps every rule's identity (index,
    location) — the chains are new lists of the same Rule objects — and
    makes a long path over big rulesets fast. Only sound when nothing
    rewrites the addresses during evaluation: for a ruleset without NAT
    rules, or for packets of a tracked connection (NAT chains see only a
    connection's first packet).
    """

    def __init__(self):
        self._nat: dict[int, bool] = {}
        self._slices: dict[tuple, Ruleset] = {}

    def has_nat(self, ruleset: Ruleset) -> bool:
        known = self._nat.get(id(ruleset))
        if known is None:
            known = self._nat[id(ruleset)] = any(_rewrites(r) for r in ruleset.rules())
        return known

    def slice(self, ruleset: Ruleset, values: dict[str, frozenset]) -> Ruleset:
        key = (id(ruleset), tuple(sorted(values.items(), key=lambda kv: kv[0])))
        sliced = self._slices.get(key)
        if sliced is None:
            sliced = self._slices[key] = _sliced(ruleset, values)
        return sliced


def _rewrites(rule) -> bool:
    actions = [rule.action, *rule.effects]
    while actions:
        action = actions.pop()
        if isinstance(action, Nat):
            return True
        if isinstance(action, Dispatch):
            actions.extend(a for _, a in action.branches)
    return False


def _cannot_match(match, values: dict[str, frozenset]) -> bool:
    """Is top-level ``match`` false for every combination of ``values``?"""
    if isinstance(match, AddressMatch) and match.field in values:
        hits = [any(v.version == n.version and v in n for n in match.networks)
                for v in values[match.field]]
    elif isinstance(match, IntMatch) and match.field in values:
        hits = [any(lo <= v <= hi for lo, hi in match.ranges) for v in values[match.field]]
    else:
        return False
    return not any(h != match.negate for h in hits)


def _sliced(ruleset: Ruleset, values: dict[str, frozenset]) -> Ruleset:
    out = Ruleset(sources=ruleset.sources, diagnostics=ruleset.diagnostics, meta=ruleset.meta)
    for table in ruleset.tables:
        copy = Table(table.name, family=table.family, location=table.location,
                     dialect=table.dialect)
        for chain in table.chains.values():
            kept = [r for r in chain.rules if not any(_cannot_match(m, values) for m in r.matches)]
            copy.add_chain(dataclasses.replace(chain, table=None, rules=kept))
        out.add_table(copy)
    return out


class _Walker:
    """Evaluates legs along routes, one evaluator per ruleset."""

    def __init__(self, topology: Topology, sport: int, dport: int, proto: int):
        self.topology = topology
        self.sport, self.dport, self.proto = sport, dport, proto
        self._evaluators: dict[int, Evaluator] = {}
        self._slicer = _Slicer()

    def evaluate(self, firewall: Firewall, packet: Packet, tracked: bool = False,
                 ends: tuple[Endpoints, ...] = ()) -> Result:
        """``packet`` through ``firewall``; ``ends`` are every address/port
        set the connection's packets can carry there, when known."""
        ruleset = firewall.ruleset
        if ends and (tracked or not self._slicer.has_nat(ruleset)):
            values = {"src": frozenset(e[i] for e in ends for i in (0, 2)),
                      "sport": frozenset(e[i] for e in ends for i in (1, 3)),
                      "proto": frozenset({self.proto})}
            values["dst"], values["dport"] = values["src"], values["sport"]
            ruleset = self._slicer.slice(ruleset, values)
        evaluator = self._evaluators.get(id(ruleset))
        if evaluator is None:
            evaluator = self._evaluators[id(ruleset)] = Evaluator(ruleset)
        return evaluator.evaluate(packet)

    # -- where layers sit -------------------------------------------------------

    def _enters(self, node: Node, prev: str | None) -> bool:
        if prev is None:
            return False
        if node.kind == "subnet":
            return not self.topology.is_member(node, self.topology.node(prev))
        return True

    def _leaves(self, node: Node, nxt: str | None) -> bool:
        if nxt is None:
            return False
        if node.kind == "subnet":
            return not self.topology.is_member(node, self.topology.node(nxt))
        return True

    # -- the first packet ---------------------------------------------------------

    def open(self, route: list[str], spec: LegSpec, client, server) -> tuple[PathVariant, PathLeg]:
        """Send the SYN along ``route``: every layer's crossing is recorded
        (and the route follows DNAT to the node that owns the new address)."""
        variant = PathVariant(ecn=bool(spec.flags & (ECE | CWR)), route=list(route))
        leg = PathLeg(spec)
        route = variant.route
        ends: Endpoints = (client, self.sport, server, self.dport)
        flags, ecn = spec.flags, spec.ecn
        reroutes = 0
        i = 0
        while i < len(route):
            node = self.topology.node(route[i])
            prev = route[i - 1] if i else None
            nxt = route[i + 1] if i + 1 < len(route) else None
            plan = []
            if prev is not None:
                plan = [(fw, "ingress" if fw.kind == "boundary" else "host") for fw in node.firewalls
                        if fw.kind == "netfilter" or self._enters(node, prev)]
            step = 0
            leaving_planned = False
            while True:
                if step == len(plan) and not leaving_planned:
                    # Decided only now: DNAT at this node may have changed the next hop.
                    nxt = route[i + 1] if i + 1 < len(route) else None
                    if nxt is not None:
                        for fw in reversed(node.firewalls):
                            if fw.kind == "netfilter" and prev is None:
                                plan.append((fw, "host"))
                            elif fw.kind == "boundary" and self._leaves(node, nxt):
                                plan.append((fw, "egress"))
                    leaving_planned = True
                if step >= len(plan):
                    break
                fw, side = plan[step]
                step += 1
                if side == "host":
                    hook = ("output" if prev is None else
                            "input" if node.owns(ends[2]) else "forward")
                    iif, oif = node.interface_to(prev), node.interface_to(nxt)
                else:
                    hook, iif, oif = ("input" if side == "ingress" else "output"), None, None
                state = "new" if fw.stateful else "untracked"
                packet = self._packet(ends, flags, ecn, hook, iif, oif, state, "original", frozenset())
                result = self.evaluate(fw, packet, ends=(ends,))
                passing = _passing(result)
                if side == "host" and passing is not None:
                    new_route = self._follow_nat(route, i, node, ends, passing.packet, variant,
                                                 reroutes)
                    if new_route is not None:
                        reroutes += 1
                        route[:] = new_route
                        nxt = route[i + 1] if i + 1 < len(route) else None
                        if node.interface_to(nxt) != oif:
                            # The translated packet leaves by another interface:
                            # FORWARD/POSTROUTING rules see that one.
                            packet = packet.replace(oif=node.interface_to(nxt))
                            oif = packet.oif
                            result = self.evaluate(fw, packet, ends=(ends,))
                leg.checks.append(Check(node, fw, side, packet, result))
                passing = _passing(result)
                out = passing.packet if passing is not None else None
                after = ends if out is None else _endpoints(out)
                if out is not None and _masqueraded(passing):
                    # MASQUERADE takes the outgoing interface's address, which
                    # only the topology knows.
                    source = node.source_address(oif, ends[2])
                    if source is not None:
                        after = (source,) + after[1:]
                variant.crossings.append(Crossing(node, fw, side, hook, result.outcome, iif, oif,
                                                  ends, after, result.state))
                if result.verdict == "drop":
                    variant.legs.append(leg)
                    return variant, leg
                if out is not None:
                    ends, flags, ecn = after, out.flags, out.ecn
                    if side == "host" and result.outcome == "forwarded" and hook == "input" \
                            and nxt is None:
                        variant.notes.append(
                            f"{node.name} forwards the connection to {_ep(ends[2], ends[3])}, "
                            "which no node of the topology owns: the path ends there")
            i += 1
        variant.legs.append(leg)
        return variant, leg

    def _follow_nat(self, route: list[str], i: int, node: Node, ends: Endpoints, out: Packet,
                    variant: PathVariant, reroutes: int) -> list[str] | None:
        """After a DNAT at ``node``: the route to the node owning the new
        destination, or None when the route stays as it is."""
        new_dst = out.dst
        if new_dst == ends[2] or node.owns(new_dst):
            return None
        owner = self.topology.owner(new_dst)
        if owner is None or owner.name == route[-1]:
            return None
        if reroutes >= MAX_REROUTES:
            raise RuleAnalyzerError(f"DNAT sends the connection around more than {MAX_REROUTES} times")
        onward = self.topology.routes(node.name, owner.name)
        variant.notes.append(
            f"DNAT at {node.name} sends the connection to {_ep(new_dst, out.dport)} "
            f"({owner.name}): the route continues {' → '.join(onward[0])}"
            + (f" (first of {len(onward)} equal-cost routes)" if len(onward) > 1 else ""))
        return route[:i] + onward[0]

    # -- later packets ------------------------------------------------------------

    def follow(self, variant: PathVariant, spec: LegSpec, index: int, tracked: dict[int, bool],
               dead: bool) -> PathLeg:
        """A later leg of the connection, through the layers the SYN crossed."""
        leg = PathLeg(spec, sent=not dead)
        if dead:
            return leg
        crossings = variant.crossings if spec.direction == "to_server" else reversed(variant.crossings)
        flags, ecn = spec.flags, spec.ecn
        for c in crossings:
            src, sport, dst, dport = c.filter_view
            if spec.direction == "to_server":
                ends, hook, iif, oif = (src, sport, dst, dport), c.later_hook, c.iif, c.oif
            else:
                ends, hook, iif, oif = (dst, dport, src, sport), REPLY_HOOK[c.later_hook], c.oif, c.iif
            if c.side != "host":
                iif = oif = None
            if hook == "input":
                oif = None
            elif hook == "output":
                iif = None
            if not c.firewall.stateful:
                state, direction, status = "untracked", None, frozenset()
            elif tracked.get(id(c.firewall), True):
                state = "established"
                direction = "original" if spec.direction == "to_server" else "reply"
                status = frozenset({"seen_reply"}) if index >= 2 else frozenset()
            else:
                state, direction, status = "new", None, frozenset()
            packet = self._packet(ends, flags, ecn, hook, iif, oif, state, direction, status)
            result = self.evaluate(c.firewall, packet, tracked=state == "established"
                                   or c.firewall.kind == "boundary", ends=(c.filter_view,))
            side = c.side
            if spec.direction == "to_client" and side != "host":
                side = "egress" if side == "ingress" else "ingress"  # replies leave where SYNs enter
            leg.checks.append(Check(c.node, c.firewall, side, packet, result))
            if result.verdict == "drop":
                break
            if result.verdict == "accept":
                flags, ecn = result.packet.flags, result.packet.ecn
        return leg

    def _packet(self, ends: Endpoints, flags: int, ecn: int, hook: str, iif, oif, state: str,
                direction, status) -> Packet:
        src, sport, dst, dport = ends
        return Packet(src=src, dst=dst, proto=self.proto, sport=sport, dport=dport, flags=flags,
                      ecn=ecn, state=state, hook=hook, iif=iif, oif=oif,
                      ct_direction=direction, ct_status=status)

    # -- a whole variant --------------------------------------------------------

    def run(self, route: list[str], ecn: bool, client, server) -> PathVariant:
        specs = ECN_LEGS if ecn else PLAIN_LEGS
        variant, first = self.open(route, specs[0], client, server)
        tracked = {id(c.firewall): c.state != "untracked" for c in variant.crossings
                   if c.firewall.stateful}
        dead = first.verdict == "drop"
        for index, spec in enumerate(specs[1:], 1):
            leg = self.follow(variant, spec, index, tracked, dead)
            variant.legs.append(leg)
            if leg.verdict == "drop" and spec.handshake:
                dead = True
        _note_docker_bypass(variant)
        return variant


def _note_docker_bypass(variant: PathVariant) -> None:
    """Say where a DNAT made a packet for a host skip its INPUT chain."""
    for check in variant.legs[0].checks if variant.legs else ():
        result = check.result
        if check.side != "host" or check.packet.hook != "input" or result.outcome != "forwarded":
            continue
        nat = next((s for s in result.trace if s.event == "nat"), None)
        by = result.decided_by.describe() if result.decided_by else "the forward path's policy"
        via = (f" ({nat.chain.table.name if nat.chain.table else ''} {nat.chain.name} rule "
               f"{nat.rule.index}: {nat.rule.text})" if nat is not None and nat.rule else "")
        p, out = check.packet, result.packet
        variant.notes.append(
            f"{check.node.name}: the SYN to {_ep(p.dst, p.dport)} never reaches INPUT — DNAT{via} "
            f"forwards it to {_ep(out.dst, out.dport)} and the FORWARD path decides: {by}. "
            "INPUT rules (and ufw's deny rules) do not protect this port.")


def _passing(result: Result) -> Result | None:
    """The answer under which the packet goes on, when every possible answer
    that lets it through translates it the same way. An answer that hangs on
    the output interface (FORWARD ``-o docker0``) still tells where DNAT
    sends the packet — and so which interface it really leaves by."""
    if result.verdict == "accept":
        return result
    candidates = [r for r in result.alternatives if r.verdict == "accept"]
    if result.verdict == "unknown" and candidates:
        if len({_endpoints(r.packet) for r in candidates}) == 1:
            return candidates[0]
    return None


def _masqueraded(result: Result) -> bool:
    return any(s.event == "nat" and s.detail.startswith("masquerade") for s in result.trace)


def _endpoints(packet: Packet) -> Endpoints:
    return (packet.src, packet.sport, packet.dst, packet.dport)


def _ep(addr, port) -> str:
    return f"{addr}:{port}" if port is not None else str(addr)


def trace_path(topology: Topology, source: str, target: str, dport: int, *, proto: str = "tcp",
               ecn: str = "off", sport: int = 40000, max_routes: int = 16) -> PathReport:
    """Every leg of a TCP connection from node ``source`` to ``target:dport``
    at every firewall on the least-cost route(s) between them.

    ``ecn`` is ``off``, ``on`` or ``both``; with ``on`` the plain connection
    Linux falls back to is analysed too.

    >>> from ruleanalyzer.topology import load_topology
    >>> topo = load_topology("fixtures/topologies/docker-ufw/topology.yaml")  # doctest: +SKIP
    >>> trace_path(topo, "laptop", "db-host", 5432).passes                   # doctest: +SKIP
    True
    """
    if ecn not in ("off", "on", "both"):
        raise RuleAnalyzerError(f"unknown ECN mode {ecn!r}", hint="use off, on or both")
    try:
        proto_number = protocol_number(proto)
    except ValueError as exc:
        raise RuleAnalyzerError(str(exc)) from None
    if proto_number != 6:
        raise RuleAnalyzerError(f"path emulates TCP connections; --proto {proto} is not supported",
                                hint="use --proto tcp")
    for name, port in (("--dport", dport), ("--sport", sport)):
        if not 0 < int(port) < 65536:
            raise RuleAnalyzerError(f"{name} {port} is out of range 1-65535")
    src_node, dst_node = topology.node(source), topology.node(target)
    if source == target:
        raise RuleAnalyzerError("--from and --to name the same node")
    client, server = _endpoint_address(src_node), _endpoint_address(dst_node)
    if client.version != server.version:
        raise RuleAnalyzerError(f"{source} ({client}) and {target} ({server}) have different IP "
                                "versions")
    walker = _Walker(topology, int(sport), int(dport), proto_number)
    modes = {"off": [False], "on": [True], "both": [False, True]}[ecn]
    analyses = []
    for route in topology.routes(source, target, max_routes):
        variants = [walker.run(route, m, client, server) for m in modes]
        retry = walker.run(route, False, client, server) if ecn == "on" else None
        analyses.append(RouteAnalysis(list(route), variants, retry))
    return PathReport(topology, source, target, str(client), str(server), int(dport), proto_number,
                      ecn, analyses)


def _endpoint_address(node: Node):
    if node.address is None:
        raise RuleAnalyzerError(f"node {node.name!r} has no address to connect from or to",
                                node.location, hint="give it address: (a representative address "
                                                    "for the internet or a subnet)")
    return node.address


def route_layers(topology: Topology, route: list[str]) -> list[tuple[Node, Firewall]]:
    """Every firewall layer a connection along ``route`` crosses, in route
    order — also those its packets never reach (for tables and pictures)."""
    walker = _Walker(topology, 1, 1, 6)
    out = []
    for i, name in enumerate(route):
        node = topology.node(name)
        prev = route[i - 1] if i else None
        nxt = route[i + 1] if i + 1 < len(route) else None
        for fw in node.firewalls:
            if fw.kind == "netfilter" or walker._enters(node, prev) or walker._leaves(node, nxt):
                out.append((node, fw))
    return out


__all__ = ["trace_path", "route_layers", "PathReport", "RouteAnalysis", "PathVariant", "PathLeg",
           "Check", "Crossing"]
