"""What the evaluator answers: a verdict, the rule that decided, the trace."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..model import Chain, Packet, Rule


@dataclass(frozen=True, slots=True)
class Decision:
    """The rule — or the policy of ``chain`` when ``rule`` is None — that
    gave the verdict."""

    chain: Chain
    rule: Rule | None = None

    @property
    def is_policy(self) -> bool:
        return self.rule is None

    def describe(self) -> str:
        """``filter INPUT rule 3 (rules.v4:12): -A INPUT -p tcp ... -j ACCEPT``
        or ``filter INPUT policy DROP``."""
        table = self.chain.table.name if self.chain.table else ""
        where = f"{table} {self.chain.name}".strip()
        if self.rule is None:
            loc = self.chain.policy_location
            at = f" ({loc.file}:{loc.line})" if loc and loc.line else ""
            text = self.chain.policy_text or f"policy {(self.chain.policy or 'accept').upper()}"
            return f"{where} {text}{at}"
        loc = self.rule.location
        at = f" ({loc.file}:{loc.line})" if loc.line else f" ({loc.file}{' ' + loc.path if loc.path else ''})"
        return f"{where} rule {self.rule.index}{at}: {self.rule.text}"


@dataclass(frozen=True, slots=True)
class Step:
    """One thing that happened to the packet: a chain entered, a rule
    matched, a policy applied, a translation. ``event`` is one of ``enter``,
    ``match``, ``policy``, ``return``, ``nat``, ``assume``."""

    event: str
    chain: Chain
    rule: Rule | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Result:
    """The answer for one packet.

    ``verdict`` is ``accept``, ``drop`` or ``unknown``. ``outcome`` says what
    happens to an accepted packet (``delivered`` to this host, ``forwarded``,
    ``sent``), ``dropped`` or ``unknown``. ``packet`` is the packet as it
    leaves (after NAT and marks). For an unknown verdict ``depends_on`` names
    the undecidable matches and ``alternatives`` holds the possible results.
    """

    verdict: str
    packet: Packet
    decided_by: Decision | None = None
    trace: tuple[Step, ...] = ()
    depends_on: tuple[str, ...] = ()
    outcome: str = ""
    state: str = ""
    notes: tuple[str, ...] = ()
    alternatives: tuple["Result", ...] = field(default=(), repr=False)
    #: With a host snapshot: what routing did — the route that forwarded it
    #: (``packet.oif`` is its interface), local delivery, or why routing
    #: dropped it (then ``decided_by`` is None).
    routing: str = ""

    @property
    def decider_depends(self) -> bool:
        """A verdict that is certain although the rule deciding it is not:
        the undecided branches end in it at different rules (then
        ``decided_by`` is None and ``alternatives`` name each rule)."""
        return self.verdict != "unknown" and self.decided_by is None and len(self.alternatives) > 1

    @property
    def reject_with(self) -> str | None:
        rule = self.decided_by.rule if self.decided_by else None
        return getattr(rule.action, "with_", None) if rule else None
