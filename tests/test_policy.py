"""Policy assertions: must-allow / must-deny / only-from / connect, from
YAML and from pytest, each failure with a witness and the deciding rule."""

from __future__ import annotations

import pytest

from ruleanalyzer import loads
from ruleanalyzer.cli import main
from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.policy import (assert_allows, assert_denies, assert_only_from, check,
                                 load_policy, parse_flow)

RULES = """*filter
:INPUT DROP [0:0]
-A INPUT -p tcp -d 10.0.0.5 --dport 443 -j ACCEPT
-A INPUT -p tcp -s 10.0.0.0/8 --dport 5432 -j ACCEPT
-A INPUT -p tcp -s 192.0.2.0/24 --dport 22 -j ACCEPT
COMMIT
"""


@pytest.fixture
def rs():
    return loads(RULES, dialect="iptables", name="rules.v4")


def test_holding_assertions_pass(rs):
    assert_allows(rs, "443/tcp from anywhere to 10.0.0.5")
    assert_only_from(rs, "5432/tcp from 10.0.0.0/8")
    assert_denies(rs, "23/tcp")


def test_failure_names_witness_and_rule(rs):
    with pytest.raises(AssertionError) as info:
        assert_denies(rs, "22/tcp from 0.0.0.0/0")
    text = str(info.value)
    assert "witness: tcp 192.0.2." in text and "rules.v4:5" in text
    with pytest.raises(AssertionError, match="policy DROP"):
        assert_allows(rs, "443/tcp to 10.0.0.6")
    with pytest.raises(AssertionError):
        assert_only_from(rs, "5432/tcp from 10.1.0.0/16")


def test_yaml_section_and_cli(tmp_path, rs, monkeypatch):
    cfg = tmp_path / ".ruleanalyzer.yaml"
    cfg.write_text("""policy:
  - name: web
    allow: 443/tcp from anywhere to 10.0.0.5
  - name: no ssh
    deny: 22/tcp from 0.0.0.0/0
  - only: 5432/tcp from 10.0.0.0/8
  - connect: 198.51.100.7 -> 10.0.0.5:443
""")
    assertions = load_policy(cfg)
    failures = check(rs, assertions)
    assert [f.assertion.name for f in failures] == ["no ssh"]
    (tmp_path / "r").write_text(RULES)
    monkeypatch.chdir(tmp_path)
    # no verdict change, but the policy fails: exit 1
    assert main(["diff", "r", "r", "--no-findings"]) == 1


def test_bad_flows_are_located_errors():
    for bad in ("", "22/tcpx", "22/tcp from nowhere", "22/tcp on sideways", "99999/tcp"):
        with pytest.raises(RuleAnalyzerError):
            parse_flow(bad)
    flow = parse_flow("8000-8080/udp from 10.0.0.0/8,192.0.2.0/24 to any on forward")
    assert flow.ports == (8000, 8080) and len(flow.src) == 2 and flow.hook == "forward"
