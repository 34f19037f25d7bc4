"""RA1xx — rules that never decide anything.

Exact, over packet sets (:mod:`ruleanalyzer.space.reach`): a rule is
unreachable when no packet both reaches it and matches it on any path
through the firewall (every hook and IP version its chain is visited on).
The union of all earlier rules counts, not one earlier rule. Each dead
rule gets a :class:`Story`: a small cover of the earlier rules that take
its packets (largest overlap first), the rules that change its packets on
the way (NOTRACK, MARK, NAT — never "deciders" themselves) and those that
then decide them, or the contradicting conditions and where they come
from. Shadowed (RA101) and redundant (RA102) are told apart by the
verdicts the packets really get.

Rules a structure check already explains — after an unconditional
terminating rule (RA504) or an exact duplicate of an earlier rule (RA505) —
are left to that check, so one mistake gives one finding.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

from ..model import (Accept, AnyOf, Dispatch, Drop, EcnStrip, Goto, IntMatch, Jump, Log, Nat, Notrack,
                     OpaqueMatch, Reject, Return, Rule, SetField)
from .base import Check, Context, Finding, Option, Where, related_policy, related_rule, shown
from .structure import explained_by_structure


def outcome(rule: Rule) -> str:
    """What a rule does to the packets it takes, for comparing rules:
    ``accept``, ``drop``, ``jump X``, ``return`` …"""
    action = rule.action
    kind = type(action)
    if kind is Accept:
        return "accept"
    if kind is Drop or kind is Reject:
        return "drop"
    # keyed by the action's type and target, not the action (hashing a frozen
    # dataclass — a DNAT's addresses — each time was most of the cost)
    key = (kind, getattr(action, "target", None))
    found = _OUTCOMES.get(key)
    if found is None:
        if len(_OUTCOMES) > 1 << 16:  # a long-lived process (fleet workers): chain names of every ruleset
            _OUTCOMES.clear()
        found = _OUTCOMES[key] = _outcome(action)
    return found


#: :func:`outcome` by (action type, jump target).
_OUTCOMES: dict[tuple, str] = {}


def _outcome(action) -> str:
    if isinstance(action, Accept):
        return "accept"
    if isinstance(action, (Drop, Reject)):
        return "drop"
    target = getattr(action, "target", None)
    return f"{action.name} {target}" if target else action.name


def meant(rule: Rule) -> str:
    """The verdict a rule gives the packets it takes: :func:`outcome`, but
    a jump or goto into a chain that gives every packet one verdict (a
    ``DUMP`` chain that logs and drops) counts as that verdict."""
    out = outcome(rule)
    if out in ("accept", "drop") or not isinstance(rule.action, (Jump, Goto)):
        return out
    return _chain_verdict(rule, rule.action.target, 4) or out


def _chain_verdict(rule: Rule, name: str, depth: int) -> str | None:
    """``accept``/``drop`` when chain ``name`` of ``rule``'s table ends every
    packet that enters it with that one verdict, else None."""
    table = rule.chain.table if rule.chain is not None else None
    chain = table.chains.get(name) if table is not None else None
    if chain is None or depth <= 0 or not chain.rules:
        return None
    last = chain.rules[-1]
    if last.matches or outcome(last) not in ("accept", "drop"):
        return None  # packets can fall off its end (back to the caller)
    found = set()
    for r in chain.rules:
        v = outcome(r)
        if v in ("accept", "drop"):
            found.add(v)
        elif isinstance(r.action, (Jump, Goto)):
            found.add(_chain_verdict(r, r.action.target, depth - 1))
        elif not isinstance(r.action, (Log, SetField)) or r.action.terminal:
            return None  # a RETURN, a queue, a verdict map: not one verdict
    return found.pop() if len(found) == 1 else None


@dataclass
class _Dead:
    """One rule unreachable on every path it lies on."""

    rule: Rule


def dead_rules(ctx: Context) -> list[_Dead]:
    """Rules no packet reaches and matches on any hook/family (cached).
    Which earlier rules block them is not searched here: only the stories
    of rules whose packets never enter their chain ask for it
    (:func:`_space_changers`)."""
    cached = ctx.__dict__.get("_dead_rules")
    if cached is not None:
        return cached
    seen: dict[int, _Dead] = {}
    alive: set[int] = set()
    order: list[int] = []
    for _hook, _family, reach in ctx.analyses():
        for rule in reach.rules():
            rid = id(rule)
            if not reach.is_unreachable(rule):
                alive.add(rid)
                continue
            if rid not in seen:
                seen[rid] = _Dead(rule)
                order.append(rid)
    result = [seen[i] for i in order if i not in alive and not seen[i].rule.implicit]
    # One written line may compile to several rules (a firewalld zone's
    # target on input and on forward): it is dead only when all of them are.
    dead_ids = {id(d.rule) for d in result}
    live_lines = {_line(r) for r in ctx.ruleset.rules() if id(r) not in dead_ids and _line(r)}
    result = [d for d in result if _line(d.rule) not in live_lines]
    ctx.__dict__["_dead_rules"] = result
    return result


def _line(rule: Rule):
    """Where a rule was written (file, line, column, JSON path), or None."""
    loc = rule.location
    if loc is None or not (loc.line or loc.path):
        return None
    return (loc.file, loc.line, loc.column, loc.path)


def _blocker_list(blockers: list[Rule], limit: int = 5) -> str:
    shown = ", ".join(_name(b) for b in blockers[:limit])
    more = len(blockers) - limit
    return shown + (f" and {more} more" if more > 0 else "")


def _name(rule: Rule) -> str:
    """``INPUT rule 3 (line 12)``."""
    line = f" (line {rule.location.line})" if rule.location.line else ""
    return f"{rule.chain.name} rule {rule.index}{line}"


def _listing(rule: Rule, note: str = "") -> str:
    """A detail line: the rule's name and text."""
    return f"{_name(rule)}{' ' + note if note else ''}: {shown(rule)}"


# -- why a rule is dead: the story behind RA101-RA103 --------------------------

#: Blockers named per finding; past it the finding says how many more.
COVER_CAP = 5
#: Verdict actions, and what a verdict word reads as in a sentence.
_PAST = {"accept": "accepted", "drop": "dropped"}
#: Modules the model cannot represent: IPv6 extension headers (its packets carry none).
_UNMODELLED = re.compile(r"^-m (rt|hbh|dst|frag|ipv6header)\b")


def unmodelled(rule: Rule) -> list[str]:
    """Conditions of ``rule`` the packet model cannot represent (forced
    false there, so the rule's reachability says nothing)."""
    return [m.text for m in rule.matches
            if isinstance(m, AnyOf) and not m.matches and _UNMODELLED.match(m.text or "")]


@dataclass
class Story:
    """Why one dead rule never matches, in the terms an admin acts on.

    ``kind``: ``blocked`` (earlier rules of its chain take its packets:
    ``cover`` is a small set of them, largest overlap first), ``changed``
    (earlier rules change its packets — NOTRACK, MARK, NAT — so its
    conditions no longer hold; ``changers`` did it, ``deciders`` decide
    the packets instead), ``callers`` (its chain is entered only by packets
    it excludes; ``conflicts`` names each contradicting pair), ``own`` (its
    conditions contradict each other), ``unmodelled``. ``shadowed``: some
    of its packets get another verdict than the rule's (True), none do
    (False), unknown (None)."""

    rule: Rule
    kind: str = "own"
    cover: list[Rule] = field(default_factory=list)
    more: int = 0
    changers: list[Rule] = field(default_factory=list)
    deciders: list[Rule] = field(default_factory=list)
    conflicts: list[tuple[str, str, Rule | None]] = field(default_factory=list)
    shadowed: bool | None = None
    #: Rule id → the jump of the rule's chain through which a cover rule takes the packets.
    via: dict[int, Rule] = field(default_factory=dict)
    #: A jump leading to the rule's chain, when the cover lies before it (in the caller's chain).
    site: Rule | None = None
    #: Chains entered only by dead jumps, this rule among them: their rules never run either.
    orphaned: list = field(default_factory=list)


_RANK = {"blocked": 0, "changed": 1, "callers": 2, "own": 3, "orphan": 4, "untold": 5}


class UntoldFinding(Finding):
    """A dead rule's finding that a default audit only counts among those
    about tools' stock rules (:attr:`Context.untold`): its story — which
    check, the blocking rules — is never worked out. Never shown."""


def stories(ctx: Context) -> dict[int, Story]:
    """The :class:`Story` of every dead rule of ``ctx`` (cached), except
    those a structure check explains (RA504, RA505: no finding tells
    their story). Rules :attr:`Context.untold` names get an ``untold``
    story, not worked out (nor the blocker search for them)."""
    cached = ctx.__dict__.get("_dead_stories")
    if cached is not None:
        return cached
    out: dict[int, Story] = {}
    dead = dead_rules(ctx)
    by_id = {id(d.rule): d for d in dead if not explained_by_structure(d.rule)}
    orphans = {id(chain) for chain, _jumps in _orphan_chains(ctx)}
    families = set(ctx.families())
    untold = ctx.untold
    for _hook, _family, reach in ctx.analyses():
        for rule in reach.rules():
            d = by_id.get(id(rule))
            if d is None or unmodelled(rule):
                continue
            if _foreign(rule, _family, families):
                continue  # an IPv6-only rule's IPv4 path says nothing about why it is dead
            if id(rule.chain) in orphans:  # its chain is never entered: the jumps tell it
                out.setdefault(id(rule), Story(rule, kind="orphan"))
                continue
            if untold is not None and untold(rule):  # its finding is only counted
                out.setdefault(id(rule), Story(rule, kind="untold"))
                continue
            story = _story(reach, rule)
            best = out.get(id(rule))
            if best is None or _RANK[story.kind] < _RANK[best.kind]:
                out[id(rule)] = story
            elif story.kind == best.kind == "blocked":
                best.cover += [r for r in story.cover if r not in best.cover]
                best.via.update(story.via)
                best.shadowed = _either(best.shadowed, story.shadowed)
    _mark_orphans(ctx, out)
    ctx.__dict__["_dead_stories"] = out
    return out


def _rule_families(rule: Rule) -> set[int] | None:
    """The families the rule's own ``nfproto``/``ip6``-style condition allows
    (None: any)."""
    allowed = None
    for m in rule.matches:
        if isinstance(m, IntMatch) and m.field == "family" and not m.negate:
            fams = {f for lo, hi in m.ranges for f in (4, 6) if lo <= f <= hi}
            allowed = fams if allowed is None else allowed & fams
    return allowed


def _foreign(rule: Rule, family: int, families: set[int]) -> bool:
    """Is ``family`` one the rule cannot match, while another analysed family
    it can match exists (so that one explains it)?"""
    allowed = _rule_families(rule)
    return allowed is not None and family not in allowed and bool(allowed & families)


def _orphan_chains(ctx: Context) -> list[tuple[object, list[Rule]]]:
    """``(chain, the jumps into it)`` for each user chain entered only by
    dead jumps (cached)."""
    cached = ctx.__dict__.get("_orphan_chains")
    if cached is not None:
        return cached
    dead = {id(d.rule) for d in dead_rules(ctx)}
    found = []
    for table in ctx.ruleset.tables:
        callers: dict[str, list[Rule]] = {}
        for chain in table.chains.values():
            for r in chain.rules:
                for target in r.jump_targets():
                    callers.setdefault(target, []).append(r)
        for name, jumps in callers.items():
            chain = table.chains.get(name)
            if chain is None or chain.is_base or not chain.rules \
                    or any(id(j) not in dead for j in jumps):
                continue
            found.append((chain, jumps))
    ctx.__dict__["_orphan_chains"] = found
    return found


def _mark_orphans(ctx: Context, out: dict[int, Story]) -> None:
    """A user chain entered only by dead jumps is dead because of them:
    its rules' stories are ``orphan`` (no finding of their own: not told
    further) and each dead jump's story lists the chain (``orphaned``), so
    one cause gives one finding."""
    for chain, jumps in _orphan_chains(ctx):
        for r in chain.rules:
            if id(r) in out:
                out[id(r)].kind = "orphan"
        for j in jumps:
            if id(j) in out and j.chain is not chain:
                out[id(j)].orphaned.append(chain)


def _either(a: bool | None, b: bool | None) -> bool | None:
    """Shadowed on some path counts; redundant only where every path says so."""
    if a or b:
        return True
    if a is False and b is False:
        return False
    return None


def _raw(reach, rule: Rule, column: int):
    """One of ``rule``'s walk sets as a raw node, not yet intersected with
    ``space.valid`` (0 reaching lower, 1 reaching upper, 2 matched lower,
    3 matched upper; KeyError when the rule is not on this path). A chain's
    reaching set past kube-proxy's DNATs holds ~700k nodes: intersected
    with a small set (that is within the valid packets) it gives the very
    node the wrapped set would, without wrapping the big one."""
    return reach._records[rule].column(column)


def _within(packets, raw):
    """``packets`` (a valid set) intersected with a raw node: valid too."""
    return type(packets)(packets.space, packets.node & raw)


def _entry(reach, chain):
    """Packets that possibly enter ``chain`` on this path, as a raw node
    (:func:`_raw`: intersect it with a valid set before use); None: never
    entered. Cached per analysis and chain."""
    if chain is None or not chain.rules:
        return None
    cache = reach.__dict__.setdefault("_ra_entry", {})
    if id(chain) not in cache:
        try:
            cache[id(chain)] = _raw(reach, chain.rules[0], 1)
        except KeyError:
            cache[id(chain)] = None
    return cache[id(chain)]


def _space_changers(reach, rule: Rule) -> list[Rule]:
    """The rules that change ``rule``'s packets on the way, among the
    blockers the packet space names for it (those that take or change the
    packets before the jumps into its chain). No rule on this path changes
    packets: none, without the blocker search."""
    writers = reach.__dict__.get("_ra_writes")
    if writers is None:
        writers = reach.__dict__["_ra_writes"] = any(_writes(r) for r in reach.rules())
    if not writers:
        return []
    blockers = reach.__dict__.get("_ra_blockers")
    if blockers is None:
        blockers = reach.__dict__["_ra_blockers"] = {id(r): b for r, b in reach.unreachable_rules(entered=False)}
    return [b for b in blockers.get(id(rule), []) if _writes(b)]


def _story(reach, rule: Rule) -> Story:
    sets = reach.rule_sets(rule)
    target = sets.match_upper
    story = Story(rule)
    if target.is_empty():
        story.kind = "own"
        story.conflicts = _own_conflicts(reach.space, rule)
        return story
    entry = _entry(reach, rule.chain)
    packets = _within(target, entry) if entry is not None else target
    if not packets.is_empty():
        story.kind = "blocked"
        _cover(reach, rule, packets, story)
        story.shadowed = _by_cover(rule, story.cover)
        if story.shadowed is None:
            story.shadowed = _verdicts(reach, rule, packets)
        return story
    changers = _space_changers(reach, rule)
    if changers:
        story.kind = "changed"
        story.changers = changers[:COVER_CAP]
        _after_change(reach, rule, target, entry, story)
        return story
    if rule.chain is not None and rule.chain.is_base:
        earlier = _earlier_deciders(reach, rule, target)
        if earlier:  # earlier base chains (raw, mangle, another table) decide them
            story.kind, story.cover = "blocked", earlier
            story.shadowed = _by_cover(rule, earlier)
            return story
    site = _caller_path(reach, rule, target)
    if site is not None:  # rules on the way to its chain decide its packets first
        path, want = site
        jump, on_path = path[0], {id(j.chain): j.index for j in path}
        candidates = _candidates_before(reach, rule, path, want)
        cover, more, remaining = _sure_first(reach, candidates, want, meant(rule), matched=True,
                                             on_path=on_path)
        entered = _entry(reach, path[-1].chain)
        if entered is not None:  # what never got to the base chain was changed on the way (NAT)
            remaining = _within(remaining, entered)
        if cover and remaining.is_empty():
            story.kind, story.site, story.cover, story.more = "blocked", jump, cover, more
            story.cover = _inside_jumps(reach, story, want)
            story.shadowed = _by_cover(rule, story.cover)
            if story.shadowed is None:
                story.shadowed = _verdicts(reach, rule, want)
            return story
        story.via = {}
    story.kind = "callers"
    if entry is not None and reach.space.has_valid(entry):
        story.conflicts = _caller_conflicts(reach, rule, entry)
    return story


def _caller_path(reach, rule: Rule, target, depth: int = 8):
    """``(jumps, packets)``: ``target`` narrowed by the conditions of a way
    into ``rule``'s chain that admits some of them — so no condition
    contradicts — and that way's jumps (verdict-map branches included),
    from the one into ``rule``'s chain up to one in a base chain; the first
    such way, callers in order, depth first. None when every way excludes
    them (the callers story tells it).

    A search that tries more than :data:`_SEARCH_STEPS` ways starts again
    guided by the union of every way into each chain (:func:`_ways_in`),
    and so does every later one into that chain: a way that admits none of
    the packets is then passed over at once, not tried jump by jump (the
    dead rules of a chain its callers exclude asked every way in, each
    anew: 1M inclusion tests at 20k mixed rules). Both find the same way."""
    if depth <= 0 or rule.chain is None or rule.chain.is_base:
        return None
    guided = reach.__dict__.setdefault("_ra_guided", set())
    if id(rule.chain) not in guided:
        try:
            return _first_way(reach, rule.chain, target, depth, [_SEARCH_STEPS])
        except _Costly:
            guided.add(id(rule.chain))
    return _first_way(reach, rule.chain, target, depth, None)


#: Ways a search into a chain tries before the union of the ways guides it.
_SEARCH_STEPS = 8


class _Costly(Exception):
    """A search into a chain went past its steps."""


def _first_way(reach, chain, target, depth: int, steps: list[int] | None):
    """:func:`_caller_path` from ``chain``: unguided with ``steps`` (a
    countdown of the ways it may try), else guided by :func:`_ways_in`."""
    if depth <= 0 or chain is None or chain.is_base:
        return None
    space = reach.space
    if steps is None and space.disjoint(target.node, _ways_in(reach, chain, depth)):
        return None
    for caller in _callers(reach).get(id(chain), []):
        try:
            sends = _sends(reach, caller, chain.name)
        except KeyError:
            continue
        if space.disjoint(target.node, sends.node):
            continue
        if caller.chain is not None and caller.chain.is_base:
            return [caller], target & sends
        if steps is None:
            higher = _ways_in(reach, caller.chain, depth - 1)
            if space.disjoint(target.node, higher):
                continue
        want = target & sends
        if steps is None:
            if space.disjoint(want.node, higher):
                continue  # no way on through ``caller`` admits them
        else:
            steps[0] -= 1
            if steps[0] < 0:
                raise _Costly
        found = _first_way(reach, caller.chain, want, depth - 1, steps)
        if found is not None:
            return [caller, *found[0]], found[1]
    return None


def _ways_in(reach, chain, depth: int):
    """Raw node: the packets some way of at most ``depth`` jumps from a
    base chain into ``chain`` admits — their conditions only, not what
    earlier rules take (the walk's :func:`_entry` has those). Once per
    analysis, chain and depth (beyond the longest way in, the same)."""
    false = reach.space.false
    if depth <= 0 or chain is None or chain.is_base:
        return false
    depth = min(depth, _height(reach, chain))
    cache = reach.__dict__.setdefault("_ra_ways", {})
    key = (id(chain), depth)
    hit = cache.get(key)
    if hit is None:
        from ..space.reach import _union_all

        parts, by_chain = [], {}  # the callers of one chain: ways on through it ∧ their union
        for caller in _callers(reach).get(id(chain), []):
            try:
                sends = _sends(reach, caller, chain.name).node
            except KeyError:
                continue
            if caller.chain is not None and caller.chain.is_base:
                parts.append(sends)
            else:
                by_chain.setdefault(id(caller.chain), (caller.chain, []))[1].append(sends)
        for up, sent in by_chain.values():
            higher = _ways_in(reach, up, depth - 1)
            if higher != false:
                parts.append(higher & _union_all(sent, false))
        hit = cache[key] = _union_all(parts, false)
    return hit


def _height(reach, chain, seen: frozenset = frozenset()) -> float:
    """The most jumps a way from a base chain into ``chain`` takes (0 for a
    base chain; infinite on a loop). Once per analysis and chain."""
    cache = reach.__dict__.setdefault("_ra_height", {})
    hit = cache.get(id(chain))
    if hit is not None:
        return hit
    if chain is None or chain.is_base:
        return 0
    if id(chain) in seen:
        return float("inf")
    seen = seen | {id(chain)}
    hit = cache[id(chain)] = 1 + max((_height(reach, c.chain, seen) for c in _callers(reach).get(id(chain), [])),
                                     default=0)
    return hit


def _candidates_before(reach, rule: Rule, path: list[Rule], packets) -> list[Rule]:
    """Rules visited before ``rule`` that can take packets from a rule
    entered by way of ``path`` (its jumps): rules of the path's chains
    before their jumps (verdicts, jumps — resolved later —, verdict maps);
    elsewhere (earlier base chains, chains they call) only drops — an
    accept ends only its own base chain. Only those whose matched sets
    meet ``packets`` (the others take none of them), in the same order."""
    order, drops = _walk_index(reach)
    here = order.get(id(rule), len(order))
    out = []
    for jump in reversed(path):
        rules, index = _chain_index(reach, jump.chain, "path")
        out += rules.meeting(packets.node, bisect.bisect_left(index, jump.index - 1))
    on_path = {id(j.chain) for j in path}
    positions, index = drops
    out += [other for other in index.meeting(packets.node, bisect.bisect_left(positions, here))
            if id(other.chain) not in on_path]
    return out


def _walk_index(reach):
    """(rule id → position in the walk, ([positions], :class:`_Meeting`) of
    its drops), once per analysis."""
    cached = reach.__dict__.get("_ra_walk")
    if cached is None:
        order, positions, drops = {}, [], []
        for pos, other in enumerate(reach.rules()):
            order.setdefault(id(other), pos)
            if outcome(other) == "drop" and other.chain is not None:
                positions.append(pos)
                drops.append(other)
        cached = reach.__dict__["_ra_walk"] = (order, (positions, _Meeting(reach, drops, True)))
    return cached


def _chain_index(reach, chain, kind: str):
    """``(:class:`_Meeting`, [rule index - 1 of each])`` over the rules of
    ``chain`` that can take packets from a later rule: ``"path"``, those
    :func:`_candidates_before` names on a way in (their matched sets);
    ``"own"``, those :func:`_cover` names in the rule's own chain (their
    own matches; a jump's matched sets). Once per analysis and chain."""
    cache = reach.__dict__.setdefault("_ra_chains", {})
    key = (id(chain), kind)
    hit = cache.get(key)
    if hit is None:
        if kind == "path":
            rules = [o for o in chain.rules
                     if meant(o) in _PAST or isinstance(o.action, (Jump, Goto, Dispatch))]
        else:
            rules = [o for o in chain.rules if _decides(o)]
        hit = cache[key] = (_Meeting(reach, rules, kind == "path"), [o.index - 1 for o in rules])
    return hit


class _Meeting:
    """Which of some rules (in order) can take packets of a set: those
    whose matched sets (``matched``; else their own match, a jump's matched
    sets) meet it, as :func:`_sure_first` tests them. A tree of unions over
    blocks of rules, made as asked: a block whose union misses the set is
    passed over whole (none of its rules would meet it), so a dead rule's
    story tests the few rules that can meet it, not every earlier one."""

    LEAF = 16

    def __init__(self, reach, rules: list[Rule], matched: bool):
        space, false = reach.space, reach.space.false
        self.space = space
        self.rules: list[Rule] = list(rules)
        self.nodes: list[list] = []  # per rule: the sets tested (raw nodes)
        for r in self.rules:
            rec = reach._records.get(r)
            if rec is None:
                self.nodes.append([])  # not on this path: never meets
            elif matched or isinstance(r.action, (Jump, Dispatch)):
                self.nodes.append([part[3] for part in rec.parts if part[3] != false])
            else:
                self.nodes.append([rec.match_u] if rec.match_u != false else [])
        self.unions: dict[tuple[int, int], object] = {}

    def meeting(self, node, n: int) -> list[Rule]:
        """The first ``n`` rules' that meet ``node``, in order."""
        out: list[Rule] = []
        if n > 0:
            self._walk(0, len(self.rules), node, min(n, len(self.rules)), out)
        return out

    def _union(self, lo: int, hi: int):
        u = self.unions.get((lo, hi))
        if u is None:
            if hi - lo <= self.LEAF:
                from ..space.reach import _union_all

                u = _union_all([x for nodes in self.nodes[lo:hi] for x in nodes], self.space.false)
            else:
                mid = (lo + hi) // 2
                u = self._union(lo, mid) | self._union(mid, hi)
            self.unions[(lo, hi)] = u
        return u

    def _walk(self, lo: int, hi: int, node, n: int, out: list) -> None:
        if lo >= n:
            return
        disjoint = self.space.disjoint
        if hi <= n and disjoint(self._union(lo, hi), node):
            return
        if hi - lo <= self.LEAF:
            out += [self.rules[i] for i in range(lo, min(hi, n))
                    if any(not disjoint(x, node) for x in self.nodes[i])]
            return
        mid = (lo + hi) // 2
        self._walk(lo, mid, node, n, out)
        self._walk(mid, hi, node, n, out)


def _surely_entered(reach, chain, depth: int = 8):
    """Packets that surely take the jumps into ``chain`` from a base chain
    (all of them for a base chain): a drop in ``chain`` surely removes
    those, where it may only remove packets an undecidable jump sends."""
    cache = reach.__dict__.setdefault("_ra_entered", {})
    hit = cache.get(id(chain))
    if hit is not None:
        return hit
    space = reach.space
    if chain is None or chain.is_base:
        return space.wrap(space.true)
    cache[id(chain)] = space.wrap(space.false)  # a loop enters nothing surely
    node = space.false
    if depth > 0:
        for caller in _callers(reach).get(id(chain), []):
            try:
                sets = reach.rule_sets(caller)
                sure = sets.reaching_upper & sets.match_lower & _sends(reach, caller, chain.name)
            except KeyError:
                continue
            node |= (sure & _surely_entered(reach, caller.chain, depth - 1)).node
    cache[id(chain)] = result = space.wrap(node)
    return result


def _sends(reach, caller: Rule, chain: str):
    """Packets ``caller`` would send into ``chain``: its match, and for a
    verdict map the branches that lead there (cached per analysis: every
    dead rule of the chain asks each caller)."""
    cache = reach.__dict__.setdefault("_ra_sends", {})
    key = (id(caller), chain)
    hit = cache.get(key)
    if hit is not None:
        return hit
    sets = reach.rule_sets(caller).match_upper
    action = caller.action
    if isinstance(action, Dispatch):
        node = reach.space.false
        for match, branch in action.branches:
            if getattr(branch, "target", None) == chain:
                node |= _encode(reach.space, match).node
        sets = sets & reach.space.wrap(node)
    cache[key] = sets
    return sets


def _deciding_before(reach, chain, packets) -> list[Rule]:
    """Rules of the walk before base chain ``chain`` that give a verdict to
    some of ``packets`` (earlier hooks, lower priorities, other tables)."""
    first = chain.rules[0] if chain.rules else None
    out = []
    for other in reach.rules():
        if other is first:
            break
        if outcome(other) in _PAST and reach.rule_sets(other).matched_upper.intersects(packets):
            out.append(other)
    return out


def _upper(space, match):
    """One condition's packets (upper bound) as a raw node, not yet within
    the valid packets: to be met with a valid set."""
    from ..space.encode import encode_conjunction

    return encode_conjunction((match,), space)[1]


def _encode(space, match):
    """One condition's packets (upper bound), cached per space."""
    from ..space.encode import encode_conjunction

    cache = space.__dict__.setdefault("_ra_single", {})
    try:
        hit = cache.get(match)
    except TypeError:  # an unhashable condition: not cached
        return space.wrap(encode_conjunction((match,), space)[1])
    if hit is None:
        hit = cache[match] = space.wrap(encode_conjunction((match,), space)[1])
    return hit


def _own_conflicts(space, rule: Rule) -> list[tuple[str, str, Rule | None]]:
    """The first pair of the rule's conditions that exclude each other
    (or one condition no packet of its table's family meets)."""
    # Each condition's packets met with the family's, as raw nodes: the
    # family's set lies within the valid packets, so it makes them valid
    # (no wrap of each condition: 1k wraps were 1 s at 100k mixed rules).
    family, false = _table_family(space, rule).node, space.false
    met: list = []
    for i, m in enumerate(rule.matches):
        s = _upper(space, m) & family
        if s == false:
            return [(_condition(rule, m), "", None)]
        for m2, s2 in zip(rule.matches[:i], met):
            if space.disjoint(s, s2):
                return [(_condition(rule, m2), _condition(rule, m), None)]
        met.append(s)
    return []


_SET_REF = re.compile(r"@[A-Za-z_][\w.-]*")


def empty_set(rule: Rule, match) -> str | None:
    """The name of the set (``@blocklist``) a condition of ``rule`` looks up
    when that condition has no element at all, else None."""
    if match.negate:
        return None
    values = next((getattr(match, a) for a in ("networks", "names", "ranges", "values", "matches")
                   if hasattr(match, a)), None)
    if values is None or len(values) or isinstance(match, OpaqueMatch):
        return None
    refs = _SET_REF.findall(rule.text or "")
    return refs[0] if len(refs) == 1 else None


def _condition(rule: Rule, match) -> str:
    """A condition as written, or (a reader kept no text) as the model has it."""
    if match.text:
        return match.text
    name = empty_set(rule, match)
    if name:
        return name
    if isinstance(match, AnyOf) and match.matches:  # a set lookup: its first elements
        alts = [" ".join(_condition(rule, m) for m in getattr(b, "matches", (b,))) for b in match.matches[:2]]
        return ("!" if match.negate else "") + "{ " + ", ".join(alts) + (", … }" if len(match.matches) > 2 else " }")
    field_ = getattr(match, "field", type(match).__name__)
    value = next((getattr(match, a) for a in ("networks", "names", "ranges", "values")
                  if hasattr(match, a)), None)
    if isinstance(value, tuple) and value and isinstance(value[0], tuple):
        value = ",".join(f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in value)
    elif isinstance(value, (tuple, frozenset)):
        value = ",".join(sorted(str(v) for v in value)) or "{}"
    return f"{field_} {'!= ' if match.negate else ''}{value if value is not None else '…'}"


def _table_family(space, rule: Rule):
    table = rule.chain.table if rule.chain else None
    fams = [v for v in (4, 6) if table is None or table.applies_to(v)]
    node = space.false
    for v in fams:
        node |= space.family(v)
    return space.wrap(node)


def _earlier_deciders(reach, rule: Rule, target) -> list[Rule]:
    """Rules of base chains run before ``rule``'s that decide its packets
    (a small cover of them, as :func:`_sure_first` picks)."""
    return _sure_first(reach, _deciding_before(reach, rule.chain, target), target, meant(rule))[0]


def _callers(reach) -> dict[int, list[Rule]]:
    """Chain id → the rules reached on this path that jump or go to it."""
    cached = getattr(reach, "_ra_callers", None)
    if cached is None:
        cached = {}
        for r in reach.rules():
            table = r.chain.table if r.chain is not None else None
            for target in r.jump_targets() if table is not None else ():
                if target in table.chains:
                    cached.setdefault(id(table.chains[target]), []).append(r)
        reach._ra_callers = cached
    return cached


def _caller_conflicts(reach, rule: Rule, entry) -> list[tuple[str, str, Rule | None]]:
    """Which of the rule's conditions exclude what enters its chain (raw
    node, :func:`_entry`), and the caller condition each contradicts:
    ``(rule's, caller's, caller)``."""
    space = reach.space
    chain = rule.chain
    mine = [(m, _encode(space, m)) for m in rule.matches]
    callers = _callers(reach).get(id(chain), [])
    out: list[tuple[str, str, Rule | None]] = []
    conditions = reach.__dict__.setdefault("_ra_conditions", {})  # every dead rule of a chain asks
    for caller in callers:
        theirs = conditions.get(id(caller))
        if theirs is None:
            # raw: met with a condition of the rule's (valid), as valid as that
            theirs = conditions[id(caller)] = [(m, _upper(space, m)) for m in caller.matches]
        found = next(((_condition(rule, m), _condition(caller, mj)) for m, s in mine
                      for mj, sj in theirs if space.disjoint(s.node, sj)), None)
        if found is not None:
            out.append((found[0], found[1], caller))
    if not out and entry is not None:  # no caller to name: the condition the entry excludes
        excluded = next((m for m, s in mine if space.disjoint(s.node, entry)), None)
        if excluded is not None:
            out = [(_condition(rule, excluded), "", None)]
    return out


def _taken(reach, other: Rule, sure: bool = False):
    """Packets ``other`` (``sure``: surely) takes away from the rules after
    it: what it matched, less what comes back from a jump (it reaches the
    next rule). Cached per analysis: every dead rule after it asks."""
    cache = reach.__dict__.setdefault("_ra_taken", {})
    key = (id(other), sure)
    hit = cache.get(key)
    if hit is None:
        rec = reach._records[other]
        if sure and len(rec.parts) == 1 and rec.match_l == rec.match_u:
            # one visit, a decided match: what surely matched is what
            # reached it within its match — its matched set (no replay)
            hit = cache[key] = _taken(reach, other)
        else:
            hit = cache[key] = _taken_now(reach, other, sure)
    return hit


def _taken_now(reach, other: Rule, sure: bool):
    # Surely taken: what surely matches among what may get there (the walk
    # takes those from the later rules' possible packets). Raw nodes, made
    # valid once at the end. The reaching sets are big (~700k nodes in a
    # kube-proxy chain past its DNATs), the result small: only their part
    # within what the rule matched is made (_Record.reaching_within).
    rec = reach._records[other]
    taken = rec.reached_within_match(reach.space) if sure else rec.column(3)
    if isinstance(other.action, (Jump, Dispatch)) and other.chain and other.index < len(other.chain.rules):
        after = reach._records.get(other.chain.rules[other.index])
        if after is not None:  # what comes back from the jump reaches the next rule
            taken = taken & ~after.reaching_within(taken)
    return reach.space.wrap(taken)


def _decides(rule: Rule) -> bool:
    """Does the rule take packets away from later rules of its chain?"""
    return not isinstance(rule.action, (Log, SetField, Notrack, EcnStrip)) and not (
        isinstance(rule.action, Nat) and rule.chain is not None and rule.chain.kind != "nat")


def _writes(rule: Rule) -> bool:
    return any(isinstance(a, (SetField, Notrack, EcnStrip, Nat)) for a in rule.actions())


def _cover(reach, rule: Rule, packets, story: Story, site: Rule | None = None):
    """A small set of the rules before ``site`` (the rule itself, or a jump
    leading to its chain) in its chain that take ``packets``."""
    site = site or rule
    rules, index = _chain_index(reach, site.chain, "own")
    earlier = rules.meeting(packets.node, bisect.bisect_left(index, site.index - 1))
    story.cover, story.more, remaining = _sure_first(reach, earlier, packets, meant(rule))
    if not remaining.is_empty():  # the rest was changed on the way (a MARK in the chain …)
        story.changers = [o for o in site.chain.rules[:site.index - 1] if _writes(o)][:COVER_CAP]
    story.cover = _inside_jumps(reach, story, packets)
    return remaining


def _inside_jumps(reach, story: Story, packets, depth: int = 3) -> list[Rule]:
    """``story.cover`` with each jump or goto replaced by the rules of the
    chain it enters that decide the packets it takes from ``packets`` (a
    jump is not the cause: what the chain does to them is), where those
    rules account for all of them; the jump is kept in ``story.via``."""
    out: list[Rule] = []
    for blocker in story.cover:
        inner = _deciders_inside(reach, blocker, packets, depth)
        for r in inner or [blocker]:
            if r not in out:
                out.append(r)
            if inner:
                story.via.setdefault(id(r), blocker)
    if len(out) > COVER_CAP:
        story.more += len(out) - COVER_CAP
        out = out[:COVER_CAP]
    return out


def _deciders_inside(reach, jump: Rule, packets, depth: int) -> list[Rule]:
    """The rules inside the chains ``jump`` enters (a verdict map's
    branches each) that decide all of the ``packets`` it takes; [] when
    some come back or a branch decides itself (the jump is the cause)."""
    if depth <= 0 or jump.chain is None or jump.chain.table is None:
        return []
    action = jump.action
    if isinstance(action, (Jump, Goto)):
        branches = [(None, action.target)]
    elif isinstance(action, Dispatch) and all(isinstance(a, (Jump, Goto)) for _m, a in action.branches):
        branches = [(m, a.target) for m, a in action.branches]
    else:
        return []
    try:
        flow = _taken(reach, jump) & packets
    except KeyError:
        return []
    out: list[Rule] = []
    for match, name in branches:
        target = jump.chain.table.chains.get(name)
        part = flow if match is None else flow & _encode(reach.space, match)
        if part.is_empty():
            continue
        if target is None or target is jump.chain:
            return []
        inner = [o for o in target.rules if _decides(o) and not isinstance(o.action, Return)]
        cover, more, remaining = _sure_first(reach, inner, part, "")
        if not remaining.is_empty() or more:
            return []  # some come back or fall off the chain's end: the jump itself is the cause
        for r in cover:
            deeper = _deciders_inside(reach, r, part, depth - 1)
            out += [x for x in (deeper or [r]) if x not in out]
    return out


def _takes(reach, other: Rule, sure: bool = False):
    """Packets ``other`` would (``sure``: surely) take from a later rule:
    its own match (any packet of it that got that far is taken by it or an
    earlier rule), for a jump only what does not come back (cached: every
    dead rule of a long chain asks about the rules above it)."""
    cache = reach.__dict__.setdefault("_ra_takes", {})
    key = (id(other), sure)
    hit = cache.get(key)
    if hit is None:
        if isinstance(other.action, (Jump, Dispatch)):
            hit = _taken(reach, other, sure)
        else:
            sets = reach.rule_sets(other)
            hit = sets.match_lower if sure else sets.match_upper
        cache[key] = hit
    return hit


def _sure_first(reach, candidates, packets, mine: str, cap: int = None, matched: bool = False,
                on_path: dict[int, int] | None = None):
    """:func:`_greedy` over what ``candidates`` surely take first, so a rule
    whose condition is undecidable (a set of unknown contents) is named only
    for packets no decided rule accounts for; then over what they may take.
    ``matched``: rules of other chains, which take only what reached them;
    those off the way in (``on_path``: the chains on it) only what surely
    reached them (their own chain may be entered undecidably)."""
    cap = COVER_CAP if cap is None else cap
    # What each candidate (surely) takes, whole: _greedy meets them with
    # what is left (within ``packets``), the same sets as meeting them
    # with ``packets`` first.
    sure, maybe = [], []
    takes = _taken if matched else _takes
    space = reach.space
    records = reach._records
    for other in candidates:
        rec = records.get(other)
        if rec is None:
            continue  # not on this path
        # Most earlier rules are told apart by a set held anyway, without
        # making (replaying) what a jump takes, nor building the
        # intersection: its match (what it takes from a later rule of its
        # chain), or its matched sets (a jump takes a part of them).
        jump = isinstance(other.action, (Jump, Dispatch))
        if not jump and not matched:
            if space.disjoint(rec.match_u, packets.node):
                continue
        elif not rec.meets(space, packets.node):
            continue
        whole = takes(reach, other)
        if jump and space.disjoint(whole.node, packets.node):
            continue
        maybe.append((other, whole))
        if on_path is not None and id(other.chain) not in on_path:
            sets = reach.rule_sets(other)
            low = sets.reaching_upper & sets.match_lower & _surely_entered(reach, other.chain)
        else:
            low = takes(reach, other, sure=True)
        if low.node == whole.node or not space.disjoint(low.node, packets.node):
            sure.append((other, low))
    cover, more, remaining = _greedy(sure, packets, mine, cap)
    if not remaining.is_empty() and not more:  # undecidable conditions last, and never unmodelled ones
        maybe = [(o, t) for o, t in maybe if o not in cover and not unmodelled(o)]
        rest, more, remaining = _greedy(maybe, remaining, mine, cap - len(cover))
        cover += rest
    return cover, more, remaining


def _greedy(options, packets, mine: str, cap: int = COVER_CAP):
    """Batfish's blocking lines: a single rule taking all of ``packets``
    where one does (another action than ``mine`` first, then the nearest),
    else greedily the largest overlap first (another action wins a tie);
    at most COVER_CAP. Returns (cover, how many more would be needed,
    what is left uncovered)."""
    cover: list[Rule] = []
    more = 0
    remaining = packets
    if remaining.is_empty():
        return cover, more, remaining
    # what each option takes of what is left, kept from round to round:
    # taking ``best`` off changes only the options that meet it
    live = [(o, t & remaining) for o, t in options]
    sizes: dict = {}  # node -> size (counting walks the whole BDD)

    def size(t) -> float:
        n = sizes.get(t.node)
        if n is None:
            n = sizes[t.node] = t.size()
        return n

    while not remaining.is_empty():
        live = [(o, t) for o, t in live if not t.is_empty()]
        if not live:
            break
        if len(cover) >= cap:  # named no more; the rest still counts for what is covered
            more = len(live)
            for _o, t in live:
                remaining = remaining - t
            break
        whole = [(o, t) for o, t in live if t == remaining]
        if whole:
            best = max(whole, key=lambda ot: (meant(ot[0]) != mine, ot[0].index))
        elif len(live) == 1:  # nothing to compare: not counted
            best = live[0]
        else:
            best = max(live, key=lambda ot: (size(ot[1]), meant(ot[0]) != mine))
        cover.append(best[0])
        taken = best[1]
        remaining = remaining - taken
        disjoint = remaining.space.disjoint
        live = [(o, t if disjoint(t.node, taken.node) else t - taken)
                for o, t in live if o is not best[0]]
    return cover, more, remaining


def _by_cover(rule: Rule, cover: list[Rule]) -> bool | None:
    """When every blocking rule gives a verdict itself, they tell: another
    verdict than the rule's among them means shadowed. None when a jump or
    a RETURN among them leaves it to the verdict sets."""
    mine = meant(rule)
    theirs = {meant(b) for b in cover}
    if mine not in _PAST or not theirs or not theirs <= set(_PAST):
        return None
    return theirs != {mine}


def _verdicts(reach, rule: Rule, packets) -> bool | None:
    """Do some of ``packets`` (the rule's, taken earlier) get another
    verdict than the rule's (True), surely none (False), or can the sets
    not tell (None: the rule gives no verdict, or bounds are uncertain)?"""
    mine = meant(rule)
    if mine not in ("accept", "drop"):
        return None
    # asked by inclusion tests: the dropped sets are big (every drop of
    # the path), the rule's packets small; nothing is made
    dropped, disjoint = reach.dropped, reach.space.disjoint
    # (what the rules decide: a packet routing drops later, before INPUT
    # or FORWARD, was given no other verdict by a rule)
    node = reach.rules_decide(packets.node)
    if mine == "accept":
        if disjoint(node, dropped.upper.node):
            return False
        return None if disjoint(node, dropped.lower.node) else True
    if disjoint(node, ~dropped.lower.node):  # all of them dropped all the same
        return False
    return None if disjoint(node, ~dropped.upper.node) else True


_WRITTEN = {"mark": ("mark",), "ctmark": ("ctmark",), "tos": ("ecn", "dscp"), "dscp": ("dscp",),
            "ecn": ("ecn",), "ttl": ("ttl",)}


def _fields(rule: Rule) -> list[str]:
    """Packet fields ``rule`` writes."""
    out: list[str] = []
    for a in rule.actions():
        if isinstance(a, Notrack):
            out.append("state")
        elif isinstance(a, SetField):
            out += _WRITTEN.get(a.field, (a.field,))
        elif isinstance(a, EcnStrip):
            out += ["flags", "ecn"]
        elif isinstance(a, Nat):
            out += ["dst", "dport"] if a.kind in ("dnat", "redirect") else ["src", "sport"]
    return out


def _forget(space, packets, fields: list[str]):
    names = []
    for f in dict.fromkeys(fields):
        spec = space.layout.fields.get(f)
        if spec is not None:
            names += [spec.var(b) for b in range(spec.width)]
    return space.wrap(space.exist(names, packets.node)) if names else packets


def _after_change(reach, rule: Rule, target, entry, story: Story) -> None:
    """The packets the rule was written for, as they really arrive (the
    changed fields forgotten), and the rules that decide them instead.
    Those packets are ``rest ∧ entry``, never built: with the written
    destination forgotten, that intersection is nearly as big as the entry
    itself (490k nodes for a kube-proxy firewall chain past its DNATs);
    each question about it asks ``rest`` first, the entry (``_entry``, a
    raw node) only for what meets ``rest``."""
    space = reach.space
    fields = [f for c in story.changers for f in _fields(c)]
    rest = _forget(space, target, fields).node

    def meets(node) -> bool:  # does ``node ∧ rest ∧ entry`` hold a packet?
        if space.disjoint(node, rest):
            return False
        return entry is None or not space.disjoint(node & rest, entry)

    if not meets(space.valid):
        return
    for other in _verdict_rules(reach):
        if len(story.deciders) >= 3:
            break
        if other is rule:
            continue
        taken = _matched(reach, other).node
        if meets(taken):
            story.deciders.append(other)
            rest = rest & ~taken
            if not meets(space.valid):
                break
    verdicts = {outcome(d) for d in story.deciders}
    if verdicts:
        story.shadowed = any(v != meant(rule) for v in verdicts) if meant(rule) in _PAST else None


def _matched(reach, rule: Rule):
    """``rule``'s matched packets (upper), wrapped once per analysis (each
    changed dead rule walks the verdict rules from the first)."""
    cache = reach.__dict__.setdefault("_ra_matched", {})
    hit = cache.get(id(rule))
    if hit is None:
        hit = cache[id(rule)] = reach.rule_sets(rule).matched_upper
    return hit


def _verdict_rules(reach) -> list[Rule]:
    """The rules of the walk that accept or drop, in order (once per analysis)."""
    cached = reach.__dict__.get("_ra_verdicts")
    if cached is None:
        cached = reach.__dict__["_ra_verdicts"] = [r for r in reach.rules() if outcome(r) in _PAST]
    return cached


def _written(rule: Rule, fields: list[str]) -> str:
    """The rule's conditions on ``fields`` (what the change voided), as written."""
    names = {"state": ("state", "ctstate"), "mark": ("mark",), "ctmark": ("ctmark",)}
    wanted = {n for f in fields for n in names.get(f, (f,))}
    found = [m.text for m in rule.matches if getattr(m, "field", None) in wanted and m.text]
    return " ".join(found)


def _change_words(changer: Rule) -> str:
    a = next((x for x in changer.actions()
              if isinstance(x, (Notrack, SetField, EcnStrip, Nat))), changer.action)
    if isinstance(a, Notrack):
        return "untracks its packets (NOTRACK)"
    if isinstance(a, SetField):
        return f"sets their {a.field}"
    if isinstance(a, Nat):
        return f"rewrites them ({a.kind.upper()})"
    return "changes them"


def _chain_text(rule: Rule) -> str:
    table = rule.chain.table.name if rule.chain and rule.chain.table else ""
    return f"{table} {_name(rule)}".strip()


def _blocked(ctx: Context):
    """Stories of dead rules earlier rules block or change, except those a
    structure check (RA504, RA505) already explains."""
    for dead in dead_rules(ctx):
        story = stories(ctx).get(id(dead.rule))
        if story is not None and story.kind in ("blocked", "changed") \
                and not explained_by_structure(dead.rule):
            yield story


def _is_shadowed(story: Story) -> bool:
    if story.shadowed is not None:
        return story.shadowed
    mine = meant(story.rule)
    decided = [meant(b) for b in story.cover + story.deciders if meant(b) in ("accept", "drop")]
    return any(v != mine for v in decided) if mine in _PAST else False


def _causes_first(story: Story) -> list[Rule]:
    """The story's changers, those that void a condition the rule writes
    first: the DNAT of the destination it tests is the cause, not the MARK
    set on the way."""
    return sorted(story.changers, key=lambda c: not _written(story.rule, _fields(c)))


def _changed_message(story: Story, verb: str) -> tuple[str, list[str], tuple]:
    rule = story.rule
    changers = _causes_first(story)
    changer = changers[0]
    voided = _written(rule, _fields(changer))
    head = f"rule can never match: {_chain_text(changer)} {_change_words(changer)} first"
    if voided:
        head += f", so `{voided}` never holds"
    details = [_listing(c, "changes them") for c in changers]
    if story.deciders:
        d = story.deciders[0]
        head += f"; {_name(d)} {outcome(d)}s them instead"
        details += [_listing(d, f"decides them ({outcome(d)})") for d in story.deciders]
        details.append("the conditions this rule adds (sources, ports …) have no effect on them")
    cause = ("changed", tuple(id(c) for c in story.changers), tuple(id(d) for d in story.deciders))
    return head, details, cause


def _would(rule: Rule) -> str:
    """What the rule would do, as a verb: ``drop``, ``drop (through chain
    DUMP)``, ``send to chain X``."""
    out, verdict = outcome(rule), meant(rule)
    if isinstance(rule.action, (Jump, Goto)):
        target = rule.action.target
        return f"{verdict} (through chain {target})" if verdict in _PAST else f"send to chain {target}"
    return verdict


def _orphan_lines(story: Story) -> list[str]:
    return [f"chain {c.name} is entered only by rules that never match: its {len(c.rules)} "
            f"rule(s) never run either" for c in story.orphaned]


def _before(story: Story) -> str:
    """`` before INPUT rule 13 (line 87) jumps to admin`` when the cover
    lies in the chain that calls the rule's chain."""
    site = story.site
    if site is None:
        return ""
    return f" before {_name(site)} {'goes' if isinstance(site.action, Goto) else 'jumps'} to " \
           f"{story.rule.chain.name}"


def _via(story: Story, rule: Rule) -> str:
    """`` via INPUT rule 1 (line 8)`` when ``rule`` takes the packets
    inside a chain that ``story.rule``'s chain jumps to."""
    jump = story.via.get(id(rule))
    return f", entered via {_name(jump)}" if jump is not None else ""


class ShadowedRule(Check):
    """Earlier rules take every packet this rule would match, and give
    some of them another verdict than the rule's."""

    code = "RA101"
    name = "shadowed-rule"
    summary = "Rule never matches: earlier rules take all its packets and decide some of them differently"
    rationale = (
        "The rule was written to do something to its packets, but earlier rules — one or "
        "several together — already take every one of them, and some get another verdict than "
        "this rule's: a DROP that never drops, an ACCEPT for a service that is in fact blocked. "
        "The category is decided by the verdicts the packets really get, not by the blocking "
        "rules' actions (a jump into the rule's own chain is no \"different action\"). The "
        "blocking rules named are a small cover, largest overlap first; where earlier rules "
        "change the packets instead (NOTRACK makes `--state NEW` false, a MARK, a NAT), the "
        "change and the rule that then decides them are named. Usually the rule must move "
        "above the blocking rules, or they must be narrowed.")
    bad = ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 10.0.0.0/8 -j ACCEPT\n"
           "-A INPUT -s 192.168.0.0/16 -j ACCEPT\n"
           "# expect: RA101\n-A INPUT -s 10.1.0.0/16 -j DROP\nCOMMIT\n")
    good = ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 10.1.0.0/16 -j DROP\n"
            "-A INPUT -s 10.0.0.0/8 -j ACCEPT\n-A INPUT -s 192.168.0.0/16 -j ACCEPT\nCOMMIT\n")
    severity = "error"

    def run(self, ctx: Context):
        for story in _blocked(ctx):
            if _is_shadowed(story):
                yield _dead_finding(self, story, shadowed=True)


class RedundantRule(Check):
    """Earlier rules take every packet this rule would match and give them
    the verdict this rule would."""

    code = "RA102"
    name = "redundant-rule"
    summary = "Rule never matches: earlier rules already take all its packets, with the same verdict"
    rationale = (
        "The rule is dead weight: earlier rules (together, not necessarily one) already take "
        "every packet it matches, and those packets get the verdict this rule would give. "
        "Removing it changes nothing today, but it misleads readers into thinking it "
        "matters, and an edit to the earlier rules may silently change its meaning.")
    bad = ("*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 20:30 -j ACCEPT\n"
           "# expect: RA102\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n")
    good = ("*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 20:30 -j ACCEPT\n"
            "-A INPUT -p tcp --dport 80 -j ACCEPT\nCOMMIT\n")
    severity = "warning"

    def run(self, ctx: Context):
        for story in _blocked(ctx):
            if not _is_shadowed(story):
                yield _dead_finding(self, story, shadowed=False)


def _dead_finding(check: Check, story: Story, shadowed: bool) -> Finding:
    rule = story.rule
    mine = meant(rule)
    if story.kind == "changed":
        head, details, cause = _changed_message(story, mine)
        related = [related_rule(c, "changes its packets first") for c in _causes_first(story)]
        related += [related_rule(d, f"decides them ({outcome(d)})") for d in story.deciders]
        details += _orphan_lines(story)
        return check.finding(head, rule=rule, related=related, details=details, cause=cause,
                             group_message="{count} rules can never match: " + head.split(": ", 1)[1])
    cover = story.cover
    if shadowed:  # the rules that decide otherwise tell the story: name them first
        cover = sorted(cover, key=lambda b: meant(b) == mine)
    extra = len(cover) - 2 + story.more
    names = ", ".join(_chain_text(b) if b.chain is not rule.chain else _name(b) for b in cover[:2]) \
        + (f" and {extra} more" if extra > 0 else "")
    differing = [b for b in cover if meant(b) != mine]
    if shadowed:
        other = next((meant(b) for b in differing if meant(b) in _PAST), None)
        if story.shadowed and mine in _PAST:  # the verdict sets say so
            other = "drop" if mine == "accept" else "accept"
        fate = f"{_PAST[other]} instead" if other else "decided otherwise"
        head = (f"rule can never match: the packets it would {_would(rule)} are taken first by "
                f"{names}{_before(story)}, and some are {fate}")
    else:
        head = f"rule can never match: {names} already {'take' if len(cover) > 1 else 'takes'} " \
               f"every packet it matches{_before(story)}" + (
                   f" ({_PAST[mine]} all the same)" if mine in _PAST else "")
    details = [_listing(b, f"({outcome(b)}{_via(story, b)})") for b in cover]
    if story.more:
        details.append(f"… and {story.more} more earlier rule(s) take the rest")
    details += _orphan_lines(story)
    related = [related_rule(b, f"takes its packets first ({outcome(b)}{_via(story, b)})") for b in cover]
    cause = ("blocked", id(rule.chain), tuple(id(b) for b in cover))
    group = head.replace("rule can never match", "{count} rules can never match").replace(
        "it would", "they would").replace("it matches", "they match")
    return check.finding(head, rule=rule, related=related, details=details, cause=cause,
                         group_message=group)


class UnmatchableRule(Check):
    """No packet reaching the rule's chain can satisfy its conditions."""

    code = "RA103"
    name = "unmatchable-rule"
    summary = "Rule never matches: its conditions contradict each other or its chain's callers"
    rationale = (
        "No earlier rule is to blame: the rule's own conditions exclude each other (a port on "
        "a protocol without ports, an IPv6 address in an IPv4-only table), or the chain it "
        "lives in is only ever entered by packets the rule cannot match (the jump into it says "
        "`-d 10.0.0.0/8`, the rule `-d 192.0.2.1`). The finding names the contradicting "
        "conditions and where they come from; rules of one chain that contradict the same "
        "caller condition are one finding. A condition the model cannot represent (IPv6 "
        "extension headers, `-m rt`) is never reported here: see RA004. It is dead code and "
        "usually a typo.")
    bad = ("*filter\n:INPUT ACCEPT [0:0]\n:web - [0:0]\n-A INPUT -p udp -j web\n"
           "# expect: RA103\n-A web -p tcp --dport 80 -j ACCEPT\nCOMMIT\n")
    good = ("*filter\n:INPUT ACCEPT [0:0]\n:web - [0:0]\n-A INPUT -p tcp -j web\n"
            "-A web -p tcp --dport 80 -j ACCEPT\nCOMMIT\n")
    severity = "warning"

    def run(self, ctx: Context):
        found = stories(ctx)
        for dead in dead_rules(ctx):
            story = found.get(id(dead.rule))
            if story is not None and story.kind == "untold":  # (RA101, RA102 or this check's)
                yield UntoldFinding("RA10x", "dead-rule", "warning", "a dead rule's finding, only counted",
                                    Where.of_rule(dead.rule), rule=dead.rule, origin=dead.rule.origin)
                continue
            if story is None or story.kind not in ("own", "callers") \
                    or explained_by_structure(dead.rule):
                continue
            spoofed = _reverse_path_story(ctx, dead.rule) \
                if story.kind == "callers" and not story.conflicts else None
            if spoofed:
                from .host import setting_related

                text, keys = spoofed
                related = [r for k in keys for r in setting_related(ctx.ruleset.host, k, "the reverse-path filter")]
                yield self.finding(
                    f"rule can never match: {text}", rule=dead.rule, severity="info", related=related,
                    cause=("rp_filter", id(dead.rule.chain)),
                    details=["the host's reverse-path filter already drops spoofed sources; the rule "
                             "is a second line of defence that only acts if rp_filter is turned off"],
                    group_message="{count} rules can never match: the host's reverse-path filter "
                                  "(rp_filter) drops every packet they could match before INPUT and FORWARD")
                continue
            yield self._finding(story)

    def _finding(self, story: Story) -> Finding:
        rule = story.rule
        chain = rule.chain.name if rule.chain else "?"
        if story.kind == "own":
            empty = next((empty_set(rule, m) for m in rule.matches if empty_set(rule, m)), None)
            if empty:  # a set with no elements here: it may be filled at run time
                head = f"rule can never match: set {empty} has no elements in this ruleset"
                return self.finding(
                    head, rule=rule, severity="info", cause=("empty", empty),
                    details=["elements added at run time (`nft add element`, a tool filling the "
                             "set) are not seen here; filled that way, the rule works",
                             *_orphan_lines(story)],
                    group_message=f"{{count}} rules can never match: set {empty} has no elements "
                                  "in this ruleset")
            if story.conflicts and story.conflicts[0][1]:
                a, b, _ = story.conflicts[0]
                head = f"rule can never match: its conditions `{a}` and `{b}` exclude each other"
            elif story.conflicts:
                head = (f"rule can never match: no packet of its table's family satisfies "
                        f"`{story.conflicts[0][0]}`")
            else:
                head = "rule can never match: its conditions together exclude every packet"
            cause = ("own", tuple(story.conflicts))
            return self.finding(head, rule=rule, cause=cause, details=_orphan_lines(story),
                                group_message="{count} rules can never match: " + head.split(": ", 1)[1]
                                .replace("its conditions", "their conditions"))
        pairs = [(a, b, c) for a, b, c in story.conflicts if c is not None]
        if pairs:
            callers = ", ".join(f"`{b}` ({_name(c)})" for _a, b, c in pairs[:2])
            more = f" and {len(pairs) - 2} more" if len(pairs) > 2 else ""
            head = (f"rule can never match: its `{pairs[0][0]}` contradicts how chain {chain} is "
                    f"entered: {callers}{more}")
            details = [_listing(c, f"enters {chain} with `{b}`; the rule has `{a}`")
                       for a, b, c in pairs]
            related = [related_rule(c, f"jumps to {chain} only with `{b}`") for _a, b, c in pairs]
            cause = ("callers", id(rule.chain), tuple((b, id(c)) for _a, b, c in pairs))
            group = (f"{{count}} rules of chain {chain} can never match: it is entered only with "
                     f"{callers}{more}, which their conditions exclude")
        elif story.conflicts:
            a = story.conflicts[0][0]
            where = rule.chain.hook or f"chain {chain}"
            head = f"rule can never match: `{a}` never holds for packets that enter {where}"
            details, related = [], []
            cause = ("entry", id(rule.chain), a)
            group = f"{{count}} rules can never match: `{a}` never holds for packets that enter {where}"
        else:
            head = (f"rule can never match: no packet that could match it gets to chain {chain} "
                    "(earlier chains decide them all, or its callers exclude them)")
            details, related, cause = [], [], ("unreached", id(rule.chain))
            group = f"{{count}} rules of chain {chain} can never match: " + head.split(": ", 1)[1]
            group = group.replace("could match it", "could match them")
        return self.finding(head, rule=rule, related=related, details=details + _orphan_lines(story),
                            cause=cause, group_message=group)


def _reverse_path_story(ctx: Context, rule) -> tuple[str, list[str]] | None:
    """Why a rule of a host snapshot never matches when the host's
    reverse-path filter (``rp_filter``) drops all its packets first (an
    anti-spoofing rule, ``-i wan0 -s 10.0.0.0/8 -j DROP``) and the sysctls
    that say so; None otherwise."""
    host = getattr(ctx.ruleset, "host", None)
    if host is None or rule.chain is None:
        return None
    table = rule.chain.table
    hooks = {rule.chain.hook} if rule.chain.hook else \
        {c.hook for c in (table.chains.values() if table is not None else ()) if c.hook} or {None}
    if not hooks <= {"input", "forward", "output"}:
        return None  # prerouting chains see spoofed packets before routing drops them
    from ..space.encode import encode_conjunction
    from ..space.routes import routing_sets
    from . import _sets as S

    sp = ctx.space
    cache = ctx.__dict__.setdefault("_rp_pass", {})
    for family in ctx.families():
        if family not in cache:
            routing = routing_sets(sp, host, family, ctx.ruleset)
            cache[family] = routing.rp_pass if routing is not None else None
        if cache[family] is None:
            continue
        own = encode_conjunction(rule.matches, sp)[1] & sp.family(family) & sp.valid
        if own != sp.false and own & cache[family] == sp.false:
            devs = sorted(d for d in host.interfaces if d != "lo" and host.rp_filter(d)
                          and own & S.iface(sp, "iif", d) != sp.false)
            on = f" on {', '.join(devs)}" if devs else ""
            modes = sorted({host.rp_filter(d) for d in devs}) or [1]
            return (f"the host's reverse-path filter (rp_filter={'/'.join(map(str, modes))}{on}) drops "
                    "every packet it could match at routing, before INPUT and FORWARD (their sources "
                    "route back by another interface)", sorted({host.rp_filter_key(d) for d in devs}))
    return None


class UnmodelledMatch(Check):
    """A rule uses a condition the packet model cannot represent, so its
    reachability is not analysed."""

    code = "RA004"
    name = "unmodelled-match"
    summary = "Not modelled: the rule's condition (IPv6 extension headers, -m rt) is outside the packet model"
    rationale = (
        "The analyzer's packets carry no IPv6 extension headers, so conditions on them "
        "(`-m rt --rt-type 0`, `-m hbh`, `-m dst`, `-m frag`, nft `rt`/`exthdr`) are false "
        "in the model although real packets can meet them (ufw's stock rule dropping type 0 "
        "routing headers is such a rule). Rather than report the rule as unmatchable, which "
        "would be a modelling artefact, this note says it was not analysed. Nothing to fix.")
    bad = ("*filter\n:INPUT DROP [0:0]\n"
           "# expect: RA004\n-A INPUT -m rt --rt-type 0 -j DROP\nCOMMIT\n")
    good = "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n"
    severity = "info"

    def run(self, ctx: Context):
        for rule in ctx.ruleset.rules():
            texts = unmodelled(rule)
            if texts and not rule.implicit:
                yield self.finding(f"not modelled: `{texts[0]}` (IPv6 extension headers); the rule's "
                                   "reachability is not analysed", rule=rule, cause=("unmodelled", texts[0]),
                                   group_message=f"not modelled: `{texts[0]}` in {{count}} rules "
                                                 "(IPv6 extension headers); not analysed")


class RemovableRule(Check):
    """Every packet the rule takes would get the same verdict from the rules
    below it (or the policy) if it were removed."""

    code = "RA104"
    name = "removable-rule"
    summary = "Rule changes no verdict: later rules or the policy treat its packets the same"
    rationale = (
        "The rule matches packets, but if it were deleted the same packets would fall to later "
        "rules or to the chain's policy and meet exactly the same verdict (a DROP rule above a "
        "DROP policy). It is harmless, but it is not doing what a reader may think: the "
        "firewall would behave identically without it. Keep it only as documentation.")
    bad = ("*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\n"
           "# expect: RA104\n-A INPUT -p tcp --dport 23 -j DROP\nCOMMIT\n")
    good = ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 23 -j DROP\nCOMMIT\n")
    severity = "info"
    options = {"lookahead": Option(8, "how many later rules of the chain to follow per rule; "
                                       "beyond that the rule is assumed to matter")}

    def run(self, ctx: Context):
        from ..space.encode import encode_conjunction

        verdicts: dict[int, tuple[bool, object]] = {}  # rule id -> (removable everywhere, fate)
        dead = {id(d.rule) for d in dead_rules(ctx)}
        for _hook, _family, reach in ctx.analyses():
            sp = reach.space
            for rule in reach.rules():
                rid = id(rule)
                if rid in dead or rule.implicit or verdicts.get(rid, (True,))[0] is False:
                    continue
                v = outcome(rule)
                chain = rule.chain
                if (v not in ("accept", "drop") or chain is None or chain.kind != "filter"
                        or any(not isinstance(e, Log) for e in rule.effects)):
                    verdicts[rid] = (False, None)
                    continue
                rec = reach._records[rule]
                if rec.matched_upper_empty(sp):
                    continue
                fate = self._fate(rule, v, rec, sp, encode_conjunction)
                prev = verdicts.get(rid)
                verdicts[rid] = (fate is not None, fate if prev is None else prev[1])
        rules = {id(r): r for r in ctx.ruleset.rules()}
        for rid, (ok, fate) in verdicts.items():
            if not ok or fate is None:
                continue
            rule = rules[rid]
            if fate == "policy" and not rule.matches:
                continue  # the policy written out as a final rule: documentation, not noise
            if fate == "policy":
                msg = (f"rule changes no verdict: without it, its packets fall to the "
                       f"{rule.chain.name} policy, which also {outcome(rule)}s them")
                related = [related_policy(rule.chain, f"also {outcome(rule)}s them")]
            else:
                msg = (f"rule changes no verdict: later rules ({_blocker_list(fate)}) "
                       f"{outcome(rule)} every packet it takes")
                related = [related_rule(r, f"also {outcome(rule)}s them") for r in fate]
            yield self.finding(msg, rule=rule, related=related)

    def _fate(self, rule: Rule, verdict: str, rec, sp, encode_conjunction):
        """``"policy"`` or the later same-verdict rules that would take all of
        the rule's matched packets (``rec``'s) if ``rule`` were gone; None
        when some packet's verdict would change (or the answer needs more
        than the lookahead)."""
        # What is left of them is the matched sets (raw; past kube-proxy's
        # DNATs ~700k nodes) within ``left``: the valid packets the later
        # rules have not taken yet, a small set. Each question meets the two
        # (the same answers); the big set is never made valid nor cut down.
        left = sp.valid
        chain = rule.chain
        takers: list[Rule] = []
        later = chain.rules[rule.index:]
        for n, other in enumerate(later):
            if n >= self.settings["lookahead"]:
                return None
            if isinstance(other.action, Log) and not other.effects:
                continue
            if (other.matches, other.action) == (rule.matches, rule.action):
                return None  # a duplicate: RA505 reports it
            lower, upper = encode_conjunction(other.matches, sp)
            if not rec.meets(sp, upper) or not rec.meets(sp, left & upper):  # (the first: no set made)
                continue
            if (not _same_fate(rule, other)
                    or any(not isinstance(e, Log) for e in other.effects)):
                return None
            takers.append(other)
            left = left & ~lower
            if not rec.meets(sp, left):
                return takers
        # A policy drops silently: a REJECT above it tells the peer at once.
        if (chain.is_base and (chain.policy or "accept") == verdict
                and not isinstance(rule.action, Reject)):
            return "policy"
        return None


def _same_fate(rule: Rule, other: Rule) -> bool:
    """Would ``other`` treat a packet exactly as ``rule`` does? A REJECT
    answers the peer (with its own error) where a DROP stays silent."""
    if isinstance(rule.action, Reject) or isinstance(other.action, Reject):
        return rule.action == other.action
    return outcome(rule) == outcome(other)
