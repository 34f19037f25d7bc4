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


def test_a_direct_xml_given_alone_is_read_beside_the_stock_zones(tmp_path):
    """firewalld loads direct rules into iptables tables whose policies stay
    ACCEPT; its own nft table filters the same packets. Given alone, the
    file is read with the stock zones (said so, RA002): the host is not one
    that accepts every connection (RA402), and the direct ACCEPT changes no
    verdict of its own table (RA104) — firewalld's zone still decides."""
    from ruleanalyzer.audit import run_audit

    path = tmp_path / "direct.xml"
    path.write_text('<?xml version="1.0" encoding="utf-8"?>\n<direct>\n'
                    '  <rule ipv="ipv4" table="filter" chain="FORWARD" priority="0">-o waydroid0 -j ACCEPT</rule>\n'
                    '  <rule ipv="ipv4" table="filter" chain="INPUT" priority="0">-p tcp --dport 8080 -j ACCEPT</rule>\n'
                    '</direct>\n')
    rs = load(str(path))
    assert any(t.family == "inet" and t.name == "firewalld" for t in rs.tables)
    assert any("direct.xml given alone" in d.message for d in rs.diagnostics)
    # 8080 is accepted by the direct rule, then rejected by the stock public zone
    result = evaluate(rs, make_packet(src="198.51.100.7", dst="192.0.2.1", dport=8080, iif="eth0"))
    assert result.verdict == "drop" and result.decided_by.chain.name.startswith("filter_IN_public")
    codes = {f.code for f in run_audit([str(path)]).findings}
    assert "RA402" not in codes and {"RA002", "RA104"} <= codes
