"""Dialect registry: a name per dialect, each a module with ``parse`` and ``sniff``.

A dialect module ``ruleanalyzer.parsers.<name>`` (``-`` in the name becomes
``_``) provides:

- ``parse(text: str, name: str) -> Ruleset`` — raise
  :class:`~ruleanalyzer.errors.RuleAnalyzerError` with a location on bad
  input; never anything else;
- ``sniff(text: str, name: str) -> int`` — how sure (0–100) it is that
  ``text`` is its dialect, from a cheap look at the start of the text;
- optionally ``REFINES = "<dialect>"``: this dialect is a specialisation of
  another and wins a tie against it;
- optionally ``combine(rulesets) -> Ruleset``: files of this dialect given
  together form one firewall in a way plain merging cannot express.

Modules are imported lazily so that reading one iptables dump does not pay
for the nftables grammar.

Inside :func:`lazy_reading` a reader may leave parts of the model to be
built when first asked for (iptables: each chain's rules), having checked
them as it read: the same model and the same errors, for commands that
look at a few chains of a big file (``query``, ``connect``).
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
from types import ModuleType

from ..errors import RuleAnalyzerError, is_long_number, long_number_error
from ..model import Location, Ruleset

#: Every dialect ``--dialect`` accepts, in sniffing order of preference.
DIALECTS = ("iptables", "iptables-script", "nftables", "nft-script", "nft-json", "ufw", "firewalld", "aws-sg", "aws-nacl", "gcp", "azure",
            "terraform-plan", "terraform", "cloudformation")


def dialect_module(name: str) -> ModuleType:
    """The parser module for dialect ``name``; a misspelling gets a suggestion."""
    if name not in DIALECTS:
        close = difflib.get_close_matches(name, DIALECTS, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known dialects: {', '.join(DIALECTS)}"
        raise RuleAnalyzerError(f"unknown dialect {name!r}", hint=hint)
    return importlib.import_module(f"{__name__}.{name.replace('-', '_')}")


#: The readers' caches of values by their text (module -> names): they
#: serve reading only, and a big file's outlive it (100k kube-proxy rules:
#: 30k networks by text, ~5 MiB; the nft reader's: up to 64k networks and
#: 8k selectors). Emptied by :func:`forget_caches`.
_CACHES = (("iptables_values", ("_network_cache", "_range_cache", "_blocks")),
           ("iptables", ("_UNQUOTED",)),
           ("nft_common", ("_network", "_selector_flat", "_selector_cached", "_SELECTOR_MEMO",
                           "_SELECTOR_INT_MEMO")))


def forget_caches() -> None:
    """Empty the readers' caches (:data:`_CACHES`) of the modules imported:
    what is read next is read afresh (the same values; equal objects, not
    the same ones). The audit calls this once its input is read, before its
    analyses, whose peak is the process's."""
    import sys

    for module, names in _CACHES:
        found = sys.modules.get(f"{__name__}.{module}")
        if found is None:
            continue
        for name in names:
            cache = getattr(found, name)
            (cache.cache_clear if hasattr(cache, "cache_clear") else cache.clear)()


#: Dialects whose module says ``REFINES = "<key>"`` (checked by a test):
#: sniffing stops at a certain dialect unless one of these may tie it, so a
#: plain iptables file does not import every other parser.
REFINED_BY = {"iptables": ("ufw",)}

#: Whether readers may build parts of the model on first use (lazy_reading).
LAZY_READING = False


@contextlib.contextmanager
def lazy_reading():
    """Inside the block, readers may leave parts of the model to be built
    when first asked for (see the module's docstring); nests."""
    global LAZY_READING
    before, LAZY_READING = LAZY_READING, True
    try:
        yield
    finally:
        LAZY_READING = before


def available() -> list[str]:
    """The dialects whose parser modules exist in this build."""
    out = []
    for name in DIALECTS:
        try:
            dialect_module(name)
        except ModuleNotFoundError:
            continue
        out.append(name)
    return out


def sniff(text: str, name: str = "<input>") -> str:
    """The dialect ``text`` is written in; a located error when none fits."""
    best, best_score = None, 0
    for dialect in DIALECTS:
        if best_score == 100 and dialect not in REFINED_BY.get(best, ()):
            continue  # nothing later can win: only a refinement wins a tie
        try:
            module = dialect_module(dialect)
        except ModuleNotFoundError:
            continue
        score = module.sniff(text, name)
        # A dialect that refines another (ufw's files are iptables text)
        # wins a tie against it.
        if score > best_score or (score == best_score and best and getattr(module, "REFINES", None) == best):
            best, best_score = dialect, score
    if best is None:
        raise RuleAnalyzerError(
            "cannot tell which firewall dialect this file is", Location(name, 1, 1),
            hint=f"name it with --dialect ({', '.join(DIALECTS)})")
    return best


#: Dialects whose files may leave the table unnamed (``iptables -t nat -S``).
TABLE_DIALECTS = ("iptables", "iptables-script")


def parse(text: str, name: str = "<input>", dialect: str | None = None, *,
          table: str | None = None) -> Ruleset:
    """Parse ``text`` (from file ``name``) in ``dialect``, sniffed when not given.
    ``table``: the table of ``iptables -S`` output and of script commands
    without ``-t`` (default filter). Listings that cannot be analysed
    (``iptables -L``) are refused, saying what to run instead."""
    from .pastes import refuse

    refuse(text, name)
    dialect = dialect or sniff(text, name)
    options = {"table": table} if table is not None and dialect in TABLE_DIALECTS else {}
    try:
        ruleset = dialect_module(dialect).parse(text, name, **options)
    except ValueError as exc:
        if not is_long_number(exc):
            raise
        raise long_number_error(text, name) from None
    ruleset.meta.setdefault("dialect", dialect)
    return ruleset
