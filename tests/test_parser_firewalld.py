"""The firewalld reader: origins, located errors, combination with other
tables, and the checks that need more than one input (RA704, RA706)."""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ruleanalyzer import load, loads
from ruleanalyzer.audit import run_audit
from ruleanalyzer.engine import evaluate
from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.packets import make_packet

CONFIGS = Path(__file__).parent / "firewalld" / "configs"


def _config(tmp_path: Path, zones: dict[str, str], conf: str = "DefaultZone=public\n") -> Path:
    root = tmp_path / "etc_firewalld"
    (root / "zones").mkdir(parents=True)
    (root / "firewalld.conf").write_text(conf)
    for name, body in zones.items():
        (root / "zones" / f"{name}.xml").write_text(body)
    return root


def test_answers_name_the_zone_setting_and_its_line():
    rs = load(CONFIGS / "gateway")
    result = evaluate(rs, make_packet(src="203.0.113.5", dst="192.0.2.1", dport=22, iif="rafw0"))
    assert result.verdict == "accept"
    rule = result.decided_by.rule
    assert rule.origin.text == "zone public, service ssh"
    assert rule.location.file.endswith("zones/public.xml") and rule.location.line == 5


def test_sources_win_over_interfaces_and_the_default_zone_catches_the_rest():
    rs = load(CONFIGS / "gateway")
    # 10.1.2.3 lies in dmz's 10.1.0.0/16 (DROP) and internal's 10.0.0.0/8
    # (ACCEPT): sources go by zone name, so dmz decides — not the longest
    # prefix, and not the interface's zone (public).
    inside = evaluate(rs, make_packet(src="10.1.2.3", dst="192.0.2.1", dport=9999, iif="rafw0"))
    assert inside.verdict == "drop" and inside.decided_by.chain.name == "filter_IN_dmz"
    lan = evaluate(rs, make_packet(src="10.2.3.4", dst="192.0.2.1", dport=9999, iif="rafw0"))
    assert lan.verdict == "accept" and lan.decided_by.chain.name == "filter_IN_internal"
    other = evaluate(rs, make_packet(src="203.0.113.5", dst="192.0.2.1", dport=9999, iif="eth7"))
    assert other.verdict == "drop" and other.decided_by.chain.name == "filter_IN_public"


@pytest.mark.parametrize("body, message", [
    ('<zone><service name="ssh"></zone>', "malformed XML"),
    ('<?xml version="1.0"?>\n<!DOCTYPE z [<!ENTITY a "aaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>\n<zone>&b;</zone>',
     "entity or DTD refused"),
    ('<!DOCTYPE z [<!ENTITY x SYSTEM "file:///etc/passwd">]><zone>&x;</zone>', "entity or DTD refused"),
    ('<zone>\n  <target>DROP</target>\n</zone>', "unexpected element <target>"),
    ('<zone>\n  <service name="no-such-service"/>\n</zone>', "does not exist"),
    ('<zone target="BLOCK"/>', "invalid zone target"),
])
def test_bad_zone_files_are_located_errors_with_exit_2(tmp_path, body, message):
    path = tmp_path / "web.xml"
    path.write_text(body)
    with pytest.raises(RuleAnalyzerError) as info:
        load(path)
    assert message in info.value.message
    assert info.value.location.file == str(path) and info.value.location.line >= 1
    done = subprocess.run([sys.executable, "-m", "ruleanalyzer", "audit", str(path)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr


def test_same_interface_in_two_zones_is_refused_as_firewalld_does(tmp_path):
    root = _config(tmp_path, {"a": '<zone><interface name="eth0"/></zone>',
                              "b": '<zone>\n<interface name="eth0"/></zone>'})
    with pytest.raises(RuleAnalyzerError, match="bound to zone 'b' and to zone 'a'"):
        load(root)


def test_a_zone_file_alone_is_read_as_the_default_zone_and_says_so():
    rs = loads('<zone target="DROP"><service name="ssh"/></zone>', name="web.xml")
    assert rs.meta["dialect"] == "firewalld"
    assert any("read as the default zone" in d.message for d in rs.diagnostics)
    assert evaluate(rs, make_packet(src="198.51.100.1", dst="192.0.2.1", dport=80)).verdict == "drop"


def test_docker_published_port_passes_a_drop_zone_ra704(tmp_path):
    root = _config(tmp_path, {"public": '<zone target="DROP"><interface name="eth0"/></zone>'})
    docker = tmp_path / "docker.rules"
    docker.write_text("*nat\n:PREROUTING ACCEPT [0:0]\n:DOCKER - [0:0]\n-A PREROUTING -m addrtype --dst-type LOCAL "
                      "-j DOCKER\n-A DOCKER ! -i docker0 -p tcp --dport 5432 -j DNAT --to-destination "
                      "172.17.0.2:5432\nCOMMIT\n")
    findings = run_audit([], select=["RA704"], together=[[str(root), str(docker)]]).findings
    assert [f.code for f in findings] == ["RA704"]
    assert "5432" in findings[0].message and findings[0].where.file == str(docker)
    strict = _config(tmp_path / "s", {"public": '<zone target="DROP"><interface name="eth0"/></zone>'},
                     "DefaultZone=public\nStrictForwardPorts=yes\n")
    # firewalld 1.3 does not know the key (it logs an error and keeps ct status dnat accept);
    # 2.3 builds the strict DNAT chain (see tests/test_firewalld_layout2.py).
    assert [f.code for f in run_audit([], select=["RA704"], together=[[str(strict), str(docker)]]).findings] \
        == ["RA704"]
    assert run_audit([], select=["RA704"], together=[[str(strict), str(docker)]],
                     firewalld_version="2.3.0").findings == []
    alone = run_audit([str(root)], select=["RA704"]).findings
    assert alone == []


def test_default_zone_catches_a_renamed_interface_ra706(tmp_path):
    from ruleanalyzer.checks.base import Context
    from ruleanalyzer.checks.firewalld import DefaultZoneCatchesInterface
    from ruleanalyzer.host import HostContext

    root = _config(tmp_path, {"internal": '<zone>\n  <interface name="eth1"/>\n  <service name="nfs"/>\n</zone>'},
                   "DefaultZone=trusted\n")
    rs = load(root)
    rs.host = HostContext(addresses={"lo": [], "ens3": [ipaddress.ip_interface("192.0.2.1/24")],
                                     "ens4": [ipaddress.ip_interface("10.0.0.1/24")]})
    found = list(DefaultZoneCatchesInterface().run(Context(rs)))
    assert len(found) == 1 and "eth1" in found[0].message and "ens3, ens4" in found[0].message
    assert found[0].where.line == 2
    rs.host = HostContext(addresses={"lo": [], "eth1": [ipaddress.ip_interface("10.0.0.1/24")]})
    assert list(DefaultZoneCatchesInterface().run(Context(rs))) == []


def test_firewalld_scaffolding_is_not_reported_by_the_general_checks():
    findings = run_audit([str(CONFIGS / "stock")]).findings
    assert [f for f in findings if f.rule is not None and f.rule.origin and f.rule.origin.generated] == []


def test_a_firewalld_generated_nft_dump_is_named_back_to_zones(tmp_path):
    compiled = load(CONFIGS / "gateway")
    dump = tmp_path / "ruleset.nft"
    dump.write_text(compiled.meta["firewalld"]["nft"])
    rs = load(dump)
    result = evaluate(rs, make_packet(src="203.0.113.5", dst="192.0.2.1", dport=22, iif="rafw0"))
    origin = result.decided_by.rule.origin
    assert origin.tool == "firewalld" and not origin.generated
    assert origin.text.startswith("zone public, to the host, allow rules")
    dispatch = rs.table("firewalld").chains["filter_INPUT_ZONES"].rules[0]
    assert dispatch.origin.generated
