"""nftables text (``nft list ruleset`` output, ``nft -f`` input) → model.

``grammars/nftables.lark`` defines the block structure (statements,
strings, ``{ … }`` blocks), read by :mod:`.nft_scan` (the grammar's
terminals without Lark; Lark itself, :mod:`.nft_lark`, only for text that is
not well formed); this module reads the words of each statement into
libnftables' JSON statement shape and hands them to
:class:`~.nft_common.Builder`, the same builder the JSON reader uses, so both
forms of one ruleset give one model. A block's statements are read as the
reader gets to them and most rules are built as they are added, so a 100k-rule
ruleset is never all words, nor all JSON-shaped statements, at once.
"""

from __future__ import annotations

import glob
import os
import re

from ..errors import RuleAnalyzerError, line_of
from ..model import Location, Ruleset
from ..gcpause import gc_paused
from .nft_common import FAMILIES, Builder, ModelError
from . import nft_lines
from .nft_scan import WORD_RE, B, S, W, Body, scan

DIALECT = "nftables"
MAX_INCLUDE_DEPTH = 16
MAX_DEFINE_DEPTH = 32
#: Files one ruleset may read through ``include`` (each inclusion counts: a
#: file included 200 times is 200). Their bytes together, the including file
#: too, stay within the file-size limit (``--max-bytes``).
MAX_INCLUDE_FILES = 1000
#: Tokens ``$NAME`` substitutions may produce in one ruleset, all together
#: (``define a2 = { $a1, $a1 }`` doubles per line: 20 lines were 555 MB).
MAX_DEFINE_TOKENS = 1_000_000
#: Whether a chain block written in kube-proxy's line shapes is read by
#: :mod:`.nft_lines` (off: word by word; tests/test_nft_lines.py compares).
FAST_LINES = True

#: Words nft's scanner always reads as keywords (its rules outside any start
#: condition), so that ``nft -f`` fails on one written as a table, chain or
#: set name (``chain fwd {`` → "syntax error, unexpected fwd, expecting
#: string"). The list is the words nftables 1.0.6 rejects there, each tried
#: with ``nft -c`` (tests/test_parser_nft_names.py asks the installed nft
#: again); later versions keep them all reserved and add a few (``destroy``,
#: ``vxlan``, …) that are still names here.
NFT_KEYWORDS = frozenset("""
    accept add ah all and arp auto-merge bridge cgroup chain comment comp constant continue counter
    cpu create ct day dccp define delete describe device devices dnat drop dst dup dynamic ecn
    element elements eq esp ether exists expires export exthdr fib flags flow flowtable flush frag
    fwd gc-interval ge get goto gt handle hbh hook hour ibriport ibrname icmp icmpv6 igmp iif
    iifgroup iifname iiftype import include index inet insert interval ip ip6 ipsec jhash jump le
    limit list log lshift lt map mark masquerade meta meter mh missing monitor ne netdev nftrace
    not notrack numgen obriport obrname offload oif oifgroup oifname oiftype or osf pkttype policy
    position priority queue quota random redefine redirect reject rename replace reset return
    rshift rt rt0 rt2 rtclassid rule ruleset sctp secmark set size skgid skuid snat socket srh
    symhash synproxy table tcp th time timeout tproxy type typeof udp udplite undefine update vlan
    vmap xor xt""".split())
#: What nft's scanner reads as one plain word (its ``string``): a name is one.
_NAME_RE = re.compile(r"[A-Za-z_.][A-Za-z0-9/\-_.]*\Z")


def _size(toks) -> int:
    """Tokens in ``toks``, those inside blocks too."""
    n = 0
    for t in toks:
        n += 1
        if t[0] == B:
            n += sum(_size(item) for item in t[1])
    return n

def sniff(text: str, name: str) -> int:
    """How sure we are that ``text`` is nft syntax, from its first statements."""
    head = text[:2000]
    if re.search(r"^\s*(table|(add|create|delete|destroy|flush) (table|chain|set|map)|(add|insert) rule"
                 r"|flush ruleset|define|include)\b", head, re.M):
        if re.search(r"^\s*(table\s+(ip|ip6|inet|arp|bridge|netdev)?\s*[\w\"-]+\s*\{|flush ruleset|add (table|rule))", head, re.M):
            return 90
        return 60
    if head.startswith("#!") and "nft" in head.splitlines()[0]:
        return 90
    return 0


def parse(text: str, name: str, check_names: bool = True) -> Ruleset:
    """Parse nft text from file ``name`` (``include`` resolved beside it).
    ``check_names``: refuse table, chain and set names ``nft -f`` refuses
    (a keyword, a quoted name); off for text rendered from another tool's
    configuration."""
    reader = _Reader(name, check_names)
    # a reader makes millions of small objects and no cycles worth finding:
    # the collector's scans of the growing heap made 50k rules 4x slower than 10k x 5;
    # the model lives on (long_lived): else the first collection after reading
    # walks all of it (audit reads through loader.load, not the CLI's frozen _load)
    with gc_paused(long_lived=True):
        try:
            reader.bytes_read = len(text)
            reader.read_text(text, name, depth=0)
            return reader.builder.finish()
        except RecursionError:
            raise RuleAnalyzerError("input nested too deeply", Location(name, 1, 1)) from None
        except RuleAnalyzerError as exc:
            # the builder quotes the rule's text; the frame shows the file's
            # line, so that the column (tabs counted) falls under the caret
            loc = exc.location
            if loc is not None and loc.file == name and loc.line and exc.source_line is not None:
                exc.source_line = line_of(text, loc.line) or exc.source_line
            raise


def _tokens_text(text: str, toks) -> str:
    return text[toks[0][4]:toks[-1][5]] if toks else ""


def _is_word(tok, *words) -> bool:
    return tok[0] == W and (not words or tok[1] in words)


class _Reader:
    def __init__(self, name: str, check_names: bool = True):
        self.name = name
        #: Refuse names ``nft -f`` cannot read (:meth:`identifier`); off for text
        #: we render from another tool's objects (firewalld's ipset names).
        self.check_names = check_names
        self.builder = Builder(name, DIALECT)
        self.defines: dict[str, list] = {}
        self.define_sizes: dict[str, int] = {}
        self.expanded = 0  # tokens substituted so far (MAX_DEFINE_TOKENS)
        from ..loader import current_side  # late: loader imports the parser registry

        self.side = current_side()
        self.files_read = 0
        self.bytes_read = 0
        root = os.path.dirname(os.path.abspath(self.side.path_of(name))) \
            if name and not name.startswith("<") else None
        self.roots = [os.path.realpath(root)] if root else []
        # per-file state while reading
        self.file = name
        self.text = ""
        self.comments: dict[int, str] = {}
        #: every file read (for locating a jump when refusing a jump loop)
        self.texts: dict[str, str] = {}
        self.builder.jump_locator = self.locate_jump

    # -- errors -------------------------------------------------------------------
    def error(self, message: str, tok=None, hint: str | None = None) -> RuleAnalyzerError:
        if tok is None:
            return RuleAnalyzerError(message, Location(self.file), hint=hint)
        return RuleAnalyzerError(message, Location(self.file, tok[2], tok[3]),
                                 source_line=line_of(self.text, tok[2]), hint=hint)

    def identifier(self, tok, what: str) -> str:
        """The name ``tok`` gives a table, chain or set (``what``), refused
        where ``nft -f`` refuses it: a keyword (``chain counter``), a quoted
        name, a word its scanner splits or reads as a number."""
        if not self.check_names:
            return tok[1]
        if tok[0] == S:
            raise self.error(f"a {what} name cannot be quoted: nft reads {tok[1]!r} there as a quoted "
                             "string and fails (syntax error, unexpected quoted string)", tok,
                             hint=f"write the name without quotes")
        word = tok[1]
        if word in NFT_KEYWORDS:
            raise self.error(f"{word!r} is an nft keyword: it cannot name a {what} (nft -f fails here: "
                             f"syntax error, unexpected {word})", tok, hint=f"rename the {what}")
        if _NAME_RE.match(word) is None:
            raise self.error(f"{word!r} is not a name nft reads: a {what} name starts with a letter, "
                             "'_' or '.' and holds letters, digits and / - _ .", tok)
        return word

    def is_chain_name(self, word: str) -> bool:
        """Whether :meth:`identifier` takes plain word ``word`` (one
        :data:`_NAME_RE` matches) as a chain name."""
        return not self.check_names or word not in NFT_KEYWORDS

    # -- files ------------------------------------------------------------------------
    def read_text(self, text: str, file: str, depth: int) -> None:
        saved = (self.file, self.text, self.comments)
        self.file, self.text = file, text
        self.texts[file] = text
        scanned = scan(text)
        if scanned is None:  # not well formed: Lark says where
            from lark import UnexpectedInput

            from . import nft_lark
            try:
                scanned = nft_lark.parse(text)
            except UnexpectedInput as exc:
                raise self._syntax_error(exc, text) from None
        items, self.comments = scanned
        try:
            self.top_items(items, depth)
        finally:
            self.file, self.text, self.comments = saved

    def locate_jump(self, rule, target: str) -> tuple[Location, str | None]:
        """Where ``jump``/``goto`` ``target`` is written inside ``rule`` (a
        verdict map holds several), else where the rule starts."""
        loc = rule.location
        text = self.texts.get(loc.file)
        if text is None or not loc.line:
            return loc, None
        start = 0
        for _ in range(loc.line - 1):
            start = text.find("\n", start) + 1
        offset = start + (loc.column or 1) - 1
        if rule.text and text.startswith(rule.text, offset):
            name = re.escape(target)
            found = re.compile(rf'\b(?:jump|goto)\s+(?:"{name}"|{name}(?![^\s,;{{}}]))').search(
                text, offset, offset + len(rule.text))
            if found is not None:
                line = loc.line + text.count("\n", offset, found.start())
                column = found.start() - (text.rfind("\n", 0, found.start()) + 1) + 1
                loc = Location(loc.file, line, column)
        return loc, line_of(text, loc.line)

    def _syntax_error(self, exc, text: str) -> RuleAnalyzerError:
        from lark import UnexpectedCharacters, UnexpectedToken

        line, col = getattr(exc, "line", 1) or 1, getattr(exc, "column", 1) or 1
        hint = None
        if isinstance(exc, UnexpectedToken) and exc.token.type == "$END":
            message, hint = "unexpected end of input", "a { block is not closed"
            line, col = text.count("\n") + 1, 1
        elif isinstance(exc, UnexpectedToken) and exc.token.type == "RBRACE":
            message = "unexpected '}' (no block to close)"
        elif isinstance(exc, UnexpectedCharacters):
            ch = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else ""
            message = "unterminated string" if ch == '"' else f"unexpected character {ch!r}"
        else:
            message = "syntax error"
        return RuleAnalyzerError(message, Location(self.file, line, col),
                                 source_line=line_of(text, line), hint=hint)

    def include(self, toks, depth: int) -> None:
        if len(toks) != 2 or toks[1][0] != S:
            raise self.error('include needs one quoted file name: include "file"', toks[0])
        if depth >= MAX_INCLUDE_DEPTH:
            raise self.error("includes nested too deeply (an include cycle?)", toks[1])
        pattern = toks[1][1]
        base = os.path.dirname(os.path.abspath(self.side.path_of(self.file))) \
            if not self.file.startswith("<") else os.getcwd()
        path = os.path.normpath(os.path.join(base, pattern))
        if not self.roots:
            raise self.error("include is not allowed when reading from a string", toks[1])
        is_glob = any(c in pattern for c in "*?[")
        # the fixed part of the pattern must already be inside: "/*/*/*/*/*"
        # would otherwise walk the whole machine before being refused
        parts = path.split(os.sep)
        fixed = os.sep.join(next((parts[:k] for k, p in enumerate(parts)
                                  if any(c in p for c in "*?[")), parts)) or os.sep
        real = os.path.realpath(fixed)
        if not any(real == r or real.startswith(r + os.sep) for r in self.roots):
            raise self.error(f"include {pattern!r} leaves the directory of the files given",
                             toks[1], hint="only files beside the rule files named are read")
        side = self.side
        candidates = side.glob(path) if is_glob else [path]
        for candidate in candidates:
            real = os.path.realpath(candidate)
            if not any(real == r or real.startswith(r + os.sep) for r in self.roots):
                raise self.error(f"include {pattern!r} leaves the directory of the files given",
                                 toks[1], hint="only files beside the rule files named are read")
            if not side.is_file(real):
                if is_glob:
                    continue
                raise self.error(f"included file {pattern!r} not found", toks[1])
            self.files_read += 1
            if self.files_read > MAX_INCLUDE_FILES:
                raise self.error(f"more than {MAX_INCLUDE_FILES} files read through include "
                                 "(nftables.MAX_INCLUDE_FILES)", toks[1])
            left = self.side.max_bytes - self.bytes_read
            try:
                included = side.read(real, left)
            except RuleAnalyzerError as exc:
                if "over the limit" not in exc.message:
                    raise
                raise self.error(f"the included files together are over the limit of {self.side.max_bytes} "
                                 "bytes (--max-bytes counts every file an include reads)", toks[1]) from None
            self.bytes_read += len(included)
            self.read_text(included, side.name_of(candidate), depth + 1)

    # -- defines ------------------------------------------------------------------------
    def expand(self, toks, depth: int = 0, deep: bool = False):
        """``$NAME`` replaced by its definition (inside braces too when
        ``deep``: block bodies are expanded item by item as they are read)."""
        for t in toks:
            if t[0] == W and t[1][:1] == "$" or (deep and t[0] == B):
                break
        else:
            return toks
        if depth > MAX_DEFINE_DEPTH:
            raise self.error("defines nested too deeply", toks[0])
        out = []
        for t in toks:
            if t[0] == W and t[1][:1] == "$":
                value = self.defines.get(t[1][1:])
                if value is None:
                    raise self.error(f"undefined variable {t[1]}", t)
                self.expanded += self.define_sizes.get(t[1][1:], 1)
                if self.expanded > MAX_DEFINE_TOKENS:
                    raise self.error(f"defines expand to more than {MAX_DEFINE_TOKENS} tokens "
                                     "(nftables.MAX_DEFINE_TOKENS)", t,
                                     hint="a define that doubles per line expands exponentially")
                out.extend(value)  # expanded when defined (``define``): nothing left to replace
            elif t[0] == B and deep:
                out.append((B, [self.expand(i, depth + 1, deep) for i in t[1]], *t[2:]))
            else:
                out.append(t)
        return out

    def define(self, toks) -> None:
        if len(toks) < 4 or toks[1][0] != W or not _is_word(toks[2], "="):
            raise self.error("define needs NAME = value", toks[0])
        value = self.defines[toks[1][1]] = self.expand(toks[3:], deep=True)
        self.define_sizes[toks[1][1]] = _size(value)

    # -- top level ------------------------------------------------------------------------
    def top_items(self, items, depth: int) -> None:
        for toks in _split_blocks(items):
            head = toks[0]
            if head[0] != W:
                raise self.error("expected a command (table, add, flush, define, include …)", head)
            word = head[1]
            if word == "include":
                self.include(toks, depth)
            elif word in ("define", "redefine"):
                self.define(toks)
            elif word == "undefine":
                if len(toks) > 1:
                    self.defines.pop(toks[1][1], None)
            elif word == "table":
                self.table_command(toks[1:], head, depth)
            elif word in ("add", "create", "insert", "replace", "delete", "destroy", "flush",
                          "list", "reset", "rename", "monitor", "describe", "export", "import"):
                self.command(word, toks[1:], head, depth)
            elif word == "chain":  # "chain t c { … }" shorthand is not nft syntax
                raise self.error("a chain must be inside a table", head)
            else:
                raise self.error(f"unknown command {word!r}", head,
                                 hint="expected table, add, insert, flush, delete, define or include")

    def _family_name(self, toks, at):
        """``[family] name`` at the start of ``toks`` → (family, name, rest)."""
        if not toks:
            raise self.error("a table name is missing", at)
        if toks[0][0] == W and toks[0][1] in FAMILIES and len(toks) > 1 and toks[1][0] in (W, S):
            return toks[0][1], self.identifier(toks[1], "table"), toks[2:]
        if toks[0][0] not in (W, S):
            raise self.error("a table name is missing", toks[0])
        return "ip", self.identifier(toks[0], "table"), toks[1:]

    def table_command(self, toks, at, depth) -> None:
        family, name, rest = self._family_name(toks, at)  # nft takes no $variable there
        rest = self.expand(rest)
        table = self.builder.table(family, name, Location(self.file, at[2], at[3]))
        for t in rest:
            if t[0] == B:
                self.table_body(table, t[1], depth)
            elif not _is_word(t):
                raise self.error("unexpected text after the table name", t)

    def command(self, verb, toks, at, depth) -> None:
        toks = self.expand(toks)
        if not toks:
            raise self.error(f"{verb} needs an object (table, chain, rule …)", at)
        kind = toks[0][1]
        rest = toks[1:]
        b = self.builder
        if verb in ("list", "reset", "monitor", "describe", "export", "import", "rename"):
            return
        if kind == "ruleset":
            if verb == "flush":
                b.flush_ruleset()
            return
        if kind == "table":
            family, name, more = self._family_name(rest, toks[0])
            if verb in ("add", "create"):
                self.table_command(rest, toks[0], depth)
            elif verb == "flush":
                b.flush_table(family, name)
            elif verb in ("delete", "destroy"):
                b.delete_table(family, name)
            return
        if kind in ("chain", "rule", "set", "map", "element", "counter", "quota", "limit", "ct",
                    "flowtable", "secmark", "synproxy", "tunnel"):
            family, table_name, more = self._family_name(rest, toks[0])
            if kind == "ct":  # ct helper|timeout|expectation objects
                return
            if not more or more[0][0] not in (W, S):
                if kind in ("counter", "quota", "limit", "flowtable", "secmark", "synproxy", "tunnel"):
                    return
                raise self.error(f"{verb} {kind} needs a name after the table", toks[0])
            obj, more = more[0], more[1:]
            if kind in ("chain", "rule", "set", "map", "element"):
                self.identifier(obj, "chain" if kind in ("chain", "rule") else "set")
            table = b.table(family, table_name, Location(self.file, at[2], at[3]))
            if kind == "chain":
                if verb in ("delete", "destroy"):
                    b.delete_chain(family, table_name, obj[1])
                    return
                chain = b.chain(family, table_name, obj[1], Location(self.file, at[2], at[3]))
                if verb == "flush":
                    b.flush_chain(chain)
                for t in more:
                    if t[0] == B:
                        self.chain_body(chain, t[1])
            elif kind == "rule":
                chain = b.chain(family, table_name, obj[1], Location(self.file, at[2], at[3]))
                self.rule_command(verb, chain, more, at)
            elif kind in ("set", "map"):
                if verb in ("add", "create"):
                    block = next((t for t in more if t[0] == B), None)
                    self.set_decl(table, obj, block[1] if block else [], kind == "map")
                elif verb == "flush":
                    decl = b.sets.get((family, table_name, obj[1]))
                    if decl is not None:
                        decl.elements.clear()
            elif kind == "element":
                block = next((t for t in more if t[0] == B), None)
                if block is None:
                    raise self.error("element needs { elements }", obj)
                elems = self.elements(block)
                if verb in ("add", "create"):
                    self._model(lambda: b.add_elements(family, table_name, obj[1], elems), obj)
                elif verb in ("delete", "destroy"):
                    decl = b.sets.get((family, table_name, obj[1]))
                    if decl is not None:
                        decl.elements = [e for e in decl.elements if e not in elems]
            return
        raise self.error(f"unknown object {kind!r} after {verb}", toks[0])

    def rule_command(self, verb, chain, toks, at) -> None:
        b = self.builder
        position = None
        ref = None
        if toks and toks[0][0] == W and toks[0][1] in ("handle", "position", "index") and len(toks) > 1:
            ref = (toks[0][1], toks[1][1])
            toks = toks[2:]
        if verb in ("delete", "destroy"):
            if ref is None or ref[0] != "handle":
                raise self.error("delete rule needs: handle N", at)
            b.delete_rule(chain, ref[1])
            return
        if verb == "replace" and ref:
            position = b.rule_position(chain, ref[1])
            if position is not None:
                b.delete_rule(chain, ref[1])
        elif ref is not None:
            if ref[0] == "index":
                position = int(ref[1]) if ref[1].isdigit() else None
                if position is not None and verb == "add":
                    position += 1
            else:
                found = b.rule_position(chain, ref[1])
                if found is not None:
                    position = found + (1 if verb == "add" else 0)
        elif verb == "insert":
            position = 0
        if not toks:
            raise self.error("a rule needs statements", at)
        self.rule(chain, toks, position=position, handle=None)

    # -- tables ---------------------------------------------------------------------------
    def table_body(self, table, items, depth) -> None:
        b = self.builder
        if type(items) is Body and FAST_LINES:
            text, start, end, line, _line_start, ends = items.layout()
            fast = nft_lines.table_items(text, start, end, line, ends)
            if fast is not None:  # chains, sets and maps one per line (kube-proxy's): without words
                for kind, (line, column), name_tok, block in fast:
                    self.identifier(name_tok, "set" if kind == "map" else kind)
                    body = Body(text, block[0], block[1], block[2], block[3], ends)
                    if kind == "chain":
                        self.chain_body(b.chain(table.family, table.name, name_tok[1],
                                                Location(self.file, line, column)), body)
                    else:
                        self.set_decl(table, name_tok, body, kind == "map")
                return
        for toks in _split_blocks(items):
            if len(toks) > 1 and toks[0][0] == W and toks[0][1] in ("chain", "set", "map"):
                self.identifier(toks[1], "set" if toks[0][1] == "map" else toks[0][1])
            toks = self.expand(toks)
            head = toks[0]
            if head[0] != W:
                raise self.error("expected chain, set, map or another table item", head)
            word = head[1]
            if word == "include":
                self.include(toks, depth)
            elif word in ("define", "redefine"):
                self.define(toks)
            elif word == "chain":
                if len(toks) < 2 or toks[1][0] not in (W, S):
                    raise self.error("chain needs a name", head)
                chain = b.chain(table.family, table.name, toks[1][1], Location(self.file, head[2], head[3]))
                for t in toks[2:]:
                    if t[0] == B:
                        self.chain_body(chain, t[1])
            elif word in ("set", "map"):
                if len(toks) < 3 or toks[1][0] not in (W, S) or toks[2][0] != B:
                    raise self.error(f"{word} needs a name and {{ … }}", head)
                self.set_decl(table, toks[1], toks[2][1], word == "map")
            elif word == "flags":
                table.dormant = table.dormant or any(t[1] == "dormant" for t in toks[1:] if t[0] == W)
            elif word in ("comment", "counter", "quota", "limit", "ct", "flowtable",
                          "secmark", "synproxy", "tunnel"):
                continue  # objects the analyzer does not use
            else:
                raise self.error(f"unexpected {word!r} in a table", head,
                                 hint="a table holds chain, set, map, flowtable and named objects")

    def set_decl(self, table, name_tok, items, is_map) -> None:
        flags, has_timeout, fast = [], False, None
        if type(items) is Body and FAST_LINES:  # kube-proxy's sets and maps: read without words
            text, start, end, _line = items.source()
            fast = nft_lines.set_elements(text, start, end, _scalar, self.is_chain_name)
        elements = fast if fast is not None else []
        for toks in items if fast is None else ():
            toks = self.expand(toks)
            if not toks or toks[0][0] != W:
                continue
            word = toks[0][1]
            if word == "flags":
                flags.extend(t[1] for t in toks[1:] if t[0] == W and t[1] != ",")
            elif word == "timeout":
                has_timeout = True
            elif word == "elements":
                block = next((t for t in toks if t[0] == B), None)
                if block is None:
                    raise self.error("elements needs = { … }", toks[0])
                elements.extend(self.elements(block, is_map))
        self._model(lambda: self.builder.declare_set(table.family, table.name, name_tok[1], is_map,
                                                     flags, elements, has_timeout), name_tok)

    def _model(self, fn, tok):
        try:
            return fn()
        except ModelError as exc:
            raise self.error(str(exc), tok) from None

    # -- chains ---------------------------------------------------------------------------
    def chain_body(self, chain, items) -> None:
        if type(items) is Body and FAST_LINES:
            fast = nft_lines.chain_rules(*items.source(), _scalar, self.is_chain_name)
            if fast is not None:  # the line shapes kube-proxy writes: read without words
                b = self.builder
                at_names = None if self.defines else False  # no '@' in those lines
                for line, column, text, stmts in fast:
                    location = Location(self.file, line, column)
                    if not b.add_built(chain, stmts, location, text):
                        b.add_rule(chain, nft_lines.as_json(stmts), location, text, handle=None, comment=None,
                                   position=None, at_names=at_names)
                return
        for toks in items:
            toks = self.expand(toks)
            if not toks:
                continue
            head = toks[0]
            word = head[1] if head[0] == W else None
            if word in ("type", "device", "devices"):
                toks = self.expand(toks, deep=True)  # devices = { $DEV }
            if word == "type":
                self.chain_type(chain, toks)
            elif word == "policy":
                if len(toks) < 2 or toks[1][0] != W:
                    raise self.error("policy needs accept or drop", head)
                self._model(lambda: self.builder.set_base(chain, None, None, None, toks[1][1],
                                                          location=Location(self.file, head[2], head[3])), head)
            elif word in ("device", "devices"):
                names = [t[1] for t in _flatten(toks[1:]) if t[0] in (W, S) and t[1] not in ("=", ",")]
                chain.devices = tuple(names)
            elif word == "comment" and len(toks) == 2:
                continue
            elif word == "flags" and len(toks) == 2:
                continue
            else:
                self.rule(chain, toks)

    def chain_type(self, chain, toks) -> None:
        kind = hook = None
        prio_words: list[str] = []
        i = 1
        while i < len(toks):
            t = toks[i]
            if _is_word(t, "hook") and i + 1 < len(toks):
                hook = toks[i + 1][1]
                i += 2
            elif _is_word(t, "priority"):
                i += 1
                while i < len(toks) and not _is_word(toks[i], "device", "devices", "policy"):
                    if toks[i][0] not in (W, S):
                        raise self.error("chain priority must be a number or a name (filter, raw - 10 …)",
                                         toks[i])
                    prio_words.append(toks[i][1])
                    i += 1
            elif _is_word(t, "device", "devices"):
                i += 1
                if i < len(toks) and _is_word(toks[i], "="):
                    i += 1
                if i < len(toks):
                    chain.devices = tuple(x[1] for x in _flatten([toks[i]]) if x[0] in (W, S)
                                          and x[1] != ",")
                i += 1
            elif kind is None and t[0] == W:
                kind = t[1]
                i += 1
            else:
                i += 1
        if hook is None:
            raise self.error("a base chain needs: type T hook H priority P", toks[0])
        self._model(lambda: self.builder.set_base(chain, kind, hook, " ".join(prio_words) or 0, None), toks[0])

    # -- rules -----------------------------------------------------------------------------
    def rule(self, chain, toks, position=None, handle="auto") -> None:
        if toks[0][0] != W:
            raise self.error("a rule must start with a match or a statement", toks[0])
        line = toks[-1][2]
        if handle == "auto":
            handle = None
            comment = self.comments.get(line)
            if comment and comment.startswith("# handle "):
                handle = comment[9:].strip()
        text = _tokens_text(self.text, toks)
        stmts, comment = _RuleReader(self, chain, toks).read()
        # without defines every word of the rule is in its text: an '@' there or not
        self.builder.add_rule(chain, stmts, Location(self.file, toks[0][2], toks[0][3]), text,
                              handle=handle, comment=comment, position=position,
                              at_names=None if self.defines else "@" in text)

    # -- values in braces -------------------------------------------------------------------
    def elements(self, brace, is_map=False) -> list:
        """The elements of a ``{ … }`` set (``[key, value]`` pairs for maps)."""
        reader = _RuleReader(self, None, [])
        return reader.set_elements(brace, is_map)


def _split_blocks(items):
    """Items, with a stray ``{`` on its own line joined to the line before it and
    anything written after a closing ``}`` on the same line split off; one by
    one, as a block's items are read (a table's chains are not all kept)."""
    last = None  # the last piece, still open to a '{' on the next line
    for toks in items:
        if not toks:
            continue
        if toks[0][0] == B and last is not None:
            last = last + toks
            continue
        if last is not None:
            yield last
        start = 0
        for i, t in enumerate(toks):
            if t[0] == B and i + 1 < len(toks) and toks[i + 1][0] == W and \
                    toks[i + 1][1] in ("table", "chain", "set", "map", "add", "flush", "define"):
                yield toks[start:i + 1]
                start = i + 1
        last = toks[start:]
    if last is not None:
        yield last


def _flatten(toks):
    for t in toks:
        if t[0] == B:
            for item in t[1]:
                yield from _flatten(item)
        else:
            yield t


# ---------------------------------------------------------------------------
# Words of one rule → JSON-shaped statements
# ---------------------------------------------------------------------------

_PAYLOAD_PROTOS = {"ip", "ip6", "tcp", "udp", "udplite", "sctp", "dccp", "th", "icmp", "icmpv6",
                   "igmp", "ah", "esp", "comp", "ether", "vlan", "arp", "gre", "ipcomp", "dst", "frag", "hbh", "mh", "rt", "rt0", "rt2", "rt4", "srh",
                   "eth"}
_META_BARE = {"iifname", "oifname", "iif", "oif", "mark", "skuid", "skgid", "nftrace", "rtclassid",
              "ibriport", "obriport", "ibridgename", "obridgename", "pkttype", "cpu", "iifgroup",
              "oifgroup", "cgroup", "iiftype", "oiftype", "l4proto", "nfproto", "priority",
              "random", "secpath", "ibrname", "obrname", "time", "day", "hour", "sdif", "sdifname",
              "length", "protocol", "iifkind", "oifkind", "broute", "ipsec", "secmark"}
_META_NEVER_BARE = {"length", "protocol", "priority", "random", "secmark", "time", "day", "hour",
                    "ipsec", "l4proto", "nfproto"}
_SELECTOR_WORDS = {"meta", "ct", "fib", "numgen", "jhash", "symhash", "osf", "socket", "ipsec",
                   "exthdr", "tunnel", "vxlan", "geneve", "gretap"}
#: ``ct status``, whose values ``snat``/``dnat`` are also statements' first words
_CT_STATUS = {"ct": {"key": "status"}}


def _masked_of(left):
    """What ``left`` masks (``ct status & dnat`` → ``ct status``), or None."""
    return left["&"][0] if isinstance(left, dict) and isinstance(left.get("&"), list) and left["&"] else None


_REL_OPS = {"==": "==", "!=": "!=", "<": "<", ">": ">", "<=": "<=", ">=": ">=", "eq": "==",
            "ne": "!=", "lt": "<", "gt": ">", "le": "<=", "ge": ">="}
_BINOPS = {"&": "&", "|": "|", "^": "^", "<<": "<<", ">>": ">>", "and": "&", "or": "|",
           "xor": "^", "lshift": "<<", "rshift": ">>"}
_STATEMENT_WORDS = {"accept", "drop", "reject", "jump", "goto", "return", "continue", "queue",
                    "counter", "log", "limit", "quota", "comment", "notrack", "snat", "dnat",
                    "masquerade", "redirect", "dup", "fwd", "flow", "synproxy", "tproxy", "xt",
                    "meter", "add", "update", "delete", "set", "nftrace"}
#: How tightly each binary operator binds (nft's grammar, as C's).
_PRECEDENCE = {"|": 1, "^": 2, "&": 3, "<<": 4, ">>": 4}
#: The words that continue a left-hand expression (operators, ``.``, ``map``).
_EXPRESSION_JOINERS = frozenset(_BINOPS) | {".", "map"}
#: The words that continue a value (``a | b``, ``a, b``, ``a . b``, ``a-b``, ``a / m``).
_VALUE_JOINERS = frozenset({"|", ",", ".", "-", "/"})
#: The words :meth:`_RuleReader.statement` looks for before reading a match.
_STATEMENT_HEADS = frozenset({
    "accept", "drop", "continue", "return", "notrack", "jump", "goto", "reject", "comment",
    "counter", "log", "limit", "quota", "queue", "snat", "dnat", "masquerade", "redirect", "dup",
    "fwd", "tproxy", "flow", "synproxy", "xt", "add", "update", "delete", "set", "meter", "ct"})
_BITMASK_LEFT = ({"payload": {"protocol": "tcp", "field": "flags"}}, {"ct": {"key": "state"}},
                 {"ct": {"key": "status"}})
# no leading zeros: Python's int(w, 0) refuses "05" (nft would read octal)
_NUM_RE = re.compile(r"-?(0x[0-9a-fA-F]+|0|[1-9]\d*)$")
_ADDRISH_RE = re.compile(r"^[0-9a-fA-F:.]+$")


def _scalar(word: str):
    """A word as a JSON scalar, prefix or range."""
    if _NUM_RE.match(word):
        return int(word, 0)
    if "/" in word:
        addr, _, length = word.partition("/")
        if length.isdigit() and addr and (":" in addr or "." in addr):
            return {"prefix": {"addr": addr, "len": int(length)}}
    if "-" in word and not word.startswith("-"):
        lo, _, hi = word.partition("-")
        if _NUM_RE.match(lo) and _NUM_RE.match(hi):
            return {"range": [int(lo, 0), int(hi, 0)]}
        if _ADDRISH_RE.match(lo) and _ADDRISH_RE.match(hi) and ("." in lo or ":" in lo):
            return {"range": [lo, hi]}
    return word


class _RuleReader:
    def __init__(self, reader: _Reader, chain, toks):
        self.r = reader
        self.chain = chain
        self.toks = toks
        self.words = [t[1] if t[0] == W else None for t in toks]  # kept in step with toks
        self.i = 0
        self.n = len(toks)
        self.comment = None

    # -- helpers -----------------------------------------------------------------
    def peek(self, k: int = 0):
        j = self.i + k
        return self.toks[j] if j < self.n else None

    def word(self, k: int = 0):
        j = self.i + k
        return self.words[j] if j < self.n else None

    def take(self):
        t = self.toks[self.i]
        self.i += 1
        return t

    def fail(self, message: str, tok=None):
        tok = tok or self.peek() or (self.toks[-1] if self.toks else None)
        return self.r.error(message, tok)

    def expect_value_tok(self, what: str):
        t = self.peek()
        if t is None:
            raise self.fail(f"{what} is missing", self.toks[-1])
        return self.take()

    def rest_text(self, start: int) -> str:
        return _tokens_text(self.r.text, self.toks[start:self.i])

    # -- statements ------------------------------------------------------------------
    def read(self):
        stmts = []
        toks, n = self.toks, self.n
        while self.i < n:
            t = toks[self.i]
            if t[0] != W:
                raise self.fail("expected a match or a statement here")
            w = t[1]
            # most statements are matches: no statement word to look for
            stmt = self.statement(w) if w in _STATEMENT_HEADS else self.match_or_mangle()
            if stmt is not None:
                stmts.append(stmt)
        return stmts, self.comment

    def statement(self, w: str):
        if w in ("accept", "drop", "continue", "return", "notrack"):
            self.i += 1
            return {w: None}
        if w in ("jump", "goto"):
            self.i += 1
            t = self.expect_value_tok(f"{w} target")
            if t[0] == B:
                if self.chain is None:
                    raise self.fail("a chain binding is only allowed in a rule", t)
                anon = self.r.builder.anonymous_chain(self.chain)
                self.r.chain_body(anon, t[1])
                return {w: {"target": anon.name}}
            if t[0] not in (W, S):
                raise self.fail(f"{w} needs a chain name", t)
            if t[0] == W:  # a quoted target may come from a define ($name): nft takes that
                self.r.identifier(t, "chain")
            return {w: {"target": t[1]}}
        if w == "reject":
            return self.reject()
        if w == "comment":
            self.i += 1
            t = self.expect_value_tok("comment text")
            self.comment = t[1] if t[0] in (W, S) else ""
            return None
        if w == "counter":
            self.i += 1
            if self.word() == "name":
                self.i += 1
                self.operand()
                return {"counter": "named"}
            while self.word() in ("packets", "bytes"):
                self.i += 2
            return {"counter": None}
        if w == "log":
            self.i += 1
            while self.word() in ("prefix", "level", "group", "snaplen", "queue-threshold", "flags"):
                key = self.take()[1]
                self.expect_value_tok(f"log {key} value")
                while key == "flags" and self.word() == ",":
                    self.i += 2
            return {"log": None}
        if w == "limit":
            self.i += 1
            if self.word() == "name":
                self.i += 1
                self.operand()
                return {"limit": {"name": "named"}}
            while self.peek() is not None and self.word() is not None and (
                    self.word() in ("rate", "over", "until", "burst", "packets", "bytes", "kbytes",
                                    "mbytes", "second", "minute", "hour", "day", "week")
                    or "/" in self.word() or self.word()[:1].isdigit()):
                self.i += 1
            return {"limit": {}}
        if w == "quota":
            self.i += 1
            if self.word() == "name":
                self.i += 1
                self.operand()
                return {"quota": {"name": "named"}}
            while self.word() is not None and (self.word() in ("over", "until", "used", "bytes", "kbytes",
                                                               "mbytes", "gbytes") or self.word()[:1].isdigit()):
                self.i += 1
            return {"quota": {}}
        if w == "queue":
            self.i += 1
            opts = []
            while self.word() in ("num", "to", "flags", "bypass", "fanout", ","):
                opts.append(self.take()[1])
                if opts[-1] in ("num", "to") and self.peek() is not None:
                    self.operand()
            return {"queue": None}
        if w in ("snat", "dnat", "masquerade", "redirect"):
            return self.nat(w)
        if w in ("dup", "fwd", "tproxy"):
            self.i += 1
            start = self.i
            if self.word() in ("ip", "ip6") and self.word(1) == "to":
                self.i += 1
            if self.word() == "to":
                self.i += 1
                self.operand() if w != "tproxy" else self.expect_value_tok("the tproxy destination")
            if self.word() == "device":
                self.i += 1
                self.operand()
            if self.i == start:
                raise self.fail(f"{w} needs a destination")
            return {w: self.rest_text(start)}
        if w == "flow":
            self.i += 1
            while self.word() in ("add", "offload", "table") or (self.word() or "").startswith("@"):
                self.i += 1
            return {"flow": {}}
        if w == "synproxy":
            self.i += 1
            if self.word() == "name":
                self.i += 1
                self.operand()
            while self.word() in ("mss", "wscale", "timestamp", "sack-perm", ",") or \
                    (self.word() or "")[:1].isdigit():
                self.i += 1
            return {"synproxy": {}}
        if w == "xt":
            self.i += 1
            kind = self.word()
            self.i += 1
            name = self.peek()[1] if self.peek() else None
            self.i += 1
            return {"xt": {"type": kind, "name": name}}
        if w in ("add", "update", "delete") and (self.word(1) or "").startswith("@"):
            name = self.toks[self.i + 1][1]
            self.i += 2
            return {"set": {"op": w, "set": name, "stmt": self.stateful_block()}}
        if w == "set" and self.word(1) in ("add", "update", "delete"):
            # legacy: set add ip saddr @s
            op = self.toks[self.i + 1][1]
            self.i += 2
            self.expression()
            ref = self.expect_value_tok("set name")
            return {"set": {"op": op, "set": ref[1]}}
        if w == "meter":
            self.i += 1
            name = self.expect_value_tok("meter name")
            if self.word() == "size":
                self.i += 2
            return {"meter": {"name": name[1], "stmt": self.stateful_block()}}
        if w == "ct" and self.word(1) == "count":
            self.i += 2
            if self.word() == "over":
                self.i += 1
            self.expect_value_tok("ct count limit")
            return {"ct count": {}}
        return self.match_or_mangle()

    def stateful_block(self) -> list:
        """The stateful statements in a set update's or meter's ``{ key … }``
        block (``limit rate over 3/minute``, ``quota``, ``ct count``), in
        JSON statement shape; the key itself is not read."""
        t = self.peek()
        if t is None or t[0] != B:
            return []
        self.i += 1
        words = WORD_RE.findall(self.r.text[t[4]:t[5]])
        found = []
        for i, w in enumerate(words):
            if w in ("limit", "quota") or (w == "count" and i and words[i - 1] == "ct"):
                found.append({"ct count" if w == "count" else w: {}})
        return found

    def reject(self):
        self.i += 1
        if self.word() != "with":
            return {"reject": None}
        self.i += 1
        kind = self.expect_value_tok("reject type")[1]
        if kind == "tcp":
            if self.word() == "reset":
                self.i += 1
            return {"reject": {"type": "tcp reset"}}
        if self.word() == "type":
            self.i += 1
        code = self.expect_value_tok("reject code")
        return {"reject": {"type": kind, "expr": code[1]}}

    def nat(self, kind: str):
        self.i += 1
        body: dict = {}
        if self.word() in ("ip", "ip6") and self.word(1) in ("to", "prefix", "addr"):
            body["family"] = self.take()[1]
        flags = []
        while self.word() in ("prefix", "addr", "port") and self.word(1) in ("to", "."):
            if self.word() == "prefix":
                flags.append("netmap")  # "snat ip prefix to …": maps the prefix 1:1
            self.i += 1
            if self.word() == ".":
                self.i += 2
        if self.word() == "to":
            self.i += 1
            t = self.peek()
            if t is None:
                raise self.fail(f"{kind} to needs an address")
            if t[0] == W and (t[1][:1].isdigit() or t[1][:1] in ":[" or _ADDRISH_RE.match(t[1].split("-")[0].split("/")[0])):
                self.i += 1
                self.nat_target(t[1], body, kind)
                if self.word() == ":" and "port" not in body and self.peek(1) is not None:
                    self.i += 1  # "to 10.0.0.1 : tcp dport map { … }": the port is an expression
                    body["port"] = self.operand()
            else:
                body["addr"] = self.operand()
        elif kind in ("snat", "dnat") and self.peek() is not None and self.peek()[0] == W and \
                (self.word()[:1].isdigit() or self.word()[:1] == "["):
            self.nat_target(self.take()[1], body, kind)  # 2015-era "dnat 10.0.0.1"
        while self.word() in ("random", "fully-random", "persistent", "netmap", "prefix", ","):
            if self.word() != ",":
                flags.append(self.word())
            self.i += 1
        if flags:
            body["flags"] = flags
        return {kind: body or None}

    def nat_target(self, text: str, body: dict, kind: str) -> None:
        port = None
        if text.startswith(":") and not text[1:2].isdigit():  # "to :tcp dport map { … }"
            self.toks[self.i - 1] = (W, text[1:], *self.toks[self.i - 1][2:])
            self.words[self.i - 1] = text[1:]
            self.i -= 1
            body["port"] = self.operand()
            return
        if text.startswith("["):
            addr, _, rest = text[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else None
        elif text.startswith(":"):
            addr, port = "", text[1:]
        elif text.count(":") == 1:
            addr, port = text.split(":")
        else:
            addr = text
        if kind in ("masquerade", "redirect") and addr and addr.isdigit() and port is None:
            addr, port = "", addr
        if addr:
            body["addr"] = _scalar(addr)
        if port:
            value = _scalar(port)
            if isinstance(value, int) or isinstance(value, dict):
                body["port"] = value
            else:
                raise self.fail(f"bad port {port!r}")

    # -- matches -----------------------------------------------------------------------
    def match_or_mangle(self):
        left = self.expression()
        i, n = self.i, self.n
        w = self.words[i] if i < n else None
        if w == "set":
            self.i += 1
            value = self.operand()
            if left in ({"ct": {"key": "helper"}}, {"ct": {"key": "timeout"}}, {"ct": {"key": "expectation"}}):
                return {f"ct {left['ct']['key']}": value}
            return {"mangle": {"key": left, "value": value}}
        if w == "vmap":
            self.i += 1
            return {"vmap": {"key": left, "data": self.map_data(verdicts=True)}}
        op = None
        if (w in _REL_OPS or w == "!") and i + 1 < n:
            op = _REL_OPS.get(w, "!")  # "tcp flags ! syn" (nft list prints it): no flag of them set
            i += 1
            self.i = i
        t = self.toks[i] if i < n else None
        if left.get("unknown") is not None and op is None and (t is None or t[0] == W and t[1] in _STATEMENT_WORDS):
            return {"match": {"op": "==", "left": left, "right": True}}
        if t is None or (t[0] == W and t[1] in _STATEMENT_WORDS and t[1] not in ("set",)
                         and not (t[1] in ("snat", "dnat") and _CT_STATUS in (left, _masked_of(left)))
                         and left.get("unknown") is None and not _NUM_RE.match(t[1])):
            raise self.fail("a value to compare with is missing", t or self.toks[-1])
        right = self.value(flag_list=True)
        if isinstance(right, dict) and "/" in right:  # "syn / fin,syn,rst,ack"
            value, mask = right["/"]
            left, right = {"&": [left, mask]}, value
            op = op or "=="
        if op == "!":
            left, right, op = {"&": [left, right]}, 0, "=="
        if op is None:
            is_set = isinstance(right, dict) and "set" in right or isinstance(right, str) and right.startswith("@")
            op = "in" if left in _BITMASK_LEFT and not is_set else "=="
        return {"match": {"op": op, "left": left, "right": right}}

    def expression(self):
        """A left-hand expression: selectors joined by ``.``, binary operators;
        parenthesised as nft lists arithmetic on a raw payload
        (``(@nh,8,8 & 0xfc) >> 2 & 0x38`` for ``ip dscp & 0x38``)."""
        if self.word() == "(" and self.selector_after(1):
            self.i += 1
            left = self.expression()
            if self.word() != ")":
                raise self.fail("')' expected")
            self.i += 1
        else:
            left = self.selector()
        while True:
            w = self.word()
            if w not in _EXPRESSION_JOINERS:
                return left
            if w in _BINOPS and self.peek(1) is not None:
                left = self.binary_tail(left)
            elif w == "." :
                self.i += 1
                if self.starts_selector():
                    nxt = self.selector()
                else:  # a constant inside a concatenation
                    start = self.i
                    self.primary()
                    nxt = {"unknown": self.rest_text(start)}
                if isinstance(left, dict) and "concat" in left:
                    left["concat"].append(nxt)
                else:
                    left = {"concat": [left, nxt]}
            elif w == "map":
                self.i += 1
                left = {"map": {"key": left, "data": self.map_data(verdicts=False)}}
            else:
                return left

    def starts_selector(self) -> bool:
        w, nxt = self.word(), self.word(1)
        if w is None:
            return False
        if w.startswith("@") and nxt == ",":
            return True
        if w in _PAYLOAD_PROTOS:
            return nxt is not None and not _NUM_RE.match(nxt) and nxt not in _REL_OPS \
                and nxt not in (".", ",", "map", "|", "&") and not nxt.startswith("@")
        return w in _SELECTOR_WORDS or (w in _META_BARE and w not in _META_NEVER_BARE)

    def selector_after(self, k: int) -> bool:
        self.i += k
        try:
            return self.starts_selector()
        finally:
            self.i -= k

    def operand(self):
        """A value or an expression (``meta mark set ct mark & 0xff``,
        ``dnat to ip saddr map { … }``)."""
        if self.word() == "(":
            v = self.parenthesised()
        elif self.starts_selector():
            return self.expression()
        else:
            v = self.value()
        while True:
            w = self.word()
            if w in _BINOPS and self.peek(1) is not None:
                v = self.binary_tail(v)
            elif w == "map":
                self.i += 1
                v = {"map": {"key": v, "data": self.map_data(verdicts=False)}}
            else:
                return v

    def binary_tail(self, left, lowest: int = 0):
        """``left`` and the binary operators after it, grouped as nft's
        grammar (C's) groups them: ``<<``/``>>`` before ``&``, ``&`` before
        ``^``, ``^`` before ``|``, each from the left — ``meta mark & 0xff00
        ^ 0x6600`` is ``(meta mark & 0xff00) ^ 0x6600``. Operators that bind
        less than ``lowest`` are left to the caller (precedence climbing)."""
        while True:
            op = _BINOPS.get(self.word())
            if op is None or self.peek(1) is None or _PRECEDENCE[op] < lowest:
                return left
            self.i += 1
            right = self.binary_operand()
            while True:
                nxt = _BINOPS.get(self.word())
                if nxt is None or self.peek(1) is None or _PRECEDENCE[nxt] <= _PRECEDENCE[op]:
                    break
                right = self.binary_tail(right, _PRECEDENCE[op] + 1)
            left = {op: [left, right]}

    def binary_operand(self):
        """One operand of a binary operator: parenthesised, a selector or a
        single value (``|`` after it is the operator, not a flag list)."""
        if self.word() == "(":
            return self.parenthesised()
        if self.starts_selector():
            return self.selector()
        return self.primary()

    def parenthesised(self):
        """``( operand )``, at its opening parenthesis."""
        self.i += 1
        v = self.operand()
        if self.word() != ")":
            raise self.fail("')' expected")
        self.i += 1
        return v

    def selector(self):
        i, n = self.i, self.n
        t = self.toks[i] if i < n else None
        if t is None:
            raise self.fail("an expression is missing", self.toks[-1])
        if t[0] != W:
            raise self.fail("expected an expression here", t)
        w = t[1]
        nxt = self.words[i + 1] if i + 1 < n else None
        if w in _PAYLOAD_PROTOS and nxt is not None and nxt not in _REL_OPS and not _NUM_RE.match(nxt) \
                and nxt not in ("{", ".") and not nxt.startswith("@"):
            if nxt in ("option", "chunk", "exthdr") or w in ("dst", "frag", "hbh", "mh", "rt", "srh"):
                return self.unknown()
            self.i += 2
            return {"payload": {"protocol": w, "field": nxt}}
        if w in ("vxlan", "geneve", "gretap", "tunnel") and nxt is not None:
            start = self.i
            self.i += 1
            if self.starts_selector():
                self.selector()
            else:
                self.i += 1
            return {"payload": {"tunnel": w, "text": self.rest_text(start)}}
        if w == "meta" and nxt is not None:
            self.i += 2
            return {"meta": {"key": nxt}}
        if w in _META_BARE and w not in _META_NEVER_BARE:
            self.i += 1
            return {"meta": {"key": w}}
        if w == "ct" and nxt is not None:
            self.i += 2
            key, direction = nxt, None
            if key in ("original", "reply"):
                direction = key
                if self.word() in ("ip", "ip6"):
                    self.i += 1
                key = self.take()[1] if self.peek() else key
            return {"ct": {"key": key, "dir": direction}} if direction else {"ct": {"key": key}}
        if w == "fib":
            self.i += 1
            flags = []
            while self.word() in ("saddr", "daddr", "mark", "iif", "oif"):
                flags.append(self.take()[1])
                if self.word() == ".":
                    self.i += 1
                else:
                    break
            result = self.take()[1] if self.peek() else ""
            return {"fib": {"result": result, "flags": flags}}
        if w in ("numgen", "jhash", "symhash"):
            start = self.i
            self.i += 1
            spec: dict = {}
            if w == "numgen" and self.word() in ("inc", "random"):
                spec["mode"] = self.take()[1]
            if w == "jhash":
                self.expression_until({"mod"})
            while self.word() in ("mod", "seed", "offset") and self.peek(1) is not None:
                value = self.toks[self.i + 1][1]
                if _NUM_RE.match(value):  # as nft -j gives them: the map's coverage reads these
                    spec[self.word()] = int(value, 0)
                self.i += 2
            return {w: {"text": self.rest_text(start), **spec}}
        if w.startswith("@") and nxt == ",":  # raw payload @nh,32,32
            parts = [w[1:]]
            self.i += 1
            while self.word() == "," and self.peek(1) is not None:
                parts.append(self.toks[self.i + 1][1])
                self.i += 2
            if len(parts) != 3 or not all(_NUM_RE.match(p) for p in parts[1:]):
                raise self.fail("raw payload needs @base,offset,length", t)
            return {"payload": {"base": parts[0], "offset": int(parts[1], 0), "len": int(parts[2], 0)}}
        if w in ("socket", "osf"):
            start = self.i
            self.i += 1
            if w == "osf" and self.word() == "ttl":
                self.i += 2
            key = self.take()[1] if self.peek() is not None else ""
            if self.word() == "level":
                self.i += 2
            return {w: {"key": key, "text": self.rest_text(start)}}
        if w in _STATEMENT_WORDS or _NUM_RE.match(w) or w[:1] in "@$\"" or w in _REL_OPS:
            raise self.fail(f"expected a match expression, found {w!r}", t)
        return self.unknown()

    def expression_until(self, stop: set) -> None:
        while self.peek() is not None and self.word() not in stop:
            self.i += 1

    def unknown(self, raw: bool = False):
        """An expression the analyzer does not model: its words, up to the
        operator or value that follows (its match becomes opaque)."""
        start = self.i
        while self.peek() is not None:
            t = self.peek()
            if t[0] != W or t[1] in _REL_OPS or t[1] in _BINOPS or t[1] in ("set", "map", "vmap", "."):
                break
            if self.i > start and (t[1] in _STATEMENT_WORDS or _NUM_RE.match(t[1]) or t[1][:1] in "@$"
                                   or t[1] in ("ip", "ip6", "tcp", "udp", "meta", "ct")):
                break
            self.i += 1
            if raw and t[1].startswith("@"):
                # @nh,32,32 raw payload: words and commas
                while self.word() in (",",) or (self.word() or "")[:1].isdigit() and self.word(-1) == ",":
                    self.i += 1
                break
        if self.i == start:
            self.i += 1
        return {"unknown": self.rest_text(start)}

    # -- values ------------------------------------------------------------------------------
    def value(self, flag_list: bool = False, in_set: bool = False):
        """A right-hand value: scalar, set, range, flags combined with ``|`` or ``,``,
        concatenation with ``.``, ``v / mask``."""
        v = self.primary()
        while True:
            w = self.word()
            if w not in _VALUE_JOINERS:
                return v
            if w == "|" and self.peek(1) is not None and not self.selector_after(1):
                self.i += 1
                v = {"|": [v, self.primary()]}
            elif w == "," and flag_list and not in_set and self.peek(1) is not None and self.peek(1)[0] == W:
                self.i += 1
                nxt = self.primary()
                v = (v if isinstance(v, list) else [v]) + [nxt]
            elif w == "." and self.peek(1) is not None:
                self.i += 1
                nxt = self.primary()
                v = {"concat": (v["concat"] if isinstance(v, dict) and "concat" in v else [v]) + [nxt]}
            elif w == "-" and self.peek(1) is not None:
                self.i += 1
                v = {"range": [v, self.primary()]}
            elif w == "/" and not in_set and self.peek(1) is not None:
                self.i += 1
                return {"/": [v, self.value(flag_list=True)]}
            else:
                return v

    def primary(self):
        t = self.toks[self.i] if self.i < self.n else None
        if t is None:
            raise self.fail("a value is missing", self.toks[-1])
        self.i += 1
        kind, text = t[0], t[1]
        if kind == S:
            return text
        if kind == B:
            return {"set": self.set_elements(t, False)}
        if text == "(":
            v = self.value(flag_list=True)
            if self.word() != ")":
                raise self.fail("')' expected")
            self.i += 1
            return v
        if text in _REL_OPS or text in ("|", ",", "&", "^", ")", "!"):
            raise self.fail(f"a value is expected, not {text!r}", t)
        return _scalar(text)

    def map_data(self, verdicts: bool):
        t = self.peek()
        if t is None:
            raise self.fail("map data is missing", self.toks[-1])
        if t[0] == W and t[1].startswith("@"):
            self.i += 1
            return t[1]
        if t[0] != B:
            raise self.fail("expected { key : value, … } or @map", t)
        self.i += 1
        return {"set": self.set_elements(t, True)}

    def set_elements(self, brace, is_map: bool) -> list:
        """Elements of ``{ … }``: values, or ``[key, data]`` pairs for maps."""
        toks = [t for item in brace[1] for t in self.r.expand(item)]
        out = []
        sub = _RuleReader(self.r, self.chain, toks)
        while sub.i < sub.n:
            if sub.word() == ",":
                sub.i += 1
                continue
            if sub.peek()[0] == B:  # a define holding a set, used inside a set
                out.extend(sub.set_elements(sub.take(), is_map))
                continue
            key = sub.element_value()
            if sub.word() == ":" or (sub.word() or "").startswith(":"):
                if sub.word() == ":":
                    sub.i += 1
                data = sub.map_value()
                out.append([key, data])
            elif is_map and isinstance(key, str) and key.endswith(":"):
                out.append([_scalar(key[:-1]), sub.map_value()])
            else:
                out.append(key)
            if sub.peek() is not None and sub.word() != ",":
                raise sub.fail("',' or '}' expected between set elements")
        return out

    def element_value(self):
        v = self.value(in_set=True)
        annotations = {}
        while self.word() in ("timeout", "expires", "comment", "counter", "limit", "quota", "ct", "last"):
            key = self.take()[1]
            if key in ("timeout", "expires", "comment"):
                annotations[key] = self.take()[1] if self.peek() else None
                continue
            annotations[key] = None  # per-element statements: up to the next element
            while self.peek() is not None and self.word() not in (",", ":") and \
                    self.word() not in ("timeout", "expires", "comment", "counter", "limit", "quota"):
                self.i += 1
        if annotations:
            return {"elem": {"val": v, **annotations}}
        return v

    def map_value(self):
        w = self.word()
        if w is not None and w.startswith(":"):  # "22 :accept"
            self.toks[self.i] = (W, w[1:], *self.toks[self.i][2:])
            self.words[self.i] = w[1:]
            w = w[1:]
        if w in ("accept", "drop", "continue", "return"):
            self.i += 1
            return {w: None}
        if w in ("jump", "goto"):
            stmt = self.statement(w)
            return stmt
        if w == "reject":
            return self.reject()
        return self.value(in_set=True)
