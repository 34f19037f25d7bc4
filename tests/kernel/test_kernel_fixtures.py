"""The issue #15 fixtures against the kernel: the netdev ingress "legitimate
flags" chain sees fragments as they arrive (no reassembly yet), so its
``ip frag-off & 0x1fff != 0`` rule drops exactly the non-first fragments;
the analyzer must name the same ingress rule (or none) for each packet."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from . import packets
from .netns import FW_IF, FW_V4, PEER_V4, missing_prerequisites

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "rulesets" / "netdev-ingress-flags.nft"

#: (name, analyzer packet fields, how the wire packet differs: frag word, TCP flags, ttl)
CASES = [
    ("non-first fragment", {"proto": "udp", "frag": 185}, dict(proto=17, frag=185)),
    ("first fragment", {"proto": "udp", "dport": 53, "frag": "first"}, dict(proto=17, frag=0x2000)),
    ("whole SYN with DF", {"proto": "tcp", "dport": 22, "flags": "SYN"}, dict(proto=6, flags=0x02, frag=0x4000)),
    ("no flags at all", {"proto": "tcp", "dport": 22, "flags": "NONE", "df": "no"}, dict(proto=6, flags=0)),
    ("SYN+FIN", {"proto": "tcp", "dport": 22, "flags": "SYN,FIN"}, dict(proto=6, flags=0x03, frag=0x4000)),
    ("TTL 1", {"proto": "udp", "dport": 53, "ttl": 1}, dict(proto=17, ttl=1)),
]


def _wire(ident: int, proto: int, flags: int = 0, frag: int = 0, ttl: int = 64) -> bytes:
    spec = packets.Spec(src=PEER_V4, dst=FW_V4, proto=proto, sport=40000 + ident, dport=22 if proto == 6 else 53,
                        flags=flags, ttl=ttl, ident=ident)
    raw = bytearray(packets.ip_packet(spec))
    raw[6:8] = struct.pack("!H", frag)
    raw[10:12] = b"\0\0"
    raw[10:12] = struct.pack("!H", packets.checksum(bytes(raw[:20])))
    return bytes(raw)


def _counters(listing: str) -> list[int]:
    """The packet counter of each rule of the ingress chain, in order."""
    return [int(n) for n in re.findall(r"counter packets (\d+)", listing)]


def test_ingress_fixture_agrees_with_the_kernel():
    reason = missing_prerequisites(("ip", "nft"))
    if reason:
        pytest.skip(reason)
    from ruleanalyzer import evaluate, loads, make_packet

    from .netns import TestBed

    text = FIXTURE.read_text().replace('device "eth0"', f'device "{FW_IF}"')
    ruleset = loads(text, dialect="nftables")
    wrong = []
    with TestBed() as bed:
        bed.load_nft(text)
        listing = lambda: bed.fw.exec("nft", "list", "table", "netdev", "ingress_guard").stdout  # noqa: E731
        before = _counters(listing())
        for ident, (name, fields, wire) in enumerate(CASES, 1):
            frame = bed.frame(_wire(ident, **wire))
            bed.call({"op": "probe", "probes": [{"ident": ident, "frame": frame.hex()}], "counters": None})
            after = _counters(listing())
            moved = [i + 1 for i, (a, b) in enumerate(zip(before, after)) if b > a]
            before = after
            result = evaluate(ruleset, make_packet(src=PEER_V4, dst=FW_V4, iif=FW_IF, **fields))
            by = result.decided_by
            analyzer = by.rule.index if by is not None and by.rule and by.chain.name == "ingress" else None
            kernel = moved[0] if moved else None
            if kernel != analyzer:
                wrong.append(f"{name}: kernel ingress rule {kernel}, analyzer {analyzer} "
                             f"({result.verdict} by {by.describe() if by else '-'})")
    assert not wrong, "\n".join(wrong)


CROWDSEC = FIXTURE.with_name("crowdsec-host.nft")


def test_crowdsec_snapshot_and_ssh_meter_agree_with_the_kernel():
    """The bouncer's timeout set answers from its listing (a listed source
    is dropped, another is not); the first SSH SYN of a source passes the
    per-source meter in the kernel, one of the analyzer's two branches."""
    reason = missing_prerequisites(("ip", "nft"))
    if reason:
        pytest.skip(reason)
    from ruleanalyzer import evaluate, loads, make_packet

    from .netns import TestBed

    text = CROWDSEC.read_text()
    ruleset = loads(text, dialect="nftables")
    sent = [(1, "198.51.100.23", 443), (2, "192.0.2.9", 443), (3, "192.0.2.9", 22)]
    with TestBed() as bed:
        bed.load_nft(text)
        probes = []
        for ident, src, port in sent:
            spec = packets.Spec(src=src, dst=FW_V4, proto=6, sport=40000 + ident, dport=port, flags=0x02,
                                ident=ident)
            probes.append({"ident": ident, "frame": bed.frame(packets.ip_packet(spec)).hex()})
        answers = bed.call({"op": "probe", "probes": probes, "counters": None})["answers"]
    kernel = {a["ident"]: "accept" if a["seen"] else "drop" for a in answers}
    results = {ident: evaluate(ruleset, make_packet(src=src, dst=FW_V4, dport=port, iif=FW_IF))
               for ident, src, port in sent}
    assert (kernel[1], results[1].verdict) == ("drop", "drop")
    assert (kernel[2], results[2].verdict) == ("accept", "accept")
    meter = results[3]
    assert meter.verdict == "unknown" and kernel[3] in {a.verdict for a in meter.alternatives}
    assert any("maintained at runtime" in n for n in results[1].notes)
