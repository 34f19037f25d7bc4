"""What a walk keeps per rule is compact (issue 21: a 100k-rule audit's
Python objects): one dd wrapper per node among the sets kept, one match
pair per pair of nodes shared by the runs' steps, a record that is its
own first visit, and the walker's per-rule field sets shared."""

from ruleanalyzer import loads
from ruleanalyzer.space import reach as reach_mod
from ruleanalyzer.space.fields import Layout
from ruleanalyzer.space.packetset import Space

from ..generated_shapes import generate


def _walk(shape: str = "kube-iptables", rules: int = 300):
    text, dialect = generate(shape, rules, seed=3)
    ruleset = loads(text, dialect=dialect)
    space = Space(Layout.for_ruleset(ruleset))
    found = reach_mod.analyze_hooks(ruleset, ["input", "forward", "output"], 4, space)
    records = [rec for reach in found.values() for rec in reach._records.values()]
    return space, records


def test_kept_sets_are_one_wrapper_per_node():
    _space, records = _walk()
    kept = []
    for rec in records:
        for part in rec.parts:
            kept += [part.ml, part.mu]
            run = part.run
            kept += [x for x in run.kept if x is not None]
    by_node: dict = {}
    for node in kept:
        by_node.setdefault(node, set()).add(id(node))
    assert len(by_node) > 10
    assert all(len(ids) == 1 for ids in by_node.values())  # fails without _Walker.nodes


def test_steps_share_the_match_pairs_and_records_are_their_first_visit():
    space, records = _walk()
    pairs = space.__dict__["_match_pairs"]
    steps = [part.run.steps[part.k] for rec in records for part in rec.parts]
    plain = [step for step in steps if len(step) == 2]
    assert len(plain) > len(steps) // 2
    assert all(pairs.get(step) is step for step in plain)  # fails with a tuple per step
    for rec in records:
        assert rec.parts[0] is rec
        # the record's own sets are those its first visit read
        assert rec.match_u is rec.run.steps[rec.k][1] or rec.match_u == rec.run.steps[rec.k][1]


def test_walker_field_sets_are_shared():
    text, dialect = generate("kube-iptables", 300, seed=3)
    ruleset = loads(text, dialect=dialect)
    walker = reach_mod._Walker(ruleset, Space(Layout.for_ruleset(ruleset)), 4)
    sets = [walker._reads(rule) for chain in ruleset.chains() for rule in chain.rules]
    assert len({id(s) for s in sets}) == len(set(sets))  # fails without _Walker._frozen
