"""What hostile shapes cost (issue 16; docs/limits.md "Measured bounds").

    python bench/bench_hostile.py ranges 125 250 500 1000
    python bench/bench_hostile.py branching 16 22 40
    python bench/bench_hostile.py defines 16 20 24

``ranges N``: a full audit of N iptables rules with random ``iprange``
source and destination ranges and random port ranges, ACCEPT and DROP
mixed (the packet space grows superlinearly on them; past the budgets the
audit reports RA003). ``branching N``: one packet through chains that each
jump twice to the next, N deep. ``defines N``: parsing N nft defines each
doubling the one before (refused past ``MAX_DEFINE_TOKENS``).

CPU seconds of this process (``time.process_time``) and the peak RSS so
far; one process per size (sizes are run in child processes so that each
peak is its own).
"""

from __future__ import annotations

import argparse
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def random_ranges(n: int, seed: int = 16) -> str:
    rng = random.Random(seed)

    def address() -> tuple[int, ...]:
        return (rng.randrange(1, 223), rng.randrange(256), rng.randrange(256), rng.randrange(256))

    def span() -> str:
        a, b = sorted([address(), address()])
        return "-".join(".".join(map(str, x)) for x in (a, b))

    lines = ["*filter", ":INPUT DROP [0:0]"]
    for _ in range(n):
        lo = rng.randrange(1, 65000)
        hi = rng.randrange(lo, 65535)
        lines.append(f"-A INPUT -m iprange --src-range {span()} --dst-range {span()} -p tcp --dport {lo}:{hi} "
                     f"-j {rng.choice(('ACCEPT', 'DROP'))}")
    return "\n".join(lines + ["COMMIT", ""])


def branching(n: int) -> str:
    lines = ["*filter", ":INPUT DROP [0:0]"] + [f":C{i} - [0:0]" for i in range(n + 1)]
    lines += ["-A INPUT -j C0"] + [f"-A C{i} -j C{i + 1}\n-A C{i} -j C{i + 1}" for i in range(n)]
    return "\n".join(lines + [f"-A C{n} -p tcp --dport 22 -j ACCEPT", "COMMIT", ""])


def defines(n: int) -> str:
    return ("define a0 = 10.0.0.1\n" + "".join(f"define a{i} = {{ $a{i - 1}, $a{i - 1} }}\n" for i in range(1, n))
            + f"table ip t {{ chain c {{ type filter hook input priority 0; ip saddr $a{n - 1} accept }} }}\n")


def one(kind: str, n: int) -> str:
    from ruleanalyzer import parsers
    from ruleanalyzer.errors import RuleAnalyzerError

    start = time.process_time()
    if kind == "ranges":
        from ruleanalyzer.audit import run_audit

        result = run_audit([parsers.parse(random_ranges(n), "ranges.rules", "iptables")])
        outcome = f"{len(result.findings)} findings, RA003: {result.counts().get('RA003', 0)}"
    elif kind == "branching":
        from ruleanalyzer.engine import Evaluator
        from ruleanalyzer.packets import make_packet

        ruleset = parsers.parse(branching(n), "branch.rules", "iptables")
        result = Evaluator(ruleset).evaluate(make_packet(src="192.0.2.1", dst="198.51.100.7", dport=22))
        outcome = f"verdict {result.verdict}"
    else:
        try:
            parsers.parse(defines(n), "defines.nft", "nftables")
            outcome = "parsed"
        except RuleAnalyzerError as err:
            outcome = f"refused: {err.message[:60]}"
    spent = time.process_time() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    return f"{kind} {n}: {spent:.2f} s CPU, {rss} MB peak RSS, {outcome}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", nargs="?", choices=("ranges", "branching", "defines"), default="ranges")
    parser.add_argument("sizes", nargs="*", type=int, help="sizes to measure, each in its own process "
                        "(default for ranges: 125 250 500)")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # (one size, in this process)
    args = parser.parse_args(argv)
    if args.one:
        print(one(args.kind, args.sizes[0]), flush=True)
        return 0
    for n in args.sizes or ([125, 250, 500] if args.kind == "ranges" else parser.error("give the sizes")):
        subprocess.run([sys.executable, __file__, "--one", args.kind, str(n)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
