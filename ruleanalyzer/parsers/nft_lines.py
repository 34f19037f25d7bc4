"""The rules of a chain written in the few line shapes kube-proxy's
nftables mode writes, read without the scanner's tokens.

A chain of kube-proxy (``nft list ruleset`` of its ``kube-proxy`` table)
holds lines such as::

    ip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
    numgen random mod 2 vmap { 0 : goto endpoint-A, 1 : goto endpoint-B }
    ip saddr 10.180.0.1 jump mark-for-masquerade
    meta l4proto tcp dnat to 10.180.0.1:80

and a 100k-rule ruleset is ~all such lines. :func:`chain_rules` reads a
chain's block whose every line is one (each line a sequence of the
statements below, spelt with single words separated by blanks) straight
into the JSON-shaped statements :class:`~.nftables._RuleReader` gives for
it — the same dicts, keys in the same order, values through the same
:func:`~.nftables._scalar` — and returns None for any other block, which
is then read word by word as before. A block is taken whole or not at all,
so that what the reader checks or refuses (names, values, errors and their
order) is never split between the two paths.
``tests/test_nft_lines.py`` reads every line both ways and compares.

Statements read here (nothing else; a rule ends with its verdict):

- ``ip saddr|daddr [!=] ADDR[/LEN]``, ``tcp|udp|sctp sport|dport [!=] PORT``,
  ``meta l4proto tcp|udp|sctp``
- ``accept``, ``drop``, ``return``, ``jump|goto NAME``
- ``dnat to ADDR[:PORT]``
- ``numgen random|inc mod N vmap { K : goto|jump NAME, … }``
"""

from __future__ import annotations

import re
from array import array

_NAME = r"[A-Za-z_.][A-Za-z0-9/\-_.]*"
_ADDR = r"\d{1,3}(?:\.\d{1,3}){3}"
_NUM = r"(?:0|[1-9]\d{0,9})"
_END = r"(?=[ \t]|\Z)"
_SEP = r"[ \t]+"
#: One statement at a position of the stripped line; its outer group says
#: which. ASCII only: other digits go the word reader's way.
_STATEMENT = re.compile(
    rf"(?P<addr>ip{_SEP}(?P<af>saddr|daddr){_SEP}(?:(?P<ane>!=){_SEP})?(?P<av>{_ADDR}(?:/\d{{1,2}})?){_END})"
    rf"|(?P<port>(?P<pp>tcp|udp|sctp){_SEP}(?P<pf>sport|dport){_SEP}(?:(?P<pne>!=){_SEP})?(?P<pv>{_NUM}){_END})"
    rf"|(?P<l4>meta{_SEP}l4proto{_SEP}(?P<lv>tcp|udp|sctp){_END})"
    rf"|(?P<verdict>(?P<vw>accept|drop|return)\Z)"
    rf"|(?P<jump>(?P<jw>jump|goto){_SEP}(?P<target>{_NAME})\Z)"
    rf"|(?P<dnat>dnat{_SEP}to{_SEP}(?P<da>{_ADDR})(?::(?P<dp>{_NUM}))?\Z)"
    rf"|(?P<vmap>(?P<numgen>numgen{_SEP}(?P<mode>random|inc){_SEP}mod{_SEP}(?P<mod>{_NUM})){_SEP}vmap{_SEP}"
    rf"\{{(?P<elements>(?:{_SEP}{_NUM}{_SEP}:{_SEP}(?:goto|jump){_SEP}{_NAME}[ \t]*,)*"
    rf"{_SEP}{_NUM}{_SEP}:{_SEP}(?:goto|jump){_SEP}{_NAME}){_SEP}\}}\Z)", re.ASCII)
_BLANKS = re.compile(_SEP)
_NET = rf"{_ADDR}(?:/\d{{1,2}})?"
#: Whole lines of the three match shapes most of a kube-proxy ruleset is
#: (35k, 35k and 15k lines at 100k rules), read by one match each: what
#: the statement by statement loop of :func:`_statements` reads them into
#: (at each position only one alternative of :data:`_STATEMENT` can start).
_JUMP_LINE = re.compile(rf"ip{_SEP}(saddr|daddr){_SEP}({_NET}){_SEP}(jump|goto){_SEP}({_NAME})\Z",
                        re.ASCII).match
_DNAT_LINE = re.compile(rf"meta{_SEP}l4proto{_SEP}(tcp|udp|sctp){_SEP}dnat{_SEP}to{_SEP}({_ADDR})"
                        rf"(?::({_NUM}))?\Z", re.ASCII).match
_SERVICE_LINE = re.compile(rf"ip{_SEP}daddr{_SEP}({_NET}){_SEP}(tcp|udp|sctp){_SEP}(sport|dport){_SEP}({_NUM})"
                           rf"{_SEP}ip{_SEP}saddr{_SEP}!={_SEP}({_NET}){_SEP}(jump|goto){_SEP}({_NAME})\Z",
                           re.ASCII).match
_ELEMENT = re.compile(rf"({_NUM}){_SEP}:{_SEP}(goto|jump){_SEP}({_NAME})", re.ASCII)


def chain_rules(text: str, start: int, end: int, line: int, scalar, is_name):
    """``[(line, column, text, statements), …]`` of the rules in
    ``text[start:end]`` (a chain's block, its ``{`` on line ``line``), or
    None unless every line is blank or one of the shapes above.
    ``scalar``: the reader's word → JSON value; ``is_name(word)``: whether
    the reader takes ``word`` as a chain name."""
    out = []
    pieces = text[start:end].split("\n")
    if pieces[0].strip(" \t"):
        return None  # a rule on the line of the '{': its column is not counted here
    for raw in pieces:
        stripped = raw.strip(" \t")
        if stripped:
            stmts = _statements(stripped, scalar, is_name)
            if stmts is None:
                return None
            out.append((line, len(raw) - len(raw.lstrip(" \t")) + 1, stripped, stmts))
        line += 1
    return out


#: The left-hand side of each match read here, as JSON (one shared,
#: read-only dict per selector; :func:`as_json` gives a rule its own).
_LEFT = {(proto, field): {"payload": {"protocol": proto, "field": field}}
         for proto, fields in (("ip", ("saddr", "daddr")), ("tcp", ("sport", "dport")),
                               ("udp", ("sport", "dport")), ("sctp", ("sport", "dport")))
         for field in fields}
_L4PROTO = {"meta": {"key": "l4proto"}}


def _statements(line: str, scalar, is_name):
    """The statements of one stripped line, or None: ``("match", left, op,
    right)``, ``(verdict, body)`` (accept, drop, return, jump, goto),
    ``("dnat", body)`` or ``("vmap", body)`` — the parts of the JSON
    statements the word reader gives (:func:`as_json`)."""
    m = _JUMP_LINE(line)
    if m is not None:
        field, value, verdict, target = m.groups()
        if not is_name(target):
            return None
        return [("match", _LEFT["ip", field], "==", scalar(value)), (verdict, {"target": target})]
    m = _DNAT_LINE(line)
    if m is not None:
        proto, addr, port = m.groups()
        body = {"addr": scalar(addr)}
        if port is not None:
            body["port"] = scalar(port)
        return [("match", _L4PROTO, "==", proto), ("dnat", body)]
    m = _SERVICE_LINE(line)
    if m is not None:
        daddr, proto, field, port, saddr, verdict, target = m.groups()
        if not is_name(target):
            return None
        return [("match", _LEFT["ip", "daddr"], "==", scalar(daddr)),
                ("match", _LEFT[proto, field], "==", scalar(port)),
                ("match", _LEFT["ip", "saddr"], "!=", scalar(saddr)), (verdict, {"target": target})]
    stmts = []
    pos, n = 0, len(line)
    match = _STATEMENT.match
    while pos < n:
        m = match(line, pos)
        if m is None:
            return None
        kind = m.lastgroup
        if kind == "addr":
            stmts.append(("match", _LEFT["ip", m.group("af")], "!=" if m.group("ane") else "==",
                          scalar(m.group("av"))))
        elif kind == "port":
            stmts.append(("match", _LEFT[m.group("pp"), m.group("pf")], "!=" if m.group("pne") else "==",
                          scalar(m.group("pv"))))
        elif kind == "l4":
            stmts.append(("match", _L4PROTO, "==", m.group("lv")))
        elif kind == "verdict":
            stmts.append((m.group("vw"), None))
        elif kind == "jump":
            if not is_name(m.group("target")):
                return None
            stmts.append((m.group("jw"), {"target": m.group("target")}))
        elif kind == "dnat":
            body = {"addr": scalar(m.group("da"))}
            if m.group("dp") is not None:
                body["port"] = scalar(m.group("dp"))
            stmts.append(("dnat", body))
        else:  # vmap
            pairs = []
            for key, verdict, target in _ELEMENT.findall(m.group("elements")):
                if not is_name(target):
                    return None
                pairs.append([scalar(key), {verdict: {"target": target}}])
            key = {"numgen": {"text": m.group("numgen"), "mode": m.group("mode"),
                              "mod": scalar(m.group("mod"))}}
            stmts.append(("vmap", {"key": key, "data": {"set": pairs}}))
        pos = m.end()
        if pos < n:
            pos = _BLANKS.match(line, pos).end()  # a statement that is not last ends before blanks
    return stmts


def as_json(stmts) -> list:
    """The JSON-shaped statements :class:`~.nftables._RuleReader` gives for
    the line :func:`_statements` read into ``stmts`` (each its own dicts)."""
    out = []
    for stmt in stmts:
        if stmt[0] == "match":
            _kind, left, op, right = stmt
            left = {key: dict(value) for key, value in left.items()}
            out.append({"match": {"op": op, "left": left, "right": right}})
        else:
            out.append({stmt[0]: stmt[1]})
    return out


#: One element of a set or map as kube-proxy writes them (``A . tcp . 80 :
#: goto X``, ``tcp . 30080 : goto X``, ``A``): parts joined by `` . ``,
#: each an address (or prefix), a protocol or a number, then optionally
#: `` : `` and a verdict.
_KEY_PART = rf"(?:{_NET}|tcp|udp|sctp|{_NUM})"
_SET_ELEMENT = (rf"{_KEY_PART}(?:{_SEP}\.{_SEP}{_KEY_PART})*"
                rf"(?:{_SEP}:{_SEP}(?:(?:goto|jump){_SEP}{_NAME}|accept|drop|continue|return))?")
_ELEMENTS_LINE = re.compile(rf"elements{_SEP}={_SEP}\{{{_SEP}({_SET_ELEMENT}(?:[ \t]*,{_SEP}{_SET_ELEMENT})*)"
                            rf"{_SEP}\}}\Z", re.ASCII).match
_ELEMENT_SPLIT = re.compile(r"[ \t]*,[ \t]+").split
#: The set body lines :meth:`~.nftables._Reader.set_decl` reads but does
#: not use: ``type …`` (words and ``.`` ``:``), ``comment "…"``.
_IGNORED_SET_LINE = re.compile(r'type[ \t]+[A-Za-z0-9_.: \t]*\Z|comment[ \t]+"[^"\\{}#;$]*"\Z', re.ASCII).match


def set_elements(text: str, start: int, end: int, scalar, is_name):
    """The elements of the set or map declared in ``text[start:end]`` (its
    block), as :meth:`~.nftables._RuleReader.set_elements` gives them
    (values, ``[key, data]`` pairs when written with ``:``), when the block
    holds nothing but ``type …``, ``comment "…"`` and one-line ``elements =
    { … }`` of the shape above; else None (read word by word)."""
    pieces = text[start:end].split("\n")
    if pieces[0].strip(" \t"):
        return None
    out = []
    values: dict = {}  # word -> scalar (not a prefix's dict): protocols and ports repeat
    for raw in pieces:
        line = raw.strip(" \t")
        if not line or _IGNORED_SET_LINE(line) is not None:
            continue
        m = _ELEMENTS_LINE(line)
        if m is None:
            return None
        for element in _ELEMENT_SPLIT(m.group(1)):
            words = element.split()
            key = None
            parts = []
            for k in range(0, len(words), 2):
                word = words[k]
                value = values.get(word)
                if value is None:
                    value = scalar(word)
                    if type(value) is not dict:  # str or int: shared safely
                        values[word] = value
                parts.append(value)
                if k + 1 == len(words) or words[k + 1] == ":":
                    break
            key = parts[0] if len(parts) == 1 else {"concat": parts}
            rest = len(parts) * 2  # the words after the key: ':' and the verdict
            if rest >= len(words):
                out.append(key)
                continue
            verdict = words[rest]
            if verdict in ("goto", "jump"):
                target = words[rest + 1]
                if not is_name(target):
                    return None
                data = {verdict: {"target": target}}
            else:
                data = {verdict: None}
            out.append([key, data])
    return out


#: A table's ``chain|set|map NAME {`` line whose block spans lines.
_BLOCK_HEAD = re.compile(rf"[ \t]*(chain|set|map)[ \t]+({_NAME})[ \t]+\{{", re.ASCII).match
#: A table's ``comment "…"`` line (a plain string), up to its newline.
_TABLE_COMMENT = re.compile(r'[ \t]*comment[ \t]+"[^"\\{}#;$\n]*"[ \t]*(?=\n)', re.ASCII).match
_LINE_BLANKS = re.compile(r"[ \t]*").match


def table_items(text: str, start: int, end: int, line: int, ends: dict):
    """The items of the table block ``text[start:end]`` (its ``{`` on line
    ``line``; ``ends``: where the first pass found each multi-line block's
    ``}``) when every line is blank, ``comment "…"`` (skipped, as the
    reader skips it), or ``chain|set|map NAME {`` opening a block that
    spans lines and ends its line: ``(kind, (line, column of kind), name
    token, (block start, end, line of its '{', where that line starts))``
    each (one by one, once all are checked) — the tokens and
    :class:`~.nft_scan.Body` the scanner's items give; else None (the table is read item by item as before). Taken
    whole or not at all, like :func:`chain_rules`."""
    nl = text.find("\n", start, end)
    if nl < 0 or _LINE_BLANKS(text, start, nl).end() != nl:
        return None  # an item on the line of the '{'
    out = array("q")  # 8 numbers an item (50k chains: no tuples kept while they are read)
    pos = nl + 1
    line += 1
    while pos < end:
        nl = text.find("\n", pos, end)
        stop = end if nl < 0 else nl
        if _LINE_BLANKS(text, pos, stop).end() == stop:  # blank
            if nl < 0:
                break
            pos = nl + 1
            line += 1
            continue
        m = _TABLE_COMMENT(text, pos, end)
        if m is not None:  # the reader skips it
            pos = m.end() + 1
            line += 1
            continue
        m = _BLOCK_HEAD(text, pos, stop)
        if m is None:
            return None
        brace = m.end() - 1
        close = ends.get(brace)
        if close is None or close >= end:
            return None  # a one-line block (or none the first pass found)
        after = text.find("\n", close, end)
        after_stop = end if after < 0 else after
        if _LINE_BLANKS(text, close + 1, after_stop).end() != after_stop:
            return None  # something after the '}' on its line
        out.extend((_KINDS.index(m.group(1)), line, pos, m.start(1), m.start(2), m.end(2), brace, close))
        line += text.count("\n", brace, close)
        if after < 0:
            break
        pos = after + 1
        line += 1
    return _table_items(text, out)


_KINDS = ("chain", "set", "map")


def _table_items(text: str, found):
    for k in range(0, len(found), 8):
        kind, line, line_start, head, name, name_end, brace, close = found[k:k + 8]
        yield (_KINDS[kind], (line, head - line_start + 1),
               ("w", text[name:name_end], line, name - line_start + 1, name, name_end),
               (brace + 1, close, line, line_start))
