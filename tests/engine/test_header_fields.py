"""Every query packet has a value for each IP header field a rule can test
(fragment offset and bits, TTL, length, id, DSCP, options); masks and
comparisons on them are decided, in the engine and in the packet space."""

import json
from pathlib import Path

import pytest

from ruleanalyzer import RuleAnalyzerError, evaluate, loads, make_packet
from ruleanalyzer.cli import main
from ruleanalyzer.space.encode import encode
from ruleanalyzer.space.fields import Layout
from ruleanalyzer.space.packetset import Space
from ruleanalyzer.space.witness import witness

FLAGS = Path(__file__).resolve().parents[2] / "fixtures" / "rulesets" / "netdev-ingress-flags.nft"
V4 = dict(src="192.0.2.1", dst="198.51.100.1")


def answer(text, **packet):
    result = evaluate(loads(text, dialect="nftables"), make_packet(**packet))
    rule = result.decided_by.rule if result.decided_by is not None else None
    return result.verdict, (rule.index if rule is not None else None), result


def test_defaults_are_an_unfragmented_packet_with_df_for_tcp():
    tcp = make_packet(proto="tcp", dport=22, **V4)
    assert (tcp.frag_off, tcp.mf, tcp.df, tcp.ttl, tcp.ip_options, tcp.length) == (0, 0, 1, 64, 0, 40)
    udp = make_packet(proto="udp", dport=53, src="2001:db8::1", dst="2001:db8::2")
    assert (udp.df, udp.ext_headers, udp.length) == (0, 0, 48)
    frag = make_packet(proto="udp", frag="middle", **V4)
    assert (frag.fragment, frag.frag_off, frag.mf, frag.df, frag.length) == (1, 185, 1, 0, 28)
    assert make_packet(proto="udp", frag="middle", src="2001:db8::1", dst="2001:db8::2").ext_headers == 1


@pytest.mark.parametrize("fields, message", [
    ({"frag": "sideways"}, "frag must be"), ({"df": "maybe"}, "df must be yes or no"),
    ({"ip_id": 70000}, "out of range"), ({"ext_headers": "yes"}, "IPv4 has no extension headers")])
def test_bad_header_values_are_named(fields, message):
    with pytest.raises(RuleAnalyzerError, match=message):
        make_packet(proto="udp", dport=53, **V4, **fields)


def test_the_drop_non_first_fragments_rule_is_decided():
    text = FLAGS.read_text()
    verdict, index, result = answer(text, proto="tcp", dport=22, iif="eth0", **V4)
    assert (verdict, index, list(result.depends_on)) == ("accept", 3, [])
    verdict, index, _ = answer(text, proto="tcp", frag="middle", iif="eth0", **V4)
    assert (verdict, index) == ("drop", 1)
    # the first fragment has offset 0: the rule lets it by
    assert answer(text, proto="udp", dport=53, frag="first", iif="eth0", **V4)[:2] == ("drop", None)
    assert answer(text, proto="tcp", dport=22, ttl=1, iif="eth0", **V4)[:2] == ("drop", 5)


@pytest.mark.parametrize("rule, fields, expected", [
    ("ip frag-off & 0x4000 != 0 drop", {"proto": "tcp", "dport": 22}, "drop"),
    ("ip frag-off & 0x4000 != 0 drop", {"proto": "tcp", "dport": 22, "df": "no"}, "accept"),
    ("ip frag-off & 0x2000 == 0x2000 drop", {"proto": "udp", "dport": 53, "frag": "first"}, "drop"),
    ("ip id > 1000 drop", {"proto": "udp", "dport": 53, "ip_id": 1001}, "drop"),
    ("ip id > 1000 drop", {"proto": "udp", "dport": 53}, "accept"),
    ("ip length > 100 drop", {"proto": "udp", "dport": 53, "length": 101}, "drop"),
    ("ip length > 100 drop", {"proto": "udp", "dport": 53}, "accept"),
    ("meta length < 30 drop", {"proto": "udp", "dport": 53}, "drop"),
    ("ip ttl & 0xc0 == 0x40 drop", {"proto": "udp", "dport": 53}, "drop"),
    ("ip ttl & 0xc0 == 0x40 drop", {"proto": "udp", "dport": 53, "ttl": 200}, "accept"),
    ("ip dscp & 0x38 == 0x28 drop", {"proto": "udp", "dport": 53, "dscp": 46}, "drop"),
])
def test_masks_and_comparisons_on_header_fields(rule, fields, expected):
    text = f"table ip t {{ chain c {{ type filter hook input priority 0; policy accept; {rule}; }} }}"
    assert answer(text, **V4, **fields)[0] == expected


def test_the_packet_space_decides_the_same_fields():
    ruleset = loads(FLAGS.read_text(), dialect="nftables")
    frag_rule = next(iter(ruleset.rules()))
    space = Space(Layout.for_ruleset(ruleset))
    matched = encode(frag_rule.matches[-1], space)
    assert not matched.is_empty() and not matched.is_all()
    example = witness(matched, "input")
    assert example.family == 4 and example.frag_off != 0 and example.fragment == 1
    # an unfragmented packet is never in the set, nor an IPv6 one
    assert evaluate(ruleset, example.replace(iif="eth0")).decided_by.rule is frag_rule


def test_cli_takes_header_options_and_json_shows_them(capsys):
    code = main(["query", str(FLAGS), "--src", "192.0.2.1", "--dst", "198.51.100.1", "--proto", "udp",
                 "--frag", "185", "--iif", "eth0", "--format", "json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1 and data["decided_by"]["rule_index"] == 1
    assert data["packet"]["frag"] == 185 and data["packet"]["df"] is False and data["packet"]["ttl"] == 64


def test_packets_file_takes_the_same_keys(tmp_path, capsys):
    lines = [{"src": "192.0.2.1", "dst": "198.51.100.1", "dport": 22, "iif": "eth0", "ttl": 1},
             {"src": "192.0.2.1", "dst": "198.51.100.1", "dport": 22, "iif": "eth0", "df": False,
              "ip_id": 7, "length": 1500}]
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines))
    main(["query", str(FLAGS), "--packets", str(path), "--format", "jsonl"])
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [o["verdict"] for o in out] == ["drop", "accept"]
    assert out[1]["packet"]["length"] == 1500 and out[1]["packet"]["ip_id"] == 7
