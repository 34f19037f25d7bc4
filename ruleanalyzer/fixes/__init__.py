"""Fixes in the input's own language.

A check says *what* to change as a small :class:`Fix` — add a rule with
these conditions at the top of a chain, remove a rule, narrow its sources,
write a verdict instead of its action, set a policy — and one renderer per
dialect writes it the way that dialect's users change rules: iptables and
ip6tables commands, nft commands (for nft text and nft JSON alike), ufw
commands (or its before.rules lines where the ufw command line cannot say
it), AWS CLI calls for security groups and network ACLs, gcloud for GCP,
az for Azure, firewall-cmd on the zone or policy for firewalld; for
Terraform and CloudFormation the change to the resource that wrote the
rule. :func:`render` picks the renderer from the rule's (or the
chain's) table; a dialect without a renderer gets the dialect-neutral
words (:class:`Renderer`), never another dialect's syntax.

    >>> from ruleanalyzer import loads
    >>> rs = loads("*filter\\n:INPUT DROP [0:0]\\n-A INPUT -p tcp --dport 22 -j ACCEPT\\nCOMMIT\\n",
    ...            dialect="iptables")
    >>> render(Add(Spec(iif="lo"), chain=rs.tables[0].chains["INPUT"]))
    'iptables -I INPUT 1 -i lo -j ACCEPT'
    >>> rs = loads("table inet f {\\n chain input {\\n  type filter hook input priority 0; policy drop;\\n"
    ...            " }\\n}\\n", dialect="nftables")
    >>> render(Add(Spec(iif="lo"), chain=rs.tables[0].chains["input"]))
    'nft insert rule inet f input iifname "lo" accept'
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..model import Chain, Rule

#: Where a fix needs the user's own value (their networks, a free rule number).
YOUR_NETWORKS = "<your networks>"


@dataclass(frozen=True)
class Spec:
    """The conditions and verdict of a rule to write, in no dialect.
    ``icmp`` names ICMP/ICMPv6 types as :data:`ICMP_TYPES` does; ports
    are inclusive ranges; ``states`` are conntrack states."""

    verdict: str = "accept"
    family: int | None = None
    states: tuple[str, ...] = ()
    proto: str | None = None
    sport: tuple[int, int] | None = None
    dport: tuple[int, int] | None = None
    icmp: tuple[str, ...] = ()
    iif: str | None = None
    src: tuple[str, ...] = ()


@dataclass(frozen=True)
class Add:
    """Add a rule ``spec`` at the top of ``chain`` (the chain that drops
    what it should let through), or of the hook's chain when ``chain`` is
    None: ``hook`` is ``input``, ``output`` or ``forward``."""

    spec: Spec
    chain: Chain | None = None
    hook: str = "input"


@dataclass(frozen=True)
class Remove:
    """Delete ``rule``."""

    rule: Rule


@dataclass(frozen=True)
class Narrow:
    """Keep ``rule`` but only for the sources ``src``."""

    rule: Rule
    src: tuple[str, ...] = (YOUR_NETWORKS,)


@dataclass(frozen=True)
class Verdict:
    """Give ``rule``'s packets ``verdict`` instead of its action (a RETURN
    in a base chain)."""

    rule: Rule
    verdict: str


@dataclass(frozen=True)
class MaskedSyn:
    """Match SYNs with a mask that leaves the ECN bits out, in ``rule``."""

    rule: Rule


@dataclass(frozen=True)
class Policy:
    """Set the policy of the ``hook`` chain (IPv``family``) to ``verdict``;
    ``chain`` is that chain when there is one."""

    hook: str
    verdict: str
    family: int | None = None
    chain: Chain | None = None


@dataclass(frozen=True)
class Advice:
    """Words, where no command says it; ``by_dialect`` holds the phrasing
    in a dialect's own terms (its option names, its keywords)."""

    text: str
    by_dialect: dict = field(default_factory=dict, hash=False, compare=False)


Fix = Add | Remove | Narrow | Verdict | MaskedSyn | Policy | Advice

#: ICMP types a fix may name: (family, neutral name) → (type, code or None).
ICMP_TYPES = {
    (4, "frag-needed"): (3, 4),
    (6, "packet-too-big"): (2, None),
    (6, "nd-router-solicit"): (133, None),
    (6, "nd-router-advert"): (134, None),
    (6, "nd-neighbor-solicit"): (135, None),
    (6, "nd-neighbor-advert"): (136, None),
}


class Renderer:
    """Writes fixes in one dialect. The base class words them in no
    dialect; a dialect's renderer overrides what it can say in its own
    terms (one method per kind of fix). ``meta`` is the ruleset's
    :attr:`~ruleanalyzer.model.Ruleset.meta` (cloud ids, resource groups)."""

    def __init__(self, meta: dict | None = None):
        self.meta = meta or {}

    def render(self, fix: Fix) -> str:
        method = getattr(self, type(fix).__name__.lower())
        return method(fix)

    def add(self, fix: Add) -> str:
        return f"add at the top of {_chain_name(fix)}: {describe(fix.spec)}"

    def remove(self, fix: Remove) -> str:
        return "remove the rule"

    def narrow(self, fix: Narrow) -> str:
        return f"allow it only from {', '.join(fix.src)}"

    def verdict(self, fix: Verdict) -> str:
        return f"write the verdict: {fix.verdict}"

    def maskedsyn(self, fix: MaskedSyn) -> str:
        return "match SYNs with a mask that leaves the ECN bits (ECE, CWR, AE) out"

    def policy(self, fix: Policy) -> str:
        fam = f" (IPv{fix.family})" if fix.family else ""
        return f"set the {fix.hook} policy{fam} to {fix.verdict}"

    def advice(self, fix: Advice) -> str:
        return fix.text


def _chain_name(fix: Add) -> str:
    return fix.chain.name if fix.chain is not None else fix.hook


def describe(spec: Spec) -> str:
    """A spec in words: ``accept tcp from port 80 to ports 1024-65535``."""
    parts = [spec.verdict]
    if spec.states:
        parts.append("/".join(s.upper() for s in spec.states))
    if spec.family:
        parts.append(f"IPv{spec.family}")
    if spec.icmp:
        parts.append(("ICMPv6 " if spec.family == 6 else "ICMP ") + ", ".join(spec.icmp))
    elif spec.proto:
        parts.append(spec.proto)
    if spec.iif:
        parts.append(f"arriving on {spec.iif}")
    if spec.src:
        parts.append("from " + ", ".join(spec.src))
    if spec.sport:
        parts.append(f"from port {_range(spec.sport, '-')}")
    if spec.dport:
        parts.append(f"to port{'s' if spec.dport[0] != spec.dport[1] else ''} {_range(spec.dport, '-')}")
    return " ".join(parts)


def _range(ports: tuple[int, int], sep: str) -> str:
    lo, hi = ports
    return str(lo) if lo == hi else f"{lo}{sep}{hi}"


def dialect_of(fix: Fix) -> str:
    """The dialect of the table the fix is about ('' when it names none)."""
    thing = getattr(fix, "rule", None) or getattr(fix, "chain", None)
    chain = thing.chain if isinstance(thing, Rule) else thing
    table = chain.table if chain is not None else None
    return (table.dialect or "") if table is not None else ""


def renderer(dialect: str, meta: dict | None = None) -> Renderer:
    """The renderer of ``dialect`` (nft JSON uses nft's), else the neutral one."""
    from . import cloud, firewalld, iptables, nftables, ufw

    table = {"iptables": iptables.Iptables, "nftables": nftables.Nftables,
             "nft-json": nftables.Nftables, "ufw": ufw.Ufw, "firewalld": firewalld.Firewalld,
             "aws-sg": cloud.AwsSg,
             "aws-nacl": cloud.AwsNacl, "gcp": cloud.Gcp, "azure": cloud.Azure}
    return table.get(dialect, Renderer)(meta)


#: Inputs that are infrastructure code: a fix changes the resource, not the cloud.
IAC = ("terraform", "terraform-plan", "cloudformation")


def render(fix: Fix | str | None, dialect: str | None = None, meta: dict | None = None,
           default: str = "") -> str | None:
    """``fix`` written in ``dialect`` (by default the dialect of the table
    the fix is about, else ``default``: the ruleset's); plain text passes
    through."""
    if fix is None or isinstance(fix, str):
        return fix
    source = (meta or {}).get("dialect", "")
    if source in IAC and not isinstance(fix, Advice):
        from . import iac

        return (iac.CloudFormation if source == "cloudformation" else iac.Iac)(meta).render(fix)
    dialect = dialect or dialect_of(fix) or default
    if isinstance(fix, Advice):
        key = "nftables" if dialect == "nft-json" else dialect
        if key in fix.by_dialect:
            return fix.by_dialect[key]
    return renderer(dialect, meta).render(fix)


def spec_of(rule: Rule) -> Spec:
    """What ``rule`` matches and does, as a :class:`Spec` (the conditions a
    spec can say; others are left out)."""
    from ..model import PROTOCOL_NAMES, AddressMatch, InterfaceMatch, IntMatch

    kw: dict = {"verdict": "drop" if rule.action.verdict in ("drop", "reject") else "accept"}
    for m in rule.matches:
        if m.negate:
            continue
        if isinstance(m, IntMatch) and m.field == "proto" and len(m.ranges) == 1 \
                and m.ranges[0][0] == m.ranges[0][1]:
            kw["proto"] = PROTOCOL_NAMES.get(m.ranges[0][0], str(m.ranges[0][0]))
        elif isinstance(m, IntMatch) and m.field in ("sport", "dport") and len(m.ranges) == 1:
            kw[m.field] = m.ranges[0]
        elif isinstance(m, AddressMatch) and m.field == "src":
            kw["src"] = tuple(str(n) for n in m.networks)
        elif isinstance(m, InterfaceMatch) and m.field == "iif" and len(m.names) == 1:
            kw["iif"] = m.names[0]
    return Spec(**kw)
