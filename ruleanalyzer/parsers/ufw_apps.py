"""ufw application profiles and service names.

A profile file (``/etc/ufw/applications.d/*``) is INI: ``[Name]`` sections
with ``title=``, ``description=`` and ``ports=``; ``ports`` holds groups
separated by ``|``, each ``P[,P…][/proto]`` where ``P`` is a port or an
``A:B`` range, and a group without ``/proto`` means tcp and udp. ufw turns
every group into one rule. The common profiles ship in
``ruleanalyzer/data/ufw/applications.ini``; profile files the user gives
are added on top (same name: theirs wins).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from ..errors import RuleAnalyzerError
from ..model import Location
from .ufw_layout import builtin_text

_SECTION = re.compile(r"^\s*\[([^\]]*)\]\s*$")
_PORTS = re.compile(r"^\d+(:\d+)?(,\d+(:\d+)?)*(/(tcp|udp))?$")
#: Names ufw accepts for a profile (no shell metacharacters, not a number).
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _\-\.+]*$")


@dataclass(frozen=True)
class PortGroup:
    """One ``ports=`` group: ``80,443`` over ``tcp`` (``any``: tcp and udp)."""

    ports: str
    protocol: str


@dataclass(frozen=True)
class Profile:
    name: str
    title: str
    ports: tuple[PortGroup, ...]
    location: Location


def sniff_profiles(text: str) -> bool:
    """Does ``text`` look like an application profile file?"""
    return bool(re.search(r"^\s*\[[^\]]+\]\s*$", text, re.M)) and bool(
        re.search(r"^\s*ports\s*=", text, re.M))


def parse_profiles(text: str, name: str) -> dict[str, Profile]:
    """Every profile in one file; a located error for a broken one."""
    profiles: dict[str, Profile] = {}
    section, fields, start = None, {}, 0
    lines = text.split("\n")

    def finish():
        if section is None:
            return
        loc = Location(name, start, 1)
        line = lines[start - 1]
        if not _NAME.match(section) or section.isdigit():
            raise RuleAnalyzerError(f"invalid application profile name {section!r}", Location(name, start, 2),
                                    source_line=line,
                                    hint="names start with a letter or digit and hold letters, "
                                         "digits, spaces, '_', '-', '.', '+'")
        for key in ("title", "description", "ports"):
            if key not in fields:
                raise RuleAnalyzerError(f"application profile {section!r} has no {key}=", loc,
                                        source_line=line)
        value, vline = fields["ports"]
        groups = []
        for group in value.split("|"):
            group = group.strip()
            if not _PORTS.match(group) or not _ports_in_range(group):
                raise RuleAnalyzerError(f"bad ports {group!r} in application profile {section!r}",
                                        Location(name, vline, 1), source_line=lines[vline - 1],
                                        hint="ports=P[,P|A:B...][/tcp|/udp], groups separated by '|'")
            ports, _, proto = group.partition("/")
            if (":" in ports or "," in ports) and not proto:
                # ufw refuses port lists/ranges without a protocol
                raise RuleAnalyzerError(f"application profile {section!r}: a port list or range "
                                        "needs /tcp or /udp", Location(name, vline, 1),
                                        source_line=lines[vline - 1])
            groups.append(PortGroup(ports, proto or "any"))
        profiles[section] = Profile(section, fields["title"][0], tuple(groups), loc)

    for lineno, raw in enumerate(lines, 1):
        stripped = raw.strip()
        if not stripped or stripped[0] in "#;":
            continue
        m = _SECTION.match(raw)
        if m:
            finish()
            section, fields, start = m.group(1), {}, lineno
            continue
        if section is not None and fields and raw[:1] in (" ", "\t"):
            # an indented line continues the previous value (ConfigParser)
            last = next(reversed(fields))
            value, vline = fields[last]
            fields[last] = (f"{value} {stripped}", vline)
            continue
        if section is None or "=" not in stripped:
            raise RuleAnalyzerError("expected '[Name]' or 'key=value' in an application profile",
                                    Location(name, lineno, 1), source_line=raw)
        key, _, value = stripped.partition("=")
        fields[key.strip().lower()] = (value.strip(), lineno)
    finish()
    return profiles


def _ports_in_range(group: str) -> bool:
    ports = group.partition("/")[0]
    for part in ports.split(","):
        bounds = [int(p) for p in part.split(":")]
        if any(not 1 <= b <= 65535 for b in bounds) or (len(bounds) == 2 and bounds[0] >= bounds[1]):
            return False
    return True


@lru_cache(maxsize=1)
def builtin_profiles() -> dict[str, Profile]:
    return parse_profiles(builtin_text("applications.ini"), "<ufw built-in applications.ini>")


def find_profile(name: str, extra: dict[str, Profile] | None = None) -> Profile | None:
    """The profile called ``name`` (ufw matches names case-insensitively)."""
    for table in (extra or {}), builtin_profiles():
        if name in table:
            return table[name]
        for key, profile in table.items():
            if key.lower() == name.lower():
                return profile
    return None


@lru_cache(maxsize=1)
def _services() -> dict[str, tuple[int, tuple[str, ...]]]:
    table = {}
    for line in builtin_text("services").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, port, protos = line.split()
        table[name] = (int(port), tuple(protos.split(",")))
    return table


def service(name: str) -> tuple[int, tuple[str, ...]] | None:
    """``ssh`` → (22, ("tcp",)); None when the name is not a known service."""
    # getservbyname is case-sensitive: "SSH" is the application, "ssh" the service
    known = _services().get(name)
    if known:
        return known
    import socket

    found: dict[str, int] = {}
    for proto in ("tcp", "udp"):
        try:
            found[proto] = socket.getservbyname(name, proto)
        except OSError:
            continue
    if not found:
        return None
    port = next(iter(found.values()))
    return port, tuple(p for p, v in found.items() if v == port)
