"""Containment (issue 16): a pull request controls the files, links and
names in the tree the analyzer reads. Nothing outside the tree given is
read (links leading out are refused, located), nothing but regular files
is read, no file is read past the byte limit whatever its size claims, a
file is read once (the code frame shows the text analysed, never the file
opened again), and SARIF carries no source text unless asked."""

from __future__ import annotations

import json
import sys
import os
import time

import pytest

from ruleanalyzer import cli, loader
from ruleanalyzer.audit import run_audit
from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.model import Rule

RULES = "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n"


@pytest.fixture()
def tree(tmp_path):
    fw = tmp_path / "fw"
    fw.mkdir()
    (fw / "a.rules").write_text(RULES)
    (tmp_path / "secret.rules").write_text("SECRET_TOKEN=hunter2\n")
    return fw


def _refused(fn) -> RuleAnalyzerError:
    start = time.process_time()
    with pytest.raises(RuleAnalyzerError) as info:
        fn()
    assert time.process_time() - start < 2
    return info.value


@pytest.mark.parametrize("target", ["/proc/self/environ", "/etc/passwd", "/dev/zero", "../secret.rules"])
def test_a_link_leading_out_is_refused_by_read_text(tree, target):
    os.symlink(target, tree / "env.rules")
    err = _refused(lambda: loader.read_text(tree / "env.rules"))
    assert "outside the directory given" in err.message and err.location.file == str(tree / "env.rules")


def test_a_link_inside_is_read(tree):
    os.symlink("a.rules", tree / "b.rules")
    assert loader.read_text(tree / "b.rules") == RULES


@pytest.mark.parametrize("make", [
    lambda p: os.mkfifo(p),  # open() of a FIFO blocks until a writer comes: never opened blocking
    lambda p: os.symlink("/dev/zero", p),  # st_size 0, endless
])
def test_special_files_are_refused(tmp_path, make):
    path = tmp_path / "special.rules"
    make(path)
    err = _refused(lambda: loader.read_text(path, root=tmp_path.parent))
    assert "not a regular file" in err.message or "outside" in err.message


def test_dev_zero_named_directly_is_refused_without_reading():
    err = _refused(lambda: loader.read_text("/dev/zero"))
    assert "not a regular file" in err.message


def test_a_proc_file_is_read_only_to_the_limit():
    """/proc files say 0 bytes: the limit holds on the bytes read, not st_size."""
    path = "/proc/self/maps"  # always longer than 100 bytes
    err = _refused(lambda: loader.read_text(path, max_bytes=100))
    assert err.message == "file is more than 100 bytes, over the limit of 100 bytes"


def test_audit_of_a_directory_refuses_links_out_and_goes_on(tree, capsys):
    """``fw/env.rules -> /proc/self/environ`` once printed the CI job's
    environment in the RA001 code frame; now it is one RA001 naming the
    link, nothing of the target shown, the other files analysed."""
    os.environ["RA_HOSTILE_CANARY"] = "canary-7f3a"
    try:
        os.symlink("/proc/self/environ", tree / "env.rules")
        os.symlink("/dev/zero", tree / "zero.rules")
        os.symlink(tree.parent / "secret.rules", tree / "secret.rules")
        os.symlink("/etc", tree / "etc")  # a directory link out: not walked
        os.mkfifo(tree / "fifo.rules")
        os.symlink("a.rules", tree / "same.rules")  # inside: read as a.rules, once
        code = cli.main(["audit", str(tree), "--format", "json"])
    finally:
        del os.environ["RA_HOSTILE_CANARY"]
    out, err = capsys.readouterr()
    assert "canary-7f3a" not in out + err and "hunter2" not in out + err and "root:" not in out
    data = json.loads(out)
    unreadable = sorted(os.path.basename(f["location"]["file"]) for f in data["findings"] if f["code"] == "RA001")
    assert unreadable == ["env.rules", "etc", "fifo.rules", "secret.rules", "zero.rules"]
    assert any(f["code"] != "RA001" for f in data["findings"])  # a.rules was analysed
    assert code == 1


def test_firewalld_directory_does_not_follow_links_out(tmp_path):
    fw = tmp_path / "conf"
    (fw / "zones").mkdir(parents=True)
    (fw / "firewalld.conf").write_text("DefaultZone=public\n")
    os.symlink("/etc/passwd", fw / "zones" / "public.xml")
    err = _refused(lambda: loader.load(fw))
    assert "leads out of the configuration directory" in err.message
    # a snapshot-like directory whose etc/ links out is not a firewalld directory
    other = tmp_path / "other"
    other.mkdir()
    os.symlink(fw, other / "firewalld")
    from ruleanalyzer.parsers.firewalld import is_config_dir
    assert not is_config_dir(other)


def test_config_and_inventory_refuse_devices_and_links_out(tmp_path):
    from ruleanalyzer.config import load_config
    from ruleanalyzer.inventory import load_inventory
    os.symlink("/dev/zero", tmp_path / ".ruleanalyzer.yaml")
    assert "outside" in _refused(lambda: load_config(tmp_path / ".ruleanalyzer.yaml")).message
    os.mkfifo(tmp_path / "inventory.yaml")
    assert "not a regular file" in _refused(lambda: load_inventory(tmp_path / "inventory.yaml")).message


def test_the_code_frame_shows_the_text_read_not_the_file_now(tree, capsys):
    """The frame comes from the text analysed: a file changed (or replaced by
    a link) after reading is never opened again."""
    from ruleanalyzer.report import findings_text, text

    result = run_audit([tree / "a.rules"])
    (tree / "a.rules").unlink()
    os.symlink("/etc/passwd", tree / "a.rules")
    findings_text.render_findings(text.make_console(sys.stdout), result, 30)
    out = capsys.readouterr().out
    assert "--dport 22" in out and "root:" not in out


def test_sarif_has_no_snippets_unless_asked(tree, capsys):
    cli.main(["audit", str(tree / "a.rules"), "--format", "sarif"])
    assert '"snippet"' not in capsys.readouterr().out
    cli.main(["audit", str(tree / "a.rules"), "--format", "sarif", "--sarif-snippets"])
    assert '"snippet"' in capsys.readouterr().out


def test_texts_kept_for_frames_are_bounded(tmp_path, monkeypatch):
    """Frames need the text read, but an audit of many large files must not
    keep them all: past MAX_KEPT_CHARS the oldest are dropped."""
    monkeypatch.setattr(loader, "MAX_KEPT_CHARS", 10_000)
    loader.forget_texts()
    for i in range(5):
        (tmp_path / f"{i}.rules").write_text("#" * 3_000 + "\n")
        loader.read_text(tmp_path / f"{i}.rules")
    kept = [i for i in range(5) if loader.text_read(str(tmp_path / f"{i}.rules")) is not None]
    assert kept == [2, 3, 4]
    loader.forget_texts()


def test_large_kept_text_is_compressed(tmp_path, monkeypatch):
    """A large text is kept compressed for frames once read (17 MiB at
    100k kube-proxy rules, live through the audit) and read back whole,
    one object for the frames of one report; an audit compresses it (a
    query does not: its load leaves the text as it is)."""
    monkeypatch.setattr(loader, "COMPRESS_KEPT_FROM", 1_000)
    loader.forget_texts()
    text = "".join(f"-A INPUT -s 10.0.{i % 256}.{i // 256}/32 -j ACCEPT \u00e9\n" for i in range(300))
    (tmp_path / "big.rules").write_text(text, encoding="utf-8")
    (tmp_path / "small.rules").write_text("-A INPUT -j ACCEPT\n")
    assert loader.read_text(tmp_path / "big.rules") == text
    loader.read_text(tmp_path / "small.rules")
    assert isinstance(loader._TEXTS[str(tmp_path / "big.rules")][1], str)  # (while its reader may hold it)
    loader.pack_texts()  # (an audit does, once its input is read)
    assert isinstance(loader._TEXTS[str(tmp_path / "big.rules")][1], loader._Source)
    assert isinstance(loader._TEXTS[str(tmp_path / "small.rules")][1], str)
    first = loader.text_read(str(tmp_path / "big.rules"))
    assert first == text and loader.text_read(str(tmp_path / "big.rules")) is first
    assert loader.text_read(str(tmp_path / "small.rules")) == "-A INPUT -j ACCEPT\n"
    loader.forget_texts()
    (tmp_path / "big.rules").write_text("*filter\n" + text.replace("\u00e9", "") + "COMMIT\n")
    assert loader.load(str(tmp_path / "big.rules")).rule_count == 300
    assert isinstance(loader._TEXTS[str(tmp_path / "big.rules")][1], str)
    from ruleanalyzer.audit import run_audit

    run_audit([str(tmp_path / "big.rules")], select=["RA101"])
    assert isinstance(loader._TEXTS[str(tmp_path / "big.rules")][1], loader._Source)
    loader.forget_texts()


def test_rules_read_their_text_from_the_packed_text(tmp_path, monkeypatch):
    """Once an audit packs a large text, the rules whose text is their line
    from their column on (less trailing blanks) read it from there when
    asked (17 MiB of rule texts at 100k kube-proxy rules): the very strings
    read, in and out of file order; a rule whose text is not its line's
    tail keeps its own."""
    monkeypatch.setattr(loader, "COMPRESS_KEPT_FROM", 1_000)
    monkeypatch.setattr(loader._Source, "BLOCK", 64)  # lines across blocks
    loader.forget_texts()
    lines = ["*filter", ":INPUT DROP [0:0]", ":ACC - [0:0]"]
    lines += [f"-A INPUT -s 10.0.{i % 256}.{i // 256}/32 -m comment --comment \"r {i} \u00e9\" -j ACC  \r"
              for i in range(200)]
    lines += ["   -A INPUT -p tcp --dport 22 -j ACCEPT   ", "[3:4] -A ACC -j ACCEPT", "COMMIT", ""]
    (tmp_path / "big.rules").write_text("\n".join(lines), encoding="utf-8")
    before = [r.text for c in loader.load(str(tmp_path / "big.rules")).chains() for r in c.rules]
    ruleset = loader.load(str(tmp_path / "big.rules"))
    rules = [r for c in ruleset.chains() for r in c.rules]
    rules[5].text = before[5] = before[5][:-1]
    loader.pack_texts([ruleset])
    assert [type(r) for r in rules] == [loader._SourcedRule] * 5 + [Rule] + [loader._SourcedRule] * 196
    assert all(isinstance(r, Rule) for r in rules)
    assert [r.text for r in rules] == before
    assert [r.text for r in reversed(rules)] == before[::-1]
    assert str(rules[0]) == before[0] and rules[0].text.endswith("-j ACC")
    rules[0].text = "changed"
    assert rules[0].text == "changed" and rules[1].text == before[1]
    loader.forget_texts()


def test_readers_caches_are_emptied_before_the_analyses(tmp_path):
    """The readers' caches of values by text serve reading only: an audit
    empties them once its input is read (100k kube-proxy rules: 30k
    networks by text, ~5 MiB through the audit's peak)."""
    from ruleanalyzer.parsers import iptables_values, nft_common

    (tmp_path / "a.rules").write_text("*filter\n:INPUT DROP [0:0]\n-A INPUT -s 10.0.0.1/32 -j ACCEPT\n"
                                      "COMMIT\n")
    (tmp_path / "b.nft").write_text("table inet f {\n chain input {\n  type filter hook input priority 0;\n"
                                    "  ip saddr 10.0.0.2 accept\n }\n}\n")
    run_audit([str(tmp_path / "a.rules")])
    assert not iptables_values._network_cache
    run_audit([str(tmp_path / "b.nft")])
    assert nft_common._network.cache_info().currsize == 0
    assert loader.load(str(tmp_path / "a.rules")).rule_count == 1
    assert iptables_values._network_cache  # (reading fills it again)
