"""`audit` over the whole real-world corpus (../shared/corpus): no crash,
no check failure, no abandoned analysis, every unreadable file reported as
RA001 with a location. (About 25 s of CPU; bench/bench_audit.py times it.)
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ruleanalyzer.audit import expand_paths, run_audit
from ruleanalyzer.checks.base import Context

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"

pytestmark = [pytest.mark.corpus,
              pytest.mark.skipif(not CORPUS.is_dir(), reason="corpus not present")]


def test_corpus_audits_without_crashes(monkeypatch):
    # One pathological file must not eat the budget: it would be abandoned
    # (RA003 "took longer") and fail the test, not stall it.
    monkeypatch.setattr(Context, "analysis_seconds", 20.0)
    files = list(expand_paths([CORPUS]))
    start = time.perf_counter()
    result = run_audit(files)
    took = time.perf_counter() - start
    failed = [f"{f.file}: {f.message}" for f in result.findings if f.code == "RA003"]
    assert failed == []
    # Every file is audited: alone, or with the files of its host (rules.v4 +
    # rules.v6, an ufw directory), or as a file another one includes.
    covered = set(result.inputs) | {str(f) for group in result.hosts for f in group}
    assert {str(f) for f in files} <= covered
    for f in result.findings:
        if f.code == "RA001":
            assert f.where and f.where.file, f.message
        if f.code.startswith("RA4"):
            # Every exposure finding, in every dialect, names a place: a file
            # that exists (or a tool's stock file, <…>) and a line or JSON path.
            w = f.where
            assert w and w.file and (w.line or w.path), f"{f.code} {f.message}"
            name = w.file.split(" (")[0]
            assert name.startswith("<") or Path(name).is_file(), f"{f.code} at {w.file}: {f.message}"
    print(f"\ncorpus audit: {len(files)} files, {result.rule_count} rules, {took:.1f} s, "
          f"findings per code {result.counts()}")
