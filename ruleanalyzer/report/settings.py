"""How text output looks, set once from the command line.

Kept apart from :mod:`ruleanalyzer.report.text` so that every command can
set it without importing rich: a batch query writing JSON lines never
draws a table (importing rich cost ~0.07-0.1 s of each such run).
"""

from __future__ import annotations

#: ``color``: auto | always | never; ``quiet``: only the findings / answers.
SETTINGS = {"color": "auto", "quiet": False}


def configure(color: str = "auto", quiet: bool = False) -> None:
    """``color``: auto (on a terminal, unless NO_COLOR is set), always or
    never; ``quiet``: only the findings / answers, no summaries or notes."""
    SETTINGS.update(color=color, quiet=quiet)
