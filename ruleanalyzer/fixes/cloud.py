"""Fixes as cloud CLI calls: ``aws ec2`` for security groups and network
ACLs, ``gcloud compute`` for GCP firewall rules and hierarchical policies,
``az network nsg`` for Azure. Ids and names come from the export (the
group, the ACL, the rule's name or number); what the export cannot know is
left as a ``<placeholder>``."""

from __future__ import annotations

import re

from . import Add, Narrow, Policy, Remove, Renderer, Spec, YOUR_NETWORKS, _range, spec_of

_ANY = ("0.0.0.0/0", "::/0")


def _direction(chain) -> str:
    """``ingress`` / ``egress`` from the chain the readers build."""
    name = chain.name.lower() if chain is not None else ""
    return "egress" if ("egress" in name or "outbound" in name or (chain is not None and chain.hook == "output")) \
        else "ingress"


def _proto(spec: Spec) -> str:
    return spec.proto or "-1"


def _aws_permission(spec: Spec, src: tuple[str, ...]) -> str:
    parts = [f"IpProtocol={_proto(spec)}"]
    if spec.dport and spec.proto in ("tcp", "udp"):
        parts += [f"FromPort={spec.dport[0]}", f"ToPort={spec.dport[1]}"]
    ranges = [f"{{CidrIpv6={s}}}" if ":" in s else f"{{CidrIp={s}}}" for s in src or ("0.0.0.0/0",)]
    v6 = [r for r in ranges if "Ipv6" in r]
    v4 = [r for r in ranges if "Ipv6" not in r]
    if v4:
        parts.append(f"IpRanges=[{','.join(v4)}]")
    if v6:
        parts.append(f"Ipv6Ranges=[{','.join(v6)}]")
    return "'" + ",".join(parts) + "'"


class AwsSg(Renderer):
    def _call(self, verb: str, group: str, direction: str, spec: Spec, src) -> str:
        return (f"aws ec2 {verb}-security-group-{direction} --group-id {group} "
                f"--ip-permissions {_aws_permission(spec, src)}")

    def remove(self, fix: Remove) -> str:
        spec = spec_of(fix.rule)
        return self._call("revoke", fix.rule.chain.table.name, _direction(fix.rule.chain), spec, spec.src)

    def narrow(self, fix: Narrow) -> str:
        spec, group, direction = spec_of(fix.rule), fix.rule.chain.table.name, _direction(fix.rule.chain)
        return (self._call("authorize", group, direction, spec, fix.src) + "; "
                + self._call("revoke", group, direction, spec, spec.src))

    def add(self, fix: Add) -> str:
        group = fix.chain.table.name if fix.chain is not None else "<group id>"
        return self._call("authorize", group, _direction(fix.chain) if fix.chain else
                          ("egress" if fix.hook == "output" else "ingress"), fix.spec, fix.spec.src)


class AwsNacl(Renderer):
    def _entry(self, verb: str, acl: str, direction: str, number: str, spec: Spec, cidr: str) -> str:
        words = [f"aws ec2 {verb}-network-acl-entry --network-acl-id {acl}", f"--{direction}",
                 f"--rule-number {number}", f"--protocol {_proto(spec)}"]
        if spec.dport and spec.proto in ("tcp", "udp"):
            words.append(f"--port-range From={spec.dport[0]},To={spec.dport[1]}")
        words += [f"--{'ipv6-cidr-block' if ':' in cidr else 'cidr-block'} {cidr}",
                  f"--rule-action {'allow' if spec.verdict == 'accept' else 'deny'}"]
        return " ".join(words)

    def add(self, fix: Add) -> str:
        acl = fix.chain.table.name if fix.chain is not None else "<acl id>"
        direction = "egress" if fix.hook == "output" or _direction(fix.chain) == "egress" else "ingress"
        cidr = fix.spec.src[0] if fix.spec.src else "0.0.0.0/0"
        return self._entry("create", acl, direction, "<number below the entry that denies it>",
                           fix.spec, cidr)

    def remove(self, fix: Remove) -> str:
        rule = fix.rule
        return (f"aws ec2 delete-network-acl-entry --network-acl-id {rule.chain.table.name} "
                f"--{_direction(rule.chain)} --rule-number {rule.ident or '<number>'}")

    def narrow(self, fix: Narrow) -> str:
        rule, spec = fix.rule, spec_of(fix.rule)
        return self._entry("replace", rule.chain.table.name, _direction(rule.chain), rule.ident or "<number>",
                           spec, fix.src[0])


def _gcp_rules(spec: Spec) -> str:
    if not spec.proto:
        return "all"
    return f"{spec.proto}:{_range(spec.dport, '-')}" if spec.dport else spec.proto


class Gcp(Renderer):
    _POLICY = re.compile(r"^hierarchy policy (\S+) (?:ingress|egress)$")

    def _policy(self, rule):
        m = self._POLICY.match(rule.chain.name if rule.chain else "")
        return m.group(1) if m else None

    def remove(self, fix: Remove) -> str:
        rule, policy = fix.rule, self._policy(fix.rule)
        if policy:
            return f"gcloud compute firewall-policies rules delete {rule.ident} --firewall-policy={policy}"
        return f"gcloud compute firewall-rules delete {rule.ident}"

    def narrow(self, fix: Narrow) -> str:
        rule, policy, nets = fix.rule, self._policy(fix.rule), ",".join(fix.src)
        if policy:
            return (f"gcloud compute firewall-policies rules update {rule.ident} --firewall-policy={policy} "
                    f"--src-ip-ranges={nets}")
        return f"gcloud compute firewall-rules update {rule.ident} --source-ranges={nets}"

    def add(self, fix: Add) -> str:
        network = fix.chain.table.name if fix.chain is not None else "<network>"
        direction = "EGRESS" if fix.hook == "output" else "INGRESS"
        ranges = ",".join(fix.spec.src) if fix.spec.src else ("0.0.0.0/0")
        where = "--destination-ranges" if direction == "EGRESS" else "--source-ranges"
        return (f"gcloud compute firewall-rules create <name> --network={network} --direction={direction} "
                f"--action={'ALLOW' if fix.spec.verdict == 'accept' else 'DENY'} "
                f"--rules={_gcp_rules(fix.spec)} {where}={ranges} --priority=<below the rule that denies it>")


class Azure(Renderer):
    def _group(self, nsg: str) -> str:
        ids = (self.meta.get("cloud") or {}).get("ids") or {}
        m = re.search(r"/resourceGroups/([^/]+)/", ids.get(nsg, ""), re.IGNORECASE)
        return m.group(1) if m else "<resource group>"

    def _rule(self, rule) -> str:
        nsg = rule.chain.table.name
        return f"--resource-group {self._group(nsg)} --nsg-name {nsg} --name {rule.ident}"

    def remove(self, fix: Remove) -> str:
        return f"az network nsg rule delete {self._rule(fix.rule)}"

    def narrow(self, fix: Narrow) -> str:
        return (f"az network nsg rule update {self._rule(fix.rule)} "
                f"--source-address-prefixes {' '.join(fix.src)}")

    def add(self, fix: Add) -> str:
        nsg = fix.chain.table.name if fix.chain is not None else "<nsg>"
        spec = fix.spec
        direction = "Outbound" if fix.hook == "output" else "Inbound"
        words = [f"az network nsg rule create --resource-group {self._group(nsg)} --nsg-name {nsg}",
                 "--name <name> --priority <below the rule that denies it>", f"--direction {direction}",
                 f"--access {'Allow' if spec.verdict == 'accept' else 'Deny'}",
                 f"--protocol {(spec.proto or '*').capitalize() if spec.proto else '*'}"]
        if spec.dport:
            words.append(f"--destination-port-ranges {_range(spec.dport, '-')}")
        if spec.src:
            words.append(f"--source-address-prefixes {' '.join(spec.src)}")
        return " ".join(words)

    def policy(self, fix: Policy) -> str:
        return super().policy(fix)
