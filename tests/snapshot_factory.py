"""Synthetic host snapshots for tests and benchmarks: the files ``collect``
writes, made from a few parameters (documentation addresses only)."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

from ruleanalyzer.collect import Collected, write_snapshot


def addr_json(interfaces: dict[str, list[str]], bridges: dict[str, str] | None = None) -> str:
    """``ip -j addr`` for ``{"eth0": ["192.0.2.10/24"], ...}`` (lo added)."""
    links = [{"ifindex": 1, "ifname": "lo", "flags": ["LOOPBACK", "UP"], "addr_info": [
        {"family": "inet", "local": "127.0.0.1", "prefixlen": 8, "scope": "host"},
        {"family": "inet6", "local": "::1", "prefixlen": 128, "scope": "host"}]}]
    for i, (name, addrs) in enumerate(interfaces.items(), 2):
        info = []
        for a in addrs:
            iface = ipaddress.ip_interface(a)
            info.append({"family": "inet" if iface.version == 4 else "inet6", "local": str(iface.ip),
                         "prefixlen": iface.network.prefixlen, "scope": "global"})
        link = {"ifindex": i, "ifname": name, "flags": ["BROADCAST", "UP"], "addr_info": info}
        if bridges and name in bridges:
            link["master"] = bridges[name]
        links.append(link)
    return json.dumps(links)


def routes_json(interfaces: dict[str, list[str]], default: tuple[str, str] | None,
                extra: list[dict] | None = None, family: int = 4) -> str:
    """``ip -j -4 route show table all``: connected routes, local/broadcast
    entries of the local table, an optional default ``(gateway, dev)``."""
    out = []
    if default:
        out.append({"dst": "default", "gateway": default[0], "dev": default[1], "flags": []})
    out += extra or []
    for name, addrs in interfaces.items():
        for a in addrs:
            iface = ipaddress.ip_interface(a)
            if iface.version != family:
                continue
            out.append({"dst": str(iface.network), "dev": name, "protocol": "kernel", "scope": "link",
                        "prefsrc": str(iface.ip), "flags": []})
            out.append({"type": "local", "dst": str(iface.ip), "dev": name, "table": "local",
                        "protocol": "kernel", "scope": "host", "prefsrc": str(iface.ip), "flags": []})
            if family == 4 and iface.network.prefixlen < 31:
                out.append({"type": "broadcast", "dst": str(iface.network.broadcast_address), "dev": name,
                            "table": "local", "protocol": "kernel", "scope": "link",
                            "prefsrc": str(iface.ip), "flags": []})
    if family == 4:
        out.append({"type": "local", "dst": "127.0.0.0/8", "dev": "lo", "table": "local", "flags": []})
    else:
        out.append({"type": "local", "dst": "::1", "dev": "lo", "table": "local", "flags": []})
    return json.dumps(out)


def default_rules(family: int = 4, extra: list[dict] | None = None) -> str:
    rules = [{"priority": 0, "src": "all", "table": "local"}, *(extra or []),
             {"priority": 32766, "src": "all", "table": "main"}]
    if family == 4:
        rules.append({"priority": 32767, "src": "all", "table": "default"})
    return json.dumps(rules)


def make_snapshot(path: str | Path, hostname: str, *, iptables: str = "", ip6tables: str = "",
                  interfaces: dict[str, list[str]] | None = None, default: tuple[str, str] | None = None,
                  routes: list[dict] | None = None, rules: list[dict] | None = None,
                  sysctls: dict[str, str] | None = None, ipsets: str = "", role: str | None = None,
                  nft_json: str | None = None) -> str:
    """Write a snapshot directory (or archive, by suffix) and return its path."""
    interfaces = interfaces if interfaces is not None else {"eth0": ["192.0.2.10/24"]}
    files = {
        "iptables-nft-save.txt": iptables, "ip6tables-nft-save.txt": ip6tables,
        "ip-addr.json": addr_json(interfaces),
        "ip-route4.json": routes_json(interfaces, default, routes),
        "ip-route6.json": routes_json(interfaces, None, None, 6),
        "ip-rule4.json": default_rules(4, rules), "ip-rule6.json": default_rules(6),
        "ipset-save.txt": ipsets,
        "sysctl.txt": "".join(f"{k} = {v}\n" for k, v in {"net.ipv4.ip_forward": "0",
                                                          "net.ipv4.conf.all.rp_filter": "0",
                                                          "net.ipv4.tcp_ecn": "2",
                                                          **(sysctls or {})}.items()),
    }
    if nft_json is not None:
        files["nft-ruleset.json"] = nft_json
    # collect reads these per interface; a value not given follows "all".
    per_dev = {}
    for dev in ["lo", *interfaces]:
        per_dev[f"net.ipv4.conf.{dev}.rp_filter"] = "0"
        per_dev[f"net.ipv4.conf.{dev}.forwarding"] = (sysctls or {}).get("net.ipv4.ip_forward", "0")
    files["sysctl.txt"] += "".join(f"{k} = {v}\n" for k, v in per_dev.items() if k not in (sysctls or {}))
    collected = Collected({k: v.encode() for k, v in files.items()}, hostname=hostname,
                          time="2026-01-01T00:00:00Z", role=role)
    collected.sources = {k: "test" for k in files}
    return write_snapshot(collected, path)


WEB_RULES = """*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p tcp --dport 443 -j ACCEPT
-A INPUT -p tcp --dport 80 -j ACCEPT
-A INPUT -s 198.51.100.0/24 -p tcp --dport 22 -j ACCEPT
{extra}COMMIT
"""


def web_host(path, name: str, *, extra: str = "", **kwargs) -> str:
    """A small web server: 80/443 open, SSH from an admin network; ``extra``
    rules go at the end of INPUT."""
    return make_snapshot(path, name, iptables=WEB_RULES.format(extra=extra),
                         default=("192.0.2.1", "eth0"), **kwargs)
