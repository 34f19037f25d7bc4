"""A verdict map keyed by numgen/jhash/symhash ``mod N [offset O]`` whose
keys cover [O, O+N) always takes one of its branches (kube-proxy's nftables
endpoint choice): the engine answers with the branches, never the rule
after the map, and the packet space lets nothing fall through. A map
missing a value keeps the fall-through."""

import pytest

from ruleanalyzer import evaluate, loads, make_packet
from ruleanalyzer.space.reach import analyze

TEXT = """table ip t {
  chain ep-a {
    accept
  }
  chain ep-b {
    drop
  }
  chain input {
    type filter hook input priority 0; policy drop;
    tcp dport 80 MAP
    tcp dport 80 accept
  }
}
"""

FULL = ["numgen random mod 2 vmap { 0 : goto ep-a, 1 : goto ep-b }",
        "numgen inc mod 3 offset 1 vmap { 1-2 : goto ep-a, 3 : goto ep-b }",
        "jhash ip saddr mod 2 vmap { 0 : goto ep-a, 1 : goto ep-b }",
        "symhash mod 2 vmap { 1 : goto ep-b, 0 : goto ep-a }"]
MISSING = ["numgen random mod 3 vmap { 0 : goto ep-a, 1 : goto ep-b }",
           "numgen inc mod 2 offset 1 vmap { 0 : goto ep-a, 1 : goto ep-b }",
           "jhash ip saddr mod 10 vmap { 0-4 : goto ep-a, 6-9 : goto ep-b }"]


def _ruleset(vmap):
    return loads(TEXT.replace("MAP", vmap), dialect="nftables")


def _deciders(result):
    return sorted((a.verdict, a.decided_by.chain.name,
                   a.decided_by.rule.index if a.decided_by.rule else "policy") for a in result.alternatives)


def _packet():
    return make_packet(src="192.0.2.1", dst="198.51.100.1", dport=80)


@pytest.mark.parametrize("vmap", FULL)
def test_full_map_answers_with_its_branches_only(vmap):
    result = evaluate(_ruleset(vmap), _packet())
    assert _deciders(result) == [("accept", "ep-a", 1), ("drop", "ep-b", 1)]


@pytest.mark.parametrize("vmap", MISSING)
def test_missing_key_falls_through_to_the_next_rule(vmap):
    result = evaluate(_ruleset(vmap), _packet())
    assert _deciders(result) == [("accept", "ep-a", 1), ("accept", "input", 2), ("drop", "ep-b", 1)]


@pytest.mark.parametrize("vmap", FULL + MISSING)
def test_space_agrees_with_the_engine(vmap):
    ruleset = _ruleset(vmap)
    reach = analyze(ruleset, "input", 4)
    after = next(r for r in reach.rules() if r.chain.name == "input" and r.index == 2)
    dead = {id(rule) for rule, _ in reach.unreachable_rules()}
    engine_hits = {("input", 2) in {(a.decided_by.chain.name, a.decided_by.rule.index)
                                   for a in evaluate(ruleset, _packet()).alternatives if a.decided_by.rule}}
    matched = not reach.rule_sets(after).matched_upper.is_empty()  # other ports reach it, unmatched
    assert engine_hits == {matched} == {vmap in MISSING}
    assert (id(after) in dead) == (vmap in FULL)


def test_query_names_the_branches(tmp_path, capsys):
    from ruleanalyzer.cli import main

    path = tmp_path / "r.nft"
    # both endpoints accept, as kube-proxy's do (after their DNAT)
    path.write_text(TEXT.replace("MAP", FULL[0]).replace("    drop\n", "    accept\n"))
    assert main(["query", str(path), "--src", "192.0.2.1", "--dst", "198.51.100.1", "--dport", "80"]) == 0
    out = capsys.readouterr().out
    assert "decided by one of 2 rules" in out and "t ep-a rule 1" in out and "t ep-b rule 1" in out
    assert "t input rule 2" not in out
