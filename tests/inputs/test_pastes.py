"""Listings that cannot be analysed are recognised and refused with what to
run instead (issue #17), exit 2 — not "cannot tell which firewall dialect".
(``firewall-cmd --list-all`` is the firewalld reader's, tests/test_firewalld_listall.py.)"""

import io
import sys

import pytest

from ruleanalyzer import loader, loads
from ruleanalyzer.cli import main
from ruleanalyzer.errors import RuleAnalyzerError

LIST = """Chain INPUT (policy ACCEPT)
target     prot opt source               destination
ACCEPT     all  --  anywhere             anywhere             state RELATED,ESTABLISHED
ACCEPT     tcp  --  anywhere             anywhere             tcp dpt:ssh

Chain FORWARD (policy DROP)
target     prot opt source               destination
"""

LIST_NV = """Chain INPUT (policy DROP 0 packets, 0 bytes)
num   pkts bytes target     prot opt in     out     source               destination
1      120  9600 ACCEPT     all  --  lo     *       0.0.0.0/0            0.0.0.0/0
2        0     0 ACCEPT     tcp  --  *      *       0.0.0.0/0            0.0.0.0/0            tcp dpt:22

Chain DOCKER (1 references)
num   pkts bytes target     prot opt in     out     source               destination
"""

LIST6 = """Chain INPUT (policy ACCEPT)
target     prot opt source               destination
ACCEPT     all      ::/0                 ::/0
"""

@pytest.mark.parametrize("text, listing, instead", [
    (LIST, "`iptables -L` output", "iptables-save"),
    (LIST_NV, "`iptables -L -n -v --line-numbers` output", "iptables-save"),
    (LIST6, "`ip6tables -L -n` output", "ip6tables-save"),
])
def test_listings_are_named_with_what_to_run_instead(text, listing, instead):
    for dialect in (None, "iptables"):
        with pytest.raises(RuleAnalyzerError) as info:
            loads("\n" + text, dialect=dialect, name="paste.txt")
        err = info.value
        assert err.message.startswith(f"this is {listing}")
        assert (err.location.line, err.location.column) == (2, 1)
        assert instead in err.hint


def test_a_pasted_listing_on_stdin_exits_2(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(LIST_NV.encode())))
    loader.forget_stdin()
    code = main(["query", "-", "--src", "192.0.2.1", "--dst", "192.0.2.2", "--dport", "22"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot tell" not in err
    assert err.startswith("<stdin>:1:1: error: this is `iptables -L -n -v --line-numbers` output")
    assert "hint: run `iptables-save`" in err
