"""Fleet audit speed (issue #18: 1,000 snapshots of ~500 rules each in
≤ 10 minutes with ``--jobs 2`` on the 2-core machine, linear in hosts,
memory per worker bounded).

``.venv/bin/python bench/bench_fleet.py [HOSTS ...] [--jobs N] [--rp-filter N]``
(default 100 300 1000, 2 jobs, rp_filter 2). Generates the snapshots (10 roles of hosts whose
~500 rules share a role's base and differ a little per host), audits each
count with the default checks, and prints wall time, CPU time (this
process and its workers, RUSAGE_CHILDREN), per-host CPU, the largest
worker's peak RSS and the findings. The machine is shared: compare CPU.
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.snapshot_factory import make_snapshot  # noqa: E402

ROLES = ("web", "db", "cache", "api", "mail", "dns", "vpn", "ci", "log", "edge")
SERVICE = {"web": (80, 443), "db": (5432,), "cache": (6379,), "api": (8443,), "mail": (25, 587, 993),
           "dns": (53,), "vpn": (1194,), "ci": (8080,), "log": (514,), "edge": (80, 443, 8080)}


def role_rules(role: str, rng: random.Random, n: int = 500) -> list[str]:
    """~n rules: admin sources, monitoring, per-client allowances, a few
    DNAT/forward rules, ipset-driven blocks."""
    out = ["-A INPUT -i lo -j ACCEPT", "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
           "-A INPUT -m set --match-set blocked src -j DROP"]
    for port in SERVICE[role]:
        out.append(f"-A INPUT -p tcp --dport {port} -j ACCEPT")
    while len(out) < n - 20:
        kind = rng.random()
        net = f"10.{rng.randrange(256)}.{rng.randrange(256)}.0/{rng.choice((24, 26, 28, 32))}"
        if kind < 0.6:
            out.append(f"-A INPUT -s {net} -p tcp --dport {rng.choice((22, 9100, 5666, 10050, 8080, 3000))} -j ACCEPT")
        elif kind < 0.8:
            out.append(f"-A INPUT -s {net} -p udp --dport {rng.choice((161, 123, 514, 5353))} -j ACCEPT")
        elif kind < 0.9:
            out.append(f"-A INPUT -s {net} -j DROP")
        else:
            out.append(f"-A FORWARD -s {net} -o eth1 -p tcp --dport {rng.randrange(1024, 65535)} -j ACCEPT")
    return out


def host_rules(base: list[str], rng: random.Random) -> str:
    rules = list(base)
    for _ in range(rng.randrange(0, 6)):  # small per-host differences
        rules.insert(rng.randrange(3, len(rules)),
                     f"-A INPUT -s 10.{rng.randrange(256)}.{rng.randrange(256)}.0/24 -p tcp --dport "
                     f"{rng.choice((22, 8080, 9200))} -j ACCEPT")
    if rng.random() < 0.02:  # drift: a service opened to everyone
        rules.insert(3, f"-A INPUT -p tcp --dport {rng.choice((22, 3306, 6379, 9200))} -j ACCEPT")
    return ("*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            + "\n".join(rules) + "\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n"
            ":OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
            "-A PREROUTING -i eth0 -p tcp --dport 8443 -j DNAT --to-destination 10.1.0.5:443\n"
            "-A POSTROUTING -o eth0 -j MASQUERADE\nCOMMIT\n")


def make_fleet(root: Path, hosts: int, seed: int = 18, rp_filter: int = 2) -> list[str]:
    rng = random.Random(seed)
    bases = {role: role_rules(role, random.Random(f"{seed}-{role}")) for role in ROLES}
    ipsets = "create blocked hash:net family inet\n" + "".join(
        f"add blocked 198.18.{i}.0/24\n" for i in range(50))
    paths = []
    for i in range(hosts):
        role = ROLES[i % len(ROLES)]
        name = f"{role}{i // len(ROLES) + 1:03d}"
        paths.append(make_snapshot(root / name, name, iptables=host_rules(bases[role], rng), ipsets=ipsets,
                                   interfaces={"eth0": [f"192.0.2.{i % 250 + 1}/24"], "eth1": ["10.1.0.1/16"]},
                                   default=("192.0.2.254", "eth0"),
                                   sysctls={"net.ipv4.ip_forward": "1" if role in ("edge", "vpn") else "0",
                                            # 2 (loose) is Debian's and Ubuntu's default: modelled
                                            "net.ipv4.conf.all.rp_filter": str(rp_filter)}))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("hosts", nargs="*", type=int, default=[100, 300, 1000], help="fleet sizes (default 100 300 1000)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--rp-filter", type=int, default=2, help="the snapshots' rp_filter sysctl (default 2)")
    args = parser.parse_args()
    counts, jobs, rp_filter = args.hosts, args.jobs, args.rp_filter
    from ruleanalyzer.checks import select
    from ruleanalyzer.fleet import audit_fleet

    root = Path(tempfile.mkdtemp(prefix="ra-fleet-"))
    try:
        start = time.perf_counter()
        paths = make_fleet(root, max(counts), rp_filter=rp_filter)
        rules = sum(1 for line in (Path(paths[0]) / "iptables-nft-save.txt").read_text().splitlines()
                    if line.startswith("-A"))
        print(f"{len(paths)} snapshots generated in {time.perf_counter() - start:.1f} s "
              f"(~{rules} rules each); machine shared with other work: compare CPU")
        for n in counts:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            result = audit_fleet(paths[:n], codes=select(), options={}, jobs=jobs)
            wall = time.perf_counter() - wall0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = time.process_time() - cpu0 + (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            hosts = result.fleet["hosts"]
            per_host = sorted(h["cpu_seconds"] for h in hosts)
            rss = max(h["peak_rss"] for h in hosts) / 2 ** 20
            failed = sum(1 for h in hosts if h["status"] != "ok")
            print(f"{n:5d} hosts, --jobs {jobs}: wall {wall:7.1f} s, CPU {cpu:7.1f} s "
                  f"({cpu / n:.2f} s/host; per-host analysis sum {sum(per_host):.1f} s, "
                  f"median {per_host[len(per_host) // 2]:.2f} s, "
                  f"max {per_host[-1]:.2f} s), largest worker peak RSS {rss:.0f} MiB, "
                  f"{len(result.findings)} findings, drift in {len(result.fleet['drift'])} group(s), "
                  f"{failed} failed", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
