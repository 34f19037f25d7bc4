"""Change impact: which packets get a different verdict between two rulesets.

    >>> from ruleanalyzer import loads
    >>> old = loads("*filter\\n:INPUT DROP [0:0]\\nCOMMIT\\n", dialect="iptables")
    >>> new = loads("*filter\\n:INPUT DROP [0:0]\\n-A INPUT -p tcp --dport 22 -j ACCEPT\\nCOMMIT\\n",
    ...             dialect="iptables")
    >>> report = diff(old, new, hooks=("input",), findings=False)
    >>> [(r.kind, r.text) for r in report.regions]
    [('opened', 'tcp from 0.0.0.0/0 to 0.0.0.0/0 dport 22')]
    >>> report.opened[0].new.decided_by.describe()
    'filter INPUT rule 1 (<string>:3): -A INPUT -p tcp --dport 22 -j ACCEPT'

Both rulesets are walked symbolically (:mod:`ruleanalyzer.space.reach`) in
ONE packet space whose name domains cover both, per hook and family. The
packets whose verdict differs are split into readable regions; each region
gets a witness packet that the concrete engine then runs through both
versions (the rules responsible, file:line) — a witness the concrete engine
does not confirm is reported as an internal inconsistency, never dropped.

Speed: a packet whose verdict changed must match a rule that changed (or
a rule that rewrote it on the way there), so when the versions share most
rules, the walk is restricted to those *candidate* packets (pre-images
through NAT/mark rewrites included). A changed policy, hook or priority
makes every packet a candidate.

Regions hold packets whose connection-tracking state the kernel could give
them (a SYN-ACK is never NEW, see :mod:`ruleanalyzer.engine.conntrack`), the
same packets the concrete engine can be asked about.
"""

from __future__ import annotations

import difflib
import importlib
import time
from collections import Counter
from dataclasses import dataclass, field

from .engine.connect import connect
from .engine.evaluate import Evaluator
from .engine.result import Result
from .model import (HOOK_PATHS, Chain, Dispatch, EcnStrip,
                    Nat, Notrack, Packet, Rule, Ruleset, SetField)
from .space import Layout, PacketSet, Space, witness
from .space.encode import encode_conjunction, reads_ttl, ttl_before_forward
from .space.fields import TCP
from .space.packetset import cyclic_gc_paused
from .space.reach import analyze
from .checks.base import shared_space

#: Regions shown per (hook, family, change); the rest is one "… more" region.
REGION_LIMIT = 12
#: Longest differing stretch of a chain matched rule by rule (difflib);
#: longer stretches count as wholly changed.
MATCHED_STRETCH = 20000
#: Rounds of pre-images through rewriting rules before giving up (all packets).
PREIMAGE_ROUNDS = 6

#: The describer module (the package exports its function under the same name).
describe_module = importlib.import_module("ruleanalyzer.space.describe")

KINDS = ("opened", "closed", "unknown", "rewritten")
#: A ``rewritten`` region's verdict in the version that does not bring its
#: packets to the hook's verdict (it rewrites them otherwise, or not at all).
UNREACHED = "unreached"


@dataclass
class ConnectionChange:
    """A TCP handshake (the witness's addresses and port) that passed in
    one version and fails in the other."""

    client: str
    server: str
    dport: int
    old_passes: bool | None
    new_passes: bool | None
    old_explanation: str
    new_explanation: str

    @property
    def text(self) -> str:
        word = {True: "passes", False: "fails", None: "depends on unknowns"}
        return (f"TCP {self.client} -> {self.server}:{self.dport}: the handshake "
                f"{word[self.old_passes]} before, {word[self.new_passes]} now")


@dataclass
class Region:
    """Packets on one hook whose verdict went from ``was`` to ``now``."""

    #: opened (drop → accept), closed (accept → drop), unknown (either side
    #: unknown), rewritten (one version alone brings these packets — as
    #: rewritten — to this hook's verdict)
    kind: str
    was: str
    now: str
    hook: str
    family: int
    text: str
    packets: PacketSet = field(repr=False)
    witness: Packet
    old: Result = field(repr=False)
    new: Result = field(repr=False)
    #: The concrete engine gives the witness ``was`` on old and ``now`` on new.
    confirmed: bool = True
    note: str = ""
    connection: ConnectionChange | None = None
    #: ``rewritten`` regions: a packet as it arrives that one version turns
    #: into a packet of the region, and the engine's answers for it.
    arrival: Packet | None = None
    arrival_old: Result | None = field(default=None, repr=False)
    arrival_new: Result | None = field(default=None, repr=False)


@dataclass
class FindingChanges:
    """Audit findings only the new version has, and those it no longer has."""

    introduced: list = field(default_factory=list)
    resolved: list = field(default_factory=list)
    error: str = ""


@dataclass
class DiffReport:
    """What changed between ``old`` and ``new``."""

    old_name: str
    new_name: str
    hooks: tuple[str, ...]
    regions: list[Region] = field(default_factory=list)
    #: Per (hook, family, kind) the whole changed set (regions split it).
    changed: dict = field(default_factory=dict, repr=False)
    findings: FindingChanges | None = None
    #: Policy assertions that fail on the new version (filled by the caller).
    policy: list = field(default_factory=list)
    space: Space | None = field(default=None, repr=False)
    #: Candidate restriction used: ``all`` packets or ``changed rules``.
    scope: str = "all"
    changed_rules: int = 0
    #: The host snapshots differ in what decides verdicts beside the rules
    #: (addresses, routes, policy rules, sysctls, ipsets): every packet is
    #: compared.
    host_changed: bool = False
    seconds: float = 0.0
    #: ``diff --flows``: real flows whose verdict changed (a flows.FlowReport).
    flows: object = None

    def of_kind(self, kind: str) -> list[Region]:
        return [r for r in self.regions if r.kind == kind]

    @property
    def opened(self) -> list[Region]:
        return self.of_kind("opened")

    @property
    def closed(self) -> list[Region]:
        return self.of_kind("closed")

    @property
    def unknown(self) -> list[Region]:
        return self.of_kind("unknown")

    @property
    def rewritten(self) -> list[Region]:
        return self.of_kind("rewritten")

    @property
    def inconsistencies(self) -> list[Region]:
        return [r for r in self.regions if not r.confirmed]

    @property
    def verdicts_changed(self) -> bool:
        return bool(self.regions)

    @property
    def newly_allowed(self) -> bool:
        """Something may now be accepted that surely was not before."""
        return any(r.now in ("accept", "unknown", "may-accept", "mixed") and r.was != "accept"
                   for r in self.regions if r.kind != "closed")

    def contains(self, packet: Packet, hook: str | None = None) -> bool:
        """Is ``packet`` inside a reported changed set (membership in the space)?"""
        point = packet_point(self.space, packet)
        hook = hook or packet.hook
        return any(s.intersects(point) for (h, fam, _), s in self.changed.items()
                   if h == hook and fam == packet.family)


# ---------------------------------------------------------------------------
# The entry point
# ---------------------------------------------------------------------------


def diff(old: Ruleset, new: Ruleset, hooks=("input", "forward", "output"), *,
         findings: bool = True, connections: bool = True, old_name: str | None = None,
         new_name: str | None = None, limit: int = REGION_LIMIT) -> DiffReport:
    """The change impact of going from ``old`` to ``new`` (see the module doc)."""
    with cyclic_gc_paused():  # BDD work: the collector must not run inside dd
        return _diff(old, new, hooks, findings, connections, old_name, new_name, limit)


def _diff(old, new, hooks, findings, connections, old_name, new_name, limit) -> DiffReport:
    start = time.process_time()
    report = DiffReport(old_name or _name(old), new_name or _name(new), tuple(hooks))
    # (the host snapshots' interfaces and policy routing get the layout's
    # codes too: each version's walk routes with its own host)
    both = Ruleset(tables=[*old.tables, *new.tables], host=_hosts_together(old.host, new.host))
    # A space per layout is reused (a plan's hundreds of groups share one:
    # a fresh BDD manager costs more than a small group's whole diff).
    space = shared_space(Layout.for_ruleset(both))
    space.expect_rules(both.rule_count)
    report.space = space
    plan = _Plan(old, new)
    report.changed_rules = len(plan.changed_old) + len(plan.changed_new)
    report.host_changed = plan.host_changed
    full_valid = space.valid
    if plan.identical:
        candidate = space.false
    elif plan.everything:
        candidate = full_valid
    else:
        candidate = _candidates(plan, space)
    report.scope = "all" if candidate == full_valid else "changed rules"
    consistent = _conntrack_consistent(space, (old, new))
    # Regions are worded against every valid packet the kernel could give
    # that state, not against the narrowed universe of the walk.
    care = consistent
    evaluators = (Evaluator(old), Evaluator(new))
    rewrites = plan.rewrites
    families = _families(old) | _families(new)
    if candidate != space.false:
        # The walk starts from the candidate packets only; its sets stay
        # within the valid packets, not within the candidates: a changed
        # NAT or mark rule turns candidates into packets outside them (the
        # new DNAT target), whose verdicts are the change.
        start_set = full_valid & candidate
        for hook in hooks:
            for family in sorted(families):
                if not plan.everything and not plan.touches(hook, family):
                    continue
                if candidate & space.family(family) == space.false:
                    continue  # no changed rule sees this IP version (IPv4-only rules)
                _diff_hook(report, old, new, hook, family, space, start_set, consistent,
                           evaluators, rewrites, connections, limit, care, plan)
    if findings:
        report.findings = finding_changes(old, new)
    report.seconds = time.process_time() - start
    return report


def _name(ruleset: Ruleset) -> str:
    return " + ".join(ruleset.sources) if ruleset.sources else "<ruleset>"


def _families(ruleset: Ruleset) -> set[int]:
    out: set[int] = set()
    for t in ruleset.tables:
        if t.family == "ip":
            out.add(4)
        elif t.family == "ip6":
            out.add(6)
        elif t.family in ("inet", "netdev"):
            out |= {4, 6}
    return out or {4}


def _diff_hook(report, old, new, hook, family, space, start, consistent, evaluators, rewrites,
               connections, limit, care, plan) -> None:
    from .errors import RuleAnalyzerError
    from .space.reach import ReachError

    try:
        # Only the verdict sets are read: chains entered with no candidate
        # packet are not walked (kube-proxy: most KUBE-SVC/SEP chains).
        ra = analyze(old, hook, family, space, start=start, arrives_from=(old, new), records=False)
        rb = analyze(new, hook, family, space, start=start, arrives_from=(old, new), records=False)
    except ReachError as exc:  # jumps nested past the analysis' depth: an error, not a traceback
        raise RuleAnalyzerError(f"cannot compare the {hook} hook: {exc}",
                                hint="the kernel refuses jump cycles; a chain nesting this deep "
                                     "cannot be analysed") from None
    universe = space.wrap(space.family(family)) & consistent
    # Compared only where both versions bring packets to this hook's
    # verdict: a packet one version rewrites (NAT, a mark) or sends to
    # another hook, and the other does not make, has no verdict there to
    # compare; those are ``rewritten`` regions, each shown with a packet as
    # it arrives and its verdict in both versions.
    reach_o = ra.reached() & universe
    reach_n = rb.reached() & universe
    # (a snapshot without routes: what routing may drop is not surely accepted)
    acc_o, drop_o = ra.host_verdicts()[0] & reach_o, ra.dropped.lower & reach_o
    acc_n, drop_n = rb.host_verdicts()[0] & reach_n, rb.dropped.lower & reach_n
    shared = reach_o & reach_n
    unk_o = shared - acc_o - drop_o
    unk_n = shared - acc_n - drop_n
    moves = [("opened", "drop", "accept", drop_o & acc_n),
             ("closed", "accept", "drop", acc_o & drop_n),
             ("unknown", "drop", "unknown", drop_o & unk_n),
             ("unknown", "accept", "unknown", acc_o & unk_n),
             ("unknown", "unknown", "accept", unk_o & acc_n),
             ("unknown", "unknown", "drop", unk_o & drop_n)]
    # Undecided in both versions, but what they may become moved (say an
    # ipset-guarded rule now drops what it used to let through): split by
    # the possible outcomes, "may-accept" / "may-drop" / "unknown" (either).
    both = unk_o & unk_n
    if not both.is_empty():
        def labels(reach):
            a, d = reach.accepted.upper & both, reach.host_verdicts()[1] & both
            return {"may-accept": a - d, "may-drop": d - a, "unknown": (a & d) | (both - a - d)}
        lo, ln = labels(ra), labels(rb)
        for was, so in lo.items():
            for now, sn in ln.items():
                if was != now:
                    moves.append(("unknown", was, now, so & sn))
    for kind, was, now, packets in moves:
        if packets.is_empty():
            continue
        _note_changed(report, (hook, family, kind), packets)
        for text, part in regions(packets, limit, care):
            report.regions.append(_region(kind, was, now, hook, family, text, part, evaluators,
                                          rewrites, connections))
    # Rewritten packets one version alone makes: one region per readable
    # part, its verdict where that version decides it whole ("mixed" where
    # the part holds packets of several), shown with an arriving packet.
    for only, acc, drop, side in ((reach_o - reach_n - _unrouted_twin(ra, reach_n), acc_o, drop_o, 0),
                                  (reach_n - reach_o - _unrouted_twin(rb, reach_o), acc_n, drop_n, 1)):
        if only.is_empty():
            continue
        _note_changed(report, (hook, family, "rewritten"), only)
        for text, part in regions(only, limit, care):
            label = _label(part, acc, drop)
            was, now = (label, UNREACHED) if side == 0 else (UNREACHED, label)
            region = _region("rewritten", was, now, hook, family, text, part, evaluators,
                             rewrites, connections)
            # (an arriving packet whose rewritten form this version accepts
            # first: where a change opens or closes, that one shows it)
            for wanted in (part & acc, part):
                if not wanted.is_empty() and _arrival_example(region, wanted, plan.steps(space, side),
                                                              start, evaluators, side):
                    break
            arrival = region.arrival
            if connections and arrival is not None and arrival.proto == TCP and arrival.dport:
                region.connection = _connection_change(evaluators, arrival, hook)
            report.regions.append(region)


def _unrouted_twin(reach, other: PacketSet) -> PacketSet:
    """The packets ``reach``'s routing drops (with any output interface:
    they get none) that ``other`` holds with another one — the same packet
    as it arrived, routed by the other version (compared there, on the
    output interface the other gives it): no packet of one version alone."""
    space = other.space
    dropped = reach.routing_dropped
    if dropped is None:
        return space.empty()
    spec = space.spec("oif")
    oif = [spec.var(b) for b in range(spec.width)]
    return dropped.upper & space.wrap(space.exist(oif, other.node))


def _note_changed(report, key, packets) -> None:
    report.changed[key] = report.changed[key] | packets if key in report.changed else packets


def _label(part, acc, drop) -> str:
    """``part``'s verdict: accept / drop where every packet of it has it,
    unknown where none is decided, mixed otherwise."""
    if (part - acc).is_empty():
        return "accept"
    if (part - drop).is_empty():
        return "drop"
    if not part.intersects(acc) and not part.intersects(drop):
        return "unknown"
    return "mixed"


def _region(kind, was, now, hook, family, text, part, evaluators, rewrites, connections) -> Region:
    w = witness(part, hook)
    old_r, new_r = evaluators[0].evaluate(w), evaluators[1].evaluate(w)
    region = Region(kind, was, now, hook, family, text, part, w, old_r, new_r)
    if kind == "rewritten":
        # Its packets are rewritten ones (or reach another hook) in one
        # version: asked as they stand, the engine answers for packets that
        # arrive so, not for these. The arrival example is the confirmation.
        return region
    if not (_fits(old_r.verdict, was) and _fits(new_r.verdict, now)):
        region.confirmed = False
        region.note = (f"internal inconsistency: the symbolic walk says {was} → {now}, the concrete "
                       f"engine {old_r.verdict} → {new_r.verdict} for the witness")
        if rewrites:
            region.note += (" (the rulesets rewrite packets — NAT, marks —, and the symbolic sets"
                            " hold packets as rewritten when the verdict fell)")
    if connections and kind in ("opened", "closed") and w.proto == TCP and w.dport:
        region.connection = _connection_change(evaluators, w, hook)
    return region


def _arrival_example(region: Region, part: PacketSet, steps, start, evaluators, side: int,
                     tries: int = 8) -> bool:
    """Give a ``rewritten`` region a packet as it arrives that version
    ``side`` (0 old, 1 new) turns into a packet of ``part`` (within the
    region). Candidates are the pre-images through that version's rewriting
    ``steps`` (:meth:`_Plan.steps`), followed back up to
    :data:`PREIMAGE_ROUNDS` rewrites, met with the packets the walk began
    with; each round follows back only the rules that could have made one
    packet of the set (their written values are that packet's: kube-proxy
    writes ~50k different ones). A rule's match
    is only an upper bound on what reaches it (a jump's conditions are
    not in it), so the concrete engine checks each candidate: the version
    must turn it into a packet of the region; a candidate that it does not
    takes its destination and port out of the next try. A region no rule
    makes (routing alone moved it) is its own example. False where none is
    found within ``tries``."""
    space = part.space
    begin = getattr(start, "node", start)
    frontier, seen = part.node, part.node
    arriving = space.false
    for _ in range(PREIMAGE_ROUNDS):
        sample = witness(space.wrap(frontier), region.hook, canonical=False)
        pre = space.false
        for _, guard, writes, status in steps:
            if _may_make(writes, sample):
                node = _preimage(frontier, space, writes, status)
                if node != space.false:
                    pre |= node & guard
        pre &= ~seen
        if pre == space.false:
            break
        arriving = pre & begin
        if arriving != space.false:
            break
        seen |= pre
        frontier = pre
    if arriving == space.false:
        if frontier is not part.node:
            return False
        arriving = part.node & begin  # routing alone: the packets themselves
    ev = evaluators[side]
    for _ in range(tries):
        if arriving == space.false:
            return False
        packet = witness(space.wrap(arriving), region.hook, canonical=False)
        made = ev.evaluate(packet)
        # (numgen/jhash maps: one of the possible results makes it)
        if any(m.packet is not None and part.intersects(_as_left(space, m.packet))
               for m in (made, *made.alternatives)):
            region.arrival = packet
            other = evaluators[1 - side].evaluate(packet)
            region.arrival_old, region.arrival_new = (made, other) if side == 0 else (other, made)
            return True
        arriving &= ~(space.eq("dst", int(packet.dst)) & space.eq("dport", packet.dport or 0)
                      if packet.dport is not None else space.eq("dst", int(packet.dst)))
    return False


def _as_left(space: Space, packet: Packet) -> PacketSet:
    """The engine's packet as it left, by its addresses, protocol, ports
    and ICMP type and code (what NAT writes, :func:`_header_point`), the
    rest free: the engine's packet carries no ct status bits, and its marks
    are as it left the host — kube-proxy's masquerade mark cleared in
    POSTROUTING, which a packet the input hook's walk holds (a DNAT target
    that may be this host's own address) never saw."""
    return space.wrap(_header_point(space, packet))


def _header_point(space: Space, packet: Packet):
    """``packet``'s family, addresses, protocol, ports and ICMP type and
    code (raw node; fields it leaves as None: any value)."""
    node = space.family(packet.family) & space.eq("src", int(packet.src)) \
        & space.eq("dst", int(packet.dst)) & space.eq("proto", packet.proto)
    for name in ("sport", "dport", "icmp_type", "icmp_code"):
        value = getattr(packet, name)
        if value is not None:
            node &= space.eq(name, value)
    return node


def _may_make(writes, packet: Packet) -> bool:
    """Could a step writing ``writes`` have made ``packet`` (the values it
    writes are the packet's)?"""
    for name, mask, value in writes:
        if value is None or name == "state":
            continue
        have = getattr(packet, name, None)
        if have is not None and int(have) & mask != value:
            return False
    return True


def _fits(verdict: str, label: str) -> bool:
    """Is a concrete verdict one the symbolic label allows?"""
    if label in ("accept", "drop"):
        return verdict == label
    if label == "may-accept":
        return verdict in ("accept", "unknown")
    if label == "may-drop":
        return verdict in ("drop", "unknown")
    return True  # unknown: the concrete engine may still decide it


def _connection_change(evaluators, w: Packet, hook: str) -> ConnectionChange | None:
    iif = w.iif if hook != "output" else None
    oif = w.oif if hook != "input" else None
    reports = [connect(ev.ruleset, str(w.src), str(w.dst), w.dport, hook=hook, ecn="off",
                       sport=w.sport or 40000, iif=iif, oif=oif) for ev in evaluators]
    a, b = reports
    if a.passes == b.passes:
        return None
    return ConnectionChange(str(w.src), str(w.dst), w.dport, a.passes, b.passes,
                            a.explain()[0], b.explain()[0])


# ---------------------------------------------------------------------------
# Regions: describe's readable lines, each with its exact packet set
# ---------------------------------------------------------------------------


def regions(packets: PacketSet, limit: int = REGION_LIMIT, care: PacketSet | None = None
            ) -> list[tuple[str, PacketSet]]:
    """``(text, set)`` per readable region of ``packets`` — the lines
    :func:`ruleanalyzer.space.describe` prints — and, past ``limit``, one
    ``… and K more regions`` entry holding the rest. The sets partition
    ``packets`` exactly. Packets outside ``care`` (default: the valid ones)
    are don't-cares for the wording."""
    space = packets.space
    if packets.is_empty():
        return []
    if packets.is_all():
        return [("any packet", packets)]
    # (read in the canonical order; the parts are made back in ``space``)
    seen, whole, node = describe_module.readable(packets, care)
    walker = describe_module._Walker(seen)  # the describer's own enumeration
    found: list[dict] = []
    walker.enumerate(node, 0, {}, found, limit)
    out: list[tuple[str, PacketSet]] = []
    covered = space.empty()
    for region in found:
        part = space.wrap(describe_module.region_node(space, region)) & packets
        if part.is_empty():
            continue
        out.append((describe_module._render(seen, region, whole), part))
        covered = covered | part
    rest = packets - covered
    if not rest.is_empty():
        more = walker.count(node, 0) - len(out)
        out.append((f"… and {max(more, 1)} more region{'s' if more != 1 else ''}", rest))
    return out


# ---------------------------------------------------------------------------
# Packets the kernel can produce, and single packets as sets
# ---------------------------------------------------------------------------


def _conntrack_consistent(space: Space, rulesets) -> PacketSet:
    """Packets whose ctstate the kernel could give them in either version
    (:meth:`Space.conntrack_consistent`): UNTRACKED only where a NOTRACK of
    either version can fire, DNAT/SNAT status only if either translates."""
    untracked = space.false
    for rs in rulesets:
        for rule in rs.rules():
            if any(isinstance(a, Notrack) for a in (rule.action, *rule.effects)):
                untracked |= encode_conjunction(rule.matches, space)[1]
    nat = frozenset().union(*(rs.nat_kinds() for rs in rulesets))
    return space.wrap(space.conntrack_consistent(untracked, dnat=bool(nat & {"dnat", "redirect"}),
                                                 snat=bool(nat & {"snat", "masquerade"})))


def packet_point(space: Space, packet: Packet) -> PacketSet:
    """The set holding just ``packet`` (fields it leaves as None: any value)."""
    s = space
    node = _header_point(s, packet)
    for name in ("length", "uid", "gid"):
        value = getattr(packet, name)
        if value is not None:
            node &= s.eq(name, value)
    for name in ("flags", "ecn", "dscp", "mark", "ctmark", "ttl", "fragment", "mf", "df", "ip_id",
                 "ip_options", "ext_headers"):
        node &= s.eq(name, getattr(packet, name))
    if packet.frag_off or not packet.fragment:  # a fragment without its offset: any offset
        node &= s.eq("frag_off", packet.frag_off)
    for name, value in (("state", packet.state), ("ct_direction", packet.ct_direction),
                        ("pkttype", packet.pkttype)):
        names = s.spec(name).names
        if value is not None and value in names:
            node &= s.eq(name, names.index(value))
    for name in ("iif", "oif"):
        value = getattr(packet, name)
        if value is not None:
            codes = s.layout.interfaces[name].codes_for(value)
            if not codes:  # a name outside the domain is in the "other" class
                codes = [len(s.spec(name).names) - 1]
            node &= s.one_of(name, codes)
    for name in ("ct_status", "src_type", "dst_type"):
        value = getattr(packet, name)
        if value is not None:
            for n in s.spec(name).names:
                var = s.bdd.var(f"{name}:{n}")
                node &= var if n in value else ~var
    return s.wrap(node)


# ---------------------------------------------------------------------------
# Which rules changed, and which packets could notice
# ---------------------------------------------------------------------------


def _signature(rule: Rule):
    return (rule.matches, rule.action, rule.effects)


def _chain_meta(chain: Chain):
    return (chain.hook, chain.priority, chain.policy, chain.kind, tuple(chain.devices))


def _chain_key(chain: Chain):
    t = chain.table
    return (t.family, t.name, chain.name) if t else ("", "", chain.name)


def _host_facts(host) -> tuple | None:
    """What of a host snapshot decides verdicts (not its name, time or
    where it was read from)."""
    if host is None:
        return None
    return (host.addresses, host.routes, host.rules, host.sysctls, host.ipsets, host.bridge_ports,
            sorted(host.known))


def _hosts_together(a, b):
    """One host context naming the interfaces, routes and policy rules of
    both (for the shared layout); a side's own when the other has none."""
    if a is None or b is None or a is b:
        return a or b
    from .host import HostContext

    return HostContext(addresses={**b.addresses, **a.addresses}, routes=[*a.routes, *b.routes],
                       rules=[*a.rules, *b.rules], bridge_ports={**b.bridge_ports, **a.bridge_ports})


def _rewriting(action) -> bool:
    if isinstance(action, Dispatch):
        return any(_rewriting(b) for _, b in action.branches)
    return isinstance(action, (Nat, SetField, EcnStrip, Notrack))


class _Plan:
    """The structural difference of two rulesets: changed rules per side,
    and whether a change touches every packet (policies, hooks)."""

    def __init__(self, old: Ruleset, new: Ruleset):
        self.old, self.new = old, new
        self.changed_old: list[Rule] = []
        self.changed_new: list[Rule] = []
        self.everything = False
        a = {_chain_key(c): c for c in old.chains()}
        b = {_chain_key(c): c for c in new.chains()}
        added_or_removed = set(a) ^ set(b)
        for key in added_or_removed:
            chain = a.get(key) or b.get(key)
            if chain.is_base:
                self.everything = True
            (self.changed_old if key in a else self.changed_new).extend(chain.rules)
        for key in set(a) & set(b):
            ca, cb = a[key], b[key]
            if _chain_meta(ca) != _chain_meta(cb):
                self.everything = True
            self._compare(ca.rules, cb.rules)
        # A jump to a chain that appeared or vanished changed meaning.
        names = {k[2] for k in added_or_removed}
        if names:
            for side, out in ((old, self.changed_old), (new, self.changed_new)):
                out.extend(r for r in side.rules() if set(r.jump_targets()) & names)
        # A host snapshot's routes, addresses and sysctls decide verdicts
        # beside the rules (ip_forward off: nothing is forwarded): where
        # they differ, every packet may have changed.
        self.host_changed = _host_facts(old.host) != _host_facts(new.host)
        if self.host_changed:
            self.everything = True
        self.identical = not (self.everything or self.changed_old or self.changed_new)
        #: Each version's rewriting rules (NAT, marks, …), and both together.
        self.rewrites_of = tuple([r for r in rs.rules() if any(_rewriting(x) for x in (r.action, *r.effects))]
                                 for rs in (old, new))
        self.rewrites = [*self.rewrites_of[0], *self.rewrites_of[1]]
        self._touch_cache: dict = {}
        self._steps: dict = {}

    def steps(self, space: Space, side: int | None = None) -> list:
        """The rewriting rules' ``(action, guard, writes, status)`` steps
        (:func:`_writes`) of version ``side`` (0 old, 1 new; None both),
        made once per diff (the candidates and every rewritten region
        follow them back)."""
        if side is None:
            return [*self.steps(space, 0), *self.steps(space, 1)]
        steps = self._steps.get(side)
        if steps is None:
            steps = self._steps[side] = [
                (action, guard, *_writes(action, space))
                for rule in self.rewrites_of[side] for action, guard in _rewrite_steps(rule, space)]
        return steps

    def _compare(self, ra: list[Rule], rb: list[Rule]) -> None:
        sa, sb = [_signature(r) for r in ra], [_signature(r) for r in rb]
        lo = 0
        while lo < len(sa) and lo < len(sb) and sa[lo] == sb[lo]:
            lo += 1
        hi_a, hi_b = len(sa), len(sb)
        while hi_a > lo and hi_b > lo and sa[hi_a - 1] == sb[hi_b - 1]:
            hi_a, hi_b = hi_a - 1, hi_b - 1
        mid_a, mid_b = sa[lo:hi_a], sb[lo:hi_b]
        if not mid_a and not mid_b:
            return
        if len(mid_a) > MATCHED_STRETCH or len(mid_b) > MATCHED_STRETCH:
            self.changed_old += ra[lo:hi_a]
            self.changed_new += rb[lo:hi_b]
            return
        matcher = difflib.SequenceMatcher(None, mid_a, mid_b, autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag != "equal":
                self.changed_old += ra[lo + i1:lo + i2]
                self.changed_new += rb[lo + j1:lo + j2]

    def touches(self, hook: str, family: int) -> bool:
        """Can a changed rule be met on ``hook``'s path for IPv``family``?"""
        key = (hook, family)
        if key not in self._touch_cache:
            hit = False
            for side, changed in ((self.old, self.changed_old), (self.new, self.changed_new)):
                ids = {id(r.chain) for r in changed}
                if ids & _reachable_chains(side, hook, family):
                    hit = True
            self._touch_cache[key] = hit
        return self._touch_cache[key]


def _reachable_chains(ruleset: Ruleset, hook: str, family: int) -> set[int]:
    seen: set[int] = set()
    stack = [c for t in ruleset.tables if t.applies_to(family) and t.family not in ("arp", "bridge")
             for c in t.chains.values() if c.hook in HOOK_PATHS[hook]]
    while stack:
        chain = stack.pop()
        if id(chain) in seen:
            continue
        seen.add(id(chain))
        for rule in chain.rules:
            for target in rule.jump_targets():
                nxt = chain.table.chains.get(target) if chain.table else None
                if nxt is not None:
                    stack.append(nxt)
    return seen


def _candidates(plan: _Plan, space: Space):
    """Packets that may match a changed rule, as they arrive (raw node):
    the changed rules' matches, closed under pre-images of every rewriting
    rule (a DNAT may turn an arriving packet into one a changed rule sees)."""
    cand = space.false
    for rule in (*plan.changed_old, *plan.changed_new):
        cand |= encode_conjunction(rule.matches, space)[1]
    if any(reads_ttl(m) for rule in (*plan.changed_old, *plan.changed_new) for m in rule.matches):
        # FORWARD and POSTROUTING rules of forwarded packets read the TTL
        # ip_forward lowered: those packets arrived with one more.
        cand |= ttl_before_forward(cand, space)
    cand &= space.valid
    steps = plan.steps(space)
    # The set each step's pre-image was last taken of. A pre-image is a
    # union over packets, and a step's pre-image of that set is in ``grown``
    # already: only the packets added since need one. Equal steps (the
    # versions share all but the changed rules: kube-proxy's 25k DNAT rules
    # twice) share that set.
    done: dict = {}
    for _ in range(PREIMAGE_ROUNDS):
        grown = cand
        for k, (action, guard, writes, status) in enumerate(steps):
            key = (action, guard)
            try:
                hash(key)
            except TypeError:  # an unhashable action: tracked by position
                key = k
            fresh = grown & ~done.get(key, space.false)
            done[key] = grown
            if fresh == space.false:
                continue
            pre = _preimage(fresh, space, writes, status)
            if pre != space.false:
                grown |= pre & guard & space.valid
        if grown == cand:
            return cand
        cand = grown
    return space.valid  # rewrites chain deeper than we follow: every packet


def _rewrite_steps(rule: Rule, space: Space):
    match = encode_conjunction(rule.matches, space)[1]
    for action in (*rule.effects, rule.action):
        if isinstance(action, Dispatch):
            from .space.encode import encode_bounds
            for m, branch in action.branches:
                if _rewriting(branch):
                    yield branch, match & encode_bounds(m, space)[1]
        elif _rewriting(action):
            yield action, match


def _writes(action, space: Space) -> tuple[list[tuple[str, int, int | None]], str | None]:
    """What ``action`` writes: ``(field, mask, value or None = anything)``
    per field, and the ct status bit a translation sets (or None)."""
    writes: list[tuple[str, int, int | None]] = []
    status = None
    if isinstance(action, SetField):
        parts = [("ecn", 0, 2), ("dscp", 2, 6)] if action.field == "tos" else [(action.field, 0, None)]
        for name, offset, width in parts:
            spec = space.layout.fields.get(name)
            if spec is None or spec.kind != "int":
                continue
            width = width or spec.width
            sub = (1 << width) - 1
            mask, value = action.mask >> offset & sub, action.value >> offset & sub
            if action.copy_from or action.add or value & ~mask:
                writes.append((name, sub, None))
            else:
                writes.append((name, mask, value))
    elif isinstance(action, Notrack):
        writes.append(("state", (1 << space.spec("state").width) - 1,
                       space.spec("state").names.index("untracked")))
    elif isinstance(action, EcnStrip):
        writes.append(("flags", action.clear_flags, 0))
    elif isinstance(action, Nat):
        addr, port, status = action.fields
        # (one of a range, or a port kept: any value, the preimage's bound)
        if action.to_addr is not None and action.kind != "redirect":
            writes.append((addr, (1 << 128) - 1, None if action.address_range else int(action.to_addr)))
        if action.to_port is not None:
            writes.append((port, 0xFFFF, None if action.port_range else action.to_port))
        status = f"ct_status:{status}"
    return writes, status


def _preimage(node, space: Space, writes, status):
    """Packets that a step writing ``writes`` (and setting ct status bit
    ``status``; :func:`_writes`) may turn into a packet of ``node``: those
    whose written bits hold the values written, the bits then free. (A
    translation writes whole values; a value None is anything.)"""
    bdd = space.bdd
    cond, qvars = node, []
    if status is not None and status in bdd.vars:
        cond &= bdd.var(status)
        qvars.append(status)
    for name, mask, value in writes:
        if value is not None:
            cond &= space.masked(name, mask, value)
        qvars += _bit_vars(space, name, mask)
    return bdd.exist(qvars, cond) if qvars else cond


def _bit_vars(space: Space, name: str, mask: int) -> list[str]:
    """The variables of field ``name``'s bits in ``mask`` (cached per space:
    tens of thousands of NAT rules write the same few fields)."""
    cache = space.__dict__.setdefault("_diff_bit_vars", {})
    names = cache.get((name, mask))
    if names is None:
        spec = space.spec(name)
        names = cache[(name, mask)] = [spec.var(b) for b in range(spec.width) if mask >> b & 1]
    return names


# ---------------------------------------------------------------------------
# Audit findings introduced and resolved
# ---------------------------------------------------------------------------


def _finding_key(f) -> tuple:
    w = f.where
    # Lines move between versions; the rule's text and chain do not.
    return (f.code, w.table if w else None, w.chain if w else None, w.text if w else f.message)


def finding_changes(old: Ruleset, new: Ruleset) -> FindingChanges:
    """Findings of the audit catalogue only ``new`` has (introduced) and
    only ``old`` has (resolved), matched by code, chain and rule text."""
    try:
        from .audit import audit
    except ImportError as exc:  # the catalogue is optional
        return FindingChanges(error=f"audit unavailable: {exc}")
    try:
        before, after = audit(old), audit(new)
    except Exception as exc:  # noqa: BLE001 - a crashing audit must not hide the verdict diff
        return FindingChanges(error=f"audit failed: {type(exc).__name__}: {exc}")
    count_b = Counter(_finding_key(f) for f in before)
    count_a = Counter(_finding_key(f) for f in after)
    out = FindingChanges()
    seen: Counter = Counter()
    for f in after:
        k = _finding_key(f)
        seen[k] += 1
        if seen[k] > count_b.get(k, 0):
            out.introduced.append(f)
    seen = Counter()
    for f in before:
        k = _finding_key(f)
        seen[k] += 1
        if seen[k] > count_a.get(k, 0):
            out.resolved.append(f)
    return out


class _CallableModule(__import__("types").ModuleType):
    """``ruleanalyzer.diff(...)`` calls :func:`diff` (the top-level API)."""

    def __call__(self, *args, **kwargs):
        return diff(*args, **kwargs)


__import__("sys").modules[__name__].__class__ = _CallableModule
