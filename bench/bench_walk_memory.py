"""What the packet-space walk leaves live in the BDD, holder by holder.

    python bench/bench_walk_memory.py --rules 20000 --shape project
    python bench/bench_walk_memory.py --file some.rules

Walks every hook and IP version the audit walks (``Context.reach``), then
takes the holders away one at a time and prints how many live BDD nodes
each held alone (nodes shared with a holder taken later count there):
the rules' matched sets, the reaching sets the runs keep (checkpoints, the
split parts), what the runs keep to make the others again (match bounds,
what came back), the rules' own matches, the encode and cube caches and
the verdict sets. Also the manager's peak node count (live and dead), the
memory CUDD holds and the process's peak RSS, CPU seconds of the walk and
the load average (a shared machine). Issue 21: <= 800 MiB at 100k rules.
"""

from __future__ import annotations

import gc
import os
import resource
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def _holders(ctx, found):
    """``(name, drop)``: each takes one holder's references away."""
    records = [rec for r in found for rec in r._records.values()]
    runs = {id(part.run): part.run for rec in records for part in rec.parts}.values()
    false = ctx.space.false

    def matched():
        for rec in records:
            rec._merged = None
            for part in rec.parts:
                part.ml = part.mu = false

    def kept():
        for run in runs:
            run.kept.clear()
            run.split = None
            if isinstance(run.recent, list):
                run.recent[0] = None
            else:
                run.recent.runs.clear()

    def steps():
        for run in runs:
            run.steps.clear()

    def matches():
        for rec in records:
            rec.match_l = rec.match_u = false

    def encode():
        ctx.space.__dict__.pop("_encode_cache", None)

    def cubes():
        ctx.space._cube_cache.clear()

    def verdicts():
        for r in found:  # (their functions hold the walk's path)
            r.accepted = r.dropped = r.undecided = r.arriving = None

    return [("matched sets", matched), ("kept reaching sets", kept), ("run steps", steps),
            ("rules' matches", matches), ("encode cache", encode), ("cube cache", cubes),
            ("verdict sets", verdicts)]


def one(path: str) -> None:
    from ruleanalyzer.checks.base import Context
    from ruleanalyzer.loader import load

    Context.analysis_seconds = 0
    ruleset = load(path)
    ctx = Context(ruleset)
    bdd = ctx.space.bdd
    base = len(bdd)
    cpu = time.process_time()
    found = [r for f in ctx.families() for h in ctx.hooks() if (r := ctx.reach(h, f)) is not None]
    took = time.process_time() - cpu
    gc.collect()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ('mem' is in bytes since dd 0.5.7)
        stats = bdd.statistics()
    live = len(bdd)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{Path(path).name}: {ruleset.rule_count} rules, walk {took:.1f} s CPU, load "
          f"{os.getloadavg()[0]:.1f}, peak RSS {peak:.0f} MiB, CUDD {stats['mem'] / 2**20:.0f} MiB, "
          f"peak nodes {stats['peak_nodes'] / 1e6:.2f}M (live {stats['peak_live_nodes'] / 1e6:.2f}M), "
          f"live after the walk {live / 1e6:.2f}M (space {base / 1e6:.2f}M)")
    for name, drop in _holders(ctx, found):
        before = len(bdd)
        drop()
        gc.collect()
        print(f"  {name}: {(before - len(bdd)) / 1e6:.2f}M")
    print(f"  rest: {(len(bdd) - base) / 1e6:.2f}M", flush=True)


def main() -> None:
    from shapes import each_in_own_process, per_shape_arguments

    args = per_shape_arguments(__doc__.splitlines()[0]).parse_args()
    if args.file:
        one(args.file)
        return
    each_in_own_process(__file__, args.shape, args.rules)


if __name__ == "__main__":
    main()
