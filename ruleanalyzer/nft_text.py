"""nft JSON rules written in nft syntax, for reports and fixes: a finding
about ``nft -j list ruleset`` output quotes the rule as ``nft list
ruleset`` would print it, not as a JSON array.

Covers the expressions and statements of libnftables-json(5) that rulesets
use; a piece it does not know stays compact JSON inside the text, so
nothing is dropped silently.

    >>> rule_text('[{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", '
    ...           '"field": "dport"}}, "right": {"set": [22, 80]}}}, {"counter": null}, {"accept": null}]')
    'tcp dport { 22, 80 } counter accept'
"""

from __future__ import annotations

import json

#: meta keys nft prints without the ``meta`` keyword.
_BARE_META = frozenset({"iif", "oif", "iifname", "oifname", "iiftype", "oiftype"})
#: Keys whose string values nft prints quoted.
_QUOTED = frozenset({"iifname", "oifname", "iif", "oif", "comment", "prefix", "ifname"})
#: Keys whose numbers nft prints as 32-bit hex.
_HEX = frozenset({"mark"})
_BINARY = ("&", "|", "^", "<<", ">>")
_VERDICTS = ("accept", "drop", "continue", "return", "queue")


def rule_text(text: str) -> str:
    """The nft syntax of a rule given as its JSON ``expr`` array (or the
    text unchanged when it is not one)."""
    try:
        exprs = json.loads(text)
    except (ValueError, RecursionError):
        return text
    if not isinstance(exprs, list):
        return text
    return " ".join(s for s in (_statement(x) for x in exprs) if s)


def _json(value) -> str:
    return json.dumps(value, separators=(",", ":"))


def _statement(stmt) -> str:
    if not isinstance(stmt, dict) or len(stmt) != 1:
        return _json(stmt)
    (key, body), = stmt.items()
    handler = _STATEMENTS.get(key)
    if handler is not None:
        try:
            return handler(body)
        except (KeyError, TypeError, ValueError, AttributeError):
            return _json(stmt)
    if key in _VERDICTS:
        return key
    if key in ("jump", "goto") and isinstance(body, dict):
        return f"{key} {body.get('target')}"
    return _json(stmt)


def _match(body) -> str:
    left, right, op = body["left"], body["right"], body.get("op", "==")
    lhs = _expr(left)
    rhs = _expr(right, _key(left))
    if op in ("==", "in") and not _is_binary(left):
        return f"{lhs} {rhs}"
    return f"{lhs} {op} {rhs}"


def _key(expr) -> str:
    """The meta/ct/payload key of an expression, for quoting its values."""
    if isinstance(expr, dict) and len(expr) == 1:
        (_kind, body), = expr.items()
        if isinstance(body, dict):
            return str(body.get("key") or body.get("field") or "")
    return ""


def _expr(expr, key: str = "") -> str:
    if isinstance(expr, bool):
        return "exists" if expr else "missing"
    if isinstance(expr, int) and key in _HEX:
        return f"0x{expr:08x}"
    if isinstance(expr, (int, float)):
        return str(expr)
    if isinstance(expr, str):
        if expr.startswith("@") or not (key in _QUOTED or " " in expr):
            return expr
        return f'"{expr}"'
    if isinstance(expr, list):  # flags written as a list: established,related
        return ",".join(_expr(e, key) for e in expr)
    if not isinstance(expr, dict) or len(expr) != 1:
        return _json(expr)
    (kind, body), = expr.items()
    if kind in _BINARY:
        first, *rest = body
        shift = kind in ("<<", ">>")
        return f" {kind} ".join([_operand(first, key)] + [_operand(e, "" if shift else key) for e in rest])
    handler = _EXPRESSIONS.get(kind)
    if handler is None:
        return _json(expr)
    return handler(body, key)


def _is_binary(expr) -> bool:
    return isinstance(expr, dict) and len(expr) == 1 and next(iter(expr)) in _BINARY


def _operand(expr, key: str) -> str:
    text = _expr(expr, key)
    return f"({text})" if _is_binary(expr) else text


def _payload(body, _key="") -> str:
    if "protocol" in body:
        return f"{body['protocol']} {body['field']}"
    return f"@{body['base']},{body['offset']},{body['len']}"


def _meta(body, _key="") -> str:
    k = body["key"]
    return k if k in _BARE_META else f"meta {k}"


def _ct(body, _key="") -> str:
    parts = ["ct"]
    if body.get("dir"):
        parts.append(body["dir"])
    if body.get("family"):
        parts.append(body["family"])
    parts.append(body["key"])
    return " ".join(parts)


def _set(body, key="") -> str:
    items = body if isinstance(body, list) else [body]
    return "{ " + ", ".join(_element(i, key) for i in items) + " }"


def _element(item, key="") -> str:
    if isinstance(item, list) and len(item) == 2:  # a map entry: key : value
        return f"{_element(item[0], key)} : {_data(item[1])}"
    if isinstance(item, dict) and "elem" in item:
        elem = item["elem"]
        text = _expr(elem.get("val"), key)
        if "timeout" in elem:
            text += f" timeout {_duration(elem['timeout'])}"
        return text
    return _expr(item, key)


def _duration(seconds) -> str:
    """nft's ``1m30s`` form of a number of seconds."""
    if not isinstance(seconds, int) or seconds <= 0:
        return f"{seconds}s"
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            out += f"{seconds // size}{unit}"
            seconds %= size
    return out


def _data(value) -> str:
    if isinstance(value, dict) and len(value) == 1:
        (k, body), = value.items()
        if k in _VERDICTS:
            return k
        if k in ("jump", "goto") and isinstance(body, dict):
            return f"{k} {body.get('target')}"
    return _expr(value)


def _map(body, key="") -> str:
    data = body["data"]
    return f"{_expr(body['key'])} map {data if isinstance(data, str) else _set(data['set'], key)}"


def _prefix(body, _key="") -> str:
    return f"{_expr(body['addr'])}/{body['len']}"


def _range(body, key="") -> str:
    return f"{_expr(body[0], key)}-{_expr(body[1], key)}"


def _concat(body, key="") -> str:
    return " . ".join(_expr(e, key) for e in body)


def _fib(body, _key="") -> str:
    flags = body.get("flags", [])
    flags = [flags] if isinstance(flags, str) else flags
    return f"fib {' . '.join(flags)} {body['result']}"


def _exthdr(body, _key="") -> str:
    field = f" {body['field']}" if body.get("field") else ""
    return f"{body['name']}{field}" if "offset" not in body else f"{body['name']} {body['offset']}"


def _tcp_option(body, _key="") -> str:
    field = f" {body['field']}" if body.get("field") else ""
    return f"tcp option {body['name']}{field}"


def _named(word: str):
    """``rt mtu``, ``socket transparent``, ``osf name`` …"""
    return lambda body, _key="": f"{word} {body.get('key') or body.get('name') or ''}".strip()


def _hash(word: str):
    def render(body, _key=""):
        parts = [word]
        if word == "numgen":
            parts.append(body.get("mode", "inc"))
        elif "expr" in body:
            parts.append(_expr(body["expr"]))
        parts.append(f"mod {body['mod']}")
        if body.get("offset"):
            parts.append(f"offset {body['offset']}")
        return " ".join(parts)
    return render


_EXPRESSIONS = {
    "payload": _payload, "meta": _meta, "ct": _ct, "set": _set, "prefix": _prefix,
    "range": _range, "concat": _concat, "fib": _fib, "exthdr": _exthdr, "tcp option": _tcp_option,
    "rt": _named("rt"), "socket": _named("socket"), "osf": _named("osf"),
    "numgen": _hash("numgen"), "jhash": _hash("jhash"), "symhash": _hash("symhash"),
    "elem": lambda body, key="": _element({"elem": body}, key), "map": _map,
    "ipsec": lambda body, _key="": f"ipsec {body.get('dir', 'in')} {body['key']}",
}


def _counter(body) -> str:
    if isinstance(body, (str, dict)) and not (isinstance(body, dict) and "packets" in body):
        return _objref("counter name")(body) if isinstance(body, dict) and "map" in body else (
            f'counter name "{body}"' if isinstance(body, str) else "counter")
    if isinstance(body, dict) and "packets" in body:
        return f"counter packets {body['packets']} bytes {body.get('bytes', 0)}"
    return "counter"


def _log(body) -> str:
    parts = ["log"]
    body = body or {}
    if "prefix" in body:
        parts.append(f'prefix "{body["prefix"]}"')
    for k in ("level", "group", "snaplen", "queue-threshold"):
        if k in body:
            parts.append(f"{k} {body[k]}")
    flags = body.get("flags")
    for f in [flags] if isinstance(flags, str) else flags or []:
        parts.append(f"flags {f}")
    return " ".join(parts)


def _limit(body) -> str:
    if isinstance(body, str) or "map" in body:
        return _objref("limit name")(body)
    over = " over" if body.get("inv") else ""
    unit = "" if body.get("rate_unit", "packets") == "packets" else f" {body['rate_unit']}"
    text = f"limit rate{over} {body['rate']}{unit}/{body.get('per', 'second')}"
    if body.get("burst"):
        text += f" burst {body['burst']} {body.get('burst_unit', 'packets')}"
    return text


def _reject(body) -> str:
    if not body:
        return "reject"
    kind, code = body.get("type"), body.get("expr")
    if kind == "tcp reset":
        return "reject with tcp reset"
    return f"reject with {kind} {code}".replace(" None", "") if kind else "reject"


def _nat(word: str):
    def render(body) -> str:
        if not body:
            return word
        parts = [word]
        if body.get("family"):
            parts.append(body["family"])
        target = ""
        if "addr" in body:
            target = _expr(body["addr"])
            if "port" in body and isinstance(body["addr"], str) and ":" in body["addr"]:
                target = f"[{target}]"
        if "port" in body:
            target += f":{_expr(body['port'])}"
        if target:
            parts.append(f"to {target}")
        for f in ([body["flags"]] if isinstance(body.get("flags"), str) else body.get("flags", [])):
            parts.append(f)
        return " ".join(parts)
    return render


def _mangle(body) -> str:
    return f"{_expr(body['key'])} set {_expr(body['value'], _key(body['key']))}"


def _vmap(body) -> str:
    data = body["data"]
    key = _key(body["key"])
    mapping = data if isinstance(data, str) else _set(data["set"] if isinstance(data, dict) else data, key)
    return f"{_expr(body['key'])} vmap {mapping}"


def _set_stmt(body) -> str:
    inner = [_element(body["elem"])] + [_statement(x) for x in body.get("stmt", [])]
    return f"{body['op']} {body['set']} {{ {' '.join(inner)} }}"


def _map_stmt(body) -> str:
    return f"{body['op']} {body['map']} {{ {_element(body['elem'])} : {_element(body['data'])} }}"


def _objref(word: str):
    """``ct helper set "ftp"``, ``counter name ip saddr map @m`` …"""
    def render(body) -> str:
        if isinstance(body, dict) and "map" in body:
            target = _map(body["map"])
        else:
            target = _expr(body, "comment")
        return f"{word} {target}"
    return render


def _queue(body) -> str:
    if not body:
        return "queue"
    parts = ["queue"]
    flags = body.get("flags")
    if flags:
        parts.append("flags " + (flags if isinstance(flags, str) else ",".join(flags)))
    if "num" in body:
        parts.append(f"to {_expr(body['num'])}")
    return " ".join(parts)


_STATEMENTS = {
    "match": _match, "counter": _counter, "log": _log, "limit": _limit, "reject": _reject,
    "snat": _nat("snat"), "dnat": _nat("dnat"), "masquerade": _nat("masquerade"),
    "redirect": _nat("redirect"), "mangle": _mangle, "vmap": _vmap, "set": _set_stmt,
    "notrack": lambda body: "notrack", "queue": _queue, "map": _map_stmt,
    "flow": lambda body: f"flow {body['op']} {body['flowtable']}",
    "secmark": _objref("meta secmark set"), "ct helper": _objref("ct helper set"),
    "ct timeout": _objref("ct timeout set"), "ct expectation": _objref("ct expectation set"),
    "quota": lambda body: _objref("quota name")(body) if "map" in body or isinstance(body, str) else
    f"quota {'over ' if body.get('inv') else ''}{body['val']} {body.get('val_unit', 'bytes')}",
    "xt": lambda body: f"xt {body.get('type', '')} {body.get('name', '')}".strip(),
    "tproxy": lambda body: "tproxy to " + (_expr(body["addr"]) if "addr" in body else "")
    + (f":{body['port']}" if "port" in body else ""),
}
