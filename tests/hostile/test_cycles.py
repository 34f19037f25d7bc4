"""Jump loops (issue 9): the kernels refuse a ruleset whose jumps and gotos
let a chain reach itself ("Too many levels of symbolic links", ELOOP), and
so do the readers — nft text, nft JSON and iptables, through one
linear-time iterative search (``parsers/jumploops.py``) — with one located
error naming the file, the jump that closes the loop and the loop's chains.
Long loop-free jump chains stay linear."""

from __future__ import annotations

import json
import time

import pytest

from ruleanalyzer import loader, parsers
from ruleanalyzer.engine import Evaluator
from ruleanalyzer.engine.evaluate import MAX_DEPTH
from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.packets import make_packet
from ruleanalyzer.parsers.jumploops import find_loop, loop_path

from .test_limits import assert_linear

SSH = make_packet(src="192.0.2.1", dst="198.51.100.7", dport=22, flags="SYN")
T = {"family": "ip", "table": "t"}


def _doc(*objects) -> str:
    return json.dumps({"nftables": [{"table": {"family": "ip", "name": "t"}}, *objects]})


def refusal(text: str, name: str = "loop.nft", dialect: str = "nftables") -> RuleAnalyzerError:
    with pytest.raises(RuleAnalyzerError) as info:
        parsers.parse(text, name, dialect)
    return info.value


def where(err: RuleAnalyzerError) -> tuple:
    loc = err.location
    return (loc.file, loc.line, loc.column) if loc.line else (loc.file, loc.path)


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


# -- nft text ------------------------------------------------------------------------------------
@pytest.mark.parametrize("body, message, at", [
    # a chain jumping to itself
    ("chain a { jump a }", "t: a -> a", (2, 12)),
    ("chain a { type filter hook input priority 0; goto a }", "t: a -> a", (2, 47)),
    # a two-chain loop closes at the later jump
    ("chain a { type filter hook input priority 0; jump b }\n chain b { jump a }", "t: a -> b -> a", (3, 12)),
    ("chain b { jump a }\n chain a { ip saddr 10.0.0.0/8 goto b }", "t: b -> a -> b", (3, 32)),
    # through a verdict map: located at its element
    ("chain b { jump a }\n chain a { tcp dport vmap { 22 : accept, 80 : jump b } }", "t: b -> a -> b",
     (3, 47)),
    # a named map, readable or changing at run time (the kernel checks its elements too)
    ("map m { type inet_service : verdict; elements = { 22 : jump a } }\n chain a { tcp dport vmap @m }",
     "t: a -> a", (3, 12)),
    ("map m { type inet_service : verdict; flags timeout; elements = { 22 : goto a } }\n"
     " chain a { tcp dport vmap @m }", "t: a -> a", (3, 12)),
    # a chain binding (anonymous chain) that jumps back
    ("chain a { jump { jump a } }", "t: __chain1 -> a -> __chain1", (2, 12)),
    # a longer loop among others
    ("chain a { jump b }\n chain b { jump c; jump d }\n chain c { accept }\n chain d { goto b }",
     "t: b -> d -> b", (5, 12)),
])
def test_nft_jump_loop_is_refused(body, message, at):
    err = refusal("table ip t {\n " + body + "\n}\n")
    assert f"jump loop in table ip {message} " in err.message
    assert "Too many levels of symbolic links" in err.message
    assert where(err) == ("loop.nft", *at)
    assert err.source_line is not None and "^" in err.render()


def test_nft_loop_closed_by_a_later_command():
    text = ("table inet f {\n chain a { jump b }\n chain b { accept }\n}\n"
            "add rule inet f b ct state new jump a\n")
    err = refusal(text)
    assert "jump loop in table inet f: a -> b -> a" in err.message
    assert where(err) == ("loop.nft", 5, 32)


def test_nft_no_loop():
    """Same chain names in two tables, a diamond, a jump back that is gone
    (flushed) and a return do not loop."""
    text = ("table ip t {\n chain a { type filter hook input priority 0; jump b; jump c }\n"
            " chain b { jump d }\n chain c { jump d }\n chain d { return }\n}\n"
            "table ip u {\n chain d { jump a }\n chain a { accept }\n}\n"
            "add rule ip t d jump a\nflush chain ip t d\n")
    ruleset = parsers.parse(text, "ok.nft", "nftables")
    assert Evaluator(ruleset).evaluate(SSH).verdict == "accept"


def test_nft_loop_in_an_included_file_is_located_there(tmp_path):
    (tmp_path / "chains.nft").write_text("add rule ip t b \\\n   jump a\n")
    main = tmp_path / "main.nft"
    main.write_text('table ip t {\n chain a { jump b }\n chain b { }\n}\ninclude "chains.nft"\n')
    with pytest.raises(RuleAnalyzerError) as info:
        loader.load(main)
    assert where(info.value) == (str(tmp_path / "chains.nft"), 2, 4)
    assert "a -> b -> a" in info.value.message


# -- nft JSON ------------------------------------------------------------------------------------
def test_nft_json_jump_loop_is_refused():
    text = _doc({"chain": {**T, "name": "a"}}, {"chain": {**T, "name": "b"}},
                {"rule": {**T, "chain": "a", "expr": [{"jump": {"target": "b"}}]}},
                {"rule": {**T, "chain": "b", "expr": [{"counter": None}, {"goto": {"target": "a"}}]}})
    err = refusal(text, "loop.json", "nft-json")
    assert "jump loop in table ip t: a -> b -> a" in err.message
    assert where(err) == ("loop.json", "nftables[4].rule.expr[1]")


def test_nft_json_verdict_map_loop_in_a_batch_is_refused():
    vmap = {"vmap": {"key": {"payload": {"protocol": "tcp", "field": "dport"}},
                     "data": {"set": [[22, {"accept": None}], [80, {"jump": {"target": "a"}}]]}}}
    text = json.dumps({"nftables": [{"add": {"table": {"family": "ip", "name": "t"}}},
                                    {"add": {"chain": {**T, "name": "a"}}},
                                    {"add": {"rule": {**T, "chain": "a", "expr": [vmap]}}}]})
    err = refusal(text, "loop.json", "nft-json")
    assert "jump loop in table ip t: a -> a" in err.message
    assert where(err) == ("loop.json", "nftables[2].add.rule.expr[0]")


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


def test_nft_100k_long_loop_is_refused_at_its_end():
    err = refusal(_nft_chain(100_000, loop=True), "deep.nft")
    assert err.message.startswith("jump loop in table ip t: c0 -> c1 -> c2 -> ")
    assert where(err) == ("deep.nft", 100_002, 17)
    assert len(err.render()) < 1000  # the 100k names are not printed
    err = refusal(_nft_json_chain(20_000, loop=True), "deep.json", "nft-json")
    assert err.message.startswith("jump loop in table ip t: c0 -> c1 -> ")
    assert where(err) == ("deep.json", f"nftables[{1 + 20_000 + 19_999}].rule.expr[0]")


@pytest.mark.parametrize("dialect, make", [("nftables", _nft_chain), ("nft-json", _nft_json_chain)])
def test_nft_jump_chains_parse_in_linear_time(dialect, make):
    assert_linear(lambda text: parsers.parse(text, "chain", dialect), make, 1_250)


def test_find_loop_prefilter_answers_as_the_search_does():
    # find_loop first drops edges that cannot be on a loop (a few rounds of
    # set operations); when none remain it answers None without searching
    import random

    from ruleanalyzer.parsers.jumploops import _search

    rng = random.Random(9)
    for _ in range(3000):
        nodes = rng.randint(1, 9)
        edges = [(rng.randrange(nodes), rng.randrange(nodes)) for _ in range(rng.randint(0, 12))]
        if rng.random() < 0.5:  # mostly layered, like kube-proxy's chains
            edges = [(a, b) for a, b in edges if a < b] + edges[:rng.randint(0, 2)]
        assert find_loop(edges) == _search(edges), edges
    chain = [(i, i + 1) for i in range(50)]  # longer than the rounds: searched
    assert find_loop(chain) is None and find_loop(chain + [(50, 0)]) == _search(chain + [(50, 0)])
