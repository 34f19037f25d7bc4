"""Proof against the kernel for the change impact (issue 7): "for iptables,
confirm witnesses in the kernel".

For random iptables rulesets (``gen_iptables.generate``) and one random edit
each (insert, delete or swap a rule, widen a source CIDR, flip
ACCEPT/DROP), ``diff(old, new)`` names regions of packets whose verdict
changed. For every opened/closed region a witness the test bed can send
(see ``test_kernel_reach.sendable``) is sent at OLD loaded in a fresh
namespace and at NEW in another; the kernel's verdicts must be the
region's ``was`` and ``now``.

Reproduce a seed: ``RA_KERNEL_SEEDS=17 pytest tests/kernel/test_kernel_diff.py -s``
"""

from __future__ import annotations

import os
import random
import re
import time

import pytest

from .diff_witnesses import Tally, confirm, plan
from .gen_iptables import generate
from .test_kernel_reach import TIME_LIMIT, skip_without_kernel

pytestmark = pytest.mark.kernel

RULESETS = int(os.environ.get("RA_KERNEL_DIFF_RULESETS", 40))
FIRST_SEED = int(os.environ.get("RA_KERNEL_FIRST_SEED", 101))
SEEDS = ([int(s) for s in os.environ["RA_KERNEL_SEEDS"].split(",")] if os.environ.get("RA_KERNEL_SEEDS")
         else list(range(FIRST_SEED, FIRST_SEED + RULESETS)))
EDITS = ("insert", "delete", "swap", "widen", "flip")


def _filter_rules(lines: list[str]) -> list[int]:
    start = lines.index("*filter")
    return [i for i in range(start, len(lines)) if lines[i].startswith("-A ")]


def _chain(line: str) -> str:
    return line.split()[1]


def edit(text: str, rnd: random.Random, family: int) -> tuple[str, str]:
    """``text`` with one random change to its filter table, and what it was."""
    lines = text.rstrip("\n").split("\n")
    kinds = list(EDITS)
    rnd.shuffle(kinds)
    for kind in kinds:
        rules = _filter_rules(lines)
        if kind == "delete" and rules:
            i = rnd.choice(rules)
            what = f"delete {lines[i]!r}"
            del lines[i]
            return "\n".join(lines) + "\n", what
        if kind == "insert":
            inputs = [i for i in rules if _chain(lines[i]) == "INPUT"]
            at = rnd.choice(inputs + [inputs[-1] + 1]) if inputs else lines.index("COMMIT", lines.index("*filter"))
            src = (f"{rnd.choice(('198.51.100.0', '10.0.0.0', '192.0.2.0'))}/{rnd.choice((8, 16, 24))}"
                   if family == 4 else f"2001:db8:{rnd.choice(('', '1:'))}:/{rnd.choice((32, 48, 64))}")
            if family == 6:
                src = src.replace(":::", "::")
            port = rnd.choice((22, 53, 80, 443, 8080))
            proto = rnd.choice(("tcp", "udp"))
            line = (f"-A INPUT -s {src} -p {proto} -m {proto} --dport {port} "
                    f"-j {rnd.choice(('ACCEPT', 'DROP'))}")
            lines.insert(at, line)
            return "\n".join(lines) + "\n", f"insert {line!r} at line {at + 1}"
        if kind == "swap":
            pairs = [(a, b) for a, b in zip(rules, rules[1:]) if b == a + 1 and _chain(lines[a]) == _chain(lines[b])
                     and lines[a] != lines[b]]
            if pairs:
                a, b = rnd.choice(pairs)
                lines[a], lines[b] = lines[b], lines[a]
                return "\n".join(lines) + "\n", f"swap lines {a + 1} and {b + 1}"
        if kind == "widen":
            found = [i for i in rules if re.search(r"(^|\s)-s \S+", lines[i])]
            if found:
                i = rnd.choice(found)
                m = re.search(r"(!\s+)?-s (\S+)", lines[i])
                addr, _, length = m.group(2).partition("/")
                full = 32 if family == 4 else 128
                length = int(length) if length else full
                if length > 0:
                    new_len = max(1 if m.group(1) else 0, length - rnd.choice((1, 8, 16)))
                    old = lines[i]
                    lines[i] = lines[i][:m.start(2)] + f"{addr}/{new_len}" + lines[i][m.end(2):]
                    return "\n".join(lines) + "\n", f"widen {old!r} to {lines[i]!r}"
        if kind == "flip":
            found = [i for i in rules if lines[i].endswith(("-j ACCEPT", "-j DROP"))]
            if found:
                i = rnd.choice(found)
                old = lines[i]
                lines[i] = (old[:-len("ACCEPT")] + "DROP") if old.endswith("ACCEPT") else old[:-len("DROP")] + "ACCEPT"
                return "\n".join(lines) + "\n", f"flip {old!r} to {lines[i]!r}"
    i = next(k for k, line in enumerate(lines) if line.startswith(":INPUT "))
    lines[i] = ":INPUT DROP [0:0]" if "ACCEPT" in lines[i] else ":INPUT ACCEPT [0:0]"
    return "\n".join(lines) + "\n", "flip the INPUT policy"


def test_diff_witnesses_change_verdict_in_the_kernel():
    skip_without_kernel()
    started = time.monotonic()
    tally = Tally()
    plans = []
    for seed in SEEDS:
        case = generate(seed, 0)
        new_text, what = edit(case.text, random.Random(seed * 7919), case.family)
        plans.append(plan(seed, case.family, case.text, new_text, what, "iptables", tally))
    analysed = time.monotonic() - started
    confirm(plans, "iptables", tally)
    elapsed = time.monotonic() - started
    print(f"\ndiff vs kernel over {len(SEEDS)} edited rulesets in {elapsed:.1f}s (analysis {analysed:.1f}s): "
          f"{tally.regions} regions, {tally.confirmed} witnesses confirmed (old and new verdict), "
          f"{tally.skipped_unknown} regions unknown on both sides skipped, {tally.unsendable} regions with "
          f"no sendable packet; {len(tally.problems)} harness problems; {len(tally.failures)} disagreements")
    assert len(tally.problems) <= 2, "the harness could not read the kernel:\n" + "\n".join(tally.problems[:10])
    if tally.failures:
        pytest.fail(f"{len(tally.failures)} disagreements with the kernel:\n" + "\n".join(tally.failures[:8]),
                    pytrace=False)
    assert tally.confirmed > 0, "no region was checked at all"
    assert elapsed < TIME_LIMIT * 1.5, f"took {elapsed:.0f}s"
