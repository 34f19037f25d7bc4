"""What the four cloud readers share: reading JSON/YAML with located errors,
unwrapping recorded API responses, typed field access by JSON path, and the
building blocks of a cloud table (stateful return rule, base chains, ports,
protocols, addresses).

Cloud exports have no useful columns, so locations name the JSON path
(``SecurityGroups[0].IpPermissions[2]``) and line 0.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any, Iterator

from ..errors import RuleAnalyzerError, line_of
from ..safeyaml import load_yaml
from ..model import (Accept, AddressMatch, Chain, Diagnostic, IntMatch, Location, NameMatch,
                     OpaqueMatch, Origin, Rule, Ruleset, Table)

#: YAML aliases allowed in one document. Real exports use none; a "billion
#: laughs" document needs many, and expanding it would exhaust memory.

#: Meta key holding ``{reason: {"kind", "name", "field"}}`` for every opaque
#: reference a cloud reader emitted, so the inventory can resolve it later.
REFS_META = "cloud_refs"
#: Meta key describing the cloud targets of a ruleset (see ``targets.py``).
CLOUD_META = "cloud"

#: Keys an IaC reader (Terraform, CloudFormation) adds to the export-shaped
#: objects it hands to these builders: the object's own Location, the
#: reasons its values are undecided, and the Origin of its rules. Keys
#: starting with ``__`` are never export fields.
IAC_LOCATION, IAC_UNKNOWN, IAC_ORIGIN = "__location__", "__unknown__", "__origin__"


def iac_object(fields: dict, location: Location, origin: Origin,
               unknown: list[str] | tuple[str, ...] = ()) -> dict:
    """An export-shaped object (an IpPermission, a NACL entry, a GCP
    firewall, an NSG rule) made by an IaC reader, with its location, origin
    and undecided conditions attached for the builders."""
    out = dict(fields)
    out[IAC_LOCATION], out[IAC_ORIGIN] = location, origin
    if unknown:
        out[IAC_UNKNOWN] = tuple(dict.fromkeys(unknown))
    return out


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


def fail(name: str, path: str, message: str, hint: str | None = None) -> RuleAnalyzerError:
    """A RuleAnalyzerError naming file ``name`` and JSON ``path`` (to raise)."""
    return RuleAnalyzerError(message, Location(name, path=path or "$"), hint=hint)


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------


def load_document(text: str, name: str) -> Any:
    """Parse ``text`` as JSON (when it looks like JSON) or safe YAML.

    Syntax errors become RuleAnalyzerError at file:line:column; alias bombs
    and absurd nesting are refused with a clear message."""
    text = text.lstrip("\ufeff")
    stripped = text.lstrip()
    if not stripped:
        raise RuleAnalyzerError("empty file, not a cloud rule export", Location(name, 1, 1))
    if stripped[0] in "{[":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise RuleAnalyzerError(f"invalid JSON: {exc.msg}", Location(name, exc.lineno, exc.colno),
                                    source_line=line_of(text, exc.lineno)) from None
        except RecursionError:
            raise RuleAnalyzerError("JSON nested too deeply", Location(name, 1, 1)) from None
    return load_yaml(text, name)


def load_embedded_json(text: str, name: str, path: str) -> Any:
    """JSON held in a string inside the document (a VCR ``body.string``)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise fail(name, path, f"the recorded body is not JSON: {exc.msg} "
                               f"(line {exc.lineno}, column {exc.colno} of the body)") from None
    except RecursionError:
        raise fail(name, path, "the recorded body is nested too deeply") from None


def unwrap(doc: Any, name: str, path: str = "") -> Iterator[tuple[str, Any]]:
    """The API payloads inside a recorded response, with their JSON paths.

    Handles placebo ``{status_code, data}``, gcp flights ``{headers, body}``,
    VCR cassettes (``interactions[].response.body.data`` or ``.string``),
    Cloud Asset Inventory lists (``[{asset_type, resource: {data}}]``) and a
    bare payload (yielded as is). Recorded HTTP errors raise."""
    if isinstance(doc, dict):
        if "interactions" in doc and isinstance(doc["interactions"], list):
            for i, inter in enumerate(doc["interactions"]):
                ipath = f"{_join(path, 'interactions')}[{i}]"
                response = inter.get("response") if isinstance(inter, dict) else None
                body = response.get("body") if isinstance(response, dict) else None
                if not isinstance(body, dict):
                    continue
                status = response.get("status")
                code = status.get("code") if isinstance(status, dict) else None
                if isinstance(code, int) and code >= 400:
                    continue  # a failed call recorded among good ones
                if "data" in body:
                    yield from unwrap(body["data"], name, f"{ipath}.response.body.data")
                elif isinstance(body.get("string"), str) and body["string"].strip():
                    spath = f"{ipath}.response.body.string"
                    yield from unwrap(load_embedded_json(body["string"], name, spath), name, spath)
            return
        if "status_code" in doc and "data" in doc and len(doc) <= 3:
            data = doc["data"]
            _refuse_error_payload(data, name, _join(path, "data"), doc.get("status_code"))
            yield from unwrap(data, name, _join(path, "data"))
            return
        if "headers" in doc and "body" in doc and len(doc) <= 3:
            body = doc["body"]
            headers = doc["headers"] if isinstance(doc["headers"], dict) else {}
            _refuse_error_payload(body, name, _join(path, "body"), headers.get("status"))
            yield from unwrap(body, name, _join(path, "body"))
            return
        _refuse_error_payload(doc, name, path, None)
        yield path, doc
        return
    if isinstance(doc, list) and doc and all(isinstance(a, dict) and "resource" in a for a in doc):
        for i, asset in enumerate(doc):
            resource = asset["resource"]
            data = resource.get("data") if isinstance(resource, dict) else None
            if data is not None:
                yield f"{path}[{i}].resource.data", data
        return
    yield path, doc


def _refuse_error_payload(payload: Any, name: str, path: str, status: Any) -> None:
    """Raise when a recorded response is an API error rather than data."""
    if not isinstance(payload, dict):
        return
    err = payload.get("Error") or payload.get("error")
    if isinstance(err, dict):
        code = err.get("Code") or err.get("code") or status
        message = err.get("Message") or err.get("message") or ""
        raise fail(name, _join(path, "Error" if "Error" in payload else "error"),
                   f"the recorded response is an API error ({code}: {message}), not a rule export")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# ---------------------------------------------------------------------------
# Typed access by JSON path
# ---------------------------------------------------------------------------


class Fields:
    """Typed reads from one JSON object with errors naming file and path."""

    __slots__ = ("obj", "name", "path")

    def __init__(self, obj: Any, name: str, path: str):
        if not isinstance(obj, dict):
            raise fail(name, path, f"expected an object, found {_kind(obj)}")
        self.obj, self.name, self.path = obj, name, path

    def at(self, key: str) -> str:
        return _join(self.path, key)

    def has(self, key: str) -> bool:
        return self.obj.get(key) is not None

    def get(self, key: str, default: Any = None) -> Any:
        value = self.obj.get(key)
        return default if value is None else value

    def str(self, key: str, default: str | None = None, required: bool = False) -> str | None:
        value = self.obj.get(key)
        if value is None:
            if required:
                raise fail(self.name, self.path, f"missing {key!r}")
            return default
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise fail(self.name, self.at(key), f"{key} should be a string, found {_kind(value)}")
        return str(value)

    def int(self, key: str, default: int | None = None, required: bool = False) -> int | None:
        value = self.obj.get(key)
        if value is None:
            if required:
                raise fail(self.name, self.path, f"missing {key!r}")
            return default
        if isinstance(value, bool):
            raise fail(self.name, self.at(key), f"{key} should be a number, found {_kind(value)}")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        raise fail(self.name, self.at(key), f"{key} should be a number, found {_kind(value)}")

    def bool(self, key: str, default: bool = False) -> bool:
        value = self.obj.get(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise fail(self.name, self.at(key), f"{key} should be true or false, found {_kind(value)}")

    def list(self, key: str) -> list:
        value = self.obj.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise fail(self.name, self.at(key), f"{key} should be a list, found {_kind(value)}")
        return value

    def objects(self, key: str) -> Iterator["Fields"]:
        """Each element of list ``key`` as Fields (a non-object is an error)."""
        for i, item in enumerate(self.list(key)):
            yield Fields(item, self.name, f"{self.at(key)}[{i}]")

    def strings(self, key: str) -> list[str]:
        """List ``key`` of strings (numbers are accepted as their text)."""
        out = []
        for i, item in enumerate(self.list(key)):
            if isinstance(item, bool) or not isinstance(item, (str, int)):
                raise fail(self.name, f"{self.at(key)}[{i}]",
                           f"expected a string, found {_kind(item)}")
            out.append(str(item))
        return out

    def location(self, key: str | None = None) -> Location:
        # Objects an IaC reader made carry their own location (the resource
        # address and the line of its block), see :func:`iac_object`.
        own = self.obj.get(IAC_LOCATION)
        if isinstance(own, Location):
            return own
        return Location(self.name, path=self.at(key) if key else (self.path or "$"))

    def unknowns(self) -> tuple[OpaqueMatch, ...]:
        """Conditions an IaC reader could not decide for this object (a
        value known only after apply, a variable without a value): each one
        is an OpaqueMatch the object's rules carry."""
        return tuple(OpaqueMatch(reason=r, text=r, configuration="value") for r in self.obj.get(IAC_UNKNOWN, ()))

    def origin(self) -> Origin | None:
        own = self.obj.get(IAC_ORIGIN)
        return own if isinstance(own, Origin) else None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


# ---------------------------------------------------------------------------
# Building tables
# ---------------------------------------------------------------------------

STATEFUL_TEXT = "(implicit) stateful: replies to allowed connections pass"


def stateful_rule(location: Location) -> Rule:
    """The implicit first rule of a stateful cloud firewall's chain."""
    return Rule((NameMatch("state", frozenset({"established", "related"}),
                           text="ct state established,related"),),
                Accept(), location, text=STATEFUL_TEXT, implicit=True, ident="(stateful)")


def base_chain(table: Table, name: str, hook: str, policy: str, policy_text: str,
               location: Location | None, priority: int = 0, stateful: bool = True) -> Chain:
    """Add a base chain (with the stateful rule when ``stateful``) to ``table``."""
    chain = table.add_chain(Chain(name, hook=hook, priority=priority, policy=policy,
                                  location=location, policy_text=policy_text,
                                  policy_location=location))
    if stateful and location is not None:
        chain.add(stateful_rule(location))
    return chain


def parse_network(text: str, name: str, path: str):
    """``10.0.0.0/8``, ``1.1.1.1`` or ``::/0`` → an ip_network (host bits tolerated)."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise fail(name, path, f"not an IP address or CIDR block: {text!r}") from None


def address_match(field: str, networks, text: str | None = None) -> AddressMatch:
    nets = tuple(networks)
    word = "from" if field == "src" else "to"
    return AddressMatch(field, nets, text=text or f"{word} {', '.join(map(str, nets))}")


def proto_match(number: int, label: str | None = None) -> IntMatch:
    return IntMatch("proto", ((number, number),), text=label or f"proto {number}")


def port_match(field: str, ranges: list[tuple[int, int]]) -> IntMatch:
    text = ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ranges)
    return IntMatch(field, tuple(ranges), text=f"{field} {text}")


def parse_port_range(text: str, name: str, path: str) -> tuple[int, int] | None:
    """``22`` / ``1000-2000`` → (lo, hi); ``*`` / ``0-65535`` → None (any port)."""
    text = text.strip()
    if text in ("*", "", "any", "Any"):
        return None
    lo_text, sep, hi_text = text.partition("-")
    try:
        lo = int(lo_text)
        hi = int(hi_text) if sep else lo
    except ValueError:
        raise fail(name, path, f"not a port or port range: {text!r}",
                   hint="write a port (80), a range (1000-2000) or *") from None
    if not (0 <= lo <= hi <= 65535):
        raise fail(name, path, f"port range out of order or out of 0-65535: {text!r}")
    if lo == 0 and hi == 65535:
        return None
    return lo, hi


def file_meta(ruleset: Ruleset, key: str) -> dict:
    """A meta dict of this file's parse, under a key unique to the file.

    ``Ruleset.merge`` keeps the first value of a meta key; suffixing the
    source name keeps every file's facts when cloud files are loaded together."""
    source = ruleset.sources[0] if ruleset.sources else ""
    return ruleset.meta.setdefault(f"{key}:{source}", {})


def collect_meta(ruleset: Ruleset, key: str) -> dict:
    """Every file's ``file_meta(…, key)`` merged into one dict."""
    merged: dict = {}
    for meta_key, value in ruleset.meta.items():
        if (meta_key == key or meta_key.startswith(key + ":")) and isinstance(value, dict):
            merged.update(value)
    return merged


def register_ref(ruleset: Ruleset, reason: str, kind: str, ref_name: str,
                 field: str | None = None) -> OpaqueMatch:
    """An OpaqueMatch for a named reference the inventory may resolve later."""
    file_meta(ruleset, REFS_META)[reason] = {"kind": kind, "name": ref_name, "field": field}
    return OpaqueMatch(reason=reason, text=reason)


def note(ruleset: Ruleset, message: str, location: Location, level: str = "info") -> None:
    ruleset.diagnostics.append(Diagnostic(message, location, level))


def sniff_keywords(text: str, strong: tuple[str, ...], weak: tuple[str, ...] = ()) -> int:
    """A cheap sniff score from keywords in the first 64 KiB."""
    head = text[:65536]
    if any(k in head for k in strong):
        return 90
    if weak and sum(k in head for k in weak) >= 2:
        return 60
    return 0
