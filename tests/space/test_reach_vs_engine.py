"""The symbolic walk agrees with the concrete engine on random rulesets.

For every rule whose surely-matched set is non-empty, its witness packet,
run through ``ruleanalyzer.engine.evaluate``, hits that rule; a rule called
unreachable is hit by none of a batch of random packets.
"""

import ipaddress

import pytest

from ruleanalyzer import loads
from ruleanalyzer.engine import evaluate
from ruleanalyzer.engine.conntrack import resolve_state
from ruleanalyzer.model import Packet
from ruleanalyzer.space import witness
from ruleanalyzer.space.reach import analyze

gen = pytest.importorskip("tests.kernel.gen_iptables")

SEEDS = range(1, 41)


def _hit_rules(result) -> set[int]:
    """ids of every rule a result (or any of its alternatives) matched."""
    hits = set()
    for res in (result, *result.alternatives):
        if res.decided_by is not None and res.decided_by.rule is not None:
            hits.add(id(res.decided_by.rule))
        hits.update(id(step.rule) for step in res.trace if step.event == "match" and step.rule)
    return hits


def _probe_packet(probe, iif: str) -> Packet:
    ports = probe.proto in (6, 17, 132, 33, 136)
    icmp = probe.proto in (1, 58)
    return Packet(src=ipaddress.ip_address(probe.src), dst=ipaddress.ip_address(probe.dst),
                  proto=probe.proto, sport=probe.sport if ports else None,
                  dport=probe.dport if ports else None, flags=probe.flags, ecn=probe.ecn,
                  dscp=probe.dscp, ttl=probe.ttl, state=probe.state, hook="input", iif=iif,
                  length=40 + probe.pad % 1460,
                  icmp_type=probe.icmp_type if icmp else None,
                  icmp_code=probe.icmp_code if icmp else None)


@pytest.mark.parametrize("seed", SEEDS)
def test_witnesses_hit_their_rule_and_dead_rules_stay_dead(seed):
    case = gen.generate(seed, probes=60)
    ruleset = loads(case.text, dialect="iptables")
    reach = analyze(ruleset, "input", case.family)
    checked = 0
    for rule in reach.rules():
        sets = reach.rule_sets(rule)
        if sets.matched_lower.is_empty():
            continue
        packet = witness(sets.matched_lower, hook="input")
        if resolve_state(packet)[0] != packet.state:
            continue  # the engine would derive another ctstate: not like with like
        result = evaluate(ruleset, packet)
        assert id(rule) in _hit_rules(result), (
            f"seed {seed}: witness {packet.describe()} state {packet.state} iif {packet.iif} "
            f"mark {packet.mark:#x} does not hit {rule.chain.name} {rule.index}: {rule.text}")
        checked += 1
    dead = {id(rule): rule for rule, _ in reach.unreachable_rules()}
    names = reach.space.layout.interfaces["iif"]
    for i, probe in enumerate(case.probes):
        iif = names.example(i % len(names.labels))
        result = evaluate(ruleset, _probe_packet(probe, iif))
        hit = [dead[i].text for i in _hit_rules(result) & dead.keys()]
        assert not hit, f"seed {seed}: unreachable rules {hit} hit by probe {probe}"
