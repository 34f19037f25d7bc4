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

import tomllib
from dataclasses import dataclass, field
from pathlib import Path


from .safeyaml import load_yaml
from .errors import RuleAnalyzerError
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
            raise RuleAnalyzerError(f"bad TOML: {exc}", Location(str(path))) from None
    else:
        data = load_yaml(text, str(path)) or {}
    try:
        config = config_from_dict(data, str(path))
        _check_entries(config, text, str(path))
    except RuleAnalyzerError as exc:
        raise _located(exc, text) from None
    return config


#: The keys of one ``suppress`` entry.
SUPPRESS_KEYS = ("file", "line", "rule", "chain", "path", "code", "codes", "reason")


def _check_entries(config: Config, text: str, source: str) -> None:
    """Unknown keys inside ``suppress`` entries and unknown codes under
    ``options`` are errors too (a misspelt key would silently do nothing)."""
    from . import checks

    for n, entry in enumerate(config.suppress):
        unknown = sorted(str(k) for k in entry if str(k) not in SUPPRESS_KEYS)
        if unknown:
            raise RuleAnalyzerError(f"unknown key(s) in suppress entry {n + 1}: {', '.join(unknown)}",
                                    Location(source), hint=f"known: {', '.join(SUPPRESS_KEYS)}")
    for code in config.options:
        try:
            checks.get(code)
        except (KeyError, ValueError):
            raise RuleAnalyzerError(f"unknown check {code!r} under options", Location(source),
                                    hint="see `ruleanalyzer rules` for the codes") from None


def _located(exc: RuleAnalyzerError, text: str) -> RuleAnalyzerError:
    """``exc`` pointing at the line of the key it names (YAML or TOML)."""
    import re

    loc = exc.location
    found = re.search(r"(?:key\(s\)(?: in suppress entry \d+)?: |check ')([\w.-]+)", exc.message)
    if loc is None or loc.line or not found:
        return exc
    key = found.group(1)
    variants = {key, key.replace("-", "_"), key.lower()}
    for number, line in enumerate(text.splitlines(), 1):
        match = re.match(r"\s*(?:-\s*)?[\"']?([\w.-]+)[\"']?\s*[:=]", line) or \
            re.match(r"\s*\[+(?:tool\.ruleanalyzer\.options\.)?([\w.-]+)\]+", line)
        if match and match.group(1) in variants:
            return RuleAnalyzerError(exc.message, Location(loc.file, number, match.start(1) + 1),
                                     source_line=line, hint=exc.hint)
    return exc


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
    """A ``suppress`` entry's values have the types matching needs."""
    for key, value in entry.items():
        types = _ENTRY_TYPES.get(str(key))
        if types is None:
            continue
        if not isinstance(value, types) or isinstance(value, bool) \
                or isinstance(value, list) and not all(isinstance(v, str) for v in value):
            want = " or ".join("a list of codes" if t is list else {str: "a string", int: "a number"}[t]
                               for t in types)
            raise RuleAnalyzerError(f"suppress[{n}].{key} must be {want}, not {type(value).__name__}",
                                    Location(source or "<config>"))


def config_from_dict(data: dict, source: str | None = None) -> Config:
    """Validate a settings mapping (keys may use ``-`` or ``_``)."""
    if not isinstance(data, dict):
        raise RuleAnalyzerError("config must be a mapping", Location(source or "<config>"))
    data = {str(k).replace("_", "-"): v for k, v in data.items()}
    # "policy" holds flow assertions, read by ruleanalyzer.policy.
    known = {"select", "ignore", "fail-on", "options", "suppress", "policy", "interfaces", "firewalld-version"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise RuleAnalyzerError(f"unknown config key(s): {', '.join(unknown)}",
                                Location(source or "<config>"), hint=f"known: {', '.join(sorted(known))}")
    fail_on = str(data.get("fail-on", DEFAULT_FAIL_ON)).lower()
    if fail_on not in FAIL_ON:
        raise RuleAnalyzerError(f"fail-on must be one of {', '.join(FAIL_ON)}, not {fail_on!r}",
                                Location(source or "<config>"))
    suppress = data.get("suppress") or []
    if not isinstance(suppress, list) or not all(isinstance(e, dict) and "file" in e for e in suppress):
        raise RuleAnalyzerError("suppress must be a list of tables, each naming at least a file",
                                Location(source or "<config>"))
    if len(suppress) > MAX_SUPPRESS_ENTRIES:
        raise RuleAnalyzerError(f"more than {MAX_SUPPRESS_ENTRIES} suppress entries "
                                "(config.MAX_SUPPRESS_ENTRIES)", Location(source or "<config>"))
    for n, entry in enumerate(suppress):
        _check_entry(entry, n, source)
    options = data.get("options") or {}
    if not isinstance(options, dict) or not all(isinstance(v, dict) or v is None for v in options.values()):
        raise RuleAnalyzerError("options must be a mapping of check codes to mappings of settings",
                                Location(source or "<config>"), hint="options: {RA301: {ports: [22]}}")
    options = {str(code).upper(): dict(v or {}) for code, v in options.items()}
    for key in ("select", "ignore"):
        value = data.get(key)
        if value is not None and not isinstance(value, (str, list)) \
                or isinstance(value, list) and not all(isinstance(v, (str, int)) for v in value):
            raise RuleAnalyzerError(f"{key} must be a list of check codes (or a comma-separated string)",
                                    Location(source or "<config>"))
    firewalld_version = data.get("firewalld-version")
    return Config(_codes(data.get("select")), _codes(data.get("ignore")) or [], fail_on, options,
                  suppress, _interfaces(data.get("interfaces"), source), source,
                  str(firewalld_version) if firewalld_version is not None else None)


def _interfaces(value, source: str | None) -> dict[str, list[str]]:
    """``interfaces: {internet: [...], internal: [...]}``, checked."""
    if value is None:
        return {}
    where = Location(source or "<config>")
    if not isinstance(value, dict) or set(value) - {"internet", "internal"}:
        raise RuleAnalyzerError("interfaces must be a mapping with the keys internet and/or internal",
                                where, hint="interfaces: {internet: [eth0], internal: [eth1]}")
    out = {}
    for role, names in value.items():
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            raise RuleAnalyzerError(f"interfaces.{role} must be a list of interface names", where)
        out[role] = list(names)
    return out


def _codes(value) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = value.split(",")
    return [str(v).strip() for v in value if str(v).strip()]
