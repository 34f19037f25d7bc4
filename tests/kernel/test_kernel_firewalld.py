"""Proof against the real firewalld and the kernel.

Debian's firewalld runs isolated (:mod:`.firewalld_oracle`: private mount,
network and PID namespaces, private D-Bus, private copy of the
configuration) on fixture configurations and on random ones
(:mod:`.gen_firewalld`). For each:

1. firewalld refuses the configuration exactly when the analyzer does;
2. every chain of ``table inet firewalld`` the analyzer compiled from the
   XML is, rule for rule, the chain firewalld built (``nft list ruleset``);
3. the model from the XML and the model read from firewalld's own
   ``nft -j list ruleset`` give the same verdict on random packets;
4. the kernel, with firewalld's ruleset loaded, decides random packets as
   the model from the XML says (verdict and deciding rule).

The host's /etc/firewalld and nft ruleset are hashed before and after.

    RA_FIREWALLD_SEEDS=1,2,3 pytest tests/kernel/test_kernel_firewalld.py
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.parsers.firewalld import load_directory

from .firewalld_oracle import chains_of, comparable, host_fingerprint, missing, run_firewalld
from .gen_firewalld import generate

pytestmark = pytest.mark.kernel

CONFIGS = Path(__file__).resolve().parent.parent / "firewalld" / "configs"
COUNT = int(os.environ.get("RA_FIREWALLD_CONFIGS", 10))
SEEDS = ([int(s) for s in os.environ["RA_FIREWALLD_SEEDS"].split(",")] if os.environ.get("RA_FIREWALLD_SEEDS")
         else list(range(1, COUNT + 1)))
KERNEL_SEEDS = SEEDS[:4]


@pytest.fixture(scope="module")
def oracle():
    reason = missing()
    if reason:
        pytest.skip(reason)
    before = host_fingerprint()
    yield
    assert host_fingerprint() == before, "the host's firewalld files or nft ruleset changed"


def _differences(ours: str, real: str) -> list[str]:
    a, b = comparable(chains_of(ours)), comparable(chains_of(real))
    out = []
    for chain in sorted(set(a) | set(b)):
        if a.get(chain) != b.get(chain):
            out.append(f"chain {chain}:\n" + "\n".join(difflib.unified_diff(
                b.get(chain, []), a.get(chain, []), "firewalld", "analyzer", lineterm="", n=1)))
    return out


def _agree(root: Path, interfaces: list[str]):
    dump = run_firewalld(root, interfaces)
    try:
        ruleset = load_directory(root)
    except RuleAnalyzerError as exc:
        assert dump.state == "failed", f"the analyzer refuses what firewalld runs: {exc}"
        return None, dump
    assert dump.state == "running", (f"firewalld refused ({dump.state}) what the analyzer reads:\n"
                                     + "\n".join(l for l in dump.log.splitlines() if "ERROR" in l)[:2000])
    diff = _differences(ruleset.meta["firewalld"]["nft"], dump.nft)
    assert not diff, "compiled ruleset differs from firewalld's:\n" + "\n".join(diff[:6])
    return ruleset, dump


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.iterdir()))
def test_fixture_configurations_compile_as_firewalld_compiles_them(oracle, name):
    ruleset, _ = _agree(CONFIGS / name, ["rafw0", "rafw1", "rafw2"])
    assert ruleset is not None


def test_random_configurations_compile_as_firewalld_compiles_them(oracle, tmp_path):
    from ruleanalyzer.engine import evaluate
    from ruleanalyzer.parsers import nft_json
    import json

    refused = compared = 0
    for seed in SEEDS:
        root = tmp_path / f"seed{seed}"
        interfaces, probes, _family = generate(seed, root)
        ruleset, dump = _agree(root, interfaces)
        if ruleset is None:
            refused += 1
            continue
        # (3) the same verdicts from firewalld's own JSON dump.
        theirs = nft_json.parse(json.dumps(dump.json), "firewalld nft -j")
        for probe in probes:
            for hook in ("input", "forward"):
                packet = probe.model_packet().replace(hook=hook, oif="rafw1" if hook == "forward" else None)
                a, b = evaluate(ruleset, packet), evaluate(theirs, packet)
                assert a.verdict == b.verdict, (seed, probe.describe(), hook, a.verdict, b.verdict)
                compared += 1
    print(f"\n{len(SEEDS)} random firewalld configurations: {len(SEEDS) - refused} compiled identically, "
          f"{refused} refused by both; {compared} packet verdicts equal")
    assert refused < len(SEEDS)


def test_the_kernel_agrees_with_the_model_from_xml(oracle, tmp_path):
    from ruleanalyzer.engine import evaluate

    from .compare import compare
    from .netns import missing_prerequisites
    from .observe_nft import TRACE_TABLE
    from .runner import observe_nftables
    from .netns import TestBed

    reason = missing_prerequisites(("ip", "nft", "stdbuf"))
    if reason:
        pytest.skip(reason)
    disagreements, compared, undecided = [], 0, 0
    for seed in KERNEL_SEEDS:
        root = tmp_path / f"k{seed}"
        interfaces, probes, family = generate(seed, root, probes=90)
        # Replies need the firewall's own opener to leave first, which a
        # HOST policy of the random configuration may reject; new packets
        # test the zone and policy logic without that dependency.
        probes = [p for p in probes if p.state == "new"]
        ruleset, dump = _agree(root, interfaces)
        if ruleset is None:
            continue
        with TestBed() as bed:
            bed.load_nft(dump.nft + TRACE_TABLE)
            observations = [o for o in observe_nftables(bed, probes, family) if not o.problem]
        # The IPv6 reverse-path rule depends on the routing table, which
        # the model from XML does not have: the analyzer says "depends on
        # the routing table" there, rightly; those packets are counted
        # apart, never compared.
        decided = [o for o in observations if not evaluate(ruleset, o.probe.model_packet()).depends_on]
        undecided += len(observations) - len(decided)
        observations = decided
        compared += len(observations)
        disagreements += compare(f"firewalld seed {seed}", dump.nft, ruleset, observations, evaluate)
    print(f"\n{compared} packets through firewalld's ruleset in the kernel; {len(disagreements)} disagree; "
          f"{undecided} left out (the analyzer rightly says they depend on the routing table)")
    assert compared > 0
    assert not disagreements, "\n".join(d.report() for d in disagreements[:10])
