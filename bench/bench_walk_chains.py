"""Where the packet-space walk spends its CPU, chain by chain.

    python bench/bench_walk_chains.py --rules 20000 --shape project
    python bench/bench_walk_chains.py --rules 20000 --shape kube-iptables --move
    python bench/bench_walk_chains.py --file some.rules

Walks every hook and IP version the audit walks (``Context.reach``) and
prints, per kind of chain (table and name, kube-proxy's per-service and
per-endpoint chains grouped: ``nat:KUBE-SEP``), how many runs it had, the
CPU seconds and CUDD cache lookups spent in those runs (not in the chains
they jump to), and the same for what the walk does outside any chain run
(merging verdicts, the input/forward fork, NAT and device guards). Also
CUDD's garbage collections and their seconds during the walk.

Read CPU, not lookups, across kinds of work: operations on the few big
sets past the DNATs (FORWARD, KUBE-FORWARD, the verdict merges) cost
~0.15 us of CPU per lookup, the many small ones of the endpoint chains
~0.75 us (node creation, Python). At 20k rules (session 8): with the
conntrack state on top of the BDD order (``--move``, fields.MOVE_CONNTRACK)
project's walk does 14.6M -> 11.3M lookups but KUBE-SEP's runs go 4.8 ->
6.5 s (their sets hold NEW and RELATED packets; with the state on top the
address parts are two copies: 170 -> 265 nodes per set entering a DNAT),
which the 5.8M big-set lookups it saves do not pay back.

CPU seconds are shared-machine figures: say the load average with them.
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def _counters(space):
    """``() -> (cache lookups, garbage collections, their ms)`` of
    ``space``'s CUDD manager, read in O(1); None without dd.cudd."""
    from ruleanalyzer.space._leq import _manager

    manager = _manager(space.bdd)
    if manager is None:
        return None
    from dd import cudd

    lib = ctypes.CDLL(cudd.__file__)
    fns = []
    for name, kind in (("Cudd_ReadCacheLookUps", ctypes.c_double),
                       ("Cudd_ReadGarbageCollections", ctypes.c_int),
                       ("Cudd_ReadGarbageCollectionTime", ctypes.c_long)):
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = [ctypes.c_void_p], kind
        fns.append(fn)
    return lambda: tuple(fn(manager) for fn in fns)


def kind(chain) -> str:
    """``table:name``, kube-proxy's generated chains by their prefix (its
    nftables mode's ``service-HASH-…`` / ``endpoint-HASH-…`` too)."""
    m = re.match(r"(KUBE-(?:SEP|SVC|SVL|EXT|FW|XLB)-|(?:service|endpoint|external|firewall)-(?=[A-Z0-9]{8}-))",
                 chain.name)
    table = chain.table.name if chain.table is not None else "?"
    return f"{table}:{m.group(1).rstrip('-') if m else chain.name}"


def one(path: str, move: bool) -> None:
    from ruleanalyzer.checks.base import Context
    from ruleanalyzer.loader import load
    from ruleanalyzer.space import fields, reach
    from ruleanalyzer.space.packetset import cyclic_gc_paused

    fields.MOVE_CONNTRACK = move or fields.MOVE_CONNTRACK
    Context.analysis_seconds = 0
    ruleset = load(path)
    ctx = Context(ruleset)
    read = _counters(ctx.space) or (lambda: (0.0, 0, 0))
    stats: dict[str, list] = {}  # kind -> [runs, CPU s, lookups] outside nested runs
    nested: list[list] = []  # per run going on: [CPU s, lookups] of the runs it entered
    run_chain = reach._Walker._run_chain
    effect_run = getattr(reach._Walker, "_effect_run", None)  # (a one-rule chain's run, or None)

    def timing(run):
        def timed(self, chain, low, up, c, depth):
            t, n = time.process_time(), read()[0]
            nested.append([0.0, 0.0])
            out = None
            try:
                out = run(self, chain, low, up, c, depth)
                return out
            finally:
                inner_t, inner_n = nested.pop()
                dt, dn = time.process_time() - t, read()[0] - n
                row = stats.setdefault(kind(chain), [0, 0.0, 0.0])
                row[0] += out is not None
                row[1] += dt - inner_t
                row[2] += dn - inner_n
                if nested:
                    nested[-1][0] += dt
                    nested[-1][1] += dn
        return timed

    reach._Walker._run_chain = timing(run_chain)
    if effect_run is not None:
        reach._Walker._effect_run = timing(effect_run)
    try:
        # The collector paused as the audit has it (audit.run_audit): else
        # its first pass after the walk (over every record and run made,
        # ~0.2 s at 20k rules, seconds at 100k) counted as "outside chain runs".
        with cyclic_gc_paused():
            start, cpu = read(), time.process_time()
            for family in ctx.families():
                for hook in ctx.hooks():
                    ctx.reach(hook, family)
            took, end = time.process_time() - cpu, read()
    finally:
        reach._Walker._run_chain = run_chain
        if effect_run is not None:
            reach._Walker._effect_run = effect_run
    lookups = end[0] - start[0]
    print(f"{Path(path).name}: {ruleset.rule_count} rules, layout on top {ctx.space.layout.on_top}, "
          f"walk {took:.1f} s CPU, {lookups / 1e6:.2f}M lookups, {end[1] - start[1]} CUDD collections "
          f"{(end[2] - start[2]) / 1000:.1f} s, load {os.getloadavg()[0]:.1f}")
    inside_t = sum(r[1] for r in stats.values())
    inside_n = sum(r[2] for r in stats.values())
    rows = sorted(stats.items(), key=lambda kv: -kv[1][1])
    rows = [(k, r) for k, r in rows if r[1] >= 0.01 * took] + [("outside chain runs", ["", took - inside_t,
                                                                                     lookups - inside_n])]
    for name, (runs, sec, n) in rows:
        per = f"{sec / n * 1e6:.2f} us/lookup" if n else ""
        print(f"  {name:28s} {runs!s:>7} runs {sec:7.2f} s {n / 1e6:7.2f}M lookups  {per}", flush=True)


def main() -> None:
    from shapes import each_in_own_process, per_shape_arguments

    parser = per_shape_arguments(__doc__.splitlines()[0])
    parser.add_argument("--move", action="store_true",
                        help="conntrack state/status on top where the layout's criterion allows "
                             "(fields.MOVE_CONNTRACK)")
    args = parser.parse_args()
    if args.file:
        one(args.file, args.move)
        return
    each_in_own_process(__file__, args.shape, args.rules, ["--move"] if args.move else [])


if __name__ == "__main__":
    main()
