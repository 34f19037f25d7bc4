"""AWS security groups and network ACLs, read into the model and evaluated."""

from ipaddress import ip_address
from pathlib import Path

import pytest

from ruleanalyzer.engine import evaluate
from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.inventory import load_inventory
from ruleanalyzer.model import ACK, SYN, Accept, AddressMatch, Drop, OpaqueMatch, Packet
from ruleanalyzer.parsers import aws_nacl, aws_sg, sniff
from ruleanalyzer.targets import select_target

FIXTURES = Path(__file__).parent / "parsers" / "cloud"


def load(name, module=aws_sg, **kw):
    path = FIXTURES / name
    return module.parse(path.read_text(), str(path), **kw)


def pkt(src, dst, dport, proto=6, hook="input", flags=SYN, state="new", **kw):
    return Packet(src=ip_address(src), dst=ip_address(dst), proto=proto, sport=40000,
                  dport=dport, flags=flags, state=state, hook=hook, **kw)


def test_sniff_tells_groups_from_acls():
    assert sniff((FIXTURES / "aws_sg_web.json").read_text()) == "aws-sg"
    assert sniff((FIXTURES / "aws_nacl_subnet.json").read_text()) == "aws-nacl"


def test_each_permission_range_is_one_located_allow_rule_with_its_description():
    """AWS VPC User Guide, 'Security group rules': rules only allow; each
    source (CIDR, IPv6 CIDR, prefix list, group) is its own entry."""
    rs = load("aws_sg_web.json")
    ingress = rs.table("sg-web").chains["ingress"]
    first, https4, https6 = ingress.rules[:3]
    assert first.implicit and first.text.startswith("(implicit) stateful")
    assert https4.text == "allow tcp 443 from 0.0.0.0/0"
    assert https4.comment == "public https"
    assert https4.ident == "sg-web ingress[0]"
    assert https4.location.path == "data.SecurityGroups[0].IpPermissions[0].IpRanges[0]"
    assert https6.text == "allow tcp 443 from ::/0"
    assert all(isinstance(r.action, Accept) for r in ingress.rules)
    assert ingress.policy == "drop" and ingress.policy_text == "implicit deny (no rule allows it)"


def test_group_and_prefix_list_references_are_unknown_until_the_inventory_maps_them():
    """AWS VPC User Guide, 'Security group rules': a source may be another
    security group or a prefix list, whose members are not in the export."""
    rs = load("aws_sg_web.json")
    reasons = [m.reason for r in rs.rules() for m in r.matches if isinstance(m, OpaqueMatch)]
    assert "depends on the members of sg-lb" in reasons
    assert "depends on the contents of prefix list pl-corp" in reasons
    target = select_target(rs, "sg-web")
    lb = pkt("10.0.5.7", "10.0.1.10", 8080)
    assert evaluate(target, lb).verdict == "unknown"

    resolved = load("aws_sg_web.json", inventory=load_inventory(FIXTURES / "inventory.yaml"))
    target = select_target(resolved, "sg-web")
    assert evaluate(target, lb).verdict == "accept"
    assert evaluate(target, pkt("10.9.9.9", "10.0.1.10", 8080)).verdict == "drop"
    dns = pkt("172.16.3.3", "10.0.1.10", 53, proto=17, flags=0)
    assert evaluate(target, dns).verdict == "accept"
    texts = [m.text for r in resolved.rules() for m in r.matches if isinstance(m, AddressMatch)]
    assert "sg-lb = 10.0.5.0/24" in texts


def test_union_of_an_instances_groups_allows_what_any_group_allows():
    """AWS VPC User Guide, 'Security groups': with several groups the rules
    are aggregated — allowed if any group allows."""
    rs = load("aws_sg_web.json")
    ssh = pkt("192.0.2.5", "10.0.1.10", 22)
    https = pkt("203.0.113.9", "10.0.1.10", 443)
    assert evaluate(select_target(rs, "sg-web"), ssh).verdict == "drop"
    both = select_target(rs, "sg-web,sg-admin")
    assert [t.name for t in both.tables] == ["sg-web+sg-admin"]
    assert evaluate(both, ssh).verdict == "accept"
    assert evaluate(both, https).verdict == "accept"
    inv = load_inventory(FIXTURES / "inventory.yaml")
    by_instance = select_target(rs, "instance:i-web1", inv)
    assert evaluate(by_instance, ssh).verdict == "accept"


def test_stateful_replies_pass_without_an_egress_rule():
    """AWS VPC User Guide, 'Security group rules': security groups are
    stateful — responses to allowed inbound traffic leave regardless of
    outbound rules."""
    target = select_target(load("aws_sg_web.json"), "sg-web")
    reply = Packet(src=ip_address("10.0.1.10"), dst=ip_address("203.0.113.9"), proto=6, sport=443,
                   dport=40000, flags=SYN | ACK, state="established", hook="output")
    assert evaluate(target, reply).verdict == "accept"
    fresh = pkt("10.0.1.10", "203.0.113.9", 443, hook="output")
    assert evaluate(target, fresh).verdict == "drop"


def test_icmp_from_port_is_the_type_and_minus_one_any_code():
    """AWS EC2 API 'IpPermission': for ICMP, FromPort is the type and ToPort
    the code; -1 means all."""
    target = select_target(load("aws_sg_web.json"), "sg-web")
    echo = pkt("10.2.3.4", "10.0.1.10", None, proto=1, flags=0, icmp_type=8, icmp_code=0)
    unreachable = pkt("10.2.3.4", "10.0.1.10", None, proto=1, flags=0, icmp_type=3, icmp_code=1)
    assert evaluate(target, echo).verdict == "accept"
    assert evaluate(target, unreachable).verdict == "drop"


def test_protocol_minus_one_is_every_protocol_and_numbers_ignore_ports():
    """AWS EC2 API 'IpPermission': IpProtocol -1 is all protocols and ports;
    for a protocol other than tcp/udp/icmp/icmpv6 all ports are allowed."""
    rs = load("aws_sg_web.json")
    admin = select_target(rs, "sg-admin")
    out_udp = pkt("10.0.1.10", "8.8.8.8", 53, proto=17, flags=0, hook="output")
    assert evaluate(admin, out_udp).verdict == "accept"
    esp = pkt("198.51.100.7", "10.0.1.10", None, proto=50, flags=0)
    assert evaluate(select_target(rs, "sg-web"), esp).verdict == "accept"


def test_ipv6_ranges_match_ipv6_packets():
    """AWS VPC User Guide, 'Security group rules': Ipv6Ranges allow IPv6 sources."""
    target = select_target(load("aws_sg_web.json"), "sg-web")
    assert evaluate(target, pkt("2001:db8::1", "2001:db8:1::10", 443)).verdict == "accept"
    assert evaluate(target, pkt("2001:db8::1", "2001:db8:1::10", 444)).verdict == "drop"


def test_several_groups_without_a_target_name_the_choices():
    with pytest.raises(RuleAnalyzerError) as err:
        select_target(load("aws_sg_web.json"))
    assert "sg-web (web)" in str(err.value) and "sg-admin (admin)" in str(err.value)


def test_zero_groups_is_an_empty_ruleset_and_an_error_response_is_located():
    assert aws_sg.parse('{"SecurityGroups": []}', "empty.json").tables == []
    with pytest.raises(RuleAnalyzerError) as err:
        aws_sg.parse('{"status_code": 400, "data": {"Error": {"Code": "InvalidGroup.NotFound",'
                     ' "Message": "gone"}}}', "err.json")
    assert "err.json" in str(err.value) and "data.Error" in str(err.value)


@pytest.mark.parametrize("text, path", [
    ('{"SecurityGroups": "sg-1"}', "SecurityGroups"),
    ('{"SecurityGroups": [{"GroupId": "sg-1", "IpPermissions": {"a": 1}}]}',
     "SecurityGroups[0].IpPermissions"),
    ('{"SecurityGroups": [{"GroupId": "sg-1", "IpPermissions": [{"IpProtocol": "tcp",'
     ' "FromPort": "x", "ToPort": 22}]}]}', "SecurityGroups[0].IpPermissions[0].FromPort"),
    ('{"SecurityGroups": [{"GroupId": "sg-1", "IpPermissions": [{"IpProtocol": "tcp",'
     ' "IpRanges": [{"CidrIp": "10.0.0.300/8"}]}]}]}',
     "SecurityGroups[0].IpPermissions[0].IpRanges[0].CidrIp"),
    ('{"SecurityGroups": [{"GroupId": ["sg"]}]}', "SecurityGroups[0].GroupId"),
    ('{"Reservations": []}', "$"),
])
def test_wrong_types_give_located_errors_not_crashes(text, path):
    with pytest.raises(RuleAnalyzerError) as err:
        aws_sg.parse(text, "bad.json")
    assert err.value.location.file == "bad.json"
    assert err.value.location.path == path


def test_malformed_json_is_located_at_line_and_column():
    with pytest.raises(RuleAnalyzerError) as err:
        aws_sg.parse('{\n  "SecurityGroups": [\n    {"GroupId": "sg-1",,}\n]}', "broken.json")
    loc = err.value.location
    assert (loc.line, loc.column) == (3, 24)
    assert "broken.json:3:24" in str(err.value)


def test_deep_nesting_is_refused_cleanly():
    with pytest.raises(RuleAnalyzerError):
        aws_sg.parse("[" * 100000 + "]" * 100000, "deep.json")


# --- network ACLs ---------------------------------------------------------


def test_nacl_rules_run_lowest_number_first_and_star_is_the_policy():
    """AWS VPC User Guide, 'Network ACL rules': rules are evaluated starting
    with the lowest numbered rule; the first match decides; rule * denies
    what no numbered rule matches."""
    rs = load("aws_nacl_subnet.json", aws_nacl)
    ingress = rs.table("acl-web").chains["ingress"]
    assert [r.ident for r in ingress.rules] == ["90", "100", "120"]
    assert isinstance(ingress.rules[0].action, Drop)
    assert ingress.policy == "drop" and ingress.policy_text == "rule * (implicit deny)"
    assert not any(r.implicit for r in ingress.rules)  # stateless: no return rule
    assert rs.meta["cloud"]["associations"]["acl-web"] == ["subnet-web"]
    assert evaluate(rs, pkt("203.0.113.5", "10.0.1.10", 80)).verdict == "drop"
    assert evaluate(rs, pkt("198.51.100.5", "10.0.1.10", 80)).verdict == "accept"
    assert evaluate(rs, pkt("198.51.100.5", "10.0.1.10", 81)).verdict == "drop"
    ping6 = pkt("2001:db8::1", "2001:db8::2", None, proto=58, flags=0, icmp_type=128, icmp_code=0)
    assert evaluate(rs, ping6).verdict == "accept"


def test_nacl_is_stateless_so_replies_need_an_ephemeral_port_egress_rule():
    """AWS VPC User Guide, 'Network ACL rules' / 'Ephemeral ports': network
    ACLs are stateless; the reply to an allowed request needs an outbound
    rule for ports 1024-65535."""
    rs = load("aws_nacl_subnet.json", aws_nacl)
    egress = rs.table("acl-web").chains["egress"]
    covered = [m for r in egress.rules if isinstance(r.action, Accept) for m in r.matches
               if getattr(m, "field", None) == "dport" and any(lo <= 1024 and hi >= 65535
                                                               for lo, hi in m.ranges)]
    assert covered == []
    syn_ack = Packet(src=ip_address("10.0.1.10"), dst=ip_address("198.51.100.5"), proto=6, sport=80,
                     dport=40000, flags=SYN | ACK, state="established", hook="output")
    assert evaluate(rs, syn_ack).verdict == "drop"


def test_create_network_acl_reply_is_read():
    text = ('{"NetworkAcl": {"NetworkAclId": "acl-1", "Entries": [{"CidrBlock": "0.0.0.0/0",'
            ' "RuleNumber": 32767, "Protocol": "all", "Egress": true, "RuleAction": "deny"}]}}')
    rs = aws_nacl.parse(text, "create.json")
    assert rs.table("acl-1").chains["egress"].rules == []


def test_nacl_bad_action_is_located():
    text = ('{"NetworkAcls": [{"NetworkAclId": "acl-1", "Entries": [{"CidrBlock": "0.0.0.0/0",'
            ' "RuleNumber": 5, "Protocol": "-1", "Egress": true, "RuleAction": "maybe"}]}]}')
    with pytest.raises(RuleAnalyzerError) as err:
        aws_nacl.parse(text, "acl.json")
    assert err.value.location.path == "NetworkAcls[0].Entries[0].RuleAction"


def test_registry_sniffs_and_parses_a_cloud_export():
    from ruleanalyzer.parsers import parse
    rs = parse((FIXTURES / "aws_nacl_subnet.json").read_text(), "acl.json")
    assert rs.meta["dialect"] == "aws-nacl" and rs.table("acl-web") is not None


@pytest.mark.parametrize("text, path", [
    ("aws:\n  security_groups:\n    sg-1: [10.0.0.300]\n", "aws.security_groups.sg-1[0]"),
    ("aws: [1, 2]\n", "aws"),
    ("clouds: {}\n", "clouds"),
])
def test_bad_inventory_is_located(text, path):
    from ruleanalyzer.inventory import parse_inventory
    with pytest.raises(RuleAnalyzerError) as err:
        parse_inventory(text, "inv.yaml")
    assert err.value.location.path == path
