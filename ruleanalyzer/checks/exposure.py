"""RA4xx — services open to the whole internet.

Computed over sets, for every dialect (cloud ingress included): the new
TCP SYNs surely accepted on a path (``input`` and ``forward``), restricted
to one sensitive port, projected onto (source, interface). The port is
exposed when, on some interface, every public source address of a family
can open a connection — whether one rule, a port range, or a union of
several rules does it. A narrow source range is not exposure.
"""

from __future__ import annotations

from ..model import SYN
from ..space import witness
from . import _sets as S
from .base import Check, Context, Option, related_rule
from .reach import outcome

#: Port → service for administrative and database ports.
SENSITIVE_PORTS = {
    22: "SSH", 23: "Telnet", 445: "SMB", 1433: "MSSQL", 2375: "Docker API",
    2376: "Docker API (TLS)", 2379: "etcd", 3306: "MySQL", 3389: "RDP", 5432: "PostgreSQL",
    5900: "VNC", 5984: "CouchDB", 6379: "Redis", 9042: "Cassandra", 9200: "Elasticsearch",
    10250: "kubelet", 11211: "memcached", 27017: "MongoDB",
}
#: Everything that is not public: private, loopback, link-local, CGNAT, multicast, reserved.
NON_PUBLIC_V4 = ("0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
                 "172.16.0.0/12", "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4")
#: Global unicast IPv6.
PUBLIC_V6 = ("2000::/3",)


def public_sources(sp, family: int):
    if family == 4:  # an IPv4 address is the low 32 bits; the upper 96 are zero
        return sp.family(4) & sp.prefix("src", 0, 96) & ~S.networks(sp, "src", *NON_PUBLIC_V4)
    return sp.family(6) & S.networks(sp, "src", *PUBLIC_V6)


class AdminPortExposed(Check):
    """An administrative or database port accepts connections from any public address."""

    code = "RA401"
    name = "admin-port-exposed"
    summary = "Administrative or database port open to the whole internet"
    rationale = (
        "SSH, RDP, VNC, database and cache ports open to every address are found by internet "
        "scanners within minutes and brute-forced or exploited (Redis, memcached, Docker and "
        "Elasticsearch have no authentication by default). Restrict the source to the "
        "networks that need access, or put the service behind a VPN or bastion. Computed "
        "over every rule together: a port range or several rules whose union admits all "
        "public sources count; a rule limited to a narrow source range does not.")
    bad = ("*filter\n:INPUT DROP [0:0]\n-A INPUT -m conntrack --ctstate ESTABLISHED -j ACCEPT\n"
           "# expect: RA401\n-A INPUT -p tcp --dport 3000:4000 -j ACCEPT\nCOMMIT\n")
    good = ("*filter\n:INPUT DROP [0:0]\n-A INPUT -m conntrack --ctstate ESTABLISHED -j ACCEPT\n"
            "-A INPUT -s 192.0.2.0/24 -p tcp --dport 3000:4000 -j ACCEPT\nCOMMIT\n")
    severity = "error"
    options = {
        "ports": Option(SENSITIVE_PORTS, "TCP ports (number → service name) that must not be public"),
        "trusted_interfaces": Option(["lo"], "interfaces whose traffic is never internet traffic"),
    }

    def run(self, ctx: Context):
        ports = {int(p): str(n) for p, n in dict(self.settings["ports"]).items()}
        groups: dict[int, tuple] = {}  # location key -> (rule|chain, [(port label, family)], witness)
        for hook in ("input", "forward"):
            if hook not in ctx.hooks():
                continue
            for family in ctx.families():
                reach = ctx.reach(hook, family)
                if reach is None:
                    continue
                sp = reach.space
                new = S.state_is(sp, "new") & sp.family(family)
                if reach.dropped.upper.node & new == sp.false:
                    continue  # this path filters nothing at all: not a leak, no firewall
                syn = reach.accepted.lower.node & S.tcp_flags(sp, SYN) & new
                if syn == sp.false:
                    continue
                public = public_sources(sp, family)
                iif_vars = S.field_vars(sp, "iif")
                src_vars = S.field_vars(sp, "src") + S.field_vars(sp, "family")
                dport_vars = S.field_vars(sp, "dport")
                keep = set(src_vars + iif_vars + dport_vars)
                # (source, interface, port) of every surely accepted new SYN, once per path.
                proj = sp.bdd.exist([v for v in sp.layout.variables() if v not in keep], syn)
                usable = sp.between("iif", 0, sp.spec("iif").size - 1)
                for name in self.settings["trusted_interfaces"]:
                    usable &= ~S.iface(sp, "iif", name)
                for port, service in sorted(ports.items()):
                    at_port = syn & sp.eq("dport", port)
                    if at_port == sp.false:
                        continue
                    sources = sp.bdd.exist(dport_vars, proj & sp.eq("dport", port))
                    # Interfaces on which every public source gets through.
                    open_on = sp.bdd.forall(src_vars, ~public | sources) & usable
                    if open_on == sp.false:
                        continue
                    # Open on an interface no rule names (any uplink) is open for
                    # sure; open only on named ones depends on what they face.
                    labels = sp.spec("iif").names
                    if open_on & sp.eq("iif", labels.index("*")) != sp.false:
                        via = ""
                    else:
                        via = ", ".join(l for i, l in enumerate(labels)
                                        if l != "*" and open_on & sp.eq("iif", i) != sp.false)
                    exposed = at_port & open_on & public
                    rules = [r for r in reach.rules() if outcome(r) == "accept"
                             and reach.rule_sets(r).matched_upper.node & exposed != sp.false]
                    user = [r for r in rules if not r.implicit] or rules
                    if user:
                        anchor = user[0]
                        key = id(anchor)
                    else:
                        anchor = next((c for c in ctx.base_chains(hook, family)
                                       if (c.policy or "accept") == "accept" and c.kind == "filter"), None)
                        key = id(anchor)
                    entry = groups.setdefault(key, (anchor, [], (sp.wrap(exposed), hook), user[1:]))
                    label = (f"{service} ({port}/tcp, IPv{family}" + (", forwarded" if hook == "forward" else "")
                             + (f", arriving on {via}" if via else "") + ")")
                    if label not in entry[1]:
                        entry[1].append(label)
        for anchor, labels, (example, hook), others in groups.values():
            w = witness(example, hook)  # one witness per finding: they are not cheap
            where = {"rule": anchor} if hasattr(anchor, "action") else {"chain": anchor}
            caveat = (" — if those interfaces face the internet" if all("arriving on" in l for l in labels)
                      else "")
            yield self.finding(
                f"open to the whole internet: {', '.join(labels)} — any public address can connect "
                f"(e.g. {w.describe()}){caveat}",
                witness=w, related=[related_rule(r, "also admits it") for r in others[:5]],
                fix="restrict the source (-s / ip saddr) to the networks that need it", **where)
