"""The README's examples run, and their quoted output (line numbers
included) matches (issue #17): every ``console`` block's ``$ ruleanalyzer
…`` commands run in-process from the repository root; the quoted lines must
appear in the output in order (``…`` skips lines). The Python example runs
too and prints what its comments say."""

import io
import re
import sys
from pathlib import Path

import pytest

from ruleanalyzer import loader
from ruleanalyzer.cli import main

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def _examples():
    for block in re.findall(r"```console\n(.*?)```", README, re.S):
        for command in re.split(r"(?m)^(?=\$ )", block):
            if command.strip():
                head, *quoted = command.rstrip("\n").split("\n")
                yield head[2:], quoted


EXAMPLES = list(_examples())


def test_the_readme_has_examples():
    assert len(EXAMPLES) >= 4


@pytest.mark.parametrize("command, quoted", EXAMPLES, ids=[c for c, _ in EXAMPLES])
def test_readme_example(command, quoted, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("COLUMNS", raising=False)
    words = command.split()
    assert words[0] == "ruleanalyzer"
    if "<" in words:
        k = words.index("<")
        data = (ROOT / words[k + 1]).read_bytes()
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
        loader.forget_stdin()
        words = words[:k]
    main(words[1:])
    out = capsys.readouterr().out.splitlines()
    position = 0
    for line in quoted:
        if line == "…":
            continue
        assert line in out[position:], f"{command}: {line!r} not in output:\n" + "\n".join(out)
        found = out.index(line, position)
        # without an ellipsis before it, the line must come next
        previous = quoted[quoted.index(line) - 1] if quoted.index(line) else None
        if previous is not None and previous != "…":
            assert found == position, f"{command}: {line!r} is not the next line"
        elif previous is None:
            assert found == 0, f"{command}: the output does not start with {line!r}"
        position = found + 1


def test_readme_python_example(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    code = re.search(r"```python\n(.*?)```", README, re.S).group(1)
    exec(compile(code, "README.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    # each print(...) line's comment is its output ("…" stands for any text)
    expected = re.findall(r"^print\(.*#\s*(.*)$", code, re.M)
    assert len(printed) == len(expected) >= 4
    for got, want in zip(printed, expected):
        pattern = ".*".join(re.escape(part) for part in want.split("…"))
        assert re.fullmatch(pattern, got), (got, want)
