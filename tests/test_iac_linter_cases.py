"""The linters' known misses and false positives (checkov, trivy/tfsec,
KICS match patterns on single resources), each as a Terraform fixture:
we answer over sets and in rule order, so each is reported — or not —
for its real reason."""

import pytest

from ruleanalyzer.audit import run_audit
from ruleanalyzer.engine import evaluate
from ruleanalyzer.loader import loads
from tests.test_iac import pkt


def sg(ingress: str, name: str = "g") -> str:
    return f'resource "aws_security_group" "{name}" {{\n  name = "{name}"\n{ingress}}}\n'


def rule(ports="22", proto="tcp", cidrs='["0.0.0.0/0"]', v6=None) -> str:
    lo, _, hi = ports.partition("-")
    v6_text = f"    ipv6_cidr_blocks = {v6}\n" if v6 else ""
    return (f'  ingress {{\n    from_port = {lo}\n    to_port = {hi or lo}\n    protocol = "{proto}"\n'
            f'    cidr_blocks = {cidrs}\n{v6_text}  }}\n')


def nacl(*entries) -> str:
    body = "".join(
        f'  ingress {{\n    rule_no = {n}\n    action = "{a}"\n    protocol = "tcp"\n'
        f'    from_port = {p.split("-")[0]}\n    to_port = {p.split("-")[-1]}\n    cidr_block = "{c}"\n  }}\n'
        for n, a, p, c in entries)
    # NACLs are stateless: RA401 counts handshakes that complete (issue #13), so
    # the replies need their own egress rule.
    body += ('  egress {\n    rule_no = 100\n    action = "allow"\n    protocol = "tcp"\n'
             '    from_port = 0\n    to_port = 65535\n    cidr_block = "0.0.0.0/0"\n  }\n')
    return f'resource "aws_network_acl" "n" {{\n{body}}}\n'


def ra401(text: str) -> list[str]:
    rs = loads(text, "terraform", "case.tf")
    # what the admin reads: the headline and its details (every service is listed there)
    return [" ".join([f.message, *f.details]) for f in run_audit([rs], select=["RA401"]).findings]


MISSES = {
    "port range containing 22": sg(rule("20-25")),
    "split CIDRs 0.0.0.0/1 + 128.0.0.0/1": sg(rule(cidrs='["0.0.0.0/1", "128.0.0.0/1"]')),
    "::/0": sg(rule(cidrs="[]", v6='["::/0"]')),
    "NACL order: allow before a later deny": nacl((100, "allow", "22", "0.0.0.0/0"),
                                                 (200, "deny", "22", "0.0.0.0/0")),
    "inline NACL rules": nacl((100, "allow", "0-65535", "0.0.0.0/0")),
}


@pytest.mark.parametrize("case", MISSES)
def test_known_misses_are_reported(case):
    messages = ra401(MISSES[case])
    assert any("SSH (22/tcp" in m for m in messages), messages


def test_deny_before_allow_reports_the_other_ports_not_the_denied_one():
    messages = ra401(nacl((100, "deny", "22", "0.0.0.0/0"), (200, "allow", "0-65535", "0.0.0.0/0")))
    assert messages and not any("SSH" in m for m in messages)
    assert any("RDP (3389/tcp" in m for m in messages)


def test_protocol_minus_one_from_anywhere_is_reported():
    # issue #13: allow-everything is the loudest exposure, RA402 (RA401 leaves it to it)
    rs = loads(sg(rule("0", proto="-1")), "terraform", "case.tf")
    assert [f.code for f in run_audit([rs], select=["RA401", "RA402"]).findings] == ["RA402"]


def test_unknown_values_are_unknown_naming_the_variable():
    rs = loads('variable "admin_cidr" {}\n' + sg(rule(cidrs="[var.admin_cidr]")), "terraform", "u.tf")
    result = evaluate(rs, pkt("203.0.113.9", 22))
    assert result.verdict == "unknown"
    assert any("var.admin_cidr" in d for d in result.depends_on)


FALSE_POSITIVES = {
    "a /29": sg(rule(cidrs='["203.0.113.8/29"]')),
    "a DENY rule": nacl((100, "deny", "22", "0.0.0.0/0")),
    "an ALLOW already blocked by a lower-numbered DENY": nacl((100, "deny", "22", "0.0.0.0/0"),
                                                             (200, "allow", "22", "0.0.0.0/0")),
}


@pytest.mark.parametrize("case", FALSE_POSITIVES)
def test_known_false_positives_are_not_reported(case):
    assert ra401(FALSE_POSITIVES[case]) == []


def test_unknown_values_are_ra404_in_the_audit_naming_the_variable():
    """Linters skip a CIDR they cannot read; we say SSH may be exposed and on what."""
    rs = loads('variable "admin_cidr" {}\n' + sg(rule(cidrs="[var.admin_cidr]")), "terraform", "u.tf")
    found = [f for f in run_audit([rs], select=["RA4"]).findings]
    assert [f.code for f in found] == ["RA404"]
    assert "SSH (22/tcp" in found[0].message and "var.admin_cidr" in found[0].message
    assert (found[0].where.file, found[0].where.line) == ("u.tf", 4)  # its ingress block


# The same misses and false positives on GCP (google_compute_firewall) and
# Azure (azurerm_network_security_group) rules, and CloudFormation.

def gcp(*rules) -> str:
    out = []
    for i, (kind, ports, ranges, priority) in enumerate(rules):
        out.append(f'resource "google_compute_firewall" "r{i}" {{\n  name = "r{i}"\n  network = "prod"\n'
                   f'  priority = {priority}\n  source_ranges = {ranges}\n'
                   f'  {kind} {{\n    protocol = "tcp"\n    ports = ["{ports}"]\n  }}\n}}\n')
    return "".join(out)


def azure(*rules) -> str:
    body = "".join(
        f'  security_rule {{\n    name = "r{i}"\n    priority = {priority}\n    direction = "Inbound"\n'
        f'    access = "{access}"\n    protocol = "Tcp"\n    source_port_range = "*"\n'
        f'    destination_port_range = "{ports}"\n    source_address_prefixes = {prefixes}\n'
        f'    destination_address_prefix = "*"\n  }}\n'
        for i, (access, ports, prefixes, priority) in enumerate(rules))
    return f'resource "azurerm_network_security_group" "n" {{\n  name = "n"\n{body}}}\n'


def cfn(ports, cidr) -> str:
    lo, _, hi = ports.partition("-")
    return ("Resources:\n  G:\n    Type: AWS::EC2::SecurityGroup\n    Properties:\n"
            "      GroupDescription: g\n      SecurityGroupIngress:\n"
            f"        - IpProtocol: tcp\n          FromPort: {lo}\n          ToPort: {hi or lo}\n"
            f"          {'CidrIpv6' if ':' in cidr else 'CidrIp'}: {cidr}\n")


def ra401_of(text: str, dialect: str) -> list[str]:
    rs = loads(text, dialect, "case.yaml" if dialect == "cloudformation" else "case.tf")
    return [" ".join([f.message, *f.details]) for f in run_audit([rs], select=["RA401"]).findings]


OTHER_MISSES = {
    "GCP port range containing 22": (gcp(("allow", "20-25", '["0.0.0.0/0"]', 1000)), "terraform"),
    "GCP split CIDRs": (gcp(("allow", "22", '["0.0.0.0/1", "128.0.0.0/1"]', 1000)), "terraform"),
    "GCP ::/0": (gcp(("allow", "22", '["::/0"]', 1000)), "terraform"),
    "GCP deny at a lower priority than the allow": (
        gcp(("allow", "22", '["0.0.0.0/0"]', 100), ("deny", "22", '["0.0.0.0/0"]', 200)), "terraform"),
    "Azure port range containing 22": (azure(("Allow", "20-25", '["0.0.0.0/0"]', 100)), "terraform"),
    "Azure split prefixes": (azure(("Allow", "22", '["0.0.0.0/1", "128.0.0.0/1"]', 100)), "terraform"),
    "CloudFormation port range containing 22": (cfn("20-25", "0.0.0.0/0"), "cloudformation"),
    "CloudFormation ::/0": (cfn("22", "::/0"), "cloudformation"),
}


@pytest.mark.parametrize("case", OTHER_MISSES)
def test_known_misses_in_gcp_azure_cloudformation(case):
    text, dialect = OTHER_MISSES[case]
    messages = ra401_of(text, dialect)
    assert any("SSH (22/tcp" in m for m in messages), messages


OTHER_FALSE_POSITIVES = {
    "GCP /29": (gcp(("allow", "22", '["203.0.113.8/29"]', 1000)), "terraform"),
    "GCP deny rule": (gcp(("deny", "22", '["0.0.0.0/0"]', 1000)), "terraform"),
    "GCP allow behind a higher-priority deny": (
        gcp(("deny", "22", '["0.0.0.0/0"]', 100), ("allow", "22", '["0.0.0.0/0"]', 200)), "terraform"),
    "GCP allow behind a deny of the same priority": (
        gcp(("allow", "22", '["0.0.0.0/0"]', 1000), ("deny", "22", '["0.0.0.0/0"]', 1000)), "terraform"),
    "Azure /29": (azure(("Allow", "22", '["203.0.113.8/29"]', 100)), "terraform"),
    "Azure allow behind a lower-numbered deny of other splits": (
        azure(("Deny", "22", '["0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/1"]', 100),
              ("Allow", "22", '["0.0.0.0/1", "128.0.0.0/1"]', 200)), "terraform"),
    "CloudFormation /29": (cfn("22", "203.0.113.8/29"), "cloudformation"),
}


@pytest.mark.parametrize("case", OTHER_FALSE_POSITIVES)
def test_known_false_positives_in_gcp_azure_cloudformation(case):
    text, dialect = OTHER_FALSE_POSITIVES[case]
    assert not [m for m in ra401_of(text, dialect) if "SSH" in m]


def test_nacl_allow_behind_a_deny_of_split_cidrs_is_not_reported():
    """A lower-numbered DENY written as two halves still blocks the ALLOW."""
    assert ra401(nacl((100, "deny", "22", "0.0.0.0/1"), (110, "deny", "22", "128.0.0.0/1"),
                      (200, "allow", "22", "0.0.0.0/0"))) == []
