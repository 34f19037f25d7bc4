"""RA9xx — suppressions: inline directives in rule comments and config
entries, each tracked as used or not (like ruff's ``unused-noqa``).

An inline directive lives in a rule's comment, wherever the dialect keeps
one (``-m comment --comment``, nft ``comment "…"``, a cloud rule's
description — all land in ``Rule.comment``)::

    ruleanalyzer: ignore[RA101,RA104] reason text
    ruleanalyzer: ignore            (every code, for this rule only)

It binds to that one rule: it silences findings located at the rule.
A config suppression names a file (a glob, matched against the path or
its tail), a rule — by ``line``, or by ``rule`` index with an optional
``chain`` — the codes, and a reason (see :mod:`ruleanalyzer.config`).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

from ..model import Rule, Ruleset
from .base import Check, Context, Finding, Where

DIRECTIVE = re.compile(r"ruleanalyzer\s*:\s*(?P<verb>[a-z-]+)(?:\[(?P<codes>[^\]]*)\])?\s*(?P<reason>.*)",
                       re.IGNORECASE)


@dataclass
class Suppression:
    """One directive: which codes (None = all) it silences where, and whether it did."""

    codes: frozenset[str] | None
    reason: str
    where: Where
    rule: Rule | None = None  # inline: bound to this rule
    entry: dict | None = None  # config: the matching criteria
    used: set[str] = field(default_factory=set)

    def covers(self, finding: Finding) -> bool:
        if self.codes is not None and finding.code not in self.codes:
            return False
        if self.rule is not None:
            return finding.rule is self.rule
        return _entry_matches(self.entry or {}, finding.where)

    def describe(self) -> str:
        codes = ",".join(sorted(self.codes)) if self.codes else "all codes"
        return f"ignore[{codes}]"


def _entry_matches(entry: dict, where: Where | None) -> bool:
    if where is None or not where.file:
        return False
    pattern = str(entry.get("file", "*"))
    path = where.file.replace("\\", "/")
    if not (fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path, "*/" + pattern.lstrip("/"))
            or path.endswith("/" + pattern) or path == pattern):
        return False
    if "line" in entry and int(entry["line"]) != where.line:
        return False
    if "rule" in entry and int(entry["rule"]) != (where.index or 0):
        return False
    if "chain" in entry and str(entry["chain"]) != (where.chain or ""):
        return False
    if "path" in entry and str(entry["path"]) != (where.path or ""):
        return False
    return True


def parse_inline(ruleset: Ruleset, known: set[str]) -> tuple[list[Suppression], list[Finding]]:
    """The inline directives of ``ruleset``'s rules, and RA902 findings for
    malformed ones (a directive naming no known code is never silently
    ignored)."""
    from . import registry, resolve

    out, bad = [], []
    for rule in ruleset.rules():
        if not rule.comment or "ruleanalyzer" not in rule.comment.lower():
            continue
        m = DIRECTIVE.search(rule.comment)
        where = Where.of_rule(rule)
        if m is None or m.group("verb").lower() not in ("ignore", "noqa"):
            bad.append(InvalidSuppression().finding(
                f"not a suppression directive: {rule.comment!r} "
                "(write 'ruleanalyzer: ignore[CODE] reason')", rule=rule))
            continue
        codes = None
        if m.group("codes") is not None:
            names = [c.strip() for c in m.group("codes").split(",") if c.strip()]
            by_name = {cls.name: code for code, cls in registry().items()}
            resolved = {by_name.get(c.lower()) or resolve(c) for c in names}
            unknown = sorted(c for c in resolved if c not in known)
            if unknown or not names:
                bad.append(InvalidSuppression().finding(
                    f"suppression names unknown code(s): {', '.join(unknown) or '(none)'}", rule=rule))
                resolved -= set(unknown)
                if not resolved:
                    continue
            codes = frozenset(resolved)
        out.append(Suppression(codes, m.group("reason").strip(), where, rule=rule))
    return out, bad


def from_config(entries: list[dict], config_file: str | None) -> list[Suppression]:
    """Suppressions from a config's ``suppress`` list."""
    from . import resolve

    out = []
    for n, entry in enumerate(entries):
        raw = entry.get("codes", entry.get("code"))
        codes = None
        if raw:
            raw = [raw] if isinstance(raw, str) else list(raw)
            codes = frozenset(resolve(c) for c in raw)
        where = Where(config_file, 0, 0, f"suppress[{n}]", text=str(entry))
        out.append(Suppression(codes, str(entry.get("reason", "")), where, entry=dict(entry)))
    return out


def apply(findings: list[Finding], suppressions: list[Suppression], selected: set[str]
          ) -> tuple[list[Finding], list[Finding], list[Finding]]:
    """``(kept, suppressed, unused)``: findings no directive covers, those one
    does, and RA901 findings for directives that silenced nothing. A
    directive is only judged unused for codes that actually ran."""
    kept, suppressed = [], []
    # Inline directives bind to their rule: looked up by it, so matching is
    # linear (all against all was quadratic: 4,000 rules written twice).
    by_rule: dict[int, list[Suppression]] = {}
    loose = []
    for s in suppressions:
        if s.rule is not None:
            by_rule.setdefault(id(s.rule), []).append(s)
        else:
            loose.append(s)
    for f in findings:
        near = by_rule.get(id(f.rule), ()) if f.rule is not None else ()
        hit = [s for s in (*near, *loose) if s.covers(f)]
        if hit and f.code not in UNSUPPRESSIBLE:
            for s in hit:
                s.used.add(f.code)
            suppressed.append(f)
        else:
            kept.append(f)
    unused = []
    check = UnusedSuppression()
    for s in suppressions:
        if s.used:
            continue
        judged = (s.codes or selected) & selected
        if not judged:
            continue
        msg = f"suppression {s.describe()} silences nothing"
        if s.rule is not None:
            unused.append(check.finding(msg, rule=s.rule, fix="remove the directive"))
        else:
            f = check.finding(msg + f" (config entry {s.where.path})", fix="remove the entry")
            f.where = s.where
            unused.append(f)
    return kept, suppressed, unused


class UnusedSuppression(Check):
    """A suppression that silences nothing."""

    code = "RA901"
    name = "unused-suppression"
    summary = "Suppression directive or config entry that silences no finding"
    rationale = (
        "A suppression outlives the problem it was written for: the rule was fixed or moved, "
        "and now the directive only hides whatever may appear there next. Remove it.")
    bad = ("*filter\n:INPUT DROP [0:0]\n# expect: RA901\n"
           "-A INPUT -p tcp --dport 80 -m comment --comment \"ruleanalyzer: ignore[RA102] legacy\" "
           "-j ACCEPT\nCOMMIT\n")
    good = ("*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 20:30 -j ACCEPT\n"
            "-A INPUT -p tcp --dport 22 -m comment --comment \"ruleanalyzer: ignore[RA102] kept for docs\" "
            "-j ACCEPT\nCOMMIT\n")
    severity = "warning"

    def run(self, ctx: Context):
        return ()  # produced by apply(), after every other check ran


class InvalidSuppression(Check):
    """A comment that starts like a directive but cannot be understood."""

    code = "RA902"
    name = "invalid-suppression"
    summary = "Malformed suppression directive or unknown code in it"
    rationale = (
        "A directive the analyzer cannot read suppresses nothing, while its author believes "
        "the finding is handled. Spell it `ruleanalyzer: ignore[CODE,...] reason`.")
    bad = ("*filter\n:INPUT DROP [0:0]\n# expect: RA902\n"
           "-A INPUT -p tcp --dport 80 -m comment --comment \"ruleanalyzer: ignore[RA999]\" "
           "-j ACCEPT\nCOMMIT\n")
    good = ("*filter\n:INPUT DROP [0:0]\n"
            "-A INPUT -p tcp --dport 80 -m comment --comment \"web server\" -j ACCEPT\nCOMMIT\n")
    severity = "warning"

    def run(self, ctx: Context):
        return ()  # produced by parse_inline()


#: Findings about the audit's own input cannot be suppressed by directives in it.
UNSUPPRESSIBLE = frozenset({"RA001", "RA901", "RA902"})
