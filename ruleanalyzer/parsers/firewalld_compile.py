"""A firewalld configuration compiled into the nftables ruleset firewalld builds.

firewalld (``FirewallBackend=nftables``) turns zones and policies into one
table, ``inet firewalld``: base chains at the iptables priorities + 10,
dispatch chains (``*_ZONES``, ``*_POLICIES_pre/post``), and per zone or
policy a chain with five sub-chains (``_pre``, ``_log``, ``_deny``,
``_allow``, ``_post``) that rich rules and settings are sorted into. The
order of rules inside a chain comes from the order firewalld applies things
in and from its three insertion schemes (rich-rule and policy priorities,
zone sources sorted by zone name, interfaces inserted before the earlier
ones). This module replays those operations — the 1.x layout of firewalld
1.3 — on plain lists and prints the result as nft text, each line with the
firewalld setting it came from. The real firewalld's output is the test
oracle (``tests/kernel/test_kernel_firewalld.py``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from ..errors import RuleAnalyzerError
from ..model import Location, Origin
from .firewalld_xml import (Entry, Helper, IcmpType, IPSet, Policy, Rich, Service, Settings, Zone,
                            address_family, is_mac, port_range)

TOOL = "firewalld"

#: ICMP type names → nft fragments (firewalld's ICMP_TYPES_FRAGMENTS).
ICMP4 = {
    "communication-prohibited": ("destination-unreachable", 13), "destination-unreachable": ("destination-unreachable", None),
    "echo-reply": ("echo-reply", None), "echo-request": ("echo-request", None),
    "fragmentation-needed": ("destination-unreachable", 4), "host-precedence-violation": ("destination-unreachable", 14),
    "host-prohibited": ("destination-unreachable", 10), "host-redirect": ("redirect", 1),
    "host-unknown": ("destination-unreachable", 7), "host-unreachable": ("destination-unreachable", 1),
    "ip-header-bad": ("parameter-problem", 1), "network-prohibited": ("destination-unreachable", 8),
    "network-redirect": ("redirect", 0), "network-unknown": ("destination-unreachable", 6),
    "network-unreachable": ("destination-unreachable", 0), "parameter-problem": ("parameter-problem", None),
    "port-unreachable": ("destination-unreachable", 3), "precedence-cutoff": ("destination-unreachable", 15),
    "protocol-unreachable": ("destination-unreachable", 2), "redirect": ("redirect", None),
    "required-option-missing": ("parameter-problem", 1), "router-advertisement": ("router-advertisement", None),
    "router-solicitation": ("router-solicitation", None), "source-quench": ("source-quench", None),
    "source-route-failed": ("destination-unreachable", 5), "time-exceeded": ("time-exceeded", None),
    "timestamp-reply": ("timestamp-reply", None), "timestamp-request": ("timestamp-request", None),
    "tos-host-redirect": ("redirect", 3), "tos-host-unreachable": ("destination-unreachable", 12),
    "tos-network-redirect": ("redirect", 2), "tos-network-unreachable": ("destination-unreachable", 11),
    "ttl-zero-during-reassembly": ("time-exceeded", 1), "ttl-zero-during-transit": ("time-exceeded", 0),
}
ICMP6 = {
    "address-unreachable": ("destination-unreachable", 3), "bad-header": ("parameter-problem", 0),
    "beyond-scope": ("destination-unreachable", 2), "communication-prohibited": ("destination-unreachable", 1),
    "destination-unreachable": ("destination-unreachable", None), "echo-reply": ("echo-reply", None),
    "echo-request": ("echo-request", None), "failed-policy": ("destination-unreachable", 5),
    "neighbour-advertisement": ("nd-neighbor-advert", None), "neighbour-solicitation": ("nd-neighbor-solicit", None),
    "no-route": ("destination-unreachable", 0), "packet-too-big": ("packet-too-big", None),
    "parameter-problem": ("parameter-problem", None), "port-unreachable": ("destination-unreachable", 4),
    "redirect": ("nd-redirect", None), "reject-route": ("destination-unreachable", 6),
    "router-advertisement": ("nd-router-advert", None), "router-solicitation": ("nd-router-solicit", None),
    "time-exceeded": ("time-exceeded", None), "ttl-zero-during-reassembly": ("time-exceeded", 1),
    "ttl-zero-during-transit": ("time-exceeded", 0), "unknown-header-type": ("parameter-problem", 1),
    "unknown-option": ("parameter-problem", 2),
}
REJECT_NFT = {
    "icmp-host-prohibited": "icmp host-prohibited", "host-prohib": "icmp host-prohibited",
    "icmp-net-prohibited": "icmp net-prohibited", "net-prohib": "icmp net-prohibited",
    "icmp-admin-prohibited": "icmp admin-prohibited", "admin-prohib": "icmp admin-prohibited",
    "icmp6-adm-prohibited": "icmpv6 admin-prohibited", "adm-prohibited": "icmpv6 admin-prohibited",
    "icmp-net-unreachable": "icmp net-unreachable", "net-unreach": "icmp net-unreachable",
    "icmp-host-unreachable": "icmp host-unreachable", "host-unreach": "icmp host-unreachable",
    "icmp-port-unreachable": "icmp port-unreachable", "icmp6-port-unreachable": "icmpv6 port-unreachable",
    "port-unreach": "icmpx port-unreachable", "icmp-proto-unreachable": "icmp prot-unreachable",
    "proto-unreach": "icmp prot-unreachable", "icmp6-addr-unreachable": "icmpv6 addr-unreachable",
    "addr-unreach": "icmpv6 addr-unreachable", "icmp6-no-route": "icmpv6 no-route",
    "no-route": "icmpv6 no-route", "tcp-reset": "tcp reset", "tcp-rst": "tcp reset",
}
#: ICMP codes nft prints by name.
ICMP4_CODES = {0: "net-unreachable", 1: "host-unreachable", 2: "prot-unreachable", 3: "port-unreachable",
               4: "frag-needed", 9: "net-prohibited", 10: "host-prohibited", 13: "admin-prohibited"}
ICMP6_CODES = {0: "no-route", 1: "admin-prohibited", 3: "addr-unreachable", 4: "port-unreachable",
               5: "policy-fail", 6: "reject-route"}
REJECT = "reject with icmpx admin-prohibited"
RFC3964 = ("ip6 daddr { ::/96, ::ffff:0.0.0.0/96, 2002::/24, 2002:a00::/24, 2002:7f00::/24, "
           "2002:a9fe::/32, 2002:ac10::/28, 2002:c0a8::/32, 2002:e000::/19 }")
SUFFIXES = ("pre", "log", "deny", "allow", "post")
#: (table, chain) → (hook, nft priority text, type) of firewalld's base chains.
BASE_CHAINS = {
    ("mangle", "PREROUTING"): ("prerouting", "mangle + 10", "filter"),
    ("nat", "PREROUTING"): ("prerouting", "dstnat + 10", "nat"),
    ("nat", "POSTROUTING"): ("postrouting", "srcnat + 10", "nat"),
    ("nat", "OUTPUT"): ("output", "-90", "nat"),
    ("filter", "PREROUTING"): ("prerouting", "filter + 10", "filter"),
    ("filter", "INPUT"): ("input", "filter + 10", "filter"),
    ("filter", "FORWARD"): ("forward", "filter + 10", "filter"),
    ("filter", "OUTPUT"): ("output", "filter + 10", "filter"),
}
SET_TYPES = {
    "hash:ip": ["addr"], "hash:ip,port": ["addr", "inet_proto", "inet_service"],
    "hash:ip,port,ip": ["addr", "inet_proto", "inet_service", "addr"],
    "hash:ip,port,net": ["addr", "inet_proto", "inet_service", "addr"], "hash:ip,mark": ["addr", "mark"],
    "hash:net": ["addr"], "hash:net,net": ["addr", "addr"], "hash:net,port": ["addr", "inet_proto", "inet_service"],
    "hash:net,port,net": ["addr", "inet_proto", "inet_service", "addr"], "hash:net,iface": ["addr", "ifname"],
    "hash:mac": ["ether_addr"],
}


@dataclass
class Line:
    """One nft rule and where it came from."""

    text: str
    origin: Origin
    location: Location | None = None


@dataclass
class NftChain:
    name: str
    header: str | None = None
    lines: list[Line] = field(default_factory=list)
    #: Rule keys present (firewalld adds an identical rule only once).
    keys: set = field(default_factory=set)


@dataclass
class Config:
    """A whole firewalld configuration, stock definitions and user files layered."""

    conf: dict[str, str]
    conf_where: dict[str, Location]
    zones: dict[str, Zone]
    policies: dict[str, Policy]
    services: dict[str, Service]
    ipsets: dict[str, IPSet]
    icmptypes: dict[str, IcmpType]
    helpers: dict[str, Helper]
    direct: object = None
    #: Runtime bindings given besides the files (``firewall-cmd --zone=Z --add-interface=I``).
    name: str = "firewalld"
    version: str = "1.3.3"


class Compiler:
    """Replays firewalld's start-up (``Firewall._start_apply_objects``).

    The 1.x layout; :class:`.firewalld_compile2.Compiler2` changes what
    these attributes and hooks name for 2.x."""

    #: Zone chains jump to the policy dispatch (1.x) or are jumped to by it (2.x).
    ZONE_CHAINS_DISPATCH = True
    #: ``index`` of the ICMP block inversion rule in the zone's INPUT chain.
    ICMP_INVERSION_INDEX = 6

    def __init__(self, config: Config, diagnostics: list):
        self.c = config
        self.diagnostics = diagnostics
        self.chains: dict[str, NftChain] = {}
        self.helper_objects: dict[str, str] = {}
        self.rich_counts: dict[str, dict[int, int]] = {}
        self.policy_counts: dict[str, dict[int, int]] = {}
        self.source_cache: list[tuple[str, str]] = []
        self.log_denied = config.conf.get("LogDenied", "off").lower()
        if self.log_denied in ("no", ""):
            self.log_denied = "off"
        self.default_zone = config.conf.get("DefaultZone", "public") or "public"
        self.created_policy_chains: set[tuple[str, str, str]] = set()

    # -- primitive operations ------------------------------------------------

    def chain(self, name: str, header: str | None = None) -> NftChain:
        if name not in self.chains:
            self.chains[name] = NftChain(name, header)
        return self.chains[name]

    def _put(self, chain: str, line: Line, position: int | None, token=None) -> None:
        line.text = listed(line.text)
        c = self.chain(chain)
        key = (line.text, token)
        if key in c.keys:
            return  # firewalld's rule reference counting: an identical rule once
        c.keys.add(key)
        if position is None:
            c.lines.append(line)
        else:
            c.lines.insert(min(position, len(c.lines)), line)

    def add(self, chain: str, text: str, origin: Origin, location: Location | None = None,
            after: int | None = None) -> None:
        """``add rule`` (``after``: nft's ``index``, add after that 0-based rule)."""
        self._put(chain, Line(text, origin, location), None if after is None else after + 1)

    def insert(self, chain: str, text: str, origin: Origin) -> None:
        self._put(chain, Line(text, origin), 0)

    def add_by_priority(self, counts: dict, chain: str, priority: int, line: Line, token) -> None:
        """firewalld's ``_set_rule_replace_priority``: rules kept sorted by
        priority, a new one after those of equal priority."""
        line.text = listed(line.text)
        c = self.chain(chain)
        key = (line.text, token)
        if key in c.keys:
            return
        per = counts.setdefault(chain, {})
        per.setdefault(priority, 0)
        index = 0
        for p in sorted(per):
            index += per[p]
            if p == priority:
                break
        per[priority] += 1
        c.keys.add(key)
        c.lines.insert(index, line)

    # -- origins -------------------------------------------------------------

    @staticmethod
    def stock(text: str) -> Origin:
        return Origin(TOOL, text, None, generated=True)

    @staticmethod
    def user(text: str, location: Location | None) -> Origin:
        return Origin(TOOL, text, location)

    def of(self, policy: Settings, text: str, location: Location | None) -> Origin:
        """Origin of a line ``policy`` asks for; a stock policy nobody
        replaced (allow-host-ipv6) is firewalld's scaffolding, not the user's."""
        stock = isinstance(policy, Policy) and policy.stock
        return Origin(TOOL, f"{self.owner(policy)}, {text}", location, generated=stock)

    def owner(self, policy: Settings) -> str:
        if isinstance(policy, _Derived):
            return f"zone {policy.zone.name}"
        return f"policy {policy.name}"

    # -- the start-up sequence -------------------------------------------------

    def compile(self) -> None:
        self.default_rules()
        active = [z for z in sorted(self.c.zones) if self.c.zones[z].interfaces or self.c.zones[z].sources]
        applied: set[str] = set()
        for name in active:
            self.apply_zone(self.c.zones[name])
            applied.add(name)
        default = self.c.zones.get(self.default_zone)
        if default is None:
            fallback = next(z for z in ("public", "external", "block") if z in self.c.zones)
            self.diagnostics.append((f"default zone {self.default_zone!r} does not exist: firewalld uses "
                                     f"{fallback!r}", self.c.conf_where.get("DefaultZone")))
            self.default_zone = fallback
            default = self.c.zones[fallback]
        if default.name not in applied:
            self.apply_zone(default)
        for derived in self.derived(default):
            self.zone_dispatch(derived, "+", append=True)
        for name in sorted(self.c.policies):
            policy = self.c.policies[name]
            if self.policy_active(policy):
                self.apply_policy(policy)

    def active_zones(self) -> list[str]:
        return [z for z in sorted(self.c.zones)
                if self.c.zones[z].interfaces or self.c.zones[z].sources or z == self.default_zone]

    def policy_active(self, policy: Policy) -> bool:
        # firewalld: a policy applies when an ingress and an egress zone is
        # active (bound) or a symbolic zone; the default zone counts only
        # once it has bindings (``get_active_zones``).
        if getattr(policy, "disabled", None) is not None:
            return False  # firewalld >= 2.4: <disable/>
        bound = {z for z in self.c.zones if self.c.zones[z].interfaces or self.c.zones[z].sources} | {"HOST", "ANY"}
        return bool({e.value for e in policy.ingress} & bound) and bool({e.value for e in policy.egress} & bound)

    # -- default rules -----------------------------------------------------------

    def dispatch(self, base: str) -> tuple[list[str], list[str]]:
        """The dispatch chains of base chain ``base`` (``filter_INPUT``):
        (made, jumped to) — 1.x: ``_ZONES`` between ``_POLICIES_pre`` and
        ``_post`` (OUTPUT has no zones and jumps to both)."""
        if base.endswith("_OUTPUT"):
            made = [f"{base}_POLICIES_pre", f"{base}_POLICIES_post"]
            return made, made
        return [f"{base}_POLICIES_pre", f"{base}_ZONES", f"{base}_POLICIES_post"], [f"{base}_ZONES"]

    def dnat_rule(self, name: str) -> bool:
        """What a base chain does with DNATed connections (1.x: INPUT and
        FORWARD accept them; OUTPUT has no such rule). Whether it added one."""
        if name == "filter_OUTPUT":
            return False
        self.add(name, "ct status dnat accept", self.stock("connections firewalld or another tool DNATed"))
        return True

    def flowtable_rule(self, name: str) -> bool:
        """NftablesFlowtable (firewalld >= 2.0); 1.x has none."""
        return False

    def dispatch_jumps(self, base: str) -> None:
        made, jumped = self.dispatch(base)
        for chain in made:
            self.chain(chain)
        for chain in jumped:
            self.add(base, f"jump {chain}", self.stock("zone and policy dispatch"))

    def default_rules(self) -> None:
        s = self.stock
        for (table, chain), (hook, prio, kind) in BASE_CHAINS.items():
            if table == "filter":
                continue
            self.chain(f"{table}_{chain}", f"type {kind} hook {hook} priority {prio}; policy accept;")
            self.dispatch_jumps(f"{table}_{chain}")
        for chain in ("PREROUTING", "INPUT", "FORWARD", "OUTPUT"):
            hook, prio, kind = BASE_CHAINS[("filter", chain)]
            self.chain(f"filter_{chain}", f"type {kind} hook {hook} priority {prio}; policy accept;")
        log = self.log_denied != "off"
        pkt = _pkttype(self.log_denied)
        fastpath = False
        for chain in ("INPUT", "FORWARD"):
            name = f"filter_{chain}"
            if chain == "FORWARD":
                fastpath = self.flowtable_rule(name)
            self.add(name, "ct state { established, related } accept", s("replies of allowed connections"))
            self.dnat_rule(name)
            self.add(name, 'iifname "lo" accept', s("loopback"))
            if log:
                self.add(name, f'ct state invalid {pkt}log prefix "STATE_INVALID_DROP: "', s("LogDenied"))
            self.add(name, "ct state invalid drop", s("invalid packets"))
            self.dispatch_jumps(name)
            if log:
                self.add(name, f'{pkt}log prefix "FINAL_REJECT: "', s("LogDenied"))
            self.add(name, REJECT, s("final reject"))
        self.add("filter_OUTPUT", "ct state { established, related } accept", s("replies"))
        output_dnat = self.dnat_rule("filter_OUTPUT")
        self.add("filter_OUTPUT", 'oifname "lo" accept', s("loopback"))
        self.dispatch_jumps("filter_OUTPUT")
        rpf_forward = self.rpfilter(log)
        if self.c.conf.get("RFC3964_IPv4", "yes").lower() not in ("no", "false"):
            text = RFC3964 + (' log prefix "RFC3964_IPv4_REJECT: "' if self.log_denied in ("unicast", "all") else "")
            text += " reject with icmpv6 addr-unreachable"
            self.add("filter_OUTPUT", text, s("RFC3964_IPv4"), after=2 if output_dnat else 1)
            self.add("filter_FORWARD", text, s("RFC3964_IPv4"), after=(4 if log else 3) + rpf_forward + fastpath)
        for ipset in self.c.ipsets.values():
            pass  # sets are printed from the configuration, see :func:`render`

    def rpfilter(self, log: bool) -> bool:
        """``IPv6_rpfilter``: the strict reverse-path check in PREROUTING
        (1.x knows yes/no only: any other word is taken as yes, as firewalld
        does). Whether the rule went to FORWARD instead (2.2's *-forward)."""
        mode = self.c.conf.get("IPv6_rpfilter", "yes").lower()
        if mode in ("no", "false"):
            return False
        if mode not in ("yes", "true", "strict"):
            self.diagnostics.append((f"IPv6_rpfilter={mode} came with firewalld 2.2: firewalld {self.c.version} "
                                     "reads it as yes (strict)", self.c.conf_where.get("IPv6_rpfilter")))
        self.rpfilter_rules("filter_PREROUTING", "saddr . mark . iif", log)
        return False

    def rpfilter_rules(self, chain: str, flags: str, log: bool, exempt_nd: bool = True) -> None:
        s = self.stock
        text = f"meta nfproto ipv6 fib {flags} oif missing"
        if log:
            text += ' log prefix "rpfilter_DROP: "'
        self.insert(chain, text + " drop", s("IPv6_rpfilter (reverse path filter)"))
        if exempt_nd:
            self.insert(chain, "icmpv6 type { nd-router-advert, nd-neighbor-solicit } accept",
                        s("IPv6_rpfilter exemption for neighbour discovery"))

    # -- zones -------------------------------------------------------------

    def derived(self, zone: Zone) -> list["_Derived"]:
        return [_Derived(zone, zone.name, "HOST"), _Derived(zone, "ANY", zone.name), _Derived(zone, zone.name, "ANY")]

    def apply_zone(self, zone: Zone) -> None:
        for policy in self.derived(zone):
            self.apply_policy(policy)
        for entry in zone.interfaces:
            for policy in self.derived(zone):
                self.zone_dispatch(policy, entry.value, entry=entry)
            if zone.forward:
                self.zone_forward(zone, entry)
        for entry in zone.sources:
            for policy in self.derived(zone):
                self.zone_dispatch(policy, None, source=entry)
            if zone.forward:
                self.zone_forward(zone, entry, source=True)
        self.icmp_block_inversion(zone)

    def zone_dispatch(self, policy: "_Derived", interface: str | None, *, append: bool = False,
                      source: Entry | None = None, entry: Entry | None = None) -> None:
        zone = policy.zone
        for table, chain in self.zone_dispatch_chains(policy):
            target = f"{table}_{self.base_name(policy, table, snat=(table, chain) == ('nat', 'POSTROUTING'))}"
            if source is not None:
                field_ = "daddr" if chain == "POSTROUTING" else "saddr"
                text = f"{self.addr_match(field_, source.value)} goto {target}"
                origin = self.user(f"zone {zone.name}, source {source.value}", source.location)
                key = (zone.name, _norm_source(source.value))
                if key not in self.source_cache:
                    self.source_cache.append(key)
                    self.source_cache.sort(key=lambda x: x[0])
                index = self.source_cache.index(key)
                self._put(f"{table}_{chain}_ZONES", Line(text, origin, source.location), index, token=("source", key))
                continue
            name = interface[:-1] + "*" if interface.endswith("+") else interface
            opt = "oifname" if chain == "POSTROUTING" else "iifname"
            text = f"goto {target}" if name == "*" else f'{opt} "{name}" goto {target}'
            if append:
                origin = self.stock(f"default zone {zone.name}: every other interface")
                where = self.c.conf_where.get("DefaultZone")
                self._put(f"{table}_{chain}_ZONES", Line(text, origin, where), None)
            else:
                origin = self.user(f"zone {zone.name}, interface {interface}", entry.location if entry else None)
                self._put(f"{table}_{chain}_ZONES", Line(text, origin, entry.location if entry else None),
                          len(self.source_cache), token=("interface",))

    def zone_forward(self, zone: Zone, entry: Entry, source: bool = False) -> None:
        policy = _Derived(zone, zone.name, "ANY")
        chain = f"filter_{self.base_name(policy, 'filter')}_allow"
        if source:
            text = f"{self.addr_match('daddr', entry.value)} accept"
        else:
            name = entry.value[:-1] + "*" if entry.value.endswith("+") else entry.value
            text = f'oifname "{name}" accept'
        self.add(chain, text, self.user(f"zone {zone.name}, forward (intra-zone) to {entry.value}",
                                        entry.location), entry.location)

    def icmp_block_inversion(self, zone: Zone) -> None:
        policy = _Derived(zone, zone.name, "HOST")
        if zone.target in ("DROP", "%%REJECT%%"):
            return
        if not zone.icmp_block_inversion and zone.target == "ACCEPT":
            return
        chain = f"filter_{self.base_name(policy, 'filter')}"
        verdict = REJECT if zone.icmp_block_inversion else "accept"
        what = ("icmp-block-inversion: ICMP not listed is rejected" if zone.icmp_block_inversion
                else "ICMP not blocked is accepted")
        origin = Origin(TOOL, f"zone {zone.name}, {what}", Location(zone.file, zone.location.line),
                        generated=not zone.icmp_block_inversion)
        self.add(chain, f"meta l4proto {{ icmp, ipv6-icmp }} {verdict}", origin, after=self.ICMP_INVERSION_INDEX)
        if self.log_denied != "off" and zone.icmp_block_inversion:
            pkt = _pkttype(self.log_denied)
            self.add(chain, f'meta l4proto {{ icmp, ipv6-icmp }} {pkt}log prefix "filter_zone_{zone.name}_HOST_ICMP_BLOCK: "',
                     origin, after=self.ICMP_INVERSION_INDEX)

    # -- policies ----------------------------------------------------------

    def base_name(self, policy, table: str, snat: bool = False) -> str:
        derived = isinstance(policy, _Derived)
        suffix = policy.zone.name if derived else "policy_" + policy.name
        ingress, egress = policy.ingress_names, policy.egress_names
        if "HOST" in egress:
            if table == "filter":
                return "IN_" + suffix
            if not derived and table in ("mangle", "nat"):
                return "PRE_" + suffix
        elif "HOST" in ingress:
            if not derived and table in ("filter", "nat"):
                return "OUT_" + suffix
        elif "ANY" in egress or "ANY" in ingress or not derived:
            if table == "filter":
                return "FWD_" + suffix
            if table == "nat":
                return ("POST_" if snat else "PRE_") + suffix
            if table == "mangle" and not (derived and "ANY" in ingress and "ANY" not in egress):
                return "PRE_" + suffix
        raise RuleAnalyzerError(f"firewalld cannot place policy {policy.name} in table {table}")

    def zone_dispatch_chains(self, policy) -> list[tuple[str, str]]:
        if "HOST" in policy.egress_names:
            return [("filter", "INPUT")]
        if "ANY" in policy.egress_names:
            return [("filter", "FORWARD"), ("nat", "PREROUTING"), ("mangle", "PREROUTING")]
        return [("nat", "POSTROUTING")]

    def policy_dispatch_chains(self, policy: Policy) -> list[tuple[str, str]]:
        ingress, egress = policy.ingress_names, policy.egress_names
        bound = lambda zones: any(self.c.zones[z].interfaces for z in zones if z in self.c.zones)  # noqa: E731
        if "ANY" in ingress and "HOST" in egress:
            return [("filter", "INPUT"), ("nat", "PREROUTING"), ("mangle", "PREROUTING")]
        if "HOST" in egress:
            return [("filter", "INPUT")]
        if "HOST" in ingress:
            return [("filter", "OUTPUT"), ("nat", "OUTPUT")]
        if "ANY" in ingress and "ANY" in egress:
            return [("filter", "FORWARD"), ("nat", "PREROUTING"), ("nat", "POSTROUTING"), ("mangle", "PREROUTING")]
        if "ANY" in egress:
            return [("filter", "FORWARD"), ("nat", "PREROUTING"), ("mangle", "PREROUTING"), ("nat", "POSTROUTING")]
        if "ANY" in ingress:
            tc = [("filter", "FORWARD"), ("nat", "POSTROUTING")]
            if not bound(egress):
                tc += [("nat", "PREROUTING"), ("mangle", "PREROUTING")]
            return tc
        tc = [("filter", "FORWARD"), ("nat", "POSTROUTING")]
        if not bound(egress):
            tc += [("nat", "PREROUTING"), ("mangle", "PREROUTING")]
        return tc

    def policy_chains(self, policy, table: str, chain: str) -> None:
        """``build_policy_chain_rules``: the policy's chain and its five parts."""
        derived = isinstance(policy, _Derived)
        snat = (table, chain) == ("nat", "POSTROUTING")
        track = (policy.zone.name if derived else policy.name, table, chain)
        if track in self.created_policy_chains:
            return
        self.created_policy_chains.add(track)
        base = f"{table}_{self.base_name(policy, table, snat)}"
        self.chain(base)
        for suffix in SUFFIXES:
            self.chain(f"{base}_{suffix}")
        s = self.stock(f"{self.owner(policy)}: chain layout")
        if derived and self.ZONE_CHAINS_DISPATCH:
            self.add(base, f"jump {table}_{chain}_POLICIES_pre", s)
        for suffix in SUFFIXES:
            self.add(base, f"jump {base}_{suffix}", s)
        if derived and self.ZONE_CHAINS_DISPATCH:
            self.add(base, f"jump {table}_{chain}_POLICIES_post", s)
        if derived and not self.ZONE_CHAINS_DISPATCH:
            return  # 2.x: a zone's target is the last rule of its dispatch
        target = policy.target
        where = Location(policy.file, policy.location.line) if policy.file else None
        if table == "filter" and target in ("default", "REJECT", "%%REJECT%%", "DROP", "ACCEPT"):
            # (a zone whose file says target="default" gets no rule here:
            # firewalld 1.3 keeps the literal word and its backend skips it)
            label = {"default": "REJECT", "%%REJECT%%": "REJECT"}.get(target, target)
            shown = "default" if target == "default" else label
            origin = Origin(TOOL, f"{self.owner(policy)}, target {shown}", where, generated=target == "default")
            if self.log_denied != "off" and target != "ACCEPT":
                pkt = _pkttype(self.log_denied)
                self.add(base, f'{pkt}log prefix "filter_{self.base_name(policy, table, snat)}_{label}: "', origin)
            verdict = REJECT if label == "REJECT" else target.lower()
            self.add(base, verdict, origin, where)

    def apply_policy(self, policy) -> None:
        derived = isinstance(policy, _Derived)
        chains = self.zone_dispatch_chains(policy) if derived else self.policy_dispatch_chains(policy)
        for table, chain in chains:
            self.policy_chains(policy, table, chain)
        if not derived:
            self.policy_dispatch(policy)
        settings = policy.settings
        for entry in settings.services:
            self.service(policy, entry.value, entry)
        for entry in settings.ports:
            (rng, proto) = entry.value
            self.add(self.pchain(policy, "filter", "allow"), f"{proto} dport {_ports(rng)} accept",
                     self.of(policy, f"port {_range_text(rng)}/{proto}", entry.location),
                     entry.location)
        if settings.masquerade is not None:
            self.masquerade(policy, None, settings.masquerade.location)
        for entry in settings.forward_ports:
            self.forward_port(policy, entry.value, None, entry.location)
        for entry in settings.source_ports:
            (rng, proto) = entry.value
            self.add(self.pchain(policy, "filter", "allow"), f"{proto} sport {_ports(rng)} accept",
                     self.of(policy, f"source-port {_range_text(rng)}/{proto}", entry.location),
                     entry.location)
        for entry in settings.icmp_blocks:
            self.icmp_block(policy, entry.value, None, entry.location)
        for rule in settings.rules:
            self.rich(policy, rule)
        for entry in settings.protocols:
            self.add(self.pchain(policy, "filter", "allow"), f"meta l4proto {_l4proto(entry.value)} accept",
                     self.of(policy, f"protocol {entry.value}", entry.location), entry.location)

    def policy_dispatch(self, policy: Policy) -> None:
        ingress_if, egress_if, ingress_src, egress_src = [], [], [], []
        for names, ifs, srcs in ((policy.ingress_names, ingress_if, ingress_src),
                                 (policy.egress_names, egress_if, egress_src)):
            for z in names:
                if z in ("ANY", "HOST") or z not in self.c.zones:
                    continue
                for e in self.c.zones[z].interfaces:
                    if e.value not in ifs:
                        ifs.append(e.value)
                for e in self.c.zones[z].sources:
                    if e.value not in srcs:
                        srcs.append(e.value)
        suffix = "pre" if policy.priority < 0 else "post"
        origin = self.user(f"policy {policy.name} (priority {policy.priority}): "
                           f"{'/'.join(policy.ingress_names)} -> {'/'.join(policy.egress_names)}",
                           policy.location)

        def fragments(ifs, srcs, opt, field_):
            out = [f'{opt} "{i[:-1]}*"' for i in ifs if i.endswith("+")]
            plain = [i for i in ifs if not i.endswith("+")]
            if plain:
                out.append(f'{opt} "{plain[0]}"' if len(plain) == 1 else
                           f"{opt} {{ {', '.join(_q(i) for i in sorted(plain))} }}")
            out += [self.addr_match(field_, s) for s in srcs]
            return out

        ingress = fragments(ingress_if, ingress_src, "iifname", "saddr")
        egress = fragments(egress_if, egress_src, "oifname", "daddr")
        for table, chain in self.policy_dispatch_chains(policy):
            target = f"{table}_{self.base_name(policy, table, (table, chain) == ('nat', 'POSTROUTING'))}"
            combos = ([(i, e) for i in ingress for e in egress] if ingress and egress else
                      [(i, None) for i in ingress] if ingress else [(None, e) for e in egress] if egress
                      else [(None, None)])
            for i, e in combos:
                if i and e and _family_of(i) and _family_of(e) and _family_of(i) != _family_of(e):
                    continue
                text = " ".join(x for x in (i, e) if x)
                text = f"{text} jump {target}" if text else f"jump {target}"
                self.add_by_priority(self.policy_counts, f"{table}_{chain}_POLICIES_{suffix}", policy.priority,
                                     Line(text, origin, policy.location), ("policy", policy.priority))

    def pchain(self, policy, table: str, suffix: str, snat: bool = False) -> str:
        return f"{table}_{self.base_name(policy, table, snat)}_{suffix}"

    # -- settings ------------------------------------------------------------

    def service(self, policy, name: str, entry: Entry, seen: list | None = None) -> None:
        svc = self.c.services.get(name)
        if svc is None:
            raise RuleAnalyzerError(f"{self.owner(policy)}: service {name!r} does not exist (firewalld refuses "
                                    "the configuration and falls back to its stock ruleset)", entry.location)
        helpers = self.helpers_of(svc, entry.location)
        seen = seen if seen is not None else [name]
        for include in svc.includes:
            if include not in seen:
                seen.append(include)
                self.service(policy, include, entry, seen)
        destinations = list(svc.destination.values()) or [None]
        origin = self.of(policy, f"service {entry.value}"
                           + (f" (via {name})" if name != entry.value else ""), entry.location)
        chain = self.pchain(policy, "filter", "allow")
        for dest in destinations:
            pre = f"{self.addr_match('daddr', dest)} " if dest else ""
            for helper in helpers:
                for port, proto in helper.ports:
                    obj = f"helper-{helper.name}-{proto}"
                    self.helper_objects[obj] = f'type "{_short(helper.module)}" protocol {proto}'
                    self.add(chain, f'{pre}{proto} dport {_ports(port_range(port))} ct helper set "{obj}"',
                             origin, entry.location)
            for port, proto in svc.ports:
                self.add(chain, f"{pre}{proto} dport {_ports(port_range(port))} accept", origin, entry.location)
            for proto in svc.protocols:
                self.add(chain, f"{pre}meta l4proto {_l4proto(proto)} accept", origin, entry.location)
            for port, proto in svc.source_ports:
                self.add(chain, f"{pre}{proto} sport {_ports(port_range(port))} accept", origin, entry.location)

    def helpers_of(self, svc: Service, where: Location | None) -> list[Helper]:
        out = []
        for module in svc.modules:
            helper = self.c.helpers.get(module) or self.c.helpers.get(_short(module))
            if helper is None:
                raise RuleAnalyzerError(f"service {svc.name}: unknown helper module {module!r} (firewalld "
                                        "fails to start with it)", where)
            if not helper.ports:
                helper = self.c.helpers.get(_short(helper.module))
                if helper is None:
                    continue
            out.append(helper)
        for name in svc.helpers:
            helper = self.c.helpers.get(name)
            if helper is None:
                raise RuleAnalyzerError(f"service {svc.name}: unknown helper {name!r}", where)
            out.append(helper)
        return sorted({h.name: h for h in out}.values(), key=lambda h: h.name)

    def masquerade(self, policy, rule: Rich | None, where: Location | None) -> None:
        if rule is None:
            pre, suffix, text = "meta nfproto ipv4 ", "allow", "masquerade"
        else:
            pre, suffix, text = self.rich_prefix(rule), self.rich_suffix(rule), str(rule)
        line = Line(f'{pre}oifname != "lo" masquerade',
                    self.of(policy, f"{text}", where), where)
        self.place(policy, "nat", suffix, rule, line, snat=True)

    def forward_port(self, policy, value, rule: Rich | None, where: Location | None) -> None:
        port, proto, to_port, to_addr = value
        if rule is None:
            fam = "ipv6" if to_addr and address_family(to_addr) == "ipv6" else "ipv4"
            pre, suffix = f"meta nfproto {fam} ", "allow"
            text = f"forward-port {port}/{proto}" + (f" to-port {to_port}" if to_port else "") + \
                (f" to-addr {to_addr}" if to_addr else "")
        else:
            pre, suffix, text = self.rich_prefix(rule), self.rich_suffix(rule), str(rule)
        body = f"{pre}{proto} dport {_ports(port_range(port))} "
        if to_addr:
            fam = "ip6" if address_family(to_addr) == "ipv6" else "ip"
            addr = f"[{_norm_addr(to_addr)}]" if fam == "ip6" and to_port else _norm_addr(to_addr)
            body += f"dnat {fam} to {addr}" + (f":{_ports(port_range(to_port))}" if to_port else "")
        else:
            body += f"redirect to :{_ports(port_range(to_port))}"
        self.place(policy, "nat", suffix, rule, Line(body, self.of(policy, f"{text}", where), where))

    def icmp_block(self, policy, name: str, rule: Rich | None, where: Location | None) -> None:
        ict = self.c.icmptypes.get(name)
        if ict is None:
            raise RuleAnalyzerError(f"{self.owner(policy)}: icmptype {name!r} does not exist (firewalld refuses "
                                    "the configuration)", where)
        if rule is not None and rule.family:
            ipvs = [rule.family]
        elif rule is not None and self.source_family(rule):
            ipvs = [self.source_family(rule)]
        elif ict.destination:
            ipvs = [v for v in ("ipv4", "ipv6") if v in ict.destination]
        else:
            ipvs = ["ipv4", "ipv6"]
        zone = policy.zone if isinstance(policy, _Derived) else None
        inversion = bool(zone and zone.icmp_block_inversion) if rule is None else False
        for ipv in ipvs:
            table = ICMP4 if ipv == "ipv4" else ICMP6
            if name not in table:
                raise RuleAnalyzerError(f"ICMP type {name!r} is not supported for {ipv} by firewalld", where)
            icmp_type, code = table[name]
            word = "icmp" if ipv == "ipv4" else "icmpv6"
            names = ICMP4_CODES if ipv == "ipv4" else ICMP6_CODES
            frag = f"{word} type {icmp_type}" + (f" {word} code {names.get(code, code)}" if code is not None else "")
            if rule is None:
                origin = self.of(policy, f"icmp-block {name}", where)
                chain = self.pchain(policy, "filter", "allow" if inversion else "deny")
                if self.log_denied != "off" and not inversion:
                    pkt = _pkttype(self.log_denied)
                    self.add(chain, f'{frag} {pkt}log prefix "filter_{policy.name}_ICMP_BLOCK: "', origin, where)
                self.add(chain, f"{frag} {'accept' if inversion else REJECT}", origin, where)
            else:
                self.rich_actions(policy, rule, self.rich_prefix(rule) + frag, default_reject=True)

    # -- rich rules ----------------------------------------------------------

    def source_family(self, rule: Rich) -> str | None:
        """firewalld's ``_rule_source_ipv``: the family a rule's source implies."""
        if not rule.source:
            return None
        kind, value, _ = rule.source
        if kind == "address":
            return address_family(value)
        if kind == "ipset" and value in self.c.ipsets:
            ipset = self.c.ipsets[value]
            if ipset.type == "hash:mac":
                return None
            return "ipv6" if ipset.options.get("family") == "inet6" else "ipv4"
        return None

    def rich_suffix(self, rule: Rich) -> str:
        if rule.priority < 0:
            return "pre"
        if rule.priority > 0:
            return "post"
        kind = rule.element[0] if rule.element else None
        action = rule.action[0] if rule.action else None
        if kind in ("masquerade", "forward-port", "tcp-mss-clamp") or action in ("accept", "mark"):
            return "allow"
        return "deny"

    def rich_prefix(self, rule: Rich, destination: str | None = None) -> str:
        parts = []
        if rule.family:
            parts.append(f"meta nfproto {rule.family}")
        if destination:
            parts.append(self.addr_match("daddr", destination))
        if rule.destination:
            kind, value, invert = rule.destination
            parts.append(self.addr_match("daddr", value if kind == "address" else "ipset:" + value, invert))
        if rule.source:
            kind, value, invert = rule.source
            parts.append(self.addr_match("saddr", value if kind != "ipset" else "ipset:" + value, invert))
        return " ".join(parts) + (" " if parts else "")

    def rich_policy(self, zone: Zone, rule: Rich) -> "_Derived":
        kind = rule.element[0] if rule.element else None
        if rule.action and rule.action[0] == "mark":
            return _Derived(zone, zone.name, "ANY")
        if kind in ("forward-port", "tcp-mss-clamp"):
            return _Derived(zone, zone.name, "ANY")
        if kind == "masquerade":
            return _Derived(zone, "ANY", zone.name)
        return _Derived(zone, zone.name, "HOST")

    def rich(self, policy, rule: Rich) -> None:
        if isinstance(policy, _Derived):
            wanted = self.rich_policy(policy.zone, rule)
            if (wanted.ingress_names, wanted.egress_names) != (policy.ingress_names, policy.egress_names):
                return
        kind = rule.element[0] if rule.element else None
        attrs = rule.element[1] if rule.element else {}
        if kind == "service":
            self.rich_service(policy, rule, attrs["name"], [attrs["name"]])
        elif kind == "port":
            self.rich_actions(policy, rule, f"{self.rich_prefix(rule)}{attrs['protocol']} dport "
                                            f"{_ports(port_range(attrs['port']))}")
        elif kind == "source-port":
            self.rich_actions(policy, rule, f"{self.rich_prefix(rule)}{attrs['protocol']} sport "
                                            f"{_ports(port_range(attrs['port']))}")
        elif kind == "protocol":
            self.rich_actions(policy, rule, f"{self.rich_prefix(rule)}meta l4proto {_l4proto(attrs['value'])}")
        elif kind in ("icmp-block", "icmp-type"):
            self.icmp_block(policy, attrs["name"], rule, rule.location)
        elif kind == "masquerade":
            self.masquerade(policy, rule, rule.location)
        elif kind == "forward-port":
            value = (attrs["port"], attrs["protocol"], attrs.get("to-port", ""), attrs.get("to-addr", ""))
            self.forward_port(policy, value, rule, rule.location)
        elif kind == "tcp-mss-clamp":
            pre = self.rich_prefix(rule).replace(f"meta nfproto {rule.family} ", "") if rule.family else self.rich_prefix(rule)
            value = attrs.get("value") or "pmtu"
            setter = "rt mtu" if value == "pmtu" else value
            line = Line(f"{pre}tcp flags syn tcp option maxseg size set {setter}",
                        self.of(policy, f"{rule}", rule.location), rule.location)
            self.place(policy, "filter", self.rich_suffix(rule), rule, line)
        else:
            self.rich_actions(policy, rule, self.rich_prefix(rule).rstrip())

    def rich_service(self, policy, rule: Rich, name: str, seen: list) -> None:
        svc = self.c.services.get(name)
        if svc is None:
            raise RuleAnalyzerError(f"rich rule names service {name!r}, which does not exist", rule.location)
        for include in svc.includes:
            if include not in seen:
                seen.append(include)
                self.rich_service(policy, rule, include, seen)
        if svc.destination and rule.destination:
            raise RuleAnalyzerError("a rich rule with a destination cannot use a service with its own "
                                    "destination (firewalld refuses it)", rule.location)
        ipvs = [rule.family] if rule.family else (
            [self.source_family(rule)] if self.source_family(rule) else ["ipv4", "ipv6"])
        dests = [svc.destination[v] for v in ipvs if v in svc.destination] if svc.destination else [None]
        for dest in dests:
            pre = self.rich_prefix(rule, dest)
            if rule.action and rule.action[0] == "accept":
                for helper in self.helpers_of(svc, rule.location):
                    for port, proto in helper.ports:
                        obj = f"helper-{helper.name}-{proto}"
                        self.helper_objects[obj] = f'type "{_short(helper.module)}" protocol {proto}'
                        d = f"{self.addr_match('daddr', dest)} " if dest else ""
                        self.add(self.pchain(policy, "filter", "allow"),
                                 f'{d}{proto} dport {_ports(port_range(port))} ct helper set "{obj}"',
                                 self.of(policy, f"{rule}", rule.location), rule.location)
            for port, proto in svc.ports:
                self.rich_actions(policy, rule, f"{pre}{proto} dport {_ports(port_range(port))}")
            for proto in svc.protocols:
                self.rich_actions(policy, rule, f"{pre}meta l4proto {_l4proto(proto)}")
            for port, proto in svc.source_ports:
                self.rich_actions(policy, rule, f"{pre}{proto} sport {_ports(port_range(port))}")

    def rich_actions(self, policy, rule: Rich, match: str, default_reject: bool = False) -> None:
        """The log, audit and action rules of one rich-rule match."""
        match = match.strip()
        pre = f"{match} " if match else ""
        origin = self.of(policy, f"{rule}", rule.location)
        log_suffix = "log" if rule.priority == 0 else ("pre" if rule.priority < 0 else "post")
        if rule.log:
            kind, a = rule.log
            limit = f"limit rate {_rate(a['limit'])} " if a.get("limit") else ""
            if kind == "nflog":
                opts = f"group {a.get('group') or 0}"
                opts += f' prefix "{a["prefix"]}"' if a.get("prefix") else ""
                opts += f" queue-threshold {a['queue-size']}" if a.get("queue-size") else ""
            else:
                opts = f'prefix "{a["prefix"]}"' if a.get("prefix") else ""
                if a.get("level") and a["level"] != "warning":  # nft's default level, not printed
                    level = "warn" if a["level"] == "warning" else a["level"]
                    opts += (" " if opts else "") + f"level {level}"
            text = f"{pre}{limit}log {opts}".rstrip()
            self.place_suffix(policy, "filter", log_suffix, rule, Line(text, origin, rule.location))
        if rule.audit is not None:
            limit = f"limit rate {_rate(rule.audit['limit'])} " if rule.audit.get("limit") else ""
            self.place_suffix(policy, "filter", log_suffix, rule,
                              Line(f"{pre}{limit}log level audit", origin, rule.location))
        if rule.action:
            kind, a = rule.action
            limit = f"limit rate {_rate(a['limit'])} " if a.get("limit") else ""
            table = "filter"
            if kind == "accept":
                verdict = "accept"
            elif kind == "drop":
                verdict = "drop"
            elif kind == "reject":
                verdict = f"reject with {REJECT_NFT[a['type']]}" if a.get("type") else "reject"
            else:
                table = "mangle"
                value, _, mask = a["set"].partition("/")
                verdict = (f"meta mark set meta mark & {_hex(mask)} ^ {_hex(value)}" if mask
                           else f"meta mark set {_hex(value)}")
            self.place_suffix(policy, table, self.rich_suffix(rule), rule,
                              Line(f"{pre}{limit}{verdict}", origin, rule.location))
        elif default_reject:
            self.place_suffix(policy, "filter", self.rich_suffix(rule), rule,
                              Line(f"{pre}{REJECT}", origin, rule.location))

    def place(self, policy, table: str, suffix: str, rule: Rich | None, line: Line, snat: bool = False) -> None:
        chain = self.pchain(policy, table, suffix, snat)
        if rule is not None and rule.priority:
            self.add_by_priority(self.rich_counts, chain, rule.priority, line, ("rich", rule.priority))
        else:
            self._put(chain, line, None)

    place_suffix = place

    # -- addresses -------------------------------------------------------------

    def addr_match(self, field_: str, address: str, invert: bool = False) -> str:
        key = (field_, address, invert)
        cache = self.__dict__.setdefault("_addr_cache", {})
        if key not in cache:  # 2.x's dispatch asks for the same binding once per pair
            cache[key] = self._addr_match(field_, address, invert)
        return cache[key]

    def _addr_match(self, field_: str, address: str, invert: bool = False) -> str:
        op = "!= " if invert else ""
        if address.startswith("ipset:"):
            return self.set_match(address[6:], field_ == "daddr", op)
        if is_mac(address):
            return f"ether {field_} {op}{address.lower()}"
        fam = address_family(address)
        proto = "ip" if fam == "ipv4" else "ip6"
        return f"{proto} {field_} {op}{_norm_addr(address)}"

    def set_match(self, name: str, dest: bool, op: str) -> str:
        ipset = self.c.ipsets.get(name)
        if ipset is None:
            raise RuleAnalyzerError(f"ipset {name!r} does not exist (firewalld refuses the configuration)")
        fam = "ether" if ipset.type == "hash:mac" else ("ip6" if ipset.options.get("family") == "inet6" else "ip")
        parts = []
        for fmt in ipset.type.split(":")[1].split(","):
            if fmt == "port":
                parts += ["meta l4proto", f"th {'dport' if dest else 'sport'}"]
            elif fmt in ("ip", "net", "mac"):
                parts.append(f"{fam} {'daddr' if dest else 'saddr'}")
            elif fmt == "iface":
                parts.append("iifname" if dest else "oifname")
            elif fmt == "mark":
                parts.append("meta mark")
        return f"{' . '.join(parts)} {op}@{name}"

    # -- output --------------------------------------------------------------

    def render_objects(self) -> list[str]:
        """Table objects besides helpers and sets (2.x: the flowtable)."""
        return []

    def render(self) -> tuple[str, list[tuple[str, list[Line]]]]:
        """The nft text and, per chain in order, its lines."""
        out = ["table inet firewalld {"]
        for name, spec in sorted(self.helper_objects.items()):
            out += [f"\tct helper {name} {{", f"\t\t{spec}", "\t\tl3proto inet", "\t}"]
        for ipset in self.c.ipsets.values():
            out += render_set(ipset)
        out += self.render_objects()
        order = []
        for chain in self.chains.values():
            out.append(f"\tchain {chain.name} {{")
            if chain.header:
                out.append(f"\t\t{chain.header}")
            out += [f"\t\t{line.text}" for line in chain.lines]
            out.append("\t}")
            order.append((chain.name, chain.lines))
        out.append("}")
        return "\n".join(out) + "\n", order


class _Derived:
    """A policy firewalld derives from a zone (``zone_<from>_<to>``)."""

    def __init__(self, zone: Zone, ingress: str, egress: str):
        self.zone = zone
        self.ingress_names = [ingress]
        self.egress_names = [egress]
        self.name = f"zone_{ingress}_{egress}"
        self.file = zone.file
        self.location = zone.location
        self.target = zone.target
        if ingress == zone.name and egress == "HOST":
            keep = ("services", "ports", "source_ports", "icmp_blocks", "protocols")
        elif ingress == "ANY":
            keep = ("masquerade",)
        else:
            keep = ("forward_ports",)
        self.settings = Settings(zone.name, zone.file, zone.location)
        for attr in keep:
            setattr(self.settings, attr, getattr(zone, attr))
        self.settings.rules = zone.rules


def _policy_names(policy: Policy) -> None:
    policy.ingress_names = [e.value for e in policy.ingress]
    policy.egress_names = [e.value for e in policy.egress]
    policy.settings = policy


def render_set(ipset: IPSet) -> list[str]:
    fam = "ipv6_addr" if ipset.options.get("family") == "inet6" else "ipv4_addr"
    types = [fam if t == "addr" else t for t in SET_TYPES[ipset.type]]
    lines = [f"\tset {ipset.name} {{", f"\t\ttype {' . '.join(types)}"]
    if any(t in ("ip", "net", "port") for t in ipset.type.split(":")[1].split(",")):
        lines.append("\t\tflags interval")
    if "timeout" in ipset.options:
        lines.append(f"\t\ttimeout {ipset.options['timeout']}s")
    if "maxelem" in ipset.options:
        lines.append(f"\t\tsize {ipset.options['maxelem']}")
    elements = [_set_element(ipset, e) for e in ipset.entries]
    if elements:
        lines.append(f"\t\telements = {{ {', '.join(elements)} }}")
    lines.append("\t}")
    return lines


def _set_element(ipset: IPSet, entry: str) -> str:
    fmts = ipset.type.split(":")[1].split(",")
    tokens = entry.split(",")
    if len(tokens) != len(fmts):
        raise RuleAnalyzerError(f"ipset {ipset.name}: entry {entry!r} does not match type {ipset.type}",
                                Location(ipset.file))
    out = []
    for fmt, tok in zip(fmts, tokens):
        if fmt == "port":
            proto, _, port = tok.rpartition(":")
            out += [proto or "tcp", port.replace("-", "-")]
        elif fmt in ("ip", "net"):
            out.append(_norm_addr(tok))
        elif fmt == "mac":
            out.append(tok.lower())
        else:
            out.append(_q(tok) if fmt == "iface" else tok)
    return " . ".join(out)


_IMPLIED = {"ipv4": ("ip ", "icmp "), "ipv6": ("ip6 ", "icmpv6 ")}


def listed(text: str) -> str:
    """A rule as ``nft list ruleset`` prints it: a ``meta nfproto`` that the
    next match implies is dropped (nft's dependency elimination), and a bare
    ``reject`` of a one-family rule names that family's ICMP answer."""
    family = None
    for fam, prefixes in _IMPLIED.items():
        head = f"meta nfproto {fam} "
        if text.startswith(head):
            family = fam
            if text[len(head):].startswith(prefixes):
                text = text[len(head):]
    if family is None:
        for fam, prefixes in _IMPLIED.items():
            if text.startswith(prefixes):
                family = fam
    if family and (text.endswith(" reject") or text == "reject"):
        text += " with icmp port-unreachable" if family == "ipv4" else " with icmpv6 port-unreachable"
    return text


def _pkttype(log_denied: str) -> str:
    if log_denied == "all":
        return ""
    return f"meta pkttype {'host' if log_denied == 'unicast' else log_denied} "


def _norm_source(value: str) -> str:
    if value.startswith("ipset:") or is_mac(value):
        return value
    return _norm_addr(value)


def _norm_addr(text: str) -> str:
    if "/" in text:
        net = ipaddress.ip_network(text, strict=False)
        if net.prefixlen == net.max_prefixlen:  # nft prints a host prefix as the address
            return net.network_address.compressed
        return f"{net.network_address.compressed}/{net.prefixlen}"
    return ipaddress.ip_address(text).compressed


def _family_of(fragment: str) -> str | None:
    if fragment.startswith("ip "):
        return "ip"
    if fragment.startswith("ip6 "):
        return "ip6"
    return None


def _ports(rng) -> str:
    if rng is None:
        raise RuleAnalyzerError("invalid port")
    return str(rng[0]) if rng[0] == rng[1] else f"{rng[0]}-{rng[1]}"


def _range_text(rng) -> str:
    return _ports(rng)


def _q(name: str) -> str:
    return f'"{name}"'


def _short(module: str) -> str:
    return module.replace("_", "-").replace("nf-conntrack-", "")


def _rate(value: str) -> str:
    rate, unit = value.split("/")
    return f"{rate}/{ {'s': 'second', 'm': 'minute', 'h': 'hour', 'd': 'day'}[unit[0]]}"


def _hex(value: str) -> str:
    return f"0x{int(value, 0):08x}"


#: Protocol names nft prints differently from /etc/protocols.
_L4 = {"icmpv6": "ipv6-icmp", "ipv6-icmp": "ipv6-icmp"}


def _l4proto(name: str) -> str:
    return _L4.get(name, name)
