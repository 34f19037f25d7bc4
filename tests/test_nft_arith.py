"""Binary operators in nftables text group as nft's grammar groups them,
C's precedence: ``<<``/``>>``, then ``&``, then ``^``, then ``|``, each
from the left. nft 1.0.6 loads and lists them back so (the expected
writes below are what ``nft list`` printed for each statement;
tests/kernel/test_kernel_nft_arith.py asks the real nft on every run):

- ``meta mark set meta mark & 0xff00 ^ 0x6600`` → ``(mark & 0xff00) ^ 0x6600``
  (iptables-nft's ``--set-xmark 0x6600/0xffff00ff``), not ``mark & 0x9900``;
- ``meta mark set meta mark | 0x1 & 0x3`` → ``meta mark | 0x00000001``;
- ``meta mark set meta mark | 0x10 ^ 0x1`` → ``meta mark | 0x00000011``;
- ``meta mark set 0x1 | 0x2`` → ``meta mark set 0x00000003``;
- ``meta mark & 0xff00 ^ 0x100 == 0x200`` → ``meta mark & 0x0000ff00 == 0x00000300``.
"""

from __future__ import annotations

import pytest

from ruleanalyzer import loads
from ruleanalyzer.engine import evaluate
from ruleanalyzer.model import BitsMatch, IntMatch, SetField
from ruleanalyzer.packets import make_packet

RULESET = """table inet f {{
  chain input {{ type filter hook input priority 0; policy drop;
    {rule}
  }}
}}
"""


def _rule(text: str):
    rs = loads(RULESET.format(rule=text), dialect="nftables")
    return next(iter(rs.chains())).rules[0]


@pytest.mark.parametrize(("statement", "write"), [
    ("meta mark set meta mark & 0xff00 ^ 0x6600", SetField("mark", value=0x6600, mask=0xFFFF00FF)),
    ("meta mark set mark and 0xffff00ff xor 0x6600", SetField("mark", value=0x6600, mask=0xFF00)),
    ("meta mark set meta mark ^ 0x4000 | 0x1", SetField("mark", value=0x4001, mask=0x1)),
    ("meta mark set meta mark | 0x1 & 0x3", SetField("mark", value=0x1, mask=0x1)),
    ("meta mark set meta mark | 0x10 ^ 0x1", SetField("mark", value=0x11, mask=0x11)),
    ("meta mark set meta mark & (0xff00 ^ 0x6600)", SetField("mark", value=0, mask=0xFFFF66FF)),
    ("meta mark set 0x1 | 0x2", SetField("mark", value=0x3)),
    ("ct mark set ct mark & 0xffff0000 | 0x10", SetField("ctmark", value=0x10, mask=0xFFFF)),
    # nft 1.0.6 refuses a constant on the left; newer nft loads it as ct mark | 0x1
    # (its own tests/py/any/ct.t: "ct mark set 0x00000001 or ct mark;ok;ct mark set ct mark | 0x00000001")
    ("ct mark set 0x1 or ct mark", SetField("ctmark", value=0x1, mask=0x1)),
])
def test_operators_group_as_nft_groups_them(statement, write):
    assert _rule(statement).effects == (write,)


@pytest.mark.parametrize(("statement", "match"), [
    ("meta mark & 0xff00 ^ 0x100 == 0x200 accept", BitsMatch("mark", mask=0xFF00, values=frozenset({0x300}))),
    ("meta mark ^ 0x1 == 0x3 accept", IntMatch("mark", ranges=((2, 2),))),
    ("meta mark ^ 0x1 != 0x3 accept", IntMatch("mark", ranges=((2, 2),), negate=True)),
])
def test_a_compared_xor_moves_to_the_value(statement, match):
    assert _rule(statement).matches == (match,)


def test_the_grouping_decides_the_answer():
    # mark 0x1234: (0x1234 & 0xff00) ^ 0x6600 = 0x7400, which the second
    # rule accepts; read as 0x1234 & (0xff00 ^ 0x6600) = 0x1000 it was dropped
    text = RULESET.format(rule="meta mark set meta mark & 0xff00 ^ 0x6600\n"
                               "    meta mark 0x7400 accept")
    packet = make_packet(src="192.0.2.1", dst="198.51.100.1", dport=22, flags="SYN", mark=0x1234)
    answer = evaluate(loads(text, dialect="nftables"), packet)
    assert answer.verdict == "accept"
