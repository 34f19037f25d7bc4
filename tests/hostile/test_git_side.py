"""``diff --git`` reads the old side wholly from the old revision (issue 16):
an nft file's includes come from that revision (a change inside an
included file was once invisible: "no verdict changed", exit 0), links
committed in the tree are not followed, and names git would quote
(``pare-feu-é.rules``) are found."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from ruleanalyzer.cli import main

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

MAIN = 'include "inner.nft"\n'
CLOSED = "table ip t {\n chain input { type filter hook input priority 0; policy drop;\n  tcp dport 22 accept\n }\n}\n"
OPEN = CLOSED.replace("tcp dport 22 accept", "tcp dport { 22, 3389 } accept")
V4_CLOSED = "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n"
V4_OPEN = V4_CLOSED.replace("-A INPUT -p tcp --dport 22", "-A INPUT -p tcp --dport 3389 -j ACCEPT\n-A INPUT -p tcp --dport 22")


@pytest.fixture()
def repo(tmp_path, monkeypatch):
    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@e", *args], cwd=tmp_path,
                       check=True, capture_output=True)
    git("init", "-q")
    monkeypatch.chdir(tmp_path)
    return tmp_path, git


def _opened(capsys) -> int:
    return sum(r["counts"]["opened"] for r in json.loads(capsys.readouterr().out))


def test_old_side_reads_includes_at_the_old_revision(repo, capsys):
    path, git = repo
    (path / "main.nft").write_text(MAIN)
    (path / "inner.nft").write_text(CLOSED)
    git("add", ".")
    git("commit", "-qm", "old")
    (path / "inner.nft").write_text(OPEN)
    assert main(["diff", "--git", "HEAD", "main.nft", "--no-findings", "--format", "json"]) == 1
    assert _opened(capsys) == 1
    # A..B: both sides at their revisions
    git("commit", "-qam", "new")
    assert main(["diff", "--git", "HEAD~1..HEAD", "main.nft", "--no-findings", "--format", "json"]) == 1
    assert _opened(capsys) == 1


def test_old_side_glob_include_reads_the_old_revision(repo, capsys):
    path, git = repo
    (path / "d").mkdir()
    (path / "main.nft").write_text('include "d/*.nft"\n')
    (path / "d" / "inner.nft").write_text(CLOSED)
    git("add", ".")
    git("commit", "-qm", "old")
    (path / "d" / "inner.nft").write_text(OPEN)
    assert main(["diff", "--git", "HEAD", "main.nft", "--no-findings", "--format", "json"]) == 1
    assert _opened(capsys) == 1


def test_a_committed_link_is_not_followed_at_the_revision(repo, capsys):
    path, git = repo
    os.symlink("/etc/passwd", path / "env.rules")
    git("add", ".")
    git("commit", "-qm", "old")
    code = main(["diff", "--git", "HEAD", "env.rules", "--no-findings"])
    out, err = capsys.readouterr()
    assert code == 2 and "symlink" in err and "root:" not in out + err


def test_names_git_quotes_are_found(repo, capsys):
    path, git = repo
    name = "pare-feu-\u00e9.rules"
    (path / name).write_text(V4_CLOSED)
    git("add", ".")
    git("commit", "-qm", "old")
    (path / name).write_text(V4_OPEN)
    assert main(["diff", "--git", "HEAD", "--no-findings", "--format", "json"]) == 1
    assert _opened(capsys) == 1


def test_a_change_inside_an_included_file_is_found_without_naming_files(repo, capsys):
    """The pre-commit hook and the Action diff the changed files: main.nft
    did not change, only what it includes — it is compared too."""
    path, git = repo
    (path / "fw").mkdir()
    (path / "fw" / "main.nft").write_text(
        'include "ports.nft"\ntable ip t {\n chain input { type filter hook input priority 0; policy drop;\n'
        "  tcp dport $ports accept\n }\n}\n")
    (path / "fw" / "ports.nft").write_text("define ports = { 22 }\n")  # alone: no rules, no change
    git("add", ".")
    git("commit", "-qm", "old")
    (path / "fw" / "ports.nft").write_text("define ports = { 22, 3389 }\n")
    assert main(["diff", "--git", "HEAD", "--no-findings", "--format", "json"]) == 1
    assert _opened(capsys) == 1
