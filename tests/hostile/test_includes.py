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


# -- budgets (issue 16) ----------------------------------------------------------------------
def test_include_fan_out_is_bounded(tmp_path):
    """14 levels of three includes each (43 files, 874 bytes) once ran for
    minutes: 3^14 files read. Every inclusion counts against
    MAX_INCLUDE_FILES; refused, located, at once."""
    from ruleanalyzer.parsers import nftables

    for level in range(14):
        (tmp_path / f"l{level}.nft").write_text(f'include "l{level + 1}.nft"\n' * 3)
    (tmp_path / "l14.nft").write_text("table ip t { }\n")
    start = time.process_time()
    with pytest.raises(RuleAnalyzerError) as info:
        loader.load(tmp_path / "l0.nft")
    assert time.process_time() - start < 5
    assert f"more than {nftables.MAX_INCLUDE_FILES} files read through include" in info.value.message
    assert info.value.location.line and info.value.location.file.endswith(".nft")


def test_max_bytes_counts_every_included_file(tmp_path):
    """One 20 kB file included 20 times is 400 kB read: over --max-bytes
    of 100 kB although each file is under it."""
    (tmp_path / "big.nft").write_text("# padding\n" * 2_000)
    (tmp_path / "main.nft").write_text('include "big.nft"\n' * 20)
    with pytest.raises(RuleAnalyzerError) as info:
        loader.load(tmp_path / "main.nft", max_bytes=100_000)
    assert "included files together are over the limit of 100000 bytes" in info.value.message
    assert (info.value.location.file, info.value.location.line) == (str(tmp_path / "main.nft"), 5)
    assert loader.load(tmp_path / "main.nft", max_bytes=1_000_000).rule_count == 0
