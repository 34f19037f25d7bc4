"""The evaluator: one packet through every chain it meets, as the kernel does.

Per hook, every base chain of every table that sees the packet's family runs
in priority order (iptables tables have the kernel's fixed priorities, so
raw → mangle → nat → filter → security falls out of the same rule). An
``accept`` ends only its own base chain; a ``drop`` is final. User chains are
entered by jump (come back after their end or RETURN) or goto (do not come
back). Non-terminating actions change the packet for later rules (marks, ECN
bits, NOTRACK), DNAT changes the destination — and may turn a packet for
this host into a forwarded one.

When a match cannot be decided (an ipset, ``-m recent``, an interface the
query did not name) the evaluator follows both branches. If they agree, the
answer stands; if not, the verdict is *unknown* and says what it depends on.
"""

from __future__ import annotations

import ipaddress
from bisect import bisect_left
from functools import lru_cache
from typing import Callable
from dataclasses import dataclass, replace
from ..model import (CONNTRACK_PRIORITY, AddressMatch, HOOK_PATHS, Accept, AllOf, Chain, Dispatch, Drop, EcnStrip,
                     Goto, IntMatch, InterfaceMatch, Jump, Log, Nat, Notrack, OpaqueMatch, Packet, Queue, Reject, Return,
                     Rule, Ruleset, SetField, UnknownAction)
from .conntrack import resolve_state
from .match import PORT_PROTOCOLS, AddressTypes, UnknownInterface, View, compile_match, describe_match
from .result import Decision, Result, Step
from . import natpick, routing

#: How many undecidable branches one packet may open before the answer is
#: "unknown: too many undecidable conditions" (each opaque match doubles them).
MAX_PATHS = 256
#: Deepest jump nesting followed (the kernel's own limit is in this range).
MAX_DEPTH = 64
#: Rules (and chain entries) one packet's evaluation may visit before the
#: answer is "unknown" (``MAX_DEPTH`` bounds nesting, not steps). A chain
#: that returned the packet without forking is not run again from the same
#: state (memoised: its outcome is replayed), so jumps that branch (each
#: chain jumping twice to the next, marking on the way) stay linear; this
#: bounds what memoising cannot catch.
MAX_STEPS = 1_000_000
#: Groups of ports a random NAT port may fall in (those the rules tell
#: apart) that are answered one by one; past it the answer depends on it.
MAX_PORT_PICKS = 32
#: What decides whether the nat chains see a RELATED packet that is not an
#: ICMP error (:meth:`Evaluator._sees_nat`), and what happens when they do not.
MASTER_TRANSLATED = OpaqueMatch("the master connection of this expected connection (FTP data, …) "
                                "was translated by NAT")
HELPER_TRANSLATES = ("a NAT helper then translates it as it did the master connection, not the nat rules "
                     "(traffic history)")

_MULTICAST4 = (0xE0000000, 0xF0000000)


class _TooManyPaths(Exception):
    pass


class _TooManySteps(Exception):
    pass


def _state(path: "_Path") -> tuple:
    """What a chain's outcome depends on: the packet as the rules see it and
    the path's flags (and how many assumptions and notes it carries)."""
    view = path.view
    return (tuple(getattr(view, name) for name in View.__slots__), path.nat_dst_changed, path.redirected,
            path.routed_oif, path.routing, len(path.assumptions), len(path.notes))


def _snapshot(path: "_Path") -> tuple:
    """What a chain that returned left of the packet (for :func:`_restore`)."""
    return (path.view.copy(), path.nat_dst_changed, path.redirected, path.routed_oif, path.routing)


def _restore(path: "_Path", snapshot: tuple) -> None:
    view, path.nat_dst_changed, path.redirected, path.routed_oif, path.routing = snapshot
    path.view = view.copy()


@dataclass(slots=True)
class _Path:
    """One way through the rules, under some assumptions about unknowns."""

    view: View
    trace: list
    assumptions: list
    notes: list
    nat_dst_changed: bool = False
    redirected: bool = False
    #: Per hook, the accepting rule or policy of the last filter-type base
    #: chain passed: what "decided" an accepted packet.
    accepted_by: dict | None = None
    #: The output interface the host's routes chose (snapshot only).
    routed_oif: str | None = None
    #: What the host's routing did with the packet (snapshot only).
    routing: str = ""
    #: A packet of this host whose output interface routing chose:
    #: (src, dst, mark) it was routed by; a mangle/nat OUTPUT chain that
    #: changes them makes the kernel route it again (snapshot only).
    route_key: tuple | None = None
    #: The OUTPUT chain whose change makes the kernel route it again.
    rerouted_by: str | None = None
    #: A RELATED packet other than an ICMP error: whether the nat chains
    #: see it (None until the first nat chain asks; :meth:`Evaluator._sees_nat`).
    sees_nat: bool | None = None
    #: Why routing may drop the packet where the snapshot holds no routes
    #: (:func:`routing.route_view`'s ``maybe``): accepted, its answer is
    #: unknown; dropped by a rule, dropped all the same.
    route_maybe: str = ""

    def fork(self) -> "_Path":
        return _Path(self.view.copy(), list(self.trace), list(self.assumptions), list(self.notes),
                     self.nat_dst_changed, self.redirected, dict(self.accepted_by or {}), self.routed_oif,
                     self.routing, self.route_key, self.rerouted_by, self.sees_nat, self.route_maybe)

    def accepted(self, hook: str, reason: str | None = None) -> "_End":
        """The end of a path its chains accepted: ``unknown`` where routing
        may still drop it (:attr:`route_maybe`)."""
        if self.route_maybe:
            return _End("unknown", self, self.accept_decision(hook), reason=self.route_maybe)
        return _End("accept", self, self.accept_decision(hook), reason=reason)

    def accept_decision(self, hook: str) -> Decision | None:
        """The decision to report for an accepted packet whose own hook is
        ``hook``: that hook's last filter chain, else the last one seen."""
        decisions = self.accepted_by or {}
        if hook in decisions:
            return decisions[hook]
        return list(decisions.values())[-1] if decisions else None


@dataclass(slots=True)
class _End:
    """How a chain ended on one path: ``accept``, ``drop``, ``return``
    (fell off or RETURN) or ``unknown``."""

    kind: str
    path: _Path
    decision: Decision | None = None
    reason: str = ""


class _Compiled:
    """Per-ruleset caches: compiled rule predicates and base chains per hook."""

    def __init__(self, ruleset: Ruleset):
        self.ruleset = ruleset
        self.rule_preds: dict[int, tuple] = {}
        self.base: dict[tuple[str, int], list[Chain]] = {}
        self.chains: dict[int, dict[str, Chain]] = {id(t): t.chains for t in ruleset.tables}
        self.chain_runs: dict[int, list] = {}
        self.match_preds: dict[int, tuple] = {}
        self.guards: dict[int, InterfaceMatch] = {}
        self._translates: bool | None = None

    def runs(self, chain: Chain) -> list:
        """Per rule index, ``None`` or the indexed run it lies in.

        A run is a stretch of consecutive rules that each require one exact
        destination host (kube-proxy's KUBE-SERVICES, per-host ACLs). Rules
        of the run whose host is not the packet's cannot match, so the
        evaluator jumps straight to the candidates: same answers, no scan.
        """
        runs = self.chain_runs.get(id(chain))
        if runs is None:
            runs = _index_runs(chain.rules)
            self.chain_runs[id(chain)] = runs
        return runs

    def predicates(self, rule: Rule) -> tuple:
        preds = self.rule_preds.get(id(rule))
        if preds is None:
            preds = tuple(zip(tuple(compile_match(m) for m in rule.matches), rule.matches))
            self.rule_preds[id(rule)] = preds
        return preds

    def predicate(self, match) -> Callable:
        """The compiled predicate of one match outside a rule's own list (a
        verdict-map branch, a device guard), compiled once."""
        entry = self.match_preds.get(id(match))
        if entry is None:
            # The match is kept in the entry so its id stays its own.
            entry = self.match_preds[id(match)] = (compile_match(match), match)
        return entry[0]

    def translates(self) -> bool:
        """Does any rule translate an address or port (a NAT action)?"""
        if self._translates is None:
            self._translates = bool(self.ruleset.nat_kinds())
        return self._translates

    def device_guard(self, chain: Chain) -> InterfaceMatch:
        """A netdev chain applies only to packets arriving on its devices."""
        guard = self.guards.get(id(chain))
        if guard is None:
            guard = self.guards[id(chain)] = InterfaceMatch(
                "iif", chain.devices, text=f"arrives on {', '.join(chain.devices)}")
        return guard

    def base_chains(self, hook: str, family: int) -> list[Chain]:
        key = (hook, family)
        chains = self.base.get(key)
        if chains is None:
            # A ``flags dormant`` table is loaded but its base chains do not run.
            chains = [c for t in self.ruleset.tables if t.family not in ("arp", "bridge")
                      and not t.dormant and t.applies_to(family) for c in t.chains.values() if c.hook == hook]
            # Stable sort: equal priorities keep registration (file) order.
            chains.sort(key=lambda c: c.priority or 0)
            self.base[key] = chains
        return chains


#: Shorter stretches are scanned: indexing them would not pay.
MIN_INDEXED_RUN = 16


def _host_key(rule: Rule):
    for m in rule.matches:
        if isinstance(m, AddressMatch) and m.field == "dst" and not m.negate and len(m.networks) == 1:
            net = m.networks[0]
            if net.prefixlen == net.max_prefixlen:
                return (net.version, int(net.network_address))
    return None


def _index_runs(rules: list[Rule]) -> list:
    """``runs[i]`` is ``(end, {host: [indices]})`` for rules in a long run."""
    runs: list = [None] * len(rules)
    i, n = 0, len(rules)
    while i < n:
        j = i
        table: dict = {}
        while j < n:
            key = _host_key(rules[j])
            if key is None:
                break
            table.setdefault(key, []).append(j)
            j += 1
        if j - i >= MIN_INDEXED_RUN:
            entry = (j, table)
            for k in range(i, j):
                runs[k] = entry
        i = max(j, i + 1)
    return runs


def _compiled(ruleset: Ruleset) -> _Compiled:
    cache = getattr(ruleset, "_engine_cache", None)
    if cache is None or cache.ruleset is not ruleset:
        cache = _Compiled(ruleset)
        ruleset._engine_cache = cache  # type: ignore[attr-defined]
    return cache


def invalidate(ruleset: Ruleset) -> None:
    """Forget compiled state after changing a ruleset in place."""
    if hasattr(ruleset, "_engine_cache"):
        del ruleset._engine_cache  # type: ignore[attr-defined]


@lru_cache(maxsize=4096)
def _address_types(addr, role: str) -> AddressTypes:
    """The route type of ``addr`` as far as the hook tells it: ``local`` (this
    host's own address; a loopback address always), ``routed`` (a unicast route must exist: forwarded
    destinations), or ``remote`` (depends on the routing table)."""
    value = int(addr)
    if addr.version == 4:
        if value == 0xFFFFFFFF:
            return AddressTypes("broadcast")
        if value & _MULTICAST4[1] == _MULTICAST4[0]:
            return AddressTypes("multicast")
    elif addr.is_multicast:
        return AddressTypes("multicast")
    if addr.is_loopback and role != "routed":
        # 127.0.0.0/8 and ::1 have a LOCAL route in every namespace (the
        # kernel adds them with lo): so ``curl localhost:PORT`` reads
        # --dst-type LOCAL on output, as kube-proxy's KUBE-NODEPORTS jump
        # relies on. (A forwarded packet never has a loopback destination:
        # ip_route_input drops it as a martian; that reading stays as is.)
        return AddressTypes("local")
    if role == "local":
        return AddressTypes("local")
    if role == "routed":
        return AddressTypes("unicast")
    return AddressTypes(None, frozenset({"local", "broadcast", "multicast", "anycast"}))


def make_view(packet: Packet, state: str) -> View:
    """The packet's fields as rules see them; hook-implied context filled in.

    What a hook implies is not a guess: a packet on ``input`` is addressed to
    this host (its destination is LOCAL) and has no output interface yet; one
    on ``output`` comes from this host and has no input interface.
    """
    v = View.__new__(View)
    v.family = packet.family
    v.src = int(packet.src)
    v.dst = int(packet.dst)
    v.proto = packet.proto
    v.sport = packet.sport
    v.dport = packet.dport
    v.flags = packet.flags
    v.ecn = packet.ecn
    v.dscp = packet.dscp
    v.state = state
    hook = packet.hook
    v.hook = hook
    v.iif = "" if hook == "output" and packet.iif is None else packet.iif
    v.oif = "" if hook == "input" and packet.oif is None else packet.oif
    v.icmp_type = packet.icmp_type
    v.icmp_code = packet.icmp_code
    v.mark = packet.mark
    v.ctmark = packet.ctmark
    status = set(packet.ct_status)
    if state in ("established", "related"):
        status |= {"confirmed"}
    v.ct_status = frozenset(status)
    v.ct_direction = packet.ct_direction or ("original" if state == "new" else None)
    v.length = packet.length
    v.ttl = packet.ttl
    v.fragment = packet.fragment or (1 if packet.frag_off else 0)
    v.frag_off = packet.frag_off
    v.mf = packet.mf
    v.df = packet.df
    v.ip_id = packet.ip_id
    v.ip_options = packet.ip_options
    v.ext_headers = packet.ext_headers
    if packet.pkttype is not None:
        v.pkttype = packet.pkttype
    else:
        kind = _address_types(packet.dst, "remote").exactly
        v.pkttype = kind if kind in ("multicast", "broadcast") else "unicast"
    v.src_type = packet.src_type if packet.src_type is not None else _address_types(
        packet.src, "local" if hook == "output" else "remote")
    v.dst_type = packet.dst_type if packet.dst_type is not None else _address_types(
        packet.dst, {"input": "local", "forward": "routed"}.get(hook, "remote"))
    v.uid = packet.uid if hook == "output" else None
    v.gid = packet.gid if hook == "output" else None
    v.tcp_options = packet.tcp_options
    return v


class Evaluator:
    """Runs packets through one ruleset; reusable across many packets."""

    def __init__(self, ruleset: Ruleset):
        self.ruleset = ruleset
        self.compiled = _compiled(ruleset)
        self._paths = 0
        self._steps = 0
        #: per chain, (state entered in, what it returned) for runs that did not fork
        self._returned: dict[int, list[tuple]] = {}
        self._base: Chain | None = None  # the base chain running now (NOTRACK needs it)

    # -- chains --------------------------------------------------------------

    def _chain_by_name(self, chain: Chain, name: str) -> Chain | None:
        return chain.table.chains.get(name) if chain.table else None

    def _run_chain(self, chain: Chain, path: _Path, depth: int) -> list[_End]:
        if depth > MAX_DEPTH:
            return [_End("unknown", path, reason=f"jumps nested deeper than {MAX_DEPTH} chains")]
        path.trace.append(Step("enter", chain))
        self._steps += 1
        if self._steps > MAX_STEPS:
            raise _TooManySteps
        return self._run_rules(chain, 0, path, depth)

    def _run_rules(self, chain: Chain, start: int, path: _Path, depth: int) -> list[_End]:
        rules = chain.rules
        predicates = self.compiled.predicates
        runs = self._runs(chain, path)
        n = len(rules)
        i = start - 1
        while True:
            i += 1
            if i >= n:
                break
            run = runs[i]
            if run is not None:
                end, table = run
                candidates = table.get((path.view.family, path.view.dst))
                position = bisect_left(candidates, i) if candidates else 0
                if not candidates or position == len(candidates):
                    i = end - 1
                    continue
                i = candidates[position]
            rule = rules[i]
            self._steps += 1
            if self._steps > MAX_STEPS:
                raise _TooManySteps
            verdict: bool | None = True
            unknown_at = None
            view = path.view
            for pred, m in predicates(rule):
                r = pred(view)
                if r is False:
                    verdict = False
                    break
                if r is None and verdict is True:
                    verdict = None
                    unknown_at = m
            if verdict is False:
                continue
            if verdict is None:
                if isinstance(unknown_at, InterfaceMatch):
                    return self._split_interface(chain, i, rule, unknown_at, path, depth)
                other = self._fork(path)
                other.assumptions.append((rule, unknown_at, False))
                path.assumptions.append((rule, unknown_at, True))
                return self._apply(chain, i, rule, path, depth) + self._run_rules(chain, i + 1, other, depth)
            return self._apply(chain, i, rule, path, depth)
        return [_End("return", path)]

    def _runs(self, chain: Chain, path: _Path) -> list:
        """The indexed runs of ``chain`` (see :meth:`_Compiled.runs`); a
        subclass may index the chain for the path at hand instead (the
        batch evaluator does: rules that cannot match it are skipped)."""
        return self.compiled.runs(chain)

    def _split_interface(self, chain: Chain, i: int, rule: Rule, m: InterfaceMatch, path: _Path,
                         depth: int) -> list[_End]:
        """An interface the query did not name: follow each named interface
        and "any other", so later matches on the same field stay consistent."""
        field = m.field
        current = getattr(path.view, field)
        unknown = current if isinstance(current, UnknownInterface) else UnknownInterface()
        outcomes: list[_End] = []
        for name in m.names:
            concrete = unknown.representative(name)
            if concrete is None:
                continue
            branch = self._fork(path)
            setattr(branch.view, field, concrete)
            branch.assumptions.append((rule, InterfaceMatch(field, (name,)), True))
            outcomes.extend(self._run_rules(chain, i, branch, depth))
        rest = path
        setattr(rest.view, field, UnknownInterface(unknown.excluded + tuple(m.names)))
        rest.assumptions.append((rule, InterfaceMatch(field, m.names), False))
        return outcomes + self._run_rules(chain, i, rest, depth)

    def _fork(self, path: _Path) -> _Path:
        self._paths += 1
        if self._paths > MAX_PATHS:
            raise _TooManyPaths
        return path.fork()

    def _apply(self, chain: Chain, i: int, rule: Rule, path: _Path, depth: int) -> list[_End]:
        """The rule matched on ``path``: apply effects and action."""
        path.trace.append(Step("match", chain, rule))
        for effect in rule.effects:
            if isinstance(effect, UnknownAction):
                if effect.field is None:
                    return [_End("unknown", path, Decision(chain, rule),
                                 reason=f"what {effect.text} does (not modelled)")]
                # a field set to a value the analyzer does not work out
                # (``meta mark set ct mark | 1``): the packet goes on with
                # it unknown, and what reads it depends on it
                setattr(path.view, effect.field, None)
                path.trace.append(Step("set", chain, rule, f"{effect.field} = ? ({effect.text})"))
                continue
            self._effect(effect, path, chain, rule)
        return self._action(rule.action, chain, i, rule, path, depth)

    def _action(self, action, chain: Chain, i: int, rule: Rule, path: _Path, depth: int) -> list[_End]:
        if isinstance(action, (Accept, Drop, Reject)):
            return [_End(action.verdict, path, Decision(chain, rule))]
        if isinstance(action, Return):
            return [_End("return", path)]
        if isinstance(action, Jump):
            target = self._chain_by_name(chain, action.target)
            if target is None:
                return [_End("unknown", path, reason=f"jump to undefined chain {action.target}")]
            out: list[_End] = []
            before = _state(path)
            seen = self._returned.setdefault(id(target), [])
            for entered, after in seen:
                if entered == before:  # it returned this very packet before, without forking: same again
                    _restore(path, after)
                    path.trace.append(Step("enter", target))
                    path.trace.append(Step("return", chain, rule))
                    return self._run_rules(chain, i + 1, path, depth)
            ends = self._run_chain(target, path, depth + 1)
            if len(ends) == 1 and ends[0].kind == "return" and ends[0].path is path and len(seen) < 64:
                after = _state(path)
                if after[5:] == before[5:]:  # no assumption or note added: deterministic
                    seen.append((before, _snapshot(path)))
            for end in ends:
                if end.kind == "return":
                    end.path.trace.append(Step("return", chain, rule))
                    out.extend(self._run_rules(chain, i + 1, end.path, depth))
                else:
                    out.append(end)
            return out
        if isinstance(action, Goto):
            target = self._chain_by_name(chain, action.target)
            if target is None:
                return [_End("unknown", path, reason=f"goto undefined chain {action.target}")]
            return self._run_chain(target, path, depth + 1)
        if isinstance(action, Dispatch):
            return self._dispatch(action, chain, i, rule, path, depth)
        if isinstance(action, Nat):
            if action.random or action.port_range is not None:
                picks = self._random_port_picks(action, path)
                if picks is not None:
                    return self._dispatch(picks, chain, i, rule, path, depth)
            self._nat(action, path, chain, rule)
            return [_End("accept", path, Decision(chain, rule))]
        if isinstance(action, Queue):
            return [_End("unknown", path, Decision(chain, rule),
                         reason=f"the verdict of the userspace program behind {action.text}")]
        if isinstance(action, UnknownAction):
            return [_End("unknown", path, Decision(chain, rule),
                         reason=f"what target {action.text} does (not modelled)")]
        # Non-terminating: the packet goes on to the next rule.
        self._effect(action, path, chain, rule)
        return self._run_rules(chain, i + 1, path, depth)

    def _dispatch(self, action: Dispatch, chain: Chain, i: int, rule: Rule, path: _Path,
                  depth: int, first: int = 0) -> list[_End]:
        """A verdict map: the first branch that holds gives the action."""
        for b in range(first, len(action.branches)):
            match, branch_action = action.branches[b]
            r = self.compiled.predicate(match)(path.view)
            if r is False:
                continue
            if r is None:
                other = self._fork(path)
                other.assumptions.append((rule, match, False))
                path.assumptions.append((rule, match, True))
                return (self._action(branch_action, chain, i, rule, path, depth)
                        + self._dispatch(action, chain, i, rule, other, depth, b + 1))
            return self._action(branch_action, chain, i, rule, path, depth)
        return self._run_rules(chain, i + 1, path, depth)

    # -- effects -------------------------------------------------------------

    def _effect(self, effect, path: _Path, chain: Chain, rule: Rule) -> None:
        view = path.view
        if isinstance(effect, SetField):
            field = effect.field
            if field == "tos":
                current = (view.dscp << 2) | view.ecn
            else:
                current = getattr(view, field, None)
            if current is None:
                # unknown (set to a value not worked out): a write of all of
                # its 32 bits makes it known again, any other stays unknown
                # (``meta mark set ct mark | 1; meta mark set 5``: 5)
                whole = effect.mask & 0xFFFFFFFF == 0xFFFFFFFF and not effect.add and field != "tos"
                source = getattr(view, effect.copy_from, None) if effect.copy_from else effect.value
                if not whole or source is None:
                    return
                current = 0
            if effect.add:
                new = min(max(current + effect.add, 0), 0xFF)  # the TTL saturates
            elif effect.copy_from:
                source = getattr(view, effect.copy_from)
                new = (current & ~effect.mask) | (source & effect.mask)
            else:
                new = (current & ~effect.mask) ^ effect.value
            if field == "tos":
                view.dscp, view.ecn = (new >> 2) & 0x3F, new & 3
            else:
                setattr(view, field, new)
            path.trace.append(Step("set", chain, rule, f"{field} = {new:#x}"))
        elif isinstance(effect, Notrack):
            # The base chain decides (a user chain jumped to from raw
            # PREROUTING untracks too): before conntrack, on prerouting/output.
            base = self._base
            if (base is not None and base.priority is not None and base.priority < CONNTRACK_PRIORITY
                    and base.hook in ("prerouting", "output")):
                path.notes.append("NOTRACK: the packet skips connection tracking (state UNTRACKED)")
                path.view.state = "untracked"
                path.trace.append(Step("set", chain, rule, "untracked"))
        elif isinstance(effect, EcnStrip):
            if view.proto == 6:
                view.flags &= ~effect.clear_flags
                path.trace.append(Step("set", chain, rule, "ECE/CWR cleared"))
        elif isinstance(effect, Log):
            pass

    def _random_port_picks(self, action: Nat, path: _Path) -> Dispatch | None:
        """Where the kernel picks ``action``'s port at random
        (:func:`natpick.random_ports`) and the rules tell some of those
        ports apart: one way per group of ports no rule tells apart, each
        the translation to the group's first port, under the assumption
        that the kernel picks from it (as a numgen map's elements). None
        where the port is decided or no rule tells the ports apart."""
        view = path.view
        if view.proto not in PORT_PROTOCOLS or view.fragment:
            return None
        ports = natpick.random_ports(action, view.sport, view.dport)
        if ports is None:
            return None
        field = "dport" if action.kind in ("dnat", "redirect") else "sport"
        low, high = ports
        cuts = self._port_bounds(field)
        starts = [low] + [c for c in cuts[bisect_left(cuts, low + 1):bisect_left(cuts, high + 1)]]
        if len(starts) == 1:
            return None
        reason = f"the port {action.kind} picks at random from {low}-{high}"
        if len(starts) > MAX_PORT_PICKS:
            return Dispatch(((OpaqueMatch(reason=f"{reason} (the rules tell {len(starts)} groups apart)"),
                              UnknownAction(reason)),))
        address, _, notes = natpick.translate(action, view.src, view.dst, view.sport, view.dport, view.family)
        path.notes.extend(notes)
        to_addr = None if address is None or action.to_addr is None else ipaddress.ip_address(address)
        ends = starts[1:] + [high + 1]
        branches = []
        for k, (start, end) in enumerate(zip(starts, ends)):
            group = f"{start}" if start == end - 1 else f"one of {start}-{end - 1}"
            match = OpaqueMatch(reason=f"{reason}: {group}") if k < len(starts) - 1 else AllOf(())
            # (random: the kernel picked it, the connection is translated)
            branches.append((match, Nat(action.kind, to_addr, None, start, random=True)))
        return Dispatch(tuple(branches))

    def _port_bounds(self, field: str) -> list[int]:
        """Where the ruleset's matches on ``field`` start and stop holding
        (a range ``a-b`` gives ``a`` and ``b + 1``), sorted."""
        cache = self.__dict__.setdefault("_port_cuts", {})
        cuts = cache.get(field)
        if cuts is None:
            found: set[int] = set()
            todo = [m for r in self.ruleset.rules() for m in r.matches]
            todo += [m for r in self.ruleset.rules() for a in r.actions() if isinstance(a, Dispatch)
                     for m, _ in a.branches]
            while todo:
                m = todo.pop()
                if isinstance(m, IntMatch) and m.field == field:
                    for a, b in m.ranges:
                        found.update((a, b + 1))
                todo.extend(getattr(m, "matches", ()))
            cuts = cache[field] = sorted(found)
        return cuts

    def _nat(self, action: Nat, path: _Path, chain: Chain, rule: Rule) -> None:
        view = path.view
        address, port = (None if action.kind == "redirect" or action.to_addr is None else int(action.to_addr),
                         action.to_port)
        if action.per_packet or action.random:
            address, port, notes = natpick.translate(action, view.src, view.dst, view.sport, view.dport,
                                                     view.family)
            path.notes.extend(notes)
        if action.kind in ("dnat", "snat") and not action.random and (address is not None or port is not None):
            own = (view.dst, view.dport) if action.kind == "dnat" else (view.src, view.sport)
            if address in (None, own[0]) and (port is None or own[1] is None or port == own[1]):
                # the connection is as the translation makes it already: the
                # kernel changes nothing and sets no status (nf_nat_setup_info
                # sets IPS_DST_NAT/IPS_SRC_NAT only where the tuple changes)
                path.trace.append(Step("nat", chain, rule, f"{action.kind}: the "
                                       f"{'destination' if action.kind == 'dnat' else 'source'} is "
                                       f"{ipaddress.ip_address(own[0])}{'' if own[1] is None else f':{own[1]}'} "
                                       "already, left as it is"))
                return
        if action.kind in ("dnat", "redirect"):
            if action.kind == "redirect":
                path.redirected = True
            elif address is not None and address != view.dst:
                view.dst = address
                path.nat_dst_changed = True
            if port is not None and view.dport is not None:
                view.dport = port
            view.ct_status = view.ct_status | {"dnat"}
            path.trace.append(Step("nat", chain, rule, f"{action.kind} to {_endpoint(action, view.dst, view.dport)}"))
        else:
            if address is not None:
                view.src = address
            if port is not None and view.sport is not None:
                view.sport = port
            view.ct_status = view.ct_status | {"snat"}
            path.trace.append(Step("nat", chain, rule, f"{action.kind}"
                                   + (f" to {_endpoint(action, view.src, view.sport)}" if action.to_addr else "")))

    # -- hooks ---------------------------------------------------------------

    def _run_hook(self, hook: str, paths: list[_Path]) -> tuple[list[_Path], list[_End]]:
        """Run every base chain of ``hook``; paths still alive, paths ended."""
        ended: list[_End] = []
        family = paths[0].view.family if paths else 4
        for chain in self.compiled.base_chains(hook, family):
            before_conntrack = hook == "ingress" or (
                hook in ("prerouting", "output") and (chain.priority or 0) < CONNTRACK_PRIORITY)
            alive: list[_Path] = []
            self._base = chain
            if hook == "output" and chain.reroutes:
                for path in paths:  # the chain routes again only for what it changes itself
                    if path.route_key is not None:
                        path.route_key = (path.view.src, path.view.dst, path.view.mark)
            for path in paths:
                view = path.view
                if chain.kind == "nat" and view.state != "new" and not self._sees_nat(path, ended):
                    alive.append(path)  # NAT chains see only a connection's first packet
                    continue
                saved_state = None
                if before_conntrack and view.state != "untracked":
                    # Conntrack has not looked the packet up yet: no connection.
                    saved_state, view.state = view.state, "invalid"
                for end in self._enter_base(chain, path):
                    if saved_state is not None and end.path.view.state == "invalid":
                        end.path.view.state = saved_state
                    if end.kind == "skip":
                        alive.append(end.path)
                    elif end.kind == "accept":
                        end.path.trace.append(Step("verdict", chain, end.decision.rule if end.decision else None,
                                                   "accept"))
                        self._note_accept(end.path, chain, end.decision)
                        alive.append(end.path)
                    elif end.kind == "return":
                        if (chain.policy or "accept") == "drop":
                            end.path.trace.append(Step("policy", chain, None, "drop"))
                            ended.append(_End("drop", end.path, Decision(chain)))
                        else:
                            end.path.trace.append(Step("policy", chain, None, "accept"))
                            self._note_accept(end.path, chain, Decision(chain))
                            alive.append(end.path)
                    else:
                        ended.append(end)
            paths = alive
            if hook == "output" and chain.reroutes:
                for path in paths:
                    view = path.view
                    if path.route_key is not None and (view.src, view.dst, view.mark) != path.route_key:
                        path.route_key = (view.src, view.dst, view.mark)
                        path.rerouted_by = chain.qualified_name
            if not paths:
                break
        if hook == "output":
            self._reroute(paths)
        return paths, ended

    def _sees_nat(self, path: _Path, ended: list[_End]) -> bool:
        """Do the nat chains see ``path``'s packet, which is not NEW?

        The kernel (``nf_nat_ipv4_fn``/``nf_nat_ipv6_fn``, then
        ``nf_nat_inet_fn``) translates an ICMP error (RELATED, protocol
        ICMP/ICMPv6) as the connection it quotes, without the nat table.
        Any other RELATED packet is the first of an expected connection (FTP
        data, …): the nat rules see it, unless its master connection was
        translated, in which case the NAT helper (``nf_nat_follow_master``)
        has already translated it like its master — which the rules do not
        say. Where the rules translate anything, that is an assumption: the
        path that takes it ends unknown here, the other goes on through the
        nat chains."""
        view = path.view
        if view.state != "related" or view.proto in (1, 58):
            return False
        if path.sees_nat is None:
            path.sees_nat = True
            if self.compiled.translates():
                other = self._fork(path)
                other.sees_nat = False
                other.assumptions.append((None, MASTER_TRANSLATED, True))
                path.assumptions.append((None, MASTER_TRANSLATED, False))
                ended.append(_End("unknown", other, None, reason=HELPER_TRANSLATES))
        return path.sees_nat

    def _reroute(self, paths: list[_Path]) -> None:
        """ip_route_me_harder: a mangle (route) or nat OUTPUT chain changed a
        routed packet's addresses or mark, so the kernel routed it again.
        The OUTPUT chains all saw the first route's device (the hook's
        ``out``, fixed when the hook began); POSTROUTING sees the new one."""
        host = self.ruleset.host
        for path in paths:
            if path.rerouted_by is None:
                continue
            view = path.view
            oif, note = routing.reroute_output(host, view, path.rerouted_by)
            path.rerouted_by = None
            if oif != view.oif:
                view.oif = oif
                path.routed_oif = oif
                path.notes.append(note)

    @staticmethod
    def _note_accept(path: _Path, chain: Chain, decision: Decision | None) -> None:
        # nat and route chains never decide (DESIGN.md).
        if chain.kind == "filter" and decision is not None:
            if path.accepted_by is None:
                path.accepted_by = {}
            path.accepted_by.pop(chain.hook, None)
            path.accepted_by[chain.hook] = decision

    def _enter_base(self, chain: Chain, path: _Path) -> list[_End]:
        if chain.devices:
            guard = self.compiled.device_guard(chain)
            r = self.compiled.predicate(guard)(path.view)
            if r is False:
                return [_End("skip", path)]
            if r is None:
                other = self._fork(path)
                other.assumptions.append((None, guard, False))
                path.assumptions.append((None, guard, True))
                return self._run_chain(chain, path, 0) + [_End("skip", other)]
        return self._run_chain(chain, path, 0)

    def evaluate(self, packet: Packet) -> Result:
        result = self._evaluate(packet)
        if self.ruleset.meta.get("snapshot_sets"):
            from ..runtime_sets import with_notes

            result = with_notes(self.ruleset, result)
        return result

    def _evaluate(self, packet: Packet) -> Result:
        host = self.ruleset.host
        context_notes: list[str] = []
        if packet.hook == "auto":
            hook, note = routing.auto_hook(packet, host)
            packet = packet.replace(hook=hook)
            context_notes.append(note)
        state, why = resolve_state(packet)
        given_oif = packet.oif
        if host is not None:
            state, why, packet, early = self._host_context(host, packet, state, why, context_notes)
            if early is not None:
                return early
        hook = packet.hook
        if hook not in HOOK_PATHS:
            raise ValueError(f"unknown hook {hook!r} (input, forward, output)")
        start = _Path(make_view(packet, state), [], [], context_notes + ([why] if why else []))
        if host is not None and hook == "output":
            refused, note = routing.output_refused(packet, host)
            if refused == "drop":
                return Result("drop", packet, None, (), (), "dropped", state, tuple(start.notes), routing=note)
            start.route_maybe = note
        if host is not None and hook == "output" and given_oif is None:
            start.route_key = (start.view.src, start.view.dst, start.view.mark)
        self._paths = 1
        self._steps = 0
        self._returned = {}
        try:
            if host is not None and hook in ("input", "forward"):
                ends = self._traverse_routed(hook, start, host, packet.oif)
            else:
                ends = self._traverse(hook, start, packet.oif)
        except _TooManyPaths:
            return Result("unknown", packet, None, (), (f"more than {MAX_PATHS} undecidable branches",),
                          "unknown", state)
        except _TooManySteps:
            return Result("unknown", packet, None, (),
                          (f"more than {MAX_STEPS} rules visited (jumps that branch?)",), "unknown", state)
        return self._combine(packet, state, ends)

    def _host_context(self, host, packet: Packet, state: str, why: str, notes: list[str]):
        """What a host snapshot fixes before the first chain: the input
        interface strict ``rp_filter`` leaves, the output interface of the
        host's own packets, conntrack's pick-up of mid-stream ACKs."""
        if (state == "new" and packet.proto == 6 and not packet.flags & 0x02
                and host.sysctl("net.netfilter.nf_conntrack_tcp_loose") == "0"):
            state, why = "invalid", ("a TCP packet without SYN and no connection is INVALID here "
                                     "(net.netfilter.nf_conntrack_tcp_loose=0)")
        if packet.hook in ("input", "forward") and packet.iif is None:
            iif, note = routing.input_interface(packet, host)
            if iif == "":
                notes.append(note)
                return state, why, packet, Result("drop", packet, None, (), (), "dropped", state, tuple(notes))
            if iif:
                packet = packet.replace(iif=iif)
                notes.append(note)
        if packet.hook == "output" and packet.oif is None:
            oif, note = routing.output_interface(packet, host)
            if oif:
                packet = packet.replace(oif=oif)
                notes.append(note)
        return state, why, packet, None

    def _traverse_routed(self, hook: str, start: _Path, host, start_oif: str | None) -> list[_End]:
        """Input and forward paths routed as the host routes (see
        :mod:`ruleanalyzer.engine.routing`): after prerouting, the reverse-path
        filter, then local delivery, forwarding by the route's interface, or
        a drop by routing."""
        finished: list[_End] = []
        paths = [start]
        for current in ("ingress", "prerouting"):
            if not paths:
                break
            paths, ended = self._run_hook(current, paths)
            finished.extend(ended)
        local: list[_Path] = []
        forwarded: list[_Path] = []
        for p in paths:
            view = p.view
            dropped = routing.rp_filter_drops(host, view)
            if dropped:
                p.routing = dropped
                finished.append(_End("drop", p, None, reason="routing"))
                continue
            p.route_maybe = routing.rp_filter_maybe(host, view)
            routed = routing.route_view(host, view, p.redirected, hook)
            if routed.kind == "drop":
                p.routing = routed.note
                finished.append(_End("drop", p, None, reason="routing"))
            elif routed.kind == "local":
                if hook == "forward":
                    p.notes.append("the destination is an address of this host: delivered (INPUT), "
                                   "not forwarded")
                view.oif = ""
                p.routing = routed.note or "delivered to this host (a local address)"
                local.append(p)
            else:
                if hook == "input":
                    p.notes.append("DNAT changed the destination: the packet is forwarded, not delivered "
                                   "(it never reaches INPUT)" if p.nat_dst_changed else
                                   "the destination is not an address of this host: the packet is forwarded")
                p.routing = routed.note or "forwarded"
                p.route_maybe = p.route_maybe or routed.maybe
                view.oif = start_oif if start_oif is not None else routed.oif
                p.routed_oif = view.oif
                forwarded.append(p)
        self._finish("input", local, finished, "delivered")
        self._finish("forward", _ip_forward(forwarded, finished), finished, "forwarded")
        return finished

    def _finish(self, hook: str, paths: list[_Path], finished: list[_End], reason: str) -> None:
        """Run ``paths``, routed to ``hook`` after prerouting, through the
        rest of its hooks, and end the live ones as accepted there."""
        for step in HOOK_PATHS[hook][2:]:
            paths, ended = self._run_hook(step, paths) if paths else ([], [])
            finished.extend(ended)
        for p in paths:
            finished.append(p.accepted(hook, reason))

    def _traverse(self, hook: str, start: _Path, start_oif: str | None = None) -> list[_End]:
        finished: list[_End] = []
        paths = [start]
        for current in HOOK_PATHS[hook]:
            if current == "forward":
                paths = _ip_forward(paths, finished)
            if not paths:
                break
            paths, ended = self._run_hook(current, paths)
            finished.extend(ended)
            if current == "prerouting" and hook == "input":
                # DNAT to another address sends the packet on instead of up.
                forwarded = [p for p in paths if p.nat_dst_changed and not p.redirected]
                local = [p for p in paths if not (p.nat_dst_changed and not p.redirected)]
                if forwarded:
                    for p in forwarded:
                        # Routing picks the way out; only the query can name it.
                        p.view.oif = start_oif
                        p.notes.append("DNAT changed the destination: the packet is forwarded, not delivered "
                                       "(it never reaches INPUT)")
                    self._finish("forward", _ip_forward(forwarded, finished), finished, "forwarded")
                paths = local
            elif current == "prerouting" and hook == "forward" and any(p.redirected for p in paths):
                # REDIRECT writes an address of the interface the packet came
                # in on: it is delivered (INPUT), never forwarded
                local = [p for p in paths if p.redirected]
                paths = [p for p in paths if not p.redirected]
                for p in local:
                    p.notes.append("REDIRECT: the packet is delivered to this host (INPUT), not forwarded")
                self._finish("input", local, finished, "delivered")
        own_hook = hook
        for p in paths:
            finished.append(p.accepted(own_hook))
        return finished

    # -- answers -------------------------------------------------------------

    def _combine(self, packet: Packet, state: str, ends: list[_End]) -> Result:
        results = [self._result(packet, state, end) for end in ends]
        if len(results) == 1:
            return results[0]
        verdicts = {r.verdict for r in results}
        depends = []
        for end in ends:
            for rule, m, _ in end.path.assumptions:
                text = describe_match(m)
                where = f" (rule {rule.index} of {rule.chain.name})" if rule is not None and rule.chain else ""
                item = f"{text}{where}"
                if rule is not None and isinstance(m, InterfaceMatch):
                    item = f"the {'input' if m.field == 'iif' else 'output'} interface (not given)"
                if item not in depends:
                    depends.append(item)
            if end.kind == "unknown" and end.reason and end.reason not in depends:
                depends.append(end.reason)
        if len(verdicts) == 1 and "unknown" not in verdicts:
            first = results[0]
            if len({_decider(r) for r in results}) == 1:
                return replace(first, alternatives=tuple(results))
            # One verdict, reached at different rules: no rule decides it for
            # certain; decided_by stays empty and the alternatives say which
            # rule decides under which assumption.
            return replace(first, decided_by=None, depends_on=tuple(depends),
                           alternatives=tuple(results))
        first = results[0]
        return Result("unknown", packet, None, first.trace, tuple(depends), "unknown", state,
                      first.notes, tuple(results), routing=first.routing)

    def _result(self, packet: Packet, state: str, end: _End) -> Result:
        view = end.path.view
        final = _packet_from_view(packet, view, end.path.routed_oif)
        if end.kind == "drop":
            verdict, outcome = "drop", "dropped"
        elif end.kind == "accept":
            verdict = "accept"
            outcome = (end.reason if end.reason in ("forwarded", "delivered")
                       else "forwarded" if packet.hook == "forward"
                       else "sent" if packet.hook == "output" else "delivered")
        else:
            verdict, outcome = "unknown", "unknown"
        depends = tuple(describe_match(m) if holds else f"not ({describe_match(m)})"
                        for _, m, holds in end.path.assumptions)
        if end.kind == "unknown" and end.reason:
            depends += (end.reason,)
        return Result(verdict, final, end.decision, tuple(end.path.trace), depends, outcome,
                      view.state, tuple(end.path.notes), routing=end.path.routing)


def _ip_forward(paths: list[_Path], finished: list[_End]) -> list[_Path]:
    """What ``ip_forward`` / ``ip6_forward`` do between routing and the
    FORWARD hook: a packet whose TTL (hop limit) is 1 or less is dropped
    there (the kernel answers ICMP time exceeded) and never reaches FORWARD
    or POSTROUTING; every other one goes on with its TTL one lower, which
    FORWARD and POSTROUTING rules (``-m ttl``, ``ip ttl``) read."""
    alive = []
    for p in paths:
        view = p.view
        if view.ttl is None:
            alive.append(p)
        elif view.ttl <= 1:
            name = "TTL" if view.family == 4 else "hop limit"
            p.routing = (f"{name} {view.ttl} expires here: the kernel drops the packet before FORWARD "
                         "(ICMP time exceeded)")
            finished.append(_End("drop", p, None, reason="routing"))
        else:
            view.ttl -= 1
            alive.append(p)
    return alive


def _decider(result: Result) -> tuple:
    """What identifies the rule or policy that decided ``result``."""
    d = result.decided_by
    if d is None:
        return (None,)
    return (id(d.chain), id(d.rule) if d.rule is not None else None)


def _endpoint(action: Nat, address: int | None = None, port: int | None = None) -> str:
    """Where ``action`` sent the packet: ``address`` and ``port`` as it
    wrote them, with the range they were chosen from."""
    text = ""
    if action.to_addr is not None:
        if action.address_range is None or address is None:
            text = str(action.to_addr)
        else:
            text = f"{ipaddress.ip_address(address)} ({'netmap to' if action.netmap else 'of'} " \
                f"{action.to_addr}-{action.to_addr_last})"
    if action.to_port is not None:
        if action.port_range is None or port is None:
            text += f":{action.to_port}"
        else:
            text += f":{port} (of {action.to_port}-{action.to_port_last})"
    return text


def _packet_from_view(packet: Packet, view: View, routed_oif: str | None = None) -> Packet:
    oif = routed_oif or packet.oif
    if (view.src == int(packet.src) and view.dst == int(packet.dst) and view.sport == packet.sport
            and view.dport == packet.dport and view.flags == packet.flags and view.ecn == packet.ecn
            and view.dscp == packet.dscp and view.mark == packet.mark and view.ctmark == packet.ctmark
            and oif == packet.oif):
        return packet  # nothing rewrote it: no copy
    make = ipaddress.IPv4Address if view.family == 4 else ipaddress.IPv6Address
    return replace(packet, src=make(view.src), dst=make(view.dst), sport=view.sport,
                   dport=view.dport, flags=view.flags, ecn=view.ecn, dscp=view.dscp,
                   mark=view.mark, ctmark=view.ctmark, oif=oif)


def evaluate(ruleset: Ruleset, packet: Packet) -> Result:
    """The verdict of ``ruleset`` on ``packet``, the rule that decided it,
    and the way the packet went.

    >>> from ruleanalyzer import loads
    >>> from ruleanalyzer.packets import make_packet
    >>> rs = loads("*filter\\n:INPUT DROP [0:0]\\n-A INPUT -p tcp --dport 22 -j ACCEPT\\nCOMMIT\\n",
    ...            dialect="iptables")
    >>> evaluate(rs, make_packet(src="192.0.2.1", dst="198.51.100.1", dport=22, flags="SYN")).verdict
    'accept'
    """
    return Evaluator(ruleset).evaluate(packet)
