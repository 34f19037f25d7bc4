"""Command scripts and ``iptables -S`` output (issue #17): applied in order
as the commands would change an empty ruleset; shell constructs refused
with a located error naming them."""

import json

import pytest

from ruleanalyzer import loads
from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.parsers import sniff


def chains(ruleset, family="ip"):
    """{(table, chain): (policy, [(matches, action)])} — what the analysis sees."""
    return {(t.name, c.name): (c.policy, [(r.matches, r.action) for r in c.rules])
            for t in ruleset.tables if t.family == family for c in t.chains.values()}


SAVE = """*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:SSH - [0:0]
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -i lo -j ACCEPT
-A INPUT -p tcp -m tcp --dport 22 -j SSH
-A INPUT -p udp -m comment --comment "hello world" -m udp --dport 53 -j ACCEPT
-A SSH -s 10.0.0.0/8 -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -p tcp -m tcp --dport 8080 -j REDIRECT --to-ports 80
COMMIT
"""

SCRIPT = """#!/bin/sh
# the firewall of host a
set -eu

iptables -F
iptables -X
iptables -P INPUT DROP
iptables -N SSH
iptables -A SSH -s 10/8 -j ACCEPT
iptables -A INPUT -i lo -j ACCEPT
iptables -A INPUT -p tcp --dport 22 -j SSH
iptables -I INPUT 1 -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
iptables -A INPUT -p tcp --dport 23 -j ACCEPT    # removed again below
iptables -A INPUT -p tcp --dport 25 -j ACCEPT
iptables -D INPUT -p tcp --dport 23 -j ACCEPT
iptables -D INPUT 4
/sbin/iptables-legacy -w 5 -t nat -A PREROUTING -p tcp --dport 8080 \\
    -j REDIRECT --to-ports 80
iptables-nft --append INPUT -m comment --comment 'hello world' -p udp --dport 53 -j ACCEPT
iptables -L -n -v
"""


def test_a_script_builds_what_its_dump_holds():
    script, dump = loads(SCRIPT, dialect="iptables-script", name="fw.sh"), loads(SAVE, dialect="iptables")
    assert chains(script) == chains(dump)
    rules = script.table("filter").chains["INPUT"].rules
    assert [r.location.line for r in rules] == [12, 10, 11, 19]
    assert rules[3].location.column == 14  # the command word (--append)
    assert any("-L changes no rule" in d.message for d in script.diagnostics)


def test_scripts_and_dash_s_output_are_sniffed():
    assert sniff(SCRIPT, "fw.sh") == "iptables-script"
    dash_s = "-P INPUT DROP\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n-N SSH\n-A INPUT -j SSH\n-A SSH -j ACCEPT\n"
    assert sniff(dash_s, "rules.txt") == "iptables-script"
    assert sniff(SAVE, "rules.v4") == "iptables"


def test_iptables_dash_s_output_is_the_filter_table():
    dash_s = ('-P INPUT DROP\n-P FORWARD DROP\n-P OUTPUT ACCEPT\n-N SSH\n'
              '-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A INPUT -i lo -j ACCEPT\n'
              '-A INPUT -p tcp -m tcp --dport 22 -j SSH\n'
              '-A INPUT -p udp -m comment --comment "hello world" -m udp --dport 53 -j ACCEPT\n'
              '-A SSH -s 10.0.0.0/8 -j ACCEPT\n')
    for dialect in (None, "iptables"):  # also when named as iptables
        ruleset = loads(dash_s, dialect=dialect)
        want = {k: v for k, v in chains(loads(SAVE, dialect="iptables")).items() if k[0] == "filter"}
        want[("filter", "FORWARD")] = ("drop", [])
        assert chains(ruleset) == want


def test_ip6tables_dash_s_and_mixed_scripts_keep_families():
    v6 = loads("-P INPUT DROP\n-A INPUT -s 2001:db8::/32 -p tcp -m tcp --dport 22 -j ACCEPT\n")
    assert {t.family for t in v6.tables} == {"ip6"}
    both = loads("iptables -P INPUT DROP\nip6tables -P INPUT DROP\nip6tables -A INPUT -p ipv6-icmp -j ACCEPT\n")
    assert {(t.name, t.family) for t in both.tables} == {("filter", "ip"), ("filter", "ip6")}
    assert len(both.table("filter", "ip6").chains["INPUT"].rules) == 1


def test_the_table_of_dash_s_output_can_be_named():
    from ruleanalyzer.parsers import iptables_script

    nat = iptables_script.parse("-P PREROUTING ACCEPT\n-A PREROUTING -p tcp -j REDIRECT --to-ports 80\n",
                                "nat.txt", table="nat")
    assert [t.name for t in nat.tables] == ["nat"]


@pytest.mark.parametrize("line, column, construct", [
    ("iptables -A INPUT -s $NET -j ACCEPT", 22, "a variable $NET"),
    ('iptables -A INPUT -s "${NET}" -j ACCEPT', 23, "a variable ${NET}"),
    ('iptables -A INPUT -s "$(cat nets)" -j ACCEPT', 23, "command substitution $(…)"),
    ("iptables -A INPUT -s `cat nets` -j ACCEPT", 22, "command substitution `…`"),
    ("for p in 22 80; do iptables -A INPUT -p tcp --dport $p -j ACCEPT; done", 1, "a for loop"),
    ("while read net; do", 1, "a while loop"),
    ("if [ -x /sbin/iptables ]; then", 1, "an if statement"),
    ("allow() {", 6, "a function definition ()"),
    ("iptables -S | grep DROP", 13, "a pipe |"),
    ("iptables -A INPUT -j DROP && echo done", 27, "an and-list &&"),
    ("iptables -C INPUT -j DROP || iptables -A INPUT -j DROP", 27, "an or-list ||"),
    ("iptables -A INPUT -j DROP; iptables -A INPUT -j ACCEPT", 26, "a command list ;"),
    ("iptables -A INPUT -j DROP > /dev/null", 27, "a redirection >"),
    ("IPT=/sbin/iptables", 1, "a variable assignment IPT=…"),
])
def test_shell_constructs_are_located_and_named(line, column, construct):
    with pytest.raises(RuleAnalyzerError) as info:
        loads(f"#!/bin/sh\niptables -P INPUT DROP\n{line}\n", dialect="iptables-script", name="fw.sh")
    err = info.value
    assert (err.location.file, err.location.line, err.location.column) == ("fw.sh", 3, column)
    assert err.message.startswith(f"shell construct: {construct} ")
    assert err.source_line == line


def test_commands_iptables_would_refuse_are_located():
    with pytest.raises(RuleAnalyzerError, match="no such rule") as info:
        loads("iptables -A INPUT -j ACCEPT\niptables -D INPUT -p tcp -j ACCEPT\n", dialect="iptables-script")
    assert info.value.location.line == 2
    with pytest.raises(RuleAnalyzerError, match="cannot delete rule 3") as info:
        loads("iptables -A INPUT -j ACCEPT\niptables -D INPUT 3\n", dialect="iptables-script")
    with pytest.raises(RuleAnalyzerError, match="'echo2' is not an iptables command"):
        loads("iptables -A INPUT -j ACCEPT\necho2 hi\n", dialect="iptables-script")
    with pytest.raises(RuleAnalyzerError, match="unknown option --dprot") as info:
        loads("iptables -t nat -A PREROUTING -p tcp --dprot 80 -j REDIRECT\n", dialect="iptables-script")
    assert info.value.location.column == 38


def test_flush_and_delete_chain_apply_in_order():
    rs = loads("iptables -N A\niptables -A A -j DROP\niptables -A INPUT -j A\niptables -F\niptables -X\n"
               "iptables -A INPUT -p tcp -j ACCEPT\n", dialect="iptables-script")
    assert list(rs.table("filter").chains) == ["INPUT", "FORWARD", "OUTPUT"]
    assert len(rs.table("filter").chains["INPUT"].rules) == 1


NFT_SCRIPT = """#!/bin/bash
set -euo pipefail
nft flush ruleset
nft add table inet filter
nft add chain inet filter input '{ type filter hook input priority 0; policy drop; }'
nft add rule inet filter input ct state established,related accept
nft 'add rule inet filter input tcp dport 22 accept'
nft add rule inet filter input tcp dport { 80, 443 } accept
nft add rule inet filter input udp dport 53 accept comment \\"dns\\"
nft insert rule inet filter input tcp dport 23 drop
nft -f - <<'EOF'
table ip nat {
	chain prerouting {
		type nat hook prerouting priority -100; policy accept;
		tcp dport 8080 redirect to :80
	}
}
EOF
nft list ruleset
"""

NFT_DUMP = """table inet filter {
	chain input {
		type filter hook input priority 0; policy drop;
		tcp dport 23 drop
		ct state established,related accept
		tcp dport 22 accept
		tcp dport { 80, 443 } accept
		udp dport 53 accept comment "dns"
	}
}
table ip nat {
	chain prerouting {
		type nat hook prerouting priority -100; policy accept;
		tcp dport 8080 redirect to :80
	}
}
"""


def test_an_nft_script_builds_what_its_dump_holds():
    assert sniff(NFT_SCRIPT, "fw.sh") == "nft-script"
    script = loads(NFT_SCRIPT, name="fw.sh")
    dump = loads(NFT_DUMP, dialect="nftables")
    for family in ("inet", "ip"):
        assert chains(script, family) == chains(dump, family)
    rules = script.table("filter", "inet").chains["input"].rules
    assert [r.location.line for r in rules] == [10, 6, 7, 8, 9]
    assert rules[2].location.column == 33  # inside the quoted command
    assert script.table("nat", "ip").chains["prerouting"].rules[0].location.line == 15


@pytest.mark.parametrize("script, line, words", [
    ("nft add rule inet filter input tcp dport $PORT accept\n", 1, "a variable $PORT"),
    ("nft -f - <<EOF\ntable inet f {\n\tchain c { tcp dport $P accept; }\n}\nEOF\n", 3,
     "a here-document whose delimiter is not quoted"),
    ("nft -f /etc/nftables.conf\n", 1, "nft -f FILE reads another file"),
    ("nft add chain inet filter input { type filter hook input priority 0; }\n", 1, "a command list ;"),
    ("nft add table inet filter\nnft add chain inet filter input\nnft add rule inet filter input ip saddr 10.0.0.300 accept\n", 3, "10.0.0.300"),
])
def test_nft_script_errors_are_located(script, line, words):
    with pytest.raises(RuleAnalyzerError) as info:
        loads(script, dialect="nft-script", name="fw.sh")
    assert info.value.location.line == line and words in info.value.message


def test_nft_list_negated_flags_are_read():
    """``nft list ruleset`` prints ``tcp flags ! syn`` (no flag of them set):
    the dumps the kernel proof compares with hold it."""
    from ruleanalyzer import evaluate, make_packet

    rs = loads("table inet f {\n\tchain i {\n\t\ttype filter hook input priority 0; policy accept;\n"
               "\t\ttcp flags ! syn drop\n\t}\n}\n", dialect="nftables")
    verdict = {f: evaluate(rs, make_packet(src="192.0.2.1", dst="192.0.2.2", dport=22, flags=f,
                                           state="new")).verdict for f in ("SYN", "ACK", "SYN,ACK")}
    assert verdict == {"SYN": "accept", "ACK": "drop", "SYN,ACK": "accept"}


def test_the_table_option_names_the_table_of_dash_s_output(capsys, monkeypatch):
    import io
    import sys

    from ruleanalyzer import loader
    from ruleanalyzer.cli import main

    text = "-P PREROUTING ACCEPT\n-A PREROUTING -p tcp --dport 8080 -j DNAT --to-destination 10.0.0.5:80\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    loader.forget_stdin()
    main(["query", "-", "--table", "nat", "--src", "192.0.2.1", "--dst", "192.0.2.2", "--dport", "8080",
          "--format", "json"])
    trace = json.loads(capsys.readouterr().out)["trace"]
    assert any(step.get("table") == "nat" and step.get("chain") == "PREROUTING" for step in trace)


def test_audit_takes_the_table_of_dash_s_output_too(capsys, monkeypatch):
    import io
    import sys

    from ruleanalyzer import loader
    from ruleanalyzer.cli import main

    rule = "-A PREROUTING -p tcp --dport 8080 -j DNAT --to-destination 10.0.0.5:80\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO((rule * 2).encode())))
    loader.forget_stdin()
    main(["audit", "-", "--table", "nat", "--select", "RA505", "--format", "json", "--no-config"])
    [finding] = json.loads(capsys.readouterr().out)["findings"]
    assert (finding["location"]["table"], finding["location"]["line"]) == ("nat", 2)


def test_diff_takes_the_table_too(tmp_path, capsys):
    from ruleanalyzer.cli import main

    old, new = tmp_path / "old.txt", tmp_path / "new.txt"
    old.write_text("-A PREROUTING -p tcp --dport 8080 -j DNAT --to-destination 10.0.0.5:80\n")
    new.write_text("-A PREROUTING -p tcp --dport 8081 -j DNAT --to-destination 10.0.0.5:80\n")
    main(["diff", str(old), str(new), "--table", "nat", "--no-findings", "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert report["verdicts_changed"] and "8081" in json.dumps(report["regions"])


def test_host_state_commands_are_skipped_and_said():
    rs = loads("#!/bin/sh\nmodprobe nf_conntrack\nsysctl -w net.ipv4.ip_forward=1\necho starting\n"
               "iptables -A INPUT -j ACCEPT\n", dialect="iptables-script", name="fw.sh")
    notes = [(d.location.line, d.message.split(" ", 1)[0]) for d in rs.diagnostics]
    assert notes == [(2, "modprobe"), (3, "sysctl")]


def test_tab_stripping_here_documents():
    script = ("#!/bin/sh\n"
              "nft -f - <<-'EOF'\n\ttable inet f {\n\t\tchain i {\n\t\t\ttype filter hook input priority 0; "
              "policy drop;\n\t\t\ttcp dport 22 accept\n\t\t}\n\t}\n\tEOF\nnft list ruleset\n")
    rs = loads(script, name="fw.sh")
    assert [r.location.line for r in rs.table("f", "inet").chains["i"].rules] == [6]


def test_an_unstated_family_is_said():
    plain = loads("-P INPUT DROP\n-A INPUT -p tcp --dport 22 -j ACCEPT\n", name="<stdin>")
    assert [t.family for t in plain.tables] == ["ip"]
    assert any(d.message.startswith("IPv4 assumed") for d in plain.diagnostics)
    for text, name in (("-A INPUT -s 10.0.0.0/8 -j ACCEPT\n", "<stdin>"), ("-A INPUT -j ACCEPT\n", "rules.v6"),
                       ("iptables -A INPUT -j ACCEPT\n", "<stdin>")):
        assert not any("assumed" in d.message for d in loads(text, name=name).diagnostics)
