"""A whole TCP connection through one firewall, leg by leg, with conntrack.

The handshake (SYN, SYN-ACK, ACK) and data both ways are evaluated in order;
each packet after the SYN belongs to the connection the SYN opened, so it is
ESTABLISHED to conntrack — unless the SYN was never tracked (NOTRACK), in
which case the kernel sees every later packet as a fresh one (a SYN-ACK with
no connection is INVALID).

With ECN on, the legs are the RFC 3168 ones: an ECN-setup SYN (SYN+ECE+CWR),
an ECN-setup SYN-ACK (SYN+ACK+ECE), data marked ECT(0), a CE-marked data
packet, the receiver's ACK echoing ECE and the sender's CWR. What real stacks
do when an ECN leg dies is reported too: Linux retries an unanswered SYN
after 1 s without ECE/CWR, so a dropped ECN SYN costs a second and ECN, not
the connection — but a dropped ECT/CE data packet stalls an established one.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace

from ..errors import RuleAnalyzerError
from ..model import ACK, CWR, ECE, ECN_NAMES, PSH, SYN, EcnStrip, Packet, Ruleset
from .evaluate import Evaluator
from .result import Result

ECT0, CE = 2, 3

#: Which hook each direction crosses, by where the firewall sits.
DIRECTION_HOOKS = {
    "input": {"to_server": "input", "to_client": "output"},    # the firewall is the server
    "output": {"to_server": "output", "to_client": "input"},   # the firewall is the client
    "forward": {"to_server": "forward", "to_client": "forward"},
}


@dataclass(frozen=True)
class LegSpec:
    name: str
    direction: str  # to_server | to_client
    flags: int
    ecn: int = 0
    handshake: bool = False


PLAIN_LEGS = (
    LegSpec("SYN", "to_server", SYN, handshake=True),
    LegSpec("SYN-ACK", "to_client", SYN | ACK, handshake=True),
    LegSpec("ACK", "to_server", ACK, handshake=True),
    LegSpec("data client→server", "to_server", PSH | ACK),
    LegSpec("data server→client", "to_client", PSH | ACK),
)

ECN_LEGS = (
    LegSpec("SYN+ECE+CWR (ECN setup)", "to_server", SYN | ECE | CWR, handshake=True),
    LegSpec("SYN-ACK+ECE (ECN setup)", "to_client", SYN | ACK | ECE, handshake=True),
    LegSpec("ACK", "to_server", ACK, handshake=True),
    LegSpec("data client→server, ECT(0)", "to_server", PSH | ACK, ECT0),
    LegSpec("data server→client, ECT(0)", "to_client", PSH | ACK, ECT0),
    LegSpec("data client→server, CE mark", "to_server", PSH | ACK, CE),
    LegSpec("ACK server→client with ECE", "to_client", ACK | ECE),
    LegSpec("data client→server with CWR", "to_server", PSH | ACK | CWR, ECT0),
)


@dataclass
class Leg:
    """One packet of the connection and what the firewall does to it."""

    name: str
    direction: str
    packet: Packet
    result: Result | None  # None: never sent, an earlier leg died
    #: A dropped ECN-marked data segment is retransmitted without ECT/CWR
    #: (RFC 3168 §6.1.5): what the firewall does to that retransmission.
    retry: Result | None = None

    @property
    def verdict(self) -> str:
        return self.result.verdict if self.result else "not sent"

    @property
    def outcome(self) -> str:
        """The verdict once the sender's retransmission is counted."""
        if self.verdict == "drop" and self.retry is not None:
            return self.retry.verdict
        return self.verdict

    @property
    def degraded(self) -> bool:
        """Dropped, but its plain retransmission gets through (slowly)."""
        return self.verdict == "drop" and self.outcome == "accept"

    @property
    def summary(self) -> str:
        """The leg's fate in words: its verdict, or ``passes after retry``
        when the packet is dropped but the sender's retransmission (Linux's
        SYN without ECE/CWR, data without ECT) passes."""
        return "passes after retry" if self.degraded else self.verdict

    @property
    def received(self) -> Packet | None:
        """What the peer receives: the packet after every rewrite on the way
        (ECN target, DSCP/TOS, NAT, marks), or None when it never arrives."""
        if self.result is None:
            return None
        arrived = self.retry if self.degraded else self.result
        return arrived.packet if arrived.verdict == "accept" else None


def connection_passes(verdicts) -> bool | None:
    """A connection works when every leg is accepted; a dropped or unsent
    leg blocks it; otherwise it depends on something unknown."""
    verdicts = set(verdicts)
    if "drop" in verdicts or "not sent" in verdicts:
        return False
    if "unknown" in verdicts:
        return None
    return True


@dataclass
class Variant:
    """One way to run the connection: ECN off or on."""

    ecn: bool
    legs: list[Leg] = field(default_factory=list)
    #: Is ECN negotiated end to end (the server got an ECN-setup SYN and the
    #: client an ECN-setup SYN-ACK)? None: it depends on something unknown.
    ecn_negotiated: bool | None = False
    #: Why it is not (or what it depends on), in words.
    ecn_why: str = ""

    @property
    def passes(self) -> bool | None:
        return connection_passes(leg.outcome for leg in self.legs)

    @property
    def first_failure(self) -> Leg | None:
        for leg in self.legs:
            if leg.outcome in ("drop", "unknown"):
                return leg
        return None

    @property
    def degraded_legs(self) -> list[Leg]:
        return [leg for leg in self.legs if leg.degraded]


@dataclass
class ConnectReport:
    """Every leg of a TCP connection, for each ECN variant asked for."""

    client: str
    server: str
    dport: int
    hook: str
    variants: list[Variant]
    ruleset: Ruleset | None = field(default=None, repr=False)
    #: With ECN on only: the plain connection Linux retries with.
    plain_retry: Variant | None = None
    #: What a host snapshot decided (the hook, the ECN default).
    notes: list[str] = field(default_factory=list)

    @property
    def legs(self) -> list[Leg]:
        return self.variants[0].legs

    @property
    def passes(self) -> bool | None:
        """True when every variant's connection works (an ECN variant that
        only works after falling back counts as working), False when one is
        blocked, None when one depends on something unknown."""
        outcomes = [self.variant_outcome(v) for v in self.variants]
        if False in outcomes:
            return False
        if None in outcomes:
            return None
        return True

    def variant_outcome(self, variant: Variant) -> bool | None:
        if variant.passes is not False or not variant.ecn:
            return variant.passes
        failed = variant.first_failure
        if failed is not None and failed.name.startswith("SYN") and self.fallback is not None:
            return self.fallback.passes
        return False

    @property
    def fallback(self) -> Variant | None:
        """The plain variant Linux falls back to when an ECN SYN or SYN-ACK dies."""
        return next((v for v in self.variants if not v.ecn), self.plain_retry)

    def explain(self) -> list[str]:
        """Plain words, one sentence per variant."""
        return [explain_variant(self, v) for v in self.variants]


def _describe(result: Result) -> str:
    if result.decided_by is None:
        return "no rule (nothing filters this path)"
    return result.decided_by.describe()


def _short(result: Result) -> str:
    d = result.decided_by
    if d is None:
        return "no rule"
    chain = d.chain.name
    if d.rule is None:
        return f"the {chain} policy {(d.chain.policy or 'accept').upper()}"
    loc = d.rule.location
    line = f", line {loc.line}" if loc.line else (f", {loc.path}" if loc.path else "")
    ident = f" ({d.rule.ident})" if d.rule.ident else ""
    return f"{chain} rule {d.rule.index}{ident}{line}"


def explain_variant(report: ConnectReport, variant: Variant) -> str:
    label = "With ECN" if variant.ecn else "Without ECN"
    failed = variant.first_failure
    if failed is None:
        slow = [leg for leg in variant.degraded_legs if not leg.name.startswith("SYN")]
        syn = next((leg for leg in variant.degraded_legs if leg.name.startswith("SYN")), None)
        if syn is not None:
            sentence = (f"{label}: the {syn.name} is dropped by {_short(syn.result)}: Linux retries an "
                        "unanswered SYN after 1 s without ECE/CWR, so the connection still opens, a "
                        "second late and without ECN.")
            if slow:
                sentence += " Later, " + ", ".join(f"the {leg.name}" for leg in slow) + " waits for a retransmission."
            return sentence
        if variant.ecn and variant.ecn_negotiated is False and variant.ecn_why:
            return f"{label}: the connection works, but ECN is not negotiated: {variant.ecn_why}."
        if slow:
            names = ", ".join(f"the {leg.name} (dropped by {_short(leg.result)})" for leg in slow)
            return (f"{label}: the connection works, but slowly: {names}. Linux retransmits data "
                    "without ECT/CWR (RFC 3168 §6.1.5), so every such segment waits for a "
                    "retransmission timeout — ECN-marked packets are black-holed.")
        return f"{label}: the connection works; every leg is accepted."
    previous = [leg for leg in variant.legs if leg.result is not None and leg is not failed
                and variant.legs.index(leg) < variant.legs.index(failed)]
    before = ""
    if previous:
        last = previous[-1]
        before = f"the {last.name} is accepted by {_short(last.result)} but "
    if failed.verdict == "unknown":
        deps = "; ".join(failed.result.depends_on) or "undecidable conditions"
        return f"{label}: {before}whether the {failed.name} passes depends on: {deps}."
    consequence = {
        "SYN": "the client times out",
        "SYN-ACK": "the client never sees an answer and times out (the server keeps a half-open connection)",
        "ACK": "the server retransmits its SYN-ACK; the handshake never completes on the server",
    }
    key = failed.name.split("+")[0].split(" ")[0]
    if key.startswith("data") or failed.name.startswith("ACK server") or failed.name.startswith("data"):
        tail = "the connection opens but then stalls"
    else:
        tail = consequence.get(key, "the connection fails")
    sentence = f"{label}: {before}the {failed.name} is dropped by {_short(failed.result)}: {tail}."
    if variant.ecn and failed.name.startswith("SYN"):
        fb = report.fallback
        if fb is not None and fb.passes:
            sentence += (" Linux retries an unanswered SYN after 1 s without ECE/CWR, so the connection"
                         " still opens, a second late and without ECN.")
        elif fb is not None and fb.passes is False:
            sentence += " The retry without ECN is blocked too."
    if variant.ecn and ("ECT" in failed.name or "CE mark" in failed.name or "ECE" in failed.name
                        or "CWR" in failed.name) and not failed.name.startswith("SYN"):
        sentence += " ECN-marked packets are black-holed: a classic ECN trap."
    return sentence


def _ip(value) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(str(value))
    except ValueError as exc:
        raise RuleAnalyzerError(str(exc)) from None


#: Legs that exist only on a connection that negotiated ECN (RFC 3168): a
#: router marks CE only on ECT packets, and ECE/CWR echo CE.
ECN_ONLY_LEGS = frozenset({"data client→server, CE mark", "ACK server→client with ECE",
                           "data client→server with CWR"})


def _plain_name(name: str) -> str:
    """A leg's name once ECN is off the connection."""
    return (name.replace("SYN-ACK+ECE (ECN setup)", "SYN-ACK (no ECE: ECN not negotiated)")
            .replace(", ECT(0)", ", not-ECT (ECN not negotiated)"))


def run_variant(evaluator: Evaluator, client, server, dport: int, sport: int, hook: str, ecn: bool,
                iif: str | None = None, oif: str | None = None, proto: int = 6) -> Variant:
    """Evaluate the legs of one variant in order, keeping connection state.

    With ECN, what each handshake leg's peer *receives* decides the rest: a
    SYN whose ECE/CWR a rule strips (``-j ECN --ecn-tcp-remove``) reaches the
    server as a plain SYN, so the server answers without ECE, ECN is not
    negotiated and no data leg carries ECT marks; an ECN SYN that is dropped
    is retried by Linux after 1 s without ECE/CWR (the leg passes after
    retry, without ECN)."""
    hooks = DIRECTION_HOOKS[hook]
    variant = Variant(ecn=ecn, ecn_negotiated=True if ecn else False,
                      ecn_why="" if ecn else "the client does not ask for ECN")
    tracked = True
    # Addresses as the firewall's filter chains see them; NAT of the first
    # packet applies to the whole connection.
    orig = {"to_server": (client, server, sport, dport), "to_client": (server, client, dport, sport)}
    hook_of = dict(hooks)
    dead = False
    # What the connection holds once its first packet passed: the mark it
    # saved (CONNMARK, ``ct mark set``) and whether NAT translated it — every
    # later packet of it, either way, carries them (``ct mark``, ``ct status``).
    conn_mark, conn_nat = 0, frozenset()
    for i, spec in enumerate(ECN_LEGS if ecn else PLAIN_LEGS):
        name, flags, codepoint = spec.name, spec.flags, spec.ecn
        if ecn and variant.ecn_negotiated is False and i > 0:
            if spec.name in ECN_ONLY_LEGS:
                continue  # no ECT packets: nothing is CE-marked, nothing echoed
            name, flags, codepoint = _plain_name(spec.name), flags & ~(ECE | CWR), 0
        src, dst, sp, dp = orig[spec.direction]
        if spec.direction == "to_server":
            iface = {"iif": iif, "oif": oif}
        else:
            iface = {"iif": oif, "oif": iif}
        if hook_of[spec.direction] == "input":
            iface["oif"] = None
        elif hook_of[spec.direction] == "output":
            iface["iif"] = None
        if i == 0:
            state, direction, status = "new", "original", frozenset()
        elif tracked:
            state = "established"
            direction = "original" if spec.direction == "to_server" else "reply"
            status = (frozenset({"seen_reply"}) if i >= 2 else frozenset()) | conn_nat
        else:
            state, direction, status = "new", None, frozenset()
        packet = Packet(src=src, dst=dst, proto=proto, sport=sp, dport=dp, flags=flags,
                        ecn=codepoint, state=state, hook=hook_of[spec.direction],
                        ct_direction=direction, ct_status=status,
                        ctmark=conn_mark if i and tracked else 0, **iface)
        if dead:
            variant.legs.append(Leg(name, spec.direction, packet, None))
            continue
        result = evaluator.evaluate(packet)
        leg = Leg(name, spec.direction, packet, result)
        if result.verdict == "drop" and flags & PSH and (codepoint or flags & CWR):
            leg.retry = evaluator.evaluate(replace(packet, ecn=0, flags=flags & ~CWR))
        elif i == 0 and ecn and result.verdict == "drop":
            # Linux retries an unanswered SYN after 1 s without ECE/CWR
            leg.retry = evaluator.evaluate(replace(packet, flags=SYN))
        variant.legs.append(leg)
        received = leg.received
        if ecn and codepoint and received is not None and received.ecn != codepoint:
            # TOS/DSCP targets that clear the ECN bits: no congestion mark arrives
            variant.ecn_why = "; ".join(filter(None, (
                variant.ecn_why, f"the {name} arrives with ECN field {ECN_NAMES[received.ecn]}, "
                                 f"not {ECN_NAMES[codepoint]} (a rule rewrites it on the way)")))
        effective = leg.retry if leg.degraded else result
        if ecn and i <= 1 and variant.ecn_negotiated is not False:
            _negotiation(variant, leg, effective, "SYN" if i == 0 else "SYN-ACK")
        if i == 0 and effective.verdict != "drop":
            if effective.state == "untracked":
                tracked = False
            out = effective.packet
            translated = (out.dst, out.dport) != (dst, dp)
            conn_mark = out.ctmark
            conn_nat = frozenset(status for status, moved in (
                ("dnat", translated), ("snat", (out.src, out.sport) != (src, sp))) if moved)
            if translated:
                # DNAT: the rest of the connection is seen translated, and a
                # translated packet for another host is forwarded.
                orig = {"to_server": (client, out.dst, sport, out.dport),
                        "to_client": (out.dst, client, out.dport, sport)}
                if effective.outcome == "forwarded":
                    hook_of = {"to_server": "forward", "to_client": "forward"}
        elif i and tracked and effective.verdict == "accept":
            conn_mark = effective.packet.ctmark  # (a later packet may set the connection's mark too)
        if effective.verdict == "drop" and spec.handshake:
            dead = True
    return variant


def _negotiation(variant: Variant, leg: Leg, effective: Result, which: str) -> None:
    """Update ``variant.ecn_negotiated`` with what the handshake leg's peer
    receives: the ECN-setup SYN must arrive with ECE and CWR, the SYN-ACK
    with ECE."""
    if leg.degraded:
        variant.ecn_negotiated = False
        variant.ecn_why = (f"the ECN-setup {which} is dropped by {_short(leg.result)}; Linux's retry "
                           "without ECE/CWR passes, without ECN")
        return
    if effective.verdict == "unknown":
        variant.ecn_negotiated = None
        variant.ecn_why = f"whether the {which} passes depends on: " + "; ".join(effective.depends_on)
        return
    if effective.verdict != "accept":
        variant.ecn_negotiated = False
        variant.ecn_why = f"the ECN-setup {which} is dropped by {_short(effective)}"
        return
    wanted = ECE | CWR if which == "SYN" else ECE
    got = effective.packet.flags & wanted
    if got != wanted:
        variant.ecn_negotiated = False
        peer = "server" if which == "SYN" else "client"
        rewriter = next((f"{step.chain.qualified_name} rule {step.rule.index}" for step in effective.trace
                         if step.rule is not None and any(isinstance(a, EcnStrip) for a in
                                                          (step.rule.action, *step.rule.effects))),
                        "a rule")
        variant.ecn_why = (f"{rewriter} strips the ECN-setup {which} on the way: the {peer} receives it "
                           f"without {'ECE/CWR' if which == 'SYN' else 'ECE'}, so ECN is not negotiated"
                           " and no data is ECT-marked")


def connect(ruleset: Ruleset, client: str, server: str, dport: int, *, hook: str | None = "input",
            ecn: str | None = "off", sport: int = 40000, iif: str | None = None,
            oif: str | None = None) -> ConnectReport:
    """Every leg of a TCP connection from ``client`` to ``server:dport``
    through the firewall ``ruleset``, where ``hook`` says where the firewall
    sits: ``input`` — it is the server; ``output`` — it is the client;
    ``forward`` — it routes between them. ``ecn`` is ``off``, ``on`` or
    ``both``. With a host snapshot (``ruleset.host``), ``hook`` None or
    ``auto`` is decided by the host's addresses and ``ecn`` None by what
    the host's ``net.ipv4.tcp_ecn`` makes its connections do
    (:func:`host_defaults`); without one they mean ``input`` and ``both``.

    >>> from ruleanalyzer import loads
    >>> rs = loads("*filter\\n:INPUT DROP [0:0]\\n:OUTPUT DROP [0:0]\\n"
    ...            "-A INPUT -p tcp --dport 22 -j ACCEPT\\nCOMMIT\\n", dialect="iptables")
    >>> report = connect(rs, "192.0.2.1", "198.51.100.1", 22)
    >>> report.passes, report.variants[0].first_failure.name
    (False, 'SYN-ACK')
    """
    c, s = _ip(client), _ip(server)
    hook, ecn, notes = host_defaults(ruleset, c, s, hook, ecn)
    if hook not in DIRECTION_HOOKS:
        raise RuleAnalyzerError(f"unknown hook {hook!r}", hint="use input, forward, output or auto")
    if ecn not in ("off", "on", "both"):
        raise RuleAnalyzerError(f"unknown ECN mode {ecn!r}", hint="use off, on or both")
    if c.version != s.version:
        raise RuleAnalyzerError(f"client {c} and server {s} are of different IP versions")
    if not 0 < int(dport) < 65536:
        raise RuleAnalyzerError(f"port {dport} is out of range 1-65535")
    evaluator = Evaluator(ruleset)
    modes = {"off": [False], "on": [True], "both": [False, True]}[ecn]
    variants = [run_variant(evaluator, c, s, int(dport), sport, hook, m, iif, oif) for m in modes]
    plain_retry = None
    if ecn == "on":
        plain_retry = run_variant(evaluator, c, s, int(dport), sport, hook, False, iif, oif)
    report = ConnectReport(str(c), str(s), int(dport), hook, variants, ruleset, plain_retry)
    report.notes = notes
    return report


def host_defaults(ruleset: Ruleset, client, server, hook: str | None, ecn: str | None):
    """``(hook, ecn, notes)`` with the host snapshot's answers filled in.

    The hook: the client's address is the host's → ``output``; the
    server's → ``input``; neither → ``forward``. ECN (``net.ipv4.tcp_ecn``,
    which covers IPv6 too): as the client, the host asks for ECN only with
    1; as the server it takes ECN when asked with 1 or 2 (the default) and
    never with 0; through a router the endpoints decide (both variants)."""
    host = ruleset.host
    notes: list[str] = []
    if hook in (None, "auto"):
        if host is None:
            hook = "input"
        elif host.is_local(client):
            hook, _ = "output", notes.append(f"the firewall is the client: {client} is an address of this host")
        elif host.is_local(server):
            hook, _ = "input", notes.append(f"the firewall is the server: {server} is an address of this host")
        else:
            hook, _ = "forward", notes.append(f"the firewall routes: neither {client} nor {server} is "
                                              "an address of this host")
    if ecn is None:
        value = host.tcp_ecn if host is not None else None
        if value is None or hook == "forward":
            ecn = "both"
        elif hook == "output":
            ecn = "on" if value == 1 else "off"
            notes.append(f"net.ipv4.tcp_ecn={value}: this host {'asks for' if value == 1 else 'does not ask for'} "
                         "ECN on its connections")
        else:
            ecn = "off" if value == 0 else "both"
            notes.append(f"net.ipv4.tcp_ecn={value}: this host "
                         f"{'never accepts ECN' if value == 0 else 'accepts ECN when the client asks'}")
    return hook, ecn, notes
