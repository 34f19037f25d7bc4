"""CUDD's reference counts survive Python's cyclic collector (issue #18: a
fleet worker died of ``cuddGarbageCollect: problem in table 0 / dead count
!= deleted``).

dd.cudd allocates the Python ``Function`` for a node CUDD returns before it
references the node; on CPython ≤ 3.11 that allocation may run the cyclic
collector, and if it frees the last holder of that same node (sitting in a
garbage cycle), the node dies and is then revived half-way (a live node with
dead children). ``space.packetset.cyclic_gc_paused`` keeps the collector
out of BDD work; every analysis entry point runs inside it.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap

import pytest

from ruleanalyzer.space import Space
from ruleanalyzer.space.packetset import cyclic_gc_paused

#: The same BDD computed again while its only holder sits in a garbage
#: cycle, with the collector set to run at the next allocation — inside
#: dd's wrap() of the result.
SCENARIO = """
import contextlib, gc
from ruleanalyzer.space import Space
from ruleanalyzer.space.packetset import cyclic_gc_paused
space = Space()
a, b = space.eq("dport", 22), space.eq("proto", 6)
with {guard}:
    cycle = [a & b]
    cycle.append(cycle)
    del cycle
    old = gc.get_threshold()
    gc.set_threshold(1)
    try:
        again = a & b
    finally:
        gc.set_threshold(*old)
try:
    space.bdd.assert_consistent()
    print("consistent")
except AssertionError:
    print("inconsistent")
"""


def _run(guard: str) -> str:
    out = subprocess.run([sys.executable, "-c", SCENARIO.format(guard=guard)], capture_output=True,
                         text=True, timeout=120)
    return out.stdout.strip().splitlines()[-1]


def test_the_collector_inside_dd_breaks_cudd_reference_counts():
    """The hazard itself (in a child process: CUDD aborts the process at its
    next garbage collection once the counts are wrong). If this starts to
    pass, dd references nodes before allocating and the guard is moot."""
    assert _run("contextlib.nullcontext()") == "inconsistent"


def test_with_the_collector_paused_the_counts_stay_right():
    assert _run("cyclic_gc_paused()") == "consistent"


def test_the_guard_restores_the_collector_and_nests():
    was = gc.isenabled()
    gc.enable()
    try:
        with cyclic_gc_paused():
            assert not gc.isenabled()
            with cyclic_gc_paused():
                assert not gc.isenabled()
            assert not gc.isenabled()  # the outer block still holds it
        assert gc.isenabled()
        gc.disable()
        with cyclic_gc_paused():
            pass
        assert not gc.isenabled()  # off before, off after
    finally:
        (gc.enable if was else gc.disable)()


#: A space and one of its sets in a garbage cycle, arranged so that the
#: collector clears the set's hold on its manager (tp_clear) first and the
#: manager's last other holder goes before the set itself is freed.
TEARDOWN = """
import gc, sys
from ruleanalyzer.space import packetset
from ruleanalyzer.space.packetset import Space
seen = []
sys.unraisablehook = lambda u: seen.append(str(u.exc_value))
for _ in range(3):
    gc.collect()
    space = Space()
    {unguard}
    gc.freeze()  # the space now lies behind the set in the collector's list
    a = space.eq("dport", 22) & space.eq("proto", 6)
    gc.collect()
    gc.unfreeze()
    cycle = [a, space]
    space.cycle = cycle
    del space, a, cycle
    gc.collect()
print(len(packetset._MANAGERS), "|".join(seen) or "clean")
"""


def _teardown(unguard: str) -> str:
    out = subprocess.run([sys.executable, "-c", TEARDOWN.format(unguard=unguard)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def test_a_space_in_a_garbage_cycle_is_freed_whole():
    """The manager outlives its sets' ``Function`` objects and is let go
    after the collection: no ``Still N nodes referenced upon shutdown`` (dd
    skips ``Cudd_Quit`` then, leaking CUDD's node table). Without the hold
    (the control), the same cycle gives dd's error three times."""
    assert _teardown("pass") == "0 clean"
    held, errors = _teardown("packetset._MANAGERS.clear()").split(" ", 1)
    assert errors.count("referenced upon shutdown") == 3


RULES = """*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -s 10.1.0.0/16 -p tcp --dport 22 -j ACCEPT
-A INPUT -p tcp --dport 443 -j ACCEPT
-A INPUT -s 10.3.0.0/24 -j DROP
COMMIT
"""


@pytest.fixture
def collector_seen(monkeypatch):
    """Whether the cyclic collector was on at each packet-space operation."""
    seen: list[bool] = []
    for name in ("eq", "prefix", "exist"):
        original = getattr(Space, name)

        def spy(self, *args, _original=original, **kwargs):
            seen.append(gc.isenabled())
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Space, name, spy)
    was = gc.isenabled()
    gc.enable()
    yield seen
    (gc.enable if was else gc.disable)()


def test_every_analysis_entry_point_pauses_the_collector(collector_seen, tmp_path):
    from ruleanalyzer.audit import check_ruleset
    from ruleanalyzer.checks import select
    from ruleanalyzer.diff import diff
    from ruleanalyzer.fleet import audit_host
    from ruleanalyzer.parsers import iptables
    from ruleanalyzer.policy import check, parse_policy

    from ..snapshot_factory import web_host

    old = iptables.parse(RULES, "old.rules")
    new = iptables.parse(RULES.replace("--dport 443", "--dport 8443"), "new.rules")
    check_ruleset(old, select(), {})
    diff(old, new, findings=False)
    check(old, parse_policy([{"allow": "22/tcp from 10.1.2.3"}], "policy"))
    audit_host(web_host(tmp_path / "web01", "web01"), select(), {})
    assert collector_seen and not any(collector_seen)


def test_what_a_long_lived_block_made_goes_to_the_oldest_generation():
    """A reader's model (``gc_paused(long_lived=True)``) is not walked by
    the next young collection: it lies in the oldest generation, and a
    garbage cycle made in the block is still freed by a full collection."""
    import weakref

    from ruleanalyzer.gcpause import gc_paused

    class Node:
        pass

    was = gc.isenabled()
    gc.enable()
    try:
        with gc_paused(long_lived=True):
            kept = [Node() for _ in range(100)]
            lost = Node()
            lost.me = lost
        gone = weakref.ref(lost)
        del lost
        oldest = {id(o) for o in gc.get_objects(generation=2)}
        assert all(id(o) in oldest for o in kept)
        gc.collect()
        assert gone() is None
    finally:
        if not was:
            gc.disable()
