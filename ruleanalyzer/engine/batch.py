"""Many packets through one ruleset (``query --packets``, ``diff --flows``):
each hook's decision compiled once, per chain, and packets answered from it.

The concrete engine (:class:`~ruleanalyzer.engine.evaluate.Evaluator`) is
deterministic: what it does to a packet follows from the outcome of every
match it evaluates and from fields no rule abstracts over. So packets are
split in two parts:

- the *root key*: every field of the packet but its addresses, ports and
  interfaces (protocol, hook, state, marks, flags …), plus what the engine
  reads of those outside the rules (multicast, broadcast, loopback, the
  unspecified address; whether a port or interface is given at all);
- per chain the packet enters, one *chain key*: for every group of matches
  on addresses, ports and interfaces — a rule's plain conjunction is one
  group, a concatenation or a verdict map's key one, any other such match
  inside a set one of its own, and each constant a NAT of the chain sets
  (the engine compares the packet's own value with it) one — whether the
  group holds. It is compiled once per chain: per field, the boundaries of
  every network and port range named cut the field into atoms, and each
  atom maps to the bit mask of the groups it satisfies (interfaces: per
  name); the chain key is the AND of the masks of the packet's atoms (a
  handful of bisections), keeping only the groups that can matter on this
  way: not those of a rule (or conjunction) another match of which is
  false here on a field no earlier rule may change, nor those after a rule
  that always ends the chain, nor those after the first group that holds
  of a rule that then surely matches and leaves the chain (ends it, or
  jumps: where the jump comes back, the rest of the chain is the key of a
  node of its own, so what a chain that drops the packet was jumped to
  from does not tell packets apart). A field the packet does not have (no port,
  an interface not given) is alike for every packet of a root key: its
  matches count as holding, and the other fields decide.

Two packets with the same root key that enter a chain with the same chain
key see the same outcome of every match of that chain, so the engine does
the same thing to both there, enters the same next chain, and so on: the
answers are the same but for the packet (swapped in, field by field where
NAT rewrote it). The compiled decision is a tree built lazily: its root is
keyed by the root key, each inner node is a chain entry keyed by its chain
key (a field NAT set to a constant adds nothing: it is the same for every
packet that comes this way), and each leaf holds the engine's answer for
the first packet that came that way. A packet that falls off the tree is
evaluated by the engine — recording the chains it enters, and skipping the
rules and verdict-map branches the masks rule out for it — and grows it.
Traces, deciding rules, depends-on and alternatives are the engine's own.

Only where this is exact by construction: without a host snapshot (routing
reads the addresses), without runtime set contents, and without rules that
set or copy an address, port or interface. Otherwise every packet goes to
the engine; so does a packet whose evaluation may come near the engine's
step limit or translates one field twice (the second NAT compares with the
first's constant), and it is not noted in the tree.
"""

from __future__ import annotations

import ipaddress
from bisect import bisect_right
from dataclasses import fields as dataclass_fields
from dataclasses import replace
from operator import attrgetter

from ..gcpause import gc_paused
from ..model import (SNAT_PORT_KINDS, Accept, AddressMatch, AllOf, AnyOf, Chain, Dispatch, Drop, EcnStrip, Goto, IntMatch,
                     InterfaceMatch, Jump, Nat, Notrack, Packet, Queue, Reject, Return, Ruleset, SetField,
                     UnknownAction)
from .evaluate import MAX_STEPS, Evaluator
from .match import CONNTRACK_FIELDS, AddressTypes, View, compile_match, interface_matches
from .result import Result

#: The fields abstracted per chain (the others are part of the root key).
ABSTRACT = ("src", "dst", "sport", "dport", "iif", "oif")
_INTERFACES = ("iif", "oif")
_OTHER_FIELDS = tuple(f.name for f in dataclass_fields(Packet) if f.name not in ABSTRACT + ("id",))
#: The packet's other fields as one tuple (part of its root key).
_others = attrgetter(*_OTHER_FIELDS)
#: A chain's masks may take this many bits per field before the chain keys
#: that field by its atom instead (exact too, only finer): 8 MiB.
MASK_BITS_BUDGET = 64 << 20
#: While the tree grows, a chain (verdict map) of this many rules
#: (branches) or more is indexed for the path; a single rule is scanned.
MIN_INDEXED_CHAIN = 2


def _address_class(version: int, value: int) -> int:
    """What the engine reads of an address outside the rules: IPv4
    broadcast and multicast (``make_view``), loopback (``-i lo``), the
    unspecified address and IPv6 multicast (``addrtype``)."""
    if version == 4:
        if value >> 24 == 127:
            return 1
        if value >> 28 == 0xE:
            return 2
        if value == 0xFFFFFFFF:
            return 3
    elif value >> 120 == 0xFF:
        return 2
    elif value == 1:
        return 1
    return 4 if value == 0 else 0


address_class = _address_class


def _abstract_leaf(m) -> bool:
    t = type(m)
    field = getattr(m, "field", None)
    return ((t is AddressMatch and field in ("src", "dst")) or (t is IntMatch and field in ("sport", "dport"))
            or (t is InterfaceMatch and field in _INTERFACES))


def _walk(match, out: list) -> None:
    if isinstance(match, (AllOf, AnyOf)):
        for m in match.matches:
            _walk(m, out)
    else:
        out.append(match)


class _FieldIndex:
    """One address or port field of one chain: atom boundaries and per atom
    the mask of the groups that hold (``exact``: no masks, the atom's index
    is the key)."""

    __slots__ = ("bounds", "masks", "none", "exact")

    def __init__(self, bounds, masks, none, exact=False):
        self.bounds, self.masks, self.none, self.exact = bounds, masks, none, exact

    def part(self, value):
        """The mask for ``value`` (an int) or, exact, its key part (a tuple)."""
        if value is None:
            return self.none
        if self.exact:
            return (bisect_right(self.bounds, value),)
        return self.masks[bisect_right(self.bounds, value)]


class _NameIndex:
    """One interface field of one chain: per interface name, the mask of the
    groups that hold, worked out the first time the name comes."""

    __slots__ = ("leaves", "base", "masks", "none")

    def __init__(self, groups: list[list], field: str):
        self.base = 0
        self.leaves = []
        for g, group in enumerate(groups):
            mine = [m for m in group if m.field == field]
            if mine:
                self.leaves.append((g, mine))
            else:
                self.base |= 1 << g
        self.none = -1  # an interface not given: the root key holds it
        self.masks: dict = {}

    def part(self, value):
        mask = self.masks.get(value)
        if mask is None:
            if value is None or value.__class__ is not str:
                return self.none
            mask = self.base
            for g, mine in self.leaves:
                if all(any(interface_matches(p, value) for p in m.names) != m.negate for m in mine):
                    mask |= 1 << g
            self.masks[value] = mask
        return mask


class _RawIndex:
    """A field a match this module does not know reads: the value is the key."""

    __slots__ = ()

    @staticmethod
    def part(value):
        return (value,)


def _intervals(leaf, version: int) -> list[tuple[int, int]]:
    if type(leaf) is AddressMatch:
        return [(int(n.network_address), int(n.network_address) + n.num_addresses)
                for n in leaf.networks if n.version == version]
    return [(lo, hi + 1) for lo, hi in leaf.ranges]


def _field_index(groups: list[list], field: str, version: int) -> _FieldIndex:
    """Sweep the field's boundaries, keeping per group how many of its
    leaves on ``field`` are false; a group's bit is set while none is."""
    ngroups = len(groups)
    base = 0
    leaves = []  # (group, leaf)
    for g, group in enumerate(groups):
        mine = [m for m in group if m.field == field]
        if not mine:
            base |= 1 << g
        leaves.extend((g, m) for m in mine)
    none = -1  # the root key holds a missing field: every group as if it held there
    if not leaves:
        return _FieldIndex([], [base], none)
    events: dict[int, list] = {}
    for k, (g, m) in enumerate(leaves):
        for lo, hi in _intervals(m, version):
            events.setdefault(lo, []).append((k, 1))
            events.setdefault(hi, []).append((k, -1))
    cover = [0] * len(leaves)
    truth = [m.negate for _, m in leaves]  # covered by nothing: true only when negated
    false_count = [0] * ngroups
    for k, (g, m) in enumerate(leaves):
        if not truth[k]:
            false_count[g] += 1
    mask = base
    for g in range(ngroups):
        if not base >> g & 1 and false_count[g] == 0:
            mask |= 1 << g
    points = sorted(events)
    if len(points) * ngroups > MASK_BITS_BUDGET:
        return _FieldIndex(points, None, -1, exact=True)
    bounds: list[int] = []
    masks = [mask]
    for point in points:
        for k, step in events[point]:
            before = cover[k] > 0
            cover[k] += step
            after = cover[k] > 0
            if before == after:
                continue
            g = leaves[k][0]
            was_true = truth[k]
            truth[k] = after != leaves[k][1].negate
            if truth[k] == was_true:
                continue
            if truth[k]:
                false_count[g] -= 1
                if false_count[g] == 0:
                    mask |= 1 << g
            else:
                false_count[g] += 1
                if false_count[g] == 1:
                    mask &= ~(1 << g)
        if mask != masks[-1]:
            if point == 0:
                masks[-1] = mask
            else:
                bounds.append(point)
                masks.append(mask)
    return _FieldIndex(bounds, masks, none)


def _reads_abstract(match) -> bool:
    out: list = []
    _walk(match, out)
    return any(getattr(leaf, "field", None) in ABSTRACT for leaf in out)


#: Actions after which the engine goes on with no later rule of the chain.
_ENDS = (Accept, Drop, Reject, Return, Goto, Nat, Queue, UnknownAction)
#: The view fields a rule's other matches may read (all but the abstracted ones).
_VIEW_REST = tuple(name for name in View.__slots__ if name not in ABSTRACT + ("src_type", "dst_type"))
_view_rest = attrgetter(*_VIEW_REST)


class _Plan:
    """A chain's compiled matches on addresses, ports and interfaces, per
    family. ``rules`` are the chain's rules (or a device guard's match) as
    ``(matches, actions)``; ``changed[r]`` names the fields the rules before
    rule ``r`` may change (a mark, the state, flags) for it."""

    def __init__(self, owner, rules, changed: list):
        self.owner = owner  # keeps the id it is filed under its own
        groups: list[list] = []
        raw: set[str] = set()

        def loose(match) -> None:
            """Groups for a match that is not a plain abstract leaf: the
            abstract parts of a conjunction (a concatenation, a verdict
            map's key) hold together, any other abstract leaf on its own."""
            if isinstance(match, AllOf) and not match.negate:
                together = [m for m in match.matches if _abstract_leaf(m)]
                if together:
                    # its other parts on fields no rule abstracts: when one
                    # is false, so is the conjunction (see relevant)
                    others = tuple((compile_match(m), _reads(m)) for m in match.matches
                                   if not _abstract_leaf(m) and not _reads_abstract(m))
                    if others:
                        conditional.append((1 << len(groups), others))
                    groups.append(together)
                for m in match.matches:
                    if not _abstract_leaf(m):
                        loose(m)
                return
            out: list = []
            _walk(match, out)
            for leaf in out:
                if _abstract_leaf(leaf):
                    groups.append([leaf])
                elif getattr(leaf, "field", None) in ABSTRACT:
                    raw.add(leaf.field)  # a match this module does not know reads it

        #: per rule: (its first group, its groups' bits, predicates of its matches that read no
        #: abstracted field, does it have other matches, does it end the chain, its conditional groups)
        self.rules = []
        always: list[int] = []  # rules without a plain group: no mask rules them out
        plain_rules: dict[int, int] = {}  # plain group -> its rule
        leaves: list[bool] = []
        for matches, actions in rules:
            first = len(groups)
            conditional: list = []  # (bit, parts) of its conjunctions with other parts
            plain = []
            rest = []
            for m in matches:
                if _abstract_leaf(m):
                    plain.append(m)
                elif _reads_abstract(m):
                    loose(m)
                else:
                    rest.append((compile_match(m), _reads(m)))
            if plain:
                plain_rules[len(groups)] = len(self.rules)
                groups.append(plain)
            else:
                always.append(len(self.rules))
            for action in actions:
                if isinstance(action, Dispatch):
                    for m, _ in action.branches:
                        loose(m)
            bits = ((1 << len(groups)) - 1) ^ ((1 << first) - 1)
            self.rules.append((first, bits, tuple(rest), len(rest) < len(matches),
                               bool(actions) and isinstance(actions[0], _ENDS), tuple(conditional)))
            # where its plain group is its only one: the rule matches where
            # that group holds and its other matches do, and then it leaves
            # the chain (for good, or to the chain it jumps to, which comes
            # back, if at all, to the next rule: a way of its own)
            leaves.append(bool(actions) and isinstance(actions[0], _ENDS + (Jump,))
                          and bits == 1 << first and first in plain_rules)
        # NAT here sets a field to a constant, and the engine compares the
        # packet's own value with it (did DNAT change the destination? which
        # fields of the answer's packet were rewritten?): each constant is a
        # group of its own, always part of the key
        first = len(groups)
        for _, actions in rules:
            for action in _actions_of(actions):
                if isinstance(action, Nat):
                    translated = action.kind in ("dnat", "redirect")
                    if action.to_addr is not None:
                        net = ipaddress.ip_network(action.to_addr)
                        groups.append([AddressMatch("dst" if translated else "src", (net,))])
                    if action.to_port is not None:
                        port = action.to_port
                        groups.append([IntMatch("dport" if translated else "sport", ((port, port),))])
                    elif action.random and not translated:
                        # the ports a random SNAT picks from follow the
                        # packet's own (below 512, below 1024, the rest)
                        groups += [[IntMatch("sport", ((low, high),))] for low, high, _, _ in SNAT_PORT_KINDS[:-1]]
        self._nat_bits = ((1 << len(groups)) - 1) ^ ((1 << first) - 1)
        self.changed = changed
        read = {m.field for group in groups for m in group} | raw
        self.reads = tuple(f for f in ABSTRACT if f in read)
        self.groups = groups
        self.raw = raw
        self._per_family: dict[int, dict] = {}
        self._relevant: dict = {}
        self._always = always
        self._plain_rules = plain_rules
        self._plain = sum(1 << g for g in plain_rules)
        self._candidates: dict = {}
        self._leaves = leaves
        self._unsure: dict = {}
        self._narrowed: dict = {}
        self._parts: dict = {}  # per family: (getter of a field of the view, its index's part) per field read

    def candidates(self, view) -> "_Candidates | None":
        """The rules a path with ``view`` may match (a rule whose plain
        group does not hold cannot), as one indexed run the engine takes
        (:meth:`Evaluator._runs`); None when no field rules any out."""
        parts = self._parts.get(view.family)
        if parts is None:
            parts = self._parts[view.family] = tuple((attrgetter(field), self.index(field, view.family).part)
                                                     for field in self.reads)
        mask = -1
        for value, part in parts:
            part = part(value(view))
            if part.__class__ is int:
                mask &= part
        mask &= self._plain
        if mask == self._plain:
            return None
        hit = self._candidates.get(mask)
        if hit is None:
            if len(self._candidates) > 4096:
                self._candidates.clear()
            if mask.bit_count() <= 64:
                found = []
                rest = mask
                while rest:
                    low = rest & -rest
                    found.append(self._plain_rules[low.bit_length() - 1])
                    rest ^= low
            else:
                bits = bin(mask)[:1:-1]
                found = [self._plain_rules[g] for g, bit in enumerate(bits) if bit == "1"]
            hit = self._candidates[mask] = _Candidates(sorted(found + self._always))
        return hit

    def index(self, field: str, family: int):
        per = self._per_family.get(family)
        if per is None:
            per = self._per_family[family] = {}
        entry = per.get(field)
        if entry is None:
            if field in self.raw:
                entry = _RawIndex()
            elif field in _INTERFACES:
                entry = _NameIndex(self.groups, field)
            else:
                entry = _field_index(self.groups, field, family if field in ("src", "dst") else 0)
            per[field] = entry
        return entry

    def relevant(self, view, start: int = 0) -> tuple[int, int]:
        """The groups whose outcome can matter to a packet entering with
        ``view`` (at rule ``start``): not those of a rule before ``start``,
        nor of a rule another of its matches rules out, nor those after a
        rule that always ends the chain — by the matches on fields no rule
        before may change. Alike for every packet that enters this way, so
        it masks the chain key. Second, the *leaving* groups among them:
        those of a rule that surely matches where its group holds and
        leaves the chain (see :meth:`_Node.key`)."""
        types = tuple((t.exactly, t.not_any) if isinstance(t, AddressTypes) else t
                      for t in (view.src_type, view.dst_type))  # alike for every address of a kind
        key = (_view_rest(view), types, _address_class(view.family, view.src),
               _address_class(view.family, view.dst), start)
        found = self._relevant.get(key)
        if found is not None:
            return found
        mask = leaving = 0
        for r in range(start, len(self.rules)):
            first, bits, preds, other, ends, conditional = self.rules[r]
            changed = self.changed[r]
            outcome = _holds(preds, view, changed)
            if outcome is False:
                continue
            for bit, parts in conditional:
                if _holds(parts, view, changed) is False:
                    bits &= ~bit
            mask |= bits
            if outcome is True:
                if not bits and not other and ends:
                    break  # no later rule is reached
                if self._leaves[r]:
                    leaving |= bits
        mask |= self._nat_bits
        found = self._relevant[key] = (mask, leaving)
        return found

    def narrowed(self, bounds: list, masks: list, relevant: int) -> tuple[list, list]:
        """A bisected read's atoms as a key masked by ``relevant`` sees
        them: each mask ANDed with it, and neighbouring atoms with the same
        mask then joined (``bisect_right`` on the bounds left finds the
        joined atom of a value: the same mask, so the same key)."""
        key = (id(masks), relevant)
        found = self._narrowed.get(key)
        if found is None:
            kept: list = []
            seen = [masks[0] & relevant]
            for bound, mask in zip(bounds, masks[1:]):
                mask &= relevant
                if mask != seen[-1]:
                    kept.append(bound)
                    seen.append(mask)
            found = self._narrowed[key] = (kept, seen, masks)  # (the masks keep their id theirs)
        return found[0], found[1]

    def unsure(self, reads, values) -> int:
        """The groups whose bit in a key read by ``reads`` (for a packet
        with ``values``) may be set where the group does not hold: those on
        a field not read, or read as a key part rather than a mask, or one
        the packet lacks (the key counts its matches as holding)."""
        sure = tuple(i for i, index in reads
                     if values[i] is not None and (index.__class__ is _NameIndex
                                                   or (index.__class__ is _FieldIndex and not index.exact)))
        found = self._unsure.get(sure)
        if found is None:
            fields = {ABSTRACT[i] for i in sure}
            found = 0
            for g, group in enumerate(self.groups):
                if any(m.field not in fields for m in group):
                    found |= 1 << g
            self._unsure[sure] = found
        return found


class _Candidates:
    """What the engine's indexed run looks up (by the path's destination):
    here the same candidates whatever the key."""

    __slots__ = ("rules", "dispatch")

    def __init__(self, rules: list[int]):
        self.rules = rules
        self.dispatch = None  # a verdict map's: the map with these branches

    def get(self, key):
        return self.rules


def _read(position: int, index) -> tuple:
    """How a node reads one field: (position, bounds, masks, index) with
    bounds None when the masks are per name, or there are none to bisect."""
    if isinstance(index, _FieldIndex) and not index.exact:
        return position, index.bounds, index.masks, index
    if isinstance(index, _NameIndex):
        return position, None, index.masks, index
    return position, None, None, index


class _Node:
    """A chain entry on the way: the chain's indexes for the fields the
    packet still holds as given, and the next node or leaf per chain key.
    (A field NAT set to a constant has that constant for every packet that
    comes this way, so it adds nothing to the key.)"""

    __slots__ = ("plan", "reads", "relevant", "leaving", "below", "children", "key")

    def __init__(self, plan: _Plan, reads, relevant: int, leaving: int = 0, values: tuple | None = None):
        self.plan = plan
        #: per field read: (position, bounds, masks, index); bounds None:
        #: masks per interface name (or None: ask the index)
        self.reads = tuple(_read(position, index) for position, index in reads)
        self.relevant = relevant
        #: the groups of rules that surely leave the chain where they hold
        #: (each bit set only where its group does hold), and what the key
        #: keeps whatever comes first: the NAT constants
        self.leaving = leaving
        self.below = plan._nat_bits
        self.children: dict = {}
        #: ``key(values)``: the chain key of a packet (see :meth:`chain_key`),
        #: a function made for this node's reads where ``values`` (of the
        #: packet that made the node) say which fields the packets of its
        #: root key lack: those are left out, as the loop leaves them out
        self.key = self.chain_key if values is None else _key_function(self, values)

    def chain_key(self, values):
        """The chain key: which relevant groups hold, up to the first
        leaving group that does (the rule there matches and the chain is
        left: a later rule is not reached from here, and where the chain
        it jumps to comes back, the rest is the next node's key)."""
        mask = self.relevant
        extra = ()
        for position, bounds, masks, index in self.reads:
            value = values[position]
            if value is None:
                continue  # the root key holds it; the field's groups count as holding
            if bounds is not None:
                mask &= masks[bisect_right(bounds, value)]
                continue
            part = masks.get(value) if masks is not None else None
            if part is None:
                part = index.part(value)
            if part.__class__ is int:
                mask &= part
            else:
                extra += part
        leave = mask & self.leaving
        if leave:
            mask &= (leave & -leave) * 2 - 1 | self.below
        return (mask, extra) if extra else mask


#: The class of the tree's inner nodes (for a caller that walks it, see
#: :meth:`BatchEvaluator.walked`).
Node = _Node

#: Per shape of a node's reads, the function that makes its key function.
_KEY_MAKERS: dict = {}


def _key_function(node: _Node, values: tuple):
    """``node.chain_key`` written out for the node's reads: the same key.
    Every packet that reaches a node lacks the fields ``values`` lacks (the
    root key holds which), so those reads are left out; a bisected read is
    one line, an interface name a dict lookup (its index's masks are per
    name), any other read the index's part. The function's text depends on
    the kinds of reads only, so it is compiled once per shape."""
    start = node.relevant
    reads = []
    for position, bounds, masks, index in node.reads:
        if values[position] is None:
            continue
        if bounds is not None and len(masks) <= _NARROWED_ATOMS:
            bounds, masks = node.plan.narrowed(bounds, masks, node.relevant)
            if not bounds:
                start &= masks[0]  # the same relevant groups hold in every atom
                continue
        reads.append((position, bounds, masks, index))
    shape = tuple("b" if bounds is not None else "n" if index.__class__ is _NameIndex else "x"
                  for _, bounds, _, index in reads) + (bool(node.leaving),)
    maker = _KEY_MAKERS.get(shape)
    if maker is None:
        maker = _KEY_MAKERS[shape] = _key_maker(shape)
    return maker(start, node.leaving, node.below, bisect_right,
                 *[x for position, bounds, masks, index in reads for x in (position, bounds, masks, index)])


#: A bisected read of this many atoms or fewer is narrowed to a node's
#: relevant groups (see :meth:`_Plan.narrowed`).
_NARROWED_ATOMS = 1024


def _key_maker(shape: tuple):
    kinds, leaving = shape[:-1], shape[-1]
    names = ", ".join(f"p{k}, b{k}, m{k}, i{k}" for k in range(len(kinds)))
    body = ["mask = relevant"]
    extra = "x" in kinds
    if extra:
        body.append("extra = ()")
    for k, kind in enumerate(kinds):
        if kind == "b":
            body.append(f"mask &= m{k}[bisect_right(b{k}, values[p{k}])]")
        elif kind == "n":
            body += [f"v = values[p{k}]", f"part = m{k}.get(v)", "if part is None:", f"    part = i{k}.part(v)",
                     "mask &= part"]
        else:
            body += [f"part = i{k}.part(values[p{k}])", "if part.__class__ is int:", "    mask &= part",
                     "else:", "    extra += part"]
    if leaving:
        body += ["leave = mask & leaving", "if leave:", "    mask &= (leave & -leave) * 2 - 1 | below"]
    body.append("return (mask, extra) if extra else mask" if extra else "return mask")
    text = (f"def make(relevant, leaving, below, bisect_right{', ' + names if names else ''}):\n"
            "    def key(values):\n" + "".join(f"        {line}\n" for line in body) + "    return key\n")
    scope: dict = {}
    exec(text, scope)  # noqa: S102 - our own text, of the read kinds only
    return scope["make"]


class _Leaf:
    __slots__ = ("packet", "result")

    def __init__(self, packet: Packet, result: Result):
        self.packet, self.result = packet, result


def _at(view) -> tuple:
    return (view.src, view.dst, view.sport, view.dport, view.iif, view.oif)


class _Recorder(Evaluator):
    """The engine, noting each chain entered (and device guard tested) with
    the packet's addresses, ports and interfaces at that moment, and a bound
    on the rules it may visit."""

    def __init__(self, ruleset: Ruleset, decisions: "Decisions"):
        super().__init__(ruleset)
        self.decisions = decisions
        self.entries: list = []
        self.bound = 0
        self.given: tuple = ()
        self.twice = False

    def _nat(self, action, path, chain, rule):
        # a second translation of a field: the constant it had is compared
        # with the new one, not the packet's own (no chain key says how)
        at = _at(path.view)
        translated = action.kind in ("dnat", "redirect")
        for position, to in ((1 if translated else 0, action.to_addr), (3 if translated else 2, action.to_port)):
            if to is not None and at[position] != self.given[position]:
                self.twice = True
        return super()._nat(action, path, chain, rule)

    def _runs(self, chain, path):
        """Only the rules whose matches on addresses, ports and interfaces
        may hold for this path (the step bound covers the engine's count)."""
        n = len(chain.rules)
        if n >= MIN_INDEXED_CHAIN:
            candidates = self.decisions._plan(chain, None).candidates(path.view)
            if candidates is not None:
                return [(n, candidates)] * n
        return self.compiled.runs(chain)

    def _dispatch(self, action, chain, i, rule, path, depth, first=0):
        """A verdict map with only the branches that may hold for this path
        (the first that holds gives the action: the others change nothing)."""
        if first == 0 and len(action.branches) >= MIN_INDEXED_CHAIN:
            action = self.decisions.branches(action, path.view)
        return super()._dispatch(action, chain, i, rule, path, depth, first)

    def _run_chain(self, chain, path, depth):
        view = path.view
        self.entries.append((chain, None, 0, _at(view), self.decisions._plan(chain, None).relevant(view)))
        self.bound += 1
        return super()._run_chain(chain, path, depth)

    def _run_rules(self, chain, start, path, depth):
        self.bound += len(chain.rules) - start + 1
        if start and isinstance(chain.rules[start - 1].action, Jump):
            plan = self.decisions._plan(chain, None)
            if plan._leaves[start - 1]:
                # back from the chain a rule that may cut the key jumped to
                # (or past that rule): a key for the rest of the chain
                view = path.view
                self.entries.append((chain, None, start, _at(view), plan.relevant(view, start)))
        return super()._run_rules(chain, start, path, depth)

    def _enter_base(self, chain, path):
        if chain.devices:
            self.entries.append((chain, self.compiled.device_guard(chain), 0, _at(path.view), (-1, 0)))
        return super()._enter_base(chain, path)


def _changes(action) -> set:
    """The view fields an action changes for the rules after it."""
    if isinstance(action, SetField):
        return _touches(action.field)
    if isinstance(action, Notrack):
        return {"state"}
    if isinstance(action, EcnStrip):
        return {"flags"}
    if isinstance(action, UnknownAction) and action.field:
        return _touches(action.field)
    return set()


def _touches(field: str) -> set:
    if field in ("tos", "dscp", "ecn"):
        return {"tos", "dscp", "ecn"}
    return {field}


def _reads(match) -> frozenset:
    """The view fields a (compiled) match reads, as far as rules change them."""
    out: list = []
    _walk(match, out)
    fields: set = set()
    for leaf in out:
        field = getattr(leaf, "field", None)
        if field is not None:
            fields |= _touches(field)
            if field in CONNTRACK_FIELDS:
                fields.add("state")  # no connection entry: they read as absent
    return frozenset(fields)


def _holds(preds, view, changed) -> bool | None:
    """Do all of ``preds`` hold for ``view`` (None: some may), leaving out
    those that read a field in ``changed``."""
    outcome: bool | None = True
    for pred, reads in preds:
        if changed and not changed.isdisjoint(reads):
            outcome = None  # a rule before may change what it reads
            continue
        hit = pred(view)
        if hit is False:
            return False
        if hit is None:
            outcome = None
    return outcome


def _actions(rule) -> list:
    """A rule's action, effects and verdict-map branches' actions."""
    return _actions_of((rule.action, *rule.effects))


def _actions_of(actions) -> list:
    out = list(actions)
    for action in actions:
        if isinstance(action, Dispatch):
            out.extend(branch for _, branch in action.branches)
    return out


def _compilable(ruleset: Ruleset) -> bool:
    """Can the tree be used at all (see the module doc)."""
    if ruleset.host is not None or ruleset.meta.get("snapshot_sets"):
        return False
    for table in ruleset.tables:
        for chain in table.chains.values():
            for rule in chain.rules:
                for action in _actions(rule):
                    if isinstance(action, SetField) and (action.field in ABSTRACT
                                                         or action.copy_from in ABSTRACT):
                        return False
                    if isinstance(action, Nat) and action.per_packet:
                        return False
    return True


def root_key(packet: Packet, src: int, dst: int) -> tuple:
    """The root key of a packet with ``packet``'s fields but for its
    addresses, ``src`` and ``dst`` (as integers, of ``packet``'s IP version)."""
    version = packet.src.version
    return (_others(packet), version, _address_class(version, src), _address_class(version, dst),
            packet.sport is None, packet.dport is None, packet.iif is None, packet.oif is None)


class Decisions:
    """The ruleset's decision tree (see the module doc), grown as packets come."""

    def __init__(self, ruleset: Ruleset):
        self.ruleset = ruleset
        self.usable = _compilable(ruleset)
        self.recorder = _Recorder(ruleset, self)
        self.plans: dict = {}
        self._changes: dict | None = None
        self.root: dict = {}
        self.leaves = 0

    def lookup(self, packet: Packet):
        """``(leaf or None, root key, values)``: the root key (None: never in
        the tree) and the abstracted fields as the engine's view holds them."""
        src, dst = packet.src, packet.dst
        version = src.version
        s, d = int(src), int(dst)
        sport, dport, iif, oif = packet.sport, packet.dport, packet.iif, packet.oif
        values = (s, d, sport, dport, iif, oif)
        if dst.version != version:
            return None, None, values
        root = root_key(packet, s, d)
        node = self.root.get(root)
        while node.__class__ is _Node:
            node = node.children.get(node.key(values))
        return node, root, values

    def _plan(self, chain: Chain, guard) -> _Plan:
        owner = chain if guard is None else guard
        plan = self.plans.get(id(owner))
        if plan is None:
            rules = ([(rule.matches, (rule.action, *rule.effects)) for rule in chain.rules] if guard is None
                     else [((guard,), ())])
            changed = self._changed(chain) if guard is None else [frozenset()]
            plan = self.plans[id(owner)] = _Plan(owner, rules, changed)
        return plan

    def branches(self, action: Dispatch, view) -> Dispatch:
        """``action`` with only the branches that may hold for ``view``."""
        plan = self.plans.get(id(action))
        if plan is None:
            rules = [(m.matches if isinstance(m, AllOf) and not m.negate else (m,), ())
                     for m, _ in action.branches]
            plan = self.plans[id(action)] = _Plan(action, rules, [frozenset()] * len(rules))
        candidates = plan.candidates(view)
        if candidates is None:
            return action
        if candidates.dispatch is None:
            candidates.dispatch = replace(action, branches=tuple(action.branches[k] for k in candidates.rules))
        return candidates.dispatch

    def _changed(self, chain: Chain) -> list[frozenset]:
        """Per rule of ``chain``, the fields the rules before it may change
        for it: marks, the state, flags they set, and those the chains
        they jump to may set."""
        if self._changes is None:
            own: dict = {}
            calls: dict = {}
            for table in self.ruleset.tables:
                for c in table.chains.values():
                    fields = own.setdefault(id(c), set())
                    for rule in c.rules:
                        for action in _actions(rule):
                            fields |= _changes(action)
                            if isinstance(action, (Jump, Goto)) and action.target in table.chains:
                                calls.setdefault(id(c), set()).add(id(table.chains[action.target]))
            grew = True
            while grew:  # what a chain may change includes what the chains it calls may
                grew = False
                for c, called in calls.items():
                    for target in called:
                        if not own[target] <= own[c]:
                            own[c] |= own[target]
                            grew = True
            self._changes = own
        table = chain.table.chains if chain.table else {}
        changed: set = set()
        out = []
        for rule in chain.rules:
            out.append(frozenset(changed))
            for action in _actions(rule):
                changed |= _changes(action)
                if isinstance(action, Jump) and action.target in table:
                    changed |= self._changes[id(table[action.target])]
        return out

    def grow(self, packet: Packet, root, values) -> Result:
        """The engine's answer for ``packet``, noted in the tree."""
        recorder = self.recorder
        recorder.entries = []
        recorder.bound = 0
        recorder.given = values
        recorder.twice = False
        result = recorder.evaluate(packet)
        if recorder.twice:
            return result  # not noted: the tree cannot tell the next packet's answer
        if recorder.bound >= MAX_STEPS:
            # the engine may count more steps than this evaluation (which
            # skips rules) and those of another packet here: its own answer
            return Evaluator(self.ruleset).evaluate(packet)
        family = packet.src.version
        way: list = []  # per entry that can branch: its node's reads
        seen = set()
        cuts: dict = {}  # per chain: the groups its keys on this way may be cut at
        for chain, guard, start, at, (relevant, leaving) in recorder.entries:
            plan = self._plan(chain, guard)
            given = tuple(at[i] == values[i] for i in range(len(ABSTRACT)))
            reads = tuple((i, plan.index(f, family)) for i, f in enumerate(ABSTRACT)
                          if f in plan.reads and given[i])
            if leaving:
                leaving &= ~plan.unsure(reads, values)
                cuts[id(plan)] = cuts.get(id(plan), 0) | leaving
            if start and not cuts.get(id(plan), 0) >> plan.rules[start - 1][0] & 1:
                continue  # back after a jump no key was cut at: the key before covers the rest
            marker = (id(plan), given, relevant, leaving, start)
            if not reads or not relevant or marker in seen:
                continue  # the key is a constant, or one this way has already taken
            seen.add(marker)
            way.append((plan, reads, relevant, leaving))
        owner, slot = self.root, root
        for plan, reads, relevant, leaving in way:
            node = owner.get(slot)
            if node is None:
                node = owner[slot] = _Node(plan, reads, relevant, leaving, values)
            elif node.__class__ is not _Node:  # pragma: no cover - the engine is deterministic
                return result
            owner, slot = node.children, node.key(values)
        if slot not in owner:
            owner[slot] = _Leaf(packet, result)
            self.leaves += 1
        return result


class _Answer:
    """A :class:`Result` being filled in: the same slots, assigned plainly,
    then turned into a Result (a frozen dataclass assigns each field through
    ``object.__setattr__``: a fifth of a hit's time)."""

    __slots__ = Result.__slots__


_ANSWER_FIELDS = ("verdict", "packet", "decided_by", "trace", "depends_on", "outcome", "state", "notes",
                  "alternatives", "routing")


def _fast_results() -> bool:
    if set(Result.__slots__) != set(_ANSWER_FIELDS):
        return False  # a field this module would not fill in
    probe = _Answer()
    try:
        probe.__class__ = Result
    except TypeError:  # pragma: no cover - another Python's layout
        return False
    return True


_FAST_RESULTS = _fast_results()


def _rebase(result: Result, was: Packet, packet: Packet) -> Result:
    """``result`` (of ``was``) as the answer for ``packet`` of the same leaf."""
    out = result.packet
    if out is was:
        out = packet
    else:
        # a field the answer kept is the packet's own; one NAT set is the
        # leaf's constant; marks and flags set by rules are the leaf's too
        kept = {f: getattr(packet, f) for f in ABSTRACT if getattr(out, f) == getattr(was, f)}
        out = replace(out, id=packet.id, **kept)
    alternatives = result.alternatives
    if alternatives:
        alternatives = tuple([_rebase(a, was, packet) for a in alternatives])
    if not _FAST_RESULTS:  # pragma: no cover
        return Result(result.verdict, out, result.decided_by, result.trace, result.depends_on, result.outcome,
                      result.state, result.notes, alternatives, result.routing)
    answer = _Answer()
    answer.verdict = result.verdict
    answer.packet = out
    answer.decided_by = result.decided_by
    answer.trace = result.trace
    answer.depends_on = result.depends_on
    answer.outcome = result.outcome
    answer.state = result.state
    answer.notes = result.notes
    answer.alternatives = alternatives
    answer.routing = result.routing
    answer.__class__ = Result
    return answer


class BatchEvaluator:
    """``evaluate(packet)`` like :class:`Evaluator`, from the compiled decisions."""

    def __init__(self, ruleset: Ruleset):
        self.ruleset = ruleset
        self.evaluator = Evaluator(ruleset)
        #: Grown once enough packets came to pay for compiling the chains they
        #: enter (about the time of 1 evaluation per 100 rules: a single query
        #: on 100k rules does not pay for it); until then a memo per packet.
        self.decisions: Decisions | None = None
        #: packets memoized before the tree: 64, or 1 per 100 rules where more
        #: (the rules are counted at the 65th packet: a query of a few packets
        #: leaves the chains it does not enter unbuilt, see parsers/iptables)
        self._before = 64
        self._counted = False
        self._memo: dict = {}
        self._asked = self._hits = 0
        #: Packets that seldom share a leaf (under 2% of 4,000) are evaluated
        #: one by one: growing the tree would only cost.
        self.memoize = True

    def evaluate(self, packet: Packet) -> Result:
        if not self.memoize:
            return self.evaluator.evaluate(packet)
        decisions = self.decisions
        if decisions is None:
            self._before -= 1
            if self._before < 0 and not self._counted:
                self._counted = True
                self._before += max(0, self.ruleset.rule_count // 100 - 64)
            if self._before >= 0:
                hit = self._memo.get(packet)
                if hit is None:
                    hit = self._memo[packet] = self.evaluator.evaluate(packet)
                return hit
            decisions = self._start()
            if decisions is None:
                return self.evaluator.evaluate(packet)
        self._asked += 1
        if self._asked == 4000 and self._hits < 80:
            self.memoize = False
            self.decisions = None
            return self.evaluator.evaluate(packet)
        leaf, root, values = decisions.lookup(packet)
        if leaf is None:
            if root is None:
                return self.evaluator.evaluate(packet)
            return decisions.grow(packet, root, values)
        self._hits += 1
        was = leaf.packet
        return leaf.result if was is packet else _rebase(leaf.result, was, packet)

    def _start(self) -> Decisions | None:
        """The tree, from now on (None: it cannot answer this ruleset)."""
        decisions = self.decisions = Decisions(self.ruleset)
        self._memo.clear()
        if not decisions.usable:
            self.memoize = False
            return None
        return decisions

    def expect(self, count: int) -> None:
        """``count`` packets are coming: where the packets memoized before
        the tree would be fewer (so the tree would come anyway), it answers
        from the first one (each packet it answers costs less than one
        evaluation). The rules are counted only where more than 64 come, as
        :meth:`evaluate` counts them at the 65th."""
        if self.decisions is not None or not self.memoize or self._counted or count <= self._before:
            return
        self._counted = True
        self._before += max(0, self.ruleset.rule_count // 100 - 64)
        if count > self._before:
            self._before = -1
            self._start()

    def roots(self) -> dict | None:
        """While the tree answers (after the first packets, unless it was
        turned off): its root nodes by :func:`root_key`, for :meth:`hit`."""
        return self.decisions.root if self.memoize and self.decisions is not None else None

    def hit(self, node, values: tuple):
        """The leaf under ``node`` (of :meth:`roots`) for a packet whose
        abstracted fields are ``values`` (``ABSTRACT``, addresses as integers),
        counted as :meth:`evaluate` counts a hit; None where :meth:`evaluate`
        must answer the packet. The leaf's answer for the packet:
        :meth:`answer`."""
        if self._asked == 3999:
            return None  # evaluate decides whether the tree pays
        while node.__class__ is _Node:
            node = node.children.get(node.key(values))
        if node is None:
            return None
        self._asked += 1
        self._hits += 1
        return node

    def walked(self, count: int) -> None:
        """Count ``count`` leaves found as :meth:`hit` finds them, by a
        caller that walked the tree itself (from :meth:`roots`, ``node =
        node.children.get(node.key(values))`` while ``node`` is a
        :data:`Node`) once the tree stays (4,000 packets asked)."""
        self._asked += count
        self._hits += count

    @staticmethod
    def answer(leaf: _Leaf, packet: Packet) -> Result:
        """What :meth:`evaluate` answers for ``packet`` from ``leaf``."""
        was = leaf.packet
        return leaf.result if was is packet else _rebase(leaf.result, was, packet)

    def evaluate_all(self, packets) -> list[Result]:
        """``evaluate`` for every packet. The collector of reference cycles
        pauses meanwhile: answers pile up by the hundred thousand and it would
        walk them over and over (a third of the time) to find no garbage."""
        if hasattr(packets, "__len__"):
            self.expect(len(packets))
        with gc_paused():
            return [self.evaluate(p) for p in packets]


def evaluate_many(ruleset: Ruleset, packets) -> list[Result]:
    """The answer for every packet, as :func:`~ruleanalyzer.engine.evaluate` gives it."""
    return BatchEvaluator(ruleset).evaluate_all(packets)
