"""nftables ``include`` cannot escape the directories of the files named:
relative escapes, absolute paths, symlinks pointing out and globs over the
machine are refused, located, before anything outside is read."""

from __future__ import annotations

import os
import time

import pytest

from ruleanalyzer import loader, parsers
from ruleanalyzer.errors import RuleAnalyzerError


@pytest.fixture()
def rules_dir(tmp_path):
    sub = tmp_path / "rules"
    sub.mkdir()
    (tmp_path / "secret.nft").write_text("table ip secret { }\n")
    (sub / "inner.nft").write_text("table ip inner { chain c { type filter hook input priority 0; } }\n")
    os.symlink("/etc/passwd", sub / "passwd.nft")
    os.symlink(tmp_path / "secret.nft", sub / "secret-link.nft")
    return sub


@pytest.mark.parametrize("target", ["../../etc/passwd", "/etc/passwd", "../secret.nft",
                                    "passwd.nft", "secret-link.nft", "/*/*/*/*/*/*", "../*"])
def test_include_outside_is_refused(rules_dir, target):
    main = rules_dir / "main.nft"
    main.write_text(f'include "{target}"\n')
    start = time.process_time()  # CPU time, system time (walking directories) included
    with pytest.raises(RuleAnalyzerError) as info:
        loader.load(main)
    assert time.process_time() - start < 2  # ~0.01 s; "/*/*/*/*/*/*" once walked the machine first (5 s)
    err = info.value
    assert "leaves the directory" in err.message
    assert (err.location.file, err.location.line, err.location.column) == (str(main), 1, 9)


def test_include_inside_is_read(rules_dir):
    main = rules_dir / "main.nft"
    main.write_text('include "inner.nft"\n')
    ruleset = loader.load(main)
    assert any(t.name == "inner" for t in ruleset.tables)


def test_include_from_a_string_is_refused():
    with pytest.raises(RuleAnalyzerError) as info:
        parsers.parse('include "/etc/passwd"\n', "<string>", "nftables")
    assert "not allowed" in info.value.message


def test_include_cycle_is_refused(rules_dir):
    (rules_dir / "a.nft").write_text('include "b.nft"\n')
    (rules_dir / "b.nft").write_text('include "a.nft"\n')
    with pytest.raises(RuleAnalyzerError) as info:
        loader.load(rules_dir / "a.nft")
    assert "nested too deeply" in info.value.message
