"""The BDD order a layout picks for a ruleset (``Layout.on_top``) changes
how much work the walk does, never what an audit reports: the sets are the
same in any order, and witnesses and descriptions are read in the
canonical order."""

from pathlib import Path

import pytest

from ruleanalyzer.audit import run_audit
from ruleanalyzer.space import fields as fields_mod

CHECKS = Path(__file__).resolve().parent.parent / "checks"
#: Checks whose findings quote an example packet or a region of packets.
WITH_EXAMPLES = ("RA101", "RA102", "RA201", "RA204", "RA205", "RA401", "RA403")
FIXTURES = sorted(p for code in WITH_EXAMPLES for p in (CHECKS / code).glob("trigger*"))
#: Every field a layout may move on top, in the order it would.
EVERY_TOP = ("dst_type", "state", "ct_status", "flags", "mark", "ttl")


def _findings(path: Path) -> list:
    result = run_audit([str(path)], include_generated=True)
    return [(f.code, f.severity, f.where.line if f.where else None, f.message, tuple(f.details))
            for found in (result.findings, result.suppressed, result.generated) for f in found]


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_findings_do_not_depend_on_the_bdd_order(path, monkeypatch):
    usual = _findings(path)
    monkeypatch.setattr(fields_mod, "_rare_fields", lambda ruleset: EVERY_TOP)
    moved = _findings(path)
    assert moved == usual


KUBE = """*nat
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:MASQ - [0:0]
:SVC - [0:0]
:SEP0 - [0:0]
:SEP1 - [0:0]
-A PREROUTING -d 172.18.0.1/32 -p tcp --dport 80 -j SVC
-A PREROUTING -d 172.18.0.2/32 -p udp --dport 53 -j DNAT --to-destination 100.76.0.9:5353
-A OUTPUT -d 172.18.0.1/32 -p tcp --dport 80 -j SVC
-A POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE
-A MASQ -j MARK --set-xmark 0x4000/0x4000
-A SVC ! -s 100.76.0.0/14 -d 172.18.0.1/32 -p tcp --dport 80 -j MASQ
-A SVC -m statistic --mode random --probability 0.5 -j SEP0
-A SVC -j SEP1
-A SEP0 -s 100.76.0.5/32 -j MASQ
-A SEP0 -p tcp -j DNAT --to-destination 100.76.0.5:8080
-A SEP1 -s 100.76.0.6/32 -j MASQ
-A SEP1 -p tcp -j DNAT --to-destination 100.76.0.6:8443
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -d 127.0.0.0/8 ! -s 127.0.0.0/8 -j DROP
-A INPUT -m ttl --ttl-lt 3 -m conntrack --ctstate NEW -j DROP
-A FORWARD -m conntrack --ctstate INVALID -j DROP
-A FORWARD -m mark --mark 0x4000/0x4000 -j ACCEPT
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -d 100.76.0.6/32 -p tcp --dport 8443 -j ACCEPT
-A OUTPUT -m conntrack --ctstate NEW -d 172.18.0.0/16 -j REJECT
COMMIT
"""


def test_walk_sets_read_the_same_in_either_order(monkeypatch):
    """Every rule's reaching and matched sets of a kube-proxy-shaped walk
    (unions of parts that tell the moved fields apart) give the same
    witness and the same description whichever fields lie on top."""
    from ruleanalyzer import loads
    from ruleanalyzer.space import describe, witness
    from ruleanalyzer.space.reach import analyze_hooks

    ruleset = loads(KUBE, dialect="iptables")

    def read():
        out = []
        for hook, result in analyze_hooks(ruleset, ("input", "forward", "output"), 4).items():
            for rule in result.rules():
                sets = result.rule_sets(rule)
                for name in ("reaching_upper", "reaching_lower", "matched_upper"):
                    packets = getattr(sets, name)
                    if not packets.is_empty():
                        out.append((hook, rule.text, name, witness(packets, hook), describe(packets, 4)))
        return out

    usual = read()
    monkeypatch.setattr(fields_mod, "_rare_fields", lambda ruleset: EVERY_TOP)
    moved = read()
    assert len(usual) > 30 and moved == usual


def test_a_ruleset_copying_a_field_keeps_the_canonical_order(monkeypatch):
    """CONNMARK --save-mark is imaged exactly only up to a BDD size the
    order changes (``reach.COPY_NODES``): such a ruleset keeps the order."""
    from ruleanalyzer import loads
    from ruleanalyzer.space.fields import Layout

    monkeypatch.setattr(fields_mod, "RARE_MIN_RULES", 1)
    monkeypatch.setattr(fields_mod, "RARE_PER_RULES", 2)
    plain = KUBE.replace("-A MASQ -j MARK", "-A MASQ -j CONNMARK --set-mark 1\n-A MASQ -j MARK")
    assert Layout.for_ruleset(loads(plain, dialect="iptables")).on_top
    saves = KUBE.replace("-A MASQ -j MARK", "-A MASQ -j CONNMARK --save-mark\n-A MASQ -j MARK")
    layout = Layout.for_ruleset(loads(saves, dialect="iptables"))
    assert layout.on_top == () and layout.canonical() is layout


KUBE_NFT = """table ip kp {
\tchain filter-forward {
\t\ttype filter hook forward priority -110; policy accept;
\t\tct state new jump endpoints-check
\t}
\tchain filter-output {
\t\ttype filter hook output priority -110; policy accept;
\t\tct state new jump endpoints-check
\t}
\tchain nat-prerouting {
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t\tjump services
\t}
\tchain nat-postrouting {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\tmeta mark & 0x00004000 == 0x00000000 return
\t\tmasquerade fully-random
\t}
\tchain endpoints-check {
\t\tip daddr 172.18.0.9 tcp dport 80 reject
\t}
\tchain services {
\t\tip daddr 172.18.0.1 tcp dport 80 goto svc
\t\tip daddr 172.18.0.2 udp dport 53 goto svc2
\t}
\tchain svc {
\t\tip saddr != 100.76.0.0/14 meta mark set meta mark | 0x00004000
\t\tnumgen random mod 2 vmap { 0 : goto ep0, 1 : goto ep1 }
\t}
\tchain svc2 {
\t\tmeta l4proto udp dnat to 100.76.0.9:5353
\t}
\tchain ep0 {
\t\tmeta l4proto tcp dnat to 100.76.0.5:8080
\t}
\tchain ep1 {
\t\tmeta l4proto tcp dnat to 100.76.0.6:8443
\t}
}
"""


@pytest.mark.parametrize("text, dialect, top", [
    # kube-proxy's iptables mode: the state decides verdicts (FORWARD) on translated packets
    (KUBE, "iptables", ("dst_type", "state", "ct_status", "flags", "mark", "ttl")),
    # its nftables mode: the state only guards jumps (and the mark is set to
    # a computed value, not read)
    (KUBE_NFT.replace("\t\tip saddr != 100.76.0.0/14 meta mark set meta mark | 0x00004000\n", "\t\tip saddr != 100.76.0.0/14 meta mark set ct mark | 0x00004000\n"),
     "nftables", ("mark", "ttl")),
    # ... and with the mark read exactly (a plain set here), as big DNAT
    # images as kube-iptables': the state on top parts them from the rest
    (KUBE_NFT.replace("meta mark set meta mark | 0x00004000", "meta mark set 0x00004000"), "nftables",
     ("dst_type", "state", "ct_status", "flags", "mark", "ttl")),
    # no translation: nothing splits sets by state all over their addresses
    (KUBE.replace("-j DNAT --to-destination", "-j ACCEPT -m comment --comment"), "iptables",
     ("mark", "ttl")),
    # a stateful firewall testing the state (and the mark) in many rules: they stay below
    (KUBE.replace("-A FORWARD -d 100.76.0.6/32", "-A FORWARD -m conntrack --ctstate NEW -m mark --mark 1 "
                  "-j DROP\n" * 20 + "-A FORWARD -d 100.76.0.6/32"), "iptables", ("ttl",)),
], ids=["kube-iptables", "kube-nftables", "kube-nftables-marks", "no-dnat", "stateful"])
def test_the_order_is_chosen_per_ruleset(text, dialect, top, monkeypatch):
    """Which fields go on top, per shape (thresholds scaled down: a field
    is rare here when at most one rule in 3 tests it)."""
    from ruleanalyzer import loads
    from ruleanalyzer.space.fields import Layout

    ruleset = loads(text, dialect=dialect)
    usual = Layout.for_ruleset(ruleset)
    assert usual.on_top == ()  # below RARE_MIN_RULES: as ever
    monkeypatch.setattr(fields_mod, "RARE_MIN_RULES", 1)
    monkeypatch.setattr(fields_mod, "RARE_PER_RULES", 3)
    monkeypatch.setattr(fields_mod, "MOVE_CONNTRACK", True)  # (the default)
    layout = Layout.for_ruleset(ruleset)
    assert layout.on_top == top and list(layout.fields)[1:len(top) + 1] == list(top)
    assert list(layout.canonical().fields) == list(usual.fields)
