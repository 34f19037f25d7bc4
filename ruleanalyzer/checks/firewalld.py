"""RA7xx — firewalld: what a zone file says versus what firewalld builds.

These checks read the compiled model (every rule keeps its
:class:`~ruleanalyzer.model.Origin` and XML line) together with the
configuration it came from (``ruleset.meta["firewalld"]``). They fire only
on rulesets read from a firewalld configuration; firewalld's own scaffolding
(``Origin.generated``) is never reported.

- RA701: a deny rich rule takes packets from an allow listed earlier — at
  the same priority firewalld runs every deny before any allow;
- RA702: the reverse surprise — a deny rich rule the user listed first (or
  gave a positive priority) loses packets to an allow that runs earlier;
- RA703: a source or interface binding that never takes effect (an
  overlapping source of a zone dispatched earlier, an interface a wildcard
  of another zone catches first);
- RA704: ``ct status dnat accept`` lets a container's published port
  through zones that do not open it (``StrictForwardPorts=no``);
- RA705: services or ports opened in a zone nothing is bound to;
- RA706: the default zone catches host interfaces the configuration meant
  for another zone (a binding names an interface the host does not have).
"""

from __future__ import annotations

import ipaddress
import re

from ..model import Nat, Rule
from ..space import witness
from ..space.encode import encode_conjunction
from ..fixes.firewalld import commands as _commands
from ..fixes.firewalld import parts as _parts
from .base import Check, Context, Finding, Where, related_rule

FIREWALLD = "firewalld"


class _FirewalldCheck(Check):
    def finding(self, message: str, *, at=None, **kwargs) -> Finding:
        """A finding at an XML location (a zone file) when no rule is built."""
        if at is None:
            return super().finding(message, **kwargs)
        return Finding(self.code, self.name, kwargs.get("severity") or self.severity, message,
                       Where(at.file, at.line, at.column), [], None, kwargs.get("fix"))


def _config(ctx: Context):
    info = ctx.ruleset.meta.get("firewalld")
    return info if isinstance(info, dict) and info.get("config") is not None else None


def _user_rules(ctx: Context, chain_suffix: str):
    """(zone-or-policy chain base, rule) for user rules of chains ending
    in ``chain_suffix`` of ``table inet firewalld``."""
    for table in ctx.ruleset.tables:
        if table.name != "firewalld" or table.family != "inet":
            continue
        for chain in table.chains.values():
            if chain.name.endswith(chain_suffix):
                for rule in chain.rules:
                    if rule.origin and rule.origin.tool == FIREWALLD and not rule.origin.generated:
                        yield chain.name[: -len(chain_suffix)], rule


def _overlap(ctx: Context, a: Rule, b: Rule):
    """A packet both rules match, or None."""
    space = ctx.space
    _, up_a = encode_conjunction(a.matches, space)
    _, up_b = encode_conjunction(b.matches, space)
    node = up_a & up_b & space.valid
    if node == space.false:
        return None
    return witness(space.wrap(node))


def _is_rich(rule: Rule) -> bool:
    return " rule " in f" {rule.origin.text}" if rule.origin else False


def _line(rule: Rule) -> int:
    return rule.location.line if rule.location else 0


def _with_priority(rich: str, priority: int) -> str:
    """A rich rule's text with ``priority`` set, where firewalld writes it
    (``rule priority="-1" family="ipv4" …``)."""
    rich = re.sub(r' priority="-?\d+"', "", rich, count=1)
    return re.sub(r"^rule", f'rule priority="{priority}"', rich, count=1)


def _priority(rule: Rule) -> int:
    m = re.search(r' priority="(-?\d+)"', rule.origin.text if rule.origin else "")
    return int(m.group(1)) if m else 0


def _move(ctx: Context, rule: Rule, priority: int, fallback: str) -> str:
    """Remove a rich rule and add it back at ``priority``, in firewall-cmd terms."""
    p = _parts(rule)
    if p is None or p[2] != "rule":
        return fallback
    kind, name, _, rich = p
    return _commands(kind, name, [f"--remove-rich-rule='{rich}'",
                                 f"--add-rich-rule='{_with_priority(rich, priority)}'"], ctx.ruleset.meta)


class DenyOverridesEarlierAllow(Check):
    """A deny rich rule takes packets from an allow rich rule listed before it."""

    code = "RA701"
    name = "firewalld-deny-overrides-earlier-allow"
    summary = "A deny rich rule overrides an allow rich rule listed earlier in the same zone"
    rationale = (
        "firewalld does not evaluate rich rules in file order: at the same priority every "
        "logging rule runs first, then every drop/reject rule, then every accept rule "
        "(chains _log, _deny, _allow). An accept written above a deny therefore loses the "
        "packets both match. Give the accept a lower priority (priority=\"-1\" puts it in "
        "the _pre chain, before all denies), or narrow the deny.")
    example_dialect = "firewalld"
    bad = ('<zone>\n  <!-- expect: RA701 -->\n  <rule family="ipv4"><source address="192.0.2.10"/>'
           '<service name="ssh"/><accept/></rule>\n  <rule family="ipv4"><source address="192.0.2.0/24"/>'
           '<drop/></rule>\n</zone>\n')
    good = ('<zone>\n  <rule family="ipv4" priority="-1"><source address="192.0.2.10"/>'
            '<service name="ssh"/><accept/></rule>\n  <rule family="ipv4"><source address="192.0.2.0/24"/>'
            '<drop/></rule>\n</zone>\n')
    severity = "warning"

    def run(self, ctx: Context):
        if _config(ctx) is None:
            return
        denies: dict[str, list[Rule]] = {}
        for base, rule in _user_rules(ctx, "_deny"):
            if _is_rich(rule):
                denies.setdefault(base, []).append(rule)
        reported = set()
        for base, allow in _user_rules(ctx, "_allow"):
            if not _is_rich(allow) or allow.action.verdict != "accept":
                continue
            for deny in denies.get(base, []):
                if deny.location.file != allow.location.file or _line(deny) <= _line(allow):
                    continue
                packet = _overlap(ctx, allow, deny)
                if packet is None or (id(allow), id(deny)) in reported:
                    continue
                reported.add((id(allow), id(deny)))
                yield self.finding(
                    f"{allow.origin.text} (line {_line(allow)}) never accepts what the deny rich rule at "
                    f"line {_line(deny)} also matches, e.g. {packet.describe()}: firewalld runs every "
                    "deny rule of a priority before its accept rules, whatever their order in the file",
                    rule=allow, related=[related_rule(deny, "this deny rule runs first")], witness=packet,
                    fix=_move(ctx, allow, -1, 'give the accept rule priority="-1" (or lower) so it runs before '
                                              'the deny rules'))


class AllowOverridesDeny(Check):
    """A deny rich rule loses packets to an allow firewalld runs before it."""

    code = "RA702"
    name = "firewalld-allow-overrides-deny"
    summary = "A deny rich rule listed first (or with a positive priority) is overridden by an allow"
    rationale = (
        "The reverse surprise of RA701: a drop/reject rich rule with a positive priority goes "
        "to the _post chain, which runs after the zone's services, ports and accept rules; a "
        "deny written above an accept with a lower (negative) priority also runs after it. "
        "The packets the earlier allow accepts never reach the deny. Use priority 0 or a "
        "negative priority for the deny, lower than the allow's.")
    example_dialect = "firewalld"
    bad = ('<zone>\n  <service name="ssh"/>\n  <!-- expect: RA702 -->\n  <rule family="ipv4" priority="10">'
           '<source address="198.51.100.0/24"/><drop/></rule>\n</zone>\n')
    good = ('<zone>\n  <service name="ssh"/>\n  <rule family="ipv4">'
            '<source address="198.51.100.0/24"/><drop/></rule>\n</zone>\n')
    severity = "warning"
    ORDER = ("_pre", "_log", "_deny", "_allow", "_post")

    def run(self, ctx: Context):
        if _config(ctx) is None:
            return
        by_base: dict[str, list[tuple[int, Rule]]] = {}
        for stage, suffix in enumerate(self.ORDER):
            for base, rule in _user_rules(ctx, suffix):
                by_base.setdefault(base, []).append((stage, rule))
        for base, rules in by_base.items():
            for stage_d, deny in rules:
                if not _is_rich(deny) or deny.action.verdict != "drop":
                    continue
                if stage_d == 4 and not deny.matches:
                    continue  # a catch-all after the zone (libvirt's priority 32767 reject): what it allows is meant
                for stage_a, allow in rules:
                    if allow.action.verdict != "accept":
                        continue
                    earlier = stage_a < stage_d or (stage_a == stage_d and allow.index < deny.index)
                    if not earlier:
                        continue
                    written_first = allow.location.file != deny.location.file or _line(deny) < _line(allow) \
                        or not _is_rich(allow)
                    if not written_first:
                        continue
                    packet = _overlap(ctx, allow, deny)
                    if packet is None:
                        continue
                    yield self.finding(
                        f"{deny.origin.text} (line {_line(deny)}) does not stop {packet.describe()}: "
                        f"{allow.origin.text} (line {_line(allow)}) accepts it first "
                        f"({'a positive priority runs after the zone' if stage_d == 4 else 'a lower priority runs first'})",
                        rule=deny, related=[related_rule(allow, "accepts these packets first")], witness=packet,
                        fix=_move(ctx, deny, min(_priority(allow), 0) - 1,
                                  "give the deny rule priority 0 or a negative priority below the accepting rule's"))
                    break


class BindingNeverTakesEffect(Check):
    """A zone's source or interface binding is always caught by another zone first."""

    code = "RA703"
    name = "firewalld-binding-never-takes-effect"
    summary = "A source or interface bound to a zone is dispatched to another zone first"
    rationale = (
        "firewalld dispatches a packet to the first matching binding: sources before "
        "interfaces, sources sorted by zone name (not by prefix length), interfaces "
        "newest first, then the default zone. A source inside a broader source of a zone "
        "whose name sorts earlier, or an interface a wildcard (eth+) of another zone "
        "catches first, never reaches its zone. Move the binding, or narrow the other one.")
    example_dialect = "firewalld"
    severity = "warning"

    def run(self, ctx: Context):
        if _config(ctx) is None:
            return
        for table in ctx.ruleset.tables:
            if table.name != "firewalld":
                continue
            if "filter_INPUT_ZONES" in table.chains:
                rules = table.chains["filter_INPUT_ZONES"].rules
            elif "filter_INPUT_POLICIES" in table.chains:
                # firewalld 2.x: each binding's row jumps to its zone's chain
                # and ends in the zone's target; the rows are what compete.
                rules = [r for r in table.chains["filter_INPUT_POLICIES"].rules
                         if str(getattr(r.action, "target", "")).startswith("filter_IN_")
                         and not str(r.action.target).startswith("filter_IN_policy_")]
            else:
                continue
            for i, rule in enumerate(rules):
                if rule.origin is None or rule.origin.generated:
                    continue
                target = rule.action.target if hasattr(rule.action, "target") else None
                for earlier in rules[:i]:
                    if getattr(earlier.action, "target", None) == target:
                        continue
                    covered = _covers(earlier, rule)
                    if covered:
                        yield self.finding(
                            f"{rule.origin.text}: every packet it would take goes to "
                            f"{earlier.origin.text if earlier.origin else earlier} first ({covered}), so "
                            "this binding never takes effect",
                            rule=rule, related=[related_rule(earlier, "dispatched first")],
                            fix=_binding_fix(ctx, rule, earlier))
                        break


def _binding_fix(ctx: Context, rule: Rule, earlier: Rule) -> str:
    """Narrow the binding dispatched first (firewalld 1.x has no zone
    priorities; 2.x's --set-priority says it directly)."""
    mine = re.match(r"^zone (\S+), (source|interface) (\S+)$", rule.origin.text if rule.origin else "")
    theirs = re.match(r"^zone (\S+), (source|interface) (\S+)$", earlier.origin.text if earlier.origin else "")
    if not mine or not theirs:
        return ("narrow or remove the earlier binding (sources are tried in zone-name order, before "
                "interfaces; interfaces newest first)")
    zone, kind, value = theirs.groups()
    narrowed = f"<{value} without {mine.group(3)}>" if kind == "source" else "<the interfaces it is for>"
    return (_commands("zone", zone, [f"--remove-{kind}={value}", f"--add-{kind}={narrowed}"], ctx.ruleset.meta)
            + f" (firewalld 1.x tries sources in zone-name order; on firewalld 2.x: firewall-cmd --permanent "
              f"--zone={mine.group(1)} --set-priority=-1)")


def _covers(earlier: Rule, rule: Rule) -> str | None:
    """Why ``earlier``'s match takes every packet ``rule``'s would (a source
    network inside an earlier one, an interface a wildcard catches)."""
    from ..model import AddressMatch, InterfaceMatch

    def single(r, kind):
        ms = [m for m in r.matches if isinstance(m, kind) and not m.negate]
        return ms[0] if len(ms) == 1 and len(r.matches) <= 2 else None

    a, b = single(earlier, AddressMatch), single(rule, AddressMatch)
    if a and b and a.field == b.field:
        for net in b.networks:
            if not any(net.version == e.version and net.subnet_of(e) for e in a.networks):
                return None
        return f"{b.networks[0]} lies inside {a.networks[0]}"
    ia, ib = single(earlier, InterfaceMatch), single(rule, InterfaceMatch)
    if ia and ib and not any(isinstance(m, AddressMatch) for m in rule.matches):
        for name in ib.names:
            if not any(_if_covers(e, name) for e in ia.names):
                return None
        return f"interface {ib.names[0]} matches {ia.names[0]}"
    return None


def _if_covers(pattern: str, name: str) -> bool:
    for wild in ("*", "+"):
        if pattern.endswith(wild):
            stem = pattern[:-1]
            return name.rstrip("*+").startswith(stem) and (name.startswith(stem))
    return pattern == name


class DnatBypassesZones(Check):
    """``ct status dnat accept`` lets DNATed (container-published) ports through every zone."""

    code = "RA704"
    name = "firewalld-dnat-bypasses-zones"
    summary = "A DNATed (Docker/podman-published) port passes zones that do not open it"
    rationale = (
        "firewalld's INPUT and FORWARD chains accept any connection with ct status dnat "
        "before looking at zones (StrictForwardPorts=no, the only behaviour before "
        "firewalld 2.3). A port Docker or podman publishes with its own DNAT rule is "
        "therefore reachable from every zone, including one whose target is DROP and "
        "which opens nothing. Bind the container's published port to a host address, "
        "or use firewalld policies (and StrictForwardPorts=yes on firewalld ≥ 2.3) so "
        "zone rules decide.")
    example_dialect = "firewalld"
    severity = "warning"

    def run(self, ctx: Context):
        info = _config(ctx)
        if info is None:
            return
        if any(t.name == "firewalld" and "filter_FORWARD_dnat" in t.chains for t in ctx.ruleset.tables):
            return  # StrictForwardPorts=yes on firewalld >= 2.3 (firewalld 1.x ignores the key)
        accept = next((r for t in ctx.ruleset.tables if t.name == "firewalld"
                       for r in t.chains.get("filter_FORWARD", None).rules
                       if "ct status dnat" in str(r)), None) if any(
            t.name == "firewalld" and "filter_FORWARD" in t.chains for t in ctx.ruleset.tables) else None
        if accept is None:
            return
        for table in ctx.ruleset.tables:
            if table.name == "firewalld" and table.family == "inet":
                continue
            for chain in table.chains.values():
                if chain.kind != "nat" and not chain.name.startswith("DOCKER"):
                    continue
                for rule in chain.rules:
                    if isinstance(rule.action, Nat) and rule.action.kind == "dnat":
                        dports = [m for m in rule.matches if getattr(m, "field", "") == "dport"]
                        port = dports[0].text if dports else "a port"
                        who = rule.origin.tool if rule.origin else "another tool"
                        ranges = getattr(dports[0], "ranges", ()) if dports else ()
                        number = (f"{ranges[0][0]}" if ranges and ranges[0][0] == ranges[0][1]
                                  else f"{ranges[0][0]}-{ranges[0][1]}" if ranges else "<port>")
                        to_port = getattr(rule.action, "to_port", None) or number
                        protos = [m.ranges[0][0] for m in rule.matches
                                  if getattr(m, "field", "") == "proto" and getattr(m, "ranges", None)]
                        proto = {6: "tcp", 17: "udp", 132: "sctp", 33: "dccp"}.get(protos[0] if protos else 6, "tcp")
                        to_addr = rule.action.to_addr
                        zone = info.get("default_zone") or "<zone>"
                        fix = ("publish the port on one host address (-p 127.0.0.1:PORT:PORT), or set "
                               "StrictForwardPorts=yes in /etc/firewalld/firewalld.conf (firewalld >= 2.3) and "
                               f"open it in its zone: firewall-cmd --permanent --zone={zone} --add-forward-port="
                               f"port={number}:proto={proto}:toport={to_port}:toaddr={to_addr}; firewall-cmd --reload")
                        yield self.finding(
                            f"{who} DNATs {port} to {rule.action.to_addr}: firewalld's 'ct status dnat "
                            "accept' passes these connections in every zone, whatever the zone opens",
                            rule=rule, related=[related_rule(accept, "accepts every DNATed connection")],
                            fix=fix)


class ServicesInUnboundZone(_FirewalldCheck):
    """A zone opens services or ports but nothing is bound to it."""

    code = "RA705"
    name = "firewalld-services-in-unbound-zone"
    summary = "Services or ports opened in a zone that no interface or source uses"
    rationale = (
        "A zone applies only to packets dispatched to it: from an interface or source bound "
        "to it, or as the default zone. Services, ports and rich rules in any other zone "
        "build no rule at all — usually a sign that the change went to the wrong zone "
        "(firewall-cmd --add-service without --zone edits the default zone, "
        "--permanent --zone=X edits X).")
    example_dialect = "firewalld"
    severity = "info"

    def run(self, ctx: Context):
        info = _config(ctx)
        if info is None:
            return
        config = info["config"]
        active = set(info.get("active_zones", []))
        for name in sorted(config.zones):
            zone = config.zones[name]
            if zone.stock or name in active:
                continue
            opened = [f"service {e.value}" for e in zone.services] + \
                [f"port {e.value[0][0]}/{e.value[1]}" for e in zone.ports] + \
                [f"rich rule at line {r.location.line}" for r in zone.rules]
            if not opened:
                continue
            fix = _commands("zone", name, ["--add-interface=<interface>"], ctx.ruleset.meta)
            first = opened[0].split(" ", 1)
            if first[0] in ("service", "port"):
                fix += (f" (or --add-source=<network>; or move the settings to the zone that is bound, e.g. "
                        f"firewall-cmd --permanent --zone={info.get('default_zone')} --add-{first[0]}={first[1]})")
            yield self.finding(
                f"zone {name} opens {', '.join(opened[:4])}{' …' if len(opened) > 4 else ''}, but no interface "
                f"or source is bound to it and it is not the default zone ({info.get('default_zone')}): "
                "none of it takes effect", fix=fix, at=zone.location)


class DefaultZoneCatchesInterface(_FirewalldCheck):
    """The default zone takes a host interface another zone's binding misnames."""

    code = "RA706"
    name = "firewalld-default-zone-catches-interface"
    summary = "A host interface falls into the default zone while a binding names a missing interface"
    rationale = (
        "An interface no zone names is handled by the default zone. When a zone names an "
        "interface the host does not have (a renamed NIC: eth0 → ens3) and a host interface "
        "is bound to no zone, that interface is most likely the one meant — and it gets the "
        "default zone's services instead. Needs the host's interfaces (a snapshot).")
    example_dialect = "firewalld"
    severity = "warning"

    def run(self, ctx: Context):
        info = _config(ctx)
        host = ctx.ruleset.host
        if info is None or host is None or not host.addresses:
            return
        config = info["config"]
        present = set(host.addresses) - {"lo"}
        bound = {e.value: z for z in config.zones.values() for e in z.interfaces}
        missing = {name: z for name, z in bound.items()
                   if not name.endswith("+") and name not in present}
        loose = sorted(i for i in present if not any(_if_covers(b, i) for b in bound))
        for name, zone in missing.items():
            if not loose:
                break
            entry = next(e for e in zone.interfaces if e.value == name)
            yield self.finding(
                f"zone {zone.name} binds interface {name}, which this host does not have, while "
                f"{', '.join(loose)} {'is' if len(loose) == 1 else 'are'} bound to no zone and get the "
                f"default zone {info.get('default_zone')} instead",
                fix=_commands("zone", zone.name, [f"--remove-interface={name}", f"--add-interface={loose[0]}"],
                              ctx.ruleset.meta), at=entry.location)
