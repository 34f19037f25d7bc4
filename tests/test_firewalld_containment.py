"""The firewalld reader stays inside the directory it is given: a symlink
out of it is refused (not followed), and the files it reads are bounded in
number and size."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ruleanalyzer import load
from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.parsers import firewalld

ZONE = '<zone>\n  <interface name="eth0"/>\n  <service name="ssh"/>\n</zone>\n'


def _tree(tmp_path):
    root = tmp_path / "etc_firewalld"
    (root / "zones").mkdir(parents=True)
    (root / "firewalld.conf").write_text("DefaultZone=public\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "public.xml").write_text(ZONE)
    return root, outside


@pytest.mark.parametrize("link, target", [
    ("zones/public.xml", "outside/public.xml"),     # a zone file linked from elsewhere
    ("services", "outside"),                         # a whole folder
    ("firewalld.conf.real", None),                   # firewalld.conf itself (below)
])
def test_a_symlink_out_of_the_tree_is_refused(tmp_path, link, target):
    root, outside = _tree(tmp_path)
    if target is None:
        (outside / "firewalld.conf").write_text("DefaultZone=block\n")
        (root / "firewalld.conf").unlink()
        (root / "firewalld.conf").symlink_to(outside / "firewalld.conf")
        link = "firewalld.conf"
    else:
        (root / link).symlink_to(tmp_path / target)
    with pytest.raises(RuleAnalyzerError) as info:
        load(root)
    assert "leads out of the configuration directory" in info.value.message
    assert info.value.location.file == str(root / link)
    if link != "zones/public.xml":
        return  # the command line is run once: exit 2, the message, no traceback
    done = subprocess.run([sys.executable, "-m", "ruleanalyzer", "audit", "--no-config", str(root)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and "leads out" in done.stdout + done.stderr and "Traceback" not in done.stderr


def test_a_symlink_inside_the_tree_is_read(tmp_path):
    root, _ = _tree(tmp_path)
    (root / "shared").mkdir()
    (root / "shared" / "public.xml").write_text(ZONE)
    (root / "zones" / "public.xml").symlink_to(os.path.join("..", "shared", "public.xml"))
    rs = load(root)
    assert rs.meta["firewalld"]["config"].zones["public"].services[0].value == "ssh"


def test_file_count_and_total_size_are_bounded(tmp_path, monkeypatch):
    root, _ = _tree(tmp_path)
    for i in range(8):
        (root / "zones" / f"z{i}.xml").write_text(ZONE.replace("eth0", f"eth{i}"))
    monkeypatch.setattr(firewalld, "MAX_FILES", 5)
    with pytest.raises(RuleAnalyzerError, match="more than 5 files"):
        load(root)
    monkeypatch.setattr(firewalld, "MAX_FILES", 5000)
    monkeypatch.setattr(firewalld, "MAX_TOTAL_BYTES", 300)
    with pytest.raises(RuleAnalyzerError, match="holds more than"):
        load(root)
