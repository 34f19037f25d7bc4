"""How docs/precision/issue-13.tsv was filled: every finding of
``bench/precision_exposure.py --dump`` was read (message, rule, and the
ruleset around it) and judged; findings that share a cause were judged
once per cause, and the judgement is written here as rules over the
finding rows, each with the reason an admin would give. Files read to make
a judgement are named in the reasons. Re-run after the checks change:

    python bench/precision_exposure.py --dump /tmp/rows.tsv
    python docs/precision/classify_issue13.py /tmp/rows.tsv > docs/precision/issue-13.tsv

A row no rule covers is left "unclassified" (and fails the bench), so a
new finding is read before it is counted.
"""

from __future__ import annotations

import csv
import re
import sys

#: (code, file pattern, message pattern, verdict, why) — first match wins.
RULES = [
    # ---- noisy / false, judged one by one -------------------------------
    ("RA40[13]", r"\(firewalld's nft ruleset\)", r"forwarded", "noisy",
     "firewalld zone compiled to nft: forwarding between the zone's interfaces; nothing says the "
     "host routes from the internet (trusted/libvirt/nm-shared zones are internal by purpose)"),
    ("RA403", r"firewalld/crisis1er.*public\.xml", r"forwarded", "noisy",
     "same: intra-zone forwarding on br0, role unknown and forwarding not known"),
    ("RA401", r"firewalld/crisis1er.*public\.xml", r"forwarded", "noisy",
     "same: intra-zone forwarding on br0 (a warning with the interface caveat)"),
    ("RA403", r"configs_chair_for_Network_Architectures", r"Telnet", "noisy",
     "INPUT ACCEPT policy: interfaces other than the filtered eth1.110/eth1.1024 accept every port "
     "bar the recent DEFAULT list; those unnamed interfaces are most likely internal, the roles "
     "cannot be inferred"),
    ("RA403", r"nftables-rs/.*space-keys", r"ct helper", "noisy",
     "syntax test file; the forward policy accepts anyway — the real undecided part is the "
     "unmodelled tcp option statement, not the ct helper named"),
    ("RA403", r"packetpath__dumps__set_lookups", r"", "noisy",
     "upstream test dump: the undecided part is a concatenated set lookup; the reason text names "
     "only '\"lo\"'"),
    ("RA402", r"configs_serverfault__765855", r"", "true",
     "-A INPUT -i eth0 -j ACCEPT, and eth0 is the WAN (MASQUERADE -o eth0, forwarding from eth1/eth2 "
     "to it): every port of the router is open to the internet (was a noisy RA403 while the walk "
     "lost the CONNMARK copy's lower bound)"),
    ("RA204", r"configs_serverfault__765855", r"", "true",
     "every ICMP packet gets mark 0x2 (mangle), which CONNMARK saves and restores; FORWARD lets "
     "eth0 -> eth1 through only with mark 0x1 and has no RELATED accept that way: frag-needed "
     "errors for the eth1 network die at the DROP policy"),
    ("RA401", r"found_online__myiptables__firewall\.conf", r"forwarded", "noisy",
     "FORWARD ACCEPT everywhere; forwarding of the host not evident"),
    ("RA402", r"majek_dump_vpn__vpn__iptables\.up\.rules\.del", r"", "noisy",
     "a flush file (empty *nat and *filter): true of what it loads, but not a host's ruleset"),
    # ---- true, by cause ----------------------------------------------------
    ("RA403", r"^terraform/", r"no value given|parameter without a default", "true",
     "the source is an input still to be given (a variable or parameter without a value): the "
     "port is open to whatever it is set to, 0.0.0.0/0 included — 'likely, depends on X' names it"),
    ("RA401", r"space-keys", r"forwarded", "true",
     "forward policy accept on a host whose forward chain has an accept rule (ct helper): every "
     "forwarded connection is accepted, helper or not (an upstream syntax-test file, but that is "
     "what it loads)"),
    ("RA401", r"^(aws-sg|azure-nsg|gcp-firewall|terraform)/", r"", "true",
     "the security group / NSG / firewall rule admits the port from 0.0.0.0/0 (or ::/0) for the "
     "target audited; cloud-custodian, gcpdiag, checkov, kics, regula and tfsec test data were "
     "written to hold such rules (their 'pass'/'valid' cases included: IpProtocol -1 ignores "
     "the ports, self = true does not drop the CIDR)"),
    ("RA402", r"^(aws-sg|aws-nacl|azure-nsg|gcp-firewall|terraform)/", r"", "true",
     "an allow-all entry (IpProtocol -1 / all / *) from anywhere, or a NACL allowing all; the "
     "finding points at its JSON path"),
    ("RA401", r"firewalld", r"SSH \(22/tcp, IPv4\)|SSH \(22/tcp, IPv6\)|MSSQL", "true",
     "the zone's services (ssh, cockpit …) are open to any source in that zone; firewalld's stock "
     "zones open ssh"),
    ("RA403", r"firewalld", r"fib saddr", "true",
     "same services on IPv6: open unless the reverse-path filter drops the source, which real "
     "traffic passes — 'likely open' is the honest wording"),
    ("RA403", r"firewalld", r"applies only to|source is", "true",
     "open unless the zone's source binding excludes it"),
    ("RA402", r"firewalld", r"", "true", "the trusted zone / direct rule accepts everything"),
    ("RA401", r"", r"if those interfaces face the internet", "true",
     "conditional claim, and the condition is plausible: the interface named (eth0/eth1/enp0s25/"
     "s1-wan …) carries the open port and nothing says it is internal"),
    ("RA402", r"", r"if those interfaces face the internet", "true",
     "conditional claim: everything is accepted on the named interface"),
    ("RA401", r"", r"forwarded", "true",
     "a router or routed firewall: the FORWARD path accepts new connections to public destinations "
     "(or DNATed ones) on these ports from any source (policy ACCEPT or an accept on -d server "
     "without -s: psa, Contrived, memphis testbed, wireless, openvpn.eu, nat64 router)"),
    ("RA401", r"", r"", "true",
     "the accept rule admits the port from every public source (no -s, or blocklists/bans only); "
     "the SYN-ACK is let out (conntrack or OUTPUT ACCEPT)"),
    ("RA402", r"configs_ugent", r"", "true",
     "stateless INPUT accepts any TCP from source port 53/80/443/22: a public source choosing that "
     "port reaches every port (the classic --sport hole)"),
    ("RA402", r"ufw-upstream-conf", r"", "true",
     "ufw.conf says ENABLED=no: ufw is inactive, nothing is filtered"),
    ("RA402", r"", r"is forwarded", "true",
     "a router whose FORWARD path accepts every new connection to public (or DNATed) destinations "
     "from any source (policy ACCEPT or an unconditional accept: psa, memphis testbed, nat64 router, "
     "iptables-semantics worst_case, linuxforum)"),
    ("RA402", r"", r"", "true",
     "INPUT (or the nft input chain) accepts every connection: ACCEPT policy with nothing that "
     "drops, or -j ACCEPT without conditions — the host has no inbound filter"),
    ("RA403", r"", r"recent|packet rate|quota|hashlimit|fib saddr|ipset|set @|compat expression",
     "true",
     "the port is open to all, except for what a rate limit, recent list, quota, set or "
     "reverse-path check decides — exactly the 'likely exposed — depends on X' case"),
    ("RA403", r"", r"", "true", "open to all unless the named undecidable match says otherwise"),
    ("RA201", r"", r"", "true",
     "the accepting rule's SYN is let in, the SYN-ACK/ACK is dropped (no ESTABLISHED accept on the "
     "way back: topoS, psa team_a/c, set_define test) — the handshake cannot complete"),
    ("RA204", r"", r"", "true",
     "RELATED frag-needed/packet-too-big from public routers on interfaces where TCP connections "
     "complete hit a DROP policy (no RELATED accept, or ICMP only echo): PMTU black hole"),
    ("RA205", r"", r"", "true",
     "policy drop (or reject in prerouting) with no ICMPv6 accepted: neighbour solicitation and "
     "advertisement die, IPv6 stops working"),
]


def classify(row: dict) -> tuple[str, str]:
    for code, file_re, msg_re, verdict, why in RULES:
        if re.fullmatch(code, row["code"]) and re.search(file_re, row["file"]) and re.search(msg_re, row["message"]):
            return verdict, why
    return "unclassified", ""


def main(path: str) -> None:
    with open(path) as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    out = csv.DictWriter(sys.stdout, ("code", "file", "where", "message", "verdict", "why"), delimiter="\t",
                         extrasaction="ignore", lineterminator="\n")
    out.writeheader()
    for row in rows:
        row["verdict"], row["why"] = classify(row)
        out.writerow(row)


if __name__ == "__main__":
    main(sys.argv[1])
