"""Answering a batch of packets (``query``): evaluate and write packet by
packet, so memory holds the packets and the compiled decisions, never every
answer (DESIGN.md, "Packets")."""

from __future__ import annotations

import json
from operator import attrgetter
from typing import TextIO

from ..engine.batch import BatchEvaluator
from ..gcpause import gc_paused
from ..model import Packet, Ruleset
from .serialize import packet_data, result_data, step_data


def write_answers(ruleset: Ruleset, packets: list[Packet], out: TextIO, fmt: str = "jsonl",
                  trace: bool = True, single: bool = False) -> set[str]:
    """Evaluate ``packets`` against ``ruleset`` and write each answer to
    ``out`` as soon as it is made; return the set of verdicts (for the exit
    code).

    ``fmt`` is ``text`` (the diagnostics, then each answer as the one-packet
    query shows it), ``json`` (a list of answer objects, or the object alone
    when ``single``) or ``jsonl`` (one object per line). Without ``trace``
    the JSON objects leave out ``trace`` and are otherwise the same (verdict,
    deciding rule with its location, depends-on, packet, notes…). The cyclic
    garbage collector pauses meanwhile (see :func:`ruleanalyzer.gcpause.gc_paused`)."""
    evaluate = BatchEvaluator(ruleset).evaluate
    verdicts: set[str] = set()
    with gc_paused():
        if fmt == "text":
            from . import text

            console = text.make_console(out)
            text.render_diagnostics(console, ruleset.diagnostics)
            for packet in packets:
                result = evaluate(packet)
                verdicts.add(result.verdict)
                text.render_result(console, result)
            return verdicts
        if fmt == "json" and single:
            result = evaluate(packets[0])
            verdicts.add(result.verdict)
            json.dump(result_data(result, packets[0], trace), out, indent=2)
            out.write("\n")
            return verdicts
        dumps = json.dumps
        write = out.write
        if fmt == "json":
            # what json.dump(list, indent=2) writes, one element at a time
            write("[" if packets else "[]")
        line = AnswerLines(trace).line
        for number, packet in enumerate(packets):
            result = evaluate(packet)
            verdicts.add(result.verdict)
            if fmt == "json":
                data = result_data(result, packet, trace)
                write(("\n  " if number == 0 else ",\n  ") + dumps(data, indent=2).replace("\n", "\n  "))
            else:
                write(line(result, packet) + "\n")
        if fmt == "json":
            write("\n]\n" if packets else "\n")
    return verdicts


class AnswerLines:
    """``line(result, packet)`` is ``json.dumps(result_data(result, packet,
    trace))``, character for character, made faster: the batch's answers
    share their leaf's verdict, deciding rule, depends-on, notes and
    alternatives (none of them depends on the packet), so their JSON text is
    made once per distinct combination and only the packet's own fields are
    encoded per answer."""

    #: Cached fragments before the cache starts over (bounded memory).
    MAX_CACHED = 1 << 16

    def __init__(self, trace: bool = False):
        self.trace = trace
        self._parts: dict = {}
        self._traces: dict = {}
        self._packets: dict = {}

    def _fragments(self, result, packet) -> tuple:
        data = result_data(result, packet, trace=False)
        dumps = json.dumps
        head = dumps({k: data[k] for k in ("verdict", "outcome", "state", "decided_by")})[1:-1]
        tail = dumps({"depends_on": data["depends_on"], "notes": data["notes"]})[1:-1]
        rest = {k: v for k, v in data.items() if k in ("routing", "reject_with", "alternatives")}
        end = (", " + dumps(rest)[1:-1] if rest else "") + "}"
        # the objects are kept so that their ids in the key are not reused
        return head, tail, end, (result.decided_by, result.alternatives)

    def line(self, result, packet) -> str:
        dumps = json.dumps
        alternatives = result.alternatives
        key = (result.verdict, result.outcome, result.state, id(result.decided_by), result.depends_on,
               result.notes, result.routing,
               tuple([(a.verdict, id(a.decided_by), a.depends_on) for a in alternatives]) if alternatives else ())
        parts = self._parts.get(key)
        if parts is None:
            if len(self._parts) >= self.MAX_CACHED:
                self._parts.clear()
            parts = self._parts[key] = self._fragments(result, packet)
        head, tail, end, _ = parts
        ident = packet.id
        text = '{"id": ' + ("null" if ident is None else dumps(ident)) + ", " + head + ', "packet": ' + self.packet_json(packet)
        if self.trace:
            cached = self._traces.get(id(result.trace))
            if cached is None or cached[0] is not result.trace:
                if len(self._traces) >= self.MAX_CACHED:
                    self._traces.clear()
                cached = self._traces[id(result.trace)] = (
                    result.trace, dumps([step_data(s) for s in result.trace]))
            text += ', "trace": ' + cached[1]
        text += ", " + tail
        out = result.packet
        if out is not packet and out != packet:
            text += ', "packet_out": ' + self.packet_json(out)
        return text + end

    def packet_json(self, packet) -> str:
        """``json.dumps(packet_data(packet))``: the text after the addresses
        and ports is made once per combination of the other fields."""
        key = (_PACKET_REST(packet), packet.src.version)
        parts = self._packets.get(key)
        if parts is None:
            data = packet_data(packet)
            head = json.dumps({"hook": data["hook"]})[:-1]
            proto = json.dumps({"proto": data["proto"]})[1:-1]
            rest = json.dumps({k: v for k, v in data.items() if k not in _PACKET_OWN})[1:]
            if len(self._packets) >= self.MAX_CACHED:
                self._packets.clear()
            parts = self._packets[key] = (head + ', "src": "', proto, ", " + rest)
        head, proto, rest = parts
        text = head + str(packet.src) + '", "dst": "' + str(packet.dst) + '", ' + proto
        if packet.sport is not None:
            text += ', "sport": ' + str(packet.sport)
        if packet.dport is not None:
            text += ', "dport": ' + str(packet.dport)
        return text + rest


#: What ``packet_data`` writes of a packet besides its addresses and ports.
_PACKET_REST = attrgetter("hook", "proto", "flags", "icmp_type", "icmp_code", "ecn", "state", "iif", "oif",
                          "mark", "ttl", "dscp", "length", "frag_off", "mf", "df", "ip_id", "ip_options",
                          "ext_headers")
_PACKET_OWN = ("hook", "src", "dst", "proto", "sport", "dport")
