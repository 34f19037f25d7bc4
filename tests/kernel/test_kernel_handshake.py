"""Real TCP connections against hand-written rulesets, ECN off and on.

The server listens in the firewall namespace, whose rules are loaded with
iptables-restore (or nft); the client connects from the peer namespace with
``net.ipv4.tcp_ecn`` 0 or 1, then sends one message each way. The kernel's
"it works / it does not" must equal the analyzer's ``connect(...).passes``.

With ECN on, ``connect``'s ``ecn_negotiated`` must equal what the real
handshake negotiated (the client's TCP_INFO, ``net.ipv4.tcp_ecn`` 1 on both
ends), and a SYN that only Linux's retry without ECE/CWR gets through (the
connection took a second) must read "passes after retry".

Each ruleset is a trap someone has fallen into: exact SYN matches and ECN,
ECN SYNs dropped (Linux retries without ECE/CWR after a second), a DROP
policy without an ESTABLISHED rule, OUTPUT DROP, NOTRACK before a NEW rule, a
mark the connection keeps (CONNMARK, ct mark) deciding every later packet.
"""

from __future__ import annotations

import pytest

from .netns import FW_V4, PEER_V4, TestBed, missing_prerequisites

pytestmark = pytest.mark.kernel

PORT = 8080
FILTER_HEAD = "*filter\n:INPUT {input} [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT {output} [0:0]\n"


def iptables(rules: str, input: str = "DROP", output: str = "ACCEPT", raw: str = "") -> str:
    text = FILTER_HEAD.format(input=input, output=output) + rules.strip() + "\nCOMMIT\n"
    if raw:
        text = "*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n" + raw.strip() + "\nCOMMIT\n" + text
    return text


ESTABLISHED = "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"

#: name → (dialect, ruleset text)
CASES = {
    # --tcp-flags ALL is FIN..URG: an ECN SYN still matches.
    "iptables-syn-exact-flags": ("iptables", iptables(f"""
{ESTABLISHED}
-A INPUT -p tcp -m tcp --dport {PORT} --tcp-flags ALL SYN -j ACCEPT
""")),
    # The ECN SYN dies; Linux's retry without ECE/CWR gets through.
    "iptables-drops-ecn-syn": ("iptables", iptables(f"""
-A INPUT -p tcp -m ecn --ecn-tcp-ece --ecn-tcp-cwr -j DROP
{ESTABLISHED}
-A INPUT -p tcp -m tcp --dport {PORT} --syn -j ACCEPT
""")),
    # Only SYNs are let in: the handshake's ACK and all data die.
    "iptables-drop-policy-without-established": ("iptables", iptables(f"""
-A INPUT -p tcp -m tcp --dport {PORT} --syn -j ACCEPT
""")),
    # Port open, but every reply is dropped on the way out.
    "iptables-output-drop-without-established": ("iptables", iptables(f"""
-A INPUT -p tcp -m tcp --dport {PORT} -j ACCEPT
""", output="DROP")),
    "iptables-output-drop-with-established": ("iptables", iptables(f"""
{ESTABLISHED}
-A INPUT -p tcp -m tcp --dport {PORT} -m conntrack --ctstate NEW -j ACCEPT
-A OUTPUT -m conntrack --ctstate ESTABLISHED -j ACCEPT
""", output="DROP")),
    # NOTRACK: the SYN is UNTRACKED, never NEW.
    "iptables-notrack-before-state-new": ("iptables", iptables(f"""
{ESTABLISHED}
-A INPUT -p tcp -m tcp --dport {PORT} -m conntrack --ctstate NEW -j ACCEPT
""", raw=f"-A PREROUTING -p tcp -m tcp --dport {PORT} -j NOTRACK")),
    # The server's ECN SYN-ACK dies on the way out. The client's retried SYN
    # carries no ECE/CWR, but the server answers from the request it
    # already holds, again with ECE.
    "iptables-drops-ecn-synack": ("iptables", iptables(f"""
{ESTABLISHED}
-A INPUT -p tcp -m tcp --dport {PORT} --syn -j ACCEPT
-A OUTPUT -p tcp -m ecn --ecn-tcp-ece -j DROP
""", output="ACCEPT")),
    # ECT(0)-marked data is dropped; Linux sends retransmissions not-ECT.
    "iptables-drops-ect-data": ("iptables", iptables(f"""
-A INPUT -m ecn --ecn-ip-ect 2 -j DROP
{ESTABLISHED}
-A INPUT -p tcp -m tcp --dport {PORT} --syn -j ACCEPT
""")),
    # The ECN target strips ECE/CWR from the SYN before the server sees it:
    # the server answers without ECE and ECN is never negotiated.
    "iptables-ecn-strip": ("iptables", "*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n"
                           ":FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
                           "-A INPUT -p tcp -j ECN --ecn-tcp-remove\nCOMMIT\n" + iptables(f"""
{ESTABLISHED}
-A INPUT -p tcp -m tcp --dport {PORT} --syn -j ACCEPT
""")),
    # Multi-WAN style: the first packet's mark is saved in the connection
    # (CONNMARK) and restored on every later one; INPUT accepts by the mark
    # alone. The ACK and the data are accepted because the connection holds
    # the mark the SYN got, not because of any ESTABLISHED rule.
    "iptables-connmark-restores-the-mark": ("iptables", "*mangle\n:PREROUTING ACCEPT [0:0]\n"
                                            ":INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
                                            ":POSTROUTING ACCEPT [0:0]\n"
                                            "-A PREROUTING -m state --state NEW -j MARK --set-xmark 0x2/0xffffffff\n"
                                            "-A PREROUTING -m mark ! --mark 0x0 -j CONNMARK --save-mark\n"
                                            "-A PREROUTING -m connmark --mark 0x2 -j CONNMARK --restore-mark\n"
                                            "COMMIT\n" + iptables(f"""
-A INPUT -p tcp -m tcp --dport {PORT} -m mark --mark 0x2 -j ACCEPT
""")),
    "iptables-open-port": ("iptables", iptables(f"""
{ESTABLISHED}
-A INPUT -p tcp -m tcp --dport {PORT} -m conntrack --ctstate NEW -j ACCEPT
""")),
    # nft compares the whole byte: the ECN SYN misses, the retry passes.
    "nft-syn-exact": ("nftables", f"""
table inet filter {{
  chain input {{
    type filter hook input priority 0; policy drop;
    ct state established,related accept
    tcp dport {PORT} tcp flags == syn accept
  }}
}}
"""),
    # An anonymous set of exact values misses the ECN SYN too.
    "nft-syn-set": ("nftables", f"""
table inet filter {{
  chain input {{
    type filter hook input priority 0; policy drop;
    ct state established,related accept
    tcp dport {PORT} tcp flags {{ syn, syn | ack }} accept
  }}
}}
"""),
    # The safe form: only the handshake bits are compared.
    "nft-syn-masked": ("nftables", f"""
table inet filter {{
  chain input {{
    type filter hook input priority 0; policy drop;
    ct state established,related accept
    tcp dport {PORT} tcp flags syn / fin,syn,rst,ack accept
  }}
}}
"""),
    # The server's SYN-ACK sets the connection's mark on the way out; the
    # client's ACK and data are accepted by it, restored.
    "iptables-connmark-set-by-the-reply": ("iptables", "*mangle\n:PREROUTING ACCEPT [0:0]\n"
                                           ":INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
                                           ":POSTROUTING ACCEPT [0:0]\n"
                                           f"-A OUTPUT -p tcp --sport {PORT} -j CONNMARK --set-mark 0x7\n"
                                           "-A PREROUTING -m connmark --mark 0x7 -j CONNMARK --restore-mark\n"
                                           "COMMIT\n" + iptables(f"""
-A INPUT -p tcp -m tcp --dport {PORT} --syn -j ACCEPT
-A INPUT -p tcp -m tcp --dport {PORT} -m mark --mark 0x7 -j ACCEPT
""")),
    # The same with nftables' ct mark.
    "nft-ct-mark-restores-the-mark": ("nftables", f"""
table inet filter {{
  chain pre {{
    type filter hook prerouting priority mangle; policy accept;
    ct state new meta mark set 0x2
    meta mark != 0 ct mark set meta mark
    ct mark 0x2 meta mark set ct mark
  }}
  chain input {{
    type filter hook input priority 0; policy drop;
    tcp dport {PORT} meta mark 0x2 accept
  }}
}}
"""),
    # Two base chains: accept in the first does not end the second.
    "nft-two-base-chains": ("nftables", f"""
table inet filter {{
  chain early {{
    type filter hook input priority -10; policy accept;
    tcp dport {PORT} accept
  }}
  chain late {{
    type filter hook input priority 10; policy drop;
    ct state new tcp dport {PORT} accept
  }}
}}
"""),
}


def _run_in_kernel(name: str) -> dict[bool, dict]:
    """Connect to a server behind ruleset ``name``, ECN off then on."""
    dialect, text = CASES[name]
    with TestBed() as bed:
        bed.call({"op": "listen", "addr": FW_V4, "port": PORT})
        if dialect == "iptables":
            bed.load_iptables(text)
        else:
            bed.load_nft(text)
        outcomes = {}
        bed.fw.sysctl("net.ipv4.tcp_ecn", 1)  # the server, too, negotiates ECN when asked
        for ecn in (False, True):
            bed.peer.sysctl("net.ipv4.tcp_ecn", 1 if ecn else 0)
            outcomes[ecn] = bed.call({"op": "connect", "addr": FW_V4, "port": PORT, "timeout": 2.5},
                                     timeout=30)
        return outcomes


@pytest.fixture(scope="module")
def kernel_outcomes():
    """Every case's real connections, run side by side: a blocked one spends
    its time waiting for timeouts, not on the CPU."""
    from concurrent.futures import ThreadPoolExecutor

    reason = missing_prerequisites(("ip", "iptables-restore", "nft"))
    if reason:
        pytest.skip(reason)
    with ThreadPoolExecutor(max_workers=len(CASES)) as pool:
        return dict(zip(CASES, pool.map(_run_in_kernel, CASES)))


#: Cases where the kernel and the analyzer are known to answer differently,
#: with why. strict: when the analyzer changes, the mark must go.
#: (connect() now counts the not-ECT retransmission of dropped ECT data, so
#: "iptables-drops-ect-data" agrees with the kernel.)
KNOWN_DIFFERENCES: dict[str, str] = {}


def _params():
    for name in sorted(CASES):
        reason = KNOWN_DIFFERENCES.get(name)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        yield pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", list(_params()))
def test_handshake_matches_the_kernel(name, kernel_outcomes):
    dialect, text = CASES[name]
    try:
        from ruleanalyzer import loads
        from ruleanalyzer.engine.connect import connect
    except ImportError:
        pytest.skip("connect not implemented yet")
    ruleset = loads(text, dialect=dialect)
    results = {}
    for ecn, kernel in kernel_outcomes[name].items():
        works = all(kernel[k] for k in ("connected", "accepted", "to_server", "to_client"))
        report = connect(ruleset, client=PEER_V4, server=FW_V4, dport=PORT, hook="input",
                         ecn="on" if ecn else "off", iif="rafw0")
        legs = "; ".join(f"{leg.name}: {leg.summary}" for leg in report.legs)
        results[ecn] = (works, report.passes, kernel, legs)
        if works and report.passes:
            # ECN negotiated as the real handshake's flags said (TCP_INFO), and a
            # SYN that only the 1 s retry got through reads "passes after retry"
            variant = report.variants[0]
            retried = kernel["connect_seconds"] >= 0.9
            failed = variant.first_failure
            analyzer_retried = report.legs[0].summary == "passes after retry" or (
                failed is not None and failed.name.startswith("SYN"))  # the plain retry (fallback)
            if variant.ecn_negotiated != kernel["ecn_negotiated"] or analyzer_retried != retried:
                results[ecn] = (works, f"passes, ecn_negotiated={variant.ecn_negotiated}", kernel, legs)
    wrong = {ecn: r for ecn, r in results.items() if r[0] != r[1]}
    assert not wrong, "\n".join(
        f"ECN {'on' if ecn else 'off'}: kernel {'works' if r[0] else 'fails'} {r[2]}, "
        f"analyzer passes={r[1]} ({r[3]})\n{text}" for ecn, r in wrong.items())
