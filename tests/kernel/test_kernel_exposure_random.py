"""Proof against the kernel for exposure on random rulesets (issue #13).

Each seed writes an iptables ruleset of the kinds of rules exposure turns
on — blocklists and bans (fail2ban-shaped chains that RETURN), allow-lists,
port accepts and rejects, multiport and port ranges, ``! -s``, rate-limited
LOG rules, conntrack rules, an OUTPUT policy that may drop the SYN-ACK —
and the audit's exposure analysis is held against the kernel, port by port
(IPv4, the input path):

- a port the audit reports (RA401/RA402): handshakes from random public
  sources drawn from the counted set (the sources the analysis says
  complete a handshake) complete in the kernel;
- a port it does not report: random public sources outside the counted set
  fail; and where the counted set is not empty (an allow-list), a source
  from it completes — the count is right both ways, not only its verdict.
- a reported port with a blocklist: a public source outside the counted set
  fails.

Sources are drawn from the BDD (a random descent over the source bits), so
a /24 allow-list is sampled as surely as the whole internet.

    RA_EXPOSURE_SEEDS=7,8 pytest tests/kernel/test_kernel_exposure_random.py -s
"""

from __future__ import annotations

import ipaddress
import os
import random
from concurrent.futures import ThreadPoolExecutor

import pytest

from .netns import FW_V4, TestBed, missing_prerequisites
from .test_kernel_exposure import _config, _handshake

pytestmark = pytest.mark.kernel

RULESETS = int(os.environ.get("RA_EXPOSURE_RULESETS", 8))
SEEDS = ([int(s) for s in os.environ["RA_EXPOSURE_SEEDS"].split(",")] if os.environ.get("RA_EXPOSURE_SEEDS")
         else list(range(1, RULESETS + 1)))
PORTS = {22: "SSH", 3306: "MySQL", 6379: "Redis"}
#: Public prefixes rules are written over (blocklists, allow-lists, ! -s).
PREFIX_LENGTHS = (1, 2, 3, 4, 6, 8, 12, 16, 24)


def _public_prefix(rnd: random.Random) -> str:
    """A prefix around a random public address (it may hold non-public
    addresses too when short, as real blocklists do)."""
    from ruleanalyzer.checks.exposure import NON_PUBLIC_V4

    nets = [ipaddress.ip_network(n) for n in NON_PUBLIC_V4]
    while True:
        a = ipaddress.IPv4Address(rnd.getrandbits(32))
        if not any(a in n for n in nets):
            return str(ipaddress.ip_network(f"{a}/{rnd.choice(PREFIX_LENGTHS)}", strict=False))


def generate(seed: int) -> str:
    """One random filter table: INPUT (and a ban chain), OUTPUT."""
    rnd = random.Random(seed)
    ports = list(PORTS)

    def port() -> int:
        return rnd.choice(ports)

    def accept_port() -> str:
        roll = rnd.random()
        if roll < 0.4:
            return f"-p tcp --dport {port()}"
        if roll < 0.6:
            return f"-p tcp -m multiport --dports {','.join(map(str, rnd.sample(ports, 2)))}"
        if roll < 0.75:
            lo = port()
            return f"-p tcp --dport {lo - rnd.randint(0, 5)}:{lo + rnd.randint(0, 5)}"
        return f"-p tcp -m tcp --dport {port()} --tcp-flags SYN,RST,ACK,FIN SYN"

    est = "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
    makers = [
        lambda: f"-A INPUT -s {_public_prefix(rnd)} -j {rnd.choice(('DROP', 'REJECT'))}",
        lambda: f"-A INPUT {accept_port()} -j ACCEPT",
        lambda: f"-A INPUT {accept_port()} -j ACCEPT",
        lambda: f"-A INPUT -s {_public_prefix(rnd)} {accept_port()} -j ACCEPT",
        lambda: f"-A INPUT ! -s {_public_prefix(rnd)} {accept_port()} -j ACCEPT",
        lambda: f"-A INPUT -p tcp --dport {port()} -j " + rnd.choice(("DROP", "REJECT --reject-with tcp-reset")),
        lambda: "-A INPUT -p tcp -m limit --limit 50/sec -j LOG --log-prefix in",
        lambda: "-A INPUT -m conntrack --ctstate INVALID -j DROP",
        lambda: "-A INPUT -p tcp ! --syn -m conntrack --ctstate NEW -j DROP",
        lambda: "-A INPUT -i lo -j ACCEPT",
        lambda: f"-A INPUT -i docker0 {accept_port()} -j ACCEPT",
        lambda: f"-A INPUT -p tcp -m multiport --dports {','.join(map(str, ports))} -j bans",
    ]
    rules = [rnd.choice(makers)() for _ in range(rnd.randint(2, 7))]
    if rnd.random() < 0.85:
        rules.insert(rnd.randint(0, len(rules)), est)
    bans = [f"-A bans -s {_public_prefix(rnd)} -j REJECT" for _ in range(rnd.randint(1, 3))]
    if rnd.random() < 0.3:
        bans.append(f"-A bans -s {_public_prefix(rnd)} -p tcp --dport {port()} -j ACCEPT")
    bans.append("-A bans -j RETURN")
    out_policy = rnd.choice(("ACCEPT", "ACCEPT", "DROP"))
    output = []
    if out_policy == "DROP":
        output = rnd.choice((
            ["-A OUTPUT -m conntrack --ctstate ESTABLISHED -j ACCEPT"],
            [f"-A OUTPUT -p tcp --sport {port()} -j ACCEPT"],
            ["-A OUTPUT -p udp --dport 53 -j ACCEPT"],
            [f"-A OUTPUT -d {_public_prefix(rnd)} -j ACCEPT"],
        ))
    elif rnd.random() < 0.3:
        output = [f"-A OUTPUT -p tcp --sport {port()} --tcp-flags SYN,ACK SYN,ACK -j DROP"]
    return "\n".join(["*filter", f":INPUT {rnd.choice(('DROP', 'DROP', 'ACCEPT'))} [0:0]",
                      ":FORWARD DROP [0:0]", f":OUTPUT {out_policy} [0:0]", ":bans - [0:0]",
                      *rules, *bans, *output, "COMMIT", ""])


def analyse(text: str):
    """Ports the audit reports, the findings' codes, and per port the
    public sources the analysis counts (arriving on the bed's interface,
    IPv4, projected on the source) and those it does not."""
    from ruleanalyzer import loads
    from ruleanalyzer.audit import run_audit
    from ruleanalyzer.checks import _sets as S
    from ruleanalyzer.checks.base import Context
    from ruleanalyzer.checks.exposure import _analysis

    rs = loads(text, dialect="iptables")
    findings = run_audit([rs], select=["RA401", "RA402", "RA403"], config=_config()).findings
    reported = {p for p, name in PORTS.items() for f in findings
                if f.code == "RA402" or (f.code == "RA401" and f"{name} ({p}/tcp, IPv4" in f.message)}
    ctx = Context(rs)
    ctx.trusted_interfaces = ["lo"]
    (path,) = [p for p in _analysis(ctx, 0.99) if p.hook == "input" and p.family == 4]
    sp = path.sp
    code = sp.spec("iif").names.index("*")  # rafw0 is named by no rule
    src_vars = S.field_vars(sp, "src")
    public = path._project(path.public, src_vars)
    sets = {}
    for port in PORTS:
        counted = path._project(path.at(path.done_l, code, port) & path.public, src_vars)
        sets[port] = (counted, public & ~counted)
    return reported, {f.code for f in findings}, sp, sets


def pick(sp, node, rnd: random.Random) -> ipaddress.IPv4Address | None:
    """A random IPv4 source in ``node`` (a set over the source bits), by a
    random descent from the top bit; None when it is empty."""
    if node == sp.false:
        return None
    spec = sp.spec("src")
    value = 0
    for bit in reversed(range(spec.width)):
        var = sp.bdd.var(spec.var(bit))
        want = rnd.random() < 0.5
        branch = node & (var if want else ~var)
        if branch == sp.false:
            want, branch = not want, node & (~var if want else var)
        node = branch
        value |= int(want) << bit
    return ipaddress.IPv4Address(value)


def prove(seed: int) -> list[str]:
    text = generate(seed)
    reported, codes, sp, sets = analyse(text)
    rnd = random.Random(seed * 7919)
    trials = []  # (port, source, should complete)
    for port in sorted(PORTS):
        counted, uncounted = sets[port]
        if port in reported:
            trials += [(port, pick(sp, counted, rnd), True) for _ in range(2)]
            trials.append((port, pick(sp, uncounted, rnd), False))
        else:
            trials += [(port, pick(sp, uncounted, rnd), False) for _ in range(2)]
            trials.append((port, pick(sp, counted, rnd), True))
    wrong = [f"seed {seed}: RA403 on a ruleset with no undecidable match that can change a fate"
             ] if "RA403" in codes else []
    with TestBed() as bed:
        for port in PORTS:
            bed.call({"op": "listen", "addr": FW_V4, "port": port})
        bed.load_iptables(text)
        for port, source, expect in trials:
            if source is None:
                continue
            works = _handshake(bed, source, port, timeout=1.0)
            if works != expect:
                wrong.append(f"seed {seed}: port {port} from {source}: kernel "
                             f"{'completes' if works else 'fails'}, analysis "
                             f"{'counts' if expect else 'does not count'} it "
                             f"({'reported' if port in reported else 'not reported'})\n{text}")
    return wrong


def test_generated_rulesets_cover_both_verdicts():
    """The generator is worth running: across the seeds, ports are reported
    and not reported, with counted sets that are neither empty nor whole."""
    verdicts, partial = set(), 0
    for seed in SEEDS:
        reported, _, sp, sets = analyse(generate(seed))
        verdicts |= {p in reported for p in PORTS}
        partial += sum(1 for c, u in sets.values() if c != sp.false and u != sp.false)
    assert verdicts == {True, False}
    assert partial >= 2


def test_random_exposures_hold_in_the_kernel():
    reason = missing_prerequisites(("ip", "iptables-restore"))
    if reason:
        pytest.skip(reason)
    with ThreadPoolExecutor(max_workers=4) as pool:
        wrong = [w for r in pool.map(prove, SEEDS) for w in r]
    assert wrong == [], "\n".join(wrong)
