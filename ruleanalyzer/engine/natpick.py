"""Which address and port of a NAT range the kernel gives a new connection.

``nf_nat_core.c`` (``get_unique_tuple``) chooses, for the first packet of a
connection:

- **the address** of a range by hashing the connection's addresses
  (``find_best_ips_proto``): ``jhash2`` of the source address (four 32-bit
  words, IPv4 in the first), seeded with the destination's last word
  (``persistent``: seeded with 0), scaled onto the range word by word. The
  same connection gets the same address on every host and reboot;
- **for SNAT/MASQUERADE** first whether the connection may keep its own
  source: it does where its address (and port, where ports are given) lie
  in the range already — unless the target is ``random``/``fully-random``;
- **the port** of a range: a DNAT keeps the connection's own port where it
  lies in the range, else takes the range's first port; a SNAT keeps it
  where it lies in the range, else picks one of the range at random; a
  ``random`` target always picks at random (:func:`random_ports`: the
  engine answers for each group of those ports the rules tell apart).

The kernel departs from this only where another connection already holds
the tuple it would make (a clash: it moves on to another port), or, for
SNAT, where another connection from the same address and port was
translated already (it reuses that one's address): traffic history, which
a ruleset does not hold. :func:`translate` says so in the notes it returns.

A prefix mapped address for address (NETMAP) keeps the host bits and
takes the prefix's. Checked against the kernel:
``tests/kernel/test_kernel_nat_range.py``.
"""

from __future__ import annotations

import ipaddress

from ..model import SNAT_PORT_KINDS, Nat

_M = 0xFFFFFFFF
#: ``JHASH_INITVAL`` (include/linux/jhash.h)
_INITVAL = 0xDEADBEEF


def _rol(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _M


def jhash2(words: list[int], initval: int) -> int:
    """The kernel's ``jhash2`` (Bob Jenkins' lookup3 over 32-bit words)."""
    a = b = c = (_INITVAL + (len(words) << 2) + initval) & _M
    k = list(words)
    while len(k) > 3:
        a, b, c = (a + k[0]) & _M, (b + k[1]) & _M, (c + k[2]) & _M
        # __jhash_mix
        a = (a - c) & _M; a ^= _rol(c, 4); c = (c + b) & _M  # noqa: E702
        b = (b - a) & _M; b ^= _rol(a, 6); a = (a + c) & _M  # noqa: E702
        c = (c - b) & _M; c ^= _rol(b, 8); b = (b + a) & _M  # noqa: E702
        a = (a - c) & _M; a ^= _rol(c, 16); c = (c + b) & _M  # noqa: E702
        b = (b - a) & _M; b ^= _rol(a, 19); a = (a + c) & _M  # noqa: E702
        c = (c - b) & _M; c ^= _rol(b, 4); b = (b + a) & _M  # noqa: E702
        k = k[3:]
    if not k:
        return c
    if len(k) == 3:
        c = (c + k[2]) & _M
    if len(k) >= 2:
        b = (b + k[1]) & _M
    a = (a + k[0]) & _M
    # __jhash_final
    c ^= b; c = (c - _rol(b, 14)) & _M  # noqa: E702
    a ^= c; a = (a - _rol(c, 11)) & _M  # noqa: E702
    b ^= a; b = (b - _rol(a, 25)) & _M  # noqa: E702
    c ^= b; c = (c - _rol(b, 16)) & _M  # noqa: E702
    a ^= c; a = (a - _rol(c, 4)) & _M  # noqa: E702
    b ^= a; b = (b - _rol(a, 14)) & _M  # noqa: E702
    c ^= b; c = (c - _rol(b, 24)) & _M  # noqa: E702
    return c


def _words(value: int, version: int) -> list[int]:
    """An address as ``union nf_inet_addr``'s four words hold it in memory
    (network byte order, read as little-endian integers; IPv4 in the first
    word, the rest zero)."""
    raw = value.to_bytes(4 if version == 4 else 16, "big").ljust(16, b"\0")
    return [int.from_bytes(raw[i:i + 4], "little") for i in range(0, 16, 4)]


def pick_address(src: int, dst: int, first: int, last: int, version: int, *,
                 translate_dst: bool, persistent: bool = False, zone: int = 0) -> int:
    """The address of ``first`` … ``last`` the kernel gives the connection
    ``src`` → ``dst`` (``find_best_ips_proto``); ``translate_dst``: DNAT
    (the destination written) rather than SNAT."""
    src_w, dst_w = _words(src, version), _words(dst, version)
    top = 0 if version == 4 else 3
    j = jhash2(src_w, 0 if persistent else (dst_w[top] ^ zone) & _M)
    first_w, last_w = ([value >> 32 * (top - i) & _M for i in range(top + 1)] for value in (first, last))
    out = []
    full = False
    for i in range(top + 1):
        low, dist = (0, _M) if full else (first_w[i], (last_w[i] - first_w[i] + 1) & _M)
        word = (low + ((j * dist) >> 32)) & _M
        out.append(word)
        if word != last_w[i]:
            full = True
        if not persistent:
            # (the destination as written so far: a DNAT's new words)
            j ^= int.from_bytes(word.to_bytes(4, "big"), "little") if translate_dst else dst_w[i]
    value = 0
    for word in out:
        value = value << 32 | word
    return value


def _within(value: int | None, low: int, high: int) -> bool:
    return value is not None and low <= value <= high


def translate(action: Nat, src: int, dst: int, sport: int | None, dport: int | None,
              version: int) -> tuple[int | None, int | None, list[str]]:
    """``(address, port, notes)`` that ``action`` writes into a new
    connection ``src:sport`` → ``dst:dport`` (None: that part is not
    written); ``notes`` say where the kernel's choice rests on what the
    ruleset does not hold (see the module doc)."""
    notes: list[str] = []
    dnat = action.kind in ("dnat", "redirect")
    own_port = dport if dnat else sport
    addresses = action.address_range if action.kind != "redirect" else None
    address = int(action.to_addr) if action.to_addr is not None and action.kind != "redirect" else None
    port, last_port = action.to_port, action.to_port_last or action.to_port
    if action.netmap and addresses is not None:
        # the prefix's bits, the address's own host bits (xt_NETMAP,
        # nft_nat's netmap): a single address for the kernel to take
        first, last = int(addresses[0]), int(addresses[1])
        prefix = ~(first ^ last) & ((1 << (32 if version == 4 else 128)) - 1)
        own = dst if dnat else src
        return (own & ~prefix) | (first & prefix), port, notes
    if not dnat and not action.random and addresses is not None and \
            _within(src, int(addresses[0]), int(addresses[1])) and \
            (port is None or _within(own_port, port, last_port)):
        return src, own_port if port is not None else None, notes  # already in the range: kept
    if addresses is not None:
        first, last = addresses
        address = pick_address(src, dst, int(first), int(last), version,
                               translate_dst=dnat, persistent=action.persistent)
        if not dnat:
            notes.append(f"{action.kind} picks {ipaddress.ip_address(address)} of {first}-{last} by hashing "
                         "the addresses, unless another connection from this address and port was "
                         "translated already (it takes that one's)")
    if port is not None and last_port != port and not action.random and _within(own_port, port, last_port):
        port = own_port  # (it lies in the range: kept; one outside takes the first, or a random one:
        # random_ports)
    return address, port, notes


def random_ports(action: Nat, sport: int | None, dport: int | None) -> tuple[int, int] | None:
    """The ports the kernel picks from at random for this connection
    (``nf_nat_l4proto_unique_tuple``: a random offset), or None where the
    port it gets is decided (:func:`translate`). ``random`` picks from the
    port range; a SNAT whose port lies outside its range picks from the
    range; a SNAT that is ``random`` without a range picks from the ports of
    the connection's own port's kind (below 512, below 1024, the rest)."""
    port, last = action.to_port, action.to_port_last or action.to_port
    if action.kind in ("dnat", "redirect"):
        return (port, last) if action.random and port is not None and port != last else None
    if port is not None:
        if port == last:
            return None
        return (port, last) if action.random or not _within(sport, port, last) else None
    if not action.random or sport is None:
        return None
    return next((low, high) for own_low, own_high, low, high in SNAT_PORT_KINDS if own_low <= sport <= own_high)
