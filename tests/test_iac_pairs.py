"""Fixture pairs: the same GCP firewall rules and Azure NSG as a Terraform
plan JSON, as HCL and as the cloud's own export (gcloud firewall-rules list,
az network nsg show) give identical models, verdicts and audit findings; the
AWS forms (plan, HCL, CloudFormation, describe-*) audit identically too."""

from ipaddress import ip_address
from pathlib import Path

import pytest

from ruleanalyzer.audit import run_audit
from ruleanalyzer.engine import evaluate
from ruleanalyzer.loader import load
from ruleanalyzer.model import SYN, Packet
from ruleanalyzer.targets import select_target

from .test_iac import FORMS, model

IAC = Path(__file__).parent / "parsers" / "iac"
FW = {"plan": [IAC / "fw.plan.json"], "hcl": [IAC / "fw.tf"],
      "export": [IAC / "fw.gcp.json", IAC / "fw.nsg.json"]}


def syn(src, dport):
    return Packet(src=ip_address(src), dst=ip_address("10.0.1.10" if ":" not in src else "2001:db8::10"),
                  proto=6, sport=40000, dport=dport, flags=SYN, state="new", hook="input")


def test_gcp_and_azure_models_are_identical_in_every_form():
    models = {form: model(load(*paths)) for form, paths in FW.items()}
    assert set(models["plan"]) == {"gcp", "azure"}
    assert models["plan"] == models["hcl"] == models["export"]


@pytest.mark.parametrize("target,src,dport,verdict", [
    ("tag:bastion", "198.51.100.7", 22, "accept"),   # priority 900 allow for the tag
    ("tag:bastion", "203.0.113.9", 22, "drop"),      # GCP's implied deny ingress
    ("all", "198.51.100.7", 22, "drop"),             # the rule targets bastion only
    ("all", "2001:db8:1::9", 8080, "accept"),        # ::/0 and a port range
    ("all", "203.0.113.9", 23, "drop"),              # deny at 800
    ("nsg", "203.0.113.9", 3389, "drop"),    # Deny 100 before Allow 200
    ("nsg", "203.0.113.9", 22, "accept"),    # plural prefixes and ports
    ("nsg", "192.0.2.9", 22, "unknown"),     # AllowVnetInBound: is 192.0.2.9 in VirtualNetwork?
])
def test_identical_verdicts(target, src, dport, verdict):
    verdicts = {}
    for form, paths in FW.items():
        rs = load(*paths)
        rs.tables = [t for t in rs.tables if t.dialect == ("azure" if target == "nsg" else "gcp")]
        chosen = select_target(rs, None if target == "nsg" else target)  # the only NSG
        verdicts[form] = evaluate(chosen, syn(src, dport)).verdict
    assert set(verdicts.values()) == {verdict}, verdicts


def _findings(paths):
    """Findings but RA002 (notes on an export's shape: an az export without
    its default rules); the table each form names differently is kept apart."""
    result = run_audit([load(*paths)], select=None)
    return sorted((f.code, f.where.table if f.where else None, f.message) for f in result.findings
                  if f.code != "RA002")


def test_identical_audit_findings_gcp_azure():
    found = {form: _findings(paths) for form, paths in FW.items()}
    # deny-telnet denies what GCP's implied deny drops anyway: removable, in every form.
    assert "RA104" in {c for c, _t, _m in found["export"]}
    said = {form: [(c, m) for c, _t, m in f] for form, f in found.items()}
    assert said["plan"] == said["hcl"] == said["export"], said


def test_identical_audit_findings_aws():
    found = {form: _findings(paths) for form, paths in FORMS.items()}
    said = {form: [(c, m) for c, _t, m in f] for form, f in found.items()}
    assert {c for c, _m in said["describe"]} >= {"RA401", "RA104"}
    assert said["plan"] == said["hcl"] == said["cfn"] == said["describe"], said
