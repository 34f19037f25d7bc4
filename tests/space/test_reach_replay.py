"""The walk keeps a rule's reaching (and equal matched) sets only at
checkpoints and makes the others again on demand: every set read must be
the very set the walk saw, on generated shapes nobody tuned to (a chain of
services with marks that come back, verdict maps, negations, LOG rules)."""

import pytest

from ruleanalyzer import loads
from ruleanalyzer.space import reach as reach_mod
from ruleanalyzer.space.packetset import Space
from ruleanalyzer.space.fields import Layout

from ..generated_shapes import generate

EVERY = reach_mod.CHECKPOINT_EVERY


def _columns(ruleset, space, every: int, monkeypatch) -> dict:
    """Every rule's four sets, per hook, read in the order given (a check
    reading rules backwards must get the same sets as one reading forwards)."""
    monkeypatch.setattr(reach_mod, "CHECKPOINT_EVERY", every)
    found = reach_mod.analyze_hooks(ruleset, ["input", "forward", "output"], 4, space)
    out = {}
    for hook, reach in found.items():
        rules = reach.rules()
        for rule in reversed(rules) if every > 1 else rules:
            rec = reach._records[rule]
            out[(hook, id(rule))] = tuple(tuple(part[i] for i in range(4)) for part in rec.parts)
    return out


@pytest.mark.parametrize("shape", ["kube-iptables", "mixed", "kube-nftables"])
def test_sets_made_again_are_the_walks_own(shape, monkeypatch):
    text, dialect = generate(shape, 400, seed=7)
    ruleset = loads(text, dialect=dialect)
    space = Space(Layout.for_ruleset(ruleset))
    kept_all = _columns(ruleset, space, 1, monkeypatch)  # every reaching set kept
    made_again = _columns(ruleset, space, EVERY, monkeypatch)
    assert kept_all.keys() == made_again.keys()
    differ = [key for key in kept_all if kept_all[key] != made_again[key]]
    assert not differ, f"{len(differ)} of {len(kept_all)} rules' sets differ"
