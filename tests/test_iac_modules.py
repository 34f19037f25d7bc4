"""Terraform HCL: a directory of .tf files is one configuration; local
modules are read with the call's arguments, never outside the given tree;
unknown values reach the audit as "may expose … depends on var.…"."""

from ipaddress import ip_address

from ruleanalyzer.audit import run_audit
from ruleanalyzer.cli import main
from ruleanalyzer.engine import evaluate
from ruleanalyzer.loader import load
from ruleanalyzer.model import SYN, Packet

SG = '''variable "cidr" {}
variable "port" { default = 22 }
resource "aws_security_group" "this" {
  name = "admin"
  ingress {
    from_port   = var.port
    to_port     = var.port
    protocol    = "tcp"
    cidr_blocks = [var.cidr]
  }
}
'''


def pkt(src, dport):
    return Packet(src=ip_address(src), dst=ip_address("10.0.1.10"), proto=6, sport=40000,
                  dport=dport, flags=SYN, state="new", hook="input")


def tree(tmp_path, main_tf, module_dir="modules/sg", module_tf=SG):
    root = tmp_path / "infra"
    (root / module_dir).mkdir(parents=True)
    (root / module_dir / "main.tf").write_text(module_tf)
    (root / "main.tf").write_text(main_tf)
    return root


def test_a_directory_with_a_local_module_is_one_configuration(tmp_path):
    root = tree(tmp_path, 'module "admin" {\n  source = "./modules/sg"\n  cidr = var.office\n}\n')
    (root / "variables.tf").write_text('variable "office" {}\n')
    (root / "terraform.tfvars").write_text('office = "198.51.100.0/24"\n')
    rs = load(root)
    assert [t.name for t in rs.tables] == ["module.admin.aws_security_group.this"]
    rule = [r for r in rs.table("module.admin.aws_security_group.this").chains["ingress"].rules
            if not r.implicit][0]
    # The location is the module's own file: the resource block, the ingress block.
    assert rule.origin.location.file.endswith("modules/sg/main.tf")
    assert (rule.origin.location.line, rule.location.line) == (3, 5)
    assert evaluate(rs, pkt("198.51.100.7", 22)).verdict == "accept"
    assert evaluate(rs, pkt("203.0.113.9", 22)).verdict == "drop"


def test_module_count_expands_and_arguments_override_defaults(tmp_path):
    root = tree(tmp_path, 'module "web" {\n  source = "./modules/sg"\n  count = 2\n'
                          '  cidr = "10.${count.index}.0.0/16"\n  port = 443\n}\n')
    rs = load(root)
    assert sorted(t.name for t in rs.tables) == ["module.web[0].aws_security_group.this",
                                                 "module.web[1].aws_security_group.this"]
    one = load(root)
    one.tables = [one.table("module.web[1].aws_security_group.this")]
    assert evaluate(one, pkt("10.1.2.3", 443)).verdict == "accept"
    assert evaluate(one, pkt("10.1.2.3", 22)).verdict == "drop"


def test_a_module_outside_the_tree_or_remote_is_not_read_and_said(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "main.tf").write_text(SG)
    root = tmp_path / "infra"
    root.mkdir()
    (root / "link").symlink_to(outside)
    (root / "main.tf").write_text(
        'module "up" {\n  source = "../elsewhere"\n  cidr = "0.0.0.0/0"\n}\n'
        'module "via_link" {\n  source = "./link"\n  cidr = "0.0.0.0/0"\n}\n'
        'module "reg" {\n  source = "terraform-aws-modules/security-group/aws"\n}\n'
        'module "abs" {\n  source = "/etc"\n}\n'
        'resource "aws_security_group" "local" {\n  name = "l"\n}\n')
    rs = load(root)
    assert [t.name for t in rs.tables] == ["aws_security_group.local"]
    said = [str(d) for d in rs.diagnostics]
    assert any("module 'up' is not read: source '../elsewhere' leaves the given tree" in m for m in said)
    assert any("module 'via_link' is not read: source './link' leaves the given tree" in m for m in said)
    assert any("module 'reg' is not read: source 'terraform-aws-modules/security-group/aws' is not "
               "a local path" in m for m in said)
    assert any("module 'abs' is not read" in m for m in said)
    assert all(":" in m.split(": ")[0] for m in said if "module" in m)  # file:line located


def test_a_module_calling_itself_stops(tmp_path):
    root = tree(tmp_path, 'module "a" {\n  source = "./m"\n}\n', module_dir="m",
                module_tf='module "again" {\n  source = "./"\n}\n' + SG)
    rs = load(root)
    assert [t.name for t in rs.tables] == ["module.a.aws_security_group.this"]
    assert any("calls itself" in str(d) for d in rs.diagnostics)


def test_unknown_cidr_is_ra404_naming_the_variable(tmp_path):
    """The module's CIDR comes from a root variable with no value: the
    audit says SSH may be exposed, depending on var.admin_cidr (RA404, info)."""
    root = tree(tmp_path, 'variable "admin_cidr" {}\nmodule "admin" {\n  source = "./modules/sg"\n'
                          '  cidr = var.admin_cidr\n}\n')
    result = run_audit([str(root)], select=["RA4"])
    found = [f for f in result.findings if f.code == "RA404"]
    assert found, [f"{f.code} {f.message}" for f in result.findings]
    assert "may be open to the whole internet: SSH (22/tcp" in found[0].message
    assert "depends on `var.admin_cidr`" in found[0].message
    assert found[0].where.file.endswith("modules/sg/main.tf")
    assert result.inputs == [str(root)]  # the directory is one unit


def test_cli_reads_a_directory(tmp_path, capsys):
    root = tree(tmp_path, 'module "admin" {\n  source = "./modules/sg"\n  cidr = "0.0.0.0/0"\n}\n')
    code = main(["audit", str(root), "--select", "RA4"])
    out = capsys.readouterr().out
    assert code == 1 and "RA401" in out and "module.admin.aws_security_group.this" in out


def test_files_from_two_places_do_not_open_their_common_parent(tmp_path):
    """a/main.tf and b/main.tf given together: a module of a/ may not reach
    into tmp_path/shared, though both lie under tmp_path."""
    for d in ("a", "b", "shared"):
        (tmp_path / d).mkdir()
    (tmp_path / "shared" / "main.tf").write_text(SG)
    (tmp_path / "a" / "main.tf").write_text('module "s" {\n  source = "../shared"\n  cidr = "0.0.0.0/0"\n}\n')
    (tmp_path / "b" / "main.tf").write_text('resource "aws_security_group" "b" {\n  name = "b"\n}\n')
    rs = load(tmp_path / "a" / "main.tf", tmp_path / "b" / "main.tf")
    assert [t.name for t in rs.tables] == ["aws_security_group.b"]
    assert any("leaves the given tree" in str(d) for d in rs.diagnostics)


def test_audit_of_a_directory_keeps_its_other_rule_files(tmp_path):
    """The .tf files of the directory are one unit; an iptables dump beside
    them is still audited, and the module's file is not audited again alone."""
    root = tree(tmp_path, 'module "admin" {\n  source = "./modules/sg"\n  cidr = "0.0.0.0/0"\n}\n')
    (root / "rules.v4").write_text("*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n")
    result = run_audit([str(root)], select=["RA401"])
    assert result.inputs == [str(root), str(root / "rules.v4")]
    assert {f.where.file.rsplit("/", 1)[-1] for f in result.findings} == {"main.tf", "rules.v4"}


def test_a_tree_of_environments_and_modules(tmp_path):
    """infra/envs/prod calls ../../modules/sg: auditing infra/ reads it (the
    module lies in the tree named), each environment is one configuration
    (its variables.tf with its main.tf), and the module is not audited alone."""
    infra = tmp_path / "infra"
    (infra / "modules" / "sg").mkdir(parents=True)
    (infra / "modules" / "sg" / "main.tf").write_text(SG)
    for env, cidr in (("prod", "0.0.0.0/0"), ("dev", "10.0.0.0/8")):
        (infra / "envs" / env).mkdir(parents=True)
        (infra / "envs" / env / "main.tf").write_text(
            'module "admin" {\n  source = "../../modules/sg"\n  cidr = var.office\n}\n')
        (infra / "envs" / env / "variables.tf").write_text(
            f'variable "office" {{\n  default = "{cidr}"\n}}\n')
    result = run_audit([str(infra)], select=["RA401", "RA403", "RA404"])
    assert result.inputs == [str(infra / "envs" / "dev"), str(infra / "envs" / "prod")]
    assert [(f.code, f.where.file.endswith("modules/sg/main.tf")) for f in result.findings] == \
        [("RA401", True)]  # prod opens SSH to the world; dev to 10/8 only
    # Named alone, envs/prod may not reach ../../modules: said, not read.
    alone = load(infra / "envs" / "prod")
    assert alone.tables == [] and any("leaves the given tree" in str(d) for d in alone.diagnostics)


def test_a_folder_of_unrelated_examples_is_read_file_by_file(tmp_path):
    """Two files declaring the same resource are not one module (Terraform
    refuses it): an audit of the folder reads each file alone."""
    for n in ("a", "b"):
        (tmp_path / f"{n}.tf").write_text('resource "aws_security_group" "example" {\n  name = "x"\n}\n')
    result = run_audit([str(tmp_path)], select=["RA401"])
    assert result.inputs == [str(tmp_path / "a.tf"), str(tmp_path / "b.tf")]


def test_max_bytes_counts_the_modules_files_together(tmp_path):
    """Each module file under --max-bytes, the module called five times over it: a located error."""
    root = tree(tmp_path, "".join(f'module "m{i}" {{\n  source = "./modules/sg"\n  cidr = "10.0.0.0/8"\n}}\n'
                                  for i in range(5)),
                module_tf=SG + "# padding\n" * 2000)
    import pytest
    from ruleanalyzer.errors import RuleAnalyzerError
    with pytest.raises(RuleAnalyzerError) as info:
        load(root, max_bytes=50_000)
    assert "together are over the limit of 50000 bytes" in info.value.message
    assert info.value.location.file.endswith("modules/sg/main.tf")
    assert len(load(root, max_bytes=1_000_000).tables) == 5
