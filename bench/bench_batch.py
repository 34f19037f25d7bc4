"""Batch questions (``query --packets``) per shape: packets/s of the batch
evaluator against the one-packet engine, and whether their answers agree.

    python bench/bench_batch.py                      # largest real dump + every shape at 5k rules
    python bench/bench_batch.py --rules 20000 --packets 50000 --shapes mixed
    python bench/bench_batch.py --shapes '' --repeat 3   # the largest dump only; least of 3 rotated runs

For the largest real iptables dump of the corpus the packets are
``bench_shapes.realistic_packets``; for a generated shape they are made the
same way from what its rules name (read from the loaded model, so nftables
shapes get them too): a host inside each network, the ports and interfaces
named, 15 % strangers, every hook, new and established.

Every measurement runs in a fresh process and reports CPU seconds
(``time.process_time``) of the evaluation alone (reading the rules and
making the packets excluded); then the whole command end to end
(``query FILE --packets PACKETS``: ``--format jsonl``, with ``--trace``,
``--format json``; and the same packets as ``conntrack -L`` entries and
as AWS VPC flow log records, ``--format jsonl``): packets/s over the
process's CPU time and its peak RSS. ``--digests`` prints the SHA-256 of
each command's output (compare two versions' outputs, with ``--folder``).
``engine`` is the plain one-packet evaluator
on the first ``--check`` packets (run first, before the batch's answers
fill the heap); ``agree`` compares every one of those
answers with the batch's (verdict, deciding rule, depends-on, trace, packet
out, alternatives: ``Result`` equality).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from bench_shapes import largest_dump, load_line, realistic_packets  # noqa: E402
from shapes import SHAPES, generate, shape_list  # noqa: E402

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


def measure(name: str, path: Path, dialect: str, packets: list[dict], check: int, folder: Path,
            digests: bool = False, repeat: int = 1) -> None:
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
    end_to_end(name, path, dialect, file, packets, digests, repeat)


def _command(args: list[str], digest: bool = False) -> tuple[int, float, int, str]:
    """Exit code, CPU seconds (user + system), peak RSS (KiB) of one
    ``ruleanalyzer`` process and, with ``digest``, the SHA-256 of its output
    (else the output is thrown away)."""
    proc = subprocess.Popen([sys.executable, "-m", "ruleanalyzer", *args], cwd=ROOT,
                            stdout=subprocess.PIPE if digest else subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sha = hashlib.sha256()
    if digest:
        for block in iter(lambda: proc.stdout.read(1 << 20), b""):
            sha.update(block)
        proc.stdout.close()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, sha.hexdigest()[:16]


def end_to_end(name: str, path: Path, dialect: str, file: Path, packets: list[dict], digests: bool,
               repeat: int = 1) -> None:
    """The whole command, process start to last answer written: ``query
    FILE --packets PACKETS`` in each format, and of the same packets as
    flows; packets/s over its CPU time, and over it less that of a
    one-packet ``query`` of the same file (reading the rules: ``-load``).
    With ``repeat``, every command runs that many times, in rounds (each
    round runs them all, in turn, starting one later than the round
    before: none always runs first, next to the engine's process), and
    the least CPU time of each is the figure; all are listed."""
    n = len(packets)
    base = ["query", str(path), "--dialect", dialect]
    _, alone, _, _ = _command(base + ["--src", "192.0.2.1", "--dst", "192.0.2.2", "--dport", "22"])
    conntrack = file.with_suffix(".conntrack")
    conntrack.write_text(conntrack_lines(packets))
    vpc = file.with_suffix(".vpc")
    vpc.write_text(vpc_lines(packets))
    runs = [("jsonl", file, []), ("--trace", file, ["--trace"]), ("json", file, ["--format", "json"]),
            ("conntrack", conntrack, []), ("vpc-flow", vpc, [])]
    measured: dict = {}
    for round_ in range(repeat):
        for k in range(len(runs)):
            label, packets_file, extra = runs[(k + round_) % len(runs)]
            measured.setdefault(label, []).append(
                _command(base + ["--packets", str(packets_file), "--format", "jsonl", *extra], digests))
    for label, _, _ in runs:
        done = measured[label]
        code, cpu, rss, sha = min(done, key=lambda d: d[1])
        figure = "FAILED" if any(d[0] == 2 for d in done) else (
            f"{n / cpu:8,.0f} packets/s CPU ({cpu:5.2f} s; {n / max(cpu - alone, 1e-9):8,.0f} -load), "
            f"peak RSS {max(d[2] for d in done) / 1024:5.0f} MiB"
            + (f", sha256 {'/'.join(sorted({d[3] for d in done}))}" if digests else "")
            + (f" [least of {' '.join(f'{d[1]:.2f}' for d in done)} s]" if repeat > 1 else ""))
        print(f"  {'':14} end to end {label:10} {figure}", flush=True)


def conntrack_lines(packets: list[dict], seed: int = 3) -> str:
    """``conntrack -L`` entries (with accounting) whose first packets are ``packets``."""
    rng = random.Random(seed)
    out = []
    for p in packets:
        proto = p.get("proto", "tcp")
        number = {"tcp": 6, "udp": 17, "icmp": 1}[proto]
        head = f"{proto:8} {number} {rng.randrange(1, 432000)} "
        if proto == "tcp":
            head += rng.choice(("ESTABLISHED ", "TIME_WAIT ", "SYN_SENT "))
        if proto == "icmp":
            ident = rng.randrange(65536)
            there, back = f"type=8 code=0 id={ident}", f"type=0 code=0 id={ident}"
        else:
            there = f"sport={p['sport']} dport={p['dport']}"
            back = f"sport={p['dport']} dport={p['sport']}"
        count, size = rng.randrange(1, 500), rng.randrange(40, 900000)
        out.append(f"{head}src={p['src']} dst={p['dst']} {there} packets={count} bytes={size} "
                   f"src={p['dst']} dst={p['src']} {back} packets={count} bytes={size} "
                   f"{'[ASSURED] ' if rng.random() < 0.7 else ''}mark={rng.choice((0, 0, 1))} use=1\n")
    return "".join(out)


def vpc_lines(packets: list[dict], seed: int = 3) -> str:
    """AWS VPC flow log records (default version 2 format, with its header) of ``packets``."""
    rng = random.Random(seed)
    out = ["version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes "
           "start end action log-status\n"]
    for p in packets:
        proto = p.get("proto", "tcp")
        number = {"tcp": 6, "udp": 17, "icmp": 1}[proto]
        sport, dport = (p["sport"], p["dport"]) if proto != "icmp" else (0, 0)
        start = 1418530010 + rng.randrange(86400)
        out.append(f"2 123456789010 eni-{rng.randrange(16**8):08x} {p['src']} {p['dst']} {sport} {dport} "
                   f"{number} {rng.randrange(1, 500)} {rng.randrange(40, 900000)} {start} {start + 60} "
                   f"{rng.choice(('ACCEPT', 'REJECT'))} OK\n")
    return "".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=5000)
    parser.add_argument("--packets", type=int, default=100_000)
    parser.add_argument("--check", type=int, default=3000, help="packets the engine answers too")
    parser.add_argument("--shapes", type=shape_list, default=list(SHAPES),
                        help=f"comma-separated of {', '.join(SHAPES)} (the largest real dump is always measured "
                             "unless --no-dump)")
    parser.add_argument("--no-dump", action="store_true")
    parser.add_argument("--digests", action="store_true", help="SHA-256 of every command's output")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run each end-to-end command this many times, in rotated rounds; the least CPU "
                             "time is the figure (this VM's CPU seconds move by 10-30 %% with the load)")
    parser.add_argument("--folder", help="write the shapes and packets here (answers name the rules' file: "
                                         "digests of two runs compare only with the same folder)")
    args = parser.parse_args()
    print(f"bench_batch: {args.packets} packets, shapes at {args.rules} rules; {os.cpu_count()} cores, "
          f"load average {load_line()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.folder or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        dump = None if args.no_dump else largest_dump()
        if dump is not None:
            text = dump.read_text(errors="replace")
            measure("largest-dump", dump, "iptables", realistic_packets(text, args.packets), args.check, folder,
                    args.digests, args.repeat)
        for shape in args.shapes:
            text, dialect = generate(shape, args.rules)
            path = folder / f"{shape}.rules"
            path.write_text(text, encoding="utf-8")
            measure(shape, path, dialect, model_packets(path, dialect, args.packets), args.check, folder,
                    args.digests, args.repeat)
    print(f"load average at the end {load_line()}")


if __name__ == "__main__":
    main()
