"""Findings for people (rich): a summary first (counts by severity and
code, the worst findings named), then the findings most serious first,
each with a short headline, a code frame of the rule's line, the other
places sharing its cause, details, related rules, the witness packet and
the fix. Also the ``rules`` listing and the ``explain`` page."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import PurePath

from rich.console import Console
from rich.markdown import Markdown
from rich.table import Table as RichTable
from rich.text import Text

from ..checks.base import SEVERITIES, Finding, severity_rank
from ..errors import split_lines, visible

SEVERITY_STYLE = {"error": "bold red", "warning": "bold yellow", "info": "bold cyan"}


_SPLIT: dict[str, tuple[str, list[str]]] = {}


def _file_lines(path: str) -> list[str] | None:
    """The lines of the text read for ``path`` (never the file opened again:
    it may have changed, or be a link or FIFO by now), split at ``\n`` only,
    as every reader counts lines (``str.splitlines`` also splits at U+2028,
    ``\x0b``, ``\x0c``, ``\x1c``–``\x1e``, ``\x85`` and a lone ``\r``)."""
    from ..loader import text_read

    text = text_read(path)
    if text is None:
        return None
    cached = _SPLIT.get(path)
    if cached is None or cached[0] is not text:
        cached = _SPLIT[path] = (text, split_lines(text))
    return cached[1]


def source_line(f: Finding) -> str | None:
    """The rule's line as written in its file (or the rule text)."""
    w = f.where
    if w is None:
        return None
    if w.file and w.line:
        lines = _file_lines(w.file)
        if lines and 0 < w.line <= len(lines):
            return lines[w.line - 1]
    return w.text or None


def _frame(console: Console, f: Finding) -> None:
    line = source_line(f)
    if line is None:
        return
    w = f.where
    number = str(w.line) if w and w.line else ""
    gutter = " " * len(number)
    col = (w.column or 1) if w and w.line else 1
    # tabs (every nft list ruleset) expanded, control characters escaped: the
    # caret moves with both
    offset = len(visible(line[:col - 1].expandtabs(8)))
    line = visible(line.expandtabs(8))
    shown = line if len(line) <= 200 else line[:197] + "..."
    console.print(Text(f"  {gutter} |", style="blue"))
    frame = Text(f"  {number} | ", style="blue")
    frame.append(shown)
    console.print(frame)
    caret = Text(f"  {gutter} | ", style="blue")
    caret.append(" " * offset + "^" * max(1, min(len(shown) - offset, 60)), style=SEVERITY_STYLE[f.severity])
    console.print(caret)


#: Headlines longer than this are cut; the rest goes to the details.
HEADLINE_CHARS = 160
#: Other locations, related rules and detail lines printed per finding.
SHOWN_LOCATIONS = 5
SHOWN_RELATED = 3
SHOWN_DETAILS = 8
#: Findings printed in full by default (``--max-findings``); 0 prints all.
DEFAULT_MAX_FINDINGS = 30


def _place(w) -> str:
    if w and w.line:
        return f"{visible(w.file)}:{w.line}:{w.column or 1}"
    if w and w.file:
        return visible(w.file + (f" ({w.path})" if w.path else ""))
    return "<ruleset>"


def headline(f: Finding) -> tuple[str, list[str]]:
    """The message cut to :data:`HEADLINE_CHARS` at a word boundary, and
    what was cut (to print below it). Control characters shown escaped."""
    msg = visible(f.message)
    if len(msg) <= HEADLINE_CHARS:
        return msg, []
    cut = msg.rfind(" ", 0, HEADLINE_CHARS - 2)
    cut = cut if cut > HEADLINE_CHARS // 2 else HEADLINE_CHARS - 2
    return msg[:cut] + " …", ["… " + msg[cut:].strip()]


def short_file(path: str) -> str:
    """A file's name for summary lines: its base name, or for a member of a
    host snapshot the snapshot's name with it (``web03/sysctl.txt``,
    ``db01.tar.gz/iptables-nft-save.txt``): in a fleet every host has one."""
    from ..snapshot import FILES, MANIFEST, SYSCTLS

    p = PurePath(path)
    if (p.name in FILES or p.name in (MANIFEST, SYSCTLS)) and p.parent.name:
        return f"{p.parent.name}/{p.name}"
    return p.name


def _short(w) -> str:
    """``line 12`` in the finding's own file, or ``file:12`` elsewhere."""
    return f"line {w.line}" if w.line else visible(w.path or w.describe())


def render_finding(console: Console, f: Finding) -> None:
    head = Text(f"{_place(f.where)}: ")
    head.append(f"{f.code}", style=SEVERITY_STYLE[f.severity])
    head.append(f" [{f.name}] ", style="dim")
    text, rest = headline(f)
    head.append(text)
    console.print(head)
    _frame(console, f)
    if f.also:
        shown = ", ".join(_short(w) if w.file == f.file else _place(w) for w in f.also[:SHOWN_LOCATIONS])
        more = len(f.also) - SHOWN_LOCATIONS
        console.print(Text(f"  = also at: {shown}" + (f" and {more} more" if more > 0 else "")
                           + f" ({f.count} in all)", style="dim"))
    details = rest + f.details
    for line in details[:SHOWN_DETAILS]:
        console.print(Text(f"  = {visible(line)}", style="dim"))
    if len(details) > SHOWN_DETAILS:
        console.print(Text(f"  = … and {len(details) - SHOWN_DETAILS} more lines (--format json has all)",
                           style="dim"))
    for r in f.related[:SHOWN_RELATED]:
        console.print(Text(visible(f"  = related: {r.where.describe()}: {r.note}"), style="dim"))
    if len(f.related) > SHOWN_RELATED:
        console.print(Text(f"  = related: … and {len(f.related) - SHOWN_RELATED} more", style="dim"))
    if f.origin is not None:
        console.print(Text(visible(f"  = written by {f.origin}"), style="dim"))
    if f.witness is not None:
        console.print(Text(f"  = witness: {f.witness.describe()} (hook {f.witness.hook}, "
                           f"state {f.witness.state})", style="dim"))
    if f.fix:
        console.print(Text(visible(f"  = help: {f.fix}", keep_newlines=True), style="green"))


def ordered(findings: list[Finding]) -> list[Finding]:
    """Most serious first, then by file and line."""
    return sorted(findings, key=lambda f: (severity_rank(f.severity), *f.sort_key()))


def render_summary(console: Console, result) -> None:
    """Counts by severity and code, the worst findings named, and which
    files were audited as one host."""
    counts = {s: sum(1 for f in result.findings if f.severity == s) for s in SEVERITIES}
    total = len(result.findings)
    summary = Text()
    summary.append(f"{total} finding{'s' if total != 1 else ''}", style="bold")
    summary.append(f" ({_count(counts['error'], 'error')}, {_count(counts['warning'], 'warning')}, "
                   f"{counts['info']} info) in {_count(len(result.inputs), 'input')}, "
                   f"{_count(result.rule_count, 'rule')}, {result.seconds:.2f} s")
    if result.suppressed:
        summary.append(f"; {len(result.suppressed)} suppressed")
    hidden = getattr(result, "generated_hidden", 0)
    if hidden:
        summary.append(f"; {_count(hidden, 'finding')} about tools' stock rules not shown, one per "
                       "rule (--include-generated shows them, grouped by cause)")
    if result.bad_inputs:
        summary.append(f"; {_count(len(result.bad_inputs), 'unreadable input')} skipped", style="yellow")
    skipped = getattr(result, "skipped", None)
    if skipped:
        names = visible(", ".join(PurePath(n).name for n in skipped[:5])) + (" …" if len(skipped) > 5 else "")
        summary.append(f"\ninfo: {_count(len(skipped), 'file')} in the directories "
                       f"{'is' if len(skipped) == 1 else 'are'} not rule files, skipped "
                       f"({names})", style="dim")
    if getattr(result, "fleet", None):
        render_fleet(console, result.fleet)
    console.print(summary)
    by_code: dict[tuple[str, str, str], list[Finding]] = {}
    for f in result.findings:
        by_code.setdefault((f.severity, f.code, f.name), []).append(f)
    for (sev, code, name), fs in sorted(by_code.items(), key=lambda kv: (severity_rank(kv[0][0]), kv[0][1])):
        places = sum(f.count for f in fs)
        line = Text("  ")
        line.append(f"{sev:<7}", style=SEVERITY_STYLE[sev])
        line.append(f" {code} {name}: {len(fs)}" + (f" ({places} places)" if places != len(fs) else ""))
        console.print(line)
    worst = [f for f in ordered(result.findings) if f.severity != "info"][:3]
    for f in worst:
        w = f.where
        where = f"{short_file(w.file)}:{w.line}" if w and w.file and w.line else _place(w)
        line = visible(f"  worst: {where}: {f.code} {f.message}")
        console.print(Text(line if len(line) <= HEADLINE_CHARS else line[:HEADLINE_CHARS - 1] + "…",
                           style="dim"))
    for host in getattr(result, "hosts", None) or []:
        console.print(Text(visible(f"  audited as one host: {' + '.join(host)}"), style="dim"))


def _count(n: int, word: str) -> str:
    """``1 error``, ``2 errors``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def render_findings(console: Console, result, max_findings: int | None = DEFAULT_MAX_FINDINGS,
                    quiet: bool = False) -> None:
    """The summary, then the findings most serious first (at most
    ``max_findings`` of them; 0 or None: all), then how many were left out.
    ``quiet``: one line per finding (place, code, message), nothing else."""
    findings = ordered(result.findings)
    if quiet:
        for f in findings:
            console.print(Text(visible(f"{_place(f.where)}: {f.code} [{f.name}] {f.message}")))
        return
    render_summary(console, result)
    limit = max_findings or len(findings)
    for f in findings[:limit]:
        render_finding(console, f)
    if len(findings) > limit:
        console.print(Text(f"{_count(len(findings) - limit, 'more finding')} not shown (--max-findings 0 shows "
                           "all; --format json and sarif always hold every finding)", style="bold"))


def render_fleet(console: Console, fleet: dict) -> None:
    """A fleet audit's summary: exposed services by host, drift per group,
    findings counted across hosts."""
    console.rule(Text("fleet", style="bold"), align="left")
    exposure = fleet.get("exposure") or {}
    if exposure:
        console.print(Text("Open to the whole internet (every public address can connect):", style="bold"))
        for service, names in exposure.items():
            console.print(f"  {service}: {_count(len(names), 'host')}: {', '.join(names[:12])}"
                          + (" …" if len(names) > 12 else ""), highlight=False)
    else:
        console.print("No host has a service open to the whole internet.", highlight=False)
    drift = fleet.get("drift") or {}
    groups = fleet.get("groups") or {}
    for role, names in drift.items():
        console.print(f"Drift in group '{role}' ({len(groups.get(role, []))} hosts): {', '.join(names)} "
                      "(RA610 says what differs)", highlight=False)
    per_code = fleet.get("findings_per_code") or {}
    if per_code:
        table = RichTable(show_edge=False, box=None, pad_edge=False)
        for col in ("code", "hosts", "findings", "on"):
            table.add_column(col)
        for code, entry in per_code.items():
            names = entry.get("host_names", [])
            table.add_row(code, str(entry["hosts"]), str(entry["findings"]),
                          ", ".join(names[:8]) + (" …" if len(names) > 8 else ""))
        console.print(table)
    failed = [h["name"] for h in fleet.get("hosts", []) if h["status"] != "ok"]
    console.print(f"{_count(len(fleet.get('hosts', [])), 'host')} in {_count(len(groups), 'group')}"
                  + (f"; not analysed: {', '.join(failed)}" if failed else ""), highlight=False)
    for role, names in groups.items():
        console.print(f"  {role}: {', '.join(names[:12])}" + (" …" if len(names) > 12 else ""),
                      highlight=False)


def render_rules(console: Console, checks) -> None:
    """The ``rules`` listing: code, name, severity (``(opt-in)`` for checks
    that run only when selected by name), summary."""
    from ..checks.docs import severity_label

    table = RichTable(show_edge=False, box=None, pad_edge=False)
    for col in ("code", "name", "severity", "summary"):
        table.add_column(col, overflow="fold")
    for c in checks:
        table.add_row(c.code, c.name, Text(severity_label(c), style=SEVERITY_STYLE[c.severity]),
                      c.summary)
    console.print(table)


def render_explain(console: Console, cls, markdown: str) -> None:
    """One check's page; plain markdown text when not on a terminal."""
    if console.is_terminal:
        console.print(Markdown(markdown))
    else:
        console.file.write(markdown)


class ProgressBar:
    """Progress on stderr (a terminal only): a spinner naming the work from
    the start — a single large file's parse and analysis take seconds too —
    and a bar once an audit has many files."""

    def __init__(self, what: str = "auditing"):
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        from rich.markup import escape

        from .text import SafeConsole

        console = SafeConsole(stderr=True, markup=False, emoji=False)
        self.bar = Progress(transient=True, console=console)
        self.spinner = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                transient=True, console=console)
        self.spin_task = self.spinner.add_task(escape(visible(what)), total=None)
        self.spinner.start()
        self.task = None

    def __call__(self, done: int, total: int, name: str) -> None:
        if total < 20:
            self.spinner.update(self.spin_task, description=f"auditing ({done}/{total} done) {name[-40:]}")
            return
        if self.task is None:
            self.spinner.stop()
            self.bar.start()
            self.task = self.bar.add_task("auditing", total=total)
        from rich.markup import escape

        # the bar's own columns are markup: a file name is escaped into it
        self.bar.update(self.task, completed=done, description=escape(visible(name[-40:])))

    def close(self) -> None:
        self.spinner.stop()
        if self.task is not None:
            self.bar.stop()


@contextmanager
def working(what: str, enabled: bool):
    """A spinner on stderr while ``what`` runs (a terminal only, not -q)."""
    if not enabled:
        yield
        return
    bar = ProgressBar(what)
    try:
        yield
    finally:
        bar.close()
