"""``audit``: run the catalogue of checks over rulesets or files.

    >>> from ruleanalyzer import loads
    >>> from ruleanalyzer.audit import audit
    >>> rs = loads("*filter\\n:INPUT ACCEPT [0:0]\\n-A INPUT -j DROP\\n"
    ...            "-A INPUT -p tcp --dport 22 -j ACCEPT\\nCOMMIT\\n", dialect="iptables")
    >>> [f.code for f in audit(rs, select=["RA5"])]
    ['RA504']

Files are analysed one ruleset per file, except groups given together
(``rules.v4`` + ``rules.v6``); a cloud export holding several security
groups, ACLs or NSGs is audited one of them at a time. A file that cannot be
read or parsed becomes an RA001 finding and the others are still audited.
Suppressions (inline directives and config entries) are applied last;
unused ones become RA901 findings.
"""

from __future__ import annotations

import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from . import checks, loader, parsers
from .checks.base import AnalysisTimeout, Context, Finding, Where, severity_rank, time_limit
from .checks.grouping import group
from .checks.meta import CheckFailed, UnreadableInput
from .checks.reach import UntoldFinding
from .checks.suppress import apply as apply_suppressions
from .checks.suppress import from_config, parse_inline
from .config import Config
from .errors import RuleAnalyzerError
from .fixes import render as render_fix
from .fixes.bridge import derive as derive_fix
from .loader import DEFAULT_MAX_BYTES, input_name, load
from .model import Location, Ruleset
from .hosts import host_groups, included_files
from .origins import is_stock_noise, recognise
from .parsers.terraform import given_trees

#: Files a directory walk skips: documentation and indexes, not rule files.
SKIPPED_SUFFIXES = (".md", ".rst", ".tsv", ".orig", ".rej")


@dataclass
class AuditResult:
    """Everything one audit run found, for renderers and the exit code."""

    findings: list[Finding] = field(default_factory=list)
    suppressed: list[Finding] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    bad_inputs: list[str] = field(default_factory=list)
    rule_count: int = 0
    seconds: float = 0.0
    codes: list[str] = field(default_factory=list)
    #: Findings about a tool's stock scaffolding left out (``include_generated``),
    #: grouped; a dead stock rule's finding is not among them (its story is
    #: not worked out, :attr:`Context.untold`), only counted in ``generated_hidden``.
    generated: list[Finding] = field(default_factory=list)
    #: How many findings about a tool's stock scaffolding were left out,
    #: counted before grouping (``include_generated`` shows them grouped by cause).
    generated_hidden: int = 0
    #: Groups of files audited as one host (each a list of paths).
    hosts: list[list[str]] = field(default_factory=list)
    #: A fleet audit's summary (:func:`ruleanalyzer.fleet.audit_fleet`).
    fleet: dict | None = None
    #: Fleet audits: config suppression entries (by index) its hosts used.
    used_config: list[int] = field(default_factory=list)
    #: Files found in a directory walk that are not rule files (README,
    #: LICENSE, scripts): skipped, told in one line.
    skipped: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.findings:
            out[f.code] = out.get(f.code, 0) + 1
        return dict(sorted(out.items()))

    def exit_code(self, fail_on: str = "warning") -> int:
        """2 when every input was unreadable, 1 when a finding is at or above
        ``fail_on``, else 0."""
        if self.inputs and len(self.bad_inputs) == len(self.inputs):
            return 2
        if fail_on == "never":
            return 0
        limit = severity_rank(fail_on)
        return 1 if any(severity_rank(f.severity) <= limit for f in self.findings) else 0


def expand_paths(paths: Iterable[str | os.PathLike],
                 refused: list[tuple[str, RuleAnalyzerError]] | None = None) -> list[str]:
    """Files named, and every file under directories named (sorted, hidden
    files and documentation skipped). Links inside a directory are not
    followed out of it: a link to a file outside it, or to a directory
    outside it, is not read but added to ``refused`` (with the error saying
    why) when given; a link to a file inside is read as that file."""
    from .snapshot import MANIFEST

    out: list[str] = []
    for p in paths:
        path = Path(p)
        if path.is_dir() and (path / MANIFEST).is_file():
            out.append(str(path))  # a host snapshot: one unit
        elif path.is_dir() and _is_config_dir(path):
            out.append(str(path))  # one firewall's configuration: one unit
        elif path.is_dir():
            out += _walk(path, refused)
        else:
            out.append(str(path))
    return out


def _walk(path: Path, refused: list | None) -> list[str]:
    """The files of directory ``path`` for an audit (see :func:`expand_paths`)."""
    from .loader import is_inside, refuse_escape
    from .snapshot import MANIFEST

    root = os.path.realpath(path)
    files: list[str] = []
    snapshots: list[str] = []
    for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
        rel = Path(dirpath).relative_to(path).parts
        if any(part.startswith(".") for part in rel):
            dirnames[:] = []
            continue
        if MANIFEST in filenames and rel:
            snapshots.append(dirpath)  # a host snapshot directory inside is one input
            dirnames[:] = []
            continue
        for name in sorted(dirnames):
            full = os.path.join(dirpath, name)
            if os.path.islink(full) and not name.startswith(".") \
                    and not is_inside(os.path.realpath(full), root) and refused is not None:
                try:
                    refuse_escape(full, root)
                except RuleAnalyzerError as exc:
                    refused.append((full, exc))
        for name in filenames:
            full = os.path.join(dirpath, name)
            if name.startswith(".") or Path(name).suffix.lower() in SKIPPED_SUFFIXES:
                continue
            if os.path.islink(full):
                real = os.path.realpath(full)
                if not is_inside(real, root):
                    try:
                        refuse_escape(full, root)
                    except RuleAnalyzerError as exc:
                        if refused is not None:
                            refused.append((full, exc))
                    continue
                if not os.path.isfile(real):
                    continue
                full = os.path.join(str(path), os.path.relpath(real, root))  # read as the file it names
            files.append(full)
    return sorted(dict.fromkeys(_terraform_units(files) + snapshots))


def _is_config_dir(path: Path) -> bool:
    from .parsers.firewalld import is_config_dir

    return is_config_dir(path)


def _terraform_units(files: list[str]) -> list[str]:
    """``files`` with each directory of ``.tf`` files that forms one module
    as one Terraform configuration (its ``.tf``/``.tfvars`` files replaced by
    the directory); a module directory another one calls is read through its
    caller, and a folder of unrelated examples stays file by file."""
    from .parsers.terraform import is_one_configuration, root_modules

    dirs = sorted({str(Path(f).parent) for f in files if f.endswith(".tf")})
    configs = {d for d in dirs if is_one_configuration(d)}
    if not configs:
        return files
    kept = [f for f in files if not (Path(f).suffix in (".tf", ".tfvars") and str(Path(f).parent) in configs)]
    return kept + [str(d) for d in root_modules(sorted(configs))]


def split_units(ruleset: Ruleset) -> list[Ruleset]:
    """One ruleset per cloud security group / ACL / NSG / GCP target (they
    are separate firewalls; see :func:`ruleanalyzer.targets.cloud_units`);
    a non-cloud ruleset stays whole."""
    from .targets import cloud_units

    return [unit for _label, unit in cloud_units(ruleset)]


def check_ruleset(ruleset: Ruleset, codes: list[str], options: dict[str, dict] | None = None,
                  ctx: Context | None = None, interfaces: dict | None = None) -> list[Finding]:
    """Findings of the checks ``codes`` on one ruleset, before suppressions.
    A crashing check becomes an RA003 finding instead of aborting. ``ctx``
    lets a caller keep the analyses for its own questions; ``interfaces``:
    configured interface roles (see :mod:`ruleanalyzer.roles`)."""
    from .space.packetset import cyclic_gc_paused

    ctx = ctx or Context(ruleset, interfaces)
    findings: list[Finding] = []
    registry = checks.registry()
    done: list[str] = []
    abandoned: list[str] = []
    try:
        # BDD work: the collector must not run inside dd (space.packetset.cyclic_gc_paused)
        with time_limit(ctx.audit_seconds), cyclic_gc_paused():
            _run_checks(ruleset, codes, options, ctx, registry, findings, done)
    except AnalysisTimeout:
        abandoned = [c for c in codes if c not in done]
    if abandoned:
        where = Where(ruleset.sources[0] if ruleset.sources else None)
        findings.append(Finding("RA003", CheckFailed.name, "error",
                                f"the checks of this ruleset took longer than {ctx.audit_seconds:g} s: "
                                f"{', '.join(abandoned)} abandoned (Context.audit_seconds)", where))
    if "RA003" in codes:
        where = Where(ruleset.sources[0] if ruleset.sources else None)
        findings += [Finding("RA003", CheckFailed.name, "error", message, where)
                     for message in ctx.failures]
    return findings


def _run_checks(ruleset, codes, options, ctx, registry, findings: list[Finding], done: list[str]) -> None:
    """Run the checks ``codes`` into ``findings``, each code added to
    ``done`` when it finished (AnalysisTimeout goes through: the ruleset's
    time budget ran out)."""
    for code in codes:
        check = registry[code]((options or {}).get(code))
        try:
            for f in check.run(ctx):
                f.fix = render_fix(derive_fix(f, ruleset), meta=ruleset.meta,  # in the input's language
                                   default=ctx.dialect)
                findings.append(f)
        except AnalysisTimeout:
            raise
        except (RecursionError, MemoryError, Exception) as exc:  # noqa: BLE001 - a bug must not stop the audit
            if ctx.out_of_space(exc):
                continue  # the limit is reported once, with the analysis failures
            where = Where(ruleset.sources[0] if ruleset.sources else None)
            tb = traceback.extract_tb(exc.__traceback__)[-1]
            findings.append(Finding("RA003", CheckFailed.name, "error",
                                    f"check {code} crashed: {type(exc).__name__}: {exc} "
                                    f"(at {Path(tb.filename).name}:{tb.lineno})", where))
        done.append(code)


def _settings(config: Config | None, select, ignore) -> tuple[list[str], dict]:
    config = config or Config()
    sel = select if select is not None else config.select
    ign = [*(config.ignore or []), *(ignore or [])]
    try:
        codes = checks.select(sel, ign)
    except ValueError as exc:
        raise RuleAnalyzerError(str(exc), hint="see `ruleanalyzer rules` for the codes") from None
    return codes, {checks.resolve(k): v for k, v in config.options.items()}


def run_audit(inputs: Iterable[str | os.PathLike | Ruleset], *, select: list[str] | None = None,
              ignore: list[str] | None = None, config: Config | None = None,
              dialect: str | None = None, together: list[list[str]] | None = None,
              max_bytes: int = DEFAULT_MAX_BYTES, include_generated: bool = False,
              hosts: bool = True, progress: Callable[[int, int, str], None] | None = None,
              jobs: int | None = None, dask_scheduler=None, host_timeout: float = 600.0,
              firewalld_version: str | None = None, table: str | None = None) -> AuditResult:
    """Audit rulesets and/or files (directories expand to their files).

    ``together`` lists groups of files that describe one firewall; with
    ``hosts`` the files that form one host by their names are grouped too
    (:mod:`ruleanalyzer.hosts`), and files an nft ruleset includes are not
    audited again alone.
    Findings of the hygiene families (RA1xx, RA5xx) about a tool's stock
    scaffolding (:mod:`ruleanalyzer.origins`) are left out unless
    ``include_generated``; they are counted in ``AuditResult.generated_hidden``
    (a dead stock rule's story is then not worked out: nothing shows it).
    ``progress(done, total, name)`` is called after each unit.
    Two or more host snapshots among the inputs are audited as a fleet
    (:mod:`ruleanalyzer.fleet`: ``jobs`` worker processes, or one task per
    host on ``dask_scheduler``), and ``AuditResult.fleet`` holds the summary."""
    start = time.perf_counter()
    codes, options = _settings(config, select, ignore)
    result = AuditResult(codes=codes)
    units: list[tuple[str, object]] = []
    grouped = {str(Path(f)) for g in together or [] for f in g}
    for g in together or []:
        units.append((" + ".join(g), [str(Path(f)) for f in g]))
    inputs = list(inputs)
    loose = [i for i in inputs if isinstance(i, Ruleset)]
    named = [str(i) for i in inputs if not isinstance(i, Ruleset)]
    refused: list[tuple[str, RuleAnalyzerError]] = []
    paths = [p for p in expand_paths(named, refused) if str(Path(p)) not in grouped]
    # files a directory walk found (not named): skipped when they are no rule file
    walked = set(paths) - set(named)
    fleet = _fleet(paths, codes, options, config, max_bytes, include_generated, jobs, dask_scheduler,
                   host_timeout, progress)
    if fleet is not None:
        paths = [p for p in paths if p not in set(fleet.inputs)]
    if hosts:
        for g in host_groups(paths):
            units.append((" + ".join(g), g))
            result.hosts.append(g)
            grouped.update(str(Path(f)) for f in g)
    units += [(input_name(p), [p]) for p in paths if str(Path(p)) not in grouped]
    units += [(rs.sources[0] if rs.sources else "<ruleset>", rs) for rs in loose]
    unreadable = UnreadableInput()
    findings: list[Finding] = []
    suppressions = from_config(config.suppress, config.source) if config else []
    for i in fleet.used_config if fleet is not None else ():
        suppressions[i].used.add("fleet")  # it silenced a finding on a host of the fleet
    known = set(checks.registry())
    included: set[str] = set()
    for name, exc in refused:  # links leading out of a directory named: not read
        result.inputs.append(name)
        result.bad_inputs.append(name)
        if "RA001" in codes:
            findings.append(unreadable.from_error(exc, name))
    for n, (name, what) in enumerate(units, 1):
        if not isinstance(what, Ruleset) and len(what) == 1 and what[0] in included:
            continue  # audited with the ruleset that includes it
        result.inputs.append(name)
        if isinstance(what, Ruleset):
            ruleset = what
        else:
            try:
                try:  # local Terraform modules may be read from any directory named here
                    with given_trees([i for i in inputs if not isinstance(i, Ruleset)]):
                        ruleset = load(*what, dialect=dialect, max_bytes=max_bytes,
                                       firewalld_version=firewalld_version
                                       or (config.firewalld_version if config else None), table=table)
                except (RuleAnalyzerError, RecursionError, KeyboardInterrupt):
                    raise
                except Exception as exc:  # noqa: BLE001 - a reader's bug: this input only, the rest goes on
                    raise RuleAnalyzerError(f"could not be read ({type(exc).__name__}: {exc}); "
                                            "please report this", Location(what[0])) from None
            except RuleAnalyzerError as exc:
                if len(what) == 1 and what[0] in walked and _not_a_rule_file(exc):
                    result.inputs.pop()
                    result.skipped.append(name)
                    continue
                result.bad_inputs.append(name)
                if "RA001" in codes:
                    findings.append(unreadable.from_error(exc, what[0]))
                if progress:
                    progress(n, len(units), name)
                continue
        result.rule_count += ruleset.rule_count
        if hosts and not isinstance(what, Ruleset):
            inner = included_files(ruleset)
            if inner:
                included |= inner
                result.hosts.append(list(what) + sorted(inner))
        from .space.packetset import cyclic_gc_paused

        # the readers' caches serve reading and the kept texts only frames:
        # their memory goes to the analyses (the audit's peak is theirs)
        parsers.forget_caches()
        loader.pack_texts([ruleset])
        # (the analyses are released before the collector runs again: Context.release)
        with cyclic_gc_paused():
            found, inline, ctx = ruleset_findings(ruleset, codes, options, known,
                                                  config.interfaces if config else None,
                                                  hidden=None if include_generated else suppressions)
            if ctx is not None:
                ctx.release()
            del ctx
        suppressions += inline
        findings += found
        if progress:
            progress(n, len(units), name)
    result.findings, result.suppressed, result.generated, result.generated_hidden = settle_findings(
        findings, suppressions, codes, include_generated)
    if fleet is not None:  # its hosts' findings were settled host by host
        result.findings = sorted(result.findings + fleet.findings, key=Finding.sort_key)
        result.inputs = fleet.inputs + result.inputs
        result.bad_inputs = fleet.bad_inputs + result.bad_inputs
        result.rule_count += fleet.rule_count
        result.fleet = fleet.fleet
    result.seconds = time.perf_counter() - start
    return result


def _not_a_rule_file(exc: RuleAnalyzerError) -> bool:
    """The error says the file is no firewall's (prose, a script, binary)."""
    return exc.message.startswith(("cannot tell which firewall dialect", "binary data",
                                   "the file is empty", "not UTF-8 text"))


def _fleet(paths, codes, options, config, max_bytes, include_generated, jobs, dask_scheduler,
           host_timeout, progress):
    """The fleet part of an audit: the host snapshots among ``paths`` when
    there are two or more (or a Dask scheduler is named), else None."""
    from .snapshot import is_snapshot

    snapshots = [p for p in paths if is_snapshot(p)]
    if len(snapshots) < 2 and not (dask_scheduler and snapshots):
        return None
    from .fleet import audit_fleet

    return audit_fleet(snapshots, codes=codes, options=options,
                       suppress=config.suppress if config else None,
                       config_source=config.source if config else None, max_bytes=max_bytes,
                       jobs=jobs, dask_scheduler=dask_scheduler, host_timeout=host_timeout,
                       progress=progress, include_generated=include_generated)


def ruleset_findings(ruleset: Ruleset, codes: list[str], options: dict, known: set[str],
                     interfaces: dict | None = None, hidden: list | None = None):
    """``(findings, inline suppressions, context)`` of one ruleset, before
    suppressions are applied; the context is the last unit's (a host's
    analyses, for a caller's own questions). ``interfaces``: configured
    interface roles. ``hidden``: stock findings are only counted (not
    ``include_generated``), these suppressions (besides the ruleset's
    inline ones) in force: a dead stock rule none of them names gets an
    :class:`~ruleanalyzer.checks.reach.UntoldFinding` (:func:`untold_rules`)."""
    recognise(ruleset)
    inline, invalid = parse_inline(ruleset, known)
    findings = [f for f in invalid if "RA902" in codes]
    ctx = None
    per_unit = []
    units = split_units(ruleset)
    for unit in units:
        if ctx is not None:
            ctx.release()  # only the last unit's analyses are handed back
        ctx = Context(unit, interfaces)
        # (a cloud file's units: their findings about one rule are merged by code and place)
        if hidden is not None and len(units) == 1 and set(DEAD_RULE_CODES) <= set(codes):
            ctx.untold = untold_rules([*hidden, *inline])
        per_unit.append(check_ruleset(unit, codes, options, ctx))
    return findings + _across_units(per_unit), inline, ctx


def settle_findings(findings: list[Finding], suppressions: list, codes: list[str],
                    include_generated: bool):
    """``(kept, suppressed, generated, hidden)``: suppressions applied
    (unused ones become RA901), stock-scaffolding findings set aside unless
    ``include_generated`` (``hidden`` counts them before grouping, the
    untold ones too), findings of one cause grouped, sorted."""
    untold = [f for f in findings if isinstance(f, UntoldFinding)]  # (no suppression names them)
    if untold:
        findings = [f for f in findings if not isinstance(f, UntoldFinding)]
    kept, suppressed, unused = apply_suppressions(findings, suppressions, set(codes))
    if "RA901" in codes:
        kept += unused
    generated: list[Finding] = []
    hidden = len(untold)
    if not include_generated:
        stock = [f for f in kept if is_stock_noise(f)]
        hidden += len(stock)
        generated = group(stock)
        kept = [f for f in kept if not is_stock_noise(f)]
    return sorted(group(_dedupe(kept)), key=Finding.sort_key), suppressed, generated, hidden


#: The checks that tell a dead rule's story: one finding per dead rule, of
#: the one its story decides.
DEAD_RULE_CODES = ("RA101", "RA102", "RA103")


def untold_rules(suppressions: list) -> Callable:
    """``untold(rule)`` when stock findings are only counted: is ``rule``
    a tool's stock rule whose dead-rule finding, whichever of RA101-RA103
    it would be, none of ``suppressions`` silences? (Such a finding is
    counted among those not shown whatever its story: the story is not
    worked out.)"""
    by_rule: dict[int, list] = {}
    loose = []
    for s in suppressions:
        if s.codes is None or not s.codes.isdisjoint(DEAD_RULE_CODES):
            (by_rule.setdefault(id(s.rule), []) if s.rule is not None else loose).append(s)

    def untold(rule) -> bool:
        if not (rule.origin is not None and rule.origin.generated):
            return False
        near = [*by_rule.get(id(rule), ()), *loose]
        if not near:
            return True
        where = Where.of_rule(rule)
        return not any(s.covers(Finding(code, "", "", "", where, rule=rule))
                       for code in DEAD_RULE_CODES for s in near)

    return untold


def _across_units(per_unit: list[list[Finding]]) -> list[Finding]:
    """The findings of a file's cloud units (one per security group, GCP
    target …): a written rule several units share (a hierarchical policy,
    a rule of a network) is told once, naming the other units it holds for."""
    if len(per_unit) == 1:
        return per_unit[0]
    out: list[Finding] = []
    first: dict[tuple, Finding] = {}
    for unit in per_unit:
        for f in unit:
            w = f.where
            key = (f.code, w.file, w.path, w.line, w.column) if w is not None and (w.path or w.line) else None
            if key is None or key not in first:
                if key is not None:
                    first[key] = f
                out.append(f)
            elif w.table and w.table != first[key].where.table:
                first[key].details.append(f"the same for {w.table}")
    return out


def _dedupe(findings: list[Finding]) -> list[Finding]:
    """Cloud units share non-cloud tables: report each finding once."""
    seen, out = set(), []
    for f in findings:
        key = (f.code, f.where, f.message)
        if key in seen:
            continue
        seen.add(key)
        out.append(f)
    return out


def audit(ruleset_or_paths, select: list[str] | None = None, ignore: list[str] | None = None,
          config: Config | None = None, **kwargs) -> list[Finding]:
    """The findings for a ruleset, a path, or a list of either (see :func:`run_audit`)."""
    if isinstance(ruleset_or_paths, (Ruleset, str, os.PathLike)):
        ruleset_or_paths = [ruleset_or_paths]
    return run_audit(ruleset_or_paths, select=select, ignore=ignore, config=config, **kwargs).findings


class _CallableModule(__import__("types").ModuleType):
    """``ruleanalyzer.audit(...)`` calls :func:`audit` (the top-level API)."""

    def __call__(self, *args, **kwargs):
        return audit(*args, **kwargs)


__import__("sys").modules[__name__].__class__ = _CallableModule
