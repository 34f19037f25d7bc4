"""Azure network security groups (ARM REST and ``az network nsg show/list``
JSON) → the rule model.

Azure docs, "How network security groups filter network traffic" and
"Network security groups" overview: rules apply by priority (lower number
first) until one matches; NSGs are stateful; each NSG has default security
rules (AllowVnetInBound 65000, AllowAzureLoadBalancerInBound 65001,
DenyAllInBound 65500, AllowVnetOutBound 65000, AllowInternetOutBound 65001,
DenyAllOutBound 65500). Service tags and application security groups name
address sets kept outside the export: they are OpaqueMatch until an
inventory maps them.

One ``inet`` table per NSG with base chains ``inbound`` (hook input) and
``outbound`` (hook output). Subnet + NIC layering (inbound: subnet NSG then
NIC NSG; outbound: NIC then subnet) is made by
:func:`ruleanalyzer.targets.select_target`, which orders the two tables'
base chains by priority.
"""

from __future__ import annotations

import ipaddress

from ..model import Accept, Drop, IntMatch, Match, Rule, Ruleset, Table
from .cloud_common import (CLOUD_META, Fields, file_meta, address_match, base_chain, fail, load_document,
                           note, parse_port_range, port_match, register_ref, sniff_keywords, unwrap)

DIALECT = "azure"
NSG_TYPE = "microsoft.network/networksecuritygroups"
ATTACHMENTS_META = "azure_attachments"
#: NIC name → the subnets its IP configurations are in (from NIC resources
#: in the file, or NICs an NSG export expands); pairs nic: with subnet:.
NIC_SUBNETS_META = "azure_nic_subnets"
NIC_TYPE = "microsoft.network/networkinterfaces"
RULE_TYPE = "microsoft.network/networksecuritygroups/securityrules"
#: Azure "Icmp" covers ICMP for IPv4 and ICMPv6.
_PROTOCOLS = {"tcp": ((6, 6),), "udp": ((17, 17),), "icmp": ((1, 1), (58, 58)),
              "esp": ((50, 50),), "ah": ((51, 51),)}
_ANY = ("*", "any", "0.0.0.0/0", "internet/0")

#: The default security rules every NSG has (Azure docs, "Default security rules").
DEFAULT_RULES = (
    ("AllowVnetInBound", 65000, "Inbound", "Allow", "VirtualNetwork", "VirtualNetwork"),
    ("AllowAzureLoadBalancerInBound", 65001, "Inbound", "Allow", "AzureLoadBalancer", "*"),
    ("DenyAllInBound", 65500, "Inbound", "Deny", "*", "*"),
    ("AllowVnetOutBound", 65000, "Outbound", "Allow", "VirtualNetwork", "VirtualNetwork"),
    ("AllowInternetOutBound", 65001, "Outbound", "Allow", "*", "Internet"),
    ("DenyAllOutBound", 65500, "Outbound", "Deny", "*", "*"),
)


def sniff(text: str, name: str) -> int:
    """Sure on the NSG resource type or security-rule field names."""
    return sniff_keywords(text, ("Microsoft.Network/networkSecurityGroups", '"securityRules"',
                                 '"defaultSecurityRules"'),
                          ('"destinationPortRange"', '"sourceAddressPrefix"', '"access"'))


def parse(text: str, name: str, inventory=None) -> Ruleset:
    """Parse NSGs from an ARM response, a VCR cassette or ``az network nsg`` output."""
    ruleset = Ruleset(sources=[name])
    ruleset.meta[CLOUD_META] = {"kind": DIALECT, "targets": [], "attachments": {}, "ids": {}}
    nsgs: dict[str, Fields] = {}
    found = False
    lone_rules = []
    nics: list[Fields] = []
    for path, payload in unwrap(load_document(text, name), name):
        if isinstance(payload, dict) and payload.get("value") == []:
            found = True  # a list response with zero NSGs: an empty ruleset
        for item in _resources(payload, name, path):
            kind = (item.str("type", "") or "").lower()
            if kind == RULE_TYPE:
                lone_rules.append(item)
            elif kind == NIC_TYPE or _looks_like_nic(item.obj):
                nics.append(item)
            elif kind == NSG_TYPE or _looks_like_nsg(item.obj):
                found = True
                key = (item.str("id") or item.str("name", required=True) or "").lower()
                if key in nsgs:
                    note(ruleset, f"NSG {item.str('name')} recorded again: the later copy is used",
                         item.location())
                nsgs[key] = item  # a cassette may record one NSG before and after a change
    for item in lone_rules:
        note(ruleset, f"a single security rule ({item.str('name')}) without its NSG: skipped",
             item.location())
    if not found:
        raise fail(name, "", "no network security groups in this file",
                   hint="expected an NSG (ARM JSON or az network nsg show/list output)")
    for nsg in nsgs.values():
        _add_nsg(ruleset, nsg)
    for nic in nics:
        _add_nic(ruleset, nic)
    return _resolve(ruleset, inventory)


def _resources(payload, name: str, path: str) -> list[Fields]:
    """The resource objects of one payload: a ``value`` list, a list, or one."""
    if isinstance(payload, list):
        return [Fields(x, name, f"{path}[{i}]") for i, x in enumerate(payload) if isinstance(x, dict)]
    if not isinstance(payload, dict):
        return []
    if isinstance(payload.get("value"), list):
        return list(Fields(payload, name, path).objects("value")) if payload["value"] else []
    return [Fields(payload, name, path)]


def _looks_like_nic(obj: dict) -> bool:
    props = obj.get("properties", obj)
    return isinstance(props, dict) and "ipConfigurations" in props and "securityRules" not in props


def _nic_subnets(nic: Fields) -> list[str]:
    """The subnets of a NIC's IP configurations (``ipConfigurations[].subnet.id``,
    ARM nesting them under ``properties``)."""
    out = []
    for config in _props(nic).objects("ipConfigurations"):
        subnet = _props(config).get("subnet")
        if isinstance(subnet, dict) and isinstance(subnet.get("id"), str):
            out.append(_last_segment(subnet["id"]))
    return list(dict.fromkeys(out))


def _add_nic(ruleset: Ruleset, nic: Fields) -> None:
    """A network interface resource (``az network nic list``, ARM): its
    subnets, and the NSG attached to it (``networkSecurityGroup.id``)."""
    nic_name = nic.str("name") or _nic_name(nic.str("id", "") or "")
    if not nic_name:
        return
    file_meta(ruleset, NIC_SUBNETS_META)[nic_name] = _nic_subnets(nic)
    attached = _props(nic).get("networkSecurityGroup")
    if isinstance(attached, dict) and isinstance(attached.get("id"), str):
        nsg_name = _last_segment(attached["id"])
        att = file_meta(ruleset, ATTACHMENTS_META).get(nsg_name)
        if att is not None and nic_name not in att["nics"]:
            att["nics"].append(nic_name)


def _looks_like_nsg(obj: dict) -> bool:
    props = obj.get("properties", obj)
    return isinstance(props, dict) and ("securityRules" in props or "defaultSecurityRules" in props)


def _props(item: Fields) -> Fields:
    """ARM nests fields under ``properties``; the az CLI hoists them."""
    if isinstance(item.obj.get("properties"), dict):
        return Fields(item.obj["properties"], item.name, item.at("properties"))
    return item


def _last_segment(resource_id: str) -> str:
    return resource_id.rstrip("/").rsplit("/", 1)[-1]


def _add_nsg(ruleset: Ruleset, nsg: Fields) -> None:
    nsg_name = nsg.str("name", required=True)
    table_name = nsg_name
    if ruleset.table(table_name) is not None:
        group = nsg.str("resourceGroup") or _resource_group(nsg.str("id", "") or "")
        table_name = f"{group}/{nsg_name}"
    props = _props(nsg)
    info = ruleset.meta[CLOUD_META]
    info["targets"].append(table_name)
    info["ids"][table_name] = nsg.str("id", "")
    info["attachments"][table_name] = file_meta(ruleset, ATTACHMENTS_META)[table_name] = {
        "subnets": [_last_segment(s.str("id", "") or "") for s in props.objects("subnets")],
        "nics": [_nic_name(n.str("id", "") or "") for n in props.objects("networkInterfaces")],
    }
    for nic in props.objects("networkInterfaces"):  # an expanded NSG carries its NICs' subnets
        subnets = _nic_subnets(nic)
        if subnets:
            file_meta(ruleset, NIC_SUBNETS_META)[_nic_name(nic.str("id", "") or "")] = subnets
    loc = nsg.location()
    table = ruleset.add_table(Table(table_name, family="inet", location=loc, dialect=DIALECT))
    chains = {
        "inbound": base_chain(table, "inbound", "input", "drop",
                              "DenyAllInBound (65500): default security rule", loc),
        "outbound": base_chain(table, "outbound", "output", "drop",
                               "DenyAllOutBound (65500): default security rule", loc),
    }
    entries = []
    for position, rule in enumerate(props.objects("securityRules")):
        entries.append(_entry(rule, position, implicit=False))
    defaults = list(props.objects("defaultSecurityRules"))
    if defaults:
        for position, rule in enumerate(defaults):
            entries.append(_entry(rule, 10000 + position, implicit=True))
    else:
        if nsg.origin() is None:  # Terraform never lists them: Azure adds them to every NSG
            note(ruleset, f"NSG {nsg_name}: no defaultSecurityRules in the export; "
                          "Azure's defaults assumed", loc)
        for position, default in enumerate(DEFAULT_RULES):
            entries.append(_default_entry(nsg, default, 20000 + position))
    # Lower priority first; a tie (never valid in Azure) puts deny first.
    entries.sort(key=lambda e: e[0])
    for _, direction, rule, implicit in entries:
        for model_rule in security_rules(ruleset, rule, implicit):
            chains[direction].add(model_rule)


def _resource_group(resource_id: str) -> str:
    parts = resource_id.split("/")
    lowered = [p.lower() for p in parts]
    if "resourcegroups" in lowered:
        i = lowered.index("resourcegroups")
        if i + 1 < len(parts):
            return parts[i + 1]
    return "?"


def _nic_name(resource_id: str) -> str:
    """``…/networkInterfaces/vm1-nic/ipConfigurations/ipconfig1`` → ``vm1-nic``."""
    parts = resource_id.split("/")
    lowered = [p.lower() for p in parts]
    if "networkinterfaces" in lowered:
        i = lowered.index("networkinterfaces")
        if i + 1 < len(parts):
            return parts[i + 1]
    return _last_segment(resource_id)


def _entry(rule: Fields, position: int, implicit: bool):
    props = _props(rule)
    direction = (props.str("direction", required=True) or "").lower()
    if direction not in ("inbound", "outbound"):
        raise fail(props.name, props.at("direction"),
                   f"direction should be Inbound or Outbound, found {direction!r}")
    priority = props.int("priority", required=True)
    deny = (props.str("access", required=True) or "").lower() == "deny"
    return (priority, 0 if deny else 1, position), direction, rule, implicit


def _default_entry(nsg: Fields, default: tuple, position: int):
    name, priority, direction, access, src, dst = default
    obj = {"name": name, "properties": {
        "priority": priority, "direction": direction, "access": access, "protocol": "*",
        "sourceAddressPrefix": src, "destinationAddressPrefix": dst,
        "sourcePortRange": "*", "destinationPortRange": "*",
        "description": "(implicit) Azure default security rule"}}
    rule = Fields(obj, nsg.name, f"{nsg.path or '$'}(default {name})")
    return (priority, 0 if access == "Deny" else 1, position), direction.lower(), rule, True


def security_rules(ruleset: Ruleset, rule: Fields, implicit: bool) -> list[Rule]:
    """The model rules of one security rule: one per source kind × destination kind."""
    props = _props(rule)
    rule_name = rule.str("name", "") or ""
    access = (props.str("access", required=True) or "").lower()
    if access not in ("allow", "deny"):
        raise fail(props.name, props.at("access"), f"access should be Allow or Deny, found {access!r}")
    priority = props.int("priority")
    proto_matches, proto_text = _protocol(props)
    sport = _ports(props, "sourcePortRange", "sport")
    dport = _ports(props, "destinationPortRange", "dport")
    sources = _addresses(ruleset, props, "source", "src")
    dests = _addresses(ruleset, props, "destination", "dst")
    action = Accept() if access == "allow" else Drop()
    rules = []
    port_text = f" port {dport[1]}" if dport[1] else ""
    for src, src_text in sources:
        for dst, dst_text in dests:
            text = (f"{priority}: {access} {proto_text} from {src_text} to {dst_text}{port_text}"
                    f" ({rule_name})")
            rules.append(Rule(proto_matches + sport[0] + dport[0] + src + dst + rule.unknowns(),
                              action, props.location(), text=text,
                              comment=props.str("description") or None,
                              implicit=implicit, ident=rule_name, origin=rule.origin()))
    return rules


def _protocol(props: Fields) -> tuple[tuple[Match, ...], str]:
    raw = (props.str("protocol", "*") or "*").strip()
    if raw.lower() in ("*", "any"):
        return (), "any"
    ranges = _PROTOCOLS.get(raw.lower())
    if ranges is None:
        raise fail(props.name, props.at("protocol"), f"unknown protocol {raw!r}",
                   hint="Azure accepts *, Tcp, Udp, Icmp, Esp, Ah")
    return (IntMatch("proto", ranges, text=raw.lower()),), raw.lower()


def _ports(props: Fields, key: str, field: str) -> tuple[tuple[Match, ...], str]:
    """Singular ``…PortRange`` or the plural list; ``*`` means any port."""
    values = [(props.str(key), props.at(key))] if props.str(key) else []
    values += [(v, f"{props.at(key + 's')}[{i}]") for i, v in enumerate(props.strings(key + "s"))]
    ranges = []
    for value, path in values:
        rng = parse_port_range(value, props.name, path)
        if rng is None:
            return (), ""
        ranges.append(rng)
    if not ranges:
        return (), ""
    return (port_match(field, ranges),), ",".join(v for v, _ in values)


def _addresses(ruleset: Ruleset, props: Fields, side: str, field: str):
    """Alternatives for one side: all CIDRs in one match, each tag/ASG on its own."""
    values = [(props.str(f"{side}AddressPrefix"), props.at(f"{side}AddressPrefix"))] \
        if props.str(f"{side}AddressPrefix") else []
    values += [(v, f"{props.at(side + 'AddressPrefixes')}[{i}]")
               for i, v in enumerate(props.strings(f"{side}AddressPrefixes"))]
    nets, texts, options = [], [], []
    for value, path in values:
        value = value.strip()
        if value.lower() in _ANY:
            return [((), "any")] if not props.list(f"{side}ApplicationSecurityGroups") else \
                _asg_options(ruleset, props, side, field)
        try:
            nets.append(ipaddress.ip_network(value, strict=False))
            texts.append(value)
        except ValueError:
            if "/" in value and value.split("/")[0].replace(".", "").isdigit():
                raise fail(props.name, path, f"not a valid CIDR block: {value!r}") from None
            reason = f"{side} is the service tag {value}"
            options.append(((register_ref(ruleset, reason, "azure_service_tag", value, field),),
                            value))
    if nets:
        options.insert(0, ((address_match(field, nets),), ", ".join(texts)))
    options += _asg_options(ruleset, props, side, field)
    return options or [((), "any")]


def _asg_options(ruleset: Ruleset, props: Fields, side: str, field: str):
    out = []
    for asg in props.objects(f"{side}ApplicationSecurityGroups"):
        asg_name = _last_segment(asg.str("id", "") or asg.str("name", "") or "?")
        reason = f"{side} is a member of application security group {asg_name}"
        out.append(((register_ref(ruleset, reason, "azure_asg", asg_name, field),),
                    f"ASG {asg_name}"))
    return out


def _resolve(ruleset: Ruleset, inventory) -> Ruleset:
    """Resolve inventory-mapped references (imported late: inventory imports us)."""
    if inventory is None:
        return ruleset
    from ..inventory import apply_inventory
    return apply_inventory(ruleset, inventory)
