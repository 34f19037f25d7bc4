"""CUDD reference-count stress: audit fleet hosts one after another in one
process, as a fleet worker does (packet spaces shared between hosts), and
after every host run CUDD's own consistency check (``Cudd_DebugCheck``
through dd's ``BDD.assert_consistent``: dead counts per subtable, keys,
reference counts against the parents that hold each node) on every live
packet space.

``.venv/bin/python bench/stress_cudd.py [HOSTS] [--seed N] [--gc N] [--per-worker N] [--every N]``

HOSTS defaults to 200. ``--gc N`` sets the cyclic collector's first
threshold to N (small values collect garbage cycles — and with them BDD
nodes — at many more points of the analysis). ``--per-worker N`` drops the
shared spaces every N hosts, as a fleet worker is replaced
(``fleet.HOSTS_PER_WORKER``). ``--every N`` checks after every Nth host
only (a check walks the whole node table: seconds on a busy machine; a
broken count stays broken, and CUDD aborts the process at its next garbage
collection anyway). Prints one line per failing check, progress every 10
hosts and a summary; exit status 1 if any check failed.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_fleet import make_fleet  # noqa: E402


def live_spaces() -> list:
    """Every packet space still alive (shared or not)."""
    from ruleanalyzer.space import Space

    return [o for o in gc.get_objects() if isinstance(o, Space)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("hosts", nargs="?", type=int, default=200, help="hosts to audit (default 200)")
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--gc", type=int, default=0, help="the cyclic collector's first threshold (0: Python's)")
    parser.add_argument("--per-worker", type=int, default=100, help="hosts per worker before its spaces are dropped")
    parser.add_argument("--every", type=int, default=1, help="check consistency after every N-th host")
    args = parser.parse_args()
    hosts, seed, threshold, per_worker, every = args.hosts, args.seed, args.gc, args.per_worker, args.every
    from ruleanalyzer.checks import base, select
    from ruleanalyzer.fleet import _forget_host, audit_host

    if threshold:
        gc.set_threshold(threshold, 10, 10)
    root = Path(tempfile.mkdtemp(prefix="ra-cudd-"))
    failures = checks = 0
    cpu0 = time.process_time()
    try:
        paths = make_fleet(root, hosts, seed=seed)
        codes = select()
        for n, path in enumerate(paths, 1):
            report = audit_host(path, codes, {})
            _forget_host(path)
            if report.failed:
                failures += 1
                print(f"host {n} {path}: failed: {report.failed}", flush=True)
            if n % 10 == 0:
                print(f"{n} hosts, {time.process_time() - cpu0:.0f} s CPU", flush=True)
            for space in live_spaces() if n % every == 0 or n == hosts else ():
                checks += 1
                try:
                    space.bdd.assert_consistent()
                except AssertionError as exc:
                    failures += 1
                    print(f"after host {n} ({Path(path).name}): CUDD check failed: {exc}", flush=True)
            if per_worker and n % per_worker == 0:
                base._SPACES.clear()
                gc.collect()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"{hosts} hosts (seed {seed}, gc threshold {threshold or 'default'}): {checks} CUDD checks, "
          f"{failures} failures, {time.process_time() - cpu0:.1f} s CPU")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
