"""Benchmark: parse kube-proxy-shaped iptables-save files.

Prints parse time (wall and CPU: the machine may be busy with other work,
so CPU time is the steadier figure), rules/s and peak memory for 10k and 100k rules, and the
ratio to ``iptables-restore --test`` on the same file, run inside a
throw-away network namespace (skipped when not root or without ip/iptables).

    python bench/bench_parse_iptables.py [--sizes 10000 100000]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from kubeproxy import generate  # noqa: E402

from ruleanalyzer.parsers import iptables  # noqa: E402


def time_parse(text: str, name: str) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, rules)."""
    start, cpu = time.perf_counter(), time.process_time()
    ruleset = iptables.parse(text, name)
    return time.perf_counter() - start, time.process_time() - cpu, ruleset.rule_count


def peak_memory(text: str, name: str) -> int:
    tracemalloc.start()
    iptables.parse(text, name)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def restore_test_seconds(path: str) -> tuple[float, float] | None:
    """``iptables-restore --test`` in a fresh namespace: (wall, CPU seconds),
    None when impossible."""
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("iptables-restore"):
        return None
    ns = f"rabench{os.getpid()}"
    if subprocess.run(["ip", "netns", "add", ns], capture_output=True).returncode:
        return None
    try:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(["ip", "netns", "exec", ns, "iptables-restore", "--test", path],
                              capture_output=True, timeout=600)
        elapsed = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        return (elapsed, cpu) if done.returncode == 0 else None
    finally:
        subprocess.run(["ip", "netns", "delete", ns], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--no-restore", action="store_true", help="skip iptables-restore --test")
    args = parser.parse_args()
    print(f"{'rules':>8} {'parse s':>8} {'rules/s':>9} {'cpu s':>7} {'cpu r/s':>9} {'peak MB':>8} "
          f"{'restore s':>10} {'ratio':>6} {'rst cpu':>8} {'cpu ratio':>9}")
    for size in args.sizes:
        text = generate(size)
        with tempfile.NamedTemporaryFile("w", suffix=".rules", delete=False) as handle:
            handle.write(text)
            path = handle.name
        try:
            seconds, cpu, rules = time_parse(text, path)
            peak = peak_memory(text, path) / 1e6
            restore = None if args.no_restore else restore_test_seconds(path)
            ratio = f"{seconds / restore[0]:.1f}x" if restore else "-"
            restore_text = f"{restore[0]:.2f}" if restore else "-"
            restore_cpu = f"{restore[1]:.2f}" if restore else "-"
            cpu_ratio = f"{cpu / restore[1]:.1f}x" if restore and restore[1] > 0 else "-"
            print(f"{rules:>8} {seconds:>8.2f} {rules / seconds:>9.0f} {cpu:>7.2f} {rules / cpu:>9.0f} "
                  f"{peak:>8.0f} "
                  f"{restore_text:>10} {ratio:>6} {restore_cpu:>8} {cpu_ratio:>9}")
        finally:
            os.unlink(path)


if __name__ == "__main__":
    main()
