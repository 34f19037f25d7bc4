"""The block structure of nft text without Lark: ``grammars/nftables.lark``'s
terminals and rules, run by hand.

The grammar is small (statements, strings, comments, ``{ … }`` blocks; every
token is legal wherever a statement may go, so its contextual lexer always
tries the same terminals) and a file is one token per run of one-line
statements. Lark's parser loop, its Token objects and building the grammar
at start-up cost more than the tokens themselves (a 50-rule query spent a
third of its time there); this module matches the grammar's own terminal
regexes, in Lark's order, and folds them into the items Lark's transformer
(:class:`~.nftables._Blocks`) gives. Text that is not well formed (an
unclosed block, a stray ``}``, a character no terminal starts with) is left
to Lark, which says where. ``tests/parsers/nftables/test_scan.py`` checks
that both give the same items.
"""

from __future__ import annotations

import re

# Token tuples: (kind, value, line, column, start, end); kind w=word s=string b=brace.
W, S, B = "w", "s", "b"
WORD_RE = re.compile(r"!=|==|<=|>=|<<|>>|[()|&^,<>!=]|[^\s()|&^,<>!=]+")
_OPERATOR_CHAR = re.compile(r"[()|&^,<>!=]").search
# A CHUNK with strings or one-line blocks in it: those, braces and words.
_PART_RE = re.compile(r'"(?:[^"\\\n]|\\.)*"|[{}]|!=|==|<=|>=|<<|>>|[()|&^,<>!=]|[^\s()|&^,<>!="{}]+')


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
    stack = []
    for m in _PART_RE.finditer(value):
        w = m.group()
        pos, end = m.span()
        c = w[0]
        if c == '"':
            out.append((S, w[1:-1].replace('\\"', '"'), line, col + pos, base + pos, base + end))
        elif c == "{":
            stack.append((out, pos))
            out = []
        elif c == "}" and w == "}":
            inner = out
            out, start = stack.pop()
            out.append((B, [inner] if inner else [], line, col + start, base + start, base + end))
        else:
            out.append((W, w, line, col + pos, base + pos, base + end))


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
            stack = []
            out = cur
            at = base + start
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
            cur = out
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
    f"(?P<LINES>{LINES})|(?P<CHUNK>{CHUNK})|(?P<STRING>{STRING})|(?P<LBRACE>\\{{)|(?P<RBRACE>\\}})"
    f"|(?P<SEP>{SEP})|(?P<COMMENT>{COMMENT})|(?P<WS>{IGNORE[0]})|(?P<CONT>{IGNORE[1]})")


def scan(text: str):
    """``(items, comments by line)`` as the Lark path gives them, or None
    when ``text`` is not well formed (the Lark path then reports where)."""
    match = _TOKEN.match
    pos, n = 0, len(text)
    line, line_start = 1, 0
    comments: dict[int, str] = {}
    body: list = []      # the items of the innermost open block
    cur: list = []       # the item being read (its words, strings and blocks so far)
    stack: list = []     # (outer body, outer item, line, column, start) per open block
    while pos < n:
        m = match(text, pos)
        if m is None:
            return None
        kind = m.lastgroup
        end = m.end()
        if kind == "WS":
            pos = end
            continue
        col = pos - line_start + 1
        if kind == "LINES":
            value = m.group()
            split_statements(value, line, col, pos, cur, body)
            cur = []
            last = text.rfind("\n", pos, end)
            if last >= 0:
                line += value.count("\n")
                line_start = last + 1
        elif kind == "CHUNK":
            split_chunk(m.group(), line, col, pos, cur)
        elif kind == "SEP":
            if cur:
                body.append(cur)
                cur = []
            if text[pos] == "\n":
                line += 1
                line_start = end
        elif kind == "STRING":
            cur.append((S, m.group()[1:-1].replace('\\"', '"'), line, col, pos, end))
        elif kind == "COMMENT":
            comments[line] = m.group()
        elif kind == "LBRACE":
            stack.append((body, cur, line, col, pos))
            body, cur = [], []
        elif kind == "RBRACE":
            if not stack:
                return None
            if cur:
                body.append(cur)
            inner = body
            body, cur, lb_line, lb_col, lb_start = stack.pop()
            cur.append((B, inner, lb_line, lb_col, lb_start, end))
        else:  # CONT: a line continuation
            line += 1
            line_start = end
        pos = end
    if stack:
        return None
    if cur:
        body.append(cur)
    return body, comments
