"""The topology file: nodes, links, firewalls, and located errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.topology import load_topology, parse_topology

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "topologies"

RULES = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"


def write(tmp_path: Path, text: str, **files: str) -> Path:
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    path = tmp_path / "topology.yaml"
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str, **files: str) -> RuleAnalyzerError:
    with pytest.raises(RuleAnalyzerError) as info:
        load_topology(write(tmp_path, text, **files))
    return info.value


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.iterdir() if p.is_dir()))
def test_every_example_topology_loads(name):
    topo = load_topology(FIXTURES / name / "topology.yaml")
    assert topo.nodes
    assert any(node.firewalls for node in topo.nodes.values())


def test_links_come_from_links_interfaces_and_subnets():
    topo = load_topology(FIXTURES / "aws-three-tier" / "topology.yaml")
    assert topo.graph.has_edge("web", "public-subnet")       # subnet: public-subnet
    assert topo.graph.has_edge("igw", "vpc-router")          # links:
    two = load_topology(FIXTURES / "two-firewalls" / "topology.yaml")
    assert two.graph.has_edge("fw1", "fw2")                  # interfaces: {f1b: fw2}
    assert two.node("fw1").interface_to("fw2") == "f1b"


def test_firewall_kinds_and_state():
    topo = load_topology(FIXTURES / "aws-three-tier" / "topology.yaml")
    acl = topo.node("app-subnet").firewalls[0]
    sg = topo.node("app").firewalls[0]
    assert (acl.kind, acl.stateful) == ("boundary", False)
    assert (sg.kind, sg.stateful) == ("boundary", True)
    host = load_topology(FIXTURES / "two-firewalls" / "topology.yaml").node("fw1").firewalls[0]
    assert (host.kind, host.stateful) == ("netfilter", True)


def test_a_file_used_by_several_nodes_is_parsed_once():
    topo = load_topology(FIXTURES / "aws-three-tier" / "topology.yaml")
    acls = [topo.node(n).firewalls[0].ruleset for n in ("public-subnet", "app-subnet")]
    assert acls[0] is not acls[1]                  # different targets
    assert acls[0].sources == acls[1].sources


def test_routes_are_least_cost_and_all_equal_ones(tmp_path):
    text = """
nodes:
  a: {address: 192.0.2.1}
  b: {address: 192.0.2.2}
  r1: {kind: router}
  r2: {kind: router}
  slow: {kind: router}
links:
  - [a, r1]
  - [a, r2]
  - [r1, b]
  - [r2, b]
  - {between: [a, slow], cost: 0.5}
  - {between: [slow, b], cost: 5}
"""
    topo = load_topology(write(tmp_path, text))
    assert topo.routes("a", "b") == [["a", "r1", "b"], ["a", "r2", "b"]]


def test_membership_of_a_subnet_by_address_or_declaration(tmp_path):
    text = """
nodes:
  net: {kind: subnet, network: 10.0.0.0/24}
  inside: {address: 10.0.0.5}
  declared: {address: 192.0.2.9, subnet: net}
  router: {kind: router, address: 10.0.0.1}
links: [[net, inside], [net, router]]
"""
    topo = load_topology(write(tmp_path, text))
    net = topo.node("net")
    assert topo.is_member(net, topo.node("inside"))
    assert topo.is_member(net, topo.node("declared"))
    assert not topo.is_member(net, topo.node("router"))   # routers join subnets, not sit in them


# -- errors ---------------------------------------------------------------------


def test_escape_from_the_topology_directory_is_refused(tmp_path):
    inner = tmp_path / "inner"
    inner.mkdir()
    (tmp_path / "secret.rules").write_text(RULES)
    path = inner / "topology.yaml"
    path.write_text("nodes:\n  fw:\n    firewalls:\n      - file: ../secret.rules\n")
    with pytest.raises(RuleAnalyzerError) as info:
        load_topology(path)
    err = info.value
    assert "outside the topology's directory" in err.message
    assert (err.location.line, err.location.column) == (4, 15)


def test_symlink_escape_is_refused(tmp_path):
    inner = tmp_path / "inner"
    inner.mkdir()
    (tmp_path / "secret.rules").write_text(RULES)
    os.symlink(tmp_path / "secret.rules", inner / "link.rules")
    path = inner / "topology.yaml"
    path.write_text("nodes:\n  fw:\n    firewalls: [link.rules]\n")
    with pytest.raises(RuleAnalyzerError, match="outside the topology"):
        load_topology(path)


def test_unknown_key_is_located_with_a_suggestion(tmp_path):
    err = error_of(tmp_path, "nodes:\n  a:\n    adress: 192.0.2.1\n")
    assert err.location.line == 3 and err.location.column == 5
    assert "did you mean 'address'" in err.hint


def test_link_to_an_unknown_node(tmp_path):
    err = error_of(tmp_path, "nodes:\n  a: {}\n  b: {}\nlinks:\n  - [a, bb]\n")
    assert "unknown node 'bb'" in err.message
    assert err.location.line == 5


def test_bad_address_is_located(tmp_path):
    err = error_of(tmp_path, "nodes:\n  a:\n    address: 192.0.2.300\n")
    assert "not an IP address" in err.message
    assert (err.location.line, err.location.column) == (3, 14)


def test_missing_rule_file(tmp_path):
    err = error_of(tmp_path, "nodes:\n  a:\n    firewalls: [{file: nope.rules}]\n")
    assert "no such file" in err.message and err.location.line == 3


def test_two_host_firewalls_on_one_node(tmp_path):
    err = error_of(tmp_path, "nodes:\n  a:\n    firewalls: [a.rules, b.rules]\n",
                   **{"a.rules": RULES, "b.rules": RULES})
    assert "two host firewalls" in err.message


def test_yaml_syntax_error_is_located(tmp_path):
    err = error_of(tmp_path, "nodes:\n  a: [unclosed\n")
    assert err.location.line >= 2 and "invalid YAML" in err.message


def test_alias_bomb_is_refused(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 12):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i-1}"] * 9) + "]")
    err = error_of(tmp_path, "\n".join(lines) + "\n")
    assert "aliases" in err.message


def test_rule_file_errors_keep_their_own_location(tmp_path):
    err = error_of(tmp_path, "nodes:\n  a:\n    firewalls: [bad.rules]\n",
                   **{"bad.rules": "*filter\n-A INPUT --bogus-option 1 -j ACCEPT\nCOMMIT\n"})
    assert err.location is not None and err.location.file.endswith("bad.rules")


def test_empty_file(tmp_path):
    err = error_of(tmp_path, "")
    assert "empty" in err.message and err.location.file.endswith("topology.yaml")


def test_unknown_node_name_suggests(tmp_path):
    topo = parse_topology("nodes:\n  client: {address: 192.0.2.1}\n", "t.yaml", tmp_path)
    with pytest.raises(RuleAnalyzerError) as info:
        topo.node("clinet")
    assert "did you mean 'client'" in info.value.hint
