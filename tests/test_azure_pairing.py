"""Azure: a NIC sits in a subnet and both may have an NSG (Azure docs, "How
network security groups filter network traffic": inbound traffic meets the
subnet's NSG, then the NIC's; outbound the NIC's, then the subnet's).
``--target nic:NAME`` layers the subnet's NSG when the NIC's subnet is known
(NIC resources in the export, or the inventory's ``azure.nics``), and says
when a loaded subnet NSG is not on the target's path."""

from ipaddress import ip_address
from pathlib import Path

import pytest

from ruleanalyzer.engine import evaluate
from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.inventory import parse_inventory
from ruleanalyzer.model import SYN, Packet
from ruleanalyzer.parsers import azure
from ruleanalyzer.targets import select_target

FIXTURES = Path(__file__).parent / "parsers" / "cloud"


def load(name):
    path = FIXTURES / name
    return azure.parse(path.read_text(), str(path))


def syn(src, dport):
    return Packet(src=ip_address(src), dst=ip_address("10.0.1.4"), proto=6, sport=40000,
                  dport=dport, flags=SYN, state="new", hook="input")


def notes(ruleset):
    return [d.message for d in ruleset.diagnostics if "nic:" in d.message or "subnet NSG" in d.message]


def test_nic_resources_pair_the_nic_with_its_subnets_nsg():
    """vm1-nic (NIC export: subnet web, NSG nic-nsg): nic:vm1-nic alone
    gives subnet-nsg then nic-nsg, as subnet:web,nic:vm1-nic does."""
    rs = select_target(load("azure_nics.json"), "nic:vm1-nic")
    assert sorted(t.name for t in rs.tables) == ["nic nic-nsg", "subnet subnet-nsg"]
    # The subnet allows 22 from 192.0.2.0/24, the NIC denies it: dropped.
    assert evaluate(rs, syn("192.0.2.9", 22)).verdict == "drop"
    said = notes(rs)
    assert any("nic:vm1-nic is in subnet web: its NSG subnet-nsg is layered" in m for m in said)
    # db-nsg is loaded, attached to subnet db: not on vm1-nic's path, and said so.
    assert any("db-nsg (subnet db) are loaded but not on the path of nic:vm1-nic" in m for m in said)


def test_the_nic_nsg_alone_names_the_subnet_nsg_that_also_filters():
    rs = select_target(load("azure_nics.json"), "nsg:nic-nsg")
    assert [t.name for t in rs.tables] == ["nic-nsg"]
    assert any("subnet's NSG subnet-nsg also filters its traffic: --target nic:vm1-nic" in m
               for m in [d.message for d in rs.diagnostics])


def test_a_subnet_the_nic_is_not_in_is_refused():
    with pytest.raises(RuleAnalyzerError, match="nic 'vm1-nic' is not in subnet 'db'"):
        select_target(load("azure_nics.json"), "subnet:db,nic:vm1-nic")


def test_inventory_gives_the_nics_subnet_when_the_export_does_not():
    """azure_layers.json lists NSG attachments only (no NIC resources)."""
    alone = select_target(load("azure_layers.json"), "nic:vm1-nic")
    assert [t.name for t in alone.tables] == ["nic nic-nsg"]
    assert any("its subnet is unknown, so the loaded subnet NSG(s) subnet-nsg (subnet web) are "
               "not layered" in m for m in notes(alone))
    inv = parse_inventory("azure:\n  nics:\n    vm1-nic: {subnet: web}\n")
    paired = select_target(load("azure_layers.json"), "nic:vm1-nic", inv)
    assert sorted(t.name for t in paired.tables) == ["nic nic-nsg", "subnet subnet-nsg"]
    assert evaluate(paired, syn("192.0.2.9", 22)).verdict == "drop"
    assert evaluate(alone, syn("192.0.2.9", 22)).verdict == "drop"  # the NIC's own deny
    # 443 from anywhere: the subnet allows it, the NIC's allow needs the Internet tag (unknown).
    assert evaluate(paired, syn("198.51.100.7", 443)).verdict == "unknown"


def test_expanded_nsg_export_carries_the_nics_subnet():
    """ARM's NSG GET with $expand nests each NIC with its ipConfigurations."""
    import json

    doc = json.loads((FIXTURES / "azure_layers.json").read_text())
    doc[1]["networkInterfaces"][0]["properties"] = {"ipConfigurations": [{"properties": {
        "subnet": {"id": "/subscriptions/s/resourceGroups/rg1/providers/Microsoft.Network/"
                         "virtualNetworks/vnet/subnets/web"}}}]}
    rs = select_target(azure.parse(json.dumps(doc), "expanded.json"), "nic:vm1-nic")
    assert sorted(t.name for t in rs.tables) == ["nic nic-nsg", "subnet subnet-nsg"]


def test_inventory_nics_must_be_mappings():
    with pytest.raises(RuleAnalyzerError, match="azure.nics.vm1-nic"):
        parse_inventory("azure:\n  nics:\n    vm1-nic: web\n")


AZ_TF = '''
resource "azurerm_subnet" "web" {
  name = "web"
}
resource "azurerm_network_security_group" "subnet" {
  name = "subnet-nsg"
  security_rule {
    name = "allow-ssh-office"
    priority = 110
    direction = "Inbound"
    access = "Allow"
    protocol = "Tcp"
    source_port_range = "*"
    destination_port_range = "22"
    source_address_prefix = "192.0.2.0/24"
    destination_address_prefix = "*"
  }
}
resource "azurerm_network_security_group" "nic" {
  name = "nic-nsg"
  security_rule {
    name = "allow-ssh"
    priority = 100
    direction = "Inbound"
    access = "Allow"
    protocol = "Tcp"
    source_port_range = "*"
    destination_port_range = "22"
    source_address_prefix = "*"
    destination_address_prefix = "*"
  }
}
resource "azurerm_network_interface" "vm1" {
  name = "vm1-nic"
  ip_configuration {
    name = "internal"
    subnet_id = azurerm_subnet.web.id
  }
}
resource "azurerm_subnet_network_security_group_association" "web" {
  subnet_id = azurerm_subnet.web.id
  network_security_group_id = azurerm_network_security_group.subnet.id
}
resource "azurerm_network_interface_security_group_association" "vm1" {
  network_interface_id = azurerm_network_interface.vm1.id
  network_security_group_id = azurerm_network_security_group.nic.id
}
'''


def test_terraform_nic_ip_configuration_pairs_the_nic_with_its_subnets_nsg(tmp_path):
    """hashicorp/azurerm: azurerm_network_interface ip_configuration.subnet_id,
    and the subnet / NIC security group associations."""
    from ruleanalyzer.inventory import apply_inventory
    from ruleanalyzer.loader import load as load_file

    tf = tmp_path / "net.tf"
    tf.write_text(AZ_TF)
    inv = parse_inventory("azure:\n  service_tags:\n    VirtualNetwork: [10.0.0.0/16]\n"
                          "    AzureLoadBalancer: [168.63.129.16/32]\n")
    rs = select_target(apply_inventory(load_file(tf), inv), "nic:azurerm_network_interface.vm1")
    assert sorted(t.name for t in rs.tables) == [
        "nic azurerm_network_security_group.nic", "subnet azurerm_network_security_group.subnet"]
    # The NIC allows SSH from anywhere, the subnet only from the office.
    assert evaluate(rs, syn("203.0.113.9", 22)).verdict == "drop"
    assert evaluate(rs, syn("192.0.2.9", 22)).verdict == "accept"


def test_a_subnet_alone_names_the_nics_in_it_that_have_their_own_nsg():
    rs = select_target(load("azure_nics.json"), "subnet:web")
    assert [t.name for t in rs.tables] == ["subnet subnet-nsg"]
    assert any("subnet:web: NIC(s) in it have their own NSG, also on their traffic's path: "
               "nic:vm1-nic (nic-nsg)" in d.message for d in rs.diagnostics)
