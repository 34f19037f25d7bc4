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
    return [f.message for f in run_audit([rs], select=["RA401"]).findings]


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
