"""SARIF 2.1.0 output: the properties the spec requires, rule metadata from
the checks' fields, and locations that point at the rule's line."""

from __future__ import annotations

import json

import pytest

from ruleanalyzer.audit import run_audit
from ruleanalyzer.checks import registry
from ruleanalyzer.cli import main
from ruleanalyzer.report.sarif import sarif_data

RULES = ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 10.0.0.0/8 -j ACCEPT\n"
         "-A INPUT -s 10.1.0.0/16 -j DROP\nCOMMIT\n")


@pytest.fixture
def sarif(tmp_path):
    path = tmp_path / "rules.v4"
    path.write_text(RULES)
    return sarif_data(run_audit([path], select=["RA1"])), path


def test_log_has_the_required_top_level_properties(sarif):
    log, _ = sarif
    assert log["version"] == "2.1.0"
    assert log["$schema"].endswith("sarif-2.1.0.json")
    assert isinstance(log["runs"], list) and len(log["runs"]) == 1
    driver = log["runs"][0]["tool"]["driver"]
    assert driver["name"] == "ruleanalyzer"


def test_rule_metadata_renders_from_the_check_fields(sarif):
    log, _ = sarif
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == list(registry())
    for r in rules:
        cls = registry()[r["id"]]
        assert r["shortDescription"]["text"] == cls.summary
        assert r["fullDescription"]["text"] == cls.rationale
        assert r["help"]["text"] and "## What it does" in r["help"]["markdown"]
        assert r["defaultConfiguration"]["level"] in ("error", "warning", "note")
        assert r["defaultConfiguration"].get("enabled", True) is not cls.opt_in
        assert r["name"] == cls.name


def test_results_point_at_the_rule(sarif):
    log, path = sarif
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    [result] = [r for r in run["results"] if r["ruleId"] == "RA101"]
    assert rules[result["ruleIndex"]]["id"] == "RA101"
    assert result["level"] == "error"
    assert "can never match" in result["message"]["text"]
    physical = result["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"].endswith("rules.v4")
    assert physical["region"]["startLine"] == 4
    assert physical["region"]["startColumn"] >= 1
    related = result["relatedLocations"][0]["physicalLocation"]["region"]["startLine"]
    assert related == 3


def test_every_result_is_well_formed(tmp_path):
    path = tmp_path / "rules.v4"
    path.write_text(RULES)
    log = sarif_data(run_audit([path]))
    for result in log["runs"][0]["results"]:
        assert {"ruleId", "ruleIndex", "level", "message", "locations"} <= set(result)
        assert result["level"] in ("error", "warning", "note", "none")
        for loc in result["locations"]:
            region = loc["physicalLocation"].get("region")
            if region:
                assert region["startLine"] >= 1 and region["startColumn"] >= 1


def test_cli_writes_sarif(tmp_path, capsys):
    path = tmp_path / "rules.v4"
    path.write_text(RULES)
    code = main(["audit", str(path), "--format", "sarif", "--no-config"])
    log = json.loads(capsys.readouterr().out)
    assert code == 1
    assert log["version"] == "2.1.0"
