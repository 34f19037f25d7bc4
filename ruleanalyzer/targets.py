"""Target selection: which of a cloud export's rules apply to one instance.

A cloud export holds many groups/ACLs/NSGs/networks; the engine needs the
rules in front of one target. ``select_target(ruleset, "sg-1,sg-2")`` keeps
only those, merging security groups into one table (AWS: an instance's
groups are a union — allow if any allows). Target items, comma-separated:

- AWS: ``sg-…`` (or ``sg:sg-…``), ``instance:i-…`` (groups from the
  inventory), ``acl-…`` (or ``nacl:acl-…``);
- GCP: ``tag:web``, ``sa:name@…``, ``all`` (an instance with no tags),
  ``instance:NAME`` (tags/service accounts from the inventory),
  ``network:NAME`` when the file holds several networks;
- Azure: ``nsg:NAME``; ``subnet:NAME`` and ``nic:NAME`` (the NSG attached to
  that subnet/NIC, or ``subnet-nsg:NAME``/``nic-nsg:NAME`` naming the NSG)
  layer two NSGs: inbound subnet then NIC, outbound NIC then subnet;
- any table name.

Without a target, each cloud dialect must have exactly one table; otherwise
a RuleAnalyzerError lists the targets to choose from. Non-cloud tables pass
through unchanged.
"""

from __future__ import annotations

import dataclasses

from .errors import RuleAnalyzerError
from .model import Chain, Diagnostic, Location, OpaqueMatch, Rule, Ruleset, Table
from .parsers.cloud_common import collect_meta, stateful_rule

CLOUD_DIALECTS = ("aws-sg", "aws-nacl", "gcp", "azure")
#: Inbound runs subnet NSG then NIC NSG; outbound NIC then subnet.
LAYER_PRIORITY = {("subnet", "input"): 0, ("nic", "input"): 10,
                  ("nic", "output"): 0, ("subnet", "output"): 10}


def select_target(ruleset: Ruleset, target: str | None = None, inventory=None) -> Ruleset:
    """A new ruleset holding only the tables and rules that apply to ``target``."""
    cloud = {d: [t for t in ruleset.tables if t.dialect == d] for d in CLOUD_DIALECTS}
    cloud = {d: ts for d, ts in cloud.items() if ts}
    if not cloud:
        if target:
            raise RuleAnalyzerError(f"--target {target!r} only applies to cloud exports "
                                    "(AWS, GCP, Azure)")
        return ruleset
    items = [part.strip() for part in (target or "").split(",") if part.strip()]
    selection = _Selection(ruleset, cloud, inventory)
    for item in items:
        selection.add(item)
    out = Ruleset(sources=list(ruleset.sources), diagnostics=list(ruleset.diagnostics),
                  meta=dict(ruleset.meta))
    out.tables = [t for t in ruleset.tables if t.dialect not in CLOUD_DIALECTS]
    out.tables += selection.build()
    out.diagnostics += selection.notes
    out.meta["target"] = target or "(the only one)"
    return out


def available_targets(ruleset: Ruleset) -> list[str]:
    """Every target item this ruleset offers, for error messages and ``--help``."""
    names = collect_meta(ruleset, "aws_sg_names")
    attachments = collect_meta(ruleset, "azure_attachments")
    gcp_targets = collect_meta(ruleset, "gcp_targets")
    out = []
    for table in ruleset.tables:
        if table.dialect == "aws-sg":
            label = names.get(table.name)
            out.append(f"{table.name}" + (f" ({label})" if label else ""))
        elif table.dialect == "aws-nacl":
            out.append(table.name)
        elif table.dialect == "azure":
            att = attachments.get(table.name, {})
            extra = [f"subnet:{s}" for s in att.get("subnets", [])] + \
                    [f"nic:{n}" for n in att.get("nics", [])]
            out.append(f"nsg:{table.name}" + (f" ({', '.join(extra)})" if extra else ""))
        elif table.dialect == "gcp":
            out.append(f"network:{table.name}")
    tags = sorted({t for v in gcp_targets.values() for t in v["tags"]})
    accounts = sorted({a for v in gcp_targets.values() for a in v["service_accounts"]})
    if any(t.dialect == "gcp" for t in ruleset.tables):
        out += [f"tag:{t}" for t in tags] + [f"sa:{a}" for a in accounts] + ["all"]
    return out


class _Selection:
    """The target items chosen so far, per dialect."""

    def __init__(self, ruleset: Ruleset, cloud: dict[str, list[Table]], inventory):
        self.ruleset, self.cloud, self.inventory = ruleset, cloud, inventory
        self.groups: list[Table] = []
        self.group_label: str | None = None
        self.acls: list[Table] = []
        self.networks: list[Table] = []
        self.gcp_tags: set[str] = set()
        self.gcp_accounts: set[str] = set()
        self.gcp_chosen = False
        self.nsg: Table | None = None
        self.layers: dict[str, Table] = {}
        self.layer_names: dict[str, str] = {}  # subnet/nic → the name the target gave
        #: What the user should know about the chosen target (an NSG off its path).
        self.notes: list[Diagnostic] = []

    def fail(self, message: str) -> RuleAnalyzerError:
        choices = available_targets(self.ruleset)
        return RuleAnalyzerError(message, hint="available targets: " + ", ".join(choices[:40])
                                 + (" …" if len(choices) > 40 else ""))

    def table(self, dialect: str, name: str) -> Table:
        for table in self.cloud.get(dialect, []):
            if table.name == name or table.name.lower() == name.lower():
                return table
        raise self.fail(f"no {dialect} target named {name!r} in this export")

    def add(self, item: str) -> None:
        kind, sep, value = item.partition(":")
        kind = kind.lower() if sep else ""
        if (not sep and item.startswith("subnet-")) or \
                (kind == "subnet" and "aws-nacl" in self.cloud and "azure" not in self.cloud):
            self.acls += self._subnet_acls(value if sep else item)
            return
        if not sep and item.startswith("sg-"):
            kind, value = "sg", item
        elif not sep and item.startswith("acl-"):
            kind, value = "nacl", item
        elif not sep and item.lower() == "all":
            kind, value = "all", ""
        if kind == "sg":
            self.groups.append(self.table("aws-sg", value))
        elif kind == "nacl":
            self.acls.append(self.table("aws-nacl", value))
        elif kind == "instance":
            self._instance(value)
        elif kind in ("tag", "sa", "all"):
            self.gcp_chosen = True
            (self.gcp_tags if kind == "tag" else self.gcp_accounts if kind == "sa" else set()).add(value)
        elif kind == "network":
            self.networks.append(self.table("gcp", value))
        elif kind == "nsg":
            self.nsg = self.table("azure", value)
        elif kind in ("subnet", "nic"):
            self.layers[kind] = self._attached(kind, value)
            self.layer_names[kind] = value
        elif kind in ("subnet-nsg", "nic-nsg"):
            self.layers[kind.split("-")[0]] = self.table("azure", value)
        elif not sep:
            for dialect, tables in self.cloud.items():
                for table in tables:
                    if table.name == item:
                        {"aws-sg": self.groups, "aws-nacl": self.acls, "gcp": self.networks}.get(
                            dialect, []).append(table)
                        if dialect == "azure":
                            self.nsg = table
                        return
            raise self.fail(f"no target named {item!r} in this export")
        else:
            raise self.fail(f"unknown target kind {kind!r} in {item!r}")

    def _instance(self, value: str) -> None:
        inv = self.inventory
        if inv is not None and value in inv.aws_instances:
            self.group_label = f"instance:{value}"
            for gid in inv.aws_instances[value]:
                self.groups.append(self.table("aws-sg", gid))
            return
        if inv is not None and value in inv.gcp_instances:
            self.gcp_chosen = True
            self.gcp_tags.update(inv.gcp_instances[value]["tags"])
            self.gcp_accounts.update(inv.gcp_instances[value]["service_accounts"])
            return
        raise RuleAnalyzerError(f"instance {value!r} is not in the inventory",
                                hint="list its security groups (aws.instances) or tags "
                                     "(gcp.instances) in the inventory file, or name them "
                                     "directly: --target sg-1,sg-2 / tag:web")

    def _subnet_acls(self, subnet: str) -> list[Table]:
        """The network ACLs associated with an AWS subnet (the export's
        ``Associations[].SubnetId``; Terraform ``subnet_ids`` and
        ``aws_network_acl_association``; CloudFormation
        ``SubnetNetworkAclAssociation``)."""
        associations = collect_meta(self.ruleset, "aws_nacl_associations")
        found = [t for t in self.cloud.get("aws-nacl", [])
                 if subnet in associations.get(t.name, [])]
        if not found:
            known = sorted({s for subnets in associations.values() for s in subnets if s})
            raise RuleAnalyzerError(
                f"no network ACL in this input is associated with subnet {subnet!r}",
                hint="AWS associates each subnet with exactly one network ACL; the associations "
                     "come from describe-network-acls (Associations[].SubnetId) or the template. "
                     + (f"Subnets with an association here: {', '.join(known[:20])}" if known
                        else "This input lists no subnet associations: name the ACL (acl-…)."))
        return found

    def _attached(self, kind: str, value: str) -> Table:
        attachments = collect_meta(self.ruleset, "azure_attachments")
        key = "subnets" if kind == "subnet" else "nics"
        for table in self.cloud.get("azure", []):
            if value.lower() in (n.lower() for n in attachments.get(table.name, {}).get(key, [])):
                return table
        raise self.fail(f"no NSG in this export is attached to {kind} {value!r}"
                        f" (name the NSG with {kind}-nsg:NAME)")

    # -- building ---------------------------------------------------------

    def build(self) -> list[Table]:
        out: list[Table] = []
        out += self._aws_groups()
        out += self._single("aws-nacl", self.acls)
        out += self._gcp()
        out += self._azure()
        return out

    def _single(self, dialect: str, chosen: list[Table]) -> list[Table]:
        tables = self.cloud.get(dialect, [])
        if chosen:
            return list(dict.fromkeys(chosen))
        if len(tables) <= 1:
            return tables
        raise self.fail(f"this export holds {len(tables)} {dialect} targets: choose one with "
                        "--target")

    def _aws_groups(self) -> list[Table]:
        groups = list(dict.fromkeys(self.groups)) or self._single("aws-sg", [])
        if len(groups) <= 1:
            return groups
        return [merge_groups(groups, self.group_label)]

    def _gcp(self) -> list[Table]:
        networks = self._single("gcp", self.networks)
        if not self.gcp_chosen:
            return networks
        reasons = collect_meta(self.ruleset, "gcp_targets")
        return [filter_gcp(t, reasons, self.gcp_tags, self.gcp_accounts) for t in networks]

    def _azure(self) -> list[Table]:
        if self.layers:
            if self.nsg is not None:
                raise self.fail("give either nsg:NAME or subnet:/nic: layers, not both")
            self._pair_nic_with_subnet()
            return [layered(table, layer) for layer, table in self.layers.items()]
        chosen = self._single("azure", [self.nsg] if self.nsg else [])
        if len(chosen) == 1:
            self._nsg_alone(chosen[0])
        return chosen

    # -- Azure: a NIC sits in a subnet, and both may have an NSG ------------

    def _where(self, table: Table) -> Location:
        return table.location or Location(self.ruleset.sources[0] if self.ruleset.sources else "<input>")

    def _nic_subnets(self, nic: str) -> list[str]:
        """The subnet(s) of NIC ``nic``: the export's NIC resources (or an
        expanded NSG), else the inventory's ``azure.nics``; [] when unknown."""
        from .parsers.azure import NIC_SUBNETS_META

        known = {k.lower(): v for k, v in collect_meta(self.ruleset, NIC_SUBNETS_META).items()}
        if self.inventory is not None:
            for name, subnets in self.inventory.azure_nic_subnets.items():
                known.setdefault(name.lower(), list(subnets))
        return list(known.get(nic.lower(), []))

    def _subnet_nsgs(self) -> dict[str, list[str]]:
        """Loaded NSG name → the subnets it is attached to (only attached ones)."""
        attachments = collect_meta(self.ruleset, "azure_attachments")
        return {t.name: attachments.get(t.name, {}).get("subnets", [])
                for t in self.cloud.get("azure", [])
                if attachments.get(t.name, {}).get("subnets")}

    def _pair_nic_with_subnet(self) -> None:
        """``nic:NAME`` alone: the NSG of the NIC's subnet is layered in front
        when the NIC's subnet is known and that NSG is loaded (Azure applies
        both: inbound subnet NSG then NIC NSG). A subnet NSG off the NIC's
        path is named in a note, and a ``subnet:`` the NIC is not in is an error."""
        nic = self.layer_names.get("nic")
        if nic is None:
            self._subnet_alone()
            return
        where = self._where(self.layers["nic"])
        subnets = [s.lower() for s in self._nic_subnets(nic)]
        by_nsg = self._subnet_nsgs()
        given = self.layer_names.get("subnet")
        if given is not None:
            if subnets and given.lower() not in subnets:
                raise self.fail(f"nic {nic!r} is not in subnet {given!r} (its subnet: "
                                f"{', '.join(self._nic_subnets(nic))}): subnet {given}'s NSG is "
                                "not on its path")
            return
        if "subnet" in self.layers:  # subnet-nsg:NAME named the layer
            return
        if not subnets:
            if by_nsg:
                self.notes.append(Diagnostic(
                    f"nic:{nic}: its subnet is unknown, so the loaded subnet NSG(s) "
                    f"{_nsg_list(by_nsg)} are not layered in front of it; Azure applies the "
                    "subnet's NSG too — name it with subnet:NAME, or give the NIC export or the "
                    "inventory's azure.nics", where, "warning"))
            return
        on_path = [name for name, subs in by_nsg.items() if {x.lower() for x in subs} & set(subnets)]
        if on_path:
            self.layers["subnet"] = self.table("azure", on_path[0])
            self.layer_names["subnet"] = next(x for x in by_nsg[on_path[0]] if x.lower() in subnets)
            self.notes.append(Diagnostic(
                f"nic:{nic} is in subnet {self.layer_names['subnet']}: its NSG {on_path[0]} is "
                "layered in front (inbound: subnet NSG then NIC NSG; outbound: NIC then subnet)",
                where, "info"))
        off = {name: subs for name, subs in by_nsg.items() if name not in on_path}
        if off:
            self.notes.append(Diagnostic(
                f"subnet NSG(s) {_nsg_list(off)} are loaded but not on the path of nic:{nic} "
                f"(it is in subnet {', '.join(self._nic_subnets(nic))})", where, "info"))

    def _subnet_alone(self) -> None:
        """``subnet:NAME`` alone: the NICs known to be in that subnet whose own
        NSG is loaded are named (their traffic also meets that NSG)."""
        from .parsers.azure import NIC_SUBNETS_META

        subnet = self.layer_names.get("subnet")
        if subnet is None:
            return
        attachments = collect_meta(self.ruleset, "azure_attachments")
        nic_nsg = {n.lower(): t.name for t in self.cloud.get("azure", [])
                   for n in attachments.get(t.name, {}).get("nics", [])}
        subnets = collect_meta(self.ruleset, NIC_SUBNETS_META)
        if self.inventory is not None:
            subnets = {**{k: list(v) for k, v in self.inventory.azure_nic_subnets.items()}, **subnets}
        inside = sorted(n for n, subs in subnets.items()
                        if subnet.lower() in (x.lower() for x in subs) and n.lower() in nic_nsg)
        if inside:
            self.notes.append(Diagnostic(
                f"subnet:{subnet}: NIC(s) in it have their own NSG, also on their traffic's path: "
                + ", ".join(f"nic:{n} ({nic_nsg[n.lower()]})" for n in inside)
                + f"; --target subnet:{subnet},nic:NAME layers both",
                self._where(self.layers["subnet"]), "info"))

    def _nsg_alone(self, table: Table) -> None:
        """One NSG chosen (nsg:NAME, or the only one): when it is attached to
        a NIC whose subnet has a loaded NSG too, that NSG also filters the
        NIC's traffic — say so (the answer is this NSG's alone)."""
        attachments = collect_meta(self.ruleset, "azure_attachments").get(table.name, {})
        by_nsg = self._subnet_nsgs()
        for nic in attachments.get("nics", []):
            subnets = {s.lower() for s in self._nic_subnets(nic)}
            also = [n for n, subs in by_nsg.items() if n != table.name and {x.lower() for x in subs} & subnets]
            if also:
                self.notes.append(Diagnostic(
                    f"NSG {table.name} is attached to nic:{nic}, whose subnet's NSG {also[0]} also "
                    f"filters its traffic: --target nic:{nic} layers both", self._where(table), "info"))


def _nsg_list(by_nsg: dict[str, list[str]]) -> str:
    return ", ".join(f"{n} (subnet {', '.join(subs)})" for n, subs in by_nsg.items())


def copy_table(table: Table, name: str | None = None,
               priority_of=None, keep=lambda rule: rule) -> Table:
    """A copy of ``table`` with fresh chains; ``keep`` maps each rule to its
    copy (or None to drop it); ``priority_of(chain)`` gives new priorities."""
    new = Table(name or table.name, family=table.family, location=table.location,
                dialect=table.dialect)
    for chain in table.chains.values():
        priority = priority_of(chain) if priority_of and chain.is_base else chain.priority
        copy = new.add_chain(dataclasses.replace(chain, table=None, rules=[], priority=priority))
        for rule in chain.rules:
            kept = keep(rule)
            if kept is not None:
                copy.add(dataclasses.replace(kept, chain=None, index=0))
    return new


def merge_groups(groups: list[Table], label: str | None = None) -> Table:
    """Several security groups as one table: the union of their allow rules."""
    first = groups[0]
    merged = Table(label or "+".join(g.name for g in groups), family="inet",
                   location=first.location, dialect=first.dialect)
    for chain_name in ("ingress", "egress"):
        template = first.chains[chain_name]
        chain = merged.add_chain(dataclasses.replace(template, table=None, rules=[]))
        chain.add(stateful_rule(template.location or first.location))
        for group in groups:
            for rule in group.chains[chain_name].rules:
                if not rule.implicit:
                    chain.add(dataclasses.replace(rule, chain=None, index=0))
    return merged


def cloud_units(ruleset: Ruleset) -> list[tuple[str, Ruleset]]:
    """Each firewall a cloud input holds, as its own ruleset with a label:
    every security group, network ACL and NSG, and per GCP network every
    target — each target tag, each target service account, and "all
    instances" (an instance with none of them). A non-cloud ruleset is one
    unit (label "")."""
    cloud = [t for t in ruleset.tables if t.dialect in CLOUD_DIALECTS]
    if not cloud:
        return [("", ruleset)]
    rest = [t for t in ruleset.tables if t.dialect not in CLOUD_DIALECTS]
    reasons = collect_meta(ruleset, "gcp_targets")
    tables: list[tuple[str, Table]] = []
    for table in cloud:
        if table.dialect != "gcp":
            tables.append((table.name, table))
            continue
        used = [reasons[m.reason] for r in _rules(table) for m in r.matches
                if isinstance(m, OpaqueMatch) and m.reason in reasons]
        for tag in sorted({t for spec in used for t in spec["tags"]}):
            label = f"{table.name} tag:{tag}"
            tables.append((label, filter_gcp(table, reasons, {tag}, set(), label)))
        for account in sorted({a for spec in used for a in spec["service_accounts"]}):
            label = f"{table.name} sa:{account}"
            tables.append((label, filter_gcp(table, reasons, set(), {account}, label)))
        label = f"{table.name} all instances" if used else table.name
        tables.append((label, filter_gcp(table, reasons, set(), set(), label) if used else table))
    units = []
    for label, table in tables:
        units.append((label, Ruleset(tables=[*rest, table], sources=list(ruleset.sources),
                                     diagnostics=list(ruleset.diagnostics) if not units else [],
                                     meta=dict(ruleset.meta), host=ruleset.host)))
    return units


def _rules(table: Table):
    for chain in table.chains.values():
        yield from chain.rules


def filter_gcp(table: Table, reasons: dict, tags: set[str], accounts: set[str],
               name: str | None = None) -> Table:
    """Keep the rules whose target tags/service accounts include the chosen
    instance's (or that target all instances), without their target match."""
    def keep(rule: Rule) -> Rule | None:
        targets = [m for m in rule.matches if isinstance(m, OpaqueMatch) and m.reason in reasons]
        if not targets:
            return rule
        for match in targets:
            spec = reasons[match.reason]
            if not (tags & set(spec["tags"]) or accounts & set(spec["service_accounts"])):
                return None
        return dataclasses.replace(rule, matches=tuple(m for m in rule.matches
                                                       if m not in targets))
    return copy_table(table, name=name, keep=keep)


def layered(table: Table, layer: str) -> Table:
    """An NSG as the ``subnet`` or ``nic`` layer: base-chain priorities set so
    inbound meets the subnet NSG first and outbound the NIC NSG first."""
    return copy_table(table, name=f"{layer} {table.name}",
                      priority_of=lambda chain: LAYER_PRIORITY[(layer, chain.hook)])
