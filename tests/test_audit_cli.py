"""`ruleanalyzer audit`, `rules` and `explain` as a user runs them: exit
codes, formats, selection, config files, suppressions, bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ruleanalyzer import checks
from ruleanalyzer.audit import run_audit
from ruleanalyzer.checks.docs import catalogue_markdown
from ruleanalyzer.cli import main

SHADOWED = ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 10.0.0.0/8 -j ACCEPT\n"
            "-A INPUT -s 10.1.0.0/16 -j DROP\nCOMMIT\n")
CLEAN = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 10.1.0.0/16 -j DROP\nCOMMIT\n"
BROKEN = "*filter\n:INPUT DROP [0:0]\n-A INPUT --frobnicate -j ACCEPT\nCOMMIT\n"


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def audit_cli(capsys, *args: str) -> tuple[int, str]:
    code = main(["audit", "--no-config", *args])
    return code, capsys.readouterr().out


def test_text_report_shows_code_frame_and_exit_1(tmp_path, capsys):
    f = write(tmp_path, "rules.v4", SHADOWED)
    code, out = audit_cli(capsys, f, "--select", "RA101")
    assert code == 1
    assert f"{f}:4:1: RA101 [shadowed-rule]" in out
    assert "4 | -A INPUT -s 10.1.0.0/16 -j DROP" in out
    assert "related: filter INPUT rule 1 (line 3)" in out
    assert "1 finding" in out


def test_clean_input_exits_0(tmp_path, capsys):
    f = write(tmp_path, "rules.v4", CLEAN)
    assert audit_cli(capsys, f, "--select", "RA1,RA5")[0] == 0


def test_fail_on_threshold(tmp_path, capsys):
    f = write(tmp_path, "rules.v4", "*filter\n:INPUT ACCEPT [0:0]\n:x - [0:0]\n-A x -j DROP\nCOMMIT\n")
    assert audit_cli(capsys, f, "--select", "RA503")[0] == 0  # info is below the default (warning)
    assert audit_cli(capsys, f, "--select", "RA503", "--fail-on", "info")[0] == 1
    g = write(tmp_path, "shadow.v4", SHADOWED)
    assert audit_cli(capsys, g, "--select", "RA101", "--fail-on", "never")[0] == 0


def test_bad_file_is_reported_and_the_rest_still_audited(tmp_path, capsys):
    bad = write(tmp_path, "bad.rules", BROKEN)
    good = write(tmp_path, "good.rules", SHADOWED)
    code, out = audit_cli(capsys, bad, good, "--select", "RA001,RA101", "--format", "json")
    data = json.loads(out)
    assert code == 1
    assert data["summary"]["bad_inputs"] == 1 and data["summary"]["inputs"] == 2
    codes = {(Path(f["location"]["file"]).name, f["code"]) for f in data["findings"]}
    assert codes == {("bad.rules", "RA001"), ("good.rules", "RA101")}
    [bad_finding] = [f for f in data["findings"] if f["code"] == "RA001"]
    assert bad_finding["location"]["line"] == 3 and "frobnicate" in bad_finding["message"]


def test_all_inputs_bad_exits_2(tmp_path, capsys):
    bad = write(tmp_path, "bad.rules", BROKEN)
    assert audit_cli(capsys, bad)[0] == 2


def test_directory_is_walked(tmp_path, capsys):
    write(tmp_path, "a.rules", SHADOWED)
    write(tmp_path, "b.rules", SHADOWED)
    write(tmp_path, "README.md", "# not rules\n")
    code, out = audit_cli(capsys, str(tmp_path), "--select", "RA101", "--format", "json")
    data = json.loads(out)
    assert data["summary"]["inputs"] == 2 and data["summary"]["findings"] == 2


def test_json_finding_shape(tmp_path, capsys):
    f = write(tmp_path, "rules.v4", "*filter\n:INPUT DROP [0:0]\n-A INPUT -m conntrack --ctstate ESTABLISHED -j ACCEPT\n"
                                    "-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n")
    _, out = audit_cli(capsys, f, "--select", "RA401", "--format", "json")
    data = json.loads(out)
    assert data["schema_version"] == 1 and data["tool"]["name"] == "ruleanalyzer"
    [finding] = data["findings"]
    assert set(finding) == {"code", "name", "severity", "message", "location", "related", "witness", "fix",
                            "count", "locations", "details"}
    assert finding["details"] == ["any public address can complete a connection (SYN in, SYN-ACK out)"]
    assert finding["count"] == 1 and finding["locations"] == [finding["location"]]
    assert finding["location"]["rule_index"] == 2 and finding["location"]["chain"] == "INPUT"
    assert finding["witness"]["dport"] == 22 and finding["witness"]["flags"] == "SYN"
    assert data["summary"]["by_code"] == {"RA401": 1}


def test_github_annotations(tmp_path, capsys):
    f = write(tmp_path, "rules.v4", SHADOWED)
    _, out = audit_cli(capsys, f, "--select", "RA101", "--format", "github")
    assert out.startswith(f"::error file={f},line=4,col=1,title=RA101 shadowed-rule::rule can never match")


def test_select_and_ignore(tmp_path):
    f = write(tmp_path, "rules.v4", SHADOWED)
    assert {x.code for x in run_audit([f], select=["RA1"], ignore=["RA104"]).findings} == {"RA101"}
    assert run_audit([f], select=["shadowed-rule"]).findings[0].code == "RA101"
    with pytest.raises(Exception, match="unknown check code"):
        run_audit([f], select=["RA999"])


def test_opt_in_checks_run_only_when_named(tmp_path, capsys):
    exception = ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 192.0.2.0/24 -p tcp --dport 22 -j ACCEPT\n"
                 "-A INPUT -p tcp --dport 22 -j DROP\nCOMMIT\n")
    f = write(tmp_path, "rules.v4", exception)
    opt_in = [c for c, cls in checks.registry().items() if cls.opt_in]
    assert {"RA105", "RA106"} <= set(opt_in)
    for select in (None, ["RA1"], ["RA10"]):
        assert not set(opt_in) & set(checks.select(select))
        assert "RA105" not in {x.code for x in run_audit([f], select=select).findings}
    for select in (["RA105"], ["rule-exception"], ["ALL"]):
        assert "RA105" in checks.select(select)
        assert "RA105" in {x.code for x in run_audit([f], select=select).findings}
    assert "RA105" not in checks.select(["ALL"], ignore=["RA1"])
    assert main(["rules"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "RA105" in line)
    assert "opt-in" in row


def test_inline_suppression_silences_and_unused_one_is_reported(tmp_path):
    text = ("*filter\n:INPUT ACCEPT [0:0]\n"
            "-A INPUT -s 10.0.0.0/8 -m comment --comment \"ruleanalyzer: ignore[RA102] old\" -j ACCEPT\n"
            "-A INPUT -s 10.1.0.0/16 -m comment --comment \"ruleanalyzer: ignore[RA101] until Q3\" -j DROP\n"
            "COMMIT\n")
    f = write(tmp_path, "rules.v4", text)
    result = run_audit([f], select=["RA101", "RA901"])
    assert [x.code for x in result.suppressed] == ["RA101"]
    assert result.findings == []  # RA102 did not run, so its directive is not judged
    result = run_audit([f], select=["RA1", "RA901"])
    assert [(x.code, x.where.line) for x in result.findings] == [("RA901", 3)]
    assert "ignore[RA102]" in result.findings[0].message


def test_config_file_yaml_select_fail_on_and_suppression(tmp_path, monkeypatch, capsys):
    f = write(tmp_path, "rules.v4", SHADOWED)
    write(tmp_path, ".ruleanalyzer.yaml",
          "select: [RA1]\nfail-on: error\n"
          "suppress:\n  - {file: rules.v4, line: 4, code: RA101, reason: known}\n"
          "  - {file: rules.v4, chain: INPUT, rule: 9, code: RA101, reason: stale}\n")
    monkeypatch.chdir(tmp_path)
    code = main(["audit", "rules.v4", "--format", "json"])
    data = json.loads(capsys.readouterr().out)
    assert data["findings"] == []
    assert data["summary"]["suppressed"] == 1
    assert code == 0
    code = main(["audit", "rules.v4", "--format", "json", "--select", "RA1,RA901"])
    data = json.loads(capsys.readouterr().out)
    unused = [x for x in data["findings"] if x["code"] == "RA901"]
    assert len(unused) == 1 and unused[0]["location"]["path"] == "suppress[1]"


def test_config_in_pyproject_with_options(tmp_path, monkeypatch, capsys):
    write(tmp_path, "rules.v4", "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 8443 -j ACCEPT\nCOMMIT\n")
    write(tmp_path, "pyproject.toml", "[tool.ruleanalyzer]\nselect = ['RA401']\n"
                                      "[tool.ruleanalyzer.options.RA401]\nports = {8443 = 'admin UI'}\n")
    monkeypatch.chdir(tmp_path)
    main(["audit", "rules.v4", "--format", "json"])
    [finding] = json.loads(capsys.readouterr().out)["findings"]
    assert "admin UI (8443/tcp" in finding["message"]


def test_bad_config_is_a_located_error(tmp_path, monkeypatch, capsys):
    write(tmp_path, "rules.v4", CLEAN)
    write(tmp_path, ".ruleanalyzer.yaml", "fail-on: sometimes\n")
    monkeypatch.chdir(tmp_path)
    assert main(["audit", "rules.v4"]) == 2
    assert "fail-on must be one of" in capsys.readouterr().err


def test_together_groups_files_into_one_firewall(tmp_path):
    v4 = write(tmp_path, "rules.v4", "*filter\n:INPUT DROP [0:0]\n-A INPUT -i lo -j ACCEPT\n"
                                     "-A INPUT -p tcp --dport 80 -j ACCEPT\nCOMMIT\n")
    v6 = write(tmp_path, "rules.v6", "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n")
    alone = run_audit([v4, v6], select=["RA207"], hosts=False).findings
    together = run_audit([], select=["RA207"], together=[[v4, v6]]).findings
    assert alone == []  # each file alone: v4 filtered with no v6, v6 with no v4
    assert [(Path(f.file).name, f.code) for f in together] == [("rules.v6", "RA207")]


def test_standard_layouts_are_one_host(tmp_path, capsys):
    """rules.v4 + rules.v6 in one directory are one host without --together
    (so RA207 can fire on `audit /etc/iptables/`); --one-by-one undoes it."""
    d = tmp_path / "iptables"
    d.mkdir()
    write(d, "rules.v4", "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 80 -j ACCEPT\nCOMMIT\n")
    write(d, "rules.v6", "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n")
    result = run_audit([d], select=["RA207"])
    assert [(Path(f.file).name, f.code) for f in result.findings] == [("rules.v6", "RA207")]
    assert [[Path(p).name for p in g] for g in result.hosts] == [["rules.v4", "rules.v6"]]
    assert main(["audit", str(d), "--select", "RA207"]) == 1
    assert "audited as one host: " in capsys.readouterr().out
    assert main(["audit", str(d), "--select", "RA207", "--one-by-one"]) == 0


def test_a_file_is_never_its_own_twin(tmp_path):
    """A name holding a family word inside another word (``myiptables``) has
    no IPv6 twin: the file is audited once, not loaded twice as one host
    (which made every rule of its second copy look dead)."""
    d = tmp_path / "fw"
    d.mkdir()
    write(d, "myiptables.conf", "*filter\n:INPUT ACCEPT [0:0]\n"
          "-A INPUT -p tcp --dport 80 -j ACCEPT\n-A INPUT -m state --state INVALID -j DROP\nCOMMIT\n")
    result = run_audit([d], select=["RA1"])
    assert result.hosts == [] and result.findings == []


def test_ufw_directory_is_one_host(tmp_path):
    """/etc/ufw's files make one firewall: app profiles and ufw.conf are part
    of it, not unreadable rule files, and /etc/default/ufw's forward policy counts."""
    etc = tmp_path / "etc"
    (etc / "ufw" / "applications.d").mkdir(parents=True)
    (etc / "default").mkdir()
    write(etc / "ufw", "user.rules", "*filter\n:ufw-user-input - [0:0]\n"
          "### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in\n"
          "-A ufw-user-input -p tcp --dport 22 -j ACCEPT\nCOMMIT\n")
    write(etc / "ufw", "ufw.conf", "ENABLED=yes\nLOGLEVEL=low\n")
    write(etc / "ufw" / "applications.d", "web", "[Web]\ntitle=Web\ndescription=web\nports=80/tcp\n")
    write(etc / "default", "ufw", 'DEFAULT_INPUT_POLICY="DROP"\nDEFAULT_FORWARD_POLICY="ACCEPT"\n')
    result = run_audit([etc])
    assert result.bad_inputs == []
    assert len(result.inputs) == 1 and len(result.hosts[0]) == 4


def test_crashing_check_becomes_ra003(tmp_path, monkeypatch):
    from ruleanalyzer.checks.structure import DuplicateRule

    def boom(self, ctx):
        raise ZeroDivisionError("bug")

    monkeypatch.setattr(DuplicateRule, "run", boom)
    f = write(tmp_path, "rules.v4", SHADOWED)
    result = run_audit([f], select=["RA003", "RA101", "RA505"])
    assert {x.code for x in result.findings} == {"RA003", "RA101"}
    assert "ZeroDivisionError" in [x for x in result.findings if x.code == "RA003"][0].message


def test_retired_code_redirects(monkeypatch):
    monkeypatch.setitem(checks.RETIRED, "RA100", "RA101")
    assert checks.get("RA100").code == "RA101"
    assert checks.select(["RA100"]) == ["RA101"]


def test_rules_and_explain(capsys):
    assert main(["rules"]) == 0
    out = capsys.readouterr().out
    assert "RA101" in out and "shadowed-rule" in out
    assert main(["explain", "RA301"]) == 0
    page = capsys.readouterr().out
    for heading in ("## What it does", "## Why is this bad?", "## Example", "## Use instead"):
        assert heading in page
    assert "tcp flags syn / fin,syn,rst,ack" in page and "# expect" not in page
    assert main(["explain", "RA10l"]) == 2
    assert "did you mean" in capsys.readouterr().err


def test_docs_checks_md_is_current():
    doc = Path(__file__).parent.parent / "docs" / "checks.md"
    assert doc.read_text() == catalogue_markdown(), \
        "docs/checks.md is stale: python -m ruleanalyzer.checks.docs > docs/checks.md"
