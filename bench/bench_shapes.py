"""Issue #21's figures on every generated shape, side by side in one run.

    python bench/bench_shapes.py                       # everything, 100k rules
    python bench/bench_shapes.py --only query --only small --rules 20000
    python bench/bench_shapes.py --shapes mixed,kube-nftables --only audit
    python bench/bench_shapes.py --only query --repeat 5   # median of 5 side-by-side pairs

Measurements (every one in a fresh process; wall, CPU = user+sys of that
process and its children from ``wait4``, peak RSS):

``query``   ``ruleanalyzer query`` on a 100k-rule file, process start to
            answer, against ``iptables-restore --test`` (inside ``unshare -n``,
            with the file's ipsets created there) or ``nft -c -f`` on the same
            file.  Targets: <= 1.5x iptables-restore, <= 0.5x nft.
``small``   ``query`` on a 50-rule file, best of 5 (target <= 150 ms).
``rss``     peak RSS of a process that only reads the 100k rules (<= 250 MiB).
``audit``   ``ruleanalyzer audit`` of the 100k rules (<= 20 s, <= 800 MiB).
``batch``   ``query --packets`` on the largest real iptables dump of the
            corpus with packets made from the addresses, ports and interfaces
            its rules name (>= 50,000 packets/s): end to end, and the
            evaluation alone.
``diff``    ``diff`` of the 100k rules with one rule changed (<= 30 s): the
            traffic diff (``diff --no-findings``; the default also audits both
            versions for the findings a change brings), process start to answer.
``reach``   bench_audit.py's largest-dump reachability (<= 2 s) and whole
            corpus audit (<= 60 s).

The machine may be shared: the load average is printed with the figures and
CPU seconds are the steadier ones.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CORPUS = ROOT.parent / "shared" / "corpus"
sys.path.insert(0, str(BENCH))

from shapes import SHAPES, generate, set_names, shape_list  # noqa: E402

PY = sys.executable
ALL = ("query", "small", "rss", "audit", "batch", "diff", "reach")


def run(cmd: list[str], stdin=None, env=None) -> dict:
    """Run ``cmd``; wall seconds, CPU seconds (user+sys incl. children), peak RSS MiB, rc."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=ROOT, env=env)
    out, err = b"", b""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    out = proc.stdout.read()
    err = proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss": usage.ru_maxrss / 1024,
            "rc": proc.returncode, "out": out.decode(errors="replace"), "err": err.decode(errors="replace")}


class ChildFailed(Exception):
    """A measured process failed; the figure is reported as missing."""


def py(code: str, *args: str) -> dict:
    """Run ``code`` in a fresh interpreter; its last stdout line is JSON."""
    result = run([PY, "-c", code, *args])
    if result["rc"] != 0:
        raise ChildFailed(result["err"].strip().splitlines()[-1] if result["err"].strip() else
                          f"exit {result['rc']}")
    result["data"] = json.loads(result["out"].strip().splitlines()[-1])
    return result


def load_line() -> str:
    return os.popen("uptime").read().strip().split("load average:")[-1].strip()


def fmt(r: dict) -> str:
    return f"{r['wall']:7.2f} s wall {r['cpu']:7.2f} s CPU {r['rss']:6.0f} MiB"


def write_shape(shape: str, rules: int, folder: Path) -> tuple[Path, str, str]:
    text, dialect = generate(shape, rules)
    path = folder / f"{shape}.{rules}.rules"
    path.write_text(text, encoding="utf-8")
    return path, dialect, text


def reference_check(path: Path, dialect: str, text: str) -> dict | None:
    """``iptables-restore --test`` / ``nft -c -f`` in a fresh network namespace."""
    if not shutil.which("unshare"):
        return None
    if dialect == "nftables":
        if not shutil.which("nft"):
            return None
        return run(["unshare", "-n", "nft", "-c", "-f", str(path)])
    if not shutil.which("iptables-restore"):
        return None
    sets = " ; ".join(f"ipset create {s} hash:net" for s in set_names(text))
    script = (sets + " ; " if sets else "") + f"iptables-restore --test < {path}"
    return run(["unshare", "-n", "sh", "-c", script])


def a_packet_for(text: str) -> list[str]:
    """A packet the file's first service rule talks about (CLI flags)."""
    m = re.search(r"-d (\d+\.\d+\.\d+\.\d+)/32 -p tcp .*?--dport (\d+)", text) or \
        re.search(r"ip daddr (\d+\.\d+\.\d+\.\d+) tcp dport (\d+)", text)
    dst, port = (m.group(1), m.group(2)) if m else ("10.0.0.1", "80")
    return ["--src", "192.0.2.7", "--dst", dst, "--dport", port, "--proto", "tcp"]


def bench_query(shape: str, path: Path, dialect: str, text: str, repeat: int = 1) -> None:
    """``repeat`` > 1: ours and the reference alternate that many times (a
    shared machine moves both by 10-20% between runs) and the median CPU
    ratio of the pairs closes the lines."""
    ratios = []
    for _ in range(repeat):
        ours = run([PY, "-m", "ruleanalyzer", "query", str(path), "--dialect", dialect,
                    *a_packet_for(text)])
        if ours["rc"] not in (0, 1, 3):
            print(f"  query {shape}: failed rc={ours['rc']}: {ours['err'][-500:]}")
            return
        ref = reference_check(path, dialect, text)
        line = f"  query  {shape:14} ours {fmt(ours)}"
        if ref is None:
            print(line + "  (no reference tool)")
            return
        tool = "nft -c -f" if dialect == "nftables" else "iptables-restore --test"
        target = 0.5 if dialect == "nftables" else 1.5
        ok = "" if ref["rc"] == 0 else f" (reference rc={ref['rc']}: {ref['err'].strip()[:200]})"
        ratios.append(ours["cpu"] / max(ref["cpu"], 1e-9))
        print(line + f" | {tool} {ref['wall']:.2f} s wall {ref['cpu']:.2f} s CPU{ok}"
              f" | ratio wall {ours['wall'] / max(ref['wall'], 1e-9):.2f}x "
              f"CPU {ratios[-1]:.2f}x (target <= {target}x)", flush=True)
    if repeat > 1:
        ratios.sort()
        print(f"  query  {shape:14} median CPU ratio of {repeat} pairs {ratios[len(ratios) // 2]:.2f}x "
              f"(range {ratios[0]:.2f}-{ratios[-1]:.2f}x, target <= {target}x); load {load_line()}",
              flush=True)


def compile_bytecode() -> None:
    """Write the package's bytecode, as installing it does: with
    PYTHONDONTWRITEBYTECODE set (or a read-only checkout) every start of an
    editable install compiled each module again (~70 ms of a small query)."""
    subprocess.run([PY, "-m", "compileall", "-q", str(ROOT / "ruleanalyzer"), str(ROOT / "grammars")],
                   stdout=subprocess.DEVNULL, check=False)


def bench_small(shape: str, folder: Path) -> None:
    path, dialect, text = write_shape(shape, 50, folder)
    runs = [run([PY, "-m", "ruleanalyzer", "query", str(path), "--dialect", dialect,
                 *a_packet_for(text)]) for _ in range(5)]
    best_wall = min(r["wall"] for r in runs)
    best_cpu = min(r["cpu"] for r in runs)
    print(f"  small  {shape:14} 50-rule query best of 5: {best_wall * 1000:5.0f} ms wall "
          f"{best_cpu * 1000:5.0f} ms CPU (target <= 150 ms)", flush=True)


_READ = """
import json, sys, time
t, c = time.perf_counter(), time.process_time()
from ruleanalyzer import load
rs = load(sys.argv[1], dialect=sys.argv[2])
print(json.dumps({"rules": rs.rule_count, "wall": time.perf_counter() - t, "cpu": time.process_time() - c}))
"""


def bench_rss(shape: str, path: Path, dialect: str) -> None:
    r = py(_READ, str(path), dialect)
    print(f"  rss    {shape:14} read {r['data']['rules']} rules: {r['data']['cpu']:.2f} s CPU, "
          f"peak RSS {r['rss']:.0f} MiB (target <= 250 MiB)", flush=True)


def bench_audit(shape: str, path: Path, dialect: str, folder: Path) -> None:
    r = run([PY, "-m", "ruleanalyzer", "audit", str(path), "--dialect", dialect, "--format", "json",
             "--no-config", "--fail-on", "never", "-o", str(folder / "audit.json")])
    counts = ""
    if r["rc"] == 0:
        data = json.loads((folder / "audit.json").read_text())
        codes: dict = {}
        for finding in data.get("findings", []):
            codes[finding.get("code")] = codes.get(finding.get("code"), 0) + 1
        counts = f"findings {codes}"
    else:
        counts = f"rc={r['rc']} {r['err'][-300:]}"
    print(f"  audit  {shape:14} {fmt(r)} (target <= 20 s, <= 800 MiB) {counts}", flush=True)


_DIFF = """
import json, sys, time
from ruleanalyzer import load
from ruleanalyzer.diff import diff
old = load(sys.argv[1], dialect=sys.argv[3])
new = load(sys.argv[2], dialect=sys.argv[3])
t, c = time.perf_counter(), time.process_time()
report = diff(old, new, findings=False)
print(json.dumps({"wall": time.perf_counter() - t, "cpu": time.process_time() - c,
                  "regions": len(report.regions), "changed": report.changed_rules}), flush=True)
import os
os._exit(0)  # as `ruleanalyzer diff` ends (cli.run): the heap is not freed object by object
"""


def one_edit(text: str) -> str:
    """One rule changed in the middle of the file: its destination port."""
    lines = text.split("\n")
    middle = len(lines) // 2
    for i in list(range(middle, len(lines))) + list(range(middle)):
        m = re.search(r"(--dport|tcp dport) (\d+)\b", lines[i])
        if m and not lines[i].lstrip().startswith("#"):
            port = int(m.group(2)) % 65000 + 1
            lines[i] = lines[i][:m.start(2)] + str(port) + lines[i][m.end(2):]
            return "\n".join(lines)
    raise ValueError("no rule with a destination port to change")


def bench_diff(shape: str, path: Path, dialect: str, text: str, folder: Path) -> None:
    edited = folder / f"{path.name}.edited"
    edited.write_text(one_edit(text), encoding="utf-8")
    r = py(_DIFF, str(path), str(edited), dialect)
    d = r["data"]
    print(f"  diff   {shape:14} one change: diff {d['wall']:.1f} s wall {d['cpu']:.1f} s CPU, "
          f"process {fmt(r)} (target <= 30 s; {d['regions']} regions; the traffic diff, "
          f"as `diff --no-findings`)", flush=True)


# --- batch questions on the largest real dump ---------------------------------------------------

def largest_dump() -> Path | None:
    folder = CORPUS / "iptables" / "net-network"
    files = [p for p in folder.glob("*iptables-save*") if p.is_file() and "ip6" not in p.name]
    return max(files, key=lambda p: p.stat().st_size) if files else None


def realistic_packets(text: str, n: int, seed: int = 5) -> list[dict]:
    """Packets made of what the dump's rules name: their addresses (a host
    inside each network), ports, interfaces; some strangers; every hook;
    new and established."""
    rng = random.Random(seed)
    nets = re.findall(r"-[sd] (\d+\.\d+\.\d+\.\d+)(?:/(\d+))?", text) or [("10.0.0.1", "32")]
    ports = [int(p) for p in re.findall(r"--dports? (\d+)", text)] or [22, 80, 443]
    ifaces = sorted(set(re.findall(r"-[io] ([\w.-]+)", text))) or ["eth0"]

    def host() -> str:
        if rng.random() < 0.15:
            return f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        addr, prefix = rng.choice(nets)
        bits = 32 - int(prefix or 32)
        base = int.from_bytes(bytes(int(x) for x in addr.split(".")), "big") >> bits << bits
        value = base + (rng.randrange(1 << bits) if bits else 0)
        return ".".join(str((value >> s) & 255) for s in (24, 16, 8, 0))

    out = []
    for i in range(n):
        proto = rng.choice(("tcp", "tcp", "tcp", "udp", "icmp"))
        p = {"src": host(), "dst": host(), "proto": proto,
             "hook": rng.choice(("input", "input", "forward", "forward", "output")),
             "state": rng.choice(("new", "new", "established"))}
        if proto != "icmp":
            p["dport"] = rng.choice(ports) if rng.random() < 0.8 else rng.randrange(1, 65536)
            p["sport"] = rng.randrange(1024, 65536)
        if p["hook"] in ("input", "forward"):
            p["iif"] = rng.choice(ifaces)
        if p["hook"] in ("output", "forward"):
            p["oif"] = rng.choice(ifaces)
        out.append(p)
    return out


_BATCH = """
import json, sys, time
from ruleanalyzer import load
from ruleanalyzer.packets import make_packet
from ruleanalyzer.engine.batch import evaluate_many
rs = load(sys.argv[1], dialect="iptables")
packets = [make_packet(**json.loads(l)) for l in open(sys.argv[2])]
t, c = time.perf_counter(), time.process_time()
answers = evaluate_many(rs, packets)
w, cpu = time.perf_counter() - t, time.process_time() - c
print(json.dumps({"rules": rs.rule_count, "packets": len(packets), "wall": w, "cpu": cpu}))
"""


def bench_batch(folder: Path, n: int) -> None:
    dump = largest_dump()
    if dump is None:
        print("  batch: corpus not found")
        return
    text = dump.read_text(errors="replace")
    packets = folder / "packets.jsonl"
    packets.write_text("".join(json.dumps(p) + "\n" for p in realistic_packets(text, n)))
    inner = py(_BATCH, str(dump), str(packets))
    d = inner["data"]
    print(f"  batch  {dump.name[-40:]} {d['rules']} rules, {d['packets']} packets: evaluation "
          f"{d['packets'] / d['wall']:,.0f} packets/s wall, {d['packets'] / d['cpu']:,.0f} packets/s CPU "
          f"(target >= 50,000/s)", flush=True)
    cli = run([PY, "-m", "ruleanalyzer", "query", str(dump), "--dialect", "iptables", "--packets",
               str(packets), "--format", "jsonl", "-o", str(folder / "answers.jsonl")])
    print(f"  batch  end to end `query --packets ... --format jsonl`: {fmt(cli)} = "
          f"{n / cli['wall']:,.0f} packets/s wall, {n / cli['cpu']:,.0f} packets/s CPU (rc={cli['rc']})",
          flush=True)


def bench_reach() -> None:
    for only in ("largest", "corpus"):
        r = run([PY, str(BENCH / "bench_audit.py"), "--only", only])
        text = (r["out"] + r["err"]).strip().splitlines()
        print(f"  reach  {only}: " + (text[0] if text else f"rc={r['rc']}"), flush=True)


def measure(kind: str, shape: str, path: Path, dialect: str, text: str, folder: Path,
            repeat: int = 1) -> None:
    if kind == "query":
        bench_query(shape, path, dialect, text, repeat)
    elif kind == "rss":
        bench_rss(shape, path, dialect)
    elif kind == "audit":
        bench_audit(shape, path, dialect, folder)
    elif kind == "diff":
        bench_diff(shape, path, dialect, text, folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=ALL)
    parser.add_argument("--rules", type=int, default=100_000)
    parser.add_argument("--shapes", type=shape_list, default=list(SHAPES),
                        help=f"comma-separated of {', '.join(SHAPES)}")
    parser.add_argument("--packets", type=int, default=100_000, help="packets in the batch")
    parser.add_argument("--keep", help="write the generated files here (default: a temporary folder)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="query: measure ours and the reference this many times, alternating, "
                             "and print the median CPU ratio")
    args = parser.parse_args()
    only = args.only or list(ALL)
    shapes = args.shapes
    for s in shapes:
        if s not in SHAPES:
            parser.error(f"unknown shape {s}")
    print(f"bench_shapes: {args.rules} rules, shapes {', '.join(shapes)}; {os.cpu_count()} cores, "
          f"load average {load_line()}; bytecode compiled first", flush=True)
    compile_bytecode()  # every process below starts as an installed package does
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        per_shape = [k for k in only if k in ("query", "rss", "audit", "diff")]
        for shape in shapes:
            if per_shape:
                path, dialect, text = write_shape(shape, args.rules, folder)
            for kind in per_shape:
                try:
                    measure(kind, shape, path, dialect, text, folder, args.repeat)
                except ChildFailed as exc:
                    print(f"  {kind:6} {shape:14} FAILED: {exc}", flush=True)
            if "small" in only:
                bench_small(shape, folder)
        if "batch" in only:
            bench_batch(folder, args.packets)
        if "reach" in only:
            bench_reach()
    print(f"load average at the end {load_line()}")


if __name__ == "__main__":
    main()
