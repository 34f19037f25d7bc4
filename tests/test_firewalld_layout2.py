"""firewalld 2.x: the layout where it differs from 1.x, chosen by version.

The expected rules are firewalld 2.x's own, as its source builds them
(firewalld/firewalld ``src/firewall/core/nftables.py`` before PR #1558:
``build_default_rules`` — the ``filter_INPUT_POLICIES`` jump;
``build_policy_ingress_egress_pair_rules`` — a pair's match, ``jump`` to
the policy, the zone's target as the *last* rule; ``_policy_dispatch_sort_key``
— ingress (priority, source before interface, zone, …) + egress + (last,
priority); ``build_policy_icmp_block_inversion_rules`` — ``index 4``;
``_build_default_rules_dnat`` — ``StrictForwardPorts``) and as firewalld's
own posts print them (firewalld.github.io 2023-04-10 "Zone Priorities",
2024-11-06 "Strict Forward Ports"). No firewalld 2.x package is installable
here, so there is no kernel oracle for this layout (the 1.3.3 one is in
tests/kernel/test_kernel_firewalld.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ruleanalyzer import load
from ruleanalyzer.audit import run_audit
from ruleanalyzer.config import load_config
from ruleanalyzer.engine import evaluate
from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.packets import make_packet

from .test_parser_firewalld import _config

INTERNAL = ('<?xml version="1.0" encoding="utf-8"?>\n<zone{prio}>\n  <short>Internal</short>\n'
            '  <interface name="dummy0"/>\n  <service name="ssh"/>\n</zone>\n')
DROP = '<?xml version="1.0" encoding="utf-8"?>\n<zone target="DROP">\n  <source ipset="block_country"/>\n</zone>\n'
IPSET = '<?xml version="1.0" encoding="utf-8"?>\n<ipset type="hash:net">\n  <entry>198.51.100.0/24</entry>\n</ipset>\n'


def _blog(tmp_path: Path, priority: bool = True, conf: str = "DefaultZone=public\n") -> Path:
    """The configuration of firewalld's "Zone Priorities" post: internal
    (dummy0) at priority -10, drop bound to the ipset block_country."""
    root = tmp_path / ("prio" if priority else "plain") / "etc" / "firewalld"
    for sub in ("zones", "ipsets"):
        (root / sub).mkdir(parents=True)
    (root / "firewalld.conf").write_text(conf)
    (root / "zones" / "internal.xml").write_text(INTERNAL.format(prio=' priority="-10"' if priority else ""))
    (root / "zones" / "drop.xml").write_text(DROP)
    (root / "ipsets" / "block_country.xml").write_text(IPSET)
    return root


def _rules(rs, chain: str) -> list[str]:
    table = next(t for t in rs.tables if t.name == "firewalld")
    return [str(r) for r in table.chains[chain].rules]


def test_dispatch_is_the_zone_priorities_post_rule_for_rule(tmp_path):
    rs = load(_blog(tmp_path), firewalld_version="2.0.0")
    assert rs.meta["firewalld"]["layout"] == "2.x"
    assert _rules(rs, "filter_INPUT_POLICIES") == [
        'iifname "dummy0" jump filter_IN_policy_allow-host-ipv6',
        'iifname "dummy0" jump filter_IN_internal',
        'iifname "dummy0" reject with icmpx admin-prohibited',
        "ip saddr @block_country jump filter_IN_policy_allow-host-ipv6",
        "ip saddr @block_country jump filter_IN_drop",
        "ip saddr @block_country drop",
        "jump filter_IN_policy_allow-host-ipv6",
        "jump filter_IN_public",
        "reject with icmpx admin-prohibited",
    ]
    table = next(t for t in rs.tables if t.name == "firewalld")
    assert "filter_INPUT_ZONES" not in table.chains and "filter_INPUT_POLICIES_pre" not in table.chains
    # The zone's rows keep their origin: the binding, with its line.
    row = table.chains["filter_INPUT_POLICIES"].rules[1]
    assert row.origin.text == "zone internal, interface dummy0"
    assert row.location.file.endswith("zones/internal.xml") and row.location.line == 4


def test_base_and_zone_chains_of_the_2x_layout(tmp_path):
    rs = load(_blog(tmp_path), firewalld_version="2.1.1")
    assert _rules(rs, "filter_INPUT") == [
        "ct state { established, related } accept", "ct status dnat accept", 'iifname "lo" accept',
        "ct state invalid drop", "jump filter_INPUT_POLICIES", "reject with icmpx admin-prohibited"]
    assert _rules(rs, "filter_OUTPUT")[-1] == "jump filter_OUTPUT_POLICIES"
    assert _rules(rs, "nat_PREROUTING") == ["jump nat_PREROUTING_POLICIES"]
    # No dispatch jumps and no target in the zone's chain (the target is the
    # dispatch's last rule); ICMP not blocked is accepted at index 4.
    assert _rules(rs, "filter_IN_public") == [
        "jump filter_IN_public_pre", "jump filter_IN_public_log", "jump filter_IN_public_deny",
        "jump filter_IN_public_allow", "jump filter_IN_public_post", "meta l4proto { icmp, ipv6-icmp } accept"]
    # A zone derives HOST -> zone in 2.x (tracking only): its dispatch returns.
    assert 'oifname "dummy0" jump filter_OUT_internal' in _rules(rs, "filter_OUTPUT_POLICIES")
    assert 'oifname "dummy0" return' in _rules(rs, "filter_OUTPUT_POLICIES")


def test_zone_priority_changes_the_verdict_only_on_2x(tmp_path):
    ssh = make_packet(src="198.51.100.7", dst="192.0.2.1", dport=22, iif="dummy0")
    # Without priorities 2.x keeps 1.x's order: sources before interfaces.
    for version in ("1.3.3", "2.1.1"):
        assert evaluate(load(_blog(tmp_path / version, priority=False), firewalld_version=version), ssh).verdict \
            == "drop"
    # internal at priority -10 classifies dummy0 before drop's source.
    prio = evaluate(load(_blog(tmp_path), firewalld_version="2.1.1"), ssh)
    assert prio.verdict == "accept" and prio.decided_by.rule.origin.text == "zone internal, service ssh"
    # firewalld 1.x has no zone priorities: a located error, exit 2.
    with pytest.raises(RuleAnalyzerError, match="zone priorities need firewalld 2.0") as info:
        load(_blog(tmp_path / "again"), firewalld_version="1.3.3")
    assert info.value.location.file.endswith("internal.xml") and info.value.location.line == 2


#: firewalld's own test of StrictForwardPorts (src/tests/features/strict_forward_ports.at): three
#: policies with forward-ports, and the chains it expects with the key off and on.
STRICT_POLICIES = {
    "inputPolicy": '<policy target="CONTINUE">\n  <ingress-zone name="ANY"/>\n  <egress-zone name="HOST"/>\n'
                   '  <forward-port port="12345" protocol="tcp" to-port="54321"/>\n</policy>\n',
    "forwardPolicy": '<policy target="CONTINUE">\n  <ingress-zone name="ANY"/>\n  <egress-zone name="ANY"/>\n'
                     '  <rule family="ipv4" priority="-1"><source address="10.0.0.0/8"/><forward-port port="3333" '
                     'protocol="tcp" to-port="4444" to-addr="10.222.222.222"/></rule>\n</policy>\n',
    "outputPolicy": '<policy target="CONTINUE">\n  <ingress-zone name="HOST"/>\n  <egress-zone name="ANY"/>\n'
                    '  <forward-port port="11111" protocol="tcp" to-port="22222" to-addr="10.20.20.1"/>\n</policy>\n',
}
RFC3964_RULE = ("ip6 daddr { ::/96, ::ffff:0.0.0.0/96, 2002::/24, 2002:a00::/24, 2002:7f00::/24, 2002:a9fe::/32, "
                "2002:ac10::/28, 2002:c0a8::/32, 2002:e000::/19 } reject with icmpv6 addr-unreachable")


@pytest.mark.parametrize("strict", ["no", "yes"])
def test_strict_forward_ports_as_firewalld_own_test_expects(tmp_path, strict):
    root = _config(tmp_path, {}, f"DefaultZone=public\nStrictForwardPorts={strict}\n")
    (root / "policies").mkdir()
    for name, body in STRICT_POLICIES.items():
        (root / "policies" / f"{name}.xml").write_text(body)
    rs = load(root, firewalld_version="2.3.0")

    def listed(chain):  # the .at file prints "ct state established,related"
        return [r.replace("{ established, related }", "established,related") for r in _rules(rs, chain)]

    dnat = {"no": ["ct status dnat accept"] * 3,
            "yes": [f"ct status dnat jump filter_{c}_dnat" for c in ("INPUT", "FORWARD", "OUTPUT")]}[strict]
    assert listed("filter_INPUT") == ["ct state established,related accept", dnat[0], 'iifname "lo" accept',
                                      "ct state invalid drop", "jump filter_INPUT_POLICIES",
                                      "reject with icmpx admin-prohibited"]
    assert listed("filter_FORWARD") == ["ct state established,related accept", dnat[1], 'iifname "lo" accept',
                                        "ct state invalid drop", RFC3964_RULE, "jump filter_FORWARD_POLICIES",
                                        "reject with icmpx admin-prohibited"]
    assert listed("filter_OUTPUT") == ["ct state established,related accept", dnat[2], 'oifname "lo" accept',
                                       RFC3964_RULE, "jump filter_OUTPUT_POLICIES"]
    table = next(t for t in rs.tables if t.name == "firewalld")
    if strict == "no":
        assert not any(name.endswith("_dnat") for name in table.chains)
        return
    for chain, port in (("INPUT", 12345), ("FORWARD", 3333), ("OUTPUT", 11111)):
        assert listed(f"filter_{chain}_dnat") == [f"ct original proto-dst {port} accept",
                                                  "reject with icmpx admin-prohibited"]
    accept = table.chains["filter_FORWARD_dnat"].rules[0]
    assert accept.origin.text.startswith("policy forwardPolicy, rule priority=\"-1\"")
    assert accept.location.file.endswith("forwardPolicy.xml") and accept.location.line == 4


def test_strict_forward_ports_only_from_2_3(tmp_path):
    root = _config(tmp_path, {"public": '<zone>\n  <interface name="eth0"/>\n  <forward-port port="8080" '
                                        'protocol="tcp" to-port="80" to-addr="10.0.0.5"/>\n</zone>\n'},
                   "DefaultZone=public\nStrictForwardPorts=yes\n")
    strict = load(root, firewalld_version="2.3.0")
    assert _rules(strict, "filter_FORWARD_dnat") == ["ct original proto-dst 8080 accept",
                                                     "reject with icmpx admin-prohibited"]
    dnat = next(t for t in strict.tables if t.name == "firewalld").chains["filter_FORWARD_dnat"].rules[0]
    assert dnat.origin.text.startswith("zone public, forward-port 8080/tcp") and dnat.location.line == 3
    # Before 2.3 the key is unknown: the generic accept stays (and OUTPUT has none), and we say so.
    old = load(root, firewalld_version="2.2.0")
    assert _rules(old, "filter_FORWARD")[1] == "ct status dnat accept"
    assert "ct status dnat accept" not in _rules(old, "filter_OUTPUT")
    assert any("StrictForwardPorts came with firewalld 2.3" in d.message for d in old.diagnostics)


def test_version_comes_from_the_option_the_config_or_the_snapshot(tmp_path):
    root = _blog(tmp_path)  # .../prio/etc/firewalld
    snapshot = root.parent.parent
    (snapshot / "versions.txt").write_text("nft: nftables v1.0.9\nfirewalld: 2.1.1\n")
    assert load(snapshot).meta["firewalld"]["layout"] == "2.x"
    # the record is outside etc/firewalld given alone: not read (the reader stays in its tree)
    with pytest.raises(RuleAnalyzerError, match="zone priorities"):
        load(root)
    assert load(root, firewalld_version="2.0.0").meta["firewalld"]["version"] == "2.0.0"
    (snapshot / "versions.txt").unlink()
    with pytest.raises(RuleAnalyzerError, match="zone priorities"):
        load(root)  # 1.3.3 by default
    settings = tmp_path / ".ruleanalyzer.yaml"
    settings.write_text("firewalld-version: 2.1.1\n")
    result = run_audit([str(root)], select=["RA705"], config=load_config(settings))
    assert result.bad_inputs == []
    done = subprocess.run([sys.executable, "-m", "ruleanalyzer", "audit", "--no-config", "--firewalld-version",
                           "two", str(root)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "not a version number" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    done = subprocess.run([sys.executable, "-m", "ruleanalyzer", "audit", "--no-config", "--firewalld-version",
                           "2.1.1", "--select", "RA705", str(root)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_forwarded_traffic_goes_by_ingress_binding_then_egress_binding(tmp_path):
    root = _config(tmp_path, {"dmz": '<zone target="DROP">\n  <interface name="eth2"/>\n</zone>\n',
                              "internal": '<zone target="ACCEPT">\n  <interface name="eth1"/>\n</zone>\n'})
    rs = load(root, firewalld_version="2.1.1")
    rows = _rules(rs, "filter_FORWARD_POLICIES")
    assert rows[:2] == ['iifname "eth2" oifname "eth2" jump filter_FWD_dmz', 'iifname "eth2" oifname "eth2" drop']
    out = evaluate(rs, make_packet(src="10.1.0.5", dst="203.0.113.9", dport=443, iif="eth1", oif="eth0",
                                   hook="forward"))
    assert out.verdict == "accept" and out.decided_by.chain.name == "filter_FORWARD_POLICIES"
    assert out.decided_by.rule.origin.text.startswith("zone internal, target ACCEPT (internal interface eth1 -> public")
    dmz = evaluate(rs, make_packet(src="10.2.0.5", dst="10.1.0.9", dport=443, iif="eth2", oif="eth1", hook="forward"))
    assert dmz.verdict == "drop" and dmz.decided_by.rule.origin.text.startswith("zone dmz, target DROP (dmz interface "
                                                                                "eth2 -> internal interface eth1)")


#: The zones of firewalld's own zone-priority test (src/tests/features/zone_priority.at, the 2.x
#: flat-dispatch version): name -> (ingress priority, egress priority, binding).
PRIORITY_ZONES = {
    "zone-1": (-30000, -30000, "dummy-1"), "zone-2": (-10000, -10000, "dummy-2"),
    "zone-3": (-5000, -2000, "dummy-3"), "zone-4": (-100, 1, "dummy-4"), "zone-5": (-1, 100, "dummy-5"),
    "zone-6": (500, 500, "10.10.10.0/24"), "zone-7": (1000, 1000, "dummy-7"),
    "zone-8": (30000, 30000, "10.0.0.0/8"), "zone-0andlast": (0, 32000, "dummy-9"),
}


def test_dispatch_order_is_firewalld_zone_priority_test(tmp_path):
    """The order that test expects, row for row: every binding by ingress
    priority (then source before interface, then zone name) gets the
    ANY->HOST policy, its zone and its zone's target; forwarded pairs go by
    ingress binding, then egress binding by egress priority, the default
    zone's catch-all last on both sides."""
    zones = {}
    for name, (ingress, egress, binding) in PRIORITY_ZONES.items():
        bind = f'<source address="{binding}"/>' if "/" in binding else f'<interface name="{binding}"/>'
        zones[name] = f'<zone ingress-priority="{ingress}" egress-priority="{egress}">\n  {bind}\n</zone>\n'
    zones["foobar"] = '<zone ingress-priority="-2" egress-priority="-3"/>\n'  # not active: no rows
    rs = load(_config(tmp_path, zones), firewalld_version="2.1.1")

    def match(binding):
        if binding is None:
            return ""
        return f"ip saddr {binding} " if "/" in binding else f'iifname "{binding}" '

    def order(which):
        key = {"in": 0, "out": 1}[which]
        ranked = sorted(PRIORITY_ZONES.items(), key=lambda kv: (kv[1][key], 1 if "/" in kv[1][2] else 2, kv[0]))
        return [(name, b[2]) for name, b in ranked] + [("public", None)]

    reject = "reject with icmpx admin-prohibited"
    expected_in = []
    for zone, binding in order("in"):
        m = match(binding)
        expected_in += [f"{m}jump filter_IN_policy_allow-host-ipv6", f"{m}jump filter_IN_{zone}", f"{m}{reject}"]
    assert _rules(rs, "filter_INPUT_POLICIES") == expected_in
    expected_fwd = []
    for zone, ingress in order("in"):
        for _, egress in order("out"):
            m = ""  # iifname, oifname, saddr, daddr: the order firewalld writes them
            if ingress and "/" not in ingress:
                m += f'iifname "{ingress}" '
            if egress and "/" not in egress:
                m += f'oifname "{egress}" '
            if ingress and "/" in ingress:
                m += f"ip saddr {ingress} "
            if egress and "/" in egress:
                m += f"ip daddr {egress} "
            expected_fwd += [f"{m}jump filter_FWD_{zone}", f"{m}{reject}"]
    assert _rules(rs, "filter_FORWARD_POLICIES") == expected_fwd


def test_a_disabled_policy_builds_nothing_from_2_4(tmp_path):
    """firewalld 2.4's policy sets ship policies with <disable/>; 1.x and 2.0-2.3 refuse the element."""
    root = _config(tmp_path, {"internal": '<zone>\n  <interface name="eth1"/>\n</zone>\n'})
    (root / "policies").mkdir()
    (root / "policies" / "lan-to-host.xml").write_text(
        '<policy target="CONTINUE" priority="1000">\n  <disable />\n  <ingress-zone name="internal"/>\n'
        '  <egress-zone name="HOST"/>\n  <service name="ssh"/>\n</policy>\n')
    rs = load(root, firewalld_version="2.4.0")
    table = next(t for t in rs.tables if t.name == "firewalld")
    assert not any("lan-to-host" in name for name in table.chains)
    with pytest.raises(RuleAnalyzerError, match="<disable/> came with firewalld 2.4") as info:
        load(root, firewalld_version="2.3.0")
    assert info.value.location.line == 2
    (root / "policies" / "lan-to-host.xml").write_text(
        '<policy target="CONTINUE" priority="1000">\n  <ingress-zone name="internal"/>\n'
        '  <egress-zone name="HOST"/>\n  <service name="ssh"/>\n</policy>\n')
    assert 'iifname "eth1" jump filter_IN_policy_lan-to-host' in _rules(load(root, firewalld_version="2.4.0"),
                                                                        "filter_INPUT_POLICIES")


def test_a_2x_dump_is_named_back_to_zones(tmp_path):
    """An nft dump of the 2.x layout (here our own compile of it) read as nft names its chains back."""
    dump = tmp_path / "ruleset.nft"
    dump.write_text(load(_blog(tmp_path), firewalld_version="2.1.1").meta["firewalld"]["nft"])
    table = next(t for t in load(dump).tables if t.name == "firewalld")
    assert table.chains["filter_IN_internal_allow"].rules[0].origin.text == \
        "zone internal, to the host, allow rules: tcp dport 22 accept"
    assert table.chains["filter_OUT_internal"].rules[0].origin.text.startswith("zone internal, from the host")


@pytest.mark.parametrize("mode, version, prerouting, forward", [
    ("loose", "2.2.0", "meta nfproto ipv6 fib saddr . mark oif missing drop", None),
    ("loose-forward", "2.2.0", None, "meta nfproto ipv6 fib saddr . mark oif missing drop"),
    ("strict-forward", "2.3.0", None, "meta nfproto ipv6 fib saddr . mark . iif oif missing drop"),
    ("loose", "2.1.1", "meta nfproto ipv6 fib saddr . mark . iif oif missing drop", None),  # unknown: yes
])
def test_ipv6_rpfilter_modes_of_2_2(tmp_path, mode, version, prerouting, forward):
    rs = load(_config(tmp_path, {}, f"DefaultZone=public\nIPv6_rpfilter={mode}\n"), firewalld_version=version)
    pre, fwd = _rules(rs, "filter_PREROUTING"), _rules(rs, "filter_FORWARD")
    if prerouting:
        assert pre == ["icmpv6 type { nd-router-advert, nd-neighbor-solicit } accept", prerouting]
    else:
        assert pre == [] and fwd[0] == forward
        assert fwd[5].startswith("ip6 daddr { ::/96")  # RFC3964 one further down (its index + 1)
    if version == "2.1.1":
        assert any("came with firewalld 2.2" in d.message for d in rs.diagnostics)


def test_nftables_flowtable_of_2_0(tmp_path):
    conf = "DefaultZone=public\nNftablesFlowtable=eth0 eth1\n"
    rs = load(_config(tmp_path, {}, conf), firewalld_version="2.0.0")
    assert "flowtable fastpath {\n\t\thook ingress priority filter + 10\n\t\tdevices = { eth0, eth1 }" in \
        rs.meta["firewalld"]["nft"]
    forward = _rules(rs, "filter_FORWARD")
    assert forward[:2] == ["ct state { established, related } meta l4proto { tcp, udp } flow add @fastpath",
                           "ct state { established, related } accept"]
    assert forward[5].startswith("ip6 daddr { ::/96")  # RFC3964 one further down
    # firewalld 1.3 does not know the key: no flowtable
    assert "flowtable" not in load(_config(tmp_path / "old", {}, conf)).meta["firewalld"]["nft"]


def test_the_version_reaches_a_zone_file_given_alone(tmp_path):
    path = tmp_path / "internal.xml"
    path.write_text(INTERNAL.format(prio=' priority="-10"'))
    with pytest.raises(RuleAnalyzerError, match="zone priorities need firewalld 2.0"):
        load(path)
    rs = load(path, firewalld_version="2.1.1")
    assert rs.meta["firewalld"]["layout"] == "2.x"
    assert 'iifname "dummy0" jump filter_IN_internal' in _rules(rs, "filter_INPUT_POLICIES")


def test_forward_pairs_of_sources_agree_in_family_as_firewalld_checks(tmp_path):
    """``check_source``: an ipv4 ipset pairs with an IPv4 network, never with an IPv6 one."""
    root = _config(tmp_path, {"a": '<zone>\n  <source ipset="office"/>\n</zone>\n',
                              "b": '<zone>\n  <source address="10.0.0.0/8"/>\n  <source address="fd00::/8"/>\n</zone>\n'})
    (root / "ipsets").mkdir()
    (root / "ipsets" / "office.xml").write_text(IPSET)
    rows = _rules(load(root, firewalld_version="2.1.1"), "filter_FORWARD_POLICIES")
    assert "ip saddr @office ip daddr 10.0.0.0/8 jump filter_FWD_a" in rows
    assert not any("@office" in r and "fd00::/8" in r for r in rows)


def test_the_2x_scaffolding_is_not_reported_as_the_users(tmp_path):
    """PREROUTING cannot match the egress interface, so firewalld 2.x writes rows that differ only in
    their sort key: firewalld's idiom, not the user's duplicates (RA505) or dead rules (RA504)."""
    from collections import Counter

    root = _blog(tmp_path, priority=False)
    codes = {v: Counter(f.code for f in run_audit([load(root, firewalld_version=v)]).findings if f.code != "RA002")
             for v in ("1.3.3", "2.1.1")}
    assert codes["2.1.1"] == codes["1.3.3"]
    prio = run_audit([load(_blog(tmp_path / "p"), firewalld_version="2.1.1")]).findings
    assert not [f for f in prio if f.code in ("RA504", "RA505")]
