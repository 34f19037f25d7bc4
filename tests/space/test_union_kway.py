"""``_union_all``'s k-way union (Shannon expansion over all parts at once)
is the pairwise union: the same node (a BDD is canonical)."""

import random

import pytest

from ruleanalyzer.space import reach
from ruleanalyzer.space.packetset import _bdd_backend

NAMES = [f"v{i}" for i in range(14)]


@pytest.fixture
def bdd():
    manager = _bdd_backend.BDD()
    manager.declare(*NAMES)
    return manager


def _pairwise(bdd, parts):
    out = bdd.false
    for part in parts:
        out |= part
    return out


def _cube(bdd, rnd, names):
    out = bdd.true
    for name in names:
        out &= bdd.var(name) if rnd.random() < 0.5 else ~bdd.var(name)
    return out


def _random_set(bdd, rnd):
    out = bdd.false
    for _ in range(rnd.randint(1, 4)):
        out |= _cube(bdd, rnd, rnd.sample(NAMES, rnd.randint(1, 7)))
    return ~out if rnd.random() < 0.5 else out  # complemented nodes


@pytest.mark.parametrize("seed", range(6))
def test_kway_is_the_pairwise_union_of_random_sets(bdd, seed, monkeypatch):
    monkeypatch.setattr(reach, "KWAY_MIN_PARTS", 2)
    rnd = random.Random(seed)
    for _ in range(40):
        parts = [_random_set(bdd, rnd) for _ in range(rnd.randint(0, 120))]
        parts += rnd.sample(parts, len(parts) // 4)  # duplicates
        if rnd.random() < 0.2:
            parts.append(bdd.false)
        assert reach._union_all(parts, bdd.false, at_once=True) == _pairwise(bdd, parts)


@pytest.mark.parametrize("spread", [1.0, 3, 1000])
def test_kway_is_the_pairwise_union_of_structured_sets(bdd, spread, monkeypatch):
    """Endpoint-like parts (a shared prefix, a suffix each, some of them
    complemented or with other supports), a true part, and no expansion
    guard at all (spread 1000) or one that falls back at once (1.0)."""
    monkeypatch.setattr(reach, "KWAY_MIN_PARTS", 2)
    monkeypatch.setattr(reach, "KWAY_PAIRWISE_BELOW", 2)
    monkeypatch.setattr(reach, "KWAY_SPREAD", spread)
    rnd = random.Random(7)
    v = [bdd.var(name) for name in NAMES]
    prefix = v[0] & ~v[1] & v[2]
    parts = []
    for i in range(200):
        bits = _cube(bdd, random.Random(i), NAMES[5:12])
        mark = v[3] if i % 3 else ~v[3]
        part = prefix & bdd.ite(mark, bits, bits & v[12])
        parts.append(~part if i % 7 == 0 else part)
        if i % 11 == 0:
            parts.append(_cube(bdd, rnd, NAMES[6:]))  # another support
    assert reach._union_all(parts, bdd.false, at_once=True) == _pairwise(bdd, parts)
    monkeypatch.setattr(reach, "KWAY_MAX_DEPTH", 2)  # pairwise below
    assert reach._union_all(parts, bdd.false, at_once=True) == _pairwise(bdd, parts)
    assert reach._union_all(parts + [bdd.true], bdd.false, at_once=True) == bdd.true
    assert reach._union_all([prefix] * 100, bdd.false, at_once=True) == prefix
    assert reach._union_all([bdd.false] * 100, bdd.false, at_once=True) == bdd.false


def test_cofactors_of_complemented_nodes(bdd):
    """dd's ``low``/``high`` are the raw children: a complemented node's
    cofactors are their complements (what ``_kway`` relies on)."""
    rnd = random.Random(3)
    for _ in range(200):
        f = _random_set(bdd, rnd)
        if f in (bdd.true, bdd.false):
            continue
        var = bdd.var(bdd.var_at_level(f.level))
        lo, hi = (~f.low, ~f.high) if f.negated else (f.low, f.high)
        assert f == bdd.ite(var, hi, lo)


@pytest.mark.parametrize("others", [0, 1, 5])
def test_kway_steps_over_a_shared_chain(bdd, others, monkeypatch):
    """Parts that all test a chain of variables alike (kube-proxy's DNAT
    images: the endpoints' address prefix) are unioned below the chain
    (``_shared_chain``): the same union; a part outside the chain (``others``)
    makes the sub-union expand as before."""
    monkeypatch.setattr(reach, "KWAY_MIN_PARTS", 2)
    monkeypatch.setattr(reach, "KWAY_PAIRWISE_BELOW", 2)
    monkeypatch.setattr(reach, "KWAY_CHAIN_MIN", 2)
    found = []
    real = reach._shared_chain

    def spy(*args):
        out = real(*args)
        found.append(out is not None)
        return out

    monkeypatch.setattr(reach, "_shared_chain", spy)
    rnd = random.Random(others)
    v = [bdd.var(name) for name in NAMES]
    chain = v[1] & ~v[2] & v[4] & ~v[5]
    parts = []
    for i in range(150):
        rest = _cube(bdd, random.Random(i), NAMES[6:13])
        parts.append(chain & (rest & v[13] if i % 4 else ~rest))
    parts += [_cube(bdd, rnd, NAMES[1:9]) for _ in range(others)]
    rnd.shuffle(parts)
    assert reach._union_all(parts, bdd.false, at_once=True) == _pairwise(bdd, parts)
    if reach.leq_for(bdd) is not None and not others:
        assert found[0]  # the whole union below the chain
