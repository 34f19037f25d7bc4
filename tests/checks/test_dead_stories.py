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


def test_the_blocker_is_found_among_many_rules_that_take_nothing_of_it():
    """Long chains (the stories look only at rules that can meet a dead
    rule's packets, found block by block): the one rule that takes them,
    deep among rules for other ports, is named — in the rule's own chain,
    and in a chain an earlier jump enters."""
    from ruleanalyzer import loads

    lines = ["*filter", ":INPUT DROP [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]",
             ":early - [0:0]", ":late - [0:0]"]
    lines += [f"-A INPUT -p tcp --dport {2000 + i} -j ACCEPT" for i in range(23)]
    lines.append("-A INPUT -s 10.0.0.0/8 -p tcp --dport 22 -j DROP")  # rule 24
    lines += [f"-A INPUT -p udp --dport {3000 + i} -j ACCEPT" for i in range(20)]
    lines.append("-A INPUT -s 10.1.2.3 -p tcp --dport 22 -j ACCEPT")  # rule 45: dead
    lines.append("-A INPUT -j early")
    lines.append("-A INPUT -p tcp --dport 443 -j late")
    lines += [f"-A early -p tcp --dport {4000 + i} -j DROP" for i in range(37)]
    lines.append("-A early -p tcp --dport 443 -s 192.0.2.0/24 -j DROP")  # rule 38
    lines += [f"-A early -p udp --dport {5000 + i} -j DROP" for i in range(30)]
    lines.append("-A late -s 192.0.2.7 -j ACCEPT")  # dead: early rule 38 drops them
    lines += ["COMMIT", ""]
    rs = loads("\n".join(lines), dialect="iptables", name="long.rules")
    found = {f.where.line: f for f in run_audit([rs], select=["RA101", "RA102", "RA103"]).findings}
    assert sorted(found) == [51, 122]
    assert "taken first by INPUT rule 24 (line 30)," in found[51].message
    assert found[51].code == "RA101"
    assert "early rule 38 (line 91)" in found[122].message


def test_a_rule_voided_by_a_dnat_names_the_dnat_not_the_mark_set_on_the_way():
    """kube-proxy's shape: the service chain marks the packet (KUBE-MARK-MASQ)
    and DNATs it; a later filter rule on the service address can never
    match. The DNAT of the destination it tests is the cause."""
    from ruleanalyzer import loads

    text = ("*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SVC-A - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n"
            "-A PREROUTING -d 10.96.0.10/32 -p tcp --dport 53 -j KUBE-SVC-A\n"
            "-A KUBE-SVC-A -j KUBE-MARK-MASQ\n"
            "-A KUBE-SVC-A -p tcp -j DNAT --to-destination 10.244.1.5:53\n"
            "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000\nCOMMIT\n"
            "*filter\n:FORWARD ACCEPT [0:0]\n"
            "-A FORWARD -m conntrack --ctstate NEW -d 10.96.0.10/32 -p tcp --dport 53 -j REJECT\nCOMMIT\n")
    rs = loads(text, dialect="iptables", name="svc.rules")
    [f] = run_audit([rs], select=["RA101", "RA102", "RA103"], include_generated=True).findings
    assert f.message == ("rule can never match: nat KUBE-SVC-A rule 2 (line 7) rewrites them (DNAT) first, "
                         "so `-d 10.96.0.10/32 --dport 53` never holds")
    assert f.related[0].where.line == 7 and "DNAT" in f.details[0]


def test_the_way_in_that_admits_the_packets_is_found_behind_many_that_do_not():
    """A rule of a chain entered by many ways: the 80 jumps from mid1
    admit its packets there but mid1 is entered only from 10.1/16; the one
    way that admits them all along (mid2's second jump) is where INPUT's
    ACCEPT took them first. A rule no way admits gets the callers story,
    naming the contradicting condition."""
    from ruleanalyzer import loads

    lines = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]",
             ":mid1 - [0:0]", ":mid2 - [0:0]", ":deep - [0:0]",
             "-A INPUT -s 10.1.0.0/16 -j mid1",
             "-A INPUT -p tcp --dport 22 -j ACCEPT",
             "-A INPUT -s 10.2.0.0/16 -j mid2"]
    lines += [f"-A mid1 -p tcp --sport {1000 + i} -j deep" for i in range(80)]
    lines += ["-A mid2 -p udp -j deep", "-A mid2 -p tcp -j deep",
              "-A deep -s 10.2.0.0/16 -p tcp --dport 22 -j DROP",  # line 93
              "-A deep -s 10.3.0.0/16 -p tcp -j DROP", "COMMIT", ""]
    rs = loads("\n".join(lines), dialect="iptables", name="ways.rules")
    found = {f.where.line: f for f in run_audit([rs], select=["RA101", "RA102", "RA103"]).findings}
    assert sorted(found) == [93, 94]
    assert found[93].code == "RA101"
    assert found[93].message == ("rule can never match: the packets it would drop are taken first by filter "
                                 "INPUT rule 2 (line 9) before mid2 rule 2 (line 92) jumps to deep, "
                                 "and some are accepted instead")
    assert found[94].code == "RA103"
    assert found[94].message == ("rule can never match: its `-p tcp` contradicts how chain deep is entered: "
                                 "`-p udp` (mid2 rule 1 (line 91))")


def test_a_jump_whose_chain_decides_with_many_rules_is_judged_by_the_verdicts():
    """The jump into chk takes the rule's packets, and chk drops them with
    eight rules (more than a cover names): the verdicts the packets really
    get tell shadowed (an ACCEPT) from redundant (a DROP)."""
    from ruleanalyzer import loads

    def finding(verdict: str):
        lines = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]", ":chk - [0:0]",
                 "-A INPUT -p tcp --dport 22 -j chk", f"-A INPUT -p tcp --dport 22 -j {verdict}"]
        lines += [f"-A chk -s {i * 32}.0.0.0/3 -j DROP" for i in range(8)] + ["COMMIT", ""]
        rs = loads("\n".join(lines), dialect="iptables", name="v.rules")
        [f] = run_audit([rs], select=["RA101", "RA102", "RA103"]).findings
        return f.code, f.message

    assert finding("ACCEPT") == ("RA101", "rule can never match: the packets it would accept are taken first by "
                                          "INPUT rule 1 (line 6), and some are dropped instead")
    assert finding("DROP") == ("RA102", "rule can never match: INPUT rule 1 (line 6) already takes every packet "
                                        "it matches (dropped all the same)")


def test_conditions_that_exclude_each_other_only_in_valid_packets_or_the_family(tmp_path):
    """RA103 names the condition no packet of the table's family meets, and
    a pair that only the packets' validity sets apart (a fragment offset
    means no transport header): the conditions are met with the family's
    valid packets, not compared raw."""
    path = tmp_path / "own.nft"
    path.write_text("table ip t {\n  chain input {\n    type filter hook input priority 0; policy accept;\n"
                    "    meta nfproto ipv6 ip saddr 10.0.0.1 drop\n"
                    "    ip frag-off 100 tcp dport 22 drop\n  }\n}\n")
    found = sorted(run_audit([path], select=["RA103"]).findings, key=lambda f: f.where.line)
    assert [f.message for f in found] == [
        "rule can never match: no packet of its table's family satisfies `family 6`",
        "rule can never match: its conditions `ipfrag 100` and `dport 22` exclude each other"]
