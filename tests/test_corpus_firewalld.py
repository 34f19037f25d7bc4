"""Every file of ../shared/corpus/firewalld parses or gives a located error;
the host configurations spread over several files (one prefix, MANIFEST
paths under etc/firewalld) are rebuilt as directories and read whole."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from ruleanalyzer import load
from ruleanalyzer.errors import RuleAnalyzerError

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "firewalld"
pytestmark = pytest.mark.corpus


def _manifest():
    if not (CORPUS / "MANIFEST.tsv").exists():
        pytest.skip(f"corpus not found at {CORPUS}")
    with open(CORPUS / "MANIFEST.tsv", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def _outcome(paths):
    try:
        rs = load(*paths)
    except RuleAnalyzerError as exc:
        assert exc.location is not None and exc.location.file, f"unlocated error: {exc}"
        return "error"
    assert rs.rule_count >= 0
    return "parsed"


def test_every_corpus_file_parses_or_gives_a_located_error():
    counts = {"parsed": 0, "error": 0}
    for row in _manifest():
        counts[_outcome([CORPUS / row["file"]])] += 1
    print(f"\nfirewalld corpus, file by file: {counts}")
    assert sum(counts.values()) == len(_manifest())


def test_host_configurations_read_as_directories(tmp_path):
    hosts: dict[str, list[dict]] = {}
    for row in _manifest():
        path = row["path"]
        if "firewalld/" in path and row["kind"] in ("zone", "policy", "firewalld.conf", "direct", "service"):
            prefix = row["file"].split("__")[0] + "__" + row["file"].split("__")[1]
            hosts.setdefault(prefix, []).append(row)
    counts = {"parsed": 0, "error": 0}
    for prefix, rows in hosts.items():
        root = tmp_path / prefix
        for row in rows:
            rel = row["path"].split("firewalld/", 1)[1]
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(CORPUS / row["file"], root / rel)
        if not any((root / m).exists() for m in ("firewalld.conf", "zones", "policies", "direct.xml")):
            continue
        counts[_outcome([root])] += 1
    print(f"\nfirewalld corpus, host configurations: {counts}")
    assert counts["parsed"] + counts["error"] > 0
