"""Answering a batch of packets (``query``): evaluate and write packet by
packet, so memory holds the packets and the compiled decisions, never every
answer (DESIGN.md, "Packets")."""

from __future__ import annotations

import json
import json.encoder
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
    batch = BatchEvaluator(ruleset)
    if not single:
        batch.expect(len(packets))
    evaluate = batch.evaluate
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
        reader = getattr(packets, "reader", None)  # a PacketBatch: its lean items
        _write_lines(batch, getattr(packets, "items", packets), reader.packet if reader is not None else None,
                     out, fmt == "json", trace, verdicts)
    return verdicts


#: Stand-ins for an answer's own values in its JSON (NUL: never in a
#: ruleset's text, and checked), then as they stand in its JSON text.
_OWN = ("\0id\0", "\0packet\0", "\0src\0", "\0dst\0", "\0sport\0", "\0dport\0", "\0iif\0", "\0oif\0")
_OWN_TEXT = tuple(json.dumps(x) for x in _OWN)
#: Answers written at a time.
_CHUNK = 12288  # (pieces: 18 an answer)


def _write_lines(batch: BatchEvaluator, items: list, packet_of, out: TextIO, indent: bool, trace: bool,
                 verdicts: set) -> None:
    """Every answer as a JSON line (``indent``: as the elements of the
    indented list ``json.dump(list, indent=2)`` writes), in order.

    An item the reader left lean (``PacketReader.item``) that the decision
    tree answers from a leaf whose packet out is the packet itself is written
    from two texts: the leaf's answer, made once per leaf, with places for
    the id and the packet; the packet, made once per combination of its
    fields other than id, addresses, ports and interfaces, with places for
    those (the interfaces' texts are made once per name). Every other
    packet is made and evaluated, and its answer encoded."""
    from ..engine.batch import Node, address_class, root_key

    evaluate = batch.evaluate
    lines = AnswerLines(trace)
    line = lines.line
    write = out.write
    chunk: list = []
    add = chunk.append
    extend = chunk.extend
    states: dict = {}  # per template: roots by address classes, IP version, packet text pieces
    leaves: dict = {}  # id of a leaf: (leaf, its text or None, verdict)
    classes: dict = {}  # JSON text of an address: its class (address_class)
    texts: dict = {None: ""}  # an interface name: its JSON text ("": none)
    state_of, entry_of, hit, json_text = states.get, leaves.get, batch.hit, _json_text
    class_of, text_of = classes.get, texts.get
    roots = None
    walked = -1  # leaves found by walking the tree here (-1: through batch.hit, while it may be turned off)
    sep = "\n  " if indent else ""  # before the next answer
    between = ",\n  " if indent else ""
    if indent:
        write("[" if items else "[]")
    for item in items:
        if roots is None:
            roots = batch.roots()
        if roots is not None and item.__class__ is tuple:
            template, src, dst, sport, dport, ident, iif, oif = item
            state = state_of(template)
            if state is None:
                state = states[template] = _template_state(template.packet, indent)
            nodes, version, pieces = state
            s = src[1]
            d = dst[1]
            a = class_of(src[2])
            if a is None:
                a = classes[src[2]] = address_class(version, s)
            b = class_of(dst[2])
            if b is None:
                b = classes[dst[2]] = address_class(version, d)
            node = nodes.get(a * 8 + b)
            if node is None:
                node = roots.get(root_key(template.packet, s, d))
                if node is not None:
                    nodes[a * 8 + b] = node
            if node is not None and pieces is not None:
                if walked < 0:
                    leaf = hit(node, (s, d, sport, dport, iif, oif))
                    if batch.memoize and batch._asked >= 4000:
                        walked = 0  # the tree stays: walked here, and counted at the end
                else:
                    values = (s, d, sport, dport, iif, oif)
                    while node.__class__ is Node:
                        node = node.children.get(node.key(values))
                    leaf = node
                    if leaf is not None:
                        walked += 1
                if leaf is not None:
                    entry = entry_of(id(leaf))
                    if entry is None:
                        if len(leaves) >= AnswerLines.MAX_CACHED:
                            leaves.clear()
                        entry = leaves[id(leaf)] = _leaf_text(leaf, indent, trace, lines)
                        verdicts.add(entry[2])
                    parts = entry[1]
                    if parts is not None:
                        p0, p1, p2, p3, p4, p5, p6 = pieces
                        i = text_of(iif)
                        if i is None:
                            i = texts[iif] = json_text(iif)
                        o = text_of(oif)
                        if o is None:
                            o = texts[oif] = json_text(oif)
                        extend((sep, parts[0], "null" if ident is None else json_text(ident), parts[1],
                                p0, src[2], p1, dst[2], p2, "" if sport is None else str(sport), p3,
                                "" if dport is None else str(dport), p4, i, p5, o, p6, parts[2]))
                        sep = between
                        if len(chunk) >= _CHUNK:
                            write("".join(chunk))
                            chunk.clear()
                        continue
        packet = packet_of(item) if packet_of is not None else item
        result = evaluate(packet)
        verdicts.add(result.verdict)
        if indent:
            data = result_data(result, packet, trace)
            add(sep + indented(data, "\n  "))
            sep = between
        else:
            add(line(result, packet) + "\n")
        if len(chunk) >= _CHUNK:
            write("".join(chunk))
            chunk.clear()
    if walked > 0:
        batch.walked(walked)
    write("".join(chunk))
    if indent:
        write("\n]\n" if items else "\n")


def _template_state(packet: Packet, indent: bool) -> list:
    """What answering the packets of ``packet``'s template needs: root
    nodes by address classes (filled in as found), the IP version, and the
    packet's JSON in pieces around its own values (None: cannot) —
    ``(p0, p1, … p6)``: ``p0 + src + p1 + dst + p2 + sport + p3 + dport + p4
    + iif + p5 + oif + p6``, those values as JSON text, "" where the
    packets of the template have none (then so is the piece after)."""
    data = packet_data(packet)
    wanted = []
    for i, name in enumerate(_BATCH_OWN, 2):
        if name in data:
            data[name] = _OWN[i]
            wanted.append(i)
    # as it stands in an answer: at level 1, in indented mode an element of a list
    text = json.dumps(data, indent=2).replace("\n", "\n    ") if indent else json.dumps(data)
    return [{}, packet.src.version, _pieces(text, wanted)]


def _pieces(text: str, wanted: list) -> tuple | None:
    """``text`` cut around the stand-ins of ``wanted`` (see
    :func:`_template_state`), or None if they are not each there once, in
    order, with the addresses."""
    if wanted[:2] != [2, 3] or any(text.count(_OWN_TEXT[i]) != 1 for i in wanted):
        return None  # pragma: no cover - a NUL in a ruleset's text
    pieces = []
    for i in range(2, len(_OWN)):
        head = ""
        if i in wanted:
            head, found, text = text.partition(_OWN_TEXT[i])
            if not found:
                return None  # pragma: no cover - out of order
        pieces.append(head)
    return (*pieces, text)


def _leaf_text(leaf, indent: bool, trace: bool, lines: "AnswerLines") -> tuple:
    """``(leaf, parts, verdict)``: the answer of every packet that reaches
    ``leaf`` in three parts, to go around its id and its packet — parts None
    where an answer there depends on more of the packet (its packet out).
    JSON lines: from ``lines``, which made them for the leaf's own packet.
    The leaf is kept so that its id, the key, is not reused."""
    result = leaf.result
    if result.packet is not leaf.packet:
        return leaf, None, result.verdict
    if not indent:
        return leaf, lines.parts(result), result.verdict
    data = result_data(result, leaf.packet, trace)
    if "packet_out" in data:  # pragma: no cover - the packet out is the packet
        return leaf, None, result.verdict
    data["id"], data["packet"] = _OWN[0], _OWN[1]
    parts = indented(data, "\n  ").split(_OWN_TEXT[0])
    if len(parts) != 2 or len(parts[1].split(_OWN_TEXT[1])) != 2:
        return leaf, None, result.verdict  # pragma: no cover - a NUL in a ruleset's text
    return leaf, (parts[0], *parts[1].split(_OWN_TEXT[1])), result.verdict


_json_text = json.encoder.encode_basestring_ascii  # json.dumps of a str


class _Unusual(Exception):
    """A value :func:`_indented` leaves to :mod:`json`."""


def indented(data, newline: str = "\n") -> str:
    """``json.dumps(data, indent=2)``, character for character, with each
    line after the first led by ``newline`` (``"\\n  "``: as an element of
    an indented list), made faster: the encoder :mod:`json` uses with an
    indent is written in Python, yielding piece by piece; this joins
    strings, each scalar encoded in C."""
    try:
        return _indented(data, newline)
    except _Unusual:
        return json.dumps(data, indent=2).replace("\n", newline)


def _indented(value, newline: str) -> str:
    kind = value.__class__
    if kind is str:
        return _json_text(value)
    if kind is int:
        return int.__repr__(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    inner = newline + "  "
    if kind is dict:
        if not value:
            return "{}"
        for key in value:
            if key.__class__ is not str:
                raise _Unusual
        return "{" + inner + ("," + inner).join([_json_text(k) + ": " + _indented(v, inner)
                                                  for k, v in value.items()]) + newline + "}"
    if kind is list or kind is tuple:
        if not value:
            return "[]"
        return "[" + inner + ("," + inner).join([_indented(v, inner) for v in value]) + newline + "]"
    raise _Unusual  # floats (NaN, infinities), subclasses, anything a default would encode


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

    def _cached(self, result, packet) -> tuple:
        """``_fragments`` of the answer, made once per combination."""
        alternatives = result.alternatives
        key = (result.verdict, result.outcome, result.state, id(result.decided_by), result.depends_on,
               result.notes, result.routing,
               tuple([(a.verdict, id(a.decided_by), a.depends_on) for a in alternatives]) if alternatives else ())
        parts = self._parts.get(key)
        if parts is None:
            if len(self._parts) >= self.MAX_CACHED:
                self._parts.clear()
            parts = self._parts[key] = self._fragments(result, packet)
        return parts

    def _trace(self, result) -> str:
        """``, "trace": [...]`` of the answer ("" without the trace)."""
        if not self.trace:
            return ""
        cached = self._traces.get(id(result.trace))
        if cached is None or cached[0] is not result.trace:
            if len(self._traces) >= self.MAX_CACHED:
                self._traces.clear()
            cached = self._traces[id(result.trace)] = (
                result.trace, ', "trace": ' + json.dumps([step_data(s) for s in result.trace]))
        return cached[1]

    def line(self, result, packet) -> str:
        head, tail, end, _ = self._cached(result, packet)
        ident = packet.id
        text = '{"id": ' + ("null" if ident is None else json.dumps(ident)) + ", " + head + ', "packet": ' \
            + self.packet_json(packet) + self._trace(result) + ", " + tail
        out = result.packet
        if out is not packet and out != packet:
            text += ', "packet_out": ' + self.packet_json(out)
        return text + end

    def parts(self, result) -> tuple:
        """``line(result, result.packet) + "\\n"`` in three parts, to go
        around the JSON of the packet's id and of the packet."""
        head, tail, end, _ = self._cached(result, result.packet)
        return '{"id": ', ", " + head + ', "packet": ', self._trace(result) + ", " + tail + end + "\n"

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
#: A packet's own values in a batch (the rest is its template's), as
#: ``_OWN[2:]`` stands in for them.
_BATCH_OWN = ("src", "dst", "sport", "dport", "iif", "oif")
