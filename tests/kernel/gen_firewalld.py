"""Random firewalld configurations (zones, sources, interfaces, services,
ports, rich rules with priorities and actions, policies, forward-ports,
ipsets) for the oracle tests, from a seed, with probes that hit them."""

from __future__ import annotations

import random
from pathlib import Path

from . import netns
from .gen_iptables import Pools, random_probe

SERVICES = ("ssh", "http", "https", "dns", "ftp", "dhcpv6-client", "mdns", "samba", "smtp", "imaps",
            "kerberos", "ntp", "tftp", "freeipa-4", "mysql", "postgresql")
ICMP = ("echo-request", "echo-reply", "timestamp-request", "destination-unreachable", "packet-too-big",
        "router-advertisement", "parameter-problem", "port-unreachable", "time-exceeded")
TARGETS = ("default", "default", "ACCEPT", "DROP", "%%REJECT%%")
INTERFACES = (netns.FW_IF, "rafw1", "rafw2", "raf+", "rab0")


class _Gen:
    def __init__(self, seed: int, family: int):
        self.rnd = random.Random(seed * 104729)
        self.pools = Pools(self.rnd, family)
        self.family = family
        self.ipsets: list[str] = []

    def net(self) -> str:
        return self.pools.network(self.pools.sources)

    def port(self) -> str:
        rnd = self.rnd
        p = self.pools.port()
        return f"{p}-{min(65535, p + rnd.randint(1, 40))}" if rnd.random() < 0.2 else str(p)

    def rich(self) -> str:
        rnd = self.rnd
        fam = "ipv4" if self.family == 4 else "ipv6"
        family = fam if rnd.random() < 0.8 else None
        prio = rnd.choice((0, 0, 0, -5, -1, 3, 10))
        parts = []
        if rnd.random() < 0.6:
            if family and rnd.random() < 0.85:
                inv = ' invert="yes"' if rnd.random() < 0.1 else ""
                parts.append(f'<source address="{self.net()}"{inv}/>')
            elif self.ipsets:
                parts.append(f'<source ipset="{rnd.choice(self.ipsets)}"/>')
        if family and rnd.random() < 0.2:
            parts.append(f'<destination address="{rnd.choice(self.pools.fw_addrs)}"/>')
        roll = rnd.random()
        element = None
        if roll < 0.35:
            element = f'<port port="{self.port()}" protocol="{rnd.choice(("tcp", "udp"))}"/>'
        elif roll < 0.55:
            element = f'<service name="{rnd.choice(("ssh", "http", "https", "dns", "smtp"))}"/>'
        elif roll < 0.62:
            element = f'<protocol value="{rnd.choice(("icmp" if self.family == 4 else "ipv6-icmp", "gre", "udp"))}"/>'
        elif roll < 0.7:
            element = f'<icmp-type name="{rnd.choice(("echo-request", "echo-reply"))}"/>'
        elif roll < 0.75:
            element = f'<source-port port="{self.port()}" protocol="udp"/>'
        if element is None and not parts:
            parts.append(f'<source address="{self.net()}"/>')
            family = fam
        if element:
            parts.append(element)
        if rnd.random() < 0.15:
            parts.append('<log prefix="ra-" level="info"/>' if rnd.random() < 0.7 else "<audit/>")
        action = rnd.choice(("accept", "accept", "drop", "reject", "reject-typed"))
        if action == "reject-typed" and family:
            t = "icmp-host-prohibited" if family == "ipv4" else "icmp6-adm-prohibited"
            parts.append(f'<reject type="{t}"/>')
        elif action == "reject-typed":
            parts.append("<reject/>")
        else:
            parts.append(f"<{action}/>")
        attrs = (f' family="{family}"' if family else "") + (f' priority="{prio}"' if prio else "")
        return f"  <rule{attrs}>{''.join(parts)}</rule>\n"

    def zone(self, name: str, interfaces: list[str], sources: list[str]) -> str:
        rnd = self.rnd
        target = rnd.choice(TARGETS)
        body = [f'<?xml version="1.0" encoding="utf-8"?>\n<zone target="{target}">\n']
        body += [f'  <interface name="{i}"/>\n' for i in interfaces]
        for s in sources:
            body.append(f'  <source ipset="{s[6:]}"/>\n' if s.startswith("ipset:") else f'  <source address="{s}"/>\n')
        for svc in rnd.sample(SERVICES, rnd.randint(0, 3)):
            body.append(f'  <service name="{svc}"/>\n')
        for _ in range(rnd.randint(0, 3)):
            body.append(f'  <port port="{self.port()}" protocol="{rnd.choice(("tcp", "udp", "tcp"))}"/>\n')
        if rnd.random() < 0.2:
            body.append(f'  <protocol value="{rnd.choice(("gre", "esp", "igmp"))}"/>\n')
        if rnd.random() < 0.2:
            body.append(f'  <source-port port="{self.port()}" protocol="udp"/>\n')
        for icmp in rnd.sample(ICMP, rnd.randint(0, 2)):
            body.append(f'  <icmp-block name="{icmp}"/>\n')
        if rnd.random() < 0.25:
            body.append("  <icmp-block-inversion/>\n")
        if rnd.random() < 0.3:
            body.append("  <masquerade/>\n")
        if rnd.random() < 0.5:
            body.append("  <forward/>\n")
        if rnd.random() < 0.3:
            to = '' if rnd.random() < 0.5 else (' to-addr="10.99.0.7"' if self.family == 4 else ' to-addr="2001:db8:99::7"')
            body.append(f'  <forward-port port="{self.pools.port()}" protocol="tcp" to-port="{self.pools.port()}"{to}/>\n')
        body += [self.rich() for _ in range(rnd.randint(0, 6))]
        body.append("</zone>\n")
        return "".join(body)

    def policy(self, zones: list[str]) -> str:
        rnd = self.rnd
        shape = rnd.choice(("zz", "anyhost", "zhost", "hostz", "zany", "anyz"))
        ing = {"zz": rnd.choice(zones), "anyhost": "ANY", "zhost": rnd.choice(zones), "hostz": "HOST",
               "zany": rnd.choice(zones), "anyz": "ANY"}[shape]
        eg = {"zz": rnd.choice(zones), "anyhost": "HOST", "zhost": "HOST", "hostz": rnd.choice(zones),
              "zany": "ANY", "anyz": rnd.choice(zones)}[shape]
        prio = rnd.choice((-100, -10, -1, 1, 10, 100))
        target = rnd.choice(("CONTINUE", "CONTINUE", "ACCEPT", "DROP", "REJECT"))
        body = [f'<?xml version="1.0" encoding="utf-8"?>\n<policy target="{target}" priority="{prio}">\n',
                f'  <ingress-zone name="{ing}"/>\n  <egress-zone name="{eg}"/>\n']
        for svc in rnd.sample(("ssh", "http", "dns"), rnd.randint(0, 2)):
            body.append(f'  <service name="{svc}"/>\n')
        if rnd.random() < 0.5:
            body.append(f'  <port port="{self.port()}" protocol="tcp"/>\n')
        body += [self.rich() for _ in range(rnd.randint(0, 3))]
        body.append("</policy>\n")
        return "".join(body)


def generate(seed: int, root: Path, probes: int = 60):
    """Write a random configuration into ``root``; return (interfaces to
    create, probes, family)."""
    rnd = random.Random(seed)
    family = 6 if rnd.random() < 0.3 else 4
    g = _Gen(seed, family)
    (root / "zones").mkdir(parents=True)
    (root / "policies").mkdir()
    (root / "ipsets").mkdir()
    for i in range(rnd.randint(0, 2)):
        name = f"set{i}"
        kind = "hash:net" if rnd.random() < 0.5 else "hash:ip"
        fam = '' if family == 4 else '\n  <option name="family" value="inet6"/>'
        entries = sorted({(g.net() if kind == "hash:net" else g.rnd.choice(g.pools.sources))
                          for _ in range(rnd.randint(1, 4))})
        if kind == "hash:net":
            # nft refuses overlapping intervals; keep the broadest of each overlap
            import ipaddress
            nets = sorted((ipaddress.ip_network(e, strict=False) for e in entries), key=lambda n: n.prefixlen)
            kept = []
            for n in nets:
                if not any(n.subnet_of(k) or k.subnet_of(n) for k in kept):
                    kept.append(n)
            entries = [str(n) for n in kept]
        (root / "ipsets" / f"{name}.xml").write_text(
            f'<?xml version="1.0" encoding="utf-8"?>\n<ipset type="{kind}">{fam}\n'
            + "".join(f"  <entry>{e}</entry>\n" for e in entries) + "</ipset>\n")
        g.ipsets.append(name)
    zones = [f"z{i}" for i in range(rnd.randint(1, 4))]
    free = list(INTERFACES)
    rnd.shuffle(free)
    used_sources: set[str] = set()
    for name in zones:
        ifs = [free.pop() for _ in range(rnd.randint(0, 2)) if free]
        srcs = []
        for _ in range(rnd.randint(0, 2)):
            s = f"ipset:{rnd.choice(g.ipsets)}" if g.ipsets and rnd.random() < 0.2 else g.net()
            if s not in used_sources:
                used_sources.add(s)
                srcs.append(s)
        (root / "zones" / f"{name}.xml").write_text(g.zone(name, ifs, srcs))
    default = rnd.choice(zones + ["public", "drop", "trusted"])
    log = rnd.choice(("off", "off", "off", "all", "unicast"))
    rpf = rnd.choice(("yes", "yes", "no"))
    (root / "firewalld.conf").write_text(
        f"DefaultZone={default}\nFirewallBackend=nftables\nLogDenied={log}\nIPv6_rpfilter={rpf}\n"
        f"RFC3964_IPv4={rnd.choice(('yes', 'no'))}\nCleanupOnExit=yes\n")
    for i in range(rnd.randint(0, 2)):
        (root / "policies" / f"p{i}.xml").write_text(g.policy(zones))
    used: set = set()
    batch = [random_probe(rnd, g.pools, (seed % 20000) * 1000 + i + 1, used) for i in range(probes)]
    interfaces = [i for i in INTERFACES if not i.endswith("+")]
    return interfaces, batch, family
