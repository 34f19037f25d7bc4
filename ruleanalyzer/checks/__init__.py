"""The catalogue of checks: one registry from code to check class.

Families, one module each, with a code prefix:

- ``RA0xx`` — audit itself (unreadable input, parser diagnostics);
- ``RA1xx`` :mod:`.reach` — unreachable, shadowed and redundant rules;
  :mod:`.anomaly` — exceptions and overlaps whose order decides (opt-in);
- ``RA2xx`` :mod:`.traps` — implicit deny-all traps (handshakes, PMTU, ND, loopback, IPv6);
- ``RA3xx`` :mod:`.ecn` — ECN traps;
- ``RA4xx`` :mod:`.exposure` — administrative ports open to the internet;
- ``RA5xx`` :mod:`.structure` — jumps, dead chains, duplicates (jump loops are refused by every reader: RA001);
- ``RA6xx`` :mod:`.host` — what a host snapshot says (forwarding off, gaps), fleet drift;
- ``RA9xx`` :mod:`.suppress` — suppression directives themselves.

Opt-in checks (``opt_in = True``) run only when selected by their exact
code, their name or ``ALL``; the default selection and prefixes skip them.

Codes are stable and never reused. A retired code stays in
:data:`RETIRED` and redirects to its successor, so old ``--select`` lists,
configs and inline suppressions keep working.
"""

from __future__ import annotations

from .base import SEVERITIES, Check, Context, Finding, Option, Where, severity_rank

#: Retired code → the code that replaced it (none retired yet; the mechanism
#: is tested with a made-up entry).
RETIRED: dict[str, str] = {}

_FAMILY_MODULES = ("meta", "reach", "anomaly", "traps", "ecn", "exposure", "structure", "host", "suppress",
                   "firewalld")
_registry: dict[str, type[Check]] | None = None


def registry() -> dict[str, type[Check]]:
    """Every check class by code, in code order."""
    global _registry
    if _registry is None:
        import importlib

        found: dict[str, type[Check]] = {}
        for name in _FAMILY_MODULES:
            module = importlib.import_module(f"{__name__}.{name}")
            for obj in vars(module).values():
                if isinstance(obj, type) and issubclass(obj, Check) and obj.code:
                    if obj.code in found and found[obj.code] is not obj:
                        raise RuntimeError(f"check code {obj.code} used twice")
                    found[obj.code] = obj
        for cls in found.values():
            for alias in cls.aliases:
                RETIRED.setdefault(alias, cls.code)
        _registry = dict(sorted(found.items()))
    return _registry


def resolve(code: str) -> str:
    """The current code for ``code`` (retired codes redirect), upper-cased."""
    code = code.strip().upper()
    seen = set()
    while code in RETIRED and code not in seen:
        seen.add(code)
        code = RETIRED[code]
    return code


def get(code: str) -> type[Check]:
    """The check class for ``code`` (or a retired alias); KeyError if unknown."""
    return registry()[resolve(code)]


def _matches(code: str, selector: str) -> bool:
    """``RA1`` selects the family, ``RA101`` one check, ``ALL`` everything;
    a check's name works as a selector too."""
    selector = selector.strip()
    if selector.upper() == "ALL":
        return True
    cls = registry()[code]
    if selector.lower() == cls.name:
        return True
    return code.startswith(resolve(selector)) or code.startswith(selector.upper())


def _names(code: str, selector: str) -> bool:
    """Does ``selector`` pick ``code`` by name: its code, a retired alias of
    it, its kebab-case name, or ``ALL`` (what selects an opt-in check)?"""
    selector = selector.strip()
    return (selector.upper() == "ALL" or resolve(selector) == code
            or selector.lower() == registry()[code].name)


def select(select: list[str] | None = None, ignore: list[str] | None = None) -> list[str]:
    """Codes chosen by ``select`` (default: all but the opt-in checks) minus
    ``ignore``; an opt-in check must be named (:func:`_names`), a prefix
    does not choose it.

    Raises ValueError for a selector that names no check."""
    reg = registry()
    codes = list(reg)
    for selector in [*(select or []), *(ignore or [])]:
        if not any(_matches(c, selector) for c in codes):
            raise ValueError(f"unknown check code or prefix {selector!r}")

    def chosen(code: str) -> bool:
        if not select:
            return not reg[code].opt_in
        picks = _names if reg[code].opt_in else _matches
        return any(picks(code, s) for s in select)

    return [c for c in codes if chosen(c) and not any(_matches(c, s) for s in ignore or [])]


__all__ = ["Check", "Context", "Finding", "Option", "RETIRED", "SEVERITIES", "Where", "get",
           "registry", "resolve", "select", "severity_rank"]
