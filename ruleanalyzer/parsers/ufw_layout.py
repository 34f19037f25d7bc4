"""ufw's chain layout: the tables ufw-init loads, rebuilt in its order.

ufw does not write one ruleset; ``/lib/ufw/ufw-init`` assembles it at start
with ``iptables-restore -n`` (no flush) from several pieces, per family:

1. the primary chains and the jumps of INPUT/OUTPUT/FORWARD into them
   (before-logging, before, after, after-logging, reject, track);
2. ``-j REJECT`` in ``ufw-reject-*`` for a REJECT default, ``--ctstate NEW``
   accepts in ``ufw-track-*`` for an ACCEPT default (what makes outgoing
   connections tracked as accepted);
3. ``ufw-logging-deny``/``-allow`` and ``ufw-skip-to-policy-*`` (``-j`` the
   default policy); what steps 2 and 3 make of a default policy is located
   at the line that set it (``/etc/default/ufw``, a ``ufw default``
   command, a status listing), else named as ufw-init's, of ufw's default;
4. ``before.rules``, then ``after.rules``, then ``user.rules`` (each a
   restore fragment; declaring a chain flushes it);
5. the jumps ``ufw-before-X -j ufw-user-X`` appended to the before chains;
6. the built-in chain policies (REJECT becomes DROP there).

:class:`TableBuilder` is that ``iptables-restore -n`` over fragments whose
rules keep the location they were written at; :func:`build_family` runs the
sequence above and gives the finished tables, which look as ``iptables-save``
shows them on a host running ufw.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources

from ..errors import RuleAnalyzerError
from ..model import (IPTABLES_BUILTIN_CHAINS, AnyOf, Chain, Location, OpaqueMatch, Rule, Table,
                     iptables_priority)
from .iptables import parse_rule

#: ufw's policy words in /etc/default/ufw and what they mean for the chains.
POLICIES = ("ACCEPT", "DROP", "REJECT")
#: ufw's log levels, ordered (``ufw logging LEVEL``).
LOGLEVELS = {"off": 0, "low": 100, "medium": 200, "high": 300, "full": 400}
DIRECTIONS = ("input", "output", "forward")
LIMIT_ARGS = "-m limit --limit 3/min --limit-burst 10"


@dataclass
class Defaults:
    """What ``/etc/default/ufw`` and ``ufw.conf`` say (ufw's own defaults
    unless a file or a ``ufw default`` command said otherwise)."""

    input: str = "DROP"
    output: str = "ACCEPT"
    forward: str = "DROP"
    loglevel: str = "low"
    ipv6: bool = True
    enabled: bool = True
    #: Which settings were written by the user (the rest are assumed).
    given: set = field(default_factory=set)
    #: Where a direction's default policy was written (a file's line, a
    #: ``ufw default`` command): the chains and rules ufw-init makes of it.
    where: dict = field(default_factory=dict)

    def policy(self, direction: str) -> str:
        return getattr(self, direction)

    def set_policy(self, direction: str, policy: str, location: Location | None) -> None:
        """``direction``'s default policy, said at ``location``."""
        setattr(self, direction, policy)
        self.given.add(direction)
        if location is not None:
            self.where[direction] = location

    def policy_location(self, direction: str) -> Location:
        """Where the rules ufw-init makes of ``direction``'s default policy
        come from: the line that set it, else ufw-init itself, said."""
        known = self.where.get(direction)
        if known is not None:
            return known
        return Location(f"<ufw-init, of the default {direction} policy {self.policy(direction)} "
                        "(ufw's default: not given)>")


def prefix(family: str) -> str:
    """``ufw`` for IPv4 chains, ``ufw6`` for IPv6 ones."""
    return "ufw" if family == "ip" else "ufw6"


@lru_cache(maxsize=None)
def builtin_text(name: str) -> str:
    """One of the shipped templates in ``ruleanalyzer/data/ufw``."""
    return resources.files("ruleanalyzer").joinpath("data", "ufw", name).read_text("utf-8")


@dataclass
class Line:
    """One line of a restore fragment and where it came from."""

    text: str
    location: Location
    implicit: bool = False
    #: Why the rules of this line are undecidable (an application profile
    #: the analyzer does not know): added to each as an OpaqueMatch.
    opaque: str = ""


def lines_of(text: str, name: str, *, implicit: bool = False) -> list[Line]:
    """A file's lines, each located at its own line number."""
    return [Line(t, Location(name, i, 1), implicit) for i, t in enumerate(text.split("\n"), 1)]


_RT_TYPE = re.compile(r"-m rt\b")

#: Rules of implicit lines (the built-in before/after.rules, ufw-init's own
#: chains and jumps, the logging and rate-limiting sections), parsed once:
#: every ufw host loads the same ones, and parsing them again for each input
#: was most of the reader's time. Key: everything the parsed rule depends on.
#: Bounded (the keys include the source name); cleared when full.
_IMPLICIT_RULES: dict[tuple, Rule] = {}
_IMPLICIT_RULES_MAX = 4096


class TableBuilder:
    """``iptables-restore -n`` over located fragments, for one family."""

    def __init__(self, family: str):
        self.family = family
        #: table name → chain name → rules (insertion ordered)
        self.tables: dict[str, dict[str, list[Rule]]] = {}
        self.policies: dict[tuple[str, str], tuple[str, Location | None]] = {}
        self.notes: list[tuple[str, Location]] = []
        #: (table, chain) → where it is declared (a file's line first):
        #: findings about a chain (unused, its policy) point there.
        self.declared: dict[tuple[str, str], Location] = {}

    def chains(self, table: str = "filter") -> dict[str, list[Rule]]:
        chains = self.tables.get(table)
        if chains is None:
            chains = self.tables[table] = {c: [] for c in IPTABLES_BUILTIN_CHAINS.get(table, ())}
        return chains

    def declare(self, chain: str, table: str = "filter", location: Location | None = None) -> None:
        """``:chain - [0:0]``: create, or flush when it exists (as restore -n does)."""
        self.chains(table)[chain] = []
        known = self.declared.get((table, chain))
        if location is not None and (known is None or not known.line and location.line):
            self.declared[(table, chain)] = location

    def restore(self, lines: list[Line]) -> None:
        """Apply a fragment: ``*table``, ``:chain``, ``-A``/``-I``/``-N``/``-F``, COMMIT."""
        table = None
        for line in lines:
            text = line.text.strip()
            if not text or text.startswith("#"):
                continue
            loc = line.location
            words = text.split()
            if text.startswith("*"):
                table = text[1:].strip()
                if table not in IPTABLES_BUILTIN_CHAINS:
                    raise self._error(f"unknown table {table!r}", line)
                self.chains(table)
                continue
            if table is None:
                raise self._error("rule outside a table (no *filter line before it)", line,
                                  hint="ufw rules files start with *filter")
            if text == "COMMIT":
                table = None
                continue
            if text.startswith(":"):
                name = words[0][1:]
                if name in IPTABLES_BUILTIN_CHAINS[table]:
                    if len(words) > 1 and words[1] in ("ACCEPT", "DROP"):
                        self.policies[(table, name)] = (words[1], loc)
                else:
                    self.declare(name, table, loc)
                continue
            command = words[0]
            if command in ("-N", "-F", "-X") and len(words) == 2:
                if command == "-N":
                    self.declare(words[1], table, loc)
                elif command == "-F":
                    self.chains(table)[words[1]] = []
                else:
                    self.chains(table).pop(words[1], None)
                continue
            if command in ("-A", "-I") and len(words) >= 2:
                self._add(table, words, line)
                continue
            raise self._error(f"ufw rules files hold -A/-I rules; cannot use {command!r} here", line)
        if table is not None:
            last = lines[-1].location if lines else Location("<ufw>")
            raise RuleAnalyzerError(f"table *{table} is not closed by COMMIT", last,
                                    hint="add a COMMIT line at the end of the table")

    def _add(self, table: str, words: list[str], line: Line) -> None:
        command, chain = words[0], words[1]
        chains = self.chains(table)
        if chain not in chains:
            shown = chain if len(chain) <= 60 else chain[:60] + "…"  # the hint is not clipped
            raise self._error(f"rule for chain {chain!r}, which is not declared", line,
                              hint=f"declare it with ':{shown} - [0:0]' first")
        text = line.text.strip()
        position = None
        spec = text
        if command == "-I":
            rest = words[2:]
            position = 1
            if rest and rest[0].isascii() and rest[0].isdigit():
                position = int(rest[0])
                rest = rest[1:]
            spec = " ".join(["-A", chain] + rest) if '"' not in text else _reinsert(text, chain)
        key = (spec, text, line.location, table, chain, self.family, line.opaque) if line.implicit else None
        known = _IMPLICIT_RULES.get(key) if key else None
        if known is not None:
            rule = replace(known)  # matches and actions are immutable: shared
        else:
            rule = self._parse(spec, text, line, table, chain)
            if key:
                if len(_IMPLICIT_RULES) >= _IMPLICIT_RULES_MAX:
                    _IMPLICIT_RULES.clear()
                _IMPLICIT_RULES[key] = replace(rule)
        if position is None:
            chains[chain].append(rule)
        elif not 1 <= position <= len(chains[chain]) + 1:
            # iptables-restore: "Index of insertion too big" / "Invalid rule number"
            raise self._error(f"cannot insert at position {position}: chain {chain} has "
                              f"{len(chains[chain])} rules", line)
        else:
            chains[chain].insert(position - 1, rule)

    def _parse(self, spec: str, text: str, line: Line, table: str, chain: str) -> Rule:
        loc = line.location
        rule = parse_rule(spec, name=loc.file, line=loc.line, table=table, chain=chain,
                          family=self.family)
        rule.location = Location(loc.file, loc.line, loc.column or rule.location.column)
        rule.text = text
        rule.implicit = line.implicit
        self._decide_routing_header(rule, text, loc)
        if line.opaque:
            rule.matches = rule.matches + (OpaqueMatch(line.opaque, text=line.opaque),)
        return rule

    def _decide_routing_header(self, rule: Rule, text: str, loc: Location) -> None:
        """``-m rt --rt-type 0`` (before6.rules) matches only packets with a
        type 0 routing header. The packets the analyzer is asked about carry
        no extension headers (the model has no field for them), so the
        match is false for each of them rather than unknown — otherwise every
        IPv6 verdict on a ufw host would hang on it."""
        if not _RT_TYPE.search(text):
            return
        matches = []
        for m in rule.matches:
            if isinstance(m, OpaqueMatch) and "extension header" in m.reason:
                m = AnyOf((), text=m.text + " (no routing header in the packet)")
            matches.append(m)
        rule.matches = tuple(matches)

    def _error(self, message: str, line: Line, hint: str | None = None) -> RuleAnalyzerError:
        return RuleAnalyzerError(message, line.location, source_line=line.text, hint=hint)

    def set_policy(self, chain: str, policy: str, location: Location | None) -> None:
        self.policies[("filter", chain)] = (policy, location)

    def build(self, source: str, policy_text: dict[str, str] | None = None) -> list[Table]:
        """The finished tables, base chains hooked at the kernel's priorities."""
        tables = []
        for table_name, chains in self.tables.items():
            table = Table(table_name, self.family, dialect="ufw", location=Location(source))
            for name, rules in chains.items():
                chain = Chain(name, location=self.declared.get((table_name, name)))
                if name in IPTABLES_BUILTIN_CHAINS.get(table_name, ()):
                    hook = name.lower()
                    chain.hook = hook
                    chain.priority = iptables_priority(table_name, hook)
                    chain.kind = ("nat" if table_name == "nat" else
                                  "route" if table_name == "mangle" else "filter")
                    policy, where = self.policies.get((table_name, name), ("ACCEPT", None))
                    chain.policy = policy.lower()
                    chain.policy_location = where
                    if policy_text and table_name == "filter":
                        chain.policy_text = policy_text.get(hook)
                table.add_chain(chain)
                for rule in rules:
                    chain.add(rule)
            tables.append(table)
        return tables


def _reinsert(text: str, chain: str) -> str:
    """``-I chain [n] rest`` with quotes kept → ``-A chain rest``."""
    m = re.match(r"\s*-I\s+\S+\s+(?:[0-9]+\s+)?(.*)$", text)
    return f"-A {chain} {m.group(1) if m else ''}"


# ---------------------------------------------------------------------------
# The sequence of ufw-init
# ---------------------------------------------------------------------------


def _synthetic(texts: list[str], where: Location) -> list[Line]:
    return [Line(t, where, implicit=True) for t in texts]


def primary_lines(family: str, defaults: Defaults, where: Location) -> list[Line]:
    """Steps 1–3 of ufw-init: primary chains, reject/track, skip-to-policy."""
    p = prefix(family)
    out = ["*filter"]
    kinds = ("before-logging", "before", "after", "after-logging", "reject", "track")
    for kind in kinds:
        for d in DIRECTIONS:
            out.append(f":{p}-{kind}-{d} - [0:0]")
    for d in DIRECTIONS:
        for kind in kinds:
            out.append(f"-A {d.upper()} -j {p}-{kind}-{d}")
    lines = _synthetic(out, where)
    # What ufw-init makes of the default policies is located where each was
    # set (or says that ufw-init made it of an assumed one).
    policy = {d: defaults.policy_location(d) for d in DIRECTIONS}
    for d in DIRECTIONS:
        if defaults.policy(d) == "REJECT":
            lines += _synthetic([f"-A {p}-reject-{d} -j REJECT"], policy[d])
    for d in DIRECTIONS:
        if defaults.policy(d) == "ACCEPT":
            lines += _synthetic([f"-A {p}-track-{d} -p tcp -m conntrack --ctstate NEW -j ACCEPT",
                                 f"-A {p}-track-{d} -p udp -m conntrack --ctstate NEW -j ACCEPT"], policy[d])
    lines += _synthetic([f":{p}-logging-deny - [0:0]", f":{p}-logging-allow - [0:0]"], where)
    for d in DIRECTIONS:
        lines += _synthetic([f":{p}-skip-to-policy-{d} - [0:0]"], policy[d])
    for d in DIRECTIONS:
        lines += _synthetic([f"-A {p}-skip-to-policy-{d} -j {defaults.policy(d)}"], policy[d])
    return lines + _synthetic(["COMMIT"], where)


def user_chain_lines(family: str, where: Location) -> list[Line]:
    """ufw-init declares the user chains before restoring user.rules."""
    p = prefix(family)
    names = ["user-input", "user-output", "user-forward", "user-logging-input",
             "user-logging-output", "user-logging-forward", "user-limit", "user-limit-accept"]
    return _synthetic(["*filter"] + [f":{p}-{n} - [0:0]" for n in names] + ["COMMIT"], where)


def hook_user_lines(family: str, where: Location) -> list[Line]:
    """Step 5: the user chains hang off the end of the before chains."""
    p = prefix(family)
    return _synthetic(["*filter"] + [f"-A {p}-before-{d} -j {p}-user-{d}" for d in DIRECTIONS]
                      + ["COMMIT"], where)


def logging_rules(family: str, defaults: Defaults) -> list[str]:
    """The ``### LOGGING ###`` section ufw writes into user.rules for the
    log level and default policies (``_get_logging_rules`` of ufw 0.36)."""
    p = prefix(family)
    level = LOGLEVELS.get(defaults.loglevel, LOGLEVELS["low"])
    if level == 0:
        return [f"-I {p}-user-logging-{d} -j RETURN" for d in DIRECTIONS]
    out = []
    largs = f" {LIMIT_ARGS}" if level < LOGLEVELS["high"] else ""
    for d in DIRECTIONS:
        if defaults.policy(d) in ("REJECT", "DROP"):
            out.append(f'-A {p}-after-logging-{d} -j LOG --log-prefix "[UFW BLOCK] "{largs}')
        elif level >= LOGLEVELS["medium"]:
            out.append(f'-A {p}-after-logging-{d} -j LOG --log-prefix "[UFW ALLOW] "{largs}')
    if level < LOGLEVELS["medium"]:
        out.append(f"-I {p}-logging-deny -m conntrack --ctstate INVALID -j RETURN{largs}")
    else:
        out.append(f'-A {p}-logging-deny -m conntrack --ctstate INVALID -j LOG '
                   f'--log-prefix "[UFW AUDIT INVALID] "{largs}')
    out.append(f'-A {p}-logging-deny -j LOG --log-prefix "[UFW BLOCK] "{largs}')
    out.append(f'-A {p}-logging-allow -j LOG --log-prefix "[UFW ALLOW] "{largs}')
    if level >= LOGLEVELS["medium"]:
        audit = "" if level >= LOGLEVELS["full"] else f" {LIMIT_ARGS}"
        if level < LOGLEVELS["high"]:
            audit = f" -m conntrack --ctstate NEW {LIMIT_ARGS}"
        for d in DIRECTIONS:
            out.append(f'-I {p}-before-logging-{d} -j LOG --log-prefix "[UFW AUDIT] "{audit}')
    return out


def user_rules_header(family: str) -> list[str]:
    """The chain declarations at the top of every user.rules ufw writes."""
    p = prefix(family)
    names = ["user-input", "user-output", "user-forward", "before-logging-input",
             "before-logging-output", "before-logging-forward", "user-logging-input",
             "user-logging-output", "user-logging-forward", "after-logging-input",
             "after-logging-output", "after-logging-forward", "logging-deny", "logging-allow",
             "user-limit", "user-limit-accept"]
    return ["*filter"] + [f":{p}-{n} - [0:0]" for n in names]


def rate_limiting_rules(family: str, defaults: Defaults) -> list[str]:
    """The ``### RATE LIMITING ###`` section: what a LIMIT rule jumps to."""
    p = prefix(family)
    out = []
    if defaults.loglevel != "off":
        out.append(f'-A {p}-user-limit -m limit --limit 3/minute -j LOG --log-prefix "[UFW LIMIT BLOCK] "')
    out.append(f"-A {p}-user-limit -j REJECT")
    out.append(f"-A {p}-user-limit-accept -j ACCEPT")
    return out


@dataclass
class Pieces:
    """The fragments of one family; ``None`` means "use the built-in"."""

    before: list[Line] | None = None
    after: list[Line] | None = None
    user: list[Line] | None = None


def build_family(family: str, defaults: Defaults, pieces: Pieces, source: str,
                 assumed: list[str]) -> list[Table]:
    """ufw-init's sequence for one family; built-ins stand in for missing
    pieces and are named in ``assumed``."""
    where = Location(f"<ufw built-in {'IPv4' if family == 'ip' else 'IPv6'} layout>")
    builder = TableBuilder(family)
    builder.restore(primary_lines(family, defaults, where))
    six = "6" if family == "ip6" else ""
    for kind in ("before", "after"):
        fragment = getattr(pieces, kind)
        if fragment is None:
            name = f"{kind}{six}.rules"
            fragment = lines_of(builtin_text(name), f"<ufw built-in {name}>", implicit=True)
            assumed.append(name)
        builder.restore(fragment)
    builder.restore(user_chain_lines(family, where))
    if pieces.user is not None:
        builder.restore(pieces.user)
    builder.restore(hook_user_lines(family, where))
    policy_text = {}
    for d in DIRECTIONS:
        ufw_policy = defaults.policy(d)
        builder.set_policy(d.upper(), "DROP" if ufw_policy == "REJECT" else ufw_policy, None)
        said = "set" if d in defaults.given else "assumed (ufw's default)"
        policy_text[d] = f"ufw default policy {ufw_policy} for {d} ({said})"
    return builder.build(source, policy_text)
