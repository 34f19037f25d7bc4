"""The reverse-path filter of a host snapshot (``rp_filter``), in the
concrete engine and in the packet space alike: strict (1) drops a packet
whose route back to its source leaves by another interface, loose (2) one
with no unicast route back (a source that is the host's own address), off
(0) neither; the effective value is the larger of ``conf.all`` and
``conf.<dev>`` (the kernel's IN_DEV_RPFILTER). Checked on a real kernel
in ``tests/kernel/test_kernel_snapshot.py``."""

from __future__ import annotations

import pytest

from ruleanalyzer import load
from ruleanalyzer.audit import run_audit
from ruleanalyzer.checks import _sets as S
from ruleanalyzer.checks.base import Context
from ruleanalyzer.engine import Evaluator
from ruleanalyzer.packets import make_packet

from .snapshot_factory import make_snapshot

RULES = """*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp --dport 22 -j ACCEPT
-A FORWARD -o dmz0 -p tcp --dport 25 -j ACCEPT
COMMIT
"""
INTERFACES = {"wan0": ["192.0.2.1/24"], "lan0": ["10.10.0.1/24"], "dmz0": ["10.20.0.1/16"]}
#: (input interface, source) → passes with rp_filter 0, 1, 2. Routes: the
#: lan behind lan0, the dmz behind dmz0, everything else by wan0.
CASES = {
    ("wan0", "198.51.100.9"): (True, True, True),    # the internet on its own interface
    ("lan0", "198.51.100.9"): (True, False, True),   # internet source on the lan side: spoofed
    ("wan0", "10.10.0.9"): (True, False, True),      # lan source arriving from the internet
    ("lan0", "10.10.0.9"): (True, True, True),
    ("wan0", "10.10.0.1"): (True, False, False),     # the host's own address: no unicast route back
}


def _host(tmp_path, rp: int, per_dev: dict[str, str] | None = None):
    sysctls = {"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.rp_filter": str(rp), **(per_dev or {})}
    return load(make_snapshot(tmp_path / f"gw{rp}", "gw", iptables=RULES, interfaces=INTERFACES,
                              default=("192.0.2.254", "wan0"), sysctls=sysctls))


def _space_passes(reach, rule, iif, src, dst):
    sp = reach.space
    point = S.iface(sp, "iif", iif) & S.networks(sp, "src", f"{src}/32") & S.networks(sp, "dst", f"{dst}/32")
    return reach.rule_sets(rule).matched_upper.node & point != sp.false


@pytest.mark.parametrize("rp", [0, 1, 2])
def test_engine_and_space_drop_the_same_spoofed_sources(tmp_path, rp):
    rs = _host(tmp_path, rp)
    engine = Evaluator(rs)
    reach = Context(rs).reach("forward", 4)
    rule = [r for r in rs.rules() if "dmz0" in r.text][0]
    for (iif, src), passes in CASES.items():
        r = engine.evaluate(make_packet(src=src, dst="10.20.9.9", proto="tcp", dport=25, hook="forward",
                                        iif=iif))
        expected = passes[rp]
        assert (r.verdict == "accept") is expected, (iif, src, r.verdict, r.routing)
        if not expected:
            assert r.decided_by is None and f"rp_filter={rp}" in r.routing
        assert _space_passes(reach, rule, iif, src, "10.20.9.9") is expected, (rp, iif, src)


def test_the_larger_of_all_and_the_interface_counts(tmp_path):
    # conf.all=0, conf.lan0=1: strict on lan0 only.
    rs = _host(tmp_path, 0, {"net.ipv4.conf.lan0.rp_filter": "1"})
    reach = Context(rs).reach("forward", 4)
    rule = [r for r in rs.rules() if "dmz0" in r.text][0]
    assert not _space_passes(reach, rule, "lan0", "198.51.100.9", "10.20.9.9")
    assert _space_passes(reach, rule, "wan0", "10.10.0.9", "10.20.9.9")  # wan0 stays unfiltered
    engine = Evaluator(rs)
    spoofed = engine.evaluate(make_packet(src="198.51.100.9", dst="10.20.9.9", proto="tcp", dport=25,
                                          hook="forward", iif="lan0"))
    assert spoofed.verdict == "drop" and "rp_filter=1 (strict) on lan0" in spoofed.routing


def test_input_path_too(tmp_path):
    rs = _host(tmp_path, 1)
    reach = Context(rs).reach("input", 4)
    rule = [r for r in rs.rules() if "--dport 22" in r.text][0]
    assert _space_passes(reach, rule, "wan0", "198.51.100.9", "192.0.2.1")
    assert not _space_passes(reach, rule, "lan0", "198.51.100.9", "192.0.2.1")


ANTISPOOF = """*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -i wan0 -s 10.10.0.0/24 -j DROP
-A FORWARD -i lan0 -s 10.10.0.0/24 -j ACCEPT
-A FORWARD -i wan0 -p tcp --dport 25 -j ACCEPT
COMMIT
"""


@pytest.mark.parametrize("rp", [0, 1, 2])
def test_where_it_matters_an_anti_spoofing_rule(tmp_path, rp):
    """`-i wan0 -s <lan> -j DROP` never matches under strict rp_filter:
    the kernel drops those packets at routing. The audit says so (RA103,
    info, naming rp_filter) instead of blaming earlier chains; with loose
    or no filtering the rule does its work and nothing is said."""
    snap = make_snapshot(tmp_path / f"as{rp}", "as", iptables=ANTISPOOF, interfaces=INTERFACES,
                         default=("192.0.2.254", "wan0"),
                         sysctls={"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.rp_filter": str(rp)})
    found = [f for f in run_audit([snap], select=["RA103"]).findings]
    if rp != 1:
        assert found == []
        return
    assert len(found) == 1 and found[0].where.line == 6 and found[0].severity == "info"
    assert "reverse-path filter (rp_filter=1 on wan0)" in found[0].message
