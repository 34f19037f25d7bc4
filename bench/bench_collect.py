"""``ruleanalyzer collect`` on a busy host: 10,000 iptables rules and 1,000
ipset entries in a network namespace (issue #18: ≤ 2 s).

Run as root: ``.venv/bin/python bench/bench_collect.py [RULES] [ENTRIES]``.
Prints wall time and the CPU time of collect and the tools it ran
(RUSAGE_CHILDREN), for three runs. The namespace is deleted afterwards.
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time


def run(argv, **kw):
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=600, **kw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rules", nargs="?", type=int, default=10_000, help="iptables rules (default 10,000)")
    parser.add_argument("entries", nargs="?", type=int, default=1_000, help="ipset entries (default 1,000)")
    args = parser.parse_args()
    rules, entries = args.rules, args.entries
    ns = f"rab-{secrets.token_hex(3)}"
    run(["ip", "netns", "add", ns])
    tmp = tempfile.mkdtemp()
    try:
        x = ["ip", "netns", "exec", ns]
        lines = ["*filter", ":INPUT DROP [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]"]
        for i in range(rules):
            lines.append(f"-A INPUT -s 10.{i // 250 % 250}.{i % 250}.0/24 -p tcp --dport {1 + i % 60000} -j ACCEPT")
        lines.append("-A INPUT -m set --match-set blocked src -j DROP")
        ipsets = "create blocked hash:ip family inet maxelem 65536\n" + "".join(
            f"add blocked 198.18.{i // 250}.{i % 250 + 1}\n" for i in range(entries))
        run(x + ["ipset", "restore"], input=ipsets)
        run(x + ["iptables-restore"], input="\n".join(lines + ["COMMIT", ""]))
        exe = os.path.join(os.path.dirname(sys.executable), "ruleanalyzer")
        print(f"collect on a namespace with {rules} iptables rules and {entries} ipset entries "
              "(machine shared with other work)")
        for n in range(3):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            run(x + [exe, "collect", "-o", os.path.join(tmp, f"snap{n}.tar.gz")])
            wall = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            size = os.path.getsize(os.path.join(tmp, f"snap{n}.tar.gz"))
            print(f"  run {n + 1}: wall {wall:.2f} s, CPU {cpu:.2f} s (collect + the tools), "
                  f"archive {size / 1024:.0f} KiB")
        from ruleanalyzer import load

        cpu, start = time.process_time(), time.perf_counter()
        rs = load(os.path.join(tmp, "snap0.tar.gz"))
        print(f"  reading it back: {rs.rule_count} rules, {len(rs.host.sets['blocked'].entries)} ipset "
              f"entries in {time.perf_counter() - start:.2f} s wall, {time.process_time() - cpu:.2f} s CPU")
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=False)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
