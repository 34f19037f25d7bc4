"""AWS CloudFormation templates (YAML with the ``!Ref``/``!GetAtt``/``!Sub``
short forms, or JSON) → the rule model.

Resources read (AWS CloudFormation User Guide, resource type reference):
``AWS::EC2::SecurityGroup`` (``SecurityGroupIngress``/``SecurityGroupEgress``
properties), ``AWS::EC2::SecurityGroupIngress``/``Egress`` (attached by
``GroupId``), ``AWS::EC2::NetworkAcl``, ``AWS::EC2::NetworkAclEntry``
(``Egress`` defaults to false) and ``AWS::EC2::SubnetNetworkAclAssociation``.
A group without ``SecurityGroupEgress`` keeps the egress rule EC2 creates
("allows egress traffic on all ports and IP protocols to any location. The
default rule is removed only when you specify one or more egress rules"),
unlike Terraform, which removes it.

Values: literals, ``Parameters`` defaults, ``Mappings`` looked up by
``Fn::FindInMap`` with literal keys, ``Fn::Sub``/``Fn::Join`` of decided
parts; ``!Ref``/``!GetAtt`` of a resource link rules to their group;
anything else (``Fn::If``, ``Fn::ImportValue``, pseudo parameters, a
parameter without a default) is unknown, naming the expression. The template
is data: nothing in it is run. Locations: the file and line of the resource
(YAML) or of its logical id (JSON), the logical id as path.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import RuleAnalyzerError, line_of
from ..model import Location, Origin, Ruleset
from ..safeyaml import LINE_KEY, load_cloudformation_yaml
from .cloud_common import iac_object, note
from .iac_common import (GroupIndex, Resource, Unknown, as_list, build_tables, init_meta,
                         nacl_entries, sg_permission, text)

DIALECT = "cloudformation"
TOOL = "cloudformation"


def sniff(text: str, name: str) -> int:
    """Sure on ``AWSTemplateFormatVersion`` or resource types in ``Resources``."""
    head = text[:65536]
    if "AWSTemplateFormatVersion" in head or ("Resources" in head and "AWS::" in head):
        return 95
    return 0


def parse(text: str, name: str) -> Ruleset:
    doc = _load(text, name)
    resources = doc.get("Resources")
    if not isinstance(resources, dict):
        raise RuleAnalyzerError("not a CloudFormation template: no Resources mapping",
                                Location(name, 1, 1))
    ruleset = Ruleset(sources=[name])
    init_meta(ruleset, DIALECT)
    _Template(ruleset, doc, text, name).build(resources)
    return ruleset


def _load(text: str, name: str) -> dict:
    stripped = text.lstrip("\ufeff").lstrip()
    if stripped.startswith("{"):
        try:
            doc = json.loads(text.lstrip("\ufeff"))
        except json.JSONDecodeError as exc:
            raise RuleAnalyzerError(f"invalid JSON: {exc.msg}", Location(name, exc.lineno, exc.colno),
                                    source_line=line_of(text, exc.lineno)) from None
        except (ValueError, RecursionError) as exc:
            raise RuleAnalyzerError(f"invalid JSON: {str(exc)[:160]}", Location(name, 1, 1)) from None
    else:
        doc = load_cloudformation_yaml(text, name)
    if not isinstance(doc, dict):
        raise RuleAnalyzerError("not a CloudFormation template: the document is not a mapping",
                                Location(name, 1, 1))
    return doc


class _Template:
    def __init__(self, ruleset: Ruleset, doc: dict, text: str, name: str):
        self.ruleset, self.doc, self.text, self.name = ruleset, doc, text, name
        params = doc.get("Parameters") if isinstance(doc.get("Parameters"), dict) else {}
        self.params = {k: (v.get("Default") if isinstance(v, dict) else None)
                       for k, v in params.items() if not k.startswith("__")}
        self.mappings = doc.get("Mappings") if isinstance(doc.get("Mappings"), dict) else {}
        self.groups: dict[str, dict] = {}
        self.group_index = GroupIndex()
        self.acls: dict[str, dict] = {}
        self.acl_index = GroupIndex()

    # -- values --------------------------------------------------------------

    def value(self, v: Any) -> Any:
        """Literals decided, intrinsic functions resolved where their
        inputs are decided, else Unknown naming the expression."""
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if not isinstance(v, dict):
            return v
        keys = [k for k in v if k != LINE_KEY]
        if len(keys) == 1 and (keys[0] == "Ref" or keys[0].startswith("Fn::")):
            return self.function(keys[0], v[keys[0]])
        return {k: self.value(x) for k, x in v.items() if k != LINE_KEY}

    def function(self, fn: str, arg: Any) -> Any:
        expr = _short_form(fn, arg)
        if fn == "Ref" and isinstance(arg, str):
            if arg == "AWS::NoValue":
                return None
            if arg in self.params:
                default = self.params[arg]
                return Unknown(expr, why="parameter without a default") if default is None \
                    else self.value(default)
            if arg in self.doc.get("Resources", {}):
                return Unknown(expr, (arg,))
            return Unknown(expr)
        if fn == "Fn::GetAtt":
            target = arg[0] if isinstance(arg, list) and arg else str(arg).split(".")[0]
            return Unknown(expr, (str(target),))
        if fn == "Fn::Sub":
            template, extra = (arg[0], arg[1]) if isinstance(arg, list) and len(arg) == 2 \
                else (arg, {})
            if not isinstance(template, str) or not isinstance(extra, dict):
                return Unknown(expr)
            unknown: list[Unknown] = []

            def repl(m: re.Match) -> str:
                key = m.group(1)
                if key.startswith("!"):
                    return "${" + key[1:] + "}"
                if key in extra:
                    value = self.value(extra[key])
                elif "." in key:
                    value = self.function("Fn::GetAtt", key.split(".", 1))
                else:
                    value = self.function("Ref", key)
                if isinstance(value, (Unknown, dict, list)) or value is None:
                    unknown.append(value if isinstance(value, Unknown) else Unknown(key))
                    return ""
                return str(value)

            result = re.sub(r"\$\{([^}]*)\}", repl, template)
            if unknown:
                return Unknown(expr, tuple(r for u in unknown for r in u.refs))
            return result
        if fn == "Fn::Join" and isinstance(arg, list) and len(arg) == 2:
            parts = self.value(arg[1])
            if isinstance(arg[0], str) and isinstance(parts, list) and \
                    all(isinstance(p, (str, int)) for p in parts):
                return arg[0].join(map(str, parts))
        if fn == "Fn::FindInMap" and isinstance(arg, list) and len(arg) == 3:
            keys = [self.value(k) for k in arg]
            if all(isinstance(k, str) for k in keys):
                table = self.mappings.get(keys[0])
                row = table.get(keys[1]) if isinstance(table, dict) else None
                if isinstance(row, dict) and keys[2] in row:
                    return self.value(row[keys[2]])
        if fn == "Fn::Select" and isinstance(arg, list) and len(arg) == 2:
            index, items = self.value(arg[0]), self.value(arg[1])
            if isinstance(items, list) and str(index).isdigit() and int(index) < len(items):
                return items[int(index)]
        return Unknown(expr)

    # -- resources -----------------------------------------------------------

    def resource(self, logical_id: str, body: dict) -> Resource:
        line = body.get(LINE_KEY) or _json_line(self.text, logical_id)
        loc = Location(self.name, line, 1 if line else 0, path=logical_id)
        props = body.get("Properties") if isinstance(body.get("Properties"), dict) else {}
        return Resource(str(body.get("Type")), logical_id, props, loc, tool=TOOL)

    def at(self, res: Resource, entry: Any) -> Location:
        line = entry.get(LINE_KEY) if isinstance(entry, dict) else None
        loc = res.location
        return Location(loc.file, line, 1, loc.path) if line else loc

    def build(self, resources: dict) -> None:
        later = []
        for logical_id, body in resources.items():
            if logical_id.startswith("__"):
                continue
            if not isinstance(body, dict):
                # CloudFormation refuses it too ("Every Resources object must contain a Type member").
                line = _json_line(self.text, logical_id) or _yaml_key_line(self.text, logical_id)
                raise RuleAnalyzerError(f"resource {logical_id} is not a mapping with a Type",
                                        Location(self.name, line, 1 if line else 0, path=logical_id))
            kind = body.get("Type")
            if body.get("Condition") is not None and kind in _TYPES:
                note(self.ruleset, f"{logical_id} is created only when condition "
                     f"{body['Condition']} holds; read as created", self.resource(logical_id, body).location)
            if kind == "AWS::EC2::SecurityGroup":
                self.security_group(self.resource(logical_id, body))
            elif kind == "AWS::EC2::NetworkAcl":
                res = self.resource(logical_id, body)
                self.acls[logical_id] = iac_object(
                    {"NetworkAclId": logical_id, "VpcId": text(self.value(res.values.get("VpcId"))),
                     "Associations": [], "Entries": []}, res.location, res.origin)
                self.acl_index.add(logical_id, self.acls[logical_id])
            elif kind in _TYPES:
                later.append(self.resource(logical_id, body))
        for res in later:
            {"AWS::EC2::SecurityGroupIngress": self.rule_resource,
             "AWS::EC2::SecurityGroupEgress": self.rule_resource,
             "AWS::EC2::NetworkAclEntry": self.acl_entry,
             "AWS::EC2::SubnetNetworkAclAssociation": self.association}[res.type](res)
        build_tables(self.ruleset, self.name, self.groups, self.acls, [], {})

    def security_group(self, res: Resource) -> None:
        v = res.values
        group = iac_object({"GroupId": res.address, "GroupName": text(self.value(v.get("GroupName"))),
                            "VpcId": text(self.value(v.get("VpcId"))), "IpPermissions": [],
                            "IpPermissionsEgress": []}, res.location, res.origin)
        self.groups[res.address] = group
        self.group_index.add(res.address, group)
        for key, api, egress in (("SecurityGroupIngress", "IpPermissions", False),
                                 ("SecurityGroupEgress", "IpPermissionsEgress", True)):
            entries = self.value(v.get(key))
            raw = v.get(key) if isinstance(v.get(key), list) else []
            for i, entry in enumerate(as_list(entries)):
                loc = self.at(res, raw[i] if i < len(raw) else None)
                if isinstance(entry, Unknown):  # an !If, an !ImportValue…: any rule, guarded
                    group[api].append(sg_permission(res, loc, protocol=entry, from_port=None,
                                                    to_port=None, v4=[entry], v6=[entry]))
                elif isinstance(entry, dict):
                    group[api].append(self.permission(res, entry, egress, loc))
        if not v.get("SecurityGroupEgress"):
            # EC2's default egress rule, kept unless egress rules are given.
            group["IpPermissionsEgress"].append(sg_permission(
                res, res.location, protocol="-1", from_port=None, to_port=None, v4=["0.0.0.0/0"],
                description="(default) EC2 allows all egress"))

    def permission(self, res: Resource, e: dict, egress: bool, loc: Location) -> dict:
        peer = ("DestinationSecurityGroupId" if egress else "SourceSecurityGroupId")
        prefix = ("DestinationPrefixListId" if egress else "SourcePrefixListId")
        groups = []
        for key in (peer, "SourceSecurityGroupName"):
            if e.get(key) not in (None, ""):
                groups.append(self.group_index.name_of(e[key], res))
        return sg_permission(res, loc, protocol=e.get("IpProtocol"), from_port=e.get("FromPort"),
                             to_port=e.get("ToPort"), v4=e.get("CidrIp"), v6=e.get("CidrIpv6"),
                             prefix_lists=e.get(prefix), groups=groups,
                             description=e.get("Description"))

    def _owner(self, index: GroupIndex, store: dict, value: Any, res: Resource, blank: dict,
               what: str) -> dict:
        address = index.resolve(value, res)
        if address is None:
            address = index.name_of(value, res) or f"({what} of {res.address})"
            if address not in store:
                store[address] = iac_object(dict(blank, **{next(iter(blank)): address}),
                                            res.location, Origin(TOOL, address, res.location))
                index.add(address, store[address])
                note(self.ruleset, f"{res.address}: its {what} {address} is not in this template; "
                     "only the rules written here are known", res.location)
        return store[address]

    def rule_resource(self, res: Resource) -> None:
        v = self.value(res.values)
        ref = v.get("GroupId") if v.get("GroupId") is not None else v.get("GroupName")
        group = self._owner(self.group_index, self.groups, ref, res,
                            {"GroupId": "", "IpPermissions": [], "IpPermissionsEgress": []},
                            "security group")
        egress = res.type.endswith("Egress")
        group["IpPermissionsEgress" if egress else "IpPermissions"].append(
            self.permission(res, v, egress, res.location))

    def acl_entry(self, res: Resource) -> None:
        v = self.value(res.values)
        acl = self._owner(self.acl_index, self.acls, v.get("NetworkAclId"), res,
                          {"NetworkAclId": "", "Associations": [], "Entries": []}, "network ACL")
        ports = v.get("PortRange") if isinstance(v.get("PortRange"), dict) else {}
        icmp = v.get("Icmp") if isinstance(v.get("Icmp"), dict) else {}
        acl["Entries"] += nacl_entries(
            res, res.location, number_value=v.get("RuleNumber"), action=v.get("RuleAction"),
            egress=v.get("Egress", False), protocol=v.get("Protocol"), from_port=ports.get("From"),
            to_port=ports.get("To"), v4=v.get("CidrBlock"), v6=v.get("Ipv6CidrBlock"),
            icmp_type=icmp.get("Type"), icmp_code=icmp.get("Code"), icmp_default=None)

    def association(self, res: Resource) -> None:
        v = self.value(res.values)
        acl = self._owner(self.acl_index, self.acls, v.get("NetworkAclId"), res,
                          {"NetworkAclId": "", "Associations": [], "Entries": []}, "network ACL")
        subnet = v.get("SubnetId")
        acl["Associations"].append({"SubnetId": (subnet.refs[0] if subnet.refs else subnet.expr)
                                    if isinstance(subnet, Unknown) else text(subnet)})


_TYPES = ("AWS::EC2::SecurityGroup", "AWS::EC2::SecurityGroupIngress",
          "AWS::EC2::SecurityGroupEgress", "AWS::EC2::NetworkAcl", "AWS::EC2::NetworkAclEntry",
          "AWS::EC2::SubnetNetworkAclAssociation")


def _short_form(fn: str, arg: Any) -> str:
    """``!Ref AdminCidr``, ``!GetAtt Web.GroupId``, ``!Sub '…'`` as written."""
    tag = "!" + (fn[4:] if fn.startswith("Fn::") else fn)
    if fn == "Fn::GetAtt" and isinstance(arg, list):
        return f"{tag} {'.'.join(map(str, arg))}"
    if isinstance(arg, str):
        return f"{tag} {arg}"
    return f"{tag} {json.dumps(_plain(arg), separators=(',', ':'))}"


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items() if k != LINE_KEY}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def _yaml_key_line(text: str, key: str) -> int | None:
    """The line of ``key:`` in a YAML template (the first one indented)."""
    m = re.search(rf"^[ \t]+{re.escape(str(key))}[ \t]*:", text, re.M)
    return text.count("\n", 0, m.start()) + 1 if m else None


def _json_line(text: str, logical_id: str) -> int:
    match = re.search(r'"' + re.escape(logical_id) + r'"\s*:\s*\{', text)
    return text.count("\n", 0, match.start()) + 1 if match else 0
