"""``analyze_hooks`` answers each hook exactly as ``analyze`` does alone
(issue #13): audit walks input, forward and output together, diff and
queries one hook at a time, and both must describe the same packets."""

import pytest

from ruleanalyzer import loads
from ruleanalyzer.space import Space, describe, encode
from ruleanalyzer.space.fields import Layout
from ruleanalyzer.space.reach import analyze, analyze_hooks

from ..generated_shapes import generate
from .helpers import state

HOOKS = ("input", "forward", "output")

# A Docker published port: packets addressed to the host (addrtype LOCAL)
# are DNATed to a container and forwarded.
DOCKER = ("*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:DOCKER - [0:0]\n"
          "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n"
          "-A DOCKER ! -i docker0 -p tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80\n"
          "COMMIT\n*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n"
          "-A FORWARD -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp --dport 80 -j ACCEPT\nCOMMIT\n")


def _service_chain(n: int = 20) -> str:
    """A service chain entered from nat PREROUTING and OUTPUT (kube-proxy's
    KUBE-SERVICES), long enough for the walk to reuse its run, ending in an
    addrtype match that input/forward and output read differently."""
    rules = "".join(f"-A SVC -d 10.96.0.{i}/32 -p tcp --dport 80 -j DNAT --to-destination 10.244.0.{i}:8080\n"
                    for i in range(1, n))
    return ("*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:SVC - [0:0]\n"
            "-A PREROUTING -j SVC\n-A OUTPUT -j SVC\n" + rules
            + "-A SVC -m addrtype --dst-type LOCAL -p tcp --dport 30080 -j DNAT --to-destination 10.244.9.9:80\n"
            "COMMIT\n*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT DROP [0:0]\n"
            "-A FORWARD -d 10.244.0.0/16 -j ACCEPT\n-A OUTPUT -d 10.244.9.9/32 -j ACCEPT\nCOMMIT\n")


def _differences(rs, family: int = 4) -> dict:
    """(hook, verdict, bound) -> description of the packets one answer
    holds and the other not, for every set that differs."""
    sp = Space(Layout.for_ruleset(rs))
    together = analyze_hooks(rs, list(HOOKS), family, sp)
    out = {}
    for hook in HOOKS:
        alone = analyze(rs, hook, family, sp)
        for verdict in ("accepted", "dropped", "undecided"):
            for bound in ("lower", "upper"):
                a = getattr(getattr(alone, verdict), bound)
                b = getattr(getattr(together[hook], verdict), bound)
                if a.node != b.node:
                    out[(hook, verdict, bound)] = (describe(a - b)[:2], describe(b - a)[:2])
    return out


@pytest.mark.parametrize("text", [DOCKER, _service_chain()], ids=["docker-published-port", "service-chain"])
def test_each_hook_alone_equals_all_hooks_together(text):
    assert _differences(loads(text, dialect="iptables")) == {}


def test_a_published_port_is_forwarded_when_forward_is_analysed_alone():
    rs = loads(DOCKER, dialect="iptables")
    reach = analyze(rs, "forward", 4)
    sp = reach.space
    dnat = sp.wrap(sp.bdd.var("ct_status:dnat")) & encode(state("new"), sp)
    # the container's port, reached through the host's published 8080 (a
    # NEW packet arrives untranslated: its DNAT status is this walk's DNAT)
    assert not (reach.accepted.lower & dnat).is_empty()


def test_output_does_not_reuse_the_arriving_reading_of_addrtype():
    rs = loads(_service_chain(), dialect="iptables")
    sp = Space(Layout.for_ruleset(rs))
    together = analyze_hooks(rs, list(HOOKS), 4, sp)["output"]
    # on output only a loopback destination is surely LOCAL (the kernel's
    # local route for 127.0.0.0/8: kube-proxy's ``curl localhost:NODEPORT``);
    # no other address is taken for the host's own, as it is on arrival
    rule = rs.tables[0].chains["SVC"].rules[-1]
    sets = together.rule_sets(rule)
    loopback = sp.wrap(sp.family(4) & sp.prefix("dst", 0x7F000000, 8, 32))
    assert not sets.matched_lower.is_empty()
    assert sets.matched_upper <= loopback


@pytest.mark.parametrize("shape,seed", [("project", 1), ("project", 2), ("kube-iptables", 1),
                                        ("mixed", 1), ("kube-nftables", 1)])
def test_generated_rulesets_agree_hook_by_hook(shape, seed):
    text, dialect = generate(shape, 300, seed)
    assert _differences(loads(text, dialect=dialect)) == {}


def test_without_any_dnat_a_forwarded_packet_is_never_addressed_to_the_host():
    text = ("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            "-A FORWARD -m addrtype --dst-type LOCAL -p tcp --dport 22 -j ACCEPT\n"
            "-A FORWARD -p tcp --dport 22 -j ACCEPT\nCOMMIT\n")
    rs = loads(text, dialect="iptables")
    local, routed = rs.tables[0].chains["FORWARD"].rules
    for reach in (analyze(rs, "forward", 4), analyze_hooks(rs, list(HOOKS), 4)["forward"]):
        assert reach.is_unreachable(local)
        assert not reach.is_unreachable(routed)
    # with a DNAT to the host's own address such a packet can be forwarded
    dnat = text.replace("*filter", "*nat\n:PREROUTING ACCEPT [0:0]\n"
                        "-A PREROUTING -p tcp --dport 2222 -j DNAT --to-destination 10.0.0.9:22\nCOMMIT\n*filter")
    rs = loads(dnat, dialect="iptables")
    assert _differences(rs) == {}


@pytest.mark.parametrize("text,dialect,name,family", [
    ("*filter\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -m addrtype --dst-type LOCAL -j DROP\nCOMMIT\n",
     "iptables", "rules.v4", 4),
    ("*filter\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -m addrtype --dst-type LOCAL -j DROP\nCOMMIT\n",
     "iptables", "rules.v6", 6),
    ("table inet f {\n chain out {\n  type filter hook output priority 0; policy accept;\n"
     "  fib daddr type local drop\n }\n}\n", "nftables", "rules.nft", 4),
    ("table inet f {\n chain out {\n  type filter hook output priority 0; policy accept;\n"
     "  fib daddr type local drop\n }\n}\n", "nftables", "rules.nft", 6),
], ids=["ipt4", "ipt6", "nft4", "nft6"])
def test_output_to_loopback_is_local_in_the_space_as_in_the_engine(text, dialect, name, family):
    """127.0.0.0/8 and ::1 are RTN_LOCAL routes (xt_addrtype / nft_fib read
    the route type): on output exactly they are surely dropped; the engine
    agrees on a witness of each side."""
    from ruleanalyzer.engine import evaluate
    from ruleanalyzer.space import witness
    rs = loads(text, dialect=dialect, name=name)
    reach = analyze(rs, "output", family)
    sp = reach.space
    loop = sp.family(4) & sp.prefix("dst", 0x7F000000, 8, 32) if family == 4 else sp.family(6) & sp.eq("dst", 1)
    dropped = reach.dropped
    assert dropped.lower == dropped.upper == sp.wrap(loop) & dropped.upper
    assert not dropped.lower.is_empty()
    assert evaluate(rs, witness(dropped.lower, hook="output")).verdict == "drop"
    assert evaluate(rs, witness(reach.accepted.lower, hook="output")).verdict == "accept"
    assert (reach.accepted.upper & sp.wrap(loop)).is_empty()


#: The same in nft: a verdict map keyed by the address type, its branches
#: worked out once and shared by the hooks whose keys read alike.
NFT_SERVICES = """table ip t {
  chain ep { meta l4proto tcp dnat to 10.244.9.9:80 }
  chain svc {
    ip daddr . tcp dport vmap { 10.96.0.1 . 80 : goto ep, 10.96.0.2 . 80 : goto ep }
    fib daddr type vmap { local : goto ep, broadcast : drop }
  }
  chain pre { type nat hook prerouting priority dstnat; policy accept; jump svc }
  chain out { type nat hook output priority -100; policy accept; jump svc }
  chain fout { type filter hook output priority 0; policy drop; ip daddr 10.244.9.9 accept }
}
"""


def test_output_does_not_reuse_the_arriving_keys_of_an_addrtype_map():
    rs = loads(NFT_SERVICES, dialect="nftables")
    sp = Space(Layout.for_ruleset(rs))
    together = analyze_hooks(rs, list(HOOKS), 4, sp)["output"]
    # the map keyed by ip daddr . tcp dport reads alike on every hook; the
    # address-type map reads the output hook's way: only loopback is local
    rule = rs.tables[0].chains["ep"].rules[0]
    sets = together.rule_sets(rule)
    loopback = sp.wrap(sp.family(4) & sp.prefix("dst", 0x7F000000, 8, 32))
    services = sp.wrap(sp.family(4) & (sp.prefix("dst", 0x0A600001, 32, 32) | sp.prefix("dst", 0x0A600002, 32, 32)))
    assert not sets.matched_lower.is_empty()
    assert not (sets.matched_lower & services).is_empty()
    assert sets.matched_upper <= loopback | services
    assert _differences(rs) == {}
