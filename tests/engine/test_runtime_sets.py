"""Sets the kernel maintains at run time: answered from their listing (with
a note) or, when the packet path fills them, unknown with what they hang on."""

import json
from pathlib import Path

from ruleanalyzer import evaluate, load, loads, make_packet
from ruleanalyzer.cli import main
from ruleanalyzer.runtime_sets import read_sets

RULESETS = Path(__file__).resolve().parents[2] / "fixtures" / "rulesets"
CROWDSEC = RULESETS / "crowdsec-host.nft"
SSH = RULESETS / "ssh-ratelimit.rules"


def packet(src, dport, **kw):
    return make_packet(src=src, dst="192.0.2.10", dport=dport, **kw)


def test_a_timeout_set_listed_with_elements_is_answered_from_the_listing():
    ruleset = load(CROWDSEC)
    banned = evaluate(ruleset, packet("198.51.100.23", 443))
    assert banned.verdict == "drop" and banned.decided_by.rule.index == 1
    assert any("@crowdsec-blacklists is maintained at runtime" in n for n in banned.notes)
    other = evaluate(ruleset, packet("192.0.2.9", 443))
    assert other.verdict == "accept" and other.decided_by.chain.name == "input"
    assert any("snapshot" in n for n in other.notes)


def test_sets_unknown_is_the_strict_reading():
    ruleset = read_sets(load(CROWDSEC), "unknown")
    result = evaluate(ruleset, packet("198.51.100.23", 443))
    assert result.verdict == "unknown"
    assert any("runtime contents of set @crowdsec-blacklists" in d for d in result.depends_on)


def test_cli_sets_option(capsys):
    args = [str(CROWDSEC), "--src", "198.51.100.23", "--dst", "192.0.2.10", "--dport", "443"]
    assert main(["query", *args]) == 1
    assert "maintained at runtime" in capsys.readouterr().out
    assert main(["query", *args, "--sets", "unknown", "--format", "json"]) == 3
    assert json.loads(capsys.readouterr().out)["verdict"] == "unknown"


def test_a_per_source_rate_limit_meter_is_not_an_always_drop():
    # the first SSH SYN from a source: the kernel accepts it (the limit is
    # not yet over); the analyzer cannot know the source's history
    result = evaluate(load(CROWDSEC), packet("192.0.2.9", 22))
    assert result.verdict == "unknown"
    assert result.depends_on and all("traffic history" in d for d in result.depends_on)
    outcomes = {(a.verdict, a.decided_by.rule.index) for a in result.alternatives}
    assert outcomes == {("drop", 3), ("accept", 4)}


def test_a_set_the_packet_path_fills_is_unknown_even_when_listed():
    text = ("table inet f {\n set knock { type ipv4_addr; flags dynamic; elements = { 192.0.2.9 } }\n"
            " chain input { type filter hook input priority 0; policy drop;\n"
            "  tcp dport 1234 add @knock { ip saddr }\n  ip saddr @knock tcp dport 22 accept\n }\n}\n")
    result = evaluate(loads(text, dialect="nftables"), packet("192.0.2.9", 22))
    assert result.verdict == "unknown"
    assert any("filled from the packet path (add @knock)" in d for d in result.depends_on)


def test_meters_and_ct_count_depend_on_history():
    text = ("table ip f { chain input { type filter hook input priority 0; policy accept;\n"
            " tcp dport 80 meter flood size 128000 { ip saddr timeout 10s limit rate over 10/second } drop\n"
            " } }\n")
    result = evaluate(loads(text, dialect="nftables"), packet("192.0.2.9", 80))
    assert result.verdict == "unknown" and "traffic history" in result.depends_on[0]


def test_recent_set_always_matches_and_update_depends_on_history():
    ruleset = load(SSH)
    first = evaluate(ruleset, packet("192.0.2.9", 22))
    assert first.verdict == "unknown"
    # "--set" alone decides nothing: only the --update rule is a branch
    assert {(a.verdict, a.decided_by.rule.index) for a in first.alternatives} == {("drop", 4), ("accept", 5)}
    assert evaluate(ruleset, packet("192.0.2.9", 443)).verdict == "drop"
