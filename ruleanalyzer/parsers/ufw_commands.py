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

import ipaddress
import re
from dataclasses import dataclass, field

from ..errors import RuleAnalyzerError
from ..model import Location
from .ufw_apps import Profile, find_profile, service
from .ufw_rules import ACTIONS, UfwRule, normalize_address

_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|(\S+)')
_NUMERIC_PORTS = re.compile(r"^\d([0-9,:]*\d+)*$")
PROTOCOLS = ("tcp", "udp", "ah", "esp", "gre", "ipv6", "igmp", "any")
LOGLEVEL_WORDS = ("on", "off", "low", "medium", "high", "full")
_IFACE = re.compile(r"^[A-Za-z0-9_.\-:+]{1,15}$")
#: Commands that do not change the rules (status, app info …).
QUIET = {"status", "show", "version", "help", "--help", "-h", "--version", "app", "reload",
         "check-requirements"}


@dataclass
class Word:
    text: str
    column: int


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


def tokenize(line: str) -> list[Word]:
    """Shell-like words with their 1-based columns (quotes removed)."""
    words = []
    for m in _TOKEN.finditer(line):
        if m.group(3) is not None and m.group(3).startswith("#"):
            break  # a shell comment ends the command
        text = next(g for g in m.groups() if g is not None)
        words.append(Word(text, m.start() + 1))
    return words


class _Parser:
    def __init__(self, line: str, name: str, lineno: int, profiles: dict[str, Profile] | None):
        self.line, self.name, self.lineno = line, name, lineno
        self.profiles = profiles

    def error(self, message: str, word: Word | None, hint: str | None = None) -> RuleAnalyzerError:
        column = word.column if word else len(self.line.rstrip()) + 1
        return RuleAnalyzerError(message, Location(self.name, self.lineno, column),
                                 source_line=self.line, hint=hint)

    # -- top level -----------------------------------------------------------

    def command(self, words: list[Word]) -> Command:
        loc = Location(self.name, self.lineno, words[0].column if words else 1)
        while words and words[0].text in ("--dry-run", "--force", "-f"):
            words = words[1:]
        if not words:
            raise self.error("ufw command without arguments", None, hint="e.g. 'ufw allow 22/tcp'")
        head = words[0]
        verb = head.text.lower()
        if verb in QUIET:
            return Command("other", loc)
        if verb in ("enable", "disable", "reset"):
            if len(words) > 1:
                raise self.error(f"'{verb}' takes no arguments", words[1])
            return Command(verb, loc)
        if verb == "default":
            return self.default(words, loc)
        if verb == "logging":
            if len(words) != 2 or words[1].text.lower() not in LOGLEVEL_WORDS:
                raise self.error("logging needs one of on, off, low, medium, high, full",
                                 words[1] if len(words) > 1 else None)
            level = words[1].text.lower()
            return Command("logging", loc, level="low" if level == "on" else level)
        if verb == "route" and len(words) > 1 and words[1].text.lower() in ("delete", "insert", "prepend"):
            # "route delete …" / "route insert N …": the same as "delete route …"
            words = [words[1], words[0]] + words[2:] if words[1].text.lower() == "delete" else words
            if words[0].text.lower() == "route":
                return self._route_insert(words, loc)
            verb = "delete"
        if verb == "delete":
            if len(words) < 2:
                raise self.error("delete needs a rule number or a rule", None)
            if words[1].text.isdigit():
                if len(words) > 2:
                    raise self.error("unexpected word after the rule number", words[2])
                number = int(words[1].text)
                if number < 1:
                    raise self.error("rule numbers start at 1", words[1])
                return Command("delete-number", loc, number=number)
            command = self.rule_command(words[1:], loc)
            command.delete = True
            return command
        return self.rule_command(words, loc)

    def _route_insert(self, words: list[Word], loc: Location) -> Command:
        """``route insert N ACTION …`` / ``route prepend ACTION …``."""
        rest = words[1:]
        take = 3 if rest[0].text.lower() == "insert" else 2
        if len(rest) < take:
            raise self.error("missing action", None)
        return self.rule_command(rest[:take - 1] + [words[0]] + rest[take - 1:], loc)

    def default(self, words: list[Word], loc: Location) -> Command:
        if len(words) < 2 or words[1].text.lower() not in ("allow", "deny", "reject"):
            raise self.error("default needs allow, deny or reject", words[1] if len(words) > 1 else None)
        direction = "incoming"
        if len(words) > 2:
            direction = words[2].text.lower()
            aliases = {"in": "incoming", "out": "outgoing", "input": "incoming",
                       "output": "outgoing", "forward": "routed"}
            direction = aliases.get(direction, direction)
            if direction not in ("incoming", "outgoing", "routed"):
                raise self.error(f"unknown direction {words[2].text!r}", words[2],
                                 hint="incoming, outgoing or routed")
        if len(words) > 3:
            raise self.error("unexpected word", words[3])
        return Command("default", loc, policy=words[1].text.lower(), direction=direction)

    # -- rules ---------------------------------------------------------------

    def rule_command(self, words: list[Word], loc: Location) -> Command:
        position = 0
        if words and words[0].text.lower() == "rule":
            words = words[1:]
        if words and words[0].text.lower() == "insert":
            if len(words) < 2 or not words[1].text.isdigit() or int(words[1].text) < 1:
                raise self.error("insert needs a rule number (from 1)", words[1] if len(words) > 1 else None)
            position = int(words[1].text)
            words = words[2:]
        elif words and words[0].text.lower() == "prepend":
            position = -1
            words = words[1:]
        forward = False
        if words and words[0].text.lower() == "route":
            forward = True
            words = words[1:]
        if not words:
            raise self.error("missing action", None, hint="allow, deny, reject or limit")
        action = words[0].text.lower()
        if action not in ACTIONS:
            raise self.error(f"unknown command or action {words[0].text!r}", words[0],
                             hint="ufw allow|deny|reject|limit …, default, logging, delete, insert, route")
        rules, unknown_app = self.rule_spec(action, words, forward)
        return Command("rule", loc, rules=rules, position=position, unknown_app=unknown_app)

    def rule_spec(self, action: str, words: list[Word], forward: bool) -> tuple[list[UfwRule], str]:
        argv = list(words)
        direction = "in"
        if len(argv) > 1 and argv[1].text.lower() in ("in", "out"):
            direction = argv[1].text.lower()
            if len(argv) > 2 and argv[2].text.lower() != "on":
                del argv[1]
        logtype = ""
        comment = ""
        rule = UfwRule(action, direction=direction, forward=forward,
                       location=Location(self.name, self.lineno, words[0].column))
        # interfaces: "in on X" / "out on X" pairs anywhere in the words
        i = 1
        while i < len(argv):
            w = argv[i].text.lower()
            if w in ("in", "out") and i + 1 < len(argv) and argv[i + 1].text.lower() == "on":
                if i + 2 >= len(argv):
                    raise self.error("'on' needs an interface name", None)
                iface = argv[i + 2]
                if not _IFACE.match(iface.text) or iface.text.startswith("!"):
                    raise self.error(f"invalid interface name {iface.text!r}", iface)
                if w == "in":
                    if rule.iface_in:
                        raise self.error("two 'in on' clauses", argv[i])
                    rule.iface_in = iface.text
                else:
                    if rule.iface_out:
                        raise self.error("two 'out on' clauses", argv[i])
                    rule.iface_out = iface.text
                if not forward:
                    rule.direction = w
                del argv[i:i + 3]
                continue
            if w == "on":
                raise self.error("'on' needs 'in' or 'out' before it", argv[i],
                                 hint="e.g. 'ufw allow in on eth0 to any port 22'")
            if w in ("in", "out") and i > 1:
                raise self.error(f"'{w}' must be followed by 'on INTERFACE'", argv[i])
            i += 1
        if forward and (rule.iface_in or rule.iface_out) and not (rule.iface_in and rule.iface_out):
            rule.direction = "in" if rule.iface_in else "out"
        if len(argv) > 1 and argv[1].text.lower() in ("in", "out"):
            del argv[1]
        for i, w in enumerate(argv):
            if w.text.lower() in ("log", "log-all"):
                if i != 1:
                    raise self.error(f"option '{w.text}' not allowed here", w,
                                     hint="it comes right after the action (and direction)")
                logtype = w.text.lower()
                del argv[i]
                break
        for w in argv[1:]:
            if w.text.lower() in ("log", "log-all"):
                raise self.error(f"option '{w.text}' not allowed here", w)
        for i, w in enumerate(argv):
            if w.text.lower() == "comment":
                if i == len(argv) - 1:
                    raise self.error("option 'comment' missing its argument", None)
                comment = argv[i + 1].text
                if "'" in comment:
                    raise self.error("a comment may not contain \"'\"", argv[i + 1])
                del argv[i:i + 2]
                break
        rule.logtype, rule.comment = logtype, comment
        args = argv[1:]
        if not args and (rule.iface_in or rule.iface_out):
            return self.finish(rule, "", "")
        if not args:
            raise self.error("missing port, application or 'to'/'from' clause", None)
        keywords = ("from", "to", "proto", "port", "app")
        if len(args) == 1 and args[0].text.lower() not in keywords:
            return self.simple(rule, args[0])
        if not any(a.text.lower() in keywords for a in args):
            # an unquoted application name of several words ("Dovecot POP3")
            joined = " ".join(a.text for a in args)
            if find_profile(joined, self.profiles) is not None:
                return self.simple(rule, Word(joined, args[0].column))
        return self.extended(rule, args)

    def simple(self, rule: UfwRule, word: Word) -> tuple[list[UfwRule], str]:
        text = word.text
        profile = find_profile(text, self.profiles) if not _NUMERIC_PORTS.match(text.split("/")[0]) else None
        if profile is not None and service(text) is None:
            rule.dapp = profile.name
            return self.finish(rule, "", "")
        port, _, proto = text.partition("/")
        if proto and proto.lower() not in PROTOCOLS:
            raise self.error(f"unknown protocol {proto!r}", word, hint="tcp, udp, ah, esp, gre, ipv6, igmp")
        if not port:
            raise self.error("bad port", word)
        if not _NUMERIC_PORTS.match(port):
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

    def extended(self, rule: UfwRule, args: list[Word]) -> tuple[list[UfwRule], str]:
        if len(args) % 2:
            raise self.error("wrong number of arguments", args[-1],
                             hint="keywords (proto, from, to, port, app) each take one value")
        counts: dict[str, int] = {}
        for w in args[0::2]:
            counts[w.text.lower()] = counts.get(w.text.lower(), 0) + 1
        if (counts.get("to", 0) > 1 or counts.get("from", 0) > 1 or counts.get("proto", 0) > 1
                or counts.get("port", 0) > 2 or counts.get("app", 0) > 2
                or (counts.get("app") and counts.get("proto"))):
            raise self.error("improper rule syntax (a clause given twice, or app with proto)", args[0])
        if "to" not in counts and "from" not in counts:
            raise self.error("need a 'to' or 'from' clause", args[0])
        where = ""
        services = {}
        src_kind = dst_kind = "any"
        for key, value in zip(args[0::2], args[1::2]):
            k = key.text.lower()
            if k == "proto":
                proto = value.text.lower()
                if proto not in PROTOCOLS:
                    raise self.error(f"unsupported protocol {value.text!r}", value,
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
                    profile = find_profile(value.text, self.profiles)
                    name = profile.name if profile else value.text
                    if where == "src":
                        rule.sapp = name
                    else:
                        rule.dapp = name
                    if profile is None:
                        rule.unknown_app = value.text
                else:
                    port = value.text
                    if not _NUMERIC_PORTS.match(port):
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
            else:
                raise self.error(f"invalid token {key.text!r}", key,
                                 hint="expected proto, from, to, port or app")
        if src_kind != "any" and dst_kind != "any" and src_kind != dst_kind:
            raise self.error("mixed IP versions for 'from' and 'to'", args[0])
        if services and rule.protocol == "any":
            protos = set.intersection(*(set(p) for p in services.values()))
            if not protos:
                raise self.error("protocol mismatch (from/to)", args[0])
            rule.protocol = protos.pop() if len(protos) == 1 else "any"
        for port_field in ("dport", "sport"):
            value = getattr(rule, port_field)
            if value != "any":
                setattr(rule, port_field, self.check_ports(value, rule.protocol, args[0]))
        if (rule.dport != "any" or rule.sport != "any") and rule.protocol not in ("any", "tcp", "udp"):
            raise self.error(f"ports need tcp or udp, not {rule.protocol}", args[0])
        return self.finish(rule, src_kind, dst_kind, unknown_app=rule.unknown_app)

    def address(self, word: Word) -> str:
        text = word.text.lower()
        if text == "any":
            return "any"
        try:
            return normalize_address(text)
        except ValueError:
            raise self.error(f"bad address {word.text!r}", word, hint="an IPv4/IPv6 address or network, or 'any'") from None

    def check_ports(self, ports: str, protocol: str, word: Word) -> str:
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
                  profiles: dict[str, Profile] | None = None, words: list[Word] | None = None) -> Command:
    """One ufw command line (``ufw``/``sudo`` prefixes optional)."""
    parser = _Parser(line, name, lineno, profiles)
    words = tokenize(line) if words is None else words
    while words and words[0].text in ("sudo", "$", "#", "ufw") or (words and words[0].text.endswith("/ufw")):
        words = words[1:]
    return parser.command(words)
