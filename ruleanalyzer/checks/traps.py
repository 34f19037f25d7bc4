"""RA2xx — implicit deny-all traps: traffic a rule lets in whose other half
(the reply, the ICMP error it depends on, loopback, neighbour discovery,
the IPv6 twin) dies at a policy or an implicit deny.

Each check asks the packet-space analysis for the set of packets at stake
and only reports what is *surely* dropped (lower bounds), with a witness
packet and the rule or policy that drops it (from the concrete engine).
"""

from __future__ import annotations

import ipaddress

from ..engine.connect import run_variant
from ..model import ACK, HOOK_PATHS, SYN, AddressMatch, IntMatch, Packet, Rule
from ..space import witness
from ..space.encode import encode_conjunction
from ..targets import CLOUD_DIALECTS
from . import _sets as S
from .base import Check, Context, Option, Related, Where, related_policy, related_rule
from .reach import outcome


def _decider(result) -> Related | None:
    d = result.decided_by
    if d is None:
        return None
    if d.rule is None:
        return related_policy(d.chain, "drops it")
    return related_rule(d.rule, "drops it")


def _is_cloud(ctx: Context) -> bool:
    return any(t.dialect in CLOUD_DIALECTS for t in ctx.ruleset.tables)


#: Loopback addresses: no peer of a real connection from outside.
LOOPBACK = ("127.0.0.0/8", "::1/128")


def plausible(sp, hook: str):
    """Packets a real connection from elsewhere could send on ``hook``
    (raw node): not arriving on ``lo``, no loopback peer, not yet
    translated by a DNAT (a witness is replayed from the start, where the
    raw table sees the original destination), and on ``forward`` not
    leaving by the interface it came in on (a hairpin) nor by ``lo`` (a
    packet routed to ``lo`` is the host's own: input, never forwarded)."""
    node = ~S.networks(sp, "src", *LOOPBACK) & ~S.networks(sp, "dst", *LOOPBACK)
    if hook != "output":
        node &= ~S.iface(sp, "iif", "lo")
    if hook == "forward":
        node &= ~S.iface(sp, "oif", "lo")
    if "ct_status:dnat" in sp.bdd.vars:
        node &= ~sp.bdd.var("ct_status:dnat")
    if hook == "forward":
        # (a wildcard class, "a name not listed", holds many interfaces)
        for code in range(len(sp.layout.interfaces["iif"].concrete)):
            node &= ~(sp.eq("iif", code) & sp.eq("oif", code))
    return node


def _anti_spoof(rule) -> bool:
    """A dropping rule that ties source addresses to input interfaces (or
    sits in the raw table before routing): an anti-spoofing rule."""
    if rule is None:
        return False
    table = rule.chain.table.name if rule.chain and rule.chain.table else ""
    return table == "raw" or _ties_source_to_interface(rule)


def _ties_source_to_interface(rule) -> bool:
    """Does ``rule`` match on both the source address and the input
    interface (``-i eth1 ! -s 192.168.100.0/24``, ``-i wan0 -s 10.0.0.0/8``)?"""
    return {"src", "iif"} <= {getattr(m, "field", None) for m in rule.matches}


def _accepting_syn_rules(ctx: Context, hook: str, family: int, limit: int):
    """``(rule, syn_set)`` for accepting rules that surely take new SYNs on
    ``hook``, from connections real traffic could make (:func:`plausible`)."""
    reach = ctx.reach(hook, family)
    if reach is None:
        return
    sp = reach.space
    syn_new = S.tcp_flags(sp, SYN) & S.state_is(sp, "new") & plausible(sp, hook)
    valid_syn = sp.valid & syn_new  # (met with the rule's raw set: rule_sets' matched_lower, met)
    n = 0
    for rule in reach.rules():
        if outcome(rule) != "accept" or rule.implicit or rule.chain.kind != "filter":
            continue
        syn = reach._records[rule].column(2) & valid_syn
        if syn == sp.false:
            continue
        n += 1
        if n > limit:
            return
        yield rule, sp.wrap(syn)


def _replies_surely_pass(ctx: Context, hook: str, family: int) -> bool:
    """A cloud unit where no packet of the handshake's later legs can be
    dropped: neither an ESTABLISHED SYN-ACK leaving by the reply hook nor an
    ESTABLISHED ACK on ``hook`` is possibly dropped or undecided (a
    security group, GCP or Azure rules: stateful, replies pass). Then no
    witness connection need be tried. Proved over the sets, not assumed
    from the dialect: an AWS network ACL (stateless) never qualifies."""
    if not _is_cloud(ctx):
        return False
    legs = ((ACK, hook), (SYN | ACK, "output" if hook == "input" else hook))
    for flags, h in legs:
        reach = ctx.reach(h, family)
        if reach is None:
            return False
        sp = reach.space
        leg = S.state_is(sp, "established") & sp.family(family) & S.tcp_flags(sp, flags)
        if leg & (reach.dropped.upper.node | reach.undecided.upper.node) != sp.false:
            return False
    return True


class HandshakeReplyDropped(Check):
    """A SYN is let in, but the SYN-ACK or the final ACK is dropped."""

    code = "RA201"
    name = "handshake-reply-dropped"
    summary = "Accepted SYN whose SYN-ACK or ACK is then dropped (half-open handshake)"
    rationale = (
        "The rule accepts the connection request, but the answer never makes it: the SYN-ACK "
        "leaving the server (or the client's ACK) meets a DROP policy or an implicit deny "
        "because nothing accepts ESTABLISHED traffic. The client times out, the server keeps "
        "half-open connections; the service looks 'allowed' in the rules but is unreachable. "
        "A witness connection from the rule's own match set shows where it dies.")
    bad = ("*filter\n:INPUT DROP [0:0]\n:OUTPUT DROP [0:0]\n"
           "-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n"
           "# expect: RA201\n-A INPUT -p tcp --dport 22 -m conntrack --ctstate NEW -j ACCEPT\n"
           "COMMIT\n")
    good = ("*filter\n:INPUT DROP [0:0]\n:OUTPUT DROP [0:0]\n"
            "-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n"
            "-A INPUT -p tcp --dport 22 -m conntrack --ctstate NEW -j ACCEPT\n"
            "-A OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\nCOMMIT\n")
    severity = "error"
    options = {"max_rules": Option(25, "accepting rules tried per hook and IP version")}

    def run(self, ctx: Context):
        if not ctx.is_stateful():
            return  # stateless rulesets: RA203 judges their return traffic
        groups: dict[tuple, list] = {}  # one finding per dropping rule/policy, all families
        for hook in ("input", "forward"):
            if hook not in ctx.hooks():
                continue
            for family in ctx.families():
                if _replies_surely_pass(ctx, hook, family):
                    continue  # a stateful cloud unit: no SYN-ACK or ACK can be dropped
                for rule, syns in _accepting_syn_rules(ctx, hook, family, self.settings["max_rules"]):
                    w = witness(syns, hook)
                    variant = run_variant(ctx.evaluator, w.src, w.dst, w.dport, w.sport or 40000,
                                          hook, False, w.iif if hook != "output" else None,
                                          w.oif if hook == "forward" else None)
                    failed = variant.first_failure
                    if failed is None or failed.name not in ("SYN-ACK", "ACK") or failed.verdict != "drop":
                        continue
                    if failed.result.decided_by is None and failed.result.routing:
                        continue  # the host's routing drops it (a reject route), not a rule
                    d = failed.result.decided_by
                    if d is not None and _anti_spoof(d.rule):
                        # The reply comes back on the interface the request left
                        # by; a rule that drops that source there says routing
                        # would not send the request that way: no real connection.
                        continue
                    key = (failed.name, id(d.chain) if d else None, id(d.rule) if d and d.rule else None)
                    items = groups.setdefault(key, [])
                    if all(r is not rule for r, _w, _f in items):
                        items.append((rule, w, failed))
        for (leg, _c, _r), items in groups.items():
            rule, w, failed = items[0]
            others = [r for r, _w, _f in items[1:]]
            dropper = _decider(failed.result)
            by = dropper.where.describe() if dropper else "an implicit deny"
            more = f"; {len(others)} other accepting rule(s) hit the same trap" if others else ""
            yield self.finding(
                f"the SYN is accepted here, but the {leg} ({failed.packet.describe()}) is dropped "
                f"by {by}: the handshake never completes{more}",
                rule=rule, witness=w,
                related=[*([dropper] if dropper else []),
                         *(related_rule(r, "accepts SYNs into the same trap") for r in others[:10])],
                fix="accept ESTABLISHED,RELATED traffic in the reply direction "
                    "(-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT / ct state established,related accept)")


class NoEstablishedPath(Check):
    """Replies to connections the host opens are all dropped on input."""

    code = "RA202"
    name = "no-established-path"
    summary = "DROP policy on input with no path for ESTABLISHED/RELATED replies"
    rationale = (
        "The host may open connections (output lets new packets out), but on the way back in "
        "no rule accepts ESTABLISHED or RELATED packets, so every reply — DNS answers, package "
        "downloads, NTP — dies at the DROP policy. Stateful firewalls accept established "
        "traffic near the top of INPUT.")
    bad = ("*filter\n# expect: RA202\n:INPUT DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n"
           "-A INPUT -p tcp --dport 22 -m conntrack --ctstate NEW -j ACCEPT\nCOMMIT\n")
    good = ("*filter\n:INPUT DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            "-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n"
            "-A INPUT -p tcp --dport 22 -m conntrack --ctstate NEW -j ACCEPT\nCOMMIT\n")
    severity = "warning"

    def run(self, ctx: Context):
        if not ctx.is_stateful() or "input" not in ctx.hooks():
            return
        for family in ctx.families():
            inbound, outbound = ctx.reach("input", family), ctx.reach("output", family)
            if inbound is None or outbound is None:
                continue
            sp = inbound.space
            est = S.state_is(sp, "established") & sp.family(family)
            if inbound.accepted.meets("upper", est):
                continue
            if not outbound.accepted.meets("upper", S.state_is(sp, "new") & sp.family(family)):
                continue  # the host opens no connections: nothing comes back
            dropped = inbound.dropped.meet("lower", inbound.rules_decide(est))
            if dropped == sp.false:
                continue
            w = witness(sp.wrap(dropped & S.tcp_flags(sp, ACK) if dropped & S.tcp_flags(sp, ACK) != sp.false
                                else dropped), "input")
            result, rule, chain = S.decided_by(ctx, w)
            if result.verdict != "drop" or chain is None:
                continue
            yield self.finding(
                f"no rule accepts ESTABLISHED/RELATED IPv{family} packets on input: replies to "
                f"connections this host opens (e.g. {w.describe()}) are dropped",
                chain=chain if rule is None else None, rule=rule, witness=w,
                fix="-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT "
                    "(nft: ct state established,related accept)")


class StatelessNoReturn(Check):
    """A stateless ACL lets a service in but not its replies to ephemeral ports."""

    code = "RA203"
    name = "stateless-no-return"
    summary = "Stateless rules accept a service but not its replies to the client's ephemeral ports"
    rationale = (
        "Stateless filters (AWS network ACLs, iptables without conntrack) judge every packet "
        "alone: the server's replies go from the service port to the client's ephemeral port "
        "(1024-65535) and need their own outbound rule. Without it the SYN gets in, the "
        "SYN-ACK is dropped and clients time out.")
    bad = ("*filter\n:INPUT DROP [0:0]\n:OUTPUT DROP [0:0]\n"
           "# expect: RA203\n-A INPUT -p tcp --dport 80 -j ACCEPT\n"
           "-A OUTPUT -p tcp --sport 80 --dport 80 -j ACCEPT\nCOMMIT\n")
    good = ("*filter\n:INPUT DROP [0:0]\n:OUTPUT DROP [0:0]\n"
            "-A INPUT -p tcp --dport 80 -j ACCEPT\n"
            "-A OUTPUT -p tcp --sport 80 --dport 1024:65535 -j ACCEPT\nCOMMIT\n")
    severity = "error"
    options = {"ephemeral": Option([1024, 65535], "the client port range replies must reach",
                                   kind="port-range"),
               "max_rules": Option(100, "accepting rules tried per IP version")}

    def run(self, ctx: Context):
        if ctx.is_stateful() or not {"input", "output"} <= set(ctx.hooks()):
            return
        lo, hi = self.settings["ephemeral"]
        for family in ctx.families():
            outbound = ctx.reach("output", family)
            if outbound is None:
                continue
            sp = outbound.space
            for rule, syns in _accepting_syn_rules(ctx, "input", family, self.settings["max_rules"]):
                w = witness(syns, "input")
                net = f"{w.src}/{32 if family == 4 else 128}"
                srv = f"{w.dst}/{32 if family == 4 else 128}"
                replies, _ = encode_conjunction(
                    (AddressMatch("src", (ipaddress.ip_network(srv),)),
                     AddressMatch("dst", (ipaddress.ip_network(net),)),
                     IntMatch("proto", ((6, 6),)), IntMatch("sport", ((w.dport, w.dport),)),
                     IntMatch("dport", ((lo, hi),))), sp)
                replies &= S.tcp_flags(sp, SYN | ACK) & sp.valid
                missing = outbound.accepted.outside("lower", replies & outbound.arriving.node)
                if missing == sp.false:
                    continue
                reply = witness(sp.wrap(missing), "output")
                result, drop_rule, chain = S.decided_by(ctx, reply)
                if result.verdict != "drop":
                    continue
                related = [_decider(result)] if result.decided_by else []
                yield self.finding(
                    f"TCP {w.dport} is accepted inbound, but replies to the client's ephemeral ports "
                    f"are not let out (e.g. {reply.describe()} is dropped): the ACL is stateless",
                    rule=rule, witness=reply, related=related,
                    fix=f"allow outbound tcp from port {w.dport} to ports {lo}-{hi}")


class PathMtuBlackHole(Check):
    """ICMP "fragmentation needed" / ICMPv6 "packet too big" is dropped."""

    code = "RA204"
    name = "pmtu-icmp-blocked"
    summary = "ICMP fragmentation-needed / ICMPv6 packet-too-big is dropped (path-MTU black hole)"
    rationale = (
        "Path-MTU discovery depends on routers sending ICMP type 3 code 4 (IPv4) or ICMPv6 "
        "type 2 back to the sender. Dropping them — even as RELATED packets of an accepted "
        "connection — makes large packets vanish silently: connections open, then hang as "
        "soon as a full-sized segment is sent (the classic PMTU black hole). IPv6 has no "
        "fragmentation by routers, so there it breaks every path with a smaller MTU.")
    bad = ("*filter\n# expect: RA204\n:INPUT DROP [0:0]\n"
           "-A INPUT -m conntrack --ctstate ESTABLISHED -j ACCEPT\n"
           "-A INPUT -p tcp --dport 443 -j ACCEPT\nCOMMIT\n")
    good = ("*filter\n:INPUT DROP [0:0]\n"
            "-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n"
            "-A INPUT -p tcp --dport 443 -j ACCEPT\nCOMMIT\n")
    severity = "warning"

    options = {"min_share": Option(0.5, "share of public sources (possible routers on a path) whose "
                                        "errors must be dropped: a single-host or anti-spoof block is not a "
                                        "black hole", kind="share")}

    def run(self, ctx: Context):
        from .exposure import public_sources

        seen: set[int] = set()  # one finding per dropping rule or policy
        for hook in ("input", "forward"):
            if hook not in ctx.hooks():
                continue
            for family in ctx.families():
                reach = ctx.reach(hook, family)
                if reach is None:
                    continue
                sp = reach.space
                if family == 4:
                    icmp = sp.eq("icmp_type", 3) & sp.eq("icmp_code", 4)
                else:
                    icmp = sp.eq("icmp_type", 2)
                # The error a router on an accepted connection's path sends back:
                # from a public address, RELATED to the connection, not on lo.
                public = public_sources(sp, family)
                unicast = ~S.networks(sp, "dst", "224.0.0.0/4", "255.255.255.255/32", "ff00::/8")
                pkts = (sp.family(family) & sp.icmp & sp.eq("fragment", 0) & icmp & unicast
                        & S.state_is(sp, "related") & public & plausible(sp, hook) & reach.arriving.node)
                if not reach.dropped.meets("lower", pkts):
                    continue  # no such error is dropped: the connections need not be worked out
                carried = _carries_tcp(ctx, reach, hook, family)
                if carried == sp.false:
                    continue  # no connection completes here: nothing to black-hole
                pkts &= carried
                dropped = reach.dropped.meet("lower", pkts)
                # The router picks the error's header values (TTL, length, id,
                # DSCP/ECN, DF): an error counts as dropped only when it is
                # dropped whatever they are — `ip ttl < 2 drop` is no black hole.
                chosen = [v for f in _SENDER_CHOSEN if f in sp.layout.fields for v in S.field_vars(sp, f)]
                if chosen and dropped != sp.false:
                    dropped &= ~sp.exist(chosen, reach.dropped.outside("lower", pkts))
                # An anti-spoofing drop (a source tied to its input interface)
                # says routing brings no packet from such a source that way:
                # those errors are no router's on a connection's path (RA201
                # leaves such replies out alike). Drops elsewhere still count.
                if dropped != sp.false:
                    dropped &= ~_spoofed(sp, reach, hook, public)
                if dropped == sp.false or _share(sp, dropped, public) < float(self.settings["min_share"]):
                    continue
                # a witness with the header values a router's error has
                # (the drop holds for all of them), so the rule named is the
                # one that drops such errors, not a TTL or length filter
                for f, value in _TYPICAL_ERROR.items():
                    if f in sp.layout.fields and dropped & sp.eq(f, value) != sp.false:
                        dropped &= sp.eq(f, value)
                w = witness(sp.wrap(dropped), hook)
                result, rule, chain = S.decided_by(ctx, w)
                if result.verdict != "drop" or chain is None or id(rule or chain) in seen:
                    continue
                seen.add(id(rule or chain))
                kind = "fragmentation-needed (type 3 code 4)" if family == 4 else "ICMPv6 packet-too-big (type 2)"
                by = f"the {chain.name} policy" if rule is None else f"{chain.name} rule {rule.index}"
                yield self.finding(
                    f"{kind} errors are dropped by {by} (e.g. {w.describe()}, state related): "
                    "path-MTU discovery breaks and large packets vanish",
                    rule=rule, chain=chain if rule is None else None, witness=w,
                    fix=("accept RELATED packets (ct state related accept) or "
                         + ("-p icmp --icmp-type fragmentation-needed -j ACCEPT" if family == 4
                            else "-p icmpv6 --icmpv6-type packet-too-big -j ACCEPT")))


def _spoofed(sp, reach, hook: str, public):
    """Packets (raw node) an anti-spoofing drop on ``reach`` declares
    spoofed: those a dropping rule ties to their input interface by its
    source and interface matches alone (``! -s LAN -i eth1 -j DROP``; neither
    field changes on the way: NAT rewrites neither before the filter
    chains), and the public sources on an interface that faces a private
    network, by what the walk lets through: some packets come in by it,
    none from a public source, while public sources come in by another. An
    anti-spoofing chain (``-i eth0.10 -j spoof``: RETURN for the VLAN's
    range, then DROP) or a drop behind per-source accepts (docker's
    ``-i br-x -s 10.0.0.4 ... -j ACCEPT``, then ``-i br-x -j DROP``) says it
    as well as one rule: routing brings no public router's error there."""
    node = sp.false
    for rule in reach.rules():
        if outcome(rule) == "drop" and _ties_source_to_interface(rule):
            tied = [m for m in rule.matches if getattr(m, "field", None) in ("src", "iif")]
            node |= encode_conjunction(tied, sp)[1]
    src, iif = S.field_vars(sp, "src"), S.field_vars(sp, "iif")
    kept = set(src) | set(iif)
    others = [v for v in sp.layout.variables() if v not in kept]
    # (source, interface) of the packets that come in and are surely / possibly let through
    real = reach.arriving.node & sp.valid & plausible(sp, hook)
    surely = sp.exist(others, real & reach.accepted.lower.node)
    possibly = sp.exist(others, real & reach.accepted.upper.node)
    private_facing = sp.exist(src, surely) & ~sp.exist(src, possibly & public)
    if private_facing == sp.false:
        return node
    return node | (private_facing & public & sp.exist(iif, surely & public))


#: Header fields whose value the sender of an ICMP error chooses (or the
#: path changes): no one value of them is "the" error.
_SENDER_CHOSEN = ("ttl", "length", "ip_id", "dscp", "ecn", "df")
#: ... and the values a witness takes for them: a router's default TTL, an
#: error quoting a full header (IPv4 576, the size every host accepts).
_TYPICAL_ERROR = {"ttl": 64, "length": 576}


def _carries_tcp(ctx: Context, reach, hook: str, family: int):
    """Where some TCP connection completes here — a SYN accepted in whose
    SYN-ACK goes back out, or (on input) a SYN the host sends out whose
    SYN-ACK is let in — as a raw node over what its packets of either
    direction show of the way they take: the interface they come in by
    (``iif``), on forward the one they leave by (``oif``), and the address
    they go to (``dst``). An error about a packet goes to that packet's
    source the way its reply goes: only an error that crosses the firewall
    as some connection's packets do, to one of its ends, can break one.
    False when there is none."""
    sp = reach.space
    fam = sp.family(family)
    syn = S.tcp_flags(sp, SYN) & S.state_is(sp, "new") & fam
    names = sp.spec("ct_direction").names
    synack = (S.tcp_flags(sp, SYN | ACK) & S.state_is(sp, "established") & fam
              & sp.eq("ct_direction", names.index("reply")))
    back = ctx.reach("output", family) if hook == "input" else reach
    if back is None:
        return sp.false
    # The error is addressed to an end of the connection: an anti-bogon drop
    # of "daddr 0.0.0.0" meets no connection's error, nor does libvirt's
    # "-o virbr0 -j REJECT" of all but its guests' replies. On forward it
    # leaves by the interface the packets it answers came in by: an isolation
    # rule (-i docker0 -o br-x -j DROP, -o virbr3 -j REJECT) drops errors only
    # between interfaces no connection runs between.
    kept = {v for f in ("iif", "dst", *(("oif",) if hook == "forward" else ())) for v in S.field_vars(sp, f)}
    others = [v for v in sp.layout.variables() if v not in kept]
    # A reply is ESTABLISHED only for a connection the ruleset accepted:
    # each SYN-ACK is paired with the SYN it answers (a --sport 22 reply
    # rule completes no connection to port 443).
    # (the accepted SYNs and SYN-ACKs are met and projected at once, never
    # made whole: past kube-proxy's DNATs ~700k nodes each)
    drop = _unanswered_vars(sp)
    found = _answered(sp, others, reach, syn, back.accepted.meet("lower", synack, drop))
    if hook == "input":
        found |= _answered(sp, others, reach, synack, back.accepted.meet("lower", syn & back.arriving.node, drop))
    elif hook == "forward" and found != sp.false:
        found |= _answered(sp, others, reach, synack, reach.accepted.meet("lower", syn, drop))
    return found


#: How a packet of one direction of a TCP connection names the fields of the
#: other: its destination is their source and the other way round, its
#: source port their destination port, the interface it leaves by the one
#: they came in on (and back). (Its destination port as their source port
#: too cost kube-iptables 20k +0.43M BDD nodes, +12 MiB, for no finding.)
_OTHER_WAY = (("dst", "src"), ("src", "dst"), ("sport", "dport"), ("oif", "iif"), ("iif", "oif"))


def _unanswered_vars(sp) -> list[str]:
    """The variables :func:`_answered` leaves out of the other direction's
    packets: all but the family and the fields of :data:`_OTHER_WAY`."""
    kept = set(S.field_vars(sp, "family") + [v for a, _ in _OTHER_WAY for v in S.field_vars(sp, a)])
    return [v for v in sp.layout.variables() if v not in kept]


def _answered(sp, others, reach, packets, other_way):
    """The packets ``reach`` surely accepts among ``packets`` (raw node)
    of connections some packet of the other direction belongs to —
    ``other_way``, those packets with :func:`_unanswered_vars` quantified
    away — with ``others`` quantified away from the result."""
    renames = {}
    for a, b in _OTHER_WAY:
        renames.update(zip(S.field_vars(sp, a), S.field_vars(sp, b)))
    return reach.accepted.meet("lower", packets & sp.bdd.let(renames, other_way), others)


def _share(sp, node, public) -> float:
    """Share of the public sources (of the node's family) in ``node``."""
    src = S.field_vars(sp, "src")
    keep = set(src)
    others = [v for v in sp.layout.variables() if v not in keep]
    total = float(sp.bdd.count(sp.exist(others, public), nvars=len(src)))
    return float(sp.bdd.count(sp.exist(others, node & public), nvars=len(src))) / total if total else 0.0


class NeighbourDiscoveryBlocked(Check):
    """ICMPv6 router/neighbour solicitations and advertisements are dropped."""

    code = "RA205"
    name = "ndp-blocked"
    summary = "ICMPv6 neighbour discovery the host's role needs is dropped"
    rationale = (
        "IPv6 has no ARP: hosts find each other's link-layer address and their router with "
        "ICMPv6 types 133-136. These packets are not part of any connection (conntrack leaves "
        "them untracked), so an ESTABLISHED/RELATED rule does not let them in. Dropping "
        "neighbour solicitations/advertisements cuts the host off IPv6 entirely after its "
        "neighbour cache expires (error); a host also needs router advertisements in and a "
        "router needs router solicitations in (warnings).")
    bad = ("table inet f {\n  chain input {\n"
           "    # expect: RA205\n    type filter hook input priority 0; policy drop;\n"
           "    ct state established,related accept\n    tcp dport 22 accept\n  }\n}\n")
    good = ("table inet f {\n  chain input {\n    type filter hook input priority 0; policy drop;\n"
            "    ct state established,related accept\n    meta l4proto ipv6-icmp accept\n"
            "    tcp dport 22 accept\n  }\n}\n")
    example_dialect = "nftables"
    severity = "error"

    def run(self, ctx: Context):
        if 6 not in ctx.families() or _is_cloud(ctx):
            return
        router = _forwards(ctx)
        # (ICMPv6 types, what they are, error?) as the host's role needs them:
        # neighbour solicitation/advertisement always; router advertisements
        # in to a host, router solicitations in to a router (and out of a host).
        wanted = {"input": [((135, 136), "neighbour solicitation/advertisement", True),
                            ((133,), "router solicitation", False) if router else
                            ((134,), "router advertisement", False)],
                  "output": [((135, 136), "neighbour solicitation/advertisement", True),
                             ((134,), "router advertisement", False) if router else
                             ((133,), "router solicitation", False)]}
        groups: dict[int, list] = {}  # dropping rule/chain -> [rule, chain, whats, witness, fatal]
        for hook in ("input", "output"):
            if hook not in ctx.hooks():
                continue
            reach = ctx.reach(hook, 6)
            if reach is None:
                continue
            sp = reach.space
            link = S.networks(sp, "src", "fe80::/10") & (S.networks(sp, "dst", "fe80::/10")
                                                        | S.networks(sp, "dst", "ff02::/16"))
            if hook == "input":
                link &= ~S.iface(sp, "iif", "lo")
            for types, what, fatal in wanted[hook]:
                pkts = (sp.family(6) & sp.icmp & sp.eq("fragment", 0) & sp.one_of("icmp_type", types)
                        & S.state_is(sp, "untracked") & link & sp.eq("ttl", 255))
                if "ext_headers" in sp.layout.fields:  # neighbour discovery carries no extension header
                    pkts &= sp.eq("ext_headers", 0)
                dropped = reach.dropped.meet("lower", reach.rules_decide(pkts))
                if dropped == sp.false:
                    continue
                multicast = dropped & S.networks(sp, "dst", "ff02::/16")
                w = witness(sp.wrap(multicast if multicast != sp.false else dropped), hook)
                result, rule, chain = S.decided_by(ctx, w)
                if result.verdict != "drop" or chain is None:
                    continue
                entry = groups.setdefault(id(rule or chain), [rule, chain, [], w, False])
                entry[2].append(f"{what} on {hook}")
                entry[4] = entry[4] or fatal
        role = "a router" if router else "a host"
        for rule, chain, whats, w, fatal in groups.values():
            effect = ("IPv6 stops working once the neighbour cache expires" if fatal else
                      f"{role} needs them (" + ("hosts on its links solicit it" if router
                                                 else "no SLAAC address or default route") + ")")
            yield self.finding(
                f"ICMPv6 {', '.join(whats)} is dropped (e.g. {w.describe()}): {effect}",
                rule=rule, chain=chain if rule is None else None, witness=w,
                severity=None if fatal else "warning",
                fix="accept ICMPv6 types 133-136 (nft: icmpv6 type { nd-router-solicit, "
                    "nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } accept)")


def _forwards(ctx: Context) -> bool:
    """Is this an IPv6 router (:func:`.exposure.forwards`)?"""
    from .exposure import forwards

    return forwards(ctx, 6)


def _input_path_chain(ctx: Context, family: int):
    """The first base chain on the input path of IPv``family`` packets
    (ingress, prerouting, input), filter chains first; None without one."""
    chains = [c for hook in HOOK_PATHS["input"] for c in ctx.base_chains(hook, family)]
    return next((c for c in chains if c.kind == "filter"), chains[0] if chains else None)


class LoopbackBlocked(Check):
    """Traffic on the loopback interface is dropped."""

    code = "RA206"
    name = "loopback-blocked"
    summary = "Loopback traffic (-i lo) is dropped"
    rationale = (
        "Local services talk to each other over lo (a database on 127.0.0.1, a resolver stub, "
        "X11, DBus over TCP). A DROP policy without an early `-i lo -j ACCEPT` breaks them in "
        "ways that look like application bugs.")
    bad = ("*filter\n# expect: RA206\n:INPUT DROP [0:0]\n"
           "-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n")
    good = ("*filter\n:INPUT DROP [0:0]\n-A INPUT -i lo -j ACCEPT\n"
            "-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n")
    severity = "warning"

    def run(self, ctx: Context):
        if _is_cloud(ctx) or "input" not in ctx.hooks():
            return
        seen: set[int] = set()  # one finding per dropping rule or policy
        for family in ctx.families():
            reach = ctx.reach("input", family)
            if reach is None:
                continue
            sp = reach.space
            local = "127.0.0.0/8" if family == 4 else "::1/128"
            pkts = (sp.family(family) & S.iface(sp, "iif", "lo") & S.networks(sp, "src", local)
                    & S.networks(sp, "dst", local) & S.state_is(sp, "new"))
            dropped = reach.dropped.meet("lower", reach.rules_decide(pkts))
            if dropped == sp.false:
                continue
            w = witness(sp.wrap(dropped), "input")
            w = w.replace(iif="lo")
            result, rule, chain = S.decided_by(ctx, w)
            if result.verdict != "drop" or chain is None or id(rule or chain) in seen:
                continue
            seen.add(id(rule or chain))
            yield self.finding(
                f"IPv{family} loopback traffic is dropped (e.g. {w.describe()} on lo)",
                rule=rule, chain=chain if rule is None else None, witness=w,
                fix="-I INPUT 1 -i lo -j ACCEPT (nft: iif lo accept)")


class Ipv6LeftOpen(Check):
    """IPv4 is filtered, IPv6 is not."""

    code = "RA207"
    name = "ipv6-left-open"
    summary = "IPv4 is filtered but IPv6 accepts everything"
    rationale = (
        "Hosts usually have global IPv6 addresses whether or not anyone planned for them. A "
        "ruleset that locks IPv4 down but leaves IPv6 with an ACCEPT policy (or, in nftables, "
        "has no ip6/inet table at all) exposes every service over IPv6.")
    bad = ("table ip filter {\n  chain input {\n"
           "    # expect: RA207\n    type filter hook input priority 0; policy drop;\n"
           "    tcp dport 22 accept\n  }\n}\n")
    good = ("table inet filter {\n  chain input {\n    type filter hook input priority 0; policy drop;\n"
            "    tcp dport 22 accept\n  }\n}\n")
    example_dialect = "nftables"
    severity = "warning"

    def run(self, ctx: Context):
        if _is_cloud(ctx) or "input" not in ctx.hooks():
            return
        v4 = ctx.reach("input", 4) if 4 in ctx.families() else None
        if v4 is None:
            return
        sp = v4.space
        new = S.state_is(sp, "new")
        if not v4.dropped.meets("lower", v4.rules_decide(new & sp.family(4))):
            return  # IPv4 is not filtered either
        v4_chain = next((c for c in ctx.base_chains("input", 4) if c.kind == "filter"), None)
        if 6 not in ctx.families():
            if ctx.dialect in ("nftables", "nft-json") and v4_chain is not None:
                yield self.finding("IPv4 input is filtered, but no table filters IPv6 at all: every "
                                   "IPv6 packet is accepted", chain=v4_chain,
                                   fix="use an inet table for both families")
            return
        v6 = ctx.reach("input", 6)
        if v6 is None or v6.dropped.meets("upper", v6.rules_decide(new & sp.family(6))):
            return
        # Where IPv4 is filtered before the input hook only (a prerouting
        # filter chain), the finding points at that chain.
        v4_chain = v4_chain or _input_path_chain(ctx, 4)
        v6_chain = next((c for c in ctx.base_chains("input", 6) if c.kind == "filter"), None) \
            or v4_chain or _input_path_chain(ctx, 6)
        yield self.finding("IPv4 input is filtered, but IPv6 input accepts every packet",
                           chain=v6_chain, related=[related_policy(v4_chain, "filters IPv4")] if v4_chain else [],
                           fix="give IPv6 the same policy and rules (ip6tables / an inet table)")
