"""iptables rules vs their nftables translations (iptables-translate's own
test files): do both parse to the same packets and the same action?

Each ``*.txlate`` holds ``iptables-translate -A CHAIN RULE`` lines, each
followed by the ``nft 'add rule …'`` line upstream expects. Both sides go
through our parsers and their match sets are compared in ONE packet space:
equal sets prove the pair equivalent in our model; unequal sets come with a
witness packet that one side matches and the other does not. Pairs with an
opaque match (rates, ipsets, …) or a side we do not parse are "not
comparable". The counts are printed; the test fails on crashes and on
well-known pairs that must be equivalent.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ruleanalyzer import loads
from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.model import Log, Queue, UnknownAction
from ruleanalyzer.parsers import iptables
from ruleanalyzer.space import Layout, Space, witness
from ruleanalyzer.space.encode import encode_conjunction

CORPUS = Path("/work/shared/corpus/iptables/iptables-upstream-txlate")
IPT = re.compile(r"^(ip6?)tables-translate\s+(.*)$")
NFT = re.compile(r"^nft\s+'(add|insert) rule (\S+) (\S+) (\S+) (.*)'$")


def pairs():
    """``(file, line, family, table, chain, iptables spec, nft rule body)``."""
    if not CORPUS.is_dir():
        return
    for path in sorted(CORPUS.glob("*.txlate")):
        lines = path.read_text("utf-8").splitlines()
        for i, line in enumerate(lines):
            m = IPT.match(line.strip())
            if not m or i + 1 >= len(lines):
                continue
            n = NFT.match(lines[i + 1].strip())
            if not n:
                continue
            _, family, table, chain, body = n.groups()
            spec = m.group(2)
            words = spec.split()
            if "-t" in words[:-1]:
                k = words.index("-t")
                words = words[:k] + words[k + 2:]
            yield path.name, i + 1, m.group(1), family, table, chain, " ".join(words), body


def compare(fam, family, table, chain, spec, body):
    """``("equivalent"|"different"|"not comparable", detail)``."""
    try:
        ipt = iptables.parse_rule(spec, table=table, chain=chain, family=fam)
    except RuleAnalyzerError as exc:
        return "not comparable", f"iptables side: {exc.message}"
    text = f"table {family} {table} {{\n  chain {chain} {{\n    {body}\n  }}\n}}\n"
    try:
        rs = loads(text, dialect="nftables", name="txlate.nft")
    except RuleAnalyzerError as exc:
        return "not comparable", f"nft side: {exc.message}"
    rules = list(rs.rules())
    if len(rules) != 1:
        return "not comparable", f"nft side gave {len(rules)} rules"
    nft = rules[0]
    space = Space(Layout.for_matches([*ipt.matches, *nft.matches]))
    fam_node = space.family(6 if fam == "ip6" else 4)
    a_lo, a_up = encode_conjunction(ipt.matches, space)
    b_lo, b_up = encode_conjunction(nft.matches, space)
    if a_lo != a_up or b_lo != b_up:
        return "not comparable", "opaque match"
    a, b = space.wrap(a_lo & fam_node), space.wrap(b_lo & fam_node)
    act_a, act_b = _actions(ipt), _actions(nft)
    if any(isinstance(a, UnknownAction) for a in (*act_a, *act_b)):
        return "not comparable", "an action we do not model"
    if a != b:
        only_a, only_b = a - b, b - a
        side, pkt = ("iptables only", witness(only_a)) if only_a else ("nft only", witness(only_b))
        return "different", f"{side}: {pkt.describe()}"
    if act_a != act_b:
        return "different", f"actions differ: {act_a} vs {act_b}"
    return "equivalent", ""


def _actions(rule):
    """What the rule does, dialect-neutral: nft writes ``meta mark set 1``
    as an effect before a ``counter`` (Log), iptables as the MARK target."""
    return tuple(Queue() if isinstance(a, Queue) else a  # queue numbers are not verdicts
                 for a in (*rule.effects, rule.action) if not isinstance(a, Log))


def test_txlate_pairs_never_crash_and_are_counted():
    all_pairs = list(pairs())
    if not all_pairs:
        pytest.skip("corpus not present")
    counts = {"equivalent": 0, "different": 0, "not comparable": 0}
    different = []
    for name, line, fam, family, table, chain, spec, body in all_pairs:
        if family not in ("ip", "ip6", "inet"):
            counts["not comparable"] += 1  # arp/bridge: not our IP hooks
            continue
        verdict, detail = compare(fam, family, table, chain, spec, body)
        counts[verdict] += 1
        if verdict == "different":
            different.append(f"{name}:{line}: {spec}  <->  {body}  [{detail}]")
    print("txlate pairs:", counts)
    print("\n".join(different))
    assert counts["equivalent"] > 0


@pytest.mark.parametrize("spec, body", [
    ("-A INPUT -p tcp --dport 22 -j ACCEPT", "tcp dport 22 counter accept"),
    ("-A INPUT -p tcp -i eth0 --sport 53 -j ACCEPT", 'iifname "eth0" tcp sport 53 counter accept'),
    ("-A INPUT -p tcp --syn -j ACCEPT", "tcp flags syn / fin,syn,rst,ack counter accept"),
    ("-A INPUT -s 10.11.12.13/255.255.0.0", "ip saddr 10.11.0.0/16 counter"),
    ("-A INPUT -p udp -d 8.8.8.8 -j DROP", "ip protocol udp ip daddr 8.8.8.8 counter drop"),
])
def test_well_known_pairs_are_equivalent(spec, body):
    assert compare("ip", "ip", "filter", "INPUT", spec, body) == ("equivalent", "")


def test_a_wrong_translation_is_refuted_with_a_witness():
    verdict, detail = compare("ip", "ip", "filter", "INPUT", "-A INPUT -p tcp --syn -j ACCEPT",
                              "tcp flags == syn counter accept")
    assert verdict == "different" and "iptables only" in detail  # ECN SYNs
