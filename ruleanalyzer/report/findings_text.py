"""Findings for people (rich): grouped by file, each with a code frame of
the rule's line, the related rules, the witness packet and the fix; then a
summary. Also the ``rules`` listing and the ``explain`` page."""

from __future__ import annotations

from functools import lru_cache

from rich.console import Console
from rich.markdown import Markdown
from rich.table import Table as RichTable
from rich.text import Text

from ..checks.base import Finding

SEVERITY_STYLE = {"error": "bold red", "warning": "bold yellow", "info": "bold cyan"}


@lru_cache(maxsize=64)
def _file_lines(path: str) -> tuple[str, ...] | None:
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as handle:
            return tuple(handle.read().splitlines())
    except OSError:
        return None


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
    shown = line if len(line) <= 200 else line[:197] + "..."
    console.print(Text(f"  {gutter} |", style="blue"))
    frame = Text(f"  {number} | ", style="blue")
    frame.append(shown)
    console.print(frame)
    col = (w.column or 1) if w and w.line else 1
    caret = Text(f"  {gutter} | ", style="blue")
    caret.append(" " * (col - 1) + "^" * max(1, min(len(shown) - col + 1, 60)), style=SEVERITY_STYLE[f.severity])
    console.print(caret)


def render_finding(console: Console, f: Finding) -> None:
    w = f.where
    if w and w.line:
        where = f"{w.file}:{w.line}:{w.column or 1}"
    elif w and w.file:
        where = w.file + (f" ({w.path})" if w.path else "")
    else:
        where = "<ruleset>"
    head = Text(f"{where}: ")
    head.append(f"{f.code}", style=SEVERITY_STYLE[f.severity])
    head.append(f" [{f.name}] ", style="dim")
    head.append(f.message)
    console.print(head)
    _frame(console, f)
    for r in f.related[:8]:
        console.print(Text(f"  = related: {r.where.describe()}: {r.note}", style="dim"))
    if len(f.related) > 8:
        console.print(Text(f"  = related: … and {len(f.related) - 8} more", style="dim"))
    if f.witness is not None:
        console.print(Text(f"  = witness: {f.witness.describe()} (hook {f.witness.hook}, "
                           f"state {f.witness.state})", style="dim"))
    if f.fix:
        console.print(Text(f"  = help: {f.fix}", style="green"))


def render_findings(console: Console, result) -> None:
    """Every finding, grouped by file, and a summary line."""
    current = object()
    for f in result.findings:
        if f.file != current:
            current = f.file
            console.rule(Text(str(f.file or "<ruleset>"), style="bold"), align="left")
        render_finding(console, f)
    counts = {s: sum(1 for f in result.findings if f.severity == s) for s in ("error", "warning", "info")}
    summary = Text()
    total = len(result.findings)
    summary.append(f"{total} finding{'s' if total != 1 else ''}", style="bold")
    summary.append(f" ({counts['error']} errors, {counts['warning']} warnings, {counts['info']} info)"
                   f" in {len(result.inputs)} input(s), {result.rule_count} rules, {result.seconds:.2f} s")
    if result.suppressed:
        summary.append(f"; {len(result.suppressed)} suppressed")
    if result.bad_inputs:
        summary.append(f"; {len(result.bad_inputs)} unreadable input(s) skipped", style="yellow")
    if getattr(result, "fleet", None):
        render_fleet(console, result.fleet)
    console.print(summary)


def render_fleet(console: Console, fleet: dict) -> None:
    """A fleet audit's summary: exposed services by host, drift per group,
    findings counted across hosts."""
    console.rule(Text("fleet", style="bold"), align="left")
    exposure = fleet.get("exposure") or {}
    if exposure:
        console.print(Text("Open to the whole internet (every public address can connect):", style="bold"))
        for service, names in exposure.items():
            console.print(f"  {service}: {len(names)} host(s): {', '.join(names[:12])}"
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
        for col in ("code", "hosts", "findings"):
            table.add_column(col)
        for code, entry in per_code.items():
            table.add_row(code, str(entry["hosts"]), str(entry["findings"]))
        console.print(table)
    failed = [h["name"] for h in fleet.get("hosts", []) if h["status"] != "ok"]
    console.print(f"{len(fleet.get('hosts', []))} hosts in {len(groups)} group(s)"
                  + (f"; not analysed: {', '.join(failed)}" if failed else ""), highlight=False)


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
    """A rich progress bar on stderr, shown only for audits of many files."""

    def __init__(self):
        from rich.progress import Progress

        self.bar = Progress(transient=True, console=Console(stderr=True))
        self.task = None

    def __call__(self, done: int, total: int, name: str) -> None:
        if total < 20:
            return
        if self.task is None:
            self.bar.start()
            self.task = self.bar.add_task("auditing", total=total)
        self.bar.update(self.task, completed=done, description=name[-40:])

    def close(self) -> None:
        if self.task is not None:
            self.bar.stop()
