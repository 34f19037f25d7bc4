"""Fixes as firewall-cmd calls on the zone or policy that made the rule
(``Rule.origin``: ``zone public, service ssh``; ``policy p, rule …``):
firewalld rebuilds its nft ruleset from those, so an nft command would be
undone by the next reload."""

from __future__ import annotations

import re

from . import Add, Narrow, Remove, Renderer, Spec

_ORIGIN = re.compile(r"^(zone|policy) (\S+?)(?: \([^)]*\))?, (service|port|rule) (.+)$")
_ICMP = {"frag-needed": "fragmentation-needed", "packet-too-big": "packet-too-big",
         "nd-router-solicit": "router-solicitation", "nd-router-advert": "router-advertisement",
         "nd-neighbor-solicit": "neighbour-solicitation", "nd-neighbor-advert": "neighbour-advertisement"}
_ZONE_CHAIN = re.compile(r"^filter_(?:IN|FWD|FWDI|FWDO)_(?!policy_)([A-Za-z0-9_-]+?)(?:_(?:allow|deny|log|pre|post))?$")


MAX_ZONE_NAME = 17


def zone_problem(meta: dict | None, kind: str, name: str) -> str | None:
    """What is wrong with a zone's name for a command (see
    :func:`ruleanalyzer.parsers.firewalld.object_name`), or None."""
    if kind != "zone":
        return None
    info = (meta or {}).get("firewalld") or {}
    config = info.get("config") if isinstance(info, dict) else None
    zone = config.zones.get(name) if config is not None else None
    problem = getattr(zone, "name_problem", None)
    if problem is None and len(name) > MAX_ZONE_NAME:
        problem = "too-long"
    return problem


def where(kind: str, name: str, meta: dict | None = None) -> tuple[str, str]:
    """(what to say first, ``firewall-cmd --permanent --zone=NAME``): a zone
    name firewalld refuses for its length is said as too long, never used in
    a command that would fail; a zone whose name is unknown is ``<zone>``."""
    problem = zone_problem(meta, kind, name)
    if problem == "too-long":
        return (f"zone name {name!r} has {len(name)} characters and firewalld refuses zone names over "
                f"{MAX_ZONE_NAME}, so this zone never loads: rename zones/{name}.xml to a name of "
                f"{MAX_ZONE_NAME} characters or fewer, then ", "firewall-cmd --permanent --zone=<new name>")
    if problem == "unknown":
        return "", "firewall-cmd --permanent --zone=<zone>"
    return "", f"firewall-cmd --permanent --{kind}={name}"


def commands(kind: str, name: str, ops: list[str], meta: dict | None = None) -> str:
    """One line: each ``op`` on the zone or policy, then the reload."""
    first, base = where(kind, name, meta)
    return first + "; ".join(f"{base} {op}" for op in ops) + "; firewall-cmd --reload"


def parts(rule):
    """(zone|policy, its name, service|port|rule, what) from the rule's
    origin; a rich rule's ``what`` is its whole text (``rule …``)."""
    origin = rule.origin
    m = _ORIGIN.match(origin.text) if origin is not None and origin.tool == "firewalld" else None
    if not m:
        return None
    kind, name, what, value = m.groups()
    return kind, name, what, (f"rule {value}" if what == "rule" else value)


def _remove_op(what, value) -> str:
    return f"--remove-rich-rule='{value}'" if what == "rule" else f"--remove-{what}={value}"


class Firewalld(Renderer):
    def remove(self, fix: Remove) -> str:
        p = parts(fix.rule)
        return commands(p[0], p[1], [_remove_op(p[2], p[3])], self.meta) if p else super().remove(fix)

    def narrow(self, fix: Narrow) -> str:
        p = parts(fix.rule)
        if p is None:
            return super().narrow(fix)
        kind, name, what, value = p
        family = "ipv6" if any(":" in s for s in fix.src) else "ipv4"
        source = f'source address="{fix.src[0]}"'
        if what == "rule":
            def with_source(m):
                fam = m.group(1) or f' family="{family}"'
                return f"rule{fam} {source}"
            narrowed = re.sub(r'^rule( family="ipv[46]")?', with_source, value, count=1)
        elif what == "service":
            narrowed = f'rule family="{family}" {source} service name="{value}" accept'
        else:
            port, _, proto = value.partition("/")
            narrowed = f'rule family="{family}" {source} port port="{port}" protocol="{proto or "tcp"}" accept'
        return commands(kind, name, [_remove_op(what, value), f"--add-rich-rule='{narrowed}'"], self.meta)

    def add(self, fix: Add) -> str:
        m = _ZONE_CHAIN.match(fix.chain.name) if fix.chain is not None else None
        zone = m.group(1) if m else "<zone>"
        spec = fix.spec
        if spec.iif == "lo":
            return "firewall-cmd --permanent --zone=trusted --add-interface=lo; firewall-cmd --reload"
        if spec.icmp:
            family = "ipv6" if spec.family == 6 else "ipv4"
            rules = ["--add-rich-rule='rule family=" + f'"{family}" icmp-type name="{_ICMP.get(t, t)}" accept' + "'"
                     for t in spec.icmp]
            return commands("zone", zone, rules, self.meta)
        return super().add(fix)
