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


def _where(kind: str, name: str) -> str:
    return f"firewall-cmd --permanent --{kind}={name}"


def _parts(rule):
    """(zone|policy, its name, service|port|rule, what) from the rule's origin."""
    origin = rule.origin
    m = _ORIGIN.match(origin.text) if origin is not None and origin.tool == "firewalld" else None
    return m.groups() if m else None


def _remove(kind, name, what, value) -> str:
    if what == "rule":
        return f"{_where(kind, name)} --remove-rich-rule='{value}'"
    return f"{_where(kind, name)} --remove-{what}={value}"


class Firewalld(Renderer):
    def remove(self, fix: Remove) -> str:
        parts = _parts(fix.rule)
        return f"{_remove(*parts)}; firewall-cmd --reload" if parts else super().remove(fix)

    def narrow(self, fix: Narrow) -> str:
        parts = _parts(fix.rule)
        if parts is None:
            return super().narrow(fix)
        kind, name, what, value = parts
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
        return (f"{_remove(kind, name, what, value)}; {_where(kind, name)} --add-rich-rule='{narrowed}'; "
                "firewall-cmd --reload")

    def add(self, fix: Add) -> str:
        m = _ZONE_CHAIN.match(fix.chain.name) if fix.chain is not None else None
        zone = m.group(1) if m else "<zone>"
        spec = fix.spec
        if spec.iif == "lo":
            return "firewall-cmd --permanent --zone=trusted --add-interface=lo; firewall-cmd --reload"
        if spec.icmp:
            family = "ipv6" if spec.family == 6 else "ipv4"
            rules = [f"{_where('zone', zone)} --add-rich-rule='rule family=" + f'"{family}" icmp-type '
                     f'name="{_ICMP.get(t, t)}" accept' + "'" for t in spec.icmp]
            return "; ".join(rules) + "; firewall-cmd --reload"
        return super().add(fix)
