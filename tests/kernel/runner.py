"""Send probes through a loaded firewall and record what the kernel did.

Two independent observations per packet: the counters (which rule or policy
decided) and the raw sockets (was it delivered). They must agree; when they
do not, the harness — not the analyzer — is wrong, and the observation says
so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import observe
from .netns import TestBed
from .probes import Probe

#: Per-packet counter dumps, by family.
SAVE = {4: ["iptables-save", "-c"], 6: ["ip6tables-save", "-c"]}
#: Lines that also move for what the firewall itself sends.
IGNORE = r"^(:|\[\d+:\d+\] -A )(OUTPUT|POSTROUTING|FORWARD) "
BATCH = 50


@dataclass
class Observation:
    """The kernel's answer for one probe."""

    probe: Probe
    decision: observe.KernelDecision | None
    delivered: bool
    path: list[observe.Counter] = field(default_factory=list)
    problem: str | None = None  # a harness inconsistency, not an analyzer bug

    @property
    def verdict(self) -> str | None:
        return self.decision.verdict if self.decision else None


def entries(saved: str) -> dict[tuple[str, str], int]:
    """Per (table, chain): how many times one packet may enter it — once
    for a built-in chain, once per way in for a user chain (every rule
    jumping or going to it, times its own chain's entries): a rule of a
    chain that ``-A INPUT -j U1`` names twice counts a packet twice."""
    calls: dict[tuple[str, str], list[tuple[str, str]]] = {}
    table = ""
    for line in saved.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
            continue
        rule = re.match(r"^(?:\[\d+:\d+\] )?-A (\S+)(?: .*)? -[jg] (\S+)", line)
        if rule:
            calls.setdefault((table, rule.group(2)), []).append((table, rule.group(1)))
    memo: dict[tuple[str, str], int] = {}

    def count(key: tuple[str, str], depth: int = 0) -> int:
        if key not in memo:
            sites = calls.get(key)
            memo[key] = 1 if not sites or depth > 64 else sum(count(site, depth + 1) for site in sites)
        return memo[key]

    return {key: count(key) for key in calls}


def observe_iptables(bed: TestBed, probes: list[Probe], family: int) -> list[Observation]:
    """Send ``probes`` one by one and read the counters after each."""
    observations = []
    before = None
    for start in range(0, len(probes), BATCH):
        chunk = probes[start:start + BATCH]
        wire = []
        for p in chunk:
            opener = p.opener()
            wire.append({"ident": p.ident, "frame": bed.frame(p.packet()).hex(),
                         "opener": opener.hex() if opener else None})
        if before is None:
            before = bed.call({"op": "exec", "argv": SAVE[family]})["stdout"]
            ways_in = entries(before)
        answers = bed.call({"op": "probe", "probes": wire, "counters": SAVE[family],
                            "ignore": IGNORE})["answers"]
        for p, answer in zip(chunk, answers):
            after = answer["counters"]
            decision, path = observe.decide(before, after)
            before = after
            problem = None
            crowded = [c for c in path if c.packets > ways_in.get((c.table, c.chain), 1)
                       and c.chain not in observe.NOT_INPUT]
            if crowded:
                problem = ("a counter moved by more than one packet, something else arrived too: "
                           + ", ".join(f"{c.table} {c.chain} {c.index or 'policy'} +{c.packets}"
                                       for c in crowded))
            elif not answer["changed"] or decision is None:
                problem = "no INPUT counter moved: the packet never reached the filter"
            elif (decision.verdict == "accept") != answer["seen"]:
                problem = (f"counters say {decision.verdict} but the raw socket "
                           f"{'did' if answer['seen'] else 'did not'} receive the packet")
            observations.append(Observation(p, decision, answer["seen"], path, problem))
    # A late copy of a packet the counters called dropped would expose a
    # wrong assumption about when raw sockets see packets.
    late = set(bed.call({"op": "seen", "wait": 0.05})["seen"])
    for o in observations:
        if o.verdict == "drop" and o.probe.ident in late and o.problem is None:
            o.problem = "counters say drop but the raw socket received the packet later"
    return observations


def observe_nftables(bed: TestBed, probes: list[Probe], family: int) -> list[Observation]:
    """Send ``probes`` through the loaded nftables ruleset; read each one's
    fate from the kernel's trace."""
    from . import observe_nft

    listing = bed.fw.exec("nft", "-a", "list", "ruleset").stdout
    positions = observe_nft.rule_positions(listing)
    bed.call({"op": "trace_start"})
    try:
        answers = []
        for start in range(0, len(probes), BATCH):
            wire = []
            for p in probes[start:start + BATCH]:
                opener = p.opener()
                wire.append({"ident": p.ident, "frame": bed.frame(p.packet()).hex(),
                             "opener": opener.hex() if opener else None})
            answers += bed.call({"op": "probe", "probes": wire, "counters": None})["answers"]
    finally:
        trace = bed.call({"op": "trace_stop"})["trace"]
    mask = 0xFFFF if family == 4 else 0xFFFFF  # what of the id fits the IP header
    found = observe_nft.decisions(trace, positions, family)
    observations = []
    for p, answer in zip(probes, answers):
        decision = found.get(p.ident & mask)
        problem = None
        if decision is None:
            problem = "no trace of this packet reaching a verdict"
        elif (decision.verdict == "accept") != answer["seen"]:
            problem = (f"the trace says {decision.verdict} but the raw socket "
                       f"{'did' if answer['seen'] else 'did not'} receive the packet")
        observations.append(Observation(p, decision, answer["seen"], [], problem))
    return observations


def observe_cases(cases: list, dialect: str, workers: int = 2) -> list[tuple[object, list[Observation]]]:
    """Each case loaded into its own fresh namespaces (no conntrack entry
    survives into the next), observed, ``workers`` at a time: the waiting is
    on the kernel and the agents, so two beds nearly halve the run time."""
    from concurrent.futures import ThreadPoolExecutor

    from .observe_nft import TRACE_TABLE

    def one(case):
        with TestBed() as bed:
            if dialect == "iptables":
                bed.load_iptables(case.text, case.family)
                return case, observe_iptables(bed, case.probes, case.family)
            # The trace table only marks packets for tracing; it decides nothing.
            bed.load_nft(case.text + TRACE_TABLE)
            return case, observe_nftables(bed, case.probes, case.family)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, cases))
