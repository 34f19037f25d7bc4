"""Fix notes for firewalld findings, one line in firewall-cmd terms, naming
the zone as firewalld knows it: a zone file copied under a flattened
``owner__repo__zones__public.xml`` name is zone public, a name firewalld
refuses for its length is said as too long (never put in a command that
would fail), and a file named for nothing is ``<zone>``."""

from __future__ import annotations

import ipaddress

import pytest

from ruleanalyzer import load, loads
from ruleanalyzer.audit import run_audit
from ruleanalyzer.errors import RuleAnalyzerError

from .test_parser_firewalld import _config

RICH = ('<zone>\n  <rule family="ipv4"><source address="192.0.2.10"/><service name="ssh"/><accept/></rule>\n'
        '  <rule family="ipv4"><source address="192.0.2.0/24"/><drop/></rule>\n  <service name="http"/>\n'
        '  <rule family="ipv4" priority="10"><source address="198.51.100.0/24"/><drop/></rule>\n'
        '  <rule family="ipv4"><service name="telnet"/><accept/></rule>\n</zone>\n')
ZONE = "firewall-cmd --permanent --zone=public"
BINDINGS = {"alpha": '<zone>\n  <source address="10.0.0.0/8"/>\n</zone>\n',
            "beta": '<zone>\n  <source address="10.1.0.0/16"/>\n</zone>\n'}


def _fixes(name: str, codes: list[str]) -> dict[str, str]:
    rs = loads(RICH, dialect="firewalld", name=name)
    return {f.code: f.fix for f in run_audit([rs], select=codes).findings if f.fix}


def test_rich_rule_fixes_move_the_rule_by_priority():
    fixes = _fixes("owner__repo__etc__firewalld__zones__public.xml", ["RA701", "RA702", "RA401"])
    assert fixes["RA701"] == (
        f"{ZONE} --remove-rich-rule='rule family=\"ipv4\" source address=\"192.0.2.10\" service name=\"ssh\" "
        f"accept'; {ZONE} --add-rich-rule='rule priority=\"-1\" family=\"ipv4\" source address=\"192.0.2.10\" "
        "service name=\"ssh\" accept'; firewall-cmd --reload")
    assert fixes["RA702"] == (
        f"{ZONE} --remove-rich-rule='rule priority=\"10\" family=\"ipv4\" source address=\"198.51.100.0/24\" "
        f"drop'; {ZONE} --add-rich-rule='rule priority=\"-1\" family=\"ipv4\" source address=\"198.51.100.0/24\" "
        "drop'; firewall-cmd --reload")
    # a rich rule keeps its "rule" word when it is narrowed (it was dropped before)
    assert (f"{ZONE} --remove-rich-rule='rule family=\"ipv4\" service name=\"telnet\" accept'; {ZONE} "
            "--add-rich-rule='rule family=\"ipv4\" source address=\"<your networks>\" service name=\"telnet\" "
            "accept'") in fixes["RA401"]


def test_a_zone_name_firewalld_refuses_is_said_as_too_long():
    fixes = _fixes("firewalld__firewalld__zones__kube-control-plane.xml", ["RA701", "RA401"])
    for fix in fixes.values():
        assert fix.startswith("zone name 'kube-control-plane' has 18 characters and firewalld refuses zone "
                              "names over 17")
        assert "--zone=kube-control-plane" not in fix and "--zone=<new name>" in fix
    rs = loads(RICH, dialect="firewalld", name="kube-control-plane.xml")
    assert any("firewalld refuses zone names longer than 17" in d.message for d in rs.diagnostics)


def test_a_file_named_for_nothing_gives_zone_placeholder():
    fixes = _fixes("zone.public.v2.xml", ["RA701"])
    assert fixes["RA701"].startswith("firewall-cmd --permanent --zone=<zone> --remove-rich-rule=")


def test_a_directory_with_a_too_long_zone_name_is_refused(tmp_path):
    (tmp_path / "zones").mkdir()
    (tmp_path / "firewalld.conf").write_text("DefaultZone=public\n")
    (tmp_path / "zones" / "kube-control-plane.xml").write_text('<zone>\n<interface name="eth0"/></zone>\n')
    with pytest.raises(RuleAnalyzerError, match="longer than 17 characters: firewalld refuses it"):
        load(tmp_path)


def test_binding_default_zone_and_dnat_fixes_are_firewall_cmd(tmp_path):
    from ruleanalyzer.checks.base import Context
    from ruleanalyzer.checks.firewalld import DefaultZoneCatchesInterface
    from ruleanalyzer.host import HostContext

    root = _config(tmp_path, {"internal": '<zone>\n  <interface name="eth1"/>\n</zone>\n',
                              "work": '<zone>\n  <service name="ssh"/>\n</zone>\n'})
    rs = load(root)
    rs.host = HostContext(addresses={"lo": [], "ens4": [ipaddress.ip_interface("10.0.0.1/24")]})
    [f706] = list(DefaultZoneCatchesInterface().run(Context(rs)))
    assert f706.fix == ("firewall-cmd --permanent --zone=internal --remove-interface=eth1; firewall-cmd --permanent "
                        "--zone=internal --add-interface=ens4; firewall-cmd --reload")
    [f705] = run_audit([str(root)], select=["RA705"]).findings
    assert f705.fix.startswith("firewall-cmd --permanent --zone=work --add-interface=<interface>; "
                               "firewall-cmd --reload")
    assert "firewall-cmd --permanent --zone=public --add-service=ssh" in f705.fix
    docker = tmp_path / "docker.rules"
    docker.write_text("*nat\n:PREROUTING ACCEPT [0:0]\n:DOCKER - [0:0]\n-A PREROUTING -m addrtype --dst-type LOCAL "
                      "-j DOCKER\n-A DOCKER ! -i docker0 -p tcp --dport 5432 -j DNAT --to-destination "
                      "172.17.0.2:5432\nCOMMIT\n")
    [f704] = run_audit([], select=["RA704"], together=[[str(root), str(docker)]]).findings
    assert ("firewall-cmd --permanent --zone=public --add-forward-port=port=5432:proto=tcp:toport=5432:"
            "toaddr=172.17.0.2; firewall-cmd --reload") in f704.fix


def test_binding_never_taking_effect_fix_narrows_the_earlier_binding(tmp_path):
    root = _config(tmp_path, BINDINGS)
    [f] = run_audit([str(root)], select=["RA703"]).findings
    assert f.fix == ("firewall-cmd --permanent --zone=alpha --remove-source=10.0.0.0/8; firewall-cmd --permanent "
                     "--zone=alpha --add-source=<10.0.0.0/8 without 10.1.0.0/16>; firewall-cmd --reload "
                     "(firewalld 1.x tries sources in zone-name order; on firewalld 2.x: firewall-cmd --permanent "
                     "--zone=beta --set-priority=-1)")


def test_binding_never_taking_effect_on_2x_and_its_priority_fix(tmp_path):
    root = _config(tmp_path, BINDINGS)
    [f] = run_audit([str(root)], select=["RA703"], firewalld_version="2.1.1").findings
    assert f.message.startswith("zone beta, source 10.1.0.0/16: every packet it would take goes to zone alpha, "
                                "source 10.0.0.0/8 first")
    assert f.fix.endswith("on firewalld 2.x: firewall-cmd --permanent --zone=beta --set-priority=-1)")
    # with beta's priority set (2.x), beta's source is tried first: nothing to report
    (root / "zones" / "beta.xml").write_text('<zone priority="-1">\n  <source address="10.1.0.0/16"/>\n</zone>\n')
    assert run_audit([str(root)], select=["RA703"], firewalld_version="2.1.1").findings == []
