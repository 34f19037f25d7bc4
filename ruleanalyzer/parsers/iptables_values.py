"""Value syntaxes of iptables options: addresses, ports, ICMP types, marks,
DSCP classes, TOS names, REJECT replies.

Every parser here raises :class:`BadValue` with a user-facing message; the
rule interpreter turns it into a located error at the offending argument.
The name tables are the ones iptables 1.8 prints (``iptables -p icmp -h``,
``ip6tables -p icmpv6 -h``, ``iptables -j REJECT -h``).
"""

from __future__ import annotations

import ipaddress
import re
import socket

from ..model import PROTOCOLS


class BadValue(Exception):
    """An option argument iptables would refuse; the message says why."""


# ---------------------------------------------------------------------------
# Addresses
# ---------------------------------------------------------------------------

_network_cache: dict[tuple[str, str], object] = {}
_DOTTED = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?:/\d{1,2})?\Z")
#: Fewer than four parts: iptables completes them with zeros (``10.3/16`` is
#: 10.3.0.0/16; xtables' ``__numeric_to_ipaddr``), unlike inet_aton.
#: Looks like a DNS name (iptables resolves these when the rule is loaded).
_HOSTNAME = re.compile(r"^(?=.*[A-Za-z_])[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?$")


def strtoul0(text: str) -> int | None:
    """``text`` read whole as C's ``strtoul(text, &end, 0)`` reads it
    (``0x1f`` hex, ``017`` octal, else decimal), as xtables reads address
    parts, prefix lengths, ports and protocol numbers; ``None`` when it is
    not one number."""
    if text.isdigit():
        if text[0] != "0" or len(text) == 1:
            return int(text)
        return int(text, 8) if _OCTAL.fullmatch(text) else None
    if _HEX.fullmatch(text):
        return int(text, 16)
    return None


_OCTAL = re.compile(r"0[0-7]+")
_HEX = re.compile(r"0[xX][0-9a-fA-F]+")


def xt_ipv4(text: str, is_mask: bool = False) -> int | None:
    """An IPv4 address as iptables reads it (``xtables_numeric_to_ipaddr``):
    up to four parts, each a number of ``strtoul(…, 0)``; an address of
    fewer parts is completed with zeros (``10.1`` is ``10.1.0.0``, ``0`` is
    ``0.0.0.0``), a mask is not. ``None`` when it is not numeric."""
    parts = text.split(".")
    if len(parts) > 4 or (is_mask and len(parts) < 4):
        return None
    number = 0
    for part in parts:
        byte = strtoul0(part)
        if byte is None or byte > 255:
            return None
        number = number << 8 | byte
    return number << 8 * (4 - len(parts))


def _prefix_of(mask: int, bits: int) -> int | None:
    """The prefix length of a contiguous ``mask``, else ``None``."""
    inverted = ~mask & ((1 << bits) - 1)
    if inverted & (inverted + 1):
        return None
    return bits - inverted.bit_length()


def parse_network(text: str, family: str):
    """``1.2.3.4``, ``10.0.0.0/8``, ``10.0.0.0/255.0.0.0``, ``2001:db8::/32``
    → an ip_network of ``family`` (host bits dropped, as iptables does).

    Every spelling iptables-restore accepts is read as it reads it:
    ``0/0``, ``10.1/16`` (``10.1.0.0/16``), ``10.1.2``, octal and hex parts,
    ``/0x10``. A host name is refused (iptables would resolve it when the
    rule is loaded; nothing is resolved here); anything else raises
    :class:`BadValue`."""
    key = (text, family)
    cached = _network_cache.get(key)
    if cached is not None:
        return cached
    if family == "ip" and _DOTTED.match(text):
        # the common case, without ipaddress' string parser (2x faster)
        addr, _, prefix = text.partition("/")
        bits = int(prefix) if prefix and prefix[0] != "0" else (strtoul0(prefix) if prefix else 32)
        if bits is not None and bits <= 32:
            try:
                number = int.from_bytes(socket.inet_aton(addr), "big")
            except OSError:
                raise BadValue(f"invalid address {text!r}") from None
            net = _v4_network(number, bits)
            if len(_network_cache) < 200_000:
                _network_cache[key] = net
            return net
    net = _xt_network(text, family)
    if len(_network_cache) < 200_000:
        _network_cache[key] = net
    return net


def _v4_network_maker():
    """``IPv4Network((number, bits), strict=False)``, built as its
    ``__init__`` builds it (the network address masked, the netmask from
    the class' own cache, ``hosts`` for /31 and /32), without parsing its
    argument again: 4 us of every distinct address of a file, a third of
    reading one. The constructor itself wherever it builds anything else
    (checked on sample networks when this module loads)."""
    network, address = ipaddress.IPv4Network, ipaddress.IPv4Address
    new = object.__new__
    masks = [network._make_netmask(bits) for bits in range(33)]
    set_ip = address._ip.__set__

    def fast(number: int, bits: int):
        netmask, prefixlen = masks[bits]
        net = new(network)
        first = new(address)
        set_ip(first, number & netmask._ip)
        # attributes set as __init__ sets them, in its order (the instance
        # dicts then share their keys, as the constructor's do)
        net.network_address = first
        net.netmask = netmask
        net._prefixlen = prefixlen
        if prefixlen == 31:
            net.hosts = net.__iter__
        elif prefixlen == 32:
            # __init__'s is a lambda making [IPv4Address(the address)]: a
            # function, its cell and closure, ~250 B per /32 network (30k
            # at 100k kube-proxy rules); the bound copy of a one-address
            # list gives an equal list, in ~150 B
            net.hosts = [first].copy
        return net

    def plain(number: int, bits: int):
        return network((number, bits), strict=False)

    try:
        for number, bits in ((0x0A000001, 32), (0x0A000001, 31), (0xC0A80137, 24), (0, 0),
                             (0xFFFFFFFF, 1), (0x7F000001, 8)):
            ours, theirs = fast(number, bits), plain(number, bits)
            same = (vars(ours).keys() == vars(theirs).keys() and ours == theirs
                    and hash(ours) == hash(theirs) and repr(ours) == repr(theirs)
                    and ours.network_address._ip == theirs.network_address._ip
                    and ours.netmask is theirs.netmask and ours._prefixlen == theirs._prefixlen
                    and (bits < 24 or list(ours.hosts()) == list(theirs.hosts())))
            if not same:
                return plain
    except Exception:  # an ipaddress whose insides differ
        return plain
    return fast


_v4_network = _v4_network_maker()


def _xt_network(text: str, family: str):
    """``parse_network`` beyond the plain dotted quad (``xtables_ipparse_any``)."""
    addr, slash, mask = text.rpartition("/")
    if not slash:
        addr, mask = text, ""
    v6 = family == "ip6"
    width = 128 if v6 else 32
    if not mask:
        bits = width
    elif ("." in mask and not v6) or (":" in mask and v6):
        number = xt_ipv4(mask, is_mask=True) if not v6 else _v6_number(mask)
        if number is None:
            raise BadValue(f"invalid mask {mask!r}")
        bits = _prefix_of(number, width)
        if bits is None:
            raise NonContiguousMask(text)
    else:
        bits = strtoul0(mask)
        if bits is None or bits > width:
            raise BadValue(f"invalid mask {mask!r} (a prefix length is 0 to {width})")
    number = _v6_number(addr) if v6 else xt_ipv4(addr)
    if number is None:
        other = xt_ipv4(addr) if v6 else _v6_number(addr)
        if other is not None:
            want = 6 if v6 else 4
            raise BadValue(f"{text} is an IPv{10 - want} address in an "
                           f"{'ip6tables' if v6 else 'iptables'} rule")
        if _HOSTNAME.match(addr):
            raise BadValue(f"{addr!r} is a host name: names are not resolved offline; "
                           "write the address")
        raise BadValue(f"invalid address {text!r}")
    if v6:
        return ipaddress.IPv6Network((number, bits), strict=False)
    return ipaddress.IPv4Network((number, bits), strict=False)


def _v6_block(number: int, bits: int):
    return ipaddress.IPv6Network((number, bits))


def _v6_number(text: str) -> int | None:
    try:
        return int(ipaddress.IPv6Address(text))
    except ValueError:
        return None


class NonContiguousMask(Exception):
    """``10.11.12.13/255.0.255.0``: valid for the kernel, not a CIDR block."""


def parse_address(text: str, family: str, abbreviated: bool = False):
    """One address without a prefix (NAT targets, ranges) of ``family``;
    with ``abbreviated`` (``-m iprange``), IPv4 as xtables reads it (``10.1``
    is ``10.1.0.0``; NAT targets want four parts)."""
    if family == "ip":
        if abbreviated:
            number = xt_ipv4(text)
            if number is not None:
                return ipaddress.IPv4Address(number)
        elif _STRICT_V4.match(text):
            # what ip_address accepts, without its string parser (a DNAT
            # target per kube-proxy endpoint)
            return ipaddress.IPv4Address(int.from_bytes(socket.inet_aton(text), "big"))
    try:
        addr = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        raise BadValue(f"invalid address {text!r}") from None
    if addr.version != (6 if family == "ip6" else 4):
        raise BadValue(f"{text} is not an IPv{6 if family == 'ip6' else 4} address")
    return addr


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
#: a dotted quad as ipaddress.IPv4Address reads it (no leading zeros, ASCII digits)
_STRICT_V4 = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}\Z")

class _Blocks(tuple):
    """The CIDR blocks of one address range: a tuple that keeps its hash
    once taken. A range is ~40 blocks whose hashes ipaddress computes in
    Python; the matches holding them are hashed again and again (the
    encoding cache, duplicate rules): on 100k mixed rules 2.4M block
    hashes. Equal to, and hashing as, the plain tuple; pickled as one."""

    def __hash__(self) -> int:
        known = self.__dict__.get("hash")
        if known is None:
            known = self.__dict__["hash"] = tuple.__hash__(self)
        return known

    def __reduce__(self):
        return tuple, (tuple(self),)


_range_cache: dict[tuple[str, str], tuple] = {}
#: the CIDR blocks of ranges by (first address, host bits, IPv6)
_blocks: dict[int, object] = {}


def parse_address_range(text: str, family: str):
    """``a-b`` (``-m iprange``) → the CIDR blocks covering it (one tuple per
    distinct range, its blocks shared between ranges: a range is a dozen
    network objects, and files repeat them)."""
    key = (text, family)
    cached = _range_cache.get(key)
    if cached is not None:
        return cached
    first, sep, last = text.partition("-")
    start = parse_address(first, family, abbreviated=True)
    end = parse_address(last, family, abbreviated=True) if sep else start
    if end < start:
        raise BadValue(f"address range {text} ends before it starts")
    nets = []
    v6 = start.version == 6
    width = 128 if v6 else 32
    # an aligned block: IPv4 built as its constructor builds it, without the parser
    network = _v6_block if v6 else _v4_network
    lo, hi = int(start), int(end)
    blocks = _blocks.get
    # ipaddress.summarize_address_range on integers (it made a network
    # object per block before they were shared: 70% of reading a range)
    while lo <= hi:
        size = (hi - lo + 1).bit_length() - 1  # the largest block that fits
        if lo:
            aligned = (lo & -lo).bit_length() - 1  # and starts at lo
            if aligned < size:
                size = aligned
        block = (lo << 8 | size) << 1 | v6
        net = blocks(block)
        if net is None:
            net = network(lo, width - size)
            if len(_blocks) < 200_000:
                _blocks[block] = net
        nets.append(net)
        lo += 1 << size
    nets = _Blocks(nets)
    if len(_range_cache) < 50_000:
        _range_cache[key] = nets
    return nets


# ---------------------------------------------------------------------------
# Numbers, protocols, ports
# ---------------------------------------------------------------------------


def parse_int(text: str, lo: int = 0, hi: int = 0xFFFFFFFF, what: str = "number") -> int:
    """Decimal, ``0x`` hex or ``0`` octal as strtoul(…, 0) reads them, in ``lo..hi``."""
    try:
        value = int(text, 0)
    except ValueError:
        try:
            value = int(text, 10)  # "010" is ten for strtol base 10 readers
        except ValueError:
            raise BadValue(f"invalid {what} {text!r}") from None
    if not lo <= value <= hi:
        raise BadValue(f"{what} {text} out of range {lo}..{hi}")
    return value


def parse_value_mask(text: str, default_mask: int = 0xFFFFFFFF, bits: int = 32) -> tuple[int, int]:
    """``v[/m]`` (marks) → (value, mask)."""
    value, sep, mask = text.partition("/")
    top = (1 << bits) - 1
    return (parse_int(value, 0, top, "value"),
            parse_int(mask, 0, top, "mask") if sep else default_mask)


_EXTRA_PROTOCOLS = {"icmp6": 58, "ipv6-mh": 135, "ipv6-icmp": 58, "icmpv6": 58}


def parse_protocol(text: str) -> int:
    """``tcp`` / ``6`` → 6; ``all`` → 0."""
    number = _protocol_cache.get(text)
    if number is None:
        number = _parse_protocol(text)
        if len(_protocol_cache) < 1000:
            _protocol_cache[text] = number
    return number


_protocol_cache: dict[str, int] = {}


def _parse_protocol(text: str) -> int:
    name = text.lower()
    number = strtoul0(name)
    if number is not None:
        if number > 255:
            raise BadValue(f"protocol number {text} out of range 0..255")
        return number
    if name == "all":
        return 0
    number = PROTOCOLS.get(name, _EXTRA_PROTOCOLS.get(name))
    if number is None:
        try:
            return socket.getprotobyname(name)  # /etc/protocols, as iptables reads it
        except OSError:
            raise BadValue(f"unknown protocol {text!r}") from None
    return number


_SERVICES = {"ssh": 22, "http": 80, "https": 443, "domain": 53, "smtp": 25, "ftp": 21,
             "ftp-data": 20, "telnet": 23, "ntp": 123, "bootps": 67, "bootpc": 68,
             "pop3": 110, "imap": 143, "imaps": 993, "pop3s": 995, "submission": 587,
             "snmp": 161, "ldap": 389, "microsoft-ds": 445, "www": 80, "auth": 113,
             "netbios-ns": 137, "netbios-dgm": 138, "netbios-ssn": 139, "syslog": 514,
             "tftp": 69, "mysql": 3306, "postgresql": 5432, "isakmp": 500}


def parse_nat_ports(text: str) -> tuple[int, int | None]:
    """``p``, ``p-q``, ``p-q/base`` (a port shift; the base does not change
    the first port), service names allowed."""
    text = text.partition("/")[0]
    try:
        return parse_port(text), None  # whole text may be a name such as ftp-data
    except BadValue:
        pass
    first, sep, last = text.partition("-")
    low, high = parse_port(first), (parse_port(last) if sep else None)
    if high is not None and high < low:
        raise BadValue(f"port range {text} runs backwards (iptables-restore refuses it)")
    return low, high


#: modules whose ports xtables reads in decimal only (checked on iptables 1.8.9)
_DECIMAL_PORTS = ("udp", "dccp")


def parse_port(text: str, proto: str = "tcp") -> int:
    """A port number or a service name from /etc/services. The tcp and sctp
    modules and multiport read numbers as ``strtoul(…, 0)`` (``0x16`` and
    ``026`` are 22); udp and dccp (xtables' option parser) in decimal only
    (``026`` is 26, ``0x16`` is a service name nobody has)."""
    number = (int(text) if text.isdigit() else None) if proto in _DECIMAL_PORTS else strtoul0(text)
    if number is not None:
        if number > 65535:
            raise BadValue(f"port {text} out of range 0..65535")
        return number
    if text in _SERVICES:
        return _SERVICES[text]
    try:
        return socket.getservbyname(text, proto if proto in ("tcp", "udp") else "tcp")
    except OSError:
        raise BadValue(f"invalid port or service {text!r}") from None


def parse_port_range(text: str, proto: str = "tcp") -> tuple[int, int] | None:
    """``22``, ``1000:2000``, ``:1023`` (from 0), ``1024:`` (to 65535).

    A range whose start lies above its end (``60000:29``, accepted by older
    iptables and kept by the kernel) contains no port: ``None``."""
    first, sep, last = text.partition(":")
    lo = parse_port(first, proto) if first else 0
    hi = (parse_port(last, proto) if last else 65535) if sep else lo
    return (lo, hi) if lo <= hi else None


def parse_port_list(text: str, proto: str = "tcp") -> tuple[tuple[int, int], ...]:
    """``-m multiport``: ``80,443,8000:8080`` (at most 15 ports, a range counts two)."""
    parts = text.split(",")
    if sum(1 if ":" not in part else 2 for part in parts) > 15:
        raise BadValue("too many ports specified (multiport takes at most 15)")
    ranges = (parse_port_range(part, proto) for part in parts)
    return tuple(r for r in ranges if r is not None)


def parse_int_range(text: str, lo: int, hi: int, what: str, sep: str = ":") -> tuple[int, int]:
    """``a[:b]`` (length) or ``a[-b]`` (uid-owner) within lo..hi."""
    first, has_sep, last = text.partition(sep)
    start = parse_int(first, lo, hi, what) if first else lo
    end = (parse_int(last, lo, hi, what) if last else hi) if has_sep else start
    if start > end:
        raise BadValue(f"invalid {what} range {text}")
    return start, end


# ---------------------------------------------------------------------------
# ICMP
# ---------------------------------------------------------------------------

#: name → (type, code or None for every code), in `iptables -p icmp -h` order.
ICMP_TYPES = {
    "any": (None, None),
    "echo-reply": (0, None), "pong": (0, None),
    "destination-unreachable": (3, None),
    "network-unreachable": (3, 0), "host-unreachable": (3, 1), "protocol-unreachable": (3, 2),
    "port-unreachable": (3, 3), "fragmentation-needed": (3, 4), "source-route-failed": (3, 5),
    "network-unknown": (3, 6), "host-unknown": (3, 7), "network-prohibited": (3, 9),
    "host-prohibited": (3, 10), "TOS-network-unreachable": (3, 11),
    "TOS-host-unreachable": (3, 12), "communication-prohibited": (3, 13),
    "host-precedence-violation": (3, 14), "precedence-cutoff": (3, 15),
    "source-quench": (4, None),
    "redirect": (5, None), "network-redirect": (5, 0), "host-redirect": (5, 1),
    "TOS-network-redirect": (5, 2), "TOS-host-redirect": (5, 3),
    "echo-request": (8, None), "ping": (8, None),
    "router-advertisement": (9, None), "router-solicitation": (10, None),
    "time-exceeded": (11, None), "ttl-exceeded": (11, None),
    "ttl-zero-during-transit": (11, 0), "ttl-zero-during-reassembly": (11, 1),
    "parameter-problem": (12, None), "ip-header-bad": (12, 0), "required-option-missing": (12, 1),
    "timestamp-request": (13, None), "timestamp-reply": (14, None),
    "address-mask-request": (17, None), "address-mask-reply": (18, None),
}

ICMPV6_TYPES = {
    "destination-unreachable": (1, None),
    "no-route": (1, 0), "communication-prohibited": (1, 1), "beyond-scope": (1, 2),
    "address-unreachable": (1, 3), "port-unreachable": (1, 4), "failed-policy": (1, 5),
    "reject-route": (1, 6),
    "packet-too-big": (2, None),
    "time-exceeded": (3, None), "ttl-exceeded": (3, None),
    "ttl-zero-during-transit": (3, 0), "ttl-zero-during-reassembly": (3, 1),
    "parameter-problem": (4, None), "bad-header": (4, 0), "unknown-header-type": (4, 1),
    "unknown-option": (4, 2),
    "echo-request": (128, None), "ping": (128, None),
    "echo-reply": (129, None), "pong": (129, None),
    "router-solicitation": (133, None), "router-advertisement": (134, None),
    "neighbour-solicitation": (135, None), "neighbor-solicitation": (135, None),
    "neighbour-advertisement": (136, None), "neighbor-advertisement": (136, None),
    "redirect": (137, None),
    "mld-listener-query": (130, None), "mld-listener-report": (131, None),
    "mld-listener-done": (132, None), "mld-listener-reduction": (132, None),
}


def parse_icmp_type(text: str, v6: bool):
    """``echo-request``, ``8``, ``3/4``, ``3/0:5`` → (type, code or None);
    the code is an int or, for a code range, a (first, last) pair.

    Names are matched case-insensitively and may be abbreviated to a unique
    prefix, as libxt_icmp does; ``any`` gives (None, None)."""
    table = ICMPV6_TYPES if v6 else ICMP_TYPES
    if text[:1].isdigit():
        kind, sep, code = text.partition("/")
        if ":" in code:
            return parse_int(kind, 0, 255, "ICMP type"), parse_int_range(code, 0, 255, "ICMP code")
        return (parse_int(kind, 0, 255, "ICMP type"),
                parse_int(code, 0, 255, "ICMP code") if sep else None)
    lowered = text.lower()
    exact = [v for k, v in table.items() if k.lower() == lowered]
    if exact:
        return exact[0]
    found = {v for k, v in table.items() if k.lower().startswith(lowered)}
    if len(found) == 1:
        return found.pop()
    what = "ICMPv6" if v6 else "ICMP"
    if found:
        raise BadValue(f"ambiguous {what} type name {text!r}")
    raise BadValue(f"invalid {what} type {text!r}",)


# ---------------------------------------------------------------------------
# DSCP, TOS, TCP flags, REJECT replies
# ---------------------------------------------------------------------------

DSCP_CLASSES = {"CS0": 0, "CS1": 8, "CS2": 16, "CS3": 24, "CS4": 32, "CS5": 40, "CS6": 48,
                "CS7": 56, "BE": 0, "AF11": 10, "AF12": 12, "AF13": 14, "AF21": 18,
                "AF22": 20, "AF23": 22, "AF31": 26, "AF32": 28, "AF33": 30, "AF41": 34,
                "AF42": 36, "AF43": 38, "EF": 46}


def parse_dscp_class(text: str) -> int:
    """``AF41`` → 34 (case-insensitive, as libxt_dscp)."""
    value = DSCP_CLASSES.get(text.upper())
    if value is None:
        raise BadValue(f"invalid DSCP class {text!r} (known: {', '.join(DSCP_CLASSES)})")
    return value


TOS_NAMES = {"minimize-delay": 0x10, "maximize-throughput": 0x08,
             "maximize-reliability": 0x04, "minimize-cost": 0x02, "normal-service": 0x00}


def parse_tos(text: str) -> tuple[int, int]:
    """``0x10[/0x3f]`` or a name (``Minimize-Delay``) → (value, mask).

    A symbolic name compares only the low six bits (mask 0x3F), a number
    the whole byte unless a mask is given — libxtables' tosmask type."""
    named = TOS_NAMES.get(text.lower())
    if named is not None:
        return named, 0x3F
    return parse_value_mask(text, 0xFF, 8)


_FLAG_BITS = {"FIN": 0x01, "SYN": 0x02, "RST": 0x04, "PSH": 0x08, "ACK": 0x10, "URG": 0x20,
              "ALL": 0x3F, "NONE": 0}


def parse_tcp_flags(text: str) -> int:
    """``FIN,SYN,RST,ACK`` → bits; ``ALL`` is FIN..URG only (0x3F), as in the kernel."""
    bits = 0
    for name in text.split(","):
        bit = _FLAG_BITS.get(name.upper())
        if bit is None:
            raise BadValue(f"unknown TCP flag {name!r} (known: FIN SYN RST PSH ACK URG ALL NONE)")
        bits |= bit
    return bits


REJECT_WITH_V4 = {
    "icmp-net-unreachable": "icmp-net-unreachable", "net-unreach": "icmp-net-unreachable",
    "icmp-host-unreachable": "icmp-host-unreachable", "host-unreach": "icmp-host-unreachable",
    "icmp-proto-unreachable": "icmp-proto-unreachable", "proto-unreach": "icmp-proto-unreachable",
    "icmp-port-unreachable": "icmp-port-unreachable", "port-unreach": "icmp-port-unreachable",
    "icmp-net-prohibited": "icmp-net-prohibited", "net-prohib": "icmp-net-prohibited",
    "icmp-host-prohibited": "icmp-host-prohibited", "host-prohib": "icmp-host-prohibited",
    "icmp-admin-prohibited": "icmp-admin-prohibited", "admin-prohib": "icmp-admin-prohibited",
    "tcp-reset": "tcp-reset", "tcp-rst": "tcp-reset",
}
REJECT_WITH_V6 = {
    "icmp6-no-route": "icmp6-no-route", "no-route": "icmp6-no-route",
    "icmp6-adm-prohibited": "icmp6-adm-prohibited", "adm-prohibited": "icmp6-adm-prohibited",
    "icmp6-addr-unreachable": "icmp6-addr-unreachable", "addr-unreach": "icmp6-addr-unreachable",
    "icmp6-port-unreachable": "icmp6-port-unreachable", "port-unreach": "icmp6-port-unreachable",
    "icmp6-policy-fail": "icmp6-policy-fail", "policy-fail": "icmp6-policy-fail",
    "icmp6-reject-route": "icmp6-reject-route", "reject-route": "icmp6-reject-route",
    "tcp-reset": "tcp-reset", "tcp-rst": "tcp-reset",
}


def parse_reject_with(text: str, v6: bool) -> str:
    """A REJECT reply name (aliases accepted) → the name iptables-save prints."""
    table = REJECT_WITH_V6 if v6 else REJECT_WITH_V4
    name = table.get(text)
    if name is None:
        raise BadValue(f"unknown reject type {text!r} for {'ip6tables' if v6 else 'iptables'}")
    return name


# ---------------------------------------------------------------------------
# Plain values known good without building them
# ---------------------------------------------------------------------------
# A rule of a chain no packet enters is checked and not built (the file
# reader's lazy chains): each function here answers True only for spellings
# its parser certainly accepts (the common plain ones), and False for
# anything else, which the parser itself then reads and reports. True never
# stands for a value the parser would refuse (tests/test_parser_iptables_lazy).

_PLAIN_V4_NETWORK = re.compile(
    rf"{_OCTET}(?:\.{_OCTET}){{0,3}}(?:/(?:3[0-2]|[12]?[0-9]|(?:{_OCTET}\.){{3}}{_OCTET}))?\Z")
_PLAIN_INT_RANGE = {sep: re.compile(rf"(0|[1-9][0-9]{{0,9}})(?:{re.escape(sep)}(0|[1-9][0-9]{{0,9}}))?\Z")
                    for sep in (":", "-")}


def plain_network(text: str, family: str) -> bool:
    """``1.2.3.4``, ``10.0.0.0/8``, ``10.3/16`` (completed with zeros) or
    ``10.0.0.0/255.0.0.0`` (a non-contiguous mask is no error: an opaque
    match) in an IPv4 rule, each part decimal without leading zeros."""
    return family == "ip" and _PLAIN_V4_NETWORK.match(text) is not None


def plain_address(text: str) -> bool:
    """``1.2.3.4`` (decimal parts, no leading zeros): an IPv4 address as parse_address reads it."""
    return _STRICT_V4.match(text) is not None


def _plain_port(text: str) -> bool:
    """A decimal port, no leading zeros, at most 65535 (string tests: 2x a regex)."""
    n = len(text)
    return text.isdigit() and text.isascii() and (n < 5 or (n == 5 and text <= "65535")) and \
        (text[0] != "0" or n == 1)


def plain_port_range(text: str) -> bool:
    """``22`` or ``1000:2000`` in decimal, no leading zeros, at most 65535."""
    if ":" in text:
        first, _, last = text.partition(":")
        return _plain_port(first) and _plain_port(last)
    return _plain_port(text)


def plain_port_list(text: str) -> bool:
    """``-m multiport``'s list of :func:`plain_port_range` parts, within 15 ports."""
    parts = text.split(",")
    return sum(1 if ":" not in part else 2 for part in parts) <= 15 and \
        all(map(plain_port_range, parts))


def plain_int_range(text: str, hi: int, sep: str) -> bool:
    """``a`` or ``a:b`` (``sep``) in decimal, a <= b <= hi."""
    found = _PLAIN_INT_RANGE[sep].match(text)
    if found is None:
        return False
    start = int(found[1])
    end = start if found[2] is None else int(found[2])
    return start <= end <= hi


def plain_address_range(text: str, family: str) -> bool:
    """``-m iprange``'s ``A.B.C.D-E.F.G.H`` (decimal parts), not ending before it starts."""
    if family != "ip":
        return False
    first, sep, last = text.partition("-")
    if _STRICT_V4.match(first) is None or (sep and _STRICT_V4.match(last) is None):
        return False
    return not sep or [*map(int, first.split("."))] <= [*map(int, last.split("."))]
