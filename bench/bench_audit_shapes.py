"""Full ``audit`` of every generated shape (bench/shapes.py): CPU seconds,
peak RSS, CPU per check, and a digest of the findings (shown, suppressed
and stock-generated: code, place, message, details) to prove a speed
change leaves them identical. A default audit only counts dead stock
rules' findings: ``--include-generated`` puts every one in the digest.

    python bench/bench_audit_shapes.py --rules 20000              # every shape, one process each
    python bench/bench_audit_shapes.py --rules 100000 --shape kube-iptables
    python bench/bench_audit_shapes.py --rules 20000 --shape mixed --profile /tmp/mixed.prof

Targets (issue 21): 100k kube-proxy rules audited in <= 20 s and <= 800 MiB
peak on every shape. Each shape runs in its own process (ru_maxrss is a
process's peak) with the wall-clock budgets lifted; CPU seconds are what
counts on a shared machine, the load average is printed with them.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from ruleanalyzer.cli import huge_page_environment  # noqa: E402

SHAPES = ("project", "kube-iptables", "mixed", "kube-nftables")


def digest(result, path: str) -> str:
    """What a user can see of the findings, hashed (order as reported; the
    input's directory left out, so runs on copies compare)."""
    h = hashlib.sha256()
    folder = os.path.dirname(os.path.abspath(path)) + os.sep  # (a relative path: "/" would go)
    for kind, found in (("shown", result.findings), ("suppressed", result.suppressed),
                        ("generated", result.generated)):
        for f in found:
            w = f.where
            place = (w.file, w.line, w.column, w.path, w.table, w.chain) if w is not None else None
            h.update(repr((kind, f.code, f.severity, place, f.message, tuple(f.details),
                           tuple((a.file, a.line) for a in f.also))).replace(folder, "").encode())
    return h.hexdigest()[:16]


def _status() -> tuple[float, float]:
    """``(RSS, peak RSS)`` of this process now, MiB (Linux; zeros elsewhere)."""
    try:
        with open("/proc/self/status") as f:
            kv = dict(line.split(":", 1) for line in f if ":" in line)
        return int(kv["VmRSS"].split()[0]) / 1024, int(kv["VmHWM"].split()[0]) / 1024
    except (OSError, KeyError, ValueError):
        return 0.0, 0.0


def _cudd_nodes(space) -> tuple[int, ...] | None:
    """``(nodes, dead nodes, garbage collections, their milliseconds)`` of
    ``space``'s CUDD manager, read in O(1) (``len(bdd)`` counts the live
    nodes by visiting every node: seconds at 100k rules); None without
    dd.cudd."""
    import ctypes

    from ruleanalyzer.space._leq import _manager

    manager = _manager(space.bdd) if space is not None else None
    if manager is None:
        return None
    from dd import cudd

    lib = ctypes.CDLL(cudd.__file__)
    out = []
    for name, kind in (("Cudd_ReadKeys", ctypes.c_uint), ("Cudd_ReadDead", ctypes.c_uint),
                       ("Cudd_ReadGarbageCollections", ctypes.c_int),
                       ("Cudd_ReadGarbageCollectionTime", ctypes.c_long),
                       ("Cudd_ReadPeakNodeCount", ctypes.c_long), ("Cudd_ReadSlots", ctypes.c_uint),
                       ("Cudd_ReadMinDead", ctypes.c_uint), ("Cudd_ReadMemoryInUse", ctypes.c_size_t),
                       ("Cudd_ReadCacheSlots", ctypes.c_uint), ("Cudd_ReadCacheLookUps", ctypes.c_double),
                       ("Cudd_ReadCacheHits", ctypes.c_double)):
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = [ctypes.c_void_p], kind
        out.append(fn(manager))
    return tuple(out)


def one(path: str, profile: str | None, stages: bool = False, include_generated: bool = False) -> None:
    """Audit ``path`` in this process and print one line of figures."""
    from ruleanalyzer import audit as audit_mod
    from ruleanalyzer.checks import registry
    from ruleanalyzer.checks.base import Context
    from ruleanalyzer.loader import load

    Context.analysis_seconds = Context.audit_seconds = 0  # a loaded machine must not abandon it
    registry()
    per_check: dict[str, float] = {}
    run = audit_mod._run_checks

    def timed(ruleset, codes, options, ctx, reg, findings, done):
        for code in codes:
            t = time.process_time()
            run(ruleset, [code], options, ctx, reg, findings, done)
            per_check[code] = per_check.get(code, 0.0) + time.process_time() - t
            if stages:  # where the audit's peak is: the walk (the first to ask) or later
                rss, hwm = _status()
                nodes = _cudd_nodes(ctx._space)
                live = (f", BDD {nodes[0] / 1e6:.2f}M nodes ({nodes[1] / 1e6:.2f}M dead), "
                        f"{nodes[2]} CUDD collections {nodes[3] / 1000:.1f} s, peak {nodes[4] / 1e6:.2f}M "
                        f"nodes, {nodes[5] / 1e6:.2f}M slots (collects past {nodes[6] / 1e6:.2f}M dead), "
                        f"CUDD {nodes[7] / 2**20:.0f} MiB, cache {nodes[8] / 2**20:.2f}M entries "
                        f"{nodes[10] / max(nodes[9], 1):.1%} hits of {nodes[9] / 1e6:.0f}M" if nodes else "")
                print(f"  after {code}: {time.process_time() - cpu:.1f} s CPU, RSS {rss:.0f} MiB, "
                      f"peak {hwm:.0f} MiB{live}", flush=True)

    audit_mod._run_checks = timed
    cpu = time.process_time()
    ruleset = load(path)
    parsed = time.process_time() - cpu
    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    result = audit_mod.run_audit([ruleset], include_generated=include_generated)
    if prof is not None:
        prof.disable()
        prof.dump_stats(profile)
    took = time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    top = sorted(per_check.items(), key=lambda kv: -kv[1])[:6]
    print(f"{Path(path).name}: {ruleset.rule_count} rules, parse {parsed:.1f} s, parse + audit "
          f"{took:.1f} s CPU, peak {peak:.0f} MiB, load {os.getloadavg()[0]:.1f}, "
          f"malloc {os.environ.get('GLIBC_TUNABLES') or 'default'}, "
          f"findings {len(result.findings)}+{len(result.suppressed)}+{len(result.generated)} "
          f"(stock hidden {result.generated_hidden}) "
          f"digest {digest(result, path)} shown {result.counts()}")
    print("  slowest checks (CPU s, the first to ask pays for the shared analyses): "
          + ", ".join(f"{c} {s:.1f}" for c, s in top), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=100_000)
    parser.add_argument("--shape", action="append", choices=SHAPES)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--profile", help="write a cProfile of the audit here (one shape)")
    parser.add_argument("--stages", action="store_true",
                        help="print CPU, RSS, peak RSS and live BDD nodes after each check")
    parser.add_argument("--include-generated", action="store_true",
                        help="audit as `audit --include-generated` (every stock finding worked out and "
                             "in the digest; by default a dead stock rule's is only counted)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=INT",
                        help="set a constant of ruleanalyzer.space.packetset first (CUDD tuning, "
                             "e.g. MAX_CACHE_ENTRIES=2097152)")
    parser.add_argument("--plain-malloc", action="store_true",
                        help="run the audits without the environment `ruleanalyzer audit` gives itself "
                             "(cli.huge_page_environment: transparent huge pages for the heap)")
    parser.add_argument("--file", help=argparse.SUPPRESS)  # the child process's input
    args = parser.parse_args()
    if args.file:
        from ruleanalyzer.space import packetset

        for item in args.set:
            name, value = item.split("=", 1)
            if not hasattr(packetset, name):
                parser.error(f"--set: ruleanalyzer.space.packetset has no {name}")
            setattr(packetset, name, int(value))
        one(args.file, args.profile, args.stages, args.include_generated)
        return
    with tempfile.TemporaryDirectory() as tmp:
        for shape in args.shape or SHAPES:
            path = os.path.join(tmp, f"{shape}-{args.rules}.rules")
            gen = [sys.executable, str(HERE / "shapes.py"), "--rules", str(args.rules), shape, path]
            if args.seed is not None:
                gen[2:2] = ["--seed", str(args.seed)]
            subprocess.run(gen, check=True)
            cmd = [sys.executable, __file__, "--file", path] + [f"--set={x}" for x in args.set]
            if args.profile:
                cmd += ["--profile", args.profile]
            if args.stages:
                cmd.append("--stages")
            if args.include_generated:
                cmd.append("--include-generated")
            # as the command line runs an audit (the figures are a user's)
            env = None if args.plain_malloc else huge_page_environment(["audit"])
            subprocess.run(cmd, check=True, env=env)


if __name__ == "__main__":
    main()
