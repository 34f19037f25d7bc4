"""AWS VPC flow log records (the default version 2 format) as flows.

One record per line, fields separated by spaces::

    version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status
    2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK

A header line is skipped, and so are ``NODATA``/``SKIPDATA`` records (no
addresses). VPC logs record each direction of a connection separately: a
record is taken as a reply (state ``established``) when the reverse record
is in the file and this one comes from the lower port, or, without its
pair, when it comes from a well-known port (< 1024) to a higher one.
Everything else is asked as a new connection.
"""

from __future__ import annotations

import ipaddress

from ..errors import RuleAnalyzerError
from ..model import Location

FIELDS = ("version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport",
          "protocol", "packets", "bytes", "start", "end", "action", "log-status")


def looks_like(line: str) -> bool:
    words = line.split()
    if words[:4] == list(FIELDS[:4]):
        return True
    return len(words) == len(FIELDS) and words[0] == "2" and words[-1] in ("OK", "NODATA", "SKIPDATA")


def parse(text: str, name: str) -> list:
    from . import Flow

    records = []
    addresses: set = set()  # checked already (a day's records repeat their hosts)
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if not words or words[0].startswith("#") or words[:4] == list(FIELDS[:4]):
            continue
        if len(words) != len(FIELDS):
            raise RuleAnalyzerError(f"a VPC flow log record (version 2) has {len(FIELDS)} fields, "
                                    f"this one {len(words)}", Location(name, number, 1), source_line=line,
                                    hint=" ".join(FIELDS))
        record = dict(zip(FIELDS, words))
        if record["log-status"] in ("NODATA", "SKIPDATA") or record["srcaddr"] == "-":
            continue
        for key in ("srcaddr", "dstaddr"):
            if record[key] in addresses:
                continue
            try:
                ipaddress.ip_address(record[key])
                addresses.add(record[key])
            except ValueError:
                column = _column(line, FIELDS.index(key))
                raise RuleAnalyzerError(f"invalid {key} {record[key]!r}", Location(name, number, column),
                                        source_line=line) from None
        for key in ("srcport", "dstport", "protocol", "packets", "bytes"):
            if not record[key].isdigit():
                column = _column(line, FIELDS.index(key))
                raise RuleAnalyzerError(f"{key} must be a number, not {record[key]!r}",
                                        Location(name, number, column), source_line=line)
        records.append((number, record))
    pairs = {(r["srcaddr"], r["dstaddr"], r["srcport"], r["dstport"], r["protocol"]) for _, r in records}
    flows = []
    for number, r in records:
        proto = int(r["protocol"])
        sport, dport = int(r["srcport"]), int(r["dstport"])
        fields = {"src": r["srcaddr"], "dst": r["dstaddr"], "proto": proto}
        if proto in (6, 17, 132):
            reverse = (r["dstaddr"], r["srcaddr"], r["dstport"], r["srcport"], r["protocol"]) in pairs
            reply = sport < dport if reverse else sport < 1024 <= dport
            fields.update(sport=sport, dport=dport, state="established" if reply else "new")
            if proto == 6 and reply:
                fields["flags"] = "ACK"
        else:
            fields["state"] = "new"
        flows.append(Flow(tuple(sorted(fields.items())), Location(name, number, 1),
                          packets=int(r["packets"]), bytes=int(r["bytes"]),
                          note=f"{r['interface-id']} {r['action']}"))
    return flows


def _column(line: str, index: int) -> int:
    pos = 0
    for i, word in enumerate(line.split()):
        pos = line.index(word, pos)
        if i == index:
            return pos + 1
        pos += len(word)
    return 1
