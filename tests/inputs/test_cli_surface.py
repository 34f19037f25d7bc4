"""The command line never surprises (issue #17): widths, colours, quiet,
port names, usage on a misspelt option, exit codes in --help, located
config errors, carets under tab-indented lines."""

import json
from pathlib import Path

import pytest

from ruleanalyzer.cli import main

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "fixtures" / "rulesets" / "webserver.rules"


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_one_finding_per_line_when_not_a_terminal(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")  # tables only: finding lines never wrap
    code, out, _ = run(capsys, "audit", WEB)
    line = next(l for l in out.splitlines() if ": RA101 [shadowed-rule]" in l)
    assert line.endswith("and some are dropped instead") and "\x1b[" not in out


def test_quiet_prints_only_the_findings(capsys):
    code, out, _ = run(capsys, "audit", WEB, "-q")
    assert code == 1 and out.splitlines() == [
        f"{WEB}:10:1: RA101 [shadowed-rule] rule can never match: the packets it would accept are taken "
        "first by INPUT rule 3 (line 9), INPUT rule 2 (line 8), and some are dropped instead"]


def test_color_always_and_never(capsys, monkeypatch):
    _, out, _ = run(capsys, "audit", WEB, "--color", "always")
    assert "\x1b[" in out
    monkeypatch.setenv("NO_COLOR", "1")
    _, out, _ = run(capsys, "audit", WEB, "--color", "never")
    assert "\x1b[" not in out


def test_port_names_and_proto_all_in_query(capsys):
    code, out, _ = run(capsys, "query", WEB, "--src", "198.51.100.7", "--dst", "192.0.2.10",
                       "--dport", "ssh", "--state", "new", "--format", "json")
    assert json.loads(out)["packet"]["dport"] == 22
    code, out, _ = run(capsys, "query", WEB, "--src", "198.51.100.7", "--dst", "192.0.2.10", "--proto", "all")
    assert out.startswith("DROP  all 198.51.100.7 -> 192.0.2.10")
    with pytest.raises(SystemExit) as info:
        main(["query", str(WEB), "--src", "1.1.1.1", "--dst", "2.2.2.2", "--dport", "sshh"])
    assert info.value.code == 2 and "invalid port or service 'sshh'" in capsys.readouterr().err


def test_a_misspelt_option_shows_that_commands_usage(capsys):
    with pytest.raises(SystemExit) as info:
        main(["audit", str(WEB), "--selct", "RA1"])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert err.startswith("usage: ruleanalyzer audit ")
    assert "unrecognized arguments: --selct RA1 (did you mean --select?)" in err


@pytest.mark.parametrize("command", ["query", "connect", "path", "audit", "diff", "rules", "explain", "collect"])
def test_every_commands_help_lists_its_exit_codes(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "exit codes: " in capsys.readouterr().out


def test_every_query_option_has_help():
    import argparse

    from ruleanalyzer.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    missing = [a.option_strings for a in sub.choices["query"]._actions if not a.help]
    assert not missing


def test_rules_as_json(capsys):
    code, out, _ = run(capsys, "rules", "--format", "json")
    rules = json.loads(out)
    assert code == 0 and {"code": "RA101", "name": "shadowed-rule", "severity": "error",
                          "opt_in": False} == {k: v for k, v in rules[4].items() if k != "summary"}


@pytest.mark.parametrize("name, text, line, words", [
    (".ruleanalyzer.yaml", "select: [RA1]\nfail_onn: error\n", 2, "unknown config key(s): fail-onn"),
    ("pyproject.toml", '[tool.ruleanalyzer]\n[[tool.ruleanalyzer.suppress]]\nfile = "x"\nlien = 3\n', 4,
     "unknown key(s) in suppress entry 1: lien"),
    (".ruleanalyzer.yaml", "options:\n  RA999:\n    ports: {}\n", 2, "unknown check 'RA999'"),
])
def test_unknown_config_keys_are_located_errors(tmp_path, capsys, name, text, line, words):
    config = tmp_path / name
    config.write_text(text)
    code, _, err = run(capsys, "audit", WEB, "--config", config)
    assert code == 2 and err.startswith(f"{config}:{line}:") and words in err


def test_carets_line_up_under_tab_indented_lines(tmp_path, capsys):
    nft = tmp_path / "ruleset.nft"
    nft.write_text("table inet f {\n\tchain i {\n\t\ttype filter hook input priority 0; policy drop;\n"
                   "\t\ttcp dport 22 accept\n\t\ttcp dport 22 accept\n\t}\n}\n")
    _, out, _ = run(capsys, "audit", nft, "--select", "RA505")
    lines = out.splitlines()
    k = next(i for i, l in enumerate(lines) if l.endswith("tcp dport 22 accept") and "|" in l)
    assert lines[k + 1].index("^") == lines[k].index("tcp")
    nft.write_text(nft.read_text().replace("tcp dport 22 accept\n\t}", "ip saddr 10.0.0.300 accept\n\t}"))
    code, _, err = run(capsys, "query", nft, "--src", "192.0.2.1", "--dst", "192.0.2.2")
    shown, caret = err.splitlines()[1:3]
    assert code == 2 and caret.index("^") == shown.index("ip saddr")
