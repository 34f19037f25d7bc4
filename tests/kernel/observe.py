"""Read the kernel's answer for a packet from iptables rule counters.

``iptables-save -c`` prints a packet counter for every rule and for every
built-in chain's policy. The difference between the dumps before and after
one packet is the path it took; the terminal rule on it (ACCEPT, DROP,
REJECT) or the policy whose counter moved is the deciding one.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

#: Kernel order of the iptables tables on a hook (nat never decides).
TABLE_ORDER = ("raw", "mangle", "filter", "security")
VERDICT_TARGETS = {"ACCEPT": "accept", "DROP": "drop", "REJECT": "drop"}
#: Chains an arriving packet never crosses; their counters move for what the
#: firewall itself sends (conntrack openers, RSTs, ICMP errors).
NOT_INPUT = ("OUTPUT", "POSTROUTING", "FORWARD")

_POLICY = re.compile(r"^:(\S+) (\S+) \[(\d+):(\d+)\]")
_RULE = re.compile(r"^\[(\d+):(\d+)\] -A (\S+) (.*)$")


@dataclass(frozen=True)
class KernelDecision:
    """What the kernel did: ``verdict`` and the rule (``index`` counted from
    1 in ``chain``) or, with ``index`` None, the policy of ``chain``."""

    verdict: str
    table: str
    chain: str
    index: int | None

    def describe(self) -> str:
        where = f"{self.table} {self.chain}"
        return f"{self.verdict} by {where} " + (f"rule {self.index}" if self.index else "policy")


@dataclass(frozen=True)
class Counter:
    table: str
    chain: str
    index: int | None  # None: the chain's policy
    packets: int
    target: str | None  # the policy word for a policy, the -j target for a rule


def parse_counters(text: str) -> dict[tuple[str, str, int | None], Counter]:
    """Every counter of an ``iptables-save -c`` dump, keyed by place."""
    counters = {}
    table = ""
    positions: dict[tuple[str, str], int] = {}
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
        elif m := _POLICY.match(line):
            chain, policy = m.group(1), m.group(2)
            if policy != "-":
                counters[(table, chain, None)] = Counter(table, chain, None, int(m.group(3)), policy)
        elif m := _RULE.match(line):
            chain = m.group(3)
            index = positions[(table, chain)] = positions.get((table, chain), 0) + 1
            words = shlex.split(m.group(4))
            target = None
            for flag in ("-j", "-g"):
                if flag in words:
                    target = words[words.index(flag) + 1]
            counters[(table, chain, index)] = Counter(table, chain, index, int(m.group(1)), target)
    return counters


def decide(before: str, after: str) -> tuple[KernelDecision | None, list[Counter]]:
    """The kernel's decision for the one packet between two dumps, and the
    counters it moved (its path). None when no verdict can be read."""
    old = parse_counters(before)
    moved = []  # each with the packets it gained, not its total
    for key, c in parse_counters(after).items():
        gained = c.packets - (old[key].packets if key in old else 0)
        if gained > 0:
            moved.append(Counter(c.table, c.chain, c.index, gained, c.target))
    decisions = []
    for c in moved:
        verdict = VERDICT_TARGETS.get(c.target or "")
        if c.index is None:  # a policy counter moves only when the policy applied
            verdict = c.target.lower()
        if verdict and c.table in TABLE_ORDER and c.chain not in NOT_INPUT:
            decisions.append(KernelDecision(verdict, c.table, c.chain, c.index))
    drops = [d for d in decisions if d.verdict == "drop"]
    if drops:
        return drops[0], moved
    decisions.sort(key=lambda d: TABLE_ORDER.index(d.table))
    return (decisions[-1] if decisions else None), moved
