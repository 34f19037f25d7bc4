"""Nothing from the inputs is interpreted by a terminal, a CI runner or
GitHub markdown (issue 16): control characters in anything quoted are
shown escaped (``\\x1b``, ``\\n``), rich markup in input is printed as
written, quoted input in ``diff --format markdown`` is inert, and code
frames number lines as the readers do (``\\n`` only)."""

from __future__ import annotations

import pytest

from ruleanalyzer import cli
from ruleanalyzer.errors import RuleAnalyzerError, split_lines, visible
from ruleanalyzer.model import Location
from ruleanalyzer.report.diff_markdown import _cell, _code

ESC_TITLE = "\x1b]0;pwned\x07"  # OSC: set the terminal title
ERASE = "\x1b[2K\x1b[1A"  # CSI: erase the line, cursor up


def _rules(comment: str, port: int = 22) -> str:
    return ("*filter\n:INPUT DROP [0:0]\n"
            f'-A INPUT -p tcp --dport {port} -m comment --comment "{comment}" -j ACCEPT\nCOMMIT\n')


def test_visible_escapes_every_control_character():
    assert visible("a\nb\rc\x1b[2Jd\x07e\u2028f\x85g\u202eh\ti") == \
        "a\\nb\\rc\\x1b[2Jd\\x07e\\u2028f\\x85g\\u202eh\ti"
    assert visible("one\ntwo", keep_newlines=True) == "one\ntwo"


@pytest.mark.parametrize("fmt", ["text", "github", "sarif", "json"])
def test_escape_sequences_in_comments_never_reach_the_output(tmp_path, capsys, fmt):
    path = tmp_path / "esc.rules"
    path.write_text(_rules(ESC_TITLE + ERASE + "ssh"))
    cli.main(["audit", str(path), "--format", fmt])
    out, err = capsys.readouterr()
    assert "\x1b" not in out + err and "\x07" not in out + err  # not a terminal: no colours either
    if fmt == "text":
        assert "\\x1b]0;pwned\\x07" in out


def test_a_located_error_quoting_input_is_one_line_per_part(tmp_path, capsys):
    """A config key ``a\\n::error file=x::owned`` once printed a fake GitHub
    annotation line on stderr."""
    config = tmp_path / ".ruleanalyzer.yaml"
    config.write_text('"a\\n::error file=x::owned\\r": 1\n')
    path = tmp_path / "r.rules"
    path.write_text(_rules("x"))
    assert cli.main(["audit", str(path), "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert not any(line.startswith("::error") for line in err.splitlines())
    assert "\\n::error file=x::owned\\r" in err and "\r" not in err


def test_error_render_escapes_source_line_and_moves_the_caret():
    err = RuleAnalyzerError("bad", Location("f.rules", 1, 3), source_line="\x1bab")
    assert err.render().splitlines()[1:3] == ["    \\x1bab", " " * 9 + "^"]  # under the b


@pytest.mark.parametrize("comment", ["see [/admin] docs", "[link=https://evil.example]x[/link]",
                                     "[bold red]fake[/bold red] :smile:"])
@pytest.mark.parametrize("command", ["query", "connect"])
def test_rich_markup_in_input_is_printed_as_written(tmp_path, capsys, comment, command):
    """``see [/admin] docs`` crashed query/connect (exit 1, read as dropped)."""
    path = tmp_path / "m.rules"
    path.write_text(_rules(comment))
    ends = ["--src", "192.0.2.1", "--dst"] if command == "query" else ["--client", "192.0.2.1", "--server"]
    code = cli.main([command, str(path), *ends, "198.51.100.7", "--dport", "22"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Traceback" not in err and "\x1b]8;" not in out  # no hyperlink
    if command == "query":
        assert comment in out


@pytest.mark.parametrize("separator", ["\u2028", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85"])
def test_code_frame_shows_the_line_the_finding_names(tmp_path, capsys, separator):
    """A U+2028 (or a lone \\r …) in a comment made ``splitlines`` count one
    line more than the reader: the frame of an RDP exposure showed the
    benign line above it."""
    path = tmp_path / "frame.rules"
    path.write_text("*filter\n:INPUT DROP [0:0]\n"
                    f'-A INPUT -p tcp --dport 80 -m comment --comment "web{separator}x" -j ACCEPT\n'
                    "-A INPUT -p tcp --dport 3389 -j ACCEPT\nCOMMIT\n", newline="")
    cli.main(["audit", str(path), "--select", "RA401"])
    out = capsys.readouterr().out
    frames = [line for line in out.splitlines() if line.lstrip().startswith("4 |")]
    assert frames and all("--dport 3389" in line for line in frames), out


def test_split_lines_is_the_readers_rule():
    assert split_lines("a\u2028b\r\nc\rd\x0be\n") == ["a\u2028b", "c\rd\x0be"]


def test_markdown_cells_are_inert():
    hostile = "</details><img src=x onerror=alert(1)> ![i](https://e/x.png) [l](https://e) @octocat *b* |x\n# h"
    cell = _cell(hostile)
    assert "<" not in cell and "![" not in cell and "](" not in cell and "@octocat" not in cell
    assert "\n" not in cell and "| " not in cell.replace("\\|", "")
    code = _code("a`b``c|d\ne")
    assert code == "```a`b``c\\|d\\ne```"


def test_diff_markdown_quotes_file_names_inertly(tmp_path, capsys):
    old = tmp_path / "<details>@octocat`x.rules"
    new = tmp_path / "new.rules"
    old.write_text(_rules("x", 22))
    new.write_text(_rules("x", 23))
    cli.main(["diff", str(old), str(new), "--format", "markdown", "--no-findings"])
    head = capsys.readouterr().out.splitlines()[0]
    assert head.startswith("### Firewall change impact: ``") and "@octocat`x.rules``" in head
