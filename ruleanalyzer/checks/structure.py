"""RA5xx — the shape of the ruleset: jumps, loops, dead chains, dead tails,
duplicates, RETURN where it means the policy.

These need no packet sets: they read the chain graph and the rule lists.
They compare what was written, not only what the model keeps: where the
model keeps less than was written (statements it does not interpret —
``secmark``, ``tproxy``, ``numgen``, a set it cannot read, ``-m hbh`` vs
``-m rt``) two rules are duplicates only when their normalised text is
the same too, and a meter or a limit is a condition. Tables marked ``flags dormant`` do not run: they are left
out.
"""

from __future__ import annotations

import re

from ..fixes import Remove, Verdict
from ..model import (Accept, AnyOf, Dispatch, Drop, Goto, Log, OpaqueMatch, Queue, Reject, Return, Rule,
                     UnknownAction)
from .base import Check, Context, related_rule

#: Actions that end the chain for every packet that reaches them.
_ENDS_CHAIN = (Accept, Drop, Reject, Return, Goto, Queue)
#: Written statements that make a rule conditional although the model keeps
#: no match for them (a meter's per-key rate, a numgen/hash branch).
_CONDITIONAL_TEXT = re.compile(r"\b(?:meter|limit|quota|numgen|jhash|symhash|ct count)\b|-m (?:limit|hashlimit"
                               r"|recent|statistic|quota|connlimit)\b")
#: Parts of a rule's text that do not change what it does.
_NOISE_TEXT = re.compile(r'\s*(?:-m comment --comment (?:"(?:[^"\\]|\\.)*"|\S+)|comment "(?:[^"\\]|\\.)*"'
                         r"|counter packets \d+ bytes \d+|# handle \d+|^\[\d+:\d+\]\s*|^-[AI] \S+( \d+)?)")


def active_chains(ctx: Context):
    """Chains of tables that run (a ``flags dormant`` table does not)."""
    return (c for t in ctx.ruleset.tables if not t.dormant for c in t.chains.values())


def is_unconditional_end(rule: Rule) -> bool:
    """No conditions (none the model keeps, none written: a meter or a
    limit is one) and an action that ends the chain."""
    return (not rule.matches and isinstance(rule.action, _ENDS_CHAIN)
            and not _CONDITIONAL_TEXT.search(rule.text or ""))


def written(rule: Rule) -> str:
    """The rule's text normalised: whitespace, comments, counters, handles
    and the chain prefix removed."""
    return " ".join(_NOISE_TEXT.sub(" ", rule.text or "").split())


def first_dead_tail(rules: list[Rule]) -> tuple[Rule, list[Rule]] | None:
    """The first unconditional terminating rule followed by other rules,
    and the rules after it."""
    for i, rule in enumerate(rules[:-1]):
        if is_unconditional_end(rule):
            return rule, rules[i + 1:]
    return None


#: A NAT whose address or port comes from a map lookup: the model keeps
#: each element's target, not how the kernel picks within a range or prefix
#: (``snat ip prefix to ip saddr map { … }`` maps addresses one to one), and
#: NATs from two maps empty in a dump are the same model (no element).
_NAT_MAP = re.compile(r"\b(?:dnat|snat)\b.*\bmap\b")


def _uninterpreted(rule: Rule) -> bool:
    """Does the model keep less than was written (an opaque or unmodelled
    condition, a statement it does not interpret: a verdict, or a side
    effect such as ``meta mark set <key> map @m``)?"""
    return (any(isinstance(m, OpaqueMatch) or (isinstance(m, AnyOf) and not m.matches)
                for m in rule.matches)
            or isinstance(rule.action, UnknownAction)
            or any(isinstance(e, UnknownAction) for e in rule.effects)
            or (isinstance(rule.action, Dispatch) and _NAT_MAP.search(rule.text or "") is not None)
            or any(isinstance(e, Log) and e.text not in ("counter", "log", "") for e in rule.effects))


def _signature(rule: Rule) -> tuple:
    """What makes two rules the same: the model, and the written text where
    the model keeps less than was written."""
    return (rule.matches, rule.action, rule.effects, written(rule) if _uninterpreted(rule) else None)


def duplicate_of(rule: Rule) -> Rule | None:
    """An earlier rule of the same chain with the same matches, action,
    effects and written text."""
    chain = rule.chain
    if chain is None:
        return None
    return _chain_facts(chain)[0].get(id(rule))


#: Per-chain indexes (chain objects have slots: no attribute to cache on),
#: keyed by id with the chain kept alive so the id stays its own.
_CHAIN_CACHE: dict[int, tuple] = {}
_CHAIN_CACHE_SIZE = 512


def _chain_facts(chain) -> tuple[dict, int | None]:
    """``(id of each rule an earlier one copies → the first copy, index of
    the first unconditional end)``."""
    hit = _CHAIN_CACHE.get(id(chain))
    if hit is not None and hit[0] is chain and hit[1] == len(chain.rules):
        return hit[2], hit[3]
    tail = first_dead_tail(chain.rules)
    facts = (chain, len(chain.rules), {id(r): first for r, first in _copies(chain)},
             tail[0].index if tail else None)
    if len(_CHAIN_CACHE) >= _CHAIN_CACHE_SIZE:
        _CHAIN_CACHE.pop(next(iter(_CHAIN_CACHE)))
    _CHAIN_CACHE[id(chain)] = facts
    return facts[2], facts[3]


def _copies(chain) -> list[tuple[Rule, Rule]]:
    """``(rule, first copy)`` for every rule of ``chain`` whose signature an
    earlier rule has, in order. Equal signatures mean as many matches and
    the same kind of action, and equal models (matches, action, effects):
    rules alone in their (count, kind) bucket need nothing hashed (a
    kube-proxy endpoint chain: a MARK rule and a DNAT rule), and only those
    whose model's hash another shares need the signature (normalising the
    written text was most of its cost: 100k mixed rules, every one a
    different model)."""
    shapes: dict[tuple, int] = {}
    for r in chain.rules:
        shape = (len(r.matches), type(r.action))
        shapes[shape] = shapes.get(shape, 0) + 1
    models: dict[int, int] = {}
    hashed = []
    for r in chain.rules:
        if shapes[(len(r.matches), type(r.action))] < 2:
            continue
        try:
            h = hash((r.matches, r.action, r.effects))
        except TypeError:  # an unhashable match: never a duplicate
            continue
        models[h] = models.get(h, 0) + 1
        hashed.append((r, h))
    index: dict = {}
    pairs = []
    for r, h in hashed:
        if models[h] < 2:
            continue
        first = index.setdefault(_signature(r), r)
        if first is not r:
            pairs.append((r, first))
    return pairs


def _duplicates(chain) -> list[tuple[Rule, Rule]]:
    """``(rule, first copy)`` for every rule of ``chain`` (not implicit) that
    :func:`duplicate_of` an earlier one."""
    copies = _chain_facts(chain)[0]
    return [(r, copies[id(r)]) for r in chain.rules if id(r) in copies and not r.implicit]


def explained_by_structure(rule: Rule) -> bool:
    """Is ``rule`` dead for a reason RA504/RA505 already report?"""
    chain = rule.chain
    if chain is None:
        return False
    copies, end = _chain_facts(chain)
    return (end is not None and rule.index > end) or id(rule) in copies


class UndefinedJumpTarget(Check):
    """A jump, goto or verdict-map branch names a chain that does not exist."""

    code = "RA501"
    name = "undefined-jump-target"
    summary = "Jump or goto to a chain that is not defined in the table"
    rationale = (
        "The kernel refuses to load such a ruleset (nft: 'Could not process rule: No such "
        "file or directory'), so what is on disk is not what runs. Where a tool keeps the "
        "file anyway, every packet reaching the jump has an undefined fate.")
    bad = ("table inet f {\n  chain input {\n    type filter hook input priority 0; policy drop;\n"
           "    # expect: RA501\n    tcp dport 22 jump ssh_in\n  }\n}\n")
    good = ("table inet f {\n  chain ssh_in {\n    accept\n  }\n  chain input {\n"
            "    type filter hook input priority 0; policy drop;\n    tcp dport 22 jump ssh_in\n  }\n}\n")
    example_dialect = "nftables"
    severity = "error"

    def run(self, ctx: Context):
        for table in ctx.ruleset.tables:
            for chain in table.chains.values():
                for rule in chain.rules:
                    for target in rule.jump_targets():
                        if target not in table.chains:
                            yield self.finding(
                                f"jump to chain {target!r}, which table {table.family} {table.name} "
                                "does not define", rule=rule)


class UnusedChain(Check):
    """A user chain no rule jumps or goes to."""

    code = "RA503"
    name = "unused-chain"
    summary = "User-defined chain that no rule jumps to"
    rationale = (
        "Rules in a chain nothing jumps to never see a packet. Either a jump was forgotten "
        "(and the protection the chain was meant to give is missing) or the chain is left "
        "over and only adds confusion.")
    bad = ("*filter\n:INPUT DROP [0:0]\n# expect: RA503\n:ssh_in - [0:0]\n"
           "-A ssh_in -p tcp --dport 22 -j ACCEPT\nCOMMIT\n")
    good = ("*filter\n:INPUT DROP [0:0]\n:ssh_in - [0:0]\n-A INPUT -j ssh_in\n"
            "-A ssh_in -p tcp --dport 22 -j ACCEPT\nCOMMIT\n")
    severity = "info"

    def run(self, ctx: Context):
        for table in ctx.ruleset.tables:
            if table.dormant:
                continue
            used = {t for c in table.chains.values() for r in c.rules for t in r.jump_targets()}
            for chain in table.chains.values():
                if chain.is_base or chain.name in used:
                    continue
                if not chain.rules:
                    # Empty unused chains are what tools (firewalld, docker) pre-create.
                    continue
                yield self.finding(f"chain {chain.name!r} has {len(chain.rules)} rule(s) but "
                                   "nothing jumps to it", chain=chain)


class RuleAfterTerminal(Check):
    """Rules placed after an unconditional ACCEPT/DROP/RETURN in the same chain."""

    code = "RA504"
    name = "rule-after-terminal"
    summary = "Rules after an unconditional terminating rule can never run"
    rationale = (
        "A rule with no conditions and a terminating action (ACCEPT, DROP, REJECT, RETURN, "
        "goto) ends the chain for every packet. Everything after it is dead: typically rules "
        "appended with `-A` after a catch-all, which should have been inserted with `-I`.")
    bad = ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j DROP\n"
           "# expect: RA504\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n")
    good = ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\n"
            "-A INPUT -j DROP\nCOMMIT\n")
    severity = "warning"

    def run(self, ctx: Context):
        for chain in active_chains(ctx):
            tail = first_dead_tail(chain.rules)
            if tail is None:
                continue
            end, dead = tail
            dead = [r for r in dead if not r.implicit]
            if not dead:
                continue
            more = f" (and {len(dead) - 1} more after it)" if len(dead) > 1 else ""
            yield self.finding(
                f"rule can never run: rule {end.index} ({end.action.name}, no conditions) ends "
                f"the chain first{more}",
                rule=dead[0], related=[related_rule(end, "ends the chain for every packet")])


class DuplicateRule(Check):
    """The same rule written twice in one chain."""

    code = "RA505"
    name = "duplicate-rule"
    summary = "Exact duplicate of an earlier rule in the same chain"
    rationale = (
        "The second copy never matches anything the first did not already take. Duplicates "
        "usually come from scripts that append rules on every run; they grow the ruleset "
        "and slow every packet down.")
    bad = ("*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\n"
           "# expect: RA505\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n")
    good = ("*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\n"
            "-A INPUT -p udp --dport 22 -j ACCEPT\nCOMMIT\n")
    severity = "warning"

    def run(self, ctx: Context):
        for chain in active_chains(ctx):
            pairs = _duplicates(chain)
            if not pairs:
                continue
            # Copies in one chain are one cause (a script that ran twice, a
            # block pasted again): one finding with every place.
            runs = 1 + sum(1 for (a, fa), (b, fb) in zip(pairs, pairs[1:])
                           if (b.index, fb.index) != (a.index + 1, fa.index + 1))
            start = pairs[0][1]
            at = f"line {start.location.line}" if start.location.line else f"rule {start.index}"
            shape = (f"a block copied again, first copy from {at}" if runs == 1
                     else f"{runs} copied blocks or single rules")
            group = (f"{{count}} rules of chain {chain.name} repeat earlier rules ({shape}): every copy "
                     "after the first never matches")
            for rule, first in pairs:
                line = f", line {first.location.line}" if first.location.line else ""
                yield self.finding(
                    f"duplicate of rule {first.index}{line}", rule=rule,
                    related=[related_rule(first, "the first copy")], fix=Remove(rule),
                    cause=("copy", id(chain)), group_message=group)


class ReturnInBaseChain(Check):
    """RETURN in a base chain, where it means "apply the policy"."""

    code = "RA506"
    name = "return-in-base-chain"
    summary = "RETURN in a base chain applies the chain's policy"
    rationale = (
        "In a built-in/base chain there is no caller to return to: RETURN ends the chain "
        "with its policy. That is rarely what a reader expects (it looks like 'skip the rest'); "
        "with a DROP policy it drops. Write the verdict explicitly.")
    bad = ("*filter\n:INPUT DROP [0:0]\n# expect: RA506\n-A INPUT -s 10.0.0.0/8 -j RETURN\n"
           "-A INPUT -j ACCEPT\nCOMMIT\n")
    good = ("*filter\n:INPUT DROP [0:0]\n-A INPUT -s 10.0.0.0/8 -j DROP\n"
            "-A INPUT -j ACCEPT\nCOMMIT\n")
    severity = "warning"

    def run(self, ctx: Context):
        for chain in active_chains(ctx):
            if not chain.is_base or chain.kind == "nat":
                continue  # a nat chain's RETURN only skips NAT: it has no drop policy
            policy = (chain.policy or "accept").upper()
            for rule in chain.rules:
                if isinstance(rule.action, Return) and not rule.implicit:
                    yield self.finding(f"RETURN in base chain {chain.name}: its packets get the "
                                       f"chain policy ({policy})", rule=rule,
                                       fix=Verdict(rule, policy.lower()))

