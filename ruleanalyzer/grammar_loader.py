"""Where the Lark grammars are, installed or in a checkout.

The grammars live in the repository's top-level ``grammars/`` folder and ship
inside the wheel as the resource package ``ruleanalyzer.grammars``. An
editable install cannot map that package, so a checkout falls back to the
folder beside the package.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

from lark import Lark


def grammar_text(name: str) -> str:
    """The text of ``grammars/<name>.lark``."""
    try:
        return (resources.files("ruleanalyzer.grammars") / f"{name}.lark").read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        return (Path(__file__).resolve().parent.parent / "grammars" / f"{name}.lark").read_text("utf-8")


@functools.cache
def lalr_parser(name: str, start: str = "start", **options) -> Lark:
    """A LALR parser for ``grammars/<name>.lark``, built once per process."""
    return Lark(grammar_text(name), parser="lalr", start=start, propagate_positions=False,
                maybe_placeholders=False, **options)
