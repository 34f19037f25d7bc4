"""RA1xx — rules that never decide anything.

Exact, over packet sets (:mod:`ruleanalyzer.space.reach`): a rule is
unreachable when no packet both reaches it and matches it on any path
through the firewall (every hook and IP version its chain is visited on).
The union of all earlier rules counts, not one earlier rule; the earlier
rules whose matched packets overlap the rule's match are named as blockers.

Rules a structure check already explains — after an unconditional
terminating rule (RA504) or an exact duplicate of an earlier rule (RA505) —
are left to that check, so one mistake gives one finding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..model import Accept, Drop, Log, Reject, Rule
from .base import Check, Context, Option, related_policy, related_rule
from .structure import explained_by_structure


def outcome(rule: Rule) -> str:
    """What a rule does to the packets it takes, for comparing rules:
    ``accept``, ``drop``, ``jump X``, ``return`` …"""
    action = rule.action
    if isinstance(action, Accept):
        return "accept"
    if isinstance(action, (Drop, Reject)):
        return "drop"
    target = getattr(action, "target", None)
    return f"{action.name} {target}" if target else action.name


@dataclass
class _Dead:
    """One rule unreachable on every path it lies on, and what blocks it."""

    rule: Rule
    blockers: list[Rule] = field(default_factory=list)


def dead_rules(ctx: Context) -> list[_Dead]:
    """Rules no packet reaches and matches on any hook/family (cached)."""
    cached = ctx.__dict__.get("_dead_rules")
    if cached is not None:
        return cached
    seen: dict[int, _Dead] = {}
    alive: set[int] = set()
    order: list[int] = []
    for _hook, _family, reach in ctx.analyses():
        dead_here = {id(r): b for r, b in reach.unreachable_rules()}
        for rule in reach.rules():
            rid = id(rule)
            if rid not in dead_here:
                alive.add(rid)
                continue
            if rid not in seen:
                seen[rid] = _Dead(rule)
                order.append(rid)
            entry = seen[rid]
            entry.blockers += [b for b in dead_here[rid] if b not in entry.blockers]
    result = [seen[i] for i in order if i not in alive and not seen[i].rule.implicit]
    ctx.__dict__["_dead_rules"] = result
    return result


def _blocker_list(blockers: list[Rule], limit: int = 5) -> str:
    shown = ", ".join(f"{b.chain.name} rule {b.index}" + (f" (line {b.location.line})"
                      if b.location.line else "") for b in blockers[:limit])
    more = len(blockers) - limit
    return shown + (f" and {more} more" if more > 0 else "")


def _blocked(ctx: Context):
    """``(rule, blockers)`` of dead rules that earlier rules block, except
    those a structure check (RA504, RA505) already explains."""
    for dead in dead_rules(ctx):
        if dead.blockers and not explained_by_structure(dead.rule):
            yield dead.rule, dead.blockers


class ShadowedRule(Check):
    """An earlier rule with a different action takes every packet this rule
    would match."""

    code = "RA101"
    name = "shadowed-rule"
    summary = "Rule never matches: earlier rules with a different action take all its packets"
    rationale = (
        "The rule was written to do something to its packets, but earlier rules — one or "
        "several together — already decide every one of them, differently. What the rule "
        "says is not what the firewall does: a DROP that never drops, an ACCEPT for a "
        "service that is in fact blocked. The blocking rules are named; usually the rule "
        "must move above them or the earlier rules must be narrowed.")
    bad = ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 10.0.0.0/8 -j ACCEPT\n"
           "-A INPUT -s 192.168.0.0/16 -j ACCEPT\n"
           "# expect: RA101\n-A INPUT -s 10.1.0.0/16 -j DROP\nCOMMIT\n")
    good = ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 10.1.0.0/16 -j DROP\n"
            "-A INPUT -s 10.0.0.0/8 -j ACCEPT\n-A INPUT -s 192.168.0.0/16 -j ACCEPT\nCOMMIT\n")
    severity = "error"

    def run(self, ctx: Context):
        for rule, blockers in _blocked(ctx):
            differing = [b for b in blockers if outcome(b) != outcome(rule)]
            if not differing:
                continue
            yield self.finding(
                f"rule can never match: every packet it would {outcome(rule)} is already decided by "
                f"{_blocker_list(blockers)} ({len(differing)} with a different action)",
                rule=rule,
                related=[related_rule(b, f"takes its packets first ({outcome(b)})") for b in blockers])


class RedundantRule(Check):
    """Earlier rules doing the same thing take every packet this rule would match."""

    code = "RA102"
    name = "redundant-rule"
    summary = "Rule never matches: earlier rules with the same action already take all its packets"
    rationale = (
        "The rule is dead weight: earlier rules (together, not necessarily one) already give "
        "every packet it matches the same treatment. Removing it changes nothing today, but it "
        "misleads readers into thinking it matters, and an edit to the earlier rules may "
        "silently change its meaning.")
    bad = ("*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 20:30 -j ACCEPT\n"
           "# expect: RA102\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n")
    good = ("*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 20:30 -j ACCEPT\n"
            "-A INPUT -p tcp --dport 80 -j ACCEPT\nCOMMIT\n")
    severity = "warning"

    def run(self, ctx: Context):
        for rule, blockers in _blocked(ctx):
            if any(outcome(b) != outcome(rule) for b in blockers):
                continue
            yield self.finding(
                f"rule can never match: {_blocker_list(blockers)} already "
                f"{outcome(rule)} every packet it matches",
                rule=rule, related=[related_rule(b, "takes its packets first") for b in blockers])


class UnmatchableRule(Check):
    """No packet reaching the rule's chain can satisfy its conditions."""

    code = "RA103"
    name = "unmatchable-rule"
    summary = "Rule never matches: its conditions contradict each other or its chain's callers"
    rationale = (
        "No earlier rule is to blame: the rule's own conditions exclude each other (a port on "
        "a protocol without ports, an IPv6 address in an IPv4-only table), or the chain it "
        "lives in is only ever entered by packets the rule cannot match. It is dead code "
        "and usually a typo.")
    bad = ("*filter\n:INPUT ACCEPT [0:0]\n:web - [0:0]\n-A INPUT -p udp -j web\n"
           "# expect: RA103\n-A web -p tcp --dport 80 -j ACCEPT\nCOMMIT\n")
    good = ("*filter\n:INPUT ACCEPT [0:0]\n:web - [0:0]\n-A INPUT -p tcp -j web\n"
            "-A web -p tcp --dport 80 -j ACCEPT\nCOMMIT\n")
    severity = "warning"

    def run(self, ctx: Context):
        for dead in dead_rules(ctx):
            if dead.blockers or explained_by_structure(dead.rule):
                continue
            yield self.finding("rule can never match: no packet that enters its chain satisfies "
                               "all of its conditions", rule=dead.rule)


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
                flow = reach.rule_sets(rule).matched_upper.node
                if flow == sp.false:
                    continue
                fate = self._fate(rule, v, flow, sp, encode_conjunction)
                prev = verdicts.get(rid)
                verdicts[rid] = (fate is not None, fate if prev is None else prev[1])
        rules = {id(r): r for r in ctx.ruleset.rules()}
        for rid, (ok, fate) in verdicts.items():
            if not ok or fate is None:
                continue
            rule = rules[rid]
            if fate == "policy":
                msg = (f"rule changes no verdict: without it, its packets fall to the "
                       f"{rule.chain.name} policy, which also {outcome(rule)}s them")
                related = [related_policy(rule.chain, f"also {outcome(rule)}s them")]
            else:
                msg = (f"rule changes no verdict: later rules ({_blocker_list(fate)}) "
                       f"{outcome(rule)} every packet it takes")
                related = [related_rule(r, f"also {outcome(rule)}s them") for r in fate]
            yield self.finding(msg, rule=rule, related=related)

    def _fate(self, rule: Rule, verdict: str, flow, sp, encode_conjunction):
        """``"policy"`` or the later same-verdict rules that would take all of
        ``flow`` if ``rule`` were gone; None when some packet's verdict would
        change (or the answer needs more than the lookahead)."""
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
            if flow & upper == sp.false:
                continue
            if (not _same_fate(rule, other)
                    or any(not isinstance(e, Log) for e in other.effects)):
                return None
            takers.append(other)
            flow = flow & ~lower
            if flow == sp.false:
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
