"""Generate a kube-proxy-shaped iptables-save file (iptables mode).

The shape follows what kube-proxy writes: a nat table with KUBE-SERVICES
dispatching on cluster IPs to KUBE-SVC-* chains, which pick an endpoint
with ``-m statistic --mode random --probability`` and jump to KUBE-SEP-*
chains that mark hairpin traffic and DNAT; NodePorts; KUBE-MARK-MASQ and
KUBE-POSTROUTING; plus the filter table's KUBE-FORWARD / KUBE-FIREWALL /
KUBE-SERVICES chains.

    python bench/kubeproxy.py --rules 100000 /tmp/kube.rules
"""

from __future__ import annotations

import argparse
import hashlib
import random


#: kube-proxy's filter-table KUBE-FIREWALL and KUBE-FORWARD rules (every mode, every version).
KUBE_FILTER_CHAINS = [
    "-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment \"block incoming "
    "localnet connections\" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP",
    "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
    "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark "
    "--mark 0x4000/0x4000 -j ACCEPT",
    "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding conntrack rule\" "
    "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
]


#: The nat table's base-chain hooks, masquerade marking and SNAT (every version).
KUBE_NAT_HEAD = [
    "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
    "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
    "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING",
    "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
    "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
    "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0",
    "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" "
    "-j MASQUERADE --random-fully",
]
#: The last rule of the nat KUBE-SERVICES chain.
KUBE_NAT_LAST = ("-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must "
                 "be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS")


def _chain_id(*parts: str) -> str:
    # kube-proxy names chains by a base32 hash of the service/endpoint
    digest = hashlib.sha256("/".join(parts).encode()).hexdigest().upper()
    return digest[:16]


def generate(n_rules: int = 100_000, seed: int = 1) -> str:
    """An iptables-save text with about ``n_rules`` rules."""
    rng = random.Random(seed)
    nat_chains: list[str] = []
    nat_rules: list[str] = []
    filter_rules: list[str] = []
    services = []
    count = 0
    index = 0
    while count < n_rules:
        index += 1
        ns = f"ns{index % 97}"
        svc = f"svc{index}"
        port_name = rng.choice(["http", "https", "grpc", "metrics"])
        cluster_ip = f"10.96.{(index >> 8) & 255}.{index & 255}"
        port = rng.choice([80, 443, 8080, 9090, 53])
        proto = "udp" if port == 53 else "tcp"
        svc_chain = "KUBE-SVC-" + _chain_id(ns, svc, port_name)
        comment = f'"{ns}/{svc}:{port_name} cluster IP"'
        nat_chains.append(svc_chain)
        nat_rules.append(f"-A KUBE-SERVICES -d {cluster_ip}/32 -p {proto} -m comment --comment "
                         f"{comment} -m {proto} --dport {port} -j {svc_chain}")
        nat_rules.append(f"-A {svc_chain} ! -s 10.244.0.0/16 -d {cluster_ip}/32 -p {proto} "
                         f"-m comment --comment {comment} -m {proto} --dport {port} -j KUBE-MARK-MASQ")
        count += 2
        if index % 10 == 0:
            node_port = 30000 + index % 2767
            nat_rules.append(f"-A KUBE-NODEPORTS -p {proto} -m comment --comment "
                             f'"{ns}/{svc}:{port_name}" -m {proto} --dport {node_port} -j {svc_chain}')
            count += 1
        endpoints = rng.randint(1, 4)
        for e in range(endpoints):
            pod_ip = f"10.244.{rng.randint(0, 255)}.{rng.randint(2, 254)}"
            sep = "KUBE-SEP-" + _chain_id(ns, svc, port_name, pod_ip)
            nat_chains.append(sep)
            remaining = endpoints - e
            if remaining > 1:
                probability = f"{1 / remaining:.11f}"
                nat_rules.append(f"-A {svc_chain} -m comment --comment \"{ns}/{svc}:{port_name}\" "
                                 f"-m statistic --mode random --probability {probability} -j {sep}")
            else:
                nat_rules.append(f"-A {svc_chain} -m comment --comment \"{ns}/{svc}:{port_name}\" "
                                 f"-j {sep}")
            nat_rules.append(f"-A {sep} -s {pod_ip}/32 -m comment --comment "
                             f"\"{ns}/{svc}:{port_name}\" -j KUBE-MARK-MASQ")
            nat_rules.append(f"-A {sep} -p {proto} -m comment --comment \"{ns}/{svc}:{port_name}\" "
                             f"-m {proto} -j DNAT --to-destination {pod_ip}:{port}")
            count += 3
        services.append((ns, svc, port_name, cluster_ip, port, proto))
        if index % 25 == 0:
            filter_rules.append(f"-A KUBE-SERVICES -d {cluster_ip}/32 -p {proto} -m comment "
                                f"--comment \"{ns}/{svc}:{port_name} has no endpoints\" "
                                f"-m {proto} --dport {port} -j REJECT --reject-with icmp-port-unreachable")
            count += 1

    out = ["# Generated by iptables-save v1.8.9 (nf_tables)", "*filter",
           ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
           ":KUBE-EXTERNAL-SERVICES - [0:0]", ":KUBE-FIREWALL - [0:0]", ":KUBE-FORWARD - [0:0]",
           ":KUBE-NODEPORTS - [0:0]", ":KUBE-PROXY-CANARY - [0:0]", ":KUBE-SERVICES - [0:0]",
           "-A INPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer "
           "firewall\" -j KUBE-PROXY-FIREWALL".replace("KUBE-PROXY-FIREWALL", "KUBE-FIREWALL"),
           "-A INPUT -m comment --comment \"kubernetes health check service ports\" -j KUBE-NODEPORTS",
           "-A INPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible "
           "service portals\" -j KUBE-EXTERNAL-SERVICES",
           "-A INPUT -j KUBE-FIREWALL",
           "-A FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD",
           "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes service "
           "portals\" -j KUBE-SERVICES",
           "-A OUTPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes service "
           "portals\" -j KUBE-SERVICES",
           "-A OUTPUT -j KUBE-FIREWALL",
           *KUBE_FILTER_CHAINS,
           *filter_rules, "COMMIT",
           "*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
           ":POSTROUTING ACCEPT [0:0]", ":KUBE-MARK-MASQ - [0:0]", ":KUBE-NODEPORTS - [0:0]",
           ":KUBE-POSTROUTING - [0:0]", ":KUBE-SERVICES - [0:0]",
           *(f":{c} - [0:0]" for c in nat_chains),
           *KUBE_NAT_HEAD,
           *nat_rules,
           KUBE_NAT_LAST,
           "COMMIT", ""]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", help="where to write the file")
    parser.add_argument("--rules", type=int, default=100_000, help="about how many rules")
    args = parser.parse_args()
    with open(args.path, "w", encoding="utf-8") as handle:
        handle.write(generate(args.rules))


if __name__ == "__main__":
    main()
