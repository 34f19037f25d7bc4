"""The firewalld 2.x layout: where it differs from 1.x (:mod:`.firewalld_compile`).

firewalld 2.0 replaced the 1.x dispatch (``*_ZONES`` chains that ``goto``
a zone's chain, which jumps to ``*_POLICIES_pre``/``_post``) by one flat
dispatch chain per hook, ``{table}_{CHAIN}_POLICIES``, holding for every
pair of bindings — an ingress interface or source and an egress one — a
jump to each policy that applies to the pair, ordered by the pair and then
by policy priority, and for the zone a *last* rule carrying the zone's
target. The zone's own chains (``filter_IN_public`` …) keep the five parts
and lose the target. What follows is read from firewalld's 2.x source
(``src/firewall/core/nftables.py`` and ``fw_zone.py``/``fw_policy.py``,
firewalld/firewalld before the three-stage dispatch of PR #1558, as in the
2.0–2.x releases):

- ``build_default_rules``: ``filter_INPUT``/``FORWARD``/``OUTPUT`` jump to
  ``filter_{CHAIN}_POLICIES``; ``mangle_PREROUTING`` and ``nat_*`` jump to
  their ``_POLICIES`` chain; the rest of the base chains is unchanged;
- ``_policy_dispatch_sort_key``: the order of the dispatch rules is the
  tuple ingress (zone priority, source before interface, zone, source,
  interface) + egress (the same) + (last, policy priority); the default
  zone's catch-all interface sorts after every priority; in POSTROUTING
  the egress side sorts first; in PREROUTING a zone's egress side is left
  out of the key (and of the rule);
- ``build_policy_ingress_egress_pair_rules``: a pair's match is
  ``iifname``/``oifname``/``saddr``/``daddr`` (no ``oifname`` in
  PREROUTING), its rule ``jump`` to the policy's chain, and the zone's
  last rule its target (``return`` outside the filter INPUT/FORWARD hooks);
- ``FirewallZone.ZONE_POLICY_PRIORITY = 0``: a zone's own policies sit
  between the negative- and positive-priority policies;
- ``policy_obj_from_zone_obj``: a zone derives four policies, the new one
  HOST → zone (``filter_OUT_<zone>``, tracking only);
- ``build_policy_icmp_block_inversion_rules``: ``index 4`` (after the
  five part jumps, since the zone chain has no dispatch jumps any more);
- ``_build_default_rules_dnat`` (2.3, ``StrictForwardPorts``): with
  ``StrictForwardPorts=yes`` the ``ct status dnat accept`` of INPUT and
  FORWARD becomes ``ct status dnat jump filter_{CHAIN}_dnat``, a chain
  accepting only firewalld's own forward-ports (``ct original proto-dst
  PORT accept``) and rejecting every other DNATed connection.

Checked against firewalld's own testsuite expectations for 2.x
(tests/test_firewalld_layout2.py: ``zone_priority.at``, every pair of
bindings present including the default zone's catch-all on both sides;
``strict_forward_ports.at``). Assumed, not read: a binding pair's
policies of equal priority are ordered by policy name.
"""

from __future__ import annotations

from ..model import Location, Origin
from .firewalld_compile import (REJECT, TOOL, Compiler, Line, _Derived,
                                _norm_source, _pkttype, _ports)
from .firewalld_xml import Zone, address_family, is_mac, port_range

#: firewalld's ``Zone.priority_max + 1``: the default zone's catch-all sorts last.
CATCH_ALL_PRIORITY = 32768
#: The firewalld versions whose layout this module builds.
FIRST = (2, 0)
STRICT_FORWARD_PORTS = (2, 3)
#: IPv6_rpfilter=loose / strict-forward / loose-forward (PR #1339).
RPFILTER_MODES = (2, 2)


def version_tuple(version: str) -> tuple[int, ...]:
    out = []
    for part in version.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        if not digits:
            break
        out.append(int(digits))
    return tuple(out) or (0,)


def is_2x(version: str) -> bool:
    return version_tuple(version) >= FIRST


class Compiler2(Compiler):
    """:class:`Compiler` with the 2.x dispatch."""

    def __init__(self, config, diagnostics: list):
        super().__init__(config, diagnostics)
        self.strict = (version_tuple(config.version) >= STRICT_FORWARD_PORTS and
                       config.conf.get("StrictForwardPorts", "no").lower() in ("yes", "true"))
        #: (chain, sort key, line) of the dispatch rules, sorted at the end.
        self.dispatch_rows: list[tuple[str, tuple, Line]] = []

    # -- base chains -----------------------------------------------------------

    ZONE_CHAINS_DISPATCH = False
    ICMP_INVERSION_INDEX = 4

    def dispatch(self, base: str) -> tuple[list[str], list[str]]:
        """One flat dispatch chain per base chain (``filter_INPUT_POLICIES``)."""
        return [f"{base}_POLICIES"], [f"{base}_POLICIES"]

    def dnat_rule(self, name: str) -> bool:
        """``_build_default_rules_dnat`` (2.3, also in OUTPUT): accept every
        DNATed connection, or with ``StrictForwardPorts=yes`` jump to a chain
        that accepts firewalld's own forward-ports and rejects the rest."""
        if version_tuple(self.c.version) < STRICT_FORWARD_PORTS:
            return super().dnat_rule(name)
        if not self.strict:
            self.add(name, "ct status dnat accept", self.stock("connections firewalld or another tool DNATed"))
            return True
        self.chain(f"{name}_dnat")
        self.add(f"{name}_dnat", REJECT, self.stock("StrictForwardPorts=yes: every other DNATed connection"))
        self.add(name, f"ct status dnat jump {name}_dnat",
                 self.stock("StrictForwardPorts=yes: DNATed connections only to firewalld's forward-ports"))
        return True

    def devices(self) -> list[str]:
        value = self.c.conf.get("NftablesFlowtable", "off").strip()
        return [] if value.lower() in ("off", "no", "") else value.split()

    def flowtable_rule(self, name: str) -> bool:
        """``NftablesFlowtable`` (2.0, PR #1116): established TCP/UDP flows of
        the listed devices go to the ``fastpath`` flowtable, ahead of every
        FORWARD rule (their later packets skip the ruleset; verdicts of
        first packets are unchanged)."""
        if not self.devices():
            return False
        self.add(name, "ct state { established, related } meta l4proto { tcp, udp } flow add @fastpath",
                 Origin(TOOL, f"NftablesFlowtable={' '.join(self.devices())}: established flows offloaded",
                        self.c.conf_where.get("NftablesFlowtable"), generated=True))
        return True

    def render_objects(self) -> list[str]:
        if not self.devices():
            return []
        return ["\tflowtable fastpath {", "\t\thook ingress priority filter + 10",
                f"\t\tdevices = {{ {', '.join(self.devices())} }}", "\t}"]

    def rpfilter(self, log: bool) -> bool:
        """``build_rpfilter_rules`` (2.2, PR #1339): ``loose`` leaves the
        interface out of the FIB lookup; ``*-forward`` checks forwarded
        packets only (in FORWARD, without the neighbour-discovery exemption)."""
        mode = self.c.conf.get("IPv6_rpfilter", "yes").lower()
        if version_tuple(self.c.version) < RPFILTER_MODES or mode not in ("loose", "strict-forward", "loose-forward"):
            return super().rpfilter(log)
        flags = "saddr . mark" if mode.startswith("loose") else "saddr . mark . iif"
        forward = mode.endswith("-forward")
        self.rpfilter_rules("filter_FORWARD" if forward else "filter_PREROUTING", flags, log, exempt_nd=not forward)
        return forward

    def forward_port(self, policy, value, rule, where) -> None:
        """``build_policy_forward_port_rules``: with StrictForwardPorts the
        port is also accepted in the DNAT chain of the hook it arrives at
        (OUTPUT from the host, FORWARD with a to-addr, else INPUT), inserted
        at the top."""
        super().forward_port(policy, value, rule, where)
        if not self.strict:
            return
        port, proto, _to_port, to_addr = value
        chain = "OUTPUT" if "HOST" in policy.ingress_names else ("FORWARD" if to_addr else "INPUT")
        text = str(rule) if rule is not None else f"forward-port {port}/{proto}"
        origin = Origin(TOOL, f"{self.owner(policy)}, {text} (StrictForwardPorts=yes)", where)
        self._put(f"filter_{chain}_dnat", Line(f"ct original proto-dst {_ports(port_range(port))} accept", origin,
                                               where), 0)

    # -- zones and their policies ----------------------------------------------

    def compile(self) -> None:
        super().compile()
        self.render_dispatch()

    def derived(self, zone: Zone) -> list[_Derived]:
        host_out = _Derived(zone, "HOST", zone.name)
        host_out.settings.forward_ports = []
        host_out.settings.rules = []
        return [_Derived(zone, zone.name, "HOST"), host_out, _Derived(zone, "ANY", zone.name),
                _Derived(zone, zone.name, "ANY")]

    def apply_zone(self, zone: Zone) -> None:
        for policy in self.derived(zone):
            self.apply_policy(policy)
        if zone.forward:
            for entry in zone.interfaces:
                self.zone_forward(zone, entry)
            for entry in zone.sources:
                self.zone_forward(zone, entry, source=True)
        self.icmp_block_inversion(zone)

    def zone_dispatch(self, policy, interface, *, append=False, source=None, entry=None) -> None:
        """No per-zone dispatch: :meth:`render_dispatch` builds it from every binding."""

    def base_name(self, policy, table: str, snat: bool = False) -> str:
        if isinstance(policy, _Derived) and "HOST" in policy.ingress_names and table in ("filter", "nat"):
            return "OUT_" + policy.zone.name
        return super().base_name(policy, table, snat)

    def zone_dispatch_chains(self, policy) -> list[tuple[str, str]]:
        """``_get_table_chains_for_zone_dispatch``."""
        if "HOST" in policy.egress_names:
            return [("filter", "INPUT")]
        if "HOST" in policy.ingress_names:
            return [("filter", "OUTPUT"), ("nat", "OUTPUT")]
        if "ANY" in policy.egress_names:
            return [("filter", "FORWARD"), ("nat", "PREROUTING"), ("mangle", "PREROUTING")]
        return [("nat", "POSTROUTING")]

    def policy_dispatch(self, policy) -> None:
        """No dispatch while applying: :meth:`render_dispatch` builds it."""

    # -- the dispatch ----------------------------------------------------------

    def applied_zones(self) -> list[str]:
        """``get_active_zones()``: bound zones by name, then the default zone."""
        out = [z for z in sorted(self.c.zones) if self.c.zones[z].interfaces or self.c.zones[z].sources]
        if self.default_zone not in out:
            out.append(self.default_zone)
        return out

    def bindings(self, zone: str) -> list[tuple[str, str, object]]:
        """(interface, source, entry) of a zone; the default zone adds the
        catch-all interface ``+``."""
        z = self.c.zones[zone]
        out = [(e.value, "", e) for e in z.interfaces]
        if zone == self.default_zone and "+" not in [e.value for e in z.interfaces]:
            out.append(("+", "", None))
        out += [("", _norm_source(e.value), e) for e in z.sources]
        return out

    def render_dispatch(self) -> None:
        zones = self.applied_zones()
        zone_policies = {z: self.derived(self.c.zones[z]) for z in zones}
        bindings = {z: self.bindings(z) for z in zones}
        pairs: list[tuple] = []
        for z in zones:
            host_in, host_out, _any_in, any_out = zone_policies[z]
            for i, s, e in bindings[z]:
                pairs.append((host_in, z, "HOST", (i, s, e), ("", "", None)))
                pairs.append((host_out, "HOST", z, ("", "", None), (i, s, e)))
                for zb in zones:
                    for ib, sb, eb in bindings[zb]:
                        pairs.append((any_out, z, zb, (i, s, e), (ib, sb, eb)))
                        pairs.append((zone_policies[zb][2], z, zb, (i, s, e), (ib, sb, eb)))
        for name in sorted(self.c.policies):
            policy = self.c.policies[name]
            if not self.policy_active(policy):
                continue
            ingress = zones if "ANY" in policy.ingress_names else [
                z for z in policy.ingress_names if z == "HOST" or z in zones]
            egress = zones if "ANY" in policy.egress_names else [
                z for z in policy.egress_names if z == "HOST" or z in zones]
            for zi in ingress:
                for ze in egress:
                    bi = [("", "", None)] if zi == "HOST" else bindings[zi]
                    be = [("", "", None)] if ze == "HOST" else bindings[ze]
                    for a in bi:
                        for b in be:
                            if a[0] == "+" and b[0] == "+":
                                continue
                            pairs.append((policy, zi, ze, a, b))
        families: dict[str, str | None] = {}
        for policy, zi, ze, a, b in pairs:
            if a[1] and b[1] and families.setdefault(a[1], self.source_ipv(a[1])) != \
                    families.setdefault(b[1], self.source_ipv(b[1])):
                continue  # ``must be same IPv4/IPv6 family!``
            derived = isinstance(policy, _Derived)
            chains = self.zone_dispatch_chains(policy) if derived else self.policy_dispatch_chains(policy)
            for table, chain in chains:
                self.pair_rules(policy, table, chain, zi, ze, a, b, last=False)
                if derived:
                    self.pair_rules(policy, table, chain, zi, ze, a, b, last=True)
        if len(self.dispatch_rows) > 20000:
            bound = sum(len(b) for b in bindings.values())
            self.diagnostics.append((f"firewalld 2.x's dispatch grows with the square of the bindings: {bound} "
                                     f"interfaces and sources make {len(self.dispatch_rows)} dispatch rules (firewalld "
                                     "2.x itself slows down or fails at this size; its three-stage dispatch, "
                                     "PR #1558, came after 2.x)", self.c.conf_where.get("DefaultZone")))
        seen = set()
        for chain, key, line in sorted(self.dispatch_rows, key=lambda x: (x[0], x[1])):
            if (chain, line.text, key) in seen:
                continue
            seen.add((chain, line.text, key))
            self._put(chain, line, None, token=("dispatch", key))

    def source_ipv(self, source: str) -> str:
        """``FirewallZone.check_source``: a binding's family ("" for a MAC or
        a hash:mac ipset, an ipset's own family); pairs of sources must agree."""
        if is_mac(source):
            return ""
        if source.startswith("ipset:"):
            ipset = self.c.ipsets.get(source[6:])
            if ipset is None or ipset.type == "hash:mac":
                return ""
            return "ipv6" if ipset.options.get("family") == "inet6" else "ipv4"
        return address_family(source) or ""

    def pair_rules(self, policy, table: str, chain: str, zi: str, ze: str, a, b, last: bool) -> None:
        """``build_policy_ingress_egress_pair_rules``."""
        derived = isinstance(policy, _Derived)
        snat = (table, chain) == ("nat", "POSTROUTING")
        prerouting, postrouting = chain == "PREROUTING", chain == "POSTROUTING"
        (i_if, i_src, i_entry), (e_if, e_src, e_entry) = a, b
        i_if = i_if[:-1] + "*" if i_if.endswith("+") else i_if
        e_if = e_if[:-1] + "*" if e_if.endswith("+") else e_if
        parts = []
        if i_if and i_if != "*":
            parts.append(f'iifname "{i_if}"')
        if e_if and e_if != "*" and not prerouting:
            parts.append(f'oifname "{e_if}"')
        if i_src:
            parts.append(self.addr_match("saddr", i_src))
        if e_src:
            parts.append(self.addr_match("daddr", e_src))
        target = f"{table}_{self.base_name(policy, table, snat)}"
        zone = policy.zone if derived else None
        priority = 0 if derived else policy.priority
        where = (i_entry or e_entry).location if (i_entry or e_entry) is not None else \
            self.c.conf_where.get("DefaultZone")
        head = " ".join(parts)
        owner = self.owner(policy)
        how = _describe(zi, ze, a, b)
        lines = []
        if not last:
            text = _binding_text(zone, zi, ze, a, b) if derived else f"{owner} (priority {priority}): {how}"
            lines.append((0, f"{head} jump {target}".strip(),
                          self._dispatch_origin(policy, text, i_entry or e_entry, scaffolding=prerouting)))
        elif table != "filter" or chain in ("PREROUTING", "OUTPUT"):
            lines.append((2, f"{head} return".strip(), self.stock(f"{owner}: end of dispatch for {how}")))
        elif zone.target in ("default", "ACCEPT", "%%REJECT%%", "DROP"):
            label = "DROP" if zone.target == "DROP" else "REJECT"
            origin = Origin(TOOL, f"zone {zone.name}, target {'default' if zone.target == 'default' else zone.target}"
                            f" ({how})", Location(zone.file, zone.location.line) if zone.file else where,
                            generated=zone.target == "default")
            if self.log_denied != "off" and zone.target != "ACCEPT":
                lines.append((1, f'{head} {_pkttype(self.log_denied)}log prefix '
                                 f'"filter_{self.base_name(policy, table, snat)}_{label}: "'.replace("  ", " ").strip(),
                              origin))
            verdict = REJECT if zone.target in ("default", "%%REJECT%%") else zone.target.lower()
            lines.append((2, f"{head} {verdict}".strip(), origin))
        for last_order, text, origin in lines:
            key = self.sort_key(policy, zi, ze, i_if, i_src, e_if, e_src, priority, last_order, prerouting,
                                postrouting)
            self.dispatch_rows.append((f"{table}_{chain}_POLICIES", key, Line(text, origin, origin.location)))

    def _dispatch_origin(self, policy, text: str, entry, scaffolding: bool = False) -> Origin:
        """A dispatch row's origin: the binding's line. PREROUTING rows are
        firewalld's scaffolding: PREROUTING cannot see the egress interface,
        so firewalld writes one row per egress zone priority, copies that
        differ only in their sort key (not the user's duplicates)."""
        if isinstance(policy, _Derived):
            if entry is None:
                return Origin(TOOL, text, self.c.conf_where.get("DefaultZone"), generated=True)
            return Origin(TOOL, text, entry.location, generated=scaffolding)
        return Origin(TOOL, text, policy.location, generated=policy.stock or scaffolding)

    def sort_key(self, policy, zi, ze, i_if, i_src, e_if, e_src, priority, last_order, prerouting, postrouting):
        """``_policy_dispatch_sort_key`` (+ the policy's name, see the module's note)."""
        derived = isinstance(policy, _Derived)
        i_prio = 0 if zi == "HOST" else _prio(self.c.zones[zi].ingress_priority)
        e_prio = 0 if ze == "HOST" else _prio(self.c.zones[ze].egress_priority)
        i_order = 1 if i_src else (2 if i_if else 0)
        if e_src:
            e_order = 1
        elif e_if or (derived and prerouting):
            e_order = 2
            if prerouting:
                ze, e_if = "", ""
        else:
            e_order = 0
        if i_if == "*":
            i_prio = CATCH_ALL_PRIORITY
        if e_if == "*":
            e_prio = CATCH_ALL_PRIORITY
        ingress = (i_prio, i_order, zi, i_src, i_if)
        egress = (e_prio, e_order, ze, e_src, e_if)
        suffix = (last_order, priority, policy.name if not derived else "")
        return egress + ingress + suffix if postrouting else ingress + egress + suffix


def _prio(value) -> int:
    return 0 if value is None else value




def _binding_text(zone: Zone, zi, ze, a, b) -> str:
    """A zone's dispatch row as 1.x answers read: ``zone public, interface
    eth0`` (the zone's own binding), then where the pair goes."""
    own, other, arrow = (a, (ze, b), "->") if zi == zone.name else (b, (zi, a), "<-")
    i, s, _ = own
    text = f"zone {zone.name}, " + ("every other interface (default zone)" if i == "+" else
                                    f"interface {i}" if i else f"source {s}")
    if other[0] == "HOST":
        return text if arrow == "->" else text + " (from the host)"
    oi, os_, _ = other[1]
    far = "any other interface" if oi == "+" else (f"interface {oi}" if oi else f"source {os_}")
    return f"{text} {arrow} zone {other[0]} {far}"


def _describe(zi, ze, a, b) -> str:
    def side(zone, binding):
        i, s, _ = binding
        if zone == "HOST":
            return "the host"
        if i == "+":
            return f"{zone} (default zone: any other interface)"
        return f"{zone} {'interface ' + i if i else 'source ' + s}"
    return f"{side(zi, a)} -> {side(ze, b)}"
