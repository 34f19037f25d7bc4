"""The nftables readers over real files we did not write (../shared/corpus).

Every dump and configuration parses (two configs include files that are not
in the corpus: located errors, as nft gives); fuzzer bogons never crash; the
py-test rule lines parse inside a chain of their family; and each upstream
test dump read as text and as ``nft -j`` JSON gives the same model and the
same verdicts.
"""

from __future__ import annotations

import ipaddress
import random
from pathlib import Path

import pytest

from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.loader import read_text
from ruleanalyzer.model import Packet
from ruleanalyzer.parsers import nft_json, nftables

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
TEXT = CORPUS / "nftables"
JSON = CORPUS / "nftables-json"

pytestmark = pytest.mark.corpus

#: configs nft itself cannot load from the corpus: file → words of our message
EXPECTED_REJECTS = {
    "dfinity-http-gateway-release/etc__nftables.conf": "leaves the directory",
    "nftables-upstream-examples/files__nftables__all-in-one.nft": "not found",
}


def _files(root: Path, *, bogons: bool):
    if not root.is_dir():
        pytest.skip("corpus not present")
    return sorted(p for p in root.glob("*/*") if p.is_file() and "py-rules" not in p.parent.name
                  and ("bogons" in p.parent.name) == bogons)


def _read(path: Path) -> str:
    try:
        return read_text(path)
    except RuleAnalyzerError:
        return path.read_bytes().decode("utf-8", "replace")


def test_text_dumps_and_configs_parse():
    parsed, rules = 0, 0
    for path in _files(TEXT, bogons=False):
        key = f"{path.parent.name}/{path.name}"
        if key in EXPECTED_REJECTS:
            with pytest.raises(RuleAnalyzerError, match=EXPECTED_REJECTS[key]):
                nftables.parse(_read(path), str(path))
            continue
        rs = nftables.parse(_read(path), str(path))
        parsed += 1
        rules += rs.rule_count
    assert parsed >= 480 and rules >= 1200


def test_text_bogons_never_crash():
    diagnosed = 0
    for path in _files(TEXT, bogons=True):
        try:
            nftables.parse(_read(path), str(path))
        except RuleAnalyzerError as err:
            assert err.location is not None and err.location.line >= 1, path
            diagnosed += 1
    assert diagnosed >= 20


def test_json_documents_parse():
    parsed = 0
    for path in _files(JSON, bogons=False):
        nft_json.parse(_read(path), str(path))
        parsed += 1
    assert parsed >= 420


def test_json_bogons_never_crash():
    for path in _files(JSON, bogons=True):
        try:
            nft_json.parse(_read(path), str(path))
        except RuleAnalyzerError as err:
            assert err.location is not None, path


def _py_rule_lines():
    root = TEXT / "nftables-upstream-py-rules"
    if not root.is_dir():
        pytest.skip("corpus not present")
    for path in sorted(root.glob("*.t")):
        family = "ip"
        for number, line in enumerate(path.read_text("utf-8", "replace").splitlines(), 1):
            if line.startswith("*"):
                family = line[1:].split(";")[0] or family
            elif line and line[0] not in "#:-*" and ";" in line:
                parts = line.split(";")
                if len(parts) >= 2 and parts[1].strip() == "ok":
                    yield path.name, number, family, parts[0]


def test_py_rule_lines_parse_inside_a_chain():
    parsed = diagnosed = 0
    for name, number, family, rule in _py_rule_lines():
        text = (f"table {family} t {{\n set s {{ type ipv4_addr; }}\n chain c {{\n"
                f"  type filter hook input priority 0;\n  {rule}\n }}\n}}\n")
        if family in ("bridge", "netdev", "arp"):
            text = text.replace("hook input", "hook ingress device lo" if family == "netdev" else "hook input")
        try:
            nftables.parse(text, f"{name}:{number}")
            parsed += 1
        except RuleAnalyzerError:
            diagnosed += 1  # mostly references to sets/maps the .t file declares elsewhere
    assert parsed + diagnosed > 1500
    assert parsed / (parsed + diagnosed) > 0.8, (parsed, diagnosed)


def _shape(ruleset):
    out = []
    for table in ruleset.tables:
        for chain in table.chains.values():
            out.append((table.family, table.name, chain.name, chain.hook, chain.priority, chain.policy,
                        chain.kind if chain.hook else None, chain.devices, len(chain.rules)))
            out.extend((r.matches, r.action, r.effects) for r in chain.rules)
    return out


def _pairs():
    text_dir = TEXT / "nftables-upstream-shell-dumps"
    json_dir = JSON / "nftables-upstream-shell-dumps"
    if not text_dir.is_dir() or not json_dir.is_dir():
        pytest.skip("corpus not present")
    for path in sorted(text_dir.glob("*.nft")):
        twin = json_dir / (path.stem + ".json-nft")
        if twin.exists():
            yield path, twin


def _packets(rng: random.Random, count: int):
    hooks = ("input", "forward", "output")
    for _ in range(count):
        v6 = rng.random() < 0.3
        src = ipaddress.ip_address(rng.getrandbits(128 if v6 else 32))
        dst = ipaddress.ip_address(rng.getrandbits(128 if v6 else 32))
        proto = rng.choice((6, 17, 1 if not v6 else 58))
        ports = proto in (6, 17)
        yield Packet(src, dst, proto=proto, sport=rng.randrange(1, 65536) if ports else None,
                     dport=rng.choice((22, 53, 80, 443, rng.randrange(1, 65536))) if ports else None,
                     flags=rng.choice((0x02, 0x12, 0x10, 0xC2)) if proto == 6 else 0,
                     icmp_type=8 if proto in (1, 58) else None, hook=rng.choice(hooks))


def test_text_and_json_twins_give_the_same_model_and_verdicts():
    try:
        from ruleanalyzer.engine import evaluate
    except ImportError:
        evaluate = None
    rng = random.Random(1)
    identical = 0
    for text_path, json_path in _pairs():
        a = nftables.parse(_read(text_path), str(text_path))
        b = nft_json.parse(_read(json_path), str(json_path))
        assert _shape(a) == _shape(b), text_path.name
        identical += 1
        if evaluate is not None and a.rule_count:
            for packet in _packets(rng, 3):
                try:
                    va = evaluate(a, packet).verdict
                except Exception as exc:  # the engine is another engineer's; compare outcomes
                    va = type(exc).__name__
                try:
                    vb = evaluate(b, packet).verdict
                except Exception as exc:
                    vb = type(exc).__name__
                assert va == vb, (text_path.name, packet)
    assert identical >= 400
