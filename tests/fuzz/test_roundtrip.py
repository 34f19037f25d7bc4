"""Round trips where they hold. No dialect module prints the model back (the
model keeps each rule's source in ``Rule.text``), so the property checked is
the weaker one: re-parsing ``rule.text`` inside the same table and chain
gives an equal rule, and random packets get the same verdicts from the
re-parsed ruleset."""

from __future__ import annotations

import ipaddress
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ruleanalyzer import parsers
from ruleanalyzer.engine import Evaluator
from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.model import Ruleset
from ruleanalyzer.packets import make_packet
from ruleanalyzer.parsers.iptables import parse_rule

from . import harness
from . import strategies as S

BUDGET = int(os.environ.get("FUZZ_EXAMPLES", "30"))
FUZZ = settings(derandomize=True, max_examples=BUDGET, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))

packets = st.builds(
    lambda src, dst, proto, sport, dport, flags, state, hook: make_packet(
        src=str(ipaddress.IPv4Address(src)), dst=str(ipaddress.IPv4Address(dst)), proto=proto,
        sport=sport, dport=dport, **({"flags": flags} if proto == "tcp" else {}), state=state, hook=hook),
    st.sampled_from([0x0A000001, 0xC0000201, 0xC6336401, 0x7F000001]) | st.integers(0, 2**32 - 1),
    st.sampled_from([0x0A000001, 0xC0000201, 0xC6336407]) | st.integers(0, 2**32 - 1),
    st.sampled_from(["tcp", "udp"]), st.integers(1, 65535),
    st.sampled_from([22, 53, 80, 443, 8080]) | st.integers(1, 65535),
    st.sampled_from(["SYN", "SYN,ACK", "ACK", "SYN,ECE,CWR", "RST"]),
    st.sampled_from(["auto", "new", "established", "invalid"]),
    st.sampled_from(["input", "forward", "output"]))


def _same_rule(a, b) -> bool:
    return a.matches == b.matches and a.action == b.action and a.effects == b.effects


def _verdicts(ruleset: Ruleset, pkts) -> list[str]:
    ev = Evaluator(ruleset)
    return [ev.evaluate(p).verdict for p in pkts]


def _iptables_reparsed(ruleset: Ruleset) -> int:
    count = 0
    for rule in ruleset.rules():
        if rule.implicit or not rule.text:
            continue
        chain = rule.chain
        again = parse_rule(rule.text, table=chain.table.name, chain=chain.name,
                           family=chain.table.family)
        assert _same_rule(rule, again), (rule.text, rule, again)
        count += 1
    return count


@FUZZ
@given(S.iptables_files(), st.lists(packets, min_size=1, max_size=4))
def test_iptables_rule_text_reparses_to_the_same_rule(text, pkts):
    try:
        ruleset = parsers.parse(text, "gen.rules", "iptables")
    except RuleAnalyzerError:
        return
    _iptables_reparsed(ruleset)


@pytest.mark.skipif(not harness.corpus_files("iptables"), reason="corpus not present")
def test_iptables_corpus_rule_text_reparses_and_verdicts_hold():
    """Every corpus rule re-parsed from its own text, and the rebuilt ruleset
    (each rule's text put back in its chain) gives the same verdicts."""
    checked = 0
    for text in harness.corpus_texts("iptables", limit=80, max_size=32 * 1024):
        try:
            ruleset = parsers.parse(text, "corpus.rules", "iptables")
        except RuleAnalyzerError:
            continue
        try:
            checked += _iptables_reparsed(ruleset)
        except RuleAnalyzerError:
            continue  # a rule that needs its file around it (e.g. a later -N)
    assert checked > 100


@FUZZ
@given(S.iptables_files(), st.lists(packets, min_size=1, max_size=6))
def test_iptables_verdicts_survive_a_rewrite_from_rule_text(text, pkts):
    """The file rebuilt from each rule's ``text`` (save format) gives the
    same verdict on random packets as the file itself."""
    try:
        ruleset = parsers.parse(text, "gen.rules", "iptables")
    except RuleAnalyzerError:
        return
    lines = []
    for line in text.splitlines():
        if line.startswith("-A "):
            continue
        if line == "COMMIT":
            lines += [r.text for r in ruleset.rules() if not r.implicit]
        lines.append(line)
    again = parsers.parse("\n".join(lines) + "\n", "gen.rules", "iptables")
    assert _verdicts(ruleset, pkts) == _verdicts(again, pkts)
