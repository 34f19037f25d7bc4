"""``diff --git`` compares a configuration that is a directory — a
Terraform module (its ``.tf`` files, ``terraform.tfvars``, the local modules
it calls) or a firewalld configuration directory — as a whole, each side
read wholly from its own revision (or the working tree)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from ruleanalyzer.cli import main

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

GROUP = '''resource "aws_security_group" "web" {
  name   = "web"
  vpc_id = "vpc-1"
}
'''
HTTPS = '''resource "aws_security_group_rule" "https" {
  type              = "ingress"
  security_group_id = aws_security_group.web.id
  protocol          = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_blocks       = [var.office]
}
'''
SSH = '''
resource "aws_security_group_rule" "ssh" {
  type              = "ingress"
  security_group_id = aws_security_group.web.id
  protocol          = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_blocks       = ["0.0.0.0/0"]
}
'''
WEB = ": aws_security_group.web"
VARIABLES = 'variable "office" {\n  type = string\n}\n'
ZONE = '''<?xml version="1.0" encoding="utf-8"?>
<zone>
  <short>Public</short>
  <service name="dhcpv6-client"/>
  <interface name="eth0"/>
</zone>
'''


@pytest.fixture()
def repo(tmp_path, monkeypatch):
    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@e", *args], cwd=tmp_path,
                       check=True, capture_output=True)

    def write(name, text):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    git("init", "-q")
    monkeypatch.chdir(tmp_path)
    return tmp_path, git, write


def _module(write, where="infra/sg", office="10.1.0.0/16"):
    """A module of four files: the group, its rules, the variable, its value."""
    write(f"{where}/main.tf", GROUP)
    write(f"{where}/rules.tf", HTTPS)
    write(f"{where}/variables.tf", VARIABLES)
    write(f"{where}/terraform.tfvars", f'office = "{office}"\n')


def _diff(capsys, *args):
    code = main(["diff", "--git", *args, "--no-findings", "--no-connections", "--format", "json"])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if captured.out.strip() else None), captured.err


def _regions(report, kind):
    return [r for r in report["regions"] if r["kind"] == kind]


def test_a_rule_added_in_one_file_of_a_module_is_the_modules_diff(repo, capsys):
    path, git, write = repo
    _module(write)
    git("add", ".")
    git("commit", "-qm", "old")
    write("infra/sg/rules.tf", HTTPS + SSH)  # only the rules file changes
    code, (report,), _ = _diff(capsys, "HEAD")
    assert code == 1
    assert (report["old"], report["new"]) == ("HEAD:infra/sg" + WEB, "working tree:infra/sg" + WEB)
    (opened,) = _regions(report, "opened")
    assert opened["witness"]["dport"] == 22 and opened["witness"]["proto"] == "tcp"
    assert "0.0.0.0/0" in opened["region"]
    # the group from main.tf at the old revision, the rule in today's rules.tf
    assert opened["old"]["decided_by"]["file"] == "HEAD:infra/sg/main.tf"
    assert (opened["new"]["decided_by"]["file"], opened["new"]["decided_by"]["line"]) == ("infra/sg/rules.tf", 10)
    # A..B: both sides at their revisions; B..A closes it, located at the revision
    git("commit", "-qam", "new")
    code, (report,), _ = _diff(capsys, "HEAD~1..HEAD")
    assert code == 1 and report["new"] == "HEAD:infra/sg" + WEB
    assert _regions(report, "opened")[0]["new"]["decided_by"]["file"] == "HEAD:infra/sg/rules.tf"
    code, (report,), _ = _diff(capsys, "HEAD..HEAD~1")
    (closed,) = _regions(report, "closed")
    assert (closed["old"]["decided_by"]["file"], closed["old"]["decided_by"]["line"]) == ("HEAD:infra/sg/rules.tf", 10)


def test_a_wider_cidr_in_terraform_tfvars_is_seen(repo, capsys):
    path, git, write = repo
    _module(write)
    git("add", ".")
    git("commit", "-qm", "old")
    write("infra/sg/terraform.tfvars", 'office = "10.0.0.0/8"\n')
    code, (report,), _ = _diff(capsys, "HEAD")
    assert code == 1 and report["old"] == "HEAD:infra/sg" + WEB
    opened = _regions(report, "opened")
    assert opened and all(r["witness"]["dport"] == 443 for r in opened)
    assert all(r["witness"]["src"].startswith("10.") and not r["witness"]["src"].startswith("10.1.")
               for r in opened)
    assert not _regions(report, "closed")


def test_a_called_module_is_compared_through_its_root(repo, capsys):
    path, git, write = repo
    write("modules/web/main.tf", GROUP)
    write("modules/web/rules.tf", HTTPS)
    write("modules/web/variables.tf", VARIABLES)
    write("envs/prod/main.tf", 'module "web" {\n  source = "../../modules/web"\n  office = "10.2.0.0/16"\n}\n')
    git("add", ".")
    git("commit", "-qm", "old")
    write("modules/web/rules.tf", HTTPS + SSH)
    code, (report,), _ = _diff(capsys, "HEAD")
    assert code == 1 and (report["old"], report["new"]) == ("HEAD:envs/prod: module.web.aws_security_group.web",
                                                            "working tree:envs/prod: module.web.aws_security_group.web")
    (opened,) = _regions(report, "opened")
    assert opened["witness"]["dport"] == 22
    assert opened["new"]["decided_by"]["file"] == "modules/web/rules.tf"
    assert opened["new"]["decided_by"]["path"] == "module.web.aws_security_group_rule.ssh"
    # the old side's module is the revision's, read through the revision's caller
    assert opened["old"]["decided_by"]["file"] == "HEAD:modules/web/main.tf"


def test_a_firewalld_zone_that_adds_ssh(repo, capsys):
    path, git, write = repo
    write("etc/firewalld/firewalld.conf", "DefaultZone=public\n")
    write("etc/firewalld/zones/public.xml", ZONE)
    git("add", ".")
    git("commit", "-qm", "old")
    write("etc/firewalld/zones/public.xml", ZONE.replace("<interface", '<service name="ssh"/>\n  <interface'))
    code, (report,), _ = _diff(capsys, "HEAD")
    assert code == 1 and (report["old"], report["new"]) == ("HEAD:etc/firewalld", "working tree:etc/firewalld")
    (opened,) = _regions(report, "opened")
    assert opened["witness"]["dport"] == 22 and opened["witness"]["proto"] == "tcp"
    assert opened["old"]["decided_by"]["file"] == "HEAD:etc/firewalld/zones/public.xml"
    assert opened["new"]["decided_by"]["file"] == "etc/firewalld/zones/public.xml"


def test_added_and_deleted_module_directories(repo, capsys):
    """A group the change creates is compared with the group without its
    rules (as ``diff plan.json`` does): it opens what it allows."""
    path, git, write = repo
    write("README.md", "infra\n")
    git("add", ".")
    git("commit", "-qm", "empty")
    _module(write)
    git("add", ".")
    code, (report,), _ = _diff(capsys, "HEAD")
    assert code == 1 and report["old"] == "HEAD:infra/sg (absent: added in this change)" + WEB
    assert report["new"] == "working tree:infra/sg" + WEB + " (created)"
    opened = _regions(report, "opened")
    assert opened and all(r["witness"]["dport"] == 443 for r in opened) and not _regions(report, "closed")
    git("commit", "-qm", "add")
    git("rm", "-rq", "infra/sg")
    code, (report,), _ = _diff(capsys, "HEAD")
    assert code == 1 and report["new"] == "working tree:infra/sg (absent: deleted in this change)" + WEB + \
        " (destroyed)"
    closed = _regions(report, "closed")
    assert closed and closed[0]["old"]["decided_by"]["file"] == "HEAD:infra/sg/rules.tf"
    assert not _regions(report, "opened")


def test_each_group_of_a_module_is_its_own_firewall(repo, capsys):
    path, git, write = repo
    _module(write)
    write("infra/sg/db.tf", GROUP.replace("web", "db") + HTTPS.replace("web", "db").replace("443", "5432")
          .replace('"https"', '"pg"'))
    git("add", ".")
    git("commit", "-qm", "old")
    write("infra/sg/rules.tf", HTTPS + SSH)
    code, reports, _ = _diff(capsys, "HEAD")
    assert code == 1 and [r["new"] for r in reports] == ["working tree:infra/sg" + WEB]  # db unchanged
    # --target names one of them
    code, (report,), _ = _diff(capsys, "HEAD", "--target", "aws_security_group.db")
    assert report["counts"] == {"opened": 0, "closed": 0, "unknown": 0, "rewritten": 0}


def test_a_named_directory_and_nothing_changed(repo, capsys):
    path, git, write = repo
    _module(write)
    write("docs/notes.txt", "x\n")
    git("add", ".")
    git("commit", "-qm", "old")
    write("infra/sg/ssh.tf", SSH)  # untracked: git diff does not list it, naming the directory reads it
    code, reports, err = _diff(capsys, "HEAD")
    assert code == 0 and reports == [] and "no changed file" in err
    code, (report,), _ = _diff(capsys, "HEAD", "infra/sg/")
    assert code == 1 and _regions(report, "opened")[0]["witness"]["dport"] == 22
    code, _, err = _diff(capsys, "HEAD", "docs")
    assert code == 2 and "docs: error: a directory is not a rule file" in err
    # a named .tf file is read with its module; from a subdirectory, names are relative to it
    os.chdir(path / "infra")
    code, (report,), _ = _diff(capsys, "HEAD", "sg/ssh.tf")
    assert code == 1 and report["old"] == "HEAD:sg" + WEB
    assert _regions(report, "opened")[0]["new"]["decided_by"]["file"] == "sg/ssh.tf"


def test_a_symlink_at_the_revision_is_refused_located(repo, capsys):
    path, git, write = repo
    _module(write)
    os.symlink("/etc/passwd", path / "infra/sg/passwd.tf")
    write("etc/firewalld/firewalld.conf", "DefaultZone=public\n")
    write("etc/firewalld/zones/public.xml", ZONE)
    os.symlink("/etc/passwd", path / "etc/firewalld/zones/home.xml")
    git("add", ".")
    git("commit", "-qm", "old")
    write("infra/sg/rules.tf", HTTPS + SSH)
    code, _, err = _diff(capsys, "HEAD", "infra/sg")
    assert code == 2 and "HEAD:infra/sg/passwd.tf: error: a symlink at that revision; not followed" in err
    assert "root:" not in err
    code, _, err = _diff(capsys, "HEAD", "etc/firewalld")
    assert code == 2 and "HEAD:etc/firewalld/zones/home.xml: error: a symlink at that revision" in err


def test_bad_hcl_at_the_old_revision_is_located_and_nothing_written(repo, capsys):
    path, git, write = repo
    _module(write)
    write("infra/sg/rules.tf", HTTPS.replace("to_port           = 443", "to_port = = 443"))
    git("add", ".")
    git("commit", "-qm", "broken")
    write("infra/sg/rules.tf", HTTPS + SSH)
    out = path / "report.json"
    code = main(["diff", "--git", "HEAD", "--no-findings", "--format", "json", "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "HEAD:infra/sg/rules.tf:6:" in err and "invalid HCL" in err
    assert "Traceback" not in err and not out.exists()
