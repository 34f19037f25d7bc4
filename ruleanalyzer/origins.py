"""Which tool wrote a rule: one small recogniser per generator (ufw,
Docker, kube-proxy, firewalld, OpenWrt fw3/fw4, Shorewall, libvirt,
fail2ban, crowdsec; the default rules every GCP firewall policy is
created with) sets :attr:`Rule.origin` and :attr:`Chain.origin`.

A tool's *stock scaffolding* — its fixed chains, the jumps into them, its
idioms (libvirt's "don't masquerade multicast" RETURNs, ufw's logging
chains, Docker's isolation stages) — gets ``generated=True``: the admin
did not write it and cannot fix it by editing rules, so the hygiene
checks (RA1xx dead rules, RA5xx structure) keep quiet about it unless
asked (``audit --include-generated``). What a user asked the tool for
(a ufw ``allow``, a published Docker port, a rule in OpenWrt's
``input_rule``) is the tool's too but not stock: ``generated=False``, and
audited like any rule. An origin a reader already set (firewalld, the
Terraform readers) is never overwritten.

    >>> from ruleanalyzer import loads
    >>> rs = loads("*filter\\n:INPUT DROP [0:0]\\n:ufw-before-input - [0:0]\\n"
    ...            ":ufw-user-input - [0:0]\\n-A INPUT -j ufw-before-input\\n"
    ...            "-A ufw-before-input -i lo -j ACCEPT\\n"
    ...            "-A ufw-user-input -p tcp --dport 22 -j ACCEPT\\nCOMMIT\\n", dialect="iptables")
    >>> recognise(rs)
    >>> [(r.chain.name, r.origin.tool, r.origin.generated) for r in rs.rules()]
    [('INPUT', 'ufw', True), ('ufw-before-input', 'ufw', True), ('ufw-user-input', 'ufw', False)]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from .model import Chain, InterfaceMatch, Origin, Rule, Ruleset

#: Check families whose findings about stock scaffolding are noise.
HYGIENE_FAMILIES = ("RA1", "RA5")


@dataclass(frozen=True)
class Recogniser:
    """One generator: ``stock`` chains are its scaffolding, ``user``
    chains hold what the user asked it for; ``idiom`` marks stock rules
    elsewhere (in base chains); ``applies`` says whether the ruleset was
    written by this tool at all (for generic chain names)."""

    tool: str
    stock: re.Pattern | None = None
    user: re.Pattern | None = None
    idiom: Callable[[Rule], bool] | None = None
    applies: Callable[[Ruleset], bool] | None = None


def _names(rule: Rule, field: str) -> tuple[str, ...]:
    out: list[str] = []
    for m in rule.matches:
        if isinstance(m, InterfaceMatch) and m.field == field:
            out += list(m.names)
    return tuple(out)


def _text(rule: Rule) -> str:
    return rule.text or str(rule)


_VIRBR = re.compile(r"\bvirbr\d+\b")
_LIBVIRT_NET = re.compile(r"-s 192\.168\.122\.0/24|saddr 192\.168\.122\.0/24")
_DOCKER_IF = re.compile(r"(?:^|\s)(?:!\s*)?-[io] (?:docker\d+|docker_gwbridge|br-[0-9a-f]{12})\b"
                        r"|[io]ifname !?=? ?\"?(?:docker\d+|br-[0-9a-f]{12})")


def _libvirt_idiom(rule: Rule) -> bool:
    text = _text(rule)
    if "virbr" not in text and "192.168.122.0/24" not in text:
        return False  # (what both patterns need: a substring test is 10x cheaper than a search)
    return bool(_VIRBR.search(text) or (_LIBVIRT_NET.search(text) and rule.chain is not None
                                        and rule.chain.kind == "nat"))


#: Docker's hairpin NAT for a published port: a container masquerading to itself.
_DOCKER_HAIRPIN = re.compile(r"-s (\S+)/32 -d \1/32 -p (?:tcp|udp) -m (?:tcp|udp) --dport \d+ -j MASQUERADE$")


def _docker_idiom(rule: Rule) -> bool:
    text = _text(rule)
    if "docker" not in text and "br-" not in text and "DOCKER" not in text and "MASQUERADE" not in text:
        return False  # (what some pattern needs: 100k rules of no tool skip the searches)
    return bool(_DOCKER_IF.search(text) or re.search(r"-j DOCKER\b|-j DOCKER-|jump DOCKER", text)
                or (rule.chain is not None and rule.chain.kind == "nat" and _DOCKER_HAIRPIN.search(text)))


def _jumps(pattern: re.Pattern) -> Callable[[Rule], bool]:
    match = pattern.match

    def jumps(rule: Rule) -> bool:  # (a plain loop: asked of every rule of no tool's chain)
        for target in rule.jump_targets():
            if match(target):
                return True
        return False
    return jumps


_SHOREWALL_MARK = re.compile(r"^(?:shorewall|logdrop|logreject|smurfs|dynamic|sfilter|blacklst)$")


def _shorewall(ruleset: Ruleset) -> bool:
    names = {c.name for c in ruleset.chains()}
    return "shorewall" in names or ({"logdrop", "logreject"} <= names) or (
        "smurfs" in names and "dynamic" in names)


def _openwrt(ruleset: Ruleset) -> bool:
    names = {c.name for c in ruleset.chains()}
    return bool(names & {"delegate_input", "input_rule", "forwarding_rule", "zone_wan_forward",
                         "zone_wan", "syn_flood"}) and any(n.startswith("zone_") for n in names)


_UFW_STOCK = re.compile(r"^ufw6?-(?!user-(?:input|output|forward)$)")
_UFW_USER = re.compile(r"^ufw6?-user-(?:input|output|forward)$")
_DOCKER_STOCK = re.compile(r"^DOCKER(?:-ISOLATION(?:-STAGE-\d)?|-USER|-INGRESS|-FORWARD|-BRIDGE|-CT"
                           r"|-INTERNAL)?$")
_KUBE = re.compile(r"^KUBE-")
_FIREWALLD_STOCK = re.compile(
    r"^(?:(?:INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING)_(?:direct|ZONES(?:_SOURCE)?)"
    r"|FORWARD_(?:IN|OUT)_ZONES(?:_SOURCE)?"
    r"|(?:IN|FWDI|FWDO|FWD|PRE|POST|OUT)_[A-Za-z0-9-]+(?:_(?:log|deny|allow|pre|post|rule))?)$")
_OPENWRT_USER = re.compile(r"^(?:input|output|forwarding|prerouting|postrouting)(?:_\w+)?_rule$")
_OPENWRT_STOCK = re.compile(r"^(?:zone_\w+|delegate_\w+|reject|syn_flood|handle_reject"
                            r"|(?:accept|drop|reject)_(?:from|to)_\w+|(?:input|output|forward)_\w+"
                            r"|dstnat\w*|srcnat\w*|helper_\w+|notrack_\w+|mangle_\w+|raw_\w+"
                            r"|MINIUPNPD(?:-POSTROUTING)?|NOTRACK|nat_reflection_\w+)$")
_SHOREWALL_USER = re.compile(r"^[A-Za-z0-9]+2[A-Za-z0-9]+$")
_SHOREWALL_STOCK = re.compile(
    r"^(?:shorewall|logdrop|logreject|logflags|reject|dynamic|smurfs|smurflog|tcpflags|sfilter"
    r"|blacklst|blacklog|Broadcast|Multicast|Invalid|NotSyn|dropBcast|dropInvalid|dropNotSyn"
    r"|allowBcast|allowInvalid|allowMcast|dropMcast|Drop|Reject|AllowICMPs|Limit|tcpre|tcfor|tcout"
    r"|tcpost|[%~].*|\w+_(?:in|out|fwd|frwd|masq|dnat|sfilter)|rfc1918|norfc1918|nosmurfs"
    r"|maclist|mac\w*|dropBcasts|\w+_(?:Drop|Reject))$")
_LIBVIRT_STOCK = re.compile(r"^LIBVIRT_(?:INP|OUT|FWO|FWI|FWX|PRT)$")
_F2B = re.compile(r"^(?:f2b-|fail2ban-)")
_CROWDSEC = re.compile(r"^(?:CROWDSEC|crowdsec)")

RECOGNISERS: tuple[Recogniser, ...] = (
    Recogniser("ufw", _UFW_STOCK, _UFW_USER, _jumps(re.compile(r"^ufw6?-"))),
    Recogniser("docker", _DOCKER_STOCK, None, _docker_idiom),
    Recogniser("kube-proxy", _KUBE, None, _jumps(_KUBE)),
    Recogniser("libvirt", _LIBVIRT_STOCK, None, _libvirt_idiom),
    Recogniser("fail2ban", _F2B, None, _jumps(_F2B)),
    Recogniser("crowdsec", _CROWDSEC, None, lambda r: "crowdsec" in _text(r).lower()),
    Recogniser("firewalld", _FIREWALLD_STOCK, None, _jumps(_FIREWALLD_STOCK),
               applies=lambda rs: any(c.name.endswith("_ZONES") or c.name.endswith("_direct")
                                      for c in rs.chains())),
    Recogniser("openwrt", _OPENWRT_STOCK, _OPENWRT_USER, _jumps(_OPENWRT_STOCK),
               applies=_openwrt),
    Recogniser("shorewall", _SHOREWALL_STOCK, _SHOREWALL_USER, _jumps(_SHOREWALL_STOCK),
               applies=_shorewall),
)


#: The rules every GCP firewall policy is created with (goto_next for IPv4
#: and IPv6, both directions); they cannot be changed or deleted.
_GCP_POLICY_DEFAULTS = frozenset({"2147483644", "2147483645", "2147483646", "2147483647"})


def _cloud_default(rule: Rule) -> Origin | None:
    table = rule.chain.table if rule.chain is not None else None
    if table is not None and table.dialect == "gcp" and rule.chain.name.startswith("hierarchy policy ") \
            and rule.ident in _GCP_POLICY_DEFAULTS:
        return Origin("gcp", f"firewall policy default rule (priority {rule.ident})", generated=True)
    return None


def recognise(ruleset: Ruleset) -> None:
    """Set the origin of every rule and chain a known tool wrote (where no
    reader set one already)."""
    active = [r for r in RECOGNISERS if r.applies is None or r.applies(ruleset)]
    fw4 = [t for t in ruleset.tables if t.name == "fw4"]
    for table in ruleset.tables:
        for chain in table.chains.values():
            tool = _chain_tool(chain, active)
            owned = None
            if table in fw4 and chain.origin is None:
                chain.origin = Origin("openwrt", f"fw4 chain {chain.name}", generated=bool(
                    chain.is_base or _OPENWRT_STOCK.match(chain.name)))
            elif tool is not None and table not in fw4:
                # one (immutable) origin for the chain and every rule of a
                # tool's chain: 100k kube-proxy rules need not make 100k
                # equal objects and strings, nor 36k chains two each
                rec, stock = tool
                owned = Origin(rec.tool, f"{rec.tool} chain {chain.name}", generated=stock)
                if chain.origin is None:
                    chain.origin = owned
            for rule in chain.rules:
                if rule.origin is not None:
                    continue
                if table in fw4:
                    rule.origin = _fw4(rule)
                elif owned is not None:
                    rule.origin = owned
                else:
                    rule.origin = _idiom(rule, active) or _cloud_default(rule)


def _chain_tool(chain: Chain, active: list[Recogniser]) -> tuple[Recogniser, bool] | None:
    """``(recogniser, stock?)`` for a chain a tool owns; None for base
    chains (shared by everyone) and chains of no known tool."""
    if chain.is_base:
        return None
    for rec in active:
        if rec.user is not None and rec.user.match(chain.name):
            return rec, False
        if rec.stock is not None and rec.stock.match(chain.name):
            return rec, True
    return None


def _idiom(rule: Rule, active: list[Recogniser]) -> Origin | None:
    for rec in active:
        if rec.idiom is not None and rec.idiom(rule):
            return Origin(rec.tool, f"{rec.tool} stock rule", generated=True)
    return None


def _fw4(rule: Rule) -> Origin:
    """OpenWrt fw4 writes its own table ``inet fw4``: rules it made carry
    ``!fw4:`` comments or sit in its fixed chains; anything else came from
    a user include."""
    comment = rule.comment or ""
    chain = rule.chain.name if rule.chain else ""
    if comment.startswith("!fw4:") or (not comment and (
            rule.chain.is_base or _OPENWRT_STOCK.match(chain))):
        return Origin("openwrt", f"fw4 {comment[5:].strip() or 'chain ' + chain}", generated=True)
    return Origin("openwrt", comment or f"user include, chain {chain}", generated=False)


def is_stock_noise(finding) -> bool:
    """Is ``finding`` a hygiene finding about a tool's stock scaffolding?"""
    origin = finding.origin
    return bool(origin and origin.generated and finding.code.startswith(HYGIENE_FAMILIES))
