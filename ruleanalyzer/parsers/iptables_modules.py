"""The match modules iptables knows, as option tables.

Like iptables' own getopt tables, each module lists its options; each option
says how many arguments it takes and which function turns them into a model
match. Modules whose outcome cannot be read off a packet (rates, ipsets,
randomness, payload bytes) are listed with their option names only and
become one :class:`~ruleanalyzer.model.OpaqueMatch` per use, whose reason
says what the answer depends on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..model import (CWR, ECE, AllOf, AnyOf, BitsMatch, IntMatch, Match, NameMatch,
                     OpaqueMatch, AddressMatch)
from . import iptables_values as values
from .fastnew import slots_constructor
from .iptables_values import BadValue

#: IntMatch(field, ranges, negate=..., text=...) for the values a file has by the thousand
_int_match = slots_constructor(IntMatch, ("field", "ranges", "negate", "text"),
                               ("dport", ((22, 22),), True, "! --dport 22"))

#: Builder signature: (arguments, negate, text, family) → a match or None.
Builder = Callable[[list[str], bool, str, str], "Match | None"]


@dataclass(frozen=True, slots=True)
class Option:
    """One option of a module: how many arguments, how they become a match.

    ``nargs`` < 0 means "all following words" (used for opaque modules whose
    options are only recorded)."""

    nargs: int
    build: Builder | None = None


# ---------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------


def _ports(field: str, proto: str) -> Builder:
    def build(args, negate, text, family):
        found = values.parse_port_range(args[0], proto)
        return _int_match(field, (found,) if found else (), negate, text)
    build.valid = _plain_port_range
    return build


# A builder's ``valid(value, family)``: True only for a value it certainly
# builds (the plain spellings, see iptables_values.plain_network): a rule
# no packet reaches is checked with it and built later, if ever.


def _plain_port_range(value: str, family: str) -> bool:
    return values.plain_port_range(value)


def _plain_port_list(value: str, family: str) -> bool:
    return values.plain_port_list(value)


def _multiport(field: str) -> Builder:
    def build(args, negate, text, family):
        return _int_match(field, values.parse_port_list(args[0]), negate, text)
    build.valid = _plain_port_list
    return build


def _multiport_either(args, negate, text, family):
    ranges = values.parse_port_list(args[0])
    return AnyOf((IntMatch("sport", ranges, text=text), IntMatch("dport", ranges, text=text)),
                 negate=negate, text=text)


_multiport_either.valid = _plain_port_list


def _tcp_flags(args, negate, text, family):
    mask = values.parse_tcp_flags(args[0])
    comp = values.parse_tcp_flags(args[1])
    if negate and mask == 0:
        # The backends disagree, checked on a kernel: iptables-nft 1.8 drops
        # the whole test (the rule matches every TCP packet), xtables'
        # tcp match never matches it.
        return OpaqueMatch(reason="depends on the iptables backend: iptables-nft ignores a negated "
                                  "--tcp-flags with an empty mask, iptables-legacy never matches it",
                           text=text)
    return BitsMatch("flags", mask, frozenset({comp}), negate=negate, text=text)


def _syn(args, negate, text, family):
    # --syn is --tcp-flags FIN,SYN,RST,ACK SYN
    return BitsMatch("flags", 0x17, frozenset({0x02}), negate=negate, text=text)


def _opaque(reason: str) -> Builder:
    def build(args, negate, text, family):
        return OpaqueMatch(reason=reason.format(arg=args[0] if args else ""),
                           negate=negate, text=text)
    return build


def icmp_match(kind: int | None, code: int | None, negate: bool, text: str) -> Match | None:
    """Type only → icmp_type; type and code → both; ``any`` → none (or never, negated)."""
    if kind is None:
        return IntMatch("icmp_type", ((0, 255),), negate=True, text=text) if negate else None
    if code is None:
        return IntMatch("icmp_type", ((kind, kind),), negate=negate, text=text)
    codes = code if isinstance(code, tuple) else (code, code)
    return AllOf((IntMatch("icmp_type", ((kind, kind),), text=text),
                  IntMatch("icmp_code", (codes,), text=text)), negate=negate, text=text)


def _icmp(v6: bool) -> Builder:
    def build(args, negate, text, family):
        kind, code = values.parse_icmp_type(args[0], v6)
        return icmp_match(kind, code, negate, text)
    return build


_STATES = {"NEW", "ESTABLISHED", "RELATED", "INVALID", "UNTRACKED"}
_CT_STATUS = {"NONE", "EXPECTED", "SEEN_REPLY", "ASSURED", "CONFIRMED"}


def _names(text_list: str, allowed: set[str], what: str) -> list[str]:
    out = []
    for name in text_list.split(","):
        if name.upper() not in allowed:
            raise BadValue(f"bad {what} {name!r} (known: {', '.join(sorted(allowed))})")
        out.append(name.lower())
    return out


def _state(args, negate, text, family):
    return NameMatch("state", frozenset(_names(args[0], _STATES, "state")), negate=negate, text=text)


def _ctstate(args, negate, text, family):
    names = _names(args[0], _STATES | {"SNAT", "DNAT"}, "conntrack state")
    states = frozenset(n for n in names if n not in ("snat", "dnat"))
    nat = frozenset(n for n in names if n in ("snat", "dnat"))
    parts = []
    if states:
        parts.append(NameMatch("state", states, text=text))
    if nat:
        parts.append(NameMatch("ct_status", nat, text=text))
    if len(parts) == 1:
        return parts[0].negated() if negate else parts[0]
    return AnyOf(tuple(parts), negate=negate, text=text)


def _ctstatus(args, negate, text, family):
    return NameMatch("ct_status", frozenset(_names(args[0], _CT_STATUS, "conntrack status")),
                     negate=negate, text=text)


def _ctdir(args, negate, text, family):
    return NameMatch("ct_direction", frozenset(_names(args[0], {"ORIGINAL", "REPLY"}, "direction")),
                     negate=negate, text=text)


def _ctproto(args, negate, text, family):
    number = values.parse_protocol(args[0])
    return OpaqueMatch(reason=f"depends on the connection's original protocol ({args[0]})",
                       negate=negate, text=text) if number else None


def _mark(field: str) -> Builder:
    def build(args, negate, text, family):
        value, mask = values.parse_value_mask(args[0])
        return BitsMatch(field, mask, frozenset({value}), negate=negate, text=text)
    return build


def _int_range(field: str, hi: int, what: str, sep: str = ":") -> Builder:
    def build(args, negate, text, family):
        return _int_match(field, (values.parse_int_range(args[0], 0, hi, what, sep),), negate,
                          text)
    build.valid = lambda value, family: values.plain_int_range(value, hi, sep)
    return build


def _ttl(op: str, field: str) -> Builder:
    def build(args, negate, text, family):
        n = values.parse_int(args[0], 0, 255, field)
        if op == "eq":
            ranges = ((n, n),)
        elif op == "lt":
            if n == 0:
                return IntMatch(field, ((0, 255),), negate=not negate, text=text)
            ranges = ((0, n - 1),)
        else:
            if n == 255:
                return IntMatch(field, ((0, 255),), negate=not negate, text=text)
            ranges = ((n + 1, 255),)
        return IntMatch(field, ranges, negate=negate, text=text)
    return build


def _dscp(args, negate, text, family):
    n = values.parse_int(args[0], 0, 63, "DSCP value")
    return IntMatch("dscp", ((n, n),), negate=negate, text=text)


def _dscp_class(args, negate, text, family):
    n = values.parse_dscp_class(args[0])
    return IntMatch("dscp", ((n, n),), negate=negate, text=text)


def _tos(args, negate, text, family):
    value, mask = values.parse_tos(args[0])
    return BitsMatch("tos", mask, frozenset({value}), negate=negate, text=text)


_ADDRTYPES = {"UNSPEC", "UNICAST", "LOCAL", "BROADCAST", "ANYCAST", "MULTICAST", "BLACKHOLE",
              "UNREACHABLE", "PROHIBIT", "THROW", "NAT", "XRESOLVE"}


def _addrtype(field: str) -> Builder:
    def build(args, negate, text, family):
        return NameMatch(field, frozenset(_names(args[0], _ADDRTYPES, "address type")),
                         negate=negate, text=text)
    return build


def _pkttype(args, negate, text, family):
    name = args[0].lower()
    if name not in ("unicast", "broadcast", "multicast", "host", "otherhost"):
        raise BadValue(f"bad packet type {args[0]!r} (known: unicast, broadcast, multicast)")
    return NameMatch("pkttype", frozenset({"unicast" if name == "host" else name}),
                     negate=negate, text=text)


def _owner(field: str) -> Builder:
    def build(args, negate, text, family):
        first = args[0].partition("-")[0]
        if not first.isdigit():
            return OpaqueMatch(reason=f"depends on which {field} the name {args[0]} has",
                               negate=negate, text=text)
        return IntMatch(field, (values.parse_int_range(args[0], 0, 0xFFFFFFFF, field, "-"),),
                        negate=negate, text=text)
    return build


def _iprange(field: str) -> Builder:
    def build(args, negate, text, family):
        return AddressMatch(field, values.parse_address_range(args[0], family),
                            negate=negate, text=text)
    build.valid = values.plain_address_range
    return build


def _ecn_flag(bit: int) -> Builder:
    def build(args, negate, text, family):
        return BitsMatch("flags", bit, frozenset({bit}), negate=negate, text=text)
    return build


def _ecn_ip(args, negate, text, family):
    n = values.parse_int(args[0], 0, 3, "ECT value")
    return IntMatch("ecn", ((n, n),), negate=negate, text=text)


def _comment(args, negate, text, family):
    return None  # the rule interpreter keeps the comment text


# ---------------------------------------------------------------------------
# The module table
# ---------------------------------------------------------------------------

_CT_OPAQUE = {name: Option(1, _opaque("depends on the connection's " + what + " ({arg})"))
              for name, what in (("--ctorigsrc", "original source"),
                                 ("--ctorigdst", "original destination"),
                                 ("--ctreplsrc", "reply source"),
                                 ("--ctrepldst", "reply destination"),
                                 ("--ctorigsrcport", "original source port"),
                                 ("--ctorigdstport", "original destination port"),
                                 ("--ctreplsrcport", "reply source port"),
                                 ("--ctrepldstport", "reply destination port"),
                                 ("--ctexpire", "remaining lifetime"))}

_TCP = {"--sport": Option(1, _ports("sport", "tcp")), "--source-port": Option(1, _ports("sport", "tcp")),
        "--dport": Option(1, _ports("dport", "tcp")),
        "--destination-port": Option(1, _ports("dport", "tcp")),
        "--tcp-flags": Option(2, _tcp_flags), "--syn": Option(0, _syn),
        "--tcp-option": Option(1, _opaque("depends on the TCP options present"))}
_UDP = {"--sport": Option(1, _ports("sport", "udp")), "--source-port": Option(1, _ports("sport", "udp")),
        "--dport": Option(1, _ports("dport", "udp")),
        "--destination-port": Option(1, _ports("dport", "udp"))}
_SCTP = {"--sport": Option(1, _ports("sport", "sctp")), "--source-port": Option(1, _ports("sport", "sctp")),
         "--dport": Option(1, _ports("dport", "sctp")),
         "--destination-port": Option(1, _ports("dport", "sctp")),
         "--chunk-types": Option(-1, _opaque("depends on the SCTP chunks present"))}
_DCCP = {"--sport": Option(1, _ports("sport", "dccp")), "--source-port": Option(1, _ports("sport", "dccp")),
         "--dport": Option(1, _ports("dport", "dccp")),
         "--destination-port": Option(1, _ports("dport", "dccp")),
         "--dccp-types": Option(1, _opaque("depends on the DCCP packet type")),
         "--dccp-option": Option(1, _opaque("depends on the DCCP options present"))}

#: module name → {option → Option}: modules that give typed matches.
MODULES: dict[str, dict[str, Option]] = {
    "tcp": _TCP, "udp": _UDP, "sctp": _SCTP, "dccp": _DCCP, "udplite": _UDP,
    "icmp": {"--icmp-type": Option(1, _icmp(False))},
    "icmp6": {"--icmpv6-type": Option(1, _icmp(True))},
    "multiport": {"--sports": Option(1, _multiport("sport")),
                  "--source-ports": Option(1, _multiport("sport")),
                  "--dports": Option(1, _multiport("dport")),
                  "--destination-ports": Option(1, _multiport("dport")),
                  "--ports": Option(1, _multiport_either)},
    "state": {"--state": Option(1, _state)},
    "conntrack": {"--ctstate": Option(1, _ctstate), "--ctstatus": Option(1, _ctstatus),
                  "--ctdir": Option(1, _ctdir), "--ctproto": Option(1, _ctproto), **_CT_OPAQUE},
    "mark": {"--mark": Option(1, _mark("mark"))},
    "connmark": {"--mark": Option(1, _mark("ctmark"))},
    "length": {"--length": Option(1, _int_range("length", 0xFFFF, "length"))},
    "ttl": {"--ttl-eq": Option(1, _ttl("eq", "ttl")), "--ttl-lt": Option(1, _ttl("lt", "ttl")),
            "--ttl-gt": Option(1, _ttl("gt", "ttl"))},
    "hl": {"--hl-eq": Option(1, _ttl("eq", "ttl")), "--hl-lt": Option(1, _ttl("lt", "ttl")),
           "--hl-gt": Option(1, _ttl("gt", "ttl"))},
    "dscp": {"--dscp": Option(1, _dscp), "--dscp-class": Option(1, _dscp_class)},
    "tos": {"--tos": Option(1, _tos)},
    "addrtype": {"--src-type": Option(1, _addrtype("src_type")),
                 "--dst-type": Option(1, _addrtype("dst_type")),
                 # narrows the lookup to the packet's interface; the type
                 # names still decide, so no extra match
                 "--limit-iface-in": Option(0), "--limit-iface-out": Option(0)},
    "pkttype": {"--pkt-type": Option(1, _pkttype)},
    "owner": {"--uid-owner": Option(1, _owner("uid")), "--gid-owner": Option(1, _owner("gid")),
              "--socket-exists": Option(0, _opaque("depends on whether the packet has a local socket")),
              "--suppl-groups": Option(0, _opaque("depends on the socket owner's supplementary groups")),
              "--pid-owner": Option(1, _opaque("depends on the sending process ({arg})")),
              "--sid-owner": Option(1, _opaque("depends on the sending session ({arg})")),
              "--cmd-owner": Option(1, _opaque("depends on the sending command ({arg})"))},
    "iprange": {"--src-range": Option(1, _iprange("src")), "--dst-range": Option(1, _iprange("dst"))},
    "comment": {"--comment": Option(1, _comment)},
    "ecn": {"--ecn-tcp-cwr": Option(0, _ecn_flag(CWR)), "--ecn-tcp-ece": Option(0, _ecn_flag(ECE)),
            "--ecn-ip-ect": Option(1, _ecn_ip)},
    "physdev": {name: Option(n, _opaque("depends on the bridge port"))
                for name, n in (("--physdev-in", 1), ("--physdev-out", 1), ("--physdev-is-in", 0),
                                ("--physdev-is-out", 0), ("--physdev-is-bridged", 0))},
    "mac": {"--mac-source": Option(1, _opaque("depends on the source MAC address"))},
}

#: Modules matched on the transport protocol that ``-p`` names; iptables
#: loads them on their first option without ``-m`` and the kernel refuses
#: them for any other protocol.
PROTOCOL_MODULES = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmp6", 132: "sctp", 33: "dccp",
                    136: "udplite", 135: "mh", 50: "esp", 51: "ah"}
MODULE_PROTOCOL = {"tcp": 6, "udp": 17, "icmp": 1, "icmp6": 58, "sctp": 132, "dccp": 33,
                   "udplite": 136}

#: Opaque modules: option names (arguments are the words that follow) and
#: the reason a rule using them cannot be decided from a packet.
OPAQUE_MODULES: dict[str, tuple[tuple[str, ...], str]] = {
    "limit": (("--limit", "--limit-burst"), "depends on the packet rate"),
    "hashlimit": (("--hashlimit", "--hashlimit-upto", "--hashlimit-above", "--hashlimit-burst",
                   "--hashlimit-mode", "--hashlimit-srcmask", "--hashlimit-dstmask",
                   "--hashlimit-name", "--hashlimit-htable-size", "--hashlimit-htable-max",
                   "--hashlimit-htable-expire", "--hashlimit-htable-gcinterval",
                   "--hashlimit-rate-match", "--hashlimit-rate-interval"),
                  "depends on traffic history: the per-flow packet rate (hashlimit)"),
    "recent": (("--name", "--set", "--rcheck", "--update", "--remove", "--seconds",
                "--reap", "--hitcount", "--rttl", "--rsource", "--rdest", "--mask"),
               "depends on traffic history: the recent list"),
    "statistic": (("--mode", "--probability", "--every", "--packet"), "random"),
    "set": (("--match-set", "--set", "--return-nomatch", "--update-counters",
             "--update-subcounters", "--packets-eq", "--packets-lt", "--packets-gt",
             "--bytes-eq", "--bytes-lt", "--bytes-gt"), "depends on the contents of ipset"),
    "u32": (("--u32",), "depends on payload bytes (u32)"),
    "policy": (("--dir", "--pol", "--strict", "--reqid", "--spi", "--proto", "--mode",
                "--tunnel-src", "--tunnel-dst", "--next"), "depends on the IPsec policy"),
    "string": (("--algo", "--from", "--to", "--string", "--hex-string", "--icase"),
               "depends on the packet payload"),
    "connlimit": (("--connlimit-upto", "--connlimit-above", "--connlimit-mask",
                   "--connlimit-saddr", "--connlimit-daddr"),
                  "depends on traffic history: the number of connections (connlimit)"),
    "time": (("--datestart", "--datestop", "--timestart", "--timestop", "--monthdays",
              "--weekdays", "--days", "--kerneltz", "--localtz", "--utc", "--contiguous"),
             "depends on the time of day"),
    "quota": (("--quota",), "depends on the traffic quota used so far"),
    "connbytes": (("--connbytes", "--connbytes-dir", "--connbytes-mode"),
                  "depends on the bytes the connection carried"),
    "helper": (("--helper",), "depends on the conntrack helper"),
    "socket": (("--transparent", "--nowildcard", "--restore-skmark"),
               "depends on the local sockets"),
    "bpf": (("--bytecode", "--object-pinned"), "depends on a BPF program"),
    "cgroup": (("--cgroup", "--path"), "depends on the sender's cgroup"),
    "rpfilter": (("--loose", "--validmark", "--accept-local", "--invert"),
                 "depends on the routing table (reverse path)"),
    "realm": (("--realm",), "depends on the routing realm"),
    "devgroup": (("--src-group", "--dst-group"), "depends on the interface group"),
    "cpu": (("--cpu",), "depends on the CPU handling the packet"),
    "cluster": (("--cluster-total-nodes", "--cluster-local-node", "--cluster-local-nodemask",
                 "--cluster-hash-seed"), "depends on the cluster hash"),
    "nfacct": (("--nfacct-name",), "depends on accounting objects"),
    "osf": (("--genre", "--ttl", "--log"), "depends on the sender's OS fingerprint"),
    "ipvs": (("--ipvs", "--vproto", "--vaddr", "--vport", "--vdir", "--vmethod", "--vportctl"),
             "depends on IPVS state"),
    "rateest": (("--rateest", "--rateest1", "--rateest2", "--rateest-delta", "--rateest-lt",
                 "--rateest-gt", "--rateest-eq", "--rateest-bps", "--rateest-pps",
                 "--rateest-bps1", "--rateest-bps2", "--rateest-pps1", "--rateest-pps2"),
                "depends on a rate estimator"),
    "tcpmss": (("--mss",), "depends on the TCP MSS option"),
    "esp": (("--espspi",), "depends on the ESP SPI"),
    "ah": (("--ahspi", "--ahlen", "--ahres"), "depends on the AH header"),
    "rt": (("--rt-type", "--rt-segsleft", "--rt-len", "--rt-0-res", "--rt-0-addrs",
            "--rt-0-not-strict"), "depends on IPv6 extension headers"),
    "frag": (("--fragid", "--fraglen", "--fragres", "--fragfirst", "--fragmore", "--fraglast"),
             "depends on IPv6 extension headers"),
    "hbh": (("--hbh-len", "--hbh-opts"), "depends on IPv6 extension headers"),
    "dst": (("--dst-len", "--dst-opts"), "depends on IPv6 extension headers"),
    "mh": (("--mh-type",), "depends on IPv6 extension headers"),
    "ipv6header": (("--header", "--soft"), "depends on IPv6 extension headers"),
    "eui64": ((), "depends on the source MAC address"),
    "condition": (("--condition",), "depends on a condition variable"),
    "l2tp": (("--tid", "--sid", "--pversion", "--type"), "depends on the L2TP header"),
    "ipcomp": (("--ipcompspi", "--compres"), "depends on the IPComp header"),
    "connlabel": (("--label", "--set"), "depends on conntrack labels"),
    "geoip": (("--src-cc", "--source-country", "--dst-cc", "--destination-country"),
              "depends on the GeoIP database"),
}


#: IPv6 extension-header matches: they never match a packet that lacks the
#: header, and the analyzer's packets have none (see docs/semantics).
EXTENSION_HEADER_MODULES = frozenset({"rt", "hbh", "dst"})


def opaque_reason(module: str, words: list[str]) -> str:
    """The reason for an opaque module, naming its decisive argument."""
    base = OPAQUE_MODULES[module][1] if module in OPAQUE_MODULES else \
        f"depends on the match module {module}, which the analyzer does not model"
    args = " ".join(words)
    if module == "limit":
        rate = _after(words, "--limit") or "3/hour"
        return f"{base} (limit {rate})"
    if module == "set":
        name = _after(words, "--match-set") or _after(words, "--set") or "?"
        return f"{base} {name}"
    if module == "statistic":
        mode = _after(words, "--mode") or "random"
        if mode == "nth":
            return f"counter: statistic every {_after(words, '--every') or '?'} packets"
        return f"random: statistic probability {_after(words, '--probability') or '?'}"
    return f"{base} ({args})" if args else base


def _after(words: list[str], option: str) -> str | None:
    for i, w in enumerate(words[:-1]):
        if w == option:
            return words[i + 1]
    return None
