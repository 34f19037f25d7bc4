"""The ``nft -j`` JSON reader: same model as the text, errors by JSON path."""

from __future__ import annotations

import json

import pytest

from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.model import SYN, Accept, AllOf, BitsMatch, IntMatch, Jump, NameMatch, OpaqueMatch
from ruleanalyzer.parsers import nft_json, nftables


def doc(*objects) -> str:
    return json.dumps({"nftables": [{"metainfo": {"json_schema_version": 1}}, *objects]})


TABLE = {"table": {"family": "inet", "name": "f", "handle": 1}}
CHAIN = {"chain": {"family": "inet", "table": "f", "name": "in", "handle": 1, "type": "filter",
                   "hook": "input", "prio": -10, "policy": "drop"}}


def rule(*exprs, handle=4):
    return {"rule": {"family": "inet", "table": "f", "chain": "in", "handle": handle, "expr": list(exprs)}}


def test_listing_becomes_chains_and_rules():
    text = doc(TABLE, CHAIN, rule({"match": {"op": "in", "left": {"ct": {"key": "state"}},
                                             "right": ["established", "related"]}}, {"accept": None}))
    rs = nft_json.parse(text, "x.json")
    chain = rs.table("f").chains["in"]
    assert (chain.hook, chain.priority, chain.policy) == ("input", -10, "drop")
    (r,) = chain.rules
    assert r.matches == (NameMatch("state", frozenset({"established", "related"})),)
    assert r.action == Accept() and r.ident == "4"
    assert r.location.path == "nftables[3]"
    assert rs.tables[0].dialect == "nft-json"


def test_bare_tcp_flag_is_any_bit_set():
    text = doc(TABLE, CHAIN, rule({"match": {"op": "in", "left": {"payload": {"protocol": "tcp", "field": "flags"}},
                                             "right": "syn"}}, {"accept": None}))
    r = next(nft_json.parse(text, "x").rules())
    assert r.matches == (IntMatch("proto", ((6, 6),)), BitsMatch("flags", SYN, frozenset({0}), negate=True))


def test_same_model_as_text():
    text_rs = nftables.parse("""table inet f {
  chain in { type filter hook input priority filter - 10; policy drop;
    ip saddr 10.0.0.0/8 tcp dport { 22, 80 } jump web
  }
  chain web { }
}""", "x.nft")
    json_rs = nft_json.parse(doc(TABLE, CHAIN, {"chain": {"family": "inet", "table": "f", "name": "web"}},
                                 rule({"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                                                 "right": {"prefix": {"addr": "10.0.0.0", "len": 8}}}},
                                      {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}},
                                                 "right": {"set": [22, 80]}}},
                                      {"jump": {"target": "web"}})), "x.json")
    a, b = next(text_rs.rules()), next(json_rs.rules())
    assert a.matches == b.matches and a.action == b.action == Jump("web")


def test_xt_expression_is_opaque():
    r = next(nft_json.parse(doc(TABLE, CHAIN, rule({"xt": {"type": "match", "name": "conntrack"}},
                                                   {"accept": None})), "x").rules())
    assert isinstance(r.matches[0], OpaqueMatch) and "xt" in r.matches[0].reason


def test_command_batch():
    text = json.dumps({"nftables": [
        {"add": {"table": {"family": "ip", "name": "t"}}},
        {"add": {"chain": {"family": "ip", "table": "t", "name": "c", "type": "filter", "hook": "input",
                           "prio": 0, "policy": "accept"}}},
        {"add": {"rule": {"family": "ip", "table": "t", "chain": "c", "expr": [{"drop": None}]}}},
        {"insert": {"rule": {"family": "ip", "table": "t", "chain": "c", "expr": [{"accept": None}]}}},
    ]})
    actions = [r.action.name for r in nft_json.parse(text, "x").rules()]
    assert actions == ["accept", "drop"]


def test_invalid_json_has_line_and_column():
    with pytest.raises(RuleAnalyzerError) as err:
        nft_json.parse('{"nftables": [\n  {"table": }\n]}', "bad.json")
    assert (err.value.location.line, err.value.location.column) == (2, 13)


def test_schema_violation_names_the_json_path():
    text = doc(TABLE, CHAIN, rule({"accept": None}, "drop"))
    with pytest.raises(RuleAnalyzerError) as err:
        nft_json.parse(text, "bad.json")
    assert err.value.location.path == "nftables[3].rule.expr[1]"


def test_unknown_set_is_located_by_path():
    text = doc(TABLE, CHAIN, rule({"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                                             "right": "@nope"}}))
    with pytest.raises(RuleAnalyzerError) as err:
        nft_json.parse(text, "bad.json")
    assert err.value.location.path == "nftables[3]" and "nope" in err.value.message


def test_deep_nesting_is_a_located_error():
    deep = '{"nftables": [' + "[" * 100000 + "]" * 100000 + "]}"
    with pytest.raises(RuleAnalyzerError):
        nft_json.parse(deep, "deep.json")


def test_sniff():
    assert nft_json.sniff('{"nftables": []}', "x") > 50
    assert nft_json.sniff("table ip t {}", "x") == 0


@pytest.mark.parametrize("mod, offset, keys, conditional", [
    (2, None, [0, 1], False),
    (10, 5, [{"range": [5, 10]}, {"range": [11, 14]}], False),
    (3, None, [0, 1], True),  # 2 finds no element
    (2, 1, [0, 1], True),  # the values are 1 and 2
])
def test_numgen_map_nat_covering_every_value_takes_every_packet(mod, offset, keys, conditional):
    """The nft -j form reads like the text (tests/checks/RA102/*numgen*)."""
    numgen = {"mode": "inc", "mod": mod, **({"offset": offset} if offset is not None else {})}
    dnat = {"dnat": {"addr": {"map": {"key": {"numgen": numgen},
                                      "data": {"set": [[k, f"192.0.2.{i}"] for i, k in enumerate(keys)]}}}}}
    nat = {"chain": {"family": "inet", "table": "f", "name": "in", "handle": 1, "type": "nat",
                     "hook": "prerouting", "prio": -100, "policy": "accept"}}
    (r,) = nft_json.parse(doc(TABLE, nat, rule(dnat)), "x.json").table("f").chains["in"].rules
    # one translation per element; where some value finds none, the last
    # element keeps its condition (the rule then does not match: NFT_BREAK)
    assert [str(a.to_addr) for _m, a in r.action.branches] == [f"192.0.2.{i}" for i in range(len(keys))]
    assert (not isinstance(r.action.branches[-1][0], AllOf)) == conditional
    ranges = " ".join(f"{k['range'][0]}-{k['range'][1]}" if isinstance(k, dict) else str(k) for k in keys)
    text = (f"table inet f {{ chain in {{ type nat hook prerouting priority -100; policy accept;\n"
            f"dnat to numgen inc mod {mod}{f' offset {offset}' if offset is not None else ''} map {{ "
            + ", ".join(f"{k} : 192.0.2.{i}" for i, k in enumerate(ranges.split())) + " } } }\n")
    (t,) = nftables.parse(text, "x.nft").table("f").chains["in"].rules
    assert (t.matches, t.action) == (r.matches, r.action)


@pytest.mark.parametrize("mod, offset, keys, falls_through", [
    (2, None, [0, 1], False),
    (10, 5, [{"range": [5, 10]}, {"range": [11, 14]}], False),
    (3, None, [0, 1], True),  # 2 finds no element
    (2, 1, [0, 1], True),  # the values are 1 and 2
])
def test_numgen_vmap_covering_every_value_always_takes_a_branch(mod, offset, keys, falls_through):
    """The nft -j form reads like the text (tests/checks/RA102/*vmap_numgen*):
    the last branch holds for what the others leave, or keeps its condition."""
    numgen = {"mode": "random", "mod": mod, **({"offset": offset} if offset is not None else {})}
    vmap = {"vmap": {"key": {"numgen": numgen},
                     "data": {"set": [[k, {"accept": None} if i % 2 else {"drop": None}]
                                      for i, k in enumerate(keys)]}}}
    filt = {"chain": {"family": "inet", "table": "f", "name": "in", "handle": 1, "type": "filter",
                      "hook": "input", "prio": 0, "policy": "accept"}}
    (r,) = nft_json.parse(doc(TABLE, filt, rule(vmap)), "x.json").table("f").chains["in"].rules
    last, _action = r.action.branches[-1]
    assert isinstance(last, OpaqueMatch) == falls_through
    ranges = " ".join(f"{k['range'][0]}-{k['range'][1]}" if isinstance(k, dict) else str(k) for k in keys)
    text = (f"table inet f {{ chain in {{ type filter hook input priority 0; policy accept;\n"
            f"numgen random mod {mod}{f' offset {offset}' if offset is not None else ''} vmap {{ "
            + ", ".join(f"{k} : {'accept' if i % 2 else 'drop'}" for i, k in enumerate(ranges.split()))
            + " } } }\n")
    (t,) = nftables.parse(text, "x.nft").table("f").chains["in"].rules
    assert t.action == r.action


def test_a_flat_selector_with_numbers_is_read_alike_each_time_and_a_bool_is_not_a_number():
    from ruleanalyzer.parsers.nft_common import selector

    raw = {"payload": {"base": "nh", "offset": 96, "len": 1}}
    first = selector(raw, "ip")
    assert first.reason == "depends on @nh,96,1" and selector(dict(raw), "ip") is first
    # True == 1 and hashes alike: it must not be served the number's reading
    assert selector({"payload": {"base": "nh", "offset": 96, "len": True}}, "ip").reason == "depends on @nh,96,True"
