"""nft text's block structure read without Lark (parsers/nft_scan.py) gives
what the grammar gives (parsers/nft_lark.py): the same items — words,
strings, blocks with their lines, columns and offsets — and the same
comments, or nothing where the grammar finds an error (Lark then says where).

Checked on the grammar's terminals themselves, the corpus' nft files (bogons
too), this folder's fixtures, the generated kube-nftables shape, and text
mutated at random around the characters that decide the structure.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
from lark import UnexpectedInput

from ruleanalyzer.parsers import nft_lark, nft_scan

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parent.parent / "shared" / "corpus" / "nftables"
sys.path.insert(0, str(HERE.parent / "bench"))


def _lark(text: str):
    try:
        return nft_lark.parse(text)
    except UnexpectedInput:
        return None


def _iterated(items) -> list:
    """Items with every block read by iterating it, as the reader does."""
    return [[(t[0], _iterated(t[1]), *t[2:]) if t[0] == nft_scan.B else t for t in item]
            for item in items]


def _scanned(text: str):
    found = nft_scan.scan(text)
    if found is None:
        return None
    items, comments = found
    assert _iterated(items) == _iterated(items), "a block read twice reads the same"
    return _iterated(items), comments


def _same(text: str) -> None:
    lark = _lark(text)
    assert _scanned(text) == lark, text[:300]
    assert nft_scan.scan(text) == lark, text[:300]  # kept, not iterated: len, ==


def test_terminals_are_the_grammars():
    terminals = {t.name: t.pattern.to_regexp() for t in nft_lark.parser().terminals}
    assert terminals["CHUNK"] == nft_scan.CHUNK
    assert terminals["LINES"] == nft_scan.LINES
    assert terminals["STRING"] == nft_scan.STRING
    assert terminals["_SEP"] == nft_scan.SEP
    assert terminals["COMMENT"] == nft_scan.COMMENT
    assert (terminals["__IGNORE_0"], terminals["__IGNORE_1"]) == nft_scan.IGNORE
    assert terminals["LINES"] != terminals["CHUNK"] and \
        [t.name for t in nft_lark.parser().terminals if t.priority > 0] == ["LINES"]


CASES = [
    "",
    "table ip t {\n}\n",
    'table inet f { chain c { type filter hook input priority 0; policy drop;\n'
    '  tcp dport { 22, 80 } accept comment "a; \\"b\\" {c}"  # handle 4\n'
    "  ip saddr . tcp dport { 10.0.0.1 . 22 } counter packets 1 bytes 2\n"
    "  jump {\n    accept\n  }\n  meta mark 0x1 \\\n    drop; return\n } }\n",
    "define A = { 1, 2 }\ntable t { chain c { tcp dport $A drop\n\n;;\n } }",
    "table t {\n\tchain c {\n\t\tip daddr \"x\" { a } b\n\t}\n}\n# end",
    "add rule ip t c ip saddr 1.2.3.4 accept\r\nadd rule ip t c drop\r\n",
    "table t { chain c { a \\x b } }",
    "a \\",
    "a\x00b",
]

BAD = ["table t {", "}", 'table t { "open', "\\ a", "table t { chain c { } } }"]


@pytest.mark.parametrize("text", CASES + BAD)
def test_hand_written_cases(text):
    _same(text)


def test_bad_text_is_left_to_lark():
    for text in BAD:
        assert nft_scan.scan(text) is None, text


def _texts():
    files = sorted(HERE.glob("parsers/nftables/*.nft"))
    if CORPUS.is_dir():
        files += sorted(p for p in CORPUS.glob("*/*") if p.is_file())
    for p in files:
        yield p.name, p.read_bytes().decode("utf-8", "replace")


def test_fixtures_and_corpus_files():
    seen = 0
    for name, text in _texts():
        assert _scanned(text) == _lark(text), name
        seen += 1
    assert seen >= 5


def test_generated_kube_nftables_shape():
    from shapes import generate

    text, dialect = generate("kube-nftables", 300)
    assert dialect == "nftables"
    scanned = _scanned(text)
    assert scanned is not None and scanned == _lark(text)


def test_mutated_text():
    """Structure characters inserted, deleted and swapped at random."""
    rng = random.Random(21)
    sources = [t for _, t in _texts() if 20 < len(t) < 4000] + CASES[2:]
    alphabet = ['{', '}', '"', ';', '\n', '\\', '\\\n', '#', ' ', '\t', 'x', '\\"', '{ a }', '\r']
    for _ in range(1500):
        text = rng.choice(sources)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(text) + 1)
            op = rng.random()
            if op < 0.5:
                text = text[:at] + rng.choice(alphabet) + text[at:]
            elif op < 0.8:
                text = text[:at] + text[at + rng.randint(1, 3):]
            else:
                text = text[:at] + rng.choice(alphabet) + text[at + 1:]
        _same(text)


def test_generated_structures():
    """Random well-formed text (mostly): words, operators, strings with
    braces, ';' and '#' in them, one-line and nested blocks, comments, line
    continuations, ';' and blank separators — the shapes the scanner reads
    without its tokens (words and blocks only) and with them."""
    rng = random.Random(5)
    words = ["a", "ip", "saddr", "1.2.3.4", "!=", "==", ",", ".", ":", "|", "&", "x=y", "a,b", "(", ")",
             "<=", ">>", "@s", "$v", "-", "a\\b"]
    strings = ['"s"', '"x y"', '"{"', '";"', '"#"', '"a\\"b"', '"}"', '""']

    def line(depth):
        out = []
        for _ in range(rng.randint(0, 6)):
            r = rng.random()
            if r < 0.6:
                out.append(rng.choice(words))
            elif r < 0.75:
                out.append(rng.choice(strings))
            elif r < 0.85:
                out.append("{ " + " ".join(rng.choice(words + strings) for _ in range(rng.randint(0, 3))) + " }")
            elif r < 0.93 and depth < 3:
                out.append("{\n" + body(depth + 1) + "\n" + rng.choice(["", "\t", "  "]) + "}")
            else:
                out.append(rng.choice(["\\\n", "\t", "  "]))
        text = rng.choice([" ", "", "\t"]).join(out)
        if rng.random() < 0.1:
            text += " # comment {"
        return rng.choice(["", "\t", "  ", "\t\t"]) + text

    def body(depth):
        return rng.choice(["\n", ";", "\r\n", "\n\n", "; "]).join(line(depth) for _ in range(rng.randint(0, 6)))

    well_formed = 0
    for _ in range(600):
        text = body(0) + rng.choice(["", "\n"])
        _same(text)
        well_formed += nft_scan.scan(text) is not None
    assert well_formed > 500
