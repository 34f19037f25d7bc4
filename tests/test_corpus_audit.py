"""`audit` over the real-world corpus (../shared/corpus): no crash, no
check failure, every unreadable file reported as RA001 with a location.

Files over ``MAX_BYTES`` (the four ~0.4 MB university-chair dumps) are left
to ``bench/bench_audit.py``: their forward-path reachability takes tens of
seconds today (ruleanalyzer.space.reach), which would blow the test budget.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from ruleanalyzer.audit import expand_paths, run_audit
from ruleanalyzer.checks.base import Context

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
MAX_BYTES = 300_000

pytestmark = [pytest.mark.corpus,
              pytest.mark.skipif(not CORPUS.is_dir(), reason="corpus not present")]


def test_corpus_audits_without_crashes(monkeypatch):
    # One pathological file must not eat the budget: abandoned analyses are
    # reported (RA003 "took longer"), not crashes, and listed below.
    monkeypatch.setattr(Context, "analysis_seconds", 10.0)
    files = [p for p in expand_paths([CORPUS]) if os.path.getsize(p) <= MAX_BYTES]
    start = time.perf_counter()
    result = run_audit(files)
    took = time.perf_counter() - start
    failed = [f"{f.file}: {f.message}" for f in result.findings if f.code == "RA003"]
    crashed = [m for m in failed if "took longer" not in m]
    assert crashed == []
    assert len(result.inputs) == len(files)
    for f in result.findings:
        if f.code == "RA001":
            assert f.where and f.where.file, f.message
    print(f"\ncorpus audit: {len(files)} files, {result.rule_count} rules, {took:.1f} s, "
          f"findings per code {result.counts()}")
    for message in failed:
        print(f"abandoned: {message}")
