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

from .errors import RuleAnalyzerError, is_long_number, line_of, long_number_error
from .model import Location

#: More aliases than this in one document is refused (real exports use few).
MAX_YAML_ALIASES = 64
#: Collections (sequences, mappings) nested deeper than this are refused
#: (real documents nest a dozen levels). PyYAML composes recursively, and
#: inside ``[``/``{`` its scanner looks up to 1024 characters ahead at a cost
#: growing with the depth: a 100k-deep ``a: [[[…`` took seconds to reach
#: Python's recursion limit. Checked while scanning (flow collections) and
#: composing (all), so a refusal costs about the same whatever follows.
MAX_YAML_DEPTH = 100
#: Nodes reached through aliases, each alias counting every node under the
#: anchor it names, in one document. Few aliases can still expand hugely
#: (``b: [*a, *a]``, ``c: [*b, *b]`` …: a 667-byte topology took 3–4 GB once
#: walked); a document without aliases is not limited by this.
MAX_YAML_ALIAS_NODES = 100_000


class YAMLLimitError(yaml.YAMLError):
    """A document over one of the limits above, at ``mark``."""

    def __init__(self, message: str, mark):
        super().__init__(message)
        self.message = message
        self.mark = mark


class BoundedSafeLoader(yaml.SafeLoader):
    """SafeLoader that refuses documents with more than MAX_YAML_ALIASES
    aliases or collections nested deeper than MAX_YAML_DEPTH."""

    def __init__(self, stream):
        super().__init__(stream)
        self._aliases_seen = 0
        self._depth = 0
        self._via_aliases = 0
        self._sizes: dict[int, int] = {}

    @staticmethod
    def _too_deep(mark) -> YAMLLimitError:
        return YAMLLimitError(f"YAML nested too deeply: more than {MAX_YAML_DEPTH} levels "
                              "(safeyaml.MAX_YAML_DEPTH)", mark)

    def fetch_flow_collection_start(self, TokenClass):  # PyYAML scanner hook: '[' or '{'
        if self.flow_level >= MAX_YAML_DEPTH:
            raise self._too_deep(self.get_mark())
        super().fetch_flow_collection_start(TokenClass)

    def _size(self, node) -> int:
        """Nodes in ``node`` with aliases expanded (memoised: linear)."""
        size = self._sizes.get(id(node))
        if size is None:
            if isinstance(node, yaml.SequenceNode):
                size = 1 + sum(self._size(child) for child in node.value)
            elif isinstance(node, yaml.MappingNode):
                size = 1 + sum(self._size(k) + self._size(v) for k, v in node.value)
            else:
                size = 1
            self._sizes[id(node)] = size
        return size

    def compose_node(self, parent, index):  # PyYAML composer hook
        if self.check_event(yaml.AliasEvent):
            self._aliases_seen += 1
            mark = self.peek_event().start_mark
            if self._aliases_seen > MAX_YAML_ALIASES:
                raise YAMLLimitError(
                    f"more than {MAX_YAML_ALIASES} YAML aliases (a 'billion laughs' expansion?)", mark)
            node = super().compose_node(parent, index)
            self._via_aliases += self._size(node)
            if self._via_aliases > MAX_YAML_ALIAS_NODES:
                raise YAMLLimitError(f"YAML aliases expand to more than {MAX_YAML_ALIAS_NODES} nodes "
                                     "(safeyaml.MAX_YAML_ALIAS_NODES)", mark)
            return node
        if not self.check_event(yaml.CollectionStartEvent):
            return super().compose_node(parent, index)
        if self._depth >= MAX_YAML_DEPTH:
            raise self._too_deep(self.peek_event().start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


@contextlib.contextmanager
def located_errors(text: str, name: str) -> Iterator[None]:
    """Turn YAML errors inside the block into one located RuleAnalyzerError."""
    try:
        yield
    except YAMLLimitError as exc:
        mark = exc.mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise RuleAnalyzerError(exc.message, Location(name, line, col),
                                source_line=line_of(text, line)) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise RuleAnalyzerError(f"invalid YAML: {exc.problem or exc.context or exc}",
                                Location(name, line, col), source_line=line_of(text, line)) from None
    except yaml.YAMLError as exc:
        raise RuleAnalyzerError(f"invalid YAML: {exc}", Location(name, 1, 1)) from None
    except ValueError as exc:
        if not is_long_number(exc):
            raise
        raise long_number_error(text, name) from None
    except RecursionError:  # only when called with little stack left
        raise RuleAnalyzerError("YAML nested too deeply (Python's recursion limit)",
                                Location(name, 1, 1)) from None


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


# ---------------------------------------------------------------------------
# CloudFormation templates
# ---------------------------------------------------------------------------

#: Key under which :class:`CloudFormationLoader` records each mapping's line.
LINE_KEY = "__line__"
#: The intrinsic functions' YAML short forms (AWS CloudFormation User Guide,
#: "Intrinsic function reference"): ``!Ref X`` is ``{"Ref": X}``, ``!Sub s``
#: is ``{"Fn::Sub": s}``, ``!GetAtt A.B`` is ``{"Fn::GetAtt": ["A", "B"]}``.
CFN_SHORT_FORMS = {"Ref": "Ref", "Condition": "Condition",
                   **{n: f"Fn::{n}" for n in (
                       "GetAtt", "Sub", "Join", "Select", "Split", "If", "Equals", "And", "Or",
                       "Not", "FindInMap", "Base64", "Cidr", "ImportValue", "GetAZs",
                       "Transform", "ToJsonString", "Length", "ForEach")}}


class CloudFormationLoader(BoundedSafeLoader):
    """The bounded safe loader plus CloudFormation's ``!Ref``/``!GetAtt``/
    ``!Sub``… tags, each built as the plain-JSON form of the function
    (data, never code). Any other tag (``!!python/object``…) stays refused
    as SafeLoader refuses it. Every mapping records its line under
    LINE_KEY so findings can point at a template's resource."""

    def construct_mapping(self, node, deep=False):
        mapping = super().construct_mapping(node, deep=deep)
        mapping[LINE_KEY] = node.start_mark.line + 1
        return mapping


def _intrinsic(function: str):
    def construct(loader: CloudFormationLoader, node):
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if function == "Fn::GetAtt" and isinstance(value, str):
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {function: value}
    return construct


for _tag, _function in CFN_SHORT_FORMS.items():
    CloudFormationLoader.add_constructor(f"!{_tag}", _intrinsic(_function))


def load_cloudformation_yaml(text: str, name: str) -> Any:
    """A CloudFormation YAML template, bounded like every YAML input."""
    with located_errors(text, name):
        loader = CloudFormationLoader(text)
        try:
            return loader.get_single_data()  # an integer over 4,300 digits: located_errors
        finally:
            loader.dispose()
