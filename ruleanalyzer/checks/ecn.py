"""RA3xx — ECN traps: rules that treat a packet differently because of its
ECN bits (the IP ECN codepoint, TCP ECE/CWR, AccECN's AE).

The question "does the rule care about ECN?" is asked over sets: take the
packets a rule matches, clear their ECN bits (existential quantification
over those BDD variables), and compare. No flag mask is pattern-matched, so
nft ``tcp flags == syn``, ``tcp flags { syn }``, iptables ``-m ecn``,
``-m tos`` masks and DSCP/TOS byte matches are all judged the same way.
"""

from __future__ import annotations

from ..fixes import Advice, MaskedSyn, Remove
from ..model import ACK, AE, CWR, ECE, FIN, PSH, SYN, BitsMatch, EcnStrip, IntMatch
from ..space import witness
from . import _sets as S
from .base import Check, Context
from .reach import dead_rules, outcome

#: TCP flag bits that carry ECN signalling.
ECN_FLAG_BITS = (6, 7, 8)  # ECE, CWR, AE
#: Flag combinations (ignoring ECN bits) real traffic carries.
PLAUSIBLE_FLAGS = (SYN, SYN | ACK, ACK, PSH | ACK, FIN | ACK)


def _ecn_vars(sp) -> list[str]:
    flags = sp.spec("flags")
    return S.field_vars(sp, "ecn") + [flags.var(b) for b in ECN_FLAG_BITS]


def _no_ecn(sp):
    """Packets with no ECN bit set (not-ECT, no ECE/CWR/AE)."""
    node = sp.eq("ecn", 0)
    flags = sp.spec("flags")
    for b in ECN_FLAG_BITS:
        node &= ~sp.bdd.var(flags.var(b))
    return node


def _plausible(sp):
    """Non-TCP packets, or TCP whose non-ECN flags are a real combination."""
    tcp = sp.eq("proto", 6) & sp.eq("fragment", 0)
    low = sp.false
    for f in PLAUSIBLE_FLAGS:
        low |= sp.masked("flags", 0x3F, f)
    return ~tcp | low


def _ecn_blind(sp, node):
    """Every ECN variant of the packets of ``node`` whose ECN-free form is in it."""
    return sp.bdd.exist(_ecn_vars(sp), node & _no_ecn(sp))


def touches_ecn(match) -> bool:
    """Could ``match`` tell packets apart by their ECN bits? Only such rules
    can be an ECN trap; the rest are skipped without set work."""
    if isinstance(match, _NUMERIC):
        field = match.field
        if field == "ecn" or field == "tos":
            return True
        if field == "flags":
            mask = match.mask if isinstance(match, BitsMatch) else 0x1FF
            return bool(mask & (ECE | CWR | AE))
        return False
    for sub in getattr(match, "matches", ()):  # (plain loops: asked of every live rule's matches)
        if touches_ecn(sub):
            return True
    return False


_NUMERIC = (BitsMatch, IntMatch)


def _rule_touches_ecn(rule) -> bool:
    for m in rule.matches:
        if touches_ecn(m):
            return True
    return False


def _where_reached(ctx: Context, rule):
    """``(hook, reach)`` of the first analysis that visits ``rule``."""
    for hook, _family, reach in ctx.analyses():
        try:
            reach.rule_sets(rule)
        except KeyError:
            continue
        return hook, reach
    return None, None


def _live_rules(ctx: Context):
    dead = {id(d.rule) for d in dead_rules(ctx)}
    seen = set()
    for _hook, _family, reach in ctx.analyses():
        for rule in reach.rules():
            if id(rule) in dead or id(rule) in seen or rule.implicit:
                continue
            seen.add(id(rule))
            yield rule


def _ecn_rules(ctx: Context, verdict: str):
    """``(rule, hook, reach)`` for every live rule with ``verdict`` whose
    match can see ECN bits, with the analysis that reaches it."""
    return [(rule, hook, reach) for rule, hook, reach in _ecn_candidates(ctx) if outcome(rule) == verdict]


def _ecn_candidates(ctx: Context) -> list:
    """``(rule, hook, reach)`` for every live rule whose match can see ECN
    bits, found once per ruleset for the three checks that ask (each pass
    visits every rule of every analysis: 100k rules, several hooks)."""
    cached = ctx.__dict__.get("_ecn_candidates")
    if cached is None:
        cached = []
        # (no rule of the ruleset touches ECN, the common case: no pass over
        # every rule of every analysis)
        touching = any(_rule_touches_ecn(r) for r in ctx.ruleset.rules() if not r.implicit)
        for rule in _live_rules(ctx) if touching else ():
            if _rule_touches_ecn(rule):
                hook, reach = _where_reached(ctx, rule)
                if reach is not None:
                    cached.append((rule, hook, reach))
        ctx.__dict__["_ecn_candidates"] = cached
    return cached


class SynExactFlags(Check):
    """An accept rule for SYNs that compares the whole flags byte."""

    code = "RA301"
    name = "syn-exact-flags"
    summary = "Accept rule for SYNs compares the whole flags byte, so ECN-setup SYNs fall through"
    rationale = (
        "An ECN-capable client opens with SYN|ECE|CWR (RFC 3168), an AccECN client also sets "
        "AE. nft `tcp flags == syn` and `tcp flags { syn, syn|ack }` compare the whole byte "
        "and miss those SYNs; they fall to the policy and are dropped. Linux retries without "
        "ECN after a second, so connections open late and without ECN — other stacks may "
        "not retry at all. `tcp flags syn / fin,syn,rst,ack` (iptables `--syn`) ignores the "
        "ECN bits.")
    bad = ("table inet f {\n  chain input {\n    type filter hook input priority 0; policy drop;\n"
           "    ct state established,related accept\n"
           "    # expect: RA301\n    tcp flags == syn tcp dport 22 accept\n  }\n}\n")
    good = ("table inet f {\n  chain input {\n    type filter hook input priority 0; policy drop;\n"
            "    ct state established,related accept\n"
            "    tcp flags syn / fin,syn,rst,ack tcp dport 22 accept\n  }\n}\n")
    example_dialect = "nftables"
    severity = "warning"

    def run(self, ctx: Context):
        for rule, hook, reach in _ecn_rules(ctx, "accept"):
            sp = reach.space
            matched = reach.rule_sets(rule).matched_lower.node
            match_up = reach.rule_sets(rule).match_upper.node
            for plain, ecn_form, label in ((SYN, SYN | ECE | CWR, "ECN-setup SYN"),
                                           (SYN | ACK, SYN | ACK | ECE, "ECN-setup SYN-ACK")):
                took = matched & S.tcp_flags(sp, plain)
                if took == sp.false:
                    continue
                flag_vars = S.field_vars(sp, "flags")
                # Packets like the accepted ones but with the ECN flags, which the rule misses.
                variants = sp.bdd.exist(flag_vars, took) & S.tcp_flags(sp, ecn_form) & ~match_up
                if variants == sp.false:
                    continue
                w = witness(sp.wrap(variants), hook)
                result, by_rule, chain = S.decided_by(ctx, w)
                if result.verdict != "drop":
                    continue
                by = f"the {chain.name} policy" if by_rule is None else f"{chain.name} rule {by_rule.index}"
                yield self.finding(
                    f"accepts plain {'SYNs' if plain == SYN else 'SYN-ACKs'} only: the {label} "
                    f"({w.describe()}) misses this rule and is dropped by {by}",
                    rule=rule, witness=w, fix=MaskedSyn(rule))
                break


class EcnMarkedDropped(Check):
    """A drop rule that catches packets because of their ECN bits."""

    code = "RA302"
    name = "ecn-marked-dropped"
    summary = "Drop rule matches packets because of their ECN bits (ECE/CWR or an ECT/CE mark)"
    rationale = (
        "ECN marks are how routers signal congestion without dropping. A rule that drops "
        "packets carrying ECE/CWR (iptables `-m ecn`), a CE or ECT codepoint (`ip ecn ce`), "
        "or a TOS/DSCP byte compared with the ECN bits included, discards exactly the "
        "packets of ECN-capable connections: they stall or fall back, and the network looks "
        "lossy for no reason.")
    bad = ("*filter\n:INPUT ACCEPT [0:0]\n# expect: RA302\n"
           "-A INPUT -p tcp -m ecn --ecn-tcp-ece -j DROP\nCOMMIT\n")
    good = ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --tcp-flags ALL NONE -j DROP\nCOMMIT\n")
    severity = "warning"

    def run(self, ctx: Context):
        for rule, hook, reach in _ecn_rules(ctx, "drop"):
            sp = reach.space
            matched = reach.rule_sets(rule).matched_upper.node
            match_up = reach.rule_sets(rule).match_upper.node
            # Dropped packets whose ECN-free twin this rule would not drop.
            because = matched & ~_ecn_blind(sp, match_up) & _plausible(sp)
            if because == sp.false:
                continue
            w = witness(sp.wrap(because), hook)
            yield self.finding(
                f"drops packets because of their ECN bits (e.g. {w.describe()}); the same packet "
                "without ECN marks would not be dropped here", rule=rule, witness=w,
                fix=Advice("do not match ECN bits in drop rules (mask them out of TOS/flag comparisons)", {
                    "iptables": "drop the -m ecn condition; compare TOS with a mask that leaves ECN out "
                                "(-m tos --tos VALUE/0xfc) or use -m dscp",
                    "nftables": "drop the ip ecn / tcp flags ecn,cwr condition; compare ip dscp instead "
                                "of the whole TOS byte"}))


class EcnVariantNotAccepted(Check):
    """An accept rule that takes a packet but not its ECN-marked twin."""

    code = "RA303"
    name = "ecn-variant-not-accepted"
    summary = "Accept rule misses the ECN-marked form of packets it accepts"
    rationale = (
        "The rule accepts a packet only while its ECN bits are clear (a TOS byte compared "
        "whole, `ip ecn not-ect`, `tcp flags == ack`). Once the connection negotiates ECN, "
        "ECT/CE-marked data and ACKs with ECE miss the rule and are dropped: the connection "
        "opens and then stalls. (SYNs are RA301.)")
    bad = ("*filter\n:INPUT DROP [0:0]\n# expect: RA303\n"
           "-A INPUT -p tcp --dport 80 -m tos --tos 0x00/0xff -j ACCEPT\nCOMMIT\n")
    good = ("*filter\n:INPUT DROP [0:0]\n"
            "-A INPUT -p tcp --dport 80 -m tos --tos 0x00/0xfc -j ACCEPT\nCOMMIT\n")
    severity = "warning"

    def run(self, ctx: Context):
        for rule, hook, reach in _ecn_rules(ctx, "accept"):
            sp = reach.space
            matched = reach.rule_sets(rule).matched_lower.node
            match_up = reach.rule_sets(rule).match_upper.node
            no_syn = ~(sp.eq("proto", 6) & sp.masked("flags", SYN, SYN))
            missed = _ecn_blind(sp, matched) & ~match_up & ~_no_ecn(sp) & _plausible(sp) & no_syn
            missed &= sp.valid
            if missed == sp.false:
                continue
            w = witness(sp.wrap(missed), hook)
            result, by_rule, chain = S.decided_by(ctx, w)
            if result.verdict != "drop":
                continue
            by = f"the {chain.name} policy" if by_rule is None else f"{chain.name} rule {by_rule.index}"
            yield self.finding(
                f"accepts packets only while their ECN bits are clear: {w.describe()} misses "
                f"this rule and is dropped by {by}", rule=rule, witness=w,
                fix=Advice("leave the ECN bits out of the comparison (TOS mask 0xfc, tcp flags with a mask)", {
                    "iptables": "compare TOS with a mask that leaves ECN out (-m tos --tos VALUE/0xfc) or "
                                "use -m dscp; tcp flags with --tcp-flags, which ignores ECE/CWR",
                    "nftables": "match ip dscp instead of the TOS byte, and tcp flags with a mask "
                                "(tcp flags ack / fin,syn,rst,ack)"}))


class EcnStripped(Check):
    """The ECN target clears ECE/CWR."""

    code = "RA304"
    name = "ecn-stripped"
    summary = "ECN target strips ECE/CWR from TCP packets"
    rationale = (
        "`-j ECN --ecn-tcp-remove` was a workaround for 2000s-era middleboxes that dropped "
        "ECN SYNs. Today it silently disables ECN (and AccECN) for the matched connections: "
        "congestion is signalled by loss again. Remove it unless a broken path still needs it.")
    bad = ("*mangle\n:PREROUTING ACCEPT [0:0]\n# expect: RA304\n"
           "-A PREROUTING -p tcp -j ECN --ecn-tcp-remove\nCOMMIT\n")
    good = ("*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp -j TCPMSS --clamp-mss-to-pmtu\n"
            "COMMIT\n")
    severity = "warning"

    def run(self, ctx: Context):
        for rule in ctx.ruleset.rules():
            if any(isinstance(a, EcnStrip) for a in (rule.action, *rule.effects)):
                yield self.finding("strips ECE/CWR from matched TCP packets: ECN is disabled for "
                                   "these connections", rule=rule,
                                   fix=Remove(rule))
