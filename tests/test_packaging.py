"""The wheel ships every subpackage and the grammars."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "ruleanalyzer").rglob("__init__.py")}
    assert found - listed == set(), "add these to [tool.setuptools] packages"


def test_grammars_are_package_data():
    from ruleanalyzer.grammar_loader import grammar_text

    names = {p.stem for p in (ROOT / "grammars").glob("*.lark")}
    assert {"iptables", "nftables", "ufw"} <= names
    for name in names:
        assert grammar_text(name).strip()
