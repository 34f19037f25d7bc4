"""Bad IaC input: located errors, exit 2, nothing executed."""

import json

import pytest

from ruleanalyzer.cli import main

CASES = {
    "plan.json": ('{"format_version": "1.2", "resource_changes": [', "plan.json:1:"),
    "future.json": ('{\n  "format_version": "2.0",\n  "terraform_version": "2.0.0",\n'
                    '  "resource_changes": []\n}\n', "future.json:2:1: error: Terraform JSON format_version '2.0'"),
    "old.tfstate": ('{"version": 3, "terraform_version": "0.11.14", "lineage": "x", "resources": []}',
                    "old.tfstate:1:1: error: Terraform state version 3 is not supported"),
    "broken.tf": ('resource "aws_security_group" "a" {\n  ingress {\n    from_port = \n}\n',
                  "broken.tf:3:"),
    "broken.yaml": ("AWSTemplateFormatVersion: '2010-09-09'\nResources:\n  A: [\n", "broken.yaml:4:"),
    "tag.yaml": ("AWSTemplateFormatVersion: '2010-09-09'\nResources:\n"
                 "  A: !!python/object/apply:os.system ['touch /tmp/ruleanalyzer-pwned']\n",
                 "tag.yaml:3:6: error: invalid YAML: could not determine a constructor"),
    "unknowntag.yaml": ("AWSTemplateFormatVersion: '2010-09-09'\nResources:\n  A: !Exec rm\n",
                        "unknowntag.yaml:3:6: error: invalid YAML"),
    "bomb.yaml": ("AWSTemplateFormatVersion: '2010-09-09'\na: &a [x, x]\n"
                  + "".join(f"b{i}: &b{i} [*{'a' if i == 0 else f'b{i-1}'}, *{'a' if i == 0 else f'b{i-1}'}]\n"
                            for i in range(40)) + "Resources: {}\n", "bomb.yaml:"),
    "huge.json": ('{"format_version": "1.0", "terraform_version": "1.0.0", "values": {"n": '
                  + "9" * 5000 + "}}", "huge.json:1:1: error: invalid JSON"),
    "badport.tf": ('resource "aws_security_group" "a" {\n  ingress {\n    from_port = 443\n    to_port = 22\n'
                   '    protocol = "tcp"\n    cidr_blocks = ["0.0.0.0/0"]\n  }\n}\n', "bad port range 443-22"),
    "deep.tf": ('resource "aws_security_group" "a" {\n  name = ' + "(" * 3000 + "1" + ")" * 3000 + "\n}\n",
                "deep.tf:1:1: error: an expression is nested too deeply to read"),
    "notmap.yaml": ("AWSTemplateFormatVersion: '2010-09-09'\nResources:\n  A: 5\n",
                    "notmap.yaml:3:1: error: resource A is not a mapping with a Type"),
    "binary.yaml": ("AWSTemplateFormatVersion: '2010-09-09'\nResources:\n  A: !!binary aGVsbG8=\n",
                    "binary.yaml:3:1: error: resource A is not a mapping"),
    "noprotocol.tf": ('resource "aws_security_group_rule" "r" {\n  type = "ingress"\n}\n',
                      "noprotocol.tf:1:1: error: aws_security_group_rule.r: a security group rule without a protocol"),
}


@pytest.mark.parametrize("name", CASES)
def test_bad_input_is_a_located_error_exit_2(name, tmp_path, capsys, monkeypatch):
    text, expected = CASES[name]
    path = tmp_path / name
    path.write_text(text)
    monkeypatch.chdir(tmp_path)
    assert main(["audit", name, "--format", "json", "--no-config"]) == 2
    data = json.loads(capsys.readouterr().out)
    assert [f["code"] for f in data["findings"]] == ["RA001"]
    assert main(["query", name, "--src", "203.0.113.9", "--dst", "10.0.0.1", "--dport", "22"]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert not __import__("os").path.exists("/tmp/ruleanalyzer-pwned")


def test_a_broken_file_inside_a_local_module_is_located_there(tmp_path, capsys):
    (tmp_path / "m").mkdir()
    (tmp_path / "main.tf").write_text('module "m" {\n  source = "./m"\n}\n')
    (tmp_path / "m" / "main.tf").write_text('resource "aws_security_group" "a" {\n  ingress {\n'
                                            '    from_port = \n}\n')
    assert main(["query", str(tmp_path), "--src", "203.0.113.9", "--dst", "10.0.0.1",
                 "--dport", "22"]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'm' / 'main.tf'}:3:" in err and "invalid HCL" in err and "Traceback" not in err


def test_no_hcl_function_is_evaluated(tmp_path, capsys):
    """file() and templatefile() are never run: the rule depends on them, named as written."""
    tf = tmp_path / "fn.tf"
    tf.write_text('resource "aws_security_group" "a" {\n  ingress {\n    from_port = 22\n    to_port = 22\n'
                  '    protocol = "tcp"\n    cidr_blocks = [file("/etc/hostname")]\n'
                  '    description = templatefile("/etc/passwd", {})\n  }\n}\n')
    assert main(["audit", str(tf), "--no-config", "--format", "json"]) == 0  # RA404 is info
    data = json.loads(capsys.readouterr().out)
    assert [f["code"] for f in data["findings"]] == ["RA404"]
    assert 'depends on `file("/etc/hostname")`' in data["findings"][0]["message"]
    assert "root:" not in json.dumps(data)  # /etc/passwd was not read
