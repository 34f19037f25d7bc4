"""Symbolic reachability on rulesets built from model objects."""

import pytest

from ruleanalyzer.engine import evaluate
from ruleanalyzer.model import (ECE, CWR, SYN, Accept, AllOf, BitsMatch, Chain, Dispatch, Drop, EcnStrip,
                                Goto, IntMatch, Jump, Log, Nat, Notrack, OpaqueMatch, Return,
                                SetField, UnknownAction)
from ruleanalyzer.space import describe, encode, witness
from ruleanalyzer.space.reach import ReachError, analyze, arrival

from .helpers import TCP, UDP, dport, dst, rule, ruleset, src, state, table


def test_rule_shadowed_by_union_of_earlier_rules_names_every_blocker():
    t = table(input="drop")
    inp = t.chains["INPUT"]
    a = inp.add(rule(TCP, src("10.0.0.0/9"), action=Accept()))
    b = inp.add(rule(TCP, src("10.128.0.0/9"), action=Drop()))
    inp.add(rule(UDP, action=Accept()))
    c = inp.add(rule(TCP, src("10.0.0.0/8"), dport(22), action=Accept()))
    reach = analyze(ruleset(t), "input", 4)
    assert reach.unreachable_rules() == [(c, [a, b])]
    sets = reach.rule_sets(c)
    assert sets.reaching_upper.intersects(encode(TCP, reach.space))  # other tcp still reaches
    assert sets.matched_upper.is_empty()


def test_verdict_sets_partition_the_packets():
    t = table(input="drop")
    t.chains["INPUT"].add(rule(TCP, dport(22), action=Accept()))
    rs = ruleset(t)
    reach = analyze(rs, "input", 4)
    # The packets that can arrive on input: what the kernel can deliver.
    arriving = reach.space.wrap(arrival(reach.space, "input")) & encode(
        IntMatch("family", ((4, 4),)), reach.space)
    ssh = encode(TCP, reach.space) & encode(dport(22), reach.space) & arriving
    assert reach.accepted.lower == reach.accepted.upper == ssh
    assert reach.dropped.lower == arriving - ssh
    assert reach.undecided.upper.is_empty()


def test_meeting_a_verdict_set_before_it_is_read_gives_the_set_read_then_met():
    # An undecidable match (upper != lower) and a DNAT; the walk's raw sets
    # hold invalid packets, and a probe may too: Bounds.meet must equal the
    # set read (within the valid packets), then met; Bounds.outside the
    # probe less the set read.
    nat = table("nat", prerouting="accept")
    nat.chains["PREROUTING"].add(rule(TCP, dport(80), action=Nat("dnat", _ip("10.9.9.9"), to_port=8080)))
    t = table(input="drop")
    t.chains["INPUT"].add(rule(TCP, dport(8080), OpaqueMatch("-m recent --rcheck"), action=Accept()))
    t.chains["INPUT"].add(rule(UDP, action=Drop()))
    rs = ruleset(nat, t)
    probes = (lambda sp: sp.true, lambda sp: sp.eq("dport", 8080), lambda sp: encode(TCP, sp).node,
              lambda sp: encode(UDP, sp).node | sp.eq("dport", 8080),
              lambda sp: sp.eq("dport", 8080) & ~sp.valid)  # (only invalid packets: meets none)
    seen = set()
    for side in ("lower", "upper"):
        for name in ("accepted", "dropped"):
            for probe in probes:
                fresh = analyze(rs, "input", 4)
                node = probe(fresh.space)
                hit = getattr(fresh, name).meets(side, node)  # (Bounds.meets: not made either)
                met = getattr(fresh, name).meet(side, node)  # before the set is read
                out = getattr(fresh, name).outside(side, node)
                assert hit == (met != fresh.space.false)
                seen.add(hit)
                whole = getattr(getattr(fresh, name), side).node
                read = whole & node
                assert met == read and getattr(fresh, name).meet(side, node) == read
                assert out == node & ~whole and getattr(fresh, name).outside(side, node) == out
                assert getattr(fresh, name).meets(side, node) == hit  # after the set is read
    assert seen == {True, False}


def test_a_projected_meet_given_a_known_part_of_its_answer_is_the_same_node():
    # Bounds.meet(..., known=): the upper set's projection seeded with the
    # lower set's (which lies within it) is the very projection; a "known"
    # naming a quantified variable is not an answer part and is not used.
    nat = table("nat", prerouting="accept")
    nat.chains["PREROUTING"].add(rule(TCP, dport(80), action=Nat("dnat", _ip("10.9.9.9"), to_port=8080)))
    t = table(input="drop")
    t.chains["INPUT"].add(rule(TCP, src("10.0.0.0/8"), OpaqueMatch("-m recent --rcheck"), action=Accept()))
    t.chains["INPUT"].add(rule(TCP, dport(8080), action=Accept()))
    reach = analyze(ruleset(nat, t), "input", 4)
    sp = reach.space
    keep = {*sp.spec("src").bit_vars, *sp.spec("dport").bit_vars}
    exist = [v for v in sp.layout.variables() if v not in keep]
    syn = encode(TCP, sp).node
    plain = reach.accepted.meet("upper", syn, exist)
    low = reach.accepted.meet("lower", syn, exist)
    assert low != plain and low != sp.false  # (the opaque match: the lower set is smaller)
    assert reach.accepted.meet("upper", syn, exist, known=low) == plain
    assert reach.accepted.meet("upper", syn, exist, known=sp.eq("dst", 1)) == plain


def test_jump_return_and_goto_follow_the_engine():
    t = table(input="accept")
    t.add_chain(Chain("SUB"))
    t.add_chain(Chain("GO"))
    r_ret = t.chains["SUB"].add(rule(dport(22), action=Return()))
    r_sub_drop = t.chains["SUB"].add(rule(action=Drop()))
    r_go = t.chains["GO"].add(rule(dport(23), action=Drop()))
    t.chains["INPUT"].add(rule(TCP, action=Jump("SUB")))
    after = t.chains["INPUT"].add(rule(dport(22), action=Goto("GO")))
    last = t.chains["INPUT"].add(rule(action=Drop()))
    reach = analyze(ruleset(t), "input", 4)
    sp = reach.space
    # Only tcp/22 comes back from SUB; the goto takes all of it; the last rule sees non-tcp.
    tcp = encode(TCP, sp)
    assert reach.rule_sets(after).matched_upper & tcp == reach.rule_sets(r_ret).matched_upper
    assert reach.rule_sets(r_go).matched_upper.is_empty()  # 23 was dropped in SUB
    assert not reach.rule_sets(last).matched_upper.intersects(encode(TCP, sp))
    dead = dict(reach.unreachable_rules())
    # GO is entered only by dport 22 (the goto's own condition): no earlier
    # rule is to blame, removing SUB's drop would not revive r_go.
    assert r_go in dead and dead[r_go] == []
    assert r_sub_drop not in dead


def test_blockers_are_a_covering_set_not_every_overlapping_rule():
    t = table(input="drop")
    inp = t.chains["INPUT"]
    broad = inp.add(rule(TCP, action=Accept()))
    inp.add(rule(UDP, dport(22), action=Drop()))
    narrow = inp.add(rule(TCP, dport(22), action=Drop()))  # overlaps, but broad took it all
    dead_rule = inp.add(rule(TCP, dport(22), src("10.0.0.0/8"), action=Accept()))
    reach = analyze(ruleset(t), "input", 4)
    dead = dict(reach.unreachable_rules())
    assert dead[narrow] == [broad]
    assert dead[dead_rule] == [broad]


def test_blockers_before_the_jump_into_the_chain():
    t = table(input="accept")
    t.add_chain(Chain("SUB"))
    inner = t.chains["SUB"].add(rule(dport(23), action=Accept()))
    early = t.chains["INPUT"].add(rule(TCP, dport(23), action=Drop()))
    t.chains["INPUT"].add(rule(TCP, action=Jump("SUB")))
    reach = analyze(ruleset(t), "input", 4)
    # SUB is entered only by tcp without port 23: the earlier drop took them.
    assert dict(reach.unreachable_rules())[inner] == [early]


def test_blockers_asked_only_where_no_packet_enters_the_chain():
    t = table(input="accept")
    t.add_chain(Chain("SUB"))
    inner = t.chains["SUB"].add(rule(dport(23), action=Accept()))
    inp = t.chains["INPUT"]
    early = inp.add(rule(TCP, dport(23), action=Drop()))
    inp.add(rule(TCP, action=Jump("SUB")))
    udp = inp.add(rule(UDP, action=Accept()))
    dns = inp.add(rule(UDP, dport(53), action=Drop()))  # its packets enter INPUT: udp took them
    reach = analyze(ruleset(t), "input", 4)
    # the stories' question: the same blockers where none of the packets entered, none searched elsewhere
    assert reach.unreachable_rules(entered=False) == [(inner, [early]), (dns, [])]
    assert reach.unreachable_rules() == [(inner, [early]), (dns, [udp])]


def test_reaching_sets_met_with_a_small_set_without_making_them_whole():
    # SUB (entered from two jumps: two visits) returns port 25, drops the
    # rest; a limited LOG lets everything go on; rules enough to pass a
    # checkpoint of the run
    t = table(input="drop")
    t.add_chain(Chain("SUB"))
    t.chains["SUB"].add(rule(dport(25), action=Return()))
    t.chains["SUB"].add(rule(OpaqueMatch("-m limit --limit 1/s"), dport(26), action=Drop()))
    t.chains["SUB"].add(rule(action=Drop()))
    inp = t.chains["INPUT"]
    for port in range(20):
        inp.add(rule(TCP, src(f"10.{port}.0.0/16"), action=Jump("SUB")) if port % 3 == 0
                else rule(TCP, dport(1000 + port), action=Accept()))
        if port % 5 == 0:
            inp.add(rule(OpaqueMatch("-m limit --limit 1/s"), action=Log()))
    inp.add(rule(TCP, src("10.0.0.0/8"), action=Jump("SUB")))
    inp.add(rule(UDP, action=Accept()))
    reach = analyze(ruleset(t), "input", 4)
    small = encode(dport(1009), reach.space)
    visits = 0
    for r in [*inp.rules, *t.chains["SUB"].rules]:
        rec = reach._records[r]
        visits = max(visits, len(rec.parts))
        for node in (rec.column(3), small.node):
            assert rec.reaching_within(node) == rec.column(1) & node, r
        assert rec.reached_within_match(reach.space) == rec.column(1) & rec.match_l, r
    assert visits > 1


def test_user_chain_from_two_call_sites_is_analysed_per_site():
    t = table(input="drop")
    t.add_chain(Chain("SSH"))
    ssh_ok = t.chains["SSH"].add(rule(src("192.0.2.0/24"), action=Accept()))
    t.chains["INPUT"].add(rule(TCP, dport(22), dst("10.0.0.1/32"), action=Jump("SSH")))
    t.chains["INPUT"].add(rule(TCP, dport(22), dst("10.0.0.2/32"), action=Jump("SSH")))
    reach = analyze(ruleset(t), "input", 4)
    matched = reach.rule_sets(ssh_ok).matched_upper
    # (the INVALID slice: arriving NEW or ESTABLISHED TCP has only flags conntrack takes)
    est = encode(state("invalid"), reach.space)
    assert describe(matched & est) == [
        "tcp from 192.0.2.0/24 to {10.0.0.1/32,10.0.0.2/32} dport 22, state invalid"]


def test_opaque_match_makes_a_rule_uncertain_but_not_a_blocker_of_certainty():
    t = table(input="drop")
    inp = t.chains["INPUT"]
    limited = inp.add(rule(TCP, OpaqueMatch("-m recent --update"), action=Drop()))
    ssh = inp.add(rule(TCP, dport(22), action=Accept()))
    reach = analyze(ruleset(t), "input", 4)
    sets = reach.rule_sets(ssh)
    assert sets.matched_lower.is_empty() and not sets.matched_upper.is_empty()
    assert reach.unreachable_rules() == []
    assert reach.rule_sets(limited).matched_lower.is_empty()


def test_unknown_target_may_fall_through():
    t = table(input="drop")
    inp = t.chains["INPUT"]
    inp.add(rule(TCP, action=UnknownAction("TARPIT")))
    ssh = inp.add(rule(TCP, dport(22), action=Accept()))
    reach = analyze(ruleset(t), "input", 4)
    assert reach.rule_sets(ssh).matched_lower.is_empty()
    assert not reach.rule_sets(ssh).matched_upper.is_empty()
    assert not reach.undecided.lower.is_empty()


def test_mark_set_in_mangle_is_seen_by_filter():
    mangle = table("mangle", input="accept")
    mangle.chains["INPUT"].add(rule(TCP, dport(22), action=SetField("mark", 0x1, 0xFFFFFFFF)))
    filt = table(input="drop")
    marked = filt.chains["INPUT"].add(rule(BitsMatch("mark", 0xFF, frozenset({1})), action=Accept()))
    rest = filt.chains["INPUT"].add(rule(TCP, dport(22), action=Accept()))
    reach = analyze(ruleset(mangle, filt), "input", 4)
    hit = reach.rule_sets(marked).matched_upper
    ssh = encode(TCP, reach.space) & encode(dport(22), reach.space)
    est = encode(state("invalid"), reach.space)
    assert describe(hit & ssh & est) == ["tcp from 0.0.0.0/0 to 0.0.0.0/0 dport 22, state invalid, mark 0x1"]
    # every tcp/22 packet now carries mark 1, so the plain ssh rule is dead
    assert rest in dict(reach.unreachable_rules())


def test_connmark_copy_is_exact_under_a_narrow_mask_and_sound_under_a_wide_one():
    """``ctmark := mark`` over all 32 bits, for packets of any mark, has no
    compact BDD in this variable order: it is approximated (upper: any
    ctmark, lower: none), quickly, instead of exploding; under a one-byte
    mask it is exact."""
    import time

    for mask, exact in ((0xFF, True), (0xFFFFFFFF, False)):
        mangle = table("mangle", input="accept")
        mangle.chains["INPUT"].add(rule(TCP, action=SetField("ctmark", 0, mask, copy_from="mark")))
        filt = table(input="drop")
        same = filt.chains["INPUT"].add(rule(BitsMatch("ctmark", 0xFF, frozenset({7})),
                                             BitsMatch("mark", 0xFF, frozenset({7})), action=Accept()))
        differs = filt.chains["INPUT"].add(rule(BitsMatch("ctmark", 0xFF, frozenset({7})),
                                                BitsMatch("mark", 0xFF, frozenset({8})), action=Accept()))
        start = time.process_time()
        reach = analyze(ruleset(mangle, filt), "input", 4)
        assert time.process_time() - start < 10
        tcp = encode(TCP, reach.space)
        assert not (reach.rule_sets(same).matched_upper & tcp).is_empty()
        assert (reach.rule_sets(same).matched_lower & tcp).is_empty() is not exact
        # exact: a copied ctmark never differs from the mark in the copied byte
        assert (reach.rule_sets(differs).matched_upper & tcp).is_empty() is exact


def test_notrack_in_raw_makes_later_new_rules_dead():
    raw = table("raw", output="accept")
    raw.chains["OUTPUT"].add(rule(action=Notrack()))
    filt = table(output="drop")
    new_rule = filt.chains["OUTPUT"].add(rule(state("new"), action=Accept()))
    reach = analyze(ruleset(raw, filt), "output", 4)
    assert dict(reach.unreachable_rules())[new_rule][0].chain.name == "OUTPUT"


def test_notrack_in_a_user_chain_of_raw_untracks_too():
    raw = table("raw", output="accept")
    raw.add_chain(Chain("SKIPCT"))
    raw.chains["OUTPUT"].add(rule(action=Jump("SKIPCT")))
    raw.chains["SKIPCT"].add(rule(action=Notrack()))
    filt = table(output="drop")
    new_rule = filt.chains["OUTPUT"].add(rule(state("new"), action=Accept()))
    reach = analyze(ruleset(raw, filt), "output", 4)
    assert new_rule in dict(reach.unreachable_rules())


def test_state_in_raw_reads_invalid():
    raw = table("raw", output="accept")
    drop_invalid = raw.chains["OUTPUT"].add(rule(state("invalid"), action=Drop()))
    reach = analyze(ruleset(raw, table(output="accept")), "output", 4)
    assert reach.rule_sets(drop_invalid).matched_upper.is_all() is False
    assert reach.dropped.lower == reach.dropped.upper
    assert not (reach.accepted.upper - encode(state("untracked"), reach.space))


def test_ecn_strip_clears_flags_for_later_rules():
    mangle = table("mangle", input="accept")
    mangle.chains["INPUT"].add(rule(TCP, action=EcnStrip()))
    filt = table(input="accept")
    ecn_syn = filt.chains["INPUT"].add(rule(BitsMatch("flags", ECE | CWR, frozenset({ECE | CWR})),
                                            action=Drop()))
    reach = analyze(ruleset(mangle, filt), "input", 4)
    assert reach.is_unreachable(ecn_syn)


def test_dnat_changes_destination_seen_by_later_chains():
    nat = table("nat", output="accept")
    nat.chains["OUTPUT"].add(rule(TCP, dport(80), action=Nat("dnat", _ip("10.9.9.9"), to_port=8080)))
    filt = table(output="drop")
    to_backend = filt.chains["OUTPUT"].add(rule(TCP, dst("10.9.9.9/32"), dport(8080), action=Accept()))
    to_80 = filt.chains["OUTPUT"].add(rule(TCP, dport(80), state("new"), action=Accept()))
    reach = analyze(ruleset(nat, filt), "output", 4)
    assert witness(reach.rule_sets(to_backend).matched_lower).dport == 8080
    assert reach.is_unreachable(to_80)


def test_dispatch_branches_in_order_and_fall_through():
    t = table(input="drop")
    vmap = Dispatch(((dport(22), Accept()), (dport(22), Drop()), (dport(80), Drop())))
    inp = t.chains["INPUT"]
    inp.add(rule(TCP, action=vmap))
    after = inp.add(rule(TCP, dport(80, 81), action=Accept()))
    reach = analyze(ruleset(t), "input", 4)
    sp = reach.space
    hit = reach.rule_sets(after).matched_upper
    assert hit == (encode(TCP, sp) & encode(dport(81), sp) & encode(IntMatch("family", ((4, 4),)), sp)
                   & sp.wrap(arrival(sp, "input")))


def test_dispatch_overlapping_and_undecidable_keys_first_branch_wins():
    """A branch gets only what no earlier branch surely (lower) or possibly
    (upper) took, the fall-through what none took; keys that overlap, an
    undecidable key and a catch-all included."""
    t = table(input="accept")
    for name in "ABCD":
        t.add_chain(Chain(name))
    seen = {name: t.chains[name].add(rule(action=Log())) for name in "ABCD"}
    vmap = Dispatch(((AllOf((OpaqueMatch(reason="x"), dport(22))), Goto("A")),
                     (dport(22, 80), Goto("B")), (dport(80), Goto("C")), (dport(443), Goto("D"))))
    inp = t.chains["INPUT"]
    inp.add(rule(TCP, action=vmap))
    after = inp.add(rule(TCP, action=Drop()))
    reach = analyze(ruleset(t), "input", 4)
    sp = reach.space
    tcp = encode(TCP, sp) & encode(IntMatch("family", ((4, 4),)), sp) & sp.wrap(arrival(sp, "input"))
    p22, p22_80, p443 = (tcp & encode(m, sp) for m in (dport(22), dport(22, 80), dport(443)))
    sets = {name: reach.rule_sets(r) for name, r in seen.items()}
    assert sets["A"].reaching_lower.is_empty() and sets["A"].reaching_upper == p22
    assert sets["B"].reaching_lower == p22_80 - p22 and sets["B"].reaching_upper == p22_80
    assert sets["C"].reaching_upper.is_empty()
    assert sets["D"].reaching_lower == sets["D"].reaching_upper == p443
    # tcp/22 is surely taken: by the undecidable branch or else by the next
    fall = reach.rule_sets(after)
    assert fall.matched_lower == fall.matched_upper == tcp - p22_80 - p443


def test_jump_cycle_is_an_error():
    t = table(input="accept")
    t.add_chain(Chain("A"))
    t.add_chain(Chain("B"))
    t.chains["A"].add(rule(TCP, action=Jump("B")))
    t.chains["B"].add(rule(UDP, action=Jump("A")))
    t.chains["INPUT"].add(rule(action=Jump("A")))
    with pytest.raises(ReachError):
        analyze(ruleset(t), "input", 4)


def test_inet_table_sees_both_families_ip_table_only_v4():
    v4 = table(input="accept")
    v4_rule = v4.chains["INPUT"].add(rule(action=Log()))
    reach6 = analyze(ruleset(v4), "input", 6)
    with pytest.raises(KeyError):
        reach6.rule_sets(v4_rule)


def _ip(text):
    import ipaddress
    return ipaddress.ip_address(text)


def test_an_undecidable_verdict_the_policy_repeats_is_sure():
    """``ct helper "ftp" accept`` (or ``-m recent … -j DROP``) followed only
    by LOG rules before the same policy: matched or not, the packet gets
    that verdict — surely, though not surely by that rule."""
    for verdict, policy in ((Accept(), "accept"), (Drop(), "drop")):
        t = table(input=policy)
        inp = t.chains["INPUT"]
        doubt = inp.add(rule(TCP, OpaqueMatch("ct helper"), action=verdict))
        inp.add(rule(TCP, action=Log("in")))
        reach = analyze(ruleset(t), "input", 4)
        fate = reach.accepted if policy == "accept" else reach.dropped
        tcp = encode(TCP, reach.space) & reach.arriving
        assert tcp <= fate.lower, policy
        assert reach.rule_sets(doubt).matched_lower.is_empty()  # the rule itself stays unsure
    # a decided rule after it may change the fate: no certainty then
    t = table(input="accept")
    inp = t.chains["INPUT"]
    inp.add(rule(TCP, OpaqueMatch("ct helper"), action=Accept()))
    inp.add(rule(TCP, dport(22), action=Drop()))
    reach = analyze(ruleset(t), "input", 4)
    ssh = encode(TCP, reach.space) & encode(dport(22), reach.space) & reach.arriving
    assert not ssh.intersects(reach.accepted.lower) and not ssh.intersects(reach.dropped.lower)


KUBE_LB_SOURCE_RANGES = """*nat
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-SVC-WEB - [0:0]
:KUBE-SEP-WEB1 - [0:0]
:KUBE-SEP-WEB2 - [0:0]
:KUBE-SVC-API - [0:0]
:KUBE-SEP-API1 - [0:0]
:KUBE-EXT-API - [0:0]
:KUBE-FW-API - [0:0]
-A PREROUTING -j KUBE-SERVICES
-A OUTPUT -j KUBE-SERVICES
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-WEB
-A KUBE-SVC-WEB ! -s 10.244.0.0/16 -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -j KUBE-MARK-MASQ
-A KUBE-SVC-WEB -m statistic --mode random --probability 0.5 -j KUBE-SEP-WEB1
-A KUBE-SVC-WEB -j KUBE-SEP-WEB2
-A KUBE-SEP-WEB1 -s 10.244.1.5/32 -j KUBE-MARK-MASQ
-A KUBE-SEP-WEB1 -p tcp -m tcp -j DNAT --to-destination 10.244.1.5:8080
-A KUBE-SEP-WEB2 -s 10.244.2.7/32 -j KUBE-MARK-MASQ
-A KUBE-SEP-WEB2 -p tcp -m tcp -j DNAT --to-destination 10.244.2.7:8080
-A KUBE-SERVICES -d 10.96.0.20/32 -p tcp -m tcp --dport 443 -j KUBE-SVC-API
-A KUBE-SVC-API -j KUBE-SEP-API1
-A KUBE-SEP-API1 -s 10.244.3.9/32 -j KUBE-MARK-MASQ
-A KUBE-SEP-API1 -p tcp -m tcp -j DNAT --to-destination 10.244.3.9:6443
-A KUBE-SERVICES -d 203.0.113.5/32 -p tcp -m tcp --dport 443 -j KUBE-FW-API
-A KUBE-FW-API -s 0.0.0.0/0 -j KUBE-EXT-API
-A KUBE-FW-API -s 198.51.100.0/25 -j KUBE-EXT-API
-A KUBE-EXT-API -j KUBE-MARK-MASQ
-A KUBE-EXT-API -j KUBE-SVC-API
-A KUBE-NODEPORTS -p tcp -m tcp --dport 31443 -j KUBE-EXT-API
-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
COMMIT
"""


def test_kube_source_range_after_allow_all_is_blocked_by_the_service_jump_only():
    # The KUBE-EXT chain is also entered from a NodePort (any local address)
    # and the endpoints' rules match anything: neither may be named, nor the
    # earlier services; the jump that DNATs the load balancer's traffic is.
    from ruleanalyzer import loads
    from ruleanalyzer.space.reach import analyze_hooks

    rs = loads(KUBE_LB_SOURCE_RANGES, dialect="iptables", name="kube.rules")
    # On output the NodePort jump behind `--dst-type LOCAL` is live too: a
    # loopback destination is LOCAL there (the kernel's RTN_LOCAL route for
    # 127.0.0.0/8 — kube-proxy relies on it for `curl localhost:NODEPORT`).
    for hook, reach in analyze_hooks(rs, ["input", "forward", "output"], 4).items():
        dead = [(r.chain.name, r.index, [(b.chain.name, b.index) for b in bl])
                for r, bl in reach.unreachable_rules()]
        assert dead == [("KUBE-FW-API", 2, [("KUBE-EXT-API", 2)])], hook


def test_rule_whose_packets_never_enter_its_chain_is_blocked_before_the_jump():
    t = table(input="drop")
    inp = t.chains["INPUT"]
    t.add_chain(Chain("web"))
    ok = inp.add(rule(src("10.0.0.0/8"), action=Accept()))
    inp.add(rule(UDP, dport(53), action=Accept()))
    inp.add(rule(TCP, action=Jump("web")))
    t.chains["web"].add(rule(TCP, dport(443), action=Accept()))
    inner = t.chains["web"].add(rule(TCP, src("10.1.0.0/16"), action=Drop()))
    reach = analyze(ruleset(t), "input", 4)
    assert reach.unreachable_rules() == [(inner, [ok])]


def _every_set(result) -> tuple[list, list]:
    """Each rule's four set sizes and the hook's verdict set sizes."""
    sets = [tuple(getattr(result.rule_sets(r), n).size() for n in
                  ("reaching_lower", "reaching_upper", "matched_lower", "matched_upper"))
            for r in result.rules()]
    verdicts = [b.size() for v in (result.accepted, result.dropped, result.undecided)
                for b in (v.lower, v.upper)]
    return sets, verdicts


def _split_fixture() -> str:
    """A kube-proxy-like nat table: services by address, then a long chain
    matching ports only (run split), with jumps that send packets back
    (MARK), an undecidable rule before it (lower and upper differ) and a
    RETURN."""
    lines = ["*nat", ":PREROUTING ACCEPT [0:0]", ":PORTS - [0:0]", ":MASQ - [0:0]", ":SVC - [0:0]"]
    lines.append("-A MASQ -j MARK --set-xmark 0x4000/0x4000")
    lines.append("-A SVC -p tcp -j DNAT --to-destination 10.1.0.1:80")
    for i in range(12):
        lines.append(f"-A PREROUTING -d 10.0.{i}.{i + 1}/32 -p tcp --dport {80 + i} -j SVC")
    lines.append("-A PREROUTING -m statistic --mode random --probability 0.5 -j MASQ")
    lines.append("-A PREROUTING -j PORTS")
    for i in range(12):
        proto = ("tcp", "udp")[i % 2]
        target = ("MASQ", "SVC", "RETURN")[i % 3]
        lines.append(f"-A PORTS -p {proto} --dport {30000 + i} -j {target}")
    lines.append("-A PREROUTING -p tcp --dport 22 -j DNAT --to-destination 10.2.0.1")
    return "\n".join(lines + ["COMMIT", ""])


@pytest.mark.parametrize("hook", ["input", "forward"])
def test_split_chain_run_gives_the_same_sets(monkeypatch, hook):
    """A long chain run with its sets split in two (rules matching below
    the addresses) gives every rule the very sets, and the same verdicts,
    as taking each rule off the whole set."""
    from ruleanalyzer import loads
    from ruleanalyzer.space import reach as reach_mod

    def walk(min_rules):
        monkeypatch.setattr(reach_mod, "SPLIT_MIN_RULES", min_rules)
        return _every_set(analyze(loads(_split_fixture(), dialect="iptables"), hook, 4))

    runs = []
    original = reach_mod._Walker._run_split

    def run_split(self, chain, *args):
        out = original(self, chain, *args)
        runs.append((chain.name, out is not None))
        return out

    monkeypatch.setattr(reach_mod._Walker, "_run_split", run_split)
    held = []
    original_holds = reach_mod._Walker._holds

    ports = []  # the matches of PORTS's rules as the walk holds them
    original_outer = reach_mod._Walker._outer

    def outer(self, rule, match):
        out = original_outer(self, rule, match)
        if rule.chain.name == "PORTS":
            ports.append(out[0])
        return out

    def holds(self, within, rule, match):
        out = original_holds(self, within, rule, match)
        held.append((rule.chain.name, out, any(m[0].bdd is p.bdd and m[0] == p for m in within for p in ports)))
        return out

    monkeypatch.setattr(reach_mod._Walker, "_holds", holds)
    monkeypatch.setattr(reach_mod._Walker, "_outer", outer)
    split = walk(8)
    # SVC's ``-p tcp -j DNAT``, entered from the split PORTS chain's
    # ``-p tcp --dport N -j SVC``, surely matches by that rule's match
    assert ("SVC", True, True) in held
    held.clear()
    whole = walk(10**9)
    assert split == whole
    assert ("PORTS", True) in runs and ("PREROUTING", False) in runs
    assert len(split[0]) == 12 + 1 + 1 + 12 + 1 + 2  # every rule reached
    assert any(s[0] != s[1] for s in split[0])  # some lower and upper sets differ


def _endpoints_fixture() -> str:
    """kube-proxy's shape: a service chain sends each endpoint chain the
    same packets (a random pick is undecidable), and each endpoint chain
    marks its own endpoint's packets through a one-rule chain before the
    DNAT; FORWARD reads the mark."""
    lines = ["*nat", ":PREROUTING ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":MASQ - [0:0]", ":SVC - [0:0]"]
    lines.append("-A MASQ -j MARK --set-xmark 0x4000/0x4000")
    for base in ("PREROUTING", "OUTPUT"):  # no packet carries the mark before
        lines.append(f"-A {base} -j MARK --set-xmark 0x0/0x4000")
    lines.append("-A PREROUTING -d 172.18.0.1/32 -p tcp --dport 80 -j SVC")
    lines.append("-A OUTPUT -d 172.18.0.1/32 -p tcp --dport 80 -j SVC")
    lines.append("-A SVC ! -s 100.76.0.0/14 -d 172.18.0.1/32 -p tcp --dport 80 -j MASQ")
    for i in range(3):
        lines.insert(2, f":SEP{i} - [0:0]")
        pick = "-m statistic --mode random --probability 0.5 " if i < 2 else ""
        lines.append(f"-A SVC {pick}-j SEP{i}")
        lines.append(f"-A SEP{i} -s 100.76.0.{i + 5}/32 -j MASQ")
        lines.append(f"-A SEP{i} -p tcp -j DNAT --to-destination 100.76.0.{i + 5}:8080")
    lines += ["COMMIT", "*filter", ":FORWARD DROP [0:0]", "-A FORWARD -m mark --mark 0x4000/0x4000 -j ACCEPT",
              "-A FORWARD -s 100.76.0.6/32 -j ACCEPT", "COMMIT", ""]
    return "\n".join(lines)


@pytest.mark.parametrize("hook", ["forward", "output"])
def test_factored_mark_image_gives_the_same_sets(monkeypatch, hook):
    """A chain that writes the packets a jump sent it (KUBE-MARK-MASQ from
    each endpoint chain) images them as the jump's match met with the
    image of what reached the jump, kept for the next endpoint: every rule
    gets the very sets, and the hook the same verdicts, as imaging each
    set itself."""
    from ruleanalyzer import loads
    from ruleanalyzer.space import reach as reach_mod

    original = reach_mod._Walker._factored
    used = []
    met = []  # what came back unmet with the jump's match (_Met), made lazily

    class Met(reach_mod._Met):
        def __init__(self, *args):
            met.append(self)
            super().__init__(*args)

    monkeypatch.setattr(reach_mod, "_Met", Met)

    def walk(factor: bool):
        def factored(self, known, node, field):
            out = factor and original(self, known, node, field)
            used.append(out)
            return out

        monkeypatch.setattr(reach_mod._Walker, "_factored", factored)
        return _every_set(analyze(loads(_endpoints_fixture(), dialect="iptables"), hook, 4))

    factored = walk(True)
    assert any(used)  # the factored image was taken
    assert met  # and left unmet: the walk went on with ite(match, image, reaching)
    used.clear()
    met.clear()
    assert factored == walk(False)
    assert not met
    assert len(factored[0]) >= 1 + 3 + 1 + 6
    assert any(s[3] for s in factored[0][1:])  # packets do reach the endpoint chains


def test_rule_behind_a_jump_is_blocked_only_by_rules_that_took_what_the_jump_sends():
    # Packets from 192.0.2.0/24 to another service (a) never reach the jump's
    # condition anyway: only the drop of what the jump would send in (b) is
    # to blame, as kube-proxy's earlier services are not for a source range.
    t = table(input="drop")
    inp = t.chains["INPUT"]
    t.add_chain(Chain("FW"))
    inp.add(rule(TCP, dport(80), dst("10.0.0.2/32"), action=Accept()))
    b = inp.add(rule(TCP, dport(80), dst("10.0.0.1/32"), src("192.0.2.0/24"), action=Drop()))
    inp.add(rule(TCP, dport(80), dst("10.0.0.1/32"), action=Jump("FW")))
    inner = t.chains["FW"].add(rule(src("192.0.2.0/24"), action=Accept()))
    reach = analyze(ruleset(t), "input", 4)
    assert reach.unreachable_rules() == [(inner, [b])]


def _walk_within(monkeypatch, text: str, hook: str, use: bool, dialect: str = "iptables"):
    """Every set of a walk of ``text`` with the jumps' matches used to skip
    rules that every packet matches (``use``) or not; and whether it did."""
    from ruleanalyzer import loads
    from ruleanalyzer.space import reach as reach_mod

    original = reach_mod._Walker._holds
    skipped = []

    def holds(self, *args):
        out = use and original(self, *args)
        skipped.append(out)
        return out

    monkeypatch.setattr(reach_mod._Walker, "_holds", holds)
    result = analyze(loads(text, dialect=dialect), hook, 4)
    return _every_set(result), any(skipped), result


@pytest.mark.parametrize("hook", ["forward", "output"])
def test_rule_every_packet_matches_by_the_jump_gives_the_same_sets(monkeypatch, hook):
    """An endpoint chain's ``-p tcp -j DNAT`` holds for every packet its
    service's ``-p tcp --dport 80`` jump sent (through the random pick and
    the mark on the way): taken without building its sets, each rule gets
    the very sets and the hook the same verdicts."""
    text = _endpoints_fixture()
    whole, used, _ = _walk_within(monkeypatch, text, hook, True)
    assert used
    built, used, _ = _walk_within(monkeypatch, text, hook, False)
    assert not used and whole == built
    assert any(s[3] for s in whole[0][1:])


@pytest.mark.parametrize("via", ["action", "chain", "effect"])
def test_a_field_written_on_the_way_leaves_the_jumps_match(monkeypatch, via):
    """A jump on mark 1 into a chain that sets the mark to 2 (itself, in a
    chain it jumps to, or the jump rule on the way): a later mark-1 rule
    there matches nothing, though the jump's match implies its own."""
    if via == "effect":
        dialect = "nftables"
        text = """table ip t {
  chain pre {
    type filter hook prerouting priority 0; policy accept;
    meta mark 0x1 meta mark set 0x2 jump A
  }
  chain A {
    meta l4proto tcp meta mark 0x1 drop
    meta mark 0x1 drop
  }
}
"""
    else:
        dialect = "iptables"
        text = "\n".join(["*mangle", ":PREROUTING ACCEPT [0:0]", ":A - [0:0]", ":B - [0:0]",
                          "-A PREROUTING -m mark --mark 0x1 -j A",
                          "-A A -j MARK --set-mark 0x2" if via == "action" else "-A A -j B",
                          "-A B -j MARK --set-mark 0x2",
                          "-A A -p tcp -m mark --mark 0x1 -j DROP",
                          "-A A -m mark --mark 0x1 -j DROP", "COMMIT", ""])
    whole, used, result = _walk_within(monkeypatch, text, "input", True, dialect)
    built, _, _ = _walk_within(monkeypatch, text, "input", False, dialect)
    assert whole == built
    drops = [r for r in result.rules() if r.chain.name == "A" and isinstance(r.action, Drop)]
    assert len(drops) == 2 and all(result.is_unreachable(r) for r in drops)
    assert result.dropped.upper.is_empty()


def _assert_same_walk(a, b, hook: str = "") -> None:
    """Two walks of one ruleset in one space give the same nodes: the
    rules visited, the verdict sets and every rule's four sets."""
    assert a.rules() == b.rules()
    for name in ("accepted", "dropped", "undecided"):
        for side in ("lower", "upper"):
            assert getattr(getattr(a, name), side) == getattr(getattr(b, name), side), (hook, name, side)
    for r in a.rules():
        for name in ("reaching_lower", "reaching_upper", "matched_lower", "matched_upper"):
            assert getattr(a.rule_sets(r), name) == getattr(b.rule_sets(r), name), (hook, r.text, name)


def _same_sets(a, b) -> bool:
    """Every rule's four sets and the verdict sets of two walks in spaces
    of different variable orders are the same sets (``a``'s copied into
    ``b``'s manager; counts would differ in their last bits)."""
    from dd.cudd import copy_bdd

    def sets(result):
        out = [getattr(result.rule_sets(r), n).node for r in result.rules() for n in
               ("reaching_lower", "reaching_upper", "matched_lower", "matched_upper")]
        return out + [b.node for v in (result.accepted, result.dropped, result.undecided)
                      for b in (v.lower, v.upper)]

    return all(copy_bdd(x, b.space.bdd) == y for x, y in zip(sets(a), sets(b), strict=True))


def test_rare_walk_fields_go_on_top_of_a_large_ruleset(monkeypatch):
    """The mark and the TTL go right below the family where a large
    ruleset barely tests them (kube-proxy's), and stay below the addresses
    where its rules test them often; either way every rule gets the same
    sets, the hook the same verdicts, and a dead rule the same blockers."""
    from ruleanalyzer import loads
    from ruleanalyzer.space import fields as fields_mod
    from ruleanalyzer.space.fields import Layout

    text = _endpoints_fixture()
    last = text.rindex("COMMIT")
    text = (text[:last] + "-A FORWARD -m conntrack --ctstate INVALID -j DROP\n"
            "-A FORWARD -s 100.76.0.6/32 -p tcp -j ACCEPT\n" + text[last:])
    ruleset = loads(text, dialect="iptables")
    assert list(Layout.for_ruleset(ruleset).fields)[1] == "src"  # a small ruleset: as ever
    usual = {hook: analyze(ruleset, hook, 4) for hook in ("forward", "output")}
    monkeypatch.setattr(fields_mod, "RARE_MIN_RULES", 1)
    monkeypatch.setattr(fields_mod, "RARE_PER_RULES", 3)  # (the mark: one rule in 19)
    monkeypatch.setattr(fields_mod, "MOVE_CONNTRACK", False)  # (the state: test_layout_order.py)
    assert list(Layout.for_ruleset(ruleset).fields)[:4] == ["family", "mark", "ttl", "src"]
    for hook, before in usual.items():
        after = analyze(ruleset, hook, 4)
        assert [r.text for r in after.rules()] == [r.text for r in before.rules()]
        assert _same_sets(after, before)
        assert [(r.text, [b.text for b in bs]) for r, bs in after.unreachable_rules()] == \
            [(r.text, [b.text for b in bs]) for r, bs in before.unreachable_rules()]
    monkeypatch.setattr(fields_mod, "RARE_PER_RULES", 30)  # one rule in 19 tests the mark: too many
    assert list(Layout.for_ruleset(ruleset).fields)[1:3] == ["ttl", "src"]


@pytest.mark.parametrize("hook", ["forward", "output"])
def test_what_a_jump_sends_back_within_its_match_gives_the_same_sets(monkeypatch, hook):
    """Packets a jump sends back that still match it (the chain wrote no
    field the match reads: KUBE-MARK-MASQ from an endpoint chain) join
    the packets that passed it by in one step: every rule gets the very
    sets, and the hook the same verdicts, as taking the match off and
    adding what came back. A jump whose chain writes what its match reads
    sends back packets outside the match: the next rule sees them."""
    from ruleanalyzer import loads
    from ruleanalyzer.space import reach as reach_mod

    original = reach_mod._Walker._keeps_match
    used = []

    def walk(text: str, one_step: bool):
        def keeps(self, rule, chain, match):
            out = one_step and original(self, rule, chain, match)
            used.append(out)
            return out

        monkeypatch.setattr(reach_mod._Walker, "_keeps_match", keeps)
        return analyze(loads(text, dialect="iptables"), hook, 4)

    one = _every_set(walk(_endpoints_fixture(), True))
    assert any(used)
    assert one == _every_set(walk(_endpoints_fixture(), False))
    rewrites = ["*mangle", ":PREROUTING ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":SETM - [0:0]",
                "-A SETM -j MARK --set-xmark 0x4000/0x4000"]
    for base in ("PREROUTING", "OUTPUT"):
        rewrites += [f"-A {base} -m mark --mark 0x4000/0x4000 -j ACCEPT",  # none marked after
                     f"-A {base} -m mark --mark 0x0/0x4000 -j SETM",
                     f"-A {base} -m mark --mark 0x4000/0x4000 -j DROP"]
    result = walk("\n".join(rewrites + ["COMMIT", ""]), True)
    drops = [r for r in result.rules() if r.chain.name in ("PREROUTING", "OUTPUT") and r.index == 3]
    assert drops and all(not result.rule_sets(r).matched_upper.is_empty() for r in drops)


@pytest.mark.parametrize("hook", ["forward", "output"])
def test_one_rule_effect_chain_run_without_bookkeeping_gives_the_same_sets(monkeypatch, hook):
    """A jump into a chain whose one rule only marks the packets
    (KUBE-MARK-MASQ), when every packet entering matches that rule, is
    run without a general run's bookkeeping: every rule gets the very
    sets, and the hook the same verdicts; where the rule may not match
    (its own condition), the general run runs it."""
    from ruleanalyzer import loads
    from ruleanalyzer.space import reach as reach_mod

    original = reach_mod._Walker._effect_run
    taken = []

    def effect_run(self, *args):
        out = original(self, *args)
        taken.append(out is not None)
        return out

    monkeypatch.setattr(reach_mod._Walker, "_effect_run", effect_run)
    text = _endpoints_fixture().replace(":MASQ - [0:0]", ":MASQ - [0:0]\n:MASQ2 - [0:0]").replace(
        "-A SEP1 -s 100.76.0.6/32 -j MASQ", "-A SEP1 -s 100.76.0.6/32 -j MASQ2").replace(
        "COMMIT\n*filter", "-A MASQ2 -p tcp --dport 8080 -j MARK --set-xmark 0x4000/0x4000\nCOMMIT\n*filter")

    def walk(fast: bool):
        monkeypatch.setattr(reach_mod, "_effect_chains", (lambda rs, multi: original_chains(rs, multi))
                            if fast else (lambda rs, multi: set()))
        return _every_set(analyze(loads(text, dialect="iptables"), hook, 4))

    original_chains = reach_mod._effect_chains
    fast = walk(True)
    assert True in taken and False in taken  # MASQ run so, MASQ2 (port 8080 unsure) not
    taken.clear()
    assert fast == walk(False)
    assert not taken


def test_service_chains_entered_from_nat_prerouting_and_output_give_the_output_walk_its_own_answers():
    # kube-proxy's nat PREROUTING and OUTPUT both jump to KUBE-SERVICES with
    # the same packets: the output walk replays the runs of the service
    # chains the prerouting walk made (_Walker.hook_runs). What it finds on
    # output must be what a walk of output alone finds: the same verdict
    # sets and per-rule sets, node for node — also past a chain that reads
    # the address type (decided per hook: not shared) and with a TTL rule.
    from ruleanalyzer import loads
    from ruleanalyzer.space import Layout, Space
    from ruleanalyzer.space.reach import analyze_hooks

    text = ("*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
            ":SERVICES - [0:0]\n:SVC - [0:0]\n:SEP1 - [0:0]\n:SEP2 - [0:0]\n:MASQ - [0:0]\n:NODEPORTS - [0:0]\n"
            "-A PREROUTING -j SERVICES\n-A OUTPUT -j SERVICES\n"
            "-A SERVICES -d 10.96.0.1/32 -p tcp --dport 80 -j SVC\n"
            "-A SERVICES -m addrtype --dst-type LOCAL -j NODEPORTS\n"
            "-A NODEPORTS -p tcp --dport 30080 -j SVC\n"
            "-A SVC -m statistic --mode random --probability 0.5 -j SEP1\n-A SVC -j SEP2\n"
            "-A SEP1 -s 10.1.0.5/32 -j MASQ\n-A SEP1 -p tcp -j DNAT --to-destination 10.1.0.5:8080\n"
            "-A SEP2 -s 10.1.0.6/32 -j MASQ\n-A SEP2 -m ttl --ttl-lt 5 -j RETURN\n"
            "-A SEP2 -p tcp -j DNAT --to-destination 10.1.0.6:8080\n"
            "-A MASQ -j MARK --set-xmark 0x4000/0x4000\n"
            "-A POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE\nCOMMIT\n"
            "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT DROP [0:0]\n"
            "-A OUTPUT -m mark --mark 0x4000/0x4000 -j ACCEPT\n-A OUTPUT -p tcp --dport 8080 -j ACCEPT\n"
            "-A FORWARD -p tcp --dport 8080 -j ACCEPT\nCOMMIT\n")
    rs = loads(text, dialect="iptables")
    space = Space(Layout.for_ruleset(rs))
    both = analyze_hooks(rs, ["input", "forward", "output"], 4, space)["output"]
    alone = analyze(rs, "output", 4, space)
    assert both.rules() == alone.rules()
    for name in ("accepted", "dropped", "undecided"):
        for side in ("lower", "upper"):
            assert getattr(getattr(both, name), side) == getattr(getattr(alone, name), side)
    dnat = 0
    for r in alone.rules():
        a, b = alone.rule_sets(r), both.rule_sets(r)
        for name in ("reaching_lower", "reaching_upper", "matched_lower", "matched_upper"):
            assert getattr(a, name) == getattr(b, name), (r.text, name)
        dnat += "DNAT" in r.text and not a.matched_upper.is_empty()
    assert dnat == 2


def test_services_chain_reading_the_address_type_is_replayed_on_output_up_to_that_rule(monkeypatch):
    # nat PREROUTING and OUTPUT enter the services chain with the same
    # packets, but it reads the address type (decided per hook) mid-chain
    # and in its last rule: the output walk replays the prerouting run up
    # to the first such rule (its visits, verdicts merged into one part
    # each, what RETURNed) and walks on from there. Every hook's rule sets
    # and verdicts must be those of a walk that shares no run, node for
    # node — also the rules past the cut (their reaching sets are made
    # again from the run's steps before it), the packets RETURNed, DNATed
    # (the input path's own view of them) and rejected before it.
    from ruleanalyzer import loads
    from ruleanalyzer.space import Layout, Space
    from ruleanalyzer.space import reach as reach_mod
    from ruleanalyzer.space.reach import analyze_hooks

    text = ("*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
            ":SERVICES - [0:0]\n:SVC - [0:0]\n:SVC2 - [0:0]\n:NODEPORTS - [0:0]\n:MASQ - [0:0]\n"
            "-A PREROUTING -j SERVICES\n-A OUTPUT -j SERVICES\n"
            "-A OUTPUT -d 10.96.0.3/32 -p tcp -j DNAT --to-destination 10.1.0.9:8080\n"
            "-A SERVICES -d 10.96.0.1/32 -p tcp --dport 80 -j SVC\n"
            "-A SERVICES -d 10.96.0.3/32 -j RETURN\n"
            "-A SERVICES -d 10.96.0.4/32 -p tcp -j DNAT --to-destination 10.1.0.7:8080\n"
            "-A SERVICES -d 10.96.0.5/32 -p tcp -j DROP\n"
            "-A SERVICES -p tcp --dport 30000:30100 -m addrtype --dst-type LOCAL -j NODEPORTS\n"
            "-A SERVICES -d 10.96.0.2/32 -p tcp --dport 443 -j SVC2\n"
            "-A SERVICES -p udp -j MASQ\n"
            "-A SERVICES -m addrtype --dst-type LOCAL -j NODEPORTS\n"
            "-A NODEPORTS -p tcp --dport 30080 -j SVC\n-A NODEPORTS -p tcp -j SVC2\n"
            "-A SVC -s 10.1.0.5/32 -j MASQ\n-A SVC -p tcp -j DNAT --to-destination 10.1.0.5:8080\n"
            "-A SVC2 -p tcp -m statistic --mode random --probability 0.5 -j DNAT --to-destination 10.1.0.6:8443\n"
            "-A MASQ -j MARK --set-xmark 0x4000/0x4000\n"
            "-A POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE\nCOMMIT\n"
            "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT DROP [0:0]\n"
            "-A OUTPUT -m mark --mark 0x4000/0x4000 -j ACCEPT\n-A OUTPUT -p tcp --dport 8080 -j ACCEPT\n"
            "-A INPUT -p tcp --dport 30080 -j ACCEPT\n-A INPUT -p tcp --dport 8080 -j ACCEPT\n"
            "-A FORWARD -p tcp --dport 8443 -j ACCEPT\n-A FORWARD -p tcp --dport 8080 -j ACCEPT\nCOMMIT\n")
    resumed = []
    original = reach_mod._Walker._within_after

    def within_after(self, chain, cut, within):
        resumed.append((chain.name, cut))
        return original(self, chain, cut, within)

    monkeypatch.setattr(reach_mod._Walker, "_within_after", within_after)
    rs = loads(text, dialect="iptables")
    space = Space(Layout.for_ruleset(rs))
    hooks = ["input", "forward", "output"]
    shared = analyze_hooks(rs, hooks, 4, space)
    assert resumed == [("SERVICES", 4)]  # the output walk went on from the first addrtype rule
    monkeypatch.setattr(reach_mod._Walker, "_hook_free_prefix", lambda self, chain: 0)  # no run shared
    fresh = analyze_hooks(rs, hooks, 4, space)
    assert len(resumed) == 1
    for hook in hooks:
        _assert_same_walk(fresh[hook], shared[hook], hook)
    # the output walk reached the rules after the cut with packets
    tail = [r for r in shared["output"].rules() if r.chain.name == "SERVICES" and r.index >= 5]  # (1-based)
    assert len(tail) == 4 and all(not shared["output"].rule_sets(r).reaching_upper.is_empty() for r in tail)


def _services_map_fixture(rejected: str) -> str:
    """kube-proxy's nftables mode in small: nat-prerouting and nat-output
    jump to a services chain whose first rule is a map (a goto and a jump
    branch, the latter sending marked packets back) and whose second reads
    the address type; filter-output (before nat-output) rejects
    ``rejected``'s packets, so the output walk enters the chain with fewer."""
    return """table ip kp {
	map no-endpoints {
		type ipv4_addr . inet_proto . inet_service : verdict
		elements = { %s : goto reject-chain }
	}
	map service-ips {
		type ipv4_addr . inet_proto . inet_service : verdict
		elements = { 10.96.0.1 . tcp . 80 : goto svc-a, 10.96.0.2 . udp . 53 : jump svc-b,
			     10.96.0.3 . tcp . 443 : goto svc-c }
	}
	map service-nodeports {
		type inet_proto . inet_service : verdict
		elements = { tcp . 30080 : goto svc-a }
	}
	chain filter-output {
		type filter hook output priority -110; policy accept;
		ct state new ip daddr . meta l4proto . th dport vmap @no-endpoints
	}
	chain filter-input {
		type filter hook input priority 0; policy drop;
		tcp dport 30080 accept
		tcp dport 8080 accept
	}
	chain filter-forward {
		type filter hook forward priority 0; policy drop;
		tcp dport 8080 accept
		meta mark 0x00004000 accept
	}
	chain nat-prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		jump services
	}
	chain nat-output {
		type nat hook output priority -100; policy accept;
		jump services
	}
	chain reject-chain {
		reject
	}
	chain mark-for-masquerade {
		meta mark set meta mark | 0x00004000
	}
	chain services {
		ip daddr . meta l4proto . th dport vmap @service-ips
		fib daddr type local meta l4proto . th dport vmap @service-nodeports
		ip daddr 10.96.0.2 udp dport 53 meta mark 0x00004000 dnat to 10.1.0.8
	}
	chain svc-a {
		ip saddr != 10.0.0.0/8 jump mark-for-masquerade
		goto ep1
	}
	chain svc-c {
		ip saddr 10.9.0.0/16 return
		numgen random mod 2 vmap { 0 : goto ep1, 1 : goto ep2 }
	}
	chain svc-b {
		udp sport 53 return
		jump mark-for-masquerade
	}
	chain ep1 {
		ip saddr 10.1.0.5 jump mark-for-masquerade
		meta l4proto tcp dnat to 10.1.0.5:8080
	}
	chain ep2 {
		meta l4proto tcp dnat to 10.1.0.6:8080
	}
}
""" % rejected


@pytest.mark.parametrize("rejected, narrowed", [("10.96.0.9 . tcp . 80", True), ("10.96.0.1 . tcp . 80", False)])
def test_services_map_entered_with_fewer_packets_on_output_replays_the_branches_it_can(monkeypatch, rejected,
                                                                                    narrowed):
    # The output walk enters the services chain with fewer packets than
    # prerouting did (filter-output rejected some first). Where no branch
    # of its map takes those, every branch is entered with the very same
    # sets: the kept prerouting run's branches (verdicts, visits, what the
    # jump branch sent back) are replayed, the map rule's own visit and the
    # packets it has no key for made again. Where a branch takes some of
    # them (a rejected service that is also in the map) nothing is replayed.
    # (svc-a's DNAT is sure: the output path's lower accepted set holds it;
    # svc-c RETURNs some packets to nat-output.)
    # Either way every hook's verdicts and rule sets are those of a walk
    # that shares no run, node for node.
    from ruleanalyzer import loads
    from ruleanalyzer.space import Layout, Space
    from ruleanalyzer.space import reach as reach_mod
    from ruleanalyzer.space.reach import analyze_hooks

    taken = []
    original = reach_mod._Walker._narrowed_first

    def narrowed_first(self, chain, *args):
        taken.append(chain.name)
        return original(self, chain, *args)

    monkeypatch.setattr(reach_mod._Walker, "_narrowed_first", narrowed_first)
    rs = loads(_services_map_fixture(rejected), dialect="nftables")
    space = Space(Layout.for_ruleset(rs))
    hooks = ["input", "forward", "output"]
    shared = analyze_hooks(rs, hooks, 4, space)
    assert taken == (["services"] if narrowed else [])
    monkeypatch.setattr(reach_mod._Walker, "_hook_free_prefix", lambda self, chain: 0)  # no run shared
    fresh = analyze_hooks(rs, hooks, 4, space)
    for hook in hooks:
        _assert_same_walk(fresh[hook], shared[hook], hook)
    last = [r for r in shared["output"].rules() if r.chain.name == "services"][-1]
    assert not shared["output"].rule_sets(last).matched_upper.is_empty()  # (svc-b's marked packets came back)


def test_dnat_that_surely_changes_the_destination_gives_the_same_sets(monkeypatch):
    """Whether a prerouting DNAT changes a destination (its packets then
    leave the input path for forward) is told by the address's low 32
    bits where none has it: the same sets and verdicts on input and
    forward as asking the whole address, also where some packets already
    have it (a DNAT to an address inside the rule's own range)."""
    from ruleanalyzer import loads
    from ruleanalyzer.space import reach as reach_mod
    from ruleanalyzer.space.reach import analyze_hooks

    text = "\n".join(["*nat", ":PREROUTING ACCEPT [0:0]",
                      "-A PREROUTING -d 172.18.0.1/32 -p tcp --dport 80 -j DNAT --to-destination 100.76.0.5:8080",
                      "-A PREROUTING -d 10.0.0.0/8 -p tcp --dport 443 -j DNAT --to-destination 10.0.0.5",
                      "-A PREROUTING -m statistic --mode random --probability 0.5 -p udp "
                      "-j DNAT --to-destination 100.76.0.6", "COMMIT",
                      "*filter", ":INPUT DROP [0:0]", ":FORWARD DROP [0:0]",
                      "-A INPUT -p tcp --dport 443 -j ACCEPT", "-A FORWARD -p tcp --dport 8080 -j ACCEPT",
                      "COMMIT", ""])
    original = reach_mod._Walker._misses_address
    told = []

    def walk(short: bool):
        def misses(self, node, addr):
            out = short and original(self, node, addr)
            told.append(out)
            return out

        monkeypatch.setattr(reach_mod._Walker, "_misses_address", misses)
        return {h: _every_set(r) for h, r in analyze_hooks(loads(text, dialect="iptables"),
                                                           ["input", "forward"], 4).items()}

    short = walk(True)
    assert True in told and False in told
    assert short == walk(False)


def test_nat_images_made_in_one_step_are_the_stepwise_images(monkeypatch):
    """A NAT's image of a set within its one-step domain is the set with the
    written bits quantified away, met with one cube of the values (status
    bit, address bits, port: Space.cube_of): the very sets, node for node,
    as imaging field by field — DNAT and SNAT, IPv4 (the address's low 32
    bits) and IPv6 (all 128), with and without a port, REDIRECT."""
    from ruleanalyzer import loads
    from ruleanalyzer.space import Layout, Space
    from ruleanalyzer.space import reach as reach_mod
    from ruleanalyzer.space.reach import analyze_hooks

    text = "\n".join([
        "table inet nat {", "  chain pre {", "    type nat hook prerouting priority -100;",
        "    tcp dport 80 dnat ip to 10.0.0.5:8080", "    tcp dport 81 dnat ip6 to [2001:db8::5]:8080",
        "    tcp dport 82 dnat ip to 10.0.0.6", "    udp dport 53 redirect to :5353", "  }",
        "  chain post {", "    type nat hook postrouting priority 100;",
        "    tcp dport 25 snat ip to 192.0.2.1:2525", "    udp dport 123 snat ip6 to [2001:db8::1]", "  }", "}",
        "table inet filter {", "  chain forward_f {", "    type filter hook forward priority 0; policy drop;",
        "    tcp dport 8080 accept", "  }", "}", ""])
    rs = loads(text, dialect="nftables")
    space = Space(Layout.for_ruleset(rs))
    original = reach_mod._Walker._nat_whole
    used = []

    def walk(whole: bool):
        def nat_whole(self, action):
            out = original(self, action) if whole else None
            used.append(out is not None)
            return out

        monkeypatch.setattr(reach_mod._Walker, "_nat_whole", nat_whole)
        out = []
        for family in (4, 6):
            for result in analyze_hooks(rs, ["input", "forward", "output"], family, space).values():
                out += [getattr(getattr(result, n), s) for n in ("accepted", "dropped", "undecided")
                        for s in ("lower", "upper")]
                out += [getattr(result.rule_sets(r), n) for r in result.rules()
                        for n in ("reaching_lower", "reaching_upper", "matched_lower", "matched_upper")]
        return out

    one = walk(True)
    assert True in used
    stepwise = walk(False)
    assert len(one) == len(stepwise) and all(a == b for a, b in zip(one, stepwise))


def test_endpoint_dnat_images_made_through_the_mark_jumps_ite_are_the_quantified_sets(monkeypatch):
    """An endpoint chain's DNAT right after its ``-s ENDPOINT`` jump to the
    mark chain images that jump's ``ite(m, cont, up)`` as ``address ∧
    ite(m, (∃V. cont) ∧ rest, (∃V. up) ∧ rest)``, the branches kept per
    service: the very sets, node for node, as quantifying each endpoint's
    set and meeting it with the cube of its values — endpoints to one
    port, to another port, to no port."""
    from ruleanalyzer import loads
    from ruleanalyzer.space import Layout, Space
    from ruleanalyzer.space import reach as reach_mod
    from ruleanalyzer.space.reach import analyze_hooks

    text = _endpoints_fixture().replace("100.76.0.6:8080", "100.76.0.6").replace("100.76.0.7:8080", "100.76.0.7:9090")
    original, values = reach_mod._Walker._nat_image, reach_mod._Walker._nat_values
    used = []

    def walk(text: str, through_ite: bool):
        def nat_image(self, *args, **kwargs):
            if not through_ite:
                self.ite_made = None
            return original(self, *args, **kwargs)

        def nat_values(self, *args):
            used.append(args[0].to_port)
            return values(self, *args)

        monkeypatch.setattr(reach_mod._Walker, "_nat_image", nat_image)
        monkeypatch.setattr(reach_mod._Walker, "_nat_values", nat_values)
        rs = loads(text, dialect="iptables")
        out = []
        for result in analyze_hooks(rs, ["forward", "output"], 4, space).values():
            out += [getattr(getattr(result, n), s) for n in ("accepted", "dropped", "undecided")
                    for s in ("lower", "upper")]
            out += [getattr(result.rule_sets(r), n) for r in result.rules()
                    for n in ("reaching_lower", "reaching_upper", "matched_lower", "matched_upper")]
        return out

    for fixture in (_endpoints_fixture(), text):
        space = Space(Layout.for_ruleset(loads(fixture, dialect="iptables")))
        used.clear()
        one = walk(fixture, True)
        assert used
        quantified = walk(fixture, False)
        assert len(one) == len(quantified) and all(a == b for a, b in zip(one, quantified))
    assert {None, 8080, 9090} <= set(used)


def test_fields_a_rule_writes_are_the_same_asked_within_its_chain_or_afresh():
    # _writes keeps each rule's answer while working out its chain's (the
    # rule asks it again when it runs): the same answer as asking the rule
    # afresh — None (unknown) for a rule on a jump cycle, also when the
    # cycle was entered from another chain, and the written fields else.
    from ruleanalyzer.space import Layout, Space
    from ruleanalyzer.space.reach import _Walker

    t = table(input="accept")
    for name in ("A", "B", "C"):
        t.add_chain(Chain(name))
    back = t.chains["B"].add(rule(TCP, action=Jump("A")))  # A -> B -> A
    mark = t.chains["B"].add(rule(UDP, action=SetField("mark", 1, 1)))
    t.chains["A"].add(rule(UDP, action=Jump("B")))
    to_c = t.chains["A"].add(rule(TCP, action=Jump("C")))
    t.chains["C"].add(rule(action=SetField("mark", 2, 2)))
    rs = ruleset(t)
    space = Space(Layout.for_ruleset(rs))

    def walker():
        return _Walker(rs, space, 4)

    within = walker()
    assert within._writes(t.chains["A"], set()) is None  # the cycle: unknown
    for r in (back, mark, to_c):
        assert within._writes_of(r, r.chain) == walker()._writes_of(r, r.chain), r.chain.name
    assert walker()._writes_of(to_c, t.chains["A"]) == frozenset({"mark"})
    assert walker()._writes_of(back, t.chains["B"]) is None


def _numgen_fixture() -> str:
    """kube-proxy's nftables service chains: each picks one of its
    endpoints by ``numgen random mod N vmap``; a map with no key for some
    packets (the last) lets them on to the next rule."""
    lines = ["table ip kp {", "  chain input {", "    type filter hook input priority 0; policy drop;"]
    for i in range(4):
        lines.append(f"    ip daddr 10.0.0.{i + 1} tcp dport 80 goto svc{i}")
    lines += ["  }", "  chain ep-a {", "    ip saddr 10.1.0.1 accept", "  }", "  chain ep-b {", "    drop", "  }"]
    for i in range(4):
        vmap = "numgen random mod 3 vmap { 0 : goto ep-a, 2 : goto ep-b }" if i == 3 \
            else "numgen random mod 2 vmap { 0 : goto ep-a, 1 : goto ep-b }"
        lines += [f"  chain svc{i} {{", f"    {vmap}", "    tcp sport 1024 accept", "  }"]
    return "\n".join(lines + ["}", ""])


def test_alike_verdict_maps_share_their_keys_and_take_constants_without_an_operation(monkeypatch):
    """The nft reader shares the branch matches of maps alike: their keys
    are worked out once and kept once (by the matches, not per map), and a
    branch whose key is a constant (a numgen map's: surely nothing, maybe
    all) is handed the entering sets themselves. Every set is the same as
    with each map's keys kept by the map."""
    from ruleanalyzer import loads
    from ruleanalyzer.space import reach as reach_mod

    ruleset = loads(_numgen_fixture(), dialect="nftables")
    original = reach_mod._Walker._dispatch_keys
    got = []

    def dispatch_keys(self, action, ctx):
        out = original(self, action, ctx)
        got.append((action, out, self.space))
        return out

    monkeypatch.setattr(reach_mod._Walker, "_dispatch_keys", dispatch_keys)
    shared = _every_set(analyze(ruleset, "input", 4))
    by_map = {id(action): out for action, out, _ in got}
    assert len(by_map) == 4 and len({id(out) for out in by_map.values()}) == 2  # mod 2 thrice, mod 3 once
    sp = got[0][2]
    full = next(out for action, out, _ in got if len(action.branches) == 2)
    assert full[1] is full[2] is sp.false and all(k_l is sp.false and k_u is sp.true for k_l, k_u in full[0])
    monkeypatch.setattr(reach_mod, "SHARED_KEYS_MAX", 0)  # each map's keys its own
    got.clear()
    assert _every_set(analyze(ruleset, "input", 4)) == shared
    assert len({id(out) for _, out, _ in got}) == 4


def _kube_nftables_fixture() -> str:
    """kube-proxy's nftables mode, small: a service map keyed ``ip daddr .
    meta l4proto . th dport`` goes to service chains, each a masquerade
    jump and a ``numgen`` map to endpoint chains (``ip saddr EP jump
    mark-for-masquerade``, ``meta l4proto P dnat to EP:PORT``); a node
    port goes to a chain marking and going to the service; a service
    without endpoints is rejected."""
    services = [("172.30.0.10", "tcp", 80, ["100.64.0.5", "100.64.0.6", "100.64.0.7"], 8080),
                ("172.30.0.10", "udp", 53, ["100.64.0.8"], 53),
                ("172.30.0.11", "tcp", 443, ["100.64.0.9", "100.64.1.1"], 8443)]
    chains, elements = [], []
    for n, (ip, proto, port, eps, to_port) in enumerate(services):
        elements.append(f"{ip} . {proto} . {port} : goto svc{n}")
        vmap = ", ".join(f"{i} : goto ep{n}_{i}" for i in range(len(eps)))
        chains.append(f"  chain svc{n} {{\n    ip daddr {ip} {proto} dport {port} ip saddr != 100.64.0.0/14 "
                      f"jump mark-for-masquerade\n    numgen random mod {len(eps)} vmap {{ {vmap} }}\n  }}")
        chains += [f"  chain ep{n}_{i} {{\n    ip saddr {ep} jump mark-for-masquerade\n"
                   f"    meta l4proto {proto} dnat to {ep}:{to_port}\n  }}" for i, ep in enumerate(eps)]
    return "\n".join([
        "table ip kube-proxy {",
        "  map service-ips {", "    type ipv4_addr . inet_proto . inet_service : verdict",
        f"    elements = {{ {', '.join(elements)} }}", "  }",
        "  map no-endpoint-services {", "    type ipv4_addr . inet_proto . inet_service : verdict",
        "    elements = { 172.30.0.12 . tcp . 80 : goto reject-chain }", "  }",
        "  map service-nodeports {", "    type inet_proto . inet_service : verdict",
        "    elements = { tcp . 30080 : goto ext0 }", "  }",
        "  chain filter-forward {", "    type filter hook forward priority -110; policy accept;",
        "    ct state new jump service-endpoints-check", "  }",
        "  chain filter-output {", "    type filter hook output priority -110; policy accept;",
        "    ct state new jump service-endpoints-check", "  }",
        "  chain nat-prerouting {", "    type nat hook prerouting priority dstnat; policy accept;",
        "    jump services", "  }",
        "  chain nat-output {", "    type nat hook output priority -100; policy accept;", "    jump services", "  }",
        "  chain nat-postrouting {", "    type nat hook postrouting priority srcnat; policy accept;",
        "    jump masquerading", "  }",
        "  chain reject-chain {", "    reject", "  }",
        "  chain mark-for-masquerade {", "    meta mark set meta mark | 0x00004000", "  }",
        "  chain masquerading {", "    meta mark & 0x00004000 == 0x00000000 return",
        "    meta mark set meta mark ^ 0x00004000", "    masquerade fully-random", "  }",
        "  chain services {", "    ip daddr . meta l4proto . th dport vmap @service-ips",
        "    fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports",
        "  }",
        "  chain service-endpoints-check {", "    ip daddr . meta l4proto . th dport vmap @no-endpoint-services",
        "  }",
        "  chain ext0 {", "    jump mark-for-masquerade", "    goto svc0", "  }",
        *chains, "}", ""])


def test_a_map_branchs_exact_key_holds_the_chain_it_enters_with_the_same_sets(monkeypatch):
    """A chain entered from a verdict map's branch lies within the branch's
    exact key (kube-proxy's nftables service map, ``ip daddr . meta
    l4proto . th dport``): the endpoint chains' ``meta l4proto P dnat``
    then holds every packet reaching it, and its image is made from the
    mark jump's ``ite`` — every rule's sets and the verdict sets node for
    node the same as walked without the keys (``_branch_outers`` None)."""
    from ruleanalyzer import loads
    from ruleanalyzer.space import Layout, Space
    from ruleanalyzer.space import reach as reach_mod
    from ruleanalyzer.space.reach import analyze_hooks

    rs = loads(_kube_nftables_fixture(), dialect="nftables")
    space = Space(Layout.for_ruleset(rs))
    outers, image = reach_mod._Walker._branch_outers, reach_mod._Walker._nat_image
    through_ite = []

    def walk(keys: bool):
        def branch_outers(self, *args):
            return outers(self, *args) if keys else None

        def nat_image(self, action, node, within=False):
            made = self.ite_made
            through_ite.append(made is not None and node is made[0])
            return image(self, action, node, within)

        monkeypatch.setattr(reach_mod._Walker, "_branch_outers", branch_outers)
        monkeypatch.setattr(reach_mod._Walker, "_nat_image", nat_image)
        through_ite.clear()
        out = []
        for result in analyze_hooks(rs, ["input", "forward", "output"], 4, space).values():
            out += [getattr(getattr(result, n), s) for n in ("accepted", "dropped", "undecided")
                    for s in ("lower", "upper")]
            out += [getattr(result.rule_sets(r), n) for r in result.rules()
                    for n in ("reaching_lower", "reaching_upper", "matched_lower", "matched_upper")]
        return out, sum(through_ite)

    held, ites = walk(True)
    unheld, ites_before = walk(False)
    assert ites_before == 0 and ites >= 6  # (every endpoint's DNAT, prerouting at least)
    assert len(held) == len(unheld) and all(a == b for a, b in zip(held, unheld))
