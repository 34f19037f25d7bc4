"""Azure NSGs, read into the model, layered subnet + NIC, and evaluated."""

from ipaddress import ip_address
from pathlib import Path

import pytest

from ruleanalyzer.engine import evaluate
from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.inventory import load_inventory
from ruleanalyzer.model import SYN, Packet
from ruleanalyzer.parsers import azure, sniff
from ruleanalyzer.targets import select_target

FIXTURES = Path(__file__).parent / "parsers" / "cloud"


def load(name="azure_layers.json", **kw):
    path = FIXTURES / name
    return azure.parse(path.read_text(), str(path), **kw)


def pkt(src, dport, proto=6, hook="input", dst="10.0.1.4", **kw):
    if hook == "output":
        src, dst = dst, src
    return Packet(src=ip_address(src), dst=ip_address(dst), proto=proto, sport=40000, dport=dport,
                  flags=SYN if proto == 6 else 0, state="new", hook=hook, **kw)


def test_sniffed_and_one_table_per_nsg():
    assert sniff((FIXTURES / "azure_layers.json").read_text()) == "azure"
    assert [t.name for t in load().tables] == ["subnet-nsg", "nic-nsg"]


def test_default_security_rules_are_added_when_the_export_lacks_them():
    """Azure docs, 'Network security groups' overview, 'Default security
    rules': AllowVnetInBound 65000, AllowAzureLoadBalancerInBound 65001,
    DenyAllInBound 65500 (and the outbound three)."""
    rs = load()
    inbound = rs.table("subnet-nsg").chains["inbound"]
    defaults = [r.ident for r in inbound.rules if r.implicit and r.ident != "(stateful)"]
    assert defaults == ["AllowVnetInBound", "AllowAzureLoadBalancerInBound", "DenyAllInBound"]
    outbound = rs.table("subnet-nsg").chains["outbound"]
    assert [r.ident for r in outbound.rules][-3:] == ["AllowVnetOutBound", "AllowInternetOutBound",
                                                     "DenyAllOutBound"]
    # Lower priority number first: user rules (100-4096) before the defaults.
    assert [r.ident for r in inbound.rules][1:3] == ["allow-https", "allow-ssh"]


def test_service_tags_are_unknown_until_the_inventory_maps_them():
    """Azure docs, 'Virtual network service tags': a tag names address
    prefixes Microsoft manages, not in the export."""
    nic = select_target(load(), "nsg:nic-nsg")
    result = evaluate(nic, pkt("198.51.100.7", 443))
    assert result.verdict == "unknown"
    assert any("service tag Internet" in d for d in result.depends_on)
    resolved = select_target(load(inventory=load_inventory(FIXTURES / "inventory.yaml")),
                             "nsg:nic-nsg")
    assert evaluate(resolved, pkt("198.51.100.7", 443)).verdict == "accept"


def test_subnet_then_nic_inbound_and_nic_then_subnet_outbound():
    """Azure docs, 'How network security groups filter network traffic':
    inbound traffic is processed by the subnet's NSG, then the NIC's;
    outbound by the NIC's, then the subnet's; both must allow."""
    inv = load_inventory(FIXTURES / "inventory.yaml")
    layered = select_target(load(inventory=inv), "subnet:web,nic:vm1-nic")
    chains = {t.name: t.chains for t in layered.tables}
    assert chains["subnet subnet-nsg"]["inbound"].priority < chains["nic nic-nsg"]["inbound"].priority
    assert chains["nic nic-nsg"]["outbound"].priority < chains["subnet subnet-nsg"]["outbound"].priority
    # The subnet allows 22 from the office, the NIC denies it: a deny in either is final.
    assert evaluate(layered, pkt("192.0.2.9", 22)).verdict == "drop"
    # Both allow 443 (subnet from anywhere, NIC from Internet).
    assert evaluate(layered, pkt("198.51.100.7", 443)).verdict == "accept"
    # The NIC allows ICMP but the subnet has no rule: its DenyAllInBound drops it.
    ping = pkt("198.51.100.7", None, proto=1, icmp_type=8, icmp_code=0)
    assert evaluate(select_target(load(inventory=inv), "nsg:nic-nsg"), ping).verdict == "accept"
    assert evaluate(layered, ping).verdict == "drop"
    # Outbound SMTP: the subnet NSG denies it.
    assert evaluate(layered, pkt("203.0.113.1", 25, hook="output")).verdict == "drop"


def test_vnet_default_rule_leaves_unmapped_sources_unknown():
    """Azure docs, 'Default security rules': AllowVnetInBound allows the
    VirtualNetwork service tag, whose prefixes the export does not list."""
    result = evaluate(select_target(load(), "nsg:subnet-nsg"), pkt("192.0.2.9", 2224))
    assert result.verdict == "unknown"
    assert any("VirtualNetwork" in d for d in result.depends_on)


def test_port_lists_and_address_prefix_lists():
    """Azure docs, 'Augmented security rules': several prefixes and port
    ranges in one rule."""
    subnet = select_target(load(inventory=load_inventory(FIXTURES / "inventory.yaml")),
                           "nsg:subnet-nsg")
    assert evaluate(subnet, pkt("192.0.2.9", 2223)).verdict == "accept"
    assert evaluate(subnet, pkt("192.0.2.9", 2224)).verdict == "drop"
    assert evaluate(subnet, pkt("2001:db8::9", 22, dst="2001:db8:1::4")).verdict == "accept"
    assert evaluate(subnet, pkt("198.51.100.9", 22)).verdict == "drop"


def test_stateful_replies_pass():
    """Azure docs, 'Network security groups' overview: rules are stateful."""
    nic = select_target(load(), "nsg:nic-nsg")
    reply = Packet(src=ip_address("10.0.1.4"), dst=ip_address("198.51.100.7"), proto=6, sport=443,
                   dport=40000, flags=SYN | 0x10, state="established", hook="output")
    assert evaluate(nic, reply).verdict == "accept"


def test_yaml_cassette_with_json_body_string():
    rs = load("azure_cassette.yaml")
    rule = [r for r in rs.rules() if r.ident == "rdp"][0]
    assert "interactions[0].response.body.string" in rule.location.path
    assert evaluate(select_target(rs), pkt("198.51.100.7", 3389)).verdict == "accept"


def test_arm_shape_with_file_default_rules_and_empty_list():
    text = """{"value": [{"name": "n1", "type": "Microsoft.Network/networkSecurityGroups",
      "properties": {"securityRules": [], "defaultSecurityRules": [
        {"name": "DenyAllInBound", "properties": {"protocol": "*", "sourceAddressPrefix": "*",
         "destinationAddressPrefix": "*", "sourcePortRange": "*", "destinationPortRange": "*",
         "access": "Deny", "priority": 65500, "direction": "Inbound"}}]}}]}"""
    rs = azure.parse(text, "arm.json")
    assert [r.ident for r in rs.table("n1").chains["inbound"].rules] == ["(stateful)", "DenyAllInBound"]
    assert azure.parse('{"value": []}', "none.json").tables == []


def test_many_nsgs_without_a_target_list_the_choices():
    with pytest.raises(RuleAnalyzerError) as err:
        select_target(load())
    assert "nsg:subnet-nsg (subnet:web)" in str(err.value)
    assert "nsg:nic-nsg (nic:vm1-nic)" in str(err.value)


@pytest.mark.parametrize("text, path", [
    ('[{"name": "n", "securityRules": [{"name": "r", "priority": 1, "direction": "Sideways",'
     ' "access": "Allow"}]}]', "[0].securityRules[0].direction"),
    ('[{"name": "n", "securityRules": [{"name": "r", "priority": 1, "direction": "Inbound",'
     ' "access": "Allow", "protocol": "Gre"}]}]', "[0].securityRules[0].protocol"),
    ('[{"name": "n", "securityRules": [{"name": "r", "priority": 1, "direction": "Inbound",'
     ' "access": "Allow", "destinationPortRange": "80-70"}]}]',
     "[0].securityRules[0].destinationPortRange"),
    ('[{"name": "n", "securityRules": {"name": "r"}}]', "[0].securityRules"),
])
def test_bad_rules_give_located_errors(text, path):
    with pytest.raises(RuleAnalyzerError) as err:
        azure.parse(text, "bad.json")
    assert err.value.location.path == path


def test_billion_laughs_is_refused_fast():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n"
    for level in "bcdefghij":
        prev = chr(ord(level) - 1)
        bomb += f"{level}: &{level} [" + ", ".join([f"*{prev}"] * 9) + "]\n"
    with pytest.raises(RuleAnalyzerError) as err:
        azure.parse(bomb, "bomb.yaml")
    assert "aliases" in str(err.value)


def test_malformed_yaml_is_located():
    with pytest.raises(RuleAnalyzerError) as err:
        azure.parse("interactions:\n  - response: {body: [\n", "bad.yaml")
    assert err.value.location.line >= 2 and err.value.location.column >= 1
