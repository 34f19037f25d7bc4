"""Reading YAML we did not write: safe loading only, bounded, located errors.

Every YAML the analyzer reads (cloud exports and cassettes, inventories,
topologies, ``.ruleanalyzer.yaml``) goes through here, so an alias bomb
("billion laughs") or absurd nesting is refused the same way everywhere and
a syntax error names file, line and column.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import yaml

from .errors import RuleAnalyzerError, line_of
from .model import Location

#: More aliases than this in one document is refused (real exports use few).
MAX_YAML_ALIASES = 64


class BoundedSafeLoader(yaml.SafeLoader):
    """SafeLoader that refuses documents with more than MAX_YAML_ALIASES aliases."""

    def __init__(self, stream):
        super().__init__(stream)
        self._aliases_seen = 0

    def compose_node(self, parent, index):  # PyYAML hook
        if self.check_event(yaml.AliasEvent):
            self._aliases_seen += 1
            if self._aliases_seen > MAX_YAML_ALIASES:
                event = self.peek_event()
                raise yaml.YAMLError(
                    f"more than {MAX_YAML_ALIASES} YAML aliases (a 'billion laughs' expansion?)"
                    f" at line {event.start_mark.line + 1}")
        return super().compose_node(parent, index)


@contextlib.contextmanager
def located_errors(text: str, name: str) -> Iterator[None]:
    """Turn YAML errors inside the block into one located RuleAnalyzerError."""
    try:
        yield
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise RuleAnalyzerError(f"invalid YAML: {exc.problem or exc.context or exc}",
                                Location(name, line, col), source_line=line_of(text, line)) from None
    except yaml.YAMLError as exc:
        raise RuleAnalyzerError(f"invalid YAML: {exc}", Location(name, 1, 1)) from None
    except RecursionError:
        raise RuleAnalyzerError("YAML nested too deeply", Location(name, 1, 1)) from None


def load_yaml(text: str, name: str) -> Any:
    """Safe-load one YAML document with the alias bound."""
    with located_errors(text, name):
        loader = BoundedSafeLoader(text)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()


def load_yaml_node(text: str, name: str) -> tuple[BoundedSafeLoader, yaml.Node | None]:
    """The composed node tree (with line marks) of one document, for readers
    that report positions of individual values; the caller disposes the
    loader."""
    with located_errors(text, name):
        loader = BoundedSafeLoader(text)
        loader.name = name
        return loader, loader.get_single_node()
