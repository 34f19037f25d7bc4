"""firewalld's XML files read into plain objects, every element located.

firewalld keeps its configuration as small XML documents — one per zone,
policy, service, ipset, icmptype and helper — plus ``firewalld.conf`` and
``direct.xml``. This module reads them the way firewalld's own readers do
(``firewall/core/io/*.py`` of the release the stock definitions come from):
the same elements and attributes, the same silently ignored mistakes
(firewalld logs a warning and drops the rule), the same refusals (firewalld
stops with a parse error and falls back to its stock configuration). What
firewalld refuses is refused here as a located :class:`RuleAnalyzerError`.

XML is parsed with ``defusedxml``: entity declarations (billion laughs) and
external entities or DTDs are refused, never expanded or fetched.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import xml.sax
from dataclasses import dataclass, field

from xml.sax.expatreader import ExpatLocator

from defusedxml import DefusedXmlException
from defusedxml.sax import make_parser

from ..errors import RuleAnalyzerError, line_of, split_lines
from ..model import Location

ZONE_TARGETS = ("default", "ACCEPT", "DROP", "%%REJECT%%")
POLICY_TARGETS = ("CONTINUE", "ACCEPT", "DROP", "REJECT")
LOG_LEVELS = ("emerg", "alert", "crit", "error", "warning", "notice", "info", "debug")
IPSET_TYPES = ("hash:ip", "hash:ip,mark", "hash:ip,port", "hash:ip,port,ip", "hash:ip,port,net",
               "hash:mac", "hash:net", "hash:net,iface", "hash:net,net", "hash:net,port",
               "hash:net,port,net")
#: ipset types a zone may use as a source (firewalld's SOURCE_IPSET_TYPES).
SOURCE_IPSET_TYPES = ("hash:ip", "hash:ip,port", "hash:ip,mark", "hash:net", "hash:net,port",
                      "hash:net,iface", "hash:mac")
REJECT_TYPES = ("icmp-host-prohibited", "host-prohib", "icmp-net-prohibited", "net-prohib",
                "icmp-admin-prohibited", "admin-prohib", "icmp6-adm-prohibited", "adm-prohibited",
                "icmp-net-unreachable", "net-unreach", "icmp-host-unreachable", "host-unreach",
                "icmp-port-unreachable", "icmp6-port-unreachable", "port-unreach",
                "icmp-proto-unreachable", "proto-unreach", "icmp6-addr-unreachable", "addr-unreach",
                "icmp6-no-route", "no-route", "tcp-reset", "tcp-rst")
MAX_NAME = 17  # firewalld 1.x: zone names are at most 17 characters, policies 17 as well


# ---------------------------------------------------------------------------
# The objects
# ---------------------------------------------------------------------------


@dataclass
class Rich:
    """One rich rule (``<rule>`` or a ``rule …`` string)."""

    location: Location
    family: str | None = None
    priority: int = 0
    source: tuple[str, str, bool] | None = None       # (address|mac|ipset, value, invert)
    destination: tuple[str, str, bool] | None = None  # (address|ipset, value, invert)
    element: tuple[str, dict] | None = None            # (service|port|…, attributes)
    log: tuple[str, dict] | None = None                # (log|nflog, attributes incl. limit)
    audit: dict | None = None                          # {"limit": …} when present
    action: tuple[str, dict] | None = None             # (accept|reject|drop|mark, attributes)

    def __str__(self) -> str:
        """firewalld's canonical rule text (``firewall-cmd --list-rich-rules``)."""
        parts = ["rule"]
        if self.priority:
            parts.append(f'priority="{self.priority}"')
        if self.family:
            parts.append(f'family="{self.family}"')
        for word, spec in (("source", self.source), ("destination", self.destination)):
            if spec:
                kind, value, invert = spec
                parts.append(f'{word}{" NOT" if invert else ""} {kind}="{value}"')
        if self.element:
            kind, a = self.element
            if kind in ("service", "icmp-block", "icmp-type"):
                parts.append(f'{kind} name="{a["name"]}"')
            elif kind in ("port", "source-port"):
                parts.append(f'{kind} port="{a["port"]}" protocol="{a["protocol"]}"')
            elif kind == "protocol":
                parts.append(f'protocol value="{a["value"]}"')
            elif kind == "forward-port":
                text = f'forward-port port="{a["port"]}" protocol="{a["protocol"]}"'
                text += f' to-port="{a["to-port"]}"' if a.get("to-port") else ""
                text += f' to-addr="{a["to-addr"]}"' if a.get("to-addr") else ""
                parts.append(text)
            elif kind == "tcp-mss-clamp":
                parts.append(f'tcp-mss-clamp value="{a["value"]}"' if a.get("value") else "tcp-mss-clamp")
            else:
                parts.append(kind)
        if self.log:
            kind, a = self.log
            keys = ("prefix", "level") if kind == "log" else ("group", "prefix", "queue-size")
            parts.append(kind + "".join(f' {k}="{a[k]}"' for k in keys if a.get(k))
                         + (f' limit value="{a["limit"]}"' if a.get("limit") else ""))
        if self.audit is not None:
            parts.append("audit" + (f' limit value="{self.audit["limit"]}"' if self.audit.get("limit") else ""))
        if self.action:
            kind, a = self.action
            text = kind
            if kind == "reject" and a.get("type"):
                text += f' type="{a["type"]}"'
            if kind == "mark":
                text += f' set="{a["set"]}"'
            if a.get("limit"):
                text += f' limit value="{a["limit"]}"'
            parts.append(text)
        return " ".join(parts)


@dataclass
class Entry:
    """A located value: a service name, a port, an interface, a source."""

    value: object
    location: Location


@dataclass
class Settings:
    """What zones and policies have in common."""

    name: str
    file: str
    location: Location
    target: str = ""
    services: list[Entry] = field(default_factory=list)
    ports: list[Entry] = field(default_factory=list)          # ((lo, hi), proto)
    protocols: list[Entry] = field(default_factory=list)
    source_ports: list[Entry] = field(default_factory=list)   # ((lo, hi), proto)
    icmp_blocks: list[Entry] = field(default_factory=list)
    icmp_block_inversion: bool = False
    masquerade: Entry | None = None
    forward_ports: list[Entry] = field(default_factory=list)  # (port, proto, toport, toaddr)
    rules: list[Rich] = field(default_factory=list)
    stock: bool = False


@dataclass
class Zone(Settings):
    target: str = "default"
    interfaces: list[Entry] = field(default_factory=list)
    sources: list[Entry] = field(default_factory=list)
    forward: bool = False
    #: Zone priorities (firewalld >= 2.0, ``<zone ingress-priority="-10">``):
    #: the order packets are classified into zones; None when not written.
    ingress_priority: int | None = None
    egress_priority: int | None = None
    #: A zone file read alone whose name is not a usable zone name:
    #: ``"too-long"`` (over 17 characters: firewalld refuses the file) or
    #: ``"unknown"`` (the file's name gives none; read as ``custom``).
    name_problem: str | None = None


@dataclass
class Policy(Settings):
    target: str = "CONTINUE"
    priority: int = -1
    ingress: list[Entry] = field(default_factory=list)
    egress: list[Entry] = field(default_factory=list)
    #: ``<disable/>`` (firewalld >= 2.4, policy sets): the policy builds nothing.
    disabled: Entry | None = None


@dataclass
class Service:
    name: str
    file: str
    ports: list[tuple[str, str]] = field(default_factory=list)
    protocols: list[str] = field(default_factory=list)
    source_ports: list[tuple[str, str]] = field(default_factory=list)
    modules: list[str] = field(default_factory=list)
    destination: dict[str, str] = field(default_factory=dict)
    includes: list[str] = field(default_factory=list)
    helpers: list[str] = field(default_factory=list)


@dataclass
class Helper:
    name: str
    module: str
    family: str = ""
    ports: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class IcmpType:
    name: str
    destination: list[str] = field(default_factory=list)


@dataclass
class IPSet:
    name: str
    file: str
    type: str
    options: dict[str, str] = field(default_factory=dict)
    entries: list[str] = field(default_factory=list)


@dataclass
class DirectRule:
    ipv: str
    table: str
    chain: str
    priority: int
    args: str
    location: Location


@dataclass
class Direct:
    chains: list[tuple[str, str, str, Location]] = field(default_factory=list)
    rules: list[DirectRule] = field(default_factory=list)
    passthroughs: list[tuple[str, str, Location]] = field(default_factory=list)


# ---------------------------------------------------------------------------
# XML with positions
# ---------------------------------------------------------------------------


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    location: Location
    children: list["Element"] = field(default_factory=list)
    text: str = ""


class _Builder(xml.sax.handler.ContentHandler):
    def __init__(self, name: str):
        super().__init__()
        self.name = name
        self.root: Element | None = None
        self.stack: list[Element] = []
        self.locator = None

    def setDocumentLocator(self, locator):
        self.locator = locator

    def here(self) -> Location:
        if self.locator is None:
            return Location(self.name, 1, 1)
        return Location(self.name, self.locator.getLineNumber() or 1, (self.locator.getColumnNumber() or 0) + 1)

    def startElement(self, name, attrs):
        element = Element(name, {k: attrs[k] for k in attrs.getNames()}, self.here())
        if self.stack:
            self.stack[-1].children.append(element)
        else:
            self.root = element
        self.stack.append(element)

    def endElement(self, name):
        self.stack.pop()

    def characters(self, content):
        if self.stack:
            self.stack[-1].text += content


def parse_xml(text: str, name: str) -> Element:
    """The document's root element; bad or hostile XML is a located error."""
    builder = _Builder(name)
    parser = make_parser()
    parser.setFeature(xml.sax.handler.feature_external_ges, False)
    parser.setFeature(xml.sax.handler.feature_external_pes, False)
    parser.setContentHandler(builder)
    try:
        # ``feed`` (unlike ``parse``) does not hand the handler a locator.
        builder.setDocumentLocator(ExpatLocator(parser))
        parser.feed(text)
        parser.close()
    except xml.sax.SAXParseException as exc:
        loc = Location(name, exc.getLineNumber() or 1, (exc.getColumnNumber() or 0) + 1)
        raise RuleAnalyzerError(f"malformed XML: {exc.getMessage()}", loc,
                                source_line=line_of(text, loc.line)) from None
    except DefusedXmlException as exc:
        loc = builder.here()
        raise RuleAnalyzerError(
            f"XML entity or DTD refused ({type(exc).__name__}): {exc}", loc,
            source_line=line_of(text, loc.line),
            hint="firewalld's files never declare entities; this file may be an attack "
                 "(billion laughs, external entity)") from None
    except (ValueError, UnicodeError) as exc:
        raise RuleAnalyzerError(f"unreadable XML: {exc}", builder.here()) from None
    if builder.root is None:
        raise RuleAnalyzerError("no XML element in the file", Location(name, 1, 1))
    return builder.root


class _Context:
    """Errors located in one file, with its text for the caret."""

    def __init__(self, text: str, name: str):
        self.text = text
        self.name = name

    def error(self, message: str, where: Element | Location, hint: str | None = None) -> RuleAnalyzerError:
        loc = where.location if isinstance(where, Element) else where
        return RuleAnalyzerError(message, loc, source_line=line_of(self.text, loc.line), hint=hint)

    def check_attrs(self, el: Element, required: tuple[str, ...] = (), optional: tuple[str, ...] = ()):
        for attr in required:
            if attr not in el.attrs:
                raise self.error(f"<{el.tag}> needs the attribute {attr!r} (firewalld refuses the file "
                                 "and falls back to its stock configuration)", el)
        for attr in el.attrs:
            if attr not in required and attr not in optional:
                raise self.error(f"<{el.tag}>: unexpected attribute {attr!r} (firewalld refuses the file)",
                                 el, hint=f"allowed: {', '.join(required + optional) or 'none'}")


# ---------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------


def port_id(text: str) -> int:
    """A port number or service name → number, -1 when unknown."""
    text = text.strip()
    if text.isdigit():
        value = int(text)
        return value if 0 <= value <= 65535 else -1
    try:
        return socket.getservbyname(text)
    except (OSError, UnicodeError):
        return -1


def port_range(text: str) -> tuple[int, int] | None:
    """``"80"``, ``"1000-2000"``, ``"http"`` → (lo, hi); None when invalid."""
    text = str(text).strip()
    if not text:
        return None
    parts = text.split("-")
    if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
        a, b = port_id(parts[0]), port_id(parts[1])
        return (min(a, b), max(a, b)) if a >= 0 and b >= 0 else None
    matched = []
    for i in range(len(parts), 0, -1):
        a = port_id("-".join(parts[:i]))
        rest = "-".join(parts[i:])
        if rest:
            b = port_id(rest)
            if a >= 0 and b >= 0:
                matched.append((min(a, b), max(a, b)))
        elif a >= 0:
            matched.append((a, a))
            if i == len(parts):
                break
    return matched[0] if len(matched) == 1 else None


def port_text(rng: tuple[int, int]) -> str:
    return str(rng[0]) if rng[0] == rng[1] else f"{rng[0]}-{rng[1]}"


def add_port(entries: list[Entry], rng: tuple[int, int], proto: str, location: Location) -> None:
    """firewalld's coalescing of zone ports: a range inside an existing one
    is ignored; overlapping ranges of the protocol merge into one appended
    range (``functions.coalescePortRange``)."""
    same = [e for e in entries if e.value[1] == proto]
    for e in same:
        lo, hi = e.value[0]
        if lo <= rng[0] and rng[1] <= hi and (rng[0] == rng[1] or lo != hi):
            return
    merged = rng
    for e in sorted(same, key=lambda e: e.value[0][0]):
        lo, hi = e.value[0]
        if merged[0] <= lo and merged[1] >= hi:
            entries.remove(e)
        elif merged[0] <= lo and merged[1] < hi and merged[1] >= lo:
            entries.remove(e)
            merged = (merged[0], hi)
        elif merged[0] > lo and merged[1] >= hi and merged[0] <= hi:
            entries.remove(e)
            merged = (lo, merged[1])
    entries.append(Entry((merged, proto), location))


def is_mac(text: str) -> bool:
    return bool(re.fullmatch(r"([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}", text))


def address_family(text: str) -> str | None:
    """``ipv4``/``ipv6`` for an address or network, None otherwise."""
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    if "/" in text:
        mask = text.split("/", 1)[1]
        if not mask.isdigit():
            return None
    return "ipv4" if net.version == 4 else "ipv6"


def check_name(ctx: _Context, el: Element, name: str, what: str, limit: int | None = None) -> None:
    if not name or not re.fullmatch(r"[A-Za-z0-9_\-/]+", name):
        raise ctx.error(f"invalid {what} name {name!r}", el)
    if limit and len(name) > limit:
        raise ctx.error(f"{what} name {name!r} is longer than {limit} characters: firewalld refuses it",
                        el)


# ---------------------------------------------------------------------------
# Zones and policies
# ---------------------------------------------------------------------------

_RULE_CHILDREN = ("source", "destination", "service", "port", "protocol", "icmp-block", "icmp-type",
                  "masquerade", "forward-port", "source-port", "tcp-mss-clamp", "log", "nflog",
                  "audit", "accept", "reject", "drop", "mark")
_IGNORED_OUTSIDE_RULE = ("log", "nflog", "audit", "accept", "reject", "drop", "mark", "destination",
                         "icmp-type", "tcp-mss-clamp", "limit")
_ELEMENT_KINDS = ("service", "port", "protocol", "icmp-block", "icmp-type", "masquerade",
                  "forward-port", "source-port", "tcp-mss-clamp")


def _limit(ctx: _Context, el: Element) -> str | None:
    value = None
    for child in el.children:
        if child.tag != "limit":
            raise ctx.error(f"unexpected element <{child.tag}> inside <{el.tag}>", child)
        ctx.check_attrs(child, ("value",))
        value = child.attrs["value"]
        if not re.fullmatch(r"\d+/(s|m|h|d)[a-z]*", value):
            raise ctx.error(f"invalid limit {value!r} (expected N/second, N/minute, …)", child)
        value = value.split("/")[0] + "/" + value.split("/")[1][0]
    return value


def read_rule(ctx: _Context, el: Element, diagnostics: list) -> Rich | None:
    """A ``<rule>``; None when firewalld would warn and drop it."""
    ctx.check_attrs(el, (), ("family", "priority"))
    rule = Rich(el.location)
    family = el.attrs.get("family")
    if family is not None and family not in ("ipv4", "ipv6"):
        diagnostics.append((f'rich rule family "{family}" is invalid: firewalld ignores the rule', el.location))
        return None
    rule.family = family
    if "priority" in el.attrs:
        try:
            rule.priority = int(el.attrs["priority"])
        except ValueError:
            raise ctx.error(f"rich rule priority {el.attrs['priority']!r} is not a number", el) from None
        if not -32768 <= rule.priority <= 32767:
            raise ctx.error(f"rich rule priority {rule.priority} outside -32768..32767", el)
    for child in el.children:
        tag, a = child.tag, child.attrs
        if tag not in _RULE_CHILDREN:
            raise ctx.error(f"unexpected element <{tag}> in a rich rule (firewalld refuses the file)",
                            child)
        if tag == "source":
            ctx.check_attrs(child, (), ("address", "mac", "invert", "family", "ipset"))
            kinds = [k for k in ("address", "mac", "ipset") if a.get(k)]
            if len(kinds) != 1:
                raise ctx.error("a rich rule <source> needs exactly one of address, mac, ipset", child)
            value = a[kinds[0]]
            if kinds[0] == "address" and address_family(value) is None:
                raise ctx.error(f"invalid source address {value!r}", child)
            if kinds[0] == "mac" and not is_mac(value):
                raise ctx.error(f"invalid MAC address {value!r}", child)
            if rule.source:
                diagnostics.append(("a second <source> in a rich rule: firewalld ignores it", child.location))
                continue
            rule.source = (kinds[0], value.upper() if kinds[0] == "mac" else value,
                           a.get("invert", "").lower() in ("yes", "true"))
        elif tag == "destination":
            ctx.check_attrs(child, (), ("address", "invert", "ipset"))
            kinds = [k for k in ("address", "ipset") if a.get(k)]
            if len(kinds) != 1:
                raise ctx.error("a rich rule <destination> needs exactly one of address, ipset", child)
            if kinds[0] == "address" and address_family(a["address"]) is None:
                raise ctx.error(f"invalid destination address {a['address']!r}", child)
            if rule.destination:
                diagnostics.append(("a second <destination> in a rich rule: firewalld ignores it",
                                    child.location))
                continue
            rule.destination = (kinds[0], a[kinds[0]], a.get("invert", "").lower() in ("yes", "true"))
        elif tag in _ELEMENT_KINDS:
            required = {"service": ("name",), "port": ("port", "protocol"), "protocol": ("value",),
                        "icmp-block": ("name",), "icmp-type": ("name",),
                        "forward-port": ("port", "protocol"), "source-port": ("port", "protocol")}.get(tag, ())
            optional = {"forward-port": ("to-port", "to-addr"), "tcp-mss-clamp": ("value",)}.get(tag, ())
            ctx.check_attrs(child, required, optional)
            if rule.element:
                diagnostics.append((f"more than one element in rich rule '{rule}': firewalld ignores the rule",
                                    child.location))
                return None
            rule.element = (tag, dict(a))
        elif tag in ("log", "nflog"):
            ctx.check_attrs(child, (), ("prefix", "level") if tag == "log" else ("group", "prefix", "queue-size"))
            attrs = dict(a)
            if tag == "log" and attrs.get("level") and attrs["level"] not in LOG_LEVELS:
                diagnostics.append(("invalid log level: firewalld ignores the rule", child.location))
                return None
            attrs["limit"] = _limit(ctx, child)
            rule.log = (tag, attrs)
        elif tag == "audit":
            ctx.check_attrs(child)
            rule.audit = {"limit": _limit(ctx, child)}
        else:  # accept reject drop mark
            ctx.check_attrs(child, ("set",) if tag == "mark" else (), ("type",) if tag == "reject" else ())
            if rule.action:
                diagnostics.append(("more than one action in a rich rule: firewalld ignores the rule",
                                    child.location))
                return None
            attrs = dict(a)
            if tag == "reject" and attrs.get("type") and attrs["type"] not in REJECT_TYPES:
                raise ctx.error(f"unknown reject type {attrs['type']!r}", child)
            attrs["limit"] = _limit(ctx, child)
            rule.action = (tag, attrs)
    kind = rule.element[0] if rule.element else None
    if kind not in ("masquerade", "forward-port", "icmp-block", "tcp-mss-clamp") and not rule.action \
            and not rule.log and rule.audit is None:
        diagnostics.append((f"rich rule '{rule}' has no action: firewalld ignores it", el.location))
        return None
    if kind == "icmp-block" and rule.action and rule.action[0] == "accept":
        raise ctx.error("an icmp-block rich rule cannot accept (firewalld refuses it)", el)
    problem = _rich_check(rule)
    if problem:
        # firewalld checks each rule after reading it and drops it with a
        # warning (the notes: "a rich rule with an address but no family").
        diagnostics.append((f"rich rule '{rule}': {problem}: firewalld ignores the rule", el.location))
        return None
    if kind in ("masquerade", "forward-port") and rule.action:
        raise ctx.error(f"a {kind} rich rule takes no action (firewalld refuses it)", el)
    if kind == "port" or kind == "source-port":
        if port_range(rule.element[1]["port"]) is None:
            raise ctx.error(f"invalid port {rule.element[1]['port']!r}", el)
        if rule.element[1]["protocol"] not in ("tcp", "udp", "sctp", "dccp"):
            raise ctx.error(f"invalid protocol {rule.element[1]['protocol']!r}", el)
    return rule


def _rich_check(rule: Rich) -> str | None:
    """What firewalld's ``Rich_Rule.check()`` objects to, if anything."""
    kind = rule.element[0] if rule.element else None
    if rule.family is None:
        if (rule.source and rule.source[0] == "address") or rule.destination:
            return "an address or destination needs a family"
        if kind == "forward-port":
            return "a forward-port needs a family"
        if rule.action and rule.action[0] == "reject" and rule.action[1].get("type"):
            return "a reject type needs a family"
    for spec in (rule.source, rule.destination):
        if rule.family and spec and spec[0] == "address" and address_family(spec[1]) != rule.family:
            return f"address {spec[1]} is not {rule.family}"
    if kind is None and (rule.log is None or rule.priority == 0):
        if rule.action is None:
            return "no element and no action"
        if rule.source is None and rule.destination is None and rule.priority == 0:
            return "no element, no source, no destination"
    return None


def read_settings(ctx: _Context, root: Element, obj: Settings, diagnostics: list) -> None:
    """The children zones and policies share (``common_startElement``)."""
    for el in root.children:
        tag, a = el.tag, el.attrs
        if tag in ("short", "description"):
            ctx.check_attrs(el)
        elif tag == "service":
            ctx.check_attrs(el, ("name",))
            if a["name"] in [e.value for e in obj.services]:
                diagnostics.append((f"service {a['name']!r} listed twice: firewalld ignores the second",
                                    el.location))
            else:
                obj.services.append(Entry(a["name"], el.location))
        elif tag in ("port", "source-port"):
            ctx.check_attrs(el, ("port", "protocol"))
            rng = port_range(a["port"])
            if rng is None:
                raise ctx.error(f"invalid port {a['port']!r} (firewalld refuses the file)", el)
            if a["protocol"] not in ("tcp", "udp", "sctp", "dccp"):
                raise ctx.error(f"invalid protocol {a['protocol']!r} for a port (tcp, udp, sctp, dccp)", el)
            add_port(obj.ports if tag == "port" else obj.source_ports, rng, a["protocol"], el.location)
        elif tag == "protocol":
            ctx.check_attrs(el, ("value",))
            if a["value"] not in [e.value for e in obj.protocols]:
                obj.protocols.append(Entry(a["value"], el.location))
        elif tag == "icmp-block":
            ctx.check_attrs(el, ("name",))
            if a["name"] not in [e.value for e in obj.icmp_blocks]:
                obj.icmp_blocks.append(Entry(a["name"], el.location))
        elif tag == "icmp-block-inversion":
            ctx.check_attrs(el)
            obj.icmp_block_inversion = True
        elif tag == "masquerade":
            ctx.check_attrs(el, (), ("enabled",))
            obj.masquerade = obj.masquerade or Entry(True, el.location)
        elif tag == "forward-port":
            ctx.check_attrs(el, ("port", "protocol"), ("to-port", "to-addr"))
            rng = port_range(a["port"])
            to_rng = port_range(a["to-port"]) if a.get("to-port") else None
            if rng is None or (a.get("to-port") and to_rng is None):
                raise ctx.error("invalid port in forward-port (firewalld refuses the file)", el)
            if a["protocol"] not in ("tcp", "udp", "sctp", "dccp"):
                raise ctx.error(f"invalid protocol {a['protocol']!r} in forward-port", el)
            to_addr = a.get("to-addr", "")
            if to_addr and address_family(to_addr) is None or "/" in to_addr:
                raise ctx.error(f"forward-port to-addr {to_addr!r} is not an address", el)
            if not to_addr and not a.get("to-port"):
                raise ctx.error("forward-port needs to-port or to-addr", el)
            value = (port_text(rng), a["protocol"], port_text(to_rng) if to_rng else "", to_addr)
            if value not in [e.value for e in obj.forward_ports]:
                obj.forward_ports.append(Entry(value, el.location))
        elif tag == "rule":
            rule = read_rule(ctx, el, diagnostics)
            if rule is not None and str(rule) in {str(r) for r in obj.rules}:
                diagnostics.append((f"rich rule '{rule}' listed twice: firewalld ignores the second",
                                    el.location))
            elif rule is not None:
                obj.rules.append(rule)
        elif isinstance(obj, Zone) and tag == "interface":
            ctx.check_attrs(el, ("name",))
            name = a["name"]
            if not re.fullmatch(r"[^\s/:]{1,15}", name) or name in (".", ".."):
                raise ctx.error(f"invalid interface name {name!r}", el)
            if name not in [e.value for e in obj.interfaces]:
                obj.interfaces.append(Entry(name, el.location))
        elif isinstance(obj, Zone) and tag == "source":
            ctx.check_attrs(el, (), ("address", "mac", "ipset", "invert", "family"))
            kinds = [k for k in ("address", "mac", "ipset") if a.get(k)]
            if len(kinds) != 1:
                raise ctx.error("a zone <source> needs exactly one of address, mac, ipset", el)
            value = a[kinds[0]]
            if kinds[0] == "address" and address_family(value) is None:
                raise ctx.error(f"invalid source address {value!r} (firewalld refuses the file)", el)
            if kinds[0] == "mac":
                if not is_mac(value):
                    raise ctx.error(f"invalid MAC address {value!r}", el)
                value = value.upper()
            if kinds[0] == "ipset":
                value = "ipset:" + value
            if value not in [e.value for e in obj.sources]:
                obj.sources.append(Entry(value, el.location))
        elif isinstance(obj, Zone) and tag == "forward":
            ctx.check_attrs(el)
            obj.forward = True
        elif isinstance(obj, Policy) and tag == "disable":
            ctx.check_attrs(el)
            obj.disabled = Entry(True, el.location)
        elif isinstance(obj, Policy) and tag in ("ingress-zone", "egress-zone"):
            ctx.check_attrs(el, ("name",))
            (obj.ingress if tag == "ingress-zone" else obj.egress).append(Entry(a["name"], el.location))
        elif tag in _IGNORED_OUTSIDE_RULE:
            # firewalld's reader knows these only inside <rule>; elsewhere it
            # logs a warning and goes on without them.
            diagnostics.append((f"<{tag}> outside a <rule> has no effect: firewalld ignores it",
                                el.location))
        else:
            raise ctx.error(f"unexpected element <{tag}> in a {root.tag} (firewalld refuses the file)", el)


def read_zone(text: str, file: str, name: str, diagnostics: list, stock: bool = False) -> Zone:
    ctx = _Context(text, file)
    root = parse_xml(text, file)
    if root.tag != "zone":
        raise ctx.error(f"expected a <zone> document, found <{root.tag}>", root)
    ctx.check_attrs(root, (), ("name", "immutable", "target", "version", "priority", "ingress-priority",
                               "egress-priority"))
    zone = Zone(name, file, root.location, stock=stock)
    for attr in ("priority", "ingress-priority", "egress-priority"):
        if attr not in root.attrs:
            continue
        try:
            value = int(root.attrs[attr])
        except ValueError:
            raise ctx.error(f"zone {attr} {root.attrs[attr]!r} is not a number", root) from None
        if not -32768 <= value <= 32767:
            raise ctx.error(f"zone {attr} {value} outside -32768..32767", root)
        if attr in ("priority", "ingress-priority"):
            zone.ingress_priority = value
        if attr in ("priority", "egress-priority"):
            zone.egress_priority = value
    target = root.attrs.get("target", "default")
    if target == "REJECT":
        target = "%%REJECT%%"
    if "target" in root.attrs and target == "default":
        # firewalld 1.3 keeps the literal word, which its nft backend does
        # not recognise: such a zone's chains end without the final reject.
        target = "default-literal"
    elif target not in ZONE_TARGETS:
        raise ctx.error(f"invalid zone target {target!r} (default, ACCEPT, DROP, %%REJECT%%)", root)
    zone.target = target
    read_settings(ctx, root, zone, diagnostics)
    return zone


def read_policy(text: str, file: str, name: str, diagnostics: list, stock: bool = False) -> Policy:
    ctx = _Context(text, file)
    root = parse_xml(text, file)
    if root.tag != "policy":
        raise ctx.error(f"expected a <policy> document, found <{root.tag}>", root)
    ctx.check_attrs(root, (), ("version", "target", "priority"))
    policy = Policy(name, file, root.location, stock=stock)
    policy.target = root.attrs.get("target", "CONTINUE")
    if policy.target not in POLICY_TARGETS:
        raise ctx.error(f"invalid policy target {policy.target!r} (CONTINUE, ACCEPT, DROP, REJECT)", root)
    try:
        policy.priority = int(root.attrs.get("priority", "-1"))
    except ValueError:
        raise ctx.error("policy priority is not a number", root) from None
    if policy.priority == 0 or not -32768 <= policy.priority <= 32767:
        raise ctx.error(f"policy priority {policy.priority} is invalid (nonzero, -32768..32767)", root)
    read_settings(ctx, root, policy, diagnostics)
    return policy


def read_service(text: str, file: str, name: str) -> Service:
    ctx = _Context(text, file)
    root = parse_xml(text, file)
    if root.tag != "service":
        raise ctx.error(f"expected a <service> document, found <{root.tag}>", root)
    ctx.check_attrs(root, (), ("name", "version"))
    svc = Service(name, file)
    for el in root.children:
        tag, a = el.tag, el.attrs
        if tag in ("short", "description"):
            continue
        if tag in ("port", "source-port"):
            ctx.check_attrs(el, ("port", "protocol"))
            if a["port"] == "" and tag == "port":
                # <port protocol="vrrp" port=""/> is a protocol in old files
                if a["protocol"] not in svc.protocols:
                    svc.protocols.append(a["protocol"])
                continue
            rng = port_range(a["port"])
            if rng is None:
                raise ctx.error(f"invalid port {a['port']!r} in service {name}", el)
            entry = (port_text(rng), a["protocol"])
            target = svc.ports if tag == "port" else svc.source_ports
            if entry not in target:
                target.append(entry)
        elif tag == "protocol":
            ctx.check_attrs(el, ("value",))
            if a["value"] not in svc.protocols:
                svc.protocols.append(a["value"])
        elif tag == "module":
            ctx.check_attrs(el, ("name",))
            svc.modules.append(a["name"])
        elif tag == "destination":
            ctx.check_attrs(el, (), ("ipv4", "ipv6"))
            for ipv in ("ipv4", "ipv6"):
                if ipv in a:
                    if address_family(a[ipv]) != ipv:
                        raise ctx.error(f"invalid {ipv} destination {a[ipv]!r}", el)
                    svc.destination[ipv] = a[ipv]
        elif tag == "include":
            ctx.check_attrs(el, ("service",))
            svc.includes.append(a["service"])
        elif tag == "helper":
            ctx.check_attrs(el, ("name",))
            svc.helpers.append(a["name"])
        else:
            raise ctx.error(f"unexpected element <{tag}> in a service", el)
    return svc


def read_helper(text: str, file: str, name: str) -> Helper:
    ctx = _Context(text, file)
    root = parse_xml(text, file)
    if root.tag != "helper":
        raise ctx.error(f"expected a <helper> document, found <{root.tag}>", root)
    ctx.check_attrs(root, ("module",), ("version", "family"))
    helper = Helper(name, root.attrs["module"], root.attrs.get("family", ""))
    for el in root.children:
        if el.tag in ("short", "description"):
            continue
        if el.tag != "port":
            raise ctx.error(f"unexpected element <{el.tag}> in a helper", el)
        ctx.check_attrs(el, ("port", "protocol"))
        helper.ports.append((el.attrs["port"], el.attrs["protocol"]))
    return helper


def read_icmptype(text: str, file: str, name: str) -> IcmpType:
    ctx = _Context(text, file)
    root = parse_xml(text, file)
    if root.tag != "icmptype":
        raise ctx.error(f"expected an <icmptype> document, found <{root.tag}>", root)
    ict = IcmpType(name)
    for el in root.children:
        if el.tag in ("short", "description"):
            continue
        if el.tag != "destination":
            raise ctx.error(f"unexpected element <{el.tag}> in an icmptype", el)
        for ipv in ("ipv4", "ipv6"):
            if el.attrs.get(ipv, "").lower() in ("yes", "true"):
                ict.destination.append(ipv)
    return ict


def read_ipset(text: str, file: str, name: str) -> IPSet:
    ctx = _Context(text, file)
    root = parse_xml(text, file)
    if root.tag != "ipset":
        raise ctx.error(f"expected an <ipset> document, found <{root.tag}>", root)
    ctx.check_attrs(root, ("type",), ("version",))
    if root.attrs["type"] not in IPSET_TYPES:
        raise ctx.error(f"unknown ipset type {root.attrs['type']!r}", root)
    ipset = IPSet(name, file, root.attrs["type"])
    for el in root.children:
        if el.tag in ("short", "description"):
            continue
        if el.tag == "option":
            ctx.check_attrs(el, ("name",), ("value",))
            ipset.options[el.attrs["name"]] = el.attrs.get("value", "")
        elif el.tag == "entry":
            ctx.check_attrs(el)
            ipset.entries.append(el.text.strip())
        else:
            raise ctx.error(f"unexpected element <{el.tag}> in an ipset", el)
    if ipset.options.get("family", "inet") not in ("inet", "inet6"):
        raise ctx.error(f"ipset family {ipset.options['family']!r} (inet or inet6)", root)
    return ipset


def read_direct(text: str, file: str) -> Direct:
    ctx = _Context(text, file)
    root = parse_xml(text, file)
    if root.tag != "direct":
        raise ctx.error(f"expected a <direct> document, found <{root.tag}>", root)
    direct = Direct()
    for el in root.children:
        a = el.attrs
        if el.tag == "chain":
            ctx.check_attrs(el, ("ipv", "table", "chain"))
            direct.chains.append((a["ipv"], a["table"], a["chain"], el.location))
        elif el.tag == "rule":
            ctx.check_attrs(el, ("ipv", "table", "chain", "priority"))
            if a["ipv"] not in ("ipv4", "ipv6", "eb"):
                raise ctx.error(f"direct rule ipv {a['ipv']!r} (ipv4, ipv6, eb)", el)
            try:
                priority = int(a["priority"])
            except ValueError:
                raise ctx.error("direct rule priority is not a number", el) from None
            direct.rules.append(DirectRule(a["ipv"], a["table"], a["chain"], priority,
                                           el.text.strip(), el.location))
        elif el.tag == "passthrough":
            ctx.check_attrs(el, ("ipv",))
            direct.passthroughs.append((a["ipv"], el.text.strip(), el.location))
        else:
            raise ctx.error(f"unexpected element <{el.tag}> in direct.xml", el)
    return direct


# ---------------------------------------------------------------------------
# firewalld.conf
# ---------------------------------------------------------------------------

#: Keys firewalld 1.3 knows, with their defaults; newer keys (2.x) are kept
#: but only those the compiled ruleset depends on change it.
CONF_DEFAULTS = {
    "DefaultZone": "public", "CleanupOnExit": "yes", "CleanupModulesOnExit": "no",
    "Lockdown": "no", "IPv6_rpfilter": "yes", "IndividualCalls": "no", "LogDenied": "off",
    "FirewallBackend": "nftables", "FlushAllOnReload": "yes", "RFC3964_IPv4": "yes",
    "AllowZoneDrifting": "no", "StrictForwardPorts": "no", "NftablesFlowtable": "off",
    "NftablesCounters": "no", "NftablesTableOwner": "yes", "ReloadPolicy": "INPUT:DROP,FORWARD:DROP,OUTPUT:DROP",
}


def read_conf(text: str, file: str) -> tuple[dict[str, str], dict[str, Location]]:
    values, where = {}, {}
    for number, line in enumerate(split_lines(text), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if "=" not in stripped:
            raise RuleAnalyzerError("expected KEY=value", Location(file, number, 1), source_line=line)
        key, value = stripped.split("=", 1)
        values[key.strip()] = value.strip()
        where[key.strip()] = Location(file, number, 1)
    return values, where
