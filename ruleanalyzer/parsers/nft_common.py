"""What nftables text and ``nft -j`` JSON share: statements → model.

Both readers bring a rule into libnftables' JSON statement shape (``{"match":
{"op", "left", "right"}}``, ``{"accept": None}``, ``{"mangle": …}`` …): the
JSON reader gets it for free, the text reader builds it. :class:`Builder`
collects tables, chains, sets and rules in that shape and turns them into the
model once everything is read, because a rule may use a set declared later
and a set is only decidable when no rule updates it.

Semantics follow what the kernel runs (checked with ``nft --debug=netlink``):
``tcp flags syn`` is ``flags & syn != 0``; ``tcp flags == syn`` compares the
whole byte; ``tcp dport`` brings an ``l4proto tcp`` dependency; an ``ip``
payload in an inet table brings ``nfproto ipv4``.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import Callable

from ..errors import RuleAnalyzerError
from ..model import (ACK, CWR, ECE, ECN_CODEPOINTS, FIN, PROTOCOLS, PSH, RST, SYN, URG, Accept, Action,
                     AddressMatch, AllOf, AnyOf, BitsMatch, Chain, Diagnostic, Dispatch, Drop, Goto,
                     IntMatch, InterfaceMatch, Jump, Location, Log, Match, NameMatch, Nat, Notrack,
                     OpaqueMatch, Queue, Reject, Return, Rule, Ruleset, SetField, Table, UnknownAction)
from .iptables_values import _v4_network
from .jumploops import find_loop, loop_path

# ---------------------------------------------------------------------------
# Symbolic constants
# ---------------------------------------------------------------------------

FAMILIES = ("ip", "ip6", "inet", "arp", "bridge", "netdev")

#: Named chain priorities (``priority filter - 10``), per family.
PRIORITY_NAMES = {"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50,
                  "srcnat": 100}
BRIDGE_PRIORITY_NAMES = {"dstnat": -300, "filter": -200, "out": 100, "srcnat": 300}

TCP_FLAG_NAMES = {"fin": FIN, "syn": SYN, "rst": RST, "psh": PSH, "ack": ACK, "urg": URG,
                  "ecn": ECE, "ece": ECE, "cwr": CWR}
CT_STATE_NAMES = ("invalid", "established", "related", "new", "untracked")
CT_STATUS_NAMES = ("expected", "seen-reply", "assured", "confirmed", "snat", "dnat", "dying")

ICMP_TYPES = {"echo-reply": 0, "destination-unreachable": 3, "source-quench": 4, "redirect": 5,
              "echo-request": 8, "router-advertisement": 9, "router-solicitation": 10,
              "time-exceeded": 11, "parameter-problem": 12, "timestamp-request": 13,
              "timestamp-reply": 14, "info-request": 15, "info-reply": 16,
              "address-mask-request": 17, "address-mask-reply": 18}
ICMPV6_TYPES = {"destination-unreachable": 1, "packet-too-big": 2, "time-exceeded": 3,
                "parameter-problem": 4, "echo-request": 128, "echo-reply": 129,
                "mld-listener-query": 130, "mld-listener-report": 131, "mld-listener-done": 132,
                "mld-listener-reduction": 132, "nd-router-solicit": 133, "nd-router-advert": 134,
                "nd-neighbor-solicit": 135, "nd-neighbor-advert": 136, "nd-redirect": 137,
                "router-renumbering": 138, "ind-neighbor-solicit": 141, "ind-neighbor-advert": 142,
                "mld2-listener-report": 143}
ICMP_CODES = {"net-unreachable": 0, "host-unreachable": 1, "prot-unreachable": 2,
              "port-unreachable": 3, "frag-needed": 4, "net-prohibited": 9,
              "host-prohibited": 10, "admin-prohibited": 13}
ICMPV6_CODES = {"no-route": 0, "admin-prohibited": 1, "addr-unreachable": 3,
                "port-unreachable": 4, "policy-fail": 5, "reject-route": 6}
DSCP_NAMES = {"cs0": 0, "cs1": 8, "cs2": 16, "cs3": 24, "cs4": 32, "cs5": 40, "cs6": 48, "cs7": 56,
              "af11": 10, "af12": 12, "af13": 14, "af21": 18, "af22": 20, "af23": 22,
              "af31": 26, "af32": 28, "af33": 30, "af41": 34, "af42": 36, "af43": 38,
              "ef": 46, "va": 44, "le": 1, "df": 0}
#: Services nft accepts by name (its own list comes from /etc/services; these
#: are the ones seen in real configurations).
SERVICES = {"ftp-data": 20, "ftp": 21, "ssh": 22, "telnet": 23, "smtp": 25, "domain": 53,
            "bootps": 67, "bootpc": 68, "tftp": 69, "http": 80, "www": 80, "kerberos": 88,
            "pop3": 110, "sunrpc": 111, "auth": 113, "ntp": 123, "netbios-ns": 137,
            "netbios-dgm": 138, "netbios-ssn": 139, "imap": 143, "imap2": 143, "snmp": 161,
            "snmp-trap": 162, "bgp": 179, "ldap": 389, "https": 443, "microsoft-ds": 445,
            "isakmp": 500, "syslog": 514, "submission": 587, "ldaps": 636, "rsync": 873,
            "imaps": 993, "pop3s": 995, "openvpn": 1194, "mysql": 3306, "ms-wbt-server": 3389,
            "sip": 5060, "postgresql": 5432, "ipsec-nat-t": 4500, "domain-s": 853,
            "dhcpv6-client": 546, "dhcpv6-server": 547, "mdns": 5353, "http-alt": 8080,
            "smtps": 465, "git": 9418, "nfs": 2049, "radius": 1812, "xmpp-client": 5222}
PKTTYPES = ("host", "unicast", "broadcast", "multicast", "other")
NFPROTO = {"ipv4": 4, "ipv6": 6, "ip": 4, "ip6": 6}
ETHERTYPES = {"ip": 4, "ip6": 6, "ipv4": 4, "ipv6": 6, "0x0800": 4, "0x86dd": 6, 0x0800: 4,
              0x86DD: 6}

#: L4 protocols whose header starts with 16-bit source and destination ports.
PORT_PROTOCOLS = {"tcp": 6, "udp": 17, "udplite": 136, "sctp": 132, "dccp": 33}
TH_PROTOCOLS = tuple(sorted(PORT_PROTOCOLS.values()))

FIELD_MAX = {"proto": 255, "sport": 0xFFFF, "dport": 0xFFFF, "icmp_type": 255, "icmp_code": 255,
             "length": 0xFFFF + 40, "ttl": 255, "dscp": 63, "ecn": 3, "mark": 0xFFFFFFFF,
             "ctmark": 0xFFFFFFFF, "family": 255, "uid": 0xFFFFFFFF, "gid": 0xFFFFFFFF,
             "flags": 0xFF, "ipfrag": 0xFFFF, "ip_id": 0xFFFF}

#: Statements that end a rule with a verdict.
VERDICTS = ("accept", "drop", "reject", "jump", "goto", "return", "continue", "queue")


#: Comparisons :attr:`Builder.match_cache` holds before it starts again.
MATCH_CACHE_SIZE = 4096


_FOLD = {"|": int.__or__, "&": int.__and__, "^": int.__xor__,
         "<<": lambda a, b: a << b if b < 32 else 0, ">>": int.__rshift__}


def _constant32(value) -> int | None:
    """The 32-bit value of a constant — a number, a numeric string, or
    constants under ``|``, ``&``, ``^``, ``<<``, ``>>`` (nft folds ``0x1 |
    0x2`` to 3 before it loads the rule) — else None."""
    if isinstance(value, str):
        try:
            value = int(value, 0)
        except ValueError:
            return None
    elif isinstance(value, dict) and len(value) == 1:
        (op, args), = value.items()
        if op not in _FOLD or not isinstance(args, list) or len(args) != 2:
            return None
        a, b = _constant32(args[0]), _constant32(args[1])
        return None if a is None or b is None else _FOLD[op](a, b) & 0xFFFFFFFF
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFFFFFFFF:
        return None
    return value


def _xmark_of(key, value) -> tuple[int, int] | None:
    """``(value, mask)`` of the write ``key = (key & ~mask) ^ value`` that
    ``value`` computes when it is ``key`` under ``|``, ``&`` and ``^`` with
    32-bit constants, nested (nft's JSON form of ``meta mark set meta mark
    | 0x4000``; ``mark & 0xff00 ^ 0x6600``, firewalld's and iptables-nft's
    ``--set-xmark``), else None."""
    if value == key:
        return 0, 0
    if not isinstance(value, dict) or len(value) != 1:
        return None
    (op, args), = value.items()
    if op not in ("|", "&", "^") or not isinstance(args, list) or len(args) != 2:
        return None
    left, right = args
    if _constant32(left) is not None:  # "ct mark set 0x1 or ct mark": the operators commute
        left, right = right, left
    inner = _xmark_of(key, left)
    const = _constant32(right)
    if inner is None or const is None:
        return None
    v, m = inner
    if op == "|":  # x | C = (x & ~C) ^ C
        return v | const, m | const
    if op == "&":  # x & C clears the bits C lacks
        return v & const, (m | ~const) & 0xFFFFFFFF
    return v ^ const, m  # x ^ C


class ModelError(Exception):
    """A statement the builder cannot turn into the model (bad value, unknown
    element); readers re-raise it as a located :class:`RuleAnalyzerError`."""


# ---------------------------------------------------------------------------
# Field descriptors: what a left-hand expression reads
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Selector:
    """A left-hand side: model ``kind`` and ``field``, how to read its values
    and the dependency matches nft adds for it."""

    kind: str            # addr | int | name | iface | flags | opaque
    field: str
    version: int = 0     # addr: 4 or 6
    symbols: tuple = ()  # name table for int fields: ((name, value), ...)
    offset: int = 0      # added to every value (ip6 length → total length)
    deps: tuple[Match, ...] = ()
    reason: str = ""
    bitmask: bool = False  # implicit op is "flags & v != 0" (tcp flags, ct state)


def _proto_dep(*numbers: int) -> IntMatch:
    return IntMatch("proto", tuple((n, n) for n in sorted(numbers)), text=f"l4proto {numbers}")


#: The keys of ``ip ttl set`` and ``ip6 hoplimit set`` (IPv4's first).
_TTL_KEYS = ({"payload": {"protocol": "ip", "field": "ttl"}},
             {"payload": {"protocol": "ip6", "field": "hoplimit"}})


def _family_dep(version: int) -> IntMatch:
    return IntMatch("family", ((version, version),), text=f"nfproto ipv{version}")


def _describe(expr) -> str:
    """A short nft-like text for an expression, for opaque reasons."""
    if isinstance(expr, dict) and len(expr) == 1:
        key, value = next(iter(expr.items()))
        if key == "unknown":
            return str(value)
        if key == "payload" and isinstance(value, dict):
            if "protocol" in value:
                return f"{value['protocol']} {value.get('field', '')}".strip()
            return f"@{value.get('base')},{value.get('offset')},{value.get('len')}"
        if key in ("meta", "ct", "rt", "socket", "osf", "ipsec") and isinstance(value, dict):
            return f"{key} {value.get('key', '')}".strip()
        if key == "fib" and isinstance(value, dict):
            flags = value.get("flags", [])
            flags = [flags] if isinstance(flags, str) else flags
            return f"fib {' . '.join(map(str, flags))} {value.get('result', '')}"
        return key
    return json.dumps(expr, separators=(",", ":"), default=str)[:80]


_META_NAMES = {"mark": ("int", "mark"), "l4proto": ("int", "proto"), "nfproto": ("int", "family"),
               "protocol": ("int", "family"), "skuid": ("int", "uid"), "skgid": ("int", "gid"),
               "iifname": ("iface", "iif"), "oifname": ("iface", "oif"), "iif": ("iface", "iif"),
               "oif": ("iface", "oif"), "pkttype": ("name", "pkttype"), "length": ("int", "length")}
_PROTO_SYMBOLS = tuple(PROTOCOLS.items())


@functools.lru_cache(maxsize=4096)
def _selector_flat(kind: str, items: tuple, family: str) -> Selector:
    return _selector({kind: dict(items)}, family)


@functools.lru_cache(maxsize=4096)
def _selector_cached(key: str, family: str) -> Selector:
    return _selector(json.loads(key), family)


#: (kind, items, family) → the selector of a flat expression with string
#: values; checked before the values are (a hit needs no check: every key
#: stored has only strings).
_SELECTOR_MEMO: dict[tuple, Selector] = {}


#: (kind, items, family) → the selector of a flat expression whose values
#: are strings and ints (no bool: checked before the lookup).
_SELECTOR_INT_MEMO: dict[tuple, Selector] = {}


def selector(expr, family: str) -> Selector:
    """The :class:`Selector` for left-hand expression ``expr`` in a table of
    ``family``."""
    if isinstance(expr, dict) and len(expr) == 1:
        # fast path for the common shapes: {"payload": {"protocol": …, "field": …}}
        for kind, value in expr.items():
            pass
        if isinstance(value, dict):
            items = tuple(value.items())
            try:
                sel = _SELECTOR_MEMO.get((kind, items, family))  # a miss raises nothing
            except TypeError:  # a list or dict among the values
                sel = None
            if sel is not None:
                return sel
            if all(isinstance(v, str) for v in value.values()):
                if len(_SELECTOR_MEMO) >= 4096:
                    _SELECTOR_MEMO.clear()
                sel = _SELECTOR_MEMO[kind, items, family] = _selector_flat(kind, items, family)
                return sel
            if all(type(v) is str or type(v) is int for v in value.values()):
                # flat shapes with numbers too (``numgen random mod 2``:
                # kube-proxy's endpoint maps; ``@nh,96,32``): kept apart, so
                # that a bool (True == 1, same hash) never finds them
                sel = _SELECTOR_INT_MEMO.get((kind, items, family))
                if sel is None:
                    if len(_SELECTOR_INT_MEMO) >= 4096:
                        _SELECTOR_INT_MEMO.clear()
                    sel = _SELECTOR_INT_MEMO[kind, items, family] = _selector_flat(kind, items, family)
                return sel
    try:
        key = json.dumps(expr, sort_keys=True)
    except (TypeError, ValueError):
        return Selector("opaque", "", reason=f"depends on {_describe(expr)}")
    return _selector_cached(key, family)


#: The header an expression the model does not read lives in, by its first
#: words (text) or JSON key, and so the dependency nft gives it
#: (evaluate.c ``expr_evaluate_exthdr``, ``payload_gen_dependency``).
_OPAQUE_HEADERS = (("tcp option", "tcp"), ("ip option", "ip"), ("exthdr", "ip6"), ("frag ", "ip6"),
                   ("hbh ", "ip6"), ("rt ", "ip6"), ("dst ", "ip6"), ("mh ", "ip6"),
                   ("srh ", "ip6"), ("ip6 ", "ip6"), ("ip ", "ip"), ("icmpv6 ", "icmpv6"),
                   ("icmp ", "icmp"), ("tcp ", "tcp"), ("udp ", "udp"), ("udplite ", "udplite"),
                   ("sctp ", "sctp"), ("dccp ", "dccp"))


def _opaque_deps(expr, family: str) -> tuple[Match, ...]:
    """The dependency matches of an expression the model cannot decide: the
    packet must still have its header, or the rule does not match (a UDP
    packet never matches ``tcp option maxseg size < 500``)."""
    fam_dep = family in ("inet", "bridge", "netdev")
    header = None
    if isinstance(expr, dict) and len(expr) == 1:
        key, value = next(iter(expr.items()))
        if key == "payload" and isinstance(value, dict) and isinstance(value.get("protocol"), str):
            header = value["protocol"]
        elif key in ("tcp option", "ip option", "exthdr"):
            header = {"tcp option": "tcp", "ip option": "ip", "exthdr": "ip6"}[key]
        elif key == "unknown" and isinstance(value, str):
            text = value + " "
            header = next((h for prefix, h in _OPAQUE_HEADERS if text.startswith(prefix)), None)
    if header in ("ip", "ip6"):
        return (_family_dep(4 if header == "ip" else 6),) if fam_dep else ()
    if header in ("icmp", "icmpv6"):
        version = 4 if header == "icmp" else 6
        return ((_family_dep(version),) if fam_dep else ()) + (_proto_dep(1 if version == 4 else 58),)
    if header in PORT_PROTOCOLS:
        return (_proto_dep(PORT_PROTOCOLS[header]),)
    return ()


def _selector(expr, family: str) -> Selector:
    opaque = Selector("opaque", "", reason=f"depends on {_describe(expr)}",
                      deps=_opaque_deps(expr, family))
    fam_dep = family in ("inet", "bridge", "netdev")
    if not isinstance(expr, dict) or len(expr) != 1:
        return opaque
    key, value = next(iter(expr.items()))
    if not isinstance(value, dict):
        return opaque
    if key == "payload":
        proto, fld = value.get("protocol"), value.get("field")
        if "tunnel" in value:
            return Selector("opaque", "", reason=f"depends on the {value['tunnel']} inner header")
        v4 = (_family_dep(4),) if fam_dep else ()
        v6 = (_family_dep(6),) if fam_dep else ()
        if proto == "ip":
            if fld in ("saddr", "daddr"):
                return Selector("addr", "src" if fld == "saddr" else "dst", 4, deps=v4)
            simple = {"protocol": ("proto", _PROTO_SYMBOLS), "dscp": ("dscp", tuple(DSCP_NAMES.items())),
                      "ecn": ("ecn", tuple(ECN_CODEPOINTS.items())), "length": ("length", ()),
                      "ttl": ("ttl", ()), "frag-off": ("ipfrag", ()), "id": ("ip_id", ())}
            if fld in simple:
                name, symbols = simple[fld]
                return Selector("int", name, symbols=symbols, deps=v4)
        elif proto == "ip6":
            if fld in ("saddr", "daddr"):
                return Selector("addr", "src" if fld == "saddr" else "dst", 6, deps=v6)
            simple = {"nexthdr": ("proto", _PROTO_SYMBOLS, 0), "dscp": ("dscp", tuple(DSCP_NAMES.items()), 0),
                      "ecn": ("ecn", tuple(ECN_CODEPOINTS.items()), 0), "length": ("length", (), 40),
                      "hoplimit": ("ttl", (), 0)}
            if fld in simple:
                name, symbols, offset = simple[fld]
                return Selector("int", name, symbols=symbols, offset=offset, deps=v6,
                                version=6 if fld == "nexthdr" else 0)
        elif proto in PORT_PROTOCOLS or proto == "th":
            dep = _proto_dep(*TH_PROTOCOLS) if proto == "th" else _proto_dep(PORT_PROTOCOLS[proto])
            if fld in ("sport", "dport"):
                return Selector("int", fld, symbols=tuple(SERVICES.items()), deps=(dep,))
            if proto == "tcp" and fld == "flags":
                return Selector("flags", "flags", symbols=tuple(TCP_FLAG_NAMES.items()),
                                deps=(dep,), bitmask=True)
        elif proto in ("icmp", "icmpv6") and fld in ("type", "code"):
            version = 4 if proto == "icmp" else 6
            deps = ((_family_dep(version),) if fam_dep else ()) + (_proto_dep(1 if version == 4 else 58),)
            if fld == "type":
                symbols = ICMP_TYPES if version == 4 else ICMPV6_TYPES
            else:
                symbols = ICMP_CODES if version == 4 else ICMPV6_CODES
            return Selector("int", f"icmp_{fld}", symbols=tuple(symbols.items()), deps=deps)
        return opaque
    if key == "meta":
        meta = value.get("key")
        if meta in _META_NAMES:
            kind, name = _META_NAMES[meta]
            if kind == "opaque":
                return opaque
            symbols = {"l4proto": _PROTO_SYMBOLS, "nfproto": tuple(NFPROTO.items()),
                       "protocol": tuple(ETHERTYPES.items())}.get(meta, ())
            return Selector(kind, name, symbols=symbols)
        return opaque
    if key == "ct":
        ct = value.get("key")
        if "dir" in value:
            return opaque
        if ct == "state":
            return Selector("name", "state", symbols=tuple((n, n) for n in CT_STATE_NAMES), bitmask=True)
        if ct == "status":
            return Selector("name", "ct_status", symbols=tuple((n, n) for n in CT_STATUS_NAMES),
                            bitmask=True)
        if ct == "direction":
            return Selector("name", "ct_direction", symbols=(("original", "original"), ("reply", "reply")))
        if ct == "mark":
            return Selector("int", "ctmark")
        return opaque
    if key == "fib":
        flags = value.get("flags", [])
        flags = [flags] if isinstance(flags, str) else list(flags or [])
        if value.get("result") == "type" and flags in (["daddr"], ["saddr"]):
            return Selector("name", "dst_type" if flags == ["daddr"] else "src_type")
        return Selector("opaque", "", reason=f"depends on the routing table ({_describe(expr)})")
    if key in ("numgen", "jhash", "symhash"):
        return Selector("opaque", "", reason=f"depends on {key} (a per-packet hash or counter)")
    if key in ("socket", "osf"):
        return Selector("opaque", "", reason=f"depends on {key} lookup of the host's state")
    return opaque


# ---------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------


_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"  # ASCII digits: ipaddress refuses others
#: A dotted quad as ipaddress writes one (each part 0-255, no leading zero):
#: exactly the strings ipaddress reads as that number, read without its
#: parser (a kube-proxy rule's addresses were a third of building it).
_QUAD = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}\Z").match


def _quad_number(text: str) -> int | None:
    """The number of the dotted quad ``text`` (:data:`_QUAD`), else None."""
    quad = _QUAD(text)
    if quad is None:
        return None
    a, b, c, d = quad.groups()
    return int(a) << 24 | int(b) << 16 | int(c) << 8 | int(d)


def _without_repeated_deps(matches) -> tuple:
    """``matches`` with a repeated protocol/family dependency kept once
    (the cheap type test first: equality only for those)."""
    kept = []
    for m in matches:
        if not (isinstance(m, IntMatch) and m.field in ("proto", "family")) or m not in kept:
            kept.append(m)
    return tuple(kept)


def ip_address(text: str):
    """``ipaddress.ip_address(text)``, a dotted quad read faster."""
    number = _quad_number(text)
    return ipaddress.ip_address(text) if number is None else ipaddress.IPv4Address(number)


@functools.lru_cache(maxsize=65536)
def _network(text: str, version: int):
    number = _quad_number(text)
    if number is not None:  # what ip_network(text) makes: the /32 of that number
        net = _v4_network(number, 32)  # (its hosts a list's copy, not a lambda and cell: ~100 B less)
    else:
        net = ipaddress.ip_network(text, strict=False)
    if version and net.version != version:
        raise ModelError(f"{text} is not an IPv{version} address")
    return net


def _int_value(value, sel: Selector) -> int:
    if isinstance(value, bool):
        raise ModelError(f"unexpected value {value!r}")
    if isinstance(value, int):
        return value + sel.offset
    if isinstance(value, str):
        text = value.strip()
        for name, number in sel.symbols:
            if name == text:
                return number + sel.offset
        try:
            return int(text, 0) + sel.offset
        except ValueError:
            pass
    if isinstance(value, dict) and "|" in value:
        bits = 0
        for part in value["|"]:
            bits |= _int_value(part, sel) - sel.offset
        return bits + sel.offset
    if isinstance(value, list):  # a flag list ["syn", "ack"] is an OR
        bits = 0
        for part in value:
            bits |= _int_value(part, sel) - sel.offset
        return bits + sel.offset
    raise ModelError(f"cannot read {_describe(value)} as a value of {sel.field or 'this field'}")


def _int_ranges(value, sel: Selector) -> list[tuple[int, int]]:
    """The integer ranges a right-hand value covers."""
    if isinstance(value, dict):
        if "range" in value and isinstance(value["range"], list) and len(value["range"]) == 2:
            lo, hi = (_int_value(v, sel) for v in value["range"])
            return [(min(lo, hi), max(lo, hi))]
        if "set" in value:
            out = []
            for elem in _set_items(value["set"]):
                out.extend(_int_ranges(elem, sel))
            return out
        if "prefix" in value:
            raise ModelError("a prefix is not a value of this field")
    number = _int_value(value, sel)
    return [(number, number)]


def _networks(value, sel: Selector) -> list:
    if isinstance(value, str):
        return [_network(value, sel.version)]
    if isinstance(value, dict):
        if "prefix" in value:
            p = value["prefix"]
            if isinstance(p, dict):
                return [_network(f"{p.get('addr')}/{p.get('len')}", sel.version)]
        if "range" in value and isinstance(value["range"], list) and len(value["range"]) == 2:
            lo, hi = (ipaddress.ip_address(v) for v in value["range"])
            if lo.version != hi.version or (sel.version and lo.version != sel.version):
                raise ModelError("address range of mixed or wrong IP version")
            if lo > hi:
                lo, hi = hi, lo
            return list(ipaddress.summarize_address_range(lo, hi))
        if "set" in value:
            out = []
            for elem in _set_items(value["set"]):
                out.extend(_networks(elem, sel))
            return out
    raise ModelError(f"cannot read {_describe(value)} as an address")


def _set_items(items):
    """Elements of a set value; ``{"elem": {"val": …, "timeout": …}}`` wrappers removed."""
    if not isinstance(items, list):
        items = [items]
    for item in items:
        yield unwrap_elem(item)


def unwrap_elem(item):
    """An element without its ``timeout``/``counter`` annotations."""
    while isinstance(item, dict) and "elem" in item and isinstance(item["elem"], dict):
        item = item["elem"].get("val")
    return item


def _masked_names(sel: Selector, mask_value, right, op: str) -> Match:
    """``ct status & dnat == dnat`` (nft lists ``--ctstatus DNAT`` so), ``ct
    state & (established|related) != 0``: for each flag of the mask, the
    packet has it exactly where the value names it — a conjunction of
    single-flag matches (the value 0 names none); ``!=`` negates it."""
    def flags(value) -> set[str]:
        if isinstance(value, int) and not isinstance(value, bool):
            if value == 0:
                return set()
            raise ModelError(f"cannot read {value} as {sel.field} flags")
        return {n.replace("-", "_") if sel.field == "ct_status" else n for n in _names(value, sel)}
    mask, value = flags(mask_value), flags(right)
    if not value <= mask:  # (a flag the mask clears: the masked value never equals it)
        return AnyOf((), negate=op == "!=")
    parts = tuple(NameMatch(sel.field, frozenset({n}), negate=n not in value) for n in sorted(mask))
    return AllOf(parts, negate=op == "!=")


def _names(value, sel: Selector) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, int) and not isinstance(value, bool):
        return [str(value)]
    if isinstance(value, list):
        return [n for v in value for n in _names(v, sel)]
    if isinstance(value, dict) and "set" in value:
        return [n for v in _set_items(value["set"]) for n in _names(v, sel)]
    if isinstance(value, dict) and "|" in value:
        return [n for v in value["|"] for n in _names(v, sel)]
    raise ModelError(f"cannot read {_describe(value)} as a name")


def _vmap_memo_key(key, pairs, family: str, table: str) -> tuple | None:
    """The key :attr:`Builder.vmap_cache` keeps a verdict map's matches
    under, or None: for a flat key (``{"numgen": {…}}``, ``{"payload":
    {…}}``: string and int values, no bool) and elements whose keys are all
    ints — whose matches depend on nothing else (no set, no ``*``, no
    concatenation, no mask)."""
    if type(key) is not dict or len(key) != 1:
        return None
    for kind, spec in key.items():
        pass
    if type(spec) is not dict:
        return None
    for value in spec.values():
        if type(value) is not str and type(value) is not int:
            return None
    keys = []
    for key_value, _verdict in pairs:
        if type(key_value) is not int:
            return None
        keys.append(key_value)
    return kind, tuple(spec.items()), tuple(keys), family, table


def generated_range(expr) -> tuple[int, int] | None:
    """``(first, last)`` of the values ``numgen … mod N [offset O]``,
    ``jhash … mod N`` or ``symhash mod N`` (text or nft -j form) can take:
    ``[O, O+N-1]``; None for any other expression."""
    if not isinstance(expr, dict) or len(expr) != 1:
        return None
    kind, spec = next(iter(expr.items()))
    if kind not in ("numgen", "jhash", "symhash") or not isinstance(spec, dict):
        return None
    mod, offset = spec.get("mod"), spec.get("offset", 0)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (mod, offset)) or mod <= 0 or offset < 0:
        return None
    return offset, offset + mod - 1


def _int_interval(key) -> tuple[int, int] | None:
    """A map element's integer key as ``(first, last)``: ``3``, ``"3"``,
    ``{"range": [0, 5]}``, ``"0-5"``; None for anything else."""
    key = unwrap_elem(key)
    if isinstance(key, dict) and isinstance(key.get("range"), list) and len(key["range"]) == 2:
        ends = [_int_interval(v) for v in key["range"]]
        return None if None in ends else (ends[0][0], ends[1][1])
    if isinstance(key, bool):
        return None
    if isinstance(key, int):
        return key, key
    if isinstance(key, str):
        first, sep, last = key.partition("-")
        try:
            return (int(first, 0), int(last, 0)) if sep else (int(key, 0), int(key, 0))
        except ValueError:
            return None
    return None


# ---------------------------------------------------------------------------
# Sets declared in a table
# ---------------------------------------------------------------------------


@dataclass(slots=True)
class SetDecl:
    """A named set or map as declared (``elements`` in JSON element shape)."""

    name: str
    is_map: bool = False
    flags: tuple[str, ...] = ()
    elements: list = field(default_factory=list)
    updated: bool = False
    has_timeout: bool = False
    #: The first rule that adds to or updates this set from the packet path.
    updated_by: str = ""

    @property
    def decidable(self) -> bool:
        return not (self.updated or self.has_timeout or "dynamic" in self.flags
                    or "timeout" in self.flags)

    def reading(self) -> tuple[str, str]:
        """How a lookup in this set is answered: ``exact`` (its contents are
        what the file lists), ``snapshot`` (maintained at runtime — flags
        timeout or dynamic, a bouncer's or fail2ban's blocklist — but listed
        with its elements: the answer holds for this listing), or
        ``history`` / ``runtime`` (unknown: rules of this ruleset fill it
        from the packets they see, or its elements are not listed), with
        the reason."""
        if self.updated:
            return "history", (f"depends on traffic history: set @{self.name} is filled from the "
                               f"packet path ({self.updated_by})")
        if self.decidable:
            return "exact", ""
        why = "flags " + ", ".join(f for f in self.flags if f in ("timeout", "dynamic")) \
            if {"timeout", "dynamic"} & set(self.flags) else "elements with timeouts"
        if not self.elements:
            return "runtime", (f"depends on the runtime contents of set @{self.name} ({why}; "
                               "no elements listed)")
        return "snapshot", why


# ---------------------------------------------------------------------------
# The builder
# ---------------------------------------------------------------------------


@dataclass(slots=True)
class PendingRule:
    exprs: list
    location: Location
    text: str
    handle: str | None
    comment: str | None
    #: the order rules were read in (``insert`` included), for naming the
    #: jump that closes a loop as nft would: the first added that closes it
    seq: int = 0


def _handle(rule: PendingRule | Rule) -> str | None:
    return rule.ident if isinstance(rule, Rule) else rule.handle


class Builder:
    """Collects what a reader saw (tables, chains, sets, rules as JSON-shaped
    statements) and builds the :class:`Ruleset` in :meth:`finish`."""

    def __init__(self, name: str, dialect: str):
        self.name = name
        self.dialect = dialect
        self.ruleset = Ruleset(sources=[name])
        self.tables: dict[tuple[str, str], Table] = {}
        self.sets: dict[tuple[str, str, str], SetDecl] = {}
        #: per chain, its rules in order: a :class:`PendingRule`, or the model
        #: :class:`Rule` when it was built as it was added (see add_rule)
        self.pending: dict[int, list[PendingRule | Rule]] = {}
        self._chains: dict[int, Chain] = {}
        self._anon = 0
        self._added = 0
        #: Built matches of a selector compared with a scalar (many rules
        #: repeat ``ct state established,related``, ``iifname "lo"``):
        #: (id(selector), op, type, value, mask, family, table) → (selector, matches).
        self.match_cache: dict[tuple, tuple] = {}
        #: What :meth:`_RuleContext.vmap` works out from a flat key and its
        #: elements' integer keys alone (kube-proxy's ``numgen random mod N
        #: vmap { 0 : goto A, 1 : goto B }``, ~15k at 100k rules, all alike
        #: but for their targets): (key kind, key items, element keys,
        #: family, table) → (dependencies, each branch's match).
        self.vmap_cache: dict[tuple, tuple] = {}
        #: (id(left), family) → (left, its selector) for the left-hand sides
        #: :mod:`.nft_lines` shares between its lines (:meth:`_line_rule`).
        self._line_selectors: dict[tuple, tuple] = {}
        #: (id(selector), type, value) → (selector, the match of one part of
        #: a concatenated set element equal to value) (_concat_alternatives)
        self.element_match_cache: dict[tuple, tuple] = {}
        #: ``(rule, target) -> (location, source line)`` of the jump to
        #: ``target`` inside ``rule``, finer than the rule's own location;
        #: set by a reader that can tell (only asked when refusing a loop).
        self.jump_locator: Callable[[Rule, str], tuple[Location, str | None]] | None = None

    # -- structure -----------------------------------------------------------------
    def table(self, family: str, name: str, location: Location | None = None) -> Table:
        """The table ``family name``, created on first use."""
        key = (family, name)
        table = self.tables.get(key)
        if table is None:
            table = Table(name, family, location=location, dialect=self.dialect)
            self.tables[key] = table
            self.ruleset.add_table(table)
        return table

    def chain(self, family: str, table: str, name: str, location: Location | None = None) -> Chain:
        """The chain ``name`` of a table, created on first use. ``location``:
        its declaration, or the command that names it first (a fragment's
        ``add rule`` of an undeclared chain): every chain has a place to
        point a finding at."""
        tab = self.table(family, table, location)
        chain = tab.chains.get(name)
        if chain is None:
            chain = tab.add_chain(Chain(name, location=location))
            self._chains[id(chain)] = chain
            self.pending[id(chain)] = []
        elif chain.location is None and location is not None:
            chain.location = location
        return chain

    def set_base(self, chain: Chain, kind: str | None, hook: str | None, priority,
                 policy: str | None, devices=(), location: Location | None = None) -> None:
        """Make ``chain`` a base chain (``type K hook H priority P; policy X;``)."""
        family = chain.table.family if chain.table else "ip"
        if hook is not None:
            chain.hook = str(hook)
            chain.kind = str(kind or "filter")
            chain.priority = chain_priority(priority, family)
            chain.policy = policy or chain.policy or "accept"
        elif policy is not None:
            chain.policy = policy
        if policy is not None:
            if policy not in ("accept", "drop"):
                raise ModelError(f"chain policy must be accept or drop, not {policy!r}")
            chain.policy = policy
            chain.policy_location = location
        if devices:
            chain.devices = tuple(devices)

    def flush_chain(self, chain: Chain) -> None:
        self.pending[id(chain)] = []

    def delete_chain(self, family: str, table: str, name: str) -> None:
        tab = self.tables.get((family, table))
        if tab and name in tab.chains:
            chain = tab.chains.pop(name)
            self.pending.pop(id(chain), None)

    def delete_table(self, family: str, name: str) -> None:
        table = self.tables.pop((family, name), None)
        if table is not None:
            self.ruleset.tables.remove(table)
            for chain in table.chains.values():
                self.pending.pop(id(chain), None)
            for key in [k for k in self.sets if k[:2] == (family, name)]:
                del self.sets[key]

    def flush_table(self, family: str, name: str) -> None:
        table = self.tables.get((family, name))
        if table is not None:
            for chain in table.chains.values():
                self.pending[id(chain)] = []

    def flush_ruleset(self) -> None:
        self.ruleset.tables.clear()
        self.tables.clear()
        self.sets.clear()
        self.pending.clear()

    def declare_set(self, family: str, table: str, name: str, is_map: bool = False,
                    flags=(), elements=(), has_timeout: bool = False) -> SetDecl:
        """Declare (or re-declare, as ``nft -f`` allows) a named set or map."""
        self.table(family, table)
        key = (family, table, name)
        decl = self.sets.get(key)
        if decl is None:
            decl = self.sets[key] = SetDecl(name, is_map)
        decl.flags = tuple(sorted(set(decl.flags) | set(flags)))
        decl.has_timeout = decl.has_timeout or has_timeout
        self.add_elements(family, table, name, elements)
        return decl

    def add_elements(self, family: str, table: str, name: str, elements) -> None:
        decl = self.sets.get((family, table, name))
        if decl is None:
            raise ModelError(f"no set or map named {name!r} in table {family} {table}")
        for elem in elements:
            if isinstance(elem, dict) and isinstance(elem.get("elem"), dict) and "timeout" in elem["elem"]:
                decl.has_timeout = True
            if isinstance(elem, list) and elem and isinstance(elem[0], dict) and \
                    isinstance(elem[0].get("elem"), dict) and "timeout" in elem[0]["elem"]:
                decl.has_timeout = True
            decl.elements.append(elem)

    def add_rule(self, chain: Chain, exprs: list, location: Location, text: str,
                 handle: str | None = None, comment: str | None = None,
                 position: int | None = None, at_names: bool | None = None) -> None:
        """Queue a rule (JSON-shaped statements) for ``chain``; ``position`` is
        the 0-based insertion index (``insert rule``), default at the end;
        ``at_names``: see :func:`_names_a_set`."""
        pending = self.pending.setdefault(id(chain), [])
        self._added += 1
        rule: PendingRule | Rule = PendingRule(exprs, location, text, handle, comment, self._added)
        if chain.table is not None and not _names_a_set(exprs, at_names):
            # built now, so that 100k rules' JSON-shaped statements are not
            # all kept until finish(); a rule that fails is built again
            # there, so that errors come in the order they always came
            try:
                built = self.build_rule(chain.table, rule)
            except RuleAnalyzerError:
                pass
            else:
                built.index = self._added  # the order it was added in, until finish() adds it to its chain
                rule = built
        if position is None:
            pending.append(rule)
        else:
            pending.insert(position, rule)

    def add_built(self, chain: Chain, stmts, location: Location, text: str) -> bool:
        """Add the rule of a line :mod:`.nft_lines` read (its ``stmts``: the
        parts of plain matches of an address or number, verdicts, ``dnat``,
        a verdict map) built here directly, as :meth:`add_rule` would build
        and add ``as_json(stmts)``; False (nothing added) where this cannot
        tell what that gives — the caller then adds it that way."""
        table = chain.table
        if table is None:
            return False
        try:
            rule = self._line_rule(table, stmts, location, text)
        except (ModelError, ValueError, TypeError, KeyError, IndexError, AttributeError):
            return False  # add_rule says what, when and where
        if rule is None:
            return False
        pending = self.pending.setdefault(id(chain), [])
        self._added += 1
        rule.index = self._added
        pending.append(rule)
        return True

    def _line_rule(self, table: Table, stmts, location: Location, text: str) -> Rule | None:
        """What build_rule makes of a line's statements (see :meth:`add_built`),
        or None: each statement through the _RuleContext method statement()
        gives it to (match, vmap; verdict_action, nat_action)."""
        ctx = _RuleContext(self, table)
        family = table.family
        selectors = self._line_selectors
        action = None
        for stmt in stmts:
            kind = stmt[0]
            if kind == "match":
                # what match() does with a plain selector (the reader's
                # shared left-hand sides: their selectors looked up once)
                left, op, right = stmt[1], stmt[2], stmt[3]
                known = selectors.get((id(left), family))
                if known is None or known[0] is not left:
                    if op not in _OPS or not (type(left) is dict and len(left) == 1
                                              and next(iter(left)) in ("payload", "meta", "ct")):
                        ctx.matches.extend(ctx.match(left, op, right))
                        continue
                    if len(selectors) >= 256:
                        selectors.clear()
                    known = selectors[id(left), family] = (left, selector(left, family))
                if op not in _OPS:
                    raise ModelError(f"unknown operator {op!r}")
                ctx.matches.extend(ctx.selected_match(known[1], op, right, None))
            elif kind == "dnat":
                action = nat_action(kind, stmt[1])
            elif kind == "vmap":
                action = ctx.vmap(stmt[1])
            elif kind == "jump" or kind == "goto":
                target = stmt[1].get("target") if type(stmt[1]) is dict else None
                if type(target) is not str:
                    action = verdict_action({kind: stmt[1]})
                else:
                    action = Jump(target) if kind == "jump" else Goto(target)
            else:
                action = verdict_action({kind: stmt[1]})
                if action is None:
                    return None
        if ctx.snapshots or ctx.effects or ctx.comment is not None:
            return None
        return Rule(_without_repeated_deps(ctx.matches), action if action is not None else Log("no verdict"),
                    location, text=text, comment=None, ident=None, effects=())

    def delete_rule(self, chain: Chain, handle: str) -> bool:
        pending = self.pending.get(id(chain), [])
        for i, rule in enumerate(pending):
            if _handle(rule) == handle:
                del pending[i]
                return True
        return False

    def rule_position(self, chain: Chain, handle: str) -> int | None:
        for i, rule in enumerate(self.pending.get(id(chain), [])):
            if _handle(rule) == handle:
                return i
        return None

    def anonymous_chain(self, chain: Chain) -> Chain:
        """A new chain for a binding (``jump { … }``) inside ``chain``'s table."""
        self._anon += 1
        table = chain.table
        return self.chain(table.family, table.name, f"__chain{self._anon}")

    # -- building ------------------------------------------------------------------
    def finish(self) -> Ruleset:
        """Build every queued rule into the model and return the ruleset."""
        for pending in self.pending.values():
            for rule in pending:
                if isinstance(rule, Rule):
                    continue  # built: it updates no set
                for target, op in _updated_sets(rule.exprs):
                    for (fam, tab, name), decl in self.sets.items():
                        if name == target and rule.location is not None:
                            if not decl.updated:
                                decl.updated_by = f"{op} @{name}" if op != "meter" else f"meter {name}"
                            decl.updated = True
        for table in self.ruleset.tables:
            # every jump (chain, target), the rule it is in and when that was added
            jumps: list[tuple[str, str]] = []
            sites: list[Rule] = []
            added: list[int] = []
            for chain in table.chains.values():
                chain.rules.clear()
                for pending in self.pending.get(id(chain), []):
                    if isinstance(pending, Rule):  # built when added: its index is that order
                        rule, seq, exprs = pending, pending.index, ()
                    else:
                        rule, seq, exprs = self.build_rule(table, pending), pending.seq, pending.exprs
                    chain.add(rule)
                    _share_target_names(table.chains, rule.action)
                    for target in self._jump_targets(table, rule, exprs):
                        jumps.append((chain.name, target))
                        sites.append(rule)
                        added.append(seq)
            if jumps:
                if any(added[k] > added[k + 1] for k in range(len(added) - 1)):  # inserted rules
                    order = sorted(range(len(added)), key=added.__getitem__)
                    jumps = [jumps[k] for k in order]
                    sites = [sites[k] for k in order]
                self.refuse_jump_loop(table, jumps, sites)
        return self.ruleset

    def _jump_targets(self, table: Table, rule: Rule, exprs) -> list[str]:
        """The chains ``rule`` can jump or go to: its verdict, the verdicts of
        its verdict map — also of a named map whose contents may change at run
        time (the kernel checks those elements too)."""
        targets = rule.jump_targets()
        if not isinstance(rule.action, Dispatch):
            return targets
        for stmt in exprs:  # a map the model could not read (dynamic, with timeouts)
            body = stmt.get("vmap") if isinstance(stmt, dict) else None
            data = body.get("data") if isinstance(body, dict) else None
            if not (isinstance(data, str) and data.startswith("@")):
                continue
            decl = self.sets.get((table.family, table.name, data[1:]))
            if decl is None or decl.decidable:
                continue  # a readable map's verdicts are the branches above
            for item in decl.elements:
                verdict = item[1] if isinstance(item, list) and len(item) == 2 else None
                try:
                    found = verdict_action(verdict) if isinstance(verdict, dict) else None
                except ModelError:
                    continue
                if isinstance(found, (Jump, Goto)):
                    targets.append(found.target)
        return targets

    def refuse_jump_loop(self, table: Table, jumps: list[tuple[str, str]], sites: list[Rule]) -> None:
        """Refuse, like nft (\"Could not process rule: Too many levels of
        symbolic links\"), a table whose jumps and gotos let a chain reach
        itself; located at the jump closing the loop in file order."""
        loop = find_loop(jumps)
        if loop is None:
            return
        closing = loop[-1]
        rule, target = sites[closing], jumps[closing][1]
        location, source_line = rule.location, None
        if self.jump_locator is not None:
            location, source_line = self.jump_locator(rule, target)
        raise RuleAnalyzerError(
            f"jump loop in table {table.family} {table.name}: {loop_path(jumps, loop)} "
            "(nft refuses chains that reach themselves: 'Too many levels of symbolic links')",
            location, source_line=source_line)

    def build_rule(self, table: Table, pending: PendingRule) -> Rule:
        """One model rule from JSON-shaped statements."""
        ctx = _RuleContext(self, table)
        try:
            for stmt in pending.exprs:
                ctx.statement(stmt)
                if ctx.action is not None:
                    break  # nothing after a verdict runs
            ctx.missed_lookup()
        except (ModelError, ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            # ipaddress and int() say ValueError for a bad address or number
            # (a KeyError's text is the key quoted: unquoted; another's as it is)
            raise RuleAnalyzerError(str(exc).strip("'\"") if isinstance(exc, KeyError) else str(exc),
                                    pending.location,
                                    source_line=pending.text if "\n" not in pending.text else None) from None
        action = ctx.action if ctx.action is not None else Log("no verdict")
        rule = Rule(_without_repeated_deps(ctx.matches), action, pending.location, text=pending.text,
                    comment=pending.comment or ctx.comment, ident=pending.handle,
                    effects=tuple(ctx.effects))
        if ctx.snapshots:
            # read by ruleanalyzer.runtime_sets (notes, --sets unknown)
            self.ruleset.meta.setdefault("snapshot_sets", []).extend(
                (rule, m, name, why) for m, name, why in ctx.snapshots)
        return rule

    def warn(self, message: str, location: Location) -> None:
        self.ruleset.diagnostics.append(Diagnostic(message, location))


#: Statements inside a set update or meter that decide whether it matches.
STATEFUL_KEYS = ("limit", "quota", "ct count", "connlimit")


def _stateful_parts(body) -> list[str]:
    """The stateful statements (limit, quota, ct count) of a set update or
    meter, JSON shape (``stmt``: one statement or a list)."""
    stmts = body.get("stmt") if isinstance(body, dict) else None
    stmts = [stmts] if isinstance(stmts, dict) else stmts if isinstance(stmts, list) else []
    return [key for stmt in stmts if isinstance(stmt, dict) for key in stmt if key in STATEFUL_KEYS]


def _names_a_set(exprs, at_names: bool | None = None) -> bool:
    """Does a rule's JSON-shaped statement list refer to a named set or map
    (``@name``), or add to, update or meter one (what :func:`_updated_sets`
    reads)? Those rules are built when everything is read: the set may be
    declared, filled or updated later. ``at_names``: whether the rule's
    text has an ``@`` in it, when the reader can tell (no define expanded)."""
    if not isinstance(exprs, list):
        return True
    for stmt in exprs:
        if not isinstance(stmt, dict) or "set" in stmt or "map" in stmt or "meter" in stmt:
            return True
    if at_names is not None:
        return at_names
    # a string starting with '@' anywhere (JSON values only: their repr
    # quotes every string, and the walk in Python cost a tenth of reading)
    text = repr(exprs)
    return "'@" in text or '"@' in text


def _updated_sets(exprs) -> list[tuple[str, str]]:
    """``(name, op)`` of the sets a rule's statements add to, update or
    delete from (op ``add``, ``update``, ``delete`` or ``meter``)."""
    out = []
    for stmt in exprs if isinstance(exprs, list) else []:
        if isinstance(stmt, dict) and ("set" in stmt or "map" in stmt or "meter" in stmt):
            for key in ("set", "map", "meter"):
                body = stmt.get(key)
                if isinstance(body, dict) and isinstance(body.get("set", body.get("map")), str):
                    out.append((body.get("set", body.get("map")).lstrip("@"), str(body.get("op", "update"))))
                elif key == "meter" and isinstance(body, dict) and isinstance(body.get("name"), str):
                    out.append((body["name"], "meter"))
    return out


def chain_priority(priority, family: str) -> int:
    """``filter - 10`` / ``-300`` / ``{"prio": …}`` → the integer priority."""
    if isinstance(priority, bool):
        raise ModelError(f"bad chain priority {priority!r}")
    if isinstance(priority, int):
        return priority
    if priority is None:
        return 0
    text = str(priority).replace(" ", "")
    names = BRIDGE_PRIORITY_NAMES if family == "bridge" else PRIORITY_NAMES
    for name in sorted(names, key=len, reverse=True):
        if text.startswith(name):
            rest = text[len(name):]
            if not rest:
                return names[name]
            if rest[0] in "+-" and rest[1:].isdigit():
                return names[name] + int(rest)
    try:
        return int(text, 0)
    except ValueError:
        raise ModelError(f"unknown chain priority {priority!r}") from None


# ---------------------------------------------------------------------------
# One rule
# ---------------------------------------------------------------------------


_OPS = {"==", "!=", "<", ">", "<=", ">=", "in"}


class _RuleContext:
    def __init__(self, builder: Builder, table: Table):
        self.builder = builder
        self.table = table
        self.family = table.family
        self.matches: list[Match] = []
        self.effects: list[Action] = []
        self.action: Action | None = None
        self.comment: str | None = None
        #: (match, "@set", why) for lookups answered from a runtime set's listing
        self.snapshots: list[tuple[Match, str, str]] = []
        #: ``(index in effects, the lookup)`` of the first field set from a
        #: map lookup that may find no element (:meth:`missed_lookup`)
        self.lookup: tuple | None = None

    def _network_family(self) -> str | None:
        """Which network header ``@nh`` is in this rule so far: the table's
        family, or in inet/bridge/netdev the IP version an earlier match
        of the rule requires (``ip6 saddr …`` brings ``nfproto ipv6``)."""
        if self.family in ("ip", "ip6"):
            return self.family
        for m in self.matches:
            if isinstance(m, IntMatch) and m.field == "family" and not m.negate and len(m.ranges) == 1 \
                    and m.ranges[0][0] == m.ranges[0][1] and m.ranges[0][0] in (4, 6):
                return "ip" if m.ranges[0][0] == 4 else "ip6"
        return None

    # -- statements ---------------------------------------------------------------
    def statement(self, stmt) -> None:
        if not isinstance(stmt, dict) or len(stmt) != 1:
            raise ModelError(f"a statement must be an object with one key, not {_describe(stmt)}")
        key, body = next(iter(stmt.items()))
        if key == "match":
            if not isinstance(body, dict) or "left" not in body or "right" not in body:
                raise ModelError("a match needs left and right")
            self.matches.extend(self.match(body["left"], body.get("op", "=="), body["right"]))
            return
        verdict = verdict_action(stmt)
        if verdict is not None:
            if key == "reject":
                self.matches[:0] = reject_dependencies(body, self.family)
            self.action = verdict
            return
        if key == "vmap":
            self.action = self.vmap(body)
            return
        if key in ("counter", "log"):
            self.effects.append(Log(key))
            return
        if key in ("limit", "quota"):
            self.matches.append(OpaqueMatch(reason="depends on the packet rate (limit)" if key == "limit"
                                            else "depends on the bytes counted so far (quota)", text=key))
            return
        if key == "ct count":
            self.matches.append(OpaqueMatch(reason="depends on the number of tracked connections (ct count)",
                                            text=key))
            return
        if key in ("set", "map", "meter"):
            stateful = _stateful_parts(body)
            if stateful:
                # "update @m { ip saddr limit rate over 3/minute }" matches only
                # when that element's own limit says so: traffic history
                name = (body.get("set") or body.get("map") or body.get("name") or "?") \
                    if isinstance(body, dict) else "?"
                name = name if str(name).startswith("@") else f"@{name}"
                verb = "meter" if key == "meter" else f"{body.get('op', 'update')} {name}"
                self.matches.append(OpaqueMatch(
                    reason=f"depends on traffic history: the per-element {' and '.join(stateful)} "
                           f"of {verb} (what each key sent before)"))
        if key == "notrack":
            self.effects.append(Notrack())
            return
        if key in ("snat", "dnat", "masquerade", "redirect"):
            self.action = self.nat(key, body)
            return
        if key == "mangle":
            effect = self.mangle(body)
            if isinstance(effect, UnknownAction) and self.lookup is None:
                lookups = [m for m in _lookups(body.get("value"))
                           if not self._every_key_found(m.get("key"), m.get("data"))]
                if lookups:
                    self.lookup = (len(self.effects), lookups[0])
            self.effects.append(effect)
            return
        if key == "xt":
            xtype = body.get("type") if isinstance(body, dict) else None
            name = body.get("name") if isinstance(body, dict) else None
            if xtype == "target":
                self.action = UnknownAction(f"xt target {name}")
            else:
                self.matches.append(OpaqueMatch(reason=f"depends on an iptables-nft compat expression (xt {name or ''})".replace(" )", ")"),
                                                text="xt"))
            return
        if key in ("fwd", "dup") and key == "fwd":
            self.action = UnknownAction("fwd")
            return
        if key == "comment":
            self.comment = str(body)
            return
        # set/map updates, ct helper set, flow add, synproxy, tproxy, dup, secmark …
        self.effects.append(Log("set update" if key in ("set", "map") else key))

    def missed_lookup(self) -> None:
        """A field set from a map lookup (``meta mark set ip daddr map @m``)
        where the key may find no element: the kernel then ends the rule
        there (NFT_BREAK), the field unchanged and nothing after it run.
        Where nothing that matters comes after (counters only), that is
        one of the values the field may take (an ``UnknownAction``, any
        value): nothing to add. Else the rule holds only if the key is
        found: a match of the map's keys where its elements are known, an
        opaque one (as for NAT from a map) where not — tested before the
        effects: sound where none of them comes before the lookup; where
        one does, what the rule does is not modelled."""
        if self.lookup is None:
            return
        at, lookup = self.lookup
        if self.action is None and all(isinstance(e, Log) for e in self.effects[at + 1:]):
            return
        if any(not isinstance(e, Log) for e in self.effects[:at]):
            field = self.effects[at].field
            self.effects[at] = UnknownAction(f"{field} set from a map lookup that may end the rule")
            return
        found = self._key_found(lookup)
        self.matches.extend(found if found is not None else [OpaqueMatch(
            reason=f"depends on a key being in the map ({_short_map(lookup.get('data'))})")])

    def _key_found(self, lookup) -> list | None:
        """Matches that hold where ``lookup``'s key finds an element of its
        map — the branches' matches of the map read as :meth:`map_dispatch`
        reads one (the key's dependencies go to the rule) — or None where
        the elements are not known."""
        try:
            dispatch = self.map_dispatch(lookup, lambda _value: Log("map element"), "a map lookup")
        except ModelError:
            return None
        alternatives = [m for m, _a in dispatch.branches]
        if not alternatives or any(isinstance(m, OpaqueMatch) for m in alternatives):
            return None
        return [alternatives[0] if len(alternatives) == 1 else AnyOf(tuple(alternatives))]

    def vmap(self, body) -> Action:
        """``KEY vmap { k : verdict, … }``: a :class:`Dispatch` of the
        elements' verdicts."""
        return self.map_dispatch(body, _element_verdict, "a verdict map")

    def nat(self, kind: str, body) -> Action:
        """A NAT statement. Its address or port may come from a map lookup
        (``dnat to numgen inc mod 2 map { 0 : A, 1 : B }``, ``snat to ip
        saddr map { … }``, ``dnat ip to ip daddr . tcp dport map { … : A .
        P }``): a :class:`Dispatch` with one :class:`Nat` per element, as a
        verdict map's branches. A key found in no element ends the rule
        there (the kernel's NFT_BREAK: no translation, the next rule runs),
        which is the Dispatch's "no branch holds"; keys that cover every
        value the key can take (numgen/jhash ``mod N``) leave no miss."""
        lookups = _lookups(body)
        if not lookups:
            return nat_action(kind, body)
        parts = [p for p in ("addr", "port") if isinstance(body, dict) and isinstance(body.get(p), dict)
                 and isinstance(body[p].get("map"), dict)]
        if len(lookups) != 1 or len(parts) != 1:
            text = f"{kind} to values of {len(lookups)} map lookups"
            return Dispatch(((OpaqueMatch(reason=f"depends on {text} (not modelled)"), UnknownAction(text)),))
        part = parts[0]

        def element(value) -> Action:
            written = dict(zip(("addr", "port"), value["concat"])) \
                if part == "addr" and isinstance(value, dict) and isinstance(value.get("concat"), list) \
                and len(value["concat"]) == 2 else {part: value}
            action = nat_action(kind, {**body, **written})
            if isinstance(action, Nat) and (("addr" in written and action.to_addr is None)
                                            or ("port" in written and action.to_port is None)):
                raise ModelError(f"cannot read {_describe(value)} as what {kind} translates to")
            return action

        return self.map_dispatch(body[part]["map"], element, f"the map of {kind}")

    def map_dispatch(self, body, element, what: str) -> Action:
        """A map lookup that gives a rule's action: a :class:`Dispatch`
        whose branch ``i`` tests the key against element ``i``'s key and
        takes ``element(value)`` (which raises ModelError for a value that
        is no such action)."""
        if not isinstance(body, dict) or "key" not in body or "data" not in body:
            raise ModelError(f"{what} needs key and data")
        pairs = self.map_pairs(body["data"])
        if pairs is None:
            name = body["data"]
            return _opaque_dispatch(f"depends on the runtime contents of map {name}")
        key = body["key"]
        memo = _vmap_memo_key(key, pairs, self.family, self.table.name)
        if memo is not None:
            hit = self.builder.vmap_cache.get(memo)
            if hit is not None:  # the same key and element keys: only the actions differ
                actions = [element(value) for _key_value, value in pairs]
                deps, matches = hit
                self.matches.extend(deps)
                return Dispatch(tuple(zip(matches, actions)))
        # nft's dependencies (l4proto tcp for "tcp dport vmap") run before the
        # lookup: they belong to the rule, the branches only test the key.
        parts = key["concat"] if isinstance(key, dict) and isinstance(key.get("concat"), list) else [key]
        deps: list[Match] = []
        for part in parts:
            if isinstance(part, dict) and isinstance(part.get("&"), list) and part["&"]:
                part = part["&"][0]
            deps.extend(d for d in selector(part, self.family).deps if d not in deps)
        self.matches.extend(deps)
        # a concatenated key (kube-proxy's ip daddr . meta l4proto . th dport
        # @service-ips, 30k elements at 100k rules): what concat_match works
        # out from the key alone, worked out once for all the elements
        plan = self._concat_key(key["concat"]) if isinstance(key, dict) and ">>" not in key \
            and "&" not in key and isinstance(key.get("concat"), list) else None
        branches = []
        for key_value, value in pairs:
            action = element(value)
            if key_value == "*":
                match = AllOf((), text="*")
            else:
                found = None
                if plan is not None and plan[3] is None and isinstance(key_value, dict) \
                        and "set" not in key_value:
                    sels, concat_deps, constants, _opaque = plan
                    try:  # what concat_match gives for one element
                        found = concat_deps + [self._concat_alternatives(sels, "==", [key_value], constants)]
                    except ModelError:
                        found = None  # concat_match says what
                if found is None:
                    found = self.match(body["key"], "==", key_value)
                found = [m for m in found if m not in deps]
                match = found[0] if len(found) == 1 else AllOf(tuple(found))
            branches.append((match, action))
        if (branches and not any(k == "*" for k, _v in pairs)
                and self._every_key_found(body["key"], body["data"], pairs)):
            # numgen/jhash/symhash "mod N [offset O]" with keys covering
            # [O, O+N): one branch is always taken. The keys are disjoint, so
            # a packet no earlier branch took has the last one's value.
            last, action = branches[-1]
            branches[-1] = (AllOf((), text=getattr(last, "text", "") or ""), action)
        if memo is not None:
            cache = self.builder.vmap_cache
            if len(cache) >= MATCH_CACHE_SIZE:
                cache.clear()
            cache[memo] = (tuple(deps), tuple(match for match, _action in branches))
        return Dispatch(tuple(branches))

    def _every_key_found(self, key, data, pairs=None) -> bool:
        """Does every value ``key`` can take find an element in the map
        (anonymous, or named and decidable)? Yes when it holds a ``*``
        element, or when the key is ``numgen``/``jhash``/``symhash … mod N
        [offset O]`` — always in ``[O, O+N)`` in the kernel (``nft_ng_*_gen``,
        ``nft_*hash_eval``: a counter or hash reduced modulo N, plus the
        offset) — and the keys cover that whole range."""
        if pairs is None:  # else: map_pairs(data), read already
            try:
                pairs = self.map_pairs(data)
            except ModelError:
                return False
        if not pairs:
            return False
        if any(k == "*" for k, _value in pairs):
            return True
        span = generated_range(key)
        if span is None:
            return False
        covered = []
        for k, _value in pairs:
            interval = _int_interval(k)
            if interval is None:
                return False
            covered.append(interval)
        lo, hi = span
        for a, b in sorted(covered):
            if a > lo:
                break
            lo = max(lo, b + 1)
        return lo > hi

    def map_pairs(self, data):
        """``[(key, value), …]`` of an anonymous map or a decidable named map."""
        if isinstance(data, dict) and "set" in data:
            items = data["set"]
        elif isinstance(data, str) and data.startswith("@"):
            decl = self.builder.sets.get((self.family, self.table.name, data[1:]))
            if decl is None:
                raise ModelError(f"no map named {data[1:]!r} in table {self.family} {self.table.name}")
            if not decl.decidable:
                return None
            items = decl.elements
        else:
            raise ModelError(f"cannot read {_describe(data)} as map data")
        pairs = []
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, list) or len(item) != 2:
                raise ModelError(f"a map element needs key : value, not {_describe(item)}")
            pairs.append((unwrap_elem(item[0]), item[1]))
        return pairs

    def mangle(self, body) -> Action:
        if not isinstance(body, dict):
            raise ModelError("mangle needs key and value")
        key, value = body.get("key"), body.get("value")
        target = None
        if key == {"meta": {"key": "mark"}}:
            target = "mark"
        elif key == {"ct": {"key": "mark"}}:
            target = "ctmark"
        elif key in _TTL_KEYS and isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0xFF:
            # ``ip ttl set 65``: in an inet (bridge, netdev) table nft puts the
            # nfproto dependency before it, as for a match on the field
            version = _TTL_KEYS.index(key) * 2 + 4
            known = self._network_family()
            if known in (None, "ip" if version == 4 else "ip6"):
                if known is None:
                    self.matches.append(_family_dep(version))
                return SetField("ttl", value=value, mask=0xFF)
        if target is None:
            if key == {"meta": {"key": "secmark"}}:
                return Log("secmark")
            return Log(f"{_describe(key)} set")
        const = _constant32(value)
        if const is not None:  # "meta mark set 0x1", "… 0x1 | 0x2" (folded as nft does)
            return SetField(target, value=const)
        if value == {"meta": {"key": "mark"}}:
            return SetField(target, copy_from="mark")
        if value == {"ct": {"key": "mark"}}:
            return SetField(target, copy_from="ctmark")
        xmark = _xmark_of(key, value)
        if xmark is not None:
            # ``meta mark set meta mark | 0x4000`` (kube-proxy's
            # mark-for-masquerade), ``& C``, ``^ C`` and their chains
            return SetField(target, value=xmark[0], mask=xmark[1])
        return UnknownAction(f"{target} set to a computed value", field=target)

    # -- matches --------------------------------------------------------------------
    def match(self, left, op: str, right) -> list[Match]:
        if op not in _OPS:
            raise ModelError(f"unknown operator {op!r}")
        if isinstance(left, dict) and (">>" in left or "&" in left):  # what _raw_dscp reads
            left, right = _raw_dscp(left, right, self._network_family())
        left, right = _xor_moved(left, op, right)
        mask = None
        if isinstance(left, dict) and len(left) == 1 and next(iter(left)) in ("payload", "meta", "ct"):
            pass  # the common shapes: a plain selector
        elif isinstance(left, dict) and "concat" in left:
            # Concatenations: one AllOf per element.
            return self.concat_match(left["concat"], op, right)
        elif isinstance(left, dict) and "&" in left and isinstance(left["&"], list) and len(left["&"]) == 2:
            inner, mask_value = left["&"]
            sel = selector(inner, self.family)
            if sel.kind in ("int", "flags"):
                mask = _int_value(mask_value, Selector("int", sel.field, symbols=sel.symbols))
                left = inner
                if inner == {"payload": {"protocol": "ip6", "field": "dscp"}} and op in ("==", "!="):
                    return _ip6_dscp_masked(self._match(sel, op, right, mask))
            elif sel.kind == "name" and sel.bitmask and op in ("==", "!=") and not isinstance(right, dict):
                return list(sel.deps) + [_masked_names(sel, mask_value, right, op)]
            else:
                return list(sel.deps) + [
                    OpaqueMatch(reason=f"depends on arithmetic on {_first_selector(inner)}")]
        elif isinstance(left, dict) and len(left) == 1 and next(iter(left)) in ("|", "^", "<<", ">>"):
            return [OpaqueMatch(reason=f"depends on arithmetic on {_first_selector(left)}")]
        return self.selected_match(selector(left, self.family), op, right, mask)

    def selected_match(self, sel: Selector, op: str, right, mask) -> list[Match]:
        """:meth:`match` once the selector of its left-hand side is known
        (and the left-hand side is no concatenation, arithmetic or raw DSCP)."""
        if sel.kind == "opaque":
            if "tcp option" in sel.reason and (right is False or sel.reason.endswith(" missing")):
                # "tcp option … missing": newer nft adds no tcp dependency
                # and the kernel reads "missing" on a UDP packet as true
                return [OpaqueMatch(reason=sel.reason)]
            if _IPV6_EXTHDR.match(sel.reason) or sel.reason.startswith("depends on ip option "):
                # decided for a packet without extension headers / IP options
                return list(sel.deps) + [_without_ext_headers(
                    AllOf(()) if (right is False or sel.reason.endswith(" missing")) else AnyOf(()),
                    OpaqueMatch(reason=sel.reason),
                    "ip_options" if sel.reason.startswith("depends on ip option ") else "ext_headers")]
            return list(sel.deps) + [OpaqueMatch(reason=sel.reason)]
        rtype = type(right)
        if rtype is str or rtype is int:
            # the same comparison builds the same matches: build it once
            key = (id(sel), op, rtype, right, mask, self.family, self.table.name)
            cache = self.builder.match_cache
            hit = cache.get(key)
            if hit is not None and hit[0] is sel:
                found = list(hit[1])
            else:
                found = self._match(sel, op, right, mask)
                if len(cache) >= MATCH_CACHE_SIZE:
                    cache.clear()  # most values of a big ruleset come once (addresses): keep it small
                cache[key] = (sel, tuple(found))
            self.note_snapshot(right, found)
            return found
        return self._match(sel, op, right, mask)

    def _match(self, sel: Selector, op: str, right, mask) -> list[Match]:
        if isinstance(right, str) and right.startswith("@"):
            resolved = self.named_set(right)
            if resolved is None:
                return list(sel.deps) + [OpaqueMatch(reason=self.set_reason(right))]
            right = {"set": resolved}
        negate = op == "!="
        if sel.field == "proto" and sel.version == 6:
            # ip6 nexthdr is the transport protocol only without extension headers
            m = self.simple_match(sel, op, right, mask, negate)
            otherwise = OpaqueMatch(reason="depends on which extension header comes first (ip6 nexthdr)")
            if isinstance(m, IntMatch) and not any(lo <= t <= hi for lo, hi in m.ranges for t in EXT_HEADER_TYPES):
                # With extension headers the first next header is one of
                # them: "nexthdr icmpv6" fails (and "!= tcp" holds) whichever.
                otherwise = AllOf(()) if m.negate else AnyOf(())
            return list(sel.deps) + [_without_ext_headers(m, otherwise)]
        try:
            return list(sel.deps) + [self.simple_match(sel, op, right, mask, negate)]
        except ModelError:
            if sel.field in ("uid", "gid"):  # user and group names: the host's database
                return [OpaqueMatch(reason=f"depends on the host's user database ({_describe(right)})")]
            raise

    def named_set(self, ref: str):
        """The elements a lookup in set ``ref`` is answered from, or None
        (then :meth:`set_reason` says why not)."""
        decl = self.builder.sets.get((self.family, self.table.name, ref[1:]))
        if decl is None:
            raise ModelError(f"no set named {ref[1:]!r} in table {self.family} {self.table.name}")
        if decl.reading()[0] not in ("exact", "snapshot"):
            return None
        return [e[0] if isinstance(e, list) and len(e) == 2 else e for e in decl.elements]

    def set_reason(self, ref: str) -> str:
        decl = self.builder.sets.get((self.family, self.table.name, ref[1:]))
        return decl.reading()[1] if decl is not None else f"depends on the runtime contents of set {ref}"

    def note_snapshot(self, ref, found: list[Match]) -> None:
        """Remember a lookup answered from a runtime set's listing."""
        if not (isinstance(ref, str) and ref.startswith("@") and found):
            return
        decl = self.builder.sets.get((self.family, self.table.name, ref[1:]))
        if decl is not None:
            kind, why = decl.reading()
            if kind == "snapshot":
                self.snapshots.append((found[-1], ref, why))

    def simple_match(self, sel: Selector, op: str, right, mask, negate: bool) -> Match:
        if sel.kind == "flags" or (mask is not None and sel.kind == "int"):
            return self.bits_match(sel, op, right, mask, negate)
        if op in ("<", ">", "<=", ">="):
            return self.order_match(sel, op, right)
        if sel.kind == "addr":
            return AddressMatch(sel.field, tuple(_networks(right, sel)), negate=negate)
        if sel.kind == "int":
            if sel.field == "family" and isinstance(right, str) and right not in dict(sel.symbols) \
                    and not right.isdigit():
                # meta protocol arp / vlan: never an IP packet
                return IntMatch("family", ((0, 0),), negate=negate)
            return IntMatch(sel.field, tuple(_int_ranges(right, sel)), negate=negate)
        if sel.kind == "iface":
            return InterfaceMatch(sel.field, tuple(str(n) for n in _names(right, sel)), negate=negate)
        if sel.kind == "name":
            names = _names(right, sel)
            if sel.field == "pkttype":
                # nft's "host" is PACKET_HOST, what the model (and iptables) call unicast.
                names = ["unicast" if n == "host" else n for n in names]
            return NameMatch(sel.field, frozenset(n.replace("-", "_") if sel.field == "ct_status" else n
                                                  for n in names), negate=negate)
        raise ModelError(f"cannot match {sel.field}")

    def bits_match(self, sel: Selector, op: str, right, mask, negate: bool) -> Match:
        width = FIELD_MAX.get(sel.field, 0xFFFFFFFF)
        int_sel = Selector("int", sel.field, symbols=sel.symbols)
        if op in ("<", ">", "<=", ">="):
            # (field & mask) < value: the masked values that compare so
            limit = _int_value(right, int_sel)
            mask = width if mask is None else mask
            if mask > 0xFFFF:
                return OpaqueMatch(reason=f"depends on an ordered comparison of masked {sel.field}")
            compare = {"<": int.__lt__, "<=": int.__le__, ">": int.__gt__, ">=": int.__ge__}[op]
            return BitsMatch(sel.field, mask, frozenset(v for v in range(mask + 1)
                                                        if v & mask == v and compare(v, limit)))
        if op == "in" and mask is None:
            # flags & value != 0 (a bare flag list; the kernel's "implicit" op)
            bits = _int_value(right, int_sel)
            return BitsMatch(sel.field, bits, frozenset({0}), negate=True)
        if mask is None:
            mask = width
        values = frozenset(lo & mask for lo, hi in _int_ranges(right, int_sel)
                           for lo in ([lo] if lo == hi else range(lo, hi + 1)))
        if sel.field in ("mark", "ctmark") and mask == width:
            return IntMatch(sel.field, tuple(_int_ranges(right, int_sel)), negate=negate)
        return BitsMatch(sel.field, mask, values, negate=negate)

    def order_match(self, sel: Selector, op: str, right) -> Match:
        if sel.kind == "addr":
            if not isinstance(right, str):
                raise ModelError("an address comparison needs one address")
            addr = ipaddress.ip_address(right)
            lo, hi = (ipaddress.ip_address(0), ipaddress.ip_address(2 ** 32 - 1)) if addr.version == 4 else \
                (ipaddress.IPv6Address(0), ipaddress.IPv6Address(2 ** 128 - 1))
            first, last = {"<": (lo, addr - 1 if addr > lo else None), "<=": (lo, addr),
                           ">": (addr + 1 if addr < hi else None, hi), ">=": (addr, hi)}[op]
            if first is None or last is None:
                return AddressMatch(sel.field, ())
            return AddressMatch(sel.field, tuple(ipaddress.summarize_address_range(first, last)))
        if sel.kind != "int":
            raise ModelError(f"cannot order-compare {sel.field}")
        value = _int_value(right, sel)
        top = FIELD_MAX.get(sel.field, 0xFFFFFFFF)
        lo, hi = {"<": (0, value - 1), "<=": (0, value), ">": (value + 1, top), ">=": (value, top)}[op]
        return IntMatch(sel.field, ((lo, hi),) if lo <= hi else ())

    def _concat_key(self, parts):
        """``(selectors, dependencies, constants, opaque)`` of a concatenated
        key: what :meth:`concat_match` works out before the value; ``opaque``:
        why the key cannot be decided (a part that is not a constant), or None."""
        sels = [selector(p, self.family) for p in parts]
        deps: list[Match] = []
        for s in sels:
            for d in s.deps:
                if d not in deps:
                    deps.append(d)
        # A constant in the key (``ip daddr . "lo" @s``) is compared with
        # each element's part as it stands.
        constant = [_constant(p) if s.kind == "opaque" else None for s, p in zip(sels, parts)]
        opaque = next((s.reason for s, c in zip(sels, constant) if s.kind == "opaque" and c is None), None)
        return sels, deps, constant, opaque

    def concat_match(self, parts, op: str, right) -> list[Match]:
        if not isinstance(parts, list):
            raise ModelError("a concatenation needs a list")
        sels, deps, constant, opaque = self._concat_key(parts)
        if isinstance(right, str) and right.startswith("@"):
            elements = self.named_set(right)
            if elements is None:
                return deps + [OpaqueMatch(reason=self.set_reason(right))]
        elif isinstance(right, dict) and "set" in right:
            elements = list(_set_items(right["set"]))
        else:
            elements = [right]
        if opaque is not None:
            return deps + [OpaqueMatch(reason=opaque)]
        try:
            found = deps + [self._concat_alternatives(sels, op, elements, constant)]
            self.note_snapshot(right, found)
            return found
        except ModelError:
            if any(s.field in ("uid", "gid") for s in sels):
                return deps + [OpaqueMatch(reason="depends on the host's user database")]
            raise

    def _concat_alternatives(self, sels, op, elements, constants=None) -> Match:
        constants = constants or [None] * len(sels)
        memo = self.builder.element_match_cache
        alternatives = []
        for elem in elements:
            elem = unwrap_elem(elem)
            if not (isinstance(elem, dict) and isinstance(elem.get("concat"), list)
                    and len(elem["concat"]) == len(sels)):
                raise ModelError(f"set element {_describe(elem)} does not fit the concatenation")
            values = [unwrap_elem(v) for v in elem["concat"]]
            if any(c is not None and str(c) != str(v) for c, v in zip(constants, values)):
                continue  # the key's constant part never equals this element's
            parts = []
            for s, v, c in zip(sels, values, constants):
                if c is not None:
                    continue
                if s.kind == "addr" or (type(v) is not str and type(v) is not int):
                    parts.append(self.simple_match(s, "==", v, None, False))
                    continue
                # a protocol or port repeats across a map's elements (kube-proxy's
                # @service-ips: 19k elements at 100k rules, a few protocols and ports)
                hit = memo.get((id(s), type(v), v))
                if hit is None or hit[0] is not s:
                    if len(memo) >= MATCH_CACHE_SIZE:
                        memo.clear()
                    hit = memo[id(s), type(v), v] = (s, self.simple_match(s, "==", v, None, False))
                parts.append(hit[1])
            alternatives.append(AllOf(tuple(parts)))
        result = alternatives[0] if len(alternatives) == 1 else AnyOf(tuple(alternatives))
        return result.negated() if op == "!=" else result


def _constant(part) -> str | None:
    """A literal in a concatenated key (``"lo"``, ``22``), as text; None
    for anything else."""
    if isinstance(part, dict) and set(part) == {"unknown"} and isinstance(part["unknown"], str):
        text = part["unknown"]  # the text reader's form of a quoted literal
        return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else None
    if isinstance(part, (str, int)) and not isinstance(part, bool):
        return str(part)
    return None


#: Reasons of IPv6 extension-header expressions (``exthdr frag exists``,
#: ``frag frag-off``, ``hbh``, ``rt``, ``dst``, ``mh``, ``srh``).
_IPV6_EXTHDR = re.compile(r"depends on (exthdr|frag|hbh|rt|dst|mh|srh) ")


#: IPv6 next-header values that are extension headers (RFC 8200, 4303,
#: 4302, 6275, 5533, 7401, experiments): the only ones the first next
#: header of a packet with extension headers can take.
EXT_HEADER_TYPES = (0, 43, 44, 50, 51, 60, 135, 139, 140, 253, 254)


def _without_ext_headers(plain: Match, otherwise: Match, field: str = "ext_headers") -> Match:
    """``plain`` for a packet without IPv6 extension headers (``field``
    ext_headers) or IPv4 options (ip_options) — a test of one is then
    decided: ``missing`` holds, the rest fail — else ``otherwise``."""
    what = "extension headers" if field == "ext_headers" else "IP options"
    return AnyOf((AllOf((IntMatch(field, ((0, 0),)), plain)),
                  AllOf((IntMatch(field, ((1, 1),)), otherwise))),
                 text=f"{getattr(otherwise, 'reason', '')} (a packet with {what})")


_TOS_BYTE = {"payload": {"base": "nh", "offset": 8, "len": 8}}
_TC_WORD = {"payload": {"base": "nh", "offset": 0, "len": 16}}
#: ``ip dscp`` / ``ip6 dscp`` as nft lists them back once a mask is applied:
#: the TOS byte's upper six bits, the traffic class's (in the first 16-bit word).
_RAW_DSCP = {"ip": ({"&": [_TOS_BYTE, 0xfc]}, 2), "ip6": ({"&": [_TC_WORD, 0xfc0]}, 6)}


def _xor_moved(left, op: str, right):
    """``x ^ C == V`` compares ``x`` with ``V ^ C`` (nft loads ``meta mark &
    0xff00 ^ 0x100 == 0x200`` as ``meta mark & 0xff00 == 0x300``); other
    comparisons as they are."""
    while op in ("==", "!=") and isinstance(left, dict) and len(left) == 1 and "^" in left:
        args = left["^"]
        const = _constant32(args[1]) if isinstance(args, list) and len(args) == 2 else None
        value = _constant32(right)
        if const is None or value is None:
            break
        left, right = args[0], value ^ const
    return left, right


def _raw_dscp(left, right, family: str | None):
    """``(@nh,8,8 & 0xfc) >> 2 & 0x38 != 0x0`` is how ``nft list ruleset``
    prints ``ip dscp & 0x38 != 0`` (``(@nh,0,16 & 0xfc0) >> 6 & 0x38 !=
    0x800/8`` for ``ip6 dscp & 0x38 != 0x8``): read back as written, when
    the rule says which network header ``@nh`` is. Either way round the
    parser groups the shift (``(x >> 2) & m`` or ``x >> (2 & m)``)."""
    if family not in _RAW_DSCP or not isinstance(left, dict):
        return left, right
    masked, shift = _RAW_DSCP[family]
    dscp = {"payload": {"protocol": family, "field": "dscp"}}
    mask = None
    if _same_expr(left, {">>": [masked, shift]}):
        return dscp, _listed_value(right, family)
    inner = left.get("&")
    if isinstance(inner, list) and len(inner) == 2 and _same_expr(inner[0], {">>": [masked, shift]}):
        mask = inner[1]
    shifted = left.get(">>")
    if isinstance(shifted, list) and len(shifted) == 2 and _same_expr(shifted[0], masked):
        tail = shifted[1].get("&") if isinstance(shifted[1], dict) else None
        if isinstance(tail, list) and len(tail) == 2 and _same_expr(tail[0], shift):
            mask = tail[1]
    if mask is None:
        return left, right
    return {"&": [dscp, mask]}, _listed_value(right, family)


def _listed_value(right, family: str):
    """The ip6 form's value as nft lists it: ``0x800/8`` is 8 (the 16-bit
    word's upper byte, shown as a prefix)."""
    if family == "ip6" and (isinstance(right, dict) and "/" in right or isinstance(right, str) and "/" in right):
        value, bits = right["/"] if isinstance(right, dict) else right.split("/", 1)
        try:
            value, bits = int(str(value), 0), int(str(bits), 0)
        except ValueError:
            return right
        if 0 < bits <= 16:
            return value >> (16 - bits)
    return right


def _same_expr(a, b) -> bool:
    """Structural equality with numbers compared by value (``0xfc`` == 252)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_expr(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_expr(x, y) for x, y in zip(a, b))
    if isinstance(b, int) and not isinstance(b, bool):
        try:
            return (a if isinstance(a, int) else int(str(a), 0)) == b
        except ValueError:
            return False
    return a == b


def _ip6_dscp_masked(found: list[Match]) -> list[Match]:
    """What the kernel runs for ``ip6 dscp & m == v`` (nft 1.0.x, read with
    ``--debug=netlink`` and confirmed by packets on x86): the 16-bit load is
    masked, then shifted right as a host-order (little-endian) word, which
    moves the DSCP bits out of the byte ``m`` then keeps — the masked value
    is always 0. So ``== 0`` always holds, ``== v`` (v ≠ 0) never, and
    ``!=`` the other way round (nft lists ``== 0x8`` back as ``0x800/8``)."""
    out = []
    for m in found:
        if isinstance(m, BitsMatch) and m.field == "dscp":
            m = BitsMatch("dscp", 0, frozenset({0}) if 0 in m.values else frozenset(),
                          negate=m.negate, text=m.text)
        out.append(m)
    return out


def _first_selector(expr) -> str:
    """The first header field an arithmetic expression reads, described."""
    if isinstance(expr, dict):
        if len(expr) == 1 and next(iter(expr)) in ("payload", "meta", "ct", "rt", "socket", "fib"):
            return _describe(expr)
        for value in expr.values():
            found = _first_selector(value)
            if found:
                return found
    if isinstance(expr, list):
        for value in expr:
            found = _first_selector(value)
            if found:
                return found
    return ""


def _element_verdict(value) -> Action:
    """The action of a verdict map element's value (``goto X``, ``drop``)."""
    action = verdict_action(value) if isinstance(value, dict) else None
    if action is None:
        raise ModelError(f"a verdict map element needs a verdict, not {_describe(value)}")
    return action


def _opaque_dispatch(reason: str) -> Action:
    return Dispatch(((OpaqueMatch(reason=reason), UnknownAction(reason)),))


def reject_dependencies(body, family: str) -> list[Match]:
    """The matches nft puts at the head of a rule for its ``reject``
    (evaluate.c ``stmt_reject_gen_dependency``: "Otherwise we'd log things
    that won't be rejected"): ``with tcp reset`` only rejects TCP, in every
    family but netdev; ``with icmp``/``icmpv6`` in an inet or bridge table
    only its own IP version. A bare ``reject`` and ``icmpx`` have none: the
    kernel answers each family in kind. Checked on a kernel: a UDP packet
    passes a bare ``reject with tcp reset`` and meets the next rule."""
    if not isinstance(body, dict) or family in ("netdev", "arp"):
        return []
    rtype = body.get("type")
    if rtype in ("tcp reset", "tcp-reset", "tcp rst"):
        return [_proto_dep(6)]
    if rtype in ("icmp", "icmpv6") and family in ("inet", "bridge"):
        return [_family_dep(4 if rtype == "icmp" else 6)]
    return []


def _share_target_names(chains: dict, action) -> None:
    """Name the chain a jump or goto of ``action`` (or of its verdict
    map's branches) goes to by the chain's own name string: each was read
    as a string of its own, equal to it (kube-proxy's service map and
    numgen maps name 70k chains at 100k rules, ~7 MiB of copies kept
    through the audit). The same value, so the same action (hash, ==)."""
    if type(action) is Dispatch:
        for _match, branch in action.branches:
            _share_target_names(chains, branch)
    elif type(action) is Jump or type(action) is Goto:
        chain = chains.get(action.target)
        if chain is not None and chain.name is not action.target:
            object.__setattr__(action, "target", chain.name)  # (frozen: an equal string)


def verdict_action(stmt) -> Action | None:
    """The model action of a verdict statement, or None if it is none."""
    if not isinstance(stmt, dict) or len(stmt) != 1:
        return None
    key, body = next(iter(stmt.items()))
    if key == "accept":
        return Accept()
    if key == "drop":
        return Drop()
    if key == "return":
        return Return()
    if key == "continue":
        return Log("continue")
    if key in ("jump", "goto"):
        target = body.get("target") if isinstance(body, dict) else None
        if not isinstance(target, str):
            raise ModelError(f"{key} needs a target chain")
        return Jump(target) if key == "jump" else Goto(target)
    if key == "reject":
        if isinstance(body, dict) and body:
            rtype, expr = body.get("type"), body.get("expr")
            if rtype == "tcp reset":
                return Reject("tcp reset")
            if expr in (None, "port-unreachable"):
                return Reject()  # what a bare "reject" sends, listed explicitly in JSON
            return Reject(f"{rtype or 'icmp'} {expr or 'port-unreachable'}")
        return Reject()
    if key == "queue":
        return Queue("queue")
    return None


def _lookups(value) -> list:
    """The map lookups (``{"key": …, "data": …}``) in an expression."""
    if isinstance(value, dict):
        if isinstance(value.get("map"), dict):
            return [value["map"]]
        return [m for v in value.values() for m in _lookups(v)]
    if isinstance(value, list):
        return [m for v in value for m in _lookups(v)]
    return []


def _short_map(data) -> str:
    """``@x`` for a named map, ``{…}`` for an anonymous one."""
    return data if isinstance(data, str) else "{…}"


def nat_action(kind: str, body) -> Action:
    """``dnat to 10.0.0.1:80`` (JSON shape) → :class:`Nat`."""
    addr = port = addr_last = port_last = None
    if isinstance(body, dict):
        a = body.get("addr")
        if isinstance(a, str):
            try:
                # a dotted quad: the address of its /32, which the reader
                # most likely made already (kube-proxy matches each
                # endpoint's address as the source just before its DNAT):
                # one address object kept, not two (35k at 100k rules)
                addr = _network(a, 4).network_address if _QUAD(a) is not None else ip_address(a)
            except ValueError:
                addr = None
        elif isinstance(a, dict) and "range" in a and len(a["range"]) == 2:
            try:
                addr, addr_last = (ipaddress.ip_address(x) for x in a["range"])
            except (ValueError, TypeError):
                addr = addr_last = None
        elif isinstance(a, dict) and "prefix" in a:
            try:
                net = ipaddress.ip_network(f"{a['prefix']['addr']}/{a['prefix']['len']}", strict=False)
                addr, addr_last = net[0], net[-1]
            except (ValueError, TypeError, KeyError):
                pass
        p = body.get("port")
        if isinstance(p, int) and not isinstance(p, bool):
            port = p
        elif isinstance(p, dict) and "range" in p and len(p["range"]) == 2 and \
                all(isinstance(x, int) for x in p["range"]):
            port, port_last = p["range"]
        backwards = (addr_last is not None and addr is not None and addr.version == addr_last.version
                     and addr_last < addr, port_last is not None and port is not None and port_last < port)
        if any(backwards):
            low, high = (addr, addr_last) if backwards[0] else (port, port_last)
            raise ModelError(f"the range {low}-{high} runs backwards (nft: Range has zero or negative size)")
        flags = set()
        for key in ("flags", "type_flags"):
            given = body.get(key, ())
            flags |= {given} if isinstance(given, str) else set(given) if isinstance(given, list) else set()
        return Nat(kind, addr, addr_last, port, port_last, "persistent" in flags,
                   bool(flags & {"random", "fully-random"}), bool(flags & {"netmap", "prefix"}))
    return Nat(kind, addr, addr_last, port, port_last)
