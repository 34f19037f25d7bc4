"""Symbolic traversal: which packets reach and match every rule of a hook.

``analyze(ruleset, hook, family)`` walks the same path as the concrete
engine (``ruleanalyzer.engine.evaluate``) — every hook on ``HOOK_PATHS[hook]``,
per hook every base chain of every table that sees the family, in priority
order — but with sets of packets instead of one packet. Jumps, gotos and
returns are followed per call site (a run of a chain entered from several
places is reused when the entering sets are the same), so a user chain
reached from two places is analysed exactly for each. Verdicts go straight
to the base chain's sink, merged once; input and forward walk their common
stages once (:func:`analyze_hooks`).

Uncertainty is carried as a pair of sets ``[lower, upper]``: packets that
surely / possibly get somewhere. Opaque matches are ``[∅, all]``; unknown
targets may end the chain or fall through. A rule is unreachable only when
``upper reaching ∩ upper match`` is empty.

Packets change on the way (``SetField`` marks, ``EcnStrip``, ``Notrack``,
NAT): sets always hold packets as the next rule sees them (relational image:
forget the written bits, then constrain them). ``accepted``/``dropped`` are
therefore sets of packets as they were when the verdict fell — but for
the TTL on the forward path: ``ip_forward`` drops TTL 0 and 1 before
FORWARD and lowers the others by one; sets keep the TTL the packet arrived
with (a witness is a packet to send) and FORWARD/POSTROUTING rules read it
one lower (``encode.ttl_before_forward``).

Packets begin as the kernel can deliver them (:func:`arrival`): with a
conntrack state conntrack could give them (a SYN-ACK is never NEW, only
neighbour discovery is UNTRACKED before a NOTRACK runs), no DNAT/SNAT
status where nothing translates (``ct status dnat`` is then false, as
the engine has it), and — on input and forward — with the
address type the hook decides (the destination of an input packet is
LOCAL, a forwarded one routed UNICAST; a ghost bit tells the two apart on
the stages the two paths share).

A rule whose undecidable match cannot change a packet's fate — its action
leaves the packet alone and goes on (LOG, counters, a MARK no rule reads,
a jump into a chain that only returns) — keeps the packets it may or may
not match in the lower set: whether it matched or not, they go on.

Documented approximations (sound: upper sets only grow, lower only shrink):

- on the ``input`` path the engine sends packets whose destination a
  prerouting DNAT changed to FORWARD instead; here they stay in the upper
  sets of the input chains and leave the lower sets;
- ``redirect`` keeps the destination address (as the engine does) and only
  rewrites the port.
- past ``ip_forward`` (where sets hold the TTL one higher than rules read
  it) a TTL set to 255, or raised to 255 by ``--ttl-inc``, has no value to
  be held as: any TTL in the upper set, none in the lower;
- a copy between two 32-bit fields (CONNMARK save/restore) whose exact image
  would take more than ``COPY_NODES`` BDD nodes lets the field take any value
  in the upper set and keeps no packet in the lower set.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
import functools
import itertools
import operator

from ..model import (CONNTRACK_PRIORITY, HOOK_PATHS, SNAT_PORT_KINDS, Accept, BitsMatch, Chain, Dispatch, Drop, EcnStrip,
                     Goto, IntMatch, InterfaceMatch, Jump, Log, Nat, Notrack, Queue, Reject, Return, Rule,
                     Ruleset, SetField, UnknownAction)
from .encode import LOCAL_GHOST, encode_bounds, encode_conjunction, reads_env, ttl_step
from .fields import HAVOC, Layout, read_fields
from ._leq import leq_for, support_for
from .packetset import PacketSet, Space, SpaceMemoryError, cofactors, cyclic_gc_paused

_NONE = frozenset((None,))

#: Deepest jump nesting followed; valid rulesets cannot loop, so deeper
#: means a jump cycle.
MAX_DEPTH = 64


class ReachError(ValueError):
    """The ruleset cannot be traversed (a jump cycle)."""


class RuleSets:
    """Packets that arrive at one rule and those that match it, each as
    surely (``lower``) and possibly (``upper``); ``match_*`` is the rule's
    own match, whatever reaches it. Each set is taken (the union over the
    rule's visits, within the valid packets) when first read."""

    _NAMES = ("reaching_lower", "reaching_upper", "matched_lower", "matched_upper")

    def __init__(self, space: Space, record: "_Record"):
        self._space, self._record = space, record

    def __getattr__(self, name: str) -> PacketSet:
        if name in self._NAMES:
            node = self._record.column(self._NAMES.index(name))
        elif name in ("match_lower", "match_upper"):
            node = self._record.match_l if name == "match_lower" else self._record.match_u
        else:
            raise AttributeError(name)
        value = self._space.wrap(node)
        setattr(self, name, value)  # read once
        return value


class Bounds:
    """A lower and an upper packet set. Either may be given as a function
    that makes it, called when the set is first read (the verdict sets are
    unions of many parts; an audit that only asks about rules never needs
    them)."""

    __slots__ = ("_lower", "_upper", "_raw")

    def __init__(self, lower, upper, raw=None):
        self._lower, self._upper = lower, upper
        #: ``(space, lower, upper)``: functions giving the sets' raw nodes
        #: before they are taken within ``space.valid`` (see :meth:`meet`).
        self._raw = raw

    def meet(self, side: str, node, exist=(), known=None):
        """``self.lower.node & node`` (``side`` ``"lower"`` or ``"upper"``),
        the very same node, without making the whole set while it is unread:
        the raw set met with ``valid & node``. Validity makes a walk's
        accepted set several times bigger (138k -> 618k nodes on 20k
        kube-proxy rules); a check that asks about SYNs needs only a sliver.
        ``exist``: variables quantified away from the meet, in one step.

        ``known``: a part of the answer already at hand, over variables
        not in ``exist`` (else it is not used) — the same question asked
        of the lower set when ``side`` is ``"upper"`` (the lower set lies
        within the upper one). Only what it lacks is worked out (the meet
        with ``¬known``, which commutes with the quantification): the same
        node, with CUDD's intermediate unions kept small. kube-proxy's
        accepted forwarded SYNs projected onto source and port: 0.46 ->
        0.22 s at 20k rules (1.2M -> 0.3M nodes made on the way): the
        masqueraded endpoints' packets, each with its own source, made a
        union of every endpoint address that the other packets' (any
        source) absorbed only at the top."""
        if known is not None and exist and not known.bdd.support(known) & set(exist):
            return known | self.meet(side, node & ~known, exist)
        made = self._lower if side == "lower" else self._upper
        if self._raw is None or not callable(made):
            made = getattr(self, side)
            return made.space.and_exist(exist, made.node, node)
        space, raw = self._raw[0], self._raw[1 if side == "lower" else 2]
        return space.and_exist(exist, raw(), space.valid & node)

    def meets(self, side: str, node) -> bool:
        """``self.meet(side, node)`` is not empty, asked without making it
        (CUDD's inclusion test, :meth:`Space.disjoint`): the set of
        ESTABLISHED packets a walk accepts is a good part of the whole."""
        made = self._lower if side == "lower" else self._upper
        if self._raw is None or not callable(made):
            made = getattr(self, side)
            return not made.space.disjoint(made.node, node)
        space, raw = self._raw[0], self._raw[1 if side == "lower" else 2]
        return not space.disjoint(raw(), space.valid & node)

    def outside(self, side: str, node):
        """``node & ~self.lower.node`` (or ``upper``), the very same node,
        without making the whole set while it is unread (:meth:`meet`):
        what of ``node`` the raw set lacks, and its invalid packets."""
        made = self._lower if side == "lower" else self._upper
        if self._raw is None or not callable(made):
            return node & ~getattr(self, side).node
        space, raw = self._raw[0], self._raw[1 if side == "lower" else 2]
        return (node & ~raw()) | (node & ~space.valid)

    @property
    def lower(self) -> PacketSet:
        if callable(self._lower):
            self._lower = self._lower()
        return self._lower

    @property
    def upper(self) -> PacketSet:
        if callable(self._upper):
            self._upper = self._upper()
        return self._upper

    def __repr__(self) -> str:
        return f"Bounds(lower={self.lower!r}, upper={self.upper!r})"


class _Union:
    """A union of many raw nodes: parts are kept and merged balanced
    (:func:`_union_all`) when the union is read."""

    __slots__ = ("parts", "false")

    def __init__(self, node, false):
        self.parts = [node]
        self.false = false

    def add(self, node) -> None:
        if node != self.false:
            self.parts.append(node)

    def value(self):
        if len(self.parts) > 1:
            self.parts = [_union_all(self.parts, self.false)]
        return self.parts[0]


class _Flow:
    """Mutable accumulator of raw nodes ``[lower, upper]``."""

    __slots__ = ("_lower", "_upper")

    def __init__(self, lower, upper):
        false = lower.bdd.false
        self._lower, self._upper = _Union(lower, false), _Union(upper, false)

    @property
    def lower(self):
        return self._lower.value()

    @property
    def upper(self):
        return self._upper.value()

    def add(self, lower, upper) -> None:
        self._lower.add(lower)
        self._upper.add(upper)


#: A chain run keeps the reaching sets of every ``CHECKPOINT_EVERY``-th
#: rule (and of the rules where keeping them is free); the others are made
#: again on demand from the nearest kept one (:class:`_Run`). Keeping every
#: rule's held 9M of the 25M BDD nodes live after the walk of 100k rules
#: (project shape); the checks ask for few of them (entries, jump sites).
CHECKPOINT_EVERY = 16


def _canon(low, up, false):
    """``(low, up)`` held by one wrapper per node where that is cheap to
    tell: the space's own ``false`` for the empty set, one object for equal
    bounds (dd wraps every result anew)."""
    if up == false:
        return false, false
    if low is not up:
        if low == up:
            return up, up
        if low == false:
            return false, up
    return low, up


class _Run:
    """One run of a chain, as far as its rules' reaching sets go. Per rule
    (by index): the match bounds it was read with, whether it let every
    packet go on unchanged (``same``: transparent with an undecidable
    match) and what its action sent back to the chain (a jump that
    returned, a MARK …; None when nothing). The reaching sets are kept
    (``kept``) for the first rule, every :data:`CHECKPOINT_EVERY`-th and
    those equal to the rule's matched sets (held anyway); the others are
    made again from the nearest kept rule before them: the next rule sees
    ``(lower ∖ match_upper) ∪ back_lower``, ``(upper ∖ match_lower) ∪
    back_upper`` — the walk's own operations, so the very same nodes. The
    last set made (in any run of the walk: ``recent``, shared) is kept too,
    so reading a run's rules in order costs one step each."""

    __slots__ = ("steps", "kept", "recent", "split")

    def __init__(self, recent: list):
        #: per rule index: ``(match_l, match_u)``, the walker's own cached
        #: pair (no tuple per visit: 72 B each, 25 MiB at 100k rules);
        #: ``(match_l, match_u, True, None)`` where the rule let every
        #: packet go on unchanged (``same``); ``(match_l, match_u, False,
        #: what came back, the pair)`` where its action sent some back
        self.steps: list = []
        #: rule ``k``'s reaching sets at ``2k`` and ``2k + 1``, up to the
        #: last kept, None where not kept (a flat list: most runs are of
        #: chains of one or two rules, where a dict cost 224 bytes, a tuple
        #: per kept rule 56; both lists are tuples once the run is over,
        #: :meth:`close`)
        self.kept: list = []
        #: shared by the walk's runs: ``[(steps, index, reaching_l,
        #: reaching_u) last made (steps: which run), the space's false]``
        self.recent = recent
        #: rule index -> (lower inside, lower outside, upper inside, upper
        #: outside): the reaching sets in two parts each, within and outside
        #: what the chain's rules match (``_Walker._run_split``).
        self.split: dict | None = None

    def keep(self, k: int, low, up, canonical: bool = False) -> None:
        """Keep ``(low, up)`` as the reaching sets of rule ``k``: one
        wrapper for equal bounds, the space's own for the empty set (dd
        wraps every result anew; kube-proxy's runs entered by nothing held
        40k wrappers of it at 20k rules). ``canonical``: they are already."""
        if not canonical:
            low, up = _canon(low, up, self.recent[1])
        kept = self.kept
        i = 2 * k
        if len(kept) <= i:
            kept.extend([None] * (i + 2 - len(kept)))
        kept[i] = low
        kept[i + 1] = up

    def reach(self, k: int):
        """``(lower, upper)`` packets that reached rule ``k`` of this run."""
        hit = self._kept(k)
        if hit is not None:
            return hit
        if self.split is not None:
            li, lo, ui, uo = self.split[k]
            if li is ui and lo is uo:
                node = ui | uo
                return node, node
            return li | lo, ui | uo
        last = self.recent[0]
        at = last[1] if last is not None and last[0] is self.steps and last[1] <= k else -1
        if at == k:
            return last[2], last[3]
        j = k - 1
        while j != at and self._kept(j) is None:
            j -= 1
        low, up = (last[2], last[3]) if j == at else self._kept(j)
        for step in self.steps[j:k]:
            if len(step) == 2:
                (m_l, m_u), cont = step, None
            elif step[2]:  # same
                continue
            else:
                m_l, m_u, cont = step[0], step[1], step[3]
            if low is up and m_l is m_u:
                low = up = up & ~m_u
            else:
                low, up = low & ~m_u, up & ~m_l
            if cont is not None:
                low, up = low | cont[0], up | cont[1]
        self.recent[0] = (self.steps, k, low, up)
        return low, up

    def came_back(self, k: int, cont) -> None:
        """Rule ``k``'s action sent ``cont`` (``(lower, upper)``) back to the
        chain (nothing where the rule let every packet go on unchanged)."""
        step = self.steps[k]
        if len(step) == 2:
            self.steps[k] = (*step, False, cont, step)
        elif len(step) == 5:
            self.steps[k] = (*step[:3], cont, step[4])

    def forget_conts(self) -> None:
        """The run is over: what came back is needed only to make the next
        rule's sets again, not where those are kept, nor after the last rule."""
        steps, kept = self.steps, self.kept
        if len(kept) <= 2:  # only rule 0's kept (most runs: one or two rules): the last step alone
            ends = (len(steps),) if steps else ()
        else:
            ends = [k for k in (*(i // 2 for i in range(0, len(kept), 2) if kept[i] is not None),
                                len(steps)) if 0 < k <= len(steps)]
        for k in ends:
            step = steps[k - 1]
            if len(step) == 5:
                steps[k - 1] = step[4]

    def close(self) -> None:
        """The run is over (and its conts forgotten): its steps and kept
        sets become tuples, which take no room to grow (88 -> 48 and 72 ->
        56 B for a one-rule run; ~100k runs at 100k kube-proxy rules, half
        of them KUBE-MARK-MASQ's)."""
        self.steps, self.kept = tuple(self.steps), tuple(self.kept)

    def _kept(self, k: int):
        """Rule ``k``'s kept reaching sets, or None."""
        kept = self.kept
        return (kept[2 * k], kept[2 * k + 1]) if 2 * k < len(kept) and kept[2 * k] is not None else None

    def upper_within(self, k: int, node):
        """``reach(k)[1] & node``, made from the nearest kept set met with
        ``node`` first (a step's operations distribute over ∧): the same
        node, without making rule ``k``'s whole reaching set where it is
        not kept (a kube-proxy chain's holds ~700k nodes; ``node``, a dead
        rule's packets, few)."""
        hit = self._kept(k)
        if hit is not None:
            return hit[1] & node
        if self.split is not None:
            _li, _lo, ui, uo = self.split[k]
            return (ui & node) | (uo & node)
        last = self.recent[0]
        at = last[1] if last is not None and last[0] is self.steps and last[1] <= k else -1
        if at == k:
            return last[3] & node
        j = k - 1
        while j != at and self._kept(j) is None:
            j -= 1
        up = (last[3] if j == at else self._kept(j)[1]) & node
        for step in self.steps[j:k]:
            cont = None
            if len(step) != 2:
                if step[2]:
                    continue
                cont = step[3]
            up = up & ~step[0]
            if cont is not None:
                up = up | (cont[1] & node)
        return up


class _Met:
    """What a jump's effect run sent back to its chain, ``match ∧ image``
    per bound, made when first read: the walk itself goes on with
    ``ite(match, image, reaching)``, the same set (:meth:`_Walker._rule`),
    and only a reaching set made again from the run's steps
    (:meth:`_Run.reach`) reads it — kube-proxy's ``-s ENDPOINT -j
    KUBE-MARK-MASQ``, whose ``match ∧ image`` was 116k of the 3.1M BDD
    nodes made at 20k kube-iptables rules, dead at once. ``low`` is the
    upper image itself where the bounds were equal, else a set within
    ``match`` already."""

    __slots__ = ("match", "low", "up", "met")

    def __init__(self, match, low, up):
        self.match, self.low, self.up, self.met = match, low, up, None

    def __getitem__(self, i: int):
        if self.met is None:
            self.met = self.match & self.up
        return self.met if i == 1 or self.low is self.up else self.low


class _Reaching:
    """A visit's matched sets where they are its reaching sets (every packet
    that reached the rule matched it) and its run does not keep them: they
    are made again from the run's steps when read (:meth:`_Run.reach`).
    ``valid``: whether they hold a valid packet, answered when the visit
    was filed (:meth:`_Record.matched_upper_empty`, RA101's one question
    about most rules). kube-proxy's ``-p tcp -j DNAT`` / ``meta l4proto
    tcp dnat to …``: one set per endpoint, what its ``-s ENDPOINT -j
    KUBE-MARK-MASQ`` sent on (~125 BDD nodes of its own each), held to the
    audit's end for that question alone: 4M of the 12M live nodes at 100k
    kube-nftables rules."""

    __slots__ = ("valid",)

    def __init__(self, valid: bool):
        self.valid = valid


_REACHING_VALID, _REACHING_EMPTY = _Reaching(True), _Reaching(False)


class _Visit:
    """One visit of a rule, indexed as ``(reaching_l, reaching_u,
    matched_l, matched_u)``: the matched sets are kept (or, where they are
    the reaching sets, a :class:`_Reaching`), the reaching ones are asked
    of the chain's run (:class:`_Run`)."""

    __slots__ = ("run", "k", "ml", "mu")

    def __init__(self, run: _Run, k: int, ml, mu):
        self.run, self.k, self.ml, self.mu = run, k, ml, mu

    def __getitem__(self, i: int):
        if i >= 2:
            node = self.mu if i == 3 else self.ml
            if type(node) is not _Reaching:
                return node
            i -= 2
        return self.run.reach(self.k)[i]

    def has_valid(self, space: Space) -> bool:
        """Do the matched sets hold a valid packet?"""
        mu = self.mu
        return mu.valid if type(mu) is _Reaching else space.has_valid(mu)


class _LaterVisit(_Visit):
    """A rule's visit after its first on a path (the first is its record),
    naming its rule: the log's entry for it as it is (a tuple of the rule,
    the visit and its match took 72 bytes more; 150k of them were held by
    the kept runs at 100k kube-proxy rules)."""

    __slots__ = ("rule",)

    def __init__(self, run: _Run, k: int, ml, mu, rule: Rule):
        self.run, self.k, self.ml, self.mu = run, k, ml, mu
        self.rule = rule


class _Record(_Visit):
    """Per-rule sets, one part per visit; unions are taken only when asked
    for (most rules are visited once, and emptiness needs no union). The
    record is its first visit itself (no _Visit and list of one per rule:
    128 bytes of the 224 a record and its visit took). Its match bounds are
    its run's step (``run.steps[k]``: the pair the visit was read with), and
    what only a rule visited again needs is in ``more``: 96 bytes a record,
    not 128 (~200k records at 100k kube-proxy rules)."""

    __slots__ = ("more", "first", "_empty", "owner")

    def __init__(self, run, k, ml, mu, first: int, owner=None):
        self.run, self.k, self.ml, self.mu = run, k, ml, mu
        #: the other visits, None when one: ``[last, merged, visit, …]``,
        #: ``last`` the path's order when the last was filed, ``merged``
        #: the unions taken (:meth:`column`) or None
        self.more = None
        self.first = first
        self._empty = None
        #: the token of the path that may add to it (``_Path.token``); the
        #: paths forked from a shared walk share its records and copy one
        #: when they add a visit (``_Walker._add``)
        self.owner = owner

    @property
    def match_l(self):
        return self.run.steps[self.k][0]

    @property
    def match_u(self):
        return self.run.steps[self.k][1]

    @property
    def last(self) -> int:
        return self.first if self.more is None else self.more[0]

    @property
    def parts(self) -> tuple:
        """The visits (each indexed as ``(reaching_l, reaching_u,
        matched_l, matched_u)``), in order."""
        more = self.more
        return (self,) if more is None else (self, *more[2:])

    def add(self, part, last: int) -> None:
        if self.more is None:
            self.more = [last, None, part]
        else:
            self.more.append(part)
            self.more[0], self.more[1] = last, None
        self._empty = None

    def copy(self) -> "_Record":
        other = _Record(self.run, self.k, self.ml, self.mu, self.first)
        more = self.more
        if more is not None:
            other.more = [more[0], list(more[1]) if more[1] else None, *more[2:]]
        other._empty = self._empty
        return other

    def column(self, i: int):
        """One of the sets (0 reaching lower, 1 reaching upper, 2 matched
        lower, 3 matched upper), the union over the visits, kept once taken."""
        more = self.more
        if more is None:
            if i == 0 and self.run.recent[2] is not None:
                return self.run.recent[2](self[0])  # (untagged: reach._untagged)
            return self[i]
        if more[1] is None:
            more[1] = [None] * 4
        merged = more[1]
        if merged[i] is None:
            merged[i] = _union_all([part[i] for part in self.parts], self.match_u.bdd.false)
            if i == 0 and self.run.recent[2] is not None:
                merged[i] = self.run.recent[2](merged[i])  # (untagged: reach._untagged)
        return merged[i]

    def reaching_within(self, node):
        """``column(1) & node``, visit by visit (:meth:`_Run.upper_within`)
        unless the union is kept."""
        more = self.more
        if more is None:
            return self.run.upper_within(self.k, node)
        if more[1] is not None and more[1][1] is not None:
            return more[1][1] & node
        return _union_all([part.run.upper_within(part.k, node) for part in self.parts],
                          self.match_u.bdd.false)

    def reached_within_match(self, space):
        """``column(1) & match_l`` (what reached the rule and surely
        matches it): its matched sets ∧ ``match_l`` where that lies within
        each visit's upper match (each matched set is that visit's reaching
        set ∧ its upper match: the same set, the reaching sets never made
        whole), else visit by visit (:meth:`reaching_within`)."""
        match_l = self.match_l
        for part in self.parts:
            m_u = part.run.steps[part.k][1]
            if m_u is not match_l and not space.disjoint(match_l, ~m_u):
                return self.reaching_within(match_l)
        return self.column(3) & match_l

    def meets(self, space, node, column: int = 3, once: bool = False) -> bool:
        """Does the set in ``column`` meet ``node``? Part by part while there
        are few or the question is asked ``once``, else through the (kept)
        union."""
        if once or self.more is None or len(self.more) <= 5:
            return any(not space.disjoint(part[column], node) for part in self.parts)
        return not space.disjoint(self.column(column), node)

    def matched_upper_empty(self, space) -> bool:
        """No valid packet reaches and matches the rule (sets in the walk
        are not intersected with ``space.valid``)."""
        if self._empty is None:
            self._empty = not any(part.has_valid(space) for part in self.parts)
        return self._empty


@dataclass(frozen=True)
class _Context:
    stage: str  # the hook whose base chains run now
    before_conntrack: bool
    path_hook: str  # the hook analysed (input/forward/output)
    #: :func:`_env` of this context in its walk (made once: every rule's
    #: match is looked up by it)
    env: tuple = field(default=(), compare=False)


@dataclass
class Reachability:
    """The result of :func:`analyze`: per-rule sets and the hook's verdicts."""

    space: Space
    hook: str
    family: int
    accepted: Bounds
    dropped: Bounds
    undecided: Bounds
    #: The packets the walk began with that routing hands to this hook's
    #: chains: what can arrive on this hook (:func:`arrival`), less those a
    #: host snapshot routes to another hook or drops.
    arriving: PacketSet | None = None
    #: With a host snapshot: the packets routing drops before this hook's
    #: filter chains (:func:`_route`: no route, a reject route, forwarding
    #: off, the reverse-path filter), by no rule. They are in ``dropped`` —
    #: the hook's verdict, as the engine answers — and not in ``arriving``;
    #: a check that asks what the rules drop leaves them out
    #: (:meth:`rules_decide`). None where routing drops nothing.
    routing_dropped: Bounds | None = None
    #: Of those, the packets the reverse-path filter drops (their source
    #: routes back by another interface): spoofed copies of packets a query
    #: without an input interface does not mean.
    spoofed: PacketSet | None = None
    #: With a host snapshot that holds no routes of the family: the packets
    #: routing may drop, which those routes would decide
    #: (:func:`ruleanalyzer.space.routes.routes_unknown`). The sets above
    #: are the rules' (as if routed); :meth:`host_verdicts` counts these.
    route_unknown: PacketSet | None = None
    #: Of those, the packets the route to their destination decides (not
    #: only the reverse-path filter, whose possibly spoofed copies a flow
    #: does not mean, as :attr:`spoofed`).
    unrouted_unknown: PacketSet | None = None
    #: The destinations of the packets a DNAT left as they were, being
    #: addressed to its target already (:meth:`_Walker._left_alone`; the
    #: raw node, None where there are none): the analyzer takes a DNAT's
    #: target for another host.
    dnat_targets_met: object = None
    #: rule -> its record, keyed by the rule itself (rules hash by identity):
    #: no int of its id per record (~200k records at 100k kube-proxy rules)
    _records: dict = field(repr=False, default_factory=dict)
    _order: list = field(repr=False, default_factory=list)
    _dead: list | None = field(repr=False, default=None)
    _dead_unentered: list | None = field(repr=False, default=None)
    _callers: dict | None = field(repr=False, default=None)
    _shapes: dict | None = field(repr=False, default=None)
    _shape_vars: list = field(repr=False, default_factory=list)
    _inside: dict = field(repr=False, default_factory=dict)
    _jumps: dict = field(repr=False, default_factory=dict)  # jump id -> [¬match, ¬entry]
    _reached: object = field(repr=False, default=None)

    def reached(self) -> PacketSet:
        """The packets that come to one of this hook's verdicts, as they are
        then (rewritten by NAT or marks on the way): unlike
        ``undecided.upper``, no arriving packet that became another."""
        return self._reached()

    def rules_decide(self, node):
        """``node`` (a raw node) less the packets routing drops before this
        hook's chains: what the rules decide of it."""
        if self.routing_dropped is None:
            return node
        return node & ~self.routing_dropped.upper.node

    def host_verdicts(self) -> tuple[PacketSet, PacketSet]:
        """``(surely accepted, possibly dropped)`` as the host decides: the
        accepted packets whose route the snapshot does not hold
        (:attr:`route_unknown`) are not surely accepted, and possibly
        dropped (by routing), as the engine answers them unknown."""
        if self.route_unknown is None:
            return self.accepted.lower, self.dropped.upper
        return (self.accepted.lower - self.route_unknown,
                self.dropped.upper | (self.accepted.upper & self.route_unknown))

    def rules(self) -> list[Rule]:
        """Every rule reached on this hook, in the order first visited."""
        return list(self._order)

    def rule_sets(self, rule: Rule) -> RuleSets:
        """Reaching and matched sets of ``rule`` (KeyError if the rule's
        chain is never entered on this hook)."""
        return RuleSets(self.space, self._records[rule])

    def is_unreachable(self, rule: Rule) -> bool:
        """No packet can reach ``rule`` and match it."""
        return self._records[rule].matched_upper_empty(self.space)

    def unreachable_rules(self, entered: bool = True) -> list[tuple[Rule, list[Rule]]]:
        """``(rule, blockers)`` for every rule no packet can reach and match.

        The blockers are earlier rules (in traversal order) that together
        take every packet that enters the rule's chain and would match it:
        walking back from the rule, each earlier rule whose possibly-matched
        packets overlap what is still uncovered is named, until nothing is
        left — a small covering set, usually the few rules right above it,
        not every rule that overlaps. When no packet that could match even
        enters the rule's chain, the blockers are the earlier rules that
        changed such packets (NOTRACK, MARK, NAT …) on the way, if any; an
        empty list means the rule's match is empty in itself (contradictory
        conditions) or its chain is entered by no packet that could match.
        ``entered=False``: blockers are searched only for the rules whose
        packets never enter their chain (the same lists; the others get an
        empty list), as the dead-rule stories ask.
        """
        if not entered and self._dead is None:
            if self._dead_unentered is None:
                self._dead_unentered = self._find_blockers(entered=False)
            return list(self._dead_unentered)
        if self._dead is None:
            self._dead = self._find_blockers()
        return list(self._dead)

    def _find_blockers(self, entered: bool = True) -> list[tuple[Rule, list[Rule]]]:
        sp = self.space
        false = sp.false
        dead = []  # (rule, target: its own match, goal: target ∩ its chain's entry, last)
        for rule in self._order:
            rec = self._records[rule]
            if not rec.matched_upper_empty(sp):
                continue
            target = rec.match_u & sp.valid
            goal = false
            if target != false:
                entry = self._entry_upper(rule)
                goal = target & entry if entry is not None else target
            dead.append((rule, target, goal, rec.last))
        if not dead:
            return []
        # Rules that can take packets from later ones (some packet reaches
        # and may match them); each cover walks only the stretch between its
        # site's chain entry and the site.
        candidates = [(i, other, rec, matched) for i, other in enumerate(self._order)
                      if _can_block(other)
                      and (matched := self._matched(rec := self._records[other]))]
        modifiers = [c for c in candidates if _modifies(c[1])]
        self._callers = None
        # Requests (site, goal): cover ``goal`` — packets that entered the
        # site's chain but were taken before they got to the site — by the
        # rules just above the site. A dead rule is its own site; when no
        # packet it would match even enters its chain, the sites are the
        # jumps into that chain, batched (one walk per jump for all rules).
        own: list[tuple[int, object]] = []  # (dead index, goal)
        at_callers: dict[int, list[tuple[int, object, object]]] = {}  # (dead rule, target, goal)
        sites: dict[int, Rule] = {}
        for d, (rule, target, goal, _) in enumerate(dead):
            if target == false:
                continue
            if goal != false:
                own.append((d, goal))
            else:
                self._caller_requests(d, rule, target, at_callers, sites, set(), 0)
        found: list[dict[int, Rule]] = [{} for _ in dead]
        within = self._within()
        for d, goal in own if entered else ():  # (no other rule's blockers depend on these)
            rule = dead[d][0]
            for i, other, _, _, _ in self._cover(rule, [goal], candidates):
                found[d][i] = other
        for sid, requests in at_callers.items():
            # each request's goal is its target ∩ what the jump sends ∩
            # what passed the jump by;
            # the site's goal is their union, kept as those parts: with
            # random addresses the union of a few hundred targets took
            # millions of BDD nodes (mixed shape)
            asking: dict = {}  # target -> the dead rules asking for it
            goals: dict = {}  # target -> its goal (:meth:`_caller_requests`)
            for d, target, goal in requests:
                asking.setdefault(target, []).append(d)
                goals[target] = goal
            complements = None  # per goal: (its index, ¬shape, ¬goal, who asked)
            for i, other, _, matched, met in self._cover(sites[sid], list(goals.values()), candidates):
                # the rule took some of a target's packets that passed the
                # jump by when one of its matched sets meets the goal (no
                # union of its matched sets ∩ passed is built); the goals
                # whose uncovered part it met, it met
                if complements is None:
                    complements = [(k, ~self._shape(goal), ~goal, asking[target])
                                   for k, (target, goal) in enumerate(goals.items()) if goal != false]
                for k, not_shape, not_goal, who in complements:
                    if k in met or any(not within(self._shape(p), not_shape) and not within(p, not_goal)
                                       for p in matched):
                        for d in who:
                            found[d][i] = other
        # No packet that could match gets there: who changed them? Only
        # modifiers whose match meets some such rule's are tried for each.
        unexplained = [d for d, (_, target, goal, _) in enumerate(dead)
                       if not found[d] and target != false and (entered or goal == false)]
        if unexplained and modifiers:  # (the union of their targets took 0.5M nodes at 3k mixed rules)
            not_every = ~_union_all([dead[d][1] for d in unexplained], false)
            # (index, rule, its matched sets that meet some target)
            relevant = []
            for i, other, rec, matched in modifiers:
                if not within(rec.match_u, not_every):
                    parts = [p for p in matched if not within(p, not_every)]
                    if parts:
                        relevant.append((i, other, rec, parts))
            for d in unexplained:
                rule, target, _, last = dead[d]
                not_target = ~target
                for i, other, rec, parts in relevant[:_bisect(relevant, last)]:
                    if (other is not rule and not within(rec.match_u, not_target)
                            and any(not within(part, not_target) for part in parts)):
                        found[d][i] = other
        result = []
        for d, (rule, target, _, last) in enumerate(dead):
            blockers = found[d]
            result.append((rule, [blockers[i] for i in sorted(blockers)]))
        return result

    def _cover(self, site: Rule, goals: list, candidates) -> list:
        """``(index, rule, record, matched sets, which goals it met)`` of
        earlier rules that take the goal (the union of ``goals``), nearest
        the site first, until it is covered (or the site's chain's entry is
        passed).

        A rule takes part of what is left when one of its matched sets (one
        per visit) meets it and so does its own match. Each matched set is
        first tested on what it holds besides addresses and interfaces
        (ports, protocol, state …: its shape) against the same of the goal: a set that
        may go anywhere (a NodePort's, any local address) would otherwise
        cost a walk over the whole uncovered set, which is large when the
        goal is the traffic of every earlier service. Only the matched sets
        that meet it are taken off what is left (the same set as taking
        their union off). What is left is kept as parts (each goal less
        what was taken of it), never as one union: the same set, tested
        part by part, each part first by its goal's shape (what is left of
        a goal lies within the goal, so within its shape)."""
        sp = self.space
        false = sp.false
        within = self._within()  # within(a, ~b): a and b are disjoint
        rec = self._records[site]
        lo = 0
        chain = site.chain
        if chain is not None and chain.rules and chain.rules[0] in self._records:
            lo = _bisect(candidates, self._records[chain.rules[0]].first)
        out = []
        # [what is left of a goal, its complement, the complement of the
        # goal's shape (None: only one goal), the goal's index]; complements
        # kept, not made again per test
        remaining = [[g, ~g, None, k] for k, g in enumerate(goals) if g != false]
        not_shape = None
        for i, other, orec, matched in reversed(candidates[lo:_bisect(candidates, rec.last)]):
            if not remaining:
                break
            if other is site:
                continue
            if not_shape is None:  # the shape of a union is the union of the shapes
                shapes = [self._shape(part[0]) for part in remaining]
                not_shape = ~_union_all(shapes, false)
                if len(remaining) > 1:  # (one part: its shape was just tested)
                    for part, part_shape in zip(remaining, shapes):
                        part[2] = ~part_shape
            meeting = []
            for p in matched:
                ps = self._shape(p)
                if within(ps, not_shape):
                    continue
                met = [(part, part[0]) for part in remaining
                       if (part[2] is None or not within(ps, part[2])) and not within(p, part[1])]
                if met:
                    meeting.append((p, met))
            if not meeting or (not self._within_match(orec)
                               and all(within(orec.match_u, part[1]) for part in remaining)):
                continue
            out.append((i, other, orec, matched, {part[3] for _, met in meeting for part, _ in met}))
            for p, met in meeting:
                not_p = ~p
                for part, tested in met:  # (p met ``tested``; an earlier p may have changed it)
                    left = part[0]
                    if left is tested or (left != false and not within(p, part[1])):
                        part[0] = left = left & not_p
                        part[1] = ~left
            remaining = [part for part in remaining if part[0] != false]
        return out

    def _within(self):
        """``within(a, b)``: ``a ⊆ b`` (raw nodes), by CUDD's inclusion test
        where it is at hand; the blocker search asks it about complements
        it keeps."""
        leq = self.space._leq
        if leq is None:
            false = self.space.false
            return lambda a, b: (a & ~b) == false
        return leq

    def _matched(self, rec: _Record) -> list:
        """The rule's matched sets (upper, one per visit), empty ones left out."""
        false = self.space.false
        return [part[3] for part in rec.parts if part[3] != false]

    def _shape(self, node):
        """``node`` with addresses and interfaces quantified away (kept)."""
        if self._shapes is None:
            sp = self.space
            self._shape_vars = [v for f in ("src", "dst", "iif", "oif") if f in sp.layout.fields
                                for v in sp.spec(f).vars_msb_first]
            self._shapes = {}
        out = self._shapes.get(node)
        if out is None:
            out = self._shapes[node] = self.space.exist(self._shape_vars, node)
        return out

    def _within_match(self, rec: _Record) -> bool:
        """Every matched set of the rule lies within its own match (a match
        read in another context may differ), so meeting one meets it too."""
        inside = self._inside.get(id(rec))
        if inside is None:
            not_match = ~rec.match_u
            inside = self._inside[id(rec)] = all(self.space.disjoint(p, not_match)
                                                 for p in self._matched(rec))
        return inside

    def _caller_requests(self, d: int, site: Rule, target, requests: dict, sites: dict,
                         seen: set, depth: int) -> None:
        """No packet of ``target`` enters ``site``'s chain: for each jump into
        the chain that could send such packets in, ask for the packets of
        ``target`` the jump would have sent in that were taken before it
        (the request's goal, :meth:`_passed_within`; a request without
        one would name no blocker). An earlier rule that took other
        packets (another service's) did not keep them from the chain. If none of them entered the jump's
        own chain either, ask its callers. A jump whose condition excludes
        them all explains the rule alone: no earlier rule is to blame."""
        if depth >= MAX_DEPTH:
            return
        within = self._within()
        jumps = self._jumps
        for caller in self._chain_callers().get(id(site.chain), ()):
            if id(caller) in seen:
                continue
            seen.add(id(caller))
            sets = jumps.get(id(caller))
            if sets is None:  # complements of its match, its entry (None: unknown)
                entry = self._entry_upper(caller)
                sets = jumps[id(caller)] = [~self._records[caller].match_u,
                                            None if entry is None else ~entry]
            if within(target, sets[0]):
                continue  # the jump never sends such packets in, whatever came before
            if sets[1] is not None and within(target, sets[1]):
                self._caller_requests(d, caller, target, requests, sites, seen, depth + 1)
                continue
            goal = self._passed_within(caller, target & self._records[caller].match_u)
            if goal != self.space.false:
                requests.setdefault(id(caller), []).append((d, target, goal))
                sites[id(caller)] = caller

    def _passed_within(self, rule: Rule, packets):
        """Those of ``packets`` that possibly entered ``rule``'s chain but
        not ``rule`` (taken or changed before it): ``packets`` ∧ the entry
        ∖ the rule's reaching set met with ``packets`` (never made whole:
        ~700k nodes past kube-proxy's DNATs, where the packets a jump to a
        service's chain sends are few)."""
        entry = self._entry_upper(rule)
        out = packets if entry is None else packets & entry
        return out & ~self._records[rule].reaching_within(packets)

    def _chain_callers(self) -> dict[int, list[Rule]]:
        """Chain id → the rules (reached on this hook) that jump or go to it."""
        if self._callers is None:
            callers: dict[int, list[Rule]] = {}
            for rule in self._order:
                chain = rule.chain
                table = chain.table if chain is not None else None
                if table is None:
                    continue
                for target in rule.jump_targets():
                    if target in table.chains:
                        callers.setdefault(id(table.chains[target]), []).append(rule)
            self._callers = callers
        return self._callers

    def _entry_upper(self, rule: Rule):
        """Packets that possibly enter ``rule``'s chain (the first rule's
        reaching set), or None if unknown."""
        chain = rule.chain
        if chain is None or not chain.rules:
            return None
        rec = self._records.get(chain.rules[0])
        return None if rec is None else rec.column(1)


def _bisect(candidates, index: int) -> int:
    """How many candidates come before traversal position ``index``."""
    lo, hi = 0, len(candidates)
    while lo < hi:
        mid = (lo + hi) // 2
        if candidates[mid][0] < index:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _split_apply(node, part, false, fn):
    """``node`` with ``fn`` applied to its packets inside ``part`` (the rest
    unchanged); skips the split when all or none of ``node`` lies inside."""
    inside = node & part
    if inside == false:
        return node
    if inside == node:
        return fn(node)
    return (node & ~part) | fn(inside)


def _modifies(rule: Rule) -> bool:
    """Does the rule change the packets it takes (so later rules see others)?"""
    return any(isinstance(a, (SetField, Notrack, EcnStrip, Nat)) for a in rule.actions())


def _can_block(rule: Rule) -> bool:
    """Logging never takes a packet away from later rules."""
    return not (isinstance(rule.action, Log) and not rule.effects)


def analyze(ruleset: Ruleset, hook: str, family: int, space: Space | None = None,
            start=None, arrives_from=None, records: bool = True) -> Reachability:
    """Walk ``ruleset`` symbolically for packets of IPv``family`` on
    ``hook`` (``input``, ``forward`` or ``output``; the hooks before it on
    the packet's way, such as prerouting, run first). ``start`` (a
    :class:`PacketSet` or raw node) limits the packets the walk begins with.

    Raises :class:`ReachError` on a jump cycle and
    :class:`~ruleanalyzer.space.packetset.SpaceMemoryError` when the BDD
    manager reaches its memory limit. ``arrives_from`` (rulesets, default
    ``[ruleset]``) decides which translations connections may carry
    and which ct status names matches can see (:func:`absent_status`); a
    diff passes both versions. ``records=False``: only the verdict sets are
    read (a diff), so chains a jump enters with no packets are skipped."""
    return analyze_hooks(ruleset, (hook,), family, space, start, arrives_from, records)[hook]


def analyze_hooks(ruleset: Ruleset, hooks, family: int, space: Space | None = None,
                  start=None, arrives_from=None, records: bool = True) -> dict[str, Reachability]:
    """:func:`analyze` for several hooks at once. The stages their paths
    share (ingress and prerouting, for input and forward) are walked once,
    which is most of the work on NAT-heavy rulesets such as kube-proxy's."""
    hooks = list(dict.fromkeys(hooks))
    for hook in hooks:
        if hook not in HOOK_PATHS:
            raise ValueError(f"unknown hook {hook!r} (input, forward, output)")
    space = space or Space(Layout.for_ruleset(ruleset))
    try:
        # (also saves ~5% of the walk: it makes millions of small objects
        # and no cycles, and the collector would rescan the ruleset model)
        with cyclic_gc_paused():
            result = _analyze_hooks(ruleset, hooks, family, space, start, arrives_from, records)
        # the walk's own sets, runs and caches let go, before the checks
        # make their sets (Space.collect_dead)
        space.collect_dead(WALK_END_DEAD_SHARE)
        return result
    except (ValueError, RuntimeError) as exc:
        if space.exhausted(exc):
            raise SpaceMemoryError(space.max_bytes) from exc
        raise


def _analyze_hooks(ruleset: Ruleset, hooks: list[str], family: int, space: Space, start,
                   arrives_from=None, records: bool = True):
    walker = _Walker(ruleset, space, family)
    walker.sets_only = not records
    begin = space.family(family)
    if start is not None:
        begin &= getattr(start, "node", start)
    walker.absent = absent_status(arrives_from or [ruleset])
    begin &= arrival(space, "shared")
    ghost = space.bdd.var(LOCAL_GHOST)
    ghosts = {"input": ghost, "forward": ~ghost}
    # With a host snapshot, the host's routing decision (space/routes.py):
    # applied where the kernel routes — after prerouting for input and
    # forward, before the first chain for output.
    routing = None
    unforwarded = False  # forwarding off, routes not known (_route)
    unknown = None  # routes not known: per hook, what routing may drop
    if ruleset.host is not None:
        from .routes import routes_unknown, routing_sets

        routing = routing_sets(space, ruleset.host, family, ruleset)
        if routing is not None:
            walker.output_routing = routing.output
            walker.rp_pass = routing.rp_pass
        else:
            unforwarded = ruleset.host.forwards_any(family) is False
        unknown = routes_unknown(space, ruleset.host, family)
    result: dict[str, Reachability] = {}
    # Forward takes the shared walk (when it does not diverge) even alone
    # where connections may carry a DNAT: packets addressed to the host
    # that a prerouting DNAT sends on (``_Path.fork``) are forwarded too,
    # so analyze(forward) and analyze_hooks([input, forward, ...]) agree.
    # Without one, the fork adds nothing and a forward-only walk is equal.
    if "forward" in hooks and ("input" in hooks or "dnat" not in walker.absent):
        shared = HOOK_PATHS["input"][:2]  # ingress, prerouting
        assert HOOK_PATHS["forward"][:2] == shared
        try:
            common = walker.walk(shared, _Path.starting(begin), "shared")
        except _Diverged:
            common = None  # later prerouting chains see different packets per hook
        if common is not None:
            # (no connection carries a DNAT: then no packet of the input
            # path's goes on to forward, whatever its status bit says)
            dnat = space.bdd.var("ct_status:dnat") if "ct_status:dnat" in space.bdd.vars \
                and "dnat" not in walker.absent else None
            for hook in [h for h in ("input", "forward") if h in hooks]:
                path = common.fork(hook, ghosts[hook], ghost, dnat)
                moot = _route(path, routing, hook, unforwarded)
                walker.walk(HOOK_PATHS[hook][2:], path, hook)
                result[hook] = walker.result(hook, path, begin & ghosts[hook], moot)
                _note_unknown(result[hook], unknown)
    todo = [hook for hook in hooks if hook not in result]
    for hook in todo:
        own = begin & ghosts.get(hook, space.true)
        first = own & routing.output if routing is not None and hook == "output" else own
        last = hook == todo[-1]  # the walk's last hook path: no later one replays its runs
        if (routing is not None and hook in ("input", "forward")) or (unforwarded and hook == "forward"):
            path = walker.walk(HOOK_PATHS[hook][:2], _Path.starting(first), hook).settle()
            moot = _route(path, routing, hook, unforwarded)
            walker.walk(HOOK_PATHS[hook][2:], path, hook, last)
        else:
            path = _Path.starting(first)
            if hook == "output" and routing is not None and routing.output_unrouted is not None:
                # The host's own packets it refuses to send (the socket
                # call fails): dropped by routing, before any OUTPUT chain.
                refused = own & routing.output_unrouted
                if refused != space.false:
                    path.routed = (refused, refused)
                    path.dropped.add(refused, refused)
            path, moot = walker.walk(HOOK_PATHS[hook], path, hook, last), None
        result[hook] = walker.result(hook, path, own if moot is None else first, moot)
        _note_unknown(result[hook], unknown)
    return {hook: result[hook] for hook in hooks}


def _note_unknown(reach: "Reachability", unknown: dict | None) -> None:
    """Attach what routing may drop where the snapshot holds no routes."""
    if unknown is not None and reach.hook in unknown and unknown[reach.hook] != (reach.space.false,) * 2:
        rp, route = unknown[reach.hook]
        reach.route_unknown = reach.space.wrap(rp | route)
        reach.unrouted_unknown = reach.space.wrap(route)


def _route(path: "_Path", routing, hook: str, unforwarded: bool = False):
    """Route the packets on ``path`` where the kernel routes them (after
    prerouting): keep those the host sends to ``hook`` (input: delivered
    locally; forward: forwarded, with the route's output interface);
    record those routing drops as dropped, by routing, not by a rule
    (``path.routed``, also in ``path.dropped``: the engine's "dropped by
    routing") — the reverse-path filter's spoofed sources and, on forward,
    the packets with no route or a blackhole, unreachable or prohibit route
    or policy rule, or arriving where forwarding is off; return the packets
    taken off as another path's (forward's on input, input's on forward),
    or None. ``unforwarded``: the snapshot says the host forwards nothing
    but its routes are not known (``routing`` None): on forward every
    packet is dropped there."""
    false = path.lower.bdd.false
    if routing is None:
        if hook != "forward" or not unforwarded:
            return None
        path.routed = (path.lower, path.upper)
        path.dropped.add(path.lower, path.upper)
        path.lower = path.upper = false
        return None
    rp = routing.rp_pass
    sure = None
    if hook == "input":
        if routing.redirects:
            # REDIRECT keeps the address in the walk: its packets are not
            # narrowed to local addresses, only by the reverse-path filter.
            if rp is None:
                return None
            keep, drop = rp, ~rp
        else:
            keep = routing.local if rp is None else routing.local & rp
            drop = false if rp is None else routing.local & ~rp  # spoofed sources: before any filter chain
    else:
        keep = routing.forward if rp is None else routing.forward & rp
        spoofed = false if rp is None else ~rp & ~routing.local
        drop = routing.unrouted | spoofed
        if routing.redirects and "ct_status:dnat" in path.lower.bdd.vars:
            # (a redirected packet keeps its address in the walk, but the
            # kernel delivers it: only possibly dropped where its address
            # has no route)
            sure = spoofed | (routing.unrouted & ~path.lower.bdd.var("ct_status:dnat"))
    moot = path.upper & ~keep & ~drop
    if drop != false:
        drop_l = path.lower & (drop if sure is None else sure)
        drop_u = path.upper & drop
        path.routed = (drop_l, drop_u)
        path.dropped.add(drop_l, drop_u)
    path.lower, path.upper = path.lower & keep, path.upper & keep
    return moot


class _Diverged(Exception):
    """A shared walk cannot go on: the input and forward paths differ."""


class _Path:
    """The state of one walk along a hook path: per-rule records, the
    packets still alive (``input_lower``: the lower set as the input path
    sees it, while a shared walk keeps both), and the verdicts so far."""

    __slots__ = ("records", "order", "lower", "upper", "input_lower", "dropped", "unknown", "pending",
                 "moved", "token", "routed")

    @classmethod
    def starting(cls, begin) -> "_Path":
        path = cls()
        false = begin.bdd.false
        path.records, path.order = {}, []
        path.token = object()
        path.lower = path.upper = begin
        path.input_lower = None
        path.dropped, path.unknown = _Flow(false, false), _Flow(false, false)
        path.routed = None  # dropped by routing (_route), also in ``dropped``
        path.pending = []
        path.moved = []  # DNATed away from the host on a shared walk: surely forwarded
        return path

    def settle(self) -> "_Path":
        """Apply the verdicts of base chains run but not yet merged."""
        while self.pending:
            self.pending.pop(0)(self)
        return self

    def fork(self, hook: str, ghost, local=None, dnat=None) -> "_Path":
        """An independent copy going on along ``hook``'s own stages, for
        the packets whose ``ghost`` bit says they take that path — and, on
        ``forward``, the packets addressed to the host (``local``) that a
        prerouting DNAT sent elsewhere, as the engine forwards them: surely
        those the input view lost, possibly every DNATed one (``dnat``)."""
        self.settle()
        false = self.lower.bdd.false
        path = _Path()
        path.pending, path.moved = [], []
        path.records = dict(self.records)  # shared until added to (one copy per record, not two)
        path.token = object()
        path.order = list(self.order)
        path.lower, path.upper = self.lower, self.upper
        if hook == "input" and self.input_lower is not None:
            path.lower = self.input_lower
        lower, upper = path.lower & ghost, path.upper & ghost
        if hook == "forward" and local is not None and dnat is not None:
            lower |= _union_all(self.moved, false) & local
            upper |= self.upper & local & dnat
        path.lower, path.upper = lower, upper
        path.input_lower = None
        path.dropped, path.unknown = _Flow(false, false), _Flow(false, false)
        path.routed = None  # (the shared stages run before routing)
        path.dropped.add(self.dropped.lower & ghost, self.dropped.upper & ghost)
        path.unknown.add(self.unknown.lower & ghost, self.unknown.upper & ghost)
        return path


def _smaller(node, cut):
    """``cut`` (``node`` met with a set) unless ``node`` itself has fewer BDD nodes."""
    if cut == node:  # (the keys cover every packet: numgen maps)
        return node
    return cut if len(cut) <= len(node) else node


#: Parts from which :func:`_union_all` unions by Shannon expansion over all
#: of them at once (:func:`_kway`) rather than pairwise.
KWAY_MIN_PARTS = 1000
#: Parts below which a sub-union of :func:`_kway` is merged pairwise: the
#: few dead nodes that makes cost less than Python's recursion.
KWAY_PAIRWISE_BELOW = 8
#: :func:`_kway` merges a sub-list pairwise where its two cofactor lists
#: hold more than this many times its parts (parts of other supports go to
#: both sides: expanding them would copy them).
KWAY_SPREAD = 3
#: Levels :func:`_kway` recurses at most (below, pairwise: Python's stack).
KWAY_MAX_DEPTH = 256
#: Parts from which a sub-union of :func:`_kway` tries to step over a chain
#: of variables every part tests alike at once (:func:`_shared_chain`).
KWAY_CHAIN_MIN = 64


def _pairwise(nodes):
    """The union of ``nodes`` (a list, not empty), merged pairwise."""
    while len(nodes) > 1:
        merged = [a | b for a, b in zip(nodes[::2], nodes[1::2])]
        if len(nodes) % 2:
            merged.append(nodes[-1])
        nodes = merged
    return nodes[0]


def _chain(node, true, false) -> list:
    """The literals ``(level, value)`` ``node`` tests from its top while
    one child is empty."""
    chain = []
    while node != true and node != false:
        low, high = cofactors(node)
        if low == false:
            chain.append((node.level, True))
            node = high
        elif high == false:
            chain.append((node.level, False))
            node = low
        else:
            break
    return chain


def _shared_chain(nodes, true, false, var_at, level_of, leq):
    """``(cube, variables)`` where every part of ``nodes`` lies in
    ``cube``, a chain of literals (two at least) the first, a middle and
    the last part test alike from their top (``variables``: its positive
    cube), else None. Then the union is ``cube ∧ ∪ ∃variables. part``: one
    quantification per part instead of a step per part and variable in
    :func:`_kway` (kube-proxy's DNAT images hold the endpoints' address
    prefix: 45 % of the k-way steps of KUBE-SERVICES' union at 20k rules
    were such chains, ~15 variables long)."""
    chain = _chain(nodes[0], true, false)
    for n in (nodes[-1], nodes[len(nodes) // 2]):
        if len(chain) < 2:
            return None
        other = _chain(n, true, false)
        same = 0
        for a, b in zip(chain, other):
            if a != b:
                break
            same += 1
        del chain[same:]
    if len(chain) < 2:
        return None
    cube = variables = true
    for level, value in reversed(chain):
        var = var_at.get(level)
        if var is None:
            var = var_at[level] = level_of(level)
        cube &= var if value else ~var
        variables &= var
    # (every part's top the chain's first variable too: its chain is then
    # its top nodes, and the quantified part the node below them, a
    # descendant, as :func:`_kway`'s memo needs its keys' nodes alive)
    top = chain[0][0]
    if not all(n.level == top and leq(n, cube) for n in nodes):
        return None
    return cube, variables


def _kway(nodes, true, false, var_at, level_of, memo, depth=0, leq=None):
    """The union of ``nodes`` (distinct, none false), expanded on their top
    variable at once: each node of the result made once, where pairwise
    unions remake the top of every intermediate union (dead once merged).
    ``memo``: sub-unions already made (the parts share subgraphs), keyed
    by the parts' node addresses, sorted: 8 bytes a part (a frozenset of
    the nodes would keep every cofactor's Python object alive), and exact,
    as every part met is a descendant of the caller's parts, alive till the
    end."""
    if len(nodes) < KWAY_PAIRWISE_BELOW or depth > KWAY_MAX_DEPTH:
        return _pairwise(nodes)
    key = array("q", sorted(map(int, nodes))).tobytes()
    done = memo.get(key)
    if done is not None:
        return done
    chain = _shared_chain(nodes, true, false, var_at, level_of, leq) \
        if leq is not None and len(nodes) >= KWAY_CHAIN_MIN else None
    if chain is not None:
        cube, variables = chain
        exist = cube.bdd.apply
        rest = list(dict.fromkeys([exist("exists", variables, n) for n in nodes]))
        nodes.clear()
        done = cube & (rest[0] if len(rest) == 1 else
                       _kway(rest, true, false, var_at, level_of, memo, depth + 1, leq))
        memo[key] = done
        return done
    levels = [n.level for n in nodes]
    top = min(levels)
    lows, highs = {}, {}
    for n, level in zip(nodes, levels):
        if level == top:
            # the cofactors (:func:`cofactors`) written out: ~0.5M part
            # steps at 20k kube-proxy rules, where the call and its
            # ``getattr`` were ~1/6 of the union's CPU
            if n.negated:
                lows[~n.low] = highs[~n.high] = None
            else:
                lows[n.low] = highs[n.high] = None
        else:
            lows[n] = highs[n] = None
    if len(lows) + len(highs) > KWAY_SPREAD * len(nodes):
        return _pairwise(nodes)
    # What the recursion holds is one list of parts per level and side
    # still to do: ``nodes`` is emptied (the caller's list, not read again:
    # its parts split on ``top`` are held by their cofactors), each side a
    # list, not a dict, while the other is done (at 100k kube-proxy rules
    # the union of KUBE-SERVICES' 30k DNAT images held ~110 MiB of Python
    # objects down the recursion).
    nodes.clear()
    sides = []
    for side in (lows, highs):
        side.pop(false, None)
        sides.append(true if true in side else list(side))
    del lows, highs, side, levels, n
    for i in (0, 1):
        part = sides[i]
        if part is not true:
            sides[i] = part[0] if len(part) == 1 else (
                _kway(part, true, false, var_at, level_of, memo, depth + 1, leq) if part else false)
        del part
    var = var_at.get(top)
    if var is None:
        var = var_at[top] = level_of(top)
    done = var.bdd.ite(var, sides[1], sides[0])
    memo[key] = done
    return done


def _union_all(nodes, false, at_once: bool = False):
    """The union of ``nodes``, merged pairwise (balanced): adding parts one
    by one to a growing union would cost the union's size each time.
    ``at_once``: many parts (:data:`KWAY_MIN_PARTS`) are unioned all at
    once (:func:`_kway`) — asked only by :meth:`_Sink.collapse`, one DNAT
    image per kube-proxy endpoint, where it pays: at 100k rules everywhere
    it cut memory a little more (kube-iptables 822 vs 837 MiB peak) but
    cost kube-nftables' walk ~1 s CPU (24.4-24.8 vs 23.7-23.9 s; its other
    big unions, the map keys', are cheaper pairwise)."""
    nodes = [n for n in nodes if n != false]
    if at_once and len(nodes) >= KWAY_MIN_PARTS:
        bdd = false.bdd
        nodes = list(dict.fromkeys(nodes))
        if len(nodes) > 1:
            return _kway(nodes, bdd.true, false, {}, lambda level: bdd.var(bdd.var_at_level(level)), {},
                         leq=leq_for(bdd))
    return _pairwise(nodes) if nodes else false


class _Sink:
    """The verdicts of one base chain's run, as lists of parts merged once
    at the end (a verdict in a nested chain ends the base chain, so parts go
    straight here, not through every chain on the way). ``alt``: index in
    ``acc_l`` → the part as the input path sees it (a prerouting DNAT).
    ``exact``: no packet was changed and no bound was uncertain, so the
    verdicts and the fall-through partition the packets that entered."""

    __slots__ = ("false", "acc_l", "acc_u", "drop_l", "drop_u", "unk_l", "unk_u", "alt", "exact")

    def __init__(self, false):
        self.false = false
        self.acc_l, self.acc_u, self.drop_l, self.drop_u, self.unk_l, self.unk_u = [], [], [], [], [], []
        self.alt: dict[int, object] = {}
        self.exact = True

    def _lists(self):
        return (self.acc_l, self.acc_u, self.drop_l, self.drop_u, self.unk_l, self.unk_u)

    def accept(self, low, up, alt=None) -> None:
        if low is not up and low != up:
            self.exact = False
        if alt is not None and alt is not low:
            self.alt[len(self.acc_l)] = alt
            self.acc_l.append(low)
        elif low != self.false:
            self.acc_l.append(low)
        if up != self.false:
            self.acc_u.append(up)

    def drop(self, low, up) -> None:
        if low is not up and low != up:
            self.exact = False
        if low != self.false:
            self.drop_l.append(low)
        if up != self.false:
            self.drop_u.append(up)

    def unknown(self, low, up) -> None:
        if low is not up and low != up:
            self.exact = False
        if low != self.false:
            self.unk_l.append(low)
        if up != self.false:
            self.unk_u.append(up)

    def mark(self) -> tuple[int, ...]:
        # (written out: asked per logged chain run, ~50k at 100k rules)
        return (len(self.acc_l), len(self.acc_u), len(self.drop_l), len(self.drop_u), len(self.unk_l),
                len(self.unk_u))

    def since(self, mark) -> tuple:
        """What was added after ``mark``, to replay for a memoised chain run:
        one flat tuple (a tuple of tuples and pairs took ~340 B per kept run,
        tens of thousands of them live at 100k kube-proxy rules): how many
        parts each list got, those parts, then ``alt``'s (index, node)
        pairs, flat."""
        # (slices, their lengths and one concatenation: asked per kept
        # run, ~20k at 20k kube-nftables rules, where a loop appending to
        # two lists took ~1.7% of the walk)
        tails = [x[m:] for x, m in zip(self._lists(), mark)]
        # ``alt`` is filled in ascending index order (accept, replay): read
        # back from its end only the entries added since ``mark`` (scanning
        # all of it per memoised run was quadratic: 7k runs at 100k rules)
        alt = []
        if self.alt and next(reversed(self.alt)) >= mark[0]:
            for i, n in reversed(self.alt.items()):
                if i < mark[0]:
                    break
                alt += (n, i - mark[0])
            alt.reverse()
        return (*map(len, tails), *itertools.chain.from_iterable(tails), *alt)

    def collapse(self, mark) -> tuple:
        """:meth:`since` ``mark``, each list's parts added since then merged
        into one part here first (the same unions :meth:`merged` makes: a
        union's node does not depend on how its parts are grouped), so a
        replay of them adds one part, not one per verdict (kube-proxy's
        service chains: one DNAT image per endpoint, merged once for nat
        PREROUTING and again for OUTPUT)."""
        false = self.false
        lists = self._lists()
        tails = []
        for lst, m in zip(lists, mark):
            tails.append(lst[m:])
            del lst[m:]
        start = mark[0]
        moved = []  # the input path's own parts (``alt``) added since ``mark``
        for i in reversed(self.alt):
            if i < start:
                break
            moved.append(i)
        acc = tails[0]
        if moved:
            seen = list(acc)
            for i in moved:
                seen[i - start] = self.alt.pop(i)
            acc_input = _union_all(seen, false, at_once=True)
        for lst, tail in zip(lists, tails):
            node = _union_all(tail, false, at_once=True)
            if lst is self.acc_l and moved and acc_input is not node and acc_input != node:
                self.alt[len(lst)] = acc_input
                lst.append(node)
            elif node != false:
                lst.append(node)
        return self.since(mark)

    def replay(self, added, keep_alt: bool = True) -> None:
        self.exact = False  # unknown here; only an optimisation rests on it
        base = len(self.acc_l)
        lists = self._lists()
        at = len(lists)  # (the counts come first: :meth:`since`)
        for lst, n in zip(lists, added):
            if n:
                lst.extend(added[at:at + n])
                at += n
        if keep_alt:
            for j in range(at, len(added), 2):
                self.alt[base + added[j]] = added[j + 1]

    def merged(self, entered, returned):
        """Lower and upper accepted, dropped, undecided sets, and the input
        path's accepted lower set. When the run is exact (``entered`` and
        ``returned`` single nodes too), the biggest of accepted and dropped
        is what entered minus the rest: one difference instead of a union
        of thousands of parts."""
        false = self.false
        if self.exact and not self.alt and entered is not None and returned is not None:
            unk = _union_all(self.unk_u, false)
            if len(self.acc_u) >= len(self.drop_u):
                drop = _union_all(self.drop_u, false)
                acc = entered & ~(drop | unk | returned)
            else:
                acc = _union_all(self.acc_u, false)
                drop = entered & ~(acc | unk | returned)
            return acc, acc, drop, drop, unk, unk, acc
        acc_l = _union_all(self.acc_l, false)
        acc_l_input = acc_l if not self.alt else _union_all(
            [self.alt.get(i, n) for i, n in enumerate(self.acc_l)], false)
        return (acc_l, _union_all(self.acc_u, false), _union_all(self.drop_l, false),
                _union_all(self.drop_u, false), _union_all(self.unk_l, false),
                _union_all(self.unk_u, false), acc_l_input)


#: Memoised chain runs kept per walk, the last used ones (LRU); runs are
#: replayed only for chains entered from several places with the very same
#: sets, and only runs that visited at least ``MEMO_MIN_RULES`` rules are
#: kept (a one-rule chain called from thousands of places with different
#: sets is cheaper to redo). What it guards against is a chain that jumps
#: twice in a row to the next (2^n runs): the run asked again is the last
#: one kept. Hits are rare otherwise (0-16 per 20k-rule walk on every
#: generated shape and none on the corpus), and 4096 runs' sets held 0.25-0.4M
#: BDD nodes at 20k rules (7-9 % of those live at the walk's end), 2.4M at 100k.
MEMO_SIZE = 64
MEMO_MIN_RULES = 16
#: Chains of at least this many rules may run with the entering set split
#: in two (``_Walker._run_split``).
SPLIT_MIN_RULES = 8
#: Chains of at least this many rules may leave what passes a rule by to
#: be made for several rules at once (``_Walker._rule``): the test that
#: allows it (a match disjoint from the others left) costs more than it
#: saves on the short chains (kube-proxy's endpoint chains).
DEFER_MIN_RULES = 8
#: Largest exact image of a field-to-field copy (``_Walker._copy_bits``).
COPY_NODES = 50_000
#: Verdict maps with up to this many branches keep their keys by their
#: branches' match objects, shared by maps alike (:meth:`_Walker._dispatch_keys`).
SHARED_KEYS_MAX = 16
#: A verdict map's branches walked between two asks whether to collect
#: CUDD's dead nodes (:meth:`Space.collect_dead`): kube-nftables' service
#: map is nat prerouting's whole work (every service's and endpoint's run,
#: 14.6k branches at 100k rules), with no base chain or kept run's end
#: between; the ask itself reads three counters.
COLLECT_EVERY_BRANCHES = 512
#: The dead nodes' share of CUDD's table from which the walk's end collects
#: them (:func:`analyze_hooks`, above :data:`~.packetset.COLLECT_ABOVE_BYTES`
#: only): the first check to read the verdict sets merges their parts then
#: (kube-nftables 100k: 2.8M nodes made, nearly all dead at once), which
#: would grow the table past the walk's largest where the dead (22 % there)
#: keep their room.
WALK_END_DEAD_SHARE = 0.1
#: The answers a walker's small caches keep (:func:`_keep_last`): the mark
#: images of a service's endpoints, :meth:`_Walker._nat_whole`'s and
#: :meth:`_Walker._nat_cube`'s answers and the DNAT images' parts — the
#: last ones asked. One per NAT action is asked by its rule's visit and
#: again by a visit soon after, if at all; kept for every endpoint, the
#: DNATs' cubes held 0.75M BDD nodes and 10 MiB to the walk's end at 100k
#: kube-nftables rules.
KEPT_LAST = 64


def _tracks_input(ctx: "_Context") -> bool:
    """Does this part of the walk keep the DNAT images the input path sees?"""
    return ctx.stage == "prerouting" and ctx.path_hook in ("input", "shared")


class _Walker:
    def __init__(self, ruleset: Ruleset, space: Space, family: int):
        self.ruleset, self.space, self.family = ruleset, space, family
        self.path: _Path | None = None
        self.sink: _Sink | None = None
        self.memo: dict = {}
        self.match_cache: dict = {}
        self.plain_matches: dict = {}  # rule -> match pair read after conntrack on arrival (_matches)
        self.last_match: tuple = (None, None)  # what _matches returned last
        self.pairs: dict = space.__dict__.setdefault("_match_pairs", {})  # pair -> itself (_matches)
        #: ``(hit, base, match, the fields match reads)``: ``hit`` is ``base
        #: ∧ match``, the packets a jump (the rule being walked) sends on
        #: (``_assign``).
        self.factor = None
        #: Exact matches every set of the chain run going on lies within
        #: (the jumps' matches that led here, less those a field written
        #: on the way may have left): a rule whose exact match holds all
        #: of one needs no operation (:meth:`_rule`).
        self.within: tuple = ()
        #: chain / rule -> fields it may write, None: unknown (the walk's
        #: per-rule caches are keyed by the rule itself: no int and tuple per
        #: rule, 90 B)
        self.writes: dict = {}
        self.reads_of: dict = {}  # rule -> fields its matches test (_reads)
        self.outers: dict = {}  # rule -> _outer's tuple for its (first) match
        self.frozen: dict = {}  # frozenset / env tuple -> itself (_frozen, _matches)
        #: Images of the bases of ``factor``, a few kept: kube-proxy's
        #: endpoint chains of one service are all entered with the same set,
        #: and each marks its endpoint's own packets (KUBE-MARK-MASQ).
        self.images: dict = {}
        #: ``(ite(match, cont, up), match, cont, up, the fields match reads)``:
        #: the last set :meth:`_rule` made as ``ite``, for :meth:`_nat_image`
        #: (a DNAT right after ``-s ENDPOINT -j KUBE-MARK-MASQ``)
        self.ite_made: tuple | None = None
        #: ``∃V. node`` per ``(V, node)``, a few kept (:meth:`_nat_image`):
        #: the sets an endpoint chain of a service is entered with, and their
        #: mark's image, the same for each endpoint of the service
        self.exists: dict = {}
        self.nat_values: dict = {}  # action -> the values it writes, one cube (_nat_cube)
        self.env_free: dict = {}  # rule (verdict map id) -> its matches read no Env (_matches)
        self.exist_vars: dict = {}
        self.nat_wholes: dict = {}  # NAT action -> _nat_whole's answer, the last few
        self.multi_entry = _multi_entry_chains(ruleset)
        self.effect_chains = _effect_chains(ruleset, self.multi_entry)
        #: ``support(node)``: the variables a node depends on (CUDD's
        #: indices where they can be had, dd's set otherwise)
        self.support = support_for(space.bdd) or space.bdd.support
        #: the field of each variable index where ``support`` gives indices
        #: (``_match_fields``), else None
        self.field_at = None
        if hasattr(self.support, "indices"):
            field_of = space.layout.field_of_variable()
            self.field_at = tuple(map(field_of.get, self.support.names))
        self.read_fields = read_fields(ruleset)
        self.reads_ttl = "ttl" in self.read_fields
        #: field -> (its tag, [the tag's variable], the field's variables):
        #: the fields some rule sets to a value not worked out and some rule
        #: reads, where the layout has their tags (:meth:`_havoc`); empty in
        #: most walks, and then nothing below reads it
        self.tags: dict = {}
        tags = space.layout.fields.get(HAVOC)
        for name, var in zip(tags.names, tags.vars_msb_first) if tags is not None else ():
            if name in self.read_fields:
                self.tags[name] = (space.bdd.var(var), [var], list(space.spec(name).bit_vars))
        self.transparent: dict = {}  # rule / ("policy", rule) / ("tail", chain id) -> (_transparent)
        self.absent: frozenset[str] = frozenset()
        #: Every visit filed, in order, inside a run that may be memoised
        #: (``logging``: how many such runs are going on), so a memoised
        #: run can replay its records into another path's; emptied when
        #: the outermost ends (the memo holds its slices). An entry is the
        #: visit itself: the rule's record where the visit was the rule's
        #: first on its path (its rule is ``path.order[record.first]``), a
        #: :class:`_LaterVisit` naming its rule otherwise (no tuple, 72 B each).
        self.log: list = []
        self.logging = 0
        #: The chain run going on and the index of its rule being walked
        #: (``_record`` files the rule's visit there); ``cont``: what the
        #: last rule's action sent back to its chain (``_rule`` says).
        self.run: _Run | None = None
        self.run_index = 0
        #: shared by the runs (_Run.recent); its third: what a rule's record
        #: reads its reaching lower set through (:func:`_untagged`), None
        #: where no packet is tagged
        self.recent: list = [None, space.false, functools.partial(_untagged, space, self.tags)
                             if self.tags else None]
        self.cont = None
        #: matches taken off the sets handed to ``_rule`` not yet made
        #: (None: made), for the rule being walked (:meth:`_rule`), and
        #: the match of the last rule that left its own so
        self.lazy = None
        self.last_taken = None
        #: The host's routing of its own packets (a snapshot), to route
        #: them again after a mangle/nat OUTPUT chain changed them.
        self.output_routing = None
        self.rp_pass = None  # the host's reverse-path filter (routes.Routing.rp_pass)
        self.dnat_targets_met = None  # Reachability.dnat_targets_met
        #: ``analyze(records=False)``: chains entered with no packets are
        #: not walked (their rules get no record; the verdict sets are equal).
        self.sets_only = False
        #: Runs of chains whose run reads nothing the hook decides
        #: (:meth:`_hook_free`), entered on the nat prerouting or output
        #: stage after conntrack: ``(chain, lower, upper) -> (what came
        #: back, the sink's parts, the visits, the path, kept the input
        #: path's DNAT images)``. kube-proxy's nat PREROUTING and OUTPUT both
        #: jump to KUBE-SERVICES with the same packets: every service chain
        #: it jumps to is entered with the very same sets on both, and the
        #: output walk replays the prerouting walk's runs (the same sets,
        #: verdict parts and visits) instead of making them again.
        self.hook_runs: dict = {}
        self.nat_stage = False  # the base chain running is a nat chain
        self.hook_free_chains: dict[Chain, bool] = {}
        self.hook_free_prefix: dict[Chain, int] = {}  # chain -> _hook_free_prefix
        self.dispatch_back: tuple = ((), ())  # what the branches of the last map walked sent back
        #: The match of the jump being walked (:meth:`_rule`) that the image
        #: of its packets made by the effect run it enters may leave off
        #: (:meth:`_assign`: the image of the packets the jump reached
        #: instead, None once taken; only the effect run :meth:`_rule`
        #: offers it to reads it); ``left_off``: that run did.
        self.leave_off = None
        self.left_off = False

    # -- the hook path ------------------------------------------------------

    def walk(self, stages, path: _Path, path_hook: str, last: bool = False) -> _Path:
        """Run the base chains of ``stages`` on ``path`` (``path_hook``:
        input, forward, output, or ``shared`` for the stages input and
        forward have in common). ``last``: no walk follows this one."""
        self.path = path
        for n, stage in enumerate(stages):
            if stage == "forward":
                self._ip_forward(path)
            chains = self._base_chains(stage)
            # The last nat chain that may replay a kept run (_run_chain's
            # hook_runs: nat prerouting and output) in the walk's last one:
            # the runs are let go after it, so that the chains after it and
            # the checks reuse their memory (at 100k kube-proxy rules their
            # log slices, verdict parts and keys held ~50 MiB to the walk's
            # end); hook_runs is None from then on.
            final = None
            if last and stage in ("prerouting", "output") \
                    and not {"prerouting", "output"} & set(stages[n + 1:]):
                final = next((c for c in reversed(chains) if c.kind == "nat"), None)
            for chain in chains:
                self._base_chain(chain, stage, path, path_hook)
                if chain is final:
                    self.hook_runs = None
            if stage == "output" and self.output_routing is not None \
                    and any(c.reroutes and self._changes_route(c) for c in chains):
                # Routed again after the OUTPUT chains: every OUTPUT chain saw
                # the first route's device, POSTROUTING sees the new one.
                self._reroute(path)
        return path

    def _ip_forward(self, path: _Path) -> None:
        """``ip_forward`` / ``ip6_forward`` before the FORWARD hook, as the
        engine has it: a packet whose TTL (hop limit) is 1 or less is
        dropped there. The others go on with their TTL one lower; sets keep
        the TTL a packet arrived with, and FORWARD and POSTROUTING rules
        read it lowered (``encode`` with :func:`_env`'s ``forwarded``)."""
        path.settle()
        expired = self.space.at_most("ttl", 1)
        path.dropped.add(path.lower & expired, path.upper & expired)
        path.lower, path.upper = path.lower & ~expired, path.upper & ~expired

    def _changes_route(self, chain: Chain) -> bool:
        """Can ``chain`` (a mangle/route or nat OUTPUT chain) change what the
        host routes by — the mark (to a value worked out or not) or an
        address? Then the kernel routes the packet again
        (``ip_route_me_harder``)."""
        table = chain.table
        rules = [r for c in (table.chains.values() if table is not None else (chain,)) for r in c.rules]
        return any((isinstance(a, (SetField, UnknownAction)) and a.field == "mark")
                   or (isinstance(a, Nat) and a.kind in ("dnat", "snat"))
                   for r in rules for a in r.actions())

    def _reroute(self, path: _Path) -> None:
        """The packets' output interface is their route's again, for the
        fields as the chain left them (space/routes.py ``output``)."""
        sp = self.space
        path.settle()
        oif = [sp.spec("oif").var(b) for b in range(sp.spec("oif").width)]
        out = self.output_routing
        path.lower = sp.exist(oif, path.lower) & out
        path.upper = sp.exist(oif, path.upper) & out

    def result(self, hook: str, path: _Path, start, moot=None) -> Reachability:
        w = self.space.wrap
        p = path.settle  # each set is made when first read
        if moot is not None:
            start = start & ~moot  # routed to another path: not this one's to decide
        if self.tags:
            # packets tagged by a write not worked out: their verdicts
            # whatever the value written (:meth:`_resolved_verdicts`)
            made: list = []

            def lows():
                if not made:
                    q = p()
                    made.extend(self._resolved_verdicts(q.lower, q.dropped.lower, q.unknown.lower))
                return made

            acc_l, drop_l, unk_l = (lambda: lows()[0]), (lambda: lows()[1]), (lambda: lows()[2])
        else:
            acc_l, drop_l, unk_l = (lambda: p().lower), (lambda: p().dropped.lower), (lambda: p().unknown.lower)
        routed = path.routed
        arriving = start
        by_routing = None
        if routed is not None:
            # (dropped by routing: in ``dropped``; not handed to the hook's chains)
            arriving = start & ~routed[1]
            by_routing = Bounds(w(self._resolved(routed[0]) if self.tags else routed[0]), w(routed[1]))
        return Reachability(
            self.space, hook, self.family,
            accepted=Bounds(lambda: w(acc_l()), lambda: w(p().upper),
                            (self.space, acc_l, lambda: p().upper)),
            dropped=Bounds(lambda: w(drop_l()), lambda: w(p().dropped.upper),
                           (self.space, drop_l, lambda: p().dropped.upper)),
            undecided=Bounds(lambda: w(unk_l()), lambda: w(
                start & ~acc_l() & ~drop_l() | p().unknown.upper)),
            arriving=w(arriving), routing_dropped=by_routing, dnat_targets_met=self.dnat_targets_met,
            spoofed=None if by_routing is None or self.rp_pass is None else w(routed[1] & ~self.rp_pass),
            _records=path.records, _order=path.order,
            _reached=lambda: w(p().upper | p().dropped.upper | p().unknown.upper))

    def _resolved_verdicts(self, acc, drop, unk):
        """The lower accepted, dropped and undecided sets of a walk with
        tagged packets (:meth:`_havoc`) as the checks read them, untagged:
        a tagged packet is surely accepted (dropped) where it is so for
        every value written, and surely undecided where it is sure of a
        verdict for every value but not of the same one (the engine's
        answer is unknown there too), or undecided for every value. (An
        untagged set holds its packets with either tag: the tagged half of
        one holds for every value only packets it holds anyway.)"""
        sp = self.space
        for field, (t, name, fvars) in self.tags.items():
            halves = [_tag_halves(sp, name, t, n) for n in (acc, drop, unk)]
            if all(n0 == n1 for n0, n1 in halves):
                continue  # no packet tagged for this field

            def every(node):
                return _for_every(sp, field, fvars, node)

            (a0, a1), (d0, d1), (u0, u1) = halves
            a_all, d_all = every(a1), every(d1)
            # (only where no untagged packet is like it: an untagged set
            # holds its packets with either tag, and an untagged packet's
            # own value decides its verdict, surely)
            mixed = every(a1 | d1 | u1) & ~a_all & ~d_all & ~sp.exist(fvars, a0 | d0 | u0)
            acc, drop, unk = a0 | a_all, d0 | d_all, u0 | every(u1) | mixed
        return acc, drop, unk

    def _resolved(self, node):
        """:func:`_untagged` in this walk's space."""
        return _untagged(self.space, self.tags, node)

    def _base_chains(self, stage: str) -> list[Chain]:
        chains = [c for t in self.ruleset.tables if t.family not in ("arp", "bridge")
                  and not t.dormant and t.applies_to(self.family) for c in t.chains.values() if c.hook == stage]
        chains.sort(key=lambda c: c.priority or 0)  # stable: equal priorities keep file order
        return chains

    def _base_chain(self, chain: Chain, stage: str, path: _Path, path_hook: str) -> None:
        sp = self.space
        false = sp.false
        path.settle()
        sp.collect_dead()  # (the last base chain's verdict parts merged and let go)
        if path.input_lower is not None and path.input_lower != path.lower:
            raise _Diverged()
        path.input_lower = None
        before_ct = stage == "ingress" or (stage in ("prerouting", "output")
                                           and (chain.priority or 0) < CONNTRACK_PRIORITY)
        ctx = _Context(stage, before_ct, path_hook)
        ctx = _Context(stage, before_ct, path_hook, _env(ctx, self.absent, self.reads_ttl))
        enter_l, enter_u = path.lower, path.upper
        skip_l = skip_u = false
        guards = []  # (surely enters, possibly enters)
        if chain.kind == "nat":
            # NAT chains see a connection's first packet: NEW, and possibly
            # RELATED (the first packet of an expected connection, FTP data;
            # an ICMP error is translated without the table).
            new = self._state_is("new")
            guards.append((new, new | (self._state_is("related") & ~sp.icmp)))
        if chain.devices:
            dev = encode_bounds(InterfaceMatch("iif", tuple(chain.devices)), sp)[0]
            guards.append((dev, dev))
        for g_l, g_u in guards:
            skip_l, skip_u = skip_l | (enter_l & ~g_u), skip_u | (enter_u & ~g_l)
            enter_l, enter_u = enter_l & g_l, enter_u & g_u
        self.sink = sink = _Sink(false)
        self.nat_stage = chain.kind == "nat"  # (chain runs shared between hooks: _run_chain)
        self.within = ()
        ret_l, ret_u = self._run_chain(chain, enter_l, enter_u, ctx, 0)
        self.sink = None
        entered = enter_u if enter_l == enter_u else None
        returned = ret_u if ret_l == ret_u else None
        policy_drop = (chain.policy or "accept") == "drop"

        def settle(p: _Path) -> None:
            """Merge the verdicts into ``p``: when the next base chain or a
            reader of the verdict sets needs them."""
            acc_l, acc_u, drop_l, drop_u, unk_l, unk_u, acc_l_input = sink.merged(entered, returned)
            r_l, r_u = ret_l, ret_u
            if policy_drop:
                p.dropped.add(r_l, r_u)
                r_l = r_u = false
            p.dropped.add(drop_l, drop_u)
            p.unknown.add(unk_l, unk_u)
            lower, upper = skip_l | acc_l | r_l, skip_u | acc_u | r_u
            if acc_l_input is not acc_l:
                input_lower = skip_l | acc_l_input | r_l
                if path_hook == "input":
                    lower = input_lower
                else:
                    p.input_lower = input_lower
            p.lower, p.upper = lower, upper

        path.pending.append(settle)

    def _state_is(self, name: str):
        return self.space.eq("state", self.space.spec("state").names.index(name))

    # -- chains and rules ---------------------------------------------------

    def _run_chain(self, chain: Chain, low, up, ctx: _Context, depth: int):
        """Run ``chain`` on ``[low, up]``; verdicts go to the sink; returns
        the packets that come back to the caller (RETURN or the chain's end)."""
        if depth > MAX_DEPTH:
            raise ReachError(f"jumps nested deeper than {MAX_DEPTH} chains at {chain.qualified_name} "
                             "(a jump cycle?)")
        if low is not up and low == up:
            low = up  # equal bounds: one node, so rules can share their work
        key = shared = resume = narrowed = None
        n_rules = len(chain.rules)
        # the rules before the first that reads what the hook decides: a
        # run of those is the same on nat prerouting and output (hook_runs)
        cut = self._hook_free_prefix(chain) if self.nat_stage and ctx.stage in ("prerouting", "output") \
            and not ctx.before_conntrack else 0
        alt = _tracks_input(ctx)
        if cut:
            shared = (chain, low, up)  # (the chain itself: no int per kept run)
            hit = self.hook_runs.get(shared)
            if hit is not None and (hit[4] or not alt):
                if hit[5] is None:
                    return self._replay(*hit[:4], alt)
                if hit[3] is not self.path:
                    resume = hit  # its first ``cut`` rules' run: replayed, the rest walked
                shared = None
            elif cut < n_rules and ctx.stage == "output":
                # (a part is kept for the output walk, which the audit walks
                # last: HOOK_PATHS order; one kept on output would not be read)
                shared = None
                narrowed = self._narrowed(chain, low, up, ctx) if cut == 1 else None
        if cut < n_rules and id(chain) in self.multi_entry:
            # A run depends on the entering sets, on how ct state reads and
            # on what the hook decides (``_env``: addrtype reads differently
            # on output), not on the stage. Only a run that kept the input
            # path's DNAT images (``alt``) serves a walk that needs them.
            key = (id(chain), low, up, ctx.before_conntrack, ctx.env)
            hit_key = (*key, True) if (*key, True) in self.memo else (None if alt else (*key, False))
            hit = self.memo.pop(hit_key, None)
            if hit is not None:
                self.memo[hit_key] = hit  # (the last used, last evicted)
                return self._replay(*hit, alt)
        logged = key is not None or shared is not None
        if logged:
            mark, log_mark = self.sink.mark(), len(self.log)
            self.logging += 1  # (an exception ends the whole walk: no finally needed)
        if shared is not None:
            kept_before = len(self.hook_runs)
        f = self.space.false
        ret = _Flow(f, f)
        run = _Run(self.recent)
        first = 0
        if resume is not None:
            # the kept part of the run again (as _replay), then on from
            # where the first rule that reads the hook's decision is met
            _out, added, log, path, _alt, (low, up, ret_l, ret_u, steps, kept) = resume
            self._replay(None, added, log, path, alt)
            ret._lower.parts, ret._upper.parts = list(ret_l), list(ret_u)
            run.steps, run.kept = list(steps), list(kept)
            self.within = self._within_after(chain, cut, self.within)
            first = cut
        elif narrowed is not None:
            low, up = self._narrowed_first(chain, low, up, ctx, narrowed, ret, run)
            first = 1
        done = self._run_split(chain, low, up, ctx, depth, ret, run) \
            if first == 0 and n_rules >= SPLIT_MIN_RULES else None
        if done is not None:
            low, up = done
            if cut < n_rules:
                shared = None  # (a split run is not kept in part)
        rules = chain.rules
        # The matches taken off ``(low, up)`` since they were last made
        # whole (None: they are whole): a rule with an exact match disjoint
        # from those is met with the older sets (the same hit), and what
        # passes it by is made for a run of such rules at once (_rule, _taken_off)
        lazy = lazy_first = None
        defer = n_rules >= DEFER_MIN_RULES and self.space._leq is not None
        for k in range(first, n_rules if done is None else 0):
            if lazy is not None and (k % CHECKPOINT_EVERY == 0 or (k == cut and shared is not None)
                                     or self._may_defer(rules[k], ctx, lazy, lazy_first) is None):
                if lazy:
                    low, up = self._taken_off(low, up, lazy)
                lazy = None
            if k == cut and shared is not None:
                # the run so far reads nothing the hook decides: kept to be
                # replayed by the other hook's walk, which goes on from here
                self._forget_inner_runs(kept_before)
                part = self.hook_runs[shared] = (
                    None, self.sink.collapse(mark), self.log[log_mark:], self.path, alt, (
                        low, up, tuple(ret._lower.parts), tuple(ret._upper.parts), tuple(run.steps),
                        tuple(run.kept)))
                # its verdict parts merged (kube-proxy's: a DNAT image per
                # endpoint) and let go, before the walk goes on
                self.space.collect_dead()
                if cut == 1 and shared[2] != f and self._maps_first(chain, ctx):
                    # what the map's branches sent back, for a walk entering
                    # with fewer packets (_narrowed)
                    self.hook_runs[("narrowed", id(chain))] = (*shared[1:], *self.dispatch_back, part)
                shared = None
            if k % CHECKPOINT_EVERY == 0:
                run.keep(k, low, up)
            self.run, self.run_index, self.cont = run, k, None
            if lazy is None and defer and self._may_defer(rules[k], ctx, ()) is not None:
                lazy, lazy_first = [], rules[k]
            self.lazy = lazy
            nxt = self._rule(chain, rules[k], low, up, ctx, depth, ret)
            if nxt is None:  # what passes the rule by is left to be made (``lazy``)
                lazy.append(self.last_taken)
            else:
                low, up = nxt
                lazy = None
            cont = self.cont
            if cont is not None and (type(cont) is _Met or cont[1] != f or cont[0] != f):
                run.came_back(k, cont)
        if lazy:
            low, up = self._taken_off(low, up, lazy)
        run.forget_conts()
        run.close()
        self.run = None
        ret.add(low, up)
        out = (ret.lower, ret.upper)
        if key is not None and len(self.log) - log_mark >= MEMO_MIN_RULES:
            if len(self.memo) >= MEMO_SIZE:
                del self.memo[next(iter(self.memo))]
            self.memo[(*key, alt)] = (out, self.sink.since(mark), self.log[log_mark:], self.path)
        if shared is not None:
            self._forget_inner_runs(kept_before)
            self.hook_runs[shared] = (out, self.sink.since(mark), self.log[log_mark:], self.path, alt, None)
        if logged:
            self.logging -= 1
            if not self.logging:
                self.log.clear()
        return out

    def _forget_inner_runs(self, kept_before: int) -> None:
        """Let go of the runs kept (``hook_runs``) since the count was
        ``kept_before``: those of chains entered inside the run about to be
        kept, which replays them with it. (Each held its own slices of the
        log and of the verdict parts: at 100k kube-proxy rules ~22k runs, of
        which the other hook's walk replayed only the outermost.)"""
        runs = self.hook_runs
        for _ in range(len(runs) - kept_before):
            runs.popitem()

    def _replay(self, out, added, log, path, alt: bool):
        """A kept run again: its verdict parts to the sink, its visits to
        this path's records (where it ran on another path); returns what
        came back from it."""
        self.sink.replay(added, alt)
        if path is not self.path:
            self._file_log(log, path)
        return out

    def _file_log(self, log, path: _Path) -> None:
        """File the visits ``log`` holds, logged on ``path`` (another path),
        in this path's records; a run going on that is kept logs them too,
        as :meth:`_record` does (a record names its rule by its own path's
        order: this path's record is logged, not ``path``'s)."""
        order = path.order
        for visit in log:
            # a rule's first visit on ``path`` is its record, which names its rule by its place
            rule = order[visit.first] if type(visit) is _Record else visit.rule
            self._add(rule, visit.run, visit.k, visit.ml, visit.mu, visit)

    def _maps_first(self, chain: Chain, ctx: _Context) -> bool:
        """Is ``chain``'s first rule a verdict map with an exact match, no
        effect and exact keys — kube-proxy's nftables ``services`` chain,
        ``ip daddr . meta l4proto . th dport vmap @service-ips``? Kept per
        chain and context."""
        key = ("maps first", id(chain), ctx.before_conntrack, ctx.env)
        known = self.match_cache.get(key)
        if known is None:
            rule = chain.rules[0]
            known = not rule.effects and isinstance(rule.action, Dispatch)
            if known:
                m_l, m_u = self._matches(rule, ctx)
                keys, rest_l, rest_u = self._dispatch_keys(rule.action, ctx)
                known = m_l is m_u and rest_l is rest_u and all(k_l is k_u for k_l, k_u in keys)
            self.match_cache[key] = known
        return known

    def _narrowed(self, chain: Chain, low, up, ctx: _Context):
        """The prerouting run of ``chain`` kept for its first rule, a map
        (:meth:`_maps_first`), where this walk enters it with fewer packets
        that no branch takes fewer of: then every branch is entered with the
        very same sets (kube-proxy's nftables mode: filter-output, before
        nat-output, rejects the packets of services without endpoints, which
        the services map has no key for). None otherwise."""
        entry = self.hook_runs.get(("narrowed", id(chain)))
        leq = self.space._leq
        if entry is None or leq is None or entry[4][3] is self.path:
            return None
        enter_l, enter_u = entry[:2]
        if up == self.space.false or not (leq(low, enter_l) and leq(up, enter_u)) \
                or not self._maps_first(chain, ctx):
            return None
        m = self._matches(chain.rules[0], ctx)[1]
        _keys, _rest_l, rest = self._dispatch_keys(chain.rules[0].action, ctx)
        # the packets this walk lacks reach no branch
        return entry if leq(enter_u & ~up & m, rest) and leq(enter_l & ~low & m, rest) else None

    def _narrowed_first(self, chain: Chain, low, up, ctx: _Context, narrowed, ret: _Flow, run: _Run):
        """Walk the map ``chain`` starts with (:meth:`_narrowed`) on ``[low,
        up]``: its own visit, then the branches' verdicts, visits and
        returns as the kept run has them (the same, entered by the same
        sets), and what no branch takes. Returns what goes on to the
        second rule: ``(entering ∖ match) ∪ rest-of-map ∪ sent back``, the
        sets :meth:`_rule` and :meth:`_dispatch` make."""
        _e_l, _e_u, back_l, back_u, (_o, added, log, path, _a, (_l, _u, ret_l, ret_u, _s, _k)) = narrowed
        rule = chain.rules[0]
        m_l, m_u = self._matches(rule, ctx)
        run.keep(0, low, up)
        hit_u = up & m_u
        hit_l = hit_u if low is up else low & m_u
        self.run, self.run_index = run, 0
        self._record(rule, low, up, hit_l, hit_u, m_l, m_u)
        self.run = None
        self.sink.replay(added, False)
        self._file_log(log[1:], path)  # (the first is the map rule's own visit)
        ret._lower.parts, ret._upper.parts = list(ret_l), list(ret_u)
        self.within = self._within_after(chain, 1, self.within)
        _keys, _rest_l, rest = self._dispatch_keys(rule.action, ctx)
        f = self.space.false
        # what the map sent back (its branches', the packets it has no key
        # for) and the packets the rule's match did not take
        passed = ~m_u | rest
        left_u = up & passed
        left_l = left_u if low is up else low & passed
        back_l, back_u = _union_all(list(back_l), f), _union_all(list(back_u), f)
        cont_l, cont_u = _union_all([back_l, hit_l & rest], f), _union_all([back_u, hit_u & rest], f)
        if cont_u != f or cont_l != f:
            run.came_back(0, (cont_l, cont_u))
        nxt_l, nxt_u = back_l | left_l, back_u | left_u
        return (nxt_u, nxt_u) if nxt_l == nxt_u else (nxt_l, nxt_u)

    def _hook_free_prefix(self, chain: Chain) -> int:
        """How many of ``chain``'s first rules read nothing the hook decides
        (:meth:`_hook_free_rule`): all of them for a :meth:`_hook_free`
        chain. kube-proxy's nat KUBE-SERVICES reads the address type in its
        last rule only (``-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS``),
        its nftables ``services`` chain in its second. Kept per chain."""
        n = self.hook_free_prefix.get(chain)
        if n is None:
            n = len(chain.rules) if self._hook_free(chain) else next(
                (i for i, rule in enumerate(chain.rules) if not self._hook_free_rule(rule, chain)), 0)
            self.hook_free_prefix[chain] = n
        return n

    def _within_after(self, chain: Chain, cut: int, within: tuple) -> tuple:
        """``within`` as the run of ``chain`` has it at rule ``cut``: what
        :meth:`_still_within` leaves of it past each rule before (the
        fields those may write, their union kept per chain and rule)."""
        if not within:
            return within
        key = ("written before", id(chain), cut)
        written = self.match_cache.get(key, self)
        if written is self:
            written = frozenset()
            for rule in chain.rules[:cut]:
                w = self._writes_of(rule, chain)
                if w is None:
                    written = None
                    break
                written |= w
            self.match_cache[key] = written
        if written is None:
            return ()
        return tuple(m for m in within if not m[2] & written) if written else within

    def _hook_free(self, chain: Chain) -> bool:
        """Does a run of ``chain`` (and of the chains it jumps to) read
        nothing the hook decides — no address type or TTL match (``_env``),
        no TTL write, no NOTRACK — so that it is the same run on prerouting
        and output for the same entering sets? Kept per chain."""
        known = self.hook_free_chains.get(chain)  # (keyed by the chain: no int per chain)
        if known is None:
            self.hook_free_chains[chain] = False  # (a jump cycle: not shared)
            known = self.hook_free_chains[chain] = all(
                self._hook_free_rule(rule, chain) for rule in chain.rules)
        return known

    def _hook_free_rule(self, rule: Rule, chain: Chain) -> bool:
        if any(reads_env(m) for m in rule.matches):
            return False
        actions = [*rule.effects, rule.action]
        while actions:
            act = actions.pop()
            if isinstance(act, Dispatch):
                if any(reads_env(m) for m, _ in act.branches):
                    return False
                actions.extend(a for _, a in act.branches)
            elif isinstance(act, (Jump, Goto)):
                target = chain.table.chains.get(act.target) if chain.table else None
                if target is not None and not self._hook_free(target):
                    return False
            elif isinstance(act, Notrack) or (isinstance(act, SetField) and act.field == "ttl"):
                return False
        return True

    def _effect_run(self, chain: Chain, low, up, ctx: _Context, depth: int):
        """:meth:`_run_chain` of a chain whose one rule only changes the
        packets (:func:`_effect_chains`; kube-proxy's KUBE-MARK-MASQ, entered
        from every endpoint chain), when every packet that enters surely
        matches it (:meth:`_holds`): the same run, visit and sets as the
        general run, without its bookkeeping. None when the rule may not
        hold (:meth:`_run_chain` runs it then)."""
        offer = self.leave_off
        if offer is not None:
            self.leave_off = None  # (no other run takes it)
        if depth > MAX_DEPTH:
            return None  # (the general run reports the cycle)
        rule = chain.rules[0]
        m_l, m_u = self._matches(rule, ctx)
        within = self.within
        if m_l is not m_u or not within or not self._holds(within, rule, m_u):
            return None
        if low is not up and low == up:
            low = up
        run = _Run(self.recent)
        run.keep(0, low, up)
        self.run, self.run_index = run, 0
        self._record(rule, low, up, low, up, m_l, m_u)
        run.close()
        self.run = None
        f = self.space.false
        if up == f:
            return f, f
        # what the rule makes of the packets leaves the chain's end
        effect = _sole_effect(rule)
        if offer is None:
            cont_l, cont_u = self._effect(effect, ctx, low, up)
        else:
            self.leave_off = offer
            cont_l, cont_u = self._effect(effect, ctx, low, up)
            self.left_off = self.leave_off is None
            self.leave_off = None
        if cont_l is cont_u or cont_l == cont_u:
            return (cont_u, cont_u) if cont_u != f else (f, f)
        return (cont_l if cont_l != f else f), (cont_u if cont_u != f else f)

    def _run_split(self, chain: Chain, low, up, ctx: _Context, depth: int, ret: _Flow, run: _Run):
        """Run the rules of ``chain`` on ``[low, up]`` with each set held in
        two parts: ``inside`` what some rule of the chain matches,
        ``outside`` the rest. A rule's matched sets and what goes on are
        then made from the inside parts alone; the outside ones change only
        by what an action sends back. kube-proxy's KUBE-NODEPORTS matches
        ports only, on a set that tells every service address apart (above
        the ports in the BDD order): taking each rule's ports off the whole
        set rebuilt all of it per rule (quadratic, and each reaching set was
        a new large BDD). The reaching sets are the unions of the parts,
        made when read (:class:`_Run`). Only for chains whose rules all have
        exact matches below the address and interface fields (else returns
        None); returns what leaves the chain's end, ``(lower, upper)``."""
        false = self.space.false
        within = self._split_within(chain, ctx)
        if within is None:
            return None
        outside = ~within
        li, lo = low & within, low & outside
        ui, uo = (li, lo) if low is up else (up & within, up & outside)
        run.split = {}
        for k, rule in enumerate(chain.rules):
            pair = self._matches(rule, ctx)
            m = pair[1]
            run.split[k] = (li, lo, ui, uo)
            run.steps.append(pair)
            if li is ui:
                hit_l = hit_u = ui & m
                li = ui = ui & ~m
            else:
                hit_l, hit_u = li & m, ui & m
                li, ui = li & ~m, ui & ~m
            self._add(rule, run, k, hit_l, hit_u)
            if hit_u == false and (self.sets_only or not isinstance(rule.action, (Jump, Goto, Dispatch))):
                continue
            for effect in rule.effects:
                hit_l, hit_u = self._effect(effect, ctx, hit_l, hit_u)
            # the packets handed on lie within this rule's (exact) match: a
            # rule of the chain jumped to that the match implies surely
            # matches (kube-proxy's endpoint chains' ``-p tcp -j DNAT``,
            # their service chains entered from KUBE-SERVICES, run so)
            self.within = () if rule.effects else (self._outer(rule, m),)
            cont_l, cont_u = self._action(rule.action, chain, rule, hit_l, hit_u, ctx, depth, ret)
            if cont_l is not cont_u and cont_l == cont_u:
                cont_l = cont_u
            if cont_u != false:
                exact = li is ui and lo is uo and cont_l is cont_u
                ui, uo = ui | (cont_u & within), uo | (cont_u & outside)
                li, lo = (ui, uo) if exact else (li | (cont_l & within), lo | (cont_l & outside))
            elif cont_l != false:  # (a lower set is within the upper one)
                li, lo = li | (cont_l & within), lo | (cont_l & outside)
        if li is ui and lo is uo:
            node = ui | uo
            return node, node
        return li | lo, ui | uo

    def _split_within(self, chain: Chain, ctx: _Context):
        """The union of the matches of ``chain``'s rules, if each is exact
        and none tests a field above the first below the addresses and
        interfaces (``state`` in both orders) in the BDD; else None. Kept
        per chain and context."""
        key = ("split", id(chain), ctx.before_conntrack, ctx.env)
        if key in self.match_cache:
            return self.match_cache[key]
        sp = self.space
        first = sp.bdd.level_of_var(sp.spec("state").var(sp.spec("state").width - 1))
        above = None
        if sp.layout.on_top:
            # fields moved above the addresses: no match may read the
            # family, an address or an interface (the set kept per walk)
            above = self.match_cache.get("split-above")
            if above is None:
                above = self.match_cache["split-above"] = frozenset(
                    v for f in ("family", "src", "dst", "iif", "oif") for v in sp.spec(f).vars_msb_first)
        within = sp.false
        for rule in chain.rules:
            m_l, m_u = self._matches(rule, ctx)
            if m_l is not m_u or (m_u.var is not None and (
                    sp.bdd.level_of_var(m_u.var) < first if above is None
                    else not above.isdisjoint(self.support(m_u)))):
                within = None
                break
            within = within | m_u
        self.match_cache[key] = within
        return within

    def _may_defer(self, rule: Rule, ctx: _Context, lazy, first: Rule | None = None):
        """``rule``'s match where what passes ``rule`` by may be left to be
        made (:meth:`_rule`): an exact match, no effect, no packet in
        common with the matches in ``lazy``, and the same fields tested as
        ``first``'s (the first rule that left its match so): matches of one
        shape with different values (kube-proxy's service address, protocol
        and port) make a union that shares their tops, where matches of
        mixed fields (the mixed shape) made a union bigger than the
        differences it saved (11.06M nodes made at 20k rules, 10.64M
        before); else None."""
        m_l, m_u = self._matches(rule, ctx)
        if m_l is not m_u or rule.effects or (first is not None and self._reads(rule) is not self._reads(first)):
            return None
        disjoint = self.space.disjoint
        for m in lazy:
            if not disjoint(m_u, m):
                return None
        return m_u

    def _taken_off(self, low, up, lazy):
        """``(low, up)`` less the matches ``lazy`` (pairwise disjoint): the
        sets the rules that left them to be made would have passed on."""
        gone = _union_all(lazy, self.space.false)
        return self._rest(low, up, gone)

    def _rule(self, chain: Chain, rule: Rule, low, up, ctx: _Context, depth: int, ret: _Flow):
        """Record ``rule``'s sets; return the flow that goes on to the next rule.

        ``self.lazy`` (set by the caller for this rule alone, see
        :meth:`_may_defer`): ``[low, up]`` are the sets some rules before
        left as they were (their matches, in the list, not yet taken off):
        this rule's match is disjoint from those, so meeting it with them
        gives the very hit. Where nothing comes back from the action the
        rule then returns None and leaves taking its match off to the
        caller, with the others' at once (``last_taken``; at the latest at
        the next kept rule, :data:`CHECKPOINT_EVERY`): kube-proxy's
        KUBE-SERVICES, one rule per service, made a set for what passes
        each rule by (~120 nodes, the path to the service's address
        rebuilt) that only the next rule read: 197k nodes for its 1636
        rules at 20k rules, 114k with one difference per 16 rules. The
        walk's nodes at 20k rules: kube-iptables 3.18M -> 3.07M, project
        3.17M -> 3.05M (same sets: a BDD is canonical)."""
        lazy, self.lazy = self.lazy, None
        sp = self.space
        m_l, m_u = self._matches(rule, ctx)
        within = self.within
        if m_l is m_u and within and self._holds(within, rule, m_u):
            # Every packet that gets here matches (a jump's match that led
            # here implies this one: kube-proxy's ``-p tcp -j DNAT`` in an
            # endpoint chain of a service matched by port): the sets go on
            # whole, the very nodes ``up & m_u`` and ``up & ~m_u`` would give.
            hit_l, hit_u, next_l, next_u = low, up, sp.false, sp.false
            self._record(rule, low, up, hit_l, hit_u, m_l, m_u)
        elif m_l is m_u:  # an exact match (as a policy's verdict or not, the same sets)
            hit_u = up & m_u
            hit_l = hit_u if low is up else low & m_u  # (no uncertainty on this path: share the nodes)
            self._record(rule, low, up, hit_l, hit_u, m_l, m_u)
            next_l = next_u = None  # made after the action (``_rest``)
        else:
            hit_l, hit_u = low & m_l, up & m_u
            self._record(rule, low, up, hit_l, hit_u, m_l, m_u)
            next_l, next_u = low & ~m_u, up & ~m_l
            if self._as_policy(chain, rule):
                # Matched or not, the chain's policy gives the same verdict:
                # the packets in doubt surely get it (not surely by this rule).
                hit_l, next_l = low & m_u, low & ~m_u
        if hit_u == sp.false and (self.sets_only or not isinstance(rule.action, (Jump, Goto, Dispatch))):
            if next_u is None:
                if lazy is not None:
                    self.last_taken = m_u
                    return None
                return self._rest(low, up, m_u)
            return next_l, next_u
        for effect in rule.effects:
            hit_l, hit_u = self._effect(effect, ctx, hit_l, hit_u)
        factor = self.factor
        offered = None  # the match the effect run jumped to may leave off (_Met)
        # the jumped-to chain's sets lie within this rule's match too (not
        # after an effect changed the packets; only a jump reads it: a DNAT
        # or a verdict needs not the match's fields worked out)
        if rule.effects:
            self.within = ()
        elif m_l is m_u and isinstance(rule.action, (Jump, Goto, Dispatch)):
            outer = self._outer(rule, m_u)
            self.within = (*within, outer)
            if not isinstance(rule.action, Dispatch):
                # the jumped-to chain may write a field of these packets: its
                # image is the match met with the image of what reached the
                # rule (``_assign``), the latter shared by rules reached by
                # the same set; with the fields the match reads (``_outer``'s)
                self.factor = (hit_u, up, m_u, outer[2])
            if next_u is None and type(rule.action) is Jump and self._offers(rule, chain, m_u):
                self.leave_off = offered = m_u  # the mark's image may come back unmet (_Met)
                self.left_off = False
        cont_l, cont_u = self._action(rule.action, chain, rule, hit_l, hit_u, ctx, depth, ret)
        self.factor = factor
        self.within = within if not within else self._still_within(within, rule, chain)
        if offered is not None and self.left_off:
            # ``cont_u`` (and ``cont_l`` where it is the same) is the image of
            # the packets that reached the rule, not yet met with ``m_u``:
            # the ite below gives the same set; the run keeps the meet lazily
            self.cont = _Met(m_u, cont_l, cont_u)
        else:
            self.cont = cont_l, cont_u  # (the run keeps what came back)
        if m_l is not m_u and self._transparent(rule):
            # Matched or not, the packets go on unchanged: certainty stays.
            return low, up
        if next_u is None:
            f = sp.false
            if cont_u == f:
                if lazy is not None:
                    self.last_taken = m_u
                    return None
                return self._rest(low, up, m_u)
            if lazy:  # what reached this rule, made now
                low, up = self._taken_off(low, up, lazy)
            if not rule.effects and self._keeps_match(rule, chain, m_u):
                # What came back still matches (the action wrote no field
                # the match reads): ``(up ∖ m) ∪ cont`` is ``ite(m, cont,
                # up)``, one operation, without the packets that pass the
                # rule by as a set of their own (a node each above the
                # match's fields, garbage at once: kube-proxy's endpoint
                # chains, their ``-s ENDPOINT -j KUBE-MARK-MASQ``).
                ite = sp.bdd.ite
                nxt_u = ite(m_u, cont_u, up)
                self.ite_made = (nxt_u, m_u, cont_u, up, self._outer(rule, m_u)[2])
                if low is up and (cont_l is cont_u or cont_l == cont_u):
                    return nxt_u, nxt_u
                return (low if cont_l == f and low == f else ite(m_u, cont_l, low)), nxt_u
            next_l, next_u = self._rest(low, up, m_u)
        if next_l is next_u and (cont_l is cont_u or cont_l == cont_u):
            nxt = next_u | cont_u
            return nxt, nxt
        return next_l | cont_l, next_u | cont_u

    def _offers(self, rule: Rule, chain: Chain, match) -> bool:
        """May the effect run ``rule`` jumps to hand back the image of the
        packets that reached ``rule`` unmet with its exact ``match``
        (:class:`_Met`)? Where the jump goes to an effect chain
        (:meth:`_effect_run`, the only taker) and what comes back still
        lies in the match (:meth:`_keeps_match`: the images over the fields
        written commute with meeting it)."""
        target = chain.table.chains.get(rule.action.target) if chain.table else None
        return target is not None and id(target) in self.effect_chains \
            and self._keeps_match(rule, chain, match)

    def _rest(self, low, up, match):
        """``(low ∖ match, up ∖ match)``: what passes an exact match by."""
        if low is up:
            node = up & ~match
            return node, node
        return low & ~match, up & ~match

    def _keeps_match(self, rule: Rule, chain: Chain, match) -> bool:
        """Does every packet ``rule``'s action sends back to its chain still
        lie in ``match`` (exact, what it was taken by)? Yes when the action
        (and the chains it jumps to) writes no field ``match`` reads."""
        written = self._writes_of(rule, chain)
        if written is None:
            return False
        return not written or not self._outer(rule, match)[2] & written

    def _holds(self, within: tuple, rule: Rule, match) -> bool:
        """Does one of ``within`` (``(match, the fields its rule reads)``)
        lie in ``match``, ``rule``'s? Asked of CUDD's inclusion test on the
        two (small) matches, kept per pair, only where the outer rule reads
        every field ``rule`` reads (else the answer is almost always no)."""
        leq = self.space._leq
        if leq is None:
            return False
        reads = self._reads(rule)
        for outer, outer_reads, _ in within:
            if not reads <= outer_reads:
                continue
            key = ("holds", outer, match)
            known = self.match_cache.get(key)
            if known is None:
                known = self.match_cache[key] = leq(outer, match)
            if known:
                return True
        return False

    def _still_within(self, within: tuple, rule: Rule, chain: Chain) -> tuple:
        """The part of ``within`` the packets ``rule`` sends back to its
        chain still lie in: those reading no field the rule (its effects,
        the chains it jumps to) may write."""
        written = self._writes_of(rule, chain)
        if written is None:
            return ()
        if not written:
            return within
        return tuple(m for m in within if not m[2] & written)

    def _outer(self, rule: Rule, match) -> tuple:
        """``(match, the fields rule reads as written, the space fields
        match's BDD reads)`` for :attr:`within`, kept per rule and match."""
        out = self.outers.get(rule)  # (most rules have one match)
        if out is not None and out[0] is match:
            return out
        key = ("outer", id(rule), match)
        out = self.match_cache.get(key)
        if out is None:
            out = (match, self._reads(rule), self._frozen(self._match_fields(match)))
            if rule in self.outers:
                self.match_cache[key] = out
            else:
                self.outers[rule] = out
        return out

    def _match_fields(self, match) -> frozenset:
        """The space fields ``match`` (a node) reads: its support's. By
        variable index where CUDD's support gives them (a tuple read per
        variable, no names: 16 -> 12 us for an address, protocol and port
        match; _outer took ~4% of the walk of kube-nftables rules)."""
        field_at = self.field_at
        if field_at is not None:
            return frozenset(map(field_at.__getitem__, self.support.indices(match))) - _NONE
        field_of = self.space.layout.field_of_variable()
        return frozenset(map(field_of.get, self.support(match))) - _NONE

    def _reads(self, rule: Rule) -> frozenset:
        """Names of the fields ``rule``'s matches test (as written)."""
        out = self.reads_of.get(rule)
        if out is None:
            out = self.reads_of[rule] = self._frozen(_fields_read(rule.matches))
        return out

    def _frozen(self, names) -> frozenset:
        """``frozenset(names)``, one object per set of names in the walk:
        the per-rule field sets are few sets (a frozenset is 216 B; 13 MiB
        of the walk's 37 MiB at 20k kube-proxy rules were copies)."""
        out = frozenset(names)
        return self.frozen.setdefault(out, out)

    def _writes_of(self, rule: Rule, chain: Chain) -> frozenset | None:
        """:meth:`_rule_writes` of ``rule``, kept per rule."""
        written = self.writes.get(rule, self)
        if written is self:
            written = self.writes[rule] = self._rule_writes(rule, chain, set())
        return written

    def _rule_writes(self, rule: Rule, chain: Chain, seen: set) -> frozenset | None:
        """Space fields ``rule`` may change in packets that go on (None:
        unknown)."""
        out: set = set()
        actions = [*rule.effects, rule.action]
        while actions:
            act = actions.pop()
            if isinstance(act, Dispatch):
                actions.extend(a for _, a in act.branches)
            elif isinstance(act, (Jump, Goto)):
                target = chain.table.chains.get(act.target) if chain.table else None
                if target is not None:
                    sub = self._writes(target, seen)
                    if sub is None:
                        return None
                    out |= sub
            elif isinstance(act, SetField):
                names = ("ecn", "dscp") if act.field == "tos" else (act.field,)
                out.update(n for n in names if n in self.space.layout.fields)
            elif isinstance(act, Notrack):
                out.add("state")
            elif isinstance(act, EcnStrip):
                out.add("flags")
            elif isinstance(act, UnknownAction) and act.field in self.space.layout.fields:
                out.add(act.field)  # (a value not worked out: any value)
            elif not isinstance(act, (Accept, Drop, Reject, Return, Log, Nat, Queue, UnknownAction)):
                return None
        return self._frozen(out)

    def _writes(self, chain: Chain, seen: set) -> frozenset | None:
        """Fields a run of ``chain`` (and the chains it jumps to) may
        change in packets it hands back; kept per chain (keyed by the chain
        itself, as rules by themselves: no int per chain)."""
        key = chain
        if key in self.writes:
            return self.writes[key]
        if key in seen:
            return None  # a cycle (the walk reports it): unknown
        seen.add(key)
        out: set = set()
        for rule in chain.rules:
            sub = self.writes.get(rule, self)
            if sub is self:
                # (kept for the rule too — :meth:`_writes_of` asks it when the
                # rule runs; None only on a jump cycle through the rule, as
                # asked afresh)
                sub = self.writes[rule] = self._rule_writes(rule, chain, seen)
            if sub is None:
                out = None
                break
            out |= sub
        result = self.writes[key] = None if out is None else self._frozen(out)
        return result

    def _matches(self, rule: Rule, ctx: _Context):
        env = ctx.env
        if env[0] != "arrive" or len(env) > 2:  # (the common env needs no call: one per visit)
            env = self._read_env(rule, rule.matches, env)
        if not ctx.before_conntrack and env[0] == "arrive" and len(env) == 2:
            # the common reading (after conntrack, as arriving packets see
            # it): kept by the rule alone, no key tuple per rule (64 B, 100k
            # of them at 100k kube-proxy rules)
            pair = self.plain_matches.get(rule)
            if pair is None:
                pair = self.plain_matches[rule] = self._match_pair(rule, ctx, env)
            self.last_match = pair  # (_record keeps the pair, not a copy)
            return pair
        key = (rule, ctx.before_conntrack, env)
        if key not in self.match_cache:
            # (the key is kept: one env tuple per env, not one per rule)
            key = (rule, ctx.before_conntrack, self.frozen.setdefault(env, env))
            self.match_cache[key] = self._match_pair(rule, ctx, env)
        pair = self.last_match = self.match_cache[key]  # (_record keeps the pair, not a copy)
        return pair

    def _read_env(self, key, matches, env):
        """The env ``matches`` (a rule's, a verdict map's keys; kept by
        ``key``) are read in: one that reads neither address types nor the
        TTL reads the same on every hook, so one encoding serves them all
        (kube-proxy's service chains and service map run on prerouting and
        output)."""
        if env[0] != "arrive" or len(env) > 2:
            free = self.env_free.get(key)
            if free is None:
                free = self.env_free[key] = not any(reads_env(m) for m in matches)
            if free:
                return ("arrive", self.absent)
        return env

    def _match_pair(self, rule: Rule, ctx: _Context, env):
        """``(lower, upper)`` match of ``rule`` read in ``ctx`` and ``env``."""
        m_l, m_u = encode_conjunction(rule.matches, self.space, env)
        if ctx.before_conntrack:
            m_l, m_u = (self._pre_conntrack(m_l), self._pre_conntrack(m_u)) if m_l != m_u else (
                (self._pre_conntrack(m_u),) * 2)
        elif m_l == m_u:
            m_l = m_u
        # one pair per pair of nodes (and exactness: ``m_l is m_u``) in
        # the space: the runs' steps keep it (_Run.steps), and most rules'
        # matches read in several contexts and walks are the same (72k
        # steps, 9k pairs at 20k kube-proxy rules)
        pair = (m_l, m_u)
        found = self.pairs.setdefault(pair, pair)
        return found if (found[0] is found[1]) == (m_l is m_u) else pair

    def _as_policy(self, chain: Chain, rule: Rule) -> bool:
        """Is ``rule`` (with an undecidable match) a verdict its base chain's
        policy repeats — an ACCEPT (DROP) with only transparent rules after
        it before the ACCEPT (DROP) policy, its effects leaving packets alone?"""
        key = ("policy", rule)
        known = self.transparent.get(key)
        if known is None:
            policy = (chain.policy or "accept") if chain.hook else None
            act = rule.action
            known = bool(policy) and (isinstance(act, Accept) and policy == "accept"
                                      or isinstance(act, Drop) and policy == "drop") \
                and all(self._leaves_alone(e) for e in rule.effects) \
                and self._tail_from(chain).get(id(rule), False)
            self.transparent[key] = known
        return known

    def _tail_from(self, chain: Chain) -> dict:
        """``id(rule) -> True`` for the rules of ``chain`` after which every
        rule is transparent (computed once per chain)."""
        key = ("tail", id(chain))
        tail = self.transparent.get(key)
        if tail is None:
            tail, clear = {}, True
            for r in reversed(chain.rules):
                tail[id(r)] = clear
                clear = clear and self._transparent(r)
            self.transparent[key] = tail
        return tail

    def _transparent(self, rule: Rule, seen: frozenset = frozenset()) -> bool:
        """Does ``rule`` hand every packet it takes on to the next rule
        unchanged, whatever it matched (LOG, counters, a MARK no rule reads,
        a jump into a chain whose every rule is such or a RETURN)?"""
        key = rule
        known = self.transparent.get(key)
        if known is not None:
            return known
        result = all(self._leaves_alone(e) for e in rule.effects)
        act = rule.action
        if not result:
            pass
        elif isinstance(act, Jump):
            target = rule.chain.table.chains.get(act.target) if rule.chain and rule.chain.table else None
            result = (target is not None and id(target) not in seen
                      and all(isinstance(r.action, Return) and all(self._leaves_alone(e) for e in r.effects)
                              or self._transparent(r, seen | {id(target)}) for r in target.rules))
        else:
            result = self._leaves_alone(act)
        self.transparent[key] = result
        return result

    def _leaves_alone(self, action, ctx: _Context | None = None) -> bool:
        """A non-terminating action after which no rule can tell the packet
        changed. (``ip_forward`` reads the TTL: a TTL written before FORWARD
        on a way that may be forwarded changes which packets expire; without
        ``ctx`` such a write is not left alone.)"""
        if isinstance(action, Log):
            return True
        if not isinstance(action, SetField) or action.field in self.read_fields:
            return False
        if action.field == "ttl":
            return ctx is not None and not (ctx.stage in ("ingress", "prerouting")
                                            and ctx.path_hook in ("forward", "shared"))
        return True

    def _pre_conntrack(self, node):
        """Before conntrack looked the packet up, ``ct state`` reads INVALID
        (UNTRACKED once NOTRACK ran): evaluate ``node`` under that state."""
        sp = self.space
        state_vars = [sp.spec("state").var(b) for b in range(sp.spec("state").width)]
        untracked, invalid = self._state_is("untracked"), self._state_is("invalid")
        as_untracked = sp.exist(state_vars, node & untracked)
        as_invalid = sp.exist(state_vars, node & invalid)
        return (untracked & as_untracked) | (~untracked & as_invalid)

    def _record(self, rule: Rule, rl, ru, ml, mu, match_l, match_u) -> None:
        """File a visit of ``rule`` (the walk's current chain run and rule):
        its matched sets; its reaching ones only where the run keeps them."""
        run, k = self.run, self.run_index
        pair = self.last_match
        if match_l is not match_u and self._transparent(rule):
            run.steps.append((match_l, match_u, True, None))
        else:
            run.steps.append(pair if pair[0] is match_l and pair[1] is match_u else (match_l, match_u))
        # The visit keeps one wrapper per node: dd makes a new one for every
        # result, and most visits of a kube-proxy walk hold nothing (46k
        # wrappers of the empty set at 20k rules, 80 B each) or equal bounds.
        ml, mu = _canon(ml, mu, self.space.false)
        if mu == ru and ml == rl:
            if mu is not self.space.false and self._made_again(rule, run, k):
                ml = mu = _REACHING_VALID if self.space.has_valid(mu) else _REACHING_EMPTY
            else:
                # held by the matched sets anyway: their objects (one wrapper
                # per node; equal bounds are one object; canonical already)
                run.keep(k, ml, mu, canonical=True)
        self._add(rule, run, k, ml, mu)

    def _made_again(self, rule: Rule, run: _Run, k: int) -> bool:
        """Are the sets of this visit of ``rule`` (rule ``k`` of ``run``),
        which every packet that reaches it matches, left to be made again
        when read (:class:`_Reaching`) rather than kept? Where its action is
        a NAT: they go to the sink as their image and nothing in the walk
        reads them again (the run keeps what the step before sent back
        instead, :meth:`_Run.forget_conts`) — unless the run keeps them
        anyway, or packets are tagged (a record's lower set is read
        untagged: :meth:`_add`)."""
        return isinstance(rule.action, Nat) and run._kept(k) is None and not self.tags

    def _add(self, rule: Rule, run: _Run, k: int, ml, mu, visit: _Visit | None = None) -> None:
        """File a visit of ``rule`` (rule ``k`` of ``run``, its kept
        matched sets ``[ml, mu]``; ``visit``: one already made, replayed) in
        this path's records, and in the log while a run is logged. A rule's
        first visit on the path (most are) is its record, made here directly
        (no visit object made to be copied; the log keeps the record, not a
        visit of its own: 64 B per logged rule); a later one is a visit
        naming its rule (:class:`_LaterVisit`), logged as it is. The match
        of either is its run's step (``run.steps[k]``)."""
        path = self.path
        if self.tags and visit is None and ml is not mu:
            ml = self._resolved(ml)  # (the run keeps the tagged set: the walk's)
        rec = path.records.get(rule)
        if rec is None:
            filed = path.records[rule] = _Record(run, k, ml, mu, len(path.order), path.token)
            path.order.append(rule)
        else:
            if rec.owner is not path.token:  # another path's too (a fork): this one's own copy
                rec = path.records[rule] = rec.copy()
                rec.owner = path.token
            filed = visit if visit is not None else _LaterVisit(run, k, ml, mu, rule)
            rec.add(filed, len(path.order))
        if self.logging:
            self.log.append(filed)

    def _action(self, action, chain: Chain, rule: Rule, low, up, ctx: _Context, depth: int,
                ret: _Flow):
        """Apply ``action`` to the matched packets; return those that go on
        to the next rule of ``chain``."""
        f = self.space.false
        sink = self.sink
        if isinstance(action, Accept):
            sink.accept(low, up)
        elif isinstance(action, (Drop, Reject)):
            sink.drop(low, up)
        elif isinstance(action, Return):
            ret.add(low, up)
        elif isinstance(action, (Jump, Goto)):
            target = chain.table.chains.get(action.target) if chain.table else None
            if target is None:  # the engine: unknown verdict
                sink.unknown(low, up)
                return f, f
            sub = self._effect_run(target, low, up, ctx, depth + 1) if id(target) in self.effect_chains \
                else None
            sub_l, sub_u = sub if sub is not None else self._run_chain(target, low, up, ctx, depth + 1)
            if isinstance(action, Jump):
                return sub_l, sub_u
            ret.add(sub_l, sub_u)
        elif isinstance(action, Dispatch):
            return self._dispatch(action, chain, rule, low, up, ctx, depth, ret)
        elif isinstance(action, Nat):
            self._nat(action, low, up, ctx, rule)
        elif isinstance(action, Queue):
            sink.unknown(low, up)
        elif isinstance(action, UnknownAction):
            # It may end the chain with any verdict or fall through.
            sink.unknown(low, up)
            return f, self._forget(action.field, up)
        elif isinstance(action, (SetField, Notrack, EcnStrip, Log)):
            return self._effect(action, ctx, low, up)
        else:  # an action type this module does not know: be sound
            sink.unknown(low, up)
            return f, up
        return f, f

    def _dispatch(self, action: Dispatch, chain: Chain, rule: Rule, low, up, ctx, depth, ret):
        sp = self.space
        f, t = sp.false, sp.true
        # What comes back from the branches, merged once at the end (balanced):
        # a union grown branch by branch costs its size per branch (kube-proxy's
        # nftables service map has thousands).
        conts_l, conts_u = [], []
        keys, rest_l, rest_u = self._dispatch_keys(action, ctx)
        # Each branch takes from what some branch may take (the keys lie
        # within the union of the keys, ~rest): cut that out once, so the
        # branches do not each walk the whole entering set (kube-proxy's
        # node-port map keys ports, below the many service addresses).
        # (A branch's key lies within that union, so meeting it with the
        # entering set itself gives the same set: where that is the smaller
        # BDD — kube-proxy's service map, entered by a few nodes whose cut is
        # the whole map — each branch meets that instead.)
        if len(keys) < 2 or rest_u is f and rest_l is f:  # (numgen maps: the keys cover every packet)
            in_l, in_u = low, up
        elif low is up and rest_l is rest_u:
            in_l = in_u = _smaller(up, up & ~rest_u)
        else:
            in_l, in_u = _smaller(low, low & ~rest_u), _smaller(up, up & ~rest_l)
        # (a key that is a constant — sp.false or sp.true, _dispatch_keys —
        # takes nothing or all: no operation, no new node object, which the
        # branch's run would keep: a numgen map's keys are (false, true))
        within = self.within
        # (a map whose keys take every packet, numgen's, has no key to be within)
        outers = None if rest_u is f and rest_l is f else self._branch_outers(action, keys, ctx)
        for n, ((_, branch_action), (k_l, k_u)) in enumerate(zip(action.branches, keys), 1):
            if n % COLLECT_EVERY_BRANCHES == 0:
                sp.collect_dead()  # (the branches walked since let their sets go)
            if outers is not None:
                outer = outers[n - 1]
                self.within = within if outer is None else (*within, outer)
            if in_l is in_u and k_l is k_u:
                hit_l = hit_u = in_u if k_u is t else f if k_u is f else in_u & k_u
            else:
                hit_l = in_l if k_l is t else f if k_l is f else in_l & k_l
                hit_u = in_u if k_u is t else f if k_u is f else in_u & k_u
                if type(branch_action) is Nat:
                    hit_l = self._translated_if_taken(branch_action, in_l, k_u)
            if not (self.sets_only and hit_u == f):  # records=False: skip empty branches
                c_l, c_u = self._action(branch_action, chain, rule, hit_l, hit_u, ctx, depth, ret)
                conts_l.append(c_l)
                conts_u.append(c_u)
        self.within = within
        if rest_u is f and rest_l is f:
            low = up = f
        elif low is up and rest_l is rest_u:
            low = up = up & rest_u
        else:
            low, up = low & rest_l, up & rest_u
        self.dispatch_back = (conts_l, conts_u)  # (_run_chain keeps those of a services map)
        return _union_all([*conts_l, low], f), _union_all([*conts_u, up], f)

    def _branch_outers(self, action: Dispatch, keys: list, ctx: _Context):
        """Per branch of ``action`` (``keys``: :meth:`_dispatch_keys`'), what
        the chain it jumps or goes to is entered within (:attr:`within`, as
        :meth:`_outer` for a jump's match): its exact key where it is not a
        constant (the packets the branch takes lie in it), else None; None
        where no branch has one. kube-proxy's nftables service map keys
        ``ip daddr . meta l4proto . th dport``: its endpoint chains' ``meta
        l4proto tcp dnat to …`` then holds every packet reaching it, as
        ``-p tcp -j DNAT`` does in the iptables mode's endpoint chains after
        the jump ``-d IP -p tcp --dport P -j KUBE-SVC-…``, and the DNAT's
        image is made from the mark jump's ``ite`` (:meth:`_nat_image`).
        Kept per map and context (a list per map, its tuples made once)."""
        key = ("branch outers", id(action), ctx.before_conntrack, ctx.env)
        out = self.match_cache.get(key, self)
        if out is self:
            f, t = self.space.false, self.space.true
            out = [self._frozen_outer(match, k_u)
                   if k_l is k_u and k_u is not f and k_u is not t and isinstance(target, (Jump, Goto))
                   else None for (match, target), (k_l, k_u) in zip(action.branches, keys)]
            if not any(out):
                out = None
            self.match_cache[key] = out
        return out

    def _frozen_outer(self, match, node) -> tuple:
        """``(node, the fields match reads as written, the space fields
        node's BDD reads)``: :attr:`within`'s entry for the exact ``node``
        of ``match`` (a verdict map's key)."""
        return (node, self._frozen(_fields_read([match])), self._frozen(self._match_fields(node)))

    def _translated_if_taken(self, action: Nat, low, key_u):
        """The lower set of a NAT map's branch whose key is not known
        (``dnat to numgen inc mod 2 map { 0 : A, 1 : B }``: which element a
        packet takes is the kernel's counter's): every packet that may take
        it. Such a packet surely becomes the branch's image *if* it takes it,
        and the image is a packet of its own — its address or port written,
        the translation's status bit set — whose fate later chains decide
        by its fields alone: "surely accepted" holds for each image, while
        which image a connection becomes stays undecided. Packets already
        carrying the status bit are left out (their image could be
        themselves, which may also take another way)."""
        sp = self.space
        var = f"ct_status:{action.fields[2]}"
        if var not in sp.bdd.vars:
            return sp.false
        return low & key_u & ~sp.bdd.var(var)

    def _dispatch_keys(self, action: Dispatch, ctx: _Context):
        """The branches of ``action`` as the packets entering the map see
        them, computed from the keys alone (kept per map and context):
        branch ``i`` surely takes ``low ∧ b_l[i] ∧ ¬(b_u[0] ∨ … ∨ b_u[i-1])``
        and possibly ``up ∧ b_u[i] ∧ ¬(b_l[0] ∨ … ∨ b_l[i-1])`` — the first
        branch that holds wins, exactly — and ``(rest_l, rest_u)`` keep the
        packets no branch takes. Taking each branch's key off the entering
        set in turn instead would rebuild that (large) set once per branch:
        quadratic on kube-proxy's service map, whose keys are disjoint and
        small (so each ``b ∧ ¬union`` here is cheap).

        A key or rest that is empty or everything is ``space.false`` /
        ``space.true`` itself (``_dispatch`` takes those without an
        operation). A small map is kept by its branches' match objects, not
        by the map: the nft reader shares them between maps alike
        (kube-proxy's ``numgen random mod N vmap``, one per service), so
        those maps share one entry and its keys."""
        branches = action.branches
        matches = [m for m, _ in branches]
        ident = tuple(map(id, matches)) if len(branches) <= SHARED_KEYS_MAX else id(action)
        env = self._read_env(ident, matches, ctx.env)
        cache_key = ("dispatch", ident, ctx.before_conntrack, env)
        cached = self.match_cache.get(cache_key)
        if cached is None:
            sp = self.space
            f, t = sp.false, sp.true
            keys = []
            taken_l = taken_u = f  # union of the lower / upper keys so far
            for match in matches:
                b_l, b_u = encode_bounds(match, sp, env, keep=False)  # (kept here, per map)
                if ctx.before_conntrack:
                    b_l, b_u = (self._pre_conntrack(b_l), self._pre_conntrack(b_u)) if b_l is not b_u \
                        else (self._pre_conntrack(b_u),) * 2
                if b_l is not b_u and b_l == b_u:  # (an AllOf's bounds come as two equal nodes)
                    b_l = b_u
                if b_l is b_u and taken_l is taken_u:  # exact so far: one operation each
                    key = b_u & ~taken_u
                    key = f if key == f else t if key == t else key
                    keys.append((key, key))
                    taken_l = taken_u = taken_u | b_u
                else:
                    k_l, k_u = b_l & ~taken_u, b_u & ~taken_l
                    keys.append((f if k_l == f else t if k_l == t else k_l,
                                 f if k_u == f else t if k_u == t else k_u))
                    taken_l, taken_u = taken_l | b_l, taken_u | b_u
            rest_l = ~taken_u
            rest_u = rest_l if taken_l is taken_u else ~taken_l
            cached = self.match_cache[cache_key] = (keys, f if rest_l == f else rest_l,
                                                    f if rest_u == f else rest_u)
        return cached

    # -- packet changes (relational images) --------------------------------
    #
    # Sets in the walk are not intersected with ``space.valid`` (smaller
    # BDDs; results are wrapped at the end). Union, intersection and
    # difference commute with that intersection; an image does not, so
    # before quantifying a field away the set is first intersected with the
    # validity clauses that mention the field (``valid_for``): then the
    # image of the set, intersected with ``valid``, is exactly the image of
    # its valid packets.

    def _assign(self, node, field: str, value: int, mask: int | None = None, checked: bool = False):
        """Image of ``node`` under ``field := value`` on the bits of ``mask``.
        ``checked``: the caller knows no validity clause constrains these
        bits within ``node``."""
        sp = self.space
        spec = sp.spec(field)
        mask = (1 << spec.width) - 1 if mask is None else mask
        if not mask or node == sp.false:
            return node
        factor = self.factor
        if factor is not None and self._factored(factor, node, field):
            # node = base ∧ match, the match reading none of the field's
            # bits: the image is match ∧ image(base), the very same set
            base = factor[1]
            key = (field, mask, value, checked, base)
            image = self.images.get(key)
            if image is None:
                self.factor = None
                image = self._assign(base, field, value, mask, checked)
                self.factor = factor
                _keep_last(self.images, key, image)
            if factor[2] is self.leave_off and node is factor[0]:
                self.leave_off = None  # the caller meets it with the match (_Met)
                return image
            return factor[2] & image
        key = (field, mask)
        names = self.exist_vars.get(key)
        if names is None:
            names = self.exist_vars[key] = [spec.var(b) for b in range(spec.width) if mask >> b & 1]
        if not checked:
            node = node & sp.valid_for(field)
        node = sp.exist(names, node)
        key = (field, mask, value)
        values = self.exist_vars.get(key)
        if values is None:
            values = self.exist_vars[key] = sp.masked(field, mask, value)
        return node & values

    def _factored(self, factor: tuple, node, field: str) -> bool:
        """Is ``node`` the packets the jump being walked sends on (``factor``:
        ``(hit, base, match, the fields match reads)``, as :meth:`_rule`
        sets it) and does its match read no bit of ``field``? The match's
        fields are its support's, worked out for the jump anyway
        (:meth:`_outer`): asking CUDD for the support again per endpoint's
        KUBE-MARK-MASQ, with a set of the field's 32 names and a cache entry
        per endpoint, took ~1.5% of the walk of 100k kube-proxy rules."""
        return field not in factor[3] and node == factor[0]

    def _effect(self, effect, ctx: _Context, low, up):
        if self._leaves_alone(effect, ctx):
            return low, up  # logging, or a field no rule reads: nothing later can tell
        if not isinstance(effect, Log):
            self.sink.exact = False  # packets change: verdicts no longer partition what entered
        # Equal bounds: one image (an approximated copy differs per bound).
        same = (low is up or low == up) and not (isinstance(effect, SetField) and effect.copy_from)
        if isinstance(effect, SetField) and effect.field == "ttl" and len(_env(ctx, (), self.reads_ttl)) > 2:
            return self._forwarded_ttl(effect, low, up, same)
        if isinstance(effect, SetField):
            if self.tags and effect.field in self.tags:
                low = self._untagged_for(effect, low)
            up = self._set_field(effect, up, True)
            # (no packet surely here — kube-proxy's endpoint chains past a
            # probability match: the image of none is none)
            return (up if same else low if low == self.space.false else self._set_field(effect, low, False)), up
        if isinstance(effect, Notrack):
            # The base chain decides (a user chain jumped to from raw
            # PREROUTING untracks too): before conntrack, on prerouting/output.
            if ctx.before_conntrack and ctx.stage in ("prerouting", "output"):
                code = self.space.spec("state").names.index("untracked")
                up = self._assign(up, "state", code)
                return (up if same else self._assign(low, "state", code)), up
            return low, up
        if isinstance(effect, EcnStrip):
            up = self._ecn_strip(effect, up)
            return (up if same else self._ecn_strip(effect, low)), up
        if isinstance(effect, UnknownAction):
            # a field set to a value the model does not work out (``meta mark
            # set ct mark | 1``): where no rule reads it nothing can tell;
            # else the packets go on with any value of it: possibly each
            # (the upper set forgets it: kept as it was, a rule after the
            # write that reads a value the earlier rules had taken off was
            # said unreachable, ``meta mark != 0 accept; meta mark set ct
            # mark | 1; meta mark 5 drop``), surely each only tagged
            # (:meth:`_havoc`) — or, where the space has no tag for the
            # field, no longer surely anywhere: undecided
            if effect.field is not None and effect.field not in self.read_fields:
                return low, up
            if effect.field in self.tags:
                return self._havoc(effect.field, low), self._forget(effect.field, up)
            self.sink.unknown(low, up)
            return self.space.false, self._forget(effect.field, up)
        return low, up  # Log and friends leave the packet alone

    def _havoc(self, field: str, low):
        """The lower image of ``low`` under a write of a value not worked
        out to ``field``: every value of the field, tagged (``havoc:F``).

        A tagged packet in a lower set is there *if* the value written was
        its value of the field: the walk goes on with every value, each
        surely where the value written is that one, and the checks read a
        tagged packet as surely somewhere only where it is so for every
        value (:meth:`_resolved`, :meth:`_resolved_verdicts`): ∃F to walk
        on, ∀F to conclude. So a mark set from a map and read by rules
        that all accept (nftables' interval_map_delete dump) is surely
        accepted, as the engine, whose answer is the same for every way
        the reads go, has it; where the reads decide differently it is
        undecided. An untagged packet was surely here with its own value:
        any value now. A tagged one (written twice) is surely here for
        every value now only where it was for every value before. Upper
        sets are never tagged (:meth:`_forget`): any value, possibly."""
        sp = self.space
        if low == sp.false:
            return low
        t, name, fvars = self.tags[field]
        n0, n1 = _tag_halves(sp, name, t, low)
        out = sp.exist(fvars, sp.valid_for(field) & n0)
        if n1 != n0:
            out |= _for_every(sp, field, fvars, n1)
        return out & t

    def _untagged_for(self, effect: SetField, low):
        """``low`` before ``effect`` writes a tagged field (:meth:`_havoc`):
        a tagged packet goes on only where it was there for every value of
        the bits written (the value written makes them all one), untagged
        where the write sets the whole field (to a constant, or to another
        field's value); the untagged packets as they were."""
        sp = self.space
        t, name, fvars = self.tags[effect.field]
        n0, n1 = _tag_halves(sp, name, t, low)
        if n0 == n1:
            return low  # no packet tagged
        spec = sp.spec(effect.field)
        full = (1 << spec.width) - 1
        mask = effect.mask & full
        if effect.copy_from and sp.layout.fields.get(effect.copy_from) is not None:
            mask &= (1 << sp.spec(effect.copy_from).width) - 1
        if effect.add:
            mask = full  # (no such write of a mark: a sound guess, every bit, the tag kept)
        elif mask == full:  # (a constant, or another field's value)
            return n0 | _for_every(sp, effect.field, fvars, n1)
        bits = [fvars[b] for b in range(spec.width) if mask >> b & 1]
        return (n0 & ~t) | (_for_every(sp, effect.field, bits, n1) & t)

    def _forget(self, field: str | None, node):
        """Image of ``node`` under a write of any value to ``field`` (the
        field quantified away, its validity clauses kept): ``node`` itself
        where the field is None (not named) or not in the space."""
        sp = self.space
        spec = sp.layout.fields.get(field) if field is not None else None
        if spec is None or spec.kind != "int" or node == sp.false:
            return node
        key = (field, (1 << spec.width) - 1)
        names = self.exist_vars.get(key)
        if names is None:
            names = self.exist_vars[key] = [spec.var(b) for b in range(spec.width)]
        return sp.exist(names, node & sp.valid_for(field))

    def _forwarded_ttl(self, effect: SetField, low, up, same: bool):
        """A TTL write past ip_forward, where sets hold the TTL one higher
        than rules read it: set v holds v + 1; taking away saturates at 1;
        what would be 256 (set 255, an addition reaching 255) is not held:
        any TTL possibly, none surely."""
        sp = self.space
        ttl_vars = list(sp.spec("ttl").bit_vars)
        if effect.add < 0:
            up = self._ttl_added(up, effect.add, floor=1)
            return (up if same else self._ttl_added(low, effect.add, floor=1)), up
        if effect.add > 0:
            over = sp.at_least("ttl", 0x100 - effect.add)  # would read 255: held as 256
            within = ~over
            new_up = self._ttl_added(up & within, effect.add) | sp.exist(ttl_vars, up & over & sp.valid_for("ttl"))
            return self._ttl_added(low & within, effect.add), new_up
        if effect.copy_from or effect.mask & 0xFF != 0xFF or effect.value >= 0xFF:
            return sp.false, sp.exist(ttl_vars, up & sp.valid_for("ttl"))
        effect = SetField("ttl", effect.value + 1, 0xFF)
        up = self._set_field(effect, up, True)
        return (up if same else self._set_field(effect, low, False)), up

    def _ttl_added(self, node, add: int, floor: int = 0):
        """Image of ``node`` under ``ttl := ttl + add``, saturating at
        ``floor`` and 255 (the TTL target's --ttl-inc/--ttl-dec)."""
        sp = self.space
        if node == sp.false:
            return node
        node = node & sp.valid_for("ttl")
        edge = sp.eq("ttl", 0xFF) if add > 0 else sp.at_most("ttl", floor)
        for _ in range(min(abs(add), 0xFF)):
            node = ttl_step(node & ~edge, sp, 1 if add > 0 else -1) | (node & edge)
        return node

    def _set_field(self, effect: SetField, node, upper: bool):
        sp = self.space
        if effect.add:
            return self._ttl_added(node, effect.add) if effect.field == "ttl" else node
        parts = [("ecn", 0, 2), ("dscp", 2, 6)] if effect.field == "tos" else [(effect.field, 0, None)]
        for name, offset, width in parts:
            spec = sp.layout.fields.get(name)
            if spec is None or spec.kind != "int":
                return node  # a field the space does not model: nothing to track
            width = width or spec.width
            sub = (1 << width) - 1
            mask, value = effect.mask >> offset & sub, effect.value >> offset & sub
            if effect.copy_from:
                node = self._copy_bits(node, name, effect.copy_from, mask, upper)
                continue
            # new = (old & ~mask) ^ value: masked bits become value's, others flip where value has 1s.
            # (kept per write: KUBE-MARK-MASQ's is made once, not per run)
            key = ("flips", name, mask, value)
            flips = self.exist_vars.get(key)
            if flips is None:
                flips = self.exist_vars[key] = {spec.var(b): ~sp.bdd.var(spec.var(b)) for b in range(width)
                                                if value >> b & 1 and not mask >> b & 1}
            if flips:
                node = sp.bdd.let(flips, node & sp.valid_for(name))
            node = self._assign(node, name, value, mask)
        return node

    def _copy_bits(self, node, field: str, source: str, mask: int, upper: bool):
        """Image of ``node`` under ``field := source`` on the bits of
        ``mask`` (CONNMARK save/restore, ``ct mark set mark``). The fields
        lie one after the other in the BDD order, where "equal bit for bit"
        over a source holding many values takes up to 2^width nodes; past
        ``COPY_NODES`` the copy is approximated soundly: the upper bound lets
        the field take any value; the lower bound keeps the packets whose
        source holds a value the ruleset names (:meth:`_named_values`: a
        CONNMARK save after marks set to constants, the usual multi-WAN
        pattern), copied exactly, and no other packet (their verdicts are
        then undecided, never guessed)."""
        sp = self.space
        dst, src = sp.layout.fields.get(field), sp.layout.fields.get(source)
        if src is None or src.kind != "int" or node == sp.false:
            return node
        bits = [b for b in range(min(dst.width, src.width)) if mask >> b & 1]
        image, havoc = self._copied(node, field, source, bits)
        if image is not None:
            return image
        if upper:
            return havoc
        named = sp.false
        for value in self._named_values(source):
            named |= sp.eq(source, value)
        image, _ = self._copied(node & named, field, source, bits)
        return sp.false if image is None else image

    def _copied(self, node, field: str, source: str, bits: list[int]):
        """``(image, havoc)``: ``node`` with ``field``'s ``bits`` set to
        ``source``'s, or None past ``COPY_NODES``; and with them any value."""
        sp = self.space
        dst, src = sp.spec(field), sp.spec(source)
        havoc = sp.exist([dst.var(b) for b in bits], node & sp.valid_for(field))
        node = havoc
        for b in bits:
            x, y = sp.bdd.var(dst.var(b)), sp.bdd.var(src.var(b))
            node &= (x & y) | (~x & ~y)
            if node.dag_size > COPY_NODES:
                return None, havoc
        return node, havoc

    def _named_values(self, field: str) -> list[int]:
        """0 and the values of ``field`` the ruleset writes or compares with
        as whole constants (``--set-mark 2``, ``-m connmark --mark 0x1``)."""
        key = ("named", field)
        found = self.exist_vars.get(key)
        if found is None:
            full = (1 << self.space.spec(field).width) - 1
            values = {0}
            for rule in self.ruleset.rules():
                for a in rule.actions():
                    if isinstance(a, SetField) and a.field == field and not a.copy_from and not a.add:
                        values.add(a.value & full)
                for m in rule.matches:
                    if getattr(m, "field", None) != field:
                        continue
                    if isinstance(m, IntMatch):
                        values.update(lo for lo, hi in m.ranges if lo == hi)
                    elif isinstance(m, BitsMatch) and m.mask & full == full:
                        values.update(m.values)
            found = self.exist_vars[key] = sorted(v for v in values if 0 <= v <= full)
        return found

    def _ecn_strip(self, effect: EcnStrip, node):
        sp = self.space
        tcp = sp.header("flags")
        return (node & ~tcp) | self._assign(node & tcp, "flags", 0, effect.clear_flags, checked=True)

    def _nat(self, action: Nat, low, up, ctx: _Context, rule: Rule | None = None) -> None:
        """Send the images of ``[low, up]`` under ``action`` to the sink; on
        the input path (or a walk it shares), also the lower image as input
        sees it: a prerouting DNAT that changes the destination sends the
        packet to FORWARD instead (the engine's rule), so only packets whose
        destination stays the same surely go on to input."""
        sp = self.space
        false = sp.false
        self.sink.exact = False
        within = rule is not None and self._match_within_nat(rule, action, ctx)
        image_u = self._nat_image(action, up, within)
        image_l = image_u if (low is up or low == up) else self._nat_image(action, low, within)
        alt = None
        if action.kind == "redirect" and ctx.stage == "prerouting" and ctx.path_hook != "input":
            # a redirected packet is delivered (INPUT), never forwarded: on
            # the forward path it stays in the upper sets only (the engine
            # sends it to INPUT); the input path keeps it as it was
            self.sink.accept(false, image_u, image_l if _tracks_input(ctx) else None)
            return
        if (_tracks_input(ctx) and action.kind == "dnat" and action.to_addr is not None and low != false):
            fam = sp.family(action.to_addr.version)
            addr = int(action.to_addr)
            if action.address_range is not None:
                same = low & ~fam  # (which address of the range a packet gets, the kernel's hash says)
            elif self._misses_address(low, action.to_addr):
                same = low & ~fam  # (low ∧ fam ∧ dst = addr is empty)
            else:
                same = low & (~fam | sp.eq("dst", addr))
            alt = image_l if same == low else self._nat_image(action, same, within)
            if same != low:  # these surely leave the input path for forward
                self.path.moved.append(image_l if same == false else self._nat_image(action, low & ~same, within))
        self.sink.accept(image_l, image_u, alt)

    def _misses_address(self, node, addr) -> bool:
        """No packet of ``node`` has the IPv4 destination ``addr``, told by
        the low 32 bits alone (where an IPv4 address lives; the cube the
        DNAT's image is made with, :meth:`_nat_whole`): whether a DNAT
        changes a destination is then answered without the address's
        128-bit cube, a new one per endpoint."""
        return addr.version == 4 and self.space.disjoint(node, self.space.prefix("dst", int(addr), 32, 32))

    def _match_within_nat(self, rule: Rule, action: Nat, ctx: _Context) -> bool:
        """Do the packets ``rule`` hands its NAT action lie within the
        action's one-step image domain (``_nat_whole``) by the rule's match
        alone? They are the reaching set met with the match (no effect
        changed them before), so testing the match once per rule and context
        spares testing every set (kube-proxy's ``-p tcp … -j DNAT``)."""
        if rule.effects:
            return False
        # (keyed by the objects and the walk's one tuple per env: no ints
        # and env tuple per DNAT rule, ~130 B each at 50k of them)
        env = ctx.env
        key = ("nat-within", rule, action, ctx.before_conntrack, self.frozen.setdefault(env, env))
        known = self.match_cache.get(key)
        if known is None:
            whole = self._nat_whole(action)
            leq = self.space._leq
            known = self.match_cache[key] = (whole is not None and leq is not None
                                             and leq(self._matches(rule, ctx)[1], whole[0]))
        return known

    def _nat_image(self, action: Nat, node, within: bool = False):
        """The image of ``node`` under ``action``; ``within``: ``node`` is
        known to lie in ``_nat_whole``'s domain (not tested again)."""
        sp = self.space
        false = sp.false
        if node == false:
            return node
        if action.per_packet or (action.random and action.kind in ("snat", "masquerade")):
            return self._ranged_image(action, node)
        if action.kind in ("dnat", "snat"):
            same = self._left_alone(action, node)
            if same is not None:
                rest = node & ~same
                return same if rest == false else same | self._nat_image(action, rest, within)
        whole = self._nat_whole(action)
        addr_field, port_field, status = action.fields
        if whole is not None and (within or (sp._leq is not None and sp._leq(node, whole[0]))):
            # Every packet has the family of the address and a port header:
            # the writes and the status bit are one quantification and one
            # conjunction (the same set as the steps below, fewer passes).
            made = self.ite_made
            if made is not None and node is made[0] and not made[4] & {addr_field, port_field, "ct_status"}:
                # ``node`` is ite(m, cont, up) with m reading none of the
                # variables V quantified, and the values are address ∧ rest:
                # (∃V. node) ∧ values = address ∧ ite(m, (∃V. cont) ∧ rest,
                # (∃V. up) ∧ rest). A service's endpoint chains are all
                # entered with the same ``up`` (and its mark's image
                # ``cont``), their DNATs mostly to one port: the two
                # branches are made once per service, and per endpoint a
                # small ite (down to m's fields) and the address on top,
                # instead of quantifying each endpoint's set and meeting it
                # with a cube of its own. The same node: a BDD is canonical.
                address, rest = self._nat_values(action, addr_field, port_field, status)
                return address & sp.bdd.ite(made[1], self._image_kept(whole[1], made[2], rest),
                                            self._image_kept(whole[1], made[3], rest))
            return sp.exist(whole[1], node) & self._nat_cube(action)
        if action.to_addr is not None and action.kind != "redirect":
            version = action.to_addr.version
            # IPv4 addresses live in the low 32 bits; validity pins the rest
            # to zero whatever the packet was, so only those bits change.
            mask = 0xFFFFFFFF if version == 4 else None
            node = _split_apply(node, sp.family(version), false, lambda n: self._assign(
                n, addr_field, int(action.to_addr), mask, checked=True))
        if action.to_port is not None:
            node = _split_apply(node, sp.header(port_field), false,
                                lambda n: self._assign(n, port_field, action.to_port, checked=True))
        var = f"ct_status:{status}"
        if var in sp.bdd.vars:
            node = sp.exist([var], node) & sp.bdd.var(var)
        return node


    def _left_alone(self, action: Nat, node):
        """The packets of ``node`` that ``action`` (to one address and port)
        leaves as they are — what it writes is theirs already: the kernel
        changes no tuple and sets no DNAT/SNAT status (``nf_nat_setup_info``).
        None where there are none: one containment test where, as for
        kube-proxy's endpoints, the packets come for another address."""
        sp = self.space
        addr_field, port_field, status = action.fields
        if action.to_port is not None and not 0 <= action.to_port < 1 << sp.spec(port_field).width:
            return None
        if action.to_addr is None and action.to_port is None:
            return None
        # (the address's cube as _nat_values makes it for the image: the
        # very nodes, no others, at one per kube-proxy endpoint)
        cube = self._nat_values(action, addr_field, port_field, status)[0]
        if sp.disjoint(node, cube):
            return None
        same = node & cube
        if action.to_port is not None:
            same &= sp.eq(port_field, action.to_port)
        if action.to_addr is not None:
            same &= sp.family(action.to_addr.version)
        if action.to_port is not None:
            same &= sp.header(port_field)
        if same == sp.false:
            return None
        if action.kind == "dnat" and action.to_addr is not None:
            target = cube & sp.family(action.to_addr.version)
            met = self.dnat_targets_met
            self.dnat_targets_met = target if met is None else met | target
        return same

    def _ranged_image(self, action: Nat, node):
        """The image of ``node`` under a translation to a range of addresses
        or ports, as :mod:`ruleanalyzer.engine.natpick` has the kernel
        choose: the address is one of the range (which one, the kernel's
        hash of the connection's addresses decides: each image is the
        packet's if it gets that address, as a numgen map's branches are,
        :meth:`_translated_if_taken`); a DNAT keeps a port that lies in the
        port range and else takes its first; a SNAT keeps a packet whose
        address and port lie in the range already, keeps a port in the port
        range and else takes any of it; ``random`` takes any port of the
        range (a SNAT without one: of the packet's own port's kind). A
        netmap writes the prefix's bits and keeps the host bits: exact."""
        sp = self.space
        false = sp.false
        addr_field, port_field, status = action.fields
        dnat = action.kind in ("dnat", "redirect")
        addresses = action.address_range if action.kind != "redirect" else None
        port, last_port = action.to_port, action.to_port_last or action.to_port
        in_ports = sp.true if port is None else sp.between(port_field, port, last_port) & sp.header(port_field)
        if not dnat and not action.random and addresses is not None:
            kept = node & sp.between(addr_field, int(addresses[0]), int(addresses[1])) & in_ports
        else:
            kept = false
        before = node
        node = node & ~kept
        if action.netmap and addresses is not None:
            # the prefix's bits written, the host bits kept (xt_NETMAP)
            version = action.to_addr.version
            first, last = int(addresses[0]), int(addresses[1])
            prefix = ~(first ^ last) & (0xFFFFFFFF if version == 4 else (1 << 128) - 1)
            node = _split_apply(node, sp.family(version), false,
                                lambda n: self._assign(n, addr_field, first & prefix, prefix))
        elif action.to_addr is not None and action.kind != "redirect":
            version = action.to_addr.version
            first, last = addresses or (action.to_addr, action.to_addr)
            node = _split_apply(node, sp.family(version), false, lambda n: self._write_range(
                n, addr_field, int(first), int(last), 0xFFFFFFFF if version == 4 else None))
        if port is not None:
            header = sp.header(port_field)
            if port == last_port:
                stays, to = false, (port, port)
            elif action.random:
                stays, to = false, (port, last_port)  # (any port of the range: the kernel's random pick)
            else:  # a port inside the range is kept; else a DNAT's first, a SNAT's random one
                stays, to = node & in_ports, (port, port) if dnat else (port, last_port)
            moves = node & ~stays & header
            node = (node & ~header) | stays | self._write_range(moves, port_field, *to)
        elif action.random and not dnat:
            # a port of the packet's own port's kind (natpick.random_ports)
            header = sp.header(port_field)
            node = (node & ~header) | functools.reduce(operator.or_, (
                self._write_range(node & header & sp.between(port_field, a, b), port_field, low, high)
                for a, b, low, high in SNAT_PORT_KINDS))
        var = f"ct_status:{status}"
        if var in sp.bdd.vars:
            node = sp.exist([var], node) & sp.bdd.var(var)
        if (dnat or action.random) and addresses is not None:
            # the hash (and a random port) may give a packet what it has:
            # then the kernel leaves it as it is, with no status (_left_alone)
            kept |= before & sp.between(addr_field, int(addresses[0]), int(addresses[1])) & in_ports
        return kept | node

    def _write_range(self, node, field: str, low: int, high: int, mask: int | None = None):
        """Image of ``node`` under ``field := any of low … high`` on the
        bits of ``mask`` (all by default)."""
        sp = self.space
        if node == sp.false:
            return node
        spec = sp.spec(field)
        mask = (1 << spec.width) - 1 if mask is None else mask
        names = [spec.var(b) for b in range(spec.width) if mask >> b & 1]
        if spec.width == 128 and low <= high:
            # The kernel picks an IPv6 address word by word (32 bits each):
            # once a word is not the range's last, the words below it take
            # any value (find_best_ips_proto). Those addresses lie in the
            # range widened to whole words below the first that differs.
            shift = 32 * (((low ^ high).bit_length() - 1) // 32) if low != high else 0
            low, high = low >> shift << shift, high >> shift << shift | ((1 << shift) - 1)
        # (a range written backwards, which iptables takes for addresses,
        # wraps round in the kernel's arithmetic: low … the top, 0 … high)
        values = sp.between(field, low, high) if low <= high else \
            sp.between(field, low, mask) | sp.between(field, 0, high)
        return sp.exist(names, node & sp.valid_for(field)) & values

    def _image_kept(self, names: list, node, rest):
        """``(∃names. node) ∧ rest``, the last few kept (:attr:`exists`, :func:`_keep_last`)."""
        key = (id(names), node, rest)  # (names: a list _nat_whole keeps for good)
        out = self.exists.get(key)
        if out is None:
            out = _keep_last(self.exists, key, self.space.exist(names, node) & rest)
        return out

    def _nat_values(self, action: Nat, addr_field: str, port_field: str, status: str):
        """``(address, rest)``: the values ``action`` writes as two cubes,
        the address's (``true`` where none is written; a DNAT's lies above
        the source address and the port) and that of the port and the
        status bit (one per port, kept: shared by a service's endpoints)."""
        sp = self.space
        if action.to_port is not None and not 0 <= action.to_port < 1 << sp.spec(port_field).width:
            return sp.false, sp.false  # (a port out of range: no packet's image)
        if action.to_addr is not None and action.kind != "redirect":
            # (made here, not kept by the space's cube cache, which held one
            # per endpoint to the audit's end: 0.46M BDD nodes, 15 MiB of
            # peak at 100k kube-nftables rules; a cube is one CUDD call)
            bits = range(32 if action.to_addr.version == 4 else sp.spec(addr_field).width)
            address = sp.cube_of(((addr_field, int(action.to_addr), bits),))
        else:
            address = sp.true
        key = ("nat-rest", port_field, action.to_port, status)
        rest = self.exist_vars.get(key)
        if rest is None:
            parts = () if action.to_port is None else (
                (port_field, action.to_port, range(sp.spec(port_field).width)),)
            rest = self.exist_vars[key] = sp.cube_of(parts, ((f"ct_status:{status}", 1),))
        return address, rest

    def _nat_whole(self, action: Nat):
        """``(packets, variables)`` for ``action``'s image in one step, for
        a set within ``packets`` (of the address's family, with the port
        header where a port is written): its image is the set with
        ``variables`` quantified away, conjoined with the values written
        (:meth:`_nat_cube`). Kept per action (one tuple per kind of
        translation); None when the status bit is not in the space."""
        key = action  # (by value: the image depends on nothing else; no tuple and int per action)
        wholes = self.nat_wholes
        if key in wholes:
            return wholes[key]
        sp = self.space
        addr_field, port_field, status = action.fields
        var = f"ct_status:{status}"
        writes_addr = action.to_addr is not None and action.kind != "redirect"
        version = action.to_addr.version if writes_addr else None
        shape = ("nat", addr_field, version, action.to_port is not None)
        out = None
        if var in sp.bdd.vars:
            out = self.exist_vars.get(shape)
            if out is None:
                inside, names = sp.true, [var]
                if writes_addr:
                    spec = sp.spec(addr_field)
                    mask = 0xFFFFFFFF if version == 4 else (1 << spec.width) - 1
                    inside &= sp.family(version)
                    names += [spec.var(b) for b in range(spec.width) if mask >> b & 1]
                if action.to_port is not None:
                    spec = sp.spec(port_field)
                    inside &= sp.header(port_field)
                    names += list(spec.bit_vars)
                out = self.exist_vars[shape] = (inside, names)
        return _keep_last(wholes, key, out)

    def _nat_cube(self, action: Nat):
        """The values ``action`` writes (:meth:`_nat_whole`'s variables):
        the status bit, the address and the port, one set, made when first
        asked (an endpoint's image made of :meth:`_nat_values`' two parts
        needs none), the last :data:`KEPT_LAST` kept."""
        kept = self.nat_values
        values = kept.get(action)
        if values is None:
            address, rest = self._nat_values(action, *action.fields)
            values = _keep_last(kept, action, address & rest)
        return values


def _fields_read(matches) -> set:
    """Names of the fields ``matches`` (and the matches they hold) test, as written."""
    names: set = set()
    todo = list(matches)
    while todo:
        m = todo.pop()
        name = getattr(m, "field", None)
        if name:
            names.add(name)
        todo.extend(getattr(m, "matches", ()))
    return names


def _keep_last(cache: dict, key, value):
    """``cache[key] = value``, the cache emptied first when it holds
    :data:`KEPT_LAST` answers (kept for a visit or two after they are
    made, not to the walk's end); ``value``."""
    if len(cache) >= KEPT_LAST:
        cache.clear()
    cache[key] = value
    return value


def _untagged(space: Space, tags: dict, node):
    """A lower set of the walk (a rule's reaching or matched set) as the
    checks read it: a packet tagged for a field (``_Walker._havoc``; ``tags``
    the walk's) is in it where it is for every value written, its tag gone.
    (A function of the space, not the walker: the records keep it.)"""
    for field, (t, name, fvars) in tags.items():
        if node == space.false:
            break
        n0, n1 = _tag_halves(space, name, t, node)
        if n0 != n1:
            node = n0 | _for_every(space, field, fvars, n1)
    return node


def _tag_halves(space: Space, name: list, t, node):
    """``(untagged, tagged)``: the packets of ``node`` without and with the
    tag ``t`` (its variable ``name``), the tag quantified away."""
    return space.exist(name, node & ~t), space.exist(name, node & t)


def _for_every(space: Space, field: str, variables: list, node):
    """The packets of ``node`` whatever valid value the bits ``variables``
    of ``field`` take (∀: what a tagged lower set concludes)."""
    return ~space.exist(variables, space.valid_for(field) & ~node)


def _multi_entry_chains(ruleset: Ruleset) -> set[int]:
    """Chains more than one rule (or verdict-map branch) jumps to: the only
    ones a chain run can be reused for — less those whose run can never
    visit :data:`MEMO_MIN_RULES` rules (fewer rules, no jump: never kept,
    so never looked up; kube-proxy's one-rule KUBE-MARK-MASQ, run 95k
    times on 100k rules)."""
    seen: dict[int, int] = {}
    small: set[int] = set()
    for table in ruleset.tables:
        for chain in table.chains.values():
            if len(chain.rules) < MEMO_MIN_RULES and not any(r.jump_targets() for r in chain.rules):
                small.add(id(chain))
            for rule in chain.rules:
                for name in rule.jump_targets():
                    target = table.chains.get(name)
                    if target is not None:
                        seen[id(target)] = seen.get(id(target), 0) + 1
    return {k for k, n in seen.items() if n > 1 and k not in small}


def _effect_chains(ruleset: Ruleset, multi_entry: set[int]) -> set[int]:
    """Chains of one rule that only changes the packets (:func:`_sole_effect`)
    and are never memoised: run by :meth:`_Walker._effect_run` where their
    rule surely matches."""
    return {id(chain) for table in ruleset.tables for chain in table.chains.values()
            if len(chain.rules) == 1 and id(chain) not in multi_entry and _sole_effect(chain.rules[0]) is not None}


def _sole_effect(rule: Rule):
    """What a rule that only changes the packets does to them: its action
    (MARK, NOTRACK, ECN, LOG), or nftables' one statement before no verdict
    (``meta mark set meta mark | 0x4000``: a Log action with that effect);
    None for another rule."""
    action, effects = rule.action, rule.effects
    if not effects:
        return action if isinstance(action, (SetField, Notrack, EcnStrip, Log)) else None
    if len(effects) == 1 and isinstance(action, Log) and isinstance(effects[0], (SetField, Notrack, EcnStrip)):
        return effects[0]
    return None


def _env(ctx: "_Context", absent: frozenset | tuple, reads_ttl: bool = False):
    """What the hook and the ruleset decide on this walk (``encode.Env``);
    past ``ip_forward`` (FORWARD and POSTROUTING of the forward path) rules
    read the TTL one lower than the sets hold it, where some rule reads it."""
    role = "out" if ctx.path_hook == "output" else "arrive"
    if reads_ttl and ctx.path_hook == "forward" and ctx.stage in ("forward", "postrouting"):
        return (role, absent, "forwarded")
    return (role, absent)


def absent_status(rulesets) -> frozenset[str]:
    """ct status names no connection can carry: ``dnat`` / ``snat`` when
    none of ``rulesets`` translates destinations / sources."""
    if isinstance(rulesets, Ruleset):
        rulesets = [rulesets]
    kinds = frozenset().union(*(rs.nat_kinds() for rs in rulesets))
    out = set()
    if not kinds & {"dnat", "redirect"}:
        out.add("dnat")
    if not kinds & {"snat", "masquerade"}:
        out.add("snat")
    return frozenset(out)


def arrival(space: Space, hook: str):
    """Packets as they can arrive at the start of ``hook``'s path (raw
    node): a conntrack state conntrack could give them before any NOTRACK
    ran (:meth:`Space.conntrack_consistent`), a NEW one not yet translated,
    and, on ``input``/``forward``,
    the ghost bit saying whether the destination is the host itself
    (``shared``: the stages input and forward share, either)."""
    node = space.conntrack_consistent(space.false)
    # A NEW packet opens its connection: no translation has happened to it
    # yet (the engine's view of a new packet carries no ct status either).
    new = space.eq("state", space.spec("state").names.index("new"))
    for status in ("dnat", "snat"):
        var = f"ct_status:{status}"
        if var in space.bdd.vars:
            node &= ~new | ~space.bdd.var(var)
    if hook in ("input", "forward"):
        ghost = space.bdd.var(LOCAL_GHOST)
        node &= ghost if hook == "input" else ~ghost
    return node
