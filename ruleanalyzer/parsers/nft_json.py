"""``nft -j list ruleset`` documents and JSON command batches → model.

The JSON is libnftables' schema (``{"nftables": [{"metainfo": …},
{"table": …}, {"chain": …}, {"rule": …}, {"set": …}, …]}``); command batches
wrap the same objects in ``{"add": …}``, ``{"insert": …}``, ``{"flush": …}``,
``{"delete": …}``. Rule statements are already in the shape
:mod:`.nft_common` builds from, so this module only walks the document and
names the JSON path of anything that does not fit.
"""

from __future__ import annotations

import json

from ..errors import RuleAnalyzerError, line_of
from ..model import Location, Ruleset
from ..gcpause import gc_paused
from .nft_common import FAMILIES, Builder, ModelError

DIALECT = "nft-json"

#: ``json.dumps(x, separators=(",", ":"))`` without building an encoder per call.
_COMPACT = json.JSONEncoder(separators=(",", ":")).encode

_OBJECTS_IGNORED = ("metainfo", "counter", "quota", "limit", "ct helper", "ct timeout",
                    "ct expectation", "flowtable", "secmark", "synproxy", "tunnel")


def sniff(text: str, name: str) -> int:
    """How sure we are that ``text`` is nft JSON: its start names ``nftables``."""
    head = text[:400].lstrip()
    if head.startswith("{") and '"nftables"' in head:
        return 95
    return 0


def parse(text: str, name: str) -> Ruleset:
    """Parse an ``nft -j`` document (listing or command batch) from file ``name``."""
    # a reader makes millions of small objects and no cycles worth finding:
    # the collector's scans of the growing heap made 50k rules 4x slower than 10k x 5
    with gc_paused():
        return _parse(text, name)


def _parse(text: str, name: str) -> Ruleset:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RuleAnalyzerError(f"invalid JSON: {exc.msg}", Location(name, exc.lineno, exc.colno),
                                source_line=line_of(text, exc.lineno)) from None
    except RecursionError:
        raise RuleAnalyzerError("JSON nested too deeply", Location(name, 1, 1)) from None
    try:
        return _Reader(name).read(doc)
    except RecursionError:
        raise RuleAnalyzerError("JSON nested too deeply", Location(name, path="nftables")) from None


class _Reader:
    def __init__(self, name: str):
        self.name = name
        self.builder = Builder(name, DIALECT)
        self.builder.jump_locator = self.locate_jump

    @staticmethod
    def locate_jump(rule, target: str) -> tuple[Location, None]:
        """The JSON path of the statement of ``rule`` that jumps or goes to
        ``target`` (its verdict map, for a map), else the rule's."""
        loc = rule.location
        try:
            exprs = json.loads(rule.text)
        except (ValueError, RecursionError):
            return loc, None
        for j, stmt in enumerate(exprs if isinstance(exprs, list) else ()):
            if not isinstance(stmt, dict) or len(stmt) != 1:
                continue
            (key, body), = stmt.items()
            if key == "vmap" or (key in ("jump", "goto") and isinstance(body, dict)
                                 and body.get("target") == target):
                return Location(loc.file, path=f"{loc.path}.rule.expr[{j}]"), None
        return loc, None

    def error(self, message: str, path: str) -> RuleAnalyzerError:
        return RuleAnalyzerError(message, Location(self.name, path=path))

    def read(self, doc) -> Ruleset:
        if not isinstance(doc, dict) or not isinstance(doc.get("nftables"), list):
            raise self.error('expected an object {"nftables": [...]}', "$")
        for i, obj in enumerate(doc["nftables"]):
            path = f"nftables[{i}]"
            if not isinstance(obj, dict) or len(obj) != 1:
                raise self.error("each entry must be an object with one key", path)
            key, body = next(iter(obj.items()))
            try:
                if key in ("add", "create", "insert", "replace", "delete", "destroy", "flush", "reset",
                           "list"):
                    self.command(key, body, path)
                else:
                    self.object(key, body, f"{path}.{key}", insert=False)
            except ModelError as exc:
                raise self.error(str(exc), path) from None
        return self.builder.finish()

    # -- helpers ----------------------------------------------------------------
    def _family(self, body: dict, path: str) -> str:
        family = body.get("family", "ip")
        if family not in FAMILIES:
            raise self.error(f"unknown family {family!r}", f"{path}.family")
        return family

    def _str(self, body: dict, key: str, path: str) -> str:
        value = body.get(key)
        if not isinstance(value, str):
            raise self.error(f"{key!r} must be a string", f"{path}.{key}")
        return value

    def _words(self, body: dict, key: str, path: str) -> list[str]:
        """A string or a list of strings (``flags``, ``dev``); absent is empty."""
        value = body.get(key) or ()
        words = [value] if isinstance(value, str) else value
        if not isinstance(words, (list, tuple)) or not all(isinstance(w, str) for w in words):
            raise self.error(f"{key!r} must be a string or a list of strings", f"{path}.{key}")
        return list(words)

    # -- commands -----------------------------------------------------------------
    def command(self, verb: str, body, path: str) -> None:
        if not isinstance(body, dict) or len(body) != 1:
            raise self.error(f"{verb} needs an object with one key", f"{path}.{verb}")
        kind, inner = next(iter(body.items()))
        where = f"{path}.{verb}.{kind}"
        if kind == "ruleset":
            if verb == "flush":
                self.builder.flush_ruleset()
            return
        if not isinstance(inner, dict):
            raise self.error(f"{kind} must be an object", where)
        b = self.builder
        if verb in ("add", "create", "insert", "replace"):
            if verb == "replace" and kind == "rule":
                chain = b.chain(self._family(inner, where), self._str(inner, "table", where),
                                self._str(inner, "chain", where))
                pos = b.rule_position(chain, str(inner.get("handle")))
                if pos is not None:
                    b.delete_rule(chain, str(inner.get("handle")))
                    self.object(kind, inner, where, insert=pos)
                    return
            self.object(kind, inner, where, insert=verb == "insert")
            return
        family = self._family(inner, where)
        if kind == "table":
            name = self._str(inner, "name", where)
            if verb == "flush":
                b.flush_table(family, name)
            elif verb in ("delete", "destroy"):
                b.delete_table(family, name)
        elif kind == "chain":
            table, name = self._str(inner, "table", where), self._str(inner, "name", where)
            if verb == "flush":
                b.flush_chain(b.chain(family, table, name))
            elif verb in ("delete", "destroy"):
                b.delete_chain(family, table, name)
        elif kind == "rule" and verb in ("delete", "destroy"):
            chain = b.chain(family, self._str(inner, "table", where), self._str(inner, "chain", where))
            b.delete_rule(chain, str(inner.get("handle")))
        elif kind in ("set", "map") and verb == "flush":
            decl = b.sets.get((family, self._str(inner, "table", where), self._str(inner, "name", where)))
            if decl is not None:
                decl.elements.clear()

    # -- objects --------------------------------------------------------------------
    def object(self, kind: str, body, path: str, insert) -> None:
        if kind in _OBJECTS_IGNORED:
            return
        if not isinstance(body, dict):
            raise self.error(f"{kind} must be an object", path)
        b = self.builder
        if kind == "table":
            table = b.table(self._family(body, path), self._str(body, "name", path),
                            Location(self.name, path=path))
            flags = body.get("flags")
            table.dormant = table.dormant or flags == "dormant" or (
                isinstance(flags, list) and "dormant" in flags)
        elif kind == "chain":
            family = self._family(body, path)
            chain = b.chain(family, self._str(body, "table", path), self._str(body, "name", path),
                            Location(self.name, path=path))
            if "hook" in body or "policy" in body:
                devices = self._words(body, "dev", path)
                b.set_base(chain, body.get("type"), body.get("hook"), body.get("prio", 0),
                           body.get("policy"), devices, Location(self.name, path=f"{path}.policy"))
        elif kind == "rule":
            self.rule(body, path, insert)
        elif kind in ("set", "map"):
            family = self._family(body, path)
            flags = self._words(body, "flags", path)
            elements = body.get("elem", [])
            if not isinstance(elements, list):
                raise self.error("elem must be a list", f"{path}.elem")
            b.declare_set(family, self._str(body, "table", path), self._str(body, "name", path),
                          is_map=kind == "map", flags=flags, elements=elements,
                          has_timeout="timeout" in body)
        elif kind == "element":
            family = self._family(body, path)
            elements = body.get("elem", [])
            b.add_elements(family, self._str(body, "table", path), self._str(body, "name", path),
                           elements if isinstance(elements, list) else [elements])
        else:
            raise self.error(f"unknown object {kind!r}", path)

    def rule(self, body: dict, path: str, insert) -> None:
        family = self._family(body, path)
        exprs = body.get("expr")
        if not isinstance(exprs, list):
            raise self.error("a rule needs an expr list", f"{path}.expr")
        for j, stmt in enumerate(exprs):
            if not isinstance(stmt, dict) or len(stmt) != 1:
                raise self.error("a statement must be an object with one key", f"{path}.expr[{j}]")
        location = Location(self.name, path=path.rsplit(".", 1)[0] if path.endswith(".rule") else path)
        chain = self.builder.chain(family, self._str(body, "table", path), self._str(body, "chain", path),
                                   location)
        handle = body.get("handle")
        position = None
        if insert is True:
            ref = body.get("handle") if "handle" in body else body.get("position")
            position = 0
            if ref is not None:
                found = self.builder.rule_position(chain, str(ref))
                position = found if found is not None else 0
            handle = None
        elif isinstance(insert, int) and insert is not False:
            position = insert
        text = _COMPACT(exprs)
        comment = body.get("comment") if isinstance(body.get("comment"), str) else None
        self.builder.add_rule(chain, exprs, location, text,
                              handle=None if handle is None else str(handle), comment=comment,
                              position=position)
