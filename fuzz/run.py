"""Long-running fuzz driver: many seeded inputs per reader, outside CI.

    .venv/bin/python fuzz/run.py --runs 1000000 iptables nftables ...
    .venv/bin/python fuzz/run.py --seconds 600 --seed 7            # every reader

Each input is one of: a mutation of a real corpus file (most), random
printable text, or random bytes decoded the way the loader would. The oracle
is :func:`tests.fuzz.harness.check` (parse or a located RuleAnalyzerError,
then the engine on a few packets). An input taking longer than
``--timeout`` seconds counts as a hang. Failures are written to
``fuzz/crashes/`` (one file per distinct exception site) and the run goes
on; the summary line per reader gives the exact number of inputs tried.
See fuzz/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import signal
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.setrecursionlimit(10_000)

from tests.fuzz import harness  # noqa: E402

CRASHES = Path(__file__).resolve().parent / "crashes"


class _Hang(Exception):
    pass


def _alarm(_sig, _frame):
    raise _Hang()


def random_text(rng: random.Random) -> str:
    alphabet = rng.choice([" \n\t-:/.,{}[]\"'0123456789abcdefxyzACDJ=#*!", "".join(map(chr, range(1, 128))),
                           "".join(chr(rng.randrange(1, 0x2FFF)) for _ in range(40))])
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 400)))


def one_input(rng: random.Random, seeds: list[str]) -> str:
    r = rng.random()
    if seeds and r < 0.8:
        return harness.mutate(rng.choice(seeds), rng)
    if r < 0.9:
        return random_text(rng)
    data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300)))
    return harness.decode_like_loader(data) or data.decode("latin-1").replace("\0", "")


def fuzz_reader(dialect: str, runs: int, seconds: float, seed: int, timeout: int,
                max_size: int, log) -> dict:
    rng = random.Random(f"{seed}:{dialect}")
    seeds = harness.corpus_texts(dialect, max_size=max_size)
    start = time.monotonic()
    counts = {"dialect": dialect, "seed": seed, "inputs": 0, "parsed": 0, "refused": 0,
              "failures": 0, "hangs": 0, "distinct": 0}
    seen: set[str] = set()
    signal.signal(signal.SIGALRM, _alarm)
    while counts["inputs"] < runs and time.monotonic() - start < seconds:
        text = one_input(rng, seeds)
        counts["inputs"] += 1
        signal.alarm(timeout)
        try:
            out = harness.check(text, dialect)
            counts["refused" if isinstance(out, Exception) else "parsed"] += 1
        except (_Hang, harness.FuzzFailure, Exception) as exc:  # noqa: BLE001
            signal.alarm(0)
            hang = isinstance(exc, _Hang)
            counts["hangs" if hang else "failures"] += 1
            cause = exc.__cause__ or exc
            site = "hang" if hang else traceback.extract_tb(cause.__traceback__)[-1]
            key = f"{dialect}:{type(cause).__name__}:{getattr(site, 'filename', site)}:{getattr(site, 'lineno', '')}"
            if key not in seen:
                seen.add(key)
                counts["distinct"] += 1
                CRASHES.mkdir(exist_ok=True)
                digest = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:10]
                (CRASHES / f"{dialect}-{digest}.txt").write_text(
                    f"# {key}\n# {type(cause).__name__}: {str(cause)[:500]}\n" + text,
                    encoding="utf-8", errors="surrogatepass")
                print(f"FAIL {key}", file=log, flush=True)
        finally:
            signal.alarm(0)
        if counts["inputs"] % 5000 == 0:
            print(json.dumps({**counts, "elapsed": round(time.monotonic() - start, 1)}), file=log, flush=True)
    counts["elapsed"] = round(time.monotonic() - start, 1)
    print(json.dumps(counts), file=log, flush=True)
    return counts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("readers", nargs="*", default=list(harness.READERS))
    ap.add_argument("--runs", type=int, default=1_000_000, help="inputs per reader (default 1M)")
    ap.add_argument("--seconds", type=float, default=float("inf"), help="time budget per reader")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=int, default=10, help="seconds before an input counts as a hang")
    ap.add_argument("--max-size", type=int, default=8 * 1024, help="largest corpus file used as a seed")
    args = ap.parse_args(argv)
    total = [fuzz_reader(d, args.runs, args.seconds, args.seed, args.timeout, args.max_size, sys.stdout)
             for d in args.readers]
    return 1 if any(c["failures"] or c["hangs"] for c in total) else 0


if __name__ == "__main__":
    sys.exit(main())
