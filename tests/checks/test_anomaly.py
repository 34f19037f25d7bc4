"""The union tree behind RA105/RA106 finds exactly the earlier sets that meet
a query (checked against a brute-force scan, with bit masks for sets)."""

from __future__ import annotations

import random

from ruleanalyzer.checks.anomaly import _UnionTree


def test_union_tree_finds_every_overlapping_earlier_set():
    rng = random.Random(6)
    for _ in range(200):
        n = rng.randint(1, 40)
        bits = rng.sample(range(400), n * 3)
        nodes = [sum(1 << b for b in bits[3 * i:3 * i + rng.randint(0, 3)]) for i in range(n)]
        tree = _UnionTree(nodes, 0)
        for end in sorted(rng.sample(range(n + 1), min(n + 1, 5))):
            query = rng.getrandbits(400)
            want = [i for i in reversed(range(end)) if nodes[i] & query]
            assert tree.overlapping(end, query) == want


def test_pair_budget_stops_a_chain_and_says_so():
    from ruleanalyzer import loads
    from ruleanalyzer.audit import run_audit
    from ruleanalyzer.config import Config

    text = ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 192.0.2.0/24 -j ACCEPT\n"
            "-A INPUT -p tcp --dport 22 -j DROP\n-A INPUT -s 198.51.100.0/24 -j ACCEPT\n"
            "-A INPUT -p tcp --dport 23 -j DROP\nCOMMIT\n")
    rs = loads(text, dialect="iptables", name="rules.v4")
    full = run_audit([rs], select=["RA106"]).findings
    assert [f.where.line for f in full] == [4, 5, 6]  # one finding per rule
    [last] = [f for f in full if f.where.line == 6]
    assert "INPUT rule 3" in last.message and "and 1 more earlier rule" in last.message
    assert [r.where.line for r in last.related] == [5, 3]  # nearest first
    capped = run_audit([rs], select=["RA106"],
                       config=Config(options={"RA106": {"max-pairs": 1}})).findings
    assert [f.where.line for f in capped if f.where.index] == [4]
    [note] = [f for f in capped if f.where.index is None]
    assert "max-pairs" in note.message and note.where.chain == "INPUT"
