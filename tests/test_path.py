"""Path evaluation across several firewalls: which hop eats which leg."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from ruleanalyzer.cli import main
from ruleanalyzer.engine.path import trace_path
from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.report.path import render_mermaid
from ruleanalyzer.topology import load_topology

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "topologies"


def topo(name: str):
    return load_topology(FIXTURES / name / "topology.yaml")


def leg(variant, name):
    return next(l for l in variant.legs if l.name == name)


def run_cli(*argv) -> tuple[int, str]:
    out = io.StringIO()
    import contextlib

    with contextlib.redirect_stdout(out):
        code = main(list(argv))
    return code, out.getvalue()


def write(tmp_path: Path, text: str, **files: str) -> Path:
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    path = tmp_path / "topology.yaml"
    path.write_text(text)
    return path


# -- the lab of the kernel test ---------------------------------------------------


def test_syn_ack_dies_at_the_router_without_an_established_rule():
    report = trace_path(topo("two-firewalls"), "client", "server", 8080, ecn="off")
    plain = report.routes[0].variants[0]
    syn, synack = leg(plain, "SYN"), leg(plain, "SYN-ACK")
    assert syn.verdict == "accept"
    assert [c.node.name for c in syn.checks] == ["fw1", "fw2"]
    assert [c.packet.hook for c in syn.checks] == ["forward", "forward"]
    dead = synack.first_failure
    assert (dead.node.name, dead.verdict) == ("fw1", "drop")
    assert dead.result.decided_by.is_policy
    assert [c.node.name for c in synack.checks] == ["fw2", "fw1"]     # replies travel back
    assert leg(plain, "ACK").verdict == "not sent"
    assert report.passes is False
    sentence = report.explain()[0]
    assert "the SYN reaches server; the SYN-ACK is dropped at fw1" in sentence
    assert "ESTABLISHED,RELATED" in sentence


def test_ecn_syn_dies_at_the_second_router():
    report = trace_path(topo("two-firewalls"), "client", "server", 8080, ecn="on")
    ecn = report.routes[0].variants[0]
    first = ecn.legs[0]
    assert first.name.startswith("SYN+ECE+CWR")
    assert (first.first_failure.node.name, first.first_failure.result.decided_by.rule.index) == ("fw2", 1)
    # Linux's fallback (plain SYN) passes fw2 but its SYN-ACK still dies at fw1.
    retry = report.routes[0].plain_retry
    assert leg(retry, "SYN-ACK").first_failure.node.name == "fw1"
    assert "The retry without ECN is blocked too" in report.explain()[0]


def test_interfaces_face_the_neighbours():
    report = trace_path(topo("two-firewalls"), "client", "server", 8080, ecn="off")
    syn = report.routes[0].variants[0].legs[0]
    assert [(c.packet.iif, c.packet.oif) for c in syn.checks] == [("f1a", "f1b"), ("f2a", "f2b")]


# -- clouds ----------------------------------------------------------------------


def test_stateless_nacl_needs_an_egress_rule_for_replies():
    report = trace_path(topo("aws-three-tier"), "web", "app", 8080, ecn="off")
    plain = report.routes[0].variants[0]
    assert plain.route == ["web", "public-subnet", "vpc-router", "app-subnet", "app"]
    assert leg(plain, "SYN").verdict == "accept"
    dead = leg(plain, "SYN-ACK").first_failure
    assert (dead.node.name, dead.side, dead.firewall.stateful) == ("app-subnet", "egress", False)
    assert dead.packet.state == "untracked"
    sentence = report.explain()[0]
    assert "add an egress rule allowing tcp 1024-65535" in sentence


def test_security_groups_are_stateful_and_inventory_resolves_references():
    report = trace_path(topo("aws-three-tier"), "app", "db", 5432, ecn="off")
    assert report.passes is True
    synack = leg(report.routes[0].variants[0], "SYN-ACK")
    sg = next(c for c in synack.checks if c.node.name == "db")
    assert sg.side == "egress" and sg.packet.state == "established"   # sg-db has no egress rules


def test_subnet_acl_is_crossed_only_at_the_subnet_edge():
    report = trace_path(topo("aws-three-tier"), "internet", "web", 443, ecn="off")
    syn = report.routes[0].variants[0].legs[0]
    assert [(c.node.name, c.side) for c in syn.checks] == [("public-subnet", "ingress"),
                                                           ("web", "ingress")]
    assert report.passes is True


def test_gcp_and_host_nftables_ecn_trap_falls_back():
    report = trace_path(topo("gcp-host"), "internet", "api", 443, ecn="both")
    plain, ecn = report.routes[0].variants
    assert plain.passes is True
    dead = ecn.legs[0].first_failure
    assert (dead.node.name, dead.firewall.name) == ("api", "nftables")
    assert report.passes is True          # Linux retries without ECN
    assert "retries an unanswered SYN after 1 s" in report.explain()[1]


# -- NAT -------------------------------------------------------------------------


def test_docker_published_port_bypasses_input():
    report = trace_path(topo("docker-ufw"), "laptop", "db-host", 5432, ecn="off")
    variant = report.routes[0].variants[0]
    assert report.passes is True
    assert variant.route == ["laptop", "internet", "db-host", "postgres"]
    syn = variant.legs[0].checks[0]
    assert (syn.packet.hook, syn.result.outcome, str(syn.result.packet.dst)) == (
        "input", "forwarded", "172.17.0.2")
    assert syn.packet.oif == "docker0"
    assert any("never reaches INPUT" in n and "DOCKER rule 1" in n for n in variant.notes)
    synack = leg(variant, "SYN-ACK").checks[0]
    assert (synack.packet.hook, str(synack.packet.src)) == ("forward", "172.17.0.2")


def test_unpublished_port_is_refused_by_ufw():
    report = trace_path(topo("docker-ufw"), "laptop", "db-host", 6379, ecn="off")
    dead = report.routes[0].variants[0].legs[0].first_failure
    assert dead.result.decided_by.chain.name == "ufw-reject-input"
    assert "refused at once" in report.explain()[0]


ROUTER = """*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -s 10.0.0.0/24 -o wan0 -j MASQUERADE
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m state --state RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -i lan0 -o wan0 -j ACCEPT
COMMIT
"""
SERVER = """*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m conntrack --ctstate ESTABLISHED -j ACCEPT
-A INPUT -s 198.51.100.10/32 -p tcp --dport 443 -j ACCEPT
COMMIT
"""
NAT_TOPOLOGY = """
nodes:
  pc: {address: 10.0.0.5, interfaces: {eth0: router}}
  router:
    kind: router
    address: 10.0.0.1
    interfaces: {lan0: pc, wan0: {to: server, address: 198.51.100.10}}
    firewalls: [router.rules]
  server:
    address: 203.0.113.80
    interfaces: {eth0: router}
    firewalls: [server.rules]
"""


def test_masquerade_means_later_hops_see_the_router_address(tmp_path):
    path = write(tmp_path, NAT_TOPOLOGY, **{"router.rules": ROUTER, "server.rules": SERVER})
    report = trace_path(load_topology(path), "pc", "server", 443, ecn="off")
    variant = report.routes[0].variants[0]
    at_server = variant.legs[0].checks[-1]
    assert str(at_server.packet.src) == "198.51.100.10"
    assert report.passes is True
    reply_at_router = leg(variant, "SYN-ACK").checks[-1]
    assert str(reply_at_router.packet.dst) == "10.0.0.5"      # FORWARD sees it de-NATed


def test_unknown_when_a_rule_depends_on_an_ipset(tmp_path):
    rules = ROUTER.replace("-A FORWARD -i lan0 -o wan0 -j ACCEPT",
                           "-A FORWARD -m set --match-set allowed dst -j ACCEPT")
    path = write(tmp_path, NAT_TOPOLOGY, **{"router.rules": rules, "server.rules": SERVER})
    report = trace_path(load_topology(path), "pc", "server", 443, ecn="off")
    assert report.passes is None
    assert "depends on" in report.explain()[0]
    code, _ = run_cli("path", str(path), "--from", "pc", "--to", "server", "--dport", "443",
                      "--ecn", "off")
    assert code == 3


def test_equal_cost_routes_are_all_reported(tmp_path):
    text = """
nodes:
  a: {address: 192.0.2.1}
  b: {address: 192.0.2.2}
  good: {kind: router, firewalls: [open.rules]}
  bad: {kind: router, firewalls: [closed.rules]}
links: [[a, good], [good, b], [a, bad], [bad, b]]
"""
    open_rules = "*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n"
    closed = "*filter\n:FORWARD DROP [0:0]\nCOMMIT\n"
    path = write(tmp_path, text, **{"open.rules": open_rules, "closed.rules": closed})
    report = trace_path(load_topology(path), "a", "b", 80, ecn="off")
    assert [r.route for r in report.routes] == [["a", "bad", "b"], ["a", "good", "b"]]
    assert [r.passes for r in report.routes] == [False, True]
    assert report.passes is False


# -- the command line ------------------------------------------------------------------


def test_cli_exit_codes_and_text():
    t = str(FIXTURES / "two-firewalls" / "topology.yaml")
    code, text = run_cli("path", t, "--from", "client", "--to", "server", "--dport", "8080")
    assert code == 1
    assert "SYN-ACK dies at fw1" in text
    docker = str(FIXTURES / "docker-ufw" / "topology.yaml")
    assert run_cli("path", docker, "--from", "laptop", "--to", "db-host", "--dport", "5432")[0] == 0


def test_cli_json():
    t = str(FIXTURES / "aws-three-tier" / "topology.yaml")
    code, text = run_cli("path", t, "--from", "web", "--to", "app", "--dport", "8080",
                         "--ecn", "off", "--format", "json")
    data = json.loads(text)
    assert code == 1 and data["passes"] is False
    failure = data["routes"][0]["variants"][0]["first_failure"]
    assert failure == {**failure, "leg": "SYN-ACK", "node": "app-subnet", "side": "egress",
                       "hook": "output"}
    assert failure["decided_by"]["policy"] == "drop"


def test_cli_mermaid():
    t = str(FIXTURES / "two-firewalls" / "topology.yaml")
    code, text = run_cli("path", t, "--from", "client", "--to", "server", "--dport", "8080",
                         "--format", "mermaid")
    assert text.startswith("flowchart LR")
    assert "class n1 drop" in text and "class n2 drop" in text     # fw1 and fw2
    assert "✗ SYN-ACK — iptables: FORWARD policy DROP" in text


def test_cli_bad_input_exits_2(tmp_path, capsys):
    t = str(FIXTURES / "two-firewalls" / "topology.yaml")
    assert main(["path", t, "--from", "client", "--to", "sever", "--dport", "80"]) == 2
    assert "did you mean 'server'" in capsys.readouterr().err
    assert main(["path", t, "--from", "client", "--to", "server", "--dport", "0"]) == 2
    assert main(["path", t, "--from", "client", "--to", "server", "--dport", "53",
                 "--proto", "udp"]) == 2
    bad = write(tmp_path, "nodes:\n  a:\n    firewalls: [../x.rules]\n")
    assert main(["path", str(bad), "--from", "a", "--to", "a", "--dport", "1"]) == 2
    assert "outside the topology" in capsys.readouterr().err


def test_render_mermaid_marks_a_working_path_green():
    report = trace_path(topo("aws-three-tier"), "app", "db", 5432, ecn="off")
    picture = render_mermaid(report)
    assert "class" in picture and "drop" not in picture.split("classDef")[0]


def _decisions(report):
    out = []
    for analysis in report.routes:
        for variant in analysis.variants:
            for leg in variant.legs:
                for c in leg.checks:
                    d = c.result.decided_by
                    out.append((leg.name, c.node.name, c.side, c.verdict,
                                d.describe() if d else None, c.result.outcome))
    return out


@pytest.mark.parametrize("name, source, target, port", [
    ("two-firewalls", "client", "server", 8080), ("aws-three-tier", "web", "app", 8080),
    ("docker-ufw", "laptop", "db-host", 5432), ("gcp-host", "internet", "api", 443),
])
def test_slicing_big_rulesets_changes_no_answer(monkeypatch, name, source, target, port):
    """Rules that cannot match the connection are skipped for speed; the
    verdicts and the deciding rules (index, line) must stay the same."""
    fast = _decisions(trace_path(topo(name), source, target, port, ecn="both"))
    from ruleanalyzer.engine import path as path_module

    monkeypatch.setattr(path_module._Slicer, "slice", lambda self, ruleset, values: ruleset)
    slow = _decisions(trace_path(topo(name), source, target, port, ecn="both"))
    assert fast == slow
