"""RA4xx — services open to the whole internet.

Exposure is counted over sets, for every dialect (cloud ingress
included). A service (TCP port, IP version) is exposed when the public
source addresses that can **complete a handshake** with it — the SYN
surely accepted on the way in (``input``, or ``forward`` for a router or a
published container port) *and* the SYN-ACK surely accepted on the way
back out (``output`` / ``forward``, with conntrack) — cover at least
``min_share`` (default 99 %) of the public address space of that version,
counted on the BDD (model counting over the source address bits). A
blocklist, a fail2ban ban or a bogon filter leaves the share near 100 %;
an allow-list of a /24 leaves it near 0.

Only sources arriving on an interface that may face the internet count
(:mod:`ruleanalyzer.roles`): when some interface is known to be the uplink
(config, NAT rules, the host's default route, ``ppp*``/``wan*``) only
those; otherwise every interface not known to be internal, and an
exposure that holds only on a named interface of unknown role is said as
"arriving on X — if X faces the internet" (a warning). LAN→WAN
forwarding and ``! -i <uplink>`` rules are therefore never exposure.

When the sure sets fall short but the possible ones do not (an ipset
without its contents, ``recent``, ``hashlimit`` on the way), the service is
"likely exposed — depends on X" (RA403, a warning).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ..model import ACK, SYN, Log, OpaqueMatch
from ..roles import INTERNAL, INTERNET, container_link
from ..space import witness
from . import _sets as S
from .base import Check, Context, Option, Where, related_rule
from .reach import outcome

#: Port → service for administrative and database ports.
SENSITIVE_PORTS = {
    22: "SSH", 23: "Telnet", 445: "SMB", 1433: "MSSQL", 2375: "Docker API",
    2376: "Docker API (TLS)", 2379: "etcd", 3306: "MySQL", 3389: "RDP", 5432: "PostgreSQL",
    5900: "VNC", 5984: "CouchDB", 6379: "Redis", 9042: "Cassandra", 9200: "Elasticsearch",
    10250: "kubelet", 11211: "memcached", 27017: "MongoDB",
}
#: Everything that is not public (RFC 6890 special-purpose ranges): this
#: network, private, CGNAT, loopback, link-local, IETF assignments,
#: documentation, 6to4 relay, benchmarking, multicast, reserved, broadcast.
NON_PUBLIC_V4 = ("0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
                 "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
                 "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4")
#: Global unicast IPv6, less its special-purpose and documentation blocks.
PUBLIC_V6 = ("2000::/3",)
NON_PUBLIC_V6 = ("2001::/23", "2001:db8::/32", "2002::/16", "3fff::/20")
#: Share of the public address space above which a service counts as open to all.
MIN_SHARE = 0.99
#: Ports probed to tell "every port" (allow-everything) from a port list.
PROBE_PORTS = (1, 7, 1000, 22222, 40000, 65535)


def _for_the_host(ctx: Context, reach):
    """What arrives on input that may be for the host itself. Without the
    host's addresses (a snapshot), any destination may be — but for the
    address a DNAT translates to, which the analyzer takes for another
    host (the DNAT turns the packet into a forwarded one): a packet the
    DNAT leaves alone, addressed there already, is that host's, not a
    witness of this one's exposure (``Reachability.dnat_targets_met``)."""
    node = reach.arriving.node
    targets = reach.dnat_targets_met
    host = getattr(ctx.ruleset, "host", None)
    if targets is None or (host is not None and {"addresses", "routes4", "routes6"} & host.known):
        return node
    return node & ~targets


def public_sources(sp, family: int, field: str = "src"):
    """Packets whose ``field`` (source by default) is a public address."""
    if family == 4:  # an IPv4 address is the low 32 bits; the upper 96 are zero
        return sp.family(4) & sp.prefix(field, 0, 96) & ~S.networks(sp, field, *NON_PUBLIC_V4)
    return sp.family(6) & S.networks(sp, field, *PUBLIC_V6) & ~S.networks(sp, field, *NON_PUBLIC_V6)


class _Path:
    """One (hook, family): the handshakes public sources can complete,
    projected onto (family, source, input interface, port), surely and
    possibly; and how the interfaces' roles weigh."""

    def __init__(self, ctx: Context, hook: str, family: int, reach, min_share: float = MIN_SHARE):
        self.ctx, self.hook, self.family, self.reach = ctx, hook, family, reach
        self.min_share = min_share
        sp = self.sp = reach.space
        # (Forwarded packets include those addressed to the host that a
        # DNAT sent on: not only what arrives for the forward path.)
        arriving = _for_the_host(ctx, reach) if hook == "input" else sp.true
        syn = S.tcp_flags(sp, SYN) & S.state_is(sp, "new") & arriving & sp.family(family)
        host = getattr(ctx.ruleset, "host", None)
        if host is not None and family == 4 and "routes4" in host.known:
            # TCP takes only packets to the host itself (tcp_v4_rcv drops
            # broadcast and multicast): no handshake, and no witness, there.
            from ..hostrules import typed_networks

            special = typed_networks(host, 4, frozenset({"broadcast", "multicast"}))
            if special:
                syn &= ~S.networks(sp, "dst", *map(str, special))
        if hook == "forward" and "ct_status:dnat" in sp.bdd.vars:
            # From the internet only public destinations are routed to us —
            # and none behind a NAT router (it masquerades because what is
            # behind it is private) — unless a DNAT (a port forward, a
            # published container port) translated them.
            routed = sp.false if _masquerades(ctx.ruleset) else public_sources(sp, family, "dst")
            # (a container or VM bridge has a private NATed network behind it)
            bridges = [i for i, label in enumerate(sp.spec("oif").names) if container_link(label)]
            routed &= ~sp.one_of("oif", bridges)
            syn &= sp.bdd.var("ct_status:dnat") | routed
        # The accepted SYNs (surely, possibly) are met only with small sets
        # (:meth:`syns`) and projected: never made whole (past kube-proxy's
        # DNATs ~700k nodes, and as much again to project).
        self._syn = syn
        back = ctx.reach("output", family) if hook == "input" else reach
        self.keep = S.field_vars(sp, "family") + S.field_vars(sp, "src") + S.field_vars(sp, "iif") \
            + S.field_vars(sp, "dport")
        # The handshake's last leg: the client's ACK (ESTABLISHED once the
        # SYN-ACK went out) comes back the way the SYN came; a ban chain
        # that a SYN-only accept skips still takes it.
        names = sp.spec("ct_direction").names
        ack = (S.tcp_flags(sp, ACK) & S.state_is(sp, "established") & arriving & sp.family(family)
               & sp.eq("ct_direction", names.index("original")))
        ack_l = reach.accepted.meet("lower", ack, self._others())
        ack_u = reach.accepted.meet("upper", ack, self._others())
        if back is None:
            rep_l = rep_u = sp.true
        else:
            synack = (S.tcp_flags(sp, SYN | ACK) & S.state_is(sp, "established")
                      & sp.eq("ct_direction", names.index("reply")) & back.arriving.node)
            rep_l = self._as_request(back.accepted, "lower", synack)
            rep_u = self._as_request(back.accepted, "upper", synack)
        syn_l = reach.accepted.meet("lower", syn, self._others())
        self.done_l = syn_l & rep_l & ack_l
        self.done_u = reach.accepted.meet("upper", syn, self._others(), known=syn_l) & rep_u & ack_u
        self.public = public_sources(sp, family)
        self.src_vars = S.field_vars(sp, "src")
        self.public_count = self._count(self.public)

    def syns(self, sure: bool, node):
        """The accepted SYNs (surely, else possibly) met with ``node``."""
        return self.reach.accepted.meet("lower" if sure else "upper", self._syn & node)

    def _others(self, keep=None) -> list[str]:
        """The variables a projection onto ``keep`` (default :attr:`keep`) drops."""
        keep = set(keep or self.keep)
        return [v for v in self.sp.layout.variables() if v not in keep]

    def _project(self, node, keep=None):
        return self.sp.exist(self._others(keep), node)

    def _as_request(self, bounds, side: str, replies):
        """Replies (server → client) of the set ``bounds.<side>``, met with
        ``replies``, as the requests they answer: the client's address as
        source, the server's port as destination port, the interface the
        reply leaves by as the one the request came in on."""
        sp = self.sp
        fields = (("dst", "src"), ("sport", "dport"), ("oif", "iif"))
        keep = S.field_vars(sp, "family") + [v for a, _ in fields for v in S.field_vars(sp, a)]
        node = bounds.meet(side, replies, self._others(keep))
        renames = {}
        for a, b in fields:
            renames.update(zip(S.field_vars(sp, a), S.field_vars(sp, b)))
        return sp.bdd.let(renames, node)

    def _count(self, node) -> float:
        src_only = self._project(node, self.src_vars)
        return float(self.sp.bdd.count(src_only, nvars=len(self.src_vars)))

    def share(self, node) -> float:
        """Share of this family's public sources in ``node`` (projected)."""
        if node == self.sp.false or not self.public_count:
            return 0.0
        return self._count(node & self.public) / self.public_count

    def classes(self) -> list[tuple[int, str, bool]]:
        """``(code, label, conditional)`` of the input-interface classes whose
        sources count: the uplinks when known, else every class not known
        internal (conditional: a named interface of unknown role)."""
        labels = self.sp.spec("iif").names
        roles = self.ctx.roles
        trusted = set(self.ctx.trusted_interfaces)
        role = {label: (INTERNAL if label in trusted else roles.role(label) if label != "*" else None)
                for label in labels}
        uplinks = [i for i, label in enumerate(labels) if role[label] == INTERNET]
        if uplinks:
            return [(i, labels[i], False) for i in uplinks]
        unknown = [(i, label, label != "*") for i, label in enumerate(labels) if role[label] is None]
        # An author who filters some named interfaces and lets every other
        # one accept everything shows which face the internet: the filtered
        # ones (still said with the caveat — a reading, not a fact).
        star = labels.index("*")
        if "_classes" not in self.__dict__:
            closed = []
            if role["*"] is None and _allows_everything(self, star, self.min_share, possibly=True):
                closed = [c for c in unknown
                          if c[2] and not _allows_everything(self, c[0], self.min_share, possibly=True)]
            self.__dict__["_classes"] = closed or unknown
        return self.__dict__["_classes"]

    def at(self, node, code: int, port: int | None = None):
        sp = self.sp
        node = node & sp.eq("iif", code)
        if port is not None:
            node &= sp.eq("dport", port)
        return node


def _masquerades(ruleset) -> bool:
    return bool(ruleset.nat_kinds() & {"snat", "masquerade"})


def _analysis(ctx: Context, min_share: float) -> list[_Path]:
    key = ("_exposure_paths", min_share)
    if key not in ctx.__dict__:
        paths = []
        for hook in ("input", "forward"):
            if hook not in ctx.hooks():
                continue
            for family in ctx.families():
                if not any(c.kind == "filter" for c in ctx.base_chains(hook, family)):
                    continue  # no filter chain on this path: a nat-only file says nothing of filtering
                reach = ctx.reach(hook, family)
                if reach is None:
                    continue
                if hook == "forward" and not forwards(ctx, family, reach):
                    continue  # nothing says this host routes: a default FORWARD policy is not a router
                paths.append(_Path(ctx, hook, family, reach, min_share))
        ctx.__dict__[key] = paths
    return ctx.__dict__[key]


#: sysctls that say whether a host forwards, per IP version.
FORWARDING_SYSCTLS = {4: "net.ipv4.ip_forward", 6: "net.ipv6.conf.all.forwarding"}


def forwards(ctx: Context, family: int, reach=None) -> bool:
    """Does this host route IPv``family`` packets? The snapshot's sysctl
    says so outright; otherwise a NAT rule that sends packets on or
    translates their source (not a REDIRECT, which delivers them to the
    host itself: port 80 to a local app on 3000), or a rule someone wrote
    (not a tool's stock scaffolding, not a default policy) that accepts new
    forwarded connections, says the host is a router."""
    host = getattr(ctx.ruleset, "host", None)
    value = (getattr(host, "sysctls", None) or {}).get(FORWARDING_SYSCTLS[family])
    if value is not None:
        return value.strip() == "1"
    if ctx.ruleset.nat_kinds() - {"redirect"}:
        return True
    reach = reach or ctx.reach("forward", family)
    if reach is None:
        return False
    sp = reach.space
    new = S.state_is(sp, "new") & reach.arriving.node
    return any(outcome(r) == "accept" and not r.implicit and not (r.origin and r.origin.generated)
               and not _zone_setting(r) and reach._records[r].meets(sp, new) for r in reach.rules())


def _zone_setting(rule) -> bool:
    """A firewalld zone's target or intra-zone forwarding: firewalld turns
    routing on only for masquerade (a NAT rule, which counts by itself), so
    a zone that would accept forwarded packets does not make a router. Its
    direct rules are the user's own iptables and do count."""
    o = rule.origin
    return o is not None and o.tool == "firewalld" and not o.text.startswith("direct rule")


def _accepting_rules(reach, packets) -> list:
    """Accepting rules (user rules first) whose matched packets meet ``packets``."""
    sp = reach.space
    accepting = reach.__dict__.get("_accepting")
    if accepting is None:
        accepting = reach.__dict__["_accepting"] = [
            (r, reach._records[r]) for r in reach.rules() if outcome(r) == "accept"]
    rules = [r for r, rec in accepting
             if not sp.disjoint(rec.match_u, packets) and rec.meets(sp, packets)]
    rules = [r for r in rules if not r.implicit] or rules
    # A bare ACCEPT in a helper chain (ufw-user-limit-accept) says little:
    # name the rule that sent the packets there.
    return [_caller(reach, r, packets) if not r.matches and r.chain is not None and not r.chain.hook
            else r for r in rules]


def _main_rule(path: "_Path", rules, exposed):
    """The accepting rule that admits most of the exposed sources (at least
    half): a rule for one /24 that happens to meet them is not the cause
    when a policy or a later rule admits the rest."""
    whole = path.share(path._project(exposed))
    for rule in rules[:25]:
        taken = path.reach._records[rule].column(2) & exposed
        if whole and path.share(path._project(taken)) >= whole / 2:
            return rule
    return None


def _caller(reach, rule, packets):
    for caller in reach._chain_callers().get(id(rule.chain), ()):
        if reach._records[caller].meets(reach.space, packets):
            return caller
    return rule


#: Services a headline names before it counts the rest (all are in the details).
HEADLINE_SERVICES = 2


@dataclass(frozen=True)
class Service:
    """One exposed service as a finding names it: ``SSH (22/tcp, IPv4,
    forwarded, arriving on eth1)``."""

    name: str
    port: int
    versions: str  # "IPv4", "IPv6" or "IPv4 and IPv6"
    forwarded: bool = False
    via: str = ""  # the interfaces, when the exposure holds only there
    share: str = ""  # "97.50% of public sources", when not (nearly) all

    def qualifiers(self) -> list[str]:
        return [self.versions, *(["forwarded"] if self.forwarded else []),
                *([f"arriving on {self.via}"] if self.via else []), *([self.share] if self.share else [])]

    def named(self, leave_out=()) -> str:
        return f"{self.name} ({', '.join([f'{self.port}/tcp'] + [q for q in self.qualifiers() if q not in leave_out])})"

    def __str__(self) -> str:
        return self.named()


def _services(services: list[Service]) -> tuple[str, list[str]]:
    """The services of one exposure for a headline, and the details: what
    they all share said once, a couple named, the rest counted and every
    one listed below.

    >>> _services([Service("SSH", 22, "IPv4")])
    ('SSH (22/tcp, IPv4)', [])
    >>> _services([Service(f"S{i}", i, "IPv6", via="eth1") for i in range(5)])[0]
    'S0 (0/tcp), S1 (1/tcp) and 3 more services (all IPv6, arriving on eth1)'
    >>> _services([Service("SSH", 22, "IPv4"), Service("RDP", 3389, "IPv6")])[0]
    'SSH (22/tcp, IPv4), RDP (3389/tcp, IPv6)'
    """
    if len(services) == 1:
        return str(services[0]), []
    common = [q for q in services[0].qualifiers() if all(q in s.qualifiers() for s in services[1:])]
    names = [s.named(common) for s in services]
    cut = len(names) > HEADLINE_SERVICES + 1
    head = (", ".join(names[:HEADLINE_SERVICES]) + f" and {len(names) - HEADLINE_SERVICES} more services"
            if cut else ", ".join(names))
    return (head + (f" (all {', '.join(common)})" if common else ""),
            ["every service: " + ", ".join(map(str, services))] if cut else [])


def _caveat(services: list[Service]) -> str:
    """What an exposure on interfaces of unknown role depends on: the one
    interface by name, else "those interfaces".

    >>> _caveat([Service("SSH", 22, "IPv4", via="eth1"), Service("RDP", 3389, "IPv4", via="eth1")])
    'if eth1 faces the internet'
    >>> _caveat([Service("SSH", 22, "IPv4", via="eth0 or eth1")])
    'if those interfaces face the internet'
    """
    vias = {s.via for s in services}
    one = vias.pop() if len(vias) == 1 else ""
    if one and " " not in one:
        return f"if {one} faces the internet"
    return "if those interfaces face the internet"


def _both_versions(services: list[Service]) -> list[Service]:
    """``SSH (22/tcp, IPv4)`` and ``SSH (22/tcp, IPv6)`` told as one
    ``SSH (22/tcp, IPv4 and IPv6)``.

    >>> [str(s) for s in _both_versions([Service("SSH", 22, "IPv4"), Service("RDP", 3389, "IPv4"),
    ...                                  Service("SSH", 22, "IPv6")])]
    ['SSH (22/tcp, IPv4 and IPv6)', 'RDP (3389/tcp, IPv4)']
    """
    out = []
    for s in services:
        if s.versions == "IPv6" and replace(s, versions="IPv4") in services:
            continue
        both = s.versions == "IPv4" and replace(s, versions="IPv6") in services
        out.append(replace(s, versions="IPv4 and IPv6") if both else s)
    return out


def _written_at(anchor):
    """The grouping key of an exposure: the line a rule was written on, so
    one written rule that a tool expands per IP version (``ufw allow 22/tcp``
    into ufw-user-input and ufw6-user-input, an ``inet`` rule) is one
    finding naming both versions; a policy is its chain."""
    loc = getattr(anchor, "location", None)
    if hasattr(anchor, "action") and loc is not None and getattr(loc, "line", None):
        return (getattr(loc, "file", None), loc.line, getattr(loc, "column", None))
    return id(anchor)


def _policy_chain(ctx: Context, hook: str, family: int):
    return next((c for c in ctx.base_chains(hook, family)
                 if (c.policy or "accept") == "accept" and c.kind == "filter"), None)


def locate(finding, ctx: Context):
    """Every finding of this family names a place: the rule, the policy
    line, or (when the model has neither) the input file."""
    w = finding.where
    if w is None or not w.file or not (w.line or w.path):
        source = ctx.ruleset.sources[0] if ctx.ruleset.sources else None
        finding.where = Where(w.file if w and w.file else source, (w.line if w else 0) or 1, 1,
                              w.path if w else None, *(
                                  (w.table, w.family, w.chain, w.index, w.text, w.ident) if w else ()))
    return finding


def _allows_everything(path: _Path, code: int, min_share: float, possibly: bool = False) -> bool:
    """Every public source may open a TCP connection to every probed port
    on this interface class, and send UDP to them (surely, or ``possibly``)."""
    sp = path.sp
    key = ("_udp", possibly)  # the same for every class and port: met once per path
    if key not in path.__dict__:
        path.__dict__[key] = path.reach.accepted.meet(
            "upper" if possibly else "lower",
            sp.eq("proto", 17) & S.state_is(sp, "new") & _for_the_host(path.ctx, path.reach), path._others())
    udp = path.__dict__[key]
    done = path.done_u if possibly else path.done_l
    for port in PROBE_PORTS:
        if path.share(path.at(done, code, port)) < min_share:
            return False
        if path.share(path.at(udp, code, port)) < min_share:
            return False
    return True


class _ExposureCheck(Check):
    options = {
        "ports": Option(SENSITIVE_PORTS, "TCP ports (number → service name, or a list of numbers) "
                                         "that must not be public", kind="ports"),
        "trusted_interfaces": Option(["lo"], "interfaces whose traffic is never internet traffic"),
        "min_share": Option(MIN_SHARE, "share of the public address space (per IP version) that "
                                       "counts as the whole internet", kind="share"),
    }

    def paths(self, ctx: Context) -> list[_Path]:
        ctx.trusted_interfaces = list(self.settings.get("trusted_interfaces", ["lo"]))
        return _analysis(ctx, float(self.settings["min_share"]))

    def hits(self, ctx: Context, sure: bool):
        """``(path, service, conditional, exposed SYNs)`` per sensitive port
        whose handshake sources reach ``min_share`` surely (``sure``) or
        only possibly; ``conditional``: only on interfaces of unknown role."""
        ports = {int(p): str(n) for p, n in dict(self.settings["ports"]).items()}
        min_share = float(self.settings["min_share"])
        for path in self.paths(ctx):
            classes = [c for c in path.classes() if not _allows_everything(path, c[0], min_share)]
            for port, service in sorted(ports.items()):
                found, exposed = [], path.sp.false
                for code, label, conditional in classes:
                    done = path.at(path.done_l, code, port)
                    share = path.share(done)
                    if not sure:
                        if share >= min_share:
                            continue  # surely exposed: RA401
                        done = path.at(path.done_u, code, port)
                        share = path.share(done)
                    if share < min_share:
                        continue
                    found.append((label, conditional, share))
                    exposed |= path.syns(sure, path.at(done & path.public, code, port))
                if not found:
                    continue
                found = [_filtered_elsewhere(path, classes, port, min_share, *f) for f in found]
                conditional = all(c for _, c, _ in found)
                named = sorted((label for label, c, _ in found if c), key=lambda x: not x.startswith("interfaces other"))
                named = named if conditional else []
                via = " or ".join(named[:4]) + (f" or {len(named) - 4} more" if len(named) > 4 else "")
                least = min(share for _, _, share in found)
                yield path, Service(service, port, f"IPv{path.family}", path.hook == "forward", via,
                                    f"{least:.2%} of public sources" if sure and least < 0.99995 else ""), \
                    conditional, exposed


def _filtered_elsewhere(path: _Path, classes, port: int, min_share: float, label: str, conditional: bool,
                        share: float):
    """The catch-all class (interfaces the ruleset never names) is only
    conditionally exposed when the ruleset keeps the port from the whole
    internet, even possibly, on a named interface of unknown role: an author who filters ``vlan110``
    and leaves the rest to an ACCEPT policy shows which interface faces the
    internet. Told as "arriving on interfaces other than vlan110"."""
    if label != "*" or conditional:
        return label, conditional, share
    closed = [other for code, other, c in classes
              if c and path.share(path.at(path.done_u, code, port)) < min_share]
    if not closed:
        return label, conditional, share
    return f"interfaces other than {', '.join(closed[:3])}", True, share


class AdminPortExposed(_ExposureCheck):
    """An administrative or database port accepts connections from any public address."""

    code = "RA401"
    name = "admin-port-exposed"
    summary = "Administrative or database port open to the whole internet"
    rationale = (
        "SSH, RDP, VNC, database and cache ports open to every address are found by internet "
        "scanners within minutes and brute-forced or exploited (Redis, memcached, Docker and "
        "Elasticsearch have no authentication by default). Restrict the source to the "
        "networks that need access, or put the service behind a VPN or bastion. Counted over "
        "sets: the public sources that can complete a handshake (SYN in, SYN-ACK out) cover "
        "nearly all (min_share) of the public address space; a blocklist or fail2ban ban does "
        "not hide it, an allow-list does not trigger it. Without the host's addresses (a host "
        "snapshot) a connection to any address counts as one to the host, but for the "
        "addresses a DNAT sends connections to: those are other hosts'.")
    bad = ("*filter\n:INPUT DROP [0:0]\n-A INPUT -m conntrack --ctstate ESTABLISHED -j ACCEPT\n"
           "-A INPUT -s 203.0.113.66 -j DROP\n"
           "# expect: RA401\n-A INPUT -p tcp --dport 3000:4000 -j ACCEPT\nCOMMIT\n")
    good = ("*filter\n:INPUT DROP [0:0]\n-A INPUT -m conntrack --ctstate ESTABLISHED -j ACCEPT\n"
            "-A INPUT -s 192.0.2.0/24 -p tcp --dport 3000:4000 -j ACCEPT\nCOMMIT\n")
    severity = "error"

    def run(self, ctx: Context):
        groups: dict[int, list] = {}  # anchor id -> [anchor, labels, witness, others, conditional]
        for path, text, conditional, exposed in self.hits(ctx, sure=True):
            rules = _accepting_rules(path.reach, exposed)
            anchor = _main_rule(path, rules, exposed) or _policy_chain(ctx, path.hook, path.family)
            entry = groups.setdefault(_written_at(anchor), [anchor, [], None, rules[1:], True])
            entry[2] = entry[2] or (path.sp.wrap(exposed), path.hook)
            entry[4] = entry[4] and conditional
            if text not in entry[1]:
                entry[1].append(text)
        for anchor, labels, (example, hook), others, conditional in groups.values():
            w = witness(example, hook)
            where = {"rule": anchor} if hasattr(anchor, "action") else {"chain": anchor}
            caveat = f" — {_caveat(labels)}" if conditional else ""
            named, every = _services(_both_versions(labels))
            yield locate(self.finding(
                f"open to the whole internet: {named}{caveat}",
                details=["any public address can complete a connection (SYN in, SYN-ACK out)", *every],
                witness=w, related=[related_rule(r, "also admits it") for r in others[:5]],
                fix="restrict the source (-s / ip saddr) to the networks that need it",
                severity="warning" if conditional else None, **where), ctx)


class AllowEverything(_ExposureCheck):
    """Every public address may open a connection to every port."""

    code = "RA402"
    name = "allow-everything"
    summary = "Every connection from the internet is accepted (allow-all rule or ACCEPT policy)"
    rationale = (
        "A rule that accepts every protocol and port from anywhere (`-A INPUT -j ACCEPT`, an "
        "ACCEPT policy with nothing that drops, AWS `IpProtocol -1` from 0.0.0.0/0, GCP `all`, "
        "Azure `*`) makes every service the host runs public, including ones started later "
        "or listening by accident. It is the loudest exposure: allow the services you mean, "
        "drop the rest.")
    bad = ("*filter\n# expect: RA402\n:INPUT ACCEPT [0:0]\n"
           "-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n")
    good = ("*filter\n:INPUT DROP [0:0]\n-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n"
            "-A INPUT -p tcp --dport 443 -j ACCEPT\nCOMMIT\n")
    severity = "error"

    def run(self, ctx: Context):
        min_share = float(self.settings["min_share"])
        groups: dict[int, list] = {}  # anchor id -> [anchor, labels, witness, conditional]
        for path in self.paths(ctx):
            if not any(c.kind == "filter" for c in ctx.base_chains(path.hook, path.family)):
                continue  # no filter table at all: a nat-only file says nothing about filtering
            for code, label, conditional in path.classes():
                if not _allows_everything(path, code, min_share):
                    continue
                sp = path.sp
                probes = [path.syns(True, path.at(path.public, code, p)) for p in PROBE_PORTS]
                # (the probes are valid packets: the rule's raw matched set meets them
                # as its valid part does)
                records = path.reach._records
                anchor = next((r for r in path.reach.rules() if outcome(r) == "accept" and all(
                    records[r].meets(sp, p, column=2) for p in probes)),
                    None) or _policy_chain(ctx, path.hook, path.family)
                entry = groups.setdefault(id(anchor), [anchor, [], None, True, path.hook])
                entry[2] = entry[2] or sp.wrap(probes[-1])
                entry[3] = entry[3] and conditional
                text = f"IPv{path.family}" + (f" arriving on {label}" if conditional else "")
                if text not in entry[1]:
                    entry[1].append(text)
        # every interface of a version says it all: its named ones add nothing
        whole = {(hook, x) for _, labels, _, _, hook in groups.values() for x in labels if " arriving on " not in x}
        for anchor, labels, example, conditional, hook in groups.values():
            labels = [x for x in labels if (hook, x.split(" arriving on ")[0]) not in whole or " arriving on " not in x]
            if not labels:
                continue
            w = witness(example, hook)
            where = {"rule": anchor} if hasattr(anchor, "action") else {"chain": anchor}
            what = ("accepted ({0}): any public address can reach every TCP and UDP port" if hook == "input"
                    else "forwarded ({0}): any public address can reach every TCP and UDP port of the "
                         "hosts this one routes to")
            yield locate(self.finding(
                f"every connection from the internet is {what.format(', '.join(labels))} (e.g. {w.describe()})"
                + (" — if those interfaces face the internet" if conditional else ""),
                witness=w, severity="warning" if conditional else None,
                fix=f"accept only the services you run, then drop the rest (a DROP {hook} policy)",
                **where), ctx)


class LikelyExposed(_ExposureCheck):
    """A sensitive port is open to the whole internet unless an undecidable match says otherwise."""

    code = "RA403"
    name = "admin-port-likely-exposed"
    summary = "Administrative or database port likely open to the internet (depends on a set, rate or list)"
    rationale = (
        "The port would be open to every public address, but a match the ruleset alone cannot "
        "decide stands in the way — an ipset whose contents are elsewhere, `recent`, "
        "`hashlimit`, a country list. Whether the service is really public depends on it: check "
        "that the set or limit holds what you think.")
    bad = ("*filter\n:INPUT DROP [0:0]\n-A INPUT -m conntrack --ctstate ESTABLISHED -j ACCEPT\n"
           "-A INPUT -m set --match-set banned src -j DROP\n"
           "# expect: RA403\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n")
    good = ("*filter\n:INPUT DROP [0:0]\n-A INPUT -m conntrack --ctstate ESTABLISHED -j ACCEPT\n"
            "-A INPUT -m set --match-set admins src -p tcp --dport 22 -j ACCEPT\nCOMMIT\n")
    severity = "warning"

    #: How the finding opens, and its fix.
    lead = "likely open to the whole internet"
    #: Said also where the configuration leaves the port open (every sensitive port).
    open_port_too = False
    advice = "make sure the set/limit holds what you expect, or restrict the source"

    def _reports(self, unsure: list) -> bool:
        """Only "accept if the source is in this set" (an allow-list), or
        values the configuration leaves open (which port, which source —
        RA404's): nothing makes the whole internet likely."""
        return not (unsure and all(_allow_list(r) or _unconfigured(r) for r in unsure))

    def run(self, ctx: Context):
        groups: dict[tuple, list] = {}
        for path, text, conditional, exposed in self.hits(ctx, sure=False):
            unsure = _undecided_rules(path.reach, exposed)
            if not self._reports(unsure):
                continue
            unset = [r for r in unsure if _unconfigured(r)]
            rules = _accepting_rules(path.reach, exposed)
            anchor = (rules[0] if rules else unsure[0] if unsure
                      else _policy_chain(ctx, path.hook, path.family))
            depends = tuple(dict.fromkeys(_reason(r) for r in unsure)) or ("an undecidable match",)
            entry = groups.setdefault((id(anchor), depends), [anchor, [], None, unsure, True, set(), False])
            entry[2] = entry[2] or (path.sp.wrap(exposed), path.hook)
            entry[4] = entry[4] and conditional
            entry[5].add(text.port)
            entry[6] = entry[6] or bool(unset)
            if text not in entry[1]:
                entry[1].append(text)
        every = len(dict(self.settings["ports"]))
        for (_, depends), (anchor, labels, (example, hook), unsure, conditional, ports, unset) in groups.items():
            if unset and len(ports) >= every and not self.open_port_too:
                continue  # the configuration leaves the port open too: not a statement about any
            w = witness(example, hook)
            where = {"rule": anchor} if hasattr(anchor, "action") else {"chain": anchor}
            message, details = self._message(_both_versions(labels), depends, w, conditional, unsure)
            yield locate(self.finding(
                message, details=details,
                witness=w, related=[related_rule(r, "decides it, undecidably") for r in unsure[:5]
                                    if r is not anchor],
                fix=self.advice, **where), ctx)

    def _message(self, labels: list[Service], depends: tuple, w, conditional: bool,
                 unsure: list) -> tuple[str, list]:
        """The headline names the services and the first doubt, counting
        the others; every doubt and the example go to the details."""
        named, every = _services(labels)
        more = len(depends) - 1
        return (f"{self.lead}: {named} — depends on {depends[0]}"
                + (f" and {more} more" if more else "")
                + (f" — {_caveat(labels)}" if conditional else "")), [
            *(["depends on: " + ", ".join(depends)] if more else []),
            f"e.g. {w.describe()} is accepted unless it does", *every]


class ExposureDependsOnConfiguration(LikelyExposed):
    """A sensitive port is open to the internet or not depending on a value
    the configuration does not give (Terraform variable, CloudFormation parameter)."""

    code = "RA404"
    name = "exposure-depends-on-configuration"
    summary = ("Administrative or database port open to the internet depending on a value the "
               "configuration leaves open (a Terraform variable, a CloudFormation parameter)")
    rationale = (
        "The rule lets the port in from a source (or on a port) the file does not fix: a "
        "Terraform variable without a value, a CloudFormation parameter without a default, an "
        "attribute known only after apply. Whether the service is public is decided by whoever "
        "supplies the value — a reviewer should know which value that is.")
    bad = ('variable "admin_cidr" {}\nresource "aws_security_group" "admin" {\n'
           '  # expect: RA404\n  ingress {\n    from_port = 22\n    to_port = 22\n'
           '    protocol = "tcp"\n    cidr_blocks = [var.admin_cidr]\n  }\n}\n')
    good = ('variable "admin_cidr" {\n  default = "198.51.100.0/24"\n}\n'
            'resource "aws_security_group" "admin" {\n  ingress {\n    from_port = 22\n'
            '    to_port = 22\n    protocol = "tcp"\n    cidr_blocks = [var.admin_cidr]\n  }\n}\n')
    example_dialect = "terraform"
    severity = "info"
    lead = "may be open to the whole internet"
    advice = "give the value (a default, a .tfvars) or check what the pipeline supplies; restrict the source"

    open_port_too = True

    def _message(self, labels: list[Service], depends: tuple, w, conditional: bool,
                 unsure: list) -> tuple[str, list]:
        """The headline names the first service and the first value left
        open (its expression only, a long one cut), counting the others;
        the other doubts, the example, the interfaces, every service and
        every value go to the details."""
        opened = [m for r in unsure if _unconfigured(r) for m in _opaque(r.matches)
                  if m.configuration == "value"]
        # a value someone gives (a variable, a parameter) before one computed at apply time
        opened.sort(key=lambda m: not any(k in m.reason for k in ("no value given", "without a default")))
        values = list(dict.fromkeys(_open_value(m) for m in opened))
        more, others = len(values) - 1, len(labels) - 1
        head = str(labels[0]) + (f" and {others} more service{'s' * (others > 1)}" if others else "")
        head += f" — depends on {values[0]}" + (f" and {more} more value{'s' * (more > 1)}" if more else "")
        reasons = dict.fromkeys(m.reason.removeprefix("depends on ") for m in opened)
        return f"{self.lead}: {head}", [
            "depends on: " + ", ".join(depends),
            *([f"values left open: {', '.join(reasons)}"] if more or "…" in values[0] else []),
            f"e.g. {w.describe()} is accepted unless it does",
            *([_caveat(labels)] if conditional else []),
            *(["every service: " + ", ".join(map(str, labels))] if others else [])]

    def _reports(self, unsure: list) -> bool:
        """Doubts that are only allow-lists and values the configuration
        leaves open, some of them values someone still gives (a variable, a
        parameter, a file the configuration reads) — not only values
        computed at apply time from other resources (a VPC's CIDR is
        private by definition: terragoat)."""
        unset = [r for r in unsure if _unconfigured(r)]
        return bool(unset) and all(_allow_list(r) or r in unset for r in unsure) \
            and not all(_computed(r) for r in unset)


#: The longest expression a headline quotes whole.
HEADLINE_EXPRESSION = 48


def _open_value(match) -> str:
    """The expression of a value the configuration leaves open, as a
    headline quotes it: ```var.admin_cidr``` of "depends on `var.admin_cidr`
    (no value given)"; a long one cut.

    >>> from ruleanalyzer.model import OpaqueMatch
    >>> _open_value(OpaqueMatch(reason="depends on `var.cidr` (no value given)", configuration="value"))
    '`var.cidr`'
    """
    reason = match.reason or match.text or ""
    found = re.search(r"`[^`]+`", reason)
    text = found.group(0) if found else reason.removeprefix("depends on ")
    if len(text) > HEADLINE_EXPRESSION:
        text = text[:HEADLINE_EXPRESSION - 2].rstrip("…") + "…" + ("`" if text.startswith("`") else "")
    return text


def _undecided_rules(reach, packets) -> list:
    """Rules with an undecidable match that may take some of ``packets``."""
    sp = reach.space
    unsure = reach.__dict__.get("_unsure")
    if unsure is None:
        unsure = reach.__dict__["_unsure"] = [
            (r, rec, rec.match_u & ~rec.match_l) for r in reach.rules()
            for rec in (reach._records[r],) if rec.match_l != rec.match_u]
    return [r for r, rec, doubt in unsure if not isinstance(r.action, Log)
            and not sp.disjoint(doubt, packets) and rec.meets(sp, packets)]


#: Undecidable matches that narrow who may connect (or which instances a
#: cloud rule applies to): on an accepting rule they make an allow-list.
_SOURCE_NARROWING = ("members of", "source is", "service tag", "applies only to instances",
                     "mac address", "prefix list", "contents of ipset", "contents of set")


def _allow_list(rule) -> bool:
    """An accepting rule whose only undecidable parts narrow the source
    (``-m set --match-set admins src``, ``ip saddr @ok``, an AWS group
    reference, an Azure service tag, a GCP source tag): it says who may
    connect, it does not open the port to all."""
    if outcome(rule) != "accept":
        return False
    opaque = list(_opaque(rule.matches))
    return bool(opaque) and all(_narrows_source(m) for m in opaque)


def _unconfigured(rule) -> bool:
    """A rule undecided only by values its configuration does not give (a
    Terraform variable without a value, a CloudFormation parameter without
    a default, a priority computed at apply time), besides the groups, tags
    and lists it names and whether it exists. (A concrete rule only whose existence is
    undecided stays "likely": if it is made, it opens the port.)"""
    opaque = list(_opaque(rule.matches))
    return any(m.configuration == "value" for m in opaque) and all(
        m.configuration or any(k in (m.reason or "").lower() for k in _SOURCE_NARROWING + _TARGETING)
        for m in opaque)


#: Undecidable matches that say which instances a cloud rule applies to.
_TARGETING = ("destination is a member of", "destination is the service tag")


#: A reference to another resource's attribute (``aws_vpc.web.cidr_block``),
#: as opposed to an input (``var.x``, ``local.x``, ``file(...)``).
_RESOURCE_ATTR = re.compile(r"`(?!(?:var|local|module|data|each|count|path|self)\.)[a-z][a-z0-9_]*\.[A-Za-z0-9_-]+\.[^`]+`")


def _computed(rule) -> bool:
    """Are ``rule``'s undecided values all computed at apply time from
    other resources (known after apply, another resource's attribute)?"""
    return all(m.reason.endswith("(known after apply)") or _RESOURCE_ATTR.search(m.reason)
               for m in _opaque(rule.matches) if m.configuration == "value")


def _given_later(rule) -> bool:
    """Are ``rule``'s undecided values all inputs still to be given (a
    variable without a value, a parameter without a default), rather than
    values computed at apply time (another resource's attribute)?"""
    return all(m.reason.endswith(("(no value given)", "(parameter without a default)"))
               for m in _opaque(rule.matches) if m.configuration == "value")


def _narrows_source(m: OpaqueMatch) -> bool:
    text, reason = (m.text or ""), (m.reason or "").lower()
    if m.negate or not any(k in reason for k in _SOURCE_NARROWING):
        return False
    if "ipset" in reason or "set @" in reason:  # which direction the set is looked up in
        return "src" in text or "saddr" in text or not text
    return True


def _reason(rule) -> str:
    for m in _opaque(rule.matches):
        reason = m.reason or m.text or "an undecidable match"
        return reason[len("depends on "):] if reason.startswith("depends on ") else reason
    return rule.text or "an undecidable match"


def _opaque(matches):
    for m in matches:
        if isinstance(m, OpaqueMatch):
            yield m
        yield from _opaque(getattr(m, "matches", ()))
