"""Line numbers for the JSON readers' locations.

The cloud and nft-JSON readers name where a rule was written by its JSON
path (``SecurityGroups[0].IpPermissions[2]``); reports that need a line
(SARIF regions, code frames, GitHub annotations) get it from here: the
text is scanned once, token by token, recording the line and column where
the value at each path starts.
"""

from __future__ import annotations

import dataclasses
import re

from .model import Location, Ruleset

_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]:,]|[^\s{}\[\]:,"]+')
#: Larger texts are not scanned (the paths stay without lines).
MAX_CHARS = 8 * 1024 * 1024  # ~3 s of scanning at most


def value_positions(text: str) -> dict[str, tuple[int, int]]:
    """``{path: (line, column)}`` of every object and array value in the
    JSON ``text`` (paths as the readers write them: ``a.b[0].c``)."""
    out: dict[str, tuple[int, int]] = {}
    stack: list[list] = []  # [path, is_array, next index, pending key]
    line, last = 1, 0
    for m in _TOKEN.finditer(text):
        start = m.start()
        line += text.count("\n", last, start)
        last = start
        tok = m.group()
        top = stack[-1] if stack else None
        if tok == ":" or tok == ",":
            continue
        if tok in "}]" and len(tok) == 1:
            if stack:
                stack.pop()
            if stack and stack[-1][1]:
                stack[-1][2] += 1
            elif stack:
                stack[-1][3] = None
            continue
        if top is not None and not top[1] and top[3] is None:
            top[3] = _key(tok)  # an object's key
            continue
        if top is None:
            path = ""
        elif top[1]:
            path = f"{top[0]}[{top[2]}]"
        else:
            path = f"{top[0]}.{top[3]}" if top[0] else top[3]
        column = start - text.rfind("\n", 0, start)
        out.setdefault(path, (line, column))
        if tok in ("{", "["):
            stack.append([path, tok == "[", 0, None])
            continue
        if top is not None and top[1]:
            top[2] += 1
        elif top is not None:
            top[3] = None
    return out


def _key(tok: str) -> str:
    return tok[1:-1] if tok.startswith('"') else tok


def locate(path: str, positions: dict[str, tuple[int, int]]) -> tuple[int, int] | None:
    """The position of ``path``, or of its nearest enclosing value."""
    while path:
        if path in positions:
            return positions[path]
        cut = max(path.rfind("."), path.rfind("["))
        if cut <= 0:
            break
        path = path[:cut]
    return positions.get(path)


def add_lines(ruleset: Ruleset, text: str, name: str) -> None:
    """Give the locations in ``ruleset`` that have a JSON path but no line
    (in file ``name``) the line and column of that path in ``text``."""
    if len(text) > MAX_CHARS or text.lstrip("\ufeff \t\r\n")[:1] not in ("{", "["):
        return
    positions: dict[str, tuple[int, int]] | None = None

    def fixed(loc: Location | None) -> Location | None:
        nonlocal positions
        if loc is None or loc.line or not loc.path or loc.file != name:
            return loc
        if positions is None:
            positions = value_positions(text)
        found = locate(loc.path, positions)
        return dataclasses.replace(loc, line=found[0], column=found[1]) if found else loc

    for table in ruleset.tables:
        table.location = fixed(table.location)
        for chain in table.chains.values():
            chain.location = fixed(chain.location)
            chain.policy_location = fixed(chain.policy_location)
            for rule in chain.rules:
                rule.location = fixed(rule.location)
    for diagnostic in ruleset.diagnostics:
        if hasattr(diagnostic, "location"):
            try:
                diagnostic.location = fixed(diagnostic.location)
            except (AttributeError, dataclasses.FrozenInstanceError):
                pass
