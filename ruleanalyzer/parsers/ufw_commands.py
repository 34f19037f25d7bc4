"""ufw command lines → ufw rule tuples and settings.

Reads what runbooks hold: ``ufw allow 22/tcp``, ``sudo ufw --dry-run deny
in on eth0 from 203.0.113.0/24``, ``ufw limit ssh``, ``ufw route allow …``,
``ufw insert 1 …``, ``ufw prepend …``, ``ufw delete …``, ``ufw default deny
incoming``, ``ufw logging off``, ``ufw allow "Nginx Full"``. The syntax is
ufw 0.36's own (``ufw/parser.py``): a simple form ``ACTION [in|out] [log]
PORT[/PROTO]|APP|SERVICE`` and an extended form of keyword/value pairs in any
order (``proto``, ``from``, ``to``, ``port``, ``app``, ``in on``/``out on``).
Every refusal is a :class:`RuleAnalyzerError` at the offending word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lark import Token

from ..errors import RuleAnalyzerError
from ..model import Location
from .ufw_apps import Profile, find_profile, service
from .ufw_rules import UfwRule, normalize_address
from .ufw_syntax import CommandSyntax, Item, RuleSyntax, parse_command_syntax

PROTOCOLS = ("tcp", "udp", "ah", "esp", "gre", "ipv6", "igmp", "any")
_IFACE = re.compile(r"^[A-Za-z0-9_.\-:+]{1,15}$")
#: Token kinds of numeric port lists (``grammars/ufw.lark``).
_NUMERIC = ("NUMBER", "PORT_LIST", "PORT_PROTO")
_ALIASES = {"in": "incoming", "out": "outgoing", "input": "incoming", "output": "outgoing",
            "forward": "routed"}


@dataclass
class Command:
    """One ufw command, understood. ``kind``: rule, delete-number, default,
    logging, enable, disable, reset, other."""

    kind: str
    location: Location
    rules: list[UfwRule] = field(default_factory=list)
    position: int = 0  # insert N (1-based); -1: prepend
    delete: bool = False
    number: int = 0
    policy: str = ""
    direction: str = ""
    level: str = ""
    #: The application name a rule uses that no profile defines.
    unknown_app: str = ""


class _Parser:
    """Reads the values of a parsed command (:mod:`.ufw_syntax`): where ufw
    looks at what a word says, not at where it stands."""

    def __init__(self, line: str, name: str, lineno: int, profiles: dict[str, Profile] | None):
        self.line, self.name, self.lineno = line, name, lineno
        self.profiles = profiles

    def error(self, message: str, word: Token | None, hint: str | None = None) -> RuleAnalyzerError:
        column = word.column if word is not None else len(self.line.rstrip()) + 1
        return RuleAnalyzerError(message, Location(self.name, self.lineno, column),
                                 source_line=self.line, hint=hint)

    # -- top level -----------------------------------------------------------

    def command(self, syntax: CommandSyntax) -> Command:
        loc = Location(self.name, self.lineno, syntax.first.column)
        kind, args = syntax.kind, syntax.args
        if kind == "default":
            direction = args[1].lower() if len(args) > 1 else "incoming"
            return Command("default", loc, policy=args[0].lower(), direction=_ALIASES.get(direction, direction))
        if kind == "logging":
            level = args[0].lower()
            return Command("logging", loc, level="low" if level == "on" else level)
        if kind == "delete-number":
            number = int(args[0])
            if number < 1:
                raise self.error("rule numbers start at 1", args[0])
            return Command("delete-number", loc, number=number)
        if kind != "rule":
            return Command(kind, loc)
        rule = syntax.rule
        if rule.position_token is not None and rule.position < 1:
            raise self.error("insert needs a rule number (from 1)", rule.position_token)
        rules, unknown_app = self.rule_spec(rule)
        return Command("rule", loc, rules=rules, position=rule.position, delete=rule.delete,
                       unknown_app=unknown_app)

    # -- rules ---------------------------------------------------------------

    def rule_spec(self, syntax: RuleSyntax) -> tuple[list[UfwRule], str]:
        items = list(syntax.items)
        forward = syntax.forward
        direction = "in"
        if items and items[0].kind in ("dir", "iface"):
            direction = items[0].key.lower()
            if items[0].kind == "dir":
                del items[0]
        rule = UfwRule(syntax.action.lower(), direction=direction, forward=forward,
                       location=Location(self.name, self.lineno, syntax.action.column))
        # "in on X" / "out on X" anywhere; a bare "in"/"out" only first
        i = 0
        while i < len(items):
            item = items[i]
            if item.kind == "iface":
                iface, w = item.value, item.key.lower()
                if not _IFACE.match(iface) or iface.startswith("!"):
                    raise self.error(f"invalid interface name {str(iface)!r}", iface)
                if w == "in":
                    if rule.iface_in:
                        raise self.error("two 'in on' clauses", item.key)
                    rule.iface_in = str(iface)
                else:
                    if rule.iface_out:
                        raise self.error("two 'out on' clauses", item.key)
                    rule.iface_out = str(iface)
                if not forward:
                    rule.direction = w
                del items[i]
                continue
            if item.kind == "dir" and i > 0:
                raise self.error(f"'{item.key.lower()}' must be followed by 'on INTERFACE'", item.key)
            i += 1
        if forward and (rule.iface_in or rule.iface_out) and not (rule.iface_in and rule.iface_out):
            rule.direction = "in" if rule.iface_in else "out"
        if items and items[0].kind == "dir":
            del items[0]
        logs = [i for i, item in enumerate(items) if item.kind == "log"]
        if logs:
            if logs[0] != 0:
                raise self.error(f"option '{items[logs[0]].key}' not allowed here", items[logs[0]].key,
                                 hint="it comes right after the action (and direction)")
            if len(logs) > 1:
                raise self.error(f"option '{items[logs[1]].key}' not allowed here", items[logs[1]].key)
            rule.logtype = items.pop(0).key.lower()
        comments = [i for i, item in enumerate(items) if item.kind == "comment"]
        if comments:
            item = items[comments[0]]
            if "'" in item.value:
                raise self.error("a comment may not contain \"'\"", item.value)
            rule.comment = str(item.value)
            del items[comments[0]]
        if not items and (rule.iface_in or rule.iface_out):
            return self.finish(rule, "", "")
        if not items:
            raise self.error("missing port, application or 'to'/'from' clause", None)
        words = [item.key for item in items if item.kind == "word"]
        if len(words) == len(items):
            if len(words) == 1:
                return self.simple(rule, words[0])
            # an unquoted application name of several words ("Dovecot POP3")
            joined = " ".join(words)
            if find_profile(joined, self.profiles) is not None:
                return self.simple(rule, Token.new_borrow_pos("BARE_WORD", joined, words[0]))
        return self.extended(rule, items)

    def simple(self, rule: UfwRule, word: Token) -> tuple[list[UfwRule], str]:
        """``PORT[/PROTO]``, ``SERVICE[/PROTO]`` or an application name."""
        text = str(word)
        numeric = word.type in _NUMERIC
        profile = find_profile(text, self.profiles) if not numeric else None
        if profile is not None and service(text) is None:
            rule.dapp = profile.name
            return self.finish(rule, "", "")
        port, _, proto = text.partition("/")
        if proto and proto.lower() not in PROTOCOLS:
            raise self.error(f"unknown protocol {proto!r}", word, hint="tcp, udp, ah, esp, gre, ipv6, igmp")
        if not port:
            raise self.error("bad port", word)
        if not numeric:
            if "," in port or ":" in port:
                raise self.error("port ranges must be numeric", word)
            known = service(port)
            if known is None:
                if proto:
                    raise self.error(f"unknown service {port!r}", word)
                # an application profile this analyzer does not ship
                rule.dapp = port
                return self.finish(rule, "", "", unknown_app=port)
            number, protos = known
            if not proto:
                proto = protos[0] if len(protos) == 1 else "any"
            port = str(number)
        rule.protocol = proto.lower() or "any"
        rule.dport = self.check_ports(port, rule.protocol, word)
        return self.finish(rule, "", "")

    def extended(self, rule: UfwRule, items: list[Item]) -> tuple[list[UfwRule], str]:
        """Keyword/value clauses in any order (and stray words: refused)."""
        words = [w for item in items for w in (item.key, item.value) if w is not None]
        if len(words) % 2:
            raise self.error("wrong number of arguments", words[-1],
                             hint="keywords (proto, from, to, port, app) each take one value")
        counts: dict[str, int] = {}
        for item in items:
            if item.kind == "clause":
                counts[item.key.lower()] = counts.get(item.key.lower(), 0) + 1
        first = items[0].key
        if (counts.get("to", 0) > 1 or counts.get("from", 0) > 1 or counts.get("proto", 0) > 1
                or counts.get("port", 0) > 2 or counts.get("app", 0) > 2
                or (counts.get("app") and counts.get("proto"))):
            raise self.error("improper rule syntax (a clause given twice, or app with proto)", first)
        if "to" not in counts and "from" not in counts:
            raise self.error("need a 'to' or 'from' clause", first)
        stray = next((item.key for item in items if item.kind != "clause"), None)
        if stray is not None:
            raise self.error(f"invalid token {str(stray)!r}", stray,
                             hint="expected proto, from, to, port or app")
        where = ""
        services = {}
        src_kind = dst_kind = "any"
        for item in items:
            key, value = item.key, item.value
            k = key.lower()
            if k == "proto":
                proto = value.lower()
                if proto not in PROTOCOLS:
                    raise self.error(f"unsupported protocol {str(value)!r}", value,
                                     hint="tcp, udp, ah, esp, gre, ipv6, igmp")
                rule.protocol = proto
            elif k in ("from", "to"):
                address = self.address(value)
                kind = "any" if address == "any" else ("v6" if ":" in address else "v4")
                if k == "from":
                    rule.src, src_kind, where = address, kind, "src"
                else:
                    rule.dst, dst_kind, where = address, kind, "dst"
            elif k in ("port", "app"):
                if not where:
                    raise self.error(f"need 'from' or 'to' before '{k}'", key)
                if k == "app":
                    profile = find_profile(value, self.profiles)
                    name = profile.name if profile else str(value)
                    if where == "src":
                        rule.sapp = name
                    else:
                        rule.dapp = name
                    if profile is None:
                        rule.unknown_app = str(value)
                else:
                    port = str(value)
                    if value.type not in ("NUMBER", "PORT_LIST"):
                        if "," in port or ":" in port:
                            raise self.error("port ranges must be numeric", value)
                        known = service(port)
                        if known is None:
                            raise self.error(f"unknown port or service {port!r}", value)
                        services[where] = known[1]
                        port = str(known[0])
                    if where == "src":
                        rule.sport = port
                    else:
                        rule.dport = port
        if src_kind != "any" and dst_kind != "any" and src_kind != dst_kind:
            raise self.error("mixed IP versions for 'from' and 'to'", first)
        if services and rule.protocol == "any":
            protos = set.intersection(*(set(p) for p in services.values()))
            if not protos:
                raise self.error("protocol mismatch (from/to)", first)
            rule.protocol = protos.pop() if len(protos) == 1 else "any"
        for port_field in ("dport", "sport"):
            value = getattr(rule, port_field)
            if value != "any":
                setattr(rule, port_field, self.check_ports(value, rule.protocol, first))
        if (rule.dport != "any" or rule.sport != "any") and rule.protocol not in ("any", "tcp", "udp"):
            raise self.error(f"ports need tcp or udp, not {rule.protocol}", first)
        return self.finish(rule, src_kind, dst_kind, unknown_app=rule.unknown_app)

    def address(self, word: Token) -> str:
        text = word.lower()
        if text == "any":
            return "any"
        try:
            return normalize_address(text)
        except ValueError:
            raise self.error(f"bad address {str(word)!r}", word, hint="an IPv4/IPv6 address or network, or 'any'") from None

    def check_ports(self, ports: str, protocol: str, word: Token) -> str:
        parts = ports.split(",")
        if ports.startswith((",", ":")) or ports.endswith((",", ":")) or ports.count(",") + ports.count(":") > 14:
            raise self.error(f"bad port {ports!r}", word)
        for part in parts:
            bounds = part.split(":")
            if len(bounds) > 2 or not all(b.isdigit() for b in bounds):
                raise self.error(f"bad port {ports!r}", word)
            values = [int(b) for b in bounds]
            if any(not 1 <= v <= 65535 for v in values) or (len(values) == 2 and values[0] >= values[1]):
                raise self.error(f"bad port {ports!r}", word)
        if (len(parts) > 1 or ":" in ports) and protocol not in ("tcp", "udp"):
            raise self.error("multiple ports or a range need 'tcp' or 'udp'", word,
                             hint="add /tcp, /udp or 'proto tcp'")
        return ",".join(sorted(parts, key=lambda p: int(p.split(":")[0])))

    def finish(self, rule: UfwRule, src_kind: str, dst_kind: str, unknown_app: str = "") -> tuple[list[UfwRule], str]:
        """Expand application names into one rule per port group."""
        if rule.action == "limit" and rule.direction == "out" and not rule.forward:
            pass  # ufw allows it; nothing special
        if not rule.dapp and not rule.sapp or unknown_app:
            if unknown_app:
                rule.unknown_app = unknown_app
            return [rule], unknown_app
        dgroups = self.groups(rule.dapp) if rule.dapp else [None]
        sgroups = self.groups(rule.sapp) if rule.sapp else [None]
        out = []
        for dg in dgroups:
            for sg in sgroups:
                r = UfwRule(**{**rule.__dict__})
                protos = {g.protocol for g in (dg, sg) if g is not None} - {"any"}
                if len(protos) > 1:
                    continue
                r.protocol = protos.pop() if protos else "any"
                if dg is not None:
                    r.dport = dg.ports
                if sg is not None:
                    r.sport = sg.ports if rule.sapp != rule.dapp or dg is None else dg.ports
                out.append(r)
        return out, ""

    def groups(self, name: str):
        profile = find_profile(name, self.profiles)
        return list(profile.ports) if profile else [None]


def parse_command(line: str, name: str = "<command>", lineno: int = 1,
                  profiles: dict[str, Profile] | None = None) -> Command:
    """One ufw command line (``ufw``/``sudo`` prefixes optional)."""
    syntax = parse_command_syntax(line, name, lineno)
    return _Parser(line, name, lineno, profiles).command(syntax)
