"""``diff``: verdict changes between two versions, confirmed by the
concrete engine, and nothing missed (random rulesets and random edits)."""

from __future__ import annotations

import ipaddress
import json
import random
import subprocess

import pytest

from ruleanalyzer import loads
from ruleanalyzer.cli import main
from ruleanalyzer.diff import diff
from ruleanalyzer.engine.evaluate import Evaluator
from ruleanalyzer.model import ACK, SYN, Packet

OLD = """*filter
:INPUT DROP [0:0]
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p tcp --dport 22 -j ACCEPT
-A INPUT -p tcp --dport 80 -j ACCEPT
COMMIT
"""
NEW = OLD.replace("--dport 22 -j", "-s 10.0.0.0/8 --dport 22 -j").replace(
    "COMMIT", "-A INPUT -p tcp -d 10.0.0.5 --dport 443 -j ACCEPT\nCOMMIT")


def ipt(text, name):
    return loads(text, dialect="iptables", name=name)


def test_opened_and_closed_regions_with_witnesses_and_rules():
    report = diff(ipt(OLD, "old.v4"), ipt(NEW, "new.v4"), hooks=("input",), findings=False)
    (opened,) = report.opened
    assert "10.0.0.5" in opened.text and "dport 443" in opened.text
    assert (opened.old.verdict, opened.new.verdict) == ("drop", "accept")
    assert opened.new.decided_by.rule.location.line == 6
    assert opened.connection is not None and opened.connection.new_passes
    assert report.closed and all(r.witness.dport == 22 for r in report.closed)
    assert all(not ipaddress.ip_network("10.0.0.0/8").supernet_of(ipaddress.ip_network(r.witness.src))
               for r in report.closed)
    assert not report.inconsistencies


def test_same_rules_no_change_and_cross_dialect_equivalence():
    old = ipt(OLD, "a")
    assert not diff(old, ipt(OLD, "b"), findings=False).regions
    nft = loads("""table ip filter {
  chain INPUT { type filter hook input priority 0; policy drop;
    ct state related,established accept
    tcp dport 22 counter accept
    tcp dport 80 counter accept
  }
}""", dialect="nftables", name="new.nft")
    report = diff(old, nft, findings=False)
    assert report.scope == "all" and not report.regions


def test_cross_dialect_difference_is_shown():
    nft = loads("""table ip filter {
  chain INPUT { type filter hook input priority 0; policy drop;
    ct state related,established accept
    tcp dport 22 tcp flags == syn accept
    tcp dport 80 counter accept
  }
}""", dialect="nftables", name="new.nft")
    report = diff(ipt(OLD, "old"), nft, hooks=("input",), findings=False)
    assert report.closed and not report.opened
    w = report.closed[0].witness
    assert w.dport == 22 and w.flags != SYN  # e.g. an ECN SYN


# -- differential: random rulesets, random edits -----------------------------

PORTS = (22, 53, 80, 443)
NETS = ("0.0.0.0/0", "10.0.0.0/8", "10.1.0.0/16", "192.0.2.0/24", "192.0.2.128/25")
ADDRS = ("10.0.0.1", "10.1.2.3", "192.0.2.7", "192.0.2.200", "198.51.100.1")


def _rule(rnd: random.Random) -> str:
    parts = []
    proto = rnd.choice(("tcp", "udp", None))
    if proto:
        parts.append(f"-p {proto}")
        if rnd.random() < 0.7:
            parts.append(f"--dport {rnd.choice(PORTS)}")
    if rnd.random() < 0.5:
        parts.append(f"-s {rnd.choice(NETS)}")
    if rnd.random() < 0.3:
        parts.append(f"-d {rnd.choice(ADDRS)}")
    if rnd.random() < 0.2:
        parts.append("-m conntrack --ctstate " + rnd.choice(("NEW", "ESTABLISHED", "NEW,ESTABLISHED")))
    parts.append("-j " + rnd.choice(("ACCEPT", "DROP", "REJECT")))
    return "-A INPUT " + " ".join(parts)


def _text(policy, rules):
    return "*filter\n:INPUT %s [0:0]\n%s\nCOMMIT\n" % (policy, "\n".join(rules))


def _edit(rnd, rules):
    rules = list(rules)
    kind = rnd.choice(("insert", "delete", "reorder", "widen", "action"))
    if kind == "insert" or not rules:
        rules.insert(rnd.randint(0, len(rules)), _rule(rnd))
    elif kind == "delete":
        rules.pop(rnd.randrange(len(rules)))
    elif kind == "reorder" and len(rules) > 1:
        i, j = rnd.sample(range(len(rules)), 2)
        rules[i], rules[j] = rules[j], rules[i]
    elif kind == "widen":
        i = rnd.randrange(len(rules))
        rules[i] = rules[i].replace("/25", "/24").replace("/16", "/8").replace("/24", "/16")
    else:
        i = rnd.randrange(len(rules))
        rules[i] = rules[i].replace("ACCEPT", "DROPX").replace("DROP", "ACCEPT").replace("ACCEPTX", "DROP")
    return rules


def _packets(rnd, n):
    out = []
    for _ in range(n):
        proto = rnd.choice((6, 17, 1))
        est = rnd.random() < 0.3
        out.append(Packet(src=ipaddress.ip_address(rnd.choice(ADDRS)),
                          dst=ipaddress.ip_address(rnd.choice(ADDRS)), proto=proto,
                          sport=40000 if proto != 1 else None,
                          dport=rnd.choice(PORTS + (8080,)) if proto != 1 else None,
                          flags=(ACK if est else SYN) if proto == 6 else 0,
                          icmp_type=8 if proto == 1 else None, icmp_code=0 if proto == 1 else None,
                          state="established" if est else "new", hook="input", iif="eth0"))
    return out


@pytest.mark.parametrize("seed", range(25))
def test_differential_random_edits(seed):
    rnd = random.Random(seed)
    rules = [_rule(rnd) for _ in range(rnd.randint(2, 8))]
    new_rules = rules
    for _ in range(rnd.randint(1, 3)):
        new_rules = _edit(rnd, new_rules)
    policies = (rnd.choice(("ACCEPT", "DROP")), rnd.choice(("ACCEPT", "DROP")))
    old, new = ipt(_text(policies[0], rules), "old"), ipt(_text(policies[1], new_rules), "new")
    report = diff(old, new, hooks=("input",), findings=False, connections=False)
    # every reported region is confirmed by its witness on both versions
    assert not report.inconsistencies, [r.note for r in report.inconsistencies]
    for r in report.regions:
        assert r.old.verdict == r.was and r.new.verdict == r.now
    # no change is missed
    ev_old, ev_new = Evaluator(old), Evaluator(new)
    for p in _packets(rnd, 150):
        if ev_old.evaluate(p).verdict != ev_new.evaluate(p).verdict:
            assert report.contains(p), (p.describe(), p.state)


# -- command line -------------------------------------------------------------


def test_cli_exit_codes_and_formats(tmp_path, capsys):
    (tmp_path / "old").write_text(OLD)
    (tmp_path / "new").write_text(NEW)
    old, new = str(tmp_path / "old"), str(tmp_path / "new")
    assert main(["diff", old, old, "--no-findings"]) == 0
    capsys.readouterr()
    assert main(["diff", old, new, "--format", "json", "--no-findings"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["counts"]["opened"] == 1 and data["regions"][0]["witness"]["dport"] == 443
    for fmt in ("sarif", "github", "markdown", "text"):
        assert main(["diff", old, new, "--format", fmt, "--no-findings"]) == 1
        assert capsys.readouterr().out
    # only closing something: --fail-on opened passes
    (tmp_path / "closed").write_text(OLD.replace("-A INPUT -p tcp --dport 80 -j ACCEPT\n", ""))
    assert main(["diff", old, str(tmp_path / "closed"), "--fail-on", "opened", "--no-findings"]) == 0
    assert main(["diff", old, str(tmp_path / "missing")]) == 2


def test_git_revision_against_working_tree(tmp_path, monkeypatch, capsys):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "rules.v4").write_text(OLD)
    git("add", "rules.v4")
    git("-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "old")
    (tmp_path / "rules.v4").write_text(NEW)
    monkeypatch.chdir(tmp_path)
    assert main(["diff", "--git", "HEAD", "rules.v4", "--no-findings", "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out)[0]["counts"]["opened"] == 1
    assert main(["diff", "--git", "HEAD", "--no-findings"]) == 1  # changed files found by git
    assert main(["diff", "--git=--upload-pack=evil", "rules.v4"]) == 2  # never an option to git


def test_chains_nested_past_the_analysis_depth_are_an_error_not_a_traceback(tmp_path, capsys):
    chains = [f":c{i} - [0:0]" for i in range(70)]
    jumps = [f"-A c{i} -j c{i + 1}" for i in range(69)]
    text = "\n".join(["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
                      *chains, "-A INPUT -j c0", *jumps, "-A c69 -p tcp --dport 22 -j DROP", "COMMIT", ""])
    old, new = tmp_path / "old.rules", tmp_path / "new.rules"
    old.write_text(text)
    new.write_text(text.replace("--dport 22", "--dport 23"))
    code = main(["diff", str(old), str(new), "--no-findings"])
    _, err = capsys.readouterr()
    assert code == 2 and "Traceback" not in err
    assert "jumps nested deeper than 64 chains" in err
