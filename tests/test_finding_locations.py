"""Issue #13: every finding has a location — a file and line, or the JSON
path of a cloud rule — never null. Own fixtures of every dialect; the cases
that once had none (RA207 with IPv4 filtered in prerouting only, chains an
nft fragment creates with ``add rule``, firewalld's inferred version, ufw's
declared chains)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ruleanalyzer import load
from ruleanalyzer.audit import run_audit

IPTABLES = """\
*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:unused - [0:0]
-A INPUT -p tcp --dport 22 -j ACCEPT
-A INPUT -p tcp --dport 22 -j ACCEPT
-A INPUT -p tcp --syn -m state --state ESTABLISHED -j ACCEPT
-A unused -j DROP
COMMIT
"""

IP6TABLES = """\
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p ipv6-icmp -j DROP
COMMIT
"""

NFT = """\
table inet f {
  chain input {
    type filter hook input priority 0; policy drop;
    tcp dport 22 accept
    tcp dport 22 accept
    meta l4proto ipv6-icmp drop
  }
  chain lonely {
    tcp dport 80 accept
  }
}
"""

#: IPv4 filtered in prerouting only, IPv6 left open: RA207 (once without a chain).
NFT_PREROUTING = """\
table inet raw4 {
  chain pre {
    type filter hook prerouting priority 0; policy accept;
    ip saddr 192.0.2.0/24 drop
  }
}
"""

#: A fragment: chains named only by ``add rule`` (no ``add chain``).
NFT_FRAGMENT = """\
add table ip t
add rule ip t c tcp dport 22 accept
add rule ip t2 d tcp dport 23 accept
"""

NFT_JSON = {"nftables": [
    {"add": {"rule": {"family": "ip", "table": "t", "chain": "c",
                      "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}},
                                          "right": 22}}, {"accept": None}]}}},
]}

NFT_JSON_PREROUTING = {"nftables": [
    {"table": {"family": "inet", "name": "f", "handle": 1}},
    {"chain": {"family": "inet", "table": "f", "name": "pre", "handle": 1, "type": "filter",
               "hook": "prerouting", "prio": 0, "policy": "accept"}},
    {"rule": {"family": "inet", "table": "f", "chain": "pre", "handle": 2,
              "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                                  "right": {"prefix": {"addr": "192.0.2.0", "len": 24}}}}, {"drop": None}]}},
]}

UFW_USER = """\
*filter
:ufw-user-input - [0:0]
:ufw-user-output - [0:0]
:ufw-user-forward - [0:0]
:ufw-user-limit - [0:0]
:ufw-user-limit-accept - [0:0]
### RULES ###

### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in
-A ufw-user-input -p tcp --dport 22 -j ACCEPT

### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in
-A ufw-user-input -p tcp --dport 22 -j ACCEPT

### END RULES ###
-A ufw-user-limit -j REJECT
-A ufw-user-limit-accept -j ACCEPT
COMMIT
"""

FIREWALLD_ZONE = """\
<?xml version="1.0" encoding="utf-8"?>
<zone target="ACCEPT">
  <short>open</short>
  <port protocol="tcp" port="22"/>
  <port protocol="tcp" port="22"/>
</zone>
"""

#: ``firewall-cmd --list-all-zones`` of firewalld 2.x (``ingress-priority``).
FIREWALLD_LISTING = """\
public (active)
  target: default
  ingress-priority: 0
  egress-priority: 0
  icmp-block-inversion: no
  interfaces: eth0
  sources:
  services: ssh
  ports: 8080/tcp
  protocols:
  forward: yes
  masquerade: no
  forward-ports:
  source-ports:
  icmp-blocks:
  rich rules:
"""

AWS_SG = {"SecurityGroups": [
    {"GroupId": "sg-1", "GroupName": "open", "VpcId": "vpc-1", "Description": "d",
     "IpPermissions": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [],
                        "PrefixListIds": [], "UserIdGroupPairs": []},
                       {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                        "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [],
                        "PrefixListIds": [], "UserIdGroupPairs": []}],
     "IpPermissionsEgress": []},
]}

AWS_NACL = {"NetworkAcls": [
    {"NetworkAclId": "acl-1", "VpcId": "vpc-1", "IsDefault": False, "Associations": [],
     "Entries": [
         {"RuleNumber": 100, "Protocol": "-1", "Egress": False, "CidrBlock": "0.0.0.0/0", "RuleAction": "allow"},
         {"RuleNumber": 200, "Protocol": "6", "Egress": False, "CidrBlock": "0.0.0.0/0", "RuleAction": "deny",
          "PortRange": {"From": 22, "To": 22}},
         {"RuleNumber": 32767, "Protocol": "-1", "Egress": False, "CidrBlock": "0.0.0.0/0",
          "RuleAction": "deny"}]},
]}

GCP = {"kind": "compute#firewallList", "items": [
    {"name": "allow-all", "network": "projects/p/global/networks/prod", "priority": 1000,
     "direction": "INGRESS", "sourceRanges": ["0.0.0.0/0"], "allowed": [{"IPProtocol": "all"}]},
    {"name": "ssh", "network": "projects/p/global/networks/prod", "priority": 1100,
     "direction": "INGRESS", "sourceRanges": ["0.0.0.0/0"], "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}]},
]}

AZURE = [{"name": "nsg", "resourceGroup": "rg", "location": "westeurope", "securityRules": [
    {"name": "any", "priority": 100, "direction": "Inbound", "access": "Allow", "protocol": "*",
     "sourceAddressPrefix": "*", "sourcePortRange": "*", "destinationAddressPrefix": "*",
     "destinationPortRange": "*"},
    {"name": "ssh", "priority": 110, "direction": "Inbound", "access": "Allow", "protocol": "Tcp",
     "sourceAddressPrefix": "*", "sourcePortRange": "*", "destinationAddressPrefix": "*",
     "destinationPortRange": "22"}]}]

#: name → (file text, dialect or None for detection)
FIXTURES = {
    "host.rules": (IPTABLES, "iptables"),
    "host6.rules": (IP6TABLES, "iptables"),
    "host.nft": (NFT, "nftables"),
    "prerouting.nft": (NFT_PREROUTING, "nftables"),
    "fragment.nft": (NFT_FRAGMENT, "nftables"),
    "fragment.json": (json.dumps(NFT_JSON, indent=1), "nft-json"),
    "prerouting.json": (json.dumps(NFT_JSON_PREROUTING, indent=1), "nft-json"),
    "user.rules": (UFW_USER, "ufw"),
    "zone.xml": (FIREWALLD_ZONE, "firewalld"),
    "listing.txt": (FIREWALLD_LISTING, "firewalld"),
    "sg.json": (json.dumps(AWS_SG, indent=1), "aws-sg"),
    "nacl.json": (json.dumps(AWS_NACL, indent=1), "aws-nacl"),
    "gcp.json": (json.dumps(GCP, indent=1), "gcp"),
    "nsg.json": (json.dumps(AZURE, indent=1), "azure"),
}


def _located(f) -> bool:
    w = f.where
    return w is not None and bool(w.file) and (w.line > 0 or bool(w.path))


def _audit(tmp_path: Path, name: str):
    """The findings an audit shows (stock-scaffolding ones are hidden: ufw's
    skip-to-policy chains exist in no file, only in ufw-init's code)."""
    text, dialect = FIXTURES[name]
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    ruleset = load(path, dialect=dialect)
    return run_audit([ruleset]).findings


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_every_finding_has_a_location(tmp_path, name):
    findings = _audit(tmp_path, name)
    assert findings, f"{name}: the fixture should give findings to check"
    missing = [(f.code, f.message[:80]) for f in findings if not _located(f)]
    assert not missing, f"{name}: findings without a line or path: {missing}"


@pytest.mark.parametrize("name", ["prerouting.nft", "prerouting.json"])
def test_ipv6_left_open_points_at_the_prerouting_chain(tmp_path, name):
    found = [f for f in _audit(tmp_path, name) if f.code == "RA207"]
    assert len(found) == 1
    where = found[0].where
    assert where.chain == "pre"
    if name.endswith(".nft"):
        assert where.line == 3  # the chain's type/policy line
    else:
        assert where.path.startswith("nftables[1].chain")


def test_nft_fragment_chains_point_at_the_command_that_made_them(tmp_path):
    unused = {f.where.chain: f.where for f in _audit(tmp_path, "fragment.nft") if f.code == "RA503"}
    assert {c: w.line for c, w in unused.items()} == {"c": 2, "d": 3}
    ruleset = load(tmp_path / "fragment.nft", dialect="nftables")
    t2 = next(t for t in ruleset.tables if t.name == "t2")
    assert t2.location.line == 3  # the table 'add rule' created, too


def test_nft_json_rule_command_gives_its_chain_a_path(tmp_path):
    found = [f for f in _audit(tmp_path, "fragment.json") if f.code == "RA503"]
    assert [f.where.path for f in found] == ["nftables[0].add"]


def test_ufw_chains_point_at_their_declaration(tmp_path):
    path = tmp_path / "user.rules"
    path.write_text(UFW_USER, encoding="utf-8")
    ruleset = load(path, dialect="ufw")
    chains = {c.name: c for c in ruleset.chains()}
    assert chains["ufw-user-limit"].location.file == str(path)
    assert chains["ufw-user-limit"].location.line == 5
    assert chains["ufw-user-limit-accept"].location.line == 6


def test_firewalld_version_note_points_at_the_line_it_was_inferred_from(tmp_path):
    notes = [f for f in _audit(tmp_path, "listing.txt") if f.code == "RA002" and "2.0.0" in f.message]
    assert len(notes) == 1
    assert notes[0].where.line == 3  # ingress-priority: 0


def test_ufw_init_chains_point_at_the_default_policy_they_are_made_of(tmp_path):
    """ufw-skip-to-policy-X (and the reject/track rules) are ufw-init's,
    made of the default X policy: their stock findings (--include-generated)
    point at the line that sets it, or say that ufw-init made them of
    ufw's own default."""
    for d in ("ufw", "default"):
        (tmp_path / d).mkdir()
    (tmp_path / "ufw" / "user.rules").write_text(UFW_USER, encoding="utf-8")
    default = tmp_path / "default" / "ufw"  # /etc/default/ufw
    default.write_text('IPV6=no\nDEFAULT_INPUT_POLICY="DROP"\n\nDEFAULT_OUTPUT_POLICY="ACCEPT"\n', encoding="utf-8")
    result = run_audit([str(tmp_path)], include_generated=True)
    assert len(result.inputs) == 1  # one host
    skips = {f.where.chain: f.where for f in result.findings if f.code == "RA503" and "skip" in f.where.chain}
    assert set(skips) == {"ufw-skip-to-policy-output", "ufw-skip-to-policy-forward"}
    output = skips["ufw-skip-to-policy-output"]
    assert (output.file, output.line) == (str(default), 4)
    forward = skips["ufw-skip-to-policy-forward"]
    assert forward.line == 0 and forward.file == \
        "<ufw-init, of the default forward policy DROP (ufw's default: not given)>"
    # hidden by default, as stock scaffolding
    assert not any("skip" in (f.where.chain or "") for f in run_audit([str(tmp_path)]).findings)


def test_ufw_init_rules_point_at_the_command_or_status_line_of_their_policy():
    from ruleanalyzer import loads

    rs = loads("ufw allow 22/tcp\nufw default reject routed\nufw enable\n", dialect="ufw", name="setup.sh")
    chains = {c.name: c for c in rs.chains()}
    for name in ("ufw-skip-to-policy-forward", "ufw-reject-forward"):
        assert [(r.location.file, r.location.line) for r in chains[name].rules] == [("setup.sh", 2)]
    status = ("Status: active\nLogging: on (low)\nDefault: deny (incoming), allow (outgoing), disabled (routed)\n"
              "New profiles: skip\n\nTo                         Action      From\n"
              "--                         ------      ----\n22/tcp                     ALLOW IN    Anywhere\n")
    chains = {c.name: c for c in loads(status, dialect="ufw", name="status.txt").chains()}
    assert chains["ufw-skip-to-policy-output"].location.line == 3
    assert {r.location.line for r in chains["ufw-track-output"].rules} == {3}
