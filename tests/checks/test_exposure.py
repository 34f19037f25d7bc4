"""Exposure (RA401-RA403) as issue #13 defines it: counted over the
public sources that complete a handshake, per interface role, located,
and right on cloud rulesets for one target."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

from ruleanalyzer import loads
from ruleanalyzer.audit import run_audit
from ruleanalyzer.config import Config, config_from_dict
from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.host import HostContext, Route

from .helpers import findings_for

DATA = Path(__file__).parent / "data"

SSH = """*filter
:INPUT DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
{before}-A INPUT {iface}-p tcp --dport 22 -j ACCEPT
COMMIT
"""


def _codes(text, config=None, dialect="iptables", host=None):
    rs = loads(text, dialect=dialect)
    rs.host = host
    return [(f.code, f.severity, f.message) for f in run_audit([rs], select=["RA4"], config=config).findings]


def test_a_blocked_slash_8_leaves_the_port_exposed_and_says_the_share():
    (code, severity, message), = _codes(SSH.format(before="-A INPUT -s 45.0.0.0/8 -j DROP\n", iface=""))
    assert (code, severity) == ("RA401", "error")
    assert "SSH (22/tcp, IPv4, 99.5" in message  # 2^24 of ~3.7e9 public addresses blocked


def test_half_the_internet_is_not_the_internet():
    assert _codes(SSH.format(before="-A INPUT -s 128.0.0.0/1 -j DROP\n", iface="")) == []


def test_share_threshold_is_an_option():
    text = SSH.format(before="-A INPUT -s 128.0.0.0/1 -j DROP\n", iface="")
    config = Config(options={"RA401": {"min_share": 0.4}})
    assert [c for c, _, _ in _codes(text, config)] == ["RA401"]


def test_configured_uplink_makes_the_exposure_sure_and_internal_silences_it():
    text = SSH.format(before="", iface="-i eth1 ")
    assert [(c, s) for c, s, _ in _codes(text)] == [("RA401", "warning")]  # role unknown
    up = config_from_dict({"interfaces": {"internet": ["eth1"], "internal": ["eth2"]}})
    (code, severity, message), = _codes(text, up)
    assert (code, severity) == ("RA401", "error") and "if those interfaces" not in message
    down = config_from_dict({"interfaces": {"internal": ["eth1"]}})
    assert _codes(text, down) == []


def test_uplink_from_the_host_snapshot_default_route():
    text = SSH.format(before="", iface="-i eth1 ")
    host = HostContext(routes=[Route(ipaddress.ip_network("0.0.0.0/0"), dev="eth1")])
    assert [(c, s) for c, s, _ in _codes(text, host=host)] == [("RA401", "error")]
    # with eth0 the uplink, a port open only on eth1 is open to no one outside
    host = HostContext(routes=[Route(ipaddress.ip_network("0.0.0.0/0"), dev="eth0")])
    assert _codes(text, host=host) == []


def test_config_interfaces_are_checked():
    with pytest.raises(RuleAnalyzerError, match="interfaces"):
        config_from_dict({"interfaces": {"outside": ["eth0"]}})
    with pytest.raises(RuleAnalyzerError, match="interfaces.internet"):
        config_from_dict({"interfaces": {"internet": [1]}})


def test_masquerade_names_the_uplink_and_not_uplink_is_internal():
    text = ("*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -o eth9 -j MASQUERADE\nCOMMIT\n"
            "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
            "-A INPUT ! -i eth9 -j ACCEPT\n-A INPUT -i eth9 -p tcp --dport 3306 -j ACCEPT\nCOMMIT\n")
    (code, severity, message), = _codes(text)
    assert code == "RA401" and "MySQL" in message and "SSH" not in message


@pytest.mark.parametrize("name, doc", [
    # "[VPC only] Use -1 to specify all protocols."
    # https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_IpPermission.html
    ("aws_sg_allow_all.json", "aws-sg"),
    # allowed[].IPProtocol: a protocol name, number, or "all" (every protocol);
    # https://cloud.google.com/compute/docs/reference/rest/v1/firewalls and
    # https://cloud.google.com/firewall/docs/firewalls#protocols_and_ports
    ("gcp_allow_all.json", "gcp"),
    # protocol "*" = Any, sourceAddressPrefix "*" = any address;
    # https://learn.microsoft.com/en-us/azure/virtual-network/network-security-groups-overview#security-rules
    ("azure_allow_all.json", "azure"),
])
def test_cloud_allow_everything_is_an_error_at_its_json_path(name, doc):
    result = run_audit([str(DATA / name)], select=["RA4"])
    (finding,) = result.findings
    assert (finding.code, finding.severity) == ("RA402", "error")
    assert finding.where.file.endswith(name) and finding.where.path


@pytest.mark.parametrize("name", ["aws_sg_allow_all.json", "gcp_allow_all.json", "azure_allow_all.json"])
def test_cloud_ssh_only_is_ra401_and_https_only_is_silent(name, tmp_path):
    text = (DATA / name).read_text()
    data = json.loads(text)
    if name.startswith("aws"):
        perm = data["SecurityGroups"][0]["IpPermissions"][0]
        perm.update({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22})
    elif name.startswith("gcp"):
        data["items"][0]["allowed"] = [{"IPProtocol": "tcp", "ports": ["22"]}]
    else:
        props = data["properties"]["securityRules"][0]["properties"]
        props.update({"protocol": "Tcp", "destinationPortRange": "22"})
    path = tmp_path / name
    path.write_text(json.dumps(data))
    codes = [f.code for f in run_audit([str(path)], select=["RA4"]).findings]
    assert "RA401" in codes and "RA402" not in codes
    path.write_text(json.dumps(data).replace('"22"', '"443"').replace('"FromPort": 22, "ToPort": 22',
                                                                      '"FromPort": 443, "ToPort": 443'))
    assert [f.code for f in run_audit([str(path)], select=["RA4"]).findings] == []


def test_every_exposure_finding_is_located():
    fixtures = sorted(Path(__file__).parent.glob("RA40*/trigger*")) + sorted(DATA.glob("*_allow_all.json"))
    found = run_audit([str(p) for p in fixtures], select=["RA4"]).findings
    assert len(found) >= len(fixtures)
    for f in found:
        assert f.where and f.where.file and (f.where.line or f.where.path), f.message


def test_zone_chains_name_the_uplink():
    # OpenWrt-shaped: the WAN zone chain filters eth1; a port open on any
    # other (unnamed) interface is not open to the internet.
    text = ("*filter\n:INPUT ACCEPT [0:0]\n:zone_wan - [0:0]\n:input_lan - [0:0]\n"
            "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
            "-A INPUT -i eth1 -j zone_wan\n-A INPUT -i br-lan -j input_lan\n"
            "-A zone_wan -p tcp --dport 443 -j ACCEPT\n-A zone_wan -j DROP\nCOMMIT\n")
    assert _codes(text) == []
    opened = text.replace("-A zone_wan -p tcp --dport 443", "-A zone_wan -p tcp --dport 22")
    assert [(c, s) for c, s, _ in _codes(opened)] == [("RA401", "error")]


def test_a_handshake_needs_its_last_ack_through_the_ban_chain():
    """A SYN-only accept before a ban chain: the SYN and the SYN-ACK pass,
    but the client's ACK (ESTABLISHED, no longer a bare SYN) meets the ban
    of 96.0.0.0/3 — an eighth of the internet cannot connect (found by the
    random kernel proof, seed 37)."""
    text = ("*filter\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:bans - [0:0]\n"
            "-A INPUT -p tcp --dport 22 --tcp-flags SYN,RST,ACK,FIN SYN -j ACCEPT\n"
            "-A INPUT -p tcp --dport 22 -j bans\n-A INPUT -j DROP\n"
            "-A bans -s {ban} -j REJECT\n-A bans -p tcp -j ACCEPT\nCOMMIT\n")
    config = Config(options={"RA401": {"ports": {22: "SSH"}}, "RA402": {"ports": {22: "SSH"}}})
    assert _codes(text.format(ban="96.0.0.0/3"), config) == []
    (code, _, message), = _codes(text.format(ban="96.0.0.0/8"), config)
    assert code == "RA401" and "SSH (22/tcp, IPv4, 99.5" in message


def _tf_codes(text):
    rs = loads(text, "terraform", "main.tf")
    return [(f.code, f.message) for f in run_audit([rs], select=["RA4"]).findings]


SG = ('{head}resource "aws_security_group" "sg" {{\n  name = "sg"\n{count}'
      '  ingress {{\n    from_port = {port}\n    to_port = {port}\n    protocol = "tcp"\n'
      '    cidr_blocks = {cidr}\n  }}\n}}\n')


def test_ra404_headline_names_one_port_and_one_value_the_rest_is_in_the_details():
    """Every port open, a source from a variable, a prefix list: the
    headline stays short, naming the first service and value with a count;
    the doubts, the example, every service and value are in the details."""
    text = ('resource "aws_security_group" "sg" {\n  name = "sg"\n  ingress {\n'
            '    from_port = var.from\n    to_port = var.to\n    protocol = "tcp"\n'
            '    cidr_blocks = var.cidrs\n    prefix_list_ids = [var.lists]\n  }\n}\n')
    rs = loads(text, "terraform", "main.tf")
    f = [f for f in run_audit([rs], select=["RA4"]).findings if "IPv4" in f.message][0]
    assert f.code == "RA404" and f.message == (
        "may be open to the whole internet: SSH (22/tcp, IPv4) and 17 more services — depends on "
        "`var.from` and 1 more value")
    details = "\n".join(f.details)
    for part in ("`var.cidrs` (no value given)", "the contents of prefix list var.lists",
                 "e.g. tcp 1.0.0.1:1024 -> 192.0.2.1:22 [SYN] is accepted unless it does",
                 "every service: SSH (22/tcp, IPv4), Telnet", "MongoDB (27017/tcp, IPv4)"):
        assert part in details, (part, f.details)


def test_what_a_configuration_leaves_open_is_said_as_info_naming_the_value():
    """A value the configuration does not give is not state a packet meets:
    nothing is *likely* (RA403). Whoever supplies it decides, so RA404
    (info) names the value (issue #19's "may expose 22 — depends on …"):
    a port from a variable, a source still to be given. A source computed at
    apply time from another resource (a VPC's CIDR, private by definition;
    terragoat): nothing."""
    found = _tf_codes(SG.format(head="", count="", port="var.port", cidr='["0.0.0.0/0"]'))
    assert [c for c, _m in found] == ["RA404"] and "depends on `var.port`" in found[0][1]
    found = _tf_codes(SG.format(head="", count="", port="22", cidr="var.cidrs"))
    assert [c for c, _m in found] == ["RA404"] and "may be open to the whole internet: SSH" in found[0][1]
    vpc = 'resource "aws_vpc" "web" {\n  cidr_block = var.block\n}\n'
    assert _tf_codes(SG.format(head=vpc, count="", port="22", cidr="[aws_vpc.web.cidr_block]")) == []
    # a concrete rule whose existence only is undecided: if it is made, SSH is open
    (code, message), = _tf_codes(SG.format(head="", count="  count = var.create ? 1 : 0\n",
                                           port="22", cidr='["0.0.0.0/0"]'))
    assert code == "RA403" and "SSH (22/tcp, IPv4)" in message
    # and a given value decides it
    (code, _), = _tf_codes(SG.format(head='variable "port" { default = 22 }\n', count="",
                                     port="var.port", cidr='["0.0.0.0/0"]'))
    assert code == "RA401"


def test_a_router_forwarding_everything_from_the_internet_is_allow_everything():
    """FORWARD ACCEPT on a host that routes (a rule someone wrote forwards):
    every port of every host behind it is reachable — RA402 at the policy
    line, not eighteen RA401 ports; behind a DROP policy, what one interface
    of unknown role forwards is said with the caveat."""
    text = ("*filter\n:INPUT DROP [0:0]\n:FORWARD {policy} [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            "-A FORWARD -s 203.0.113.66 -j DROP\n-A FORWARD -i eth1 -o eth0 -j ACCEPT\nCOMMIT\n")
    (code, severity, message), = _codes(text.format(policy="ACCEPT"))
    assert (code, severity) == ("RA402", "error") and "is forwarded (IPv4)" in message
    assert _codes(text.format(policy="DROP")) == []  # eth1 -> eth0 gets no reply back
    est = text.replace("-A FORWARD -s", "-A FORWARD -m conntrack --ctstate ESTABLISHED -j ACCEPT\n-A FORWARD -s")
    (code, severity, message), = _codes(est.format(policy="DROP"))
    assert (code, severity) == ("RA402", "warning") and "arriving on eth1" in message


def test_ra401_ra403_headlines_say_once_what_every_service_shares_and_list_the_rest_below():
    """Every sensitive port open on eth1 (role unknown): the headline names
    two services, counts the rest and says once what they share (version,
    interface); every service, the claim and its example are in the
    details. RA403 names its first doubt and counts the others."""
    rules = ("*filter\n:INPUT DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n"
             "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
             "{doubt}-A INPUT -i eth1 -p tcp -m multiport --dports 22,23,80,3389 -j ACCEPT\nCOMMIT\n")
    rs = loads(rules.format(doubt=""))
    f, = run_audit([rs], select=["RA401"]).findings
    assert f.message == ("open to the whole internet: SSH (22/tcp), Telnet (23/tcp), RDP (3389/tcp) "
                         "(all IPv4, arriving on eth1) — if eth1 faces the internet")
    assert f.details[0] == "any public address can complete a connection (SYN in, SYN-ACK out)"
    rs = loads(rules.format(doubt="-A INPUT -m recent --name bad --rcheck -j DROP\n"
                                  "-A INPUT -m limit --limit 5/sec -j DROP\n"), dialect="iptables")
    f, = run_audit([rs], select=["RA403"]).findings
    assert f.message.startswith("likely open to the whole internet: SSH (22/tcp), Telnet (23/tcp), RDP "
                                "(3389/tcp) (all IPv4, arriving on eth1) — depends on traffic history") \
        and f.message.endswith(" and 1 more — if eth1 faces the internet"), f.message
    assert any(d.startswith("depends on: traffic history") and "packet rate" in d for d in f.details)
    wide = rules.format(doubt="").replace("22,23,80,3389", "1:65535")
    f, = run_audit([loads(wide)], select=["RA401"]).findings
    assert f.message.startswith("open to the whole internet: SSH (22/tcp), Telnet (23/tcp) and 16 more "
                                "services (all IPv4, arriving on eth1)") and len(f.message) < 160
    assert "MongoDB (27017/tcp, IPv4, arriving on eth1)" in f.details[-1]
