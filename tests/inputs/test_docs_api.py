"""Docs and API (issue #17): the JSON schemas of query/connect/path/diff
hold for real output, docs/config.md's examples load, the top-level API is
importable and typed."""

import json
import re
from pathlib import Path

import pytest

from ruleanalyzer.cli import main
from ruleanalyzer.config import load_config

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "fixtures" / "rulesets" / "webserver.rules"
SCHEMAS = ROOT / "docs" / "schemas"


def _json(capsys, *args):
    main([str(a) for a in args])
    return json.loads(capsys.readouterr().out)


def test_the_json_schemas_hold_for_real_output(tmp_path, capsys):
    jsonschema = pytest.importorskip("jsonschema")
    new = tmp_path / "new.rules"
    new.write_text(WEB.read_text().replace("--dports 80,443", "--dports 80,4443"))
    outputs = {
        "query": [_json(capsys, "query", WEB, "--src", "198.51.100.7", "--dst", "192.0.2.10", "--dport", "22",
                        "--format", "json")],
        "connect": [_json(capsys, "connect", WEB, "--client", "198.51.100.7", "--server", "192.0.2.10",
                          "--dport", "443", "--format", "json")],
        "path": [_json(capsys, "path", ROOT / "fixtures/topologies/aws-three-tier/topology.yaml",
                       "--from", "web", "--to", "app", "--dport", "8080", "--format", "json")],
        "diff": [_json(capsys, "diff", WEB, new, "--format", "json")],
    }
    assert outputs["diff"][0]["regions"], "the diff example must change something"
    for name, documents in outputs.items():
        schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        for document in documents:
            jsonschema.validate(document, schema)
        broken = json.loads(json.dumps(documents[0]))
        broken.pop(next(iter(schema.get("required") or schema["$defs"].get("result", schema["$defs"].get(
            "report", {})).get("required"))))
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema)


def test_docs_json_links_every_schema():
    text = (ROOT / "docs" / "json.md").read_text()
    for schema in SCHEMAS.glob("*.schema.json"):
        assert f"schemas/{schema.name}" in text


def test_config_docs_examples_load(tmp_path):
    text = (ROOT / "docs" / "config.md").read_text()
    blocks = re.findall(r"```(yaml|toml)\n(.*?)```", text, re.S)
    assert len(blocks) >= 7
    keys = set(re.findall(r"^## (\S+)$", text, re.M))
    assert keys == {"select", "ignore", "fail-on", "options", "suppress", "interfaces", "policy"}
    for n, (kind, body) in enumerate(blocks):
        path = tmp_path / (f"c{n}.yaml" if kind == "yaml" else f"c{n}.toml")
        path.write_text(body if kind == "yaml" else "[tool.ruleanalyzer]\n" + body)
        load_config(path)  # raises on any unknown or bad key


def test_top_level_api_and_types():
    from ruleanalyzer import audit, connect, diff, evaluate, load, loads, make_packet

    rs = loads("*filter\n:INPUT DROP [0:0]\n:OUTPUT DROP [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\n"
               "-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n", dialect="iptables")
    assert evaluate(rs, make_packet(src="198.51.100.7", dst="192.0.2.1", dport=22)).verdict == "accept"
    report = connect(rs, "198.51.100.7", "192.0.2.1", 22)
    assert [v.ecn for v in report.variants] == [False, True]  # the CLI's default: both
    assert "RA505" in [f.code for f in audit(rs)]
    assert not diff(rs, rs).verdicts_changed
    assert load(WEB).rule_count == 9
    import ruleanalyzer.audit as module

    assert callable(module) and module.run_audit  # the module stays a module
    assert (ROOT / "ruleanalyzer" / "py.typed").is_file()
    assert '"py.typed"' in (ROOT / "pyproject.toml").read_text()
