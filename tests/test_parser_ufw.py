"""ufw input: status listings, command scripts and rules files give the host
ufw really builds, and the same verdicts whichever form describes it.

The ``webserver.*`` fixtures were produced by running the real ufw 0.36.2
(in a private namespace) on ``webserver.sh``: its status listings, user
rules and the resulting ``iptables-save``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ruleanalyzer import loads
from ruleanalyzer.engine import evaluate
from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.loader import load
from ruleanalyzer.packets import make_packet
from ruleanalyzer.parsers import ufw

HERE = Path(__file__).parent / "parsers" / "ufw"


def verdict(ruleset, **packet):
    packet.setdefault("flags", "SYN")
    return evaluate(ruleset, make_packet(**packet)).verdict


def _packets():
    out = []
    for src in ("198.51.100.66", "10.1.2.3", "203.0.113.5", "192.0.2.9", "2001:db8:1::5",
                "2001:db8:2::5", "192.168.1.7"):
        dst = "2001:db8::1" if ":" in src else "192.0.2.1"
        for dport in (22, 80, 443, 5432, 9100, 25, 137, 8080):
            for hook in ("input", "output", "forward"):
                for iif in ("eth0", "eth1"):
                    kw = dict(src=src, dst=dst, dport=dport, flags="SYN", hook=hook, proto="tcp")
                    if hook != "output":
                        kw["iif"] = iif
                    if hook != "input":
                        kw["oif"] = "eth0"
                    if hook == "output":
                        kw["src"], kw["dst"] = dst, src
                    out.append(make_packet(**kw))
    return out


def test_status_listings_script_and_user_rules_give_the_same_verdicts():
    forms = {
        "script": loads((HERE / "webserver.sh").read_text(), dialect="ufw"),
        "status verbose": loads((HERE / "webserver.status-verbose.txt").read_text(), dialect="ufw"),
        "status numbered": loads((HERE / "webserver.status-numbered.txt").read_text(), dialect="ufw"),
        "user.rules": load(HERE / "webserver.user.rules", HERE / "webserver.user6.rules", dialect="ufw"),
    }
    for packet in _packets():
        answers = {name: evaluate(rs, packet).verdict for name, rs in forms.items()}
        assert len(set(answers.values())) == 1, (packet.describe(), packet.hook, answers)


def test_model_agrees_with_ufws_own_iptables_save():
    ours = loads((HERE / "webserver.sh").read_text(), dialect="ufw")
    real = load(HERE / "webserver.iptables-save.v4", HERE / "webserver.iptables-save.v6",
                dialect="iptables")
    for packet in _packets():
        if packet.family == 6:
            continue  # the iptables reader leaves before6's "-m rt" undecided
        a, b = evaluate(ours, packet), evaluate(real, packet)
        assert a.verdict == b.verdict, packet.describe()
        if a.decided_by and b.decided_by:
            assert (a.decided_by.chain.name, a.decided_by.rule and a.decided_by.rule.index) == \
                   (b.decided_by.chain.name, b.decided_by.rule and b.decided_by.rule.index)


def test_layout_has_ufws_chains_and_policies():
    rs = loads("ufw allow 22/tcp\n", dialect="ufw")
    v4 = rs.table("filter", "ip")
    for name in ("ufw-before-input", "ufw-user-input", "ufw-after-input", "ufw-reject-input",
                 "ufw-track-output", "ufw-not-local", "ufw-skip-to-policy-input", "ufw-logging-deny"):
        assert name in v4.chains
    assert v4.chains["INPUT"].policy == "drop" and v4.chains["OUTPUT"].policy == "accept"
    assert "ufw6-user-input" in rs.table("filter", "ip6").chains
    assert "before.rules" in rs.meta["assumed"]
    assert any(d.level == "info" and "assumed" in d.message for d in rs.diagnostics)


def test_commands_decide_with_located_rules():
    rs = loads("sudo ufw allow 22/tcp\nufw deny from 203.0.113.0/24\n", dialect="ufw", name="run.sh")
    result = evaluate(rs, make_packet(src="192.0.2.1", dst="198.51.100.1", dport=22, flags="SYN"))
    assert result.verdict == "accept"
    assert (result.decided_by.rule.location.file, result.decided_by.rule.location.line) == ("run.sh", 1)
    assert verdict(rs, src="192.0.2.1", dst="198.51.100.1", dport=23) == "drop"
    # replies to the host's own connections pass (ufw-track-output + ESTABLISHED)
    assert verdict(rs, src="192.0.2.1", dst="198.51.100.1", sport=443, dport=40000,
                   flags="SYN,ACK", state="established") == "accept"


def test_a_rule_without_addresses_applies_to_both_families_an_address_fixes_one():
    rs = loads("ufw allow 80/tcp\nufw allow from 10.0.0.0/8 to any port 22 proto tcp\n", dialect="ufw")
    assert verdict(rs, src="2001:db8::5", dst="2001:db8::1", dport=80) == "accept"
    assert verdict(rs, src="10.0.0.5", dst="192.0.2.1", dport=22) == "accept"
    assert verdict(rs, src="2001:db8::5", dst="2001:db8::1", dport=22) == "drop"


def test_insert_puts_the_rule_first():
    rs = loads("ufw allow 22/tcp\nufw insert 1 deny from 198.51.100.66\n", dialect="ufw")
    assert verdict(rs, src="198.51.100.66", dst="192.0.2.1", dport=22) == "drop"
    assert verdict(rs, src="198.51.100.67", dst="192.0.2.1", dport=22) == "accept"


def test_delete_and_default_commands():
    rs = loads("ufw allow 22/tcp\nufw delete allow 22/tcp\nufw default allow incoming\n", dialect="ufw")
    assert verdict(rs, src="192.0.2.1", dst="198.51.100.1", dport=22) == "accept"
    assert not rs.table("filter", "ip").chains["ufw-user-input"].rules
    assert verdict(loads("ufw allow 22\nufw delete 1\n", dialect="ufw"),
                   src="192.0.2.1", dst="198.51.100.1", dport=22) == "drop"


def test_limit_is_unknown_because_it_depends_on_the_rate():
    rs = loads("ufw limit ssh\n", dialect="ufw")
    result = evaluate(rs, make_packet(src="192.0.2.1", dst="198.51.100.1", dport=22, flags="SYN"))
    assert result.verdict == "unknown"
    assert any("recent" in d for d in result.depends_on)


def test_default_reject_rejects():
    rs = loads("ufw default reject incoming\n", dialect="ufw")
    result = evaluate(rs, make_packet(src="192.0.2.1", dst="198.51.100.1", dport=22, flags="SYN"))
    assert result.verdict == "drop" and result.decided_by.chain.name == "ufw-reject-input"


def test_route_rules_filter_forwarded_traffic():
    rs = loads("ufw route allow in on eth1 out on eth0 from 192.168.1.0/24\n", dialect="ufw")
    assert verdict(rs, src="192.168.1.5", dst="198.51.100.1", dport=443, hook="forward",
                   iif="eth1", oif="eth0") == "accept"
    assert verdict(rs, src="192.168.1.5", dst="198.51.100.1", dport=443, hook="forward",
                   iif="eth0", oif="eth1") == "drop"


def test_inactive_status_accepts_everything_and_says_so():
    rs = loads("Status: inactive\n", dialect="ufw")
    assert verdict(rs, src="192.0.2.1", dst="198.51.100.1", dport=22) == "accept"
    assert any("inactive" in d.message for d in rs.diagnostics)


def test_application_profiles_builtin_and_given():
    rs = loads('ufw allow "Nginx Full"\n', dialect="ufw")
    assert verdict(rs, src="192.0.2.1", dst="198.51.100.1", dport=443) == "accept"
    assert verdict(rs, src="192.0.2.1", dst="198.51.100.1", dport=8443) == "drop"


def test_unknown_application_is_a_located_diagnostic_and_unknown_verdict():
    rs = loads("ufw allow MyApp\n", dialect="ufw", name="run.sh")
    [diag] = [d for d in rs.diagnostics if "MyApp" in d.message]
    assert (diag.location.file, diag.location.line) == ("run.sh", 1)
    assert verdict(rs, src="192.0.2.1", dst="198.51.100.1", dport=443) == "unknown"


def test_profile_file_given_alongside_defines_the_app(tmp_path):
    (tmp_path / "myapp").write_text("[MyApp]\ntitle=x\ndescription=y\nports=7000:7010/tcp\n")
    (tmp_path / "run.sh").write_text("ufw allow MyApp\n")
    rs = load(tmp_path / "myapp", tmp_path / "run.sh", dialect="ufw")
    assert verdict(rs, src="192.0.2.1", dst="198.51.100.1", dport=7005) == "accept"
    assert verdict(rs, src="192.0.2.1", dst="198.51.100.1", dport=7011) == "drop"


def test_files_given_together_form_one_host(tmp_path):
    (tmp_path / "ufw.conf").write_text('DEFAULT_INPUT_POLICY="ACCEPT"\n')
    rs = load(HERE / "webserver.user.rules", tmp_path / "ufw.conf", dialect="ufw")
    assert verdict(rs, src="192.0.2.9", dst="192.0.2.1", dport=8080) == "accept"
    assert verdict(rs, src="198.51.100.66", dst="192.0.2.1", dport=8080) == "drop"
    assert "DEFAULT_INPUT_POLICY=DROP" not in rs.meta["assumed"]


@pytest.mark.parametrize("line, column, words", [
    ("ufw allow in ona eth0 to any port 22", 14, "invalid token"),
    ("ufw allow from 10.0.0.300", 16, "bad address"),
    ("ufw allow 70000/tcp", 11, "bad port"),
    ("ufw frobnicate 22", 5, "unknown command"),
    ("ufw allow 22/tcp comment", 25, "comment"),
])
def test_bad_commands_are_located(line, column, words):
    with pytest.raises(RuleAnalyzerError) as info:
        loads(line + "\n", dialect="ufw", name="run.sh")
    err = info.value
    assert err.location.line == 1 and err.location.column == column, err.render()
    assert words in err.message


def test_sniffing_picks_ufw_for_status_and_scripts():
    assert ufw.sniff("Status: active\n", "s") > 90
    assert ufw.sniff("sudo ufw allow 22\nsudo ufw enable\n", "s") >= 80
    assert ufw.sniff("*filter\n:INPUT DROP [0:0]\nCOMMIT\n", "x") == 0


# -- grammars/ufw.lark ---------------------------------------------------------

from ruleanalyzer.parsers.ufw_commands import parse_command  # noqa: E402
from ruleanalyzer.parsers.ufw_status import parse_status  # noqa: E402


@pytest.mark.parametrize("line, column, message, hint", [
    ("ufw alow 22", 5, "unknown action 'alow'", "did you mean 'allow'?"),
    ("sudo ufw --dry-run limt ssh", 20, "unknown action 'limt'", "did you mean 'limit'?"),
    ("ufw allow to any port", 18, "'port' needs a port number", None),
    ("ufw allow from", 11, "'from' needs an address or 'any'", None),
    ("ufw deny on eth0", 10, "'on' needs 'in' or 'out' before it", "e.g. 'ufw allow in on eth0 to any port 22'"),
    ("ufw allow in on", 16, "'on' needs an interface name", None),
    ("ufw insert allow 22", 12, "insert needs a rule number (from 1)", None),
    ("ufw delete 3 4", 14, "unexpected word after the rule number", None),
    ("ufw default deny sideways", 18, "unknown direction 'sideways'", "incoming, outgoing or routed"),
    ("ufw enable now", 12, "'enable' takes no arguments", None),
    ("ufw --dry-run", 14, "ufw command without arguments", "e.g. 'ufw allow 22/tcp'"),
])
def test_grammar_errors_are_labelled_at_the_word(line, column, message, hint):
    with pytest.raises(RuleAnalyzerError) as info:
        parse_command(line, "run.sh", 7)
    err = info.value
    assert (err.location.line, err.location.column, err.message, err.hint) == (7, column, message, hint)


def test_keywords_are_keywords_only_where_the_grammar_expects_one():
    # "in" as a comment, "ALLOW" quoted as the action, an app named like a keyword
    [rule] = parse_command("ufw ALLOW 22/tcp comment 'in'").rules
    assert (rule.action, rule.dport, rule.protocol, rule.comment) == ("allow", "22", "tcp", "in")
    [rule] = parse_command("sudo -H ufw 'deny' in on eth0 from 203.0.113.0/24").rules
    assert (rule.action, rule.iface_in, rule.src) == ("deny", "eth0", "203.0.113.0/24")
    command = parse_command("ufw route insert 2 allow in on eth1 out on eth0 log")
    assert command.position == 2
    [rule] = command.rules
    assert (rule.forward, rule.iface_in, rule.iface_out, rule.logtype) == (True, "eth1", "eth0", "log")


def test_simple_form_port_lists_and_names():
    [rule] = parse_command("ufw allow 8000:8010,9000/tcp").rules
    assert (rule.dport, rule.protocol) == ("8000:8010,9000", "tcp")
    [rule] = parse_command("ufw allow ssh").rules
    assert (rule.dport, rule.protocol) == ("22", "tcp")
    # a port list with a protocol is not a service name, even after 'port'
    with pytest.raises(RuleAnalyzerError, match="unknown port or service '22/tcp'"):
        parse_command("ufw allow to any port 22/tcp")


def test_status_rows_split_at_the_action_word():
    text = ("Status: active\n\n     To                         Action      From\n"
            "     --                         ------      ----\n"
            "[ 1] 2001:db8:85a3:8d3:1319:8a2e:370:734 22/tcp ALLOW IN 2001:db8::/32 (log) # two words\n"
            "[ 2] Anywhere on eth0           ALLOW FWD   192.168.1.0/24 on eth1    \n"
            "[ 3] 25/tcp                     REJECT OUT  Anywhere                   (out)\n")
    rules = parse_status(text, "status.txt").rules
    first = rules[0]
    assert (first.dst, first.dport, first.src, first.logtype, first.comment, first.v6) == (
        "2001:db8:85a3:8d3:1319:8a2e:370:734", "22", "2001:db8::/32", "log", "two words", True)
    assert (first.location.line, first.location.column) == (5, 6)
    route = rules[1]
    assert (route.forward, route.iface_in, route.iface_out, route.src) == (True, "eth1", "eth0", "192.168.1.0/24")
    assert (rules[2].action, rules[2].direction) == ("reject", "out")


def test_status_errors_are_located():
    with pytest.raises(RuleAnalyzerError) as info:
        parse_status("Status: active\nbogus line\n", "s")
    assert (info.value.location.line, info.value.message) == (2, "unexpected line in ufw status output")
    with pytest.raises(RuleAnalyzerError) as info:
        parse_status("Status: active\nDefault: deny (incoming), allow (outgoing), bogus (routed)\n", "s")
    assert (info.value.location.line, info.value.location.column) == (2, 45)
    assert info.value.message == "unknown policy 'bogus'"


def test_sniffing_stops_early_only_where_no_refinement_could_tie():
    # parsers.sniff skips the remaining dialects once one is certain, unless
    # REFINED_BY names a dialect that refines it (ufw's files are iptables text)
    from ruleanalyzer.parsers import REFINED_BY, available, dialect_module, sniff

    for dialect in available():
        refines = getattr(dialect_module(dialect), "REFINES", None)
        if refines:
            assert dialect in REFINED_BY.get(refines, ()), dialect
    assert sniff("*filter\n:ufw-user-input - [0:0]\n### tuple ### allow tcp 22 0.0.0.0/0 any "
                 "0.0.0.0/0 in\n-A ufw-user-input -p tcp --dport 22 -j ACCEPT\nCOMMIT\n") == "ufw"
