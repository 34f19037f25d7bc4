"""Batch questions (``query --packets``) per shape: packets/s of the batch
evaluator against the one-packet engine, and whether their answers agree.

    python bench/bench_batch.py                      # largest real dump + every shape at 5k rules
    python bench/bench_batch.py --rules 20000 --packets 50000 --shapes mixed

For the largest real iptables dump of the corpus the packets are
``bench_shapes.realistic_packets``; for a generated shape they are made the
same way from what its rules name (read from the loaded model, so nftables
shapes get them too): a host inside each network, the ports and interfaces
named, 15 % strangers, every hook, new and established.

Every measurement runs in a fresh process and reports CPU seconds
(``time.process_time``) of the evaluation alone (reading the rules and
making the packets excluded). ``engine`` is the plain one-packet evaluator
on the first ``--check`` packets (run first, before the batch's answers
fill the heap); ``agree`` compares every one of those
answers with the batch's (verdict, deciding rule, depends-on, trace, packet
out, alternatives: ``Result`` equality).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from bench_shapes import largest_dump, load_line, realistic_packets  # noqa: E402
from shapes import SHAPES, generate  # noqa: E402

_CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[4])
from ruleanalyzer import load
from ruleanalyzer.packets import make_packet
from ruleanalyzer.engine import Evaluator
from ruleanalyzer.engine.batch import BatchEvaluator
rs = load(sys.argv[1], dialect=sys.argv[2])
packets = [make_packet(**json.loads(l)) for l in open(sys.argv[3])]
check = int(sys.argv[5])
single = Evaluator(rs)
t = time.process_time()
reference = [single.evaluate(p) for p in packets[:check]]
engine = time.process_time() - t
t = time.process_time()
batch = BatchEvaluator(rs)
answers = batch.evaluate_all(packets)
cpu = time.process_time() - t
agree = sum(a == b for a, b in zip(answers, reference))
d = batch.decisions
print(json.dumps({"rules": rs.rule_count, "packets": len(packets), "cpu": cpu, "engine": engine,
                  "checked": len(reference), "agree": agree, "hits": batch._hits,
                  "leaves": d.leaves if d else None, "tree": bool(d) and batch.memoize}))
"""


def model_packets(path: Path, dialect: str, n: int, seed: int = 5) -> list[dict]:
    """``realistic_packets`` for any dialect: from the networks, ports and
    interfaces the loaded rules name."""
    sys.path.insert(0, str(ROOT))
    from ruleanalyzer import load
    from ruleanalyzer.model import AddressMatch, AllOf, AnyOf, Dispatch, IntMatch, InterfaceMatch

    ruleset = load(path, dialect=dialect)
    nets, ports, ifaces = [], [], set()

    def leaf(m) -> None:
        if isinstance(m, (AllOf, AnyOf)):
            for x in m.matches:
                leaf(x)
        elif isinstance(m, AddressMatch):
            nets.extend(n for n in m.networks if n.version == 4)
        elif isinstance(m, IntMatch) and m.field == "dport":
            ports.extend(lo for lo, _ in m.ranges)
        elif isinstance(m, InterfaceMatch):
            ifaces.update(x.rstrip("+*") + ("0" if x[-1:] in "+*" else "") for x in m.names)

    for table in ruleset.tables:
        for chain in table.chains.values():
            for rule in chain.rules:
                for m in rule.matches:
                    leaf(m)
                if isinstance(rule.action, Dispatch):
                    for m, _ in rule.action.branches:
                        leaf(m)
    # what realistic_packets reads from a dump, so the packets are made alike
    summary = [f"-s {n.network_address}/{n.prefixlen}" for n in nets] + [f"--dport {p}" for p in ports] \
        + [f"-i {i}" for i in sorted(ifaces)]
    return realistic_packets("\n".join(summary), n, seed)


def measure(name: str, path: Path, dialect: str, packets: list[dict], check: int, folder: Path) -> None:
    file = folder / f"{name}.packets.jsonl"
    file.write_text("".join(json.dumps(p) + "\n" for p in packets))
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(path), dialect, str(file), str(ROOT), str(check)],
                          capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        print(f"  {name:14} FAILED: {proc.stderr.strip().splitlines()[-1:]}", flush=True)
        return
    d = json.loads(proc.stdout.strip().splitlines()[-1])
    engine = d["checked"] / d["engine"] if d["engine"] else float("nan")
    print(f"  {name:14} {d['rules']:6} rules {d['packets']:7} packets: batch {d['packets'] / d['cpu']:9,.0f} "
          f"packets/s CPU | engine {engine:8,.0f} packets/s CPU | agree {d['agree']}/{d['checked']} | "
          f"tree {'on' if d['tree'] else 'off'}, {d['hits']} hits, {d['leaves']} leaves", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=5000)
    parser.add_argument("--packets", type=int, default=100_000)
    parser.add_argument("--check", type=int, default=3000, help="packets the engine answers too")
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--no-dump", action="store_true")
    args = parser.parse_args()
    print(f"bench_batch: {args.packets} packets, shapes at {args.rules} rules; {os.cpu_count()} cores, "
          f"load average {load_line()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        dump = None if args.no_dump else largest_dump()
        if dump is not None:
            text = dump.read_text(errors="replace")
            measure("largest-dump", dump, "iptables", realistic_packets(text, args.packets), args.check, folder)
        for shape in [s for s in args.shapes.split(",") if s]:
            text, dialect = generate(shape, args.rules)
            path = folder / f"{shape}.rules"
            path.write_text(text, encoding="utf-8")
            measure(shape, path, dialect, model_packets(path, dialect, args.packets), args.check, folder)
    print(f"load average at the end {load_line()}")


if __name__ == "__main__":
    main()
