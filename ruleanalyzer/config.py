"""Audit settings from ``pyproject.toml`` (``[tool.ruleanalyzer]``) or
``.ruleanalyzer.yaml``, found by walking up from the working directory
(the first directory holding either wins; the YAML file first).

Keys (the same in both files)::

    select = ["RA1", "RA401"]        # codes, prefixes, names or "ALL" (default: all
                                     # but opt-in checks, which need their exact code)
    ignore = ["RA104"]
    fail-on = "warning"              # error | warning | info | never
    [tool.ruleanalyzer.options.RA401]
    ports = {22 = "SSH", 8443 = "admin UI"}
    [[tool.ruleanalyzer.suppress]]
    file = "rules.v4"                # glob, matched against the path or its tail
    line = 12                        # or: rule = 3 (index in its chain), chain = "INPUT"
    code = "RA101"                   # or codes = [...]; omitted: every code
    reason = "legacy VPN, removed in Q3"
    [tool.ruleanalyzer.interfaces]   # which interfaces face the internet (RA4xx);
    internet = ["eth0"]              # otherwise inferred from NAT rules, names and
    internal = ["eth1", "wg0"]       # a host snapshot's default route

Command-line options override the file.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path


from .safeyaml import load_yaml
from .errors import RuleAnalyzerError, line_of
from .model import Location

FAIL_ON = ("error", "warning", "info", "never")
#: Default threshold: warnings and errors fail a CI run, info does not.
DEFAULT_FAIL_ON = "warning"
YAML_NAMES = (".ruleanalyzer.yaml", ".ruleanalyzer.yml")


@dataclass
class Config:
    select: list[str] | None = None
    ignore: list[str] = field(default_factory=list)
    fail_on: str = DEFAULT_FAIL_ON
    #: Per-code option overrides: ``{"RA401": {"ports": {...}}}``.
    options: dict[str, dict] = field(default_factory=dict)
    suppress: list[dict] = field(default_factory=list)
    #: Interface roles: ``{"internet": [names], "internal": [names]}``.
    interfaces: dict[str, list[str]] = field(default_factory=dict)
    #: The file these settings came from, for messages.
    source: str | None = None
    #: ``firewalld-version: 2.1.1``: the layout firewalld configuration
    #: directories compile to (a snapshot's recorded version wins).
    firewalld_version: str | None = None


def find_config(start: str | Path | None = None) -> Path | None:
    """The nearest config file at or above ``start`` (default: the cwd)."""
    here = Path(start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        for name in YAML_NAMES:
            if (directory / name).is_file():
                return directory / name
        pyproject = directory / "pyproject.toml"
        if pyproject.is_file() and _has_tool_section(pyproject):
            return pyproject
    return None


def _has_tool_section(path: Path) -> bool:
    try:
        return "ruleanalyzer" in tomllib.loads(path.read_text("utf-8")).get("tool", {})
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return False


def load_config(path: str | Path | None = None, *, search: bool = True) -> Config:
    """Settings from ``path``, or from the nearest config file when ``search``;
    defaults when there is none. Raises a located RuleAnalyzerError on a bad file."""
    if path is None and search:
        path = find_config()
    if path is None:
        return Config()
    path = Path(path)
    text = read_config_text(path)
    if path.suffix == ".toml":
        try:
            data = tomllib.loads(text).get("tool", {}).get("ruleanalyzer", {})
        except tomllib.TOMLDecodeError as exc:
            at = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
            line, column = (int(at.group(1)), int(at.group(2))) if at else (None, None)
            raise RuleAnalyzerError(f"bad TOML: {str(exc).split(' (at line')[0]}",
                                    Location(str(path), line, column),
                                    source_line=line_of(text, line) if line else None) from None
    else:
        data = load_yaml(text, str(path)) or {}
    try:
        config = config_from_dict(data, str(path))
    except RuleAnalyzerError as exc:
        raise _located(exc, text, toml=path.suffix == ".toml") from None
    return config


#: The keys of one ``suppress`` entry.
SUPPRESS_KEYS = ("file", "line", "rule", "chain", "path", "code", "codes", "reason")


class ConfigError(RuleAnalyzerError):
    """A bad value in a config file; ``keys`` is the path to it in the
    document (``("suppress", 0, "line")``), so the error can point at its
    line and column."""

    def __init__(self, message: str, source: str | None, keys: tuple = (), hint: str | None = None):
        super().__init__(message, Location(source or "<config>"), hint=hint)
        self.keys = keys


def _check_options(options: dict, source: str | None) -> dict[str, dict]:
    """``options`` checked against the checks' own settings: an unknown
    code or setting, or a value of the wrong kind, is an error (a misspelt
    key would silently do nothing); values come back as the checks read
    them (``ports: [22]`` → ``{22: "SSH"}``; ``-`` or ``_`` in names)."""
    out = {}
    for written, settings in options.items():
        from . import checks  # only a config with options pays for the catalogue

        code = str(written).upper()
        try:
            check = checks.get(code)
        except (KeyError, ValueError):
            raise ConfigError(f"unknown check {written!r} under options", source, ("options", written),
                              hint="see `ruleanalyzer rules` for the codes") from None
        spelled = {name.replace("-", "_"): name for name in check.options}
        read = {}
        for key, value in (settings or {}).items():
            name = spelled.get(str(key).replace("-", "_"))
            if name is None:
                raise ConfigError(f"unknown setting {key!r} of {code} under options", source,
                                  ("options", written, key),
                                  hint=f"{code}'s settings: {', '.join(check.options) or 'none'}")
            try:
                read[name] = check.options[name].read(value)
            except ValueError as exc:
                raise ConfigError(f"options.{written}.{key} {exc}", source, ("options", written, key),
                                  hint=check.options[name].help) from None
        out[check.code] = read
    return out


def _located(exc: RuleAnalyzerError, text: str, toml: bool = False) -> RuleAnalyzerError:
    """``exc`` pointing at the line (and column) of the key it names."""
    keys = getattr(exc, "keys", ())
    loc = exc.location
    if loc is None or loc.line or not keys:
        return exc
    found = _toml_position(text, keys) if toml else _yaml_position(text, loc.file, keys)
    if found is None:
        return exc
    line, column = found
    return RuleAnalyzerError(exc.message, Location(loc.file, line, column),
                             source_line=line_of(text, line), hint=exc.hint)


def _same_key(written, key) -> bool:
    return str(written).replace("_", "-").lower() == str(key).replace("_", "-").lower()


def _yaml_position(text: str, name: str, keys: tuple) -> tuple[int, int] | None:
    """Line and column of the value at ``keys`` (the deepest key found)."""
    from .safeyaml import load_yaml_node

    loader, node = load_yaml_node(text, name)
    loader.dispose()
    at = None
    for key in keys:
        if isinstance(key, int) and node is not None and node.id == "sequence" and key < len(node.value):
            node = node.value[key]
        elif node is not None and node.id == "mapping":
            pair = next(((k, v) for k, v in node.value if _same_key(k.value, key)), None)
            if pair is None:
                break
            at, node = pair[0], pair[1]
            continue
        else:
            break
        at = node
    if at is None:
        return None
    return at.start_mark.line + 1, at.start_mark.column + 1


def _toml_position(text: str, keys: tuple) -> tuple[int, int] | None:
    """Line and column of the key at ``keys`` under ``[tool.ruleanalyzer]``
    (tomllib keeps no positions): the deepest ``key =`` line found in its
    table (the n-th ``[[…suppress]]`` for entry n), else the table's header."""
    names = [k for k in keys if not isinstance(k, int)]
    index = next((k for k in keys if isinstance(k, int)), None)
    best, best_depth = None, -1
    table, count = None, {}
    for number, line in enumerate(text.splitlines(), 1):
        header = re.match(r"\s*(\[\[?)\s*([^\]]+?)\s*\]", line)
        if header:
            parts = [p.strip().strip("\"'") for p in header.group(2).split(".")]
            table = parts[2:] if parts[:2] == ["tool", "ruleanalyzer"] else None
            if table is not None and header.group(1) == "[[":
                count[tuple(table)] = count.get(tuple(table), -1) + 1
            if _leads(table, names, index, count) and len(table) > best_depth:
                best, best_depth = (number, header.start(2) + 1), len(table)
            continue
        key = re.match(r"\s*[\"']?([\w.-]+)[\"']?\s*=", line)
        if key is None or not _leads(table, names, index, count) or len(table) >= len(names):
            continue
        if _same_key(key.group(1), names[len(table)]) and len(table) + 1 > best_depth:
            best, best_depth = (number, key.start(1) + 1), len(table) + 1
    return best


def _leads(table: list | None, names: list, index: int | None, count: dict) -> bool:
    """Is ``table`` a prefix of the key path ``names`` (the array table
    ``suppress`` only at its entry ``index``)?"""
    if table is None or len(table) > len(names) or not all(_same_key(a, b) for a, b in zip(table, names)):
        return False
    return index is None or not table or count.get(tuple(table[:1]), -1) == index


#: A config file larger than this is refused (it is a few lines).
MAX_CONFIG_BYTES = 4 * 1024 * 1024


def read_config_text(path: str | Path) -> str:
    """The text of a config file: a regular file, not through a link leading
    out of its directory, at most :data:`MAX_CONFIG_BYTES`, UTF-8; else a
    located error (see :func:`ruleanalyzer.loader.read_text`)."""
    from .loader import read_text

    try:
        return read_text(path, MAX_CONFIG_BYTES)
    except RuleAnalyzerError as exc:
        if exc.message.startswith("cannot read file"):
            exc.message = exc.message.replace("cannot read file", "cannot read config", 1)
        raise


#: Config ``suppress`` entries (each finding is matched against all of them).
MAX_SUPPRESS_ENTRIES = 1000
_ENTRY_TYPES = {"file": (str,), "chain": (str,), "path": (str,), "reason": (str,), "line": (int,),
                "rule": (int,), "codes": (str, list), "code": (str, list)}


def _check_entry(entry: dict, n: int, source: str | None) -> None:
    """A ``suppress`` entry's keys are known and its values have the types
    matching needs."""
    unknown = sorted(str(k) for k in entry if str(k) not in SUPPRESS_KEYS)
    if unknown:
        raise ConfigError(f"unknown key(s) in suppress entry {n + 1}: {', '.join(unknown)}",
                          source, ("suppress", n, unknown[0]), hint=f"known: {', '.join(SUPPRESS_KEYS)}")
    for key, value in entry.items():
        types = _ENTRY_TYPES.get(str(key))
        if types is None:
            continue
        if not isinstance(value, types) or isinstance(value, bool) \
                or isinstance(value, list) and not all(isinstance(v, str) for v in value):
            want = " or ".join("a list of codes" if t is list else {str: "a string", int: "a number"}[t]
                               for t in types)
            raise ConfigError(f"suppress[{n}].{key} must be {want}, not {type(value).__name__}",
                              source, ("suppress", n, key))


def config_from_dict(data: dict, source: str | None = None) -> Config:
    """Validate a settings mapping (keys may use ``-`` or ``_``); errors
    are :class:`ConfigError` naming the key they are about."""
    if not isinstance(data, dict):
        raise ConfigError("config must be a mapping", source)
    data = {str(k).replace("_", "-"): v for k, v in data.items()}
    # "policy" holds flow assertions, read by ruleanalyzer.policy.
    known = {"select", "ignore", "fail-on", "options", "suppress", "policy", "interfaces", "firewalld-version"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown config key(s): {', '.join(unknown)}", source, (unknown[0],),
                          hint=f"known: {', '.join(sorted(known))}")
    fail_on = str(data.get("fail-on", DEFAULT_FAIL_ON)).lower()
    if fail_on not in FAIL_ON:
        raise ConfigError(f"fail-on must be one of {', '.join(FAIL_ON)}, not {fail_on!r}", source, ("fail-on",))
    suppress = data.get("suppress") or []
    if not isinstance(suppress, list):
        raise ConfigError("suppress must be a list of tables, each naming at least a file", source,
                          ("suppress",))
    for n, entry in enumerate(suppress):
        if not isinstance(entry, dict) or "file" not in entry:
            raise ConfigError(f"suppress entry {n + 1} must be a table naming at least a file", source,
                              ("suppress", n), hint="suppress: [{file: rules.v4, line: 12, code: RA101}]")
    if len(suppress) > MAX_SUPPRESS_ENTRIES:
        raise ConfigError(f"more than {MAX_SUPPRESS_ENTRIES} suppress entries "
                          "(config.MAX_SUPPRESS_ENTRIES)", source, ("suppress",))
    for n, entry in enumerate(suppress):
        _check_entry(entry, n, source)
    options = data.get("options") or {}
    if not isinstance(options, dict):
        raise ConfigError("options must be a mapping of check codes to mappings of settings", source,
                          ("options",), hint="options: {RA401: {ports: [22, 8443]}}")
    for code, settings in options.items():
        if settings is not None and not isinstance(settings, dict):
            raise ConfigError(f"options.{code} must be a mapping of settings", source, ("options", code),
                              hint="options: {RA401: {ports: [22, 8443]}}")
    for key in ("select", "ignore"):
        value = data.get(key)
        if value is not None and not isinstance(value, (str, list)) \
                or isinstance(value, list) and not all(isinstance(v, (str, int)) for v in value):
            raise ConfigError(f"{key} must be a list of check codes (or a comma-separated string)",
                              source, (key,))
    firewalld_version = data.get("firewalld-version")
    return Config(_codes(data.get("select")), _codes(data.get("ignore")) or [], fail_on,
                  _check_options(options, source), suppress, _interfaces(data.get("interfaces"), source),
                  source, str(firewalld_version) if firewalld_version is not None else None)


def _interfaces(value, source: str | None) -> dict[str, list[str]]:
    """``interfaces: {internet: [...], internal: [...]}``, checked."""
    if value is None:
        return {}
    if not isinstance(value, dict) or set(value) - {"internet", "internal"}:
        extra = sorted(str(k) for k in set(value) - {"internet", "internal"}) if isinstance(value, dict) else []
        raise ConfigError("interfaces must be a mapping with the keys internet and/or internal", source,
                          ("interfaces", *extra[:1]), hint="interfaces: {internet: [eth0], internal: [eth1]}")
    out = {}
    for role, names in value.items():
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            raise ConfigError(f"interfaces.{role} must be a list of interface names", source,
                              ("interfaces", role))
        out[role] = list(names)
    return out


def _codes(value) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = value.split(",")
    return [str(v).strip() for v in value if str(v).strip()]
