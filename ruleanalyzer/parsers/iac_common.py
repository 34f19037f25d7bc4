"""What the infrastructure-as-code readers share (Terraform plan/state JSON,
Terraform HCL, CloudFormation): undecided values, resources, and the
translation of resources into the export shapes the ``describe-*`` readers
build rules from — so a group written in Terraform and the same group read
back with ``describe-security-groups`` become the same rules, by
construction (``aws_sg.permission_rules``, ``aws_nacl.entry_rule``,
``gcp.firewall_rules``, ``azure.security_rules`` do the building).

An IaC reader never evaluates anything but literals: a value it cannot
decide (known only after apply, a variable without a value, a function
call) is an :class:`Unknown` naming its expression, and every rule built
from it carries an OpaqueMatch "depends on `var.admin_cidr`", so answers
say "unknown, depends on …" instead of guessing. How each kind of
undecided value is kept sound:

- a condition (address, port, protocol): the rule matches "any value AND
  the unknown" — unknown wherever the value matters;
- one element of a list of addresses: a separate rule for the unknown
  element, the known ones stay decided;
- a rule's place in the order (NACL rule number, GCP/Azure priority): the
  rule goes first, guarded by the unknown. First-or-absent covers every
  real position: where the rule sits in fact, a packet it matches gets
  either an earlier rule's verdict (= the "absent" outcome) or its own;
- its action or direction: one rule per possibility, each guarded.

Provider semantics (Terraform Registry, hashicorp/aws, resource pages
``aws_security_group``, ``aws_network_acl``, ``aws_default_security_group``,
``aws_default_network_acl``; cited again in ``tests/test_iac_semantics.py``):
Terraform removes AWS's default allow-all egress rule from a group it
creates or adopts, and removes every rule of an adopted default group or
default NACL; inline NACL ``icmp_type``/``icmp_code`` default to 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import RuleAnalyzerError
from ..model import Location, Origin, Ruleset
from . import aws_nacl, aws_sg, azure, gcp
from .cloud_common import CLOUD_META, IAC_LOCATION, IAC_ORIGIN, Fields, iac_object, note

#: Resource types each reader turns into rules.
SG_TYPES = ("aws_security_group", "aws_default_security_group")
SG_RULE_TYPES = ("aws_security_group_rule", "aws_vpc_security_group_ingress_rule",
                 "aws_vpc_security_group_egress_rule")
NACL_TYPES = ("aws_network_acl", "aws_default_network_acl")
FIREWALL_TYPES = (*SG_TYPES, *SG_RULE_TYPES, *NACL_TYPES, "aws_network_acl_rule",
                  "aws_network_acl_association", "google_compute_firewall",
                  "azurerm_network_security_group", "azurerm_network_security_rule",
                  "azurerm_subnet_network_security_group_association",
                  "azurerm_network_interface_security_group_association",
                  # its ip_configuration's subnet pairs nic: with subnet: (targets)
                  "azurerm_network_interface")


class Unknown:
    """A value the IaC input does not decide: ``expr`` is how it was
    written (``var.admin_cidr``, ``aws_security_group.web.id``), ``refs``
    the resource addresses it refers to (used to link a rule to its group)."""

    __slots__ = ("expr", "refs", "why")

    def __init__(self, expr: str, refs: tuple[str, ...] = (), why: str = ""):
        self.expr, self.refs, self.why = _short(expr), tuple(refs), why

    @property
    def reason(self) -> str:
        return f"depends on `{self.expr}`" + (f" ({self.why})" if self.why else "")

    def __repr__(self) -> str:
        return f"Unknown({self.expr!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Unknown) and other.expr == self.expr

    def __hash__(self) -> int:
        return hash(self.expr)


def _short(text: str, limit: int = 120) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


@dataclass
class Resource:
    """One resource instance of an IaC input, its values decided or Unknown."""

    type: str
    address: str
    values: dict
    location: Location
    #: Module path of the instance (``module.net.``), prefixed to the
    #: module-relative references of its configuration.
    module: str = ""
    tool: str = "terraform"
    #: Lines of nested blocks, by ``(block type, index)`` (HCL, YAML).
    lines: dict = field(default_factory=dict)

    @property
    def origin(self) -> Origin:
        return Origin(self.tool, self.address, self.location)

    def at(self, block: str | None = None, index: int = 0) -> Location:
        """The location of the resource or one of its nested blocks."""
        line = self.lines.get((block, index)) if block else None
        loc = self.location
        return Location(loc.file, line or loc.line, 0 if line else loc.column, loc.path)

    def get(self, key: str, default: Any = None) -> Any:
        value = self.values.get(key)
        return default if value is None else value


def fail_at(res: Resource, message: str, hint: str | None = None) -> RuleAnalyzerError:
    return RuleAnalyzerError(f"{res.address}: {message}", res.location, hint=hint)


def init_meta(ruleset: Ruleset, kind: str) -> None:
    """The cloud meta every builder appends its targets to."""
    ruleset.meta[CLOUD_META] = {"kind": kind, "targets": [], "names": {}, "vpcs": {},
                                "associations": {}, "attachments": {}, "ids": {}}


# ---------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------


def known(value: Any) -> bool:
    return not isinstance(value, Unknown)


def as_list(value: Any) -> list:
    """A list attribute: None → [], a scalar → [scalar], Unknown kept whole."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    return [value]


def blocks(res_values: dict, key: str) -> list[dict]:
    """Nested blocks (``ingress { … }``) as a list of dicts; an Unknown
    block list is returned as ``[Unknown]``."""
    value = res_values.get(key)
    if isinstance(value, Unknown):
        return [value]  # type: ignore[list-item]
    return [b for b in as_list(value) if isinstance(b, (dict, Unknown))]


def text(value: Any) -> str:
    return value.expr if isinstance(value, Unknown) else "" if value is None else str(value)


def number(value: Any, res: Resource, what: str) -> int | None:
    """An integer attribute (numbers written as strings are accepted)."""
    if value is None or isinstance(value, Unknown):
        return None
    if isinstance(value, bool):
        raise fail_at(res, f"{what} should be a number, found {value!r}")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,9}\s*", value):
        return int(value)
    raise fail_at(res, f"{what} should be a number, found {_short(repr(value), 60)}")


# ---------------------------------------------------------------------------
# AWS security groups
# ---------------------------------------------------------------------------


def sg_permission(res: Resource, loc: Location, *, protocol, from_port, to_port, v4=(), v6=(),
                  prefix_lists=(), groups=(), description=None) -> dict:
    """One IpPermission (describe-security-groups shape) from IaC values."""
    unknown: list[str] = []
    proto = protocol
    if isinstance(proto, Unknown):
        unknown.append(proto.reason)
        proto = "-1"
    if proto is None or proto == "":
        raise fail_at(res, "a security group rule without a protocol")
    perm: dict = {"IpProtocol": str(proto).strip().lower()}
    if perm["IpProtocol"] == "all":
        perm["IpProtocol"] = "-1"
    for key, value in (("FromPort", from_port), ("ToPort", to_port)):
        if isinstance(value, Unknown):
            unknown.append(value.reason)
            perm["FromPort"] = perm["ToPort"] = None
            break
        perm[key] = number(value, res, key)
    if perm.get("FromPort") is None:
        perm.pop("FromPort", None), perm.pop("ToPort", None)
    desc = text(description) or None
    origin = res.origin

    def entry(key: str, value, any_value: str) -> dict:
        if isinstance(value, Unknown):
            return iac_object({key: any_value, "Description": desc}, loc, origin, [value.reason])
        return iac_object({key: str(value), "Description": desc}, loc, origin)

    perm["IpRanges"] = [entry("CidrIp", v, "0.0.0.0/0") for v in as_list(v4)]
    perm["Ipv6Ranges"] = [entry("CidrIpv6", v, "::/0") for v in as_list(v6)]
    perm["PrefixListIds"] = [iac_object({"PrefixListId": text(p), "Description": desc}, loc, origin)
                             for p in as_list(prefix_lists)]
    perm["UserIdGroupPairs"] = [iac_object({"GroupId": g, "Description": desc}, loc, origin)
                                for g in groups]
    return iac_object(perm, loc, origin, unknown)


class GroupIndex:
    """Group resources by address, by id and by name, to link the rule
    resources that name them (by id when known, else through the
    configuration's references)."""

    def __init__(self):
        self.by_address: dict[str, dict] = {}
        self.aliases: dict[str, str] = {}

    def add(self, address: str, group: dict, *aliases: Any) -> None:
        self.by_address[address] = group
        self.aliases[address] = address
        for alias in aliases:
            if isinstance(alias, str) and alias:
                self.aliases.setdefault(alias, address)

    def resolve(self, value: Any, res: Resource) -> str | None:
        """The address of the group ``value`` names, if it is one of ours."""
        if isinstance(value, str):
            return self.aliases.get(value)
        if isinstance(value, Unknown):
            for ref in value.refs:
                for candidate in (res.module + ref, ref):
                    for form in (candidate, re.sub(r"\.(id|name|arn)$", "", candidate)):
                        if form in self.aliases:
                            return self.aliases[form]
                        # The one instance of a counted resource named without its index.
                        instances = [a for a in self.by_address if a.startswith(form + "[")]
                        if len(instances) == 1:
                            return instances[0]
        return None

    def name_of(self, value: Any, res: Resource) -> str:
        """What to call a referenced group in rules: our address when it is
        one of ours, else the id or the expression as written."""
        address = self.resolve(value, res)
        if address:
            return address
        if isinstance(value, Unknown):
            return value.refs[0] if value.refs else value.expr
        return str(value)


# ---------------------------------------------------------------------------
# AWS network ACLs
# ---------------------------------------------------------------------------


def nacl_entries(res: Resource, loc: Location, *, number_value, action, egress, protocol,
                 from_port, to_port, v4=None, v6=None, icmp_type=None, icmp_code=None,
                 icmp_default: int | None = 0) -> list[dict]:
    """describe-network-acls Entries for one IaC rule (more than one when
    its action or direction is undecided: one per possibility, guarded)."""
    unknown: list[str] = []
    rule_number = number(number_value, res, "rule number")
    if isinstance(number_value, Unknown):
        unknown.append(f"its place in the rule order {number_value.reason}")
        rule_number = -1
    if rule_number is None:
        raise fail_at(res, "a network ACL rule without a rule number")
    proto = protocol
    if isinstance(proto, Unknown):
        unknown.append(proto.reason)
        proto = "-1"
    if proto is None:
        raise fail_at(res, "a network ACL rule without a protocol")
    proto = str(proto).strip().lower()
    entry: dict = {"RuleNumber": rule_number, "Protocol": proto}
    if isinstance(v4, Unknown) or (v4 in (None, "") and isinstance(v6, Unknown)):
        unknown.append((v4 if isinstance(v4, Unknown) else v6).reason)
        entry["CidrBlock"] = "0.0.0.0/0" if isinstance(v4, Unknown) else None
        entry["Ipv6CidrBlock"] = "::/0" if not isinstance(v4, Unknown) else None
    elif v4 not in (None, ""):
        entry["CidrBlock"] = str(v4)
    elif v6 not in (None, ""):
        entry["Ipv6CidrBlock"] = str(v6)
    ported = proto in ("tcp", "udp", "6", "17")
    icmp = proto in ("icmp", "icmpv6", "1", "58")
    if ported:
        if isinstance(from_port, Unknown) or isinstance(to_port, Unknown):
            unknown.append((from_port if isinstance(from_port, Unknown) else to_port).reason)
        elif from_port is not None or to_port is not None:
            lo = number(from_port, res, "from_port")
            hi = number(to_port, res, "to_port")
            entry["PortRange"] = {"From": lo if lo is not None else hi,
                                  "To": hi if hi is not None else lo}
    elif icmp:
        codes = {}
        for key, value in (("Type", icmp_type), ("Code", icmp_code)):
            if isinstance(value, Unknown):
                unknown.append(value.reason)
                codes[key] = -1
            elif value is None or value == "":
                codes[key] = -1 if icmp_default is None else icmp_default
            else:
                codes[key] = number(value, res, f"icmp_{key.lower()}")
        entry["IcmpTypeCode"] = codes
    out = []
    actions = ["allow", "deny"] if isinstance(action, Unknown) else [str(action or "").lower()]
    directions = [False, True] if isinstance(egress, Unknown) else \
        [egress is True or str(egress).lower() == "true"]
    for act in actions:
        for direction in directions:
            extra = [x.reason for x in (action, egress) if isinstance(x, Unknown)]
            out.append(iac_object({**entry, "RuleAction": act, "Egress": direction}, loc,
                                  res.origin, unknown + extra))
    return out


# ---------------------------------------------------------------------------
# GCP and Azure: lists with undecided elements
# ---------------------------------------------------------------------------


def split_known(values: list) -> tuple[list, list[Unknown]]:
    """Known elements and undecided ones of a list attribute."""
    values = as_list(values)
    return [v for v in values if known(v)], [v for v in values if not known(v)]


def variants(base: dict, choices: list[tuple[str, list]], unknown: list[str]) -> list[dict]:
    """Copies of ``base`` for every list attribute whose elements are
    partly undecided: one copy with the known elements, one per undecided
    element (any value, guarded by the unknown)."""
    out = [(dict(base), list(unknown))]
    for key, any_value in choices:
        known_values, undecided = split_known(base.get(key))
        if not undecided:
            continue
        grown = []
        for obj, reasons in out:
            if known_values:
                grown.append(({**obj, key: known_values}, reasons))
            for u in undecided:
                # ``any_value`` None: without the attribute (a target list
                # that is undecided applies to any instance, guarded).
                changed = {k: v for k, v in obj.items() if k != key}
                if any_value is not None:
                    changed[key] = [any_value]
                grown.append((changed, reasons + [u.reason]))
        out = grown
    return [iac_object(obj, base[IAC_LOCATION], base[IAC_ORIGIN], reasons)
            for obj, reasons in out]


# ---------------------------------------------------------------------------
# Building the tables
# ---------------------------------------------------------------------------


def build_tables(ruleset: Ruleset, name: str, groups: dict[str, dict], acls: dict[str, dict],
                 firewalls: list[dict], nsgs: dict[str, dict]) -> None:
    """Hand the export-shaped objects to the describe-* builders."""
    for address, group in groups.items():
        aws_sg._add_group(ruleset, Fields(group, name, address))
    for address, acl in acls.items():
        aws_nacl._add_acl(ruleset, Fields(acl, name, address))
    if firewalls:
        gcp.build(ruleset, [Fields(fw, name, fw["name"]) for fw in firewalls], [], name)
    for address, nsg in nsgs.items():
        azure._add_nsg(ruleset, Fields(nsg, name, address))


def unsupported_note(ruleset: Ruleset, res: Resource, why: str) -> None:
    note(ruleset, f"{res.address}: {why}", res.location, level="warning")


Translator = Callable[[Resource], None]
