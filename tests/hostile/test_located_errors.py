"""Inputs that once ended in a traceback are located errors, exit 2
(issue 16): numbers of more than 4,300 digits, config values of the wrong
type, a non-UTF-8 config, ``--together ,``, ``"dport": 1e999``, a closed
stdout; and one bad file never stops an audit of many."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ruleanalyzer import cli

BIG = "9" * 5000
OK = "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n"


def _run(capsys, *args) -> tuple[int, str]:
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out + err


@pytest.mark.parametrize("name, text, at", [
    ("big.json", '{"SecurityGroups": [{"GroupId": "sg-1", "IpPermissions": [{"IpProtocol": "tcp", '
                 f'"FromPort": {BIG}, "ToPort": 22, "IpRanges": [{{"CidrIp": "0.0.0.0/0"}}]}}]}}]}}', ":1:93:"),
    ("big.nft", f"table ip t {{\n chain c {{ type filter hook input priority 0; tcp dport {BIG} accept }}\n}}\n",
     ":2:57:"),
    ("big.yaml", f"resources:\n  sg:\n    Type: AWS::EC2::SecurityGroup\n    Properties: {{X: {BIG}}}\n", ":4:21:"),
])
def test_numbers_over_4300_digits_are_located(tmp_path, capsys, name, text, at):
    path = tmp_path / name
    path.write_text(text)
    code, err = _run(capsys, "audit", path, *(["--dialect", "cloudformation"] if name.endswith("yaml") else []))
    assert code == 2 and f"{path}{at} RA001 [unreadable-input] a number of 5000 digits" in err


def test_one_bad_file_never_stops_an_audit_of_many(tmp_path, capsys):
    (tmp_path / "a-big.nft").write_text(f"table ip t {{ chain c {{ tcp dport {BIG} accept }} }}\n")
    (tmp_path / "b.rules").write_text(OK)
    code = cli.main(["audit", str(tmp_path), "--format", "json"])
    data = json.loads(capsys.readouterr().out)
    codes = {f["location"]["file"].rsplit("/", 1)[-1]: f["code"] for f in data["findings"]}
    assert codes["a-big.nft"] == "RA001" and any(c != "RA001" for c in codes.values()) and code == 1


@pytest.mark.parametrize("config, message", [
    ("options: 5", "options must be a mapping"),
    ("options: {RA101: 5}", "options must be a mapping"),
    ("ignore: {a: 1}", "ignore must be a list of check codes"),
    ("select: 5", "select must be a list of check codes"),
    ("suppress: [{file: x, line: abc}]", "suppress[0].line must be a number, not str"),
    ("suppress: [{file: x, codes: {a: 1}}]", "suppress[0].codes must be a string or a list of codes"),
    ('policy: [{deny: "22/tcp from 0.0.0.0/0", hook: bogus}]', "unknown hook 'bogus'"),
])
def test_config_values_of_the_wrong_type(tmp_path, capsys, config, message):
    (tmp_path / "c.yaml").write_text(config + "\n")
    (tmp_path / "r.rules").write_text(OK)
    if config.startswith("policy"):
        code, err = _run(capsys, "diff", tmp_path / "r.rules", tmp_path / "r.rules", "--policy", tmp_path / "c.yaml")
    else:
        code, err = _run(capsys, "audit", tmp_path / "r.rules", "--config", tmp_path / "c.yaml")
    assert code == 2 and message in err and str(tmp_path / "c.yaml") in err


def test_non_utf8_config(tmp_path, capsys):
    (tmp_path / "c.yaml").write_bytes(b"select: [RA1\xff]\n")
    (tmp_path / "r.rules").write_text(OK)
    code, err = _run(capsys, "audit", tmp_path / "r.rules", "--config", tmp_path / "c.yaml")
    assert code == 2 and f"{tmp_path / 'c.yaml'}:1:13: error: not UTF-8 text (byte 0xff)" in err


def test_together_with_no_names(tmp_path, capsys):
    (tmp_path / "r.rules").write_text(OK)
    code, err = _run(capsys, "audit", "--together", ",", tmp_path / "r.rules")
    assert code == 2 and "--together needs file names" in err


def test_packet_with_an_infinite_port(tmp_path, capsys):
    (tmp_path / "r.rules").write_text(OK)
    (tmp_path / "p.jsonl").write_text('{"src": "1.2.3.4", "dst": "5.6.7.8", "dport": 1e999}\n')
    code, err = _run(capsys, "query", tmp_path / "r.rules", "--packets", tmp_path / "p.jsonl")
    assert code == 2 and f"{tmp_path / 'p.jsonl'}:1:1: error: bad packet: dport must be a number" in err


def test_closed_stdout_is_no_traceback(tmp_path):
    """``ruleanalyzer audit … | head -c 1``: BrokenPipeError once ended in a traceback."""
    (tmp_path / "r.rules").write_text(OK * 1)
    reader = subprocess.Popen([sys.executable, "-m", "ruleanalyzer", "audit", str(tmp_path / "r.rules"),
                               "--format", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    reader.stdout.close()  # nobody reads: the first write fails
    err = reader.stderr.read().decode()
    assert reader.wait(timeout=60) == 141 and "Traceback" not in err and "Exception ignored" not in err
