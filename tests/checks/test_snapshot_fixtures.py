"""Checks that need a host snapshot (RA6xx) against their fixtures, which
are snapshot directories: ``trigger.snapshot`` must fire on the lines its
rule files mark ``# expect: CODE`` (or anywhere, when none is marked),
``near_miss.snapshot`` must stay silent; ``*.fleet`` directories hold
several hosts' snapshots and are audited as a fleet."""

from __future__ import annotations

from pathlib import Path

import pytest

from ruleanalyzer.audit import run_audit
from ruleanalyzer.fleet import audit_fleet

from .helpers import expected_lines

HERE = Path(__file__).parent
FIXTURES = sorted(p for p in HERE.glob("RA6*/*") if p.is_dir())


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_snapshot_fixture(path: Path):
    code = path.parent.name
    if path.suffix == ".fleet":
        hosts = sorted(str(p) for p in path.iterdir() if p.is_dir())
        findings = audit_fleet(hosts, codes=[code], options={}, in_process=True).findings
    else:
        findings = run_audit([str(path)], select=[code]).findings
    mine = [f for f in findings if f.code == code]
    if path.name.startswith("near_miss"):
        assert [f.message for f in mine] == []
        return
    assert path.name.startswith("trigger") and mine, f"{path}: {code} does not fire"
    for rules in path.glob("*tables-*save.txt"):
        want = expected_lines(rules.read_text()).get(code)
        if want:
            got = sorted(f.where.line for f in mine if f.where and f.where.file == str(rules))
            assert got == sorted(want), [f.message for f in mine]
