"""The command line as a user meets it: exit codes, errors without tracebacks."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ruleanalyzer.cli import main

ROOT = Path(__file__).resolve().parents[1]
RULESETS = ROOT / "fixtures" / "rulesets"


def run(*args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_query_accept_drop_unknown_exit_codes(capsys):
    web = RULESETS / "webserver.rules"
    assert run("query", web, "--src", "198.51.100.7", "--dst", "192.0.2.10", "--dport", "443",
               "--state", "new", capsys=capsys)[0] == 0
    code, out, _ = run("query", web, "--src", "198.51.100.7", "--dst", "192.0.2.10", "--dport", "22",
                       "--state", "new", capsys=capsys)
    assert code == 1 and "REJECT" in out and "rule 9" in out
    docker = RULESETS / "docker-host.rules"
    assert run("query", docker, "--src", "198.51.100.7", "--dst", "192.0.2.10", "--dport", "5432",
               "--state", "new", "--iif", "eth0", capsys=capsys)[0] == 3


def test_query_json_follows_the_contract(capsys):
    code, out, _ = run("query", RULESETS / "webserver.rules", "--src", "198.51.100.7", "--dst",
                       "192.0.2.10", "--dport", "22", "--state", "new", "--format", "json", capsys=capsys)
    data = json.loads(out)
    assert data["verdict"] == "drop"
    d = data["decided_by"]
    assert (d["table"], d["chain"], d["rule_index"], d["line"]) == ("filter", "INPUT", 9, 15)
    assert d["file"].endswith("webserver.rules") and "REJECT" in d["rule"]
    assert data["trace"][0]["event"] == "enter"
    assert data["reject_with"] == "tcp-reset"


def test_packets_batch_jsonl(tmp_path, capsys):
    batch = tmp_path / "p.jsonl"
    batch.write_text('{"id": "a", "src": "198.51.100.7", "dst": "192.0.2.10", "dport": 443, "state": "new"}\n'
                     '{"id": "b", "src": "198.51.100.7", "dst": "192.0.2.10", "dport": 25, "state": "new"}\n')
    code, out, _ = run("query", RULESETS / "webserver.rules", "--packets", batch, "--format", "jsonl",
                       capsys=capsys)
    lines = [json.loads(l) for l in out.splitlines()]
    assert [(l["id"], l["verdict"]) for l in lines] == [("a", "accept"), ("b", "drop")]
    assert code == 1


def test_bad_packet_line_is_located(tmp_path, capsys):
    batch = tmp_path / "p.jsonl"
    batch.write_text('{"src": "198.51.100.7", "dst": "192.0.2.10", "dport": 443}\n{"src": "nope"}\n')
    code, _, err = run("query", RULESETS / "webserver.rules", "--packets", batch, capsys=capsys)
    assert code == 2 and f"{batch}:2:1" in err


def test_connect_reports_the_dying_leg(capsys):
    code, out, _ = run("connect", RULESETS / "broken-handshake.rules", "--client", "198.51.100.7",
                       "--server", "192.0.2.10", "--dport", "443", "--ecn", "off", "--format", "json",
                       capsys=capsys)
    data = json.loads(out)
    assert code == 1 and data["passes"] is False
    assert data["variants"][0]["first_failure"] == "SYN-ACK"


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"\x7fELF\x02\x01\x01\x00\x00binary", "binary"),
    (b"*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\n", "COMMIT"),
    (b"*filter\n:INPUT ACCEPT [0:0]\n-A INPUT --frobnicate 1 -j ACCEPT\nCOMMIT\n", "frobnicate"),
    (b"*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j NOWHERE\nCOMMIT\n", "NOWHERE"),
    (b"*filter\n:INPUT ACCEPT [0:0]\n:A - [0:0]\n:B - [0:0]\n-A A -j B\n-A B -j A\n-A INPUT -j A\nCOMMIT\n", "loop"),
    (b"*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport\nCOMMIT\n", "argument"),
])
def test_bad_input_is_one_located_message_and_exit_2(tmp_path, content, message):
    path = tmp_path / "bad.rules"
    path.write_bytes(content)
    proc = subprocess.run([sys.executable, "-m", "ruleanalyzer", "query", str(path), "--dialect", "iptables",
                           "--src", "192.0.2.1", "--dst", "192.0.2.2", "--dport", "22"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert str(path) in proc.stderr and message.lower() in proc.stderr.lower()
    first = proc.stderr.splitlines()[0]
    assert first.startswith(f"{path}:") or first.startswith(f"{path}")


def test_output_file_is_not_written_when_the_run_fails(tmp_path):
    out = tmp_path / "report.json"
    bad = tmp_path / "bad.rules"
    bad.write_bytes(b"*filter\n-A INPUT -j NOWHERE\n")
    proc = subprocess.run([sys.executable, "-m", "ruleanalyzer", "query", str(bad), "--dialect", "iptables",
                           "--src", "192.0.2.1", "--dst", "192.0.2.2", "--dport", "22", "-o", str(out),
                           "--format", "json"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and not out.exists()
    assert not list(tmp_path.glob(".ruleanalyzer-*"))


def test_an_empty_nft_dump_is_no_ruleset_when_the_dialect_is_named(tmp_path, capsys):
    """`nft list ruleset` prints nothing when no ruleset is loaded: every
    packet passes. Unnamed, an empty file stays a located error."""
    empty = tmp_path / "ruleset.nft"
    empty.write_text("")
    args = ("query", empty, "--src", "192.0.2.1", "--dst", "192.0.2.2", "--dport", "22")
    assert run(*args, "--dialect", "nftables", capsys=capsys)[0] == 0
    code, _, err = run(*args, capsys=capsys)
    assert code == 2 and "empty" in err
