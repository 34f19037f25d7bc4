"""Fixes for rules read from infrastructure code — Terraform (HCL or a
plan) and CloudFormation — said as the change to the resource that wrote
the rule (``Rule.origin``: its address and line), in that resource's own
attribute names, not as a cloud CLI call that the next apply would undo."""

from __future__ import annotations

from pathlib import PurePath

from . import Add, Narrow, Policy, Remove, Renderer, Spec, _range, spec_of

#: (IaC, cloud dialect) → (source attribute, destination attribute, ports) names.
_TERRAFORM = {"aws-sg": ("cidr_blocks", "cidr_blocks", "from_port/to_port"),
              "aws-nacl": ("cidr_block", "cidr_block", "from_port/to_port"),
              "gcp": ("source_ranges", "destination_ranges", "allow { ports }"),
              "azure": ("source_address_prefix(es)", "destination_address_prefix(es)",
                        "destination_port_range(s)")}
_CLOUDFORMATION = {"aws-sg": ("CidrIp / CidrIpv6", "CidrIp / CidrIpv6", "FromPort/ToPort"),
                   "aws-nacl": ("CidrBlock", "CidrBlock", "PortRange"),
                   "gcp": ("sourceRanges", "destinationRanges", "allowed ports"),
                   "azure": ("sourceAddressPrefix(es)", "destinationAddressPrefix(es)",
                             "destinationPortRange(s)")}


def _resource(rule) -> str:
    """``aws_security_group.web (main.tf:12)``."""
    origin = rule.origin
    loc = origin.location if origin is not None else None
    where = f" ({PurePath(loc.file).name}:{loc.line})" if loc is not None and loc.line else ""
    name = origin.text if origin is not None and origin.text else (rule.chain.table.name if rule.chain else "?")
    return f"{name}{where}"


def _what(spec: Spec) -> str:
    proto = spec.proto or "all protocols"
    ports = f" port{'s' if spec.dport and spec.dport[0] != spec.dport[1] else ''} {_range(spec.dport, '-')}" \
        if spec.dport else ""
    return f"{proto}{ports}"


class Iac(Renderer):
    """Terraform; :class:`CloudFormation` changes the names."""

    names = _TERRAFORM
    apply = "terraform apply"

    def _names(self, rule):
        cloud = rule.chain.table.dialect if rule is not None and rule.chain else ""
        text = rule.origin.text if rule is not None and rule.origin is not None else ""
        if text.startswith(("aws_vpc_security_group_ingress_rule", "aws_vpc_security_group_egress_rule")):
            return ("cidr_ipv4 / cidr_ipv6", "cidr_ipv4 / cidr_ipv6", "from_port/to_port")
        return self.names.get(cloud, self.names["aws-sg"])

    def narrow(self, fix: Narrow) -> str:
        src, _dst, _ports = self._names(fix.rule)
        return (f"in {_resource(fix.rule)}, the rule for {_what(spec_of(fix.rule))}: set {src} to "
                f"{', '.join(fix.src)} instead of any address; then {self.apply}")

    def remove(self, fix: Remove) -> str:
        return f"in {_resource(fix.rule)}, delete the rule for {_what(spec_of(fix.rule))}; then {self.apply}"

    def add(self, fix: Add) -> str:
        table = fix.chain.table.name if fix.chain is not None else "the group"
        src, dst, ports = self.names.get(fix.chain.table.dialect if fix.chain is not None else "aws-sg",
                                         self.names["aws-sg"])
        direction = "egress" if fix.hook == "output" else "ingress"
        nets = ", ".join(fix.spec.src) or "0.0.0.0/0"
        return (f"add to {table} an {direction} rule allowing {_what(fix.spec)} ({ports}) for "
                f"{dst if direction == 'egress' else src} = {nets}; then {self.apply}")

    def policy(self, fix: Policy) -> str:
        return f"drop the rule that allows everything on {fix.hook}; then {self.apply}"


class CloudFormation(Iac):
    names = _CLOUDFORMATION
    apply = "update the stack"
