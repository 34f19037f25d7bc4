"""Rule files shaped like the ones people really have, for the benchmarks.

The project's first generator (``kubeproxy.py``) writes one very regular
shape; figures tuned on it did not hold on files generated independently
(issue #21).  Each generator here varies what real files vary:

``project``
    ``kubeproxy.generate`` unchanged (the shape the old figures came from).
``kube-iptables``
    kube-proxy's current iptables mode: random service and pod CIDRs,
    several ports per service, KUBE-EXT/KUBE-FW chains with
    loadBalancerSourceRanges, NodePorts, session affinity (``-m recent``),
    the ``"ns/svc:port -> ip:port"`` endpoint comments, names of every
    length.
``mixed``
    a hand-kept firewall where every rule has its own shape: random and
    abbreviated addresses (``10.3/16``), dotted masks, comments with quotes
    and spaces, multiport lists with ranges, port ranges, ``iprange``,
    ``set`` matches, many match modules on one rule, LOG prefixes, user
    chains reached by jumps, negations.
``kube-nftables``
    kube-proxy's nftables mode: verdict maps keyed by
    ``ip daddr . meta l4proto . th dport``, per-service and per-endpoint
    chains with ``numgen random mod N vmap``, ``external-*`` chains that
    mark node-port traffic for masquerade, sets of cluster IPs.

``generate(shape, n_rules, seed)`` returns ``(text, dialect)``;
``SHAPES`` lists the names.  ``set_names(text)`` lists the ipsets a file
matches (``iptables-restore --test`` needs them to exist).

    python bench/shapes.py kube-iptables --rules 100000 /tmp/kube.rules
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import random
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kubeproxy import KUBE_FILTER_CHAINS, KUBE_NAT_HEAD, KUBE_NAT_LAST  # noqa: E402
from kubeproxy import generate as _project  # noqa: E402

SHAPES = ("project", "kube-iptables", "mixed", "kube-nftables")


_WORDS = ("web", "api", "payments", "db", "auth", "search", "frontend", "billing-worker",
          "metrics-server", "coredns", "ingress-nginx-controller", "x", "kafka-0",
          "istio-ingressgateway", "a", "very-long-service-name-for-the-reporting-pipeline")


def _hash(*parts: str) -> str:
    import base64

    digest = hashlib.sha256("/".join(parts).encode()).digest()
    return base64.b32encode(digest).decode()[:16]


def _name(rng: random.Random) -> str:
    return "-".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 2)))


def _cidr_pool(rng: random.Random, prefix: int) -> ipaddress.IPv4Network:
    base = rng.choice(["10.0.0.0/8", "172.16.0.0/12", "100.64.0.0/10", "192.168.0.0/16"])
    net = ipaddress.ip_network(base)
    offset = rng.randrange(0, max(1, 2 ** (prefix - net.prefixlen))) << (32 - prefix)
    return ipaddress.ip_network((int(net.network_address) + offset, prefix))


def _host(rng: random.Random, net: ipaddress.IPv4Network) -> str:
    return str(net.network_address + rng.randrange(1, net.num_addresses - 1))


def _fresh(rng: random.Random, net: ipaddress.IPv4Network, used: set[str]) -> str:
    """A host address of ``net`` not in ``used`` (cluster IPs are unique)."""
    while True:
        ip = _host(rng, net)
        if ip not in used:
            used.add(ip)
            return ip


# --- kube-proxy, iptables mode (current) -------------------------------------------------------

def kube_iptables(n_rules: int = 100_000, seed: int = 1) -> str:
    rng = random.Random(seed)
    service_cidr = _cidr_pool(rng, 16)
    pod_cidr = _cidr_pool(rng, 14)
    lb_pool = ipaddress.ip_network("203.0.113.0/24")
    used: set[str] = set()
    nat_chains: list[str] = []
    nat: list[str] = []
    filt: list[str] = []
    count = index = 0
    while count < n_rules:
        index += 1
        ns, svc = _name(rng), _name(rng) + str(index)
        cluster_ip = _fresh(rng, service_cidr, used)
        lb_ip = _host(rng, lb_pool) if index % 13 == 0 else None
        affinity = index % 17 == 0
        for port_name, port, proto in rng.sample([("http", 80, "tcp"), ("https", 443, "tcp"),
                                                  ("dns", 53, "udp"), ("dns-tcp", 53, "tcp"),
                                                  ("grpc", 9090 + index % 7, "tcp"),
                                                  ("", 8000 + index % 1000, "tcp"),
                                                  ("sctp", 2905, "sctp")],
                                                 rng.choice((1, 1, 1, 2, 3))):
            sp = f"{ns}/{svc}:{port_name}" if port_name else f"{ns}/{svc}"
            svc_chain = "KUBE-SVC-" + _hash(sp, proto)
            nat_chains.append(svc_chain)
            endpoints = rng.choice((0, 1, 1, 2, 3, 5, 8)) if index % 31 else 0
            if endpoints == 0:
                filt.append(f"-A KUBE-SERVICES -d {cluster_ip}/32 -p {proto} -m comment --comment "
                            f"\"{sp} has no endpoints\" -m {proto} --dport {port} -j REJECT "
                            f"--reject-with icmp-port-unreachable")
                count += 1
                continue
            nat.append(f"-A KUBE-SERVICES -d {cluster_ip}/32 -p {proto} -m comment --comment "
                       f"\"{sp} cluster IP\" -m {proto} --dport {port} -j {svc_chain}")
            nat.append(f"-A {svc_chain} ! -s {pod_cidr} -d {cluster_ip}/32 -p {proto} -m comment "
                       f"--comment \"{sp} cluster IP\" -m {proto} --dport {port} -j KUBE-MARK-MASQ")
            count += 2
            target = svc_chain
            if lb_ip or index % 10 == 0:
                ext = "KUBE-EXT-" + _hash(sp, proto)
                nat_chains.append(ext)
                nat.append(f"-A {ext} -m comment --comment \"masquerade traffic for {sp} external "
                           f"destinations\" -j KUBE-MARK-MASQ")
                nat.append(f"-A {ext} -j {svc_chain}")
                node_port = 30000 + rng.randrange(2767)
                nat.append(f"-A KUBE-NODEPORTS -p {proto} -m comment --comment \"{sp}\" -m {proto} "
                           f"--dport {node_port} -j {ext}")
                count += 3
                target = ext
            if lb_ip:
                fw = "KUBE-FW-" + _hash(sp, proto)
                nat_chains.append(fw)
                nat.append(f"-A KUBE-SERVICES -d {lb_ip}/32 -p {proto} -m comment --comment "
                           f"\"{sp} loadbalancer IP\" -m {proto} --dport {port} -j {fw}")
                for src in rng.sample(["198.51.100.0/25", "192.0.2.64/26", "0.0.0.0/0",
                                       "203.0.113.128/25"], rng.randint(1, 3)):
                    nat.append(f"-A {fw} -s {src} -m comment --comment \"{sp} loadbalancer IP\" "
                               f"-j {target}")
                    count += 1
                nat.append(f"-A {fw} -m comment --comment \"other traffic to {sp} loadbalancer IP "
                           f"will be dropped by KUBE-PROXY-FIREWALL\"")
                filt.append(f"-A KUBE-PROXY-FIREWALL -d {lb_ip}/32 -p {proto} -m comment --comment "
                            f"\"{sp} traffic not accepted by {fw}\" -m {proto} --dport {port} -j DROP")
                count += 3
            target_port = rng.choice((port, 8080, 8443, 3000 + index % 100))
            eps = [(_host(rng, pod_cidr), target_port) for _ in range(endpoints)]
            seps = ["KUBE-SEP-" + _hash(sp, proto, ip) for ip, _ in eps]
            if affinity:
                for (ip, tp), sep in zip(eps, seps):
                    nat.append(f"-A {svc_chain} -m comment --comment \"{sp} -> {ip}:{tp}\" -m recent "
                               f"--rcheck --seconds 10800 --reap --name {sep} --mask 255.255.255.255 "
                               f"--rsource -j {sep}")
                    count += 1
            for e, ((ip, tp), sep) in enumerate(zip(eps, seps)):
                nat_chains.append(sep)
                remaining = endpoints - e
                stat = (f" -m statistic --mode random --probability {1 / remaining:.11f}"
                        if remaining > 1 else "")
                nat.append(f"-A {svc_chain} -m comment --comment \"{sp} -> {ip}:{tp}\"{stat} -j {sep}")
                nat.append(f"-A {sep} -s {ip}/32 -m comment --comment \"{sp}\" -j KUBE-MARK-MASQ")
                recent = (f" -m recent --set --name {sep} --mask 255.255.255.255 --rsource"
                          if affinity else "")
                nat.append(f"-A {sep} -p {proto} -m comment --comment \"{sp}\"{recent} -m {proto} "
                           f"-j DNAT --to-destination {ip}:{tp}")
                count += 3
    out = ["# Generated by iptables-save v1.8.9 (nf_tables) on Sun Dec  6 07:00:00 2026",
           "*mangle", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]",
           ":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]", ":KUBE-IPTABLES-HINT - [0:0]",
           ":KUBE-KUBELET-CANARY - [0:0]", ":KUBE-PROXY-CANARY - [0:0]", "COMMIT",
           "*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
           ":KUBE-EXTERNAL-SERVICES - [0:0]", ":KUBE-FIREWALL - [0:0]", ":KUBE-FORWARD - [0:0]",
           ":KUBE-KUBELET-CANARY - [0:0]", ":KUBE-NODEPORTS - [0:0]", ":KUBE-PROXY-CANARY - [0:0]",
           ":KUBE-PROXY-FIREWALL - [0:0]", ":KUBE-SERVICES - [0:0]",
           "-A INPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer "
           "firewall\" -j KUBE-PROXY-FIREWALL",
           "-A INPUT -m comment --comment \"kubernetes health check service ports\" -j KUBE-NODEPORTS",
           "-A INPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible "
           "service portals\" -j KUBE-EXTERNAL-SERVICES",
           "-A INPUT -j KUBE-FIREWALL",
           "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer "
           "firewall\" -j KUBE-PROXY-FIREWALL",
           "-A FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD",
           "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes service "
           "portals\" -j KUBE-SERVICES",
           "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible "
           "service portals\" -j KUBE-EXTERNAL-SERVICES",
           "-A OUTPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer "
           "firewall\" -j KUBE-PROXY-FIREWALL",
           "-A OUTPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes service "
           "portals\" -j KUBE-SERVICES",
           "-A OUTPUT -j KUBE-FIREWALL",
           *KUBE_FILTER_CHAINS,
           *filt, "COMMIT",
           "*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
           ":POSTROUTING ACCEPT [0:0]", ":KUBE-KUBELET-CANARY - [0:0]", ":KUBE-MARK-MASQ - [0:0]",
           ":KUBE-NODEPORTS - [0:0]", ":KUBE-POSTROUTING - [0:0]", ":KUBE-PROXY-CANARY - [0:0]",
           ":KUBE-SERVICES - [0:0]",
           *(f":{c} - [0:0]" for c in nat_chains),
           *KUBE_NAT_HEAD,
           *nat,
           KUBE_NAT_LAST,
           "COMMIT", "# Completed on Sun Dec  6 07:00:00 2026", ""]
    return "\n".join(out)


# --- a hand-kept firewall, every rule its own shape -------------------------------------------

_COMMENTS = ('"allow web from Bob\'s office"', '"ticket #4711: \\"temporary\\" opening"',
             '"monitoring (nagios) -- keep!"', '"VPN peers; see wiki/Firewall Rules"',
             "no-spaces-comment", '"  leading and trailing spaces  "', '"ünïcödé comment"')
_SETS = ("blocklist4", "office-nets", "crawlers", "admins")


def _addr(rng: random.Random) -> str:
    kind = rng.randrange(7)
    a, b, c, d = rng.randrange(1, 224), rng.randrange(256), rng.randrange(256), rng.randrange(1, 255)
    if kind == 0:
        return f"{a}.{b}.{c}.{d}"
    if kind == 1:
        return f"{a}.{b}.{c}.{d}/32"
    if kind == 2:
        p = rng.randrange(8, 31)
        net = ipaddress.ip_network((a << 24 | b << 16 | c << 8 | d, p), strict=False)
        return str(net)
    if kind == 3:
        return f"{a}.{b}/16"            # abbreviated: 10.3 means 10.3.0.0
    if kind == 4:
        p = rng.randrange(8, 31)
        mask = ipaddress.ip_network(f"0.0.0.0/{p}").netmask
        return f"{a}.{b}.{c}.0/{mask}"   # dotted mask
    if kind == 5:
        return f"{a}.{b}.{c}.{d}/255.255.255.255"
    return f"{a}.{b}.{c}.0/24"


def _ports(rng: random.Random, n: int) -> str:
    parts = []
    for _ in range(n):
        lo = rng.randrange(1, 60000)
        parts.append(f"{lo}:{lo + rng.randrange(1, 500)}" if rng.random() < 0.25 else str(lo))
    return ",".join(parts)


def _mixed_rule(rng: random.Random, chain: str, jumps: list[str], iface: str | None = "i") -> str:
    parts = [f"-A {chain}"]
    if rng.random() < 0.3:
        parts.append(("! " if rng.random() < 0.2 else "") + f"-s {_addr(rng)}")
    if rng.random() < 0.3:
        parts.append(f"-d {_addr(rng)}")
    if iface and rng.random() < 0.2:
        parts.append(f"-{iface} {rng.choice(['eth0', 'eth1', 'wg0', 'br-lan', 'veth+', 'enp3s0f1'])}")
    proto = rng.choice(["tcp", "tcp", "tcp", "udp", "udp", "icmp", None])
    if proto:
        parts.append(f"-p {proto}")
    shape = rng.randrange(6)
    if proto in ("tcp", "udp"):
        if shape == 0:
            parts.append(f"-m multiport --dports {_ports(rng, rng.randint(2, 7))}")
        elif shape == 1:
            parts.append(f"-m {proto} --sport 1024:65535 --dport {rng.randrange(1, 65535)}")
        elif shape == 2:
            lo = rng.randrange(1, 60000)
            parts.append(f"-m {proto} ! --dport {lo}:{lo + rng.randrange(1, 5000)}")
        elif shape == 3 and proto == "tcp":
            parts.append(f"-m tcp --dport {rng.randrange(1, 65535)} --tcp-flags FIN,SYN,RST,ACK SYN")
        else:
            parts.append(f"-m {proto} --dport {rng.randrange(1, 65535)}")
    elif proto == "icmp":
        parts.append(f"-m icmp --icmp-type {rng.choice(['8', 'echo-request', '3/4', '11', '0'])}")
    extras = rng.sample(range(10), rng.choice((0, 0, 1, 2, 3, 5)))
    for e in extras:
        if e == 0:
            parts.append(f"-m conntrack --ctstate {rng.choice(['NEW', 'NEW,ESTABLISHED', 'RELATED,ESTABLISHED', 'INVALID'])}")
        elif e == 1:
            parts.append(f"-m limit --limit {rng.randint(1, 50)}/{rng.choice(['sec', 'min', 'hour'])} "
                         f"--limit-burst {rng.randint(1, 100)}")
        elif e == 2:
            parts.append(f"-m mark --mark 0x{rng.randrange(1, 255):x}/0xff")
        elif e == 3:
            lo = rng.randrange(20, 1000)
            parts.append(f"-m length --length {lo}:{lo + rng.randrange(1, 500)}")
        elif e == 4:
            parts.append(f"-m ttl --ttl-gt {rng.randrange(1, 60)}")
        elif e == 5:
            parts.append(f"-m pkttype --pkt-type {rng.choice(['unicast', 'broadcast', 'multicast'])}")
        elif e == 6:
            parts.append(f"-m addrtype --dst-type {rng.choice(['LOCAL', 'UNICAST', 'BROADCAST'])}")
        elif e == 7:
            lo, hi = rng.randrange(1, 200), rng.randrange(200, 255)
            parts.append(f"-m iprange --src-range 10.{lo}.0.1-10.{hi}.255.254")
        elif e == 8:
            parts.append(f"-m set --match-set {rng.choice(_SETS)} {rng.choice(['src', 'dst'])}")
        else:
            parts.append(f"-m comment --comment {rng.choice(_COMMENTS)}")
    if rng.random() < 0.4:
        parts.append(f"-m comment --comment {rng.choice(_COMMENTS)}")
    target = rng.random()
    if target < 0.35:
        parts.append("-j ACCEPT")
    elif target < 0.55:
        parts.append("-j DROP")
    elif target < 0.65 and proto == "tcp":
        parts.append("-j REJECT --reject-with tcp-reset")
    elif target < 0.75:
        parts.append("-j REJECT --reject-with icmp-host-prohibited")
    elif target < 0.82:
        prefix = rng.choice(['"fw drop: "', "IN-DROP:", '"[blocked] "'])
        parts.append(f"-j LOG --log-prefix {prefix} "
                     f"--log-level {rng.randrange(8)}")
    elif target < 0.9 or not jumps:
        parts.append("-j RETURN")
    else:
        parts.append(f"-j {rng.choice(jumps)}")
    return " ".join(parts)


def mixed(n_rules: int = 100_000, seed: int = 1) -> str:
    rng = random.Random(seed)
    n_chains = max(4, n_rules // 400)
    chains = [f"{rng.choice(['in', 'fwd', 'svc', 'zone', 'NET', 'block'])}_{i}" for i in range(n_chains)]
    per = n_rules // (n_chains + 3)
    out = ["# hand-kept rules, restored at boot", "*filter", ":INPUT DROP [0:0]",
           ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]"]
    out += [f":{c} - [0:0]" for c in chains]
    out.append("-A INPUT -i lo -j ACCEPT")
    out.append("-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
    for base in ("INPUT", "FORWARD", "OUTPUT"):
        for _ in range(per):
            # base chains may reach any user chain; user chain i only later ones (no loops)
            out.append(_mixed_rule(rng, base, chains[:50], "o" if base == "OUTPUT" else "i"))
    for i, c in enumerate(chains):
        # chains come in trees of 8: a jump goes deeper in its own tree, so
        # calls nest at most 9 deep (the analyzers stop at 64)
        later = [d for j, d in enumerate(chains[i + 1:i + 6], i + 1) if j // 8 == i // 8]
        for _ in range(per):
            # chains reached from OUTPUT (and INPUT) take neither -i nor -o
            out.append(_mixed_rule(rng, c, later, "i" if i >= 55 else None))
    out += ["COMMIT", ""]
    return "\n".join(out)


def set_names(text: str) -> list[str]:
    """The ipset names an iptables file matches with ``-m set``."""
    return sorted(set(re.findall(r"--match-set (\S+)", text)))


# --- kube-proxy, nftables mode ------------------------------------------------------------------

def kube_nftables(n_rules: int = 100_000, seed: int = 1) -> str:
    rng = random.Random(seed)
    service_cidr = _cidr_pool(rng, 16)
    pod_cidr = _cidr_pool(rng, 14)
    chains: list[str] = []
    service_ips: list[str] = []
    cluster_ips: set[str] = set()
    no_endpoints: list[str] = []
    nodeports: list[str] = []
    used_nodeports: set[int] = set()
    count = index = 0
    while count < n_rules:
        index += 1
        ns, svc = _name(rng), _name(rng) + str(index)
        cluster_ip = _fresh(rng, service_cidr, cluster_ips)
        for port_name, port, proto in rng.sample([("http", 80, "tcp"), ("https", 443, "tcp"),
                                                  ("dns", 53, "udp"), ("grpc", 9090, "tcp"),
                                                  ("p", 8000 + index % 1000, "tcp")],
                                                 rng.choice((1, 1, 2, 3))):
            key = f"{ns}/{svc}/{proto}/{port_name}"
            endpoints = rng.choice((0, 1, 1, 2, 3, 5))
            if endpoints == 0:
                no_endpoints.append(f"{cluster_ip} . {proto} . {port} : goto reject-chain")
                continue
            svc_chain = f"service-{_hash(key)[:8]}-{key}"
            service_ips.append(f"{cluster_ip} . {proto} . {port} : goto {svc_chain}")
            if index % 10 == 0 and len(used_nodeports) < 2700:
                while (node_port := 30000 + rng.randrange(2767)) in used_nodeports:
                    pass
                used_nodeports.add(node_port)
                # (as kube-proxy does for externalTrafficPolicy Cluster: the
                # node port's traffic is marked for masquerade first, then the
                # service chain; cf. KUBE-EXT in the iptables shape)
                ext_chain = f"external-{_hash(key)[:8]}-{key}"
                nodeports.append(f"{proto} . {node_port} : goto {ext_chain}")
                chains.append(f"\tchain {ext_chain} {{\n\t\tjump mark-for-masquerade\n"
                              f"\t\tgoto {svc_chain}\n\t}}\n")
                count += 2
            target_port = rng.choice((port, 8080, 8443))
            eps = [_host(rng, pod_cidr) for _ in range(endpoints)]
            ep_chains = [f"endpoint-{_hash(key, ip)[:8]}-{key}__{ip}/{target_port}" for ip in eps]
            vmap = ", ".join(f"{i} : goto {c}" for i, c in enumerate(ep_chains))
            chains.append(f"\tchain {svc_chain} {{\n"
                          f"\t\tip daddr {cluster_ip} {proto} dport {port} ip saddr != {pod_cidr} "
                          f"jump mark-for-masquerade\n"
                          f"\t\tnumgen random mod {endpoints} vmap {{ {vmap} }}\n\t}}\n")
            count += 2
            for ip, chain in zip(eps, ep_chains):
                chains.append(f"\tchain {chain} {{\n\t\tip saddr {ip} jump mark-for-masquerade\n"
                              f"\t\tmeta l4proto {proto} dnat to {ip}:{target_port}\n\t}}\n")
                count += 2

    def elements(items) -> str:
        items = list(items)
        return f" elements = {{ {', '.join(items)} }}" if items else ""

    head = f"""table ip kube-proxy {{
\tcomment "rules for kube-proxy"
\tset cluster-ips {{
\t\ttype ipv4_addr
\t\tcomment "Active ClusterIPs"
\t\t{elements(sorted(cluster_ips)).strip()}
\t}}
\tmap no-endpoint-services {{
\t\ttype ipv4_addr . inet_proto . inet_service : verdict
\t\tcomment "vmap to drop or reject packets to services with no endpoints"
\t\t{elements(no_endpoints).strip()}
\t}}
\tmap service-ips {{
\t\ttype ipv4_addr . inet_proto . inet_service : verdict
\t\tcomment "ClusterIP, ExternalIP and LoadBalancer IP traffic"
\t\t{elements(service_ips).strip()}
\t}}
\tmap service-nodeports {{
\t\ttype inet_proto . inet_service : verdict
\t\tcomment "NodePort traffic"
\t\t{elements(nodeports).strip()}
\t}}
\tchain filter-input {{
\t\ttype filter hook input priority -110; policy accept;
\t\tct state new jump service-endpoints-check
\t}}
\tchain filter-forward {{
\t\ttype filter hook forward priority -110; policy accept;
\t\tct state new jump service-endpoints-check
\t\tct state new jump cluster-ips-check
\t}}
\tchain filter-output {{
\t\ttype filter hook output priority -110; policy accept;
\t\tct state new jump service-endpoints-check
\t}}
\tchain filter-output-post-dnat {{
\t\ttype filter hook output priority -90; policy accept;
\t\tct state new jump cluster-ips-check
\t}}
\tchain nat-prerouting {{
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t\tjump services
\t}}
\tchain nat-output {{
\t\ttype nat hook output priority -100; policy accept;
\t\tjump services
\t}}
\tchain nat-postrouting {{
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\tjump masquerading
\t}}
\tchain reject-chain {{
\t\tcomment "helper for @no-endpoint-services / @no-endpoint-nodeports"
\t\treject
\t}}
\tchain cluster-ips-check {{
\t\tip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"
\t\tip daddr {service_cidr} drop comment "Drop traffic to unallocated ClusterIPs"
\t}}
\tchain mark-for-masquerade {{
\t\tmeta mark set meta mark | 0x00004000
\t}}
\tchain masquerading {{
\t\tmeta mark & 0x00004000 == 0x00000000 return
\t\tmeta mark set meta mark ^ 0x00004000
\t\tmasquerade fully-random
\t}}
\tchain services {{
\t\tip daddr . meta l4proto . th dport vmap @service-ips
\t\tfib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports
\t}}
\tchain service-endpoints-check {{
\t\tip daddr . meta l4proto . th dport vmap @no-endpoint-services
\t}}
"""
    return head + "".join(chains) + "}\n"


def generate(shape: str, n_rules: int = 100_000, seed: int = 1) -> tuple[str, str]:
    """``(text, dialect)`` of about ``n_rules`` rules in ``shape``."""
    if shape == "project":
        return _project(n_rules, seed), "iptables"
    if shape == "kube-iptables":
        return kube_iptables(n_rules, seed), "iptables"
    if shape == "mixed":
        return mixed(n_rules, seed), "iptables"
    if shape == "kube-nftables":
        return kube_nftables(n_rules, seed), "nftables"
    raise ValueError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")


def shape_list(text: str) -> list[str]:
    """argparse type of ``--shapes``: comma-separated names of SHAPES (an
    unknown one is a usage error, not a traceback after the setup)."""
    names = [s for s in text.split(",") if s]
    unknown = [s for s in names if s not in SHAPES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown shape {', '.join(unknown)}; known: {', '.join(SHAPES)}")
    return names


def per_shape_arguments(description: str) -> argparse.ArgumentParser:
    """The options of a benchmark that runs on one file (``--file``) or on
    generated shapes, each in its own process (:func:`each_in_own_process`):
    ``--rules``, ``--shape`` (repeatable; every shape without it), ``--file``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--rules", type=int, default=20_000)
    parser.add_argument("--shape", action="append", choices=SHAPES)
    parser.add_argument("--file")
    return parser


def each_in_own_process(script: str, shapes, n_rules: int, extra=()) -> None:
    """Generate each of ``shapes`` (every shape when empty) with about
    ``n_rules`` rules and run ``script --file PATH *extra`` on it in a fresh
    Python process: one shape's memory and caches never weigh on the next."""
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        for shape in shapes or SHAPES:
            path = str(Path(tmp) / f"{shape}-{n_rules}.rules")
            subprocess.run([sys.executable, __file__, "--rules", str(n_rules), shape, path], check=True)
            subprocess.run([sys.executable, script, "--file", path, *extra], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shape", choices=SHAPES)
    parser.add_argument("path", help="where to write the file")
    parser.add_argument("--rules", type=int, default=100_000, help="about how many rules")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    text, _ = generate(args.shape, args.rules, args.seed)
    with open(args.path, "w", encoding="utf-8") as handle:
        handle.write(text)


if __name__ == "__main__":
    main()
