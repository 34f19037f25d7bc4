"""iptables targets (``-j NAME`` extensions): their options and the model
action each becomes.

Terminating targets give a verdict (ACCEPT, DROP, REJECT, NAT, queues);
the bookkeeping ones (LOG, NFLOG, TCPMSS, CLASSIFY, …) return XT_CONTINUE in
the kernel and become :class:`~ruleanalyzer.model.Log`; the ones that change
a header field the model knows become :class:`~ruleanalyzer.model.SetField`.
"""

from __future__ import annotations

import sys
from dataclasses import replace

from ..model import (Accept, Action, Drop, EcnStrip, Goto, Jump, Log, Nat, Notrack, Queue, Reject, Return,
                     Ruleset, SetField, UnknownAction)
from . import iptables_values as values
from .iptables_values import BadValue

_M32 = 0xFFFFFFFF

#: target → {option → number of arguments}
TARGETS: dict[str, dict[str, int]] = {
    "ACCEPT": {}, "DROP": {}, "RETURN": {},
    "REJECT": {"--reject-with": 1},
    "LOG": {"--log-level": 1, "--log-prefix": 1, "--log-tcp-sequence": 0,
            "--log-tcp-options": 0, "--log-ip-options": 0, "--log-uid": 0, "--log-macdecode": 0},
    "NFLOG": {"--nflog-group": 1, "--nflog-prefix": 1, "--nflog-range": 1, "--nflog-size": 1,
              "--nflog-threshold": 1},
    "ULOG": {"--ulog-nlgroup": 1, "--ulog-prefix": 1, "--ulog-cprange": 1, "--ulog-qthreshold": 1},
    "MARK": {"--set-mark": 1, "--set-xmark": 1, "--and-mark": 1, "--or-mark": 1, "--xor-mark": 1},
    "CONNMARK": {"--set-mark": 1, "--set-xmark": 1, "--and-mark": 1, "--or-mark": 1,
                 "--xor-mark": 1, "--save-mark": 0, "--restore-mark": 0, "--mask": 1,
                 "--nfmask": 1, "--ctmask": 1, "--left-shift-mark": 1, "--right-shift-mark": 1},
    "DSCP": {"--set-dscp": 1, "--set-dscp-class": 1},
    "TOS": {"--set-tos": 1, "--and-tos": 1, "--or-tos": 1, "--xor-tos": 1},
    "TTL": {"--ttl-set": 1, "--ttl-dec": 1, "--ttl-inc": 1},
    "HL": {"--hl-set": 1, "--hl-dec": 1, "--hl-inc": 1},
    "ECN": {"--ecn-tcp-remove": 0, "--ecn-tcp-cwr": 1, "--ecn-tcp-ece": 1, "--ecn-ip-ect": 1},
    "DNAT": {"--to-destination": 1, "--random": 0, "--persistent": 0, "--random-fully": 0},
    "SNAT": {"--to-source": 1, "--random": 0, "--persistent": 0, "--random-fully": 0},
    "MASQUERADE": {"--to-ports": 1, "--random": 0, "--random-fully": 0},
    "REDIRECT": {"--to-ports": 1, "--random": 0},
    "NETMAP": {"--to": 1},
    "NFQUEUE": {"--queue-num": 1, "--queue-balance": 1, "--queue-bypass": 0, "--fail-open": 0,
                "--queue-cpu-fanout": 0},
    "QUEUE": {},
    "CT": {"--notrack": 0, "--helper": 1, "--ctevents": 1, "--expevents": 1, "--zone": 1,
           "--zone-orig": 1, "--zone-reply": 1, "--timeout": 1},
    "NOTRACK": {},
    "TRACE": {}, "AUDIT": {"--type": 1}, "CHECKSUM": {"--checksum-fill": 0},
    "CLASSIFY": {"--set-class": 1}, "SECMARK": {"--selctx": 1},
    "CONNSECMARK": {"--save": 0, "--restore": 0}, "TEE": {"--gateway": 1, "--oif": 1},
    "IDLETIMER": {"--timeout": 1, "--label": 1, "--alarm": 0},
    "LED": {"--led-trigger-id": 1, "--led-delay": 1, "--led-always-blink": 0},
    "RATEEST": {"--rateest-name": 1, "--rateest-interval": 1, "--rateest-ewmalog": 1},
    "SET": {"--add-set": 2, "--del-set": 2, "--map-set": 2, "--timeout": 1, "--exist": 0,
            "--map-mark": 0, "--map-prio": 0, "--map-queue": 0},
    "TCPMSS": {"--set-mss": 1, "--clamp-mss-to-pmtu": 0},
    "TCPOPTSTRIP": {"--strip-options": 1},
    "HMARK": {name: 1 for name in ("--hmark-tuple", "--hmark-mod", "--hmark-offset",
                                   "--hmark-src-prefix", "--hmark-dst-prefix", "--hmark-sport-mask",
                                   "--hmark-dport-mask", "--hmark-spi-mask", "--hmark-proto-mask",
                                   "--hmark-rnd")},
    "SYNPROXY": {"--mss": 1, "--wscale": 1, "--sack-perm": 0, "--timestamp": 0, "--ecn": 0},
    "TPROXY": {"--on-port": 1, "--on-ip": 1, "--tproxy-mark": 1},
    "CLUSTERIP": {"--new": 0, "--hashmode": 1, "--clustermac": 1, "--total-nodes": 1,
                  "--local-node": 1, "--hash-init": 1},
    "MIRROR": {}, "SAME": {"--to": 1, "--nodst": 0, "--random": 0},
    "DNPT": {"--src-pfx": 1, "--dst-pfx": 1}, "SNPT": {"--src-pfx": 1, "--dst-pfx": 1},
}

#: Targets that do their work and let the packet go on (XT_CONTINUE).
_BOOKKEEPING = {"LOG", "NFLOG", "ULOG", "TRACE", "AUDIT", "CHECKSUM", "CLASSIFY", "SECMARK",
                "CONNSECMARK", "TEE", "IDLETIMER", "LED", "RATEEST", "SET", "TCPMSS",
                "TCPOPTSTRIP", "HMARK", "CT"}


_LOG_LEVELS = ("emerg", "alert", "crit", "error", "warning", "notice", "info", "debug",
               "panic", "err", "warn")


def _value_mask(text: str) -> tuple[int, int | None]:
    value, sep, mask = text.partition("/")
    return (values.parse_int(value, 0, _M32, "value"),
            values.parse_int(mask, 0, _M32, "mask") if sep else None)


def _xmark(option: str, arg: str, bits: int = 32) -> tuple[int, int]:
    """MARK/CONNMARK/TOS operations as (value, mask) of ``f = (f & ~mask) ^ value``,
    translated the way libxt_MARK / libxt_TOS do."""
    top = (1 << bits) - 1
    value, mask = _value_mask(arg)
    if value > top or (mask is not None and mask > top):
        raise BadValue(f"value {arg} does not fit in {bits} bits")
    suffix = option.rsplit("-", 1)[-1]
    if option.startswith("--set-x"):
        return value, top if mask is None else mask
    if option.startswith("--set"):
        return value, (top if mask is None else mask) | value
    if mask is not None:
        raise BadValue(f"{option} takes no mask")
    if option.startswith("--and"):
        return 0, top & ~value
    if option.startswith("--or"):
        return value, value
    if option.startswith("--xor"):
        return value, 0
    raise BadValue(f"unknown {suffix} operation {option}")


def nat_has_port(text: str, family: str) -> bool:
    """Does a ``--to-destination`` / ``--to-source`` value name a port?"""
    if family == "ip6":
        return text.startswith(":") or (text.startswith("[") and "]:" in text)
    return ":" in text


def _nat_range(text: str, family: str):
    """``a[-b][:p[-q]]``; IPv6 addresses stand in brackets when ports follow
    (``[a]-[b]:p-q``)."""
    if family == "ip6" and text.startswith("["):
        close = text.rfind("]")
        if close < 0:
            raise BadValue(f"missing ']' in {text!r}")
        addr_part, ports = text[:close + 1].replace("[", "").replace("]", ""), text[close + 1:]
        ports = ports[1:] if ports.startswith(":") else ports
    elif family == "ip6" and not text.startswith(":"):
        addr_part, ports = text, ""
    else:
        addr_part, _, ports = text.partition(":")
    first = last = None
    if addr_part:
        a, sep, b = addr_part.partition("-")
        first = values.parse_address(a, family)
        last = values.parse_address(b, family) if sep else None
    port = port_last = None
    if ports:
        port, port_last = _port_range(ports)
    return first, last, port, port_last


def _port_range(text: str) -> tuple[int, int | None]:
    return values.parse_nat_ports(text)


def build_action(name: str, options: list[tuple[str, list[str]]], family: str,
                 text: str) -> Action:
    """The model action of target ``name`` with its ``options`` (in order)."""
    opts = dict((o, a) for o, a in options)
    v6 = family == "ip6"
    if name in ("DNAT", "SNAT"):  # first: one per kube-proxy endpoint
        option = "--to-destination" if name == "DNAT" else "--to-source"
        if option not in opts:
            raise BadValue(f"{name} needs {option}")
        first, last, port, port_last = _nat_range(opts[option][0], family)
        return Nat(sys.intern(name.lower()), first, last, port, port_last,  # (one kind string)
                   "--persistent" in opts, "--random" in opts or "--random-fully" in opts)
    if name == "ACCEPT":
        return Accept()
    if name == "DROP":
        return Drop()
    if name == "RETURN":
        return Return()
    if name == "REJECT":
        default = "icmp6-port-unreachable" if v6 else "icmp-port-unreachable"
        reply = opts.get("--reject-with")
        return Reject(values.parse_reject_with(reply[0], v6) if reply else default)
    if name == "MARK":
        return _mark_action("mark", options, text)
    if name == "CONNMARK":
        return _connmark_action(options, opts, text)
    if name == "DSCP":
        if "--set-dscp" in opts:
            dscp = values.parse_int(opts["--set-dscp"][0], 0, 63, "DSCP value")
        elif "--set-dscp-class" in opts:
            dscp = values.parse_dscp_class(opts["--set-dscp-class"][0])
        else:
            raise BadValue("DSCP target needs --set-dscp or --set-dscp-class")
        return SetField("dscp", dscp, 0x3F)
    if name == "TOS":
        return _tos_action(options, text)
    if name in ("TTL", "HL"):
        setter = opts.get("--ttl-set") or opts.get("--hl-set")
        if setter:
            return SetField("ttl", values.parse_int(setter[0], 0, 255, "TTL"), 0xFF)
        if len(options) != 1:
            raise BadValue(f"{name} target needs exactly one operation")
        change = values.parse_int(options[0][1][0], 0, 255, "TTL change")
        if change == 0:
            raise BadValue(f"{options[0][0]} 0 changes nothing; iptables refuses it")
        if options[0][0] in ("--ttl-inc", "--hl-inc", "--ttl-dec", "--hl-dec"):
            return SetField("ttl", 0, 0, add=change if options[0][0].endswith("inc") else -change)
        return Log(text)
    if name == "ECN":
        if "--ecn-tcp-remove" in opts:
            return EcnStrip()
        if not options:
            raise BadValue("ECN target needs an operation (--ecn-tcp-remove, ...)")
        return Log(text)
    if name in ("MASQUERADE", "REDIRECT"):
        port = port_last = None
        if "--to-ports" in opts:
            port, port_last = _port_range(opts["--to-ports"][0])
        return Nat(sys.intern(name.lower()), None, None, port, port_last,
                   random="--random" in opts or "--random-fully" in opts)
    if name in ("NFQUEUE", "QUEUE"):
        return Queue(text or name)
    if name == "NOTRACK" or (name == "CT" and "--notrack" in opts):
        return Notrack()
    if name == "LOG" and "--log-level" in opts:
        level = opts["--log-level"][0]
        if level.lower() not in _LOG_LEVELS and not (level.isdigit() and int(level) <= 7):
            raise BadValue(f"invalid log level {level!r} (0-7 or {', '.join(_LOG_LEVELS)})")
    if name in _BOOKKEEPING:
        return Log(text or name)
    return UnknownAction(text or name)


def _mark_action(field: str, options, text: str) -> Action:
    ops = [(o, a) for o, a in options if o in TARGETS["MARK"]]
    if len(ops) != 1:
        raise BadValue("MARK target needs exactly one of --set-xmark, --set-mark, "
                       "--and-mark, --or-mark, --xor-mark")
    value, mask = _xmark(ops[0][0], ops[0][1][0])
    return SetField(field, value, mask)


def _connmark_action(options, opts, text: str) -> Action:
    def mask_of(*names):
        for n in names:
            if n in opts:
                return values.parse_int(opts[n][0], 0, _M32, "mask")
        return _M32
    if "--save-mark" in opts or "--restore-mark" in opts:
        nfmask = mask_of("--nfmask", "--mask")
        ctmask = mask_of("--ctmask", "--mask")
        if nfmask != ctmask:
            return UnknownAction(text)  # differing masks are not a plain copy
        if "--save-mark" in opts:
            return SetField("ctmark", 0, ctmask, copy_from="mark")
        return SetField("mark", 0, nfmask, copy_from="ctmark")
    ops = [(o, a) for o, a in options if o in ("--set-mark", "--set-xmark", "--and-mark",
                                                "--or-mark", "--xor-mark")]
    if len(ops) != 1:
        raise BadValue("CONNMARK target needs one of --set-xmark, --set-mark, --save-mark, "
                       "--restore-mark, --and-mark, --or-mark, --xor-mark")
    value, mask = _xmark(ops[0][0], ops[0][1][0])
    return SetField("ctmark", value, mask)


def _tos_action(options, text: str) -> Action:
    if len(options) != 1:
        raise BadValue("TOS target needs exactly one of --set-tos, --and-tos, --or-tos, --xor-tos")
    option, args = options[0]
    if option == "--set-tos":
        value, mask = values.parse_tos(args[0])
        if option == "--set-tos" and "/" not in args[0] and args[0].lower() not in values.TOS_NAMES:
            mask = 0xFF
        value, mask = value, mask | value
    else:
        value, mask = _xmark(option.replace("-tos", "-mark"), args[0], bits=8)
    if mask & 0x03 == 0 and value & 0x03 == 0:
        # leaves the ECN bits alone: a change of the DSCP field
        return SetField("dscp", value >> 2, mask >> 2)
    return SetField("tos", value, mask)


#: The nat table's built-in chains and the translation NETMAP does there
#: (xt_NETMAP: the destination where packets arrive or leave the host's own
#: stack first — PREROUTING, OUTPUT — else the source).
_NETMAP_KINDS = {"PREROUTING": "dnat", "OUTPUT": "dnat", "POSTROUTING": "snat", "INPUT": "snat"}


def resolve_netmap(ruleset: Ruleset) -> None:
    """Make each ``-j NETMAP --to PREFIX`` of a nat table the translation it
    does where it runs: a DNAT of the destination's prefix in PREROUTING
    and OUTPUT, a SNAT of the source's in POSTROUTING and INPUT, in the
    built-in chain or a user chain only those reach. A user chain reached
    from both kinds keeps the target unmodelled (the answer depends on it).
    Done after the whole file is read: the target alone does not say which
    hook runs it."""
    for table in ruleset.tables:
        if table.name != "nat":
            continue
        kinds: dict[str, set] = {name: {kind} for name, kind in _NETMAP_KINDS.items()
                                 if name in table.chains}
        todo = list(kinds)
        while todo:
            name = todo.pop()
            for rule in table.chains[name].rules:
                for action in rule.actions():
                    target = getattr(action, "target", None)
                    if isinstance(action, (Jump, Goto)) and target in table.chains and \
                            not kinds[name] <= kinds.setdefault(target, set()):
                        kinds[target] |= kinds[name]
                        todo.append(target)
        for name, chain in table.chains.items():
            if len(kinds.get(name, ())) != 1:
                continue
            kind = next(iter(kinds[name]))
            for k, rule in enumerate(chain.rules):
                action = rule.action
                if isinstance(action, UnknownAction) and action.text.startswith("-j NETMAP --to "):
                    try:
                        net = values.parse_network(action.text.split()[3], table.family)
                    except (BadValue, IndexError):
                        continue  # (left unmodelled; iptables-restore would refuse it)
                    chain.rules[k] = replace(rule, action=Nat(kind, net[0], net[-1], netmap=True))
