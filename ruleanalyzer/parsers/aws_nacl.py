"""AWS network ACLs (``describe-network-acls`` output) → the rule model.

AWS VPC User Guide, "Network ACL rules": rules are evaluated lowest
RuleNumber first and the first match decides (allow or deny); the ``*`` rule
(number 32767) denies everything else. NACLs are stateless: a reply needs
its own rule in the other direction (the ephemeral ports 1024-65535), so no
stateful rule is added. Each NACL is one ``inet`` table with base chains
``ingress`` (hook input) and ``egress`` (hook output).

The NACL guards the subnet boundary, so its ingress chain runs before a
security group's (priority -10 < 0) and its egress chain after (10 > 0).
"""

from __future__ import annotations

from ..model import PROTOCOL_NAMES, Accept, Drop, IntMatch, Match, Rule, Ruleset, Table
from .cloud_common import (CLOUD_META, Fields, address_match, base_chain, fail, file_meta, load_document,
                           note, parse_network, port_match, proto_match, sniff_keywords, unwrap)

DIALECT = "aws-nacl"
#: Meta key: NACL id → the subnets it is associated with (``--target subnet-…``).
ASSOCIATIONS_META = "aws_nacl_associations"
DEFAULT_RULE_NUMBER = 32767
POLICY_TEXT = "rule * (implicit deny)"
INGRESS_PRIORITY, EGRESS_PRIORITY = -10, 10


def sniff(text: str, name: str) -> int:
    """Sure when the text mentions network-ACL keys."""
    return sniff_keywords(text, ('"NetworkAcls"', '"NetworkAcl"', '"NetworkAclId"'))


def parse(text: str, name: str, inventory=None) -> Ruleset:
    """Parse a network-ACL export (raw, placebo-wrapped, or a CreateNetworkAcl reply)."""
    ruleset = Ruleset(sources=[name])
    ruleset.meta[CLOUD_META] = {"kind": DIALECT, "targets": [], "associations": {}, "vpcs": {}}
    found = False
    for path, payload in unwrap(load_document(text, name), name):
        if not isinstance(payload, dict):
            continue
        if "NetworkAcls" in payload:
            found = True
            for acl in Fields(payload, name, path).objects("NetworkAcls"):
                _add_acl(ruleset, acl)
        elif "NetworkAcl" in payload:
            found = True
            _add_acl(ruleset, Fields(payload["NetworkAcl"], name,
                                     f"{path}.NetworkAcl" if path else "NetworkAcl"))
        elif "NetworkAclId" in payload and "Entries" in payload:
            found = True
            _add_acl(ruleset, Fields(payload, name, path))
    if not found:
        raise fail(name, "", "no NetworkAcls in this file: not a describe-network-acls export",
                   hint="expected {\"NetworkAcls\": [...]} (aws ec2 describe-network-acls)")
    return _resolve(ruleset, inventory)


def _add_acl(ruleset: Ruleset, acl: Fields) -> None:
    acl_id = acl.str("NetworkAclId", required=True)
    info = ruleset.meta[CLOUD_META]
    if ruleset.table(acl_id) is not None:
        note(ruleset, f"network ACL {acl_id} appears twice; the later copy is ignored",
             acl.location())
        return
    info["targets"].append(acl_id)
    info["vpcs"][acl_id] = acl.str("VpcId", "")
    subnets = [a.str("SubnetId", "") for a in acl.objects("Associations")]
    info["associations"][acl_id] = file_meta(ruleset, ASSOCIATIONS_META)[acl_id] = subnets
    loc = acl.location()
    table = ruleset.add_table(Table(acl_id, family="inet", location=loc, dialect=DIALECT))
    chains = {
        False: base_chain(table, "ingress", "input", "drop", POLICY_TEXT, loc,
                          priority=INGRESS_PRIORITY, stateful=False),
        True: base_chain(table, "egress", "output", "drop", POLICY_TEXT, loc,
                         priority=EGRESS_PRIORITY, stateful=False),
    }
    entries = []
    for entry in acl.objects("Entries"):
        number = entry.int("RuleNumber", required=True)
        entries.append((entry.bool("Egress"), number, entry))
    # Lowest number first; the sort is stable, so equal numbers keep file order.
    entries.sort(key=lambda e: (e[0], e[1]))
    for egress, number, entry in entries:
        chain = chains[egress]
        action_word = (entry.str("RuleAction", required=True) or "").lower()
        if action_word not in ("allow", "deny"):
            raise fail(entry.name, entry.at("RuleAction"),
                       f"RuleAction should be allow or deny, found {action_word!r}")
        if number == DEFAULT_RULE_NUMBER:
            # The '*' rule: AWS shows it as a deny-all entry; it is the policy.
            if action_word != "deny" or not _is_catch_all(entry):
                note(ruleset, "rule 32767 (*) is not a deny-all entry; kept as a rule",
                     entry.location(), level="warning")
            else:
                chain.policy_location = entry.location()
                continue
        chain.add(entry_rule(entry, number, action_word, egress))


def _is_catch_all(entry: Fields) -> bool:
    proto = (entry.str("Protocol", "-1") or "").lower()
    cidr = entry.str("CidrBlock") or entry.str("Ipv6CidrBlock") or ""
    return proto in ("-1", "all") and cidr in ("0.0.0.0/0", "::/0")


def entry_rule(entry: Fields, number: int, action_word: str, egress: bool) -> Rule:
    """One NACL entry as a rule (allow → Accept, deny → Drop)."""
    field, word = ("dst", "to") if egress else ("src", "from")
    matches: list[Match] = []
    proto_text = _protocol(entry, matches)
    if entry.has("CidrBlock"):
        cidr = entry.str("CidrBlock")
        net = parse_network(cidr, entry.name, entry.at("CidrBlock"))
    elif entry.has("Ipv6CidrBlock"):
        cidr = entry.str("Ipv6CidrBlock")
        net = parse_network(cidr, entry.name, entry.at("Ipv6CidrBlock"))
    else:
        raise fail(entry.name, entry.path, "entry has neither CidrBlock nor Ipv6CidrBlock")
    matches.append(address_match(field, (net,)))
    matches += entry.unknowns()
    action = Accept() if action_word == "allow" else Drop()
    return Rule(tuple(matches), action, entry.location(),
                text=f"{number}: {action_word} {proto_text} {word} {cidr}", ident=str(number),
                origin=entry.origin())


def _protocol(entry: Fields, matches: list[Match]) -> str:
    """Append protocol, port and ICMP matches; return a readable summary."""
    raw = (entry.str("Protocol", required=True) or "").strip().lower()
    if raw in ("-1", "all"):
        return "all"
    names = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58}
    if raw in names:
        number = names[raw]
    elif raw.isdigit() and 0 <= int(raw) <= 255:
        number = int(raw)
    else:
        raise fail(entry.name, entry.at("Protocol"), f"unknown Protocol {raw!r}",
                   hint="use -1 (all) or a protocol number such as 6 (tcp)")
    label = PROTOCOL_NAMES.get(number, f"proto {number}")
    matches.append(proto_match(number, label))
    if number in (6, 17) and entry.has("PortRange"):
        rng = Fields(entry.get("PortRange"), entry.name, entry.at("PortRange"))
        lo, hi = rng.int("From", required=True), rng.int("To", required=True)
        if not 0 <= lo <= hi <= 65535:
            raise fail(rng.name, rng.path, f"bad port range {lo}-{hi}")
        if not (lo == 0 and hi == 65535):
            matches.append(port_match("dport", [(lo, hi)]))
        label += f" {lo}" if lo == hi else f" {lo}-{hi}"
    elif number in (1, 58) and entry.has("IcmpTypeCode"):
        icmp = Fields(entry.get("IcmpTypeCode"), entry.name, entry.at("IcmpTypeCode"))
        icmp_type, code = icmp.int("Type", -1), icmp.int("Code", -1)
        if icmp_type != -1:
            matches.append(IntMatch("icmp_type", ((icmp_type, icmp_type),), text=f"type {icmp_type}"))
            label += f" type {icmp_type}"
            if code != -1:
                matches.append(IntMatch("icmp_code", ((code, code),), text=f"code {code}"))
                label += f" code {code}"
    return label


def _resolve(ruleset: Ruleset, inventory) -> Ruleset:
    """Resolve inventory-mapped references (imported late: inventory imports us)."""
    if inventory is None:
        return ruleset
    from ..inventory import apply_inventory
    return apply_inventory(ruleset, inventory)
