"""One ufw rule as ufw holds it, and the iptables lines ufw writes for it.

:class:`UfwRule` is ufw's own rule tuple (action, protocol, ports, addresses,
direction, interfaces, log type, application names, comment) — what
``### tuple ###`` lines in user.rules, ``ufw allow …`` commands and ``ufw
status`` rows all describe. :func:`user_rules` writes the user.rules text ufw
0.36 would write for a list of them, line by line located at the command or
status row each rule came from; :mod:`.ufw_layout` loads it like ufw-init.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace

from ..model import Location
from .ufw_layout import (LIMIT_ARGS, Defaults, Line, logging_rules, prefix, rate_limiting_rules,
                         user_rules_header)

ANY4, ANY6 = "0.0.0.0/0", "::/0"
ACTIONS = ("allow", "deny", "reject", "limit")


@dataclass
class UfwRule:
    """ufw's rule tuple. Addresses are normalised strings; ``any`` ones are
    ``0.0.0.0/0`` / ``::/0`` once the family is fixed (``v6``)."""

    action: str
    protocol: str = "any"
    dport: str = "any"
    dst: str = "any"
    sport: str = "any"
    src: str = "any"
    direction: str = "in"
    forward: bool = False
    iface_in: str = ""
    iface_out: str = ""
    logtype: str = ""
    dapp: str = ""
    sapp: str = ""
    comment: str = ""
    v6: bool = False
    location: Location = field(default_factory=lambda: Location("<ufw>"))
    #: Set when the rule's ports come from an application profile the
    #: analyzer does not know: its matches are then unknown.
    unknown_app: str = ""

    def families(self, ipv6: bool = True) -> list[str]:
        """Which tables the rule goes into: an address fixes the family, a
        rule without addresses goes into both (IPv6 only when enabled)."""
        kinds = {_family(a) for a in (self.src, self.dst) if a != "any"}
        if len(kinds) > 1:
            return []
        if kinds:
            return [kinds.pop()]
        if self.protocol == "ipv6":  # IPv6-in-IPv4 exists only for IPv4
            return ["ip"]
        return ["ip", "ip6"] if ipv6 else ["ip"]

    def for_family(self, family: str) -> "UfwRule":
        anyaddr = ANY4 if family == "ip" else ANY6
        return replace(self, v6=family == "ip6",
                       src=anyaddr if self.src in ("any", ANY4, ANY6) else self.src,
                       dst=anyaddr if self.dst in ("any", ANY4, ANY6) else self.dst)

    def key(self) -> tuple:
        """What identifies the rule for ufw's duplicate check and delete:
        everything but action, log type and comment."""
        return (self.protocol, self.dport, self.dst, self.sport, self.src, self.direction,
                self.forward, self.iface_in, self.iface_out, self.dapp, self.sapp, self.v6)

    @property
    def chain_suffix(self) -> str:
        return "forward" if self.forward else "output" if self.direction == "out" else "input"

    def tuple_text(self) -> str:
        """The ``### tuple ###`` line ufw writes for this rule."""
        action = ("route:" if self.forward else "") + self.action + (f"_{self.logtype}" if self.logtype else "")
        if not self.iface_in and not self.iface_out:
            ifaces = self.direction
        elif self.iface_in and self.iface_out:
            ifaces = f"in_{self.iface_in}!out_{self.iface_out}"
        else:
            ifaces = f"{self.direction}_{self.iface_in or self.iface_out}"
        parts = [action, self.protocol, self.dport, self.dst, self.sport, self.src]
        if self.dapp or self.sapp:
            parts += [self.dapp.replace(" ", "%20") or "-", self.sapp.replace(" ", "%20") or "-"]
        parts.append(ifaces)
        text = "### tuple ### " + " ".join(parts)
        if self.comment:
            text += " comment=" + self.comment.encode().hex()
        return text


def _family(address: str) -> str:
    return "ip6" if ":" in address else "ip"


def normalize_address(text: str) -> str:
    """ufw's form of an address: ``10.0.0.1/32`` → ``10.0.0.1``, host bits
    cleared. Raises ValueError for anything that is not an address."""
    if text == "any":
        return text
    network = ipaddress.ip_network(text, strict=False)
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return str(network)


def format_rule(rule: UfwRule) -> str:
    """ufw's ``UFWRule.format_rule``: the iptables arguments before the
    protocol/log/limit expansion (``-p all``, ``-j ACCEPT_log``, ``-j LIMIT``)."""
    out = []
    if rule.iface_in:
        out.append(f"-i {rule.iface_in}")
    if rule.iface_out:
        out.append(f"-o {rule.iface_out}")
    multi = any(c in p for p in (rule.dport, rule.sport) for c in ",:")
    if rule.protocol == "any":
        out.append("-p all")
    else:
        out.append(f"-p {rule.protocol}")
        if multi:
            out.append("-m multiport")
            if rule.dport != "any" and rule.sport != "any":
                out.append(f"--dports {rule.dport} -m multiport --sports {rule.sport}")
            elif rule.dport != "any":
                out.append(f"--dports {rule.dport}")
            elif rule.sport != "any":
                out.append(f"--sports {rule.sport}")
    if rule.dst not in (ANY4, ANY6, "any"):
        out.append(f"-d {rule.dst}")
    if not multi and rule.dport != "any":
        out.append(f"--dport {rule.dport}")
    if rule.src not in (ANY4, ANY6, "any"):
        out.append(f"-s {rule.src}")
    if not multi and rule.sport != "any":
        out.append(f"--sport {rule.sport}")
    log = f"_{rule.logtype}" if rule.logtype else ""
    if rule.action == "allow":
        out.append(f"-j ACCEPT{log}")
    elif rule.action == "reject":
        out.append(f"-j REJECT{log}")
        if rule.protocol == "tcp":
            out.append("--reject-with tcp-reset")
    elif rule.action == "limit":
        out.append(f"-j LIMIT{log}")
    else:
        out.append(f"-j DROP{log}")
    if rule.dapp or rule.sapp:
        apps = []
        if rule.dapp:
            apps.append("dapp_" + rule.dapp.replace(" ", "%20"))
        if rule.sapp:
            apps.append("sapp_" + rule.sapp.replace(" ", "%20"))
        out.append(f"-m comment --comment '{','.join(apps)}'")
    return " ".join(out)


_PROTO_ALL = re.compile(r"-p all ")
_PORT = re.compile(r"port ")
_REJECT = re.compile(r"-j (REJECT(_log(-all)?)?)")
#: Matched from the start of a line (``match``, ``count=1``): searched, its
#: leading ``(.*)`` was retried from every position (quadratic: ``(x (x …``).
_LOG = re.compile(r"(.*)-j ([A-Z]+)_log(-all)?(.*)")
_LOGALL = re.compile(r"-j [A-Z]+_log-all")
_CHAIN = re.compile(r"(-A|-D) ([a-zA-Z0-9\-]+)")
_LIMIT = re.compile(r" -j LIMIT")


def expand(rule_line: str, chain_prefix: str, suffix: str) -> list[str]:
    """ufw's ``_get_rules_from_formatted``: ``-p all`` with ports becomes a
    tcp and a udp rule (REJECT over tcp with a reset), ``_log`` actions get
    their user-logging rules, LIMIT becomes the ``-m recent`` trio."""
    snippets = []
    if _PROTO_ALL.search(rule_line):
        if _PORT.search(rule_line):
            if _REJECT.search(rule_line):
                snippets.append(_PROTO_ALL.sub("-p tcp ", _REJECT.sub(
                    r"-j \1 --reject-with tcp-reset", rule_line)))
            else:
                snippets.append(_PROTO_ALL.sub("-p tcp ", rule_line))
            snippets.append(_PROTO_ALL.sub("-p udp ", rule_line))
        else:
            snippets.append(_PROTO_ALL.sub("", rule_line))
    else:
        snippets.append(rule_line)

    logging_chain = f"{chain_prefix}-user-logging-{suffix}"
    i = 0
    while i < len(snippets):
        s = snippets[i]
        if _LOG.match(s):
            policy = _LOG.sub(r"\2", s, count=1).strip().lower()
            word = {"accept": "ALLOW", "limit": "LIMIT"}.get(policy, "BLOCK")
            lstr = f'{LIMIT_ARGS} -j LOG --log-prefix "[UFW {word}] "'
            if not _LOGALL.search(s):
                lstr = "-m conntrack --ctstate NEW " + lstr
            snippets[i] = _LOG.sub(r"\1-j \2\4", s, count=1)
            snippets.insert(i, _LOG.sub(r"\1-j " + logging_chain, s, count=1))
            snippets.insert(i, _CHAIN.sub(r"\1 " + logging_chain, _LOG.sub(r"\1-j RETURN", s, count=1)))
            snippets.insert(i, _CHAIN.sub(r"\1 " + logging_chain,
                                          _LOG.sub(lambda m: m.group(1) + lstr, s, count=1)))
            i += 3
        i += 1

    i = 0
    while i < len(snippets):
        s = snippets[i]
        if _LIMIT.search(s):
            snippets[i] = _LIMIT.sub(f" -j {chain_prefix}-user-limit-accept", s)
            snippets.insert(i, _LIMIT.sub(" -m conntrack --ctstate NEW -m recent --update --seconds 30"
                                          f" --hitcount 6 -j {chain_prefix}-user-limit", s))
            snippets.insert(i, _LIMIT.sub(" -m conntrack --ctstate NEW -m recent --set", s))
            i += 2
        i += 1
    return [s.strip() for s in snippets]


def rule_lines(rule: UfwRule, family: str) -> list[str]:
    """The iptables lines of one rule in ``family``'s user chain."""
    p = prefix(family)
    chain = f"{p}-user-{rule.chain_suffix}"
    return expand(f"-A {chain} {format_rule(rule)}", p, rule.chain_suffix)


def user_rules(rules: list[UfwRule], family: str, defaults: Defaults, where: Location) -> list[Line]:
    """The user.rules (user6.rules) ufw writes for ``rules`` of ``family``,
    each rule's lines located where the rule was written."""
    lines = [Line(t, where, True) for t in user_rules_header(family)]
    lines.append(Line("### RULES ###", where, True))
    for rule in rules:
        lines.append(Line(rule.tuple_text(), rule.location))
        opaque = (f"the ports of application profile {rule.unknown_app!r} (not known here)"
                  if rule.unknown_app else "")
        for text in rule_lines(rule, family):
            lines.append(Line(text, rule.location, opaque=opaque))
    lines.append(Line("### END RULES ###", where, True))
    for text in logging_rules(family, defaults):
        lines.append(Line(text, where, True))
    for text in rate_limiting_rules(family, defaults):
        lines.append(Line(text, where, True))
    lines.append(Line("COMMIT", where, True))
    return lines
