"""Jump loops (issue 9). The kernels refuse a ruleset whose jumps and gotos
let a chain reach itself ("Too many levels of symbolic links", ELOOP); the
iptables reader does too, through a linear-time iterative search
(``parsers/jumploops.py``) with one located error naming the jump that closes
the loop and the loop's chains. Long loop-free jump chains stay linear."""

from __future__ import annotations

import json
import time

import pytest

from ruleanalyzer import parsers
from ruleanalyzer.engine import Evaluator
from ruleanalyzer.engine.evaluate import MAX_DEPTH
from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.packets import make_packet
from ruleanalyzer.parsers.jumploops import find_loop, loop_path

from .test_limits import assert_linear

SSH = make_packet(src="192.0.2.1", dst="198.51.100.7", dport=22, flags="SYN")


# -- the search ----------------------------------------------------------------------------------
def test_find_loop():
    assert find_loop([]) is None
    assert find_loop([("a", "b"), ("b", "c"), ("a", "c"), ("c", "d")]) is None  # a diamond
    assert find_loop([("a", "a")]) == [0]
    edges = [("in", "a"), ("a", "b"), ("b", "c"), ("c", "a"), ("c", "x")]
    loop = find_loop(edges)
    assert loop == [1, 2, 3] and loop_path(edges, loop) == "a -> b -> c -> a"
    # rotated so that the latest edge closes it
    edges = [("c", "a"), ("a", "b"), ("b", "c")]
    assert loop_path(edges, find_loop(edges)) == "c -> a -> b -> c"


def test_find_loop_is_iterative_and_linear():
    """No recursion (a 100k-long path) and linear: a DAG of 8x the edges
    costs about 8x."""
    def chain(n):
        return [(i, i + 1) for i in range(n)] + [(i, i + 2) for i in range(n)]
    assert find_loop(chain(100_000)) is None
    edges = chain(100_000) + [(100_001, 0)]
    loop = find_loop(edges)
    assert loop[-1] == len(edges) - 1 and edges[loop[0]][0] == 0
    assert_linear(find_loop, chain, 12_500)


# -- iptables, through the same search ------------------------------------------------------------
@pytest.mark.parametrize("rules, message, line", [
    (["-A A -j A"], "jump loop: A -> A", 6),
    (["-A INPUT -j A", "-A A -j B", "-A B -g A"], "jump loop: A -> B -> A", 8),
    (["-A B -j A", "-A INPUT -j A", "-A A -p tcp -j B"], "jump loop: B -> A -> B", 8),
])
def test_iptables_jump_loop_is_refused_at_the_closing_jump(rules, message, line):
    text = "\n".join(["*filter", ":INPUT DROP [0:0]", ":A - [0:0]", ":B - [0:0]", "-A INPUT -j B",
                     *rules, "COMMIT", ""])
    with pytest.raises(RuleAnalyzerError) as info:
        parsers.parse(text, "loop.rules", "iptables")
    assert message in info.value.message
    assert (info.value.location.file, info.value.location.line) == ("loop.rules", line)


def test_iptables_100k_long_loop_is_refused():
    n = 100_000
    lines = ["*filter", ":INPUT DROP [0:0]"] + [f":C{i} - [0:0]" for i in range(n)]
    lines += ["-A INPUT -j C0"] + [f"-A C{i} -j C{i + 1}" for i in range(n - 1)]
    text = "\n".join(lines + [f"-A C{n - 1} -j C0", "COMMIT", ""])
    start = time.process_time()
    with pytest.raises(RuleAnalyzerError) as info:
        parsers.parse(text, "loop.rules", "iptables")
    assert time.process_time() - start < 60  # ~2 s
    assert info.value.message.startswith("jump loop: C0 -> C1 -> C2 -> ")
    assert info.value.location.line == len(lines) + 1
    assert len(info.value.render()) < 1000


# -- long chains: linear, loop or not ----------------------------------------------------------------
T = {"family": "ip", "table": "t"}


def _doc(*objects) -> str:
    return json.dumps({"nftables": [{"table": {"family": "ip", "name": "t"}}, *objects]})


def _nft_chain(n: int, loop: bool = False) -> str:
    lines = ["table ip t {", " chain input { type filter hook input priority 0; policy drop; jump c0 }"]
    lines += [f" chain c{i} {{ jump c{i + 1} }}" for i in range(n - 1)]
    lines += [f" chain c{n - 1} {{ {'goto c0' if loop else 'accept'} }}", "}", ""]
    return "\n".join(lines)


def _nft_json_chain(n: int, loop: bool = False) -> str:
    last = {"goto": {"target": "c0"}} if loop else {"accept": None}
    return _doc(*[{"chain": {**T, "name": f"c{i}"}} for i in range(n)],
                *[{"rule": {**T, "chain": f"c{i}", "expr": [{"jump": {"target": f"c{i + 1}"}}]}}
                  for i in range(n - 1)],
                {"rule": {**T, "chain": f"c{n - 1}", "expr": [last]}})


def test_nft_100k_deep_jump_chain_parses_and_is_unknown_naming_max_depth():
    text = _nft_chain(100_000)
    start = time.process_time()
    ruleset = parsers.parse(text, "deep.nft", "nftables")
    assert time.process_time() - start < 60  # ~2.5 s
    result = Evaluator(ruleset).evaluate(SSH)
    assert result.verdict == "unknown"
    assert result.depends_on == (f"jumps nested deeper than {MAX_DEPTH} chains",)


@pytest.mark.parametrize("dialect, make", [("nftables", _nft_chain), ("nft-json", _nft_json_chain)])
def test_nft_jump_chains_parse_in_linear_time(dialect, make):
    assert_linear(lambda text: parsers.parse(text, "chain", dialect), make, 1_250)
