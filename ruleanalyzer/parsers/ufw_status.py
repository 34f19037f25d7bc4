"""``ufw status`` / ``status verbose`` / ``status numbered`` → rule tuples.

The listing prints each rule as ``To  Action  From`` (``%-26s %-12s%-26s``),
an Action of ``ALLOW|DENY|REJECT|LIMIT`` with ``IN``/``OUT``/``FWD``, then
``(log)``/``(log-all)``/``(out)`` and ``# comment``. A cell is ``[ADDRESS]
[PORTS[/PROTO] | APP] [(APP)] [(v6)] [on IFACE]`` or ``Anywhere``. All IPv4
rules are listed before the IPv6 ones and each chain keeps its order, so
the rows rebuild both user tables in order. Route rules show the incoming
interface under From, other rules show it under To.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import RuleAnalyzerError
from ..model import Location
from .ufw_apps import Profile, find_profile
from .ufw_layout import Defaults
from .ufw_rules import UfwRule, normalize_address
from .ufw_syntax import Row, parse_status_syntax

_ON = re.compile(r"\s+on\s+(\S+)$")
_PORTS = re.compile(r"^(\d+(?::\d+)?(?:,\d+(?::\d+)?)*)(?:/(\w+))?$")
_POLICY = {"deny": "DROP", "allow": "ACCEPT", "reject": "REJECT", "disabled": "DROP"}


@dataclass
class Status:
    active: bool = True
    defaults: Defaults = field(default_factory=Defaults)
    rules: list[UfwRule] = field(default_factory=list)
    unknown_apps: list[tuple[str, Location]] = field(default_factory=list)
    verbose: bool = False


def is_status(text: str) -> bool:
    return bool(re.search(r"^Status: (active|inactive)\s*$", text, re.M))


def parse_status(text: str, name: str, profiles: dict[str, Profile] | None = None) -> Status:
    syntax = parse_status_syntax(text, name)
    lines = text.split("\n")
    status = Status(active=syntax.active)
    if syntax.logging is not None:
        value = syntax.logging.strip()
        m = re.match(r"on \((\w+)\)", value)
        status.defaults.loglevel = m.group(1) if m else ("off" if value.startswith("off") else "low")
        status.defaults.given.add("loglevel")
        status.verbose = True
    for direction, word in zip(("input", "output", "forward"), syntax.policies):
        if word.lower() not in _POLICY:
            raise RuleAnalyzerError(f"unknown policy {str(word)!r}", Location(name, word.line, word.column),
                                    source_line=lines[word.line - 1])
        status.defaults.set_policy(direction, _POLICY[word.lower()], Location(name, word.line, word.column))
    for row in syntax.rows:
        status.rules += _row(row, name, lines[row.to.line - 1], profiles, status)
    return status


def _row(row: Row, name: str, line: str, profiles, status: Status) -> list[UfwRule]:
    lineno = row.to.line
    loc = Location(name, lineno, row.to.column)
    logtype = ""
    for a in row.attributes.split(","):
        if a.strip() in ("log", "log-all"):
            logtype = a.strip()
    word, _, direction = row.action.partition(" ")
    direction = direction or "IN"
    rule = UfwRule(word.lower(), direction="out" if direction == "OUT" else "in",
                   forward=direction == "FWD", logtype=logtype, comment=row.comment, location=loc)
    to = _cell(row.to, name, lineno, row.to.column, line)
    frm = _cell(row.frm, name, lineno, row.frm.column, line)
    rule.dst, rule.src = to["addr"], frm["addr"]
    rule.dport, rule.sport = to["port"], frm["port"]
    rule.dapp, rule.sapp = to["app"], frm["app"]
    protos = {p for p in (to["proto"], frm["proto"]) if p}
    if len(protos) > 1:
        raise RuleAnalyzerError("different protocols in To and From", loc, source_line=line)
    rule.protocol = protos.pop() if protos else "any"
    if rule.forward:
        rule.iface_in, rule.iface_out = frm["iface"], to["iface"]
        if rule.iface_out and not rule.iface_in:
            rule.direction = "out"
    else:
        if rule.direction == "in":
            rule.iface_in = to["iface"]
        else:
            rule.iface_out = frm["iface"]
    v6 = to["v6"] or frm["v6"] or ":" in rule.src or ":" in rule.dst
    rule.v6 = v6
    rules = [rule]
    for field_name, app in (("dapp", rule.dapp), ("sapp", rule.sapp)):
        if app and not (to["port"] != "any" if field_name == "dapp" else frm["port"] != "any"):
            profile = find_profile(app, profiles)
            if profile is None:
                status.unknown_apps.append((app, loc))
                for r in rules:
                    r.unknown_app = app
                continue
            expanded = []
            for r in rules:
                for group in profile.ports:
                    copy = UfwRule(**{**r.__dict__})
                    if field_name == "dapp":
                        copy.dport = group.ports
                    else:
                        copy.sport = group.ports
                    if group.protocol != "any":
                        copy.protocol = group.protocol
                    expanded.append(copy)
            rules = expanded
    return rules


_APP_OPEN = re.compile(r"\s\(")


def _verbose_app(text: str) -> tuple[int, str, bool] | None:
    r"""``22/tcp (OpenSSH)`` / ``… (OpenSSH (v6))`` → (where the app part
    starts, the app's name, v6), as ``\s\((.+?)( \(v6\))?\)$`` matched it
    but in linear time (the regex rescanned to the end from every ``(``:
    ``(x (x (x …`` of 60 kB took 105 s)."""
    if not text.endswith(")"):
        return None
    m = _APP_OPEN.search(text)
    if m is None:
        return None
    start = m.end()
    v6 = text.endswith(" (v6))") and len(text) - 6 > start
    end = len(text) - 6 if v6 else len(text) - 1
    if end <= start or "\n" in text[start:end]:
        return None
    return m.start(), text[start:end], v6


def _cell(cell: str, name: str, lineno: int, column: int, line: str) -> dict:
    out = {"addr": "any", "port": "any", "app": "", "proto": "", "iface": "", "v6": False}
    text = cell.strip()
    m = _ON.search(text)
    if m:
        out["iface"] = m.group(1)
        text = text[:m.start()].strip()
    if text.endswith("(v6)"):
        out["v6"] = True
        text = text[:-4].strip()
    verbose_app = _verbose_app(text)
    if verbose_app:
        start, out["app"], v6 = verbose_app
        out["v6"] = out["v6"] or v6
        text = text[:start].strip()
    if not text:
        raise RuleAnalyzerError("empty To/From cell", Location(name, lineno, column), source_line=line)
    head, _, tail = text.partition(" ")
    if head.split("/")[0] == "Anywhere":
        out["proto"] = head.partition("/")[2]
        if tail:
            raise RuleAnalyzerError(f"unexpected {tail!r} after Anywhere", Location(name, lineno, column),
                                    source_line=line)
        return out
    address = _address(head)
    if address is not None:
        out["addr"], proto = address
        out["proto"] = proto
        text = tail.strip()
        if not text:
            return out
    m = _PORTS.match(text)
    if m:
        out["port"] = m.group(1)
        out["proto"] = m.group(2) or out["proto"]
        return out
    # an application name (non-verbose listings show the name, not ports)
    out["app"] = text
    return out


def _address(token: str) -> tuple[str, str] | None:
    """``10.0.0.0/8`` or ``10.0.0.0/8/tcp`` → (address, proto)."""
    for candidate, proto in ((token, ""), tuple(token.rsplit("/", 1)) if "/" in token else (None, "")):
        if candidate is None:
            continue
        if proto and not proto.isalpha():
            continue
        try:
            return normalize_address(candidate), proto
        except ValueError:
            continue
    return None
