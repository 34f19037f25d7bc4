"""Terraform resources (from a plan, a state or HCL) → the export shapes of
the ``describe-*`` readers → rules (see :mod:`.iac_common`).

Attribute names and defaults are the providers' (Terraform Registry,
hashicorp/aws, hashicorp/google, hashicorp/azurerm resource pages):

- ``aws_security_group`` / ``aws_default_security_group``: inline
  ``ingress``/``egress`` blocks (``from_port``, ``to_port``, ``protocol``,
  ``cidr_blocks``, ``ipv6_cidr_blocks``, ``prefix_list_ids``,
  ``security_groups``, ``self``); no egress block means no egress rule
  (Terraform removes AWS's default allow-all egress);
- ``aws_security_group_rule`` (``type``, ``security_group_id``,
  ``source_security_group_id``, ``self``), ``aws_vpc_security_group_ingress_rule``
  / ``_egress_rule`` (``ip_protocol``, ``cidr_ipv4``, ``cidr_ipv6``,
  ``prefix_list_id``, ``referenced_security_group_id``);
- ``aws_network_acl`` / ``aws_default_network_acl`` (inline ``ingress`` /
  ``egress`` with ``rule_no``, ``action``, ``icmp_type``/``icmp_code``
  defaulting to 0, ``subnet_ids``), ``aws_network_acl_rule``
  (``rule_number``, ``rule_action``, ``egress`` default false),
  ``aws_network_acl_association``;
- ``google_compute_firewall`` (``allow``/``deny`` blocks, ``priority``
  default 1000, ``direction`` default INGRESS, source/target tags and
  service accounts, ``disabled``);
- ``azurerm_network_security_group`` (inline ``security_rule``),
  ``azurerm_network_security_rule``, and the subnet / NIC associations.
"""

from __future__ import annotations

from typing import Any

from ..model import Origin, Ruleset
from .cloud_common import file_meta, iac_object, note
from .iac_common import (NACL_TYPES, SG_TYPES, GroupIndex, Resource, Unknown, as_list,
                         blocks, build_tables, nacl_entries, number, sg_permission, text,
                         variants)

_AZURE_KEYS = {
    "name": "name", "priority": "priority", "direction": "direction", "access": "access",
    "protocol": "protocol", "description": "description",
    "source_port_range": "sourcePortRange", "source_port_ranges": "sourcePortRanges",
    "destination_port_range": "destinationPortRange",
    "destination_port_ranges": "destinationPortRanges",
    "source_address_prefix": "sourceAddressPrefix",
    "source_address_prefixes": "sourceAddressPrefixes",
    "destination_address_prefix": "destinationAddressPrefix",
    "destination_address_prefixes": "destinationAddressPrefixes",
}


def build(ruleset: Ruleset, resources: list[Resource], name: str) -> None:
    """Add the tables of every firewall resource in ``resources``."""
    _Builder(ruleset, name).run(resources)


class _Builder:
    def __init__(self, ruleset: Ruleset, name: str):
        self.ruleset, self.name = ruleset, name
        self.groups: dict[str, dict] = {}
        self.group_index = GroupIndex()
        self.acls: dict[str, dict] = {}
        self.acl_index = GroupIndex()
        self.nsgs: dict[str, dict] = {}
        self.nsg_index = GroupIndex()
        self.firewalls: list[dict] = []

    def run(self, resources: list[Resource]) -> None:
        later = []
        for res in resources:
            if res.type in SG_TYPES:
                self.security_group(res)
            elif res.type in NACL_TYPES:
                self.network_acl(res)
            elif res.type == "azurerm_network_security_group":
                self.nsg(res)
            elif res.type == "google_compute_firewall":
                self.firewalls += self.gcp_firewall(res)
            else:
                later.append(res)
        for res in later:
            handler = getattr(self, res.type, None)
            if handler is not None:
                handler(res)
        build_tables(self.ruleset, self.name, self.groups, self.acls, self.firewalls, self.nsgs)

    # -- AWS security groups -------------------------------------------------

    def security_group(self, res: Resource) -> None:
        v = res.values
        group = iac_object({"GroupId": res.address, "GroupName": text(v.get("name")),
                            "VpcId": text(v.get("vpc_id")), "IpPermissions": [],
                            "IpPermissionsEgress": []}, res.location, res.origin)
        self.groups[res.address] = group
        self.group_index.add(res.address, group, v.get("id"))
        for direction, key in (("ingress", "IpPermissions"), ("egress", "IpPermissionsEgress")):
            for i, block in enumerate(blocks(v, direction)):
                group[key].append(self._inline_permission(res, block, res.at(direction, i)))

    def _inline_permission(self, res: Resource, block: Any, loc) -> dict:
        if isinstance(block, Unknown):  # the whole block list is undecided
            return sg_permission(res, loc, protocol=block, from_port=None, to_port=None,
                                 v4=[block], v6=[block])
        groups = [self.group_index.name_of(g, res) for g in as_list(block.get("security_groups"))]
        if block.get("self") is True:
            groups.append(res.address)
        return sg_permission(res, loc, protocol=block.get("protocol"),
                             from_port=block.get("from_port"), to_port=block.get("to_port"),
                             v4=block.get("cidr_blocks"), v6=block.get("ipv6_cidr_blocks"),
                             prefix_lists=block.get("prefix_list_ids"), groups=groups,
                             description=block.get("description"))

    def _group_of(self, value: Any, res: Resource) -> dict:
        """The group a rule resource belongs to; a group that is not in this
        input gets a table of its own holding the rules written here."""
        address = self.group_index.resolve(value, res)
        if address is None:
            address = self.group_index.name_of(value, res) or f"(group of {res.address})"
            if address not in self.groups:
                self.groups[address] = iac_object(
                    {"GroupId": address, "IpPermissions": [], "IpPermissionsEgress": []},
                    res.location, Origin(res.tool, address, res.location))
                self.group_index.add(address, self.groups[address])
                note(self.ruleset, f"{res.address}: its security group {address} is not in this "
                     "input; only the rules written here are known", res.location)
        return self.groups[address]

    def _add_rule(self, res: Resource, kind: Any, group_value: Any, **perm) -> None:
        group = self._group_of(group_value, res)
        kinds = ["ingress", "egress"] if isinstance(kind, Unknown) else [text(kind).lower()]
        for k in kinds:
            p = sg_permission(res, res.location, **perm)
            if isinstance(kind, Unknown):
                p["__unknown__"] = (*p.get("__unknown__", ()), kind.reason)
            group["IpPermissions" if k == "ingress" else "IpPermissionsEgress"].append(p)

    def aws_security_group_rule(self, res: Resource) -> None:
        v = res.values
        groups = [self.group_index.name_of(v["source_security_group_id"], res)] \
            if v.get("source_security_group_id") not in (None, "") else []
        if v.get("self") is True:
            groups.append(self.group_index.name_of(v.get("security_group_id"), res))
        self._add_rule(res, v.get("type"), v.get("security_group_id"), protocol=v.get("protocol"),
                       from_port=v.get("from_port"), to_port=v.get("to_port"),
                       v4=v.get("cidr_blocks"), v6=v.get("ipv6_cidr_blocks"),
                       prefix_lists=v.get("prefix_list_ids"), groups=groups,
                       description=v.get("description"))

    def _vpc_rule(self, res: Resource, kind: str) -> None:
        v = res.values
        ref = v.get("referenced_security_group_id")
        self._add_rule(res, kind, v.get("security_group_id"), protocol=v.get("ip_protocol"),
                       from_port=v.get("from_port"), to_port=v.get("to_port"),
                       v4=v.get("cidr_ipv4"), v6=v.get("cidr_ipv6"),
                       prefix_lists=v.get("prefix_list_id"),
                       groups=[self.group_index.name_of(ref, res)] if ref not in (None, "") else [],
                       description=v.get("description"))

    def aws_vpc_security_group_ingress_rule(self, res: Resource) -> None:
        self._vpc_rule(res, "ingress")

    def aws_vpc_security_group_egress_rule(self, res: Resource) -> None:
        self._vpc_rule(res, "egress")

    # -- AWS network ACLs ----------------------------------------------------

    def network_acl(self, res: Resource) -> None:
        v = res.values
        acl = iac_object({"NetworkAclId": res.address, "VpcId": text(v.get("vpc_id")),
                          "Associations": [], "Entries": []}, res.location, res.origin)
        self.acls[res.address] = acl
        self.acl_index.add(res.address, acl, v.get("id"))
        self._associate(acl, v.get("subnet_ids"))
        for egress, key in ((False, "ingress"), (True, "egress")):
            for i, block in enumerate(blocks(v, key)):
                loc = res.at(key, i)
                if isinstance(block, Unknown):
                    block = {"rule_no": block, "action": block, "protocol": block,
                             "cidr_block": block}
                acl["Entries"] += nacl_entries(
                    res, loc, number_value=block.get("rule_no"), action=block.get("action"),
                    egress=egress, protocol=block.get("protocol"),
                    from_port=block.get("from_port"), to_port=block.get("to_port"),
                    v4=block.get("cidr_block"), v6=block.get("ipv6_cidr_block"),
                    icmp_type=block.get("icmp_type"), icmp_code=block.get("icmp_code"))

    @staticmethod
    def _associate(acl: dict, subnets: Any) -> None:
        for subnet in as_list(subnets):
            name = (subnet.refs[0] if subnet.refs else subnet.expr) \
                if isinstance(subnet, Unknown) else str(subnet)
            acl["Associations"].append({"SubnetId": name})

    def _acl_of(self, value: Any, res: Resource) -> dict:
        address = self.acl_index.resolve(value, res)
        if address is None:
            address = self.acl_index.name_of(value, res)
            if address not in self.acls:
                self.acls[address] = iac_object({"NetworkAclId": address, "Associations": [],
                                                 "Entries": []}, res.location,
                                                Origin(res.tool, address, res.location))
                self.acl_index.add(address, self.acls[address])
                note(self.ruleset, f"{res.address}: its network ACL {address} is not in this "
                     "input; only the rules written here are known", res.location)
        return self.acls[address]

    def aws_network_acl_rule(self, res: Resource) -> None:
        v = res.values
        acl = self._acl_of(v.get("network_acl_id"), res)
        egress = v.get("egress", False)
        acl["Entries"] += nacl_entries(
            res, res.location, number_value=v.get("rule_number"), action=v.get("rule_action"),
            egress=egress, protocol=v.get("protocol"), from_port=v.get("from_port"),
            to_port=v.get("to_port"), v4=v.get("cidr_block"), v6=v.get("ipv6_cidr_block"),
            icmp_type=v.get("icmp_type"), icmp_code=v.get("icmp_code"), icmp_default=None)

    def aws_network_acl_association(self, res: Resource) -> None:
        self._associate(self._acl_of(res.values.get("network_acl_id"), res),
                        res.values.get("subnet_id"))

    # -- GCP -----------------------------------------------------------------

    def gcp_firewall(self, res: Resource) -> list[dict]:
        v = res.values
        unknown: list[str] = []
        priority = number(v.get("priority"), res, "priority")
        if isinstance(v.get("priority"), Unknown):
            unknown.append(f"its place in the rule order {v['priority'].reason}")
            priority = 0
        disabled = v.get("disabled")
        if isinstance(disabled, Unknown):
            unknown.append(f"whether it is enabled {disabled.reason}")
            disabled = False
        network = v.get("network")
        network_name = (network.refs[0] if network.refs else network.expr) \
            if isinstance(network, Unknown) else str(network or "default").rstrip("/").rsplit("/", 1)[-1]
        fw: dict = {"name": text(v.get("name")) or res.address, "selfLink": res.address,
                    "network": network_name,
                    "priority": 1000 if priority is None else priority,
                    "disabled": bool(disabled), "description": text(v.get("description"))}
        for key, api in (("source_ranges", "sourceRanges"), ("destination_ranges", "destinationRanges"),
                         ("source_tags", "sourceTags"), ("target_tags", "targetTags"),
                         ("source_service_accounts", "sourceServiceAccounts"),
                         ("target_service_accounts", "targetServiceAccounts")):
            fw[api] = as_list(v.get(key))
        for key, api in (("allow", "allowed"), ("deny", "denied")):
            entries = []
            for i, block in enumerate(blocks(v, key)):
                entries.append(self._gcp_entry(res, block, res.at(key, i)))
            if entries:
                fw[api] = entries
        direction = v.get("direction")
        directions = ["INGRESS", "EGRESS"] if isinstance(direction, Unknown) \
            else [text(direction).upper() or "INGRESS"]
        out = []
        for d in directions:
            extra = [direction.reason] if isinstance(direction, Unknown) else []
            base = iac_object({**fw, "direction": d}, res.location, res.origin, unknown + extra)
            out += variants(base, [("sourceRanges", "0.0.0.0/0"), ("destinationRanges", "0.0.0.0/0"),
                                   ("sourceTags", None), ("targetTags", None),
                                   ("sourceServiceAccounts", None),
                                   ("targetServiceAccounts", None)], unknown + extra)
        return out

    @staticmethod
    def _gcp_entry(res: Resource, block: Any, loc) -> dict:
        if isinstance(block, Unknown):
            return iac_object({"IPProtocol": "all"}, loc, res.origin, [block.reason])
        unknown = []
        proto = block.get("protocol")
        if isinstance(proto, Unknown):
            unknown.append(proto.reason)
            proto = "all"
        ports = block.get("ports")
        port_list = as_list(ports)
        if isinstance(ports, Unknown) or any(isinstance(p, Unknown) for p in port_list):
            unknown += [p.reason for p in ([ports] if isinstance(ports, Unknown) else port_list)
                        if isinstance(p, Unknown)]
            port_list = []
        return iac_object({"IPProtocol": text(proto), "ports": [str(p) for p in port_list]},
                          loc, res.origin, unknown)

    # -- Azure ---------------------------------------------------------------

    def nsg(self, res: Resource) -> None:
        v = res.values
        nsg = iac_object({"name": res.address, "id": text(v.get("id")), "securityRules": [],
                          "subnets": [], "networkInterfaces": []}, res.location, res.origin)
        self.nsgs[res.address] = nsg
        self.nsg_index.add(res.address, nsg, v.get("id"), v.get("name"))
        for i, block in enumerate(blocks(v, "security_rule")):
            nsg["securityRules"] += self._azure_rules(res, block, res.at("security_rule", i))

    def _azure_rules(self, res: Resource, block: Any, loc) -> list[dict]:
        if isinstance(block, Unknown):
            block = {"name": "?", "priority": block, "direction": block, "access": block,
                     "protocol": block, "source_address_prefix": block,
                     "destination_address_prefix": block}
        rule: dict = {}
        unknown: list[str] = []
        for key, api in _AZURE_KEYS.items():
            value = block.get(key)
            if isinstance(value, Unknown) and key in ("name", "description"):
                value = value.expr
            elif isinstance(value, Unknown) and not key.endswith("es"):
                if key in ("direction", "access"):
                    rule[api] = value
                    continue
                unknown.append(value.reason if key != "priority"
                               else f"its place in the rule order {value.reason}")
                value = -1 if key == "priority" else "*"
            rule[api] = value if key.endswith("es") or key == "priority" else text(value)
        for side in ("source", "destination"):
            ids = as_list(block.get(f"{side}_application_security_group_ids"))
            rule[f"{side}ApplicationSecurityGroups"] = [{"id": text(i)} for i in ids]
        out = []
        for access in (["Allow", "Deny"] if isinstance(rule["access"], Unknown) else [rule["access"]]):
            for direction in (["Inbound", "Outbound"] if isinstance(rule["direction"], Unknown)
                              else [rule["direction"]]):
                extra = [x.reason for x in (rule["access"], rule["direction"])
                         if isinstance(x, Unknown)]
                base = iac_object({**rule, "access": access, "direction": direction}, loc,
                                  res.origin, unknown + extra)
                out += variants(base, [("sourceAddressPrefixes", "*"),
                                       ("destinationAddressPrefixes", "*"),
                                       ("sourcePortRanges", "*"),
                                       ("destinationPortRanges", "*")], unknown + extra)
        return out

    def _nsg_of(self, value: Any, res: Resource) -> dict:
        if value is None or value == "":
            # names no group (Azure refuses an empty name): read alone, not as
            # one group with every other such rule of the input
            address = f"{res.address} (no network security group named)"
            if address not in self.nsgs:
                self.nsgs[address] = iac_object({"name": address, "securityRules": [], "subnets": [],
                                                 "networkInterfaces": []},
                                                res.location, Origin(res.tool, address, res.location))
                note(self.ruleset, f"{res.address}: names no network security group; its rules "
                     "are read alone", res.location)
            return self.nsgs[address]
        address = self.nsg_index.resolve(value, res)
        if address is None:
            address = self.nsg_index.name_of(value, res)
            if address not in self.nsgs:
                self.nsgs[address] = iac_object({"name": address, "securityRules": [],
                                                 "subnets": [], "networkInterfaces": []},
                                                res.location, Origin(res.tool, address, res.location))
                self.nsg_index.add(address, self.nsgs[address])
                note(self.ruleset, f"{res.address}: its network security group {address} is not "
                     "in this input; only the rules written here are known", res.location)
        return self.nsgs[address]

    def azurerm_network_security_rule(self, res: Resource) -> None:
        nsg = self._nsg_of(res.values.get("network_security_group_name"), res)
        nsg["securityRules"] += self._azure_rules(res, res.values, res.location)

    def _attach(self, res: Resource, key: str, kind: str) -> None:
        nsg = self._nsg_of(res.values.get("network_security_group_id"), res)
        nsg[kind].append({"id": _attached_name(res.values.get(key))})

    def azurerm_network_interface(self, res: Resource) -> None:
        """The subnets of a NIC's ``ip_configuration`` blocks, named as the
        associations name them (the resource address while ids are unknown)."""
        from .azure import NIC_SUBNETS_META

        subnets = [_attached_name(b.get("subnet_id")) for b in blocks(res.values, "ip_configuration")
                   if isinstance(b, dict) and b.get("subnet_id")]
        known = file_meta(self.ruleset, NIC_SUBNETS_META)
        for key in (res.address, res.values.get("name"), res.values.get("id")):
            if isinstance(key, str) and key:
                known[key.rstrip("/").rsplit("/", 1)[-1] if key.startswith("/") else key] = subnets

    def azurerm_subnet_network_security_group_association(self, res: Resource) -> None:
        self._attach(res, "subnet_id", "subnets")

    def azurerm_network_interface_security_group_association(self, res: Resource) -> None:
        self._attach(res, "network_interface_id", "networkInterfaces")


def _attached_name(value: Any) -> str:
    """How an association names a subnet or NIC: the referenced resource's
    address while its id is unknown, else the id's last segment."""
    if isinstance(value, Unknown):
        return value.refs[0] if value.refs else value.expr
    return str(value or "").rstrip("/").rsplit("/", 1)[-1]


__all__ = ["build", "number"]
