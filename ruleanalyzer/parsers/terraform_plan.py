"""Terraform plan and state JSON (``terraform show -json plan.out``,
``terraform show -json`` of a state, a raw ``terraform.tfstate``) → the
rule model.

Terraform's JSON output format (developer.hashicorp.com/terraform/internals/json-format):
a plan has ``resource_changes[]`` with ``change.before`` / ``change.after``
and ``change.after_unknown`` (a mirror of ``after`` holding ``true`` where
the value is known only after apply), and ``configuration`` with each
resource's ``expressions`` (``references`` name what an expression reads).
The format is versioned (``format_version``); a new major version may
change the meaning of fields, so only majors 0 and 1 are read — another is
refused, located.

The rules are those of the ``after`` side (what applying the plan makes);
:func:`plan_sides` gives both sides for ``diff plan.json``. Values unknown
at plan time become :class:`~.iac_common.Unknown` naming the expression
the configuration gives (``var.admin_cidr``), so answers say "depends on
`var.admin_cidr`"; a rule whose group id is unknown is linked to its group
through the configuration's references.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterator

from ..errors import RuleAnalyzerError, line_of
from ..model import Location, Ruleset
from . import tf_resources
from .cloud_common import sniff_keywords
from .iac_common import FIREWALL_TYPES, Resource, Unknown, init_meta

DIALECT = "terraform-plan"
#: ``format_version`` majors whose meaning we know (Terraform promises
#: compatible minor versions within a major).
FORMAT_MAJORS = ("0", "1")
#: Raw state files: only version 4 (Terraform ≥ 0.12) has typed attributes.
STATE_VERSIONS = (4,)


def sniff(text: str, name: str) -> int:
    """Sure on Terraform's JSON keys (above the cloud exports, whose
    resource ids a plan may quote)."""
    head = text[:65536]
    if '"terraform_version"' in head and any(k in head for k in (
            '"planned_values"', '"resource_changes"', '"format_version"', '"lineage"')):
        return 95
    return sniff_keywords(text, ('"resource_changes"', '"planned_values"'))


def parse(text: str, name: str) -> Ruleset:
    """The rules a plan leaves in place (its ``after`` side), or a state's."""
    doc = load_json(text, name)
    _, after = plan_sides(doc, text, name)
    return build_ruleset(after, name)


def build_ruleset(resources: list[Resource], name: str) -> Ruleset:
    ruleset = Ruleset(sources=[name])
    init_meta(ruleset, DIALECT)
    tf_resources.build(ruleset, resources, name)
    return ruleset


def load_json(text: str, name: str) -> Any:
    text = text.lstrip("\ufeff")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RuleAnalyzerError(f"invalid JSON: {exc.msg}", Location(name, exc.lineno, exc.colno),
                                source_line=line_of(text, exc.lineno)) from None
    except (ValueError, RecursionError) as exc:  # 4,300-digit integers, absurd nesting
        raise RuleAnalyzerError(f"invalid JSON: {str(exc)[:160]}", Location(name, 1, 1)) from None
    if not isinstance(doc, dict):
        raise RuleAnalyzerError("not a Terraform plan or state: the JSON is not an object",
                                Location(name, 1, 1))
    return doc


def _line(text: str, pattern: str) -> int:
    match = re.search(pattern, text)
    return text.count("\n", 0, match.start()) + 1 if match else 0


def check_version(doc: dict, text: str, name: str) -> None:
    """Refuse a format this reader does not know, located at its version."""
    if "format_version" in doc:
        version = str(doc["format_version"])
        if version.split(".")[0] not in FORMAT_MAJORS:
            line = _line(text, r'"format_version"')
            raise RuleAnalyzerError(
                f"Terraform JSON format_version {version!r} is not supported (known: 0.x, 1.x)",
                Location(name, line, 1), source_line=line_of(text, line) if line else None,
                hint="a new major version may change what the fields mean; "
                     "produce the file with a Terraform version that writes 1.x")
    elif "version" in doc and "resources" in doc:
        if doc["version"] not in STATE_VERSIONS:
            line = _line(text, r'"version"')
            raise RuleAnalyzerError(
                f"Terraform state version {doc['version']!r} is not supported (known: 4)",
                Location(name, line, 1), source_line=line_of(text, line) if line else None,
                hint="run `terraform show -json` with a current Terraform instead")
    else:
        raise RuleAnalyzerError(
            "not a Terraform plan or state: no format_version (terraform show -json) "
            "or version (terraform.tfstate)", Location(name, 1, 1))


class _Lines:
    """The line where each resource address first appears in the text."""

    def __init__(self, text: str):
        self.lines: dict[str, int] = {}
        line, last = 1, 0
        for match in re.finditer(r'"address"\s*:\s*"((?:[^"\\]|\\.)*)"', text):
            line += text.count("\n", last, match.start())
            last = match.start()
            self.lines.setdefault(match.group(1).replace('\\"', '"'), line)

    def __call__(self, address: str) -> int:
        return self.lines.get(address, 0)


def plan_sides(doc: dict, text: str, name: str) -> tuple[list[Resource], list[Resource]]:
    """The firewall resources before and after the plan (a state: the same
    resources on both sides)."""
    check_version(doc, text, name)
    lines = _Lines(text)
    config = _ConfigIndex(doc.get("configuration"))
    if "version" in doc and "resources" in doc and "format_version" not in doc:
        state = list(_raw_state(doc, name))
        return state, state
    if isinstance(doc.get("values"), dict) and "resource_changes" not in doc:
        state = list(_module_values(doc["values"].get("root_module"), name, lines, config))
        return state, state
    changes = doc.get("resource_changes")
    if isinstance(changes, list):
        before, after = [], []
        for i, rc in enumerate(changes):
            if not isinstance(rc, dict) or rc.get("mode", "managed") != "managed" \
                    or rc.get("type") not in FIREWALL_TYPES:
                continue
            change = rc.get("change") if isinstance(rc.get("change"), dict) else {}
            address = str(rc.get("address", f"resource_changes[{i}]"))
            module = str(rc.get("module_address") or "")
            loc = Location(name, lines(address), 0, path=address)
            expressions = config.expressions(module, address)

            def unknown_at(path, address=address, expressions=expressions):
                return _unknown(address, expressions, path)

            if isinstance(change.get("before"), dict):
                before.append(Resource(rc["type"], address, change["before"], loc,
                                       _prefix(module)))
            if isinstance(change.get("after"), dict) or change.get("after_unknown") is True:
                values = merge_unknown(change.get("after") or {}, change.get("after_unknown"),
                                       [], unknown_at)
                values = _with_references(_computed_blocks(rc["type"], values, expressions),
                                          expressions, config)
                after.append(Resource(rc["type"], address, values, loc, _prefix(module)))
        return before, after
    planned = doc.get("planned_values", {}).get("root_module") \
        if isinstance(doc.get("planned_values"), dict) else None
    prior = doc.get("prior_state", {}).get("values", {}).get("root_module") \
        if isinstance(doc.get("prior_state"), dict) else None
    return (list(_module_values(prior, name, lines, config)),
            list(_module_values(planned, name, lines, config)))


def _prefix(module_address: str) -> str:
    return f"{module_address}." if module_address else ""


def _module_values(module: Any, name: str, lines: _Lines, config: "_ConfigIndex"
                   ) -> Iterator[Resource]:
    if not isinstance(module, dict):
        return
    prefix = str(module.get("address") or "")
    for r in module.get("resources") or []:
        if not isinstance(r, dict) or r.get("mode", "managed") != "managed" \
                or r.get("type") not in FIREWALL_TYPES or not isinstance(r.get("values"), dict):
            continue
        address = str(r.get("address"))
        values = _with_references(r["values"], config.expressions(prefix, address), config)
        yield Resource(r["type"], address, values, Location(name, lines(address), 0, path=address),
                       _prefix(prefix))
    for child in module.get("child_modules") or []:
        yield from _module_values(child, name, lines, config)


def _raw_state(doc: dict, name: str) -> Iterator[Resource]:
    for r in doc.get("resources") or []:
        if not isinstance(r, dict) or r.get("mode") != "managed" or r.get("type") not in FIREWALL_TYPES:
            continue
        module = str(r.get("module") or "")
        base = f"{_prefix(module)}{r['type']}.{r.get('name')}"
        for inst in r.get("instances") or []:
            if not isinstance(inst, dict) or not isinstance(inst.get("attributes"), dict):
                continue
            key = inst.get("index_key")
            address = base + ("" if key is None else f"[{json.dumps(key)}]")
            yield Resource(r["type"], address, inst["attributes"], Location(name, 0, 0, path=address),
                           _prefix(module))


# ---------------------------------------------------------------------------
# Unknown values and the configuration's references
# ---------------------------------------------------------------------------


def merge_unknown(after: Any, unknown: Any, path: list, make) -> Any:
    """``after`` with every position ``after_unknown`` marks ``true``
    replaced by ``make(path)`` (an Unknown)."""
    if unknown is True:
        return make(path)
    if isinstance(unknown, dict):
        out = dict(after) if isinstance(after, dict) else {}
        for key, sub in unknown.items():
            if sub is True or isinstance(sub, (dict, list)):
                out[key] = merge_unknown(out.get(key), sub, path + [key], make)
        return out
    if isinstance(unknown, list):
        out = list(after) if isinstance(after, list) else []
        for i, sub in enumerate(unknown):
            if i < len(out):
                out[i] = merge_unknown(out[i], sub, path + [i], make)
            elif sub is True:
                out.append(make(path + [i]))
        return out
    return after


def _unknown(address: str, expressions: dict | None, path: list) -> Unknown:
    refs: list[str] = []
    node: Any = expressions
    for step in path:
        if isinstance(node, dict) and isinstance(node.get("references"), list):
            refs = node["references"]
        if isinstance(node, dict) and isinstance(step, str):
            node = node.get(step)
        elif isinstance(node, list) and isinstance(step, int) and step < len(node):
            node = node[step]
        else:
            break
    if isinstance(node, dict) and isinstance(node.get("references"), list):
        refs = node["references"]
    refs = [str(r) for r in refs]
    dotted = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
    expr = refs[0] if refs else f"{address}{dotted}"
    return Unknown(expr, tuple(refs), why="known after apply")


#: Attributes that link a rule to its group, ACL or NSG.
_LINKS = ("security_group_id", "network_acl_id", "network_security_group_name",
          "network_security_group_id", "source_security_group_id",
          "referenced_security_group_id", "subnet_id", "network_interface_id", "network")


#: Block lists Terraform computes when the configuration does not write
#: them (Optional + Computed, "attributes as blocks"): a plan shows them as
#: unknown, yet Terraform empties them — it removes AWS's default egress
#: rule and an adopted default group's or ACL's rules (hashicorp/aws
#: ``aws_security_group``, ``aws_default_security_group``,
#: ``aws_default_network_acl``); rules added by separate rule resources are
#: read from those resources.
COMPUTED_BLOCKS = {
    "aws_security_group": ("ingress", "egress"),
    "aws_default_security_group": ("ingress", "egress"),
    "aws_network_acl": ("ingress", "egress"),
    "aws_default_network_acl": ("ingress", "egress"),
    "azurerm_network_security_group": ("security_rule",),
}


def _computed_blocks(kind: str, values: dict, expressions: dict | None) -> dict:
    """Unknown attributes the configuration does not write are the
    provider's computed values (ids, a rule's unset source group): not
    conditions the user wrote. Without a configuration block, only the
    computed block lists above are known to be emptied."""
    if expressions:
        return {k: v for k, v in values.items()
                if not (isinstance(v, Unknown) and k not in expressions)}
    out = values
    for key in COMPUTED_BLOCKS.get(kind, ()):
        if isinstance(values.get(key), Unknown):
            out = {**out, key: []}
    return out


def _with_references(values: dict, expressions: dict | None, config: "_ConfigIndex") -> dict:
    """Give a known link attribute (an id in the state) the references of
    its expression too, so it links to a group whose id the plan left out;
    a module output is followed to what it refers to."""
    if not expressions:
        return values
    out = dict(values)
    for key in _LINKS:
        expr = expressions.get(key)
        refs = expr.get("references") if isinstance(expr, dict) else None
        refs = config.follow(refs) if refs else refs
        value = out.get(key)
        if isinstance(value, Unknown) and (refs or value.refs):
            out[key] = Unknown(value.expr, tuple(config.follow(list(value.refs) or refs)),
                               value.why)
        elif refs and value in (None, ""):
            out[key] = Unknown(refs[0], tuple(refs), "known after apply")
    return out


class _ConfigIndex:
    """Each resource's configuration ``expressions``, by module path (indexes
    dropped) and module-relative address (index dropped)."""

    def __init__(self, configuration: Any):
        self.by_key: dict[tuple[str, str], dict] = {}
        self.outputs: dict[str, list[str]] = {}
        root = configuration.get("root_module") if isinstance(configuration, dict) else None
        self._walk(root, "")

    def _walk(self, module: Any, prefix: str) -> None:
        if not isinstance(module, dict):
            return
        for r in module.get("resources") or []:
            if isinstance(r, dict) and isinstance(r.get("expressions"), dict):
                self.by_key[(prefix, str(r.get("address")))] = r["expressions"]
        for output, spec in (module.get("outputs") or {}).items():
            expr = spec.get("expression") if isinstance(spec, dict) else None
            refs = expr.get("references") if isinstance(expr, dict) else None
            if refs and prefix:
                self.outputs[f"{prefix}{output}"] = [f"{prefix}{r}" for r in refs]
        for call_name, call in (module.get("module_calls") or {}).items():
            if isinstance(call, dict):
                self._walk(call.get("module"), f"{prefix}module.{call_name}.")

    def follow(self, refs: list) -> list[str]:
        """References with module outputs replaced by what they refer to."""
        out: list[str] = []
        for ref in map(str, refs):
            out += self.outputs.get(ref, []) + [ref]
        return out

    def expressions(self, module_address: str, address: str) -> dict | None:
        module = re.sub(r"\[[^\]]*\]", "", module_address)
        prefix = f"{module}." if module else ""
        relative = address[len(module_address) + 1:] if module_address and \
            address.startswith(module_address + ".") else address
        relative = re.sub(r"\[[^\]]*\]$", "", relative)
        return self.by_key.get((prefix, relative))
