"""pyflakes-style helpers for check tests: audit a text, compare codes."""

from __future__ import annotations

import re
from pathlib import Path

from ruleanalyzer import loads
from ruleanalyzer.audit import run_audit
from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.checks.meta import UnreadableInput

EXPECT = re.compile(r"^\s*(#|<!--)\s*expect:\s*(?P<codes>[A-Z0-9, ]+?)\s*(-->)?\s*$")
DIALECT_BY_SUFFIX = {".rules": "iptables", ".nft": "nftables", ".json": None, ".xml": "firewalld"}


def findings_for(text: str, dialect: str | None, select: list[str], name: str = "<test>"):
    """Audit ``text`` with only the ``select`` checks; a text that does not
    parse yields its RA001 finding, as the CLI would report it."""
    try:
        ruleset = loads(text, dialect=dialect, name=name)
    except RuleAnalyzerError as exc:
        return [UnreadableInput().from_error(exc, name)] if "RA001" in select else []
    return run_audit([ruleset], select=select).findings


def assert_findings(text: str, dialect: str | None, *codes: str, select: list[str] | None = None):
    """The checks ``select`` (default: the codes given) find exactly ``codes``
    in ``text`` — none given and a ``select`` asserts silence."""
    select = select or sorted(set(codes))
    assert select, "name the expected codes or the checks to run"
    found = sorted(f.code for f in findings_for(text, dialect, select))
    assert found == sorted(codes), f"expected {sorted(codes)}, found {found}"


def expected_lines(text: str) -> dict[str, list[int]]:
    """``{code: [line, …]}`` for each ``# expect: CODE`` marker (the finding
    belongs on the next line)."""
    out: dict[str, list[int]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        m = EXPECT.match(line)
        if m:
            for code in m.group("codes").replace(" ", "").split(","):
                out.setdefault(code, []).append(number + 1)
    return out


def fixture_dialect(path: Path) -> str | None:
    return DIALECT_BY_SUFFIX.get(path.suffix)
