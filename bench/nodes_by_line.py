"""Where an audit makes its BDD nodes: CUDD's node count (``Cudd_ReadKeys``)
read at every line the walk runs (``sys.settrace`` over one module,
``ruleanalyzer/space/reach.py`` by default) and each increase put on the
line, with its caller for the helpers many lines call. CUDD's garbage
collection is turned off, so the count only grows: the figures are nodes
made, dead or alive (the question issue 21's walk asks: most of its CPU is
CUDD's node-table misses, one per node made).

    python bench/shapes.py --rules 20000 kube-iptables /tmp/ki.rules
    python bench/nodes_by_line.py /tmp/ki.rules --top 30

Tracing costs ~5x the audit's CPU; the counts are exact (the same walk). A
line of another module shows as ``<out:file>`` where the traced module's
function returned to it and that module went on making nodes.
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

#: Functions whose lines are told apart by their caller (and the caller's
#: caller for the small helpers): the same operation serves many purposes.
BY_CALLER = {"_union_all", "<listcomp>", "_rule", "_nat_image", "_rest", "meet", "_assign",
             "_match_pair", "value", "_nat_whole"}
TWO_UP = {"<listcomp>", "value", "_rest", "_assign"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--module", default="space/reach.py", help="path suffix of the module traced")
    args = parser.parse_args()

    from dd import cudd

    from ruleanalyzer import audit as audit_mod
    from ruleanalyzer.checks import registry
    from ruleanalyzer.checks.base import Context
    from ruleanalyzer.loader import load
    from ruleanalyzer.space import packetset
    from ruleanalyzer.space._leq import _manager

    Context.analysis_seconds = Context.audit_seconds = 0
    registry()
    ruleset = load(args.file)
    lib = ctypes.CDLL(cudd.__file__)
    keys = lib.Cudd_ReadKeys
    keys.argtypes, keys.restype = [ctypes.c_void_p], ctypes.c_uint
    gc_off = lib.Cudd_DisableGarbageCollection
    gc_off.argtypes = [ctypes.c_void_p]
    made: collections.Counter = collections.Counter()
    runs: collections.Counter = collections.Counter()
    state = {"manager": None, "last": 0, "at": None}
    init = packetset.Space.__init__

    def space_init(self, *a, **k):
        init(self, *a, **k)
        if state["manager"] is None:  # the audit's space (the first made)
            state["manager"] = _manager(self.bdd)
            if state["manager"] is not None:
                gc_off(state["manager"])
                state["last"] = keys(state["manager"])

    packetset.Space.__init__ = space_init
    target = args.module

    def local(frame, event, arg):
        manager = state["manager"]
        if manager is not None:
            now = keys(manager)
            if now != state["last"]:
                made[state["at"]] += now - state["last"]
                state["last"] = now
        code = frame.f_code
        if event == "line":
            at = (code.co_name, frame.f_lineno)
            if code.co_name in BY_CALLER:
                up = frame.f_back
                up2 = up.f_back if code.co_name in TWO_UP and up.f_back is not None else up
                at += (up.f_code.co_name, up.f_lineno, up2.f_code.co_name, up2.f_lineno)
            state["at"] = at
            runs[at] += 1
        elif event == "return" and frame.f_back is not None:
            back = frame.f_back
            name = back.f_code.co_name if back.f_code.co_filename.endswith(target) \
                else f"<out:{os.path.basename(back.f_code.co_filename)}>"
            state["at"] = (name, back.f_lineno)
        return local

    def call(frame, event, arg):
        return local(frame, event, arg) if frame.f_code.co_filename.endswith(target) else None

    cpu = time.process_time()
    sys.settrace(call)
    try:
        audit_mod.run_audit([ruleset])
    finally:
        sys.settrace(None)
    if state["manager"] is not None:
        made[state["at"]] += keys(state["manager"]) - state["last"]
    print(f"{sum(made.values())} nodes made, {time.process_time() - cpu:.1f} s CPU traced")
    print(f"{'nodes':>10} {'runs':>9}  line (function, line[, caller, line, its caller, line])")
    for at, n in made.most_common(args.top):
        print(f"{n:>10} {runs[at]:>9}  {at}")


if __name__ == "__main__":
    main()
