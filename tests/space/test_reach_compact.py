"""What a walk keeps per rule is compact (issue 21: a 100k-rule audit's
Python objects): the space's own empty set and one object for equal
bounds among the sets kept, one match
pair per pair of nodes shared by the runs' steps, a record that is its
own first visit, and the walker's per-rule field sets shared."""

from ruleanalyzer import loads
from ruleanalyzer.model import Nat
from ruleanalyzer.space import reach as reach_mod
from ruleanalyzer.space.fields import Layout
from ruleanalyzer.space.packetset import Space

from ..generated_shapes import generate


def _walk(shape: str = "kube-iptables", rules: int = 300):
    text, dialect = generate(shape, rules, seed=3)
    ruleset = loads(text, dialect=dialect)
    space = Space(Layout.for_ruleset(ruleset))
    found = reach_mod.analyze_hooks(ruleset, ["input", "forward", "output"], 4, space)
    records = [rec for reach in found.values() for rec in reach._records.values()]
    return space, records


def test_kept_empty_sets_and_equal_bounds_are_one_wrapper():
    space, records = _walk()
    false = space.false
    pairs = [(part.ml, part.mu) for rec in records for part in rec.parts
             if type(part.mu) is not reach_mod._Reaching]
    for run in {id(part.run): part.run for rec in records for part in rec.parts}.values():
        kept = run.kept
        pairs += [(kept[i], kept[i + 1]) for i in range(0, len(kept), 2) if kept[i] is not None]
    empty = [(low, up) for low, up in pairs if up == false]
    assert len(empty) > 10
    assert all(low is false and up is false for low, up in empty)  # fails without _record's canon
    assert all(low is up for low, up in pairs if low == up)


def test_steps_share_the_match_pairs_and_records_are_their_first_visit():
    space, records = _walk()
    pairs = space.__dict__["_match_pairs"]
    steps = [part.run.steps[part.k] for rec in records for part in rec.parts]
    plain = [step for step in steps if len(step) == 2]
    assert len(plain) > len(steps) // 2
    assert all(pairs.get(step) is step for step in plain)  # fails with a tuple per step
    for rec in records:
        assert rec.parts[0] is rec
        # the record's own sets are those its first visit read
        assert rec.match_u is rec.run.steps[rec.k][1] or rec.match_u == rec.run.steps[rec.k][1]


def test_walker_field_sets_are_shared():
    text, dialect = generate("kube-iptables", 300, seed=3)
    ruleset = loads(text, dialect=dialect)
    walker = reach_mod._Walker(ruleset, Space(Layout.for_ruleset(ruleset)), 4)
    sets = [walker._reads(rule) for chain in ruleset.chains() for rule in chain.rules]
    assert len({id(s) for s in sets}) == len(set(sets))  # fails without _Walker._frozen


def test_the_last_walk_replays_the_kept_runs_then_lets_them_go(monkeypatch):
    # The output walk replays the service chains' runs the prerouting walk
    # kept (_Walker.hook_runs); after its last nat chain nothing replays a
    # run, and the kept runs are let go (None: a later reader fails loudly).
    walkers = []
    walk = reach_mod._Walker.walk

    def spy(self, *args, **kwargs):
        walkers.append(self)
        return walk(self, *args, **kwargs)

    monkeypatch.setattr(reach_mod._Walker, "walk", spy)
    text, dialect = generate("kube-iptables", 300, seed=3)
    ruleset = loads(text, dialect=dialect)
    found = reach_mod.analyze_hooks(ruleset, ["input", "forward", "output"], 4,
                                    Space(Layout.for_ruleset(ruleset)))
    assert walkers and walkers[-1].hook_runs is None  # fails while kept to the walk's end
    inbound, outbound = found["input"]._records, found["output"]._records
    services = [r for c in ruleset.chains() if c.name.startswith("KUBE-SVC-") for r in c.rules]
    shared = [r for r in services if r in inbound and r in outbound
              and outbound[r].run is inbound[r].run]
    assert len(shared) > len(services) // 2  # fails when let go before the output's nat chain


def test_a_replayed_log_holds_the_records_of_first_visits(monkeypatch):
    # A kept run's log names a rule's first visit on its path by the rule's
    # record alone (no visit object, no tuple), others by a visit naming
    # its rule (no tuple); replayed, it files the same sets
    # (test_reach_replay, _hooks).
    logs = []
    replay = reach_mod._Walker._replay

    def spy(self, out, added, log, path, alt):
        logs.append((path, list(log)))
        return replay(self, out, added, log, path, alt)

    monkeypatch.setattr(reach_mod._Walker, "_replay", spy)
    space, records = _walk()
    entries = [(path, e) for path, log in logs for e in log]
    assert entries
    firsts = [(path, e) for path, e in entries if type(e) is reach_mod._Record]
    assert len(firsts) > len(entries) // 2  # fails with a _Visit (and a tuple) per logged visit
    for path, rec in firsts:  # the record names its rule: the path's order at its first visit
        assert path.records[path.order[rec.first]].first == rec.first
    assert all(type(e) is reach_mod._LaterVisit and e.rule.chain.rules[e.k] is e.rule
               and path.records[e.rule].first < len(path.order) for path, e in entries
               if type(e) is not reach_mod._Record)


def test_runs_kept_inside_a_kept_run_are_let_go(monkeypatch):
    # A service chain's run lies inside KUBE-SERVICES' kept run, which the
    # output walk replays whole: keeping it as well only held its slices of
    # the log and of the verdict parts (~50 MiB at 100k kube-nftables rules).
    kept = []
    walk = reach_mod._Walker.walk

    def spy(self, stages, path, path_hook, last=False):
        out = walk(self, stages, path, path_hook, last)
        if path_hook == "shared":
            kept.append([key[0].name for key in self.hook_runs if key[0] != "narrowed"])
        return out

    monkeypatch.setattr(reach_mod._Walker, "walk", spy)
    text, dialect = generate("kube-iptables", 300, seed=3)
    ruleset = loads(text, dialect=dialect)
    reach_mod.analyze_hooks(ruleset, ["input", "forward", "output"], 4, Space(Layout.for_ruleset(ruleset)))
    names = kept[0]
    assert "KUBE-SERVICES" in names
    # fails while every service and endpoint chain's run is kept too
    assert not [n for n in names if n.startswith(("KUBE-SVC-", "KUBE-SEP-"))]


def test_nat_rules_sets_are_made_again_from_their_run(monkeypatch):
    # A DNAT rule every packet that reaches matches (kube-proxy's ``-p tcp
    # -j DNAT``) keeps neither its matched nor its reaching sets: both are
    # made again from its run when read, the very sets a walk that keeps
    # them has; whether they hold a valid packet is answered when filed.
    text, dialect = generate("kube-iptables", 300, seed=3)
    ruleset = loads(text, dialect=dialect)
    space = Space(Layout.for_ruleset(ruleset))
    hooks = ["input", "forward", "output"]
    lean = reach_mod.analyze_hooks(ruleset, hooks, 4, space)
    monkeypatch.setattr(reach_mod._Walker, "_made_again", lambda self, rule, run, k: False)
    kept = reach_mod.analyze_hooks(ruleset, hooks, 4, space)
    remade = 0
    for hook in hooks:
        assert lean[hook].rules() == kept[hook].rules()
        for rule in lean[hook].rules():
            a, b = lean[hook]._records[rule], kept[hook]._records[rule]
            for part in a.parts:
                if type(part.mu) is reach_mod._Reaching:
                    remade += 1
                    assert isinstance(rule.action, reach_mod.Nat) and part.run._kept(part.k) is None
                    assert part.has_valid(space) == space.has_valid(part[3])
            assert all(a.column(i) == b.column(i) for i in range(4))
            assert a.matched_upper_empty(space) == b.matched_upper_empty(space)
        for name in ("accepted", "dropped", "undecided"):
            x, y = getattr(lean[hook], name), getattr(kept[hook], name)
            assert x.lower.node == y.lower.node and x.upper.node == y.upper.node
    assert remade > 50  # fails while every record keeps its sets


def test_dnat_addresses_are_not_kept_by_the_space():
    # An endpoint's DNAT address cube is made for its image, not kept in the
    # space's cube cache to the audit's end (one per endpoint: 0.46M BDD
    # nodes at 100k kube-nftables rules); a few are, asked for elsewhere.
    text, dialect = generate("kube-nftables", 300, seed=3)
    ruleset = loads(text, dialect=dialect)
    space = Space(Layout.for_ruleset(ruleset))
    reach_mod.analyze_hooks(ruleset, ["input", "forward", "output"], 4, space)
    dnat = {int(r.action.to_addr) for chain in ruleset.chains() for r in chain.rules
            if isinstance(r.action, Nat) and r.action.to_addr is not None}
    cached = {key[1] for key in space._cube_cache if key[0] == "dst"}
    assert len(dnat) > 50
    assert len(dnat & cached) < len(dnat) // 4  # fails with every endpoint's cube kept
