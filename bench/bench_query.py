"""Query speed: one packet on a 100k-rule kube-proxy ruleset, and a batch on 5k rules.

Targets (issue 2): <= 50 ms per packet after load on 100k rules; >= 20k
packets/s in a batch on a 5k-rule ruleset; peak memory <= 1 GiB for 100k rules.

    .venv/bin/python bench/bench_query.py [--rules 100000]

Times are CPU seconds of this process (time.process_time), so a busy
machine does not distort them.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kubeproxy import generate  # noqa: E402

from ruleanalyzer import loads  # noqa: E402
from ruleanalyzer.engine import Evaluator  # noqa: E402
from ruleanalyzer.packets import make_packet  # noqa: E402


def packets(n: int, seed: int = 1):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        dst = f"10.{rng.randrange(96, 100)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        out.append(make_packet(src=f"192.0.2.{rng.randrange(1, 255)}", dst=dst, hook="input",
                               proto=rng.choice(["tcp", "udp"]), dport=rng.choice([80, 443, 53, 8080, 9999]),
                               state=rng.choice(["new", "established"]), iif="eth0"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rules", type=int, default=100_000)
    ap.add_argument("--batch-rules", type=int, default=5_000)
    args = ap.parse_args()

    text = generate(args.rules)
    t0 = time.process_time()
    rs = loads(text, dialect="iptables", name="kubeproxy.rules")
    t_load = time.process_time() - t0
    ev = Evaluator(rs)
    sample = packets(200)
    ev.evaluate(sample[0])  # warm the compiled caches
    t0 = time.process_time()
    for p in sample:
        ev.evaluate(p)
    per_packet = (time.process_time() - t0) / len(sample)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    small = loads(generate(args.batch_rules), dialect="iptables", name="small.rules")
    ev_small = Evaluator(small)
    batch = packets(20_000, seed=2)
    ev_small.evaluate(batch[0])
    t0 = time.process_time()
    for p in batch:
        ev_small.evaluate(p)
    rate = len(batch) / (time.process_time() - t0)

    print(f"{'ruleset':<28}{'rules':>9}{'figure':>22}{'target':>16}")
    print(f"{'kube-proxy (load)':<28}{rs.rule_count:>9}{t_load:>20.2f} s{'':>16}")
    print(f"{'kube-proxy (query)':<28}{rs.rule_count:>9}{per_packet * 1000:>19.2f} ms{'<= 50 ms':>16}")
    print(f"{'kube-proxy (batch)':<28}{small.rule_count:>9}{rate:>16.0f} pkt/s{'>= 20000/s':>16}")
    print(f"{'peak RSS':<28}{'':>9}{peak:>19.0f} MiB{'<= 1024 MiB':>16}")


if __name__ == "__main__":
    main()
