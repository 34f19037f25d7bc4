"""What every check shares: severities, the finding, the check class, and
the analysis context a check reads the ruleset through.

A check is one small class (sqlfluff/ruff style). Its class attributes are
its documentation — ``ruleanalyzer rules``, ``ruleanalyzer explain CODE``,
``docs/checks.md`` and the SARIF rule metadata all render from them — and
its ``run(ctx)`` yields :class:`Finding` objects. Subclasses with a ``code``
register themselves (see :mod:`ruleanalyzer.checks`).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import ClassVar, Iterable, Iterator

from ..model import HOOK_PATHS, Chain, InterfaceMatch, NameMatch, Origin, Packet, Rule, Ruleset

#: Severities from the most to the least serious; ``--fail-on`` compares by this order.
SEVERITIES = ("error", "warning", "info")


def severity_rank(severity: str) -> int:
    """0 for error, 1 warning, 2 info (lower is more serious)."""
    return SEVERITIES.index(severity)


def shown(rule: Rule) -> str:
    """A rule as a report quotes it: as written, nft JSON in nft syntax."""
    table = rule.chain.table if rule.chain is not None else None
    if table is not None and table.dialect == "nft-json" and rule.text:
        from ..nft_text import rule_text

        return rule_text(rule.text)
    return rule.text or str(rule)


@dataclass(frozen=True)
class Where:
    """Plain-data location of a rule or a chain (its policy) for reports."""

    file: str | None
    line: int = 0
    column: int = 0
    #: JSON path for cloud inputs, which have no useful line.
    path: str | None = None
    table: str | None = None
    family: str | None = None
    chain: str | None = None
    #: 1-based rule index in its chain; None for a chain or its policy.
    index: int | None = None
    text: str = ""
    ident: str | None = None

    @classmethod
    def of_rule(cls, rule: Rule) -> "Where":
        chain = rule.chain
        table = chain.table if chain else None
        loc = rule.location
        return cls(loc.file, loc.line, loc.column, loc.path, table.name if table else None,
                   table.family if table else None, chain.name if chain else None, rule.index,
                   shown(rule), rule.ident)

    @classmethod
    def of_chain(cls, chain: Chain, policy: bool = True) -> "Where":
        """The chain's policy (where it was written) or its declaration."""
        loc = (chain.policy_location if policy else None) or chain.location
        table = chain.table
        text = chain.policy_text or (f"policy {chain.policy.upper()}" if policy and chain.policy
                                     else f"chain {chain.name}")
        return cls(loc.file if loc else (table.location.file if table and table.location else None),
                   loc.line if loc else 0, loc.column if loc else 0, loc.path if loc else None,
                   table.name if table else None, table.family if table else None, chain.name,
                   None, text)

    def describe(self) -> str:
        """``filter INPUT rule 3 (rules.v4:12)`` or ``filter INPUT policy``."""
        what = f"{self.table or ''} {self.chain or ''}".strip()
        what += f" rule {self.index}" if self.index is not None else f" {self.text}"
        if self.ident:
            what += f" ({self.ident})"
        if self.line:
            what += f" (line {self.line})"
        elif self.path:
            what += f" ({self.path})"
        return what


@dataclass(frozen=True)
class Related:
    """Another rule or policy a finding points at, and its part in it."""

    where: Where
    note: str


@dataclass
class Finding:
    """One problem found: which check, how serious, where, and why.

    ``rule``/``chain`` keep the model objects (suppressions are bound to
    them); reports use ``where``. ``witness`` is a concrete packet showing
    the problem; ``fix`` a safe form of the rule where one exists.

    ``message`` is the headline (short); ``details`` are the lines a
    report prints below it (long lists, the story behind the headline).
    Findings of one check with the same ``cause`` in one file are one
    finding (:func:`ruleanalyzer.grouping.group`): the first keeps its
    ``where``, the others go to ``also`` and ``group_message`` (with
    ``{count}``) becomes the headline. ``origin`` is the tool that wrote
    the rule, when one did.
    """

    code: str
    name: str
    severity: str
    message: str
    where: Where | None
    related: list[Related] = field(default_factory=list)
    witness: Packet | None = None
    #: What to change, in the input's own language (a check gives a
    #: :class:`ruleanalyzer.fixes.Fix`; the audit writes it in the dialect).
    fix: object = None
    rule: Rule | None = field(default=None, repr=False, compare=False)
    chain: Chain | None = field(default=None, repr=False, compare=False)
    details: list[str] = field(default_factory=list)
    also: list[Where] = field(default_factory=list)
    origin: Origin | None = None
    cause: object = field(default=None, repr=False, compare=False)
    group_message: str | None = field(default=None, repr=False, compare=False)

    @property
    def file(self) -> str | None:
        return self.where.file if self.where else None

    @property
    def count(self) -> int:
        """How many places share this finding's cause (1 + ``also``)."""
        return 1 + len(self.also)

    @property
    def generated(self) -> bool:
        """Is the finding about a tool's stock scaffolding?"""
        return bool(self.origin and self.origin.generated)

    def sort_key(self) -> tuple:
        w = self.where
        return (w.file or "" if w else "", w.line if w else 0, w.path or "" if w else "",
                w.index or 0 if w else 0, self.code)


@dataclass(frozen=True)
class Option:
    """A per-check setting (``[tool.ruleanalyzer.options.RA401]``).

    ``kind`` says what a configured value must be (:meth:`read`): by
    default what the default is (a count, a list of names …); ``share`` a
    number in (0, 1]; ``ports`` TCP ports, a mapping port → service name
    or a list of ports; ``port-range`` two ports ``[low, high]``."""

    default: object
    help: str
    kind: str = ""

    def read(self, value):
        """``value`` as the check reads it; ValueError saying what is wanted."""
        kind = self.kind or _kind_of(self.default)
        if kind == "ports":
            return _ports(value, self.default)
        if kind == "port-range":
            if not (isinstance(value, list) and len(value) == 2 and all(_is_port(v) for v in value)
                    and value[0] <= value[1]):
                raise ValueError("must be two port numbers [low, high] (0-65535, low <= high)")
            return list(value)
        if kind == "share":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
                raise ValueError("must be a number above 0 and at most 1 (a share: 0.99 is 99 %)")
            return float(value)
        if kind == "count":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError("must be a whole number, 0 or more")
            return value
        if kind == "names":
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise ValueError("must be a list of names")
            return list(value)
        if kind == "flag":
            if not isinstance(value, bool):
                raise ValueError("must be true or false")
            return value
        return value


def _kind_of(default) -> str:
    if isinstance(default, bool):
        return "flag"
    if isinstance(default, int):
        return "count"
    if isinstance(default, list) and all(isinstance(v, str) for v in default):
        return "names"
    return ""


def _is_port(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 65535


def _ports(value, known: dict) -> dict[int, str]:
    """A ``ports`` setting: ``{22: SSH, …}`` (TOML keys are strings: ``"22"``)
    or ``[22, 8443]`` (named as the default names them, else ``port N``)."""
    want = "must be TCP ports: a mapping port → service name ({22: SSH}) or a list of ports ([22, 8443])"
    if isinstance(value, list):
        if not all(_is_port(v) and v > 0 for v in value):
            raise ValueError(want)
        return {v: known.get(v, f"port {v}") for v in value}
    if not isinstance(value, dict):
        raise ValueError(want)
    out = {}
    for port, name in value.items():
        number = int(port) if isinstance(port, str) and port.isdigit() else port
        if not (_is_port(number) and number > 0) or not isinstance(name, str) or not name:
            raise ValueError(want)
        out[number] = name
    return out


class Check:
    """Base of every check. Subclasses set the documented class attributes
    and implement :meth:`run`."""

    #: Family prefix + number, stable and never reused (``RA101``).
    code: ClassVar[str] = ""
    #: Kebab-case name of the flagged pattern (``unreachable-rule``).
    name: ClassVar[str] = ""
    #: One line: what is flagged.
    summary: ClassVar[str] = ""
    #: Why it matters (the "Why is this bad?" section).
    rationale: ClassVar[str] = ""
    #: A small ruleset that must trigger the check, and its fixed form.
    bad: ClassVar[str] = ""
    good: ClassVar[str] = ""
    #: Dialect the examples are written in.
    example_dialect: ClassVar[str] = "iptables"
    severity: ClassVar[str] = "warning"
    options: ClassVar[dict[str, Option]] = {}
    #: Retired codes that now mean this check.
    aliases: ClassVar[tuple[str, ...]] = ()
    #: stable | preview
    status: ClassVar[str] = "stable"
    #: Opt-in checks run only when selected by their exact code (or a retired
    #: alias of it), their name or ``ALL`` — never by default or by a prefix
    #: such as ``RA1`` — so adding one leaves every existing audit unchanged.
    opt_in: ClassVar[bool] = False

    def __init__(self, settings: dict | None = None):
        self.settings = {k: o.default for k, o in self.options.items()}
        self.settings.update(settings or {})

    def run(self, ctx: "Context") -> Iterable[Finding]:
        raise NotImplementedError

    def finding(self, message: str, *, rule: Rule | None = None, chain: Chain | None = None,
                related: Iterable[Related] = (), witness: Packet | None = None,
                fix: object = None, severity: str | None = None,
                details: Iterable[str] = (), cause: object = None,
                group_message: str | None = None) -> Finding:
        """A finding of this check about ``rule`` (or ``chain``'s policy).
        ``cause``: findings of this check in one file with an equal cause
        are reported as one, headed by ``group_message`` (``{count}``)."""
        if rule is not None:
            where = Where.of_rule(rule)
            origin = rule.origin
        elif chain is not None:
            where = Where.of_chain(chain)
            origin = chain.origin
        else:
            where = origin = None
        return Finding(self.code, self.name, severity or self.severity, message, where,
                       list(related), witness, fix, rule, chain, list(details), [], origin,
                       cause, group_message)


def related_rule(rule: Rule, note: str) -> Related:
    return Related(Where.of_rule(rule), note)


def related_policy(chain: Chain, note: str) -> Related:
    return Related(Where.of_chain(chain), note)


class Context:
    """One ruleset under audit, with the analyses several checks share
    (symbolic reachability per hook and family, a concrete evaluator),
    each computed at most once."""

    #: Interface names added to the packet space even when no rule names
    #: them, so checks can ask about loopback traffic exactly.
    EXTRA_INTERFACES = ("lo",)

    #: Wall-clock budget of one symbolic analysis; beyond it the analysis is
    #: abandoned (reported as RA003) so one pathological input cannot stall
    #: an audit of many files. Enforced in the main thread only (SIGALRM).
    analysis_seconds: float = 120.0
    #: Wall-clock budget of everything the checks do with one ruleset, its
    #: analyses included (the blocking-rules search and the rest once ran
    #: outside any limit: 81 s for 4,000 rules written twice). Past it the
    #: running check and those after it are abandoned (one RA003).
    audit_seconds: float = 300.0
    #: ``untold(rule)``: is the rule's dead-rule finding (RA101-RA103) only
    #: counted, never shown? A default audit sets it (a tool's stock rule no
    #: suppression names, :func:`ruleanalyzer.audit.untold_rules`): such a
    #: rule's story and blocker search are not worked out. None: all are.
    untold = None

    def __init__(self, ruleset: Ruleset, interfaces: dict | None = None):
        self.ruleset = ruleset
        #: Configured interface roles (config ``interfaces``).
        self.interfaces = interfaces or {}
        self._reach: dict[tuple[str, int], object] = {}
        self._exhausted = False  # the packet space reached its memory limit
        self._space = None
        self._evaluator = None
        self.notes: list[str] = []
        #: Analyses that crashed (bugs); the audit reports each once as RA003.
        self.failures: list[str] = []

    #: What :meth:`release` keeps: the input and what the checks were told
    #: or noted, not the analyses.
    _KEPT = ("ruleset", "interfaces", "_exhausted", "notes", "failures", "untold", "trusted_interfaces")

    def release(self) -> None:
        """Drop the shared analyses (an audit done with this ruleset calls
        it while the cyclic collector is still paused). They hold reference
        cycles (a check's cache of paths holds this context), so without it
        reference counting never frees them: the collector's first pass walked
        all of them while alive (~3M objects at 100k rules, 1.5 s CPU) and
        a later one again to free them. Asking again afterwards recomputes."""
        kept = {k: v for k, v in self.__dict__.items() if k in self._KEPT}
        self.__dict__.clear()
        self.__dict__.update(kept, _reach={}, _space=None, _evaluator=None)

    @property
    def dialect(self) -> str:
        return self.ruleset.meta.get("dialect", "") or next(
            (t.dialect for t in self.ruleset.tables if t.dialect), "")

    @property
    def space(self):
        if self._space is None:
            from ..space import Layout

            # With a host snapshot, its interfaces too (routes name them);
            # and the interfaces whose role is configured or inferred.
            host = self.ruleset.host
            names = (*self.EXTRA_INTERFACES, *(tuple(host.interfaces) if host is not None else ()),
                     *(n for n in self.roles.roles if not n.endswith("*")))
            extra = [InterfaceMatch(f, tuple(dict.fromkeys(names))) for f in ("iif", "oif")]
            self._space = shared_space(Layout.for_ruleset(self.ruleset, extra))
            self._space.expect_rules(self.ruleset.rule_count)
        return self._space

    @property
    def roles(self):
        """Which interfaces face the internet (:func:`ruleanalyzer.roles.infer_roles`)."""
        if "_roles" not in self.__dict__:
            from ..roles import infer_roles

            self.__dict__["_roles"] = infer_roles(self.ruleset, self.interfaces)
        return self.__dict__["_roles"]

    @property
    def evaluator(self):
        if self._evaluator is None:
            from ..engine import Evaluator

            self._evaluator = Evaluator(self.ruleset)
        return self._evaluator

    def families(self) -> list[int]:
        """IP versions some table of the ruleset filters."""
        out = set()
        for t in self.ruleset.tables:
            if t.family in ("ip", "inet", "netdev"):
                out.add(4)
            if t.family in ("ip6", "inet", "netdev"):
                out.add(6)
        return sorted(out)

    def hooks(self) -> list[str]:
        """Packet paths (input, forward, output) some base chain lies on."""
        cached = self.__dict__.get("_hooks")  # (asked by most checks; 36k chains at 100k rules)
        if cached is None:
            used = {c.hook for c in self.ruleset.chains() if c.hook}
            cached = self.__dict__["_hooks"] = [h for h in HOOK_PATHS if used & set(HOOK_PATHS[h])]
        return list(cached)

    def base_chains(self, hook: str, family: int) -> list[Chain]:
        return [c for t in self.ruleset.tables if t.applies_to(family) and t.family not in ("arp", "bridge")
                and not t.dormant for c in t.chains.values() if c.hook == hook]

    def reach(self, hook: str, family: int):
        """The symbolic reachability of ``hook`` for IPv``family`` packets,
        or None when the ruleset cannot be walked (a jump cycle, reported by
        the structure checks). Every hook of the family is analysed in one
        go (input and forward share their prerouting walk)."""
        key = (hook, family)
        if self._exhausted or (hook == "forward" and self.host_forwards(family) is False):
            return None  # a host that forwards nothing: FORWARD is moot (RA601 says so)
        if key not in self._reach:
            from ..space.packetset import SpaceMemoryError
            from ..space.reach import ReachError, analyze_hooks

            hooks = [h for h in self.hooks() if (h, family) not in self._reach]
            if hook not in hooks:
                hooks.append(hook)
            what = f"{'/'.join(hooks)}/IPv{family}"
            try:
                with _time_limit(self.analysis_seconds):
                    found = analyze_hooks(self.ruleset, hooks, family, self.space)
            except AnalysisTimeout:
                self.failures.append(f"packet-space analysis of {what} took longer than "
                                     f"{self.analysis_seconds:g} s and was abandoned")
                found = {}
            except SpaceMemoryError as exc:
                self.out_of_space(exc, what)
                found = {}
            except (ReachError, RecursionError) as exc:
                self.notes.append(f"{what}: {exc}")
                found = {}
            except Exception as exc:  # noqa: BLE001 - an analyzer bug: report it once, go on
                self.failures.append(f"packet-space analysis of {what} failed: "
                                     f"{type(exc).__name__}: {exc}")
                found = {}
            for h in hooks:
                self._reach[(h, family)] = found.get(h)
        return self._reach[key]

    def host_forwards(self, family: int) -> bool | None:
        """With a host snapshot: does the host forward IPv``family`` at all?"""
        host = self.ruleset.host
        return None if host is None else host.forwards_any(family)

    def out_of_space(self, exc: BaseException, what: str = "") -> bool:
        """If ``exc`` is the packet space reaching its memory limit (in an
        analysis or in a check's own set operations), note it once as a
        failure (RA003 naming the limit), give up that space and say True."""
        from ..space.packetset import SpaceMemoryError

        space = self._space
        if not isinstance(exc, SpaceMemoryError):
            if space is None or not space.exhausted(exc):
                return False
            exc = SpaceMemoryError(space.max_bytes)
        message = f"packet-space analysis{' of ' + what if what else ''} was abandoned: {exc}"
        if not any(str(exc) in m for m in self.failures):
            self.failures.append(message)
        if space is not None:
            forget_space(space)  # CUDD failed mid-operation: the next ruleset starts afresh
        self._space = None
        self._exhausted = True  # no further analyses of this ruleset
        return True

    def analyses(self) -> Iterator[tuple[str, int, object]]:
        """``(hook, family, reachability)`` for every path the ruleset filters."""
        for family in self.families():
            for hook in self.hooks():
                r = self.reach(hook, family)
                if r is not None:
                    yield hook, family, r

    def is_stateful(self) -> bool:
        """Does any rule look at conntrack state?"""
        cached = self.__dict__.get("_stateful")
        if cached is None:
            cached = any(_mentions_state(m) for r in self.ruleset.rules() for m in r.matches)
            self.__dict__["_stateful"] = cached
        return cached


class AnalysisTimeout(Exception):
    """An analysis ran past :attr:`Context.analysis_seconds` (or the checks
    of a ruleset past :attr:`Context.audit_seconds`)."""


def time_limit(seconds: float):
    """A ``with`` block that raises :class:`AnalysisTimeout` after
    ``seconds`` (see :func:`_time_limit`)."""
    return _time_limit(seconds)


@contextlib.contextmanager
def _time_limit(seconds: float):
    """Raise :class:`AnalysisTimeout` in the block after ``seconds`` (main
    thread, POSIX); elsewhere no limit. Nests: an inner limit never
    outlasts the one around it, and the outer one runs on afterwards (so a
    ruleset's whole audit budget holds across the analyses inside it)."""
    usable = (seconds and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def expire(signum, frame):
        raise AnalysisTimeout()

    outer = signal.getitimer(signal.ITIMER_REAL)[0]
    start = time.monotonic()
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, min(seconds, outer) if outer else seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer:  # the enclosing limit goes on (at once if it ran out meanwhile)
            signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - start), 1e-4))


#: Spaces by layout, reused across the rulesets of one audit: building one
#: (declaring ~500 BDD variables, the validity constraint) costs more than
#: analysing a small ruleset, and most rulesets need the same layout.
_SPACES: dict[tuple, object] = {}
_MAX_SPACES = 4
_MAX_CACHED_MATCHES = 200_000


def forget_space(space) -> None:
    """Drop ``space`` from the shared spaces."""
    for key, value in list(_SPACES.items()):
        if value is space:
            del _SPACES[key]


def shared_space(layout):
    """A :class:`~ruleanalyzer.space.Space` for ``layout``, reused when an
    equal layout was seen before."""
    from ..space import Space

    key = (tuple((n, f.kind, f.width, f.names) for n, f in layout.fields.items()),
           tuple((n, d.concrete, d.prefixes) for n, d in layout.interfaces.items()))
    space = _SPACES.pop(key, None)
    if space is None or len(space.__dict__.get("_encode_cache", ())) > _MAX_CACHED_MATCHES:
        space = Space(layout)
    _SPACES[key] = space  # most recently used last
    while len(_SPACES) > _MAX_SPACES:
        _SPACES.pop(next(iter(_SPACES)))
    return space


def _mentions_state(match) -> bool:
    if isinstance(match, NameMatch):
        return match.field in ("state", "ctstate")
    return any(_mentions_state(m) for m in getattr(match, "matches", ()))
