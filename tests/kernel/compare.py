"""Hold the analyzer's answers against the kernel's and explain differences."""

from __future__ import annotations

from dataclasses import dataclass

from .runner import Observation


@dataclass(frozen=True)
class Disagreement:
    """One packet where the analyzer and the kernel differ."""

    case: str
    ruleset: str
    observation: Observation
    analyzer: str

    def report(self) -> str:
        o = self.observation
        path = ", ".join(f"{c.table} {c.chain} " + (f"rule {c.index}" if c.index else "policy")
                         for c in o.path)
        return (f"--- {self.case}: {o.probe.describe()}\n"
                f"kernel:   {o.decision.describe() if o.decision else 'no decision'}"
                f" (counters moved: {path or 'none'})\n"
                f"analyzer: {self.analyzer}\n")


def analyzer_answer(result) -> tuple[str, str | None, str | None, int | None]:
    """(verdict, table, chain, rule index or None for a policy) of a Result."""
    decision = result.decided_by
    if decision is None:
        return (result.verdict, None, None, None)
    chain = decision.chain
    table = chain.table.name if chain.table else None
    return (result.verdict, table, chain.name, decision.rule.index if decision.rule else None)


def describe_result(result) -> str:
    text = result.verdict
    if result.decided_by is not None:
        text += " by " + result.decided_by.describe()
    if result.depends_on:
        text += f" (depends on {', '.join(result.depends_on)})"
    if result.state:
        text += f" [state {result.state}]"
    return text


def compare(case_name: str, ruleset_text: str, ruleset, observations: list[Observation],
            evaluate) -> list[Disagreement]:
    """Every observation whose verdict or deciding rule the analyzer gets wrong."""
    found = []
    for o in observations:
        kernel = (o.decision.verdict, o.decision.table, o.decision.chain, o.decision.index)
        try:
            result = evaluate(ruleset, o.probe.model_packet())
        except Exception as exc:  # a crash is a disagreement too
            found.append(Disagreement(case_name, ruleset_text, o, f"crashed: {type(exc).__name__}: {exc}"))
            continue
        if analyzer_answer(result) != kernel:
            found.append(Disagreement(case_name, ruleset_text, o, describe_result(result)))
    return found
