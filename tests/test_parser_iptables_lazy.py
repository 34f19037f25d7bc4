"""For query and connect (inside ``parsers.lazy_reading()``) the iptables
reader checks each rule a file appends as it reads it and builds a chain's
rules only when they are first asked for (a query enters chains holding a
few percent of a big file's rules). Nobody may notice: every file reads to
the same model, is refused with the same message at the same line and
column, and answers the same packets the same way with the lazy chains as
with every rule built as it is read (``LAZY_CHAINS = False``, and every
reading outside lazy_reading: audit, diff, lint).
"""

from __future__ import annotations

import io
import json
import pickle
import random
from pathlib import Path

import pytest

from ruleanalyzer import cli, parsers
from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.loader import load
from ruleanalyzer.model import Chain
from ruleanalyzer.packets import make_packet
from ruleanalyzer.parsers import iptables
from ruleanalyzer.parsers import iptables_modules as modules
from ruleanalyzer.parsers import iptables_rulespec as rulespec
from ruleanalyzer.parsers.iptables_values import BadValue
from ruleanalyzer.report.answers import write_answers

from .generated_shapes import generate
from .test_parser_iptables_plans import model

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus" / "iptables"
FRAGMENTS = CORPUS / "iptables-upstream-extension-rules"


@pytest.fixture(autouse=True)
def _lazy_reading(monkeypatch):
    """Every test here reads as query does (inside parsers.lazy_reading)."""
    monkeypatch.setattr(parsers, "LAZY_READING", True)


def both(text: str, name: str, monkeypatch, family: str | None = None) -> tuple[list, list]:
    """The model read with lazy chains and with every rule built as read."""
    def read():
        if family is None:
            return model(text, name)
        try:
            rs = iptables.parse(text, name, family=family)
        except RuleAnalyzerError as exc:
            return ["error", exc.render()]
        return model_of(rs)
    lazy = read()
    monkeypatch.setattr(iptables, "LAZY_CHAINS", False)
    try:
        eager = read()
    finally:
        monkeypatch.setattr(iptables, "LAZY_CHAINS", True)
    return lazy, eager


def model_of(rs) -> list:
    # (the objects themselves, not their reprs: a frozenset of names made
    # again by pickle may list the same names in another order)
    return [(c.name, c.policy, [(r.matches, r.action, r.location, r.text, r.comment,
                                 r.counters, r.index, r.chain.name) for r in c.rules])
            for t in rs.tables for c in t.chains.values()] + [repr(d) for d in rs.diagnostics]


HEAD = """*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:idle - [0:0]
-A idle -p tcp -j DNAT --to-destination 1.2.3.4:8080
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:idle - [0:0]
:web - [0:0]
-A INPUT -p tcp -m tcp --dport 80 -j web
-A web -s 10.0.0.0/8 -j ACCEPT
"""

#: values next to the edges of what the values' plain spellings vouch for
#: (iptables_values.plain_*), in a chain no packet enters: refused or read
#: exactly as when built as read
EDGE_LINES = [
    "-A idle -s 1.2.3.4 -j DROP", "-A idle -s 1.2.3.256 -j DROP", "-A idle -d 1.2.3.4/32 -j DROP",
    "-A idle -d 1.2.3.4/33 -j DROP", "-A idle -s 01.2.3.4 -j DROP", "-A idle -s 1.2.3.4/08 -j DROP",
    "-A idle -s 1.2.3.4/0 -j DROP", "-A idle ! -s 1.2.3.4,5.6.7.8 -j DROP",
    "-A idle -s 1.2.3.4,5.6.7.999 -j DROP", "-A idle -s 10.3/16 -j DROP",
    "-A idle -s 10.0.0.0/255.0.255.0 -j DROP", "-A idle -s 1.2.3.4/255.255.255.255 -j DROP",
    "-A idle -s host.example.org -j DROP", "-A idle -s 2001:db8::1 -j DROP",
    "-A idle -s \"1.2.3.4\" -j DROP", "-A idle -s 1.2.3.4/-1 -j DROP",
    "-A idle -p tcp -m tcp --dport 65535 -j DROP", "-A idle -p tcp -m tcp --dport 65536 -j DROP",
    "-A idle -p tcp -m tcp --dport 0 -j DROP", "-A idle -p tcp -m tcp --dport 08 -j DROP",
    "-A idle -p tcp -m tcp --dport 010 -j DROP", "-A idle -p udp -m udp --dport 08 -j DROP",
    "-A idle -p tcp -m tcp --dport 1:65536 -j DROP", "-A idle -p tcp -m tcp --dport 5:3 -j DROP",
    "-A idle -p tcp -m tcp --dport :5 -j DROP", "-A idle -p tcp -m tcp --sport 5: -j DROP",
    "-A idle -p tcp -m tcp --dport 99999 -j DROP", "-A idle -p tcp -m tcp --dport ssh -j DROP",
    "-A idle -p tcp -m tcp --dport nosuchservice -j DROP", "-A idle -p tcp --dport 1:2:3 -j DROP",
    "-A idle -p udp -m multiport --dports 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15 -j DROP",
    "-A idle -p udp -m multiport --dports 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16 -j DROP",
    "-A idle -p udp -m multiport --dports 1:2,3:4,5:6,7:8,9:10,11:12,13:14,15 -j DROP",
    "-A idle -p udp -m multiport --dports 1:2,3:4,5:6,7:8,9:10,11:12,13:14,15:16 -j DROP",
    "-A idle -p udp -m multiport --dports 1,,2 -j DROP", "-A idle -p udp -m multiport --ports 1,70000 -j DROP",
    "-A idle -p tcp -m multiport --sports 22,80:90 -j DROP", "-A idle -m length --length 5:3 -j DROP",
    "-A idle -m length --length 0:65535 -j DROP", "-A idle -m length --length 65536 -j DROP",
    "-A idle -m length --length 010 -j DROP", "-A idle -m length --length 20: -j DROP",
    "-A idle -m iprange --src-range 10.0.0.5-10.0.0.1 -j DROP",
    "-A idle -m iprange --src-range 10.0.0.1-10.0.0.1 -j DROP",
    "-A idle -m iprange --dst-range 10.0.0.1-10.0.0.300 -j DROP",
    "-A idle -m iprange --src-range 10.1-10.2 -j DROP", "-A idle -m iprange --src-range 10.9.9.9 -j DROP",
    "-A idle -m iprange --src-range 10.2.0.0-10.10.0.0 -j DROP",
    "-A idle -i eth0123456789ab -j DROP", "-A idle -o eth0123456789abc -j DROP",
    "-A idle -m mark --mark 0x10000000000 -j DROP", "-A idle -m ttl --ttl-gt 256 -j DROP",
    "-A idle -m conntrack --ctstate NEW,BOGUS -j DROP", "-A idle -p icmp -m icmp --icmp-type 300 -j DROP",
    "-A idle -p tcp -j REJECT --reject-with tcp-reset", "-A idle -p udp -j REJECT --reject-with tcp-reset",
    "-A idle -j REJECT --reject-with bogus", "-A idle -c 1 x -j DROP", "-A idle -c 1,2 -j DROP",
    "-A idle -m u32 --u32 \"0>>22&0x3C@4=0x29\" -j DROP", "-A idle -p tcp -j DNAT --to-destination 1.2.3.4:99",
    "-A idle -p tcp -j DNAT --to-destination 1.2.3.4:65536",
    "-A idle -p tcp -j DNAT --to-destination 01.2.3.4:80", "-A idle -p udp -j SNAT --to-source 1.2.3.256:80",
    "-A idle ! -p tcp -j DNAT --to-destination 1.2.3.4:80", "-A idle -p icmp -j DNAT --to-destination 1.2.3.4:80",
    "-A idle -p tcp -j DNAT --to-destination 1.2.3.4:080", "-A idle -p tcp -j SNAT --to-destination 1.2.3.4:80",
    "-A idle -p tcp -j DNAT --to-destination 1.2.3.4", "-A idle -p tcp -j DNAT --to-destination 1.2.3.4:1-9",
    "-A idle -4 -j DROP", "-A idle -6 -j DROP", "-A idle -j nowhere", "-A idle -g web",
    "-A idle -p tcp -m tcp --tcp-flags SYN,BOGUS SYN -j DROP",
]


@pytest.mark.parametrize("line", EDGE_LINES)
def test_values_in_chains_no_packet_enters_read_or_fail_as_when_built(line, monkeypatch):
    texts = [HEAD + line + "\n-A idle -j RETURN\nCOMMIT\n",
             HEAD + line.replace("-A idle", "-A INPUT") + "\nCOMMIT\n"]
    if "NAT" in line:
        texts.append(HEAD.replace("COMMIT", line + "\nCOMMIT", 1) + "COMMIT\n")
    for text in texts:
        lazy, eager = both(text, "edge.rules", monkeypatch)
        assert lazy == eager, text


def test_a_bad_value_is_refused_with_its_place():
    text = HEAD + "-A idle -s 10.0.0.0/8 -j ACCEPT\n-A idle -p tcp --dport 65536 -j DROP\nCOMMIT\n"
    with pytest.raises(RuleAnalyzerError) as caught:
        iptables.parse(text, "bad.rules")
    assert caught.value.render().startswith("bad.rules:16:24: ")
    assert "port 65536 out of range" in caught.value.render()


EDITS = [
    "-I idle 1 -s 10.0.0.1 -j DROP", "-I idle 3 -j DROP", "-D idle -s 10.0.0.2 -j DROP",
    "-D idle 1", "-D idle 9", "-R idle 1 -j ACCEPT", "-C idle -s 10.0.0.2 -j DROP",
    "-F idle", "-F", "-X idle", "-X", "-E idle quiet", "-E web quiet", "-N extra",
    "-P INPUT DROP", "-Z", "-A idle -j web", "-A web -j idle", "-A idle -j idle",
    "-A web -j nowhere", "-A idle -g INPUT",
]


@pytest.mark.parametrize("edit", EDITS)
def test_commands_after_appended_rules_read_as_when_built(edit, monkeypatch):
    """-I, -D, -R, -F, -X, -E, -N after rules waiting in lazy chains, and
    jumps that reach undefined chains or loop: the same model or error."""
    text = (HEAD + "-A idle -s 10.0.0.2 -j DROP\n[3:4] -A idle -p udp -m udp --dport 53 "
            "-m comment --comment \"dns \\\"x\\\"\" -j web\n-A web -j idle\n" + edit +
            "\n-A idle -d 10.9.0.0/16 -j ACCEPT\n-A web -j RETURN\nCOMMIT\n")
    lazy, eager = both(text, "edit.rules", monkeypatch)
    assert lazy == eager


def test_benchmark_shapes_and_an_ipv6_file_read_the_same(monkeypatch):
    for shape in ("mixed", "kube-iptables", "project"):
        text, _ = generate(shape, 1500, 3)
        lazy, eager = both(text, f"{shape}.rules", monkeypatch)
        assert lazy[0] != "error" and lazy == eager, shape
    v6 = HEAD.replace("10.0.0.0/8", "2001:db8::/32") + \
        "-A idle -s 2001:db8::1/128 -p tcp --dport 22 -j ACCEPT\n-A idle -s 10.0.0.1 -j DROP\nCOMMIT\n"
    lazy, eager = both(v6, "rules.v6", monkeypatch, family="ip6")
    assert lazy == eager and lazy[0] == "error"


def test_corpus_dumps_read_the_same(monkeypatch):
    if not CORPUS.is_dir():
        pytest.skip("corpus not present")
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file()
                   and p.parent.name not in ("iptables-upstream-extension-rules",
                                             "iptables-upstream-txlate"))
    rejected = 0
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        lazy, eager = both(text, path.name, monkeypatch)
        assert lazy == eager, path.name
        rejected += lazy[0] == "error"
    assert len(files) > 50 and rejected > 3


def test_upstream_rule_fragments_read_the_same(monkeypatch):
    """Every line of the iptables extension test files, alone in a chain
    nothing jumps to (and again in INPUT): the same rule or the same error."""
    if not FRAGMENTS.is_dir():
        pytest.skip("corpus not present")
    checked = refused = 0
    for path in sorted(FRAGMENTS.glob("lib*.t")):
        family = "ip6" if path.name.startswith("libip6t_") else "ip"
        for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if not raw or raw[0] in ":#%":
                continue
            rule = raw.split(";")[0]
            text = (HEAD + f"-A idle {rule}\n-A INPUT {rule}\nCOMMIT\n")
            lazy, eager = both(text, path.name, monkeypatch, family=family)
            assert lazy == eager, (path.name, rule)
            checked += 1
            refused += lazy[0] == "error"
    assert checked > 1000 and refused > 100


#: each plain-value check and the parser it vouches for: (check, parse one value)
CHECKS = [
    ("network", lambda v: rulespec._GENERIC_BUILDERS[rulespec._SRC].valid(v, "ip"),
     lambda v: rulespec._GENERIC_BUILDERS[rulespec._SRC]([v], False, "-s " + v, "ip")),
    ("port", lambda v: modules._TCP["--dport"].build.valid(v, "ip"),
     lambda v: modules._TCP["--dport"].build([v], False, "--dport " + v, "ip")),
    ("udp port", lambda v: modules._UDP["--dport"].build.valid(v, "ip"),
     lambda v: modules._UDP["--dport"].build([v], False, "--dport " + v, "ip")),
    ("ports", lambda v: modules.MODULES["multiport"]["--dports"].build.valid(v, "ip"),
     lambda v: modules.MODULES["multiport"]["--dports"].build([v], False, "--dports " + v, "ip")),
    ("length", lambda v: modules.MODULES["length"]["--length"].build.valid(v, "ip"),
     lambda v: modules.MODULES["length"]["--length"].build([v], False, "--length " + v, "ip")),
    ("range", lambda v: modules.MODULES["iprange"]["--src-range"].build.valid(v, "ip"),
     lambda v: modules.MODULES["iprange"]["--src-range"].build([v], False, "--src-range " + v, "ip")),
    ("interface", lambda v: rulespec._GENERIC_BUILDERS[rulespec._IIF].valid(v, "ip"),
     lambda v: rulespec._GENERIC_BUILDERS[rulespec._IIF]([v], False, "-i " + v, "ip")),
]


@pytest.mark.parametrize("name,valid,parse", CHECKS, ids=[c[0] for c in CHECKS])
def test_a_value_vouched_for_without_building_it_builds(name, valid, parse):
    """A value the check-only reading passes is one the parser accepts
    (random spellings near the plain ones; some of each kind pass)."""
    rng = random.Random(21)
    pieces = ["0", "1", "9", "25", "255", "256", "300", "65535", "65536", "08", "010", "0x1f",
              ".", ".", ".", ":", ":", "/", "-", ",", "32", "33", "a", "", "1.2.3.4"]
    passed = 0
    for _ in range(6000):
        value = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 9)))
        if valid(value):
            passed += 1
            try:
                parse(value)
            except BadValue as exc:
                pytest.fail(f"{name} {value!r} passed the check, but the parser says: {exc}")
    for plain in {"network": ["10.1.2.3/24"], "port": ["22", "1024:65535"], "udp port": ["53"],
                  "ports": ["22,80:90"], "length": ["20:1500"], "range": ["10.0.0.1-10.0.0.9"],
                  "interface": ["eth0"]}[name]:
        assert valid(plain)
    assert passed > 20


def test_a_query_builds_only_the_chains_it_enters(monkeypatch):
    """One packet against a 3,000-rule file: most chains are never built,
    and every answer is the one of the file built as read."""
    text, _ = generate("mixed", 3000, 1)
    rs = iptables.parse(text, "mixed.rules")
    chains = list(rs.chains())
    packets = [make_packet(src="192.0.2.7", dst="10.1.2.3", proto="tcp", dport=22, hook="input")]
    out = io.StringIO()
    write_answers(rs, packets, out, "json", trace=True, single=True)
    unbuilt = sum(c.__class__ is not Chain for c in chains)
    assert unbuilt > len(chains) // 2
    monkeypatch.setattr(iptables, "LAZY_CHAINS", False)
    eager = iptables.parse(text, "mixed.rules")
    expected = io.StringIO()
    write_answers(eager, packets, expected, "json", trace=True, single=True)
    assert json.loads(out.getvalue()) == json.loads(expected.getvalue())
    many = [make_packet(src=f"10.{k}.0.1", dst="10.1.2.3", proto="udp", dport=k, hook=hook)
            for k in range(1, 90) for hook in ("input", "forward", "output")]
    got, want = io.StringIO(), io.StringIO()
    write_answers(rs, many, got, "jsonl", trace=False)
    write_answers(eager, many, want, "jsonl", trace=False)
    assert got.getvalue() == want.getvalue()


def test_a_model_with_unbuilt_chains_pickles_and_copies_whole():
    import copy
    import dataclasses

    text, _ = generate("mixed", 600, 2)
    expected = model_of(iptables.parse(text, "m.rules"))
    assert model_of(pickle.loads(pickle.dumps(iptables.parse(text, "m.rules")))) == expected
    assert model_of(copy.deepcopy(iptables.parse(text, "m.rules"))) == expected
    rs = iptables.parse(text, "m.rules")
    chain = next(c for c in rs.chains() if c.__class__ is not Chain)
    twin = dataclasses.replace(chain)
    assert twin.__class__ is Chain and twin.rules == chain.rules and len(chain.rules) > 5


@pytest.mark.parametrize("second", [
    "-A idle -p udp -m udp --dport 9 -j REJECT --reject-with tcp-reset",
    "-A idle ! -p tcp -j REJECT --reject-with tcp-reset",
    "-A idle ! -p tcp -j DNAT --to-destination 1.2.3.4:80",
    "-A idle -p icmp -j DNAT --to-destination 1.2.3.4:80",
])
def test_a_target_read_before_is_checked_again_under_another_protocol(second, monkeypatch):
    """Targets are checked once per spelling and protocol: the same target
    text under a protocol it does not allow is still refused at its line."""
    for first in ("-A idle -p tcp -m tcp --dport 9 -j REJECT --reject-with tcp-reset",
                  "-A idle -p tcp -m tcp --dport 9 -j DNAT --to-destination 1.2.3.4:80"):
        table = "*nat\n:PREROUTING ACCEPT [0:0]\n:idle - [0:0]\n" if "NAT" in second else HEAD
        text = table + first + "\n" + second + "\nCOMMIT\n"
        lazy, eager = both(text, "twice.rules", monkeypatch)
        assert lazy == eager
        line = text.count("\n", 0, text.index(second)) + 1
        assert lazy[0] == "error" and lazy[1].startswith(f"twice.rules:{line}:"), lazy[:2]


def test_a_build_cut_short_by_the_time_limit_is_whole_when_asked_again(monkeypatch):
    """The audit's time limit (a signal) may stop a chain's build half way:
    the chain's rules, asked for again, are all there, as built as read."""
    from ruleanalyzer.checks.base import AnalysisTimeout

    text, _ = generate("mixed", 600, 2)
    rs = iptables.parse(text, "m.rules")
    chain = max((c for c in rs.chains() if c.__class__ is not Chain),
                key=lambda c: len(iptables._RULES.__get__(c, Chain).records))
    other = next(c for c in rs.chains() if c.__class__ is not Chain and c is not chain)
    calls = []
    fields = rulespec.Plan.fields

    def cut(plan, raws, words):
        calls.append(1)
        if len(calls) == 5:
            raise AnalysisTimeout()
        return fields(plan, raws, words)

    monkeypatch.setattr(rulespec.Plan, "fields", cut)
    with pytest.raises(AnalysisTimeout):
        chain.rules  # noqa: B018
    built = chain.rules
    monkeypatch.setattr(iptables, "LAZY_CHAINS", False)
    eager = iptables.parse(text, "m.rules")
    twin = next(t for t in eager.tables if t.name == chain.table.name).chains[chain.name]
    assert len(built) > 5
    assert [(r.matches, r.action, r.location, r.index) for r in built] == \
        [(r.matches, r.action, r.location, r.index) for r in twin.rules]
    # the build stopped between storing the rules and becoming a plain Chain
    rules = iptables._build_rules(other, iptables._RULES.__get__(other, Chain))
    iptables._RULES.__set__(other, rules)
    assert other.rules is rules and other.__class__ is Chain
    assert model_of(rs) == model_of(eager)


def test_fuzzed_files_read_the_same():
    """The fuzz tests' hostile iptables files (option soup from the parser's
    own tables, mutated corpus dumps, other line endings): the same model or
    the same located error, with the lazy chains and without."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from .fuzz import harness
    from .fuzz import strategies as fuzz

    texts = harness.corpus_texts("iptables", limit=60, max_size=16 * 1024)
    inputs = fuzz.grammar_inputs("iptables", texts)
    if texts:
        inputs = st.one_of(inputs, fuzz.corpus_mutations("iptables", texts))
    outcomes = []

    def same(text: str) -> None:
        lazy = model(text, "fuzz.rules")
        iptables.LAZY_CHAINS = False
        try:
            eager = model(text, "fuzz.rules")
        finally:
            iptables.LAZY_CHAINS = True
        assert lazy == eager
        outcomes.append(lazy[0] == "error")

    @settings(derandomize=True, max_examples=120, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(inputs)
    def run(text):
        same(text)

    run()
    for text in texts[:8]:
        for variant in (text.replace("\n", "\r\n"), "\ufeff" + text, text[: len(text) // 2]):
            same(variant)
    assert 0 < sum(outcomes) < len(outcomes)


def test_query_reads_lazily_and_other_readers_whole(tmp_path, monkeypatch, capsys):
    """`ruleanalyzer query` leaves the chains the packet does not enter
    unbuilt; load() outside lazy_reading (audit, diff, lint) builds them all."""
    monkeypatch.setattr(parsers, "LAZY_READING", False)
    text, _ = generate("mixed", 3000, 1)
    path = tmp_path / "mixed.rules"
    path.write_text(text, encoding="utf-8")
    read = []
    parse = iptables.parse
    monkeypatch.setattr(iptables, "parse", lambda *a, **k: read.append(parse(*a, **k)) or read[-1])
    code = cli.main(["query", str(path), "--dialect", "iptables", "--src", "192.0.2.7",
                     "--dst", "10.1.2.3", "--proto", "tcp", "--dport", "22", "--format", "json"])
    assert code in (0, 1, 3) and json.loads(capsys.readouterr().out)["verdict"]
    chains = list(read[0].chains())
    assert sum(c.__class__ is not Chain for c in chains) > len(chains) // 2
    assert not parsers.LAZY_READING
    whole = load(str(path), dialect="iptables")
    assert all(c.__class__ is Chain for c in whole.chains()) and whole.rule_count > 2900
