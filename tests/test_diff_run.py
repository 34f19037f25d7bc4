"""``diff`` as a Python call (``ruleanalyzer.diff_run.run_diff``): what the
command line renders comes from it, including the firewalld layout it reads
directories with and what it says when a policy cannot be checked."""

from __future__ import annotations

import json

import pytest

from ruleanalyzer.cli import main
from ruleanalyzer.diff_run import run_diff
from ruleanalyzer.errors import RuleAnalyzerError

from .test_firewalld_layout2 import _blog
from .test_iac import IAC

OLD = "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 443 -j ACCEPT\nCOMMIT\n"
NEW = "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 443 -j ACCEPT\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n"


def test_run_diff_gives_the_reports_and_the_exit_code_the_command_gives(tmp_path, capsys):
    old, new = tmp_path / "old.rules", tmp_path / "new.rules"
    old.write_text(OLD)
    new.write_text(NEW)
    run = run_diff([str(old), str(new)], hooks=("input",), findings=False)
    [report] = run.reports
    assert any("dport 22" in region.text for region in report.opened)
    assert (run.exit_code("any"), run.exit_code("opened"), run.exit_code("never")) == (1, 1, 0)
    back = run_diff([str(new), str(old)], hooks=("input",), findings=False)
    assert (back.exit_code("any"), back.exit_code("opened")) == (1, 0)  # only closed
    assert main(["diff", str(new), str(old), "--hook", "input", "--no-findings", "--fail-on", "opened"]) == 0
    capsys.readouterr()


def test_a_policy_failure_sets_the_exit_code_whatever_fail_on_says(tmp_path):
    old, new = tmp_path / "old.rules", tmp_path / "new.rules"
    old.write_text(OLD)
    new.write_text(NEW)
    policy = tmp_path / "policy.yaml"
    policy.write_text("policy:\n  - name: no ssh from outside\n    deny: 22/tcp from 0.0.0.0/0\n")
    run = run_diff([str(old), str(new)], hooks=("input",), findings=False, policy=str(policy))
    assert [r.policy for r in run.reports][0] and run.exit_code("never") == 1


def _two_versions(tmp_path):
    """firewalld configurations that only firewalld 2.x can read (zone priorities)."""
    old = _blog(tmp_path / "old")
    new = _blog(tmp_path / "new")
    zone = new / "zones" / "internal.xml"
    zone.write_text(zone.read_text().replace('<service name="ssh"/>',
                                             '<service name="ssh"/>\n  <port protocol="tcp" port="8443"/>'))
    return old, new


def test_diff_reads_firewalld_directories_in_the_version_it_is_given(tmp_path, monkeypatch, capsys):
    old, new = _two_versions(tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RuleAnalyzerError, match="zone priorities"):
        run_diff([str(old), str(new)], findings=False)  # firewalld 1.3.3 by default
    run = run_diff([str(old), str(new)], findings=False, hooks=("input",), firewalld_version="2.1.1")
    assert any("dport 8443" in region.text for region in run.reports[0].opened)
    assert main(["diff", str(old), str(new), "--no-findings", "--hook", "input",
                 "--firewalld-version", "2.1.1"]) == 1
    assert "8443" in capsys.readouterr().out
    # the config's firewalld-version, as audit reads it
    (tmp_path / ".ruleanalyzer.yaml").write_text("firewalld-version: 2.1.1\n")
    run = run_diff([str(old), str(new)], findings=False, hooks=("input",))
    assert any("dport 8443" in region.text for region in run.reports[0].opened)


def test_a_policy_that_cannot_be_checked_on_a_plan_is_said_not_skipped_silently(tmp_path, monkeypatch, capsys):
    plan = json.loads((IAC / "web.plan.json").read_text())
    change = plan["resource_changes"][0]["change"]
    change["actions"] = ["update"]
    change["before"] = json.loads(json.dumps(change["after"]))
    change["after"]["ingress"][1]["cidr_blocks"] = ["0.0.0.0/0"]
    plan["resource_changes"][1]["change"]["before"] = plan["resource_changes"][1]["change"]["after"]
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    monkeypatch.chdir(tmp_path)
    notes = []
    run = run_diff([str(path)], findings=False, note=notes.append)
    assert run.reports and notes == []  # no policy: nothing to say
    (tmp_path / ".ruleanalyzer.yaml").write_text("policy:\n  - deny: 22/tcp from 0.0.0.0/0\n")
    run = run_diff([str(path)], findings=False, note=notes.append)
    assert run.reports and len(notes) == 1 and notes[0].startswith("the policy not checked")
    assert main(["diff", str(path), "--no-findings"]) == 1
    assert "note: the policy not checked" in capsys.readouterr().err
