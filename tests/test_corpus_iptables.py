"""The iptables parser over real files we did not write (../shared/corpus).

Full dumps must parse, except the few that iptables-restore itself would
refuse (listed with the reason). The upstream rule fragments (extension
``.t`` test lines and ``iptables-translate`` command lines) are fed one by
one to :func:`parse_rule`: any exception other than a located
RuleAnalyzerError is a crash and fails the test.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.loader import read_text
from ruleanalyzer.parsers import iptables

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "iptables"
FRAGMENT_SOURCES = ("iptables-upstream-extension-rules", "iptables-upstream-txlate")

pytestmark = pytest.mark.corpus

#: dumps iptables-restore refuses too: file name → words of our message
EXPECTED_REJECTS = {
    # batfish grammar tests, invalid on purpose
    "projects__batfish__src__test__resources__org__batfish__grammar__iptables__testconfigs__"
    "unsupported_command": "-h only prints",
    "projects__batfish__src__test__resources__org__batfish__grammar__iptables__testconfigs__"
    "unsupported_rule_spec_options": "match tcp needs -p tcp",
    # parser torture test with a made-up option
    "Iptables_Semantics__Examples__Parser_Test__data__iptables-save":
        "unknown option --something-else",
    # anonymised with a placeholder instead of an address
    "config_private_root__iptables-save": "invalid address '<private_ip>/32'",
    # a rule line wrapped in the middle of an address by copy-and-paste
    "found_online__openwrt.org__iptables-save-AA.txt": "unexpected argument '8.1.1:22'",
    # host names: iptables-restore resolves them when it loads the file; an
    # offline analysis cannot, and says so (issue #17)
    "found_online__jvehent__firewall": "names are not resolved offline",
    "etc__iptables__rules.v4": "names are not resolved offline",
    "etc__iptables__rules.v6": "names are not resolved offline",
}


def _dumps() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.rglob("*")
                  if p.is_file() and p.parent.name not in FRAGMENT_SOURCES)


def test_every_dump_parses_or_is_a_known_reject():
    files = _dumps()
    if not files:
        pytest.skip("corpus not present")
    parsed, rejected = [], {}
    for path in files:
        try:
            ruleset = iptables.parse(read_text(path), str(path))
        except RuleAnalyzerError as exc:
            assert exc.location is not None and exc.location.line >= 1, str(exc)
            rejected[path.name] = exc.message
            continue
        parsed.append((path, ruleset))
    unexpected = {n: m for n, m in rejected.items() if n not in EXPECTED_REJECTS}
    assert not unexpected, unexpected
    for name, words in EXPECTED_REJECTS.items():
        assert words in rejected.get(name, ""), (name, rejected.get(name))
    assert len(parsed) >= 100
    assert sum(rs.rule_count for _, rs in parsed) > 20_000


def test_dumps_keep_their_family_and_builtin_chains():
    files = {p.name: p for p in _dumps()}
    if not files:
        pytest.skip("corpus not present")
    v6 = iptables.parse(read_text(files["Iptables_Semantics__Examples__Parser_Test__data__ip6tables-save"]),
                        "ip6tables-save")
    assert {t.family for t in v6.tables} == {"ip6"}
    filt = v6.table("filter")
    assert filt.chains["INPUT"].policy == "drop"
    assert filt.chains["FORWARD"].rules[0].matches[0].networks[0].version == 6


def test_stray_prose_is_a_located_warning():
    path = CORPUS / "net-network" / "blog_a-unikernel-firewall-for-qubesos__iptables-save"
    if not path.exists():
        pytest.skip("corpus not present")
    ruleset = iptables.parse(read_text(path), str(path))
    assert ruleset.diagnostics
    assert all(d.level == "warning" and d.location.line >= 1 for d in ruleset.diagnostics)
    assert ruleset.rule_count > 0


def _fragment_lines():
    """(file, line number, rule spec, family, table, chain, expected OK?)"""
    source = CORPUS / "iptables-upstream-extension-rules"
    for path in sorted(source.glob("*.t")):
        if path.name.startswith(("libebt_", "libarpt_")):
            continue  # ebtables / arptables, not iptables
        family = "ip6" if path.name.startswith("libip6t_") else "ip"
        table, chain = "filter", "INPUT"
        for number, line in enumerate(read_text(path).splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("*"):
                table = line[1:]
            elif line.startswith(":"):
                chain = line[1:].split(",")[0]
            elif line.count(";") >= 2:
                spec, _, verdict = line.rsplit(";", 2)[0], None, line.rsplit(";", 1)[1]
                yield path, number, spec, family, table, chain, verdict.strip() == "OK"
    source = CORPUS / "iptables-upstream-txlate"
    for path in sorted(source.glob("*.txlate")):
        for number, line in enumerate(read_text(path).splitlines(), 1):
            m = re.match(r"(ip6?)tables-translate\s+(.*)", line.strip())
            if m:
                yield path, number, m.group(2), "ip6" if m.group(1) == "ip6" else "ip", \
                    "filter", "INPUT", True


def _parse_fragment(spec, family, table, chain, name, number, try_both):
    words = spec.split()
    if "-t" in words[:-1]:  # iptables-translate -t nat -A ...
        i = words.index("-t")
        table = words[i + 1]
        spec = " ".join(words[:i] + words[i + 2:])
    families = (family, "ip6" if family == "ip" else "ip") if try_both else (family,)
    error = None
    for fam in families:
        try:
            return iptables.parse_rule(spec, name=name, line=number, table=table, chain=chain,
                                       family=fam), None
        except RuleAnalyzerError as exc:
            error = error or exc
    return None, error


def test_fragment_lines_never_crash():
    lines = list(_fragment_lines())
    if not lines:
        pytest.skip("corpus not present")
    counts = {"ok_parsed": 0, "ok_rejected": 0, "fail_rejected": 0, "fail_parsed": 0}
    for path, number, spec, family, table, chain, expect_ok in lines:
        try_both = path.name.startswith("libxt_") or path.name == "iptables.t"
        rule, error = _parse_fragment(spec, family, table, chain, str(path), number, try_both)
        if error is not None:
            assert error.location.line == number and error.location.column >= 1
        key = ("ok_" if expect_ok else "fail_") + ("parsed" if rule else "rejected")
        counts[key] += 1
    print("fragment lines:", counts)
    # most lines upstream expects to work must work here too
    assert counts["ok_parsed"] >= 0.9 * (counts["ok_parsed"] + counts["ok_rejected"]), counts
