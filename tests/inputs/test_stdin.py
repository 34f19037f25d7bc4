"""``-`` reads standard input for every command (issue #17): the dialect is
sniffed or named, and the input is reported as ``<stdin>``."""

import io
import json
import sys

import pytest

from ruleanalyzer import loader
from ruleanalyzer.cli import main

SAVE = """*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp --dport 22 -j ACCEPT
-A INPUT -p tcp --dport 22 -j ACCEPT
COMMIT
"""

NFT = """table inet filter {
	chain input {
		type filter hook input priority filter; policy drop;
		tcp dport 22 accept
	}
}
"""


@pytest.fixture
def stdin(monkeypatch):
    def feed(text: str):
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
        loader.forget_stdin()
    yield feed
    loader.forget_stdin()


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_audit_reads_stdin_and_names_it(stdin, capsys):
    stdin(SAVE)
    code, out, _ = run(capsys, "audit", "-", "--format", "json")
    data = json.loads(out)
    assert code == 1
    assert {f["location"]["file"] for f in data["findings"]} == {"<stdin>"}
    assert any(f["code"] == "RA505" and f["location"]["line"] == 6 for f in data["findings"])


def test_query_and_connect_read_stdin(stdin, capsys):
    stdin(NFT)
    code, out, _ = run(capsys, "query", "-", "--src", "192.0.2.1", "--dst", "192.0.2.2",
                       "--dport", "22", "--format", "json")
    assert code == 0 and json.loads(out)["decided_by"]["file"] == "<stdin>"
    stdin(NFT)
    code, _, _ = run(capsys, "connect", "-", "--client", "192.0.2.1", "--server", "192.0.2.2",
                     "--dport", "23")
    assert code == 1


def test_dialect_option_is_honoured_on_stdin(stdin, capsys):
    stdin("")  # an empty nft list ruleset: no rules, only with the dialect named
    code, _, err = run(capsys, "query", "-", "--dialect", "nftables", "--src", "192.0.2.1",
                       "--dst", "192.0.2.2", "--dport", "22")
    assert code == 0, err
    stdin("")
    code, _, err = run(capsys, "query", "-", "--src", "192.0.2.1", "--dst", "192.0.2.2")
    assert code == 2 and err.startswith("<stdin>:1:1: error: the file is empty")


def test_diff_old_from_stdin(stdin, capsys, tmp_path):
    new = tmp_path / "new.rules"
    new.write_text(SAVE.replace("--dport 22", "--dport 2222"))
    stdin(SAVE)
    code, out, _ = run(capsys, "diff", "-", new, "--no-findings", "--format", "json")
    assert code == 1 and json.loads(out)["old"] == "<stdin>"


def test_bad_stdin_is_located(stdin, capsys):
    stdin(SAVE.replace("--dport 22", "--dport x22", 1))
    code, _, err = run(capsys, "query", "-", "--src", "192.0.2.1", "--dst", "192.0.2.2")
    assert code == 2 and err.startswith("<stdin>:5:")


def test_a_terminal_on_stdin_is_said_not_waited_on(monkeypatch, capsys):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdin", Terminal())
    loader.forget_stdin()
    code, _, err = run(capsys, "query", "-", "--src", "192.0.2.1", "--dst", "192.0.2.2")
    assert code == 2 and "nothing is piped in" in err
