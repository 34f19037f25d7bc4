"""GCP VPC firewall rules (Compute Engine ``firewalls.list``/``get``,
``getEffectiveFirewalls``, Cloud Asset Inventory exports) → the rule model.

GCP VPC docs, "VPC firewall rules": rules of one network apply by priority
(lower number first); "a deny rule takes precedence over an allow rule of
the same priority"; the implied rules (priority 65535) deny all ingress and
allow all egress; rules are stateful; a rule applies to the instances named
by its target tags / target service accounts, or to all instances when it
has neither. Disabled rules are skipped (with an info note).

One ``inet`` table per network, base chains ``ingress`` (hook input) and
``egress`` (hook output). Rules whose target is not yet chosen carry an
OpaqueMatch ("applies only to instances tagged web") that
:func:`ruleanalyzer.targets.select_target` removes or resolves.

Hierarchical firewall policies in ``getEffectiveFirewalls`` (GCP docs,
"Hierarchical firewall policies") run before the VPC rules: each becomes a
user chain jumped to from the base chain; ``goto_next`` returns to it.
Network firewall policies run after the VPC rules (the default
enforcement order).
"""

from __future__ import annotations

from ..model import (Accept, AllOf, AnyOf, Chain, Drop, Jump, Match, OpaqueMatch, Return, Rule,
                     Ruleset, Table)
from .cloud_common import (CLOUD_META, Fields, file_meta, address_match, base_chain, fail, load_document,
                           note, parse_network, parse_port_range, port_match, proto_match,
                           register_ref, sniff_keywords, unwrap)

DIALECT = "gcp"
TARGETS_META = "gcp_targets"
DEFAULT_PRIORITY = 1000
INGRESS_POLICY_TEXT = "implied rule (priority 65535): deny all ingress"
EGRESS_POLICY_TEXT = "implied rule (priority 65535): allow all egress"
_PROTOCOLS = {"tcp": 6, "udp": 17, "icmp": 1, "esp": 50, "ah": 51, "sctp": 132, "ipip": 4}
_PORTED = (6, 17, 132)
_KNOWN_FIELDS = frozenset({
    "kind", "id", "creationTimestamp", "name", "description", "network", "priority",
    "sourceRanges", "destinationRanges", "sourceTags", "targetTags", "sourceServiceAccounts",
    "targetServiceAccounts", "allowed", "denied", "direction", "logConfig", "disabled",
    "selfLink", "selfLinkWithId", "enableLogging", "params"})


def sniff(text: str, name: str) -> int:
    """Sure on Compute Engine firewall kinds; likely on its field names."""
    return sniff_keywords(text, ('"compute#firewall', "compute.googleapis.com/Firewall",
                                 '"firewallPolicys"'),
                          ('"IPProtocol"', '"sourceRanges"', '"targetTags"', '"allowed"',
                           '"denied"', '"direction"'))


def parse(text: str, name: str, inventory=None) -> Ruleset:
    """Parse a GCP firewall export (any of the recorded shapes)."""
    ruleset = Ruleset(sources=[name])
    ruleset.meta[CLOUD_META] = {"kind": DIALECT, "targets": []}
    firewalls: list[Fields] = []
    policies: list[Fields] = []
    found = False
    for path, payload in unwrap(load_document(text, name), name):
        kind = _collect(payload, name, path, firewalls, policies)
        found = found or kind
    if not found:
        raise fail(name, "", "no GCP firewall rules in this file",
                   hint="expected a firewalls.list/get or getEffectiveFirewalls response, "
                        "or a Cloud Asset Inventory export of compute.googleapis.com/Firewall")
    build(ruleset, firewalls, policies, name)
    return _resolve(ruleset, inventory)


def _collect(payload, name: str, path: str, firewalls: list, policies: list) -> bool:
    """Gather firewall and policy objects from one payload; False if none fit."""
    def at(key: str) -> str:
        return f"{path}.{key}" if path else key

    if isinstance(payload, list):
        if payload and all(_is_firewall(x) for x in payload):
            firewalls.extend(Fields(x, name, f"{path}[{i}]") for i, x in enumerate(payload))
            return True
        return payload == []
    if not isinstance(payload, dict):
        return False
    if _is_firewall(payload):
        firewalls.append(Fields(payload, name, path))
        return True
    body = Fields(payload, name, path)
    if "items" in payload or "firewalls" in payload or "firewallPolicys" in payload:
        for key in ("items", "firewalls"):
            for i, fw in enumerate(body.list(key)):
                if not _is_firewall(fw):
                    raise fail(name, f"{at(key)}[{i}]", "not a firewall rule "
                               "(needs allowed or denied)")
                firewalls.append(Fields(fw, name, f"{at(key)}[{i}]"))
        policies.extend(body.objects("firewallPolicys"))
        return True
    if payload == {} or payload.get("kind") == "compute#firewallList":
        return True  # a list response with no rules omits "items"
    return False


def _is_firewall(obj) -> bool:
    return isinstance(obj, dict) and ("allowed" in obj or "denied" in obj) and "name" in obj


def _network_of(fw: Fields) -> str:
    url = fw.str("network", "default") or "default"
    return url.rstrip("/").rsplit("/", 1)[-1]


def build(ruleset: Ruleset, firewalls: list[Fields], policies: list[Fields], name: str) -> None:
    """Make one table per network from VPC rules and (effective) policies."""
    by_network: dict[str, list[Fields]] = {}
    seen: set[str] = set()
    for fw in firewalls:
        key = fw.str("selfLink") or fw.str("id") or fw.str("name", required=True)
        if key in seen:
            continue  # the same rule recorded twice (e.g. list, then get)
        seen.add(key)
        by_network.setdefault(_network_of(fw), []).append(fw)
    if policies and not by_network:
        by_network["default"] = []
    for network, rules in by_network.items():
        _build_network(ruleset, network, rules, policies if len(by_network) == 1 else [], name)
    if policies and len(by_network) > 1:
        note(ruleset, "firewall policies ignored: the file mixes several networks",
             policies[0].location(), level="warning")


def _build_network(ruleset: Ruleset, network: str, firewalls: list[Fields],
                   policies: list[Fields], name: str) -> None:
    loc = Fields({}, name, "").location()
    ruleset.meta[CLOUD_META]["targets"].append(network)
    table = ruleset.add_table(Table(network, family="inet", location=loc, dialect=DIALECT))
    chains = {
        "INGRESS": base_chain(table, "ingress", "input", "drop", INGRESS_POLICY_TEXT, loc),
        "EGRESS": base_chain(table, "egress", "output", "accept", EGRESS_POLICY_TEXT, loc),
    }
    hierarchy = [p for p in policies if (p.str("type", "HIERARCHY") or "").upper() == "HIERARCHY"]
    network_policies = [p for p in policies if p not in hierarchy]
    for policy in hierarchy:
        _add_policy(ruleset, table, chains, policy)

    ordered = []
    for position, fw in enumerate(firewalls):
        for key in fw.obj:
            if key not in _KNOWN_FIELDS and not key.startswith("__"):
                note(ruleset, f"unknown field {key!r} ignored (GCP would reject it)",
                     fw.location(key), level="warning")
        if fw.bool("disabled"):
            note(ruleset, f"firewall rule {fw.str('name')} is disabled: skipped", fw.location())
            continue
        direction = (fw.str("direction", "INGRESS") or "").upper()
        if direction not in chains:
            raise fail(fw.name, fw.at("direction"), f"direction should be INGRESS or EGRESS, "
                                                    f"found {direction!r}")
        priority = fw.int("priority", DEFAULT_PRIORITY)
        if not 0 <= priority <= 65535:
            raise fail(fw.name, fw.at("priority"), f"priority {priority} outside 0-65535")
        deny = fw.has("denied")
        # Lower priority first; at equal priority deny wins, so it goes first.
        ordered.append(((priority, 0 if deny else 1, position), direction, fw))
    ordered.sort(key=lambda item: item[0])
    for (priority, _, _), direction, fw in ordered:
        for rule in firewall_rules(ruleset, fw, direction, priority):
            chains[direction].add(rule)

    for policy in network_policies:
        _add_policy(ruleset, table, chains, policy)


def firewall_rules(ruleset: Ruleset, fw: Fields, direction: str, priority: int) -> list[Rule]:
    """The model rules of one VPC firewall rule (one per protocol entry × source kind)."""
    rule_name = fw.str("name", required=True)
    deny = fw.has("denied")
    verb = "deny" if deny else "allow"
    action = Drop() if deny else Accept()
    target = _target_match(ruleset, fw.strings("targetTags"), fw.strings("targetServiceAccounts"))

    # Sources: ranges OR tags OR service accounts; each kind is its own rule.
    source_options: list[tuple[tuple[Match, ...], str]] = []
    if direction == "INGRESS":
        ranges = fw.strings("sourceRanges")
        tags, accounts = fw.strings("sourceTags"), fw.strings("sourceServiceAccounts")
        if ranges:
            nets = [parse_network(r, fw.name, f"{fw.at('sourceRanges')}[{i}]")
                    for i, r in enumerate(ranges)]
            source_options.append(((address_match("src", nets),), "from " + ", ".join(ranges)))
        for tag in tags:
            source_options.append(((register_ref(ruleset, f"source is an instance tagged {tag}",
                                                 "gcp_tag", tag, "src"),), f"from tag {tag}"))
        for account in accounts:
            source_options.append(((register_ref(
                ruleset, f"source is an instance running as {account}", "gcp_service_account",
                account, "src"),), f"from service account {account}"))
        if not (ranges or tags or accounts):
            source_options.append(((), "from any"))  # GCP defaults sourceRanges to 0.0.0.0/0
        dest: tuple[Match, ...] = ()
        dest_text = ""
        if fw.strings("destinationRanges"):
            dest, dest_text = _ranges(fw, "destinationRanges", "dst")
    else:
        dest, dest_text = (), " to any"
        if fw.strings("destinationRanges"):
            dest, dest_text = _ranges(fw, "destinationRanges", "dst")
        src, src_text = ((), "")
        if fw.strings("sourceRanges"):
            src, src_text = _ranges(fw, "sourceRanges", "src")
        source_options.append((src, src_text.strip()))

    target_text = _target_text(fw)
    rules = []
    for entry in fw.objects("denied" if deny else "allowed"):
        l4, l4_text = layer4_matches(entry, "IPProtocol", "ports")
        for source, source_text in source_options:
            text = " ".join(p for p in (f"{priority}:", verb, l4_text, source_text,
                                        dest_text.strip(), target_text) if p)
            rules.append(Rule(target + source + dest + l4 + fw.unknowns() + entry.unknowns(),
                              action, entry.location(), text=text,
                              comment=fw.str("description") or None, ident=rule_name,
                              origin=fw.origin()))
    return rules


def _ranges(fw: Fields, key: str, field: str) -> tuple[tuple[Match, ...], str]:
    values = fw.strings(key)
    nets = [parse_network(r, fw.name, f"{fw.at(key)}[{i}]") for i, r in enumerate(values)]
    word = "from" if field == "src" else "to"
    return (address_match(field, nets),), f" {word} {', '.join(values)}"


def _target_text(fw: Fields) -> str:
    tags, accounts = fw.strings("targetTags"), fw.strings("targetServiceAccounts")
    parts = [f"tag {t}" for t in tags] + [f"service account {a}" for a in accounts]
    return f"on {' or '.join(parts)}" if parts else ""


def _target_match(ruleset: Ruleset, tags: list[str], accounts: list[str]) -> tuple[Match, ...]:
    """An OpaqueMatch saying which instances the rule applies to (none: all)."""
    if not tags and not accounts:
        return ()
    parts = []
    if tags:
        parts.append("tagged " + " or ".join(tags))
    if accounts:
        parts.append("running as " + " or ".join(accounts))
    reason = "applies only to instances " + " or ".join(parts)
    file_meta(ruleset, TARGETS_META)[reason] = {"tags": list(tags),
                                                         "service_accounts": list(accounts)}
    return (OpaqueMatch(reason=reason, text=reason),)


def layer4_matches(entry: Fields, proto_key: str, ports_key: str) -> tuple[tuple[Match, ...], str]:
    """``{IPProtocol: tcp, ports: ["22", "1000-2000"]}`` → matches and a summary."""
    raw = (entry.str(proto_key, required=True) or "").strip().lower()
    if raw == "all":
        return (), "all"
    if raw in _PROTOCOLS:
        number = _PROTOCOLS[raw]
    elif raw.isdigit() and 0 <= int(raw) <= 255:
        number = int(raw)
    else:
        raise fail(entry.name, entry.at(proto_key), f"unknown protocol {raw!r}",
                   hint="GCP accepts tcp, udp, icmp, esp, ah, sctp, ipip, all or a number")
    matches: list[Match] = [proto_match(number, raw)]
    ports = entry.strings(ports_key)
    text = raw
    if ports:
        if number not in _PORTED:
            raise fail(entry.name, entry.at(ports_key), f"ports given for {raw}, which has none")
        ranges = []
        for i, port in enumerate(ports):
            rng = parse_port_range(port, entry.name, f"{entry.at(ports_key)}[{i}]")
            if rng is None:
                ranges = []
                break
            ranges.append(rng)
        if ranges:
            matches.append(port_match("dport", ranges))
            text += " " + ",".join(ports)
    return tuple(matches), text


def _add_policy(ruleset: Ruleset, table: Table, chains: dict, policy: Fields) -> None:
    """A firewall policy as user chains jumped to from the base chains."""
    label = policy.str("shortName") or policy.str("displayName") or policy.str("name", "policy")
    kind = (policy.str("type", "HIERARCHY") or "").lower()
    # Lower priority first; at equal priority deny wins, as for VPC rules.
    rules = sorted(policy.objects("rules"),
                   key=lambda r: (r.int("priority", 0), 0 if r.get("action") == "deny" else 1))
    for direction, base in chains.items():
        chain_name = f"{kind} policy {label} {direction.lower()}"
        user = table.add_chain(Chain(chain_name, location=policy.location()))
        base.add(Rule((), Jump(chain_name), policy.location(), text=f"jump to {kind} policy {label}",
                      ident=label, implicit=True))
        for rule in rules:
            if (rule.str("direction", "INGRESS") or "").upper() != direction:
                continue
            user.add(_policy_rule(ruleset, rule, direction))


def _policy_rule(ruleset: Ruleset, rule: Fields, direction: str) -> Rule:
    action_word = (rule.str("action", required=True) or "").lower()
    actions = {"allow": Accept(), "deny": Drop(), "goto_next": Return()}
    if action_word not in actions:
        raise fail(rule.name, rule.at("action"), f"unknown policy action {action_word!r}",
                   hint="expected allow, deny or goto_next")
    match = Fields(rule.get("match", {}), rule.name, rule.at("match"))
    matches: list[Match] = list(_target_match(ruleset, [], rule.strings("targetServiceAccounts")))
    for key in ("targetResources", "targetSecureTags"):
        if rule.list(key):
            matches.append(register_ref(ruleset, f"applies only to the policy's {key}",
                                        "gcp_policy_target", key))
    parts = [f"{rule.int('priority', 0)}:", action_word]
    for key, field in (("srcIpRanges", "src"), ("destIpRanges", "dst")):
        values = match.strings(key)
        if values:
            nets = [parse_network(v, match.name, f"{match.at(key)}[{i}]")
                    for i, v in enumerate(values)]
            matches.append(address_match(field, nets))
            parts.append(f"{'from' if field == 'src' else 'to'} {', '.join(values)}")
    for key in match.obj:
        if key not in ("srcIpRanges", "destIpRanges", "layer4Configs") and match.obj[key]:
            matches.append(register_ref(ruleset, f"depends on the policy match {key}",
                                        "gcp_policy_match", key))
            parts.append(f"{key} ...")
    l4_options = [layer4_matches(entry, "ipProtocol", "ports")
                  for entry in match.objects("layer4Configs")] or [((), "all")]
    if len(l4_options) == 1:
        l4, l4_text = l4_options[0]
        matches.extend(l4)
        parts.insert(2, l4_text)
    else:
        matches.append(AnyOf(tuple(AllOf(m) for m, _ in l4_options),
                             text=" or ".join(t for _, t in l4_options)))
        parts.insert(2, " or ".join(t for _, t in l4_options))
    return Rule(tuple(matches), actions[action_word], rule.location(), text=" ".join(parts),
                comment=rule.str("description") or None, ident=str(rule.int("priority", 0)))


def _resolve(ruleset: Ruleset, inventory) -> Ruleset:
    """Resolve inventory-mapped references (imported late: inventory imports us)."""
    if inventory is None:
        return ruleset
    from ..inventory import apply_inventory
    return apply_inventory(ruleset, inventory)
