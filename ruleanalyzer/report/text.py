"""Human-readable output with rich: verdicts, traces, connection tables."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from rich.console import Console
from rich.segment import Segment
from rich.text import Text

from ..engine.result import Result
from ..errors import visible

if TYPE_CHECKING:  # imported where used: a query need not pay for them
    from ..engine.connect import ConnectReport
from ..model import Diagnostic

VERDICT_STYLE = {"accept": "bold green", "drop": "bold red", "unknown": "bold yellow",
                 "not sent": "dim"}


def render_diagnostics(console: Console, diagnostics: list[Diagnostic]) -> None:
    if SETTINGS["quiet"]:
        return
    for d in diagnostics:
        console.print(Text(visible(str(d)), style="yellow" if d.level == "warning" else "dim"))


def _trace_lines(result: Result) -> list[str]:
    lines = []
    for step in result.trace:
        where = f"{step.chain.table.name if step.chain.table else ''} {step.chain.name}".strip()
        if step.event == "enter":
            lines.append(f"→ {where}")
        elif step.event == "match":
            loc = step.rule.location
            at = f" (line {loc.line})" if loc.line else ""
            lines.append(f"  ✓ rule {step.rule.index}{at}: {step.rule.text}")
        elif step.event == "policy":
            lines.append(f"  ⤷ {where} policy {step.detail.upper()}")
        elif step.event in ("nat", "set"):
            lines.append(f"    {step.detail}")
        elif step.event == "return":
            lines.append(f"  ↩ back in {where}")
    return lines


def render_result(console: Console, result: Result) -> None:
    label = result.packet.id + ": " if result.packet.id else ""
    head = Text(label)
    head.append(result.verdict.upper(), style=VERDICT_STYLE[result.verdict])
    head.append(f"  {result.packet.describe()}  (hook {result.packet.hook}, state {result.state})")
    console.print(head)
    if result.decided_by is not None:
        console.print(visible(f"  decided by {result.decided_by.describe()}"), highlight=False)
    elif result.decider_depends:
        console.print(f"  decided by one of {len(result.alternatives)} rules, depending on:", highlight=False)
        for dep in result.depends_on:
            console.print(visible(f"    - {dep}"), highlight=False, markup=False)
        for alt in result.alternatives:
            by = alt.decided_by.describe() if alt.decided_by else "no rule"
            console.print(visible(f"    if [{'; '.join(alt.depends_on) or '—'}]: {alt.verdict} by {by}"),
                          highlight=False, markup=False)
    if result.routing:
        console.print(f"  routing: {result.routing}", highlight=False)
    if result.outcome == "forwarded":
        console.print(f"  forwarded to {result.packet.dst}"
                      + (f":{result.packet.dport}" if result.packet.dport is not None else ""), highlight=False)
    if result.verdict == "unknown":
        console.print("  depends on:", highlight=False)
        for dep in result.depends_on:
            console.print(visible(f"    - {dep}"), highlight=False)
        for alt in result.alternatives:
            by = alt.decided_by.describe() if alt.decided_by else "no rule"
            assuming = "; ".join(alt.depends_on) or "—"
            console.print(visible(f"    if [{assuming}]: {alt.verdict} by {by}"), highlight=False, markup=False)
    for note in result.notes:
        console.print(visible(f"  note: {note}"), style="dim", highlight=False)
    for line in _trace_lines(result):
        console.print(visible(f"  {line}"), style="dim", highlight=False, markup=False)


def render_connect(console: Console, report: ConnectReport) -> None:
    console.print(f"TCP {report.client} → {report.server}:{report.dport} "
                  f"(firewall on the {report.hook} path)", highlight=False)
    for variant, sentence in zip(report.variants, report.explain()):
        from rich.table import Table as RichTable

        table = RichTable(title="ECN on" if variant.ecn else "ECN off", title_justify="left")
        table.add_column("leg")
        table.add_column("hook")
        table.add_column("state")
        table.add_column("verdict")
        table.add_column("decided by", overflow="fold")
        for leg in variant.legs:
            result = leg.result
            by = result.decided_by.describe() if result and result.decided_by else ""
            if result and result.verdict == "unknown":
                by = "depends on: " + "; ".join(result.depends_on)
            elif result and result.decider_depends:
                by = "one of: " + "; ".join(
                    f"{a.decided_by.describe() if a.decided_by else 'no rule'} if {'; '.join(a.depends_on)}"
                    for a in result.alternatives)
            verdict = leg.verdict if not leg.degraded else f"{leg.verdict} → {leg.summary}"
            table.add_row(leg.name, leg.packet.hook, result.state if result else "",
                          Text(verdict, style=VERDICT_STYLE.get(leg.verdict, "")), visible(by))
        console.print(table)
        console.print(visible(sentence, keep_newlines=True), highlight=False)
        if variant.ecn:
            word = {True: "yes", False: "no", None: "unknown"}[variant.ecn_negotiated]
            console.print(visible(f"ECN negotiated: {word}" + (f" ({variant.ecn_why})" if variant.ecn_why else "")),
                          highlight=False)
    for note in report.notes:
        console.print(visible(f"note: {note}"), style="dim", highlight=False)


class SafeConsole(Console):
    """A console that never lets input act on the terminal: rich markup
    and emoji codes are off (a comment ``see [/admin] docs`` once crashed
    ``query``; ``[link=…]`` made a hyperlink), and every control character
    in the text written (ESC of CSI/OSC sequences, CR, the C1 controls …)
    is shown escaped (``\x1b``) — the console's own styling and line
    breaks are left alone."""

    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        return super()._render_buffer(
            segment if segment.control or not segment.text or segment.text == "\n"
            else Segment(visible(segment.text, keep_newlines=True), segment.style, segment.control)
            for segment in buffer)


from .settings import SETTINGS, configure  # noqa: E402,F401  (where they lived; rich-free home)


def make_console(out) -> Console:
    """A console writing to ``out``. On a terminal: its width, colours
    unless NO_COLOR or ``--color never``. Elsewhere (a pipe, a file): no
    wrapping, so each finding's headline is one line ``grep`` sees whole
    (``COLUMNS`` sets the width of tables), colours only with ``--color
    always``. Markup and emoji codes in the input are never interpreted."""
    import os

    tty = out.isatty()
    color = SETTINGS["color"]
    if color == "auto":
        color = "never" if os.environ.get("NO_COLOR") or not tty else "auto"
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = None
    width = None if tty else (columns if columns and columns > 0 else 160)
    return SafeConsole(file=out, highlight=False, soft_wrap=not tty, markup=False, emoji=False,
                       width=width, force_terminal=True if color == "always" else None,
                       no_color=color == "never",
                       color_system={"never": None, "always": "standard"}.get(color, "auto"))
