"""``diff plan.json``: the change impact of a Terraform plan, read from the
plan alone.

A plan holds every resource before and after (``resource_changes[].change``),
so both versions come from one file: each security group, network ACL, GCP
target and NSG is diffed on its own (they are separate firewalls), named by
its Terraform resource address. A firewall the plan creates is compared
with the same firewall without rules (a new group denies everything until
its rules exist); one it destroys with that empty firewall too.

    >>> reports = diff_plan("plan.json")                    # doctest: +SKIP
    >>> [(r.new_name, len(r.opened)) for r in reports]      # doctest: +SKIP
    [('plan.json: aws_security_group.web', 1)]
"""

from __future__ import annotations

import os

from .diff import DiffReport, FindingChanges, diff
from .loader import DEFAULT_MAX_BYTES, read_text
from .model import Ruleset, Table
from .parsers import terraform_plan
from .targets import cloud_units, copy_table


def plan_rulesets(path: str | os.PathLike, max_bytes: int = DEFAULT_MAX_BYTES
                  ) -> tuple[Ruleset, Ruleset]:
    """The rulesets before and after the plan in ``path``."""
    name = str(path)
    text = read_text(path, max_bytes)
    doc = terraform_plan.load_json(text, name)
    before, after = terraform_plan.plan_sides(doc, text, name)
    return terraform_plan.build_ruleset(before, name), terraform_plan.build_ruleset(after, name)


def diff_plan(path: str | os.PathLike, hooks=("input", "output"), *, findings: bool = True,
              connections: bool = True, max_bytes: int = DEFAULT_MAX_BYTES) -> list[DiffReport]:
    """One report per firewall the plan changes (unchanged ones are skipped)."""
    old, new = plan_rulesets(path, max_bytes)
    return diff_units(old, new, str(path), hooks, findings=findings, connections=connections)


def diff_units(old: Ruleset, new: Ruleset, name: str, hooks, *, findings: bool = True,
               connections: bool = True, names: tuple[str, str] | None = None) -> list[DiffReport]:
    """Diff two cloud rulesets firewall by firewall (matched by label);
    ``names``: how each side is named when they differ (``diff --git``:
    ``REV:infra/sg``, ``working tree:infra/sg``; default ``name`` and
    ``(before)``)."""
    before = dict(cloud_units(old)) if old.tables else {}
    after = dict(cloud_units(new)) if new.tables else {}
    reports = []
    for label in dict.fromkeys([*before, *after]):
        a, b = before.get(label), after.get(label)
        if a is not None and b is not None and _signature(a) == _signature(b):
            continue
        what, alone = "", None
        if a is None:
            a, what, alone = _emptied(b), " (created)", b
        elif b is None:
            b, what, alone = _emptied(a), " (destroyed)", a
        report = diff(a, b, hooks, findings=findings and alone is None, connections=connections,
                      old_name=f"{names[0]}: {label}" if names else f"{name}: {label} (before)",
                      new_name=f"{names[1] if names else name}: {label}{what}")
        if findings and alone is not None:
            report.findings = _findings_of(alone, created=alone is b)
        reports.append(report)
    return reports


def _findings_of(ruleset: Ruleset, created: bool) -> FindingChanges:
    """A firewall the plan creates brings all its findings, one it destroys
    takes all of them away: the empty stand-in on the other side is no
    firewall to audit."""
    from .audit import audit  # the catalogue, as diff.finding_changes imports it

    try:
        found = audit(ruleset)
    except Exception as exc:  # noqa: BLE001 - as finding_changes: the verdict diff stands
        return FindingChanges(error=f"audit failed: {type(exc).__name__}: {exc}")
    return FindingChanges(introduced=found) if created else FindingChanges(resolved=found)


def _signature(ruleset: Ruleset) -> tuple:
    return tuple((t.name, tuple((c.name, c.policy, tuple((r.matches, r.action) for r in c.rules))
                                for c in t.chains.values())) for t in ruleset.tables)


def _emptied(ruleset: Ruleset) -> Ruleset:
    """The same firewall with none of its written rules (implicit ones stay)."""
    tables: list[Table] = [copy_table(t, keep=lambda r: r if r.implicit else None)
                           for t in ruleset.tables]
    return Ruleset(tables=tables, sources=list(ruleset.sources), meta=dict(ruleset.meta))
