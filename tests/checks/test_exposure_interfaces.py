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
    assert "if those interfaces face the internet" in finding.message
    assert finding.severity == "warning"  # the role is unknown: not a sure exposure


def test_exposure_on_an_internal_interface_is_none():
    # lan*, docker*, wg* … are internal by name; the config and NAT rules can say so too
    assert findings_for(RULES.format(iface="lan0"), "iptables", ["RA401"]) == []


def test_exposure_on_any_interface_has_no_caveat():
    text = RULES.replace("-i {iface} ", "")
    (finding,) = findings_for(text, "iptables", ["RA401"])
    assert "arriving on" not in finding.message and "if those interfaces" not in finding.message
