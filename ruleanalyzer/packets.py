"""Building packets from what a user types or writes in JSON lines.

``make_packet(src="192.0.2.1", dst="198.51.100.1", proto="tcp", dport=22,
flags="SYN,ECE,CWR", ecn="ect0")`` — the same keys as the command-line flags
and the ``--packets`` JSON-lines file (DESIGN.md, "Packets").
"""

from __future__ import annotations

import ipaddress
import json
import json.encoder
import re
import socket
from operator import itemgetter
from typing import Any

from .errors import RuleAnalyzerError
from .model import ECN_CODEPOINTS, HOOK_PATHS, Packet, flags_from_text, protocol_number
from .model import CT_STATES

#: ICMP type names users type most; numbers are always accepted.
ICMP_TYPE_NAMES = {
    "echo-reply": 0, "destination-unreachable": 3, "source-quench": 4, "redirect": 5,
    "echo-request": 8, "router-advertisement": 9, "router-solicitation": 10,
    "time-exceeded": 11, "parameter-problem": 12, "timestamp-request": 13,
    "timestamp-reply": 14, "fragmentation-needed": 3,
}
ICMPV6_TYPE_NAMES = {
    "destination-unreachable": 1, "packet-too-big": 2, "time-exceeded": 3,
    "parameter-problem": 4, "echo-request": 128, "echo-reply": 129,
    "router-solicitation": 133, "router-advertisement": 134, "neighbour-solicitation": 135,
    "neighbor-solicitation": 135, "neighbour-advertisement": 136, "neighbor-advertisement": 136,
}
#: Extra code implied by a name (fragmentation-needed is type 3 code 4).
ICMP_NAME_CODES = {"fragmentation-needed": 4}

PACKET_KEYS = ("hook", "src", "dst", "proto", "sport", "dport", "flags", "ecn", "state", "iif",
               "oif", "icmp_type", "icmp_code", "id", "mark", "length", "ttl", "dscp", "uid",
               "gid", "frag", "mf", "df", "ip_id", "ip_options", "ext_headers")

#: ``frag`` names: (offset in 8-byte units, More Fragments). A number is an
#: offset with MF clear (the last fragment), ``none`` an unfragmented packet.
FRAG_NAMES = {"none": (0, 0), "no": (0, 0), "first": (0, 1), "middle": (185, 1), "last": (185, 0)}
#: Header bytes without options or payload: the default ``length`` is the IP
#: header plus these (a non-first fragment carries 8 bytes of data).
L4_HEADER_BYTES = {6: 20, 17: 8, 1: 8, 58: 8, 132: 12, 33: 12, 136: 8}


def _flag(name: str, value: Any) -> int:
    """A yes/no packet field: true/false, yes/no, on/off, 1/0."""
    if isinstance(value, bool):
        return int(value)
    text = str(value).strip().lower()
    if text in ("1", "yes", "true", "on", "set"):
        return 1
    if text in ("0", "no", "false", "off", "clear", "unset"):
        return 0
    raise RuleAnalyzerError(f"{name} must be yes or no, not {value!r}")


def _fragment(fields: dict) -> tuple[int, int]:
    """(offset, MF) of ``frag`` and ``mf``; raises on a bad value."""
    raw = fields.get("frag")
    if raw is None or raw == "":
        offset, mf = 0, 0
    elif isinstance(raw, str) and raw.strip().lower() in FRAG_NAMES:
        offset, mf = FRAG_NAMES[raw.strip().lower()]
    else:
        try:
            offset, mf = _int("frag", raw, 0, 0x1FFF), 0
        except RuleAnalyzerError:
            raise RuleAnalyzerError(f"frag must be none, first, middle, last or an offset in 8-byte "
                                    f"units (0-8191), not {raw!r}") from None
    if fields.get("mf") is not None:
        mf = _flag("mf", fields["mf"])
    return offset, mf


def header_defaults(proto: int, version: int, fields: dict) -> dict:
    """The IP header fields of a packet the query leaves them out of: an
    unfragmented packet (DF set for TCP, as Linux sends it), IP ID 0, no IPv4
    options or IPv6 extension headers (an IPv6 fragment has one), a length of
    the headers alone. ``fields`` holds what the user gave."""
    offset, mf = _fragment(fields)
    fragmented = bool(offset or mf)
    out = {"frag_off": offset, "mf": mf, "fragment": 1 if offset else 0}
    df = fields.get("df")
    out["df"] = _flag("df", df) if df is not None else int(proto == 6 and not fragmented)
    if version == 6 and out["df"]:
        if df is not None:
            raise RuleAnalyzerError("IPv6 has no Don't Fragment bit (df)")
        out["df"] = 0
    if fields.get("ip_id") is not None:
        out["ip_id"] = _int("ip_id", fields["ip_id"], 0, 0xFFFF)
    options = fields.get("ip_options")
    out["ip_options"] = _flag("ip_options", options) if options is not None else 0
    ext = fields.get("ext_headers")
    out["ext_headers"] = _flag("ext_headers", ext) if ext is not None else int(version == 6 and fragmented)
    if version == 6 and out["ip_options"]:
        raise RuleAnalyzerError("IPv6 has no IP options (use ext_headers)")
    if version == 4 and out["ext_headers"]:
        raise RuleAnalyzerError("IPv4 has no extension headers (use ip_options)")
    if fields.get("length") is None:
        header = 20 + 4 * out["ip_options"] if version == 4 else 40 + 8 * out["ext_headers"]
        out["length"] = header + (8 if offset else L4_HEADER_BYTES.get(proto, 0))
    return out

STATES = ("auto",) + CT_STATES


def _int(name: str, value: Any, lo: int, hi: int) -> int:
    try:
        number = int(value, 0) if isinstance(value, str) else int(value)
    except (TypeError, ValueError, OverflowError):  # "dport": 1e999 is infinity
        raise RuleAnalyzerError(f"{name} must be a number, not {str(value)[:40]!r}") from None
    if not lo <= number <= hi:
        raise RuleAnalyzerError(f"{name} {number} is out of range {lo}-{hi}")
    return number


def make_packet(**fields: Any) -> Packet:
    """A :class:`Packet` from user-facing values (strings or numbers).

    Defaults: proto tcp; a TCP packet without flags is a SYN; a source port
    of 40000 for TCP/UDP when none is given; ``state`` auto; ``hook`` input.
    Raises :class:`RuleAnalyzerError` naming the bad field.
    """
    unknown = set(fields) - set(PACKET_KEYS)
    if unknown:
        raise RuleAnalyzerError(f"unknown packet field(s): {', '.join(sorted(unknown))}",
                                hint=f"known fields: {', '.join(PACKET_KEYS)}")
    try:
        src = ipaddress.ip_address(str(fields["src"]).strip())
        dst = ipaddress.ip_address(str(fields["dst"]).strip())
    except KeyError as exc:
        raise RuleAnalyzerError(f"a packet needs {exc.args[0]!r}") from None
    except ValueError as exc:
        raise RuleAnalyzerError(str(exc)) from None
    if src.version != dst.version:
        raise RuleAnalyzerError(f"source {src} and destination {dst} are of different IP versions")
    try:
        proto = protocol_number(fields.get("proto") if fields.get("proto") is not None else "tcp")
    except ValueError as exc:
        raise RuleAnalyzerError(str(exc)) from None
    if proto == 1 and src.version == 6:
        proto = 58
    if proto == 58 and src.version == 4:
        proto = 1
    hook = str(fields.get("hook") or "input").lower()
    if hook not in HOOK_PATHS and hook != "auto":
        raise RuleAnalyzerError(f"unknown hook {hook!r}", hint="use input, forward, output or auto")
    state = str(fields.get("state") or "auto").lower()
    if state not in STATES:
        raise RuleAnalyzerError(f"unknown state {state!r}", hint=f"use one of {', '.join(STATES)}")
    flags = 0
    if proto == 6:
        raw = fields.get("flags")
        if raw is None or raw == "":
            flags = 0x02
        elif isinstance(raw, int):
            flags = _int("flags", raw, 0, 0x1FF)
        else:
            try:
                flags = flags_from_text(str(raw))
            except ValueError as exc:
                raise RuleAnalyzerError(str(exc)) from None
    ecn_raw = fields.get("ecn")
    if ecn_raw is None or ecn_raw == "":
        ecn = 0
    elif isinstance(ecn_raw, int):
        ecn = _int("ecn", ecn_raw, 0, 3)
    else:
        key = str(ecn_raw).lower().replace("_", "-").replace("(", "").replace(")", "")
        if key not in ECN_CODEPOINTS:
            raise RuleAnalyzerError(f"unknown ECN codepoint {ecn_raw!r}",
                                    hint="use not-ect, ect0, ect1 or ce")
        ecn = ECN_CODEPOINTS[key]
    sport = fields.get("sport")
    dport = fields.get("dport")
    has_ports = proto in (6, 17, 132, 33, 136)
    sport = _int("sport", sport, 0, 65535) if sport is not None else (40000 if has_ports else None)
    dport = _int("dport", dport, 0, 65535) if dport is not None else None
    if has_ports and dport is None and _fragment(fields)[0] == 0:
        raise RuleAnalyzerError("a TCP/UDP packet needs a destination port (--dport)")
    icmp_type = fields.get("icmp_type")
    icmp_code = fields.get("icmp_code")
    if proto in (1, 58):
        if isinstance(icmp_type, str) and not icmp_type.isdigit():
            names = ICMP_TYPE_NAMES if proto == 1 else ICMPV6_TYPE_NAMES
            name = icmp_type.lower()
            if name not in names:
                raise RuleAnalyzerError(f"unknown ICMP type {icmp_type!r}",
                                        hint=f"use a number or one of {', '.join(sorted(names))}")
            if icmp_code is None and name in ICMP_NAME_CODES and proto == 1:
                icmp_code = ICMP_NAME_CODES[name]
            icmp_type = names[name]
        icmp_type = _int("icmp_type", icmp_type, 0, 255) if icmp_type is not None else (8 if proto == 1 else 128)
        icmp_code = _int("icmp_code", icmp_code, 0, 255) if icmp_code is not None else 0
    else:
        icmp_type = icmp_code = None
    optional = {}
    for key, lo, hi in (("mark", 0, 0xFFFFFFFF), ("length", 20, 65535), ("ttl", 0, 255),
                        ("dscp", 0, 63), ("uid", 0, 2**32 - 1), ("gid", 0, 2**32 - 1)):
        if fields.get(key) is not None:
            optional[key] = _int(key, fields[key], lo, hi)
    optional.update(header_defaults(proto, src.version, fields))
    return Packet(src=src, dst=dst, proto=proto, sport=sport, dport=dport, flags=flags, ecn=ecn,
                  state=state, hook=hook, iif=fields.get("iif") or None, oif=fields.get("oif") or None,
                  icmp_type=icmp_type, icmp_code=icmp_code,
                  id=str(fields["id"]) if fields.get("id") is not None else None, **optional)


#: Fields that vary from packet to packet in a batch (make_packet takes them
#: as they are, once valid); the rest (protocol, hook, state, flags, header
#: fields …) repeat and are checked once per combination by
#: :class:`PacketReader`.
_VARYING = ("src", "dst", "sport", "dport", "id", "iif", "oif")
_VARYING_SET = frozenset(_VARYING)


class PacketReader:
    """``make(fields)`` gives what ``make_packet(**fields)`` gives (the same
    packet or the same error), faster on a batch: addresses are parsed once
    per text, and the fields other than addresses, ports and ``id`` are
    checked and defaulted once per combination (with the addresses' IP
    versions and which ports are given) and reused. Anything unusual (a
    value that is not a string or number, a bad address or port) goes
    through :func:`make_packet` itself, so errors are its own.

    ``item(fields)`` is the same packet in a lean form for a batch: a tuple
    ``(template, src, dst, sport, dport, id, iif, oif)`` — the checked
    combination of the other fields (:class:`PacketTemplate`), each address
    as :meth:`_address` gives it, the ports as numbers (the source port
    defaulted), ``id`` as text, the interfaces (None: not given) — or the
    :class:`Packet` itself where the reader took the unusual way;
    ``packet(item)`` makes the :class:`Packet`."""

    #: Cached addresses before the cache starts over (bounded memory).
    MAX_ADDRESSES = 1 << 17

    def __init__(self):
        self._addresses: dict = {}
        self._templates: dict = {}
        self._items: dict = {}  # per sequence of keys: its item function

    def _address(self, value):
        """``(IP version, integer, JSON text, address or None)`` of an
        address's text (None: not an address, or not a string); the address
        object is made when a packet needs it if the text is a canonical IPv4
        address (read without :mod:`ipaddress`: most of a batch's are)."""
        if value.__class__ is not str:
            return None  # (a list would not even be a key)
        address = self._addresses.get(value)
        if address is None:
            if _CANONICAL_IPV4(value):
                address = (4, _from_bytes(_pton(_AF_INET, value), "big"), '"' + value + '"', None)
            else:
                try:
                    parsed = ipaddress.ip_address(value.strip())
                except ValueError:
                    return None
                address = (parsed.version, int(parsed), _json_text(str(parsed)), parsed)
            if len(self._addresses) >= self.MAX_ADDRESSES:
                self._addresses.clear()
            self._addresses[value] = address
        return address

    def item(self, fields: dict):
        # a function per sequence of keys (see _item_function), else _item
        keys = tuple(fields)
        made = self._items.get(keys)
        if made is None:
            if len(self._items) >= 4096:
                return self._item(fields)
            made = self._items[keys] = _item_function(self, keys)
        return made(fields)

    def _item(self, fields: dict):
        # the fields other than _VARYING's are what is left of a copy
        # once those are taken out (in C, in the line's order)
        rest = fields.copy()
        pop = rest.pop
        src = pop("src", None)
        dst = pop("dst", None)
        sport = pop("sport", None)
        dport = pop("dport", None)
        ident = pop("id", None)
        iif = pop("iif", None)
        oif = pop("oif", None)
        addresses = self._addresses
        src = addresses.get(src) or self._address(src) if src.__class__ is str else None
        dst = addresses.get(dst) or self._address(dst) if dst.__class__ is str else None
        if src is None or dst is None:
            return make_packet(**fields)
        if not (iif is None or iif.__class__ is str) or not (oif is None or oif.__class__ is str):
            return make_packet(**fields)
        try:
            # with the values' types: True == 1 but they make different packets
            key = (tuple(rest.items()), tuple(map(type, rest.values())),
                   src[0], dst[0], sport is None, dport is None, not iif, not oif)
            template = self._templates.get(key)
        except TypeError:  # a list or object as a value: unhashable
            return make_packet(**fields)
        if template is None:
            packet = make_packet(**fields)
            if len(self._templates) >= 4096:
                return packet
            template = self._templates[key] = PacketTemplate(packet)
        try:
            if sport is not None and not (sport.__class__ is int and 0 <= sport <= 65535):
                sport = _int("sport", sport, 0, 65535)
            if dport is not None and not (dport.__class__ is int and 0 <= dport <= 65535):
                dport = _int("dport", dport, 0, 65535)
        except RuleAnalyzerError:
            return make_packet(**fields)
        return (template, src, dst, template.sport if sport is None else sport, dport,
                None if ident is None else str(ident), iif or None, oif or None)

    @staticmethod
    def packet(item) -> Packet:
        """The :class:`Packet` of an ``item``."""
        if item.__class__ is not tuple:
            return item
        template, src, dst, sport, dport, ident, iif, oif = item
        # filled slot by slot (the fields make_packet checked for this key)
        packet = _new_packet(Packet)
        for slot, value in template.fill:
            slot.__set__(packet, value)
        _SET_SRC(packet, src[3] or _IPv4(src[1]))
        _SET_DST(packet, dst[3] or _IPv4(dst[1]))
        _SET_SPORT(packet, sport)
        _SET_DPORT(packet, dport)
        _SET_ID(packet, ident)
        _SET_IIF(packet, iif)
        _SET_OIF(packet, oif)
        return packet

    def make(self, fields: dict) -> Packet:
        return self.packet(self.item(fields))


def _item_function(reader: PacketReader, keys: tuple):
    """``reader.item`` for objects whose keys are ``keys``, in that order:
    the varying fields read by name (None where not among ``keys``), the
    others as one tuple, and the template looked up by those values and
    what else ``_item`` keys it by — so one key here is one key there
    (with the values' classes where one is not a string: True == 1);
    anything else, or a key not seen yet, goes to ``_item``, and a
    template it finds is noted here. Ports are taken as ``_item`` takes
    them (text by ``_int``; a bad one goes to ``_item``, which says so).
    The function's text is written for the varying keys among ``keys``."""
    rest = [key for key in keys if key not in _VARYING_SET]
    present = [key for key in _VARYING if key in keys]
    if "src" not in present or "dst" not in present or not rest:
        return reader._item
    names = {"id": "ident"}
    body = [f"{names.get(key, key)} = fields[{key!r}]" if key in present else f"{names.get(key, key)} = None"
            for key in _VARYING]
    body += ["src = addresses.get(src) or address(src) if src.__class__ is str else None",
             "dst = addresses.get(dst) or address(dst) if dst.__class__ is str else None",
             "if src is None or dst is None:", "    return slow(fields)"]
    for key in ("iif", "oif"):
        if key in present:
            body += [f"if not ({key} is None or {key}.__class__ is str):", "    return slow(fields)"]
    for key in ("sport", "dport"):
        if key in present:  # as _item takes them (conntrack's are decimal text)
            body += [f"if {key} is not None and not ({key}.__class__ is int and 0 <= {key} <= 65535):",
                     "    try:", f"        {key} = number({key!r}, {key}, 0, 65535)",
                     "    except RuleAnalyzerError:", "        return slow(fields)"]
    given = "".join(f", {key} is None" for key in ("sport", "dport") if key in present) + \
        "".join(f", not {key}" for key in ("iif", "oif") if key in present)
    body += ["values = others(fields)",
             "try:",
             f"    found = templates.get((values, src[0], dst[0]{given}))",
             "except TypeError:  # a list or object as a value: unhashable",
             "    return slow(fields)",
             "if found is None or found[1] is not None and tuple(map(type, values)) != found[1]:",
             "    made = slow(fields)",
             "    if found is None and made.__class__ is tuple and len(templates) < 4096:",
             f"        templates[(values, src[0], dst[0]{given})] = (made[0], None if all(v.__class__ is str "
             "for v in values) else tuple(map(type, values)))",
             "    return made",
             "template = found[0]",
             "return (template, src, dst, " + ("template.sport if sport is None else sport" if "sport" in present
                                                else "template.sport")
             + ", dport, " + ("None if ident is None else str(ident)" if "id" in present else "None")
             + (", iif or None" if "iif" in present else ", None")
             + (", oif or None" if "oif" in present else ", None") + ")"]
    text = "def item(fields):\n" + "".join(f"    {line}\n" for line in body)
    scope = {"addresses": reader._addresses, "address": reader._address, "slow": reader._item, "number": _int,
             "RuleAnalyzerError": RuleAnalyzerError,
             "others": itemgetter(*rest) if len(rest) > 1 else lambda fields, key=rest[0]: (fields[key],),
             "templates": {}}
    exec(text, scope)  # noqa: S102 - our own text, of the keys' kinds only
    return scope["item"]


class PacketTemplate:
    """One checked combination of a batch's fields other than addresses,
    ports, interfaces and ``id`` (with the IP versions and which of those
    are given): ``packet`` (the first packet made of it), the slots to fill
    in and the default source port."""

    __slots__ = ("packet", "fill", "sport")

    def __init__(self, packet: Packet):
        self.packet = packet
        self.fill = [(_SLOT[name], getattr(packet, name)) for name in _SLOTS if name not in _VARYING]
        self.sport = packet.sport


_SLOTS = Packet.__slots__
_SLOT = {name: getattr(Packet, name) for name in _SLOTS}
_SET_SRC, _SET_DST, _SET_SPORT, _SET_DPORT, _SET_ID, _SET_IIF, _SET_OIF = (_SLOT[n].__set__ for n in _VARYING)
_new_packet = object.__new__
_IPv4 = ipaddress.IPv4Address
_from_bytes = int.from_bytes
_pton = socket.inet_pton
_AF_INET = socket.AF_INET
#: An IPv4 address as ``str(IPv4Address)`` writes it (ASCII digits, no
#: leading zeros): what inet_pton reads exactly as :mod:`ipaddress` does.
_CANONICAL_IPV4 = re.compile(r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
                             r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])").fullmatch
_json_text = json.encoder.encode_basestring_ascii  # json.dumps of a str


def is_address(text: str) -> bool:
    """Whether ``ipaddress.ip_address(text)`` reads ``text`` (canonical IPv4
    text is told without it)."""
    if _CANONICAL_IPV4(text):
        return True
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class PacketBatch:
    """The packets of a ``--packets`` file, held in the reader's lean form
    (``items``, see :meth:`PacketReader.item`); a sequence of
    :class:`Packet` made on demand."""

    def __init__(self, items: list, reader: PacketReader):
        self.items = items
        self.reader = reader

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Packet:
        return self.reader.packet(self.items[index])

    def __iter__(self):
        return map(self.reader.packet, self.items)


def _first_line(text: str) -> str:
    """The first line of ``text`` that is neither blank nor a comment,
    stripped ("": none). (On a prefix of a file, it may be cut short.)"""
    return next((line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")),
                "")


#: JSON lines read at once (see :func:`_read_at_once`).
_AT_ONCE = 4096


def _read_at_once(lines: list, default_hook: str, item) -> list | None:
    """The items of JSON ``lines`` read in one go where that is sure to give
    what reading them one by one gives, else None (then that is done, and
    says where a line is wrong): every line a JSON object on its own
    (``{`` first, the only one in it, ``}`` last) or blank or a comment.
    Their objects, joined with commas into one JSON array, are then read at
    once (the C scanner, its keys shared) — exactly those objects: each of
    the array's values begins with a ``{`` of its own, so as many values as
    lines means every line's ``{`` begins one, and a value that began at a
    line's start ends at the ``,`` put before the next line."""
    objects = [line for line in lines if line[:1] == "{" and line[-1:] == "}"]
    if not objects or (len(objects) != len(lines) and any(
            line.strip() and not line.lstrip().startswith("#")
            for line in lines if not (line[:1] == "{" and line[-1:] == "}"))):
        return None
    out: list = []
    append = out.append
    for start in range(0, len(objects), _AT_ONCE):  # (a few thousand objects in memory at a time)
        some = objects[start:start + _AT_ONCE]
        joined = ",".join(some)
        if joined.count("{") != len(some):
            return None
        try:
            values = json.loads("[" + joined + "]")
        except ValueError:
            return None
        if len(values) != len(some):
            return None
        try:
            for fields in values:
                fields.setdefault("hook", default_hook)
                append(item(fields))
        except (ValueError, RuleAnalyzerError):
            return None  # the same line, read again one by one, says which and why
    return out


def read_packets(text: str, name: str, default_hook: str = "input", hook: str | None = None) -> PacketBatch:
    """The packets of a ``--packets`` file: JSON lines (keys as the query
    flags; ``hook`` defaults to ``default_hook``), or real flows (``conntrack
    -L`` output, AWS VPC flow log records; ``hook`` or ``default_hook``).

    Every line is read and checked before any packet is answered, so a bad
    line stops the batch before anything is written: a
    :class:`RuleAnalyzerError` located at ``name:line:1``."""
    from .gcpause import gc_paused

    reader = PacketReader()
    item = reader.item
    items: list = []
    append = items.append
    first = _first_line(text[:1 << 16]) or _first_line(text) or "{"
    with gc_paused():  # no cycles among the packets: the collector would walk them again and again
        if not first.startswith("{"):
            from .flows import read_flow_fields

            hook = hook or default_hook
            for number, fields, _ in read_flow_fields(text, name):
                fields["hook"] = hook  # (a flow has none)
                try:
                    append(item(fields))
                except RuleAnalyzerError as exc:
                    from .model import Location

                    raise RuleAnalyzerError(f"bad flow: {exc.message}", Location(name, number, 1)) from None
            return PacketBatch(items, reader)
        from .errors import split_lines
        from .model import Location

        lines = split_lines(text)
        at_once = _read_at_once(lines, default_hook, item)
        if at_once is not None:
            return PacketBatch(at_once, reader)
        loads = json.loads
        scan = json.JSONDecoder().scan_once
        for number, line in enumerate(lines, 1):
            fields = None
            if line[:1] == "{" and line[-1:] == "}":
                # what json.loads does with a line without surrounding white
                # space, less its checks around the C scanner
                try:
                    fields, end = scan(line, 0)
                except (StopIteration, ValueError):
                    fields = None
                else:
                    if end != len(line):
                        fields = None
            elif not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                if fields is None:
                    fields = loads(line)  # the same object, or its error
                if not isinstance(fields, dict):
                    raise ValueError("each line must be a JSON object")
                fields.setdefault("hook", default_hook)
                append(item(fields))
            except (ValueError, RuleAnalyzerError) as exc:
                message = exc.message if isinstance(exc, RuleAnalyzerError) else str(exc)
                raise RuleAnalyzerError(f"bad packet: {message}", Location(name, number, 1),
                                        source_line=line) from None
    return PacketBatch(items, reader)
