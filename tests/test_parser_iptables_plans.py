"""The iptables reader's shortcuts give the model a line-by-line reading gives.

Lines of one skeleton share a compiled plan, and values (addresses, ranges,
ports, actions) are shared between the lines that repeat them. Every file
here is read twice — with the sharing and with every line compiled on its
own (``REUSE_PLANS = False``) — and the two models must be the same, down
to each match's text: over the benchmark shapes of issue #21 (every rule
its own shape: multiport lists, ranges, quoted comments, many modules, set
matches), a hand-written file of the tricky spellings, and the corpus'
iptables dumps when present.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.parsers import iptables
from ruleanalyzer.parsers import iptables_rulespec as rulespec

from .generated_shapes import generate

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus" / "iptables"
FRAGMENT_SOURCES = ("iptables-upstream-extension-rules", "iptables-upstream-txlate")


def model(text: str, name: str = "t.rules") -> list:
    """Everything the reader produced, in order (reprs include each match's text)."""
    try:
        rs = iptables.parse(text, name)
    except RuleAnalyzerError as exc:
        return ["error", exc.render()]
    out = []
    for t in rs.tables:
        out.append(repr((t.name, t.family, t.location)))
        for c in t.chains.values():
            out.append(repr((c.name, c.hook, c.priority, c.policy, c.kind, c.location,
                             c.policy_location)))
            for r in c.rules:
                out.append(repr((r.matches, r.action, r.location, r.text, r.comment, r.counters,
                                 r.index, r.chain.name, r.effects)))
                out.append(repr([m.text for m in r.matches]))
    out.extend(repr(d) for d in rs.diagnostics)
    return out


def both_ways(text: str, name: str = "t.rules", monkeypatch=None) -> tuple[list, list]:
    shared = model(text, name)
    monkeypatch.setattr(iptables, "REUSE_PLANS", False)
    try:
        alone = model(text, name)
    finally:
        monkeypatch.setattr(iptables, "REUSE_PLANS", True)
    return shared, alone


@pytest.mark.parametrize("shape", ["mixed", "kube-iptables", "project"])
def test_benchmark_shapes_read_the_same_with_shared_plans(shape, monkeypatch):
    for seed in (1, 2):
        text, dialect = generate(shape, 1500, seed)
        assert dialect == "iptables"
        shared, alone = both_ways(text, monkeypatch=monkeypatch)
        assert shared[0] != "error", shared
        assert shared == alone


TRICKY = """*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:web - [0:0]
-A INPUT -s 10.3/16 -p tcp -m multiport --dports 22,80,8000:8100 -j ACCEPT
-A INPUT -s 10.4/16 -p tcp -m multiport --dports 22,443,9000:9100 -j ACCEPT
-A INPUT -s 10.4/16 -p tcp -m multiport --dports 22,443,9000:9100 -j ACCEPT
-A INPUT -s 10.0.0.0/255.255.0.0 -p udp -m udp ! --dport 1000:2000 -j DROP
-A INPUT -s 10.1.0.0/255.255.0.0 -p udp -m udp ! --dport 1000:3000 -j DROP
-A INPUT -m iprange --src-range 10.1.0.1-10.200.255.254 -j web
-A INPUT -m iprange --src-range 10.2.0.1-10.201.255.254 -j web
-A INPUT -m iprange --dst-range 10.2.0.1-10.2.0.1 -j web
-A INPUT -m iprange --dst-range 10.2.0.0-10.2.0.255 -j web
-A INPUT -m iprange --dst-range 0.0.0.0-255.255.255.255 -j web
-A INPUT -m iprange --dst-range 0.0.0.1-255.255.255.254 -j web
-A INPUT -m set --match-set admins src -m comment --comment "Bob's \\"office\\"" -j ACCEPT
-A INPUT -m set --match-set office-nets dst -m comment --comment "Bob's \\"home\\"" -j ACCEPT
-A INPUT -p tcp ! --sport 1 ! --dport 2 -j ACCEPT
-A INPUT -p tcp ! --sport 1 ! --dport 3 -j ACCEPT
-A INPUT -p tcp ! --sport 1 --dport 3 -j ACCEPT
-A INPUT -p tcp ! --sport 1:5 ! --dport 3 -j ACCEPT
-A INPUT -p tcp ! --sport 1 ! --dport 2 -m tcp ! --sport 1 -j ACCEPT
-A INPUT -p tcp ! --sport 1 ! --dport 2 -m tcp ! --sport 1 -j ACCEPT
-A INPUT -p tcp -m tcp ! --dport 2 -m tcp ! --sport 1 -m tcp ! --sport 1 -j ACCEPT
-A INPUT -m conntrack --ctstate NEW,ESTABLISHED -m limit --limit 5/min --limit-burst 7 -m mark --mark 0x1/0xff -m length --length 20:300 -m ttl --ttl-gt 5 -m pkttype --pkt-type unicast -j LOG --log-prefix "fw drop: " --log-level 4
-A INPUT -m conntrack --ctstate NEW -m limit --limit 6/min --limit-burst 8 -m mark --mark 0x2/0xff -m length --length 21:300 -m ttl --ttl-gt 6 -m pkttype --pkt-type broadcast -j LOG --log-prefix "[blocked] " --log-level 5
-A INPUT -p icmp -m icmp --icmp-type 3/4 -j ACCEPT
-A INPUT -p icmp -m icmp --icmp-type echo-request -j ACCEPT
-A INPUT -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j REJECT --reject-with tcp-reset
-A INPUT -p tcp -m tcp --tcp-flags SYN,RST SYN -j REJECT --reject-with tcp-reset
-A INPUT -i veth+ -o eth0 -j RETURN
-A INPUT -i wg0 -o eth1 -j RETURN
-A web -m addrtype --dst-type LOCAL -j DROP
-A web -m addrtype --dst-type BROADCAST -j DROP
-A INPUT -j "ACCEPT"
-A INPUT -j "ACCEPT"
-A INPUT -j "web"
-A INPUT -j "DROP"
-A INPUT -j AC"CEPT"
-A INPUT -j AC"CEPT"
-A INPUT -j DR"OP"
[5:10] -A web -j ACCEPT
[6:12] -A web -j ACCEPT
COMMIT
"""


def test_tricky_spellings_read_the_same_with_shared_plans(monkeypatch):
    shared, alone = both_ways(TRICKY, monkeypatch=monkeypatch)
    assert shared[0] != "error", shared
    assert shared == alone


def test_corpus_dumps_read_the_same_with_shared_plans(monkeypatch):
    if not CORPUS.is_dir():
        pytest.skip("corpus not present")
    files = sorted(p for p in CORPUS.rglob("*")
                   if p.is_file() and p.parent.name not in FRAGMENT_SOURCES)
    compared = 0
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        shared, alone = both_ways(text, path.name, monkeypatch=monkeypatch)
        assert shared == alone, path.name
        compared += 1
    assert compared > 50


def test_address_ranges_are_the_blocks_ipaddress_summarizes():
    import ipaddress
    import random

    from ruleanalyzer.parsers.iptables_values import parse_address_range

    rng = random.Random(21)
    cases = [(0, 2**32 - 1), (1, 2**32 - 2), (0, 0), (2**32 - 1, 2**32 - 1), (10 << 24, 10 << 24)]
    for _ in range(1500):
        a = rng.randrange(2**32)
        cases.append((a, min(2**32 - 1, a + rng.randrange(1 << rng.randrange(33)))))
    for a, b in cases:
        first, last = ipaddress.IPv4Address(a), ipaddress.IPv4Address(b)
        assert parse_address_range(f"{first}-{last}", "ip") == \
            tuple(ipaddress.summarize_address_range(first, last)), (first, last)
    for _ in range(300):
        a = rng.randrange(2**128)
        first = ipaddress.IPv6Address(a)
        last = ipaddress.IPv6Address(min(2**128 - 1, a + rng.randrange(1 << rng.randrange(129))))
        assert parse_address_range(f"{first}-{last}", "ip6") == \
            tuple(ipaddress.summarize_address_range(first, last)), (first, last)


def test_nat_addresses_read_as_ipaddress_reads_them():
    import ipaddress

    from ruleanalyzer.parsers.iptables_values import BadValue, parse_address

    spellings = ["1.2.3.4", "0.0.0.0", "255.255.255.255", "249.250.251.199", "[1.2.3.4]",
                 "01.2.3.4", "1.2.3.04", "256.1.1.1", "1.2.3", "1.2.3.4.5", "1.2.3.4 ",
                 "\u0661.2.3.4", "00.1.1.1", "1.2.3.4/32", "::1", "1.2.3.4:80", "2001:db8::1"]
    for text in spellings:
        for family in ("ip", "ip6"):
            try:
                want = ipaddress.ip_address(text.strip("[]"))
                if want.version != (6 if family == "ip6" else 4):
                    want = None
            except ValueError:
                want = None
            try:
                got = parse_address(text, family)
            except BadValue:
                got = None
            assert got == want and type(got) is type(want), (text, family)


def test_nat_targets_read_by_the_shortcut_as_the_general_path_reads_them(monkeypatch):
    """``-j DNAT --to-destination A.B.C.D:PORT`` (SNAT --to-source), read
    without the general target path, gives the same rules, and every other
    spelling, protocol or bad value the same rules or the same located error."""
    import random

    values = ["10.1.2.3:8080", "10.1.2.3:1", "10.1.2.3:65535", "10.1.2.3:65536", "10.1.2.3:99999",
              "10.1.2.3:0", "10.1.2.3:080", "10.1.2.3:0x50", "010.1.2.3:80", "10.1.2.256:80",
              "1.2.3:80", "10.1.2.3", "10.1.2.3-10.1.2.9:80", "10.1.2.3:80-90", "10.1.2.3:80/8",
              ":80", "10.1.2.3:http", "[10.1.2.3]:80", "10.1.2.3:", "10.1.2.3:80:90", "0.0.0.0:1"]
    protocols = ["-p tcp", "-p udp", "-p sctp", "-p dccp", "-p udplite", "! -p tcp", "-p icmp", "",
                 "-p 6"]
    forms = [("DNAT", "--to-destination", "PREROUTING"), ("SNAT", "--to-source", "POSTROUTING"),
             ("DNAT", "--to-source", "PREROUTING")]
    files = []
    for target, option, chain in forms:
        for proto in protocols:
            for value in values:
                files.append(f"*nat\n:{chain} ACCEPT [0:0]\n-A {chain} {proto} -j {target} "
                             f"{option} {value}\nCOMMIT\n")
    rng = random.Random(5)
    many = [f"-A PREROUTING -d 10.0.{k % 7}.1/32 -p tcp -j DNAT --to-destination "
            f"{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}:"
            f"{rng.randrange(1, 65536)}" for k in range(600)]  # plans reused, then with own code
    files.append("*nat\n:PREROUTING ACCEPT [0:0]\n" + "\n".join(many) + "\nCOMMIT\n")
    files.append("*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp -j DNAT --to-destination "
                 "[2001:db8::1]:80\nCOMMIT\n")  # an IPv6 file
    shortcut = [model(text) for text in files]
    assert sum(1 for m in shortcut if m[0] != "error") > 40
    assert sum(1 for m in shortcut if m[0] == "error") > 40
    monkeypatch.setattr(rulespec, "_NAT_OPTION", {})
    assert [model(text) for text in files] == shortcut


def test_comments_with_escaped_quotes_read_each_as_written():
    """Comments with escaped quotes, repeated and differing from each other
    only after their first characters, are each read as written (and with
    the glued and two-quote forms, the same as a line alone reads them)."""
    comments = ['"a \\"b\\" c"', '"a \\"x\\" c"', '"a \\"b\\" c"', '"a\\\\b"', '"a \\"b\\""x',
                '"a \\"b\\" c"', '"a"\\"b"', '"\\"\\""']
    want = ['a "b" c', 'a "x" c', 'a "b" c', 'a\\b', 'a "b"x', 'a "b" c', 'a\\b', '""']
    text = "*filter\n:INPUT ACCEPT [0:0]\n" + "".join(
        f"-A INPUT -s 10.0.0.{k} -m comment --comment {c} -j ACCEPT\n" for k, c in enumerate(comments)) + \
        "COMMIT\n"
    rules = iptables.parse(text, "t.rules").table("filter", "ip").chains["INPUT"].rules
    assert [r.comment for r in rules] == want
    for k, c in enumerate(comments):
        alone = iptables.parse_rule(f"-A INPUT -m comment --comment {c} -j ACCEPT")
        assert alone.comment == want[k]


def test_addresses_are_the_networks_ipaddress_builds():
    """The reader builds IPv4 networks without IPv4Network's argument
    parsing: every field, the hosts, equality, hash and text are the
    constructor's, on 3,000 random addresses of every prefix length."""
    import ipaddress
    import random

    from ruleanalyzer.parsers.iptables_values import _v4_network, parse_network

    assert _v4_network.__name__ == "fast"  # the shortcut is in use on this Python
    rng = random.Random(21)
    for k in range(3000):
        number, bits = rng.getrandbits(32), k % 33
        ours = _v4_network(number, bits)
        theirs = ipaddress.IPv4Network((number, bits), strict=False)
        assert type(ours) is type(theirs) and ours == theirs and hash(ours) == hash(theirs)
        assert str(ours) == str(theirs) and ours.netmask == theirs.netmask
        assert vars(ours).keys() == vars(theirs).keys()
        assert ours.network_address == theirs.network_address and ours.prefixlen == bits
        if bits >= 30:
            assert list(ours.hosts()) == list(theirs.hosts())
        assert ours.broadcast_address == theirs.broadcast_address
    text = f"{rng.randrange(256)}.7.8.9/27"
    assert parse_network(text, "ip") == ipaddress.ip_network(text, strict=False)


def test_fast_constructors_make_what_the_dataclasses_make():
    """The reader's Location, AddressMatch and IntMatch constructors give the
    dataclass' objects (fields, equality, hash, repr); a class they cannot
    build exactly (a __post_init__, a field without default left out) gets
    its own constructor."""
    import ipaddress
    from dataclasses import dataclass, field

    from ruleanalyzer.model import AddressMatch, IntMatch, Location
    from ruleanalyzer.parsers.fastnew import slots_constructor
    from ruleanalyzer.parsers.iptables import _location
    from ruleanalyzer.parsers.iptables_modules import _int_match
    from ruleanalyzer.parsers.iptables_rulespec import _address_match

    net = ipaddress.ip_network("10.1.0.0/16")
    cases = [(_location(("a.rules"), 7, 3), Location("a.rules", 7, 3)),
             (_address_match("dst", (net,), True, "! -d 10.1/16"),
              AddressMatch("dst", (net,), negate=True, text="! -d 10.1/16")),
             (_int_match("sport", ((1, 2), (5, 9)), False, "--sport 1:2,5:9"),
              IntMatch("sport", ((1, 2), (5, 9)), negate=False, text="--sport 1:2,5:9"))]
    for ours, theirs in cases:
        assert type(ours) is type(theirs) and ours == theirs and hash(ours) == hash(theirs)
        assert repr(ours) == repr(theirs) and ours.__slots__ == theirs.__slots__
        assert all(getattr(ours, s) == getattr(theirs, s) for s in type(ours).__match_args__)
    for made in (_location, _address_match, _int_match):
        assert made.__name__ == "make"  # the shortcut is in use

    @dataclass(frozen=True, slots=True)
    class Checked:
        a: int
        b: int = 0

        def __post_init__(self):
            if self.a < 0:
                raise ValueError("a < 0")

    @dataclass(frozen=True, slots=True)
    class Required:
        a: int
        b: list = field(default_factory=list)

    assert slots_constructor(Checked, ("a", "b"), (1, 2)).__name__ == "plain"
    assert slots_constructor(Required, ("a",), (1,)).__name__ == "plain"
    assert slots_constructor(Required, ("a", "b"), (1, [])).__name__ == "make"


def _repeated_skeletons(bad: str | None = None) -> str:
    """Every kind of plan step, each skeleton on 8 lines with other values
    (plans get their own code from their 4th line on here, see _specialize);
    ``bad``: a line added after them."""
    lines = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
             ":web - [0:0]", ":web2 - [0:0]"]
    for k in range(8):
        lines += [
            f"-A INPUT -s 10.{k}.0.0/16 -p tcp -m multiport --dports 22,{80 + k} -j ACCEPT",
            f"-A INPUT -s 10.{k % 3}.0.0/16 -p tcp -m multiport --dports 22,{80 + k % 2} -j ACCEPT",
            f"-A INPUT -m set --match-set admins{k} src -m comment --comment \"Bob's \\\"office{k}\\\"\" -j ACCEPT",
            f"-A INPUT -m foo --bar {k} -j ACCEPT",
            f"-A INPUT -c {k} {k * 10} -p udp -m udp --dport {k + 1} -j DROP",
            f"-A INPUT -c {k},{k * 10} -p udp -m udp --dport {k + 1} -j DROP",
            f"-A INPUT -f -d 10.0.{k}.1 -j LOG --log-prefix \"p{k % 2} \"",
            f"-A INPUT -i eth{k} -m comment --comment a{k} -m comment --comment \"b {k}\"",
            f"-I INPUT {k + 1} -s 10.9.{k}.0/24 -j RETURN",
            f"-A INPUT -s \"10.8.{k}.0/24\" -d 10.7.{k}.0/24 -j ACCEPT",
            f"-A INPUT -p tcp -m tcp --tcp-flags SYN,RST SYN --dport {k} -j REJECT --reject-with tcp-reset",
            f"-A INPUT -p tcp ! --sport {k} ! --dport 2 -j ACCEPT",
            f"-A INPUT -p tcp -m tcp --dport {k} -j web{'2' if k % 2 else ''}",
            f"-A INPUT -p tcp -m tcp --dport {k} -g web{'2' if k % 3 else ''}",
            f"-A web -m addrtype --dst-type {'LOCAL' if k % 2 else 'BROADCAST'} -j DROP",
        ]
    if bad:
        lines.append(bad)
    return "\n".join(lines + ["COMMIT", ""])


@pytest.mark.parametrize("bad", [
    None,
    "-A INPUT -s 10.300.0.0/16 -p tcp -m multiport --dports 22,80 -j ACCEPT",
    "-A INPUT -s 10.3.0.0/16 -p tcp -m multiport --dports 22,99999 -j ACCEPT",
    "-A INPUT -c 1 x -p udp -m udp --dport 1 -j DROP",
    "-A INPUT -p tcp -m tcp --tcp-flags SYN,BOGUS SYN --dport 1 -j REJECT --reject-with tcp-reset",
    "-A INPUT -s \"10.8.1.0/33\" -d 10.7.1.0/24 -j ACCEPT",
    "-A INPUT -p tcp -m tcp --dport 1 -j nowhere",
    "-A INPUT -f -d 10.0.1.1 -j LOG --log-prefix \"p1 \" --log-level bogus",
])
def test_plans_with_their_own_code_read_as_the_loop_reads(bad, monkeypatch):
    """A plan run often gets code of its own (_specialize): the rules, shared
    values and located errors are those of every line compiled on its own."""
    made = []
    specialize = rulespec._specialize
    monkeypatch.setattr(rulespec, "_SPECIALIZE_AT", 4)
    monkeypatch.setattr(rulespec, "_specialize", lambda plan: made.append(plan) or specialize(plan))
    shared, alone = both_ways(_repeated_skeletons(bad), monkeypatch=monkeypatch)
    assert (shared[0] == "error") == (bad is not None), shared[:2]
    assert shared == alone
    assert sum(plan.fast is not None for plan in made) >= 12


SEGMENTS = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:web - [0:0]
-A INPUT -p tcp -m tcp --dport 22 -m comment --comment a -j ACCEPT
-A INPUT -s 10.0.0.1 -p tcp -m tcp --dport 22 -m comment --comment a -j ACCEPT
-A INPUT -p tcp -m comment --comment a --dport 22 -j ACCEPT
-A INPUT -p tcp --dport 22 -m comment --comment a -j ACCEPT
-A INPUT -p tcp -m tcp --dpor 22 -m comment --comment a -j ACCEPT
-A INPUT -j ACCEPT -m comment --comment a
-A INPUT -j LOG -m comment --comment a --log-prefix x
-A INPUT -g web -m comment --comment a
-A INPUT -p udp -m udp --dport 53 -m multiport --sports 1,2 -j DROP
-A INPUT -m multiport --sports 1,2 -p udp -m udp --dport 53 -j DROP
-A INPUT ! -p udp -m comment --comment a -j DROP
-A INPUT -4 -m comment --comment a -6 -j DROP
-A INPUT -m comment --comment a -4 -j DROP
-A INPUT -m set --match-set s src -m limit --limit 1/s -m set ! --match-set t dst -j web
-A INPUT -m foo --bar 1 -s 10.0.0.2 -m comment --comment a -j web
-A INPUT -p icmp -m icmp --icmp-type 8 -m conntrack --ctstate NEW -j ACCEPT
-A INPUT -m tcp -m comment --comment a -p tcp --dport 5 -j ACCEPT
"""


@pytest.mark.parametrize("bad", [
    None,
    "-A INPUT -p udp -m tcp --dport 1 -m comment --comment a -j DROP",
    "-A INPUT -p tcp -m comment --comment a -p udp -j DROP",
    "-A INPUT -m comment --comment a -j ACCEPT -j DROP",
    "-A INPUT -m comment --comment a ! -m tcp -j DROP",
    "-A INPUT -m mark -m comment --comment a -j DROP",
    "-A INPUT -m multiport --dports 1 -m comment --comment a -j DROP",
    "-A INPUT -m comment --comment a -m tcp --dport 1 -j DROP",
])
def test_plans_put_together_from_segments_read_as_the_walk_reads(bad, monkeypatch):
    """A new skeleton's plan is put together from the plans of its segments
    (_compose) where that is the whole walk: options of an earlier module,
    of -p's module or by prefix, targets before matches, two -p, a module
    its protocol does not allow read (and fail) as the line walked whole."""
    composed = []
    compose = rulespec._compose
    monkeypatch.setattr(rulespec, "_compose",
                        lambda *a: composed.append(compose(*a)) or composed[-1])
    text = SEGMENTS + (bad + "\n" if bad else "") + "COMMIT\n"
    shared, alone = both_ways(text, monkeypatch=monkeypatch)
    assert (shared[0] == "error") == (bad is not None), shared[:2]
    assert shared == alone
    assert composed.count(True) >= 8 and composed.count(False) >= 6, composed


KNOWN_WORD_PAIRS = [
    ("-A INPUT -m foo --dport 1 -j ACCEPT", "-A INPUT -m bar --dport 1 -j ACCEPT"),
    ("-A INPUT -m set --match-set a src -j web", "-A INPUT -m set --match-set a src -j ACCEPT"),
    ("-A INPUT -s 10.0.0.1 -j DROP", "-A INPUT -s -1 -j DROP"),
    ("-A INPUT -s 10.0.0.1 -j DROP", "-A -x -s 10.0.0.1 -j DROP"),
    ("-A INPUT -m comment --comment xyz -j DROP", "-A INPUT -m comment --comment -ptcp -j DROP"),
    ("-A INPUT -p tcp --foo 1 -j ACCEPT", "-A INPUT -p tcp --bar 1 -j ACCEPT"),
    ("-I INPUT 1 -j ACCEPT", "-I INPUT x -j ACCEPT"),
    ("-A INPUT -p tcp -j ACCEPT", "-A INPUT -p 6 -j ACCEPT"),
    ("-A INPUT -p tcp -j ACCEPT", "-A INPUT -p udp -j ACCEPT"),
    ("-A INPUT -c 1 2 -j ACCEPT", "-A INPUT -c 1,2 -j ACCEPT"),
    ("-A INPUT -m comment --comment x -j ACCEPT", "-A INPUT -m comment --comment \"-x\" -j ACCEPT"),
    ("-A INPUT -m comment --comment x -j ACCEPT", "-A INPUT -m comment --comment \"a -m b\" -j ACCEPT"),
    ("-m tcp -A INPUT -j ACCEPT", "-m udp -A INPUT -j ACCEPT"),
    ("-A INPUT -j web", "-A INPUT -j \"DROP\""),
    ("-A INPUT -j web", "-A INPUT -j web -j DROP"),
]


@pytest.mark.parametrize("pair", KNOWN_WORD_PAIRS)
def test_skeletons_found_by_known_words_are_the_skeletons(pair, monkeypatch):
    """A rule line's skeleton is found by its known words (known_skeleton)
    only where no other line of those words has another: unknown modules,
    protocols and counters after -m/-p/-c, unknown options, '-I CHAIN N'
    read as with the skeleton computed for every line."""
    a, b = pair
    text = ("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            f":web - [0:0]\n{a}\n{a}\n{b}\n{b}\n{a}\nCOMMIT\n")
    with_known = model(text)
    monkeypatch.setattr(iptables, "known_skeleton", lambda known: None)
    computed = model(text)
    monkeypatch.undo()
    assert with_known == computed
    shared, alone = both_ways(text, monkeypatch=monkeypatch)
    assert shared == alone == with_known
