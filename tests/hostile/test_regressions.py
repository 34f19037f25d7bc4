"""Inputs that once broke a reader (crash, hang or blow-up), kept as
regression tests. Each names the commit-message reason in its docstring."""

from __future__ import annotations

import time

import pytest

from ruleanalyzer import parsers
from ruleanalyzer.errors import RuleAnalyzerError


def _iptables_chain(n: int, loop_back: bool = False) -> str:
    lines = ["*filter", ":INPUT DROP [0:0]"] + [f":C{i} - [0:0]" for i in range(n)]
    lines += ["-A INPUT -j C0"] + [f"-A C{i} -j C{i + 1}" for i in range(n - 1)]
    lines += [f"-A C{n - 1} -j C{n // 2}" if loop_back else f"-A C{n - 1} -j ACCEPT", "COMMIT", ""]
    return "\n".join(lines)


def test_iptables_long_jump_chain_loop_check_is_linear():
    """check_jumps trimmed sink edges one layer per pass: a C0 -> C1 -> ...
    -> C20000 chain took minutes (quadratic)."""
    text = _iptables_chain(20_000)
    start = time.process_time()
    ruleset = parsers.parse(text, "deep.rules", "iptables")
    assert time.process_time() - start < 20  # about 1 s before the busy-machine margin
    assert ruleset.rule_count == 20_001


def test_iptables_loop_at_the_end_of_a_long_chain_is_still_found():
    with pytest.raises(RuleAnalyzerError) as info:
        parsers.parse(_iptables_chain(5_000, loop_back=True), "loop.rules", "iptables")
    assert "jump loop" in info.value.message
    assert info.value.location.line > 0


@pytest.mark.parametrize("body, key", [
    ('{"map": {"family": "ip", "name": "y", "table": "x", "type": "ipv4_addr", "map": "ipv4_addr",'
     ' "flags": 99999999999999999999}}', "flags"),
    ('{"set": {"family": "ip", "name": "y", "table": "x", "type": "ipv4_addr", "flags": [1]}}', "flags"),
    ('{"chain": {"family": "netdev", "table": "x", "name": "c", "type": "filter", "hook": "ingress",'
     ' "prio": 0, "policy": "drop", "dev": 7}}', "dev"),
])
def test_nft_json_flags_and_dev_of_the_wrong_type(body, key):
    """A mutated corpus file with ``"flags": 99999999999999999999`` on a map
    raised TypeError ('int' object is not iterable) from list(flags)."""
    text = ('{"nftables": [{"table": {"family": "ip", "name": "x"}}, '
            '{"table": {"family": "netdev", "name": "x"}}, ' + body + "]}")
    with pytest.raises(RuleAnalyzerError) as info:
        parsers.parse(text, "bad.json", "nft-json")
    assert info.value.location.path == f"nftables[2].{body[2:body.index(':') - 1]}.{key}"


def test_nft_priority_given_as_a_set_is_refused_located():
    """``priority { 1, 2 } filter`` (fuzzed) raised TypeError joining the
    priority words, a block among them."""
    text = "table ip t {\n\tchain c {\n\t\ttype filter hook output priority { 1, 2 } filter policy accept;\n\t}\n}\n"
    with pytest.raises(RuleAnalyzerError) as info:
        parsers.parse(text, "p.nft", "nftables")
    assert (info.value.location.line, info.value.location.column) == (3, 36)


@pytest.mark.parametrize("number", ["05", "010", "0800000042"])
def test_nft_number_with_a_leading_zero_is_refused_located(number):
    """``elements = { 0x00000023-0800000042 }`` and ``dport 05`` (fuzzed)
    raised ValueError from int(word, 0), which refuses leading zeros."""
    text = ("table ip t {\n set s { type mark; flags interval; elements = { 0x23-" + number + " } }\n"
            " chain c { type filter hook input priority 0; tcp dport " + number + " accept }\n}\n")
    with pytest.raises(RuleAnalyzerError) as info:
        parsers.parse(text, "n.nft", "nftables")
    assert info.value.location.line in (2, 3)


def test_a_message_quoting_a_huge_word_is_cut_when_rendered():
    """``tabletable…`` (a token duplicated many times) was echoed whole in
    the one-line message."""
    word = "table" * 100_000
    with pytest.raises(RuleAnalyzerError) as info:
        parsers.parse(word + " ip t { }\n", "w.nft", "nftables")
    rendered = info.value.render()
    assert rendered.startswith("w.nft:1:1: error: ")
    assert len(rendered) < 2000
    assert "characters)" in rendered.splitlines()[0]


def _ufw_user_rules(*rules: str) -> str:
    return "\n".join(["*filter", ":ufw-user-input - [0:0]", *rules, "COMMIT", ""])


def test_ufw_rule_for_a_huge_undeclared_chain_is_refused_briefly():
    """``-A ufw-user-limitufw-user-limit… -j REJECT`` (a word repeated by
    the fuzzer in a user.rules file) was quoted whole in the hint, which the
    rendering does not cut: 5000+ characters."""
    text = _ufw_user_rules("-A " + "ufw-user-limit" * 1000 + " -j REJECT")
    with pytest.raises(RuleAnalyzerError) as info:
        parsers.parse(text, "user.rules", "ufw")
    assert (info.value.location.file, info.value.location.line) == ("user.rules", 3)
    assert len(info.value.render()) < 2000


@pytest.mark.parametrize("position", ["0", "3", "99999999999999999999"])
def test_ufw_insert_position_past_the_chain_is_refused_located(position):
    """``-I ufw-logging-deny 99999999999999999999 …`` (fuzzed) raised
    OverflowError from list.insert; smaller positions past the end were
    silently taken as "append". iptables-restore refuses both, as the
    iptables reader does."""
    text = _ufw_user_rules("-A ufw-user-input -p tcp --dport 22 -j ACCEPT",
                           f"-I ufw-user-input {position} -p tcp --dport 80 -j ACCEPT")
    with pytest.raises(RuleAnalyzerError) as info:
        parsers.parse(text, "user.rules", "ufw")
    assert (info.value.location.file, info.value.location.line) == ("user.rules", 4)
    assert f"cannot insert at position {position}" in info.value.message


def test_ufw_insert_positions_in_the_chain_still_insert():
    text = _ufw_user_rules("-A ufw-user-input -p tcp --dport 22 -j ACCEPT",
                           "-I ufw-user-input 2 -p tcp --dport 80 -j ACCEPT",
                           "-I ufw-user-input 1 -p tcp --dport 443 -j ACCEPT")
    chain = parsers.parse(text, "user.rules", "ufw").tables[0].chains["ufw-user-input"]
    assert [r.location.line for r in chain.rules] == [5, 3, 4]


def test_ufw_insert_position_in_non_ascii_digits_is_refused_located():
    """``-I chain ² …``: '²'.isdigit() is true but int('²') raised
    ValueError (found reading the code the fuzzer failed in)."""
    text = _ufw_user_rules("-I ufw-user-input ² -p tcp --dport 80 -j ACCEPT")
    with pytest.raises(RuleAnalyzerError) as info:
        parsers.parse(text, "user.rules", "ufw")
    assert (info.value.location.file, info.value.location.line) == ("user.rules", 3)


@pytest.mark.parametrize("rule", ["tproxy ip6 to ; [::1]:12345", "tproxy to", "tproxy ip to"])
def test_nft_tproxy_without_a_destination_is_refused_located(rule):
    """``meta l4proto tcp tproxy ip6 to ; [::1]:12345`` (fuzzed: a ';'
    inserted) raised IndexError taking the token after ``to``."""
    text = "table inet f {\n chain c {\n  meta l4proto tcp " + rule + "\n }\n}\n"
    with pytest.raises(RuleAnalyzerError) as info:
        parsers.parse(text, "t.nft", "nftables")
    assert info.value.location.line == 3
    assert "tproxy destination is missing" in info.value.message
