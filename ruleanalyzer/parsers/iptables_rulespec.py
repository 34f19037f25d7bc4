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

from dataclasses import dataclass, field
from typing import Callable

from ..model import (AddressMatch, Goto, InterfaceMatch, IntMatch, Jump, Log, Match,
                     OpaqueMatch, Action)
from . import iptables_values as values
from .iptables_modules import (MODULE_PROTOCOL, MODULES, OPAQUE_MODULES, PROTOCOL_MODULES,
                               opaque_reason)
from .iptables_targets import TARGETS, build_action, nat_has_port
from .iptables_values import BadValue


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
    spec = RuleSpec(command)
    i = start + 1
    if command in "FXZ":
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
    spec.chain = words[i]
    i += 1
    if command in "NPE":
        wanted = {"N": 0, "P": 1, "E": 1}[command]
        spec.extra = words[i:i + wanted]
        if len(spec.extra) < wanted:
            raise SpecError(f"option {head} needs " + ("a policy" if command == "P" else
                                                       "a new chain name"), start)
        i += wanted
        if i < n:
            raise SpecError(f"unexpected argument {raws[i]!r} after {head}", i)
        return spec
    if command in "IR" or command == "D":
        if i < n and raws[i].isdigit():
            spec.extra.append(words[i])
            i += 1
            if command == "D":
                if i < n:
                    raise SpecError(f"unexpected argument {raws[i]!r} after a rule number", i)
                return spec
        elif command == "R":
            raise SpecError(f"option {head} needs a rule number", start)
    expanded = expand_glued(raws[i:], words[i:])
    if expanded is None:
        _RuleBuilder(raws, words, family, is_chain, spec).run(i)
        return spec
    new_raws, new_words, origin = expanded
    try:
        _RuleBuilder(raws[:i] + new_raws, words[:i] + new_words, family, is_chain, spec).run(i)
    except SpecError as exc:
        if exc.index >= i:
            exc.index = i + origin[min(exc.index - i, len(origin) - 1)]
        raise
    if spec.target_index is not None and spec.target_index >= i:
        spec.target_index = i + origin[min(spec.target_index - i, len(origin) - 1)]
    return spec


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
    if not any((r.startswith("--") and "=" in r) or
               (len(r) > 2 and r[0] == "-" and r[1] in _GLUED_SHORT) for r in raws):
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


class _RuleBuilder:
    """The getopt-style walk over a rule's options."""

    __slots__ = ("raws", "words", "family", "is_chain", "spec", "matches", "loaded", "proto",
                 "proto_negated", "proto_index", "explicit", "target", "target_options",
                 "target_start", "comments", "n", "used_options")

    def __init__(self, raws, words, family, is_chain, spec):
        self.raws, self.words, self.family, self.is_chain, self.spec = raws, words, family, is_chain, spec
        self.n = len(raws)
        self.matches: list = []
        # loaded modules, in order: [name, option table or None (opaque), words, index]
        self.loaded: list[list] = []
        self.proto: int | None = None
        self.proto_negated = False
        self.proto_index = -1
        self.explicit: list[tuple[str, int]] = []   # (-m name, word index) for protocol checks
        self.target: str | None = None
        self.target_options: list[tuple[str, list[str]]] = []
        self.target_start = -1
        self.comments: list[str] = []
        #: options used per loaded typed module, for "given twice" errors
        self.used_options: dict[int, list[str]] = {}

    # -- the walk ---------------------------------------------------------

    def run(self, i: int) -> None:
        raws, n = self.raws, self.n
        while i < n:
            raw = raws[i]
            negate = raw == "!"
            first = i
            if negate:
                i += 1
                if i >= n:
                    raise SpecError("'!' at the end of the rule negates nothing", first)
                raw = raws[i]
            if not is_option(raw):
                raise SpecError(f"unexpected argument {raw!r} (not an option)", i,
                                hint="quote arguments that contain blanks")
            code = GENERIC.get(raw)
            if code is not None:
                i = self.generic(code, raw, i, negate, first)
            else:
                i = self.module_option(raw, i, negate, first)
        self.finish()

    def take(self, name: str, at: int, i: int, count: int, negate: bool) -> tuple[list[str], bool, int]:
        """``count`` argument words after the option at ``at`` (``-1``: all
        words up to the next option). A ``!`` before the first argument is
        iptables' old negation syntax."""
        raws, words, n = self.raws, self.words, self.n
        args: list[str] = []
        if count and i < n and raws[i] == "!":
            if negate:
                raise SpecError("multiple '!' flags not allowed", i)
            negate = True
            i += 1
        while (count < 0 or len(args) < count) and i < n and not is_option(raws[i]) and raws[i] != "!":
            args.append(words[i])
            i += 1
        if count > 0 and len(args) < count:
            raise SpecError(f"option {name} needs {'an argument' if count == 1 else f'{count} arguments'}", at)
        return args, negate, i

    def text(self, first: int, end: int) -> str:
        return " ".join(self.raws[first:end])

    def generic(self, code: int, raw: str, i: int, negate: bool, first: int) -> int:
        at = i
        if code in (_FRAG, _V4, _V6):
            if code == _FRAG:
                if self.family == "ip6":
                    raise SpecError("unknown option -f (ip6tables has no fragment flag; use -m frag)", at)
                self.matches.append(IntMatch("fragment", ((1, 1),), negate=negate, text=self.text(first, at + 1)))
            elif negate:
                raise SpecError(f"{raw} cannot be negated", at)
            elif (code == _V6) != (self.family == "ip6"):
                self.spec.skip = f"{raw}: this rule is for the other IP version"
            return at + 1
        if code == _COUNTERS:
            glued = at + 1 < self.n and "," in self.raws[at + 1]  # -c P,B
            args, negate, i = self.take(raw, at, at + 1, 1 if glued else 2, negate)
            if glued:
                args = args[0].split(",", 1)
            try:
                self.spec.counters = (int(args[0]), int(args[1]))
            except ValueError:
                raise SpecError(f"bad counters {' '.join(args)!r}", at + 1) from None
            return i
        args, negate, i = self.take(raw, at, at + 1, 1, negate)
        value = args[0]
        try:
            if code == _SRC or code == _DST:
                self.matches.append(self.address("src" if code == _SRC else "dst", value, negate,
                                                 self.text(first, i)))
            elif code == _PROTO:
                if self.proto is not None:
                    raise SpecError("multiple -p flags not allowed", at)
                number = values.parse_protocol(value)
                if number == 0 and negate:
                    raise SpecError("rule would never match protocol (! -p all)", at)
                self.proto, self.proto_negated, self.proto_index = number, negate, at
                if number:
                    self.matches.append(IntMatch("proto", ((number, number),), negate=negate,
                                                 text=self.text(first, i)))
            elif code == _IIF or code == _OIF:
                if len(value) > 15:
                    raise SpecError(f"interface name {value!r} is longer than 15 characters", at + 1)
                self.matches.append(InterfaceMatch("iif" if code == _IIF else "oif", (value,),
                                                   negate=negate, text=self.text(first, i)))
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
                if self.target is not None or self.spec.action is not None:
                    raise SpecError("multiple -j/-g flags not allowed", at)
                self.spec.target_index = at + 1
                self.target_start = at
                if code == _GOTO:
                    self.spec.action = Goto(value)
                elif value in TARGETS and not self.is_chain(value):
                    self.target = value
                else:
                    self.spec.action = Jump(value)
        except BadValue as exc:
            raise SpecError(str(exc), at + 1) from None
        return i

    def address(self, field: str, value: str, negate: bool, text: str) -> Match:
        parts = value.split(",")
        if len(parts) > 1 and negate:
            raise BadValue("! not allowed with multiple source or destination IP addresses")
        networks = []
        for part in parts:
            try:
                net = values.parse_network(part, self.family)
            except values.NonContiguousMask:
                return OpaqueMatch(reason=f"{field} under the non-contiguous netmask {part} "
                                   "(not modelled as CIDR blocks)", negate=negate, text=text)
            if net is None:
                return OpaqueMatch(reason=f"depends on DNS resolution of {value}", negate=negate,
                                   text=text)
            networks.append(net)
        return AddressMatch(field, tuple(networks), negate=negate, text=text)

    def load_module(self, name: str, at: int) -> None:
        name = _MODULE_ALIASES.get(name, name)
        if name in MODULES:
            if name in ("icmp", "icmp6") and (name == "icmp6") != (self.family == "ip6"):
                raise SpecError(f"match {name} is for {'ip6tables' if name == 'icmp6' else 'iptables'}"
                                " only", at + 1)
            self.loaded.append([name, MODULES[name], None, -1])
            self.explicit.append((name, at))
        elif name in OPAQUE_MODULES:
            self.loaded.append([name, None, [], len(self.matches)])
            self.matches.append(None)  # placeholder, filled in finish()
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
        self.matches.append(OpaqueMatch(
            reason=f"depends on the match module {name}, which the analyzer does not model",
            text=self.text(at, end)))
        return end

    def module_option(self, raw: str, i: int, negate: bool, first: int) -> int:
        at = i
        name = raw
        if self.target is not None:
            target_opts = TARGETS[self.target]
            if name in target_opts:
                if negate:
                    raise SpecError(f"target option {name} cannot be negated", first)
                if any(o == name for o, _ in self.target_options) and self.target != "SET":
                    raise SpecError(f"option {name} given twice for target {self.target}", at)
                args, _, i = self.take(name, at, at + 1, target_opts[name], False)
                self.target_options.append((name, args))
                return i
        entry = self.find_module(name)
        if entry is None and self.proto in PROTOCOL_MODULES and not self.proto_negated:
            module = PROTOCOL_MODULES[self.proto]
            if module not in (m[0] for m in self.loaded):
                self.auto_load(module)
                entry = self.find_module(name)
        if entry is None and self.target is not None:
            full = _unique_prefix(name, TARGETS[self.target])
            if full is not None:
                return self.module_option(full, i, negate, first)
        full = name
        if entry is None:
            entry, full = self.find_by_prefix(name)
        if entry is None:
            raise SpecError(self.unknown_option_message(name), at)
        module, table, opaque_words = entry[0], entry[1], entry[2]
        if table is None:  # opaque module: keep the words for the reason
            args, negate, i = self.take(name, at, at + 1, -1, negate)
            opaque_words.extend((["!"] if negate else []) + [name] + args)
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
        text = self.text(first, i)
        if module == "comment":
            if negate:
                raise SpecError("--comment cannot be negated", first)
            self.comments.append(args[0])
            return i
        try:
            match = option.build(args, negate, text, self.family)
        except BadValue as exc:
            raise SpecError(str(exc), min(at + 1, self.n - 1)) from None
        if match is not None:
            self.matches.append(match)
        return i

    def auto_load(self, module: str) -> None:
        """``-p tcp --dport 22``: iptables loads the protocol's module itself."""
        if module in MODULES:
            self.loaded.append([module, MODULES[module], None, -1])
        else:
            self.loaded.append([module, None, [], len(self.matches)])
            self.matches.append(None)

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
        explicit = {name for name, _ in self.explicit}
        owners = [m[0] for m in reversed(self.loaded) if m[1] is None or m[0] in explicit]
        if self.target:
            return f"unknown option {name} for target {self.target}"
        if owners:
            return f"unknown option {name} for match {owners[0]}"
        return f"unknown option {name}"

    # -- the end of the line --------------------------------------------

    def finish(self) -> None:
        spec = self.spec
        for name, table, words, slot in self.loaded:
            if table is None:
                self.matches[slot] = OpaqueMatch(reason=opaque_reason(name, words),
                                                 text=" ".join(["-m", name] + words))
        for name, at in self.explicit:
            self.check_protocol(name, at)
        used_ids = set(self.used_options)
        for entry in self.loaded:
            if entry[1] is not None and entry[0] in _NEEDS_AN_OPTION and id(entry) not in used_ids:
                at = next(a for n, a in self.explicit if n == entry[0])
                raise SpecError(f"match {entry[0]} needs one of its options "
                                f"({', '.join(sorted(entry[1]))})", at + 1)
        self.check_target()
        spec.matches = tuple(m for m in self.matches if m is not None)
        if self.comments:
            spec.comment = "; ".join(self.comments)
        if self.target is not None:
            text = self.text(self.target_start, self.n) if self.target_options else f"-j {self.target}"
            try:
                spec.action = build_action(self.target, self.target_options, self.family, text)
            except BadValue as exc:
                raise SpecError(str(exc), self.target_start + 1) from None
        elif spec.action is None:
            spec.action = Log("no target")

    def check_target(self) -> None:
        """Protocol demands of targets, checked by the kernel when loading."""
        if self.target is None:
            return
        opts = dict(self.target_options)
        tcp_only = (self.target == "REJECT" and opts.get("--reject-with", [""])[0] in
                    ("tcp-reset", "tcp-rst")) or self.target == "TCPMSS"
        if tcp_only and (self.proto != 6 or self.proto_negated):
            raise SpecError(f"{self.target} {' '.join(sum(opts.values(), []))} needs -p tcp".strip(),
                            self.target_start + 1)
        nat_ports = any(nat_has_port(a[0], self.family) for o, a in self.target_options
                        if o in ("--to-destination", "--to-source")) or "--to-ports" in opts
        if nat_ports and (self.proto not in (6, 17, 132, 33, 136) or self.proto_negated):
            raise SpecError("a port in a NAT target needs -p tcp, udp, sctp or dccp",
                            self.target_start + 1)

    def check_protocol(self, name: str, at: int) -> None:
        if name == "multiport":
            allowed = {6, 17, 132, 33, 136}
        elif name in MODULE_PROTOCOL:
            allowed = {MODULE_PROTOCOL[name]}
        else:
            return
        if self.proto not in allowed or self.proto_negated:
            want = "tcp, udp, udplite, sctp or dccp" if name == "multiport" else \
                {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6", 132: "sctp", 33: "dccp",
                 136: "udplite"}[MODULE_PROTOCOL[name]]
            raise SpecError(f"match {name} needs -p {want} (the kernel refuses it otherwise)", at + 1)
