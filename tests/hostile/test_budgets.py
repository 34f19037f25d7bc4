"""Budgets on every expansion (issue 16): inputs of a few hundred bytes
whose naive expansion is exponential — jumps that branch, nft defines that
double, YAML alias trees — are answered or refused within a bound, and
the growth comparison of the suite (8x the input within 24x the CPU)
holds where the work is meant to be linear."""

from __future__ import annotations

import sys
import time

import pytest

from ruleanalyzer import parsers
from ruleanalyzer.engine import Evaluator
from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.packets import make_packet

from .test_limits import assert_linear

HTTP = make_packet(src="192.0.2.1", dst="198.51.100.7", dport=80, flags="SYN")
SSH = make_packet(src="192.0.2.1", dst="198.51.100.7", dport=22, flags="SYN")


def branching(n: int) -> str:
    """Each chain jumps twice to the next: 2^n chain runs when evaluated naively."""
    lines = ["*filter", ":INPUT DROP [0:0]"] + [f":C{i} - [0:0]" for i in range(n + 1)]
    lines += ["-A INPUT -j C0"] + [f"-A C{i} -j C{i + 1}\n-A C{i} -j C{i + 1}" for i in range(n)]
    return "\n".join(lines + [f"-A C{n} -p tcp --dport 22 -j ACCEPT", "COMMIT", ""])


def _cpu(fn):
    start = time.process_time()
    result = fn()
    return result, time.process_time() - start


def test_branching_jumps_are_evaluated_once_per_state():
    """Depth 22 once took 2 GB (47 s at depth 16); now each chain runs once
    per state it is entered in: exact verdicts, linear time."""
    ruleset = parsers.parse(branching(40), "branch.rules", "iptables")
    result, spent = _cpu(lambda: Evaluator(ruleset).evaluate(HTTP))
    assert result.verdict == "drop" and spent < 2
    assert Evaluator(ruleset).evaluate(SSH).verdict == "accept"

    def once(rs):
        Evaluator(rs).evaluate(HTTP)
    assert_linear(once, lambda n: parsers.parse(branching(n), "b.rules", "iptables"), 6)


def test_branching_jumps_that_mark_are_replayed_not_rerun():
    """Each chain sets the mark and jumps twice to the next: the state
    changes, but each chain is entered in few distinct states, and a run
    that did not fork is replayed (found by fuzz/shapes.py: 6 s per packet
    at depth 40 when only unchanged returns were remembered)."""
    def make(n):
        lines = ["*mangle", ":PREROUTING ACCEPT [0:0]"] + [f":C{i} - [0:0]" for i in range(n + 1)]
        lines += ["-A PREROUTING -j C0"]
        for i in range(n):
            lines += [f"-A C{i} -j MARK --set-xmark 0x1/0x1", f"-A C{i} -j C{i + 1}",
                      f"-A C{i} -j MARK --set-xmark 0x2/0x3", f"-A C{i} -j C{i + 1}"]
        lines += [f"-A C{n} -m mark --mark 0x2 -j DROP", "COMMIT", ""]
        return parsers.parse("\n".join(lines), "marks.rules", "iptables")
    ruleset = make(40)
    result, spent = _cpu(lambda: Evaluator(ruleset).evaluate(HTTP.replace(hook="input")))
    assert result.verdict == "drop" and spent < 2
    assert_linear(lambda rs: Evaluator(rs).evaluate(HTTP.replace(hook="input")), make, 6)


def test_steps_are_bounded_where_memoising_cannot_help(monkeypatch):
    """Each chain marks the packet differently on its two paths, so no two
    entries share a state: the step bound answers "unknown" in bounded time."""
    n = 30
    lines = ["*mangle", ":PREROUTING ACCEPT [0:0]"] + [f":C{i} - [0:0]" for i in range(n + 1)]
    lines += ["-A PREROUTING -j C0"]
    for i in range(n):
        lines += [f"-A C{i} -j MARK --set-xmark 0x{1 << i:x}/0x{1 << i:x}", f"-A C{i} -j C{i + 1}",
                  f"-A C{i} -j MARK --set-xmark 0x0/0x{1 << i:x}", f"-A C{i} -j C{i + 1}"]
    ruleset = parsers.parse("\n".join(lines + ["COMMIT", ""]), "marks.rules", "iptables")
    monkeypatch.setattr(sys.modules["ruleanalyzer.engine.evaluate"], "MAX_STEPS", 20_000)
    result, spent = _cpu(lambda: Evaluator(ruleset).evaluate(HTTP.replace(hook="input")))
    assert result.verdict == "unknown" and spent < 5
    assert result.depends_on == ("more than 20000 rules visited (jumps that branch?)",)


# -- nft defines ---------------------------------------------------------------------------------
def _define_bomb(lines: int) -> str:
    return ("define a0 = 10.0.0.1\n"
            + "".join(f"define a{i} = {{ $a{i - 1}, $a{i - 1} }}\n" for i in range(1, lines))
            + f"table ip t {{ chain c {{ type filter hook input priority 0; ip saddr $a{lines - 1} accept }} }}\n")


def test_nft_define_bomb_is_refused(monkeypatch):
    """653 bytes / 20 lines once took 10.6 s and 555 MB, doubling per line."""
    from ruleanalyzer.parsers import nftables
    monkeypatch.setattr(nftables, "MAX_DEFINE_TOKENS", 20_000)
    start = time.process_time()
    with pytest.raises(RuleAnalyzerError) as info:
        parsers.parse(_define_bomb(40), "bomb.nft", "nftables")
    assert time.process_time() - start < 2
    assert "defines expand to more than 20000 tokens" in info.value.message
    # every substitution counts: the second $a11 of line 13 brings the total past 20000
    assert (info.value.location.line, info.value.location.column) == (13, 22)


def test_nft_defines_used_many_times_stay_linear():
    def make(n):
        return ("define ports = { 22, 80, 443 }\n" + "table ip t { chain c { type filter hook input priority 0;\n"
                + "tcp dport $ports accept\n" * n + "} }\n")
    assert_linear(lambda text: parsers.parse(text, "d.nft", "nftables"), make, 100)


# -- YAML aliases --------------------------------------------------------------------------------
def _alias_tree(levels: int) -> str:
    lines = ["a0: &a0 [x, y, z]"] + [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("reader", ["load_yaml", "topology", "inventory"])
def test_yaml_alias_tree_is_refused(reader, tmp_path):
    """30 aliases, each naming the one before three times: 3^10 nodes at
    the tenth. The alias count (64) never trips; the expanded size does."""
    from ruleanalyzer import safeyaml, topology, inventory
    text = _alias_tree(20)
    start = time.process_time()
    with pytest.raises(RuleAnalyzerError) as info:
        if reader == "load_yaml":
            safeyaml.load_yaml(text, "t.yaml")
        elif reader == "topology":
            (tmp_path / "topo.yaml").write_text(text)
            topology.load_topology(tmp_path / "topo.yaml")
        else:
            (tmp_path / "inv.yaml").write_text(text)
            inventory.load_inventory(tmp_path / "inv.yaml")
    assert time.process_time() - start < 2
    assert f"expand to more than {safeyaml.MAX_YAML_ALIAS_NODES} nodes" in info.value.message
    assert info.value.location.line == 10  # every alias counts: past 100,000 on the line of a9


def test_yaml_aliases_within_budget_load():
    from ruleanalyzer import safeyaml
    assert len(safeyaml.load_yaml(_alias_tree(5), "t.yaml")["a4"]) == 3


# -- the audit's time budget ---------------------------------------------------------------------
def _random_rules(n: int, seed: int = 16) -> str:
    import random
    rng = random.Random(seed)
    lines = ["*filter", ":INPUT DROP [0:0]"]
    for _ in range(n):
        net = f"{rng.randrange(1, 223)}.{rng.randrange(256)}.{rng.randrange(256)}.0/{rng.choice((16, 24))}"
        lines.append(f"-A INPUT -s {net} -p tcp --dport {rng.randrange(1, 65535)} -j "
                     + rng.choice(("ACCEPT", "DROP")))
    return "\n".join(lines + ["COMMIT", ""])


def test_checks_run_inside_the_rulesets_time_budget(monkeypatch):
    """Past Context.audit_seconds the checks of a ruleset stop — the
    blocking-rules search and every other check, not only the packet-space
    analysis — with one RA003 naming what was abandoned."""
    from ruleanalyzer.audit import run_audit
    from ruleanalyzer.checks.base import Context
    ruleset = parsers.parse(_random_rules(400), "many.rules", "iptables")
    # (tiny: in a warm process of the full suite the whole audit of these
    # rules can take well under a second)
    monkeypatch.setattr(Context, "audit_seconds", 0.02)
    start = time.monotonic()
    findings = run_audit([ruleset]).findings
    assert time.monotonic() - start < 10  # the whole audit: several seconds without the budget
    over = [f for f in findings if f.code == "RA003" and "Context.audit_seconds" in f.message]
    assert len(over) == 1 and "took longer than 0.02 s" in over[0].message


def test_suppression_matching_is_linear():
    """Inline directives are found by their rule: N findings against N
    directives was all-against-all (4,000 rules written twice took 81 s)."""
    from ruleanalyzer.checks.base import Finding, Where
    from ruleanalyzer.checks.suppress import apply, parse_inline
    from ruleanalyzer.checks import registry

    def make(n):
        text = "*filter\n:INPUT DROP [0:0]\n" + "".join(
            f'-A INPUT -p tcp --dport {i % 60000 + 1} -m comment --comment "ruleanalyzer: ignore[RA101] x" '
            "-j ACCEPT\n" for i in range(n)) + "COMMIT\n"
        ruleset = parsers.parse(text, "s.rules", "iptables")
        findings = [Finding("RA101", "x", "warning", "m", Where.of_rule(r), rule=r) for r in ruleset.rules()]
        return ruleset, findings

    known = set(registry())

    def run(made):
        ruleset, findings = made
        suppressions, _ = parse_inline(ruleset, known)
        kept, suppressed, unused = apply(findings, suppressions, {"RA101", "RA901"})
        assert not kept and not unused and len(suppressed) == len(findings)
    assert_linear(run, make, 250)
