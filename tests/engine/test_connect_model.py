"""connect() on rulesets built from model objects."""

from ruleanalyzer.engine.connect import connect
from ruleanalyzer.model import (ACK, CWR, ECE, SYN, Accept, BitsMatch, Drop, IntMatch, NameMatch, Notrack)

from tests.engine.test_evaluate_model import TCP, dport, rule, ruleset, table


def server_firewall(established=True, output_policy="drop", syn_match=None):
    t = table(input="drop", output=output_policy)
    if established:
        est = NameMatch("state", frozenset({"established", "related"}))
        t.chains["INPUT"].add(rule(est, action=Accept()))
        t.chains["OUTPUT"].add(rule(est, action=Accept()))
    t.chains["INPUT"].add(rule(TCP, dport(22), *(syn_match or ()), action=Accept()))
    return ruleset(t)


def test_stateful_server_passes_every_leg():
    report = connect(server_firewall(), "192.0.2.1", "198.51.100.1", 22, ecn="both")
    assert report.passes is True
    assert all(leg.verdict == "accept" for v in report.variants for leg in v.legs)


def test_output_drop_without_established_kills_the_syn_ack():
    report = connect(server_firewall(established=False), "192.0.2.1", "198.51.100.1", 22)
    assert report.passes is False
    failure = report.variants[0].first_failure
    assert failure.name == "SYN-ACK"
    assert failure.result.decided_by.is_policy
    text = report.explain()[0]
    assert "SYN is accepted by INPUT rule 1" in text and "OUTPUT policy DROP" in text
    assert "times out" in text


def test_whole_byte_syn_accept_is_an_ecn_trap_with_linux_fallback():
    exact_syn = BitsMatch("flags", 0xFF, frozenset({SYN}), text="tcp flags == syn")
    report = connect(server_firewall(syn_match=(exact_syn,)), "192.0.2.1", "198.51.100.1", 22, ecn="on")
    ecn_variant = report.variants[0]
    syn = ecn_variant.legs[0]
    assert syn.name.startswith("SYN+ECE+CWR") and syn.verdict == "drop"
    # Linux retries without ECN after 1 s, which passes: the connection works, late.
    assert syn.summary == "passes after retry" and ecn_variant.first_failure is None
    assert report.passes is True and ecn_variant.ecn_negotiated is False
    assert "1 s" in report.explain()[0]
    # no ECN: no CE marks, nothing ECT-marked after the retry
    assert all(leg.packet.ecn == 0 for leg in ecn_variant.legs)
    assert "data client→server, CE mark" not in [leg.name for leg in ecn_variant.legs]


def test_ce_marked_data_dropped_costs_a_retransmission_each():
    """The kernel suite showed it: Linux retransmits without ECT (RFC 3168
    §6.1.5), so the connection still works, one timeout per marked segment."""
    t = table(input="drop", output="accept")
    t.chains["INPUT"].add(rule(IntMatch("ecn", ((3, 3),)), action=Drop()))
    t.chains["INPUT"].add(rule(NameMatch("state", frozenset({"established"})), action=Accept()))
    t.chains["INPUT"].add(rule(TCP, dport(22), action=Accept()))
    report = connect(ruleset(t), "192.0.2.1", "198.51.100.1", 22, ecn="on")
    assert report.passes is True
    variant = report.variants[0]
    assert [leg.name for leg in variant.degraded_legs] == ["data client→server, CE mark"]
    assert "retransmission timeout" in report.explain()[0]


def test_dropped_ece_ack_stalls_the_connection():
    t = table(input="accept", output="drop")
    t.chains["OUTPUT"].add(rule(BitsMatch("flags", 0x40, frozenset({0x40})), action=Drop()))
    t.chains["OUTPUT"].add(rule(action=Accept()))
    report = connect(ruleset(t), "192.0.2.1", "198.51.100.1", 22, ecn="on")
    ecn = report.variants[0]
    assert ecn.first_failure.name == "SYN-ACK+ECE (ECN setup)"


def test_notrack_makes_the_syn_ack_invalid():
    raw = table("raw", prerouting="accept", output="accept")
    raw.chains["PREROUTING"].add(rule(TCP, dport(22), action=Notrack()))
    f = table(input="drop", output="drop")
    est = NameMatch("state", frozenset({"established"}))
    f.chains["INPUT"].add(rule(TCP, dport(22), action=Accept()))
    f.chains["OUTPUT"].add(rule(est, action=Accept()))
    report = connect(ruleset(raw, f), "192.0.2.1", "198.51.100.1", 22)
    assert report.variants[0].first_failure.name == "SYN-ACK"
    assert report.variants[0].legs[1].result.state == "invalid"


def test_ecn_target_stripping_the_syn_means_no_ecn_and_no_ect_data():
    from ruleanalyzer import loads

    text = ("*mangle\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp -j ECN --ecn-tcp-remove\nCOMMIT\n"
            "*filter\n:INPUT DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            "-A INPUT -m conntrack --ctstate ESTABLISHED -j ACCEPT\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n")
    report = connect(loads(text, dialect="iptables"), "192.0.2.1", "198.51.100.1", 22, ecn="both")
    plain, ecn = report.variants
    assert plain.ecn_negotiated is False and ecn.ecn_negotiated is False and report.passes is True
    assert "mangle INPUT rule 1 strips the ECN-setup SYN" in ecn.ecn_why
    syn = ecn.legs[0]
    assert syn.packet.flags == SYN | ECE | CWR and syn.received.flags == SYN  # what the server gets
    assert ecn.legs[1].packet.flags == SYN | ACK  # so it answers without ECE
    assert all(leg.packet.ecn == 0 for leg in ecn.legs[2:])
    assert "ECN is not negotiated" in report.explain()[1]


def test_ecn_negotiated_end_to_end_and_in_json(capsys, tmp_path):
    import json

    from ruleanalyzer.cli import main

    report = connect(server_firewall(), "192.0.2.1", "198.51.100.1", 22, ecn="on")
    assert report.variants[0].ecn_negotiated is True
    path = tmp_path / "r.rules"
    path.write_text("*filter\n:INPUT DROP [0:0]\n-A INPUT -m conntrack --ctstate ESTABLISHED -j ACCEPT\n"
                    "-A INPUT -p tcp --tcp-flags ALL SYN -m ecn --ecn-tcp-ece -j DROP\n"
                    "-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n")
    assert main(["connect", str(path), "--client", "192.0.2.1", "--server", "198.51.100.1",
                 "--dport", "22", "--ecn", "on", "--format", "json"]) == 0
    variant = json.loads(capsys.readouterr().out)["variants"][0]
    assert variant["ecn_negotiated"] is False and "retry" in variant["ecn_negotiated_why"]
    syn = variant["legs"][0]
    assert (syn["verdict"], syn["outcome"]) == ("drop", "passes after retry")
    assert syn["retransmission"]["verdict"] == "accept"


def test_a_rule_clearing_the_ecn_bits_is_reported_on_a_negotiated_connection():
    from ruleanalyzer import loads

    text = ("*mangle\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp -j TOS --set-tos 0x00/0x03\nCOMMIT\n"
            "*filter\n:INPUT DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            "-A INPUT -m conntrack --ctstate ESTABLISHED -j ACCEPT\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n")
    variant = connect(loads(text, dialect="iptables"), "192.0.2.1", "198.51.100.1", 22, ecn="on").variants[0]
    assert variant.ecn_negotiated is True
    ce = next(leg for leg in variant.legs if leg.name == "data client→server, CE mark")
    assert ce.packet.ecn == 3 and ce.received.ecn == 0
    assert "CE mark arrives with ECN field not-ect" in variant.ecn_why
