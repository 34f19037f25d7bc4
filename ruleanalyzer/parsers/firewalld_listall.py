"""``firewall-cmd --list-all`` / ``--list-all-zones`` output, read as zones.

    public (default, active)
      target: default
      icmp-block-inversion: no
      interfaces: eth0
      sources:
      services: dhcpv6-client ssh
      ports: 8080/tcp
      …
      rich rules:
    	rule family="ipv4" source address="192.0.2.0/24" service name="http" accept

Each zone block is turned into the zone XML firewalld would have written
for it, line for line (a setting's element sits on the output line that
listed it), and read by :func:`.firewalld_xml.read_zone`, so errors and
origins point at the output's own lines. The output is read only where it
is complete enough for a zone — every key firewall-cmd prints for one,
each with its colon — otherwise it is refused, saying what to give
instead. What the output cannot say is assumed and said (a diagnostic,
RA002): services resolve through the stock definitions shipped for
firewalld 1.3.3, firewalld.conf is at its defaults, and policies, ipsets
and direct rules are not in this output.
"""

from __future__ import annotations

import re
from xml.sax.saxutils import quoteattr

from ..errors import RuleAnalyzerError
from ..model import Location
from . import firewalld_xml as fx

HEADER = re.compile(r"^(?P<name>[A-Za-z0-9_\-./+]+)(?: \((?P<flags>(?:default|active)(?:, ?(?:default|active))?)\))?\s*$")
KEY = re.compile(r"^(?P<indent>[ \t]+)(?P<key>[a-z][a-z0-9 \-]*?):(?:[ \t]+(?P<value>.*?))?[ \t]*$")
#: The keys firewall-cmd prints for every zone (0.9 and later; ``forward`` since 0.9).
REQUIRED = ("target", "icmp-block-inversion", "interfaces", "sources", "services", "ports", "protocols",
            "masquerade", "forward-ports", "source-ports", "icmp-blocks", "rich rules")
OPTIONAL = ("forward", "ingress-priority", "egress-priority", "summary", "description")
POLICY_KEYS = ("priority", "ingress-zones", "egress-zones")
INSTEAD = ("give the configuration itself (/etc/firewalld: firewalld.conf, zones/*.xml, services/, ipsets/, "
           "policies/) or the complete output of `firewall-cmd --list-all-zones`")


def looks_like(text: str) -> bool:
    """A zone or policy header followed by ``  target: …`` (``priority:``
    for a policy) within the first lines."""
    lines = [line for line in text.lstrip("\ufeff")[:4000].splitlines()[:40] if line.strip()]
    for i, line in enumerate(lines[:-1]):
        if HEADER.match(line) and re.match(r"^[ \t]+(target|priority):", lines[i + 1]):
            return True
    return False


def _blocks(text: str, name: str):
    """(header line number, zone name, flags, {key: (line, value, continuation lines)})."""
    lines = text.lstrip("\ufeff").splitlines()
    blocks = []
    current = None
    last_key = None
    for number, raw in enumerate(lines, 1):
        line = raw.rstrip()
        if not line.strip():
            continue
        if current is None and re.match(r"^\s*[$#] ", line) and "firewall-cmd" in line:
            continue  # the shell prompt a pasted output starts with
        if not line[0].isspace():
            m = HEADER.match(line)
            if m is None:
                raise RuleAnalyzerError(f"not a zone header of firewall-cmd output: {line.strip()[:60]!r} (the "
                                        "output is read alone, not inside another document)",
                                        Location(name, number, 1), hint=INSTEAD)
            current = (number, m.group("name"), m.group("flags") or "", {})
            blocks.append(current)
            last_key = None
            continue
        if current is None:
            raise RuleAnalyzerError("an indented line before any zone name", Location(name, number, 1), hint=INSTEAD)
        m = KEY.match(line)
        if m and (m.group("key") in REQUIRED + OPTIONAL + POLICY_KEYS or len(m.group("indent")) <= 4):
            key = m.group("key")
            if key in current[3]:
                raise RuleAnalyzerError(f"zone {current[1]}: {key!r} listed twice", Location(name, number, 1),
                                        hint=INSTEAD)
            current[3][key] = (number, m.group("value") or "", [])
            last_key = key
            continue
        if last_key in ("rich rules", "forward-ports", "ports", "services", "source-ports", "interfaces", "sources",
                        "protocols", "icmp-blocks") and (raw.startswith("\t") or len(raw) - len(raw.lstrip()) > 4):
            current[3][last_key][2].append((number, line.strip()))
            continue
        raise RuleAnalyzerError(f"zone {current[1]}: {line.strip()[:60]!r} is not a 'key: value' line of "
                                "firewall-cmd output (cut or edited?)", Location(name, number, 1), hint=INSTEAD)
    return blocks


def _values(entry) -> list[tuple[int, str]]:
    number, value, more = entry
    out = [(number, v) for v in value.split()]
    for n, line in more:
        out += [(n, v) for v in line.split()]
    return out


POLICY_REQUIRED = ("priority", "target", "ingress-zones", "egress-zones", "services", "ports", "protocols",
                   "masquerade", "forward-ports", "source-ports", "icmp-blocks", "rich rules")


def is_policy(block) -> bool:
    return any(k in block[3] for k in POLICY_KEYS)


def object_xml(block, total_lines: int, name: str) -> tuple[str, dict]:
    """The zone or policy XML of one block, each element on its output line."""
    header, obj, _flags, keys = block
    policy = is_policy(block)
    kind, required, optional = (("policy", POLICY_REQUIRED, ("description", "summary")) if policy
                                else ("zone", REQUIRED, OPTIONAL))
    missing = [k for k in required if k not in keys]
    if missing:
        raise RuleAnalyzerError(f"{kind} {obj}: firewall-cmd output without {', '.join(missing)}: not complete "
                                f"enough to know what the {kind} opens", Location(name, header, 1), hint=INSTEAD)
    unknown = sorted(set(keys) - set(required) - set(optional))
    if unknown:
        number = keys[unknown[0]][0]
        raise RuleAnalyzerError(f"{kind} {obj}: unknown key {unknown[0]!r} in firewall-cmd output",
                                Location(name, number, 1), hint=INSTEAD)
    rows: dict[int, list[str]] = {}

    def put(number: int, element: str) -> None:
        rows.setdefault(number, []).append(element)

    attrs = []
    target = keys["target"][1].strip()
    targets = ("CONTINUE", "ACCEPT", "DROP", "REJECT") if policy else ("default", "ACCEPT", "DROP", "%%REJECT%%",
                                                                        "REJECT")
    if target not in targets:
        raise RuleAnalyzerError(f"{kind} {obj}: target {target!r} is not a firewalld {kind} target",
                                Location(name, keys["target"][0], 1))
    if target != "default":  # a zone's "target: default" is the absence of a target
        attrs.append(f"target={quoteattr(target)}")
    for key in ("priority",) if policy else ("ingress-priority", "egress-priority"):
        if key in keys and keys[key][1].strip() not in ("", "0"):
            attrs.append(f"{key}={quoteattr(keys[key][1].strip())}")
    yes = lambda key: keys.get(key, (0, "no", []))[1].strip() == "yes"  # noqa: E731
    for key in ("icmp-block-inversion", "forward", "masquerade"):
        if yes(key):
            put(keys[key][0], f"<{key}/>")
    for key, tag in ((("ingress-zones", "ingress-zone"), ("egress-zones", "egress-zone")) if policy else
                     (("interfaces", "interface"),)):
        for number, value in _values(keys[key]):
            put(number, f"<{tag} name={quoteattr(value)}/>")
    for number, value in _values(keys.get("sources", (0, "", []))):
        source = "ipset" if value.startswith("ipset:") else ("mac" if fx.is_mac(value) else "address")
        put(number, f"<source {source}={quoteattr(value[6:] if source == 'ipset' else value)}/>")
    for number, value in _values(keys["services"]):
        put(number, f"<service name={quoteattr(value)}/>")
    for key, tag in (("ports", "port"), ("source-ports", "source-port")):
        for number, value in _values(keys[key]):
            port, _, proto = value.partition("/")
            put(number, f"<{tag} port={quoteattr(port)} protocol={quoteattr(proto)}/>")
    for number, value in _values(keys["protocols"]):
        put(number, f"<protocol value={quoteattr(value)}/>")
    for number, value in _values(keys["icmp-blocks"]):
        put(number, f"<icmp-block name={quoteattr(value)}/>")
    for number, value in _values(keys["forward-ports"]):
        fields = dict(part.partition("=")[::2] for part in value.split(":"))
        names = {"port": "port", "proto": "protocol", "toport": "to-port", "toaddr": "to-addr"}
        if set(fields) - set(names) or "port" not in fields or "proto" not in fields:
            raise RuleAnalyzerError(f"{kind} {obj}: forward-port {value!r} is not port=…:proto=…[:toport=…]"
                                    "[:toaddr=…]", Location(name, number, 1))
        put(number, "<forward-port " + " ".join(f"{names[k]}={quoteattr(v)}" for k, v in fields.items() if v)
            + "/>")
    rich = list(keys["rich rules"][2])
    if keys["rich rules"][1].strip():
        rich.insert(0, (keys["rich rules"][0], keys["rich rules"][1].strip()))
    for number, text in rich:
        put(number, rich_xml(text, Location(name, number, 1)))
    lines = [""] * total_lines
    lines[header - 1] = f"<{kind}{''.join(' ' + a for a in attrs)}>"
    for number, elements in rows.items():
        lines[number - 1] = " ".join(elements)
    end = max([header] + list(rows))
    lines[end - 1] += f"</{kind}>"
    return "\n".join(lines[:end]) + "\n", keys


_TOKEN = re.compile(r'[A-Za-z][\w-]*="[^"]*"|[A-Za-z][\w-]*=\S+|\S+')
_ELEMENTS = {"service": ("name",), "port": ("port", "protocol"), "protocol": ("value",), "icmp-block": ("name",),
             "icmp-type": ("name",), "masquerade": (), "forward-port": ("port", "protocol", "to-port", "to-addr"),
             "source-port": ("port", "protocol"), "tcp-mss-clamp": ("value",)}
_OTHER = {"source": ("address", "mac", "ipset", "invert"), "destination": ("address", "ipset", "invert"),
          "log": ("prefix", "level"), "nflog": ("group", "prefix", "queue-size"), "audit": (),
          "accept": (), "drop": (), "reject": ("type",), "mark": ("set",)}


def rich_xml(text: str, where: Location) -> str:
    """A rich rule as firewall-cmd prints it → its ``<rule>`` element."""
    tokens = _TOKEN.findall(text)
    if not tokens or tokens[0] != "rule":
        raise RuleAnalyzerError(f"not a rich rule: {text[:60]!r}", where, hint=INSTEAD)
    head, body, i, current = {}, [], 1, None
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if "=" in token:
            key, _, value = token.partition("=")
            value = value[1:-1] if value.startswith('"') and value.endswith('"') else value
            if current is None:
                if key not in ("family", "priority"):
                    raise RuleAnalyzerError(f"rich rule: {key!r} before any element", where)
                head[key] = value
            else:
                current[1][key] = value
            continue
        if token == "not" and current is not None and current[0] in ("source", "destination"):
            current[1]["invert"] = "True"
            continue
        if token == "limit":
            if current is None or current[0] not in ("log", "nflog", "audit", "accept", "drop", "reject", "mark"):
                raise RuleAnalyzerError("rich rule: limit without a log, audit or action", where)
            current[2].append(("limit", {}))
            nxt = tokens[i] if i < len(tokens) else ""
            if nxt.startswith("value="):
                current[2][-1][1]["value"] = nxt[6:].strip('"')
                i += 1
            continue
        if token not in _ELEMENTS and token not in _OTHER:
            raise RuleAnalyzerError(f"rich rule: unknown word {token!r}", where, hint=INSTEAD)
        current = (token, {}, [])
        body.append(current)
    parts = [f"<rule{''.join(f' {k}={quoteattr(v)}' for k, v in head.items())}>"]
    for tag, attrs, children in body:
        a = "".join(f" {k}={quoteattr(v)}" for k, v in attrs.items())
        inner = "".join(f"<{t}{''.join(f' {k}={quoteattr(v)}' for k, v in ca.items())}/>" for t, ca in children)
        parts.append(f"<{tag}{a}>{inner}</{tag}>" if inner else f"<{tag}{a}/>")
    parts.append("</rule>")
    return "".join(parts)


def read(text: str, name: str, stock: dict, diagnostics: list) -> tuple[dict, dict, dict, dict]:
    """Zones and policies (replacing the stock ones of the same name),
    firewalld.conf settings and where they came from, read from
    firewall-cmd output (``--list-all-zones``, ``--list-all``,
    ``--list-all-policies``)."""
    blocks = _blocks(text, name)
    if not blocks:
        raise RuleAnalyzerError("no zone in firewall-cmd output", Location(name, 1, 1), hint=INSTEAD)
    total = len(text.splitlines()) + 1
    zones, policies, default, seen = {}, {}, None, set()
    for block in blocks:
        header, obj_name, flags, _ = block
        if obj_name in seen:
            raise RuleAnalyzerError(f"{obj_name} listed twice", Location(name, header, 1))
        seen.add(obj_name)
        xml, keys = object_xml(block, total, name)
        if is_policy(block):
            obj = policies[obj_name] = fx.read_policy(xml, name, obj_name, diagnostics)
        else:
            obj = zones[obj_name] = fx.read_zone(xml, name, obj_name, diagnostics)
            if "default" in flags:
                default = obj_name
        what = f"{'policy' if is_policy(block) else 'zone'} {obj_name}"
        for entry in obj.services:
            if entry.value not in stock["services"]:
                raise RuleAnalyzerError(
                    f"{what}: service {entry.value!r} is not one of firewalld's stock services, so "
                    "firewall-cmd's output does not say what it opens", entry.location,
                    hint=f"give /etc/firewalld/services/{entry.value}.xml with the rest of /etc/firewalld")
        for entry in getattr(obj, "sources", ()):
            if entry.value.startswith("ipset:"):
                raise RuleAnalyzerError(
                    f"{what}: source {entry.value} names an ipset, whose entries firewall-cmd's "
                    "output does not list", entry.location,
                    hint=f"give /etc/firewalld/ipsets/{entry.value[6:]}.xml with the rest of /etc/firewalld")
    conf, where = {}, {}
    assumed = ["services resolve through firewalld 1.3.3's stock definitions (a service the host "
               "redefines in /etc/firewalld/services would differ)",
               "firewalld.conf is at its defaults (LogDenied=off, IPv6_rpfilter=yes, RFC3964_IPv4=yes)",
               "ipsets and direct rules are not in this output"]
    if not policies:
        assumed.append("policies are firewalld's stock ones (give --list-all-policies output with this)")
    if not zones:
        assumed.append("zones are firewalld's stock ones (give --list-all-zones output with this)")
    elif default is None:
        assumed.append("no zone is marked (default): the default zone is taken as public")
    if default is not None or zones:
        conf["DefaultZone"] = default or "public"
        where["DefaultZone"] = Location(name, blocks[0][0], 1)
    if len(zones) == 1 and not policies:
        assumed.append("only this zone was listed (--list-all): every other zone is firewalld's stock one")
    if any("ingress-priority" in b[3] for b in blocks):
        assumed.append("the output lists zone priorities: read with firewalld 2.x's layout")
    diagnostics.append(("read from firewall-cmd output, assuming: " + "; ".join(assumed), Location(name, 1, 1)))
    return zones, policies, conf, where
