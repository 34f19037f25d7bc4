"""The inventory file: what cloud rules refer to by name, as addresses.

Security-group references, prefix lists, GCP tags and service accounts,
Azure service tags and application security groups all name sets of
addresses the rule export does not contain; the readers turn them into
OpaqueMatch (unknown). An inventory (YAML, see ``docs/inventory.md``) maps
those names to CIDRs so :func:`apply_inventory` can make them decidable,
and says which groups/tags an instance has so ``--target instance:…`` works.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field

from .errors import RuleAnalyzerError
from .model import AddressMatch, IPNetwork, Location, OpaqueMatch, Ruleset
from .parsers.cloud_common import REFS_META, collect_meta
from .safeyaml import load_yaml

#: Which inventory mapping resolves each kind of reference the readers emit.
_REF_KINDS = {
    "security_group": "security_groups",
    "prefix_list": "prefix_lists",
    "gcp_tag": "gcp_tags",
    "gcp_service_account": "gcp_service_accounts",
    "azure_service_tag": "azure_service_tags",
    "azure_asg": "azure_asgs",
}


@dataclass
class Inventory:
    """Names → address sets, and instances → what they are members of."""

    security_groups: dict[str, tuple[IPNetwork, ...]] = field(default_factory=dict)
    prefix_lists: dict[str, tuple[IPNetwork, ...]] = field(default_factory=dict)
    #: AWS instance id → its security group ids.
    aws_instances: dict[str, tuple[str, ...]] = field(default_factory=dict)
    gcp_tags: dict[str, tuple[IPNetwork, ...]] = field(default_factory=dict)
    gcp_service_accounts: dict[str, tuple[IPNetwork, ...]] = field(default_factory=dict)
    #: GCP instance name → {"tags": (...), "service_accounts": (...)}.
    gcp_instances: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    azure_service_tags: dict[str, tuple[IPNetwork, ...]] = field(default_factory=dict)
    azure_asgs: dict[str, tuple[IPNetwork, ...]] = field(default_factory=dict)
    #: Azure NIC name → the subnet(s) it is in (``azure.nics.NAME.subnet``):
    #: ``--target nic:NAME`` then layers that subnet's NSG in front.
    azure_nic_subnets: dict[str, tuple[str, ...]] = field(default_factory=dict)
    source: str = "<inventory>"

    def addresses(self, kind: str, name: str) -> tuple[IPNetwork, ...] | None:
        """The CIDRs of reference ``name`` of ``kind``, or None when not mapped."""
        attr = _REF_KINDS.get(kind)
        if attr is None:
            return None
        table = getattr(self, attr)
        if name in table:
            return table[name]
        if kind == "azure_service_tag":  # Azure service tags are case-insensitive
            lowered = {k.lower(): v for k, v in table.items()}
            return lowered.get(name.lower())
        return None


def load_inventory(path: str | os.PathLike) -> Inventory:
    """Read an inventory YAML file; errors are located RuleAnalyzerErrors."""
    name = str(path)
    from .loader import read_text

    text = read_text(path)
    return parse_inventory(text, name)


def parse_inventory(text: str, name: str = "<inventory>") -> Inventory:
    """Parse inventory YAML text (see ``docs/inventory.md`` for the layout)."""
    doc = load_yaml(text, name) if text.strip() else {}
    if doc is None:
        doc = {}
    reader = _Reader(name)
    top = reader.mapping(doc, "")
    inv = Inventory(source=name)
    aws = reader.mapping(top.get("aws", {}), "aws")
    inv.security_groups = reader.cidr_map(aws.get("security_groups", {}), "aws.security_groups")
    inv.prefix_lists = reader.cidr_map(aws.get("prefix_lists", {}), "aws.prefix_lists")
    inv.aws_instances = {k: tuple(v) for k, v in reader.name_map(
        aws.get("instances", {}), "aws.instances").items()}
    gcp = reader.mapping(top.get("gcp", {}), "gcp")
    inv.gcp_tags = reader.cidr_map(gcp.get("tags", {}), "gcp.tags")
    inv.gcp_service_accounts = reader.cidr_map(gcp.get("service_accounts", {}),
                                               "gcp.service_accounts")
    instances = reader.mapping(gcp.get("instances", {}), "gcp.instances")
    for inst, spec in instances.items():
        path = f"gcp.instances.{inst}"
        spec = reader.mapping(spec, path)
        inv.gcp_instances[str(inst)] = {
            "tags": tuple(reader.names(spec.get("tags", []), f"{path}.tags")),
            "service_accounts": tuple(reader.names(spec.get("service_accounts", []),
                                                   f"{path}.service_accounts")),
        }
    azure = reader.mapping(top.get("azure", {}), "azure")
    inv.azure_service_tags = reader.cidr_map(azure.get("service_tags", {}), "azure.service_tags")
    inv.azure_asgs = reader.cidr_map(azure.get("application_security_groups", {}),
                                     "azure.application_security_groups")
    nics = reader.mapping(azure.get("nics", {}), "azure.nics")
    for nic, spec in nics.items():
        path = f"azure.nics.{nic}"
        spec = reader.mapping(spec, path)
        inv.azure_nic_subnets[str(nic)] = tuple(reader.names(spec.get("subnet", []), f"{path}.subnet"))
    for key in top:
        if key not in ("aws", "gcp", "azure"):
            raise RuleAnalyzerError(f"unknown inventory section {key!r}", Location(name, path=str(key)),
                                    hint="sections are aws, gcp and azure")
    return inv


class _Reader:
    """Typed reads of the inventory document with located errors."""

    def __init__(self, name: str):
        self.name = name

    def error(self, path: str, message: str) -> RuleAnalyzerError:
        return RuleAnalyzerError(message, Location(self.name, path=path or "$"))

    def mapping(self, value, path: str) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.error(path, f"expected a mapping, found {type(value).__name__}")
        return value

    def names(self, value, path: str) -> list[str]:
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
            raise self.error(path, "expected a list of names")
        return [str(v) for v in value]

    def name_map(self, value, path: str) -> dict[str, list[str]]:
        return {str(k): self.names(v, f"{path}.{k}") for k, v in self.mapping(value, path).items()}

    def cidr_map(self, value, path: str) -> dict[str, tuple[IPNetwork, ...]]:
        out = {}
        for key, cidrs in self.mapping(value, path).items():
            entry = f"{path}.{key}"
            nets = []
            for i, cidr in enumerate(self.names(cidrs if cidrs is not None else [], entry)):
                try:
                    nets.append(ipaddress.ip_network(cidr.strip(), strict=False))
                except ValueError:
                    raise self.error(f"{entry}[{i}]", f"not an IP address or CIDR block: {cidr!r}") \
                        from None
            out[str(key)] = tuple(nets)
        return out


def apply_inventory(ruleset: Ruleset, inventory: Inventory | None) -> Ruleset:
    """Replace the opaque references the inventory maps with address matches.

    Works in place and returns ``ruleset``. The reference's name stays in the
    match text (``sg-123 = 10.0.1.0/24``) so reports still show it."""
    if inventory is None:
        return ruleset
    refs = collect_meta(ruleset, REFS_META)
    if not refs:
        return ruleset
    for chain in ruleset.chains():
        default_field = "dst" if chain.hook == "output" else "src"
        for rule in chain.rules:
            if not any(isinstance(m, OpaqueMatch) and m.reason in refs for m in rule.matches):
                continue
            new_matches = []
            for match in rule.matches:
                ref = refs.get(match.reason) if isinstance(match, OpaqueMatch) else None
                nets = inventory.addresses(ref["kind"], ref["name"]) if ref else None
                if nets is None:
                    new_matches.append(match)
                    continue
                shown = ", ".join(map(str, nets)) or "no addresses"
                new_matches.append(AddressMatch(ref.get("field") or default_field, nets,
                                                text=f"{ref['name']} = {shown}"))
            rule.matches = tuple(new_matches)
    ruleset.meta["inventory"] = inventory.source
    return ruleset


__all__ = ["Inventory", "load_inventory", "parse_inventory", "apply_inventory"]
