"""Batch answers (the compiled decision tree) equal single answers, field for field."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from ruleanalyzer import loads
from ruleanalyzer.engine import Evaluator
from ruleanalyzer.engine.batch import BatchEvaluator, Decisions, evaluate_many
from ruleanalyzer.loader import load
from ruleanalyzer.packets import make_packet

#: NAT to constants, a NAT target inside a matched network, marks, ranges,
#: multiport, iprange, negations, an interface: everything the classes rely on.
RULES = """*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 198.51.100.10/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.0.5:8080
-A PREROUTING -d 198.51.100.0/24 -p tcp -m tcp --dport 443 -j DNAT --to-destination 10.0.0.6
-A POSTROUTING -s 10.0.0.0/8 -o eth0 -j SNAT --to-source 198.51.100.1
-A POSTROUTING -s 10.1.0.0/16 -p udp -j MASQUERADE --to-ports 5000
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:web - [0:0]
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -s 10.3.0.0/16 -j MARK --set-xmark 0x1/0xff
-A INPUT -m mark --mark 0x1/0xff -p tcp -m multiport --dports 22,2000:2100 -j ACCEPT
-A INPUT ! -s 192.0.2.0/25 -p udp -m udp --dport 53 -j ACCEPT
-A INPUT -m iprange --src-range 192.0.2.10-192.0.2.77 -p tcp --sport 1024:65535 -j web
-A INPUT -i eth1 -p icmp -j ACCEPT
-A INPUT -m addrtype --dst-type MULTICAST -j DROP
-A FORWARD -d 10.0.0.5/32 -p tcp -m tcp --dport 8080 -j ACCEPT
-A FORWARD -d 10.0.0.6/32 -p tcp -m tcp --dport 443 -j ACCEPT
-A FORWARD -s 10.0.0.0/8 -o eth0 -j ACCEPT
-A web -p tcp -m tcp --dport 80 -j ACCEPT
-A web -p tcp -m tcp --dport 8080 -j REJECT
COMMIT
"""

ADDRESSES = ("10.0.0.5", "10.0.0.6", "10.0.0.7", "10.1.2.3", "10.3.4.5", "10.3.4.6", "192.0.2.10",
             "192.0.2.11", "192.0.2.77", "192.0.2.78", "192.0.2.200", "198.51.100.1", "198.51.100.10",
             "198.51.100.11", "203.0.113.9", "224.0.0.251", "255.255.255.255")


def packets(n: int, seed: int):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        proto = rng.choice(("tcp", "tcp", "udp", "icmp"))
        fields = {"src": rng.choice(ADDRESSES), "dst": rng.choice(ADDRESSES), "proto": proto,
                  "hook": rng.choice(("input", "forward", "output")),
                  "state": rng.choice(("new", "established", "auto")), "id": str(i)}
        if proto != "icmp":
            fields["dport"] = rng.choice((22, 53, 80, 443, 2000, 2050, 2101, 5000, 8080, 9999))
            fields["sport"] = rng.choice((53, 1023, 1024, 5000, 40000, 65535))
        if fields["hook"] != "output":
            fields["iif"] = rng.choice(("eth0", "eth1", None))
        if fields["hook"] != "input":
            fields["oif"] = rng.choice(("eth0", "eth1", None))
        out.append(make_packet(**{k: v for k, v in fields.items() if v is not None}))
    return out


def test_batch_answers_equal_single_answers():
    ruleset = loads(RULES, dialect="iptables", name="batch.rules")
    sample = packets(600, seed=3)
    batch = BatchEvaluator(ruleset)
    answers = [batch.evaluate(p) for p in sample]  # the first 64 one by one, then from the tree
    single = Evaluator(ruleset)
    for packet, answer in zip(sample, answers):
        assert answer == single.evaluate(packet), packet
    # the tree did answer packets (else this test proves nothing about it)
    assert batch._hits > 100 and batch.decisions.leaves < len(set(sample))


def test_a_match_the_tree_does_not_know_keys_its_field_by_value():
    ruleset = loads(RULES.replace("-A web -p tcp -m tcp --dport 80 -j ACCEPT",
                                  "-A web -p tcp -m tcp --dport 80 -m u32 --u32 \"0>>22&0x3C@12>>26&0x3F=0x10\" "
                                  "-j ACCEPT"), dialect="iptables", name="u32.rules")
    from ruleanalyzer.model import BitsMatch, Rule

    web = ruleset.tables[-1].chains["web"]
    assert "dport" not in Decisions(ruleset)._plan(web, None).raw  # u32 reads no named field
    rule = web.rules[0]
    tricky = Rule((BitsMatch("dport", 0x1, frozenset({0})),), rule.action, rule.location)
    web.rules.insert(0, tricky)  # even destination ports are accepted in web
    assert "dport" in Decisions(ruleset)._plan(web, None).raw
    batch = BatchEvaluator(ruleset)
    batch.decisions = Decisions(ruleset)
    single = Evaluator(ruleset)
    for port in (2000, 2001, 2000, 2001, 2002):  # one atom of the other rules, odd and even
        packet = make_packet(src="192.0.2.20", dst="10.0.0.1", proto="tcp", sport=5000, dport=port,
                             hook="input", state="new")
        assert batch.evaluate(packet) == single.evaluate(packet)
    assert batch._hits == 2


CHAIR = (Path(__file__).resolve().parents[3] / "shared" / "corpus" / "iptables" / "net-network"
         / "configs_chair_for_Network_Architectures_and_Services__iptables-save-2016-06-27_16-29-01")


@pytest.mark.skipif(not CHAIR.is_file(), reason="corpus not present (../shared/corpus)")
def test_batch_equals_single_on_the_largest_real_dump():
    ruleset = load(CHAIR)
    rng = random.Random(11)
    import re

    text = CHAIR.read_text(errors="replace")
    # few hosts and ports, so that packets share leaves (sources ports vary)
    hosts = rng.sample(sorted(set(re.findall(r"-[sd] (\d+\.\d+\.\d+\.\d+)", text))), 10)
    ports = rng.sample(sorted({int(p) for p in re.findall(r"--dport (\d+)", text)}), 8)
    sample = []
    for i in range(300):
        hook = rng.choice(("input", "forward", "output"))
        fields = {"src": rng.choice(hosts), "dst": rng.choice(hosts), "proto": "tcp",
                  "dport": rng.choice(ports), "sport": rng.randrange(1024, 65536), "hook": hook,
                  "state": "new"}
        sample.append(make_packet(**fields))
    single = Evaluator(ruleset)
    batch = BatchEvaluator(ruleset)
    batch.decisions = Decisions(ruleset)  # from the first packet on (300 would not pay for it)
    for packet in sample:
        assert batch.evaluate(packet) == single.evaluate(packet)
    assert batch._hits > 100  # many packets were answered from the tree


def test_packets_that_seldom_share_a_leaf_are_answered_one_by_one_alike():
    ruleset = loads(RULES, dialect="iptables", name="batch.rules")
    sample = packets(200, seed=5)
    batch = BatchEvaluator(ruleset)
    batch.decisions = Decisions(ruleset)
    batch._asked, batch._hits = 3999, 0  # as after 4,000 packets with no leaf shared
    single = Evaluator(ruleset)
    for packet in sample:
        assert batch.evaluate(packet) == single.evaluate(packet)
    assert not batch.memoize and batch.decisions is None


# --- the tree against the engine on random packets over several rulesets -----------------------

#: nftables: a verdict map, anonymous sets, negations, interface wildcards, a
#: netdev chain bound to a device, IPv6, marks, DNAT and SNAT to constants.
NFT = """table netdev edge {
  chain ingress { type filter hook ingress device "eth0" priority 0; policy accept;
    ip saddr 203.0.113.0/24 drop
  }
}
table inet main {
  chain pre { type nat hook prerouting priority -100;
    ip daddr 198.51.100.10 tcp dport 80 dnat ip to 10.0.0.5:8080
    ip6 daddr 2001:db8::10 tcp dport 80 dnat ip6 to [2001:db8:1::5]:8080
  }
  chain post { type nat hook postrouting priority 100;
    oifname "wan*" ip saddr 10.0.0.0/8 snat ip to 198.51.100.1
  }
  chain input { type filter hook input priority 0; policy drop;
    ct state established,related accept
    iifname "lo" accept
    iifname != "eth*" ip saddr { 192.0.2.0/25, 192.0.2.200 } tcp dport { 22, 2000-2100 } accept
    ip6 saddr 2001:db8::/32 tcp dport 22 accept
    meta mark set 0x2 ip daddr != 10.0.0.0/8 jump svc
    tcp dport vmap { 25 : drop, 53 : accept, 110-143 : jump svc }
    udp sport 53 ip saddr 192.0.2.0/24 accept
  }
  chain svc {
    meta mark 0x2 tcp dport 443 accept
    ip saddr 192.0.2.64/26 reject
    return
  }
  chain forward { type filter hook forward priority 0; policy drop;
    ct state established accept
    iifname "eth1" oifname "wan*" accept
    ip daddr 10.0.0.5 tcp dport 8080 accept
    ip6 daddr 2001:db8:1::5 tcp dport 8080 accept
  }
}
"""

HERE = Path(__file__).resolve().parents[1]
FIXTURES = [("batch.rules", RULES, "iptables"), ("batch.nft", NFT, "nftables")] + [
    (str(HERE / rel), None, dialect) for rel, dialect in (
        ("checks/RA401/trigger_docker.rules", "iptables"), ("parsers/iptables/webserver.rules", "iptables"),
        ("parsers/nftables/basic.nft", "nftables"), ("checks/RA401/trigger_ufw_stock_v6.rules", "iptables"))]


def _named(ruleset):
    """The addresses (a host inside, at the edges and just outside each
    network), ports and interfaces the ruleset names."""
    from ruleanalyzer.model import AddressMatch, AllOf, AnyOf, Dispatch, IntMatch, InterfaceMatch, Nat

    addrs = {4: {0x0A000001, 0xE00000FB, 0xFFFFFFFF, 0x7F000001}, 6: {1, 0xFF02 << 112 | 1, 0x20010DB8 << 96}}
    ports, names = {0, 1, 65535}, {"eth0", "eth1", "lo", "wan0", "docker0"}

    def leaf(m):
        if isinstance(m, (AllOf, AnyOf)):
            for x in m.matches:
                leaf(x)
        elif isinstance(m, AddressMatch):
            for n in m.networks:
                first, size = int(n.network_address), n.num_addresses
                addrs[n.version].update({first, first + size // 2, first + size - 1, first + size})
        elif isinstance(m, IntMatch) and m.field in ("sport", "dport"):
            for lo, hi in m.ranges:
                ports.update({lo, hi, max(lo - 1, 0), min(hi + 1, 65535)})
        elif isinstance(m, InterfaceMatch):
            names.update(n.rstrip("+*") + ("7" if n[-1:] in "+*" else "") for n in m.names)

    for table in ruleset.tables:
        for chain in table.chains.values():
            names.update(chain.devices)
            for rule in chain.rules:
                for m in rule.matches:
                    leaf(m)
                for action in (rule.action, *rule.effects):
                    branches = action.branches if isinstance(action, Dispatch) else ((None, action),)
                    for m, act in branches:
                        if m is not None:
                            leaf(m)
                        if isinstance(act, Nat) and act.to_addr is not None:
                            addrs[act.to_addr.version].add(int(act.to_addr))
                        if isinstance(act, Nat) and act.to_port is not None:
                            ports.add(act.to_port)
    import ipaddress

    return ({v: [str(ipaddress.ip_address(a) if v == 4 else ipaddress.IPv6Address(a % (1 << 128)))
                 for a in sorted(s) if a < (1 << (32 if v == 4 else 128))] for v, s in addrs.items()},
            sorted(ports), sorted(names))


def random_packets(ruleset, n: int, seed: int):
    """Addresses, ports and interfaces from what the ruleset names; the
    other fields mostly few (so that packets share the tree's root and the
    keys below it are put to the test), sometimes anything."""
    addrs, ports, names = _named(ruleset)
    rng = random.Random(seed)
    out = []
    for i in range(n):
        wide = rng.random() < 0.3
        version = 6 if rng.random() < 0.2 else 4
        proto = rng.choice(("tcp", "tcp", "udp", "icmp" if version == 4 else "icmpv6"))
        hook = rng.choice(("input", "forward", "output", "auto") if wide else ("input", "forward"))
        state = rng.choice(("new", "established", "auto", "invalid") if wide else ("new",))
        fields = {"src": rng.choice(addrs[version]), "dst": rng.choice(addrs[version]), "proto": proto,
                  "hook": hook, "state": state, "id": str(i)}
        if proto in ("tcp", "udp"):
            fields["dport"] = rng.choice(ports)
            fields["sport"] = rng.choice(ports)
            if proto == "tcp":
                fields["flags"] = rng.choice(("SYN", "ACK", "SYN,ACK", "FIN,ACK")) if wide else "SYN"
        else:
            fields["icmp_type"] = rng.choice((0, 3, 8, 128, 135)) if wide else 8 if version == 4 else 128
        for key in ("iif", "oif"):
            if rng.random() < 0.8:
                fields[key] = rng.choice(names)
        if wide and rng.random() < 0.3:
            fields["mark"] = 2
        out.append(make_packet(**fields))
    return out


@pytest.mark.parametrize("name,text,dialect", FIXTURES, ids=[Path(f[0]).name for f in FIXTURES])
def test_the_tree_answers_random_packets_as_the_engine_does(name, text, dialect):
    ruleset = loads(text, dialect=dialect, name=name) if text is not None else load(name, dialect=dialect)
    sample = random_packets(ruleset, 1500, seed=len(name))
    batch = BatchEvaluator(ruleset)
    batch.decisions = Decisions(ruleset)
    single = Evaluator(ruleset)
    for packet in sample:
        assert batch.evaluate(packet) == single.evaluate(packet), packet
    assert batch._hits > 400  # the tree answered a good part of them


CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
CORPUS_FILES = [("iptables/net-network/configs_chair_for_Network_Architectures_and_Services__"
                 "iptables_20.10.2013", "iptables"),
                ("nftables/chr0mag-linux-wireless-router", "nftables")]


@pytest.mark.skipif(not CORPUS.is_dir(), reason="corpus not present (../shared/corpus)")
@pytest.mark.parametrize("rel,dialect", CORPUS_FILES, ids=[d for _, d in CORPUS_FILES])
def test_the_tree_answers_random_packets_on_corpus_files_as_the_engine_does(rel, dialect):
    path = CORPUS / rel
    if not path.exists():
        pytest.skip(f"{rel} not in the corpus")
    if path.is_dir():
        path = max((p for p in path.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    ruleset = load(path, dialect=dialect)
    sample = random_packets(ruleset, 1500, seed=7)
    batch = BatchEvaluator(ruleset)
    batch.decisions = Decisions(ruleset)
    single = Evaluator(ruleset)
    for packet in sample:
        assert batch.evaluate(packet) == single.evaluate(packet), packet


def _tree_and_engine_agree(ruleset, sample):
    batch = BatchEvaluator(ruleset)
    batch.decisions = Decisions(ruleset)
    single = Evaluator(ruleset)
    answers = [batch.evaluate(p) for p in sample]
    assert answers == [single.evaluate(p) for p in sample]
    return answers, batch


@pytest.mark.parametrize("marking", ["-A INPUT -s 10.3.0.0/16 -j MARK --set-mark 1",
                                     "-A INPUT -s 10.3.0.0/16 -j MASQ\n-A MASQ -j MARK --set-mark 1"],
                         ids=["mark", "jump-to-mark"])
def test_a_rule_after_a_mark_is_set_keys_the_chain_by_its_port(marking):
    # a match on the mark cannot rule the port out for a packet entering
    # unmarked: the rule before it marks packets from 10.3/16 (itself, or
    # in the chain it jumps to)
    ruleset = loads("*filter\n:INPUT DROP [0:0]\n:MASQ - [0:0]\n" + marking + "\n"
                    "-A INPUT -m mark --mark 1 -p tcp --dport 22 -j ACCEPT\nCOMMIT\n", dialect="iptables")
    sample = [make_packet(src="10.3.0.9", dst="10.0.0.1", proto="tcp", dport=port, hook="input", state="new")
              for port in (22, 23, 22, 23)]
    answers, batch = _tree_and_engine_agree(ruleset, sample)
    assert [a.verdict for a in answers] == ["accept", "drop", "accept", "drop"] and batch._hits == 2


def test_a_destination_equal_to_the_dnat_target_is_told_apart():
    # DNAT to the address the packet already has changes nothing: delivered,
    # not forwarded; the rest of 10.0.0.0/24 is forwarded to 10.0.0.5
    ruleset = loads("*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -d 10.0.0.0/24 -p tcp "
                    "-j DNAT --to-destination 10.0.0.5\nCOMMIT\n*filter\n:INPUT ACCEPT [0:0]\n"
                    ":FORWARD DROP [0:0]\nCOMMIT\n", dialect="iptables")
    sample = [make_packet(src="192.0.2.1", dst=dst, proto="tcp", dport=80, hook="input", state="new")
              for dst in ("10.0.0.6", "10.0.0.5", "10.0.0.7", "10.0.0.5")]
    answers, batch = _tree_and_engine_agree(ruleset, sample)
    assert [a.outcome for a in answers] == ["dropped", "delivered", "dropped", "delivered"]
    assert batch._hits == 2


def test_a_field_translated_twice_is_answered_by_the_engine():
    # the second DNAT compares with the first one's constant, not with the
    # packet's own destination: 10.0.0.7 comes back to itself, 10.0.0.8 not
    ruleset = loads("table ip nat {\n chain a { type nat hook prerouting priority -100;\n"
                    "  ip daddr 10.0.0.0/24 dnat to 10.0.0.5\n }\n"
                    " chain b { type nat hook prerouting priority -90;\n  ip daddr 10.0.0.5 dnat to 10.0.0.7\n }\n}\n",
                    dialect="nftables")
    sample = [make_packet(src="192.0.2.1", dst=dst, proto="tcp", dport=80, hook="input", state="new")
              for dst in ("10.0.0.7", "10.0.0.8", "10.0.0.7", "10.0.0.8")]
    answers, _ = _tree_and_engine_agree(ruleset, sample)
    assert {str(a.packet.dst) for a in answers} == {"10.0.0.7"}


def test_chains_too_large_for_masks_are_keyed_by_atom_alike(monkeypatch):
    import ruleanalyzer.engine.batch as batch_module

    monkeypatch.setattr(batch_module, "MASK_BITS_BUDGET", 0)  # every field keyed by its atom
    ruleset = loads(NFT, dialect="nftables", name="batch.nft")
    answers, batch = _tree_and_engine_agree(ruleset, random_packets(ruleset, 600, seed=9))
    assert batch._hits > 100
    indexes = [index for plan in batch.decisions.plans.values() for per in plan._per_family.values()
               for index in per.values() if isinstance(index, batch_module._FieldIndex) and index.bounds]
    assert indexes and all(index.exact for index in indexes)


#: Chain keys cut at the first rule that surely leaves the chain: jumps that
#: come back for some packets only, a RETURN, a goto, a rule after a mark is
#: set, a match the engine cannot decide (the interface a packet lacks, a
#: recent list) before and at the cut, a rule whose ports are a group apart
#: from its address (multiport: either port).
CUT = """*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:sub - [0:0]
:deep - [0:0]
:tail - [0:0]
:marked - [0:0]
-A FORWARD -s 203.0.113.0/24 -p tcp -m multiport --ports 22 -j ACCEPT
-A FORWARD -s 10.0.0.0/8 -j sub
-A FORWARD -d 10.1.0.0/16 -p tcp --dport 22 -j ACCEPT
-A FORWARD -i eth1 -j tail
-A FORWARD -d 10.2.0.0/16 -j ACCEPT
-A FORWARD -s 192.0.2.0/24 -j marked
-A FORWARD -m mark --mark 0x1 -d 10.3.0.0/16 -j ACCEPT
-A FORWARD -d 10.4.0.0/16 -j REJECT
-A sub -s 10.9.0.0/16 -j DROP
-A sub -s 10.8.0.0/16 -j deep
-A sub -s 10.7.0.0/16 -m recent --rcheck --name bad -j DROP
-A sub -d 10.5.0.0/16 -j RETURN
-A sub -s 10.6.0.0/16 -g tail
-A deep -d 10.1.0.0/16 -j RETURN
-A deep -j DROP
-A tail -d 10.2.0.0/16 -j DROP
-A tail -d 10.6.0.0/16 -j ACCEPT
-A marked -s 192.0.2.128/25 -j MARK --set-mark 0x1
-A INPUT -i eth0 -j sub
-A INPUT -d 10.1.0.0/16 -j ACCEPT
COMMIT
"""


def _cut_packets(n: int, seed: int):
    rng = random.Random(seed)
    nets = ("10.9.1.1", "10.8.1.1", "10.7.1.1", "10.6.1.1", "10.5.1.1", "10.4.1.1", "10.3.1.1", "10.2.1.1",
            "10.1.1.1", "10.1.1.2", "192.0.2.1", "192.0.2.200", "203.0.113.1")
    out = []
    for i in range(n):
        fields = {"src": rng.choice(nets), "dst": rng.choice(nets), "proto": rng.choice(("tcp", "udp")),
                  "dport": rng.choice((22, 80)), "sport": 40000, "hook": rng.choice(("forward", "input")),
                  "state": "new", "id": str(i)}
        for key in ("iif", "oif"):
            name = rng.choice(("eth0", "eth1", None))
            if name:
                fields[key] = name
        out.append(make_packet(**fields))
    return out


def test_keys_cut_where_the_chain_is_left_answer_as_the_engine_does():
    ruleset = loads(CUT, dialect="iptables", name="cut.rules")
    answers, batch = _tree_and_engine_agree(ruleset, _cut_packets(3000, seed=4))
    assert batch._hits > 2000
    # the cut merges: packets sub drops are not told apart by what FORWARD
    # would do with them after sub (uncut, this tree grew 554 leaves)
    assert batch.decisions.leaves < 520


@pytest.mark.parametrize("src,dsts,alike", [
    # sub drops 10.9/16 for good: the rest of FORWARD is not reached
    ("10.9.1.1", ("10.1.1.1", "10.2.1.1", "10.4.1.1"), True),
    # deep returns 10.8/16 to 10.1/16 only, and FORWARD goes on with the
    # destination: a key of its own after the jump
    ("10.8.1.1", ("10.1.1.1", "10.2.1.1"), False),
    # sub returns what it does not drop: FORWARD's later rules decide
    ("10.5.1.1", ("10.1.1.1", "10.2.1.1", "10.4.1.1", "10.3.1.1"), False),
])
def test_a_jump_that_may_come_back_keeps_the_rest_of_the_chain_in_the_key(src, dsts, alike):
    ruleset = loads(CUT, dialect="iptables", name="cut.rules")
    sample = [make_packet(src=src, dst=dst, proto="tcp", dport=22, sport=40000, hook="forward", state="new",
                          iif="eth0", oif="eth0") for dst in dsts * 2]
    answers, batch = _tree_and_engine_agree(ruleset, sample)
    assert batch._hits == len(dsts) * 2 - batch.decisions.leaves
    assert (batch.decisions.leaves == 1) == alike
    if not alike:
        assert len({(a.verdict, a.decided_by) for a in answers}) > 1


def test_an_interface_the_packet_lacks_does_not_cut_the_key():
    # -i eth1 -j tail holds for every packet without an interface as far as
    # the key goes (the root key holds "no interface"); the engine follows
    # eth1 and "any other", and the latter reaches -d 10.2/16 -j ACCEPT
    ruleset = loads(CUT, dialect="iptables", name="cut.rules")
    sample = [make_packet(src="203.0.113.1", dst=dst, proto="udp", dport=80, sport=40000, hook="forward",
                          state="new") for dst in ("10.2.1.1", "10.4.1.1", "10.2.1.1", "10.4.1.1")]
    answers, batch = _tree_and_engine_agree(ruleset, sample)
    assert len({repr(a.alternatives) for a in answers}) == 2 and batch._hits == 2


def test_a_rule_after_a_mark_is_set_does_not_cut_the_key():
    # 192.0.2.128/25 is marked in "marked": whether -m mark holds is not
    # known at FORWARD's entry, so the rule is no cut, and the destination
    # after it still keys the chain
    ruleset = loads(CUT, dialect="iptables", name="cut.rules")
    sample = [make_packet(src=src, dst=dst, proto="udp", dport=80, sport=40000, hook="forward", state="new",
                          iif="eth0", oif="eth0")
              for src in ("192.0.2.200", "192.0.2.1") for dst in ("10.3.1.1", "10.4.1.1", "10.3.1.1")]
    answers, _ = _tree_and_engine_agree(ruleset, sample)
    assert [a.verdict for a in answers] == ["accept", "drop", "accept", "drop", "drop", "drop"]


def _keys_written_out_are_the_loops(batch, sample) -> int:
    """Every node's key function (written out for its reads) gives what the
    loop over its reads gives, for each packet of ``sample`` on its way."""
    from ruleanalyzer.engine.batch import _Node, root_key

    compared = 0
    for packet in sample:
        if packet.src.version != packet.dst.version:
            continue
        s, d = int(packet.src), int(packet.dst)
        values = (s, d, packet.sport, packet.dport, packet.iif, packet.oif)
        node = batch.decisions.root.get(root_key(packet, s, d))
        while node.__class__ is _Node:
            key = node.key(values)
            assert key == node.chain_key(values), packet
            compared += 1
            node = node.children.get(key)
    return compared


@pytest.mark.parametrize("name,text,dialect", FIXTURES + [("cut.rules", CUT, "iptables")],
                         ids=[Path(f[0]).name for f in FIXTURES] + ["cut.rules"])
def test_written_out_keys_are_the_loops_keys(name, text, dialect, monkeypatch):
    import ruleanalyzer.engine.batch as batch_module

    ruleset = loads(text, dialect=dialect, name=name) if text is not None else load(name, dialect=dialect)
    sample = random_packets(ruleset, 800, seed=11)
    _, batch = _tree_and_engine_agree(ruleset, sample)
    assert _keys_written_out_are_the_loops(batch, sample) > 100
    # the same where every field is keyed by its atom (a key part, not a mask)
    monkeypatch.setattr(batch_module, "MASK_BITS_BUDGET", 0)
    _, batch = _tree_and_engine_agree(ruleset, sample)
    assert _keys_written_out_are_the_loops(batch, sample) > 100
    assert {kind for shape in batch_module._KEY_MAKERS for kind in shape[:-1]} >= {"n", "x"}
