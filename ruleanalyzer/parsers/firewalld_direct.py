"""firewalld's ``direct.xml``: rules passed to iptables, as firewalld does.

With ``FirewallBackend=nftables`` firewalld still hands direct rules to
``iptables``/``ip6tables`` (iptables-nft on current distributions). What
the real firewalld 1.3.3 builds (tests/kernel/test_kernel_firewalld_direct.py):
a direct rule on a built-in chain goes into that chain itself (``table ip
filter``, ``chain INPUT``, hook input at priority ``filter`` = 0 — the
``<CHAIN>_direct`` chains are the iptables backend's), ordered by priority
and then by file order; a direct ``<chain>`` is a plain user chain. These
tables run on the hook before ``table inet firewalld`` (priority filter +
10): a direct DROP ends the packet, a direct ACCEPT ends only the iptables
chain and firewalld's zones still decide.
"""

from __future__ import annotations

import shlex

from ..errors import RuleAnalyzerError
from ..model import IPTABLES_BUILTIN_CHAINS, Location, Origin, Ruleset
from .firewalld_xml import Direct


def direct_ruleset(direct: Direct, diagnostics: list) -> Ruleset:
    from . import iptables

    ruleset = Ruleset()
    for ipv, family in (("ipv4", 4), ("ipv6", 6)):
        rules = [r for r in direct.rules if r.ipv == ipv]
        chains = [c for c in direct.chains if c[0] == ipv]
        if not rules and not chains:
            continue
        tables: dict[str, dict] = {}
        for _ipv, table, chain, _loc in chains:
            tables.setdefault(table, {"custom": [], "builtin": [], "rules": {}})["custom"].append(chain)
        for rule in rules:
            t = tables.setdefault(rule.table, {"custom": [], "builtin": [], "rules": {}})
            if rule.table not in IPTABLES_BUILTIN_CHAINS:
                raise RuleAnalyzerError(f"direct rule: unknown table {rule.table!r}", rule.location)
            if rule.chain in IPTABLES_BUILTIN_CHAINS[rule.table]:
                if rule.chain not in t["builtin"]:
                    t["builtin"].append(rule.chain)
                target = rule.chain
            else:
                if rule.chain not in t["custom"]:
                    raise RuleAnalyzerError(f"direct rule: chain {rule.chain!r} is neither built in nor "
                                            "declared with <chain>", rule.location)
                target = rule.chain
            t["rules"].setdefault(target, []).append(rule)
        lines, origins = [], []
        for table, t in tables.items():
            lines.append(f"*{table}")
            for chain in IPTABLES_BUILTIN_CHAINS.get(table, ()):
                lines.append(f":{chain} ACCEPT [0:0]")
            for chain in t["custom"]:
                lines.append(f":{chain} - [0:0]")
            for target, items in t["rules"].items():
                for rule in sorted(items, key=lambda r: r.priority):
                    try:
                        shlex.split(rule.args)
                    except ValueError as exc:
                        raise RuleAnalyzerError(f"direct rule arguments: {exc}", rule.location) from None
                    lines.append(f"-A {target} {rule.args}")
                    origins.append((Origin("firewalld", f"direct rule {ipv} {rule.table} {rule.chain} "
                                                        f"priority {rule.priority}: {rule.args}", rule.location),
                                    rule.location))
            lines.append("COMMIT")
        text = "\n".join(lines) + "\n"
        try:
            part = iptables.parse(text, f"direct.xml ({ipv})")
        except RuleAnalyzerError as exc:
            # The message names the generated line; point at the direct rule.
            line = exc.location.line if exc.location else 0
            rule_lines = [i for i, l in enumerate(lines, 1) if l.startswith("-A ")]
            if line in rule_lines:
                origin, where = origins[rule_lines.index(line)]
                if where is not None:
                    raise RuleAnalyzerError(f"direct rule: {exc.message}", where,
                                            hint="iptables would refuse this rule and firewalld fails to "
                                                 "start with it") from None
            raise
        if family == 6:
            for t in part.tables:
                t.family = "ip6"
        rules_in_order = [r for c in part.chains() for r in c.rules]
        by_line = {r.location.line: r for r in rules_in_order}
        rule_lines = [i for i, l in enumerate(lines, 1) if l.startswith("-A ")]
        for number, (origin, where) in zip(rule_lines, origins):
            rule = by_line.get(number)
            if rule is not None:
                rule.origin = origin
                rule.implicit = origin.generated
                if where is not None:
                    rule.location = where
        # The built-in chains' policies are iptables' stock ACCEPT, written
        # nowhere: a finding about one points at the direct rules' file.
        first = next((where for _, where in origins if where is not None), None)
        for t in part.tables:
            t.dialect = "firewalld"
            for chain in t.chains.values():
                if chain.hook and first is not None:
                    chain.location = chain.policy_location = Location(first.file, first.line, first.column)
                    chain.policy_text = "iptables' default policy of the table firewalld's direct rules are loaded into"
        ruleset.merge(part)
    for ipv, args, where in direct.passthroughs:
        diagnostics.append((f"direct passthrough ({ipv}) {args!r} is not modelled: answers that depend on it "
                            "may be wrong", where))
    return ruleset
