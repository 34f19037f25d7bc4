"""A chain written in kube-proxy's line shapes, read by parsers/nft_lines.py
without the scanner's words, gives the model the word-by-word reader gives:
the same rules (matches, actions, effects, locations, texts), the same
errors at the same places — on the generated kube-nftables shape, on near
misses of each shape, on those lines mutated at random, and on the corpus'
nft files. And the kube-proxy lines do take that path.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.parsers import nft_lines, nftables
from ruleanalyzer.parsers.nft_common import Builder

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parent.parent / "shared" / "corpus" / "nftables"
sys.path.insert(0, str(HERE.parent / "bench"))


def _model(text: str, fast: bool, name: str = "<t>"):
    """Everything the reader gives for ``text``: the JSON-shaped statements
    it hands the builder, its tables, chains and rules field by field, its
    diagnostics — or the error it refuses with."""
    saved = nftables.FAST_LINES
    nftables.FAST_LINES = fast
    added = []
    original = Builder.add_rule

    def add_rule(self, chain, exprs, location, text, **options):
        options = {k: v for k, v in options.items() if k != "at_names"}  # whether to look for '@'
        added.append((chain.name, repr(exprs), location, text, options))
        return original(self, chain, exprs, location, text, **options)

    built = Builder.add_built

    def add_built(self, chain, stmts, location, text):
        done = built(self, chain, stmts, location, text)
        if done:  # the statements add_rule would have had
            added.append((chain.name, repr(nft_lines.as_json(stmts)), location, text,
                          {"handle": None, "comment": None, "position": None}))
        return done

    declare = Builder.declare_set

    def declare_set(self, *args):  # a set's elements, as either path gives them
        added.append(("set", repr(args)))
        return declare(self, *args)

    Builder.add_rule = add_rule
    Builder.add_built = add_built
    Builder.declare_set = declare_set
    try:
        rs = nftables.parse(text, name)
    except RuleAnalyzerError as exc:
        return ("refused", exc.message, exc.location, exc.source_line, exc.hint, added)
    finally:
        nftables.FAST_LINES = saved
        Builder.add_rule = original
        Builder.add_built = built
        Builder.declare_set = declare
    return (added, [(t.family, t.name, [(c.name, c.hook, c.kind, c.priority, c.policy, c.location,
                                  [(r.matches, r.action, r.effects, r.location, r.text, r.comment,
                                    r.ident, r.index) for r in c.rules])
                                 for c in t.chains.values()]) for t in rs.tables],
            rs.diagnostics, sorted(rs.meta))


def _alike(text: str, name: str = "<t>") -> None:
    assert _model(text, True, name) == _model(text, False, name), text[:400]


def _fast_chains(text: str) -> tuple[int, int]:
    """(blocks read by nft_lines, blocks offered to it) while reading ``text``."""
    counts = [0, 0]
    original = nft_lines.chain_rules

    def counting(*args):
        found = original(*args)
        counts[0] += found is not None
        counts[1] += 1
        return found

    nft_lines.chain_rules = counting
    try:
        nftables.parse(text, "<t>")
    finally:
        nft_lines.chain_rules = original
    return counts[0], counts[1]


KUBE = """table ip kube-proxy {
\tchain mark-for-masquerade {
\t\tmeta mark set meta mark | 0x00004000
\t}
\tchain service-X-ns/svc/tcp/http {
\t\tip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
\t\tnumgen random mod 2 vmap { 0 : goto endpoint-A-ns/svc/tcp/http__10.180.0.1/80, 1 : goto endpoint-B }
\t}
\tchain endpoint-A-ns/svc/tcp/http__10.180.0.1/80 {
\t\tip saddr 10.180.0.1 jump mark-for-masquerade
\t\tmeta l4proto tcp dnat to 10.180.0.1:80
\t}
\tchain endpoint-B {
\t\tip saddr 10.180.0.2 jump mark-for-masquerade
\t\tmeta l4proto udp dnat to 10.180.0.2
\t}
}
"""


def _with_body(body: str, family: str = "ip") -> str:
    return KUBE.replace("table ip", f"table {family}").replace(
        "\t\tip saddr 10.180.0.2 jump mark-for-masquerade\n", body)


def test_kube_proxy_chains_take_the_line_path_and_read_alike():
    from shapes import generate

    text, _dialect = generate("kube-nftables", 600)
    fast, offered = _fast_chains(text)
    assert offered > 100 and fast >= offered - 15  # its 13 base and helper chains are read by words
    _alike(text)
    assert _fast_chains(KUBE) == (3, 4)
    _alike(KUBE)


NEAR_MISSES = [
    "\t\tip saddr 10.180.0.2 jump counter\n",  # a keyword: refused where the word is
    "\t\tip saddr 10.180.0.2 goto mark-for-masquerade\n",
    "\t\tip saddr 10.180.0.2 jump mark-for-masquerade comment \"x\"\n",
    "\t\tip saddr 10.180.0.2 jump mark-for-masquerade # handle 7\n",
    "\t\tip saddr 10.180.0.2 jump mark-for-masquerade;\n",
    "\t\tip saddr 10.180.0.2 jump mark-for-masquerade\r\n",
    "  ip   saddr\t!=  10.180.0.2/24\t jump   mark-for-masquerade   \n",
    "\t\tip saddr 010.180.0.2 accept\n",
    "\t\tip saddr 999.180.0.2 accept\n",  # refused when built
    "\t\tip saddr 10.180.0.2/40 accept\n",
    "\t\tip saddr 10.180.0.\u0664 accept\n",  # a digit, not an ASCII one: refused by ipaddress
    "\t\tip daddr 10.0.0.1 tcp dport 8\u0664 accept\n",
    "\t\tip saddr 10.180.0.2-10.180.0.9 accept\n",
    "\t\tip saddr 10.180.0.2 , 10.0.0.3 accept\n",
    "\t\tip daddr 10.0.0.1 tcp dport 080 accept\n",
    "\t\tip daddr 10.0.0.1 tcp dport 0 drop\n",
    "\t\tip daddr 10.0.0.1 udp sport != 53 return\n",
    "\t\tip daddr 10.0.0.1 sctp dport 99999999999 return\n",
    "\t\tip6 saddr ::1 accept\n",
    "\t\tip saddr 10.0.0.1\n",  # no verdict
    "\t\tip saddr 10.0.0.1 accept drop\n",
    "\t\taccept\n\t\tdrop\n",
    "\t\tmeta l4proto tcp dnat to 10.180.0.2:08\n",
    "\t\tmeta l4proto tcp dnat to 10.180.0.2:8080 fully-random\n",
    "\t\tmeta l4proto icmp dnat to 10.180.0.2:80\n",
    "\t\tmeta l4proto tcp dnat ip to 10.180.0.2:80\n",
    "\t\tnumgen random mod 3 vmap { 0 : goto endpoint-B, 1 : jump endpoint-B, 2 : goto mark-for-masquerade }\n",
    "\t\tnumgen inc mod 2 vmap { 0 : goto endpoint-B,1 : goto endpoint-B }\n",
    "\t\tnumgen random mod 2 vmap { 0 : goto endpoint-B , 1 : goto endpoint-B }\n",
    "\t\tnumgen random mod 2 vmap { 0 : goto endpoint-B, 1 : goto counter }\n",
    "\t\tnumgen random mod 2 vmap {0 : goto endpoint-B}\n",
    "\t\tnumgen random mod 2 offset 1 vmap { 1 : goto endpoint-B, 2 : goto endpoint-B }\n",
    "\t\tnumgen random mod 2 vmap { 0 : goto endpoint-B, 1 : accept }\n",
    "\t\tnumgen random mod 2 vmap { 0: goto endpoint-B, 1 : goto endpoint-B }\n",
    "\t\tnumgen random mod 2 vmap { 0 : goto endpoint-B, 1 : goto endpoint-B } accept\n",
    "\t\tjump missing-chain\n",  # refused when everything is read
    "\t\tjump endpoint-B\n",  # a jump loop: refused, located at the jump
    "\n\n\t\tip saddr 10.0.0.9 drop\n\n",
    "\t\tip saddr 10.0.0.9 drop }\n\tchain c2 {\n",
]


@pytest.mark.parametrize("family", ["ip", "inet", "ip6", "bridge"])
def test_near_misses_of_each_shape_read_alike(family):
    for body in NEAR_MISSES:
        _alike(_with_body(body, family))


def test_a_rule_on_the_line_of_the_brace_reads_alike():
    _alike("table ip t {\n\tchain c { ip saddr 10.0.0.1 accept\n\t\tip saddr 10.0.0.2 drop\n\t}\n}\n")
    _alike("table ip t {\n\tchain c {\n\t\tip saddr 10.0.0.2 drop }\n}\n")
    _alike("define x = 1.2.3.4\ntable ip t {\n\tchain c {\n\t\tip saddr 10.0.0.2 drop\n\t}\n}\n")
    _alike("table ip t {\n\tchain c {\n\t\tip saddr 10.0.0.2 drop\n\t}\n}\n"
           "add rule ip t c ip saddr 10.0.0.3 accept\ninsert rule ip t c ip saddr 10.0.0.4 accept\n")


def test_kube_lines_mutated_at_random_read_alike():
    rng = random.Random(21)
    lines = [line for line in KUBE.splitlines(keepends=True) if line.startswith("\t\t")
             and "meta mark" not in line]
    alphabet = " \t,:{}!=.-/0123456789abjumpgotdsr@$#;\"\\"
    for _ in range(400):
        _alike(_with_body(_mutated(rng, rng.choice(lines), alphabet, first=2)))


def test_corpus_nft_files_read_alike():
    if not CORPUS.is_dir():
        pytest.skip("corpus not present")
    files = [p for p in sorted(CORPUS.rglob("*")) if p.is_file() and p.suffix not in (".md", ".json")]
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        _alike(text, str(path))


# -- sets and maps (nft_lines.set_elements) ---------------------------------------------------

SETS = """table ip kube-proxy {
\tset cluster-ips {
\t\ttype ipv4_addr
\t\tcomment "Active ClusterIPs"
\t\telements = { 172.30.0.41, 172.30.0.42 }
\t}
\tmap service-ips {
\t\ttype ipv4_addr . inet_proto . inet_service : verdict
\t\tcomment "ClusterIP, ExternalIP and LoadBalancer IP traffic"
\t\telements = { 172.30.0.41 . tcp . 80 : goto service-X-ns/svc/tcp/http, 172.30.0.42 . udp . 53 : goto svc-B }
\t}
\tmap service-nodeports {
\t\ttype inet_proto . inet_service : verdict
\t\telements = { tcp . 30080 : goto service-X-ns/svc/tcp/http, udp . 30053 : goto svc-B }
\t}
\tchain service-X-ns/svc/tcp/http {
\t\tip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.0.0.0/8 drop
\t}
\tchain svc-B {
\t\taccept
\t}
\tchain services {
\t\tip daddr . meta l4proto . th dport vmap @service-ips
\t\tmeta l4proto . th dport vmap @service-nodeports
\t\tip daddr @cluster-ips drop
\t}
}
"""
#: The line of each SETS declaration that the near misses below replace.
_SET_LINES = [line for line in SETS.splitlines(keepends=True) if line.startswith("\t\telements")]


def _fast(reader: str, text: str) -> tuple[int, int]:
    """(blocks read by ``nft_lines.<reader>``, blocks offered to it) in
    reading ``text``."""
    counts = [0, 0]
    original = getattr(nft_lines, reader)

    def counting(*args):
        found = original(*args)
        counts[0] += found is not None
        counts[1] += 1
        return found

    setattr(nft_lines, reader, counting)
    try:
        nftables.parse(text, "<t>")
    finally:
        setattr(nft_lines, reader, original)
    return counts[0], counts[1]


def _fast_sets(text: str) -> tuple[int, int]:
    """(set blocks read by nft_lines, set blocks offered to it)."""
    return _fast("set_elements", text)


def test_kube_proxy_sets_take_the_line_path_and_read_alike():
    from shapes import generate

    text, _dialect = generate("kube-nftables", 600)
    fast, offered = _fast_sets(text)
    assert offered >= 3 and fast == offered
    _alike(text)
    assert _fast_sets(SETS) == (3, 3)
    _alike(SETS)


SET_NEAR_MISSES = [
    "\t\telements = { 172.30.0.41 . tcp . 80 : goto counter }\n",  # a keyword: refused
    "\t\telements = { 172.30.0.41 . tcp . 80 : goto missing }\n",
    "\t\telements = { 172.30.0.41 . tcp . 80 : jump svc-B, 172.30.0.9 . sctp . 0 : accept }\n",
    "\t\telements = { 172.30.0.41 . tcp . 80 : drop,172.30.0.9 . tcp . 1 : return }\n",
    "\t\telements = { 172.30.0.41 . tcp . 80 : drop , 172.30.0.9 . tcp . 1 : continue }\n",
    "\t\telements = { 172.30.0.41 . tcp . 080 : drop }\n",
    "\t\telements = { 172.30.0.41 . tcp . 99999999999 : drop }\n",
    "\t\telements = { 172.30.0.41 . icmp . 80 : drop }\n",
    "\t\telements = { 172.30.0.41/24 . tcp . 80 : drop }\n",
    "\t\telements = { 172.30.0.41/40 . tcp . 80 : drop }\n",
    "\t\telements = { 999.30.0.41 . tcp . 80 : drop }\n",
    "\t\telements = { 172.30.0.41 . tcp . 80: drop }\n",
    "\t\telements = { 172.30.0.41 . tcp . 80 :drop }\n",
    "\t\telements = { 172.30.0.41 . tcp . 80 }\n",  # a map element without data
    "\t\telements = { 172.30.0.41 : drop }\n",
    "\t\telements = { 172.30.0.41 . tcp . 80 : drop }\n\t\telements = { 172.30.0.42 . tcp . 81 : drop }\n",
    "\t\telements = { 172.30.0.41 . tcp . 80 : drop timeout 1s }\n",
    "\t\telements = { 172.30.0.41 . tcp . 80 : drop, }\n",
    "\t\telements = { }\n",
    "\t\telements = {172.30.0.41 . tcp . 80 : drop}\n",
    "\t\telements = { 172.30.0.41 . tcp . 80 : drop };\n",
    "\t\telements = { 172.30.0.41 . tcp . 80 : drop } # x\n",
    "\t\telements = { 172.30.0.41 . tcp . 80 : drop }\n\t\tflags interval\n",
    "\t\telements = { 172.30.0.41 . tcp . 80 : drop }\n\t\tsize 10\n",
    "\t\telements = { 172.30.0.41 . tcp . 80 : drop }\n\t\ttimeout 10s\n",
    "\t\telements = { 172.30.0.41 . tcp . 80 : drop }\n\t\tcomment \"a # b\"\n",
    "\t\telements = { 172.30.0.41 . tcp . 80 : drop }\n\t\ttype ipv4_addr ; flags interval\n",
    "\t\telements = { 172.30.0.41-172.30.0.50 . tcp . 80 : drop }\n",
    "\t\telements = { 172.30.0.41 . tcp . 80 : goto svc-B }\r\n",
    "\n\n\t\telements = { 172.30.0.41 . tcp . 80 : drop }\n\n",
]


def test_near_misses_of_the_set_shapes_read_alike():
    for body in SET_NEAR_MISSES:
        for line in _SET_LINES:
            _alike(SETS.replace(line, body))
    _alike(SETS.replace("\t\ttype ipv4_addr\n", "\t\ttype ipv4_addr; elements = { 172.30.0.43 }\n"))
    _alike("define A = 172.30.0.41\n" + SETS.replace("172.30.0.42 }", "$A }"))
    _alike(SETS.replace("\tset cluster-ips {\n", "\tset cluster-ips { elements = { 172.30.0.43 }\n"))
    _alike(SETS + "add map ip kube-proxy m2 {\n\ttype ipv4_addr : verdict\n"
           "\telements = { 172.30.0.41 : goto svc-B, 172.30.0.42 : drop }\n}\n")
    _alike(SETS + "add set ip kube-proxy s2 {\n\ttype ipv4_addr\n\telements = { 172.30.0.41, 10.0.0.0/8 }\n}\n"
           "add rule ip kube-proxy services ip saddr @s2 accept\n")


def _mutated(rng, line: str, alphabet: str, first: int = 0) -> str:
    """``line`` with 1-3 characters from ``first`` on replaced, inserted
    or deleted."""
    chars = list(line)
    for _k in range(rng.randint(1, 3)):
        at = rng.randrange(first, len(chars))
        action = rng.random()
        if action < 0.4:
            chars[at] = rng.choice(alphabet)
        elif action < 0.7:
            chars.insert(at, rng.choice(alphabet))
        else:
            del chars[at]
    return "".join(chars)


def test_set_lines_mutated_at_random_read_alike():
    rng = random.Random(22)
    alphabet = " \t,:{}!=.-/0123456789abjumpgotdsr@$#;\"\\"
    for _ in range(300):
        original = rng.choice(_SET_LINES)
        _alike(SETS.replace(original, _mutated(rng, original, alphabet, first=2)))


# -- a table's chain, set and map lines (nft_lines.table_items) ---------------------------------

def _fast_tables(text: str) -> tuple[int, int]:
    """(table blocks read by nft_lines, table blocks offered to it)."""
    return _fast("table_items", text)


def test_kube_proxy_tables_take_the_line_path_and_read_alike():
    from shapes import generate

    text, _dialect = generate("kube-nftables", 600)
    assert _fast_tables(text) == (1, 1)
    assert _fast_tables(SETS) == (1, 1)
    assert _fast_tables(KUBE) == (1, 1)


TABLE_NEAR_MISSES = [
    ("\tchain svc-B {\n", "\tchain counter {\n"),  # a keyword: refused
    ("\tchain svc-B {\n", "\tchain \"svc-B\" {\n"),
    ("\tchain svc-B {\n", "\tchain svc-B{\n"),
    ("\tchain svc-B {\n", "  chain\t svc-B \t{\n"),
    ("\tchain svc-B {\n", "\tchain svc-B { accept\n"),
    ("\tchain svc-B {\n", "\tchain svc-B { # x\n"),
    ("\tchain svc-B {\n", "\tchain svc-B {\r\n"),
    ("\tchain svc-B {\n", "\tchain svc-B\n\t{\n"),
    ("\tchain svc-B {\n", "\tchain svc-B { }\n\tchain svc-C {\n"),
    ("\tchain svc-B {\n", "\n\n\tchain svc-B {\n"),
    ("\tchain svc-B {\n", "\t# a comment\n\tchain svc-B {\n"),
    ("\tchain svc-B {\n", "\tcomment \"x\"\n\tchain svc-B {\n"),
    ("\tchain svc-B {\n", "\tcomment \"x\" ; chain svc-B {\n"),
    ("\tchain svc-B {\n", "\tflags dormant\n\tchain svc-B {\n"),
    ("\tchain svc-B {\n", "\tchain svc-B {\n\t}\n\tchain svc-B {\n"),
    ("\tchain svc-B {\n", "\tset svc-B {\n"),
    ("\tchain services {\n", "\tchain services {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n"),
    ("\t\taccept\n\t}\n", "\t\taccept\n\t} chain svc-D {\n\t}\n"),
    ("\t\taccept\n\t}\n", "\t\taccept\n\t} # x\n"),
    ("\t\taccept\n\t}\n", "\t\taccept\n\t};\n"),
    ("\tmap service-nodeports {\n", "\tmap counter {\n"),
    ("\tmap service-nodeports {\n", "\tmap service-nodeports { type inet_proto . inet_service : verdict\n"),
    ("table ip kube-proxy {\n", "table ip kube-proxy { comment \"x\"\n"),
    ("table ip kube-proxy {\n", "table ip kube-proxy {\n\tcomment \"a # b\"\n"),
    ("table ip kube-proxy {\n", "define X = svc-B\ntable ip kube-proxy {\n"),
    ("\n}\n", "\n\tchain svc-Z {\n\t}}\n"),
    ("\n}\n", "\n}\ntable ip kube-proxy {\n\tchain svc-Z {\n\t\tdrop\n\t}\n}\n"),
]


def test_near_misses_of_the_table_lines_read_alike():
    for old, new in TABLE_NEAR_MISSES:
        assert old in SETS, old
        _alike(SETS.replace(old, new, 1))
    _alike(SETS.replace("table ip", "table inet"))
    _alike(SETS + "add chain ip kube-proxy svc-C\nadd rule ip kube-proxy svc-C drop\n")


def test_table_lines_mutated_at_random_read_alike():
    rng = random.Random(23)
    heads = [line for line in SETS.splitlines(keepends=True) if line.startswith("\t") and
             not line.startswith("\t\t")] + ["table ip kube-proxy {\n"]
    alphabet = " \t,:{}!=.-/0123456789abchinmpst@$#;\"\\\n"
    for _ in range(300):
        original = rng.choice(heads)
        _alike(SETS.replace(original, _mutated(rng, original, alphabet), 1))
