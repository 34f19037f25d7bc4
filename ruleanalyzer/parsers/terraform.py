"""Terraform configuration (HCL ``.tf`` files, ``*.tfvars``) → the rule model.

Parsed by python-hcl2's Lark grammar (``hcl2.parses_to_tree``: the raw
tree, with line numbers on every node; pinned to major version 8 in
pyproject.toml); the values are read here, never run:

- literals, ``variable`` defaults, ``*.tfvars`` given with the ``.tf``
  files (later files win, as ``-var-file`` does), ``locals``, string
  templates whose parts are all decided, and operators on decided values;
- ``count`` and ``for_each`` with decided values expand into one instance
  per element (``aws_security_group.web[0]``, ``…["key"]``); ``dynamic``
  blocks with a decided ``for_each`` into one block per element;
- everything else — a function call, a resource attribute, a variable
  without a value, a ``for`` expression, a splat — is
  :class:`~.iac_common.Unknown` naming the expression as written. No
  function is ever evaluated, no provider consulted;
- local modules (``module "x" { source = "./mod" }``) are read with the
  call's arguments as their variables (addresses ``module.x.…``), only
  inside the given tree: a source that leaves it (``../..``, a symlink out,
  an absolute path) or is remote (registry, git) is not read, and a note
  says so. A directory of ``.tf`` files (:func:`load_directory`) is one
  configuration, with ``terraform.tfvars`` and ``*.auto.tfvars``.

Locations are the file and line of the resource block (nested rule blocks:
their own line). The resources then go through the same translation as a
plan's (:mod:`.tf_resources`).
"""

from __future__ import annotations

import json
import re
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from ..errors import RuleAnalyzerError, line_of
from ..model import Location, OpaqueMatch, Ruleset
from . import tf_resources
from .iac_common import FIREWALL_TYPES, Resource, Unknown, init_meta
from .cloud_common import note

DIALECT = "terraform"
#: Meta key holding each file's parsed tree, for :func:`combine`.
SOURCES_META = "terraform_sources"
#: Instances one ``count``/``for_each`` may expand into.
MAX_INSTANCES = 10000
_BLOCK_RE = re.compile(r'^\s*(resource|variable|provider|module|terraform|locals|data|output)'
                       r'(\s+"[^"\n]*")*\s*\{', re.M)


def sniff(text: str, name: str) -> int:
    """Sure on top-level Terraform blocks; ``*.tfvars`` by name."""
    if _BLOCK_RE.search(text[:65536]):
        return 85
    if name.endswith(".tfvars"):
        return 80
    return 0


#: Nested module calls followed; deeper is refused with a note.
MAX_MODULE_DEPTH = 16
#: ``.tf`` files read through modules, all together.
MAX_MODULE_FILES = 2000


def parse(text: str, name: str) -> Ruleset:
    """The rules of one ``.tf`` file read alone (see :func:`combine` for
    files given together)."""
    source = _Source(name, text, _tree(text, name))
    return evaluate([source])


def is_config_dir(path) -> bool:
    """A directory holding ``.tf`` files (a Terraform root module)."""
    from pathlib import Path

    try:
        return Path(path).is_dir() and any(f.is_file() for f in Path(path).glob("*.tf"))
    except OSError:
        return False


#: Directories the user named (``audit infra/``): a configuration found
#: inside one may read local modules anywhere inside it (``envs/prod`` →
#: ``../../modules/web``), never outside.
GIVEN_TREES: ContextVar[tuple] = ContextVar("terraform_given_trees", default=())
_MODULE_SOURCE = re.compile(r'^\s*source\s*=\s*"(\.\.?/[^"]*)"', re.M)


@contextmanager
def given_trees(paths):
    """Within this block, the directories among ``paths`` are trees local
    modules may be read from (see :data:`GIVEN_TREES`)."""
    from pathlib import Path

    token = GIVEN_TREES.set(tuple(Path(p).resolve() for p in paths if Path(p).is_dir()))
    try:
        yield
    finally:
        GIVEN_TREES.reset(token)


_DECLARATION = re.compile(r'^(resource|data|variable|module|output)((?:\s+"[^"\n]*")+)\s*\{', re.M)


def is_one_configuration(directory) -> bool:
    """Do the ``.tf`` files of ``directory`` form one Terraform module? Not
    when two of them declare the same resource, variable, module or output
    (Terraform refuses that: "Duplicate resource configuration") — a folder
    of unrelated examples, read file by file instead."""
    seen: set = set()
    for f in _module_files(directory):
        text = _head(f)
        if text is None:
            return False
        for m in _DECLARATION.finditer(text):
            key = (m.group(1), " ".join(m.group(2).split()))
            if key in seen:
                return False
            seen.add(key)
    return True


#: How much of a .tf file the directory walk scans for declarations and
#: module calls (the file itself is read, within --max-bytes, when loaded).
SCAN_BYTES = 4 * 2**20


def _head(path) -> str | None:
    """The first :data:`SCAN_BYTES` of ``path`` as text, or None when unreadable."""
    from ..loader import current_side

    return current_side().head(path, SCAN_BYTES)


def root_modules(directories) -> list:
    """Of ``directories`` holding ``.tf`` files that form one module each,
    those no other one calls as a local module (``source = "./…"``,
    ``"../…"``): the configurations to read; a module directory is read
    through its caller."""
    from pathlib import Path

    dirs = [Path(d) for d in directories if is_one_configuration(d)]
    called = set()
    for d in dirs:
        for f in _module_files(d):
            for m in _MODULE_SOURCE.finditer(_head(f) or ""):
                target = (d / m.group(1)).resolve()
                if target != d.resolve():
                    called.add(target)
    return [d for d in dirs if d.resolve() not in called]


def _module_files(directory) -> list:
    """The ``*.tf`` files of a module directory, in name order (Terraform
    reads them all as one module; subdirectories are other modules), on
    the side being read (:func:`ruleanalyzer.loader.current_side`: the
    working tree, or a git revision for ``diff --git``)."""
    from ..loader import current_side

    return current_side().files(directory, "*.tf")


def load_directory(path, max_bytes: int | None = None) -> Ruleset:
    """A directory of ``.tf`` files as one configuration (its local modules
    followed inside ``path``), with ``terraform.tfvars`` and ``*.auto.tfvars``."""
    from pathlib import Path

    from ..loader import DEFAULT_MAX_BYTES, current_side

    side = current_side()
    d = Path(path)
    files = _module_files(d)
    auto = side.files(d, "terraform.tfvars") + side.files(d, "*.auto.tfvars")
    sources = []
    for f in files + auto:
        text = side.read(str(f), max_bytes or DEFAULT_MAX_BYTES)
        name = side.name_of(str(f))
        sources.append(_Source(name, text, _tree(text, name), str(f)))
    if not files:
        raise RuleAnalyzerError("no .tf files in this directory", Location(str(path)))
    return evaluate(sources, root=d, max_bytes=max_bytes)


def combine(rulesets: list[Ruleset]) -> list[Ruleset]:
    """``.tf`` and ``.tfvars`` files given together are one configuration:
    variables, locals and references resolve across them."""
    if sum(SOURCES_META in rs.meta for rs in rulesets) <= 1:
        return rulesets  # one file, or one directory already read as one
    sources = [s for rs in rulesets for s in rs.meta.get(SOURCES_META, [])]
    others = [rs for rs in rulesets if SOURCES_META not in rs.meta]
    return [*others, evaluate(sources)]


class _Source:
    """A file read: ``name`` as shown, ``path`` where it was read from
    (they differ at a git revision: ``REV:main.tf``)."""

    __slots__ = ("name", "text", "tree", "path")

    def __init__(self, name: str, text: str, tree, path: str | None = None):
        self.name, self.text, self.tree = name, text, tree
        self.path = name if path is None else path


def _tree(text: str, name: str):
    try:
        import hcl2
        from lark.exceptions import LarkError, UnexpectedInput
    except ImportError:  # pragma: no cover - a dependency of the package
        raise RuleAnalyzerError("reading .tf files needs python-hcl2 (pip install python-hcl2)",
                                Location(name)) from None
    try:
        return hcl2.parses_to_tree(text)
    except UnexpectedInput as exc:
        line, col = getattr(exc, "line", 1) or 1, getattr(exc, "column", 1) or 1
        if line < 1:
            line, col = text.count("\n") + 1, 1
        token = getattr(exc, "token", None)
        what = f"unexpected {str(token)[:40]!r}" if token is not None else "unexpected input"
        raise RuleAnalyzerError(f"invalid HCL: {what}", Location(name, line, col),
                                source_line=line_of(text, line)) from None
    except (LarkError, ValueError, RecursionError) as exc:
        raise RuleAnalyzerError(f"invalid HCL: {str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__}",
                                Location(name, 1, 1)) from None


# ---------------------------------------------------------------------------
# The configuration
# ---------------------------------------------------------------------------


def evaluate(sources: list[_Source], root=None, max_bytes: int | None = None) -> Ruleset:
    """The rules of ``sources`` read as one configuration; local modules are
    followed inside ``root`` (default: the directory the files share)."""
    ruleset = Ruleset(sources=[s.name for s in sources])
    ruleset.meta[SOURCES_META] = sources
    init_meta(ruleset, DIALECT)
    from ..loader import DEFAULT_MAX_BYTES

    limit = max_bytes or DEFAULT_MAX_BYTES
    budget = [MAX_MODULE_FILES, limit, limit]  # files and bytes left through modules, the limit
    config = _Config(ruleset, _tree_root(sources, root), budget=budget)
    for source in sources:
        config.read(source)
    resources = config.resources()
    tf_resources.build(ruleset, resources, sources[0].name)
    _guard(ruleset, config.guards)
    return ruleset


def _guard(ruleset: Ruleset, guards: dict[str, list[str]]) -> None:
    """Rules of an instance whose existence is undecided (``count`` or
    ``for_each`` not decided) carry that as a condition too."""
    if not guards:
        return
    for rule in ruleset.rules():
        reasons = guards.get(rule.origin.text) if rule.origin else None
        if reasons:
            rule.matches = rule.matches + tuple(OpaqueMatch(reason=r, text=r, configuration="existence")
                                                  for r in reasons)


def _tree_root(sources: list[_Source], root) -> tuple:
    """The directories modules may be read from (resolved): ``root``, else
    the directory of each file given (not their common parent: two files
    from unrelated places do not open the whole disk) — and a tree the user
    named that holds them (:data:`GIVEN_TREES`); () when the sources are
    not files on disk."""
    from ..loader import current_side

    side = current_side()
    own = (side.real(root),) if root is not None else tuple(dict.fromkeys(
        side.real(s.path).parent for s in sources if side.is_file(s.path)))
    trees = tuple(t for t in GIVEN_TREES.get() if any(d == t or t in d.parents for d in own))
    return tuple(dict.fromkeys((*own, *trees)))


class _Config:
    """Variables, locals and resource blocks of every file, evaluated on demand.
    ``prefix``: the module path (``module.net.``) of a module's configuration."""

    def __init__(self, ruleset: Ruleset, root: tuple = (), prefix: str = "", depth: int = 0,
                 budget: list | None = None, chain: tuple = ()):
        self.ruleset = ruleset
        self.root, self.prefix, self.depth = root, prefix, depth
        self.budget = budget if budget is not None else [MAX_MODULE_FILES, 256 * 2**20, 256 * 2**20]
        self.chain = chain  # module directories on the way here (a cycle stops)
        self.modules: list[tuple[_Source, str, Any, int]] = []
        self.variables: dict[str, Any] = {}
        self.tfvars: dict[str, Any] = {}
        self.local_nodes: dict[str, tuple[_Source, Any]] = {}
        self.local_values: dict[str, Any] = {}
        self.busy: set[str] = set()
        self.blocks: list[tuple[_Source, str, str, Any, int]] = []
        self.guards: dict[str, list[str]] = {}

    def read(self, source: _Source) -> None:
        _too_deep(lambda: self._read(source), Location(source.name, 1, 1))

    def _read(self, source: _Source) -> None:
        body = _child(source.tree, "body")
        tfvars = source.name.endswith(".tfvars") or not any(
            _is(c, "block") for c in _children(body))
        for node in _children(body):
            if _is(node, "attribute"):
                name, value = _attribute(node)
                if tfvars:
                    self.tfvars[name] = _Eval(self, source, {}).value(value)
            elif _is(node, "block"):
                self._block(source, node)

    def _block(self, source: _Source, node) -> None:
        kind, labels, body = _block_parts(node)
        line = node.meta.line
        if kind == "variable" and labels:
            for attr in _children(body):
                if _is(attr, "attribute") and _attribute(attr)[0] == "default":
                    self.variables[labels[0]] = _Eval(self, source, {}).value(_attribute(attr)[1])
        elif kind == "locals":
            for attr in _children(body):
                if _is(attr, "attribute"):
                    name, value = _attribute(attr)
                    self.local_nodes[name] = (source, value)
        elif kind == "resource" and len(labels) == 2:
            if labels[0] in FIREWALL_TYPES:
                self.blocks.append((source, labels[0], labels[1], body, line))
        elif kind == "module" and labels:
            self.modules.append((source, labels[0], body, line))

    def variable(self, name: str) -> Any:
        if name in self.tfvars:
            return self.tfvars[name]
        return self.variables.get(name, Unknown(f"var.{name}", why="no value given"))

    def local(self, name: str) -> Any:
        if name in self.local_values:
            return self.local_values[name]
        if name not in self.local_nodes or name in self.busy:
            return Unknown(f"local.{name}")
        self.busy.add(name)
        source, node = self.local_nodes[name]
        value = _Eval(self, source, {}).value(node)
        self.busy.discard(name)
        self.local_values[name] = value
        return value

    def resources(self) -> list[Resource]:
        out = []
        for source, kind, name, body, line in self.blocks:
            base = f"{self.prefix}{kind}.{name}"
            for address, scope, guard in self._instances(source, base, body):
                loc = Location(source.name, line, 1, path=address)
                values, lines = _too_deep(lambda: _Eval(self, source, scope).body(body), loc)
                res = Resource(kind, address, values, loc, module=self.prefix, lines=lines)
                if guard:
                    self.guards[address] = guard
                out.append(res)
        for source, name, body, line in self.modules:
            out += self._module(source, name, body, line)
        return out

    # -- modules ---------------------------------------------------------------

    def _module(self, source: _Source, name: str, body, line: int) -> list[Resource]:
        """The firewall resources of a local module call, its arguments as
        the module's variables; a source outside the tree is not read."""
        from ..loader import current_side

        side = current_side()
        loc = Location(source.name, line, 1, path=f"{self.prefix}module.{name}")
        attrs = {n: v for n, v in (_attribute(a) for a in _children(body) if _is(a, "attribute"))}

        def skip(why: str) -> list[Resource]:
            note(self.ruleset, f"module {name!r} is not read: {why}; the firewall resources inside "
                 "it are not analysed (give a plan to see them)", loc, level="warning")
            return []

        if "source" not in attrs:
            return skip("it has no source")
        where = _Eval(self, source, {}).value(attrs["source"])
        if not isinstance(where, str):
            return skip("its source is not a literal string")
        if not where.startswith(("./", "../")):
            return skip(f"source {where!r} is not a local path (registry, git and URLs are never fetched)")
        if not self.root or not side.is_file(source.path):
            return skip("the file was not read from a directory")
        directory = side.real(side.real(source.path).parent / where)
        if not any(directory == r or r in directory.parents for r in self.root):
            return skip(f"source {where!r} leaves the given tree "
                        f"({', '.join(str(r) for r in self.root)})")
        if not side.is_dir(str(directory)):
            return skip(f"source {where!r} is not a directory")
        if directory in self.chain:
            return skip(f"source {where!r} calls itself (a module cycle)")
        if self.depth >= MAX_MODULE_DEPTH:
            return skip(f"modules nest deeper than {MAX_MODULE_DEPTH}")
        sources = self._module_sources(directory, skip)
        if sources is None:
            return []
        out: list[Resource] = []
        for address, scope, guard in self._instances(source, f"{self.prefix}module.{name}", body):
            child = _Config(self.ruleset, self.root, f"{address}.", self.depth + 1, self.budget,
                            (*self.chain, directory))
            ev = _Eval(self, source, scope)
            for arg, expr in attrs.items():
                if arg not in ("source", "version", "count", "for_each", "providers", "depends_on"):
                    child.tfvars[arg] = ev.value(expr)
            for src in sources:
                child.read(src)
            found = child.resources()
            self.guards.update(child.guards)
            for res in found:
                if guard:
                    self.guards[res.address] = [*self.guards.get(res.address, []), *guard]
            out += found
        return out

    def _module_sources(self, directory, skip) -> list[_Source] | None:
        from ..loader import current_side

        side = current_side()
        files = _module_files(directory)
        if not files:
            skip(f"{directory} holds no .tf files")
            return None
        if len(files) > self.budget[0]:
            skip(f"more than {MAX_MODULE_FILES} .tf files through modules")
            return None
        self.budget[0] -= len(files)
        out = []
        for f in files:
            text = side.read(str(f), self.budget[2])
            shown = side.name_of(str(f))
            self.budget[1] -= len(text.encode("utf-8"))
            if self.budget[1] < 0:  # each file under the limit, together over it
                raise RuleAnalyzerError(f"the modules' .tf files together are over the limit of "
                                        f"{self.budget[2]} bytes", Location(shown),
                                        hint="raise the limit with --max-bytes if this is one configuration")
            out.append(_Source(shown, text, _tree(text, shown), str(f)))
        return out

    def _instances(self, source: _Source, base: str, body):
        meta = {name: value for name, value in (_attribute(a) for a in _children(body)
                                                if _is(a, "attribute"))
                if name in ("count", "for_each")}
        ev = _Eval(self, source, {})
        if "count" in meta:
            count = ev.value(meta["count"])
            if isinstance(count, bool) or not isinstance(count, int):
                expr = count.expr if isinstance(count, Unknown) else _text(source, meta["count"])
                yield (f"{base}[count.index]", {"count.index": Unknown("count.index")},
                       [f"exists only if `{expr}` > 0"])
                return
            for i in range(min(max(count, 0), MAX_INSTANCES)):
                yield f"{base}[{i}]", {"count.index": i}, []
            return
        if "for_each" in meta:
            items = ev.value(meta["for_each"])
            if isinstance(items, dict):
                pairs = list(items.items())
            elif isinstance(items, (list, tuple)) and all(isinstance(i, str) for i in items):
                pairs = [(i, i) for i in items]
            else:
                expr = items.expr if isinstance(items, Unknown) else _text(source, meta["for_each"])
                yield (f"{base}[each.key]", {"each.key": Unknown("each.key"),
                                             "each.value": Unknown("each.value")},
                       [f"exists only for the elements of `{expr}`"])
                return
            for key, value in pairs[:MAX_INSTANCES]:
                yield f"{base}[{json.dumps(key)}]", {"each.key": key, "each.value": value}, []
            return
        yield base, {}, []


# ---------------------------------------------------------------------------
# Expressions (literals only; everything else is Unknown)
# ---------------------------------------------------------------------------

_SKIP_ATTRIBUTES = ("count", "for_each", "depends_on", "provider", "lifecycle")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}


class _Eval:
    """Evaluate expressions of one file under one scope (``count.index``,
    ``each.*``, dynamic-block iterators)."""

    def __init__(self, config: _Config, source: _Source, scope: dict):
        self.config, self.source, self.scope = config, source, scope

    def unknown(self, node, why: str = "") -> Unknown:
        return Unknown(_text(self.source, node), tuple(_refs(node)), why)

    # -- blocks --------------------------------------------------------------

    def body(self, body) -> tuple[dict, dict]:
        """Attributes and nested blocks of ``body`` as a dict (blocks as
        lists), and the line of every nested block by (type, index)."""
        values: dict = {}
        lines: dict = {}
        for node in _children(body):
            if _is(node, "attribute"):
                name, expr = _attribute(node)
                if name not in _SKIP_ATTRIBUTES:
                    values[name] = self.value(expr)
            elif _is(node, "block"):
                kind, labels, inner = _block_parts(node)
                if kind == "dynamic" and labels:
                    for block in self.dynamic(labels[0], inner):
                        lines[(labels[0], len(values.get(labels[0], [])))] = node.meta.line
                        values.setdefault(labels[0], []).append(block)
                elif kind not in ("lifecycle", "timeouts", "provisioner", "connection"):
                    lines[(kind, len(values.get(kind, [])))] = node.meta.line
                    values.setdefault(kind, []).append(self.body(inner)[0])
        return values, lines

    def dynamic(self, label: str, body) -> list:
        attrs = {n: v for n, v in (_attribute(a) for a in _children(body) if _is(a, "attribute"))}
        content = next((b for b in _children(body) if _is(b, "block")
                        and _block_parts(b)[0] == "content"), None)
        if content is None or "for_each" not in attrs:
            return []
        iterator = label
        if "iterator" in attrs:
            it = attrs["iterator"]
            iterator = _text(self.source, it).strip()
        items = self.value(attrs["for_each"])
        if isinstance(items, dict):
            pairs = list(items.items())
        elif isinstance(items, (list, tuple)):
            pairs = list(enumerate(items))
        else:
            return [items if isinstance(items, Unknown) else self.unknown(attrs["for_each"])]
        out = []
        for key, value in pairs[:MAX_INSTANCES]:
            inner = _Eval(self.config, self.source,
                          {**self.scope, f"{iterator}.key": key, f"{iterator}.value": value})
            out.append(inner.body(_block_parts(content)[2])[0])
        return out

    # -- values --------------------------------------------------------------

    def value(self, node) -> Any:
        kind = node.data if hasattr(node, "data") else None
        if kind == "expr_term":
            inner = [c for c in node.children if hasattr(c, "data") and c.data != "new_line_or_comment"]
            if len(inner) == 1:
                return self.value(inner[0])
            return self.unknown(node)
        handler = getattr(self, f"v_{kind}", None)
        if handler is None:
            return self.unknown(node)
        return handler(node)

    def v_int_lit(self, node):
        try:
            return int(str(node.children[0]))
        except ValueError:
            raise RuleAnalyzerError("number too long", Location(self.source.name, node.meta.line,
                                                                node.meta.column)) from None

    def v_float_lit(self, node):
        return float(str(node.children[0]))

    def v_literal_value(self, node):
        return {"true": True, "false": False, "null": None}[str(node.children[0])]

    def v_identifier(self, node):
        return self.unknown(node)

    def v_string(self, node):
        parts = []
        for part in node.children:
            if not hasattr(part, "data"):
                continue  # the quotes
            piece = part.children[0]
            if hasattr(piece, "data"):
                if piece.data != "interpolation":
                    return self.unknown(node, "a template directive")
                inner = [c for c in piece.children if hasattr(c, "data")]
                value = self.value(inner[0]) if inner else None
                if isinstance(value, Unknown):
                    return Unknown(_text(self.source, node), value.refs, value.why)
                if isinstance(value, (dict, list)):
                    return self.unknown(node)
                parts.append(_template_text(value))
            elif piece.type == "ESCAPED_INTERPOLATION":
                parts.append(str(piece)[1:])
            elif piece.type == "ESCAPED_DIRECTIVE":
                parts.append(str(piece)[1:])
            else:
                parts.append(_unescape(str(piece)))
        return "".join(parts)

    def v_heredoc_template(self, node):
        raw = str(node.children[0])
        body = raw.split("\n", 1)[1].rsplit("\n", 2)[0] if "\n" in raw else ""
        return self.unknown(node) if "${" in body or "%{" in body else body

    v_heredoc_template_trim = v_heredoc_template

    def v_tuple(self, node):
        return [self.value(c) for c in node.children
                if hasattr(c, "data") and c.data != "new_line_or_comment"]

    def v_object(self, node):
        out = {}
        for elem in node.children:
            if not (hasattr(elem, "data") and elem.data == "object_elem"):
                continue
            key_node, value_node = elem.children[0], elem.children[-1]
            key = self._key(key_node)
            if isinstance(key, Unknown):
                return self.unknown(node)
            out[key] = self.value(value_node)
        return out

    def _key(self, key_node):
        inner = key_node.children[0]
        if hasattr(inner, "data") and inner.data == "expr_term":
            term = [c for c in inner.children if hasattr(c, "data")]
            if len(term) == 1 and term[0].data == "identifier":
                return str(term[0].children[0])
        if hasattr(inner, "data") and inner.data == "keyword":
            return str(inner.children[0])
        key = self.value(inner)
        return key if isinstance(key, (str, Unknown)) else str(key)

    def v_conditional(self, node):
        parts = [c for c in node.children if hasattr(c, "data") and c.data != "new_line_or_comment"]
        cond = self.value(parts[0])
        if isinstance(cond, bool):
            return self.value(parts[1] if cond else parts[2])
        return self.unknown(node)

    def v_unary_op(self, node):
        op = str(node.children[0])
        value = self.value(node.children[1])
        if op == "-" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return -value
        if op == "!" and isinstance(value, bool):
            return not value
        return self.unknown(node)

    def v_binary_op(self, node):
        left = self.value(node.children[0])
        term = node.children[1]
        op = str(term.children[0].children[0])
        right = self.value([c for c in term.children[1:] if hasattr(c, "data")
                            and c.data != "new_line_or_comment"][0])
        return _operate(op, left, right) if _decided(left) and _decided(right) else self.unknown(node)

    def v_function_call(self, node):
        """``try(a, b, …)``: the first argument that is not an error (a
        missing element of a decided value, as in ``try(each.value.x, null)``
        over a literal ``for_each`` map); undecided if the first that may
        succeed is undecided. Other functions are not evaluated."""
        name = str(node.children[0].children[0]) if _is(node.children[0], "identifier") else ""
        args = [a for c in node.children if _is(c, "arguments")
                for a in c.children if hasattr(a, "data") and a.data != "new_line_or_comment"]
        if name != "try" or not args:
            return self.unknown(node)
        for arg in args:
            value = self.value(arg)
            if not (isinstance(value, Unknown) and value.why.endswith(_NO_SUCH_ELEMENT)):
                return value
        return self.unknown(node)

    def v_get_attr_expr_term(self, node):
        return self._reference(node)

    v_index_expr_term = v_get_attr_expr_term

    def _reference(self, node):
        root, steps = _flatten(node)
        if root is None:
            return self.unknown(node)
        head = root
        if root in ("var", "local", "each", "count") or f"{root}.value" in self.scope:
            if not steps or steps[0][0] != "attr":
                return self.unknown(node)
            attr, steps = steps[0][1], steps[1:]
            if root == "var":
                value = self.config.variable(attr)
            elif root == "local":
                value = self.config.local(attr)
            else:
                value = self.scope.get(f"{root}.{attr}", Unknown(f"{root}.{attr}"))
            head = f"{root}.{attr}"
        else:
            return self.unknown(node)
        for kind, step in steps:
            if isinstance(value, Unknown):
                break
            key = step if kind in ("attr", "index_int") else self.value(step)
            if isinstance(key, Unknown):
                return self.unknown(node)
            if isinstance(value, dict) and isinstance(key, str) and key in value:
                value = value[key]
            elif isinstance(value, list) and isinstance(key, int) and 0 <= key < len(value):
                value = value[key]
            else:
                return self.unknown(node, f"{head}{_NO_SUCH_ELEMENT}")
        if isinstance(value, Unknown) and steps:
            return Unknown(_text(self.source, node), value.refs, value.why)
        return value


_NO_SUCH_ELEMENT = " has no such element"


def _too_deep(fn, where: Location):
    """``fn()``, with an expression nested past Python's recursion limit a
    located error (bad input) rather than a crash."""
    try:
        return fn()
    except RecursionError:
        raise RuleAnalyzerError("an expression is nested too deeply to read", where,
                                hint="Terraform configurations do not nest brackets thousands deep") from None


def _decided(value) -> bool:
    return not isinstance(value, Unknown) and not isinstance(value, (dict, list))


def _operate(op: str, a, b):
    try:
        if op == "+" and _number(a, b):
            return a + b
        if op == "-" and _number(a, b):
            return a - b
        if op == "*" and _number(a, b):
            return a * b
        if op == "==":
            return a == b
        if op == "!=":
            return a != b
        if op in ("<", ">", "<=", ">=") and _number(a, b):
            return {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]
        if op in ("&&", "||") and isinstance(a, bool) and isinstance(b, bool):
            return (a and b) if op == "&&" else (a or b)
    except (TypeError, OverflowError):
        pass
    return Unknown(f"{a!r} {op} {b!r}")


def _number(a, b) -> bool:
    return all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (a, b)) \
        and all(abs(x) < 1 << 64 for x in (a, b))


def _template_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text

    def repl(m: re.Match) -> str:
        body = m.group(1)
        if body[0] in "uU":
            try:
                return chr(int(body[1:], 16))
            except (ValueError, OverflowError):
                return m.group(0)
        return _ESCAPES.get(body, m.group(0))

    return re.sub(r"\\(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)", repl, text)


# ---------------------------------------------------------------------------
# Tree helpers
# ---------------------------------------------------------------------------


def _is(node, name: str) -> bool:
    return getattr(node, "data", None) == name


def _children(node) -> list:
    return [c for c in getattr(node, "children", []) if hasattr(c, "data")
            and c.data != "new_line_or_comment"]


def _child(node, name: str):
    return next((c for c in node.children if _is(c, name)), None)


def _name(node) -> str:
    """An identifier, keyword or string label as text."""
    if _is(node, "string"):
        return "".join(str(p.children[0]) for p in node.children if hasattr(p, "data"))
    return str(node.children[0]) if hasattr(node, "children") and node.children else str(node)


def _attribute(node) -> tuple[str, Any]:
    return _name(node.children[0]), node.children[-1]


def _block_parts(node) -> tuple[str, list[str], Any]:
    parts = [c for c in node.children if hasattr(c, "data") and c.data != "new_line_or_comment"]
    body = parts[-1]
    return _name(parts[0]), [_name(p) for p in parts[1:-1]], body


def _text(source: _Source, node) -> str:
    meta = getattr(node, "meta", None)
    if meta is not None and not getattr(meta, "empty", True):
        return source.text[meta.start_pos:meta.end_pos]
    return str(node)


def _flatten(node):
    """``a.b[0].c`` → ("a", [("attr","b"), ("index", node), ("attr","c")])."""
    steps: list = []
    while True:
        if _is(node, "expr_term"):
            inner = [c for c in node.children if hasattr(c, "data")]
            if len(inner) != 1:
                return None, []
            node = inner[0]
            continue
        if _is(node, "get_attr_expr_term"):
            steps.insert(0, ("attr", _name(node.children[1].children[-1])))
            node = node.children[0]
        elif _is(node, "index_expr_term"):
            index = node.children[1]
            if _is(index, "short_index"):
                steps.insert(0, ("index_int", int(str(index.children[-1]))))
            else:
                steps.insert(0, ("index", [c for c in index.children if hasattr(c, "data")
                                           and c.data != "new_line_or_comment"][0]))
            node = node.children[0]
        elif _is(node, "identifier"):
            return str(node.children[0]), steps
        else:
            return None, []


def _refs(node) -> list[str]:
    """Resource addresses an expression mentions (``aws_security_group.web``)."""
    out: list[str] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if _is(n, "get_attr_expr_term"):
            root, steps = _flatten(n)
            if root and root not in ("var", "local", "each", "count", "path", "terraform", "self") \
                    and steps and steps[0][0] == "attr":
                address = f"{root}.{steps[0][1]}"
                index = _literal_index(steps[1]) if len(steps) > 1 else None
                if index is not None:
                    address += f"[{json.dumps(index)}]"
                elif root in ("data", "module") and len(steps) > 1 and steps[1][0] == "attr":
                    address += f".{steps[1][1]}"
                out.append(address)
                continue
        stack.extend(c for c in getattr(n, "children", []) if hasattr(c, "data"))
    return list(dict.fromkeys(out))


def _literal_index(step) -> int | str | None:
    """``[0]`` / ``.0`` / ``["a"]`` written as a literal, else None."""
    kind, value = step
    if kind == "index_int":
        return value
    if kind == "index" and _is(value, "expr_term"):
        inner = [c for c in value.children if hasattr(c, "data")]
        if len(inner) == 1 and _is(inner[0], "int_lit"):
            return int(str(inner[0].children[0]))
        if len(inner) == 1 and _is(inner[0], "string") and all(
                not hasattr(p.children[0], "data") for p in inner[0].children if hasattr(p, "data")):
            return _name(inner[0])
    return None
