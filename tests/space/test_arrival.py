"""The packet space decides what the hook and the ruleset decide (issue #13):
certainty survives matches that cannot change a packet's fate, address
types follow the hook, ``ct status dnat`` needs a DNAT, and conntrack
states are the ones the kernel gives."""

from ipaddress import ip_address

from ruleanalyzer import loads
from ruleanalyzer.diff import diff
from ruleanalyzer.engine import evaluate
from ruleanalyzer.model import Packet
from ruleanalyzer.space import encode, witness
from ruleanalyzer.space.reach import analyze

from .helpers import TCP, UDP, dport, state


def _ipt(body: str, extra: str = "") -> str:
    return f"*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n{body}COMMIT\n{extra}"


def _surely_accepted(text: str, hook: str = "input", dialect: str = "iptables"):
    rs = loads(text, dialect=dialect)
    reach = analyze(rs, hook, 4)
    sp = reach.space
    ssh = encode(TCP, sp) & encode(dport(22), sp) & encode(state("new"), sp) & reach.arriving
    return rs, reach, ssh


def test_rate_limited_log_before_accept_keeps_the_accept_certain():
    rs, reach, ssh = _surely_accepted(_ipt(
        "-A INPUT -p tcp -m limit --limit 5/min -j LOG --log-prefix probe\n"
        "-A INPUT -p tcp --dport 22 -j ACCEPT\n"))
    assert ssh <= reach.accepted.lower


def test_jump_into_a_chain_that_only_logs_and_returns_keeps_certainty():
    rs, reach, ssh = _surely_accepted(
        "*filter\n:INPUT DROP [0:0]\n:logit - [0:0]\n"
        "-A INPUT -p tcp -m recent --name x --rcheck -j logit\n"
        "-A INPUT -p tcp --dport 22 -j ACCEPT\n"
        "-A logit -m limit --limit 1/s -j LOG\n-A logit -j RETURN\nCOMMIT\n")
    assert ssh <= reach.accepted.lower


def test_undecidable_jump_into_a_dropping_chain_stays_uncertain():
    rs, reach, ssh = _surely_accepted(
        "*filter\n:INPUT DROP [0:0]\n:ban - [0:0]\n"
        "-A INPUT -p tcp -m recent --name x --rcheck -j ban\n"
        "-A INPUT -p tcp --dport 22 -j ACCEPT\n-A ban -j DROP\nCOMMIT\n")
    assert not ssh <= reach.accepted.lower
    assert ssh <= reach.accepted.upper


def test_mark_no_rule_reads_keeps_certainty_but_a_read_mark_does_not():
    unread = _ipt("-A INPUT -p tcp -m set --match-set x src -j MARK --set-mark 1\n"
                  "-A INPUT -p tcp --dport 22 -j ACCEPT\n")
    rs, reach, ssh = _surely_accepted(unread)
    assert ssh <= reach.accepted.lower
    read = _ipt("-A INPUT -p tcp -m set --match-set x src -j MARK --set-mark 1\n"
                "-A INPUT -m mark --mark 1 -j DROP\n-A INPUT -p tcp --dport 22 -j ACCEPT\n")
    rs, reach, ssh = _surely_accepted(read)
    assert not ssh <= reach.accepted.lower


def test_ufw_not_local_addrtype_is_decided_on_input():
    # ufw's before.rules send every packet through ufw-not-local, which
    # drops what is not addressed to a LOCAL/MULTICAST/BROADCAST address.
    text = ("*filter\n:INPUT DROP [0:0]\n:ufw-not-local - [0:0]\n"
            "-A INPUT -j ufw-not-local\n"
            "-A ufw-not-local -m addrtype --dst-type LOCAL -j RETURN\n"
            "-A ufw-not-local -m addrtype --dst-type MULTICAST -j RETURN\n"
            "-A ufw-not-local -m addrtype --dst-type BROADCAST -j RETURN\n"
            "-A ufw-not-local -m limit --limit 3/min --limit-burst 10 -j LOG\n"
            "-A ufw-not-local -j DROP\n"
            "-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n")
    rs, reach, ssh = _surely_accepted(text)
    assert ssh <= reach.accepted.lower
    w = witness(ssh, "input")
    assert evaluate(rs, w).verdict == "accept"


def test_docker_addrtype_local_dnat_is_input_only():
    text = ("*nat\n:PREROUTING ACCEPT [0:0]\n:DOCKER - [0:0]\n"
            "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n"
            "-A DOCKER ! -i docker0 -p tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80\n"
            "COMMIT\n*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n"
            "-A FORWARD -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp --dport 80 -j ACCEPT\nCOMMIT\n")
    rs = loads(text, dialect="iptables")
    hooks = {h: analyze(rs, h, 4) for h in ("input", "forward")}
    jump = rs.tables[0].chains["PREROUTING"].rules[0]
    for hook, reach in hooks.items():
        hit = reach.rule_sets(jump).matched_lower & reach.arriving
        sp = reach.space
        local = sp.wrap(sp.bdd.var("dst_type:local"))
        # input packets are all LOCAL-addressed; forwarded ones never
        assert (hit & local).is_empty() == (hook == "forward")


def test_ct_status_dnat_without_any_dnat_accepts_nothing():
    text = ("table inet f {\n chain input {\n type filter hook input priority 0; policy drop;\n"
            "  ct status dnat accept\n }\n}\n")
    rs = loads(text, dialect="nftables")
    reach = analyze(rs, "input", 4)
    assert reach.accepted.upper.is_empty()
    dnat = text.replace(" chain input", " chain pre {\n type nat hook prerouting priority -100;\n"
                        "  tcp dport 80 dnat ip to 10.0.0.1\n }\n chain input")
    assert not analyze(loads(dnat, dialect="nftables"), "input", 4).accepted.upper.is_empty()


def test_new_syn_ack_rule_is_dead():
    text = _ipt("-A INPUT -p tcp --tcp-flags SYN,ACK SYN,ACK -m state --state NEW -j ACCEPT\n")
    rs = loads(text, dialect="iptables")
    reach = analyze(rs, "input", 4)
    assert reach.is_unreachable(rs.tables[0].chains["INPUT"].rules[0])
    # the concrete engine agrees: a SYN-ACK with no connection is INVALID
    syn_ack = Packet(src=ip_address("203.0.113.5"), dst=ip_address("192.0.2.1"), proto=6, sport=443,
                     dport=40000, flags=0x12, state="new", hook="input")
    assert evaluate(rs, syn_ack).verdict == "drop"


def test_diff_sees_no_change_in_untracked_packets_without_notrack():
    old = loads(_ipt("-A INPUT -m state --state UNTRACKED -j ACCEPT\n-A INPUT -p tcp --dport 22 -j ACCEPT\n"),
                dialect="iptables")
    new = loads(_ipt("-A INPUT -p tcp --dport 22 -j ACCEPT\n"), dialect="iptables")
    report = diff(old, new, hooks=("input",), findings=False)
    # ICMPv6 neighbour discovery is untracked by conntrack itself, nothing else is
    assert [r for r in report.regions if r.family == 4] == []
    raw = "*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p udp -j NOTRACK\nCOMMIT\n"
    report = diff(loads(_ipt("-A INPUT -m state --state UNTRACKED -j ACCEPT\n", raw), dialect="iptables"),
                  loads(_ipt("", raw), dialect="iptables"), hooks=("input",), findings=False)
    changed = [r for r in report.regions if r.family == 4]
    assert changed and all(r.witness.proto == 17 and r.witness.state == "untracked" for r in changed)
    assert all(r.packets <= encode(UDP, r.packets.space) for r in changed)


def test_dormant_table_runs_nowhere():
    # nft(8): "dormant — table is not evaluated any more (base chains are unregistered)"
    text = ("table inet f {\n flags dormant\n chain input { type filter hook input priority 0; policy drop; }\n}\n"
            "table inet g {\n chain input { type filter hook input priority 0; policy accept;\n"
            "  tcp dport 25 drop\n }\n}\n")
    rs = loads(text, dialect="nftables")
    reach = analyze(rs, "input", 4)
    sp = reach.space
    ssh = encode(TCP, sp) & encode(dport(22), sp) & reach.arriving
    assert ssh <= reach.accepted.lower
    w = witness(ssh, "input")
    assert evaluate(rs, w).verdict == "accept"
