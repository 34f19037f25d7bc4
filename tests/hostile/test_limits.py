"""Resource bounds on hostile input (issue 9; docs/limits.md). Each test
asserts the exact outcome — parsed within a bound, or refused with a clear,
located error naming the limit — plus a generous time/memory bound for a
busy 2-core machine."""

from __future__ import annotations

import json
import random
import time
import tracemalloc

import pytest

from ruleanalyzer import cli, loader, parsers
from ruleanalyzer.engine import Evaluator
from ruleanalyzer.engine.evaluate import MAX_DEPTH
from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.packets import make_packet

SSH = make_packet(src="192.0.2.1", dst="198.51.100.7", dport=22, flags="SYN")


def _bounded(fn, seconds: float, megabytes: int):
    tracemalloc.start()
    start = time.process_time()
    try:
        result = fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    spent = time.process_time() - start
    assert spent < seconds, f"{spent:.1f} s CPU"
    assert peak < megabytes * 2**20, f"{peak / 2**20:.0f} MB"
    return result


# -- file size -------------------------------------------------------------------------
def test_max_bytes_refuses_before_reading(tmp_path):
    path = tmp_path / "big.rules"
    path.write_text("*filter\n" + "# padding\n" * 2000 + "COMMIT\n")
    with pytest.raises(RuleAnalyzerError) as info:
        loader.read_text(path, max_bytes=1000)
    assert "over the limit of 1000 bytes" in info.value.message
    assert info.value.location.file == str(path)
    assert loader.DEFAULT_MAX_BYTES == 256 * 1024 * 1024


def test_cli_max_bytes_exit_2(tmp_path, capsys):
    path = tmp_path / "big.rules"
    path.write_text("*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n" * 100)
    code = cli.main(["query", str(path), "--src", "1.2.3.4", "--dst", "5.6.7.8", "--max-bytes", "100"])
    assert code == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") <= 3 and "over the limit of 100 bytes" in err and "Traceback" not in err


# -- one long line -------------------------------------------------------------------------------
@pytest.mark.parametrize("dialect, make", [
    ("iptables", lambda n: "*filter\n-A INPUT -m comment --comment " + "x" * n + " -j ACCEPT\nCOMMIT\n"),
    ("nftables", lambda n: "table ip t { chain c { " + "ip saddr 1.2.3.4 " * (n // 17) + "accept } }\n"),
    ("aws-sg", lambda n: '{"SecurityGroups": [{"GroupId": "' + "x" * n + '"}]}'),
])
def test_a_long_line_is_handled_in_linear_time(dialect, make):
    """A scaled-down 100 MB line: 200 kB parses (or is refused, located) in
    bounded time and memory; 4x longer costs no more than about 4x."""
    def once(n):
        start = time.process_time()
        try:
            parsers.parse(make(n), "long", dialect)
        except RuleAnalyzerError as err:
            assert err.location is not None and len(err.render()) < 2000
        return time.process_time() - start
    small = _bounded(lambda: once(50_000), 30, 400)
    large = _bounded(lambda: once(200_000), 60, 1200)
    assert large < 8 * small + 1.0, (small, large)


# -- jumps ------------------------------------------------------------------------------------
def _chain(n: int) -> str:
    lines = ["*filter", ":INPUT DROP [0:0]"] + [f":C{i} - [0:0]" for i in range(n)]
    lines += ["-A INPUT -j C0"] + [f"-A C{i} -j C{i + 1}" for i in range(n - 1)]
    return "\n".join(lines + [f"-A C{n - 1} -j ACCEPT", "COMMIT", ""])


def test_deep_jump_chain_is_unknown_naming_max_depth():
    ruleset = _bounded(lambda: parsers.parse(_chain(10_000), "deep.rules", "iptables"), 30, 800)
    result = _bounded(lambda: Evaluator(ruleset).evaluate(SSH), 10, 200)
    assert result.verdict == "unknown"
    assert result.depends_on == (f"jumps nested deeper than {MAX_DEPTH} chains",)


def test_jump_within_max_depth_is_evaluated():
    result = Evaluator(parsers.parse(_chain(MAX_DEPTH - 2), "ok.rules", "iptables")).evaluate(SSH)
    assert result.verdict == "accept"


def test_iptables_jump_cycle_is_refused():
    text = "*filter\n:INPUT DROP [0:0]\n:A - [0:0]\n:B - [0:0]\n-A INPUT -j A\n-A A -j B\n-A B -j A\nCOMMIT\n"
    with pytest.raises(RuleAnalyzerError) as info:
        parsers.parse(text, "loop.rules", "iptables")
    assert "jump loop: A -> B -> A" in info.value.message
    assert info.value.location.line == 7


def test_nft_jump_cycle_is_unknown_naming_the_limit():
    text = ("table ip t {\n chain a { type filter hook input priority 0; jump b }\n"
            " chain b { jump a }\n}\n")
    result = Evaluator(parsers.parse(text, "loop.nft", "nftables")).evaluate(SSH)
    assert result.verdict == "unknown" and str(MAX_DEPTH) in result.depends_on[0]


# -- big sets ---------------------------------------------------------------------------------
def test_nft_set_with_many_elements_is_linear():
    def parse(n):
        elements = ", ".join(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(n))
        text = ("table inet f {\n set s { type ipv4_addr; elements = { " + elements + " } }\n"
                " chain c { type filter hook input priority 0; policy drop; ip saddr @s accept }\n}\n")
        start = time.process_time()
        ruleset = parsers.parse(text, "set.nft", "nftables")
        spent = time.process_time() - start
        assert Evaluator(ruleset).evaluate(make_packet(src=f"10.0.0.{n % 200 + 1}", dst="10.1.1.1",
                                                       dport=22)).verdict == "accept"
        return spent
    small = _bounded(lambda: parse(5_000), 30, 300)
    large = _bounded(lambda: parse(40_000), 60, 1500)
    assert large < 16 * small + 2.0, (small, large)


# -- nesting and YAML aliases -------------------------------------------------------------------
@pytest.mark.parametrize("dialect", ["nft-json", "aws-sg", "aws-nacl", "gcp", "azure"])
def test_deeply_nested_json_is_refused(dialect):
    text = '{"nftables": ' + "[" * 200_000 + "]" * 200_000 + "}"
    with pytest.raises(RuleAnalyzerError) as info:
        _bounded(lambda: parsers.parse(text, "deep.json", dialect), 20, 500)
    assert "nested too deeply" in info.value.message
    assert info.value.location.file == "deep.json"


@pytest.mark.parametrize("dialect", ["aws-sg", "gcp", "azure"])
def test_deeply_nested_yaml_is_refused(dialect):
    text = "a: " + "[" * 3_000 + "]" * 3_000 + "\n"
    start = time.process_time()
    with pytest.raises(RuleAnalyzerError) as info:
        parsers.parse(text, "deep.yaml", dialect)
    assert time.process_time() - start < 20  # PyYAML recurses until Python's limit (docs/limits.md)
    assert "nested too deeply" in info.value.message


@pytest.mark.parametrize("dialect", ["aws-sg", "aws-nacl", "gcp", "azure"])
def test_yaml_billion_laughs_is_refused(dialect):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    with pytest.raises(RuleAnalyzerError) as info:
        _bounded(lambda: parsers.parse("\n".join(lines) + "\n", "bomb.yaml", dialect), 5, 100)
    assert "YAML aliases" in info.value.message and "billion laughs" in info.value.message


# -- the packet space ---------------------------------------------------------------------------
def test_bdd_of_unrelated_random_prefixes_stays_linear():
    """Many rules with unrelated random src/dst prefixes: the BDD grows about
    linearly with the rules (measured ~700 nodes per rule); docs/limits.md."""
    from ruleanalyzer.space.reach import analyze

    rng = random.Random(9)

    def prefix():
        a = rng.getrandbits(32)
        return f"{a >> 24}.{a >> 16 & 255}.{a >> 8 & 255}.{a & 255}/{rng.randint(8, 32)}"

    lines = ["*filter", ":INPUT ACCEPT [0:0]"]
    lines += [f"-A INPUT -s {prefix()} -d {prefix()} -p tcp --dport {rng.randint(1, 65535)} "
              f"-j {rng.choice(['ACCEPT', 'DROP'])}" for _ in range(400)]
    ruleset = parsers.parse("\n".join(lines + ["COMMIT", ""]), "bdd.rules", "iptables")
    start = time.process_time()
    reach = analyze(ruleset, "input", 4)
    assert time.process_time() - start < 30
    assert len(reach.rules()) == 400


# -- atomic output -----------------------------------------------------------------------------
def test_failed_run_leaves_no_half_written_output(tmp_path):
    out = tmp_path / "report.json"
    bad = tmp_path / "bad.rules"
    bad.write_text("*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\n-A INPUT --bogus\n")
    assert cli.main(["query", str(bad), "--src", "1.2.3.4", "--dst", "5.6.7.8", "--format", "json",
                     "-o", str(out)]) == cli.EXIT_BAD_INPUT
    assert list(tmp_path.iterdir()) == [bad]
    out.write_text("previous report\n")
    assert cli.main(["query", str(bad), "--src", "1.2.3.4", "--dst", "5.6.7.8", "--format", "json",
                     "-o", str(out)]) == cli.EXIT_BAD_INPUT
    assert out.read_text() == "previous report\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.rules", "report.json"]
    good = tmp_path / "good.rules"
    good.write_text("*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n")
    cli.main(["query", str(good), "--src", "1.2.3.4", "--dst", "5.6.7.8", "--dport", "22",
              "--format", "json", "-o", str(out)])
    assert json.loads(out.read_text())["verdict"] == "accept"
