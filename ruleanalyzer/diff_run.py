"""``ruleanalyzer diff`` as one Python call.

:func:`run_diff` finds the two versions to compare — two files (or
directories), a Terraform plan, or the changed files at git revisions
(each Terraform module and firewalld configuration directory as a whole) —
compares them with :func:`ruleanalyzer.diff.diff`, and checks the new
version against the policy and the real flows it is given. The command
line only renders what it returns.

    >>> run = run_diff(["old.v4", "new.v4"], flows="conntrack.txt")   # doctest: +SKIP
    >>> [len(r.opened) for r in run.reports], run.exit_code("opened")  # doctest: +SKIP
    ([1], 1)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .diff import DiffReport, diff
from .errors import RuleAnalyzerError
from .loader import DEFAULT_MAX_BYTES, input_name, load, read_text

#: ``fail_on`` values of :meth:`DiffRun.exit_code`.
FAIL_ON = ("any", "opened", "never")


@dataclass
class DiffRun:
    """What ``diff`` found: one report per pair of firewalls compared."""

    reports: list[DiffReport] = field(default_factory=list)
    #: Was the comparison between git revisions (several configurations)?
    git: bool = False

    def exit_code(self, fail_on: str = "any") -> int:
        """0, or 1 when a policy assertion fails or (``fail_on``) any verdict
        changed / traffic is newly allowed; ``never``: only the policy."""
        if any(r.policy for r in self.reports):
            return 1
        if fail_on == "never":
            return 0
        if fail_on == "opened":
            return int(any(r.newly_allowed for r in self.reports))
        return int(any(r.verdicts_changed for r in self.reports))


def run_diff(files: Sequence[str], *, git: str | None = None, dialect: str | None = None,
             target: str | None = None, hooks: Sequence[str] = ("input", "forward", "output"),
             findings: bool = True, connections: bool = True, flows: str | None = None,
             policy: str | None = None, max_bytes: int = DEFAULT_MAX_BYTES, table: str | None = None,
             firewalld_version: str | None = None,
             note: Callable[[str], None] | None = None) -> DiffRun:
    """Compare two versions of a firewall, as ``ruleanalyzer diff`` does.

    ``files``: OLD NEW; one Terraform plan (before and after come from it);
    or, with ``git`` (``REV`` against the working tree, or ``A..B``), the
    files to compare (default: the changed ones). ``target`` names one
    firewall of a cloud input; without it a Terraform module's or plan's
    security groups, ACLs and NSGs are compared one by one. ``policy``: a
    YAML file with a ``policy:`` section (default: the nearest
    ``.ruleanalyzer.yaml``); ``flows``: real flows (``conntrack -L``, AWS
    VPC flow logs) to check against the change. ``firewalld_version``
    picks the layout firewalld directories compile to (default: the
    config's ``firewalld-version``, else firewalld's default). ``note``
    receives what a user should know that is not a result (a revision
    that was resolved, nothing to compare, a policy not checked)."""
    from . import policy as policies
    from .parsers import firewalld

    note = note or (lambda _text: None)
    firewalld_version = firewalld_version or _configured_firewalld_version()
    assertions = policies.load_policy(policy)
    run = DiffRun(git=bool(git))
    with firewalld.version_for_files(firewalld_version):
        if git:
            pairs, units = _git_pairs(git, list(files), dialect, target, max_bytes, table, note)
        elif len(files) == 2:
            old_path, new_path = files
            pairs = [(_target(load(old_path, dialect=dialect, max_bytes=max_bytes, table=table), target),
                      _target(load(new_path, dialect=dialect, max_bytes=max_bytes, table=table), target),
                      input_name(old_path), input_name(new_path))]
            units = []
        elif len(files) == 1 and _is_plan(files[0], dialect, max_bytes):
            from .plan_diff import plan_rulesets

            old, new = plan_rulesets(files[0], max_bytes)
            pairs, units = [], [(_target(old, target), _target(new, target), files[0], files[0])]
        else:
            raise RuleAnalyzerError("diff needs OLD NEW, a Terraform plan (diff plan.json), "
                                    "or --git REV [FILES...]")
    if units:
        from .plan_diff import diff_units

        for old, new, old_name, new_name in units:
            run.reports += diff_units(old, new, old_name, hooks, findings=findings, connections=connections,
                                      names=(old_name, new_name) if git else None)
        if (assertions or flows) and run.reports:
            what = " and ".join(w for w, given in (("the policy", assertions), ("the flows", flows)) if given)
            how = "name one of them with --target" if git else "compare the module with --git --target NAME"
            note(f"{what} not checked: the change's cloud firewalls are compared one by one; "
                 f"to check {what}, {how}")
    if git and not pairs and not run.reports:
        note("nothing to compare: no changed file is a rule file, or the changed configurations' "
             "firewalls are the same rule for rule")
    for old, new, old_name, new_name in pairs:
        report = diff(old, new, hooks, findings=findings, connections=connections,
                      old_name=old_name, new_name=new_name)
        report.policy = policies.check(new, assertions) if assertions else []
        if flows:
            from .flows import compare_flows, read_flows

            records = read_flows(read_text(flows, max_bytes), flows)
            default_hook = hooks[0] if len(hooks) == 1 else ("auto" if new.host is not None else "input")
            report.flows = compare_flows(old, new, records, default_hook, flows)
        run.reports.append(report)
    return run


def _git_pairs(spec: str, files: list[str], dialect, target, max_bytes, table, note):
    """The pairs to compare between two revisions, and the Terraform
    modules whose cloud firewalls are compared one by one."""
    from . import gitfiles

    old_spec, new_spec = gitfiles.split_range(spec)
    old_rev, old_note = gitfiles.resolve(old_spec)
    new_rev, new_note = gitfiles.resolve(new_spec) if new_spec else (None, None)
    for text in (old_note, new_note):
        if text:
            note(text)
    paths = files or gitfiles.with_includers(gitfiles.changed_files(old_rev, new_rev))
    # a file of a Terraform module or firewalld directory: the whole directory, both sides
    groups = gitfiles.config_groups(paths, [old_rev, new_rev], dialect, named=bool(files))
    pairs, units = [], []
    for kind, group in groups:
        try:
            pair = (gitfiles.load_group(old_rev, kind, group, dialect, max_bytes, table),
                    gitfiles.load_group(new_rev, kind, group, dialect, max_bytes, table),
                    gitfiles.side_name(old_spec, old_rev, [group] if kind else group, "added"),
                    gitfiles.side_name(new_spec, new_rev, [group] if kind else group, "deleted"))
        except RuleAnalyzerError:
            if files or kind:
                raise
            continue  # without named files, changed files that are not rule files are skipped
        # a module's security groups, ACLs, NSGs: each its own firewall, as in a plan
        if kind and not target and gitfiles.is_cloud(*pair[:2]):
            units.append(pair)
        else:
            pairs.append((_target(pair[0], target), _target(pair[1], target), *pair[2:]))
    return pairs, units


def _is_plan(path: str, dialect: str | None, max_bytes: int) -> bool:
    if dialect:
        return dialect == "terraform-plan"
    from .parsers import sniff

    return sniff(read_text(path, max_bytes), path) == "terraform-plan"


def _target(ruleset, target: str | None):
    """The firewall ``target`` names (required when a cloud input holds several)."""
    from .targets import select_target

    return select_target(ruleset, target)


def _configured_firewalld_version() -> str | None:
    """The nearest config file's ``firewalld-version``, if it has one."""
    from .config import find_config, load_config

    path = find_config()
    return load_config(path).firewalld_version if path is not None else None
