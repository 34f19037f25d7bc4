"""Many packets through one ruleset: each class of packets the rules cannot
tell apart is evaluated once (``query --packets``, ``diff --flows``).

The classes are compiled once from the ruleset. For the source and
destination address the boundaries of every network a rule names (and of
the multicast and broadcast ranges the evaluator classifies addresses by)
cut the address space into atoms; for the ports, the boundaries of every
port range. Two packets whose addresses and ports lie in the same atoms and
whose other fields are equal satisfy exactly the same matches, so they get
the same verdict, deciding rule, depends-on and trace; only the packet in
the answer differs, and is swapped in.

NAT sets an address or port to a constant (or leaves it): each NAT target
address and port is an atom of its own, so within a class a field is either
kept by every packet or set to the same constant, and the answer's packet is
rebuilt field by field. The abstraction is only used where it is exact by
construction: with a host snapshot (routing reads the addresses) or with a
match on these fields of a kind not listed here a field stays exact, and a
packet of hook ``auto`` keeps its addresses. Otherwise the memo still
answers repeated packets once.
"""

from __future__ import annotations

from bisect import bisect_right
from operator import attrgetter
from dataclasses import fields as dataclass_fields
from dataclasses import replace

from ..model import (AddressMatch, AllOf, AnyOf, Dispatch, IntMatch, Nat, Packet, Ruleset)
from .evaluate import Evaluator
from .result import Result

_ADDRESS_FIELDS = ("src", "dst")
_PORT_FIELDS = ("sport", "dport")
#: The evaluator tells these address ranges apart whatever the rules say
#: (evaluate._address_types): IPv4 multicast 224/4 and broadcast, IPv6 ff00::/8.
_TYPE_BOUNDS = {4: (0xE0000000, 0xF0000000, 0xFFFFFFFF, 1 << 32),
                6: (0xFF << 120, 1 << 128)}
_OTHER_FIELDS = tuple(f.name for f in dataclass_fields(Packet)
                      if f.name not in _ADDRESS_FIELDS + _PORT_FIELDS + ("id",))
#: The packet's other fields as one tuple (part of its class key).
_others = attrgetter(*_OTHER_FIELDS)


def _walk(match, out: list) -> None:
    if isinstance(match, (AllOf, AnyOf)):
        for m in match.matches:
            _walk(m, out)
    else:
        out.append(match)


def _matches(ruleset: Ruleset):
    """Every leaf match of every rule (verdict-map branches included) and
    every NAT action."""
    leaves: list = []
    nat: list = []
    for table in ruleset.tables:
        for chain in table.chains.values():
            for rule in chain.rules:
                for m in rule.matches:
                    _walk(m, leaves)
                for action in (rule.action, *rule.effects):
                    if isinstance(action, Nat):
                        nat.append(action)
                    elif isinstance(action, Dispatch):
                        for m, branch in action.branches:
                            _walk(m, leaves)
                            if isinstance(branch, Nat):
                                nat.append(branch)
    return leaves, nat


class Classes:
    """Per field, the sorted atom boundaries (None: the field stays exact)."""

    def __init__(self, ruleset: Ruleset):
        leaves, nats = _matches(ruleset)
        exact = ruleset.host is not None
        bounds: dict = {"src": {4: set(_TYPE_BOUNDS[4]), 6: set(_TYPE_BOUNDS[6])},
                        "dst": {4: set(_TYPE_BOUNDS[4]), 6: set(_TYPE_BOUNDS[6])},
                        "sport": set(), "dport": set()}
        usable = {f: not exact for f in bounds}
        for action in nats:  # a NAT target is an atom of its own (see the module doc)
            if action.to_addr is not None:
                value = int(action.to_addr)
                for f in _ADDRESS_FIELDS:
                    bounds[f][action.to_addr.version].update((value, value + 1))
            if action.to_port is not None:
                for f in _PORT_FIELDS:
                    bounds[f].update((action.to_port, action.to_port + 1))
        for m in leaves:
            field = getattr(m, "field", None)
            if field not in bounds:
                continue
            if isinstance(m, AddressMatch) and field in _ADDRESS_FIELDS:
                for net in m.networks:
                    start = int(net.network_address)
                    bounds[field][net.version].update((start, start + net.num_addresses))
            elif isinstance(m, IntMatch) and field in _PORT_FIELDS:
                for lo, hi in m.ranges:
                    bounds[field].update((lo, hi + 1))
            else:
                usable[field] = False  # a match this module does not know reads it
        self.bounds = {
            f: ({v: sorted(b) for v, b in bounds[f].items()} if f in _ADDRESS_FIELDS else sorted(bounds[f]))
            if usable[f] else None
            for f in bounds}

    def key(self, packet: Packet) -> tuple:
        b = self.bounds
        version = packet.src.version
        if packet.hook == "auto":
            src, dst = int(packet.src), int(packet.dst)
        else:
            src = bisect_right(b["src"][version], int(packet.src)) if b["src"] else int(packet.src)
            dst = bisect_right(b["dst"][version], int(packet.dst)) if b["dst"] else int(packet.dst)
        sport, dport = packet.sport, packet.dport
        if sport is not None and b["sport"] is not None:
            sport = bisect_right(b["sport"], sport)
        if dport is not None and b["dport"] is not None:
            dport = bisect_right(b["dport"], dport)
        return (version, src, dst, sport, dport, _others(packet))


def _rebase(result: Result, was: Packet, packet: Packet) -> Result:
    """``result`` (of ``was``) as the answer for ``packet`` of the same class."""
    out = result.packet
    if out is was:
        out = packet
    else:
        # a field the answer kept is the packet's own; one NAT set is the
        # class's constant; marks and flags set by rules are the class's too
        kept = {f: getattr(packet, f) for f in _ADDRESS_FIELDS + _PORT_FIELDS
                if getattr(out, f) == getattr(was, f)}
        out = replace(out, id=packet.id, **kept)
    alternatives = tuple(_rebase(a, was, packet) for a in result.alternatives)
    return replace(result, packet=out, alternatives=alternatives)


class BatchEvaluator:
    """``evaluate(packet)`` like :class:`Evaluator`, each class of packets once."""

    def __init__(self, ruleset: Ruleset):
        self.ruleset = ruleset
        self.evaluator = Evaluator(ruleset)
        #: Compiled once enough packets came to pay for it (about the time
        #: of 1 evaluation per 10 rules); until then the memo is per packet.
        self.classes: Classes | None = None
        self._before_classes = max(64, ruleset.rule_count // 10)
        self._memo: dict = {}
        self._asked = self._hits = 0
        #: Packets that seldom share a class (under 2% of 4,000 once the
        #: classes exist) are evaluated one by one: the keys would only cost.
        self.memoize = True

    def evaluate(self, packet: Packet) -> Result:
        if not self.memoize:
            return self.evaluator.evaluate(packet)
        if self.classes is not None:
            self._asked += 1
            if self._asked == 4000 and self._hits < 80:
                self.memoize = False
                self._memo.clear()
                return self.evaluator.evaluate(packet)
        else:
            self._before_classes -= 1
            if self._before_classes < 0:
                self.classes = Classes(self.ruleset)
        key = self.classes.key(packet) if self.classes is not None else packet
        hit = self._memo.get(key)
        if hit is None:
            result = self.evaluator.evaluate(packet)
            self._memo[key] = (packet, result)
            return result
        self._hits += 1
        was, result = hit
        return result if was == packet else _rebase(result, was, packet)


def evaluate_many(ruleset: Ruleset, packets) -> list[Result]:
    """The answer for every packet, as :func:`~ruleanalyzer.engine.evaluate` gives it."""
    batch = BatchEvaluator(ruleset)
    return [batch.evaluate(p) for p in packets]
