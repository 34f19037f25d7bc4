"""The random kernel suites at a size CI cannot afford (issue #15 asks for
≥ 50,000 packets per dialect over ≥ 200 random rulesets), run by hand:

    sudo .venv/bin/python bench/kernel_agreement.py --dialect nftables --rulesets 250 --packets 200
    sudo .venv/bin/python bench/kernel_agreement.py --dialect iptables --rulesets 250 --packets 200 --first-seed 1000

Each ruleset is loaded into fresh network namespaces, its probes sent, and
the kernel's verdict and deciding rule compared with the analyzer's
(tests/kernel/compare.py, the same check the CI suites run with 51 x 100).
Prints the counts line (packets, disagreements, expected unknowns, rulesets
not parsed, harness problems) and the first disagreements; exit 1 if any.
Needs root, ip, nft / iptables-restore. Run under ``nice`` on a shared machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dialect", choices=("nftables", "iptables"), required=True)
    parser.add_argument("--rulesets", type=int, default=250)
    parser.add_argument("--packets", type=int, default=200, help="probes per ruleset (at most 999)")
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("--chunk", type=int, default=25, help="rulesets per batch (a progress line each)")
    args = parser.parse_args(argv)

    import pytest

    from tests.kernel.compare import check_random_rulesets
    from tests.kernel.netns import missing_prerequisites

    if args.dialect == "nftables":
        from tests.kernel.gen_nftables import generate
        tools = ("ip", "nft", "stdbuf")
    else:
        from tests.kernel.gen_iptables import generate
        tools = ("ip", "iptables-restore", "ip6tables-restore", "iptables-save")
    reason = missing_prerequisites(tools)
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    seeds = list(range(args.first_seed, args.first_seed + args.rulesets))
    started, failed = time.monotonic(), 0
    for start in range(0, len(seeds), args.chunk):
        chunk = seeds[start:start + args.chunk]
        try:
            check_random_rulesets(generate, chunk, args.packets, args.dialect, f"{args.dialect} rulesets")
        except pytest.fail.Exception as exc:  # disagreements: print them, go on
            failed += 1
            print(str(exc)[:6000])
        except AssertionError as exc:  # too many unreadable packets (a loaded machine): go on
            print(f"batch {chunk[0]}-{chunk[-1]}: {str(exc)[:300]}")
        except Exception as exc:  # namespaces not made in time (a loaded machine): go on
            print(f"batch {chunk[0]}-{chunk[-1]}: harness failed: {type(exc).__name__}: {exc}")
        sys.stdout.flush()
    print(f"done: {len(seeds)} {args.dialect} rulesets x {args.packets} probes in "
          f"{time.monotonic() - started:.0f}s; {failed} batches with disagreements")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
