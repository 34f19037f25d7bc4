"""Which interfaces face the internet: roles for the exposure check.

A ruleset rarely says which of its interfaces is the uplink, but it often
shows it: a MASQUERADE/SNAT rule names the interface connections leave by
(``-o wan0``), a DNAT port forward names the one they arrive on
(``-i ppp0``), ``! -o docker0`` says docker0 is internal, and a host
snapshot's default route names the uplink outright. The config file may
say it too (``interfaces: {internet: [...], internal: [...]}``), and that
wins. ``lo``, container bridges, veths and VPN tunnels are internal by
name; ``ppp*`` and ``wan*`` face the internet by name, and so does an
interface jumped into a zone chain named for the WAN (``-i eth1 -j
zone_wan``, Shorewall's ``net2fw``) — one named for the LAN is internal.

    >>> from ruleanalyzer import loads
    >>> rs = loads("*nat\\n:POSTROUTING ACCEPT [0:0]\\n-A POSTROUTING -o ppp0 -j MASQUERADE\\n"
    ...            "COMMIT\\n", dialect="iptables")
    >>> roles = infer_roles(rs)
    >>> roles.role("ppp0"), roles.role("eth1"), roles.role("lo")
    ('internet', None, 'internal')
    >>> roles.why("ppp0")
    'MASQUERADE -o ppp0 (<string>:3)'
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from .model import AllOf, AnyOf, Dispatch, InterfaceMatch, Nat, Ruleset

INTERNET, INTERNAL = "internet", "internal"
#: Bridges and links of containers and VMs: the networks behind them are
#: private and NATed, so the internet reaches them only through a DNAT.
CONTAINER_LINKS = ("docker*", "br-*", "virbr*", "veth*", "cni*", "cali*", "flannel*", "weave*",
                   "kube-*", "lxcbr*", "lxdbr*", "podman*", "waydroid*", "lxc*", "vnet*", "incusbr*")
#: Name prefixes that say what an interface is (wildcards end in ``*``).
NAMED_ROLES = (
    ("lo", INTERNAL), ("ppp*", INTERNET), ("wan*", INTERNET), ("pppoe*", INTERNET),
    *((name, INTERNAL) for name in CONTAINER_LINKS),
    ("tun*", INTERNAL), ("tap*", INTERNAL), ("wg*", INTERNAL), ("tailscale*", INTERNAL),
    ("zt*", INTERNAL), ("lan*", INTERNAL),
)


def container_link(name: str) -> bool:
    """Is ``name`` (or a ``prefix*`` class) a container or VM bridge?

    >>> container_link("docker0"), container_link("waydroid0"), container_link("eth0")
    (True, True, False)
    """
    return any(_name_matches(p, name) for p in CONTAINER_LINKS)


def _name_matches(pattern: str, name: str) -> bool:
    if pattern.endswith("*"):
        return name.startswith(pattern[:-1])
    return name == pattern


@dataclass
class InterfaceRoles:
    """Interface name (or ``prefix*``) → role, with the reason for each."""

    roles: dict[str, tuple[str, str]] = field(default_factory=dict)

    def set(self, name: str, role: str, why: str, override: bool = False) -> None:
        name = name[:-1] + "*" if name.endswith("+") else name
        if override or name not in self.roles:
            self.roles[name] = (role, why)

    def _lookup(self, name: str) -> tuple[str, str] | None:
        if name in self.roles:
            return self.roles[name]
        best = None
        for pattern, value in self.roles.items():
            if pattern.endswith("*") and _name_matches(pattern, name):
                if best is None or len(pattern) > len(best[0]):
                    best = (pattern, value)
        if best is not None:
            return best[1]
        for pattern, role in NAMED_ROLES:
            if _name_matches(pattern, name):
                return role, f"its name ({pattern})"
        return None

    def role(self, name: str) -> str | None:
        """``internet``, ``internal`` or None (unknown) for an interface name
        or a ``prefix*`` class."""
        found = self._lookup(name)
        return found[0] if found else None

    def why(self, name: str) -> str | None:
        found = self._lookup(name)
        return found[1] if found else None

    def uplinks(self) -> list[str]:
        """Interfaces known to face the internet."""
        return sorted(n for n, (role, _) in self.roles.items() if role == INTERNET)


def infer_roles(ruleset: Ruleset, configured: dict | None = None) -> InterfaceRoles:
    """Roles from ``configured`` (``{"internet": [...], "internal": [...]}``,
    which win), the host snapshot's default routes (``ruleset.host``) and
    the NAT rules of ``ruleset``."""
    roles = InterfaceRoles()
    for role in (INTERNET, INTERNAL):
        for name in (configured or {}).get(role, []) or []:
            roles.set(str(name), role, "the config file (interfaces)", override=True)
    host = getattr(ruleset, "host", None)
    for route in getattr(host, "routes", None) or []:
        if route.dev and route.table in ("main", "254") and route.type == "unicast" \
                and ipaddress.ip_network(route.dst).prefixlen == 0:
            roles.set(route.dev, INTERNET, f"the host's default route ({route.dst} dev {route.dev})")
    for rule in ruleset.rules():
        act = rule.action
        zone = _zone_role(getattr(act, "target", None))
        if zone is not None and not isinstance(act, Nat):
            # OpenWrt/fwbuilder/Shorewall name their per-interface chains by
            # zone: "-i eth1 -j zone_wan", "-i br-lan -j input_lan".
            for m in _interface_matches(rule.matches, "iif"):
                if not m.negate:
                    for name in m.names:
                        roles.set(name, zone, f"-i {name} -j {act.target}{_where(rule)}")
            continue
        if isinstance(act, Dispatch):  # a NAT from a map: its elements' kind
            act = next((a for _m, a in act.branches if isinstance(a, Nat)), act)
        if not isinstance(act, Nat):
            continue
        field = "oif" if act.kind in ("snat", "masquerade") else "iif" if act.kind == "dnat" else None
        if field is None:
            continue
        for m in _interface_matches(rule.matches, field):
            where = _where(rule)
            flag = "-o" if field == "oif" else "-i"
            for name in m.names:
                if m.negate:
                    roles.set(name, INTERNAL, f"{act.kind.upper()} ! {flag} {name}{where}")
                else:
                    roles.set(name, INTERNET, f"{act.kind.upper()} {flag} {name}{where}")
    return roles


_ZONE_WORDS = {"wan": INTERNET, "net": INTERNET, "internet": INTERNET, "lan": INTERNAL}


def _zone_role(chain: str | None) -> str | None:
    """The role a chain's name gives the interface jumping into it, kept
    per name (asked per jumping rule: 50k jumps at 100k kube-proxy rules,
    34k names) in a plain dict: an lru_cache's entry costs ~140 B, ~5 MiB
    there, live through the audit."""
    if not chain:
        return None
    found = _ZONE_ROLES.get(chain, _ZONE_ROLES)
    if found is not _ZONE_ROLES:
        return found
    if len(_ZONE_ROLES) >= 1 << 16:  # a long-lived process: every ruleset's names
        _ZONE_ROLES.clear()
    found = _ZONE_ROLES[chain] = _zone_role_of(chain)
    return found


_ZONE_ROLES: dict = {}


def _zone_role_of(chain: str) -> str | None:
    name = chain.lower()
    if "2" in name:  # Shorewall's source2destination: the interface is the source zone's
        name = name.split("2")[0]
    words = [w for w in name.replace("-", "_").split("_") if w]
    roles = {_ZONE_WORDS[w] for w in words if w in _ZONE_WORDS}
    return roles.pop() if len(roles) == 1 else None


def _where(rule) -> str:
    loc = rule.location
    return f" ({loc.file}:{loc.line})" if loc and loc.file and loc.line else ""


def _interface_matches(matches, field: str):
    for m in matches:
        if isinstance(m, InterfaceMatch) and m.field == field:
            yield m
        elif isinstance(m, AllOf) and not m.negate:
            yield from _interface_matches(m.matches, field)
        elif isinstance(m, AnyOf):
            continue  # one of several: not a statement about any one of them
