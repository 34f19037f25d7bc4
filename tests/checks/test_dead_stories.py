"""What RA101-RA103 say: the rule that really decides, named in its own
chain, and the category by the verdicts packets really get."""

from __future__ import annotations

from pathlib import Path

from ruleanalyzer.audit import run_audit

HERE = Path(__file__).parent


def _findings(name: str, codes: list[str]):
    return run_audit([HERE / name], select=codes).findings


def test_a_jump_is_not_the_cause_the_chain_it_enters_is():
    """INPUT jumps to blocklist, whose DROP takes the rule's packets: the
    finding names blocklist's rule and says which jump leads there."""
    [f] = _findings("RA101/trigger_jump.rules", ["RA101"])
    assert "taken first by filter blocklist rule 1 (line 7)" in f.message
    assert f.details == ["blocklist rule 1 (line 7) (drop, entered via INPUT rule 1 (line 4)): "
                         "-A blocklist -s 203.0.113.0/24 -j DROP"]


def test_a_jump_into_a_chain_that_always_drops_is_a_drop():
    [f] = _findings("RA101/trigger_dump_chain.rules", ["RA101", "RA102"])
    assert f.code == "RA101"
    assert f.message.startswith("rule can never match: the packets it would drop (through chain DUMP) "
                                "are taken first by INPUT rule 1 (line 7)")
    [g] = _findings("RA102/trigger_dump_chain.rules", ["RA101", "RA102"])
    assert g.code == "RA102" and g.message.endswith("(dropped all the same)")


def test_a_chain_entered_only_by_dead_jumps_is_told_once():
    """DUMP's rules are dead because the one jump into it is: one finding,
    on the jump, which says so — not one more per rule of DUMP."""
    [f] = _findings("RA102/trigger_dump_chain.rules", ["RA101", "RA102", "RA103"])
    assert f.details[-1] == "chain DUMP is entered only by rules that never match: its 2 rule(s) never run either"


def test_rules_before_the_jump_that_take_the_packets_are_named():
    [f] = _findings("RA102/trigger_caller_site.nft", ["RA101", "RA102", "RA103"])
    assert f.code == "RA102" and f.where.line == 12
    assert f.message == ("rule can never match: f input rule 1 (line 7) already takes every packet it "
                         "matches before input rule 2 (line 8) jumps to admin (accepted all the same)")


def test_a_rule_several_cloud_units_share_is_told_once():
    """GCP targets (tags) are separate firewalls, but a hierarchical
    policy's rule is one written rule: dead for every target, one finding."""
    import json

    from ruleanalyzer import loads

    doc = {"firewalls": [
        {"name": f"allow-{t}", "priority": 1000, "direction": "INGRESS", "sourceRanges": ["0.0.0.0/0"],
         "allowed": [{"IPProtocol": "tcp", "ports": ["80"]}], "targetTags": [t]} for t in ("a", "b")],
        "firewallPolicys": [{"name": "p", "type": "HIERARCHY", "rules": [
            {"priority": 700, "direction": "INGRESS", "action": "deny",
             "match": {"srcIpRanges": ["0.0.0.0/0"], "layer4Configs": [{"ipProtocol": "all"}]}},
            {"priority": 800, "direction": "INGRESS", "action": "allow",
             "match": {"srcIpRanges": ["198.51.100.0/24"], "layer4Configs": [{"ipProtocol": "tcp"}]}}]}]}
    rs = loads(json.dumps(doc), dialect="gcp", name="effective.json")
    found = [f for f in run_audit([rs], select=["RA101"]).findings if f.where.ident == "800"]
    assert len(found) == 1
    assert any(d.startswith("the same for ") for d in found[0].details)


def test_an_ipv6_rule_is_explained_by_the_ipv6_path():
    """Not "`nfproto ipv6` never holds" (what the IPv4 path would say): the
    condition the IPv6 packets entering the chain never meet."""
    [f] = _findings("RA103/trigger_untracked_ndp.nft", ["RA103"])
    assert f.message == ("rule can never match: `icmp_type 135` never holds for packets "
                         "that enter chain newpkt")
