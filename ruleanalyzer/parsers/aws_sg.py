"""AWS security groups (``describe-security-groups`` output) → the rule model.

AWS VPC User Guide, "Security group rules": a group only allows; traffic no
rule allows is denied; groups are stateful (replies pass whatever the other
direction says); an instance with several groups gets the union of their
rules. Each group is one ``inet`` table with base chains ``ingress`` (hook
input) and ``egress`` (hook output); each permission × each source/target
range is one Accept rule. Group and prefix-list references depend on data
outside the export and are OpaqueMatch until an inventory maps them.
"""

from __future__ import annotations

from ..model import PROTOCOL_NAMES, Accept, IntMatch, Match, Rule, Ruleset, Table
from .cloud_common import (CLOUD_META, Fields, file_meta, address_match, base_chain, fail, load_document,
                           note, parse_network, port_match, proto_match, register_ref,
                           sniff_keywords, unwrap)

DIALECT = "aws-sg"
NAMES_META = "aws_sg_names"
POLICY_TEXT = "implicit deny (no rule allows it)"
_PROTO_NAMES = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58}


def sniff(text: str, name: str) -> int:
    """Sure when the text mentions security-group permission keys."""
    return sniff_keywords(text, ('"IpPermissions"', '"SecurityGroups"', "IpPermissionsEgress"))


def parse(text: str, name: str, inventory=None) -> Ruleset:
    """Parse a security-group export (raw, placebo-wrapped, or in a cassette)."""
    ruleset = Ruleset(sources=[name])
    ruleset.meta[CLOUD_META] = {"kind": DIALECT, "targets": [], "names": {}, "vpcs": {}}
    found_payload = False
    for path, payload in unwrap(load_document(text, name), name):
        groups = _groups_of(payload, name, path)
        if groups is None:
            continue
        found_payload = True
        for group in groups:
            _add_group(ruleset, group)
    if not found_payload:
        raise fail(name, "", "no SecurityGroups in this file: not a describe-security-groups export",
                   hint="expected {\"SecurityGroups\": [...]} (aws ec2 describe-security-groups)")
    return _resolve(ruleset, inventory)


def _groups_of(payload, name: str, path: str) -> list[Fields] | None:
    """The groups of one payload, or None when it holds no security groups."""
    if isinstance(payload, dict):
        if "SecurityGroups" in payload:
            return list(Fields(payload, name, path).objects("SecurityGroups"))
        if "StaleSecurityGroupSet" in payload:
            raise fail(name, f"{path}.StaleSecurityGroupSet" if path else "StaleSecurityGroupSet",
                       "a describe-stale-security-groups response lists stale references only, "
                       "not the groups' rules", hint="export describe-security-groups instead")
        if "GroupId" in payload and ("IpPermissions" in payload or "IpPermissionsEgress" in payload):
            return [Fields(payload, name, path)]
        return None
    if isinstance(payload, list) and payload and all(isinstance(g, dict) and "GroupId" in g
                                                     for g in payload):
        return [Fields(g, name, f"{path}[{i}]") for i, g in enumerate(payload)]
    return None


def _add_group(ruleset: Ruleset, group: Fields) -> None:
    gid = group.str("GroupId", required=True)
    info = ruleset.meta[CLOUD_META]
    if ruleset.table(gid) is not None:
        note(ruleset, f"security group {gid} appears twice; the later copy is ignored",
             group.location())
        return
    info["targets"].append(gid)
    info["names"][gid] = file_meta(ruleset, NAMES_META)[gid] = group.str("GroupName", "")
    info["vpcs"][gid] = group.str("VpcId", "")
    loc = group.location()
    table = ruleset.add_table(Table(gid, family="inet", location=loc, dialect=DIALECT))
    for key, chain_name, hook in (("IpPermissions", "ingress", "input"),
                                  ("IpPermissionsEgress", "egress", "output")):
        chain = base_chain(table, chain_name, hook, "drop", POLICY_TEXT, loc)
        for i, perm in enumerate(group.objects(key)):
            for rule in permission_rules(ruleset, perm, gid, chain_name, i):
                chain.add(rule)


def permission_rules(ruleset: Ruleset, perm: Fields, gid: str, direction: str,
                     index: int) -> list[Rule]:
    """One Accept rule per range (or reference) of one IpPermission."""
    proto_matches, proto_text = _protocol_matches(perm)
    field = "src" if direction == "ingress" else "dst"
    word = "from" if direction == "ingress" else "to"
    ident = f"{gid} {direction}[{index}]"
    rules = []

    def emit(addr: Match, described: str, fields: Fields, comment: str | None) -> None:
        undecided = tuple(dict.fromkeys(perm.unknowns() + fields.unknowns()))
        rules.append(Rule(proto_matches + (addr,) + undecided, Accept(), fields.location(),
                          text=f"allow {proto_text} {word} {described}", comment=comment or None,
                          ident=ident, origin=perm.origin()))

    for key, cidr_key in (("IpRanges", "CidrIp"), ("Ipv6Ranges", "CidrIpv6")):
        for rng in perm.objects(key):
            cidr = rng.str(cidr_key, required=True)
            net = parse_network(cidr, rng.name, rng.at(cidr_key))
            emit(address_match(field, (net,)), cidr, rng, rng.str("Description"))
    for pl in perm.objects("PrefixListIds"):
        pl_id = pl.str("PrefixListId", required=True)
        opaque = register_ref(ruleset, f"depends on the contents of prefix list {pl_id}",
                              "prefix_list", pl_id, field)
        emit(opaque, pl_id, pl, pl.str("Description"))
    for pair in perm.objects("UserIdGroupPairs"):
        ref = pair.str("GroupId") or pair.str("GroupName", required=True)
        peering = pair.str("VpcPeeringConnectionId")
        reason = f"depends on the members of {ref}" + (f" (via peering {peering})" if peering else "")
        opaque = register_ref(ruleset, reason, "security_group", ref, field)
        emit(opaque, ref, pair, pair.str("Description"))
    return rules


def _protocol_matches(perm: Fields) -> tuple[tuple[Match, ...], str]:
    """Protocol/port/ICMP matches of a permission and a readable summary."""
    raw = perm.str("IpProtocol", required=True).strip().lower()
    if raw in ("-1", "all"):
        return (), "all"
    number = _PROTO_NAMES.get(raw)
    if number is None:
        if not raw.isdigit() or not 0 <= int(raw) <= 255:
            raise fail(perm.name, perm.at("IpProtocol"), f"unknown IpProtocol {raw!r}",
                       hint="use tcp, udp, icmp, icmpv6, -1 or a protocol number 0-255")
        number = int(raw)
    label = PROTOCOL_NAMES.get(number, f"proto {number}")
    matches: list[Match] = [proto_match(number, label)]
    lo, hi = perm.int("FromPort"), perm.int("ToPort")
    if number in (6, 17):
        if lo is not None and lo != -1 and not (lo == 0 and hi == 65535):
            hi = lo if hi is None or hi == -1 else hi
            if not 0 <= lo <= hi <= 65535:
                raise fail(perm.name, perm.at("FromPort"), f"bad port range {lo}-{hi}")
            matches.append(port_match("dport", [(lo, hi)]))
            label += f" {lo}" if lo == hi else f" {lo}-{hi}"
    elif number in (1, 58):
        # For ICMP, FromPort is the type and ToPort the code; -1 means any.
        if lo is not None and lo != -1:
            if not 0 <= lo <= 255:
                raise fail(perm.name, perm.at("FromPort"), f"bad ICMP type {lo}")
            matches.append(IntMatch("icmp_type", ((lo, lo),), text=f"type {lo}"))
            label += f" type {lo}"
            if hi is not None and hi != -1:
                if not 0 <= hi <= 255:
                    raise fail(perm.name, perm.at("ToPort"), f"bad ICMP code {hi}")
                matches.append(IntMatch("icmp_code", ((hi, hi),), text=f"code {hi}"))
                label += f" code {hi}"
    # Any other protocol: AWS ignores the port range and allows all ports.
    return tuple(matches), label


__all__ = ["parse", "sniff", "permission_rules"]


def _resolve(ruleset: Ruleset, inventory) -> Ruleset:
    """Resolve inventory-mapped references (imported late: inventory imports us)."""
    if inventory is None:
        return ruleset
    from ..inventory import apply_inventory
    return apply_inventory(ruleset, inventory)
