"""``firewall-cmd --list-all`` / ``--list-all-zones`` output: read where it is
complete enough for a zone (what is assumed is said, RA002), refused with
what to give instead where it is not (exit 2)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ruleanalyzer import load, loads
from ruleanalyzer.engine import evaluate
from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.packets import make_packet

ZONES = """\
$ sudo firewall-cmd --list-all-zones
internal (active)
  target: ACCEPT
  icmp-block-inversion: no
  interfaces: eth1
  sources: 10.0.0.0/8
  services: ssh
  ports:
  protocols:
  forward: yes
  masquerade: no
  forward-ports:
  source-ports:
  icmp-blocks:
  rich rules:

public (default, active)
  target: default
  icmp-block-inversion: no
  interfaces: eth0
  sources:
  services: dhcpv6-client ssh
  ports: 8080/tcp 60000-60010/udp
         9090/tcp
  protocols:
  forward: yes
  masquerade: no
  forward-ports: port=2222:proto=tcp:toport=22:toaddr=
  source-ports:
  icmp-blocks: echo-request
  rich rules:
\trule family="ipv4" source address="198.51.100.0/24" port port="9090" protocol="tcp" drop
\trule family="ipv4" source address="203.0.113.0/24" service name="http" log prefix="web " level="info" limit value="1/m" accept
"""


def test_list_all_zones_reads_as_the_zones_it_lists(tmp_path):
    path = tmp_path / "list-all-zones.txt"
    path.write_text(ZONES)
    rs = load(path)
    assert rs.meta["dialect"] == "firewalld" and rs.meta["firewalld"]["default_zone"] == "public"

    def verdict(src, dport, iif="eth0", proto="tcp"):
        return evaluate(rs, make_packet(src=src, dst="192.0.2.1", dport=dport, iif=iif, proto=proto))

    ssh = verdict("192.0.2.50", 22)
    assert ssh.verdict == "accept" and ssh.decided_by.rule.origin.text == "zone public, service ssh"
    assert ssh.decided_by.rule.location.file == str(path) and ssh.decided_by.rule.location.line == 22
    # a port on the continuation line, the rich rules by priority class
    assert verdict("192.0.2.50", 9090).decided_by.rule.location.line == 24
    dropped = verdict("198.51.100.9", 9090)
    assert dropped.verdict == "drop" and dropped.decided_by.rule.location.line == 32
    web = verdict("203.0.113.9", 80)
    assert web.verdict == "accept" and "service name=\"http\"" in web.decided_by.rule.origin.text
    assert verdict("192.0.2.50", 3306).verdict == "drop"
    # the source binding wins over the interface: internal accepts all
    assert verdict("10.1.2.3", 3306).verdict == "accept"
    assert verdict("192.0.2.50", 60005, proto="udp").verdict == "accept"
    note = next(d.message for d in rs.diagnostics if "firewall-cmd output" in d.message)
    assert "stock definitions" in note and "ipsets and direct rules are not in this output" in note
    assert "policies are firewalld's stock ones (give --list-all-policies output with this)" in note


@pytest.mark.parametrize("body, message, line", [
    # cut output: keys without their colon (as a paste that lost its end)
    (ZONES.split("public (default")[0] + "public (active)\n  target: default\n  icmp-block-inversion: no\n"
     "  interfaces: eno1\n  sources:\n  services: ssh\n  ports:\n  protocols:\n  masquerade: no\n"
     "  forward-ports:\n  source-ports\n", "is not a 'key: value' line", 27),
    # a zone block that stops early
    ("public (active)\n  target: default\n  interfaces: eth0\n  services: ssh\n", "not complete enough", 1),
    # a service the stock definitions do not know: its ports are unknown
    (ZONES.replace("services: dhcpv6-client ssh", "services: dhcpv6-client my-app"), "my-app", 22),
    # an ipset source: its entries are not in the output
    (ZONES.replace("sources: 10.0.0.0/8", "sources: ipset:office"), "names an ipset", 6),
    # a policy block that stops early
    ("allow-host-ipv6 (active)\n  target: CONTINUE\n  priority: -15000\n  ingress-zones: ANY\n"
     "  egress-zones: HOST\n", "not complete enough to know what the policy opens", 1),
])
def test_output_that_cannot_say_enough_is_refused_with_what_to_give(tmp_path, body, message, line):
    path = tmp_path / "out.txt"
    path.write_text(body)
    with pytest.raises(RuleAnalyzerError) as info:
        load(path)
    assert message in info.value.message and info.value.location.line == line
    assert "/etc/firewalld" in (info.value.hint or "")
    if line != 27:
        return  # the command line is run once (the cut output): exit 2, the message, no traceback
    done = subprocess.run([sys.executable, "-m", "ruleanalyzer", "audit", "--no-config", str(path)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and message in done.stdout + done.stderr and "Traceback" not in done.stderr


def test_list_all_of_one_zone_says_the_rest_is_stock():
    one = "\n".join(ZONES.splitlines()[16:]) + "\n"  # "public (default, active)" alone
    rs = loads(one, name="list-all.txt")
    note = next(d.message for d in rs.diagnostics if "firewall-cmd output" in d.message)
    assert "only this zone was listed" in note
    assert rs.meta["firewalld"]["default_zone"] == "public"


LAB = ZONES.replace("internal (active)", "lab (active)")
POLICIES = """\
lab-out (active)
  priority: -1
  target: ACCEPT
  ingress-zones: lab
  egress-zones: public
  services:
  ports:
  protocols:
  masquerade: no
  forward-ports:
  source-ports:
  icmp-blocks:
  rich rules:
"""


def test_zones_and_policies_listings_read_together(tmp_path):
    zones, policies = tmp_path / "zones.txt", tmp_path / "policies.txt"
    zones.write_text(LAB)
    policies.write_text(POLICIES)
    # alone, the policy names a zone only the zones' listing has
    with pytest.raises(RuleAnalyzerError, match="zone 'lab' does not exist") as info:
        load(policies)
    assert "--list-all-zones" in info.value.hint and info.value.location.line == 4
    rs = load(zones, policies)
    out = evaluate(rs, make_packet(src="10.1.2.3", dst="203.0.113.9", dport=443, iif="eth1", oif="eth0",
                                   hook="forward"))
    assert out.verdict == "accept" and out.decided_by.rule.origin.text.startswith("policy lab-out, target ACCEPT")
    assert out.decided_by.rule.location.file == str(policies) and out.decided_by.rule.location.line == 1


def test_a_lone_policies_listing_in_a_string_is_refused_too():
    with pytest.raises(RuleAnalyzerError, match="zone 'lab' does not exist"):
        loads(POLICIES, name="policies.txt")
