"""The real nft is the judge of how nftables text groups its binary
operators: each statement is loaded into a private network namespace, nft
lists it back as JSON (``nft -j list``, where the grouping is explicit),
and the model read from our text must equal the model read from nft's JSON.
(tests/test_nft_arith.py holds the same cases without root.)"""

from __future__ import annotations

import json

import pytest

from ruleanalyzer import loads

RULESET = """table inet f {{
  chain input {{ type filter hook input priority 0; policy drop;
    {rule}
  }}
}}
"""

STATEMENTS = [
    "meta mark set meta mark & 0xff00 ^ 0x6600",
    "meta mark set meta mark and 0xffff00ff xor 0x6600",
    "meta mark set meta mark ^ 0x4000 | 0x1",
    "meta mark set meta mark | 0x1 & 0x3",
    "meta mark set meta mark | 0x10 ^ 0x1",
    "meta mark set meta mark & (0xff00 ^ 0x6600)",
    "meta mark set meta mark | 0x4000",
    "meta mark set meta mark & 0xffffbfff | 0x2 ^ 0x6",
    "meta mark set 0x1 | 0x2",
    "ct mark set ct mark & 0xffff0000 | 0x10",
    "ct mark set ct mark xor 0x10 and 0x30",
    "meta mark & 0xff00 ^ 0x100 == 0x200 accept",
    "meta mark ^ 0x1 == 0x3 accept",
    "meta mark ^ 0x1 != 0x3 accept",
    "meta mark & 0xff == 0x1 accept",
]


def _first_rule(rs):
    return next(iter(rs.chains())).rules[0]


@pytest.mark.parametrize("statement", STATEMENTS)
def test_text_reads_as_nft_loads_it(lone_ns, statement):
    text = RULESET.format(rule=statement)
    lone_ns.exec("nft", "-f", "-", input="flush ruleset\n" + text)
    listed = lone_ns.exec("nft", "-j", "list", "ruleset").stdout
    ours = _first_rule(loads(text, dialect="nftables"))
    nfts = _first_rule(loads(listed, dialect="nft-json"))
    assert (ours.matches, ours.effects, ours.action) == (nfts.matches, nfts.effects, nfts.action), \
        json.loads(listed)["nftables"][-1]
