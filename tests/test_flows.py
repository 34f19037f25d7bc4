"""Real flows as packets: `conntrack -L` output and AWS VPC flow logs, in
`query --packets` and `diff --flows` (issue #21)."""

from __future__ import annotations

import json

import pytest

from ruleanalyzer.cli import main
from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.flows import read_flows, sniff, to_packets

CONNTRACK = """\
tcp      6 431999 ESTABLISHED src=192.0.2.10 dst=198.51.100.1 sport=51234 dport=22 src=198.51.100.1 dst=192.0.2.10 sport=22 dport=51234 [ASSURED] mark=0 use=1
tcp      6 117 TIME_WAIT src=192.0.2.11 dst=198.51.100.1 sport=40100 dport=80 src=198.51.100.1 dst=192.0.2.11 sport=80 dport=40100 [ASSURED] mark=0 use=1
ipv4     2 tcp      6 86399 ESTABLISHED src=192.0.2.12 dst=198.51.100.1 sport=40200 dport=80 src=198.51.100.1 dst=192.0.2.12 sport=80 dport=40200 [ASSURED] mark=0 zone=0 use=2
tcp      6 86399 ESTABLISHED src=192.0.2.12 dst=198.51.100.1 sport=40200 dport=80 packets=12 bytes=3400 src=198.51.100.1 dst=192.0.2.12 sport=80 dport=40200 packets=10 bytes=9000 [ASSURED] mark=0 use=1
udp      17 29 src=192.0.2.13 dst=198.51.100.1 sport=5353 dport=53 [UNREPLIED] src=198.51.100.1 dst=192.0.2.13 sport=53 dport=5353 mark=0 use=1
icmp     1 29 src=192.0.2.14 dst=198.51.100.1 type=8 code=0 id=1234 src=198.51.100.1 dst=192.0.2.14 type=0 code=0 id=1234 mark=0 use=1
conntrack v1.4.6 (conntrack-tools): 6 flow entries have been shown.
"""

VPC = """\
version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status
2 123456789010 eni-1235b8ca123456789 192.0.2.10 198.51.100.1 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK
2 123456789010 eni-1235b8ca123456789 198.51.100.1 192.0.2.10 22 20641 6 18 9000 1418530010 1418530070 ACCEPT OK
2 123456789010 eni-1235b8ca123456789 192.0.2.11 198.51.100.1 49152 80 6 5 400 1418530010 1418530070 ACCEPT OK
2 123456789010 eni-1235b8ca123456789 198.51.100.1 203.0.113.9 443 50000 6 3 300 1418530010 1418530070 ACCEPT OK
2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA
"""

#: Before: ssh and web open. After: web closed, dns opened.
OLD = """*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
-A INPUT -p tcp -m tcp --dport 80 -j ACCEPT
COMMIT
"""
NEW = OLD.replace("--dport 80 -j ACCEPT", "--dport 80 -j DROP\n-A INPUT -p udp -m udp --dport 53 -j ACCEPT")


def run(*args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_conntrack_entries_are_the_packets_that_opened_them():
    assert sniff(CONNTRACK) == "conntrack"
    flows = read_flows(CONNTRACK, "ct.txt")
    assert len(flows) == 6  # the summary line is not a flow
    packets = to_packets(flows, "input")
    first = packets[0]
    assert (str(first.src), str(first.dst), first.proto, first.sport, first.dport, first.state) == \
        ("192.0.2.10", "198.51.100.1", 6, 51234, 22, "new")
    assert packets[2] is packets[3]  # /proc/net/nf_conntrack and -o extended forms: one packet
    assert flows[3].packets == 12 and flows[3].bytes == 3400  # original direction's counters
    assert packets[4].proto == 17 and packets[4].dport == 53
    assert (packets[5].proto, packets[5].icmp_type, packets[5].icmp_code) == (1, 8, 0)


def test_vpc_flow_log_v2_records_with_replies_and_nodata():
    assert sniff(VPC) == "vpc-flow"
    flows = read_flows(VPC, "vpc.log")
    assert len(flows) == 4  # header and NODATA skipped
    packets = to_packets(flows, "input")
    states = [(p.sport, p.dport, p.state) for p in packets]
    # the reverse of the ssh record is its reply; 443 -> 50000 has no pair but
    # comes from a well-known port
    assert states == [(20641, 22, "new"), (22, 20641, "established"), (49152, 80, "new"),
                      (443, 50000, "established")]
    assert flows[0].packets == 20 and flows[0].bytes == 4249


@pytest.mark.parametrize("text, where", [
    ("2 123 eni-1 192.0.2.1 198.51.100.1 1 2 6 1 1 1 1 ACCEPT\n", "vpc.log:1:1"),
    ("2 123 eni-1 192.0.2.1 198.51.100.x 1 2 6 1 1 1 1 ACCEPT OK\n", "vpc.log:1:23"),
    (VPC.replace(" 49152 80 6 5 ", " 49152 http 6 5 "), "vpc.log:4:"),
])
def test_bad_vpc_records_are_located(text, where):
    with pytest.raises(RuleAnalyzerError) as info:
        read_flows(text, "vpc.log", "vpc-flow")
    assert info.value.render().startswith(where)


def test_query_packets_reads_flows_and_batch_answers_equal_single_answers(tmp_path, capsys):
    rules = tmp_path / "old.rules"
    rules.write_text(OLD)
    ct = tmp_path / "ct.txt"
    ct.write_text(CONNTRACK)
    code, out, _ = run("query", rules, "--packets", ct, "--format", "jsonl", capsys=capsys)
    batch = [json.loads(line) for line in out.splitlines()]
    assert len(batch) == 6 and code == 1  # the dns and ping flows are dropped
    for answer, packet in zip(batch, to_packets(read_flows(CONNTRACK, "ct"), "input")):
        args = ["query", rules, "--src", packet.src, "--dst", packet.dst, "--state", "new",
                "--proto", packet.proto, "--format", "json"]
        if packet.dport is not None:
            args += ["--dport", packet.dport, "--sport", packet.sport]
        else:
            args += ["--icmp-type", packet.icmp_type]
        _, single, _ = run(*args, capsys=capsys)
        single = json.loads(single)
        assert (answer["verdict"], answer["decided_by"]) == (single["verdict"], single["decided_by"])


def test_diff_flows_counts_what_the_change_blocks_and_opens(tmp_path, capsys):
    old, new = tmp_path / "old.rules", tmp_path / "new.rules"
    old.write_text(OLD)
    new.write_text(NEW)
    ct = tmp_path / "ct.txt"
    ct.write_text(CONNTRACK)
    code, out, _ = run("diff", old, new, "--flows", ct, "--no-findings", "--hook", "input",
                       "--format", "json", capsys=capsys)
    flows = json.loads(out)["flows"]
    assert (flows["records"], flows["blocked_records"], flows["allowed_records"]) == (6, 3, 1)
    web = [c for c in flows["changes"] if c["kind"] == "blocked"]
    assert [c["records"] for c in web] == [2, 1]  # 192.0.2.12:40200 twice, then .11
    assert web[0]["after"]["verdict"] == "drop" and web[0]["packets"] == 12
    code, text, _ = run("diff", old, new, "--flows", ct, "--no-findings", "--hook", "input",
                        capsys=capsys)
    assert code == 1
    assert "3 records would be blocked, 1 newly allowed" in text
    assert "tcp 192.0.2.12:40200 -> 198.51.100.1:80 (input, new) × 2 records, 12 packets" in text


def test_a_bad_flows_file_is_a_located_error_and_exit_2(tmp_path, capsys):
    old = tmp_path / "old.rules"
    old.write_text(OLD)
    bad = tmp_path / "ct.txt"
    bad.write_text(CONNTRACK.replace("src=192.0.2.13", "src=192.0.2.300"))
    code, out, err = run("query", old, "--packets", bad, capsys=capsys)
    assert code == 2 and out == "" and "Traceback" not in err
    assert err.startswith(f"{bad}:5:1: error: bad flow:")
    code, _, err = run("diff", old, old, "--flows", tmp_path / "missing.txt", capsys=capsys)
    assert code == 2 and "missing.txt" in err


@pytest.mark.parametrize("text", [
    CONNTRACK, VPC,
    # the reply tuple's words cut at C speed only when no key repeats before it
    "tcp 6 5 src=192.0.2.1 dst=198.51.100.1 dport=1 dport=2 sport=3 src=198.51.100.1 dst=192.0.2.1\n",
    "tcp 6 5 xsrc=1 src=192.0.2.1 dst=198.51.100.1 sport=3 dport=4 src=198.51.100.1\n",
    "tcp 6 5 foo=src=2 =x src=192.0.2.1 dst=198.51.100.1\tsport=3  dport=4 mark=1\n",
])
def test_lean_flow_fields_are_the_flows_fields(text):
    from ruleanalyzer.flows import read_flow_fields

    flows = read_flows(text, "f")
    lean = read_flow_fields(text, "f")
    assert [(f.location.line, f.fields) for f in flows] == \
        [(number, tuple(sorted(fields.items()))) for number, fields, _ in lean]
