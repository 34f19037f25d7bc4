"""Proof against the kernel for the symbolic reachability (issue 6).

For random iptables rulesets (``gen_iptables.generate``) the symbolic walk
(``ruleanalyzer.space.reach``) is held against the kernel:

(a) every rule some packet surely reaches and matches (``matched_lower`` not
    empty) gets a witness packet — taken from the packets the test bed can
    send (its addresses, its interface, the conntrack states it can
    produce) — which is sent; the rule's counter must move;
(b) every rule the analysis calls unreachable gets the case's random probes
    plus a witness of its own match (earlier rules ignored, ``match_upper``)
    sent at it; its counter must never move.

The sendable packets are imposed where packets *enter* (the walk starts
from them), not on the sets at a rule: those hold packets as rewritten by
earlier MARK/NOTRACK/ECN rules. A witness is mapped back to what is sent
(mark 0; the state and ECN flags before NOTRACK/ECN) by trying the few
possible originals with the concrete engine.

Reproduce a seed: ``RA_KERNEL_SEEDS=17 pytest tests/kernel/test_kernel_reach.py -s``
"""

from __future__ import annotations

import ipaddress
import os
import time

import pytest

from . import netns
from .gen_iptables import Case, generate
from .netns import missing_prerequisites
from .probes import Probe
from .runner import observe_cases

pytestmark = pytest.mark.kernel

RULESETS = int(os.environ.get("RA_KERNEL_REACH_RULESETS", 20))
RANDOM_PROBES = int(os.environ.get("RA_KERNEL_REACH_PACKETS", 30))
FIRST_SEED = int(os.environ.get("RA_KERNEL_FIRST_SEED", 1))
SEEDS = ([int(s) for s in os.environ["RA_KERNEL_SEEDS"].split(",")] if os.environ.get("RA_KERNEL_SEEDS")
         else list(range(FIRST_SEED, FIRST_SEED + RULESETS)))
TOOLS = ("ip", "iptables-restore", "ip6tables-restore", "iptables-save", "ip6tables-save")
TIME_LIMIT = 90.0

TCP, UDP = 6, 17
SYN, PSH, ACK, URG, ECE, CWR = 0x02, 0x08, 0x10, 0x20, 0x40, 0x80
MAX_LENGTH = 1400


def skip_without_kernel() -> None:
    reason = missing_prerequisites(TOOLS)
    if reason:
        pytest.skip(reason)


# ---------------------------------------------------------------------------
# What the test bed can send, as a set of entering packets
# ---------------------------------------------------------------------------


def _iface_code(domain, name: str) -> int:
    if name in domain.concrete:
        return domain.concrete.index(name)
    longest = domain._longest_prefix(name)
    base = len(domain.concrete)
    return base + (domain.prefixes.index(longest) if longest else len(domain.prefixes))


def _base_length(family: int, proto: int, icmp_type: int = 0) -> int:
    """The wire length of a probe with no padding."""
    src, dst = (netns.PEER_V4, netns.FW_V4) if family == 4 else (netns.PEER_V6, netns.FW_V6)
    return len(Probe(1, src, dst, proto, 1, 1, icmp_type=icmp_type).packet())


def sendable(space, family: int):
    """Raw node: the packets the bed can make arrive on the firewall's INPUT
    (as conntrack classifies them), with the harness's Probe kinds."""
    s = space
    ip = ipaddress.ip_address
    node = s.family(family) & s.eq("fragment", 0) & s.eq("mark", 0) & s.eq("ctmark", 0)
    node &= s.eq("uid", 0) & s.eq("gid", 0) & s.between("ttl", 1, 255)
    # probes are whole packets without IP options or extension headers (DF as the witness says)
    node &= s.eq("mf", 0) & s.eq("ip_options", 0) & s.eq("ext_headers", 0)
    if family == 4:
        srcs = [("192.0.2.10", "192.0.2.250"), ("198.51.100.1", "198.51.100.254"),
                ("10.0.0.1", "10.255.255.254")]
        dsts = (netns.FW_V4, netns.FW_V4_EXTRA)
    else:
        srcs = [("2001:db8::10", "2001:db8::ffff"), ("2001:db8:1::1", "2001:db8:1:ffff::ffff")]
        dsts = (netns.FW_V6, netns.FW_V6_EXTRA)
    src = s.false
    for lo, hi in srcs:
        src |= s.between("src", int(ip(lo)), int(ip(hi)))
    node &= src & s.one_of("dst", [int(ip(d)) for d in dsts])
    node &= s.eq("iif", _iface_code(s.layout.interfaces["iif"], netns.FW_IF))
    node &= s.eq("oif", _iface_code(s.layout.interfaces["oif"], ""))
    node &= s.eq("pkttype", s.spec("pkttype").names.index("unicast"))
    dst_types = {"local"} if family == 4 else {"local", "unicast"}
    for field, wanted in (("src_type", {"unicast"}), ("dst_type", dst_types)):
        for n in s.spec(field).names:
            var = s.bdd.var(f"{field}:{n}")
            node &= var if n in wanted else ~var
    names = s.spec("state").names
    st = {n: s.eq("state", names.index(n)) for n in ("new", "established", "related", "invalid")}
    ports = s.between("sport", 1, 65535) & s.between("dport", 1, 65535)

    def length(proto, icmp_type=0):
        return s.between("length", _base_length(family, proto, icmp_type), MAX_LENGTH)

    # TCP: a probe without connection is NEW or INVALID as conntrack says
    # (engine.conntrack.first_packet_state); a reply to the firewall's SYN
    # is a SYN-ACK (ECE optional).
    opens = s.false
    for v in (SYN, SYN | URG, ACK, ACK | URG):
        opens |= s.masked("flags", 0xFF & ~(ECE | CWR | PSH), v)
    tcp_new = (st["new"] & opens) | (st["invalid"] & ~opens)
    tcp_est = st["established"] & (s.eq("flags", SYN | ACK) | s.eq("flags", SYN | ACK | ECE))
    tcp = s.eq("proto", TCP) & ports & length(TCP) & (tcp_new | tcp_est)
    udp = s.eq("proto", UDP) & ports & length(UDP) & (st["new"] | st["established"])
    if family == 4:
        icmp_p, request, reply, errors = 1, [(8, 0), (13, 0)], (0, 0), [(3, c) for c in range(4)] + [(11, 0), (11, 1)]
    else:
        icmp_p, request, reply, errors = 58, [(128, 0)], (129, 0), [(1, c) for c in range(5)] + [(3, 0), (3, 1)]

    def kind(t, c):
        return s.eq("icmp_type", t) & s.eq("icmp_code", c) & length(icmp_p, t)

    icmp = s.false
    for t, c in request:
        icmp |= kind(t, c) & st["new"]
    icmp |= kind(*reply) & (st["established"] | st["invalid"])
    for t, c in errors:
        icmp |= kind(t, c) & (st["related"] | st["invalid"])
    icmp &= s.eq("proto", icmp_p)
    return node & (tcp | udp | icmp) & space.valid


def tuple_node(space, p: Probe):
    """Raw node: packets with ``p``'s 5-tuple (to keep flows unique)."""
    s = space
    ip = ipaddress.ip_address
    return (s.eq("src", int(ip(p.src))) & s.eq("dst", int(ip(p.dst))) & s.eq("proto", p.proto)
            & s.eq("sport", p.sport) & s.eq("dport", p.dport))


def probe_candidates(w, ident: int, ruleset_text: str) -> list[Probe]:
    """Probes that enter as a packet the witness ``w`` could have been
    before earlier rules rewrote it (mark is always 0 when sent)."""
    family = w.family
    is_icmp = w.proto in (1, 58)
    if w.state in ("new", "invalid"):
        states = ["new"]
    elif w.state in ("established", "related"):
        states = [w.state]
    else:  # NOTRACK forgot the state
        states = ["new", "established", "related"]
    flag_sets = [w.flags]
    if w.proto == TCP and "-j ECN" in ruleset_text:
        flag_sets += [w.flags | ECE, w.flags | CWR, w.flags | ECE | CWR]
    out = []
    for state in states:
        for flags in dict.fromkeys(flag_sets):
            common = dict(ecn=w.ecn, dscp=w.dscp, ttl=w.ttl, df=w.df, state=state)
            if is_icmp:
                p = Probe(ident, str(w.src), str(w.dst), w.proto, icmp_type=w.icmp_type,
                          icmp_code=w.icmp_code, quote_proto=UDP, quote_sport=30000 + ident % 20000,
                          quote_dport=20000 + ident % 40000, **common)
            else:
                p = Probe(ident, str(w.src), str(w.dst), w.proto, w.sport, w.dport, flags=flags, **common)
            pad = w.length - len(p.packet())
            if pad < 0:
                continue
            out.append(Probe(**{**p.__dict__, "pad": pad}))
    return out


def hits(result, rule) -> bool:
    return any(step.event == "match" and step.rule is rule for step in result.trace)


def bed_walk(ruleset, family: int, space):
    """``reach.analyze`` with the walk starting from the sendable packets."""
    from ruleanalyzer.space import reach

    return reach.analyze(ruleset, "input", family, space, start=sendable(space, family))


def witness_probe(part, ident, used, text, accept):
    """A probe for a packet of raw set ``part`` (a PacketSet) whose
    5-tuple is not in ``used`` and which ``accept(probe)`` likes (first
    candidate otherwise); None when the set has no sendable packet."""
    from ruleanalyzer.space.witness import witness

    space = part.space
    node = part.node
    for _ in range(8):
        if node == space.false:
            return None, None
        w = witness(space.wrap(node), "input")
        cands = probe_candidates(w, ident, text)
        fresh = [p for p in cands if p.proto not in (TCP, UDP)
                 or (p.src, p.dst, p.proto, p.sport, p.dport) not in used]
        if not fresh:
            node &= ~tuple_node(space, cands[0]) if cands else space.false
            continue
        good = [p for p in fresh if accept(p)]
        chosen = (good or fresh)[0]
        used.add((chosen.src, chosen.dst, chosen.proto, chosen.sport, chosen.dport))
        return chosen, w
    return None, None


def rule_place(rule):
    chain = rule.chain
    return (chain.table.name if chain.table else None, chain.name, rule.index)


def moved(observation, place) -> bool:
    return any((c.table, c.chain, c.index) == place for c in observation.path)


# ---------------------------------------------------------------------------


def test_reachable_rules_are_hit_and_unreachable_rules_never_are():
    skip_without_kernel()
    from ruleanalyzer import loads
    from ruleanalyzer.engine.evaluate import Evaluator
    from ruleanalyzer.space.fields import Layout
    from ruleanalyzer.space.packetset import Space
    from ruleanalyzer.space.reach import analyze

    started = time.monotonic()
    plans = []  # (case, ruleset, [(probe, rule, kind, detail)])
    unsendable = 0
    for seed in SEEDS:
        case = generate(seed, RANDOM_PROBES)
        ruleset = loads(case.text, dialect="iptables")
        evaluator = Evaluator(ruleset)
        space = Space(Layout.for_ruleset(ruleset))
        bed = bed_walk(ruleset, case.family, space)
        plain = analyze(ruleset, "input", case.family, space)
        used = {(p.src, p.dst, p.proto, p.sport, p.dport) for p in case.probes}
        ident = (seed % 20000) * 1000 + 500
        checks = []
        for rule in bed.rules():
            sets = bed.rule_sets(rule)
            if sets.matched_lower.is_empty():
                continue
            ident += 1
            probe, w = witness_probe(sets.matched_lower, ident, used, case.text,
                                     lambda p, r=rule: hits(evaluator.evaluate(p.model_packet()), r))
            if probe is None:
                unsendable += 1
                continue
            checks.append((probe, rule, "reach", w))
        dead = [rule for rule, _ in plain.unreachable_rules()]
        for rule in dead:
            checks += [(p, rule, "dead", None) for p in case.probes]
            ident += 1
            part = plain.rule_sets(rule).match_upper & space.wrap(sendable(space, case.family))
            probe, w = witness_probe(part, ident, used, case.text, lambda p: True)
            if probe is not None:
                checks.append((probe, rule, "dead-own-match", w))
        probes = list(dict.fromkeys(c[0] for c in checks))
        plans.append((Case(case.seed, case.family, case.text, probes), ruleset, checks))
    analysed = time.monotonic() - started
    results = observe_cases([p[0] for p in plans], "iptables")
    failures, problems = [], []
    confirmed = {"reach": 0, "dead": 0}
    dead_probes = 0
    for (case, observations), (_, ruleset, checks) in zip(results, plans):
        by_ident = {o.probe.ident: o for o in observations}
        dead_rules_ok = {}
        for probe, rule, kind, w in checks:
            o = by_ident[probe.ident]
            if o.problem:
                problems.append(f"{case}: {probe.describe()}: {o.problem}")
                continue
            place = rule_place(rule)
            hit = moved(o, place)
            if kind == "reach":
                if hit:
                    confirmed["reach"] += 1
                else:
                    path = ", ".join(f"{c.table} {c.chain} {c.index or 'policy'}" for c in o.path)
                    failures.append(
                        f"===== {case}: the analysis says rule {place} is surely reached and matched by\n"
                        f"  witness {w}\n  sent as {probe.describe()}\n"
                        f"  kernel: {o.decision.describe() if o.decision else '-'}; counters moved: {path}\n"
                        f"  rule: {rule.text}\n{case.text}")
            else:
                dead_probes += 1
                dead_rules_ok.setdefault(id(rule), True)
                if hit:
                    dead_rules_ok[id(rule)] = False
                    failures.append(
                        f"===== {case}: the analysis calls rule {place} unreachable, the kernel counted\n"
                        f"  {probe.describe()}\n  rule: {rule.text}\n{case.text}")
        confirmed["dead"] += sum(dead_rules_ok.values())
    elapsed = time.monotonic() - started
    print(f"\nreach vs kernel over {len(SEEDS)} rulesets in {elapsed:.1f}s (analysis {analysed:.1f}s): "
          f"{confirmed['reach']} reachable rules hit by their witness, {confirmed['dead']} unreachable "
          f"rules never hit by {dead_probes} probes; {unsendable} reachable rules with no sendable "
          f"witness; {len(problems)} harness problems; {len(failures)} disagreements")
    assert len(problems) <= 3, "the harness could not read the kernel:\n" + "\n".join(problems[:10])
    if failures:
        pytest.fail(f"{len(failures)} disagreements with the kernel:\n" + "\n".join(failures[:8]),
                    pytrace=False)
    assert elapsed < TIME_LIMIT * 1.5, f"took {elapsed:.0f}s"
