"""Bounded, seeded fuzzing of every reader (issue 9): random text and bytes,
corpus mutations, grammar-aware generation. The only allowed outcomes are a
parsed ruleset (then evaluated on a few packets without raising) or a located
RuleAnalyzerError; see :mod:`tests.fuzz.harness`. The long runs live in
``fuzz/`` (README there)."""

from __future__ import annotations

import os
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.loader import read_text

from . import harness
from . import strategies as S

#: Examples per reader and direction; FUZZ_EXAMPLES scales it (CI keeps the default).
BUDGET = int(os.environ.get("FUZZ_EXAMPLES", "30"))
FUZZ = settings(derandomize=True, max_examples=BUDGET, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))
# the slow readers (ufw assembles a whole host per input) get fewer examples
SLOW = {"ufw": 3, "iptables": 2, "nftables": 2}


def _budget(dialect: str) -> settings:
    return settings(FUZZ, max_examples=max(5, BUDGET // SLOW.get(dialect, 1)))


@pytest.mark.parametrize("dialect", harness.READERS)
def test_random_text(dialect):
    @_budget(dialect)
    @given(S.text_inputs)
    def run(text):
        harness.check(text, dialect)
    run()


def test_random_text_sniffed():
    @FUZZ
    @given(S.text_inputs)
    def run(text):
        harness.check(text, None)
    run()


def test_random_bytes_through_the_loader(tmp_path):
    """Bytes go through read_text (NUL and non-UTF-8 refused, located) then
    the sniffer and the reader."""
    path = tmp_path / "input.rules"

    @FUZZ
    @given(S.bytes_inputs)
    def run(data):
        path.write_bytes(data)
        try:
            text = read_text(path)
        except RuleAnalyzerError as err:
            assert err.location is not None and err.location.file == str(path)
            assert err.render().startswith(str(path))
            return
        assert text == harness.decode_like_loader(data)
        harness.check(text, None)
    run()


@pytest.mark.parametrize("dialect", harness.READERS)
def test_corpus_mutations(dialect):
    texts = harness.corpus_texts(dialect, limit=60, max_size=16 * 1024)
    if not texts:
        pytest.skip(f"no corpus files for {dialect} (corpus absent, or no folder of that dialect)")

    @_budget(dialect)
    @given(S.corpus_mutations(dialect, texts))
    def run(text):
        harness.check(text, dialect)
    run()


@pytest.mark.parametrize("dialect", harness.READERS)
def test_grammar_aware(dialect):
    texts = harness.corpus_texts(dialect, limit=60, max_size=16 * 1024)
    if dialect not in ("iptables", "nftables", "ufw") and not texts:
        pytest.skip(f"no corpus files for {dialect} (corpus absent, or no folder of that dialect)")

    @_budget(dialect)
    @given(S.grammar_inputs(dialect, texts))
    def run(text):
        harness.check(text, dialect)
    run()


@pytest.mark.parametrize("dialect", harness.READERS)
def test_line_endings_and_bom_do_not_crash(dialect):
    texts = harness.corpus_texts(dialect, limit=5, max_size=16 * 1024)
    if not texts:
        pytest.skip(f"no corpus files for {dialect} (corpus absent, or no folder of that dialect)")
    for text in texts:
        for variant in (text.replace("\n", "\r\n"), text.replace("\n", "\r"), "\ufeff" + text,
                        text.encode("utf-8").decode("latin-1"), text.upper(), text[: len(text) // 2]):
            harness.check(variant, dialect)
