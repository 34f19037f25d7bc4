"""Speed of ``diff`` on kube-proxy-shaped rulesets (CPU time: the machine is busy).

    python bench/bench_diff.py            # 10k with 10 edits, 100k with one edit
    python bench/bench_diff.py --full 2000  # also: a whole-space diff (no shared rules)

Edits are made to filter and nat rules alike (a changed REJECT, a removed
service rule), so the candidate packets run through DNAT pre-images.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from kubeproxy import generate  # noqa: E402

from ruleanalyzer import loads  # noqa: E402
from ruleanalyzer.diff import diff  # noqa: E402


def edit(text: str, n: int, seed: int = 7) -> str:
    """``n`` one-rule edits, taking turns: a filter REJECT moved to another
    service (opens one, closes another), a nat service rule narrowed to a
    source range, a nat service rule removed."""
    rnd = random.Random(seed)
    lines = text.split("\n")
    rejects = [i for i, l in enumerate(lines) if l.startswith("-A KUBE-SERVICES") and "REJECT" in l]
    services = [i for i, l in enumerate(lines) if l.startswith("-A KUBE-SERVICES -d ") and "KUBE-SVC-" in l]
    for k in range(n):
        if k % 3 == 0:
            i = rnd.choice(rejects)
            lines[i] = f"-A KUBE-SERVICES -d 10.96.200.{k}/32 -p tcp -m tcp --dport 8443 -j REJECT"
        elif k % 3 == 1:
            i = rnd.choice(services)
            lines[i] = lines[i].replace("-m comment", "-s 192.0.2.0/24 -m comment", 1)
        else:
            lines[rnd.choice(services)] = "#removed"
    return "\n".join(l for l in lines if l != "#removed")


def run(n: int, edits: int) -> None:
    t0 = time.process_time()
    a_text = generate(n)
    b_text = edit(a_text, edits)
    old = loads(a_text, dialect="iptables", name="old")
    new = loads(b_text, dialect="iptables", name="new")
    t1 = time.process_time()
    report = diff(old, new, findings=False)
    t2 = time.process_time()
    print(f"{old.rule_count} rules, {edits} edit(s): parse {t1 - t0:.1f} s, diff {t2 - t1:.1f} s CPU "
          f"({report.scope}, {report.changed_rules} changed rules, {len(report.regions)} regions, "
          f"{len(report.inconsistencies)} unconfirmed)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000:10,100000:1", help="RULES:EDITS,…")
    args = parser.parse_args()
    for item in args.sizes.split(","):
        n, edits = item.split(":")
        run(int(n), int(edits))


if __name__ == "__main__":
    main()
