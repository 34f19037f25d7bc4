"""Fixes as nft commands (for nft text and nft JSON rulesets alike)."""

from __future__ import annotations

import re

from ..checks.base import shown
from . import Add, MaskedSyn, Narrow, Policy, Remove, Renderer, Spec, Verdict, YOUR_NETWORKS, _range

_ICMP = {"frag-needed": "icmp type destination-unreachable icmp code frag-needed",
         "packet-too-big": "icmpv6 type packet-too-big"}
_FLAGS = re.compile(r"tcp flags\s+(?:==\s*)?(?:\{[^}]*\}|[\w|,]+(?:\s*/\s*[\w|,]+)?)")
_TRAILING = re.compile(r"\s*#\s*handle\s+\d+\s*$")


def where(table, chain: str) -> str:
    return f"{table.family} {table.name} {chain}" if table is not None else f"inet filter {chain}"


def spec_text(spec: Spec, family: str = "inet") -> str:
    out = []
    if spec.iif:
        out.append(f'iifname "{spec.iif}"')
    if spec.src:
        v6 = spec.family == 6 or family == "ip6" or any(":" in s for s in spec.src)
        addrs = spec.src[0] if len(spec.src) == 1 and spec.src[0] != YOUR_NETWORKS else \
            "{ " + ", ".join(spec.src) + " }"
        out.append(f"{'ip6' if v6 else 'ip'} saddr {addrs}")
    if spec.states:
        out.append("ct state " + ",".join(spec.states))
    nd = [t for t in spec.icmp if t.startswith("nd-")]
    if nd:
        out.append("icmpv6 type { " + ", ".join(nd) + " }")
    out += [_ICMP[t] for t in spec.icmp if t in _ICMP]
    if spec.proto and not spec.icmp:
        if spec.sport or spec.dport:
            if spec.sport:
                out.append(f"{spec.proto} sport {_range(spec.sport, '-')}")
            if spec.dport:
                out.append(f"{spec.proto} dport {_range(spec.dport, '-')}")
        else:
            out.append(f"meta l4proto {spec.proto}")
    out.append(spec.verdict)
    return " ".join(out)


def _handle(rule) -> str:
    ident = rule.ident or ""
    if ident.isdigit():
        return ident
    m = re.search(r"#\s*handle\s+(\d+)", rule.text or "")
    return m.group(1) if m else "<handle>"


def _body(rule) -> str:
    return _TRAILING.sub("", shown(rule)).strip()


class Nftables(Renderer):
    def add(self, fix: Add) -> str:
        table = fix.chain.table if fix.chain is not None else None
        chain = fix.chain.name if fix.chain is not None else fix.hook
        return f"nft insert rule {where(table, chain)} {spec_text(fix.spec, table.family if table else 'inet')}"

    def _at(self, rule) -> str:
        at = f"{where(rule.chain.table, rule.chain.name)} handle {_handle(rule)}"
        if _handle(rule) == "<handle>":
            at += f" (see nft -a list chain {where(rule.chain.table, rule.chain.name)})"
        return at

    def remove(self, fix: Remove) -> str:
        return f"nft delete rule {self._at(fix.rule)}"

    def _replace(self, rule, text: str) -> str:
        return f"nft replace rule {where(rule.chain.table, rule.chain.name)} handle {_handle(rule)} {text}"

    def narrow(self, fix: Narrow) -> str:
        spec = Spec(src=fix.src, verdict="")
        return self._replace(fix.rule, f"{spec_text(spec, fix.rule.chain.table.family).strip()} {_body(fix.rule)}")

    def verdict(self, fix: Verdict) -> str:
        body = _body(fix.rule)
        new = re.sub(r"\breturn$", fix.verdict, body)
        return self._replace(fix.rule, new) if new != body else super().verdict(fix)

    def maskedsyn(self, fix: MaskedSyn) -> str:
        body = _body(fix.rule)
        new = _FLAGS.sub("tcp flags syn / fin,syn,rst,ack", body, count=1)
        return self._replace(fix.rule, new) if new != body else super().maskedsyn(fix)

    def policy(self, fix: Policy) -> str:
        if fix.chain is None:
            return super().policy(fix)
        return f"nft add chain {where(fix.chain.table, fix.chain.name)} '{{ policy {fix.verdict}; }}'"
