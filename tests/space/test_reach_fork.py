"""The input and forward walks fork from the walk they share (ingress,
prerouting) and share its per-rule records until one adds a visit: a
chain entered from prerouting and again from INPUT must not show the
input path's packets on forward, nor lose them on input (reach.py
``_Walker._add``)."""

from ruleanalyzer import loads
from ruleanalyzer.model import IntMatch
from ruleanalyzer.space import encode
from ruleanalyzer.space.reach import analyze_hooks

# MARKS is entered by tcp packets on prerouting (both paths) and by udp
# packets on mangle INPUT (the input path only).
TEXT = ("*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:MARKS - [0:0]\n"
        "-A PREROUTING -p tcp -j MARKS\n-A INPUT -p udp -j MARKS\n"
        "-A MARKS -s 10.0.0.0/8 -j MARK --set-mark 1\n-A MARKS -d 10.1.0.0/16 -j MARK --set-mark 2\n"
        "COMMIT\n*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n"
        "-A INPUT -m mark --mark 2 -j DROP\n-A FORWARD -m mark --mark 1 -j ACCEPT\nCOMMIT\n")


def test_a_chain_entered_again_after_the_fork_keeps_each_paths_own_visits():
    rs = loads(TEXT, dialect="iptables")
    found = analyze_hooks(rs, ["input", "forward"], 4)
    sp = found["input"].space
    tcp, udp = (encode(IntMatch("proto", ((p, p),)), sp) for p in (6, 17))
    marks = next(t for t in rs.tables if t.name == "mangle").chains["MARKS"].rules
    for r in marks:
        on_input, on_forward = found["input"].rule_sets(r), found["forward"].rule_sets(r)
        assert on_input.matched_upper.intersects(tcp) and on_input.matched_upper.intersects(udp)
        assert on_forward.matched_upper.intersects(tcp)
        assert not on_forward.reaching_upper.intersects(udp)
