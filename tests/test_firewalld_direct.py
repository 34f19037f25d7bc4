"""direct.xml in the model: rules in the built-in iptables chain by
priority, before firewalld's table on the hook (the real firewalld's
placement is proven in tests/kernel/test_kernel_firewalld_direct.py)."""

from __future__ import annotations

from ruleanalyzer import load
from ruleanalyzer.engine import evaluate
from ruleanalyzer.packets import make_packet

from .kernel.test_kernel_firewalld_direct import PACKETS, _config

#: What each of PACKETS gets, and the chain that decides.
EXPECTED = [("drop", "INPUT"), ("drop", "filter_IN_public"), ("drop", "blocklist"),
            ("accept", "filter_IN_public_allow"), ("drop", "filter_IN_public"), ("drop", "filter_IN_public")]


def test_direct_rules_run_before_the_zones_in_priority_order(tmp_path):
    rs = load(_config(tmp_path / "fw"))
    ip_filter = next(t for t in rs.tables if (t.family, t.name) == ("ip", "filter"))
    assert ip_filter.chains["INPUT"].priority == 0 and "INPUT_direct" not in ip_filter.chains
    assert [str(r) for r in ip_filter.chains["INPUT"].rules] == [
        "-A INPUT -p tcp --dport 8080 -j ACCEPT", "-A INPUT -s 198.51.100.0/24 -j DROP",
        "-A INPUT -p tcp --dport 9000 -j ACCEPT", "-A INPUT -j blocklist"]
    for (src, dport, why), (verdict, chain) in zip(PACKETS, EXPECTED):
        result = evaluate(rs, make_packet(src=src, dst="192.0.2.1", dport=dport, iif="rafw0"))
        assert (result.verdict, result.decided_by.chain.name) == (verdict, chain), why
    first = ip_filter.chains["INPUT"].rules[1]
    assert first.origin.text.startswith("direct rule ipv4 filter INPUT priority 0") and first.location.line == 4
