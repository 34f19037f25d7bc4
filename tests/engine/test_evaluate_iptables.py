"""The evaluator on the bundled example rulesets, as a user runs them."""

from pathlib import Path

from ruleanalyzer import load, make_packet
from ruleanalyzer.engine import evaluate
from ruleanalyzer.engine.connect import connect

RULESETS = Path(__file__).resolve().parents[2] / "fixtures" / "rulesets"


def test_docker_published_port_bypasses_input_and_is_accepted_by_docker_chain():
    rs = load(RULESETS / "docker-host.rules")
    r = evaluate(rs, make_packet(src="198.51.100.7", dst="192.0.2.10", dport=5432, state="new",
                                 iif="eth0", oif="docker0"))
    assert r.verdict == "accept"
    assert r.outcome == "forwarded"
    assert r.decided_by.chain.name == "DOCKER" and r.decided_by.rule.index == 1
    assert str(r.packet.dst) == "172.17.0.2"
    # INPUT alone would have dropped it: port 5432 is not open there.
    assert not any(s.chain.name == "INPUT" for s in r.trace)


def test_unnamed_output_interface_splits_into_consistent_cases():
    rs = load(RULESETS / "docker-host.rules")
    r = evaluate(rs, make_packet(src="198.51.100.7", dst="192.0.2.10", dport=5432, state="new", iif="eth0"))
    assert r.verdict == "unknown"
    assert r.depends_on == ("the output interface (not given)",)
    outcomes = sorted((a.verdict, a.decided_by.chain.name) for a in r.alternatives)
    assert outcomes == [("accept", "DOCKER"), ("drop", "FORWARD")]


def test_loopback_rule_does_not_catch_packets_from_the_network():
    rs = load(RULESETS / "webserver.rules")
    r = evaluate(rs, make_packet(src="198.51.100.7", dst="192.0.2.10", dport=443, state="new"))
    assert r.verdict == "accept" and r.decided_by.rule.index == 7
    local = evaluate(rs, make_packet(src="127.0.0.1", dst="127.0.0.1", dport=9999, state="new"))
    assert local.decided_by.rule.index == 1


def test_broken_handshake_dies_at_the_syn_ack():
    rs = load(RULESETS / "broken-handshake.rules")
    report = connect(rs, "198.51.100.7", "192.0.2.10", 443, ecn="off")
    assert report.passes is False
    assert report.variants[0].first_failure.name == "SYN-ACK"


def test_router_port_forward_is_forwarded_to_the_internal_server():
    rs = load(RULESETS / "router.rules")
    r = evaluate(rs, make_packet(src="203.0.113.9", dst="198.51.100.10", dport=8443, state="new",
                                 iif="wan0", oif="lan0"))
    assert r.verdict == "accept" and r.outcome == "forwarded"
    assert (str(r.packet.dst), r.packet.dport) == ("10.0.0.20", 443)
    assert r.decided_by.chain.name == "FORWARD" and r.decided_by.rule.index == 3
