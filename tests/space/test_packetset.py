"""Packet sets: encoding matches, the algebra, witnesses and descriptions."""

import ipaddress

import pytest

from ruleanalyzer.model import (ACK, AE, CWR, ECE, SYN, AllOf, AnyOf, BitsMatch, InterfaceMatch,
                                IntMatch, NameMatch, OpaqueMatch)
from ruleanalyzer.space import Layout, OpaqueError, Space, describe, encode, witness
from ruleanalyzer.space.encode import encode_bounds

from .helpers import TCP, UDP, dport, dst, src, state


@pytest.fixture(scope="module")
def space():
    return Space(Layout.from_names(["eth0", "eth1", "eth+", "wg*"]))


def test_ssh_region_is_described_compactly(space):
    s = encode(AllOf((TCP, dst("10.0.0.5/32"), dport(22), state("new"))), space)
    assert describe(s) == ["tcp from 0.0.0.0/0 to 10.0.0.5/32 dport 22, state new"]


def test_witness_lies_in_the_set_and_is_plausible(space):
    s = encode(AllOf((TCP, dst("10.0.0.0/24"), dport(22), state("new"))), space)
    p = witness(s)
    assert p.proto == 6 and p.dport == 22 and p.state == "new" and p.flags == SYN
    assert p.dst in ipaddress.ip_network("10.0.0.0/24") and p.sport >= 1024


def test_negated_port_match_excludes_packets_without_ports(space):
    not22 = encode(IntMatch("dport", ((22, 22),), negate=True), space)
    icmp = encode(IntMatch("proto", ((1, 1),)), space)
    assert not not22.intersects(icmp)
    assert not22.intersects(encode(UDP, space))


def test_negated_flag_test_matches_only_tcp_with_syn(space):
    syn_set = encode(BitsMatch("flags", SYN, frozenset({0}), negate=True), space)
    assert syn_set <= encode(TCP, space)
    p = witness(syn_set)
    assert p.flags & SYN


def test_ecn_syn_is_not_an_exact_syn(space):
    exact_syn = encode(BitsMatch("flags", 0x1FF, frozenset({SYN})), space)
    ecn_syn = encode(BitsMatch("flags", 0x1FF, frozenset({SYN | ECE | CWR})), space)
    masked = encode(BitsMatch("flags", 0x17, frozenset({SYN})), space)  # syn / fin,syn,rst,ack
    assert not exact_syn.intersects(ecn_syn)
    assert ecn_syn <= masked and exact_syn <= masked
    accecn = encode(BitsMatch("flags", AE, frozenset({AE})), space)
    assert witness(accecn).flags & AE


def test_algebra_laws(space):
    a = encode(src("10.0.0.0/8"), space)
    b = encode(dport(1, 1023), space)
    assert (a | b) - b == a - b
    assert ~~a == a
    assert (a & ~a).is_empty() and (a | ~a).is_all()
    assert (a & b) <= a
    assert a.size() * 2 ** 8 == pytest.approx(encode(IntMatch("family", ((4, 4),)), space).size())


def test_port_range_uses_comparators_and_is_exact(space):
    s = encode(dport(1000, 2000), space)
    assert describe(s & encode(TCP, space)) == ["tcp from any to any dport 1000-2000"]
    assert not s.intersects(encode(dport(2001, 65535), space))


def test_interface_wildcards_are_exact_over_classes(space):
    eth_any = encode(InterfaceMatch("iif", ("eth+",)), space)
    eth0 = encode(InterfaceMatch("iif", ("eth0",)), space)
    wg = encode(InterfaceMatch("iif", ("wg+",)), space)
    assert eth0 <= eth_any and eth0 != eth_any
    assert not eth_any.intersects(wg)
    other_eth = eth_any - eth0 - encode(InterfaceMatch("iif", ("eth1",)), space)
    name = witness(other_eth).iif
    assert name.startswith("eth") and name not in ("eth0", "eth1")


def test_opaque_match_has_sound_bounds_through_negation(space):
    opaque = OpaqueMatch("ipset blocklist")
    combo = AllOf((TCP, opaque))
    assert encode(combo, space, bound="lower").is_empty()
    assert encode(combo, space, bound="upper") == encode(TCP, space)
    neg = AllOf((TCP, opaque), negate=True)
    # not (tcp and ?) : surely true for non-tcp, maybe for tcp
    assert encode(neg, space, bound="lower") == ~encode(TCP, space)
    assert encode(neg, space, bound="upper").is_all()
    with pytest.raises(OpaqueError):
        encode(combo, space)


def test_anyof_multiport_and_set_valued_names(space):
    multi = encode(AnyOf((dport(22), dport(80), dport(443))), space)
    assert "dport {22,80,443}" in describe(multi & encode(TCP, space))[0]
    status = encode(NameMatch("ct_status", frozenset({"dnat", "snat"})), space)
    assert witness(status).ct_status & {"dnat", "snat"}


def test_tos_is_dscp_and_ecn(space):
    ce = encode(BitsMatch("tos", 0x03, frozenset({3})), space)
    assert ce == encode(IntMatch("ecn", ((3, 3),)), space)
    ef = encode(BitsMatch("tos", 0xFC, frozenset({46 << 2})), space)
    assert witness(ef).dscp == 46


def test_ipv6_and_ipv4_do_not_mix(space):
    v6 = encode(src("2001:db8::/32"), space)
    v4 = encode(src("10.0.0.0/8"), space)
    assert not v6.intersects(v4)
    assert witness(v6).src in ipaddress.ip_network("2001:db8::/32")
    assert describe(v6) == ["ip6 from 2001:db8::/32 to ::/0"]


def test_describe_is_bounded(space):
    many = encode(AnyOf(tuple(dport(p) for p in range(1, 400, 2))), space) & encode(TCP, space)
    lines = describe(many & encode(src("10.0.0.0/8"), space), limit=3)
    assert len(lines) <= 4


def test_empty_set_has_no_witness(space):
    with pytest.raises(ValueError):
        witness(space.empty())
    assert describe(space.empty()) == []


def test_witness_path_is_the_assignment_bdd_pick_gives(space):
    """The witness walks the BDD itself (dd.cudd's pick is quadratic in the
    depth); on sets with complemented edges and holes it must land on the
    very assignment pick gives, so reports keep their witnesses."""
    from ruleanalyzer.space.witness import _first_path

    sets = [encode(AllOf((TCP, dst("10.0.0.0/24"), dport(22), state("new"))), space).node,
            ~encode(AllOf((TCP, dport(22))), space).node & space.valid,
            encode(AnyOf((dst("10.0.0.0/8"), src("192.0.2.7/32"))), space).node
            & ~encode(dport(443), space).node,
            space.valid]
    for node in sets:
        picked = {k for k, v in space.bdd.pick(node).items() if v}
        assert {k for k, v in _first_path(space, node).items() if v} == picked


def test_layout_counts_addresses_as_their_text_does():
    # The layout puts the address field with more distinct values on top;
    # counted over the ipaddress objects, it must count what their text does.
    from ruleanalyzer.space.fields import _distinct

    net, addr = ipaddress.ip_network, ipaddress.ip_address
    values = {net("10.0.0.0/8"), net("10.0.0.0/8"), net("10.0.0.1/32"), addr("10.0.0.1"),
              net("::ffff:10.0.0.1/128"), addr("::ffff:10.0.0.1"), addr("fe80::1%eth0"), addr("fe80::1"),
              net("2001:db8::/32"), net("2001:db8:0::/32")}
    assert _distinct(values) == len({str(v) for v in values}) == 8
    assert _distinct(values | {"10.0.0.0/8"}) == 8  # a text among them: counted by text
    rs_dst = Layout.for_matches([dst("10.0.0.1/32"), dst("10.0.0.2/32"), src("10.0.0.0/8")])
    rs_src = Layout.for_matches([src("10.0.0.1/32"), src("10.0.0.2/32"), dst("10.0.0.0/8")])
    assert list(rs_dst.fields)[1] == "dst" and list(rs_src.fields)[1] == "src"


def test_witness_and_description_do_not_depend_on_the_bdd_order():
    """A layout may move fields right below the family for the walk's speed
    (``Layout.on_top``); the sets are the same, and so must be the packet a
    witness picks and the regions a description lists: both read the set in
    the canonical order. Here the first packet along the TTL-first order
    (TTL 3, to 10.0.0.201) is not the canonical one (TTL 5, to 10.0.0.7)."""
    from ruleanalyzer.diff import regions
    from ruleanalyzer.model import IntMatch

    top = ("state", "mark", "ct_status", "ttl")
    usual = Space(Layout.from_names(["eth0", "eth+"]))
    moved = Space(Layout.from_names(["eth0", "eth+"], on_top=top))
    assert list(moved.layout.fields)[1:5] == list(top) and list(usual.layout.fields)[1] == "src"
    assert moved.layout.canonical().fields.keys() == usual.layout.fields.keys()

    def ttl(v):
        return IntMatch("ttl", ((v, v),))

    def sets(sp):
        far = AllOf((TCP, dst("10.0.0.201/32"), ttl(3)))
        near = AllOf((UDP, dst("10.0.0.7/32"), ttl(5), state("established")))
        mark = IntMatch("mark", ((7, 9),))
        return [encode(AnyOf((far, near)), sp),
                encode(AnyOf((AllOf((dst("10.0.0.0/24"), mark)), AllOf((src("10.9.0.0/16"), state("new"))))), sp),
                encode(AllOf((TCP, dport(22), InterfaceMatch("iif", ("eth+",)))), sp)
                | encode(AllOf((UDP, ttl(1))), sp),
                ~encode(AllOf((TCP, dport(443), state("new"))), sp)]

    for a, b in zip(sets(usual), sets(moved)):
        assert witness(a) == witness(b) and witness(a, "forward") == witness(b, "forward")
        assert describe(a) == describe(b)
        assert [t for t, _ in regions(a)] == [t for t, _ in regions(b)]
        for text, part in regions(b):  # each region's set, made back in the moved space
            assert part <= b and not part.is_empty()
    first = witness(sets(moved)[0])
    assert (first.ttl, str(first.dst)) == (5, "10.0.0.7")


def test_sizes_are_cudds_counts_and_leave_garbage_collection_on(space):
    """The stories rank blockers by these sizes (ties decided by them): the
    count read without dd's wrapper is CUDD's count, to the last bit, and
    CUDD still collects its garbage afterwards."""
    nvars = len(space.layout.variables())
    sets = [encode(AllOf((TCP, dst(f"10.{16 * i}.0.0/{12 + i}"), dport(20 + i), state("new"))), space)
            for i in range(8)]
    sets += [sets[0] | sets[3], sets[1] - sets[2], ~sets[4], space.all(), space.empty(),
             encode(IntMatch("dport", ((1024, 65535),), negate=True), space)]
    for s in sets:
        assert s.size() == float(space.bdd.count(s.node, nvars=nvars))
    assert space.bdd.configure()["garbage_collection"] is True


def test_a_soft_memory_mark_above_the_machines_memory_falls_back_to_dds_default(monkeypatch, capsys):
    """dd refuses (prints, then raises) a memory estimate not below the
    machine's memory: a space is still made, silently, with dd's default."""
    from ruleanalyzer.space import packetset

    monkeypatch.setattr(packetset, "SOFT_BDD_BYTES", 2**62)
    monkeypatch.setattr(packetset, "MAX_BDD_BYTES", 2**62)
    s = Space()
    assert s.bdd.configure()["max_memory"] == 2**62
    assert s.valid != s.false
    assert capsys.readouterr().out == ""


def test_an_address_match_of_many_blocks_is_the_union_of_its_blocks(space):
    """An ``-m iprange`` is ~40 blocks; such matches are built as ranges of
    addresses: overlapping, adjacent and separate blocks of both families,
    negated too, give what the blocks one by one give."""
    from ruleanalyzer.model import AddressMatch
    from ruleanalyzer.parsers.iptables_values import parse_address_range

    v4, v6 = ipaddress.IPv4Network, ipaddress.IPv6Network
    cases = [parse_address_range("10.89.0.1-10.214.255.254", "ip"),
             parse_address_range("2001:db8::3-2001:db8::1:7", "ip6"),
             (v4("10.0.0.0/8"), v4("10.1.0.0/16"), v4("11.0.0.0/8"), v4("12.0.0.0/31"),
              v4("255.255.255.255/32"), v6("fe80::/10"), v6("::/0")),
             (v4("1.2.3.4/32"), v4("1.2.3.6/31"), v4("1.2.3.5/32"), v4("9.0.0.0/24"), v4("9.0.2.0/24")),
             tuple(v4(f"1.2.3.{i}/32") for i in range(4, 16, 2))]  # one address apart
    for nets in cases:
        for negate in (False, True):
            whole = encode(AddressMatch("src", nets, negate=negate), space)
            one_by_one = space.empty()
            for net in nets:
                one_by_one |= encode(AddressMatch("src", (net,)), space)
            if negate:
                one_by_one = encode(AddressMatch("src", nets[:1], negate=True), space) - one_by_one
            assert len(nets) > 4 and whole == one_by_one


def test_a_space_expecting_many_rules_collects_garbage_later_and_never_earlier():
    """A big ruleset's walk lets CUDD's table grow before it collects
    (LOOSE_SLOTS_PER_RULE); a space shared with a smaller ruleset keeps the
    larger allowance."""
    from ruleanalyzer.space import packetset

    if not packetset.BACKEND.endswith("cudd"):
        pytest.skip("dd.cudd is not installed: the pure-Python BDD has no garbage-collection knobs")
    s = Space()
    start = s.bdd.configure()["loose_up_to"]
    s.expect_rules(10)
    assert s.bdd.configure()["loose_up_to"] == start
    s.expect_rules(100_000)
    assert s.bdd.configure()["loose_up_to"] == packetset.LOOSE_SLOTS_PER_RULE * 100_000 > start
    s.expect_rules(3_000)
    assert s.bdd.configure()["loose_up_to"] == packetset.LOOSE_SLOTS_PER_RULE * 100_000


def test_fast_support_is_dd_support(space):
    # CUDD's support indices read through ctypes: the very variables dd's
    # support names, on matches over several fields, their negations and
    # the constants (none).
    from ruleanalyzer.space._leq import support_for

    support = support_for(space.bdd)
    if support is None:
        pytest.skip("dd.cudd of a known version is not the backend")
    sets = [encode(m, space).node for m in (TCP, dport(22), src("10.0.0.0/8"), dst("2001:db8::/32"),
                                            state("new", "related"))]
    sets += [sets[0] & sets[2], ~(sets[1] | sets[3]), sets[4] & ~sets[2], space.true, space.false]
    for node in sets:
        got = support(node)
        assert len(got) == len(set(got)) and set(got) == space.bdd.support(node)


def test_cube_in_one_call_is_the_literals_conjoined(space):
    # Space.cube_of through Cudd_bddComputeCube: the node the literals ANDed
    # one by one give (the bit -> variable index mapping, the result's
    # reference), across fields and with an extra variable (a DNAT's
    # values: status bit, 32 address bits, the port).
    if space._c_cube is None:
        pytest.skip("dd.cudd of a known version is not the backend")
    bdd = space.bdd

    def by_hand(parts, extra=()):
        node = bdd.true
        for name, value, bits in parts:
            for b in bits:
                x = bdd.var(space.spec(name).var(b))
                node &= x if value >> b & 1 else ~x
        for var, bit in extra:
            node &= bdd.var(var) if bit else ~bdd.var(var)
        return node

    status = next(v for v in bdd.vars if v.startswith("ct_status:"))
    cases = [([("dst", 0x644C0005, range(32))], ()),
             ([("dport", 8080, range(16)), ("dst", 0x0A000001, range(32))], ((status, 1),)),
             ([("src", 1, range(128))], ((status, 0),)),
             ([("dst", 0x0A000000, range(24, 32))], ()), ([("mark", 0x4001, (0, 14))], ()), ([], ())]
    for parts, extra in cases:
        got = space.cube_of(parts, extra)
        assert got == by_hand(parts, extra)
        assert got.ref >= 1  # referenced by its wrapper: a collection keeps it
    assert space.prefix("dst", 0x0A000000, 8, 32) == by_hand([("dst", 0x0A000000, range(24, 32))])
    assert space.eq("dport", 443) == by_hand([("dport", 443, range(16))])
    assert space.masked("mark", 0x4000, 0x4000) == by_hand([("mark", 0x4000, (14,))])


def test_the_canonical_space_is_a_small_manager():
    """Witnesses and descriptions copy a set now and then into the space of
    the canonical order: a small CUDD manager (its cache and its stash for
    running out of memory, 1/64 of the soft mark, were 8 and 20 MiB: +16-20
    MiB on a big audit's peak RSS when the first witness was asked)."""
    import warnings

    from ruleanalyzer.space import packetset

    moved = Space(Layout.from_names(["eth0"], on_top=("state", "ttl")))
    other, _node = moved.canonical(encode(AllOf((TCP, dport(22))), moved).node)
    assert other is not moved and other.layout.fields.keys() == moved.layout.canonical().fields.keys()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (dd: the unit of 'mem' changed in 0.5.7)
        small, big = other.bdd.statistics(), moved.bdd.statistics()
    if packetset.BACKEND.endswith("cudd"):
        assert small["cache_size"] <= packetset.CANONICAL_CACHE_ENTRIES < big["cache_size"]
        assert small["mem"] < 8 * 2**20 < 16 * 2**20 < big["mem"]


def test_a_cube_over_a_variable_declared_later_reads_its_node(space):
    # cube_for keeps the variables' nodes by index as read when it was made:
    # a segment over a variable declared afterwards reads them again (never
    # past their end), and one over no declared variable is refused
    if space._c_cube is None:
        pytest.skip("dd.cudd of a known version is not the backend")
    import sys

    from ruleanalyzer.space._leq import cube_for

    bdd = Space(Layout.from_names(["eth0"], on_top=("state",))).bdd
    make = cube_for(bdd)
    assert make is not None
    one, zero = (1).to_bytes(4, sys.byteorder), (0).to_bytes(4, sys.byteorder)
    bdd.declare("late_variable", "later_variable")
    late, later = bdd._index_of_var["late_variable"], bdd._index_of_var["later_variable"]
    assert make([(late, later + 1, one + zero)]) == bdd.var("late_variable") & ~bdd.var("later_variable")
    first = next(name for name, i in bdd._index_of_var.items() if i == 0)
    assert make([(0, 1, zero), (later, later + 1, one)]) == ~bdd.var(first) & bdd.var("later_variable")
    with pytest.raises(ValueError, match="not declared"):
        make([(later + 1, later + 2, one)])
    assert make([]) == bdd.true


def test_dd_is_imported_without_networkx():
    """dd's helpers import networkx for dd's graph export only (~14 MiB of
    code in every audit's process): the space hides it while importing dd;
    networkx still imports afterwards for the topology."""
    import subprocess
    import sys

    code = ("import sys; import ruleanalyzer.space.packetset; assert 'networkx' not in sys.modules, 1; "
            "import dd._utils; assert dd._utils._nx is None, 2; "
            "import networkx; assert networkx.Graph, 3")
    subprocess.run([sys.executable, "-c", code], check=True)
