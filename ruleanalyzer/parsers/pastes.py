"""Listings that look like rules but cannot be analysed, recognised and
refused with what to run instead (issue #17).

``iptables -L`` (with or without ``-n -v --line-numbers``) prints a listing
for reading: without ``-v`` it leaves out interfaces, it abbreviates
matches, and ``-n``-less listings resolve addresses to names — the rules
cannot be rebuilt from it. ``firewall-cmd --list-all`` summarises one zone
without its policies, direct rules, rich-rule order or the other zones.
Both are refused with a located error naming the listing and the command
whose output can be read, instead of "cannot tell which firewall dialect".
"""

from __future__ import annotations

import re

from ..errors import RuleAnalyzerError
from ..model import Location

_CHAIN = re.compile(r"^Chain \S+ \((?:policy \w+.*|\d+ references)\)\s*$", re.M)
_HEADER = re.compile(r"^\s*(num\s+)?(pkts\s+bytes\s+)?target\s+prot\s+opt\s+(in\s+out\s+)?source\s+destination",
                     re.M)
_ZONE = re.compile(r"^(\S+)(?: \(active\)| \(default, active\)| \(default\))?\s*\n"
                   r"(?:[ \t]+[\w-]+:.*\n){2,}", re.M)
_ZONE_KEYS = ("target:", "interfaces:", "services:", "ports:")


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
    zone = _ZONE.search(head)
    if zone and sum(key in zone.group(0) for key in _ZONE_KEYS) >= 3:
        line = head.count("\n", 0, zone.start()) + 1
        raise RuleAnalyzerError(
            f"this is `firewall-cmd --list-all` output (zone {zone.group(1)}): a summary of one zone "
            "without the other zones, policies, direct rules and the order firewalld gives them",
            Location(name, line, 1), source_line=zone.group(0).split("\n", 1)[0],
            hint="give the configuration directory (/etc/firewalld, or a snapshot from "
                 "`ruleanalyzer collect`), or `nft list ruleset` from the host")
