"""firewalld: 100 zones with 2,000 rich rules — load (compile + read the
nft model) and audit, CPU and wall time (targets: load <= 2 s, audit <= 10 s).

    .venv/bin/python bench/bench_firewalld.py [FIREWALLD_VERSION]

With a 2.x version (e.g. 2.1.1) the configuration compiles to firewalld
2.x's flat dispatch, one rule per pair of bindings and policy: 200
bindings make about 250,000 nft rules (firewalld 2.x itself is quadratic
there; its later three-stage dispatch is not modelled), so the load
target is the 1.x figure.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

ZONES, RICH = 100, 2000


def write_config(root: Path, seed: int = 1) -> None:
    rnd = random.Random(seed)
    (root / "zones").mkdir(parents=True)
    (root / "firewalld.conf").write_text("DefaultZone=z0\nFirewallBackend=nftables\n")
    per = RICH // ZONES
    for z in range(ZONES):
        rules = []
        for i in range(per):
            net = f"10.{z}.{i}.0/24" if rnd.random() < 0.7 else f"198.51.{rnd.randint(0, 255)}.{rnd.randint(0, 255)}"
            action = rnd.choice(("accept", "accept", "drop", "reject"))
            prio = rnd.choice((0, 0, 0, -10, 5))
            elem = rnd.choice((f'<port port="{rnd.randint(1, 65535)}" protocol="tcp"/>', '<service name="https"/>', ""))
            rules.append(f'  <rule family="ipv4"{f" priority={chr(34)}{prio}{chr(34)}" if prio else ""}>'
                         f'<source address="{net}"/>{elem}<{action}/></rule>\n')
        (root / "zones" / f"z{z}.xml").write_text(
            f'<?xml version="1.0" encoding="utf-8"?>\n<zone>\n  <interface name="eth{z}"/>\n'
            f'  <source address="172.{16 + z // 50}.{z}.0/24"/>\n  <service name="ssh"/>\n'
            + "".join(rules) + "</zone>\n")


def timed(fn):
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - c0, time.perf_counter() - w0


def main() -> int:
    from ruleanalyzer import load
    from ruleanalyzer.audit import run_audit
    import ruleanalyzer.checks  # noqa: F401  (imports outside the timing)

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("version", nargs="?", help="firewalld version to compile for (default: the 1.x model)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "firewalld"
        write_config(root)
        version = args.version
        load(root, firewalld_version=version)  # warm the stock definitions and grammar once
        rs, cpu, wall = timed(lambda: load(root, firewalld_version=version))
        print(f"load (firewalld {rs.meta['firewalld']['version']}): {ZONES} zones, {RICH} rich rules -> "
              f"{rs.rule_count} nft rules: "
              f"{cpu:.2f} s CPU, {wall:.2f} s wall (target 2 s)")
        result, cpu_a, wall_a = timed(lambda: run_audit([rs]))
        print(f"audit (all default checks): {cpu_a:.2f} s CPU, {wall_a:.2f} s wall (target 10 s); "
              f"{len(result.findings)} findings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
