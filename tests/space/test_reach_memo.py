"""The walk remembers a few chain runs (the last used, ``MEMO_SIZE``) so a
chain that jumps twice in a row to the next is walked once per set it is
entered with, not 2^n times."""

from ruleanalyzer import loads
from ruleanalyzer.space import reach as reach_mod


def branching(n: int, rules: int) -> str:
    """Each chain jumps twice to the next; the last holds ``rules`` rules."""
    lines = ["*filter", ":INPUT DROP [0:0]"] + [f":C{i} - [0:0]" for i in range(n + 1)]
    lines += ["-A INPUT -j C0"] + [f"-A C{i} -j C{i + 1}\n-A C{i} -j C{i + 1}" for i in range(n)]
    lines += [f"-A C{n} -p tcp --dport {1000 + k} -j ACCEPT" for k in range(rules)]
    return "\n".join(lines + ["COMMIT", ""])


def _runs(n: int, monkeypatch) -> int:
    """Chain runs the walk of ``branching(n)`` made (its last rules reached)."""
    runs = []

    class Counted(reach_mod._Run):
        __slots__ = ()

        def __init__(self, *args):
            super().__init__(*args)
            runs.append(1)

    monkeypatch.setattr(reach_mod, "_Run", Counted)
    ruleset = loads(branching(n, 20), dialect="iptables")
    reach = reach_mod.analyze(ruleset, "input", 4)
    last = ruleset.tables[0].chains[f"C{n}"].rules
    assert not reach.is_unreachable(last[0]) and not reach.is_unreachable(last[-1])
    assert not reach.accepted.upper.is_empty()
    return len(runs)


def test_branching_jumps_are_walked_a_few_times_per_chain(monkeypatch):
    # each chain is entered with a few distinct sets (the second jump gets
    # what the first did not accept): linear, where 2^(n+1) runs were naive
    assert _runs(12, monkeypatch) <= 8 * 13
    assert _runs(24, monkeypatch) <= 8 * 25


def test_without_the_memo_the_runs_double_per_chain(monkeypatch):
    """(what the test above would see if the memo kept nothing useful)"""
    monkeypatch.setattr(reach_mod, "MEMO_MIN_RULES", 10**9)
    assert _runs(10, monkeypatch) >= 2 ** 10
