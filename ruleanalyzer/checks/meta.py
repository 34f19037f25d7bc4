"""RA0xx — the audit's own findings about its input: a file that cannot be
read or parsed, and what the parser warned about while reading one.

Neither runs like a normal check: :mod:`ruleanalyzer.audit` turns a failed
load into :class:`UnreadableInput` and the ruleset's parser diagnostics into
:class:`ParserDiagnostic` findings, so they are selected, ignored, rendered
and counted like every other code.
"""

from __future__ import annotations

from ..errors import RuleAnalyzerError
from .base import Check, Context, Finding, Where


class UnreadableInput(Check):
    """A file given to audit could not be read or parsed."""

    code = "RA001"
    name = "unreadable-input"
    #: RA502 (jump loop) retired: every reader now refuses a loop, located
    #: at the jump that closes it, as iptables-restore and nft do.
    aliases = ("RA502",)
    summary = "Input file could not be read or parsed; it was skipped"
    rationale = (
        "Nothing in the file was analysed, so none of its problems can be reported. The "
        "other files given are still audited. The message carries the parser's located "
        "error; `ruleanalyzer audit` exits 2 only when every input was unreadable.")
    bad = "*filter\n:INPUT DROP [0:0]\n-A INPUT --bogus-option 1 -j ACCEPT\nCOMMIT\n"
    good = "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n"
    severity = "error"

    def run(self, ctx: Context):
        return ()

    def from_error(self, exc: RuleAnalyzerError, path: str) -> Finding:
        loc = exc.location
        where = Where(loc.file if loc else path, loc.line if loc else 0, loc.column if loc else 0,
                      loc.path if loc else None, text=exc.source_line or "")
        message = exc.message + (f" (hint: {exc.hint})" if exc.hint else "")
        return Finding(self.code, self.name, self.severity, message, where)


class ParserDiagnostic(Check):
    """Something the parser skipped or assumed while reading the file."""

    code = "RA002"
    name = "parser-diagnostic"
    summary = "The parser skipped or assumed something while reading the file"
    rationale = (
        "The analysis is only as good as the model the parser built. A skipped line means the "
        "analysed firewall may differ from the real one (a warning); an assumed default is "
        "reported as info. One cause is one finding: every line skipped for the same reason in "
        "a file (a pasted transcript, a prompt) is one finding listing each line.")
    bad = ""  # parser-specific; covered by fixtures in tests/checks/RA002/
    good = "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n"
    severity = "warning"

    def run(self, ctx: Context):
        for d in ctx.ruleset.diagnostics:
            loc = d.location
            where = Where(loc.file, loc.line, loc.column, loc.path)
            severity = "warning" if d.level == "warning" else "info"
            yield Finding(self.code, self.name, severity, d.message, where, cause=("diag", d.message),
                          group_message=f"{{count}} lines: {d.message}")


class CheckFailed(Check):
    """A check raised an exception on this ruleset (an analyzer bug)."""

    code = "RA003"
    name = "check-failed"
    summary = "A check crashed on this input; its findings are missing"
    rationale = ("This is a bug in ruleanalyzer, not in the rules. The other checks still ran. "
                 "Please report it with the input file.")
    bad = ""
    good = "*filter\n:INPUT DROP [0:0]\nCOMMIT\n"
    severity = "error"

    def run(self, ctx):
        return ()
