"""Benchmark: a connection across a 50-hop chain of 1k-rule firewalls.

Builds (in a temporary directory) a topology client — r1 — … — r50 — server
where every router has its own iptables-save file of ~1000 FORWARD rules
that the connection must scan past (the accepting rules come last), then
times loading the topology and answering ``path`` with ECN both ways
(13 legs plus Linux's fallback).

    .venv/bin/python bench/bench_path.py [--hops 50] [--rules 1000] [--shared]

``--shared`` gives every router the same rule file (parsed once).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from ruleanalyzer.engine.path import trace_path
from ruleanalyzer.topology import load_topology


def ruleset(rules: int, seed: int) -> str:
    lines = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]"]
    for i in range(rules - 2):
        a, b = (i >> 8) & 0xFF, i & 0xFF
        if i % 3 == 0:
            lines.append(f"-A FORWARD -s 10.{seed % 250}.{a}.{b}/32 -j DROP")
        elif i % 3 == 1:
            lines.append(f"-A FORWARD -p tcp -m tcp --dport {10000 + i} -j ACCEPT")
        else:
            lines.append(f"-A FORWARD -d 172.16.{a}.{b}/32 -p udp -m udp --dport 53 -j ACCEPT")
    lines.append("-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
    lines.append("-A FORWARD -p tcp -m tcp --dport 443 -m conntrack --ctstate NEW -j ACCEPT")
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def build(directory: Path, hops: int, rules: int, shared: bool) -> Path:
    nodes = ["nodes:", "  client: {address: 192.0.2.1}", "  server: {address: 198.51.100.1}"]
    if shared:
        (directory / "fw.rules").write_text(ruleset(rules, 0))
    for i in range(1, hops + 1):
        name = "fw.rules" if shared else f"r{i}.rules"
        if not shared:
            (directory / name).write_text(ruleset(rules, i))
        nodes.append(f"  r{i}: {{kind: router, firewalls: [{name}]}}")
    chain = ["client"] + [f"r{i}" for i in range(1, hops + 1)] + ["server"]
    links = ["links:"] + [f"  - [{a}, {b}]" for a, b in zip(chain, chain[1:])]
    path = directory / "topology.yaml"
    path.write_text("\n".join(nodes + links) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hops", type=int, default=50)
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--shared", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = build(Path(tmp), args.hops, args.rules, args.shared)
        start = time.perf_counter()
        topology = load_topology(path)
        loaded = time.perf_counter() - start
        total_rules = sum(fw.ruleset.rule_count for n in topology.nodes.values()
                          for fw in n.firewalls)
        best = None
        for _ in range(args.repeat):
            start = time.perf_counter()
            report = trace_path(topology, "client", "server", 443, ecn="both")
            took = time.perf_counter() - start
            best = took if best is None else min(best, took)
        checks = sum(len(leg.checks) for r in report.routes for v in r.variants for leg in v.legs)
        print(f"{args.hops} hops × {args.rules} rules ({total_rules} rules in all, "
              f"{'one shared file' if args.shared else 'one file per hop'})")
        print(f"  load topology + parse rules: {loaded:.2f} s")
        print(f"  path --ecn both: {best:.3f} s (best of {args.repeat}); {checks} hop checks; "
              f"passes={report.passes}")


if __name__ == "__main__":
    main()
