"""Shared by the diff kernel proofs: turn a diff's regions into probes the
test bed can send, run OLD and NEW in the kernel, and compare."""

from __future__ import annotations

from dataclasses import dataclass, field

from .gen_iptables import Case
from .runner import observe_cases
from .test_kernel_reach import sendable, witness_probe


@dataclass
class Tally:
    """What happened to the regions of all the diffs."""

    regions: int = 0
    skipped_unknown: int = 0
    unsendable: int = 0
    confirmed: int = 0
    problems: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def plan(seed: int, family: int, old_text: str, new_text: str, what: str, dialect: str, tally: Tally):
    """``(old case, new case, what, checks)`` for one edit: each region's
    witness as a probe the bed can send, with the verdicts the region says."""
    from ruleanalyzer import loads
    from ruleanalyzer.diff import diff
    from ruleanalyzer.engine.evaluate import Evaluator

    old, new = loads(old_text, dialect=dialect), loads(new_text, dialect=dialect)
    report = diff(old, new, hooks=("input",), findings=False, connections=False)
    evals = Evaluator(old), Evaluator(new)
    space = report.space
    bed = space.wrap(sendable(space, family))
    used: set = set()
    ident = (seed % 20000) * 1000 + 700
    checks = []
    for region in report.regions:
        tally.regions += 1
        # An unknown side (a match the analyzer cannot decide) is not
        # checked; the definite side is.
        want = tuple(v if v in ("accept", "drop") else None for v in (region.was, region.now))
        if want == (None, None):
            tally.skipped_unknown += 1
            continue
        ident += 1

        def agrees(p, want=want):
            m = p.model_packet()
            return all(v is None or ev.evaluate(m).verdict == v for v, ev in zip(want, evals))

        probe, w = witness_probe(region.packets & bed, ident, used, old_text + new_text, agrees)
        if probe is None:
            tally.unsendable += 1
            continue
        # Plain values only: no BDD node may outlive its manager.
        checks.append((probe, (region.kind, region.text, region.was, region.now), w))
    probes = [c[0] for c in checks]
    return (Case(seed, family, old_text, probes), Case(seed, family, new_text, probes), what, checks)


def confirm(plans: list, dialect: str, tally: Tally) -> None:
    """Send every planned probe at OLD and at NEW (fresh namespaces) and
    record whether the kernel's verdicts are the region's."""
    # An edit none of whose regions has a sendable witness needs no bed:
    # loading it would check nothing. The waiting is on namespaces and
    # agents, not the CPU, so four beds run at once.
    plans = [p for p in plans if p[3]]
    observed = observe_cases([p[0] for p in plans] + [p[1] for p in plans], dialect, workers=4)
    half = len(plans)
    for k, (old_case, new_case, what, checks) in enumerate(plans):
        before = {o.probe.ident: o for o in observed[k][1]}
        after = {o.probe.ident: o for o in observed[half + k][1]}
        for probe, (kind, text, was, now), w in checks:
            a, b = before[probe.ident], after[probe.ident]
            if a.problem or b.problem:
                tally.problems.append(f"{old_case}: {probe.describe()}: {a.problem or b.problem}")
                continue
            want = tuple(v if v in ("accept", "drop") else None for v in (was, now))
            if all(v is None or got == v for v, got in zip(want, (a.verdict, b.verdict))):
                tally.confirmed += 1
            else:
                tally.failures.append(
                    f"===== {old_case}, edit: {what}\n  region ({kind}): {text}: "
                    f"{was} -> {now}\n  witness {w}\n  sent as {probe.describe()}\n"
                    f"  kernel: old {a.decision.describe() if a.decision else '-'}, "
                    f"new {b.decision.describe() if b.decision else '-'}\n"
                    f"--- old ruleset:\n{old_case.text}--- new ruleset:\n{new_case.text}")
