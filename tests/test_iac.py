"""Terraform plan/state JSON, Terraform HCL and CloudFormation readers:
semantics (with the provider and vendor docs they follow), the same rules
in every form, unknown values, targets and the per-firewall diff/audit."""

import json
from ipaddress import ip_address
from pathlib import Path

import pytest

from ruleanalyzer.audit import run_audit
from ruleanalyzer.cli import main
from ruleanalyzer.engine import evaluate
from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.loader import load, loads
from ruleanalyzer.model import SYN, Packet
from ruleanalyzer.parsers import sniff
from ruleanalyzer.plan_diff import diff_plan
from ruleanalyzer.targets import cloud_units, select_target

IAC = Path(__file__).parent / "parsers" / "iac"
FORMS = {"plan": [IAC / "web.plan.json"], "hcl": [IAC / "web.tf"], "cfn": [IAC / "web.cfn.yaml"],
         "describe": [IAC / "web.sg.json", IAC / "web.nacl.json"]}


def pkt(src, dport, proto=6, hook="input", **kw):
    return Packet(src=ip_address(src), dst=ip_address("10.0.1.10" if ":" not in src else "2001:db8::10"),
                  proto=proto, sport=40000, dport=dport, flags=SYN if proto == 6 else 0,
                  state="new", hook=hook, **kw)


def model(ruleset):
    """Tables by dialect: chains with hook, policy and every rule's matches and action."""
    out = {}
    for t in ruleset.tables:
        out[t.dialect] = [(c.name, c.hook, c.priority, c.policy,
                           [(r.matches, r.action, r.implicit) for r in c.rules])
                          for c in t.chains.values()]
    return out


def test_dialects_are_sniffed():
    assert sniff((IAC / "web.plan.json").read_text()) == "terraform-plan"
    assert sniff((IAC / "web.tf").read_text(), "web.tf") == "terraform"
    assert sniff((IAC / "web.cfn.yaml").read_text()) == "cloudformation"


def test_the_same_rules_as_plan_hcl_cloudformation_and_export_give_identical_models():
    models = {form: model(load(*paths)) for form, paths in FORMS.items()}
    assert models["plan"] == models["hcl"] == models["cfn"] == models["describe"]


@pytest.mark.parametrize("packet,verdict", [
    (dict(src="203.0.113.9", dport=443), "accept"),
    (dict(src="2001:db8:1::9", dport=443), "drop"),      # the NACL is IPv4-only: implicit deny
    (dict(src="198.51.100.7", dport=22), "drop"),        # NACL rule 100 denies before the group allows
    (dict(src="203.0.113.9", dport=8080), "drop"),       # the NACL admits it, no group rule does
    (dict(src="203.0.113.9", dport=0, proto=1, icmp_type=8, icmp_code=0), "drop"),
])
def test_and_identical_verdicts(packet, verdict):
    verdicts = {form: evaluate(load(*paths), pkt(**packet)).verdict for form, paths in FORMS.items()}
    assert set(verdicts.values()) == {verdict}, verdicts


def test_origins_and_locations_name_the_resource():
    hcl = load(IAC / "web.tf")
    rule = hcl.table("aws_security_group.web").chains["ingress"].rules[3]
    assert rule.origin.tool == "terraform" and rule.origin.text == "aws_security_group.web"
    assert (rule.location.line, rule.location.path) == (22, "aws_security_group.web")  # its ingress block
    cfn = load(IAC / "web.cfn.yaml")
    entry = cfn.table("Public").chains["ingress"].rules[0]
    assert entry.origin.tool == "cloudformation" and entry.origin.text == "DenySsh"
    assert entry.location.line == 32


def test_terraform_removes_the_default_egress_cloudformation_keeps_it():
    """Terraform Registry, hashicorp/aws aws_security_group: "When creating a
    new Security Group inside a VPC, Terraform will remove this default rule".
    AWS CloudFormation User Guide, AWS::EC2::SecurityGroup SecurityGroupEgress:
    "The default rule is removed only when you specify one or more egress rules"."""
    tf = loads('resource "aws_security_group" "a" {\n  name = "a"\n}\n', "terraform", "a.tf")
    assert [r for r in tf.table("aws_security_group.a").chains["egress"].rules if not r.implicit] == []
    assert evaluate(tf, pkt("10.0.1.10", 443, hook="output")).verdict == "drop"
    cfn = loads("Resources:\n  A:\n    Type: AWS::EC2::SecurityGroup\n    Properties:\n"
                "      GroupDescription: a\n", "cloudformation", "a.yaml")
    out = Packet(src=ip_address("10.0.1.10"), dst=ip_address("203.0.113.9"), dport=443, sport=40000,
                 flags=SYN, state="new", hook="output")
    assert evaluate(cfn, out).verdict == "accept"


def test_inline_nacl_icmp_type_and_code_default_to_zero_echo_reply_only():
    """Terraform Registry, hashicorp/aws aws_network_acl, ingress/egress:
    "icmp_type - (Optional) The ICMP type to be used. Default 0." and
    "icmp_code - … Default 0." — type 0 code 0 is echo reply, not echo request."""
    rs = loads('resource "aws_network_acl" "n" {\n  ingress {\n    rule_no = 100\n    action = "allow"\n'
               '    protocol = "icmp"\n    from_port = 0\n    to_port = 0\n    cidr_block = "0.0.0.0/0"\n'
               '  }\n}\n', "terraform", "n.tf")
    reply = pkt("203.0.113.9", 0, proto=1, icmp_type=0, icmp_code=0)
    request = pkt("203.0.113.9", 0, proto=1, icmp_type=8, icmp_code=0)
    assert evaluate(rs, reply).verdict == "accept"
    assert evaluate(rs, request).verdict == "drop"


def test_gcp_defaults_priority_1000_ingress_and_deny_wins_a_tie():
    """Terraform Registry, hashicorp/google google_compute_firewall:
    priority defaults to 1000, direction to INGRESS; GCP VPC docs, "VPC
    firewall rules": a deny rule takes precedence over an allow rule of the
    same priority; disabled rules are not enforced."""
    rs = loads('resource "google_compute_firewall" "allow" {\n  name = "allow"\n  network = "default"\n'
               '  source_ranges = ["0.0.0.0/0"]\n  allow {\n    protocol = "tcp"\n    ports = ["22"]\n  }\n}\n'
               'resource "google_compute_firewall" "deny" {\n  name = "deny"\n  network = "default"\n'
               '  priority = 1000\n  source_ranges = ["0.0.0.0/0"]\n  deny {\n    protocol = "tcp"\n  }\n}\n'
               'resource "google_compute_firewall" "off" {\n  name = "off"\n  network = "default"\n'
               '  priority = 1\n  disabled = true\n  source_ranges = ["0.0.0.0/0"]\n  allow {\n    protocol = "all"\n  }\n}\n',
               "terraform", "g.tf")
    ingress = rs.table("default").chains["ingress"]
    assert [r.ident for r in ingress.rules if not r.implicit] == ["deny", "allow"]
    assert evaluate(rs, pkt("203.0.113.9", 22)).verdict == "drop"


def test_azure_plural_ranges_service_tags_and_priority():
    """Terraform Registry, hashicorp/azurerm network_security_rule: singular
    and plural port ranges and address prefixes; Azure docs "Network security
    groups": lower priority first, service tags name address sets."""
    rs = loads('resource "azurerm_network_security_group" "n" {\n  name = "n"\n'
               '  security_rule {\n    name = "ssh"\n    priority = 200\n    direction = "Inbound"\n'
               '    access = "Allow"\n    protocol = "Tcp"\n    source_port_range = "*"\n'
               '    destination_port_ranges = ["22", "3389"]\n    source_address_prefixes = ["198.51.100.0/24", "203.0.113.0/24"]\n'
               '    destination_address_prefix = "*"\n  }\n'
               '  security_rule {\n    name = "lb"\n    priority = 100\n    direction = "Inbound"\n'
               '    access = "Deny"\n    protocol = "*"\n    source_port_range = "*"\n'
               '    destination_port_range = "3389"\n    source_address_prefix = "Internet"\n'
               '    destination_address_prefix = "*"\n  }\n}\n', "terraform", "n.tf")
    inbound = rs.table("azurerm_network_security_group.n").chains["inbound"]
    assert [r.ident for r in inbound.rules if not r.implicit] == ["lb", "ssh"]
    assert evaluate(rs, pkt("203.0.113.9", 22)).verdict == "accept"
    assert evaluate(rs, pkt("203.0.113.9", 3389)).verdict == "unknown"  # depends on the Internet tag


def test_unknown_plan_values_are_unknown_in_answers_naming_the_expression():
    rs = load(IAC / "unknown.plan.json")
    result = evaluate(rs, pkt("203.0.113.9", 22))
    assert result.verdict == "unknown"
    assert any("aws_eip.bastion.public_ip" in d for d in result.depends_on)
    # The rule's group id is unknown at plan time: linked through the configuration.
    assert rs.table("aws_security_group.admin").chains["ingress"].rules[1].origin.text == \
        "aws_security_group_rule.ssh"


def test_hcl_unknown_variable_and_tfvars(tmp_path):
    tf = tmp_path / "main.tf"
    tf.write_text('variable "admin_cidr" {}\nresource "aws_security_group" "a" {\n  ingress {\n'
                  '    from_port = 22\n    to_port = 22\n    protocol = "tcp"\n'
                  '    cidr_blocks = [var.admin_cidr]\n  }\n}\n')
    result = evaluate(load(tf), pkt("203.0.113.9", 22))
    assert result.verdict == "unknown" and any("var.admin_cidr" in d for d in result.depends_on)
    tfvars = tmp_path / "prod.tfvars"
    tfvars.write_text('admin_cidr = "198.51.100.0/24"\n')
    both = load(tf, tfvars)
    assert evaluate(both, pkt("203.0.113.9", 22)).verdict == "drop"
    assert evaluate(both, pkt("198.51.100.7", 22)).verdict == "accept"


def test_hcl_count_for_each_and_functions():
    rs = loads('variable "ports" { default = [22, 80] }\n'
               'resource "aws_security_group" "s" {\n  count = 2\n  name = "s${count.index}"\n}\n'
               'resource "aws_security_group_rule" "r" {\n  for_each = { a = 22, b = 80 }\n'
               '  type = "ingress"\n  security_group_id = aws_security_group.s[0].id\n'
               '  protocol = "tcp"\n  from_port = each.value\n  to_port = each.value\n'
               '  cidr_blocks = [cidrsubnet("10.0.0.0/8", 8, 1)]\n}\n', "terraform", "c.tf")
    assert {t.name for t in rs.tables} == {"aws_security_group.s[0]", "aws_security_group.s[1]"}
    rules = [r for r in rs.table("aws_security_group.s[0]").chains["ingress"].rules if not r.implicit]
    assert [r.origin.text for r in rules] == ['aws_security_group_rule.r["a"]', 'aws_security_group_rule.r["b"]']
    reasons = {m.reason for r in rules for m in r.matches if hasattr(m, "reason")}
    assert reasons == {'depends on `cidrsubnet("10.0.0.0/8", 8, 1)`'}  # never evaluated


def test_hcl_try_over_a_literal_for_each_map_reads_each_entry():
    # try(each.value.x, null): the entry's own value, or the fallback where the
    # entry has no such key; unread, every entry looked alike (a false RA505).
    rs = loads('resource "aws_security_group" "s" {}\n'
               'resource "aws_vpc_security_group_ingress_rule" "r" {\n'
               '  for_each = {\n    web = { port = 443, cidr = "10.0.0.0/8" }\n'
               '    ssh = { port = 22, cidr = var.admin }\n    all = { proto = "-1" }\n  }\n'
               '  security_group_id = aws_security_group.s.id\n'
               '  ip_protocol = try(each.value.proto, "tcp")\n  from_port = try(each.value.port, null)\n'
               '  to_port = try(each.value.port, null)\n  cidr_ipv4 = try(each.value.cidr, "192.0.2.0/24")\n}\n',
               "terraform", "c.tf")
    rules = [r for r in rs.table("aws_security_group.s").chains["ingress"].rules if not r.implicit]
    assert [r.text for r in rules] == ["allow tcp 443 from 10.0.0.0/8", "allow tcp 22 from 0.0.0.0/0",
                                       "allow all from 192.0.2.0/24"]
    assert {m.reason for m in rules[1].matches if hasattr(m, "reason")} == {
        "depends on `each.value.cidr` (no value given)"}  # var.admin has no default


def test_azure_rules_naming_no_group_are_read_alone():
    # network_security_group_name = "" names no NSG: two such rules are not one
    # group (read as one, the second was "shadowed" / a "duplicate" of the first).
    rule = ('resource "azurerm_network_security_rule" "%s" {\n  name = "%s"\n  priority = 100\n'
            '  direction = "Inbound"\n  access = "%s"\n  protocol = "Udp"\n  source_port_range = "*"\n'
            '  destination_port_range = "*"\n  source_address_prefix = "*"\n'
            '  destination_address_prefix = "*"\n  network_security_group_name = ""\n'
            '  resource_group_name = ""\n}\n')
    rs = loads(rule % ("a", "a", "Allow") + rule % ("b", "b", "Deny") + rule % ("c", "c", "Allow"),
               "terraform", "c.tf")
    assert len(rs.tables) == 3
    assert run_audit([rs], select=["RA101", "RA102", "RA505"]).findings == []


def test_nacl_target_by_subnet_and_aws_worded_error():
    rs = load(IAC / "web.nacl.json")
    chosen = select_target(rs, "subnet-web")
    assert [t.name for t in chosen.tables] == ["acl-public"]
    with pytest.raises(RuleAnalyzerError) as err:
        select_target(rs, "subnet-other")
    assert "no network ACL in this input is associated with subnet 'subnet-other'" in err.value.message
    assert "Associations[].SubnetId" in err.value.hint


def test_gcp_targets_are_audited_one_by_one():
    rs = loads('resource "google_compute_firewall" "ssh" {\n  name = "ssh"\n  network = "default"\n'
               '  source_ranges = ["0.0.0.0/0"]\n  target_tags = ["bastion"]\n'
               '  allow {\n    protocol = "tcp"\n    ports = ["22"]\n  }\n}\n', "terraform", "g.tf")
    labels = [label for label, _ in cloud_units(rs)]
    assert labels == ["default tag:bastion", "default all instances"]
    findings = run_audit([rs], select=["RA401"]).findings
    assert [(f.code, f.where.table) for f in findings] == [("RA401", "default tag:bastion")]


def _four_groups(tmp_path, ssh_open: bool):
    groups = [{"GroupId": f"sg-{i}", "GroupName": f"g{i}", "IpPermissions": [
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
        "IpPermissionsEgress": []} for i in range(4)]
    if ssh_open:
        groups[2]["IpPermissions"].append({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                                           "IpRanges": [{"CidrIp": "0.0.0.0/0"}]})
    path = tmp_path / ("new.json" if ssh_open else "old.json")
    path.write_text(json.dumps({"SecurityGroups": groups}))
    return str(path)


def test_diff_of_a_multi_group_export_needs_a_target(tmp_path, capsys):
    old, new = _four_groups(tmp_path, False), _four_groups(tmp_path, True)
    assert main(["diff", old, new, "--no-findings"]) == 2
    assert "choose one with --target" in capsys.readouterr().err
    assert main(["diff", old, new, "--target", "sg-2", "--no-findings", "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert any("dport 22" in r["region"] for r in data["regions"])
    assert main(["diff", old, new, "--target", "sg-1", "--no-findings"]) == 0


def test_diff_plan_json_reports_each_changed_firewall(tmp_path, capsys):
    plan = json.loads((IAC / "web.plan.json").read_text())
    change = plan["resource_changes"][0]["change"]
    change["actions"] = ["update"]
    change["before"] = json.loads(json.dumps(change["after"]))
    change["after"]["ingress"][1]["cidr_blocks"] = ["0.0.0.0/0"]  # SSH opened to the world
    plan["resource_changes"][1]["change"]["before"] = plan["resource_changes"][1]["change"]["after"]
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    reports = diff_plan(path, findings=False)
    assert [r.new_name for r in reports] == [f"{path}: aws_security_group.web"]
    opened = [r for r in reports[0].opened if r.family == 4]
    # Opened to every source except 198.51.100.0/24, which SSH already had.
    # (no UNTRACKED packet: nothing in a security group can untrack one)
    assert len(opened) == 1 and opened[0].text.endswith("to 0.0.0.0/0 dport 22, state new,invalid")
    assert not reports[0].changed[("input", 4, "opened")].intersects(
        __import__("ruleanalyzer.diff", fromlist=["packet_point"]).packet_point(
            reports[0].space, pkt("198.51.100.7", 22)))
    assert reports[0].opened[0].new.decided_by.rule.origin.text == "aws_security_group.web"
    assert main(["diff", str(path), "--no-findings"]) == 1


def test_diff_plan_a_created_group_brings_its_findings_a_destroyed_one_takes_them(tmp_path):
    plan = json.loads((IAC / "web.plan.json").read_text())
    sg = next(rc for rc in plan["resource_changes"] if rc["address"] == "aws_security_group.web")
    sg["change"]["after"]["ingress"][1]["cidr_blocks"] = ["0.0.0.0/0"]  # SSH from anywhere
    plan["resource_changes"] = [sg]
    path = tmp_path / "create.json"
    path.write_text(json.dumps(plan))
    (created,) = diff_plan(path)
    assert created.new_name.endswith("aws_security_group.web (created)")
    assert "RA401" in [f.code for f in created.findings.introduced] and created.findings.resolved == []
    sg["change"]["actions"], sg["change"]["before"], sg["change"]["after"] = ["delete"], sg["change"]["after"], None
    path.write_text(json.dumps(plan))
    (destroyed,) = diff_plan(path)
    assert destroyed.new_name.endswith("(destroyed)") and destroyed.findings.introduced == []
    assert "RA401" in [f.code for f in destroyed.findings.resolved]


def test_two_plans_diff_as_two_files(tmp_path, capsys):
    """Issue #19: two plans (or states) diff as two files, per --target."""
    plan = json.loads((IAC / "web.plan.json").read_text())
    for key in ("planned_values",):
        plan[key]["root_module"]["resources"] = [r for r in plan[key]["root_module"]["resources"]
                                                 if "acl" not in r["type"]]
    plan["resource_changes"] = [rc for rc in plan["resource_changes"] if "acl" not in rc["type"]]
    old = tmp_path / "old.plan.json"
    old.write_text(json.dumps(plan))
    for r in plan["planned_values"]["root_module"]["resources"]:
        if r["address"] == "aws_security_group.web":
            r["values"]["ingress"][1]["cidr_blocks"] = ["0.0.0.0/0"]
    for rc in plan["resource_changes"]:
        if rc["address"] == "aws_security_group.web":
            rc["change"]["after"]["ingress"][1]["cidr_blocks"] = ["0.0.0.0/0"]
    new = tmp_path / "new.plan.json"
    new.write_text(json.dumps(plan))
    assert main(["diff", str(old), str(new), "--no-findings", "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert any("dport 22" in r["region"] and r["kind"] == "opened" for r in data["regions"])
