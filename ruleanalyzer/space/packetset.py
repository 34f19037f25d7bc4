"""Sets of packets as BDDs: the :class:`Space` (one BDD manager, one field
layout, the validity constraint) and the :class:`PacketSet` algebra.

Every set a :class:`Space` hands out lies inside ``space.valid``: headers a
packet does not have are pinned to zero (no ports on ICMP, no TCP flags on
UDP, no ICMP type on TCP, no transport header at all in a non-first
fragment, no ctmark/ct status/direction without a connection entry, upper
96 address bits zero for IPv4), and name
codes stay inside their domains. Complement is taken within the valid
packets, so ``~s`` never contains an impossible packet.
"""

from __future__ import annotations

import gc
import os
import sys

# dd's helpers (dd._utils) import networkx when it is installed, for dd's
# graph export only, which the analyzer never asks for: ~14 MiB of code
# objects and 0.08 s in every audit's process (the analyzer's own networkx
# user, ``topology``, imports it when it runs). Hidden while dd is
# imported, so dd takes it as missing; a networkx already imported is left
# to dd as it is.
_HIDE_NETWORKX = "networkx" not in sys.modules
if _HIDE_NETWORKX:
    sys.modules["networkx"] = None  # type: ignore[assignment]  (import networkx: ImportError)
try:  # CUDD compiled in the dd wheel; the pure-Python manager otherwise.
    from dd import cudd as _bdd_backend
except ImportError:  # pragma: no cover - depends on the installed wheel
    from dd import autoref as _bdd_backend
finally:
    if _HIDE_NETWORKX and sys.modules.get("networkx", 0) is None:
        del sys.modules["networkx"]


from ..gcpause import gc_paused
from ._leq import collector_for, count_for, cube_for, leq_for
from .fields import (CONNTRACK_FIELDS, ICMP, ICMPV6, IPV4_ONLY, IPV6_ONLY, PORT_PROTOCOLS, TCP,
                     FieldSpec, Layout)

#: TCP flags (FIN SYN RST ACK URG; ECE, CWR, PSH and AE left out, as
#: nf_conntrack does) of a packet conntrack may take as a connection's
#: first: a SYN, or a bare ACK picked up mid-stream (nf_conntrack_tcp_loose)
#: — never a SYN-ACK, a FIN or an RST (``engine.conntrack``).
_OPENING_FLAGS_MASK = 0x37
_OPENING_FLAGS = (0x02, 0x22, 0x10, 0x30)
#: Flag combinations conntrack accepts at all (``tcp_valid_flags``), same mask.
_VALID_FLAGS = (0x02, 0x22, 0x12, 0x04, 0x14, 0x11, 0x31, 0x10, 0x30)
_ICMP_OPENING = (8, 13, 15, 17)
_ICMPV6_OPENING = (128, 139)
#: ICMPv6 types conntrack never tracks (MLD, router and neighbour discovery).
ICMPV6_UNTRACKED = (130, 131, 132, 133, 134, 135, 136, 143)

BACKEND = _bdd_backend.__name__
#: A literal's value as ``Space.cube_of`` writes it into CUDD's int array.
_ZERO, _ONE = (0).to_bytes(4, sys.byteorder), (1).to_bytes(4, sys.byteorder)
#: Each byte's 8 literals as ``Space.cube_of`` writes them, most significant first.
_BYTE_LITERALS = tuple(b"".join(_ONE if x >> (7 - i) & 1 else _ZERO for i in range(8)) for x in range(256))
#: CUDD's ``looseUpTo``: while the unique table has fewer slots than this,
#: CUDD collects garbage only once 4 dead nodes per slot pile up (else 1;
#: 0.2 past :data:`SOFT_BDD_BYTES`, which thus bounds what this lets grow).
#: Small, so that a small analysis collects rather than grows (a walk makes
#: ~5 dead nodes per live one); :meth:`Space.expect_rules` raises it.
LOOSE_UP_TO = 250_000
#: ... to this many slots per rule of the ruleset analysed in a space: a
#: big ruleset's table is big anyway, and each collection visits every
#: node (2-5 s at 15-28M nodes). 16M slots at 100k rules collects none in
#: a whole audit (s8-cudd, 100k audits, CPU of collections saved and peak
#: RSS: kube-iptables -7.6 s, 1644 -> 1738 MiB; kube-nftables -6.2 s,
#: 1393 -> 1462; project -6.6 s, 1470 -> 1521; mixed -2.0 s, 625 -> 662);
#: mid-sized rulesets pay little (mixed 20k: 2 -> 1 collections, 487 ->
#: 519 MiB; mixed 3k unchanged at 252 MiB). Same findings.
LOOSE_SLOTS_PER_RULE = 160
#: CUDD's computed table (operation cache) stops growing at this many
#: entries (~32 bytes each): unbounded, it reached 16M entries (0.5 GB) on a
#: 100k-rule kube-proxy audit for no measurable speed. 1M entries (32 MiB)
#: rather than 4M: peak RSS of a 20k-rule audit 583 -> 487 MiB (project
#: shape, 14.7 -> 14.0 s CPU) and 868 -> 772 MiB (kube-iptables, 91 -> 97 s
#: CPU at a higher load), the same findings. At 100k kube-iptables the
#: misses are not for want of room: the walk's cache lookups are 93M / 86M
#: / 82M / 82M with 0.5M / 1M / 2M / 4M entries (hit rate 40 % in each),
#: for -16 / 0 / +32 / +96 MiB.
MAX_CACHE_ENTRIES = 1 << 20
#: The operation cache of a space of the canonical order (:meth:`Space.canonical`:
#: witnesses and descriptions copy a set there now and then). dd's default
#: (256k entries, and CUDD grows the cache of a smaller start while the
#: ~550 variables are declared) put 20 MiB on a 20k-rule kube-iptables
#: audit's peak RSS, when RA201 (the audit's last to peak) asked its first
#: witness; 14 MiB now.
CANONICAL_CACHE_ENTRIES = 1 << 16
#: The soft memory mark of such a small space. CUDD sets aside 1/64 of a
#: manager's soft mark when it is made (its stash for running out of
#: memory): 20 MiB at :data:`SOFT_BDD_BYTES`, which the big audit's heap,
#: recycled by then, made resident (+16 MiB of RSS at RA201's first witness).
SMALL_SOFT_BYTES = 64 * 2**20
#: Memory a :class:`Space`'s BDD manager may take (read when a space is
#: made). Beyond it an operation fails and the analysis stops with
#: :class:`SpaceMemoryError`; docs/limits.md.
MAX_BDD_BYTES = 1536 * 2**20
#: CUDD's soft memory mark (dd's ``memory_estimate``; CUDD's ``maxmem`` is
#: 90 % of it): past it CUDD collects garbage once 0.2 dead nodes per
#: unique-table slot have piled up instead of 1 per slot. dd's default
#: (1 GiB: 922 MiB) sat just below what a 100k-rule kube-iptables audit
#: needs (924-994 MiB of CUDD), so its last 10M live nodes were paid with
#: collections that visited ~26M nodes to free ~2M: 4 collections,
#: 11.8-14.2 s CPU. At 1.25 GiB: 2 collections, 6.9-7.6 s; peak RSS
#: 1576 -> 1644 MiB. Project, kube-nftables and mixed 100k stay below both
#: marks (same collections). bench/bench_audit_shapes.py --stages.
SOFT_BDD_BYTES = 1280 * 2**20
#: :meth:`Space.collect_dead` collects CUDD's dead nodes when they are at
#: least this share of its node table ...
COLLECT_DEAD_SHARE = 0.25
#: ... once CUDD holds this much memory (nodes, table slots and cache,
#: ``Cudd_ReadMemoryInUse``): what issue 21's 800 MiB for an audit leaves
#: CUDD beside the rest at 100k rules (~360 MiB at kube-nftables': the
#: ruleset ~230, the walk's records, runs and caches), less the room the
#: table takes between two asks. Below, the memory a collection saves is
#: not worth its CPU. (512 MiB, for ~300 MiB beside, left kube-nftables
#: 100k at 890 MiB: its table reached 14.3M nodes before the first ask
#: above the mark.)
COLLECT_ABOVE_BYTES = 400 * 2**20


def _soft_bytes() -> int | None:
    """:data:`SOFT_BDD_BYTES`, at most :data:`MAX_BDD_BYTES`; None (dd's
    default) when it is not below the machine's memory, which dd refuses."""
    soft = min(SOFT_BDD_BYTES, MAX_BDD_BYTES)
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None
    return soft if soft < total else None


class SpaceMemoryError(MemoryError):
    """A packet-space operation needed more than :data:`MAX_BDD_BYTES`."""

    def __init__(self, limit: int):
        super().__init__(f"the packet space needed more than {limit // 2**20} MiB of BDD nodes "
                         "(ruleanalyzer.space.packetset.MAX_BDD_BYTES)")
        self.limit = limit


#: Run BDD work with Python's cyclic garbage collector paused (blocks nest).
#: Needed for correctness, not speed. dd.cudd hands every node CUDD returns
#: to ``wrap``, which allocates the Python ``Function`` *before* it calls
#: ``Cudd_Ref`` on the node. On CPython ≤ 3.11 that allocation may run the
#: cyclic collector there and then; if the collector frees the last
#: ``Function`` holding the very node being wrapped (the same BDD computed
#: again while its previous holder sits in a garbage cycle — the analyses'
#: records, rules and closures form cycles, and a fleet worker recomputes
#: the same sets host after host in a shared space), the node dies (its
#: children are dereferenced, CUDD counts it dead) and ``Cudd_Ref`` then
#: revives it half-way: a live node with dead children. CUDD's next garbage
#: collection aborts the process (``cuddGarbageCollect: problem in table 0
#: / dead count != deleted``). With the collector paused, ``Function``
#: objects are freed only by reference counting, which never happens inside
#: ``wrap``; garbage cycles wait until the block ends.
#: tests/space/test_gc_safety.py reproduces it; bench/stress_cudd.py checks
#: CUDD's consistency host after host.
cyclic_gc_paused = gc_paused

#: Every BDD manager a space made, held until nothing else holds it. A
#: ``Function`` holds its manager (``.bdd``), but when a space and its sets
#: end up in a garbage cycle, the collector clears that reference
#: (Cython's tp_clear) before it frees the ``Function``; if the manager's
#: last other holder goes meanwhile, dd frees the manager with nodes still
#: referenced: it prints ``AssertionError: Still N nodes referenced upon
#: shutdown`` and skips ``Cudd_Quit``, so CUDD's whole node table leaks.
#: Held here, the manager outlives those ``Function`` objects and is let
#: go by :func:`_let_go` after the collection (and whenever a space is
#: made), once this list is its only holder.
_MANAGERS: list = []


def _let_go(phase: str = "stop", info=None) -> None:
    """Drop the managers only :data:`_MANAGERS` still holds (a callback of
    :data:`gc.callbacks`, run after each collection)."""
    if phase == "stop" and _MANAGERS:
        # getrefcount(m) counts _MANAGERS, the loop's name and its own argument.
        free = {id(m) for m in _MANAGERS if sys.getrefcount(m) <= 3}
        for i in reversed(range(len(_MANAGERS))):  # in place: a space made meanwhile stays
            if id(_MANAGERS[i]) in free:
                del _MANAGERS[i]


gc.callbacks.append(_let_go)


def cofactors(u):
    """``(low, high)`` children of node ``u`` as functions. dd.cudd's
    ``.low``/``.high`` ignore a complemented edge into ``u``; undo that."""
    low, high = u.low, u.high
    if getattr(u, "negated", False):
        return ~low, ~high
    return low, high


class Space:
    """One packet space: a BDD manager whose variables follow ``layout``."""

    def __init__(self, layout: Layout | None = None, cache_entries: int | None = None):
        """``cache_entries``: a small space (:meth:`canonical`'s): CUDD's
        operation cache starts with and stays at most at this many entries
        (None: from dd's default, 256k, up to :data:`MAX_CACHE_ENTRIES`),
        and its soft memory mark is :data:`SMALL_SOFT_BYTES`."""
        self.layout = layout or Layout.from_names()
        cudd = BACKEND.endswith("cudd")
        soft = _soft_bytes() if cache_entries is None else SMALL_SOFT_BYTES
        _let_go()
        self.bdd = _bdd_backend.BDD(soft, cache_entries) if cudd else _bdd_backend.BDD()
        _MANAGERS.append(self.bdd)
        if cudd:
            # Our field order is chosen on purpose and the describer walks it.
            self.bdd.configure(reordering=False)
            # Collect garbage rather than grow the node table while it is
            # small: a walk makes ~5 dead nodes per live one, and CUDD's
            # default lets the table grow to millions first (RSS, and slower
            # lookups in a bigger table).
            self.bdd.configure(loose_up_to=LOOSE_UP_TO)
            self.bdd.configure(max_cache_hard=cache_entries or MAX_CACHE_ENTRIES)
            self.bdd.configure(max_memory=MAX_BDD_BYTES)
        self.max_bytes = MAX_BDD_BYTES
        self.bdd.declare(*self.layout.variables())
        self.true = self.bdd.true
        self.false = self.bdd.false
        self._cube_cache: dict = {}
        self._lit_cache: dict = {}
        self._exist_cache: dict = {}
        self._fast_exist = BACKEND.endswith("cudd")
        self._c_cube = cube_for(self.bdd)
        self._index_cache: dict[str, list[int]] = {}
        with cyclic_gc_paused():
            self.valid = self._validity()
        self._header_cache: dict[str, object] = {}
        self._leq = leq_for(self.bdd)
        self._count = count_for(self.bdd)
        self._collector = collector_for(self.bdd)

    def expect_rules(self, rules: int) -> None:
        """Get ready for analysing ``rules`` rules here: CUDD lets the unique
        table grow to :data:`LOOSE_SLOTS_PER_RULE` slots per rule before it
        collects garbage eagerly (never lowered: a space is shared by
        rulesets of one layout). The answers do not depend on it."""
        if BACKEND.endswith("cudd"):
            want = LOOSE_SLOTS_PER_RULE * rules
            if want > self.bdd.configure()["loose_up_to"]:
                self.bdd.configure(loose_up_to=want)

    def collect_dead(self, share: float | None = None) -> bool:
        """Collect CUDD's dead nodes now if they are at least
        :data:`COLLECT_DEAD_SHARE` of the node table and CUDD holds at least
        :data:`COLLECT_ABOVE_BYTES`; whether it did. Asked where an analysis
        has just let many sets go and goes on making nodes.

        CUDD's table only grows: a node freed by a collection is made again
        in its room, while a dead one keeps its room until CUDD collects,
        which a big ruleset's :data:`LOOSE_SLOTS_PER_RULE` puts off to ~4
        dead nodes per slot (never, in a 100k-rule audit). The nodes made
        after a collection take no new memory up to as many as it freed.
        It visits every node of the table (~0.09 s per million), so it is
        worth it only where the dead are a good share of a big table. The
        answers do not depend on it (a dead node is one no set holds)."""
        collect = self._collector
        return collect is not None and collect(COLLECT_DEAD_SHARE if share is None else share,
                                               COLLECT_ABOVE_BYTES)

    # -- building blocks (raw BDD nodes) -----------------------------------

    def spec(self, name: str) -> FieldSpec:
        return self.layout.fields[name]

    def eq(self, name: str, value: int):
        """Field ``name`` equals ``value``."""
        spec = self.spec(name)
        if value < 0 or value >= (1 << spec.width):
            return self.false
        return self._cube(spec, value, range(spec.width))

    def prefix(self, name: str, value: int, length: int, width: int | None = None):
        """The top ``length`` bits of the low ``width`` bits of field ``name``
        equal those of ``value``; bits above ``width`` are left alone."""
        width = width or self.spec(name).width
        return self._cube(self.spec(name), value, range(width - length, width))

    def masked(self, name: str, mask: int, value: int):
        """``field & mask == value & mask``."""
        spec = self.spec(name)
        return self._cube(spec, value, [b for b in range(spec.width) if mask >> b & 1])

    def _cube(self, spec: FieldSpec, value: int, bits):
        """The conjunction of bit ``b`` of ``spec`` being ``value``'s, for
        ``bits`` (ascending: least significant bits lie lowest, so each
        conjunction adds one node on top). Building it literal by literal
        beats ``bdd.cube``, which walks every declared variable."""
        # (a range keys itself: hashing it does not walk its 128 bits)
        key = (spec.name, value, bits if isinstance(bits, range) else tuple(bits))
        node = self._cube_cache.get(key)
        if node is None:
            node = self.cube_of(((spec.name, value, key[2]),))
            if len(self._cube_cache) > 100_000:
                self._cube_cache.clear()
            self._cube_cache[key] = node
        return node

    def cube_of(self, parts, extra=()):
        """The conjunction of bit ``b`` of field ``name`` being ``value``'s,
        for each ``(name, value, bits)`` of ``parts`` (fields apart), and
        of the variables ``extra`` (``(name, 0 or 1)``): made in one CUDD
        call over the literals where it is at hand (:func:`cube_for`; a
        field's bits lie at consecutive variable indices, most significant
        first, so a run of them is one segment, its values written as one
        slice of bytes: no Python step per literal), else literal by
        literal from the lowest bits up."""
        make = self._c_cube
        if make is not None:
            segments = []
            for name, value, bits in parts:
                n = len(bits)
                if not n:
                    continue
                index = self._bit_index(name)
                lo, hi = bits[0], bits[-1]
                if type(bits) is range and bits.step == 1 and index[lo] - index[hi] == n - 1:
                    # bit hi-1 .. lo at index[hi] .. index[lo]: the bits MSB first, a
                    # byte's literals at a time (no text made and rewritten twice)
                    size = n + 7 >> 3
                    literals = b"".join(map(_BYTE_LITERALS.__getitem__,
                                            (value >> lo & (1 << n) - 1).to_bytes(size, "big")))
                    segments.append((index[hi], index[lo] + 1, literals[4 * (8 * size - n):]))
                else:
                    segments += [(index[b], index[b] + 1, _ONE if value >> b & 1 else _ZERO) for b in bits]
            if extra:
                of = self.bdd._index_of_var
                segments += [(of[var], of[var] + 1, _ONE if bit else _ZERO) for var, bit in extra]
            if len(segments) > 1:
                segments.sort()  # (top first: CUDD adds each literal on top of those below)
            node = make(segments)
            if node is not None:
                return node
        node = self.true
        for name, value, bits in parts:
            lits = self._literals(self.spec(name))
            for b in bits:
                node = lits[b][value >> b & 1] & node
        for var, bit in extra:
            x = self.bdd.var(var)
            node = (x if bit else ~x) & node
        return node

    def _bit_index(self, name: str) -> list[int]:
        """The BDD variable index of each bit of field ``name``."""
        index = self._index_cache.get(name)
        if index is None:
            of = self.bdd._index_of_var
            index = self._index_cache[name] = [of[v] for v in self.spec(name).bit_vars]
        return index

    def _literals(self, spec: FieldSpec):
        lits = self._lit_cache.get(spec.name)
        if lits is None:
            lits = []
            for name in spec.bit_vars:
                x = self.bdd.var(name)
                lits.append((~x, x))
            self._lit_cache[spec.name] = lits
        return lits

    def exist(self, names, node):
        """``node`` with the variables ``names`` quantified away."""
        key = tuple(names)
        if not key:
            return node
        cube = self._exist_cache.get(key)
        if cube is None:
            cube = self._exist_cache[key] = self.bdd.cube(set(key))
        if self._fast_exist:
            return self.bdd.apply("exists", cube, node)
        return self.bdd.exist(set(key), node)

    def and_exist(self, names, a, b):
        """``exist(names, a & b)`` without making ``a & b`` where CUDD's
        and-abstraction is at hand (a big set met and projected at once)."""
        if not names:
            return a & b
        if self._fast_exist:
            return _bdd_backend.and_exists(a, b, names)
        return self.exist(names, a & b)

    def canonical(self, node):
        """``(space, node)``: ``node`` copied into a space over the same
        fields in the layout's canonical order (``Layout.canonical``), where
        witnesses and descriptions read it, so that a layout moving fields
        for the walk's speed changes no finding's text; this space and
        ``node`` itself where its order is the canonical one."""
        layout = self.layout.canonical()
        if layout is self.layout:
            return self, node
        other = self.__dict__.get("_canonical")
        if other is None:
            other = self.__dict__["_canonical"] = Space(layout, CANONICAL_CACHE_ENTRIES)
        return other, self.bdd.copy(node, other.bdd)

    def exhausted(self, exc: BaseException) -> bool:
        """Is ``exc`` CUDD failing for want of memory (dd reports a NULL
        node or that CUDD ran out of memory)?"""
        text = str(exc)
        return isinstance(exc, (ValueError, RuntimeError)) and ("NULL" in text or "out of memory" in text)

    def disjoint(self, a, b) -> bool:
        """``a ∧ b`` is empty (raw nodes), without building it where CUDD's
        inclusion test is at hand."""
        if self._leq is not None:
            return self._leq(a, ~b)
        return (a & b) == self.false

    def has_valid(self, node) -> bool:
        """``node`` holds a valid packet."""
        return node != self.false and not self.disjoint(node, self.valid)

    def at_least(self, name: str, lo: int, width: int | None = None):
        """``field >= lo``, built bit by bit from the LSB (no enumeration).
        With ``width``, of the field's low ``width`` bits only, the bits
        above left alone (an IPv4 address in the 128-bit address fields,
        as :meth:`prefix` leaves them)."""
        spec = self.spec(name)
        width = spec.width if width is None else width
        if lo <= 0:
            return self.true
        if lo >= (1 << width):
            return self.false
        node = self.true  # suffix below the current bit: ">= lo's low bits"
        for b, (_nx, x) in enumerate(self._literals(spec)[:width]):
            node = (x & node) if lo >> b & 1 else (x | node)
        return node

    def at_most(self, name: str, hi: int, width: int | None = None):
        """``field <= hi``, built bit by bit from the LSB (no enumeration);
        ``width`` as for :meth:`at_least`."""
        spec = self.spec(name)
        width = spec.width if width is None else width
        if hi < 0:
            return self.false
        if hi >= (1 << width) - 1:
            return self.true
        return self._le(spec, hi, width)

    def _le(self, spec: FieldSpec, hi: int, width: int | None = None):
        node = self.true  # "low bits <= hi's low bits"
        for b, (nx, _x) in enumerate(self._literals(spec)[:width]):
            node = (nx | node) if hi >> b & 1 else (nx & node)
        return node

    def between(self, name: str, lo: int, hi: int):
        """``lo <= field <= hi``."""
        if lo > hi:
            return self.false
        if lo == hi:
            return self.eq(name, lo)
        return self.at_least(name, lo) & self.at_most(name, hi)

    def one_of(self, name: str, codes) -> object:
        node = self.false
        for c in codes:
            node = node | self.eq(name, c)
        return node

    def header(self, name: str):
        """Packets that have field ``name`` at all (ports need a port
        protocol, flags need TCP, ICMP fields need ICMP of the family)."""
        if name not in self._header_cache:
            # A non-first fragment carries no transport header at all.
            whole = self.eq("fragment", 0)
            if name in ("sport", "dport"):
                node = self.one_of("proto", sorted(PORT_PROTOCOLS)) & whole
            elif name in ("flags",):
                node = self.eq("proto", TCP) & whole
            elif name in ("icmp_type", "icmp_code"):
                node = self.icmp & whole
            elif name in CONNTRACK_FIELDS:
                node = self.tracked
            elif name in ("ipfrag", *IPV4_ONLY):
                node = self.family(4)
            elif name in IPV6_ONLY:
                node = self.family(6)
            else:
                node = self.true
            self._header_cache[name] = node
        return self._header_cache[name]

    @property
    def tracked(self):
        """Packets with a connection entry (not INVALID, not UNTRACKED): only
        they have a ctmark, ct status and direction."""
        names = self.spec("state").names
        return ~(self.eq("state", names.index("invalid")) | self.eq("state", names.index("untracked")))

    @property
    def icmp(self):
        """ICMP for IPv4, ICMPv6 for IPv6."""
        return (self.eq("family", 0) & self.eq("proto", ICMP)) | (self.eq("family", 1) & self.eq("proto", ICMPV6))

    def family(self, version: int):
        """IPv4 (4) or IPv6 (6) packets (raw node)."""
        return self.eq("family", 1 if version == 6 else 0)

    def _validity(self):
        """The conjunction of :meth:`_validity_clauses`."""
        self._valid_clauses = self._validity_clauses()
        self._valid_for: dict[str, object] = {}
        valid = self.true
        for _, clause in self._valid_clauses:
            valid &= clause
        return valid

    def _validity_clauses(self) -> list[tuple[frozenset, object]]:
        """``(fields it mentions, clause)`` for each part of the validity
        constraint."""
        clauses = []
        v4_addrs = self.true
        for name in ("src", "dst"):
            v4_addrs &= self.prefix(name, 0, 96)
        clauses.append((frozenset({"family", "src", "dst"}), ~self.eq("family", 0) | v4_addrs))
        whole = self.eq("fragment", 0)
        ports = self.one_of("proto", sorted(PORT_PROTOCOLS)) & whole
        clauses.append((frozenset({"proto", "fragment", "sport", "dport"}),
                        ports | (self.eq("sport", 0) & self.eq("dport", 0))))
        clauses.append((frozenset({"proto", "fragment", "flags"}),
                        (self.eq("proto", TCP) & whole) | self.eq("flags", 0)))
        clauses.append((frozenset({"family", "proto", "fragment", "icmp_type", "icmp_code"}),
                        (self.icmp & whole) | (self.eq("icmp_type", 0) & self.eq("icmp_code", 0))))
        # A non-first fragment is one with an offset; an IPv6 fragment has a
        # fragment (extension) header; each version's own fields are 0 in the other.
        clauses.append((frozenset({"fragment", "frag_off"}),
                        (self.eq("fragment", 0) & self.eq("frag_off", 0))
                        | (self.eq("fragment", 1) & ~self.eq("frag_off", 0))))
        v4, v6 = self.eq("family", 0), self.eq("family", 1)
        for name in IPV4_ONLY:
            clauses.append((frozenset({"family", name}), v4 | self.eq(name, 0)))
        for name in IPV6_ONLY:
            clauses.append((frozenset({"family", name}), v6 | self.eq(name, 0)))
        clauses.append((frozenset({"family", "frag_off", "mf", "ext_headers"}),
                        v4 | (self.eq("frag_off", 0) & self.eq("mf", 0)) | self.eq("ext_headers", 1)))
        untracked = ~self.tracked
        no_entry = self.eq("ctmark", 0) & self.eq("ct_direction", 0)
        for name in self.spec("ct_status").names:
            no_entry &= ~self.bdd.var(f"ct_status:{name}")
        clauses.append((frozenset({"state", "ctmark", "ct_direction", "ct_status"}), ~untracked | no_entry))
        for spec in self.layout.fields.values():
            if spec.kind in ("enum", "iface") and spec.size < (1 << spec.width):
                clauses.append((frozenset({spec.name}), self._le(spec, spec.size - 1)))
        return clauses

    def valid_for(self, field: str):
        """The validity clauses that mention ``field``: intersecting a set
        with them before quantifying ``field`` away makes the image of the
        set, intersected with :attr:`valid`, the image of its valid packets."""
        node = self._valid_for.get(field)
        if node is None:
            node = self.true
            for fields, clause in self._valid_clauses:
                if field in fields:
                    node &= clause
            self._valid_for[field] = node
        return node

    def conntrack_consistent(self, untracked=None, dnat: bool = True, snat: bool = True):
        """Packets whose connection-tracking state the kernel could give them
        (raw node; ``engine.conntrack``): a NEW packet may open a connection
        (a SYN or a bare ACK, an ICMP request, any other whole packet — never
        a SYN-ACK, an ICMP error, a lone FIN or RST, nor a non-first
        fragment); a TCP flag combination conntrack refuses is INVALID or
        UNTRACKED; ICMPv6 neighbour discovery and MLD are UNTRACKED and
        nothing else is, except packets in ``untracked`` (those a NOTRACK
        can fire on; None: any packet). Without ``dnat``/``snat`` (nothing
        in the ruleset translates addresses) no connection carries that
        status."""
        names = self.spec("state").names
        state = {n: self.eq("state", names.index(n)) for n in ("new", "invalid", "untracked")}
        tcp = self.header("flags")
        valid_flags = self.false
        for v in _VALID_FLAGS:
            valid_flags |= self.masked("flags", _OPENING_FLAGS_MASK, v)
        opening_flags = self.false
        for v in _OPENING_FLAGS:
            opening_flags |= self.masked("flags", _OPENING_FLAGS_MASK, v)
        whole = self.eq("fragment", 0)
        icmp4 = self.eq("family", 0) & self.eq("proto", ICMP) & whole
        icmp6 = self.eq("family", 1) & self.eq("proto", ICMPV6) & whole
        nd = icmp6 & self.one_of("icmp_type", ICMPV6_UNTRACKED)
        opens = (whole & ~nd & (~tcp | opening_flags)
                 & (~icmp4 | self.one_of("icmp_type", _ICMP_OPENING))
                 & (~icmp6 | self.one_of("icmp_type", _ICMPV6_OPENING)))
        node = (~tcp | valid_flags | state["invalid"] | state["untracked"]) & (~state["new"] | opens)
        if untracked is not None:
            node &= ~state["untracked"] | nd | untracked
        node &= ~nd | state["untracked"]
        for status, possible in (("dnat", dnat), ("snat", snat)):
            var = f"ct_status:{status}"
            if not possible and var in self.bdd.vars:
                node &= ~self.bdd.var(var)
        return node

    # -- sets ----------------------------------------------------------------

    def wrap(self, node) -> "PacketSet":
        return PacketSet(self, node & self.valid)

    def empty(self) -> "PacketSet":
        return PacketSet(self, self.false)

    def all(self) -> "PacketSet":
        """Every valid packet."""
        return PacketSet(self, self.valid)


class PacketSet:
    """An immutable set of valid packets of one :class:`Space`.

    ``|`` union, ``&`` intersection, ``-`` difference, ``~`` complement
    within the valid packets; ``==`` is set equality (canonical BDDs).
    """

    __slots__ = ("space", "node")

    def __init__(self, space: Space, node):
        self.space = space
        self.node = node

    def _other(self, other: "PacketSet"):
        if other.space is not self.space:
            raise ValueError("packet sets from different spaces cannot be combined")
        return other.node

    def __or__(self, other: "PacketSet") -> "PacketSet":
        return PacketSet(self.space, self.node | self._other(other))

    def __and__(self, other: "PacketSet") -> "PacketSet":
        return PacketSet(self.space, self.node & self._other(other))

    def __sub__(self, other: "PacketSet") -> "PacketSet":
        return PacketSet(self.space, self.node & ~self._other(other))

    def __invert__(self) -> "PacketSet":
        return PacketSet(self.space, self.space.valid & ~self.node)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PacketSet) and other.space is self.space and other.node == self.node

    def __hash__(self) -> int:
        return hash(self.node)

    def __le__(self, other: "PacketSet") -> bool:
        """Subset."""
        return (self.node & ~self._other(other)) == self.space.false

    def __bool__(self) -> bool:
        return not self.is_empty()

    def is_empty(self) -> bool:
        return self.node == self.space.false

    def intersects(self, other: "PacketSet") -> bool:
        return (self.node & self._other(other)) != self.space.false

    def is_all(self) -> bool:
        """Every valid packet?"""
        return self.node == self.space.valid

    def size(self) -> float:
        """How many distinct packets (header vectors) the set holds; a float,
        since spaces are astronomically large."""
        nvars = len(self.space.layout.variables())
        if self.space._count is not None:
            return self.space._count(self.node, nvars)
        return float(self.space.bdd.count(self.node, nvars=nvars))

    def __repr__(self) -> str:
        from .describe import describe
        return f"PacketSet({'; '.join(describe(self, limit=3))})"
