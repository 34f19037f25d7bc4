"""Audit speed and memory: the largest real dump's unreachable/shadow
analysis, a full audit of a kube-proxy-shaped ruleset, the whole corpus.

    python bench/bench_audit.py                 # all three
    python bench/bench_audit.py --only largest --only corpus
    python bench/bench_audit.py --kube-rules 20000

Targets (issue 6): shadow analysis of the largest corpus dump <= 2 s; full
audit of 100k kube-proxy rules <= 60 s and <= 2 GiB; whole corpus <= 60 s.
Memory is the peak resident set of this process (ru_maxrss), so run one
measurement per process for a clean figure.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ruleanalyzer import loads  # noqa: E402
from ruleanalyzer.audit import expand_paths, run_audit  # noqa: E402
from ruleanalyzer.checks import registry  # noqa: E402
from ruleanalyzer.loader import load  # noqa: E402

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def largest_dump() -> Path | None:
    best, size = None, 0
    for path in expand_paths([CORPUS / "iptables"]):
        try:
            n = load(path).rule_count
        except Exception:  # noqa: BLE001 - unparsable files are not candidates
            continue
        if n > size:
            best, size = Path(path), n
    return best


def bench_largest() -> None:
    path = largest_dump()
    if path is None:
        print("largest: corpus not found")
        return
    ruleset = load(path)
    registry()  # import the check modules first: module loading is not analysis
    start, cpu = time.perf_counter(), time.process_time()
    result = run_audit([ruleset], select=["RA101", "RA102", "RA103"])
    took, took_cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"largest dump {path.name}: {ruleset.rule_count} rules, unreachable/shadow analysis "
          f"{took:.2f} s wall, {took_cpu:.2f} s CPU ({len(result.findings)} findings; target <= 2 s), "
          f"peak {peak_mib():.0f} MiB")


def bench_kube(n_rules: int, time_limit: bool = True) -> None:
    from kubeproxy import generate
    from ruleanalyzer.checks.base import Context

    if not time_limit:  # on a shared machine the wall-clock budgets can abandon the analysis (RA003)
        Context.analysis_seconds = Context.audit_seconds = 0

    text = generate(n_rules)
    start, cpu = time.perf_counter(), time.process_time()
    ruleset = loads(text, dialect="iptables", name="kube.rules")
    parsed = time.perf_counter() - start
    result = run_audit([ruleset])
    took, took_cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"kube-proxy {ruleset.rule_count} rules: parse {parsed:.1f} s, parse + full audit {took:.1f} s wall, "
          f"{took_cpu:.1f} s CPU (target <= 60 s), peak {peak_mib():.0f} MiB (target <= 2048), "
          f"findings {result.counts()}")


def bench_corpus(max_rules: int | None) -> None:
    if not CORPUS.is_dir():
        print("corpus: not found")
        return
    start, cpu = time.perf_counter(), time.process_time()
    slowest: list[tuple[float, str]] = []
    last = [start]

    def progress(done, total, name):
        now = time.perf_counter()
        slowest.append((now - last[0], name))
        last[0] = now

    result = run_audit([CORPUS], progress=progress)
    took, took_cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"corpus: {len(result.inputs)} inputs ({len(result.bad_inputs)} unreadable), "
          f"{result.rule_count} rules, {took:.1f} s wall, {took_cpu:.1f} s CPU (target <= 60 s), "
          f"peak {peak_mib():.0f} MiB")
    print(f"  findings per code: {result.counts()}")
    for secs, name in sorted(slowest, reverse=True)[:5]:
        print(f"  slowest: {secs:5.1f} s {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=("largest", "kube", "corpus"))
    parser.add_argument("--kube-rules", type=int, default=100_000)
    parser.add_argument("--no-time-limit", action="store_true",
                        help="lift the per-analysis wall-clock budget (a loaded machine may hit it)")
    args = parser.parse_args()
    only = args.only or ["largest", "kube", "corpus"]
    if "largest" in only:
        bench_largest()
    if "kube" in only:
        bench_kube(args.kube_rules, time_limit=not args.no_time_limit)
    if "corpus" in only:
        bench_corpus(None)


if __name__ == "__main__":
    main()
