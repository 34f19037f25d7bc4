"""One iptables command line (``-A INPUT -p tcp --dport 22 -j ACCEPT``) →
a command, a chain, matches and an action.

The words of the line come from the tokenizer in
:mod:`ruleanalyzer.parsers.iptables`; this module walks them the way
iptables' getopt loop does: generic options first, then the options of the
target and of the match modules loaded so far (the most recent first), and
the protocol's own module (``-p tcp`` → ``tcp``) loaded on demand.
Errors are :class:`SpecError` carrying the index of the offending word.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from typing import Callable

from ..model import (AddressMatch, AllOf, AnyOf, Goto, InterfaceMatch, IntMatch, Jump, Log, Match,
                     Nat, OpaqueMatch, Action)
from . import iptables_values as values
from .fastnew import slots_constructor
from .iptables_modules import (EXTENSION_HEADER_MODULES, MODULE_PROTOCOL, MODULES, OPAQUE_MODULES,
                               PROTOCOL_MODULES, opaque_reason)
from .iptables_targets import TARGETS, build_action, nat_has_port
from .iptables_values import BadValue


def _u32(words: list[str], raws: list[str], indices, family: str, text: str) -> Match | None:
    """``-m u32 [!] --u32 EXPR`` decoded where it tests header fields the
    model has (:mod:`.u32`); None leaves it opaque."""
    from .u32 import decode

    opts = [raws[j] for j in indices]
    if "--u32" not in opts:
        return None
    at = opts.index("--u32")
    if at + 1 >= len(opts):
        return None
    expr = words[indices[at + 1]]
    return decode(expr, family, negate="!" in opts[:at + 1], text=text)


def _recent_set_only(words: list[str]) -> bool | None:
    """For ``-m recent`` with ``--set`` and no history check: whether it
    matches (``!`` inverts it: then never); None when it reads history."""
    if "--set" not in words or {"--rcheck", "--update", "--remove"} & set(words):
        return None
    return "!" not in words


class SpecError(Exception):
    """A rule line iptables would refuse; ``index`` is the offending word."""

    def __init__(self, message: str, index: int, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.index = index
        self.hint = hint


#: command option → canonical letter
COMMANDS = {"-A": "A", "--append": "A", "-I": "I", "--insert": "I", "-N": "N",
            "--new-chain": "N", "--new": "N", "-P": "P", "--policy": "P", "-F": "F",
            "--flush": "F", "-X": "X", "--delete-chain": "X", "-E": "E", "--rename-chain": "E",
            "-Z": "Z", "--zero": "Z", "-C": "C", "--check": "C", "-D": "D", "--delete": "D",
            "-R": "R", "--replace": "R"}
#: commands that only print; they have no place in a rules file
PRINT_COMMANDS = {"-L", "--list", "-S", "--list-rules", "-h", "--help", "-V", "--version"}

_SRC, _DST, _PROTO, _IIF, _OIF, _FRAG, _MATCH, _JUMP, _GOTO, _COUNTERS, _V4, _V6 = range(12)
GENERIC = {"-s": _SRC, "--source": _SRC, "--src": _SRC, "-d": _DST, "--destination": _DST,
           "--dst": _DST, "-p": _PROTO, "--protocol": _PROTO, "-i": _IIF, "--in-interface": _IIF,
           "-o": _OIF, "--out-interface": _OIF, "-f": _FRAG, "--fragment": _FRAG,
           "-m": _MATCH, "--match": _MATCH, "-j": _JUMP, "--jump": _JUMP, "-g": _GOTO,
           "--goto": _GOTO, "-c": _COUNTERS, "--set-counters": _COUNTERS, "-4": _V4,
           "--ipv4": _V4, "-6": _V6, "--ipv6": _V6}
#: where an unknown module's options end
_UNKNOWN_MODULE_STOP = {"-m", "--match", "-j", "--jump", "-g", "--goto"}

#: modules whose options exclude each other (one comparison per use)
_ONE_OPTION_MODULES = {"ttl", "hl", "dscp", "length", "tos"}
#: modules iptables refuses without any of their options
_NEEDS_AN_OPTION = {"mark", "connmark", "length", "ttl", "hl", "dscp", "tos", "state",
                    "conntrack", "iprange", "comment", "pkttype", "multiport", "owner", "mac",
                    "physdev", "ecn", "addrtype"}

_MODULE_ALIASES = {"icmpv6": "icmp6", "ipv6-icmp": "icmp6"}


@dataclass(slots=True)
class RuleSpec:
    """The meaning of one command line."""

    command: str
    chain: str | None = None
    #: positional words after the chain: insert position, policy, new name, rule number
    extra: list[str] = field(default_factory=list)
    matches: tuple[Match, ...] = ()
    action: Action | None = None
    comment: str | None = None
    counters: tuple[int, int] | None = None
    #: word index of the -j/-g argument, to locate "undefined chain" errors
    target_index: int | None = None
    #: why the line is ignored (``-6`` in an IPv4 file)
    skip: str | None = None


def is_option(raw: str) -> bool:
    """``-s`` / ``--dport`` / ``-4`` (not ``-1``, not a quoted ``"-x"``)."""
    return len(raw) > 1 and raw[0] == "-" and (not raw[1].isdigit() or raw in ("-4", "-6"))


def interpret(raws: list[str], words: list[str], start: int, family: str,
              is_chain: Callable[[str], bool] = lambda name: False) -> RuleSpec:
    """Interpret ``words[start:]`` (``raws`` are the same words as written,
    quotes kept). ``is_chain`` tells user chains from target extensions."""
    result = compile_line(raws, words, start, family, is_chain)
    return result.execute(raws, words) if isinstance(result, Plan) else result


def compile_line(raws: list[str], words: list[str], start: int, family: str,
                 is_chain: Callable[[str], bool] = lambda name: False,
                 shared: dict | None = None, glued: bool = True,
                 key: str | None = None) -> "Plan | RuleSpec":
    """A rule-adding line → a :class:`Plan` that builds its matches from the
    words (and can be reused for every line of the same skeleton, see
    :func:`skeleton`); any other command → its finished RuleSpec.

    ``shared``: one dict for the plans of one file (of one family), where
    their matches and actions are kept by what builds them and the text
    they were built from, so that lines of different skeletons share equal
    values (``-p tcp``, ``-m conntrack --ctstate NEW``, ``-j ACCEPT``).
    ``glued=False``: the caller knows the words use none of getopt's glued
    forms (their :func:`skeleton` is not None); ``key``: that skeleton, to
    put the plan together from the plans of its segments (:func:`_compose`)."""
    n = len(raws)
    if start >= n:
        raise SpecError("empty rule", max(start - 1, 0))
    head = raws[start]
    command = COMMANDS.get(head)
    if command is None:
        if head in PRINT_COMMANDS:
            raise SpecError(f"{head} only prints; it has no place in a rules file", start)
        raise SpecError(f"{head} is not an iptables command (expected -A, -I, -N, -P, ...)", start,
                        hint="a rule line starts with -A CHAIN")
    i = start + 1
    if command in "FXZ":
        spec = RuleSpec(command)
        if i < n and not is_option(raws[i]):
            spec.chain = words[i]
            i += 1
        if command == "Z" and i < n and raws[i].isdigit():
            spec.extra.append(words[i])
            i += 1
        if i < n:
            raise SpecError(f"unexpected argument {raws[i]!r} after {head}", i)
        return spec
    if i >= n or is_option(raws[i]) or raws[i] == "!":
        raise SpecError(f"option {head} needs a chain name", start)
    if command in "NPE":
        spec = RuleSpec(command, words[i])
        i += 1
        wanted = {"N": 0, "P": 1, "E": 1}[command]
        spec.extra = words[i:i + wanted]
        if len(spec.extra) < wanted:
            raise SpecError(f"option {head} needs " + ("a policy" if command == "P" else
                                                       "a new chain name"), start)
        i += wanted
        if i < n:
            raise SpecError(f"unexpected argument {raws[i]!r} after {head}", i)
        return spec
    i += 1  # the chain
    plan = Plan(command, start + 1, family, shared)
    if command in "IRD":
        if i < n and raws[i].isdigit():
            plan.extra_index = i
            i += 1
            if command == "D":
                if i < n:
                    raise SpecError(f"unexpected argument {raws[i]!r} after a rule number", i)
                plan.delete_by_number = True
                return plan
        elif command == "R":
            raise SpecError(f"option {head} needs a rule number", start)
    expanded = expand_glued(raws[i:], words[i:]) if glued else None
    if expanded is None:
        if key is None or shared is None or not _compose(plan, raws, words, i, is_chain, key):
            _RuleBuilder(raws, words, family, is_chain, plan).run(i)
        return plan
    new_raws, new_words, origin = expanded
    try:
        _RuleBuilder(raws[:i] + new_raws, words[:i] + new_words, family, is_chain, plan).run(i)
        return plan.execute(raws[:i] + new_raws, words[:i] + new_words)
    except SpecError as exc:
        if exc.index >= i:
            exc.index = i + origin[min(exc.index - i, len(origin) - 1)]
        raise


def skeleton(raws: list[str]) -> str | None:
    """What a rule line's plan (and its grammar check) depends on: the
    number of words, where the options and ``!`` stand and how they are
    written, the words after -m and -p, the target extension after -j,
    whether the word after the chain is a number (``-I CHAIN 2``) and
    whether counters are ``P,B``. ``None`` when the line uses getopt's glued
    forms (``-ptcp``, ``--opt=x``), which are not cached.

    A string (a 100k-rule file of hand-kept rules has 50k skeletons: a
    tuple of tuples each was 60% of the peak memory of reading it): two
    flag characters, then one field per word, separated by newlines (no
    word holds one): an option or ``!`` as written, ``NUL`` + what the
    plan reads of the word after -m/-p/-j/-c, or nothing for a value."""
    # one pass (this runs for every rule line): the word after a -m/-p/-j/-c
    # is read on the next turn, before that word is looked at as a mark
    fields = []
    append = fields.append
    after = None
    for r in raws:
        if after is not None:
            if r[0] != "-" and r != "!":
                # a word that is also a mark is written as itself below,
                # which says all the plan reads of it
                if after == 0:
                    append("\0" + r)
                elif after == 1:
                    if '"' in r:
                        return None  # the walk reads the word unquoted: a target or a chain
                    append("\0" + r if r in TARGETS else "\0\1")
                else:
                    append("\0," if "," in r else "\0")
                after = None
                continue
            after = None
        if r[0] != "-" and r != "!":
            append("")
            continue
        append(r)
        if len(r) > 2 and (r[1] != "-" or "=" in r):
            if r[1].isdigit():
                continue  # a negative number, a word
            return None
        after = _KEY_WORD_AFTER.get(r)
    head = raws[0]
    counters = head[0] == "[" and _COUNTERS_WORD.match(head) is not None
    number_after_chain = len(raws) > 2 + counters and raws[2 + counters].isdigit()
    return ("1" if counters else "0") + ("1" if number_after_chain else "0") + "\n".join(fields)


_COUNTERS_WORD = re.compile(r"\[\d+:\d+\]\Z")
#: options whose next word is part of the skeleton → how: 0 as is, 1 as a
#: target extension or "\0" (a chain), 2 whether it is ``P,B``
_KEY_WORD_AFTER = {"-m": 0, "--match": 0, "-p": 0, "--protocol": 0, "-j": 1, "--jump": 1,
                   "-c": 2, "--set-counters": 2}


def _known_words() -> dict[str, str]:
    """The words :func:`known_skeleton` keeps: commands, options, ``!``,
    match, protocol and target names (every target: the skeleton tells a
    target from a chain by them)."""
    from ..model import PROTOCOLS

    words = {"!", *COMMANDS, *PRINT_COMMANDS, *GENERIC, *TARGETS, *MODULES, *OPAQUE_MODULES,
             *_MODULE_ALIASES, *PROTOCOLS}
    for table in MODULES.values():
        words.update(table)
    for names, _ in OPAQUE_MODULES.values():
        words.update(names)
    for options in TARGETS.values():
        words.update(options)
    return {w: w for w in words}


KNOWN_WORDS = _known_words()


def known_skeleton(known: tuple) -> tuple[tuple[int, ...], int] | None:
    """For ``known``, a rule line's words with every word not in
    :data:`KNOWN_WORDS` as None: (the positions of its unknown words, the
    position of the word after -j if unknown, else 0) when all lines of that
    tuple whose unknown words do not start with '-' and whose word after -j
    has no quote have one :func:`skeleton` (the tuple is then a cheaper key
    for it: the other words are values, read as values);
    None when they may not (a line starting with an unknown word, an unknown
    word after -m, -p or -c, or in the place of ``-I CHAIN 2``'s number, two
    -j)."""
    n = len(known)
    if known[0] is None or (n > 2 and known[2] is None):
        return None
    target = 0
    for j in range(n - 1):
        if known[j + 1] is None:
            after = _KEY_WORD_AFTER.get(known[j])
            if after == 1:
                if target:
                    return None
                target = j + 1
            elif after is not None:
                return None
    return tuple([j for j, w in enumerate(known) if w is None]), target


_BUILD, _COMMENT, _OPAQUE, _UNKNOWN, _COUNT, _CONST = range(6)


def _is_negated_single_port(m: Match, field: str) -> bool:
    return (isinstance(m, IntMatch) and m.field == field and m.negate and len(m.ranges) == 1
            and m.ranges[0][0] == m.ranges[0][1])


def _backend_dependent_ports(matches: list[Match]) -> tuple[Match, ...]:
    """``! --sport A ! --dport B``: the backends disagree, checked on a kernel.

    xtables' tcp/udp match needs both ports to differ; iptables-nft 1.8
    compiles the pair into one 4-byte compare, so either differing is
    enough. Which one holds depends on the backend: say so."""
    at_sport = at_dport = None
    for k, m in enumerate(matches):  # one plain pass: this runs for every rule
        if m.negate and m.__class__ is IntMatch:
            if at_sport is None and _is_negated_single_port(m, "sport"):
                at_sport = k
            elif at_dport is None and _is_negated_single_port(m, "dport"):
                at_dport = k
    if at_sport is None or at_dport is None:
        return tuple(matches)
    sport, dport = matches[at_sport], matches[at_dport]
    text = f"{sport.text} {dport.text}".strip()
    backend = OpaqueMatch(reason="depends on the iptables backend: iptables-nft tests '! --sport A "
                                 "! --dport B' as either port differing, iptables-legacy as both",
                          text=text)
    # Both differ: every backend matches. Neither differs: none does. Only
    # one differs: the backend decides.
    both = AllOf((sport, dport))
    combined = AnyOf((both, AllOf((AnyOf((sport, dport)), backend))), text=text)
    # by position: equal matches are one shared object (compile_line's ``shared``)
    out = [m for k, m in enumerate(matches) if k != at_sport and k != at_dport]
    out.insert(at_sport, combined)
    return tuple(out)
_MISSING = object()


class Plan:
    """How to build a rule from the words of its line: a list of steps,
    each naming the word positions it reads. Made once per skeleton."""

    __slots__ = ("command", "chain_index", "family", "extra_index", "delete_by_number", "ops",
                 "target", "target_options", "target_start", "jump", "proto", "proto_negated",
                 "skip", "actions", "shared", "port_pairs", "jumps", "uses", "fast")

    def __init__(self, command: str, chain_index: int, family: str, shared: dict | None = None):
        self.command, self.chain_index, self.family = command, chain_index, family
        self.shared = shared
        self.extra_index: int | None = None
        self.delete_by_number = False
        self.ops: list[tuple] = []
        self.target: str | None = None
        self.target_options: list[tuple[str, tuple[int, ...]]] = []
        self.target_start = -1
        self.jump: tuple[type, int] | None = None
        self.proto: int | None = None
        self.proto_negated = False
        self.skip: str | None = None
        #: the action per target text (or jump word): lines of one plan
        #: repeat them, and actions are frozen, so equal ones are shared
        #: (with other plans' through ``shared`` once this plan's checks pass)
        self.actions: dict = {}
        #: whether the plan can match '! --sport A ! --dport B' (known on first use)
        self.port_pairs: bool | None = None
        #: the Jump (Goto) of each chain name (known on first use)
        self.jumps: dict | None = None
        #: lines run through :meth:`fields`, and the code made for this plan
        #: by :func:`_specialize` once it has run often enough
        self.uses = 0
        self.fast: Callable | None = None

    def execute(self, raws: list[str], words: list[str]) -> RuleSpec:
        """The rule of one line (raises SpecError on a bad value)."""
        return RuleSpec(*self.fields(raws, words))

    def fields(self, raws: list[str], words: list[str]) -> tuple:
        """:meth:`execute`'s RuleSpec as the tuple of its fields, in order
        (the file reader unpacks it: one object less per rule)."""
        fast = self.fast
        if fast is not None:
            return fast(raws, words)
        uses = self.uses = self.uses + 1
        if uses == _SPECIALIZE_AT and self.shared is not None:
            self.fast = _specialize(self)
        extra = [words[self.extra_index]] if self.extra_index is not None else []
        if self.delete_by_number:
            return self.command, words[self.chain_index], extra, (), None, None, None, None, None
        matches = []
        comments = None
        counters = None
        for op in self.ops:
            kind = op[0]
            if kind == _BUILD:
                # matches are frozen: one object per distinct text (and
                # argument words, when quotes make them differ from it)
                if op[8] is not None and '"' not in raws[op[5] - 1]:
                    # one plain value after fixed words: kept by the value
                    value = raws[op[5] - 1]
                    match = op[7].get(value, _MISSING)
                    if match is _MISSING:
                        match = self.value_match(op, value)
                else:
                    match = self.build_match(op, raws, words)
                if match is not None:
                    matches.append(match)
            elif kind == _COMMENT:
                if comments is None:
                    comments = [words[op[1]]]
                else:
                    comments.append(words[op[1]])
            elif kind == _OPAQUE:
                matches.append(self.opaque_match(op, raws, words))
            elif kind == _UNKNOWN:
                matches.append(self.unknown_match(op, raws))
            elif kind == _COUNT:
                counters = self.counters(op, words)
            else:
                matches.append(op[1])
        pairs = self.port_pairs
        if pairs is None:
            # '! --sport A ! --dport B' needs two negated matches (negated
            # port matches come from negated options only)
            pairs = self.port_pairs = sum(1 for op in self.ops if op[0] == _BUILD and op[3]) > 1
        matches = _backend_dependent_ports(matches) if pairs else tuple(matches)
        if self.jump is not None:
            kind, index = self.jump
            name = words[index]
            action = self.jump_table().get(name)
            if action is None:
                action = self.jumps[name] = kind(name)
            target_index = index
        elif self.target is not None:
            target_index = self.target_start + 1
            action = self.target_action(raws, words)
        else:
            action = Log("no target")
            target_index = None
        return (self.command, words[self.chain_index], extra, matches, action,
                _comment(comments), counters, target_index, self.skip)

    def check(self, raws: list[str], words: list[str]) -> None:
        """Raise the SpecError :meth:`fields` would raise for this line, if
        any, building as little as it can: a plain value its builder's
        ``valid`` vouches for is not built (nor kept), every other step
        runs as :meth:`fields` runs it (and keeps what it builds), so
        :meth:`fields` on the same words later raises nothing (the file
        reader's lazy chains)."""
        family = self.family
        for op in self.ops:
            kind = op[0]
            if kind == _BUILD:
                if op[8] is not None:
                    value = raws[op[5] - 1]
                    if '"' not in value:
                        if value not in op[7]:
                            valid = op[9]
                            if valid is None or not valid(value, family):
                                self.value_match(op, value)
                        continue
                self.build_match(op, raws, words)
            elif kind == _COUNT:
                self.counters(op, words)
            # comments, opaque and unknown modules (u32's decoder catches its
            # own errors) and constants raise nothing
        if self.jump is None and self.target is not None:
            found = self.plain_nat_words(words) if self.target in _NAT_OPTION else None
            if found is not None and int(found[2]) <= 65535 and values.plain_address(found[1]):
                return  # plain_nat reads it (its address parses: a strict dotted quad)
            key = self.target_key(raws, words)[1]
            if key not in self.actions:
                # what target_action checks depends on the target's words, -p
                # and the file's family: each such target is checked once
                done = self.shared.setdefault("targets checked", set()) \
                    if self.shared is not None else set()
                mark = (self.target, key, self.proto, self.proto_negated)
                if mark not in done:
                    self.target_action(raws, words)
                    done.add(mark)

    # -- the steps, one method each where a line's plan may run them
    # -- through :func:`_specialize`'s code as well

    def value_match(self, op: tuple, value: str) -> Match | None:
        """A ``_BUILD`` step's match of one plain value not built yet."""
        _, build, _, negate, _, _, at, cache, prefix, _ = op
        try:
            match = build([value], negate, prefix + value, self.family)
        except BadValue as exc:
            raise SpecError(str(exc), at) from None
        cache[value] = match
        return match

    def build_match(self, op: tuple, raws: list[str], words: list[str]) -> Match | None:
        """A ``_BUILD`` step's match, kept by its text (and argument words
        where quotes make them differ from it)."""
        _, build, indices, negate, first, end, at, cache, _, _ = op
        text = " ".join(raws[first:end])
        key = text if '"' not in text else (text, tuple([words[j] for j in indices]))
        match = cache.get(key, _MISSING)
        if match is _MISSING:
            try:
                match = build([words[j] for j in indices], negate, text, self.family)
            except BadValue as exc:
                raise SpecError(str(exc), at) from None
            cache[key] = match
        return match

    def opaque_match(self, op: tuple, raws: list[str], words: list[str]) -> Match:
        _, name, indices, cache = op
        key = tuple([raws[j] for j in indices])
        if words is not raws:
            key = (key, tuple([words[j] for j in indices]))
        match = cache.get(key)
        if match is None:
            family = self.family
            text = " ".join(["-m", name] + [raws[j] for j in indices])
            if name in EXTENSION_HEADER_MODULES:
                # The model's packets carry no IPv6 extension headers,
                # and these matches fail on a packet without theirs.
                match = cache[key] = AnyOf((), text=text)
            elif name == "u32" and _u32(words, raws, indices, family, text) is not None:
                match = cache[key] = _u32(words, raws, indices, family, text)
            elif name == "recent" and _recent_set_only([raws[j] for j in indices]) is not None:
                # "--set" records the source and always matches (xt_recent:
                # ret = !invert); only --rcheck/--update/--remove read history
                match = cache[key] = (AllOf((), text=text) if _recent_set_only(
                    [raws[j] for j in indices]) else AnyOf((), text=text))
            else:
                opaque_words = [raws[j] if raws[j] == "!" or is_option(raws[j]) else words[j]
                                for j in indices]
                match = cache[key] = OpaqueMatch(
                    reason=opaque_reason(name, opaque_words), text=text)
        return match

    @staticmethod
    def unknown_match(op: tuple, raws: list[str]) -> Match:
        _, name, first, end, cache = op
        text = " ".join(raws[first:end])
        match = cache.get(text)
        if match is None:
            match = cache[text] = OpaqueMatch(
                reason=f"depends on the match module {name}, which the analyzer does "
                "not model", text=text)
        return match

    @staticmethod
    def counters(op: tuple, words: list[str]) -> tuple[int, int]:
        values_ = [words[j] for j in op[1]]
        if len(values_) == 1:
            values_ = values_[0].split(",", 1)
        try:
            return int(values_[0]), int(values_[1])
        except (ValueError, IndexError):
            raise SpecError(f"bad counters {' '.join(values_)!r}", op[1][0]) from None

    def jump_table(self) -> dict:
        """One Jump (Goto) per chain name in the file: a dict of them shared
        by the plans (kube-proxy: a jump per endpoint chain)."""
        jumps = self.jumps
        if jumps is None:
            jumps = self.jumps = {} if self.shared is None else \
                self.shared.setdefault(("jumps", self.jump[0]), {})
        return jumps

    def target_key(self, raws: list[str], words: list[str]) -> tuple:
        """(the text of the line's target, what its action is kept by)."""
        if self.target_options:
            text = " ".join(raws[self.target_start:])
            key = text if '"' not in text else \
                (text, tuple([words[j] for _, indices in self.target_options for j in indices]))
        else:
            text = key = f"-j {self.target}"
        return text, key

    def target_action(self, raws: list[str], words: list[str]) -> Action:
        """The action of a target extension (``-j DNAT --to-destination …``)."""
        text, key = self.target_key(raws, words)
        action = self.actions.get(key)
        if action is None:
            nat = self.plain_nat(words) if self.target in _NAT_OPTION else None
            if nat is not None:
                action = self.share((self.target, key), lambda: _nat(*nat))
                self.actions[key] = action
                return action
            options = [(name, [words[j] for j in indices])
                       for name, indices in self.target_options]
            try:
                self.check_target(options)
                action = self.share((self.target, key),
                                    lambda: build_action(self.target, options, self.family, text))
            except BadValue as exc:
                raise SpecError(str(exc), self.target_start + 1) from None
            self.actions[key] = action
        return action

    def plain_nat(self, words: list[str]) -> tuple | None:
        """The Nat fields of ``-j DNAT --to-destination A.B.C.D:PORT`` (SNAT
        ``--to-source``), the target kube-proxy writes once per endpoint,
        read without the general target path (dicts of the options, their
        checks, the range parser: half the cost of such a rule); None for
        any other form or a bad value, which the general path reads and
        reports."""
        found = self.plain_nat_words(words)
        if found is None:
            return None
        port = int(found[2])
        try:
            address = values.parse_address(found[1], "ip")
        except BadValue:
            return None
        return (_NAT_KIND[self.target], address, None, port, None) if port <= 65535 else None

    def plain_nat_words(self, words: list[str]):
        """:meth:`plain_nat`'s form of the target: the match of its address
        and port (not checked yet), or None."""
        options = self.target_options
        if len(options) != 1 or self.family != "ip" or self.proto_negated or \
                self.proto not in _NAT_PORT_PROTOCOLS:
            return None
        name, indices = options[0]
        if name != _NAT_OPTION[self.target] or len(indices) != 1:
            return None
        return _PLAIN_NAT.match(words[indices[0]])

    def share(self, key, build):
        """The value ``build()`` makes for ``key``, kept in ``shared``."""
        if self.shared is None:
            return build()
        actions = self.shared.get("actions")
        if actions is None:
            actions = self.shared["actions"] = {}
        value = actions.get(key)
        if value is None:
            value = actions[key] = build()
        return value

    def check_target(self, options: list[tuple[str, list[str]]]) -> None:
        """Protocol demands of targets, checked by the kernel when loading."""
        opts = dict(options)
        target = self.target
        tcp_only = (target == "REJECT" and opts.get("--reject-with", [""])[0] in
                    ("tcp-reset", "tcp-rst")) or target == "TCPMSS"
        if tcp_only and (self.proto != 6 or self.proto_negated):
            raise BadValue(f"{target} {' '.join(sum(opts.values(), []))} needs -p tcp".strip())
        nat_ports = any(nat_has_port(a[0], self.family) for o, a in options
                        if o in ("--to-destination", "--to-source")) or "--to-ports" in opts
        if nat_ports and (self.proto not in (6, 17, 132, 33, 136) or self.proto_negated):
            raise BadValue("a port in a NAT target needs -p tcp, udp, sctp or dccp")


#: plain_nat's targets and their option; an address and a decimal port
#: (a port makes check_target ask for one of the protocols with ports)
_NAT_OPTION = {"DNAT": "--to-destination", "SNAT": "--to-source"}
#: the Nat kind of each: one string, not one per rule (a kube-proxy endpoint's)
_NAT_KIND = {"DNAT": "dnat", "SNAT": "snat"}
_PLAIN_NAT = re.compile(r"([0-9.]+):([1-9][0-9]{0,4})\Z")
_NAT_PORT_PROTOCOLS = frozenset({6, 17, 132, 33, 136})
#: Nat(kind, to_addr, to_addr_last, to_port, to_port_last)
_nat = slots_constructor(Nat, ("kind", "to_addr", "to_addr_last", "to_port", "to_port_last"),
                         ("dnat", None, None, 80, None))

#: a plan's uses before :func:`_specialize` writes its code: writing it
#: (exec) costs as much as ~200 lines gain from it (most plans of a file of
#: hand-kept rules serve one line; a kube-proxy dump's serve thousands)
_SPECIALIZE_AT = 200


def _comment(comments: list[str] | None) -> str | None:
    """A rule's comment text from its ``--comment`` words: one string per
    text (kube-proxy writes a service's comment on its every rule: 20k
    rules, 9k texts), as :func:`_specialize`'s code makes it."""
    return sys.intern("; ".join(comments)) if comments else None


def _specialize(plan: Plan) -> Callable | None:
    """:meth:`Plan.fields` for one plan, as straight-line code: its steps
    unrolled, with their word positions, caches and the plan's constant
    parts written in (a third of the time of the loop over the steps, which
    was most of reading a rule of a skeleton seen before). Every step that
    builds something calls the method the loop calls, so both make the same
    objects and raise the same errors. ``None`` for a plan the loop is left
    to: a delete by number, and '! --sport A ! --dport B' pairs."""
    if plan.delete_by_number or plan.port_pairs is not False:
        return None
    env = {"_MISSING": _MISSING, "value_match": plan.value_match,
           "build_match": plan.build_match, "opaque_match": plan.opaque_match,
           "unknown_match": plan.unknown_match, "count": plan.counters, "Log": Log,
           "target_action": plan.target_action, "COMMAND": plan.command, "SKIP": plan.skip,
           # one string per comment text: kube-proxy writes a service's
           # comment on its every rule (20k rules, 9k texts)
           "intern": sys.intern}
    code = ["def fast(raws, words):", "    matches = []", "    append = matches.append"]
    comments = []
    counters = "None"
    for k, op in enumerate(plan.ops):
        kind = op[0]
        env[f"op{k}"] = op
        if kind == _BUILD and op[8] is not None:
            env[f"cache{k}"] = op[7]
            code += [f"    v = raws[{int(op[5]) - 1}]",
                     "    if '\"' in v:",
                     f"        m = build_match(op{k}, raws, words)",
                     "    else:",
                     f"        m = cache{k}.get(v, _MISSING)",
                     "        if m is _MISSING:",
                     f"            m = value_match(op{k}, v)",
                     "    if m is not None:",
                     "        append(m)"]
        elif kind == _BUILD:
            code += [f"    m = build_match(op{k}, raws, words)",
                     "    if m is not None:",
                     "        append(m)"]
        elif kind == _COMMENT:
            comments.append(f"words[{int(op[1])}]")
        elif kind == _OPAQUE:
            code.append(f"    append(opaque_match(op{k}, raws, words))")
        elif kind == _UNKNOWN:
            code.append(f"    append(unknown_match(op{k}, raws))")
        elif kind == _COUNT:
            code.append(f"    counters = count(op{k}, words)")
            counters = "counters"
        else:
            code.append(f"    append(op{k}[1])")
    if plan.jump is not None:
        env["Kind"], index = plan.jump
        env["jumps"] = plan.jump_table()
        code += [f"    name = words[{int(index)}]",
                 "    a = jumps.get(name)",
                 "    if a is None:",
                 "        a = jumps[name] = Kind(name)"]
        target_index = int(index)
    elif plan.target is not None:
        target_index = int(plan.target_start) + 1
        if plan.target_options:
            code.append("    a = target_action(raws, words)")
        else:
            env["actions"] = plan.actions
            env["KEY"] = f"-j {plan.target}"
            code += ["    a = actions.get(KEY)",
                     "    if a is None:",
                     "        a = target_action(raws, words)"]
    else:
        code.append("    a = Log('no target')")
        target_index = None
    extra = "[]" if plan.extra_index is None else f"[words[{int(plan.extra_index)}]]"
    comment = "None" if not comments else f"intern({comments[0]})" if len(comments) == 1 else \
        f"intern('; '.join([{', '.join(comments)}]))"
    code.append(f"    return (COMMAND, words[{int(plan.chain_index)}], {extra}, tuple(matches), a, "
                f"{comment}, {counters}, {target_index}, SKIP)")
    # Only integers (word positions, int() above) and fixed names are written
    # into the code; every value read from the input stays in ``env``.
    exec("\n".join(code), env)  # noqa: S102 - the code is made above from the plan's numbers
    return env["fast"]


def _unique_prefix(name: str, names) -> str | None:
    """getopt accepts an unambiguous prefix of a long option (``--to``)."""
    if not name.startswith("--") or len(name) < 4:
        return None
    hits = [full for full in names if full.startswith(name)]
    return hits[0] if len(hits) == 1 else None


_GLUED_SHORT = set("sdpiojgm")


def expand_glued(raws: list[str], words: list[str]) -> tuple[list[str], list[str], list[int]] | None:
    """getopt's ``--opt=value`` and ``-ptcp`` forms as separate words, with
    each new word's original index (``None`` when there are none)."""
    for r in raws:  # a loop, not any(): this runs for every line compiled
        if len(r) > 2 and r[0] == "-" and (r[1] in _GLUED_SHORT or (r[1] == "-" and "=" in r)):
            break
    else:
        return None
    new_raws, new_words, origin = [], [], []
    for index, (raw, word) in enumerate(zip(raws, words)):
        if raw.startswith("--") and "=" in raw:
            name, _, value = raw.partition("=")
            parts = [(name, name), (value, word.partition("=")[2])]
        elif len(raw) > 2 and raw[0] == "-" and raw[1] in _GLUED_SHORT:
            parts = [(raw[:2], raw[:2]), (raw[2:], word[2:])]
        else:
            parts = [(raw, word)]
        for r, w in parts:
            new_raws.append(r)
            new_words.append(w)
            origin.append(index)
    return new_raws, new_words, origin


def _address_builder(field: str):
    def build(args, negate, text, family):
        return address_match(field, args[0], negate, text, family)
    build.valid = values.plain_network  # one network: no ',' (see iptables_modules' valid)
    return build


def address_match(field: str, value: str, negate: bool, text: str, family: str) -> Match:
    """``-s a[,b…]`` → one AddressMatch; a non-contiguous netmask → an
    OpaqueMatch (never guessed); a host name is refused (never resolved)."""
    parts = value.split(",")
    if len(parts) > 1 and negate:
        raise BadValue("! not allowed with multiple source or destination IP addresses")
    networks = []
    for part in parts:
        try:
            net = values.parse_network(part, family)
        except values.NonContiguousMask:
            return OpaqueMatch(reason=f"{field} under the non-contiguous netmask {part} "
                               "(not modelled as CIDR blocks)", negate=negate, text=text)
        networks.append(net)
    return _address_match(field, tuple(networks), negate, text)


#: AddressMatch(field, networks, negate=..., text=...), for a file's thousands of addresses
_address_match = slots_constructor(AddressMatch, ("field", "networks", "negate", "text"),
                                   ("src", (), True, "! -s 10.0.0.0/8"))


def _proto_builder(args, negate, text, family):
    number = values.parse_protocol(args[0])
    return IntMatch("proto", ((number, number),), negate=negate, text=text) if number else None


def _interface_builder(field: str):
    def build(args, negate, text, family):
        if len(args[0]) > 15:
            raise BadValue(f"interface name {args[0]!r} is longer than 15 characters")
        return InterfaceMatch(field, (args[0],), negate=negate, text=text)
    build.valid = lambda value, family: len(value) <= 15
    return build


_GENERIC_BUILDERS = {_SRC: _address_builder("src"), _DST: _address_builder("dst"),
                     _IIF: _interface_builder("iif"), _OIF: _interface_builder("oif")}


class _RuleBuilder:
    """The getopt-style walk over a rule's options; it fills a :class:`Plan`."""

    __slots__ = ("raws", "words", "family", "is_chain", "plan", "ops", "loaded", "explicit",
                 "n", "used_options", "shared", "local")

    def __init__(self, raws, words, family, is_chain, plan: Plan):
        self.raws, self.words, self.family, self.is_chain = raws, words, family, is_chain
        self.plan = plan
        self.ops = plan.ops
        self.shared = plan.shared
        self.n = len(raws)
        # loaded modules, in order: [name, option table or None (opaque), word indices]
        self.loaded: list[list] = []
        self.explicit: list[tuple[str, int]] = []   # (-m name, word index) for protocol checks
        #: options used per loaded typed module, for "given twice" errors
        self.used_options: dict[int, list[str]] = {}
        #: walking one segment of the line for _compose: whatever would read
        #: what earlier segments left raises _NotLocal
        self.local = False

    def cache(self, key) -> dict:
        """The cache of the values one kind of step builds: the plan's own,
        or the file's (``shared``, keyed by the builder)."""
        if self.shared is None:
            return {}
        found = self.shared.get(key)
        if found is None:
            found = self.shared[key] = {}
        return found

    def build_op(self, build, args: tuple[int, ...], negate: bool, first: int, end: int,
                 at: int) -> tuple:
        """The plan step building a match from the words ``first:end``
        (``at``: where a bad value is reported). An option of one value
        written last (``! -s ADDR``, ``--dport N``) keeps the words before
        the value (options and ``!``, the same on every line of a skeleton):
        its matches are then kept by the value word, without joining the
        text of every line."""
        if len(args) == 1 and args[0] == end - 1:
            prefix = " ".join(self.raws[first:end - 1])
            return (_BUILD, build, args, negate, first, end, at, self.cache((build, prefix)),
                    prefix + " " if prefix else "", getattr(build, "valid", None))
        return (_BUILD, build, args, negate, first, end, at, self.cache(build), None, None)

    # -- the walk ---------------------------------------------------------

    def run(self, i: int, n: int | None = None) -> None:
        """Walk the words from ``i`` (to ``n``: a segment, see _compose)."""
        raws = self.raws
        if n is None:
            n = self.n
        while i < n:
            raw = raws[i]
            negate = raw == "!"
            first = i
            if negate:
                i += 1
                if i >= n:
                    raise SpecError("'!' at the end of the rule negates nothing", first)
                raw = raws[i]
            code = GENERIC.get(raw)  # every generic option is an option
            if code is not None:
                i = self.generic(code, raw, i, negate, first)
            elif is_option(raw):
                i = self.module_option(raw, i, negate, first)
            else:
                raise SpecError(f"unexpected argument {raw!r} (not an option)", i,
                                hint="quote arguments that contain blanks")
        self.finish()

    def take(self, name: str, at: int, i: int, count: int, negate: bool) -> tuple[tuple[int, ...], bool, int]:
        """The word indices of ``count`` arguments after the option at ``at``
        (``-1``: all words up to the next option). A ``!`` before the first
        argument is iptables' old negation syntax."""
        raws, n = self.raws, self.n
        if count == 1 and i < n:
            r = raws[i]
            if r[0] != "-" and r != "!":  # the common case: one plain value
                return (i,), negate, i + 1
        args: list[int] = []
        if count and i < n and raws[i] == "!":
            if negate:
                raise SpecError("multiple '!' flags not allowed", i)
            negate = True
            i += 1
        while (count < 0 or len(args) < count) and i < n and not is_option(raws[i]) and raws[i] != "!":
            args.append(i)
            i += 1
        if count > 0 and len(args) < count:
            raise SpecError(f"option {name} needs {'an argument' if count == 1 else f'{count} arguments'}", at)
        return tuple(args), negate, i

    def text(self, first: int, end: int) -> str:
        return " ".join(self.raws[first:end])

    def generic(self, code: int, raw: str, i: int, negate: bool, first: int) -> int:
        at = i
        plan = self.plan
        if code in (_FRAG, _V4, _V6):
            if code == _FRAG:
                if self.family == "ip6":
                    raise SpecError("unknown option -f (ip6tables has no fragment flag; use -m frag)", at)
                self.ops.append((_CONST, IntMatch("fragment", ((1, 1),), negate=negate,
                                                  text=self.text(first, at + 1))))
            elif negate:
                raise SpecError(f"{raw} cannot be negated", at)
            elif (code == _V6) != (self.family == "ip6"):
                plan.skip = f"{raw}: this rule is for the other IP version"
            return at + 1
        if code == _COUNTERS:
            glued = at + 1 < self.n and "," in self.raws[at + 1]  # -c P,B
            args, negate, i = self.take(raw, at, at + 1, 1 if glued else 2, negate)
            self.ops.append((_COUNT, args))
            return i
        args, negate, i = self.take(raw, at, at + 1, 1, negate)
        value = self.words[args[0]]
        builder = _GENERIC_BUILDERS.get(code)
        if builder is not None:
            self.ops.append(self.build_op(builder, args, negate, first, i, at + 1))
            return i
        try:
            if code == _PROTO:
                if plan.proto is not None:
                    raise SpecError("multiple -p flags not allowed", at)
                number = values.parse_protocol(value)
                if number == 0 and negate:
                    raise SpecError("rule would never match protocol (! -p all)", at)
                plan.proto, plan.proto_negated = number, negate
                self.ops.append(self.build_op(_proto_builder, args, negate, first, i, at + 1))
            elif code == _MATCH:
                if negate:
                    raise SpecError("-m cannot be negated", first)
                self.load_module(value, at)
                if value not in MODULES and value not in OPAQUE_MODULES and \
                        _MODULE_ALIASES.get(value) not in MODULES:
                    i = self.consume_unknown_module(value, at, i)
            else:  # -j / -g
                if negate:
                    raise SpecError(f"{raw} cannot be negated", first)
                if plan.target is not None or plan.jump is not None:
                    raise SpecError("multiple -j/-g flags not allowed", at)
                plan.target_start = at
                if code == _GOTO:
                    plan.jump = (Goto, at + 1)
                elif value in TARGETS and not self.is_chain(value):
                    plan.target = value
                else:
                    plan.jump = (Jump, at + 1)
        except BadValue as exc:
            raise SpecError(str(exc), at + 1) from None
        return i

    def load_module(self, name: str, at: int) -> None:
        name = _MODULE_ALIASES.get(name, name)
        if name in MODULES:
            if name in ("icmp", "icmp6") and (name == "icmp6") != (self.family == "ip6"):
                raise SpecError(f"match {name} is for {'ip6tables' if name == 'icmp6' else 'iptables'}"
                                " only", at + 1)
            self.loaded.append([name, MODULES[name], None])
            self.explicit.append((name, at))
        elif name in OPAQUE_MODULES:
            indices: list[int] = []
            self.loaded.append([name, None, indices])
            self.ops.append((_OPAQUE, name, indices, self.cache(("opaque", name))))  # filled as its options come
        # unknown modules are handled by consume_unknown_module

    def consume_unknown_module(self, name: str, at: int, i: int) -> int:
        """``-m foo --bar 1 ...``: everything up to the next -m/-j/-g or
        generic option belongs to the module we do not know."""
        raws, n = self.raws, self.n
        end = i
        while end < n:
            raw = raws[end]
            nxt = raws[end + 1] if raw == "!" and end + 1 < n else raw
            if nxt in _UNKNOWN_MODULE_STOP or nxt in GENERIC:
                break
            end += 1
        self.ops.append((_UNKNOWN, name, at, end, self.cache(("unknown", name))))
        return end

    def module_option(self, raw: str, i: int, negate: bool, first: int) -> int:
        at = i
        name = raw
        plan = self.plan
        if plan.target is not None:
            target_opts = TARGETS[plan.target]
            if name in target_opts:
                if negate:
                    raise SpecError(f"target option {name} cannot be negated", first)
                if any(o == name for o, _ in plan.target_options) and plan.target != "SET":
                    raise SpecError(f"option {name} given twice for target {plan.target}", at)
                args, _, i = self.take(name, at, at + 1, target_opts[name], False)
                plan.target_options.append((name, args))
                return i
        entry = self.find_module(name)
        if entry is None and self.local:
            raise _NotLocal  # loaded by an earlier segment, or by -p, or a prefix
        if entry is None and plan.proto in PROTOCOL_MODULES and not plan.proto_negated:
            module = PROTOCOL_MODULES[plan.proto]
            if module not in (m[0] for m in self.loaded):
                self.auto_load(module)
                entry = self.find_module(name)
        if entry is None and plan.target is not None:
            full = _unique_prefix(name, TARGETS[plan.target])
            if full is not None:
                return self.module_option(full, i, negate, first)
        full = name
        if entry is None:
            entry, full = self.find_by_prefix(name)
        if entry is None:
            raise SpecError(self.unknown_option_message(name), at)
        module, table, opaque_indices = entry[0], entry[1], entry[2]
        if table is None:  # opaque module: keep the words for the reason
            args, negate, i = self.take(name, at, at + 1, -1, negate)
            opaque_indices.extend(range(first, i))
            return i
        option = table[full]
        used = self.used_options.setdefault(id(entry), [])
        if full in used or (module in _ONE_OPTION_MODULES and used):
            raise SpecError(f"option {name} cannot be combined with {used[0]} in match {module}"
                            if full not in used else f"option {name} given twice for match {module}", at)
        used.append(full)
        args, negate, i = self.take(name, at, at + 1, option.nargs, negate)
        if option.build is None:
            return i
        if module == "comment":
            if negate:
                raise SpecError("--comment cannot be negated", first)
            self.ops.append((_COMMENT, args[0]))
            return i
        self.ops.append(self.build_op(option.build, args, negate, first, i, min(at + 1, self.n - 1)))
        return i

    def auto_load(self, module: str) -> None:
        """``-p tcp --dport 22``: iptables loads the protocol's module itself."""
        if module in MODULES:
            self.loaded.append([module, MODULES[module], None])
        else:
            indices: list[int] = []
            self.loaded.append([module, None, indices])
            self.ops.append((_OPAQUE, module, indices, self.cache(("opaque", module))))

    def find_module(self, name: str):
        for entry in reversed(self.loaded):
            table = entry[1]
            if table is None:
                if name in OPAQUE_MODULES[entry[0]][0]:
                    return entry
            elif name in table:
                return entry
        return None

    def find_by_prefix(self, name: str):
        """getopt accepts an unambiguous prefix of a long option."""
        if not name.startswith("--") or len(name) < 4:
            return None, name
        hits = []
        for entry in reversed(self.loaded):
            names = OPAQUE_MODULES[entry[0]][0] if entry[1] is None else entry[1]
            hits.extend((entry, full) for full in names if full.startswith(name))
        return hits[0] if len(hits) == 1 else (None, name)

    def unknown_option_message(self, name: str) -> str:
        owners = [m[0] for m in reversed(self.loaded)]
        if self.plan.target:
            return f"unknown option {name} for target {self.plan.target}"
        if owners:
            return f"unknown option {name} for match {owners[0]}"
        return f"unknown option {name}"

    # -- the end of the line --------------------------------------------

    def finish(self) -> None:
        if not self.local:  # a segment's protocol is the whole line's (_compose)
            for name, at in self.explicit:
                self.check_protocol(name, at)
        for entry in self.loaded:
            if entry[1] is not None and entry[0] in _NEEDS_AN_OPTION and \
                    id(entry) not in self.used_options:
                at = next(a for n, a in self.explicit if n == entry[0])
                raise SpecError(f"match {entry[0]} needs one of its options "
                                f"({', '.join(sorted(entry[1]))})", at + 1)

    def check_protocol(self, name: str, at: int) -> None:
        if _protocol_fits(name, self.plan.proto, self.plan.proto_negated):
            return
        want = "tcp, udp, udplite, sctp or dccp" if name == "multiport" else \
            {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6", 132: "sctp", 33: "dccp",
             136: "udplite"}[MODULE_PROTOCOL[name]]
        raise SpecError(f"match {name} needs -p {want} (the kernel refuses it otherwise)", at + 1)


def _protocol_fits(name: str, proto: int | None, negated: bool) -> bool:
    """Whether match ``name`` may stand in a rule of ``-p proto``."""
    if name == "multiport":
        allowed = {6, 17, 132, 33, 136}
    elif name in MODULE_PROTOCOL:
        allowed = {MODULE_PROTOCOL[name]}
    else:
        return True
    return proto in allowed and not negated


class _NotLocal(Exception):
    """A segment's walk would read what earlier segments of its line left."""


#: where a rule line's skeleton splits into segments (_compose): before each
#: -m, -j or -g field, or before the '!' standing in front of one (the
#: newline first, so the regex engine looks only at newlines: 1.7x faster
#: than the lookbehind first, which it tried at every character)
_SEGMENT_SPLIT = re.compile(r"\n(?=[!-])(?<!\n!\n)(?=(?:!\n)?-(?:m|j|g|-match|-jump|-goto)(?:\n|\Z))")
_NOT_LOCAL = object()
_JUMP_PIECE = ("-j\n", "--jump\n")
#: the protocols any -p allows (a segment without protocol modules)
_ANY = None


def _compose(plan: Plan, raws: list[str], words: list[str], i: int, is_chain, key: str) -> bool:
    """Fill ``plan`` from the plans of the segments of its line (each ``-m``,
    ``-j`` or ``-g`` starts one), kept per file by their skeleton and word
    position: a file of hand-kept rules has a few dozen kinds of segment in
    tens of thousands of skeletons, each walked once instead of per line.
    False (``plan`` untouched) where the line's walk is not the sum of its
    segments' walks: a segment reading what an earlier one left (an option
    of an earlier module, of -p's module, a long-option prefix), two -p,
    a target not last, a match the protocol does not allow, any error (the
    whole walk then says where)."""
    cache = plan.shared.get("segments")
    if cache is None:
        cache = plan.shared["segments"] = {}
    # one pass over the segments, putting the plan together as they come
    ops = []
    proto = target = skip = None
    negated_builds = 0
    allowed_by = []  # the protocols the segments' matches allow, where they say
    a = 0
    for piece in _SEGMENT_SPLIT.split(key[2:]):
        b = a + piece.count("\n") + 1
        if a == 0:
            a = i  # the head (command, chain, number) is walked by compile_line
            if a >= b:
                a = b
                continue
        if target is not None:
            return False  # a target not last
        chain_target = piece.startswith(_JUMP_PIECE)
        if chain_target:
            chain_target = words[a + 1] in TARGETS and is_chain(words[a + 1])
        seg_key = (a, piece, chain_target)
        part = cache.get(seg_key)
        if part is None:
            part = cache[seg_key] = _segment(plan, raws, words, a, b, is_chain)
        if part is _NOT_LOCAL:
            return False
        seg, allowed, sets_target, negated = part
        if seg.proto is not None:
            if proto is not None:
                return False
            proto = seg
        ops += seg.ops
        negated_builds += negated
        if allowed is not _ANY:
            allowed_by.append(allowed)
        if seg.skip is not None:
            skip = seg.skip
        if sets_target:
            target = seg
        a = b
    number, negated = (proto.proto, proto.proto_negated) if proto is not None else (None, False)
    for allowed in allowed_by:
        if negated or number not in allowed:
            return False
    plan.ops = ops
    plan.proto, plan.proto_negated = number, negated
    plan.port_pairs = negated_builds > 1  # what fields() would count on its first line
    if target is not None:
        plan.target, plan.target_options = target.target, list(target.target_options)
        plan.target_start, plan.jump = target.target_start, target.jump
    if skip is not None:
        plan.skip = skip
    return True


def _segment(plan: Plan, raws: list[str], words: list[str], a: int, b: int, is_chain):
    """The walk of words ``a:b`` alone: (its plan, the protocols its matches
    allow or _ANY, whether it sets the target, how many of its steps build
    a negated match), or _NOT_LOCAL."""
    seg = Plan(plan.command, plan.chain_index, plan.family, plan.shared)
    builder = _RuleBuilder(raws, words, plan.family, is_chain, seg)
    builder.local = True
    try:
        builder.run(a, b)
    except (SpecError, _NotLocal):
        return _NOT_LOCAL
    allowed = _ANY
    for name, _ in builder.explicit:
        fits = frozenset(p for p in _PROTOCOL_NUMBERS if _protocol_fits(name, p, False))
        if len(fits) < len(_PROTOCOL_NUMBERS):
            allowed = fits if allowed is _ANY else allowed & fits
    return (seg, allowed, seg.target is not None or seg.jump is not None,
            sum(1 for op in seg.ops if op[0] == _BUILD and op[3]))


#: every protocol number a match may ask for (_segment)
_PROTOCOL_NUMBERS = frozenset({None, *range(256)})
