"""Fixes as ufw commands; where the ufw command line cannot say it (ICMP
types, conntrack states) as the line to put in ufw's own
``/etc/ufw/before.rules`` / ``before6.rules``, the way ufw's stock rules
are written."""

from __future__ import annotations

from . import Add, Narrow, Policy, Remove, Renderer, Spec, _range, spec_of
from .iptables import spec_args

_DIRECTION = {"input": "in", "output": "out", "forward": "in"}
_DEFAULT = {"input": "incoming", "output": "outgoing", "forward": "routed"}
_USER_CHAINS = ("ufw-user-input", "ufw-user-output", "ufw-user-forward",
                "ufw6-user-input", "ufw6-user-output", "ufw6-user-forward")


def _hook(chain, fallback: str) -> str:
    name = chain.name if chain is not None else ""
    for hook in ("input", "output", "forward"):
        if name.endswith(hook) or (chain is not None and chain.hook == hook):
            return hook
    return fallback


def ufw_command(spec: Spec, hook: str) -> str:
    """``allow in on lo`` / ``allow out proto tcp from any port 80 to any port 1024:65535``."""
    action = "allow" if spec.verdict == "accept" else "deny"
    words = (["route"] if hook == "forward" else []) + [action, _DIRECTION.get(hook, "in")]
    if spec.iif:
        words += ["on", spec.iif]
    if spec.proto:
        words += ["proto", spec.proto]
    if spec.src or spec.sport or spec.dport or spec.proto:
        words += ["from", spec.src[0] if spec.src else "any"]  # ufw takes one address a rule
        if spec.sport:
            words += ["port", _range(spec.sport, ":")]
        words += ["to", "any"]
        if spec.dport:
            words += ["port", _range(spec.dport, ":")]
    return " ".join(words)


class Ufw(Renderer):
    def add(self, fix: Add) -> str:
        spec, hook = fix.spec, _hook(fix.chain, fix.hook)
        if spec.icmp or spec.states:
            v6 = spec.family == 6 or (fix.chain is not None and fix.chain.name.startswith("ufw6"))
            chain = f"{'ufw6' if v6 else 'ufw'}-before-{hook}"
            lines = [f"-A {chain} {spec_args(spec, t)}" for t in spec.icmp] or \
                    [f"-A {chain} {spec_args(spec)}"]
            where = "/etc/ufw/before6.rules" if v6 else "/etc/ufw/before.rules"
            return f"add to {where} (ufw's stock rule, before COMMIT), then ufw reload: " + "; ".join(lines)
        return f"ufw insert 1 {ufw_command(spec, hook)}"

    def _user(self, rule) -> bool:
        return rule.chain is not None and rule.chain.name in _USER_CHAINS

    def remove(self, fix: Remove) -> str:
        if not self._user(fix.rule):
            return super().remove(fix)
        return f"ufw delete {ufw_command(spec_of(fix.rule), _hook(fix.rule.chain, 'input'))}"

    def narrow(self, fix: Narrow) -> str:
        if not self._user(fix.rule):
            return super().narrow(fix)
        hook = _hook(fix.rule.chain, "input")
        spec = spec_of(fix.rule)
        narrowed = Spec(verdict=spec.verdict, proto=spec.proto, sport=spec.sport, dport=spec.dport,
                        iif=spec.iif, src=fix.src, family=spec.family)
        return f"ufw delete {ufw_command(spec, hook)}; ufw {ufw_command(narrowed, hook)}"

    def policy(self, fix: Policy) -> str:
        verdict = "deny" if fix.verdict == "drop" else "allow"
        return f"ufw default {verdict} {_DEFAULT.get(fix.hook, 'incoming')}"
