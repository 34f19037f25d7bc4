"""Every check against its fixtures (``tests/checks/<CODE>/trigger*`` must
fire exactly on the lines marked ``# expect: CODE``; ``near_miss*`` must stay
silent) and against its own documented examples (``bad`` fires, ``good``
does not)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ruleanalyzer.checks import registry

from .helpers import assert_findings, expected_lines, findings_for, fixture_dialect

HERE = Path(__file__).parent
#: Checks a fixture cannot trigger, and where they are tested instead.
NO_FIXTURE = {"RA003": "an analyzer bug by definition; tests/test_audit_cli.py injects a crashing check",
              "RA611": "a crashed or timed-out host of a fleet audit; tests/test_fleet.py kills a worker",
              "RA704": "needs firewalld and another tool's DNAT rules together; tests/test_parser_firewalld.py",
              "RA706": "needs a host's interfaces (a snapshot); tests/test_parser_firewalld.py builds one"}
#: Checks that judge other checks' findings need those checks to run too.
ALSO_SELECT = {"RA901": ["RA1"], "RA902": ["RA1"]}
FIXTURES = sorted(p for p in HERE.glob("RA*/*") if p.is_file() and not p.name.endswith(".expect"))
#: A fixture that is a directory is a firewalld configuration (/etc/firewalld).
DIR_FIXTURES = sorted(p for p in HERE.glob("RA*/*") if p.is_dir())


def _lines(findings, code):
    """Lines of ``code``'s findings, every place of a grouped finding included."""
    return sorted(w.line for f in findings if f.code == code
                  for w in (f.where, *f.also) if w is not None)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixture(path: Path):
    code = path.parent.name
    text = path.read_text()
    findings = findings_for(text, fixture_dialect(path), [code, *ALSO_SELECT.get(code, [])],
                            name=str(path))
    if path.name.startswith("near_miss"):
        assert [f.message for f in findings if f.code == code] == []
        return
    assert path.name.startswith("trigger"), f"fixture names start with trigger or near_miss: {path}"
    sidecar = path.with_name(path.name + ".expect")
    if sidecar.exists():  # JSON inputs: the expected lines (or 0 for JSON paths) listed aside
        want = sorted(int(x) for x in sidecar.read_text().split())
    else:
        want = sorted(expected_lines(text).get(code, []))
        if code == "RA001":
            want = want or _lines(findings, code)  # the parser names the line
    assert want, f"{path} marks no expected finding"
    assert _lines(findings, code) == want, [f.message for f in findings]


@pytest.mark.parametrize("path", DIR_FIXTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_directory_fixture(path: Path):
    from ruleanalyzer.audit import run_audit

    code = path.parent.name
    findings = [f for f in run_audit([str(path)], select=[code]).findings if f.code == code]
    got = sorted((str(Path(f.where.file).relative_to(path)), f.where.line) for f in findings)
    if path.name.startswith("near_miss"):
        assert got == [], [f.message for f in findings]
        return
    want = sorted((str(p.relative_to(path)), line) for p in path.rglob("*") if p.is_file()
                  for line in expected_lines(p.read_text()).get(code, []))
    assert want, f"{path} marks no expected finding"
    assert got == want, [f.message for f in findings]


@pytest.mark.parametrize("code", sorted(registry()))
def test_every_check_has_fixtures(code):
    if code in NO_FIXTURE:
        pytest.skip(NO_FIXTURE[code])
    folder = HERE / code
    names = [p.name for p in folder.iterdir()] if folder.is_dir() else []
    assert any(n.startswith("trigger") for n in names), f"{code}: no trigger fixture"
    assert any(n.startswith("near_miss") for n in names), f"{code}: no near_miss fixture"


@pytest.mark.parametrize("code", sorted(registry()))
def test_documented_examples(code):
    cls = registry()[code]
    assert cls.summary and cls.rationale and cls.name == cls.name.lower()
    if cls.bad:
        findings = findings_for(cls.bad, cls.example_dialect, [code, *ALSO_SELECT.get(code, [])])
        assert [f for f in findings if f.code == code], f"{code}: its bad example does not fire"
        want = expected_lines(cls.bad).get(code)
        if want:
            assert _lines(findings, code) == sorted(want)
    if cls.good:
        found = findings_for(cls.good, cls.example_dialect, [code, *ALSO_SELECT.get(code, [])])
        assert [f.message for f in found if f.code == code] == []


def test_assert_findings_helper_counts_codes():
    text = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j DROP\n-A INPUT -j ACCEPT\n-A INPUT -j ACCEPT\nCOMMIT\n"
    assert_findings(text, "iptables", "RA504")
    assert_findings(text, "iptables", "RA504", "RA505")
    assert_findings(text, "iptables", select=["RA506"])  # no codes: silence
