"""Answering a batch of packets (``query``): evaluate and write packet by
packet, so memory holds the packets and the compiled decisions, never every
answer (DESIGN.md, "Packets")."""

from __future__ import annotations

import json
from typing import TextIO

from ..engine.batch import BatchEvaluator, paused_gc
from ..model import Packet, Ruleset


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
    garbage collector pauses meanwhile (see :func:`paused_gc`)."""
    evaluate = BatchEvaluator(ruleset).evaluate
    verdicts: set[str] = set()
    with paused_gc():
        if fmt == "text":
            from . import text

            console = text.make_console(out)
            text.render_diagnostics(console, ruleset.diagnostics)
            for packet in packets:
                result = evaluate(packet)
                verdicts.add(result.verdict)
                text.render_result(console, result)
            return verdicts
        from .serialize import result_data

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
        for number, packet in enumerate(packets):
            result = evaluate(packet)
            verdicts.add(result.verdict)
            data = result_data(result, packet, trace)
            if fmt == "json":
                write(("\n  " if number == 0 else ",\n  ") + dumps(data, indent=2).replace("\n", "\n  "))
            else:
                write(dumps(data) + "\n")
        if fmt == "json":
            write("\n]\n" if packets else "\n")
    return verdicts
