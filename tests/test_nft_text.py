"""nft JSON rules shown in nft syntax (findings quote them as `nft list
ruleset` prints them)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ruleanalyzer import loads
from ruleanalyzer.audit import run_audit
from ruleanalyzer.loader import load
from ruleanalyzer.nft_text import rule_text

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


@pytest.mark.parametrize("exprs, text", [
    ([{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "eth0"}},
      {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}},
      {"accept": None}], 'iifname "eth0" ct state established,related accept'),
    ([{"match": {"op": "!=", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                 "right": {"prefix": {"addr": "10.0.0.0", "len": 8}}}},
      {"log": {"prefix": "x "}}, {"jump": {"target": "blocked"}}], 'ip saddr != 10.0.0.0/8 log prefix "x " jump blocked'),
    ([{"match": {"op": "==", "left": {"&": [{"payload": {"protocol": "tcp", "field": "flags"}},
                                              {"|": ["fin", "syn", "rst", "ack"]}]}, "right": "syn"}},
      {"limit": {"rate": 5, "per": "second", "burst": 10}}, {"drop": None}],
     "tcp flags & (fin | syn | rst | ack) == syn limit rate 5/second burst 10 packets drop"),
    ([{"vmap": {"key": {"meta": {"key": "iifname"}},
                "data": {"set": [["lo", {"accept": None}], ["eth0", {"jump": {"target": "wan"}}]]}}}],
     'iifname vmap { "lo" : accept, "eth0" : jump wan }'),
    ([{"dnat": {"addr": "10.0.0.2", "port": 8080}}], "dnat to 10.0.0.2:8080"),
    ([{"weird": {"new": 1}}, {"accept": None}], '{"weird":{"new":1}} accept'),  # unknown: kept, not dropped
])
def test_expressions_and_statements(exprs, text):
    assert rule_text(json.dumps(exprs)) == text


def test_findings_quote_nft_json_rules_in_nft_syntax():
    doc = {"nftables": [
        {"table": {"family": "inet", "name": "f"}},
        {"chain": {"family": "inet", "table": "f", "name": "input", "type": "filter", "hook": "input",
                   "prio": 0, "policy": "drop"}},
        {"rule": {"family": "inet", "table": "f", "chain": "input", "expr": [
            {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 22}},
            {"accept": None}]}},
        {"rule": {"family": "inet", "table": "f", "chain": "input", "expr": [
            {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 22}},
            {"accept": None}]}}]}
    rs = loads(json.dumps(doc), dialect="nft-json", name="r.json")
    [f] = run_audit([rs], select=["RA505"]).findings
    assert f.where.text == "tcp dport 22 accept"
    assert [r.where.text for r in f.related] == ["tcp dport 22 accept"]


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus not present")
def test_json_twins_print_as_their_text_dumps():
    """nftables' test suite keeps each dump as text and as JSON: the JSON
    rules written by :func:`rule_text` read as the text dump's rules (most
    byte for byte; the rest differ in number bases and quoting)."""
    same = total = 0
    for j in sorted((CORPUS / "nftables-json" / "nftables-upstream-shell-dumps").glob("*.json-nft")):
        t = CORPUS / "nftables" / "nftables-upstream-shell-dumps" / (j.name[:-len(".json-nft")] + ".nft")
        if not t.exists():
            continue
        try:
            text, js = load(t, dialect="nftables"), load(j, dialect="nft-json")
        except Exception:  # noqa: BLE001 - twins the readers refuse are not this test's business
            continue
        by_place = {(r.chain.table.family, r.chain.table.name, r.chain.name, r.index): r for r in text.rules()}
        for r in js.rules():
            twin = by_place.get((r.chain.table.family, r.chain.table.name, r.chain.name, r.index))
            if twin is None:
                continue
            total += 1
            want = re.sub(r' comment ".*"$', "", " ".join(twin.text.split()))
            same += rule_text(r.text) == want
    assert total > 800
    assert same / total >= 0.9, f"{same}/{total}"
