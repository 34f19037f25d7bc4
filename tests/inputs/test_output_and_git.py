"""``-o`` and ``--git`` fail early and clearly (issue #17)."""

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from ruleanalyzer.cli import main

RULES = Path(__file__).resolve().parents[2] / "fixtures" / "rulesets" / "webserver.rules"


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_missing_output_directory_fails_before_the_analysis(tmp_path, capsys, monkeypatch):
    import ruleanalyzer.audit

    monkeypatch.setattr(ruleanalyzer.audit, "run_audit", lambda *a, **k: pytest.fail("analysis ran"))
    code, _, err = run(capsys, "audit", RULES, "-o", tmp_path / "nope" / "report.json")
    assert code == 2 and "directory" in err and "does not exist" in err and "Traceback" not in err


@pytest.mark.parametrize("kind", ["directory", "symlink", "device"])
def test_output_targets_that_are_not_files_are_refused(tmp_path, capsys, kind):
    target = tmp_path / "out"
    if kind == "directory":
        target.mkdir()
    elif kind == "symlink":
        (tmp_path / "real").write_text("keep")
        target.symlink_to(tmp_path / "real")
    else:
        target = Path("/dev/null")
    code, _, err = run(capsys, "query", RULES, "--src", "198.51.100.7", "--dst", "192.0.2.10",
                       "--dport", "443", "-o", target)
    assert code == 2 and f"error: cannot write the report: the output path is" in err
    if kind == "symlink":
        assert (tmp_path / "real").read_text() == "keep"


def test_output_is_atomic_and_keeps_the_files_mode(tmp_path, capsys):
    report = tmp_path / "report.txt"
    report.write_text("old")
    report.chmod(0o640)
    code, _, _ = run(capsys, "query", RULES, "--src", "198.51.100.7", "--dst", "192.0.2.10",
                     "--dport", "443", "-o", report)
    assert code == 0 and "ACCEPT" in report.read_text()
    assert stat.S_IMODE(report.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["report.txt"]  # no temporary left behind


@pytest.fixture
def repo(tmp_path, monkeypatch):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    monkeypatch.chdir(tmp_path)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}

    def git(*args):
        subprocess.run(["git", *args], check=True, capture_output=True, env=env)

    git("init", "-q")
    shutil.copy(RULES, "rules.v4")
    git("add", "rules.v4")
    git("commit", "-qm", "first")
    return git


def test_a_bad_revision_is_an_error_not_an_empty_old_side(repo, capsys):
    code, out, err = run(capsys, "diff", "--git", "nosuchrev", "rules.v4")
    assert code == 2 and out == ""
    assert "error: unknown git revision 'nosuchrev'" in err and "git fetch origin nosuchrev" in err


def test_no_repository_is_an_error(tmp_path, capsys, monkeypatch):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    shutil.copy(RULES, "rules.v4")
    code, _, err = run(capsys, "diff", "--git", "HEAD", "rules.v4")
    assert code == 2 and "--git needs a git repository" in err


def test_the_first_commit_and_an_added_file_are_said(repo, capsys):
    code, out, err = run(capsys, "diff", "--git", "HEAD~1", "rules.v4", "--no-findings",
                         "--no-connections")
    assert "note: HEAD is the repository's first commit" in err
    assert out.startswith("diff HEAD~1:rules.v4 (empty: before the first commit) → working tree:rules.v4")
    shutil.copy(RULES, "new.v4")
    code, out, _ = run(capsys, "diff", "--git", "HEAD", "new.v4", "--no-findings", "--no-connections")
    assert out.startswith("diff HEAD:new.v4 (absent: added in this change) → working tree:new.v4")
