"""Long-running fuzz driver: many seeded inputs per reader, outside CI.

    .venv/bin/python fuzz/run.py --runs 1000000 iptables nftables ...
    .venv/bin/python fuzz/run.py --seconds 600 --seed 7            # every reader

Each input is one of: a mutation of a seed (most), random printable text, or
random bytes decoded the way the loader would. Seeds are the real corpus
files plus, coverage-guided, every traced input that reached new coverage:
one input in ``--trace-every`` (default 4) runs under a ``sys.settrace``
tracer that records the line-to-line arcs executed in ``ruleanalyzer/``; an
input whose arcs include one never seen before in this run is kept as a
seed, and later mutations pick kept seeds half of the time
(``--trace-every 0`` turns the guidance off: corpus seeds only). The oracle
is :func:`tests.fuzz.harness.check` (parse or a located RuleAnalyzerError,
then the engine on a few packets). Inputs are cut to ``--max-input``
characters. An input taking longer than ``--timeout`` seconds counts as a
hang. Failures are written to
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
#: Code whose arcs count as coverage.
PACKAGE = str(Path(__file__).resolve().parents[1] / "ruleanalyzer") + "/"
#: At most this many kept (new-coverage) seeds; past it a new one replaces a
#: random old one. Kept seeds larger than ``2 * --max-size`` are not kept.
MAX_KEPT = 5000
#: Inputs are cut to this many characters: repeated word multiplication
#: (``harness.mutate``) can build 100+ MB inputs, whose linear parse takes
#: over ``--timeout`` on a busy machine (sizes are the hostile suite's job).
MAX_INPUT = 1_000_000


class ArcTracer:
    """Line-to-line arcs executed in ``ruleanalyzer/`` (``sys.settrace``).

    An arc is (code object, previous line, line), the previous line being
    -1 on entering a frame; packed in one int. Frames of other code get no
    local tracer, so they cost one call per function entry."""

    def __init__(self, root: str = PACKAGE):
        self.root = root
        self.seen: set[int] = set()
        self._codes: dict[int, tuple[object, int]] = {}  # id(code) -> (code, index or -1)
        self.new = 0

    def _index(self, code) -> int:
        entry = self._codes.get(id(code))
        if entry is None or entry[0] is not code:
            entry = (code, len(self._codes) + 1 if code.co_filename.startswith(self.root) else -1)
            self._codes[id(code)] = entry
        return entry[1]

    def run(self, fn, *args):
        """``fn(*args)`` traced; returns its result (or lets its exception
        through) after merging the arcs it ran into ``seen``; ``self.new``
        is how many of them were new."""
        arcs: set[int] = set()
        add = arcs.add
        index = self._index

        def call(frame, event, _arg):
            i = index(frame.f_code)
            if i < 0:
                return None
            base = i << 40
            prev = base | (0xFFFFF << 20)  # base | previous line (-1 → 0xFFFFF)

            def local(frame, event, _arg):
                nonlocal prev
                if event == "line":
                    line = frame.f_lineno
                    add(prev | line)
                    prev = base | (line << 20)
                return local
            return local

        sys.settrace(call)
        try:
            result = fn(*args)
        finally:
            sys.settrace(None)
            new = arcs - self.seen
            self.seen |= new
            self.new = len(new)
        return result


class _Hang(BaseException):
    """An input over ``--timeout``: a BaseException so that the oracle's
    ``except Exception`` does not report it as a reader failure."""


def _alarm(_sig, _frame):
    raise _Hang()


def random_text(rng: random.Random) -> str:
    alphabet = rng.choice([" \n\t-:/.,{}[]\"'0123456789abcdefxyzACDJ=#*!", "".join(map(chr, range(1, 128))),
                           "".join(chr(rng.randrange(1, 0x2FFF)) for _ in range(40))])
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 400)))


def one_input(rng: random.Random, seeds: list[str], kept: list[str] | None = None) -> str:
    r = rng.random()
    if kept and r < 0.4:
        return harness.mutate(rng.choice(kept), rng)
    if seeds and r < 0.8:
        return harness.mutate(rng.choice(seeds), rng)
    if r < 0.9:
        return random_text(rng)
    data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300)))
    return harness.decode_like_loader(data) or data.decode("latin-1").replace("\0", "")


def fuzz_reader(dialect: str, runs: int, seconds: float, seed: int, timeout: int,
                max_size: int, log, trace_every: int = 4, max_input: int = MAX_INPUT) -> dict:
    rng = random.Random(f"{seed}:{dialect}")
    seeds = harness.corpus_texts(dialect, max_size=max_size)
    kept: list[str] = []
    tracer = ArcTracer() if trace_every > 0 else None
    start = time.monotonic()
    counts = {"dialect": dialect, "seed": seed, "inputs": 0, "parsed": 0, "refused": 0,
              "failures": 0, "hangs": 0, "distinct": 0, "traced": 0, "arcs": 0, "kept": 0}
    seen: set[str] = set()
    signal.signal(signal.SIGALRM, _alarm)
    while counts["inputs"] < runs and time.monotonic() - start < seconds:
        text = one_input(rng, seeds, kept)[:max_input]
        counts["inputs"] += 1
        traced = tracer is not None and counts["inputs"] % trace_every == 0
        signal.alarm(timeout)
        try:
            if traced:
                counts["traced"] += 1
                try:
                    out = tracer.run(harness.check, text, dialect)
                finally:
                    counts["arcs"] = len(tracer.seen)
                # a failure or hang is saved below, not kept as a seed
                if tracer.new and len(text) <= 2 * max_size:
                    counts["kept"] += 1
                    if len(kept) < MAX_KEPT:
                        kept.append(text)
                    else:
                        kept[rng.randrange(MAX_KEPT)] = text
            else:
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


def fuzz_shapes(shapes: list[str], runs: int, seconds: float, seed: int, timeout: int, log) -> list[dict]:
    """``runs`` inputs of each structure-aware shape: counts, and the CPU
    seconds of the slowest input and of all (``time.process_time``)."""
    from fuzz.shapes import check_shape

    out = []
    # CPU time (ITIMER_PROF), not the wall clock: under `nice` on a busy
    # machine a wall-clock alarm counts the other processes' time as hangs
    signal.signal(signal.SIGPROF, _alarm)
    for shape in shapes:
        rng = random.Random(f"{seed}:{shape}")
        counts = {"shape": shape, "seed": seed, "inputs": 0, "parsed": 0, "refused": 0, "failures": 0,
                  "hangs": 0, "cpu": 0.0, "slowest": 0.0, "largest": 0}
        start = time.monotonic()
        while counts["inputs"] < runs and time.monotonic() - start < seconds:
            counts["inputs"] += 1
            state = rng.getstate()
            cpu = time.process_time()
            signal.setitimer(signal.ITIMER_PROF, timeout)
            try:
                result, size = check_shape(shape, rng)  # fuzz/shapes.py
                counts["refused" if isinstance(result, Exception) else "parsed"] += 1
                counts["largest"] = max(counts["largest"], size)
            except (_Hang, harness.FuzzFailure, Exception) as exc:  # noqa: BLE001
                counts["hangs" if isinstance(exc, _Hang) else "failures"] += 1
                print(f"FAIL {shape}: {type(exc).__name__}: {str(exc)[:300]} (replay: random state before "
                      f"input {counts['inputs']})", file=log, flush=True)
                rng.setstate(state)
                rng.random()  # move on from the failing input
            finally:
                signal.setitimer(signal.ITIMER_PROF, 0)
            spent = time.process_time() - cpu
            counts["cpu"] += spent
            counts["slowest"] = max(counts["slowest"], spent)
        counts["cpu"], counts["slowest"] = round(counts["cpu"], 2), round(counts["slowest"], 3)
        counts["elapsed"] = round(time.monotonic() - start, 1)
        print(json.dumps(counts), file=log, flush=True)
        out.append(counts)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("readers", nargs="*", default=list(harness.READERS))
    ap.add_argument("--runs", type=int, default=1_000_000, help="inputs per reader (default 1M)")
    ap.add_argument("--seconds", type=float, default=float("inf"), help="time budget per reader")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=int, default=10, help="seconds before an input counts as a hang (CPU seconds with --shapes)")
    ap.add_argument("--max-size", type=int, default=8 * 1024, help="largest corpus file used as a seed")
    ap.add_argument("--trace-every", type=int, default=4,
                    help="trace one input in N for new coverage arcs (0: no guidance)")
    ap.add_argument("--max-input", type=int, default=MAX_INPUT,
                    help="cut generated inputs to this many characters")
    ap.add_argument("--shapes", action="store_true",
                    help="run the structure-aware generators of fuzz/shapes.py instead (readers: shape names)")
    args = ap.parse_args(argv)
    if args.shapes:
        from fuzz.shapes import SHAPES

        chosen = [r for r in args.readers if r in SHAPES] or list(SHAPES)
        total = fuzz_shapes(chosen, args.runs, args.seconds, args.seed, args.timeout, sys.stdout)
        return 1 if any(c["failures"] or c["hangs"] for c in total) else 0
    total = [fuzz_reader(d, args.runs, args.seconds, args.seed, args.timeout, args.max_size, sys.stdout,
                         args.trace_every, args.max_input)
             for d in args.readers]
    return 1 if any(c["failures"] or c["hangs"] for c in total) else 0


if __name__ == "__main__":
    sys.exit(main())
