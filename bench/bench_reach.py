"""How long exact reachability takes on big rulesets.

    python bench/bench_reach.py [--kubeproxy N]

Times ``space.reach.analyze`` plus ``unreachable_rules()`` (the shadowing
check) per hook on the largest iptables dump of the corpus, and on a
generated kube-proxy ruleset when ``bench/kubeproxy.py`` is present.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ruleanalyzer import loads  # noqa: E402
from ruleanalyzer.space.reach import analyze  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus" / "iptables" / "net-network"


def measure(name: str, ruleset, family: int) -> float:
    """Print and return the total seconds over the three hooks."""
    total = 0.0
    for hook in ("input", "forward", "output"):
        start = time.perf_counter()
        reach = analyze(ruleset, hook, family)
        mid = time.perf_counter()
        dead = reach.unreachable_rules()
        end = time.perf_counter()
        total += end - start
        print(f"{name:40} {hook:8} rules reached {len(reach.rules()):6}  analyze {mid - start:6.2f}s"
              f"  unreachable {end - mid:6.2f}s  ({len(dead)} dead)")
    print(f"{name:40} total {total:.2f}s for {ruleset.rule_count} rules")
    return total


def largest_dump() -> Path | None:
    files = [p for p in CORPUS.glob("*") if p.is_file()] if CORPUS.is_dir() else []
    return max(files, key=lambda p: p.stat().st_size) if files else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeproxy", type=int, default=100_000, help="rules to generate (0: skip)")
    args = parser.parse_args()
    dump = largest_dump()
    if dump is not None:
        text = dump.read_text(errors="replace")
        family = 6 if "ip6tables" in dump.name else 4
        measure(dump.name[:40], loads(text, dialect="iptables"), family)
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
