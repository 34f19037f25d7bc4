"""Policy assertions: flows that must be allowed or denied, checked exactly.

In ``.ruleanalyzer.yaml`` (the same file as the audit settings)::

    policy:
      - name: https reaches the web server
        allow: 443/tcp from anywhere to 10.0.0.5
      - name: no ssh from anywhere
        deny: 22/tcp from 0.0.0.0/0
      - name: postgres only from inside
        only: 5432/tcp from 10.0.0.0/8        # every other source is denied
      - name: the web handshake works
        connect: 198.51.100.7 -> 10.0.0.5:443  # expect: blocked to assert the opposite

A flow is ``PORT/PROTO`` (or a port range ``8000-8080/tcp``, or just a
protocol ``icmp``), then optional ``from SRC``, ``to DST`` (``anywhere`` or
comma-separated CIDRs) and ``on HOOK`` (input by default). It means the
first packet of a new connection: a plain SYN for TCP.

``allow`` holds when every packet of the flow is surely accepted, ``deny``
when every one is surely dropped — over the whole packet space, not a
sample; a failure carries a witness packet and the rule that decided it.
With a host snapshot, packets its routing drops count (dropped, by no
rule), but not the reverse-path filter's spoofed copies: a flow names no
input interface, and a query picks the one the filter lets pass. On
``forward`` a packet whose TTL expires there is not one of the flow's.

From pytest::

    from ruleanalyzer.policy import assert_allows, assert_denies
    assert_denies(ruleset, "22/tcp from 0.0.0.0/0")
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from .safeyaml import load_yaml, load_yaml_node

from .engine.connect import connect
from .engine.evaluate import Evaluator
from .engine.result import Result
from .errors import RuleAnalyzerError
from .model import (ACK, FIN, RST, SYN, AddressMatch, BitsMatch, IntMatch, Location, NameMatch,
                    Packet, Ruleset, protocol_number)
from .space import Layout, Space, witness
from .space.encode import encode_conjunction
from .space.packetset import cyclic_gc_paused
from .space.reach import analyze

KINDS = ("allow", "deny", "only", "connect")
HOOKS = ("input", "forward", "output")


@dataclass(frozen=True)
class Flow:
    """The first packets of new connections: protocol, ports, sources, destinations."""

    proto: int | None = None
    ports: tuple[int, int] | None = None
    src: tuple = ()
    dst: tuple = ()
    hook: str = "input"
    text: str = ""

    def families(self, ruleset: Ruleset) -> list[int]:
        nets = [*self.src, *self.dst]
        if nets:
            return sorted({n.version for n in nets})
        from .diff import _families
        return sorted(_families(ruleset))

    def matches(self, src_override: tuple | None = None) -> list:
        out = []
        if self.proto is not None:
            out.append(IntMatch("proto", ((self.proto, self.proto),)))
            if self.proto == 6:
                out.append(BitsMatch("flags", SYN | ACK | RST | FIN, frozenset({SYN})))
        if self.ports is not None:
            out.append(IntMatch("dport", (self.ports,)))
        src = self.src if src_override is None else src_override
        if src:
            out.append(AddressMatch("src", tuple(src)))
        if self.dst:
            out.append(AddressMatch("dst", tuple(self.dst)))
        out.append(NameMatch("state", frozenset({"new"})))
        return out


@dataclass(frozen=True)
class Assertion:
    kind: str  # allow | deny | only | connect
    flow: Flow | None
    name: str = ""
    #: connect: (client, server, dport) and whether it must pass.
    connection: tuple[str, str, int] | None = None
    expect_pass: bool = True
    location: Location | None = None

    def describe(self) -> str:
        what = self.flow.text if self.flow else f"{self.connection[0]} -> {self.connection[1]}:{self.connection[2]}"
        return self.name or f"{self.kind}: {what}"


@dataclass
class PolicyFailure:
    """One assertion that does not hold, with a packet showing it."""

    assertion: Assertion
    message: str
    witness: Packet | None = None
    result: Result | None = field(default=None, repr=False)

    def __str__(self) -> str:
        text = f"{self.assertion.describe()}: {self.message}"
        if self.witness is not None:
            text += f"\n  witness: {self.witness.describe()} on {self.witness.hook}"
        if self.result is not None:
            d = self.result.decided_by
            text += f"\n  verdict: {self.result.verdict}" + (f" by {d.describe()}" if d else "")
        return text


# ---------------------------------------------------------------------------
# Reading assertions
# ---------------------------------------------------------------------------


def parse_flow(text: str, hook: str = "input") -> Flow:
    """``443/tcp from anywhere to 10.0.0.5 on input`` → :class:`Flow`."""
    words = str(text).replace("->", " to ").split()
    if not words:
        raise RuleAnalyzerError("empty flow", hint="e.g. 443/tcp from anywhere to 10.0.0.5")
    head, rest = words[0], words[1:]
    proto, ports = None, None
    port_text, _, proto_text = head.partition("/")
    try:
        if proto_text:
            proto = protocol_number(proto_text)
            lo, _, hi = port_text.partition("-")
            ports = (int(lo), int(hi or lo))
        elif port_text.replace("-", "").isdigit():
            proto, (lo, _, hi) = None, port_text.partition("-")
            ports = (int(lo), int(hi or lo))
        else:
            proto = protocol_number(port_text)
    except ValueError as exc:
        raise RuleAnalyzerError(f"bad flow {text!r}: {exc}") from None
    if ports and not (0 <= ports[0] <= ports[1] <= 65535):
        raise RuleAnalyzerError(f"bad port range in flow {text!r}")
    src, dst = (), ()
    i = 0
    while i < len(rest):
        key = rest[i].lower()
        if key not in ("from", "to", "on") or i + 1 >= len(rest):
            raise RuleAnalyzerError(f"bad flow {text!r} at {rest[i]!r}",
                                    hint="PORT/PROTO [from SRC] [to DST] [on HOOK]")
        value = rest[i + 1]
        if key == "on":
            if value not in HOOKS:
                raise RuleAnalyzerError(f"unknown hook {value!r} in flow {text!r}")
            hook = value
        else:
            nets = _networks(value, text)
            if key == "from":
                src = nets
            else:
                dst = nets
        i += 2
    return Flow(proto, ports, src, dst, hook, str(text))


def _networks(value: str, text: str) -> tuple:
    if value.lower() in ("anywhere", "any", "*"):
        return ()
    try:
        return tuple(ipaddress.ip_network(v, strict=False) for v in value.split(",") if v)
    except ValueError as exc:
        raise RuleAnalyzerError(f"bad address in flow {text!r}: {exc}") from None


def parse_policy(entries, source: str = "<policy>", places: list | None = None) -> list[Assertion]:
    """Assertions from the ``policy:`` list of a config file; ``places``:
    each entry's ``(line, column)`` in the file, for messages."""
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise RuleAnalyzerError("policy must be a list of assertions", Location(source))
    out = []
    for n, entry in enumerate(entries, 1):
        line, column = places[n - 1] if places and n - 1 < len(places) else (None, None)
        where = Location(source, line, column, path=f"policy[{n - 1}]")
        try:
            out.append(_assertion(entry, where))
        except RuleAnalyzerError as exc:
            if exc.location is None:  # a flow's own error: said where the entry is
                exc.location = where
            raise
    return out


def _assertion(entry, where: Location) -> Assertion:
    if not isinstance(entry, dict):
        raise RuleAnalyzerError("each policy entry must be a mapping", where)
    kinds = [k for k in KINDS if k in entry]
    if len(kinds) != 1:
        raise RuleAnalyzerError(f"each policy entry needs exactly one of {', '.join(KINDS)}", where)
    kind = kinds[0]
    name = str(entry.get("name", ""))
    hook = str(entry.get("hook", "input"))
    if hook not in ("input", "forward", "output"):
        raise RuleAnalyzerError(f"unknown hook {hook!r} (input, forward, output)", where)
    expect = str(entry.get("expect", "pass")).lower()
    if kind == "connect":
        return Assertion(kind, None, name, _connection(str(entry[kind]), where),
                         expect in ("pass", "passes", "open"), where)
    return Assertion(kind, parse_flow(str(entry[kind]), hook), name, location=where)


def _connection(text: str, where: Location) -> tuple[str, str, int]:
    client, sep, server = text.partition("->")
    host, _, port = server.strip().rpartition(":")
    if not sep or not port.isdigit():
        raise RuleAnalyzerError(f"connect needs CLIENT -> SERVER:PORT, not {text!r}", where)
    return client.strip(), host.strip("[] "), int(port)


def load_policy(path: str | Path | None = None) -> list[Assertion]:
    """The ``policy:`` section of ``path`` or of the nearest
    ``.ruleanalyzer.yaml`` (none: no assertions)."""
    if path is None:
        from .config import find_config

        path = find_config()
        if path is None or Path(path).suffix == ".toml":
            return []
    path = Path(path)
    from .config import read_config_text

    text = read_config_text(path)
    data = load_yaml(text, str(path)) or {}
    if not isinstance(data, dict):
        raise RuleAnalyzerError("config must be a mapping", Location(str(path)))
    return parse_policy(data.get("policy"), str(path), _entry_places(text, str(path)))


def _entry_places(text: str, name: str) -> list[tuple[int, int]]:
    """``(line, column)`` of each entry of the document's ``policy:`` list."""
    loader, node = load_yaml_node(text, name)
    loader.dispose()
    if node is None or node.id != "mapping":
        return []
    for key, value in node.value:
        if key.value == "policy" and value.id == "sequence":
            return [(item.start_mark.line + 1, item.start_mark.column + 1) for item in value.value]
    return []


# ---------------------------------------------------------------------------
# Checking
# ---------------------------------------------------------------------------


def check(ruleset: Ruleset, assertions: list[Assertion]) -> list[PolicyFailure]:
    """The assertions that fail on ``ruleset`` (empty: the policy holds)."""
    evaluator = Evaluator(ruleset)
    cache: dict = {}
    failures = []
    with cyclic_gc_paused():  # BDD work: the collector must not run inside dd
        space = Space(Layout.for_ruleset(ruleset))
        for a in assertions:
            failure = (_check_connect(ruleset, a) if a.kind == "connect"
                       else _check_flow(ruleset, a, space, evaluator, cache))
            if failure is not None:
                failures.append(failure)
    return failures


def _check_flow(ruleset, a: Assertion, space, evaluator, cache) -> PolicyFailure | None:
    flow = a.flow
    for family in flow.families(ruleset):
        key = (flow.hook, family)
        if key not in cache:
            cache[key] = analyze(ruleset, flow.hook, family, space)
        reach = cache[key]
        # packets the kernel can deliver: with a host snapshot also those
        # its routing then drops (no route, forwarding off; not the
        # reverse-path filter's spoofed copies, which a flow does not mean)
        arriving = reach.arriving
        if reach.routing_dropped is not None:
            arriving = arriving | reach.routing_dropped.upper
            if reach.spoofed is not None:
                arriving = arriving - reach.spoofed
        fam = space.wrap(space.family(family)) & arriving
        if flow.hook == "forward":
            # (a TTL that expires here is the path's, not the flow's: a
            # query's packet has 64, and ip_forward drops 0 and 1)
            fam = fam - space.wrap(space.at_most("ttl", 1))
        if a.kind == "only":
            allowed = (space.wrap(encode_conjunction([AddressMatch("src", flow.src)], space)[0])
                       if flow.src else space.all())
            packets = space.wrap(encode_conjunction(flow.matches(src_override=()), space)[0]) & fam - allowed
            must, word = reach.dropped.lower, "denied"
        else:
            packets = space.wrap(encode_conjunction(flow.matches(), space)[0]) & fam
            must, word = ((reach.accepted.lower, "allowed") if a.kind == "allow"
                          else (reach.dropped.lower, "denied"))
            if a.kind == "allow" and reach.unrouted_unknown is not None:
                must = must - reach.unrouted_unknown  # no routes in the snapshot: they may have none
        bad = packets - must
        if bad.is_empty():
            continue
        w = witness(bad, flow.hook)
        result = evaluator.evaluate(w)
        return PolicyFailure(a, f"not every packet is {word}", w, result)
    return None


def _check_connect(ruleset, a: Assertion) -> PolicyFailure | None:
    client, server, port = a.connection
    report = connect(ruleset, client, server, port, hook="input", ecn="off")
    if bool(report.passes) == a.expect_pass and report.passes is not None:
        return None
    leg = report.variants[0].first_failure
    return PolicyFailure(a, report.explain()[0], leg.packet if leg else None,
                         leg.result if leg else None)


# ---------------------------------------------------------------------------
# pytest helpers
# ---------------------------------------------------------------------------


def _assert(kind: str, ruleset: Ruleset, flow: str, hook: str) -> None:
    failures = check(ruleset, [Assertion(kind, parse_flow(flow, hook))])
    if failures:
        raise AssertionError(str(failures[0]))


def assert_allows(ruleset: Ruleset, flow: str, hook: str = "input") -> None:
    """Raise AssertionError (witness, deciding rule) unless every new
    connection of ``flow`` (``"443/tcp from anywhere to 10.0.0.5"``) is accepted."""
    _assert("allow", ruleset, flow, hook)


def assert_denies(ruleset: Ruleset, flow: str, hook: str = "input") -> None:
    """Raise AssertionError (witness, deciding rule) unless every new
    connection of ``flow`` is dropped."""
    _assert("deny", ruleset, flow, hook)


def assert_only_from(ruleset: Ruleset, flow: str, hook: str = "input") -> None:
    """``"5432/tcp from 10.0.0.0/8"``: every other source is dropped."""
    _assert("only", ruleset, flow, hook)
