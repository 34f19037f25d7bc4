"""Fixes as iptables / ip6tables commands (they read the same in an
iptables-restore file, without the command name)."""

from __future__ import annotations

import re

from . import Add, MaskedSyn, Narrow, Policy, Remove, Renderer, Spec, Verdict, _range

#: Neutral ICMP names → iptables' (family, protocol option, type option, name).
_ICMP = {"frag-needed": (4, "icmp", "--icmp-type", "fragmentation-needed"),
         "packet-too-big": (6, "ipv6-icmp", "--icmpv6-type", "packet-too-big"),
         "nd-router-solicit": (6, "ipv6-icmp", "--icmpv6-type", "router-solicitation"),
         "nd-router-advert": (6, "ipv6-icmp", "--icmpv6-type", "router-advertisement"),
         "nd-neighbor-solicit": (6, "ipv6-icmp", "--icmpv6-type", "neighbour-solicitation"),
         "nd-neighbor-advert": (6, "ipv6-icmp", "--icmpv6-type", "neighbour-advertisement")}
_COUNTERS = re.compile(r"^\[\d+:\d+\]\s*")
_APPEND = re.compile(r"^-[AI]\s+(\S+)(?:\s+\d+)?\s*")


def command(table, family: int | None = None) -> str:
    """``iptables`` / ``ip6tables``, with ``-t`` for tables other than filter."""
    v6 = family == 6 if family else (table is not None and table.family == "ip6")
    name = table.name if table is not None else "filter"
    return ("ip6tables" if v6 else "iptables") + ("" if name == "filter" else f" -t {name}")


def spec_args(spec: Spec, icmp: str | None = None) -> str:
    out = []
    if spec.iif:
        out.append(f"-i {spec.iif}")
    if spec.src:
        out.append(f"-s {','.join(spec.src)}")
    if icmp is not None:
        _fam, proto, option, name = _ICMP[icmp]
        out.append(f"-p {proto} {option} {name}")
    elif spec.proto:
        out.append(f"-p {spec.proto}")
        if spec.sport:
            out.append(f"--sport {_range(spec.sport, ':')}")
        if spec.dport:
            out.append(f"--dport {_range(spec.dport, ':')}")
    if spec.states:
        out.append("-m conntrack --ctstate " + ",".join(s.upper() for s in spec.states))
    out.append(f"-j {spec.verdict.upper()}")
    return " ".join(out)


def _written(rule) -> tuple[str, str]:
    """(chain, the rule's specification as written, without ``-A CHAIN``)."""
    text = _COUNTERS.sub("", (rule.text or "").strip())
    m = _APPEND.match(text)
    chain = rule.chain.name if rule.chain is not None else "INPUT"
    return (m.group(1), text[m.end():]) if m else (chain, text)


class Iptables(Renderer):
    def add(self, fix: Add) -> str:
        table = fix.chain.table if fix.chain is not None else None
        chain = fix.chain.name if fix.chain is not None else fix.hook.upper()
        spec = fix.spec
        if spec.icmp:
            return "; ".join(f"{command(table, _ICMP[t][0])} -I {chain} 1 {spec_args(spec, t)}"
                             for t in spec.icmp)
        return f"{command(table, spec.family)} -I {chain} 1 {spec_args(spec)}"

    def remove(self, fix: Remove) -> str:
        chain, written = _written(fix.rule)
        return f"{command(fix.rule.chain.table)} -D {chain} {written}"

    def _replace(self, rule, written: str) -> str:
        chain, _old = _written(rule)
        return f"{command(rule.chain.table)} -R {chain} {rule.index} {written}"

    def narrow(self, fix: Narrow) -> str:
        _chain, written = _written(fix.rule)
        nets = ",".join(fix.src)
        if re.search(r"(?:^|\s)-s\s+\S+", written):
            written = re.sub(r"(?:^|(?<=\s))-s\s+\S+", f"-s {nets}", written, count=1)
        else:
            written = f"-s {nets} {written}"
        return self._replace(fix.rule, written)

    def verdict(self, fix: Verdict) -> str:
        _chain, written = _written(fix.rule)
        new = re.sub(r"-j\s+RETURN\b", f"-j {fix.verdict.upper()}", written)
        return self._replace(fix.rule, new) if new != written else super().verdict(fix)

    def maskedsyn(self, fix: MaskedSyn) -> str:
        _chain, written = _written(fix.rule)
        new = re.sub(r"--tcp-flags\s+\S+\s+\S+", "--syn", written, count=1)
        return self._replace(fix.rule, new) if new != written else super().maskedsyn(fix)

    def policy(self, fix: Policy) -> str:
        table = fix.chain.table if fix.chain is not None else None
        chain = fix.chain.name if fix.chain is not None else fix.hook.upper()
        return f"{command(table, fix.family)} -P {chain} {fix.verdict.upper()}"
