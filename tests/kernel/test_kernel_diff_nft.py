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

from .gen_iptables import Case
from .gen_nftables import generate
from .netns import Namespace, missing_prerequisites
from .runner import observe_cases
from .test_kernel_reach import TIME_LIMIT, sendable, witness_probe

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
    from ruleanalyzer import loads
    from ruleanalyzer.diff import diff
    from ruleanalyzer.engine.evaluate import Evaluator

    started = time.monotonic()
    edited = []
    for seed in SEEDS:
        case = generate(seed, 0)
        new_text, what = edit(case.text, random.Random(seed * 7919))
        edited.append((case, new_text, what))
    verdicts = kernel_refuses([t for _, t, _ in edited])
    plans, refused = [], []
    regions = skipped_unknown = unsendable = 0
    for (case, new_text, what), complaint in zip(edited, verdicts):
        if complaint is not None:
            refused.append(f"{case}: {what}: {complaint}")
            continue
        old, new = loads(case.text, dialect="nftables"), loads(new_text, dialect="nftables")
        report = diff(old, new, hooks=("input",), findings=False, connections=False)
        evals = Evaluator(old), Evaluator(new)
        space = report.space
        bed = space.wrap(sendable(space, case.family))
        used: set = set()
        ident = (case.seed % 20000) * 1000 + 700
        checks = []
        for region in report.regions:
            regions += 1
            # An unknown side (a match the analyzer cannot decide) is not
            # checked; the definite side is.
            want = tuple(v if v in ("accept", "drop") else None for v in (region.was, region.now))
            if want == (None, None):
                skipped_unknown += 1
                continue
            ident += 1

            def agrees(p, want=want):
                m = p.model_packet()
                return all(v is None or ev.evaluate(m).verdict == v for v, ev in zip(want, evals))

            probe, w = witness_probe(region.packets & bed, ident, used, case.text + new_text, agrees)
            if probe is None:
                unsendable += 1
                continue
            # Plain values only: no BDD node may outlive its manager.
            checks.append((probe, (region.kind, region.text, region.was, region.now), w))
        probes = [c[0] for c in checks]
        plans.append((Case(case.seed, case.family, case.text, probes),
                      Case(case.seed, case.family, new_text, probes), what, checks))
    analysed = time.monotonic() - started
    cases = [p[0] for p in plans] + [p[1] for p in plans]
    observed = observe_cases(cases, "nftables")
    half = len(plans)
    failures, problems, confirmed = [], [], 0
    for k, (old_case, new_case, what, checks) in enumerate(plans):
        before = {o.probe.ident: o for o in observed[k][1]}
        after = {o.probe.ident: o for o in observed[half + k][1]}
        for probe, (kind, text, was, now), w in checks:
            a, b = before[probe.ident], after[probe.ident]
            if a.problem or b.problem:
                problems.append(f"{old_case}: {probe.describe()}: {a.problem or b.problem}")
                continue
            want = tuple(v if v in ("accept", "drop") else None for v in (was, now))
            if all(v is None or got == v for v, got in zip(want, (a.verdict, b.verdict))):
                confirmed += 1
            else:
                failures.append(
                    f"===== {old_case}, edit: {what}\n  region ({kind}): {text}: "
                    f"{was} -> {now}\n  witness {w}\n  sent as {probe.describe()}\n"
                    f"  kernel: old {a.decision.describe() if a.decision else '-'}, "
                    f"new {b.decision.describe() if b.decision else '-'}\n"
                    f"--- old ruleset:\n{old_case.text}--- new ruleset:\n{new_case.text}")
    elapsed = time.monotonic() - started
    print(f"\nnft diff vs kernel over {len(SEEDS)} edited rulesets ({len(refused)} edits refused by nft) "
          f"in {elapsed:.1f}s (analysis {analysed:.1f}s): {regions} regions, {confirmed} witnesses "
          f"confirmed (old and new verdict), {skipped_unknown} regions unknown on both sides skipped, "
          f"{unsendable} regions with no sendable packet; {len(problems)} harness problems; "
          f"{len(failures)} disagreements")
    for line in refused:
        print("refused:", line)
    for line in problems:
        print("problem:", line)
    assert len(problems) <= 2, "the harness could not read the kernel:\n" + "\n".join(problems[:10])
    if failures:
        print("\n".join(failures))
        pytest.fail(f"{len(failures)} disagreements with the kernel:\n" + "\n".join(failures[:8]), pytrace=False)
    assert confirmed > 0, "no region was checked at all"
    assert elapsed < LIMIT, f"took {elapsed:.0f}s"
