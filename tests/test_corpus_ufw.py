"""Every ufw file of the shared corpus parses or gives a located error.

The upstream test transcripts are split into steps: each ``N: <args>`` line
is one ufw command, each ``Status: …`` block in the output one status
listing. Commands of the ``bad`` suites are meant to fail: they must fail
with a located error, never a crash. Counts are printed (``-s``) for the
report.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.loader import load
from ruleanalyzer.parsers import ufw
from ruleanalyzer.parsers.ufw_commands import parse_command
from ruleanalyzer.parsers.ufw_status import parse_status

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "ufw"
TRANSCRIPTS = CORPUS / "ufw-upstream-test-transcripts"

pytestmark = pytest.mark.corpus

_STEP = re.compile(r"^(\d+): (.*)$")
#: Steps of the upstream test harness that are not ufw arguments.
_NOT_UFW = re.compile(r"^(ip6?tables\s|ufw-init\b|tests/|/)")
_ROW = re.compile(r"\s(ALLOW|DENY|REJECT|LIMIT)(\s|$)")


def _corpus_or_skip() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"corpus not present at {CORPUS}")
    return CORPUS


def _located(err: RuleAnalyzerError) -> bool:
    return err.location is not None and err.location.line >= 1


def _rule_files():
    return sorted(p for p in CORPUS.glob("*/*") if p.parent != TRANSCRIPTS) if CORPUS.is_dir() else []


@pytest.mark.parametrize("path", _rule_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_each_file_parses_or_gives_a_located_error(path):
    _corpus_or_skip()
    try:
        rs = ufw.parse(path.read_text(encoding="utf-8"), str(path))
    except RuleAnalyzerError as err:
        assert _located(err), err.render()
        # only the deliberately broken application profiles may fail
        assert "profiles.bad" in path.name, err.render()
        return
    assert rs.tables or ufw.kind_of(path.read_text(), str(path)).kind == "profiles"


def test_each_hosts_files_together_form_one_host():
    corpus = _corpus_or_skip()
    for source in ("noraworld-ufw-conf", "thesecuretux-hardened-config", "candy-pi-lite-service",
                   "alvinylt-arch-linux-config"):
        files = sorted((corpus / source).iterdir())
        rs = load(*files, dialect="ufw")
        user_chains = [c for t in rs.tables for c in t.chains.values() if c.name.endswith("user-input")]
        assert len(user_chains) == 2, source
        assert "user.rules (no rules)" not in rs.meta["assumed"], source


def _steps(text: str):
    """(line number, command) and (line number, status text) of a transcript."""
    lines = text.split("\n")
    commands, statuses = [], []
    i = 0
    while i < len(lines):
        m = _STEP.match(lines[i])
        if m:
            commands.append((i + 1, m.group(2)))
        elif lines[i].startswith("Status: "):
            block = [lines[i]]
            j = i + 1
            while j < len(lines):
                line = lines[j]
                if (not line.strip() or line.startswith(("Logging:", "Default:", "New profiles:"))
                        or re.match(r"^\s*(To\s+Action|--)", line) or _ROW.search(" " + line)):
                    block.append(line)
                    j += 1
                    continue
                break
            statuses.append((i + 1, "\n".join(block)))
            i = j
            continue
        i += 1
    return commands, statuses


def test_transcripts_commands_and_status_blocks():
    _corpus_or_skip()
    totals = Counter()
    for path in sorted(TRANSCRIPTS.iterdir()):
        commands, statuses = _steps(path.read_text(encoding="utf-8"))
        bad_suite = path.name.startswith(("bad__", "ipv6__bad"))
        for lineno, command in commands:
            if _NOT_UFW.match(command):
                totals["harness steps (not ufw commands)"] += 1
                continue
            try:
                parse_command(command, str(path), lineno)
                totals["bad suite: accepted" if bad_suite else "commands parsed"] += 1
            except RuleAnalyzerError as err:
                assert _located(err), err.render()
                totals["bad suite: located errors" if bad_suite else "commands refused (located)"] += 1
        for lineno, block in statuses:
            status = parse_status(block, str(path))
            totals["status blocks"] += 1
            totals["status rows"] += len(status.rules)
            # and the whole listing becomes a host
            ufw.parse(block, str(path))
    print("\nufw transcripts:", dict(totals))
    assert totals["commands parsed"] > 3000
    assert totals["status blocks"] > 50
    assert totals["bad suite: located errors"] > totals["bad suite: accepted"]
