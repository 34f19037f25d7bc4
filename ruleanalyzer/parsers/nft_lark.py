"""The block structure of nft text with Lark (``grammars/nftables.lark``).

:mod:`.nft_scan` reads well-formed text without Lark; this path gives the
same items, says where text is not well formed, and is what the scanner is
tested against.
"""

from __future__ import annotations

from lark import Lark, Transformer

from ..grammar_loader import grammar_text
from .nft_scan import B, S, split_chunk, split_statements


class _Items(list):
    """Several items from one LINES token, spliced into the enclosing body."""


def _splice(children) -> list:
    out = []
    for c in children:
        if type(c) is _Items:
            out.extend(c)
        else:
            out.append(c)
    return out


class _Blocks(Transformer):
    """Tree-less callbacks: items become lists of word/string/brace tuples."""

    def start(self, children):
        return _splice(children)

    def item(self, parts):
        out = []
        for p in parts:
            if isinstance(p, tuple):
                out.append(p)
            elif p.type == "CHUNK":
                split_chunk(p.value, p.line, p.column, p.start_pos, out)
            else:  # STRING
                out.append((S, p.value[1:-1].replace('\\"', '"'), p.line, p.column, p.start_pos, p.end_pos))
        return out

    def line(self, parts):
        """Parts of a statement, then LINES: that statement's end and more."""
        p = parts[-1]
        cur = self.item(parts[:-1]) if len(parts) > 1 else []
        items = _Items()
        split_statements(p.value, p.line, p.column, p.start_pos, cur, items)
        return items

    def brace(self, children):
        lb, rb = children[0], children[-1]
        return (B, _splice(children[1:-1]), lb.line, lb.column, lb.start_pos, rb.end_pos)


class _Comments:
    """Collects comments (``# handle 4``) while lexing, by line."""

    def __init__(self):
        self.by_line: dict[int, str] = {}

    def __call__(self, token):
        self.by_line[token.line] = token.value
        return token


_COMMENTS = _Comments()
_PARSER: Lark | None = None


def parser() -> Lark:
    """The grammar's LALR parser with the transformer above, built once."""
    global _PARSER
    if _PARSER is None:
        _PARSER = Lark(grammar_text("nftables"), parser="lalr", transformer=_Blocks(),
                       lexer_callbacks={"COMMENT": _COMMENTS}, maybe_placeholders=False)
    return _PARSER


def parse(text: str):
    """``(items, comments by line)`` of ``text``; raises Lark's UnexpectedInput."""
    _COMMENTS.by_line = {}
    items = parser().parse(text)
    return items, _COMMENTS.by_line


