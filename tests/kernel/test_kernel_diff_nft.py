"""Proof against the kernel for the change impact (issue 7), for nftables.

Like :mod:`test_kernel_diff`, with random nftables rulesets
(``gen_nftables.generate``) and one random edit of the nft text each
(delete a rule line, swap two adjacent rule lines of a chain, flip
``accept``/``drop`` on a rule, flip a base chain's ``policy``).
``diff(old, new)`` names regions of packets whose verdict changed; for every
region a witness the test bed can send (``test_kernel_reach.sendable``) is
sent at OLD loaded in a fresh namespace and at NEW in another, the kernel's
verdict read from ``nft monitor trace``; they must be the region's ``was``
and ``now``. An edit the kernel refuses (``nft -c``) skips that seed.

Reproduce a seed: ``RA_KERNEL_SEEDS=17 pytest tests/kernel/test_kernel_diff_nft.py -s``
"""

from __future__ import annotations

import os
import random
import re
import secrets
import time

import pytest

from .diff_witnesses import Tally, confirm, plan
from .gen_nftables import generate
from .netns import Namespace, missing_prerequisites

pytestmark = pytest.mark.kernel

RULESETS = int(os.environ.get("RA_KERNEL_DIFF_RULESETS", 20))
FIRST_SEED = int(os.environ.get("RA_KERNEL_FIRST_SEED", 301))
SEEDS = ([int(s) for s in os.environ["RA_KERNEL_SEEDS"].split(",")] if os.environ.get("RA_KERNEL_SEEDS")
         else list(range(FIRST_SEED, FIRST_SEED + RULESETS)))
EDITS = ("delete", "swap", "flip", "policy")
TOOLS = ("ip", "nft", "stdbuf")
LIMIT = 60.0


def _rule_lines(lines: list[str]) -> list[tuple[int, str]]:
    """(line index, chain key) of every rule line inside a chain block."""
    out, chain = [], None
    for i, line in enumerate(lines):
        if m := re.match(r"^table (\S+) (\S+) \{", line):
            table = f"{m.group(1)} {m.group(2)}"
        elif m := re.match(r"^  chain (\S+) \{", line):
            chain = f"{table} {m.group(1)}"
        elif line == "  }":
            chain = None
        elif chain and line.startswith("    ") and not line.lstrip().startswith("type "):
            out.append((i, chain))
    return out


def edit(text: str, rnd: random.Random) -> tuple[str, str]:
    """``text`` with one random change to a chain, and what it was."""
    lines = text.rstrip("\n").split("\n")
    kinds = list(EDITS)
    rnd.shuffle(kinds)
    rules = _rule_lines(lines)
    for kind in kinds:
        if kind == "delete" and rules:
            i, _ = rnd.choice(rules)
            what = f"delete {lines[i].strip()!r}"
            del lines[i]
            return "\n".join(lines) + "\n", what
        if kind == "swap":
            pairs = [(a, b) for (a, ca), (b, cb) in zip(rules, rules[1:])
                     if b == a + 1 and ca == cb and lines[a] != lines[b]]
            if pairs:
                a, b = rnd.choice(pairs)
                lines[a], lines[b] = lines[b], lines[a]
                return "\n".join(lines) + "\n", f"swap lines {a + 1} and {b + 1}"
        if kind == "flip":
            found = [i for i, _ in rules if lines[i].endswith((" accept", " drop"))]
            if found:
                i = rnd.choice(found)
                old = lines[i]
                lines[i] = (old[:-len("accept")] + "drop") if old.endswith("accept") \
                    else old[:-len("drop")] + "accept"
                return "\n".join(lines) + "\n", f"flip {old.strip()!r} to {lines[i].strip()!r}"
        if kind == "policy":
            found = [i for i, line in enumerate(lines) if "hook input" in line]
            if found:
                i = rnd.choice(found)
                old = lines[i]
                lines[i] = (old.replace("policy accept;", "policy drop;") if "policy accept;" in old
                            else old.replace("policy drop;", "policy accept;"))
                return "\n".join(lines) + "\n", f"flip policy {old.strip()!r} to {lines[i].strip()!r}"
    raise AssertionError("no edit possible")


def kernel_refuses(texts: list[str]) -> list[str | None]:
    """Per text, nft's complaint when checking it (``nft -c``) in a fresh
    namespace, or None when the kernel takes it."""
    ns = Namespace(f"ra-{secrets.token_hex(4)}-chk")
    try:
        out = []
        for text in texts:
            done = ns.exec("nft", "-c", "-f", "-", input="flush ruleset\n" + text, check=False)
            out.append(done.stderr.strip() or f"exit {done.returncode}" if done.returncode else None)
        return out
    finally:
        ns.delete()


def test_diff_witnesses_change_verdict_in_the_nft_kernel():
    reason = missing_prerequisites(TOOLS)
    if reason:
        pytest.skip(reason)
    started = time.monotonic()
    edited = []
    for seed in SEEDS:
        case = generate(seed, 0)
        new_text, what = edit(case.text, random.Random(seed * 7919))
        edited.append((case, new_text, what))
    tally = Tally()
    plans, refused = [], []
    for (case, new_text, what), complaint in zip(edited, kernel_refuses([t for _, t, _ in edited])):
        if complaint is not None:
            refused.append(f"{case}: {what}: {complaint}")
            continue
        plans.append(plan(case.seed, case.family, case.text, new_text, what, "nftables", tally))
    analysed = time.monotonic() - started
    confirm(plans, "nftables", tally)
    elapsed = time.monotonic() - started
    print(f"\nnft diff vs kernel over {len(SEEDS)} edited rulesets ({len(refused)} edits refused by nft) "
          f"in {elapsed:.1f}s (analysis {analysed:.1f}s): {tally.regions} regions, {tally.confirmed} witnesses "
          f"confirmed (old and new verdict), {tally.skipped_unknown} regions unknown on both sides skipped, "
          f"{tally.unsendable} regions with no sendable packet; {len(tally.problems)} harness problems; "
          f"{len(tally.failures)} disagreements")
    for line in refused:
        print("refused:", line)
    for line in tally.problems:
        print("problem:", line)
    assert len(tally.problems) <= 2, "the harness could not read the kernel:\n" + "\n".join(tally.problems[:10])
    if tally.failures:
        print("\n".join(tally.failures))
        pytest.fail(f"{len(tally.failures)} disagreements with the kernel:\n" + "\n".join(tally.failures[:8]),
                    pytrace=False)
    assert tally.confirmed > 0, "no region was checked at all"
    assert elapsed < LIMIT, f"took {elapsed:.0f}s"
