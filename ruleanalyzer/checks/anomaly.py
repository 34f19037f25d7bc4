"""RA105, RA106 — Al-Shaer & Hamed's order-dependent anomalies between two
live rules of one chain: generalization (an exception carved out of a
later, broader rule) and correlation (a partial overlap the order decides).

Both are informational and opt-in (:attr:`~.base.Check.opt_in`): nearly
every real ruleset has exceptions and overlaps by design, so they run only
when selected by code, name or ``ALL``.

They read the shared per-hook reachability (``Context.analyses``) through
its public API only: a rule's *matched* set (what it decides, after earlier
rules took their share) and its own *match* set. Within a chain the matched
sets of deciding rules are disjoint (a packet stops at the first), so one
intersection per rule with the running union of what earlier rules of
another action decided tells whether the rule is in any pair at all (most
are not). Only then is a tree of unions over the earlier rules walked down
to the rules involved: the work grows with the overlapping pairs, not with
the square of the chain's length, and a per-chain budget (``max-pairs``)
bounds it. Correlated pairs are grouped so that one rule overlapping many
gives one finding.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from ..model import Chain, Rule
from ..space import witness
from .base import Check, Context, Option, related_rule
from .reach import outcome

#: Outcomes that decide a packet's fate in a chain; the pairs compared differ in it.
_DECISIONS = ("accept", "drop", "return")
_DEFAULT_MAX_PAIRS = 10_000
_RELATED = 20  # partner rules listed per finding (the message gives the count)
_PAST = {"accept": "accepted", "drop": "dropped", "return": "returned"}


@dataclass
class _Rule:
    rule: Rule
    decision: str
    sets: object  # RuleSets of one analysis
    decided: object  # raw node: what the rule decides (matched, upper bound)
    match: object  # raw node: the rule's own match (upper bound)


@dataclass
class _Pair:
    """Two overlapping rules of another action, neither containing the other."""

    earlier: _Rule
    later: _Rule
    hook: str

    def witness(self):
        """A packet of the overlap (surely in it where the bounds allow)."""
        sp = self.earlier.sets.matched_upper.space
        sure = self.earlier.sets.matched_lower.node & self.later.sets.match_lower.node
        overlap = sure if sure != sp.false else self.earlier.decided & self.later.match
        return witness(sp.wrap(overlap), self.hook)


@dataclass
class _Correlated:
    """One finding: a rule, the rules of another action its match overlaps
    (all earlier, or all later; nearest first), and a witness packet from
    the first overlap."""

    rule: Rule
    partners: list[Rule]
    wins: bool  # the rule is the earlier one: it decides the overlaps
    witness: object


@dataclass
class Anomalies:
    """What was found over every analysis of a context."""

    #: ``(exception, its nearest broader rule)``.
    generalizations: list[tuple[Rule, Rule]] = field(default_factory=list)
    correlations: list[_Correlated] = field(default_factory=list)
    #: Chains whose pair budget ran out (their remaining pairs are not reported).
    truncated: list[Chain] = field(default_factory=list)


def anomalies(ctx: Context, max_pairs: int = _DEFAULT_MAX_PAIRS) -> Anomalies:
    """Generalization and correlation pairs of ``ctx`` (cached per budget)."""
    cache = ctx.__dict__.setdefault("_anomalies", {})
    if max_pairs not in cache:
        cache[max_pairs] = _Finder(max_pairs).run(ctx)
    return cache[max_pairs]


class _Finder:
    def __init__(self, max_pairs: int):
        self.max_pairs = max_pairs
        self.out = Anomalies()
        self.seen: set[tuple[int, int]] = set()
        self.generalized: set[int] = set()  # rules already reported as an exception
        self.spent: dict[int, int] = {}  # chain id -> pairs examined
        self.stopped: set[int] = set()  # ids of chains whose budget ran out
        self.pairs: list[_Pair] = []  # correlations, grouped into findings at the end

    def run(self, ctx: Context) -> Anomalies:
        for hook, _family, reach in ctx.analyses():
            chains: dict[int, list[Rule]] = {}
            for rule in reach.rules():
                chains.setdefault(id(rule.chain), []).append(rule)
            for rules in chains.values():
                rules.sort(key=lambda r: r.index)
                self._chain(reach, hook, rules)
        self.out.correlations = _group(self.pairs)
        return self.out

    def _chain(self, reach, hook: str, rules: list[Rule]) -> None:
        chain = rules[0].chain
        if chain is None or chain.kind != "filter" or id(chain) in self.stopped:
            return
        deciding = [(rule, d) for rule in rules if (d := outcome(rule)) in _DECISIONS]
        if len({d for _r, d in deciding}) < 2:
            return  # one action only: no pair to compare (and no sets to fetch)
        live = [(rule, d) for rule, d in deciding if not reach.is_unreachable(rule)]
        sp = reach.space
        false = sp.false
        items: list[_Rule] = []
        for rule, decision in live:
            sets = reach.rule_sets(rule)
            items.append(_Rule(rule, decision, sets, sets.matched_upper.node,
                               sets.match_upper.node))
        union = {d: false for d in _DECISIONS}  # what earlier rules decided, per decision
        tree = None
        for j, later in enumerate(items):
            others = false
            for d, u in union.items():
                if d != later.decision and u != false and (later.match & u) != false:
                    others |= u
            union[later.decision] |= later.decided
            if others == false or not later.rule.matches or self._takes_all(later):
                continue  # no earlier rule of another action overlaps, or the chain's default
            if tree is None:
                tree = _UnionTree([x.decided for x in items], false)
            for i in tree.overlapping(j, later.match & others):
                if not self._pair(items[i], later, chain, hook, sp):
                    self.stopped.add(id(chain))
                    self.out.truncated.append(chain)
                    return

    @staticmethod
    def _takes_all(item: _Rule) -> bool:
        """Does the rule take every packet that reaches it? Then it is the
        chain's default written as a rule, not a broader rule."""
        return (item.sets.reaching_upper.node & ~item.match) == item.sets.reaching_upper.space.false

    def _pair(self, earlier: _Rule, later: _Rule, chain, hook: str, sp) -> bool:
        """Classify one overlapping pair; False when the chain's budget is spent."""
        key = (id(earlier.rule), id(later.rule))
        if key in self.seen or earlier.decision == later.decision:
            return True
        spent = self.spent.get(id(chain), 0)
        if spent >= self.max_pairs:
            return False
        self.spent[id(chain)] = spent + 1
        self.seen.add(key)
        if earlier.rule.implicit or later.rule.implicit:
            return True
        if (earlier.decided & ~later.match) == sp.false:
            if id(earlier.rule) not in self.generalized:  # the nearest broader rule only
                self.generalized.add(id(earlier.rule))
                self.out.generalizations.append((earlier.rule, later.rule))
            return True
        self.pairs.append(_Pair(earlier, later, hook))
        return True


def _group(pairs: list[_Pair]) -> list[_Correlated]:
    """Few findings covering every pair: repeatedly the rule in the most
    pairs not yet covered (greedy vertex cover; a rule as the earlier and as
    the later one of its pairs counts as two), so one rule overlapping many
    (a loopback ACCEPT before a block list, a service ACCEPT after it) gives
    one finding, not one per partner. Ties go to the rule written last: a
    lone pair is reported on its later rule, whose packets the earlier takes."""
    by_side: dict[tuple[int, bool], list[_Pair]] = {}
    order: dict[tuple[int, bool], tuple] = {}
    for p in pairs:
        for r, wins in ((p.earlier.rule, True), (p.later.rule, False)):
            by_side.setdefault((id(r), wins), []).append(p)
            order[(id(r), wins)] = (r.location.file or "", -r.location.line, -r.index, wins)
    left = {k: len(ps) for k, ps in by_side.items()}
    heap = [(-n, order[k], k) for k, n in left.items()]
    heapq.heapify(heap)
    covered: set[int] = set()
    out: list[_Correlated] = []
    while heap:
        n, key, k = heapq.heappop(heap)
        if -n != left[k]:  # stale: some of its pairs were covered since
            if left[k]:
                heapq.heappush(heap, (-left[k], key, k))
            continue
        mine = [p for p in by_side[k] if id(p) not in covered]
        if not mine:
            continue
        wins = k[1]
        for p in mine:
            covered.add(id(p))
            other = p.later.rule if wins else p.earlier.rule
            left[(id(other), not wins)] -= 1
        left[k] = 0
        if wins:  # its later partners, nearest first
            mine.sort(key=lambda p: p.later.rule.index)
            rule, partners = mine[0].earlier.rule, [p.later.rule for p in mine]
        else:
            mine.sort(key=lambda p: -p.earlier.rule.index)
            rule, partners = mine[0].later.rule, [p.earlier.rule for p in mine]
        out.append(_Correlated(rule, _unique(partners), wins, mine[0].witness()))
    return out


def _unique(rules: list[Rule]) -> list[Rule]:
    seen: set[int] = set()
    return [r for r in rules if not (id(r) in seen or seen.add(id(r)))]


class _UnionTree:
    """Unions of disjoint packet sets over ranges of a chain's rules, to find
    the earlier rules whose sets meet a query without testing each. A range's
    union is built the first time a query covers the whole range."""

    def __init__(self, nodes: list, false):
        self.nodes = nodes
        self.false = false
        self.size = 1
        while self.size < len(nodes):
            self.size *= 2
        self.unions: dict[int, object] = {}

    def _union(self, k: int, lo: int, hi: int):
        u = self.unions.get(k)
        if u is None:
            if hi - lo == 1:
                u = self.nodes[lo] if lo < len(self.nodes) else self.false
            else:
                mid = (lo + hi) // 2
                u = self._union(2 * k, lo, mid) | self._union(2 * k + 1, mid, hi)
            self.unions[k] = u
        return u

    def overlapping(self, end: int, query) -> list[int]:
        """Indexes ``< end`` whose sets meet ``query``, nearest first."""
        found: list[int] = []
        self._walk(1, 0, self.size, end, query, found)
        return found

    def _walk(self, k: int, lo: int, hi: int, end: int, query, found: list[int]):
        # A method, not a recursive closure: a closure referring to itself is
        # a reference cycle, and BDD nodes kept alive in one until the garbage
        # collector runs can outlive their manager (dd.cudd then complains).
        if lo >= end or query == self.false:
            return query
        if hi <= end:  # wholly before ``end``: one test for the whole range
            u = self._union(k, lo, hi)
            if (u & query) == self.false:
                return query
            if hi - lo == 1:
                found.append(lo)
                return query & ~u
        mid = (lo + hi) // 2
        query = self._walk(2 * k + 1, mid, hi, end, query, found)  # later rules first
        return self._walk(2 * k, lo, mid, end, query, found)


def _name(rule: Rule) -> str:
    """``INPUT rule 3 (rules.v4:12)``."""
    loc = rule.location
    where = (f"{loc.file}:{loc.line}" if loc.file and loc.line else
             f"line {loc.line}" if loc.line else loc.path or "")
    return f"{rule.chain.name} rule {rule.index}" + (f" ({where})" if where else "")


class _AnomalyCheck(Check):
    """What both anomaly checks share: the budget option and its report."""

    severity = "info"
    opt_in = True
    options = {"max-pairs": Option(
        _DEFAULT_MAX_PAIRS, "overlapping rule pairs examined per chain (over every hook and IP "
        "version it is analysed on); beyond it the chain's remaining pairs are not reported and "
        "the chain gets one finding saying so, so one huge chain cannot stall the audit")}

    def found(self, ctx: Context) -> Anomalies:
        return anomalies(ctx, self.settings["max-pairs"])

    def truncated(self, found: Anomalies):
        for chain in found.truncated:
            yield self.finding(
                f"chain {chain.name}: stopped after {self.settings['max-pairs']} overlapping rule "
                f"pairs (option max-pairs); later pairs are not reported", chain=chain)


class RuleException(_AnomalyCheck):
    """An earlier rule is an exception carved out of a later, broader rule
    with a different action."""

    code = "RA105"
    name = "rule-exception"
    summary = ("Rule is an exception to a later, broader rule with a different action "
               "(generalization)")
    rationale = (
        "Every packet the rule decides would also match a later rule of the same chain that "
        "does the opposite and matches more (Al-Shaer & Hamed's *generalization*): the rule "
        "is an exception carved out of the broader one, and only the order keeps it alive. "
        "That is usually intended (allow SSH from the admin network, drop SSH), so this is "
        "informational and runs only when selected explicitly; it lists the exceptions for a "
        "review, and warns that moving the rule below the broader one would silently void it. "
        "Only the nearest broader rule is named, and a rule that takes every packet reaching "
        "it (no conditions, or none left to test) is the chain's default, not a broader rule. "
        "Keep the exception right above the broader rule, or suppress the finding with a "
        "reason once reviewed.")
    bad = ("*filter\n:INPUT ACCEPT [0:0]\n"
           "# expect: RA105\n-A INPUT -s 192.0.2.0/24 -p tcp --dport 22 -j ACCEPT\n"
           "-A INPUT -p tcp --dport 22 -j DROP\nCOMMIT\n")
    good = ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 192.0.2.0/24 -p tcp --dport 22 -j ACCEPT\n"
            "-A INPUT -p tcp --dport 23 -j DROP\nCOMMIT\n")

    def run(self, ctx: Context):
        found = self.found(ctx)
        for exception, broader in found.generalizations:
            yield self.finding(
                f"exception to a broader rule: every packet this rule {outcome(exception)}s would "
                f"otherwise be {_PAST[outcome(broader)]} by {_name(broader)}, which matches more",
                rule=exception,
                related=[related_rule(broader, f"broader rule ({outcome(broader)})")])
        yield from self.truncated(found)


class CorrelatedRules(_AnomalyCheck):
    """Rules with different actions overlap, neither containing the other:
    their order decides the overlap."""

    code = "RA106"
    name = "correlated-rules"
    summary = ("Rule partly overlaps another rule of its chain with a different action, "
               "so their order decides the overlap (correlation)")
    rationale = (
        "Some packets match both this rule and another rule of the same chain that does the "
        "opposite, while each rule also matches packets the other does not (Al-Shaer & "
        "Hamed's *correlation*). The earlier rule wins the overlap; swapping the two would "
        "flip the verdict of exactly those packets, and nothing in either rule says which was "
        "meant. A rule overlapping many others (a loopback or ESTABLISHED accept before a "
        "block list, a service accept after one) gets one finding naming them all, nearest "
        "first; a lone pair is reported on its later rule. Each finding carries a witness "
        "packet from the nearest overlap. Informational and opt-in: make the intent explicit "
        "by narrowing one rule so they no longer overlap, or suppress the finding with a "
        "reason once reviewed.")
    bad = ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 192.0.2.0/24 -j ACCEPT\n"
           "# expect: RA106\n-A INPUT -p tcp --dport 22 -j DROP\nCOMMIT\n")
    good = ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 192.0.2.0/24 -p udp -j ACCEPT\n"
            "-A INPUT -p tcp --dport 22 -j DROP\nCOMMIT\n")

    def run(self, ctx: Context):
        found = self.found(ctx)
        for c in found.correlations:
            first, more, w = c.partners[0], len(c.partners) - 1, c.witness
            side = "later" if c.wins else "earlier"
            others = f" (and {more} more {side} rule{'s' if more > 1 else ''})" if more else ""
            winner, loser = (c.rule, first) if c.wins else (first, c.rule)
            who = "this rule" if c.wins else "the earlier rule"
            yield self.finding(
                f"overlaps {side} {_name(first)}{others} with a different action: packets such "
                f"as {w.describe()} match both and {who} {outcome(winner)}s them; in the "
                f"other order they would be {_PAST[outcome(loser)]}",
                rule=c.rule, witness=w,
                related=[related_rule(r, f"{'loses' if c.wins else 'wins'} part of the overlap "
                                         f"({outcome(r)})") for r in c.partners[:_RELATED]])
        yield from self.truncated(found)
