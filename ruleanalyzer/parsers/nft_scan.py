"""The block structure of nft text without Lark: ``grammars/nftables.lark``'s
terminals and rules, run by hand.

The grammar is small (statements, strings, comments, ``{ … }`` blocks; every
token is legal wherever a statement may go, so its contextual lexer always
tries the same terminals) and a file is one token per run of one-line
statements. Lark's parser loop, its Token objects and building the grammar
at start-up cost more than the tokens themselves (a 50-rule query spent a
third of its time there); this module matches the grammar's own terminal
regexes, in Lark's order, and folds them into the items Lark's transformer
(:class:`~.nft_lark._Blocks`) gives. Text that is not well formed (an
unclosed block, a stray ``}``, a character no terminal starts with) is left
to Lark, which says where. A block of plain statements (words, simple
strings and blocks: most of a ruleset) is read line by line, without the
terminals (:func:`_plain_items`). ``tests/test_nft_scan.py`` checks that
both give the same items.
"""

from __future__ import annotations

import re

# Token tuples: (kind, value, line, column, start, end); kind w=word s=string b=brace.
W, S, B = "w", "s", "b"
WORD_RE = re.compile(r"!=|==|<=|>=|<<|>>|[()|&^,<>!=]|[^\s()|&^,<>!=]+")
_OPERATOR_CHAR = re.compile(r"[()|&^,<>!=]").search


def split_chunk(value: str, line: int, col: int, base: int, out: list) -> None:
    """The word/string/brace tuples of a CHUNK, as the grammar would give them
    if the CHUNK's strings and blocks were tokens of their own."""
    if '"' not in value and "{" not in value:
        # Only whitespace lies between two words (every other character is
        # in a word or an operator), so each word is found at the next
        # occurrence of its text.
        pos = 0
        find = value.find
        append = out.append
        # without operators the words are what str.split() gives (its
        # whitespace is re's \s), found faster
        words = value.split() if _OPERATOR_CHAR(value) is None else WORD_RE.findall(value)
        for w in words:
            pos = find(w, pos)
            end = pos + len(w)
            append((W, w, line, col + pos, base + pos, base + end))
            pos = end
        return
    _scan_parts(value, line, col, base, out, None)  # a CHUNK has no ';' outside its strings


# A line of LINES with strings or blocks in it: those, braces, separators, words.
_SCAN_RE = re.compile(r'"(?:[^"\\\n]|\\.)*"|[{};]|!=|==|<=|>=|<<|>>|[()|&^,<>!=]|[^\s()|&^,<>!="{};]+')


def split_statements(value: str, line: int, col: int, base: int, cur: list, items: list) -> None:
    """The items of LINES ``value`` (statements, each ended by ``;`` or a
    newline, with only blanks and separators between): the first continues
    ``cur``, each goes to ``items`` when its separator is reached."""
    start, n = 0, len(value)
    while start < n:
        nl = value.find("\n", start)
        end = n if nl < 0 else nl
        text = value[start:end]
        if '"' in text or "{" in text:
            # strings (which may hold a ';') or one-line blocks: scan
            cur = _scan_parts(text, line, col, base + start, cur, items)
        elif ";" in text:
            off = 0
            segs = text.split(";")
            last = len(segs) - 1
            for k, seg in enumerate(segs):
                split_chunk(seg, line, col + off, base + start + off, cur)
                off += len(seg) + 1
                if k < last and cur:
                    items.append(cur)
                    cur = []
        else:
            split_chunk(text, line, col, base + start, cur)
        if nl >= 0:
            if cur:
                items.append(cur)
                cur = []
            line += 1
            col = 1
        start = end + 1
    if cur:
        items.append(cur)


def _scan_parts(text: str, line: int, col: int, at: int, out: list, items: list | None) -> list:
    """The strings, one-line blocks, words and ``;`` of ``text`` (one line):
    tuples appended to ``out``; at each ``;`` the statement so far goes to
    ``items`` and a new one begins. Returns the statement being read."""
    stack = []
    for m in _SCAN_RE.finditer(text):
        w = m.group()
        pos, stop = m.span()
        c = w[0]
        if c == '"':
            out.append((S, w[1:-1].replace('\\"', '"'), line, col + pos, at + pos, at + stop))
        elif c == "{":
            stack.append((out, pos))
            out = []
        elif c == "}":
            inner = out
            out, first = stack.pop()
            out.append((B, [inner] if inner else [], line, col + first, at + first, at + stop))
        elif c == ";":
            if out:
                items.append(out)
            out = []
        else:
            out.append((W, w, line, col + pos, at + pos, at + stop))
    return out


# The terminals, spelt as Lark's ``to_regexp()`` spells them from the grammar
# (the test compares them).
GAP = "[ \t\r\x0c]*"
PLAIN = '[^\\s{}"#;\\\\][^{}"#;\n\\\\]*(?:\\\\(?!\r?\n)[^{}"#;\n\\\\]*)*'
STRING = '"[^"\\\\\n]*(?:\\\\.[^"\\\\\n]*)*"'
FLAT = f"\\{{{GAP}(?:{PLAIN})?(?:{STRING}{GAP}(?:{PLAIN})?)*\\}}"
CHUNK = f"{PLAIN}(?:(?:{FLAT}|{STRING}){GAP}(?:{PLAIN})?)*"
LINES = f"{CHUNK}[;\n](?:[ \t\r\x0c;\n]*{CHUNK}[;\n])*"
SEP = "[;\n]"
COMMENT = "#[^\n]*"
IGNORE = ("[ \t\r\x0c]+", "\\\\\r?\n")

# LINES first (priority 2), as in Lark's scanner; the other terminals begin
# with different characters, so their order does not matter.
_TOKEN = re.compile(
    f"(?P<LINES>{LINES})|(?P<CHUNK>{CHUNK})|(?P<STRING>{STRING})|(?P<LBRACE>\\{{)"
    f"|(?P<SEP>{SEP})|(?P<COMMENT>{COMMENT})|(?P<WS>{IGNORE[0]})|(?P<CONT>{IGNORE[1]})")
# The first pass: a run of tokens other than braces and comments is one
# match (the regex engine takes them one by one, first alternative first,
# as the scanner above: the run can end anywhere, so it never backtracks
# into a token it took).
_STRUCTURE = re.compile(
    f"(?:{LINES}|{CHUNK}|{STRING}|{SEP}|{IGNORE[0]}|{IGNORE[1]})+|(?P<LBRACE>\\{{)|(?P<RBRACE>\\}})"
    f"|(?P<COMMENT>{COMMENT})")


def scan(text: str):
    """``(items, comments by line)`` as the Lark path gives them, or None
    when ``text`` is not well formed (the Lark path then reports where).

    The text is checked whole first (a first pass finds the blocks and the
    comments), so that a syntax error is reported before anything is read,
    as with Lark; the items of a block are then read from the text when the
    reader iterates it (:class:`Body`), so that the words of 100k rules are
    never all in memory at once."""
    found = _structure(text)
    if found is None:
        return None
    ends, comments = found
    # the file's own items are read one by one too (a script of 100k
    # 'add rule' lines is 100k top-level items)
    return Body(text, 0, len(text), 1, 0, ends), comments


def _structure(text: str):
    """``({position of each '{': position of its '}'}, comments by line)``,
    or None when the text is not well formed."""
    ends: dict[int, int] = {}
    comments: dict[int, str] = {}
    stack: list[int] = []
    pos = 0
    line, counted = 1, 0  # the line of position ``counted``
    for m in _STRUCTURE.finditer(text):
        start = m.start()
        if start != pos:
            return None  # a character no terminal starts with
        kind = m.lastgroup
        if kind == "LBRACE":
            stack.append(start)
        elif kind == "RBRACE":
            if not stack:
                return None
            ends[stack.pop()] = start
        elif kind == "COMMENT":
            line += text.count("\n", counted, start)
            counted = start
            comments[line] = m.group()
        pos = m.end()
    if pos != len(text) or stack:
        return None
    return ends, comments


class Body(list):
    """The items of a ``{ … }`` block, read from the text each time they are
    iterated and not kept (reading a chain frees its words as it goes). Any
    other use (``len``, indexing, ``==``) reads them once and keeps them."""

    __slots__ = ("_text", "_start", "_end", "_line", "_line_start", "_ends", "_kept")

    def __init__(self, text: str, start: int, end: int, line: int, line_start: int, ends: dict):
        super().__init__()
        self._text, self._start, self._end = text, start, end
        self._line, self._line_start, self._ends = line, line_start, ends
        self._kept = False

    def source(self) -> tuple[str, int, int, int]:
        """``(text, start, end, line)``: the block is ``text[start:end]``,
        its ``{`` on line ``line``."""
        return self._text, self._start, self._end, self._line

    def layout(self) -> tuple[str, int, int, int, int, dict]:
        """``(text, start, end, line, line_start, ends)``: :meth:`source`,
        where the ``{``'s line starts, and the first pass' block ends."""
        return self._text, self._start, self._end, self._line, self._line_start, self._ends

    def _items(self):
        return _items(self._text, self._start, self._end, self._line, self._line_start, self._ends)

    def _keep(self):
        if not self._kept:
            self._kept = True
            list.extend(self, self._items())
        return self

    def __iter__(self):
        return list.__iter__(self) if self._kept else self._items()

    def __len__(self):
        return list.__len__(self._keep())

    def __bool__(self):
        return list.__len__(self._keep()) > 0

    def __getitem__(self, k):
        return list.__getitem__(self._keep(), k)

    def __contains__(self, x):
        return list.__contains__(self._keep(), x)

    def __reversed__(self):
        return list.__reversed__(self._keep())

    def __add__(self, other):
        return list(self) + list(other)

    def __radd__(self, other):
        return list(other) + list(self)

    def __eq__(self, other):
        if isinstance(other, Body):
            other._keep()
        return list.__eq__(self._keep(), other)

    def __ne__(self, other):
        return not self == other

    __hash__ = None

    def __repr__(self):
        return list.__repr__(self._keep())


def _items(text: str, pos: int, end: int, line: int, line_start: int, ends: dict):
    """The items of ``text[pos:end]`` (a whole file, or a block's inside),
    one by one; the blocks in them are :class:`Body` objects."""
    blocks = _blocks_only(text, pos, end, ends)
    if blocks is not None:
        yield from _plain_items(text, pos, end, line, line_start, ends, blocks)
        return
    match = _TOKEN.match
    cur: list = []    # the item being read (its words, strings and blocks so far)
    done: list = []   # items a run of statements completed
    while pos < end:
        m = match(text, pos)
        kind = m.lastgroup
        stop = m.end()
        if kind == "WS":
            pos = stop
            continue
        col = pos - line_start + 1
        if kind == "LINES":
            value = m.group()
            split_statements(value, line, col, pos, cur, done)
            cur = []
            last = text.rfind("\n", pos, stop)
            if last >= 0:
                line += value.count("\n")
                line_start = last + 1
            yield from done
            done.clear()
        elif kind == "CHUNK":
            split_chunk(m.group(), line, col, pos, cur)
        elif kind == "SEP":
            if cur:
                yield cur
                cur = []
            if text[pos] == "\n":
                line += 1
                line_start = stop
        elif kind == "STRING":
            cur.append((S, m.group()[1:-1].replace('\\"', '"'), line, col, pos, stop))
        elif kind == "LBRACE":
            close = ends[pos]
            stop = close + 1
            cur.append((B, Body(text, pos + 1, close, line, line_start, ends), line, col, pos, stop))
            last = text.rfind("\n", pos, close)
            if last >= 0:
                line += text.count("\n", pos, close)
                line_start = last + 1
        elif kind == "CONT":  # a line continuation
            line += 1
            line_start = stop
        # COMMENT: read by the first pass
        pos = stop
    if cur:
        yield cur


#: Text between blocks that is words, blanks, newlines and simple strings
#: (no escape, brace, ';' or '#' inside) — no comment, ';' or line
#: continuation.
_GAP_OK = re.compile(r'(?:[^"#;\\{}]++|"[^"\\\n{}#;]*+")*+').fullmatch  # possessive: no backtracking
#: A one-line block inside a CHUNK (the grammar's _FLAT) made of the same.
_FLAT_OK = re.compile(r'\{(?:[^"#;\\{}\n]++|"[^"\\\n{}#;]*+")*+\}').match


def _blocks_only(text: str, pos: int, end: int, ends: dict):
    """Where the blocks directly inside ``text[pos:end]`` start, when words,
    simple strings, one-line blocks, blanks, newlines and blocks are all
    there is (see :data:`_GAP_OK`); else None."""
    found = []
    while True:
        brace = text.find("{", pos, end)
        if _GAP_OK(text, pos, end if brace < 0 else brace) is None:
            return None
        if brace < 0:
            return found
        close = ends.get(brace)
        if close is None:  # a one-line block: part of a CHUNK
            flat = _FLAT_OK(text, brace, end)
            if flat is None:
                return None
            pos = flat.end()
            continue
        found.append(brace)
        pos = close + 1


def _plain_items(text: str, pos: int, end: int, line: int, line_start: int, ends: dict, blocks: list):
    """The items of ``text[pos:end]`` when :func:`_blocks_only` found only
    words, simple strings and blocks there (a table of chains, a chain of
    rules): an item is what comes up to a newline, blocks included. In text
    the first pass found well formed, what lies between a line's start or a
    block and the next newline or block is blanks, CHUNKs and STRINGs (alone
    or in a LINES token), and :func:`split_chunk` of all of it gives what
    it gives for each of them."""
    find = text.find
    cur: list = []
    for brace in blocks + [end]:
        while True:  # the words up to the block, line by line
            nl = find("\n", pos, brace)
            stop = brace if nl < 0 else nl
            if stop > pos:
                split_chunk(text[pos:stop], line, pos - line_start + 1, pos, cur)
            if nl < 0:
                break
            if cur:
                yield cur
                cur = []
            line += 1
            pos = line_start = nl + 1
        if brace == end:
            break
        close = ends[brace]
        cur.append((B, Body(text, brace + 1, close, line, line_start, ends), line, brace - line_start + 1,
                    brace, close + 1))
        last = text.rfind("\n", brace, close)
        if last >= 0:
            line += text.count("\n", brace, close)
            line_start = last + 1
        pos = close + 1
    if cur:
        yield cur
