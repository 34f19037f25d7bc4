"""Dialect ``ufw``: status listings, user.rules, before/after rules,
ufw.conf / /etc/default/ufw, application profiles and command scripts.

Every input becomes the full layout ufw installs (see :mod:`.ufw_layout`):
the analyzer answers for the host, not for the fragment. What a fragment
lacks — the before/after rules behind a status listing, the defaults behind
a user.rules — is taken from ufw 0.36's defaults, recorded in
``ruleset.meta["assumed"]`` and said in an info diagnostic.

Files given together describe one host (``user.rules user6.rules
before.rules ufw.conf``): each is parsed alone (so it can be checked and
sniffed on its own) and remembers its *part*; :func:`combine` then rebuilds
one host from all the parts, the given files replacing the assumed ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import RuleAnalyzerError
from ..model import Diagnostic, Location, Ruleset, Table, Chain
from .ufw_apps import Profile, parse_profiles, sniff_profiles
from .ufw_commands import Command, parse_command
from .ufw_layout import Defaults, Pieces, build_family, lines_of
from .ufw_rules import UfwRule, user_rules
from .ufw_status import is_status, parse_status

__all__ = ["parse", "sniff", "combine"]

_UFW_LINE = re.compile(r"^\s*(?:\$\s*)?(?:sudo\s+(?:-\S+\s+)*)?(?:/usr/sbin/)?ufw(?:\s|$)", re.M)
_CONF_KEY = re.compile(r"^\s*(DEFAULT_(INPUT|OUTPUT|FORWARD|APPLICATION)_POLICY|ENABLED|LOGLEVEL|IPV6)\s*=", re.M)


@dataclass
class Part:
    """One ufw file: its kind (status, commands, user, before, after, conf,
    profiles), family for rules files, and its text."""

    kind: str
    name: str
    text: str
    family: str | None = None


def kind_of(text: str, name: str) -> Part | None:
    """What kind of ufw file ``text`` is, or None."""
    if is_status(text):
        return Part("status", name, text)
    if re.search(r"^\s*\*filter\s*$", text, re.M):
        chains = re.findall(r"^\s*:(ufw6?)-(user|before|after)-input\b", text, re.M)
        if chains:
            fam = "ip6" if chains[0][0] == "ufw6" else "ip"
            kinds = {c[1] for c in chains}
            kind = "user" if "user" in kinds else "before" if "before" in kinds else "after"
            return Part(kind, name, text, fam)
        return None
    if _CONF_KEY.search(text):
        return Part("conf", name, text)
    if sniff_profiles(text):
        return Part("profiles", name, text)
    if _UFW_LINE.search(text):
        return Part("commands", name, text)
    return None


#: ufw's rules files are iptables-restore text too: on an equal sniff score
#: the more specific reader wins.
REFINES = "iptables"


def sniff(text: str, name: str = "<input>") -> int:
    """How sure we are that ``text`` is a ufw file."""
    head = text[:20000]
    if re.search(r"^Status: (active|inactive)\s*$", head, re.M):
        return 95
    if re.search(r"^### tuple ###|^\s*:ufw6?-(user|before|after)-input\b", head, re.M):
        # ufw's own rules files declare only ufw chains; a whole iptables-save
        # of a ufw host declares the built-in chains too and is an iptables dump.
        return 60 if re.search(r"^:(INPUT|FORWARD|OUTPUT) ", head, re.M) else 100
    if _CONF_KEY.search(head) and re.search(r"DEFAULT_INPUT_POLICY|ENABLED=(yes|no)", head):
        return 90
    commands = len(_UFW_LINE.findall(head))
    if commands:
        others = [line for line in head.splitlines()
                  if line.strip() and not line.lstrip().startswith("#") and not _UFW_LINE.match(line)]
        return 85 if len(others) <= commands else 40
    if sniff_profiles(head):
        return 50
    return 0


def parse(text: str, name: str = "<input>") -> Ruleset:
    """Parse one ufw file into the full host layout it implies."""
    part = kind_of(text, name)
    if part is None:
        raise RuleAnalyzerError("not a ufw file (no status listing, rules file, ufw.conf, "
                                "application profile or ufw command)", Location(name, 1, 1),
                                hint="name the dialect with --dialect when sniffing picks wrong")
    ruleset = assemble([part])
    ruleset.meta["ufw_parts"] = [part]
    return ruleset


def combine(rulesets: list[Ruleset]) -> list[Ruleset]:
    """Rebuild the ufw files among ``rulesets`` as one host; others pass through."""
    parts = [p for r in rulesets for p in r.meta.get("ufw_parts", ())]
    if len(parts) < 2:
        return rulesets
    others = [r for r in rulesets if not r.meta.get("ufw_parts")]
    host = assemble(parts)
    host.meta["ufw_parts"] = parts
    host.meta["dialect"] = "ufw"
    return [host] + others


# ---------------------------------------------------------------------------
# Building one host
# ---------------------------------------------------------------------------


class _Host:
    """The state ufw keeps: defaults and the rule lists of both families."""

    def __init__(self):
        self.defaults = Defaults()
        self.rules: dict[str, list[UfwRule]] = {"ip": [], "ip6": []}
        self.enabled: bool | None = None
        self.diagnostics: list[Diagnostic] = []
        self.profiles: dict[str, Profile] = {}

    # -- commands ------------------------------------------------------------

    def apply(self, command: Command) -> None:
        kind = command.kind
        if kind in ("enable", "disable"):
            self.enabled = kind == "enable"
        elif kind == "reset":
            self.rules = {"ip": [], "ip6": []}
            self.defaults = Defaults()
            self.enabled = False
        elif kind == "default":
            direction = {"incoming": "input", "outgoing": "output", "routed": "forward"}[command.direction]
            self.defaults.set_policy(direction, {"allow": "ACCEPT", "deny": "DROP", "reject": "REJECT"}[command.policy],
                                     command.location)
        elif kind == "logging":
            self.defaults.loglevel = command.level
            self.defaults.given.add("loglevel")
        elif kind == "delete-number":
            combined = [(f, r) for f in ("ip", "ip6") for r in self.rules[f]]
            if command.number > len(combined):
                self.diagnostics.append(Diagnostic(
                    f"ufw would refuse this: there is no rule {command.number} "
                    f"(only {len(combined)})", command.location))
                return
            family, rule = combined[command.number - 1]
            self.rules[family].remove(rule)
        elif kind == "rule":
            if command.unknown_app:
                self.diagnostics.append(Diagnostic(
                    f"unknown application profile {command.unknown_app!r}: its ports are unknown, "
                    "verdicts that depend on it are 'unknown'", command.location))
            self._rule(command)

    def _rule(self, command: Command) -> None:
        position = command.position
        for offset, template in enumerate(command.rules):
            families = template.families(self.defaults.ipv6)
            if not families:
                raise RuleAnalyzerError("mixed IP versions for 'from' and 'to'", command.location)
            count_v4 = len(self.rules["ip"])
            for family in families:
                rule = template.for_family(family)
                rules = self.rules[family]
                same = [i for i, r in enumerate(rules) if r.key() == rule.key()]
                if command.delete:
                    for i in reversed(same):
                        del rules[i]
                    continue
                if same:
                    # ufw keeps one rule per tuple: a new action updates it in place
                    rules[same[0]] = rule
                    continue
                if position == 0:
                    rules.append(rule)
                elif position == -1:
                    rules.insert(offset, rule)
                elif family == "ip":
                    rules.insert(min(position - 1 + offset, len(rules)), rule)
                elif position > count_v4:
                    rules.insert(min(position - count_v4 - 1 + offset, len(rules)), rule)
                else:
                    # the v4 rule the user pointed at: put the v6 twin before its own twin
                    target = self.rules["ip"][position + offset] if position + offset < len(self.rules["ip"]) else None
                    twin = None
                    if target is not None:
                        key = target.for_family("ip6").key()
                        twin = next((i for i, r in enumerate(rules) if r.key() == key), None)
                    rules.insert(twin if twin is not None else len(rules), rule)

    # -- the finished host ----------------------------------------------------

    def status_rules(self, rules: list[UfwRule]) -> None:
        for rule in rules:
            family = "ip6" if rule.v6 else "ip"
            self.rules[family].append(rule.for_family(family))


def _conf(text: str, name: str, defaults: Defaults) -> bool | None:
    """Read ufw.conf / /etc/default/ufw settings; returns ENABLED if said."""
    enabled = None
    for lineno, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key, value = key.strip(), value.strip().strip("\"'")
        if key.startswith("DEFAULT_") and key.endswith("_POLICY") and key != "DEFAULT_APPLICATION_POLICY":
            direction = key[len("DEFAULT_"):-len("_POLICY")].lower()
            if direction not in ("input", "output", "forward"):
                continue
            if value.upper() not in ("ACCEPT", "DROP", "REJECT"):
                raise RuleAnalyzerError(f"unknown policy {value!r}", Location(name, lineno, raw.find("=") + 2),
                                        source_line=raw, hint="ACCEPT, DROP or REJECT")
            defaults.set_policy(direction, value.upper(), Location(name, lineno, 1))
        elif key == "LOGLEVEL":
            defaults.loglevel = value.lower() or "low"
            defaults.given.add("loglevel")
        elif key == "IPV6":
            defaults.ipv6 = value.lower() == "yes"
        elif key == "ENABLED":
            enabled = value.lower() == "yes"
    return enabled


def _commands(part: Part, host: _Host) -> None:
    for lineno, raw in enumerate(part.text.split("\n"), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not _UFW_LINE.match(raw):
            host.diagnostics.append(Diagnostic("not a ufw command; skipped", Location(part.name, lineno, 1)))
            continue
        host.apply(parse_command(raw, part.name, lineno, host.profiles))


def assemble(parts: list[Part]) -> Ruleset:
    """One host from its ufw parts (each given at most once per kind/family)."""
    host = _Host()
    ruleset = Ruleset(sources=[p.name for p in parts])
    for part in parts:
        if part.kind == "profiles":
            host.profiles.update(parse_profiles(part.text, part.name))
    pieces = {"ip": Pieces(), "ip6": Pieces()}
    generated = False
    conf_enabled = None
    for part in parts:
        if part.kind == "conf":
            said = _conf(part.text, part.name, host.defaults)
            conf_enabled = said if said is not None else conf_enabled
    for part in parts:
        if part.kind in ("user", "before", "after"):
            setattr(pieces[part.family], part.kind, lines_of(part.text, part.name))
        elif part.kind == "status":
            status = parse_status(part.text, part.name, host.profiles)
            if not status.active:
                host.enabled = False
            for key in status.defaults.given:
                setattr(host.defaults, key, getattr(status.defaults, key))
            host.defaults.given |= status.defaults.given
            host.defaults.where.update(status.defaults.where)
            for app, loc in status.unknown_apps:
                host.diagnostics.append(Diagnostic(
                    f"unknown application profile {app!r}: its ports are unknown, verdicts that "
                    "depend on it are 'unknown' (give its profile file alongside)", loc))
            host.status_rules(status.rules)
            generated = True
        elif part.kind == "commands":
            _commands(part, host)
            generated = True
    if host.enabled is None and conf_enabled is not None:
        host.enabled = conf_enabled
    source = parts[0].name
    ruleset.diagnostics.extend(host.diagnostics)
    if host.enabled is False:
        return _inactive(ruleset, source)
    assumed: list[str] = []
    families = ["ip", "ip6"] if host.defaults.ipv6 else ["ip"]
    where = Location(source)
    for family in families:
        piece = pieces[family]
        if generated:
            if piece.user is not None:
                raise RuleAnalyzerError("both a user rules file and ufw commands/status describe the rules",
                                        Location(source), hint="give one of them")
            piece.user = user_rules(host.rules[family], family, host.defaults, where)
        elif piece.user is None:
            assumed.append("user6.rules (no IPv6 rules)" if family == "ip6" else "user.rules (no rules)")
        for table in build_family(family, host.defaults, piece, source, assumed):
            ruleset.add_table(table)
    for direction in ("input", "output", "forward"):
        if direction not in host.defaults.given:
            assumed.append(f"DEFAULT_{direction.upper()}_POLICY={host.defaults.policy(direction)}")
    if host.enabled is None and any(p.kind == "commands" for p in parts):
        assumed.append("ufw enabled")
    ruleset.meta["assumed"] = assumed
    if assumed:
        ruleset.diagnostics.append(Diagnostic(
            "ufw built-ins assumed (ufw 0.36 defaults, not given): " + ", ".join(assumed),
            Location(source, 1, 1), level="info"))
    return ruleset


def _inactive(ruleset: Ruleset, source: str) -> Ruleset:
    """ufw is off: nothing filters, every packet passes."""
    for family in ("ip", "ip6"):
        table = Table("filter", family, dialect="ufw", location=Location(source))
        for hook in ("input", "forward", "output"):
            table.add_chain(Chain(hook.upper(), hook=hook, priority=0, policy="accept",
                                  policy_text="ufw is inactive: no rules are loaded"))
        ruleset.add_table(table)
    ruleset.meta["assumed"] = []
    ruleset.meta["ufw_inactive"] = True
    ruleset.diagnostics.append(Diagnostic("ufw is inactive: it filters nothing, every packet passes",
                                          Location(source, 1, 1), level="warning"))
    return ruleset
