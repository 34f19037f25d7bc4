"""``diff`` where a changed rule rewrites packets (a DNAT target, a mark's
value): the packets it now makes are outside the packets it matches, and
their verdicts are the change. Judged by the concrete engine: every
arriving packet whose verdict differs between the versions must be
reported, and the report shows one such arriving packet per region the
rewritten packets fall in."""

from __future__ import annotations

import ipaddress
import random

import pytest

from ruleanalyzer import loads
from ruleanalyzer.cli import main
from ruleanalyzer.diff import diff, packet_point
from ruleanalyzer.engine.evaluate import Evaluator
from ruleanalyzer.model import SYN, Packet

NAT = """*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
{nat}
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT {output} [0:0]
-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
{filter}
COMMIT
"""


def ipt(text: str, name: str):
    return loads(text, dialect="iptables", name=name)


def version(target: str, chain: str = "PREROUTING", output: str = "ACCEPT") -> str:
    nat = f"-A {chain} -d 203.0.113.10/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination {target}"
    filt = ("-A FORWARD -d 10.0.0.5/32 -p tcp -m tcp --dport 8080 -j ACCEPT\n"
            "-A OUTPUT -d 10.0.0.5/32 -p tcp -m tcp --dport 8080 -j ACCEPT")
    return NAT.format(nat=nat, filter=filt, output=output)


def syn(src: str, dst: str, dport: int, hook: str = "input") -> Packet:
    return Packet(src=ipaddress.ip_address(src), dst=ipaddress.ip_address(dst), proto=6,
                  sport=40000, dport=dport, flags=SYN, state="new", hook=hook, iif="eth0"
                  if hook != "output" else None)


def test_a_dnat_target_change_that_closes_a_service_is_reported(tmp_path, capsys):
    # 203.0.113.10:80 was translated to 10.0.0.5:8080, which FORWARD
    # accepts; now to 10.0.0.6:8080, which it drops.
    old, new = version("10.0.0.5:8080"), version("10.0.0.6:8080")
    packet = syn("198.51.100.1", "203.0.113.10", 80)
    assert Evaluator(ipt(old, "old")).evaluate(packet).verdict == "accept"
    assert Evaluator(ipt(new, "new")).evaluate(packet).verdict == "drop"
    report = diff(ipt(old, "old"), ipt(new, "new"), findings=False)
    assert report.verdicts_changed
    # the packets each version makes, one region per side, each with a
    # packet as it arrives and what the engine does with it on both
    forward = [r for r in report.rewritten if r.hook == "forward"]
    assert {(r.was, r.now) for r in forward} == {("mixed", "unreached"), ("unreached", "mixed")}
    for r in forward:
        assert str(r.arrival.dst) == "203.0.113.10" and r.arrival.dport == 80
        assert (r.arrival_old.verdict, r.arrival_new.verdict) == ("accept", "drop")
        assert str(r.arrival_old.packet.dst) == "10.0.0.5" and str(r.arrival_new.packet.dst) == "10.0.0.6"
        assert r.connection.old_passes and not r.connection.new_passes
    assert not report.opened and not report.closed
    (tmp_path / "old.rules").write_text(old)
    (tmp_path / "new.rules").write_text(new)
    code = main(["diff", "--no-findings", str(tmp_path / "old.rules"), str(tmp_path / "new.rules")])
    out = capsys.readouterr().out
    assert code == 1
    assert "no verdict changed" not in out
    assert "arriving as tcp 203.0.113.1:1024 -> 203.0.113.10:80 [SYN]" in out
    assert "the handshake passes before, fails now" in out
    assert "made before only [mixed]: tcp from 0.0.0.0/0 to 10.0.0.5/32 dport 8080" in out
    assert "made now only [mixed]: tcp from 0.0.0.0/0 to 10.0.0.6/32 dport 8080" in out
    # Only the states the made packets have: a DNAT makes new and related
    # ones. (Simplified against what conntrack can produce, the region's
    # state cube widens to UNTRACKED, which no DNATed packet has.)
    assert "dport 8080, state new,related, ct_status dnat" in out
    assert "untracked" not in out


def test_an_output_dnat_target_change_is_reported():
    old, new = (version(t, chain="OUTPUT", output="DROP") for t in ("10.0.0.5:8080", "10.0.0.6:8080"))
    packet = syn("192.0.2.1", "203.0.113.10", 80, hook="output")
    assert Evaluator(ipt(old, "old")).evaluate(packet).verdict == "accept"
    assert Evaluator(ipt(new, "new")).evaluate(packet).verdict == "drop"
    report = diff(ipt(old, "old"), ipt(new, "new"), hooks=("output",), findings=False)
    assert report.verdicts_changed
    assert {(r.arrival_old.verdict, r.arrival_new.verdict) for r in report.rewritten} == {("accept", "drop")}


MARK = """*mangle
:PREROUTING ACCEPT [0:0]
-A PREROUTING -s 192.0.2.0/24 -j MARK --set-mark {mark}
COMMIT
*filter
:INPUT DROP [0:0]
-A INPUT -m mark --mark 0x1 -p tcp --dport 22 -j ACCEPT
COMMIT
"""


def test_a_mark_value_change_is_reported():
    old, new = ipt(MARK.format(mark="0x1"), "old"), ipt(MARK.format(mark="0x2"), "new")
    packet = syn("192.0.2.7", "198.51.100.1", 22)
    assert Evaluator(old).evaluate(packet).verdict == "accept"
    assert Evaluator(new).evaluate(packet).verdict == "drop"
    report = diff(old, new, hooks=("input",), findings=False)
    assert report.verdicts_changed
    # the example shown is the one whose verdict moved (SSH), not the first
    # packet of the region (an ICMP echo, dropped by both)
    (before,) = [r for r in report.rewritten if r.now == "unreached"]
    assert before.was == "mixed" and before.arrival.dport == 22
    assert (before.arrival_old.verdict, before.arrival_new.verdict) == ("accept", "drop")
    assert before.arrival_new.packet.mark == 2


def test_a_filter_change_beside_nat_rules_is_not_a_rewrite():
    old = version("10.0.0.5:8080")
    new = old.replace("-A OUTPUT -d 10.0.0.5/32",
                      "-A INPUT -p tcp -m tcp --dport 443 -j ACCEPT\n-A OUTPUT -d 10.0.0.5/32")
    report = diff(ipt(old, "old"), ipt(new, "new"), findings=False)
    assert report.opened and not report.rewritten
    assert {r.witness.dport for r in report.regions} == {443}


def test_a_rewrite_change_that_keeps_every_verdict_is_shown_as_such():
    # The mark a packet leaves with changes (say the one that asks
    # POSTROUTING to masquerade), no verdict does: rewritten regions, whose
    # arriving packet has the same verdict in both versions. (A mark no
    # rule reads is not followed: no region at all.)
    mark = """*mangle
:PREROUTING ACCEPT [0:0]
-A PREROUTING -s 192.0.2.0/24 -j MARK --set-mark {mark}
COMMIT
*filter
:INPUT ACCEPT [0:0]
-A INPUT -m mark --mark 0x4000 -j ACCEPT
COMMIT
"""
    report = diff(ipt(mark.format(mark="0x4000"), "old"), ipt(mark.format(mark="0x0"), "new"),
                  hooks=("input",), findings=False)
    assert report.rewritten and not (report.opened or report.closed or report.unknown)
    for r in report.rewritten:
        assert r.arrival_old.verdict == r.arrival_new.verdict == "accept"
        assert r.connection is None


# -- differential: random NAT rulesets, random edits ------------------------

PUBLIC = ("203.0.113.10", "203.0.113.11")
BACKENDS = ("10.0.0.5", "10.0.0.6", "10.0.0.7")
PORTS = (80, 443, 8080)


def _dnat(rnd: random.Random) -> str:
    match = f"-d {rnd.choice(PUBLIC)}/32 -p tcp -m tcp --dport {rnd.choice(PORTS[:2])}"
    if rnd.random() < 0.3:
        match = "-s 198.51.100.0/24 " + match
    return f"-A PREROUTING {match} -j DNAT --to-destination {rnd.choice(BACKENDS)}:{rnd.choice(PORTS)}"


def _accept(rnd: random.Random) -> str:
    chain = rnd.choice(("FORWARD", "INPUT"))
    return f"-A {chain} -d {rnd.choice(BACKENDS + PUBLIC)}/32 -p tcp -m tcp --dport {rnd.choice(PORTS)} -j ACCEPT"


def _edit(rnd: random.Random, nat: list, filt: list) -> tuple[list, list]:
    nat, filt = list(nat), list(filt)
    kind = rnd.choice(("target", "target", "remove", "add", "filter"))
    if kind == "target" and nat:
        i = rnd.randrange(len(nat))
        head = nat[i].rsplit(" ", 1)[0]
        nat[i] = f"{head} {rnd.choice(BACKENDS)}:{rnd.choice(PORTS)}"
    elif kind == "remove" and nat:
        nat.pop(rnd.randrange(len(nat)))
    elif kind == "add" or not nat:
        nat.insert(rnd.randint(0, len(nat)), _dnat(rnd))
    else:
        filt.insert(rnd.randint(0, len(filt)), _accept(rnd))
    return nat, filt


@pytest.mark.parametrize("seed", range(60))
def test_differential_nat_edits(seed):
    rnd = random.Random(seed)
    nat = [_dnat(rnd) for _ in range(rnd.randint(1, 3))]
    filt = [_accept(rnd) for _ in range(rnd.randint(1, 3))]
    new_nat, new_filt = _edit(rnd, nat, filt)
    text = lambda n, f: NAT.format(nat="\n".join(n), filter="\n".join(f), output="ACCEPT")  # noqa: E731
    old, new = ipt(text(nat, filt), "old"), ipt(text(new_nat, new_filt), "new")
    ev_old, ev_new = Evaluator(old), Evaluator(new)
    differing = [p for p in (syn(src, dst, port)
                             for src in ("198.51.100.9", "192.0.2.9")
                             for dst in PUBLIC + BACKENDS for port in PORTS)
                 if ev_old.evaluate(p).verdict != ev_new.evaluate(p).verdict]
    report = diff(old, new, hooks=("input", "forward"), findings=False, connections=False)
    if differing:
        assert report.verdicts_changed, [p.describe() for p in differing]
    for r in report.regions:
        if r.kind != "rewritten":
            assert r.confirmed, r.note
            continue
        # every rewritten region is shown with a packet as it arrives (these
        # rules rewrite once), which the version that makes the region's
        # packets turns into one of them
        assert r.arrival is not None, r.text
        made = r.arrival_old if r.now == "unreached" else r.arrival_new
        sp = report.space
        # (the engine's packet out does not carry the ct status NAT sets)
        status = [v for v in sp.bdd.vars if v.startswith("ct_status:")]
        point = sp.wrap(sp.exist(status, packet_point(sp, made.packet).node))
        assert r.packets.intersects(point), (r.text, made.packet.describe())


NUMGEN = """table ip nat {{
  chain prerouting {{ type nat hook prerouting priority dstnat; policy accept;
    ip daddr 203.0.113.10 tcp dport 80 dnat to numgen inc mod 2 map {{ 0 : 10.0.0.5, 1 : {backend} }}
  }}
}}
table ip filter {{
  chain forward {{ type filter hook forward priority 0; policy drop;
    ct state established,related accept
    ip daddr {{ 10.0.0.5, 10.0.0.6 }} tcp dport 80 accept
  }}
}}
"""


def test_a_load_balanced_backend_replaced_by_one_the_filter_drops():
    # numgen sends every other connection to the second backend: before
    # 10.0.0.6 (accepted), now 10.0.0.7 (dropped). The engine answers the
    # arriving packet "accept" before and "unknown, depends on numgen" now.
    old, new = (loads(NUMGEN.format(backend=b), dialect="nftables", name=n)
                for b, n in (("10.0.0.6", "old"), ("10.0.0.7", "new")))
    report = diff(old, new, hooks=("forward",), findings=False)
    assert report.verdicts_changed and report.rewritten
    for r in report.rewritten:
        assert str(r.arrival.dst) == "203.0.113.10"
        assert r.arrival_old.verdict == "accept" and r.arrival_new.verdict == "unknown"
        assert any("numgen" in d for d in r.arrival_new.depends_on)
    # made before only: packets to 10.0.0.6; made now only: to 10.0.0.7
    assert {(r.now == "unreached", r.text.split(" to ")[1].split("/")[0]) for r in report.rewritten} == \
        {(True, "10.0.0.6"), (False, "10.0.0.7")}


# -- host snapshots: routes, addresses and sysctls decide verdicts too -------

SNAPSHOT_RULES = """*filter
:INPUT DROP [0:0]
:FORWARD {forward} [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp --dport 22 -j ACCEPT
COMMIT
"""


def _snapshot(tmp_path, name, *, address="192.0.2.10/24", forward="1", policy="DROP"):
    from .snapshot_factory import make_snapshot

    return make_snapshot(tmp_path / name, "host", iptables=SNAPSHOT_RULES.format(forward=policy),
                         interfaces={"eth0": [address], "eth1": ["10.1.0.1/24"]},
                         default=("192.0.2.1", "eth0"), sysctls={"net.ipv4.ip_forward": forward})


def test_snapshots_with_the_same_rules_and_an_address_moved(tmp_path):
    # The rules are the same rule for rule; the host's address moved from
    # .10 to .11: SSH to .10 was delivered (INPUT accepts it) and is now
    # forwarded (FORWARD drops it). Before, "no verdict changed (the
    # rulesets are the same rule for rule)".
    from ruleanalyzer import load

    old = load(_snapshot(tmp_path, "a", address="192.0.2.10/24"))
    new = load(_snapshot(tmp_path, "b", address="192.0.2.11/24"))
    report = diff(old, new, findings=False)
    assert report.host_changed and report.changed_rules == 0
    moved = {(str(r.arrival.dst), r.arrival_old.verdict, r.arrival_new.verdict)
             for r in report.rewritten if r.arrival is not None and r.arrival.dport == 22}
    assert ("192.0.2.10", "accept", "drop") in moved and ("192.0.2.11", "drop", "accept") in moved


def test_ip_forward_switched_on_opens_what_forward_accepts(tmp_path):
    from ruleanalyzer import load

    old = load(_snapshot(tmp_path, "a", forward="0", policy="ACCEPT"))
    new = load(_snapshot(tmp_path, "b", forward="1", policy="ACCEPT"))
    report = diff(old, new, hooks=("forward",), findings=False)
    assert report.opened and not report.closed
    for r in report.opened:
        assert r.confirmed, r.note
        assert r.old.verdict == "drop" and r.old.decided_by is None and "ip_forward=0" in r.old.routing
    assert not diff(new, new, hooks=("forward",), findings=False).verdicts_changed


NFT_DNAT = """table ip nat {{
  chain prerouting {{ type nat hook prerouting priority dstnat; policy accept;
    ip daddr 203.0.113.10 tcp dport 80 dnat to {target}
  }}
}}
table ip filter {{
  chain forward {{ type filter hook forward priority 0; policy drop;
    ip daddr 10.0.0.5 tcp dport 8080 accept
  }}
  chain input {{ type filter hook input priority 0; policy drop;
    meta mark {mark} tcp dport 22 accept
  }}
}}
table ip mangle {{
  chain prerouting {{ type filter hook prerouting priority mangle; policy accept;
    ip saddr 192.0.2.0/24 meta mark set {mark}
  }}
}}
"""


@pytest.mark.parametrize("change", ["dnat", "mark"])
def test_nftables_rewrite_changes_are_reported_with_the_arriving_packet(change):
    # The same two changes in nftables' own words: the DNAT target, and the
    # value a mangle chain sets (the filter still asks for the old one).
    old_text = NFT_DNAT.format(target="10.0.0.5:8080", mark="0x1")
    if change == "dnat":
        new_text = NFT_DNAT.format(target="10.0.0.6:8080", mark="0x1")
        packet, hook = syn("198.51.100.1", "203.0.113.10", 80), "forward"
    else:
        new_text = old_text.replace("meta mark set 0x1", "meta mark set 0x2")
        packet, hook = syn("192.0.2.7", "198.51.100.1", 22), "input"
    old, new = (loads(t, dialect="nftables", name=n) for t, n in ((old_text, "old"), (new_text, "new")))
    assert Evaluator(old).evaluate(packet).verdict == "accept"
    assert Evaluator(new).evaluate(packet).verdict == "drop"
    report = diff(old, new, hooks=(hook,), findings=False)
    assert report.verdicts_changed
    shown = [r for r in report.rewritten if r.arrival is not None and r.arrival.dport == packet.dport]
    assert shown and all((r.arrival_old.verdict, r.arrival_new.verdict) == ("accept", "drop") for r in shown)
