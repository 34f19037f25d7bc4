"""Hypothesis strategies for hostile input: random text and bytes, mutations
of the real corpus, and grammar-aware generation per dialect (iptables option
soup built from the parser's own option tables, nft statements, ufw commands,
JSON documents with subtrees of the wrong type)."""

from __future__ import annotations

import json
import random

from hypothesis import strategies as st

from ruleanalyzer.parsers.iptables_modules import MODULES
from ruleanalyzer.parsers.iptables_rulespec import GENERIC
from ruleanalyzer.parsers.iptables_targets import TARGETS

from . import harness

# -- values a rule word may take -----------------------------------------------------
VALUES = ["22", "80:90", "1:65535", "65536", "-1", "0", "ssh", "http,https", "1,2,3",
          "10.0.0.0/8", "192.0.2.1", "!", "2001:db8::/32", "::1", "0/0", "1.2.3.4/0.0.255.255",
          "tcp", "udp", "icmp", "all", "6", "eth0", "eth+", "lo", "NEW,ESTABLISHED", "INVALID",
          "SYN,ACK", "SYN", "ALL", "NONE", "FIN,SYN,RST,ACK", "0x1/0xff", "0xffffffff", "echo-request",
          "8/0", "\"a b\"", "'quoted'", "--", "--x", "CS1", "af11", "12", "4294967296", "foo", ""]
text_inputs = st.text(st.characters(blacklist_categories=("Cs",)), max_size=600)
bytes_inputs = st.binary(max_size=600)
any_value = st.one_of(st.sampled_from(VALUES), st.text(st.characters(min_codepoint=33, max_codepoint=126),
                                                        min_size=1, max_size=12))


@st.composite
def corpus_mutations(draw, dialect: str, texts: list[str]):
    """One corpus file of ``dialect``, mutated with a drawn seed."""
    text = draw(st.sampled_from(texts))
    seed = draw(st.integers(0, 2**32 - 1))
    return harness.mutate(text, random.Random(seed))


# -- iptables -----------------------------------------------------------------------------
@st.composite
def iptables_rule(draw):
    words = ["-A", draw(st.sampled_from(["INPUT", "FORWARD", "OUTPUT", "USER"]))]
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.integers(0, 3))
        if kind == 0:
            words += [draw(st.sampled_from(sorted(GENERIC))), draw(any_value)]
        elif kind <= 2:
            module = draw(st.sampled_from(sorted(MODULES)))
            words += ["-m", module]
            options = sorted(MODULES[module])
            for _ in range(draw(st.integers(0, 3))):
                if options:
                    if draw(st.booleans()):
                        words.append("!")
                    words.append(draw(st.sampled_from(options)))
                    words += [draw(any_value) for _ in range(draw(st.integers(0, 2)))]
        else:
            words.append(draw(any_value))
    if draw(st.integers(0, 4)):
        target = draw(st.sampled_from(sorted(TARGETS) + ["USER", "NOPE"]))
        words += [draw(st.sampled_from(["-j", "-g"])), target]
        for option in sorted(TARGETS.get(target, {})):
            if draw(st.integers(0, 3)) == 0:
                words.append(option)
                if TARGETS[target][option]:
                    words.append(draw(any_value))
    return " ".join(words)


@st.composite
def iptables_files(draw):
    table = draw(st.sampled_from(["filter", "nat", "mangle", "raw"]))
    builtins = {"filter": ["INPUT", "FORWARD", "OUTPUT"], "raw": ["PREROUTING", "OUTPUT"],
                "nat": ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
                "mangle": ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"]}[table]
    lines = [f"*{table}"] + [f":{c} {draw(st.sampled_from(['ACCEPT', 'DROP']))} [0:0]" for c in builtins]
    lines.append(":USER - [0:0]")
    lines += draw(st.lists(iptables_rule(), max_size=8))
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


# -- nftables ------------------------------------------------------------------------------
_NFT_MATCHES = ["ip saddr {v}", "ip daddr != {v}", "ip6 saddr {v}", "tcp dport {v}", "udp sport {v}",
                "th dport {{ {v}, {v} }}", "ct state {{ established, related }}", "ct state new",
                "tcp flags syn", "tcp flags == syn", "tcp flags syn / fin,syn,rst,ack",
                "tcp flags & (syn|ack) == syn", "meta l4proto {v}", "iifname {v}", "oif {v}",
                "ip protocol {v}", "meta mark {v}", "ip dscp {v}", "ct mark and 0xff == {v}",
                "ip saddr @s", "tcp dport vmap {{ 22 : accept, 80 : drop }}", "icmp type {v}",
                "meta nfproto ipv4", "ip length {v}", "ip ttl {v}", "tcp dport . ip saddr {{ 22 . 10.0.0.1 }}"]
_NFT_VERDICTS = ["accept", "drop", "reject", "return", "jump c2", "goto c2", "continue", "counter",
                 "log prefix {v}", "meta mark set {v}", "queue", "reject with tcp reset", "", "jump nowhere"]


@st.composite
def nft_files(draw):
    def fill(template):
        while "{v}" in template:
            template = template.replace("{v}", draw(any_value), 1)
        return template.replace("{{", "{").replace("}}", "}")

    family = draw(st.sampled_from(["inet", "ip", "ip6", "bridge", "netdev", "arp", "bogus"]))
    rules = []
    for _ in range(draw(st.integers(0, 6))):
        parts = [fill(draw(st.sampled_from(_NFT_MATCHES))) for _ in range(draw(st.integers(0, 3)))]
        parts.append(fill(draw(st.sampled_from(_NFT_VERDICTS))))
        rules.append("    " + " ".join(parts))
    hook = draw(st.sampled_from(["input", "forward", "output", "prerouting", "ingress", "nope"]))
    prio = draw(st.sampled_from(["0", "filter", "-300", "filter + 10", "raw - 1", "x"]))
    elements = ", ".join(draw(st.lists(st.sampled_from(["10.0.0.1", "10.0.0.0/8", "1.2.3.4-1.2.3.9",
                                                          "::1", "22", "x"]), max_size=4)))
    return (f"table {family} t {{\n  set s {{ type ipv4_addr; flags interval; elements = {{ {elements} }} }}\n"
            f"  chain c {{\n    type filter hook {hook} priority {prio}; policy "
            f"{draw(st.sampled_from(['accept', 'drop', 'x']))};\n" + "\n".join(rules) +
            "\n  }\n  chain c2 {\n" + "\n".join(rules[:2]) + "\n  }\n}\n")


# -- ufw ------------------------------------------------------------------------------------
@st.composite
def ufw_commands(draw):
    """ufw command lines: the documented word order (each piece optional),
    with a stray or shuffled word now and then."""
    lines = []
    for _ in range(draw(st.integers(1, 6))):
        words = ["ufw", draw(st.sampled_from(["allow", "deny", "reject", "limit", "route allow",
                                              "insert 1 allow", "delete allow", "prepend deny"]))]
        pieces = [["in", "out"], ["on eth0", "on eth+", "on lo"], ["log", "log-all"],
                  ["proto tcp", "proto udp", "proto esp", "proto any"],
                  ["from any", "from 10.0.0.0/8", "from 2001:db8::1", "from 192.0.2.1 port 53"],
                  ["to any", "to 198.51.100.0/24", "to ::1", "to any port 22", "to any app OpenSSH"],
                  ["port 22", "port 80,443", "port 6000:6007", "22/tcp", "http", "OpenSSH"],
                  ["comment 'x'", "comment \"a b\""]]
        for options in pieces:
            if draw(st.booleans()):
                words.append(draw(st.sampled_from(options)))
        if draw(st.integers(0, 3)) == 0:
            words.insert(draw(st.integers(1, len(words))), draw(any_value))
        if draw(st.integers(0, 5)) == 0:
            words = [words[0]] + draw(st.permutations(words[1:]))
        lines.append(" ".join(words))
    if draw(st.booleans()):
        lines.insert(0, "ufw default " + draw(st.sampled_from(["deny", "allow", "reject", "x"])) + " "
                     + draw(st.sampled_from(["incoming", "outgoing", "routed", ""])))
    return "\n".join(lines) + "\n"


# -- JSON (nft -j, clouds): a real document with subtrees replaced -------------------------------
_JSON_ODDITIES = [None, True, False, 0, -1, 2**64, 1.5, float("1e300"), "", "x", "0.0.0.0/0", "-1",
                  "65536", [], {}, [None], {"": None}, ["a", 1], {"from": "x"}]


def _replace_random(node, rng: random.Random, depth: int = 0):
    if isinstance(node, dict) and node and rng.random() < 0.85:
        key = rng.choice(list(node))
        node = dict(node)
        node[key] = _replace_random(node[key], rng, depth + 1)
        if rng.random() < 0.1:
            del node[rng.choice(list(node))]
        return node
    if isinstance(node, list) and node and rng.random() < 0.85:
        node = list(node)
        i = rng.randrange(len(node))
        node[i] = _replace_random(node[i], rng, depth + 1)
        if rng.random() < 0.1:
            node.append(node[i])
        return node
    return rng.choice(_JSON_ODDITIES)


@st.composite
def json_wrong_types(draw, texts: list[str]):
    text = draw(st.sampled_from(texts))
    try:
        doc = json.loads(text)
    except ValueError:
        return text
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    for _ in range(draw(st.integers(1, 3))):
        doc = _replace_random(doc, rng)
    return json.dumps(doc)


def grammar_inputs(dialect: str, texts: list[str]):
    """The grammar-aware strategy for ``dialect`` (JSON shapes for the JSON readers)."""
    if dialect == "iptables":
        return iptables_files()
    if dialect == "nftables":
        return nft_files()
    if dialect == "ufw":
        return ufw_commands()
    json_texts = [t for t in texts if t.lstrip()[:1] in "{["]
    return json_wrong_types(json_texts) if json_texts else st.just("{}")
