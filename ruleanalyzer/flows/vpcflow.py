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

    return [Flow(tuple(sorted(fields.items())), Location(name, number, 1), packets=int(packets),
                 bytes=int(size), note=f"{interface} {action}")
            for number, fields, (packets, size, interface, action) in entries(text, name)]


#: A record's words as ``FIELDS`` name them.
_SRCADDR, _DSTADDR, _SRCPORT, _DSTPORT, _PROTOCOL, _LOG_STATUS = (
    FIELDS.index(k) for k in ("srcaddr", "dstaddr", "srcport", "dstport", "protocol", "log-status"))
_NUMBERS = tuple((FIELDS.index(k), k) for k in ("srcport", "dstport", "protocol", "packets", "bytes"))
_HEADER = list(FIELDS[:4])


def entries(text: str, name: str) -> list:
    """``(line number, packet fields, (packets, bytes, interface-id,
    action))`` of every record that has addresses (the fields a new dict,
    the others as written)."""
    from ..packets import is_address

    records = []
    append = records.append
    width = len(FIELDS)
    checked: set = set()  # addresses checked already (a day's records repeat their hosts)
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if not words or words[0][0] == "#" or words[:4] == _HEADER:
            continue
        if len(words) != width:
            raise RuleAnalyzerError(f"a VPC flow log record (version 2) has {width} fields, "
                                    f"this one {len(words)}", Location(name, number, 1), source_line=line,
                                    hint=" ".join(FIELDS))
        if words[_LOG_STATUS] in ("NODATA", "SKIPDATA") or words[_SRCADDR] == "-":
            continue
        for index in (_SRCADDR, _DSTADDR):
            address = words[index]
            if address in checked:
                continue
            if not is_address(address):
                raise RuleAnalyzerError(f"invalid {FIELDS[index]} {address!r}",
                                        Location(name, number, _column(line, index)), source_line=line)
            checked.add(address)
        for index, key in _NUMBERS:
            if not words[index].isdigit():
                raise RuleAnalyzerError(f"{key} must be a number, not {words[index]!r}",
                                        Location(name, number, _column(line, index)), source_line=line)
        append((number, words))
    pairs = {(w[_SRCADDR], w[_DSTADDR], w[_SRCPORT], w[_DSTPORT], w[_PROTOCOL]) for _, w in records}
    out = []
    add = out.append
    for number, w in records:
        proto = int(w[_PROTOCOL])
        sport, dport = int(w[_SRCPORT]), int(w[_DSTPORT])
        fields = {"src": w[_SRCADDR], "dst": w[_DSTADDR], "proto": proto}
        if proto in (6, 17, 132):
            reverse = (w[_DSTADDR], w[_SRCADDR], w[_DSTPORT], w[_SRCPORT], w[_PROTOCOL]) in pairs
            reply = sport < dport if reverse else sport < 1024 <= dport
            fields["sport"] = sport
            fields["dport"] = dport
            fields["state"] = "established" if reply else "new"
            if proto == 6 and reply:
                fields["flags"] = "ACK"
        else:
            fields["state"] = "new"
        add((number, fields, (w[8], w[9], w[2], w[12])))
    return out


def _column(line: str, index: int) -> int:
    pos = 0
    for i, word in enumerate(line.split()):
        pos = line.index(word, pos)
        if i == index:
            return pos + 1
        pos += len(word)
    return 1
