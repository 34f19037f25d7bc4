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


@pytest.mark.parametrize("config, message, at", [
    ("options: 5", "options must be a mapping", ":1:1"),
    ("options: {RA101: 5}", "options.RA101 must be a mapping of settings", ":1:11"),
    ("ignore: {a: 1}", "ignore must be a list of check codes", ":1:1"),
    ("select: 5", "select must be a list of check codes", ":1:1"),
    ("fail-on: loud", "fail-on must be one of error, warning, info, never, not 'loud'", ":1:1"),
    ("suppress: [{file: x, line: abc}]", "suppress[0].line must be a number, not str", ":1:22"),
    ("suppress: [{file: x, codes: {a: 1}}]", "suppress[0].codes must be a string or a list of codes", ":1:22"),
    ("suppress:\n  - file: x\n  - line: 3", "suppress entry 2 must be a table naming at least a file", ":3:5"),
    ("interfaces:\n  internet: [eth0]\n  internal: 7", "interfaces.internal must be a list of interface names",
     ":3:3"),
    ("options:\n  RA401:\n    ports: ssh", "options.RA401.ports must be TCP ports", ":3:5"),
    ("options:\n  RA401:\n    ports: {22: SSH, 70000: x}", "options.RA401.ports must be TCP ports", ":3:5"),
    ("options:\n  RA401:\n    min-share: 99", "options.RA401.min-share must be a number above 0 and at most 1",
     ":3:5"),
    ("options:\n  RA401:\n    port: [22]", "unknown setting 'port' of RA401 under options", ":3:5"),
    ("options:\n  RA203:\n    ephemeral: [60000, 1024]", "options.RA203.ephemeral must be two port numbers",
     ":3:5"),
    ("options:\n  ra104:\n    lookahead: -1", "options.ra104.lookahead must be a whole number", ":3:5"),
    ('policy:\n  - allow: "22/tcp from 10.0.0.0/8"\n  - {deny: "22/tcp from 0.0.0.0/0", hook: bogus}',
     "unknown hook 'bogus'", ":3:5"),
    ('policy:\n  - deny: "22/tcp from nowhere"', "bad address in flow", ":2:5"),
])
def test_config_values_of_the_wrong_type(tmp_path, capsys, config, message, at):
    """Every bad value of a config file is an error at its key's line and
    column (a misspelt setting would otherwise silently do nothing)."""
    (tmp_path / "c.yaml").write_text(config + "\n")
    (tmp_path / "r.rules").write_text(OK)
    if config.startswith("policy"):
        code, err = _run(capsys, "diff", tmp_path / "r.rules", tmp_path / "r.rules", "--policy", tmp_path / "c.yaml")
    else:
        code, err = _run(capsys, "audit", tmp_path / "r.rules", "--config", tmp_path / "c.yaml")
    assert code == 2 and f"{tmp_path / 'c.yaml'}{at}: error: {message}" in err, err


@pytest.mark.parametrize("toml, message, at", [
    ('[tool.ruleanalyzer]\nselect = ["RA1"]\nfail-on = "loud"', "fail-on must be one of", ":3:1"),
    ('[tool.ruleanalyzer.options.RA401]\nmin_share = 0.9\nports = "ssh"', "options.RA401.ports must be TCP ports",
     ":3:1"),
    ('[tool.ruleanalyzer]\noptions = {RA401 = {min_share = 3}}', "options.RA401.min_share must be a number",
     ":2:1"),
    ('[[tool.ruleanalyzer.suppress]]\nfile = "a"\nline = 3\n[[tool.ruleanalyzer.suppress]]\nfile = "b"\n'
     'line = "three"', "suppress[1].line must be a number, not str", ":6:1"),
    ('[tool.ruleanalyzer.interfaces]\ninternet = ["eth0"]\ninternal = 7', "interfaces.internal must be a list",
     ":3:1"),
    ('[tool.ruleanalyzer]\nfail-on = ', "bad TOML: Invalid value", ":2:11"),
])
def test_pyproject_values_are_located(tmp_path, capsys, toml, message, at):
    (tmp_path / "pyproject.toml").write_text(toml + "\n")
    (tmp_path / "r.rules").write_text(OK)
    code, err = _run(capsys, "audit", tmp_path / "r.rules", "--config", tmp_path / "pyproject.toml")
    assert code == 2 and f"{tmp_path / 'pyproject.toml'}{at}: error: {message}" in err, err


def test_check_settings_are_read_as_the_check_reads_them():
    """``ports: [22, 2222]`` is the same as the mapping: known ports keep
    their service name; ``-`` and ``_`` are one spelling."""
    from ruleanalyzer.config import config_from_dict

    config = config_from_dict({"options": {"ra401": {"ports": [22, 2222], "min-share": 1}}})
    assert config.options == {"RA401": {"ports": {22: "SSH", 2222: "port 2222"}, "min_share": 1.0}}
    toml_keys = config_from_dict({"options": {"RA401": {"ports": {"22": "SSH"}}}})
    assert toml_keys.options["RA401"]["ports"] == {22: "SSH"}


def test_a_port_list_setting_changes_what_is_reported(tmp_path, capsys):
    rules = "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 2222 -j ACCEPT\nCOMMIT\n"
    (tmp_path / "r.rules").write_text(rules)
    (tmp_path / "c.yaml").write_text("options:\n  RA401:\n    ports: [22, 2222]\n")
    cli.main(["audit", str(tmp_path / "r.rules"), "--no-config"])
    assert "RA401" not in capsys.readouterr().out
    cli.main(["audit", str(tmp_path / "r.rules"), "--config", str(tmp_path / "c.yaml")])
    assert "r.rules:3:1: RA401 [admin-port-exposed] open to the whole internet: port 2222 (2222/tcp" \
        in capsys.readouterr().out


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
