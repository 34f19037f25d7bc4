"""Proof against the kernel: random nftables rulesets, random packets.

Like :mod:`test_kernel_iptables`, with the kernel's answer read from ``nft
monitor trace`` (the rule handle that gave each base chain's verdict, or its
policy) and confirmed by raw-socket delivery. Reproduce a failing seed with

    RA_KERNEL_SEEDS=17 pytest tests/kernel/test_kernel_nftables.py
"""

from __future__ import annotations

import os
import time

import pytest

from .compare import compare
from .gen_nftables import generate
from .netns import missing_prerequisites
from .runner import observe_cases

pytestmark = pytest.mark.kernel

RULESETS = int(os.environ.get("RA_KERNEL_RULESETS", 51))
PACKETS = int(os.environ.get("RA_KERNEL_PACKETS", 100))
FIRST_SEED = int(os.environ.get("RA_KERNEL_FIRST_SEED", 1))
SEEDS = ([int(s) for s in os.environ["RA_KERNEL_SEEDS"].split(",")] if os.environ.get("RA_KERNEL_SEEDS")
         else list(range(FIRST_SEED, FIRST_SEED + RULESETS)))


def test_random_nft_rulesets_agree_with_the_kernel():
    reason = missing_prerequisites(("ip", "nft", "stdbuf"))
    if reason:
        pytest.skip(reason)
    try:
        from ruleanalyzer import loads
        from ruleanalyzer.engine import evaluate
    except ImportError as exc:
        pytest.skip(f"analyzer API not available yet: {exc}")
    started = time.monotonic()
    disagreements, harness_problems, parse_errors, packets = [], [], [], 0
    cases = [generate(seed, PACKETS) for seed in SEEDS]
    for case, observations in observe_cases(cases, "nftables"):
        harness_problems += [f"{case}: {o.probe.describe()}: {o.problem}" for o in observations if o.problem]
        usable = [o for o in observations if not o.problem]
        packets += len(usable)
        try:
            ruleset = loads(case.text, dialect="nftables")
        except Exception as exc:  # the kernel loaded it, so the parser must
            parse_errors.append(f"===== {case}: the kernel loads this ruleset, the analyzer says:\n"
                                f"{type(exc).__name__}: {exc}\n{case.text}")
            continue
        disagreements += compare(str(case), case.text, ruleset, usable, evaluate)
    elapsed = time.monotonic() - started
    print(f"\n{packets} packets over {len(SEEDS)} nft rulesets compared with the kernel in {elapsed:.1f}s; "
          f"{len(disagreements)} disagreements, {len(parse_errors)} rulesets not parsed, "
          f"{len(harness_problems)} harness problems")
    # A rare lost trace event is the harness's problem, not a verdict: allow
    # a handful, never many.
    assert len(harness_problems) <= len(SEEDS) * PACKETS // 500, \
        "the harness could not read the kernel:\n" + "\n".join(harness_problems[:20])
    failures = parse_errors[:3]
    if disagreements:
        shown = {}
        for d in disagreements:
            shown.setdefault(d.case, []).append(d)
        text = []
        for case_name, items in list(shown.items())[:8]:
            text.append(f"===== {case_name}: {len(items)} disagreements; ruleset:\n{items[0].ruleset}")
            text += [d.report() for d in items[:6]]
        failures.append(f"{len(disagreements)} of {packets} packets disagree with the kernel "
                        f"({len(shown)} rulesets):\n" + "\n".join(text))
    if parse_errors or disagreements:
        pytest.fail(f"{len(parse_errors)} rulesets the kernel loads do not parse; "
                    f"{len(disagreements)} packets disagree\n\n" + "\n".join(failures), pytrace=False)
