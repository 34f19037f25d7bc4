"""Table, chain and set names the nft text reader refuses because ``nft -f``
refuses them: a keyword (``chain fwd {``), a quoted name, a word nft's
scanner does not read as one name. Where nft itself is installed, the list
of keywords is checked against it (``nft -c -f``: parses and checks the
file, changes nothing)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from ruleanalyzer.cli import main
from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.parsers import nftables
from ruleanalyzer.parsers.nftables import NFT_KEYWORDS

#: Words that are keywords only after another keyword (``ct state``,
#: ``tcp dport``, hook and type names …): nft 1.0.6 takes them as names.
NAMES = ("filter", "nat", "input", "forward", "state", "dport", "saddr", "last", "tunnel",
         "destroy", "KUBE-SVC-ABC", "filter_IN_public_allow", "_x", ".x", "a.b-c/d", "Accept")


def _chain(name: str) -> str:
    return f"table inet t {{\n chain {name} {{\n  type filter hook input priority 0; policy accept;\n }}\n}}\n"


def _nft_accepts(text: str, tmp_path) -> bool:
    path = tmp_path / "names.nft"
    path.write_text(text)
    done = subprocess.run(["nft", "-c", "-f", str(path)], capture_output=True, timeout=20)
    return done.returncode == 0


@pytest.mark.parametrize("word", ["fwd", "counter", "accept", "ip", "meta", "ct", "jump", "set"])
def test_a_keyword_cannot_name_a_chain(word):
    with pytest.raises(RuleAnalyzerError) as err:
        nftables.parse(_chain(word), "kw.nft")
    assert (err.value.location.line, err.value.location.column) == (2, 8)
    assert f"'{word}' is an nft keyword" in str(err.value)


@pytest.mark.parametrize("name", NAMES)
def test_words_nft_takes_as_names_are_names(name):
    chains = nftables.parse(_chain(name), "n.nft").tables[0].chains
    assert name in chains


@pytest.mark.parametrize("text, where", [
    ("table inet counter {\n}\n", (1, 12)),
    ("table inet t {\n set fwd {\n  type ipv4_addr\n }\n}\n", (2, 6)),
    ("table inet t {\n chain \"c\" {\n }\n}\n", (2, 8)),
    ("table inet t {\n chain 1c {\n }\n}\n", (2, 8)),
    ("table inet t {\n chain c {\n  jump log\n }\n}\n", (3, 8)),
    ("table inet t {\n}\nadd chain inet t fwd\n", (3, 18)),
    ("table inet t {\n chain c {\n }\n}\nadd rule inet t \"c\" accept\n", (5, 17)),
])
def test_names_nft_refuses_are_refused_where_written(text, where):
    with pytest.raises(RuleAnalyzerError) as err:
        nftables.parse(text, "bad.nft")
    assert (err.value.location.line, err.value.location.column) == where


def test_a_jump_to_a_define_holding_a_quoted_name_is_read():
    text = 'define c = "x"\ntable inet t {\n chain x {\n }\n chain y {\n  jump $c\n }\n}\n'
    chains = nftables.parse(text, "d.nft").tables[0].chains
    assert chains["y"].rules[0].action.target == "x"


def test_text_rendered_from_another_tool_keeps_its_names():
    """firewalld's ipsets become nft sets of the admin's names (firewalld
    talks to nft through JSON, where any name goes)."""
    text = "table inet firewalld {\n set counter {\n  type ipv4_addr\n }\n}\n"
    ruleset = nftables.parse(text, "<firewalld>", check_names=False)
    assert ruleset.tables[0].name == "firewalld"
    with pytest.raises(RuleAnalyzerError):
        nftables.parse(text, "admin.nft")


def test_the_cli_names_file_line_and_column_and_exits_2(tmp_path, capsys):
    path = tmp_path / "fw.nft"
    path.write_text(_chain("fwd"))
    assert main(["audit", str(path)]) == 2
    err = capsys.readouterr()
    assert f"{path}:2:8" in err.out + err.err
    assert "Traceback" not in err.out + err.err


@pytest.mark.skipif(shutil.which("nft") is None, reason="nft is not installed")
def test_the_keywords_are_what_the_installed_nft_refuses(tmp_path):
    if not _nft_accepts(_chain("c"), tmp_path):
        pytest.skip("nft -c cannot check a file here (needs root / netlink)")
    accepted = [w for w in sorted(NFT_KEYWORDS) if _nft_accepts(_chain(w), tmp_path)]
    assert accepted == [], "nft takes these as chain names, the reader refuses them"
    refused = [n for n in NAMES if not _nft_accepts(_chain(n), tmp_path)]
    assert refused == [], "nft refuses these names, the reader takes them"
