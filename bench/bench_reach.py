"""How long exact reachability takes on big rulesets.

    python bench/bench_reach.py [--kubeproxy N] [--all-dumps]

Times ``space.reach.analyze`` and ``unreachable_rules()`` (the shadowing
check, blockers included) per hook on the largest iptables dumps of the
corpus (the ip6tables dump and its IPv4 sibling), and on a generated
kube-proxy ruleset when ``bench/kubeproxy.py`` is present.

Times are CPU seconds of this process (``time.process_time``), so a busy
machine inflates them less than wall-clock time would; BDD figures are the
manager's live nodes after the analysis and the peak RSS so far.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ruleanalyzer import loads  # noqa: E402
from ruleanalyzer.space.reach import analyze  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus" / "iptables" / "net-network"


def measure(name: str, ruleset, family: int) -> float:
    """Print and return the total CPU seconds over the three hooks."""
    total = 0.0
    for hook in ("input", "forward", "output"):
        start = time.process_time()
        reach = analyze(ruleset, hook, family)
        mid = time.process_time()
        dead = reach.unreachable_rules()
        end = time.process_time()
        total += end - start
        blockers = sum(len(b) for _, b in dead)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        print(f"{name:40} {hook:8} rules reached {len(reach.rules()):6}  analyze {mid - start:6.2f}s"
              f"  unreachable {end - mid:6.2f}s  ({len(dead)} dead, {blockers} blockers)"
              f"  nodes {len(reach.space.bdd):8}  rss {rss} MiB", flush=True)
        del reach, dead
    print(f"{name:40} total {total:.2f}s CPU for {ruleset.rule_count} rules", flush=True)
    return total


def largest_dumps(count: int = 2) -> list[Path]:
    files = [p for p in CORPUS.glob("*") if p.is_file()] if CORPUS.is_dir() else []
    return sorted(files, key=lambda p: p.stat().st_size, reverse=True)[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeproxy", type=int, default=100_000, help="rules to generate (0: skip)")
    parser.add_argument("--dumps", type=int, default=2, help="how many of the largest dumps")
    args = parser.parse_args()
    for dump in largest_dumps(args.dumps):
        text = dump.read_text(errors="replace")
        family = 6 if "ip6tables" in dump.name else 4
        measure(dump.name[-40:], loads(text, dialect="iptables"), family)
    if args.kubeproxy:
        try:
            from bench.kubeproxy import generate  # type: ignore
        except ImportError:
            print("bench/kubeproxy.py not present: kube-proxy benchmark skipped")
            return
        generated = generate(args.kubeproxy)
        ruleset = loads(generated, dialect="iptables") if isinstance(generated, str) else generated
        measure(f"kube-proxy {args.kubeproxy}", ruleset, 4)


if __name__ == "__main__":
    main()
