"""CUDD's dead nodes are collected where an analysis has just let many sets
go (``Space.collect_dead``: after a kept run's verdict parts are merged,
every few branches of a big verdict map, and at a walk's end), when they
are a good share of a big table (issue 21: kube-nftables 100k, 1095 ->
~905 -> ~775 MiB), and the answers are the same."""

import ctypes

import pytest

from ruleanalyzer import loads
from ruleanalyzer.space import packetset
from ruleanalyzer.space import reach as reach_mod
from ruleanalyzer.space._leq import _cudd, _manager
from ruleanalyzer.space.fields import Layout
from ruleanalyzer.space.packetset import Space

from ..generated_shapes import generate

HOOKS = ["input", "forward", "output"]


def _reader(space: Space, name: str):
    manager = _manager(space.bdd)
    if manager is None:
        pytest.skip("needs dd.cudd")
    fn = getattr(_cudd(packetset._bdd_backend), name)
    fn.argtypes, fn.restype = [ctypes.c_void_p], ctypes.c_uint
    return lambda: fn(manager)


def test_collects_only_a_big_enough_share_of_a_big_enough_table(monkeypatch):
    space = Space()
    dead, collections = _reader(space, "Cudd_ReadDead"), _reader(space, "Cudd_ReadGarbageCollections")
    before = collections()
    sets = [space.eq("dport", p) & space.eq("sport", p + 1) for p in range(2000)]
    del sets  # dead now, and no collection by CUDD's own policy yet
    assert dead() > 0 and collections() == before
    assert not space.collect_dead()  # a small table: left to CUDD's own policy
    monkeypatch.setattr(packetset, "COLLECT_ABOVE_BYTES", 0)
    monkeypatch.setattr(packetset, "COLLECT_DEAD_SHARE", 2.0)
    assert not space.collect_dead()  # the dead are not that share of the table
    monkeypatch.setattr(packetset, "COLLECT_DEAD_SHARE", 0.25)
    assert space.collect_dead()
    assert dead() == 0 and collections() == before + 1
    assert not space.collect_dead()  # nothing dead left
    assert space.eq("dport", 7) & space.eq("sport", 8) != space.false


def _walk(monkeypatch, ruleset, collect: bool):
    monkeypatch.setattr(packetset, "COLLECT_ABOVE_BYTES", 0 if collect else 2**62)
    monkeypatch.setattr(packetset, "COLLECT_DEAD_SHARE", 0.0)
    space = Space(Layout.for_ruleset(ruleset))
    collections = _reader(space, "Cudd_ReadGarbageCollections")
    asked = []
    collect_dead = Space.collect_dead

    def spy(self, *args):
        done = collect_dead(self, *args)
        asked.append((done, collections()))
        return done

    monkeypatch.setattr(Space, "collect_dead", spy)
    try:
        found = reach_mod.analyze_hooks(ruleset, HOOKS, 4, space)
    finally:
        monkeypatch.setattr(Space, "collect_dead", collect_dead)
    return space, found, asked, collections()


@pytest.mark.parametrize("every", [None, 4])
def test_a_walk_collects_after_a_kept_run_and_at_its_end_with_the_same_sets(monkeypatch, every):
    text, dialect = generate("kube-nftables", 300, seed=3)
    ruleset = loads(text, dialect=dialect)
    if every is not None:  # and every few branches of the service map
        asked_by_default = len(_walk(monkeypatch, ruleset, True)[2])
        monkeypatch.setattr(reach_mod, "COLLECT_EVERY_BRANCHES", every)
    space, found, asked, collections = _walk(monkeypatch, ruleset, True)
    if every is not None:
        assert len(asked) > asked_by_default + 5  # fails without the map's asks
    # nat prerouting's kept run (its services' DNAT images merged), then the walk's end
    assert len(asked) >= 2 and all(done for done, _ in asked)  # fails without the collections
    # (an ask that finds nothing dead is no collection of CUDD's count)
    assert collections >= len(asked) if every is None else collections > asked_by_default
    other, same, none, _n = _walk(monkeypatch, ruleset, False)
    assert len(none) == len(asked) and not any(done for done, _ in none)
    for hook in HOOKS:
        a, b = found[hook], same[hook]
        assert a.rules() == b.rules()
        for rule in a.rules():
            ra, rb = a.rule_sets(rule), b.rule_sets(rule)
            for name in reach_mod.RuleSets._NAMES:
                assert space.bdd.copy(getattr(ra, name).node, other.bdd) == getattr(rb, name).node
        for verdict in ("accepted", "dropped"):
            for side in ("lower", "upper"):
                x = getattr(getattr(a, verdict), side).node
                assert space.bdd.copy(x, other.bdd) == getattr(getattr(b, verdict), side).node
