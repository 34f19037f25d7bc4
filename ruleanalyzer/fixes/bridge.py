"""Fixes for the checks that still hand over words (the traps, RA2xx, and
exposure, RA4xx, which issue #13 reworks): built here from what their
findings carry — the rule or policy, the witness, the rule that drops it —
so they too come out in the input's own language. When those checks give
a :class:`~ruleanalyzer.fixes.Fix` themselves, their entry here goes."""

from __future__ import annotations

from . import Add, Advice, Narrow, Policy, Spec

_ND = ("nd-router-solicit", "nd-router-advert", "nd-neighbor-solicit", "nd-neighbor-advert")
_ESTABLISHED = Spec(states=("established", "related"))


def _family(finding) -> int | None:
    w = finding.witness
    return (6 if w.src.version == 6 else 4) if w is not None else None


def _chain_at(ruleset, where):
    """The chain a report location names."""
    if where is None:
        return None
    for table in ruleset.tables:
        if table.name == where.table and table.family == where.family and where.chain in table.chains:
            return table.chains[where.chain]
    return None


def _dropping_chain(finding, ruleset):
    """The chain whose rule or policy drops what the finding is about."""
    if finding.chain is not None:
        return finding.chain
    if finding.rule is not None and finding.rule.action.verdict == "drop":
        return finding.rule.chain
    return _chain_at(ruleset, finding.related[0].where) if finding.related else None


def _reply_dropped(finding, ruleset):
    hook = finding.witness.hook if finding.witness is not None else "input"
    chain = _chain_at(ruleset, finding.related[0].where) if finding.related else None
    return Add(_ESTABLISHED, chain, "output" if hook == "input" else hook)


def _established_in(finding, ruleset):
    return Add(_ESTABLISHED, _dropping_chain(finding, ruleset), "input")


def _stateless_reply(finding, ruleset):
    w = finding.witness  # the reply that is dropped: from the service port to an ephemeral one
    chain = _chain_at(ruleset, finding.related[0].where) if finding.related else None
    return Add(Spec(proto="tcp", sport=(w.sport, w.sport), dport=(1024, 65535)), chain, "output")


def _pmtu(finding, ruleset):
    family = _family(finding)
    hook = finding.witness.hook if finding.witness is not None else "input"
    icmp = ("frag-needed",) if family == 4 else ("packet-too-big",)
    return Add(Spec(icmp=icmp, family=family), _dropping_chain(finding, ruleset), hook)


def _ndp(finding, ruleset):
    hook = finding.witness.hook if finding.witness is not None else "input"
    return Add(Spec(icmp=_ND, family=6), _dropping_chain(finding, ruleset), hook)


def _loopback(finding, ruleset):
    return Add(Spec(iif="lo"), _dropping_chain(finding, ruleset), "input")


_IPV6 = Advice("give IPv6 the same policy and rules as IPv4", {
    "iptables": "give ip6tables the same rules and policy as iptables (an ip6tables-save file beside the "
                "iptables one); at the least ip6tables -P INPUT DROP after accepting lo, "
                "ESTABLISHED,RELATED and ICMPv6",
    "nftables": "write the table as `table inet NAME` so its rules filter IPv6 too, or add an ip6 table",
    "ufw": "set IPV6=yes in /etc/default/ufw, then ufw reload"})


def _exposed(finding, ruleset):
    if finding.rule is not None and finding.rule.action.verdict == "accept":
        return Narrow(finding.rule)
    hook = finding.witness.hook if finding.witness is not None else "input"
    return Policy(hook, "drop", chain=finding.chain)


def _allow_everything(finding, ruleset):
    hook = finding.witness.hook if finding.witness is not None else "input"
    chain = finding.chain or (finding.rule.chain if finding.rule is not None else None)
    return Policy(hook, "drop", chain=chain if chain is not None and chain.is_base else None)


BUILDERS = {
    "RA201": _reply_dropped, "RA202": _established_in, "RA203": _stateless_reply, "RA204": _pmtu,
    "RA205": _ndp, "RA206": _loopback, "RA207": lambda f, rs: _IPV6, "RA401": _exposed,
    "RA402": _allow_everything,
}


def derive(finding, ruleset):
    """The :class:`~ruleanalyzer.fixes.Fix` for a finding whose check gave
    words, when one can be built; else the words."""
    build = BUILDERS.get(finding.code)
    if build is None or not isinstance(finding.fix, str):
        return finding.fix
    try:
        return build(finding, ruleset) or finding.fix
    except (AttributeError, IndexError, TypeError):
        return finding.fix  # the finding lacks what the fix needs: keep the words
