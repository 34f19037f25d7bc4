"""Real flows as packets: ``conntrack -L`` output and AWS VPC flow log records.

``read_flows(text, name)`` sniffs the format and returns one :class:`Flow`
per record; every flow carries the packet fields of the connection's first
packet (the keys of :func:`ruleanalyzer.packets.make_packet`) and how much
traffic the record stands for. One parser module per format:
:mod:`.conntrack` and :mod:`.vpcflow`.

``compare_flows(old, new, flows)`` answers which real flows a change would
block or newly allow (``diff --flows``). Identical packets are evaluated
once, so a day of a host's flows is checked in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import RuleAnalyzerError
from ..model import Location

FORMATS = ("conntrack", "vpc-flow")


@dataclass(frozen=True, slots=True)
class Flow:
    """One record: ``fields`` for ``make_packet`` (no hook: the caller's
    default applies), the record's location, and the traffic it counts
    (``packets``/``bytes`` when the format says, else None)."""

    fields: tuple[tuple[str, object], ...]
    location: Location
    packets: int | None = None
    bytes: int | None = None
    note: str = ""

    def packet_fields(self) -> dict:
        return dict(self.fields)


def sniff(text: str) -> str | None:
    """``conntrack``, ``vpc-flow`` or None (then it is not a flows file)."""
    from . import conntrack, vpcflow

    for line in text.splitlines()[:50]:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if conntrack.looks_like(stripped):
            return "conntrack"
        if vpcflow.looks_like(stripped):
            return "vpc-flow"
        return None
    return None


def read_flows(text: str, name: str, fmt: str | None = None) -> list[Flow]:
    """Every record of a ``conntrack -L`` listing or a VPC flow log."""
    return _parser(text, name, fmt).parse(text, name)


def read_flow_fields(text: str, name: str, fmt: str | None = None) -> list[tuple]:
    """What :func:`read_flows` reads, lean (``query --packets``): per flow
    ``(line number, fields, counters…)``, the fields a new dict of the
    flow's ``fields`` (no hook); the same errors."""
    return _parser(text, name, fmt).entries(text, name)


def _parser(text: str, name: str, fmt: str | None):
    from . import conntrack, vpcflow

    fmt = fmt or sniff(text)
    if fmt == "conntrack":
        return conntrack
    if fmt == "vpc-flow":
        return vpcflow
    raise RuleAnalyzerError("cannot tell what kind of flows file this is", Location(name, 1, 1),
                            hint="give `conntrack -L` output or AWS VPC flow log records "
                                 "(default version 2 format)")


def to_packets(flows: list[Flow], default_hook: str) -> list:
    """One :class:`~ruleanalyzer.model.Packet` per flow; identical flows share one."""
    from ..packets import make_packet

    made: dict = {}
    out = []
    for flow in flows:
        packet = made.get(flow.fields)
        if packet is None:
            fields = flow.packet_fields()
            fields.setdefault("hook", default_hook)
            try:
                packet = made[flow.fields] = make_packet(**fields)
            except RuleAnalyzerError as exc:
                raise RuleAnalyzerError(f"bad flow: {exc.message}", flow.location) from None
        out.append(packet)
    return out


@dataclass
class FlowChange:
    """Distinct flows whose verdict differs between the versions."""

    packet: object
    old: object  # Result
    new: object  # Result
    records: int = 0
    packets: int | None = None
    bytes: int | None = None
    first: Location | None = None

    @property
    def kind(self) -> str:
        if self.new.verdict == "drop" and self.old.verdict != "drop":
            return "blocked"
        if self.new.verdict == "accept" and self.old.verdict != "accept":
            return "allowed"
        return "unknown"


@dataclass
class FlowReport:
    """``diff --flows``: the real flows a change blocks or newly allows."""

    name: str
    records: int = 0
    distinct: int = 0
    changes: list[FlowChange] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[FlowChange]:
        return [c for c in self.changes if c.kind == kind]

    def records_of(self, kind: str) -> int:
        return sum(c.records for c in self.of_kind(kind))


def compare_flows(old, new, flows: list[Flow], default_hook: str, name: str = "") -> FlowReport:
    """Evaluate every distinct flow in ``old`` and ``new``; the ones whose
    verdict changed, with how many records (and packets, bytes) they stand for."""
    from ..engine.batch import BatchEvaluator
    from ..gcpause import gc_paused

    packets = to_packets(flows, default_hook)
    before, after = BatchEvaluator(old), BatchEvaluator(new)
    report = FlowReport(name, records=len(flows))
    seen: dict = {}
    # answers pile up by the hundred thousand (a day of flows): the cyclic
    # collector would walk them again and again to find no garbage
    with gc_paused():
        for flow, packet in zip(flows, packets):
            entry = seen.get(packet)
            if entry is None:
                a, b = before.evaluate(packet), after.evaluate(packet)
                entry = seen[packet] = FlowChange(packet, a, b, first=flow.location) \
                    if a.verdict != b.verdict else False
            if entry is False:
                continue
            entry.records += 1
            if flow.packets is not None:
                entry.packets = (entry.packets or 0) + flow.packets
            if flow.bytes is not None:
                entry.bytes = (entry.bytes or 0) + flow.bytes
    report.distinct = len(seen)
    report.changes = sorted((c for c in seen.values() if c), key=lambda c: (-c.records, c.first.line))
    return report
