"""One verdict reached at different rules: the verdict is certain, the
deciding rule is not, and the answer says so."""

import json

from ruleanalyzer import evaluate, loads, make_packet
from ruleanalyzer.cli import main

TEXT = """table inet f {
  chain input { type filter hook input priority 0; policy drop;
    tcp dport 22 limit rate 10/minute drop
    tcp dport 22 ip saddr 10.0.0.0/8 accept
    tcp dport 80 limit rate 10/minute accept
    tcp dport 80 accept
  }
}
"""


def test_equal_verdicts_at_different_rules_name_no_single_rule():
    result = evaluate(loads(TEXT, dialect="nftables"),
                      make_packet(src="192.0.2.1", dst="198.51.100.1", dport=22))
    assert result.verdict == "drop" and result.decided_by is None and result.decider_depends
    deciders = [(a.decided_by.rule.index if a.decided_by.rule else "policy", a.depends_on)
                for a in result.alternatives]
    assert deciders == [(1, ("limit",)), ("policy", ("not (limit)",))]


def test_equal_verdicts_at_the_same_rule_keep_it():
    # both branches of a non-deciding unknown reach the same rule
    text = TEXT.replace("tcp dport 22 limit rate 10/minute drop", "tcp dport 22 limit rate 10/minute counter")
    result = evaluate(loads(text, dialect="nftables"),
                      make_packet(src="192.0.2.1", dst="198.51.100.1", dport=22))
    assert result.verdict == "drop" and result.decided_by is not None and not result.decider_depends


def test_text_and_json_say_it_depends(tmp_path, capsys):
    path = tmp_path / "r.nft"
    path.write_text(TEXT)
    args = ["query", str(path), "--src", "192.0.2.1", "--dst", "198.51.100.1", "--dport", "80"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "decided by one of 2 rules" in out and "if [limit]: accept by f input rule 3" in out
    assert main(args + ["--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    by = data["decided_by"]
    assert by["depends"] is True and by["depends_on"] == ["limit (rule 3 of input)"]
    assert [a["decided_by"]["rule_index"] for a in by["alternatives"]] == [3, 4]
    assert [a["assuming"] for a in by["alternatives"]] == [["limit"], ["not (limit)"]]
