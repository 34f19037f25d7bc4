"""NAT whose address or port comes from a map lookup (``dnat to numgen inc
mod 2 map { 0 : A, 1 : B }``, ``snat to ip saddr map { … }``, ``dnat ip to
ip daddr . tcp dport map { … : A . P }``).

The reader kept such a NAT as a translation to no address, which the engine
and the packet-space walk took as "the address stays": a new connection the
kernel sends to one of the map's backends, and the forward chain accepts,
was answered *drop*. Now it is a :class:`Dispatch` with one :class:`Nat` per
element; a key found in no element ends the rule (NFT_BREAK), so the next
rule runs. The kernel agrees: ``tests/kernel/test_kernel_nat_map.py``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json

import pytest

from ruleanalyzer import loads
from ruleanalyzer.audit import check_ruleset
from ruleanalyzer.diff import packet_point
from ruleanalyzer.engine import evaluate
from ruleanalyzer.model import AllOf, Dispatch, Nat, OpaqueMatch, UnknownAction
from ruleanalyzer.packets import make_packet
from ruleanalyzer.space.reach import absent_status, analyze

PRE = "table ip t {{\n  chain pre {{ type nat hook prerouting priority dstnat; policy accept;\n    {rule}\n  }}\n{rest}}}\n"
FORWARD = """  chain forwarding { type filter hook forward priority filter; policy drop;
    ip daddr { 10.9.9.9, 10.9.9.8 } tcp dport 80 accept
  }
"""


def _action(rule: str, rest: str = ""):
    rs = loads(PRE.format(rule=rule, rest=rest), dialect="nftables")
    return rs.tables[0].chains["pre"].rules[0].action


def _syn(src="198.51.100.1", dport=80, dst="203.0.113.1"):
    return make_packet(src=src, dst=dst, dport=dport, flags="SYN", state="new", hook="forward")


@pytest.mark.parametrize(("rule", "targets"), [
    ("tcp dport 80 dnat to numgen inc mod 2 map { 0 : 10.9.9.9, 1 : 10.9.9.8 }",
     [("10.9.9.9", None), ("10.9.9.8", None)]),
    ("dnat to 10.9.9.5 : numgen inc mod 2 map { 0 : 8080, 1 : 8081 }", [("10.9.9.5", 8080), ("10.9.9.5", 8081)]),
    ("dnat ip to ip saddr . tcp dport map { 198.51.100.7 . 83 : 10.9.9.4 . 8083 }", [("10.9.9.4", 8083)]),
    ("dnat to ip daddr map { 203.0.113.0/24 : 10.9.9.1-10.9.9.3 }", [("10.9.9.1", None)]),
    ("snat to ip saddr map { 10.0.0.0/8 : 192.0.2.7 }", [("192.0.2.7", None)]),
])
def test_each_element_is_a_translation(rule, targets):
    action = _action(rule)
    assert isinstance(action, Dispatch)
    got = [(str(a.to_addr), a.to_port) for _m, a in action.branches]
    assert got == targets and all(isinstance(a, Nat) for _m, a in action.branches)
    assert action.name == f"{action.branches[0][1].kind} from a map"


def test_keys_that_cover_every_value_leave_no_miss():
    # numgen inc mod 2 is always 0 or 1: the last element takes what the
    # first did not (as a verdict map's), so the rule always translates
    covering = _action("dnat to numgen inc mod 2 map { 0 : 10.9.9.9, 1 : 10.9.9.8 }")
    assert covering.branches[-1][0] == AllOf((), text=covering.branches[-1][0].text)
    missing = _action("dnat to numgen inc mod 3 map { 0 : 10.9.9.9, 1 : 10.9.9.8 }")
    assert not isinstance(missing.branches[-1][0], AllOf)


def test_a_map_of_runtime_contents_is_unknown():
    rest = "  map m { type ipv4_addr : ipv4_addr; flags dynamic; }\n"
    action = _action("dnat to ip saddr map @m", rest)
    ((match, branch),) = action.branches
    assert isinstance(match, OpaqueMatch) and isinstance(branch, UnknownAction)


def test_the_json_form_reads_the_same():
    text = PRE.format(rule="tcp dport 80 dnat to numgen inc mod 2 map { 0 : 10.9.9.9, 1 : 10.9.9.8 }",
                      rest=FORWARD)
    rule = {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 80}}
    nat = {"dnat": {"addr": {"map": {"key": {"numgen": {"mode": "inc", "mod": 2, "offset": 0}},
                                     "data": {"set": [[0, "10.9.9.9"], [1, "10.9.9.8"]]}}}}}
    doc = {"nftables": [
        {"table": {"family": "ip", "name": "t"}},
        {"chain": {"family": "ip", "table": "t", "name": "pre", "type": "nat", "hook": "prerouting",
                   "prio": -100, "policy": "accept"}},
        {"rule": {"family": "ip", "table": "t", "chain": "pre", "expr": [rule, nat]}}]}
    from_json = loads(json.dumps(doc), dialect="nft-json").tables[0].chains["pre"].rules[0]
    from_text = loads(text, dialect="nftables").tables[0].chains["pre"].rules[0]
    assert from_json.action == from_text.action


def test_a_backend_from_the_map_is_forwarded_not_dropped():
    # (was: drop by the forward policy, as if 203.0.113.1 were kept)
    rs = loads(PRE.format(rule="tcp dport 80 dnat to numgen inc mod 2 map { 0 : 10.9.9.9, 1 : 10.9.9.8 }",
                          rest=FORWARD), dialect="nftables")
    answer = evaluate(rs, _syn())
    assert answer.verdict == "accept"
    assert {str(a.packet.dst) for a in answer.alternatives} == {"10.9.9.9", "10.9.9.8"}
    reach = analyze(rs, "forward", 4)
    point = packet_point(reach.space, _syn()).node
    assert reach.dropped.upper.node & point == reach.space.false  # never "surely dropped"
    for backend in ("10.9.9.9", "10.9.9.8"):  # each image is surely accepted, whichever numgen gives
        assert reach.accepted.lower.node & _image(reach, backend) != reach.space.false


def _image(reach, dst: str, dport: int = 80):
    """The packet ``_syn()`` becomes when translated to ``dst``."""
    seen = dataclasses.replace(_syn(), dst=ipaddress.ip_address(dst), dport=dport,
                               ct_status=frozenset({"dnat"}))
    return packet_point(reach.space, seen).node


def test_which_backend_numgen_gives_decides_the_verdict():
    # The forward chain accepts one backend and drops the other: the engine
    # says it depends on numgen, with both ways; the walk is sure of each
    # image's fate (a packet to 10.9.9.8 carrying the DNAT status is dropped
    # whatever numgen did) and of no fate for the connection itself.
    rest = FORWARD.replace("ip daddr { 10.9.9.9, 10.9.9.8 }", "ip daddr 10.9.9.9")
    rs = loads(PRE.format(rule="tcp dport 80 dnat to numgen inc mod 2 map { 0 : 10.9.9.9, 1 : 10.9.9.8 }",
                          rest=rest), dialect="nftables")
    answer = evaluate(rs, _syn())
    assert answer.verdict == "unknown" and any("numgen" in d for d in answer.depends_on)
    assert {(a.verdict, str(a.packet.dst)) for a in answer.alternatives} == {("accept", "10.9.9.9"),
                                                                               ("drop", "10.9.9.8")}
    reach = analyze(rs, "forward", 4)
    false = reach.space.false
    assert reach.accepted.lower.node & _image(reach, "10.9.9.9") != false
    assert reach.dropped.upper.node & _image(reach, "10.9.9.9") == false
    assert reach.dropped.lower.node & _image(reach, "10.9.9.8") != false
    assert reach.accepted.upper.node & _image(reach, "10.9.9.8") == false


def test_ssh_load_balanced_from_a_map_is_exposed_for_certain():
    # Both backends' SSH is accepted by `ct status dnat accept`: RA401 (open),
    # as for one backend, not RA403 ("likely", depends on numgen)
    rule = 'iifname "eth0" tcp dport 2222 dnat ip to numgen inc mod 2 map { 0 : 10.0.0.2 . 22, 1 : 10.0.0.3 . 22 }'
    rest = """  chain forwarding { type filter hook forward priority filter; policy drop;
    ct state established,related accept
    ct status dnat accept
  }
"""
    rs = loads(PRE.format(rule=rule, rest=rest), dialect="nftables")
    codes = {f.code for f in check_ruleset(rs, ["RA401", "RA403"])}
    assert codes == {"RA401"}


@pytest.mark.parametrize(("src", "verdict", "dst"), [
    ("198.51.100.7", "accept", "10.9.9.9"),   # the key is in the map
    ("198.51.100.1", "drop", "203.0.113.1"),  # it is not: no translation (NFT_BREAK), the next rule
])
def test_a_key_in_no_element_leaves_the_packet_to_the_next_rule(src, verdict, dst):
    rs = loads(PRE.format(rule="tcp dport 80 dnat to ip saddr map { 198.51.100.7 : 10.9.9.9 }", rest=FORWARD),
               dialect="nftables")
    answer = evaluate(rs, _syn(src))
    assert (answer.verdict, str(answer.packet.dst)) == (verdict, dst)
    assert not answer.depends_on
    reach = analyze(rs, "forward", 4)  # the walk is exact here (the key is the packet's)
    # (the packet as the forward chain sees it: translated, its connection
    # carrying the DNAT status)
    seen = dataclasses.replace(answer.packet, ct_status=frozenset({"dnat"} if verdict == "accept" else ()))
    point = packet_point(reach.space, seen).node
    sure = reach.accepted if verdict == "accept" else reach.dropped
    assert sure.lower.node & point != reach.space.false


def test_a_nat_from_a_map_makes_connections_carry_its_status():
    # (the walk took "no rule translates" from the rules' actions alone,
    # so ct status dnat could never match: RA101 on a rule the kernel runs)
    rule = "tcp dport 80 dnat to numgen inc mod 2 map { 0 : 10.9.9.9, 1 : 10.9.9.8 }"
    rest = """  chain forwarding { type filter hook forward priority filter; policy drop;
    ct status dnat accept
  }
"""
    rs = loads(PRE.format(rule=rule, rest=rest), dialect="nftables")
    assert "dnat" not in absent_status(rs)
    assert not [f for f in check_ruleset(rs, ["RA101"])]
    assert evaluate(rs, _syn()).verdict == "accept"


def test_a_map_that_always_translates_shadows_the_rules_after_it():
    # nftables' own files/examples/load_balancing.nft: every new connection
    # is translated by the first rule, the three after it never run
    rule = ("dnat to numgen inc mod 2 map { 0 : 192.168.10.100, 1 : 192.168.20.200 }\n"
            "    dnat to 192.168.1.100 : numgen inc mod 2 map { 0 : 4040, 1 : 4050 }")
    rs = loads(PRE.format(rule=rule, rest=""), dialect="nftables")
    assert [f.where.line for f in check_ruleset(rs, ["RA102"])] == [4]
    rs = loads(PRE.format(rule=rule.replace("mod 2 map { 0 : 192", "mod 3 map { 0 : 192"), rest=""),
               dialect="nftables")
    assert not check_ruleset(rs, ["RA102"])  # numgen 2 finds nothing: the second rule runs
