"""Other spellings of one random ruleset, as admins write them (issue #17).

From a generated ``iptables-save`` text: a command script (``iptables -t T
-P/-N/-A/-I/-D`` lines, built in a shuffled order that ends in the same
ruleset) and an abbreviated hand-written restore file (``10.1/16``,
``0/0``, dotted masks, protocol numbers, service names, hex and octal
numbers). From a generated nft text: a script of ``nft add`` / ``nft
insert`` commands, quoted several ways, with some tables as ``nft -f -``
here-documents. Each form, run by the real tools, must build the ruleset
the text builds.
"""

from __future__ import annotations

import ipaddress
import random
import re
import shlex

from ruleanalyzer.parsers.iptables import split_words

_SERVICES = {22: "ssh", 25: "smtp", 53: "domain", 80: "http", 123: "ntp", 443: "https", 3306: "mysql"}


def iptables_script(text: str, family: int, rnd: random.Random) -> str:
    """``text`` (iptables-save) as a script of iptables commands."""
    program = rnd.choice(("iptables", "iptables-nft", "/usr/sbin/iptables")) if family == 4 else \
        rnd.choice(("ip6tables", "ip6tables-nft"))
    out = ["#!/bin/sh", "# generated from an iptables-save text", "set -e", ""]
    table = None
    rules: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:]
            rules = {}
            continue
        if line.startswith(":"):
            name, policy = line[1:].split()[:2]
            out.append(f"{program} -t {table} -N {name}" if policy == "-" else
                       f"{program} -t {table} -P {name} {policy}")
            continue
        if line.startswith("-A "):
            _, words = split_words(line)
            rules.setdefault(words[1], []).append(" ".join(shlex.quote(w) for w in words[2:]))
            continue
        if line == "COMMIT":
            for chain, specs in rules.items():
                out += _build_chain(program, table, chain, specs, rnd)
    return "\n".join(out) + "\n"


def _build_chain(program: str, table: str, chain: str, specs: list[str], rnd: random.Random) -> list[str]:
    """Commands that leave ``specs`` in ``chain`` in order: appended, or
    inserted at positions in a shuffled order, with a decoy deleted."""
    t = rnd.choice((f"-t {table} ", f"--table {table} ")) if table != "filter" or rnd.random() < 0.5 else ""
    lines = []
    order = list(range(len(specs)))
    rnd.shuffle(order)
    placed: list[int] = []
    for k in order:
        position = sum(1 for p in placed if p < k) + 1
        placed.append(k)
        if rnd.random() < 0.5 and position == len(placed):
            lines.append(f"{program} {t}{rnd.choice(('-A', '--append'))} {chain} {specs[k]}")
        else:
            lines.append(f"{program} {t}-I {chain} {position} {specs[k]}")
    if rnd.random() < 0.5:  # a rule added and deleted again, by specification or number
        decoy = "-p udp --dport 9 -j DROP" if table != "nat" else "-p udp --dport 9 -j RETURN"
        lines.append(f"{program} {t}-A {chain} {decoy}")
        lines.append(f"{program} {t}-D {chain} {decoy}" if rnd.random() < 0.5 else
                     f"{program} {t}--delete {chain} {len(specs) + 1}")
    return lines


def abbreviated(text: str, rnd: random.Random) -> str:
    """``text`` (iptables-save) in the spellings of hand-edited restore files."""
    def address(m: re.Match) -> str:
        option, value = m.group(1), m.group(2)
        net = ipaddress.ip_network(value if "/" in value else value + ("/128" if ":" in value else "/32"),
                                   strict=False)
        if net.version == 6:
            return f"{option} {net.network_address}/0x{net.prefixlen:x}" if rnd.random() < 0.3 else m.group(0)
        choice = rnd.random()
        if net.prefixlen == 0:
            return f"{option} 0/0"
        if choice < 0.3 and net.prefixlen % 8 == 0 and net.prefixlen < 32:
            parts = str(net.network_address).split(".")[:net.prefixlen // 8]
            return f"{option} {'.'.join(parts)}/{net.prefixlen}"
        if choice < 0.6:
            return f"{option} {net.network_address}/{net.netmask}"
        if choice < 0.8:
            octets = str(net.network_address).split(".")
            octets[0] = "0" + oct(int(octets[0]))[2:] if int(octets[0]) else "0"
            return f"{option} {'.'.join(octets)}/{net.prefixlen}"
        return m.group(0)

    def port(m: re.Match, decimal: bool) -> str:
        number = int(m.group(2))
        choice = rnd.random()
        if number in _SERVICES and choice < 0.5:
            return f"{m.group(1)} {_SERVICES[number]}"
        if choice < 0.7 and not decimal:  # the udp module reads decimal only
            return f"{m.group(1)} 0x{number:x}"
        return m.group(0)

    out = []
    for line in text.splitlines():
        if line.startswith("-A "):
            line = re.sub(r"(-[sd]|--source|--destination) ([0-9a-fA-F.:]+(?:/\d+)?)(?=\s)", address, line)
            decimal = "udp" in line or "dccp" in line
            line = re.sub(r"(--[sd]port) (\d+)(?=\s)", lambda m: port(m, decimal), line)
            line = re.sub(r"-p (tcp|udp)(?=\s)", lambda m: "-p " + rnd.choice(
                (m.group(1).upper(), {"tcp": "6", "udp": "17"}[m.group(1)], m.group(1))), line)
        out.append(line)
    return "\n".join(out) + "\n"


def nft_script(text: str, rnd: random.Random) -> str:
    """``text`` (nft -f syntax, as tests.kernel.gen_nftables writes it) as a
    script of nft commands."""
    out = ["#!/bin/sh", "set -eu", "nft flush ruleset"]
    for table_text in re.split(r"(?m)^(?=table )", text):
        if not table_text.strip():
            continue
        if rnd.random() < 0.25:
            out += ["nft -f - <<'EOF'", table_text.rstrip("\n"), "EOF"]
            continue
        out += _nft_table_commands(table_text, rnd)
    return "\n".join(out) + "\n"


def _nft_table_commands(text: str, rnd: random.Random) -> list[str]:
    lines = text.splitlines()
    family, name = lines[0].split()[1:3]
    commands = [f"nft add table {family} {name}"]
    rules: list[str] = []
    i = 1
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        kind = line.split()[0] if line else ""
        if kind in ("set", "map"):
            body = []
            while lines[i].strip() != "}":
                body.append(lines[i].strip())
                i += 1
            i += 1
            commands.append(f"nft add {kind} {family} {name} {line.split()[1]} '{{ {' '.join(body)} }}'")
        elif kind == "chain":
            chain = line.split()[1]
            body = []
            while lines[i].strip() != "}":
                body.append(lines[i].strip())
                i += 1
            i += 1
            head = body[0] if body and body[0].startswith("type ") else None
            commands.append(f"nft add chain {family} {name} {chain}" + (f" '{{ {head} }}'" if head else ""))
            specs = body[1:] if head else body
            order = list(range(len(specs)))
            if rnd.random() < 0.5:
                rules += [_nft_rule("add", family, name, chain, specs[k], rnd) for k in order]
            else:  # inserted in reverse: each goes to the front
                rules += [_nft_rule("insert", family, name, chain, specs[k], rnd) for k in reversed(order)]
    return commands + rules


def _nft_rule(verb: str, family: str, table: str, chain: str, spec: str, rnd: random.Random) -> str:
    if rnd.random() < 0.3:
        return f"nft '{verb} rule {family} {table} {chain} {spec}'"
    return f"nft {verb} rule {family} {table} {chain} {shlex.quote(spec)}"
