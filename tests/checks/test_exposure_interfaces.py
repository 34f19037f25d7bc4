"""RA401 says when an exposure hangs on which interface faces the internet."""

from tests.checks.helpers import findings_for

RULES = """*filter
:INPUT DROP [0:0]
-A INPUT -m conntrack --ctstate ESTABLISHED -j ACCEPT
-A INPUT -i {iface} -p tcp --dport 22 -j ACCEPT
COMMIT
"""


def test_exposure_on_a_named_interface_names_it_with_the_caveat():
    (finding,) = findings_for(RULES.format(iface="eth1"), "iptables", ["RA401"])
    assert "arriving on eth1" in finding.message
    assert "if eth1 faces the internet" in finding.message
    assert finding.severity == "warning"  # the role is unknown: not a sure exposure


def test_exposure_on_an_internal_interface_is_none():
    # lan*, docker*, wg* … are internal by name; the config and NAT rules can say so too
    assert findings_for(RULES.format(iface="lan0"), "iptables", ["RA401"]) == []


def test_exposure_on_any_interface_has_no_caveat():
    text = RULES.replace("-i {iface} ", "")
    (finding,) = findings_for(text, "iptables", ["RA401"])
    assert "arriving on" not in finding.message and "if those interfaces" not in finding.message


FORWARD_TO = """*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -o {iface} -j ACCEPT
-A FORWARD -i {iface} -j ACCEPT
COMMIT
"""


def test_forwarding_into_a_container_bridge_needs_a_dnat():
    # waydroid0, docker0, virbr0 … hold private NATed networks: nothing is
    # routed to them from the internet without a port forward
    assert findings_for(FORWARD_TO.format(iface="waydroid0"), "iptables", ["RA401", "RA402"]) == []
    (finding,) = findings_for(FORWARD_TO.format(iface="eth1"), "iptables", ["RA401", "RA402"])
    assert finding.code == "RA402" and "is forwarded (IPv4" in finding.message  # every port, to eth1


def test_a_firewalld_zone_that_accepts_forwarding_does_not_make_a_router(tmp_path):
    """firewalld turns routing on only with masquerade: the trusted zone's
    target ACCEPT (and intra-zone forwarding) opens the host, not a route;
    a port forward does route."""
    from ruleanalyzer.audit import run_audit

    zone = tmp_path / "trusted.xml"
    zone.write_text('<?xml version="1.0" encoding="utf-8"?>\n<zone target="ACCEPT">'
                    "<short>Trusted</short><forward/></zone>\n")
    findings = run_audit([str(zone)], select=["RA4"]).findings
    assert [f.code for f in findings if f.code == "RA402"] == ["RA402"]
    assert not [f.message for f in findings if "forwarded" in f.message]
    zone.write_text('<?xml version="1.0" encoding="utf-8"?>\n<zone target="ACCEPT">'
                    "<short>Trusted</short><forward/><masquerade/>"
                    '<forward-port port="2222" protocol="tcp" to-port="22" to-addr="10.0.0.5"/></zone>\n')
    assert [f.message for f in run_audit([str(zone)], select=["RA4"]).findings if "forwarded" in f.message]


def test_the_interface_a_ruleset_filters_while_the_rest_accept_everything_faces_the_internet():
    """The author filters vlan110 (SSH only from one network) and leaves the
    other interfaces to the ACCEPT policy (the chair rulesets, a Synology
    NAS): vlan110 is the one facing the internet. Nothing is open there;
    when SSH is, it is said for vlan110 with the caveat."""
    text = ("*filter\n:INPUT ACCEPT [0:0]\n:from_out - [0:0]\n-A INPUT -i lo -j ACCEPT\n"
            "-A INPUT -i vlan110 -j from_out\n"
            "-A from_out -m conntrack --ctstate ESTABLISHED -j ACCEPT\n"
            "-A from_out -s 188.95.232.0/21 -p tcp --dport 22 -j ACCEPT\n-A from_out -j DROP\nCOMMIT\n")
    assert findings_for(text, "iptables", ["RA401", "RA402", "RA403"]) == []
    (finding,) = findings_for(text.replace("-s 188.95.232.0/21 ", ""), "iptables", ["RA401", "RA402"])
    assert finding.code == "RA401" and "SSH (22/tcp, IPv4, arriving on vlan110)" in finding.message
    assert finding.severity == "warning" and "if vlan110 faces the internet" in finding.message


def test_a_port_open_only_on_interfaces_the_ruleset_does_not_filter_is_conditional():
    """Same author, a DROP policy and SSH accepted for every interface but
    vlan110: SSH is said for the others, with the caveat."""
    text = ("*filter\n:INPUT DROP [0:0]\n:from_out - [0:0]\n-A INPUT -i lo -j ACCEPT\n"
            "-A INPUT -i vlan110 -j from_out\n-A INPUT -p tcp --dport 22 -j ACCEPT\n"
            "-A from_out -m conntrack --ctstate ESTABLISHED -j ACCEPT\n"
            "-A from_out -s 188.95.232.0/21 -p tcp --dport 22 -j ACCEPT\n-A from_out -j DROP\nCOMMIT\n")
    (finding,) = findings_for(text, "iptables", ["RA401", "RA402"])
    assert finding.code == "RA401" and "arriving on interfaces other than vlan110" in finding.message
    assert finding.severity == "warning" and "if those interfaces face the internet" in finding.message
    opened = text.replace("-s 188.95.232.0/21 ", "")  # vlan110 open too: no caveat
    (finding,) = findings_for(opened, "iptables", ["RA401", "RA402"])
    assert finding.severity == "error" and "arriving on" not in finding.message
