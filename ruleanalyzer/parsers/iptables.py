"""iptables-save / ip6tables-save / iptables-restore files → the rule model.

A file is read line by line. Each line is split into words (double quotes
group blanks, backslash escapes inside quotes, as iptables-restore does),
each word is classified into a terminal of ``grammars/iptables.lark`` and the
word sequence is parsed by the LALR grammar — once per distinct *shape*
(sequence of terminal kinds), since the parse depends on nothing else; a
100k-rule dump has a few hundred shapes. The words of a rule line are then
interpreted option by option (:mod:`.iptables_rulespec`), and the commands
(``-A``, ``-I``, ``-N``, ``-P``, ``-F``, ``-X``, …) are applied to the tables
as iptables-restore would, with its checks: undeclared chains, jumps to
missing chains, jump loops, missing COMMIT.

Inside :func:`ruleanalyzer.parsers.lazy_reading` (query, connect) a rule
appended to a chain is checked as it is read (every error it would raise, at
its line) and built when its chain's rules are first asked for
(:class:`_LazyChain`): a query builds only the chains the packet enters.
"""

from __future__ import annotations

import gc
import os
import re
from dataclasses import dataclass
from operator import itemgetter
from typing import Callable

from ..errors import RuleAnalyzerError
from ..gcpause import gc_paused
from .. import parsers as _registry
from ..model import (IPTABLES_BUILTIN_CHAINS, Chain, Diagnostic, Goto, Jump, Location, Rule,
                     Ruleset, Table, iptables_priority)
from .fastnew import slots_constructor
from .iptables_rulespec import (COMMANDS, KNOWN_WORDS, Plan, RuleSpec, SpecError, compile_line,
                                interpret, is_option, known_skeleton, skeleton)
from .jumploops import find_loop, loop_path
from .iptables_targets import resolve_netmap

__all__ = ["parse", "sniff", "parse_rule"]

# ---------------------------------------------------------------------------
# Words and shapes
# ---------------------------------------------------------------------------

#: A word: unquoted characters and double-quoted parts (``\"`` inside), glued;
#: a lone quote is an unterminated string.
_WORD = re.compile(r'(?:[^\s"]+|"(?:[^"\\]|\\.)*")+|"')
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
#: a line whose every quote is closed (possessive: linear on any line), where
#: _WORD finds the words without rescanning (_word_spans)
_CLOSED = re.compile(r'\s*+(?:(?:[^\s"]++|"(?:[^"\\]++|\\.)*+")++\s*+)*+')
_ESCAPE = re.compile(r"\\(.)")
_COUNTERS = re.compile(r"\[(\d+):(\d+)\]\Z")

#: one-letter codes of the grammar's terminals, for shape keys
_KIND = {"T": "TABLE", "C": "CHAIN_DECL", "M": "COMMIT", "N": "COUNTERS", "O": "OPTION",
         "B": "BANG", "W": "WORD"}


def split_words(line: str) -> tuple[list[str], list[str]]:
    """``line`` → (words as written, words with quotes removed)."""
    if '"' not in line:
        raws = line.split()
        return raws, raws
    if "\\" not in line:
        fast = _split_simple_quotes(line)
        if fast is not None:
            return fast
    if _CLOSED.fullmatch(line):
        raws = _WORD.findall(line)  # every quote closed: the regex alone is linear
    else:
        raws = [line[a:b] for a, b in _word_spans(line)]
    words = [_unquoted(w) if '"' in w else w for w in raws]
    return raws, words


#: quoted words as written → without their quotes (files repeat their
#: comments with escaped quotes: 6 us each to unquote)
_UNQUOTED: dict[str, str] = {}


def _unquoted(raw: str) -> str:
    word = _UNQUOTED.get(raw)
    if word is None:
        word = _QUOTED.sub(lambda m: _ESCAPE.sub(r"\1", m.group(1)), raw)
        if len(_UNQUOTED) < 10_000:
            _UNQUOTED[raw] = word
    return word


def _split_simple_quotes(line: str) -> tuple[list[str], list[str]] | None:
    """The common quoted line (``--comment "a b"``): every quoted part stands
    alone between blanks and holds no escapes. ``None`` for anything else."""
    parts = line.split('"')
    if len(parts) == 3:  # one quoted part: the kube-proxy comment
        before, quoted, after = parts
        if (before and not before[-1].isspace()) or (after and not after[0].isspace()):
            return None  # a quote glued to other text
        head, tail = before.split(), after.split()
        return [*head, f'"{quoted}"', *tail], [*head, quoted, *tail]
    if len(parts) % 2 == 0:
        return None  # unbalanced: let the full tokenizer report it
    raws: list[str] = []
    words: list[str] = []
    last = len(parts) - 1
    for k, part in enumerate(parts):
        if k % 2:
            raws.append(f'"{part}"')
            words.append(part)
            continue
        if (k > 0 and part and not part[0].isspace()) or \
                (k < last and part and not part[-1].isspace()) or (0 < k < last and not part):
            return None  # a quote glued to other text
        pieces = part.split()
        raws.extend(pieces)
        words.extend(pieces)
    return raws, words


def word_columns(line: str) -> list[int]:
    """1-based columns of the words of ``line`` (only needed for errors)."""
    return [a + 1 for a, _ in _word_spans(line)]


_PLAIN = re.compile(r'[^\s"]+')
_BLANKS = re.compile(r"\s*")
_IN_QUOTES = re.compile(r'(?:[^"\\]|\\.)*"', re.S)


def _word_spans(line: str) -> list[tuple[int, int]]:
    """The (start, end) of each word as :data:`_WORD` finds them, in time
    linear in the line: the regex rescanned to the end of the line from each
    quote when one was never closed (``"\\" \\" \\" …``: 30 kB took 24 s).
    Once a quote is found unclosed, every later one is (their escape pairs
    line up with the first's), so each character is scanned a bounded number
    of times."""
    spans: list[tuple[int, int]] = []
    n = len(line)
    unclosed = n + 1  # quotes at or after this position have no closing quote
    i = _BLANKS.match(line, 0).end()
    while i < n:
        j = i
        while j < n:
            c = line[j]
            if c == '"':
                if j >= unclosed:
                    break
                m = _IN_QUOTES.match(line, j + 1)
                if m is None:
                    unclosed = j
                    break
                j = m.end()
            elif c.isspace():
                break
            else:
                j = _PLAIN.match(line, j).end()
        if j == i:  # an unclosed quote: a word of its own
            j = i + 1
        spans.append((i, j))
        i = _BLANKS.match(line, j).end()
    return spans


def _shape(raws: list[str]) -> str:
    first = raws[0]
    if first[0] == "*":
        head = "T"
    elif first[0] == ":":
        head = "C"
    elif first == "COMMIT":
        head = "M"
    elif first[0] == "[" and _COUNTERS.match(first):
        head = "N"
    elif first == "!":
        head = "B"
    else:
        head = "O" if is_option(first) else "W"
    kinds = [head]
    for i in range(1, len(raws)):
        w = raws[i]
        if w == "!":
            kinds.append("B")
        elif len(w) > 1 and w[0] == "-" and (not w[1].isdigit() or w in ("-4", "-6")):
            kinds.append("O")
        elif i == 2 and head == "C" and _COUNTERS.match(w):
            kinds.append("N")
        else:
            kinds.append("W")
    return "".join(kinds)


def _words_at(positions: tuple[int, ...]) -> Callable[[list[str]], tuple[str, ...]]:
    """``f(words)``: the tuple of the words at ``positions``."""
    if not positions:
        return lambda words: ()
    if len(positions) == 1:
        positions *= 2  # itemgetter of one position returns the word itself
    return itemgetter(*positions)


def _rule_shape(raws: list[str]) -> bool:
    """Whether a line is a rule by its shape (``N?O(?:[OW]|B[OW])*``), the
    question :func:`_shape` and :func:`_line_kind` answer for every line,
    asked of a rule line's words directly (once per new skeleton: half the
    lines of a file of hand-kept rules)."""
    i = 1 if raws[0][0] == "[" and _COUNTERS.match(raws[0]) else 0
    if i >= len(raws) or not is_option(raws[i]):
        return False
    if "!" in raws:
        last = len(raws) - 1
        for k in range(i + 1, last + 1):
            if raws[k] == "!" and (k == last or raws[k + 1] == "!"):
                return False
    return True


def _grammar():
    """The line-shape parser and Lark's Token and UnexpectedInput, imported on
    first use: a file whose line shapes are all known never loads Lark."""
    global _GRAMMAR
    if _GRAMMAR is None:
        from lark import Token, Transformer
        from lark.exceptions import UnexpectedInput
        from lark.lexer import Lexer

        from ..grammar_loader import lalr_parser

        class _ShapeLexer(Lexer):
            """Hands the grammar a ready-made token list (the words are split already)."""

            def __init__(self, lexer_conf):
                pass

            def lex(self, data):
                yield from data

        class _LineKind(Transformer):
            """Tree-less: every line reduces to the name of its kind."""

            def start(self, children):
                return children[0]

            def table_line(self, _):
                return "table"

            def chain_line(self, _):
                return "chain"

            def commit_line(self, _):
                return "commit"

            def rule_line(self, _):
                return "rule"

            def negation(self, _):
                return None

        # one transformer instance, so lalr_parser's cache builds the tables once
        _GRAMMAR = (lalr_parser("iptables", lexer=_ShapeLexer, transformer=_LineKind()), Token,
                    UnexpectedInput)
    return _GRAMMAR


_GRAMMAR = None


def _tokens(shape: str, raws: list[str]) -> list:
    token = _grammar()[1]
    return [token(_KIND[k], raws[i] if i < len(raws) else k, line=1, column=i)
            for i, k in enumerate(shape)]


#: Sample bad lines per error label (shapes), for Lark's match_examples.
_ERROR_EXAMPLES = {
    "'!' must be followed by an option or a value": ["OWB", "OWBB", "OWOB"],
    "a chain line is ':NAME POLICY [packets:bytes]'": ["C", "CWWW", "CWNW", "CO", "CN"],
    "unexpected text after the table name": ["TW", "TO"],
    "unexpected text after COMMIT": ["MW", "MO"],
    "counters must be followed by a command such as -A": ["N", "NW", "NN"],
}

_shape_cache: dict[str, object] = {}
#: Whether lines of one skeleton share its compiled plan (off: every line is
#: compiled on its own, the reference the tests compare the shared plans to).
REUSE_PLANS = True
#: Whether, inside parsers.lazy_reading(), the rules a file appends to its
#: chains are checked as they are read and built when their chain's rules
#: are first asked for (off: built as they are read, the reference
#: tests/test_parser_iptables_lazy compares the lazy chains to). A query
#: enters chains holding a few percent of a big file's rules; a reader of
#: the whole model would pay for checking and splitting each line twice
#: (+25-35% of reading), so it reads eagerly.
LAZY_CHAINS = True
#: The shapes grammars/iptables.lark accepts (start: table_line | chain_line |
#: commit_line | rule_line), kept in step with it by test_parser_iptables.
_GOOD_SHAPE = re.compile(r"(?:T|CWN?|M|N?O(?:[OW]|B[OW])*)\Z")
_GOOD_KINDS = {"T": "table", "C": "chain", "M": "commit"}


def _line_kind(shape: str, raws: list[str]):
    """"table", "chain", "commit", "rule", or the UnexpectedInput describing why not."""
    kind = _shape_cache.get(shape)
    if kind is None and _GOOD_SHAPE.match(shape):
        # grammars/iptables.lark's language as a regular expression; the
        # grammar itself only explains the lines that fail
        kind = _GOOD_KINDS.get(shape[0], "rule")
        if len(_shape_cache) < 50_000:
            _shape_cache[shape] = kind
    if kind is None:
        parser, _, unexpected = _grammar()
        try:
            kind = parser.parse(_tokens(shape, raws))
        except unexpected as exc:
            kind = _failure(exc)
        if len(_shape_cache) < 50_000:
            _shape_cache[shape] = kind
    return kind


@dataclass(frozen=True)
class _BadShape:
    """Where the grammar rejected a line: parser state, token kind, word index."""

    state: object
    token_kind: str | None
    index: int


def _failure(exc) -> _BadShape:
    # read now: the parser state object is reused by later parses
    stack = getattr(getattr(exc, "state", None), "state_stack", None)
    token = getattr(exc, "token", None)
    column = getattr(token, "column", None)
    return _BadShape(stack[-1] if stack else None, getattr(token, "type", None),
                     column if isinstance(column, int) else -1)


def _error_label(bad: _BadShape) -> str | None:
    """The label of the sample bad shape that fails like ``bad`` (in the
    spirit of Lark's ``match_examples``: same parser state and token kind
    first; same state only as a fallback)."""
    fallback = None
    parser, _, unexpected = _grammar()
    for label, shapes in _ERROR_EXAMPLES.items():
        for shape in shapes:
            try:
                parser.parse(_tokens(shape, list(shape)))
            except unexpected as exc:
                sample = _failure(exc)
                if sample.state != bad.state:
                    continue
                if sample.token_kind == bad.token_kind:
                    return label
                fallback = fallback or label
    return fallback


#: ``Location(file, line, column)`` for the per-line call sites (a rule, a
#: chain declaration): 6% of reading a kube-proxy dump with the dataclass'
#: own ``__init__``
_location = slots_constructor(Location, ("file", "line", "column"), ("f.rules", 3, 1))


# ---------------------------------------------------------------------------
# Chains whose rules are built when first asked for
# ---------------------------------------------------------------------------

#: Chain's own ``rules`` slot (the list; in a _LazyChain, its _Pending lines)
_RULES = Chain.__dict__["rules"]


class _Pending:
    """A lazy chain's rule lines, checked already: ``(line number, line,
    plan)`` each, or a Rule built as it was read (a line without a plan)."""

    __slots__ = ("records", "name")

    def __init__(self, name: str):
        self.records: list = []
        self.name = name  # the file's


class _LazyChain(Chain):
    """A Chain whose rules are built from their lines on first access of
    ``rules``; it is a plain Chain from then on. Every line was checked as
    the file was read (Plan.check: the same errors, at the same line), so
    building raises nothing."""

    __slots__ = ()

    @property
    def rules(self) -> list[Rule]:
        pending = _RULES.__get__(self, Chain)
        if pending.__class__ is _Pending:
            # thousands of objects without cycles: as the reader, without
            # the cyclic collector walking them (see ..gcpause)
            collecting = gc.isenabled()
            gc.disable()
            try:
                rules = _build_rules(self, pending)
            finally:
                if collecting:
                    gc.enable()
        else:  # stored already when a signal (the audit's time limit) came before the last line
            rules = pending
        _RULES.__set__(self, rules)
        self.__class__ = Chain
        return rules

    @rules.setter
    def rules(self, value: list[Rule]) -> None:
        _RULES.__set__(self, value)
        self.__class__ = Chain

    def __reduce_ex__(self, protocol):
        """Pickled (and copied) as the plain Chain it becomes."""
        self.rules  # noqa: B018 - builds them
        return self.__reduce_ex__(protocol)


def _build_rules(chain: Chain, pending: _Pending) -> list[Rule]:
    """The rules of ``pending``'s lines, as _FileParser.rule_line builds an appended one."""
    rules: list[Rule] = []
    append = rules.append
    name = pending.name
    for record in pending.records:
        if record.__class__ is Rule:
            append(record)
            continue
        lineno, line, plan = record
        stripped = line.strip()
        if '"' in stripped:
            raws, words = _split_or_raise(line, name, lineno)
        else:
            raws = words = stripped.split()
        start = 0
        counters = None
        text = stripped
        if raws[0][0] == "[":
            found = _COUNTERS.match(raws[0])
            counters = int(found.group(1)), int(found.group(2))
            start = 1
            text = text[len(raws[0]):].lstrip()
        fast = plan.fast
        fields = fast(raws, words) if fast is not None else plan.fields(raws, words)
        append(Rule(fields[3], fields[4], _location(name, lineno, line.find(raws[start]) + 1), text,
                    fields[5], fields[6] or counters, len(rules) + 1, chain))
    return rules


# ---------------------------------------------------------------------------
# Family
# ---------------------------------------------------------------------------

_ADDR_OPT = r"(?:^|\s)(?:-[sd]|--source|--destination|--src|--dst)\s+(?:!\s+)?"
_V6_ADDR = re.compile(_ADDR_OPT + r"[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*[/\s]", re.M)
_V4_ADDR = re.compile(_ADDR_OPT + r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}[/\s,]", re.M)
_V6_HINT = re.compile(r"-m (?:icmp6|rt|frag|hbh|mh|ipv6header|eui64)\b|ipv6-icmp|icmpv6|"
                      r"--reject-with icmp6-|\s-p icmp6\b")
_V4_HINT = re.compile(r"--icmp-type|-m icmp\b|--reject-with icmp-|\s-f\s")
_V6_NAME = re.compile(r"v6|ip6tables|rules6|ipv6|ip6", re.I)


def detect_family(text: str, name: str) -> str:
    """"ip6" for ip6tables-save output, else "ip": addresses first, then
    IPv6-only modules and REJECT replies, then the file name."""
    v4 = _V4_ADDR.search(text)
    # an IPv6 match that starts before the first IPv4 one ends before it too
    # (a '-' only opens a match), so that much text is enough to compare them
    v6 = _V6_ADDR.search(text, 0, v4.start() + 1) if v4 else _V6_ADDR.search(text)
    if v6 or v4:
        if v6 and v4:
            return "ip6" if v6.start() < v4.start() else "ip"
        return "ip6" if v6 else "ip"
    v6_hint, v4_hint = _V6_HINT.search(text), _V4_HINT.search(text)
    if v6_hint and not v4_hint:
        return "ip6"
    if v4_hint and not v6_hint:
        return "ip"
    return "ip6" if _V6_NAME.search(os.path.basename(name)) else "ip"


# ---------------------------------------------------------------------------
# The file
# ---------------------------------------------------------------------------


def sniff(text: str, name: str = "<input>") -> int:
    """How sure we are that ``text`` is iptables-save / restore output."""
    head = text[:20000]
    score = 0
    if re.search(r"^\s*\*(filter|nat|mangle|raw|security)\s*$", head, re.M):
        score += 50
    if re.search(r"^\s*:[^\s]+ (ACCEPT|DROP|-)( \[\d+:\d+\])?\s*$", head, re.M):
        score += 25
    if re.search(r"^\s*(\[\d+:\d+\] )?-A \S+", head, re.M):
        score += 20
    if re.search(r"^\s*COMMIT\s*$", head, re.M):
        score += 5
    return min(score, 100)


def parse(text: str, name: str = "<input>", *, family: str | None = None,
          table: str | None = None) -> Ruleset:
    """Parse a whole iptables-save / ip6tables-save / iptables-restore file.

    ``family`` ("ip" or "ip6") forces the address family; by default it is
    read from the content and then the file name. Raises a located
    :class:`RuleAnalyzerError` on anything iptables-restore would refuse.
    Without any ``*table`` line the text is ``iptables -S`` output or a
    command script (:mod:`.iptables_script`; ``table`` names the table of
    its commands without ``-t``)."""
    if family not in (None, "ip", "ip6"):
        raise RuleAnalyzerError(f"unknown family {family!r} (use ip or ip6)")
    nul = text.find("\0")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise RuleAnalyzerError("binary data (a NUL byte), not an iptables file",
                                Location(name, line, nul - text.rfind("\n", 0, nul)))
    from . import iptables_script

    if iptables_script.sniff(text, name):
        # iptables -S output or a command script: no *table line
        ruleset = iptables_script.parse(text, name, family=family, table=table)
    else:
        # the model is a few objects per rule and holds no cycles worth
        # finding while it grows: the cyclic GC would walk it again and
        # again (1.5x); it lives on: straight to the oldest generation (gcpause)
        try:
            with gc_paused(long_lived=True):
                ruleset = _FileParser(text, name, family or detect_family(text, name)).run()
        except RecursionError:
            raise RuleAnalyzerError("input nests too deeply", Location(name)) from None
    if "NETMAP" in text:
        resolve_netmap(ruleset)  # (which translation a NETMAP does, its hook says)
    return ruleset


def parse_rule(spec: str, *, name: str = "<rule>", line: int = 1, table: str = "filter",
               chain: str = "INPUT", family: str = "ip") -> Rule:
    """One rule given as iptables arguments: ``-A INPUT -p tcp --dport 22 -j
    ACCEPT`` or just ``-p tcp --dport 22 -j ACCEPT`` (appended to ``chain``).

    Any ``-j NAME`` that is not a target extension is taken as a jump to a
    user chain (there is no table to check it against)."""
    raws, words = _split_or_raise(spec, name, line)
    implicit = not raws or raws[0] not in COMMANDS
    if implicit:
        raws, words = ["-A", chain] + raws, ["-A", chain] + words
    try:
        result = interpret(raws, words, 0, family)
    except SpecError as exc:
        index = exc.index - 2 if implicit else exc.index
        raise _located(exc.message, name, line, spec, max(index, 0), exc.hint) from None
    if result.command not in "AICDR":
        raise RuleAnalyzerError(f"{raws[0]} does not add a rule", Location(name, line, 1),
                                source_line=spec)
    column = 1 if implicit else spec.find(raws[0]) + 1
    return Rule(result.matches, result.action, Location(name, line, column),
                text=spec.strip(), comment=result.comment, counters=result.counters)


def _split_or_raise(line: str, name: str, lineno: int):
    if '"' in line and "\\" not in line:
        simple = _split_simple_quotes(line)  # never a lone quote
        if simple is not None:
            return simple
    raws, words = split_words(line)
    if '"' in raws:
        raise _located("unterminated quoted string", name, lineno, line, raws.index('"'))
    return raws, words


def _located(message: str, name: str, lineno: int, line: str, index: int,
             hint: str | None = None) -> RuleAnalyzerError:
    columns = word_columns(line)
    column = columns[index] if 0 <= index < len(columns) else (len(line.rstrip()) + 1)
    return RuleAnalyzerError(message, Location(name, lineno, column),
                             source_line=line.rstrip("\r\n"), hint=hint)


class _FileParser:
    """iptables-restore's state machine over the lines of one file."""

    #: whether the rules appended to a table's chains may wait in _LazyChains
    #: until the table is edited (-I, -D, -N, ...) or the model is read: the
    #: lines of a file can be split again (not so a command script's)
    lazy = True

    def __init__(self, text: str, name: str, family: str):
        self.text, self.name, self.family = text, name, family
        self.ruleset = Ruleset(sources=[name])
        self.table: Table | None = None
        self.table_line = 0
        #: rules that jump, to check at COMMIT: (rule, line text, target word index),
        #: and the names of their chain and target as read (at COMMIT, 70k
        #: rules of a kube-proxy nat table are cold: reading the names back
        #: through them cost 3% of a query)
        self.jumps: list[tuple[Rule, str, int, str, str]] = []
        #: whether the current table saw a command that moves or removes
        #: rules or chains (-I, -R, -D, -F, -X, -E): check_jumps skips its
        #: checks for jumps deleted or replaced since when it did not
        self.edited = False
        #: how many rule plans are cached (in the per-skeleton entries of run)
        self.plan_count = 0
        #: the values the plans of this file build, shared between them (compile_line)
        self.shared: dict = {}
        self.lazy = self.lazy and LAZY_CHAINS and _registry.LAZY_READING

    def error(self, message: str, lineno: int, line: str, index: int = 0,
              hint: str | None = None) -> RuleAnalyzerError:
        return _located(message, self.name, lineno, line, index, hint)

    def run(self) -> Ruleset:
        name = self.name
        #: line skeleton → (line kind, that skeleton's rule plan per table);
        #: plans are kept from a skeleton's second line on (in a file of
        #: hand-kept rules most skeletons have one line, and their plans
        #: were most of the peak memory)
        entries: dict[str, tuple[object, dict[str, Plan] | None]] = {}
        #: a line's words as KNOWN_WORDS or None → (its skeleton, the getter
        #: of its unknown words or None, where the word after -j is), see
        #: known_skeleton: a map() and a join instead of skeleton()'s loop
        by_known: dict[tuple, tuple[str | None, Callable | None, int]] = {}
        known_word = KNOWN_WORDS.get
        for lineno, line in enumerate(self.text.split("\n"), 1):
            stripped = line.strip()
            if not stripped or stripped[0] == "#":
                continue
            if '"' in stripped:
                raws, words = _split_or_raise(line, name, lineno)
            else:
                raws = words = stripped.split()
            head = stripped[0]
            if head == ":" and len(raws) == 3 and (raws[2] == "[0:0]" or _COUNTERS.match(raws[2])) \
                    and (raws[1] == "-" or (raws[1] != "!" and not is_option(raws[1]))):
                # the shape CWN, a chain declaration (a third of a kube-proxy
                # dump; their counters mostly [0:0]: no regex for those)
                self.chain_line(lineno, line, raws, words, counted=True)
                continue
            if head == "-" and known_word is not None:
                known = tuple(map(known_word, raws))
                found = by_known.get(known)
                # (no unknown word starting with '-': joined, no "\n-")
                if found is not None and found[1] is not None and \
                        "\n-" not in "\n" + "\n".join(found[1](raws)) and '"' not in raws[found[2]]:
                    key = found[0]
                else:
                    key = skeleton(raws)
                    if found is None:
                        safe = known_skeleton(known)
                        by_known[known] = (key, None, 0) if safe is None or key is None else \
                            (key, _words_at(safe[0]), safe[1])
                        if len(by_known) >= 1024 and len(by_known) * 8 > lineno:
                            # a file of hand-kept rules: the lines found by
                            # their known words save less than the others cost
                            known_word = None
            else:
                key = skeleton(raws) if head == "-" or head == "[" else None
            if key is not None:
                # a rule line: its grammar check and plan depend on its skeleton only
                entry = entries.get(key)
                if entry is None:
                    kind = "rule" if _rule_shape(raws) else _line_kind(_shape(raws), raws)
                    entry = entries[key] = (kind, None)
                elif entry[1] is None and REUSE_PLANS:
                    entry = entries[key] = (entry[0], {})
                kind = entry[0]
                if kind == "rule":
                    self.rule_line(lineno, line, stripped, raws, words, entry[1], True, key)
                    continue
                shape = _shape(raws)
            else:
                shape = _shape(raws)
                kind = _line_kind(shape, raws)
            if kind == "rule":
                self.rule_line(lineno, line, stripped, raws, words, None)
            elif kind == "table":
                self.table_start(lineno, line, raws)
            elif kind == "chain":
                self.chain_line(lineno, line, raws, words)
            elif kind == "commit":
                self.commit(lineno, line)
            else:
                self.bad_line(lineno, line, shape, kind)
        if self.table is not None:
            raise RuleAnalyzerError(
                f"table {self.table.name} is never committed: the file ends without COMMIT",
                Location(name, self.table_line, 1),
                source_line=f"*{self.table.name}", hint="a truncated dump? iptables-restore "
                "applies a table only at its COMMIT line")
        if not self.ruleset.tables:
            raise RuleAnalyzerError("no iptables tables found (no *filter, *nat, ... line)",
                                    Location(name, 1, 1), hint="is this an iptables-save file?")
        return self.ruleset

    # -- line kinds ---------------------------------------------------------

    def bad_line(self, lineno: int, line: str, shape: str, exc) -> None:
        if shape[0] in "ONTCM":  # meant as iptables syntax, but wrong
            label = _error_label(exc) or "this line is not valid iptables-restore syntax"
            index = exc.index if 0 <= exc.index < len(shape) else len(shape)
            raise self.error(label, lineno, line, index)
        self.ruleset.diagnostics.append(Diagnostic(
            "skipped a line that is not iptables-save syntax", Location(self.name, lineno, 1)))

    def table_start(self, lineno: int, line: str, raws: list[str]) -> None:
        table_name = raws[0][1:]
        if self.table is not None:
            raise self.error(f"table {self.table.name} (line {self.table_line}) has no COMMIT "
                             f"before *{table_name}", lineno, line)
        if table_name not in IPTABLES_BUILTIN_CHAINS:
            raise self.error(f"unknown table {table_name!r} (known: "
                             f"{', '.join(IPTABLES_BUILTIN_CHAINS)})", lineno, line)
        previous = self.ruleset.table(table_name, self.family)
        if previous is not None:
            self.ruleset.tables.remove(previous)
            self.ruleset.diagnostics.append(Diagnostic(
                f"table {table_name} appears again; iptables-restore replaces the earlier one "
                f"(line {previous.location.line})", Location(self.name, lineno, 1)))
        column = line.find("*") + 1
        table = self.create_table(table_name, Location(self.name, lineno, column))
        self.table, self.table_line, self.jumps = table, lineno, []
        self.edited = False

    def create_table(self, table_name: str, where: Location) -> Table:
        """A new table of the file's family with its built-in chains (policy ACCEPT)."""
        table = Table(table_name, self.family, location=where, dialect="iptables")
        kind = "nat" if table_name == "nat" else "filter"
        for chain_name in IPTABLES_BUILTIN_CHAINS[table_name]:
            hook = chain_name.lower()
            table.add_chain(Chain(chain_name, hook=hook, priority=iptables_priority(table_name, hook),
                                  policy="accept", kind=kind))
        self.ruleset.add_table(table)
        return table

    def chain_line(self, lineno: int, line: str, raws: list[str], words: list[str],
                   counted: bool = False) -> None:
        """``:NAME POLICY [p:b]`` (``counted``: the counters are known to be well-formed)."""
        table = self.table
        if table is None:
            table = self.need_table(lineno, line)
        chain_name = words[0][1:]
        policy = words[1]
        where = _location(self.name, lineno, line.find(":") + 1)
        if not chain_name:
            raise self.error("chain line without a chain name", lineno, line)
        chain = table.chains.get(chain_name)
        if chain_name in IPTABLES_BUILTIN_CHAINS[table.name]:
            if policy != "-":
                chain.policy = self.policy(policy, lineno, line, 1)
                chain.policy_location = where
            chain.location = where
        else:
            if chain is not None:
                raise self.error(f"chain {chain_name} is declared twice", lineno, line)
            if policy != "-":
                raise self.error(f"user chain {chain_name} cannot have a policy (write '-')",
                                 lineno, line, 1)
            self.new_chain(table, chain_name, where)
        if len(raws) > 2 and not counted:
            self.counters(raws[2], lineno, line, 2)

    def policy(self, word: str, lineno: int, line: str, index: int) -> str:
        if word not in ("ACCEPT", "DROP"):
            raise self.error(f"bad policy {word!r} (a built-in chain's policy is ACCEPT or DROP)",
                             lineno, line, index)
        return word.lower()

    def counters(self, word: str, lineno: int, line: str, index: int) -> tuple[int, int]:
        found = _COUNTERS.match(word)
        if not found:
            raise self.error(f"bad counters {word!r} (expected [packets:bytes])", lineno, line, index)
        return int(found.group(1)), int(found.group(2))

    def new_chain(self, table: Table, chain_name: str, where: Location) -> Chain:
        # Table.add_chain, with the chain's fields in order (a kube-proxy
        # dump declares a chain per service and endpoint: a third of its lines)
        chain = Chain(chain_name, table, None, None, None,
                      "nat" if table.name == "nat" else "filter", [], where)
        table.chains[chain_name] = chain
        return chain

    def need_table(self, lineno: int, line: str) -> Table:
        if self.table is None:
            raise self.error("this line comes before any *table line (e.g. *filter)", lineno, line,
                             hint="iptables-restore needs a *filter, *nat, ... line first")
        return self.table

    def commit(self, lineno: int, line: str) -> None:
        table = self.need_table(lineno, line)
        self.check_jumps(table)
        # no rule comes before the next table line: the memory of the
        # table's jumps (70k in a kube-proxy nat table) serves what follows
        self.table, self.jumps = None, []

    # -- rules --------------------------------------------------------------

    def rule_line(self, lineno: int, line: str, stripped: str, raws: list[str],
                  words: list[str], plans: dict[str, Plan] | None, plain: bool = False,
                  key: str | None = None) -> None:
        """``plans``: the cached plans of the line's skeleton per table
        (``None``: a line that is not cached); ``plain``: the line has a
        skeleton (no glued options), ``key``."""
        table = self.table
        if table is None:
            table = self.need_table(lineno, line)
        start = 0
        counters = None
        if raws[0][0] == "[":
            counters = self.counters(raws[0], lineno, line, 0)
            start = 1
        chains = table.chains
        lazy = self.lazy and not self.edited
        try:
            plan = plans.get(table.name) if plans is not None else None
            if plan is None:
                result = compile_line(raws, words, start, self.family, chains.__contains__,
                                      self.shared if REUSE_PLANS else None, glued=not plain,
                                      key=key)
                if isinstance(result, Plan):
                    if plans is not None and self.plan_count < 100_000:
                        plans[table.name] = result
                        self.plan_count += 1
                    plan = result
                else:
                    fields = (result.command, result.chain, result.extra, result.matches,
                              result.action, result.comment, result.counters,
                              result.target_index, result.skip)
            if plan is not None:
                if lazy and plan.command == "A" and plan.skip is None:
                    # checked now, built when its chain's rules are asked for
                    plan.check(raws, words)
                    fields = None
                else:
                    fast = plan.fast  # the plan's own code (_specialize), else its loop
                    fields = fast(raws, words) if fast is not None else plan.fields(raws, words)
        except SpecError as exc:
            raise self.error(exc.message, lineno, line, exc.index, exc.hint) from None
        if fields is None:
            chain_name = words[plan.chain_index]
            chain = chains.get(chain_name)
            if chain is None:
                raise self.error(f"chain {chain_name} was never declared (add ':{chain_name} - "
                                 "[0:0]' or -N)", lineno, line, start + 1)
            records = self.pending(chain).records
            records.append((lineno, line, plan))
            if plan.jump is not None:
                index = plan.jump[1]
                self.jumps.append((None, line, index, chain_name, words[index], chain,
                                   len(records)))
            return
        command, chain_name, _, matches, action, comment, rule_counters, target_index, skip = fields
        if skip:
            self.ruleset.diagnostics.append(Diagnostic(
                f"rule ignored ({skip})", Location(self.name, lineno, 1), level="info"))
            return
        if command in "AIRCD" and action is not None:
            chain = chains.get(chain_name)
            if chain is None:
                raise self.error(f"chain {chain_name} was never declared (add ':{chain_name} - "
                                 "[0:0]' or -N)", lineno, line, start + 1)
            command_word = raws[start]
            text = stripped
            if start:
                text = text[len(raws[0]):].lstrip()
            where = _location(self.name, lineno, line.find(command_word) + 1)
            if command == "A":
                # Chain.add, without the call: numbered and owned at birth
                rules = self.pending(chain).records if lazy else chain.rules
                rule = Rule(matches, action, where, text, comment, rule_counters or counters,
                            len(rules) + 1, chain)
                rules.append(rule)
            else:
                rule = Rule(matches, action, where, text=text, comment=comment,
                            counters=rule_counters or counters)
                self.apply_rule(command, chain, rule, RuleSpec(*fields), lineno, line, start)
            if isinstance(action, (Jump, Goto)) and command in "AIR":
                self.jumps.append((rule, line, target_index, chain.name, action.target))
            return
        self.apply_chain_command(table, RuleSpec(*fields), lineno, line, start)

    def pending(self, chain: Chain) -> _Pending:
        """The lines waiting in ``chain`` (made a _LazyChain on its first)."""
        if chain.__class__ is _LazyChain:
            return _RULES.__get__(chain, Chain)
        pending = _Pending(self.name)
        pending.records = chain.rules
        chain.__class__ = _LazyChain
        _RULES.__set__(chain, pending)
        return pending

    def edit(self, table: Table) -> None:
        """A command that moves or removes rules or chains: the table's
        lazy chains are built first (and its jumps get their rules)."""
        if not self.edited:
            self.build_lazy(table)
        self.edited = True

    def build_lazy(self, table: Table) -> None:
        for chain in table.chains.values():
            if chain.__class__ is _LazyChain:
                chain.rules  # noqa: B018 - builds them
        if any(jump[0] is None for jump in self.jumps):
            self.jumps = [jump if jump[0] is not None else
                          (jump[5].rules[jump[6] - 1], jump[1], jump[2], jump[3], jump[4])
                          for jump in self.jumps]

    def apply_rule(self, command: str, chain: Chain, rule: Rule, spec: RuleSpec, lineno: int,
                   line: str, start: int) -> None:
        self.edit(chain.table)
        if command == "A":
            chain.add(rule)
            return
        if command == "I":
            position = int(spec.extra[0]) if spec.extra else 1
            if not 1 <= position <= len(chain.rules) + 1:
                raise self.error(f"cannot insert at position {position}: chain {chain.name} has "
                                 f"{len(chain.rules)} rules", lineno, line, start + 2)
            chain.insert(position, rule)
            return
        if command == "R":
            position = int(spec.extra[0])
            if not 1 <= position <= len(chain.rules):
                raise self.error(f"cannot replace rule {position}: chain {chain.name} has "
                                 f"{len(chain.rules)} rules", lineno, line, start + 2)
            rule.index, rule.chain = position, chain
            chain.rules[position - 1] = rule
            return
        # -C and -D name an existing rule by its specification
        found = next((r for r in chain.rules if r.matches == rule.matches and r.action == rule.action),
                     None)
        if found is None:
            raise self.error(f"no such rule in chain {chain.name} (does a matching rule exist?)",
                             lineno, line, start)
        if command == "D":
            self.delete_rule(chain, chain.rules.index(found) + 1)

    @staticmethod
    def delete_rule(chain: Chain, position: int) -> None:
        del chain.rules[position - 1]
        for i, r in enumerate(chain.rules, 1):
            r.index = i

    def apply_chain_command(self, table: Table, spec: RuleSpec, lineno: int, line: str,
                            start: int) -> None:
        command, chain_name = spec.command, spec.chain
        self.edit(table)
        builtins = IPTABLES_BUILTIN_CHAINS[table.name]
        chain = table.chains.get(chain_name) if chain_name else None
        if chain_name and chain is None and command != "N":
            raise self.error(f"chain {chain_name} does not exist", lineno, line, start + 1)
        where = Location(self.name, lineno, line.find(line.split()[start]) + 1)
        if command == "N":
            if chain is not None:
                raise self.error(f"chain {chain_name} already exists", lineno, line, start + 1)
            self.new_chain(table, chain_name, where)
        elif command == "P":
            if chain_name not in builtins:
                raise self.error(f"cannot set a policy on {chain_name}: not a built-in chain",
                                 lineno, line, start + 1)
            chain.policy = self.policy(spec.extra[0], lineno, line, start + 2)
            chain.policy_location = where
        elif command == "F":
            for c in ([chain] if chain else table.chains.values()):
                c.rules.clear()
        elif command == "X":
            doomed = [chain] if chain else [c for c in table.chains.values() if not c.is_base]
            for c in doomed:
                if c.name in builtins:
                    raise self.error(f"cannot delete built-in chain {c.name}", lineno, line, start + 1)
                if c.rules:
                    raise self.error(f"cannot delete chain {c.name}: it still has rules",
                                     lineno, line, start + 1)
            names = {c.name for c in doomed}
            for c in table.chains.values():
                if c.name in names:
                    continue
                for r in c.rules:
                    if isinstance(r.action, (Jump, Goto)) and r.action.target in names:
                        raise self.error(f"cannot delete chain {r.action.target}: rule "
                                         f"{c.name} {r.index} jumps to it", lineno, line, start + 1)
            for n in names:
                del table.chains[n]
        elif command == "E":
            new_name = spec.extra[0]
            if chain_name in builtins:
                raise self.error(f"cannot rename built-in chain {chain_name}", lineno, line, start + 1)
            if new_name in table.chains:
                raise self.error(f"chain {new_name} already exists", lineno, line, start + 2)
            chain.name = new_name
            table.chains = {(new_name if k == chain_name else k): v for k, v in table.chains.items()}
            for c in table.chains.values():
                for r in c.rules:
                    if isinstance(r.action, (Jump, Goto)) and r.action.target == chain_name:
                        r.action = type(r.action)(new_name)
        elif command == "D":
            position = int(spec.extra[0])
            if not 1 <= position <= len(chain.rules):
                raise self.error(f"cannot delete rule {position}: chain {chain_name} has "
                                 f"{len(chain.rules)} rules", lineno, line, start + 2)
            self.delete_rule(chain, position)
        # -Z (zero counters) changes nothing the analyzer sees

    def check_jumps(self, table: Table) -> None:
        """Every jump reaches an existing user chain and no chain reaches itself."""
        chains = table.chains
        builtins = IPTABLES_BUILTIN_CHAINS[table.name]
        if not self.edited:
            # every jump is still in place: the checks on sets of chain
            # names first (70k jumps in a kube-proxy nat table), the
            # per-jump walk below only to name the jump that fails
            pairs = list(dict.fromkeys(map(itemgetter(3, 4), self.jumps)))
            targets = set(map(itemgetter(1), pairs))
            if targets <= chains.keys() and targets.isdisjoint(builtins):
                loop = find_loop(pairs)
                if loop is None:
                    return
            self.build_lazy(table)  # a jump fails: named by its rule
        edges: dict[tuple[str, str], tuple[Rule, str, int, str, str]] = {}
        edited = self.edited
        for jump in self.jumps:
            rule, line, index, _, _ = jump
            owner = rule.chain
            if edited and (owner is None or owner.table is not table or
                           rule.index > len(owner.rules) or owner.rules[rule.index - 1] is not rule
                           or chains.get(owner.name) is not owner):
                continue  # deleted or replaced since
            target = rule.action.target
            if target not in chains:
                raise self.error(f"{'goto' if isinstance(rule.action, Goto) else 'jump'} to "
                                 f"undefined chain {target}", rule.location.line, line, index)
            if target in builtins:
                raise self.error(f"cannot jump to built-in chain {target}", rule.location.line,
                                 line, index)
            edges.setdefault((owner.name, target), jump)
        pairs = list(edges)
        loop = find_loop(pairs)
        if loop is None:
            return
        rule, line, index, _, _ = edges[pairs[loop[-1]]]
        raise self.error(f"jump loop: {loop_path(pairs, loop)} (the kernel refuses chains that reach "
                         "themselves)", rule.location.line, line, index)
