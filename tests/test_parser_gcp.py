"""GCP VPC firewall rules, read into the model and evaluated."""

from ipaddress import ip_address
from pathlib import Path

import pytest

from ruleanalyzer.engine import evaluate
from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.inventory import load_inventory
from ruleanalyzer.model import SYN, Packet
from ruleanalyzer.parsers import gcp, sniff
from ruleanalyzer.targets import select_target

FIXTURES = Path(__file__).parent / "parsers" / "cloud"


def load(**kw):
    path = FIXTURES / "gcp_list.json"
    return gcp.parse(path.read_text(), str(path), **kw)


def pkt(src, dport, proto=6, hook="input", dst="10.8.1.5"):
    if hook == "output":
        src, dst = dst, src
    return Packet(src=ip_address(src), dst=ip_address(dst), proto=proto, sport=40000, dport=dport,
                  flags=SYN, state="new", hook=hook)


def test_sniffed_as_gcp_and_one_table_per_network():
    assert sniff((FIXTURES / "gcp_list.json").read_text()) == "gcp"
    rs = load()
    assert [t.name for t in rs.tables] == ["prod"]


def test_deny_wins_a_priority_tie():
    """GCP VPC docs, 'VPC firewall rules' (priority): 'a deny rule takes
    precedence over an allow rule of the same priority'."""
    rs = select_target(load(), "all")
    assert evaluate(rs, pkt("198.51.100.1", 22)).verdict == "drop"
    names = [r.ident for r in rs.table("prod").chains["ingress"].rules]
    assert names.index("deny-ssh-tie") < names.index("allow-ssh-tie")


def test_implied_rules_are_the_chain_policies():
    """GCP VPC docs, 'Implied rules': an implied deny-all ingress and an
    implied allow-all egress rule, both at the lowest priority (65535)."""
    rs = select_target(load(), "all")
    chains = rs.table("prod").chains
    assert chains["ingress"].policy == "drop" and "65535" in chains["ingress"].policy_text
    assert chains["egress"].policy == "accept" and "allow all egress" in chains["egress"].policy_text
    assert evaluate(rs, pkt("198.51.100.1", 3306)).verdict == "drop"
    assert evaluate(rs, pkt("198.51.100.1", 443, hook="output")).verdict == "accept"
    assert evaluate(rs, pkt("198.51.100.1", 25, hook="output")).verdict == "drop"


def test_disabled_rules_are_skipped_with_a_note():
    """GCP VPC docs, 'Firewall rule components' (enforcement): a disabled
    rule is not enforced."""
    rs = load()
    assert "allow-icmp-disabled" not in {r.ident for r in rs.rules()}
    notes = [d for d in rs.diagnostics if "allow-icmp-disabled" in d.message]
    assert notes and notes[0].level == "info"


def test_target_tags_are_unknown_until_a_target_is_chosen():
    """GCP VPC docs, 'Firewall rule components' (targets): a rule with target
    tags applies only to instances with one of those tags; without targets it
    applies to all instances."""
    rs = load()
    web = pkt("198.51.100.1", 8080)
    result = evaluate(select_target(rs), web)
    assert result.verdict == "unknown"
    assert any("tagged web" in d for d in result.depends_on)
    assert evaluate(select_target(rs, "tag:web"), web).verdict == "accept"
    assert evaluate(select_target(rs, "tag:db"), web).verdict == "drop"
    ipv6 = pkt("2001:db8::1", 80, dst="2001:db8:1::5")
    assert evaluate(select_target(rs, "tag:web"), ipv6).verdict == "accept"


def test_source_tags_and_service_accounts_with_the_inventory():
    """GCP VPC docs, 'Firewall rule components' (sources): source tags and
    source service accounts identify instances, not addresses."""
    inv = load_inventory(FIXTURES / "inventory.yaml")
    plain = select_target(load(), "instance:db-1", inv)
    assert evaluate(plain, pkt("10.8.0.9", 5432)).verdict == "unknown"
    resolved = select_target(load(inventory=inv), "instance:db-1", inv)
    assert evaluate(resolved, pkt("10.8.0.9", 5432)).verdict == "accept"
    assert evaluate(resolved, pkt("10.9.0.9", 5432)).verdict == "drop"
    assert evaluate(select_target(load(inventory=inv), "tag:web"), pkt("10.8.0.9", 5432)).verdict \
        == "drop"


def test_hierarchical_policy_runs_first_and_goto_next_falls_through():
    """GCP docs, 'Hierarchical firewall policies': policy rules are evaluated
    before VPC firewall rules; goto_next passes evaluation to the next level."""
    text = """{"firewalls": [{"name": "allow-80", "network": "n/default", "priority": 1000,
      "direction": "INGRESS", "sourceRanges": ["0.0.0.0/0"],
      "allowed": [{"IPProtocol": "tcp", "ports": ["80"]}]}],
     "firewallPolicys": [{"name": "1", "type": "HIERARCHY", "shortName": "org", "rules": [
       {"priority": 10, "direction": "INGRESS", "action": "deny",
        "match": {"srcIpRanges": ["203.0.113.0/24"], "layer4Configs": [{"ipProtocol": "all"}]}},
       {"priority": 20, "direction": "INGRESS", "action": "allow",
        "match": {"srcIpRanges": ["192.0.2.0/24"], "layer4Configs": [{"ipProtocol": "tcp", "ports": ["22"]}]}},
       {"priority": 2147483647, "direction": "INGRESS", "action": "goto_next",
        "match": {"srcIpRanges": ["0.0.0.0/0"], "layer4Configs": [{"ipProtocol": "all"}]}}]}]}"""
    rs = select_target(gcp.parse(text, "eff.json"))
    assert evaluate(rs, pkt("203.0.113.5", 80)).verdict == "drop"
    assert evaluate(rs, pkt("192.0.2.5", 22)).verdict == "accept"
    assert evaluate(rs, pkt("198.51.100.5", 80)).verdict == "accept"
    assert evaluate(rs, pkt("198.51.100.5", 22)).verdict == "drop"


def test_stateful_replies_pass():
    """GCP VPC docs, 'Specifications': firewall rules are stateful."""
    rs = select_target(load(), "all")
    reply = Packet(src=ip_address("10.8.1.5"), dst=ip_address("198.51.100.1"), proto=6, sport=25,
                   dport=40000, flags=SYN | 0x10, state="established", hook="output")
    assert evaluate(rs, reply).verdict == "accept"


def test_cloud_asset_inventory_export_is_unwrapped():
    text = """[{"name": "//compute/fw", "asset_type": "compute.googleapis.com/Firewall",
      "resource": {"data": {"name": "fw", "network": "x/networks/vpc1", "priority": 10,
      "sourceRanges": ["0.0.0.0/0"], "allowed": [{"IPProtocol": "all"}], "direction": "INGRESS"}}}]"""
    rs = gcp.parse(text, "cai.json")
    rule = [r for r in rs.rules() if r.ident == "fw"][0]
    assert rule.location.path == "[0].resource.data.allowed[0]"


@pytest.mark.parametrize("text, path", [
    ('{"items": [{"name": "a", "allowed": "tcp"}]}', "items[0].allowed"),
    ('{"items": [{"name": "a", "allowed": [{"IPProtocol": "tcp", "ports": ["http"]}]}]}',
     "items[0].allowed[0].ports[0]"),
    ('{"items": [{"name": "a", "sourceRanges": "0.0.0.0/0", "allowed": [{"IPProtocol": "all"}]}]}',
     "items[0].sourceRanges"),
    ('{"items": [{"name": "a", "priority": "high", "allowed": []}]}', "items[0].priority"),
    ('{"headers": {"status": "404"}, "body": {"error": {"code": 404, "message": "gone"}}}',
     "body.error"),
])
def test_bad_input_gives_located_errors(text, path):
    with pytest.raises(RuleAnalyzerError) as err:
        gcp.parse(text, "bad.json")
    assert err.value.location.path == path
