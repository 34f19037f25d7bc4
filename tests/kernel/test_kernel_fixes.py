"""The rendered fixes are commands the kernel's own tools accept, and
they mend what they are for: load the ruleset into a fresh namespace, run
the fix there (iptables/ip6tables, nft), read the kernel's ruleset back
(iptables-save / nft list ruleset) and audit it again."""

from __future__ import annotations

import re
import shlex

import pytest

from ruleanalyzer import loads
from ruleanalyzer.audit import run_audit
from ruleanalyzer.fixes import YOUR_NETWORKS

from ..test_fixes import IP6TABLES_CASES, IPTABLES_CASES, NFT_CASES, OURS


def _finding(text: str, dialect: str, code: str):
    return [f for f in run_audit([loads(text, dialect=dialect, name="r")], select=[code]).findings
            if f.code == code]


def _commands(fix: str) -> list[list[str]]:
    return [shlex.split(c.strip()) for c in fix.replace(YOUR_NETWORKS, OURS).split(";") if c.strip()]


@pytest.mark.parametrize("code, v6", [(c, False) for c in sorted(IPTABLES_CASES)]
                         + [(c, True) for c in sorted(IP6TABLES_CASES)])
def test_iptables_fix_runs_in_the_kernel_and_mends_it(lone_ns, code, v6):
    text = (IP6TABLES_CASES if v6 else IPTABLES_CASES)[code]
    [before] = _finding(text, "iptables", code)
    lone_ns.exec("ip6tables-restore" if v6 else "iptables-restore", input=text)
    for argv in _commands(before.fix):
        lone_ns.exec(*argv)
    saved = lone_ns.exec("ip6tables-save" if v6 else "iptables-save").stdout
    assert _finding(saved, "iptables", code) == [], saved


@pytest.mark.parametrize("code", sorted(NFT_CASES))
def test_nft_fix_runs_in_the_kernel_and_mends_it(lone_ns, code):
    text = NFT_CASES[code]
    [before] = _finding(text, "nftables", code)
    lone_ns.exec("nft", "-f", "-", input=re.sub(r"\s*# handle \d+", "", text))
    for argv in _commands(before.fix):
        lone_ns.exec(*argv)
    listed = lone_ns.exec("nft", "list", "ruleset").stdout
    assert _finding(listed, "nftables", code) == [], listed
