"""direct.xml against the real firewalld 1.3.3 and the kernel; the 2.x layout against the kernel.

firewalld passes direct rules to iptables (iptables-nft): they land in
``table ip filter`` / ``table ip6 filter`` beside ``table inet firewalld``.
The run shows where: straight in the built-in chain (no ``INPUT_direct``,
which is the iptables backend's), by priority, at hook priority ``filter``
(0) — before firewalld's chains at ``filter + 10``. So a direct DROP ends a
packet a zone would accept, and a direct ACCEPT ends only the iptables
chain: firewalld's zone still rejects. The analyzer's model from the XML
must say the same as the model read from firewalld's own dump, and as the
kernel with that dump loaded. The host's /etc/firewalld and nft ruleset
are hashed before and after (as in test_kernel_firewalld.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ruleanalyzer import loads
from ruleanalyzer.engine import evaluate
from ruleanalyzer.parsers.firewalld import load_directory

from .firewalld_oracle import run_firewalld
from .test_kernel_firewalld import oracle  # noqa: F401  (the isolated-firewalld fixture, host hashed)

pytestmark = pytest.mark.kernel

DIRECT = """<?xml version="1.0" encoding="utf-8"?>
<direct>
  <chain ipv="ipv4" table="filter" chain="blocklist"/>
  <rule ipv="ipv4" table="filter" chain="INPUT" priority="0">-s 198.51.100.0/24 -j DROP</rule>
  <rule ipv="ipv4" table="filter" chain="INPUT" priority="-1">-p tcp --dport 8080 -j ACCEPT</rule>
  <rule ipv="ipv4" table="filter" chain="INPUT" priority="5">-j blocklist</rule>
  <rule ipv="ipv4" table="filter" chain="blocklist" priority="0">-s 203.0.113.66 -j REJECT</rule>
  <rule ipv="ipv4" table="filter" chain="INPUT" priority="0">-p tcp --dport 9000 -j ACCEPT</rule>
  <rule ipv="ipv6" table="filter" chain="INPUT" priority="0">-p tcp --dport 2222 -j DROP</rule>
</direct>
"""
ZONE = '<?xml version="1.0" encoding="utf-8"?>\n<zone>\n  <interface name="rafw0"/>\n  <service name="ssh"/>\n</zone>\n'
#: (source, destination port, what decides) — each a reason the order matters.
PACKETS = [
    ("198.51.100.5", 22, "a direct DROP ends a packet zone public accepts"),
    ("192.0.2.9", 8080, "a direct ACCEPT ends only iptables' chain: zone public rejects"),
    ("203.0.113.66", 22, "the direct user chain rejects before the zone"),
    ("192.0.2.9", 22, "nothing direct matches: zone public's ssh"),
    ("198.51.100.5", 8080, "priority -1 runs before priority 0"),
    ("192.0.2.9", 9000, "same priority, file order; then the zone"),
]


def _config(root: Path) -> Path:
    (root / "zones").mkdir(parents=True)
    (root / "firewalld.conf").write_text("DefaultZone=public\nFirewallBackend=nftables\n")
    (root / "zones" / "public.xml").write_text(ZONE)
    (root / "direct.xml").write_text(DIRECT)
    return root


def _chains(json_dump: dict) -> dict[tuple[str, str, str], tuple]:
    out = {}
    for item in json_dump.get("nftables", []):
        c = item.get("chain")
        if c:
            out[(c["family"], c["table"], c["name"])] = (c.get("hook"), c.get("prio"))
    return out


def test_direct_rules_sit_where_firewalld_puts_them_and_run_first(oracle, tmp_path):
    root = _config(tmp_path / "fw")
    dump = run_firewalld(root, ["rafw0", "rafw1"])
    assert dump.state == "running", dump.log[-2000:]
    ours = load_directory(root)
    theirs = loads(dump.nft, dialect="nftables", name="firewalld's dump")
    real = _chains(dump.json)
    # Where: built-in chains of ip/ip6 filter at priority 0, firewalld's at 10.
    assert real[("ip", "filter", "INPUT")] == ("input", 0)
    assert real[("inet", "firewalld", "filter_INPUT")] == ("input", 10)
    assert ("ip", "filter", "INPUT_direct") not in real
    for table in ours.tables:
        if table.name == "firewalld":
            assert table.chains["filter_INPUT"].priority == 10
            continue
        for chain in table.chains.values():
            if not chain.rules:
                continue  # iptables-nft makes a built-in chain only once a rule uses it
            assert (table.family, table.name, chain.name) in real, chain.name
            assert real[(table.family, table.name, chain.name)][1] == chain.priority
            listed = next(t for t in theirs.tables if (t.family, t.name) == (table.family, table.name))
            assert len(listed.chains[chain.name].rules) == len(chain.rules), chain.name
    # What: the same verdicts from the XML and from the dump.
    from ruleanalyzer.packets import make_packet

    for src, dport, why in PACKETS:
        packet = make_packet(src=src, dst="192.0.2.1", dport=dport, iif="rafw0")
        a, b = evaluate(ours, packet), evaluate(theirs, packet)
        assert a.verdict == b.verdict, (why, a.verdict, b.verdict)
    six = make_packet(src="2001:db8::9", dst="2001:db8::1", dport=2222, iif="rafw0")
    assert evaluate(ours, six).verdict == evaluate(theirs, six).verdict == "drop"


def test_the_kernel_decides_direct_and_zone_rules_as_the_model(oracle, tmp_path):
    from .compare import compare
    from .netns import FW_V4, TestBed, missing_prerequisites
    from .observe_nft import TRACE_TABLE
    from .probes import SYN, TCP, Probe
    from .runner import observe_nftables

    reason = missing_prerequisites(("ip", "nft", "stdbuf"))
    if reason:
        pytest.skip(reason)
    root = _config(tmp_path / "fw")
    dump = run_firewalld(root, ["rafw0", "rafw1"])
    assert dump.state == "running"
    ours = load_directory(root)
    probes = [Probe(ident=7100 + i, src=src, dst=FW_V4, proto=TCP, sport=40000 + i, dport=dport, flags=SYN)
              for i, (src, dport, _why) in enumerate(PACKETS)]
    with TestBed() as bed:
        bed.load_nft(dump.nft + TRACE_TABLE)
        observations = [o for o in observe_nftables(bed, probes, 4) if not o.problem]
    assert len(observations) == len(probes)
    disagreements = compare("firewalld direct.xml", dump.nft, ours, observations, evaluate)
    assert not disagreements, "\n".join(d.report() for d in disagreements)


def test_the_kernel_runs_the_2x_layout_as_the_model_says(tmp_path):
    """No firewalld 2.x to ask here, but the 2.x ruleset the analyzer builds
    must be nft the kernel accepts and decides as the model says: random
    configurations (tests/kernel/gen_firewalld.py) compiled with the 2.x
    layout, loaded into a namespace, probed."""
    from ruleanalyzer.errors import RuleAnalyzerError

    from .compare import compare
    from .gen_firewalld import generate
    from .netns import TestBed, missing_prerequisites
    from .observe_nft import TRACE_TABLE
    from .runner import observe_nftables

    reason = missing_prerequisites(("ip", "nft", "stdbuf"))
    if reason:
        pytest.skip(reason)
    compared, disagreements = 0, []
    for seed in (1, 2, 3):
        root = tmp_path / f"k{seed}"
        _interfaces, probes, family = generate(seed, root, probes=60)
        probes = [p for p in probes if p.state == "new"]
        try:
            ruleset = load_directory(root, version="2.3.0")
        except RuleAnalyzerError:
            continue  # a configuration firewalld refuses
        text = ruleset.meta["firewalld"]["nft"]
        with TestBed() as bed:
            bed.load_nft(text + TRACE_TABLE)
            observations = [o for o in observe_nftables(bed, probes, family) if not o.problem]
        decided = [o for o in observations if not evaluate(ruleset, o.probe.model_packet()).depends_on]
        compared += len(decided)
        disagreements += compare(f"2.x layout seed {seed}", text, ruleset, decided, evaluate)
    print(f"\n{compared} packets through the 2.x layout in the kernel; {len(disagreements)} disagree")
    assert compared > 0
    assert not disagreements, "\n".join(d.report() for d in disagreements[:10])
