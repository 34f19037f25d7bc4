"""Listings that look like rules but cannot be analysed, recognised and
refused with what to run instead (issue #17).

``iptables -L`` (with or without ``-n -v --line-numbers``) prints a listing
for reading: without ``-v`` it leaves out interfaces, it abbreviates
matches, and ``-n``-less listings resolve addresses to names — the rules
cannot be rebuilt from it. It is refused with a located error naming the
listing and the command whose output can be read, instead of "cannot tell
which firewall dialect". (``firewall-cmd --list-all`` output is the
firewalld reader's: it reads complete listings and refuses the others.)
"""

from __future__ import annotations

import re

from ..errors import RuleAnalyzerError
from ..model import Location

_CHAIN = re.compile(r"^Chain \S+ \((?:policy \w+.*|\d+ references)\)\s*$", re.M)
_HEADER = re.compile(r"^\s*(num\s+)?(pkts\s+bytes\s+)?target\s+prot\s+opt\s+(in\s+out\s+)?source\s+destination",
                     re.M)


def refuse(text: str, name: str) -> None:
    """Raise a located error when ``text`` is one of the listings above."""
    head = text[:20000]
    chain = _CHAIN.search(head)
    header = _HEADER.search(head)
    if chain and header:
        v6 = "::/0" in head or re.search(r"\s[0-9a-f]*:[0-9a-f:]*:[0-9a-f]*/\d+\s", head)
        tool = "ip6tables" if v6 else "iptables"
        flags = [f for f, present in (("-n", not re.search(r"\sanywhere\s", head)),
                                      ("-v", header.group(2)), ("--line-numbers", header.group(1)))
                 if present]
        listing = f"{tool} -L" + "".join(f" {f}" for f in flags)
        line = head.count("\n", 0, chain.start()) + 1
        raise RuleAnalyzerError(
            f"this is `{listing}` output, a listing for reading: it leaves out or abbreviates "
            "parts of the rules, so they cannot be rebuilt from it",
            Location(name, line, 1), source_line=chain.group(0),
            hint=f"run `{tool}-save` (or `nft list ruleset` on an nftables host) and give its output")
