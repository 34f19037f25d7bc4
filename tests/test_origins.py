"""Generated-rule recognition (ruleanalyzer/origins.py): each tool's stock
layout (tests/origins/, one file per generator idiom) gives no dead-rule or
structure finding about its scaffolding by default; with
``include_generated`` such findings come back marked with their origin; a
user's own rules inside the layout are still audited."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ruleanalyzer import loads
from ruleanalyzer.audit import run_audit
from ruleanalyzer.cli import main
from ruleanalyzer.model import Origin
from ruleanalyzer.origins import recognise

HERE = Path(__file__).parent / "origins"
LAYOUTS = sorted(HERE.iterdir())
#: What each layout's stock rules give when included (the noise left out by default).
NOISE = {"crowdsec.nft": {"RA503"}, "docker.rules": {"RA103", "RA505"}, "fail2ban.rules": {"RA504", "RA505"},
         "firewalld.rules": {"RA503"}, "fw4.nft": {"RA503"}, "kube-proxy.rules": {"RA503"},
         "libvirt.rules": {"RA505"}, "openwrt.rules": {"RA503"},
         "shorewall.rules": {"RA103", "RA503"}, "ufw.rules": {"RA503", "RA505"}}
HYGIENE = ("RA1", "RA5")


@pytest.mark.parametrize("path", LAYOUTS, ids=lambda p: p.name)
def test_stock_layout_gives_no_hygiene_noise(path):
    shown = run_audit([path], select=["RA1", "RA5"])
    assert [f for f in shown.findings if f.generated] == []
    with_stock = run_audit([path], select=["RA1", "RA5"], include_generated=True)
    noise = {f.code for f in with_stock.findings if f.generated}
    assert noise == NOISE[path.name]
    # counted before grouping; dead stock rules' findings only counted (their stories untold)
    assert shown.generated_hidden == sum(f.count for f in with_stock.findings if f.generated)
    assert {f.code for f in shown.generated} == noise - {"RA101", "RA102", "RA103"}


def test_users_rules_inside_a_layout_are_audited():
    found = run_audit([HERE / "ufw.rules"], select=["RA505"]).findings
    assert [(f.code, f.where.line, f.origin.tool, f.origin.generated) for f in found] == [
        ("RA505", 25, "ufw", False)]


def test_generated_findings_carry_origin_in_json(capsys):
    assert main(["audit", str(HERE / "libvirt.rules"), "--select", "RA505", "--format", "json",
                 "--include-generated"]) == 1
    [finding] = json.loads(capsys.readouterr().out)["findings"]
    assert finding["origin"] == {"tool": "libvirt", "text": "libvirt stock rule", "generated": True,
                                 "location": None}
    assert finding["count"] == 2 and len(finding["locations"]) == 2
    assert main(["audit", str(HERE / "libvirt.rules"), "--select", "RA505"]) == 0
    assert ("2 findings about tools' stock rules not shown, one per rule (--include-generated shows "
            "them, grouped by cause)") in capsys.readouterr().out


def test_an_origin_a_reader_set_is_kept():
    rs = loads("*filter\n:INPUT DROP [0:0]\n:IN_public - [0:0]\n:INPUT_ZONES - [0:0]\n"
               "-A INPUT -j INPUT_ZONES\n-A INPUT_ZONES -j IN_public\n"
               "-A IN_public -p tcp --dport 22 -j ACCEPT\nCOMMIT\n", dialect="iptables")
    mine = Origin("firewalld", "zone public, service ssh")
    rs.tables[0].chains["IN_public"].rules[0].origin = mine
    recognise(rs)
    assert rs.tables[0].chains["IN_public"].rules[0].origin is mine
    assert rs.tables[0].chains["INPUT_ZONES"].rules[0].origin.generated


def test_near_miss_names_alone_are_not_a_tool():
    """A chain called zone_x or logdrop in a hand-written ruleset is not
    OpenWrt's or Shorewall's: the layout must be there as a whole."""
    rs = loads("*filter\n:INPUT DROP [0:0]\n:logdrop - [0:0]\n:zone_x - [0:0]\n"
               "-A logdrop -j DROP\n-A zone_x -j DROP\nCOMMIT\n", dialect="iptables")
    recognise(rs)
    assert [r.origin for r in rs.rules()] == [None, None]
    assert {f.code for f in run_audit([rs], select=["RA503"]).findings} == {"RA503"}


def test_gcp_firewall_policy_default_rules_are_stock():
    """Every GCP firewall policy comes with goto_next rules at priorities
    2147483644-2147483647 that cannot be changed or deleted
    (https://cloud.google.com/firewall/docs/firewall-policies-rule-details#default-rules):
    a dead one is not the user's to fix; the user's own dead rule still is."""
    doc = {"firewalls": [], "firewallPolicys": [{"name": "p", "type": "HIERARCHY", "rules": [
        {"priority": 700, "direction": "INGRESS", "action": "deny",
         "match": {"srcIpRanges": ["0.0.0.0/0"], "layer4Configs": [{"ipProtocol": "all"}]}},
        {"priority": 800, "direction": "INGRESS", "action": "allow",
         "match": {"srcIpRanges": ["198.51.100.0/24"], "layer4Configs": [{"ipProtocol": "tcp"}]}},
        {"priority": 2147483647, "direction": "INGRESS", "action": "goto_next",
         "match": {"srcIpRanges": ["0.0.0.0/0"], "layer4Configs": [{"ipProtocol": "all"}]}}]}]}
    rs = loads(json.dumps(doc), dialect="gcp", name="effective.json")
    result = run_audit([rs], select=["RA1"])
    assert [(f.code, f.where.ident) for f in result.findings] == [("RA101", "800")]
    assert result.generated_hidden == 1  # only counted: its story is not worked out
    result = run_audit([rs], select=["RA1"], include_generated=True)
    assert [(f.code, f.where.ident, f.origin.tool) for f in result.findings if f.generated] == [
        ("RA102", "2147483647", "gcp")]


#: kube-proxy's stock chain with two dead rules: line 6 (a narrower REJECT, RA102) and line 7
#: (an ACCEPT the broader REJECT shadows, RA101).
KUBE_DEAD = ("*filter\n:INPUT ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n-A INPUT -j KUBE-SERVICES\n"
             "-A KUBE-SERVICES -d 10.96.0.0/24 -p tcp -j REJECT\n"
             "-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp --dport 80 -j REJECT{}\n"
             "-A KUBE-SERVICES -d 10.96.0.2/32 -p tcp --dport 443 -j ACCEPT\nCOMMIT\n")


def test_dead_stock_rules_are_counted_without_their_story(tmp_path, monkeypatch):
    """A default audit only counts a dead stock rule's finding: its story
    (which check, the blocking rules) is not worked out, the count is the
    findings --include-generated shows, before grouping."""
    from ruleanalyzer.checks import reach

    told = []
    real = reach._story
    monkeypatch.setattr(reach, "_story", lambda r, rule: told.append(rule.location.line) or real(r, rule))
    path = tmp_path / "kube.rules"
    path.write_text(KUBE_DEAD.format(""))
    shown = run_audit([path], select=["RA1", "RA5"])
    assert (shown.findings, shown.generated, shown.generated_hidden, told) == ([], [], 2, [])
    full = run_audit([path], select=["RA1", "RA5"], include_generated=True)
    assert sorted((f.code, f.where.line) for f in full.findings) == [("RA101", 7), ("RA102", 6)]
    assert sorted(told) == [6, 7]


@pytest.mark.parametrize("directive, suppressed, unused", [
    ("ruleanalyzer: ignore[RA102] kube-proxy's", ["RA102"], []),
    ("ruleanalyzer: ignore kube-proxy's", ["RA102"], []),
    ("ruleanalyzer: ignore[RA101] wrong code", [], [("RA901", 6)]),
    ("ruleanalyzer: ignore[RA505] another check", [], [("RA901", 6)])])
def test_a_suppression_on_a_dead_stock_rule_still_meets_its_finding(tmp_path, directive, suppressed, unused):
    """A directive on a dead stock rule silences its finding (and is used)
    only when it names the check the story decides: that story is told."""
    path = tmp_path / "kube.rules"
    path.write_text(KUBE_DEAD.format(f' -m comment --comment "{directive}"'))
    result = run_audit([path], select=["RA1", "RA5", "RA901"])
    assert [f.code for f in result.suppressed] == suppressed
    assert [(f.code, f.where.line) for f in result.findings] == unused
    assert result.generated_hidden == 2 - len(suppressed)


@pytest.mark.parametrize("code, used", [("RA102", True), ("RA101", False)])
def test_a_config_entry_on_a_dead_stock_rule_still_meets_its_finding(tmp_path, code, used):
    from ruleanalyzer.config import Config

    path = tmp_path / "kube.rules"
    path.write_text(KUBE_DEAD.format(""))
    config = Config(suppress=[{"file": "kube.rules", "line": 6, "code": code}], source="cfg.yaml")
    result = run_audit([path], select=["RA1", "RA5", "RA901"], config=config)
    assert [f.code for f in result.suppressed] == (["RA102"] if used else [])
    assert [f.code for f in result.findings] == ([] if used else ["RA901"])
