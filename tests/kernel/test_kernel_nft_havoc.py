"""Proof against the kernel: marks set to a value the analyzer does not work
out. The random nftables rulesets of :mod:`gen_nftables` with some of their
``meta mark set 0xN`` written as a lookup in an anonymous map keyed by the
destination (``meta mark set ip daddr map { A : 0x1, B : 0x10 }``, one of the
host's two addresses the probes go to, and one they never do): the mark a packet gets is the kernel's to know;
a key with no element ends the rule there (NFT_BREAK).

Where the engine's answer is certain — every way the rules that read the
unknown mark can go ends in the same verdict, or a later write of the whole
mark makes it known — the kernel must agree with it; where it is unknown
because of the mark (or of whether the key is in the map), the kernel's
answer must be one of its alternatives. The other rulesets' rules stay as
they were (the same seeds as ``test_kernel_nftables``).

    RA_KERNEL_SEEDS=3,17 pytest tests/kernel/test_kernel_nft_havoc.py
"""

from __future__ import annotations

import dataclasses
import os
import random
import re

import pytest

from .compare import Disagreement, analyzer_answer, describe_result
from .gen_nftables import generate
from .netns import FW_V4, FW_V4_EXTRA, missing_prerequisites

pytestmark = pytest.mark.kernel

RULESETS = int(os.environ.get("RA_KERNEL_RULESETS", 51))
PACKETS = int(os.environ.get("RA_KERNEL_PACKETS", 100))
SEEDS = ([int(s) for s in os.environ["RA_KERNEL_SEEDS"].split(",")] if os.environ.get("RA_KERNEL_SEEDS")
         else list(range(1, 1 + RULESETS)))
MARKS = ("0x1", "0x2", "0x10", "0xff")


def generate_havoc(seed: int, probes: int = 100):
    """:func:`gen_nftables.generate`'s case, most of its constant mark writes
    made map lookups (their own random stream: the rest stays the same)."""
    case = generate(seed, probes)
    rnd = random.Random(seed * 7919 + 13)
    dsts = sorted({p.dst for p in case.probes})
    ip = "ip" if case.family == 4 else "ip6"

    def lookup(m: re.Match) -> str:
        if rnd.random() < 0.2:
            return m.group(0)
        # (the probes go to the host's two addresses: one key, so that the
        # other misses — the rule ends there — and one the probes never use)
        keys = (rnd.choice(dsts), "192.0.2.99" if ip == "ip" else "2001:db8::99")
        return f"meta mark set {ip} daddr map {{ {keys[0]} : {rnd.choice(MARKS)}, {keys[1]} : {rnd.choice(MARKS)} }}"

    return dataclasses.replace(case, text=re.sub(r"meta mark set 0x[0-9a-f]+", lookup, case.text))


def _unknown_by_the_mark(result) -> bool:
    """An unknown the analyzer must give here: it depends on the mark (set
    from the map, read after) or on the key being in the map."""
    return bool(result.depends_on) and all("mark" in d or "in the map" in d or "traffic history" in d
                                           for d in result.depends_on)


def _check(cases) -> str:
    """Each case loaded into the kernel, its probes sent, the engine's
    answers held against it; fails with the disagreements, else returns
    the counts."""
    reason = missing_prerequisites(("ip", "nft", "stdbuf"))
    if reason:
        pytest.skip(reason)
    from ruleanalyzer import loads
    from ruleanalyzer.engine import evaluate

    from .runner import observe_cases

    lookups = sum(c.text.count("daddr map {") for c in cases)
    found, counts = [], {"certain": 0, "unknown": 0, "packets": 0}
    for case, observations in observe_cases(cases, "nftables"):
        ruleset = loads(case.text, dialect="nftables")
        for o in observations:
            if o.problem:
                continue
            counts["packets"] += 1
            kernel = (o.decision.verdict, o.decision.table, o.decision.chain, o.decision.index)
            result = evaluate(ruleset, o.probe.model_packet())
            counts["certain" if result.verdict != "unknown" else "unknown"] += 1
            if analyzer_answer(result) == kernel:
                continue
            # (one verdict reached at different rules, or unknown: the
            # kernel's way must be one of the alternatives)
            if not (_unknown_by_the_mark(result)
                    and any(analyzer_answer(a) == kernel for a in result.alternatives)):
                found.append(Disagreement(str(case), case.text, o, describe_result(result)))
    summary = (f"{counts['packets']} packets over {len(cases)} rulesets with {lookups} mark lookups: "
               f"{counts['certain']} certain, {counts['unknown']} unknown; {len(found)} disagreements")
    print("\n" + summary)
    if found:
        text = [f"===== {found[0].case}:\n{found[0].ruleset}"] + [d.report() for d in found[:8]]
        pytest.fail(f"{summary}\n" + "\n".join(text), pytrace=False)
    return summary


def test_marks_from_a_map_agree_with_the_kernel():
    _check([generate_havoc(seed, PACKETS) for seed in SEEDS])


def test_a_lookup_that_finds_nothing_ends_the_rule():
    # nft_lookup_eval: no element for the key, NFT_BREAK: the accept after
    # the lookup never runs for a probe to the host's other address (the
    # engine said accept for it before the parser knew)
    case = generate(2, 60, family=4)
    text = ("table ip t {\n  chain c { type filter hook input priority filter; policy drop;\n"
            f"    meta mark set ip daddr map {{ {FW_V4} : 0x2 }} accept\n  }}\n}}\n")
    assert {p.dst for p in case.probes} == {FW_V4, FW_V4_EXTRA}
    _check([dataclasses.replace(case, text=text)])
