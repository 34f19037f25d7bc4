"""Every reader linear in its input (issue 16; docs/limits.md): shapes
that made a regular expression rescan to the end of the line from every
position — an unclosed quote among escaped ones in iptables, ``(x (x …``
in a ufw status cell, long ufw application names — cost about 8x for 8x
the input (the suite's growth comparison), not 64x."""

from __future__ import annotations

import random

import pytest

from ruleanalyzer import parsers
from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.parsers.iptables import _CLOSED, _WORD, _word_spans

from .test_limits import assert_linear

STATUS = ("Status: active\n\nTo                         Action      From\n"
          "--                         ------      ----\n")


def _parse_or_refuse(dialect):
    def run(text):
        try:
            parsers.parse(text, "hostile", dialect)
        except RuleAnalyzerError as err:
            assert err.location is not None
    return run


@pytest.mark.parametrize("dialect, make, n", [
    # 30 kB took 24 s, 120 kB 406 s
    ("iptables", lambda n: '*filter\n-A INPUT -m comment --comment "' + '\\" ' * n + " -j ACCEPT\nCOMMIT\n", 1000),
    ("iptables", lambda n: "*filter\n-A INPUT -m comment --comment " + 'a\\"' * n + " -j ACCEPT\nCOMMIT\n", 1000),
    # every quote closed: the words come from the regex (_CLOSED)
    ("iptables", lambda n: '*filter\n-A INPUT -m comment --comment "' + 'x\\" ' * n + '" -j ACCEPT\nCOMMIT\n', 1000),
    # 60 kB took 105 s
    ("ufw", lambda n: STATUS + "22/tcp (" + "(x " * n + "  ALLOW       Anywhere\n", 1000),
    # application names: 40 kB took 24 s
    ("ufw", lambda n: STATUS + "a" + " a" * n + "  ALLOW       Anywhere\n", 1000),
    ("ufw", lambda n: "ufw allow in on eth0 to any app '" + "a " * n + "'\n", 1000),
])
def test_reader_is_linear_on_hostile_shapes(dialect, make, n):
    assert_linear(_parse_or_refuse(dialect), make, n)


def test_word_spans_agree_with_the_word_regex():
    """The linear scanner finds exactly the words the regex did."""
    rng = random.Random(16)
    for _ in range(20_000):
        line = "".join(rng.choice(' a"\\\tb') for _ in range(rng.randint(0, 12)))
        assert _word_spans(line) == [(m.start(), m.end()) for m in _WORD.finditer(line)], line


def test_lines_with_closed_quotes_are_read_by_the_regex_as_by_the_scanner():
    """Where every quote is closed (_CLOSED) the reader takes _WORD's words
    at once: the scanner's words, on lines of quotes, escapes and blanks."""
    rng = random.Random(21)
    closed = 0
    for _ in range(20_000):
        line = "".join(rng.choice(['a', ' ', '"', '\\', '\t', '\u00a0', '""', '\\"'])
                       for _ in range(rng.randint(0, 12)))
        if _CLOSED.fullmatch(line):
            closed += 1
            assert _WORD.findall(line) == [line[a:b] for a, b in _word_spans(line)], line
    assert closed > 2000
