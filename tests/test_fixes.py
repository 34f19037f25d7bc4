"""Fixes in the input's own language: each rendered fix, applied the way
its dialect applies it (the command appended to the file it changes),
makes the finding go away; cloud fixes are the vendors' CLI calls.

The applied forms are checked by this project's readers here, and by the
kernel (iptables-restore --test, nft -c) in tests/kernel/test_kernel_fixes.py.
"""

from __future__ import annotations

import json
import re

import pytest

from ruleanalyzer import loads
from ruleanalyzer.audit import run_audit
from ruleanalyzer.fixes import YOUR_NETWORKS

#: A network a fix may narrow a source to (TEST-NET-1: not a public source).
OURS = "192.0.2.0/24"

IPTABLES_CASES = {
    "RA206": "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 22 -s 192.0.2.0/24 -j ACCEPT\nCOMMIT\n",
    "RA202": "*filter\n:INPUT DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n"
             "-A INPUT -p tcp --dport 22 -s 192.0.2.0/24 -m conntrack --ctstate NEW -j ACCEPT\nCOMMIT\n",
    "RA204": "*filter\n:INPUT DROP [0:0]\n-A INPUT -i lo -j ACCEPT\n"
             "-A INPUT -m conntrack --ctstate ESTABLISHED -j ACCEPT\n-A INPUT -p tcp --dport 443 -j ACCEPT\nCOMMIT\n",
    "RA401": "*filter\n:INPUT DROP [0:0]\n-A INPUT -i lo -j ACCEPT\n"
             "-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n",
    "RA505": "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 80 -j ACCEPT\n"
             "-A INPUT -p tcp --dport 80 -j ACCEPT\nCOMMIT\n",
    "RA506": "*filter\n:INPUT DROP [0:0]\n-A INPUT -s 10.0.0.0/8 -j RETURN\n-A INPUT -j ACCEPT\nCOMMIT\n",
    "RA304": "*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp -j ECN --ecn-tcp-remove\nCOMMIT\n",
}
IP6TABLES_CASES = {
    "RA205": "*filter\n:INPUT DROP [0:0]\n-A INPUT -i lo -j ACCEPT\n"
             "-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n"
             "-A INPUT -s 2001:db8::/32 -p tcp --dport 22 -j ACCEPT\nCOMMIT\n",
}
NFT_CASES = {
    "RA206": "table inet f {\n  chain input {\n    type filter hook input priority 0; policy drop;\n"
             "    ct state established,related accept\n  }\n}\n",
    "RA205": "table inet f {\n  chain input {\n    type filter hook input priority 0; policy drop;\n"
             "    iifname \"lo\" accept\n    ct state established,related accept\n  }\n}\n",
    "RA301": "table inet f {\n  chain input {\n    type filter hook input priority 0; policy drop;\n"
             "    ct state established,related accept\n    tcp flags == syn tcp dport 22 accept # handle 3\n  }\n}\n",
    "RA401": "table inet f {\n  chain input {\n    type filter hook input priority 0; policy drop;\n"
             "    iifname \"lo\" accept\n    ct state established,related accept\n"
             "    tcp dport 22 accept # handle 4\n  }\n}\n",
    "RA505": "table inet f {\n  chain input {\n    type filter hook input priority 0; policy drop;\n"
             "    tcp dport 80 accept # handle 2\n    tcp dport 80 accept # handle 3\n  }\n}\n",
    "RA506": "table inet f {\n  chain input {\n    type filter hook input priority 0; policy drop;\n"
             "    ip saddr 10.0.0.0/8 return # handle 2\n    accept # handle 3\n  }\n}\n",
}


def _only(text: str, dialect: str, code: str):
    found = [f for f in run_audit([loads(text, dialect=dialect, name="r")], select=[code]).findings
             if f.code == code]
    return found


def _fixed(text: str, dialect: str, code: str) -> tuple[str, str]:
    [finding] = _only(text, dialect, code)
    assert finding.fix, f"{code}: no fix"
    return finding.fix, apply(text, dialect, finding.fix.replace(YOUR_NETWORKS, OURS))


def apply(text: str, dialect: str, fix: str) -> str:
    """The file after the fix, applied as the dialect applies it."""
    commands = [c.strip() for c in fix.split(";") if c.strip()]
    if dialect == "iptables":
        lines = [re.sub(r"^ip6?tables\s+", "", c) for c in commands]
        assert all(not line.startswith("-t") for line in lines) or "*mangle" in text
        lines = [re.sub(r"^-t \S+\s+", "", line) for line in lines]
        return text.replace("COMMIT\n", "".join(f"{line}\n" for line in lines) + "COMMIT\n", 1)
    if dialect == "nftables":
        return text + "".join(re.sub(r"^nft\s+", "", c).replace("'", "") + "\n" for c in commands)
    if dialect == "ufw":
        return text + "".join(c + "\n" for c in commands)
    raise AssertionError(dialect)


@pytest.mark.parametrize("code", sorted(IPTABLES_CASES))
def test_iptables_fix_is_an_iptables_command_that_mends_it(code):
    text = IPTABLES_CASES[code]
    fix, fixed = _fixed(text, "iptables", code)
    assert fix.startswith("iptables ")
    assert _only(fixed, "iptables", code) == []


def test_ip6tables_fix_for_an_ip6tables_file():
    fix, fixed = _fixed(IP6TABLES_CASES["RA205"], "iptables", "RA205")
    assert fix.count("ip6tables -I INPUT 1 -p ipv6-icmp --icmpv6-type ") == 4
    assert _only(fixed, "iptables", "RA205") == []


@pytest.mark.parametrize("code", sorted(NFT_CASES))
def test_nft_fix_is_an_nft_command_that_mends_it(code):
    text = NFT_CASES[code]
    fix, fixed = _fixed(text, "nftables", code)
    assert fix.startswith("nft ") and "iptables" not in fix and "-j " not in fix
    assert _only(fixed, "nftables", code) == []


def test_nft_json_fix_is_written_in_nft_syntax():
    doc = {"nftables": [
        {"table": {"family": "inet", "name": "f"}},
        {"chain": {"family": "inet", "table": "f", "name": "input", "type": "filter", "hook": "input",
                   "prio": 0, "policy": "drop"}},
        {"rule": {"family": "inet", "table": "f", "chain": "input", "handle": 7, "expr": [
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                       "right": {"prefix": {"addr": "10.0.0.0", "len": 8}}}}, {"return": None}]}}]}
    [f] = _only(json.dumps(doc), "nft-json", "RA506")
    assert f.fix == "nft replace rule inet f input handle 7 ip saddr 10.0.0.0/8 drop"


def test_nft_rule_without_a_handle_says_where_to_find_it():
    text = NFT_CASES["RA505"].replace(" # handle 2", "").replace(" # handle 3", "")
    [f] = _only(text, "nftables", "RA505")
    assert f.fix == "nft delete rule inet f input handle <handle> (see nft -a list chain inet f input)"


def test_ufw_fix_is_a_ufw_command_that_mends_it():
    text = "ufw default deny incoming\nufw allow 22/tcp\n"
    fix, fixed = _fixed(text, "ufw", "RA401")
    assert fix.startswith("ufw delete allow in proto tcp from any to any port 22; ufw allow in proto tcp from ")
    assert _only(fixed, "ufw", "RA401") == []


def test_ufw_says_before_rules_where_the_command_line_cannot():
    """ufw's command line has no ICMP types: the fix is the line ufw's
    own before.rules would carry."""
    text = "*filter\n:ufw-before-input - [0:0]\n:INPUT DROP [0:0]\n-A INPUT -j ufw-before-input\n" \
           "-A ufw-before-input -m conntrack --ctstate ESTABLISHED -j ACCEPT\n" \
           "-A ufw-before-input -p tcp --dport 443 -j ACCEPT\nCOMMIT\n"
    rs = loads(text, dialect="iptables")
    for t in rs.tables:
        t.dialect = "ufw"
    [f] = [f for f in run_audit([rs], select=["RA204"]).findings]
    assert f.fix.startswith("add to /etc/ufw/before.rules (ufw's stock rule, before COMMIT), then ufw reload: "
                            "-A ufw-before-input -p icmp --icmp-type fragmentation-needed -j ACCEPT")


def _sg(cidr: str = "0.0.0.0/0") -> str:
    return json.dumps({"SecurityGroups": [{
        "GroupId": "sg-0123", "GroupName": "web", "VpcId": "vpc-1",
        "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": cidr}]}],
        "IpPermissionsEgress": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]}]})


def test_aws_security_group_fix_is_the_aws_cli():
    """aws ec2 authorize-/revoke-security-group-ingress with --ip-permissions
    (https://docs.aws.amazon.com/cli/latest/reference/ec2/revoke-security-group-ingress.html)."""
    [f] = _only(_sg(), "aws-sg", "RA401")
    perm = "IpProtocol=tcp,FromPort=22,ToPort=22,IpRanges=[{CidrIp=%s}]"
    assert f.fix == (f"aws ec2 authorize-security-group-ingress --group-id sg-0123 --ip-permissions '{perm % YOUR_NETWORKS}'; "
                     f"aws ec2 revoke-security-group-ingress --group-id sg-0123 --ip-permissions '{perm % '0.0.0.0/0'}'")


def test_gcp_fix_is_gcloud():
    """gcloud compute firewall-rules update NAME --source-ranges
    (https://cloud.google.com/sdk/gcloud/reference/compute/firewall-rules/update)."""
    doc = {"items": [{"name": "allow-ssh", "network": "projects/p/global/networks/default", "priority": 1000,
                      "direction": "INGRESS", "sourceRanges": ["0.0.0.0/0"],
                      "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}]}]}
    [f] = _only(json.dumps(doc), "gcp", "RA401")
    assert f.fix == f"gcloud compute firewall-rules update allow-ssh --source-ranges={YOUR_NETWORKS}"


def test_azure_fix_is_az_with_the_resource_group_of_the_export():
    """az network nsg rule update --source-address-prefixes
    (https://learn.microsoft.com/cli/azure/network/nsg/rule#az-network-nsg-rule-update)."""
    nsg = {"value": [{"name": "web-nsg", "id": "/subscriptions/s/resourceGroups/rg-web/providers/"
                      "Microsoft.Network/networkSecurityGroups/web-nsg",
                      "properties": {"securityRules": [{"name": "ssh", "properties": {
                          "priority": 100, "direction": "Inbound", "access": "Allow", "protocol": "Tcp",
                          "sourceAddressPrefix": "*", "sourcePortRange": "*",
                          "destinationAddressPrefix": "*", "destinationPortRange": "22"}}]}}]}
    [f] = _only(json.dumps(nsg), "azure", "RA401")
    assert f.fix == (f"az network nsg rule update --resource-group rg-web --nsg-name web-nsg --name ssh "
                     f"--source-address-prefixes {YOUR_NETWORKS}")


def test_a_dialect_without_a_renderer_gets_words_not_another_dialects_syntax():
    from ruleanalyzer.fixes import Add, Spec, render

    assert render(Add(Spec(iif="lo")), dialect="a-new-dialect") == "add at the top of input: accept arriving on lo"


def test_infrastructure_code_is_fixed_in_its_resource_not_with_the_cloud_cli():
    """A Terraform rule's fix names the resource and its attribute; an `aws
    ec2` call would be undone by the next `terraform apply`."""
    tf = ('resource "aws_security_group" "web" {\n  name = "web"\n  ingress {\n    from_port = 22\n'
          '    to_port = 22\n    protocol = "tcp"\n    cidr_blocks = ["0.0.0.0/0"]\n  }\n}\n')
    [f] = _only(tf, "terraform", "RA401")
    assert f.fix == (f"in aws_security_group.web (r:1), the rule for tcp port 22: set cidr_blocks to "
                     f"{YOUR_NETWORKS} instead of any address; then terraform apply")


def test_firewalld_fix_is_firewall_cmd_on_the_zone():
    """firewalld rebuilds its ruleset from zones: the fix changes the zone
    (firewall-cmd --remove-service / --add-rich-rule, then --reload)."""
    zone = ('<?xml version="1.0" encoding="utf-8"?>\n<zone>\n  <short>Public</short>\n'
            '  <service name="ssh"/>\n</zone>\n')
    rs = loads(zone, dialect="firewalld", name="public.xml")
    found = [f for f in run_audit([rs], select=["RA401"]).findings if f.origin and not f.origin.generated]
    assert [f.fix for f in found] == [
        "firewall-cmd --permanent --zone=public --remove-service=ssh; firewall-cmd --permanent --zone=public "
        f"--add-rich-rule='rule family=\"ipv4\" source address=\"{YOUR_NETWORKS}\" service name=\"ssh\" accept'; "
        "firewall-cmd --reload"]
